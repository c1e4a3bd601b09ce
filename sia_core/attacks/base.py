"""What every attack is and returns: the `Attack` protocol, `AttackBase` (the call every attack shares: device,
frozen model, chunks, result), and a frozen result whose success is recomputed on the returned images."""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Literal, NamedTuple, Optional, Protocol, Sequence, TypeVar, get_args

import torch

from sia_core.attacks.objective import CLASSIFICATION, objective_of
from sia_core.progress import ProgressCallback
from sia_core.models.wrapper import ClassifierWrapper, frozen_eval
from sia_core.perceptual import ssim
from sia_core.scaling import batch_size_for
from sia_core.validation import require

Norm = Literal["linf", "l2"]
Outcome = Literal["succeeded", "failed", "already-fooled"]
NORMS: tuple[Norm, ...] = get_args(Norm)


@dataclass(frozen=True)
class AttackResult:
    """Outcome of one attack on a batch.

    Attributes:
        images: (N, C, H, W) adversarial images in [0, 1], exactly the tensor the metrics use.
        clean_images: the inputs.
        labels: true labels (N,).
        target: target labels (N,) for a targeted attack, else None.
        clean_logits, adversarial_logits: (N, K) on the CPU.
        success: (N,) bool; untargeted: prediction != label; targeted: prediction == target.
        success_after_rounding: the same after quantizing the images to 8 bits (what a PNG keeps).
        perturbation_linf, perturbation_l2: (N,) norms of images - clean_images.
        ssim: (N,) structural similarity of images to clean_images (`sia_core.perceptual.ssim`; 1 = unchanged),
            how visible the attack is, where the norms only say how large.
        history: per-step scalars (e.g. "loss", "success_rate"), one list each.
        attack: a short description with its parameters.
    """

    images: torch.Tensor
    clean_images: torch.Tensor
    labels: torch.Tensor
    target: Optional[torch.Tensor]
    clean_logits: torch.Tensor
    adversarial_logits: torch.Tensor
    success: torch.Tensor
    success_after_rounding: torch.Tensor
    perturbation_linf: torch.Tensor
    perturbation_l2: torch.Tensor
    ssim: torch.Tensor
    history: dict[str, list[float]] = field(default_factory=dict)
    attack: str = ""
    # (N,) bool: the clean images already met the success criterion (set by `finalize_result` from the model's
    # objective; None on results made by hand, where the classification rule is recomputed)
    clean_success: Optional[torch.Tensor] = None
    # keypoint models: the reference points the attacked images are judged against, where the attack's geometric edit
    # moved them (None: judged against `labels`)
    judged_against: Optional[torch.Tensor] = None

    @property
    def reference(self) -> torch.Tensor:
        """What the attacked images are judged against: the moved landmarks, else the labels (or points) given."""
        return self.labels if self.judged_against is None else self.judged_against

    @property
    def success_rate(self) -> float:
        return float(self.success.float().mean()) if self.success.numel() else 0.0

    @property
    def mean_ssim(self) -> float:
        return float(self.ssim.float().mean()) if self.ssim.numel() else 1.0

    @property
    def adversarial_predictions(self) -> torch.Tensor:
        return self.adversarial_logits.argmax(dim=1)

    @property
    def already_fooled(self) -> torch.Tensor:
        """(N,) bool: the clean image already met the success criterion (misclassified, or already the target), so
        the attack had nothing to do there; a success on it is no success of the attack."""
        if self.clean_success is not None:
            return self.clean_success
        return is_success(self.clean_logits, self.labels, self.target)

    def outcome(self, index: int) -> Outcome:
        """One image's outcome, with "already-fooled" its own result rather than a success."""
        if bool(self.already_fooled[index]):
            return "already-fooled"
        return "succeeded" if bool(self.success[index]) else "failed"


