"""The Semantic Image Attack (Luo et al. 2023; a light version of it): gradient ascent on named attributes and pixels together.

The attribute space is `sia_core.semantics`; the pixel term is a small L-inf perturbation on top.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Optional, Sequence

import torch

from sia_core.attacks.base import AttackBase, AttackResult, Perturbation, check_seed
from sia_core.attacks.objective import Objective, objective_of
from sia_core.errors import ConfigError
from sia_core.models.wrapper import ClassifierWrapper
from sia_core.numerics import TINY
from sia_core.perceptual import ssim
from sia_core.progress import ProgressCallback
from sia_core.semantics import ATTRIBUTES, apply_attributes, applicable_attributes, attribute_range
from sia_core.validation import in_range, non_negative, non_negative_int, optional, positive, require



@dataclass(frozen=True)
class SemanticAttackResult(AttackResult):
    """An `AttackResult` plus what the semantic attack found.

    Attributes:
        attribute_names: the attributes the attack could move, in composition order.
        attribute_values: (N, K) final value of each attribute, in its own unit.
        edited_images: (N, C, H, W) the attribute edit alone, T(x; alpha), before the pixel term.
        first_success_step: (N,) the first step whose images succeeded (0 = before any step), -1 if never.
    """

    attribute_names: tuple[str, ...] = ()
    attribute_values: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    edited_images: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    first_success_step: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))

    @property
    def pixel_perturbation(self) -> torch.Tensor:
        """images - edited_images: the pixel term as it survives the final clamp to [0, 1]."""
        return self.images - self.edited_images

    def attributes_of(self, index: int) -> dict[str, float]:
        """The attribute values found for sample `index`, by name."""
        return {name: float(self.attribute_values[index, k]) for k, name in enumerate(self.attribute_names)}

    def attribute_reach(self) -> dict[str, float]:
        """Each attribute's max(|low|, |high|), its range as fitted to these images' size: the scale on which how far
        attributes went can be compared (30 degrees of rotation, 3 px of shift, ...)."""
        shape = self.images.shape[1:]
        return {name: max(abs(bound) for bound in attribute_range(name, shape)) for name in self.attribute_names}

    def normalized_magnitudes(self) -> torch.Tensor:
        """(N, K) |alpha_k| / reach_k: how far each attribute went, 0..1, comparable across attributes."""
        return self.attribute_values.abs() / torch.tensor(list(self.attribute_reach().values()))


class _Found(NamedTuple):
    """What `SemanticAttack._run` hands its `_result` hook besides the images."""

    names: tuple[str, ...]
    alpha: torch.Tensor
    edited: torch.Tensor
    first_success: torch.Tensor
    objective: Objective
    reference: torch.Tensor  # the labels, or the landmarks where the final edit moved them


@dataclass(frozen=True, kw_only=True)
class SemanticAttack(AttackBase[SemanticAttackResult]):
    """Semantic Image Attack: climb a named attribute space and a small pixel perturbation together.

    Threat model: each attribute in `attributes` may take any value in its registered range
    (`sia_core.semantics.ATTRIBUTES`: e.g. rotation ±20°, brightness ±0.25; ranges in pixels, such as
    shift ±3 px, scale with images over 32 px, see `attributes_for`), composed in the one documented order;
    on top, a pixel perturbation with ‖δ‖∞ ≤ `eps_linf`; the result is clamped to [0, 1]. Untargeted
    (raise the loss of the true label) unless the call gets a `target`.

    Objective, maximized: CE(f(x_adv), y) − λ Σ_k |α_k| / width_k − μ (1 − SSIM(x_adv, x)), with
    x_adv = clip(T(x; α) + δ) and μ = `perceptual_weight` (SSIM: `sia_core.perceptual.ssim`, against the clean x).
    Each step: α ← Proj(α + η_α · g / ‖g‖₂) in range-normalized coordinates (η_α =
    `attribute_step` × width), δ ← Proj(δ + η_δ · sign(∇δ)) with η_δ = `pixel_step` (default ε/4).

    Args:
        attributes: names to search; None = every attribute that applies to the images' channels.
        steps: gradient steps (default 30).
        eps_linf: L-inf radius of the pixel term in [0, 1] units; 0 = attributes only.
        sparsity_weight: λ above; larger values use fewer attributes (easier to trace).
        perceptual_weight: μ above; larger values keep the adversarial image structurally closer to the
            original (higher SSIM), at some cost in success; 0 (default) leaves SSIM out of the loop.
        attribute_step: step as a fraction of each attribute's range width (default 0.1).
        pixel_step: step of the pixel term; default eps_linf / 4.
        warmup_fraction: share of the steps that move attributes only, before δ switches on.
        early_stop: freeze each sample at its first success (else keep climbing, recording the first flip).
        random_init: start the attributes uniformly at random in their ranges (seeded).
        optimize_attributes: False keeps the attributes at their start (with random_init: the
            "random attributes + PGD" control).
        seed: seeds random_init, and the start one attribute step off the image where the task's loss is flat
            there (a keypoint model at its own prediction: `Objective.flat_at_reference`).

    Call: ``SemanticAttack()(model, x, y, target=None, progress=None)`` with x (N, C, H, W) in
    [0, 1]; returns a `SemanticAttackResult`.
    """

    attributes: Optional[tuple[str, ...]] = None
    steps: int = 30
    eps_linf: float = 2 / 255
    sparsity_weight: float = 0.0
    perceptual_weight: float = 0.0
    attribute_step: float = 0.1
    pixel_step: Optional[float] = None
    warmup_fraction: float = 0.0
    early_stop: bool = False
    random_init: bool = False
    optimize_attributes: bool = True
    seed: Optional[int] = 0

    def __post_init__(self) -> None:
        if self.attributes is not None:
            require(not isinstance(self.attributes, str),
                    f"attributes must be a tuple of names, got the string {self.attributes!r}.")
            unknown = [name for name in self.attributes if name not in ATTRIBUTES]
            require(not unknown, f"Unknown attributes: {', '.join(map(str, unknown))}; known: {', '.join(ATTRIBUTES)}.")
        non_negative_int("steps", self.steps)
        non_negative("eps_linf", self.eps_linf)
        non_negative("sparsity_weight", self.sparsity_weight)
        non_negative("perceptual_weight", self.perceptual_weight)
        positive("attribute_step", self.attribute_step)
        optional(positive, "pixel_step", self.pixel_step)
        in_range("warmup_fraction", self.warmup_fraction, 0.0, 1.0)
        optional(check_seed, "seed", self.seed)

    @property
    def description(self) -> str:
        return (f"SIA steps={self.steps} eps_linf={self.eps_linf:.4g} λ={self.sparsity_weight:g}"
                + (f" μ_ssim={self.perceptual_weight:g}" if self.perceptual_weight else "")
                + (" random-init" if self.random_init else "") + ("" if self.optimize_attributes else " fixed-attributes"))

    def attribute_names(self, num_channels: int) -> tuple[str, ...]:
        available = [a.name for a in applicable_attributes(num_channels)]
        if self.attributes is None:
            return tuple(available)
        not_applicable = [name for name in self.attributes if name not in available]
        if not_applicable:
            raise ConfigError(f"{', '.join(not_applicable)} do not apply to {num_channels}-channel images.")
        return tuple(name for name in available if name in self.attributes)

    def perturb(self, model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor,
                target: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The adversarial images only, on the inputs' device (for `evaluate`, which holds the model frozen)."""
        names = self.attribute_names(x.shape[1])
        alpha, delta, _, _ = self._climb(model, x, y, target, names, None)
        return _compose(x, names, alpha, delta)[1]

    def _run(self, model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor, target: Optional[torch.Tensor],
             progress: Optional[ProgressCallback]) -> Perturbation:
        names = self.attribute_names(x.shape[1])
        alpha, delta, history, first_success = self._climb(model, x, y, target, names, progress)
        edited, adversarial = _compose(x, names, alpha, delta)
        task = objective_of(model)
        with torch.no_grad():
            reference = task.reference_after(y, x, _params(names, alpha))
        return Perturbation(adversarial, history, _Found(names, alpha, edited, first_success, task, reference),
                            judged_against=None if reference is y else reference)

    def _result(self, result: AttackResult, extras: _Found) -> SemanticAttackResult:
        names, alpha, edited, first_success, task, reference = extras
        # the final point's history entry reuses the logits finalize_result already computed
        reference = reference.cpu()
        goal = result.target if result.target is not None else reference
        first_success[(first_success < 0) & result.success.to(first_success.device)] = self.steps
        _record(result.history, task.loss(result.adversarial_logits, goal),
                task.score(result.adversarial_logits, reference), result.success, names, alpha.cpu())
        return SemanticAttackResult(**result.__dict__, attribute_names=names, attribute_values=alpha.detach().cpu(),
                                    edited_images=edited.detach().cpu(), first_success_step=first_success.cpu())

    def _initial_alpha(self, names: Sequence[str], n: int, x: torch.Tensor, flat_at_start: bool) -> torch.Tensor:
        low, high = _bounds(names, x)
        if not self.random_init and not (flat_at_start and self.optimize_attributes):
            return torch.zeros(n, len(names), device=x.device, dtype=x.dtype)
        generator = torch.Generator().manual_seed(self.seed if self.seed is not None else 0)
        uniform = torch.rand(n, len(names), generator=generator).to(x.device, x.dtype)
        if self.random_init:
            return low + uniform * (high - low)
        # a loss flat at the unedited image (a keypoint model at its own prediction) has no gradient to climb: start
        # one attribute step away, in a seeded random direction, instead of leaving it to float noise (which a
        # bit-reproducible CPU does not supply, and the attack then never moves)
        start = (2 * uniform - 1) * self.attribute_step * (high - low)
        return torch.max(torch.min(start, high), low)

    def _climb(self, model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor, target: Optional[torch.Tensor],
               names: tuple[str, ...], progress: Optional[ProgressCallback]):
        n = x.shape[0]
        low, high = _bounds(names, x)
        width = high - low
        task = objective_of(model)  # cross-entropy for classifiers, NME for keypoint models
        alpha = self._initial_alpha(names, n, x, task.flat_at_reference and target is None)
        delta = torch.zeros_like(x)
        pixel_step = self.pixel_step if self.pixel_step is not None else self.eps_linf / 4
        warmup_steps = int(round(self.steps * self.warmup_fraction))
        goal, sign = (target, -1.0) if target is not None else (y, 1.0)
        first_success = torch.full((n,), -1, dtype=torch.long, device=x.device)
        history: dict[str, list[float]] = {}
        move_attributes = self.optimize_attributes and len(names) > 0
        for step in range(self.steps):
            move_pixels = self.eps_linf > 0 and step >= warmup_steps
            alpha.requires_grad_(move_attributes)
            delta.requires_grad_(move_pixels)
            params = _params(names, alpha)
            adversarial = (apply_attributes(x, params) + delta).clamp(0, 1)
            logits = model(adversarial)
            # keypoints: the landmarks move with a geometric edit, and the attack is judged against where they go
            reference = task.reference_after(y, x, params)
            cross_entropy = task.loss(logits, goal if target is not None else reference)
            with torch.no_grad():
                success = task.success(logits, reference, target)
                first_success[(first_success < 0) & success] = step
                _record(history, cross_entropy, task.score(logits, reference), success, names, alpha)
            trainable = [t for t in (alpha, delta) if t.requires_grad]
            if trainable:
                objective = sign * cross_entropy
                if self.sparsity_weight:  # skipped at 0, as the SSIM term: the same gradient, fewer ops a step
                    objective = objective - self.sparsity_weight * (alpha.abs() / width).sum(1)
                if self.perceptual_weight:  # skipped at 0: the default attack pays nothing for it
                    objective = objective - self.perceptual_weight * (1 - ssim(adversarial, x))
                gradients = torch.autograd.grad(objective.sum(), trainable)
                with torch.no_grad():
                    # early stop freezes the samples already fooled; without it every sample moves (no mask to apply)
                    active = (~success).to(x.dtype) if self.early_stop else None
                    gradient_iter = iter(gradients)
                    if move_attributes:
                        scaled = next(gradient_iter) * width  # gradient in range-normalized coordinates
                        move = self.attribute_step * width * (scaled / (scaled.norm(dim=1, keepdim=True) + TINY))
                        alpha = torch.max(torch.min(alpha + (move if active is None else active.view(-1, 1) * move),
                                                    high), low)
                    if move_pixels:
                        move = pixel_step * next(gradient_iter).sign()
                        delta = delta + (move if active is None else active.view(-1, 1, 1, 1) * move)
                        delta = delta.clamp(-self.eps_linf, self.eps_linf)
            alpha, delta = alpha.detach(), delta.detach()
            if progress is not None:
                progress(step + 1, self.steps, {"loss": history["loss"][-1], "success_rate": history["success_rate"][-1]})
        return alpha.detach(), delta.detach(), history, first_success


