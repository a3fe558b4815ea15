"""Worker processes: every row is measured in processes the runner starts, never in the caller's.

Why: on a shared machine a process can run a few percent (once in three pairs, 1.6x) slower than another for
its whole life, so samples from one process are not independent evidence; several processes per row make the
process the unit of the gate's statistics (bench.gate.rule). pyperf spawns 20 worker processes per benchmark by
default and asv runs each benchmark in a subprocess; we do the same, and interleave them.

The schedule (randomized multiple interleaved trials, Abedi and Brecht, ICPE 2017): `processes` trials; in each
trial every side (one for a run; baseline and candidate for `bench ab`, in random order) gets a fresh worker that
measures all of that side's rows in a random order. A worker stays warm across rows (one interpreter start and
torch import per trial), except that `compile` and `cudnn_benchmark` rows get a worker of their own, so that no
dynamo or cuDNN cache leaks between rows, and that a worker whose row failed is replaced (a failed CUDA call can
poison its context).

A worker that dies (a signal, an exit) takes only its row down, as status `crashed` with the signal or exit
status and the innermost Python frame faulthandler printed; one that does not answer within the row's limit (a
native hang that the in-process deadline cannot stop) is killed, status `timeout`. The other rows go on.

The protocol is pickled tuples over a socket pair between two processes of the same engine (this package),
never read from anywhere else. Records come back with their plan's workload stripped of its module factory (a
lambda does not pickle): the frames need only the declaration's data.
"""
from __future__ import annotations

import functools
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Callable, Sequence

from bench.errors import BenchError, Problem
from bench.measure.record import Progress, Record
from bench.measure.sampling import Policy
from bench.suite.plan import Plan
from bench.suite.variants import Variant, skip_reason

ENGINE = Path(__file__).resolve().parents[2]  # the folder holding this `bench` package: the workers' engine
START_LIMIT_S = 300.0  # a worker that is not ready by then (interpreter start, torch import, planning) is killed
GRACE_S = 30.0  # on top of a row's own limit (Policy.row_limit_s) before the parent kills a silent worker
FAILED = ("error", "oom", "timeout", "unsupported", "crashed")


@dataclass(frozen=True, kw_only=True)
class Side:
    """Where a worker's code under test comes from. name: "" for a plain run, "baseline" or "candidate" for
    `bench ab`. configs: config files as absolute paths (or workloads: pickled bench.Workload objects given in
    code). root: put first on the worker's sys.path and made its working directory (a git worktree of the base
    ref), so the configs' own imports resolve there; None: the caller's. python: the interpreter (--base-python).
    launcher: a command the interpreter runs under (valgrind for --metric instructions), environ: variables set
    for it (the instruction counter fixes the hash seed). plans: the suite's plans (stripped), given to workers
    after the first, which skip planning (the FLOP counter costs seconds)."""

    name: str = ""
    configs: tuple[str, ...] = ()
    workloads: bytes | None = None
    filter: str = ""
    names: tuple[str, ...] = ()  # only these of the workloads the filter selects (a --shard's slice); () all
    root: str | None = None
    python: str = sys.executable
    launcher: tuple[str, ...] = ()
    environ: tuple[tuple[str, str], ...] = ()
    plans: tuple[Plan, ...] = ()  # the suite's plans once the first worker made them: later ones skip planning


@dataclass(frozen=True, kw_only=True)
class Job:
    """How every worker measures: the sampling policies (per process: the caller splits a row's budget over its
    processes), CPU threads, the devices and variants asked for, and the metric ("time" or "instructions")."""

    policy: Policy
    cuda_policy: Policy
    threads: int
    devices: tuple[str, ...]
    variants: tuple[Variant, ...] = ()
    metric: str = "time"
    counter_library: str = ""  # --metric instructions: the client-request library (bench.measure.instructions)
    counter_out: str = ""  # and the folder callgrind dumps into

    def policy_for(self, device: str) -> Policy:
        return self.cuda_policy if device == "cuda" else self.policy


@dataclass(frozen=True)
class Row:
    """One row to measure: a workload (by name), a device and a variant."""

    workload: str
    device: str
    variant: Variant


@dataclass(frozen=True, kw_only=True)
class Ready:
    """What a worker says once it has started: the plans of its side's suite (workloads stripped of their module
    factory), the suite's own VARIANTS, and the seconds its start took (interpreter, imports, planning)."""

    plans: tuple[Plan, ...]
    variants: tuple[Variant, ...]
    import_s: float
    plan_s: float
    versions: dict = field(default_factory=dict)  # the worker's python, torch and CUDA (another with --base-python)


