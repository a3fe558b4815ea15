"""Three public architectures layer by layer and whole, at batch 1 so a CPU run takes minutes: a ResNet, a
MobileNet (depthwise convolutions) and a Vision Transformer (attention). torchvision's models with random weights
(never downloaded); `make setup` installs torchvision when none is importable."""
import functools

from bench import Model
from bench.suite.vision import torchvision

models = torchvision().models
IMAGE = (1, 3, 224, 224)

MODELS = [
    Model(name="resnet18", factory=functools.partial(models.resnet18, weights=None), inputs=IMAGE),
    Model(name="mobilenet_v3_small", factory=functools.partial(models.mobilenet_v3_small, weights=None), inputs=IMAGE),
    Model(name="vit_b_16", factory=functools.partial(models.vit_b_16, weights=None), inputs=IMAGE),
]
