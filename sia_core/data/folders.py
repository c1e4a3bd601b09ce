"""A user's own data: an image folder (one sub-folder per class, any image size) or an `.npz` of arrays.

Both return the one `ImageDataset` type; images are resized to the model's input when a shape is given.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from sia_core.data.archive import IMAGE_SUFFIXES
from sia_core.data.base import ImageDataset
from sia_core.errors import DataError

MAX_SIDE = 224
DEFAULT_MAX_IMAGES = 5000  # 224x224 RGB float32 is 0.6 MB an image: bound what one load may hold in memory


def _class_folders(folder: Path) -> list[tuple[Path, list[Path]]]:
    classes = []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in class_dir.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if files:
            classes.append((class_dir, files))
    return classes


def _below_single_wrappers(folder: Path, depth: int = 3) -> Path:
    """The folder that holds the class folders: zipping a folder the usual way wraps them in one more (`photos/cats/`,
    `photos/dogs/`), so a folder whose only entry is one sub-folder is looked through, a few levels at most."""
    for _ in range(depth):
        entries = [p for p in folder.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
        if len(entries) != 1 or not entries[0].is_dir():
            break
        if any(f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES for f in entries[0].iterdir()):
            break  # a folder of images is a class folder (the only one), not a wrapper
        folder = entries[0]
    return folder


def load_image_folder(root: str | Path, split: str = "test", *, image_shape: Optional[tuple[int, int, int]] = None,
                      n: Optional[int] = None, max_images: int = DEFAULT_MAX_IMAGES) -> ImageDataset:
    """`root/[split/]<class name>/*.png|jpg|webp|bmp`: class names from the folder names, in sorted order.

    Images of any size are centre-cropped to the aspect of `image_shape` (C, H, W) and resized to it when given
    (C = 1: grayscale, 3: RGB); otherwise
    to the first image's size and mode. Loads at most `n` (or `max_images`) images, taken round-robin over the
    classes so a partial load keeps every class.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"Image folder not found: {root}")
    base = _below_single_wrappers(root)  # a wrapping folder first: it may hold train/ and test/
    folder = base / split if (base / split).is_dir() else base
    classes = _class_folders(folder)
    if len(classes) < 2:
        found = ", ".join(p.name for p, _ in classes) or "none"
        raise DataError(f"{folder} needs at least two class folders holding images (found: {found}). "
                        "Lay it out as <folder>/<class name>/<image files>.")
    limit = min(n if n is not None else max_images, max_images)
    if limit <= 0:
        raise DataError(f"The number of images must be positive, got {limit}.")
    # round-robin over classes, so the first `limit` images cover every class
    queue = [(label, files[rank]) for rank in range(max(len(files) for _, files in classes))
             for label, (_, files) in enumerate(classes) if rank < len(files)][:limit]
    if image_shape is None:
        with Image.open(queue[0][1]) as first:
            # no model to fit yet: the first image's size, at most MAX_SIDE a side (memory stays bounded)
            scale = min(1.0, MAX_SIDE / max(first.height, first.width))
            image_shape = (1 if first.mode in ("L", "I", "I;16", "1") else 3, max(1, round(first.height * scale)),
                           max(1, round(first.width * scale)))
    channels, height, width = image_shape
    array = np.empty((len(queue), height, width, channels), dtype=np.uint8)
    for row, (_, file) in enumerate(queue):
        try:
            with Image.open(file) as image:
                image = image.convert("L" if channels == 1 else "RGB")
                if image.size != (width, height):  # the centre at the target's aspect ratio, not squeezed
                    image = ImageOps.fit(image, (width, height), Image.Resampling.BILINEAR)
                array[row] = np.asarray(image, dtype=np.uint8).reshape(height, width, channels)
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
            raise DataError(f"Could not decode {file}: {type(error).__name__}.") from error
    labels = np.fromiter((label for label, _ in queue), dtype=np.int64, count=len(queue))
    return ImageDataset(name=f"imagefolder-{folder.name}",
                        images=torch.from_numpy(array).permute(0, 3, 1, 2).float().div_(255.0).contiguous(),
                        labels=torch.from_numpy(labels), class_names=tuple(p.name for p, _ in classes),
                        source=f"{len(queue)} images of {len(classes)} classes from the folder {folder}")


