"""Robust vs non-robust features (Ilyas et al. 2019, PAPERS.md §3): build the constructed datasets, save and
reload them, train fresh models on them and test those on the *original* test set.

D_rand / D_det: targeted L2 PGD from each image to a random class / to (y + 1) mod C, relabelled with the target.
D_R / D_NR: from a random other image, match a robust / standard model's penultimate representation.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch

from sia_core.attacks import PGD
from sia_core.progress import ProgressCallback
from sia_core.data.base import ImageDataset
from sia_core.errors import DataError
from sia_core.models.wrapper import ClassifierWrapper, frozen_eval

ConstructionKind = Literal["d_rand", "d_det", "d_r", "d_nr"]
KINDS: tuple[str, ...] = ("d_rand", "d_det", "d_r", "d_nr")
KIND_LABELS = {"d": "D (original)", "d_rand": "D̂_rand", "d_det": "D̂_det", "d_r": "D̂_R", "d_nr": "D̂_NR"}
FORMAT_VERSION = 1
CHECKPOINT_EVERY_BATCHES = 8

# The paper's CIFAR-10 numbers (PAPERS.md §3.6), shown beside ours and labelled as the paper's.
PAPER_CIFAR10 = {
    "d": {"test_accuracy": 0.953, "robust_accuracy_l2_0.25": 0.0449, "source": "Table 1 / Table 7"},
    "d_rand": {"test_accuracy": 0.633, "robust_accuracy_l2_0.25": None, "source": "Table 1"},
    "d_det": {"test_accuracy": 0.437, "robust_accuracy_l2_0.25": None, "source": "Table 1"},
    "d_r": {"test_accuracy": 0.854, "robust_accuracy_l2_0.25": 0.482, "source": "Table 7"},
    "d_nr": {"test_accuracy": 0.8768, "robust_accuracy_l2_0.25": 0.0082, "source": "Table 7"},
}


@dataclass(frozen=True)
class ConstructionConfig:
    """How a constructed set is made.

    d_rand / d_det: `eps` is the L2 radius, `steps` PGD steps of `step_size` (paper, CIFAR-10: 0.5, 100, 0.1).
    d_r / d_nr: `steps` normalized-gradient steps of `step_size` (paper: 1000 steps of 0.1).
    """

    kind: ConstructionKind
    n: int = 2000
    eps: float = 1.0
    steps: int = 100
    step_size: float = 0.1
    seed: int = 0
    batch_size: int = 250

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Unknown kind {self.kind!r}; choose one of {', '.join(KINDS)}")


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

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def as_dataset(self) -> ImageDataset:
        return ImageDataset(name=f"{self.config.kind}-{self.source_model}", images=self.images, labels=self.labels,
                            class_names=self.class_names, source=f"{KIND_LABELS[self.config.kind]} built from "
                                                                 f"{self.source_model}")

    def save(self, path: str | Path) -> None:
        """An .npz with uint8-free float16 images, labels, indices and the construction parameters (JSON)."""
        meta = {"format": FORMAT_VERSION, "config": asdict(self.config), "source_model": self.source_model,
                "class_names": list(self.class_names), "metric": self.metric}
        np.savez_compressed(Path(path), images=self.images.numpy().astype(np.float16),
                            labels=self.labels.numpy(), original_labels=self.original_labels.numpy(),
                            source_indices=self.source_indices.numpy(), start_indices=self.start_indices.numpy(),
                            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))

    @classmethod
    def load(cls, path: str | Path) -> "ConstructedSet":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as archive:
                meta = json.loads(archive["meta"].tobytes().decode())
                arrays = {key: archive[key] for key in ("images", "labels", "original_labels", "source_indices",
                                                         "start_indices")}
        except (OSError, KeyError, ValueError) as error:
            raise DataError(f"{path} is not a constructed dataset saved by SIA Explorer ({error}).") from error
        if meta.get("format") != FORMAT_VERSION:
            raise DataError(f"{path} has format {meta.get('format')}, expected {FORMAT_VERSION}.")
        return cls(config=ConstructionConfig(**meta["config"]), source_model=meta["source_model"],
                   images=torch.from_numpy(arrays["images"].astype(np.float32)),
                   labels=torch.from_numpy(arrays["labels"]).long(),
                   original_labels=torch.from_numpy(arrays["original_labels"]).long(),
                   source_indices=torch.from_numpy(arrays["source_indices"]).long(),
                   start_indices=torch.from_numpy(arrays["start_indices"]).long(),
                   class_names=tuple(meta["class_names"]), metric=meta.get("metric", {}))


def relabel_targets(labels: torch.Tensor, kind: ConstructionKind, num_classes: int, seed: int) -> torch.Tensor:
    """d_det: (y + 1) mod C; d_rand: uniformly random classes (seeded)."""
    if kind == "d_det":
        return (labels + 1) % num_classes
    if kind == "d_rand":
        return torch.randint(num_classes, labels.shape, generator=torch.Generator().manual_seed(seed))
    raise ValueError(f"{kind} is not a relabelled set")


def representation_error(model: ClassifierWrapper, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(N,) ||g(images) - targets|| / ||targets|| with g the penultimate representation."""
    with frozen_eval(model), torch.no_grad():
        features = model.features(images.to(model.device))
    return ((features - targets).norm(dim=1) / targets.norm(dim=1).clamp_min(1e-12)).cpu()


