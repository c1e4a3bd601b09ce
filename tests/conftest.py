"""Shared fixtures: tiny seeded models and images, and the real data in ../shared/data when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
SHARED_CIFAR10_JPEG = SHARED_DATA / "cifar10-jpg"

# the engine has no default CIFAR-10 folder: name the JPEG copy beside the checkout before sia_core is imported (the
# dataset catalog reads $SIA_CIFAR10_DIR once); without it, the tests that need it skip
if SHARED_CIFAR10_JPEG.is_dir():
    os.environ["SIA_CIFAR10_DIR"] = str(SHARED_CIFAR10_JPEG)

from sia_core.models.architectures import SplitClassifier, build_architecture  # noqa: E402
from sia_core.models.wrapper import ClassifierWrapper  # noqa: E402


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or a clean skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


def make_wrapper(channels: int = 1, size: int = 8, classes: int = 4, seed: int = 0,
                 architecture: str = "mlp") -> ClassifierWrapper:
    torch.manual_seed(seed)
    network = build_architecture(architecture, channels, size, classes)
    return ClassifierWrapper(network, mean=[0.5] * channels, std=[0.25] * channels,
                             input_shape=(channels, size, size), class_names=[f"c{i}" for i in range(classes)],
                             model_id=f"test-{architecture}").eval()


def linear_wrapper(weight: torch.Tensor, bias: torch.Tensor, input_shape: tuple[int, int, int]) -> ClassifierWrapper:
    """A linear classifier on raw [0, 1] pixels (mean 0, std 1): logits = W x + b."""
    head = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        head.weight.copy_(weight)
        head.bias.copy_(bias)
    network = SplitClassifier(nn.Sequential(nn.Flatten()), head)
    channels = input_shape[0]
    return ClassifierWrapper(network, mean=[0.0] * channels, std=[1.0] * channels, input_shape=input_shape,
                             class_names=[f"c{i}" for i in range(weight.shape[0])], model_id="linear").eval()


@pytest.fixture
def tiny_model() -> ClassifierWrapper:
    return make_wrapper()


@pytest.fixture
def tiny_batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.rand(16, 1, 8, 8, generator=generator), torch.randint(0, 4, (16,), generator=generator)
