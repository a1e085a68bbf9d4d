"""Seconds per image for the style network at several sizes and widths, with achieved GFLOP/s.

    .venv/bin/python benchmarks/network_speed.py --sizes 256 512 1024 --repeats 5

FLOPs are counted from the architecture (2 x multiply-accumulates of every
convolution; norms and activations excluded). Medians of --repeats runs after one
warm-up. Prints the device, dtype, thread count and torch version used.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from stylize.inference import default_dtype, resolve_device
from stylize.network import Architecture, StyleNet, count_parameters


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--widths", nargs="+", default=["16,32,64", "32,64,128"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    dtype = default_dtype(device)
    print(f"device={device} dtype={dtype} threads={torch.get_num_threads()} torch={torch.__version__}")
    print("| widths | params | size | median s | GFLOP | GFLOP/s |")
    print("|---|---|---|---|---|---|")
    for widths in args.widths:
        arch = Architecture(tuple(int(w) for w in widths.split(",")))  # type: ignore[arg-type]
        model = StyleNet(arch).eval().to(device, dtype).to(memory_format=torch.channels_last)
        for size in args.sizes:
            x = torch.rand(1, 3, size, size, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
            times = []
            with torch.inference_mode():
                for i in range(args.repeats + 1):
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    began = time.perf_counter()
                    model(x)
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    if i:
                        times.append(time.perf_counter() - began)
            median = statistics.median(times)
            gflop = model.flops(size, size) / 1e9
            print(f"| {widths} | {count_parameters(model) / 1e6:.2f} M | {size}² | {median:.3f} | {gflop:.1f} | "
                  f"{gflop / median:.0f} |")


if __name__ == "__main__":
    main()
