"""The style network, its safe weights format, and tiled inference with shared norm statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from stylize.errors import BadWeightsError
from stylize.inference import Engine, resize_long_side
from stylize.network import Architecture, StyleNet, load_weights, save_weights


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_forward_keeps_size_and_has_no_transposed_convs() -> None:
    model = StyleNet(Architecture((8, 16, 32), 2))
    out = model(torch.rand(1, 3, 40, 52))
    assert out.shape == (1, 3, 40, 52)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in model.modules())


def test_weights_round_trip_records_architecture(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = StyleNet(Architecture((8, 16, 24), 3))
    path = tmp_path / "w.safetensors"
    save_weights(model, path)
    loaded = load_weights(path)
    assert loaded.arch == model.arch
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), loaded(x), atol=2e-2)  # fp16 storage


def _tamper(path: Path, change) -> Path:  # noqa: ANN001
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        meta = handle.metadata()
    tensors = load_file(str(path))
    change(tensors)
    out = path.with_name("tampered.safetensors")
    save_file(tensors, str(out), metadata=meta)
    return out


@pytest.mark.parametrize("change, message", [
    (lambda t: t.pop(next(iter(t))), "missing"),
    (lambda t: t.__setitem__("extra.weight", torch.zeros(3)), "unexpected"),
    (lambda t: t.__setitem__(next(iter(t)), torch.zeros(7, 7, dtype=torch.float16)), "shape"),
    (lambda t: t.__setitem__(next(iter(t)), torch.full_like(t[next(iter(t))], float("nan"))), "NaN"),
    (lambda t: t.__setitem__(next(iter(t)), t[next(iter(t))].to(torch.int32)), "dtype"),
])
def test_tampered_weights_are_refused_naming_the_file(tmp_path: Path, change, message: str) -> None:  # noqa: ANN001
    path = tmp_path / "good.safetensors"
    save_weights(StyleNet(Architecture((8, 16, 32), 2)), path)
    bad = _tamper(path, change)
    with pytest.raises(BadWeightsError, match=message) as info:
        load_weights(bad)
    assert str(bad) in str(info.value)


def test_truncated_and_missing_weights_are_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_weights(StyleNet(Architecture((8, 16, 32), 2)), path)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(BadWeightsError, match="truncated.safetensors"):
        load_weights(truncated)
    with pytest.raises(BadWeightsError, match="not found"):
        load_weights(tmp_path / "absent.safetensors")
    pickle_file = tmp_path / "model.safetensors"
    pickle_file.write_bytes(b"\x80\x04\x95" + b"\x00" * 64)  # a pickle header is not a safetensors file
    with pytest.raises(BadWeightsError):
        load_weights(pickle_file)


def test_tiled_matches_untiled_with_shared_statistics(astronaut: np.ndarray) -> None:
    torch.manual_seed(7)
    engine = Engine(StyleNet(Architecture((8, 16, 32), 2)), "cpu", torch.float32)
    whole = engine.stylize(astronaut)
    tiled = engine.stylize_tiled(astronaut, stats_from=astronaut, tile=160, margin=48)
    assert tiled.shape == whole.shape
    assert psnr(whole, tiled) > 35
    # each tile alone (its own statistics) is visibly different: sharing statistics is what fixes it
    corner = engine.stylize(astronaut[:160, :160])
    assert psnr(whole[:160, :160], corner) < psnr(whole[:160, :160], tiled[:160, :160]) - 5


def test_tiled_has_no_seam_at_tile_borders(astronaut: np.ndarray) -> None:
    torch.manual_seed(7)
    engine = Engine(StyleNet(Architecture((8, 16, 32), 2)), "cpu", torch.float32)
    tiled = engine.stylize_tiled(astronaut, stats_from=resize_long_side(astronaut, 256), tile=128, margin=48)
    rows = tiled.astype(np.float64)
    jumps = np.abs(np.diff(rows, axis=0)).mean(axis=(1, 2))  # mean jump between consecutive rows
    at_borders = jumps[[127, 255, 383]].mean()
    assert at_borders < 1.5 * np.median(jumps)


def test_replay_without_record_is_an_error() -> None:
    model = StyleNet(Architecture((8, 16, 32), 1))
    with pytest.raises(RuntimeError, match="record_stats"):
        with model.replay_stats():
            pass


def test_recorded_sha256_is_checked_at_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A valid weights file that is not the one recorded in the style's metadata is refused."""
    import hashlib
    import json

    import stylize

    torch.manual_seed(0)
    save_weights(StyleNet(Architecture((8, 8, 8), 1)), tmp_path / "weights" / "mine.safetensors")
    digest = hashlib.sha256((tmp_path / "weights" / "mine.safetensors").read_bytes()).hexdigest()
    (tmp_path / "styles").mkdir()
    (tmp_path / "styles" / "mine.json").write_text(json.dumps({"title": "Mine", "weights_sha256": digest}))
    monkeypatch.setenv("STYLIZE_HOME", str(tmp_path))
    stylize.Stylizer("mine", device="cpu")  # the recorded file loads
    save_weights(StyleNet(Architecture((8, 8, 8), 1)), tmp_path / "weights" / "mine.safetensors")  # replaced
    with pytest.raises(stylize.BadWeightsError, match="sha256"):
        stylize.Stylizer("mine", device="cpu")
