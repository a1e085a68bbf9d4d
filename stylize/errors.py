"""The one exception family every user-facing failure raises.

The CLI turns any ``StylizeError`` into one line on stderr and exit status 2;
anything else escaping is a bug.
"""

from __future__ import annotations


class StylizeError(Exception):
    """Base class of every error a user can cause and fix."""


class UnreadableImageError(StylizeError):
    """The input is missing, empty, truncated or not an image."""


class ImageTooLargeError(StylizeError):
    """The image has more pixels than the configured limit (decompression-bomb guard)."""


class UnknownStyleError(StylizeError):
    """The style name is not in the catalogue (or tries to leave it)."""


class BadWeightsError(StylizeError):
    """A weights file is missing, corrupt, or does not match the architecture it claims."""


class OutputError(StylizeError):
    """The output cannot be written, or would overwrite the input."""


class DeviceError(StylizeError):
    """The requested compute device is not available."""


class OutOfMemoryError(StylizeError):
    """The photo needs more memory than the device has at these settings (one photo; a batch goes on)."""


class MissingExtraError(StylizeError):
    """A feature needs a part of stylize that is not installed; the message names what to install."""


class UnreadableVideoError(StylizeError):
    """The video cannot be opened or decoded (missing, corrupt, truncated, no video stream)."""
