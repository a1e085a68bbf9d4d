"""Seconds per image for the style network at several sizes and widths, with achieved GFLOP/s.

    .venv/bin/python benchmarks/network_speed.py --sizes 256 512 1024 2048 --repeats 5

FLOPs are counted from the architecture (2 x multiply-accumulates of every
convolution; norms and activations excluded). Medians of --repeats runs after one
warm-up. The machine's peak is measured, not looked up: the median GFLOP/s of a
4096x4096 matrix product in the network's dtype (and in bf16 too, with a note when
this CPU only emulates it). Prints the device, dtype, thread count and torch version.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from stylize.inference import cpu_has_bf16, default_dtype, resolve_device
from stylize.network import Architecture, StyleNet, count_parameters


def clock(device: torch.device) -> float:
    """perf_counter after the device's queued work is done (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def timed(fn, device: torch.device, repeats: int) -> float:  # noqa: ANN001
    """Median seconds of ``repeats`` calls after one warm-up."""
    times = []
    with torch.inference_mode():
        for i in range(repeats + 1):
            began = clock(device)
            fn()
            if i:
                times.append(clock(device) - began)
    return statistics.median(times)


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 4096, repeats: int = 5) -> float:
    a = torch.rand(n, n, device=device, dtype=dtype)
    b = torch.rand(n, n, device=device, dtype=dtype)
    return 2 * n**3 / timed(lambda: a @ b, device, repeats) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048])
    parser.add_argument("--widths", nargs="+", default=["16,32,64", "32,64,128"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    dtype = default_dtype(device)
    print(f"device={device} dtype={dtype} threads={torch.get_num_threads()} torch={torch.__version__}")
    peak = matmul_peak(device, dtype)
    print(f"peak: 4096² matmul in {dtype}: {peak:.0f} GFLOP/s")
    if device.type == "cpu" and dtype != torch.bfloat16:
        note = "native" if cpu_has_bf16() else "emulated: this CPU has no bf16 instructions, so the network runs fp32"
        bf16 = matmul_peak(device, torch.bfloat16, n=1024, repeats=2)
        print(f"      1024² matmul in bf16: {bf16:.1f} GFLOP/s ({note})")
    print("| widths | params | size | median s | GFLOP | GFLOP/s | % of matmul peak |")
    print("|---|---|---|---|---|---|---|")
    for widths in args.widths:
        arch = Architecture(tuple(int(w) for w in widths.split(",")))  # type: ignore[arg-type]
        model = StyleNet(arch).eval().to(device, dtype).to(memory_format=torch.channels_last)
        for size in args.sizes:
            x = torch.rand(1, 3, size, size, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
            median = timed(lambda: model(x), device, args.repeats)
            gflop = model.flops(size, size) / 1e9
            print(f"| {widths} | {count_parameters(model) / 1e6:.2f} M | {size}² | {median:.3f} | {gflop:.1f} | "
                  f"{gflop / median:.0f} | {100 * gflop / median / peak:.0f} % |")


if __name__ == "__main__":
    main()
