"""Random attribute augmentation: the control for SIA training and SIA augmentation.

The same attribute space and pixel budget as the Semantic Image Attack, drawn at random instead of climbed, so a
table can tell "attacked" from "augmented" (strong augmentation with exactly the attack's ranges).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from sia_core.attacks.base import check_seed
from sia_core.models.wrapper import ClassifierWrapper
from sia_core.semantics import ATTRIBUTES, applicable_attributes, apply_attributes, attribute_range
from sia_core.validation import non_negative, require


@dataclass(frozen=True, kw_only=True)
class RandomAttributes:
    """Every image gets attribute values drawn uniformly in their ranges (fitted to the image size) and a pixel
    perturbation drawn uniformly in [-eps_linf, eps_linf]; the model is not consulted.

    Args:
        attributes: names to draw; None = every attribute that applies to the images' channels.
        eps_linf: L-inf amplitude of the uniform pixel noise, in [0, 1] units; 0 = attributes only.
        seed: seeds both draws (drawn on the CPU, so a seed gives the same images on every device).

    Has the `perturb(model, x, y)` of an attack, so training recipes use it in the attack's place.
    """

    attributes: Optional[tuple[str, ...]] = None
    eps_linf: float = 2 / 255
    seed: int = 0

    def __post_init__(self) -> None:
        if self.attributes is not None:
            unknown = [name for name in self.attributes if name not in ATTRIBUTES]
            require(not unknown, f"Unknown attributes: {', '.join(map(str, unknown))}; known: {', '.join(ATTRIBUTES)}.")
        non_negative("eps_linf", self.eps_linf)
        check_seed("seed", self.seed)

    @property
    def description(self) -> str:
        return f"random attributes eps_linf={self.eps_linf:.4g}"

    def draw(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One value per image for each attribute that applies (the generator is seeded by `seed`)."""
        names = [a.name for a in applicable_attributes(x.shape[1])
                 if self.attributes is None or a.name in self.attributes]
        generator = torch.Generator().manual_seed(self.seed)
        params = {}
        for name in names:
            low, high = attribute_range(name, x.shape)
            params[name] = (low + (high - low) * torch.rand(len(x), generator=generator)).to(x.device, x.dtype)
        return params

    def perturb(self, model: Optional[ClassifierWrapper], x: torch.Tensor, y: torch.Tensor,
                target: Optional[torch.Tensor] = None) -> torch.Tensor:
        del model, y, target  # not an attack: nothing depends on the model or the labels
        generator = torch.Generator().manual_seed(self.seed + 1)
        with torch.no_grad():
            edited = apply_attributes(x, self.draw(x))
            noise = (2 * torch.rand(x.shape, generator=generator) - 1).to(x.device, x.dtype) * self.eps_linf
            return (edited + noise).clamp(0, 1)
