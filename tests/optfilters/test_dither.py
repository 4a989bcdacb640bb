"""The Bussgang estimator: closed forms for a sign of a Gaussian, coverage of its standard errors, probing optimizers.

For i.i.d. N(0, 1) gradients g and m = h * g (an ARMA filter) Bussgang's theorem gives
E[sign(m_t) g_{t-k}] = sqrt(2/pi) h_k / std(m): the BLA is the filter times sqrt(2/pi) / std(m), and its linear
part carries 2/pi of the output variance.  These are closed forms, independent of the estimator.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from optfilters import ArmaFilter
from optfilters.dither import best_linear_approximation, default_shape, estimate_best_linear_approximation
from optfilters.identify import IdentificationError

pytest.importorskip("torch")


def _records(b, a, nonlinearity, seed=0, records=6, steps=2048, elements=16):
    g = np.random.default_rng(seed).standard_normal((records, steps, elements))
    return g, nonlinearity(signal.lfilter(b, a, g, axis=1))


def _std(b, a) -> float:
    return float(np.sqrt(np.sum(ArmaFilter(b, a).impulse_response(20000) ** 2)))


@pytest.mark.parametrize(
    ("b", "a", "poles", "zeros"),
    [
        ([0.1], [1.0, -0.9], [0.9], []),  # Signum's EMA
        ([0.1, -0.09], [1.0, -0.99], [0.99], [0.9]),  # Lion's pre-sign filter, betas (0.9, 0.99)
        ([0.05 * 1.95, -0.05 * 0.95], [1.0, -0.95], [0.95], [0.95 / 1.95]),  # torch Muon's Nesterov form
    ],
)
def test_sign_of_a_filtered_gaussian_recovers_the_filter_within_its_errors(b, a, poles, zeros) -> None:
    g, u = _records(b, a, np.sign)
    bla = estimate_best_linear_approximation(g, u, burn_in=512)
    assert bla.orders == (len(poles), len(zeros) if zeros else 0)
    for est, err, true in zip(bla.poles, bla.pole_errors, poles, strict=True):
        assert abs(est - true) <= 4 * err + 1e-3, (est, err, true)
    shown = [z for z in bla.zeros if abs(z) > 1e-9]
    for est, true in zip(shown, zeros, strict=True):
        k = int(np.argmin(np.abs(bla.zeros - est)))
        assert abs(est - true) <= 4 * bla.zero_errors[k] + 2e-3, (est, true)
    # Bussgang's gain: the BLA is sqrt(2/pi) H / std(m), so its DC gain is sqrt(2/pi) H(1) / std(m).
    expected = math.sqrt(2 / math.pi) * ArmaFilter(b, a).dc_gain / _std(b, a)
    assert abs(bla.dc_gain - expected) <= 4 * bla.dc_gain_error + 0.01 * expected
    # ... and its linear part carries 2/pi of the variance of a sign.
    assert bla.linear_fraction == pytest.approx(2 / math.pi, abs=0.01)
    assert bla.sign_magnitude == 1.0


def test_memoryless_nonlinearity_has_no_poles() -> None:
    g, u = _records([0.3], [1.0], np.sign, records=4, steps=1024)
    bla = estimate_best_linear_approximation(g, u, burn_in=256)
    assert bla.memoryless and bla.poles.size == 0
    assert bla.response[0] == pytest.approx(math.sqrt(2 / math.pi), abs=4 * bla.standard_error[0])
    assert any("no memory before the nonlinearity" in n for n in bla.notes)


def test_clip_saturation_sophia_style_keeps_the_pole() -> None:
    # Sophia-style clip: u = clip(m / rho, -1, 1) with EMA(0.9) before it.
    g, u = _records([0.1], [1.0, -0.9], lambda m: np.clip(m / 0.1, -1.0, 1.0), records=4, steps=2048)
    bla = estimate_best_linear_approximation(g, u, burn_in=512)
    assert bla.orders == (1, 0)
    assert abs(bla.poles[0] - 0.9) <= 4 * bla.pole_errors[0] + 1e-3
    assert bla.sign_magnitude is None and 2 / math.pi < bla.linear_fraction < 1.0


def test_pole_errors_cover_the_truth_over_seeds() -> None:
    """Monte Carlo: the pole's error in units of its jackknife standard error has mean ~0 and spread ~1."""
    z = []
    for seed in range(16):
        g, u = _records([0.2], [1.0, -0.8], np.sign, seed=100 + seed, records=6, steps=1024, elements=8)
        bla = estimate_best_linear_approximation(g, u, burn_in=256)
        assert bla.orders == (1, 0)
        z.append((bla.poles[0].real - 0.8) / bla.pole_errors[0])
    z = np.array(z)
    assert abs(z.mean()) < 0.8 and 0.4 < z.std() < 2.0, z


@settings(max_examples=15, deadline=None)
@given(st.floats(min_value=0.01, max_value=100.0))
def test_scaling_the_updates_scales_the_bla(scale: float) -> None:
    g, u = _records([0.2], [1.0, -0.8], np.sign, records=3, steps=512, elements=4)
    one = estimate_best_linear_approximation(g, u, burn_in=128)
    many = estimate_best_linear_approximation(g, scale * u, burn_in=128)
    np.testing.assert_allclose(many.response, scale * one.response, rtol=1e-12, atol=1e-15)
    assert many.orders == one.orders
    assert many.dc_gain == pytest.approx(scale * one.dc_gain, rel=1e-6)


def test_uncorrelated_outputs_give_no_filter() -> None:
    rng = np.random.default_rng(5)
    g, u = rng.standard_normal((3, 512, 8)), rng.standard_normal((3, 512, 8))
    bla = estimate_best_linear_approximation(g, u, burn_in=128)
    if bla.filter is None:  # no lag significant at 4 standard errors (the usual case)
        assert any("uncorrelated" in n for n in bla.notes)
    else:
        assert abs(bla.dc_gain) < 0.2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gradients": np.zeros((1, 64)), "updates": np.zeros((1, 64)), "burn_in": 16}, "at least 2 records"),
        ({"gradients": np.ones((2, 64)), "updates": np.ones((2, 63)), "burn_in": 16}, "shape"),
        ({"gradients": np.ones((2, 64)), "updates": np.ones((2, 64)), "burn_in": 48}, "steps - burn_in >= lags"),
        ({"gradients": np.full((2, 64), np.nan), "updates": np.ones((2, 64)), "burn_in": 16}, "finite"),
        ({"gradients": np.zeros((2, 64)), "updates": np.ones((2, 64)), "burn_in": 16}, "positive standard"),
    ],
)
def test_bad_records(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        estimate_best_linear_approximation(**kwargs)


def test_probing_a_linear_optimizer_gives_its_filter() -> None:
    bla = best_linear_approximation("torch.optim.SGD", momentum=0.5, records=3, steps=512, elements=8)
    assert bla.orders == (1, 0)
    # The estimate is statistical even for a linear optimizer (other lags act as noise): within its errors.
    assert abs(bla.poles[0] - 0.5) <= 4 * bla.pole_errors[0] + 1e-3
    assert bla.linear_fraction > 0.99


def test_catalogue_lion_and_pytorch_optimizer_lion_give_the_same_estimate() -> None:
    """Same seeds, same algorithm: the reference executor and pytorch-optimizer's Lion agree lag by lag."""
    pytest.importorskip("pytorch_optimizer")
    import optfilters

    kw = {"records": 3, "steps": 768, "elements": 16}
    ours = best_linear_approximation(optfilters.get("lion", beta1=0.9, beta2=0.99), **kw)
    theirs = best_linear_approximation("pytorch_optimizer.Lion", betas=(0.9, 0.99), **kw)
    assert theirs.matches(ours) and np.max(np.abs(theirs.response - ours.response)) < 1e-9


def test_bad_probe_settings_are_one_line_errors() -> None:
    with pytest.raises(IdentificationError, match="records must be"):
        best_linear_approximation("torch.optim.SGD", records=1)
    with pytest.raises(IdentificationError, match="dither must be"):
        best_linear_approximation("torch.optim.SGD", dither=-1.0)
    assert default_shape("matrix", 32) == (4, 8)
