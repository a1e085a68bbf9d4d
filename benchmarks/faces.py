"""Face survival: are the people in a portrait still there after stylising?

    .venv/bin/python benchmarks/faces.py --styles starry_night great_wave udnie

Reference faces: MediaPipe's full-range detector on each evaluation photo (whole image and
tiles) and a face mesh per face, as the pipeline finds them; only faces with a mesh count.
A face survives when the face mesh, run on the output at the same crop, is found again with
its five key points (eyes, nose tip, mouth corners) within half an inter-ocular distance
(``stylize.faces.FaceFinder.check``). Also reported: the median, over surviving faces, of the
median landmark drift in inter-ocular distances.
"""

from __future__ import annotations

import argparse
import statistics

from evaluation import METHODS, add_common_arguments, evaluation_photos, machine_line, parse_styles, renderers, \
    save_output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    args = parser.parse_args()
    print(machine_line(args.device))
    from stylize.pipeline import shared_face_finder

    finder = shared_face_finder()
    photos = evaluation_photos(args.content_dir, args.limit)
    references = {name: [f for f in finder.find(rgb) if f.landmarks is not None] for name, rgb in photos.items()}
    total = sum(map(len, references.values()))
    table: dict[tuple[str, str], tuple[float, float]] = {}
    for style in parse_styles(args.styles, args.painting_dir):
        for method, render in renderers(style, args.methods, args.device):
            checks = []
            for name, rgb in photos.items():
                output = render(rgb)
                save_output(args.save, method, style.label, name, output)
                checks += [finder.check(output, face) for face in references[name]]
            survived = [c for c in checks if c.survived]
            drift = statistics.median(c.drift for c in survived) if survived else float("nan")
            table[method, style.label] = (100 * len(survived) / total, drift)
            print(f"{style.label:16s} {method:18s} survival {table[method, style.label][0]:5.1f} % "
                  f"({len(survived)}/{total})  median drift {drift:.3f} IOD", flush=True)
    names = list(dict.fromkeys(style for _, style in table))
    print(f"\n| method ({len(photos)} photos, {total} faces) | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for method in args.methods:
        print(f"| {METHODS[method]} | "
              + " | ".join("{:.0f} % ({:.2f})".format(*table[method, n]) for n in names) + " |")


if __name__ == "__main__":
    main()
