"""The style statistics of ``benchmarks/loss_network_agreement.py``: zero at the painting, growing away from it,
and the shapes they refuse."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install 'stylize[torch]')")

from benchmarks.loss_network_agreement import PaintingStyle, agrees  # noqa: E402
from stylize.training.losses import random_directions  # noqa: E402


def directions(channels: int) -> torch.Tensor:
    return random_directions(channels, 64, torch.Generator().manual_seed(0), torch.device("cpu"))


def style_statistics(features: torch.Tensor, painting: torch.Tensor, d: torch.Tensor) -> dict[str, float]:
    return PaintingStyle(painting, d).distances(features)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_painting_itself_scores_zero_and_a_shifted_copy_more_the_further_it_moves(dtype: torch.dtype) -> None:
    painting = torch.rand(1, 8, 24, 24, generator=torch.Generator().manual_seed(1)) * 2
    d = directions(8)
    itself = style_statistics(painting.to(dtype), painting, d)
    assert all(value == pytest.approx(0.0, abs=1e-3) for value in itself.values()), itself
    near, far = (style_statistics((painting + shift).to(dtype), painting, d) for shift in (0.1, 1.0))
    assert all(0.0 < near[kind] < far[kind] for kind in near), (near, far)


def test_where_a_thing_is_does_not_matter_only_what_is_there() -> None:
    """Style, not layout: the painting's features shuffled in space score zero on every statistic."""
    painting = torch.rand(1, 8, 16, 16, generator=torch.Generator().manual_seed(2))
    order = torch.randperm(256, generator=torch.Generator().manual_seed(3))
    shuffled = painting.flatten(2)[..., order].view_as(painting)
    scores = style_statistics(shuffled, painting, directions(8))
    assert all(value == pytest.approx(0.0, abs=1e-5) for value in scores.values()), scores


@pytest.mark.parametrize("shapes", [((1, 8, 4, 4), (1, 4, 4, 4)), ((2, 8, 4, 4), (1, 8, 4, 4)),
                                    ((8, 4, 4), (1, 8, 4, 4))])
def test_mismatched_features_are_refused(shapes: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
    with pytest.raises(ValueError, match="expected"):
        style_statistics(torch.zeros(shapes[0]), torch.zeros(shapes[1]), directions(8))


def test_agreement_is_the_same_order_as_the_judge() -> None:
    assert agrees((0.33, 0.25), (0.5, 0.4)) and agrees((0.4, 0.43), (0.2, 0.9))
    assert not agrees((0.33, 0.25), (0.06, 0.2))
