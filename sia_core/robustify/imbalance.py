"""SIA augmentation for imbalanced classes, against re-balancing and strong-augmentation baselines.

One long-tailed training set per seed; every method trains the same architecture from the same initial weights
for the same number of optimizer steps (the budget: `epochs` passes over the long-tailed set), and is scored on the
balanced test set. The two augmentation methods warm up on the long-tailed set for the first `augment_at` share of
the budget, then add new images of each minority class (true label kept) until the counts are equal: random
attribute edits, or SIA variants against the model as it is at that point. Everything else is identical, so the
table tells "attacked" from "augmented" from "re-balanced".
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Mapping, Optional

import torch

from sia_core.attacks.semantic import SemanticAttack
from sia_core.augmentation import RandomAttributes
from sia_core.data.base import ImageDataset
from sia_core.features.training import fresh_model
from sia_core.models.architectures import ARCHITECTURES
from sia_core.models.wrapper import ClassifierWrapper, frozen_eval
from sia_core.progress import ProgressCallback
from sia_core.registry import Entry, Registry
from sia_core.robustify.long_tail import (class_counts, inverse_frequency_weights, long_tailed, oversampled,
                                          with_minority_variants)
from sia_core.scaling import batch_size_for
from sia_core.training import Refresh, TrainConfig, train
from sia_core.validation import in_range, non_negative, one_of, optional, positive, positive_int, require

SAMPLES_PER_CLASS = 3  # added images kept per minority class, to show what a method made


@dataclass(frozen=True)
class ImbalanceConfig:
    """The study's settings (see the module docstring). `n_max` None = the smallest class of the training set."""

    rho: float = 100.0
    n_max: Optional[int] = None
    methods: tuple[str, ...] = ("plain", "reweight", "oversample", "random-attributes", "sia")
    seeds: int = 3
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 2e-3
    architecture: str = "tiny-cnn"
    augment_at: float = 0.5
    sia_steps: int = 5
    sia_eps_linf: float = 4 / 255

    def __post_init__(self) -> None:
        in_range("rho", self.rho, 1.0, float("inf"))
        optional(positive_int, "n_max", self.n_max)
        require(len(self.methods) > 0, "methods must name at least one method.")
        unknown = [name for name in self.methods if name not in IMBALANCE_METHODS]
        require(not unknown, f"methods: unknown {', '.join(map(str, unknown))}; choose from "
                             f"{', '.join(IMBALANCE_METHODS.names())}.")
        positive_int("seeds", self.seeds)
        positive_int("epochs", self.epochs)
        positive_int("batch_size", self.batch_size)
        positive("learning_rate", self.learning_rate)
        one_of("architecture", self.architecture, ARCHITECTURES)
        in_range("augment_at", self.augment_at, 0.0, 1.0, low_open=True)
        positive_int("sia_steps", self.sia_steps)
        non_negative("sia_eps_linf", self.sia_eps_linf)


@dataclass(frozen=True)
class TrainingPlan:
    """What a method changes: the set it starts on, the loss weights, and a set swap during training."""

    train_set: ImageDataset
    class_weights: Optional[tuple[float, ...]] = None
    refresh: Optional[Refresh] = None


# every plan maker is called as IMBALANCE_METHODS.build(name, long_tail=, config=, seed=, added=)
PlanMaker = Callable[..., TrainingPlan]


def _plain(*, long_tail: ImageDataset, config: ImbalanceConfig, seed: int, added: dict) -> TrainingPlan:
    return TrainingPlan(long_tail)


def _reweight(*, long_tail: ImageDataset, config: ImbalanceConfig, seed: int, added: dict) -> TrainingPlan:
    return TrainingPlan(long_tail, class_weights=inverse_frequency_weights(class_counts(long_tail)))


def _oversample(*, long_tail: ImageDataset, config: ImbalanceConfig, seed: int, added: dict) -> TrainingPlan:
    return TrainingPlan(oversampled(long_tail, seed=seed))


