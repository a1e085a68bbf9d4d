"""Running a style network: device and precision, whole-image and tiled passes, guided upsampling."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import torch

from .errors import DeviceError
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
    return device


def default_dtype(device: torch.device) -> torch.dtype:
    """fp16 on CUDA; bf16 on CPUs with native bf16; fp32 otherwise (see README for the PSNR cost)."""
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


class Engine:
    """One loaded network on one device. Calls are serialised: the norm layers carry per-call state."""

    def __init__(self, model: StyleNet, device: str = "auto", dtype: torch.dtype | None = None) -> None:
        self.device = resolve_device(device)
        self.dtype = dtype or default_dtype(self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.model = model.eval().to(self.device, dtype=self.dtype).to(memory_format=torch.channels_last)
        self.lock = threading.RLock()

    @torch.inference_mode()
    def _forward(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> stylised, same size; any H, W (reflect-padded to a multiple of 4)."""
        x = to_tensor(rgb)
        h, w = x.shape[2:]
        mult = self.model.downsampling
        pad_h, pad_w = -h % mult, -w % mult
        x = x.to(self.device, dtype=self.dtype).contiguous(memory_format=torch.channels_last)
        if pad_h or pad_w:
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = torch.nn.functional.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        return to_uint8(self.model(x)[:, :, :h, :w])

    def stylize(self, rgb: np.ndarray, record: bool = False) -> np.ndarray:
        """Whole image in one pass; ``record`` keeps its norm statistics for ``stylize_like``."""
        with self.lock:
            if record:
                with self.model.record_stats():
                    return self._forward(rgb)
            return self._forward(rgb)

    def stylize_tiled(self, rgb: np.ndarray, stats_from: np.ndarray, tile: int = 512, margin: int = 64) -> np.ndarray:
        """Full resolution in tiles, each normalised with the statistics of one pass over ``stats_from``.

        Each tile is computed with ``margin`` extra pixels of context on every side,
        and only its core is kept, so memory is bounded by the tile size, not the photo.
        """
        h, w = rgb.shape[:2]
        out = np.empty_like(rgb)
        with self.lock, self.model.record_stats():
            self._forward(stats_from)
        with self.lock, self.model.replay_stats():
            for y in range(0, h, tile):
                for x in range(0, w, tile):
                    y0, x0 = max(0, y - margin), max(0, x - margin)
                    y1, x1 = min(h, y + tile + margin), min(w, x + tile + margin)
                    result = self._forward(rgb[y0:y1, x0:x1])
                    out[y:y + tile, x:x + tile] = result[y - y0:y - y0 + tile, x - x0:x - x0 + tile]
        return out


def _box(image: np.ndarray, radius: int) -> np.ndarray:
    return cv2.boxFilter(image, -1, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)


def guided_upsample(low: np.ndarray, guide: np.ndarray, radius: int = 2, eps: float = 2e-3,
                    strip_rows: int = 512) -> np.ndarray:
    """Upsample stylised ``low`` to the size of the photo ``guide``, with the photo's edges (fast guided filter).

    Linear coefficients a, b with low ~ a * gray(photo) + b are fitted at low
    resolution, smoothed, bilinearly upsampled and applied to the full-resolution
    photo, in strips so memory stays bounded for huge photos.
    """
    H, W = guide.shape[:2]
    h, w = low.shape[:2]
    if (h, w) == (H, W):
        return low.copy()
    gray_low = cv2.cvtColor(cv2.resize(guide, (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    i = gray_low.astype(np.float32)[..., None] / 255.0
    p = low.astype(np.float32) / 255.0
    mean_i, mean_p = _box(i[..., 0], radius)[..., None], _box(p, radius)
    cov_ip = _box(i * p, radius) - mean_i * mean_p
    var_i = _box(i[..., 0] * i[..., 0], radius)[..., None] - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    ab = np.concatenate([_box(a, radius), _box(b, radius)], axis=2)  # (h, w, 6)
    out = np.empty((H, W, 3), np.uint8)
    xs = ((np.arange(W, dtype=np.float32) + 0.5) * (w / W) - 0.5)[None, :]
    for y0 in range(0, H, strip_rows):
        y1 = min(H, y0 + strip_rows)
        ys = ((np.arange(y0, y1, dtype=np.float32) + 0.5) * (h / H) - 0.5)[:, None]
        map_x = np.broadcast_to(xs, (y1 - y0, W)).astype(np.float32)
        map_y = np.broadcast_to(ys, (y1 - y0, W)).astype(np.float32)
        coeffs = np.dstack([cv2.remap(np.ascontiguousarray(ab[..., c:c + 3]), map_x, map_y, cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_REPLICATE) for c in (0, 3)])
        gray = cv2.cvtColor(guide[y0:y1], cv2.COLOR_RGB2GRAY).astype(np.float32)[..., None] / 255.0
        q = coeffs[..., :3] * gray + coeffs[..., 3:]
        out[y0:y1] = np.clip(q * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out
