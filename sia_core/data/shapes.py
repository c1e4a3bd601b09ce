"""Shapes: a procedurally generated 32x32 RGB classification set (circle, square, triangle, cross, ring).
Every image records its true attributes, so a diagnosis can be checked against a flaw planted on purpose.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, get_args

import numpy as np
import torch

from sia_core.data.base import ImageDataset, Split
from sia_core.validation import in_range, non_negative_int, one_of, optional, positive_int, require

SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "ring")
ATTRIBUTE_NAMES: tuple[str, ...] = (
    "hue",
    "background_brightness",
    "size",
    "rotation",
    "position_x",
    "position_y",
)
SpuriousAttribute = Literal["hue", "background_brightness", "size"]
SPURIOUS_ATTRIBUTES: tuple[str, ...] = get_args(SpuriousAttribute)

# Full ranges [low, high) of the sampled attributes.
ATTRIBUTE_RANGES: dict[str, tuple[float, float]] = {
    "hue": (0.0, 1.0),
    "background_brightness": (0.1, 0.55),
    "size": (0.35, 0.7),
    "rotation": (0.0, 360.0),
    "position_x": (-4.0, 4.0),
    "position_y": (-4.0, 4.0),
}

SATURATION = 0.85
VALUE = 0.95
NOISE_STD = 0.02
# Hue bands keep a margin from their neighbours so a biased hue is unambiguous.
HUE_BAND_MARGIN = 0.02
MIN_IMAGE_SIZE = 16  # positions move the centre by up to 4 px, so smaller images would clip

# Shape geometry, in units of the radius r (= size * half-width); all fit within about r.
SQUARE_HALF_SIDE = 0.8
CROSS_HALF_WIDTH = 1.0 / 3.0  # arms are 2r long and 2r/3 wide: width is 1/3 of the extent
RING_INNER = 0.5  # a thick annulus: inner radius half the outer one
TRIANGLE_INRADIUS = 0.5  # equilateral with circumradius r


@dataclass(frozen=True)
class ShapesConfig:
    """What to generate; the same config always gives the same images."""

    n: int = 10_000
    seed: int = 0
    spurious: SpuriousAttribute | None = None  # which attribute to correlate with the class
    spurious_strength: float = 0.0  # in [0, 1]: probability that a sample's attribute is drawn from its class's band
    image_size: int = 32

    def __post_init__(self) -> None:
        positive_int("n", self.n)
        non_negative_int("seed", self.seed)  # numpy refuses negative seeds
        optional(one_of, "spurious", self.spurious, SPURIOUS_ATTRIBUTES)
        in_range("spurious_strength", self.spurious_strength, 0.0, 1.0)
        positive_int("image_size", self.image_size)
        require(self.image_size >= MIN_IMAGE_SIZE, f"image_size must be at least {MIN_IMAGE_SIZE}, got {self.image_size}.")


def class_band(attribute: str, label: int) -> tuple[float, float]:
    """The narrow range ``[low, high)`` that ``attribute`` is drawn from for class ``label`` when biased."""
    one_of("spurious attribute", attribute, SPURIOUS_ATTRIBUTES)
    k = len(SHAPE_CLASSES)
    if attribute == "hue":
        return label / k + HUE_BAND_MARGIN, (label + 1) / k - HUE_BAND_MARGIN
    low, high = ATTRIBUTE_RANGES[attribute]
    width = (high - low) / k
    return low + label * width, low + (label + 1) * width


def _hsv_to_rgb(hue: np.ndarray) -> np.ndarray:
    """(N,) hues -> (N, 3) RGB at the fixed saturation and value."""
    # Standard closed form: channel = V - V*S*clamp(min(k, 4 - k), 0, 1) with k = (n + 6h) mod 6.
    offsets = np.array([5.0, 3.0, 1.0], dtype=np.float32)
    k = np.mod(offsets[None, :] + hue[:, None] * 6.0, 6.0)
    ramp = np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return (VALUE - VALUE * SATURATION * ramp).astype(np.float32)


# Signed distances (negative inside) in the shape's own frame; x, y are (B, H, W), r is (B, 1, 1).
def _sd_circle(x: np.ndarray, y: np.ndarray, r: np.ndarray) -> np.ndarray:
    return np.sqrt(x * x + y * y) - r


def _sd_ring(x: np.ndarray, y: np.ndarray, r: np.ndarray) -> np.ndarray:
    mid = 0.5 * (1.0 + RING_INNER) * r
    half_width = 0.5 * (1.0 - RING_INNER) * r
    return np.abs(np.sqrt(x * x + y * y) - mid) - half_width


def _sd_box(x: np.ndarray, y: np.ndarray, half_x: np.ndarray, half_y: np.ndarray) -> np.ndarray:
    # Chebyshev-style box distance: exact inside and along the edges, which is all anti-aliasing needs.
    return np.maximum(np.abs(x) - half_x, np.abs(y) - half_y)


def _sd_square(x: np.ndarray, y: np.ndarray, r: np.ndarray) -> np.ndarray:
    half = SQUARE_HALF_SIDE * r
    return _sd_box(x, y, half, half)


def _sd_cross(x: np.ndarray, y: np.ndarray, r: np.ndarray) -> np.ndarray:
    arm = CROSS_HALF_WIDTH * r
    return np.minimum(_sd_box(x, y, r, arm), _sd_box(x, y, arm, r))


def _sd_triangle(x: np.ndarray, y: np.ndarray, r: np.ndarray) -> np.ndarray:
    # Intersection of three half-planes whose normals point 120 degrees apart; apex at +y.
    sides = [x * math.cos(a) + y * math.sin(a) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    return np.maximum(np.maximum(sides[0], sides[1]), sides[2]) - TRIANGLE_INRADIUS * r


_SIGNED_DISTANCES: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "circle": _sd_circle,
    "square": _sd_square,
    "triangle": _sd_triangle,
    "cross": _sd_cross,
    "ring": _sd_ring,
}


def _render(
    shape: str,
    attrs: dict[str, np.ndarray],
    noise: np.ndarray,
    image_size: int,
) -> np.ndarray:
    """Render one class's batch: (B, 3, S, S) float32 in [0, 1]."""
    half = image_size / 2.0
    # Pixel-centre grid with the image centre at 0 and y pointing up.
    coords = np.arange(image_size, dtype=np.float32) + 0.5 - half
    gx = coords[None, None, :]
    gy = -coords[None, :, None]
    px = attrs["position_x"][:, None, None]
    py = attrs["position_y"][:, None, None]
    theta = np.deg2rad(attrs["rotation"])[:, None, None]
    cos, sin = np.cos(theta), np.sin(theta)
    dx, dy = gx - px, gy + py  # position_y is in image rows (down), the grid's y points up
    # Rotate the grid by -theta so the shape appears rotated by +theta.
    x = (cos * dx + sin * dy).astype(np.float32)
    y = (-sin * dx + cos * dy).astype(np.float32)
    radius = (attrs["size"] * half)[:, None, None].astype(np.float32)
    distance = _SIGNED_DISTANCES[shape](x, y, radius)
    # A 1 px linear ramp centred on the edge gives the soft, anti-aliased border.
    coverage = np.clip(0.5 - distance, 0.0, 1.0)[:, None, :, :]
    foreground = _hsv_to_rgb(attrs["hue"])[:, :, None, None]
    background = attrs["background_brightness"][:, None, None, None]
    image = background + coverage * (foreground - background) + noise
    return np.clip(image, 0.0, 1.0, out=image)


