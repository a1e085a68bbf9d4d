"""Batches on a Ray cluster: Ray Data's ``map_batches`` over a pool of actors, one engine and one MediaPipe each.

``stylize batch --ray`` plans its jobs as plain ``stylize batch`` does and keeps its promises (a mirrored tree,
atomic writes, ``--skip-existing``, every failure with its reason). The actors read and write the photos
themselves, so the driver holds only their names. Ray retries the work of an actor that dies; a ledger actor
remembers which photos were finished and how often each was begun, so a retried photo is never written twice,
and one that crashes its worker ``MAX_CRASHES`` times is reported failed instead of being retried forever.

``stylize_dataset`` is the same actor pool for people who already hold a Ray Dataset.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .atomic import PARTIAL_SUFFIX, remove_stale_partials
from .batch import BatchReport, split_existing
from .errors import MissingExtraError, StylizeError
from .options import EngineName, Options
from .storage import Location

if TYPE_CHECKING:
    import ray.data

#: A photo whose painting killed its worker this many times is reported failed, not retried again.
MAX_CRASHES = 3
#: How many blocks a batch's job list is cut into at most (each block is one task for one actor).
MAX_BLOCKS = 10_000


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise MissingExtraError("Ray batches need Ray: pip install 'stylize[ray]'") from None
    return ray


@dataclass(frozen=True)
class ActorPlan:
    """How the photos are spread over the cluster: actors, each with ``threads`` CPU threads (or one GPU), and
    ``batch_size`` photos a call."""

    actors: int
    threads: int
    gpus: float
    batch_size: int

    @classmethod
    def for_resources(cls, resources: dict[str, float], device: str, actors: int | None = None,
                      batch_size: int | None = None) -> "ActorPlan":
        """One actor per GPU where the cluster has GPUs and the device allows CUDA, else one per CPU thread pair
        (one per CPU on machines of under 4 cores): an actor holds a network and MediaPipe, about 0.5 GB."""
        cls.check(actors, batch_size)
        cpus = max(1, int(resources.get("CPU", 1)))
        gpus = int(resources.get("GPU", 0))
        if gpus and device != "cpu":
            return cls(actors or gpus, 1, 1.0, batch_size or 1)
        threads = 2 if cpus >= 4 else 1
        chosen = actors or max(1, cpus // threads)
        return cls(chosen, max(1, cpus // chosen), 0.0, batch_size or 1)

    @staticmethod
    def check(actors: int | None, batch_size: int | None) -> None:
        """Refuse overrides that cannot be (before any cluster starts)."""
        if actors is not None and actors < 1:
            raise StylizeError(f"actors must be 1 or more, got {actors}")
        if batch_size is not None and batch_size < 1:
            raise StylizeError(f"batch size must be 1 or more, got {batch_size}")

    def map_batches_args(self, fixed: bool = True, **painter_kwargs: Any) -> dict[str, Any]:
        """``Dataset.map_batches``'s arguments for a pool of painters built with ``painter_kwargs``: of
        ``actors`` always, or (``fixed`` False) of up to ``actors``, leaving CPUs to the stages that read."""
        ray = _ray()
        # two calls at once in each actor: one decodes or encodes while the other paints (the stylizer's stages
        # take turns behind their own locks), as plain batch overlaps them with threads
        sizes = {"size": self.actors} if fixed else {"min_size": 1, "max_size": self.actors}
        pool = ray.data.ActorPoolStrategy(**sizes, max_concurrent_calls_per_actor=2, enable_true_multi_threading=True)
        return {"batch_size": self.batch_size, "compute": pool,
                "num_cpus": self.threads if not self.gpus else 1, "num_gpus": self.gpus or None,
                "fn_constructor_kwargs": {**painter_kwargs, "threads": self.threads},
                # every library's thread pool sized to the actor's share of the machine, as the actor starts
                "runtime_env": {"env_vars": {"OMP_NUM_THREADS": str(self.threads),
                                             "OPENCV_FOR_THREADS_NUM": str(self.threads)}}}


class Ledger:
    """What became of each photo of a run, kept by one actor: how often it was begun, and its outcome."""

    def __init__(self) -> None:
        self.begun: dict[str, int] = {}
        self.outcomes: dict[str, tuple[str, str]] = {}

    def begin(self, source: str) -> tuple[int, tuple[str, str] | None]:
        """(attempt number, the outcome where an earlier attempt finished it)."""
        if source in self.outcomes:
            return self.begun[source], self.outcomes[source]
        self.begun[source] = self.begun.get(source, 0) + 1
        return self.begun[source], None

    def finish(self, source: str, outcome: tuple[str, str]) -> None:
        self.outcomes[source] = outcome


class _BatchPainter:
    """One actor of ``stylize batch --ray``: reads, paints and writes its photos; returns (error, warning) rows."""

    def __init__(self, style: str, device: str, engine: str, options: Options, source: Location, target: Location,
                 ledger: Any, threads: int) -> None:
        from .api import Stylizer

        self.stylizer = Stylizer(style, device, engine, threads)
        self.options, self.source, self.target, self.ledger = options, source, target, ledger
        self.xmp = self.stylizer.provenance(options)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[str]]:
        outcomes = [self._outcome(str(source), str(target), None if size < 0 else (int(size), int(mtime)))
                    for source, target, size, mtime in zip(batch["source"], batch["target"], batch["size_before"],
                                                           batch["mtime_before"])]
        return {"source": [str(s) for s in batch["source"]], "error": [error for error, _ in outcomes],
                "warning": [warning for _, warning in outcomes]}

    def _outcome(self, source: str, target: str, before: tuple[int, int] | None) -> tuple[str, str]:
        ray = _ray()
        attempt, finished = ray.get(self.ledger.begin.remote(source))
        if finished is not None:  # a retried call: its worker died after finishing this photo
            return finished
        if attempt > 1 and self.target.fingerprint(target) not in (None, before):
            outcome = ("", "")  # written by an attempt whose worker died before it could say so
        elif attempt > MAX_CRASHES:
            outcome = (f"{self.source.name(source)}: crashed its worker {MAX_CRASHES} times; left out", "")
        else:
            outcome = self._paint(source, target)
        ray.get(self.ledger.finish.remote(source, outcome))
        return outcome

    def _paint(self, source: str, target: str) -> tuple[str, str]:
        try:
            photo = self.source.read_photo(source, self.options.max_pixels)
            rendering = self.stylizer.paint(photo, self.options)
            photo.release_pixels()  # only its metadata is needed to save
            self.target.write_result(target, photo, rendering.rgb, self.options.quality, self.xmp)
        except StylizeError as exc:
            return str(exc), ""
        warning = self.stylizer.lost_faces_warning(rendering.faces, self.target.name(target), self.options)
        return "", warning or ""


def run_batch_on_ray(style: str, jobs: list[tuple[str, str]], source: Location, target: Location,
                     options: Options, *, device: str = "auto", engine: EngineName | str = EngineName.AUTO,
                     skip_existing: bool = False, address: str | None = None, actors: int | None = None,
                     batch_size: int | None = None, on_done: Callable[[str, str | None], None] | None = None,
                     on_start: Callable[[ActorPlan, str | None], None] | None = None) -> BatchReport:
    """``run_batch`` on a Ray cluster: the jobs of ``storage.plan_jobs_at``, painted by a pool of actors.

    Joins the cluster at ``address`` (or ``RAY_ADDRESS``), else starts Ray on this machine, unless this process
    is connected already; ``on_start`` hears the plan and the dashboard's address (None without a dashboard)."""
    ray = _ray()
    options = options.validated()
    ActorPlan.check(actors, batch_size)
    before = {t: target.fingerprint(t) for _, t in jobs}  # what each output was as the run was planned
    todo, skipped = split_existing(jobs, skip_existing, lambda t: before[t] is not None)
    report = BatchReport(skipped=[Path(source.name(s)) for s in skipped])
    for skipped_source in skipped:
        if on_done:
            on_done(source.name(skipped_source), None)
    folders = sorted({str(Path(t).parent) for _, t in todo}) if target.filesystem is None else []
    for folder in folders:
        remove_stale_partials(Path(folder))  # left by a batch that was killed while saving
    if not todo:
        return report
    connected_here = not ray.is_initialized()
    if connected_here:  # Ray's own lines stay in its log files: its errors alone reach stderr
        # no address: a Ray of this run's own ("local"), never whichever cluster this machine happens to run
        context = ray.init(address=address or os.environ.get("RAY_ADDRESS") or "local", logging_level=logging.ERROR,
                           log_to_driver=False)
    else:
        context = ray.get_runtime_context()
    try:
        plan = ActorPlan.for_resources(ray.cluster_resources(), device, actors, batch_size)
        if on_start:
            on_start(plan, getattr(context, "dashboard_url", None) or None)
        ledger = ray.remote(Ledger).options(num_cpus=0).remote()
        rows = []
        for source_name, target_name in todo:  # size -1: no output before this run
            size, mtime = before[target_name] or (-1, 0)
            rows.append({"source": source_name, "target": target_name, "size_before": size, "mtime_before": mtime})
        painted = ray.data.from_items(rows, override_num_blocks=min(len(rows), MAX_BLOCKS)).map_batches(
            _BatchPainter, **plan.map_batches_args(
                style=style, device=device, engine=EngineName(engine).value, options=options, source=source,
                target=target, ledger=ledger))
        # the caller draws the progress, driven by finished photos; Ray Data's own lines go to its log file
        painted.context.enable_progress_bars = False
        painted.context.print_on_execution_start = False
        targets = dict(todo)
        for row in painted.iter_rows():  # as each photo is finished, in no particular order
            name, error, warning = source.name(row["source"]), row["error"] or None, row["warning"] or None
            written = Path(target.name(targets[row["source"]]))
            if error:
                report.failed.append((Path(name), error))
            else:
                report.written.append(written)
                if warning:
                    report.faces_lost.append((written, warning))
            if on_done:
                on_done(name, error)
    finally:
        if connected_here:
            ray.shutdown()
        _remove_partials_once_writers_stop(folders)
    return report


