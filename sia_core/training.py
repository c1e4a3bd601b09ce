"""Training recipes: standard, PGD adversarial training, and FGSM with random start.

`train` works on any `ClassifierWrapper` and `ImageDataset`; the CLI's `train` command wraps it
and writes weights plus a model card whose accuracies come from `sia_core.evaluation`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F

from sia_core.attacks import FGSM, PGD
from sia_core.attacks.base import Attack, check_seed
from sia_core.data.base import ImageDataset
from sia_core.models.wrapper import ClassifierWrapper, frozen_eval
from sia_core.progress import ProgressCallback
from sia_core.registry import Entry, Registry
from sia_core.validation import non_negative, positive, positive_int, require

logger = logging.getLogger(__name__)


def _clean_images(*, eps: float, steps: int, seed: int) -> None:
    return None  # standard training: no adversary


def _pgd_adversary(*, eps: float, steps: int, seed: int) -> PGD:
    return PGD(eps=eps, norm="linf", steps=steps, seed=seed)


def _fgsm_rs_adversary(*, eps: float, steps: int, seed: int) -> FGSM:
    return FGSM(eps=eps, random_start=True, seed=seed)


# Each factory builds the per-batch adversary, called as RECIPES.build(name, eps=, steps=, seed=): None trains on
# the clean images. The trait "adversarial" says whether the recipe needs eps > 0.
RECIPES: Registry[Optional[Attack]] = Registry("recipe", [
    Entry("standard", "Standard", "Clean images only: the most accurate model, and the easiest to attack.",
          _clean_images, traits={"adversarial": False}),
    Entry("pgd", "PGD adversarial training", "Every batch is replaced by its PGD-L∞ adversarial examples "
          "(Madry et al. 2018): the most robust recipe here, and the slowest, one gradient per attack step.",
          _pgd_adversary, traits={"adversarial": True}),
    Entry("fgsm-rs", "FGSM with random start", "Every batch is replaced by one FGSM step from a random start "
          "(Wong et al. 2020): most of PGD training's robustness for the cost of one extra gradient.",
          _fgsm_rs_adversary, traits={"adversarial": True}),
])


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run.

    `eps` and `attack_steps` matter for the adversarial recipes only: "pgd" trains on PGD-L-inf
    examples with `attack_steps` steps of 2.5 * eps / steps from a random start (Madry et al.);
    "fgsm-rs" on one FGSM step of 1.25 * eps from a random start (Wong et al. 2020). The radius
    ramps up linearly over `eps_warmup_epochs`, which keeps small CNNs from collapsing early.
    """

    recipe: str = "standard"
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    eps: float = 0.0
    attack_steps: int = 7
    eps_warmup_epochs: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        recipe = RECIPES[self.recipe]  # unknown names raise, listing the choices
        positive_int("epochs", self.epochs)
        positive_int("batch_size", self.batch_size)
        positive("learning_rate", self.learning_rate)
        non_negative("weight_decay", self.weight_decay)
        non_negative("eps", self.eps)
        require(not recipe.traits["adversarial"] or self.eps > 0, f"Recipe {self.recipe!r} needs eps > 0.")
        positive_int("attack_steps", self.attack_steps)
        non_negative("eps_warmup_epochs", self.eps_warmup_epochs)
        check_seed("seed", self.seed)


@dataclass
class TrainHistory:
    epoch_loss: list[float] = field(default_factory=list)
    epoch_train_accuracy: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _adversarial_batch(model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor, config: TrainConfig,
                       eps: float, generator_seed: int) -> torch.Tensor:
    adversary = RECIPES.build(config.recipe, eps=eps, steps=config.attack_steps, seed=generator_seed)
    if adversary is None:
        return x
    with frozen_eval(model):
        return adversary.perturb(model, x, y)


def train(model: ClassifierWrapper, train_set: ImageDataset, config: TrainConfig,
          progress: Optional[ProgressCallback] = None) -> TrainHistory:
    """Train `model` in place on `train_set` with Adam and a cosine learning-rate schedule.

    Every draw (batch order, the adversary's random start) comes from generators seeded by `config.seed`; the
    shipped architectures have no random layers, so the process's global generator is neither read nor seeded."""
    generator = torch.Generator().manual_seed(config.seed)
    device = model.device
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    steps_per_epoch = -(-len(train_set) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.learning_rate, total_steps=total_steps,
                                                    pct_start=0.15, anneal_strategy="cos")
    history = TrainHistory()
    step = 0
    for epoch in range(config.epochs):
        started = time.perf_counter()
        order = torch.randperm(len(train_set), generator=generator)
        loss_sum, correct, seen = 0.0, 0, 0
        for batch_start in range(0, len(train_set), config.batch_size):
            index = order[batch_start:batch_start + config.batch_size]
            x = train_set.images[index].to(device)
            y = train_set.labels[index].to(device)
            warmup = min(1.0, (step + 1) / (config.eps_warmup_epochs * steps_per_epoch)) if config.eps_warmup_epochs > 0 else 1.0
            x = _adversarial_batch(model, x, y, config, config.eps * warmup, generator_seed=config.seed * 1_000_003 + step)
            model.train()
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            loss_sum += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
        model.eval()
        history.epoch_loss.append(loss_sum / seen)
        history.epoch_train_accuracy.append(correct / seen)
        history.epoch_seconds.append(time.perf_counter() - started)
        logger.info("epoch %d/%d loss %.4f train acc %.4f (%.1fs)", epoch + 1, config.epochs,
                    history.epoch_loss[-1], history.epoch_train_accuracy[-1], history.epoch_seconds[-1])
        if progress is not None:
            progress(epoch + 1, config.epochs, {"loss": history.epoch_loss[-1],
                                                "train_accuracy": history.epoch_train_accuracy[-1]})
    return history


def channel_statistics(dataset: ImageDataset) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of a dataset, for the wrapper's normalization."""
    images = dataset.images
    mean = images.mean(dim=(0, 2, 3))
    std = images.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return [round(float(v), 4) for v in mean], [round(float(v), 4) for v in std]
