"""Batches lose nothing: SIGKILL and resume, two batches into one folder, stale temporary files.

Scaled-down runs of ``benchmarks/batch_soak.py`` (which runs 1,000 photos), on real processes.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import batch_soak
import pytest

from conftest import TEST_STYLE
from stylize.atomic import atomic_path, remove_stale_partials


def test_killed_batch_resumes_to_a_complete_set(catalogue: Path, tmp_path: Path) -> None:
    tree = batch_soak.make_tree(tmp_path / "in put", 40, bad_fraction=0.25)
    assert set(tree.bad.values()) >= set(batch_soak.BAD_KINDS) - {"permission_denied"}
    before = batch_soak.tree_digest(tree.root)
    out = tmp_path / "out"
    state = batch_soak.killed_then_resumed(tree, out, TEST_STYLE, 128, kill_fraction=0.3)
    resumed = state["resumed"]
    assert 0 < state["finished_before_kill"] < len(tree.good), "the kill must land part-way"
    counts, failed = batch_soak.report_lines(resumed.stderr)
    assert resumed.returncode == 1, resumed.stderr
    assert counts["skipped"] == state["finished_before_kill"]  # nothing finished is processed twice
    assert counts["written"] + counts["skipped"] == len(tree.good)
    assert batch_soak.check_outputs(tree, out) == []  # complete, every file decodes at its size, no partials
    assert {str(p) for p in tree.bad} <= set(failed)
    assert batch_soak.tree_digest(tree.root) == before


def test_two_batches_into_one_folder_leave_whole_files(catalogue: Path, tmp_path: Path) -> None:
    tree = batch_soak.make_tree(tmp_path / "in", 16, bad_fraction=0.25)
    out = tmp_path / "out"
    assert batch_soak.two_batches_at_once(tree, out, TEST_STYLE, 128) == (1, 1)
    assert batch_soak.check_outputs(tree, out) == []


@pytest.mark.skipif(not batch_soak.can_deny_reads(), reason="root without setpriv ignores permission bits")
def test_unwritable_output_folder_is_one_error_line(catalogue: Path, portrait_file: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    cmd = [sys.executable, "-m", "stylize.cli", "photo", str(portrait_file), "-s", TEST_STYLE,
           "-o", str(locked / "o.png"), "--size", "128", "--no-faces"]
    result = subprocess.run(batch_soak.unprivileged(cmd), capture_output=True, text=True)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "cannot write" in lines[0], result.stderr
    assert list(locked.iterdir()) == []


def test_partial_files_of_dead_writers_are_removed(tmp_path: Path) -> None:
    from stylize.atomic import FOREIGN_PARTIAL_MAX_AGE_S, _host

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".photo.{_host()}.{dead.pid}.abc123.partial"
    live = tmp_path / f".photo.{_host()}.{os.getpid()}.def456.partial"
    # the same PID on another machine sharing the folder may be a live writer: left alone until it is old
    foreign = tmp_path / f".photo.other-host.{dead.pid}.aaa111.partial"
    old_foreign = tmp_path / f".photo.other-host.{dead.pid}.bbb222.partial"
    unrelated = tmp_path / ".notes.partial"
    for path in (stale, live, foreign, old_foreign, unrelated):
        path.write_bytes(b"half a photo")
    long_ago = time.time() - FOREIGN_PARTIAL_MAX_AGE_S - 60
    os.utime(old_foreign, (long_ago, long_ago))
    assert sorted(remove_stale_partials(tmp_path)) == sorted([stale, old_foreign])
    assert live.exists() and foreign.exists() and unrelated.exists()


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_outputs_get_the_umask_permissions(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)  # the test's own process setting, restored below
    try:
        with atomic_path(tmp_path / "photo.jpg") as tmp:
            tmp.write_bytes(b"jpeg")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "photo.jpg").stat().st_mode) == 0o666 & ~umask


def test_replacing_a_file_keeps_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "photo.jpg"
    target.write_bytes(b"old")
    target.chmod(0o640)
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and stat.S_IMODE(target.stat().st_mode) == 0o640


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "photo.jpg"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []
