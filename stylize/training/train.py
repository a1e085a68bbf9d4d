"""The training loop: style networks with perceptual losses (``objective``), checkpointed and resumable
(``checkpoints``), bit-for-bit where the hardware allows, and published when done (``publish``).

One run trains one painting, or a catalogue of paintings at once in one network with a row of normalisation
parameters per style (each batch item draws its style). ``trunk`` freezes a catalogue's convolutions and learns
only a new style's row: the cheap way to add a painting (or a face row on a style's own network).
"""

from __future__ import annotations

import contextlib
import copy
import math
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..errors import StylizeError
from ..engines.torch import default_dtype, resolve_device
from ..network import NormPass, StyleNet, load_rows, load_weights
from ..weights import (NORM_PARAMETERS, Architecture, identity_row, is_trunk, mix_rows, read_metadata, read_rows,
                       rows_on)
from . import losses
from .config import TrainConfig
from .data import StepBatches, list_content_images
from .teacher import PeerTeacher, require_peer
from .checkpoints import load_checkpoint, save_checkpoint
from .objective import build_objective, droplet_penalty, jitter, shift_at, teacher_target
from .publish import load_rgb, publish, sample_grid, sample_photo, save_rgb




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
        start_from = load_start(Path(cfg.init), cfg.style_names)
        if replace(start_from.arch, upsample=cfg.upsample) != model.arch:
            raise StylizeError(f"--init {cfg.init} is a {start_from.arch} network; this run trains a {model.arch}: "
                               "pass --widths to match it")
        model.load_state_dict(start_from.state_dict())
    return model


def load_start(init: Path, names: list[str]) -> StyleNet:
    """What ``--init`` names, as a network for these styles: a catalogue from its files, or a whole network; one
    painting's network starts every row of a catalogue as its own row (new styles that blend, from a good start)."""
    if is_trunk(init):
        return load_catalogue(init, names)
    if len(names) > 1 and Architecture.from_metadata(read_metadata(init), str(init)).styles == 1:
        return load_rows(init, [(init, None)] * len(names))
    return load_weights(init)


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
    return publish(cfg, model.eval(), step, seconds, final_losses, len(paths), peer.source if peer else None)
