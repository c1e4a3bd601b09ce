"""The one model wrapper: it owns normalization, input shape, class names and device.

Every engine function hands it images in [0, 1] and gets (N, C) logits back.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
from torch import nn

from sia_core.data.base import ImageDataset
from sia_core.errors import ConfigError
from sia_core.models.architectures import SplitClassifier
from sia_core.scaling import batch_size_for


def default_device() -> torch.device:
    """`cuda` when a GPU is present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class ClassifierWrapper(nn.Module):
    """A classifier that takes images in [0, 1] and returns (N, num_classes) logits.

    Args:
        network: a `SplitClassifier` that expects normalized inputs.
        mean, std: per-channel normalization applied inside `forward`.
        input_shape: (C, H, W) the network expects.
        class_names: one name per logit.
        model_id: registry id, for display and cache keys.
    """

    def __init__(self, network: SplitClassifier, *, mean: Sequence[float], std: Sequence[float],
                 input_shape: tuple[int, int, int], class_names: Sequence[str], model_id: str = "") -> None:
        super().__init__()
        channels = input_shape[0]
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"mean/std need {channels} values, one per channel")
        self.network = network
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.input_shape = tuple(input_shape)
        self.class_names = tuple(class_names)
        self.model_id = model_id

    @property
    def device(self) -> torch.device:
        return self.mean.device

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def _check(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim == 3:
            images = images.unsqueeze(0)
        if tuple(images.shape[1:]) != self.input_shape:
            raise ValueError(f"{self.model_id or 'model'} expects images of shape (N, {', '.join(map(str, self.input_shape))}), "
                             f"got {tuple(images.shape)}")
        return images.to(self.device, self.mean.dtype)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return (self._check(images) - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(self.normalize(images))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate representation (the input of the final linear layer)."""
        return self.network.features(self.normalize(images))

    @property
    def head(self) -> nn.Linear:
        return self.network.head

    def predict_proba(self, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Softmax probabilities on the CPU, computed without autograd in eval mode (batches capped by
        `batch_size_for`: 512 small images, 16 at 224 px)."""
        batch_size = batch_size_for(self.input_shape, batch_size)
        with frozen_eval(self), torch.inference_mode():
            chunks = [torch.softmax(self(images[i:i + batch_size]), dim=1).cpu()
                      for i in range(0, images.shape[0], batch_size)]
        return torch.cat(chunks) if chunks else torch.empty(0, self.num_classes)

    def logits(self, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Logits on the CPU, batched (capped by `batch_size_for`), without autograd in eval mode."""
        batch_size = batch_size_for(self.input_shape, batch_size)
        with frozen_eval(self), torch.inference_mode():
            chunks = [self(images[i:i + batch_size]).cpu() for i in range(0, images.shape[0], batch_size)]
        return torch.cat(chunks) if chunks else torch.empty(0, self.num_classes)


def require_fit(model: ClassifierWrapper, dataset: ImageDataset) -> None:
    """Refuse a dataset the model cannot classify: other image shape, or labels beyond the model's classes."""
    if dataset.image_shape != model.input_shape or dataset.num_classes != model.num_classes:
        raise ConfigError(f"{model.model_id or 'The model'} takes {model.input_shape} images in {model.num_classes} "
                          f"classes; {dataset.name} has {dataset.image_shape} images in {dataset.num_classes} classes.")


@contextlib.contextmanager
def frozen_eval(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode with parameter gradients off; restores both on exit, even on error.

    Attacks need gradients w.r.t. the input only; freezing parameters saves that work and
    keeps BatchNorm/Dropout from changing behaviour mid-attack.
    """
    was_training = model.training
    grad_flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for parameter, _ in grad_flags:
        parameter.requires_grad_(False)
    try:
        yield model
    finally:
        for parameter, flag in grad_flags:
            parameter.requires_grad_(flag)
        model.train(was_training)
