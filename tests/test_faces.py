"""Real faces: MediaPipe finds them, alignment puts eyes level at the template, paste-back leaves no seam."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from benchmarks.end_to_end import seam_score
from stylize.blending import COLOUR, FACE_TONE, LIGHTNESS, crop_mask, match_color_stats, move_mean, paste_face
from stylize.faces import CROP_SIZE, TEMPLATE, Face, FaceFinder, align_face, similarity_transform, warp_area


@pytest.fixture(scope="module")
def finder() -> FaceFinder:
    return FaceFinder()


def test_similarity_transform_recovers_a_known_transform() -> None:
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = TEMPLATE.astype(np.float64)
    matrix = similarity_transform(src, src @ rot.T + shift)
    assert np.allclose(matrix[:, :2], rot, atol=1e-9) and np.allclose(matrix[:, 2], shift, atol=1e-7)


def test_astronaut_face_is_found_with_mesh(finder: FaceFinder, astronaut: np.ndarray) -> None:
    faces = finder.find(astronaut)
    assert len(faces) == 1
    face = faces[0]
    x0, y0, x1, y1 = face.box
    assert 150 < (x0 + x1) / 2 < 300 and 60 < (y0 + y1) / 2 < 200  # her face, upper middle
    assert face.oval is not None and len(face.oval) >= 30


def test_aligned_crop_has_level_eyes_at_template(finder: FaceFinder, astronaut: np.ndarray) -> None:
    face = finder.find(astronaut)[0]
    crop = align_face(astronaut, face)
    assert crop.shape == (CROP_SIZE, CROP_SIZE, 3)
    again = finder.find(crop)  # detect independently in the crop
    assert len(again) == 1
    eyes = again[0].points[:2]
    assert abs(eyes[0, 1] - eyes[1, 1]) < 0.03 * CROP_SIZE  # level
    assert np.abs(eyes - TEMPLATE[:2]).max() < 0.04 * CROP_SIZE  # where the template puts them


def test_face_check_keeps_a_face_and_catches_a_lost_one(finder: FaceFinder, astronaut: np.ndarray) -> None:
    face = finder.find(astronaut)[0]
    same = finder.check(astronaut, face)
    assert same.survived and same.drift is not None and same.drift < 0.02
    shifted = finder.check(np.roll(astronaut, 40, axis=1), face)  # a face, but not where this one was
    assert not shifted.survived and shifted.drift is not None and shifted.drift > 0.5
    gone = astronaut.copy()
    x0, y0, x1, y1 = (int(v) for v in face.box)
    gone[y0:y1, x0:x1] = cv2.blur(gone[y0:y1, x0:x1], (41, 41))  # the face painted over
    assert not finder.check(gone, face).survived


def test_face_check_needs_landmarks(finder: FaceFinder, astronaut: np.ndarray) -> None:
    meshless = Face(box=(0, 0, 10, 10), score=0.9, points=np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match="landmarks"):
        finder.check(astronaut, meshless)


def test_several_faces_border_faces_and_none(finder: FaceFinder, astronaut: np.ndarray) -> None:
    pair = np.hstack([astronaut, astronaut[:, ::-1]])
    assert len(finder.find(pair)) == 2
    cut = astronaut[:, 205:]  # face cut by the left border
    faces = finder.find(cut)
    assert len(faces) == 1
    crop = align_face(cut, faces[0])  # reflects past the border, no exception
    assert crop.shape == (CROP_SIZE, CROP_SIZE, 3)
    rng = np.random.default_rng(0)
    assert finder.find(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)) == []
    assert finder.find(np.full((300, 400, 3), 128, np.uint8)) == []


def test_small_face_in_a_big_photo_is_found(finder: FaceFinder, astronaut: np.ndarray) -> None:
    canvas = np.full((3000, 4000, 3), 200, np.uint8)
    small = cv2.resize(astronaut, (384, 384), interpolation=cv2.INTER_AREA)  # face about 80 px: 2% of the width
    canvas[2500:2884, 3500:3884] = small
    faces = finder.find(canvas)
    assert len(faces) == 1 and faces[0].box[0] > 3500


def test_rotated_face_aligns_upright(finder: FaceFinder, astronaut: np.ndarray) -> None:
    rot = cv2.warpAffine(astronaut, cv2.getRotationMatrix2D((225, 120), 25, 1.0), (512, 512),
                         borderMode=cv2.BORDER_REFLECT)
    faces = finder.find(rot)
    assert faces
    crop = align_face(rot, faces[0])
    eyes = finder.find(crop)[0].points[:2]
    assert abs(eyes[0, 1] - eyes[1, 1]) < 0.03 * CROP_SIZE


def test_paste_back_leaves_no_seam(finder: FaceFinder, astronaut: np.ndarray) -> None:
    """A colour-shifted 'stylised' crop pasted back: our blend's border is seamless, a naive box is not."""
    face = finder.find(astronaut)[0]
    crop = align_face(astronaut, face)
    shifted = np.clip(crop.astype(int) + [60, -30, 20], 0, 255).astype(np.uint8)  # a differently coloured face
    canvas = astronaut.copy()
    paste_face(canvas, astronaut, shifted, face, scale=1.0)
    matrix = face.transform()
    mask = cv2.warpAffine(crop_mask(face), matrix, (512, 512), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    ours = seam_score(canvas, mask)
    naive = astronaut.copy()
    box = cv2.warpAffine(np.ones((CROP_SIZE, CROP_SIZE), np.float32), matrix, (512, 512),
                         flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
    back = cv2.warpAffine(shifted, matrix, (512, 512), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    naive[box > 0.5] = back[box > 0.5]
    assert ours < 1.3, ours
    assert seam_score(naive, box) > 2 * ours


def lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(float)


def test_face_strength_zero_keeps_the_photos_face_toned_toward_the_painting(finder: FaceFinder,
                                                                           astronaut: np.ndarray) -> None:
    """At face strength 0 the face is the photo's (every detail of its lightness), its colour moved FACE_TONE of
    the way to the painted face's: a face in the painting's palette, not a photo pasted in."""
    face = finder.find(astronaut)[0]
    teal = np.array([40, 150, 160], np.uint8)
    canvas = np.broadcast_to(teal, astronaut.shape).copy()
    paste_face(canvas, astronaut, np.broadcast_to(teal, (CROP_SIZE, CROP_SIZE, 3)).copy(), face, 1.0, face_strength=0.0)
    x, y = (int(v) for v in face.points[2])  # nose tip: deep inside the mask
    inside = (slice(y - 15, y + 15), slice(x - 15, x + 15))
    photo, pasted = lab(astronaut[inside]), lab(canvas[inside])
    assert np.corrcoef(photo[..., 0].ravel(), pasted[..., 0].ravel())[0, 1] > 0.97
    assert abs(pasted[..., 0].mean() - photo[..., 0].mean()) < 2
    chroma_shift = pasted[..., 1:].mean((0, 1)) - photo[..., 1:].mean((0, 1))
    towards_teal = lab(teal[None, None])[0, 0, 1:] - photo[..., 1:].mean((0, 1))
    assert chroma_shift == pytest.approx(FACE_TONE * towards_teal, abs=3)
    assert np.linalg.norm(chroma_shift) > 0.25 * np.linalg.norm(towards_teal)  # toned, visibly: not the photo's colour


@pytest.mark.parametrize("shrink", [1.0, 2.0, 5.0, 12.0])
def test_warp_area_puts_crop_points_where_the_map_says(shrink: float) -> None:
    """A bright spot at a known crop position lands at the matching region pixel, at every scale."""
    crop = np.zeros((CROP_SIZE, CROP_SIZE), np.float32)
    spot = np.array([300.0, 200.0])
    cv2.circle(crop, tuple(int(v) for v in spot), int(3 * shrink), 1.0, -1)
    region_to_crop = np.array([[shrink, 0, 17.0], [0, shrink, -9.0]])  # region pixel -> crop pixel
    size = (int(CROP_SIZE / shrink) + 20, int(CROP_SIZE / shrink) + 20)
    out = warp_area(crop, region_to_crop, size, cv2.BORDER_CONSTANT)
    ys, xs = np.nonzero(out > 0.5 * out.max())
    found = np.array([np.average(xs, weights=out[ys, xs]), np.average(ys, weights=out[ys, xs])])
    expected = (spot - region_to_crop[:, 2]) / shrink
    assert np.abs(found - expected).max() < 0.35, (found, expected)


def test_warp_area_averages_fine_texture_instead_of_aliasing() -> None:
    """One-pixel stripes shrunk 8 times are a flat grey, not a random pattern of black and white samples."""
    stripes = np.zeros((CROP_SIZE, CROP_SIZE), np.float32)
    stripes[:, ::2] = 1.0
    out = warp_area(stripes, np.array([[8.0, 0, 0.3], [0, 8.0, 0.3]]), (60, 60), cv2.BORDER_REFLECT_101)
    assert abs(float(out.mean()) - 0.5) < 0.02 and float(out.std()) < 0.05


def test_aligning_a_big_face_averages_instead_of_point_sampling() -> None:
    """A face 8 times the crop's scale: one-pixel detail (stripes here) becomes its average, not moire."""
    stripes = np.zeros((512, 512, 3), np.uint8)
    stripes[:, ::2] = 255
    face = Face(box=(0, 0, 512, 512), score=1.0, points=TEMPLATE.copy())
    crop = align_face(stripes, face, crop_size=64).astype(np.float64)
    assert abs(crop[8:-8, 8:-8].mean() - 127.5) < 3 and crop[8:-8, 8:-8].std() < 3


def test_match_color_stats_moves_means() -> None:
    rng = np.random.default_rng(1)
    src = rng.integers(0, 100, (50, 50, 3), dtype=np.uint8)
    ref = rng.integers(120, 250, (50, 50, 3), dtype=np.uint8)
    out = match_color_stats(src, ref, np.ones((50, 50), np.float32))
    assert np.abs(out.mean((0, 1)) - ref.mean((0, 1))).max() < 8


def test_seam_score_needs_a_border() -> None:
    with pytest.raises(ValueError):
        seam_score(np.zeros((20, 20, 3), np.uint8), np.zeros((20, 20), np.float32))


def test_face_finder_leaves_the_environment_alone() -> None:
    """The API promises thread safety: nothing process-wide (here os.environ) may change when faces are found."""
    import subprocess
    import sys

    # after the imports (OpenCV's own loader sets LD_LIBRARY_PATH when cv2 is imported): what running changes
    code = ("import os, mediapipe; from stylize.faces import FaceFinder; before = dict(os.environ); FaceFinder(); "
            "changed = {k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k)}; "
            "assert not changed, changed")
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("GLOG_minloglevel", "TF_CPP_MIN_LOG_LEVEL")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-500:]


@pytest.mark.parametrize("channels", [LIGHTNESS, COLOUR], ids=["lightness", "colour"])
@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_move_mean_moves_by_its_share_and_keeps_the_detail(astronaut: np.ndarray, share: float,
                                                           channels: slice) -> None:
    photo_face = np.ascontiguousarray(astronaut[60:180, 180:300])
    painted = cv2.convertScaleAbs(photo_face, alpha=0.6, beta=90)  # a style that paints this face paler
    painted[..., 2] = 200  # and bluer
    weight = np.zeros(photo_face.shape[:2], np.float32)
    weight[20:100, 20:100] = 1.0
    mean = lambda rgb: lab(rgb)[20:100, 20:100, channels].mean((0, 1))  # noqa: E731
    moved = move_mean(painted, photo_face, weight, share, channels)
    assert mean(moved) - mean(photo_face) == pytest.approx((1 - share) * (mean(painted) - mean(photo_face)), abs=1.5)
    other = COLOUR if channels == LIGHTNESS else LIGHTNESS
    assert lab(moved)[..., other].mean() == pytest.approx(lab(painted)[..., other].mean(), abs=1.5)
    # the texture stays: only the mean moves
    assert np.corrcoef(cv2.cvtColor(moved, cv2.COLOR_RGB2GRAY).ravel(),
                       cv2.cvtColor(painted, cv2.COLOR_RGB2GRAY).ravel())[0, 1] > 0.98


def test_move_mean_without_a_mask_leaves_the_image() -> None:
    face = np.full((8, 8, 3), 200, np.uint8)
    assert move_mean(face, np.zeros_like(face), np.zeros((8, 8), np.float32), 0.5, LIGHTNESS) is face
