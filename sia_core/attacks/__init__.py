"""Attacks: configured objects called with (model, x, y) that return an `AttackResult`, and `ATTACKS`, the pixel
attacks the CLI and the pages pick by name."""

from __future__ import annotations

from typing import Callable, Optional, Union

from sia_core.attacks.autoattack import AutoAttack
from sia_core.attacks.base import NORMS, Attack, AttackBase, AttackResult, Norm, Perturbation, quantize_8bit
from sia_core.attacks.carlini_wagner import CarliniWagnerL2
from sia_core.attacks.deepfool import DeepFool
from sia_core.attacks.pgd import FGSM, PGD, project, projected_gradient_ascent
from sia_core.attacks.semantic import SemanticAttack, SemanticAttackResult
from sia_core.registry import Entry, Registry

PixelAttack = Union[FGSM, PGD, CarliniWagnerL2, AutoAttack]


def _fgsm(*, eps: float, steps: int, seed: Optional[int]) -> FGSM:
    del steps  # one step by definition; accepted so every entry builds from the same call
    return FGSM(eps=eps, seed=seed)


def _pgd(norm: Norm) -> Callable[..., PGD]:
    def build(*, eps: float, steps: int, seed: Optional[int]) -> PGD:
        return PGD(eps=eps, norm=norm, steps=steps, seed=seed)
    return build


def _cw_l2(*, eps: float, steps: int, seed: Optional[int]) -> CarliniWagnerL2:
    return CarliniWagnerL2(eps=eps, steps=steps, seed=seed)


def _autoattack(norm: Norm) -> Callable[..., AutoAttack]:
    def build(*, eps: float, steps: int, seed: Optional[int]) -> AutoAttack:
        del steps  # the ensemble's own budgets (100 APGD iterations, 5,000 Square queries)
        return AutoAttack(eps=eps, norm=norm, seed=0 if seed is None else seed)
    return build


# Every factory is called as ATTACKS.build(name, eps=..., steps=..., seed=...). DeepFool is not listed: it has no
# budget, so an `eps` would mean nothing to it.
ATTACKS: Registry[PixelAttack] = Registry("attack", [
    Entry("fgsm", "FGSM (L∞)", "One signed gradient step of size ε: fast, and the weakest attack here.",
          _fgsm, defaults={"steps": 1, "seed": 0}, traits={"family": "FGSM", "norm": "linf", "uses_steps": False}),
    Entry("pgd-linf", "PGD (L∞)", "Repeated signed gradient steps from a random start, each pixel kept within ε "
          "of the original: the standard strong attack.", _pgd("linf"), defaults={"steps": 20, "seed": 0},
          traits={"family": "PGD", "norm": "linf", "uses_steps": True}),
    Entry("pgd-l2", "PGD (L2)", "Repeated gradient steps from a random start, the whole change kept within an L2 "
          "length of ε: a few pixels may move a lot.", _pgd("l2"), defaults={"steps": 20, "seed": 0},
          traits={"family": "PGD", "norm": "l2", "uses_steps": True}),
    Entry("cw-l2", "Carlini–Wagner (L2)", "Gradient steps on the logit margin (the best other class minus the true "
          "one) inside an L2 length of ε: Carlini & Wagner's loss at a fixed budget, strong where the softmax "
          "saturates.", _cw_l2, defaults={"steps": 30, "seed": 0},
          traits={"family": "Carlini–Wagner", "norm": "l2", "uses_steps": True}),
    Entry("autoattack-linf", "AutoAttack (L∞)", "Croce & Hein's ensemble (APGD-CE, APGD-T, FAB-T, Square) within ε "
          "per pixel: the field's standard robust accuracy, from the torchattacks library.", _autoattack("linf"),
          defaults={"steps": 100, "seed": 0}, traits={"family": "AutoAttack", "norm": "linf", "uses_steps": False}),
    Entry("autoattack-l2", "AutoAttack (L2)", "Croce & Hein's ensemble within an L2 length of ε, from the "
          "torchattacks library.", _autoattack("l2"), defaults={"steps": 100, "seed": 0},
          traits={"family": "AutoAttack", "norm": "l2", "uses_steps": False}),
])


def in_255ths(eps: float) -> str:
    """An L∞ radius as the pages' sliders set it, in 255ths of full brightness: "8/255" (a card's 0.0314 too)."""
    return f"{round(eps * 255, 1):g}/255"


def radius_label(eps: float, norm: str) -> str:
    """A radius in words: L∞ in 255ths ("L∞ ε = 8/255"), L2 as a length ("L2 ε = 0.5")."""
    return f"L∞ ε = {in_255ths(eps)}" if norm == "linf" else f"L2 ε = {eps:.3g}"


def attack_label(name: str, eps: Optional[float], steps: Optional[int] = None) -> str:
    """A pixel attack of `ATTACKS` at its budget, in words: "20-step PGD at L∞ ε = 8/255", "AutoAttack at L2 ε =
    0.5". A name outside the registry (an older card's free text) is kept as written, with its radius (in 255ths
    where the name says L∞); a budget that is not a number is left out."""
    if not isinstance(eps, (int, float)):
        return ATTACKS[name].label if name in ATTACKS else str(name)
    if name not in ATTACKS:
        return f"{name} at " + (radius_label(eps, "linf") if "linf" in str(name).lower() else f"ε = {eps:.3g}")
    traits = ATTACKS[name].traits
    count = f"{steps}-step " if steps and traits["uses_steps"] else ""
    return f"{count}{traits['family']} at {radius_label(eps, traits['norm'])}"


__all__ = ["ATTACKS", "Attack", "AttackBase", "AttackResult", "AutoAttack", "CarliniWagnerL2", "DeepFool", "FGSM", "NORMS", "Norm",
           "PGD", "Perturbation", "SemanticAttack", "SemanticAttackResult", "attack_label", "in_255ths", "project",
           "projected_gradient_ascent", "quantize_8bit", "radius_label"]
