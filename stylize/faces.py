"""Find faces with MediaPipe and align each to a canonical crop.

Detection uses the full-range model, on the whole photo and on overlapping
tiles (the model sees 192x192, so small faces in big photos need tiles); each
face then gets 468 face-mesh landmarks from a crop around it. Five points
(eye centres, nose tip, mouth corners) fix a similarity transform to
``TEMPLATE``, so every face is stylised at one consistent scale. When the
mesh fails (strong profiles), the detector's keypoints stand in.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import sys
import threading
from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np

from .errors import MissingExtraError
from .options import DEFAULT_FACE_CROP

#: Side of the aligned face crop the template is drawn for, in pixels (``Options.face_crop`` scales it).
CROP_SIZE = DEFAULT_FACE_CROP
#: Canonical positions in the crop: image-left eye, image-right eye, nose tip, mouth left, mouth right.
TEMPLATE = np.array([[192, 224], [320, 224], [256, 296], [206, 352], [306, 352]], dtype=np.float32)
#: Face-mesh indices: eye corners (averaged per eye), nose tip, mouth corners.
MESH_EYES = ((33, 133), (362, 263))
MESH_NOSE, MESH_MOUTH = 1, (61, 291)
#: Regions are shown to the detector at this long side; photos above 1.5 tiles are also searched in tiles.
DETECT_VIEW, DETECT_TILE = 640, 512
#: Detections without face-mesh landmarks are kept only above this score.
MESHLESS_MIN_SCORE = 0.8


@dataclass
class Face:
    """One face: its alignment to the crop template, and its outline (both in photo pixels)."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float
    points: np.ndarray  # (5, 2) template-ordered key points, or (4, 2) eyes/nose/mouth-centre fallback
    landmarks: np.ndarray | None = None  # (468, 2) face-mesh landmarks, None if the mesh failed
    #: how much of the face pass shows over the painted photo (a video fades faces in and out, 0-1)
    opacity: float = 1.0

    @property
    def oval(self) -> np.ndarray | None:
        """(N, 2) face-oval polygon from the mesh, None if the mesh failed."""
        return None if self.landmarks is None else self.landmarks[_oval_order()]

    @property
    def eye_distance(self) -> float:
        return float(np.linalg.norm(self.points[0] - self.points[1]))

    def transform(self, crop_size: int = CROP_SIZE) -> np.ndarray:
        """2x3 similarity matrix mapping photo pixels to the aligned crop."""
        scale = crop_size / CROP_SIZE
        if len(self.points) == 5:
            template = TEMPLATE
        else:  # eyes, nose, mouth centre
            template = np.vstack([TEMPLATE[:3], TEMPLATE[3:].mean(axis=0, keepdims=True)])
        return similarity_transform(self.points, template * scale)


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (C++ logging that Python cannot filter) for the duration."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation (Umeyama, no reflection) taking src to dst."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sigma, vt = np.linalg.svd(cov)
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ sign @ vt
    scale = (sigma * np.diag(sign)).sum() / max(s.var(0).sum(), 1e-12)
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rot
    matrix[:, 2] = mu_d - matrix[:, :2] @ mu_s
    return matrix


def align_face(rgb: np.ndarray, face: Face, crop_size: int = CROP_SIZE) -> np.ndarray:
    """The aligned crop (crop_size x crop_size RGB), edges reflected where the face meets the photo border."""
    crop_to_photo = cv2.invertAffineTransform(face.transform(crop_size))
    return warp_area(rgb, crop_to_photo, (crop_size, crop_size), cv2.BORDER_REFLECT_101)


