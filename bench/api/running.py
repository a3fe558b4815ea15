"""Running a suite from Python: check it, prepare a run, execute it (with progress), or all three with `run`."""
from __future__ import annotations

import os
import random
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from bench.errors import BenchError, Problem, WorkerLost, WriteError, strict_int
from bench.measure import env as envmod
from bench.measure.apply import applied
from bench.measure.record import Progress, Record
from bench.measure.runner import CUDA_POLICY, devices_for, run_suite
from bench.measure.sampling import Policy
from bench.measure.workers.counter import count_instructions
from bench.measure.workers.enough import DEFAULT_MIN_PROCESSES, DEFAULT_PRECISION, check_stopping, row_label
from bench.measure.workers.protocol import Job, Side
from bench.measure.workers.schedule import check_count, run_in_workers
from bench.report.plots import save_plots
from bench.store.attribution import write_layers
from bench.store.env_record import RunEnv
from bench.store.folder import Run
from bench.store.history import open_for, rows_of_run
from bench.store.recorder import RunRecorder
from bench.store.writer import cannot_write, check_label, new_run_dir
from bench.suite.config import Suite, from_workloads, load_suite, matches
from bench.suite.pickling import dumps_workloads
from bench.suite.plan import Plan
from bench.suite.plan import check as check_plans
from bench.suite.shard import Shard, parse_shard, select
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
    raise BenchError(Problem(where="suite",
                             expected="a config name or path, a list of them, or a list of bench.Workload",
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



DEFAULT_PROCESSES = 7  # worker processes per row for `run` (docs/gate.md: the evidence behind it)
PROCESSES_ENV = "BENCH_PROCESSES"  # overrides that default (the test suite sets 0: rows in its own process)


def default_processes() -> int:
    """$BENCH_PROCESSES when set (an integer >= 0), else DEFAULT_PROCESSES."""
    text = os.environ.get(PROCESSES_ENV, "").strip()
    if not text:
        return DEFAULT_PROCESSES
    if not text.isdigit():
        raise BenchError(Problem(where="environment", field=PROCESSES_ENV, expected="an integer >= 0",
                                 found=repr(text)))
    return int(text)


BUSY_ENV = "BENCH_BUSY_CORES"  # a fixed reading of the cores other processes keep busy (the test suite sets 0)


def busy_reading() -> float | None:
    """$BENCH_BUSY_CORES when set (a number >= 0), else the cores this machine's other processes keep busy,
    watched for half a second (bench.measure.env.busy_cores)."""
    text = os.environ.get(BUSY_ENV, "").strip()
    if not text:
        return envmod.busy_cores()
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise BenchError(Problem(where="environment", field=BUSY_ENV, expected="a number >= 0", found=repr(text)))
    return value


def check_processes(processes: object) -> int:
    return strict_int(processes, where="run", field="processes", expected="an integer >= 0 (0: in this process)")


METRICS = ("time", "instructions")


def check_metric(metric: str, processes: int) -> None:
    """time, or instructions (counted by callgrind in a worker process: valgrind and a C compiler checked now)."""
    if metric not in METRICS:
        raise BenchError(Problem(where="run", field="--metric", expected="time or instructions", found=repr(metric)))
    if metric == "instructions":
        if not processes:
            raise BenchError(Problem(where="run", field="--metric instructions", expected="worker processes "
                                     "(--processes 1 or more): callgrind runs a worker", found="--processes 0"))
        from bench.measure.instructions import build_library, default_folder

        build_library(default_folder())


def side_of(suite: Suite, *, filter: str = "", name: str = "", names: Sequence[str] = ()) -> Side:
    """The suite as worker processes load it again: its config files, and workloads given in code pickled.
    names: only these workloads (a shard's)."""
    code = [w for c in suite.configs if not c.path for w in c.workloads]
    return Side(name=name, configs=tuple(c.path for c in suite.configs if c.path), filter=filter,
                workloads=dumps_workloads(code) if code else None, names=tuple(names))


@dataclass(frozen=True, kw_only=True)
class Prepared:
    """A run decided but not started: what will be measured, how, and its environment record. processes: worker
    processes per row (0: in this process, no isolation); policy: per process (the row's budget split over them)."""

    plans: tuple[Plan, ...]
    devices: tuple[str, ...]
    variants: tuple[Variant, ...]
    policy: Policy
    cuda_policy: Policy
    threads: int
    env: RunEnv
    processes: int = 0
    side: Side = field(default_factory=Side)
    metric: str = "time"  # or "instructions": also count each CPU row's instructions under callgrind
    retries: int = 0  # how often a row whose worker crashed or hung is measured again (bench.measure.workers.schedule)
    # processes a row gets at least, and the between-process precision that stops it from there on (bench.measure.
    # workers.enough); `processes` is the most
    min_processes: int = DEFAULT_MIN_PROCESSES
    precision: float = DEFAULT_PRECISION
    threads_note: str = ""  # why `threads` is not what was asked for or torch's default (a busy machine), or ""

    @property
    def rows(self) -> int:
        return len(self.plans) * len(self.devices) * len(self.variants)

    @property
    def least_s(self) -> float:
        """Seconds the run takes at least: warm-up plus sampling budget per row that is timed, in each process."""
        per = {d: (self.cuda_policy if d == "cuda" else self.policy) for d in self.devices}
        return (len(self.plans) * len(self.variants) * max(min(self.min_processes, self.processes), 1)
                * sum(p.warmup_s + p.budget_s for p in per.values()))

    @property
    def job(self) -> Job:
        return Job(policy=self.policy, cuda_policy=self.cuda_policy, threads=self.threads, devices=self.devices,
                   variants=self.variants)


def prepare(suite: SuiteSpec, *, device: str = "all", budget_s: float = Policy.budget_s,
            warmup_s: float = Policy.warmup_s, timeout_s: float = Policy.timeout_s,
            min_samples: int = Policy.min_samples, target_rel_iqr: float = Policy.target_rel_iqr,
            threads: int | None = None, variants: str | Sequence[Variant | str] = (), filter: str = "",
            argv: Sequence[str] = (), processes: int | None = None, metric: str = "time",
            shard: str | Shard | None = None, cache: str = "warm", profile: bool = False, retries: int = 0,
            min_processes: int = DEFAULT_MIN_PROCESSES, precision: float = DEFAULT_PRECISION) -> Prepared:
    """Check the suite and settle everything about a run before anything is timed or written. processes: worker
    processes per row (None: $BENCH_PROCESSES or 7; 0: in this process); budget_s is the row's, split over them.
    shard: "K/N", the K-th of N disjoint slices of the suite balanced by planned cost (bench.suite.shard).
    cache: "warm" (back-to-back calls on one input) or "cold" (each call on the next of copies of the input
    spanning twice the last-level cache). profile: after each row's timing, profile a few calls (torch.profiler):
    kernels.csv, a trace per row under profiles/, the top kernels in results.csv (bench.measure.kernels).
    retries: how often a row whose worker process crashed or hung is measured again (0: its status stands).
    min_processes, precision: each row gets min_processes processes (at most `processes`), then more only while
    its between-process interval is wider than precision (bench.measure.workers.enough). threads None: torch's,
    or the cores other processes leave on a busy machine (bench.measure.env.choose_threads; threads_note says)."""
    processes = default_processes() if processes is None else check_processes(processes)
    check_count("run", "retries", retries, minimum=0)
    if processes:
        check_stopping(processes=processes, min_processes=min_processes, precision=precision)
    check_metric(metric, processes)
    chosen_suite = _suite(suite)  # each config module is imported once
    plans = check(chosen_suite, filter=filter)
    suite_names = [p.name for p in plans]
    if shard is not None:
        shard = shard if isinstance(shard, Shard) else parse_shard(shard)
        plans = select(plans, shard, fixed_s=warmup_s + budget_s, calls=min_samples)
    side = side_of(chosen_suite, filter=filter, names=[p.name for p in plans] if shard else ()) if processes else Side()
    common = dict(budget_s=budget_s / max(processes, 1), timeout_s=timeout_s, min_samples=min_samples,
                  floor_samples=min(Policy.floor_samples, min_samples), target_rel_iqr=target_rel_iqr, cache=cache,
                  profile=bool(profile))
    policy = Policy(**common, warmup_s=warmup_s)
    cuda_policy = Policy(**common, warmup_s=max(warmup_s, CUDA_POLICY.warmup_s))
    devices = devices_for(device)
    if isinstance(variants, str):
        chosen = parse_variants(variants)
    else:
        chosen = parse_variants(",".join(v if isinstance(v, str) else v.name for v in variants))
    all_variants = tuple(dict.fromkeys(chosen + chosen_suite.variants))
    if threads is not None:
        strict_int(threads, where="run", field="threads", minimum=1, expected="an integer >= 1, or None")
    count, threads_note = envmod.choose_threads(cores=os.cpu_count() or 1, requested=threads,
                                                default=torch.get_num_threads(),
                                                busy_cores=busy_reading() if "cpu" in devices else None)
    # What was measured and how, whatever the caller (CLI or Python): rounds pool only when these agree.
    settings = dict(workloads=[p.name for p in plans], devices=devices, variants=[v.name for v in all_variants],
                    budget_s=budget_s, warmup_s=warmup_s, timeout_s=timeout_s, min_samples=min_samples,
                    target_rel_iqr=target_rel_iqr, threads=threads, processes=processes, metric=metric,
                    cache=cache, profile=bool(profile), min_processes=min_processes, precision=precision)
    # which slice of which suite: `bench merge` joins the slices of one suite only
    sliced = dict(index=shard.index, count=shard.count, suite=suite_names) if shard is not None else None
    machine = envmod.capture(devices=devices, argv=["bench", *argv], threads=count)
    env = replace(RunEnv.of({**machine, "threads_note": threads_note} if threads_note else machine), cache=cache,
                  settings=settings, shard=sliced)
    return Prepared(plans=tuple(plans), devices=tuple(devices), variants=all_variants, policy=policy,
                    cuda_policy=cuda_policy, threads=count, env=env, processes=processes, side=side, metric=metric,
                    retries=retries, min_processes=min_processes, precision=precision, threads_note=threads_note)


def execute(prepared: Prepared, *, out: str | Path | None = None, label: str = "",
            on_start: Callable[[Path | None], None] | None = None,
            on_progress: Callable[[Progress], None] | None = None,
            on_record: Callable[[Record], None] | None = None, seed: int | None = None) -> Run:
    """Measure a prepared run. With `out`, a new run folder <out>/<UTC time>[-label] is written as the run goes
    (every file after each row) and latency.png at the end; without, nothing is written.

    Ctrl-C, or SIGTERM (which raises KeyboardInterrupt here), marks the saved run incomplete with the reason,
    draws the plots of the rows finished, and re-raises; a folder interrupted before it held anything is
    removed. A file that cannot be written (a full disk) raises WriteError; the run folder then holds the
    last rows that could be saved, whole, marked incomplete when even that can be written."""
    check_label(label)
    env = replace(prepared.env, label=label)
    previous = signal.signal(signal.SIGTERM, _interrupt) if _main_thread() else None
    run_dir = recorder = None
    try:
        run_dir = new_run_dir(Path(out), label=label) if out is not None else None
        recorder = RunRecorder(run_dir, env)
        if on_start:
            on_start(run_dir)

        def record(r: Record) -> None:
            kept = recorder.add(r)
            if on_record:
                on_record(kept)

        if prepared.processes:
            seed = random.SystemRandom().randrange(2**32) if seed is None else seed
            recorder.set_seed(seed)  # the schedule's: rows and processes in the same order again
            _in_workers(prepared, recorder, seed, record, on_progress)
        else:
            with applied(Variant(threads=prepared.threads)):
                run_suite(list(prepared.plans), list(prepared.devices), policy=prepared.policy,
                          cuda_policy=prepared.cuda_policy, on_progress=on_progress, on_record=record,
                          variants=prepared.variants)
        run = recorder.finish(complete=True)
        _plots(run)
        return run
    except KeyboardInterrupt:
        _stop(run_dir, recorder, "interrupted")
        raise
    except WriteError as exc:
        _stop(run_dir, recorder, f"cannot write: {exc}")
        raise
    except WorkerLost as exc:
        _stop(run_dir, recorder, f"worker process lost: {exc}")
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _in_workers(prepared: Prepared, recorder: RunRecorder, seed: int, record: Callable[[Record], None],
                on_progress: Callable[[Progress], None] | None) -> None:
    """The prepared run measured in worker processes (bench.measure.workers), their cost kept in the recorder."""
    stops: dict[str, str] = {}
    cost = run_in_workers([prepared.side], prepared.job, processes=prepared.processes, rng=random.Random(seed),
                          on_record=lambda _side, r: record(r), on_progress=on_progress, retries=prepared.retries,
                          min_processes=prepared.min_processes, precision=prepared.precision,
                          on_stop=lambda _side, row, why: stops.__setitem__(row_label(row), why))
    # why each row's processes ended: its interval within the target, or the maximum reached
    recorder.set_worker_cost({**cost[prepared.side.name].as_dict(), "min_processes": prepared.min_processes,
                              "max_processes": prepared.processes, "precision": prepared.precision, "rows": stops})
    if prepared.metric == "instructions":
        count_instructions(prepared.side, prepared.job, on_record=lambda _side, r: record(r))


def _plots(run: Run) -> None:
    if run.source is not None:
        try:
            save_plots(run.source, run.results, run.samples)
            write_layers(run)  # layers.csv, for a run of a model's layers (bench.store.attribution)
        except OSError as exc:
            raise cannot_write(run.source, exc) from None


def _stop(run_dir: Path | None, recorder: RunRecorder | None, reason: str) -> None:
    """After an interruption or a failed write: keep what was measured, marked incomplete with the reason (best
    effort), with the plots of the finished rows; remove a run folder that never held anything."""
    if recorder is None:
        if run_dir is not None and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()
        return
    run = recorder.finish(complete=False, reason=reason)
    try:
        _plots(run)
    except (WriteError, KeyboardInterrupt):
        pass  # the data files are what matter; a plot can be redrawn with `bench plot`


def run(suite: SuiteSpec, *, device: str = "all", budget_s: float = Policy.budget_s,
        warmup_s: float = Policy.warmup_s, timeout_s: float = Policy.timeout_s, min_samples: int = Policy.min_samples,
        target_rel_iqr: float = Policy.target_rel_iqr, threads: int | None = None,
        variants: str | Sequence[Variant | str] = (), filter: str = "", out: str | Path | None = None,
        label: str = "", on_progress: Callable[[Progress], None] | None = None, processes: int | None = None,
        seed: int | None = None, metric: str = "time", shard: str | None = None, store: str | Path | None = None,
        cache: str = "warm", profile: bool = False, retries: int = 0,
        min_processes: int = DEFAULT_MIN_PROCESSES, precision: float = DEFAULT_PRECISION) -> Run:
    """Check and time a suite; return the Run (`.frame`: results.csv's columns, one row per workload x
    device x variant). suite: a config name ("smoke"), a .py path, a list of them, or a list of bench.Workload.
    device: "all", "cpu" or "cuda". budget_s, warmup_s, timeout_s: seconds per row. threads: CPU threads
    (None: torch's; restored afterwards). variants: "dtypes,cuda_graph" or a list of Variant or names.
    Writes nothing unless `out` is given (then one run folder under it). Rows that fail keep their status.
    processes: worker processes per row (None: $BENCH_PROCESSES or 7; 0: in this process, no isolation; workloads
    given in code then need factories that pickle, not lambdas); seed: the schedule's random order; metric:
    "instructions" also counts each CPU row's instructions per call under callgrind (valgrind needed). shard: "K/N",
    the K-th of N slices of the suite (join them with bench.merge). store: with `out`, the history store the run's
    rows are added to (a path or SQLAlchemy URL; None: $BENCH_STORE, else results/history.sqlite; "none": not
    kept). cache: "warm" or "cold"; profile: record the kernels each row ran; retries: how often a row whose worker
    crashed or hung is measured again; min_processes, precision: processes per row at least, and the
    between-process precision that stops adding them (see prepare)."""
    prepared = prepare(suite, device=device, budget_s=budget_s, warmup_s=warmup_s, timeout_s=timeout_s,
                       min_samples=min_samples, target_rel_iqr=target_rel_iqr, threads=threads, variants=variants,
                       filter=filter, processes=processes, metric=metric, shard=shard, cache=cache,
                       profile=profile, retries=retries, min_processes=min_processes, precision=precision)
    opened = open_for(store) if out is not None else None  # a bad store fails before anything is timed
    done = execute(prepared, out=out, label=label, on_progress=on_progress, seed=seed)
    if opened is not None:
        opened.append(rows_of_run(done))
    return done



def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
