"""The feed-forward style network (Johnson et al. 2016) and its safe weights formats.

Conditional instance norm (one row of parameters per style), reflection padding, and a
nearest-upsample + conv decoder (no transposed convolutions, so no checkerboard artefacts).
The widths are recorded in the weights file, so a file always rebuilds the network it was
trained as. Two formats: a whole network (``save_weights``), or a catalogue's shared trunk
(``save_trunk``: every convolution) plus a few-KB file per style (``save_style_row``: its
normalisation row); ``load_rows`` puts a trunk and rows back together, checked like the first.

Instance norm can share statistics across tiles: ``record_stats`` captures each
layer's per-channel mean/variance on a whole-image pass, and ``replay_stats``
makes every tile use those instead of its own -- which is what keeps a tiled
full-resolution result free of seams and colour jumps.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn
from torch.nn import functional as F

from .atomic import atomic_path
from .errors import BadWeightsError

FORMAT_VERSION = "2"
ARCH_NAME = "johnson2016-cin-upsample-sigmoid"


@dataclass(frozen=True)
class Architecture:
    """Everything needed to rebuild a network from its weights file."""

    widths: tuple[int, int, int] = (16, 32, 64)
    res_blocks: int = 5
    #: rows of normalisation parameters: one per style the network paints
    styles: int = 1

    def to_metadata(self) -> dict[str, str]:
        return {
            "format_version": FORMAT_VERSION,
            "arch": ARCH_NAME,
            "widths": ",".join(map(str, self.widths)),
            "res_blocks": str(self.res_blocks),
            "styles": str(self.styles),
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, str], source: str) -> "Architecture":
        try:
            if meta.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"format_version {meta.get('format_version')!r}")
            if meta.get("arch") != ARCH_NAME:
                raise ValueError(f"architecture {meta.get('arch')!r}, expected {ARCH_NAME!r}")
            widths = tuple(int(w) for w in meta["widths"].split(","))
            res_blocks, styles = int(meta["res_blocks"]), int(meta["styles"])
            if len(widths) != 3 or not all(1 <= w <= 1024 for w in widths) or not 0 <= res_blocks <= 32:
                raise ValueError("widths/res_blocks out of range")
            if not 1 <= styles <= 4096:
                raise ValueError("styles out of range")
        except (KeyError, ValueError) as exc:
            raise BadWeightsError(f"{source}: bad architecture metadata ({exc})") from None
        return cls(widths=widths, res_blocks=res_blocks, styles=styles)  # type: ignore[arg-type]


#: The names of the tensors that make a style (a row each per style); every other tensor is the shared trunk.
NORM_PARAMETERS = (".norm.weight", ".norm.bias")


class ConditionalInstanceNorm(nn.Module):
    """Instance norm with one (gamma, beta) row per style (Dumoulin et al. 2017): the convolutions are shared
    by every style, so a style is its rows alone, and mixing styles is mixing rows.

    Statistics can be recorded once on a whole image and replayed on its tiles (see ``StyleNet``).
    """

    def __init__(self, channels: int, styles: int = 1, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(styles, channels))
        self.bias = nn.Parameter(torch.zeros(styles, channels))
        self.eps = eps
        self.recording = self.replaying = False
        self.stats: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        """``style``: None (a one-row network), row indices (B,), or mixing weights over the rows (B, S)."""
        if self.replaying and self.stats is not None:
            mean, var = self.stats
        else:
            var, mean = torch.var_mean(x.float(), dim=(2, 3), unbiased=False, keepdim=True)
            if self.recording:
                self.stats = (mean, var)
        if style is None:
            weight, bias = self.weight, self.bias
        elif style.is_floating_point():
            weight, bias = style.float() @ self.weight.float(), style.float() @ self.bias.float()
        else:
            weight, bias = self.weight[style], self.bias[style]
        scale = weight.float()[..., None, None] * torch.rsqrt(var + self.eps)
        shift = bias.float()[..., None, None] - mean * scale
        return torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype))


def padded_conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride))


class ConvNormReLU(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, styles: int, stride: int = 1, upsample: bool = False,
                 relu: bool = True) -> None:
        super().__init__()
        self.upsample, self.relu = upsample, relu
        self.conv = padded_conv(cin, cout, kernel, stride)
        self.norm = ConditionalInstanceNorm(cout, styles)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.norm(self.conv(x), style)
        return F.relu(x, inplace=True) if self.relu else x


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, styles: int) -> None:
        super().__init__()
        self.first = ConvNormReLU(channels, channels, 3, styles)
        self.second = ConvNormReLU(channels, channels, 3, styles, relu=False)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        return x + self.second(self.first(x, style), style)


class StyleNet(nn.Module):
    """Image transformation network: RGB in [0, 1] -> stylised RGB in (0, 1).

    ``style`` picks each batch item's row of normalisation parameters (B,), or mixes the
    rows by weight (B, S), and may be left out when the network has one row. The output is
    squashed with a sigmoid (Johnson et al. used a scaled tanh): an unbounded output let the
    losses explode.
    """

    #: Input sides must be multiples of this for the output to have the input's size.
    downsampling = 4

    def __init__(self, arch: Architecture = Architecture()) -> None:
        super().__init__()
        self.arch = arch
        c1, c2, c3, s = *arch.widths, arch.styles
        self.encoder = nn.ModuleList([ConvNormReLU(3, c1, 9, s), ConvNormReLU(c1, c2, 3, s, stride=2),
                                      ConvNormReLU(c2, c3, 3, s, stride=2)])
        self.residuals = nn.ModuleList([ResidualBlock(c3, s) for _ in range(arch.res_blocks)])
        self.decoder = nn.ModuleList([ConvNormReLU(c3, c2, 3, s, upsample=True),
                                      ConvNormReLU(c2, c1, 3, s, upsample=True)])
        self.to_rgb = padded_conv(c1, 3, 9)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        if style is None and self.arch.styles != 1:
            raise ValueError(f"this network paints {self.arch.styles} styles: pass style= (one index per image)")
        for layer in [*self.encoder, *self.residuals, *self.decoder]:
            x = layer(x, style)
        return torch.sigmoid(self.to_rgb(x))

    def norms(self) -> Iterator[ConditionalInstanceNorm]:
        return (m for m in self.modules() if isinstance(m, ConditionalInstanceNorm))

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


Shapes = dict[str, torch.Size]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_metadata(path: Path) -> dict[str, str]:
    """A safetensors file's header metadata; {} for anything that is not one."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError):
        return {}


