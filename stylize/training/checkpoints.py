"""Checkpoints: safetensors (model, Adam state, step) with the run's recipe as JSON, no pickle; a run resumes
exactly from one (batch k depends only on (seed, k))."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from ..atomic import atomic_path
from ..errors import StylizeError
from ..network import StyleNet
from .config import TrainConfig




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
        cfg = TrainConfig.from_record(json.loads(handle.metadata()["config"]))
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
