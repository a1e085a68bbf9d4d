"""User-facing options, kept free of heavy imports so the CLI starts instantly.

Three high-resolution strategies, chosen explicitly (like an HD strategy):

* ``resize``   -- stylise at the working size, then upsample edge-aware (a joint bilateral
                  upsampling steered by the full-resolution photo).
                  Fast, bounded memory, strokes at the working-size scale. The default.
* ``tiled``    -- stylise at full resolution in overlapping tiles that all share the
                  instance-norm statistics of one whole-image pass: no seams, no colour jumps.
* ``original`` -- one full-resolution pass, no tiling (small photos; needs the most memory).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from .errors import StylizeError

#: Refuse images above this many pixels unless the caller raises the limit (decompression-bomb guard).
DEFAULT_MAX_PIXELS = 100_000_000
#: the web page's lower guard: a small file can decode to a large photo, and the page keeps several in memory
PAGE_MAX_PIXELS = 50_000_000


class HDStrategy(str, enum.Enum):
    RESIZE = "resize"
    TILED = "tiled"
    ORIGINAL = "original"


class EngineName(str, enum.Enum):
    """What runs the network (a pipeline's choice, beside the device; see ``stylize.engines.open_engine``)."""

    AUTO = "auto"
    ONNXRUNTIME = "onnxruntime"
    TORCH = "torch"


#: How strongly faces are painted (0: the photo's face, toned to the painting's colours; 1: fully stylised) where
#: the style's metadata (``face_strength`` in styles/NAME.json) does not say: chosen with the face benchmark.
DEFAULT_FACE_STRENGTH = 0.6

#: Default working size (long side, px): strokes read as the painting's, not as noise, at this scale.
DEFAULT_SIZE = 768
DEFAULT_QUALITY = 92
#: Side (px) of the aligned crop each face is painted at: its eyes 128 px apart (``faces.TEMPLATE``).
DEFAULT_FACE_CROP = 512


@dataclass(frozen=True)
class Options:
    """What a user can set: the one schema behind the CLI, the API and batch (their defaults come from here,
    and ``validated`` is the one place their ranges are checked). ``strength`` 0 returns the photo; 1 the style."""

    strength: float = 1.0
    #: None: the style's own default (strong styles keep faces with a lower one), else DEFAULT_FACE_STRENGTH
    face_strength: float | None = None
    preserve_colors: bool = False
    faces: bool = True
    #: the side of the aligned crop each face is painted at: smaller is faster and paints the face more coarsely
    #: (the web page's thumbnails, where a face is a few pixels, use 128)
    face_crop: int = DEFAULT_FACE_CROP
    size: int = DEFAULT_SIZE
    hd: HDStrategy = HDStrategy.RESIZE
    max_pixels: int = DEFAULT_MAX_PIXELS
    #: write what the file is (AI-made, software, style, options) into its XMP metadata
    provenance: bool = True
    #: look for each face again on the output (face mesh at its crop) and report the ones lost
    check: bool = True
    #: JPEG and WebP quality of written files
    quality: int = DEFAULT_QUALITY

    def validated(self) -> "Options":
        for name in ("strength", "face_strength"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise StylizeError(f"{name} must be between 0 and 1, got {value}")
        if not 64 <= self.face_crop <= 2048:
            raise StylizeError(f"face_crop must be between 64 and 2048 pixels, got {self.face_crop}")
        if not 64 <= self.size <= 8192:
            raise StylizeError(f"size must be between 64 and 8192 pixels, got {self.size}")
        if self.max_pixels < 1:
            raise StylizeError(f"max_pixels must be positive, got {self.max_pixels}")
        if not 1 <= self.quality <= 100:
            raise StylizeError(f"quality must be between 1 and 100, got {self.quality}")
        return replace(self, hd=HDStrategy(self.hd))


#: A video's painting defaults: each frame is seen for a moment, so a smaller working size and face crop buy the
#: frame rate (720p at 512 px paints about three times as fast as at 768; ``benchmarks/video.py``).
VIDEO_SIZE, VIDEO_FACE_CROP = 512, 256
#: What a video is painted with unless the caller says otherwise (there is no per-frame face warning to give)
VIDEO_PAINTING = Options(size=VIDEO_SIZE, face_crop=VIDEO_FACE_CROP, check=False)


@dataclass(frozen=True)
class VideoOptions:
    """What a video adds to ``Options`` (the CLI's ``stylize video``, ``Stylizer.video`` and ``Stylizer.frames``)."""

    #: seconds into the clip where the output begins, and where it ends (None: the clip's end)
    start: float = 0.0
    end: float | None = None
    #: hold strokes steady from frame to frame along the motion; False paints each frame on its own
    stabilise: bool = True
    #: faces are searched for anew every this many frames, and followed by the face mesh in between
    detect_every: int = 5
    #: with ``stabilise``, the networks paint every this many frames; the frames between carry the last painting
    #: along the motion (1: every frame painted, at about half the frame rate); a frame whose light changes is
    #: painted anyway
    paint_every: int = 2

    def validated(self) -> "VideoOptions":
        if self.start < 0:
            raise StylizeError(f"start must be 0 or later, got {self.start}")
        if self.end is not None and self.end <= self.start:
            raise StylizeError(f"end ({self.end}) must be after start ({self.start})")
        for name in ("detect_every", "paint_every"):
            if getattr(self, name) < 1:
                raise StylizeError(f"{name} must be 1 or more, got {getattr(self, name)}")
        return self
