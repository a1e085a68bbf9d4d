"""What a training step minimises: the paintings' style, the photo's content and tonal layout, and the penalties
(droplets, a moved photo painted differently); each term by its weight in the recipe."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from ..network import NormPass, StyleNet
from . import losses
from .config import TrainConfig
from .lossnet import VGGFeatures, load_loss_net
from .publish import load_rgb




#: (dy, dx): where the loss network's crop starts.
Offset = tuple[int, int]


#: Output and photo are cropped by the same random 0..JITTER-1 pixel offset before the loss network, so the
#: network cannot exploit the fixed alignment of VGG's stride-2 pooling with its own 4-pixel upsampling grid
#: (without it, runs painted a regular cross-hatch grid over everything).
JITTER = 8


def jitter(seed: int, step: int) -> Offset:
    rng = np.random.default_rng([seed, step, 1])
    return int(rng.integers(0, JITTER)), int(rng.integers(0, JITTER))


def shift_at(seed: int, step: int) -> Offset:
    """The step's shift for the shift term: 0 to 3 pixels each way, never none (a whole period is no test)."""
    rng = np.random.default_rng([seed, step, 3])
    index = int(rng.integers(1, losses.SHIFT_PERIOD ** 2))
    return divmod(index, losses.SHIFT_PERIOD)


def crops_at(images: torch.Tensor, offsets: Sequence[Offset]) -> torch.Tensor:
    """The batch cropped by JITTER pixels at each offset, stacked offset-major: (len(offsets) * B, C, H-J, W-J)."""
    h, w = images.shape[2] - JITTER, images.shape[3] - JITTER
    crops = [images[..., dy:dy + h, dx:dx + w] for dy, dx in offsets]
    return crops[0] if len(crops) == 1 else torch.cat(crops)


