"""Atomic file writes: a crash or a full disk never leaves a half-written photo, weights file or checkpoint.

The temporary file carries the writer's host and PID, so a later run can remove
what a killed writer on this machine left behind without touching files another
live process is writing; a temporary from another host (a shared folder) is only
removed once it is hours old. The result gets the permissions the user's umask
gives a new file, or those of the file it replaces, never wider.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import stat
import time
from pathlib import Path
from typing import Iterator

PARTIAL_SUFFIX = ".partial"
#: A temporary written from another host is left alone until it is this old.
FOREIGN_PARTIAL_MAX_AGE_S = 6 * 3600


def _host() -> str:
    return socket.gethostname().replace(".", "-") or "localhost"


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary file beside ``path`` to write; it replaces ``path`` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.stem}.{_host()}.{os.getpid()}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}"
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # the kernel applies the umask
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        with contextlib.suppress(FileNotFoundError):
            tmp.chmod(stat.S_IMODE(path.stat().st_mode))  # replacing a file keeps its permissions
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (a crash right after it must not bring the old file back)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a folder; the data itself is synced already
        pass
    finally:
        os.close(fd)


def _writer_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _is_stale(tmp: Path) -> bool:
    parts = tmp.name[: -len(PARTIAL_SUFFIX)].rsplit(".", 3)  # .STEM, HOST, PID, RANDOM
    if len(parts) == 4 and parts[1] == _host() and parts[2].isdigit():
        return not _writer_alive(int(parts[2]))
    return time.time() - tmp.stat().st_mtime > FOREIGN_PARTIAL_MAX_AGE_S


def remove_stale_partials(folder: Path) -> list[Path]:
    """Delete temporary files in ``folder`` whose writer is gone (e.g. killed mid-save)."""
    removed = []
    if not folder.is_dir():
        return removed
    for tmp in folder.glob(f".*{PARTIAL_SUFFIX}"):
        if tmp.is_file() and _is_stale(tmp):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed
