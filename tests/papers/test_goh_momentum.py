"""Goh's "Why Momentum Really Works": the drawn heavy-ball rate map, curves and tuning against closed forms."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optfilters.papers import goh_momentum

from tests.support.papers import quick_source

FIGURES = ("rate_map.png", "rate_curves.png", "tuning.png")


quick = quick_source("goh_momentum")


def test_files_captions_and_numbers(quick: tuple[dict[str, Any], Path]) -> None:
    numbers, out = quick
    assert numbers["quick"] is True
    for name in FIGURES:
        assert (out / name).stat().st_size > 10_000, name
    assert set(numbers["files"]) == {*FIGURES, "captions.md", "numbers.json"}
    captions = (out / "captions.md").read_text()
    assert captions.startswith(f"# {goh_momentum.TITLE}")
    for name in FIGURES:
        assert f"## {name}" in captions
    assert json.loads((out / "numbers.json").read_text())["files"] == numbers["files"]


def test_drawn_map_equals_closed_form_eigenvalues(quick: tuple[dict[str, Any], Path]) -> None:
    mc = quick[0]["map"]
    assert mc["closed_form_max_error"] < 1e-9
    assert mc["eigvals_points"] > 100
    assert mc["eigvals_max_error"] < 1e-9
    assert mc["goh_matrix_max_error"] < 1e-9


def test_map_region_boundaries(quick: tuple[dict[str, Any], Path]) -> None:
    mc = quick[0]["map"]
    dx = mc["dx"]
    assert mc["edge_max_error"] <= 0.5 * dx + 1e-12  # the rate = 1 crossing is between two columns
    assert mc["band_low_max_error"] <= dx + 1e-12
    assert mc["band_high_max_error"] <= dx + 1e-12
    assert mc["band_contiguous"]


def test_exact_edges_and_bands(quick: tuple[dict[str, Any], Path]) -> None:
    for r in quick[0]["edges"]:
        beta = r["beta"]
        assert r["edge"] == pytest.approx(2.0 + 2.0 * beta, abs=1e-9)
        assert r["real_outside"]
        if beta > 0.0:
            assert r["complex_inside"]
            assert r["rate_inside"] == pytest.approx(math.sqrt(beta), abs=1e-12)


def test_rate_curves(quick: tuple[dict[str, Any], Path]) -> None:
    curves = quick[0]["curves"]
    assert [c["beta"] for c in curves] == list(goh_momentum.CURVE_BETAS)
    for c in curves:
        beta = c["beta"]
        assert c["max_error"] < 1e-9
        assert c["stable_interval"] == pytest.approx([0.0, 2.0 + 2.0 * beta], abs=1e-9)
        if beta == 0.0:
            assert c["min_rate"] == pytest.approx(0.0, abs=1e-12)  # gradient descent: deadbeat at x = 1
            assert c["argmin"] == pytest.approx(1.0, abs=c["dx"])
        else:
            assert c["min_rate"] == pytest.approx(math.sqrt(beta), abs=1e-12)
            lo, hi = (1 - math.sqrt(beta)) ** 2, (1 + math.sqrt(beta)) ** 2
            assert c["flat_band"] == pytest.approx([lo, hi], abs=c["dx"] + 1e-12)


def test_tuning_matches_polyak(quick: tuple[dict[str, Any], Path]) -> None:
    rows = quick[0]["tuning"]
    assert len(rows) >= 2
    for r in rows:
        s = math.sqrt(r["kappa"])
        assert r["momentum_rate"] == pytest.approx((s - 1) / (s + 1), abs=1e-6)
        assert r["momentum_beta"] == pytest.approx(((s - 1) / (s + 1)) ** 2, abs=1e-6)
        assert r["momentum_alpha_L"] == pytest.approx(4 * r["kappa"] / (s + 1) ** 2, rel=1e-6)
        assert r["gd_rate"] == pytest.approx((r["kappa"] - 1) / (r["kappa"] + 1), abs=1e-6)
        assert r["gd_alpha_L"] == pytest.approx(2 * r["kappa"] / (r["kappa"] + 1), rel=1e-6)
        assert r["momentum_rate"] < r["gd_rate"]


def test_torch_sgd_is_goh_iteration(quick: tuple[dict[str, Any], Path]) -> None:
    rows = quick[0]["torch"]
    assert len(rows) == len(goh_momentum.TORCH_CHECKS)
    for r in rows:
        assert r["max_relative_difference"] < 1e-12


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=0.0, max_value=4.5), st.floats(min_value=0.0, max_value=0.999))
def test_heavy_ball_rate_is_the_matrix_spectral_radius(x: float, beta: float) -> None:
    t = 1.0 + beta - x
    if abs(t * t - 4.0 * beta) < 1e-6:  # double eigenvalue: eigvals loses half the digits
        return
    expected = float(np.max(np.abs(np.linalg.eigvals(goh_momentum.heavy_ball_matrix(x, beta)))))
    assert goh_momentum.heavy_ball_rate(x, beta) == pytest.approx(expected, abs=1e-9)
    goh = float(np.max(np.abs(np.linalg.eigvals(goh_momentum.goh_matrix(x, 1.0, beta)))))
    assert goh == pytest.approx(expected, abs=1e-9)
    # Regions: stable iff 0 < x < 2 + 2 beta; modulus sqrt(beta) inside the complex band.
    rate = goh_momentum.heavy_ball_rate(x, beta)
    if 1e-9 < x < 2.0 + 2.0 * beta - 1e-9:
        assert rate < 1.0
    elif x > 2.0 + 2.0 * beta + 1e-9:
        assert rate > 1.0
    lo, hi = goh_momentum.complex_band(beta)
    if lo + 1e-9 < x < hi - 1e-9:
        assert rate == pytest.approx(math.sqrt(beta), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=1.0, max_value=1e6))
def test_polyak_rate_is_worst_case_over_the_spectrum(kappa: float) -> None:
    p = goh_momentum.polyak_tuning(kappa)
    lams = np.geomspace(1.0, kappa, 200)
    worst = float(np.max(goh_momentum.heavy_ball_rate(p["alpha"] * lams, p["beta"])))
    # Polyak puts both ends of the spectrum on the band edges, at a double root: the rounding of
    # t^2 - 4 beta (~1e-16) moves the modulus by its square root, ~1e-8.
    assert worst == pytest.approx(p["rate"], abs=1e-7)
    g = goh_momentum.gd_tuning(kappa)
    assert float(np.max(np.abs(1.0 - g["alpha"] * lams))) == pytest.approx(g["rate"], abs=1e-12)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="beta must be in"):
        goh_momentum.complex_band(1.0)
    with pytest.raises(ValueError, match="kappa must be finite and >= 1"):
        goh_momentum.polyak_tuning(0.5)
    with pytest.raises(ValueError, match="kappa must be finite and >= 1"):
        goh_momentum.gd_tuning(float("nan"))
    with pytest.raises(ValueError, match="steps must be an integer"):
        goh_momentum.goh_iterates(0.1, 1.0, 0.5, 1.0, -1)
