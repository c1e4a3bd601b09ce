"""Regions and their overlap: top-q% masks, the four zones, IoU, Dice, energy inside the RoI, Spearman.

Maps are (N, H, W) non-negative tensors; masks are (N, H, W) bool.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import torch

from sia_core.numerics import TINY
from sia_core.rank_statistics import average_ranks
from sia_core.validation import in_range


class Zone(IntEnum):
    """The four disjoint zones of an image (after Chattopadhyay et al. 2020)."""

    NEITHER = 0
    ATTACKED_ONLY = 1    # vulnerable but unimportant: the neutralization target
    IMPORTANT_ONLY = 2
    BOTH = 3


def normalize_maps(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map to [0, 1] (min-max per image; a constant map becomes 0)."""
    flat = maps.flatten(1)
    low = flat.min(1, keepdim=True).values
    span = flat.max(1, keepdim=True).values - low
    return ((flat - low) / span.clamp_min(TINY)).view_as(maps)


def random_regions_iou(fraction: float) -> float:
    """The IoU two independent random regions, each `fraction` q of the image, reach on average: q / (2 - q)
    (they share q² of the image, their union is 2q - q²); the chance level of the RoI / RoA overlap."""
    return fraction / (2 - fraction)


def top_fraction_mask(maps: torch.Tensor, fraction: float) -> torch.Tensor:
    """Exactly round(fraction * H * W) pixels per map: the highest-scoring ones (ties broken by position)."""
    in_range("fraction", fraction, 0, 1)
    flat = maps.flatten(1)
    count = int(round(fraction * flat.shape[1]))
    mask = torch.zeros_like(flat, dtype=torch.bool)
    if count:
        mask.scatter_(1, flat.topk(count, dim=1).indices, True)
    return mask.view_as(maps)


def zones(importance_mask: torch.Tensor, attack_mask: torch.Tensor) -> torch.Tensor:
    """(N, H, W) int64 map of `Zone` values."""
    return attack_mask.long() * Zone.ATTACKED_ONLY + importance_mask.long() * Zone.IMPORTANT_ONLY


def iou(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    intersection = (first & second).flatten(1).sum(1).float()
    union = (first | second).flatten(1).sum(1).float()
    return torch.where(union > 0, intersection / union.clamp_min(1), torch.ones_like(union))


def dice(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    intersection = (first & second).flatten(1).sum(1).float()
    total = first.flatten(1).sum(1).float() + second.flatten(1).sum(1).float()
    return torch.where(total > 0, 2 * intersection / total.clamp_min(1), torch.ones_like(total))


def energy_inside(attack_maps: torch.Tensor, importance_mask: torch.Tensor) -> torch.Tensor:
    """Share of each attack map's total inside the RoI mask: Σ_{M_I} S_A / Σ S_A."""
    flat = attack_maps.flatten(1)
    return (flat * importance_mask.flatten(1)).sum(1) / flat.sum(1).clamp_min(TINY)


def spearman(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Per-image Spearman rank correlation of two maps (average ranks for ties; 0 for a constant map)."""
    a = average_ranks(first.flatten(1).numpy())
    b = average_ranks(second.flatten(1).numpy())
    a -= a.mean(1, keepdims=True)
    b -= b.mean(1, keepdims=True)
    denominator = np.sqrt((a ** 2).sum(1) * (b ** 2).sum(1))
    rho = np.where(denominator > 0, (a * b).sum(1) / np.maximum(denominator, TINY), 0.0)
    return torch.from_numpy(rho).float()


@dataclass(frozen=True)
class OverlapMetrics:
    """Per-image overlap of RoI and RoA at one top-q fraction."""

    fraction: float
    iou: torch.Tensor
    dice: torch.Tensor
    energy_in_roi: torch.Tensor
    spearman: torch.Tensor

    def means(self) -> dict[str, float]:
        return {name: float(getattr(self, name).mean()) for name in ("iou", "dice", "energy_in_roi", "spearman")}


def overlap_metrics(importance_maps: torch.Tensor, attack_maps: torch.Tensor, fraction: float) -> OverlapMetrics:
    importance_mask = top_fraction_mask(importance_maps, fraction)
    attack_mask = top_fraction_mask(attack_maps, fraction)
    return OverlapMetrics(fraction=fraction, iou=iou(importance_mask, attack_mask), dice=dice(importance_mask, attack_mask),
                          energy_in_roi=energy_inside(attack_maps, importance_mask),
                          spearman=spearman(importance_maps, attack_maps))
