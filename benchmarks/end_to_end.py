"""End-to-end timing, peak memory and seam metric on a real portrait scaled to N megapixels.

    .venv/bin/python benchmarks/end_to_end.py --style starry_night --megapixels 1 12 24

Prints device, dtype, threads and torch version, then per size: cold-ish first
call, warm median of --repeats runs (file to file, the style already loaded),
the same with faces off, and the process's peak RSS so far. The seam metric is
``stylize.blending.seam_score`` along each pasted face's mask (about 1 = no seam).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def portrait(megapixels: float) -> np.ndarray:
    from skimage import data

    base = data.astronaut()
    side = int(round(np.sqrt(megapixels * 1e6 / (4 / 3))))
    return cv2.resize(base, (int(side * 4 / 3), side), interpolation=cv2.INTER_CUBIC)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--megapixels", type=float, nargs="+", default=[1, 12])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    import torch

    import stylize
    from stylize.blending import crop_mask, seam_score
    from stylize.image_io import load_photo
    from stylize.pipeline import shared_face_finder

    painter = stylize.Stylizer(args.style, device=args.device)
    engine = painter.pipeline.engine
    print(f"device={engine.device} dtype={engine.dtype} threads={torch.get_num_threads()} torch={torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        for mp in args.megapixels:
            src = Path(tmp) / f"in_{mp}.jpg"
            Image.fromarray(portrait(mp)).save(src, quality=92)
            out = Path(tmp) / "out.jpg"
            timings = {}
            for faces in (True, False):
                runs = []
                for _ in range(args.repeats):
                    began = time.perf_counter()
                    painter.to_file(src, out, faces=faces)
                    runs.append(time.perf_counter() - began)
                timings[faces] = runs
            photo = load_photo(src)
            faces = shared_face_finder().find(photo.rgb)
            result = np.asarray(painter(photo.rgb))
            seams = []
            for face in faces:
                mask = cv2.warpAffine(crop_mask(face), face.transform(), photo.size,
                                      flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
                seams.append(seam_score(result, mask))
            size = f"{photo.size[0]}x{photo.size[1]}"
            print(f"{mp:5.1f} MP {size}: faces on median {statistics.median(timings[True]):.2f}s "
                  f"(runs {', '.join(f'{t:.2f}' for t in timings[True])}), faces off median "
                  f"{statistics.median(timings[False]):.2f}s, faces found {len(faces)}, "
                  f"seam score {', '.join(f'{s:.2f}' for s in seams) or '-'}, peak RSS so far {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