class Objective:
    """Sliced-Wasserstein style (painting features) and colour (painting pixels), content at relu3_3, optional
    tonal layout and TV.

    Each batch item is scored against its own style's painting; items of the identity style (the row after the
    paintings) must give the photo back instead.
    """

    def __init__(self, cfg: TrainConfig, lossnet: VGGFeatures, paintings: Sequence[torch.Tensor]) -> None:
        self.cfg, self.lossnet = cfg, lossnet
        self.paintings = len(paintings)
        #: each row's style weight, indexed by style: the paintings', then 0 for the identity row (no style term)
        self.style_weights = torch.tensor([cfg.painting_weights.get(Path(path).stem, cfg.style_weight)
                                           for path in cfg.style_images] + [0.0])
        with torch.no_grad():
            feats = [lossnet(painting) for painting in paintings]
            self.style = {k: losses.SlicedDistribution([f[k] for f in feats]) for k in losses.STYLE_LAYERS}
            self.palette = losses.SlicedDistribution(paintings)
            self.tone = losses.ToneLayout(paintings, painting_cell=cfg.painting_tone_cell, by_level=cfg.tone_by_level)
            self.hue = losses.HueLayout(paintings)

    def content_targets(self, photo: torch.Tensor, offsets: Sequence[Offset]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return self.lossnet(crops_at(photo, offsets))

    def __call__(self, output: torch.Tensor, photo: torch.Tensor, offsets: Sequence[Offset],
                 targets: dict[str, torch.Tensor] | None = None, seed: int = 0,
                 styles: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The loss-network terms are averaged over ``offsets`` (see ``jitter``: training passes one, the quality
        benchmark all of them, as one batch); ``targets`` (``content_targets``, same offsets) may be passed in
        when the same photo is scored many times. ``seed`` draws the random projection directions (training
        passes the step, so a resumed run draws the same ones). ``styles``: each item's style (B,), default 0."""
        if targets is None:
            targets = self.content_targets(photo, offsets)
        if styles is None:
            styles = torch.zeros(output.shape[0], dtype=torch.long, device=output.device)
        cfg = self.cfg
        feats = self.lossnet(crops_at(output, offsets))
        painted = styles < self.paintings
        crop_styles, crop_painted = styles.repeat(len(offsets)), painted.repeat(len(offsets))
        generator = torch.Generator().manual_seed(seed)

        def painted_only(mask: torch.Tensor, score: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
            """Per item: ``score(mask)`` where ``mask`` (painted items), 0 elsewhere (identity items)."""
            per_item = torch.zeros(mask.shape[0], device=output.device)
            if mask.any():
                per_item[mask] = score(mask)
            return per_item

        def style_term(features: torch.Tensor, dist: losses.SlicedDistribution, item_styles: torch.Tensor,
                       mask: torch.Tensor) -> torch.Tensor:
            directions = losses.random_directions(features.shape[1], self.cfg.directions, generator, output.device)
            return painted_only(mask, lambda m: dist.distance(features[m], directions, item_styles[m]))

        content = sum(losses.relative_sq_error(feats[k], targets[k]) for k in losses.CONTENT_LAYERS)
        style = sum(style_term(feats[k], dist, crop_styles, crop_painted) for k, dist in self.style.items())
        color = style_term(output, self.palette, styles, painted).repeat(len(offsets))
        tone = painted_only(painted, lambda m: self.tone.distance(output[m], photo[m], styles[m])).repeat(len(offsets))
        hue = painted_only(painted, lambda m: self.hue.distance(output[m], photo[m], styles[m])).repeat(len(offsets)) \
            if cfg.hue_weight else None
        identity = (output.float() - photo.float()).abs().mean(dim=(1, 2, 3)).repeat(len(offsets))
        per_item = torch.where(crop_painted, cfg.content_weight * content
                               + self.style_weights.to(output.device)[crop_styles] * style
                               + cfg.color_weight * color + cfg.tone_weight * tone
                               + (0.0 if hue is None else cfg.hue_weight * hue), identity)
        parts = {"content": content.mean(), "style": style.mean(), "color": color.mean(), "tone": tone.mean(),
                 "tv": losses.total_variation(output)}
        if hue is not None:
            parts["hue"] = hue.mean()
        parts["total"] = per_item.mean() + cfg.tv_weight * parts["tv"]
        return parts


#: How far (in standard deviations) a norm layer's input may stray from its mean before it counts as a droplet:
#: on a 128 px crop a network without droplets (starry_night's) stays under it, the old catalogue trunk reached 27.
DROPLET_Z = 10.0
#: How far (output pixels) a droplet's spike spreads through the decoder: 4 per feature pixel, and the convolutions.
DROPLET_REACH = 8


def droplet_penalty(peaks: Sequence[torch.Tensor]) -> torch.Tensor:
    """How far each norm layer's largest deviation (``NormPass.peaks``) exceeds DROPLET_Z, averaged.

    Instance norm lets a network hide one strong spike in its features: the spike rules the layer's mean and
    variance, and reaches the picture as a saturated spot (StyleGAN2's droplet). Only training can take it
    out: clamping the spike at inference makes the spot larger.
    """
    return (torch.stack([peak.amax(dim=(1, 2)) for peak in peaks]) - DROPLET_Z).relu().mean()


def droplet_mask(peaks: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """(B, 1, H, W): 1 within DROPLET_REACH of a pixel where any norm layer's input strays past DROPLET_Z."""
    spikes = [F.interpolate((peak > DROPLET_Z).float()[:, None], size=size, mode="nearest") for peak in peaks]
    return F.max_pool2d(torch.stack(spikes).amax(dim=0), 2 * DROPLET_REACH + 1, stride=1, padding=DROPLET_REACH)


@torch.no_grad()
def teacher_target(teacher: StyleNet, content: torch.Tensor, styles: torch.Tensor,
                   without_droplets: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """What distilling matches: the teacher's painting, and a weight per pixel -- 0 near the teacher's droplets
    when they are being trained out (matching them there would teach them again), else 1."""
    norm_pass = NormPass(style=styles, peaks=[] if without_droplets else None)
    target = teacher.paint(content, norm_pass)
    if not norm_pass.peaks:
        return target, torch.ones_like(target[:, :1])
    return target, 1 - droplet_mask(norm_pass.peaks, (target.shape[2], target.shape[3]))


def load_paintings(cfg: TrainConfig) -> list[torch.Tensor]:
    """Each painting at its long side for training: the stroke scale the network learns."""
    return [load_rgb(Path(path), cfg.painting_sizes.get(Path(path).stem, cfg.style_size)) for path in cfg.style_images]


def build_objective(cfg: TrainConfig, device: torch.device = torch.device("cpu")) -> Objective:
    """The recipe's loss network and paintings, ready to score outputs (training and the quality benchmark)."""
    paintings = [painting.to(device) for painting in load_paintings(cfg)]
    layers = tuple(sorted(set(losses.CONTENT_LAYERS + losses.STYLE_LAYERS)))
    lossnet = load_loss_net(cfg.loss_net, layers)  # type: ignore[arg-type]
    lossnet = lossnet.to(device).to(memory_format=torch.channels_last)
    return Objective(cfg, lossnet, paintings)
