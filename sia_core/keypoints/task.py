"""The keypoint task's measure: the normalized mean error (NME) between predicted and reference points, and the
failure rule an attack climbs towards (NME above a threshold; 0.1 by default, the usual failure threshold)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sia_core.validation import one_of, positive, require

NORMALIZERS = ("inter-ocular", "object-size")


def _check_points(points: torch.Tensor, name: str) -> None:
    require(points.ndim == 3 and points.shape[-1] == 2, f"{name} must be shaped (N, K, 2), got {tuple(points.shape)}.")


def inter_ocular_distance(reference: torch.Tensor, left: int = 0, right: int = 1) -> torch.Tensor:
    """(N,) distance between the two eye points of the reference (faces' usual normalizer)."""
    _check_points(reference, "reference")
    return (reference[:, left] - reference[:, right]).norm(dim=1)


def object_size(reference: torch.Tensor) -> torch.Tensor:
    """(N,) diagonal of the reference points' bounding box (the normalizer for objects without eyes)."""
    _check_points(reference, "reference")
    return (reference.amax(dim=1) - reference.amin(dim=1)).norm(dim=1)


def normalized_mean_error(predicted: torch.Tensor, reference: torch.Tensor, normalizer: torch.Tensor) -> torch.Tensor:
    """(N,) mean over the K points of the Euclidean error, divided by each sample's normalizing distance."""
    _check_points(predicted, "predicted")
    _check_points(reference, "reference")
    require(predicted.shape == reference.shape,
            f"predicted {tuple(predicted.shape)} and reference {tuple(reference.shape)} points differ in shape.")
    return (predicted - reference).norm(dim=2).mean(dim=1) / normalizer.clamp_min(1e-12)


@dataclass(frozen=True)
class KeypointTask:
    """How keypoint predictions are judged: NME normalized by `normalizer` ("inter-ocular": the distance between
    points `eyes`; "object-size": the reference's bounding-box diagonal), failed when above `threshold`."""

    normalizer: str = "object-size"
    threshold: float = 0.1
    eyes: tuple[int, int] = (0, 1)

    def __post_init__(self) -> None:
        one_of("normalizer", self.normalizer, NORMALIZERS)
        positive("threshold", self.threshold)

    def distance(self, reference: torch.Tensor) -> torch.Tensor:
        if self.normalizer == "inter-ocular":
            return inter_ocular_distance(reference, *self.eyes)
        return object_size(reference)

    def errors(self, predicted: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """(N,) NME of each prediction against its reference (differentiable in `predicted`)."""
        return normalized_mean_error(predicted, reference, self.distance(reference))

    def failed(self, predicted: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """(N,) bool: the prediction's NME is above the threshold (an attack's success)."""
        return self.errors(predicted, reference) > self.threshold
