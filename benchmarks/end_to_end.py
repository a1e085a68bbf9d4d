"""End-to-end timing, peak memory and seam metric on a real portrait scaled to N megapixels, with a baseline.

    .venv/bin/python -m benchmarks.end_to_end --style starry_night --megapixels 1 12 24 --plot benchmarks/end_to_end.png

Prints the CPU, engine, threads and versions, then per size: the warm median of
--repeats runs (file to file, the style already loaded) at default settings, the
same with faces off, and the process's peak RSS so far. The seam metric is
``seam_score`` along each pasted face's mask (about 1 = no seam).

Then, up to --full-res-max-mp, full-resolution output both ways, in the same run:
ours (``hd=tiled``, faces on) and the baseline, the plain approach of the public
reference implementation (pytorch/examples' fast_neural_style): the 32/64/128-channel
network in fp32, eager, contiguous memory, the whole image at full resolution in one
pass, no face pass, file to file. Baseline runs come last, so their memory does not
count in our peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from benchmarks.machine import machine_line
from stylize.options import EngineName


def portrait(megapixels: float) -> np.ndarray:
    from skimage import data

    base = data.astronaut()
    side = int(round(np.sqrt(megapixels * 1e6 / (4 / 3))))
    return cv2.resize(base, (int(side * 4 / 3), side), interpolation=cv2.INTER_CUBIC)


def seam_score(image: np.ndarray, mask: np.ndarray, band: int = 6) -> float:
    """How much stronger the image's edges are along the mask border than in a band around it.

    Mean gradient magnitude on the 0.5-contour of ``mask`` divided by the mean in
    the band of width ``band`` on both sides (contour excluded). About 1: no
    visible seam; a pasted box with a colour jump scores well above.
    """
    gray = cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.0)
    grad = cv2.magnitude(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    kernel = np.ones((3, 3), np.uint8)
    binary = (mask > 0.5).astype(np.uint8)
    contour = binary - cv2.erode(binary, kernel)
    around = cv2.dilate(binary, kernel, iterations=band) - cv2.erode(binary, kernel, iterations=band)
    around &= 1 - cv2.dilate(contour, kernel, iterations=2)
    if not contour.any() or not around.any():
        raise ValueError("mask has no border inside the image")
    return float(grad[contour.astype(bool)].mean() / max(grad[around.astype(bool)].mean(), 1e-3))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, repeats: int) -> list[float]:  # noqa: ANN001
    runs = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - began)
    return runs


def baseline_to_file(model, src: Path, out: Path) -> None:  # noqa: ANN001
    """The reference approach: whole image, full resolution, fp32, eager, no faces."""
    import torch

    with torch.no_grad():
        x = torch.from_numpy(np.array(Image.open(src).convert("RGB"))).permute(2, 0, 1)[None].float() / 255
        y = model(x)
    Image.fromarray(y[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()).save(out, quality=92)


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    series = [("faces_on", "stylize, default (resize), faces on"), ("faces_off", "stylize, default, faces off"),
              ("tiled", "stylize, full resolution (tiled), faces on"), ("baseline", "baseline: reference, full res")]
    for key, label in series:
        points = [(r["megapixels"], statistics.median(r[key])) for r in results if r.get(key)]
        if points:
            ax.plot(*zip(*points), marker="o", label=label)
    ax.set_xlabel("megapixels")
    ax.set_ylabel("seconds, file to file (warm, median)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("\n".join(textwrap.wrap(results[0]["machine"].lstrip("# "), 100)), fontsize=6)
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--megapixels", type=float, nargs="+", default=[1, 12, 24])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full-res-max-mp", type=float, default=12, help="largest size for tiled + baseline runs")
    parser.add_argument("--full-res-repeats", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--engine", default="auto", choices=[engine.value for engine in EngineName])
    parser.add_argument("--plot", type=Path, help="write seconds against megapixels here (PNG)")
    parser.add_argument("--json", type=Path, help="write the raw timings here")
    args = parser.parse_args()

    import stylize
    from stylize.blending import crop_mask
    from stylize.engines import installed
    from stylize.image_io import load_photo
    from stylize.pipeline import shared_face_finder

    painter = stylize.Stylizer(args.style, device=args.device, engine=args.engine)
    machine = machine_line(painter.engine)
    print(machine)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        sources = {}
        for mp in args.megapixels:
            src = sources[mp] = Path(tmp) / f"in_{mp}.jpg"
            Image.fromarray(portrait(mp)).save(src, quality=92)
            out = Path(tmp) / "out.jpg"
            row = {"megapixels": mp, "machine": machine}
            for faces in (True, False):
                row["faces_on" if faces else "faces_off"] = timed(lambda: painter.to_file(src, out, faces=faces),
                                                                  args.repeats)
            row["peak_rss_mb"] = peak_rss_mb()
            photo = load_photo(src)
            found = shared_face_finder().find(photo.rgb)
            result = np.asarray(painter(photo.rgb))
            seams = []
            for face in found:
                mask = cv2.warpAffine(crop_mask(face), face.transform(), photo.size,
                                      flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
                seams.append(seam_score(result, mask))
            row.update(size=f"{photo.size[0]}x{photo.size[1]}", faces_found=len(found), seams=seams)
            results.append(row)
            print(f"{mp:5.1f} MP {row['size']}: faces on median {statistics.median(row['faces_on']):.2f}s "
                  f"(runs {', '.join(f'{t:.2f}' for t in row['faces_on'])}), faces off median "
                  f"{statistics.median(row['faces_off']):.2f}s, faces found {len(found)}, "
                  f"seam score {', '.join(f'{s:.2f}' for s in seams) or '-'}, peak RSS so far {peak_rss_mb():.0f} MB",
                  flush=True)
        full_res = [r for r in results if r["megapixels"] <= args.full_res_max_mp]
        for row in full_res:
            src = sources[row["megapixels"]]
            row["tiled"] = timed(lambda: painter.to_file(src, Path(tmp) / "tiled.jpg", hd="tiled"),
                                 args.full_res_repeats)
        if not installed("torch"):
            full_res = []  # the baseline is a torch program
        else:
            from stylize.network import StyleNet
            from stylize.weights import Architecture

            reference = StyleNet(Architecture((32, 64, 128))).eval()  # random weights: trained ones' FLOPs
        for row in full_res:
            src = sources[row["megapixels"]]
            row["baseline"] = timed(lambda: baseline_to_file(reference, src, Path(tmp) / "base.jpg"),
                                    args.full_res_repeats)
            ours, base = statistics.median(row["tiled"]), statistics.median(row["baseline"])
            default = statistics.median(row["faces_on"])
            print(f"{row['megapixels']:5.1f} MP full resolution: ours (tiled) {ours:.2f}s, baseline {base:.2f}s "
                  f"-> {base / ours:.1f}x faster; default settings {default:.2f}s -> {base / default:.1f}x faster; "
                  f"peak RSS incl. baseline {peak_rss_mb():.0f} MB", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
