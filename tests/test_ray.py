"""``stylize batch --ray`` and ``stylize.ray``: the same files as ``stylize batch``, on a two-node Ray cluster
started by the tests (two processes of this machine), through a killed actor, a resume and Ctrl-C."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from benchmarks import batch_soak
from stylize.atomic import PARTIAL_SUFFIX
from stylize.cli import app
from stylize.options import Options
from stylize.ray import MAX_CRASHES, ActorPlan, Ledger

HAS_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed (pip install 'stylize[ray]')")
#: a shipped style: the cluster's workers read the installed catalogue, not a test's
STYLE = "udnie"


def batch(in_dir: Path, out_dir: Path, *extra: str, size: int = 192) -> list[str]:
    return [sys.executable, "-m", "stylize.cli", "batch", str(in_dir), str(out_dir), "-s", STYLE, "--recursive",
            "--size", str(size), "--device", "cpu", *extra]


def output_files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


def assert_same_outputs(expected: Path, got: Path) -> None:
    """The same files, the same pixels (within one level), the same metadata."""
    wanted, found = output_files(expected), output_files(got)
    assert sorted(found) == sorted(wanted)
    for name, path in wanted.items():
        with Image.open(path) as a, Image.open(found[name]) as b:
            assert a.size == b.size and a.mode == b.mode, name
            difference = np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max()
            assert difference <= 1, f"{name}: {difference} levels apart"
            assert {k: v for k, v in a.info.items() if k != "dpi"} == {k: v for k, v in b.info.items() if k != "dpi"}


def test_without_ray_the_flag_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (64, 64), "gray").save(folder / "a.png")
    monkeypatch.setitem(sys.modules, "ray", None)  # as on an install without stylize[ray]
    result = CliRunner().invoke(app, ["batch", str(folder), str(tmp_path / "out"), "-s", STYLE, "--ray"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == ["error: Ray batches need Ray: pip install 'stylize[ray]'"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--actors", "2"], "--actors and --batch-size are for --ray"),
    (["--ray", "--actors", "0"], "actors must be 1 or more"),
])
def test_cluster_options_are_checked(tmp_path: Path, args: list[str], message: str) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (64, 64), "gray").save(folder / "a.png")
    if "--ray" in args and not HAS_RAY:
        pytest.skip("Ray is not installed")
    result = CliRunner().invoke(app, ["batch", str(folder), str(tmp_path / "out"), "-s", STYLE, *args])
    assert result.exit_code == 2 and message in result.output, result.output


@pytest.mark.parametrize("resources, device, expected", [
    ({"CPU": 2.0}, "auto", ActorPlan(2, 1, 0.0, 1)),
    ({"CPU": 16.0}, "auto", ActorPlan(8, 2, 0.0, 1)),
    ({"CPU": 16.0, "GPU": 2.0}, "auto", ActorPlan(2, 1, 1.0, 1)),
    ({"CPU": 16.0, "GPU": 2.0}, "cpu", ActorPlan(8, 2, 0.0, 1)),
])
def test_actor_plan_follows_the_cluster(resources: dict, device: str, expected: ActorPlan) -> None:
    assert ActorPlan.for_resources(resources, device) == expected


def test_actor_plan_takes_overrides_and_refuses_nonsense() -> None:
    assert ActorPlan.for_resources({"CPU": 16.0}, "cpu", actors=4, batch_size=8) == ActorPlan(4, 4, 0.0, 8)
    from stylize.errors import StylizeError

    with pytest.raises(StylizeError, match="batch size"):
        ActorPlan.for_resources({"CPU": 2.0}, "cpu", batch_size=0)


def test_ledger_counts_attempts_until_one_finishes() -> None:
    ledger = Ledger()
    assert ledger.begin("a.jpg") == (1, None)
    assert ledger.begin("a.jpg") == (2, None)  # the first attempt's worker died
    ledger.finish("a.jpg", ("", "warning"))
    assert ledger.begin("a.jpg") == (2, ("", "warning"))  # a retry of a finished photo does nothing again
    assert ledger.begin("b.jpg") == (1, None)


@pytest.fixture(scope="module")
def cluster() -> str:
    """A Ray cluster of two nodes (head and worker, one CPU each) on this machine; its address."""
    if not HAS_RAY:
        pytest.skip("Ray is not installed (pip install 'stylize[ray]')")
    from ray.cluster_utils import Cluster

    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    nodes.add_node(num_cpus=1)
    nodes.wait_for_nodes()
    yield nodes.address
    import ray

    ray.shutdown()
    nodes.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """40 entries (real portraits, noise, and broken files of every kind) and what plain ``stylize batch`` made."""
    root = tmp_path_factory.mktemp("ray")
    tree = batch_soak.make_tree(root / "in", 40, bad_fraction=0.2)
    assert len(tree.bad) >= 6
    plain = subprocess.run(batch(tree.root, root / "plain"), capture_output=True, text=True)
    assert plain.returncode == 1, plain.stderr
    return tree.root, root / "plain", plain


def inodes_while_running(process: subprocess.Popen, out_dir: Path, until: float) -> dict[Path, set[int]]:
    """Every inode each output had while ``process`` ran: a file written twice shows two."""
    seen: dict[Path, set[int]] = {}
    while process.poll() is None and time.monotonic() < until:
        for path in list(out_dir.rglob("*")):
            try:
                if path.is_file() and not path.name.endswith(PARTIAL_SUFFIX):
                    seen.setdefault(path, set()).add(path.stat().st_ino)
            except FileNotFoundError:
                pass
        time.sleep(0.02)
    return seen


def painting_actors() -> list[int]:
    """Processes of this machine that are painting actors (Ray names each process after its actor)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"_BatchPainter" in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@needs_ray
