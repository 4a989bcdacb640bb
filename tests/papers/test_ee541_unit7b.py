"""EE 541 Unit 7B reproduction: the drawn responses against closed forms derived here, independently of the module."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optfilters.papers import ee541_unit7b
from scipy import optimize

from tests.support.papers import quick_source

TOL = 1e-9


quick = quick_source("ee541_unit7b")


# ----------------------------------------------------------------------------- independent references


def _response(b: list[float], a: list[float], f: np.ndarray) -> np.ndarray:
    """H(e^{j 2 pi f}) straight from the coefficients (z^-1 powers), without the library."""
    zinv = np.exp(-2j * np.pi * np.asarray(f, dtype=float))
    num = sum(c * zinv**k for k, c in enumerate(b))
    den = sum(c * zinv**k for k, c in enumerate(a))
    return np.asarray(num / den)


def _numeric_cutoff(b: list[float], a: list[float]) -> float:
    """Where |H| first reaches |H(1)|/sqrt 2, by bracketing on a dense grid and brentq (relative xtol)."""
    dc = abs(_response(b, a, np.array([0.0]))[0])
    grid = np.linspace(0.0, 0.5, 20001)
    below = np.flatnonzero(np.abs(_response(b, a, grid)) <= dc / math.sqrt(2))
    i = int(below[0])

    def excess(f: float) -> float:
        return float(abs(_response(b, a, np.array([f]))[0]) - dc / math.sqrt(2))

    return float(optimize.brentq(excess, grid[i - 1], grid[i], xtol=1e-15, rtol=1e-13))


def _numeric_phase_minimum(b: list[float], a: list[float]) -> float:
    """The most negative phase (degrees), by bounded minimisation of the exact phase."""
    grid = np.linspace(1e-6, 0.5, 20001)
    phase = np.angle(_response(b, a, grid))
    i = int(np.argmin(phase))
    res = optimize.minimize_scalar(
        lambda f: float(np.angle(_response(b, a, np.array([f]))[0])),
        bounds=(grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]),
        method="bounded",
        options={"xatol": 1e-14},
    )
    return math.degrees(float(res.fun))


# ----------------------------------------------------------------------------- outputs


def test_files_captions_and_numbers(quick: tuple[dict, Path]) -> None:
    numbers, out = quick
    pngs = [f for f in numbers["files"] if f.endswith(".png")]
    assert len(pngs) == 7
    for name in numbers["files"]:
        assert (out / name).stat().st_size > 0, name
    captions = (out / "captions.md").read_text()
    assert captions.startswith(f"# {ee541_unit7b.TITLE}")
    for name in pngs:
        assert f"## {name}" in captions
    saved = json.loads((out / "numbers.json").read_text())
    assert saved["quick"] is True and saved["files"] == numbers["files"]
    assert saved["momentum"].keys() == numbers["momentum"].keys()
    table = (out / "summary_table.md").read_text()
    assert "| optimizer | gradient filtering |" in table
    assert "mu/(1 + mu)" in table  # the corrections are listed
    # Every closed-form check passed (reproduce raises otherwise) and there are many of them.
    assert len(numbers["checks"]) >= 90 and all(c["passed"] for c in numbers["checks"])
    assert numbers["max_rel_error"] < 5e-9


# ----------------------------------------------------------------------------- frequency responses


@pytest.mark.parametrize("mu", [0.5, 0.9, 0.99])
def test_standard_momentum_response(quick: tuple[dict, Path], mu: float) -> None:
    row = quick[0]["momentum"][f"mu = {mu:g}"]
    b, a = [1.0], [1.0, -mu]
    assert row["dc_gain"]["drawn"] == pytest.approx(1 / (1 - mu), rel=TOL)
    assert row["nyquist_gain"]["drawn"] == pytest.approx(1 / (1 + mu), rel=TOL)
    assert row["cutoff"]["closed_form"] == pytest.approx(_numeric_cutoff(b, a), rel=1e-10)
    assert row["cutoff"]["library"] == pytest.approx(_numeric_cutoff(b, a), rel=TOL)
    assert row["drop_at_cutoff_db"]["drawn"] == pytest.approx(-10 * math.log10(2), abs=TOL)
    assert row["max_phase_lag_deg"]["drawn"] == pytest.approx(-math.degrees(math.asin(mu)), rel=TOL)
    assert row["max_phase_lag_deg"]["drawn"] == pytest.approx(_numeric_phase_minimum(b, a), rel=1e-9)
    assert row["phase_extremum_frequency"]["drawn"] == pytest.approx(math.acos(mu) / (2 * math.pi), rel=TOL)
    assert row["noise_gain"]["library"] == pytest.approx(sum(mu ** (2 * k) for k in range(20000)), rel=TOL)


@pytest.mark.parametrize("mu", [0.5, 0.9, 0.99])
def test_nesterov_response(quick: tuple[dict, Path], mu: float) -> None:
    row = quick[0]["nesterov"][f"mu = {mu:g}"]
    b, a = [1 + mu, -mu], [1.0, -mu]  # buf = mu buf + g, d = g + mu buf
    assert row["zero"]["drawn"] == pytest.approx(mu / (1 + mu), rel=TOL)  # not (1 + mu)/mu: that is the z^-1 root
    assert row["zero_in_z_inverse"]["drawn"] == pytest.approx((1 + mu) / mu, rel=TOL)
    assert row["pole"]["drawn"] == pytest.approx(mu, rel=TOL)
    assert row["dc_gain"]["drawn"] == pytest.approx(1 / (1 - mu), rel=TOL)
    assert row["nyquist_gain"]["drawn"] == pytest.approx((1 + 2 * mu) / (1 + mu), rel=TOL)
    assert row["cutoff"]["library"] == pytest.approx(_numeric_cutoff(b, a), rel=TOL)
    assert row["drop_at_cutoff_db"]["drawn"] == pytest.approx(-10 * math.log10(2), abs=TOL)
    assert row["max_phase_lag_deg"]["drawn"] == pytest.approx(_numeric_phase_minimum(b, a), rel=1e-9)
    # Impulse response (1 + mu, mu^2, mu^3, ...): sum of squares.
    assert row["noise_gain"]["library"] == pytest.approx((1 + mu) ** 2 + mu**4 / (1 - mu**2), rel=TOL)


def test_standard_attenuates_high_frequencies_more(quick: tuple[dict, Path]) -> None:
    cmp = quick[0]["comparison"]
    mu = cmp["mu"]
    assert mu == 0.9
    assert cmp["standard"]["nyquist_gain"]["drawn"] == pytest.approx(1 / 1.9, rel=TOL)
    assert cmp["nesterov"]["nyquist_gain"]["drawn"] == pytest.approx(2.8 / 1.9, rel=TOL)
    assert cmp["nyquist_ratio"]["drawn"] == pytest.approx(2.8, rel=TOL)
    assert cmp["standard_attenuates_more"] and cmp["ratio_nondecreasing"]
    assert cmp["ratio_min"] == pytest.approx(1.0, rel=TOL)  # equal DC gains
    assert cmp["ratio_curve_max_rel_error"] < TOL
    assert cmp["nyquist_relative_db_standard"]["drawn"] == pytest.approx(20 * math.log10(0.1 / 1.9), rel=TOL)
    assert cmp["nyquist_relative_db_nesterov"]["drawn"] == pytest.approx(20 * math.log10(0.28 / 1.9), rel=TOL)


@pytest.mark.parametrize(
    "label, beta",
    [*((f"first moment, beta1 = {b:g}", b) for b in (0.8, 0.9, 0.99)), ("second moment, beta2 = 0.999", 0.999)],
)
def test_adam_moment_filters(quick: tuple[dict, Path], label: str, beta: float) -> None:
    row = quick[0]["adam"][label]
    b, a = [1 - beta], [1.0, -beta]
    assert row["dc_gain"]["drawn"] == pytest.approx(1.0, rel=TOL)
    assert row["nyquist_gain"]["drawn"] == pytest.approx((1 - beta) / (1 + beta), rel=TOL)
    assert row["cutoff"]["closed_form"] == pytest.approx(_numeric_cutoff(b, a), rel=1e-10)
    assert row["drop_at_cutoff_db"]["drawn"] == pytest.approx(-10 * math.log10(2), abs=TOL)
    assert row["max_phase_lag_deg"]["drawn"] == pytest.approx(-math.degrees(math.asin(beta)), rel=TOL)
    assert row["noise_gain"]["library"] == pytest.approx((1 - beta) / (1 + beta), rel=TOL)


# ----------------------------------------------------------------------------- time responses


@pytest.mark.parametrize("alpha", [0.5, 0.9])
def test_ar1_step_responses(quick: tuple[dict, Path], alpha: float) -> None:
    row = quick[0]["step"][f"alpha = {alpha:g}"]
    assert row["first_step"] == 1.0  # the library counts t from 1: s_t = 1 - alpha^t = slides' 1 - alpha^(n+1)
    assert row["unit_dc_first_value"]["drawn"] == pytest.approx(1 - alpha, rel=TOL)
    assert row["unit_dc_max_rel_error"] < TOL and row["unit_input_max_rel_error"] < TOL
    assert row["unit_input_last"]["drawn"] == pytest.approx((1 - alpha**50) / (1 - alpha), rel=TOL)
    # The slides' 1 + alpha z^-1 denominator would give a visibly different response.
    assert row["slides_sign_form_max_abs_deviation"] > 0.3


def test_bias_correction(quick: tuple[dict, Path]) -> None:
    comp = quick[0]["bias_correction"]
    beta, cos = comp["beta"], comp["cosine"]
    x1 = (
        math.cos(2 * math.pi * cos["frequency"])
        + cos["noise"] * np.random.default_rng(cos["seed"]).standard_normal(cos["steps"])[0]
    )
    assert comp["bias_corrected_first_step"]["drawn"] == pytest.approx(x1, rel=1e-12)
    assert comp["raw_first_step"]["drawn"] == pytest.approx((1 - beta) * x1, rel=1e-12)
    assert comp["unit_step_bias_corrected_max_abs_error"] < 1e-12
    assert comp["scaled_step_bias_corrected_max_abs_error"] < 1e-12
    assert comp["unit_step_raw_max_abs_error"] < 1e-12
    assert comp["bias_corrected_vs_adam_loop_max_abs"] < 1e-12
    assert comp["identity_max_abs_error"] < 1e-12
    assert comp["settle_step"] == round(5 / (1 - beta))
    assert comp["late_agree_within_beta_t"]
    assert comp["late_max_abs_difference"] <= comp["late_bound_beta_t_abs_comp"] + 1e-12
    assert comp["late_bound_beta_t_abs_comp"] <= beta ** comp["settle_step"] * 3.0  # |comp| stays below ~3
    assert comp["early_max_abs_difference"] > 10 * comp["late_max_abs_difference"]


def test_noisy_cosine_is_seeded() -> None:
    a = ee541_unit7b.noisy_cosine(20, seed=3)
    b = ee541_unit7b.noisy_cosine(20, seed=3)
    assert np.array_equal(a, b)
    clean = ee541_unit7b.noisy_cosine(8, frequency=0.125, noise=0.0)
    assert np.allclose(clean, np.cos(2 * np.pi * 0.125 * np.arange(1, 9)), atol=1e-15)


# ----------------------------------------------------------------------------- the table


def test_summary_table_matches_the_figures(quick: tuple[dict, Path]) -> None:
    table = quick[0]["table"]
    rows = table["lecture_rows"]
    assert "unit input gain (pole 0.9)" in rows["momentum"]["gradient filtering"]
    assert f"zero {0.9 / 1.9:.4g}" in rows["nesterov"]["gradient filtering"]
    assert rows["adam"]["gradient filtering"].startswith("AR1, unit DC gain (pole 0.9)")
    assert "bias correction" in rows["adam"]["variance filter"]
    assert "bias correction" not in rows["rmsprop"]["variance filter"]
    assert set(table["rows_in_figure"]) <= set(table["rows_in_markdown"])
    assert any("mu/(1 + mu)" in c for c in table["corrections"])


# ----------------------------------------------------------------------------- closed-form helpers


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=0.01, max_value=0.9995))
def test_ar1_cutoff_solves_the_half_power_equation(p: float) -> None:
    fc = ee541_unit7b.ar1_cutoff(p)
    nyquist_over_dc = (1 - p) / (1 + p)
    if nyquist_over_dc > 1 / math.sqrt(2) + 1e-9:
        assert fc is None  # the response never falls 3 dB
        return
    assert fc is not None and 0.0 < fc <= 0.5
    w = 2 * math.pi * fc
    assert (1 - p) ** 2 / (1 - 2 * p * math.cos(w) + p * p) == pytest.approx(0.5, rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=0.01, max_value=0.9995))
def test_nesterov_cutoff_solves_the_half_power_equation(mu: float) -> None:
    fc = ee541_unit7b.nesterov_cutoff(mu)
    nyquist_over_dc = (1 - mu) * (1 + 2 * mu) / (1 + mu)
    if nyquist_over_dc > 1 / math.sqrt(2) + 1e-9:
        assert fc is None
        return
    assert fc is not None and 0.0 < fc <= 0.5
    h = abs(_response([1 + mu, -mu], [1.0, -mu], np.array([fc]))[0])
    assert h * (1 - mu) == pytest.approx(1 / math.sqrt(2), rel=1e-9)


def test_cutoffs_absent_for_small_poles() -> None:
    # |H(-1)|/|H(1)| = (1 - p)/(1 + p) > 1/sqrt 2 below p = 3 - 2 sqrt 2: no -3 dB point.
    edge = 3 - 2 * math.sqrt(2)
    assert ee541_unit7b.ar1_cutoff(edge * 0.99) is None
    assert ee541_unit7b.ar1_cutoff(edge * 1.0001) == pytest.approx(0.5, rel=1e-2)
    assert ee541_unit7b.nesterov_cutoff(0.1) is None  # Nyquist/DC = 0.9 * 1.2 / 1.1 = 0.98


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=0.05, max_value=0.99), st.floats(min_value=0.0, max_value=0.95))
def test_phase_extremum_matches_numerical_minimum(p: float, fraction: float) -> None:
    q = fraction * p
    f, phase = ee541_unit7b.phase_extremum(p, q)
    b, a = [1.0, -q], [1.0, -p]
    assert phase == pytest.approx(_numeric_phase_minimum(b, a), rel=1e-7, abs=1e-9)
    assert math.degrees(float(np.angle(_response(b, a, np.array([f]))[0]))) == pytest.approx(phase, rel=1e-9)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ee541_unit7b.ar1_cutoff(1.0), r"pole must be in \(0, 1\), got 1\.0"),
        (lambda: ee541_unit7b.nesterov_cutoff(-0.5), r"mu must be in \(0, 1\), got -0\.5"),
        (lambda: ee541_unit7b.phase_extremum(0.5, 0.6), r"zero must be in \[0, pole\) = \[0, 0\.5\), got 0\.6"),
        (lambda: ee541_unit7b.noisy_cosine(0), r"steps must be an integer >= 1, got 0"),
    ],
)
def test_bad_inputs(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


# ----------------------------------------------------------------------------- the filters are torch's


def test_catalogue_filters_equal_torch_optim() -> None:
    torch = pytest.importorskip("torch")
    import optfilters

    rng = np.random.default_rng(0)
    grads = rng.standard_normal(60)

    def run(make: object) -> tuple[np.ndarray, object]:
        p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        opt = make([p])  # type: ignore[operator]
        steps = []
        for g in grads:
            before = p.detach().clone()
            p.grad = torch.tensor([g], dtype=torch.float64)
            opt.step()
            steps.append(float((before - p.detach())[0]))
        return np.array(steps), opt.state[p]

    for mu in (0.5, 0.9, 0.99):
        heavy, _ = run(lambda ps, mu=mu: torch.optim.SGD(ps, lr=1.0, momentum=mu))
        nest, _ = run(lambda ps, mu=mu: torch.optim.SGD(ps, lr=1.0, momentum=mu, nesterov=True))
        f_heavy = optfilters.get("momentum", momentum=mu).filters()["gradient"]
        f_nest = optfilters.get("nesterov", momentum=mu).filters()["gradient"]
        assert np.allclose(heavy, f_heavy.filter(grads), rtol=1e-12, atol=1e-12)
        assert np.allclose(nest, f_nest.filter(grads), rtol=1e-12, atol=1e-12)
    for beta in (0.8, 0.9, 0.99):
        _, state = run(lambda ps, beta=beta: torch.optim.Adam(ps, lr=1e-3, betas=(beta, 0.999)))
        m = optfilters.get("adam", betas=(beta, 0.999)).filters()["gradient"].filter(grads)
        assert float(state["exp_avg"][0]) == pytest.approx(m[-1], rel=1e-12, abs=1e-14)  # type: ignore[index]
