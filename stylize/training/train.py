"""Train style networks with perceptual losses; checkpointed, resumable, bit-for-bit where the hardware allows.

One run trains one painting, or a catalogue of paintings at once in one network with a row of normalisation
parameters per style (each batch item draws its style). ``trunk`` freezes a catalogue's convolutions and learns
only a new style's row: the cheap way to add a painting.

Checkpoints are safetensors (model, Adam state, step) plus a JSON config: no
pickle. Batch k depends only on (seed, k), so ``resume`` continues exactly.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import shutil
import sys
import time
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F
from torch.utils.data import DataLoader

from ..atomic import atomic_path
from ..style_record import StyleRecord
from ..errors import StylizeError, UnreadableImageError
from ..engines.torch import default_dtype, resolve_device, to_tensor, to_uint8
from ..network import NormPass, StyleNet, count_parameters, load_rows, load_weights
from ..weights import (NORM_PARAMETERS, Architecture, file_sha256, identity_row, is_trunk, mix_rows, read_rows,
                       rows_on, save_style_row, save_trunk, save_weights)
from . import losses
from .config import RUN_OPTIONS, TrainConfig
from .data import StepBatches, list_content_images
from .lossnet import VGGFeatures, load_loss_net
from .teacher import PeerTeacher, require_peer


def autocast_for(device: torch.device) -> contextlib.AbstractContextManager:
    """Mixed precision: bf16 on GPUs that have it (fp16 would need loss scaling), else inference's dtype."""
    dtype = default_dtype(device)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        dtype = torch.bfloat16
    return contextlib.nullcontext() if dtype == torch.float32 else torch.autocast(device.type, dtype=dtype)


def learning_rate(cfg: TrainConfig, step: int, time_used: float = 0.0) -> float:
    """Constant, then (from ``lr_decay_start``) a cosine decay to zero at the last step.

    ``time_used`` is the share of ``max_minutes`` spent: a run that will stop on time rather than on steps
    follows whichever is further along, so it still ends decayed (when a GPU's speed is not known beforehand).
    """
    start = cfg.lr_decay_start
    if start is None or cfg.steps <= start:
        return cfg.lr
    progress = max(step / cfg.steps, time_used)
    first = start / cfg.steps
    if progress <= first:
        return cfg.lr
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - first) / (1 - first))))


