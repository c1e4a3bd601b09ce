"""Carlini–Wagner L2 in its fixed-budget form: projected gradient ascent on the CW margin loss inside an L2 ball.

Carlini & Wagner (2017) minimize ‖δ‖₂ + c · f(x + δ) with a binary search over c; robustness tables with a fixed ε
(Madry et al. 2018, RobustBench) instead maximize the CW margin f inside the ε-ball, which makes the column
comparable with PGD-L2 at the same ε: the attack differs only in its loss, the logit margin instead of the
cross-entropy, which does not saturate when the softmax does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from sia_core.attacks.base import AttackBase, AttackResult, Norm, Perturbation, check_seed
from sia_core.attacks.pgd import projected_gradient_ascent, random_in_ball
from sia_core.models.wrapper import ClassifierWrapper
from sia_core.progress import ProgressCallback
from sia_core.validation import non_negative, non_negative_int, optional, positive


def cw_margin(logits: torch.Tensor, goal: torch.Tensor, kappa: float, targeted: bool) -> torch.Tensor:
    """Per sample, the CW objective to maximize, capped at `kappa`: untargeted, the best other logit minus the
    true one; targeted, the target's logit minus the best other one."""
    goal_logit = logits.gather(1, goal.view(-1, 1)).squeeze(1)
    others = logits.masked_fill(torch.nn.functional.one_hot(goal, logits.shape[1]).bool(), float("-inf"))
    best_other = others.amax(dim=1)
    margin = goal_logit - best_other if targeted else best_other - goal_logit
    return margin.clamp(max=kappa)


@dataclass(frozen=True, kw_only=True)
class CarliniWagnerL2(AttackBase[AttackResult]):
    """Carlini–Wagner L2 with a fixed budget: `steps` normalized-gradient steps of the CW margin loss, projected
    onto the L2 ball of radius `eps` (whole image, [0, 1] pixel units) and onto [0, 1].

    Args:
        eps: L2 radius.
        steps: gradient steps (default 30).
        step_size: default 2.5 * eps / steps, as PGD.
        kappa: confidence: the margin stops counting once it exceeds kappa (0 = just across the boundary).
        random_start: start from a random point in the ball (default False, as Carlini & Wagner).
        seed: seeds the random start.
    """

    eps: float
    steps: int = 30
    step_size: Optional[float] = None
    kappa: float = 0.0
    random_start: bool = False
    seed: Optional[int] = 0

    def __post_init__(self) -> None:
        non_negative("eps", self.eps)
        non_negative_int("steps", self.steps)
        optional(positive, "step_size", self.step_size)
        non_negative("kappa", self.kappa)
        optional(check_seed, "seed", self.seed)

    @property
    def norm(self) -> Norm:
        return "l2"

    @property
    def description(self) -> str:
        return f"CW-L2 eps={self.eps:g} steps={self.steps} κ={self.kappa:g}"

    def perturb(self, model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor,
                target: Optional[torch.Tensor] = None, progress: Optional[ProgressCallback] = None) -> torch.Tensor:
        step_size = self.step_size if self.step_size is not None else 2.5 * self.eps / max(self.steps, 1)
        start = torch.zeros_like(x)
        if self.random_start and self.eps > 0:
            generator = torch.Generator().manual_seed(self.seed) if self.seed is not None else None
            start = (x + random_in_ball(x.shape, "l2", self.eps, device=x.device, generator=generator)).clamp(0, 1) - x
        goal = target if target is not None else y

        def objective(images: torch.Tensor) -> torch.Tensor:
            return cw_margin(model(images), goal, self.kappa, target is not None).sum()

        def observe(step: int, value: torch.Tensor) -> None:
            progress(step + 1, self.steps, {"margin": value.item() / len(x)})

        return projected_gradient_ascent(x, objective, norm="l2", steps=self.steps, step_size=step_size,
                                         radius=self.eps, start=start,
                                         observe=observe if progress is not None else None)

    def _run(self, model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor, target: Optional[torch.Tensor],
             progress: Optional[ProgressCallback]) -> Perturbation:
        return Perturbation(self.perturb(model, x, y, target, progress), {})
