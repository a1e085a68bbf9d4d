"""Ray's cost: one folder of 12-megapixel portraits through plain ``stylize batch`` and through ``--ray`` with 1 and
2 actors, each a fresh process as a user runs it.

    .venv/bin/python -m benchmarks.ray_batch --photos 24 --megapixels 12

Each row gives the command's wall time (starting Ray, its actors, MediaPipe and the style included) and the
steady rate between the first and the last finished photo, read from the output files' modification times;
the overhead compares that rate with plain batch's (the issue's limit: 15 %).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.batch_speed import write_portraits
from benchmarks.machine import machine_line


def run(in_dir: Path, out_dir: Path, style: str, *extra: str) -> dict[str, float]:
    """Wall time, and photos per second between the first and the last output written."""
    began = time.time()
    result = subprocess.run([sys.executable, "-m", "stylize.cli", "batch", str(in_dir), str(out_dir), "-s", style,
                             *extra], capture_output=True, text=True)
    wall = time.time() - began
    if result.returncode != 0:
        raise SystemExit(f"batch failed: {result.stderr}")
    finished = sorted(p.stat().st_mtime for p in out_dir.iterdir())
    steady = (len(finished) - 1) / (finished[-1] - finished[0])
    return {"wall": wall, "first": finished[0] - began, "steady": steady}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--photos", type=int, default=24)
    parser.add_argument("--megapixels", type=float, default=12)
    args = parser.parse_args()

    print(machine_line("onnxruntime"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        write_portraits(folder, args.photos, args.megapixels)
        for label, extra in (("plain batch", ()), ("--ray, 1 actor x 2 threads", ("--ray", "--actors", "1")),
                             ("--ray, 2 actors x 1 thread", ("--ray", "--actors", "2"))):
            measured = run(folder, Path(tmp) / label.replace(" ", "_"), args.style, *extra)
            rows.append((label, measured))
            print(f"{label}: {measured}", flush=True)
    plain = rows[0][1]["steady"]
    print(f"\n{args.photos} photos of {args.megapixels:g} MP, style {args.style}\n")
    print("| run | wall, s | first photo after, s | steady photos/s | overhead against plain batch |")
    print("|---|---|---|---|---|")
    for label, measured in rows:
        overhead = f"{(plain / measured['steady'] - 1) * 100:+.0f} %" if measured is not rows[0][1] else "-"
        print(f"| {label} | {measured['wall']:.1f} | {measured['first']:.1f} | {measured['steady']:.2f} | {overhead} |")


if __name__ == "__main__":
    main()
