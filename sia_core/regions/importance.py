"""Region-of-Importance maps, "where the model looks": occlusion, gradients, SmoothGrad, Grad-CAM, integrated gradients.

Each method is a frozen config called with `(model, images, targets)` that returns (N, H, W) non-negative maps.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, Literal

import torch
import torch.nn.functional as F
from torch import nn

from sia_core.models.wrapper import ClassifierWrapper, frozen_eval

Target = Literal["true", "predicted"] | int
RoIMethodName = Literal["occlusion", "gradient", "smoothgrad", "gradcam", "integrated_gradients"]

ROI_METHODS: dict[str, str] = {
    "occlusion": "Occlusion: grey out a small square at every position and see how much the model's confidence "
                 "in the class drops; big drops mark the regions the decision relies on.",
    "gradient": "Gradient: how strongly each pixel, nudged a tiny bit, would change the class score.",
    "smoothgrad": "SmoothGrad: the gradient map averaged over many slightly noisy copies of the image, "
                  "which removes speckle and keeps the pixels that matter consistently.",
    "gradcam": "Grad-CAM: which parts of the last convolutional layer's feature maps push the class score up, "
               "shown as a coarse heat map stretched to the image size.",
    "integrated_gradients": "Integrated gradients: fade the image in from a blank baseline and add up how much "
                            "each pixel contributed to the class score along the way.",
}


def resolve_targets(model: ClassifierWrapper, images: torch.Tensor, labels: torch.Tensor | None,
                    target: Target) -> torch.Tensor:
    """The (N,) long CPU tensor of classes to explain: true labels, the model's predictions, or one class for all."""
    if isinstance(target, str):
        if target == "true":
            if labels is None:
                raise ValueError('target="true" needs the true labels')
            return labels.detach().to("cpu", torch.long).reshape(-1)
        if target == "predicted":
            return model.logits(images).argmax(dim=1)
        raise ValueError(f'target must be "true", "predicted" or a class index, got {target!r}')
    # bool is an int subclass; True as a class index is almost surely a bug upstream
    if isinstance(target, bool) or not isinstance(target, int):
        raise ValueError(f'target must be "true", "predicted" or a class index, got {target!r}')
    if not 0 <= target < model.num_classes:
        raise ValueError(f"class index {target} is outside [0, {model.num_classes})")
    return torch.full((images.shape[0] if images.ndim == 4 else 1,), target, dtype=torch.long)


def conv_layer_names(model: ClassifierWrapper) -> list[str]:
    """Names of every `nn.Conv2d` of the model (e.g. "network.features.0"), in definition order."""
    return [f"network.{name}" for name, module in model.network.named_modules() if isinstance(module, nn.Conv2d)]


