"""Keypoint models from their cards: the Shapes landmark CNN trained here and MTCNN's O-Net from the facenet-pytorch
wheel, each behind the one `KeypointWrapper`."""

from __future__ import annotations

from typing import Optional

import torch

from sia_core.errors import CheckpointError
from sia_core.keypoints.shapes import KeypointCNN
from sia_core.keypoints.task import KeypointTask
from sia_core.keypoints.wrapper import KeypointWrapper
from sia_core.models.onet import OutputNet

KEYPOINT_ARCHITECTURES = ("keypoint-cnn", "mtcnn-onet")


def _identity(points: torch.Tensor) -> torch.Tensor:
    return points


def _onet_landmarks(output) -> torch.Tensor:
    return output.landmarks


def build_keypoint_model(card, state: Optional[dict[str, torch.Tensor]], device: torch.device) -> KeypointWrapper:
    """The `KeypointWrapper` a keypoint card describes, with `state` loaded when given, in eval mode on `device`."""
    channels, height, _ = card.input_shape
    if card.architecture == "keypoint-cnn":
        network, points_of = KeypointCNN(channels, height, len(card.point_names)), _identity
    elif card.architecture == "mtcnn-onet":
        network, points_of = OutputNet(), _onet_landmarks
    else:
        raise CheckpointError(f"Keypoint model {card.id!r} uses unknown architecture {card.architecture!r}; known: "
                              f"{', '.join(KEYPOINT_ARCHITECTURES)}.")
    if state is not None:
        state = {key.removeprefix("network."): value for key, value in state.items() if key not in ("mean", "std")}
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise CheckpointError(f"The weights do not fit the {card.architecture} architecture of {card.id!r}.") from error
    wrapper = KeypointWrapper(network, points_of=points_of, mean=card.mean, std=card.std,
                              input_shape=card.input_shape, point_names=card.point_names,
                              task=KeypointTask(**{k: tuple(v) if isinstance(v, list) else v
                                                   for k, v in card.keypoint_task.items()}),
                              model_id=card.id)
    return wrapper.eval().to(device)
