"""Reading weights safely with numpy alone (what both engines and a torch-free install load through)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import random_weights, shipped_row_pair, tampered
from stylize.catalogue import get_style, read_selection
from stylize.errors import BadWeightsError
from stylize.weights import Architecture, mix_rows, read_network, read_rows


def test_weights_read_back_with_their_architecture(tmp_path: Path) -> None:
    arch = Architecture((8, 16, 24), 3)
    weights = read_network(random_weights(tmp_path / "w.safetensors", arch))
    assert weights.arch == arch and weights.tensors.keys() == arch.shapes().keys()
    assert all(t.dtype == np.float32 for t in weights.tensors.values())
    assert weights.norm_rows().shape == (1, 2, sum(channels for _, channels in arch.norm_layers()))


def test_the_decoders_upsampling_is_read_from_the_file_and_older_files_are_nearest(tmp_path: Path) -> None:
    new = read_network(random_weights(tmp_path / "new.safetensors", Architecture((8, 16, 24), 1)))
    assert new.arch.upsample == "antialiased"  # what new networks are made with
    older = Architecture((8, 16, 24), 1).to_metadata()
    del older["upsample"]  # files written before the choice carry no key: they were all trained with nearest
    path = random_weights(tmp_path / "old.safetensors", Architecture((8, 16, 24), 1, upsample="nearest"))
    assert Architecture.from_metadata(older, "old").upsample == "nearest"
    assert read_network(path).arch.upsample == "nearest"
    with pytest.raises(BadWeightsError, match="upsample 'bicubic'"):
        Architecture.from_metadata({**older, "upsample": "bicubic"}, "odd.safetensors")


@pytest.mark.parametrize("change, message", [
    (lambda t: t.pop(next(iter(t))), "missing"),
    (lambda t: t.__setitem__("extra.weight", np.zeros(3, np.float16)), "unexpected"),
    (lambda t: t.__setitem__(next(iter(t)), np.zeros((7, 7), np.float16)), "shape"),
    (lambda t: t.__setitem__(next(iter(t)), np.full_like(t[next(iter(t))], np.nan)), "NaN"),
    (lambda t: t.__setitem__(next(iter(t)), t[next(iter(t))].astype(np.int32)), "dtype"),
])
def test_tampered_weights_are_refused_naming_the_file(tmp_path: Path, change, message: str) -> None:  # noqa: ANN001
    bad = tampered(random_weights(tmp_path / "good.safetensors"), change)
    with pytest.raises(BadWeightsError, match=message) as info:
        read_network(bad)
    assert str(bad) in str(info.value)


def test_truncated_and_missing_weights_are_clear_errors(tmp_path: Path) -> None:
    path = random_weights(tmp_path / "w.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(BadWeightsError, match="truncated.safetensors"):
        read_network(truncated)
    with pytest.raises(BadWeightsError, match="not found"):
        read_network(tmp_path / "absent.safetensors")
    pickle_file = tmp_path / "model.safetensors"
    pickle_file.write_bytes(b"\x80\x04\x95" + b"\x00" * 64)  # a pickle header is not a safetensors file
    with pytest.raises(BadWeightsError):
        read_network(pickle_file)


def test_recorded_sha256_is_checked_at_load(tmp_path: Path) -> None:
    """A valid weights file that is not the one recorded in the style's metadata is refused."""
    path = random_weights(tmp_path / "weights" / "mine.safetensors", seed=1)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / "styles").mkdir()
    (tmp_path / "styles" / "mine.json").write_text(json.dumps({"title": "Mine", "weights_sha256": digest}))
    assert read_selection(get_style("mine", tmp_path)).source_sha256 == digest  # the recorded file loads
    random_weights(path, seed=2)  # replaced by another valid file
    with pytest.raises(BadWeightsError, match="sha256"):
        read_selection(get_style("mine", tmp_path))


def test_shipped_blends_mix_the_rows_of_one_trunk() -> None:
    first, second = (get_style(name) for name in shipped_row_pair())
    assert first.trunk is not None and first.trunk == second.trunk
    both = read_rows(first.trunk, [(first.weights, None), (second.weights, None)])
    blend = mix_rows(both, [3.0, 1.0]).norm_rows()[0]
    rows = both.norm_rows()
    assert np.allclose(blend, 0.75 * rows[0] + 0.25 * rows[1], atol=1e-6)
    assert np.abs(rows[0] - rows[1]).mean() > 1e-2  # two different styles
