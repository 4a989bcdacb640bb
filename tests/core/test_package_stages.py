"""The package entries' stage kinds in the analysis: closed loops against the step program, labels, CLI.

The closed loop of each entry (built from its stages' direction filters, weight
decay placements and frozen gains) is checked against an independent path: the
eigenvalues of the linearised step program run on rows of affine maps (the
noisy-quadratic model's state-space matrix of the ``t -> infinity`` limit).
Every nonlinear stage is labelled as such in each analysis.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from optfilters.cli import main

import optfilters
from optfilters import CATALOGUE
from optfilters.closed_loop import closed_loop
from optfilters.noisy_quadratic import _Loop, predict
from optfilters.table import table_row

PACKAGE_ENTRIES = [name for name, entry in CATALOGUE.items() if entry.reference]


def loop_cases() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for name in PACKAGE_ENTRIES:
        entry = CATALOGUE[name]
        cases += [(name, {"lr": 0.01}), (name, {**entry.examples[-1], "lr": 0.02})]
        if "weight_decouple" in entry.defaults():
            for decouple in (False, True):
                cases.append((name, {"lr": 0.03, "weight_decay": 0.5, "weight_decouple": decouple}))
        elif "weight_decay" in entry.defaults():
            cases.append((name, {"lr": 0.03, "weight_decay": 0.5}))
    return cases


@pytest.mark.parametrize(("name", "overrides"), loop_cases(), ids=str)
def test_closed_loop_poles_are_eigenvalues_of_the_linearised_step(name: str, overrides: dict[str, Any]) -> None:
    model = optfilters.get(name, **overrides)
    v, h = 4.0, 3.0
    loop = closed_loop(model, second_moment=v)
    gains = [np.atleast_1d(np.asarray(s.frozen_gain(v), dtype=np.float64)) for s in model.nonlinear_stages]
    matrix = _Loop(model, np.array([h]), np.zeros(1)).matrix(None, model.lr, gains)[0]
    eigenvalues = np.linalg.eigvals(matrix[:, :-1])
    x = model.lr * h * loop.preconditioner
    for pole in loop.poles(x):  # every closed-loop pole is a mode of the step (which may have more: state unseen)
        assert np.min(np.abs(eigenvalues - pole)) < 1e-7 * (1.0 + abs(pole)), (pole, eigenvalues)
    assert "linearised" in loop.label or model.is_linear


def test_decay_on_the_normalised_direction_is_not_preconditioned() -> None:
    loop = closed_loop("adamw-schedule-free", lr=0.01, weight_decay=0.5, second_moment=4.0)
    assert loop.offset == pytest.approx(0.01 * 0.5, rel=1e-12)  # lr * wd, not lr * wd / (sqrt(v) + eps)
    assert closed_loop("adabelief", lr=0.01, weight_decay=0.5, weight_decouple=False, second_moment=4.0).offset == (
        pytest.approx(0.01 * 0.5 / (2.0 + 1e-16), rel=1e-12)
    )


@pytest.mark.parametrize("name", [n for n in PACKAGE_ENTRIES if not optfilters.get(n).is_linear])
def test_nonlinear_stages_are_labelled_in_every_analysis(name: str) -> None:
    model = optfilters.get(name)
    text = model.describe()
    for stage in model.nonlinear_stages:
        assert stage.linearisation_note("frozen", 1.0)
        assert stage.linearisation_note("tracking", 1.0) in predict(model, steps=3, noise_var=0.1).label
    assert closed_loop(model).label.startswith("linearised")
    runner = CliRunner()
    described = runner.invoke(main, ["describe", name])
    assert described.exit_code == 0 and "nonlinear:" in described.output
    assert "nonlinear" in text or described.output.count("nonlinear") >= 1
    response = runner.invoke(main, ["response", name, "--points", "3", "--json"])
    assert response.exit_code == 0, response.output
    data = json.loads(response.output)
    assert set(data["filters"]) == set(model.filters())
    assert data["nonlinear"]
    assert table_row(model)[2] not in ("", "none")


@pytest.mark.parametrize("name", PACKAGE_ENTRIES)
def test_cli_list_describe_response_table_and_stability(name: str) -> None:
    runner = CliRunner()
    for args in (["list"], ["describe", name], ["response", name, "--points", "3"], ["table", name]):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, (args, result.output)
        assert name in result.output
    stability = runner.invoke(main, ["stability", name, "--json"])
    assert stability.exit_code == 0, stability.output
    assert json.loads(stability.output)["max_stable_lr_curvature"] > 0


def test_proximal_decay_closed_loop_against_the_recursion() -> None:
    """Adan's theta /= 1 + lr wd: the plant pole and the loop gain both scale by 1 / (1 + lr wd)."""
    lr, wd, h = 0.05, 2.0, 1.0
    sgd_like = optfilters.get("adan", lr=lr, weight_decay=wd, beta1=0.0, beta2=0.0, beta3=0.0, eps=0.0)
    loop = closed_loop(sgd_like, second_moment=1.0)
    f = 1.0 / (1.0 + lr * wd)
    assert loop.plant_pole == pytest.approx(f, rel=1e-14)
    # beta = 0: theta_t = f (theta - lr h theta / |h theta|) is not linear; compare the linear part at v = 1
    assert float(loop.rate(lr * h)) == pytest.approx(abs(f * (1.0 - lr * h)), rel=1e-12)
