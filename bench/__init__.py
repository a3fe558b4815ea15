"""layerbench: time PyTorch layers truthfully on CPU and CUDA, and gate CI on regressions.

The Python API (bench.api): check, run, load, compare, report, peaks; the records they return: Run, Workload.
"""
from bench.api import check, compare, comparison, load, peaks, report, run
from bench.errors import BenchError, Problem
from bench.store.folder import Run
from bench.suite.variants import Variant
from bench.suite.workload import Workload

__all__ = ["BenchError", "Problem", "Run", "Variant", "Workload", "check", "compare", "comparison", "load", "peaks",
           "report", "run"]
__version__ = "0.1.0"
