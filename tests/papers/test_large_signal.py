"""Adam's large-signal response (papers/large_signal.py): reference values, closed form, torch.optim.Adam."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from optfilters.papers import large_signal

from tests.support.papers import quick_source

FIGURES = ("responses.png", "peak_map.png", "history.png")


quick = quick_source("large_signal")


def test_files_and_captions(quick: tuple[dict[str, Any], Path]) -> None:
    numbers, out = quick
    assert set(numbers["files"]) == {*FIGURES, "captions.md", "numbers.json"}
    for name in FIGURES:
        assert (out / name).stat().st_size > 5_000, name
    assert (out / "captions.md").read_text().startswith(f"# {large_signal.TITLE}")
    assert json.loads((out / "numbers.json").read_text())["files"] == numbers["files"]


def test_reference_values(quick: tuple[dict[str, Any], Path]) -> None:
    r = quick[0]["responses"]
    assert r["0.999"]["peak_ratio"] == pytest.approx(5.20172, abs=2e-5) and round(r["0.999"]["peak_ratio"], 1) == 5.2
    assert r["0.95"]["peak_ratio"] == pytest.approx(1.11036, abs=2e-5) and round(r["0.95"]["peak_ratio"], 2) == 1.11
    for row in r.values():
        assert row["closed_form_max_error"] < 5e-6
        assert row["torch_max_error"] < 1e-10
        assert row["torch_peak_ratio"] == pytest.approx(row["library_peak_at_torch_history"], rel=1e-10)
        assert row["step_down_peak_ratio"] <= 1.0 + 1e-12


def test_map_and_history(quick: tuple[dict[str, Any], Path]) -> None:
    m = quick[0]["map"]
    assert m["increases_with_beta2"] and m["decreases_with_beta1"]
    lo, hi = m["regions"]["1.2"]["limits"][0], m["regions"]["2"]["limits"][0]
    assert lo == pytest.approx(0.9603, abs=5e-4) and hi == pytest.approx(0.9884, abs=5e-4)  # beta1 = 0.9
    for row in quick[0]["history"].values():
        assert row["nondecreasing"] and row["peak_ratio"][-1] <= row["long_history"] * (1 + 1e-5)  # settling 1e-6