def _describe(config: ShapesConfig) -> str:
    base = f"Shapes (generated), seed {config.seed}, n {config.n}"
    if config.spurious is None or config.spurious_strength == 0.0:
        return f"{base}, no spurious correlation"
    return f"{base}, {config.spurious} correlated with class at strength {config.spurious_strength:g}"


def generate_shapes(config: ShapesConfig) -> ImageDataset:
    """Generate ``config.n`` labelled images with their true attributes, deterministically from ``config.seed``."""
    n, size = config.n, config.image_size
    k = len(SHAPE_CLASSES)
    rng = np.random.default_rng(config.seed)

    # Balanced labels (counts differ by at most one), shuffled.
    labels = rng.permutation(np.arange(n) % k)

    # Every attribute is always drawn in the same order, so the same seed gives the same images
    # with and without a bias except for the biased attribute itself.
    attrs: dict[str, np.ndarray] = {}
    for name in ATTRIBUTE_NAMES:
        low, high = ATTRIBUTE_RANGES[name]
        attrs[name] = rng.uniform(low, high, n).astype(np.float32)
    biased_draw = rng.random(n)
    band_position = rng.random(n)

    if config.spurious is not None and config.spurious_strength > 0.0:
        bands = np.array([class_band(config.spurious, c) for c in range(k)], dtype=np.float64)
        low, high = bands[labels, 0], bands[labels, 1]
        in_band = low + band_position * (high - low)
        biased = biased_draw < config.spurious_strength
        attrs[config.spurious] = np.where(biased, in_band, attrs[config.spurious]).astype(np.float32)

    images = np.empty((n, 3, size, size), dtype=np.float32)
    for c, shape in enumerate(SHAPE_CLASSES):
        index = np.flatnonzero(labels == c)
        if index.size == 0:
            continue
        noise = rng.standard_normal((index.size, 3, size, size), dtype=np.float32) * NOISE_STD
        batch_attrs = {name: values[index] for name, values in attrs.items()}
        images[index] = _render(shape, batch_attrs, noise, size)

    attributes = {name: torch.from_numpy(values) for name, values in attrs.items()}
    attributes["shape"] = torch.from_numpy(labels.astype(np.int64))
    return ImageDataset(
        name="shapes",
        images=torch.from_numpy(images),
        labels=torch.from_numpy(labels.astype(np.int64)),
        class_names=SHAPE_CLASSES,
        attributes=attributes,
        source=_describe(config),
    )


