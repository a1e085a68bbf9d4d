"""Image I/O: any Pillow-readable file in, sRGB 8-bit out for the network; metadata kept; atomic saves.

Loading applies EXIF orientation, converts grayscale / palette / CMYK / 16-bit /
ICC-tagged images to sRGB 8-bit, and keeps alpha, EXIF and ICC aside so the
saved result carries them back (orientation reset, since pixels are upright).
"""

from __future__ import annotations

import io
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .atomic import atomic_path
from .errors import ImageTooLargeError, OutputError, UnreadableImageError
from .options import DEFAULT_MAX_PIXELS, DEFAULT_QUALITY

try:  # HEIC/HEIF, as phones save photos: Pillow reads them once pillow-heif registers its opener (at import)
    from pillow_heif import register_heif_opener
except ImportError:  # pragma: no cover -- a dependency; a broken install reads the other formats still
    pass
else:
    register_heif_opener()
EXIF_ORIENTATION = 0x0112
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
#: What a photo's metadata carries over, by allow-list: description, camera, date, author and copyright in
#: the main IFD (orientation is reset), exposure, date and lens in the Exif IFD, and the GPS IFD whole. Anything
#: else (a TIFF's strip layout and private tags, its ICC profile, maker notes) stays behind: it describes the
#: old file, or is large enough to cost the photo (JPEG holds at most 64 KB of EXIF).
KEPT_TAGS = frozenset({0x010E, 0x010F, 0x0110, EXIF_ORIENTATION, 0x0132, 0x013B, 0x8298})
KEPT_EXIF_TAGS = frozenset({0x829A, 0x829D, 0x8822, 0x8827, 0x9003, 0x9004, 0x9010, 0x9011, 0x9012, 0x9201,
                            0x9202, 0x9204, 0x9207, 0x9209, 0x920A, 0xA405, 0xA433, 0xA434})

ImageInput = Union[str, os.PathLike, Image.Image, np.ndarray]
LOG = logging.getLogger(__name__)


@dataclass
class Photo:
    """An upright sRGB photo plus what must be restored on save."""

    rgb: np.ndarray  # (H, W, 3) uint8, C-contiguous
    alpha: np.ndarray | None = None  # (H, W) uint8
    exif: bytes | None = None
    icc_profile: bytes | None = None
    source: Path | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]

    def release_pixels(self) -> None:
        """Drop the RGB array, keeping alpha and metadata for saving: one full-size image less in memory."""
        self.rgb = np.empty((0, 0, 3), np.uint8)


def _check_pixels(width: int, height: int, max_pixels: int, name: str) -> None:
    if width <= 0 or height <= 0:
        raise UnreadableImageError(f"{name}: image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageTooLargeError(f"{name}: {width}x{height} = {width * height / 1e6:.1f} MP exceeds the limit of "
                                 f"{max_pixels / 1e6:.0f} MP (the max_pixels option raises it)")


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert an ICC-tagged image to sRGB; untagged or unreadable profiles are taken as sRGB."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK", "L", "LA"):
        return image
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        dst = ImageCms.createProfile("sRGB")
        mode = "RGBA" if image.mode in ("RGBA", "LA") else "RGB"
        return ImageCms.profileToProfile(image, src, dst, outputMode=mode) or image
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image


