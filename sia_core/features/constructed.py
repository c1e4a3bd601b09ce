"""Constructed datasets: the kinds (KINDS registry), how one is made (ConstructionConfig), and the set itself
with its images, labels and origins, saved to and loaded from an .npz."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from sia_core.attacks.base import check_seed
from sia_core.data.base import ImageDataset
from sia_core.errors import ConfigError, DataError
from sia_core.registry import Entry, Registry
from sia_core.validation import non_negative_int, one_of, positive, positive_int, require

FORMAT_VERSION = 1
KEEP = ("all", "successful")  # every attempted image, or only those the source model assigns to their target

Relabel = Callable[[torch.Tensor, int, int], torch.Tensor]  # (labels, number of classes, seed) -> targets


@dataclass(frozen=True)
class ConstructionConfig:
    """How a constructed set is made (the paper's values per kind are `KINDS[kind].defaults`).

    d_rand / d_det: `eps_l2` is the L2 radius, `steps` PGD steps of `step_size` (paper, CIFAR-10: 0.5, 100, 0.1).
    d_r / d_nr: `steps` normalized-gradient steps of `step_size` (paper: 1000 steps of 0.1); `eps_l2` is unused.
    `keep` "successful" (d_rand / d_det) keeps only the images the source model assigns to their target: `n`
    counts the attempts then, and the set's metric reports the share kept.
    """

    kind: str
    n: int = 2000
    eps_l2: float = 1.0
    steps: int = 100
    step_size: float = 0.1
    seed: int = 0
    batch_size: int = 250
    keep: str = "all"

    def __post_init__(self) -> None:
        KINDS[self.kind]  # unknown kinds raise, listing the choices
        one_of("keep", self.keep, KEEP)
        require(self.keep == "all" or KINDS[self.kind].traits["relabel"] is not None,
                f"keep={self.keep!r} applies to the relabelled kinds (d_rand, d_det) only.")
        positive_int("n", self.n)
        positive("eps_l2", self.eps_l2)
        non_negative_int("steps", self.steps)
        positive("step_size", self.step_size)
        check_seed("seed", self.seed)
        positive_int("batch_size", self.batch_size)


def _next_class(labels: torch.Tensor, num_classes: int, seed: int) -> torch.Tensor:
    return (labels + 1) % num_classes


def _random_class(labels: torch.Tensor, num_classes: int, seed: int) -> torch.Tensor:
    # uniformly among the *other* classes (t != y, our choice; the paper's text draws from all classes): a target equal
    # to the label would keep a tenth of the images' robust features pointing at the right class
    shift = torch.randint(1, num_classes, labels.shape, generator=torch.Generator().manual_seed(seed))
    return (labels + shift) % num_classes


def _kind(name: str, label: str, description: str, *, relabel: Relabel | None, source: str,
          defaults: dict) -> Entry[ConstructionConfig]:
    """traits: `relabel` (targeted PGD toward the relabelled class) or None (match a representation), and
    `source`, the kind of model the set is built from ("standard" or "robust")."""
    return Entry(name=name, label=label, description=description, factory=partial(ConstructionConfig, kind=name),
                 defaults=defaults, traits={"relabel": relabel, "source": source})


_PAPER_PGD = {"eps_l2": 0.5, "steps": 100, "step_size": 0.1}        # Ilyas et al. 2019, CIFAR-10 D̂_rand / D̂_det
_PAPER_MATCHING = {"steps": 1000, "step_size": 0.1}              # Ilyas et al. 2019, D̂_R / D̂_NR

KINDS: Registry[ConstructionConfig] = Registry("constructed-set kind", [
    _kind("d_rand", "D̂_rand", "targeted L2 PGD to a random other class, relabelled with it", relabel=_random_class,
          source="standard", defaults=_PAPER_PGD),
    _kind("d_det", "D̂_det", "targeted L2 PGD to class (y + 1) mod C, relabelled with it", relabel=_next_class,
          source="standard", defaults=_PAPER_PGD),
    _kind("d_r", "D̂_R", "from another image, match the ROBUST model's penultimate features", relabel=None,
          source="robust", defaults=_PAPER_MATCHING),
    _kind("d_nr", "D̂_NR", "from another image, match the STANDARD model's penultimate features", relabel=None,
          source="standard", defaults=_PAPER_MATCHING),
])


def relabel_targets(labels: torch.Tensor, kind: str, num_classes: int, seed: int) -> torch.Tensor:
    """d_det: (y + 1) mod C; d_rand: uniformly random other classes (t != y, seeded)."""
    relabel = KINDS[kind].traits["relabel"]
    if relabel is None:
        raise ConfigError(f"{KINDS[kind].label} keeps the source labels; it is not a relabelled set.")
    return relabel(labels, num_classes, seed)


def _renamed_budget(config: dict) -> dict:
    """A saved construction config, with the radius under its norm-named key (sets saved before it was renamed)."""
    return {("eps_l2" if key == "eps" else key): value for key, value in config.items()}


@dataclass(frozen=True)
class ConstructedSet:
    """A constructed dataset: images in [0, 1], the labels it teaches, and where each image came from."""

    config: ConstructionConfig
    source_model: str
    images: torch.Tensor           # (N, C, H, W) float in [0, 1]
    labels: torch.Tensor           # (N,) the labels a model is trained on (targets for d_rand / d_det)
    original_labels: torch.Tensor  # (N,) the true labels of the source images
    source_indices: torch.Tensor   # (N,) index in the training set of the image whose label/representation is used
    start_indices: torch.Tensor    # (N,) index of the starting image (itself for d_rand / d_det)
    class_names: tuple[str, ...]
    metric: dict[str, float] = field(default_factory=dict)
    # (N,) bool, a finished relabelled set that kept every attempt: the source model classifies the image as its
    # target (measured once, with the success rate); None where the set kept only those (all reached) or is no such set
    reached: Optional[torch.Tensor] = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def label(self) -> str:
        return KINDS[self.config.kind].label

    def head(self, count: int) -> "ConstructedSet":
        """The first `count` samples, every per-image field cut alike."""
        return replace(self, images=self.images[:count], labels=self.labels[:count],
                       original_labels=self.original_labels[:count], source_indices=self.source_indices[:count],
                       start_indices=self.start_indices[:count],
                       reached=None if self.reached is None else self.reached[:count])

    def as_dataset(self) -> ImageDataset:
        return ImageDataset(name=f"{self.config.kind}-{self.source_model}", images=self.images, labels=self.labels,
                            class_names=self.class_names, source=f"{self.label} built from {self.source_model}")

    def save(self, path: str | Path) -> None:
        """An .npz with float16 images, labels, indices and the construction parameters (JSON)."""
        meta = {"format": FORMAT_VERSION, "config": asdict(self.config), "source_model": self.source_model,
                "class_names": list(self.class_names), "metric": self.metric}
        optional_arrays = {} if self.reached is None else {"reached": self.reached.numpy().astype(bool)}
        np.savez_compressed(Path(path), images=self.images.numpy().astype(np.float16),
                            labels=self.labels.numpy(), original_labels=self.original_labels.numpy(),
                            source_indices=self.source_indices.numpy(), start_indices=self.start_indices.numpy(),
                            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **optional_arrays)

    @classmethod
    def load(cls, path: str | Path) -> "ConstructedSet":
        path = Path(path)
        try:
            return cls._read(path)
        except DataError:
            raise
        except Exception as error:  # a user's file: any way it is broken (empty, not a zip, odd JSON) is their data's
            raise DataError(f"{path.name} is not a constructed dataset saved by SIA Explorer "
                            f"({type(error).__name__}: {error}).") from error

    @classmethod
    def _read(cls, path: Path) -> "ConstructedSet":
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(archive["meta"].tobytes().decode())
            arrays = {key: archive[key] for key in ("images", "labels", "original_labels", "source_indices",
                                                     "start_indices")}
            reached = archive["reached"] if "reached" in archive.files else None  # sets saved before it: none
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
            found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
            raise DataError(f"{path.name} has format {found}, expected {FORMAT_VERSION}.")
        return cls(config=ConstructionConfig(**_renamed_budget(meta["config"])), source_model=meta["source_model"],
                   images=torch.from_numpy(arrays["images"].astype(np.float32)),
                   labels=torch.from_numpy(arrays["labels"]).long(),
                   original_labels=torch.from_numpy(arrays["original_labels"]).long(),
                   source_indices=torch.from_numpy(arrays["source_indices"]).long(),
                   start_indices=torch.from_numpy(arrays["start_indices"]).long(),
                   class_names=tuple(meta["class_names"]), metric=meta.get("metric", {}),
                   reached=None if reached is None else torch.from_numpy(reached).bool())
