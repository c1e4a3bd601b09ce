"""Region-of-Attack (RoA) maps: where an attack changes the image, or where changing it pays off.

Three definitions (PAPERS.md §2.4): the magnitude of a minimal-norm perturbation, the effect-weighted
perturbation |δ ⊙ ∇loss|, and a localized-attack map that attacks one patch at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import torch
import torch.nn.functional as F

from sia_core.attacks import PGD
from sia_core.attacks.base import AttackResult, check_seed
from sia_core.attacks.deepfool import DeepFool
from sia_core.attacks.pgd import projected_gradient_ascent
from sia_core.models.wrapper import ClassifierWrapper, frozen_eval
from sia_core.registry import Entry, Registry
from sia_core.validation import non_negative, non_negative_int, positive_int


@dataclass(frozen=True)
class RoAResult:
    """(N, H, W) non-negative maps on the CPU, and the attack behind them (None for the localized map)."""

    maps: torch.Tensor
    attack: AttackResult | None


@dataclass(frozen=True, kw_only=True)
class EffectWeightedMap:
    """Σ_c |δ ⊙ ∇x CE(f(x_adv), y)|: first-order contribution of each pixel's change to the loss.

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
        with frozen_eval(model):
            adversarial = attack.images.to(model.device).requires_grad_(True)
            loss = F.cross_entropy(model(adversarial), labels.to(model.device), reduction="sum")
            (gradient,) = torch.autograd.grad(loss, adversarial)
        delta = (attack.images - attack.clean_images).to(gradient.device)
        return RoAResult((delta * gradient).abs().sum(1).detach().cpu(), attack)


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
    increase it alone achieves. All squares of an image are attacked together as one batch."""

    patch_size: int = 4
    eps: float = 8 / 255
    steps: int = 10

    def __post_init__(self) -> None:
        positive_int("patch_size", self.patch_size)
        non_negative("eps", self.eps)
        non_negative_int("steps", self.steps)

    def patch_masks(self, height: int, width: int) -> torch.Tensor:
        """(P, H, W) disjoint squares tiling the image (edge squares may be smaller)."""
        masks = []
        for top in range(0, height, self.patch_size):
            for left in range(0, width, self.patch_size):
                mask = torch.zeros(height, width)
                mask[top:top + self.patch_size, left:left + self.patch_size] = 1
                masks.append(mask)
        return torch.stack(masks)

    def __call__(self, model: ClassifierWrapper, images: torch.Tensor, labels: torch.Tensor) -> RoAResult:
        _, _, height, width = images.shape
        masks = self.patch_masks(height, width).to(model.device)
        step = 2.5 * self.eps / max(self.steps, 1)
        maps = []
        with frozen_eval(model):
            for image, label in zip(images.to(model.device), labels.to(model.device)):
                copies = image.unsqueeze(0).expand(len(masks), -1, -1, -1)  # copy p may change only in patch p
                targets = label.expand(len(masks))
                with torch.no_grad():
                    base_loss = F.cross_entropy(model(image.unsqueeze(0)), label.view(1))
                attacked = projected_gradient_ascent(
                    copies, lambda inputs: F.cross_entropy(model(inputs), targets, reduction="sum"), norm="linf",
                    steps=self.steps, step_size=step, radius=self.eps, mask=masks.unsqueeze(1))
                with torch.no_grad():
                    gain = (F.cross_entropy(model(attacked), targets, reduction="none") - base_loss).clamp_min(0)
                maps.append((gain.view(-1, 1, 1) * masks).sum(0))
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
