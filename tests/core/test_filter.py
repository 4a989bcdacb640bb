"""ArmaFilter: validation, structure, conversions and composition laws."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from optfilters import ArmaFilter, InvalidFilterError, cascade, parallel

# ----------------------------------------------------------------------------- strategies

# Coefficients are exactly zero or of a meaningful size (a b0 of 1e-300 puts a zero at 1e300).
coefficient = st.one_of(st.just(0.0), st.floats(0.001, 2.0), st.floats(-2.0, -0.001))


@st.composite
def stable_filters(draw: st.DrawFn, max_order: int = 4) -> ArmaFilter:
    """Random stable filters from random poles inside the circle (conjugate pairs) and random b."""
    n_pairs = draw(st.integers(0, max_order // 2))
    n_real = draw(st.integers(0 if n_pairs else 1, max_order - 2 * n_pairs))
    poles: list[complex] = []
    for _ in range(n_pairs):
        r = draw(st.floats(0.05, 0.95))
        phi = draw(st.floats(0.05, 3.0))
        poles += [r * np.exp(1j * phi), r * np.exp(-1j * phi)]
    poles += [draw(st.floats(-0.95, 0.95)) for _ in range(n_real)]
    a = np.real(np.poly(poles)) if poles else np.ones(1)
    b = np.array(draw(st.lists(coefficient, min_size=1, max_size=len(a))))
    if not np.any(np.abs(b) > 1e-3):
        b[0] = 1.0
    return ArmaFilter(b, a)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("b", "a", "message"),
    [
        ([], [1.0], "b .* must not be empty"),
        ([1.0], [], "a .* must not be empty"),
        ([1.0], [0.0, 1.0], r"a\[0\] must be non-zero"),
        ([np.nan], [1.0], "finite"),
        ([1.0], [1.0, np.inf], "finite"),
        (["x"], [1.0], "real numbers"),
        ([[1.0, 2.0]], [1.0], "one-dimensional"),
    ],
)
def test_invalid_coefficients_raise_clear_errors(b: list, a: list, message: str) -> None:
    with pytest.raises(InvalidFilterError, match=message):
        ArmaFilter(b, a)


def test_normalises_a0_and_trims_trailing_zeros() -> None:
    f = ArmaFilter([2.0, 0.0, 0.0], [2.0, -1.0, 0.0])
    assert f.b.tolist() == [1.0] and f.a.tolist() == [1.0, -0.5]
    assert f.order == 1


def test_is_immutable() -> None:
    f = ArmaFilter([1.0], [1.0, -0.5])
    with pytest.raises(AttributeError):
        f.b = np.ones(1)  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        f.b[0] = 3.0


def test_equality_hash_and_pickle() -> None:
    f = ArmaFilter([0.1], [1.0, -0.9])
    g = ArmaFilter([0.2], [2.0, -1.8])
    assert f == g and hash(f) == hash(g)
    assert pickle.loads(pickle.dumps(f)) == f
    assert f != ArmaFilter([0.1], [1.0, -0.8])


# ----------------------------------------------------------------------------- structure


def test_ar1_closed_forms() -> None:
    beta = 0.9
    ema = ArmaFilter.ema(beta)
    assert ema.poles == pytest.approx([beta])
    assert ema.dc_gain == pytest.approx(1.0)
    assert ema.nyquist_gain == pytest.approx((1 - beta) / (1 + beta))
    heavy = ArmaFilter.leaky_integrator(beta)
    assert heavy.dc_gain == pytest.approx(1 / (1 - beta))
    assert heavy.nyquist_gain == pytest.approx(1 / (1 + beta))


def test_stability_classes() -> None:
    assert ArmaFilter([1.0], [1.0, -0.999]).stability == "stable"
    assert ArmaFilter([1.0], [1.0, -1.0]).stability == "marginal"
    assert ArmaFilter([1.0], [1.0, 1.0]).stability == "marginal"  # pole at -1
    assert ArmaFilter([1.0], [1.0, -1.01]).stability == "unstable"
    assert ArmaFilter([1.0], [1.0, -2.0, 1.0]).stability == "unstable"  # double pole at 1
    assert ArmaFilter([1.0], [1.0, 0.0, 1.0]).stability == "marginal"  # poles at +-j
    assert ArmaFilter([1.0, 2.0, 3.0]).stability == "stable"  # FIR


def test_poles_and_zeros_with_delays() -> None:
    f = ArmaFilter([0.0, 1.0], [1.0, -0.5])  # z^-1 / (1 - 0.5 z^-1) = 1 / (z - 0.5)
    assert f.poles == pytest.approx([0.5])
    assert f.zeros.size == 0
    assert f.gain == 1.0


def test_from_zpk_round_trip_and_errors() -> None:
    z, p, k = [0.5], [0.9, 0.2 + 0.3j, 0.2 - 0.3j], 2.0
    f = ArmaFilter.from_zpk(z, p, k)
    b, a = signal.zpk2tf(z, p, k)
    # scipy's zpk2tf gives positive powers of z; with more poles the numerator is delayed.
    assert f.isclose(ArmaFilter(np.concatenate([[0.0, 0.0], b]), a))
    assert sorted(np.round(f.poles, 12), key=abs) == sorted(np.round(p, 12), key=abs)
    with pytest.raises(InvalidFilterError, match="conjugate"):
        ArmaFilter.from_zpk([], [0.5j], 1.0)
    with pytest.raises(InvalidFilterError, match="causal"):
        ArmaFilter.from_zpk([0.1, 0.2], [0.5], 1.0)


@settings(max_examples=40, deadline=None)
@given(stable_filters())
def test_sos_round_trip_preserves_response(f: ArmaFilter) -> None:
    back = ArmaFilter.from_sos(f.to_sos())
    w = np.linspace(0, np.pi, 64)
    _, h1 = signal.freqz(f.b, f.a, worN=w)
    _, h2 = signal.sosfreqz(f.to_sos(), worN=w)
    np.testing.assert_allclose(h2, h1, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(back.evaluate(np.exp(1j * w)), h1, rtol=1e-7, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(stable_filters())
def test_freqz_agrees_with_dlti(f: ArmaFilter) -> None:
    freqs = np.linspace(0.0, 0.5, 33)
    ours = f.frequency_response(freqs=freqs).response
    _, theirs = f.to_dlti().freqresp(w=2 * np.pi * freqs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(stable_filters(), stable_filters(), st.floats(-3.0, 3.0))
def test_composition_laws(f: ArmaFilter, g: ArmaFilter, k: float) -> None:
    z = np.exp(2j * np.pi * np.linspace(0.0, 0.5, 17))
    hf, hg = f.evaluate(z), g.evaluate(z)
    np.testing.assert_allclose((f * g).evaluate(z), hf * hg, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose((f + g).evaluate(z), hf + hg, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose((f - g).evaluate(z), hf - hg, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose((k * f).evaluate(z), k * hf, rtol=1e-8, atol=1e-10)
    assert (f * g).isclose(g * f)


@settings(max_examples=40, deadline=None)
@given(stable_filters(), st.lists(st.floats(-5, 5), min_size=1, max_size=60))
def test_filter_equals_lfilter(f: ArmaFilter, xs: list[float]) -> None:
    x = np.asarray(xs)
    np.testing.assert_allclose(f.filter(x), signal.lfilter(f.b, f.a, x), rtol=1e-8, atol=1e-9)


def test_parallel_with_equal_denominators_keeps_order() -> None:
    f = parallel(ArmaFilter([0.3]), ArmaFilter.ema(0.9).scaled(0.7))
    assert f.order == 1
    assert cascade(ArmaFilter.ema(0.5), ArmaFilter.ema(0.5)).order == 2


def test_high_order_design_keeps_accurate_poles() -> None:
    z, p, k = signal.butter(8, 0.01, output="zpk")
    f = ArmaFilter.from_zpk(z, p, k)
    assert np.allclose(np.sort_complex(f.poles), np.sort_complex(p), atol=1e-12)
    assert f.stability == "stable"
    sos = f.to_sos()
    x = np.ones(2000)
    np.testing.assert_allclose(signal.sosfilt(sos, x), signal.sosfilt(signal.zpk2sos(z, p, k), x), rtol=1e-9)


def test_delays_survive_sos() -> None:
    f = ArmaFilter([0.0, 0.0, 0.0, 1.0], [1.0, -0.5])
    x = np.random.default_rng(1).normal(size=50)
    np.testing.assert_allclose(signal.sosfilt(f.to_sos(), x), signal.lfilter(f.b, f.a, x), atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(stable_filters())
def test_factored_evaluation_equals_polynomial_evaluation(f: ArmaFilter) -> None:
    """A filter that keeps its zpk (through SOS) evaluates, and has DC/Nyquist gains, as its b/a do."""
    factored = ArmaFilter.from_sos(f.to_sos())
    z = np.exp(2j * np.pi * np.linspace(0.0, 0.5, 17))
    np.testing.assert_allclose(factored.evaluate(z), f.evaluate(z), rtol=1e-8, atol=1e-10)
    assert factored.dc_gain == pytest.approx(f.dc_gain, rel=1e-8, abs=1e-10)
    assert factored.nyquist_gain == pytest.approx(f.nyquist_gain, rel=1e-8, abs=1e-10)


def test_high_order_design_gains_come_from_exact_zpk() -> None:
    """sum(b)/sum(a) of an 8th-order low-pass at 0.01 cycles/step is off by ~1e-7; the zpk is exact."""
    z, p, k = signal.butter(8, 0.02, output="zpk")
    f = ArmaFilter.from_zpk(z, p, k)
    assert f.dc_gain == pytest.approx(1.0, abs=1e-12)
    assert abs(f.nyquist_gain) < 1e-12
    assert abs(float(np.sum(f.b) / np.sum(f.a)) - 1.0) > 1e-9  # the expanded polynomial really is worse
    alone = parallel(f)  # a sum of one filter keeps its factored form (and its 8 zeros at z = -1)
    np.testing.assert_allclose(alone.zeros, np.full(8, -1.0 + 0j), atol=1e-9)
    assert alone.dc_gain == pytest.approx(1.0, abs=1e-12)


def test_marginal_factored_filter_keeps_infinite_dc_gain() -> None:
    summer = ArmaFilter.from_zpk([0.0], [1.0], 1.0)  # z / (z - 1): Adagrad's accumulator
    assert summer.dc_gain == np.inf
    assert summer.nyquist_gain == pytest.approx(0.5)
