"""Registry of named, bounded, differentiable semantic image attributes.

Each attribute maps (images, per-sample param) to images and is the exact identity at 0. Ranges in pixels
(shift, blur) are tuned at 28 and 32 px and scale with larger images: use `attributes_for(image_shape)`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from sia_core.scaling import ImageShape, pixel_scale

__all__ = [
    "ATTRIBUTES",
    "COMPOSITION_ORDER",
    "Attribute",
    "AttributeKind",
    "GEOMETRIC_NAMES",
    "move_points",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_gamma",
    "adjust_saturation",
    "affine_resample",
    "apply_attributes",
    "applicable_attributes",
    "attribute_range",
    "attributes_for",
    "edits_in_words",
    "gaussian_blur",
    "neutral_params",
    "rotate",
    "shift_hue",
    "tint_blue",
    "tint_green",
    "tint_red",
    "translate_x",
    "translate_y",
    "undo_geometry",
    "zoom",
]

AttributeKind = Literal["geometric", "photometric"]
ParamLike = Tensor | float | int

_LUMA = (0.299, 0.587, 0.114)
_GAMMA_EPS = 1e-6
_BLUR_RADIUS = 3
_BLUR_EPS = 1e-6


# --------------------------------------------------------------------------- helpers


def _as_param(param: ParamLike, images: Tensor) -> Tensor:
    """Return `param` as an (N,) tensor on the images' device and dtype."""
    n = images.shape[0]
    p = torch.as_tensor(param, device=images.device)
    if not p.is_floating_point() or p.dtype != images.dtype:
        p = p.to(images.dtype)
    if p.ndim == 0 or p.shape == (1,):
        return p.reshape(1).expand(n)
    if p.shape != (n,):
        raise ValueError(
            f"an attribute parameter must be a scalar or shaped ({n},), got {tuple(p.shape)}"
        )
    return p


def _is_inactive(p: Tensor) -> bool:
    """True when `p` is exactly neutral (0) everywhere and no gradient needs to flow through it."""
    return not p.requires_grad and not bool(torch.any(p != 0))


