"""Issue 11: every number of every filter, each case checked against a reference computed here.

References are independent of optfilters' factored/exact code: scipy's own SOS designs run through
``sosfilt``, mpmath roots and derivatives of the multiplied-out polynomials at 50 digits, dense
``sosfreqz`` grids unwrapped by numpy, and closed forms.

ArmaFilter: validation, structure, conversions and composition laws.
"""

from __future__ import annotations

import pickle
import re
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

import optfilters
from optfilters import ArmaFilter, InvalidFilterError, cascade, parallel
from tests.support.filter_references import design_sos, impulse_sums

# ----------------------------------------------------------------------------- references


@pytest.mark.parametrize(
    ("kind", "order", "cutoff", "printed"),
    [
        ("butterworth", 4, 0.001, 0.205),
        ("butterworth", 8, 0.002, None),
        ("chebyshev1", 8, 0.005, 1.147),
        ("bessel", 8, 0.005, 1.044),
    ],
)
def test_low_cutoff_designs_noise_gain_and_dc_gain(kind: str, order: int, cutoff: float, printed: float | None) -> None:
    """Issue row 2: positive noise gains equal to sum h^2 of scipy's SOS design, and DC gain 10 (was NaN)."""
    total, energy, moment = impulse_sums(design_sos(kind, order, cutoff))
    f = optfilters.get(kind, order=order, cutoff=cutoff).filters()["gradient"]
    s = optfilters.summarise(f)
    assert s.dc_gain == pytest.approx(total, rel=1e-9) and s.dc_gain == pytest.approx(10.0, rel=1e-12)
    assert s.noise_gain == pytest.approx(energy, rel=1e-9)
    assert s.mean_delay == pytest.approx(moment / total, rel=1e-9)
    assert s.stability == "stable"
    if printed is not None:
        assert s.noise_gain == pytest.approx(printed, abs=5e-4)


def test_differencer_then_summer_is_the_identity() -> None:
    """Issue row 4: cascade(1 - z^-1, 1 / (1 - z^-1)) is the identity: stable, DC 1 (was NaN, marginal)."""
    f = cascade(ArmaFilter([1.0, -1.0], [1.0]), ArmaFilter([1.0], [1.0, -1.0]))
    assert f.stability == "stable" and f.dc_gain == 1.0 and f.nyquist_gain == 1.0
    reduced = f.minreal()
    assert reduced.b.tolist() == [1.0] and reduced.a.tolist() == [1.0]
    (c,) = f.cancellations()
    assert c.pole == 1.0 and c.zero == 1.0 and c.distance == 0.0
    assert "marginal mode" in c.describe()  # the realisation keeps the summer's mode
    s = optfilters.summarise(f)
    assert s.noise_gain == 1.0 and s.mean_delay == 0.0 and s.notes
    np.testing.assert_allclose(f.frequency_response(n=5).magnitude, np.ones(5), rtol=1e-15)


# ----------------------------------------------------------------------------- repeated poles


A4 = [1, -3.9996, 5.998800060000001, -3.9988001199960004, 0.9996000599960002]  # (1 - 0.9999 z^-1)^4, rounded


def test_six_one_pole_filters_in_series() -> None:
    """Issue row 6: every pole 0.999 (six-fold), DC 1, stable (was unstable, DC NaN)."""
    part = ArmaFilter([0.001], [1.0, -0.999])
    f = cascade(*[part] * 6)
    assert f.poles.real.tolist() == [0.999] * 6 and not np.any(f.poles.imag)
    assert f.factorisation.poles.multiplicities.tolist() == [6] * 6
    exact = (Fraction(0.001) / (1 - Fraction(0.999))) ** 6
    assert f.dc_gain == pytest.approx(float(exact), rel=1e-14)
    assert f.stability == "stable"
    # and the noise gain against the SOS run of the same six sections
    sos = np.tile([0.001, 0.0, 0.0, 1.0, -0.999, 0.0], (6, 1))
    _, energy, _ = impulse_sums(sos)
    assert optfilters.noise_gain(f) == pytest.approx(energy, rel=1e-9)


# ----------------------------------------------------------------------------- the class, beyond the table


