"""Workloads given in code, carried to worker processes: pickled by the caller, unpickled by the worker.

A config file is imported again by each worker; workloads given in code (bench.run([Workload(...)])) have no file
to import, so they travel pickled. cloudpickle (the library Dask, Ray and joblib use for this job) pickles by value
what a worker process could not import by name: lambdas, closures, partials, and the functions and classes of the
caller's own modules (a script's __main__, a notebook, a test file). Installed packages and bench travel by
reference, as plain pickle would send them.
"""
from __future__ import annotations

import functools
import pickle
import sys
import sysconfig
from collections.abc import Sequence

import cloudpickle

from bench.errors import BenchError, Problem, one_line
from bench.suite.workload import Workload

OWN_DEPTH = 2  # how deep a callable object's fields are searched for the caller's own modules


def _installed() -> tuple[str, ...]:
    return tuple(p for p in {sysconfig.get_paths()[k] for k in ("purelib", "platlib", "stdlib")} if p)


def own_modules(obj, installed: tuple[str, ...], depth: int = 0) -> set:
    """The modules of obj's code (a partial's function and arguments, a callable object's fields) that are the
    caller's own: not bench, not installed, not built in. Those are pickled by value."""
    parts = [obj.func, *obj.args, *obj.keywords.values()] if isinstance(obj, functools.partial) else [obj]
    found = set()
    for part in parts:
        name = getattr(part, "__module__", None) or type(part).__module__
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None) or ""
        if name not in ("__main__", "builtins") and name.split(".")[0] != "bench" and path \
                and not path.startswith(installed):
            found.add(module)
        if depth < OWN_DEPTH and not isinstance(part, type) and hasattr(part, "__dict__") and callable(part):
            for value in vars(part).values():
                found |= own_modules(value, installed, depth + 1) if callable(value) else set()
    return found


def dumps_workloads(workloads: Sequence[Workload]) -> bytes:
    """Workloads given in code, pickled for the workers; BenchError naming the first workload that cannot be pickled
    even by value (a factory holding a lock or an open file)."""
    installed = _installed()
    modules = set().union(*(own_modules(w.module, installed) for w in workloads)) if workloads else set()
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


def loads_workloads(data: bytes) -> tuple[Workload, ...]:
    """What dumps_workloads made, in the worker (the same engine wrote it: never data from elsewhere). Plain pickle
    reads cloudpickle's output; the functions pickled by value refer to cloudpickle's helpers, imported above."""
    return pickle.loads(data)
