"""The feed-forward style network (Johnson et al. 2016), in torch: training, the CUDA path, and the export.

Conditional instance norm (one row of parameters per style), reflection padding, and an
upsample + conv decoder (no transposed convolutions; antialiased bilinear for new networks, plain bilinear or
nearest for older ones, whose coarse grid shows through as a fine lattice).
Weights are read and checked by ``stylize.weights`` (numpy) and written here.

A ``NormPass`` carries what the norm layers of one forward pass take from outside: explicit rows
(a blend, or the exported graph's inputs) and statistics to normalise with instead of each image's
own -- a whole-image pass measures them, and every tile of that image replays them, which keeps a
tiled full-resolution result free of seams and colour jumps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .weights import UPSAMPLING, Architecture, Weights, read_network, read_rows


@dataclass
class NormPass:
    """What the norm layers of one forward pass read and write, in the order they are met.

    ``rows`` (2, channels of every layer): gamma and beta instead of the network's own rows;
    ``stats`` (2, same): mean and variance to normalise with instead of the image's own, ``replay``
    being the share of them used (1 = tiles; the exported graph takes it as an input);
    ``measured``: when a list, each layer appends the (2, C) statistics it measured (batch of one);
    ``peaks``: when a list, each layer appends, per image and pixel, the largest deviation of any channel from
    its mean, in that channel's standard deviations (B, H, W): a *droplet* (a spike that rules the statistics)
    stands out in it.
    """

    style: torch.Tensor | None = None
    rows: torch.Tensor | None = None
    stats: torch.Tensor | None = None
    replay: torch.Tensor | float = 1.0
    measured: list[torch.Tensor] | None = None
    peaks: list[torch.Tensor] | None = None
    offset: int = field(default=0, init=False)

    def take(self, channels: int) -> slice:
        """The next layer's columns of ``rows``, ``stats`` and the measured statistics."""
        columns = slice(self.offset, self.offset + channels)
        self.offset += channels
        return columns

    def measured_stats(self) -> torch.Tensor:
        if not self.measured:
            raise RuntimeError("no statistics measured: pass measured=[] to the pass")
        return torch.cat(self.measured, dim=1)


class ConditionalInstanceNorm(nn.Module):
    """Instance norm with one (gamma, beta) row per style (Dumoulin et al. 2017): the convolutions are shared
    by every style, so a style is its rows alone, and mixing styles is mixing rows."""

    def __init__(self, channels: int, styles: int = 1, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(styles, channels))
        self.bias = nn.Parameter(torch.zeros(styles, channels))
        self.channels, self.eps = channels, eps  # a plain int: a traced shape would not slice the graph's inputs

    def forward(self, x: torch.Tensor, norm_pass: NormPass) -> torch.Tensor:
        """``norm_pass.style``: None (a one-row network), row indices (B,), or mixing weights over the rows (B, S)."""
        columns = norm_pass.take(self.channels)
        var, mean = torch.var_mean(x.float(), dim=(2, 3), unbiased=False, keepdim=True)
        if norm_pass.measured is not None:
            norm_pass.measured.append(torch.cat([mean.reshape(1, -1), var.reshape(1, -1)]))
        if norm_pass.peaks is not None:
            norm_pass.peaks.append(((x.float() - mean).abs() * torch.rsqrt(var + self.eps)).amax(dim=1))
        if norm_pass.stats is not None:
            given = norm_pass.stats[:, columns].float()
            mean = mean + norm_pass.replay * (given[0].reshape(mean.shape) - mean)
            var = var + norm_pass.replay * (given[1].reshape(var.shape) - var)
        style = norm_pass.style
        if norm_pass.rows is not None:
            weight, bias = norm_pass.rows[0, columns], norm_pass.rows[1, columns]
        elif style is None:
            weight, bias = self.weight, self.bias
        elif style.is_floating_point():
            weight, bias = style.float() @ self.weight.float(), style.float() @ self.bias.float()
        else:
            weight, bias = self.weight[style], self.bias[style]
        scale = weight.float()[..., None, None] * torch.rsqrt(var + self.eps)
        shift = bias.float()[..., None, None] - mean * scale
        return torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype))


def doubled(x: torch.Tensor, mode: str) -> torch.Tensor:
    """``x`` (B, C, H, W) at twice the size, by ``weights.UPSAMPLING`` ``mode``."""
    if x.ndim != 4:
        raise ValueError(f"expected (B, C, H, W), got shape {tuple(x.shape)}")
    if mode not in UPSAMPLING:
        raise ValueError(f"upsample must be one of {', '.join(UPSAMPLING)}, got {mode!r}")
    if mode == "nearest":
        return F.interpolate(x, scale_factor=2, mode="nearest")
    x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    if mode == "antialiased":
        # the binomial filter [1, 2, 1] / 4 each way, as two 2x2 means: it removes what is left of the coarse
        # grid's images (the 4-pixel lattice a bilinear decoder paints) and passes the strokes' frequencies
        x = F.avg_pool2d(F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), 2, stride=1), 2, stride=1)
    return x