def _augmenting(variants: Callable[[ClassifierWrapper, ImbalanceConfig, int], Callable]) -> PlanMaker:
    """A plan that trains on the long-tailed set, then at `augment_at` of the budget swaps in the set balanced by
    `variants(model, config, seed)` (a `VariantMaker`); the added images land in `added` for display."""
    def plan(*, long_tail: ImageDataset, config: ImbalanceConfig, seed: int, added: dict) -> TrainingPlan:
        swap_epoch = max(1, round(config.epochs * config.augment_at))

        def refresh(model: ClassifierWrapper, epochs_done: int) -> Optional[ImageDataset]:
            if epochs_done != swap_epoch:
                return None
            balanced, mask = with_minority_variants(long_tail, variants(model, config, seed))
            added.update(images=balanced.images[mask], labels=balanced.labels[mask])
            return balanced
        return TrainingPlan(long_tail, refresh=refresh)
    return plan


def _random_variants(model: ClassifierWrapper, config: ImbalanceConfig, seed: int) -> Callable:
    def make(images: torch.Tensor, label: int, round_index: int) -> torch.Tensor:
        return RandomAttributes(eps_linf=config.sia_eps_linf, seed=_variant_seed(seed, label, round_index)).perturb(
            None, images, torch.full((len(images),), label))
    return make


def _sia_variants(model: ClassifierWrapper, config: ImbalanceConfig, seed: int) -> Callable:
    def make(images: torch.Tensor, label: int, round_index: int) -> torch.Tensor:
        # a random start in attribute space makes each round's variant of an image a different one
        attack = SemanticAttack(steps=config.sia_steps, eps_linf=config.sia_eps_linf, random_init=True,
                                seed=_variant_seed(seed, label, round_index))
        labels = torch.full((len(images),), label, dtype=torch.long)
        chunks = []
        with frozen_eval(model):
            for start in range(0, len(images), 256):
                part = images[start:start + 256].to(model.device)
                chunks.append(attack.perturb(model, part, labels[start:start + 256].to(model.device)).cpu())
        return torch.cat(chunks)
    return make


def _variant_seed(seed: int, label: int, round_index: int) -> int:
    return (seed * 1000 + label) * 10_000 + round_index


IMBALANCE_METHODS: Registry[TrainingPlan] = Registry("imbalance method", [
    Entry("plain", "Plain training", "The long-tailed set as it is.", _plain),
    Entry("reweight", "Class re-weighting", "The loss of each class weighted by 1 / its count (mean weight 1).",
          _reweight),
    Entry("oversample", "Over-sampling", "Minority images repeated until every class has the majority's count.",
          _oversample),
    Entry("random-attributes", "Random-attribute augmentation", "New minority images from random attribute edits "
          "(SIA's ranges) plus uniform noise, until the classes are balanced.", _augmenting(_random_variants)),
    Entry("sia", "SIA augmentation", "New minority images from SIA against the model in training (true label "
          "kept): the hard variants of each minority image, until the classes are balanced.",
          _augmenting(_sia_variants)),
])


@dataclass(frozen=True)
class MethodRun:
    method: str
    seed: int
    per_class_accuracy: tuple[float, ...]
    balanced_accuracy: float
    minority_accuracy: float
    train_images: int
    seconds: float


@dataclass(frozen=True)
class MethodSummary:
    """One method over its seeds: mean ± std of balanced and minority accuracy, and the per-class means."""

    method: str
    label: str
    seeds: int
    balanced_accuracy_mean: float
    balanced_accuracy_std: float
    minority_accuracy_mean: float
    minority_accuracy_std: float
    per_class_accuracy_mean: tuple[float, ...]


@dataclass(frozen=True)
class ImbalanceReport:
    dataset: str
    config: ImbalanceConfig
    class_names: tuple[str, ...]
    counts: tuple[int, ...]
    minority_classes: tuple[int, ...]
    runs: tuple[MethodRun, ...] = ()
    samples: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # method -> images, labels

    def summary(self) -> tuple[MethodSummary, ...]:
        """One row per method that ran, in the config's order."""
        rows = []
        for method in self.config.methods:
            runs = [run for run in self.runs if run.method == method]
            if not runs:
                continue
            balanced = [run.balanced_accuracy for run in runs]
            minority = [run.minority_accuracy for run in runs]
            rows.append(MethodSummary(
                method=method, label=IMBALANCE_METHODS[method].label, seeds=len(runs),
                balanced_accuracy_mean=round(statistics.fmean(balanced), 4),
                balanced_accuracy_std=round(statistics.pstdev(balanced), 4),
                minority_accuracy_mean=round(statistics.fmean(minority), 4),
                minority_accuracy_std=round(statistics.pstdev(minority), 4),
                per_class_accuracy_mean=tuple(round(statistics.fmean(values), 4)
                                              for values in zip(*(run.per_class_accuracy for run in runs)))))
        return tuple(rows)

    def to_dict(self) -> dict:
        """The CLI's JSON: the report without the added images, with the summary."""
        return {"dataset": self.dataset, "config": {**asdict(self.config), "methods": list(self.config.methods)},
                "class_names": list(self.class_names), "counts": list(self.counts),
                "minority_classes": list(self.minority_classes),
                "summary": [asdict(row) for row in self.summary()], "runs": [asdict(run) for run in self.runs]}


