"""The transfer study (Ilyas et al. 2019, Figure 3): do architectures that learn more from D̂_det also take more of
the source model's adversarial examples?"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from statistics import fmean
from typing import Optional

import torch

from sia_core.attacks import attack_label
from sia_core.attacks.pgd import PGD
from sia_core.data.base import ImageDataset
from sia_core.errors import DataError
from sia_core.features.constructed import ConstructedSet, relabel_targets
from sia_core.features.training import fresh_model
from sia_core.models.architectures import ARCHITECTURES
from sia_core.models.wrapper import ClassifierWrapper, frozen_eval
from sia_core.progress import ProgressCallback
from sia_core.scaling import batch_size_for
from sia_core.validation import non_negative, one_of, positive, positive_int, require

ATTACK_BATCH = 250


@dataclass(frozen=True)
class TransferPoint:
    """One architecture of the transfer study (Ilyas et al. 2019, Figure 3)."""

    architecture: str
    accuracy_from_det: float   # trained on D̂_det, tested on the original test set
    transfer_success: float    # share of the source model's adversarial examples that fool a standard model of it
    standard_accuracy: float   # that standard model (trained on the same source images with their true labels)
    # the transfer success of the source's examples at the config's further radii, as (radius, rate) in its order:
    # how much the y-axis owes to the attack's size (empty when the config names none)
    transfer_success_by_eps: tuple[tuple[float, float], ...] = ()
    # the D̂_det model against the relabelled classes (y + 1) mod C: what it took of the relabelling, which robust
    # features alone would teach (None in studies saved before it was scored)
    relabelled_accuracy_from_det: Optional[float] = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FeatureTransferConfig:
    """The transfer study's settings: the architectures and how each copy trains (on D̂_det and on the true labels
    alike: Adam at `learning_rate`, one-cycle, `weight_decay`, no augmentation, `epochs` passes), and the source
    model's untargeted L2-PGD attack (radius `attack_eps_l2`, `attack_steps` steps) on the first `attack_n` test
    images; the same attack at each of `sensitivity_eps_l2` is scored too, beside the study's radius (the study's
    point stays at its own)."""

    architectures: tuple[str, ...] = ("mlp", "tiny-cnn", "small-cnn")
    epochs: int = 5
    attack_eps_l2: float = 0.5
    attack_steps: int = 20
    attack_n: int = 1000
    seed: int = 0
    sensitivity_eps_l2: tuple[float, ...] = ()
    # results saved before these two settings were recorded trained at these defaults (`transfer_settings`)
    learning_rate: float = 2e-3
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        require(len(self.architectures) > 0, "architectures: the transfer study needs at least one.")
        for architecture in self.architectures:
            one_of("architecture", architecture, ARCHITECTURES)
        positive_int("epochs", self.epochs)
        non_negative("attack_eps_l2", self.attack_eps_l2)
        positive_int("attack_steps", self.attack_steps)
        positive_int("attack_n", self.attack_n)
        for eps in self.sensitivity_eps_l2:
            non_negative("sensitivity_eps_l2", eps)
        positive("learning_rate", self.learning_rate)
        non_negative("weight_decay", self.weight_decay)

    def attack(self, eps: float) -> PGD:
        """The source's untargeted attack at radius `eps` (the study's, or one of the further radii)."""
        return PGD(eps=eps, norm="l2", steps=self.attack_steps, seed=self.seed)


@dataclass(frozen=True)
class FeatureTransferReport:
    config: FeatureTransferConfig
    source_model: str
    test_set: str
    attack: str
    points: tuple[TransferPoint, ...]


def _fooled_share(model: ClassifierWrapper, adversarial: torch.Tensor, labels: torch.Tensor, counted: torch.Tensor,
                  batch_size: int) -> float:
    """The share of the `counted` images whose adversarial version `model` misclassifies (0 when none counts)."""
    fooled = model.logits(adversarial, batch_size=batch_size).argmax(1) != labels
    return float(fooled[counted].float().mean()) if counted.any() else 0.0


def transfer_study(source: ClassifierWrapper, constructed: ConstructedSet, train_set: ImageDataset,
                   test_set: ImageDataset, config: FeatureTransferConfig = FeatureTransferConfig(),
                   progress: Optional[ProgressCallback] = None) -> FeatureTransferReport:
    """For each architecture: train one copy on `constructed` (D̂_det) and one on the same source images with their
    true labels; x = the first's test accuracy, y = untargeted transfer success of the source model's L2-PGD
    examples (first `attack_n` test images) to the second, counted on images both models classify correctly.

    The paper's claim: architectures that learn more from D̂_det are also the ones the source's attacks transfer to.
    """
    from sia_core.training import TrainConfig, channel_statistics, train

    if constructed.config.kind != "d_det":
        raise DataError(f"The transfer study trains on D̂_det; this set is {constructed.label}.")
    training = TrainConfig(epochs=config.epochs, learning_rate=config.learning_rate, weight_decay=config.weight_decay,
                           seed=config.seed)
    originals = train_set.subset(constructed.source_indices)
    attacked = test_set.subset(slice(0, config.attack_n))
    attacks = {eps: config.attack(eps) for eps in (config.attack_eps_l2, *config.sensitivity_eps_l2)}
    attack_batch = batch_size_for(test_set.image_shape, ATTACK_BATCH)
    predict_batch = batch_size_for(test_set.image_shape, 512)
    with frozen_eval(source):  # the source's examples once per radius, shared by every architecture
        adversarial = {eps: torch.cat([attack.perturb(source, attacked.images[i:i + attack_batch].to(source.device),
                                                      attacked.labels[i:i + attack_batch].to(source.device)).cpu()
                                       for i in range(0, len(attacked), attack_batch)])
                       for eps, attack in attacks.items()}
    source_correct = source.logits(attacked.images, batch_size=predict_batch).argmax(1) == attacked.labels
    relabelled_labels = relabel_targets(test_set.labels, "d_det", test_set.num_classes, seed=config.seed)
    mean, std = channel_statistics(test_set)
    points: list[TransferPoint] = []
    architectures = config.architectures
    for number, architecture in enumerate(architectures, start=1):
        from_det, standard = (fresh_model(f"transfer-{architecture}", architecture, test_set, tuple(mean), tuple(std),
                                          seed=config.seed + offset) for offset in (0, 1))
        train(from_det, constructed.as_dataset(), training)
        train(standard, originals, training)
        standard_correct = standard.logits(attacked.images, batch_size=predict_batch).argmax(1) == attacked.labels
        counted = source_correct & standard_correct
        success = {eps: _fooled_share(standard, images, attacked.labels, counted, predict_batch)
                   for eps, images in adversarial.items()}
        learned = from_det.logits(test_set.images, batch_size=predict_batch).argmax(1)
        points.append(TransferPoint(
            architecture=architecture,
            accuracy_from_det=float((learned == test_set.labels).float().mean()),
            relabelled_accuracy_from_det=float((learned == relabelled_labels).float().mean()),
            transfer_success=success[config.attack_eps_l2],
            standard_accuracy=float(standard_correct.float().mean()),
            transfer_success_by_eps=tuple((eps, success[eps]) for eps in config.sensitivity_eps_l2)))
        if progress is not None:
            progress(number, len(architectures), points[-1].to_dict())
    return FeatureTransferReport(config=config, source_model=source.model_id, test_set=test_set.name,
                                 attack=attacks[config.attack_eps_l2].description, points=tuple(points))


def transfer_settings(result: dict) -> dict:
    """A saved transfer result's settings, each one it predates at its default (as it then ran)."""
    return {**asdict(FeatureTransferConfig()), **result["config"]}