def padded_conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride))


class ConvNormReLU(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, styles: int, stride: int = 1, upsample: str | None = None,
                 relu: bool = True) -> None:
        super().__init__()
        self.upsample, self.relu = upsample, relu
        self.conv = padded_conv(cin, cout, kernel, stride)
        self.norm = ConditionalInstanceNorm(cout, styles)

    def forward(self, x: torch.Tensor, norm_pass: NormPass) -> torch.Tensor:
        if self.upsample:
            x = doubled(x, self.upsample)
        x = self.norm(self.conv(x), norm_pass)
        return F.relu(x, inplace=True) if self.relu else x


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, styles: int) -> None:
        super().__init__()
        self.first = ConvNormReLU(channels, channels, 3, styles)
        self.second = ConvNormReLU(channels, channels, 3, styles, relu=False)

    def forward(self, x: torch.Tensor, norm_pass: NormPass) -> torch.Tensor:
        return x + self.second(self.first(x, norm_pass), norm_pass)


class StyleNet(nn.Module):
    """Image transformation network: RGB in [0, 1] -> stylised RGB in (0, 1).

    ``style`` picks each batch item's row of normalisation parameters (B,), or mixes the
    rows by weight (B, S), and may be left out when the network has one row. The output is
    squashed with a sigmoid (Johnson et al. used a scaled tanh): an unbounded output let the
    losses explode.
    """

    def __init__(self, arch: Architecture = Architecture()) -> None:
        super().__init__()
        self.arch = arch
        c1, c2, c3, s = *arch.widths, arch.styles
        self.encoder = nn.ModuleList([ConvNormReLU(3, c1, 9, s), ConvNormReLU(c1, c2, 3, s, stride=2),
                                      ConvNormReLU(c2, c3, 3, s, stride=2)])
        self.residuals = nn.ModuleList([ResidualBlock(c3, s) for _ in range(arch.res_blocks)])
        self.decoder = nn.ModuleList([ConvNormReLU(c3, c2, 3, s, upsample=arch.upsample),
                                      ConvNormReLU(c2, c1, 3, s, upsample=arch.upsample)])
        self.to_rgb = padded_conv(c1, 3, 9)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        if style is None and self.arch.styles != 1:
            raise ValueError(f"this network paints {self.arch.styles} styles: pass style= (one index per image)")
        return self.paint(x, NormPass(style=style))

    def paint(self, x: torch.Tensor, norm_pass: NormPass) -> torch.Tensor:
        """The forward pass with its norm layers' inputs and outputs in ``norm_pass`` (a fresh one per pass)."""
        for layer in [*self.encoder, *self.residuals, *self.decoder]:
            x = layer(x, norm_pass)
        return torch.sigmoid(self.to_rgb(x))

    @classmethod
    def from_weights(cls, weights: Weights) -> "StyleNet":
        model = cls(weights.arch)
        model.load_state_dict({name: torch.from_numpy(t) for name, t in weights.tensors.items()})
        return model.eval()

    def flops(self, height: int, width: int) -> int:
        """Multiply-accumulates x 2 of the convolutions for one image of this size."""
        h, w = height, width
        c1, c2, c3 = self.arch.widths
        convs = [(3, c1, 9, h * w), (c1, c2, 3, h * w // 4), (c2, c3, 3, h * w // 16)]
        convs += [(c3, c3, 3, h * w // 16)] * (2 * self.arch.res_blocks)
        convs += [(c3, c2, 3, h * w // 4), (c2, c1, 3, h * w), (c1, 3, 9, h * w)]
        return sum(2 * cin * cout * k * k * pixels for cin, cout, k, pixels in convs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def load_weights(path: Path, sha256: str | None = None) -> StyleNet:
    """A whole network from its checked file (see ``stylize.weights.read_network``)."""
    return StyleNet.from_weights(read_network(path, sha256))


def load_rows(trunk: Path, rows: list[tuple[Path, str | None]], trunk_sha256: str | None = None) -> StyleNet:
    """A trunk with the given style rows stacked in order: row i is style i (see ``stylize.weights.read_rows``)."""
    return StyleNet.from_weights(read_rows(trunk, rows, trunk_sha256))
