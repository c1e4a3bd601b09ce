"""Attacks: configured objects called with (model, x, y) that return an `AttackResult`."""

from sia_core.attacks.base import AttackResult, Norm, quantize_8bit
from sia_core.attacks.pgd import FGSM, PGD, project, projected_gradient_ascent

ATTACK_NAMES = ("fgsm", "pgd-linf", "pgd-l2")


def make_attack(name: str, *, eps: float, steps: int = 20, seed: int | None = 0) -> FGSM | PGD:
    """Build an attack from a CLI/UI name: "fgsm", "pgd-linf" or "pgd-l2"."""
    if name == "fgsm":
        return FGSM(eps=eps, seed=seed)
    if name in ("pgd-linf", "pgd-l2"):
        return PGD(eps=eps, norm="linf" if name == "pgd-linf" else "l2", steps=steps, seed=seed)
    raise ValueError(f"Unknown attack {name!r}; choose one of {', '.join(ATTACK_NAMES)}")


__all__ = ["ATTACK_NAMES", "AttackResult", "FGSM", "Norm", "PGD", "make_attack", "project", "quantize_8bit"]