def per_class_accuracy(model: ClassifierWrapper, test_set: ImageDataset) -> list[float]:
    predictions = model.logits(test_set.images, batch_size=batch_size_for(test_set.image_shape, 512)).argmax(1).cpu()
    correct = predictions == test_set.labels
    return [float(correct[test_set.labels == label].float().mean()) if bool((test_set.labels == label).any())
            else float("nan") for label in range(test_set.num_classes)]


def _fresh_model(long_tail: ImageDataset, config: ImbalanceConfig, seed: int) -> ClassifierWrapper:
    # normalized by the set's statistics; the same start for every method of a seed
    return fresh_model(f"imbalance-{seed}", config.architecture, long_tail, seed=seed)


def run_imbalance_study(train_set: ImageDataset, test_set: ImageDataset, config: ImbalanceConfig = ImbalanceConfig(),
                        progress: Optional[ProgressCallback] = None) -> ImbalanceReport:
    """Every method of `config` on `config.seeds` long-tailed draws of `train_set`, scored on `test_set`.

    Progress counts runs (method × seed)."""
    probe = long_tailed(train_set, config.rho, config.n_max, seed=0)
    counts = class_counts(probe)
    minority = tuple(sorted(sorted(range(len(counts)), key=lambda c: (counts[c], c))[:len(counts) // 2]))
    runs: list[MethodRun] = []
    samples: dict[str, dict[str, torch.Tensor]] = {}
    total = config.seeds * len(config.methods)
    for seed in range(config.seeds):
        long_tail = long_tailed(train_set, config.rho, config.n_max, seed=seed)
        budget = config.epochs * -(-len(long_tail) // config.batch_size)
        for method in config.methods:
            added: dict = {}
            plan = IMBALANCE_METHODS.build(method, long_tail=long_tail, config=config, seed=seed, added=added)
            model = _fresh_model(long_tail, config, seed)
            train_config = TrainConfig(epochs=config.epochs, batch_size=config.batch_size,
                                       learning_rate=config.learning_rate, seed=seed, steps=budget,
                                       class_weights=plan.class_weights)
            started = time.perf_counter()
            train(model, plan.train_set, train_config, refresh=plan.refresh)
            accuracy = per_class_accuracy(model, test_set)
            runs.append(MethodRun(method=method, seed=seed, per_class_accuracy=tuple(accuracy),
                                  balanced_accuracy=statistics.fmean(accuracy),
                                  minority_accuracy=statistics.fmean(accuracy[c] for c in minority),
                                  train_images=len(plan.train_set) + len(added.get("labels", ())),
                                  seconds=round(time.perf_counter() - started, 1)))
            if seed == 0 and added:
                samples[method] = _samples(added)
            if progress is not None:
                progress(len(runs), total, {"method": method, "seed": seed,
                                            "balanced_accuracy": runs[-1].balanced_accuracy})
    return ImbalanceReport(dataset=train_set.name, config=config, class_names=train_set.class_names,
                           counts=tuple(counts), minority_classes=minority, runs=tuple(runs), samples=samples)


def _samples(added: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The first few added images of each class (for the page's gallery)."""
    keep = []
    for label in added["labels"].unique().tolist():
        keep += torch.nonzero(added["labels"] == label).flatten()[:SAMPLES_PER_CLASS].tolist()
    index = torch.tensor(keep, dtype=torch.long)
    return {"images": added["images"][index], "labels": added["labels"][index]}

