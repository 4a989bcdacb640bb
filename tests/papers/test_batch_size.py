"""The quick batch-size reproduction (Zhang et al. 2019): the claims, exact sums, Monte Carlo and scaling rules."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from optfilters.papers import batch_size as bs

from optfilters.batch_size import NoisyQuadraticSpectrum, steps_to_target
from tests.support.papers import quick_source

quick = quick_source("batch_size")


def test_files_captions_and_numbers(quick: tuple[dict, Path]) -> None:
    numbers, out = quick
    assert numbers["quick"] is True
    assert set(numbers["files"]) == {"steps_vs_batch.png", "checks.png", "captions.md", "numbers.json"}
    for name in numbers["files"]:
        assert (out / name).stat().st_size > 0, name
    captions = (out / "captions.md").read_text()
    assert captions.startswith(f"# {bs.TITLE}\n") and "## steps_vs_batch.png" in captions
    assert "seconds" not in json.loads((out / "numbers.json").read_text())  # nothing machine-dependent


def test_the_papers_qualitative_results(quick: tuple[dict, Path]) -> None:
    claims = quick[0]["claims"]
    assert 0.8 < claims["sgd_lr_slope_small_batch"] < 1.25  # optimal lr ~ B at small batches
    assert 0.35 < claims["adam_lr_slope_small_batch"] < 0.65  # Adam's normaliser: lr ~ sqrt(B)
    assert claims["heavy_ball_over_sgd_critical_batch"] > 3  # momentum extends perfect scaling
    assert claims["preconditioned_over_sgd_critical_batch"] > 3  # so does preconditioning
    assert claims["heavy_ball_over_sgd_steps_smallest_batch"] > 0.7  # momentum barely helps at small batches
    assert claims["heavy_ball_over_sgd_steps_largest_batch"] < 0.3  # and much at large ones
    assert claims["preconditioned_over_sgd_steps_smallest_batch"] < 0.5  # preconditioning helps everywhere


def test_reported_steps_are_exact(quick: tuple[dict, Path]) -> None:
    numbers = quick[0]
    nqm = NoisyQuadraticSpectrum.zhang2019(numbers["dim"])
    row = numbers["scaling"]["heavy_ball"]
    j = 3
    k = steps_to_target(
        "momentum",
        [row["batch_sizes"][j]],
        lr=row["lr"][j],
        target=numbers["target"],
        nqm=nqm,
        momentum=row["hyperparameters"]["momentum"][j],
    )
    assert k[0] == row["steps"][j]
    steps = np.asarray(numbers["scaling"]["sgd"]["steps"], dtype=float)
    assert np.all(np.diff(steps) <= 0) and math.isfinite(numbers["scaling"]["sgd"]["critical_batch_size"])
    assert numbers["exact_vs_predict"]["max_relative_difference"] < 1e-10


def test_monte_carlo_at_three_batch_sizes(quick: tuple[dict, Path]) -> None:
    mc = quick[0]["monte_carlo"]
    assert len(mc) == 3
    for row in mc.values():
        assert abs(row["z_at_steps"]) < 4.0
        assert row["predicted_loss_at_steps"] <= quick[0]["target"]
        assert row["step_relative_difference"] < 0.1
        assert row["fraction_within_4_stderr"] > 0.95


def test_scaling_rules(quick: tuple[dict, Path]) -> None:
    rules = quick[0]["scaling_rules"]
    for key in ("sgd", "heavy_ball", "adam"):
        derived = [r for r in rules.values() if r["optimizer"] == key and r["derived"]]
        other = [r for r in rules.values() if r["optimizer"] == key and not r["derived"]]
        assert derived and other
        assert max(r["max_relative_difference"] for r in derived) < 0.03
        assert min(r["max_relative_difference"] for r in other) > 3 * max(r["max_relative_difference"] for r in derived)
