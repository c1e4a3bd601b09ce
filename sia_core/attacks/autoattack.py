"""AutoAttack (Croce & Hein 2020): the ensemble robust accuracy is stated under in the field, RobustBench's
evaluation: APGD-CE, APGD-T, FAB-T and Square, from the `torchattacks` library (3.5.1, MIT; its port of the
reference code), not rewritten here.

`torchattacks` seeds the process's global random generators inside its attacks; the call runs inside
`torch.random.fork_rng`, so the generators are as they were once it returns. Use it where one process runs one
study (the command line, the precompute scripts), not in a page's live run beside other sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from sia_core.attacks.base import AttackBase, AttackResult, Norm, Perturbation, check_seed
from sia_core.errors import ConfigError
from sia_core.models.wrapper import ClassifierWrapper
from sia_core.progress import ProgressCallback
from sia_core.validation import non_negative, one_of, require

TORCHATTACKS_VERSION = "3.5.1"
VERSIONS = ("standard",)  # APGD-CE, APGD-T, FAB-T, Square (5,000 queries): RobustBench's


@dataclass(frozen=True)
class AutoAttack(AttackBase[AttackResult]):
    """Untargeted AutoAttack within an L∞ or L2 ball of radius `eps` ([0, 1] pixel units, whole image for L2)."""

    eps: float
    norm: Norm = "linf"
    version: str = "standard"
    seed: int = 0

    def __post_init__(self) -> None:
        non_negative("eps", self.eps)
        one_of("norm", self.norm, ("linf", "l2"))
        one_of("version", self.version, VERSIONS)
        check_seed("seed", self.seed)

    @property
    def description(self) -> str:
        return f"AutoAttack ({self.version}) {self.norm} eps={self.eps:g}"

    def perturb(self, model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor,
                target: Optional[torch.Tensor] = None, progress: Optional[ProgressCallback] = None) -> torch.Tensor:
        require(target is None, "AutoAttack runs untargeted here (its APGD-T and FAB-T pick their own targets).")
        try:
            import torchattacks
        except ImportError as error:
            raise ConfigError(f"AutoAttack needs torchattacks=={TORCHATTACKS_VERSION} (pip install --no-deps "
                              f"torchattacks=={TORCHATTACKS_VERSION} scipy; bash scripts/setup.sh does).") from error
        if self.eps == 0 or len(x) == 0:
            return x.clone()
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # the library seeds the global generators
            attack = torchattacks.AutoAttack(model, norm="Linf" if self.norm == "linf" else "L2", eps=self.eps,
                                             version=self.version, n_classes=len(model.class_names), seed=self.seed)
            adversarial = attack(x, y)
        if progress is not None:
            progress(1, 1, {})
        return adversarial.detach().clamp(0, 1)

    def _run(self, model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor, target: Optional[torch.Tensor],
             progress: Optional[ProgressCallback]) -> Perturbation:
        return Perturbation(self.perturb(model, x, y, target, progress), {})