def _constant(name: str, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Fixed tensors (luma weights, hue basis) on a dtype/device, built once each."""
    # built outside inference mode: a cached inference tensor would break the next autograd use (an attack run
    # after a slider preview under torch.inference_mode)
    with torch.inference_mode(False):
        return _cached_constant(name, dtype, device)


@functools.lru_cache(maxsize=16)
def _cached_constant(name: str, dtype: torch.dtype, device: torch.device) -> Tensor:
    if name == "luma":
        return torch.tensor(_LUMA, dtype=dtype, device=device).view(1, 3, 1, 1)
    if name == "hue_a":
        return _HUE_A.to(device=device, dtype=dtype)
    if name == "hue_b":
        return _HUE_B.to(device=device, dtype=dtype)
    raise KeyError(name)


def _luma(images: Tensor) -> Tensor:
    """(N, 1, H, W) grayscale: Rec. 601 luma for RGB, the image itself for one channel."""
    if images.shape[1] == 3:
        return (images * _constant("luma", images.dtype, images.device)).sum(dim=1, keepdim=True)
    return images.mean(dim=1, keepdim=True)


def _require_rgb(images: Tensor, name: str) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"attribute '{name}' needs RGB images (N, 3, H, W), got {tuple(images.shape)}"
        )


# --------------------------------------------------------------------------- geometry


def _affine_theta(images: Tensor, rotation: ParamLike | None = None, translate_x: ParamLike | None = None,
                  translate_y: ParamLike | None = None, scale: ParamLike | None = None, *,
                  invert: bool = False) -> Tensor:
    """(N, 2, 3) the map from output to input coordinates grid_sample needs (normalised, align_corners=False); with
    `invert`, the map from input to output coordinates: where a point of the input lands."""
    n, _, h, w = images.shape
    # Work in pixel offsets from the centre so rotation stays rigid on non-square images:
    # forward map p_out = e^s R p_in + T, so grid_sample needs p_in = e^-s R^-1 (p_out - T).
    # In normalised coords (u = p / (size / 2), align_corners=False) that is u_in = A u_out + b
    # with A = D^-1 e^-s R^-1 D, D = diag(W/2, H/2), and b = -A T_norm, T_norm = (2 tx/W, 2 ty/H).
    zeros = images.new_zeros(n)
    if rotation is None:
        cs = images.new_ones(n) if scale is None else torch.exp(-_as_param(scale, images))
        ss = zeros
    else:
        rad = _as_param(rotation, images) * (math.pi / 180.0)
        cs, ss = torch.cos(rad), torch.sin(rad)
        if scale is not None:
            inv_s = torch.exp(-_as_param(scale, images))
            cs, ss = cs * inv_s, ss * inv_s
    mat = torch.stack([cs, ss * (-h / w), ss * (w / h), cs], dim=1).view(n, 2, 2)
    if translate_x is None and translate_y is None:
        shift = images.new_zeros(n, 2, 1)
    else:
        tx = zeros if translate_x is None else _as_param(translate_x, images) * (2.0 / w)
        ty = zeros if translate_y is None else _as_param(translate_y, images) * (2.0 / h)
        shift = -(mat @ torch.stack([tx, ty], dim=1).view(n, 2, 1))
    if invert:  # theta maps output to input coordinates; its inverse maps them back: the edit undone
        inverse = torch.linalg.inv(mat)
        return torch.cat([inverse, -(inverse @ shift)], dim=2)
    return torch.cat([mat, shift], dim=2)


def _affine_grid(theta: Tensor, h: int, w: int) -> Tensor:
    """`F.affine_grid(theta, (N, C, h, w), align_corners=False)` as one GEMM, (N, 6) by a cached (6, h w 2) map: the
    same grid, contiguous as grid_sample wants it, and a backward that is one GEMM as well. affine_grid's per-sample
    copies and bmm, or a product laid out (N, 2, h, w) and permuted, cost the semantic attack's step up to a
    millisecond at batch 128."""
    n = theta.shape[0]
    return (theta.reshape(n, 6) @ _grid_map(h, w, theta.dtype, theta.device)).view(n, h, w, 2)


def _grid_map(h: int, w: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    with torch.inference_mode(False):  # cached: must stay usable by autograd (see `_constant`)
        return _cached_grid_map(h, w, dtype, device)


@functools.lru_cache(maxsize=16)
def _cached_grid_map(h: int, w: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """(6, h w 2): row 3 j + k carries base coordinate k (x, y, 1) into output coordinate j of every pixel, so
    theta (N, 6) times it is the grid (N, h w 2). Pixel centres in normalised coordinates, align_corners=False, with
    affine_grid's own floats (linspace times (n - 1) / n): at the identity the sample points then sit on the very
    same side of each pixel centre, where bilinear sampling's gradient switches between neighbours."""
    xs = torch.linspace(-1, 1, w, device=device, dtype=dtype) * (w - 1) / w
    ys = torch.linspace(-1, 1, h, device=device, dtype=dtype) * (h - 1) / h
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    base = torch.stack([grid_x, grid_y, torch.ones_like(grid_x)], dim=-1).view(h * w, 3)
    mapping = torch.zeros(2, 3, h * w, 2, device=device, dtype=dtype)
    for j in range(2):
        mapping[j, :, :, j] = base.T
    return mapping.view(6, h * w * 2)


def affine_resample(
    images: Tensor,
    rotation: ParamLike | None = None,
    translate_x: ParamLike | None = None,
    translate_y: ParamLike | None = None,
    scale: ParamLike | None = None,
    *,
    invert: bool = False,
) -> Tensor:
    """Rotate (deg, counter-clockwise as shown) and zoom (log-factor) about the centre, then shift (px); with
    `invert`, the inverse of that map (the same edit undone).

    All four are folded into one affine matrix per sample so the image is resampled only once
    (bilinear, border padding, align_corners=False). Arguments left as None are neutral.
    """
    theta = _affine_theta(images, rotation, translate_x, translate_y, scale, invert=invert)
    grid = _affine_grid(theta, images.shape[-2], images.shape[-1])
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def move_points(points: Tensor, images: Tensor, params: Mapping[str, ParamLike]) -> Tensor:
    """(N, K, 2) points, (x, y) as fractions of the width and height (y down), carried where the geometric part of
    `params` (rotation, shift, zoom) moves that spot of `images`: a landmark follows its image. Photometric
    attributes move nothing. Differentiable in the parameters."""
    geometric = _active_geometry(images, params)
    if not geometric:
        return points
    theta = _affine_theta(images, invert=True, **geometric)
    normalised = points * 2 - 1  # align_corners=False: -1 and 1 are the outer edges of the border pixels
    moved = normalised @ theta[:, :, :2].transpose(1, 2) + theta[:, :, 2].unsqueeze(1)
    return (moved + 1) / 2


def undo_geometry(images: Tensor, params: Mapping[str, ParamLike]) -> Tensor:
    """The images with the geometric part of `params` (rotation, shift, zoom) undone: what a person compares when
    they see the same object turned or moved. Photometric attributes are left as they are; pixels the edit pushed
    out of the frame come back as the border's colour."""
    geometric = _active_geometry(images, params)
    return affine_resample(images, invert=True, **geometric) if geometric else images


def _active_geometry(images: Tensor, params: Mapping[str, ParamLike]) -> dict[str, ParamLike]:
    """The geometric part of `params`, or {} when it is absent or exactly neutral (nothing to move)."""
    geometric = {name: params[name] for name in GEOMETRIC_NAMES if name in params}
    if all(_is_inactive(_as_param(value, images)) for value in geometric.values()):
        return {}
    return geometric


def _single_geometric(key: str) -> Callable[[Tensor, Tensor], Tensor]:
    def fn(images: Tensor, param: Tensor) -> Tensor:
        p = _as_param(param, images)
        if _is_inactive(p):
            return images
        return affine_resample(images, **{key: p})

    return fn


rotate = _single_geometric("rotation")
rotate.__doc__ = "Rotate about the centre by `param` degrees (counter-clockwise as displayed)."
translate_x = _single_geometric("translate_x")
translate_x.__doc__ = "Shift right by `param` pixels (border pixels are repeated)."
translate_y = _single_geometric("translate_y")
translate_y.__doc__ = "Shift down by `param` pixels (border pixels are repeated)."
zoom = _single_geometric("scale")
zoom.__doc__ = "Zoom about the centre by the factor e^param."


# --------------------------------------------------------------------------- photometry


def _brightness(images: Tensor, p: Tensor) -> Tensor:
    return images + p.view(-1, 1, 1, 1)


def _mean_luma(images: Tensor) -> Tensor:
    """(N, 1, 1, 1) each image's mean luma: the luma of the channel means (luma is linear), so no per-pixel luma
    image is made, nor its backward."""
    means = images.mean(dim=(2, 3))
    if images.shape[1] == 3:
        means = means @ _constant("luma", images.dtype, images.device).view(3, 1)
    return means.view(-1, 1, 1, 1) if images.shape[1] in (1, 3) else means.mean(1).view(-1, 1, 1, 1)


def _contrast(images: Tensor, p: Tensor) -> Tensor:
    # one mean per image (its mean luma), shared by the channels, so hue is unchanged
    mean = _mean_luma(images)
    return (images - mean) * torch.exp(p).view(-1, 1, 1, 1) + mean


def _gamma(images: Tensor, p: Tensor) -> Tensor:
    # x ** e^g written as exp(e^g log x): the same values to float rounding, and its backward reuses the log instead
    # of pow's two extra powers (half the cost in the attack's step); the clamp keeps log x finite at black pixels
    return torch.exp(torch.log(images.clamp_min(_GAMMA_EPS)) * torch.exp(p).view(-1, 1, 1, 1))


def _saturation(images: Tensor, p: Tensor) -> Tensor:
    gray = _luma(images)
    return gray + torch.exp(p).view(-1, 1, 1, 1) * (images - gray)


def _yiq_hue_basis() -> tuple[Tensor, Tensor]:
    """Fixed 3x3 matrices A, B with RGB->YIQ->rotate(h)->RGB = I + (cos h - 1) A + sin h B."""
    m = torch.tensor(
        [
            [0.299, 0.587, 0.114],
            [0.595716, -0.274453, -0.321263],
            [0.211456, -0.522591, 0.311135],
        ],
        dtype=torch.float64,
    )
    m_inv = torch.linalg.inv(m)
    j = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
    a = m_inv[:, 1:] @ m[1:, :]
    b = m_inv[:, 1:] @ j @ m[1:, :]
    return a, b


# Written once at import, never mutated; writing the transform as I + K(h) makes h = 0 exact.
_HUE_A, _HUE_B = _yiq_hue_basis()


def _hue(images: Tensor, p: Tensor) -> Tensor:
    a = _constant("hue_a", images.dtype, images.device)
    b = _constant("hue_b", images.dtype, images.device)
    k = (torch.cos(p) - 1.0).view(-1, 1, 1) * a + torch.sin(p).view(-1, 1, 1) * b
    return images + torch.einsum("nij,njhw->nihw", k, images)


def _tints(images: Tensor, red: Tensor, green: Tensor, blue: Tensor) -> Tensor:
    # the three tints are adjacent in the composition order and commute, so add them at once
    return images + torch.stack([red, green, blue], dim=1).view(-1, 3, 1, 1)


_BLUR_ANCHORS = (0.0, 0.4, 0.8, 1.2)  # sigma (px at 32 px) of the fixed kernels that blur mixes between


def _blur_radius(scale: float) -> int:
    return round(_BLUR_RADIUS * scale)


def _blur_kernels(scale: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """(len(_BLUR_ANCHORS), 2 r + 1) Gaussian kernels at sigma = anchor * scale, radius r = 3 * scale (the widest
    sigma's 2.5 sigma); the sigma = 0 kernel is a delta."""
    with torch.inference_mode(False):  # cached: must stay usable by autograd (see `_constant`)
        return _cached_blur_kernels(scale, dtype, device)


@functools.lru_cache(maxsize=16)
def _cached_blur_kernels(scale: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    radius = _blur_radius(scale)
    k = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    kernels = [torch.exp(-(k ** 2) / (2.0 * (sigma * scale) ** 2 + _BLUR_EPS)) for sigma in _BLUR_ANCHORS]
    stacked = torch.stack(kernels)
    return stacked / stacked.sum(dim=1, keepdim=True)


def _blur_weights(p: Tensor, scale: float) -> Tensor:
    """(N, 2 r + 1) taps: piecewise-linear mix of the anchor kernels at sigma = p.

    Mixing fixed kernels (rather than exp(-k^2 / 2 sigma^2)) keeps sigma = 0 the exact identity
    while giving a non-zero gradient there, so an attack starting at neutral can discover blur.
    """
    kernels = _blur_kernels(scale, p.dtype, p.device)
    spacing = _BLUR_ANCHORS[1] * scale
    t = p / spacing
    # torch.where instead of clamp: clamp's gradient is 0 at the bound itself, i.e. at sigma = 0
    t = torch.where(t < 0, torch.zeros_like(t), torch.where(t > len(_BLUR_ANCHORS) - 1.0,
                                                           torch.full_like(t, len(_BLUR_ANCHORS) - 1.0), t))
    index = t.detach().floor().clamp(max=len(_BLUR_ANCHORS) - 2).long()
    fraction = (t - index.to(p.dtype)).view(-1, 1)
    return (1.0 - fraction) * kernels[index] + fraction * kernels[index + 1]


def _blur_matrix(p: Tensor, size: int, scale: float) -> Tensor:
    """(N, size, size) banded matrix of the blur taps, replicate padding folded in."""
    r = _blur_radius(scale)
    k = torch.arange(-r, r + 1, device=p.device)
    weights = _blur_weights(p, scale)  # (N, 2 r + 1)
    # row i takes weight w_k from pixel clamp(i + k): replicate padding keeps constants constant
    idx = (torch.arange(size, device=p.device).view(-1, 1) + k).clamp_(0, size - 1)
    n = p.shape[0]
    mat = p.new_zeros(n, size, size)
    src = weights.view(n, 1, -1).expand(n, size, -1)
    return mat.scatter_add(2, idx.expand(n, size, 2 * r + 1), src)


def _blur(images: Tensor, p: Tensor) -> Tensor:
    # separable blur as two small matmuls: much cheaper than a grouped conv on small images
    h, w = images.shape[-2:]
    scale = pixel_scale(images.shape)  # the anchors and the radius widen with the image, like the range
    rows = _blur_matrix(p, h, scale)
    cols = rows if w == h else _blur_matrix(p, w, scale)
    return rows.unsqueeze(1) @ images @ cols.transpose(-1, -2).unsqueeze(1)


def _public(
    op: Callable[[Tensor, Tensor], Tensor], doc: str, rgb_name: str | None = None
) -> Callable[[Tensor, Tensor], Tensor]:
    """Wrap a raw op: check channels, normalise the param, and skip it when inactive."""

    def fn(images: Tensor, param: Tensor) -> Tensor:
        if rgb_name is not None:
            _require_rgb(images, rgb_name)
        p = _as_param(param, images)
        if _is_inactive(p):
            return images
        return op(images, p)

    fn.__doc__ = doc
    return fn


def _single_tint(channel: int) -> Callable[[Tensor, Tensor], Tensor]:
    def op(images: Tensor, p: Tensor) -> Tensor:
        zeros = torch.zeros_like(p)
        parts = [zeros, zeros, zeros]
        parts[channel] = p
        return _tints(images, *parts)

    return op


adjust_brightness = _public(_brightness, "x + b.")
adjust_contrast = _public(
    _contrast, "(x - m) e^c + m, where m is the image's mean luma (one scalar per image)."
)
adjust_gamma = _public(_gamma, "x ** e^g, with x clamped to >= 1e-6 so gradients stay finite.")
adjust_saturation = _public(
    _saturation, "gray + e^s (x - gray), gray = Rec. 601 luma; RGB only.", "saturation"
)
shift_hue = _public(
    _hue, "Rotate the YIQ chroma plane (I, Q) by h radians and convert back; RGB only.", "hue"
)
tint_red = _public(_single_tint(0), "Add `param` to the red channel only; RGB only.", "tint_red")
tint_green = _public(
    _single_tint(1), "Add `param` to the green channel only; RGB only.", "tint_green"
)
tint_blue = _public(_single_tint(2), "Add `param` to the blue channel only; RGB only.", "tint_blue")
gaussian_blur = _public(
    _blur,
    "Separable Gaussian blur of width `param` px (radius 3, replicate padding): a piecewise-linear\n"
    "mix of fixed kernels at sigma 0, 0.4, 0.8 and 1.2, so 0 is exactly the identity and the\n"
    "gradient at 0 is non-zero. On images over 32 px the anchor sigmas and the radius are multiplied\n"
    "by `pixel_scale` (min(H, W) / 32), as is the attribute's range.",
)

_PHOTOMETRIC_OPS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "brightness": _brightness,
    "contrast": _contrast,
    "gamma": _gamma,
    "saturation": _saturation,
    "hue": _hue,
    "blur": _blur,
}
_TINT_NAMES = ("tint_red", "tint_green", "tint_blue")


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Attribute:
    """One named, bounded semantic attribute and its single-attribute transform."""

    name: str
    label: str
    low: float
    high: float
    neutral: float
    unit: str
    kind: AttributeKind
    rgb_only: bool
    step: float
    description: str
    fn: Callable[[Tensor, Tensor], Tensor] = field(repr=False, compare=False)

    @property
    def width(self) -> float:
        return self.high - self.low

    @property
    def in_pixels(self) -> bool:
        """Whether the range is a length in pixels, tuned at 28 and 32 px, that `for_image` scales."""
        return self.unit == "px"

    @property
    def slider_label(self) -> str:
        """The label of a slider that moves this attribute in its own units, the units in words (the edit's reading,
        "×1.05" or "+30°", is said beside it)."""
        words = {"log-factor": "log of the factor", "log-exponent": "log of the exponent", "deg": "degrees",
                 "rad": "radians", "px": "pixels"}.get(self.unit, self.unit)
        return f"{self.label} ({words})" if words else self.label

    def for_image(self, image_shape: ImageShape) -> Attribute:
        """This attribute with its range and slider step fitted to images of `image_shape` ((C, H, W) or
        (N, C, H, W)): pixel ranges times `pixel_scale` (1 up to 32 px, H / 32 beyond), others unchanged."""
        scale = pixel_scale(image_shape)
        if not self.in_pixels or scale == 1.0:
            return self
        return dataclasses.replace(self, low=self.low * scale, high=self.high * scale, step=self.step * scale)

    def clamp(self, param: Tensor) -> Tensor:
        """Project `param` into [low, high]."""
        return torch.clamp(param, self.low, self.high)

    def reading(self, value: float) -> str:
        """`value` as a person reads the edit: log units as the factor they apply (zoom ×1.05), angles in degrees,
        lengths in pixels; an amount added to pixel values in 255ths. A value that rounds to neutral
        reads as neutral ("+0.0°", never "-0.0°": a slider's steps need not land on neutral exactly)."""
        text, neutral = self._formatted(value), self._formatted(self.neutral)
        return neutral if text.lstrip("+-") == neutral.lstrip("+-") else text

    def _formatted(self, value: float) -> str:
        if self.unit == "log-factor":
            return f"×{math.exp(value):.2f}"
        if self.unit == "log-exponent":
            return f"exponent {math.exp(value):.2f}"
        if self.unit == "deg":
            return f"{value:+.1f}°"
        if self.unit == "rad":
            return f"{math.degrees(value):+.0f}°"  # of the colour wheel: the label, "Hue shift", says which turn
        if self.unit == "px":
            return f"{value:+.2f} px" if self.low < 0 else f"{value:.2f} px"
        return f"{value * 255:+.1f}/255"  # an amount added to pixel values, in 255ths as every pixel budget here


_REGISTRY: tuple[Attribute, ...] = (
    Attribute(
        "rotation", "Rotation", -20.0, 20.0, 0.0, "deg", "geometric", False, 0.5,
        "Turns the picture about its centre, counter-clockwise for positive angles.", rotate,
    ),
    Attribute(
        "translate_x", "Shift right", -3.0, 3.0, 0.0, "px", "geometric", False, 0.1,
        "Moves the picture to the right (or left, if negative) by a few pixels.", translate_x,
    ),
    Attribute(
        "translate_y", "Shift down", -3.0, 3.0, 0.0, "px", "geometric", False, 0.1,
        "Moves the picture down (or up, if negative) by a few pixels.", translate_y,
    ),
    Attribute(
        "scale", "Zoom", math.log(0.85), math.log(1.15), 0.0, "log-factor", "geometric", False,
        0.005, "Enlarges or shrinks the picture about its centre by the factor e^value.", zoom,
    ),
    Attribute(
        "brightness", "Brightness", -0.25, 0.25, 0.0, "", "photometric", False, 0.01,
        "Adds the same amount to every pixel, making the picture lighter or darker.",
        adjust_brightness,
    ),
    Attribute(
        "contrast", "Contrast", -0.5, 0.5, 0.0, "log-factor", "photometric", False, 0.01,
        "Stretches or squeezes pixel values around the picture's average brightness.",
        adjust_contrast,
    ),
    Attribute(
        "gamma", "Gamma", -0.4, 0.4, 0.0, "log-exponent", "photometric", False, 0.01,
        "Darkens (positive) or lightens (negative) mid-tones while keeping black and white fixed.",
        adjust_gamma,
    ),
    Attribute(
        "saturation", "Saturation", -0.7, 0.5, 0.0, "log-factor", "photometric", True, 0.01,
        "Makes colours more vivid (positive) or more washed-out and gray (negative).",
        adjust_saturation,
    ),
    Attribute(
        # the full wheel: hue is circular, and "any colour" is the semantic question a user asks
        "hue", "Hue shift", -math.pi, math.pi, 0.0, "rad", "photometric", True, 0.02,
        "Turns every colour around the colour wheel (±π is a half turn) while keeping its brightness.", shift_hue,
    ),
    Attribute(
        "tint_red", "Red tint", -0.15, 0.15, 0.0, "", "photometric", True, 0.005,
        "Adds or removes a little red across the whole picture.", tint_red,
    ),
    Attribute(
        "tint_green", "Green tint", -0.15, 0.15, 0.0, "", "photometric", True, 0.005,
        "Adds or removes a little green across the whole picture.", tint_green,
    ),
    Attribute(
        "tint_blue", "Blue tint", -0.15, 0.15, 0.0, "", "photometric", True, 0.005,
        "Adds or removes a little blue across the whole picture.", tint_blue,
    ),
    Attribute(
        "blur", "Blur", 0.0, 1.2, 0.0, "px", "photometric", False, 0.01,
        "Softens the picture with a Gaussian blur of the given width in pixels.", gaussian_blur,
    ),
)

# The one composition order: the geometric ones as a single resample, then photometric ones,
# colour edits before blur (blur last so it smooths the final colours), clamp to [0, 1] at the end.
COMPOSITION_ORDER: tuple[str, ...] = tuple(a.name for a in _REGISTRY)
ATTRIBUTES: dict[str, Attribute] = {a.name: a for a in _REGISTRY}
GEOMETRIC_NAMES: tuple[str, ...] = tuple(a.name for a in _REGISTRY if a.kind == "geometric")


def edits_in_words(params: Mapping[str, float]) -> str:
    """The attributes `params` moves away from neutral, each as a person reads it ("Zoom ×1.08 · Rotation +5.0°"),
    in the registry's order; "" when none moves (a value that reads as neutral, as zoom ×1.00, has not moved)."""
    readings = ((attribute, attribute.reading(float(params[attribute.name]))) for attribute in _REGISTRY
                if attribute.name in params)
    return " · ".join(f"{attribute.label} {text}" for attribute, text in readings
                      if text != attribute.reading(attribute.neutral))


def applicable_attributes(num_channels: int) -> list[Attribute]:
    """Attributes that apply to images with `num_channels` channels, in composition order."""
    if num_channels < 1:
        raise ValueError(f"num_channels must be positive, got {num_channels}")
    return [a for a in ATTRIBUTES.values() if num_channels == 3 or not a.rgb_only]


def attributes_for(image_shape: ImageShape) -> list[Attribute]:
    """Attributes that apply to images of `image_shape` ((C, H, W) or (N, C, H, W)), in composition order, with
    ranges and steps fitted to the image size: what sliders and attacks use."""
    pixel_scale(image_shape)  # refuses a shape that is not (C, H, W) or (N, C, H, W) before anything else
    return [attribute.for_image(image_shape) for attribute in applicable_attributes(int(image_shape[-3]))]


def attribute_range(name: str, image_shape: ImageShape) -> tuple[float, float]:
    """(low, high) of attribute `name` on images of `image_shape`, e.g. translate_x: (-3, 3) at 28 and 32 px,
    (-21, 21) at 224 px."""
    if name not in ATTRIBUTES:
        raise ValueError(f"unknown attribute '{name}'; known: {', '.join(COMPOSITION_ORDER)}")
    attribute = ATTRIBUTES[name].for_image(image_shape)
    return attribute.low, attribute.high


def neutral_params(
    names: Sequence[str],
    batch_size: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> dict[str, Tensor]:
    """Map each name to a (batch_size,) tensor filled with that attribute's neutral value."""
    out: dict[str, Tensor] = {}
    for name in names:
        if name not in ATTRIBUTES:
            raise ValueError(f"unknown attribute '{name}'; known: {', '.join(COMPOSITION_ORDER)}")
        out[name] = torch.full((batch_size,), ATTRIBUTES[name].neutral, device=device, dtype=dtype)
    return out


def apply_attributes(images: Tensor, params: Mapping[str, ParamLike]) -> Tensor:
    """Apply the given attributes in COMPOSITION_ORDER, then clamp to [0, 1].

    `params` maps names to (N,) tensors (or scalars, broadcast to N); names not given stay neutral.
    Geometric attributes are applied together as one affine resample. Raises ValueError for an
    unknown name or a non-neutral RGB-only attribute on a non-RGB image.
    """
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(
            f"images must be a float tensor (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
        )
    active: dict[str, Tensor] = {}
    for name, value in params.items():
        attr = ATTRIBUTES.get(name)
        if attr is None:
            raise ValueError(f"unknown attribute '{name}'; known: {', '.join(COMPOSITION_ORDER)}")
        p = _as_param(value, images)
        if attr.rgb_only and images.shape[1] != 3:
            if bool(torch.any(p != attr.neutral)):
                raise ValueError(
                    f"attribute '{name}' applies to RGB images only, "
                    f"but the images have {images.shape[1]} channel(s)"
                )
            continue  # neutral on a gray image: nothing to do
        if not _is_inactive(p):
            active[name] = p

    out = images
    geometric = {k: active[k] for k in GEOMETRIC_NAMES if k in active}
    if geometric:
        out = affine_resample(
            out,
            rotation=geometric.get("rotation"),
            translate_x=geometric.get("translate_x"),
            translate_y=geometric.get("translate_y"),
            scale=geometric.get("scale"),
        )
    tints_done = False
    for name in COMPOSITION_ORDER:
        if name not in active or ATTRIBUTES[name].kind != "photometric":
            continue
        if name in _TINT_NAMES:
            if not tints_done:
                zeros = torch.zeros_like(active[name])
                out = _tints(out, *(active.get(t, zeros) for t in _TINT_NAMES))
                tints_done = True
            continue
        out = _PHOTOMETRIC_OPS[name](out, active[name])
    return out.clamp(0.0, 1.0)