def _read_checked(path: Path, expected: Callable[[dict[str, str]], Shapes],
                  sha256: str | None) -> tuple[dict[str, torch.Tensor], dict[str, str], str]:
    """The file's float tensors, named and shaped exactly as ``expected(its metadata)`` says, its metadata and
    its sha256. Only safetensors is read (no pickle); NaN/Inf values are refused; ``sha256`` must match if given."""
    from safetensors import SafetensorError, safe_open

    source = str(path)
    if not path.is_file():
        raise BadWeightsError(f"weights file not found: {source}")
    digest = file_sha256(path)
    if sha256 is not None and digest != sha256:
        raise BadWeightsError(f"{source}: sha256 differs from the one recorded for this style "
                              "(a damaged or replaced file); reinstall it")
    try:
        with safe_open(source, framework="pt") as handle:
            meta = handle.metadata() or {}
            shapes = expected(meta)
            names = set(handle.keys())
            missing, extra = sorted(set(shapes) - names), sorted(names - set(shapes))
            if missing or extra:
                raise BadWeightsError(f"{source}: tensors do not match the architecture "
                                      f"(missing {missing[:3]}, unexpected {extra[:3]})")
            loaded = {}
            for name, shape in shapes.items():
                tensor = handle.get_tensor(name)
                if tensor.shape != shape:
                    raise BadWeightsError(f"{source}: {name} has shape {tuple(tensor.shape)}, "
                                          f"expected {tuple(shape)}")
                if tensor.dtype not in (torch.float16, torch.bfloat16, torch.float32):
                    raise BadWeightsError(f"{source}: {name} has dtype {tensor.dtype}, expected a float")
                if not torch.isfinite(tensor).all():
                    raise BadWeightsError(f"{source}: {name} contains NaN or Inf")
                loaded[name] = tensor.float()
    except BadWeightsError:
        raise
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise BadWeightsError(f"{source}: not a valid safetensors weights file ({exc})") from None
    return loaded, meta, digest


def _shapes(model: StyleNet, rows: bool) -> Shapes:
    """The trunk's tensors (rows=False) or one style row's (rows=True), by name."""
    return {name: (t.shape[1:] if rows else t.shape) for name, t in model.state_dict().items()
            if name.endswith(NORM_PARAMETERS) == rows}


