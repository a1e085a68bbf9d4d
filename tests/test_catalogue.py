"""The multi-style catalogue through the API and the CLI: styles as rows of one trunk, and blends of them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import stylize
from conftest import PROJECT, install_catalogue_rows, install_shipped_style, needs_torch, shipped_row_pair, tampered


@pytest.fixture()
def rows_catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``warm`` and ``cool``: two rows of a shipped multi-style trunk (two paintings); ``solo``: a whole network."""
    install_catalogue_rows(tmp_path, dict(zip(("warm", "cool"), shipped_row_pair())))
    for name in ("warm", "cool"):
        meta_path = tmp_path / "styles" / f"{name}.json"
        meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "licence": "CC0"}))
    install_shipped_style(tmp_path, "starry_night", "solo", title="Solo")
    monkeypatch.setenv("STYLIZE_HOME", str(tmp_path))
    return tmp_path


def test_rows_are_styles_and_blends_lie_between_them(rows_catalogue: Path, astronaut: np.ndarray) -> None:
    assert [s.name for s in stylize.list_styles()] == ["cool", "solo", "warm"]
    photo = astronaut[::2, ::2]
    warm, cool, half = (np.asarray(stylize.stylize(photo, spec, device="cpu", faces=False), np.float64)
                        for spec in ("warm", "cool", "warm:0.5,cool:0.5"))
    apart = np.abs(warm - cool).mean()
    assert apart > 5
    assert np.abs(half - warm).mean() < 0.8 * apart and np.abs(half - cool).mean() < 0.8 * apart
    mostly_warm = np.asarray(stylize.stylize(photo, "warm:9,cool:1", device="cpu", faces=False), np.float64)
    assert np.abs(mostly_warm - warm).mean() < np.abs(half - warm).mean()  # shares are normalised weights


@pytest.mark.parametrize("spec, message", [
    ("warm:0", "positive share"), ("warm:x", "positive share"), ("warm:-1,cool:1", "positive share"),
    ("warm:inf", "positive share"), ("warm:1,warm:1", "twice"), ("warm:1,solo:1", "one multi-style network"),
    ("warm:1,nope:1", "unknown style 'nope'"), ("../warm", "unknown style"),
])
def test_bad_blends_are_clear_errors(rows_catalogue: Path, spec: str, message: str) -> None:
    with pytest.raises(stylize.StylizeError, match=message):
        stylize.Stylizer(spec, device="cpu")


def test_shipped_rows_blend_within_their_trunk_and_whole_networks_with_nothing(astronaut: np.ndarray) -> None:
    """A shipped trunk has styles that blend; a row means something only on the convolutions it was learnt with,
    so a style that is a network of its own blends with nothing."""
    by_trunk: dict[str, list[str]] = {}
    for style in stylize.list_styles():
        if style.trunk is not None:
            by_trunk.setdefault(style.trunk.stem, []).append(style.name)
    blending = next(names for names in by_trunk.values() if len(names) >= 2)  # a trunk with styles to blend
    first, second = blending[:2]
    other = next(style.name for style in stylize.list_styles() if style.trunk is None)
    with pytest.raises(stylize.StylizeError, match="one multi-style network"):
        stylize.Stylizer(f"{first}:0.5,{other}:0.5", device="cpu")
    photo = astronaut[::4, ::4]
    painted = {spec: np.asarray(stylize.stylize(photo, spec, device="cpu", faces=False), np.float64)
               for spec in (first, second, other, f"{first}:0.5,{second}:0.5")}
    assert np.abs(painted[first] - painted[other]).mean() > 5
    assert np.abs(painted[f"{first}:0.5,{second}:0.5"] - painted[first]).mean() > 1


