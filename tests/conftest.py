"""Shared fixtures: a real public-domain portrait, and a temporary catalogue with a fixed random-weights style."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylize.network import Architecture, StyleNet, save_weights

TEST_STYLE = "test_random"

#: The soak scripts in benchmarks/ double as the harness of the scaled-down reliability tests; scripts/ is tested too.
for folder in ("benchmarks", "scripts"):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / folder))


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut: a real public-domain portrait (Eileen Collins, NASA), 512x512 RGB."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def catalogue_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A catalogue holding one style: a small network with fixed random weights."""
    root = tmp_path_factory.mktemp("catalogue")
    torch.manual_seed(1234)
    model = StyleNet(Architecture((8, 16, 32), res_blocks=2))
    save_weights(model, root / "weights" / f"{TEST_STYLE}.safetensors")
    (root / "styles").mkdir()
    (root / "styles" / f"{TEST_STYLE}.json").write_text(json.dumps({"title": "Random test style", "artist": "pytest"}))
    return root


@pytest.fixture()
def catalogue(catalogue_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STYLIZE_HOME", str(catalogue_dir))
    return catalogue_dir


@pytest.fixture()
def portrait_file(tmp_path: Path, astronaut: np.ndarray) -> Path:
    path = tmp_path / "portrait.png"
    Image.fromarray(astronaut).save(path)
    return path
