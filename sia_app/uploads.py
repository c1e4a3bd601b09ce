"""Uploaded images kept on the server, by the SHA-256 of their bytes, so a share link can name one (`sia_upload_id`)
and a fresh browser opens the same photo. Only 64-hex-digit names are ever read, from this one folder."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from pathlib import Path
from typing import Optional

from sia_core.models.measured import user_folder

KEEP = 200  # the newest uploads kept; older ones drop out (their links then say the image is gone)
_DIGEST = re.compile(r"[0-9a-f]{64}")


def is_digest(name: str) -> bool:
    """Whether a file or folder name is a SHA-256 digest: the only names the uploads' folders read or remove."""
    return _DIGEST.fullmatch(name) is not None


def uploads_folder() -> Path:
    return user_folder() / "uploads"


def keep_upload(data: bytes) -> str:
    """Store `data` (already decoded once, so an image within the upload limits) and return its digest."""
    digest = hashlib.sha256(data).hexdigest()
    folder = uploads_folder()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / digest
    if not path.is_file():
        partial = path.with_suffix(f".partial-{os.getpid()}-{threading.get_ident()}")  # one per session's thread
        partial.write_bytes(data)
        partial.replace(path)
        kept = sorted((p for p in folder.iterdir() if is_digest(p.name)), key=modified_time)
        for old in kept[:-KEEP]:
            old.unlink(missing_ok=True)
    return digest


def modified_time(path: Path) -> float:
    """A kept upload's modification time; one that another session pruned meanwhile sorts last (nothing to drop)."""
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")


def kept_upload(digest: str) -> Optional[bytes]:
    """The bytes of a kept upload, or None (a malformed name, or an upload no longer kept)."""
    if not _DIGEST.fullmatch(digest or ""):
        return None
    path = uploads_folder() / digest
    return path.read_bytes() if path.is_file() else None
