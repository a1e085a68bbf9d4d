"""The feed-forward style network (Johnson et al. 2016) and its safe weights format.

Instance norm, reflection padding, and a nearest-upsample + conv decoder (no
transposed convolutions, so no checkerboard artefacts). The widths are recorded
in the weights file, so a file always rebuilds the network it was trained as.

Instance norm can share statistics across tiles: ``record_stats`` captures each
layer's per-channel mean/variance on a whole-image pass, and ``replay_stats``
makes every tile use those instead of its own -- which is what keeps a tiled
full-resolution result free of seams and colour jumps.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from .atomic import atomic_path
from .errors import BadWeightsError

FORMAT_VERSION = "1"
ARCH_NAME = "johnson2016-in-upsample-sigmoid"


@dataclass(frozen=True)
class Architecture:
    """Everything needed to rebuild a network from its weights file."""

    widths: tuple[int, int, int] = (16, 32, 64)
    res_blocks: int = 5

    def to_metadata(self) -> dict[str, str]:
        return {
            "format_version": FORMAT_VERSION,
            "arch": ARCH_NAME,
            "widths": ",".join(map(str, self.widths)),
            "res_blocks": str(self.res_blocks),
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, str], source: str) -> "Architecture":
        try:
            if meta.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"format_version {meta.get('format_version')!r}")
            if meta.get("arch") != ARCH_NAME:
                raise ValueError(f"architecture {meta.get('arch')!r}, expected {ARCH_NAME!r}")
            widths = tuple(int(w) for w in meta["widths"].split(","))
            res_blocks = int(meta["res_blocks"])
            if len(widths) != 3 or not all(1 <= w <= 1024 for w in widths) or not 0 <= res_blocks <= 32:
                raise ValueError("widths/res_blocks out of range")
        except (KeyError, ValueError) as exc:
            raise BadWeightsError(f"{source}: bad architecture metadata ({exc})") from None
        return cls(widths=widths, res_blocks=res_blocks)  # type: ignore[arg-type]


class SharedStatsInstanceNorm(nn.Module):
    """Affine instance norm whose statistics can be recorded once and replayed on tiles."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps
        self.recording = self.replaying = False
        self.stats: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.replaying and self.stats is not None:
            mean, var = self.stats
        else:
            var, mean = torch.var_mean(x.float(), dim=(2, 3), unbiased=False, keepdim=True)
            if self.recording:
                self.stats = (mean, var)
        scale = self.weight.float().view(1, -1, 1, 1) * torch.rsqrt(var + self.eps)
        shift = self.bias.float().view(1, -1, 1, 1) - mean * scale
        return torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype))


class ConvLayer(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1) -> None:
        super().__init__(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride))


class ConvNormReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, upsample: bool = False) -> None:
        layers: list[nn.Module] = [nn.Upsample(scale_factor=2, mode="nearest")] if upsample else []
        layers += [ConvLayer(cin, cout, kernel, stride), SharedStatsInstanceNorm(cout), nn.ReLU(inplace=True)]
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvLayer(channels, channels, 3), SharedStatsInstanceNorm(channels), nn.ReLU(inplace=True),
            ConvLayer(channels, channels, 3), SharedStatsInstanceNorm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class StyleNet(nn.Module):
    """Image transformation network: RGB in [0, 1] -> stylised RGB in (0, 1).

    The output is squashed with a sigmoid (Johnson et al. used a scaled tanh): an
    unbounded output let the colour and Gram losses explode mid-training.
    """

    #: Input sides must be multiples of this for the output to have the input's size.
    downsampling = 4

    def __init__(self, arch: Architecture = Architecture()) -> None:
        super().__init__()
        self.arch = arch
        c1, c2, c3 = arch.widths
        self.encoder = nn.Sequential(
            ConvNormReLU(3, c1, 9), ConvNormReLU(c1, c2, 3, 2), ConvNormReLU(c2, c3, 3, 2),
        )
        self.residuals = nn.Sequential(*[ResidualBlock(c3) for _ in range(arch.res_blocks)])
        self.decoder = nn.Sequential(
            ConvNormReLU(c3, c2, 3, upsample=True), ConvNormReLU(c2, c1, 3, upsample=True), ConvLayer(c1, 3, 9),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(self.residuals(self.encoder(x))))

    def norms(self) -> Iterator[SharedStatsInstanceNorm]:
        return (m for m in self.modules() if isinstance(m, SharedStatsInstanceNorm))

    @contextlib.contextmanager
    def record_stats(self) -> Iterator[None]:
        """Run a whole-image pass inside this to capture every norm layer's statistics."""
        for norm in self.norms():
            norm.stats, norm.recording = None, True
        try:
            yield
        finally:
            for norm in self.norms():
                norm.recording = False

    @contextlib.contextmanager
    def replay_stats(self) -> Iterator[None]:
        """Inside this, every tile is normalised with the recorded statistics."""
        if any(norm.stats is None for norm in self.norms()):
            raise RuntimeError("replay_stats() needs a record_stats() pass first")
        for norm in self.norms():
            norm.replaying = True
        try:
            yield
        finally:
            for norm in self.norms():
                norm.stats, norm.replaying = None, False

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


def save_weights(model: StyleNet, path: Path, extra_metadata: dict[str, str] | None = None) -> None:
    """Write fp16 safetensors with the architecture in the header, atomically."""
    from safetensors.torch import save_file

    tensors = {name: t.detach().to("cpu", torch.float16).contiguous() for name, t in model.state_dict().items()}
    metadata = {**(extra_metadata or {}), **model.arch.to_metadata()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_weights(path: Path, sha256: str | None = None) -> StyleNet:
    """Rebuild a network from a safetensors file, refusing anything that does not match exactly.

    Only safetensors is read (no pickle); names, shapes and dtypes are checked
    against the architecture the header declares, and NaN/Inf values are refused.
    ``sha256`` (recorded in the style's metadata) must match the file when given.
    """
    from safetensors import SafetensorError, safe_open

    source = str(path)
    if not path.is_file():
        raise BadWeightsError(f"weights file not found: {source}")
    if sha256 is not None and hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        raise BadWeightsError(f"{source}: sha256 differs from the one recorded for this style "
                              "(a damaged or replaced file); reinstall it")
    try:
        with safe_open(source, framework="pt") as handle:
            meta = handle.metadata() or {}
            arch = Architecture.from_metadata(meta, source)
            model = StyleNet(arch)
            expected = model.state_dict()
            names = set(handle.keys())
            missing, extra = sorted(set(expected) - names), sorted(names - set(expected))
            if missing or extra:
                raise BadWeightsError(f"{source}: tensors do not match the architecture "
                                      f"(missing {missing[:3]}, unexpected {extra[:3]})")
            loaded = {}
            for name, reference in expected.items():
                tensor = handle.get_tensor(name)
                if tensor.shape != reference.shape:
                    raise BadWeightsError(f"{source}: {name} has shape {tuple(tensor.shape)}, "
                                          f"expected {tuple(reference.shape)}")
                if tensor.dtype not in (torch.float16, torch.bfloat16, torch.float32):
                    raise BadWeightsError(f"{source}: {name} has dtype {tensor.dtype}, expected a float")
                if not torch.isfinite(tensor).all():
                    raise BadWeightsError(f"{source}: {name} contains NaN or Inf")
                loaded[name] = tensor.float()
    except BadWeightsError:
        raise
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise BadWeightsError(f"{source}: not a valid safetensors weights file ({exc})") from None
    model.load_state_dict(loaded)
    return model.eval()

