"""Decode one uploaded image safely into a [0, 1] tensor of a model's input shape.

Guards against decompression bombs, honours EXIF orientation, converts the mode, resizes.
"""

from __future__ import annotations

import io

import numpy as np
import torch

from sia_core.errors import ImageDecodeError

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 20_000_000  # larger images are refused before decoding (decompression-bomb guard)
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP")


def decode_photo(data: bytes) -> torch.Tensor:
    """Decode PNG/JPEG/WebP `data` at its own size into a (3, H, W) RGB tensor in [0, 1] (EXIF orientation applied,
    transparency on white), for detectors that look at the whole photo. Raises `ImageDecodeError` as `decode_image`."""
    return _decode(data, None)[0]


def decode_image(data: bytes, input_shape: tuple[int, int, int]) -> torch.Tensor:
    """Decode PNG/JPEG/WebP `data` into a (1, C, H, W) float tensor in [0, 1].

    C = 1 converts to grayscale, C = 3 to RGB; the largest centred crop of the model's aspect ratio is resized
    (Lanczos) to H x W, so a photo is not squeezed.
    Raises `ImageDecodeError` with a message for the user on anything unreadable.
    """
    return _decode(data, input_shape)


def _decode(data: bytes, input_shape: tuple[int, int, int] | None) -> torch.Tensor:
    """(1, C, H, W) at `input_shape`, or (1, 3, H, W) at the image's own size when it is None."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise ImageDecodeError("The file is empty.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageDecodeError(f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
    channels = 3 if input_shape is None else input_shape[0]
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in ALLOWED_FORMATS:
                raise ImageDecodeError(f"Unsupported image format {image.format}; use PNG, JPEG or WebP.")
            if image.width * image.height > MAX_PIXELS:
                raise ImageDecodeError(f"The image is too large ({image.width}x{image.height} pixels).")
            image = ImageOps.exif_transpose(image)
            if image.mode in ("RGBA", "LA", "P"):
                # composite transparency onto white rather than letting it turn black
                rgba = image.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image = Image.alpha_composite(background, rgba)
            image = image.convert("L" if channels == 1 else "RGB")
            if input_shape is not None:  # the centre at the model's aspect ratio, not squeezed
                image = ImageOps.fit(image, (input_shape[2], input_shape[1]), Image.Resampling.LANCZOS)
            array = np.asarray(image, dtype=np.float32) / 255.0
    except ImageDecodeError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise ImageDecodeError(f"Could not decode the image: it is corrupt or not an image ({type(error).__name__}).") from error
    tensor = torch.from_numpy(array.copy())
    tensor = tensor.unsqueeze(0) if channels == 1 else tensor.permute(2, 0, 1)
    return tensor.unsqueeze(0).clamp(0, 1)
