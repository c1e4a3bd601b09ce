"""The keypoint task's measure: the normalized mean error (NME) between predicted and reference points, and the
failure rule an attack climbs towards (NME above a threshold; 0.1 by default, the usual failure threshold)."""

from __future__ import annotations

from dataclasses import dataclass

from typing import Mapping, Optional

import torch

from sia_core.errors import ConfigError
from sia_core.validation import one_of, positive, require

NORMALIZERS = ("inter-ocular", "object-size")
# how a reference is given: the landmarks themselves, or (Shapes) a centre and an outline whose box gives them, so an
# edited image's landmarks can be recomputed from the moved outline
REFERENCE_FORMS = ("points", "centre-and-box")


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
    points `eyes`; "object-size": the reference's bounding-box diagonal), failed when above `threshold`.

    `reference_form` "centre-and-box": a reference of more than three points is a centre and an outline, whose
    landmarks are the centre and the outline's box corners (`sia_core.data.shapes.centre_and_box`); references of
    three points (a model's own predictions) are the landmarks themselves."""

    normalizer: str = "object-size"
    threshold: float = 0.1
    eyes: tuple[int, int] = (0, 1)
    reference_form: str = "points"

    def __post_init__(self) -> None:
        one_of("normalizer", self.normalizer, NORMALIZERS)
        positive("threshold", self.threshold)
        one_of("reference_form", self.reference_form, REFERENCE_FORMS)

    def landmarks(self, reference: torch.Tensor) -> torch.Tensor:
        """(N, K, 2) the landmarks a reference stands for."""
        if self.reference_form == "centre-and-box" and reference.shape[1] != 3:
            from sia_core.data.shapes import centre_and_box

            return centre_and_box(reference)
        return reference

    def distance(self, reference: torch.Tensor) -> torch.Tensor:
        if self.normalizer == "inter-ocular":
            return inter_ocular_distance(reference, *self.eyes)
        return object_size(reference)

    def errors(self, predicted: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """(N,) NME of each prediction against its reference's landmarks (differentiable in `predicted`)."""
        points = self.landmarks(reference)
        return normalized_mean_error(predicted, points, self.distance(points))

    def failed(self, predicted: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """(N,) bool: the prediction's NME is above the threshold (an attack's success)."""
        return self.errors(predicted, reference) > self.threshold


@dataclass(frozen=True)
class KeypointObjective:
    """What an attack climbs on a keypoint model (`sia_core.attacks.objective`): the NME from the reference points
    (N, K, 2), judged by `keypoint_task`; untargeted only."""

    keypoint_task: KeypointTask = KeypointTask()
    task: str = "keypoints"
    flat_at_reference: bool = True  # the NME and its gradient are exactly 0 at the model's own prediction

    def loss(self, outputs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return self.keypoint_task.errors(outputs, goal)

    def success(self, outputs: torch.Tensor, reference: torch.Tensor, target: Optional[torch.Tensor]) -> torch.Tensor:
        if target is not None:
            raise ConfigError("Keypoint attacks are untargeted: they push the points away from the reference.")
        return self.keypoint_task.failed(outputs, reference)

    def score(self, outputs: torch.Tensor, reference: torch.Tensor) -> tuple[str, torch.Tensor]:
        return "nme", self.keypoint_task.errors(outputs, reference)

    def reference_after(self, reference: torch.Tensor, images: torch.Tensor,
                        params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The reference points moved as an attribute edit moves the image (a rotated face's eyes turn with it):
        the attack is judged against where the landmarks now are, not where they were."""
        from sia_core.semantics import move_points

        return move_points(reference, images, params)
