"""Region-of-Importance maps, "where the model looks": occlusion, gradients, SmoothGrad, Grad-CAM, integrated gradients.

Each method is a frozen config called with `(model, images, targets)` that returns (N, H, W) non-negative maps.
Patch sizes follow the image size and every forward pass holds at most `batch_size_for` images.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sia_core.attacks.base import check_seed
from sia_core.errors import ConfigError
from sia_core.models.wrapper import ClassifierWrapper, frozen_eval, register_own_thread_hook
from sia_core.registry import Entry, Registry
from sia_core.regions.fills import FILLS
from sia_core.scaling import batch_size_for, scaled_pixels
from sia_core.validation import non_negative, non_negative_int, one_of, optional, positive_int, require

Target = Literal["true", "predicted"] | int


def resolve_targets(model: ClassifierWrapper, images: torch.Tensor, labels: torch.Tensor | None,
                    target: Target) -> torch.Tensor:
    """The (N,) long CPU tensor of classes to explain: true labels, the model's predictions, or one class for all."""
    if isinstance(target, str):
        if target == "true":
            if labels is None:
                raise ValueError('target="true" needs the true labels')
            return labels.detach().to("cpu", torch.long).reshape(-1)
        if target == "predicted":
            return model.logits(images, batch_size=batch_size_for(model.input_shape, 512)).argmax(dim=1)
        raise ConfigError(f'target must be "true", "predicted" or a class index, got {target!r}.')
    # bool is an int subclass; True as a class index is almost surely a bug upstream
    if isinstance(target, bool) or not isinstance(target, int):
        raise ConfigError(f'target must be "true", "predicted" or a class index, got {target!r}.')
    if not 0 <= target < model.num_classes:
        raise ConfigError(f"class index {target} is outside [0, {model.num_classes}).")
    return torch.full((images.shape[0] if images.ndim == 4 else 1,), target, dtype=torch.long)


def conv_layer_names(model: ClassifierWrapper) -> list[str]:
    """Names of every `nn.Conv2d` of the model (e.g. "network.features.0"), in definition order."""
    return [f"network.{name}" for name, module in model.network.named_modules() if isinstance(module, nn.Conv2d)]