def load_npz(path: str | Path, *, n: Optional[int] = None) -> ImageDataset:
    """An `.npz` with `x` (uint8 in 0..255 or float in [0, 1]; NHWC or NCHW, 1 or 3 channels), `y` (N,) int labels
    and optionally `class_names` (an array of strings). No pickled objects are read."""
    path = Path(path).expanduser()
    try:
        with np.load(path, allow_pickle=False) as archive:
            images, labels = archive["x"], archive["y"]
            names = archive["class_names"] if "class_names" in archive.files else None
    except (OSError, KeyError, ValueError, EOFError) as error:
        raise DataError(f"{path} is not an .npz with arrays 'x' and 'y' ({type(error).__name__}: {error}).") from error
    if images.ndim == 3:
        images = images[:, None]  # (N, H, W) grayscale
    if images.ndim != 4:
        raise DataError(f"{path}: 'x' must be (N, H, W, C) or (N, C, H, W), got shape {images.shape}.")
    if images.shape[1] not in (1, 3) and images.shape[3] in (1, 3):
        images = images.transpose(0, 3, 1, 2)
    if images.shape[1] not in (1, 3):
        raise DataError(f"{path}: images need 1 or 3 channels, got shape {images.shape}.")
    if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: 'y' must hold one integer label per image.")
    if len(labels) == 0:
        raise DataError(f"{path} holds no images.")
    count = int(labels.max()) + 1
    class_names = tuple(str(v) for v in names) if names is not None else tuple(str(k) for k in range(count))
    if labels.min() < 0 or labels.max() >= len(class_names):
        raise DataError(f"{path}: labels must lie in 0..{len(class_names) - 1}.")
    if n is not None:
        images, labels = images[:n], labels[:n]
    if images.dtype == np.uint8:
        tensor = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    else:
        tensor = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
        if tensor.numel() and (tensor.min() < 0 or tensor.max() > 1):
            raise DataError(f"{path}: float images must lie in [0, 1].")
    return ImageDataset(name=f"npz-{path.stem}", images=tensor, labels=torch.from_numpy(labels.astype(np.int64)),
                        class_names=class_names, source=f"{len(labels)} images from {path.name}")


def _class_key(name: str) -> str:
    """A class name as folders may spell it: "T-shirt/top", "t-shirt-top" and "T_shirt top" are one class."""
    return "".join(character for character in name.lower() if character.isalnum())


def matched_to_classes(dataset: ImageDataset, class_names: tuple[str, ...]) -> tuple[ImageDataset, Optional[str]]:
    """`dataset` with its labels in the order of a model's `class_names`, and a warning where that cannot be done.

    A folder's classes are its sub-folders in sorted order, which need not be the model's output order
    ("Bag" sorts before "Trouser"): where the names are the model's (up to case and punctuation) in another order,
    the labels are renumbered to the model's order and the names become the model's; in the same order nothing
    changes. Where they differ, the labels are read position by position, and the warning says so."""
    ours, theirs = [_class_key(name) for name in dataset.class_names], [_class_key(name) for name in class_names]
    if ours == theirs or len(ours) != len(theirs):
        return dataset, None
    if sorted(ours) == sorted(theirs) and len(set(theirs)) == len(theirs):
        order = torch.tensor([theirs.index(key) for key in ours], dtype=torch.int64)
        labels = torch.where(dataset.labels >= 0, order[dataset.labels.clamp(min=0)], dataset.labels)
        return dataclasses.replace(dataset, labels=labels, class_names=tuple(class_names)), None
    shown = ", ".join(f"{ours} → {name}" for ours, name in list(zip(dataset.class_names, class_names))[:3])
    advice = (" Name the classes (an image folder's sub-folders) after the model's "
              f"({', '.join(class_names[:4])}, …) to match them by name." if len(set(theirs)) == len(theirs) else "")
    return dataset, (f"The dataset's class names are not the model's, so its classes are read by position, in "
                     f"order ({shown}, …).{advice}")