def test_a_replaced_trunk_is_refused(rows_catalogue: Path) -> None:
    trunk = rows_catalogue / "weights" / "trunks" / "catalogue.safetensors"
    tampered(trunk, lambda t: t.__setitem__("to_rgb.1.bias", t["to_rgb.1.bias"] + 1)).replace(trunk)  # still valid
    with pytest.raises(stylize.BadWeightsError, match="sha256"):
        stylize.Stylizer("warm", device="cpu")


def test_cli_blend_names_its_output_safely(rows_catalogue: Path, portrait_file: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "stylize.cli", "photo", str(portrait_file), "-s",
                             "warm:0.6,cool:0.4", "--no-faces", "--no-check", "--device", "cpu"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    written = portrait_file.with_name("portrait_warm-0.6+cool-0.4.png")
    assert written.is_file()
    from PIL import Image

    from stylize.provenance import read_provenance

    with Image.open(written) as image:
        fields = read_provenance(image.info["XML:com.adobe.xmp"])
    assert fields["Style"] == "warm:0.6,cool:0.4" and fields["StyleTitle"] == "Warm + Cool"


def test_a_style_brings_its_own_face_strength(rows_catalogue: Path, astronaut: np.ndarray) -> None:
    """Strong styles keep faces with a lower face strength: styles/NAME.json may set it; an explicit value wins."""
    meta_path = rows_catalogue / "styles" / "warm.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "face_strength": 0.0}))
    painter = stylize.Stylizer("warm", device="cpu")
    assert painter.pipeline.resolved(stylize.api.make_options()).face_strength == 0.0
    face = (slice(60, 180), slice(180, 300))  # the astronaut's face
    own_default, explicit = (np.asarray(painter(astronaut, **extra), np.float64)[face]
                             for extra in ({}, {"face_strength": 1.0}))
    original = astronaut[face].astype(np.float64)
    assert np.abs(own_default - original).mean() < 0.75 * np.abs(explicit - original).mean()  # (colours are matched)
    assert stylize.Stylizer("cool", device="cpu").pipeline.resolved(stylize.api.make_options()).face_strength == 0.6
    assert stylize.catalogue.select("warm:1,cool:1").face_strength == pytest.approx(0.3)


def test_style_records_come_from_the_data_readme_and_keep_what_is_there(tmp_path: Path) -> None:
    from scripts.styles_metadata import painting_rows, record

    readme = tmp_path / "README.md"
    readme.write_text(
        "| file | work | artist (died) | date | status | taken from | commit | path | size |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        "| the_scream.jpg | The Scream — tempera and crayon | Edvard Munch (1944) | 1893 | public domain | a/b | "
        "0123 | `images/the_scream.jpg` | 1200x1528 |\n", encoding="utf-8")
    rows = painting_rows(readme)
    made = record("the_scream", rows["the_scream"])
    assert (made["title"], made["artist"], made["artist_died"], made["year"]) == ("The Scream", "Edvard Munch", 1944,
                                                                                   "1893")
    assert made["provenance"]["path"] == "images/the_scream.jpg" and made["licence"].startswith("public domain")
    folder = tmp_path / "styles"
    folder.mkdir()
    (folder / "the_scream.json").write_text(json.dumps({"title": "Kept title", "weights_sha256": "ab"}))
    script = Path(__file__).resolve().parents[1] / "scripts" / "styles_metadata.py"
    result = subprocess.run([sys.executable, str(script), str(readme), str(folder), "the_scream"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    merged = json.loads((folder / "the_scream.json").read_text())
    assert merged["title"] == "Kept title" and merged["weights_sha256"] == "ab" and merged["artist"] == "Edvard Munch"


@needs_torch  # a new trunk needs its graph exported
def test_promote_ships_a_candidate_catalogue_and_keeps_what_was_checked_by_hand(
        rows_catalogue: Path, astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.numpy import load_file, save_file

    from scripts.promote import main as promote
    from stylize.weights import file_sha256, read_metadata

    before = {name: np.asarray(stylize.stylize(astronaut[::4, ::4], name, device="cpu", faces=False))
              for name in ("warm", "cool", "solo")}
    shipped_meta = json.loads((rows_catalogue / "styles" / "warm.json").read_text())
    # the candidate: the same trunk with one convolution changed, rows re-made for it, as a training export
    export = rows_catalogue / "runs" / "export-candidate"
    (export / "weights" / "trunks").mkdir(parents=True)
    (export / "styles").mkdir()
    trunk = rows_catalogue / "weights" / "trunks" / "catalogue.safetensors"
    tensors = load_file(str(trunk))
    last = next(name for name, tensor in tensors.items() if tensor.ndim == 4 and tensor.shape[0] == 3)
    tensors[last] = tensors[last] * np.float16(1.5)  # the output convolution: no norm after it
    new_trunk = export / "weights" / "trunks" / "candidate.safetensors"
    save_file(tensors, str(new_trunk), metadata=read_metadata(trunk))
    shutil.copyfile(rows_catalogue / "weights" / "cool.safetensors",
                    export / "weights" / "trunks" / "candidate.identity.safetensors")
    for name in ("warm", "cool"):
        row = export / "weights" / f"{name}.safetensors"
        save_file(load_file(str(rows_catalogue / "weights" / f"{name}.safetensors")), str(row),
                  metadata={**read_metadata(rows_catalogue / "weights" / f"{name}.safetensors"),
                            "trunk_sha256": file_sha256(new_trunk)})
        Image.fromarray(astronaut[::8, ::8]).save(export / "styles" / f"{name}.jpg")
        (export / "styles" / f"{name}.json").write_text(json.dumps({
            "name": name, "architecture": {"widths": [0]}, "trunk": "candidate",
            "trunk_sha256": file_sha256(new_trunk), "weights_sha256": file_sha256(row),
            "training": {"recipe": {"init": "weights/trunks/catalogue.safetensors"}, "steps": 7, "seconds": 1.0}}))

    monkeypatch.setattr(sys, "argv", ["promote.py", str(export), "warm", "--root", str(rows_catalogue)])
    promote()

    assert [s.name for s in stylize.list_styles()] == ["solo", "warm"]  # cool did not pass: kept, not shipped
    assert (rows_catalogue / "weights" / "trunks" / "catalogue.unshipped" / "cool.safetensors").is_file()
    assert not (rows_catalogue / "styles" / "cool.json").exists()
    warm = json.loads((rows_catalogue / "styles" / "warm.json").read_text())
    assert warm["title"] == shipped_meta["title"] and warm["licence"] == "CC0"  # checked by hand: kept
    assert warm["trunk"] == "catalogue" and warm["trunk_sha256"] == file_sha256(trunk) == file_sha256(new_trunk)
    assert warm["training"]["steps"] == 7 and warm["training"]["init_weights"]["trunk_sha256"] == \
        shipped_meta["trunk_sha256"]
    assert warm["graph_sha256"] == file_sha256(trunk.with_suffix(".onnx"))
    for engine in ("onnxruntime", "torch"):  # the new trunk paints, on both engines, and differently
        after = np.asarray(stylize.stylize(astronaut[::4, ::4], "warm", device="cpu", faces=False, engine=engine))
        assert np.abs(after.astype(float) - before["warm"]).mean() > 2
    solo = np.asarray(stylize.stylize(astronaut[::4, ::4], "solo", device="cpu", faces=False))
    assert np.array_equal(solo, before["solo"])  # a whole-network style is not touched


@needs_torch  # promotion re-exports the graphs
def test_promote_records_what_a_whole_network_was_trained_from(
        rows_catalogue: Path, astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """From the shipped weights: the shipped record is chained on. From a candidate that never shipped: only that
    candidate's checksum (the shipped record is no ancestor)."""
    from scripts.promote import main as promote
    from stylize.weights import file_sha256

    shipped = rows_catalogue / "weights" / "solo.safetensors"
    export = rows_catalogue / "runs" / "export-solo"
    (export / "weights").mkdir(parents=True)
    (export / "styles").mkdir()
    shutil.copyfile(shipped, export / "weights" / "solo.safetensors")
    Image.fromarray(astronaut[::8, ::8]).save(export / "styles" / "solo.jpg")
    never_shipped = "ab" * 32
    for init_sha256 in (file_sha256(shipped), never_shipped):
        before = json.loads((rows_catalogue / "styles" / "solo.json").read_text())
        (export / "styles" / "solo.json").write_text(json.dumps({
            "name": "solo", "architecture": before["architecture"], "weights_sha256": file_sha256(shipped),
            "training": {"recipe": {"init": "runs/x/weights/solo.safetensors"}, "init_sha256": init_sha256,
                         "steps": 7, "seconds": 1.0}}))
        monkeypatch.setattr(sys, "argv", ["promote.py", str(export), "solo", "--root", str(rows_catalogue)])
        promote()
        after = json.loads((rows_catalogue / "styles" / "solo.json").read_text())
        assert after["title"] == "Solo" and after["training"]["steps"] == 7
        chained = after["training"]["init_weights"]
        if init_sha256 == never_shipped:
            assert chained == {"weights_sha256": never_shipped, "file": "runs/x/weights/solo.safetensors"}
            assert after["training"]["replaces"]["weights_sha256"] == before["weights_sha256"]
        else:
            assert chained["weights_sha256"] == init_sha256 and chained["steps"] == before["training"]["steps"]


@needs_torch  # promotion re-exports the graphs
def test_promote_drops_a_trunk_once_its_last_style_ships_whole(
        rows_catalogue: Path, astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    from scripts.promote import main as promote
    from stylize.weights import file_sha256

    trunks = rows_catalogue / "weights" / "trunks"
    (trunks / "catalogue.unshipped").mkdir()
    shutil.copyfile(rows_catalogue / "weights" / "cool.safetensors", trunks / "catalogue.unshipped" / "old.safetensors")
    export = rows_catalogue / "runs" / "export-whole"
    (export / "weights").mkdir(parents=True)
    (export / "styles").mkdir()
    solo = json.loads((rows_catalogue / "styles" / "solo.json").read_text())
    for name in ("warm", "cool"):  # both rows retrained as whole networks (here: solo's)
        shutil.copyfile(rows_catalogue / "weights" / "solo.safetensors", export / "weights" / f"{name}.safetensors")
        Image.fromarray(astronaut[::8, ::8]).save(export / "styles" / f"{name}.jpg")
        (export / "styles" / f"{name}.json").write_text(json.dumps({
            "name": name, "architecture": solo["architecture"], "weights_sha256": solo["weights_sha256"],
            "training": {"recipe": {}, "init_sha256": file_sha256(rows_catalogue / "weights" / "solo.safetensors"),
                         "steps": 7, "seconds": 1.0}}))
    monkeypatch.setattr(sys, "argv", ["promote.py", str(export), "warm", "--root", str(rows_catalogue)])
    promote()
    assert (trunks / "catalogue.safetensors").is_file()  # cool still paints with it
    monkeypatch.setattr(sys, "argv", ["promote.py", str(export), "cool", "--root", str(rows_catalogue)])
    promote()
    assert list(trunks.iterdir()) == []  # weights, graph and unshipped rows gone with the last style
    assert [style.trunk for style in stylize.list_styles()] == [None, None, None]
    painted = np.asarray(stylize.stylize(astronaut[::4, ::4], "cool", device="cpu", faces=False))
    assert np.array_equal(painted, np.asarray(stylize.stylize(astronaut[::4, ::4], "solo", device="cpu", faces=False)))


@needs_torch  # promotion re-exports the graphs
def test_unship_keeps_a_style_and_why_outside_the_package(
        rows_catalogue: Path, astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    from scripts.promote import main as promote

    solo_weights = (rows_catalogue / "weights" / "solo.safetensors").read_bytes()
    monkeypatch.setattr(sys, "argv", ["promote.py", "--unship", "solo", "--why", "misses a target",
                                      "--root", str(rows_catalogue)])
    promote()
    kept = rows_catalogue / "weights" / "unshipped"
    assert (kept / "solo.safetensors").read_bytes() == solo_weights
    assert json.loads((kept / "solo.json").read_text())["unshipped"] == "misses a target"
    assert not list(rows_catalogue.glob("*/solo.*")) and sorted(s.name for s in stylize.list_styles()) == ["cool", "warm"]
    with pytest.raises(stylize.StylizeError, match="solo"):
        stylize.stylize(astronaut[::8, ::8], "solo", device="cpu")
    monkeypatch.setattr(sys, "argv", ["promote.py", "--unship", "warm", "cool", "--why", "x", "--root",
                                      str(rows_catalogue)])
    promote()  # the trunk's last styles: the trunk goes with them
    assert stylize.list_styles() == [] and list((rows_catalogue / "weights" / "trunks").iterdir()) == []
    for argv, message in ((["--unship", "solo", "--why", "x"], "not a shipped style"), (["--unship", "solo"], None)):
        monkeypatch.setattr(sys, "argv", ["promote.py", *argv, "--root", str(rows_catalogue)])
        with pytest.raises(SystemExit, match=message):
            promote()


@needs_torch  # promotion re-exports the graphs
def test_promote_ships_rows_learnt_on_the_shipped_trunk_and_nothing_else(
        rows_catalogue: Path, astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.numpy import load_file, save_file

    from scripts.promote import main as promote
    from stylize.weights import file_sha256, read_metadata

    photo = astronaut[::4, ::4]
    before = {name: np.asarray(stylize.stylize(photo, name, device="cpu", faces=False)) for name in ("warm", "cool")}
    trunks = rows_catalogue / "weights" / "trunks"
    unshipped = trunks / "catalogue.unshipped"
    unshipped.mkdir()
    for name, row in (("late", "cool"), ("other", "warm")):  # rows that did not pass when the trunk was trained
        shutil.copyfile(rows_catalogue / "weights" / f"{row}.safetensors", unshipped / f"{name}.safetensors")
    # the candidate: ``late`` trained on (``stylize train --trunk ... --export-to``): its row changed, the same trunk
    export = rows_catalogue / "runs" / "export-late"
    (export / "weights" / "trunks").mkdir(parents=True)
    (export / "styles").mkdir()
    shutil.copyfile(trunks / "catalogue.safetensors", export / "weights" / "trunks" / "catalogue.safetensors")
    row = export / "weights" / "late.safetensors"
    tensors = {key: value + np.float32(0.5) if key.endswith("norm.bias") else value
               for key, value in load_file(str(unshipped / "late.safetensors")).items()}
    save_file(tensors, str(row), metadata=read_metadata(unshipped / "late.safetensors"))
    Image.fromarray(astronaut[::8, ::8]).save(export / "styles" / "late.jpg")
    (export / "styles" / "late.json").write_text(json.dumps({
        "name": "late", "title": "A Late Painting", "architecture": {"widths": [0]}, "trunk": "catalogue",
        "trunk_sha256": file_sha256(trunks / "catalogue.safetensors"), "weights_sha256": file_sha256(row),
        "training": {"recipe": {"init": str(unshipped / "late.safetensors")}, "steps": 7, "seconds": 1.0}}))

    monkeypatch.setattr(sys, "argv", ["promote.py", str(export), "late", "--root", str(rows_catalogue)])
    promote()

    assert [s.name for s in stylize.list_styles()] == ["cool", "late", "solo", "warm"]
    assert sorted(path.name for path in unshipped.iterdir()) == ["other.safetensors"]  # late left it, other stays
    assert file_sha256(rows_catalogue / "weights" / "late.safetensors") == file_sha256(row)
    shipped = json.loads((rows_catalogue / "styles" / "late.json").read_text())
    assert shipped["title"] == "A Late Painting"  # shipping for the first time: the candidate's whole record
    record = shipped["training"]
    assert record["init_weights"]["weights_sha256"] == file_sha256(rows_catalogue / "weights" / "cool.safetensors")
    for name, painted in before.items():  # the shipped rows and their trunk are untouched
        assert np.array_equal(np.asarray(stylize.stylize(photo, name, device="cpu", faces=False)), painted)
    late = np.asarray(stylize.stylize(photo, "late", device="cpu", faces=False), np.float64)
    assert np.abs(late - before["cool"]).mean() > 2  # its own, trained-on row paints


def test_a_face_row_paints_the_faces_and_nothing_else(tmp_path: Path, astronaut: np.ndarray,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A style's face row (``weights/NAME.face.safetensors``, a row of its own network) paints the aligned face
    crops; the rest of the photo is the style's own row. A row that does not match its record is refused."""
    from safetensors.numpy import save_file

    from stylize.weights import FORMAT_VERSION, NORM_PARAMETERS, file_sha256, read_network

    install_shipped_style(tmp_path, "starry_night", "painted")
    monkeypatch.setenv("STYLIZE_HOME", str(tmp_path))
    network = tmp_path / "weights" / "painted.safetensors"
    own = read_network(network)
    row = {name: np.ascontiguousarray(tensor[0][::-1]) for name, tensor in own.tensors.items()  # another painter
           if name.endswith(NORM_PARAMETERS)}
    face_row = tmp_path / "weights" / "painted.face.safetensors"
    save_file(row, str(face_row), metadata={"format_version": FORMAT_VERSION, "kind": "style-row",
                                             "trunk_sha256": file_sha256(network)})
    plain = np.asarray(stylize.Stylizer("painted", device="cpu")(astronaut, face_strength=1.0), np.int16)
    meta_path = tmp_path / "styles" / "painted.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "face_sha256": file_sha256(face_row)}))
    with_row = np.asarray(stylize.Stylizer("painted", device="cpu")(astronaut, face_strength=1.0), np.int16)
    diff = np.abs(with_row - plain).max(axis=2)
    assert diff[60:180, 170:280].mean() > 5  # her face is painted by the face row
    assert diff[400:].max() == 0 and diff[:, :100].max() == 0  # far from it, the style's own row
    meta_path.write_text(json.dumps({**meta, "face_sha256": "0" * 64}))
    with pytest.raises(stylize.BadWeightsError, match="sha256"):
        stylize.Stylizer("painted", device="cpu")


@needs_torch  # promotion exports the face network's graph
def test_a_face_network_paints_the_faces_on_its_own_graph_until_its_style_is_retrained(
        tmp_path: Path, astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """``promote --face``: a whole network trained from the style's own (here another painter's, for a visible
    change) paints the aligned faces, on each engine, and nothing else; it must come from the shipped network,
    its graph is checked, and a new network for the style drops it."""
    from scripts.promote import main as promote
    from stylize.weights import file_sha256

    install_shipped_style(tmp_path, "starry_night", "painted")
    monkeypatch.setenv("STYLIZE_HOME", str(tmp_path))
    network, record_path = tmp_path / "weights" / "painted.safetensors", tmp_path / "styles" / "painted.json"
    export = tmp_path / "runs" / "face"
    (export / "weights").mkdir(parents=True)
    (export / "styles").mkdir()
    shutil.copyfile(PROJECT / "weights" / "moulin_rouge.safetensors", export / "weights" / "painted.safetensors")

    def candidate(init_sha256: str) -> None:
        (export / "styles" / "painted.json").write_text(json.dumps(
            {"name": "painted", "training": {"recipe": {"content_weight": 4.0}, "init_sha256": init_sha256}}))
        monkeypatch.setattr(sys, "argv", ["promote.py", str(export), "painted", "--face", "--root", str(tmp_path)])
        promote()

    plain = {engine: np.asarray(stylize.Stylizer("painted", device="cpu", engine=engine)(astronaut, face_strength=1.0),
                                np.int16) for engine in ("onnxruntime", "torch")}
    with pytest.raises(SystemExit, match="trained from the shipped painted network"):
        candidate("ab" * 32)
    assert not (tmp_path / "weights" / "painted.face.safetensors").exists()
    candidate(file_sha256(network))
    record = json.loads(record_path.read_text())
    face_graph = tmp_path / "weights" / "painted.face.onnx"
    assert record["face_sha256"] == file_sha256(tmp_path / "weights" / "painted.face.safetensors")
    assert record["face_graph_sha256"] == file_sha256(face_graph) and record["face_training"]["recipe"]
    painted = {}
    for engine in ("onnxruntime", "torch"):
        painted[engine] = np.asarray(stylize.Stylizer("painted", device="cpu", engine=engine)(
            astronaut, face_strength=1.0), np.int16)
        diff = np.abs(painted[engine] - plain[engine]).max(axis=2)
        assert diff[60:180, 170:280].mean() > 5  # her face is the face network's
        assert diff[400:].max() == 0 and diff[:, :100].max() == 0  # far from it, the style's own network
    assert np.abs(painted["onnxruntime"] - painted["torch"]).mean() < 2  # the face graph is that network's
    record_path.write_text(json.dumps({**record, "face_graph_sha256": "0" * 64}))
    with pytest.raises(stylize.BadWeightsError, match="sha256"):
        stylize.Stylizer("painted", device="cpu", engine="onnxruntime")
    record_path.write_text(json.dumps(record))
    shutil.copyfile(network, export / "weights" / "painted.safetensors")  # the style itself retrained
    (export / "styles" / "painted.json").write_text(json.dumps(
        {"name": "painted", "training": {"recipe": {}, "init_sha256": file_sha256(network)}}))
    Image.fromarray(astronaut[::8, ::8]).save(export / "styles" / "painted.jpg")
    monkeypatch.setattr(sys, "argv", ["promote.py", str(export), "painted", "--root", str(tmp_path)])
    promote()
    assert not {"face_sha256", "face_graph_sha256", "face_training"} & set(json.loads(record_path.read_text()))
    assert not (tmp_path / "weights" / "painted.face.safetensors").exists() and not face_graph.exists()
    again = np.asarray(stylize.Stylizer("painted", device="cpu", engine="torch")(astronaut, face_strength=1.0))
    assert np.array_equal(again, plain["torch"])


def test_the_style_record_is_read_and_written_in_one_place(tmp_path: Path) -> None:
    """``StyleRecord``: unknown fields kept, None removes one, UTF-8 as written, a broken file reads as empty, an
    out-of-range face strength falls back to the default."""
    from stylize.options import DEFAULT_FACE_STRENGTH
    from stylize.style_record import StyleRecord

    path = tmp_path / "styles" / "x.json"
    path.parent.mkdir()
    record = StyleRecord({"name": "x", "title": "Émile's Café", "face_strength": 0.8, "trunk": "cat", "notes": [1]})
    record.updated(trunk=None, graph_sha256="ab" * 32).write(path)
    again = StyleRecord.read(path)
    assert "Émile's Café" in path.read_text(encoding="utf-8")  # not \\u-escaped
    assert again.trunk is None and again.sha256("graph_sha256") == "ab" * 32 and again["notes"] == [1]
    assert again.face_strength == 0.8 and again.text("title") == "Émile's Café"
    assert StyleRecord({"face_strength": 7}).face_strength == DEFAULT_FACE_STRENGTH
    path.write_text("{ not json")
    assert dict(StyleRecord.read(path)) == {} and StyleRecord.read(tmp_path / "missing.json").trunk is None
