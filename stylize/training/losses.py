"""Perceptual losses of Johnson et al. 2016, normalised per layer for the HED backbone.

Raw Gram losses of the HED VGG differ by ~5 orders of magnitude between relu1_2
and relu4_3, so each layer's loss is divided by the size of its target; and an
edge-tuned backbone barely constrains flat regions, so a colour-statistics term
(mean and covariance of RGB) pins brightness and palette to the painting's.
"""

from __future__ import annotations

import torch

CONTENT_LAYERS = ("relu1_2", "relu2_2")
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


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


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring pixels: damps high-frequency grid artefacts."""
    x = image.float()
    return (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean() + (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean()
