"""Contact sheets to judge by eye: photo | stylize | peer, a row per portrait, one sheet per style.

    .venv/bin/python -m benchmarks.contact_sheet --styles starry_night great_wave udnie --out benchmarks/sheets

The painting heads each sheet. Portraits (``--photos``): names from the evaluation set, or of
other photos in ``--content-dir``, scaled to one row height. The sheets in the README show only
photos that may be redistributed (the astronaut, two US-government portraits, a Kodak photo): the
content set's other photos are not licensed for that, so sheets with them stay in ``out/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from benchmarks.evaluation import METHODS, evaluation_photos, parse_arguments, parse_styles, renderers

LABEL = 18


def tile(rgb: np.ndarray | Image.Image, height: int, caption: str) -> Image.Image:
    image = rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb)
    image = image.resize((round(image.width * height / image.height), height), Image.LANCZOS)
    framed = Image.new("RGB", (image.width, height + LABEL), "white")
    framed.paste(image, (0, LABEL))
    ImageDraw.Draw(framed).text((4, 3), caption, fill="black")
    return framed


def grid(rows: list[list[Image.Image]], pad: int = 6) -> Image.Image:
    width = max(sum(t.width for t in row) + pad * (len(row) + 1) for row in rows)
    height = sum(max(t.height for t in row) + pad for row in rows) + pad
    sheet, y = Image.new("RGB", (width, height), "white"), pad
    for row in rows:
        x = pad
        for t in row:
            sheet.paste(t, (x, y))
            x += t.width + pad
        y += max(t.height for t in row) + pad
    return sheet


def sheet_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--photos", nargs="+", default=["astronaut", "facerec_0008", "facerec_0011", "kodak24_0004"])
    parser.add_argument("--height", type=int, default=384, help="row height in pixels")
    parser.add_argument("--out", type=Path, default=Path("out/sheets"))


def main() -> None:
    args = parse_arguments(__doc__, defaults={"methods": ["stylize", "peer"]}, more=sheet_arguments)
    held_out = evaluation_photos(args.content_dir)
    photos = {name: held_out[name] if name in held_out else
              np.asarray(Image.open(args.content_dir / f"{name}.jpg").convert("RGB")) for name in args.photos}
    args.out.mkdir(parents=True, exist_ok=True)
    for style in parse_styles(args.styles, args.painting_dir):
        painting = Image.open(style.painting).convert("RGB")
        rows = [[tile(painting, args.height, f"{style.name}: the painting")]]
        outputs = {method: {name: render(rgb) for name, rgb in photos.items()}
                   for method, render in renderers(style, args.methods, args.device, args.face_strength, args.size)}
        for name, rgb in photos.items():
            rows.append([tile(rgb, args.height, name)]
                        + [tile(outputs[m][name], args.height, METHODS[m]) for m in args.methods])
        for suffix in (".png", ".jpg"):
            path = args.out / f"{style.label}{suffix}"
            grid(rows).save(path, **({"quality": 88} if suffix == ".jpg" else {}))
        print(f"wrote {args.out / style.label}.png/.jpg")


if __name__ == "__main__":
    main()
