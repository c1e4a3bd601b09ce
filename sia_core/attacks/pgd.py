"""Projected gradient attacks: the one projected-gradient core, and FGSM and PGD (L-inf or L2, untargeted or
targeted, optional random start) built on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Union

import torch

from sia_core.attacks.objective import objective_of
from sia_core.attacks.base import NORMS, AttackBase, AttackResult, Norm, Perturbation, check_seed
from sia_core.models.wrapper import ClassifierWrapper
from sia_core.numerics import TINY
from sia_core.progress import ProgressCallback
from sia_core.validation import non_negative, non_negative_int, one_of, optional, positive



def _per_sample_l2(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).clamp_min(TINY).view(-1, *([1] * (t.ndim - 1)))


Radius = Union[float, torch.Tensor]  # one radius for the batch, or (N,) per sample


def _per_sample(radius: Radius, ndim: int) -> Radius:
    """A float as is; an (N,) tensor viewed as (N, 1, 1, 1) to broadcast over images."""
    return radius.view(-1, *([1] * (ndim - 1))) if isinstance(radius, torch.Tensor) else radius


def project(delta: torch.Tensor, norm: Norm, eps: Radius) -> torch.Tensor:
    """Project a perturbation onto the eps-ball of `norm`; `eps` is a float or an (N,) tensor of radii."""
    eps = _per_sample(eps, delta.ndim)
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


def ascent_direction(gradient: torch.Tensor, norm: Norm) -> torch.Tensor:
    """The steepest-ascent unit step of `norm`: sign(g) for L-inf, g / ||g||_2 for L2."""
    return gradient.sign() if norm == "linf" else gradient / _per_sample_l2(gradient)


StepObserver = Callable[[int, torch.Tensor], None]  # (step index, objective value) after each step


def projected_gradient_ascent(x: torch.Tensor, objective: Callable[[torch.Tensor], torch.Tensor], *, norm: Norm,
                              steps: int, step_size: Radius, radius: Optional[Radius] = None,
                              start: Optional[torch.Tensor] = None, mask: Optional[torch.Tensor] = None,
                              observe: Optional[StepObserver] = None) -> torch.Tensor:
    """The one projected-gradient loop every attack and lens uses; returns the final images, detached.

    Each step: delta += step_size * ascent_direction(grad objective(x + delta)) [* mask], projected onto
    the `radius` ball of `norm` (no projection when None) [* mask], and clipped so x + delta stays in [0, 1].

    Args:
        x: (N, C, H, W) images in [0, 1].
        objective: maps the perturbed images to the scalar to *maximize* (negate a loss to descend it).
        norm: "linf" or "l2"; sets both the step direction and the projection.
        steps: gradient steps.
        step_size: a float, or an (N,) tensor of per-sample sizes.
        radius: a float, an (N,) tensor of per-sample radii, or None (unbounded: only [0, 1] holds).
        start: the initial perturbation (default zeros); it is not projected.
        mask: optional (N or 1, 1 or C, H, W) 0/1 tensor of the pixels that may change.
        observe: called after each step with the step index and the objective at the pre-step point.
    """
    step_size = _per_sample(step_size, x.ndim)
    delta = torch.zeros_like(x) if start is None else start
    for step in range(steps):
        delta.requires_grad_(True)
        value = objective(x + delta)
        (gradient,) = torch.autograd.grad(value, delta)
        with torch.no_grad():
            move = step_size * ascent_direction(gradient, norm)
            delta = delta + (move if mask is None else move * mask)
            if radius is not None:
                delta = project(delta, norm, radius)
            if mask is not None:
                delta = delta * mask
            delta = (x + delta).clamp(0, 1) - x
        if observe is not None:
            observe(step, value.detach())
    return (x + delta).detach()


@dataclass(frozen=True, kw_only=True)
class PGD(AttackBase[AttackResult]):
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
        non_negative("eps", self.eps)
        one_of("norm", self.norm, NORMS)
        non_negative_int("steps", self.steps)
        optional(positive, "step_size", self.step_size)
        optional(check_seed, "seed", self.seed)

    @property
    def description(self) -> str:
        return f"PGD-{self.norm} eps={self.eps:g} steps={self.steps}"

    def perturb(self, model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor,
                target: Optional[torch.Tensor] = None, progress: Optional[ProgressCallback] = None,
                history: Optional[dict[str, list[float]]] = None) -> torch.Tensor:
        """The adversarial images only (used inside training loops, where no result is needed)."""
        step_size = self.step_size if self.step_size is not None else 2.5 * self.eps / max(self.steps, 1)
        generator = torch.Generator().manual_seed(self.seed) if self.seed is not None else None
        delta = torch.zeros_like(x)
        if self.random_start and self.eps > 0:
            delta = random_in_ball(x.shape, self.norm, self.eps, device=x.device, generator=generator)
            delta = (x + delta).clamp(0, 1) - x
        goal = target if target is not None else y
        task = objective_of(model)  # cross-entropy for classifiers, NME for keypoint models
        last_logits: list[torch.Tensor] = []

        def objective(images: torch.Tensor) -> torch.Tensor:
            logits = model(images)
            if history is not None:
                last_logits[:] = [logits.detach()]
            loss = task.loss(logits, goal).mean()
            return -loss if target is not None else loss  # targeted: descend the target's loss

        def observe(step: int, value: torch.Tensor) -> None:
            loss = -value.item() if target is not None else value.item()
            if history is not None:
                reached = task.success(last_logits[0], y, target)
                history.setdefault("loss", []).append(loss)
                history.setdefault("success_rate", []).append(float(reached.float().mean()))
            if progress is not None:
                progress(step + 1, self.steps, {"loss": loss})

        return projected_gradient_ascent(x, objective, norm=self.norm, steps=self.steps, step_size=step_size,
                                         radius=self.eps, start=delta,
                                         observe=observe if history is not None or progress is not None else None)

    def _run(self, model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor, target: Optional[torch.Tensor],
             progress: Optional[ProgressCallback]) -> Perturbation:
        history: dict[str, list[float]] = {}
        return Perturbation(self.perturb(model, x, y, target, progress, history), history)


@dataclass(frozen=True, kw_only=True)
class FGSM(AttackBase[AttackResult]):
    """Fast gradient sign method (Goodfellow et al. 2015), one step of size `eps`.

    Threat model: L-inf ball of radius `eps`, images kept in [0, 1]. With `random_start` it is
    the "FGSM with random start" of Wong et al. 2020 (uniform start, step `step_size`,
    default 1.25 * eps), projected back to the ball. Targeted when the call gets a `target`.
    """

    eps: float
    random_start: bool = False
    step_size: Optional[float] = None
    seed: Optional[int] = None

    def __post_init__(self) -> None:
        non_negative("eps", self.eps)
        optional(positive, "step_size", self.step_size)
        optional(check_seed, "seed", self.seed)

    def _as_pgd(self) -> PGD:
        step = self.step_size if self.step_size is not None else (1.25 * self.eps if self.random_start else self.eps)
        # eps = 0 gives a zero step, which PGD refuses; its own default is then zero too
        return PGD(eps=self.eps, norm="linf", steps=1, step_size=step or None, random_start=self.random_start,
                   seed=self.seed)

    @property
    def description(self) -> str:
        return f"FGSM eps={self.eps:g}" + (" random start" if self.random_start else "")

    def perturb(self, model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor,
                target: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self._as_pgd().perturb(model, x, y, target)

    def _run(self, model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor, target: Optional[torch.Tensor],
             progress: Optional[ProgressCallback]) -> Perturbation:
        return self._as_pgd()._run(model, x, y, target, progress)
