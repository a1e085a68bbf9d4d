"""One line that says what a benchmark ran on: CPU model, cores, engine, threads and library versions."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "unknown CPU"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                platform.processor() or "unknown CPU")


def machine_line(engine: str | None = None) -> str:
    """``engine``: what runs the network, as ``Engine.describe()`` says it."""
    versions = []
    for package in ("onnxruntime", "torch", "mediapipe", "opencv-contrib-python"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} absent")
    threads = ""
    if engine and engine.startswith("torch"):
        import torch

        threads = f", torch threads {torch.get_num_threads()}"
    return (f"# {cpu_model()}, {os.cpu_count()} cores{threads}; engine: {engine or 'n/a'}; "
            + ", ".join(versions))
