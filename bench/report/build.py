"""A report over one or more runs (one or many machines): merged rows, roofline, best variants, figures.

`build_report(runs, peaks=...)` returns a `Report` (data only); bench.report.render turns it into report.html
(self-contained: figures embedded as base64 PNG, no network) and report.md. The report never measures:
the roofs come in as data, each with its provenance (bench.measure.roofs.Peaks).
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from bench.errors import BenchError, Problem
from bench.measure.roofs import Peaks
from bench.report.attribution import model_sections
from bench.report.figures import report_figures
from bench.report.model import Report
from bench.report.roofline import annotate
from bench.schema import OK
from bench.store.attribution import attribute
from bench.store.folder import Run

MIN_SPEEDUP = 1.05
BEST_COLUMNS = ["machine", "device", "workload", "variants_tried", "default_median_s", "best_variant", "best_median_s",
                "speedup", "default_max_rel_diff", "best_max_rel_diff", "backward_over_forward", "noisy"]
# What the report reads from results.csv beyond what every run has.
REPORT_COLUMNS = ("flops", "bytes", "rel_iqr", "noisy", "host_median_s", "flops_per_s", "bytes_per_s", "reason",
                  "threads")


def check_columns(run: Run) -> None:
    """BenchError (one line) when a run lacks a column the report reads (a file written by another tool, or cut)."""
    missing = [c for c in REPORT_COLUMNS if c not in run.results.columns]
    if missing:
        raise BenchError(Problem(where=f"{run.source}/results.csv", expected=f"columns {', '.join(missing)}",
                                 found="a file without them (written by another tool, or cut)"))


def _machine(env: dict, device: str) -> str:
    """A short name for the device a row ran on: the GPU's name, or the CPU's without (R), (TM) and 'CPU @ ...'."""
    if device == "cuda":
        return env.get("cuda_device") or "CUDA device"
    name = str(env.get("cpu_name") or "CPU").replace("(R)", "").replace("(TM)", "").split(" CPU @")[0]
    return " ".join(w for w in name.split() if w != "Processor") or "CPU"


def merge_runs(runs: Sequence[Run]) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    """Merge runs into one results frame and one samples frame, with run, machine and machine_key columns.

    Runs get distinct names ("seed", "seed (2)"); a machine seen in several runs is named with its run
    ("Xeon (seed (2))"), so that every (machine, device, workload, variant) of the report is one row.
    """
    frames, samples, envs, seen = [], [], [], {}
    for run in runs:
        check_columns(run)
        seen[run.name] = seen.get(run.name, 0) + 1
        name = run.name if seen[run.name] == 1 else f"{run.name} ({seen[run.name]})"
        env = {**run.env, "run_dir": str(run.source), "run": name}
        keys = env.get("machine_keys") or {}
        results, samp = run.results.assign(run=name), run.samples.assign(run=name)
        results["machine"] = [_machine(env, d) for d in results["device"]]
        results["machine_key"] = [keys.get(d, f"{d}-{env.get('host', '?')}") for d in results["device"]]
        samp["machine"] = [_machine(env, d) for d in samp["device"]]
        frames.append(results)
        samples.append(samp)
        envs.append(env)
    frame, samp = pd.concat(frames, ignore_index=True), pd.concat(samples, ignore_index=True)
    shared = {m for m, g in frame.groupby("machine") if g["run"].nunique() > 1}
    for f in (frame, samp):
        f["machine"] = [f"{m} ({r})" if m in shared else m for m, r in zip(f["machine"], f["run"])]
    return frame, samp, envs


def peaks_for_rows(frame: pd.DataFrame, peaks: Sequence[Peaks]) -> tuple[dict[tuple[str, int], Peaks], list[str]]:
    """The given peaks per (machine_key, threads) that the rows which ran need (threads 0 on CUDA), and a
    note for each machine and thread count without any: its rows get no roofline."""
    given = {(p.machine_key, p.threads): p for p in peaks}
    found, notes = {}, []
    ok = frame[frame["status"] == OK]
    for (key, device, threads), _ in ok.groupby(["machine_key", "device", "threads"]):
        need = (key, int(threads) if device == "cpu" else 0)
        if need in given:
            found[need] = given[need]
        elif need not in found:
            notes.append(f"no peaks for {key} ({need[1]} threads): no roofline for its rows; run `bench peaks` "
                         f"on that machine, give PEAKS in a config (--peaks), or use --probe-peaks there")
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
    ok = frame[frame["status"] == OK]
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
        bwd = g[(g.get("pass", pd.Series("forward", index=g.index)) == "forward+backward")
                & (g["variant"] == "backward")]
        rows.append(dict(machine=machine, device=device, workload=workload, variants_tried=len(fwd),
                         default_median_s=d["median_s"], best_variant=b["variant"], best_median_s=b["median_s"],
                         speedup=d["median_s"] / b["median_s"], default_max_rel_diff=d.get("max_rel_diff"),
                         best_max_rel_diff=b.get("max_rel_diff"),
                         backward_over_forward=bwd["median_s"].iloc[0] / d["median_s"] if len(bwd) else None,
                         noisy=_flag(d.get("noisy")) or _flag(b.get("noisy"))))
    return pd.DataFrame(rows, columns=BEST_COLUMNS)


def build_report(runs: Sequence[Run], *, peaks: Sequence[Peaks] = ()) -> Report:
    """Merge and analyse runs. Never measures: `peaks` are given as data (stored, cached, configured or
    probed beforehand by the caller); rows of a machine without peaks get no roofline, and a note says so."""
    frame, samples, envs = merge_runs(runs)
    found, notes = peaks_for_rows(frame, peaks)

    def peaks_of(row: pd.Series) -> Peaks | None:
        return found.get((row["machine_key"], int(row["threads"]) if row["device"] == "cpu" else 0))

    frame = annotate(frame, peaks_of)
    notes = [*notes, *(f"the roofs of {p.machine_key} were measured while other processes kept "
                       f"{p.others_busy_cores:.1f} of its {p.cores} cores busy: they are low, so its rows read closer "
                       "to them than they are; "
                       "measure again on a quiet machine (`bench peaks --refresh`)" for p in found.values() if p.busy)]
    table = attribute(frame)  # a model's rows (bench.layers): their attribution, a section per model
    return Report(runs=tuple(runs), envs=tuple(envs), frame=frame, best=best_variants(frame),
                  peaks=tuple(found.values()), figures=report_figures(frame, samples, found), notes=tuple(notes),
                  attribution=table, models=model_sections(frame, table, found))
