"""Running a suite from Python: check it, prepare a run, execute it (with progress), or all three with `run`."""
from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from bench.errors import BenchError, Problem, WriteError
from bench.measure import env as envmod
from bench.measure.apply import applied
from bench.measure.record import Progress, Record
from bench.measure.runner import CUDA_POLICY, devices_for, run_suite
from bench.measure.sampling import Policy
from bench.report.plots import save_plots
from bench.store.folder import Run
from bench.store.frames import to_frame, to_samples
from bench.store.writer import RunWriter, cannot_write, check_label, new_run_dir
from bench.suite.config import Suite, from_workloads, load_suite, matches
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
    chosen = _suite(suite)
    plans = check_plans(chosen.declared)
    selected = [p for p in plans if matches(p.workload, filter)]
    if not selected:
        where = ", ".join(c.where for c in chosen.configs) or "suite"
        raise BenchError(Problem(where=where, field="--filter" if filter else "WORKLOADS",
                                 expected="a name part or tag of some workload" if filter else "at least one workload",
                                 found=repr(filter) if filter else "none"))
    return selected



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
    # What was measured and how, whatever the caller (CLI or Python): rounds pool only when these agree.
    env["settings"] = dict(workloads=[p.name for p in plans], devices=devices, variants=[v.name for v in all_variants],
                           budget_s=budget_s, warmup_s=warmup_s, timeout_s=timeout_s, min_samples=min_samples,
                           target_rel_iqr=target_rel_iqr, threads=threads)
    return Prepared(plans=tuple(plans), devices=tuple(devices), variants=all_variants, policy=policy,
                    cuda_policy=cuda_policy, threads=count, env=env)


def execute(prepared: Prepared, *, out: str | Path | None = None, label: str = "",
            on_start: Callable[[Path | None], None] | None = None,
            on_progress: Callable[[Progress], None] | None = None,
            on_record: Callable[[Record], None] | None = None) -> Run:
    """Measure a prepared run. With `out`, a new run folder <out>/<UTC time>[-label] is written as the run goes
    (every file after each row) and latency.png at the end; without, nothing is written.

    Ctrl-C, or SIGTERM (which raises KeyboardInterrupt here), marks the saved run incomplete with the reason,
    draws the plots of the rows finished, and re-raises; a folder interrupted before it held anything is
    removed. A file that cannot be written (a full disk) raises WriteError; the run folder then holds the
    last rows that could be saved, whole, marked incomplete when even that can be written."""
    check_label(label)
    env = dict(prepared.env, label=label) if label else prepared.env
    previous = signal.signal(signal.SIGTERM, _interrupt) if _main_thread() else None
    run_dir = writer = None
    try:
        run_dir = new_run_dir(Path(out), label=label) if out is not None else None
        writer = RunWriter(run_dir, env)
        if on_start:
            on_start(run_dir)
        records: list[Record] = []

        def record(r: Record) -> None:
            records.append(r)
            writer.update(to_frame(records), to_samples(records))
            if on_record:
                on_record(r)

        with applied(Variant(threads=prepared.threads)):
            run_suite(list(prepared.plans), list(prepared.devices), policy=prepared.policy,
                      cuda_policy=prepared.cuda_policy, on_progress=on_progress, on_record=record,
                      variants=prepared.variants)
        run = writer.finish(complete=True)
        _plots(run)
        return run
    except KeyboardInterrupt:
        _stop(run_dir, writer, "interrupted")
        raise
    except WriteError as exc:
        _stop(run_dir, writer, f"cannot write: {exc}")
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _plots(run: Run) -> None:
    if run.source is not None:
        try:
            save_plots(run.source, run.results, run.samples)
        except OSError as exc:
            raise cannot_write(run.source, exc) from None


def _stop(run_dir: Path | None, writer: RunWriter | None, reason: str) -> None:
    """After an interruption or a failed write: keep what was measured, marked incomplete with the reason (best
    effort), with the plots of the finished rows; remove a run folder that never held anything."""
    if writer is None:
        if run_dir is not None and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()
        return
    run = writer.finish(complete=False, note=reason)
    try:
        _plots(run)
    except (WriteError, KeyboardInterrupt):
        pass  # the data files are what matter; a plot can be redrawn with `bench plot`


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



def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
