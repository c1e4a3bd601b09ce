"""Tests for the semantic attribute registry in sia_core.semantics."""

from __future__ import annotations

import math

import pytest
import torch

from sia_core.semantics import (
    ATTRIBUTES,
    COMPOSITION_ORDER,
    Attribute,
    applicable_attributes,
    apply_attributes,
    neutral_params,
)

RGB_ONLY = {"saturation", "hue", "tint_red", "tint_green", "tint_blue"}
# a non-neutral value inside each range, away from kinks, for gradchecks and compositions
NON_NEUTRAL = {
    "rotation": 11.0,
    "translate_x": 1.3,
    "translate_y": -0.7,
    "scale": 0.08,
    "brightness": 0.1,
    "contrast": 0.3,
    "gamma": -0.25,
    "saturation": -0.4,
    "hue": 0.35,
    "tint_red": 0.05,
    "tint_green": -0.07,
    "tint_blue": 0.1,
    "blur": 0.7,
}


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(n: int, c: int, h: int, w: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=_gen(), dtype=dtype)


def _names_for(c: int) -> list[str]:
    return [a.name for a in applicable_attributes(c)]


# ----------------------------------------------------------------------------- registry


def test_registry_consistency() -> None:
    assert set(NON_NEUTRAL) == set(ATTRIBUTES)
    assert tuple(ATTRIBUTES) == COMPOSITION_ORDER
    for name, attr in ATTRIBUTES.items():
        assert isinstance(attr, Attribute)
        assert attr.name == name
        assert attr.low <= attr.neutral <= attr.high
        assert attr.neutral == 0.0
        assert attr.label.strip() and attr.description.strip()
        assert attr.kind in ("geometric", "photometric")
        assert 0 < attr.step < attr.width
        assert attr.rgb_only == (name in RGB_ONLY)
        assert attr.low < NON_NEUTRAL[name] < attr.high
    geometric = [n for n in COMPOSITION_ORDER if ATTRIBUTES[n].kind == "geometric"]
    assert list(COMPOSITION_ORDER[: len(geometric)]) == geometric
    assert COMPOSITION_ORDER[-1] == "blur"


def test_clamp_and_width() -> None:
    attr = ATTRIBUTES["rotation"]
    assert attr.width == pytest.approx(40.0)
    out = attr.clamp(torch.tensor([-50.0, 3.0, 50.0]))
    assert torch.equal(out, torch.tensor([-20.0, 3.0, 20.0]))
    scale = ATTRIBUTES["scale"]
    assert scale.low == pytest.approx(math.log(0.85))
    assert scale.high == pytest.approx(math.log(1.15))


def test_applicable_attributes() -> None:
    gray = {a.name for a in applicable_attributes(1)}
    assert gray.isdisjoint(RGB_ONLY)
    assert gray == set(ATTRIBUTES) - RGB_ONLY
    assert {a.name for a in applicable_attributes(3)} == set(ATTRIBUTES)


def test_neutral_params() -> None:
    params = neutral_params(["hue", "blur"], 4, dtype=torch.float64)
    assert set(params) == {"hue", "blur"}
    assert params["hue"].shape == (4,) and params["hue"].dtype == torch.float64
    assert torch.all(params["blur"] == 0)
    with pytest.raises(ValueError, match="nope"):
        neutral_params(["nope"], 2)


def test_errors() -> None:
    gray = _images(2, 1, 8, 8)
    with pytest.raises(ValueError, match="nope"):
        apply_attributes(gray, {"nope": 0.1})
    with pytest.raises(ValueError, match="hue"):
        apply_attributes(gray, {"hue": torch.tensor([0.0, 0.2])})
    with pytest.raises(ValueError):
        apply_attributes(gray, {"brightness": torch.zeros(3)})  # wrong batch size
    # neutral rgb-only values on a gray image are accepted and do nothing
    out = apply_attributes(gray, {"hue": 0.0, "tint_red": torch.zeros(2)})
    assert torch.equal(out, gray)


# ----------------------------------------------------------------------------- identity, shapes


