"""Workloads given in code, carried to worker processes: pickled by the caller, unpickled by the worker.

A config file is imported again by each worker; workloads given in code (bench.run([Workload(...)])) have no file
to import, so they travel pickled, and their module factories must pickle by reference to an importable module.
"""
from __future__ import annotations

import functools
import pickle
from typing import Sequence

from bench.errors import BenchError, Problem
from bench.suite.workload import Workload


def dumps_workloads(workloads: Sequence[Workload]) -> bytes:
    """Workloads given in code, pickled for the workers; BenchError naming the first that cannot be (a lambda)."""
    expected = ("a factory a worker process can rebuild (a class or function defined at module level in an importable "
                "module, or a functools.partial of one), or processes=0 to measure in this process")
    for w in workloads:
        factory = w.module.func if isinstance(w.module, functools.partial) else w.module
        if getattr(factory, "__module__", "") == "__main__":  # pickles by reference, but a worker has no such __main__
            raise BenchError(Problem(where="<python>", workload=str(w.name), field="module", expected=expected,
                                     found=f"{getattr(factory, '__qualname__', factory)!r} defined in __main__"))
        try:
            pickle.dumps(w)
        except Exception as exc:  # noqa: BLE001 - pickle raises several types; the message says which workload
            raise BenchError(Problem(where="<python>", workload=str(w.name), field="module", expected=expected,
                                     found=f"{type(w.module).__name__} that does not pickle ({exc})"[:200])) from None
    return pickle.dumps(tuple(workloads))


def loads_workloads(data: bytes) -> tuple[Workload, ...]:
    """What dumps_workloads made, in the worker (the same engine wrote it: never data from elsewhere)."""
    return pickle.loads(data)
