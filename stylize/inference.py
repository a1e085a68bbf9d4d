"""Running a style network: device and precision, whole-image and tiled passes, edge-aware upsampling."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import cv2
import numpy as np
import torch

from .errors import DeviceError, OutOfMemoryError
from .network import StyleNet


def cpu_has_bf16() -> bool:
    """True where oneDNN has native bf16 kernels (AVX-512 BF16 / AMX); elsewhere bf16 is emulated and slow."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` is CUDA when present, else the CPU; an explicit device that is missing is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise DeviceError(f"unknown device {name!r}: use auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} requested but CUDA is not available here; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise DeviceError(f"unsupported device {name!r}: use auto, cpu or cuda[:N]")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise DeviceError(f"device {name!r} requested but this machine has {torch.cuda.device_count()} CUDA "
                          f"device(s) (cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    return device


def default_dtype(device: torch.device) -> torch.dtype:
    """fp16 on CUDA; bf16 on CPUs with native bf16; fp32 otherwise (training autocasts to the same)."""
    if device.type == "cuda":
        return torch.float16
    return torch.bfloat16 if cpu_has_bf16() else torch.float32


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float in [0, 1]."""
    array = np.ascontiguousarray(rgb)
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).float().div(255.0)


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) float -> (H, W, 3) uint8, clamped."""
    return tensor[0].float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).contiguous().cpu().numpy()