def shapes_dataset(
    split: Split,
    *,
    n: int | None = None,
    seed: int = 0,
    spurious: SpuriousAttribute | None = None,
    spurious_strength: float = 0.95,
) -> ImageDataset:
    """The canonical Shapes splits: "train" (20,000 images by default) and "test" (5,000).

    ``spurious`` biases only the train split. The test split is never biased: there ``spurious`` is
    ignored, so a model that learned the shortcut shows it as a drop in test accuracy.
    The two splits use different seeds derived from ``seed``, so they never share images.
    """
    one_of("split", split, ("train", "test"))
    count = (20_000 if split == "train" else 5_000) if n is None else n
    # validates every argument, the ones the test split ignores included, so a typo never passes silently
    ShapesConfig(n=count, seed=seed, spurious=spurious, spurious_strength=spurious_strength)
    if split == "train":
        config = ShapesConfig(
            n=count,
            seed=seed * 2,
            spurious=spurious,
            spurious_strength=spurious_strength if spurious is not None else 0.0,
        )
        name = "shapes-train" if spurious is None else f"shapes-train-spurious-{spurious}"
    else:
        config = ShapesConfig(n=count, seed=seed * 2 + 1)
        name = "shapes-test"
    dataset = generate_shapes(config)
    source = f"{dataset.source}; {split} split" + ("" if split == "train" else " (always unbiased)")
    return replace(dataset, name=name, source=source)


# --- landmarks (the keypoint task on Shapes) ---------------------------------------------------------------------

LANDMARK_NAMES: tuple[str, ...] = ("centre", "top-left of the box", "bottom-right of the box")
_CIRCLE_STEPS = 256  # points on the circle whose extremes give a round shape's box (exact to 1e-4 of r)


