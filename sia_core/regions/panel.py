"""The one-image panel of the RoI vs RoA lens: both maps, the top-q masks, the four zones and their metrics."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import torch

from sia_core.models.wrapper import ClassifierWrapper
from sia_core.progress import ProgressCallback
from sia_core.regions.attack_maps import ROA_METHODS
from sia_core.regions.importance import ROI_METHODS, GradCAM, resolve_targets
from sia_core.regions.overlap import OverlapMetrics, overlap_metrics, top_fraction_mask, zones


@dataclass(frozen=True)
class RegionPanel:
    """Everything the one-image view draws; maps are (H, W) on the CPU. `importance_layer` names the layer
    Grad-CAM explained (None for the other methods)."""

    importance: torch.Tensor
    attack: torch.Tensor
    zones: torch.Tensor
    metrics: OverlapMetrics
    explained_class: int
    adversarial_image: torch.Tensor | None
    adversarial_prediction: int | None
    importance_layer: str | None = None


def region_panel(model: ClassifierWrapper, image: torch.Tensor, label: int, *, roi_method: str = "occlusion",
                 roa_method: str = "effect_weighted", target: str | int = "true", fraction: float = 0.2,
                 roi_options: dict | None = None, roa_options: dict | None = None,
                 progress: Optional[ProgressCallback] = None) -> RegionPanel:
    """RoI and RoA of one (1, C, H, W) image, with their top-`fraction` masks and overlap metrics; `progress` hears
    each of the two maps as it is done (each takes about a second at 224 px on a CPU)."""
    roi = ROI_METHODS.build(roi_method, **(roi_options or {}))  # unknown names and bad options fail before any work
    roa = ROA_METHODS.build(roa_method, **(roa_options or {}))
    layer = None
    if isinstance(roi, GradCAM):  # resolve once: the default layer costs a probe forward pass
        layer = roi.resolve_layer(model)
        roi = dataclasses.replace(roi, layer=layer)
    labels = torch.tensor([label])
    targets = resolve_targets(model, image, labels, target)
    if progress is not None:
        progress(0, 2, {"stage": "where the model looks (RoI)"})
    importance = roi(model, image, targets)
    if progress is not None:
        progress(1, 2, {"stage": "where the attack changes pixels (RoA)"})
    attack = roa(model, image, labels)
    if progress is not None:
        progress(2, 2, {"stage": "done"})
    metrics = overlap_metrics(importance, attack.maps, fraction)
    zone_map = zones(top_fraction_mask(importance, fraction), top_fraction_mask(attack.maps, fraction))
    adversarial = attack.attack.images if attack.attack is not None else None
    prediction = int(attack.attack.adversarial_predictions[0]) if attack.attack is not None else None
    return RegionPanel(importance=importance[0], attack=attack.maps[0], zones=zone_map[0], metrics=metrics,
                       explained_class=int(targets[0]), adversarial_image=adversarial,
                       adversarial_prediction=prediction, importance_layer=layer)
