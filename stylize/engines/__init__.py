"""Running a style network: one interface (``base.Engine``), two implementations, chosen by the device and
what is installed.

``onnx.OnnxEngine`` (onnxruntime, the light install's CPU engine) runs the graph exported beside the weights;
``torch.TorchEngine`` (``stylize[torch]``) runs the network itself, on CUDA or the CPU. Both take the same
checked weights (``stylize.weights``) and give the same pixels within one 8-bit level.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BadWeightsError, DeviceError, MissingExtraError
from ..options import EngineName
from .base import Engine, installed

if TYPE_CHECKING:
    from ..weights import Weights

__all__ = ["Engine", "cuda_available", "installed", "open_engine"]


def cuda_available() -> bool:
    """CUDA through torch (only ``stylize[torch]`` has a CUDA path). Without torch, or on Linux without NVIDIA's
    driver loaded, False without importing torch (a second and 500 MB a CLI run would pay for nothing)."""
    if not installed("torch") or (sys.platform == "linux" and not Path("/proc/driver/nvidia").exists()):
        return False
    import torch

    return torch.cuda.is_available()


def open_engine(weights: "Weights", device: str = "auto", engine: EngineName | str = EngineName.AUTO,
                graph_sha256: str | None = None, threads: int = 0) -> Engine:
    """The engine for ``weights`` on ``device``: torch for CUDA; on the CPU onnxruntime where the weights' graph
    is exported beside them (``stylize export``), else torch where installed. ``graph_sha256``, recorded for
    the style, must match the graph file when given. ``threads``: onnxruntime's CPU threads (0: one per core;
    torch's are the process's, ``OMP_NUM_THREADS``)."""
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
    from .onnx import OnnxEngine, graph_path, stale_graph_reason

    reason = stale_graph_reason(weights, graph_sha256, threads)
    if reason is None:
        return OnnxEngine(weights, graph_path(weights.source), threads)
    if engine is EngineName.AUTO and installed("torch"):
        return _torch_engine(weights, "cpu")  # e.g. freshly trained weights, not exported yet
    error = BadWeightsError if graph_path(weights.source).is_file() else MissingExtraError
    raise error(f"{reason}; run `stylize export` (it needs torch: pip install 'stylize[torch]')")


def _torch_engine(weights: "Weights", device: str) -> Engine:
    if not installed("torch"):
        raise MissingExtraError(f"device {device} and the torch engine need torch: pip install 'stylize[torch]'")
    from .torch import TorchEngine

    return TorchEngine(weights, device)
