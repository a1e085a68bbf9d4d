"""Droplets: does a style's network paint a bright spot that instance norm hides?

    .venv/bin/python -m benchmarks.droplets --styles starry_night the_kiss almond_blossom

A network with instance norm can learn to put one strong, local spike in its features: the spike
dominates each norm's mean and variance, which lets the rest of the image escape normalisation
(Karras et al. 2020, StyleGAN2, section 2). It reaches the output as a saturated white or dark
spot a few pixels wide. Measured here, per evaluation photo at its own size: the peak of the
last residual block's output (largest absolute value over channels, per pixel) over its 99th
percentile over pixels. A network without droplets stays near 2; a droplet is an outlier many
times that, and where it sits in the image (row, column as fractions of the sides) is printed.
"""

from __future__ import annotations

import statistics

import numpy as np
import torch

from benchmarks.evaluation import evaluation_photos, parse_arguments, parse_styles, print_table
from stylize.catalogue import read_selection
from stylize.engines.base import padded_for_network
from stylize.network import StyleNet

#: A peak above this many times the 99th percentile is counted as a droplet (networks without one stay near 2).
DROPLET_RATIO = 4.0


def peak_ratio(network: StyleNet, rgb: np.ndarray) -> tuple[float, tuple[float, float]]:
    """The last residual block's peak over its 99th percentile on one photo, and where the peak sits."""
    features: list[torch.Tensor] = []
    hook = network.residuals[-1].register_forward_hook(lambda module, inputs, output: features.append(output))
    try:
        with torch.no_grad():
            network(torch.tensor(padded_for_network(rgb)).permute(2, 0, 1)[None].float() / 255)
    finally:
        hook.remove()
    peaks = features[0][0].abs().amax(dim=0)
    row, column = np.unravel_index(int(peaks.argmax()), tuple(peaks.shape))
    ratio = float(peaks.max() / peaks.flatten().quantile(0.99))
    return ratio, (row / peaks.shape[0], column / peaks.shape[1])


def main() -> None:
    args = parse_arguments(__doc__)
    photos = evaluation_photos(args.content_dir, args.limit)
    rows = {}
    for style in parse_styles(args.styles, args.painting_dir):
        if style.style is None:
            raise SystemExit(f"stylize ships no style {style.name!r}: give NAME=WEIGHTS or NAME=DIR")
        network = StyleNet.from_weights(read_selection(style.style))
        measured = {name: peak_ratio(network, rgb) for name, rgb in photos.items()}
        ratios = [ratio for ratio, _ in measured.values()]
        worst = max(measured, key=lambda name: measured[name][0])
        where = measured[worst][1]
        droplets = sum(ratio > DROPLET_RATIO for ratio in ratios)
        rows[style.label] = [f"{statistics.median(ratios):.1f}", f"{measured[worst][0]:.1f} ({worst}, at "
                             f"{where[0]:.2f}, {where[1]:.2f})", f"{droplets} of {len(ratios)}"]
        print(f"{style.label}: median {rows[style.label][0]}, worst {rows[style.label][1]}, droplets {droplets}",
              flush=True)
    print_table("style", ["peak / p99, median", "worst photo", f"photos with a droplet (> {DROPLET_RATIO:g})"], rows)


if __name__ == "__main__":
    main()
