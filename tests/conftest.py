"""Shared fixtures: a real public-domain portrait, a temporary catalogue holding a real network, the engines."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylize.weights import Architecture

TEST_STYLE = "test_style"
PROJECT = Path(__file__).resolve().parents[1]
HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed (pip install 'stylize[torch]')")
#: Every test that runs a network runs on each engine installed (the light install has onnxruntime only).
ENGINES = [pytest.param("onnxruntime"), pytest.param("torch", marks=needs_torch)]


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut: a real public-domain portrait (Eileen Collins, NASA), 512x512 RGB."""
    from skimage import data

    return data.astronaut()


def install_shipped_style(root: Path, shipped: str, name: str, **metadata: str) -> None:
    """Copy a shipped style's network (weights, ONNX graph, metadata) into the catalogue at ``root`` as ``name``."""
    (root / "weights").mkdir(parents=True, exist_ok=True)
    (root / "styles").mkdir(exist_ok=True)
    for suffix in (".safetensors", ".onnx"):
        shutil.copy(PROJECT / "weights" / f"{shipped}{suffix}", root / "weights" / f"{name}{suffix}")
    meta = json.loads((PROJECT / "styles" / f"{shipped}.json").read_text())
    (root / "styles" / f"{name}.json").write_text(json.dumps({**meta, "name": name, **metadata}))


@pytest.fixture(scope="session")
def catalogue_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A catalogue holding one style: the shipped starry_night network under a test name."""
    root = tmp_path_factory.mktemp("catalogue")
    install_shipped_style(root, "starry_night", TEST_STYLE, title="Test style", artist="pytest")
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


def random_weights(path: Path, arch: Architecture = Architecture((8, 16, 32), 2), seed: int = 0,
                   metadata: dict[str, str] | None = None) -> Path:
    """A whole network's weights file with random convolutions, written with numpy alone (no torch)."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in arch.shapes().items():
        if name.endswith(".norm.weight"):
            tensors[name] = rng.normal(1.0, 0.3, shape)
        elif name.endswith(".weight"):
            tensors[name] = rng.normal(0.0, 1.0 / np.sqrt(np.prod(shape[1:])), shape)
        else:
            tensors[name] = rng.normal(0.0, 0.1, shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.astype(np.float16) for k, v in tensors.items()}, str(path),
              metadata={**(metadata or {}), **arch.to_metadata()})
    return path


def tampered(path: Path, change) -> Path:  # noqa: ANN001  (a function changing the dict of arrays in place)
    """A copy of a safetensors file, same metadata, with ``change`` applied to its tensors (numpy arrays)."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    with safe_open(str(path), "numpy") as handle:
        meta = handle.metadata()
    tensors = load_file(str(path))
    change(tensors)
    out = path.with_name("tampered.safetensors")
    save_file(tensors, str(out), metadata=meta)
    return out


def shipped_rows() -> tuple[Path, list[str]]:
    """A shipped multi-style network's trunk and its styles, two at least (which styles are rows changes as
    they are retrained)."""
    from stylize.catalogue import list_styles

    by_trunk: dict[Path, list[str]] = {}
    for style in list_styles(PROJECT):
        if style.trunk is not None:
            by_trunk.setdefault(style.trunk, []).append(style.name)
    return next((trunk, names) for trunk, names in sorted(by_trunk.items()) if len(names) >= 2)


def shipped_row_pair() -> tuple[str, str]:
    """Two shipped styles that are rows of one multi-style network."""
    first, second = shipped_rows()[1][:2]
    return first, second


def install_catalogue_rows(root: Path, rows: dict[str, str | None]) -> Path:
    """A shipped multi-style trunk (weights and ONNX graph), as ``catalogue``, in the catalogue at ``root``, with
    one style per entry of ``rows``: name -> the shipped style whose row it takes (one of ``shipped_rows()``), or
    None for a row of zeros (which paints every photo one flat colour). Returns the trunk."""
    from safetensors.numpy import save_file

    from stylize.weights import FORMAT_VERSION, file_sha256, read_metadata

    shipped_trunk = shipped_rows()[0]
    (root / "weights" / "trunks").mkdir(parents=True, exist_ok=True)
    (root / "styles").mkdir(exist_ok=True)
    for suffix in (".safetensors", ".onnx"):
        shutil.copy(shipped_trunk.with_suffix(suffix), root / "weights" / "trunks" / f"catalogue{suffix}")
    trunk_sha256 = file_sha256(shipped_trunk)
    arch = Architecture.from_metadata(read_metadata(shipped_trunk), "trunk")
    for name, painting in rows.items():
        target = root / "weights" / f"{name}.safetensors"
        if painting is None:
            zeros = {tensor: np.zeros(shape, np.float32) for tensor, shape in arch.row_shapes().items()}
            save_file(zeros, str(target), metadata={"format_version": FORMAT_VERSION, "kind": "style-row",
                                                    "trunk_sha256": trunk_sha256})
        else:
            shutil.copy(PROJECT / "weights" / f"{painting}.safetensors", target)
        record = {"name": name, "title": name.replace("_", " ").title(), "artist": "pytest", "licence": "CC0",
                  "trunk": "catalogue", "trunk_sha256": trunk_sha256, "weights_sha256": file_sha256(target),
                  "architecture": {**arch.to_metadata(), "styles": "1"}, "training": {"steps": 1, "seconds": 1.0}}
        (root / "styles" / f"{name}.json").write_text(json.dumps(record))
    return root / "weights" / "trunks" / "catalogue.safetensors"
