"""What a finished run leaves: its weights (a whole network, a catalogue's trunk and rows, or one row), each
style's record and preview, and, inside a catalogue, current ONNX graphs."""

from __future__ import annotations

import shutil
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from ..style_record import StyleRecord
from ..errors import UnreadableImageError
from ..engines.torch import to_tensor, to_uint8
from ..network import StyleNet, count_parameters
from ..weights import file_sha256, identity_row, save_style_row, save_trunk, save_weights
from . import losses
from .config import RUN_OPTIONS, TrainConfig




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


def publish(cfg: TrainConfig, model: StyleNet, step: int, seconds: float, final_losses: dict[str, float],
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
