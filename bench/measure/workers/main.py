"""The worker program: measures rows one at a time for its parent (bench.measure.workers.process), in its own
process.

Started as `python -c "...; from bench.measure.workers.main import main; main(FD)"` with FD one end of a socket pair.
It receives ("init", Side, Job), loads and plans the side's suite (its configs' imports resolve under the side's
root first: a worktree of the base ref in `bench ab`), answers ("ready", Ready) or ("error", one line), then
answers each ("row", Row, process, Policy or None) with ("record", Record) until ("exit",) or the parent goes away
(bench.measure.workers.protocol).

Heavy imports happen inside main, after the clock starts, so the start-up cost it reports is the real one: the
imports of torch and bench (Ready.import_s) apart from loading the configs and planning them (Ready.config_s).
"""
from __future__ import annotations

import time

_STARTED = time.perf_counter()


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker when its parent dies (a killed `bench run` leaves no worker behind)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(fd: int) -> None:
    import signal
    import sys
    from multiprocessing.connection import Connection

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the workers
    _die_with_parent()
    conn = Connection(fd)
    try:
        _, side, job = conn.recv()
    except (EOFError, OSError):
        return
    if side.root:
        sys.path.insert(0, side.root)  # the code under test first; this engine's `bench` is already imported
    from dataclasses import replace

    import torch

    from bench.errors import BenchError, one_line
    from bench.measure.apply import applied
    from bench.measure.clock import default_timer
    from bench.measure.record import Record
    from bench.measure.runner import run_one
    from bench.measure.workers.protocol import ERROR, READY, RECORD, ROW, Ready, strip
    from bench.suite.config import Suite, from_workloads, load_suite, matches
    from bench.suite.pickling import loads_workloads
    from bench.suite.plan import check
    from bench.suite.variants import Variant

    import_s = time.perf_counter() - _STARTED
    try:
        if side.workloads is not None:
            suite = Suite(configs=(from_workloads(loads_workloads(side.workloads)),))
        else:
            suite = load_suite(list(side.configs))
        if side.plans:  # planned by the side's first worker: only the module factories are needed from the configs
            declared = {d.workload.name: d.workload for d in suite.declared}
            plans = [replace(p, workload=declared[p.workload.name]) for p in side.plans if p.workload.name in declared]
        else:
            plans = [p for p in check(suite.declared) if matches(p.workload, side.filter)
                     and (not side.names or p.workload.name in side.names)]
    except BenchError as exc:
        conn.send((ERROR, str(exc)))
        return
    except Exception as exc:  # noqa: BLE001 - a config that cannot even load: the parent reports it in one line
        conn.send((ERROR, one_line(exc)))
        return
    by_name = {p.workload.name: p for p in plans}
    versions = dict(python=sys.version.split()[0], torch=torch.__version__, cuda=torch.version.cuda or "")
    conn.send((READY, Ready(plans=tuple(strip(p) for p in plans), variants=suite.variants, import_s=import_s,
                            config_s=time.perf_counter() - _STARTED - import_s, versions=versions)))
    keep: dict = {}  # the row being measured in blocks (bench ab): built once, reused by its next blocks
    counter = None
    if job.metric == "instructions":
        from bench.measure.instructions import Counter

        counter = Counter(job.counter_library, job.counter_out)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] != ROW:
            return
        _, row, process, policy = message
        plan = by_name[row.workload]
        try:
            with applied(Variant(threads=job.threads)):
                record = run_one(plan, row.device, timer=default_timer(row.device),
                                 policy=policy or job.policy_for(row.device), variant=row.variant, counter=counter,
                                 keep=keep)
        except SystemExit as exc:  # a layer that calls sys.exit() ends its row, not the worker's answer
            record = Record(plan=plan, device=row.device, device_name="", threads=torch.get_num_threads(),
                            status="error", variant=row.variant,
                            reason=f"the layer called sys.exit({exc.code!r}) while measured")
        conn.send((RECORD, replace(record, plan=strip(plan), process=process)))
        sys.stdout.flush()