def _sixteen_bit_to_8(image: Image.Image) -> Image.Image:
    """I;16 / I / F modes: scale the actual range to 0-255 rather than clipping."""
    array = np.asarray(image, dtype=np.float64)
    peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
    eight = Image.fromarray(np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if "icc_profile" in image.info:  # still to be converted to sRGB
        eight.info["icc_profile"] = image.info["icc_profile"]
    return eight


def _upright_with_exif(image: Image.Image) -> tuple[Image.Image, bytes | None]:
    """Apply the EXIF orientation; return the EXIF to carry over (orientation reset, encoding tags dropped).

    A corrupt EXIF block costs only the metadata, never the photo: the pixels are used as stored.
    """
    try:
        exif = image.getexif()
        upright = ImageOps.exif_transpose(image) or image
    except (SyntaxError, ValueError, TypeError, KeyError, IndexError, OverflowError, OSError, struct.error):
        return image, None
    if not exif:
        return upright, None
    try:
        kept = Image.Exif()
        for tag in KEPT_TAGS.intersection(exif):
            kept[tag] = exif[tag]
        kept[EXIF_ORIENTATION] = 1  # the pixels are upright now
        exif_ifd = {t: v for t, v in exif.get_ifd(EXIF_IFD).items() if t in KEPT_EXIF_TAGS}
        if exif_ifd:
            kept.get_ifd(EXIF_IFD).update(exif_ifd)
        gps = exif.get_ifd(GPS_IFD)
        if gps:
            kept.get_ifd(GPS_IFD).update(gps)
        return upright, kept.tobytes()
    except (ValueError, TypeError, KeyError, OverflowError, struct.error):
        return upright, None


def from_pil(image: Image.Image, name: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS,
             source: Path | None = None) -> Photo:
    _check_pixels(image.width, image.height, max_pixels, name)
    icc = image.info.get("icc_profile")
    image, exif_bytes = _upright_with_exif(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        image = _sixteen_bit_to_8(image)
    if image.mode == "P":  # before the colour conversion, which works on RGB(A) and L
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    image = _to_srgb(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "RGBa")
    target = "RGBA" if has_alpha else "RGB"
    converted = image if image.mode == target else image.convert(target)  # no extra full-size copy
    array = np.asarray(converted)
    alpha = np.ascontiguousarray(array[..., 3]) if has_alpha else None
    rgb = np.ascontiguousarray(array[..., :3])
    # pixels are sRGB now, so a tagged input gets an sRGB tag back rather than its original profile
    return Photo(rgb=rgb, alpha=alpha, exif=exif_bytes, icc_profile=srgb_profile() if icc else None, source=source)


def from_array(array: np.ndarray, max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    """HxW gray, HxWx3 RGB or HxWx4 RGBA; uint8, or float in [0, 1]."""
    shape_ok = array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))
    if not shape_ok:
        raise UnreadableImageError(f"array must be HxW, HxWx3 or HxWx4, got shape {getattr(array, 'shape', None)}")
    _check_pixels(array.shape[1], array.shape[0], max_pixels, "array")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.floating):
            raise UnreadableImageError(f"array dtype must be uint8 or float in [0, 1], got {array.dtype}")
        if not np.isfinite(array).all():
            raise UnreadableImageError("float array contains NaN or infinite values")
        low, high = float(array.min()), float(array.max())
        if low < -1e-3 or high > 1 + 1e-3:  # a float photo in 0-255 would otherwise turn white
            raise UnreadableImageError(f"float arrays must hold values in [0, 1], got {low:g} to {high:g}; "
                                       "divide by 255 or pass uint8")
        array = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    alpha = np.ascontiguousarray(array[..., 3]) if array.shape[2] == 4 else None
    return Photo(rgb=np.ascontiguousarray(array[..., :3]), alpha=alpha)


