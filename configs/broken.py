"""Workloads that cannot run, kept to show the messages `bench list` gives (and used by the tests).

`python -m bench list broken` exits with status 2 and one line per problem, the seed's own channel
mismatch first.
"""
from torch import nn

from bench import Workload

WORKLOADS = [
    Workload(name="seed-conv5-on-rgb", module=lambda: nn.Conv2d(5, 4, 4), input_shape=(256, 3, 227, 227),
             note="the seed's mismatch: a 5-channel kernel on a 3-channel input"),
    Workload(name="linear-wrong-in", module=lambda: nn.Linear(784, 10), input_shape=(256, 1, 28, 28)),
    Workload(name="kernel-too-big", module=lambda: nn.Conv2d(3, 8, 11), input_shape=(2, 3, 8, 8)),
    Workload(name="bad-groups", module=lambda: nn.Conv2d(6, 8, 3, groups=4), input_shape=(2, 6, 8, 8)),
    Workload(name="zero-batch", module=lambda: nn.Linear(4, 4), input_shape=(0, 4)),
    Workload(name="not-a-module", module=lambda: "Linear(4, 4)", input_shape=(2, 4)),
]
