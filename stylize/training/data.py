"""Training batches: random crops and flips of content photos (and of a teacher's paintings of them), decoded in a
worker process.

Batch ``k`` depends only on (seed, k), so a resumed run sees exactly the
batches the interrupted one would have.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..errors import StylizeError
from ..image_io import FORMATS


#: Portraits of ``shared/data/content`` held out of training: the style-distance and face benchmarks and the
#: contact sheets use them (with scikit-image's astronaut). Chosen by eye for single faces and groups, small
#: faces, light and dark skin, children and old people; each has a face mesh MediaPipe finds on the photo.
EVALUATION_PORTRAITS = (
    "celebahq_0005.jpg", "celebahq_0019.jpg", "celebahq_0022.jpg", "celebahq_0031.jpg", "celebahq_0045.jpg",
    "gpen_0002.jpg", "gpen_0003.jpg", "gpen_0004.jpg", "gpen_0005.jpg", "facerec_0008.jpg", "facerec_0011.jpg",
    "dlib_0010.jpg", "vmhuman_0017.jpg",
    "ulfd_0001.jpg", "ulfd_0012.jpg", "dlib_0005.jpg", "codeformer_0001.jpg", "vmhuman_0001.jpg",
    "vmhuman_0004.jpg", "cocoval_0013.jpg", "mmpose_0007.jpg",
)


def list_content_images(content_dir: Path) -> list[Path]:
    """Every image under ``content_dir`` except the held-out evaluation portraits."""
    paths = sorted(p for p in content_dir.rglob("*") if p.suffix.lower() in FORMATS and p.is_file()
                   and p.name not in EVALUATION_PORTRAITS)
    if not paths:
        raise StylizeError(f"--content-dir {content_dir}: no training photos found there")
    return paths


def random_crops(images: Sequence[Image.Image], size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The same size x size crop of each image (all of one size; the short side scaled up to ``size`` if
    needed), all flipped or none."""
    w, h = images[0].size
    scale = size / min(w, h)
    if scale > 1:
        w, h = max(size, round(w * scale)), max(size, round(h * scale))
        images = [image.resize((w, h), Image.BICUBIC) for image in images]
    left, top = int(rng.integers(0, w - size + 1)), int(rng.integers(0, h - size + 1))
    crops = [np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8) for image in images]
    return [crop[:, ::-1] for crop in crops] if rng.random() < 0.5 else crops


#: Photo -> a teacher's painting of it, at the photo's size (``teacher.PeerTeacher``).
Teacher = Callable[[Image.Image], Image.Image]


def to_batch(crops: Sequence[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div_(255.0)


class StepBatches(Dataset):
    """Item ``k`` is the batch of training step ``k``: (photos, the teacher's paintings of them or None), float
    tensors (B, 3, S, S) in [0, 1]."""

    def __init__(self, paths: list[Path], size: int, batch: int, seed: int, cache: bool = False,
                 teacher: Teacher | None = None) -> None:
        self.paths, self.size, self.batch, self.seed, self.teacher = paths, size, batch, seed, teacher
        #: decoded photos (and their teacher's paintings) kept per worker when ``cache``: a fast GPU step outruns
        #: JPEG decoding
        self.decoded: dict[int, list[Image.Image]] | None = {} if cache else None

    def images(self, index: int) -> list[Image.Image]:
        """The photo, and the teacher's painting of it when there is a teacher."""
        if self.decoded is not None and index in self.decoded:
            return self.decoded[index]
        with Image.open(self.paths[index]) as image:
            images = [image.convert("RGB")]
        if self.teacher is not None:
            images.append(self.teacher(images[0]))
        if self.decoded is not None:
            self.decoded[index] = images
        return images

    def __len__(self) -> int:
        return 2**31 - 1

    def __getitem__(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        rng = np.random.default_rng([self.seed, step])
        picks = rng.integers(0, len(self.paths), self.batch)
        pairs = [random_crops(self.images(int(index)), self.size, rng) for index in picks]
        photos = to_batch([pair[0] for pair in pairs])
        return photos, to_batch([pair[1] for pair in pairs]) if self.teacher is not None else None
