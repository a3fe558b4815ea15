"""The Python API: check, run, load, compare and report. The CLI is a thin layer over these functions.

    import bench
    run = bench.run("smoke", device="cpu", budget_s=0.2)       # writes nothing; run.frame is a DataFrame
    run = bench.run([bench.Workload(...)], out="results")      # writes one run folder under results/
    bench.compare("results/baselines/<machine>", run.source)   # verdicts as a DataFrame
    bench.report([run], out="report")                          # report.html, report.md, figures

Functions return data and never print; user errors raise bench.BenchError (one line per problem).
"""
from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd
import torch

from bench.errors import BenchError, Problem
from bench.gate.baseline import RESULTS_DIR, load_noise
from bench.gate.compare import Comparison, compare_runs
from bench.gate.rule import Rule
from bench.measure import env as envmod
from bench.measure.apply import applied
from bench.measure.probe import probe
from bench.measure.roofs import Peaks
from bench.measure.record import Progress, Record
from bench.measure.runner import CUDA_POLICY, available_devices, run_suite
from bench.measure.sampling import Policy
from bench.report.build import Report, build_report
from bench.report.plots import save_plots
from bench.report.render import write_report
from bench.store import peaks as peakstore
from bench.store.folder import Run, is_run_dir
from bench.store.frames import to_frame, to_samples
from bench.store.runs import load
from bench.store.writer import RunWriter, check_label, new_run_dir
from bench.suite.config import Config, Suite, from_workloads, load_suite, matches, resolve
from bench.suite.config import load as load_config
from bench.suite.plan import Plan, check as check_plans
from bench.suite.variants import Variant, parse_variants
from bench.suite.workload import Workload

SuiteSpec = str | Path | Sequence[str] | Sequence[Workload] | Suite


def _suite(suite: SuiteSpec) -> Suite:
    """A config name or path, several of them, a list of Workload, or a Suite, as a Suite."""
    if isinstance(suite, Suite):
        return suite
    if isinstance(suite, (str, Path)):
        return load_suite([str(suite)])
    items = list(suite)
    if items and all(isinstance(w, Workload) for w in items):
        return Suite(configs=(from_workloads(items),))
    if all(isinstance(s, (str, Path)) for s in items) and items:
        return load_suite([str(s) for s in items])
    raise BenchError(Problem(where="suite", expected="a config name or path, a list of them, or a list of bench.Workload",
                             found=f"{type(suite).__name__} of {len(items)} item(s)" if items else "nothing"))


def check(suite: SuiteSpec, *, filter: str = "") -> list[Plan]:
    """Plan every workload on the meta device (shape, FLOPs, bytes); BenchError listing every problem.
    filter: comma-separated name parts or tags, case-insensitive (any one selects)."""
    plans = check_plans(_suite(suite).declared)
    selected = [p for p in plans if matches(p.workload, filter)]
    if not selected:
        raise BenchError(Problem(where="suite", field="--filter" if filter else "WORKLOADS",
                                 expected="a name part or tag of some workload" if filter else "at least one workload",
                                 found=repr(filter) if filter else "none"))
    return selected


def devices_for(choice: str) -> list[str]:
    """"all" (the CPU and CUDA when present), "cpu" or "cuda" (BenchError without a GPU)."""
    have = available_devices()
    if choice == "all":
        return have
    if choice not in ("cpu", "cuda"):
        raise BenchError(Problem(where="run", field="device", expected="cpu, cuda or all", found=repr(choice)))
    if choice not in have:
        raise BenchError(Problem(where="run", field="--device cuda", expected="a CUDA device",
                                 found="none (torch.cuda.is_available() is False)"))
    return [choice]


@dataclass(frozen=True, kw_only=True)
class Prepared:
    """A run decided but not started: what will be measured, how, and its environment record."""

    plans: tuple[Plan, ...]
    devices: tuple[str, ...]
    variants: tuple[Variant, ...]
    policy: Policy
    cuda_policy: Policy
    threads: int
    env: dict

    @property
    def rows(self) -> int:
        return len(self.plans) * len(self.devices) * len(self.variants)

    @property
    def least_s(self) -> float:
        """Seconds the run takes at least: warm-up plus sampling budget per row that is timed."""
        per = {d: (self.cuda_policy if d == "cuda" else self.policy) for d in self.devices}
        return len(self.plans) * len(self.variants) * sum(p.warmup_s + p.budget_s for p in per.values())


def prepare(suite: SuiteSpec, *, device: str = "all", budget_s: float = Policy.budget_s,
            warmup_s: float = Policy.warmup_s, timeout_s: float = Policy.timeout_s,
            min_samples: int = Policy.min_samples, target_rel_iqr: float = Policy.target_rel_iqr,
            threads: int | None = None, variants: str | Sequence[Variant | str] = (), filter: str = "",
            argv: Sequence[str] = ()) -> Prepared:
    """Check the suite and settle everything about a run before anything is timed or written."""
    chosen_suite = _suite(suite)  # each config module is imported once
    plans = check(chosen_suite, filter=filter)
    common = dict(budget_s=budget_s, timeout_s=timeout_s, min_samples=min_samples,
                  floor_samples=min(Policy.floor_samples, min_samples), target_rel_iqr=target_rel_iqr)
    policy = Policy(**common, warmup_s=warmup_s)
    cuda_policy = Policy(**common, warmup_s=max(warmup_s, CUDA_POLICY.warmup_s))
    devices = devices_for(device)
    if isinstance(variants, str):
        chosen = parse_variants(variants)
    else:
        chosen = parse_variants(",".join(v if isinstance(v, str) else v.name for v in variants))
    all_variants = tuple(dict.fromkeys(chosen + chosen_suite.variants))
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise BenchError(Problem(where="run", field="threads", expected="an integer >= 1, or None", found=repr(threads)))
    count = threads or torch.get_num_threads()
    env = envmod.capture(devices=devices, argv=["bench", *argv], threads=count)
    return Prepared(plans=tuple(plans), devices=tuple(devices), variants=all_variants, policy=policy,
                    cuda_policy=cuda_policy, threads=count, env=env)


def execute(prepared: Prepared, *, out: str | Path | None = None, label: str = "",
            on_start: Callable[[Path | None], None] | None = None,
            on_progress: Callable[[Progress], None] | None = None,
            on_record: Callable[[Record], None] | None = None) -> Run:
    """Measure a prepared run. With `out`, a new run folder <out>/<UTC time>[-label] is written as the run goes
    (every file after each row) and latency.png at the end; without, nothing is written. Ctrl-C (or SIGTERM,
    which raises KeyboardInterrupt here) marks the saved run incomplete and re-raises."""
    check_label(label)
    run_dir = new_run_dir(Path(out), label=label) if out is not None else None
    env = dict(prepared.env, label=label) if label else prepared.env
    writer = RunWriter(run_dir, env)
    if on_start:
        on_start(run_dir)

    records: list[Record] = []

    def record(r: Record) -> None:
        records.append(r)
        writer.update(to_frame(records), to_samples(records))
        if on_record:
            on_record(r)

    previous = signal.signal(signal.SIGTERM, _interrupt) if _main_thread() else None
    try:
        with applied(Variant(threads=prepared.threads)):
            run_suite(list(prepared.plans), list(prepared.devices), policy=prepared.policy,
                      cuda_policy=prepared.cuda_policy, on_progress=on_progress, on_record=record,
                      variants=prepared.variants)
    except KeyboardInterrupt:
        writer.finish(complete=False, note="interrupted")
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    run = writer.finish(complete=True)
    if run_dir is not None:
        save_plots(run_dir, run.results, run.samples)
    return run


def run(suite: SuiteSpec, *, device: str = "all", budget_s: float = Policy.budget_s,
        warmup_s: float = Policy.warmup_s, timeout_s: float = Policy.timeout_s, min_samples: int = Policy.min_samples,
        target_rel_iqr: float = Policy.target_rel_iqr, threads: int | None = None,
        variants: str | Sequence[Variant | str] = (), filter: str = "", out: str | Path | None = None,
        label: str = "", on_progress: Callable[[Progress], None] | None = None) -> Run:
    """Check and time a suite; return the Run (`.frame`: results.csv's columns, one row per workload x
    device x variant). suite: a config name ("smoke"), a .py path, a list of them, or a list of bench.Workload.
    device: "all", "cpu" or "cuda". budget_s, warmup_s, timeout_s: seconds per row. threads: CPU threads
    (None: torch's; restored afterwards). variants: "dtypes,cuda_graph" or a list of Variant or names.
    Writes nothing unless `out` is given (then one run folder under it). Rows that fail keep their status."""
    prepared = prepare(suite, device=device, budget_s=budget_s, warmup_s=warmup_s, timeout_s=timeout_s,
                       min_samples=min_samples, target_rel_iqr=target_rel_iqr, threads=threads, variants=variants,
                       filter=filter)
    return execute(prepared, out=out, label=label, on_progress=on_progress)


