"""``stylize video`` and ``Stylizer.video``/``frames``: clips made here with PyAV (a pan over a real portrait, with a
tone as its sound), checked frame by frame, packet by packet, and under SIGINT."""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from stylize.atomic import PARTIAL_SUFFIX
from stylize.cli import app
from stylize.errors import StylizeError
from stylize.options import Options, VideoOptions
from stylize.provenance import made_by_stylize

pytestmark = pytest.mark.skipif(importlib.util.find_spec("av") is None,
                                reason="PyAV is not installed (pip install 'stylize[video]')")
STYLE = "udnie"


def make_clip(path: Path, portrait: np.ndarray, frames: int = 12, size: tuple[int, int] = (160, 120),
              audio: bool = True, rotation: int = 0, fps: int = 10) -> Path:
    """A pan across ``portrait`` at ``fps``, with a 440 Hz tone as long as the pictures where ``audio``."""
    import av

    width, height = size
    with av.open(str(path), "w") as out:
        codec = "libvpx-vp9" if path.suffix == ".webm" else "libx264"
        video = out.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if rotation:
            video.set_display_rotation(rotation)
        sound = out.add_stream("libopus" if path.suffix == ".webm" else "aac", rate=48000) if audio else None
        scaled = np.asarray(Image.fromarray(portrait).resize((width * 2, height * 2)))
        for i in range(frames):
            picture = np.ascontiguousarray(scaled[height // 2: height // 2 + height, i * 3: i * 3 + width])
            for packet in video.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if sound is not None:
            samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(48000 * frames // fps) / 48000)).astype(np.float32)
            for start in range(0, samples.size, 960):
                chunk = av.AudioFrame.from_ndarray(samples[None, start:start + 960], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 48000, start
                for packet in sound.encode(chunk):
                    out.mux(packet)
            for packet in sound.encode(None):
                out.mux(packet)
    return path


def read(path: Path) -> tuple[list[np.ndarray], list[bytes], object, dict]:
    """(frames as shown, audio packets' bytes, the video stream's rate, the container's metadata)."""
    import av

    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
        metadata = dict(container.metadata)
        audio = [bytes(p) for p in container.demux(audio=0) if p.size] if container.streams.audio else []
    with av.open(str(path)) as container:
        frames = [np.rot90(f.to_ndarray(format="rgb24"), round(f.rotation / 90) % 4) for f in container.decode(video=0)]
    return frames, audio, rate, metadata


def video_cli(*args: object) -> object:
    return CliRunner().invoke(app, ["video", *[str(a) for a in args]])


def test_same_frames_rate_size_and_audio_with_provenance(tmp_path: Path, astronaut: np.ndarray) -> None:
    clip = make_clip(tmp_path / "clip.mp4", astronaut)
    result = video_cli(clip, "-s", STYLE, "-o", tmp_path / "out.mp4", "--size", 128)
    assert result.exit_code == 0, result.output
    frames_in, audio_in, rate_in, _ = read(clip)
    frames_out, audio_out, rate_out, metadata = read(tmp_path / "out.mp4")
    assert len(frames_out) == len(frames_in) == 12 and rate_out == rate_in == 10
    assert frames_out[0].shape == frames_in[0].shape == (120, 160, 3)
    assert audio_out == audio_in  # copied packet for packet, never re-encoded
    assert made_by_stylize(metadata.get("comment"))
    for painted, photo in zip(frames_out, frames_in):  # painted, and still the same picture underneath
        assert np.abs(painted.astype(np.int16) - photo).mean() > 15
        grey = [np.asarray(x, np.float32).mean(axis=2) for x in (painted, photo)]
        assert np.corrcoef(grey[0].ravel(), grey[1].ravel())[0, 1] > 0.3


def test_a_clip_without_sound_and_a_cut(tmp_path: Path, astronaut: np.ndarray) -> None:
    clip = make_clip(tmp_path / "silent.webm", astronaut, frames=15, audio=False)
    result = video_cli(clip, "-s", STYLE, "--size", 128, "--start", 0.5, "--end", 1.0, "--no-faces")
    assert result.exit_code == 0, result.output
    frames, audio, rate, _ = read(tmp_path / "silent_udnie.webm")
    assert len(frames) == 5 and audio == [] and rate == 10


def test_rotation_is_shown_upright(tmp_path: Path, astronaut: np.ndarray) -> None:
    clip = make_clip(tmp_path / "phone.mp4", astronaut, frames=4, rotation=90, audio=False)
    assert read(clip)[0][0].shape == (160, 120, 3)  # a player shows it standing
    result = video_cli(clip, "-s", STYLE, "-o", tmp_path / "out.mp4", "--size", 128, "--no-faces")
    assert result.exit_code == 0, result.output
    import av

    with av.open(str(tmp_path / "out.mp4")) as container:
        frame = next(container.decode(video=0))
        assert frame.rotation == 0 and (frame.height, frame.width) == (160, 120)  # upright pixels, no turn left
    upright = read(clip)[0][0].astype(np.float32).mean(axis=2)
    painted = read(tmp_path / "out.mp4")[0][0].astype(np.float32).mean(axis=2)
    assert np.corrcoef(upright.ravel(), painted.ravel())[0, 1] > 0.3


@pytest.mark.parametrize("damage", ["random bytes", "truncated", "no such file"])
def test_broken_videos_are_one_line_and_leave_nothing(tmp_path: Path, astronaut: np.ndarray, damage: str) -> None:
    clip = tmp_path / "broken.mp4"
    if damage == "random bytes":
        clip.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    elif damage == "truncated":
        whole = make_clip(tmp_path / "whole.mp4", astronaut).read_bytes()
        clip.write_bytes(whole[: len(whole) // 2])
    result = video_cli(clip, "-s", STYLE, "-o", tmp_path / "out.mp4", "--size", 128)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert str(clip) in lines[0]
    assert not (tmp_path / "out.mp4").exists() and not list(tmp_path.glob(f"*{PARTIAL_SUFFIX}"))


def test_ctrl_c_leaves_no_file(tmp_path: Path, astronaut: np.ndarray) -> None:
    clip = make_clip(tmp_path / "long.mp4", astronaut, frames=200, size=(320, 240))
    process = subprocess.Popen([sys.executable, "-m", "stylize.cli", "video", str(clip), "-s", STYLE, "-o",
                                str(tmp_path / "out.mp4"), "--size", "256"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(f"*{PARTIAL_SUFFIX}")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # frames are being written
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in stderr, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4"]


def test_steadier_removes_flicker_and_starts_afresh_at_a_cut(astronaut: np.ndarray) -> None:
    from stylize.video import Steadier

    rng = np.random.default_rng(0)
    pan = [np.ascontiguousarray(astronaut[100:356, 50 + 4 * i: 306 + 4 * i]) for i in range(8)]
    # a "painting" that boils: the frame plus fresh noise each time, as a network's strokes do
    boiling = [np.clip(f + rng.normal(0, 25, f.shape), 0, 255).astype(np.uint8) for f in pan]
    steady = Steadier()
    held = [steady(f, p) for f, p in zip(pan, boiling)]
    assert np.array_equal(held[0], boiling[0])

    def flicker(frames: list[np.ndarray]) -> float:  # frame-to-frame change along the true motion (4 px a frame)
        return float(np.mean([np.abs(b[:, :-4].astype(np.float32) - a[:, 4:]).mean()
                              for a, b in zip(frames, frames[1:])]))

    assert flicker(held) < 0.7 * flicker(boiling)
    other = np.ascontiguousarray(255 - pan[-1])  # a scene cut: nothing is carried over
    assert np.array_equal(steady(other, other), other)


def test_a_frame_between_paintings_carries_the_last_one_along_the_motion(astronaut: np.ndarray) -> None:
    from stylize.video import Steadier

    pan = [np.ascontiguousarray(astronaut[100:356, 50 + 4 * i: 306 + 4 * i]) for i in range(2)]
    painted = np.ascontiguousarray(255 - pan[0])  # any picture of frame 0
    steady = Steadier()
    assert steady(pan[0], None) is None  # nothing painted yet: nothing to carry
    assert np.array_equal(steady(pan[0], painted), painted)
    carried = steady(pan[1], None)
    # the scene moved 4 px left: the painting moved with it, not stayed put
    moved = np.abs(carried[:, :-4].astype(np.float32) - painted[:, 4:])[:, 8:-8].mean()
    stayed = np.abs(carried.astype(np.float32) - painted)[:, 8:-8].mean()
    assert moved < 4.0 < stayed
    assert np.array_equal(steady(np.ascontiguousarray(255 - pan[1]), None), None)  # a cut: nothing to carry


def test_a_frame_between_paintings_lies_between_them_along_the_motion(astronaut: np.ndarray) -> None:
    from stylize.video import Steadier

    pan = [np.ascontiguousarray(astronaut[100:356, 50 + 4 * i: 306 + 4 * i]) for i in range(3)]
    earlier, later = (np.full_like(pan[0], 60), np.full_like(pan[0], 200))  # two paintings, 2 frames apart
    steady = Steadier()
    between = steady.between(pan[1], earlier, pan[2], later, 0.5).astype(np.float32)[8:-8, 8:-8]
    assert abs(between.mean() - 130) < 4 and between.std() < 8  # half way, everywhere the motion is followed
    scene = np.ascontiguousarray(255 - pan[2])  # a painting of the later frame: carried back 4 px, not left put
    carried_back = steady.between(pan[1], earlier, pan[2], scene, 1.0).astype(np.float32)[8:-8, 8:-8]
    moved, stayed = (np.abs(carried_back - (255 - pan[1][8:-8, 8:-8])).mean(),
                     np.abs(carried_back - scene[8:-8, 8:-8]).mean())
    assert moved < 4.0 < stayed
    assert np.array_equal(steady.between(pan[1], earlier, np.ascontiguousarray(255 - pan[2]), later, 0.5), earlier)


def test_a_face_crop_is_painted_every_other_frame_and_reused_between(astronaut: np.ndarray) -> None:
    from stylize.pipeline import shared_face_finder
    from stylize.video import FaceCrops

    face = shared_face_finder().find(astronaut)[0]
    elsewhere = replace(face, box=tuple(v + 300 for v in face.box))
    calls = []
    crops = FaceCrops(lambda crop: calls.append(crop) or 255 - crop, every=2)
    crop = np.zeros((64, 64, 3), np.uint8)
    painted = []
    for _ in range(3):  # painted, reused, painted
        painted.append(crops(crop, face))
        crops.next_frame()
    assert len(calls) == 2 and all(np.array_equal(p, 255 - crop) for p in painted)
    crops(crop, elsewhere)  # a face somewhere else is painted, not given the last frame's crop
    assert len(calls) == 3
    with pytest.raises(StylizeError, match="paint_every"):
        VideoOptions(paint_every=0).validated()


def test_faces_are_followed_and_one_that_enters_fades_in(astronaut: np.ndarray) -> None:
    from stylize.pipeline import shared_face_finder
    from stylize.video import FADE_FRAMES, FaceTracker

    empty = np.full_like(astronaut, 128)
    tracker = FaceTracker(shared_face_finder(), detect_every=2)
    assert tracker(empty) == []
    opacities, centres = [], []
    for _ in range(FADE_FRAMES + 2):
        faces = tracker(astronaut)
        assert len(faces) <= 1
        if faces:
            opacities.append(faces[0].opacity)
            centres.append(faces[0].points.mean(axis=0))
    assert opacities[0] < 0.5 and opacities[-1] == 1.0 and opacities == sorted(opacities)
    assert np.ptp(np.array(centres), axis=0).max() < 3.0  # a still face does not jitter
    first = FaceTracker(shared_face_finder())(astronaut)
    assert first and first[0].opacity == 1.0  # there from the first frame: shown at once


def test_frames_api_paints_frames_people_bring(astronaut: np.ndarray) -> None:
    import stylize

    painter = stylize.Stylizer(STYLE, "cpu")
    frames = [np.ascontiguousarray(astronaut[::4, ::4])] * 3
    painted = list(painter.frames(iter(frames), Options(size=96), VideoOptions(stabilise=False)))
    assert len(painted) == 3 and all(p.shape == frames[0].shape for p in painted)
    assert np.array_equal(painted[0], painted[2])  # each frame on its own: the same frame, the same picture
    with pytest.raises(stylize.StylizeError, match="end"):
        list(painter.frames(frames, video=VideoOptions(start=2.0, end=1.0)))


def test_a_change_of_light_is_painted_not_carried(astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    import stylize

    painter = stylize.Stylizer(STYLE, "cpu")
    paint_canvas, painted = painter.pipeline.paint_canvas, []
    monkeypatch.setattr(painter.pipeline, "paint_canvas", lambda frame, *rest: painted.append(frame.mean())
                        or paint_canvas(frame, *rest))
    still = np.ascontiguousarray(astronaut[::4, ::4]).astype(np.float32)
    gains = (1.0, 1.0, 1.0, 1.0, 1.1, 1.25)  # frames 1 and 3 repeat the light: carried; frame 5 brightens: painted
    clip = [np.clip(still * gain, 0, 255).astype(np.uint8) for gain in gains]
    out = list(painter.frames(clip, Options(size=96)))
    assert len(out) == 6 and all(frame.shape == clip[0].shape for frame in out)
    assert painted == pytest.approx([clip[index].mean() for index in (0, 2, 4, 5)])


def test_progress_counts_the_frames_of_the_cut() -> None:
    from stylize.video import _frames_in

    class Stream:
        average_rate, duration, time_base, frames = Fraction(25), 250, Fraction(1, 25), 0

    assert _frames_in(Stream, VideoOptions(start=2.0, end=4.0)) == 50


def test_a_cut_past_the_end_is_one_line(tmp_path: Path, astronaut: np.ndarray) -> None:
    clip = make_clip(tmp_path / "short.mp4", astronaut, frames=5)
    result = video_cli(clip, "-s", STYLE, "-o", tmp_path / "out.mp4", "--start", 3)
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"error: {clip}: no frames from 3 s"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.mp4"]
