"""The judges of ``benchmarks/quality.py``: each gives its best score to the right image, its worst to the wrong one,
and refuses what it cannot measure."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from benchmarks.quality import (IdentityJudge, face_box, face_colour, face_detail, face_lightness, hatch_peak,
                                photo_share, tonal_layout)


def smooth_picture(size: int = 256, seed: int = 0) -> np.ndarray:
    """Blurred noise, stretched to 20-220: a picture with large shapes and no periodic detail."""
    noise = cv2.GaussianBlur(np.random.default_rng(seed).random((size, size)).astype(np.float32), (0, 0), 3)
    grey = (noise - noise.min()) / (noise.max() - noise.min()) * 200 + 20
    return np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)


def test_tonal_layout_is_one_for_the_same_layout_and_minus_one_for_an_inverted_one(astronaut: np.ndarray) -> None:
    assert tonal_layout(astronaut, astronaut) == pytest.approx(1.0)
    assert tonal_layout(astronaut, 255 - astronaut) == pytest.approx(-1.0)
    # a painting's tones in the photo's layout: a monotone remap of the luminance keeps the ranks
    toned = (np.sqrt(astronaut / 255.0) * [90, 160, 60]).astype(np.uint8)
    assert tonal_layout(astronaut, toned) > 0.95
    assert abs(tonal_layout(astronaut, smooth_picture(512))) < 0.3


def test_tonal_layout_refuses_images_of_different_sizes(astronaut: np.ndarray) -> None:
    with pytest.raises(ValueError, match="differ in size"):
        tonal_layout(astronaut, astronaut[:256])


def test_tone_layout_distance_is_near_zero_for_the_photo_in_its_own_tones(astronaut: np.ndarray) -> None:
    pytest.importorskip("torch", reason="the training term needs torch (pip install 'stylize[torch]')")
    from benchmarks.quality import ToneJudge

    tones = ToneJudge(astronaut)
    itself = tones.distance(astronaut, astronaut)
    inverted = tones.distance(astronaut, 255 - astronaut)
    assert itself < 0.05 < 1.5 < inverted


@pytest.mark.parametrize("share", [0.0, 0.3, 1.0])
def test_photo_share_is_the_share_of_the_photo_mixed_into_the_painted_face(share: float) -> None:
    photo, painted = smooth_picture(seed=1), smooth_picture(seed=2)
    photo = np.clip(photo.astype(np.int16) + np.random.default_rng(3).integers(-20, 20, photo.shape), 0, 255)
    default = share * photo.astype(np.float32) + (1 - share) * painted.astype(np.float32)
    box = (60, 50, 200, 210)
    # detail is linear, so a mix of the two faces shares out exactly (up to float rounding)
    assert photo_share(photo.astype(np.float32), default, painted.astype(np.float32), box) == pytest.approx(share, abs=1e-3)


def test_face_lightness_sees_a_face_painted_lighter_that_tonal_layout_cannot(astronaut: np.ndarray) -> None:
    box = (180, 60, 300, 200)  # the astronaut's face
    paler = (128 + astronaut.astype(np.float32) / 2).astype(np.uint8)  # every tone lifted, the ranks kept
    assert tonal_layout(astronaut, paler) > 0.95
    level, shift = face_lightness(astronaut, astronaut, box)
    assert shift == 0.0 and 100 < level < 200  # her face's own level: light
    assert face_lightness(astronaut, paler, box)[1] > 40 and face_lightness(astronaut, 255 - paler, box)[1] < -40


def test_face_colour_sees_skin_painted_grey_or_teal_that_lightness_cannot(astronaut: np.ndarray) -> None:
    box = (180, 60, 300, 200)  # the astronaut's face: warm skin
    lab = cv2.cvtColor(astronaut, cv2.COLOR_RGB2LAB)
    grey, teal = lab.copy(), lab.copy()
    grey[..., 1:] = 128 + (lab[..., 1:].astype(np.int16) - 128) // 5  # the same lightness, a fifth of the chroma
    teal[..., 1:] = 256 - lab[..., 1:]  # the same lightness and chroma, the opposite hue
    grey, teal = (cv2.cvtColor(x, cv2.COLOR_LAB2RGB) for x in (grey, teal))
    assert face_colour(astronaut, astronaut, box) == (pytest.approx(1.0), pytest.approx(0.0))
    assert abs(face_lightness(astronaut, teal, box)[1]) < 5  # lightness is blind to it ...
    chroma, turn = face_colour(astronaut, grey, box)
    assert chroma < 0.3 and turn < 20
    chroma, turn = face_colour(astronaut, teal, box)
    assert 0.8 < chroma < 1.2 and turn > 150  # ... the colour measure is not


def test_face_detail_cancels_colour_and_shading_shifts() -> None:
    face = smooth_picture(seed=4).astype(np.float32)
    shaded = face * 0.8 + 30  # a lightness shift and a contrast change leave the detail's shape, scaled
    box = (40, 40, 200, 200)
    assert np.allclose(face_detail(shaded, box), 0.8 * face_detail(face, box), atol=1e-2)
    assert face_detail(face, box).shape == (160, 160)


def test_hatching_peak_finds_the_decoders_stamp_at_its_working_scale() -> None:
    clean = smooth_picture()
    rows, columns = np.mgrid[:256, :256]
    stamped = np.clip(clean + (((rows + columns) % 4 < 2) * 6)[..., None], 0, 255).astype(np.uint8)
    assert hatch_peak(clean) < 20
    assert hatch_peak(stamped) > 1000 * hatch_peak(clean)
    # painted at half the output's size and upsampled, the stamp repeats every 8 output pixels
    upsampled = cv2.resize(stamped, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
    assert hatch_peak(upsampled, scale=0.5) > 1000 * hatch_peak(upsampled, scale=1.0)


def test_hatching_peak_is_low_on_a_photo_and_refuses_a_tiny_image(astronaut: np.ndarray) -> None:
    assert hatch_peak(astronaut) < 20
    with pytest.raises(ValueError, match="too small"):
        hatch_peak(astronaut[:20, :20])


@pytest.fixture(scope="module")
def identity() -> IdentityJudge:
    pytest.importorskip("dlib", reason="identity needs dlib-bin and face-recognition-models (the bench extra)")
    return IdentityJudge()


@pytest.mark.slow
def test_identity_keeps_the_same_face_and_rejects_an_erased_one(astronaut: np.ndarray, identity: IdentityJudge) -> None:
    from stylize.pipeline import shared_face_finder

    (face,) = shared_face_finder().find(astronaut)
    box = face_box(face, astronaut.shape)
    assert identity.distance(astronaut, astronaut, box) == pytest.approx(0.0, abs=1e-6)
    buffer = io.BytesIO()
    Image.fromarray(astronaut).save(buffer, "JPEG", quality=20)
    assert identity.distance(astronaut, np.asarray(Image.open(buffer)), box) < 0.6  # still her
    erased = astronaut.copy()
    x0, y0, x1, y1 = box
    erased[y0:y1, x0:x1] = astronaut[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)
    assert identity.distance(astronaut, erased, box) > 0.6  # no eyes, no mouth: nobody
