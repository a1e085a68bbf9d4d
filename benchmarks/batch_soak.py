"""Batch soak: a folder of photos with 10 % bad entries, a SIGKILL part-way, a resume, and two batches at once.

Checks, on real files and real processes (the ``stylize batch`` CLI):
  * every good photo is written exactly once and decodes at its input's size;
  * every bad entry (random bytes, truncated, empty, permission denied, broken symlink,
    symlink loop, a directory or a pipe named like a photo, text named .png) is listed with a reason
    and the exit status is 1;
  * the input tree is byte-identical afterwards (contents, modes, symlink targets);
  * a batch killed with SIGKILL and re-run with ``--skip-existing`` ends complete, with no
    partial files, and the re-run skips exactly what the killed run had finished;
  * two batches writing into one output folder at once leave only whole, decodable files.

    python -m benchmarks.batch_soak --photos 1000 --style starry_night

As root, permission bits do not stop reads, so the batch runs under ``setpriv`` without
the DAC-override capabilities and the unreadable files really are unreadable.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from stylize.atomic import PARTIAL_SUFFIX
from stylize.batch import output_for

BAD_KINDS = ["random_bytes", "truncated", "empty", "permission_denied", "broken_symlink", "symlink_loop",
             "directory", "pipe", "text"]
NAMES = ["IMG_{:04d}", "holiday photo {:04d}", "été_{:04d}", "写真_{:04d}", "a [b] {:04d}"]
FORMATS = [".jpg", ".png", ".webp", ".tif", ".bmp"]


@dataclass
class Tree:
    root: Path
    good: list[Path] = field(default_factory=list)
    bad: dict[Path, str] = field(default_factory=dict)


DROP_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search",
            "--inh-caps", "-dac_override,-dac_read_search"]


@functools.lru_cache(maxsize=1)
def _setpriv_works() -> bool:
    if shutil.which("setpriv") is None:
        return False
    return subprocess.run([*DROP_DAC, "true"], capture_output=True).returncode == 0


def can_deny_reads() -> bool:
    """Whether permission bits can be made to stop reads: not root, or root able to drop DAC override."""
    return os.geteuid() != 0 or _setpriv_works()


def make_tree(root: Path, photos: int, bad_fraction: float = 0.1, seed: int = 0) -> Tree:
    """``photos`` entries in nested folders; every 1/bad_fraction-th one is bad, cycling through BAD_KINDS."""
    from skimage import data

    rng = np.random.default_rng(seed)
    portrait = data.astronaut()
    tree = Tree(root)
    every = max(1, round(1 / bad_fraction))
    for i in range(photos):
        folder = root / f"roll {i // 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        ext = FORMATS[i % len(FORMATS)]
        path = folder / (NAMES[i % len(NAMES)].format(i) + ext)
        if i % every == every - 1:
            kind = BAD_KINDS[(i // every) % len(BAD_KINDS)]
            if kind == "permission_denied" and not can_deny_reads():
                kind = "random_bytes"
            make_bad(path, kind, portrait, rng)
            tree.bad[path] = kind
            continue
        w, h = (int(v) for v in rng.integers(160, 420, 2))
        pixels = portrait if rng.random() < 0.6 else rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).resize((w, h)).save(path)
        if i % 7 == 0:  # same stem, another extension: outputs must not collide
            twin = path.with_suffix(".png" if ext != ".png" else ".jpg")
            Image.fromarray(pixels).resize((h, w)).save(twin)
            tree.good.append(twin)
        tree.good.append(path)
    return tree


def make_bad(path: Path, kind: str, portrait: np.ndarray, rng: np.random.Generator) -> None:
    if kind == "random_bytes":
        path.write_bytes(rng.bytes(int(rng.integers(1, 5000))))
    elif kind == "truncated":
        Image.fromarray(portrait).save(path.with_suffix(".jpg"))
        data = path.with_suffix(".jpg").read_bytes()
        path.with_suffix(".jpg").unlink()
        path.write_bytes(data[: len(data) // 3])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "permission_denied":
        Image.fromarray(portrait).save(path.with_suffix(".png"), format="PNG")
        path.with_suffix(".png").rename(path)
        path.chmod(0)
    elif kind == "broken_symlink":
        os.symlink(path.parent / "gone.jpg", path)
    elif kind == "symlink_loop":
        os.symlink(path.name + ".loop.jpg", path)
        os.symlink(path.name, path.parent / (path.name + ".loop.jpg"))
    elif kind == "directory":
        path.mkdir()
    elif kind == "pipe":
        os.mkfifo(path)
    elif kind == "text":
        path.write_text("not a photo at all\n")


def tree_digest(root: Path) -> dict[str, str]:
    """Contents, permission bits and symlink targets of everything under ``root`` (without reading pipes)."""
    digest = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            value = "link:" + os.readlink(path)
        elif stat.S_ISREG(info.st_mode):
            try:
                value = hashlib.sha256(path.read_bytes()).hexdigest()
            except PermissionError:  # not root: the unreadable entry is compared by its mode alone
                value = "unreadable"
        else:
            value = "dir" if stat.S_ISDIR(info.st_mode) else "other"
        digest[str(path.relative_to(root))] = f"{oct(info.st_mode)}:{value}"
    return digest


def unprivileged(cmd: list[str]) -> list[str]:
    """As root, run ``cmd`` without the capabilities that let root ignore permission bits."""
    return [*DROP_DAC, *cmd] if os.geteuid() == 0 and _setpriv_works() else cmd


def batch_command(in_dir: Path, out_dir: Path, style: str, size: int, *extra: str) -> list[str]:
    return unprivileged([sys.executable, "-m", "stylize.cli", "batch", str(in_dir), str(out_dir), "-s", style,
                         "--recursive", "--size", str(size), "--device", "cpu", *extra])


def check_outputs(tree: Tree, out_dir: Path) -> list[str]:
    """Problems with the output folder: missing, undecodable or wrong-size outputs, strays, partial files."""
    problems = []
    wanted = {output_for(p, tree.root, out_dir, ""): p for p in tree.good}
    for target, source in wanted.items():
        if not target.is_file():
            problems.append(f"missing {target}")
            continue
        try:
            with Image.open(target) as out, Image.open(source) as src:
                out.load()
                if out.size != src.size:
                    problems.append(f"{target}: size {out.size} != {src.size}")
        except OSError as exc:
            problems.append(f"{target}: does not decode ({exc})")
    present = {p for p in out_dir.rglob("*") if p.is_file()}
    problems += [f"partial file left: {p}" if p.name.endswith(PARTIAL_SUFFIX) else f"stray file {p}"
                 for p in sorted(present - set(wanted))]
    return problems


def run(in_dir: Path, out_dir: Path, style: str, size: int, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(batch_command(in_dir, out_dir, style, size, *extra), capture_output=True, text=True)


def killed_then_resumed(tree: Tree, out_dir: Path, style: str, size: int, kill_fraction: float) -> dict:
    """SIGKILL the batch once ``kill_fraction`` of the outputs exist, then finish it with --skip-existing."""
    process = subprocess.Popen(batch_command(tree.root, out_dir, style, size), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    target = int(len(tree.good) * kill_fraction)
    while process.poll() is None and sum(1 for p in out_dir.rglob("*") if p.is_file()) < target:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    files = [p for p in out_dir.rglob("*") if p.is_file()]
    partials = sum(p.name.endswith(PARTIAL_SUFFIX) for p in files)
    resumed = run(tree.root, out_dir, style, size, "--skip-existing")
    return {"finished_before_kill": len(files) - partials, "partials_after_kill": partials, "resumed": resumed}


def two_batches_at_once(tree: Tree, out_dir: Path, style: str, size: int) -> tuple[int, int]:
    """Two batch processes over the same photos into one folder; their exit statuses."""
    first = subprocess.Popen(batch_command(tree.root, out_dir, style, size),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    second = run(tree.root, out_dir, style, size, "--skip-existing")
    return first.wait(), second.returncode


def report_lines(stderr: str) -> tuple[dict[str, int], dict[str, str]]:
    """(counts of written/skipped/failed, {failed path: reason}) from the batch's summary on stderr."""
    counts, failed = {}, {}
    for line in stderr.splitlines():
        if " written, " in line:
            parts = line.split(" in ")[0].split(", ")
            counts = {p.split()[1]: int(p.split()[0]) for p in parts}
        elif line.startswith("failed: "):
            path, _, reason = line[len("failed: "):].partition(": ")
            failed[path] = reason
    return counts, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--size", type=int, default=256, help="working size (small photos, many of them)")
    parser.add_argument("--kill-at", type=float, default=0.4, help="fraction of outputs written before SIGKILL")
    parser.add_argument("--concurrent-photos", type=int, default=100, help="size of the two-batches-at-once check")
    args = parser.parse_args()
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        tree = make_tree(Path(tmp) / "in put", args.photos)
        before = tree_digest(tree.root)
        out_dir = Path(tmp) / "out"
        began = time.perf_counter()
        state = killed_then_resumed(tree, out_dir, args.style, args.size, args.kill_at)
        seconds = time.perf_counter() - began
        resumed = state["resumed"]
        counts, failed = report_lines(resumed.stderr)
        problems += check_outputs(tree, out_dir)
        if resumed.returncode != 1:
            problems.append(f"exit status {resumed.returncode}, expected 1 (some inputs are bad)")
        if counts.get("skipped") != state["finished_before_kill"]:
            problems.append(f"re-run skipped {counts.get('skipped')}, the killed run had finished "
                            f"{state['finished_before_kill']}")
        if counts.get("written", 0) + counts.get("skipped", 0) != len(tree.good):
            problems.append(f"written + skipped = {counts} != {len(tree.good)} good photos")
        unlisted = [p for p in tree.bad if str(p) not in failed]
        problems += [f"bad entry not listed: {p}" for p in unlisted]
        if tree_digest(tree.root) != before:
            problems.append("the input tree changed")

        small = make_tree(Path(tmp) / "small", args.concurrent_photos, seed=1)
        concurrent_out = Path(tmp) / "shared out"
        statuses = two_batches_at_once(small, concurrent_out, args.style, args.size)
        concurrent_problems = check_outputs(small, concurrent_out)
        if statuses != (1, 1):
            concurrent_problems.append(f"exit statuses {statuses}, expected (1, 1)")
        problems += concurrent_problems
        lost = sum(1 for p in problems if p.startswith(("missing", "stray", "partial")) or "decode" in p)
        print(f"batch soak: {len(tree.good) + len(tree.bad)} entries ({len(tree.good)} photos, {len(tree.bad)} bad: "
              f"{', '.join(sorted(set(tree.bad.values())))}), style {args.style}, size {args.size}")
        print(f"| entries | bad listed | SIGKILL after | partial files after kill | re-run skipped / written | "
              f"photos lost or corrupt | input tree unchanged | "
              f"two concurrent batches ({args.concurrent_photos} entries) | "
              f"seconds (kill + resume) |")
        print("|---|---|---|---|---|---|---|---|---|")
        print(f"| {len(tree.good) + len(tree.bad)} | {len(tree.bad) - len(unlisted)}/{len(tree.bad)} | "
              f"{state['finished_before_kill']} outputs | {state['partials_after_kill']} (removed by the re-run) | "
              f"{counts.get('skipped')} / {counts.get('written')} | {lost} | "
              f"{'yes' if 'the input tree changed' not in problems else 'NO'} | "
              f"{'ok' if not concurrent_problems else 'FAILED'} | {seconds:.0f} |")
        reasons = {}
        for path, kind in tree.bad.items():
            reasons.setdefault(kind, failed.get(str(path), "NOT LISTED").split(": ")[-1][:60])
        for kind, reason in sorted(reasons.items()):
            print(f"  {kind}: {reason}")
    for problem in problems[:40]:
        print("PROBLEM:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
