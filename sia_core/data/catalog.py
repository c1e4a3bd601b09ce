"""Datasets by name, so a model card, the CLI and the app can say "fashion-mnist" and mean the same thing."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from sia_core.data.base import ImageDataset
from sia_core.errors import DataError

DatasetName = Literal["fashion-mnist", "fashion-mnist-subset", "shapes", "cifar10"]
DATASET_NAMES: tuple[str, ...] = ("fashion-mnist", "fashion-mnist-subset", "shapes", "cifar10")


def load_dataset(name: str, split: Literal["train", "test"] = "test", *, root: Optional[str | Path] = None,
                 spurious: Optional[str] = None, spurious_strength: float = 0.95,
                 n: Optional[int] = None, seed: int = 0) -> ImageDataset:
    """Load a dataset by name.

    fashion-mnist: idx files under `root` (default: the Debian package `dataset-fashion-mnist`).
    fashion-mnist-subset: the balanced test subset embedded in `assets/` (test split only).
    shapes: generated; `spurious` correlates one attribute with the class in the train split.
    cifar10: python batches, an `.npz` (x uint8 NHWC, y) or an ImageFolder tree at `root`.
    """
    if name == "fashion-mnist":
        from sia_core.data.fashion_mnist import default_fashion_mnist_root, load_fashion_mnist

        dataset = load_fashion_mnist(root or default_fashion_mnist_root(), split)
    elif name == "fashion-mnist-subset":
        from sia_core.data.fashion_mnist import load_embedded_subset

        dataset = load_embedded_subset()
    elif name == "shapes":
        from sia_core.data.shapes import shapes_dataset

        return shapes_dataset(split, n=n, seed=seed, spurious=spurious, spurious_strength=spurious_strength)  # type: ignore[arg-type]
    elif name == "cifar10":
        from sia_core.data.cifar10 import load_cifar10

        if root is None:
            raise DataError("CIFAR-10 needs a path: a folder of python batches, an ImageFolder tree or an .npz file.")
        dataset = load_cifar10(root, split)
    else:
        raise DataError(f"Unknown dataset {name!r}; known: {', '.join(DATASET_NAMES)}")
    return dataset if n is None else dataset.subset(slice(0, n))
