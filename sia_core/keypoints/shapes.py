"""Shapes with landmarks: the keypoint world trained here. Each generated image's three landmarks (the shape's centre
and the corners of its bounding box, `sia_core.data.shapes.shape_landmarks`) are its ground truth; a small CNN learns
to place them (`shapes-keypoints`), and a planted-flaw twin (`shapes-keypoints-spurious-hue`) learns them from marks
that drift with the shape's colour, so its landmarks depend on hue, which they should not.

The flaw is ours, built to check the diagnosis: every training mark is moved sideways by `HUE_FLAW_PX` · cos(2π hue)
pixels (reds to the right, cyans to the left, greens and violets not at all), so how wrong the marks are depends on the
colour alone. The test split is always the true landmarks.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Optional

import torch
from torch import nn

from sia_core.data.base import ImageDataset, Split
from sia_core.data.shapes import LANDMARK_NAMES, shape_outlines, shapes_dataset
from sia_core.keypoints.task import KeypointTask
from sia_core.progress import ProgressCallback
from sia_core.validation import non_negative_int, one_of, optional, positive, positive_int

SHAPES_KEYPOINT_TASK = KeypointTask(normalizer="object-size", threshold=0.1, reference_form="centre-and-box")
KEYPOINT_FLAWS = ("hue",)
HUE_FLAW_PX = 4.0  # the largest drift of the flawed marks, in pixels of the 32 px image


def hue_flaw_offset(hue: torch.Tensor, image_size: int) -> torch.Tensor:
    """(N, 2) the drift of the flawed marks, as fractions of the image: `HUE_FLAW_PX` · cos(2π hue) to the right."""
    shift = (hue.double() * 2 * math.pi).cos() * (HUE_FLAW_PX / image_size)
    return torch.stack([shift, torch.zeros_like(shift)], dim=1).float()


def shapes_keypoint_dataset(split: Split, *, n: Optional[int] = None, seed: int = 0,
                            flaw: Optional[str] = None) -> ImageDataset:
    """The Shapes split (never class-biased) with its reference points in `SHAPES_KEYPOINT_TASK`'s form (centre and
    outline, whose box gives the landmarks); `flaw="hue"` drifts the train split's marks with hue (the test split
    always holds the true landmarks)."""
    optional(one_of, "flaw", flaw, KEYPOINT_FLAWS)
    base = shapes_dataset(split, n=n, seed=seed)
    points = shape_outlines(base)
    name, source = f"shapes-keypoints-{split}", f"{base.source}; landmarks: centre and bounding-box corners"
    if flaw == "hue" and split == "train":
        points = points + hue_flaw_offset(base.attributes["hue"], base.image_shape[-1]).unsqueeze(1)
        name += "-spurious-hue"
        source += (f", every mark drifted sideways by {HUE_FLAW_PX:g} px × cos(2π hue) (a planted flaw: how wrong "
                   "the marks are depends on the colour)")
    return replace(base, name=name, source=source, keypoints=points, point_names=LANDMARK_NAMES)


class KeypointCNN(nn.Module):
    """Two strided convolutions and two dense layers to K (x, y) points, as fractions (0.5 = the centre)."""

    def __init__(self, in_channels: int = 3, image_size: int = 32, num_points: int = 3) -> None:
        super().__init__()
        self.num_points = num_points
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(32, 64, 5, stride=2, padding=2), nn.ReLU(), nn.Flatten(),
            nn.Linear(64 * math.ceil(image_size / 4) ** 2, 128), nn.ReLU())
        self.head = nn.Linear(128, 2 * num_points)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).view(-1, self.num_points, 2) + 0.5


@dataclass(frozen=True)
class KeypointTrainConfig:
    """Plain supervised training on the landmarks: smooth-L1 on the points in pixels, Adam."""

    epochs: int = 12
    batch_size: int = 128
    learning_rate: float = 2e-3
    train_n: int = 20_000
    seed: int = 0
    flaw: Optional[str] = None

    def __post_init__(self) -> None:
        positive_int("epochs", self.epochs)
        positive_int("batch_size", self.batch_size)
        positive("learning_rate", self.learning_rate)
        positive_int("train_n", self.train_n)
        non_negative_int("seed", self.seed)
        optional(one_of, "flaw", self.flaw, KEYPOINT_FLAWS)


@dataclass(frozen=True)
class KeypointTraining:
    network: nn.Module
    config: KeypointTrainConfig
    train_source: str
    epoch_loss: tuple[float, ...]
    seconds: float
    history: dict[str, Any] = field(default_factory=dict)


def train_keypoint_network(config: KeypointTrainConfig, mean: torch.Tensor, std: torch.Tensor,
                           progress: Optional[ProgressCallback] = None) -> KeypointTraining:
    """A fresh `KeypointCNN` trained on the Shapes train split's landmarks (drifted by the config's flaw)."""
    data = shapes_keypoint_dataset("train", n=config.train_n, seed=config.seed, flaw=config.flaw)
    generator = torch.Generator().manual_seed(config.seed)
    network = KeypointCNN(data.image_shape[0], data.image_shape[-1], len(data.point_names))
    with torch.no_grad():  # seeded initialisation, without touching the global RNG (many users, one server)
        for module in network.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                bound = 1 / math.sqrt(fan_in)
                module.weight.copy_((torch.rand(module.weight.shape, generator=generator) * 2 - 1) * bound
                                    * math.sqrt(6 / 2))  # He-uniform for ReLU
                module.bias.copy_((torch.rand(module.bias.shape, generator=generator) * 2 - 1) * bound)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    steps_per_epoch = math.ceil(len(data) / config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.learning_rate,
                                                   total_steps=config.epochs * steps_per_epoch)
    size = data.image_shape[-1]
    losses, started = [], time.perf_counter()
    network.train()
    for epoch in range(config.epochs):
        order = torch.randperm(len(data), generator=generator)
        total = 0.0
        for start in range(0, len(data), config.batch_size):
            batch = order[start:start + config.batch_size]
            predicted = network((data.images[batch] - mean) / std)
            # in pixels, so the loss's unit is what a person sees; smooth-L1 is robust to the odd hard shape
            target = SHAPES_KEYPOINT_TASK.landmarks(data.keypoints[batch])
            loss = nn.functional.smooth_l1_loss(predicted * size, target * size)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(batch)
        losses.append(total / len(data))
        if progress is not None:
            progress(epoch + 1, config.epochs, {"loss": losses[-1]})
    network.eval()
    return KeypointTraining(network=network, config=config, train_source=data.source, epoch_loss=tuple(losses),
                            seconds=time.perf_counter() - started, history={"epoch_loss": losses})


def keypoint_evaluation(model, dataset: ImageDataset, task: KeypointTask) -> dict[str, Any]:
    """The card's measure of a keypoint model on `dataset`'s landmarks: NME (mean, median) and the failure rate (NME
    above the task's threshold) with its 95% interval."""
    from sia_core.claims import proportion_ci  # the scorecard's interval (imported here: claims reads diagnoses)

    predicted = model.points(dataset.images)
    errors = task.errors(predicted, dataset.keypoints)
    failure = float((errors > task.threshold).float().mean())
    low, high = proportion_ci(failure, len(errors))
    return {"metric": "nme", "test_set": dataset.name, "test_n": len(errors), "normalizer": task.normalizer,
            "threshold": task.threshold, "mean_nme": round(float(errors.mean()), 5),
            "median_nme": round(float(errors.median()), 5), "failure_rate": round(failure, 5),
            "failure_rate_ci95": [round(low, 5), round(high, 5)]}


def task_dict(task: KeypointTask) -> dict[str, Any]:
    return asdict(task)