@dataclass(frozen=True, kw_only=True)
class WorkerCost:
    """What the workers of one side cost: how many started, the median seconds from spawn to ready (the
    interpreter, importing torch and bench, planning), and the seconds spent measuring rows in them."""

    started: int = 0
    start_s: tuple[float, ...] = ()
    import_s: tuple[float, ...] = ()
    measuring_s: float = 0.0

    def plus(self, worker: "Worker") -> "WorkerCost":
        """This cost with one more worker started."""
        return replace(self, started=self.started + 1, start_s=self.start_s + (worker.start_s,),
                       import_s=self.import_s + (worker.ready.import_s,))

    def merged(self, other: "WorkerCost") -> "WorkerCost":
        """Both costs as one (a job's extra pairs after its first ones)."""
        return WorkerCost(started=self.started + other.started, start_s=self.start_s + other.start_s,
                          import_s=self.import_s + other.import_s, measuring_s=self.measuring_s + other.measuring_s)

    def as_dict(self) -> dict:
        median = lambda xs: sorted(xs)[len(xs) // 2] if xs else None  # noqa: E731
        return dict(started=self.started, start_s_median=median(self.start_s), import_s_median=median(self.import_s),
                    start_s_total=sum(self.start_s), measuring_s=self.measuring_s)


def strip(plan: Plan) -> Plan:
    """The plan without its workload's module factory (a lambda does not pickle; the data is all a record needs)."""
    return replace(plan, workload=replace(plan.workload, module=None))


def rows_for(ready: Ready, job: Job) -> list[Row]:
    """Every plan x device x variant (asked for first, then the suite's VARIANTS), as a run lists them."""
    variants = tuple(dict.fromkeys(job.variants + ready.variants)) or (Variant(),)
    return [Row(p.workload.name, d, v) for p in ready.plans for d in job.devices for v in variants]


def isolated(row: Row) -> bool:
    """Rows measured in a worker of their own: compile (dynamo's caches) and cudnn_benchmark (cuDNN's plan cache)."""
    return row.variant.compile or row.variant.cudnn_benchmark


class WorkerGone(Exception):
    """The worker died or stopped answering; status ("crashed" or "timeout") and reason say how."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def _signal_name(number: int) -> str:
    try:
        return f"{signal.Signals(number).name} (signal {number})"
    except ValueError:
        return f"signal {number}"


def _last_exception(log: str) -> str:
    """The last line of a Python traceback in the log ('OSError: ...'), cut to 200 characters; '' when none."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    if not any(line.startswith("Traceback (most recent call last)") for line in lines):
        return ""
    return lines[-1][:200]


def _innermost_frame(log: str) -> str:
    """The innermost Python frame faulthandler printed for a fatal error ('File "x.py", line 3 in forward') that is
    not in Python's standard library (ctypes.string_at is not where the user's bug is), else the innermost."""
    lines = log.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Fatal Python error")), None)
    if start is None:
        return ""
    frames = [line.strip() for line in lines[start:] if line.strip().startswith("File ")]
    stdlib = sysconfig.get_paths()["stdlib"]
    own = [f for f in frames if not f.startswith(f'File "{stdlib}')]
    return (own or frames or [""])[0]


class Worker:
    """One worker process (`python -c ... bench.measure.worker`), started and made ready; `measure` one row at a
    time; `close` or `kill` it. Its stdout and stderr (a layer's prints, faulthandler's report) go to a
    temporary file, read back only to explain a crash."""

    def __init__(self, side: Side, job: Job, number: int, *, start_limit_s: float = START_LIMIT_S) -> None:
        self.side, self.job, self.number = side, job, number
        self.measured = 0  # rows measured so far
        self.log = tempfile.TemporaryFile()
        parent, child = socket.socketpair()
        code = (f"import sys; sys.path.insert(0, {str(ENGINE)!r}); "
                f"from bench.measure.worker import main; main({child.fileno()})")
        started = time.perf_counter()
        try:
            self.proc = subprocess.Popen([*side.launcher, side.python, "-c", code], pass_fds=[child.fileno()],
                                         stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                         cwd=side.root, env=_worker_env(side.environ))
        except OSError as exc:
            parent.close()
            raise BenchError(Problem(where="worker", field="python" if not side.launcher else "launcher",
                                     expected="an interpreter that can be started",
                                     found=f"{[*side.launcher, side.python][0]}: {exc.strerror or exc}")) from None
        finally:
            child.close()
        self.conn = Connection(parent.detach())
        try:
            try:
                self.conn.send(("init", side, job))
            except OSError:  # the worker is gone already (a broken interpreter): _receive says how it ended
                pass
            message = self._receive(start_limit_s, doing="starting")
        except WorkerGone as gone:
            self.kill()
            raise BenchError(Problem(where=f"{side.name or 'run'} worker", field="start",
                                     expected="a worker process that imports bench and plans the suite",
                                     found=gone.reason)) from None
        if message[0] == "error":
            self.close()
            raise BenchError(Problem(where=f"{side.name} side" if side.name else "worker", field="suite",
                                     expected="a suite the worker can load", found=message[1]))
        self.ready: Ready = message[1]
        self.start_s = time.perf_counter() - started

    def _tail(self) -> str:
        try:
            self.log.seek(0, os.SEEK_END)
            size = self.log.tell()
            self.log.seek(max(0, size - 16384))
            return self.log.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def _receive(self, limit_s: float, *, doing: str):
        try:
            if not self.conn.poll(limit_s):
                self.kill()
                raise WorkerGone("timeout", f"the worker process gave no answer within {limit_s:.3g} s while {doing} "
                                 "and was killed (a hang the in-process deadline could not stop, such as a native loop)")
            return self.conn.recv()
        except (EOFError, OSError, ConnectionError):
            pass
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        tail = self._tail()
        frame = _innermost_frame(tail)
        how = f"died of {_signal_name(-code)}" if code is not None and code < 0 else f"exited with status {code}"
        said = "" if frame else _last_exception(tail)
        raise WorkerGone("crashed", f"the worker process {how} while {doing}" + (f", in {frame}" if frame else "")
                         + (f" ({said})" if said else ""))

    def measure(self, row: Row, *, process: int, policy: Policy | None = None) -> Record:
        """Measure one row; a record whatever happens (crashed or timeout when the worker is gone: then it is dead).
        `process` is the number the record carries (unique within the run); policy: instead of the job's (a block
        of a row measured in several)."""
        self.measured += 1
        limit = (policy or self.job.policy_for(row.device)).row_limit_s * (50 if self.side.launcher else 1) + GRACE_S
        try:
            self.conn.send(("row", row, process, policy))
            message = self._receive(limit, doing="measuring the row")
        except WorkerGone as gone:
            return _lost(self.ready, row, process, gone.status, gone.reason)
        except (OSError, ConnectionError) as exc:  # the worker died between rows
            self.kill()
            return _lost(self.ready, row, process, "crashed", f"the worker process could not be reached ({exc})")
        return message[1]

    def close(self) -> None:
        """Ask the worker to exit; kill it if it has not within a few seconds."""
        try:
            self.conn.send(("exit",))
            self.proc.wait(timeout=10)
        except (OSError, ConnectionError, subprocess.TimeoutExpired):
            self.kill()
        finally:
            self._release()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._release()

    def _release(self) -> None:
        for thing in (self.conn, self.log):
            try:
                thing.close()
            except OSError:
                pass


def _worker_env(extra: tuple[tuple[str, str], ...] = ()) -> dict:
    env = dict(os.environ) | dict(extra)
    env["PYTHONFAULTHANDLER"] = "1"  # a segfault prints the Python stack into the worker's log
    env.pop("PYTHONSTARTUP", None)
    return env


def _lost(ready: Ready, row: Row, process: int, status: str, reason: str) -> Record:
    """The record of a row whose worker died or hung."""
    plan = next(p for p in ready.plans if p.workload.name == row.workload)
    return Record(plan=plan, device=row.device, device_name="", threads=0, status=status, reason=reason,
                  variant=row.variant, process=process)


def _stop(live: list, worker: Worker | None, *, kill: bool = False) -> None:
    """Close (or kill) a worker and forget it."""
    if worker is not None:
        (worker.kill if kill else worker.close)()
        if worker in live:
            live.remove(worker)


@dataclass
class _SideState:
    side: Side
    spare: Worker | None = None  # the first worker, started to learn the rows, used in the first trial
    rows: list[Row] = field(default_factory=list)
    plans: dict[str, Plan] = field(default_factory=dict)
    next_process: int = 0
    cost: WorkerCost = field(default_factory=WorkerCost)


def run_in_workers(sides: Sequence[Side], job: Job, *, processes: int, rng: random.Random,
                   on_record: Callable[[str, Record], None],
                   on_progress: Callable[[Progress], None] | None = None,
                   spawn: Callable[[Side, Job, int], Worker] = Worker) -> dict[str, WorkerCost]:
    """Measure every row of every side in `processes` worker processes each, interleaved as the module says.
    on_record(side name, record) sees each record as soon as it exists. Returns the workers' cost per side.
    A side whose first worker cannot start or load its suite raises BenchError before anything is measured;
    Ctrl-C kills the live workers and propagates."""
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise BenchError(Problem(where="run", field="processes", expected="an integer >= 1", found=repr(processes)))
    live: list[Worker] = []

    def start(state: _SideState) -> Worker:
        worker = spawn(state.side, job, state.next_process)
        live.append(worker)
        state.next_process += 1
        state.cost = state.cost.plus(worker)
        return worker

    stop = partial(_stop, live)

    try:
        states = [_SideState(side=s) for s in sides]
        for state in states:
            state.spare = start(state)
            state.plans = {p.workload.name: p for p in state.spare.ready.plans}
            state.side = replace(state.side, plans=state.spare.ready.plans)  # planning once per side is enough
            state.rows = rows_for(state.spare.ready, job)

        def applicable(state: _SideState, row: Row) -> bool:
            w = state.plans[row.workload].workload
            return not skip_reason(row.variant, device=row.device, input_ndim=len(w.input_shape), workload_dtype=w.dtype)

        total = sum(len(s.rows) + (processes - 1) * sum(applicable(s, r) for r in s.rows) for s in states)
        done, t0 = 0, time.perf_counter()
        for trial in range(processes):
            for state in rng.sample(states, len(states)):
                rows = [r for r in state.rows if trial == 0 or applicable(state, r)]  # n/a rows: once
                worker, state.spare = state.spare, None
                for row in rng.sample(rows, len(rows)):
                    if on_progress:  # wall time per row so far, worker starts included
                        per = (time.perf_counter() - t0) / done if done else job.policy_for(row.device).budget_s
                        on_progress(Progress(index=done + 1, total=total, workload=row.workload, device=row.device,
                                             left_s=per * (total - done), variant=row.variant.name))
                    own = isolated(row) and applicable(state, row)
                    if worker is not None and own and worker.measured:
                        stop(worker)
                        worker = None
                    if worker is None:
                        worker = start(state)
                    process = worker.number
                    began = time.perf_counter()
                    record = worker.measure(row, process=process)
                    state.cost = replace(state.cost, measuring_s=state.cost.measuring_s + time.perf_counter() - began)
                    done += 1
                    on_record(state.side.name, record)
                    if own or record.status in FAILED:  # a fresh worker for what follows
                        stop(worker, kill=record.status in ("crashed", "timeout"))
                        worker = None
                stop(worker)
        return {s.side.name: s.cost for s in states}
    finally:
        for worker in list(live):
            stop(worker, kill=True)


def dumps_workloads(workloads) -> bytes:
    """Workloads given in code, pickled by value for the workers with cloudpickle: lambdas, closures, partials, and
    the functions and classes of the caller's own modules (a script's __main__, a notebook, a test file: modules a
    worker process may not import) travel as code; installed packages and bench travel by reference. BenchError
    naming the first workload that cannot be pickled even so (a factory holding a lock or an open file)."""
    import sys
    import sysconfig

    import cloudpickle

    from bench.errors import one_line

    installed = tuple(p for p in {sysconfig.get_paths()[k] for k in ("purelib", "platlib", "stdlib")} if p)

    def own(obj, depth=0):
        """The modules of obj's code (a partial's function and arguments, a callable object's fields) that are
        the caller's own: not bench, not installed, not built in."""
        parts = [obj.func, *obj.args, *obj.keywords.values()] if isinstance(obj, functools.partial) else [obj]
        found = set()
        for part in parts:
            name = getattr(part, "__module__", None) or type(part).__module__
            module = sys.modules.get(name)
            path = getattr(module, "__file__", None) or ""
            if name not in ("__main__", "builtins") and not name.split(".")[0] == "bench" and path and \
                    not path.startswith(installed):
                found.add(module)
            if depth < 2 and not isinstance(part, type) and hasattr(part, "__dict__") and callable(part):
                for value in vars(part).values():
                    found |= own(value, depth + 1) if callable(value) else set()
        return found

    modules = set().union(*(own(w.module) for w in workloads)) if workloads else set()
    for module in modules:
        cloudpickle.register_pickle_by_value(module)
    try:
        for w in workloads:
            try:
                cloudpickle.dumps(w)
            except Exception as exc:  # noqa: BLE001 - pickling raises several types; the message says which workload
                raise BenchError(Problem(
                    where="<python>", workload=str(w.name), field="module",
                    expected="a factory that pickles by value (cloudpickle), or processes=0 to measure in this process",
                    found=f"{type(w.module).__name__} that does not pickle ({one_line(exc)})"[:200])) from None
        return cloudpickle.dumps(tuple(workloads))
    finally:
        for module in modules:
            cloudpickle.unregister_pickle_by_value(module)


def run_pairs(base: Side, cand: Side, job: Job, *, pairs: int, blocks: int, rng: random.Random,
              on_record: Callable[[str, Record], None],
              on_progress: Callable[[Progress], None] | None = None,
              spawn: Callable[[Side, Job, int], Worker] = Worker,
              versions: Callable[[str, dict], None] | None = None, first_pair: int = 0,
              only: Callable[[Row], bool] | None = None) -> dict[str, WorkerCost]:
    """`bench ab`'s schedule: `pairs` pairs of workers, one per side, alive together. For each row (in a random
    order per pair) the two alternate `blocks` short blocks, A then B or B then A at random each time, so both
    sides meet the same moments of a noisy machine (a burst of load, a busy neighbour) and each pair gives a ratio
    of two processes that ran side by side in time (duet benchmarking, Bulej et al., ICPE 2020, alternated
    rather than simultaneous: the processes never compete for a core). A row is kept built in its worker between
    its blocks; its first block warms up for the job's warm-up, later ones briefly. Records carry the pair's
    number as their process on both sides: bench.gate pairs them. Rows only one side has are measured alone.
    versions(side name, {python, torch, cuda}) hears what each side's first worker runs. Extra pairs for some rows
    (bench.api.ab): first_pair numbers the pairs from there on, only(row) picks the rows they measure."""
    for name, value in (("processes", pairs), ("blocks", blocks)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BenchError(Problem(where="ab", field=name, expected="an integer >= 1", found=repr(value)))
    live: list[Worker] = []
    costs = {s.name: WorkerCost() for s in (base, cand)}

    def start(side: Side, number: int) -> Worker:
        worker = spawn(side, job, number)
        live.append(worker)
        costs[side.name] = costs[side.name].plus(worker)
        return worker

    stop = partial(_stop, live)

    def block_policy(policy: Policy, first: bool) -> Policy:
        per_block = policy.budget_s / blocks
        return replace(policy, budget_s=per_block, warmup_s=policy.warmup_s if first else min(policy.warmup_s, 0.01),
                       min_samples=min(policy.min_samples, policy.floor_samples + 2),
                       max_samples=max(policy.floor_samples, policy.max_samples // blocks))

    try:
        workers = {}
        for side in rng.sample([base, cand], 2):  # the first pair: started now, to learn each side's rows
            workers[side.name] = start(side, first_pair)
            if versions:
                versions(side.name, workers[side.name].ready.versions)
            side_plans = workers[side.name].ready.plans
            if side is base:
                base = replace(base, plans=side_plans)
            else:
                cand = replace(cand, plans=side_plans)
        rows = {name: rows_for(w.ready, job) for name, w in workers.items()}
        plans = {name: {p.workload.name: p for p in w.ready.plans} for name, w in workers.items()}

        def applicable(name: str, row: Row) -> bool:
            w = plans[name][row.workload].workload
            return not skip_reason(row.variant, device=row.device, input_ndim=len(w.input_shape), workload_dtype=w.dtype)

        union = [r for r in dict.fromkeys(rows[base.name] + rows[cand.name]) if only is None or only(r)]
        total = pairs * blocks * sum(2 if r in rows[base.name] and r in rows[cand.name] else 1 for r in union)
        done, t0 = 0, time.perf_counter()
        # Each pair's workers start after the previous pair is done, never while a pair measures: on two cores an
        # interpreter importing torch beside the measuring one widened the spread of the pairs' ratios about 2x
        # (IQR 9-69% against 6-37%, smoke suite, 8 pairs, docs/gate.md), for 25% less wall time.
        for pair in range(first_pair, first_pair + pairs):
            if pair != first_pair:
                workers = {side.name: start(side, pair) for side in rng.sample([base, cand], 2)}
            for row in rng.sample(union, len(union)):
                names = [n for n in (base.name, cand.name) if row in rows[n]
                         and (pair == first_pair or applicable(n, row))]
                own = isolated(row) and any(applicable(n, row) for n in names)
                for name in names:  # compile and cudnn_benchmark rows: a fresh worker of their own on each side
                    if workers.get(name) is None or (own and workers[name].measured):
                        stop(workers.get(name))
                        workers[name] = start(base if name == base.name else cand, pair)
                failed = set()
                for b in range(blocks if any(applicable(n, row) for n in names) else 1):
                    for name in rng.sample(names, len(names)):
                        if name in failed:
                            continue
                        if on_progress:  # wall time per block so far, worker starts included
                            per = (time.perf_counter() - t0) / done if done else job.policy_for(row.device).budget_s / blocks
                            on_progress(Progress(index=done + 1, total=total, workload=row.workload, device=row.device,
                                                 left_s=per * (total - done), variant=row.variant.name))
                        began = time.perf_counter()
                        record = workers[name].measure(row, process=pair,
                                                       policy=block_policy(job.policy_for(row.device), b == 0))
                        done += 1
                        c = costs[name]
                        costs[name] = replace(c, measuring_s=c.measuring_s + time.perf_counter() - began)
                        on_record(name, record)
                        if record.status in FAILED:  # this side's row is done for this pair; a fresh worker next
                            failed.add(name)
                            stop(workers[name], kill=record.status in ("crashed", "timeout"))
                            workers[name] = None
                if own:
                    for name in names:
                        stop(workers.get(name))
                        workers[name] = None
            for worker in workers.values():
                stop(worker)
        return costs
    finally:
        for worker in list(live):
            stop(worker, kill=True)


def count_instructions(side: Side, job: Job, *, on_record: Callable[[str, Record], None],
                       spawn: Callable[[Side, Job, int], Worker] = Worker, layouts: int | None = None) -> None:
    """`--metric instructions`: workers under callgrind (bench.measure.instructions) measure every CPU row, for its
    instruction count only: their records carry no samples (times under valgrind mean nothing). One worker per
    memory layout (`layouts`, default instructions.LAYOUTS), each with its own environment padding, run at once
    (a count does not depend on the load); the records of layout i carry process -1 - i, and the row's count is
    the lowest of them (bench.store.frames). BenchError (one line) when valgrind, its header or a C compiler is
    missing."""
    from bench.measure.instructions import LAYOUTS, build_library, counter_environ, default_folder, launcher

    library = build_library(default_folder())
    out = Path(tempfile.mkdtemp(prefix="bench-callgrind-"))
    tiny = replace(job.policy, budget_s=0.0, warmup_s=0.0, min_samples=job.policy.floor_samples)
    counted = replace(job, policy=tiny, metric="instructions", counter_library=str(library), counter_out=str(out))
    found: queue.Queue = queue.Queue()
    live: list[Worker] = []  # killed if the caller stops early (Ctrl-C): joining would wait for whole suites

    def one_layout(layout: int) -> None:
        number = -1 - layout
        folder = out / str(layout)  # each worker its own dump folder: a worker reads back only its own dumps
        folder.mkdir()
        traced = replace(side, launcher=launcher(folder), environ=(*side.environ, *counter_environ(layout, library)))
        laid = replace(counted, counter_out=str(folder))
        worker = None
        try:
            worker = spawn(traced, laid, number)
            live.append(worker)
            for row in [r for r in rows_for(worker.ready, laid) if r.device == "cpu"]:
                if worker is None:
                    worker = spawn(traced, laid, number)
                    live.append(worker)
                record = worker.measure(row, process=number)
                found.put(replace(record, measurement=None))
                if record.status in FAILED:
                    worker.kill()
                    worker = None
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, raised there
            found.put(exc)
        finally:
            if worker is not None:
                worker.close()
            found.put(None)

    count = layouts or LAYOUTS
    threads = [threading.Thread(target=one_layout, args=(i,), name=f"bench-counter-{i}", daemon=True)
               for i in range(count)]
    finished = False
    try:
        for t in threads:
            t.start()
        done, error = 0, None
        while done < count:  # records reach the caller in its own thread, as they come
            item = found.get()
            if item is None:
                done += 1
            elif isinstance(item, BaseException):
                error = error or item
            else:
                on_record(side.name, item)
        finished = True
        if error is not None:
            raise error
    finally:
        if not finished:
            for worker in list(live):
                worker.kill()
        for t in threads:
            t.join()
        shutil.rmtree(out, ignore_errors=True)
