"""Where a cluster batch reads and writes: a local folder, or any filesystem pyarrow knows (s3://, gs://, hdfs://).

A local folder goes through the very code ``stylize batch`` uses (pathlib, atomic renames), so both write the
same files; another filesystem goes through pyarrow, whose object stores publish a file only once its upload
completes, so a reader never sees half a photo there either.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np

from .batch import INPUT_SUFFIXES, carries_provenance, check_folders, pair_jobs, plan_jobs
from .errors import MissingExtraError, OutputError, StylizeError, UnreadableImageError
from .image_io import Photo, encode_image, load_photo, photo_from_bytes, to_pil
from .pipeline import save_result

if TYPE_CHECKING:
    from pyarrow.fs import FileSystem

#: Headers read at once while planning a batch on a remote filesystem (each tells whether a file is an output).
HEADER_READERS = 32


@dataclass(frozen=True)
class Location:
    """A folder as the user named it: a local path (``filesystem`` None) or a URI pyarrow resolves. Picklable, so
    every worker of a cluster opens the same place."""

    uri: str
    path: str
    filesystem: "FileSystem | None" = None

    @classmethod
    def parse(cls, location: str) -> "Location":
        if "://" not in location:  # absolute: a cluster's workers do not share the driver's working folder
            return cls(location, os.path.abspath(location))
        try:
            from pyarrow import fs
        except ImportError:
            raise MissingExtraError(f"{location}: reading URIs needs pyarrow: pip install 'stylize[ray]'") from None
        try:
            filesystem, path = fs.FileSystem.from_uri(location)
        except (ValueError, OSError) as exc:
            raise StylizeError(f"{location}: not a filesystem pyarrow can open ({exc})") from None
        return cls(location, path, None if isinstance(filesystem, fs.LocalFileSystem) else filesystem)

    def pure(self, path: str) -> PurePath:
        return Path(path) if self.filesystem is None else PurePosixPath(path)

    def name(self, path: str) -> str:
        """``path`` as people know it: the local path, or the URI's scheme and path."""
        if self.filesystem is None:
            return path
        return f"{self.uri.split('://', 1)[0]}://{path}"

    def fingerprint(self, path: str) -> tuple[int, int] | None:
        """(size, modification time in ns) of a file, or None where there is none: tells a file written by this
        run from the one that was there before it."""
        if self.filesystem is None:
            try:
                status = Path(path).stat()
            except OSError:
                return None
            return status.st_size, status.st_mtime_ns
        from pyarrow.fs import FileType

        info = self.filesystem.get_file_info(path)
        if info.type != FileType.File:
            return None
        return info.size, info.mtime_ns or 0

    def read_photo(self, path: str, max_pixels: int) -> Photo:
        if self.filesystem is None:
            return load_photo(path, max_pixels)
        try:
            with self.filesystem.open_input_stream(path) as stream:
                data = stream.read()
        except OSError as exc:
            raise UnreadableImageError(f"{self.name(path)}: cannot read ({exc})") from None
        return photo_from_bytes(data, self.name(path), max_pixels)

    def write_result(self, path: str, photo: Photo, rgb: np.ndarray, quality: int, xmp: bytes | None) -> None:
        if self.filesystem is None:
            save_result(photo, rgb, Path(path), quality, xmp)
            return
        data = encode_image(to_pil(rgb, photo.alpha), path, quality, photo.exif, photo.icc_profile, xmp)
        parent = str(PurePosixPath(path).parent)
        try:
            self.filesystem.create_dir(parent, recursive=True)
            with self.filesystem.open_output_stream(path) as stream:
                stream.write(data)
        except OSError as exc:
            raise OutputError(f"{self.name(path)}: cannot write output ({exc})") from None


def plan_jobs_at(source: Location, target: Location, recursive: bool, suffix: str) -> list[tuple[str, str]]:
    """``stylize batch``'s (input, output) pairs for folders on any filesystem, as path strings."""
    if source.filesystem is None and target.filesystem is None:
        return [(str(a), str(b)) for a, b in plan_jobs(Path(source.path), Path(target.path), recursive, suffix)]
    if source.filesystem is None or target.filesystem is None or \
            source.filesystem.type_name != target.filesystem.type_name:
        raise StylizeError(f"{source.uri} and {target.uri}: the input and output folders must be on one filesystem")
    from pyarrow.fs import FileSelector, FileType

    filesystem, in_dir, out_dir = source.filesystem, PurePosixPath(source.path), PurePosixPath(target.path)
    if filesystem.get_file_info(source.path).type != FileType.Directory:
        raise StylizeError(f"{source.uri}: not a folder")
    check_folders(in_dir, out_dir, suffix)
    found = filesystem.get_file_info(FileSelector(source.path, recursive=recursive))
    inputs = sorted(PurePosixPath(info.path) for info in found
                    if PurePosixPath(info.path).suffix.lower() in INPUT_SUFFIXES
                    and out_dir not in PurePosixPath(info.path).parents)

    def is_output(path: PurePosixPath) -> bool:
        if filesystem.get_file_info(str(path)).type != FileType.File:
            return False
        with filesystem.open_input_file(str(path)) as handle:  # seekable: Pillow reads the header alone
            return carries_provenance(handle)

    # an object store answers each header read in tens of milliseconds: read many at once
    with ThreadPoolExecutor(max_workers=HEADER_READERS, thread_name_prefix="headers") as pool:
        outputs = {path for path, made in zip(inputs, pool.map(is_output, inputs)) if made}
    return [(str(a), str(b)) for a, b in pair_jobs(inputs, in_dir, out_dir, suffix, outputs.__contains__)]