def quiet_console_logs() -> None:
    """For command-line programs (it changes the process's logging, so the API never calls it): Ray Data's
    console lines at errors only; all of them stay in its log file."""
    _ray()  # Ray Data sets its loggers up as it is imported
    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler):  # the console, not the session log file
            handler.setLevel(logging.ERROR)


def _remove_partials_once_writers_stop(folders: list[str], wait_s: float = 10.0) -> None:
    """After an interrupted run, the temporaries of actors that were writing: removed once their processes are
    gone (Ray stops them within moments of the driver letting go)."""
    deadline = time.monotonic() + wait_s
    while True:
        for folder in folders:
            remove_stale_partials(Path(folder))
        if time.monotonic() > deadline or not any(any(Path(f).glob(f".*{PARTIAL_SUFFIX}")) for f in folders):
            return
        time.sleep(0.2)


class _ImagePainter:
    """One actor of ``stylize_dataset``: paints the images of one column, given as arrays or as files' bytes."""

    def __init__(self, style: str, device: str, engine: str, options: Options, column: str, threads: int) -> None:
        from .api import Stylizer

        self.stylizer = Stylizer(style, device, engine, threads)
        self.options, self.column = options, column
        self.xmp = self.stylizer.provenance(options)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        batch[self.column] = [self._paint(item) for item in batch[self.column]]
        return batch

    def _paint(self, item: Any) -> Any:
        from .image_io import encode_image, from_array, photo_from_bytes, to_pil

        if isinstance(item, (bytes, bytearray)):  # an encoded file: returned as one, in its own format
            photo = photo_from_bytes(bytes(item), "image", self.options.max_pixels)
            rgb = self.stylizer.paint(photo, self.options).rgb
            return encode_image(to_pil(rgb, photo.alpha), f"image{_suffix_of(bytes(item))}", self.options.quality,
                                photo.exif, photo.icc_profile, self.xmp)
        photo = from_array(np.asarray(item), self.options.max_pixels)
        rgb = self.stylizer.paint(photo, self.options).rgb
        return rgb if photo.alpha is None else np.dstack([rgb, photo.alpha])


