"""What both engines share: padding any photo to what the network can take, the whole-image and tiled passes
(tiles replay the statistics a whole-image pass measured), and turning out-of-memory into one photo's error."""

from __future__ import annotations

import importlib.util
import threading
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Callable, TypeVar

import numpy as np

from ..errors import OutOfMemoryError

if TYPE_CHECKING:
    from ..weights import Weights


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
    """Whether ``module`` can be imported, without importing it (torch takes seconds)."""
    return importlib.util.find_spec(module) is not None
