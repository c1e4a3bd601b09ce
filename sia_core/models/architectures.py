"""Small convolutional classifiers sized for 28x28 and 32x32 images on a CPU.

Every architecture splits into `features` (input -> penultimate vector) and a linear `head`,
which the margin and feature lenses need.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from sia_core.errors import ConfigError

ArchitectureBuilder = Callable[[int, int, int], "SplitClassifier"]


class SplitClassifier(nn.Module):
    """`features` maps normalized images to a vector; `head` is the final linear layer."""

    def __init__(self, features: nn.Sequential, head: nn.Linear) -> None:
        super().__init__()
        self.features = features
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def small_cnn(in_channels: int, image_size: int, num_classes: int) -> SplitClassifier:
    """Four 3x3 convs (32-32-64-64) with two max-pools, then 128 hidden units: ~0.5M parameters."""
    pooled = image_size // 4
    features = nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * pooled * pooled, 128), nn.ReLU(),
    )
    return SplitClassifier(features, nn.Linear(128, num_classes))


def tiny_cnn(in_channels: int, image_size: int, num_classes: int) -> SplitClassifier:
    """Two strided 5x5 convs (32-64) and 128 hidden units: fast enough for adversarial training on a CPU."""
    reduced = (image_size + 3) // 4
    features = nn.Sequential(
        nn.Conv2d(in_channels, 32, 5, stride=2, padding=2), nn.ReLU(),
        nn.Conv2d(32, 64, 5, stride=2, padding=2), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64 * reduced * reduced, 128), nn.ReLU(),
    )
    return SplitClassifier(features, nn.Linear(128, num_classes))


def mlp(in_channels: int, image_size: int, num_classes: int) -> SplitClassifier:
    """A two-hidden-layer perceptron; a contrast to the CNNs in transfer studies."""
    features = nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_channels * image_size * image_size, 256), nn.ReLU(),
        nn.Linear(256, 128), nn.ReLU(),
    )
    return SplitClassifier(features, nn.Linear(128, num_classes))


def vgg_slim(in_channels: int, image_size: int, num_classes: int, width: int = 16) -> SplitClassifier:
    """VGG-style (Simonyan & Zisserman 2015) and, like VGG, without batch norm: three blocks of two 3x3 convs
    (16-32-64 channels), each closed by a max-pool, then global average pooling; ~73k parameters, ~10M
    multiply-adds per 32x32 image. One more family for the transfer study beside the MLP, the plain CNNs and the
    residual network with batch norm."""
    del image_size  # the global pooling takes any size
    layers: list[nn.Module] = []
    channels = in_channels
    for block in range(3):
        out = width * 2 ** block
        layers += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU(), nn.Conv2d(out, out, 3, padding=1), nn.ReLU(),
                   nn.MaxPool2d(2)]
        channels = out
    features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return SplitClassifier(features, nn.Linear(channels, num_classes))


def _conv_bn(in_channels: int, out_channels: int, pool: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                               nn.BatchNorm2d(out_channels), nn.ReLU()]
    return nn.Sequential(*layers, nn.MaxPool2d(2)) if pool else nn.Sequential(*layers)


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_bn(channels, channels), _conv_bn(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def resnet9_slim(in_channels: int, image_size: int, num_classes: int, width: int = 16) -> SplitClassifier:
    """ResNet-9 (the fast CIFAR-10 network of Page's DAWNBench entry) at a quarter of its width: 16-32-64-128
    channels, ~0.4M parameters, ~25M multiply-adds per 32x32 image; batch norm, two residual blocks, global max
    pooling. Small enough to train on all 50,000 CIFAR-10 images on a CPU, large enough for 80% and more."""
    del image_size  # the global pooling takes any size
    features = nn.Sequential(
        _conv_bn(in_channels, width),
        _conv_bn(width, 2 * width, pool=True), _Residual(2 * width),
        _conv_bn(2 * width, 4 * width, pool=True),
        _conv_bn(4 * width, 8 * width, pool=True), _Residual(8 * width),
        nn.AdaptiveMaxPool2d(1), nn.Flatten(),
    )
    return SplitClassifier(features, nn.Linear(8 * width, num_classes))


def efficientnet_lite0(in_channels: int, image_size: int, num_classes: int) -> SplitClassifier:
    """EfficientNet-Lite0 (sia_core.models.efficientnet_lite), RGB at any size (224 px: its ImageNet weights')."""
    from sia_core.models.efficientnet_lite import HEAD_CHANNELS, EfficientNetLite0Trunk

    del image_size  # global average pooling takes any size
    if in_channels != 3:
        raise ConfigError(f"efficientnet-lite0 takes RGB images (3 channels), not {in_channels}.")
    return SplitClassifier(EfficientNetLite0Trunk(), nn.Linear(HEAD_CHANNELS, num_classes))  # type: ignore[arg-type]


ARCHITECTURES: dict[str, ArchitectureBuilder] = {"small-cnn": small_cnn, "tiny-cnn": tiny_cnn, "mlp": mlp,
                                                 "resnet9-slim": resnet9_slim, "vgg-slim": vgg_slim,
                                                 "efficientnet-lite0": efficientnet_lite0}
# architectures whose pretrained weights come from an installed package instead of a shipped weights file
PACKAGED_WEIGHTS = {"efficientnet-lite0": "sia_core.models.efficientnet_lite:packaged_state",
                    "mtcnn-onet": "sia_core.models.onet:packaged_state"}  # keypoints: sia_core.keypoints.models


def build_architecture(name: str, in_channels: int, image_size: int, num_classes: int) -> SplitClassifier:
    if name not in ARCHITECTURES:
        raise ConfigError(f"Unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}.")
    return ARCHITECTURES[name](in_channels, image_size, num_classes)


def reinitialize(network: nn.Module, generator: torch.Generator) -> nn.Module:
    """Redraw every conv and linear layer with PyTorch's default initialization, from `generator` instead of the
    process's global one (seeding that would reseed every other session of a server). Returns `network`."""
    with torch.no_grad():
        for layer in network.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
                if layer.bias is not None:
                    fan_in = layer.weight[0].numel()
                    nn.init.uniform_(layer.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in), generator=generator)
    return network