def made_alike(saved: dict, other: dict, ignoring: tuple[str, ...]) -> bool:
    """Whether two saved transfer results (a study or one architecture's part) were made the same way: the same
    source, D̂_det images and settings but those in `ignoring`. A setting one predates counts at its default."""
    def making(result: dict) -> tuple:
        settings = transfer_settings(result)
        return (result.get("source"), result.get("n_train"),
                {key: list(value) if isinstance(value, tuple) else value  # as JSON holds them
                 for key, value in settings.items() if key not in ignoring})

    return "config" in saved and "config" in other and making(saved) == making(other)


def transfer_runs(transfer: dict) -> list[dict]:
    """A saved transfer study's runs over training seeds (the JSON the study at scale writes), each with its `seed`:
    the headline's (seed 0) and each of its `other_seeds` made alike (the same source, D̂_det images and settings but
    the seed), which alone can be averaged with it."""
    names = [point["architecture"] for point in transfer["points"]]
    return [{**transfer, "seed": transfer.get("seed", 0)},
            *(other for other in transfer.get("other_seeds") or []
              if made_alike(other, transfer, ignoring=("seed",))
              and [point["architecture"] for point in other["points"]] == names)]


def transfer_attack_label(transfer: dict) -> str:
    """The saved study's attack on its source in words ("20-step PGD at L2 ε = 0.5"), from its config: the saved
    `attack` field is the attack's own short description."""
    config = transfer_settings(transfer)
    return attack_label("pgd-l2", float(config["attack_eps_l2"]), config["attack_steps"])


def seed_mean_points(runs: list[dict]) -> list[dict]:
    """Each architecture's point averaged over the runs (`transfer_runs`): accuracy from D̂_det, transfer success
    and the further radii's rates, as the saved points hold them."""
    means = []
    for index, point in enumerate(runs[0]["points"]):
        alike = [run["points"][index] for run in runs]
        relabelled = [p.get("relabelled_accuracy_from_det") for p in alike]
        means.append({"architecture": point["architecture"],
                      **{key: fmean(p[key] for p in alike)
                         for key in ("accuracy_from_det", "transfer_success", "standard_accuracy")},
                      "relabelled_accuracy_from_det": None if None in relabelled else fmean(relabelled),
                      "transfer_success_by_eps": [[eps, fmean(p["transfer_success_by_eps"][k][1] for p in alike)]
                                                  for k, (eps, _) in enumerate(point.get("transfer_success_by_eps")
                                                                                or [])]})
    return means


def transfer_by_radius(runs: list[dict]) -> dict[str, list[tuple[float, float]]]:
    """Per architecture, (radius, transfer success averaged over the runs) at the study's radius and each further one
    it scored, by radius: how the y-axis of Figure 3 grows with the attack's size."""
    radius = float(runs[0]["config"]["attack_eps_l2"])
    return {point["architecture"]: sorted([(radius, point["transfer_success"]),
                                           *((float(eps), rate) for eps, rate in point["transfer_success_by_eps"])])
            for point in seed_mean_points(runs)}
