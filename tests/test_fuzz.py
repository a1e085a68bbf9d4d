"""Hostile image files through the API: a correct image or a clean StylizeError, never anything else.

The same harness as ``benchmarks/fuzz.py`` (which runs 10,000 cases); a few hundred here.
"""

from __future__ import annotations

import collections
from pathlib import Path

from benchmarks import fuzz
import pytest

import stylize
from conftest import TEST_STYLE

CASES = 300


@pytest.fixture(scope="module")
def results(catalogue_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[fuzz.Result]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STYLIZE_HOME", str(catalogue_dir))
        stylizer = stylize.Stylizer(TEST_STYLE, device="cpu")
        return fuzz.run_cases(stylizer, seed=7, indices=range(CASES), workdir=tmp_path_factory.mktemp("fuzz"))


def test_no_case_escapes_the_error_family_or_hangs(results: list[fuzz.Result]) -> None:
    failures = [r for r in results if not r.outcome.startswith(("ok", "refused"))]
    assert not failures, failures[:5]


def test_the_cases_exercise_both_outcomes_and_every_damage(results: list[fuzz.Result]) -> None:
    outcomes = collections.Counter(r.outcome.split(":")[0] for r in results)
    assert outcomes["ok"] > CASES // 5 and outcomes["refused"] > CASES // 5, outcomes
    assert {r.kind.split("/")[1] for r in results} == set(fuzz.MUTATIONS)
    undamaged = [r for r in results if r.kind.endswith("/none")]
    assert all(r.outcome == "ok" for r in undamaged), [r for r in undamaged if r.outcome != "ok"][:5]


def test_cases_are_reproducible(astronaut) -> None:  # noqa: ANN001
    assert fuzz.make_case(3, 42, astronaut) == fuzz.make_case(3, 42, astronaut)
    assert fuzz.make_case(3, 42, astronaut) != fuzz.make_case(3, 43, astronaut)


def test_the_harness_reports_an_escaping_exception(catalogue: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    stylizer = stylize.Stylizer(TEST_STYLE, device="cpu")

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise ValueError("a bug")

    monkeypatch.setattr(stylizer.pipeline, "run", broken)
    outcomes = {r.outcome for r in fuzz.run_cases(stylizer, seed=7, indices=range(20), workdir=tmp_path)}
    assert "bug:ValueError: a bug" in outcomes
