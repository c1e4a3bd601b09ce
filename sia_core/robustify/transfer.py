"""The transfer table: does robustness bought with one attack hold against the others?

Rows are models (standard, PGD-AT, SIA-AT, the random-attribute control), columns are attacks with their budgets
stated: FGSM, PGD-L∞, PGD-L2, Carlini–Wagner L2, attributes only, and the full SIA. A cell is the robust accuracy
(clean-correct and still correct after the attack) on the same first `n` test images, with the mean SSIM between
the clean and the attacked images beside it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Mapping, Optional

import torch

from sia_core.attacks import FGSM, PGD, CarliniWagnerL2, SemanticAttack, in_255ths, radius_label
from sia_core.attacks.base import Attack, check_seed, concatenate_results
from sia_core.data.base import ImageDataset
from sia_core.distributed import sharded_attack_batches
from sia_core.models.wrapper import ClassifierWrapper
from sia_core.progress import ProgressCallback
from sia_core.registry import Entry, Registry
from sia_core.scaling import batch_size_for
from sia_core.validation import non_negative, positive, positive_int


@dataclass(frozen=True)
class TransferConfig:
    """The budgets of the columns. The defaults are the usual ones for 32 × 32 colour images (8/255 and L2 0.5,
    as RobustBench); `for_dataset` gives Fashion-MNIST's (0.1 and L2 1.5, as Madry et al.'s MNIST-scale tables).

    Args:
        eps_linf: FGSM and PGD-L∞ radius.
        eps_l2: PGD-L2 and CW-L2 radius (whole image).
        sia_eps_linf: SIA's pixel budget (L∞); the attributes-only column has none.
        steps: PGD steps; CW and the SIA columns take `sia_steps`.
        n: test images per cell (the first n).
    """

    eps_linf: float = 8 / 255
    eps_l2: float = 0.5
    sia_eps_linf: float = 4 / 255
    steps: int = 20
    sia_steps: int = 30
    n: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        positive("eps_linf", self.eps_linf)
        positive("eps_l2", self.eps_l2)
        non_negative("sia_eps_linf", self.sia_eps_linf)
        positive_int("steps", self.steps)
        positive_int("sia_steps", self.sia_steps)
        positive_int("n", self.n)
        check_seed("seed", self.seed)

    @classmethod
    def for_dataset(cls, dataset_name: str, **overrides) -> "TransferConfig":
        """The budgets of `dataset_name`'s world: Fashion-MNIST (gray 28 px) 0.1 / 1.5, anything else 8/255 / 0.5."""
        presets = {"fashion-mnist": {"eps_linf": 0.1, "eps_l2": 1.5}}
        world = next((name for name in presets if dataset_name.startswith(name)), None)
        return cls(**{**presets.get(world, {}), **overrides})


def _fgsm(*, config: TransferConfig) -> Attack:
    return FGSM(eps=config.eps_linf, seed=config.seed)


def _pgd_linf(*, config: TransferConfig) -> Attack:
    return PGD(eps=config.eps_linf, norm="linf", steps=config.steps, seed=config.seed)


def _pgd_l2(*, config: TransferConfig) -> Attack:
    return PGD(eps=config.eps_l2, norm="l2", steps=config.steps, seed=config.seed)


def _cw_l2(*, config: TransferConfig) -> Attack:
    return CarliniWagnerL2(eps=config.eps_l2, steps=config.sia_steps, seed=config.seed)


def _attributes_only(*, config: TransferConfig) -> Attack:
    return SemanticAttack(steps=config.sia_steps, eps_linf=0.0, seed=config.seed)


def _sia(*, config: TransferConfig) -> Attack:
    return SemanticAttack(steps=config.sia_steps, eps_linf=config.sia_eps_linf, seed=config.seed)


