"""Video: frames decoded with PyAV, painted through the photo pipeline, held steady from frame to frame, and encoded
beside the audio, which is copied untouched.

Steadiness has two parts. ``Steadier`` blends each painted frame with the previous painted frame, warped along
the optical flow (OpenCV's DIS) wherever the flow agrees forwards and backwards, so strokes move with the scene
instead of boiling; a scene cut starts afresh. ``FaceTracker`` searches for faces every few frames and follows
them with the face mesh in between, smoothing their key points, and fades a face in or out instead of popping.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import cv2
import numpy as np

from .atomic import atomic_path
from .errors import MissingExtraError, OutputError, UnreadableVideoError
from .image_io import Photo, same_file
from .options import Options, VideoOptions

if TYPE_CHECKING:
    from .api import Stylizer
    from .faces import Face, FaceFinder
    from .pipeline import Pipeline

#: Output containers by extension: (FFmpeg's muxer, the video codec written into it).
CONTAINERS = {".mp4": ("mp4", "libx264"), ".mov": ("mov", "libx264"), ".mkv": ("matroska", "libx264"),
              ".webm": ("webm", "libvpx-vp9")}
#: Each codec's settings: near-transparent quality at a speed that keeps up with the painting (720p on 2 cores:
#: x264 "fast" took 52 ms a frame, "veryfast" 27 ms and a smaller file; VP9's defaults 200 ms, these 31 ms).
ENCODER_OPTIONS = {"libx264": {"crf": "18", "preset": "veryfast"},
                   "libvpx-vp9": {"crf": "24", "b": "0", "deadline": "realtime", "cpu-used": "6", "row-mt": "1"}}
#: The share of the previous painted frame kept where the motion is followed (an average over about 3 frames).
KEEP = 0.8
#: Mean change (0-1) of the normalised luminance between two frames above which they are taken for a scene cut.
CUT = 0.2
#: Flow is measured with the frames' long side at most this (720p's 1280 is measured at 640).
FLOW_SIDE = 640
#: Frames over which a face fades in or out, and the weight of a face's new key points against its old ones.
FADE_FRAMES, FOLLOW = 6, 0.6
#: A face's crop is painted every this many frames, and reused in between (``FaceCrops``).
FACE_REPAINT_EVERY = 2
#: A frame whose mean brightness differs from the last painted frame's by more than this share is painted, not
#: made from the paintings either side: the strokes answer a change of light, which carrying cannot follow.
LIGHT_CHANGE = 0.01


def _av():  # noqa: ANN202
    try:
        import av
    except ImportError:
        raise MissingExtraError("video needs PyAV: pip install 'stylize[video]'") from None
    return av


class Steadier:
    """Blends each painted frame with the last one carried along the motion: flicker goes, strokes travel."""

    def __init__(self, keep: float = KEEP, cut: float = CUT) -> None:
        self.keep, self.cut = keep, cut
        self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        self._previous: tuple[np.ndarray, np.ndarray] | None = None  # (the last frame's small grey, its painting)

    def __call__(self, frame: np.ndarray, painted: np.ndarray | None) -> np.ndarray | None:
        """``painted`` held steady against the last painted frame; ``painted`` None: the last one carried along
        the motion to ``frame`` alone (None where there is nothing to carry: the first frame, or a cut)."""
        grey = _small_grey(frame)
        previous, self._previous = self._previous, None
        if previous is None or self._is_cut(grey, previous[0]):
            if painted is not None:
                self._previous = (grey, painted)
            return painted
        carried, back = self._carried(previous[1], grey, previous[0])
        if painted is None:
            self._previous = (grey, carried)
            return carried
        weight = self._agreement(back, grey, previous[0], carried.shape) * self.keep
        carried = carried.astype(np.float32)
        # the carried painting takes the new painting's mean colour where it is carried: a change of light is
        # followed at once, while the strokes stay
        shift = ((painted - carried) * weight).sum((0, 1)) / max(float(weight.sum()), 1.0)
        steady = np.clip(painted + weight * (carried + shift - painted) + 0.5, 0, 255).astype(np.uint8)
        self._previous = (grey, steady)
        return steady

    def between(self, frame: np.ndarray, carried: np.ndarray, later: np.ndarray, later_painting: np.ndarray,
                share: float) -> np.ndarray:
        """A frame between two paintings: ``carried`` (the earlier painting carried to it) moved ``share`` of the
        way to ``later_painting`` carried back along the motion, as a codec's in-between frame. Carried forward
        alone, a frame between repeats the earlier painting's strokes and the change comes in steps."""
        grey, later_grey = _small_grey(frame), _small_grey(later)
        if self._is_cut(grey, later_grey):
            return carried
        from_later, there = self._carried(later_painting, grey, later_grey)
        weight = self._agreement(there, grey, later_grey, carried.shape) * share
        return np.clip(carried + weight * (from_later.astype(np.float32) - carried) + 0.5, 0, 255).astype(np.uint8)

    def _is_cut(self, grey: np.ndarray, other: np.ndarray) -> bool:
        return grey.shape != other.shape or np.abs(grey.astype(np.float32) - other).mean() / 255 > self.cut

    def _carried(self, painting: np.ndarray, grey: np.ndarray,
                 painted_grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(``painting``, of the frame whose small grey is ``painted_grey``, carried along the motion to the frame
        whose small grey is ``grey``; the flow from each pixel of ``grey`` to its place in ``painted_grey``)."""
        flow = self._flow.calc(grey, painted_grey, None)
        height, width = painting.shape[:2]
        scaled = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR) * (width / grey.shape[1])
        return along_flow(painting, scaled), flow

    def _agreement(self, flow: np.ndarray, grey: np.ndarray, painted_grey: np.ndarray,
                   shape: tuple[int, ...]) -> np.ndarray:
        """HxWx1, 0-1 at a painting's ``shape``: where ``flow`` agrees with the flow measured the other way,
        softened so that occluded and newly seen pixels fade into the new frame."""
        agrees = flow_agrees(flow, self._flow.calc(painted_grey, grey, None)).astype(np.float32)
        return cv2.resize(cv2.GaussianBlur(agrees, (0, 0), 1.5), (shape[1], shape[0]))[..., None]


def _small_grey(frame: np.ndarray) -> np.ndarray:
    """The frame's luminance at most ``FLOW_SIDE`` px, normalised to one mean and spread: the flow assumes
    constant brightness, so a change of light would otherwise read as motion."""
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    scale = min(1.0, FLOW_SIDE / max(grey.shape))
    if scale < 1.0:
        grey = cv2.resize(grey, (round(grey.shape[1] * scale), round(grey.shape[0] * scale)),
                          interpolation=cv2.INTER_AREA)
    mean, spread = (float(v[0, 0]) for v in cv2.meanStdDev(grey))
    gain = 48.0 / max(spread, 1.0)
    return cv2.convertScaleAbs(grey, alpha=gain, beta=128.0 - gain * mean)


def along_flow(image: np.ndarray, flow: np.ndarray, border: int = cv2.BORDER_REPLICATE,
               outside: float = 0.0) -> np.ndarray:
    """``image`` read at each pixel plus ``flow`` (HxWx2, pixels): what the flow says was there."""
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(image, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR, borderMode=border,
                     borderValue=outside)


def flow_agrees(there: np.ndarray, back: np.ndarray, slack: float = 0.5, share: float = 0.05) -> np.ndarray:
    """True where following ``there`` then ``back`` returns to the same pixel, within ``slack`` px plus ``share``
    of the motion: not occluded, not newly seen."""
    error = np.linalg.norm(there + along_flow(back, there, cv2.BORDER_CONSTANT, 1e4), axis=2)
    return error <= slack + share * np.linalg.norm(there, axis=2)


class FaceTracker:
    """Faces frame after frame: found every ``detect_every`` frames, followed by the face mesh in between, their
    key points smoothed, faded in when they appear and out when they are lost."""

    def __init__(self, finder: "FaceFinder", detect_every: int = 5) -> None:
        self.finder, self.detect_every = finder, detect_every
        self._frame = 0
        self._faces: list[tuple["Face", int, int]] = []  # (face, frames seen, frames since it was lost)

    def __call__(self, frame: np.ndarray) -> list["Face"]:
        followed = [(self.finder.follow(frame, face) if lost == 0 else None, face, seen, lost)
                    for face, seen, lost in self._faces]
        if self._frame % self.detect_every == 0:
            found = self.finder.find(frame)
            claimed = set()
            for index, (now, face, seen, lost) in enumerate(followed):
                match = _best_match(face, found, claimed)
                if match is not None:
                    claimed.add(match)
                    followed[index] = (found[match] if now is None else now, face, seen, 0)
            # a face there from the first frame is shown whole at once; one that enters later fades in
            seen_before = FADE_FRAMES - 1 if self._frame == 0 else 0
            followed += [(found[i], None, seen_before, 0) for i in range(len(found)) if i not in claimed]
        self._frame += 1
        tracked = []
        for now, before, seen, lost in followed:
            if now is None and before is not None:  # lost: fades out where it was last seen
                if lost + 1 < FADE_FRAMES:
                    tracked.append((before, seen, lost + 1))
                continue
            tracked.append((_smoothed(now, before) if before is not None else now, seen + 1, 0))
        self._faces = tracked
        return [replace(face, opacity=min(1.0, seen / FADE_FRAMES) * (1.0 - lost / FADE_FRAMES))
                for face, seen, lost in tracked]


def _best_match(face: "Face", found: list["Face"], claimed: set[int], least: float = 0.3) -> int | None:
    """The unclaimed face overlapping ``face`` most, where that overlap (IoU) is at least ``least``."""
    from .faces import _iou

    scores = [(_iou(face.box, other.box), i) for i, other in enumerate(found) if i not in claimed]
    best = max(scores, default=(0.0, None))
    return best[1] if best[0] >= least else None


def _smoothed(now: "Face", before: "Face") -> "Face":
    """Key points and landmarks moved only part of the way (``FOLLOW``): the face pass stops jittering."""
    if now.landmarks is None or before.landmarks is None or now.points.shape != before.points.shape:
        return now
    return replace(now, points=(FOLLOW * now.points + (1 - FOLLOW) * before.points).astype(np.float32),
                   landmarks=(FOLLOW * now.landmarks + (1 - FOLLOW) * before.landmarks).astype(np.float32))


def paint_frames(pipeline: "Pipeline", frames: Iterable[np.ndarray], options: Options = Options(),
                 video: VideoOptions = VideoOptions()) -> Iterator[np.ndarray]:
    """Each frame (HxWx3 uint8 RGB) painted, in order; stabilised and with faces tracked unless ``video`` says
    not. The same pipeline as photos, with the face check off (a video has no per-frame warning). Held steady at
    the working size, before the painting is brought to the frame's size: a sixth of 720p's pixels to carry."""
    options = pipeline.resolved(replace(options.validated(), check=False))
    video = video.validated()
    if not video.stabilise:
        for frame in frames:
            yield pipeline.run(Photo(np.ascontiguousarray(frame)), options).rgb
        return
    from .pipeline import shared_face_finder, working_copy

    steady = Steadier()
    tracker = FaceTracker(shared_face_finder(), video.detect_every) if options.faces else None
    crops = FaceCrops(pipeline.face_engine.stylize)
    # frames between paintings, each (frame, its working copy, the last painting carried to it)
    waiting: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    painted_light = None  # the mean brightness of the last painted frame
    for index, frame in enumerate(frames):
        frame = np.ascontiguousarray(frame)
        faces = tracker(frame) if tracker else []  # followed on every frame, painted or carried
        light = float(np.mean(cv2.mean(frame)[:3]))
        if index % video.paint_every and not _light_changed(light, painted_light):
            working = working_copy(frame, options)
            carried = steady(working, None)
            if carried is not None:
                waiting.append((frame, working, carried))
                continue
        canvas, source = pipeline.paint_canvas(frame, options, faces, crops)
        crops.next_frame()
        painted_light = light
        painting = steady(source, canvas)
        for order, (earlier, working, carried) in enumerate(waiting, 1):
            share = order / (len(waiting) + 1)
            yield pipeline.finish(steady.between(working, carried, source, painting, share), earlier, options)
        waiting = []
        yield pipeline.finish(painting, frame, options)
    for earlier, _, carried in waiting:  # the clip ended before the next painting
        yield pipeline.finish(carried, earlier, options)


def _light_changed(light: float, painted_light: float | None) -> bool:
    return painted_light is not None and abs(light - painted_light) > LIGHT_CHANGE * max(painted_light, 1.0)


class FaceCrops:
    """Paints a face's aligned crop every ``every`` frames and reuses it in between. The face tracker holds the
    crop on the face, so it hardly changes from one frame to the next, and the face pass costs as much as the
    frame; the pasted crop still follows the face, since it is warped to the face's place in each frame."""

    def __init__(self, paint: Callable[[np.ndarray], np.ndarray], every: int = FACE_REPAINT_EVERY) -> None:
        self._paint, self.every = paint, every
        self._last: list[tuple["Face", np.ndarray, int]] = []  # the previous frame's (face, painted crop, its age)
        self._now: list[tuple["Face", np.ndarray, int]] = []

    def __call__(self, crop: np.ndarray, face: "Face") -> np.ndarray:
        fresh = [entry for entry in self._last if entry[2] + 1 < self.every and entry[1].shape == crop.shape]
        match = _best_match(face, [last for last, _, _ in fresh], set(), 0.5)
        if match is None:
            painted, age = self._paint(crop), 0
        else:
            _, painted, age = fresh[match]
            age += 1
        self._now.append((face, painted, age))
        return painted

    def next_frame(self) -> None:
        self._last, self._now = self._now, []


def _upright(frame: np.ndarray, rotation: int) -> np.ndarray:
    """The frame as it is shown: turned by its display matrix's rotation (degrees counter-clockwise)."""
    turns = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(frame, turns)) if turns else frame


