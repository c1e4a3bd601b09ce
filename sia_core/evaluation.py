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
from sia_core.validation import non_negative, optional, positive_int


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


@dataclass(frozen=True)
class EvaluationConfig:
    """Clean accuracy on the first `n` test images (all when None) and, with `attack` (a name of the attack
    registry), robust accuracy under it at radius `eps` (in the attack's own norm) with `steps` steps."""

    attack: Optional[str] = None
    eps: float = 0.1
    steps: int = 20
    n: Optional[int] = None
    seed: int = 0

    def __post_init__(self) -> None:
        from sia_core.attacks import ATTACKS

        if self.attack is not None:
            ATTACKS[self.attack]  # unknown names raise, listing the choices
        non_negative("eps", self.eps)
        positive_int("steps", self.steps)
        optional(positive_int, "n", self.n)


@dataclass(frozen=True)
class EvaluationStudy:
    """One model's accuracy on one test set, clean and under the config's attack: a model card's evaluation."""

    model: str
    test_set: str
    test_source: str
    n: int
    clean_accuracy: float
    robust_accuracy: Optional[float]
    attack: Optional[str]
    eps: Optional[float]
    steps: Optional[int]
    # AutoAttack only: PGD-20 in the same norm at the same ε on the same images, the figure the cards used to give
    pgd20_robust_accuracy: Optional[float] = None

    def card_entry(self) -> dict:
        """The entry a model card keeps (accuracies to 4 places)."""
        entry = {"test_set": self.test_set, "test_source": self.test_source, "n": self.n,
                 "clean_accuracy": round(self.clean_accuracy, 4),
                 "robust_accuracy": None if self.robust_accuracy is None else round(self.robust_accuracy, 4),
                 "attack": self.attack, "eps": self.eps, "steps": self.steps}
        if self.pgd20_robust_accuracy is not None and self.robust_accuracy is not None:
            entry.update({"pgd20_robust_accuracy": round(self.pgd20_robust_accuracy, 4),
                          "gap_vs_pgd20_points": round(100 * (self.pgd20_robust_accuracy - self.robust_accuracy), 2)})
        return entry


def evaluation_study(model: ClassifierWrapper, test_set: ImageDataset, config: EvaluationConfig = EvaluationConfig(),
                     progress: Optional[ProgressCallback] = None) -> EvaluationStudy:
    from sia_core.attacks import ATTACKS

    attack = ATTACKS.build(config.attack, eps=config.eps, steps=config.steps, seed=config.seed) if config.attack else None
    subset = test_set if config.n is None else test_set.subset(slice(0, config.n))
    report = evaluate(model, subset, attack=attack, progress=progress)
    attacked = config.attack is not None
    reference = None
    if attacked and config.attack.startswith("autoattack"):
        # the PGD-20 figure beside it, on the same images: AutoAttack should never be the weaker of the two
        pgd = ATTACKS.build(f"pgd-{ATTACKS[config.attack].traits['norm']}", eps=config.eps, steps=20, seed=config.seed)
        reference = evaluate(model, subset, attack=pgd).robust_accuracy
    return EvaluationStudy(model=model.model_id, test_set=subset.name, test_source=subset.source, n=report.n,
                           clean_accuracy=report.clean_accuracy, robust_accuracy=report.robust_accuracy,
                           attack=config.attack, eps=config.eps if attacked else None,
                           steps=None if not attacked or config.attack.startswith("autoattack") else config.steps,
                           pgd20_robust_accuracy=reference)
