"""Every example of the README runs: the commands of "Using it" (on the astronaut, with the shipped styles) and
the Python API block, so the user's guide cannot rot."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import HAS_TORCH, PROJECT
from stylize.cli import app

README = (PROJECT / "README.md").read_text(encoding="utf-8")


def block_after(heading: str, language: str) -> str:
    """The first fenced code block of ``language`` after ``heading``."""
    start = README.index(heading)
    match = re.search(rf"```{language}\n(.*?)```", README[start:], re.S)
    assert match, f"no {language} block after {heading!r}"
    return match.group(1)


COMMANDS = [line.split("  #")[0].strip() for line in block_after("## Using it", "bash").splitlines()
            if line.startswith("stylize ")]


@pytest.fixture()
def photos(tmp_path: Path, astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The files the examples name: me.jpg, big.jpg and a folder photos/, in a working folder of their own."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STYLIZE_HOME", raising=False)  # the shipped styles
    Image.fromarray(astronaut).save(tmp_path / "me.jpg", quality=90)
    Image.fromarray(astronaut).resize((1024, 1024)).save(tmp_path / "big.jpg", quality=90)
    (tmp_path / "photos" / "trip").mkdir(parents=True)
    shutil.copy(tmp_path / "me.jpg", tmp_path / "photos" / "a.jpg")
    Image.fromarray(astronaut[::-1]).save(tmp_path / "photos" / "trip" / "b.png")
    return tmp_path


def test_the_readme_shows_commands() -> None:
    assert len(COMMANDS) >= 8 and any(c.startswith("stylize batch") for c in COMMANDS)


@pytest.mark.parametrize("command", [c for c in COMMANDS if not c.startswith("stylize serve")])
def test_each_readme_command_runs(photos: Path, command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``stylize serve`` runs for ever: its page is tested in test_web.py."""
    args = shlex.split(command)[1:]
    if args[0] == "export":
        if not HAS_TORCH:
            pytest.skip("stylize export needs torch")
        root = photos / "catalogue"  # exporting never touches the checkout from a test
        for folder in ("styles", "weights"):
            shutil.copytree(PROJECT / folder, root / folder, ignore=shutil.ignore_patterns("*.unshipped"))
        monkeypatch.setenv("STYLIZE_HOME", str(root))
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, f"{command}\n{result.output}"
    written = {"photo": lambda: args[args.index("-o") + 1] if "-o" in args else None}.get(args[0], lambda: None)()
    if written:
        assert Image.open(photos / written).size == (512, 512)
    if args[0] == "batch":
        assert sorted(p.relative_to(photos / "styled").as_posix() for p in (photos / "styled").rglob("*.*")) == \
            ["a_starry.jpg", "trip/b_starry.png"]
    if args[0] == "preview":
        assert (photos / "sheet" / "me_contact_sheet.jpg").is_file()


def test_the_readme_api_block_runs(photos: Path) -> None:
    code = block_after("### Python API", "python")
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 -- the README's own example
    for written in ("me_starry.jpg", "me_starry.png"):
        assert Image.open(photos / written).size == (512, 512)
