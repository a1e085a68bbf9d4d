"""Atomic file writes: a crash or a full disk never leaves a half-written photo, weights file or checkpoint.

The temporary file carries the writer's PID, so a later run can remove what a
killed writer left behind without touching files another live process is writing.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

PARTIAL_SUFFIX = ".partial"


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary file beside ``path`` to write; it replaces ``path`` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.{os.getpid()}.", suffix=PARTIAL_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        tmp.chmod(0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _writer_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove_stale_partials(folder: Path) -> list[Path]:
    """Delete temporary files in ``folder`` whose writer process is gone (e.g. killed mid-save)."""
    removed = []
    if not folder.is_dir():
        return removed
    for tmp in folder.glob(f".*{PARTIAL_SUFFIX}"):
        parts = tmp.name.rsplit(".", 3)  # .STEM.PID.RANDOM.partial
        if len(parts) == 4 and parts[1].isdigit() and not _writer_alive(int(parts[1])) and tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed
