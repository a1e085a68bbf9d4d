"""Batch-filter a folder: every good photo written, every bad one reported, the input tree untouched.

The next photo is decoded in a worker thread while the network works on the
current one. Outputs are written atomically, so an interrupted batch leaves no
partial files and ``skip_existing`` resumes it without redoing work.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, BinaryIO, Callable, TypeVar

import numpy as np

from .atomic import remove_stale_partials
from .errors import StylizeError
from .image_io import FORMATS, READ_ONLY_PHOTO_FORMATS, Photo, load_photo
from .options import Options
from .pipeline import save_result

if TYPE_CHECKING:
    from .api import Stylizer

#: a path on some filesystem: a local ``Path``, or a ``PurePosixPath`` in a pyarrow filesystem
P = TypeVar("P", bound=PurePath)
INPUT_SUFFIXES = set(FORMATS) | set(READ_ONLY_PHOTO_FORMATS) | {".gif", ".jfif", ".jpe"}


@dataclass
class BatchReport:
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    #: (output, warning) for outputs written with a face that the face mesh no longer finds
    faces_lost: list[tuple[Path, str]] = field(default_factory=list)


def find_inputs(in_dir: Path, recursive: bool, exclude: Path | None = None) -> list[Path]:
    """Image-named entries under ``in_dir`` (symlinked folders are not followed; ``exclude`` is never read)."""
    exclude_real = exclude.resolve() if exclude else None
    found: list[Path] = []
    for root, dirs, files in os.walk(in_dir, followlinks=False):
        root_path = Path(root)
        if exclude_real is not None:
            dirs[:] = [d for d in dirs if (root_path / d).resolve() != exclude_real]
        # a directory named like a photo is reported as a bad input rather than silently ignored
        names = files + [d for d in dirs if Path(d).suffix.lower() in INPUT_SUFFIXES]
        found += [root_path / n for n in names if Path(n).suffix.lower() in INPUT_SUFFIXES]
        if not recursive:
            break
    return sorted(found)


def output_for(source: P, in_dir: P, out_dir: P, suffix: str) -> P:
    """Mirror the input tree; keep the extension so ``a.jpg`` and ``a.png`` never collide."""
    relative = source.relative_to(in_dir)
    suffix_in = source.suffix.lower()
    ext = suffix_in if suffix_in in FORMATS else READ_ONLY_PHOTO_FORMATS.get(suffix_in, ".png")
    return out_dir / relative.parent / f"{relative.stem}{suffix}{ext}"


def is_stylize_output(path: Path) -> bool:
    """Whether a file carries the provenance packet stylize writes (so a re-run never stylises its own outputs)."""
    if not path.is_file():  # never open a pipe or a device: it could block
        return False
    return carries_provenance(path)


def carries_provenance(file: Path | BinaryIO) -> bool:
    """Whether an image file's header holds stylize's provenance packet (an unreadable one does not)."""
    from PIL import Image

    from .provenance import made_by_stylize

    try:
        with Image.open(file) as image:
            xmp = image.info.get("xmp")
    except Exception:  # noqa: BLE001 -- an unreadable file is reported when it is processed, not here
        return False
    return made_by_stylize(xmp)


def check_folders(in_dir: PurePath, out_dir: PurePath, suffix: str) -> None:
    """What is refused before a batch looks at any file."""
    if "/" in suffix or "\\" in suffix:
        raise StylizeError(f"the suffix must not contain a path separator: {suffix!r}")
    if not suffix and out_dir == in_dir:
        raise StylizeError("the output folder is the input folder: outputs would overwrite the photos; use another "
                           "folder or a suffix")


def plan_jobs(in_dir: Path, out_dir: Path, recursive: bool, suffix: str) -> list[tuple[Path, Path]]:
    """(input, output) pairs for a batch of local folders (``pair_jobs``)."""
    if not in_dir.is_dir():
        raise StylizeError(f"{in_dir}: not a folder")
    check_folders(in_dir.resolve(), out_dir.resolve(), suffix)
    return pair_jobs(find_inputs(in_dir, recursive, exclude=out_dir), in_dir, out_dir, suffix, is_stylize_output)


def pair_jobs(inputs: list[P], in_dir: P, out_dir: P, suffix: str,
              is_output: Callable[[P], bool]) -> list[tuple[P, P]]:
    """(input, output) pairs on any filesystem. Inputs that are outputs (another input's target, or a file
    stylize wrote) are left out; two inputs that would write one output are refused up front, naming them."""
    targets = {output_for(source, in_dir, out_dir, suffix) for source in inputs}
    jobs = [(source, output_for(source, in_dir, out_dir, suffix)) for source in inputs
            if source not in targets and not is_output(source)]
    by_target: dict[str, list[P]] = {}
    for source, target in jobs:  # case-folded: a.JPG and a.jpg are one file on many file systems
        by_target.setdefault(str(target).casefold(), []).append(source)
    clashes = [sources for sources in by_target.values() if len(sources) > 1]
    if clashes:
        listed = "; ".join(" and ".join(str(s.relative_to(in_dir)) for s in sources) + " -> "
                           + str(output_for(sources[0], in_dir, out_dir, suffix)) for sources in clashes)
        raise StylizeError(f"inputs would overwrite each other's output: {listed}; rename one of each")
    return jobs


def split_existing(jobs: list[tuple[P, P]], skip_existing: bool,
                   exists: Callable[[P], bool]) -> tuple[list[tuple[P, P]], list[P]]:
    """(jobs to do, inputs skipped because their output exists) -- every kind of batch resumes alike."""
    if not skip_existing:
        return jobs, []
    todo = [(source, target) for source, target in jobs if not exists(target)]
    done = {source for source, _ in todo}
    return todo, [source for source, _ in jobs if source not in done]


def _load(path: Path, max_pixels: int) -> Photo | StylizeError:
    try:
        return load_photo(path, max_pixels)
    except StylizeError as exc:
        return exc


def run_batch(stylizer: "Stylizer", jobs: list[tuple[Path, Path]], options: Options,
              skip_existing: bool = False, on_done: Callable[[Path, str | None], None] | None = None) -> BatchReport:
    """Process (input, output) pairs in order, decoding one ahead; one bad file never stops the rest."""
    report = BatchReport()
    for folder in sorted({target.parent for _, target in jobs}):
        remove_stale_partials(folder)  # left by a batch that was killed while saving
    todo, report.skipped = split_existing(jobs, skip_existing, Path.exists)
    for source in report.skipped:
        if on_done:
            on_done(source, None)

    xmp = stylizer.provenance(options)

    def save(photo: Photo, result: np.ndarray, target: Path) -> str | None:
        try:
            save_result(photo, result, target, options.quality, xmp)
            return None
        except StylizeError as exc:
            return str(exc)

    def finish(source: Path, target: Path, error: str | None, faces_warning: str | None = None) -> None:
        if error is None:
            report.written.append(target)
            if faces_warning:
                report.faces_lost.append((target, faces_warning))
        else:
            report.failed.append((source, error))
        if on_done:
            on_done(source, error)

    pending: tuple[Path, Path, Future, str | None] | None = None
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="io") as pool:  # one decodes, one encodes
        loading = pool.submit(_load, todo[0][0], options.max_pixels) if todo else None
        for index, (source, target) in enumerate(todo):
            photo = loading.result()  # type: ignore[union-attr]
            if index + 1 < len(todo):
                loading = pool.submit(_load, todo[index + 1][0], options.max_pixels)
            try:
                if isinstance(photo, StylizeError):
                    raise photo
                rendering = stylizer.paint(photo, options)
                photo.release_pixels()  # only its metadata is needed to save
            except StylizeError as exc:
                finish(source, target, str(exc))
                continue
            if pending:
                finish(pending[0], pending[1], pending[2].result(), pending[3])
            pending = (source, target, pool.submit(save, photo, rendering.rgb, target),
                       stylizer.lost_faces_warning(rendering.faces, str(target), options))
        if pending:
            finish(pending[0], pending[1], pending[2].result(), pending[3])
    return report