def _checked_inputs(model: ClassifierWrapper, images: torch.Tensor,
                    targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4 or tuple(images.shape[1:]) != model.input_shape:
        raise ValueError(f"images must have shape (N, {', '.join(map(str, model.input_shape))}), "
                         f"got {tuple(images.shape)}")
    targets = torch.as_tensor(targets).to("cpu", torch.long).reshape(-1)
    if targets.shape[0] != images.shape[0]:
        raise ValueError(f"need one target per image: {images.shape[0]} images, {targets.shape[0]} targets")
    if targets.numel() and (targets.min() < 0 or targets.max() >= model.num_classes):
        raise ValueError(f"targets must lie in [0, {model.num_classes})")
    return images.detach(), targets


def _per_channel(values: tuple[float, ...], channels: int, what: str, device: torch.device) -> torch.Tensor:
    if len(values) != channels:
        raise ValueError(f"{what} needs {channels} values, one per channel, got {len(values)}")
    return torch.tensor(values, dtype=torch.float32, device=device).view(1, channels, 1, 1)


def _empty_maps(images: torch.Tensor) -> torch.Tensor:
    return torch.zeros(0, *images.shape[-2:], dtype=torch.float32)


@contextlib.contextmanager
def _gradients_enabled() -> Iterator[None]:
    # callers may sit inside inference_mode/no_grad (e.g. a display path); input gradients need autograd back
    with torch.inference_mode(False), torch.enable_grad():
        yield


def _target_logit_gradient(model: ClassifierWrapper, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """d logit_target / d input for each row; the rows are independent in eval mode, so one backward serves all."""
    inputs = inputs.detach().clone().requires_grad_(True)
    selected = model(inputs).gather(1, targets.view(-1, 1)).sum()
    return torch.autograd.grad(selected, inputs)[0]


def _patch_starts(length: int, patch: int, stride: int) -> list[int]:
    starts = list(range(0, length - patch + 1, stride))
    if starts[-1] != length - patch:  # the stride skipped the last row/column
        starts.append(length - patch)
    return starts


def _patch_masks(height: int, width: int, patch_size: int, stride: int, device: torch.device) -> torch.Tensor:
    """(P, H, W) boolean masks, one per occluding patch, together covering every pixel."""
    patch_h, patch_w = min(patch_size, height), min(patch_size, width)
    rows, cols = _patch_starts(height, patch_h, stride), _patch_starts(width, patch_w, stride)
    masks = torch.zeros(len(rows), len(cols), height, width, dtype=torch.bool, device=device)
    for i, top in enumerate(rows):
        for j, left in enumerate(cols):
            masks[i, j, top:top + patch_h, left:left + patch_w] = True
    return masks.view(-1, height, width)


@dataclass(frozen=True, kw_only=True)
class Occlusion:
    """Occlusion sensitivity (Zeiler & Fergus 2014): the drop in class probability when a patch is hidden.

    Model-agnostic: needs forward passes only. A patch's score is p_target(x) - p_target(x with the patch
    filled); each pixel gets the mean score of the patches covering it; the map is clamped at 0.

    Args:
        patch_size: side of the square patch, in pixels.
        stride: step between patch positions (at most `patch_size`, so every pixel is covered).
        fill: "zero" (black) or "mean" (the per-channel dataset mean in `fill_value`).
        fill_value: per-channel values in [0, 1], required when fill == "mean".
        batch_size: occluded copies per forward pass.

    Call: ``Occlusion()(model, images, targets)`` with images (N, C, H, W) in [0, 1] and targets (N,);
    returns (N, H, W) float32 on the CPU.
    """

    patch_size: int = 4
    stride: int = 2
    fill: Literal["zero", "mean"] = "zero"
    fill_value: tuple[float, ...] | None = None
    batch_size: int = 512

    def __post_init__(self) -> None:
        if self.patch_size < 1 or self.stride < 1 or self.batch_size < 1:
            raise ValueError("patch_size, stride and batch_size must be positive")
        if self.stride > self.patch_size:
            raise ValueError("stride must not exceed patch_size, or some pixels would never be occluded")
        if self.fill not in ("zero", "mean"):
            raise ValueError(f'fill must be "zero" or "mean", got {self.fill!r}')
        if self.fill == "mean" and self.fill_value is None:
            raise ValueError('fill="mean" needs fill_value, the per-channel dataset mean')

    def __call__(self, model: ClassifierWrapper, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        images, targets = _checked_inputs(model, images, targets)
        if images.shape[0] == 0:
            return _empty_maps(images)
        device = model.device
        channels, height, width = model.input_shape
        fill = (torch.zeros(1, channels, 1, 1, device=device) if self.fill == "zero"
                else _per_channel(self.fill_value or (), channels, "fill_value", device))
        masks = _patch_masks(height, width, self.patch_size, self.stride, device)
        num_patches = masks.shape[0]
        flat_masks = masks.view(num_patches, -1).float()
        coverage = flat_masks.sum(dim=0)
        images_per_chunk = max(1, self.batch_size // num_patches)
        maps = []
        with frozen_eval(model), torch.inference_mode():
            for start in range(0, images.shape[0], images_per_chunk):
                chunk = images[start:start + images_per_chunk].to(device, torch.float32)
                chunk_targets = targets[start:start + images_per_chunk].to(device).view(-1, 1)
                # (n, P, C, H, W): every occluded copy of every image in the chunk, one batch
                occluded = torch.where(masks[None, :, None], fill.unsqueeze(0), chunk.unsqueeze(1))
                occluded = occluded.view(-1, channels, height, width)
                occluded_probs = torch.cat([torch.softmax(model(occluded[i:i + self.batch_size]), dim=1)
                                            for i in range(0, occluded.shape[0], self.batch_size)])
                occluded_p = occluded_probs.view(chunk.shape[0], num_patches, -1).gather(
                    2, chunk_targets.unsqueeze(1).expand(-1, num_patches, 1)).squeeze(2)
                clean_p = torch.softmax(model(chunk), dim=1).gather(1, chunk_targets)
                scores = clean_p - occluded_p
                maps.append(((scores @ flat_masks) / coverage).view(-1, height, width).clamp_min(0).cpu())
        return torch.cat(maps).float()


@dataclass(frozen=True, kw_only=True)
class GradientSaliency:
    """Gradient saliency (Simonyan et al. 2014): max over channels of |d logit_target / d x|.

    With `smoothgrad_samples` > 0 it is SmoothGrad (Smilkov et al. 2017): the saliency map averaged over
    that many copies of the image with Gaussian noise of std `noise_std` (in [0, 1] image units) added.

    Args:
        smoothgrad_samples: noisy copies per image; 0 gives the plain gradient.
        noise_std: standard deviation of the noise, in [0, 1] pixel units.
        seed: seeds the noise (drawn on the CPU so a seed gives the same map on every device).
        batch_size: forward passes per backward (images times samples).

    Call: ``GradientSaliency()(model, images, targets)``; returns (N, H, W) float32 on the CPU.
    """

    smoothgrad_samples: int = 0
    noise_std: float = 0.1
    seed: int = 0
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.smoothgrad_samples < 0 or self.noise_std < 0 or self.batch_size < 1:
            raise ValueError("smoothgrad_samples and noise_std must be non-negative, batch_size positive")

    def __call__(self, model: ClassifierWrapper, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        images, targets = _checked_inputs(model, images, targets)
        if images.shape[0] == 0:
            return _empty_maps(images)
        device = model.device
        samples = max(1, self.smoothgrad_samples)
        images_per_chunk = max(1, self.batch_size // samples)
        generator = torch.Generator().manual_seed(self.seed)
        maps = []
        with frozen_eval(model), _gradients_enabled():
            for start in range(0, images.shape[0], images_per_chunk):
                chunk = images[start:start + images_per_chunk].to(device, torch.float32)
                chunk_targets = targets[start:start + images_per_chunk].to(device)
                # (S, n, C, H, W) noisy copies, sample-major so that repeat_interleave is not needed for targets
                inputs = chunk.unsqueeze(0).expand(samples, *chunk.shape)
                if self.smoothgrad_samples > 0:
                    noise = torch.randn(inputs.shape, generator=generator) * self.noise_std
                    inputs = inputs + noise.to(device)
                gradient = _target_logit_gradient(model, inputs.reshape(-1, *chunk.shape[1:]),
                                                  chunk_targets.repeat(samples))
                saliency = gradient.abs().amax(dim=1).view(samples, chunk.shape[0], *chunk.shape[2:])
                maps.append(saliency.mean(dim=0).cpu())
        return torch.cat(maps).float()


@contextlib.contextmanager
def _captured_activation(module: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Within the block, each forward of `module` appends its output as a leaf we can differentiate against."""
    captured: list[torch.Tensor] = []

    def keep(_module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        # a fresh leaf: parameters are frozen, so the output would otherwise carry no graph
        activation = output.detach().requires_grad_(True)
        captured.append(activation)
        return activation.clone()  # an in-place op downstream (ReLU(inplace=True)) must not touch the leaf

    handle = module.register_forward_hook(keep)
    try:
        yield captured
    finally:
        handle.remove()


@dataclass(frozen=True, kw_only=True)
class GradCAM:
    """Grad-CAM (Selvaraju et al. 2017): ReLU(sum_k alpha_k A^k), alpha_k = spatial mean of d logit_target / d A^k.

    A^k are the feature maps of one convolutional layer; the coarse map is upsampled bilinearly to the image.

    Args:
        layer: a name from `conv_layer_names(model)`; None picks the last `nn.Conv2d`.
        batch_size: images per forward pass.

    Call: ``GradCAM()(model, images, targets)``; returns (N, H, W) float32 on the CPU.
    """

    layer: str | None = None
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be positive")

    def resolve_layer(self, model: ClassifierWrapper) -> str:
        names = conv_layer_names(model)
        if not names:
            raise ValueError(f"Grad-CAM needs a convolutional layer; {model.model_id or 'this model'} has none")
        if self.layer is None:
            return names[-1]
        if self.layer not in names:
            raise ValueError(f"Unknown layer {self.layer!r}; available convolutional layers: {', '.join(names)}")
        return self.layer

    def __call__(self, model: ClassifierWrapper, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        images, targets = _checked_inputs(model, images, targets)
        module = dict(model.named_modules())[self.resolve_layer(model)]
        if images.shape[0] == 0:
            return _empty_maps(images)
        device = model.device
        maps = []
        with frozen_eval(model), _gradients_enabled(), _captured_activation(module) as captured:
            for start in range(0, images.shape[0], self.batch_size):
                chunk = images[start:start + self.batch_size].to(device, torch.float32)
                chunk_targets = targets[start:start + self.batch_size].to(device).view(-1, 1)
                captured.clear()
                selected = model(chunk).gather(1, chunk_targets).sum()
                activation = captured[-1]
                gradient = torch.autograd.grad(selected, activation)[0]
                weights = gradient.mean(dim=(2, 3), keepdim=True)
                cam = F.relu((weights * activation.detach()).sum(dim=1, keepdim=True))
                cam = F.interpolate(cam, size=chunk.shape[-2:], mode="bilinear", align_corners=False)
                maps.append(cam.squeeze(1).clamp_min(0).cpu())
        return torch.cat(maps).float()


@dataclass(frozen=True, kw_only=True)
class IntegratedGradients:
    """Integrated gradients (Sundararajan et al. 2017), midpoint Riemann sum over the straight path.

    attribution = (x - baseline) * mean over alpha of d logit_target / d x at baseline + alpha (x - baseline),
    alpha = (k + 0.5) / steps. The attributions sum to about logit_target(x) - logit_target(baseline).

    Args:
        steps: points on the path.
        baseline: "zero" (a black image) or "mean" (the per-channel dataset mean in `baseline_value`).
        baseline_value: per-channel values in [0, 1], required when baseline == "mean".
        batch_size: forward passes per backward (images times steps).

    Call: ``IntegratedGradients()(model, images, targets)`` returns the (N, H, W) map, |attributions|
    summed over channels; `.attributions(...)` returns the signed (N, C, H, W) attributions.
    """

    steps: int = 32
    baseline: Literal["zero", "mean"] = "zero"
    baseline_value: tuple[float, ...] | None = None
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be positive")
        if self.baseline not in ("zero", "mean"):
            raise ValueError(f'baseline must be "zero" or "mean", got {self.baseline!r}')
        if self.baseline == "mean" and self.baseline_value is None:
            raise ValueError('baseline="mean" needs baseline_value, the per-channel dataset mean')

    def baseline_image(self, model: ClassifierWrapper) -> torch.Tensor:
        """The (1, C, 1, 1) baseline on the model's device, broadcast over the image."""
        channels = model.input_shape[0]
        if self.baseline == "zero":
            return torch.zeros(1, channels, 1, 1, device=model.device)
        return _per_channel(self.baseline_value or (), channels, "baseline_value", model.device)

    def attributions(self, model: ClassifierWrapper, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        images, targets = _checked_inputs(model, images, targets)
        if images.shape[0] == 0:
            return torch.zeros(0, *model.input_shape)
        device = model.device
        baseline = self.baseline_image(model)
        alphas = ((torch.arange(self.steps, dtype=torch.float32, device=device) + 0.5) / self.steps)
        alphas = alphas.view(-1, 1, 1, 1, 1)
        images_per_chunk = max(1, self.batch_size // self.steps)
        chunks = []
        with frozen_eval(model), _gradients_enabled():
            for start in range(0, images.shape[0], images_per_chunk):
                chunk = images[start:start + images_per_chunk].to(device, torch.float32)
                chunk_targets = targets[start:start + images_per_chunk].to(device)
                difference = chunk - baseline
                path = (baseline.unsqueeze(0) + alphas * difference.unsqueeze(0)).reshape(-1, *chunk.shape[1:])
                gradient = _target_logit_gradient(model, path, chunk_targets.repeat(self.steps))
                mean_gradient = gradient.view(self.steps, *chunk.shape).mean(dim=0)
                chunks.append((difference * mean_gradient).cpu())
        return torch.cat(chunks).float()

    def __call__(self, model: ClassifierWrapper, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.attributions(model, images, targets).abs().sum(dim=1)


RoIMethod = Occlusion | GradientSaliency | GradCAM | IntegratedGradients


def make_roi_method(name: RoIMethodName, **options: object) -> RoIMethod:
    """Build a method from its UI/CLI name; `options` override the defaults (e.g. patch_size=6)."""
    if name == "occlusion":
        return Occlusion(**options)  # type: ignore[arg-type]
    if name == "gradient":
        return GradientSaliency(**options)  # type: ignore[arg-type]
    if name == "smoothgrad":
        return GradientSaliency(**{"smoothgrad_samples": 16, "noise_std": 0.1, **options})  # type: ignore[arg-type]
    if name == "gradcam":
        return GradCAM(**options)  # type: ignore[arg-type]
    if name == "integrated_gradients":
        return IntegratedGradients(**options)  # type: ignore[arg-type]
    raise ValueError(f"Unknown RoI method {name!r}; choose one of {', '.join(ROI_METHODS)}")
