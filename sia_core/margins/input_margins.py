"""Input-space margins: the smallest L∞ or L2 perturbation that changes the predicted label, estimated by a
DeepFool start and a PGD bisection on the radius (PAPERS.md §4.8).

Input margins are measured to the model's *predicted* label, as in the paper's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from sia_core.attacks.base import NORMS, Norm
from sia_core.attacks.deepfool import DeepFool
from sia_core.attacks.pgd import projected_gradient_ascent
from sia_core.models.wrapper import ClassifierWrapper, frozen_eval
from sia_core.progress import ProgressCallback
from sia_core.validation import non_negative_int, one_of, optional, positive, positive_int


@dataclass(frozen=True)
class InputMargins:
    """Estimated input-space margins to the predicted label, with the adversarial example at the margin."""

    norm: Norm
    margins: torch.Tensor            # (N,)
    adversarial_images: torch.Tensor  # (N, C, H, W), the flip found at the final radius
    predictions: torch.Tensor        # (N,) the labels the margins are measured to
    found: torch.Tensor              # (N,) bool: a flip was found below max_eps (else the margin is max_eps, a lower bound)


@dataclass(frozen=True, kw_only=True)
class InputMarginEstimator:
    """Smallest L∞ or L2 perturbation that changes the predicted label: DeepFool start, then PGD bisection.

    Why this method: DeepFool in the chosen norm (L2 step, or the L∞ step along sign(w) with the dual
    L1 norm), shrunk along its direction to the smallest flipping scale, is exact on a linear model and
    close on a deep one; bisection on the radius with PGD (PAPERS.md §4.8's cheapest robust option)
    then searches below it, each radius certified by an actual flip. The margin is the smaller of the
    two upper bounds, and the example at that radius is kept.

    Args:
        norm: "linf" or "l2".
        bisection_steps: halvings of the bracket (each costs `pgd_steps` gradient steps); 0 keeps the bracket.
        pgd_steps: PGD steps per radius, started at the clean image with step 2.5 * radius / pgd_steps.
        max_eps: the largest radius searched (default 0.5 for L∞, 10 for L2); samples without a flip below
            it report max_eps (found = False).
        batch_size: images per batch.
    """

    norm: Norm = "linf"
    bisection_steps: int = 8
    pgd_steps: int = 20
    max_eps: Optional[float] = None
    batch_size: int = 256

    def __post_init__(self) -> None:
        one_of("norm", self.norm, NORMS)
        non_negative_int("bisection_steps", self.bisection_steps)
        positive_int("pgd_steps", self.pgd_steps)
        optional(positive, "max_eps", self.max_eps)
        positive_int("batch_size", self.batch_size)

    @property
    def radius_limit(self) -> float:
        return self.max_eps if self.max_eps is not None else (0.5 if self.norm == "linf" else 10.0)

    def _flips(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor):
        """Untargeted PGD at the per-sample radius `eps` (N,) from the clean image (deterministic)."""
        adversarial = projected_gradient_ascent(x, lambda images: F.cross_entropy(model(images), y), norm=self.norm,
                                                steps=self.pgd_steps, step_size=2.5 * eps / self.pgd_steps,
                                                radius=eps)
        with torch.no_grad():
            return model(adversarial).argmax(1) != y, adversarial

    def _deepfool(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
        """DeepFool's flip, its distance in the chosen norm (inf where it failed), and a bracket just above it."""
        adversarial = DeepFool(norm=self.norm, steps=50, overshoot=0.02).perturb(model, x, y)
        with torch.no_grad():
            flipped = model(adversarial).argmax(1) != y
            # shrink along DeepFool's direction to the smallest flipping scale: removes its overshoot
            direction = adversarial - x
            low, high = torch.zeros(len(y), device=x.device), torch.ones(len(y), device=x.device)
            for _ in range(10):
                middle = (low + high) / 2
                candidate = (x + middle.view(-1, 1, 1, 1) * direction).clamp(0, 1)
                success = flipped & (model(candidate).argmax(1) != y)
                high, low = torch.where(success, middle, high), torch.where(success, low, middle)
            adversarial = (x + high.view(-1, 1, 1, 1) * direction).clamp(0, 1)
            delta = (adversarial - x).flatten(1)
            distance = delta.abs().amax(1) if self.norm == "linf" else delta.norm(dim=1)
        distance = torch.where(flipped, distance, torch.full_like(distance, float("inf")))
        bracket = torch.where(flipped, (distance * 1.05).clamp(max=self.radius_limit),
                              torch.full_like(distance, self.radius_limit))
        return adversarial, distance, bracket

    def __call__(self, model: ClassifierWrapper, images: torch.Tensor,
                 progress: Optional[ProgressCallback] = None) -> InputMargins:
        margins, adversarial_parts, predictions, found_parts = [], [], [], []
        batches = max(1, -(-len(images) // self.batch_size))
        with frozen_eval(model):
            for batch_index, start in enumerate(range(0, len(images), self.batch_size)):
                x = images[start:start + self.batch_size].to(model.device)
                with torch.no_grad():
                    y = model(x).argmax(1)
                deepfool_images, deepfool_distance, high = self._deepfool(model, x, y)
                flipped, adversarial = self._flips(model, x, y, high)
                # where PGD cannot confirm DeepFool's bracket, widen to the limit before bisecting
                if not flipped.all():
                    high = torch.where(flipped, high, torch.full_like(high, self.radius_limit))
                    flipped_again, adversarial_again = self._flips(model, x, y, high)
                    adversarial = torch.where((~flipped).view(-1, 1, 1, 1), adversarial_again, adversarial)
                    flipped = flipped | flipped_again
                low = torch.zeros_like(high)
                for _ in range(self.bisection_steps):
                    middle = (low + high) / 2
                    success, candidate = self._flips(model, x, y, middle)
                    success = success & flipped
                    high = torch.where(success, middle, high)
                    low = torch.where(success, low, middle)
                    adversarial = torch.where(success.view(-1, 1, 1, 1), candidate, adversarial)
                # DeepFool's own flip is a certified upper bound too (exact on linear models): keep the smaller
                deepfool_wins = deepfool_distance < torch.where(flipped, high, torch.full_like(high, float("inf")))
                high = torch.where(deepfool_wins, deepfool_distance, high)
                adversarial = torch.where(deepfool_wins.view(-1, 1, 1, 1), deepfool_images, adversarial)
                flipped = flipped | deepfool_wins
                margins.append(torch.where(flipped, high, torch.full_like(high, self.radius_limit)).cpu())
                adversarial_parts.append(adversarial.cpu())
                predictions.append(y.cpu())
                found_parts.append(flipped.cpu())
                if progress is not None:
                    progress(batch_index + 1, batches, {"images": min(start + self.batch_size, len(images))})
        return InputMargins(norm=self.norm, margins=torch.cat(margins), adversarial_images=torch.cat(adversarial_parts),
                            predictions=torch.cat(predictions), found=torch.cat(found_parts))
