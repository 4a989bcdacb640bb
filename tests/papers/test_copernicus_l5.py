"""The Copernicus L5 reproduction: the lecture's runs against closed forms (quick mode)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optfilters.papers import copernicus_l5

from tests.support.papers import quick_source

FIGURES = (
    "quadratic_gd.png",
    "quadratic_gd_contraction.png",
    "quadratic_momentum.png",
    "quadratic_momentum_rate.png",
    "quadratic_adaptive.png",
    "rosenbrock_gd.png",
    "rosenbrock_momentum.png",
    "rosenbrock_adaptive.png",
    "rosenbrock_distance.png",
)


quick = quick_source("copernicus_l5")


def test_files_captions_and_numbers(quick: tuple[dict[str, Any], Path]) -> None:
    numbers, out = quick
    assert numbers["quick"] is True
    assert numbers["engine"] == "bridge"
    for name in FIGURES:
        assert (out / name).stat().st_size > 10_000, name
    assert set(numbers["files"]) == {*FIGURES, "captions.md", "numbers.json"}
    captions = (out / "captions.md").read_text()
    assert captions.startswith(f"# {copernicus_l5.TITLE}")
    for name in FIGURES:
        assert name in captions, name
    stored = json.loads((out / "numbers.json").read_text())
    assert stored["files"] == numbers["files"]
    assert stored["rosenbrock"]["cycle"]["stable"] is True


def test_lecture_grids_match_the_library() -> None:
    # Transcribed from the slides, independently of the library's Function2D.lecture_lrs.
    from optfilters.trajectory import quadratic_bowl, rosenbrock

    assert quadratic_bowl().lecture_grid("gd") == tuple(round(0.001 * k, 3) for k in range(1, 11))
    assert quadratic_bowl().lecture_grid("momentum") == (0.0001, 0.0005, 0.001, 0.002, 0.003, 0.004)
    for opt in ("sgd", "momentum"):
        assert rosenbrock().lecture_grid(opt) == (0.001, 0.005, 0.01, 0.02)
    printed = (0.005, 0.0005, 0.05, 0.01, 0.05)  # the slide's order, 0.05 twice
    assert rosenbrock().lecture_grid("rmsprop") == tuple(sorted(set(printed)))


def test_grid_check_reported(quick: tuple[dict[str, Any], Path]) -> None:
    numbers, _ = quick
    assert numbers["grids_match"] is True
    assert numbers["grids"]["rosenbrock/rmsprop"]["lecture"] == [0.005, 0.0005, 0.05, 0.01, 0.05]


def test_gd_bowl_contraction_is_one_minus_lr_h(quick: tuple[dict[str, Any], Path]) -> None:
    numbers, _ = quick
    rows = numbers["quadratic_gd"]
    assert {r["lr"] for r in rows} >= {0.009, 0.01, 0.011}
    for r in rows:
        lr = r["lr"]
        # Every step's ratio |y_{t+1} / y_t| read off the drawn run equals |1 - 200 lr| (x: |1 - 20 lr|).
        assert r["contraction_y_closed_form"] == pytest.approx(abs(1.0 - 200.0 * lr), abs=1e-15)
        assert r["contraction_y_max_error"] < 1e-12
        assert r["contraction_x_max_error"] < 1e-12
        expected = "converges" if lr < 0.01 - 1e-12 else ("diverges" if lr > 0.01 + 1e-12 else "marginal")
        assert r["status_y_observed"] == r["status_y_predicted"] == expected
        assert r["status_x_observed"] == "converges"  # edge 2/20 = 0.1
        if expected == "converges":
            assert r["final_abs_y"] < r["initial_abs_y"] * abs(1.0 - 200.0 * lr) ** 30 + 1e-300
        elif expected == "marginal":
            assert r["final_abs_y"] == pytest.approx(r["initial_abs_y"], rel=1e-12)
        else:
            assert r["final_abs_y"] > 1e3 * r["initial_abs_y"]


def test_momentum_runs_follow_the_closed_loop(quick: tuple[dict[str, Any], Path]) -> None:
    numbers, _ = quick
    rows = numbers["quadratic_momentum"]
    assert rows
    beta = copernicus_l5.MOMENTUM
    for r in rows:
        x = r["lr_curvature"]
        # Independent closed form: heavy ball z^2 - (1 + beta - x) z + beta; the EMA form has x -> (1 - beta) x.
        xe = x if r["optimizer"].startswith("heavy") else (1.0 - beta) * x
        roots = np.roots([1.0, -(1.0 + beta - xe), beta])
        assert r["closed_loop_rate"] == pytest.approx(float(np.max(np.abs(roots))), abs=1e-9)
        if (1 - math.sqrt(beta)) ** 2 < xe < (1 + math.sqrt(beta)) ** 2:
            assert r["complex_poles"] and r["closed_loop_rate"] == pytest.approx(math.sqrt(beta), abs=1e-12)
        assert r["stable_predicted"]
        assert r["fitted_pole_error"] < 1e-8
        assert r["envelope_relative_error"] < 0.03
    assert numbers["ema_equals_heavy_ball"]["bowl"] < 1e-12
    assert numbers["ema_equals_heavy_ball"]["rosenbrock"] < 1e-12


def test_adaptive_first_step(quick: tuple[dict[str, Any], Path]) -> None:
    numbers, _ = quick
    for r in numbers["quadratic_adaptive"]:
        expected = 1.0 / math.sqrt(1.0 - copernicus_l5.RMSPROP_ALPHA) if r["optimizer"] == "RMSprop" else 1.0
        assert r["first_step_over_lr_observed"] == pytest.approx([expected, expected], rel=1e-7)
        assert r["first_step_max_relative_error"] < 1e-12


def test_rosenbrock_curvatures_and_edges(quick: tuple[dict[str, Any], Path]) -> None:
    numbers, _ = quick
    ros = numbers["rosenbrock"]
    lo, hi = ros["minimum_curvatures"]
    assert (lo, hi) == pytest.approx((51.0 - math.sqrt(2561.0), 51.0 + math.sqrt(2561.0)), rel=1e-12)
    assert ros["curvature_check_error"] < 1e-10
    assert ros["gd_max_stable_lr"] == pytest.approx(2.0 / hi, rel=1e-12)
    assert 0.01 < ros["gd_max_stable_lr"] < 0.02
    runs = {(r["optimizer"], r["lr"]): r for r in ros["runs"]}
    for (name, lr), r in runs.items():
        assert not r["diverged"], (name, lr)
        assert math.isfinite(r["final_distance"])
    gd = runs[("GD", 0.02)]
    assert gd["stable_at_minimum_predicted"] is False
    assert gd["status"] != "converged"  # quick runs are too short to reach the 2-cycle: see the next test
    assert runs[("heavy ball (torch SGD)", 0.01)]["stable_at_minimum_predicted"] is True


def test_rosenbrock_period_two_orbit(quick: tuple[dict[str, Any], Path]) -> None:
    numbers, _ = quick
    c = numbers["rosenbrock"]["cycle"]
    lr = copernicus_l5.CYCLE_LR
    assert c["lr_times_max_curvature"] > 2.0
    assert not c["is_fixed_point"] and c["residual"] < 1e-12
    assert c["stable"] and c["multiplier_modulus"] < 1.0
    assert not c["converged"] and not c["diverged"]
    assert c["run_to_orbit"] < 1e-2  # quick: 800 steps; the full run is within 1e-9
    assert c["secant_curvature"] == pytest.approx(2.0 / lr, rel=1e-10)
    assert c["midpoint_max_curvature"] == pytest.approx(2.0 / lr, rel=2e-3)
    # The orbit satisfies the GD map in both directions (independently of the module's Newton solve).
    p, q = np.array(c["p"]), np.array(c["q"])
    assert np.allclose(p - lr * copernicus_l5.rosenbrock_gradient(p), q, atol=1e-13)
    assert np.allclose(q - lr * copernicus_l5.rosenbrock_gradient(q), p, atol=1e-13)


@settings(max_examples=30, deadline=None)
@given(
    st.floats(min_value=0.05, max_value=0.97),
    st.floats(min_value=-0.99, max_value=0.99),
    st.floats(min_value=0.5, max_value=2.0),
)
def test_fitted_poles_recover_any_two_pole_sequence(a: float, b: float, scale: float) -> None:
    s = scale * (a ** np.arange(40) + b ** np.arange(40))
    if abs(a - b) < 0.05:
        return
    assert sorted(np.abs(copernicus_l5.fitted_poles(s))) == pytest.approx(sorted([abs(a), abs(b)]), abs=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.floats(min_value=1e-4, max_value=0.0099))
def test_gd_map_contraction_closed_form(lr: float) -> None:
    y = 0.5 * (1.0 - 200.0 * lr) ** np.arange(20)
    ratios = copernicus_l5.contraction_ratios(y)
    assert np.allclose(ratios, abs(1.0 - 200.0 * lr), rtol=1e-12)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="lr must be finite and > 0"):
        copernicus_l5.period_two_orbit(-1.0, [1.0, 1.0])
    with pytest.raises(ValueError, match="start must be two finite numbers"):
        copernicus_l5.period_two_orbit(0.02, [1.0])
    with pytest.raises(ValueError, match="at least 6 finite values"):
        copernicus_l5.fitted_poles([1.0, 0.5])
