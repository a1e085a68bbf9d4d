"""The Python API: ``list_styles()``, ``Stylizer`` and one-shot ``stylize()``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from PIL import Image

from . import catalogue
from .errors import StylizeError
from .faces import FaceCheck
from .image_io import ImageInput, Photo, load_photo, to_photo, to_pil
from .options import VIDEO_PAINTING, EngineName, HDStrategy, Options, VideoOptions
from .pipeline import Pipeline, Rendering

if TYPE_CHECKING:
    from .faces import Face


def make_options(**options: Any) -> Options:
    """Options from keyword arguments; a wrong name or value is a ``StylizeError``."""
    try:
        if "hd" in options:
            options["hd"] = HDStrategy(options["hd"])
        return Options(**options).validated()
    except (TypeError, ValueError) as exc:
        raise StylizeError(f"invalid option: {exc}") from None


def list_styles() -> list[catalogue.Style]:
    """The shipped styles (name, title, artist, year, weights path, metadata)."""
    return catalogue.list_styles()


class Stylizer:
    """One style loaded once, callable on PIL images, numpy arrays or paths; returns a PIL image.

    Thread safety: one ``Stylizer`` may be called from several threads at once;
    the network and the face finder each serialise their own calls behind a lock,
    so results are correct and calls run one at a time per stage.
    """

    def __init__(self, style: str, device: str = "auto", engine: EngineName | str = EngineName.AUTO,
                 threads: int = 0) -> None:
        """``engine``: auto (onnxruntime on the CPU where the style's graph is installed, else torch), onnxruntime
        or torch (``stylize[torch]``; the only one with CUDA). ``threads``: onnxruntime's CPU threads (0: one
        per core), so several stylizers in one machine share its cores."""
        if threads < 0:
            raise StylizeError(f"threads must be 0 (one per core) or more, got {threads}")
        self.style = catalogue.select(style)
        self.pipeline = Pipeline(self.style, device, engine, threads)

    @property
    def device(self) -> str:
        return self.pipeline.engine.device

    @property
    def engine(self) -> str:
        """What runs the network, for people: "onnxruntime on cpu, float32"."""
        return self.pipeline.engine.describe()

    def __call__(self, image: ImageInput, *, strength: float = Options.strength,
                 face_strength: float | None = Options.face_strength, preserve_colors: bool = Options.preserve_colors,
                 faces: bool = Options.faces, size: int = Options.size, hd: HDStrategy | str = Options.hd,
                 max_pixels: int = Options.max_pixels, provenance: bool = Options.provenance) -> Image.Image:
        """The stylised image. Its ``info`` holds what ``to_file`` would write beside the pixels: ``exif`` (the
        photo's, orientation reset), ``icc_profile`` (sRGB) and ``xmp`` (provenance, unless ``provenance=False``),
        so ``image.save(path, **image.info)`` keeps them (Pillow writes ``xmp`` to JPEG and WebP)."""
        return self.render(image, strength=strength, face_strength=face_strength, preserve_colors=preserve_colors,
                           faces=faces, size=size, hd=hd, max_pixels=max_pixels, provenance=provenance,
                           check=False)[0]

    def render(self, image: ImageInput, **options: Any) -> tuple[Image.Image, tuple[FaceCheck, ...]]:
        """Like calling the stylizer, plus one ``FaceCheck`` per face found on the photo: whether the face
        mesh still finds it on the result, and how far its landmarks moved (``check=False`` skips it)."""
        opts = make_options(**options)
        photo = to_photo(image, opts.max_pixels)
        rendering = self.pipeline.run(photo, opts)
        result = to_pil(rendering.rgb, photo.alpha)
        carried = {"exif": photo.exif, "icc_profile": photo.icc_profile, "xmp": self.pipeline.provenance(opts)}
        result.info.update({k: v for k, v in carried.items() if v})
        return result, rendering.faces

    def to_file(self, source: str | os.PathLike, output: str | os.PathLike, **options: Any) -> Path:
        """Read ``source``, stylise, and save atomically to ``output`` (never over the source)."""
        opts = make_options(**options)
        return self.save(load_photo(source, opts.max_pixels), Path(output), opts)[0]

    # What the front ends call (the CLI, batch, the web page): ``Options`` built once per request and passed whole.

    def paint(self, photo: Photo, options: Options = Options(), faces: Sequence["Face"] | None = None) -> Rendering:
        """The photo as loaded (``load_photo``, ``to_photo``) in this style; ``faces``: its faces where they are
        already known (one photo in many styles is searched once)."""
        return self.pipeline.run(photo, options, faces)

    def save(self, photo: Photo, output: Path, options: Options = Options()) -> tuple[Path, tuple[FaceCheck, ...]]:
        """Paint and save atomically, with the photo's metadata and the provenance packet; consumes ``photo``'s
        pixels. Returns the path written and the face checks."""
        return self.pipeline.run_to_file(photo, output, options)

    def video(self, source: str | os.PathLike, output: str | os.PathLike, options: Options = VIDEO_PAINTING,
              video: VideoOptions = VideoOptions(),
              on_frame: Callable[[int, int | None], None] | None = None) -> Path:
        """Paint a video file (``stylize[video]``) into ``output`` (.mp4, .mov, .mkv or .webm): frame rate, timing
        and audio kept, held steady from frame to frame; atomic. ``on_frame(done, total)`` hears progress."""
        from .video import paint_video

        return paint_video(self, Path(source), Path(output), options, video, on_frame)

    def frames(self, frames: Iterable[np.ndarray], options: Options = VIDEO_PAINTING,
               video: VideoOptions = VideoOptions()) -> Iterator[np.ndarray]:
        """Frames people bring themselves (HxWx3 uint8 RGB, in order), painted as ``video`` paints a file's: one
        painting behind the input, since a frame between two paintings waits for the next (``paint_every``)."""
        from .video import paint_frames

        return paint_frames(self.pipeline, frames, options, video)

    def provenance(self, options: Options) -> bytes | None:
        """The XMP packet a result made with ``options`` carries (None when the user turned it off)."""
        return self.pipeline.provenance(options)

    def lost_faces_warning(self, faces: tuple[FaceCheck, ...], where: str, options: Options) -> str | None:
        """One line for the user when a face did not survive painting, with the option that helps."""
        return self.pipeline.lost_faces_warning(faces, where, options)


def stylize(image: ImageInput, style: str, *, device: str = "auto", engine: EngineName | str = EngineName.AUTO,
            **options: Any) -> Image.Image:
    """One-shot: load ``style``, stylise ``image``. For many images, keep a ``Stylizer``."""
    return Stylizer(style, device, engine)(image, **options)
