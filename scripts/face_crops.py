"""Aligned face crops of the training photos, for training a style's face network (``stylize train --init
weights/NAME.safetensors --content-dir DIR``, ``docs/training.md``): the face pass paints crops like these.

    .venv/bin/python -m scripts.face_crops ../shared/data/content runs/face_crops

Each face MediaPipe finds with a mesh, eyes at least ``--min-eyes`` px apart in the photo, is aligned as the face
pass aligns it (``stylize.faces.align_face``) to ``--side`` px and written as JPEG. The held-out evaluation
portraits are left out, as in training. The crops stay outside the project (the photos' own terms).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image
from rich.progress import track

from stylize.faces import FaceFinder, align_face
from stylize.image_io import load_photo
from stylize.training.data import list_content_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("content_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--side", type=int, default=320, help="crop side (eyes at a quarter of it apart)")
    parser.add_argument("--min-eyes", type=float, default=24.0, help="smaller faces are left out (upscaled mush)")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    finder, written = FaceFinder(), 0
    for path in track(list_content_images(args.content_dir), description="faces"):
        rgb = load_photo(path).rgb
        for index, face in enumerate(finder.find(rgb)):
            if face.landmarks is None or face.eye_distance < args.min_eyes:
                continue
            Image.fromarray(align_face(rgb, face, args.side)).save(args.out_dir / f"{path.stem}_{index}.jpg",
                                                                    quality=95)
            written += 1
    print(f"{written} face crops in {args.out_dir}")


if __name__ == "__main__":
    main()
