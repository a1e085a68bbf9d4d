"""Distribution-matching losses: the output should have the painting's features and colours, not their averages.

Gram matrices and RGB mean/covariance match second moments only, and a network
meets them cheaply: a tinted photo with fine hatching. The sliced-Wasserstein
distance compares whole distributions: features (or pixels) are projected on
random unit directions and the sorted projections of output and painting are
compared, so a two-colour palette stays two colours and stroke statistics must
really appear. Content is kept at a deeper layer (relu3_3), which carries the
layout and the face, not the pixels.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

CONTENT_LAYERS = ("relu3_3",)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def relative_sq_error(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||value - target||^2 / ||target||^2 per batch item, averaged: scale-free across layers."""
    dims = tuple(range(1, value.dim()))
    err = (value.float() - target.float()).pow(2).sum(dims)
    return (err / target.float().pow(2).sum(dims).clamp_min(1e-8)).mean()


def random_directions(channels: int, count: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(channels, count) unit vectors, uniform on the sphere."""
    directions = torch.randn(channels, count, generator=generator).to(device)
    return directions / directions.norm(dim=0, keepdim=True)


class SlicedDistribution:
    """One painting's feature distribution, ready to be compared with batches of outputs.

    Painting samples beyond ``max_samples`` are subsampled once (the quantiles hardly
    move, and sorting them every step would cost more than the loss network).
    """

    def __init__(self, features: torch.Tensor, max_samples: int = 16384) -> None:
        flat = features.float().flatten(2)[0]  # (C, N)
        if flat.shape[1] > max_samples:
            keep = torch.randperm(flat.shape[1], generator=torch.Generator().manual_seed(0))[:max_samples]
            flat = flat[:, keep.to(flat.device)]
        self.samples = flat
        #: dividing by the painting's mean squared activation makes layers comparable
        self.scale = flat.pow(2).mean().clamp_min(1e-8)

    def distance(self, features: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of the squared sliced-Wasserstein-2 distance to the painting, relative to its scale."""
        flat = features.float().flatten(2)  # (B, C, N)
        projected = torch.einsum("bcn,ck->bkn", flat, directions).sort(dim=2).values
        target = (directions.t() @ self.samples).sort(dim=1).values  # (K, M)
        if target.shape[1] != projected.shape[2]:  # the painting's quantiles at the output's sample count
            target = F.interpolate(target[None], size=projected.shape[2], mode="linear", align_corners=True)[0]
        return (projected - target).pow(2).mean() / self.scale


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring pixels."""
    x = image.float()
    return (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean() + (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean()
