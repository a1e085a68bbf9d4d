"""Does the loss network see what the judge sees? If not, no objective built on it can lead toward the judge.

    .venv/bin/python -m benchmarks.loss_network_agreement --styles great_wave udnie --limit 8

For each style, stylize's outputs (default settings) and the peer's on the evaluation photos, scored
two ways: by the judge (``style_distance.py``), and, per layer of the training's loss network (HED's
VGG16), by three statistics of the output's features against the painting's: the training
objective's sliced Wasserstein-2 distance, a normalised Gram matrix and per-channel mean and
standard deviation. Each is taken relative to the photo's own, per photo, then averaged: 0 is the
painting, 1 still the photo, as for the judge. The painting is seen at ``--painting-size`` px and the
outputs at ``--output-scale`` of their size (the judge sees a 512 px photo's centre at half size).
A statistic can lead training toward the judge's look only where it ranks the two methods as the
judge does ("agrees").
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from benchmarks.evaluation import evaluation_photos, parse_arguments, parse_styles, print_table, renderers
from benchmarks.style_distance import Judge
from stylize.training.losses import SlicedDistribution, random_directions, relative_sq_error
from stylize.training.lossnet import load_hed_vgg16

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_3")
#: projections per sliced distance: 128 random directions, drawn once per layer (seed 0), the same for every image
DIRECTIONS = 128


def gram(features: torch.Tensor) -> torch.Tensor:
    flat = features.flatten(2)
    return flat @ flat.transpose(1, 2) / flat.shape[2]


def moments(features: torch.Tensor) -> torch.Tensor:
    return torch.cat([features.mean((2, 3)), features.std((2, 3))], 1)


class PaintingStyle:
    """One layer's style statistics of a painting's (1, C, h, w) features, measured once, to score images against."""

    def __init__(self, painting: torch.Tensor, directions: torch.Tensor) -> None:
        if painting.ndim != 4 or painting.shape[0] != 1:
            raise ValueError(f"painting {tuple(painting.shape)}: expected (1, C, h, w)")
        painting = painting.float()
        self.channels, self.directions = painting.shape[1], directions
        self.sliced, self.gram, self.moments = SlicedDistribution(painting), gram(painting), moments(painting)

    def distances(self, features: torch.Tensor) -> dict[str, float]:
        """Three distances of (1, C, H, W) features to the painting's, each 0 when they are the painting's."""
        if features.ndim != 4 or features.shape[:2] != (1, self.channels):
            raise ValueError(f"features {tuple(features.shape)}: expected (1, {self.channels}, H, W), the painting's C")
        features = features.float()
        return {
            "sliced": float(self.sliced.distance(features, self.directions)[0]),
            "gram": float(relative_sq_error(gram(features), self.gram)[0]),
            "mean/std": float(relative_sq_error(moments(features), self.moments)[0]),
        }


def agrees(judge: tuple[float, float], statistic: tuple[float, float]) -> bool:
    """Whether a statistic orders two methods' (stylize, peer) distances the way the judge does."""
    return (judge[0] < judge[1]) == (statistic[0] < statistic[1])


def main() -> None:
    def options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--painting-size", type=int, default=512, help="the painting's long side [px]")
        parser.add_argument("--output-scale", type=float, default=1.0, help="outputs and photos resized by this")

    args = parse_arguments(__doc__, {"methods": ["stylize", "peer"], "limit": 8}, options)
    if sorted(args.methods) != ["peer", "stylize"]:
        raise SystemExit("compares two methods: --methods stylize peer")
    judge, net = Judge(), load_hed_vgg16(LAYERS)
    photos = evaluation_photos(args.content_dir, args.limit)
    photo_vectors = {name: judge.vector(rgb) for name, rgb in photos.items()}

    def features(rgb: np.ndarray, scale: float = args.output_scale) -> dict[str, torch.Tensor]:
        x = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            return net(F.interpolate(x, scale_factor=scale, mode="area") if scale != 1 else x)

    for style in parse_styles(args.styles, args.painting_dir):
        painting = Image.open(style.painting).convert("RGB")
        painting_vector = judge.vector(painting)
        painting.thumbnail((args.painting_size, args.painting_size))
        target = features(np.asarray(painting), 1.0)
        generator = torch.Generator().manual_seed(0)
        styles = {layer: PaintingStyle(target[layer], random_directions(target[layer].shape[1], DIRECTIONS, generator,
                                                                        torch.device("cpu")))
                  for layer in LAYERS}

        def measured(rgb: np.ndarray) -> dict[str, dict[str, float]]:
            of_image = features(rgb)
            return {layer: style.distances(of_image[layer]) for layer, style in styles.items()}

        photo_statistics = {name: measured(rgb) for name, rgb in photos.items()}
        scores: dict[str, dict[str, list[float]]] = {}
        for method, render in renderers(style, args.methods, args.device, args.face_strength, args.size):
            scores[method] = {}
            for name, rgb in photos.items():
                output = render(rgb)
                judged = judge.distance(output, photo_vectors[name], painting_vector)
                scores[method].setdefault("judge", []).append(judged)
                for layer, values in measured(output).items():
                    for kind, value in values.items():
                        relative = value / photo_statistics[name][layer][kind]
                        scores[method].setdefault(f"{kind} {layer}", []).append(relative)
        means = {m: {k: statistics.mean(v) for k, v in s.items()} for m, s in scores.items()}
        by_judge = (means["stylize"]["judge"], means["peer"]["judge"])
        rows = {}
        for k in means["stylize"]:
            pair = (means["stylize"][k], means["peer"][k])
            verdict = "" if k == "judge" else "yes" if agrees(by_judge, pair) else "no"
            rows[k] = [f"{pair[0]:.3f}", f"{pair[1]:.3f}", verdict]
        print_table(f"{style.label}: painting {args.painting_size} px, outputs x{args.output_scale:g} "
                    f"({len(photos)} photos)", ["stylize", "peer", "agrees with the judge"], rows)


if __name__ == "__main__":
    main()
