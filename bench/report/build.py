"""A report over one or more run folders (one or many machines): merged rows, roofline, best variants, figures.

`build_report(run_dirs)` returns a `Report` (data only); `bench.report.render` turns it into report.html
(self-contained: figures embedded as base64 PNG, no network) and report.md. Peaks come, per machine and
device, from a config's PEAKS, a run folder's peaks.json, this machine's cache, or a new probe when the run
was measured on this machine; a run from another machine without peaks gets no roofline, and a note says so.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from bench.measure import env as envmod
from bench.errors import BenchError, Problem
from bench.measure.peaks import PEAKS_DIR, Peaks, from_json, load_cache, peaks_for
from bench.report.figures import report_figures
from bench.store.runs import load_run, write_atomic
from bench.report.roofline import annotate
from bench.measure.runner import available_devices

MIN_SPEEDUP = 1.05
BEST_COLUMNS = ["machine", "device", "workload", "variants_tried", "default_median_s", "best_variant", "best_median_s",
                "speedup", "default_max_rel_diff", "best_max_rel_diff", "backward_over_forward", "noisy"]


@dataclass(frozen=True, kw_only=True)
class Report:
    """Everything a report shows. frame: every row of every run, with run, machine and roofline columns."""

    run_dirs: tuple[Path, ...]
    envs: tuple[dict, ...]
    frame: pd.DataFrame
    best: pd.DataFrame
    peaks: tuple[Peaks, ...]
    figures: dict[str, bytes]  # caption -> PNG
    notes: tuple[str, ...]


def _machine(env: dict, device: str) -> str:
    """A short name for the device a row ran on: the GPU's name, or the CPU's without (R), (TM) and 'CPU @ ...'."""
    if device == "cuda":
        return env.get("cuda_device") or "CUDA device"
    name = str(env.get("cpu_name") or "CPU").replace("(R)", "").replace("(TM)", "").split(" CPU @")[0]
    return " ".join(w for w in name.split() if w != "Processor") or "CPU"


# What the report reads from results.csv beyond what load_run itself requires.
REPORT_COLUMNS = ("flops", "bytes", "rel_iqr", "noisy", "host_median_s", "flops_per_s", "bytes_per_s", "reason")


def load_runs(run_dirs: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    """Merge run folders into one results frame and one samples frame, with run, machine and machine_key columns."""
    frames, samples, envs = [], [], []
    for run_dir in run_dirs:
        results, samp, env = load_run(run_dir)
        missing = [c for c in REPORT_COLUMNS if c not in results.columns]
        if missing:
            raise BenchError(Problem(where=str(Path(run_dir) / "results.csv"), expected=f"columns {', '.join(missing)}",
                                     found="a file without them (written by another tool, or cut)"))
        env = {**env, "run_dir": str(run_dir)}
        keys = env.get("machine_keys") or {}
        for f in (results, samp):
            f["run"] = Path(run_dir).name
            if "variant" not in f.columns:  # a run from before variants: every row is the default
                f["variant"] = "default"
            f["variant"] = f["variant"].fillna("default")
        results["machine"] = [_machine(env, d) for d in results["device"]]
        results["machine_key"] = [keys.get(d, f"{d}-{env.get('host', '?')}") for d in results["device"]]
        samp["machine"] = [_machine(env, d) for d in samp["device"]]
        frames.append(results)
        samples.append(samp)
        envs.append(env)
    return pd.concat(frames, ignore_index=True), pd.concat(samples, ignore_index=True), envs


def _stored_peaks(run_dirs: list[Path]) -> list[Peaks]:
    out = []
    for run_dir in run_dirs:
        path = Path(run_dir) / "peaks.json"
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise BenchError(Problem(where=str(path), expected="valid JSON", found=str(exc))) from None
            out += [from_json(p, where=f"{path}[{i}]") for i, p in enumerate(data.get("peaks", []))]
    return out


def resolve_peaks(frame: pd.DataFrame, run_dirs: list[Path], *, overrides: dict | None, probe: bool, quick: bool,
                  cache_dir: Path) -> tuple[dict[tuple[str, int], Peaks], list[str]]:
    """Peaks per (machine_key, threads) for the rows that ran (threads 0 on CUDA), and notes on what is missing."""
    stored = {(p.machine_key, p.threads): p for p in _stored_peaks(run_dirs)}
    found: dict[tuple[str, int], Peaks] = {}
    notes: list[str] = []
    ok = frame[frame["status"] == "ok"]
    for (key, device, threads), _ in ok.groupby(["machine_key", "device", "threads"]):
        threads = int(threads) if device == "cpu" else 0
        local = device in available_devices() and key == envmod.machine_key(device)
        named = next((overrides[n] for n in (key, device) if overrides and n in overrides), None)
        if named is not None:
            peaks = from_json(named, where=f"PEAKS['{key if key in overrides else device}']", default=dict(
                device=device, machine_key=key, device_name=device, threads=threads, source="config"))
        elif (key, threads) in stored:
            peaks = stored[(key, threads)]
        elif local and probe:
            peaks = peaks_for(device, threads=threads, quick=quick, cache_dir=cache_dir)
        elif local:
            cached = load_cache(cache_dir / f"{key}.json").get(f"threads={threads}")
            peaks = from_json(cached, where=str(cache_dir)) if cached else None
        else:
            peaks = None
        if peaks is None:
            notes.append(f"no peaks for {key} ({threads} threads): no roofline for its rows; run "
                         f"`python -m bench peaks` on that machine or give PEAKS in a config (--peaks)")
        else:
            found[(key, threads)] = peaks
    return found, notes


def _flag(value) -> bool:
    return False if value is None or pd.isna(value) else bool(value)


def best_variants(frame: pd.DataFrame) -> pd.DataFrame:
    """Per machine, device and workload: the fastest forward variant, its speed-up over the default and its accuracy.

    A variant wins only when it is at least MIN_SPEEDUP times faster than the default (smaller gains are
    within run-to-run noise on a shared machine); else the default is the best. Forward+backward rows do
    more work and are not candidates; their time over the default forward's is backward_over_forward.
    Rows without a default forward row that ran are left out; `noisy` says the default's or the best's
    relative IQR was high, so the speed-up is uncertain.
    """
    ok = frame[frame["status"] == "ok"]
    rows = []
    for (machine, device, workload), g in ok.groupby(["machine", "device", "workload"], sort=False):
        fwd = g[g.get("pass", pd.Series("forward", index=g.index)).fillna("forward") == "forward"]
        default = fwd[fwd["variant"] == "default"]
        if default.empty:
            continue
        d = default.iloc[0]
        b = fwd.loc[fwd["median_s"].idxmin()]
        if b["median_s"] * MIN_SPEEDUP > d["median_s"]:
            b = d
        bwd = g[(g.get("pass", pd.Series("forward", index=g.index)) == "forward+backward") & (g["variant"] == "backward")]
        rows.append(dict(machine=machine, device=device, workload=workload, variants_tried=len(fwd),
                         default_median_s=d["median_s"], best_variant=b["variant"], best_median_s=b["median_s"],
                         speedup=d["median_s"] / b["median_s"], default_max_rel_diff=d.get("max_rel_diff"),
                         best_max_rel_diff=b.get("max_rel_diff"),
                         backward_over_forward=bwd["median_s"].iloc[0] / d["median_s"] if len(bwd) else None,
                         noisy=_flag(d.get("noisy")) or _flag(b.get("noisy"))))
    return pd.DataFrame(rows, columns=BEST_COLUMNS)


def build_report(run_dirs: list[Path | str], *, overrides: dict | None = None, probe: bool = True, quick: bool = False,
                 cache_dir: Path = PEAKS_DIR) -> Report:
    """Load, merge and analyse run folders. Probes peaks for runs taken on this machine when probe=True."""
    dirs = [Path(d) for d in run_dirs]
    frame, samples, envs = load_runs(dirs)
    peaks, notes = resolve_peaks(frame, dirs, overrides=overrides, probe=probe, quick=quick, cache_dir=cache_dir)

    def peaks_of(row: pd.Series) -> Peaks | None:
        return peaks.get((row["machine_key"], int(row["threads"]) if row["device"] == "cpu" else 0))

    frame = annotate(frame, peaks_of)
    return Report(run_dirs=tuple(dirs), envs=tuple(envs), frame=frame, best=best_variants(frame),
                  peaks=tuple(peaks.values()), figures=report_figures(frame, samples, peaks), notes=tuple(notes))


def save_peaks(report: Report, folder: Path) -> Path:
    """Write the peaks a report used as folder/peaks.json (so a run folder carries its machine's roofs)."""
    path = folder / "peaks.json"
    write_atomic(path, json.dumps({"schema_version": 1, "peaks": [asdict(p) for p in report.peaks]}, indent=2) + "\n")
    return path
