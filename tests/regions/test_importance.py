"""Tests for sia_core.regions.importance: known-answer maps on hand-built models, completeness, state hygiene.

The hand-built models make the truth analytic: a linear model that reads one patch, a conv net that reads one quadrant.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sia_core.errors import ConfigError
from sia_core.models.architectures import SplitClassifier
from sia_core.models.wrapper import ClassifierWrapper
from sia_core.regions.fills import FILLS
from sia_core.regions.importance import (ROI_METHODS, GradCAM, GradientSaliency, IntegratedGradients, Occlusion,
                                         conv_layer_names, resolve_targets)
from tests.conftest import linear_wrapper, make_wrapper

PATCH_ROWS, PATCH_COLS = slice(2, 6), slice(6, 10)


def _patch_model() -> ClassifierWrapper:
    """Two classes on 1x12x12 images that read only the 4x4 patch at rows 2..5, cols 6..9, with opposite weights."""
    generator = torch.Generator().manual_seed(0)
    weight_image = torch.zeros(12, 12)
    weight_image[PATCH_ROWS, PATCH_COLS] = torch.rand(4, 4, generator=generator) + 0.5
    weight = torch.stack([weight_image.flatten(), -weight_image.flatten()])
    return linear_wrapper(weight, torch.zeros(2), (1, 12, 12))


def _patch_images(count: int = 3) -> torch.Tensor:
    return 0.2 + 0.8 * torch.rand(count, 1, 12, 12, generator=torch.Generator().manual_seed(1))


def _inside_patch() -> torch.Tensor:
    mask = torch.zeros(12, 12, dtype=torch.bool)
    mask[PATCH_ROWS, PATCH_COLS] = True
    return mask


def _occlusion_support(size: int, patch: int, stride: int, inside: torch.Tensor) -> torch.Tensor:
    """Pixels covered by at least one occluding patch that overlaps `inside` (written independently of the engine)."""
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    support = torch.zeros(size, size, dtype=torch.bool)
    for top in starts:
        for left in starts:
            if inside[top:top + patch, left:left + patch].any():
                support[top:top + patch, left:left + patch] = True
    return support


def test_gradient_saliency_is_the_weight_magnitude_inside_the_patch_and_zero_outside() -> None:
    model, images = _patch_model(), _patch_images()
    maps = GradientSaliency()(model, images, torch.tensor([0, 1, 0]))
    inside = _inside_patch()
    expected = model.head.weight[0].detach().abs().view(12, 12)
    assert torch.all(maps[:, ~inside] == 0)
    assert torch.all(maps[:, inside] > 0)
    torch.testing.assert_close(maps, expected.expand_as(maps))


def test_occlusion_puts_its_mass_where_patches_overlap_the_read_patch() -> None:
    model, images = _patch_model(), _patch_images()
    method = Occlusion(patch_size=4, stride=2)
    maps = method(model, images, torch.zeros(3, dtype=torch.long))
    inside = _inside_patch()
    support = _occlusion_support(12, 4, 2, inside)
    assert not support.all()  # the check below must exclude something
    total = maps.flatten(1).sum(1)
    assert torch.all(total > 0)
    assert torch.all(maps[:, ~support].flatten(1).sum(1) <= 1e-6 * total)
    peak = maps.flatten(1).argmax(1)
    assert torch.all(inside.flatten()[peak])


def test_occlusion_covers_the_last_row_and_column_when_the_stride_skips_them() -> None:
    # 13 pixels, patch 4, stride 3: starts 0, 3, 6, 9 end at 12; the final start 9 must be added
    weight_image = torch.zeros(13, 13)
    weight_image[12, 12] = 1.0
    model = linear_wrapper(torch.stack([weight_image.flatten(), -weight_image.flatten()]), torch.zeros(2), (1, 13, 13))
    maps = Occlusion(patch_size=4, stride=3)(model, torch.ones(1, 1, 13, 13), torch.tensor([0]))
    assert maps[0, 12, 12] > 0
    assert torch.isfinite(maps).all()


def test_occlusion_mean_fill_needs_values_and_uses_them() -> None:
    with pytest.raises(ConfigError, match="fill_value"):
        Occlusion(fill="mean")
    model, images = _patch_model(), _patch_images(1)
    with pytest.raises(ConfigError, match="one per channel"):
        Occlusion(fill="mean", fill_value=(0.5, 0.5))(model, images, torch.tensor([0]))
    # filling with the image's own constant value changes nothing, so the map is zero
    flat = torch.full((1, 1, 12, 12), 0.3)
    maps = Occlusion(fill="mean", fill_value=(0.3,))(model, flat, torch.tensor([0]))
    assert torch.all(maps == 0)
    with pytest.raises(ConfigError, match="stride"):
        Occlusion(patch_size=2, stride=3)


def test_blur_fill_and_baseline_follow_the_image() -> None:
    model, flat = _patch_model(), torch.full((1, 1, 12, 12), 0.3)
    # a constant image is its own blur: hiding a patch behind its blur changes nothing
    assert Occlusion(fill="blur")(model, flat, torch.tensor([0])).abs().max() < 1e-6
    assert IntegratedGradients(steps=4, baseline="blur").attributions(model, flat, torch.tensor([0])).abs().max() < 1e-6
    # on a convex ramp the blur brightens the patch, which lowers class 1 (it reads the patch with negative weights)
    ramp = torch.linspace(0, 1, 144).view(1, 1, 12, 12) ** 2
    assert Occlusion(fill="blur")(model, ramp, torch.tensor([1]))[0, _inside_patch()].sum() > 0


def test_integrated_gradients_on_a_linear_model_is_input_times_weight() -> None:
    model, images = _patch_model(), _patch_images()
    method = IntegratedGradients(steps=8)
    attributions = method.attributions(model, images, torch.tensor([0, 1, 0]))
    signs = torch.tensor([1.0, -1.0, 1.0]).view(3, 1, 1, 1)
    expected = images * model.head.weight[0].detach().view(1, 1, 12, 12) * signs
    torch.testing.assert_close(attributions, expected)
    maps = method(model, images, torch.tensor([0, 1, 0]))
    assert torch.all(maps[:, ~_inside_patch()] == 0)
    assert torch.all(maps[:, _inside_patch()] > 0)


@pytest.mark.parametrize("baseline", ["zero", "mean", "blur"])
def test_integrated_gradients_completeness(baseline: str) -> None:
    model = make_wrapper(channels=3, size=8, classes=4, seed=3)
    images = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    method = IntegratedGradients(steps=64, baseline=baseline,  # type: ignore[arg-type]
                                 baseline_value=(0.3, 0.4, 0.5) if baseline == "mean" else None)
    baseline_images = method.baseline_images(images).expand_as(images)
    all_differences = model.logits(images) - model.logits(baseline_images)
    # explain the class that moves most, so that a 2% relative tolerance is meaningful
    targets = all_differences.abs().argmax(1)
    difference = all_differences.gather(1, targets.view(-1, 1)).squeeze(1)
    summed = method.attributions(model, images, targets).flatten(1).sum(1)
    assert difference.abs().min() > 0.05
    torch.testing.assert_close(summed, difference, rtol=0.02, atol=1e-3)


def _quadrant_model(channel: int, quadrant: tuple[slice, slice]) -> ClassifierWrapper:
    """A one-conv net on 2x16x16 images whose logit 0 reads only conv channel `channel`, only inside `quadrant`.

    The conv blurs each image channel on its own, so conv channel c lights up where image channel c is bright.
    """
    conv = nn.Conv2d(2, 2, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0] = conv.weight[1, 1] = 1 / 9
    features = nn.Sequential(conv, nn.ReLU(), nn.Flatten())
    read = torch.zeros(2, 16, 16)
    read[channel][quadrant] = 1.0
    head = nn.Linear(2 * 16 * 16, 2)
    with torch.no_grad():
        head.weight.copy_(torch.stack([read.flatten(), -read.flatten()]))
        head.bias.zero_()
    return ClassifierWrapper(SplitClassifier(features, head), mean=[0.0, 0.0], std=[1.0, 1.0],
                             input_shape=(2, 16, 16), class_names=["reads", "other"], model_id="quadrant").eval()


TOP_LEFT, BOTTOM_RIGHT = (slice(0, 8), slice(0, 8)), (slice(8, 16), slice(8, 16))


def _two_squares() -> torch.Tensor:
    """A bright square in channel 0 inside the top-left quadrant and one in channel 1 inside the bottom-right."""
    image = torch.zeros(1, 2, 16, 16)
    image[0, 0, 2:6, 2:6] = 1.0
    image[0, 1, 10:14, 10:14] = 1.0
    return image


@pytest.mark.parametrize("channel, quadrant", [(0, TOP_LEFT), (1, BOTTOM_RIGHT)])
def test_gradcam_concentrates_on_the_quadrant_the_logit_reads(channel: int, quadrant: tuple[slice, slice]) -> None:
    model = _quadrant_model(channel, quadrant)
    cam = GradCAM()(model, _two_squares(), torch.tensor([0]))[0]
    assert cam.sum() > 0
    assert cam[quadrant].sum() > 0.99 * cam.sum()
    # the other class is pushed down by the same evidence: nothing argues for it, so its map is empty
    assert GradCAM()(model, _two_squares(), torch.tensor([1])).sum() == 0


def test_conv_layer_names_of_the_shipped_architectures() -> None:
    assert conv_layer_names(make_wrapper(size=28, architecture="tiny-cnn")) == ["network.features.0",
                                                                                "network.features.2"]
    assert conv_layer_names(make_wrapper(size=8, architecture="small-cnn")) == [
        "network.features.0", "network.features.2", "network.features.5", "network.features.7"]
    assert conv_layer_names(make_wrapper(size=8, architecture="mlp")) == []


def test_gradcam_layer_choice_and_errors() -> None:
    model = make_wrapper(size=28, architecture="tiny-cnn", seed=1)
    images = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([0, 1])
    default = GradCAM()(model, images, targets)
    torch.testing.assert_close(GradCAM(layer="network.features.2")(model, images, targets), default)
    first = GradCAM(layer="network.features.0")(model, images, targets)
    assert first.shape == default.shape and not torch.allclose(first, default)
    with pytest.raises(ConfigError, match="network.features.0, network.features.2"):
        GradCAM(layer="features.9")(model, images, targets)
    with pytest.raises(ConfigError, match="convolutional"):
        GradCAM()(make_wrapper(size=8), torch.rand(1, 1, 8, 8), torch.tensor([0]))


def test_resolve_targets() -> None:
    model = make_wrapper()
    images = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([3, 2, 1, 0, 3])
    assert torch.equal(resolve_targets(model, images, labels, "true"), labels)
    assert torch.equal(resolve_targets(model, images, None, "predicted"), model.logits(images).argmax(1))
    fixed = resolve_targets(model, images, None, 2)
    assert fixed.dtype == torch.long and torch.equal(fixed, torch.full((5,), 2))
    with pytest.raises(ValueError, match="labels"):
        resolve_targets(model, images, None, "true")
    for bad in (4, -1):
        with pytest.raises(ConfigError, match="outside"):
            resolve_targets(model, images, labels, bad)
    for bad_name in ("best", True):
        with pytest.raises(ConfigError, match="predicted"):
            resolve_targets(model, images, labels, bad_name)  # type: ignore[arg-type]


def test_the_registry_builds_every_method_with_its_defaults() -> None:
    assert ROI_METHODS.names() == ("occlusion", "gradient", "smoothgrad", "gradcam", "integrated_gradients")
    assert all(entry.label and entry.description for entry in ROI_METHODS)
    assert ROI_METHODS.build("smoothgrad") == GradientSaliency(smoothgrad_samples=16, noise_std=0.1)
    assert ROI_METHODS.build("smoothgrad", smoothgrad_samples=4, seed=3) == GradientSaliency(
        smoothgrad_samples=4, noise_std=0.1, seed=3)
    assert ROI_METHODS.build("occlusion", patch_size=6) == Occlusion(patch_size=6)
    assert ROI_METHODS.build("gradient") == GradientSaliency()
    assert ROI_METHODS.build("gradcam") == GradCAM()
    assert ROI_METHODS.build("integrated_gradients") == IntegratedGradients()
    with pytest.raises(ConfigError, match="occlusion"):
        ROI_METHODS.build("lime")


BAD_CONFIGS = [
    (Occlusion, {"patch_size": 0}), (Occlusion, {"patch_size": 2.5}), (Occlusion, {"stride": 0}),
    (Occlusion, {"stride": -1}), (Occlusion, {"patch_size": 2, "stride": 3}), (Occlusion, {"fill": "purple"}),
    (Occlusion, {"fill": "mean"}), (Occlusion, {"batch_size": 0}),
    (GradientSaliency, {"smoothgrad_samples": -1}), (GradientSaliency, {"noise_std": -0.1}),
    (GradientSaliency, {"noise_std": float("nan")}), (GradientSaliency, {"batch_size": 0}),
    (GradientSaliency, {"seed": 1.5}),
    (GradCAM, {"batch_size": 0}), (GradCAM, {"layer": ""}),
    (IntegratedGradients, {"steps": 0}), (IntegratedGradients, {"steps": -4}),
    (IntegratedGradients, {"baseline": "noise"}), (IntegratedGradients, {"baseline": "mean"}),
    (IntegratedGradients, {"batch_size": 0}),
]


@pytest.mark.parametrize("config, options", BAD_CONFIGS, ids=lambda value: str(value))
def test_configs_refuse_bad_values(config: type, options: dict) -> None:
    with pytest.raises(ConfigError):
        config(**options)


@pytest.mark.parametrize("fill", FILLS.names())
def test_every_fill_occludes_only_where_its_patches_meet_the_read_patch(fill: str) -> None:
    value = (0.5,) if FILLS[fill].traits.get("needs_channel_mean") else None
    model, images = _patch_model(), _patch_images()
    method = Occlusion(patch_size=4, stride=2, fill=fill, fill_value=value)
    # the two classes read the patch with opposite signs, and the map keeps score drops: one of them sees each fill
    maps = torch.stack([method(model, images, torch.full((3,), label)) for label in (0, 1)])
    support = _occlusion_support(12, 4, 2, _inside_patch())
    assert torch.all(maps.sum(0).flatten(1).sum(1) > 0)
    assert torch.all(maps[:, :, ~support] == 0)
    # a linear model's integrated gradients are (input − baseline) × weight: zero wherever it reads nothing
    attributions = IntegratedGradients(baseline=fill, baseline_value=value, steps=4)(model, images, torch.zeros(
        3, dtype=torch.long))
    assert torch.all(attributions[:, ~_inside_patch()] == 0)


METHODS = [Occlusion(), GradientSaliency(), GradientSaliency(smoothgrad_samples=4), GradCAM(),
           IntegratedGradients(steps=8)]


@pytest.mark.parametrize("method", METHODS, ids=lambda m: type(m).__name__)
@pytest.mark.parametrize("channels, size", [(1, 28), (3, 32)])
def test_every_method_returns_clean_maps_and_leaves_the_model_as_found(method: object, channels: int,
                                                                       size: int) -> None:
    model = make_wrapper(channels=channels, size=size, classes=10, architecture="tiny-cnn", seed=2).train()
    frozen = model.network.head.bias
    frozen.requires_grad_(False)
    images = torch.rand(3, channels, size, size, generator=torch.Generator().manual_seed(0))
    maps = method(model, images, torch.tensor([0, 5, 9]))  # type: ignore[operator]
    assert maps.shape == (3, size, size)
    assert maps.dtype == torch.float32 and maps.device.type == "cpu"
    assert torch.isfinite(maps).all() and (maps >= 0).all() and maps.sum() > 0
    assert model.training
    assert all(p.requires_grad == (p is not frozen) for p in model.parameters())
    for module in model.modules():
        assert not module._forward_hooks and not module._backward_hooks and not module._forward_pre_hooks


def test_methods_batch_consistently_and_reject_bad_targets() -> None:
    model = make_wrapper(size=28, classes=10, architecture="tiny-cnn", seed=4)
    images = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([1, 2, 3, 4, 5])
    for small, large in [(Occlusion(batch_size=100), Occlusion()), (GradCAM(batch_size=2), GradCAM()),
                         (IntegratedGradients(steps=4, batch_size=4), IntegratedGradients(steps=4))]:
        torch.testing.assert_close(small(model, images, targets), large(model, images, targets))
    with pytest.raises(ValueError, match="one target per image"):
        Occlusion()(model, images, targets[:3])
    with pytest.raises(ValueError, match="targets"):
        GradientSaliency()(model, images, torch.tensor([0, 1, 2, 3, 10]))


def test_smoothgrad_is_seeded_and_differs_from_the_plain_gradient() -> None:
    model = make_wrapper(size=28, classes=10, architecture="tiny-cnn", seed=5)
    images = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([3, 7])
    smooth = GradientSaliency(smoothgrad_samples=8, seed=11)
    first, second = smooth(model, images, targets), smooth(model, images, targets)
    assert torch.equal(first, second)
    assert not torch.allclose(first, GradientSaliency()(model, images, targets))
    assert not torch.allclose(first, GradientSaliency(smoothgrad_samples=8, seed=12)(model, images, targets))


def test_gradients_work_inside_inference_mode() -> None:
    # a display path may call the engine under inference_mode; input gradients must still flow
    model, images = _patch_model(), _patch_images(1)
    with torch.inference_mode():
        maps = GradientSaliency()(model, images, torch.tensor([0]))
    assert maps[0, _inside_patch()].min() > 0
