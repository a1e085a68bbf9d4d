"""Perceptual losses of Johnson et al. 2016, normalised per layer for the HED backbone.

Raw Gram losses of the HED VGG differ by ~5 orders of magnitude between relu1_2
and relu4_3, so each layer's loss is divided by the size of its target; and an
edge-tuned backbone barely constrains flat regions, so a colour-statistics term
(mean and covariance of RGB) pins brightness and palette to the painting's, and a
blurred-luminance term keeps the photo's light/dark layout.
"""

from __future__ import annotations

import torch

CONTENT_LAYERS = ("relu1_2", "relu2_2")
#: relu1_2 is left out of the style: matching its (edge-detector) Gram statistics made the network paint a
#: regular 4-pixel cross-hatch grid, the cheapest way to create fine "edge texture".
STYLE_LAYERS = ("relu2_2", "relu3_3", "relu4_3")


def gram(features: torch.Tensor) -> torch.Tensor:
    """Channel Gram matrix per image, in fp32, normalised by the number of elements."""
    b, c, h, w = features.shape
    flat = features.float().reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def relative_sq_error(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||value - target||^2 / ||target||^2 per batch item, averaged: scale-free across layers."""
    dims = tuple(range(1, value.dim()))
    err = (value.float() - target.float()).pow(2).sum(dims)
    return (err / target.float().pow(2).sum(dims).clamp_min(1e-8)).mean()


def color_stats(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image RGB mean (B, 3) and covariance (B, 3, 3)."""
    flat = rgb.float().flatten(2)
    mean = flat.mean(2)
    centred = flat - mean.unsqueeze(2)
    return mean, centred @ centred.transpose(1, 2) / flat.shape[2]


def color_loss(output: torch.Tensor, style_mean: torch.Tensor, style_cov: torch.Tensor) -> torch.Tensor:
    mean, cov = color_stats(output)
    b = output.shape[0]
    return (relative_sq_error(mean, style_mean.expand(b, -1))
            + relative_sq_error(cov, style_cov.expand(b, -1, -1)))


def luminance_structure(output: torch.Tensor, content: torch.Tensor, pool: int = 4) -> torch.Tensor:
    """Mean-free, blurred luminance of the output against the photo's, relative to the photo's variance.

    The HED backbone hardly constrains flat regions, so without this the light/dark
    layout of a face can drift (dark blobs, washed-out skin). Pooling leaves the
    fine scale free for brush strokes; removing the mean leaves brightness to the colour term.
    """
    weights = torch.tensor([0.299, 0.587, 0.114], device=output.device).view(1, 3, 1, 1)
    y_out = torch.nn.functional.avg_pool2d((output.float() * weights).sum(1, keepdim=True), pool)
    y_in = torch.nn.functional.avg_pool2d((content.float() * weights).sum(1, keepdim=True), pool)
    y_out = y_out - y_out.mean((2, 3), keepdim=True)
    y_in = y_in - y_in.mean((2, 3), keepdim=True)
    return relative_sq_error(y_out, y_in)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring pixels: damps high-frequency grid artefacts."""
    x = image.float()
    return (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean() + (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean()
