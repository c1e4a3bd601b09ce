"""The margin-consistency zoo (Ngnawé et al. 2024): many models of one dataset from different training recipes and
strengths, each with its Kendall τ, detection figures, attack-based robust accuracy, the sample-efficient estimate
over repeated subsets of several sizes, and the pseudo-margin's τ before → after.

Every per-model figure comes from `margin_study` and `pseudo_margin_study` on the same images, so under torchrun the
expensive input margins are sharded exactly as in a single study.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields
from typing import Optional

import torch

from sia_core.attacks.base import NORMS
from sia_core.data.base import ImageDataset
from sia_core.margins.input_margins import InputMarginEstimator
from sia_core.margins.pseudo_margin import PSEUDO_INPUTS
from sia_core.margins.robust_accuracy import sample_efficient_sweep
from sia_core.margins.study import margin_study, pseudo_margin_study
from sia_core.models.registry import ModelCard
from sia_core.models.wrapper import ClassifierWrapper
from sia_core.progress import ProgressCallback
from sia_core.validation import non_negative, one_of, positive_int, require

# the zoo of each world, weakest to most robust training; every id is a shipped model
ZOO_MODELS: dict[str, tuple[str, ...]] = {
    "fashion-mnist": ("fmnist-standard", "fmnist-random-attributes", "fmnist-sia-at", "fmnist-pgd-0.05",
                      "fmnist-fgsm-rs", "fmnist-robust", "fmnist-trades", "fmnist-pgd-l2", "fmnist-pgd-0.2"),
    "cifar10": ("cifar10-standard", "cifar10-sia-at", "cifar10-robust"),
}

# The paper's CIFAR-10 models (L-inf, eps 8/255, 10,000 test images; RobustBench's robust accuracy), shown beside ours
# and labelled "paper": Ngnawé et al. 2024. The first two rows come from the authors' executed notebook; XU80's from a
# markdown cell of it that is probably, but not surely, the paper's pseudo-margin table ("verified": False), and its
# FPR@95 is left out: the cell repeats the AUPR's 71.46 there, most likely a typo.
PAPER_ZOO: tuple[dict, ...] = (
    {"model": "Addepalli2021Towards_RN18", "architecture": "ResNet-18", "clean_accuracy": 0.8024,
     "robust_accuracy": 0.5106, "kendall_tau": 0.82, "auroc": 0.9786, "aupr": 0.9768, "fpr_at_95_tpr": 0.1326,
     "pseudo_kendall_tau": None, "verified": True},
    {"model": "Ding2020MMA", "architecture": "WRN-28-4", "clean_accuracy": 0.8436, "robust_accuracy": 0.4144,
     "kendall_tau": 0.28, "auroc": 0.6749, "aupr": 0.7091, "fpr_at_95_tpr": 0.8256, "pseudo_kendall_tau": 0.58,
     "verified": True},
    {"model": "Xu2023Exploring_WRN-28-10", "architecture": "WRN-28-10", "clean_accuracy": None,
     "robust_accuracy": None, "kendall_tau": 0.51, "auroc": 0.8750, "aupr": None, "fpr_at_95_tpr": None,
     "pseudo_kendall_tau": 0.62, "verified": False},
)


@dataclass(frozen=True)
class ZooConfig:
    """One zoo run: `n` test images per model, "non-robust" = input margin ≤ `eps` in `norm`; the estimate attacks
    `repeats` random subsets of each size in `subset_sizes`; the pseudo-margin learns from `pseudo_fit_n` training
    images (logits or features)."""

    n: int = 1000
    norm: str = "linf"
    eps: float = 0.1
    subset_sizes: tuple[int, ...] = (25, 50, 100, 200, 500)
    repeats: int = 10
    pseudo_fit_n: int = 500
    pseudo_source: str = "logits"
    seed: int = 0

    def __post_init__(self) -> None:
        positive_int("n", self.n)
        one_of("norm", self.norm, NORMS)
        non_negative("eps", self.eps)
        require(len(self.subset_sizes) > 0, "subset_sizes needs at least one size.")
        for size in self.subset_sizes:
            positive_int("subset size", size)
            require(size <= self.n, f"A subset of {size} cannot be drawn from {self.n} images.")
        positive_int("repeats", self.repeats)
        positive_int("pseudo_fit_n", self.pseudo_fit_n)
        one_of("pseudo_source", self.pseudo_source, PSEUDO_INPUTS)


PER_IMAGE_FIELDS = ("input_margins", "logit_margins", "correct", "labels")  # n values each, one per image


@dataclass(frozen=True)
class ZooEntry:
    """One model's point in the zoo, with the arrays its scatter plot needs."""

    model_id: str
    recipe: str
    description: str
    card_clean_accuracy: Optional[float]      # the card's first evaluation (its own test set, attack and eps)
    card_robust_accuracy: Optional[float]
    card_attack: Optional[str]
    card_eps: Optional[float]
    clean_accuracy: float                     # on the zoo's n images
    robust_accuracy: float                    # correct and input margin > eps: the full attack's figure
    kendall_tau: float
    pearson: float
    auroc: Optional[float]
    aupr: Optional[float]
    fpr_at_95_tpr: Optional[float]
    non_robust_share: float
    estimates: dict[int, list[float]]         # subset size -> the sample-efficient estimate of each repeat
    pseudo_kendall_tau_before: float
    pseudo_kendall_tau_after: float
    pseudo_auroc_before: Optional[float]
    pseudo_auroc_after: Optional[float]
    pseudo_fit_split: str
    seconds: float
    input_margins: list[float] = field(repr=False)
    logit_margins: list[float] = field(repr=False)
    correct: list[bool] = field(repr=False)
    labels: list[int] = field(repr=False)

    def estimate_error(self, size: int) -> tuple[float, float]:
        """Mean and standard deviation over the repeats of |estimate − full attack's robust accuracy|."""
        errors = torch.tensor([abs(value - self.robust_accuracy) for value in self.estimates[size]])
        return float(errors.mean()), float(errors.std(unbiased=False))

    def summary(self) -> dict:
        """The model's numbers without its per-image lists (what a plot of the zoo needs; no deep copy of 4 × n)."""
        return {item.name: getattr(self, item.name) for item in fields(self) if item.name not in PER_IMAGE_FIELDS}


