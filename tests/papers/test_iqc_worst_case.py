"""Lessard, Recht & Packard (papers/iqc_worst_case.py): the 3-cycle and the published certified rates."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from optfilters.papers import iqc_worst_case

from tests.support.papers import quick_source

FIGURES = ("counterexample.png", "certified_rates.png", "kappa25.png")


quick = quick_source("iqc_worst_case")


def test_files_and_captions(quick: tuple[dict[str, Any], Path]) -> None:
    numbers, out = quick
    assert set(numbers["files"]) == {*FIGURES, "captions.md", "numbers.json"}
    for name in FIGURES:
        assert (out / name).stat().st_size > 5_000, name
    assert (out / "captions.md").read_text().startswith(f"# {iqc_worst_case.TITLE}")
    assert json.loads((out / "numbers.json").read_text())["files"] == numbers["files"]


def test_the_three_cycle(quick: tuple[dict[str, Any], Path]) -> None:
    c = quick[0]["counterexample"]
    assert c["lr"] == pytest.approx(1 / 9) and c["momentum"] == pytest.approx(4 / 9)
    assert c["quadratic_rate"] == pytest.approx(2 / 3, abs=1e-9)
    assert c["cycle_max_error"] < 5e-5 and c["period_3"]
    assert c["bridge_max_difference"] < 1e-12 and c["torch_max_difference"] < 1e-12
    assert c["tuned_final_abs"] < 1e-20 and c["tuned_observed_rate"] <= c["tuned_certified_rate"]
    assert c["tuned_bridge_max_difference"] < 1e-12


def test_published_rates(quick: tuple[dict[str, Any], Path]) -> None:
    r = quick[0]["rates"]
    assert r["gd_max_error"] <= 2e-5
    for row in r["rows"]:
        k = row["kappa"]
        assert row["gd_2_over_L_plus_mu_sector_only"] == pytest.approx((k - 1) / (k + 1), abs=2e-5)
        assert 1 - 1 / math.sqrt(k) <= row["nesterov"] <= math.sqrt(1 - 1 / math.sqrt(k))
        assert row["nesterov_residual"] <= 1e-6
    at25 = next(row for row in r["rows"] if row["kappa"] == 25.0)
    assert at25["polyak_certified"] is None  # Polyak's tuning: no certificate at kappa = 25


def test_certified_tuning(quick: tuple[dict[str, Any], Path]) -> None:
    t = quick[0]["tuning"]["25"]
    assert 2 / 3 < t["certified_rate"] < t["gd_rate"] == pytest.approx(24 / 26)
    assert t["certified_rate"] >= t["its_quadratic_rate"] - 1e-9
    assert t["certified_rate"] < 0.8573  # below the best point of a 23 x 15 grid of (lr L, momentum)
    assert t["certified_rate"] == pytest.approx(0.854, abs=1e-3)
    assert t["lr_L"] == pytest.approx(1.91, abs=0.05) and t["momentum"] == pytest.approx(0.41, abs=0.02)