def is_success(logits: torch.Tensor, labels: torch.Tensor, target: Optional[torch.Tensor]) -> torch.Tensor:
    """The classification success criterion (keypoint models bring their own: `objective_of`)."""
    return CLASSIFICATION.success(logits, labels, target)


def quantize_8bit(images: torch.Tensor) -> torch.Tensor:
    """Round to the 256 levels an 8-bit PNG stores."""
    return torch.round(images.clamp(0, 1) * 255) / 255


def on_model_device(model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor, target: Optional[torch.Tensor]
                    ) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Images, labels and target moved to the device the model lives on (the wrapper owns the device)."""
    device = model.device
    return x.to(device), y.to(device), target.to(device) if target is not None else None


def finalize_result(model: ClassifierWrapper, clean: torch.Tensor, adversarial: torch.Tensor, labels: torch.Tensor,
                    target: Optional[torch.Tensor], history: dict[str, list[float]], description: str,
                    clean_logits: Optional[torch.Tensor] = None,
                    judged_against: Optional[torch.Tensor] = None) -> AttackResult:
    """Recompute the model's outputs (logits, or a keypoint model's points) and success on the exact returned tensor
    (and on its 8-bit version), by the model's objective."""
    objective = objective_of(model)
    adversarial = adversarial.detach()
    with torch.no_grad():
        if clean_logits is None:
            clean_logits = model(clean)
        adversarial_logits = model(adversarial)
        rounded_logits = model(quantize_8bit(adversarial))
    labels_cpu = labels.cpu()
    judged_cpu = labels_cpu if judged_against is None else judged_against.detach().cpu()
    target_cpu = target.cpu() if target is not None else None
    delta = (adversarial - clean).flatten(1)
    return AttackResult(
        images=adversarial.cpu(),
        clean_images=clean.detach().cpu(),
        labels=labels_cpu,
        target=target_cpu,
        clean_logits=clean_logits.detach().cpu(),
        adversarial_logits=adversarial_logits.cpu(),
        success=objective.success(adversarial_logits.cpu(), judged_cpu, target_cpu),
        success_after_rounding=objective.success(rounded_logits.cpu(), judged_cpu, target_cpu),
        perturbation_linf=delta.abs().amax(dim=1).cpu(),
        perturbation_l2=delta.norm(dim=1).cpu(),
        ssim=ssim(adversarial, clean.detach()).cpu(),
        history=history,
        attack=description,
        clean_success=objective.success(clean_logits.detach().cpu(), labels_cpu, target_cpu),
        judged_against=None if judged_against is None else judged_cpu,
    )


ResultT = TypeVar("ResultT", bound=AttackResult)