def test_two_node_cluster_writes_what_plain_batch_writes_once_through_a_killed_actor(
        cluster: str, photos: tuple[Path, Path, subprocess.CompletedProcess], tmp_path: Path) -> None:
    in_dir, plain_out, plain = photos
    out = tmp_path / "out"
    process = subprocess.Popen(batch(in_dir, out, "--ray-address", cluster), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while process.poll() is None and len(output_files(out)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    victims = painting_actors()
    assert victims, "no painting actor to kill"
    os.kill(victims[0], signal.SIGKILL)  # mid-run: Ray restarts the actor and retries what it held
    seen = inodes_while_running(process, out, deadline)
    stdout, stderr = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
    assert process.returncode == 1, stderr  # as plain batch: some photos are broken
    assert_same_outputs(plain_out, out)
    assert all(len(inodes) == 1 for inodes in seen.values()), "an output was written twice"
    assert batch_soak.report_lines(stderr) == batch_soak.report_lines(plain.stderr)  # counts, failures, reasons
    assert "ray: 2 actors" in stderr

    resumed = subprocess.run(batch(in_dir, out, "--ray-address", cluster, "--skip-existing"), capture_output=True,
                             text=True)
    counts, _ = batch_soak.report_lines(resumed.stderr)
    assert counts["written"] == 0 and counts["skipped"] == len(output_files(plain_out)), resumed.stderr


@needs_ray
def test_ctrl_c_stops_the_cluster_batch_and_leaves_no_partial_file(
        photos: tuple[Path, Path, subprocess.CompletedProcess], tmp_path: Path) -> None:
    in_dir, _, _ = photos
    out = tmp_path / "out"
    process = subprocess.Popen(batch(in_dir, out, "--ray", size=384), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # a Ray of its own, on this machine
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline and \
            sum(not name.endswith(PARTIAL_SUFFIX) for name in output_files(out)) < 2:  # two whole outputs
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in stderr, stderr
    files = output_files(out)
    assert 2 <= len(files) < len(output_files(photos[1]))  # stopped part-way
    assert not [name for name in files if name.endswith(PARTIAL_SUFFIX)]
    for path in files.values():
        with Image.open(path) as image:
            image.load()  # whole files only
    assert not painting_actors(), "an actor outlived its batch"


@needs_ray
def test_a_photo_that_keeps_killing_its_worker_is_reported_not_retried(cluster: str, tmp_path: Path,
                                                                      astronaut: np.ndarray) -> None:
    import ray

    from stylize.ray import _BatchPainter
    from stylize.storage import Location

    ray.init(address=cluster, logging_level="ERROR", log_to_driver=False, ignore_reinit_error=True)
    ledger = ray.remote(Ledger).options(num_cpus=0).remote()
    source, target = tmp_path / "a.png", tmp_path / "out" / "a.png"
    Image.fromarray(astronaut).save(source)
    here = Location.parse(str(tmp_path))
    painter = _BatchPainter(STYLE, "cpu", "auto", Options(size=128), here, here, ledger, 1)
    rows = {"source": np.array([str(source)]), "target": np.array([str(target)]), "size_before": np.array([-1]),
            "mtime_before": np.array([0])}
    for _ in range(MAX_CRASHES):  # three attempts that began and never finished: their worker died each time
        ray.get(ledger.begin.remote(str(source)))
    outcome = painter(rows)
    assert outcome["error"] == [f"{source}: crashed its worker {MAX_CRASHES} times; left out"]
    assert not target.exists()

    # a photo whose worker died after writing it is not written again on the retry
    second, second_target = tmp_path / "b.png", tmp_path / "out" / "b.png"
    Image.fromarray(astronaut).save(second)
    rows = {**rows, "source": np.array([str(second)]), "target": np.array([str(second_target)])}
    assert painter(rows)["error"] == [""]
    written = second_target.stat()
    fresh_ledger = ray.remote(Ledger).options(num_cpus=0).remote()
    ray.get(fresh_ledger.begin.remote(str(second)))  # one attempt began, wrote, and died before finishing
    retried = _BatchPainter(STYLE, "cpu", "auto", Options(size=128), here, here, fresh_ledger, 1)
    assert retried(rows)["error"] == [""]
    assert second_target.stat().st_ino == written.st_ino and second_target.stat().st_mtime_ns == written.st_mtime_ns


@needs_ray
def test_stylize_dataset_paints_arrays_and_files_as_the_api_does(cluster: str, tmp_path: Path,
                                                                 astronaut: np.ndarray) -> None:
    import ray

    import stylize
    from stylize.provenance import made_by_stylize
    from stylize.ray import stylize_dataset

    ray.init(address=cluster, logging_level="ERROR", log_to_driver=False, ignore_reinit_error=True)
    small = np.asarray(Image.fromarray(astronaut).resize((200, 200)))
    options = Options(size=160)
    painted = stylize_dataset(ray.data.from_items([{"image": small, "id": 7}]), STYLE, options).take_all()
    expected = np.asarray(stylize.Stylizer(STYLE, "cpu")(small, size=160))
    assert painted[0]["id"] == 7 and painted[0]["image"].shape == small.shape
    assert np.abs(painted[0]["image"].astype(np.int16) - expected).max() <= 1

    Image.fromarray(small).save(tmp_path / "p.jpg", quality=95)
    files = ray.data.read_binary_files(str(tmp_path / "p.jpg"), include_paths=True)
    result = stylize_dataset(files, STYLE, options, column="bytes").take_all()[0]
    (tmp_path / "out.jpg").write_bytes(result["bytes"])
    stylize.Stylizer(STYLE, "cpu").to_file(tmp_path / "p.jpg", tmp_path / "api.jpg", size=160)
    with Image.open(tmp_path / "out.jpg") as got, Image.open(tmp_path / "api.jpg") as want:
        assert got.format == "JPEG" and made_by_stylize(got.info.get("xmp"))
        assert np.abs(np.asarray(got, np.int16) - np.asarray(want, np.int16)).max() <= 1


@needs_ray
def test_other_filesystems_plan_read_and_write_as_local_folders_do(tmp_path: Path, astronaut: np.ndarray) -> None:
    """A pyarrow filesystem that is not the local one (here a sub-tree of it, as an s3:// bucket would be) goes
    through pyarrow's streams: the same jobs, and byte for byte the same files, as a local folder."""
    from pyarrow.fs import LocalFileSystem, SubTreeFileSystem

    import stylize
    from stylize.storage import Location, plan_jobs_at

    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(astronaut).resize((160, 120)).save(folder / "a.jpg")
    Image.fromarray(astronaut).resize((120, 160)).save(folder / "sub" / "b.png")
    (folder / "broken.jpg").write_bytes(b"not a photo")
    stylize.Stylizer(STYLE, "cpu").to_file(folder / "a.jpg", folder / "earlier_output.jpg", size=96)
    local_in, local_out = Location.parse(str(folder)), Location.parse(str(tmp_path / "out"))
    remote = SubTreeFileSystem(str(tmp_path), LocalFileSystem())
    remote_in, remote_out = Location("bucket://in", "in", remote), Location("bucket://remote", "remote", remote)

    local_jobs = plan_jobs_at(local_in, local_out, True, "")
    remote_jobs = plan_jobs_at(remote_in, remote_out, True, "")
    assert [Path(s).relative_to(folder) for s, _ in local_jobs] == [Path(s).relative_to("in") for s, _ in remote_jobs]
    assert not any("earlier_output" in s for s, _ in remote_jobs)  # stylize's own output is not an input
    with pytest.raises(Exception, match="one filesystem"):
        plan_jobs_at(remote_in, local_out, True, "")

    painter = stylize.Stylizer(STYLE, "cpu")
    for (local_source, local_target), (remote_source, remote_target) in zip(local_jobs, remote_jobs):
        if local_source.endswith("broken.jpg"):
            with pytest.raises(stylize.UnreadableImageError, match="bucket://in/broken.jpg"):
                remote_in.read_photo(remote_source, 10**8)
            continue
        for where, source, target in ((local_in, local_source, local_target),
                                      (remote_in, remote_source, remote_target)):
            photo = where.read_photo(source, 10**8)
            rgb = painter.paint(photo, Options(size=96)).rgb
            (local_out if where is local_in else remote_out).write_result(target, photo, rgb, 92, b"<x:xmpmeta/>")
        assert Path(local_target).read_bytes() == (tmp_path / remote_target).read_bytes()
        assert remote_out.fingerprint(remote_target) is not None
