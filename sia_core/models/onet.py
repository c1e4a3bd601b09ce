"""MTCNN's output network, O-Net (Zhang et al. 2016), with the weights the `facenet-pytorch` wheel ships
(`facenet_pytorch/data/onet.pt`, MIT; facenet-pytorch 2.6.0, installed --no-deps: its metadata pins an old torch).
The architecture is written here and the file read with `weights_only=True`; no code of the package is imported.

O-Net takes a 48×48 RGB face crop scaled as (x·255 − 127.5) / 128 and returns the crop's box correction, five
landmarks (left eye, right eye, nose, left and right mouth corners, as fractions of the crop) and the probability
that the crop is a face.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from sia_core.errors import CheckpointError

ONET_IN_WHEEL = "facenet_pytorch/data/onet.pt"
ONET_SIZE = 48
LANDMARKS = ("left eye", "right eye", "nose", "left mouth corner", "right mouth corner")


class ONetOutput(NamedTuple):
    box: torch.Tensor         # (N, 4) box correction, as fractions of the crop
    landmarks: torch.Tensor   # (N, 5, 2) (x, y) as fractions of the crop's width and height
    face_probability: torch.Tensor  # (N,)


class OutputNet(nn.Module):
    """O-Net's layers under the names of the wheel's state dict; input (N, 3, 48, 48) already scaled."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)   # face / not a face
        self.dense6_2 = nn.Linear(256, 4)   # box correction
        self.dense6_3 = nn.Linear(256, 10)  # five x, then five y

    def forward(self, x: torch.Tensor) -> ONetOutput:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        # the weights were converted from Caffe, which flattens width before height
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).flatten(1)))
        points = self.dense6_3(x)
        return ONetOutput(box=self.dense6_2(x), landmarks=torch.stack([points[:, :5], points[:, 5:]], dim=2),
                          face_probability=torch.softmax(self.dense6_1(x), dim=1)[:, 1])


def packaged_onet_path() -> Path:
    try:
        path = Path(str(metadata.distribution("facenet-pytorch").locate_file(ONET_IN_WHEEL)))
    except metadata.PackageNotFoundError as error:
        raise CheckpointError("O-Net's weights come from the facenet-pytorch wheel: pip install --no-deps "
                              "facenet-pytorch==2.6.0 (bash scripts/setup.sh does).") from error
    if not path.is_file():
        raise CheckpointError(f"The facenet-pytorch wheel has no {ONET_IN_WHEEL} at {path}.")
    return path


def packaged_state() -> dict[str, torch.Tensor]:
    """O-Net's state dict from the wheel, read with weights_only=True."""
    return torch.load(packaged_onet_path(), map_location="cpu", weights_only=True)


def load_onet() -> OutputNet:
    """O-Net with the wheel's weights, in eval mode."""
    network = OutputNet()
    network.load_state_dict(packaged_state())
    return network.eval()


def onet_input(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] (N, 3, 48, 48) to O-Net's scale: (x·255 − 127.5) / 128."""
    return (images * 255 - 127.5) / 128
