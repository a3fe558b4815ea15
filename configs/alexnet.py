"""AlexNet at the seed's input, layer by layer and whole, and the seed's Fashion-MNIST layers as one network.

The seed's [256, 3, 227, 227] batch through an 11x11 Conv2d is AlexNet's first layer: torchvision's AlexNet (random
weights, never downloaded) at that input gives every distinct layer a row of its own, with its count, and the whole
model a row beside them. The Fashion-MNIST network is the seed's m2, Flatten then Linear(784, 10), on its
[256, 1, 28, 28] batch. `make bench CONFIG=alexnet` measures both (torchvision comes with `make setup`).
"""
import functools

from torch import nn

from bench import Model
from bench.suite.vision import torchvision

models = torchvision().models

MODELS = [
    Model(name="alexnet", factory=functools.partial(models.alexnet, weights=None), inputs=(256, 3, 227, 227)),
    Model(name="fashion-mnist", factory=lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 10)),
          inputs=(256, 1, 28, 28)),
]
