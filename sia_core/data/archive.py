"""Unpack a user's `.zip` of an image folder with hard limits: size, file count, pixels, no path traversal,
no links, no zip bomb. Everything it refuses raises a `DataError` that says which limit was hit."""

from __future__ import annotations

import io
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sia_core.errors import DataError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})


@dataclass(frozen=True)
class ArchiveLimits:
    """What an uploaded archive may hold. The defaults fit a few thousand small images on a shared server."""

    max_archive_bytes: int = 200 * 1024 * 1024
    max_files: int = 20_000
    max_total_bytes: int = 1024 * 1024 * 1024   # uncompressed, all members together
    max_member_bytes: int = 20 * 1024 * 1024    # uncompressed, one member
    max_compression_ratio: float = 200.0        # uncompressed / compressed, per member (bombs reach 1000+)
    max_image_pixels: int = 4096 * 4096         # width x height of one image, read from its header


def _safe_member_path(name: str) -> PurePosixPath:
    """The member's relative path, or a DataError for absolute paths, '..' and drive letters."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise DataError(f"The archive holds an unsafe path {name!r} (absolute or with '..'); it was refused.")
    return path


def _image_pixels(data: bytes) -> int:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            return image.width * image.height
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return -1


def extract_image_archive(data: bytes, destination: str | Path, limits: ArchiveLimits = ArchiveLimits()) -> Path:
    """Check every member of the zip in `data` against `limits`, then write its images under `destination`.

    Non-image files (and macOS `__MACOSX` folders) are skipped. Returns `destination`. Nothing is written
    unless every member passes, so a refused archive leaves no partial folder behind.
    """
    if len(data) > limits.max_archive_bytes:
        raise DataError(f"The archive is larger than {limits.max_archive_bytes // (1024 * 1024)} MB.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise DataError(f"The file is not a readable .zip archive ({error}).") from error
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) > limits.max_files:
            raise DataError(f"The archive holds {len(members)} files; at most {limits.max_files} are accepted.")
        total = 0
        accepted: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
        for info in members:
            path = _safe_member_path(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise DataError(f"The archive holds a symbolic link {info.filename!r}; links are refused.")
            if path.parts and path.parts[0] == "__MACOSX" or path.name.startswith("."):
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if info.file_size > limits.max_member_bytes:
                raise DataError(f"{info.filename} is {info.file_size // (1024 * 1024)} MB uncompressed; at most "
                                f"{limits.max_member_bytes // (1024 * 1024)} MB per file.")
            if info.compress_size and info.file_size / info.compress_size > limits.max_compression_ratio:
                raise DataError(f"{info.filename} compresses {info.file_size / info.compress_size:.0f}:1, which "
                                "looks like a zip bomb; it was refused.")
            total += info.file_size
            if total > limits.max_total_bytes:
                raise DataError(f"The archive unpacks to more than {limits.max_total_bytes // (1024 * 1024)} MB.")
            accepted.append((info, path))
        if not accepted:
            raise DataError("The archive holds no PNG, JPEG, WebP or BMP images.")
        contents: list[tuple[PurePosixPath, bytes]] = []
        for info, path in accepted:
            # read at most the declared size + 1: a member that lies about its size is caught here
            with archive.open(info) as handle:
                payload = handle.read(limits.max_member_bytes + 1)
            if len(payload) > limits.max_member_bytes or len(payload) != info.file_size:
                raise DataError(f"{info.filename} does not match its declared size; the archive was refused.")
            pixels = _image_pixels(payload)
            if pixels < 0:
                raise DataError(f"{info.filename} is not a readable image.")
            if pixels > limits.max_image_pixels:
                raise DataError(f"{info.filename} has {pixels:,} pixels; at most {limits.max_image_pixels:,} per image.")
            contents.append((path, payload))
    destination = Path(destination)
    for path, payload in contents:
        target = destination.joinpath(*path.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(payload)
    return destination
