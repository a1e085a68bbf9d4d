"""Ship styles from a candidate exported by ``stylize train --export-to DIR`` (e.g. a GPU run's runs/export-NAME).

    .venv/bin/python -m scripts.promote runs/export-udnie udnie
    .venv/bin/python -m scripts.promote runs/export-cat256 almond_blossom the_kiss ... --trunk catalogue

A whole-network style: its weights, preview and training record replace the shipped ones. A catalogue (the export
holds weights/trunks/*.safetensors): the trunk and identity row replace the shipped catalogue's (renamed to
``--trunk``; a name not shipped yet adds a second trunk beside it), the named styles ship, and every other row of
the export goes to ``trunks/TRUNK.unshipped/`` (so training can go on from the files); styles of the old trunk that
are not named stop shipping. Rows trained on the shipped trunk itself (``stylize train --trunk``, the export carries
the same trunk): the named rows ship, leaving ``unshipped/``, and nothing else changes. A shipped style's
hand-checked metadata (title, provenance, face strength...) is kept; architecture, training record and checksums
are the candidate's. A trunk that no shipped style paints with any more leaves the package. Then the onnxruntime
graphs are made current (``stylize export``).

    .venv/bin/python -m scripts.promote runs/kiss_face the_kiss --face

A face network (trained from a shipped style's network on aligned face crops, ``docs/training.md``) ships as
``weights/NAME.face.safetensors`` and paints that style's faces; a style's new network drops the old one's.

    .venv/bin/python -m scripts.promote --unship mona_lisa --why "hatching 12 > 2 x the painting's 4"

A style that misses the targets leaves the package: its network, preview and record (with why) go to
``weights/unshipped/``, outside the wheel, so training can go on from them.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from stylize.catalogue import face_weights_path, list_styles
from stylize.engines.onnx import graph_path
from stylize.style_record import StyleRecord
from stylize.export import export_catalogue
from stylize.weights import file_sha256, identity_row, is_trunk

#: What a candidate's record brings; everything else in a shipped record is kept.
FROM_CANDIDATE = ("architecture", "training", "weights_sha256", "trunk", "trunk_sha256")
#: A style's face network (or row) and its graph and training, which are made from its network.
FACE_FIELDS = ("face_sha256", "face_graph_sha256", "face_training")


def network_history(meta: dict) -> dict:
    """A shipped record's network and the run that made it, chained back through what that run started from."""
    before = meta["training"]
    return {**{key: meta[key] for key in ("weights_sha256", "trunk_sha256") if key in meta},
            **{key: before[key] for key in ("steps", "seconds", "init_weights", "replaces", "note") if key in before}}


def ship_style(name: str, export: Path, root: Path, trunk: str | None = None, kept_row: Path | None = None) -> None:
    """Weights (a whole network or a row), preview and merged metadata of ``name`` into the project at ``root``.
    ``kept_row``: the unshipped row a new style was trained on from, recorded like the weights a shipped one left."""
    shutil.copyfile(export / "weights" / f"{name}.safetensors", root / "weights" / f"{name}.safetensors")
    shutil.copyfile(export / "styles" / f"{name}.jpg", root / "styles" / f"{name}.jpg")
    candidate = dict(StyleRecord.read(export / "styles" / f"{name}.json"))
    shipped_path = root / "styles" / f"{name}.json"
    shipped_before = shipped_path.is_file()
    # a style shipping for the first time takes the candidate's whole record (its title and provenance too)
    meta = dict(StyleRecord.read(shipped_path)) if shipped_before else dict(candidate)
    training = candidate["training"]
    # what the run started from (recorded since 2026-11-27; older records started from what shipped)
    init_sha256 = training.get("init_sha256")
    from_shipped = init_sha256 is None or init_sha256 in (meta.get("weights_sha256"), meta.get("trunk_sha256"))
    replaced = network_history(meta) if shipped_before and "training" in meta else None
    if training["recipe"].get("init"):  # warm-started: record from what
        if replaced is not None and from_shipped:
            training["init_weights"] = replaced
        elif kept_row is not None and kept_row.is_file():
            training["init_weights"] = {"weights_sha256": file_sha256(kept_row),
                                        "trunk_sha256": candidate["trunk_sha256"]}
        elif init_sha256 is not None:  # a candidate that never shipped: its own record was not kept
            training["init_weights"] = {"weights_sha256": init_sha256, "file": training["recipe"]["init"]}
    if replaced is not None and training.get("init_weights") is not replaced:
        training["replaces"] = replaced  # started elsewhere: the shipped network's history is kept beside it
    for key in FROM_CANDIDATE:
        meta.pop(key, None)
        if key in candidate:
            meta[key] = candidate[key]
    if trunk:
        meta["trunk"] = trunk
    meta.pop("graph_sha256", None)  # the export below records the current graph's
    if any(key in meta for key in FACE_FIELDS):  # made from the network this one replaces
        print(f"{name}: its face network (or row) was made from the network replaced; it stops shipping")
    for key in FACE_FIELDS:
        meta.pop(key, None)
    StyleRecord(meta).write(shipped_path)
    drop_face(name, root)


