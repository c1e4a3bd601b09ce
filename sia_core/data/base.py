"""The one dataset type every loader returns.

Images are float tensors in [0, 1] shaped (N, C, H, W); labels are int64 class indices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import torch

from sia_core.errors import DataError

Split = Literal["train", "test"]
LUMINANCE = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's convert("L")
RESIZE_CHUNK = 256  # images resized per call: a 224x224 RGB chunk is 154 MB of float32, not the whole set at once


def resize_images(images: torch.Tensor, image_shape: tuple[int, int, int]) -> torch.Tensor:
    """(N, C, H, W) images in [0, 1] as (N, *image_shape), converting 1 <-> 3 channels and resizing."""
    channels, height, width = image_shape
    if images.shape[1] not in (1, 3) or channels not in (1, 3):
        raise DataError(f"Only 1- and 3-channel images convert; got {images.shape[1]} to {channels} channels.")
    chunks = []
    for start in range(0, images.shape[0], RESIZE_CHUNK):
        chunk = images[start:start + RESIZE_CHUNK].float()
        if chunk.shape[1] == 3 and channels == 1:
            chunk = (chunk * torch.tensor(LUMINANCE).view(1, 3, 1, 1)).sum(1, keepdim=True)
        elif chunk.shape[1] == 1 and channels == 3:
            chunk = chunk.expand(-1, 3, -1, -1)
        if tuple(chunk.shape[2:]) != (height, width):
            chunk = torch.nn.functional.interpolate(chunk, size=(height, width), mode="bilinear", align_corners=False,
                                                    antialias=True)
        chunks.append(chunk.clamp(0, 1).contiguous())
    return torch.cat(chunks) if chunks else images.new_zeros((0, *image_shape))


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
        keypoints: (N, K, 2) reference landmarks for keypoint models, (x, y) as fractions of the width and height
            (y down), or None for a classification set; point_names names the K points.
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    attributes: dict[str, torch.Tensor] = field(default_factory=dict)
    source: str = ""
    keypoints: Optional[torch.Tensor] = None
    point_names: tuple[str, ...] = ()
    keypoint_reference: str = "ground truth"  # or "model prediction": a keypoint model's own points on the images

    def __post_init__(self) -> None:
        # a user's own files reach this constructor, so a bad shape is their data's fault, not a bug
        if self.images.ndim != 4:
            raise DataError(f"{self.name}: images must be (N, C, H, W), got shape {tuple(self.images.shape)}.")
        if self.labels.shape != (self.images.shape[0],):
            raise DataError(f"{self.name}: labels must be (N,) and match the {self.images.shape[0]} images, "
                            f"got shape {tuple(self.labels.shape)}.")
        if not self.class_names:
            raise DataError(f"{self.name}: a dataset needs at least one class name.")
        if self.keypoints is not None and (self.keypoints.ndim != 3 or self.keypoints.shape[0] != len(self.labels)
                                           or self.keypoints.shape[2] != 2):
            raise DataError(f"{self.name}: keypoints must be (N, K, 2) for the {len(self.labels)} images, got shape "
                            f"{tuple(self.keypoints.shape)}.")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def title(self) -> str:
        """The name for a heading: a user's folder or file by its own name, not the id's kind prefix."""
        for prefix, kind in (("imagefolder-", "the folder"), ("npz-", "the file")):
            if self.name.startswith(prefix):
                return f"{kind} “{self.name[len(prefix):]}”"
        return self.name

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def resized(self, image_shape: tuple[int, int, int]) -> "ImageDataset":
        """The same images as `image_shape` (C, H, W): gray to RGB by repeating, RGB to gray by luminance, and
        an antialiased bilinear resize. The same dataset when it already has that shape."""
        if self.image_shape == tuple(image_shape):
            return self
        return ImageDataset(name=self.name, images=resize_images(self.images, image_shape), labels=self.labels,
                            class_names=self.class_names, attributes=self.attributes,
                            source=f"{self.source} (resized to {'x'.join(map(str, image_shape))})",
                            keypoints=self.keypoints, point_names=self.point_names,  # fractions: unchanged
                            keypoint_reference=self.keypoint_reference)

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
            keypoints=None if self.keypoints is None else self.keypoints[index],
            point_names=self.point_names,
            keypoint_reference=self.keypoint_reference,
        )