def warp_area(image: np.ndarray, to_source: np.ndarray, size: tuple[int, int], border: int) -> np.ndarray:
    """``warpAffine`` (``to_source`` maps output pixels to ``image`` pixels) that averages when it shrinks.

    warpAffine samples bilinearly whatever flag it is given, so shrinking a big face
    (into its crop) or a stylised crop (back onto a small face) aliases: strokes and
    skin texture turn into noise. The part of ``image`` the output sees is first
    shrunk with area averaging to about the output's scale, then warped.
    """
    shrink = _scale_of(to_source)  # source pixels per output pixel
    if shrink > 1.5:
        w, h = size
        corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64) @ to_source[:, :2].T + to_source[:, 2]
        x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - 2, 0)
        x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 2, (image.shape[1], image.shape[0]))
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            region = image[y0:y1, x0:x1]
            small_size = (max(1, round((x1 - x0) / shrink)), max(1, round((y1 - y0) / shrink)))
            fx, fy = small_size[0] / (x1 - x0), small_size[1] / (y1 - y0)
            image = cv2.resize(region, small_size, interpolation=cv2.INTER_AREA)
            to_source = np.diag([fx, fy]) @ (to_source - np.array([[0, 0, x0], [0, 0, y0]]))
            to_source[:, 2] += (0.5 * fx - 0.5, 0.5 * fy - 0.5)  # pixel centres of the shrunk region
    flags = cv2.INTER_CUBIC if shrink < 1 else cv2.INTER_LINEAR  # enlarging: smoother
    return cv2.warpAffine(image, to_source, size, flags=flags | cv2.WARP_INVERSE_MAP, borderMode=border)


def _scale_of(matrix: np.ndarray) -> float:
    return float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))