def resize_long_side(rgb: np.ndarray, long_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    if max(h, w) <= long_side:
        return rgb
    scale = long_side / max(h, w)
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


#: The network's reflection pads need a few pixels at the coarsest scale; thinner images are padded up to this.
MIN_SIDE = 32


class Engine:
    """One loaded network on one device. Calls are serialised: the norm layers carry per-call state."""

    def __init__(self, model: StyleNet, device: str = "auto", dtype: torch.dtype | None = None) -> None:
        self.device = resolve_device(device)
        self.dtype = dtype or default_dtype(self.device)
        self.model = model.eval().to(self.device, dtype=self.dtype).to(memory_format=torch.channels_last)
        self.lock = threading.Lock()

    @torch.inference_mode()
    def _forward(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> stylised, same size; any H, W >= 1 (padded to a multiple of 4, at least MIN_SIDE)."""
        x = to_tensor(rgb)
        h, w = x.shape[2:]
        mult = self.model.downsampling
        pad_h, pad_w = max(-h % mult, MIN_SIDE - h), max(-w % mult, MIN_SIDE - w)
        x = x.to(self.device, dtype=self.dtype).contiguous(memory_format=torch.channels_last)
        if pad_h or pad_w:
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = torch.nn.functional.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        return to_uint8(self.model(x)[:, :, :h, :w])

    @contextlib.contextmanager
    def _memory_guard(self, pixels: int) -> Iterator[None]:
        """Out of memory on one photo is that photo's error, with the option that helps, not a crash."""
        try:
            yield
        except (MemoryError, RuntimeError) as exc:
            if not isinstance(exc, MemoryError) and "memory" not in str(exc).lower():
                raise
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            advice = "use --hd resize (the default) or --hd tiled, or a smaller --size"
            raise OutOfMemoryError(f"out of memory on {self.device} stylising {pixels / 1e6:.1f} MP at full "
                                   f"resolution; {advice}") from None

    def stylize(self, rgb: np.ndarray) -> np.ndarray:
        """Whole image in one pass."""
        with self.lock, self._memory_guard(rgb.shape[0] * rgb.shape[1]):
            return self._forward(rgb)

    def stylize_tiled(self, rgb: np.ndarray, stats_from: np.ndarray, tile: int = 512, margin: int = 64) -> np.ndarray:
        """Full resolution in tiles, each normalised with the statistics of one pass over ``stats_from``.

        Each tile is computed with ``margin`` extra pixels of context on every side,
        and only its core is kept, so memory is bounded by the tile size, not the photo.
        """
        h, w = rgb.shape[:2]
        with self.lock, self._memory_guard(h * w):  # the lock is held throughout: the recorded statistics
            out = np.empty_like(rgb)                # must not meet another caller's pass
            with self.model.record_stats():
                self._forward(stats_from)
            with self.model.replay_stats():
                for y in range(0, h, tile):
                    for x in range(0, w, tile):
                        y0, x0 = max(0, y - margin), max(0, x - margin)
                        y1, x1 = min(h, y + tile + margin), min(w, x + tile + margin)
                        result = self._forward(rgb[y0:y1, x0:x1])
                        out[y:y + tile, x:x + tile] = result[y - y0:y - y0 + tile, x - x0:x - x0 + tile]
        return out


def _taps(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """For each output pixel: the lower of its two nearest input samples, and the weight of the upper one."""
    pos = (np.arange(n_out, dtype=np.float32) + 0.5) * (n_in / n_out) - 0.5  # pixel centres, as cv2.resize
    lower = np.clip(np.floor(pos), 0, n_in - 1).astype(np.intp)
    return lower, np.clip(pos - lower, 0.0, 1.0).astype(np.float32)


def joint_bilateral_upsample(low: np.ndarray, guide: np.ndarray, sigma: float = 0.06,
                             edge_threshold: float = 0.03, strip_rows: int = 256) -> np.ndarray:
    """Upsample stylised ``low`` to the size of the photo ``guide``, snapping edges to the photo's.

    Each output pixel mixes its four nearest low-resolution samples with bilinear
    weights times a range weight: how close the photo's luminance there is to the
    photo's (downsampled) luminance at each sample. Brush texture keeps the
    working-size scale, while edges follow the full-resolution photo instead of
    smearing across. Where the four samples' luminances agree (within
    ``edge_threshold``) the range weights hardly differ, so plain bilinear is used
    there and only pixels near edges pay for the bilateral weights. Luminances are
    8-bit, so the range weight is an exact 511-entry table. Done in strips (two
    threads: numpy releases the GIL), so memory stays bounded for huge photos.
    """
    H, W = guide.shape[:2]
    h, w = low.shape[:2]
    if (h, w) == (H, W):
        return low.copy()
    out = cv2.resize(low, (W, H), interpolation=cv2.INTER_LINEAR)
    gray_low = cv2.cvtColor(cv2.resize(guide, (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    padded = np.pad(gray_low, ((0, 1), (0, 1)), mode="edge")
    corners = np.stack([padded[:-1, :-1], padded[:-1, 1:], padded[1:, :-1], padded[1:, 1:]]).astype(np.int16)
    edgy = corners.max(axis=0) - corners.min(axis=0) > edge_threshold * 255  # cell between (i, j) and (i+1, j+1)
    x_low, x_frac = _taps(W, w)
    y_low_all, y_frac_all = _taps(H, h)
    diffs = np.arange(-255, 256, dtype=np.float32) / 255.0
    range_weight = (np.exp(-diffs * diffs / (2.0 * sigma * sigma)) + 1e-4).astype(np.float32)
    low_flat, gray_low_flat, out_flat = low.reshape(-1, 3), gray_low.ravel().astype(np.int16), out.reshape(-1, 3)

    def strip(y0: int) -> None:
        y1 = min(H, y0 + strip_rows)
        rows, cols = np.nonzero(np.take(np.take(edgy, y_low_all[y0:y1], axis=0), x_low, axis=1))
        if rows.size == 0:
            return
        gray = cv2.cvtColor(guide[y0:y1], cv2.COLOR_RGB2GRAY).ravel()[rows * W + cols].astype(np.int16) + 255
        ya, fy = y_low_all[y0 + rows], y_frac_all[y0 + rows]
        xa, fx = x_low[cols], x_frac[cols]
        yb, xb = np.minimum(ya + 1, h - 1), np.minimum(xa + 1, w - 1)
        acc = np.zeros((rows.size, 3), np.float32)
        total = np.zeros(rows.size, np.float32)
        for yi, wy in ((ya * w, 1.0 - fy), (yb * w, fy)):
            for xi, wx in ((xa, 1.0 - fx), (xb, fx)):
                flat = yi + xi
                weight = wy * wx * range_weight[gray - gray_low_flat[flat]]
                acc += weight[:, None] * low_flat[flat]
                total += weight
        out_flat[(y0 + rows) * W + cols] = np.clip(acc / total[:, None] + 0.5, 0, 255).astype(np.uint8)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(strip, range(0, H, strip_rows)))
    return out
