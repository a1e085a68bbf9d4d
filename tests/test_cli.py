"""The CLI: same pixels as the API, one-line errors with exit status 2, batches that lose nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from benchmarks import batch_soak
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import stylize
from conftest import TEST_STYLE
from stylize.cli import app

runner = CliRunner()


def run(*args: str) -> "CliRunner.invoke":  # type: ignore[name-defined]
    return runner.invoke(app, [str(a) for a in args])


def test_help_is_fast_and_does_not_import_torch() -> None:
    code = ("import sys; from stylize.cli import app; "
            "assert 'torch' not in sys.modules and 'mediapipe' not in sys.modules, 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True)
    result = subprocess.run([sys.executable, "-m", "stylize.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "photo" in result.stdout and "batch" in result.stdout


def test_photo_matches_the_api(catalogue: Path, portrait_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.png"
    result = run("photo", portrait_file, "-s", TEST_STYLE, "-o", out, "--device", "cpu", "--strength", "0.8")
    assert result.exit_code == 0, result.output
    api = stylize.Stylizer(TEST_STYLE, device="cpu")(portrait_file, strength=0.8)
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(api))


def test_photo_default_output_is_beside_the_input(catalogue: Path, portrait_file: Path) -> None:
    result = run("photo", portrait_file, "-s", TEST_STYLE, "--no-faces", "--size", "128")
    assert result.exit_code == 0, result.output
    assert (portrait_file.parent / f"portrait_{TEST_STYLE}.png").is_file()


@pytest.mark.parametrize("case", ["unknown_style", "not_image", "empty", "truncated", "missing", "same_as_input",
                                  "bomb", "bad_strength", "hostile_style", "bad_extension"])
def test_user_errors_are_one_line_exit_2(catalogue: Path, portrait_file: Path, tmp_path: Path, case: str) -> None:
    args = ["photo", portrait_file, "-s", TEST_STYLE, "-o", tmp_path / "o.png"]
    expect = ""
    if case == "unknown_style":
        args[3], expect = "van_gogh", TEST_STYLE  # the message lists valid styles
    elif case == "hostile_style":
        args[3], expect = "../../weights/x", "unknown style"
    elif case in ("not_image", "empty", "truncated"):
        bad = tmp_path / "bad.jpg"
        data = {"not_image": b"hello", "empty": b"", "truncated": portrait_file.read_bytes()[:300]}[case]
        bad.write_bytes(data)
        args[1], expect = bad, "bad.jpg"
    elif case == "missing":
        args[1], expect = tmp_path / "nope.jpg", "no such file"
    elif case == "same_as_input":
        args[5], expect = portrait_file, "overwrite the input"
    elif case == "bomb":
        args += ["--max-megapixels", "0.1"]
        expect = "exceeds the limit"
    elif case == "bad_strength":
        args += ["--strength", "3"]
    elif case == "bad_extension":
        args[5], expect = tmp_path / "o.xyz", "extension"
    before = portrait_file.read_bytes()
    result = subprocess.run([sys.executable, "-m", "stylize.cli", *map(str, args)], capture_output=True, text=True,
                            env={**os.environ, "STYLIZE_HOME": str(catalogue)})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    if expect:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and expect in lines[0], result.stderr
    assert portrait_file.read_bytes() == before


def make_folder(root: Path, astronaut: np.ndarray) -> Path:
    src = root / "in"
    (src / "sub dir").mkdir(parents=True)
    small = Image.fromarray(astronaut).resize((160, 160))
    small.save(src / "a.jpg")
    small.save(src / "a.png")  # same stem, different extension
    small.save(src / "sub dir" / "ünïcode name.png")
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (src / "dir.jpg").mkdir()
    os.symlink(src / "nowhere.jpg", src / "dangling.jpg")
    (src / "notes.txt").write_text("not a photo, not a failure")
    return src


def test_batch_writes_good_reports_bad_and_leaves_input_untouched(catalogue: Path, tmp_path: Path,
                                                                  astronaut: np.ndarray) -> None:
    src = make_folder(tmp_path, astronaut)
    before = batch_soak.tree_digest(src)
    out = src / "out"  # inside the input: must not be re-read
    result = run("batch", src, out, "-s", TEST_STYLE, "--recursive", "--suffix", "_art", "--size", "128")
    assert result.exit_code == 1, result.output
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["a_art.jpg", "a_art.png", "sub dir/ünïcode name_art.png"]
    for path in out.rglob("*.*"):
        Image.open(path).verify()
    for bad in ("broken.jpg", "dir.jpg", "dangling.jpg"):
        assert result.output.count(bad) == 1, result.output  # each failure once, its path once
    assert "3 written" in result.output and "3 failed" in result.output
    after = batch_soak.tree_digest(src)
    assert {k: v for k, v in after.items() if not k.startswith("out")} == before

    again = run("batch", src, out, "-s", TEST_STYLE, "--recursive", "--suffix", "_art", "--skip-existing")
    assert "0 written, 3 skipped" in again.output


def test_batch_reads_heic_photos(catalogue: Path, tmp_path: Path, astronaut: np.ndarray) -> None:
    """Phones save HEIC: read through pillow-heif, written as JPEG (not skipped without a word)."""
    src = tmp_path / "phone"
    src.mkdir()
    Image.fromarray(astronaut).save(src / "IMG_0001.HEIC", quality=90)
    result = run("batch", src, tmp_path / "out", "-s", TEST_STYLE, "--size", "128")
    assert result.exit_code == 0, result.output
    written = Image.open(tmp_path / "out" / "IMG_0001.jpg")
    assert written.format == "JPEG" and written.size == (512, 512)


def test_batch_without_photos_is_an_error(catalogue: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run("batch", tmp_path / "empty", tmp_path / "out", "-s", TEST_STYLE)
    assert result.exit_code == 2 and "no photos" in result.output


def test_batch_into_its_own_folder_needs_a_suffix(catalogue: Path, tmp_path: Path, astronaut: np.ndarray) -> None:
    Image.fromarray(astronaut).save(tmp_path / "a.jpg")
    before = (tmp_path / "a.jpg").read_bytes()
    result = run("batch", tmp_path, tmp_path, "-s", TEST_STYLE)
    assert result.exit_code == 2 and "overwrite" in result.output
    assert (tmp_path / "a.jpg").read_bytes() == before


def test_styles_and_preview(catalogue: Path, portrait_file: Path, tmp_path: Path) -> None:
    listing = run("styles")
    assert listing.exit_code == 0 and TEST_STYLE in listing.output
    result = run("preview", portrait_file, "-o", tmp_path / "prev", "--size", "128", "--device", "cpu")
    assert result.exit_code == 0, result.output
    sheet = Image.open(tmp_path / "prev" / "portrait_contact_sheet.jpg")
    assert sheet.width >= 2 * 300  # original + one style
    assert (tmp_path / "prev" / f"portrait_{TEST_STYLE}.jpg").is_file()


@pytest.mark.parametrize("names", [("a.JPG", "a.jpg"), ("b.gif", "b.png"), ("c.jfif", "c.jpe")])
def test_batch_refuses_inputs_that_would_share_an_output(catalogue: Path, tmp_path: Path, astronaut: np.ndarray,
                                                         names: tuple[str, str]) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for name in names:
        Image.fromarray(astronaut[::8, ::8]).save(src / name, format="JPEG" if "j" in name.lower() else None)
    result = run("batch", src, tmp_path / "out", "-s", TEST_STYLE, "--size", "64")
    assert result.exit_code == 2, result.output
    assert "overwrite each other" in result.output and all(name in result.output for name in names)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_batch_rerun_into_its_own_folder_does_not_restylise_outputs(catalogue: Path, tmp_path: Path,
                                                                    astronaut: np.ndarray) -> None:
    Image.fromarray(astronaut[::4, ::4]).save(tmp_path / "a.jpg")
    for _ in range(2):
        result = run("batch", tmp_path, tmp_path, "-s", TEST_STYLE, "--suffix", "_art", "--size", "64")
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "a_art.jpg"]
    # an output renamed by the user is still recognised by the provenance stylize wrote into it
    (tmp_path / "a_art.jpg").rename(tmp_path / "holiday.jpg")
    result = run("batch", tmp_path, tmp_path, "-s", TEST_STYLE, "--suffix", "_art", "--size", "64")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "a_art.jpg", "holiday.jpg"]


def test_style_names_are_never_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A name is what people copy into -s: whole in a narrow terminal or a pipe; --json gives the records."""
    import json

    from conftest import install_shipped_style

    install_shipped_style(tmp_path, "starry_night", TEST_STYLE)
    install_shipped_style(tmp_path, "starry_night", "a_rather_long_style_name_x", title="A title (with a note)")
    monkeypatch.setenv("STYLIZE_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "60")
    result = run("styles")
    assert result.exit_code == 0 and "a_rather_long_style_name_x" in result.output and TEST_STYLE in result.output
    assert "with a note" not in result.output
    records = json.loads(run("styles", "--json").output)
    assert [r["name"] for r in records] == ["a_rather_long_style_name_x", TEST_STYLE]
    assert records[0]["title"] == "A title (with a note)"


def test_one_option_schema_feeds_cli_and_api() -> None:
    """Every option's default lives in Options; the CLI and the API take theirs from it."""
    import inspect
    from dataclasses import fields

    from stylize.cli import batch, photo
    from stylize.options import Options

    defaults = {f.name: f.default for f in fields(Options)}
    api = inspect.signature(stylize.Stylizer.__call__).parameters
    for name, param in api.items():
        if name in defaults:
            assert param.default == defaults[name], name
    for command in (photo, batch):
        cli = {k: v.default.default for k, v in inspect.signature(command).parameters.items()
               if hasattr(v.default, "default")}
        for name in ("strength", "face_strength", "preserve_colors", "faces", "size", "quality", "check",
                     "provenance"):
            assert cli[name] == defaults[name], (command.__name__, name)
        assert cli["max_megapixels"] * 1e6 == defaults["max_pixels"]


def test_batch_guards_live_in_the_batch_module_for_the_api_too(tmp_path: Path) -> None:
    from stylize.batch import plan_jobs

    with pytest.raises(stylize.StylizeError, match="overwrite the photos") as caught:
        plan_jobs(tmp_path, tmp_path, recursive=False, suffix="")
    with pytest.raises(stylize.StylizeError, match="path separator") as separator:
        plan_jobs(tmp_path, tmp_path / "out", recursive=False, suffix="a/b")
    assert "--" not in str(caught.value) + str(separator.value)  # no CLI flags in what API callers read
