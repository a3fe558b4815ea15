"""A model's time attributed to its layers, from Python: `bench.attribution(run)` returns the table as data."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bench.api.reporting import gather_peaks
from bench.measure.roofs import Peaks
from bench.report.build import check_columns, merge_runs, peaks_for_rows
from bench.report.roofline import annotate
from bench.schema import RESULTS_DIR
from bench.store.attribution import attribute
from bench.store.folder import Run
from bench.store.runs import load


def attribution(run: str | Path | Run, *, peaks: str | Path | Sequence[Peaks] | None = None,
                root: str | Path = RESULTS_DIR) -> pd.DataFrame:
    """The attribution of a run's models (bench.store.attribution.ATTRIBUTION_COLUMNS, after `run` and `machine`):
    per model, device, dtype and variant, a row of kind "model" (median_s, layers_sum_s, outside_s, ratio,
    failed_layers, note) and a row per layer (count, median_s, total_s = count x median_s, share, verdict, bound,
    pct_of_roof). run: a run folder (as `load` takes it) or a Run. The roofs come from bench.gather_peaks (peaks
    given, a peaks.json in the run folder, this machine's cache under <root>/peaks; never measured): without them
    verdict is "unknown" (or "launch-bound"). A run without rows of a model gives an empty table."""
    loaded = run if isinstance(run, Run) else load(run)
    check_columns(loaded)
    frame = merge_runs([loaded])[0]
    found, _ = peaks_for_rows(frame, gather_peaks([loaded], peaks=peaks, root=root))

    def peaks_of(row: pd.Series) -> Peaks | None:
        return found.get((row["machine_key"], int(row["threads"]) if row["device"] == "cpu" else 0))

    return attribute(annotate(frame, peaks_of))
