"""Roofs and reports from Python: this machine's peaks (cached, probed on request), a report over runs
(make_report; bench.report is the package that builds and renders it), and a model's time attributed to its layers
(`bench.attribution(run)`, the table as data, with the roofs a report would use)."""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import torch

from bench.errors import BenchError, Problem, WriteError
from bench.measure import env as envmod
from bench.measure.apply import applied
from bench.measure.env import available_devices
from bench.measure.probe import probe
from bench.measure.roofs import Peaks
from bench.measure.runner import devices_for
from bench.report.build import build_report, check_columns, merge_runs, peaks_for_rows
from bench.report.model import Report
from bench.report.render import write_report
from bench.report.roofline import annotate
from bench.schema import OK, RESULTS_DIR
from bench.store import peaks as peakstore
from bench.store.attribution import attribute
from bench.store.folder import Run, is_run_dir, require_rows
from bench.store.runs import load
from bench.suite.config import load_config
from bench.suite.variants import Variant


def peaks(device: str = "all", *, threads: int = 0, quick: bool = False, refresh: bool = False,
          root: str | Path = RESULTS_DIR, on_step: Callable[[str], None] | None = None) -> list[Peaks]:
    """This machine's peaks per device: from the cache under <root>/peaks, else probed now (announced through
    on_step) and cached. refresh: probe even when cached. threads: CPU threads (0: torch's)."""
    out = []
    for dev in devices_for(device):
        with applied(Variant(threads=threads if dev == "cpu" else 0)):
            count = torch.get_num_threads() if dev == "cpu" else 0
            found = None if refresh else peakstore.cached(Path(root), envmod.machine_key(dev), threads=count,
                                                          quick=quick)
            if found is None:
                found = probe(dev, quick=quick, on_step=on_step)
                peakstore.save_cached(Path(root), found, quick=quick)
        out.append(found)
    return out


def _needed(runs: Sequence[Run]) -> set[tuple[str, str, int]]:
    """(machine_key, device, threads) of the rows that ran (threads 0 on CUDA)."""
    need = set()
    for run in runs:
        keys = run.env.get("machine_keys") or {}
        ok = run.results[run.results["status"] == OK]
        for device, threads in ok[["device", "threads"]].drop_duplicates().itertuples(index=False):
            need.add((keys.get(device, f"{device}-{run.env.get('host', '?')}"), device,
                      int(threads) if device == "cpu" else 0))
    return need


def gather_peaks(runs: Sequence[Run], *, peaks: str | Path | Sequence[Peaks] | None = None,
                 root: str | Path = RESULTS_DIR, probe_missing: bool = False, quick: bool = False,
                 on_step: Callable[[str], None] | None = None) -> list[Peaks]:
    """The roofs a report of these runs needs, per machine and thread count, first found of: `peaks` (a config
    with PEAKS, a peaks.json, or Peaks objects), a peaks.json in a run's folder, this machine's cache under
    <root>/peaks, and, only with probe_missing, a probe of this machine now (announced through on_step)."""
    found: dict[tuple[str, int], Peaks] = {}
    given: dict | None = None
    if isinstance(peaks, (str, Path)) and str(peaks).endswith(".json"):
        found.update({(p.machine_key, p.threads): p for p in peakstore.read_peaks_file(Path(peaks))})
    elif isinstance(peaks, (str, Path)):
        config = load_config(str(peaks), require_workloads=False)
        given = peakstore.config_peaks(config.peaks, where=config.where)
    elif peaks is not None:
        found.update({(p.machine_key, p.threads): p for p in peaks})
    stored = [p for run in runs for d in run.run_dirs if (d / "peaks.json").is_file()
              for p in peakstore.read_peaks_file(d / "peaks.json")]
    for key, device, threads in sorted(_needed(runs)):
        if (key, threads) in found:
            continue
        local = device in available_devices() and key == envmod.machine_key(device)
        item = peakstore.given(given, key=key, device=device, threads=threads, where=str(peaks)) if given else None
        item = item or next((p for p in stored if (p.machine_key, p.threads) == (key, threads)), None)
        if item is None and local:
            item = peakstore.cached(Path(root), key, threads=threads, quick=quick)
            if (item is None or item.busy) and probe_missing:  # a probe taken on a busy machine is taken again
                with applied(Variant(threads=threads if device == "cpu" else 0)):
                    fresh = probe(device, quick=quick, on_step=on_step)
                if (item is None or not fresh.busy
                        or fresh.peak_flops_per_s("float32") > item.peak_flops_per_s("float32")):
                    item = fresh
                    peakstore.save_cached(Path(root), item, quick=quick)
        if item is not None:
            found[(key, threads)] = item
    return list(found.values())


def make_report(runs: Sequence[str | Path | Run], *, out: str | Path | None = None,
           peaks: str | Path | Sequence[Peaks] | None = None, probe_peaks: bool = False, quick_peaks: bool = False,
           root: str | Path = RESULTS_DIR, on_step: Callable[[str], None] | None = None,
           site: str | Path | None = None) -> Report:
    """A report over runs (paths as `load` takes them, or Run objects), from one or many machines. The roofs come
    from gather_peaks (never measured unless probe_peaks). With `out`, writes report.html, report.md, the figures,
    roofline.csv and peaks.json into that folder; site: a history site's folder (`history site --out`) that
    report.html links to."""
    loaded = [r if isinstance(r, Run) else load(r) for r in runs]
    if not loaded:
        raise BenchError(Problem(where="report", expected="one or more runs", found="none"))
    link = site_link(site, Path(out)) if out is not None else ""
    for run in loaded:
        require_rows(run, purpose="to report")
        check_columns(run)
    found = gather_peaks(loaded, peaks=peaks, root=root, probe_missing=probe_peaks, quick=quick_peaks,
                         on_step=on_step)
    result = build_report(loaded, peaks=found)
    if out is not None:
        target = Path(out)
        if target.exists() and not target.is_dir():
            raise BenchError(Problem(where=str(target), field="--out", expected="a folder", found="a file"))
        try:
            write_report(result, target, site_link=link)
        except OSError as exc:
            raise WriteError(Problem(where=str(target), field="--out", expected="a folder the report can be written in",
                                     found=exc.strerror or type(exc).__name__)) from None
    return result


def site_link(site: str | Path | None, out: Path) -> str:
    """The link from a report in out to a history site's index.html; "" without a site."""
    if site is None:
        return ""
    index = Path(site) / "index.html"
    if not index.is_file():
        raise BenchError(Problem(where="report", field="--site", expected="a history site (layerbench history site "
                                 "--out DIR)", found=f"{index}: no such file"))
    return Path(os.path.relpath(index.resolve(), Path(out).resolve())).as_posix()


def default_report_dir(run: Run) -> Path:
    """Where `bench report RUN` writes by default: the run folder itself (the folder given, for pooled rounds)."""
    return run.run_dirs[0] if len(run.run_dirs) == 1 and is_run_dir(run.run_dirs[0]) else Path(run.source or ".")


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