def test_exact_multiplicities_and_cluster_report() -> None:
    double = ArmaFilter([1.0], [1.0, -1.0, 0.25])  # (1 - 0.5 z^-1)^2 exactly
    assert double.factorisation.poles.values.tolist() == [0.5, 0.5]
    assert double.factorisation.poles.multiplicities.tolist() == [2, 2]
    assert ArmaFilter([1.0], [1.0, -2.0, 1.0]).stability == "unstable"  # a double pole on the circle
    assert ArmaFilter([1.0], [1.0, 0.0, 1.0]).stability == "marginal"
    expanded = ArmaFilter([1e-16], A4).factorisation.poles
    assert expanded.clusters and expanded.clusters[0][1] == 4  # a split four-fold root, reported
    assert "4 distinct roots within" in expanded.describe()


def test_minreal_tolerance_and_exact_cancellation() -> None:
    f = ArmaFilter.from_zpk([0.5, 0.3], [0.5 + 1e-6, 0.8], 1.0)
    assert f.cancellations() == ()  # 1e-6 apart: not coinciding at sqrt(eps)
    (c,) = f.cancellations(tol=1e-5)
    assert c.distance == pytest.approx(1e-6)
    assert f.minreal(tol=1e-5).poles.tolist() == [0.8]
    assert f.minreal(tol=0.0) is f
    with pytest.raises(optfilters.InvalidFilterError, match="tol"):
        f.minreal(tol=-1.0)
    pair = ArmaFilter.from_zpk([0.6 + 0.3j, 0.6 - 0.3j], [0.6 + 0.3j, 0.6 - 0.3j, 0.2], 2.0)
    (c,) = pair.cancellations()
    assert c.count == 2 and pair.minreal().poles.tolist() == [0.2]


def test_pickle_keeps_the_factored_form() -> None:
    import pickle

    z, p, k = signal.butter(8, 0.004, output="zpk")
    f = ArmaFilter.from_zpk(z, p, k)
    back = pickle.loads(pickle.dumps(f))
    np.testing.assert_array_equal(back.zeros, f.zeros)
    assert back.factorisation.poles.method == "given" and back.dc_gain == f.dc_gain


def test_a_zero_beyond_the_double_range_is_a_zero_at_infinity() -> None:
    """b = [1e-311, 1]: its zero at -4.5e310 overflows a double; it is at infinity (H changes by 1e-311)."""
    f = ArmaFilter([2.22507e-311, 1.0], [1.0, -1.0403, 0.520151, -0.125])
    assert f.factorisation.zeros.values.size == 0 and f.factorisation.delay == 1 and f.gain == 1.0
    x = np.random.default_rng(0).normal(size=200)
    np.testing.assert_allclose(f.filter(x), signal.lfilter(f.b, f.a, x), rtol=1e-12, atol=1e-12)
    assert f.stability == "stable" and np.isfinite(f.dc_gain)


@pytest.mark.parametrize(
    "b",
    [
        [0.0, 2.22507e-311, 1.0, 1.0],  # a quadratic whose monic form overflows
        [0.0, 2.22507e-311, 0.0, 1.0],  # zeros at +-2e155j
        [2.2e-311, 1e-200, 1.0],
        [3e-320, 1.0, 2.0, 1.0, 0.5],  # an Aberth solve with a huge root
    ],
)
def test_negligible_leading_coefficients_run_as_lfilter(b: list[float]) -> None:
    f = ArmaFilter(b, [1.0, -0.540302, 0.25])
    x = np.random.default_rng(1).normal(size=100)
    np.testing.assert_allclose(f.filter(x), signal.lfilter(f.b, f.a, x), rtol=1e-12, atol=1e-12)
    assert np.all(np.abs(f.factorisation.zeros.values) < 1e100) and f.stability == "stable"


# ----------------------------------------------------------------------------- closed loop of the reduced filter


def heavy_ball_poles(mu: float, x: float) -> np.ndarray:
    """Roots of z^2 - (1 + mu - x) z + mu: gradient descent with momentum mu on a quadratic, x = lr * h."""
    return np.sort_complex(np.roots([1.0, -(1.0 + mu - x), mu]))


