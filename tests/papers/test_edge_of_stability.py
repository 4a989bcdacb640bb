"""The quick edge-of-stability reproduction: gradient descent's sharpness rises to 2/lr and stays near it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.papers import quick_source

quick = quick_source("edge_of_stability")


def test_gradient_descent_sharpness_settles_at_two_over_lr(quick: tuple[dict, Path]) -> None:
    numbers, _ = quick
    gd = {k: v for k, v in numbers["runs"].items() if v["optimizer"] == "sgd"}
    assert len(gd) >= 2
    for row in gd.values():
        assert row["threshold"] == pytest.approx(2.0 / row["lr"], rel=1e-9)
        # It started well below the threshold (progressive sharpening), reached it, and stays near it.
        assert row["initial_sharpness"] < 0.75 * row["threshold"]
        assert row["first_reach_90"] is not None
        assert 0.85 < row["ratio"] < 1.25
        assert not row["diverged"]


def test_momentum_and_adam_approach_their_thresholds(quick: tuple[dict, Path]) -> None:
    numbers, _ = quick
    rows = {v["optimizer"]: v for v in numbers["runs"].values()}
    assert rows["momentum"]["threshold_times_lr"] == pytest.approx(3.8, rel=1e-9)
    assert rows["adam"]["threshold_times_lr"] == pytest.approx(38.0, rel=1e-9)
    assert rows["adam"]["preconditioned"] and not rows["momentum"]["preconditioned"]
    for name in ("momentum", "adam"):
        assert rows[name]["initial_sharpness"] < 0.5 * rows[name]["threshold"]
        assert 0.8 < rows[name]["ratio"] < 1.25


def test_files_captions_and_numbers(quick: tuple[dict, Path]) -> None:
    numbers, out = quick
    for name in numbers["files"]:
        assert (out / name).stat().st_size > 0, name
    captions = (out / "captions.md").read_text()
    for name in numbers["files"]:
        if name.endswith(".png"):
            assert name in captions
    assert json.loads((out / "numbers.json").read_text())["runs"].keys() == numbers["runs"].keys()
    for row in numbers["response"].values():
        assert row["median_relative_error"] < 0.05
