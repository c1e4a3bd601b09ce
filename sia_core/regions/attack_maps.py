"""Region-of-Attack (RoA) maps: where an attack changes the image, or where changing it pays off.

Three definitions, our choices (Chattopadhyay et al. 2020 do not publish their exact recipe): the magnitude of a
minimal-norm perturbation, the effect-weighted perturbation |δ ⊙ ∇loss|, and a localized-attack map that attacks
one patch at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import torch
import torch.nn.functional as F

from sia_core.attacks import PGD
from sia_core.attacks.objective import objective_of
from sia_core.attacks.base import AttackResult, check_seed
from sia_core.attacks.deepfool import DeepFool
from sia_core.attacks.pgd import projected_gradient_ascent
from sia_core.models.wrapper import ClassifierWrapper, frozen_eval
from sia_core.registry import Entry, Registry
from sia_core.scaling import batch_size_for, scaled_pixels
from sia_core.validation import non_negative, non_negative_int, optional, positive_int


@dataclass(frozen=True)
class RoAResult:
    """(N, H, W) non-negative maps on the CPU, and the attack behind them (None for the localized map)."""

    maps: torch.Tensor
    attack: AttackResult | None


@dataclass(frozen=True, kw_only=True)
class EffectWeightedMap:
    """Σ_c |δ ⊙ ∇x CE(f(x_adv), y)| (a keypoint model: its NME from the reference points instead of CE): first-order
    contribution of each pixel's change to the loss.

    Sign-based PGD changes almost every pixel by ±ε, so its raw magnitude is flat; weighting by
    the gradient at the adversarial point shows which changes matter.
    """

    eps: float = 8 / 255
    steps: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        non_negative("eps", self.eps)
        non_negative_int("steps", self.steps)
        check_seed("seed", self.seed)

    def __call__(self, model: ClassifierWrapper, images: torch.Tensor, labels: torch.Tensor) -> RoAResult:
        attack = PGD(eps=self.eps, steps=self.steps, seed=self.seed)(model, images, labels)
        batch_size = batch_size_for(attack.images.shape, len(attack.images))
        maps = []
        with frozen_eval(model):
            for start in range(0, len(attack.images), batch_size):
                adversarial = attack.images[start:start + batch_size].to(model.device).requires_grad_(True)
                # the model's own objective: cross-entropy for a classifier, NME from the reference for keypoints
                loss = objective_of(model).loss(model(adversarial),
                                                labels[start:start + batch_size].to(model.device)).sum()
                (gradient,) = torch.autograd.grad(loss, adversarial)
                delta = (attack.images[start:start + batch_size] - attack.clean_images[start:start + batch_size])
                maps.append((delta.to(gradient.device) * gradient).abs().sum(1).detach().cpu())
        return RoAResult(torch.cat(maps) if maps else torch.zeros(0, *images.shape[-2:]), attack)


@dataclass(frozen=True, kw_only=True)
class MinimalPerturbationMap:
    """Σ_c |δ| of DeepFool's minimal L2 perturbation: the pixels the nearest boundary runs through."""

    steps: int = 50
    overshoot: float = 0.02

    def __post_init__(self) -> None:
        positive_int("steps", self.steps)
        non_negative("overshoot", self.overshoot)

    def __call__(self, model: ClassifierWrapper, images: torch.Tensor, labels: torch.Tensor) -> RoAResult:
        attack = DeepFool(steps=self.steps, overshoot=self.overshoot)(model, images, labels)
        return RoAResult((attack.images - attack.clean_images).abs().sum(1), attack)


@dataclass(frozen=True, kw_only=True)
class LocalizedAttackMap:
    """Attack one `patch_size` square at a time (PGD-L∞ inside it only); each square scores the loss
    increase it alone achieves. The squares of an image are attacked together, in batches of at most
    `batch_size_for` copies on large images.

    `patch_size` None: 4 px up to 32 px images, scaled by min(H, W) / 32 beyond (28 px at 224 px), so an image
    always has about 8 x 8 squares.
    """

    patch_size: int | None = None
    eps: float = 8 / 255
    steps: int = 10

    def __post_init__(self) -> None:
        optional(positive_int, "patch_size", self.patch_size)
        non_negative("eps", self.eps)
        non_negative_int("steps", self.steps)

    def patch_masks(self, height: int, width: int) -> torch.Tensor:
        """(P, H, W) disjoint squares tiling the image (edge squares may be smaller)."""
        size = self.patch_size if self.patch_size is not None else scaled_pixels(4, (1, height, width))
        masks = []
        for top in range(0, height, size):
            for left in range(0, width, size):
                mask = torch.zeros(height, width)
                mask[top:top + size, left:left + size] = 1
                masks.append(mask)
        return torch.stack(masks)

    def __call__(self, model: ClassifierWrapper, images: torch.Tensor, labels: torch.Tensor) -> RoAResult:
        _, _, height, width = images.shape
        masks = self.patch_masks(height, width).to(model.device)
        step = 2.5 * self.eps / max(self.steps, 1)
        batch_size = batch_size_for(images.shape, len(masks))
        maps = []
        with frozen_eval(model):
            for image, label in zip(images.to(model.device), labels.to(model.device)):
                with torch.no_grad():
                    base_loss = F.cross_entropy(model(image.unsqueeze(0)), label.view(1))
                gains = []
                for start in range(0, len(masks), batch_size):
                    patch = masks[start:start + batch_size]
                    copies = image.unsqueeze(0).expand(len(patch), -1, -1, -1)  # copy p may change only in patch p
                    targets = label.expand(len(patch))
                    attacked = projected_gradient_ascent(
                        copies, lambda inputs, t=targets: F.cross_entropy(model(inputs), t, reduction="sum"),
                        norm="linf", steps=self.steps, step_size=step, radius=self.eps, mask=patch.unsqueeze(1))
                    with torch.no_grad():
                        gains.append((F.cross_entropy(model(attacked), targets, reduction="none") - base_loss)
                                     .clamp_min(0))
                maps.append((torch.cat(gains).view(-1, 1, 1) * masks).sum(0))
        return RoAResult(torch.stack(maps).cpu(), None)


RoAMethod = Union[EffectWeightedMap, MinimalPerturbationMap, LocalizedAttackMap]

# `ROA_METHODS.build("localized", patch_size=7)`: the UI and CLI name, its defaults overridden by the options
ROA_METHODS: Registry[RoAMethod] = Registry("RoA method", [
    Entry("effect_weighted", "Effect-weighted perturbation",
          "Effect-weighted perturbation: how much each pixel's change (from PGD) raises the loss, |δ × gradient|.",
          EffectWeightedMap),
    Entry("minimal_perturbation", "Minimal perturbation",
          "Minimal perturbation: the size of the smallest change (DeepFool, L2) that flips the prediction, "
          "pixel by pixel.", MinimalPerturbationMap),
    Entry("localized", "Localized attack",
          "Localized attack: attack one small square at a time and score each square by the loss it alone can add.",
          LocalizedAttackMap),
])
