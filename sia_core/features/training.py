"""Training a fresh model on a constructed set and scoring it on the *original* test set, clean and under an
L2 PGD attack (the paper's Tables 1 and 7)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import torch

from sia_core.attacks.pgd import PGD
from sia_core.data.base import ImageDataset
from sia_core.features.constructed import KINDS
from sia_core.models.architectures import ARCHITECTURES
from sia_core.models.wrapper import ClassifierWrapper
from sia_core.progress import ProgressCallback
from sia_core.scaling import batch_size_for
from sia_core.validation import non_negative, one_of, optional, positive_int

if TYPE_CHECKING:
    from sia_core.training import TrainConfig

ACCURACY_CURVE_IMAGES = 2000  # the per-epoch curve scores the first test images only: it runs after every epoch


@dataclass(frozen=True)
class FeatureTrainingResult:
    """A fresh model trained on a constructed set, scored on the original test set (last epoch, as the paper)."""

    kind: str
    n_train: int
    test_accuracy: float
    robust_accuracy: float
    eps: float
    attack: str
    epoch_train_accuracy: tuple[float, ...]
    epoch_test_accuracy: tuple[float, ...]
    # d_det only: accuracy against t(y) = (y + 1) mod C on the test set; high means the model learned the label
    # permutation from robust features instead of the non-robust ones (the paper's Table 10)
    relabelled_test_accuracy: Optional[float] = None
    # 95% intervals over test images (the bootstrap of a rate over n images: binomial redraws), and their counts
    test_accuracy_ci95: Optional[tuple[float, float]] = None
    robust_accuracy_ci95: Optional[tuple[float, float]] = None
    relabelled_test_accuracy_ci95: Optional[tuple[float, float]] = None
    test_n: Optional[int] = None
    robust_n: Optional[int] = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FeatureTrainingConfig:
    """A fresh model's training on a constructed set (standard training with Adam and a one-cycle schedule;
    `augment` as `TrainConfig.augment`) and its scoring: clean on the whole original test set, L2-PGD (radius
    `eval_eps_l2`, `eval_steps` steps) on its first `eval_n` images (all when None)."""

    architecture: str = "tiny-cnn"
    epochs: int = 10
    learning_rate: float = 2e-3
    seed: int = 0
    eval_eps_l2: float = 0.5
    eval_steps: int = 20
    eval_n: Optional[int] = 1000
    augment: str = "none"
    batch_size: int = 128
    weight_decay: float = 0.0

    def train_config(self) -> "TrainConfig":
        from sia_core.training import TrainConfig

        return TrainConfig(epochs=self.epochs, learning_rate=self.learning_rate, seed=self.seed, augment=self.augment,
                           batch_size=self.batch_size, weight_decay=self.weight_decay)

    def __post_init__(self) -> None:
        one_of("architecture", self.architecture, ARCHITECTURES)
        self.train_config()  # checks the training fields
        non_negative("eval_eps_l2", self.eval_eps_l2)
        positive_int("eval_steps", self.eval_steps)
        optional(positive_int, "eval_n", self.eval_n)


def train_on_constructed(train_set: ImageDataset, test_set: ImageDataset, config: FeatureTrainingConfig, *, kind: str,
                         mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None,
                         progress: Optional[ProgressCallback] = None, checkpoint: Optional[str | Path] = None,
                         model_id: Optional[str] = None) -> tuple[ClassifierWrapper, FeatureTrainingResult]:
    """Standard training on `train_set` (a constructed set of `kind`, or "d" for original images), tracking test
    accuracy per epoch; then the scores of `config` on the original `test_set`. With `checkpoint`, training
    resumes from it (the per-epoch curve then starts at the resumed epoch)."""
    from sia_core.evaluation import evaluate
    from sia_core.training import train

    if kind != "d":
        KINDS[kind]  # unknown kinds raise, listing the choices
    model = fresh_model(model_id or f"trained-on-{kind}", config.architecture, test_set, mean, std, seed=config.seed)
    test_accuracy: list[float] = []
    probe = test_set.subset(slice(0, ACCURACY_CURVE_IMAGES))

    def after_epoch(epoch: int, total: int, info: dict) -> None:
        test_accuracy.append(evaluate(model, probe).clean_accuracy)
        if progress is not None:
            progress(epoch, total, {**info, "test_accuracy": test_accuracy[-1]})

    history = train(model, train_set, config.train_config(), progress=after_epoch, checkpoint=checkpoint)
    return model, score_on_test(model, test_set, config, kind=kind, n_train=len(train_set),
                                epoch_train_accuracy=tuple(history.epoch_train_accuracy),
                                epoch_test_accuracy=tuple(test_accuracy))


def score_on_test(model: ClassifierWrapper, test_set: ImageDataset, config: FeatureTrainingConfig, *, kind: str,
                  n_train: int, epoch_train_accuracy: tuple[float, ...] = (),
                  epoch_test_accuracy: tuple[float, ...] = ()) -> FeatureTrainingResult:
    """A trained model's scores on the original test set: clean on all of it (and, for d_det, against the
    relabelled classes (y + 1) mod C), robust under `config`'s L2 PGD on its first `eval_n` images, each with its
    95% interval over the images."""
    from sia_core.claims import proportion_ci
    from sia_core.evaluation import evaluate

    predictions = model.logits(test_set.images, batch_size=batch_size_for(test_set.image_shape, 512)).argmax(1)
    clean = float((predictions == test_set.labels).float().mean())
    relabelled = (float((predictions == (test_set.labels + 1) % test_set.num_classes).float().mean())
                  if kind == "d_det" else None)
    attack = PGD(eps=config.eval_eps_l2, norm="l2", steps=config.eval_steps, seed=config.seed)
    report = evaluate(model, test_set, attack=attack, n=config.eval_n)
    robust = report.robust_accuracy or 0.0
    test_n, robust_n = len(test_set), report.n
    return FeatureTrainingResult(kind=kind, n_train=n_train, test_accuracy=clean, robust_accuracy=robust,
                                 eps=config.eval_eps_l2, attack=attack.description,
                                 epoch_train_accuracy=epoch_train_accuracy, epoch_test_accuracy=epoch_test_accuracy,
                                 relabelled_test_accuracy=relabelled,
                                 test_accuracy_ci95=proportion_ci(clean, test_n),
                                 robust_accuracy_ci95=proportion_ci(robust, robust_n),
                                 relabelled_test_accuracy_ci95=(None if relabelled is None
                                                                else proportion_ci(relabelled, test_n)),
                                 test_n=test_n, robust_n=robust_n)


def fresh_model(model_id: str, architecture: str, test_set: ImageDataset, mean: tuple[float, ...] | None = None,
                std: tuple[float, ...] | None = None, *, seed: int = 0) -> ClassifierWrapper:
    """An untrained model shaped for `test_set`, normalized by its statistics (not the constructed set's), its
    weights drawn from a generator seeded by `seed` (never the process's global one), so a run repeats exactly."""
    from sia_core.models.architectures import reinitialize
    from sia_core.models.registry import ModelCard, build_model
    from sia_core.training import channel_statistics

    if mean is None or std is None:
        computed_mean, computed_std = channel_statistics(test_set)
        mean, std = tuple(computed_mean), tuple(computed_std)
    model = build_model(ModelCard(id=model_id, dataset=test_set.name, architecture=architecture,
                                  input_shape=test_set.image_shape, class_names=test_set.class_names, mean=mean,
                                  std=std))
    reinitialize(model.network, torch.Generator().manual_seed(seed))
    return model
