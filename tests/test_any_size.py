"""Every lens on any image size: pixel ranges and patches that scale with the image (identical up to 32 px), bounded
batches at 224 px, Grad-CAM's layer on an unknown architecture, and the lenses end to end on a torchvision ResNet-18."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch import nn

from sia_core.attacks import PGD, DeepFool, SemanticAttack
from sia_core.data.base import ImageDataset
from sia_core.diagnosis import DiagnosisConfig, diagnose
from sia_core.evaluation import evaluate
from sia_core.figures import display_upscale, probability_bars
from sia_core.margins import InputMarginEstimator, margin_scores
from sia_core.margins.input_margins import FULL_SEARCH, LARGE_IMAGE_SEARCH
from sia_core.models.user_models import HeadSplit
from sia_core.models.wrapper import ClassifierWrapper
from sia_core.regions.attack_maps import EffectWeightedMap, LocalizedAttackMap
from sia_core.regions.fills import FILLS
from sia_core.regions.importance import (OCCLUSION_BUDGET_ELEMENTS, GradCAM, GradientSaliency, IntegratedGradients,
                                         Occlusion, default_cam_layer, occlusion_geometry)
from sia_core.regions.panel import region_panel
from sia_core.scaling import DEFAULT_BUDGET_ELEMENTS, batch_size_for, pixel_scale, scaled_pixels
from sia_core.semantics import (ATTRIBUTES, applicable_attributes, apply_attributes, attribute_range, attributes_for,
                                neutral_params)
from tests.conftest import linear_wrapper

RGB_224 = (3, 224, 224)
PIXEL_ATTRIBUTES = {"translate_x", "translate_y", "blur"}


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _linear_224(classes: int = 2, seed: int = 0) -> ClassifierWrapper:
    """A linear classifier on raw 3x224x224 pixels: cheap, and its gradients and margins are known in closed form."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(classes, math.prod(RGB_224), generator=generator) * 0.01
    return linear_wrapper(weight, torch.zeros(classes), RGB_224)


def _resnet18(size: int, classes: int = 10) -> ClassifierWrapper:
    """A user's torchvision ResNet-18 (random weights) behind the head split, as `--torchvision resnet18` builds it."""
    torch.manual_seed(0)
    network = HeadSplit(torchvision.models.resnet18(weights=None, num_classes=classes), "fc")
    return ClassifierWrapper(network, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                             input_shape=(3, size, size), class_names=tuple(f"c{i}" for i in range(classes)),
                             model_id="torchvision:resnet18").eval()


@pytest.fixture(scope="module")
def resnet64() -> ClassifierWrapper:
    return _resnet18(64)


