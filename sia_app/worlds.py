"""Which world (Fashion-MNIST, CIFAR-10, Shapes) a dataset spec belongs to, so every page follows the sidebar's
choice: the embedded subsets, the full datasets and a user's `name:PATH` all map to their world."""

from __future__ import annotations

from typing import Iterable, Optional


def world_of(dataset_spec: str, worlds: Iterable[str]) -> Optional[str]:
    """'cifar10-subset', 'cifar10' and 'cifar10:/data' belong to 'cifar10'; None when no world of `worlds` fits."""
    name = (dataset_spec or "").split(":", 1)[0]
    return next((world for world in worlds if name == world or name.startswith(world + "-")), None)
