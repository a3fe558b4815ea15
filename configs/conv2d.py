"""Conv2d layers from well-known networks, at the shapes those networks feed them.

Batch 32 unless a figure in ANCHORS.md uses another shape (then that shape, so the numbers compare).
"""
from torch import nn

from bench import Workload


def conv(name, cin, cout, k, hw, *, stride=1, padding=0, groups=1, batch=32, note=""):
    return Workload(
        name=name,
        module=lambda: nn.Conv2d(cin, cout, k, stride=stride, padding=padding, groups=groups),
        input_shape=(batch, cin, hw, hw),
        tags=("conv",),
        note=note,
    )


WORKLOADS = [
    conv("alexnet-conv1", 3, 96, 11, 227, stride=4, batch=256, note="AlexNet's first layer (ANCHORS: 2199 us on H100)"),
    conv("alexnet-conv2", 96, 256, 5, 27, padding=2, note="AlexNet conv2"),
    conv("vgg16-conv1_2", 64, 64, 3, 224, padding=1, batch=8, note="VGG-16 block 1, 3x3 at full resolution"),
    conv("resnet50-stem", 3, 64, 7, 224, stride=2, padding=3, note="ResNet-50 7x7 stem"),
    conv("resnet-3x3-c64", 64, 64, 3, 56, padding=1, batch=64, note="ResNet stage 1 3x3 (ANCHORS: 216 us on H100)"),
    conv("resnet50-1x1-reduce", 256, 64, 1, 56, note="ResNet-50 bottleneck 1x1 reduce"),
    conv("resnet50-1x1-expand", 64, 256, 1, 56, note="ResNet-50 bottleneck 1x1 expand"),
    conv("resnet50-3x3-c512", 512, 512, 3, 7, padding=1, note="ResNet-50 stage 4 3x3"),
    conv("mobilenetv2-dw3x3", 144, 144, 3, 56, padding=1, groups=144, note="MobileNetV2 depthwise 3x3"),
]
