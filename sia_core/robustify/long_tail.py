"""Long-tailed training sets and the three ways to rebalance them: loss weights, over-sampling, and new images for
the minority classes (random attribute edits, or SIA variants against the current model).

The exponential profile is the one of Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware
Margin Loss" (NeurIPS 2019): class c keeps n_max · ρ^(−c/(C−1)) images, so class 0 has n_max and the last class
n_max / ρ. Test sets stay balanced.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch

from sia_core.data.base import ImageDataset
from sia_core.errors import DataError
from sia_core.validation import in_range, optional, positive_int

# makes `count` new images from `images` (all of one class, `label`), for round `round_index` (a seed offset)
VariantMaker = Callable[[torch.Tensor, int, int], torch.Tensor]


def long_tailed_counts(n_max: int, num_classes: int, rho: float) -> list[int]:
    """Images kept per class: floor(n_max · ρ^(−c/(C−1))) for c = 0 .. C−1 (at least one each)."""
    positive_int("n_max", n_max)
    positive_int("num_classes", num_classes)
    in_range("rho", rho, 1.0, float("inf"))
    if num_classes == 1:
        return [n_max]
    return [max(1, int(n_max * rho ** (-c / (num_classes - 1)) + 1e-9)) for c in range(num_classes)]


def class_counts(dataset: ImageDataset) -> list[int]:
    return torch.bincount(dataset.labels, minlength=dataset.num_classes).tolist()


def long_tailed(dataset: ImageDataset, rho: float, n_max: Optional[int] = None, seed: int = 0) -> ImageDataset:
    """A long-tailed subset of `dataset` with exactly `long_tailed_counts(n_max, C, rho)` images per class, drawn
    at random (seeded) within each class. `n_max` defaults to the smallest class's size, so every class can give
    its share."""
    available = class_counts(dataset)
    optional(positive_int, "n_max", n_max)
    n_max = n_max or min(available)
    counts = long_tailed_counts(n_max, dataset.num_classes, rho)
    short = [dataset.class_names[c] for c, (want, have) in enumerate(zip(counts, available)) if want > have]
    if short:
        raise DataError(f"{dataset.name} has too few images of {', '.join(short)} for n_max = {n_max}.")
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label, count in enumerate(counts):
        members = torch.nonzero(dataset.labels == label).flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:count]])
    index = torch.cat(chosen).sort().values  # keep the source order: nothing downstream may rely on class blocks
    return dataset.subset(index, name=f"{dataset.name}-lt{rho:g}")


def inverse_frequency_weights(counts: Sequence[int]) -> tuple[float, ...]:
    """Loss weight per class ∝ 1 / n_c, scaled so the weights average to 1 over the training images
    (Σ_c n_c w_c = N): each class then carries the same total weight."""
    total, classes = sum(counts), len(counts)
    return tuple(total / (classes * count) if count else 0.0 for count in counts)


def oversampled(dataset: ImageDataset, seed: int = 0) -> ImageDataset:
    """Every class repeated (whole copies, then a random remainder) up to the largest class's count."""
    counts = class_counts(dataset)
    target = max(counts)
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label in range(dataset.num_classes):
        members = torch.nonzero(dataset.labels == label).flatten()
        if len(members) == 0:
            continue
        repeats, remainder = divmod(target, len(members))
        chosen += [members.repeat(repeats), members[torch.randperm(len(members), generator=generator)[:remainder]]]
    return dataset.subset(torch.cat(chosen), name=f"{dataset.name}-oversampled")


def with_minority_variants(dataset: ImageDataset, make_variants: VariantMaker, *,
                           name_suffix: str = "augmented") -> tuple[ImageDataset, torch.Tensor]:
    """`dataset` plus, for every class below the largest count, new images made from its own images (true label
    kept) until the counts are equal. Returns the balanced set and a (N,) mask of the added images."""
    counts = class_counts(dataset)
    target = max(counts)
    images, labels = [dataset.images], [dataset.labels]
    for label, count in enumerate(counts):
        missing = target - count
        if count == 0 or missing == 0:
            continue
        members = dataset.images[dataset.labels == label]
        made, round_index = [], 0
        while missing > 0:  # each round varies every member once (or the remainder), with a fresh seed
            take = members[:missing]
            made.append(make_variants(take, label, round_index))
            missing -= len(take)
            round_index += 1
        added = torch.cat(made)
        images.append(added.to(dataset.images.dtype))
        labels.append(torch.full((len(added),), label, dtype=dataset.labels.dtype))
    all_images, all_labels = torch.cat(images), torch.cat(labels)
    added_mask = torch.arange(len(all_labels)) >= len(dataset)
    return ImageDataset(f"{dataset.name}-{name_suffix}", all_images, all_labels, dataset.class_names,
                        source=dataset.source), added_mask
