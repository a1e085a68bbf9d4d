"""The installed environment: one working OpenCV, MediaPipe with its bundled models, no pickle in the package."""

from __future__ import annotations

import importlib.metadata as metadata
import re
from pathlib import Path

import numpy as np

PACKAGE = Path(__file__).resolve().parent.parent / "stylize"


def test_exactly_one_opencv_wheel_and_it_works() -> None:
    import cv2

    wheels = {"opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless"}
    installed = {d.metadata["Name"].lower() for d in metadata.distributions()} & wheels
    assert installed == {"opencv-contrib-python"}, f"several OpenCV wheels share cv2/: {installed}"
    image = np.zeros((40, 40, 3), np.uint8)
    cv2.circle(image, (20, 20), 10, (255, 0, 0), -1)
    assert cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[20, 20] > 0
    assert cv2.warpAffine(image, np.eye(2, 3), (40, 40)).shape == (40, 40, 3)


def test_mediapipe_is_the_release_with_bundled_face_models() -> None:
    import mediapipe

    assert mediapipe.__version__ == "0.10.21"
    models = Path(mediapipe.__file__).parent / "modules"
    assert list(models.rglob("face_detection_full_range*.tflite")) and list(models.rglob("face_landmark*.tflite"))


def test_no_pickle_anywhere_in_the_package() -> None:
    """Weights load only through safetensors: no pickle, torch.load or numpy pickles in our code."""
    pattern = re.compile(r"^\s*(import|from)\s+(c?pickle|dill|joblib)\b|pickle\.loads?\(|torch\.load\(|"
                         r"allow_pickle\s*=\s*True|np\.load\(")
    offenders = [f"{p.name}:{i}" for p in PACKAGE.rglob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []
