"""The frozen `Run` record, a measured run as data, and the two things every Run's frames get on the way in: the
default variant for files from before variants, and process 0 for samples from before worker processes. Only the
leaves below it, so that what merely holds a Run (a report, a layers.csv) does not import the reading of folders
(bench.store.folder) or the statistics (bench.store.summary)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.schema import DEFAULT_VARIANT, RowKey


def with_process(samples: pd.DataFrame) -> pd.DataFrame:
    """samples with a `process` column: files from before worker processes took every sample in one process (0)."""
    if "process" not in samples.columns:
        return samples.assign(process=0)
    if samples["process"].isna().any():
        return samples.assign(process=samples["process"].fillna(0))
    return samples


def _with_variant(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame from before variants has no variant column: every row is the default variant."""
    if "variant" not in frame.columns:
        return frame.assign(variant=DEFAULT_VARIANT)
    if frame["variant"].isna().any() or (frame["variant"] == "").any():
        return frame.assign(variant=frame["variant"].fillna(DEFAULT_VARIANT).replace("", DEFAULT_VARIANT))
    return frame


@dataclass(frozen=True, kw_only=True, eq=False)
class Run:
    """A measured run: its results (one tidy row per workload x device x dtype x variant, the columns of
    results.csv), its raw samples (long format), its environment (env.json), and where it came from.

    source: the path it was read from or written to (None for a run kept in memory only); run_dirs: the
    run folders behind it (several when rounds were pooled). Never mutated: build a new Run instead.
    """

    results: pd.DataFrame
    samples: pd.DataFrame
    env: Mapping[str, Any]
    source: Path | None = None
    run_dirs: tuple[Path, ...] = field(default=())

    def __post_init__(self) -> None:
        # A frame from before variants (or built by hand) gets the variant column: every row the default.
        for name in ("results", "samples"):
            object.__setattr__(self, name, _with_variant(getattr(self, name)))
        # samples from before worker processes were all taken in one process: process 0
        object.__setattr__(self, "samples", with_process(self.samples))

    @property
    def frame(self) -> pd.DataFrame:
        """The tidy results frame (results.csv's columns)."""
        return self.results

    @property
    def name(self) -> str:
        """A short name for messages and tables: the source folder's name, or "(in memory)"."""
        return self.source.name if self.source is not None else "(in memory)"

    @property
    def complete(self) -> bool:
        return self.env.get("complete") is True

    def keys(self) -> list[RowKey]:
        """The identity of every results row, in order."""
        return [RowKey.of(row) for row in self.results.to_dict("records")]
