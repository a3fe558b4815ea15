"""The seed tutorial's workloads (see ../shared/seed/NOTES.md): how Flatten, Linear and Conv2d shape a tensor.

A Fashion-MNIST batch is [256, 1, 28, 28]. The tutorial's conv example comments an output of
[128, 3, 14, 6]; the true output of Conv2d(3, 3, 11) on [256, 3, 227, 227] is [256, 3, 217, 217].
Its Conv2d(5, 4, 4) does not fit a 3-channel input: here it runs on the [N, 5, 16, 8] input its worked
numbers use (see configs/broken.py for the mismatch and the message it gets).
"""
from torch import nn

from bench import Workload

FASHION_MNIST_BATCH = (256, 1, 28, 28)

WORKLOADS = [
    Workload(name="seed-flatten", module=nn.Flatten, input_shape=FASHION_MNIST_BATCH,
             note="a view: no kernel runs", tags=("seed",)),
    Workload(name="seed-linear28x10", module=lambda: nn.Linear(28, 10), input_shape=FASHION_MNIST_BATCH,
             note="Linear acts on the last dim only: [256, 1, 28, 10]", tags=("seed",)),
    Workload(name="seed-flatten-linear784x10", module=lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 10)),
             input_shape=FASHION_MNIST_BATCH, note="the tutorial's m2: softmax-regression logits", tags=("seed",)),
    Workload(name="seed-linear8x3", module=lambda: nn.Linear(8, 3), input_shape=(128, 64, 16, 8),
             note="example 2: last dim 8 -> 3", tags=("seed",)),
    Workload(name="seed-conv11", module=lambda: nn.Conv2d(3, 3, kernel_size=11), input_shape=(256, 3, 227, 227),
             note="about 26 GFLOP per forward pass", tags=("seed", "conv")),
    Workload(name="seed-conv4", module=lambda: nn.Conv2d(5, 4, 4), input_shape=(256, 5, 16, 8),
             note="the worked numbers: 13 = (16 - 4)/1 + 1, 5 = (8 - 4)/1 + 1", tags=("seed", "conv")),
]
