"""Paste stylised face crops back into the stylised photo with no visible box.

The naive paste-back shows a rectangle; here each face is warped back with the
inverse similarity transform, matched in colour statistics to the surrounding
stylised photo, and blended through a feathered mask cut from the face-oval
landmarks. All work happens inside the face's bounding region, so cost and
memory depend on the face size, not the photo size.
"""

from __future__ import annotations

import cv2
import numpy as np

from .faces import CROP_SIZE, TEMPLATE, Face, warp_area


def crop_mask(face: Face, crop_size: int = CROP_SIZE) -> np.ndarray:
    """Feathered float mask in crop space: the face oval (or a template ellipse when the mesh failed)."""
    mask = np.zeros((crop_size, crop_size), np.float32)
    if face.oval is not None:
        matrix = face.transform(crop_size)
        oval = face.oval @ matrix[:, :2].T + matrix[:, 2]
        cv2.fillPoly(mask, [np.round(oval).astype(np.int32)], 1.0, lineType=cv2.LINE_AA)
    else:
        scale = crop_size / CROP_SIZE
        centre = TEMPLATE[:3].mean(axis=0) * scale + np.array([0, 20 * scale])
        axes = (int(150 * scale), int(200 * scale))
        cv2.ellipse(mask, tuple(int(v) for v in centre), axes, 0, 0, 360, 1.0, -1, cv2.LINE_AA)
    feather = max(3, crop_size // 24)
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8), iterations=feather // 2)
    return cv2.GaussianBlur(mask, (0, 0), feather / 2)


def match_color_stats(source: np.ndarray, reference: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Shift/scale ``source`` per Lab channel so its weighted mean and std equal the reference's."""
    src = cv2.cvtColor(source, cv2.COLOR_RGB2LAB).astype(np.float32)
    ref = cv2.cvtColor(reference, cv2.COLOR_RGB2LAB).astype(np.float32)
    w = weight[..., None].astype(np.float32)
    total = float(w.sum())
    if total < 1.0:
        return source
    def stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = (x * w).sum((0, 1)) / total
        std = np.sqrt(((x - mean) ** 2 * w).sum((0, 1)) / total) + 1e-3
        return mean, std
    src_mean, src_std = stats(src)
    ref_mean, ref_std = stats(ref)
    gain = np.clip(ref_std / src_std, 0.5, 2.0)
    out = (src - src_mean) * gain + ref_mean
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


#: The share of a face's own lightness the face pass keeps: a style that maps light skin to paper and dark skin
#: to ink (``great_wave`` lightened medium skin by 18 L* and dark skin by 3) would otherwise shift one group's
#: faces more than another's; measured per group with ``benchmarks/faces.py``.
KEPT_LIGHTNESS = 0.5

#: How far the photo's face, mixed back in below face strength 1, is toned toward the painted face's mean colour
#: (Lab a and b): untoned it reads as a photo pasted into the painting; fully toned, the face mesh loses more faces
#: (its own colour contrasts, lips against skin, stay either way). Chosen with both benchmarks.
FACE_TONE = 0.5

#: Lab channels ``move_mean`` moves
LIGHTNESS, COLOUR = slice(0, 1), slice(1, 3)


def move_mean(image: np.ndarray, toward: np.ndarray, weight: np.ndarray, share: float,
              channels: slice) -> np.ndarray:
    """Move ``image``'s weighted mean of these Lab channels ``share`` of the way to ``toward``'s; the detail stays."""
    total = float(weight.sum())
    if total < 1.0 or share <= 0.0:
        return image
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    target = cv2.cvtColor(toward, cv2.COLOR_RGB2LAB)[..., channels].astype(np.float32)
    w = weight[..., None]
    lab[..., channels] += share * ((target - lab[..., channels]) * w).sum((0, 1)) / total
    return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def face_region(matrix_to_crop: np.ndarray, crop_size: int, shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Bounding box in the photo (x0, y0, x1, y1) of the crop square, clipped; None if outside."""
    inverse = cv2.invertAffineTransform(matrix_to_crop)
    corners = np.array([[0, 0], [crop_size, 0], [0, crop_size], [crop_size, crop_size]], np.float64)
    pts = corners @ inverse[:, :2].T + inverse[:, 2]
    x0, y0 = np.floor(pts.min(0)).astype(int)
    x1, y1 = np.ceil(pts.max(0)).astype(int)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(shape[1], x1), min(shape[0], y1)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def paste_face(canvas: np.ndarray, original: np.ndarray, stylised_crop: np.ndarray, face: Face, scale: float,
               face_strength: float = 1.0) -> None:
    """Blend one stylised face crop into ``canvas`` in place.

    ``canvas`` and ``original`` are the stylised and the source photo at one
    resolution, ``scale`` times the resolution the face was found at.
    ``face_strength`` < 1 mixes the original face back in, to keep identity, toned toward the painted face.
    """
    crop_size = stylised_crop.shape[0]
    matrix = face.transform(crop_size)
    matrix[:, :2] /= scale  # photo pixels at canvas resolution -> crop
    region = face_region(matrix, crop_size, canvas.shape[:2])
    if region is None:
        return
    x0, y0, x1, y1 = region
    local = matrix.copy()
    local[:, 2] += matrix[:, :2] @ np.array([x0, y0], np.float64)  # region pixel -> crop
    size = (x1 - x0, y1 - y0)
    # a small face gets a 512 px crop shrunk many times: averaged, or its strokes alias into noise
    face_px = warp_area(stylised_crop, local, size, cv2.BORDER_REFLECT_101)
    mask = warp_area(crop_mask(face, crop_size), local, size, cv2.BORDER_CONSTANT)
    base = canvas[y0:y1, x0:x1]
    face_px = match_color_stats(face_px, base, mask)
    photo_face = original[y0:y1, x0:x1]
    if face_strength < 1.0:
        toned = move_mean(photo_face, face_px, mask, FACE_TONE, COLOUR)
        face_px = cv2.addWeighted(face_px, face_strength, toned, 1.0 - face_strength, 0.0)
    face_px = move_mean(face_px, photo_face, mask, KEPT_LIGHTNESS, LIGHTNESS)
    alpha = mask[..., None] * face.opacity
    canvas[y0:y1, x0:x1] = np.clip(face_px * alpha + base * (1.0 - alpha) + 0.5, 0, 255).astype(np.uint8)
