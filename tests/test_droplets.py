"""The droplet measure of ``benchmarks/droplets.py``: a local spike in the features is found, and where; and no
shipped style has one."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install 'stylize[torch]')")

from benchmarks.droplets import DROPLET_RATIO, peak_ratio  # noqa: E402
from stylize.catalogue import get_style, list_styles, read_selection  # noqa: E402
from stylize.network import StyleNet  # noqa: E402
from stylize.weights import Architecture  # noqa: E402


@pytest.fixture(scope="module")
def network() -> StyleNet:
    torch.manual_seed(0)
    return StyleNet(Architecture((8, 16, 32), 2)).eval()


def test_a_bright_spot_on_a_flat_photo_is_a_droplet_where_it_is(network: StyleNet) -> None:
    photo = np.full((384, 384, 3), 128, np.uint8)
    photo[200:204, 100:104] = 255
    ratio, (row, column) = peak_ratio(network, photo)
    assert ratio > DROPLET_RATIO
    assert abs(row - 201 / 384) < 0.03 and abs(column - 101 / 384) < 0.03


def test_texture_everywhere_is_not_a_droplet_at_any_size(network: StyleNet) -> None:
    photo = np.random.default_rng(0).integers(0, 256, (383, 381, 3), dtype=np.uint8)  # padded to the network
    ratio, (row, column) = peak_ratio(network, photo)
    assert 1.0 <= ratio < DROPLET_RATIO
    assert 0.0 <= row < 1.0 and 0.0 <= column < 1.0


@pytest.mark.parametrize("name", [style.name for style in list_styles()])
def test_no_shipped_style_paints_a_droplet_on_the_sample_portrait(name: str, astronaut: np.ndarray) -> None:
    """The catalogue's trunk painted one on every row (peak 5.5 to 11.8 on this photo) until it was trained out."""
    ratio, where = peak_ratio(StyleNet.from_weights(read_selection(get_style(name))), astronaut)
    assert ratio < DROPLET_RATIO, f"{name}: a droplet at {where} (peak {ratio:.1f} x the 99th percentile)"
