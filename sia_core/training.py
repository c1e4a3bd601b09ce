"""Training recipes: standard, PGD adversarial training (L-inf and L2), FGSM with random start, TRADES, SIA
adversarial training and its random-attribute control.

`train` works on any `ClassifierWrapper` and `ImageDataset`; the CLI's `train` command wraps it
and writes weights plus a model card whose accuracies come from `sia_core.evaluation`. A run can checkpoint after
every epoch and resume from that file after an interruption.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import torch
import torch.nn.functional as F

from sia_core.attacks import FGSM, PGD, projected_gradient_ascent
from sia_core.attacks.base import Attack, check_seed
from sia_core.attacks.semantic import SemanticAttack
from sia_core.augmentation import RandomAttributes
from sia_core.data.base import ImageDataset
from sia_core.errors import ConfigError
from sia_core.models.wrapper import ClassifierWrapper, frozen_eval
from sia_core.progress import ProgressCallback
from sia_core.registry import Entry, Registry
from sia_core.validation import non_negative, one_of, optional, positive, positive_int, require

logger = logging.getLogger(__name__)


def _clean_images(*, eps: float, steps: int, seed: int) -> None:
    return None  # standard training: no adversary


def _pgd_adversary(*, eps: float, steps: int, seed: int) -> PGD:
    return PGD(eps=eps, norm="linf", steps=steps, seed=seed)


def _pgd_l2_adversary(*, eps: float, steps: int, seed: int) -> PGD:
    return PGD(eps=eps, norm="l2", steps=steps, seed=seed)


@dataclass(frozen=True)
class TradesAdversary:
    """TRADES's inner maximization (Zhang et al. 2019): signed steps that push the prediction away from the model's
    own clean prediction (KL divergence), from a tiny Gaussian start, inside the L-inf ball of `eps`. Labels are not
    used: the term it feeds penalizes how much the output moves, not whether it is wrong."""

    eps: float
    steps: int
    seed: int

    def __post_init__(self) -> None:
        non_negative("eps", self.eps)
        positive_int("steps", self.steps)
        check_seed("seed", self.seed)

    def perturb(self, model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        del y
        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        with torch.no_grad():
            clean = F.softmax(model(x), dim=1)
        start = (x + 0.001 * torch.randn(x.shape, generator=generator).to(x.device)).clamp(0, 1) - x

        def divergence(images: torch.Tensor) -> torch.Tensor:
            return F.kl_div(F.log_softmax(model(images), dim=1), clean, reduction="sum")

        return projected_gradient_ascent(x, divergence, norm="linf", steps=self.steps,
                                         step_size=2.5 * self.eps / self.steps, radius=self.eps, start=start)


def _trades_adversary(*, eps: float, steps: int, seed: int) -> TradesAdversary:
    return TradesAdversary(eps=eps, steps=steps, seed=seed)


def _fgsm_rs_adversary(*, eps: float, steps: int, seed: int) -> FGSM:
    return FGSM(eps=eps, random_start=True, seed=seed)


def _sia_adversary(*, eps: float, steps: int, seed: int) -> SemanticAttack:
    # every attribute that applies, a small pixel budget, few steps (our choice: cheap enough to train with)
    return SemanticAttack(steps=steps, eps_linf=eps, seed=seed)


def _random_attributes(*, eps: float, steps: int, seed: int) -> RandomAttributes:
    del steps  # nothing is climbed
    return RandomAttributes(eps_linf=eps, seed=seed)


Adversary = Union[Attack, RandomAttributes, TradesAdversary]

# Each factory builds the per-batch adversary, called as RECIPES.build(name, eps=, steps=, seed=): None trains on
# the clean images. The trait "eps" says what the recipe's eps is (its norm and role; TrainConfig.eps_meaning);
# "adversarial" says whether the recipe needs eps > 0; "mix" is the share of each batch
# the adversary replaces (the rest stays clean); "loss" "trades" trains on the clean batch with TRADES's KL term on
# the adversarial one instead of on the adversarial batch alone.
RECIPES: Registry[Optional[Adversary]] = Registry("recipe", [
    Entry("standard", "Standard", "Clean images only: the most accurate model, and the easiest to attack.",
          _clean_images, traits={"adversarial": False, "mix": 0.0, "eps": None}),
    Entry("pgd", "PGD adversarial training", "Every batch is replaced by its PGD-L∞ adversarial examples "
          "(Madry et al. 2018): the most robust recipe here, and the slowest, one gradient per attack step.",
          _pgd_adversary, traits={"adversarial": True, "mix": 1.0, "eps": "L∞ radius"}),
    Entry("pgd-l2", "PGD adversarial training (L2)", "Every batch is replaced by its PGD-L2 adversarial examples "
          "(Madry et al. 2018 in the L2 norm): robustness to spread-out changes rather than to a per-pixel budget.",
          _pgd_l2_adversary, traits={"adversarial": True, "mix": 1.0, "eps": "L2 radius"}),
    Entry("trades", "TRADES", "Cross-entropy on the clean batch plus β times the KL divergence between the "
          "predictions on the clean and the adversarial images (Zhang et al. 2019): β trades clean accuracy for "
          "robustness.", _trades_adversary, traits={"adversarial": True, "mix": 1.0, "loss": "trades",
                                                             "eps": "L∞ radius"}),
    Entry("fgsm-rs", "FGSM with random start", "Every batch is replaced by one FGSM step from a random start "
          "(Wong et al. 2020): most of PGD training's robustness for the cost of one extra gradient.",
          _fgsm_rs_adversary, traits={"adversarial": True, "mix": 1.0, "eps": "L∞ radius"}),
    # half clean, half SIA: the attribute space is wide (any hue, ±20° rotation), and a model that only ever sees
    # edited images pays for it in clean accuracy; the 50/50 mix is our choice (Goodfellow et al. 2015 also weigh the
    # clean and the adversarial loss equally)
    Entry("sia", "SIA adversarial training", "Half of every batch is replaced by Semantic Image Attack examples "
          "(a few steps over every attribute that applies plus a small pixel budget ε): robustness to changes of "
          "colour, light and pose, not only to pixel noise.", _sia_adversary, traits={"adversarial": True, "mix": 0.5,
          "eps": "L∞ pixel budget"}),
    Entry("random-attributes", "Random attributes (control)", "Half of every batch gets attribute values drawn at "
          "random in the same ranges, plus uniform pixel noise of ε: the same augmentation as SIA training without "
          "the attack, to tell \"attacked\" from \"augmented\".", _random_attributes,
          traits={"adversarial": False, "mix": 0.5, "eps": "L∞ noise amplitude"}),
])


AUGMENTATIONS = ("none", "crop-flip")
CROP_PADDING = 4


def crop_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crops of the zero-padded batch back to its size (offsets 0..8) and left-right flips of half of it."""
    n, _, height, width = x.shape
    padded = F.pad(x, (CROP_PADDING,) * 4)
    rows = torch.randint(0, 2 * CROP_PADDING + 1, (n,), generator=generator).tolist()
    columns = torch.randint(0, 2 * CROP_PADDING + 1, (n,), generator=generator).tolist()
    flips = (torch.rand(n, generator=generator) < 0.5).tolist()
    crops = [padded[i, :, r:r + height, c:c + width] for i, (r, c) in enumerate(zip(rows, columns))]
    return torch.stack([crop.flip(-1) if flip else crop for crop, flip in zip(crops, flips)])


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run.

    `eps` and `attack_steps` matter for the adversarial recipes only: "pgd" trains on PGD-L-inf
    examples with `attack_steps` steps of 2.5 * eps / steps from a random start (Madry et al.);
    "fgsm-rs" on one FGSM step of 1.25 * eps from a random start (Wong et al. 2020). The radius
    ramps up linearly over `eps_warmup_epochs`, which keeps small CNNs from collapsing early.
    "pgd-l2" is PGD in the L2 norm (radius `eps` over the whole image); "trades" adds `trades_beta` times the KL
    divergence between the predictions on clean and adversarial images to the clean loss (Zhang et al. 2019).
    "sia" replaces half of each batch by SIA examples (`attack_steps` steps, pixel budget `eps`),
    "random-attributes" half by random attribute edits plus uniform noise of `eps`.
    `attack_step_fraction`, for the PGD recipes, sets each step to that share of the radius (default 2.5 / steps).

    `steps`, when given, is the exact number of optimizer steps (the budget), whatever the size of
    the set; otherwise `epochs` passes. `class_weights` weights the loss per class (re-weighting).
    `augment` "crop-flip" pads by 4 pixels, crops back at a random offset and flips half the batch
    left-right: the usual augmentation for photos (CIFAR-10), drawn from the run's generator.
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
    steps: Optional[int] = None
    class_weights: Optional[tuple[float, ...]] = None
    trades_beta: float = 6.0
    augment: str = "none"
    attack_step_fraction: Optional[float] = None

    @property
    def eps_meaning(self) -> Optional[str]:
        """What `eps` is for this recipe: "L∞ radius", "L2 radius", "L∞ pixel budget", ... (None: unused)."""
        return RECIPES[self.recipe].traits["eps"]

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
        optional(positive_int, "steps", self.steps)
        non_negative("trades_beta", self.trades_beta)
        one_of("augment", self.augment, AUGMENTATIONS)
        optional(positive, "attack_step_fraction", self.attack_step_fraction)
        require(self.attack_step_fraction is None or self.recipe in ("pgd", "pgd-l2"),
                "attack_step_fraction applies to the PGD recipes only.")
        if self.class_weights is not None:
            require(len(self.class_weights) > 0 and all(isinstance(w, (int, float)) and w >= 0 and math.isfinite(w)
                                                        for w in self.class_weights),
                    f"class_weights must be non-negative numbers, got {self.class_weights!r}.")