@dataclass(frozen=True)
class ZooReport:
    dataset: str
    config: ZooConfig
    entries: tuple[ZooEntry, ...]

    @property
    def least_consistent(self) -> ZooEntry:
        return min(self.entries, key=lambda entry: entry.kendall_tau)


def _finite(value: float) -> Optional[float]:
    """None where a detection figure is undefined (every image robust, or none): JSON has no NaN."""
    return value if math.isfinite(value) else None


def zoo_entry(model: ClassifierWrapper, card: ModelCard, test_set: ImageDataset,
              train_set: Optional[ImageDataset], config: ZooConfig,
              progress: Optional[ProgressCallback] = None) -> ZooEntry:
    """The zoo figures of one model on the first `config.n` images of `test_set`."""
    started = time.perf_counter()
    estimator = InputMarginEstimator(norm=config.norm)
    images, labels = test_set.images[:config.n], test_set.labels[:config.n]
    study = margin_study(model, images, labels, norm=config.norm, eps=config.eps, estimator=estimator,
                         dataset=test_set.name, progress=progress)
    summary = study.summary(eps=config.eps)
    estimates = sample_efficient_sweep(study.scores.logit_margin, study.correct, study.input.margins, config.eps,
                                       config.subset_sizes, config.repeats, seed=config.seed)
    pseudo = pseudo_margin_study(model, study, test_set.images, train_set=train_set, estimator=estimator,
                                 fit_n=config.pseudo_fit_n, source=config.pseudo_source, eps=config.eps)
    headline = card.headline() or {}
    return ZooEntry(
        model_id=card.id, recipe=(card.training or {}).get("recipe", "unknown"), description=card.description,
        card_clean_accuracy=headline.get("clean_accuracy"), card_robust_accuracy=headline.get("robust_accuracy"),
        card_attack=headline.get("attack"), card_eps=headline.get("eps"),
        clean_accuracy=round(float(study.correct.float().mean()), 6), robust_accuracy=summary.robust_accuracy_attack,
        kendall_tau=summary.kendall_tau, pearson=summary.pearson, auroc=_finite(summary.auroc),
        aupr=_finite(summary.aupr), fpr_at_95_tpr=_finite(summary.fpr_at_95_tpr),
        non_robust_share=summary.non_robust_share, estimates=estimates,
        pseudo_kendall_tau_before=pseudo.result.kendall_tau_before,
        pseudo_kendall_tau_after=pseudo.result.kendall_tau_after,
        pseudo_auroc_before=_finite(pseudo.result.auroc_before), pseudo_auroc_after=_finite(pseudo.result.auroc_after),
        pseudo_fit_split=pseudo.fit_split, seconds=round(time.perf_counter() - started, 1),
        input_margins=[round(float(v), 6) for v in study.input.margins],
        logit_margins=[round(float(v), 5) for v in study.scores.logit_margin],
        correct=[bool(v) for v in study.correct], labels=[int(v) for v in study.labels])


def zoo_study(models: dict[str, tuple[ClassifierWrapper, ModelCard]], test_set: ImageDataset,
              train_set: Optional[ImageDataset], config: ZooConfig,
              progress: Optional[ProgressCallback] = None) -> ZooReport:
    """`zoo_entry` for every model (id -> (model, card)), in order; `progress` reports (models done, total, info)."""
    require(len(models) > 0, "The zoo needs at least one model.")
    require(len(test_set) >= config.n, f"The zoo asks for {config.n} test images; {test_set.name} has {len(test_set)}.")
    entries = []
    for done, (model, card) in enumerate(models.values(), start=1):
        entries.append(zoo_entry(model, card, test_set, train_set, config))
        if progress is not None:
            progress(done, len(models), {"model": card.id, "kendall_tau": round(entries[-1].kendall_tau, 3)})
    return ZooReport(dataset=test_set.name, config=config, entries=tuple(entries))
