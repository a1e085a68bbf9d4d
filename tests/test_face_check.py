"""A warning when a face did not survive: CLI, batch and API, on a real face and a style that erases it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import stylize
from conftest import install_catalogue_rows
from stylize.cli import app

ERASER = "flat_colour"
runner = CliRunner()


@pytest.fixture()
def eraser(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> str:
    """A style whose network paints every photo one flat colour (a row of zeros): no face can survive it."""
    root = tmp_path_factory.mktemp("eraser")
    install_catalogue_rows(root, {ERASER: None})
    monkeypatch.setenv("STYLIZE_HOME", str(root))
    return ERASER


@pytest.mark.slow
def test_api_reports_each_face(eraser: str, astronaut: np.ndarray) -> None:
    painter = stylize.Stylizer(eraser, device="cpu")
    _, kept = painter.render(astronaut, face_strength=0.0, size=256)  # the photo's own face, only toned
    assert len(kept) == 1 and kept[0].survived and kept[0].drift < 0.05
    image, lost = painter.render(astronaut, faces=False, size=256)
    assert len(lost) == 1 and not lost[0].survived
    assert np.asarray(image).std(axis=(0, 1)).max() < 2  # it really is flat
    assert painter.render(astronaut, faces=False, size=256, check=False)[1] == ()


@pytest.mark.slow
def test_cli_warns_once_and_no_check_is_quiet(eraser: str, portrait_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jpg"
    result = runner.invoke(app, ["photo", str(portrait_file), "-s", eraser, "-o", str(out), "--size", "256",
                                 "--no-faces"])
    assert result.exit_code == 0, result.output
    assert f"warning: 1 of 1 faces may not be recognisable in {out}; try with the face pass on" in result.output
    assert out.is_file()  # a warning, not a failure
    quiet = runner.invoke(app, ["photo", str(portrait_file), "-s", eraser, "-o", str(out), "--size", "256",
                                "--no-faces", "--no-check"])
    assert quiet.exit_code == 0 and "warning" not in quiet.output
    with_faces = runner.invoke(app, ["photo", str(portrait_file), "-s", eraser, "-o", str(out), "--size", "256",
                                     "--face-strength", "1"])
    assert "try face strength 0.75" in with_faces.output


@pytest.mark.slow
def test_batch_lists_photos_with_lost_faces(eraser: str, tmp_path: Path, astronaut: np.ndarray) -> None:
    (tmp_path / "in").mkdir()
    Image.fromarray(astronaut).save(tmp_path / "in" / "face.png")
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(tmp_path / "in" / "wall.png")  # no face to lose
    result = runner.invoke(app, ["batch", str(tmp_path / "in"), str(tmp_path / "out"), "-s", eraser,
                                 "--size", "256", "--no-faces"])
    assert result.exit_code == 0, result.output  # written, so not a failure
    assert "2 written" in result.output
    assert "1 written with faces that may not be recognisable" in result.output
    assert "face.png; try with the face pass on" in result.output and "wall.png;" not in result.output


def test_face_lightness_shift_is_measured_against_the_rest() -> None:
    """The fairness benchmark's measure: a face darkened more than its surroundings shows a negative shift."""
    from benchmarks.faces import face_shifts

    photo = np.full((40, 40, 3), 150, np.uint8)
    face = np.zeros((40, 40), bool)
    face[10:20, 10:20] = True
    output = photo.copy()
    output[...] = 170  # the whole image lightened ...
    output[face] = 130  # ... but the face darkened
    ((against_rest, alone),) = face_shifts(photo, output, [face])
    assert against_rest < -10 and -10 < alone < 0  # darker than the rest's change; a little darker itself
    assert face_shifts(photo, np.full_like(photo, 170), [face])[0][0] == pytest.approx(0, abs=0.5)
