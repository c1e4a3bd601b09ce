"""The one dataset type every loader returns.

Images are float tensors in [0, 1] shaped (N, C, H, W); labels are int64 class indices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from sia_core.errors import DataError


@dataclass(frozen=True)
class ImageDataset:
    """An in-memory labelled image set.

    Attributes:
        name: short id, e.g. ``"fashion-mnist-test"``.
        images: (N, C, H, W) float32 in [0, 1].
        labels: (N,) int64 in [0, len(class_names)).
        class_names: human-readable class names, index = label.
        attributes: optional per-sample ground-truth attributes (name -> (N,) tensor),
            e.g. the Shapes generator's hue and rotation.
        source: where the data came from, for display and provenance.
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    attributes: dict[str, torch.Tensor] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        # a user's own files reach this constructor, so a bad shape is their data's fault, not a bug
        if self.images.ndim != 4:
            raise DataError(f"{self.name}: images must be (N, C, H, W), got shape {tuple(self.images.shape)}.")
        if self.labels.shape != (self.images.shape[0],):
            raise DataError(f"{self.name}: labels must be (N,) and match the {self.images.shape[0]} images, "
                            f"got shape {tuple(self.labels.shape)}.")
        if not self.class_names:
            raise DataError(f"{self.name}: a dataset needs at least one class name.")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def subset(self, indices: Any, name: str | None = None) -> "ImageDataset":
        """A new dataset holding only ``indices`` (a slice, list or index tensor)."""
        index = torch.as_tensor(indices) if not isinstance(indices, slice) else indices
        return ImageDataset(
            name=name or self.name,
            images=self.images[index],
            labels=self.labels[index],
            class_names=self.class_names,
            attributes={k: v[index] for k, v in self.attributes.items()},
            source=self.source,
        )