def comparison(baseline: str | Path | Run, candidate: str | Path | Run, *, threshold: float = 0.10,
               allow_env_mismatch: bool = False) -> Comparison:
    """Compare two runs (paths as `load` takes them, or Run objects) with the gate's rule. A baseline folder
    from the store may hold noise.csv (from `bench calibrate`): its per-row noise then widens thresholds."""
    base = baseline if isinstance(baseline, Run) else load(baseline)
    cand = candidate if isinstance(candidate, Run) else load(candidate)
    noise = load_noise(base.source) if base.source is not None else {}
    return compare_runs(base, cand, rule=Rule(threshold=threshold), allow_env_mismatch=allow_env_mismatch,
                        noise=noise)


def compare(baseline: str | Path | Run, candidate: str | Path | Run, *, threshold: float = 0.10,
            allow_env_mismatch: bool = False) -> pd.DataFrame:
    """The verdicts of `comparison` as a DataFrame: one row per row both runs have (workload, device, dtype,
    variant, verdict in slower/unsure/same/faster, reason, medians, ratio and its 99% interval, p_value, ...)."""
    return comparison(baseline, candidate, threshold=threshold, allow_env_mismatch=allow_env_mismatch).frame


def peaks(device: str = "all", *, threads: int = 0, quick: bool = False, refresh: bool = False,
          root: str | Path = RESULTS_DIR, on_step: Callable[[str], None] | None = None) -> list[Peaks]:
    """This machine's peaks per device: from the cache under <root>/peaks, else probed now (announced through
    on_step) and cached. refresh: probe even when cached. threads: CPU threads (0: torch's)."""
    out = []
    for dev in devices_for(device):
        with applied(Variant(threads=threads if dev == "cpu" else 0)):
            count = torch.get_num_threads() if dev == "cpu" else 0
            found = None if refresh else peakstore.cached(Path(root), envmod.machine_key(dev), threads=count, quick=quick)
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
        ok = run.results[run.results["status"] == "ok"]
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
            if item is None and probe_missing:
                with applied(Variant(threads=threads if device == "cpu" else 0)):
                    item = probe(device, quick=quick, on_step=on_step)
                peakstore.save_cached(Path(root), item, quick=quick)
        if item is not None:
            found[(key, threads)] = item
    return list(found.values())


def report(runs: Sequence[str | Path | Run], *, out: str | Path | None = None,
           peaks: str | Path | Sequence[Peaks] | None = None, probe_peaks: bool = False, quick_peaks: bool = False,
           root: str | Path = RESULTS_DIR, on_step: Callable[[str], None] | None = None) -> Report:
    """A report over runs (paths as `load` takes them, or Run objects), from one or many machines. The roofs come
    from gather_peaks (never measured unless probe_peaks). With `out`, writes report.html, report.md, the figures,
    roofline.csv and peaks.json into that folder."""
    loaded = [r if isinstance(r, Run) else load(r) for r in runs]
    if not loaded:
        raise BenchError(Problem(where="report", expected="one or more runs", found="none"))
    found = gather_peaks(loaded, peaks=peaks, root=root, probe_missing=probe_peaks, quick=quick_peaks,
                         on_step=on_step)
    result = build_report(loaded, peaks=found)
    if out is not None:
        target = Path(out)
        if target.exists() and not target.is_dir():
            raise BenchError(Problem(where=str(target), field="--out", expected="a folder", found="a file"))
        try:
            write_report(result, target)
        except OSError as exc:
            raise BenchError(Problem(where=str(target), field="--out", expected="a folder the report can be written in",
                                     found=exc.strerror or type(exc).__name__)) from None
    return result


def default_report_dir(run: Run) -> Path:
    """Where `bench report RUN` writes by default: the run folder itself (the folder given, for pooled rounds)."""
    return run.run_dirs[0] if len(run.run_dirs) == 1 and is_run_dir(run.run_dirs[0]) else Path(run.source or ".")


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


__all__ = ["Config", "Prepared", "Run", "check", "compare", "comparison", "execute", "gather_peaks", "load", "peaks",
           "prepare", "report", "resolve", "run"]