@functools.lru_cache(maxsize=1)
def _oval_order() -> list[int]:
    """Walk MediaPipe's FACEMESH_FACE_OVAL edge set into one closed polygon."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_FACE_OVAL

    nxt = dict(FACEMESH_FACE_OVAL)
    start = min(nxt)
    order, node = [start], nxt[start]
    while node != start and len(order) <= len(nxt):
        order.append(node)
        node = nxt[node]
    return order


@dataclass(frozen=True)
class FaceCheck:
    """Whether a face found on a photo is still a face after stylising, and how far its landmarks moved."""

    survived: bool
    drift: float | None  # median landmark displacement / inter-ocular distance; None when no mesh was found


def _key_points(landmarks: np.ndarray) -> np.ndarray:
    """Eye centres, nose tip and mouth corners: the five alignment points, in template order."""
    eyes = [landmarks[list(pair)].mean(axis=0) for pair in MESH_EYES]
    return np.vstack([eyes[0], eyes[1], landmarks[MESH_NOSE], landmarks[MESH_MOUTH[0]], landmarks[MESH_MOUTH[1]]])


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class FaceFinder:
    """MediaPipe detection + mesh. MediaPipe graphs are not thread-safe, so calls are serialised."""

    def __init__(self, min_score: float = 0.5, max_faces: int = 20) -> None:
        if importlib.util.find_spec("mediapipe") is None:
            raise MissingExtraError("finding faces needs MediaPipe: pip install --no-deps mediapipe==0.10.21 (its "
                                    "jax dependency is not used), or stylise without the face pass (faces off)")
        with quiet_stderr():  # MediaPipe's C++ start-up logging is noise to a user
            import mediapipe as mp

            self.min_score, self.max_faces = min_score, max_faces
            self._detector = mp.solutions.face_detection.FaceDetection(model_selection=1,
                                                                       min_detection_confidence=min_score)
            self._mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                                         refine_landmarks=False, min_detection_confidence=0.3)
            blank = np.zeros((64, 64, 3), np.uint8)
            self._detector.process(blank)  # the graphs log once on their first frame
            self._mesh.process(blank)
        self._mesh_warmed = False
        self._lock = threading.Lock()

    def close(self) -> None:
        self._detector.close()
        self._mesh.close()

    def find(self, rgb: np.ndarray) -> list[Face]:
        with self._lock:
            boxes = self._detect(rgb)
            faces = [self._landmarks(rgb, box, score, keypoints) for box, score, keypoints in boxes]
        # a weak detection that the mesh cannot confirm is more often a false positive than a profile
        faces = [f for f in faces if f.landmarks is not None or f.score >= MESHLESS_MIN_SCORE]
        return sorted(faces, key=lambda f: f.box[0])

    def _detect_region(self, rgb: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> list[tuple]:
        """Detect in one region, seen at DETECT_VIEW pixels (the model itself looks at 192x192)."""
        region = rgb[y0:y1, x0:x1]
        scale = min(1.0, DETECT_VIEW / max(region.shape[:2]))
        if scale < 1:
            size = (max(1, round(region.shape[1] * scale)), max(1, round(region.shape[0] * scale)))
            region = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
        result = self._detector.process(np.ascontiguousarray(region))
        sy, sx = (y1 - y0) / region.shape[0], (x1 - x0) / region.shape[1]
        h, w = region.shape[:2]
        found = []
        for det in result.detections or []:
            rel = det.location_data.relative_bounding_box
            box = (x0 + rel.xmin * w * sx, y0 + rel.ymin * h * sy,
                   x0 + (rel.xmin + rel.width) * w * sx, y0 + (rel.ymin + rel.height) * h * sy)
            keypoints = np.array([[x0 + k.x * w * sx, y0 + k.y * h * sy]
                                  for k in det.location_data.relative_keypoints[:4]], np.float32)
            found.append((box, float(det.score[0]), keypoints))
        return found

    def _detect(self, rgb: np.ndarray) -> list[tuple]:
        """The whole photo, then overlapping tiles (so faces down to ~3% of the photo's side are found)."""
        h, w = rgb.shape[:2]
        found = self._detect_region(rgb, 0, 0, w, h)
        tile = max(DETECT_TILE, max(h, w) // 4)
        if max(h, w) > 1.5 * tile:
            step = tile * 3 // 4
            for ty in range(0, max(1, h - tile // 4), step):
                for tx in range(0, max(1, w - tile // 4), step):
                    found += self._detect_region(rgb, tx, ty, min(w, tx + tile), min(h, ty + tile))
        found.sort(key=lambda f: -f[1])
        kept: list[tuple] = []
        for cand in found:  # non-maximum suppression
            if all(_iou(cand[0], k[0]) < 0.3 for k in kept):
                kept.append(cand)
        return kept[: self.max_faces]

    def check(self, rgb: np.ndarray, face: Face) -> FaceCheck:
        """Run the face mesh on ``rgb`` at the crop where ``face`` was found; it survives when the mesh is found
        and its five key points lie, on average, within half an inter-ocular distance of the photo's."""
        if face.landmarks is None:
            raise ValueError("only faces with face-mesh landmarks can be checked")
        with self._lock:
            landmarks = self._mesh_at(rgb, face.box)
        if landmarks is None:
            return FaceCheck(False, None)
        eye_distance = face.eye_distance
        moved = np.linalg.norm(_key_points(landmarks) - face.points, axis=1).mean() / eye_distance
        drift = float(np.median(np.linalg.norm(landmarks - face.landmarks, axis=1)) / eye_distance)
        return FaceCheck(bool(moved <= 0.5), drift)

    def follow(self, rgb: np.ndarray, face: Face) -> Face | None:
        """``face`` in the next frame of a video: the face mesh at its last place (a few milliseconds, where
        finding it anew searches the whole frame); None when the mesh finds no face there."""
        with self._lock:
            landmarks = self._mesh_at(rgb, face.box)
        if landmarks is None:
            return None
        (x0, y0), (x1, y1) = landmarks.min(axis=0), landmarks.max(axis=0)
        return Face(box=(float(x0), float(y0), float(x1), float(y1)), score=face.score,
                    points=_key_points(landmarks).astype(np.float32), landmarks=landmarks.astype(np.float32))

    def _mesh_at(self, rgb: np.ndarray, box: tuple) -> np.ndarray | None:
        """Face mesh on a square crop around a detection box (so small faces get enough pixels), in photo pixels."""
        x0, y0, x1, y1 = box
        cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, 2.0 * max(x1 - x0, y1 - y0)
        size = 384
        scale = size / side
        to_crop = np.array([[scale, 0, size / 2 - cx * scale], [0, scale, size / 2 - cy * scale]])
        crop = cv2.warpAffine(rgb, to_crop, (size, size), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        if self._mesh_warmed:
            result = self._mesh.process(crop)
        else:
            with quiet_stderr():  # it logs once on its first real face
                result = self._mesh.process(crop)
            self._mesh_warmed = True
        if not result.multi_face_landmarks:
            return None
        lm = np.array([[p.x * size, p.y * size] for p in result.multi_face_landmarks[0].landmark], np.float64)
        return (lm - to_crop[:, 2]) / scale

    def _landmarks(self, rgb: np.ndarray, box: tuple, score: float, keypoints: np.ndarray) -> Face:
        lm = self._mesh_at(rgb, box)
        if lm is None:
            return Face(box=box, score=score, points=keypoints)
        points = _key_points(lm)
        if np.linalg.norm(points[0] - keypoints[0]) > 0.5 * np.linalg.norm(keypoints[0] - keypoints[1]) + 4:
            return Face(box=box, score=score, points=keypoints)  # mesh latched onto another face
        return Face(box=box, score=score, points=points.astype(np.float32), landmarks=lm.astype(np.float32))