@dataclass
class TrainHistory:
    epoch_loss: list[float] = field(default_factory=list)
    epoch_train_accuracy: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _adversarial_batch(model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor, config: TrainConfig,
                       eps: float, generator_seed: int) -> torch.Tensor:
    """The batch the model trains on: the recipe's adversary replaces its first `mix` share (the batch order is
    already random), the rest stays clean."""
    entry = RECIPES[config.recipe]
    adversary = RECIPES.build(config.recipe, eps=eps, steps=config.attack_steps, seed=generator_seed)
    count = round(entry.traits["mix"] * len(x))
    if adversary is None or count == 0:
        return x
    if config.attack_step_fraction is not None:  # e.g. Madry et al.'s L2 steps of eps / 5
        adversary = dataclasses.replace(adversary, step_size=eps * config.attack_step_fraction)
    with frozen_eval(model):
        edited = adversary.perturb(model, x[:count], y[:count])
    return edited if count == len(x) else torch.cat([edited, x[count:]])


# called before every epoch after the first with (model, epochs done); a new set replaces the training set
Refresh = Callable[[ClassifierWrapper, int], Optional[ImageDataset]]


def train(model: ClassifierWrapper, train_set: ImageDataset, config: TrainConfig,
          progress: Optional[ProgressCallback] = None, checkpoint: Optional[Union[str, Path]] = None,
          refresh: Optional[Refresh] = None) -> TrainHistory:
    """Train `model` in place on `train_set` with Adam and a one-cycle cosine learning-rate schedule.

    Every draw (batch order, the adversary's random start) comes from generators seeded by `config.seed`; the
    shipped architectures have no random layers, so the process's global generator is neither read nor seeded.
    With `checkpoint`, the weights, optimizer, schedule, generator and history are written there after every
    epoch, and a run that finds the file (of the same config) resumes after its last finished epoch.
    `refresh` may swap the training set between epochs (augmentation against the current model).
    """
    generator = torch.Generator().manual_seed(config.seed)
    device = model.device
    model.requires_grad_(True)  # a loaded model comes frozen for inference (`freeze_for_inference`)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    steps_per_epoch = -(-len(train_set) // config.batch_size)
    total_steps = config.steps or steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.learning_rate, total_steps=total_steps,
                                                    pct_start=0.15, anneal_strategy="cos")
    class_weights = (torch.tensor(config.class_weights, dtype=torch.float32, device=device)
                     if config.class_weights is not None else None)
    trades = RECIPES[config.recipe].traits.get("loss") == "trades"
    history = TrainHistory()
    step, epoch = 0, 0
    if checkpoint is not None and Path(checkpoint).is_file():
        step, epoch = _resume(Path(checkpoint), config, model, optimizer, scheduler, generator, history)
    while step < total_steps:
        if refresh is not None and epoch > 0:
            train_set = refresh(model, epoch) or train_set
        started = time.perf_counter()
        order = torch.randperm(len(train_set), generator=generator)
        loss_sum, correct, seen = 0.0, 0, 0
        for batch_start in range(0, len(train_set), config.batch_size):
            if step == total_steps:
                break
            index = order[batch_start:batch_start + config.batch_size]
            x = train_set.images[index].to(device)
            y = train_set.labels[index].to(device)
            warmup = min(1.0, (step + 1) / (config.eps_warmup_epochs * steps_per_epoch)) if config.eps_warmup_epochs > 0 else 1.0
            if config.augment == "crop-flip":
                x = crop_flip(x.cpu(), generator).to(device)
            x_trained = _adversarial_batch(model, x, y, config, config.eps * warmup,
                                           generator_seed=config.seed * 1_000_003 + step)
            model.train()
            if trades:  # clean cross-entropy, plus beta times how far the prediction moves under the attack
                logits = model(x)
                loss = F.cross_entropy(logits, y, weight=class_weights) + config.trades_beta * F.kl_div(
                    F.log_softmax(model(x_trained), dim=1), F.softmax(logits, dim=1), reduction="batchmean")
            else:
                logits = model(x_trained)
                loss = F.cross_entropy(logits, y, weight=class_weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            loss_sum += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
        model.eval()
        epoch += 1
        history.epoch_loss.append(loss_sum / seen)
        history.epoch_train_accuracy.append(correct / seen)
        history.epoch_seconds.append(time.perf_counter() - started)
        epochs_planned = epoch + math.ceil((total_steps - step) / steps_per_epoch)
        logger.info("epoch %d/%d loss %.4f train acc %.4f (%.1fs)", epoch, epochs_planned,
                    history.epoch_loss[-1], history.epoch_train_accuracy[-1], history.epoch_seconds[-1])
        if checkpoint is not None:
            _save_checkpoint(Path(checkpoint), config, model, optimizer, scheduler, generator, history, step, epoch)
        if progress is not None:
            progress(epoch, epochs_planned, {"loss": history.epoch_loss[-1],
                                             "train_accuracy": history.epoch_train_accuracy[-1]})
    return history


def _save_checkpoint(path: Path, config: TrainConfig, model: ClassifierWrapper, optimizer: torch.optim.Optimizer,
                     scheduler, generator: torch.Generator, history: TrainHistory, step: int, epoch: int) -> None:
    state = {"config": asdict(config), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(), "generator": generator.get_state(), "history": history.to_dict(),
             "step": step, "epoch": epoch}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    torch.save(state, partial)
    partial.replace(path)  # an interruption while writing never leaves a torn checkpoint


def _resume(path: Path, config: TrainConfig, model: ClassifierWrapper, optimizer: torch.optim.Optimizer,
            scheduler, generator: torch.Generator, history: TrainHistory) -> tuple[int, int]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    saved = {key: tuple(value) if isinstance(value, list) else value for key, value in state["config"].items()}
    if saved != asdict(config):
        raise ConfigError(f"The checkpoint {path} was written by a different training config; delete it or "
                          f"choose another --checkpoint.")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    generator.set_state(state["generator"])
    for key, values in state["history"].items():
        getattr(history, key).extend(values)
    logger.info("resumed from %s after epoch %d (step %d)", path, state["epoch"], state["step"])
    return int(state["step"]), int(state["epoch"])


def channel_statistics(dataset: ImageDataset) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of a dataset, for the wrapper's normalization."""
    images = dataset.images
    mean = images.mean(dim=(0, 2, 3))
    std = images.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return [round(float(v), 4) for v in mean], [round(float(v), 4) for v in std]
