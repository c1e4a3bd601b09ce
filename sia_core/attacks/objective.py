"""What an attack climbs and when it has won, as the model's task says: classification (cross-entropy; success when
the prediction leaves the true label, or reaches the target) or keypoints (the normalized mean error from the
reference points; success when it exceeds the task's threshold). The attacks ask `objective_of(model)`; a model
wrapper names its own with an `objective` attribute (classifiers need none)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Protocol

import torch
import torch.nn.functional as F

from sia_core.keypoints.task import KeypointObjective  # noqa: F401  (the keypoint task's, re-exported)


class Objective(Protocol):
    task: str
    # True where the loss is flat (a zero gradient) at outputs that meet the reference: an error norm at 0, as a
    # keypoint model attacked against its own prediction is; a gradient attack then has to start off the reference
    flat_at_reference: bool

    def loss(self, outputs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """(N,) what an untargeted attack raises (a targeted one lowers it towards `goal`)."""

    def success(self, outputs: torch.Tensor, reference: torch.Tensor, target: Optional[torch.Tensor]) -> torch.Tensor:
        """(N,) bool: the attack has won on each sample."""

    def score(self, outputs: torch.Tensor, reference: torch.Tensor) -> tuple[str, torch.Tensor]:
        """A per-step curve the attack records: its name and (N,) values."""

    def reference_after(self, reference: torch.Tensor, images: torch.Tensor,
                        params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The reference an attribute edit `params` of `images` leaves (labels stay; landmarks move)."""


@dataclass(frozen=True)
class ClassificationObjective:
    task: str = "classification"
    flat_at_reference: bool = False

    def loss(self, outputs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs, goal, reduction="none")

    def success(self, outputs: torch.Tensor, reference: torch.Tensor, target: Optional[torch.Tensor]) -> torch.Tensor:
        predictions = outputs.argmax(dim=1)
        return predictions == target if target is not None else predictions != reference

    def score(self, outputs: torch.Tensor, reference: torch.Tensor) -> tuple[str, torch.Tensor]:
        return "true_class_probability", torch.softmax(outputs, dim=1).gather(1, reference.view(-1, 1)).squeeze(1)

    def reference_after(self, reference: torch.Tensor, images: torch.Tensor,
                        params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return reference


CLASSIFICATION = ClassificationObjective()


def objective_of(model: object) -> Objective:
    """The model's own objective (a keypoint wrapper's), else classification's."""
    return getattr(model, "objective", None) or CLASSIFICATION
