"""The style catalogue: one name -> one weights file + one metadata file.

``styles/<name>.json`` holds the style's record (``style_record.StyleRecord``: title, artist, year,
provenance, licence, the architecture, the training recipe and the weights' sha256);
``weights/<name>.safetensors`` holds the network, or, for a style of a multi-style
network (``"trunk"`` in its metadata), its normalisation row on the shared
``weights/trunks/<trunk>.safetensors``; ``styles/<name>.jpg`` is a preview.
Styles of one trunk blend: ``signac_meadow:0.6,chestnut_trees:0.4`` mixes their rows.
The root is the project folder (an installed wheel carries it as ``stylize/shipped/``), or
``$STYLIZE_HOME`` when set.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UnknownStyleError
from .style_record import StyleRecord

if TYPE_CHECKING:
    from .weights import Weights

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def without_notes(text: str) -> str:
    """A record's text without the bracketed notes that follow it."""
    return text.split(" (", 1)[0]


@dataclass(frozen=True)
class Style:
    name: str
    weights: Path
    record: StyleRecord

    @property
    def title(self) -> str:
        return self.record.text("title", self.name)

    @property
    def short_title(self) -> str:
        """The title without its bracketed notes (other names, what was not verified), for narrow places."""
        return without_notes(self.title)

    @property
    def artist(self) -> str:
        return self.record.text("artist", "unknown")

    @property
    def year(self) -> str:
        return self.record.text("year")

    @property
    def short_year(self) -> str:
        """The year without its bracketed notes ("c. 1903 (before 1913 in any case; ...)" -> "c. 1903")."""
        return without_notes(self.year)

    @property
    def preview(self) -> Path | None:
        path = self.weights.parent.parent / "styles" / f"{self.name}.jpg"
        return path if path.is_file() else None

    @property
    def face_strength(self) -> float:
        """The face strength this style keeps faces recognisable with (see ``Options.face_strength``)."""
        return self.record.face_strength

    @property
    def trunk(self) -> Path | None:
        """The shared network this style is a row of (None: its weights file is a whole network)."""
        trunk = self.record.trunk
        return self.weights.parent / "trunks" / f"{trunk}.safetensors" if trunk else None

    @property
    def face_weights(self) -> Path | None:
        """What paints this style's aligned face crops, recorded with its sha256 (``face_sha256``): a row of the
        style's own network, or a whole network trained from it on face crops (a face network: it can keep more
        of a face's features than a row alone); None: faces use the style's own network."""
        return face_weights_path(self.weights) if self.record.sha256("face_sha256") and self.trunk is None else None

    @property
    def graph_sha256(self) -> str | None:
        """The sha256 of the ONNX graph of this style's network, recorded by ``stylize export``."""
        return self.record.sha256("graph_sha256")


@dataclass(frozen=True)
class Blend:
    """Several styles of one trunk mixed by weight (the weights are shares: they are normalised to sum to 1)."""

    parts: tuple[tuple[Style, float], ...]

    @property
    def name(self) -> str:
        return ",".join(f"{style.name}:{share:g}" for style, share in self.parts)

    @property
    def title(self) -> str:
        return " + ".join(style.title for style, _ in self.parts)

    @property
    def artist(self) -> str:
        return " + ".join(dict.fromkeys(style.artist for style, _ in self.parts))

    @property
    def face_strength(self) -> float:
        total = sum(share for _, share in self.parts)
        return sum(style.face_strength * share for style, share in self.parts) / total

    @property
    def graph_sha256(self) -> str | None:
        return self.parts[0][0].graph_sha256

    @property
    def record(self) -> StyleRecord:
        """What provenance needs of a blend: its paintings' licences."""
        licences = {style.record.text("licence", "unknown") for style, _ in self.parts}
        return StyleRecord({"licence": licences.pop() if len(licences) == 1 else "; ".join(sorted(licences))})


def catalogue_root() -> Path:
    """``$STYLIZE_HOME`` when set; else the repository a checkout runs from; else the catalogue a wheel carries."""
    env = os.environ.get("STYLIZE_HOME")
    if env:
        return Path(env)
    package = Path(__file__).resolve().parent
    checkout = package.parent
    if (checkout / "styles").is_dir() and (checkout / "weights").is_dir() and (checkout / "pyproject.toml").is_file():
        return checkout
    return package / "shipped"


