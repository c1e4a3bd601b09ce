"""Faces: MTCNN's O-Net (sia_core.models.onet) as a keypoint model of five landmarks on a 48×48 face crop, a crop of
a photo as MTCNN makes it, and the points carried back into the photo's pixels."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sia_core.keypoints.task import KeypointTask
from sia_core.keypoints.wrapper import KeypointWrapper
from sia_core.models.onet import LANDMARKS, ONET_SIZE, load_onet
from sia_core.validation import require

# O-Net's inputs are (x·255 − 127.5) / 128: per channel, mean 127.5/255 and std 128/255 on images in [0, 1]
ONET_MEAN, ONET_STD = 127.5 / 255, 128 / 255
FACE_TASK = KeypointTask(normalizer="inter-ocular", threshold=0.1, eyes=(0, 1))


def onet_keypoints(model_id: str = "mtcnn-onet") -> KeypointWrapper:
    """O-Net's landmark head behind the one keypoint wrapper (frozen weights from the facenet-pytorch wheel)."""
    return KeypointWrapper(load_onet(), points_of=lambda output: output.landmarks, mean=[ONET_MEAN] * 3,
                           std=[ONET_STD] * 3, input_shape=(3, ONET_SIZE, ONET_SIZE), point_names=LANDMARKS,
                           task=FACE_TASK, model_id=model_id).eval()


def face_crop(photo: torch.Tensor, box: tuple[float, float, float, float]) -> torch.Tensor:
    """(1, 3, 48, 48): the pixels of `box` (x0, y0, x1, y1, inclusive, in the photo's pixels) of a (3, H, W) photo
    in [0, 1], resized by area averaging, as MTCNN feeds O-Net."""
    require(photo.ndim == 3 and photo.shape[0] == 3, f"photo must be (3, H, W), got {tuple(photo.shape)}.")
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    height, width = photo.shape[1:]
    require(0 <= x0 < x1 < width and 0 <= y0 < y1 < height,
            f"The box {box} does not lie inside the {width}×{height} photo.")
    return F.interpolate(photo[:, y0:y1 + 1, x0:x1 + 1].unsqueeze(0), size=(ONET_SIZE, ONET_SIZE), mode="area")


def points_in_photo(points: torch.Tensor, box: tuple[float, float, float, float]) -> torch.Tensor:
    """(N, K, 2) crop fractions to the photo's pixels, as MTCNN maps them (x0 + w·x − 1, y0 + h·y − 1)."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    scale = torch.tensor([x1 - x0 + 1, y1 - y0 + 1], dtype=points.dtype)
    return points * scale + torch.tensor([x0 - 1, y0 - 1], dtype=points.dtype)
