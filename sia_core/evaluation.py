"""Clean and robust accuracy of a model on a dataset, batched, with progress."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import torch

from sia_core.attacks.base import Attack
from sia_core.data.base import ImageDataset
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
    correct_clean = 0
    correct_robust = 0
    batches = max(1, -(-count // batch_size))
    with frozen_eval(model):
        for batch_index, start in enumerate(range(0, count, batch_size)):
            x = dataset.images[start:min(start + batch_size, count)].to(model.device)
            y = dataset.labels[start:min(start + batch_size, count)].to(model.device)
            with torch.no_grad():
                clean_ok = model(x).argmax(1) == y
            correct_clean += int(clean_ok.sum())
            if attack is not None:
                adversarial = attack.perturb(model, x, y)
                with torch.no_grad():
                    robust_ok = clean_ok & (model(adversarial).argmax(1) == y)
                correct_robust += int(robust_ok.sum())
            if progress is not None:
                progress(batch_index + 1, batches, {"clean_accuracy": correct_clean / min(start + batch_size, count)})
    return EvaluationReport(
        n=count,
        clean_accuracy=correct_clean / max(count, 1),
        robust_accuracy=correct_robust / max(count, 1) if attack is not None else None,
        attack=attack.description if attack is not None else None,
        dataset=dataset.name,
    )
