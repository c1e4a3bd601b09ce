"""The one wrapper of a keypoint model: images in [0, 1] in, (N, K, 2) points out as fractions of the image's width
and height; it owns the input size, the normalization and the device, like `ClassifierWrapper` for classifiers."""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import torch
from torch import nn

from sia_core.keypoints.task import KeypointObjective, KeypointTask
from sia_core.models.wrapper import frozen_eval
from sia_core.scaling import batch_size_for


class KeypointWrapper(nn.Module):
    """`network(normalized images)` -> (N, K, 2) points; `forward` takes images in [0, 1] (differentiable).

    Args:
        network: the model, taking normalized images.
        points_of: the network's output to its (N, K, 2) points (e.g. one head of a multi-head network).
        mean, std: per-channel normalization applied inside `forward`: (x − mean) / std.
        input_shape: (C, H, W) the network expects.
        point_names: one name per point, in the model's order.
        task: how its predictions are judged (NME normalizer, failure threshold); the attacks climb its NME.
        model_id: registry id, for display and cache keys.
    """

    def __init__(self, network: nn.Module, *, points_of: Callable[[object], torch.Tensor],
                 mean: Sequence[float], std: Sequence[float], input_shape: tuple[int, int, int],
                 point_names: Sequence[str], task: KeypointTask = KeypointTask(), model_id: str = "") -> None:
        super().__init__()
        channels = input_shape[0]
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"mean/std need {channels} values, one per channel")
        self.network = network
        self.points_of = points_of
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.input_shape = tuple(input_shape)
        self.point_names = tuple(point_names)
        self.task = task
        self.objective = KeypointObjective(task)  # what `sia_core.attacks` climb on this model
        self.model_id = model_id

    @property
    def device(self) -> torch.device:
        return self.mean.device

    @property
    def num_points(self) -> int:
        return len(self.point_names)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if tuple(images.shape[1:]) != self.input_shape:
            raise ValueError(f"{self.model_id or 'model'} expects images of shape (N, "
                             f"{', '.join(map(str, self.input_shape))}), got {tuple(images.shape)}")
        images = images.to(self.device, self.mean.dtype)
        return self.points_of(self.network((images - self.mean) / self.std))

    def with_threshold(self, threshold: float) -> "KeypointWrapper":
        """A wrapper around the same network and normalization tensors whose task fails predictions above another NME
        `threshold`; nothing of this model is copied or switched, so it is safe on a model other threads use."""
        judged = KeypointWrapper(self.network, points_of=self.points_of, mean=[0.0] * self.input_shape[0],
                                 std=[1.0] * self.input_shape[0], input_shape=self.input_shape,
                                 point_names=self.point_names, task=dataclasses.replace(self.task, threshold=threshold),
                                 model_id=self.model_id)
        judged.register_buffer("mean", self.mean)  # the same tensors, already on this model's device
        judged.register_buffer("std", self.std)
        judged.training = self.training
        return judged

    def points(self, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """(N, K, 2) points on the CPU, batched, without autograd in eval mode."""
        batch_size = batch_size_for(self.input_shape, batch_size)
        with frozen_eval(self), torch.inference_mode():
            chunks = [self(images[i:i + batch_size]).cpu() for i in range(0, images.shape[0], batch_size)]
        return torch.cat(chunks) if chunks else torch.empty(0, self.num_points, 2)
