"""The style network in torch: its forward pass, writing its weights formats, and its catalogue rows."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install 'stylize[torch]')")

import numpy as np  # noqa: E402

from conftest import tampered  # noqa: E402
from stylize.errors import BadWeightsError  # noqa: E402
from stylize.network import ConditionalInstanceNorm, NormPass, StyleNet, doubled, load_rows, load_weights  # noqa: E402
from stylize.weights import (Architecture, Weights, mix_rows, rows_on, save_style_row, save_trunk,  # noqa: E402
                             save_weights)


def test_forward_keeps_size_and_has_no_transposed_convs() -> None:
    model = StyleNet(Architecture((8, 16, 32), 2))
    out = model(torch.rand(1, 3, 40, 52))
    assert out.shape == (1, 3, 40, 52)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in model.modules())


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("mode", ["nearest", "bilinear", "antialiased"])
def test_doubling_keeps_batch_channels_dtype_and_the_mean(mode: str, dtype: torch.dtype, device: str) -> None:
    x = torch.rand(2, 5, 7, 9, device=device).to(dtype)
    y = doubled(x, mode)
    assert y.shape == (2, 5, 14, 18) and y.dtype == dtype and y.device == x.device
    assert torch.allclose(y.float().mean(dim=(2, 3)), x.float().mean(dim=(2, 3)), atol=0.03)


def test_doubling_refuses_an_unknown_mode_and_a_wrong_shape() -> None:
    with pytest.raises(ValueError, match="upsample must be one of nearest, bilinear, antialiased, got 'bicubic'"):
        doubled(torch.rand(1, 3, 8, 8), "bicubic")
    with pytest.raises(ValueError, match=r"expected \(B, C, H, W\), got shape \(3, 8, 8\)"):
        doubled(torch.rand(3, 8, 8), "antialiased")


def test_an_antialiased_decoder_paints_no_lattice(astronaut: np.ndarray) -> None:
    """A bilinear decoder lets the encoder's 4-pixel grid through as a lattice over the picture, which the
    networks trained with it carry; the binomial filter after each doubling removes it, the weights unchanged."""
    from benchmarks.quality import hatch_peak

    photo = torch.from_numpy(astronaut[::2, ::2].copy()).permute(2, 0, 1)[None].float() / 255
    peaks = {}
    for mode in ("bilinear", "antialiased"):
        torch.manual_seed(0)  # the same weights for both decoders
        with torch.no_grad():
            out = StyleNet(Architecture((8, 16, 24), 1, upsample=mode)).eval()(photo)
        peaks[mode] = hatch_peak((out[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    assert peaks["bilinear"] > 20 and peaks["antialiased"] < peaks["bilinear"] / 5, peaks


@pytest.mark.parametrize("arch", [Architecture(), Architecture((8, 16, 24), 3, styles=4)])
def test_the_numpy_reader_knows_the_networks_tensors(arch: Architecture) -> None:
    """``stylize.weights`` checks files without torch: its shapes and layer order must be the network's own."""
    model = StyleNet(arch)
    assert arch.shapes() == {name: tuple(t.shape) for name, t in model.state_dict().items()}
    norm_pass = NormPass(style=torch.tensor([0]), measured=[])
    model.paint(torch.rand(1, 3, 32, 32), norm_pass)
    assert [m.shape[1] for m in norm_pass.measured] == [channels for _, channels in arch.norm_layers()]


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


def catalogue_network(styles: int = 3) -> StyleNet:
    torch.manual_seed(3)
    model = StyleNet(Architecture((8, 16, 32), 1, styles=styles))
    with torch.no_grad():
        for norm in (m for m in model.modules() if isinstance(m, ConditionalInstanceNorm)):  # distinct rows
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
        tensors = {name: t.float().numpy() for name, t in model.state_dict().items()}
        mixed = mix_rows(Weights(model.arch, tensors, Path(), ""), [0.25, 0.0, 0.75])
        blended = StyleNet.from_weights(mixed)(x.float())
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
    bad = tampered(row, lambda t: t.__setitem__("encoder.0.norm.weight", np.full((8,), np.nan, np.float32)))
    with pytest.raises(BadWeightsError, match="NaN") as info:
        load_rows(trunk, [(bad, None)])
    assert str(bad) in str(info.value)
    with pytest.raises(BadWeightsError, match="missing"):
        load_rows(trunk, [(tampered(row, lambda t: t.pop("encoder.0.norm.bias")), None)])
