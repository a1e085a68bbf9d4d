"""The style catalogue: one name -> one weights file + one metadata file.

``styles/<name>.json`` holds title, artist, year, provenance, licence, the
architecture, the training recipe and the weights' sha256;
``weights/<name>.safetensors`` holds the network; ``styles/<name>.jpg`` a preview.
The root is the project folder, or ``$STYLIZE_HOME`` when set.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import UnknownStyleError

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Style:
    name: str
    weights: Path
    metadata: dict

    @property
    def title(self) -> str:
        return str(self.metadata.get("title", self.name))

    @property
    def artist(self) -> str:
        return str(self.metadata.get("artist", "unknown"))

    @property
    def year(self) -> str:
        return str(self.metadata.get("year", ""))

    @property
    def preview(self) -> Path | None:
        path = self.weights.parent.parent / "styles" / f"{self.name}.jpg"
        return path if path.is_file() else None


def catalogue_root() -> Path:
    env = os.environ.get("STYLIZE_HOME")
    return Path(env) if env else Path(__file__).resolve().parent.parent


def list_styles(root: Path | None = None) -> list[Style]:
    """Every style that has both a metadata file and a weights file, sorted by name."""
    root = root or catalogue_root()
    styles = []
    for meta_path in sorted((root / "styles").glob("*.json")):
        name = meta_path.stem
        weights = root / "weights" / f"{name}.safetensors"
        if NAME_PATTERN.match(name) and weights.is_file():
            try:
                metadata = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                metadata = {}
            styles.append(Style(name, weights, metadata if isinstance(metadata, dict) else {}))
    return styles


def get_style(name: str, root: Path | None = None) -> Style:
    """Look a style up by name; names are plain identifiers, so nothing can reach outside the catalogue."""
    styles = {s.name: s for s in list_styles(root)}
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or name not in styles:
        valid = ", ".join(styles) or "none installed"
        raise UnknownStyleError(f"unknown style {name!r}; valid styles: {valid}")
    return styles[name]
