"""layerbench: time PyTorch layers truthfully on CPU and CUDA, and gate CI on regressions."""
from bench.errors import BenchError, Problem
from bench.suite.workload import Workload

__all__ = ["BenchError", "Problem", "Workload"]
__version__ = "0.1.0"
