"""Our input-margin estimator against FAB (Croce & Hein 2020, the minimum-norm attack the margin-consistency paper's
code measures input margins with), from the `torchattacks` library: the same images, timed in turns.

Both give a found flip, an upper bound on the true margin, so the smaller is the better. `torchattacks` seeds the
global random generators; the comparison runs inside `torch.random.fork_rng` (a command-line or bench tool, not a
page's live run).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Optional

import torch

from sia_core.attacks.base import Norm
from sia_core.margins.input_margins import InputMarginEstimator, perturbation_size
from sia_core.models.wrapper import ClassifierWrapper, frozen_eval
from sia_core.validation import one_of, positive_int, require


@dataclass(frozen=True)
class FabComparison:
    """Per-image margins of both and the summary: median of ours / FAB's over images where both found a flip, the
    share of those where ours is strictly smaller, and FAB's time over ours."""

    model_id: str
    norm: str
    n: int
    fab_steps: int
    median_ratio: float
    share_ours_smaller: float
    speedup: float
    seconds_ours: float
    seconds_fab: float
    found_ours: int
    found_fab: int
    ours: tuple[float, ...]
    fab: tuple[float, ...]

    def summary(self) -> dict:
        return {key: value for key, value in asdict(self).items() if key not in ("ours", "fab")}


def fab_margins(model: ClassifierWrapper, images: torch.Tensor, norm: Norm, *, steps: int = 100,
                max_eps: Optional[float] = None) -> torch.Tensor:
    """FAB's untargeted minimal flips (1 restart, `steps` steps) as margins to the predicted label; inf where it found
    none below `max_eps` (torchattacks returns only flips within its eps, so it is set to the search's limit)."""
    import torchattacks

    limit = max_eps if max_eps is not None else InputMarginEstimator(norm=norm).radius_limit
    with torch.no_grad():
        predictions = model(images).argmax(1)
    attack = torchattacks.FAB(model, norm="Linf" if norm == "linf" else "L2", eps=limit, steps=steps, n_restarts=1,
                              n_classes=model.num_classes, seed=0)
    devices = [images.device] if images.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), frozen_eval(model):  # the library seeds the global generators
        adversarial = attack(images, predictions)
    with torch.no_grad():
        flipped = model(adversarial).argmax(1) != predictions
    distance = perturbation_size(adversarial - images, norm)
    return torch.where(flipped, distance, torch.full_like(distance, float("inf")))


def compare_with_fab(model: ClassifierWrapper, images: torch.Tensor, norm: Norm = "linf", *,
                     estimator: Optional[InputMarginEstimator] = None, fab_steps: int = 100,
                     turns: int = 4) -> FabComparison:
    """Both on the same images, in `turns` interleaved chunks (ours, then FAB, on each), so a busy machine slows both
    alike."""
    one_of("norm", norm, ("linf", "l2"))
    positive_int("fab_steps", fab_steps)
    positive_int("turns", turns)
    require(len(images) > 0, "The comparison with FAB needs at least one image.")
    estimator = estimator or InputMarginEstimator(norm=norm)
    images = images.to(model.device)
    ours_parts, fab_parts, seconds = [], [], {"ours": 0.0, "fab": 0.0}
    for chunk in torch.arange(len(images)).tensor_split(min(turns, len(images))):
        x = images[chunk]
        started = time.perf_counter()
        found = estimator(model, x)
        seconds["ours"] += time.perf_counter() - started
        ours_parts.append(torch.where(found.found, found.margins, torch.full_like(found.margins, float("inf"))))
        started = time.perf_counter()
        fab_parts.append(fab_margins(model, x, norm, steps=fab_steps, max_eps=estimator.radius_limit).cpu())
        seconds["fab"] += time.perf_counter() - started
    ours, fab = torch.cat(ours_parts).cpu(), torch.cat(fab_parts)
    both = torch.isfinite(ours) & torch.isfinite(fab)
    ratio = ours[both] / fab[both]
    return FabComparison(model_id=model.model_id, norm=norm, n=len(images), fab_steps=fab_steps,
                         median_ratio=float(ratio.median()) if len(ratio) else float("nan"),
                         share_ours_smaller=float((ours[both] < fab[both]).float().mean()) if len(ratio) else 0.0,
                         speedup=seconds["fab"] / max(seconds["ours"], 1e-9), seconds_ours=seconds["ours"],
                         seconds_fab=seconds["fab"], found_ours=int(torch.isfinite(ours).sum()),
                         found_fab=int(torch.isfinite(fab).sum()), ours=tuple(ours.tolist()), fab=tuple(fab.tolist()))
