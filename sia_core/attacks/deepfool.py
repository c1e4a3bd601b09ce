"""DeepFool (Moosavi-Dezfooli et al. 2016): a minimal-norm attack that steps to the linearized boundary.

Its perturbations vary in magnitude across pixels, unlike sign-based PGD, which makes them a map of
where the model is easiest to push (the RoA lens) and an estimate of the L2 input margin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from sia_core.attacks.base import NORMS, AttackBase, AttackResult, Norm, Perturbation
from sia_core.models.wrapper import ClassifierWrapper
from sia_core.progress import ProgressCallback
from sia_core.validation import non_negative, one_of, positive_int, require

_TINY = 1e-8


@dataclass(frozen=True, kw_only=True)
class DeepFool(AttackBase[AttackResult]):
    """Untargeted minimal-norm attack to the nearest linearized decision boundary.

    Threat model: any L2 (or L-inf) perturbation, no budget, images kept in [0, 1]; it stops at the first
    label flip, so the perturbation's norm estimates the distance to the boundary of the *current*
    prediction (pass the model's predictions as `y` for an input-margin estimate).

    Args:
        norm: "l2" (steps along w) or "linf" (steps along sign(w), distances in the dual L1 norm).
        steps: maximum linearization steps per image.
        overshoot: push (1 + overshoot) times the accumulated step, to land just across the boundary.
        candidates: only the `candidates` classes with the highest logits are considered (speed; at least 2,
            the current class and one other).

    Call: ``DeepFool()(model, x, y)``; returns an `AttackResult` (attack "DeepFool-l2").
    """

    norm: Norm = "l2"
    steps: int = 50
    overshoot: float = 0.02
    candidates: int = 10

    def __post_init__(self) -> None:
        one_of("norm", self.norm, NORMS)
        positive_int("steps", self.steps)
        non_negative("overshoot", self.overshoot)
        positive_int("candidates", self.candidates)
        require(self.candidates >= 2, f"candidates must be at least 2 (the current class and one other), "
                                      f"got {self.candidates!r}.")

    @property
    def description(self) -> str:
        return f"DeepFool-{self.norm} steps={self.steps} overshoot={self.overshoot:g}"

    def perturb(self, model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor,
                target: Optional[torch.Tensor] = None) -> torch.Tensor:
        _refuse_target(target)
        total = torch.zeros_like(x)
        adversarial = x.clone()
        active = torch.ones(len(y), dtype=torch.bool, device=x.device)
        for _ in range(self.steps):
            if not active.any():
                break
            index = active.nonzero().squeeze(1)
            point = adversarial[index].clone().requires_grad_(True)
            logits = model(point)
            still = logits.argmax(1) == y[index]
            active[index[~still]] = False
            if not still.any():
                break
            k = min(self.candidates, logits.shape[1])
            others = logits.topk(k, dim=1).indices  # (M, k): the closest classes, plus possibly y itself
            own = logits.gather(1, y[index].view(-1, 1))
            # one other class (k = 2): its boundary normal is one backward pass of the logit gap; with more, the
            # own class's gradient is computed once and shared
            own_gradient = None if k == 2 else torch.autograd.grad(own.sum(), point, retain_graph=True)[0]
            best_distance = torch.full((len(index),), float("inf"), device=x.device)
            best_step = torch.zeros_like(point)
            for j in range(k):
                other = others[:, j]
                valid = other != y[index]
                if not valid.any():  # every row's candidate j is its own class (the top one, typically): no boundary
                    continue
                other_logit = logits.gather(1, other.view(-1, 1)).squeeze(1)
                if own_gradient is None:
                    w = torch.autograd.grad((other_logit - own.squeeze(1)).sum(), point, retain_graph=True)[0]
                else:
                    w = torch.autograd.grad(other_logit.sum(), point, retain_graph=True)[0] - own_gradient
                f = (other_logit - own.squeeze(1)).detach()
                shape = (-1, *[1] * (x.ndim - 1))
                if self.norm == "l2":
                    w_norm = w.flatten(1).norm(dim=1)
                    step = ((f.abs() + 1e-4) / (w_norm ** 2 + _TINY)).view(shape) * w
                else:  # L-inf: the closest point of the hyperplane moves every pixel by |f| / ||w||_1
                    w_norm = w.flatten(1).abs().sum(1)
                    step = ((f.abs() + 1e-4) / (w_norm + _TINY)).view(shape) * w.sign()
                distance = f.abs() / (w_norm + _TINY)
                better = valid & (distance < best_distance)
                best_distance = torch.where(better, distance, best_distance)
                best_step = torch.where(better.view(-1, *[1] * (x.ndim - 1)), step, best_step)
            with torch.no_grad():
                moving = index[still]
                total[moving] += best_step[still]
                adversarial[moving] = (x[moving] + (1 + self.overshoot) * total[moving]).clamp(0, 1)
        return adversarial.detach()

    def _run(self, model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor, target: Optional[torch.Tensor],
             progress: Optional[ProgressCallback]) -> Perturbation:
        del progress  # no fixed number of steps to report: each image stops at its first flip
        return Perturbation(self.perturb(model, x, y, target), {})  # perturb refuses a target


def _refuse_target(target: Optional[torch.Tensor]) -> None:
    if target is not None:
        raise ValueError("DeepFool is untargeted: it steps to the nearest boundary, whichever class lies behind it")
