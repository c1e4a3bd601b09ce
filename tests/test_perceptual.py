"""SSIM: 1 for identical images, the reference implementation's numbers (scikit-image), and a usable gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

from sia_core.errors import ConfigError
from sia_core.perceptual import ssim


def reference(x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """scikit-image's SSIM with Wang et al.'s settings, image by image, in float64."""
    return np.array([structural_similarity(a.double().numpy(), b.double().numpy(), data_range=1,
                                           gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                           channel_axis=0) for a, b in zip(x, y)])


def _generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _smooth_images(n: int, channels: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Gradients at random angles and levels: images with structure, unlike uniform noise."""
    rows, cols = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    angle = torch.rand(n, channels, 1, 1, generator=generator) * 2 * torch.pi
    level = 0.2 + 0.3 * torch.rand(n, channels, 1, 1, generator=generator)
    return (level + 0.4 * (torch.cos(angle) * cols + torch.sin(angle) * rows)).clamp(0, 1)


def _blur(images: torch.Tensor) -> torch.Tensor:
    channels = images.shape[1]
    kernel = torch.full((channels, 1, 3, 3), 1 / 9)
    return F.conv2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), kernel, groups=channels)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [28, 32, 224])
def test_identical_images_score_one(channels: int, size: int):
    x = torch.rand(2, channels, size, size, generator=_generator())
    torch.testing.assert_close(ssim(x, x), torch.ones(2))
    torch.testing.assert_close(ssim(x[:, :, :5, :7], x[:, :, :5, :7]), torch.ones(2))  # smaller than the window


def _pairs(channels: int, size: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    generator = _generator()
    uniform = torch.rand(3, channels, size, size, generator=generator)
    smooth = _smooth_images(3, channels, size, generator)
    noisy = (smooth + 0.05 * torch.randn(smooth.shape, generator=generator)).clamp(0, 1)
    return {"random": (uniform, torch.rand(uniform.shape, generator=generator)),
            "noise": (smooth, noisy),
            "blur": (noisy, _blur(noisy)),
            "brightness": (smooth, (smooth + 0.1).clamp(0, 1)),
            "contrast": (noisy, (0.5 + 0.6 * (noisy - 0.5)).clamp(0, 1))}


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [11, 28, 32])
def test_matches_scikit_image(channels: int, size: int):
    for name, (x, y) in _pairs(channels, size).items():
        expected = reference(x, y)
        np.testing.assert_allclose(ssim(x, y).numpy(), expected, atol=1e-4, rtol=0, err_msg=name)
        np.testing.assert_allclose(ssim(x.double(), y.double()).numpy(), expected, atol=1e-10, rtol=0, err_msg=name)


def test_symmetric_and_lower_for_more_noise():
    generator = _generator()
    x = _smooth_images(4, 3, 32, generator)
    noise = torch.randn(x.shape, generator=generator)
    y = (x + 0.05 * noise).clamp(0, 1)
    torch.testing.assert_close(ssim(x, y), ssim(y, x))
    scores = [ssim(x, (x + level * noise).clamp(0, 1)) for level in (0.01, 0.05, 0.2)]
    assert torch.all(scores[0] > scores[1]) and torch.all(scores[1] > scores[2])
    assert torch.all(scores[2] < 1) and torch.all(scores[2] > -1)


def test_gradient_flows_and_matches_finite_differences():
    generator = _generator()
    x = _smooth_images(2, 1, 12, generator).double()
    delta = (0.05 * torch.randn(x.shape, generator=generator, dtype=torch.float64)).requires_grad_(True)
    ssim(x, x + delta).sum().backward()
    assert delta.grad is not None and torch.isfinite(delta.grad).all() and delta.grad.abs().sum() > 0
    assert torch.autograd.gradcheck(lambda d: ssim(x, x + d), (delta.detach().requires_grad_(True),))


def test_refuses_mismatched_shapes():
    with pytest.raises(ConfigError, match="one shape"):
        ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 9))