def list_styles(root: Path | None = None) -> list[Style]:
    """Every style that has both a metadata file and a weights file, sorted by name."""
    root = root or catalogue_root()
    styles = []
    for meta_path in sorted((root / "styles").glob("*.json")):
        name = meta_path.stem
        weights = root / "weights" / f"{name}.safetensors"
        if NAME_PATTERN.match(name) and weights.is_file():
            styles.append(Style(name, weights, StyleRecord.read(meta_path)))
    return styles


def get_style(name: str, root: Path | None = None) -> Style:
    """Look a style up by name; names are plain identifiers, so nothing can reach outside the catalogue."""
    styles = {s.name: s for s in list_styles(root)}
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or name not in styles:
        valid = ", ".join(styles) or "none installed"
        raise UnknownStyleError(f"unknown style {name!r}; valid styles: {valid}")
    return styles[name]


def file_label(spec: str) -> str:
    """A style or blend as a file-name part: ``a:0.6,b:0.4`` -> ``a-0.6+b-0.4``."""
    return spec.replace(":", "-").replace(",", "+")


def select(spec: str, root: Path | None = None) -> Style | Blend:
    """``NAME`` or a blend ``NAME:SHARE,NAME:SHARE,...`` (shares are positive numbers, normalised)."""
    if not isinstance(spec, str) or ("," not in spec and ":" not in spec):
        return get_style(spec, root)
    parts = []
    for item in spec.split(","):
        name, _, share = item.strip().partition(":")
        try:
            weight = float(share) if share else 1.0
        except ValueError:
            weight = -1.0
        if not weight > 0 or weight == float("inf"):
            raise UnknownStyleError(f"style blend {spec!r}: {item!r} needs a positive share, as in starry_night:0.6")
        parts.append((get_style(name, root), weight))
    if len({style.name for style, _ in parts}) != len(parts):
        raise UnknownStyleError(f"style blend {spec!r} names a style twice")
    trunks = {style.trunk for style, _ in parts}
    if len(parts) > 1 and (None in trunks or len(trunks) > 1):
        raise UnknownStyleError(f"style blend {spec!r}: only styles of one multi-style network blend "
                                "(see `stylize styles`)")
    return Blend(tuple(parts)) if len(parts) > 1 else parts[0][0]


def face_weights_path(weights: Path) -> Path:
    """Where the face network (or row) of the style whose weights are ``weights`` lives: beside them."""
    return weights.with_name(f"{weights.stem}.face.safetensors")


def read_face_selection(selection: Style | Blend, weights: "Weights") -> "tuple[Weights, str | None] | None":
    """What paints ``selection``'s faces, where it has its own (``Style.face_weights``), and the sha256 its graph
    is checked against: ``weights`` (``selection``'s, as read) with its face row, on the style's graph; or its face
    network, on the face network's own graph (``face_graph_sha256``). None: faces use ``weights``."""
    from .weights import is_row, read_network, with_row

    if not isinstance(selection, Style) or selection.face_weights is None:
        return None
    path, record = selection.face_weights, selection.record
    if is_row(path):
        return with_row(weights, path, record.sha256("face_sha256")), selection.graph_sha256
    return read_network(path, record.sha256("face_sha256")), record.sha256("face_graph_sha256")


def read_selection(selection: Style | Blend) -> "Weights":
    """The checked weights that paint ``selection``, as one row (sha256s from the metadata; a blend's rows mixed)."""
    from .weights import mix_rows, read_network, read_rows

    parts = selection.parts if isinstance(selection, Blend) else ((selection, 1.0),)
    first = parts[0][0]
    if first.trunk is None:
        return read_network(first.weights, first.record.sha256("weights_sha256"))
    rows = [(style.weights, style.record.sha256("weights_sha256")) for style, _ in parts]
    return mix_rows(read_rows(first.trunk, rows, first.record.sha256("trunk_sha256")), [share for _, share in parts])
