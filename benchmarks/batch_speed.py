"""Batch throughput: photos per second over a folder of 12-megapixel portraits, default settings.

    .venv/bin/python -m benchmarks.batch_speed --photos 50 --megapixels 12

The style is loaded once (as ``stylize batch`` does); the next photo is decoded
and the previous one encoded in worker threads while the network runs. Also
prints the same photos run one after another with no overlap, so the gain of
overlapping is measured in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.end_to_end import peak_rss_mb, portrait
from benchmarks.machine import machine_line
from stylize.options import EngineName


def write_portraits(folder: Path, photos: int, megapixels: float) -> None:
    """``photos`` JPEGs of the portrait at ``megapixels``, shifted and mirrored so no two files are alike."""
    base = portrait(megapixels)
    folder.mkdir(parents=True)
    for i in range(photos):
        shifted = np.roll(base, 37 * i, axis=1)
        Image.fromarray(shifted[:, ::-1] if i % 2 else shifted).save(folder / f"{i:03d}.jpg", quality=92)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--photos", type=int, default=50)
    parser.add_argument("--megapixels", type=float, default=12)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--engine", default="auto", choices=[engine.value for engine in EngineName])
    args = parser.parse_args()

    import stylize
    from stylize.batch import run_batch
    from stylize.options import Options

    painter = stylize.Stylizer(args.style, device=args.device, engine=args.engine)
    print(machine_line(painter.engine))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        write_portraits(folder, args.photos, args.megapixels)
        jobs = [(p, Path(tmp) / "out" / p.name) for p in sorted(folder.glob("*.jpg"))]
        painter.to_file(jobs[0][0], Path(tmp) / "warm.jpg")  # models loaded and warm, as in a running batch
        began = time.perf_counter()
        report = run_batch(painter, jobs, Options())
        overlapped = time.perf_counter() - began
        assert len(report.written) == args.photos, report.failed
        sequential_n = min(10, args.photos)
        began = time.perf_counter()
        for source, _ in jobs[:sequential_n]:
            painter.to_file(source, Path(tmp) / "seq.jpg")
        sequential = (time.perf_counter() - began) / sequential_n
    print(f"{args.photos} photos of {args.megapixels:g} MP: {overlapped:.1f}s, {args.photos / overlapped:.2f} photos/s "
          f"({overlapped / args.photos:.2f} s/photo); one after another without overlap: {sequential:.2f} s/photo "
          f"({1 / sequential:.2f} photos/s); peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
