"""The CPU engine of the light install: the network's graph, exported beside its weights, on onnxruntime.

A graph holds a network's convolutions; its inputs are the image, every norm layer's gamma/beta row
(so one graph paints every style of a catalogue, and blends), statistics to normalise with and the
share of them to use (1 for tiles); its outputs are the image and the statistics it measured. It is
made by ``stylize.export`` and records the sha256 of the weights file it came from, so a graph of
other weights is refused. Sessions are shared per graph file: a catalogue's styles load it once.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import BadWeightsError
from ..weights import Weights, file_sha256
from .base import Engine, installed

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

#: What a graph's inputs and outputs are called, and the version of that contract.
GRAPH_FORMAT = "1"
INPUTS = ("image", "norm_rows", "stats", "replay")
OUTPUTS = ("painted", "measured")

_SESSIONS: dict[tuple[Path, int, int, int], "InferenceSession"] = {}
_SESSIONS_LOCK = threading.Lock()


def graph_path(source: Path) -> Path:
    """Where the graph of a weights file (a whole network or a trunk) lives: beside it."""
    return source.with_suffix(".onnx")


def stale_graph_reason(weights: Weights, graph_sha256: str | None = None, threads: int = 0) -> str | None:
    """None when ``weights`` has a usable graph; else why not, in words."""
    path = graph_path(weights.source)
    if not path.is_file():
        return f"{weights.source} has no ONNX graph ({path.name})"
    if not installed("onnxruntime"):
        return "onnxruntime is not installed"
    if graph_sha256 is not None and file_sha256(path) != graph_sha256:
        return f"{path}: sha256 differs from the one recorded for this style"
    return _mismatch(_session(path, threads), weights, path)


def _mismatch(session: "InferenceSession", weights: Weights, path: Path) -> str | None:
    """Why the graph in ``session`` is not the one of ``weights`` (None when it is)."""
    recorded = session.get_modelmeta().custom_metadata_map
    if recorded.get("graph_format") != GRAPH_FORMAT or recorded.get("source_sha256") != weights.source_sha256:
        return f"{path} was exported from other weights than {weights.source} (or by another version)"
    names = (tuple(i.name for i in session.get_inputs()), tuple(o.name for o in session.get_outputs()))
    if names != (INPUTS, OUTPUTS):
        return f"{path}: graph inputs/outputs {names}, expected {(INPUTS, OUTPUTS)}"
    return None


def _session(path: Path, threads: int = 0) -> "InferenceSession":
    """One onnxruntime session per graph file, as it is on disk (sessions are thread-safe to run). Keyed by the
    file's modification time and size: the content's sha256 is checked once, against the style's record.
    ``threads``: the session's CPU threads (0: one per core)."""
    import onnxruntime as ort

    status = path.stat()
    key = (path.resolve(), status.st_mtime_ns, status.st_size, threads)
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            # idle workers sleep instead of spinning: decoding, detection and encoding share the cores
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.intra_op_num_threads = threads
            try:
                _SESSIONS[key] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime's own exception types
                raise BadWeightsError(f"{path}: not a valid ONNX graph ({str(exc).splitlines()[0]})") from None
        return _SESSIONS[key]


class OnnxEngine(Engine):
    name = "onnxruntime"
    device = "cpu"

    def __init__(self, weights: Weights, path: Path, threads: int = 0) -> None:
        super().__init__()
        if weights.arch.styles != 1:
            raise ValueError("an engine paints one style: mix the rows first (stylize.weights.mix_rows)")
        self.session = _session(path, threads)
        mismatch = _mismatch(self.session, weights, path)
        if mismatch:
            raise BadWeightsError(f"{mismatch}; run `stylize export` again")
        self.rows = weights.norm_rows()[0]
        self._no_stats = np.zeros_like(self.rows)

    def _paint(self, rgb: np.ndarray, stats: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        image = (rgb.transpose(2, 0, 1)[None].astype(np.float32) / 255.0)
        feeds = {"image": image, "norm_rows": self.rows, "stats": self._no_stats if stats is None else stats,
                 "replay": np.array([0.0 if stats is None else 1.0], np.float32)}
        painted, measured = self.session.run(list(OUTPUTS), feeds)
        out = np.clip(painted[0].transpose(1, 2, 0), 0.0, 1.0) * 255.0
        return np.rint(out).astype(np.uint8), measured

    def _is_out_of_memory(self, exc: Exception) -> bool:
        text = str(exc).lower()
        return "allocate" in text or "bad_alloc" in text or "bad allocation" in text