def _suffix_of(data: bytes) -> str:
    """The extension ``encode_image`` writes a file's own format under (formats it cannot write: PNG)."""
    import io

    from PIL import Image

    from .image_io import FORMATS

    with Image.open(io.BytesIO(data)) as image:
        kind = image.format
    return next((suffix for suffix, name in FORMATS.items() if name == kind), ".png")


def stylize_dataset(ds: "ray.data.Dataset", style: str, options: Options = Options(), *, column: str = "image",
                    device: str = "auto", engine: EngineName | str = EngineName.AUTO, actors: int | None = None,
                    batch_size: int | None = None) -> "ray.data.Dataset":
    """``ds`` with the images of ``column`` painted in ``style`` by a pool of actors (lazily, as Ray Datasets are).

    The column holds arrays (``ray.data.read_images``: HxWx3 or HxWx4 uint8, returned as arrays) or files' bytes
    (``ray.data.read_binary_files``: returned as bytes in the file's own format, with its metadata and the
    provenance packet). An unreadable image fails the dataset with its ``StylizeError``."""
    ray = _ray()
    if not ray.is_initialized():  # as Ray Data itself would, to read the cluster's resources first
        ray.init()
    plan = ActorPlan.for_resources(ray.cluster_resources(), device, actors, batch_size)
    return ds.map_batches(_ImagePainter, **plan.map_batches_args(
        fixed=False, style=style, device=device, engine=EngineName(engine).value, options=options.validated(), column=column))
