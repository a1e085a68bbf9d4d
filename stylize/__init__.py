"""stylize: repaint photos in an artistic style, with faces kept recognisable.

    import stylize
    stylize.list_styles()
    painter = stylize.Stylizer("starry_night")
    painter("portrait.jpg", strength=0.8).save("out.jpg")

Heavy modules (torch, MediaPipe) load on first use, so importing is instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (BadWeightsError, DeviceError, ImageTooLargeError, MissingExtraError, OutOfMemoryError,
                     OutputError, StylizeError, UnknownStyleError, UnreadableImageError)

if TYPE_CHECKING:
    from .api import Stylizer, list_styles, stylize
    from .options import EngineName, HDStrategy, Options

__all__ = ["Stylizer", "stylize", "list_styles", "Options", "HDStrategy", "EngineName", "StylizeError", "UnreadableImageError",
           "ImageTooLargeError", "UnknownStyleError", "BadWeightsError", "OutputError", "DeviceError",
           "OutOfMemoryError", "MissingExtraError"]


def __getattr__(name: str) -> Any:
    if name in ("Stylizer", "stylize", "list_styles"):
        from . import api

        return getattr(api, name)
    if name in ("Options", "HDStrategy", "EngineName"):
        from . import options

        return getattr(options, name)
    raise AttributeError(f"module 'stylize' has no attribute {name!r}")
