"""What crosses the socket between the runner and a worker process, and nothing more: the worker imports this.

The protocol is pickled tuples over a socket pair between two processes of the same engine (this package), never
read from anywhere else. The parent sends INIT (Side, Job) once, then ROW (Row, process, Policy or None) per row,
then EXIT; the worker answers READY (Ready) or ERROR (one line) to INIT, and RECORD (Record) to each ROW. Records
come back with their plan's workload stripped of its module factory (a lambda does not pickle): the frames need
only the declaration's data.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace

from bench.measure.sampling import Policy
from bench.suite.variants import Variant
from bench.suite.workload import Plan

INIT, READY, ERROR, ROW, RECORD, EXIT = "init", "ready", "error", "row", "record", "exit"  # the messages' first items


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
    factory), the suite's own VARIANTS, and where its start went: import_s from the interpreter's start to torch
    and bench imported, config_s loading the side's configs (their own imports) and planning them."""

    plans: tuple[Plan, ...]
    variants: tuple[Variant, ...]
    import_s: float
    config_s: float = 0.0
    versions: dict = field(default_factory=dict)  # the worker's python, torch and CUDA (another with --base-python)


def strip(plan: Plan) -> Plan:
    """The plan without its workload's module factory (a lambda does not pickle; the data is all a record needs)."""
    return replace(plan, workload=replace(plan.workload, module=None))