def ship_face(name: str, export: Path, root: Path) -> None:
    """``name``'s face network from a candidate trained from the shipped network on face crops (``stylize train
    --init weights/NAME.safetensors --content-dir FACE_CROPS``): it paints the style's aligned face crops; the
    run's record is kept as ``face_training``."""
    record_path = root / "styles" / f"{name}.json"
    if not record_path.is_file():
        raise SystemExit(f"{name} is not a shipped style")
    shipped = StyleRecord.read(record_path)
    training = dict(StyleRecord.read(export / "styles" / f"{name}.json")).get("training", {})
    if training.get("init_sha256") != shipped.sha256("weights_sha256"):
        raise SystemExit(f"{export}: a face network must be trained from the shipped {name} network (--init)")
    face = face_weights_path(root / "weights" / f"{name}.safetensors")
    shutil.copyfile(export / "weights" / f"{name}.safetensors", face)
    shipped.updated(face_sha256=file_sha256(face), face_graph_sha256=None, face_training=training).write(record_path)


def drop_face(name: str, root: Path) -> None:
    face = face_weights_path(root / "weights" / f"{name}.safetensors")
    for path in (face, graph_path(face)):
        path.unlink(missing_ok=True)


def stop_shipping(name: str, root: Path) -> None:
    """``name``'s network (or row), its graph, record and preview leave the project (a trunk's graph stays)."""
    for path in (root / "weights" / f"{name}.safetensors", root / "weights" / f"{name}.onnx",
                 root / "styles" / f"{name}.json", root / "styles" / f"{name}.jpg"):
        path.unlink(missing_ok=True)
    drop_face(name, root)


def unship(name: str, why: str, root: Path) -> None:
    """``name`` stops shipping; its network, preview and record (``unshipped``: why) wait in ``weights/unshipped/``."""
    record_path, kept = root / "styles" / f"{name}.json", root / "weights" / "unshipped"
    if not record_path.is_file():
        raise SystemExit(f"{name} is not a shipped style")
    kept.mkdir(exist_ok=True)
    StyleRecord.read(record_path).updated(unshipped=why, graph_sha256=None, face_graph_sha256=None).write(
        kept / f"{name}.json")
    network = root / "weights" / f"{name}.safetensors"
    for path in (network, face_weights_path(network), root / "styles" / f"{name}.jpg"):
        if path.is_file():
            shutil.copyfile(path, kept / path.name)
    stop_shipping(name, root)