def paint_video(stylizer: "Stylizer", source: Path, output: Path, options: Options = Options(),
                video: VideoOptions = VideoOptions(),
                on_frame: Callable[[int, int | None], None] | None = None) -> Path:
    """Paint ``source`` into ``output`` (mp4, mov, mkv or webm): the same frames, frame rate and timing, the audio
    copied, the provenance in the container's metadata; written atomically. ``on_frame(done, total)`` hears
    progress (total None where the container does not say)."""
    av = _av()
    video = video.validated()
    suffix = output.suffix.lower()
    if suffix not in CONTAINERS:
        raise OutputError(f"{output}: unsupported video extension {output.suffix!r} (use one of "
                          f"{', '.join(sorted(CONTAINERS))})")
    if same_file(source, output):
        raise OutputError(f"{output}: output would overwrite the input; choose another path")
    if not source.is_file():
        raise UnreadableVideoError(f"{source}: no such file")
    muxer, codec = CONTAINERS[suffix]
    try:
        container = av.open(str(source))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise UnreadableVideoError(f"{source}: not a video FFmpeg can read ({exc})") from None
    with container:
        if not container.streams.video:
            raise UnreadableVideoError(f"{source}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        audio = container.streams.audio[0] if container.streams.audio else None
        total = _frames_in(stream, video)
        with atomic_path(output) as partial:
            try:
                _transcode(av, stylizer, container, stream, audio, partial, muxer, codec, options, video, total,
                           on_frame, str(source))
            except av.FFmpegError as exc:
                raise UnreadableVideoError(f"{source}: corrupt or truncated video ({exc})") from None
    return output


def _frames_in(stream, video: VideoOptions) -> int | None:  # noqa: ANN001 -- PyAV's VideoStream
    """How many frames the output will have, from the stream's own count or duration (None where unknown)."""
    rate = stream.average_rate
    seconds = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
    if seconds is None and stream.frames:
        seconds = stream.frames / float(rate) if rate else None
    if seconds is None or not rate:
        return stream.frames or None
    end = min(seconds, video.end) if video.end is not None else seconds
    return max(0, round((end - video.start) * float(rate)))


def _transcode(av, stylizer: "Stylizer", container, stream, audio, partial: Path, muxer: str, codec: str,  # noqa: ANN001
               options: Options, video: VideoOptions, total: int | None,
               on_frame: Callable[[int, int | None], None] | None, name: str) -> None:
    time_base = stream.time_base or Fraction(1, 90_000)
    start_pts = round(video.start / time_base)
    end_pts = None if video.end is None else round(video.end / time_base)
    held_audio: list = []  # audio packets read while looking for the next frame, muxed after it

    pts_list: list[int] = []  # each frame's own time, so timing and frame rate stay as they were

    def frames() -> Iterator[np.ndarray]:
        for packet in container.demux(*[s for s in (stream, audio) if s is not None]):
            if packet.stream is audio:
                held_audio.append(packet)
                continue
            for frame in packet.decode():
                if frame.pts is None or frame.pts < start_pts:
                    continue
                if end_pts is not None and frame.pts >= end_pts:
                    return  # past the cut: nothing more is read
                pts_list.append(frame.pts - start_pts)
                yield _upright(frame.to_ndarray(format="rgb24"), frame.rotation)

    out = av.open(str(partial), "w", format=muxer)
    try:
        xmp = stylizer.provenance(options)  # the photos' packet, in the container's comment tag
        if xmp:
            out.metadata["comment"] = xmp.decode("utf-8")
        out_video = out_audio = None
        if audio is not None:
            out_audio = out.add_stream_from_template(audio)
        written = 0
        for painted in stylizer.frames(frames(), options, video):
            if out_video is None:
                out_video = out.add_stream(codec, rate=stream.average_rate or Fraction(30))
                out_video.width, out_video.height = painted.shape[1], painted.shape[0]
                even = painted.shape[0] % 2 == 0 and painted.shape[1] % 2 == 0
                out_video.pix_fmt = "yuv420p" if even else "yuv444p"  # 4:2:0 needs even sides
                out_video.time_base = time_base
                out_video.options = dict(ENCODER_OPTIONS[codec])
            frame = av.VideoFrame.from_ndarray(painted, format="rgb24")
            frame.pts, frame.time_base = pts_list[written], time_base
            for packet in out_video.encode(frame):
                out.mux(packet)
            written += 1
            _mux_audio(out, out_audio, held_audio, audio, video)
            if on_frame:
                on_frame(written, total)
        if out_video is None:
            cut = f" from {video.start:g} s" + (f" to {video.end:g} s" if video.end is not None else "")
            raise UnreadableVideoError(f"{name}: no frames" + (cut if video.start or video.end is not None else ""))
        for packet in out_video.encode(None):
            out.mux(packet)
        _mux_audio(out, out_audio, held_audio, audio, video)
    finally:
        out.close()


def _mux_audio(out, out_audio, held: list, audio, video: VideoOptions) -> None:  # noqa: ANN001
    """The audio packets read so far, copied untouched into the output (those inside start-end, shifted)."""
    if out_audio is None:
        held.clear()
        return
    time_base = audio.time_base
    start = round(video.start / time_base)
    end = None if video.end is None else round(video.end / time_base)
    for packet in held:  # from the clip's start, every packet (an encoder's priming ones have negative times)
        if packet.pts is None or packet.size == 0 or (video.start and packet.pts < start) or \
                (end is not None and packet.pts >= end):
            continue
        packet.pts -= start
        if packet.dts is not None:
            packet.dts -= start
        packet.stream = out_audio
        out.mux(packet)
    held.clear()
