"""Seconds per image for the style network on each engine, at several sizes and widths, with achieved GFLOP/s.

    .venv/bin/python -m benchmarks.network_speed --sizes 512 768 1024 --repeats 5

Each engine runs the same random-weights network through the interface the pipeline uses
(``Engine.stylize``: uint8 in, uint8 out): torch in its default dtype for the device (bf16 on
CPUs with native bf16, else fp32), torch in fp32, and onnxruntime on the graph ``stylize export``
makes. FLOPs are counted from the architecture (2 x multiply-accumulates of every convolution).
Medians of --repeats runs after one warm-up. Needs stylize[torch] (to make the networks and graphs).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine import machine_line
from stylize.engines.onnx import OnnxEngine
from stylize.engines.torch import TorchEngine, default_dtype, resolve_device
from stylize.export import export
from stylize.network import StyleNet
from stylize.weights import save_weights
from stylize.weights import Architecture, read_network


def timed(fn, repeats: int) -> float:  # noqa: ANN001
    """Median seconds of ``repeats`` calls after one warm-up (the engines return host arrays: work is done)."""
    times = []
    for i in range(repeats + 1):
        began = time.perf_counter()
        fn()
        if i:
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 768, 1024])
    parser.add_argument("--widths", nargs="+", default=["16,32,64", "32,64,128"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    dtype_name = str(default_dtype(device)).removeprefix("torch.")
    print(machine_line(f"torch on {device} ({dtype_name}) and onnxruntime on cpu"))
    rng = np.random.default_rng(0)
    print("| widths | size | GFLOP | engine | median s | GFLOP/s |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for widths in args.widths:
            arch = Architecture(tuple(int(w) for w in widths.split(",")))  # type: ignore[arg-type]
            path = Path(tmp) / f"net_{widths.replace(',', '_')}.safetensors"
            save_weights(StyleNet(arch), path)
            weights = read_network(path)
            engines = {f"torch {dtype_name}": TorchEngine(weights, str(device)),
                       "torch float32": TorchEngine(weights, str(device), torch.float32)}
            if device.type == "cpu":
                engines["onnxruntime float32"] = OnnxEngine(weights, export(weights)[0])
            for size in args.sizes:
                image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                gflop = StyleNet(arch).flops(size, size) / 1e9
                for name, engine in engines.items():
                    median = timed(lambda: engine.stylize(image), args.repeats)
                    print(f"| {widths} | {size}² | {gflop:.1f} | {name} | {median:.3f} | {gflop / median:.0f} |",
                          flush=True)


if __name__ == "__main__":
    main()
