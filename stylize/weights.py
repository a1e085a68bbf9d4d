"""The safe weights formats, read with numpy alone: both engines (and a torch-free install) load through here.

Two formats: a whole network (``weights/NAME.safetensors``), or a catalogue's shared trunk (every
convolution, ``weights/trunks/T.safetensors``) plus a few-KB file per style holding its normalisation
row and the sha256 of its trunk. The architecture is recorded in each file's header, so a file always
rebuilds the network it was trained as; every tensor's name, shape, dtype and values are checked
before use, and only safetensors is read (never pickle).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from .atomic import atomic_path
from .errors import BadWeightsError

if TYPE_CHECKING:
    from .network import StyleNet

FORMAT_VERSION = "2"
ARCH_NAME = "johnson2016-cin-upsample-sigmoid"
#: How the decoder doubles its resolution. Nearest-neighbour repeats each feature in a 2x2 block, and the
#: convolution after it turns those blocks into a 2- and 4-pixel stamp (the fine hatching of every network trained
#: with it); bilinear leaves no blocks, but still lets through the images of the coarse grid (a 4-pixel lattice);
#: antialiased is bilinear followed by a binomial filter that removes them (``network.doubled``). Files without
#: the key were trained with nearest.
UPSAMPLING = ("nearest", "bilinear", "antialiased")

#: The names of the tensors that make a style (a row each per style); every other tensor is the shared trunk.
NORM_PARAMETERS = (".norm.weight", ".norm.bias")

Tensors = dict[str, np.ndarray]
Shapes = dict[str, tuple[int, ...]]


@dataclass(frozen=True)
class Architecture:
    """Everything needed to rebuild a network from its weights file."""

    widths: tuple[int, int, int] = (16, 32, 64)
    res_blocks: int = 5
    #: rows of normalisation parameters: one per style the network paints
    styles: int = 1
    upsample: str = "antialiased"

    def to_metadata(self) -> dict[str, str]:
        return {
            "format_version": FORMAT_VERSION,
            "arch": ARCH_NAME,
            "widths": ",".join(map(str, self.widths)),
            "res_blocks": str(self.res_blocks),
            "styles": str(self.styles),
            "upsample": self.upsample,
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
            upsample = meta.get("upsample", "nearest")
            if upsample not in UPSAMPLING:
                raise ValueError(f"upsample {upsample!r}")
        except (KeyError, ValueError) as exc:
            raise BadWeightsError(f"{source}: bad architecture metadata ({exc})") from None
        return cls(widths=widths, res_blocks=res_blocks, styles=styles, upsample=upsample)  # type: ignore[arg-type]

    def norm_layers(self) -> list[tuple[str, int]]:
        """Each normalisation layer's name and channels, in the order a forward pass meets them."""
        c1, c2, c3 = self.widths
        residuals = [(f"residuals.{i}.{half}", c3) for i in range(self.res_blocks) for half in ("first", "second")]
        return [("encoder.0", c1), ("encoder.1", c2), ("encoder.2", c3), *residuals,
                ("decoder.0", c2), ("decoder.1", c1)]

    def shapes(self) -> Shapes:
        """Every tensor of the network (``stylize.network.StyleNet``'s state dict), by name."""
        c1, c2, c3 = self.widths
        convs = {"encoder.0": (3, c1, 9), "encoder.1": (c1, c2, 3), "encoder.2": (c2, c3, 3),
                 **{name: (c3, c3, 3) for name, _ in self.norm_layers() if name.startswith("residuals")},
                 "decoder.0": (c3, c2, 3), "decoder.1": (c2, c1, 3)}
        shapes: Shapes = {}
        for name, (cin, cout, kernel) in convs.items():
            shapes[f"{name}.conv.1.weight"] = (cout, cin, kernel, kernel)
            shapes[f"{name}.conv.1.bias"] = (cout,)
            shapes[f"{name}.norm.weight"] = shapes[f"{name}.norm.bias"] = (self.styles, cout)
        shapes["to_rgb.1.weight"], shapes["to_rgb.1.bias"] = (3, c1, 9, 9), (3,)
        return shapes

    def trunk_shapes(self) -> Shapes:
        return {name: shape for name, shape in self.shapes().items() if not name.endswith(NORM_PARAMETERS)}

    def row_shapes(self) -> Shapes:
        """One style's row: each normalisation tensor without its style dimension."""
        return {name: shape[1:] for name, shape in self.shapes().items() if name.endswith(NORM_PARAMETERS)}


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_metadata(path: Path) -> dict[str, str]:
    """A safetensors file's header metadata; {} for anything that is not one."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            return handle.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError):
        return {}


def read_checked(path: Path, expected: Callable[[dict[str, str]], Shapes],
                 sha256: str | None) -> tuple[Tensors, dict[str, str], str]:
    """The file's tensors as float32, named and shaped exactly as ``expected(its metadata)`` says, its metadata
    and its sha256. Float tensors only; NaN/Inf values are refused; ``sha256`` must match if given."""
    from safetensors import SafetensorError, safe_open

    source = str(path)
    if not path.is_file():
        raise BadWeightsError(f"weights file not found: {source}")
    digest = file_sha256(path)
    if sha256 is not None and digest != sha256:
        raise BadWeightsError(f"{source}: sha256 differs from the one recorded for this style "
                              "(a damaged or replaced file); reinstall it")
    try:
        with safe_open(source, framework="numpy") as handle:
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
                    raise BadWeightsError(f"{source}: {name} has shape {tuple(tensor.shape)}, expected {shape}")
                if tensor.dtype not in (np.float16, np.float32):
                    raise BadWeightsError(f"{source}: {name} has dtype {tensor.dtype}, expected float16/32")
                if not np.isfinite(tensor).all():
                    raise BadWeightsError(f"{source}: {name} contains NaN or Inf")
                loaded[name] = tensor.astype(np.float32)
    except BadWeightsError:
        raise
    except (SafetensorError, OSError, ValueError, TypeError, RuntimeError) as exc:
        raise BadWeightsError(f"{source}: not a valid safetensors weights file ({exc})") from None
    return loaded, meta, digest


@dataclass(frozen=True)
class Weights:
    """A checked network: its architecture, its tensors, and the file its convolutions came from (a whole
    network or a trunk) with that file's sha256 -- what an exported graph of it is matched against."""

    arch: Architecture
    tensors: Tensors
    source: Path
    source_sha256: str

    def norm_rows(self) -> np.ndarray:
        """(styles, 2, channels of every layer): each style's gamma and beta, in the order a pass meets them."""
        names = [name for name, _ in self.arch.norm_layers()]
        return np.stack([np.concatenate([self.tensors[f"{name}.norm.{part}"] for name in names], axis=1)
                         for part in ("weight", "bias")], axis=1)


