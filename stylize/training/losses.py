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

from typing import Callable, Sequence

import torch
from torch.nn import functional as F

CONTENT_LAYERS = ("relu3_3",)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def relative_sq_error(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||value - target||^2 / ||target||^2 per batch item (B,): scale-free across layers."""
    dims = tuple(range(1, value.dim()))
    err = (value.float() - target.float()).pow(2).sum(dims)
    return err / target.float().pow(2).sum(dims).clamp_min(1e-8)


def resample_sorted(values: torch.Tensor, count: int) -> torch.Tensor:
    """(..., N) sorted values -> (..., count): the same quantiles at another sample count (linear in between)."""
    flat = values.reshape(-1, 1, values.shape[-1])
    return F.interpolate(flat, size=count, mode="linear", align_corners=True).reshape(*values.shape[:-1], count)


def rank_matched(values: torch.Tensor, sorted_targets: torch.Tensor) -> torch.Tensor:
    """(..., N) values -> (..., N): each value replaced by the target of the same rank (histogram matching);
    ``sorted_targets`` (..., Q) at any sample count."""
    targets = resample_sorted(sorted_targets, values.shape[-1])
    return torch.empty_like(values).scatter_(-1, values.argsort(dim=-1), targets)


def random_directions(channels: int, count: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(channels, count) unit vectors, uniform on the sphere."""
    directions = torch.randn(channels, count, generator=generator).to(device)
    return directions / directions.norm(dim=0, keepdim=True)


class SlicedDistribution:
    """The feature distributions of one or more paintings (one per style), ready to be compared with outputs.

    Each painting's samples are subsampled once to a common count, at most ``max_samples``
    (the quantiles hardly move, and sorting them every step would cost more than the loss network).
    """

    def __init__(self, paintings: torch.Tensor | Sequence[torch.Tensor], max_samples: int = 16384) -> None:
        flats = [f.float().flatten(2)[0] for f in ([paintings] if torch.is_tensor(paintings) else paintings)]
        count = min(max_samples, *(f.shape[1] for f in flats))
        generator = torch.Generator().manual_seed(0)
        self.samples = torch.stack([f[:, torch.randperm(f.shape[1], generator=generator)[:count].to(f.device)]
                                    for f in flats])  # (S, C, M)
        #: dividing by each painting's mean squared activation makes layers comparable
        self.scale = self.samples.pow(2).mean(dim=(1, 2)).clamp_min(1e-8)  # (S,)

    def distance(self, features: torch.Tensor, directions: torch.Tensor,
                 styles: torch.Tensor | None = None) -> torch.Tensor:
        """Per batch item (B,): the squared sliced-Wasserstein-2 distance to its painting (``styles``, (B,) indices;
        the first painting when left out), relative to that painting's scale."""
        flat = features.float().flatten(2)  # (B, C, N)
        if styles is None:
            styles = torch.zeros(flat.shape[0], dtype=torch.long, device=flat.device)
        projected = torch.einsum("bcn,ck->bkn", flat, directions).sort(dim=2).values
        used, per_item = styles.unique(return_inverse=True)
        target = torch.einsum("scm,ck->skm", self.samples[used], directions).sort(dim=2).values  # (U, K, M)
        if target.shape[2] != projected.shape[2]:  # the painting's quantiles at the output's sample count
            target = resample_sorted(target, projected.shape[2])
        return (projected - target[per_item]).pow(2).mean(dim=(1, 2)) / self.scale[styles]


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring pixels."""
    x = image.float()
    return (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean() + (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean()


def luminance(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> (B, 1, H, W) luma (Rec. 601)."""
    weights = torch.tensor([0.299, 0.587, 0.114], device=image.device).view(1, 3, 1, 1)
    return (image.float() * weights).sum(dim=1, keepdim=True)


#: the layout terms (tonal layout, a teacher's colours) compare cells this many pixels wide: large shapes, not
#: brush strokes (those are left to the style terms)
TONE_CELL = 8


class ToneLayout:
    """Where the photo is dark the output should be dark, in the painting's own tones.

    Distribution matching says which tones appear, not where: a network may paint a black helmet pale and a
    white wall dark green, and the picture loses its shapes. The target ranks the photo's coarse luminance cells
    and gives each the painting's coarse tone of the same rank (histogram matching), so it keeps the photo's
    light-and-dark layout without pulling toward the photo's tones.
    """

    def __init__(self, paintings: Sequence[torch.Tensor], quantiles: int = 1024, painting_cell: int = TONE_CELL,
                 by_level: bool = False) -> None:
        """``painting_cell``: the cell size the painting's tones are read at. At TONE_CELL a painting whose darks and
        lights are thin strokes (blossom on sky) has a narrow range of cell tones, and the photo is mapped into it;
        smaller cells keep the painting's whole tonal range (its darkest stroke for the photo's darkest cell).
        ``by_level``: a cell of luminance L takes the painting's tone at quantile L, one curve for every photo,
        instead of the tone of its rank in this photo: ranking spreads a close-up of dark skin over the painting's
        whole range, and paints it pale."""
        self.by_level = by_level
        #: (S, Q): each painting's tones, sorted, on the paintings' device
        self.tones = torch.stack([resample_sorted(F.avg_pool2d(luminance(p), painting_cell).flatten().sort().values,
                                                  quantiles) for p in paintings])
        #: errors are relative to each painting's tonal spread, so a flat painting is held as firmly as a bold one
        self.spread = self.tones.var(dim=1).clamp_min(1e-6)  # (S,)

    def target(self, photo: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
        """(B, 1, h, w): the photo's coarse luminance cells, each given its style's painting tone of the same rank
        (or, ``by_level``, of the same level)."""
        cells = F.avg_pool2d(luminance(photo), TONE_CELL)
        flat = cells.flatten(1)
        if self.by_level:
            tones = self.tones[styles]  # (B, Q): the painting's tone at each level, read between quantiles
            place = flat.clamp(0.0, 1.0) * (tones.shape[1] - 1)
            below = place.floor().long().clamp_max(tones.shape[1] - 2)
            share = place - below
            return (tones.gather(1, below) * (1 - share) + tones.gather(1, below + 1) * share).view_as(cells)
        return rank_matched(flat, self.tones[styles]).view_as(cells)

    def distance(self, output: torch.Tensor, photo: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
        """Per batch item (B,): mean squared error of the output's coarse luminance against ``target``."""
        with torch.no_grad():
            target = self.target(photo, styles)
        cells = F.avg_pool2d(luminance(output), TONE_CELL)
        return (cells - target).pow(2).mean(dim=(1, 2, 3)) / self.spread[styles]


def opponents(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> (B, 2, H, W): warm minus cool (R - B) and green minus magenta (G - (R + B) / 2)."""
    r, g, b = image.float().unbind(dim=1)
    return torch.stack([r - b, g - (r + b) / 2], dim=1)


class HueLayout:
    """Where the photo is warm the output should be warm, in the painting's own colours.

    The tonal layout says where the painting's darks and lights go, not its colours: a network may paint warm skin
    in the painting's teal and a blue sky in its ochre, and faces look ill. Per opponent axis (warm-cool,
    green-magenta) the target ranks the photo's coarse cells and gives each the painting's coarse colour of the
    same rank, so the warmest part of the photo takes the painting's warmest colour, never the photo's own.
    """

    def __init__(self, paintings: Sequence[torch.Tensor], quantiles: int = 1024) -> None:
        #: (S, 2, Q): each painting's coarse colours along each axis, sorted
        self.colours = torch.stack([resample_sorted(opponents(F.avg_pool2d(p.float(), TONE_CELL)).flatten(2)[0]
                                                    .sort(dim=1).values, quantiles) for p in paintings])
        #: errors relative to each painting's spread along each axis: a muted painting is held as firmly
        self.spread = self.colours.var(dim=2).clamp_min(1e-4)  # (S, 2)

    def target(self, photo: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
        """(B, 2, h, w): each coarse cell of the photo given its painting's colour of the same rank, per axis."""
        cells = opponents(F.avg_pool2d(photo.float(), TONE_CELL))
        return rank_matched(cells.flatten(2), self.colours[styles]).view_as(cells)

    def distance(self, output: torch.Tensor, photo: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
        """Per batch item (B,): mean squared error of the output's coarse colours against ``target``."""
        with torch.no_grad():
            target = self.target(photo, styles)
        cells = opponents(F.avg_pool2d(output.float(), TONE_CELL))
        return ((cells - target).pow(2).mean(dim=(2, 3)) / self.spread[styles]).mean(dim=1)


def teacher_layout(output: torch.Tensor, taught: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of cell colours: where a teacher puts each colour, not its strokes (matching its
    pixels teaches their blurred average: smooth outputs, far from any painting)."""
    return (F.avg_pool2d(output.float(), TONE_CELL) - F.avg_pool2d(taught.float(), TONE_CELL)).abs().mean()


#: the encoder samples every 4th pixel, so a network may paint by grid position (a 4 px stamp: the fine hatching)
#: instead of by content; shifts below that period expose it
SHIFT_PERIOD = 4
#: pixels along each border left out of the shift term: there the rolled-in rows and the padding differ
SHIFT_MARGIN = 48


def shift_equivariance(paint: Callable[[torch.Tensor], torch.Tensor], photo: torch.Tensor, output: torch.Tensor,
                       shift: tuple[int, int]) -> torch.Tensor:
    """Mean absolute difference between painting the photo moved by ``shift`` pixels and moving its painting.

    A painting made from the content moves with it; a stamp tied to the encoder's sampling grid does not. The
    photo is rolled, not cropped, so every instance norm sees the same pixels and the same statistics; the
    borders, where the rolled-in rows and the reflection padding differ, are left out.
    """
    moved = paint(torch.roll(photo, shift, dims=(2, 3)))
    expected = torch.roll(output, shift, dims=(2, 3))
    m = min(SHIFT_MARGIN, photo.shape[2] // 4, photo.shape[3] // 4)
    rows, columns = slice(m, photo.shape[2] - m), slice(m, photo.shape[3] - m)
    return (moved[..., rows, columns].float() - expected[..., rows, columns].float()).abs().mean()