def load_rgb(path: Path, long_side: int | None = None) -> torch.Tensor:
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
    except (OSError, ValueError, SyntaxError) as exc:  # what Pillow raises for files it cannot decode
        raise UnreadableImageError(f"{path}: not a readable image ({exc})") from None
    if long_side and max(image.size) != long_side:
        scale = long_side / max(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
    return to_tensor(np.asarray(image))


def save_rgb(tensor: torch.Tensor, path: Path) -> None:
    Image.fromarray(to_uint8(tensor.detach())).save(path, quality=92)


#: (dy, dx): where the loss network's crop starts.
Offset = tuple[int, int]

#: Output and photo are cropped by the same random 0..JITTER-1 pixel offset before the loss network, so the
#: network cannot exploit the fixed alignment of VGG's stride-2 pooling with its own 4-pixel upsampling grid
#: (without it, runs painted a regular cross-hatch grid over everything).
JITTER = 8


def jitter(seed: int, step: int) -> Offset:
    rng = np.random.default_rng([seed, step, 1])
    return int(rng.integers(0, JITTER)), int(rng.integers(0, JITTER))


def shift_at(seed: int, step: int) -> Offset:
    """The step's shift for the shift term: 0 to 3 pixels each way, never none (a whole period is no test)."""
    rng = np.random.default_rng([seed, step, 3])
    index = int(rng.integers(1, losses.SHIFT_PERIOD ** 2))
    return divmod(index, losses.SHIFT_PERIOD)


def crops_at(images: torch.Tensor, offsets: Sequence[Offset]) -> torch.Tensor:
    """The batch cropped by JITTER pixels at each offset, stacked offset-major: (len(offsets) * B, C, H-J, W-J)."""
    h, w = images.shape[2] - JITTER, images.shape[3] - JITTER
    crops = [images[..., dy:dy + h, dx:dx + w] for dy, dx in offsets]
    return crops[0] if len(crops) == 1 else torch.cat(crops)


class Objective:
    """Sliced-Wasserstein style (painting features) and colour (painting pixels), content at relu3_3, optional
    tonal layout and TV.

    Each batch item is scored against its own style's painting; items of the identity style (the row after the
    paintings) must give the photo back instead.
    """

    def __init__(self, cfg: TrainConfig, lossnet: VGGFeatures, paintings: Sequence[torch.Tensor]) -> None:
        self.cfg, self.lossnet = cfg, lossnet
        self.paintings = len(paintings)
        #: each row's style weight, indexed by style: the paintings', then 0 for the identity row (no style term)
        self.style_weights = torch.tensor([cfg.painting_weights.get(Path(path).stem, cfg.style_weight)
                                           for path in cfg.style_images] + [0.0])
        with torch.no_grad():
            feats = [lossnet(painting) for painting in paintings]
            self.style = {k: losses.SlicedDistribution([f[k] for f in feats]) for k in losses.STYLE_LAYERS}
            self.palette = losses.SlicedDistribution(paintings)
            self.tone = losses.ToneLayout(paintings, painting_cell=cfg.painting_tone_cell)

    def content_targets(self, photo: torch.Tensor, offsets: Sequence[Offset]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return self.lossnet(crops_at(photo, offsets))

    def __call__(self, output: torch.Tensor, photo: torch.Tensor, offsets: Sequence[Offset],
                 targets: dict[str, torch.Tensor] | None = None, seed: int = 0,
                 styles: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The loss-network terms are averaged over ``offsets`` (see ``jitter``: training passes one, the quality
        benchmark all of them, as one batch); ``targets`` (``content_targets``, same offsets) may be passed in
        when the same photo is scored many times. ``seed`` draws the random projection directions (training
        passes the step, so a resumed run draws the same ones). ``styles``: each item's style (B,), default 0."""
        if targets is None:
            targets = self.content_targets(photo, offsets)
        if styles is None:
            styles = torch.zeros(output.shape[0], dtype=torch.long, device=output.device)
        cfg = self.cfg
        feats = self.lossnet(crops_at(output, offsets))
        painted = styles < self.paintings
        crop_styles, crop_painted = styles.repeat(len(offsets)), painted.repeat(len(offsets))
        generator = torch.Generator().manual_seed(seed)

        def painted_only(mask: torch.Tensor, score: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
            """Per item: ``score(mask)`` where ``mask`` (painted items), 0 elsewhere (identity items)."""
            per_item = torch.zeros(mask.shape[0], device=output.device)
            if mask.any():
                per_item[mask] = score(mask)
            return per_item

        def style_term(features: torch.Tensor, dist: losses.SlicedDistribution, item_styles: torch.Tensor,
                       mask: torch.Tensor) -> torch.Tensor:
            directions = losses.random_directions(features.shape[1], self.cfg.directions, generator, output.device)
            return painted_only(mask, lambda m: dist.distance(features[m], directions, item_styles[m]))

        content = sum(losses.relative_sq_error(feats[k], targets[k]) for k in losses.CONTENT_LAYERS)
        style = sum(style_term(feats[k], dist, crop_styles, crop_painted) for k, dist in self.style.items())
        color = style_term(output, self.palette, styles, painted).repeat(len(offsets))
        tone = painted_only(painted, lambda m: self.tone.distance(output[m], photo[m], styles[m])).repeat(len(offsets))
        identity = (output.float() - photo.float()).abs().mean(dim=(1, 2, 3)).repeat(len(offsets))
        per_item = torch.where(crop_painted, cfg.content_weight * content
                               + self.style_weights.to(output.device)[crop_styles] * style
                               + cfg.color_weight * color + cfg.tone_weight * tone, identity)
        parts = {"content": content.mean(), "style": style.mean(), "color": color.mean(), "tone": tone.mean(),
                 "tv": losses.total_variation(output)}
        parts["total"] = per_item.mean() + cfg.tv_weight * parts["tv"]
        return parts


#: How far (in standard deviations) a norm layer's input may stray from its mean before it counts as a droplet:
#: on a 128 px crop a network without droplets (starry_night's) stays under it, the old catalogue trunk reached 27.
DROPLET_Z = 10.0
#: How far (output pixels) a droplet's spike spreads through the decoder: 4 per feature pixel, and the convolutions.
DROPLET_REACH = 8


def droplet_penalty(peaks: Sequence[torch.Tensor]) -> torch.Tensor:
    """How far each norm layer's largest deviation (``NormPass.peaks``) exceeds DROPLET_Z, averaged.

    Instance norm lets a network hide one strong spike in its features: the spike rules the layer's mean and
    variance, and reaches the picture as a saturated spot (StyleGAN2's droplet). Only training can take it
    out: clamping the spike at inference makes the spot larger.
    """
    return (torch.stack([peak.amax(dim=(1, 2)) for peak in peaks]) - DROPLET_Z).relu().mean()


def droplet_mask(peaks: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """(B, 1, H, W): 1 within DROPLET_REACH of a pixel where any norm layer's input strays past DROPLET_Z."""
    spikes = [F.interpolate((peak > DROPLET_Z).float()[:, None], size=size, mode="nearest") for peak in peaks]
    return F.max_pool2d(torch.stack(spikes).amax(dim=0), 2 * DROPLET_REACH + 1, stride=1, padding=DROPLET_REACH)


@torch.no_grad()
def teacher_target(teacher: StyleNet, content: torch.Tensor, styles: torch.Tensor,
                   without_droplets: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """What distilling matches: the teacher's painting, and a weight per pixel -- 0 near the teacher's droplets
    when they are being trained out (matching them there would teach them again), else 1."""
    norm_pass = NormPass(style=styles, peaks=[] if without_droplets else None)
    target = teacher.paint(content, norm_pass)
    if not norm_pass.peaks:
        return target, torch.ones_like(target[:, :1])
    return target, 1 - droplet_mask(norm_pass.peaks, (target.shape[2], target.shape[3]))


def load_paintings(cfg: TrainConfig) -> list[torch.Tensor]:
    """Each painting at its long side for training: the stroke scale the network learns."""
    return [load_rgb(Path(path), cfg.painting_sizes.get(Path(path).stem, cfg.style_size)) for path in cfg.style_images]


def build_objective(cfg: TrainConfig, device: torch.device = torch.device("cpu")) -> Objective:
    """The recipe's loss network and paintings, ready to score outputs (training and the quality benchmark)."""
    paintings = [painting.to(device) for painting in load_paintings(cfg)]
    layers = tuple(sorted(set(losses.CONTENT_LAYERS + losses.STYLE_LAYERS)))
    lossnet = load_loss_net(cfg.loss_net, layers)  # type: ignore[arg-type]
    lossnet = lossnet.to(device).to(memory_format=torch.channels_last)
    return Objective(cfg, lossnet, paintings)


def config_from_record(saved: dict) -> TrainConfig:
    """A TrainConfig from its JSON record (checkpoint or styles/NAME.json); keys retired since are ignored."""
    known = {f.name for f in fields(TrainConfig)}
    if "style_image" in saved:  # recorded before catalogues: one painting
        saved = {**saved, "style_images": [saved["style_image"]]}
    saved = {"upsample": "nearest", **saved}  # recorded before the choice: every network upsampled by nearest
    return TrainConfig(**{k: (tuple(v) if k in ("widths", "style_images") else v)
                          for k, v in saved.items() if k in known})


def save_checkpoint(path: Path, model: StyleNet, opt: torch.optim.Optimizer, step: int, seconds: float,
                    cfg: TrainConfig) -> None:
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for index, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"opt.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    meta = {"step": str(step), "seconds": f"{seconds:.1f}", "config": json.dumps(asdict(cfg))}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def checkpoint_config(name: str, steps: int | None = None, run_dir: Path = Path(TrainConfig.run_dir)) -> TrainConfig:
    """The configuration a checkpointed run was started with, optionally with a new step count."""
    from safetensors import safe_open

    path = run_dir / name / "checkpoint.safetensors"
    if not path.is_file():
        raise StylizeError(f"--resume: no checkpoint at {path}")
    with safe_open(str(path), framework="pt") as handle:
        cfg = config_from_record(json.loads(handle.metadata()["config"]))
    if steps is not None:
        cfg.steps = steps
    return cfg


def load_checkpoint(path: Path, model: StyleNet, opt: torch.optim.Optimizer) -> tuple[int, float]:
    """Restore model and optimiser; returns the step reached and the training seconds spent so far."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
        step, seconds = int(meta["step"]), float(meta["seconds"])
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    opt_state = opt.state_dict()
    opt_state["state"] = state
    opt.load_state_dict(opt_state)
    return step, seconds


def build_model(cfg: TrainConfig) -> StyleNet:
    """The network to train: fresh, warm-started from ``init``, or a new style's row on a frozen ``trunk`` (the
    trunk and row as one network with ``whole_network``)."""
    if cfg.trunk:
        trunk = Path(cfg.trunk)
        # a whole network as the trunk: a face row for its style, starting from the style's own row
        rows = [Path(cfg.init)] if cfg.init else rows_on(trunk) if is_trunk(trunk) else [trunk]
        if not rows:
            raise StylizeError(f"--trunk {trunk}: no styles made for it in {trunk.parent.parent}")
        # the row starts as --init's (a style trained on), else as the catalogue's average style
        start = mix_rows(read_rows(trunk, [(path, None) for path in rows]), [1.0] * len(rows))
        if cfg.whole_network:
            start = replace(start, arch=replace(start.arch, upsample=cfg.upsample))
        model = StyleNet.from_weights(start)
        model.train()
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(cfg.whole_network or name.endswith(NORM_PARAMETERS))
        return model
    model = StyleNet(Architecture(cfg.widths, cfg.res_blocks, styles=len(cfg.style_names), upsample=cfg.upsample))
    if cfg.init:
        start_from = load_catalogue(Path(cfg.init), cfg.style_names) if is_trunk(Path(cfg.init)) \
            else load_weights(Path(cfg.init))
        if replace(start_from.arch, upsample=cfg.upsample) != model.arch:
            raise StylizeError(f"--init {cfg.init} is a {start_from.arch} network; this run trains a {model.arch}: "
                               "pass --widths to match it")
        model.load_state_dict(start_from.state_dict())
    return model


def load_catalogue(trunk: Path, names: list[str]) -> StyleNet:
    """A catalogue network back from its files: ``trunk`` and, in order, each named style's row: kept unshipped
    beside the trunk (``trunks/NAME.unshipped/``, for training to go on), else shipped in the weights folder."""
    def row(name: str) -> Path:
        if name == "identity":
            return identity_row(trunk)
        unshipped = trunk.parent / f"{trunk.stem}.unshipped" / f"{name}.safetensors"
        return unshipped if unshipped.is_file() else trunk.parent.parent / f"{name}.safetensors"

    return load_rows(trunk, [(row(name), None) for name in names])


def draw_styles(seed: int, step: int, batch: int, styles: int) -> torch.Tensor:
    """Each batch item's style row for this step, from (seed, step) alone."""
    return torch.from_numpy(np.random.default_rng([seed, step, 2]).integers(0, styles, batch))


@torch.no_grad()
def sample_grid(model: StyleNet, photo: torch.Tensor, columns: int = 8) -> torch.Tensor:
    """The progress sample: the photo in every style the network has, in rows of ``columns``."""
    was_training = model.training
    model.eval()
    styles = model.arch.styles
    if styles > 1:
        photo = F.interpolate(photo, scale_factor=0.5, mode="area")
    tiles = [model(photo, torch.tensor([index], device=photo.device)) for index in range(styles)]
    tiles += [torch.ones_like(tiles[0])] * (-styles % columns if styles > columns else 0)
    rows = [torch.cat(tiles[i:i + columns], dim=3) for i in range(0, len(tiles), columns)]
    model.train(was_training)
    return torch.cat(rows, dim=2)


#: The previews' portrait: NASA's astronaut photo (public domain), as shipped by scikit-image.
SAMPLE_PORTRAIT = Path(__file__).resolve().parents[2] / "samples" / "astronaut.jpg"


def sample_photo(paths: list[Path]) -> Path:
    """A fixed photo with a face for progress samples (CelebA-HQ if present)."""
    faces = [p for p in paths if p.name.startswith(("celebahq", "facerec", "vmhuman"))]
    return (faces or paths)[0]


def train(cfg: TrainConfig, resume: bool = False, log: Callable[[str], None] | None = None) -> Path:
    """Run (or continue) training; returns the path of the written weights file. The process's random state
    and cuDNN's autotuning are the caller's: the run seeds its own (``cfg.seed``) and both are restored after."""
    cfg.validated()
    device = resolve_device(cfg.device)
    cuda_devices = [device.index or 0] if device.type == "cuda" else []
    autotune = torch.backends.cudnn.benchmark
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(cfg.seed)
        torch.backends.cudnn.benchmark = True  # every step has the same shapes
        try:
            return _run(cfg, device, resume, log or (lambda line: print(line, file=sys.stderr, flush=True)))
        finally:
            torch.backends.cudnn.benchmark = autotune


def _run(cfg: TrainConfig, device: torch.device, resume: bool, log: Callable[[str], None]) -> Path:
    # everything a user can get wrong is checked before runs/NAME/ is made
    paths = list_content_images(Path(cfg.content_dir))
    peer = None
    if cfg.teacher_weight:
        peer = PeerTeacher(Path(cfg.style_images[0]), require_peer())
    model = build_model(cfg)
    objective = None if cfg.identity or cfg.distill else build_objective(cfg, device)
    teacher = copy.deepcopy(model).to(device) if cfg.distill else None  # the --init network, before any step
    out_dir = cfg.out_dir
    ckpt = out_dir / "checkpoint.safetensors"
    if resume and not ckpt.is_file():
        raise StylizeError(f"--resume: no checkpoint at {ckpt}")
    out_dir.mkdir(parents=True, exist_ok=True)

    model = model.to(device).to(memory_format=torch.channels_last).train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    start, seconds_before = 0, 0.0
    if resume:
        start, seconds_before = load_checkpoint(ckpt, model, opt)
        log(f"resumed {cfg.name} at step {start}")
    sample = load_rgb(sample_photo(paths), 384).to(device)

    batches = DataLoader(StepBatches(paths, cfg.size, cfg.batch, cfg.seed, cfg.cache_content, peer), batch_size=None,
                         sampler=range(start, cfg.steps), num_workers=cfg.workers,
                         persistent_workers=False, prefetch_factor=4 if cfg.workers else None)
    amp = autocast_for(device)
    began = time.time()
    deadline = began + cfg.max_minutes * 60 if cfg.max_minutes else float("inf")
    parts: dict[str, torch.Tensor] = {}
    step = start
    for step, (content, painted_by_peer) in enumerate(batches, start + 1):
        content = content.to(device).contiguous(memory_format=torch.channels_last)
        styles = draw_styles(cfg.seed, step, cfg.batch, model.arch.styles).to(device)
        norm_pass = NormPass(style=styles, peaks=[] if cfg.droplet_weight else None)
        with amp:
            output = model.paint(content, norm_pass)
            if teacher is not None:
                target, weight = teacher_target(teacher, content, styles, bool(cfg.droplet_weight))
                parts = {"total": ((output.float() - target.float()).abs() * weight).mean()}
            elif objective is None:
                parts = {"total": (output.float() - content).abs().mean()}
            else:
                parts = objective(output, content, [jitter(cfg.seed, step)], seed=step, styles=styles)
            if painted_by_peer is not None:
                parts["teacher"] = losses.teacher_layout(output, painted_by_peer.to(device))
                parts["total"] = parts["total"] + cfg.teacher_weight * parts["teacher"]
            if cfg.shift_weight:
                parts["shift"] = losses.shift_equivariance(lambda x: model.paint(x, NormPass(style=styles)), content,
                                                           output, shift_at(cfg.seed, step))
                parts["total"] = parts["total"] + cfg.shift_weight * parts["shift"]
            if norm_pass.peaks:
                parts["droplet"] = droplet_penalty(norm_pass.peaks)
                parts["total"] = parts["total"] + cfg.droplet_weight * parts["droplet"]
        opt.zero_grad(set_to_none=True)
        parts["total"].backward()
        time_used = (time.time() - began) / (cfg.max_minutes * 60) if cfg.max_minutes else 0.0
        for group in opt.param_groups:
            group["lr"] = learning_rate(cfg, step, time_used)
        # Adam adapts to the gradient scale, so clipping only damps sudden spikes (which once diverged a run)
        parts["grad_norm"] = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
        opt.step()
        if step % cfg.log_every == 0 or step == cfg.steps:
            rate = (time.time() - began) / max(1, step - start)
            eta = rate * (cfg.steps - step)
            log(f"step {step}/{cfg.steps} {rate:.2f}s/step eta {eta / 60:.1f}min "
                + " ".join(f"{k}={v.item():.4f}" for k, v in parts.items()))
        if step % cfg.sample_every == 0:
            save_rgb(sample_grid(model, sample), out_dir / f"sample_{step:06d}.jpg")
        out_of_time = time.time() > deadline
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or out_of_time:
            save_checkpoint(ckpt, model, opt, step, seconds_before + time.time() - began, cfg)
        if out_of_time:
            log(f"--max-minutes reached at step {step}: exporting (continue with --resume)")
            break

    final_losses = {k: round(float(v.item()), 6) for k, v in parts.items()}
    seconds = seconds_before + time.time() - began
    return export(cfg, model.eval(), step, seconds, final_losses, len(paths), peer.source if peer else None)


def export(cfg: TrainConfig, model: StyleNet, step: int, seconds: float, final_losses: dict[str, float],
           content_photos: int, teacher: str | None = None) -> Path:
    """Write the weights, merge the training record into each style's styles/STYLE.json, and previews on the
    bundled public-domain portrait (``samples/``: training photos may not be redistributed).

    One painting: weights/NAME.safetensors is the whole network. A catalogue: weights/trunks/NAME.safetensors
    holds the shared convolutions and weights/STYLE.safetensors each style's row (the identity row goes beside
    the trunk: it is no painting to list). A new style on a frozen ``trunk``: its row alone (with
    ``whole_network``, the whole network). Returns the weights file written (the trunk for a catalogue).
    """
    model = model.cpu().eval()
    portrait = load_rgb(SAMPLE_PORTRAIT, 384)
    weights_dir, styles_dir = Path(cfg.weights_dir), Path(cfg.styles_dir)
    styles_dir.mkdir(parents=True, exist_ok=True)
    names, trunk_name, trunk_sha256 = [cfg.name], None, None
    if cfg.trunk and not cfg.whole_network:
        trunk, trunk_name = Path(cfg.trunk), Path(cfg.trunk).stem
        trunk_sha256 = file_sha256(trunk)
        carried = weights_dir / "trunks" / trunk.name
        if not carried.exists():  # exported elsewhere (--export-to): the row takes its trunk along, to paint and be judged
            carried.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(trunk, carried)
    elif model.arch.styles > 1:
        names, trunk_name = cfg.style_names, cfg.name
        trunk = weights_dir / "trunks" / f"{cfg.name}.safetensors"
        trunk.parent.mkdir(parents=True, exist_ok=True)
        save_trunk(model, trunk, {"style_names": ",".join(names)})
        trunk_sha256 = file_sha256(trunk)
    else:
        trunk = weights_dir / f"{cfg.name}.safetensors"
        save_weights(model, trunk, {"style": cfg.name})
    training = {
        # the network's own widths: a row on a frozen trunk has the trunk's, whatever --widths said
        "recipe": {k: v for k, v in asdict(replace(cfg, widths=model.arch.widths)).items() if k not in RUN_OPTIONS},
        "style_images": [Path(path).name for path in cfg.style_images],
        "content_set": f"{Path(cfg.content_dir).name} ({content_photos} photos)",
        "loss_net": cfg.loss_net,
        "content_layers": list(losses.CONTENT_LAYERS),
        "style_layers": list(losses.STYLE_LAYERS),
        "steps": step,
        "seconds": round(seconds, 1),
        "final_losses": final_losses,
        "torch": torch.__version__,
        **({"teacher": teacher} if teacher else {}),  # whose look --teacher-weight learned from
        # which --init this was (the file may be replaced later, e.g. by shipping this run)
        **({"init_sha256": file_sha256(Path(cfg.init))} if cfg.init and Path(cfg.init).is_file() else {}),
    }
    one_row = replace(model.arch, styles=1)
    architecture = {**one_row.to_metadata(), "parameters": count_parameters(StyleNet(one_row))}
    for row, name in enumerate(names):
        if trunk_sha256 is None:
            weights = trunk
        elif name == "identity":
            save_style_row(model, row, identity_row(trunk), trunk_sha256)
            continue
        else:
            weights = weights_dir / f"{name}.safetensors"
            save_style_row(model, row, weights, trunk_sha256, {"style": name})
        record_path = styles_dir / f"{name}.json"
        record = StyleRecord.read(record_path) if record_path.exists() else StyleRecord({"name": name})
        # a style retrained as a whole network leaves its catalogue (no trunk then)
        record.updated(architecture=architecture, training=training, trunk=trunk_name if trunk_sha256 else None,
                       trunk_sha256=trunk_sha256, weights_sha256=file_sha256(weights)).write(record_path)
        with torch.no_grad():
            save_rgb(model(portrait, torch.tensor([row])), styles_dir / f"{name}.jpg")
    if styles_dir.parent == weights_dir.parent:  # a catalogue: its graphs for the onnxruntime engine, made current
        from ..export import export_catalogue

        export_catalogue(weights_dir.parent)
    return weights if len(names) == 1 else trunk
