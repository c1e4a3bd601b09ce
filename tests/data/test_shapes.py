"""Tests of the Shapes generator: format, determinism, rendered attributes and planted biases."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch

from sia_core.data.base import ImageDataset
from sia_core.errors import ConfigError
from sia_core.data.shapes import (
    ATTRIBUTE_NAMES,
    ATTRIBUTE_RANGES,
    SHAPE_CLASSES,
    ShapesConfig,
    class_band,
    generate_shapes,
    shapes_dataset,
)


def _in_own_band(attribute: str, values: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    bands = np.array([class_band(attribute, c) for c in range(len(SHAPE_CLASSES))])
    v, y = values.numpy(), labels.numpy()
    return (v >= bands[y, 0]) & (v < bands[y, 1])


def _foreground_rgb(hue: np.ndarray) -> np.ndarray:
    return np.array([colorsys.hsv_to_rgb(float(h), 0.85, 0.95) for h in hue], dtype=np.float32)


def test_format_ranges_and_balance() -> None:
    data = generate_shapes(ShapesConfig(n=503, seed=1))
    assert data.images.shape == (503, 3, 32, 32)
    assert data.images.dtype == torch.float32
    assert data.labels.dtype == torch.int64
    assert float(data.images.min()) >= 0.0 and float(data.images.max()) <= 1.0
    assert data.class_names == SHAPE_CLASSES
    counts = torch.bincount(data.labels, minlength=5)
    assert int(counts.max() - counts.min()) <= 1
    for name in ATTRIBUTE_NAMES:
        values = data.attributes[name]
        assert values.shape == (503,) and values.dtype == torch.float32
        low, high = ATTRIBUTE_RANGES[name]
        assert float(values.min()) >= low and float(values.max()) <= high
    assert torch.equal(data.attributes["shape"], data.labels)
    assert "no spurious correlation" in data.source


def test_deterministic_from_seed() -> None:
    a = generate_shapes(ShapesConfig(n=64, seed=7))
    b = generate_shapes(ShapesConfig(n=64, seed=7))
    c = generate_shapes(ShapesConfig(n=64, seed=8))
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    for name in ATTRIBUTE_NAMES:
        assert torch.equal(a.attributes[name], b.attributes[name])
    assert not torch.equal(a.images, c.images)


def test_rendered_colours_match_attributes() -> None:
    data = generate_shapes(ShapesConfig(n=300, seed=2))
    images = data.images.numpy()
    attrs = {k: v.numpy() for k, v in data.attributes.items()}
    # Corners are always background, whatever the shape, size, rotation and offset.
    corners = np.stack(
        [images[:, :, :2, :2], images[:, :, :2, -2:], images[:, :, -2:, :2], images[:, :, -2:, -2:]]
    ).mean(axis=(0, 2, 3, 4))
    assert np.abs(corners - attrs["background_brightness"]).max() < 0.06

    # A 3x3 patch at the centre of a circle or square is pure foreground.
    checked = 0
    for i in np.flatnonzero(np.isin(data.labels.numpy(), [0, 1])):
        col = int(np.floor(16 + attrs["position_x"][i]))
        row = int(np.floor(16 + attrs["position_y"][i]))
        rgb = images[i, :, row - 1 : row + 2, col - 1 : col + 2].mean(axis=(1, 2))
        hue = colorsys.rgb_to_hsv(*rgb.tolist())[0]
        error = abs(hue - attrs["hue"][i])
        assert min(error, 1 - error) < 0.03
        checked += 1
    assert checked > 50


def test_spurious_bands() -> None:
    full = generate_shapes(ShapesConfig(n=1000, seed=3, spurious="hue", spurious_strength=1.0))
    assert _in_own_band("hue", full.attributes["hue"], full.labels).all()
    assert "hue correlated with class at strength 1" in full.source
    for attribute in ("background_brightness", "size"):
        biased = generate_shapes(ShapesConfig(n=500, seed=3, spurious=attribute, spurious_strength=1.0))
        assert _in_own_band(attribute, biased.attributes[attribute], biased.labels).all()

    partial = shapes_dataset("train", n=2000, seed=0, spurious="hue", spurious_strength=0.95)
    # 95% are drawn in band, and an unbiased hue lands in its 0.16-wide band 16% of the time.
    fraction = _in_own_band("hue", partial.attributes["hue"], partial.labels).mean()
    assert abs(fraction - (0.95 + 0.05 * 0.16)) < 0.02
    assert partial.name == "shapes-train-spurious-hue"
    assert "hue correlated with class at strength 0.95" in partial.source


def test_test_split_is_never_biased() -> None:
    test = shapes_dataset("test", spurious="hue")
    assert len(test) == 5000 and test.name == "shapes-test"
    fraction = _in_own_band("hue", test.attributes["hue"], test.labels).mean()
    assert 0.15 - 0.05 < fraction < 0.2 + 0.05  # chance is 0.16, the band width
    assert "unbiased" in test.source
    train = shapes_dataset("train", n=10)
    assert train.name == "shapes-train" and not torch.equal(train.images, test.images[:10])


def test_hue_shortcut_is_a_known_signal() -> None:
    train = generate_shapes(ShapesConfig(n=1000, seed=4, spurious="hue", spurious_strength=1.0))
    test = shapes_dataset("test", n=1000, seed=4, spurious="hue")
    means = torch.stack([train.attributes["hue"][train.labels == c].mean() for c in range(5)])

    def accuracy(data: ImageDataset) -> float:
        predicted = (data.attributes["hue"][:, None] - means[None, :]).abs().argmin(dim=1)
        return float((predicted == data.labels).float().mean())

    assert accuracy(train) > 0.9
    assert accuracy(test) < 0.35


def test_shapes_are_distinguishable() -> None:
    data = generate_shapes(ShapesConfig(n=1000, seed=5))
    images = data.images.numpy()
    attrs = {k: v.numpy() for k, v in data.attributes.items()}
    labels = data.labels.numpy()
    background = attrs["background_brightness"][:, None, None, None]
    contrast = np.abs(_foreground_rgb(attrs["hue"]) - background[:, :, 0, 0]).sum(axis=1)
    mask = np.abs(images - background).sum(axis=1) > 0.5 * contrast[:, None, None]
    # Foreground area relative to radius^2 removes the size effect.
    area = mask.sum(axis=(1, 2)) / (attrs["size"] * 16) ** 2
    mean = {name: area[labels == c].mean() for c, name in enumerate(SHAPE_CLASSES)}
    assert mean["circle"] > 1.2 * mean["ring"]  # pi vs 0.75 pi
    assert mean["square"] > 1.08 * mean["cross"]  # 2.56 vs 2.22
    others = [value for name, value in mean.items() if name != "triangle"]
    assert mean["triangle"] < 0.7 * min(others)  # 1.30 vs at least 2.22
    # The centre pixel of a circle is foreground and that of a ring is background.
    rows = np.floor(16 + attrs["position_y"]).astype(int)
    cols = np.floor(16 + attrs["position_x"]).astype(int)
    centre = mask[np.arange(len(labels)), rows, cols]
    assert centre[labels == 0].all() and not centre[labels == 4].any()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": 0}, "n must be"),
        ({"n": 10, "spurious": "hue", "spurious_strength": -0.1}, "spurious_strength"),
        ({"n": 10, "spurious": "hue", "spurious_strength": 1.5}, "spurious_strength"),
        ({"n": 10, "spurious": "rotation", "spurious_strength": 0.5}, "spurious must be one of"),
        ({"n": 10, "seed": -1}, "seed"),
        ({"n": 10, "image_size": 8}, "image_size must be at least 16"),
    ],
)
def test_invalid_config_is_refused_when_made(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ShapesConfig(**kwargs)  # type: ignore[arg-type]


def test_invalid_split_arguments_raise() -> None:
    with pytest.raises(ConfigError, match="split"):
        shapes_dataset("val")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="n must be"):
        shapes_dataset("train", n=0)
    with pytest.raises(ConfigError, match="spurious must be one of"):
        shapes_dataset("train", n=10, spurious="colour")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="spurious must be one of"):  # the test split ignores it, but a typo is a typo
        shapes_dataset("test", n=10, spurious="colour")  # type: ignore[arg-type]