def concatenate_results(parts: Sequence[ResultT]) -> ResultT:
    """One result from the results of consecutive chunks of a batch (any `AttackResult` subclass): tensors are
    concatenated, and each history curve is the per-step mean weighted by the chunks' sizes."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    tensors = {name: torch.cat([getattr(part, name) for part in parts])
               for name, value in first.__dict__.items() if isinstance(value, torch.Tensor)}
    total = sum(len(part.labels) for part in parts)
    history = {key: [sum(part.history[key][i] * len(part.labels) for part in parts) / max(total, 1)
                     for i in range(len(first.history[key]))] for key in first.history}
    return dataclasses.replace(first, **tensors, history=history)


AttackRun = Callable[[torch.Tensor, torch.Tensor, Optional[torch.Tensor], Optional[ProgressCallback]], ResultT]


def run_in_chunks(run: AttackRun, x: torch.Tensor, y: torch.Tensor, target: Optional[torch.Tensor],
                  progress: Optional[ProgressCallback]) -> ResultT:
    """`run(x, y, target, progress)` on chunks of at most `batch_size_for(x.shape, len(x))` images, so a large
    batch of large images never sits in one forward pass; up to 3 x 32 x 32 (784 images) it is one call."""
    size = batch_size_for(x.shape, max(len(x), 1))
    if len(x) <= size:
        return run(x, y, target, progress)
    starts = range(0, len(x), size)

    def overall(done: int) -> Optional[ProgressCallback]:  # a chunk's (step, total) as progress through all chunks
        if progress is None:
            return None
        return lambda step, total, info: progress(done * total + step, len(starts) * total, info)

    parts = [run(x[start:start + size], y[start:start + size], target[start:start + size] if target is not None
                 else None, overall(number)) for number, start in enumerate(starts)]
    return concatenate_results(parts)


class Attack(Protocol):
    """What `evaluate`, training and the lenses need of an attack: a configured object called with data.

    `__call__` moves the data to `model.device`, freezes the model and returns an honest `AttackResult` (the
    attacks here inherit it from `AttackBase`);
    `perturb` returns the adversarial images only, on the inputs' device, for callers (training, evaluation)
    that already hold the model frozen and need no result.
    """

    @property
    def description(self) -> str: ...

    def __call__(self, model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor,
                 target: Optional[torch.Tensor] = None,
                 progress: Optional[ProgressCallback] = None) -> AttackResult: ...

    def perturb(self, model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor,
                target: Optional[torch.Tensor] = None) -> torch.Tensor: ...


class Perturbation(NamedTuple):
    """What an attack's `_run` found on one chunk: the adversarial images, its per-step history, and anything its
    `_result` hook needs to enrich the result (None for the pixel attacks)."""

    images: torch.Tensor
    history: dict[str, list[float]]
    extras: Any = None
    # what success is judged against when it is not the labels: a keypoint model's landmarks moved by a geometric
    # attribute edit (the result's `labels` stay the reference the attack started from)
    judged_against: Optional[torch.Tensor] = None


class AttackBase(abc.ABC, Generic[ResultT]):
    """The `__call__` every attack shares, as a base for frozen dataclass attacks: the data moves to `model.device`,
    a large batch is split into chunks (`run_in_chunks`), the model is frozen (`frozen_eval`) while `_run` perturbs
    each chunk, and `finalize_result` recomputes success on the exact returned images.

    An attack writes its perturbation only: `_run` and `description`, and `_result` when its result carries more
    than an `AttackResult` (as the semantic attack's does).
    """

    @property
    @abc.abstractmethod
    def description(self) -> str: ...

    @abc.abstractmethod
    def _run(self, model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor, target: Optional[torch.Tensor],
             progress: Optional[ProgressCallback]) -> Perturbation:
        """The perturbation of one chunk, on the model's device, with the model already frozen."""

    def _result(self, result: AttackResult, extras: Any) -> ResultT:
        """The chunk's result from the shared one and `_run`'s extras; by default the shared one as is."""
        del extras
        return result  # type: ignore[return-value]  # ResultT is AttackResult unless a subclass overrides this

    def __call__(self, model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor,
                 target: Optional[torch.Tensor] = None, progress: Optional[ProgressCallback] = None) -> ResultT:
        """Attack `x` (N, C, H, W) in [0, 1] with true labels `y` (N,), towards `target` (N,) if given; `progress`
        gets (step, total, info) through all chunks."""
        return run_in_chunks(lambda *chunk: self._attack_chunk(model, *chunk), x, y, target, progress)

    def _attack_chunk(self, model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor,
                      target: Optional[torch.Tensor], progress: Optional[ProgressCallback]) -> ResultT:
        x, y, target = on_model_device(model, x, y, target)
        with frozen_eval(model):
            found = self._run(model, x, y, target, progress)
            result = finalize_result(model, x, found.images, y, target, found.history,
                                     self.description + (" targeted" if target is not None else ""),
                                     judged_against=found.judged_against)
        return self._result(result, found.extras)


def check_seed(name: str, value: Any) -> None:
    """A seed is a whole number (use with `validation.optional` where None means unseeded)."""
    require(isinstance(value, int) and not isinstance(value, bool), f"{name} must be a whole number, got {value!r}.")
