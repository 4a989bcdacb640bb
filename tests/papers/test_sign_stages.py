"""Sign stages (papers/sign_stages.py): the approach, the exact cycles and the noise sweep against bridge runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from optfilters.papers import sign_stages

from tests.support.papers import quick_source

FIGURES = ("approach.png", "cycles.png", "noise_transition.png", "noise_curves.png")


quick = quick_source("sign_stages")


def test_files_and_captions(quick: tuple[dict[str, Any], Path]) -> None:
    numbers, out = quick
    assert numbers["quick"] is True and set(numbers["files"]) == {*FIGURES, "captions.md", "numbers.json"}
    for name in FIGURES:
        assert (out / name).stat().st_size > 5_000, name
    captions = (out / "captions.md").read_text()
    assert captions.startswith(f"# {sign_stages.TITLE}") and all(f"## {n}" in captions for n in FIGURES)
    assert json.loads((out / "numbers.json").read_text())["files"] == numbers["files"]
    assert "seconds" not in json.dumps(numbers)  # no timings in the committed outputs


def test_constant_speed_approach_against_the_bridge(quick: tuple[dict[str, Any], Path]) -> None:
    a = quick[0]["approach"]
    assert a["loss45_bridge"] == pytest.approx(0.15125, abs=1e-12)  # (1 - 0.45)^2 / 2
    assert a["loss45_predict"] == pytest.approx(0.15125, abs=1e-12)
    assert a["loss45_gaussian_gain"] == pytest.approx(0.2054, abs=5e-5)  # the former linearisation
    assert a["switch_predicted"] == a["switch_bridge"] == 152
    assert a["ramp_max_error"] < 1e-12 and a["predict_vs_bridge_max_error"] < 1e-12


def test_every_bridge_cycle_is_an_exact_solution(quick: tuple[dict[str, Any], Path]) -> None:
    rows = quick[0]["cycles"]["runs"]
    assert rows
    for r in rows:
        assert r["period"] is not None, r
        assert r["exact_solution"] is True, r
        assert r["pattern_exact_amplitude_over_lr"] == pytest.approx(r["amplitude_over_lr"], rel=1e-9)
        assert r["pattern_exact_mean_loss"] == pytest.approx(r["observed_mean_loss"], rel=1e-9)
    lion = next(r for r in rows if r["case"] == "Lion (0.9, 0.99)" and r["lr"] == 0.01)
    assert lion["period"] == 4 and lion["amplitude_over_lr"] == pytest.approx(1.0)
    assert lion["df_period"] == 2.0  # the describing function's (wrong) period
    long = next(r for r in rows if r["case"] == "Lion (0.9, 0.99)" and r["lr"] == 0.03)
    assert long["period"] == 72 and long["lattice_offset"] == pytest.approx(1 / 3)
    signum = next(r for r in rows if r["case"].startswith("Signum") and r["lr"] == 0.01)
    assert signum["period"] == 8 and signum["amplitude_over_lr"] == pytest.approx(2.0)


def test_scale_law(quick: tuple[dict[str, Any], Path]) -> None:
    scale = quick[0]["cycles"]["scale_law"]
    assert len({r["period"] for r in scale}) == 1
    assert max(r["amplitude_over_lr"] for r in scale) - min(r["amplitude_over_lr"] for r in scale) < 1e-9


def test_noise_sweep_against_bridge_runs(quick: tuple[dict[str, Any], Path]) -> None:
    z = quick[0]["noise"]
    for sigma, error in zip(z["noise_std"], z["relative_error_predicted"], strict=True):
        assert error < (0.25 if sigma < 3e-3 else 0.06), (sigma, error)
    small = z["noise_std"].index(min(z["noise_std"]))
    assert z["relative_error_linearised"][small] > 0.5  # the Gaussian gain alone misses the cycle
    for c in z["curves"].values():
        assert c["late_relative_error"] < 0.1 and c["median_relative_error"] < 0.1


def test_sophia_clip(quick: tuple[dict[str, Any], Path]) -> None:
    stable, unstable = quick[0]["sophia"]["runs"]
    assert not stable["df_cycle"] and stable["run_max_abs_theta_tail"] < 1e-6
    assert unstable["df_cycle"] and unstable["run_period"] is not None and unstable["run_max_abs_theta_tail"] > 1e-3
