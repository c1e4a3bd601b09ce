"""What replaces hidden pixels: black, the dataset's channel mean, or a blurred copy.

One registry, `FILLS`, serves occlusion (the patch), integrated gradients (the baseline) and neutralization (the mask).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F

from sia_core.errors import ConfigError
from sia_core.registry import Entry, Registry
from sia_core.scaling import scaled_pixels

Replacement = Callable[[torch.Tensor], torch.Tensor]  # (N, C, H, W) images -> what to show instead, broadcastable
ChannelMean = Optional[torch.Tensor | Sequence[float]]


def _zero(channel_mean: ChannelMean = None) -> Replacement:
    return lambda images: torch.zeros(1, images.shape[1], 1, 1, dtype=images.dtype, device=images.device)


def _mean(channel_mean: ChannelMean = None) -> Replacement:
    if channel_mean is None:
        raise ConfigError("fill 'mean' needs the dataset's per-channel mean.")
    values = torch.as_tensor(channel_mean, dtype=torch.float32).reshape(-1)

    def replacement(images: torch.Tensor) -> torch.Tensor:
        if values.numel() != images.shape[1]:
            raise ConfigError(f"fill 'mean' needs {images.shape[1]} values, one per channel, got {values.numel()}.")
        return values.to(images).view(1, -1, 1, 1)

    return replacement


def _blur(channel_mean: ChannelMean = None) -> Replacement:
    # a 5x5 box blur (wider on images over 32 px) keeps the coarse shape and removes the fine perturbation
    def replacement(images: torch.Tensor) -> torch.Tensor:
        radius = scaled_pixels(2, images.shape)
        return F.avg_pool2d(F.pad(images, (radius,) * 4, mode="replicate"), 2 * radius + 1, stride=1)

    return replacement


FILLS: Registry[Replacement] = Registry("fill", [
    Entry("zero", "black (zero)", "Hidden pixels become 0, black: on a black background, \"nothing here\".", _zero),
    Entry("mean", "dataset mean colour", "Hidden pixels take the dataset's mean value of each channel.", _mean,
          traits={"needs_channel_mean": True}),
    Entry("blur", "blurred copy", "Hidden pixels show a 5×5 box-blurred copy of the image (wider on images over 32 "
                                  "px): the coarse shape stays, fine detail (and a fine perturbation) goes.", _blur),
])


def fill_images(images: torch.Tensor, masks: torch.Tensor, fill: str,
                channel_mean: ChannelMean = None) -> torch.Tensor:
    """Replace the pixels where `masks` (N, H, W) is True by the `fill` of `FILLS` (zero, mean or blur)."""
    replacement = FILLS.build(fill, channel_mean=channel_mean)(images).expand_as(images)
    keep = (~masks).unsqueeze(1).to(images.dtype)
    return images * keep + replacement * (1 - keep)
