"""Region of Importance vs Region of Attack on a keypoint model: where the landmark prediction looks (the saliency of
the predicted points: the per-pixel norm of their Jacobian) against where an attack on the NME changes pixels (the
same effect-weighted map as for classifiers, |δ ⊙ ∇x NME|), their top-q overlap, and the overlap two random masks of
that area would have (the control)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from sia_core.keypoints.wrapper import KeypointWrapper
from sia_core.models.wrapper import frozen_eval
from sia_core.progress import ProgressCallback, StageProgress
from sia_core.regions.attack_maps import EffectWeightedMap
from sia_core.regions.overlap import OverlapMetrics, overlap_metrics, top_fraction_mask, zones
from sia_core.regions.panel import RegionPanel
from sia_core.validation import in_range, positive_int, require


def landmark_saliency(model: KeypointWrapper, images: torch.Tensor) -> torch.Tensor:
    """(N, H, W) how strongly each pixel moves the predicted points: sqrt(Σ_k,d (∂p_kd/∂x)²), summed over channels.
    One backward pass per coordinate (2K), each for the whole batch."""
    inputs = images.to(model.device).detach().requires_grad_(True)
    with frozen_eval(model), torch.enable_grad():
        points = model(inputs)
        squares = torch.zeros_like(inputs)
        for k in range(points.shape[1]):
            for d in range(2):
                (gradient,) = torch.autograd.grad(points[:, k, d].sum(), inputs, retain_graph=True)
                squares += gradient ** 2
    return squares.sqrt().sum(1).detach().cpu()


def random_mask_iou(fraction: float) -> float:
    """The expected IoU of two independent random masks that each cover `fraction` of the pixels: q² / (2q − q²)."""
    return fraction / (2 - fraction)


def keypoint_region_panel(model: KeypointWrapper, image: torch.Tensor, reference: torch.Tensor, *,
                          fraction: float = 0.2, eps: float = 8 / 255, steps: int = 10,
                          progress: Optional[ProgressCallback] = None) -> RegionPanel:
    """The one-image panel (as `sia_core.regions.region_panel`) for a (1, C, H, W) image and its (1, R, 2) reference."""
    in_range("fraction", fraction, 0.0, 1.0)
    tick = StageProgress(2, progress)
    importance = landmark_saliency(model, image)
    tick("where the landmark prediction looks (RoI)")
    attack = EffectWeightedMap(eps=eps, steps=steps)(model, image, reference)
    tick("where the attack changes pixels (RoA)")
    zone_map = zones(top_fraction_mask(importance, fraction), top_fraction_mask(attack.maps, fraction))
    return RegionPanel(importance=importance[0], attack=attack.maps[0], zones=zone_map[0],
                       metrics=overlap_metrics(importance, attack.maps, fraction), explained_class=-1,
                       adversarial_image=attack.attack.images if attack.attack is not None else None,
                       adversarial_prediction=None)


@dataclass(frozen=True)
class KeypointRegionsReport:
    """RoI against RoA over `n` images of a keypoint model: per-image overlap metrics, the random-mask control, and how
    far the attack behind the RoA pushed the NME (mean before and after; success = above the task's threshold)."""

    model_id: str
    dataset: str
    n: int
    fraction: float
    eps: float
    steps: int
    metrics: OverlapMetrics
    random_iou: float
    nme_before: float
    nme_after: float
    attack_success_rate: float
    failed_before: float = float("nan")  # share already past the threshold before the attack

    def to_dict(self) -> dict:
        return {"model": self.model_id, "dataset": self.dataset, "n": self.n, "fraction": self.fraction,
                "eps": self.eps, "steps": self.steps, **{k: round(v, 4) for k, v in self.metrics.means().items()},
                "random_mask_iou": round(self.random_iou, 4), "nme_before": round(self.nme_before, 4),
                "nme_after": round(self.nme_after, 4), "attack_success_rate": round(self.attack_success_rate, 4),
                "failed_before": round(self.failed_before, 4)}


def keypoint_regions_study(model: KeypointWrapper, images: torch.Tensor, reference: torch.Tensor, *, dataset: str = "",
                           fraction: float = 0.2, eps: float = 8 / 255, steps: int = 10,
                           progress: Optional[ProgressCallback] = None) -> KeypointRegionsReport:
    """RoI and RoA of every image in `images` against its `reference` points, with the overlap and its control."""
    positive_int("images", len(images))
    require(len(images) == len(reference), "Each image needs its reference points.")
    tick = StageProgress(2, progress)
    importance = landmark_saliency(model, images)
    tick("where the landmark prediction looks (RoI)")
    attack = EffectWeightedMap(eps=eps, steps=steps)(model, images, reference)
    tick("where the attack changes pixels (RoA)")
    result = attack.attack
    task = model.task
    before = task.errors(result.clean_logits, result.labels)
    after = task.errors(result.adversarial_logits, result.reference)
    return KeypointRegionsReport(model_id=model.model_id, dataset=dataset, n=len(images), fraction=fraction, eps=eps,
                                 steps=steps, metrics=overlap_metrics(importance, attack.maps, fraction),
                                 random_iou=random_mask_iou(fraction), nme_before=float(before.mean()),
                                 nme_after=float(after.mean()), attack_success_rate=result.success_rate,
                                 failed_before=float((before > task.threshold).float().mean()))