@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_identity_at_neutral(c: int, dtype: torch.dtype) -> None:
    x = _images(2, c, 9, 7, dtype)
    for name in _names_for(c):
        attr = ATTRIBUTES[name]
        zero = torch.zeros(2, dtype=dtype)
        assert torch.allclose(attr.fn(x, zero), x, atol=1e-6), name
        # with gradients requested the op really runs, and must still be the identity
        out = attr.fn(x, zero.clone().requires_grad_())
        assert torch.allclose(out, x, atol=1e-6), name
    neutral = neutral_params(_names_for(c), 2, dtype=dtype)
    assert torch.allclose(apply_attributes(x, neutral), x, atol=1e-6)
    grad_neutral = {k: v.requires_grad_() for k, v in neutral.items()}
    assert torch.allclose(apply_attributes(x, grad_neutral), x, atol=1e-6)
    assert torch.equal(apply_attributes(x, {}), x)


@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_preserved(c: int, dtype: torch.dtype) -> None:
    x = _images(3, c, 10, 12, dtype)
    for name in _names_for(c):
        out = ATTRIBUTES[name].fn(x, torch.full((3,), NON_NEUTRAL[name], dtype=dtype))
        assert out.shape == x.shape and out.dtype == dtype, name
    # params given in another dtype, or as python floats, follow the images
    params = {name: torch.tensor(NON_NEUTRAL[name]) for name in _names_for(c)}
    params["brightness"] = 0.05
    out = apply_attributes(x, params)
    assert out.shape == x.shape and out.dtype == dtype
    assert out.min() >= 0 and out.max() <= 1


def test_per_sample_params() -> None:
    x = _images(3, 3, 8, 8)
    for name in COMPOSITION_ORDER:
        p = torch.tensor([0.0, NON_NEUTRAL[name], -0.5 * NON_NEUTRAL[name]])
        if name == "blur":
            p = p.abs()
        out = ATTRIBUTES[name].fn(x, p)
        for i in range(3):
            single = ATTRIBUTES[name].fn(x[i : i + 1], p[i : i + 1])
            assert torch.allclose(out[i : i + 1], single, atol=1e-6), name
        assert torch.allclose(out[0], x[0], atol=1e-6), name
        assert not torch.allclose(out[1], x[1], atol=1e-4), name


def test_full_composition_batch() -> None:
    x = _images(2, 3, 8, 8)
    params = {name: torch.tensor([v, 0.0]) for name, v in NON_NEUTRAL.items()}
    out = apply_attributes(x, params)
    assert torch.allclose(out[1], x[1], atol=1e-6)
    assert not torch.allclose(out[0], x[0], atol=1e-3)


# ----------------------------------------------------------------------------- exact values


def test_brightness_constant_image() -> None:
    x = torch.full((2, 3, 4, 4), 0.5)
    out = ATTRIBUTES["brightness"].fn(x, torch.tensor([0.2, -0.1]))
    assert torch.allclose(out[0], torch.full_like(out[0], 0.7))
    assert torch.allclose(out[1], torch.full_like(out[1], 0.4))
    # the composition clamps to [0, 1] at the end
    assert torch.all(apply_attributes(torch.ones(1, 1, 4, 4), {"brightness": 0.2}) == 1.0)


def test_contrast_constant_image() -> None:
    x = torch.full((1, 3, 5, 5), 0.3)
    out = ATTRIBUTES["contrast"].fn(x, torch.tensor([0.4]))
    assert torch.allclose(out, x, atol=1e-6)


def test_contrast_stretches_about_mean() -> None:
    x = torch.tensor([0.2, 0.4, 0.6, 0.8]).view(1, 1, 2, 2)
    out = ATTRIBUTES["contrast"].fn(x, torch.tensor([math.log(2.0)]))
    assert torch.allclose(out.flatten(), torch.tensor([-0.1, 0.3, 0.7, 1.1]), atol=1e-6)


def test_gamma_known_values() -> None:
    x = torch.linspace(0.05, 1.0, 16, dtype=torch.float64).view(1, 1, 4, 4)
    g = 0.3
    out = ATTRIBUTES["gamma"].fn(x, torch.tensor([g], dtype=torch.float64))
    assert torch.allclose(out, x ** math.exp(g))


def test_tint_one_channel_only() -> None:
    x = _images(1, 3, 4, 4)
    for i, name in enumerate(["tint_red", "tint_green", "tint_blue"]):
        out = ATTRIBUTES[name].fn(x, torch.tensor([0.1]))
        diff = out - x
        for ch in range(3):
            expected = 0.1 if ch == i else 0.0
            assert torch.allclose(diff[:, ch], torch.full_like(diff[:, ch], expected), atol=1e-6)


