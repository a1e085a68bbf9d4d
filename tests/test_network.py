"""The style network, its safe weights format, and tiled inference with shared norm statistics."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from stylize.errors import BadWeightsError
from stylize.inference import Engine, resize_long_side
from stylize.network import (Architecture, StyleNet, load_rows, load_weights, mix_rows, rows_on, save_style_row,
                             save_trunk, save_weights)


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


def catalogue_network(styles: int = 3) -> StyleNet:
    torch.manual_seed(3)
    model = StyleNet(Architecture((8, 16, 32), 1, styles=styles))
    with torch.no_grad():
        for norm in model.norms():  # distinct rows, as training leaves them
            norm.weight.normal_(1.0, 0.5)
            norm.bias.normal_(0.0, 0.5)
    return model.eval()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rows_are_picked_by_index_or_mixed_by_weight(dtype: torch.dtype) -> None:
    model = catalogue_network().to(dtype)
    x = torch.rand(2, 3, 32, 32, dtype=dtype)
    with torch.no_grad():
        picked = model(x, torch.tensor([2, 0]))
        one_hot = model(x, torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))
        assert torch.allclose(picked.float(), one_hot.float(), atol=1e-2)
        assert (picked[0] - model(x, torch.tensor([1, 0]))[0]).abs().mean() > 1e-3  # rows differ
        blended = mix_rows(model.float(), [0.25, 0.0, 0.75])(x.float())
        assert torch.allclose(blended, model.float()(x.float(), torch.tensor([[0.25, 0.0, 0.75]] * 2)), atol=1e-5)
    with pytest.raises(ValueError, match="style="):
        model(x)  # several rows: which one is not guessed


def test_trunk_and_rows_round_trip(tmp_path: Path) -> None:
    model = catalogue_network()
    trunk = tmp_path / "weights" / "trunks" / "cat.safetensors"
    save_trunk(model, trunk)
    digest = hashlib.sha256(trunk.read_bytes()).hexdigest()
    rows = [tmp_path / "weights" / f"style{i}.safetensors" for i in range(3)]
    for index, path in enumerate(rows):
        save_style_row(model, index, path, digest)
    assert rows[0].stat().st_size < 4096 < trunk.stat().st_size  # a style is its few-KB row
    assert rows_on(trunk) == rows
    loaded = load_rows(trunk, [(rows[2], None), (rows[0], None)], digest)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x, torch.tensor([0])), model(x, torch.tensor([2])), atol=2e-2)  # fp16 trunk
        assert torch.allclose(loaded(x, torch.tensor([1])), model(x, torch.tensor([0])), atol=2e-2)


def test_rows_of_another_trunk_and_tampered_rows_are_refused(tmp_path: Path) -> None:
    model = catalogue_network()
    trunk, other = tmp_path / "trunk.safetensors", tmp_path / "other.safetensors"
    save_trunk(model, trunk)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    save_trunk(model, other)  # same shapes, other convolutions
    row = tmp_path / "row.safetensors"
    save_style_row(model, 0, row, hashlib.sha256(trunk.read_bytes()).hexdigest())
    assert load_rows(trunk, [(row, None)]).arch.styles == 1
    with pytest.raises(BadWeightsError, match="another trunk"):
        load_rows(other, [(row, None)])
    with pytest.raises(BadWeightsError, match="sha256"):
        load_rows(trunk, [(row, "0" * 64)])
    bad = _tamper(row, lambda t: t.__setitem__("encoder.0.norm.weight", torch.full((8,), float("nan"))))
    with pytest.raises(BadWeightsError, match="NaN") as info:
        load_rows(trunk, [(bad, None)])
    assert str(bad) in str(info.value)
    with pytest.raises(BadWeightsError, match="missing"):
        load_rows(trunk, [(_tamper(row, lambda t: t.pop("encoder.0.norm.bias")), None)])