def promote_catalogue(export_trunk: Path, export: Path, root: Path, ship: list[str], trunk: str) -> None:
    trunks = root / "weights" / "trunks"
    shipped_before = {style.name for style in list_styles(root) if style.trunk == trunks / f"{trunk}.safetensors"}
    rows = {path.stem: path for path in (export / "weights").glob("*.safetensors")}
    missing = set(ship) - set(rows)
    if missing:
        raise SystemExit(f"not in {export}: {', '.join(sorted(missing))}")
    shutil.copyfile(export_trunk, trunks / f"{trunk}.safetensors")
    shipped_identity = identity_row(trunks / f"{trunk}.safetensors")
    if identity_row(export_trunk).is_file():  # trained with --identity-style
        shutil.copyfile(identity_row(export_trunk), shipped_identity)
    else:
        shipped_identity.unlink(missing_ok=True)
    unshipped = trunks / f"{trunk}.unshipped"
    shutil.rmtree(unshipped, ignore_errors=True)
    for name, row in rows.items():
        if name in ship:
            ship_style(name, export, root, trunk)
        else:
            unshipped.mkdir(exist_ok=True)
            shutil.copyfile(row, unshipped / row.name)
    for name in shipped_before - set(ship):  # rows of the old trunk that do not pass on the new one
        stop_shipping(name, root)


def promote_rows(export: Path, root: Path, ship: list[str], trunk: str) -> None:
    """Rows learnt on the shipped trunk: only they change, and leave ``unshipped/``."""
    for name in ship:
        kept_row = root / "weights" / "trunks" / f"{trunk}.unshipped" / f"{name}.safetensors"
        ship_style(name, export, root, trunk, kept_row)
        kept_row.unlink(missing_ok=True)


def drop_unused_trunks(root: Path) -> list[str]:
    """Trunks no shipped style paints with any more (their last row shipped as a network of its own): their
    weights, graph, identity row and unshipped rows leave the package (git keeps them)."""
    trunks = root / "weights" / "trunks"
    used = {style.trunk for style in list_styles(root)}
    dropped = [path for path in sorted(trunks.glob("*.safetensors")) if is_trunk(path) and path not in used]
    for trunk in dropped:
        for path in (trunk, trunk.with_suffix(".onnx"), identity_row(trunk)):
            path.unlink(missing_ok=True)
        shutil.rmtree(trunks / f"{trunk.stem}.unshipped", ignore_errors=True)
    return [trunk.stem for trunk in dropped]


def ship_from(export: Path, styles: list[str], trunk: str, root: Path) -> None:
    export_trunks = [path for path in sorted((export / "weights" / "trunks").glob("*.safetensors"))
                     if is_trunk(path)]  # not its identity row
    if len(export_trunks) > 1:
        raise SystemExit(f"{export}: more than one trunk")
    shipped_trunk = root / "weights" / "trunks" / f"{trunk}.safetensors"
    if export_trunks and shipped_trunk.is_file() and file_sha256(export_trunks[0]) == file_sha256(shipped_trunk):
        promote_rows(export, root, styles, trunk)
    elif export_trunks:
        promote_catalogue(export_trunks[0], export, root, styles, trunk)
    else:
        for name in styles:
            ship_style(name, export, root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export", type=Path, nargs="?", help="the candidate: DIR/weights and DIR/styles")
    parser.add_argument("styles", nargs="*", help="the styles to ship")
    parser.add_argument("--unship", nargs="+", default=[], metavar="STYLE", help="styles that stop shipping")
    parser.add_argument("--why", help="with --unship: the targets they miss, kept in their records")
    parser.add_argument("--face", action="store_true",
                        help="the candidate is each named style's face network, trained from its shipped network")
    parser.add_argument("--trunk", default="catalogue",
                        help="the shipped catalogue a candidate trunk replaces (a new name ships a second trunk)")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    if args.unship:
        if not args.why:
            parser.error("--unship needs --why (the targets missed, kept in the record)")
        for name in args.unship:
            unship(name, args.why, args.root)
    elif not (args.export and args.styles):
        parser.error("name a candidate and the styles to ship, or --unship STYLE... --why TEXT")
    elif args.face:
        for name in args.styles:
            ship_face(name, args.export, args.root)
    else:
        ship_from(args.export, args.styles, args.trunk, args.root)
    for trunk in drop_unused_trunks(args.root):
        print(f"weights/trunks/{trunk}: no shipped style paints with it any more; removed")
    for graph, styles in export_catalogue(args.root):
        print(f"{graph}: {', '.join(style.name for style in styles)}")


if __name__ == "__main__":
    main()