def test_closed_loop_of_a_cancelled_pair_is_that_of_the_transfer_function() -> None:
    """Momentum 0.9 entered with a pair at z = 1: the loop has momentum's two poles, not a third at 1."""
    from optfilters.closed_loop import closed_loop

    mu = 0.9
    loop = closed_loop(optfilters.get("custom", b=[1.0, -1.0], a=[1.0, -1.9, 0.9]))
    assert loop.order == 2
    xs = np.array([1e-3, 0.01, 0.1, 1.0, 3.0, 3.7999, 3.8001, 5.0])
    poles = loop.poles(xs)
    assert poles.shape == (xs.size, 2)
    for x, row in zip(xs, poles, strict=True):
        np.testing.assert_allclose(np.sort_complex(row), heavy_ball_poles(mu, x), rtol=1e-12, atol=1e-12)
        assert loop.rate(x) == pytest.approx(np.abs(heavy_ball_poles(mu, x)).max(), rel=1e-12)
        assert loop.is_stable(x) == bool(loop.rate(x) < 1.0)
    edge = loop.stability().max_stable_lr_curvature
    assert edge == pytest.approx(2.0 + 2.0 * mu, rel=1e-12)  # the heavy-ball edge, as for momentum itself
    assert loop.polynomial(0.5).tolist() == pytest.approx([1.0, -(1.0 + mu - 0.5), mu], rel=1e-15)


def test_closed_loop_of_differencer_then_summer_is_gradient_descent() -> None:
    """The identity filter with a cancelled pair at 1: one closed-loop pole 1 - x, rate |1 - x|."""
    from optfilters.closed_loop import closed_loop

    f = cascade(ArmaFilter([1.0, -1.0], [1.0]), ArmaFilter([1.0], [1.0, -1.0]))
    loop = closed_loop(f)
    xs = np.array([0.1, 0.5, 1.5, 1.99, 2.01])
    assert loop.order == 1
    np.testing.assert_allclose(loop.poles(xs)[:, 0], 1.0 - xs, rtol=0, atol=1e-15)
    np.testing.assert_allclose(loop.rate(xs), np.abs(1.0 - xs), rtol=0, atol=1e-15)
    assert loop.stability().max_stable_lr_curvature == pytest.approx(2.0, rel=1e-12)


def test_closed_loop_drops_a_stable_cancelled_pair_and_keeps_the_rest() -> None:
    """Momentum 0.5 times (1 - 0.3 z^-1) / (1 - 0.3 z^-1), multiplied out: no closed-loop pole at 0.3."""
    from optfilters.closed_loop import closed_loop

    mu, c = 0.5, 0.3
    b = np.array([1.0, -c])
    a = np.convolve([1.0, -mu], [1.0, -c])
    loop = closed_loop(ArmaFilter(b, a))
    assert loop.order == 2
    for x in (0.05, 0.2, 1.0, 2.9):
        np.testing.assert_allclose(np.sort_complex(loop.poles(x)), heavy_ball_poles(mu, x), rtol=1e-9, atol=1e-12)


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
        (["x"], [1.0], "must hold numbers, not text"),
        ([1j], [1.0], "real numbers"),
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


@pytest.mark.parametrize(
    ("call", "bad"),
    [
        (lambda: ArmaFilter(b="12"), "str '12'"),  # was b=[12]
        (lambda: ArmaFilter(b=[True]), "bool True"),  # was b=[1]
        (lambda: ArmaFilter(b=[1.0], a=[1, "0.5"]), "str '0.5'"),
        (lambda: ArmaFilter(b=np.array([True, False])), "bool True"),
        (lambda: ArmaFilter(b=b"1"), "bytes b'1'"),
        (lambda: ArmaFilter.from_zpk("5", [0.5], 1.0), "str '5'"),
        (lambda: ArmaFilter.from_zpk([0.1], [0.5], True), "bool True"),
        (lambda: ArmaFilter.from_sos([[1, 0, 0, 1, "0", 0]]), "str '0'"),
    ],
)
def test_text_and_booleans_are_not_coefficients(call, bad: str) -> None:
    """Issue 13: ``ArmaFilter(b="12")`` gave b=[12] and ``b=[True]`` gave b=[1]: refused, as hyperparameters are."""
    with pytest.raises(InvalidFilterError, match=rf"must hold numbers, not text or booleans: got {re.escape(bad)}"):
        call()
    assert ArmaFilter(b=np.array([0.5, 1]), a=(1, 0.25)).b.tolist() == [0.5, 1.0]  # numbers still pass