def _outline(shape: str) -> np.ndarray:
    """(P, 2) points, in units of r with y up, whose extremes are the shape's: its vertices (polygons) or a fine
    circle (round shapes)."""
    if shape in ("circle", "ring"):
        angles = np.linspace(0, 2 * math.pi, _CIRCLE_STEPS, endpoint=False)
        return np.stack([np.cos(angles), np.sin(angles)], axis=1)
    if shape == "square":
        return np.array([[sx, sy] for sx in (-1, 1) for sy in (-1, 1)], dtype=np.float64) * SQUARE_HALF_SIDE
    if shape == "triangle":  # equilateral, circumradius r, apex at +y (inradius TRIANGLE_INRADIUS r)
        return np.array([[0.0, 1.0], [math.sqrt(3) / 2, -0.5], [-math.sqrt(3) / 2, -0.5]])
    if shape == "cross":
        arm = CROSS_HALF_WIDTH
        return np.array([[sx * a, sy * b] for a, b in ((1.0, arm), (arm, 1.0)) for sx in (-1, 1) for sy in (-1, 1)])
    raise ValueError(f"unknown shape {shape!r}")


def shape_outlines(dataset: ImageDataset) -> torch.Tensor:
    """(N, 1 + P, 2) each generated Shapes image's centre, then P points of its outline whose extremes are the
    drawn shape's (its vertices, or a fine circle, repeated to a common P), as (x, y) fractions of the image's width
    and height (y down). A rotation, shift or zoom of the image carries these points onto the edited shape's own,
    so the landmarks of an edited image (`centre_and_box`) stay exact where the box of the old box would not."""
    require("shape" in dataset.attributes and "rotation" in dataset.attributes,
            "Landmarks need a generated Shapes dataset (its images record shape, size, rotation and position).")
    size = dataset.image_shape[-1]
    half = size / 2.0
    attrs = {name: dataset.attributes[name].double().numpy() for name in ("size", "rotation", "position_x",
                                                                          "position_y")}
    shapes = dataset.attributes["shape"].numpy()
    points = np.empty((len(shapes), 1 + _CIRCLE_STEPS, 2))
    for index, shape in enumerate(SHAPE_CLASSES):
        chosen = np.flatnonzero(shapes == index)
        if chosen.size == 0:
            continue
        outline = np.resize(_outline(shape), (_CIRCLE_STEPS, 2))  # repeated whole: the extremes are unchanged
        radius = attrs["size"][chosen] * half
        theta = np.deg2rad(attrs["rotation"][chosen])
        cos, sin = np.cos(theta)[:, None], np.sin(theta)[:, None]
        u, v = outline[None, :, 0] * radius[:, None], outline[None, :, 1] * radius[:, None]
        # the renderer rotates the grid by -theta, so the shape turns by +theta (y up); centre offset as rendered
        x = cos * u - sin * v + attrs["position_x"][chosen, None]
        y = sin * u + cos * v - attrs["position_y"][chosen, None]
        points[chosen, 1:, 0], points[chosen, 1:, 1] = x + half, half - y  # image coordinates, y down
        points[chosen, 0] = np.stack([attrs["position_x"][chosen] + half, half + attrs["position_y"][chosen]], axis=1)
    return torch.from_numpy(points / size).float()


def centre_and_box(outlines: torch.Tensor) -> torch.Tensor:
    """(N, 3, 2) the landmarks of (N, 1 + P, 2) centre-and-outline points: the centre and the top-left and
    bottom-right corners of the outline's axis-aligned box (differentiable where the points are)."""
    return torch.stack([outlines[:, 0], outlines[:, 1:].amin(dim=1), outlines[:, 1:].amax(dim=1)], dim=1)


def shape_landmarks(dataset: ImageDataset) -> torch.Tensor:
    """(N, 3, 2) landmarks of generated Shapes images, from the attributes each image records: the shape's centre
    and the top-left and bottom-right corners of its axis-aligned bounding box, as (x, y) fractions of the image's
    width and height (y down). All three are fixed by what the image shows, whatever the shape's symmetry."""
    return centre_and_box(shape_outlines(dataset))