def _bounds(names: Sequence[str], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, K) low and high bounds, fitted to the size of the images `x`."""
    ranges = [attribute_range(n, x.shape) for n in names]
    low = torch.tensor([r[0] for r in ranges], device=x.device, dtype=x.dtype).view(1, -1)
    high = torch.tensor([r[1] for r in ranges], device=x.device, dtype=x.dtype).view(1, -1)
    return low, high


def _params(names: Sequence[str], alpha: torch.Tensor) -> dict[str, torch.Tensor]:
    return dict(zip(names, alpha.unbind(1)))  # one backward node for all, not one zero-filled copy per slice


def _compose(x: torch.Tensor, names: Sequence[str], alpha: torch.Tensor,
             delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The attribute edit T(x; alpha) alone, and the adversarial images clip(T(x; alpha) + delta)."""
    with torch.no_grad():
        edited = apply_attributes(x, _params(names, alpha))
    return edited, (edited + delta).clamp(0, 1)


def _record(history: dict[str, list[float]], cross_entropy: torch.Tensor, score: tuple[str, torch.Tensor],
            success: torch.Tensor, names: Sequence[str], alpha: torch.Tensor) -> None:
    # one stacked transfer per step instead of one sync per scalar; `score`: the task's curve (p(true class), NME)
    score_name, score_values = score
    means = torch.cat([cross_entropy.mean().view(1), score_values.mean().view(1),
                       success.float().mean().view(1).to(cross_entropy.device),
                       alpha.mean(0).to(cross_entropy.device)]).tolist()
    history.setdefault("loss", []).append(means[0])
    history.setdefault(score_name, []).append(means[1])
    history.setdefault("success_rate", []).append(means[2])
    for k, name in enumerate(names):
        history.setdefault(f"attribute/{name}", []).append(means[3 + k])