def load_weights(path: Path, sha256: str | None = None) -> StyleNet:
    """Rebuild a whole network from a safetensors file, refusing anything that does not match exactly
    (``sha256``, recorded in the style's metadata, must match the file when given)."""
    model: list[StyleNet] = []

    def expected(meta: dict[str, str]) -> Shapes:
        model.append(StyleNet(Architecture.from_metadata(meta, str(path))))
        return {name: t.shape for name, t in model[0].state_dict().items()}

    loaded, _, _ = _read_checked(path, expected, sha256)
    model[0].load_state_dict(loaded)
    return model[0].eval()


def save_trunk(model: StyleNet, path: Path, extra_metadata: dict[str, str] | None = None) -> None:
    """A catalogue's shared part: every tensor but the normalisation rows (fp16, atomic)."""
    from safetensors.torch import save_file

    tensors = {name: t.detach().to("cpu", torch.float16).contiguous() for name, t in model.state_dict().items()
               if not name.endswith(NORM_PARAMETERS)}
    metadata = {**(extra_metadata or {}), **replace(model.arch, styles=1).to_metadata(), "kind": "trunk"}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def save_style_row(model: StyleNet, row: int, path: Path, trunk_sha256: str,
                   extra: dict[str, str] | None = None) -> None:
    """One style of a catalogue: its normalisation row (fp32, a few KB) and the sha256 of the trunk it belongs to."""
    from safetensors.torch import save_file

    tensors = {name: t.detach()[row].to("cpu", torch.float32).contiguous() for name, t in model.state_dict().items()
               if name.endswith(NORM_PARAMETERS)}
    metadata = {**(extra or {}), "format_version": FORMAT_VERSION, "kind": "style-row", "trunk_sha256": trunk_sha256}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_rows(trunk: Path, rows: list[tuple[Path, str | None]], trunk_sha256: str | None = None) -> StyleNet:
    """A trunk with the given style rows (path, recorded sha256) stacked in order: row i is style i.

    A row made for another trunk is refused (each row records its trunk's sha256)."""
    arch: list[Architecture] = []

    def trunk_shapes(meta: dict[str, str]) -> Shapes:
        arch.append(replace(Architecture.from_metadata(meta, str(trunk)), styles=len(rows)))
        return _shapes(StyleNet(arch[0]), rows=False)

    state, _, actual_trunk = _read_checked(trunk, trunk_shapes, trunk_sha256)
    model = StyleNet(arch[0])
    row_shapes = _shapes(model, rows=True)
    stacked: dict[str, list[torch.Tensor]] = {name: [] for name in row_shapes}
    for path, sha256 in rows:
        row, meta, _ = _read_checked(path, lambda _: row_shapes, sha256)
        if meta.get("trunk_sha256") != actual_trunk:
            raise BadWeightsError(f"{path}: this style was trained on another trunk than {trunk}; reinstall it")
        for name, tensor in row.items():
            stacked[name].append(tensor)
    state.update({name: torch.stack(tensors) for name, tensors in stacked.items()})
    model.load_state_dict(state)
    return model.eval()


def mix_rows(model: StyleNet, weights: list[float]) -> StyleNet:
    """A one-row network whose row is the weighted mean of ``model``'s rows: a blend of its styles."""
    mixing = torch.tensor(weights, dtype=torch.float32)
    mixing = mixing / mixing.sum()
    single = StyleNet(replace(model.arch, styles=1))
    single.load_state_dict({name: (mixing @ t.float())[None] if name.endswith(NORM_PARAMETERS) else t
                            for name, t in model.state_dict().items()})
    return single.eval()


def is_trunk(path: Path) -> bool:
    """Whether ``path`` is a catalogue's trunk file (rather than a whole network)."""
    return read_metadata(path).get("kind") == "trunk"


def identity_row(trunk: Path) -> Path:
    """Where a catalogue keeps its identity row: beside its trunk, since it is no painting to list."""
    return trunk.with_suffix(".identity.safetensors")


def rows_on(trunk: Path) -> list[Path]:
    """The style rows made for ``trunk`` among the weights files of its catalogue (the folder above its own)."""
    if not trunk.is_file():
        return []
    digest = file_sha256(trunk)
    return [path for path in sorted(trunk.parent.parent.glob("*.safetensors"))
            if read_metadata(path).get("trunk_sha256") == digest]