class _LargestBatch:
    """Records the largest batch the model's head sees (a forward hook), to check that loops stay within budget."""

    def __init__(self, model: ClassifierWrapper) -> None:
        self.largest = 0
        self.handle = model.head.register_forward_hook(self._see)

    def _see(self, _module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
        self.largest = max(self.largest, inputs[0].shape[0])


# ----------------------------------------------------------------------------- the two scaling rules


def test_batch_size_rule_is_the_identity_up_to_32px_and_bounds_memory_beyond() -> None:
    for shape in [(1, 28, 28), (3, 32, 32), (1, 8, 8)]:
        for default in (1, 128, 256, 500, 512, 784):
            assert batch_size_for(shape, default) == default
    assert batch_size_for(RGB_224, 512) == 16 and batch_size_for((7,) + RGB_224, 512) == 16  # (N, C, H, W) too
    assert batch_size_for(RGB_224, 4) == 4  # never more than asked
    assert batch_size_for((3, 4096, 4096), 512) == 1  # never fewer than one
    for size in (28, 32, 64, 100, 224, 299, 512):
        shape = (3, size, size)
        batch = batch_size_for(shape, 10_000)
        assert batch == 1 or batch * math.prod(shape) <= DEFAULT_BUDGET_ELEMENTS
    with pytest.raises(ValueError):
        batch_size_for(RGB_224, 0)
    with pytest.raises(ValueError):
        batch_size_for((224, 224), 16)


def test_pixel_lengths_scale_with_the_shorter_side_from_32px() -> None:
    assert [pixel_scale((1, s, s)) for s in (8, 28, 32, 64, 224)] == [1.0, 1.0, 1.0, 2.0, 7.0]
    assert pixel_scale((3, 224, 32)) == 1.0  # the shorter side decides
    assert scaled_pixels(4, (1, 28, 28)) == 4 and scaled_pixels(4, RGB_224) == 28 and scaled_pixels(2, RGB_224) == 14


# ----------------------------------------------------------------------------- attributes


def test_attribute_ranges_are_unchanged_at_28_and_32px_and_scale_beyond() -> None:
    for shape in [(1, 28, 28), (3, 32, 32)]:
        fitted = attributes_for(shape)
        assert fitted == applicable_attributes(shape[0])
        assert all(attribute is ATTRIBUTES[attribute.name] for attribute in fitted)
    fitted = {a.name: a for a in attributes_for(RGB_224)}
    assert list(fitted) == [a.name for a in applicable_attributes(3)]
    for name, attribute in fitted.items():
        base = ATTRIBUTES[name]
        factor = 7.0 if name in PIXEL_ATTRIBUTES else 1.0
        assert (attribute.low, attribute.high, attribute.step) == pytest.approx(
            (base.low * factor, base.high * factor, base.step * factor))
        assert attribute.neutral == base.neutral and attribute.in_pixels == (name in PIXEL_ATTRIBUTES)
    assert attribute_range("translate_x", RGB_224) == (-21.0, 21.0)
    assert attribute_range("blur", (5, 1, 64, 64)) == pytest.approx((0.0, 2.4))
    assert attribute_range("rotation", RGB_224) == (-20.0, 20.0)
    assert [a.name for a in attributes_for((1, 64, 64))] == [a.name for a in applicable_attributes(1)]
    with pytest.raises(ValueError, match="unknown attribute"):
        attribute_range("sharpness", RGB_224)


@pytest.mark.parametrize("shape", [(2, 3, 224, 224), (2, 1, 64, 64)], ids=["rgb224", "gray64"])
def test_every_attribute_applies_at_its_scaled_bounds_and_is_the_identity_at_neutral(shape) -> None:
    images = _rand(*shape)
    for attribute in attributes_for(shape):
        for value in (attribute.low, attribute.high):
            out = apply_attributes(images, {attribute.name: value})
            assert out.shape == images.shape and out.dtype == images.dtype
            assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
            if value != attribute.neutral:
                assert not torch.equal(out, images), attribute.name
    names = [a.name for a in attributes_for(shape)]
    assert torch.equal(apply_attributes(images, neutral_params(names, shape[0])), images)


@pytest.mark.parametrize("axis, name", [(3, "translate_x"), (2, "translate_y")])
def test_the_largest_shift_moves_content_by_21_pixels_at_224px(axis: int, name: str) -> None:
    # a smooth ramp along the axis: a shift by s px moves the value at pixel i to pixel i + s
    ramp = torch.linspace(0, 1, 224)
    images = (ramp.view(1, 1, 1, 224) if axis == 3 else ramp.view(1, 1, 224, 1)).expand(1, 3, 224, 224).contiguous()
    shift = attribute_range(name, RGB_224)[1]
    assert shift == 21.0
    moved = apply_attributes(images, {name: shift})
    torch.testing.assert_close(moved.narrow(axis, 21, 224 - 21), images.narrow(axis, 0, 224 - 21), atol=1e-4, rtol=0)
    # before the shifted content, the border value is repeated
    border = images.narrow(axis, 0, 1).expand_as(moved.narrow(axis, 0, 21))
    torch.testing.assert_close(moved.narrow(axis, 0, 21), border, atol=1e-4, rtol=0)


def _impulse_spread(size: int, sigma: float) -> float:
    """The standard deviation (px) of a blurred single bright pixel in the middle of a 1 x size x size image."""
    impulse = torch.zeros(1, 1, size, size)
    impulse[0, 0, size // 2, size // 2] = 1.0
    row = apply_attributes(impulse, {"blur": sigma})[0, 0, size // 2]
    positions = torch.arange(size, dtype=torch.float32) - size // 2
    return float(((row / row.sum()) * positions ** 2).sum().sqrt())


def test_the_widest_blur_spreads_the_same_share_of_the_image_at_32_and_224px() -> None:
    # the kernel radius grows with sigma, so the 7x wider sigma is not truncated more than at 32 px
    small = _impulse_spread(32, attribute_range("blur", (1, 32, 32))[1])
    large = _impulse_spread(224, attribute_range("blur", (1, 224, 224))[1])
    assert small == pytest.approx(1.2, rel=0.1) and large == pytest.approx(8.4, rel=0.1)
    assert large / small == pytest.approx(7.0, rel=0.04)  # the 7-tap kernel at 32 px is a coarser sampling


def test_a_preview_under_inference_mode_does_not_break_a_later_attack() -> None:
    # the explore page previews sliders under inference_mode, then runs the attack: cached constants must survive it
    images = _rand(1, 3, 48, 48, seed=3)
    with torch.inference_mode():
        apply_attributes(images, {"contrast": 0.2, "hue": 0.3, "saturation": 0.1, "blur": 1.0})
    value = torch.tensor([0.2], requires_grad=True)
    apply_attributes(images, {"contrast": value, "hue": value, "saturation": value, "blur": value}).sum().backward()
    assert value.grad is not None and torch.isfinite(value.grad).all()


# ----------------------------------------------------------------------------- regions


def test_occlusion_and_localized_patches_scale_and_keep_their_28_and_32px_values() -> None:
    assert occlusion_geometry((1, 28, 28)) == (4, 2) and occlusion_geometry((3, 32, 32)) == (4, 2)
    assert occlusion_geometry((3, 64, 64)) == (8, 4)
    assert occlusion_geometry((3, 224, 224)) == (32, 32)  # 28 and 14 px scaled, then coarsened to a 7 x 7 grid
    for shape in [(3, 64, 64), (3, 112, 112), (1, 224, 224), (3, 224, 224), (3, 299, 299)]:
        patch, stride = occlusion_geometry(shape)
        assert patch >= scaled_pixels(4, shape) and stride <= patch
        positions = len(range(0, shape[1] - patch + 1, stride)) + ((shape[1] - patch) % stride != 0)
        assert positions ** 2 * math.prod(shape) <= OCCLUSION_BUDGET_ELEMENTS, shape
    assert occlusion_geometry(RGB_224, 6, 3) == (6, 3)  # given values are used as they are
    assert occlusion_geometry(RGB_224, patch_size=28) == (28, 28)  # a given patch only widens the stride
    assert LocalizedAttackMap().patch_masks(28, 28).shape == (49, 28, 28)
    assert LocalizedAttackMap().patch_masks(224, 224).shape == (64, 224, 224)
    assert LocalizedAttackMap().patch_masks(224, 224)[0].sum() == 28 * 28


def test_blur_fill_widens_with_the_image_and_keeps_a_constant_image_constant() -> None:
    blur = FILLS.build("blur")
    flat = torch.full((1, 3, 224, 224), 0.4)
    torch.testing.assert_close(blur(flat), flat)
    impulse = torch.zeros(1, 1, 224, 224)
    impulse[0, 0, 112, 112] = 1.0
    assert int((blur(impulse)[0, 0, 112] > 0).sum()) == 2 * 14 + 1  # a 29-px box at 224 px (5 px at 28 and 32)
    small = torch.zeros(1, 1, 28, 28)
    small[0, 0, 14, 14] = 1.0
    assert int((blur(small)[0, 0, 14] > 0).sum()) == 5


def test_saliency_smoothgrad_ig_and_occlusion_split_their_work_at_224px_without_changing_the_maps() -> None:
    model = _linear_224(classes=2)
    images, targets = _rand(2, *RGB_224, seed=1), torch.tensor([0, 1])
    weight = model.head.weight.detach().view(2, *RGB_224)
    spy = _LargestBatch(model)
    # a linear model's gradient is its weight everywhere: IG is x * w and SmoothGrad is the plain gradient
    torch.testing.assert_close(IntegratedGradients(steps=40).attributions(model, images, targets),
                               images * weight[targets], rtol=1e-4, atol=1e-6)
    plain = GradientSaliency()(model, images, targets)
    torch.testing.assert_close(GradientSaliency(smoothgrad_samples=40, noise_std=0.2)(model, images, targets), plain)
    torch.testing.assert_close(plain, weight[targets].abs().amax(1))
    assert spy.largest <= batch_size_for(RGB_224, 256) == 16  # 40 path points or noisy copies, in passes of 16
    torch.testing.assert_close(Occlusion(batch_size=7)(model, images, targets), Occlusion()(model, images, targets))
    assert spy.largest <= 16


def test_grad_cam_picks_the_last_conv_layer_with_a_spatial_output_on_a_resnet() -> None:
    # at 64 px ResNet-18's last block still has a 2x2 map; at 32 px it is 1x1, so the rule steps back to layer3
    assert default_cam_layer(_resnet18(64)) == "network.network.layer4.1.conv2"
    assert default_cam_layer(_resnet18(32)) == "network.network.layer3.1.conv2"
    with pytest.raises(Exception, match="convolutional layer"):
        GradCAM()(_linear_224(), _rand(1, *RGB_224), torch.tensor([0]))


def test_grad_cam_on_a_head_split_resnet_maps_the_whole_image_and_names_its_layer(resnet64) -> None:
    images = _rand(2, 3, 64, 64, seed=2)
    maps = GradCAM()(resnet64, images, torch.tensor([1, 7]))
    assert maps.shape == (2, 64, 64) and torch.isfinite(maps).all() and (maps >= 0).all()
    panel = region_panel(resnet64, images[:1], 3, roi_method="gradcam")
    assert panel.importance_layer == "network.network.layer4.1.conv2"
    assert panel.importance.shape == (64, 64) and panel.attack.shape == (64, 64)


def test_the_region_panel_runs_with_the_page_defaults_on_a_resnet(resnet64) -> None:
    image = _rand(1, 3, 64, 64, seed=4)
    panel = region_panel(resnet64, image, 2)
    assert panel.importance.shape == panel.attack.shape == panel.zones.shape == (64, 64)
    assert panel.importance_layer is None and torch.isfinite(panel.importance).all()
    assert panel.adversarial_image is not None and panel.adversarial_image.shape == image.shape
    localized = LocalizedAttackMap(steps=2)(resnet64, image, torch.tensor([2]))
    assert localized.maps.shape == (1, 64, 64) and torch.isfinite(localized.maps).all()


# ----------------------------------------------------------------------------- attacks, margins, diagnosis


def test_the_semantic_attack_runs_on_a_resnet_within_the_size_fitted_ranges(resnet64) -> None:
    images = _rand(2, 3, 64, 64, seed=5)
    result = SemanticAttack(steps=4, attribute_step=0.5)(resnet64, images, torch.tensor([0, 1]))
    assert result.images.shape == images.shape and result.edited_images.shape == images.shape
    assert result.images.min() >= 0 and result.images.max() <= 1
    for k, name in enumerate(result.attribute_names):
        low, high = attribute_range(name, images.shape)
        assert bool(((result.attribute_values[:, k] >= low - 1e-6) & (result.attribute_values[:, k] <= high + 1e-6)).all())
    assert float(result.normalized_magnitudes().max()) <= 1 + 1e-6
    assert len(result.history["loss"]) == 5  # four steps and the final point


def test_attacks_split_a_large_batch_of_large_images_and_give_the_same_result() -> None:
    model = _linear_224(classes=3)
    images, labels = _rand(20, *RGB_224, seed=6), torch.zeros(20, dtype=torch.long)
    spy = _LargestBatch(model)
    seen: list[tuple[int, int]] = []
    whole = DeepFool(steps=5)(model, images, labels, progress=lambda step, total, info: seen.append((step, total)))
    assert spy.largest <= 16 and whole.images.shape == images.shape
    halves = [DeepFool(steps=5)(model, images[i:i + 10], labels[i:i + 10]) for i in (0, 10)]
    torch.testing.assert_close(whole.images, torch.cat([h.images for h in halves]))
    assert torch.equal(whole.success, torch.cat([h.success for h in halves]))
    result = PGD(eps=0.01, steps=3, seed=0)(model, images, labels,
                                           progress=lambda step, total, info: seen.append((step, total)))
    assert len(result.history["loss"]) == 3 and result.success.shape == (20,)
    assert seen[-1] == (6, 6) and [step for step, _ in seen[-6:]] == [1, 2, 3, 4, 5, 6]  # two chunks, one bar


def test_input_margins_pick_the_lean_search_on_large_images_and_stay_exact_on_a_linear_model() -> None:
    estimator = InputMarginEstimator()
    assert estimator.search_for((1, 28, 28)) == FULL_SEARCH and estimator.search_for((3, 32, 32)) == FULL_SEARCH
    assert estimator.search_for(RGB_224) == LARGE_IMAGE_SEARCH
    assert InputMarginEstimator(bisection_steps=2, pgd_steps=3).search_for(RGB_224).bisection_steps == 2
    assert InputMarginEstimator(search=FULL_SEARCH).search_for(RGB_224) == FULL_SEARCH
    # two classes: the L-inf margin is |w.x + b| / ||w_0 - w_1||_1, and DeepFool's shrunk flip lands within 2% of it
    model = _linear_224(classes=2, seed=7)
    images = 0.3 + 0.4 * _rand(20, *RGB_224, seed=8)
    spy = _LargestBatch(model)
    estimate = estimator(model, images)
    assert spy.largest <= 16
    w = model.head.weight.detach()
    gap = images.flatten(1) @ (w[0] - w[1])
    truth = gap.abs() / (w[0] - w[1]).abs().sum()
    assert bool(estimate.found.all())
    ratio = estimate.margins / truth
    assert torch.all(ratio >= 0.999) and torch.all(ratio <= 1.02), ratio
    assert torch.all(model.logits(estimate.adversarial_images).argmax(1) != estimate.predictions)
    size = (estimate.adversarial_images - images).flatten(1).abs().amax(1)
    assert torch.all(size <= estimate.margins + 1e-6)


def test_evaluation_scores_and_diagnosis_keep_batches_bounded_at_224px() -> None:
    model = _linear_224(classes=3, seed=9)
    images, labels = _rand(20, *RGB_224, seed=10), torch.randint(0, 3, (20,), generator=torch.Generator().manual_seed(0))
    dataset = ImageDataset("toy-224", images, labels, ("a", "b", "c"))
    spy = _LargestBatch(model)
    report = evaluate(model, dataset, attack=PGD(eps=0.01, steps=2, seed=0))
    assert report.n == 20 and report.robust_accuracy is not None
    assert margin_scores(model, images, labels).logit_margin.shape == (20,)
    assert EffectWeightedMap(steps=1)(model, images, labels).maps.shape == (20, 224, 224)
    diagnosis = diagnose(model, dataset, DiagnosisConfig(n=20, steps=1, sensitivity_steps=1,
                                                         attributes=("translate_x", "brightness", "blur")))
    assert diagnosis.attribute_names == ("translate_x", "brightness", "blur")
    assert spy.largest <= 16


def test_probability_bars_show_the_top_classes_of_a_large_model() -> None:
    probabilities = torch.softmax(_rand(1000, seed=11) * 5, 0)
    names = tuple(str(i) for i in range(1000))
    figure = probability_bars(probabilities, names, true_label=999)
    shown = list(figure.data[0].y)
    assert len(shown) in (20, 21) and "999" in shown
    assert shown[0] == str(int(probabilities.argmax()))
    assert len(probability_bars(probabilities[:10] / probabilities[:10].sum(), names[:10]).data[0].y) == 10
    assert display_upscale((1, 28, 28)) == 6 and display_upscale(RGB_224) == 1
