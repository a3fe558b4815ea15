"""layerbench: time PyTorch layers truthfully on CPU and CUDA, and gate CI on regressions.

The Python API (bench.api): check, run, ab, load, compare, report, peaks, history, import_runs, merge, record, layers
(a model's distinct layers as workloads); the records they return or take: Run, Workload, TensorSpec, Model.
Names are imported on first use (PEP 562), so `from bench import Workload` in a config, or a worker process, does
not pay for pandas and matplotlib.
"""
from __future__ import annotations

import importlib

_WHERE = {
    "BenchError": "bench.errors", "Problem": "bench.errors", "Run": "bench.store.folder",
    "Variant": "bench.suite.variants", "Workload": "bench.suite.workload", "TensorSpec": "bench.suite.inputs",
    "LayerOrigin": "bench.suite.workload", "Model": "bench.suite.models", "layers": "bench.api",
    **{name: "bench.api" for name in ("ab", "check", "compare", "comparison", "history", "import_runs", "load", "merge",
                                            "peaks", "record", "report", "run")},
}
__all__ = sorted(_WHERE)
__version__ = "0.1.0"

# `bench.report` is both a subpackage and an API function. Importing a subpackage binds its name on the parent
# once, when it is first loaded: load it now (its __init__ is light), then unbind the name, so that `bench.report`
# is the function (resolved below) whatever is imported later.
import bench.report  # noqa: E402

del report  # noqa: F821 - bound by the import above


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'bench' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
