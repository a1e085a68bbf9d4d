"""Every output says what it is: the IPTC 'trained algorithmic media' source type, software, style and options."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import stylize
from conftest import TEST_STYLE
from stylize.cli import app
from stylize.provenance import DIGITAL_SOURCE_TYPE, read_provenance

runner = CliRunner()


def provenance_of(path: Path) -> dict[str, str]:
    with Image.open(path) as image:
        xmp = image.info.get("xmp")
    assert xmp, f"{path.name}: no XMP packet"
    return read_provenance(xmp)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".tif"])
def test_outputs_carry_provenance_in_every_format(catalogue: Path, portrait_file: Path, tmp_path: Path,
                                                  ext: str) -> None:
    out = tmp_path / f"out{ext}"
    result = runner.invoke(app, ["photo", str(portrait_file), "-s", TEST_STYLE, "-o", str(out), "--size", "128",
                                 "--strength", "0.7", "--no-faces", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    fields = provenance_of(out)
    assert fields["DigitalSourceType"] == DIGITAL_SOURCE_TYPE
    assert fields["CreatorTool"].startswith("stylize")
    assert fields["Style"] == TEST_STYLE and fields["StyleTitle"] == "Test style"
    assert fields["StyleArtist"] == "pytest" and "pytest" in fields["description"]
    options = json.loads(fields["Options"])
    assert options["strength"] == 0.7 and options["faces"] is False and options["size"] == 128
    assert np.asarray(Image.open(out)).shape[:2] == (512, 512)  # the photo itself is intact


def test_no_provenance_writes_none(catalogue: Path, portrait_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "plain.jpg"
    result = runner.invoke(app, ["photo", str(portrait_file), "-s", TEST_STYLE, "-o", str(out), "--size", "128",
                                 "--no-faces", "--no-provenance"])
    assert result.exit_code == 0, result.output
    assert "xmp" not in Image.open(out).info


def test_batch_outputs_carry_provenance(catalogue: Path, tmp_path: Path, astronaut: np.ndarray) -> None:
    (tmp_path / "in").mkdir()
    Image.fromarray(astronaut).save(tmp_path / "in" / "a.png")
    result = runner.invoke(app, ["batch", str(tmp_path / "in"), str(tmp_path / "out"), "-s", TEST_STYLE,
                                 "--size", "128", "--no-faces"])
    assert result.exit_code == 0, result.output
    assert provenance_of(tmp_path / "out" / "a.png")["Style"] == TEST_STYLE


def test_api_returns_provenance_and_to_file_writes_it(catalogue: Path, portrait_file: Path, tmp_path: Path) -> None:
    painter = stylize.Stylizer(TEST_STYLE, device="cpu")
    image = painter(portrait_file, size=128, faces=False)
    assert read_provenance(image.info["xmp"])["DigitalSourceType"] == DIGITAL_SOURCE_TYPE
    image.save(tmp_path / "saved.jpg", xmp=image.info["xmp"])
    assert provenance_of(tmp_path / "saved.jpg")["Style"] == TEST_STYLE
    painter.to_file(portrait_file, tmp_path / "direct.webp", size=128, faces=False)
    assert provenance_of(tmp_path / "direct.webp")["Style"] == TEST_STYLE
    assert "xmp" not in painter(portrait_file, size=128, faces=False, provenance=False).info


def test_api_image_carries_the_photos_exif_and_profile(catalogue: Path, tmp_path: Path, astronaut: np.ndarray) -> None:
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    Image.fromarray(astronaut).save(tmp_path / "in.jpg", exif=exif, icc_profile=None)
    image = stylize.Stylizer(TEST_STYLE, device="cpu")(tmp_path / "in.jpg", size=128, faces=False)
    image.save(tmp_path / "out.jpg", **image.info)
    saved = Image.open(tmp_path / "out.jpg")
    assert saved.getexif()[0x010F] == "TestCam" and "xmp" in saved.info
