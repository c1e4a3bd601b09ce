"""Perceptual similarity of two image batches: SSIM (Wang et al. 2004), differentiable and torch-only, so the
attacks can both report it and optimize it."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sia_core.validation import require

WINDOW_SIZE = 11   # Wang et al.'s 11 x 11 window (what skimage's Gaussian weights give at sigma 1.5)
WINDOW_SIGMA = 1.5
K1, K2 = 0.01, 0.03


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean structural similarity of each pair of images, (N,): 1 for identical images, lower as they differ.

    Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility to structural
    similarity", IEEE Transactions on Image Processing 13(4), 2004: local means, variances and covariance under
    an 11 x 11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, data range 1; the SSIM map is averaged over
    the valid window positions (no padding) and over channels. This is exactly
    ``skimage.metrics.structural_similarity(a, b, data_range=1, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, channel_axis=0)`` per image (checked in tests/test_perceptual.py).

    Images smaller than 11 px on a side (where skimage refuses) use the largest odd window that fits, the same
    sigma-1.5 Gaussian cut to that window and renormalized; a 1-px side leaves a window of 1 (luminance only).

    Args:
        x, y: (N, C, H, W) images in [0, 1], same shape; gradients flow to both.

    Returns:
        (N,) SSIM per image, in x's dtype and device.
    """
    require(x.shape == y.shape and x.ndim == 4,
            f"ssim needs two (N, C, H, W) batches of one shape, got {tuple(x.shape)} and {tuple(y.shape)}.")
    n, channels, height, width = x.shape
    size = min(WINDOW_SIZE, _largest_odd(height), _largest_odd(width))
    radius = size // 2
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    taps = torch.exp(-0.5 * (offsets / WINDOW_SIGMA) ** 2)
    taps = taps / taps.sum()
    # the five local statistics of every channel in one separable depthwise filter (rows, then columns)
    stacked = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    groups = stacked.shape[1]
    filtered = F.conv2d(stacked, taps.view(1, 1, -1, 1).expand(groups, 1, size, 1), groups=groups)
    filtered = F.conv2d(filtered, taps.view(1, 1, 1, -1).expand(groups, 1, 1, size), groups=groups)
    mean_x, mean_y, mean_xx, mean_yy, mean_xy = filtered.split(channels, dim=1)
    variance_x = mean_xx - mean_x * mean_x   # population (not sample) covariance, as in the paper
    variance_y = mean_yy - mean_y * mean_y
    covariance = mean_xy - mean_x * mean_y
    c1, c2 = K1 ** 2, K2 ** 2  # data range 1
    similarity = ((2 * mean_x * mean_y + c1) * (2 * covariance + c2)
                  / ((mean_x * mean_x + mean_y * mean_y + c1) * (variance_x + variance_y + c2)))
    return similarity.flatten(1).mean(1)


def _largest_odd(side: int) -> int:
    return side if side % 2 == 1 else max(side - 1, 1)
