"""Write styles/NAME.json records (title, artist, year, provenance, licence) for paintings of the shared data.

    .venv/bin/python -m scripts.styles_metadata ../shared/data/README.md runs/candidates/styles the_scream ...

Reads the provenance tables of the shared data's README (one row per painting file) and writes
or merges ``FOLDER/NAME.json`` for each name; keys a record already has are kept, so a shipped
style's hand-checked fields are never overwritten. Training merges its record into the same
file, so run this before exporting a new style (``stylize train --export-to``).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from stylize.style_record import StyleRecord

#: Short titles where the README's "work" cell is a description rather than a title.
SHORT_TITLES = {
    "calavera": "Calavera (broadside skeleton print; title not verified)", "the_dance": "Dance (I)",
    "red_fuji": "Fine Wind, Clear Morning (Red Fuji)", "toyokawa_bridge": "Yoshida: Toyokawa Bridge",
    "signac_meadow": "Comblat-le-Château, the Meadow (Opus 161)", "tahitian_women": "Tahitian women by a pool",
    "chestnut_trees": "Chestnut Trees at the Jas de Bouffan",
    "earthly_delights": "The Garden of Earthly Delights (centre panel)",
    "metzinger_portrait": "Portrait of Jean Metzinger", "grande_jatte": "A Sunday on La Grande Jatte",
    "shipwreck_minotaur": "The Shipwreck of the Minotaur", "great_wave": "The Great Wave off Kanagawa",
    "udnie": "Udnie", "castle_fairy_tale": "Castle Fairy Tale",
}
REPRODUCTION = ("photographic reproduction of a 2D public-domain work carries no new copyright in the US and "
                "the EU")


def painting_rows(readme: Path) -> dict[str, list[str]]:
    """name -> the nine cells of its row: file, work, artist (died), date, status, repository, commit, path, size."""
    rows = {}
    for line in readme.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 9 and cells[0].endswith(".jpg") and cells[0] != "file":
            rows[cells[0][:-4]] = cells
    return rows


def record(name: str, cells: list[str]) -> dict:
    file, work, artist, date, status, repository, commit, path, size = cells
    died = re.match(r"(.*) \((\d{4})\)$", artist)
    if died is None:
        raise SystemExit(f"{name}: artist cell {artist!r} is not 'Name (year of death)'")
    licence = f"public domain (work); {REPRODUCTION}" if status == "public domain" else f"{status}; {REPRODUCTION}"
    return {
        "name": name, "title": SHORT_TITLES.get(name, work.split(" — ")[0].strip()), "artist": died.group(1),
        "artist_died": int(died.group(2)), "year": date, "work": work,
        "provenance": {"repository": repository, "commit": commit, "path": path.strip("`"), "source_size": size,
                       "training_copy": f"../shared/data/styles/{file} (longer side at most 1024, JPEG q92)"},
        "licence": licence,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("readme", type=Path, help="the shared data's README.md")
    parser.add_argument("folder", type=Path, help="where the styles' JSON records go")
    parser.add_argument("names", nargs="+")
    args = parser.parse_args()
    rows = painting_rows(args.readme)
    args.folder.mkdir(parents=True, exist_ok=True)
    for name in args.names:
        if name not in rows:
            raise SystemExit(f"{name}: no row for {name}.jpg in {args.readme}")
        path = args.folder / f"{name}.json"
        existing = StyleRecord.read(path)
        StyleRecord({**record(name, rows[name]), **existing}).write(path)
        print(path)


if __name__ == "__main__":
    main()
