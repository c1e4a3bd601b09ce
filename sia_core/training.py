"""Training recipes: standard, PGD adversarial training, and FGSM with random start.

`train` works on any `ClassifierWrapper` and `ImageDataset`; the CLI's `train` command wraps it
and writes weights plus a model card whose accuracies come from `sia_core.evaluation`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Literal, Optional

import torch
import torch.nn.functional as F

from sia_core.attacks import FGSM, PGD
from sia_core.progress import ProgressCallback
from sia_core.data.base import ImageDataset
from sia_core.models.wrapper import ClassifierWrapper, frozen_eval

Recipe = Literal["standard", "pgd", "fgsm-rs"]
RECIPES: tuple[str, ...] = ("standard", "pgd", "fgsm-rs")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run.

    `eps` and `attack_steps` matter for the adversarial recipes only: "pgd" trains on PGD-L-inf
    examples with `attack_steps` steps of 2.5 * eps / steps from a random start (Madry et al.);
    "fgsm-rs" on one FGSM step of 1.25 * eps from a random start (Wong et al. 2020). The radius
    ramps up linearly over `eps_warmup_epochs`, which keeps small CNNs from collapsing early.
    """

    recipe: Recipe = "standard"
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    eps: float = 0.0
    attack_steps: int = 7
    eps_warmup_epochs: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ValueError(f"Unknown recipe {self.recipe!r}; choose one of {', '.join(RECIPES)}")
        if self.recipe != "standard" and self.eps <= 0:
            raise ValueError(f"Recipe {self.recipe!r} needs eps > 0")


@dataclass
class TrainHistory:
    epoch_loss: list[float] = field(default_factory=list)
    epoch_train_accuracy: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _adversarial_batch(model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor, config: TrainConfig,
                       eps: float, generator_seed: int) -> torch.Tensor:
    if config.recipe == "standard" or eps <= 0:
        return x
    attack = (PGD(eps=eps, norm="linf", steps=config.attack_steps, seed=generator_seed) if config.recipe == "pgd"
              else FGSM(eps=eps, random_start=True, seed=generator_seed))
    with frozen_eval(model):
        return attack.perturb(model, x, y)


def train(model: ClassifierWrapper, train_set: ImageDataset, config: TrainConfig,
          progress: Optional[ProgressCallback] = None) -> TrainHistory:
    """Train `model` in place on `train_set` with Adam and a cosine learning-rate schedule."""
    torch.manual_seed(config.seed)
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
