"""FGSM and PGD under L-inf or L2, untargeted or targeted, with optional random start."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from sia_core.attacks.base import AttackResult, Norm, ProgressCallback, finalize_result
from sia_core.models.wrapper import frozen_eval

_TINY = 1e-12


def _per_sample_l2(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).clamp_min(_TINY).view(-1, *([1] * (t.ndim - 1)))


def project(delta: torch.Tensor, norm: Norm, eps: float) -> torch.Tensor:
    """Project a perturbation onto the eps-ball of `norm`."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    return delta * (eps / _per_sample_l2(delta)).clamp(max=1.0)


def random_in_ball(shape: torch.Size, norm: Norm, eps: float, *, device: torch.device,
                   generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """A uniform draw inside the L-inf ball, or a random direction at a uniform radius in the L2 ball.

    Drawn on the CPU so that a seed gives the same start on every device.
    """
    if norm == "linf":
        return ((2 * torch.rand(shape, generator=generator) - 1) * eps).to(device)
    direction = torch.randn(shape, generator=generator)
    radius = torch.rand(shape[0], generator=generator).view(-1, *([1] * (len(shape) - 1)))
    return (direction / _per_sample_l2(direction) * eps * radius).to(device)


def _ascent_direction(gradient: torch.Tensor, norm: Norm) -> torch.Tensor:
    return gradient.sign() if norm == "linf" else gradient / _per_sample_l2(gradient)


@dataclass(frozen=True, kw_only=True)
class PGD:
    """Projected gradient descent (Madry et al. 2018).

    Threat model: each image may change by at most `eps` in the `norm` ("linf" or "l2") and must
    stay in [0, 1]. Untargeted (raise the loss of the true label) unless a `target` is passed to
    the call, then targeted (lower the loss of the target label).

    Args:
        eps: radius of the ball, in [0, 1] pixel units (L2: over the whole image).
        norm: "linf" (signed steps) or "l2" (normalized gradient steps).
        steps: gradient steps.
        step_size: per-step size; default 2.5 * eps / steps.
        random_start: start from a random point inside the ball.
        seed: seeds the random start, for reproducible results.

    Call: ``PGD(eps=0.1)(model, x, y, target=None, progress=None)`` with `x` (N, C, H, W) in
    [0, 1] and `y` (N,) true labels; returns an `AttackResult`.
    """

    eps: float
    norm: Norm = "linf"
    steps: int = 10
    step_size: Optional[float] = None
    random_start: bool = True
    seed: Optional[int] = None

    def __post_init__(self) -> None:
        if self.eps < 0 or self.steps < 0:
            raise ValueError("eps and steps must be non-negative")
        if self.norm not in ("linf", "l2"):
            raise ValueError(f"norm must be 'linf' or 'l2', got {self.norm!r}")

    @property
    def description(self) -> str:
        return f"PGD-{self.norm} eps={self.eps:g} steps={self.steps}"

    def perturb(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                target: Optional[torch.Tensor] = None, progress: Optional[ProgressCallback] = None,
                history: Optional[dict[str, list[float]]] = None) -> torch.Tensor:
        """The adversarial images only (used inside training loops, where no result is needed)."""
        step_size = self.step_size if self.step_size is not None else 2.5 * self.eps / max(self.steps, 1)
        generator = torch.Generator().manual_seed(self.seed) if self.seed is not None else None
        delta = torch.zeros_like(x)
        if self.random_start and self.eps > 0:
            delta = random_in_ball(x.shape, self.norm, self.eps, device=x.device, generator=generator)
            delta = (x + delta).clamp(0, 1) - x
        sign = -1.0 if target is not None else 1.0
        goal = target if target is not None else y
        for step in range(self.steps):
            delta.requires_grad_(True)
            logits = model(x + delta)
            loss = F.cross_entropy(logits, goal)
            (gradient,) = torch.autograd.grad(loss, delta)
            with torch.no_grad():
                delta = delta + sign * step_size * _ascent_direction(gradient, self.norm)
                delta = project(delta, self.norm, self.eps)
                delta = (x + delta).clamp(0, 1) - x
            if history is not None:
                history.setdefault("loss", []).append(loss.item())
                reached = logits.argmax(1) == goal if target is not None else logits.argmax(1) != goal
                history.setdefault("success_rate", []).append(float(reached.float().mean()))
            if progress is not None:
                progress(step + 1, self.steps, {"loss": loss.item()})
        return (x + delta).detach()

    def __call__(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                 target: Optional[torch.Tensor] = None, progress: Optional[ProgressCallback] = None) -> AttackResult:
        device = next(model.parameters()).device
        x, y = x.to(device), y.to(device)
        target = target.to(device) if target is not None else None
        history: dict[str, list[float]] = {}
        with frozen_eval(model):
            adversarial = self.perturb(model, x, y, target, progress, history)
            return finalize_result(model, x, adversarial, y, target, history,
                                   self.description + (" targeted" if target is not None else ""))


@dataclass(frozen=True, kw_only=True)
class FGSM:
    """Fast gradient sign method (Goodfellow et al. 2015), one step of size `eps`.

    Threat model: L-inf ball of radius `eps`, images kept in [0, 1]. With `random_start` it is
    the "FGSM with random start" of Wong et al. 2020 (uniform start, step `step_size`,
    default 1.25 * eps), projected back to the ball. Targeted when the call gets a `target`.
    """

    eps: float
    random_start: bool = False
    step_size: Optional[float] = None
    seed: Optional[int] = None

    def _as_pgd(self) -> PGD:
        step = self.step_size if self.step_size is not None else (1.25 * self.eps if self.random_start else self.eps)
        return PGD(eps=self.eps, norm="linf", steps=1, step_size=step, random_start=self.random_start, seed=self.seed)

    @property
    def description(self) -> str:
        return f"FGSM eps={self.eps:g}" + (" random start" if self.random_start else "")

    def perturb(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                target: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self._as_pgd().perturb(model, x, y, target)

    def __call__(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                 target: Optional[torch.Tensor] = None, progress: Optional[ProgressCallback] = None) -> AttackResult:
        result = self._as_pgd()(model, x, y, target, progress)
        return AttackResult(**{**result.__dict__, "attack": self.description})