def test_saturation_to_gray() -> None:
    x = _images(1, 3, 4, 4, torch.float64)
    out = ATTRIBUTES["saturation"].fn(x, torch.tensor([-50.0], dtype=torch.float64))
    luma = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64).view(1, 3, 1, 1)
    gray = (x * luma).sum(dim=1, keepdim=True).expand_as(x)
    assert torch.allclose(out, gray, atol=1e-9)


def test_hue_gray_identity_and_full_turn() -> None:
    gray = torch.rand(1, 1, 5, 5, generator=_gen()).expand(1, 3, 5, 5)
    out = ATTRIBUTES["hue"].fn(gray, torch.tensor([0.4]))
    assert torch.allclose(out, gray, atol=1e-6)
    x = _images(2, 3, 5, 5, torch.float64)
    turned = ATTRIBUTES["hue"].fn(x, torch.full((2,), 2 * math.pi, dtype=torch.float64))
    assert torch.allclose(turned, x, atol=1e-9)
    # half a hue turn changes colour but keeps luma
    half = ATTRIBUTES["hue"].fn(x, torch.full((2,), 0.5, dtype=torch.float64))
    luma = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64).view(1, 3, 1, 1)
    assert torch.allclose((half * luma).sum(1), (x * luma).sum(1), atol=1e-9)
    assert not torch.allclose(half, x, atol=1e-3)


def test_rotation_90_matches_rot90() -> None:
    x = _images(1, 3, 8, 8)
    out = ATTRIBUTES["rotation"].fn(x, torch.tensor([90.0]))
    expected = torch.rot90(x, 1, dims=(-2, -1))  # counter-clockwise as displayed
    assert torch.allclose(out[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1], atol=1e-5)


def test_rotation_non_square_stays_rigid() -> None:
    # a 180 degree turn of a non-square image is an exact flip of both axes
    x = _images(1, 1, 6, 10)
    out = ATTRIBUTES["rotation"].fn(x, torch.tensor([180.0]))
    assert torch.allclose(out, torch.flip(x, dims=(-2, -1)), atol=1e-5)


def test_translation_one_pixel() -> None:
    x = _images(1, 3, 7, 9)
    right = ATTRIBUTES["translate_x"].fn(x, torch.tensor([1.0]))
    assert torch.allclose(right[..., :, 1:], x[..., :, :-1], atol=1e-6)
    down = ATTRIBUTES["translate_y"].fn(x, torch.tensor([1.0]))
    assert torch.allclose(down[..., 1:, :], x[..., :-1, :], atol=1e-6)
    # composed geometric attributes resample once: shift right and down together
    both = apply_attributes(x, {"translate_x": 1.0, "translate_y": 1.0})
    assert torch.allclose(both[..., 1:, 1:], x[..., :-1, :-1], atol=1e-6)


def test_zoom_about_centre() -> None:
    x = torch.zeros(1, 1, 9, 9)
    x[..., 4, 4] = 1.0
    out = ATTRIBUTES["scale"].fn(x, torch.tensor([math.log(1.1)]))
    assert out[..., 4, 4].item() == pytest.approx(1.0, abs=1e-5)  # centre stays put


def test_blur_constant_and_delta() -> None:
    const = torch.full((1, 3, 9, 9), 0.6)
    out = ATTRIBUTES["blur"].fn(const, torch.tensor([1.0]))
    assert torch.allclose(out, const, atol=1e-6)
    delta = torch.zeros(1, 1, 11, 11)
    delta[..., 5, 5] = 1.0
    out = ATTRIBUTES["blur"].fn(delta, torch.tensor([1.0]))
    assert out.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert out[..., 5, 5].item() < 1.0 and out[..., 5, 6].item() > 0.0
    assert torch.allclose(out, out.transpose(-1, -2))  # isotropic


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("name", COMPOSITION_ORDER)
def test_gradcheck(name: str) -> None:
    attr = ATTRIBUTES[name]
    channel_counts = [3] if attr.rgb_only else [3, 1]
    for c in channel_counts:
        # keep pixels away from 0 so gamma's clamp does not create a kink
        x = (0.05 + 0.9 * torch.rand(2, c, 6, 6, generator=_gen(1), dtype=torch.float64))
        x.requires_grad_()
        p = torch.tensor([NON_NEUTRAL[name], 0.6 * NON_NEUTRAL[name]], dtype=torch.float64)
        p.requires_grad_()
        assert torch.autograd.gradcheck(attr.fn, (x, p), eps=1e-6, atol=1e-5), (name, c)