def conv_output_sizes(model: ClassifierWrapper) -> dict[str, tuple[int, int]]:
    """(height, width) of each `nn.Conv2d`'s output on one blank input, by name, in the order the forward pass
    runs them (a layer the forward pass never reaches is left out)."""
    convolutions = set(conv_layer_names(model))
    names = {module: name for name, module in model.named_modules() if name in convolutions}
    sizes: dict[str, tuple[int, int]] = {}

    def record(module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        sizes.setdefault(names[module], (int(output.shape[-2]), int(output.shape[-1])))

    handles = [register_own_thread_hook(module, record) for module in names]  # not other threads' passes
    try:
        with frozen_eval(model), torch.inference_mode():
            model(torch.zeros(1, *model.input_shape, device=model.device))
    finally:
        for handle in handles:
            handle.remove()
    return sizes


def default_cam_layer(model: ClassifierWrapper) -> str:
    """Grad-CAM's default layer: the last `nn.Conv2d` the forward pass runs whose output is larger than 1 x 1.

    Works on any architecture (ResNet, VGG, MobileNet, the shipped CNNs); a 1 x 1 map has nothing to localize, which
    happens to the last layers of an ImageNet network on small inputs. Falls back to the last `nn.Conv2d` when every
    output is 1 x 1; raises `ConfigError` when there is no `nn.Conv2d`.
    """
    names = conv_layer_names(model)
    if not names:
        raise ConfigError(f"Grad-CAM needs a convolutional layer; {model.model_id or 'this model'} has none.")
    sizes = conv_output_sizes(model)
    spatial = [name for name, (height, width) in sizes.items() if height * width > 1]
    return spatial[-1] if spatial else names[-1]


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


def _check_fill(field: str, fill: str, value_field: str, value: tuple[float, ...] | None) -> None:
    one_of(field, fill, FILLS.names())
    require(not FILLS[fill].traits.get("needs_channel_mean") or value is not None,
            f'{field}="{fill}" needs {value_field}, the per-channel dataset mean.')


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


# Occlusion runs one forward pass per patch position: all the occluded copies of one image may hold at most this
# many values (49 copies at 3 x 224 x 224, about 2.5 s of ResNet-18 on two CPU cores; the 13-15 positions a side
# of the 4 px patch fit up to about 100 px RGB)
OCCLUSION_BUDGET_ELEMENTS = 49 * 3 * 224 * 224


def _positions(length: int, patch: int, stride: int) -> int:
    return len(_patch_starts(length, min(patch, length), stride))


def occlusion_geometry(image_shape: Sequence[int], patch_size: int | None = None,
                       stride: int | None = None) -> tuple[int, int]:
    """(patch, stride) in pixels for images of `image_shape` ((C, H, W) or (N, C, H, W)).

    Given values are used as they are. Else the patch is 4 px and the stride 2 px up to 32 px images, both scaled
    by min(H, W) / 32 beyond; then, until the grid of positions fits `OCCLUSION_BUDGET_ELEMENTS`, a default stride
    widens up to the patch, and a default patch grows with it. At 224 px: 32 px patches, stride 32, a 7 x 7 grid.
    """
    patch = patch_size if patch_size is not None else scaled_pixels(4, image_shape)
    step = stride if stride is not None else min(scaled_pixels(2, image_shape), patch)
    require(step <= patch, f"stride ({step}) must not exceed patch_size ({patch}), or some pixels would "
                           "never be occluded.")
    if stride is None:
        channels, height, width = (int(v) for v in image_shape[-3:])
        affordable = max(1, OCCLUSION_BUDGET_ELEMENTS // (channels * height * width))
        while _positions(height, patch, step) * _positions(width, patch, step) > affordable:
            if step < patch:
                step += 1
            elif patch_size is None and patch < min(height, width):
                patch = step = patch + 1
            else:
                break
    return patch, step


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
        patch_size: side of the square patch, in pixels; None: 4 px up to 32 px images, scaled beyond
            (`occlusion_geometry`).
        stride: step between patch positions (at most `patch_size`, so every pixel is covered); None: 2 px, scaled.
        fill: a name of `FILLS`: "zero" (black), "mean" (the per-channel dataset mean in `fill_value`) or "blur".
        fill_value: per-channel values in [0, 1], required when fill == "mean".
        batch_size: occluded copies per forward pass, capped by `batch_size_for` on large images.

    Call: ``Occlusion()(model, images, targets)`` with images (N, C, H, W) in [0, 1] and targets (N,);
    returns (N, H, W) float32 on the CPU.
    """

    patch_size: int | None = None
    stride: int | None = None
    fill: str = "zero"
    fill_value: tuple[float, ...] | None = None
    batch_size: int = 512

    def __post_init__(self) -> None:
        optional(positive_int, "patch_size", self.patch_size)
        optional(positive_int, "stride", self.stride)
        positive_int("batch_size", self.batch_size)
        if self.patch_size is not None and self.stride is not None:
            occlusion_geometry((1, 1, 1), self.patch_size, self.stride)
        _check_fill("fill", self.fill, "fill_value", self.fill_value)

    def __call__(self, model: ClassifierWrapper, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        images, targets = _checked_inputs(model, images, targets)
        if images.shape[0] == 0:
            return _empty_maps(images)
        device = model.device
        channels, height, width = model.input_shape
        patch_size, stride = occlusion_geometry(model.input_shape, self.patch_size, self.stride)
        masks = _patch_masks(height, width, patch_size, stride, device)
        num_patches = masks.shape[0]
        flat_masks = masks.view(num_patches, -1).float()
        coverage = flat_masks.sum(dim=0)
        batch_size = batch_size_for(model.input_shape, self.batch_size)
        images_per_chunk = max(1, batch_size // num_patches)
        maps = []
        with frozen_eval(model), torch.inference_mode():
            for start in range(0, images.shape[0], images_per_chunk):
                chunk = images[start:start + images_per_chunk].to(device, torch.float32)
                chunk_targets = targets[start:start + images_per_chunk].to(device).view(-1, 1)
                fill = FILLS.build(self.fill, channel_mean=self.fill_value)(chunk)  # (1 or n, C, 1 or H, 1 or W)
                fill = fill.expand(chunk.shape[0], -1, -1, -1)
                copies = chunk.shape[0] * num_patches  # copy k hides patch k % P of image k // P
                occluded_probs = []
                for i in range(0, copies, batch_size):  # build each batch of occluded copies only when it is needed
                    index = torch.arange(i, min(i + batch_size, copies), device=device)
                    image_index, patch_index = index // num_patches, index % num_patches
                    occluded = torch.where(masks[patch_index].unsqueeze(1), fill[image_index], chunk[image_index])
                    occluded_probs.append(torch.softmax(model(occluded), dim=1))
                occluded_probs = torch.cat(occluded_probs)
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
        batch_size: forward passes per backward (images times samples), capped by `batch_size_for`.

    Call: ``GradientSaliency()(model, images, targets)``; returns (N, H, W) float32 on the CPU.
    """

    smoothgrad_samples: int = 0
    noise_std: float = 0.1
    seed: int = 0
    batch_size: int = 256

    def __post_init__(self) -> None:
        non_negative_int("smoothgrad_samples", self.smoothgrad_samples)
        non_negative("noise_std", self.noise_std)
        check_seed("seed", self.seed)
        positive_int("batch_size", self.batch_size)

    def __call__(self, model: ClassifierWrapper, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        images, targets = _checked_inputs(model, images, targets)
        if images.shape[0] == 0:
            return _empty_maps(images)
        device = model.device
        samples = max(1, self.smoothgrad_samples)
        batch_size = batch_size_for(model.input_shape, self.batch_size)
        images_per_chunk = max(1, batch_size // samples)
        samples_per_pass = min(samples, batch_size)  # below `samples` only on large images
        generator = torch.Generator().manual_seed(self.seed)
        maps = []
        with frozen_eval(model), _gradients_enabled():
            for start in range(0, images.shape[0], images_per_chunk):
                chunk = images[start:start + images_per_chunk].to(device, torch.float32)
                chunk_targets = targets[start:start + images_per_chunk].to(device)
                saliency = []  # (count, n, H, W) per pass; one pass unless the images are large
                for first in range(0, samples, samples_per_pass):
                    count = min(samples_per_pass, samples - first)
                    # (S, n, C, H, W) noisy copies, sample-major so that repeat_interleave is not needed for targets
                    inputs = chunk.unsqueeze(0).expand(count, *chunk.shape)
                    if self.smoothgrad_samples > 0:
                        noise = torch.randn(inputs.shape, generator=generator) * self.noise_std
                        inputs = inputs + noise.to(device)
                    gradient = _target_logit_gradient(model, inputs.reshape(-1, *chunk.shape[1:]),
                                                      chunk_targets.repeat(count))
                    saliency.append(gradient.abs().amax(dim=1).view(count, chunk.shape[0], *chunk.shape[2:]))
                maps.append(torch.cat(saliency).mean(dim=0).cpu())
        return torch.cat(maps).float()


@contextlib.contextmanager
def _captured_activation(module: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Within the block, each forward of `module` in this thread appends its output as a leaf we can differentiate
    against (the passes of other threads sharing the model go through untouched)."""
    captured: list[torch.Tensor] = []

    def keep(_module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        # a fresh leaf: parameters are frozen, so the output would otherwise carry no graph
        activation = output.detach().requires_grad_(True)
        captured.append(activation)
        return activation.clone()  # an in-place op downstream (ReLU(inplace=True)) must not touch the leaf

    handle = register_own_thread_hook(module, keep)  # other threads' passes keep their outputs and graphs
    try:
        yield captured
    finally:
        handle.remove()


@dataclass(frozen=True, kw_only=True)
class GradCAM:
    """Grad-CAM (Selvaraju et al. 2017): ReLU(sum_k alpha_k A^k), alpha_k = spatial mean of d logit_target / d A^k.

    A^k are the feature maps of one convolutional layer; the coarse map is upsampled bilinearly to the image.

    Args:
        layer: a name from `conv_layer_names(model)`; None picks `default_cam_layer(model)`, the last `nn.Conv2d`
            whose output is larger than 1 x 1. `resolve_layer(model)` says which layer a call uses.
        batch_size: images per forward pass, capped by `batch_size_for` on large images.

    Call: ``GradCAM()(model, images, targets)``; returns (N, H, W) float32 on the CPU.
    """

    layer: str | None = None
    batch_size: int = 256

    def __post_init__(self) -> None:
        require(self.layer is None or (isinstance(self.layer, str) and bool(self.layer)),
                f"layer must be a layer name or None, got {self.layer!r}.")
        positive_int("batch_size", self.batch_size)

    def resolve_layer(self, model: ClassifierWrapper) -> str:
        """The name of the layer a call on `model` explains: `layer`, or `default_cam_layer(model)`."""
        names = conv_layer_names(model)
        if not names:
            raise ConfigError(f"Grad-CAM needs a convolutional layer; {model.model_id or 'this model'} has none.")
        if self.layer is None:
            return default_cam_layer(model)
        if self.layer not in names:
            raise ConfigError(f"Unknown layer {self.layer!r}; available convolutional layers: {', '.join(names)}.")
        return self.layer

    def __call__(self, model: ClassifierWrapper, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        images, targets = _checked_inputs(model, images, targets)
        module = dict(model.named_modules())[self.resolve_layer(model)]
        if images.shape[0] == 0:
            return _empty_maps(images)
        device = model.device
        batch_size = batch_size_for(model.input_shape, self.batch_size)
        maps = []
        with frozen_eval(model), _gradients_enabled(), _captured_activation(module) as captured:
            for start in range(0, images.shape[0], batch_size):
                chunk = images[start:start + batch_size].to(device, torch.float32)
                chunk_targets = targets[start:start + batch_size].to(device).view(-1, 1)
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
        baseline: a name of `FILLS`: "zero" (a black image), "mean" (the per-channel dataset mean in
            `baseline_value`) or "blur" (a blurred copy of each image).
        baseline_value: per-channel values in [0, 1], required when baseline == "mean".
        batch_size: forward passes per backward (images times steps), capped by `batch_size_for`; on large
            images the path of one image is split over several passes.

    Call: ``IntegratedGradients()(model, images, targets)`` returns the (N, H, W) map, |attributions|
    summed over channels; `.attributions(...)` returns the signed (N, C, H, W) attributions.
    """

    steps: int = 32
    baseline: str = "zero"
    baseline_value: tuple[float, ...] | None = None
    batch_size: int = 256

    def __post_init__(self) -> None:
        positive_int("steps", self.steps)
        _check_fill("baseline", self.baseline, "baseline_value", self.baseline_value)
        positive_int("batch_size", self.batch_size)

    def baseline_images(self, images: torch.Tensor) -> torch.Tensor:
        """The baseline of each image, on the images' device: (1, C, 1, 1) for a constant one, else (N, C, H, W)."""
        return FILLS.build(self.baseline, channel_mean=self.baseline_value)(images)

    def attributions(self, model: ClassifierWrapper, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        images, targets = _checked_inputs(model, images, targets)
        if images.shape[0] == 0:
            return torch.zeros(0, *model.input_shape)
        device = model.device
        alphas = ((torch.arange(self.steps, dtype=torch.float32, device=device) + 0.5) / self.steps)
        alphas = alphas.view(-1, 1, 1, 1, 1)
        batch_size = batch_size_for(model.input_shape, self.batch_size)
        images_per_chunk = max(1, batch_size // self.steps)
        steps_per_pass = min(self.steps, batch_size)  # below `steps` only on large images
        chunks = []
        with frozen_eval(model), _gradients_enabled():
            for start in range(0, images.shape[0], images_per_chunk):
                chunk = images[start:start + images_per_chunk].to(device, torch.float32)
                chunk_targets = targets[start:start + images_per_chunk].to(device)
                baseline = self.baseline_images(chunk)
                difference = chunk - baseline
                gradient = []  # (steps, n, C, H, W) in passes of at most `batch_size` images
                for first in range(0, self.steps, steps_per_pass):
                    part = alphas[first:first + steps_per_pass]
                    path = (baseline.unsqueeze(0) + part * difference.unsqueeze(0)).reshape(-1, *chunk.shape[1:])
                    gradient.append(_target_logit_gradient(model, path, chunk_targets.repeat(part.shape[0]))
                                    .view(part.shape[0], *chunk.shape))
                mean_gradient = torch.cat(gradient).mean(dim=0)
                chunks.append((difference * mean_gradient).cpu())
        return torch.cat(chunks).float()

    def __call__(self, model: ClassifierWrapper, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.attributions(model, images, targets).abs().sum(dim=1)


RoIMethod = Occlusion | GradientSaliency | GradCAM | IntegratedGradients

# `ROI_METHODS.build("smoothgrad", seed=3)`: the UI and CLI name, its defaults overridden by the options
ROI_METHODS: Registry[RoIMethod] = Registry("RoI method", [
    Entry("occlusion", "Occlusion",
          "Occlusion: grey out a small square at every position and see how much the model's confidence in the "
          "class drops; big drops mark the regions the decision relies on.", Occlusion),
    Entry("gradient", "Gradient",
          "Gradient: how strongly each pixel, nudged a tiny bit, would change the class score.", GradientSaliency),
    Entry("smoothgrad", "SmoothGrad",
          "SmoothGrad: the gradient map averaged over many slightly noisy copies of the image, which removes "
          "speckle and keeps the pixels that matter consistently.", GradientSaliency,
          defaults={"smoothgrad_samples": 16, "noise_std": 0.1}),
    Entry("gradcam", "Grad-CAM",
          "Grad-CAM: which parts of the last convolutional layer's feature maps push the class score up, shown as "
          "a coarse heat map stretched to the image size.", GradCAM, traits={"needs_conv_layer": True}),
    Entry("integrated_gradients", "Integrated gradients",
          "Integrated gradients: fade the image in from a blank baseline and add up how much each pixel "
          "contributed to the class score along the way.", IntegratedGradients),
])
