"""Fuzz the API with hostile image files: every case must give a correct image or a clean StylizeError.

Each case is a real encoded image (JPEG, PNG, WebP, TIFF, BMP, GIF; RGB, RGBA, gray,
gray+alpha, palette with transparency, CMYK, 16-bit, 1-bit; 1xN to 400 px; multi-frame;
garbage or real EXIF and ICC) that is then, most of the time, damaged: truncated,
bit-flipped, overwritten, header-corrupted, given lying dimensions (with valid
checksums, so the lie reaches the decoder), spliced, padded, or replaced by noise.
Case ``i`` of seed ``s`` is always the same bytes, so a failure is reproducible.

Outcomes: ``ok`` (an image of the input's size came back), ``refused:<Error>`` (a
StylizeError), ``bug:<Exception>`` (anything else escaped), ``hang`` (slower than
``--hang-seconds`` on an image of at most ``SMALL_MP`` megapixels: a few-kB file that
decodes to a legitimate 60 MP image is processed, not hung), ``crash`` (the worker
process died: a segfault, or a hard hang past ``--kill-seconds``). The soak runs cases in worker processes so a crash is
counted and the run goes on.

    python -m benchmarks.fuzz --cases 10000 --style starry_night
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp", "GIF": ".gif"}
MODES = {
    "JPEG": ["RGB", "L", "CMYK"],
    "PNG": ["RGB", "RGBA", "L", "LA", "P", "PT", "I;16", "1"],
    "WEBP": ["RGB", "RGBA"],
    "TIFF": ["RGB", "RGBA", "L", "CMYK", "I;16", "1", "P"],
    "BMP": ["RGB", "L", "P", "1"],
    "GIF": ["P", "PT", "L"],
}
MUTATIONS = ["none", "none", "truncate", "bitflip", "overwrite", "header", "lie_size", "lie_size", "splice",
             "append", "noise", "empty"]
LIES = [0, 1, 7, 65535, 30_000, 100_000, 2**31 - 1]
SMALL_MP = 4.0


@dataclass
class Result:
    index: int
    kind: str
    outcome: str
    seconds: float
    megapixels: float = 0.0


def _pixels(rng: np.random.Generator, portrait: np.ndarray) -> np.ndarray:
    shape = rng.choice(["1x1", "1xN", "Nx1", "tiny", "small"], p=[0.05, 0.1, 0.1, 0.25, 0.5])
    n = int(rng.integers(2, 400))
    w, h = {"1x1": (1, 1), "1xN": (1, n), "Nx1": (n, 1), "tiny": tuple(rng.integers(2, 33, 2)),
            "small": tuple(rng.integers(33, 321, 2))}[shape]
    if rng.random() < 0.5:  # a real face, so the face path runs too
        return np.asarray(Image.fromarray(portrait).resize((int(w), int(h))))
    return rng.integers(0, 256, (int(h), int(w), 3), dtype=np.uint8)


def _as_mode(image: Image.Image, mode: str) -> Image.Image:
    if mode == "PT":
        out = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
        out.info["transparency"] = 0
        return out
    if mode == "I;16":
        wide = np.asarray(image.convert("L"), dtype="<u2") * 257
        return Image.frombytes("I;16", image.size, wide.tobytes())
    if mode == "LA":
        return image.convert("L").convert("LA")
    return image.convert(mode)


def encode(rng: np.random.Generator, portrait: np.ndarray) -> tuple[str, bytes]:
    """A valid image file of a random format, mode, size, frame count and metadata."""
    fmt = str(rng.choice(list(MODES)))
    mode = str(rng.choice(MODES[fmt]))
    image = _as_mode(Image.fromarray(_pixels(rng, portrait)), mode)
    options: dict[str, object] = {}
    if fmt in ("JPEG", "PNG", "WEBP", "TIFF") and rng.random() < 0.3:
        if rng.random() < 0.5:
            exif = Image.Exif()
            exif[0x0112] = int(rng.choice([0, 1, 3, 6, 8, 9, 65535]))  # orientation, valid and not
            options["exif"] = exif.tobytes()
        else:
            options["exif"] = b"Exif\x00\x00" + rng.bytes(int(rng.integers(0, 300)))
    if fmt in ("JPEG", "PNG", "WEBP", "TIFF") and rng.random() < 0.2:
        srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        options["icc_profile"] = srgb if rng.random() < 0.5 else rng.bytes(int(rng.integers(1, 600)))
    if fmt in ("GIF", "TIFF", "WEBP") and rng.random() < 0.25:
        frames = [image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for _ in range(int(rng.integers(1, 4)))]
        options.update(save_all=True, append_images=frames)
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt, **options)
    except Exception:  # noqa: BLE001 - a combination the encoder refuses (garbage EXIF, say): plain PNG instead
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
        fmt = "PNG"
    return fmt, buffer.getvalue()


def _lie_about_size(fmt: str, data: bytearray, rng: np.random.Generator) -> None:
    """Rewrite the declared width/height, fixing checksums so the lie reaches the decoder."""
    w, h = (int(rng.choice(LIES)) if rng.random() < 0.7 else int(rng.integers(1, 5000)) for _ in range(2))
    if fmt == "PNG" and len(data) >= 33:
        data[16:24] = struct.pack(">II", w, h)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    elif fmt == "BMP" and len(data) >= 26:
        data[18:26] = struct.pack("<ii", min(w, 2**31 - 1), min(h, 2**31 - 1))
    elif fmt == "GIF" and len(data) >= 10:
        data[6:10] = struct.pack("<HH", w & 0xFFFF, h & 0xFFFF)
    elif fmt == "JPEG":
        sof = max(data.find(b"\xff\xc0"), data.find(b"\xff\xc2"))
        if sof > 0 and len(data) > sof + 9:
            data[sof + 5:sof + 9] = struct.pack(">HH", h & 0xFFFF, w & 0xFFFF)
    else:  # TIFF / WebP: overwrite the 32-bit words after the magic with the lie
        data[4:12] = struct.pack("<II", w & 0xFFFFFFFF, h & 0xFFFFFFFF)


def mutate(fmt: str, data: bytes, kind: str, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    n = len(out)
    if kind == "truncate":
        return bytes(out[: int(rng.integers(0, n))])
    if kind == "bitflip":
        for pos in rng.integers(0, n * 8, int(rng.integers(1, 65))):
            out[pos // 8] ^= 1 << (pos % 8)
    elif kind == "overwrite":
        start = int(rng.integers(0, n))
        out[start:start + int(rng.integers(1, 65))] = rng.bytes(int(rng.integers(1, 65)))
    elif kind == "header":
        out[: min(64, n)] = rng.bytes(min(64, n))
    elif kind == "lie_size":
        _lie_about_size(fmt, out, rng)
    elif kind == "splice":  # a slice repeated elsewhere: duplicated chunks and markers
        a, b = sorted(int(x) for x in rng.integers(0, n, 2))
        at = int(rng.integers(0, n))
        out[at:at] = out[a:b]
    elif kind == "append":
        out += rng.bytes(int(rng.integers(1, 4096)))
    elif kind == "noise":
        return data[:8] + rng.bytes(int(rng.integers(0, 4096)))  # a plausible magic number, then garbage
    elif kind == "empty":
        return b""
    return bytes(out)


def make_case(seed: int, index: int, portrait: np.ndarray) -> tuple[str, str, bytes]:
    """(kind, file suffix, bytes) of case ``index``; the same every time."""
    rng = np.random.default_rng([seed, index])
    fmt, data = encode(rng, portrait)
    kind = str(rng.choice(MUTATIONS))
    suffix = SUFFIX[fmt] if rng.random() > 0.1 else str(rng.choice(list(SUFFIX.values())))  # a lying extension
    return f"{fmt}/{kind}", suffix, mutate(fmt, data, kind, rng)


def check_case(stylizer, path: Path, out_dir: Path, to_file: bool) -> tuple[str, float]:  # noqa: ANN001
    """Run one file through the API and judge the result: (outcome, megapixels of the decoded image)."""
    from stylize import StylizeError
    from stylize.image_io import load_photo

    try:
        if to_file:
            out = stylizer.to_file(path, out_dir / f"out{path.suffix if path.suffix != '.gif' else '.png'}",
                                   size=128)
            with Image.open(out) as saved:
                saved.load()
                size = saved.size
        else:
            size = stylizer(path, size=128).size
    except StylizeError as exc:
        return f"refused:{type(exc).__name__}", 0.0
    except Exception as exc:  # noqa: BLE001 - the point is to catch anything outside the family
        return f"bug:{type(exc).__name__}: {exc}"[:300], 0.0
    expected = load_photo(path).size
    megapixels = expected[0] * expected[1] / 1e6
    return ("ok" if size == expected else f"bug:wrong size {size}, expected {expected}"), megapixels


def run_cases(stylizer, seed: int, indices: range, workdir: Path, hang_seconds: float = 10.0,  # noqa: ANN001
              keep: Path | None = None, report=None) -> list[Result]:  # noqa: ANN001
    from skimage import data

    portrait = data.astronaut()
    results = []
    for index in indices:
        kind, suffix, payload = make_case(seed, index, portrait)
        path = workdir / f"case{suffix}"
        path.write_bytes(payload)
        began = time.perf_counter()
        outcome, megapixels = check_case(stylizer, path, workdir, to_file=index % 5 == 0)
        seconds = time.perf_counter() - began
        if seconds > hang_seconds and megapixels <= SMALL_MP and not outcome.startswith("bug"):
            outcome = "hang"
        if keep is not None and outcome.startswith(("bug", "hang")):
            keep.mkdir(parents=True, exist_ok=True)
            (keep / f"case_{seed}_{index}{suffix}").write_bytes(payload)
        result = Result(index, kind, outcome, seconds, megapixels)
        results.append(result)
        if report:
            report(result)
    return results


def _worker(args: argparse.Namespace) -> None:
    import faulthandler
    import tempfile

    from stylize import Stylizer

    stylizer = Stylizer(args.style, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        def report(result: Result) -> None:
            print(json.dumps(result.__dict__), flush=True)
            faulthandler.dump_traceback_later(args.kill_seconds, exit=True)  # a real hang kills the worker

        faulthandler.dump_traceback_later(args.kill_seconds + 60, exit=True)
        run_cases(stylizer, args.seed, range(args.start, args.stop), Path(tmp), args.hang_seconds,
                  Path(args.keep) if args.keep else None, report)


def _soak(args: argparse.Namespace) -> int:
    import torch

    results: list[Result] = []
    start, began = 0, time.perf_counter()
    while start < args.cases:
        cmd = [sys.executable, __file__, "--worker", "--start", str(start), "--stop", str(args.cases),
               "--seed", str(args.seed), "--style", args.style, "--hang-seconds", str(args.hang_seconds),
               "--kill-seconds", str(args.kill_seconds)] + (["--keep", args.keep] if args.keep else [])
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as worker:
            for line in worker.stdout:  # type: ignore[union-attr]
                results.append(Result(**json.loads(line)))
                start = results[-1].index + 1
                if start % 500 == 0:
                    print(f"{start}/{args.cases} cases, {time.perf_counter() - began:.0f}s", file=sys.stderr)
        if worker.returncode != 0 and start < args.cases:  # the worker died on case `start`
            results.append(Result(start, "?", f"crash:exit {worker.returncode}", float("nan")))
            start += 1
    outcomes = collections.Counter(r.outcome.split(":")[0] for r in results)
    refusals = collections.Counter(r.outcome.split(":", 1)[1] for r in results if r.outcome.startswith("refused"))
    failures = [r for r in results if not r.outcome.startswith(("ok", "refused"))]
    print(f"fuzz soak: seed {args.seed}, style {args.style}, torch {torch.__version__}, "
          f"{time.perf_counter() - began:.0f} s")
    print(f"| cases | ok (image returned) | clean refusals | bugs | hangs (>{args.hang_seconds:g} s) | crashes | "
          f"slowest case <= {SMALL_MP:g} MP |")
    print("|---|---|---|---|---|---|---|")
    small = [r.seconds for r in results if r.seconds == r.seconds and r.megapixels <= SMALL_MP]
    slowest = max(small, default=0.0)
    big = [r for r in results if r.megapixels > SMALL_MP]
    print(f"| {len(results)} | {outcomes['ok']} | {outcomes['refused']} | {outcomes['bug']} | {outcomes['hang']} | "
          f"{outcomes['crash']} | {slowest:.2f} s |")
    print("refusals by error:", dict(refusals.most_common()))
    if big:
        print(f"{len(big)} small files decoded to > {SMALL_MP:g} MP (lying JPEG sizes) and were processed; slowest "
              f"{max(r.seconds for r in big):.1f} s for {max(r.megapixels for r in big):.0f} MP")
    print("cases by kind:", dict(collections.Counter(r.kind.split("/")[1] for r in results if "/" in r.kind)))
    for r in failures[:50]:
        print(f"FAILED case {r.index} ({r.kind}): {r.outcome}")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--hang-seconds", type=float, default=10.0)
    parser.add_argument("--kill-seconds", type=float, default=120.0)
    parser.add_argument("--keep", help="save the bytes of failing cases here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--stop", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return 0
    return _soak(args)


if __name__ == "__main__":
    sys.exit(main())
