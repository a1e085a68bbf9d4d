"""The one pipeline behind the CLI and the API: load -> detect -> stylise -> blend -> save."""

from __future__ import annotations

import functools
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import cv2
import numpy as np

from .catalogue import Blend, Style, read_face_selection, read_selection
from .engines import open_engine
from .image_io import Photo, save_image, to_pil
from .options import DEFAULT_QUALITY, EngineName, HDStrategy, Options
from .upsampling import joint_bilateral_upsample, resize_long_side

if TYPE_CHECKING:
    from .faces import Face, FaceCheck, FaceFinder

_FACE_FINDER_LOCK = threading.Lock()


def shared_face_finder() -> "FaceFinder":
    """One MediaPipe face finder per process, shared by every style (it takes seconds to start)."""
    with _FACE_FINDER_LOCK:
        return _face_finder()


@functools.lru_cache(maxsize=1)
def _face_finder() -> "FaceFinder":
    from .faces import FaceFinder

    return FaceFinder()


def mix(original: np.ndarray, stylised: np.ndarray, strength: float) -> np.ndarray:
    if strength >= 1.0:
        return stylised
    if strength <= 0.0:
        return original.copy()
    return cv2.addWeighted(stylised, strength, original, 1.0 - strength, 0.0)


def keep_colors(original: np.ndarray, stylised: np.ndarray) -> np.ndarray:
    """The style's luminance with the photo's chroma (YCrCb), so skin and sky keep their colours."""
    out = cv2.cvtColor(original, cv2.COLOR_RGB2YCrCb)
    out[..., 0] = cv2.cvtColor(stylised, cv2.COLOR_RGB2YCrCb)[..., 0]
    return cv2.cvtColor(out, cv2.COLOR_YCrCb2RGB)


@dataclass(frozen=True)
class Rendering:
    """A stylised photo (uint8 RGB at the photo's size) and, per face found with a mesh, whether it is still a face."""

    rgb: np.ndarray
    faces: tuple["FaceCheck", ...] = ()


class Pipeline:
    """A loaded style ready to repaint photos; safe to share between threads."""

    def __init__(self, style: Style | Blend, device: str = "auto", engine: EngineName | str = EngineName.AUTO,
                 threads: int = 0) -> None:
        self.style = style
        weights = read_selection(style)
        self.engine = open_engine(weights, device, engine, style.graph_sha256, threads)
        self.face_engine = self.engine
        face = read_face_selection(style, weights)  # its face row or face network, where it has one
        if face is not None:
            face_weights, face_graph_sha256 = face
            self.face_engine = open_engine(face_weights, device, engine, face_graph_sha256, threads)
        self._side = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faces")

    def run(self, photo: Photo, options: Options = Options(), found: Sequence["Face"] | None = None) -> Rendering:
        """Stylise ``photo.rgb`` (uint8 RGB) at the photo's size; with ``options.check``, check its faces.
        ``found``: the photo's faces when already known (one photo in many styles is searched once)."""
        options = self.resolved(options.validated())
        rgb = photo.rgb
        if options.strength == 0.0:
            return Rendering(rgb.copy())
        # detection (MediaPipe) overlaps the whole-photo network pass (the engine); both release the GIL
        finding = None
        if found is None and (options.faces or options.check):
            finding = self._side.submit(shared_face_finder().find, rgb)
        canvas, _ = self.paint_canvas(rgb, options, finding if finding is not None else found)
        result = self.finish(canvas, rgb, options)
        checks: tuple[FaceCheck, ...] = ()
        if options.check:  # the face mesh at each face's own crop: about as cheap as finding the face was
            faces = finding.result() if finding is not None else found or []
            checks = tuple(shared_face_finder().check(result, f) for f in faces if f.landmarks is not None)
        return Rendering(result, checks)

    def paint_canvas(self, rgb: np.ndarray, options: Options, faces: "Sequence[Face] | Future | None",
                     paint_face: Callable[[np.ndarray, "Face"], np.ndarray] | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """(the painting at the working size with each face painted in, the photo at that size). ``options``
        resolved; ``faces``: a list, or a detection still running beside the network pass; ``paint_face(crop,
        face)``: how an aligned face crop is painted (a video reuses a face's crop between frames)."""
        source = working_copy(rgb, options)
        if options.hd is HDStrategy.TILED:
            canvas = self.engine.stylize_tiled(rgb, stats_from=resize_long_side(rgb, options.size))
        else:
            canvas = self.engine.stylize(source)
        if isinstance(faces, Future):
            faces = faces.result()
        if faces and options.faces:
            from .blending import paste_face
            from .faces import align_face

            paint_face = paint_face or (lambda crop, face: self.face_engine.stylize(crop))
            scale = source.shape[1] / rgb.shape[1]
            for face in faces:
                stylised_crop = paint_face(align_face(rgb, face, options.face_crop), face)
                paste_face(canvas, source, stylised_crop, face, scale, options.face_strength)
        return canvas, source

    @staticmethod
    def finish(canvas: np.ndarray, rgb: np.ndarray, options: Options) -> np.ndarray:
        """The painting brought to the photo's size along the photo's edges, its colours kept where asked, and
        mixed with the photo by ``options.strength``."""
        if canvas.shape != rgb.shape:
            canvas = joint_bilateral_upsample(canvas, rgb)
        if options.preserve_colors:
            canvas = keep_colors(rgb, canvas)
        return mix(rgb, canvas, options.strength)

    def run_to_file(self, photo: Photo, output: Path,
                    options: Options = Options()) -> tuple[Path, tuple["FaceCheck", ...]]:
        """Stylise and save; returns the path written and the face checks. Consumes ``photo``: its pixels
        are released before encoding, so the peak holds one full-size image less (a 100 MP photo stays near 2 GB)."""
        rendering = self.run(photo, options)
        photo.release_pixels()
        written = save_result(photo, rendering.rgb, output, options.quality, self.provenance(options))
        return written, rendering.faces

    def lost_faces_warning(self, faces: tuple["FaceCheck", ...], where: str, options: Options) -> str | None:
        """One line for the user when a face did not survive stylising, with the option that helps."""
        lost = sum(not f.survived for f in faces)
        if not lost:
            return None
        face_strength = self.resolved(options).face_strength or 0.0
        advice = (f"try face strength {max(0.0, face_strength - 0.25):.2f}" if options.faces
                  else "try with the face pass on")
        return f"{lost} of {len(faces)} faces may not be recognisable in {where}; {advice}"

    def resolved(self, options: Options) -> Options:
        """``options`` with what was left to the style filled in (its face strength)."""
        if options.face_strength is None:
            return replace(options, face_strength=self.style.face_strength)
        return options

    def provenance(self, options: Options) -> bytes | None:
        """The XMP packet an output made with ``options`` carries (None when the user turned it off)."""
        from .provenance import provenance_xmp

        return provenance_xmp(self.style, self.resolved(options)) if options.provenance else None


def working_copy(rgb: np.ndarray, options: Options) -> np.ndarray:
    """The photo at the size the networks paint it: ``options.size`` on the long side, or whole for HD."""
    return resize_long_side(rgb, options.size) if options.hd is HDStrategy.RESIZE else rgb


def save_result(photo: Photo, result: np.ndarray, output: Path, quality: int = DEFAULT_QUALITY,
                xmp: bytes | None = None) -> Path:
    """Save with the photo's alpha, EXIF and colour profile restored, and the provenance packet."""
    return save_image(to_pil(result, photo.alpha), output, quality=quality, exif=photo.exif,
                      icc_profile=photo.icc_profile, input_path=photo.source, xmp=xmp)
