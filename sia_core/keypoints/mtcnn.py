"""Face detection with MTCNN's cascade (Zhang et al. 2016, "Joint Face Detection and Alignment using Multi-task
Cascaded Convolutional Networks"): P-Net proposes boxes over an image pyramid, R-Net refines them, O-Net refines them
again and places the five landmarks. The three networks' weights come from the facenet-pytorch 2.6.0 wheel (MIT),
read with weights_only=True; the layers and the cascade are written here, following the published method and the
usual settings (smallest face 20 px, pyramid factor 0.709, thresholds 0.6 / 0.7 / 0.7).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import nms

from sia_core.errors import CheckpointError
from sia_core.models.onet import ONET_SIZE, load_onet
from sia_core.validation import require

MIN_FACE = 20
PYRAMID_FACTOR = 0.709
THRESHOLDS = (0.6, 0.7, 0.7)


class ProposalNet(nn.Module):
    """P-Net: fully convolutional, 12×12 windows at stride 2 -> face probability and box correction."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return torch.softmax(self.conv4_1(x), dim=1)[:, 1], self.conv4_2(x)


class RefineNet(nn.Module):
    """R-Net: 24×24 crops -> face probability and box correction."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool2(self.prelu2(self.conv2(self.pool1(self.prelu1(self.conv1(x))))))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).flatten(1)))  # Caffe's order: width before height
        return torch.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)


def _wheel_state(name: str) -> dict[str, torch.Tensor]:
    try:
        path = metadata.distribution("facenet-pytorch").locate_file(f"facenet_pytorch/data/{name}.pt")
    except metadata.PackageNotFoundError as error:
        raise CheckpointError("MTCNN's weights come from the facenet-pytorch wheel: pip install --no-deps "
                              "facenet-pytorch==2.6.0 (bash scripts/setup.sh does).") from error
    return torch.load(str(path), map_location="cpu", weights_only=True)


@dataclass(frozen=True)
class FaceDetection:
    """One face: `box` (x0, y0, x1, y1) as MTCNN reports it, `crop_box` the square O-Net looked at (its landmarks are
    fractions of that crop), `probability` O-Net's, `landmarks` (5, 2) in the photo's pixels."""

    box: tuple[float, float, float, float]
    crop_box: tuple[float, float, float, float]
    probability: float
    landmarks: torch.Tensor


class FaceDetector:
    """MTCNN's three networks, frozen; `detect(photo)` for a (3, H, W) photo in [0, 1]."""

    def __init__(self) -> None:
        self.pnet, self.rnet = ProposalNet(), RefineNet()
        self.pnet.load_state_dict(_wheel_state("pnet"))
        self.rnet.load_state_dict(_wheel_state("rnet"))
        self.onet = load_onet()
        for network in (self.pnet, self.rnet, self.onet):
            network.eval().requires_grad_(False)

    @torch.inference_mode()
    def detect(self, photo: torch.Tensor) -> list[FaceDetection]:
        """Every face found, most probable first."""
        require(photo.ndim == 3 and photo.shape[0] == 3, f"photo must be (3, H, W) RGB, got {tuple(photo.shape)}.")
        image = photo.unsqueeze(0).float() * 255  # the networks were trained on 0..255 pixels
        height, width = image.shape[2:]
        boxes = self._proposals(image)
        if len(boxes):
            boxes = self._refine(image, boxes, self.rnet, 24, THRESHOLDS[1])
        if not len(boxes):
            return []
        crops = _crops(image, boxes, ONET_SIZE)
        output = self.onet((crops - 127.5) / 128)
        keep = output.face_probability > THRESHOLDS[2]
        boxes, output = boxes[keep], type(output)(*(field[keep] for field in output))
        if not len(boxes):
            return []
        crop_boxes = boxes[:, :4].clone()
        # the landmarks from the very pixels O-Net saw (the box cut to whole pixels inside the photo), in the photo's
        # pixels as `faces.points_in_photo` maps a crop's fractions
        whole = [_whole_box(box, width, height) for box in crop_boxes]
        points = torch.stack([_in_photo(output.landmarks[i], whole[i]) for i in range(len(whole))])
        final = _regress(torch.cat([crop_boxes, output.face_probability.unsqueeze(1)], 1), output.box, plus_one=True)
        order = nms(final[:, :4], final[:, 4], 0.7)
        order = order[final[order, 4].argsort(descending=True)]
        return [FaceDetection(box=tuple(float(v) for v in final[i, :4]), crop_box=_clipped(crop_boxes[i], width, height),
                              probability=float(final[i, 4]), landmarks=points[i].clone()) for i in order.tolist()]

    def _proposals(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[2:]
        scale, shortest = 12 / MIN_FACE, min(height, width) * 12 / MIN_FACE
        found = []
        while shortest >= 12:
            resized = F.interpolate(image, size=(int(height * scale + 1), int(width * scale + 1)), mode="area")
            probability, correction = self.pnet((resized - 127.5) * 0.0078125)
            boxes = _windows(probability[0], correction[0], scale, THRESHOLDS[0])
            if len(boxes):
                found.append(boxes[nms(boxes[:, :4], boxes[:, 4], 0.5)])
            scale, shortest = scale * PYRAMID_FACTOR, shortest * PYRAMID_FACTOR
        if not found:
            return torch.zeros(0, 9)
        boxes = torch.cat(found)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        return _square(_regress(boxes[:, :5], boxes[:, 5:9], plus_one=False))

    def _refine(self, image: torch.Tensor, boxes: torch.Tensor, network: nn.Module, size: int,
                threshold: float) -> torch.Tensor:
        probability, correction = network((_crops(image, boxes, size) - 127.5) / 128)
        keep = probability > threshold
        boxes = torch.cat([boxes[keep, :4], probability[keep].unsqueeze(1)], 1)
        correction = correction[keep]
        order = nms(boxes[:, :4], boxes[:, 4], 0.7)
        return _square(_regress(boxes[order], correction[order], plus_one=True))


def _windows(probability: torch.Tensor, correction: torch.Tensor, scale: float, threshold: float) -> torch.Tensor:
    """(M, 9) the P-Net windows above `threshold`: x0, y0, x1, y1 in the photo, probability, 4 corrections."""
    rows, cols = torch.nonzero(probability >= threshold, as_tuple=True)
    corner = torch.stack([cols, rows], 1).float()
    start, end = ((2 * corner + 1) / scale).floor(), ((2 * corner + 12) / scale).floor()
    return torch.cat([start, end, probability[rows, cols].unsqueeze(1), correction[:, rows, cols].T], 1)


def _regress(boxes: torch.Tensor, correction: torch.Tensor, *, plus_one: bool) -> torch.Tensor:
    """Boxes moved by their corrections (fractions of the box's width and height)."""
    extra = 1.0 if plus_one else 0.0
    width = (boxes[:, 2] - boxes[:, 0] + extra).unsqueeze(1)
    height = (boxes[:, 3] - boxes[:, 1] + extra).unsqueeze(1)
    moved = boxes[:, :4] + correction * torch.cat([width, height, width, height], 1)
    return torch.cat([moved, boxes[:, 4:]], 1)


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Each box as the square about its centre whose side is its longer side."""
    boxes = boxes.clone()
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(width, height)
    boxes[:, 0] += width * 0.5 - side * 0.5
    boxes[:, 1] += height * 0.5 - side * 0.5
    boxes[:, 2:4] = boxes[:, :2] + side.unsqueeze(1)
    return boxes


def _crops(image: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """(M, 3, size, size) the part of each box inside the image (1-based, inclusive, as MTCNN), resized by area."""
    height, width = image.shape[2:]
    whole = boxes[:, :4].trunc().int()
    x0, y0 = whole[:, 0].clamp(min=1), whole[:, 1].clamp(min=1)
    x1, y1 = whole[:, 2].clamp(max=width), whole[:, 3].clamp(max=height)
    crops = []
    for a, b, c, d in zip(x0.tolist(), y0.tolist(), x1.tolist(), y1.tolist()):
        if c > a - 1 and d > b - 1:
            crops.append(F.interpolate(image[:, :, b - 1:d, a - 1:c], size=(size, size), mode="area"))
        else:  # a box wholly outside: nothing to look at
            crops.append(torch.zeros(1, 3, size, size))
    return torch.cat(crops)


def _clipped(box: torch.Tensor, width: int, height: int) -> tuple[float, float, float, float]:
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


def _whole_box(box, width: int, height: int) -> tuple[int, int, int, int]:
    """A float box as the 0-based inclusive pixels `_crops` cuts: truncated, 1-based clamped into the photo."""
    whole = [int(float(v)) for v in box[:4]]  # trunc, as MTCNN's crops
    return (max(whole[0], 1) - 1, max(whole[1], 1) - 1, min(whole[2], width) - 1, min(whole[3], height) - 1)


def _in_photo(fractions: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
    from sia_core.keypoints.faces import points_in_photo

    return points_in_photo(fractions.unsqueeze(0), box)[0]


def face_crop_box(detection: FaceDetection, width: int, height: int) -> tuple[int, int, int, int]:
    """The crop O-Net looked at, as whole pixels inside the photo (inclusive): what `faces.face_crop` cuts."""
    return _whole_box(detection.crop_box, width, height)


__all__ = ["FaceDetection", "FaceDetector", "face_crop_box"]