def read_network(path: Path, sha256: str | None = None) -> Weights:
    """A whole network's file, refusing anything that does not match exactly (``sha256``, recorded in the
    style's metadata, must match the file when given)."""
    arch: list[Architecture] = []

    def expected(meta: dict[str, str]) -> Shapes:
        arch.append(Architecture.from_metadata(meta, str(path)))
        return arch[0].shapes()

    tensors, _, digest = read_checked(path, expected, sha256)
    return Weights(arch[0], tensors, path, digest)


def read_rows(trunk: Path, rows: list[tuple[Path, str | None]], trunk_sha256: str | None = None) -> Weights:
    """A trunk with the given style rows (path, recorded sha256) stacked in order: row i is style i.

    The trunk may also be a whole network (its convolutions; a style's face row is made for one), and a row a
    whole network of the same shapes (its own row: where a face row's training starts). A row made for another
    trunk is refused (each row records its trunk's sha256)."""
    arch: list[Architecture] = []

    def expected(meta: dict[str, str]) -> Shapes:
        own = Architecture.from_metadata(meta, str(trunk))
        arch.append(replace(own, styles=len(rows)))
        return own.trunk_shapes() if meta.get("kind") == "trunk" else own.shapes()

    tensors, _, digest = read_checked(trunk, expected, trunk_sha256)
    tensors = {name: tensor for name, tensor in tensors.items() if not name.endswith(NORM_PARAMETERS)}
    row_shapes = arch[0].row_shapes()
    stacked: dict[str, list[np.ndarray]] = {name: [] for name in row_shapes}
    for path, sha256 in rows:
        def row_or_network(meta: dict[str, str], source: str = str(path)) -> Shapes:
            is_row = meta.get("kind") == "style-row"
            return row_shapes if is_row else Architecture.from_metadata(meta, source).shapes()

        row, meta, _ = read_checked(path, row_or_network, sha256)
        if meta.get("kind") == "style-row":
            if meta.get("trunk_sha256") != digest:
                raise BadWeightsError(f"{path}: this style was trained on another trunk than {trunk}; reinstall it")
        else:  # a whole network: its own row
            network = Architecture.from_metadata(meta, str(path))
            if network != replace(arch[0], styles=1):
                raise BadWeightsError(f"{path}: a {network} network has no row for {trunk}")
            row = {name: row[name][0] for name in row_shapes}
        for name, tensor in row.items():
            stacked[name].append(tensor)
    tensors.update({name: np.stack(parts) for name, parts in stacked.items()})
    return Weights(arch[0], tensors, trunk, digest)