def match_representation(model: ClassifierWrapper, start: torch.Tensor, targets: torch.Tensor, *, steps: int,
                         step_size: float) -> torch.Tensor:
    """Normalized gradient descent on ||g(z) - target|| / ||target|| from `start`, clipped to [0, 1] each step."""
    z = start.clone().to(model.device)
    targets = targets.to(model.device)
    scale = targets.norm(dim=1).clamp_min(1e-12)
    with frozen_eval(model):
        for _ in range(steps):
            z.requires_grad_(True)
            loss = ((model.features(z) - targets).norm(dim=1) / scale).sum()
            (gradient,) = torch.autograd.grad(loss, z)
            with torch.no_grad():
                norm = gradient.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
                z = (z - step_size * gradient / norm).clamp(0, 1)
    return z.detach().cpu()


def build_constructed_set(model: ClassifierWrapper, train_set: ImageDataset, config: ConstructionConfig, *,
                          out: Optional[str | Path] = None, resume: bool = True,
                          progress: Optional[ProgressCallback] = None) -> ConstructedSet:
    """Build `config.n` samples batch by batch; with `out`, each finished batch is saved so a rerun resumes."""
    n = min(config.n, len(train_set))
    order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(config.seed))[:n]
    if config.kind in ("d_r", "d_nr"):
        # a random *other* image to start from, independent of the label (derangement by a shifted permutation)
        starts = order[(torch.arange(n) + 1 + torch.randint(n - 1, (1,), generator=torch.Generator().manual_seed(
            config.seed + 1))) % n] if n > 1 else order
    else:
        starts = order
    targets = (relabel_targets(train_set.labels[order], config.kind, train_set.num_classes, config.seed)
               if config.kind in ("d_rand", "d_det") else train_set.labels[order])
    done_images: list[torch.Tensor] = []
    if out is not None and resume and Path(out).is_file():
        previous = ConstructedSet.load(out)
        if previous.config == config and previous.source_model == model.model_id:
            done_images = [previous.images]
    start = sum(len(part) for part in done_images)
    batches = -(-n // config.batch_size)
    for batch_start in range(start, n, config.batch_size):
        index = order[batch_start:batch_start + config.batch_size]
        if config.kind in ("d_rand", "d_det"):
            attack = PGD(eps=config.eps, norm="l2", steps=config.steps, step_size=config.step_size, random_start=False)
            with frozen_eval(model):
                images = attack.perturb(model, train_set.images[index].to(model.device),
                                        train_set.labels[index].to(model.device),
                                        target=targets[batch_start:batch_start + len(index)].to(model.device)).cpu()
        else:
            with frozen_eval(model), torch.no_grad():
                goal = model.features(train_set.images[index].to(model.device))
            images = match_representation(model, train_set.images[starts[batch_start:batch_start + len(index)]], goal,
                                          steps=config.steps, step_size=config.step_size)
        done_images.append(images)
        batch_number = batch_start // config.batch_size + 1
        # checkpoint every few batches: re-saving the whole growing set after each one is quadratic work
        if out is not None and batch_number % CHECKPOINT_EVERY_BATCHES == 0:
            _assemble(model, train_set, config, torch.cat(done_images), order, starts, targets).save(out)
        if progress is not None:
            progress(batch_number, batches, {"built": sum(len(part) for part in done_images)})
    final = _assemble(model, train_set, config, torch.cat(done_images) if done_images else
                      torch.empty(0, *train_set.image_shape), order, starts, targets, final=True)
    if out is not None:
        final.save(out)  # with its metric, which the partial saves do not compute
    return final


def _assemble(model: ClassifierWrapper, train_set: ImageDataset, config: ConstructionConfig, images: torch.Tensor,
              order: torch.Tensor, starts: torch.Tensor, targets: torch.Tensor, final: bool = False) -> ConstructedSet:
    count = len(images)
    index = order[:count]
    metric: dict[str, float] = {}
    if count and final:
        if config.kind in ("d_rand", "d_det"):
            metric["targeted_success_rate"] = float((_predict_all(model, images) == targets[:count]).float().mean())
        else:
            with frozen_eval(model), torch.no_grad():
                goal = torch.cat([model.features(train_set.images[index[i:i + 512]].to(model.device)).cpu()
                                  for i in range(0, count, 512)])
            before = representation_error(model, train_set.images[starts[:count]], goal)
            after = representation_error(model, images, goal)
            metric["relative_representation_error"] = float(after.mean())
            metric["relative_representation_error_at_start"] = float(before.mean())
    return ConstructedSet(config=config, source_model=model.model_id, images=images, labels=targets[:count].clone(),
                          original_labels=train_set.labels[index].clone(), source_indices=index.clone(),
                          start_indices=starts[:count].clone(), class_names=train_set.class_names, metric=metric)


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

    def to_dict(self) -> dict:
        return asdict(self)


def train_on_constructed(train_set: ImageDataset, test_set: ImageDataset, *, kind: str, architecture: str = "tiny-cnn",
                         epochs: int = 10, learning_rate: float = 2e-3, seed: int = 0, eval_eps: float = 0.5,
                         eval_steps: int = 20, eval_n: Optional[int] = 1000, mean: tuple[float, ...] | None = None,
                         std: tuple[float, ...] | None = None,
                         progress: Optional[ProgressCallback] = None) -> tuple[ClassifierWrapper, FeatureTrainingResult]:
    """Standard training on `train_set` (no augmentation), tracking test accuracy per epoch; then clean accuracy on
    the whole test set and L2-PGD robust accuracy on its first `eval_n` images."""
    from sia_core.evaluation import evaluate
    from sia_core.training import TrainConfig, train

    model = _fresh_model(f"trained-on-{kind}", architecture, test_set, mean, std)
    test_accuracy: list[float] = []
    probe = test_set.subset(slice(0, 2000))

    def after_epoch(epoch: int, total: int, info: dict) -> None:
        test_accuracy.append(evaluate(model, probe).clean_accuracy)  # the curve: first 2,000 test images
        if progress is not None:
            progress(epoch, total, {**info, "test_accuracy": test_accuracy[-1]})

    history = train(model, train_set, TrainConfig(epochs=epochs, learning_rate=learning_rate, seed=seed),
                    progress=after_epoch)
    train_accuracy = history.epoch_train_accuracy
    predictions = _predict_all(model, test_set.images)
    clean = float((predictions == test_set.labels).float().mean())
    relabelled = (float((predictions == (test_set.labels + 1) % test_set.num_classes).float().mean())
                  if kind == "d_det" else None)
    attack = PGD(eps=eval_eps, norm="l2", steps=eval_steps, seed=seed)
    robust = evaluate(model, test_set, attack=attack, n=eval_n).robust_accuracy or 0.0
    return model, FeatureTrainingResult(kind=kind, n_train=len(train_set), test_accuracy=clean, robust_accuracy=robust,
                                        eps=eval_eps, attack=attack.description,
                                        epoch_train_accuracy=tuple(train_accuracy),
                                        epoch_test_accuracy=tuple(test_accuracy),
                                        relabelled_test_accuracy=relabelled)


@dataclass(frozen=True)
class TransferPoint:
    """One architecture of the transfer study (PAPERS.md §3.6, Figure 3)."""

    architecture: str
    accuracy_from_det: float   # trained on D̂_det, tested on the original test set
    transfer_success: float    # share of the source model's adversarial examples that fool a standard model of it
    standard_accuracy: float   # that standard model (trained on the same source images with their true labels)

    def to_dict(self) -> dict:
        return asdict(self)


def transfer_study(source: ClassifierWrapper, constructed: ConstructedSet, train_set: ImageDataset,
                   test_set: ImageDataset, architectures: tuple[str, ...], *, epochs: int = 5, attack_eps: float = 0.5,
                   attack_steps: int = 20, attack_n: int = 1000, seed: int = 0,
                   progress: Optional[ProgressCallback] = None) -> tuple[TransferPoint, ...]:
    """For each architecture: train one copy on `constructed` (D̂_det) and one on the same source images with their
    true labels; x = the first's test accuracy, y = untargeted transfer success of the source model's L2-PGD
    examples (first `attack_n` test images) to the second, counted on images both models classify correctly.

    The paper's claim: architectures that learn more from D̂_det are also the ones the source's attacks transfer to.
    """
    from sia_core.training import TrainConfig, channel_statistics, train

    if constructed.config.kind != "d_det":
        raise DataError(f"The transfer study trains on D̂_det; this set is {KIND_LABELS[constructed.config.kind]}.")
    originals = train_set.subset(constructed.source_indices)
    attacked = test_set.subset(slice(0, attack_n))
    attack = PGD(eps=attack_eps, norm="l2", steps=attack_steps, seed=seed)
    with frozen_eval(source):
        adversarial = torch.cat([attack.perturb(source, attacked.images[i:i + 250].to(source.device),
                                                attacked.labels[i:i + 250].to(source.device)).cpu()
                                 for i in range(0, len(attacked), 250)])
    source_correct = _predict_all(source, attacked.images) == attacked.labels
    mean, std = channel_statistics(test_set)
    points: list[TransferPoint] = []
    for number, architecture in enumerate(architectures, start=1):
        from_det, standard = (_fresh_model(f"transfer-{architecture}", architecture, test_set, tuple(mean), tuple(std))
                              for _ in range(2))
        train(from_det, constructed.as_dataset(), TrainConfig(epochs=epochs, learning_rate=2e-3, seed=seed))
        train(standard, originals, TrainConfig(epochs=epochs, learning_rate=2e-3, seed=seed))
        standard_correct = _predict_all(standard, attacked.images) == attacked.labels
        fooled = _predict_all(standard, adversarial) != attacked.labels
        counted = source_correct & standard_correct
        points.append(TransferPoint(
            architecture=architecture,
            accuracy_from_det=float((_predict_all(from_det, test_set.images) == test_set.labels).float().mean()),
            transfer_success=float(fooled[counted].float().mean()) if counted.any() else 0.0,
            standard_accuracy=float(standard_correct.float().mean())))
        if progress is not None:
            progress(number, len(architectures), points[-1].to_dict())
    return tuple(points)



def _fresh_model(model_id: str, architecture: str, test_set: ImageDataset, mean: tuple[float, ...] | None = None,
                 std: tuple[float, ...] | None = None) -> ClassifierWrapper:
    """An untrained model shaped for `test_set`, normalized by its statistics (not the constructed set's)."""
    from sia_core.models.registry import ModelCard, build_model
    from sia_core.training import channel_statistics

    if mean is None or std is None:
        computed_mean, computed_std = channel_statistics(test_set)
        mean, std = tuple(computed_mean), tuple(computed_std)
    return build_model(ModelCard(id=model_id, dataset=test_set.name, architecture=architecture,
                                 input_shape=test_set.image_shape, class_names=test_set.class_names, mean=mean,
                                 std=std))


def _predict_all(model: ClassifierWrapper, images: torch.Tensor) -> torch.Tensor:
    return model.logits(images).argmax(1)  # `logits` batches and runs without autograd