def load_photo(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    """Decode a file; every failure becomes ``UnreadableImageError`` or ``ImageTooLargeError``."""
    path = Path(path)
    if not path.exists():
        raise UnreadableImageError(f"{path}: " + ("broken or looping symlink" if path.is_symlink() else "no such file"))
    if path.is_dir():
        raise UnreadableImageError(f"{path}: is a directory, not an image")
    if not path.is_file():
        raise UnreadableImageError(f"{path}: not a regular file (a pipe or device is never read)")
    try:
        if path.stat().st_size == 0:
            raise UnreadableImageError(f"{path}: empty file")
    except PermissionError:
        raise UnreadableImageError(f"{path}: permission denied") from None
    return _decode(path, str(path), max_pixels, source=path)


def photo_from_bytes(data: bytes, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    """Decode a file's bytes (read from any filesystem); failures as ``load_photo``'s, named by ``name``."""
    if not data:
        raise UnreadableImageError(f"{name}: empty file")
    return _decode(io.BytesIO(data), name, max_pixels)


def _decode(file: Path | io.BytesIO, name: str, max_pixels: int, source: Path | None = None) -> Photo:
    try:
        # Pillow's warnings and its own bomb guard stay as the process has them (changing either for one call
        # would change it for every thread: the CLI quietens the warnings once, at start); our limit is checked
        # on the header, before any pixel is decoded
        with Image.open(file) as image:
            _check_pixels(image.width, image.height, max_pixels, name)
            image.load()
            return from_pil(image, name, max_pixels, source=source)
    except (UnreadableImageError, ImageTooLargeError):
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{name}: beyond Pillow's own decompression-bomb limit of "
                                 f"{2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} MP ({exc})") from None
    except UnidentifiedImageError:
        raise UnreadableImageError(f"{name}: not an image Pillow can read") from None
    except PermissionError:
        raise UnreadableImageError(f"{name}: permission denied") from None
    except (OSError, SyntaxError, ValueError, TypeError, IndexError, KeyError, EOFError,
            MemoryError, struct.error, ZeroDivisionError) as exc:
        raise UnreadableImageError(f"{name}: corrupt or truncated image ({exc.__class__.__name__}: {exc})") from None


def to_photo(image: ImageInput, max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    if isinstance(image, Image.Image):
        try:
            image.load()
            return from_pil(image, "image", max_pixels)
        except (OSError, ValueError, SyntaxError) as exc:
            raise UnreadableImageError(f"image could not be decoded ({exc})") from None
    if isinstance(image, np.ndarray):
        return from_array(image, max_pixels)
    if isinstance(image, (str, os.PathLike)):
        return load_photo(image, max_pixels)
    raise UnreadableImageError(f"expected a path, PIL image or numpy array, got {type(image).__name__}")


def to_pil(rgb: np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    if alpha is not None:
        return Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    return Image.fromarray(rgb, "RGB")


FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
           ".bmp": "BMP"}
#: Photos read but not written (pillow-heif's encoder is not part of every install): their results are JPEG.
READ_ONLY_PHOTO_FORMATS = {".heic": ".jpg", ".heif": ".jpg"}


#: TIFF tag that holds an XMP packet.
XMP_TIFF_TAG = 700

#: Format limits on the side of an image (JPEG's 16-bit header fields; libwebp's own limit).
FORMAT_MAX_SIDE = {"JPEG": 65_500, "WEBP": 16_383}


def format_for(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise OutputError(f"{path}: unsupported output extension {path.suffix!r} (use one of "
                          f"{', '.join(sorted(FORMATS))})")
    return fmt


def same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def save_image(image: Image.Image, path: str | os.PathLike, quality: int = DEFAULT_QUALITY, exif: bytes | None = None,
               icc_profile: bytes | None = None, input_path: Path | None = None, xmp: bytes | None = None) -> Path:
    """Save atomically (temporary file in the same folder, then rename); never over the input.

    ``xmp`` (a provenance packet) is written where the format has a place for it: JPEG and WebP
    natively, PNG as an ``XML:com.adobe.xmp`` text chunk, TIFF as tag 700."""
    path = Path(path)
    if input_path is not None and same_file(input_path, path):
        raise OutputError(f"{path}: output would overwrite the input; choose another path")

    def write(ready: Image.Image, fmt: str, options: dict[str, object]) -> None:
        with atomic_path(path) as tmp:
            ready.save(tmp, format=fmt, **options)

    _encode(image, path, quality, exif, icc_profile, xmp, write)
    return path


def encode_image(image: Image.Image, name: str, quality: int = DEFAULT_QUALITY, exif: bytes | None = None,
                 icc_profile: bytes | None = None, xmp: bytes | None = None) -> bytes:
    """The bytes ``save_image`` would write to a file called ``name`` (for filesystems other than the local one)."""
    buffer = io.BytesIO()

    def write(ready: Image.Image, fmt: str, options: dict[str, object]) -> None:
        buffer.seek(0)
        buffer.truncate()
        ready.save(buffer, format=fmt, **options)

    _encode(image, Path(name), quality, exif, icc_profile, xmp, write)
    return buffer.getvalue()


def _encode(image: Image.Image, path: Path, quality: int, exif: bytes | None, icc_profile: bytes | None,
            xmp: bytes | None, write: Callable[[Image.Image, str, dict[str, object]], None]) -> None:
    """Choose the format by ``path``'s extension, put the metadata where the format keeps it, and ``write``;
    an encoder that refuses the metadata gets the pixels alone (never lose the photo over its metadata)."""
    fmt = format_for(path)
    if not 1 <= quality <= 100:
        raise OutputError(f"quality must be 1-100, got {quality}")
    limit = FORMAT_MAX_SIDE.get(fmt)
    if limit and max(image.size) > limit:
        raise OutputError(f"{path}: {fmt} cannot store {image.width}x{image.height} (at most {limit} px a side); "
                          "save as .png or .tif")
    if fmt in ("JPEG", "BMP") and image.mode == "RGBA":
        image = image.convert("RGB")  # these formats have no alpha
    options: dict[str, object] = {}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    if exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        options["exif"] = exif
    if icc_profile and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        options["icc_profile"] = icc_profile
    if xmp and fmt in ("JPEG", "WEBP"):
        options["xmp"] = xmp
    elif xmp and fmt == "PNG":
        from PIL.PngImagePlugin import PngInfo

        chunks = PngInfo()
        chunks.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8"))
        options["pnginfo"] = chunks
    elif xmp and fmt == "TIFF":
        options["tiffinfo"] = {XMP_TIFF_TAG: xmp}
    try:
        write(image, fmt, options)
    except (OSError, ValueError) as exc:  # ValueError: an encoder refusing this image (or its metadata)
        plain = {k: v for k, v in options.items() if k not in METADATA_OPTIONS}
        if plain == options:
            raise OutputError(f"{path}: cannot write output ({getattr(exc, 'strerror', None) or exc})") from None
        try:
            write(image, fmt, plain)
        except (OSError, ValueError) as again:
            raise OutputError(f"{path}: cannot write output ({getattr(again, 'strerror', None) or again})") from None
        LOG.warning("%s: written without its metadata (EXIF, colour profile, provenance): %s", path, exc)


#: save() options that carry metadata rather than pixels
METADATA_OPTIONS = frozenset({"exif", "icc_profile", "xmp", "pnginfo", "tiffinfo"})