def test_gradcheck_full_composition() -> None:
    x = 0.2 + 0.6 * torch.rand(1, 3, 6, 6, generator=_gen(2), dtype=torch.float64)
    x.requires_grad_()
    names = list(COMPOSITION_ORDER)
    values = [
        torch.tensor([0.3 * NON_NEUTRAL[n]], dtype=torch.float64, requires_grad=True) for n in names
    ]

    def composed(images: torch.Tensor, *ps: torch.Tensor) -> torch.Tensor:
        return apply_attributes(images, dict(zip(names, ps)))

    assert torch.autograd.gradcheck(composed, (x, *values), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("fill", [0.0, 0.5])
@pytest.mark.parametrize("name", ["hue", "saturation"])
def test_finite_grad_on_gray_and_black(name: str, fill: float) -> None:
    x = torch.full((1, 3, 5, 5), fill, requires_grad=True)
    p = torch.tensor([NON_NEUTRAL[name]], requires_grad=True)
    ATTRIBUTES[name].fn(x, p).sum().backward()
    assert p.grad is not None and torch.isfinite(p.grad).all()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", ["gamma", "blur"])
def test_finite_grad_at_neutral(name: str) -> None:
    x = torch.rand(2, 3, 6, 6, generator=_gen())
    x[0, 0, 0, 0] = 0.0  # a black pixel for gamma
    x.requires_grad_()
    p = torch.zeros(2, requires_grad=True)
    (ATTRIBUTES[name].fn(x, p) * torch.rand(2, 3, 6, 6, generator=_gen(3))).sum().backward()
    assert p.grad is not None and torch.isfinite(p.grad).all()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_gradient_flows_through_apply_attributes() -> None:
    x = _images(2, 3, 8, 8)
    params = {n: torch.zeros(2, requires_grad=True) for n in COMPOSITION_ORDER}
    out = apply_attributes(x, params)
    (out * torch.rand(out.shape, generator=_gen(4))).sum().backward()
    for name, p in params.items():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert params["brightness"].grad.abs().sum() > 0


def test_blur_gradient_is_non_zero_at_neutral_so_attacks_can_find_it() -> None:
    x = torch.zeros(1, 1, 7, 7)
    x[0, 0, 3, 3] = 1.0  # a point: blurring lowers the centre, so d(centre)/d(sigma) < 0 at sigma = 0
    p = torch.zeros(1, requires_grad=True)
    ATTRIBUTES["blur"].fn(x, p)[0, 0, 3, 3].backward()
    assert p.grad is not None and float(p.grad) < -0.1


def test_blur_is_monotone_in_sigma() -> None:
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 4] = 1.0
    centres = [float(ATTRIBUTES["blur"].fn(x, torch.tensor([s]))[0, 0, 4, 4]) for s in (0.0, 0.2, 0.4, 0.7, 1.0, 1.2)]
    assert centres[0] == 1.0 and all(a > b for a, b in zip(centres, centres[1:]))


def test_undo_geometry_inverts_the_geometric_edit_and_leaves_photometry():
    from sia_core.perceptual import ssim
    from sia_core.semantics import undo_geometry

    torch.manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(4, 3, 8, 8), size=(32, 32), mode="bilinear",
                                             align_corners=False)
    params = {"rotation": torch.tensor([10.0, -15.0, 0.0, 5.0]), "translate_x": torch.tensor([2.0, 0.0, -1.5, 1.0]),
              "translate_y": torch.tensor([0.0, 1.0, 2.0, -2.0]), "scale": torch.tensor([0.1, -0.1, 0.0, 0.05])}
    edited = apply_attributes(smooth, params)
    undone = undo_geometry(edited, params)
    assert (ssim(undone, smooth) > ssim(edited, smooth) + 0.05).all()
    # the interior comes back, up to two bilinear resamplings
    interior = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    assert (undone - smooth)[interior].abs().mean() < 0.25 * (edited - smooth)[interior].abs().mean()
    brightened = apply_attributes(smooth, {"brightness": 0.1})
    assert torch.equal(undo_geometry(brightened, {"brightness": 0.1}), brightened)  # nothing geometric to undo


