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


def test_certified_rates_are_written_to_the_bisection_resolution(quick: tuple[dict[str, Any], Path]) -> None:
    """Each certified rate is on the 1e-5 grid and still certified: rounded up, so rate >= the raw bisection end."""
    from optfilters.iqc import certify

    tol = iqc_worst_case.BISECTION_TOLERANCE
    for row in quick[0]["rates"]["rows"]:
        for key in ("gd_1_over_L", "gd_2_over_L_plus_mu", "gd_2_over_L_plus_mu_sector_only", "nesterov"):
            assert row[key] / tol == pytest.approx(round(row[key] / tol), abs=1e-6), (row["kappa"], key)
    raw = certify("sgd", mu=1.0, L=10.0, lr=1.0 / 10.0).rate
    assert raw <= iqc_worst_case.certified(raw) < raw + tol
    assert iqc_worst_case.certified(0.9) == 0.9 and iqc_worst_case.certified(None) is None


def test_solver_dependent_entries_have_the_solver_tolerances(tmp_path: Path) -> None:
    """Nesterov's certified rate 1.6e-3 off (kappa 300, two machines) keeps numbers.json; 0.06 rewrites it."""
    from optfilters.papers import write_outputs

    tolerances = iqc_worst_case.solver_tolerances(iqc_worst_case._settings(quick=False))
    assert tolerances["rates"] == iqc_worst_case.RATES_REPRODUCIBILITY

    def write(rate: float) -> None:
        write_outputs(tmp_path, {"rates": {"rows": [{"nesterov": rate}]}}, "# t\n", solver_tolerance=tolerances)

    write(0.96778)
    before = (tmp_path / "numbers.json").read_bytes()
    write(0.96621)
    assert (tmp_path / "numbers.json").read_bytes() == before
    write(0.96778 - 0.06)
    assert json.loads((tmp_path / "numbers.json").read_text())["rates"]["rows"][0]["nesterov"] == 0.90778
