"""Exporting networks to the ONNX graphs the light install runs (``stylize export``; needs ``stylize[torch]``).

One graph per weights file (a whole network or a catalogue's trunk), written beside it: opset 17,
dynamic height and width, the norm rows and statistics as inputs (see ``stylize.engines.onnx``).
Its convolution weights are stored in float16, as in the safetensors file they came from, and cast
once when onnxruntime loads the graph. The graph records the sha256 of its weights file; each style
records its graph's sha256 (``graph_sha256`` in ``styles/NAME.json``).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .atomic import atomic_path
from .catalogue import Style, catalogue_root, list_styles, read_selection
from .engines.onnx import GRAPH_FORMAT, INPUTS, OUTPUTS, graph_path, stale_graph_reason
from .errors import BadWeightsError
from .network import NormPass, StyleNet
from .weights import NORM_PARAMETERS, Weights, file_sha256, is_row, read_network

OPSET = 17


class GraphForm(nn.Module):
    """The network as the graph computes it: everything a style or a tile changes is an input."""

    def __init__(self, weights: Weights) -> None:
        super().__init__()
        one_row = {name: t[:1] if name.endswith(NORM_PARAMETERS) else t for name, t in weights.tensors.items()}
        self.net = StyleNet.from_weights(replace(weights, arch=replace(weights.arch, styles=1), tensors=one_row))

    def forward(self, image: torch.Tensor, norm_rows: torch.Tensor, stats: torch.Tensor,
                replay: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        norm_pass = NormPass(rows=norm_rows, stats=stats, replay=replay, measured=[])
        return self.net.paint(image, norm_pass), norm_pass.measured_stats()


def graph_bytes(weights: Weights) -> bytes:
    """The serialised ONNX graph of ``weights``' network, with float16 storage and its source recorded."""
    import onnx

    form = GraphForm(weights).eval()
    rows = torch.from_numpy(weights.norm_rows()[0])
    example = (torch.rand(1, 3, 64, 64), rows, torch.zeros_like(rows), torch.zeros(1))
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(form, example, buffer, dynamo=False, opset_version=OPSET, input_names=list(INPUTS),
                          output_names=list(OUTPUTS),
                          dynamic_axes={"image": {2: "height", 3: "width"}, "painted": {2: "height", 3: "width"}})
    model = onnx.load_from_string(buffer.getvalue())
    _store_half(model)
    metadata = {"graph_format": GRAPH_FORMAT, "source": weights.source.name, "source_sha256": weights.source_sha256,
                **{f"arch_{key}": value for key, value in weights.arch.to_metadata().items()}}
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _store_half(model) -> None:  # noqa: ANN001  (an onnx.ModelProto)
    """Keep each float32 weight tensor as float16 plus a Cast node: half the file, the same values."""
    import onnx
    from onnx import numpy_helper

    graph = model.graph
    casts = []
    for initializer in graph.initializer:
        if initializer.data_type != onnx.TensorProto.FLOAT or len(initializer.dims) < 1:
            continue
        values = numpy_helper.to_array(initializer)
        name = initializer.name
        initializer.CopyFrom(numpy_helper.from_array(values.astype(np.float16), f"{name}.f16"))
        casts.append(onnx.helper.make_node("Cast", [f"{name}.f16"], [name], to=onnx.TensorProto.FLOAT))
    nodes = casts + list(graph.node)  # before every use: nodes are in topological order
    del graph.node[:]
    graph.node.extend(nodes)


def export(weights: Weights) -> tuple[Path, str]:
    """Write ``weights``' graph beside its file (atomically); returns its path and sha256."""
    path, graph = graph_path(weights.source), graph_bytes(weights)
    with atomic_path(path) as tmp:
        tmp.write_bytes(graph)
    return path, hashlib.sha256(graph).hexdigest()


def _is_current(weights: Weights) -> bool:
    try:
        return stale_graph_reason(weights) is None
    except BadWeightsError:  # a damaged graph is replaced
        return False


def export_catalogue(root: Path | None = None) -> list[tuple[Path, list[Style]]]:
    """A current graph for every installed style's network and face network (a graph already current is kept as
    it is), and its sha256 recorded in each style's metadata file. Returns each graph with the styles it paints."""
    root = root or catalogue_root()
    by_source: dict[Path, list[Style]] = {}  # one graph per whole network or trunk, read once
    for style in list_styles(root):
        by_source.setdefault(style.trunk or style.weights, []).append(style)
    written = []
    for styles in by_source.values():
        path, digest = current_graph(read_selection(styles[0]))
        for style in styles:
            if style.graph_sha256 != digest:
                style.record.updated(graph_sha256=digest).write(root / "styles" / f"{style.name}.json")
        written.append((path, styles))
    for style in list_styles(root):  # face networks: a graph each (a face row paints on its style's graph)
        face = style.face_weights
        if face is None or is_row(face):
            continue
        path, digest = current_graph(read_network(face, style.record.sha256("face_sha256")))
        if style.record.sha256("face_graph_sha256") != digest:
            style.record.updated(face_graph_sha256=digest).write(root / "styles" / f"{style.name}.json")
        written.append((path, [style]))
    return written


def current_graph(weights: Weights) -> tuple[Path, str]:
    """``weights``' graph and its sha256, exported only where the one on disk is missing, stale or damaged."""
    path = graph_path(weights.source)
    return (path, file_sha256(path)) if _is_current(weights) else export(weights)
