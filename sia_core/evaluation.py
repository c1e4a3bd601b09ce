"""Clean and robust accuracy of a model on a dataset, batched, with progress."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import torch

from sia_core.attacks.base import Attack
from sia_core.data.base import ImageDataset
from sia_core.distributed import map_batches
from sia_core.models.wrapper import ClassifierWrapper, frozen_eval
from sia_core.progress import ProgressCallback
from sia_core.scaling import batch_size_for
from sia_core.validation import optional, positive_int


@dataclass(frozen=True)
class EvaluationReport:
    n: int
    clean_accuracy: float
    robust_accuracy: Optional[float]
    attack: Optional[str]
    dataset: str

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate(model: ClassifierWrapper, dataset: ImageDataset, *, attack: Optional[Attack] = None,
             n: Optional[int] = None, batch_size: int = 500,
             progress: Optional[ProgressCallback] = None) -> EvaluationReport:
    """Accuracy on the first `n` images (all when None), and under `attack` (any `Attack`) when given.

    Robust accuracy counts a sample as robust when it is classified correctly both clean and
    after the attack (the attack starts from the clean image, so a misclassified clean image
    counts as broken). `batch_size` is capped by `batch_size_for` on large images.
    """
    optional(positive_int, "n", n)
    positive_int("batch_size", batch_size)
    batch_size = batch_size_for(dataset.image_shape, batch_size)
    count = len(dataset) if n is None else min(n, len(dataset))
    batches = max(1, -(-count // batch_size))
    tally = {"batches": 0, "correct": 0, "seen": 0}  # this process's running count, for the progress line

    def judged(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = dataset.images[index].to(model.device), dataset.labels[index].to(model.device)
        with torch.no_grad():
            clean_ok = model(x).argmax(1) == y
        robust_ok = torch.zeros_like(clean_ok)
        if attack is not None:
            adversarial = attack.perturb(model, x, y)
            with torch.no_grad():
                robust_ok = clean_ok & (model(adversarial).argmax(1) == y)
        tally["batches"] += 1
        tally["correct"] += int(clean_ok.sum())
        tally["seen"] += len(y)
        if progress is not None:
            progress(tally["batches"], batches, {"clean_accuracy": tally["correct"] / tally["seen"]})
        return clean_ok.cpu(), robust_ok.cpu()

    # under torchrun the batches are shared among the processes (sia_core.distributed)
    with frozen_eval(model):
        clean_ok, robust_ok = map_batches(judged, count, batch_size) if count else (torch.zeros(0), torch.zeros(0))
    correct_clean, correct_robust = int(clean_ok.sum()), int(robust_ok.sum())
    return EvaluationReport(
        n=count,
        clean_accuracy=correct_clean / max(count, 1),
        robust_accuracy=correct_robust / max(count, 1) if attack is not None else None,
        attack=attack.description if attack is not None else None,
        dataset=dataset.name,
    )