@pytest.mark.parametrize("shape", [(5, 1, 28, 28), (3, 3, 32, 32), (2, 3, 20, 36)])
def test_the_affine_grid_is_torchs_to_float_rounding_and_exact_at_the_identity(shape):
    import torch.nn.functional as F

    from sia_core.semantics import _affine_grid

    n, _, h, w = shape
    theta = torch.randn(n, 2, 3, generator=torch.Generator().manual_seed(0))
    theta[0] = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    ours, torchs = _affine_grid(theta, h, w), F.affine_grid(theta, list(shape), align_corners=False)
    assert ours.shape == torchs.shape and ours.is_contiguous()
    assert torch.allclose(ours, torchs, atol=2e-6, rtol=0)
    assert torch.equal(ours[0], torchs[0])  # the identity lands on the very same floats


def test_each_reading_states_the_edit_the_transform_makes() -> None:
    # contrast: the factor read is the one the spread about the mean is multiplied by
    x = torch.tensor([0.2, 0.4, 0.6, 0.8], dtype=torch.float64).view(1, 1, 2, 2)
    value = 0.3
    spread = ATTRIBUTES["contrast"].fn(x, torch.tensor([value], dtype=torch.float64)).std() / x.std()
    assert ATTRIBUTES["contrast"].reading(value) == f"×{float(spread):.2f}" == "×1.35"
    # gamma: the exponent read is the one the pixel values are raised to
    gamma = ATTRIBUTES["gamma"].fn(torch.full((1, 1, 1, 1), 0.5, dtype=torch.float64),
                                   torch.tensor([value], dtype=torch.float64))
    assert ATTRIBUTES["gamma"].reading(value) == f"exponent {math.log(float(gamma)) / math.log(0.5):.2f}"
    # zoom: at ×2 a bar about the centre is twice as wide
    bar = torch.zeros(1, 1, 17, 17)
    bar[..., 6:11] = 1.0  # columns 6-10: 5 px wide, centred on column 8, the image's centre
    zoomed = ATTRIBUTES["scale"].fn(bar, torch.tensor([math.log(2.0)]))
    assert ATTRIBUTES["scale"].reading(math.log(2.0)) == "×2.00"
    assert float(zoomed[0, 0, 8].sum()) == pytest.approx(2 * float(bar[0, 0, 8].sum()), abs=1.0)
    assert ATTRIBUTES["rotation"].reading(5.0) == "+5.0°" and ATTRIBUTES["hue"].reading(-math.pi / 2) == "-90°"
    assert ATTRIBUTES["translate_x"].reading(-1.5) == "-1.50 px" and ATTRIBUTES["blur"].reading(0.7) == "0.70 px"
    assert ATTRIBUTES["brightness"].reading(0.1) == "+25.5/255"  # added to pixel values, in 255ths


def test_the_edit_in_words_names_only_what_moved_in_the_registry_order() -> None:
    from sia_core.semantics import edits_in_words

    neutral = {name: attribute.neutral for name, attribute in ATTRIBUTES.items()}
    assert edits_in_words(neutral) == ""
    moved = {**neutral, "contrast": math.log(0.5), "rotation": 5.0}
    assert edits_in_words(moved) == "Rotation +5.0° · Contrast ×0.50"
    # a slider's steps count from its low end, so sliding back can stop a hair from neutral: that is no edit
    near = {**neutral, "scale": 0.0025, "hue": -0.001, "brightness": -0.0001, "rotation": 5.0}
    assert edits_in_words(near) == "Rotation +5.0°"
    assert ATTRIBUTES["hue"].reading(-0.001) == "+0°" == ATTRIBUTES["hue"].reading(0.0)
    assert ATTRIBUTES["translate_x"].reading(-0.001) == "+0.00 px"


def test_slider_labels_say_their_units_in_words():
    # "Zoom (log-factor)" and "Hue shift (rad)" were codes, not words a newcomer reads
    assert ATTRIBUTES["scale"].slider_label == "Zoom (log of the factor)"
    assert ATTRIBUTES["hue"].slider_label == "Hue shift (radians)"
    assert ATTRIBUTES["brightness"].slider_label == "Brightness"
    for attribute in ATTRIBUTES.values():
        assert attribute.unit not in ("log-factor", "log-exponent", "rad", "deg", "px") or \
            f"({attribute.unit})" not in attribute.slider_label
