"""Keypoint detection, the SIA paper's second task: models that map images in [0, 1] to K (x, y) points (fractions of
the image's width and height), the normalized mean error (NME) that judges them, and the real landmark model the
engine ships with (MTCNN's O-Net: five facial landmarks on a 48×48 face crop).

task: NME, its normalizing distances and the failure rule. wrapper: KeypointWrapper (normalization, input size,
device). faces: O-Net as a KeypointWrapper, crops of a photo and points back in the photo's pixels.
"""

from sia_core.keypoints.task import (KeypointObjective, KeypointTask, inter_ocular_distance, normalized_mean_error,
                                     object_size)
from sia_core.keypoints.wrapper import KeypointWrapper

__all__ = ["KeypointObjective", "KeypointTask", "KeypointWrapper", "inter_ocular_distance", "normalized_mean_error", "object_size"]
