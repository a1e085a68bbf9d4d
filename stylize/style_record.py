"""``styles/NAME.json``: a style's record, defined once here, read by ``StyleRecord.read`` and written by
``StyleRecord.write`` for every writer (training, export, promotion, the paintings' provenance).

What the fields mean:

- ``name``, ``title``, ``artist``, ``year``, ``licence``: what the style is, shown to people (``work``,
  ``artist_died`` and ``provenance``, where the painting's reproduction came from, are kept with them);
- ``face_strength``: the face strength it is painted with by default (``Options.face_strength``);
- ``weights_sha256``: its weights file's (a whole network, or a row of ``trunk``); ``trunk`` and
  ``trunk_sha256``: the multi-style network it is a row of; ``graph_sha256``: its network's ONNX graph's;
  ``face_sha256``: what paints its faces, where it has its own (``weights/NAME.face.safetensors``: a row of its
  network, or a face network trained from it on face crops), with ``face_graph_sha256`` (a face network's
  graph) and ``face_training`` (the run that made it);
- ``architecture`` and ``training``: the network's shape, and the recipe, steps and losses of the run that
  made it (``training.init_weights``: what that run started from; ``training.replaces``: the shipped network
  it replaced, where the run started elsewhere).

Fields a record does not know are kept as they are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterator

from .options import DEFAULT_FACE_STRENGTH


class StyleRecord(Mapping):
    """A style's record: read-only; ``updated`` gives a changed copy and ``write`` saves it."""

    def __init__(self, fields: Mapping[str, Any] | None = None) -> None:
        self._fields = dict(fields or {})

    @classmethod
    def read(cls, path: Path) -> "StyleRecord":
        """The record in ``path``; an unreadable or malformed file reads as an empty record (the style then shows
        its name and paints with defaults; its weights are still checked on their own)."""
        try:
            fields = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        return cls(fields if isinstance(fields, dict) else {})

    def write(self, path: Path) -> None:
        """Save atomically, UTF-8 as written, in the one format of every record."""
        from .atomic import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self._fields, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def updated(self, **changes: Any) -> "StyleRecord":
        """A copy with ``changes`` (a value of None removes the field)."""
        fields = {**self._fields, **changes}
        return StyleRecord({key: value for key, value in fields.items() if value is not None})

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def text(self, key: str, default: str = "") -> str:
        return str(self._fields.get(key, default))

    def sha256(self, key: str) -> str | None:
        """A recorded sha256 (``weights_sha256``, ``trunk_sha256``, ``graph_sha256``, ``face_sha256``...)."""
        value = self._fields.get(key)
        return value if isinstance(value, str) else None

    @property
    def face_strength(self) -> float:
        value = self._fields.get("face_strength", DEFAULT_FACE_STRENGTH)
        return float(value) if isinstance(value, (int, float)) and 0.0 <= value <= 1.0 else DEFAULT_FACE_STRENGTH

    @property
    def trunk(self) -> str | None:
        value = self._fields.get("trunk")
        return value if isinstance(value, str) else None

    @property
    def architecture(self) -> dict:
        value = self._fields.get("architecture")
        return value if isinstance(value, dict) else {}

    @property
    def training(self) -> dict:
        value = self._fields.get("training")
        return value if isinstance(value, dict) else {}
