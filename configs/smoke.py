"""Tiny workloads that finish in seconds: for the tests, CI and the regression gate's A/A runs."""
from torch import nn

from bench import Workload

WORKLOADS = [
    Workload(name="smoke-linear", module=lambda: nn.Linear(64, 32), input_shape=(16, 64), tags=("smoke",)),
    Workload(name="smoke-mlp",
             module=lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)),
             input_shape=(32, 1, 8, 8), tags=("smoke",)),
    Workload(name="smoke-conv", module=lambda: nn.Conv2d(3, 8, 3, padding=1), input_shape=(4, 3, 16, 16),
             tags=("smoke", "conv")),
    Workload(name="smoke-flatten", module=nn.Flatten, input_shape=(8, 2, 4, 4), tags=("smoke",)),
]