def with_row(weights: Weights, row: Path, sha256: str | None = None) -> Weights:
    """``weights`` (one style's network) painting with another row made for its file (a style's face row): only
    the row is read; one made for other weights is refused."""
    tensors, meta, _ = read_checked(row, lambda _: weights.arch.row_shapes(), sha256)
    if meta.get("kind") != "style-row" or meta.get("trunk_sha256") != weights.source_sha256:
        raise BadWeightsError(f"{row}: not a row made for {weights.source}; reinstall it")
    return replace(weights, tensors={**weights.tensors, **{name: t[None] for name, t in tensors.items()}})


def mix_rows(weights: Weights, shares: list[float]) -> Weights:
    """One row: the share-weighted mean of ``weights``' rows, a blend of its styles."""
    mixing = np.asarray(shares, dtype=np.float32)
    mixing = mixing / mixing.sum()
    tensors = {name: (mixing @ t)[None] if name.endswith(NORM_PARAMETERS) else t
               for name, t in weights.tensors.items()}
    return replace(weights, arch=replace(weights.arch, styles=1), tensors=tensors)


def is_trunk(path: Path) -> bool:
    """Whether ``path`` is a catalogue's trunk file (rather than a whole network)."""
    return read_metadata(path).get("kind") == "trunk"


def is_row(path: Path) -> bool:
    """Whether ``path`` is one style's row of normalisation parameters (rather than a whole network)."""
    return read_metadata(path).get("kind") == "style-row"


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


def _arrays(model: "StyleNet") -> dict[str, np.ndarray]:
    """The model's tensors as fp32 numpy arrays (the writers need no torch import of their own)."""
    return {name: tensor.detach().cpu().float().numpy() for name, tensor in model.state_dict().items()}


def _write(tensors: dict[str, np.ndarray], path: Path, metadata: dict[str, str]) -> None:
    from safetensors.numpy import save_file

    with atomic_path(path) as tmp:
        save_file({name: np.ascontiguousarray(array) for name, array in tensors.items()}, str(tmp), metadata=metadata)


def save_weights(model: "StyleNet", path: Path, extra_metadata: dict[str, str] | None = None) -> None:
    """A whole network: fp16 safetensors with the architecture in the header, written atomically."""
    tensors = {name: array.astype(np.float16) for name, array in _arrays(model).items()}
    _write(tensors, path, {**(extra_metadata or {}), **model.arch.to_metadata()})


def save_trunk(model: "StyleNet", path: Path, extra_metadata: dict[str, str] | None = None) -> None:
    """A catalogue's shared part: every tensor but the normalisation rows (fp16, atomic)."""
    tensors = {name: array.astype(np.float16) for name, array in _arrays(model).items()
               if not name.endswith(NORM_PARAMETERS)}
    _write(tensors, path, {**(extra_metadata or {}), **replace(model.arch, styles=1).to_metadata(), "kind": "trunk"})


def save_style_row(model: "StyleNet", row: int, path: Path, trunk_sha256: str,
                   extra: dict[str, str] | None = None) -> None:
    """One style of a catalogue: its normalisation row (fp32, a few KB) and the sha256 of the trunk it belongs to."""
    tensors = {name: array[row] for name, array in _arrays(model).items() if name.endswith(NORM_PARAMETERS)}
    _write(tensors, path, {**(extra or {}), "format_version": FORMAT_VERSION, "kind": "style-row",
                           "trunk_sha256": trunk_sha256})
