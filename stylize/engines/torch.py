"""The torch engine (``stylize[torch]``): CUDA in fp16 and channels_last, or the CPU (bf16 where it is native)."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import DeviceError
from ..network import NormPass, StyleNet
from ..weights import Weights
from .base import Engine


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
        raise DeviceError(f"device {name!r} requested but CUDA is not available here; use device cpu")
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


class TorchEngine(Engine):
    name = "torch"

    def __init__(self, weights: Weights, device: str = "auto", dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.torch_device = resolve_device(device)
        self.device = str(self.torch_device)
        self.dtype = dtype or default_dtype(self.torch_device)
        model = StyleNet.from_weights(weights)
        self.model = model.to(self.torch_device, dtype=self.dtype).to(memory_format=torch.channels_last)

    @property
    def precision(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    @torch.inference_mode()
    def _paint(self, rgb: np.ndarray, stats: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        x = to_tensor(rgb).to(self.torch_device, dtype=self.dtype).contiguous(memory_format=torch.channels_last)
        given = None if stats is None else torch.from_numpy(stats).to(self.torch_device)
        norm_pass = NormPass(stats=given, measured=[])
        painted = self.model.paint(x, norm_pass)
        return to_uint8(painted), norm_pass.measured_stats().float().cpu().numpy()

    def _is_out_of_memory(self, exc: Exception) -> bool:
        if isinstance(exc, RuntimeError) and "memory" in str(exc).lower():
            if self.torch_device.type == "cuda":
                torch.cuda.empty_cache()
            return True
        return False
