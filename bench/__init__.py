"""layerbench: time PyTorch layers truthfully on CPU and CUDA, and gate CI on regressions.

The Python API (bench.api): check, run, ab, layers (a model's distinct layers as workloads), attribution, load,
compare, make_report, peaks, history, import_runs, merge, add_to_history; the records they return or take: Run,
Workload, TensorSpec, Model. `bench.report` is the package that builds and renders reports. Names are imported on
first use (PEP 562), so `from bench import Workload` in a config, or a worker process, does not pay for pandas
and matplotlib.
"""
from __future__ import annotations

import importlib

_WHERE = {
    "BenchError": "bench.errors", "Problem": "bench.errors", "Run": "bench.store.folder",
    "Variant": "bench.suite.variants", "Workload": "bench.suite.workload", "TensorSpec": "bench.suite.inputs",
    "LayerOrigin": "bench.suite.workload", "Model": "bench.suite.models", "layers": "bench.api",
    **{name: "bench.api" for name in ("ab", "add_to_history", "attribution", "check", "compare", "comparison",
                                      "history", "import_runs", "load", "make_report", "merge", "peaks", "run")},
}
__all__ = sorted(_WHERE)  # noqa: PLE0605 - the names are the keys of _WHERE, listed once
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'bench' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
