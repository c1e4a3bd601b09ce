"""How size-dependent engine settings follow the image size: pixel lengths and batch sizes, in one place.

Both rules are the identity up to 32 px, so results on the shipped 28 and 32 px models do not change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

REFERENCE_SIZE = 32  # px: settings given in pixels were tuned on 28 and 32 px images
# 16 RGB images of 224 x 224 per forward pass: a ResNet-18 backward on that many stays near 2 GB
DEFAULT_BUDGET_ELEMENTS = 16 * 3 * 224 * 224
# a data-center GPU holds far more: 32x the budget (25,000 CIFAR-10 images a pass) keeps its cores busy
CUDA_BUDGET_FACTOR = 32

ImageShape = Sequence[int]  # (C, H, W), or (N, C, H, W): the last three count


def _chw(image_shape: ImageShape) -> tuple[int, int, int]:
    if len(image_shape) < 3:
        raise ValueError(f"an image shape is (C, H, W) or (N, C, H, W), got {tuple(image_shape)}")
    channels, height, width = (int(v) for v in image_shape[-3:])
    if min(channels, height, width) < 1:
        raise ValueError(f"image dimensions must be positive, got {tuple(image_shape)}")
    return channels, height, width


def pixel_scale(image_shape: ImageShape) -> float:
    """max(1, min(H, W) / 32): how much longer one "reference pixel" is on this image (7.0 at 224 px)."""
    _, height, width = _chw(image_shape)
    return max(1.0, min(height, width) / REFERENCE_SIZE)


def scaled_pixels(pixels: int, image_shape: ImageShape) -> int:
    """A length given in reference pixels (tuned at 28 and 32 px), in this image's pixels: at least 1."""
    return max(1, round(pixels * pixel_scale(image_shape)))


def batch_size_for(image_shape: ImageShape, default: int, *,
                   budget_elements: int = DEFAULT_BUDGET_ELEMENTS) -> int:
    """Images per forward pass: `default`, capped so one batch holds at most `budget_elements` input values.

    The cap is what bounds memory: activations grow with the input's element count. At the default budget it
    leaves every size up to 3 x 32 x 32 at `default` (up to 784 images), and gives 16 images at 3 x 224 x 224.
    """
    if default < 1 or budget_elements < 1:
        raise ValueError(f"default and budget_elements must be positive, got {default} and {budget_elements}")
    return max(1, min(default, budget_elements // math.prod(_chw(image_shape))))


def budget_for(device: object) -> int:
    """The input elements per pass on `device` (a torch.device or its name): the default, larger on CUDA."""
    kind = getattr(device, "type", str(device))
    return DEFAULT_BUDGET_ELEMENTS * (CUDA_BUDGET_FACTOR if kind == "cuda" else 1)
