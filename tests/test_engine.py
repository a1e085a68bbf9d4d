"""The two engines: the same pixels, every inference path, the shipped graphs, and how the engine is chosen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import stylize
from conftest import ENGINES, PROJECT, install_shipped_style, needs_torch, random_weights, shipped_row_pair
from stylize import engines as engine_module
from stylize.catalogue import list_styles, read_selection, select
from stylize.engines import open_engine
from stylize.engines.onnx import OnnxEngine, graph_path
from stylize.upsampling import resize_long_side
from stylize.weights import Architecture, file_sha256, read_network


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def engine_for(spec: str, name: str):  # noqa: ANN201
    """A shipped style or blend on the CPU, in float32 on both engines (torch's CPU default may be bfloat16)."""
    weights = read_selection(select(spec))
    if name == "torch":
        import torch

        from stylize.engines.torch import TorchEngine

        return TorchEngine(weights, "cpu", torch.float32)
    return OnnxEngine(weights, graph_path(weights.source))


def test_every_shipped_style_has_its_current_graph() -> None:
    """A graph records the weights it was exported from, and each style the graph's sha256: both must hold."""
    styles = list_styles(PROJECT)
    assert styles
    for style in styles:
        weights = read_selection(style)
        assert style.graph_sha256 == file_sha256(graph_path(weights.source)), style.name
        assert open_engine(weights, "cpu", "onnxruntime", style.graph_sha256).name == "onnxruntime"


@needs_torch
@pytest.mark.parametrize("spec", ["starry_night", "{}:0.6,{}:0.4".format(*shipped_row_pair())])
def test_engines_give_the_same_pixels(spec: str, astronaut: np.ndarray) -> None:
    """Whole images of any size (padded inside), a face crop's size, and tiles: within one 8-bit level."""
    onnx, torch_engine = engine_for(spec, "onnxruntime"), engine_for(spec, "torch")
    for image in (astronaut, astronaut[:37, :53], astronaut[100:105, :300], astronaut[:384, :384]):
        difference = np.abs(onnx.stylize(image).astype(int) - torch_engine.stylize(image))
        assert difference.max() <= 1 and difference.mean() < 0.01, image.shape
    stats_from = resize_long_side(astronaut, 256)
    tiled = [engine.stylize_tiled(astronaut, stats_from, tile=160, margin=48) for engine in (onnx, torch_engine)]
    assert np.abs(tiled[0].astype(int) - tiled[1]).max() <= 1


@needs_torch
@pytest.mark.parametrize("upsample", ["nearest", "bilinear", "antialiased"])
def test_export_makes_a_graph_that_paints_like_the_network(upsample: str, tmp_path: Path,
                                                           astronaut: np.ndarray) -> None:
    pytest.importorskip("onnx", reason="the export needs onnx (pip install 'stylize[torch]')")
    from stylize.engines.torch import TorchEngine
    from stylize.export import export

    arch = Architecture((8, 16, 24), 2, upsample=upsample)
    weights = read_network(random_weights(tmp_path / "net.safetensors", arch, seed=3))
    assert weights.arch.upsample == upsample
    path, digest = export(weights)
    assert path == tmp_path / "net.onnx" and digest == file_sha256(path)
    import torch

    onnx, torch_engine = OnnxEngine(weights, path), TorchEngine(weights, "cpu", torch.float32)
    photo = astronaut[::2, ::2]
    assert np.abs(onnx.stylize(photo).astype(int) - torch_engine.stylize(photo)).max() <= 1
    assert psnr(onnx.stylize(photo), photo) < 20  # it does paint


@pytest.mark.parametrize("name", ENGINES)
def test_tiles_share_the_whole_images_statistics(name: str, astronaut: np.ndarray) -> None:
    engine = engine_for("starry_night", name)
    whole = engine.stylize(astronaut)
    tiled = engine.stylize_tiled(astronaut, stats_from=astronaut, tile=160, margin=48)
    assert tiled.shape == whole.shape
    assert psnr(whole, tiled) > 30
    # a tile alone (its own statistics) is visibly different: sharing statistics is what fixes it
    corner = engine.stylize(astronaut[:160, :160])
    assert psnr(whole[:160, :160], corner) < psnr(whole[:160, :160], tiled[:160, :160]) - 5
    # and there is no seam at the tile borders
    from_small = engine.stylize_tiled(astronaut, stats_from=resize_long_side(astronaut, 256), tile=128, margin=48)
    jumps = np.abs(np.diff(from_small.astype(np.float64), axis=0)).mean(axis=(1, 2))
    assert jumps[[127, 255, 383]].mean() < 1.5 * np.median(jumps)


def test_a_graph_of_other_weights_is_refused(tmp_path: Path) -> None:
    install_shipped_style(tmp_path, "great_wave", "wave")
    graph = tmp_path / "weights" / "wave.onnx"
    graph.write_bytes((PROJECT / "weights" / "starry_night.onnx").read_bytes())  # same shapes, other weights
    weights = read_selection(select("wave", tmp_path))
    with pytest.raises(stylize.BadWeightsError, match="other weights.*stylize export"):
        open_engine(weights, "cpu", "onnxruntime")
    with pytest.raises(stylize.BadWeightsError, match="other weights"):
        OnnxEngine(weights, graph)
    with pytest.raises(stylize.BadWeightsError, match="sha256"):  # the style records another graph
        open_engine(weights, "cpu", "onnxruntime", select("wave", tmp_path).graph_sha256)
    graph.write_bytes(b"not a graph")
    with pytest.raises(stylize.BadWeightsError, match="not a valid ONNX graph"):
        open_engine(weights, "cpu", "onnxruntime")


def test_without_torch_a_missing_graph_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = read_network(random_weights(tmp_path / "new.safetensors"))  # trained, never exported
    monkeypatch.setattr(engine_module, "installed", lambda module: module != "torch")
    with pytest.raises(stylize.MissingExtraError, match=r"new\.onnx.*stylize export.*stylize\[torch\]"):
        open_engine(weights, "cpu")
    with pytest.raises(stylize.MissingExtraError, match=r"stylize\[torch\]"):
        open_engine(weights, "cpu", "torch")
    with pytest.raises(stylize.DeviceError, match="runs on the CPU"):
        open_engine(weights, "cuda", "onnxruntime")
    with pytest.raises(stylize.DeviceError, match="unknown engine"):
        open_engine(weights, "cpu", "tensorflow")


@needs_torch
def test_with_torch_a_missing_or_stale_graph_falls_back_to_it(tmp_path: Path) -> None:
    weights = read_network(random_weights(tmp_path / "new.safetensors"))
    assert open_engine(weights, "cpu").name == "torch"
    (tmp_path / "new.onnx").write_bytes((PROJECT / "weights" / "starry_night.onnx").read_bytes())
    assert open_engine(weights, "cpu").name == "torch"  # another network's graph: torch until exported again


def test_commands_that_need_torch_name_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from stylize.cli import app

    monkeypatch.setattr(engine_module, "installed", lambda module: module != "torch")
    runner = CliRunner()
    for args in (["export"], ["train", str(tmp_path / "p.jpg"), "--name", "x", "--content-dir", str(tmp_path)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "pip install 'stylize[torch]'" in result.output, result.output


def test_the_light_path_never_imports_torch(tmp_path: Path, portrait_file: Path) -> None:
    """A photo on the CPU, faces and all, runs on onnxruntime without importing torch (installed or not)."""
    out = tmp_path / "out.jpg"
    code = ("import sys, stylize; painter = stylize.Stylizer('starry_night', device='cpu'); "
            f"painter.to_file({str(portrait_file)!r}, {str(out)!r}, size=256); "
            "assert 'torch' not in sys.modules, 'torch imported'; print(painter.engine)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "STYLIZE_HOME": str(PROJECT)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "onnxruntime on cpu, float32" and out.stat().st_size > 10_000