# each factory builds its column's attack: TRANSFER_COLUMNS.build(name, config=...); the trait "budget" says the
# column's ε in words, for the table's head (beside the column's label, which names the norm where it has one)
TRANSFER_COLUMNS: Registry[Attack] = Registry("transfer column", [
    Entry("fgsm", "FGSM", "One signed gradient step.", _fgsm,
          traits={"budget": lambda c: radius_label(c.eps_linf, "linf")}),
    Entry("pgd-linf", "PGD-L∞", "Projected gradient steps in the L∞ ball.", _pgd_linf,
          traits={"budget": lambda c: f"ε = {in_255ths(c.eps_linf)}, {c.steps} steps"}),
    Entry("pgd-l2", "PGD-L2", "Projected gradient steps in the L2 ball.", _pgd_l2,
          traits={"budget": lambda c: f"ε = {c.eps_l2:g}, {c.steps} steps"}),
    Entry("cw-l2", "CW-L2", "Carlini–Wagner's margin loss at a fixed L2 budget.", _cw_l2,
          traits={"budget": lambda c: f"ε = {c.eps_l2:g}, {c.sia_steps} steps, confidence κ = 0"}),
    Entry("attributes", "Attributes only", "SIA's attribute search with no pixel term.", _attributes_only,
          traits={"budget": lambda c: f"attribute ranges, {c.sia_steps} steps"}),
    Entry("sia", "SIA", "Attributes and pixels together.", _sia,
          traits={"budget": lambda c: f"attribute ranges + L∞ {in_255ths(c.sia_eps_linf)}, {c.sia_steps} steps"}),
])


@dataclass(frozen=True)
class TransferCell:
    robust_accuracy: float
    mean_ssim: float


@dataclass(frozen=True)
class TransferRow:
    model: str
    recipe: str
    clean_accuracy: float
    cells: dict[str, TransferCell] = field(default_factory=dict)


@dataclass(frozen=True)
class TransferTable:
    dataset: str
    n: int
    config: TransferConfig
    columns: tuple[str, ...]
    rows: tuple[TransferRow, ...]

    def budgets(self) -> dict[str, str]:
        return {name: TRANSFER_COLUMNS[name].traits["budget"](self.config) for name in self.columns}

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "n": self.n, "config": asdict(self.config), "columns": list(self.columns),
                "budgets": self.budgets(),
                "rows": [{"model": row.model, "recipe": row.recipe, "clean_accuracy": round(row.clean_accuracy, 4),
                          **{f"{name}_accuracy": round(cell.robust_accuracy, 4) for name, cell in row.cells.items()},
                          **{f"{name}_ssim": round(cell.mean_ssim, 4) for name, cell in row.cells.items()}}
                         for row in self.rows]}


def robust_accuracy_and_ssim(model: ClassifierWrapper, attack: Attack, images: torch.Tensor, labels: torch.Tensor,
                             clean_correct: torch.Tensor) -> TransferCell:
    """One cell: robust accuracy (clean-correct and still correct) and the mean SSIM of the attacked images."""
    # the attack's own chunks, shared among the processes under torchrun (sia_core.distributed)
    result = concatenate_results(sharded_attack_batches(attack, model, images, labels,
                                                        batch_size_for(images.shape, max(len(images), 1))))
    robust = clean_correct.cpu() & (result.adversarial_predictions == labels.cpu())
    return TransferCell(robust_accuracy=float(robust.float().mean()), mean_ssim=result.mean_ssim)


def transfer_table(models: Mapping[str, tuple[ClassifierWrapper, str]], test_set: ImageDataset,
                   config: TransferConfig = TransferConfig(), columns: Optional[tuple[str, ...]] = None,
                   progress: Optional[ProgressCallback] = None) -> TransferTable:
    """Every model of `models` (id -> (model, recipe name)) against every column, on the first `config.n` images.

    Progress counts cells (model × column)."""
    columns = tuple(columns or TRANSFER_COLUMNS.names())
    for name in columns:
        TRANSFER_COLUMNS[name]  # unknown names raise, listing the choices
    count = min(config.n, len(test_set))
    labels = test_set.labels[:count]
    rows, done, total = [], 0, len(models) * len(columns)
    for model_id, (model, recipe) in models.items():
        x = test_set.resized(tuple(model.input_shape)).images[:count]  # the same images, as this model's input
        with torch.no_grad():
            clean_correct = model.logits(x, batch_size=batch_size_for(x.shape, 500)).argmax(1).cpu() == labels
        cells = {}
        for name in columns:
            attack = TRANSFER_COLUMNS.build(name, config=config)
            cells[name] = robust_accuracy_and_ssim(model, attack, x, labels, clean_correct)
            done += 1
            if progress is not None:
                progress(done, total, {"model": model_id, "column": name,
                                       "robust_accuracy": cells[name].robust_accuracy})
        rows.append(TransferRow(model=model_id, recipe=recipe, clean_accuracy=float(clean_correct.float().mean()),
                                cells=cells))
    return TransferTable(dataset=test_set.name, n=count, config=config, columns=columns, rows=tuple(rows))
