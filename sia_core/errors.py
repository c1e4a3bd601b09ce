"""User-facing errors of the engine.

Every failure a user can cause (a missing folder, a bad checkpoint, a corrupt image) raises a
subclass of `SiaError` whose message is written for that user; the app and the CLI show it as is.
"""

from __future__ import annotations


class SiaError(Exception):
    """An error whose message is fit to show to the user, without a traceback."""


class DataError(SiaError):
    """A dataset could not be found or read."""


class CheckpointError(SiaError):
    """Model weights or their card are missing, unreadable or do not fit the architecture."""


class ImageDecodeError(SiaError):
    """An uploaded image could not be decoded safely."""


class ConfigError(SiaError):
    """A configuration value is out of range or unknown (a negative eps, an unknown method name)."""
