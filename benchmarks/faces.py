"""Face survival: are the people in a portrait still there after stylising, and is every group treated alike?

    .venv/bin/python -m benchmarks.faces --styles starry_night great_wave udnie

Reference faces: MediaPipe's full-range detector on each evaluation photo (whole image and
tiles) and a face mesh per face, as the pipeline finds them; only faces with a mesh count.
A face survives when the face mesh, run on the output at the same crop, is found again with
its five key points (eyes, nose tip, mouth corners) within half an inter-ocular distance
(``stylize.faces.FaceFinder.check``, the test behind the CLI's warning). Also reported: the
median, over surviving faces, of the median landmark drift in inter-ocular distances.

Per group (``portrait_groups.tsv``: skin tone, age band, single or group photo, labelled by
eye): survival, and how much the face skin's lightness moved against the rest of the image:
the mean L* inside the face-oval mask, output minus photo, minus the same shift outside every
face; in brackets the face's own shift. Each with its standard error over the group's faces, the
benchmark's noise (it is deterministic: the sample of faces is what varies). A style that
lightens or darkens faces of one group more than another shows there.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from benchmarks.evaluation import (METHODS, evaluation_photos, parse_arguments, parse_styles, print_table, renderers,
                                   save_output)

GROUPS_FILE = Path(__file__).with_name("portrait_groups.tsv")
GROUP_KINDS = ("skin", "age", "faces")


def mean_and_error(values: list[float]) -> str:
    """The mean ± its standard error: a gap between groups smaller than their errors is the sample, not the style."""
    error = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else float("nan")
    return f"{statistics.mean(values):+.1f} ± {error:.1f}"


@dataclass
class Tally:
    survived: int = 0
    faces: int = 0
    relative_shift: list[float] = field(default_factory=list)  # L* shift of face skin minus the rest's, per face
    own_shift: list[float] = field(default_factory=list)  # L* shift of face skin alone (output minus photo)

    def add(self, survived: bool, shifts: tuple[float, float]) -> None:
        self.survived += survived
        self.faces += 1
        self.relative_shift.append(shifts[0])
        self.own_shift.append(shifts[1])

    def cell(self) -> str:
        if not self.faces:
            return "–"
        return (f"{100 * self.survived / self.faces:.0f} % of {self.faces}, ΔL* {mean_and_error(self.relative_shift)}"
                f" (face alone {mean_and_error(self.own_shift)})")


def lightness(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32) * (100 / 255)


def face_masks(shape: tuple[int, ...], faces: list) -> list[np.ndarray]:  # noqa: ANN001
    masks = []
    for face in faces:
        mask = np.zeros(shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(face.oval).astype(np.int32)], 1)
        masks.append(mask.astype(bool))
    return masks


def face_shifts(photo: np.ndarray, output: np.ndarray, masks: list[np.ndarray]) -> list[tuple[float, float]]:
    """Per face: (mean L* change inside its oval minus the mean L* change outside every face, the change inside)."""
    change = lightness(output) - lightness(photo)
    rest = ~np.any(masks, axis=0) if masks else np.ones(change.shape, bool)
    rest_shift = float(change[rest].mean()) if rest.any() else 0.0
    inside = [float(change[m].mean()) if m.any() else 0.0 for m in masks]
    return [(shift - rest_shift, shift) for shift in inside]


def read_groups(path: Path) -> dict[str, dict[str, str]]:
    with path.open() as handle:
        rows = csv.DictReader((line for line in handle if not line.startswith("#")), delimiter="\t")
        return {row["photo"]: row for row in rows}


def main() -> None:
    args = parse_arguments(__doc__)
    from stylize.pipeline import shared_face_finder

    finder = shared_face_finder()
    photos = evaluation_photos(args.content_dir, args.limit)
    groups = read_groups(GROUPS_FILE)
    references = {name: [f for f in finder.find(rgb) if f.landmarks is not None] for name, rgb in photos.items()}
    masks = {name: face_masks(rgb.shape, references[name]) for name, rgb in photos.items()}
    total = sum(map(len, references.values()))
    table: dict[tuple[str, str], tuple[float, float]] = {}
    by_group: dict[tuple[str, str], dict[tuple[str, str], Tally]] = {}
    for style in parse_styles(args.styles, args.painting_dir):
        for method, render in renderers(style, args.methods, args.device, args.face_strength, args.size):
            checks = []
            tallies: dict[tuple[str, str], Tally] = {}
            for name, rgb in photos.items():
                output = render(rgb)
                save_output(args.save, method, style.label, name, output)
                found = [finder.check(output, face) for face in references[name]]
                checks += found
                for check, shift in zip(found, face_shifts(rgb, output, masks[name])):
                    for kind in GROUP_KINDS:
                        tallies.setdefault((kind, groups[name][kind]), Tally()).add(check.survived, shift)
            survived = [c for c in checks if c.survived]
            drift = statistics.median(c.drift for c in survived) if survived else float("nan")
            table[method, style.label] = (100 * len(survived) / total, drift)
            by_group[method, style.label] = tallies
            print(f"{style.label:16s} {method:18s} survival {table[method, style.label][0]:5.1f} % "
                  f"({len(survived)}/{total})  median drift {drift:.3f} IOD", flush=True)
    names = list(dict.fromkeys(style for _, style in table))
    print_table(f"method ({len(photos)} photos, {total} faces)", names,
                {METHODS[m]: ["{:.0f} % ({:.2f})".format(*table[m, n]) for n in names] for m in args.methods})
    for method in args.methods:
        print(f"\n{METHODS[method]}: survival and face-skin lightness shift against the rest, per group")
        keys = sorted({key for n in names for key in by_group[method, n]}, key=lambda k: GROUP_KINDS.index(k[0]))
        print_table("group", names, {f"{kind}: {value}": [by_group[method, n].get((kind, value), Tally()).cell()
                                                            for n in names] for kind, value in keys})


if __name__ == "__main__":
    main()
