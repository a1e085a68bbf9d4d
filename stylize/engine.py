"""Running a style network: one interface, two implementations, chosen by the device and what is installed.

``OnnxEngine`` (onnxruntime, the light install's CPU engine) runs the graph exported beside the
weights; ``TorchEngine`` (``stylize[torch]``) runs the network itself, on CUDA or the CPU. Both
take the same checked weights (``stylize.weights``) and give the same pixels within one 8-bit level.
What they share lives here: padding any photo to what the network can take, the whole-image and
tiled passes (tiles replay the statistics a whole-image pass measured), and turning out-of-memory
into one photo's error.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

import numpy as np

from .errors import BadWeightsError, DeviceError, MissingExtraError, OutOfMemoryError
from .options import EngineName

if TYPE_CHECKING:
    from .weights import Weights


Result = TypeVar("Result")

#: The network halves the image twice: sides are padded to multiples of this.
DOWNSAMPLING = 4
#: The network's reflection pads need a few pixels at the coarsest scale; thinner images are padded up to this.
MIN_SIDE = 32


def padded_for_network(rgb: np.ndarray) -> np.ndarray:
    """Any (H, W, 3) image padded at the bottom and right to what the network takes (crop back to H, W after)."""
    h, w = rgb.shape[:2]
    pad_h, pad_w = max(-h % DOWNSAMPLING, MIN_SIDE - h), max(-w % DOWNSAMPLING, MIN_SIDE - w)
    if not (pad_h or pad_w):
        return rgb
    mode = "reflect" if pad_h < h and pad_w < w else "edge"
    return np.pad(rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)


class Engine(ABC):
    """One network, loaded for one style or blend. Safe to share between threads: a pass holds no state
    outside its call, and passes run one at a time (each uses every core; memory stays one pass's)."""

    #: "onnxruntime" or "torch"
    name: str
    #: where it runs, for people: "cpu", "cuda:0"
    device: str

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @abstractmethod
    def _paint(self, rgb: np.ndarray, stats: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 with H, W multiples of ``DOWNSAMPLING`` -> the stylised (H, W, 3) uint8, and the
        (2, C) per-channel mean and variance every norm layer measured; ``stats``: normalise with these instead."""

    @abstractmethod
    def _is_out_of_memory(self, exc: Exception) -> bool:
        """Whether ``exc`` is this engine's way of saying it ran out of memory (freeing what it can)."""

    @property
    def precision(self) -> str:
        return "float32"

    def describe(self) -> str:
        return f"{self.name} on {self.device}, {self.precision}"

    def _forward(self, rgb: np.ndarray, stats: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Any (H, W, 3) uint8 with H, W >= 1: padded to what the network takes, and cropped back."""
        h, w = rgb.shape[:2]
        painted, measured = self._paint(np.ascontiguousarray(padded_for_network(rgb)), stats)
        return painted[:h, :w], measured

    def _guarded(self, pixels: int, run: Callable[[], Result]) -> Result:
        """Out of memory on one photo is that photo's error, with the option that helps, not a crash."""
        try:
            with self._lock:
                return run()
        except MemoryError:
            pass
        except Exception as exc:  # each engine names its own out-of-memory exception
            if not self._is_out_of_memory(exc):
                raise
        advice = "use hd resize (the default) or tiled, or a smaller working size"
        raise OutOfMemoryError(f"out of memory on {self.device} stylising {pixels / 1e6:.1f} MP at full "
                               f"resolution; {advice}") from None

    def stylize(self, rgb: np.ndarray) -> np.ndarray:
        """Whole image in one pass: (H, W, 3) uint8 -> stylised, same size."""
        return self._guarded(rgb.shape[0] * rgb.shape[1], lambda: self._forward(rgb, None)[0])

    def stylize_tiled(self, rgb: np.ndarray, stats_from: np.ndarray, tile: int = 512, margin: int = 64) -> np.ndarray:
        """Full resolution in tiles, each normalised with the statistics of one pass over ``stats_from``.

        Each tile is computed with ``margin`` extra pixels of context on every side,
        and only its core is kept, so memory is bounded by the tile size, not the photo.
        """
        h, w = rgb.shape[:2]

        def tiles() -> np.ndarray:
            out = np.empty_like(rgb)
            _, stats = self._forward(stats_from, None)
            for y in range(0, h, tile):
                for x in range(0, w, tile):
                    y0, x0 = max(0, y - margin), max(0, x - margin)
                    y1, x1 = min(h, y + tile + margin), min(w, x + tile + margin)
                    result, _ = self._forward(rgb[y0:y1, x0:x1], stats)
                    out[y:y + tile, x:x + tile] = result[y - y0:y - y0 + tile, x - x0:x - x0 + tile]
            return out

        return self._guarded(h * w, tiles)


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def cuda_available() -> bool:
    """CUDA through torch (only ``stylize[torch]`` has a CUDA path). Without torch, or on Linux without NVIDIA's
    driver loaded, False without importing torch (a second and 500 MB a CLI run would pay for nothing)."""
    if not installed("torch") or (sys.platform == "linux" and not Path("/proc/driver/nvidia").exists()):
        return False
    import torch

    return torch.cuda.is_available()


def open_engine(weights: "Weights", device: str = "auto", engine: EngineName | str = EngineName.AUTO,
                graph_sha256: str | None = None) -> Engine:
    """The engine for ``weights`` on ``device``: torch for CUDA; on the CPU onnxruntime where the weights' graph
    is exported beside them (``stylize export``), else torch where installed. ``graph_sha256``, recorded for
    the style, must match the graph file when given."""
    try:
        engine = EngineName(engine)
    except ValueError:
        raise DeviceError(f"unknown engine {engine!r}: use {', '.join(e.value for e in EngineName)}") from None
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise DeviceError(f"unsupported device {device!r}: use auto, cpu or cuda[:N]")
    # onnxruntime runs on the CPU: asked for by name, "auto" means the CPU even where CUDA is
    on_cpu = device == "cpu" or (device == "auto" and (engine is EngineName.ONNXRUNTIME or not cuda_available()))
    if engine is EngineName.ONNXRUNTIME and not on_cpu:
        raise DeviceError(f"the onnxruntime engine runs on the CPU; use device cpu or the torch engine for {device}")
    if engine is EngineName.TORCH or not on_cpu:
        return _torch_engine(weights, device)
    from .engine_onnx import OnnxEngine, graph_path, stale_graph_reason

    reason = stale_graph_reason(weights, graph_sha256)
    if reason is None:
        return OnnxEngine(weights, graph_path(weights.source))
    if engine is EngineName.AUTO and installed("torch"):
        return _torch_engine(weights, "cpu")  # e.g. freshly trained weights, not exported yet
    error = BadWeightsError if graph_path(weights.source).is_file() else MissingExtraError
    raise error(f"{reason}; run `stylize export` (it needs torch: pip install 'stylize[torch]')")


def _torch_engine(weights: "Weights", device: str) -> Engine:
    if not installed("torch"):
        raise MissingExtraError(f"device {device} and the torch engine need torch: pip install 'stylize[torch]'")
    from .engine_torch import TorchEngine

    return TorchEngine(weights, device)
