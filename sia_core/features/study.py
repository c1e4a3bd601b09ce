"""The robust / non-robust features study as one function (Ilyas et al. 2019, Tables 1 and 7): build each
constructed set from its source model, train a fresh model on each, score it on the original test set, and
train the same network on as many original images as the scale's own "D"."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Mapping, Optional

from sia_core.attacks.pgd import PGD
from sia_core.data.base import ImageDataset
from sia_core.evaluation import evaluate
from sia_core.features.build import build_constructed_set
from sia_core.features.constructed import ConstructedSet, ConstructionConfig
from sia_core.features.training import FeatureTrainingConfig, FeatureTrainingResult, fresh_model, train_on_constructed
from sia_core.models.wrapper import ClassifierWrapper
from sia_core.progress import ProgressCallback
from sia_core.validation import optional, positive, positive_int, require

PREVIEW_IMAGES = 8  # images kept of each set: the page's grid shows eight


@dataclass(frozen=True)
class FeatureSetPlan:
    """One constructed set of the study: how it is made and the model (an id) whose features it takes."""

    source_model: str
    construction: ConstructionConfig


@dataclass(frozen=True)
class FeaturesStudyConfig:
    """The study's sets, one fresh model's training and scoring per set, an optional second L2 radius to score at
    (Table 7's ε 0.5 column), and, with `baseline`, the same network trained on as many original images as the
    first set has."""

    sets: tuple[FeatureSetPlan, ...]
    training: FeatureTrainingConfig
    extra_eval_eps_l2: Optional[float] = None
    baseline: bool = False
    baseline_learning_rate: float = 2e-3

    def __post_init__(self) -> None:
        require(len(self.sets) > 0, "sets: the features study needs at least one constructed set.")
        kinds = [plan.construction.kind for plan in self.sets]
        require(len(set(kinds)) == len(kinds), f"Each kind once, got {kinds}.")
        optional(positive, "extra_eval_eps_l2", self.extra_eval_eps_l2)
        positive("baseline_learning_rate", self.baseline_learning_rate)

    @property
    def sources(self) -> dict[str, str]:
        """Kind -> source model id."""
        return {plan.construction.kind: plan.source_model for plan in self.sets}


@dataclass(frozen=True)
class FeaturesBaseline:
    """The scale's own "D": the same network and schedule on the first `n_train` original training images."""

    n_train: int
    test_accuracy: float
    robust_accuracy: float
    robust_accuracy_extra: Optional[float]


@dataclass(frozen=True)
class FeaturesStudyReport:
    """Per kind: the first images of the set (for the grid), its size, the fresh model's scores, and its robust
    accuracy at the extra radius; the baseline; seconds per stage."""

    config: FeaturesStudyConfig
    previews: dict[str, ConstructedSet]
    counts: dict[str, int]
    training: dict[str, FeatureTrainingResult]
    robust_accuracy_extra: dict[str, float]
    baseline: Optional[FeaturesBaseline]
    seconds: dict[str, float]


def preview(built: ConstructedSet, count: int = PREVIEW_IMAGES) -> ConstructedSet:
    """The first `count` images of a constructed set in float16 (a grid of 8-bit pixels needs no more)."""
    positive_int("count", count)
    first = built.head(count)
    return dataclasses.replace(first, images=first.images.half())


def _robust_accuracy(model: ClassifierWrapper, test_set: ImageDataset, eps_l2: float, config: FeatureTrainingConfig
                     ) -> float:
    attack = PGD(eps=eps_l2, norm="l2", steps=config.eval_steps, seed=config.seed)
    return evaluate(model, test_set, attack=attack, n=config.eval_n).robust_accuracy or 0.0


def features_study(sources: Mapping[str, ClassifierWrapper], train_set: ImageDataset, test_set: ImageDataset,
                   config: FeaturesStudyConfig, progress: Optional[ProgressCallback] = None) -> FeaturesStudyReport:
    """Every set of `config` built from its source (`sources`: model id -> model) on `train_set`, a fresh model
    trained on each and scored on the original `test_set`; then the baseline. Progress counts stages."""
    missing = sorted(set(config.sources.values()) - set(sources))
    require(not missing, f"The features study needs the source models {missing}.")
    stages = 2 * len(config.sets) + int(config.baseline)
    previews, counts, training, extra, seconds = {}, {}, {}, {}, {}

    def done(stage: str, started: float) -> None:
        seconds[stage] = round(time.perf_counter() - started, 1)
        if progress is not None:
            progress(len(seconds), stages, {"stage": stage})

    for plan in config.sets:
        kind = plan.construction.kind
        started = time.perf_counter()
        built = build_constructed_set(sources[plan.source_model], train_set, plan.construction)
        done(f"build {kind}", started)
        started = time.perf_counter()
        model, training[kind] = train_on_constructed(built.as_dataset(), test_set, config.training, kind=kind)
        if config.extra_eval_eps_l2 is not None:
            extra[kind] = _robust_accuracy(model, test_set, config.extra_eval_eps_l2, config.training)
        done(f"train {kind}", started)
        previews[kind], counts[kind] = preview(built), len(built)
    baseline = None
    if config.baseline:
        from sia_core.training import TrainConfig, train

        started = time.perf_counter()
        n = config.sets[0].construction.n
        model = fresh_model("trained-on-d", config.training.architecture, test_set, seed=config.training.seed)
        train(model, train_set.subset(slice(0, n)), TrainConfig(
            epochs=config.training.epochs, learning_rate=config.baseline_learning_rate, seed=config.training.seed))
        baseline = FeaturesBaseline(
            n_train=n, test_accuracy=evaluate(model, test_set).clean_accuracy,
            robust_accuracy=_robust_accuracy(model, test_set, config.training.eval_eps_l2, config.training),
            robust_accuracy_extra=(None if config.extra_eval_eps_l2 is None else
                                   _robust_accuracy(model, test_set, config.extra_eval_eps_l2, config.training)))
        done("train d", started)
    return FeaturesStudyReport(config=config, previews=previews, counts=counts, training=training,
                               robust_accuracy_extra=extra, baseline=baseline, seconds=seconds)
