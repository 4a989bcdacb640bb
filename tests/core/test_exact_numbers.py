"""Issue 11: every number of every filter, each case checked against a reference computed here.

References are independent of optfilters' factored/exact code: scipy's own SOS designs run through
``sosfilt``, mpmath roots and derivatives of the multiplied-out polynomials at 50 digits, dense
``sosfreqz`` grids unwrapped by numpy, and closed forms.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from click.testing import CliRunner
from optfilters.cli import main
from scipy import signal

import optfilters
from optfilters import ArmaFilter, cascade

# ----------------------------------------------------------------------------- references


def design_sos(kind: str, order: int, cutoff: float, dc_gain: float = 10.0) -> np.ndarray:
    """scipy's SOS design, its first section scaled so that the DC gain is ``dc_gain``."""
    wn = 2.0 * cutoff
    if kind == "butterworth":
        sos = signal.butter(order, wn, output="sos")
    elif kind == "chebyshev1":
        sos = signal.cheby1(order, 1.0, wn, output="sos")
    else:
        sos = signal.bessel(order, wn, norm="mag", output="sos")
    h1 = np.prod(np.sum(sos[:, :3], axis=1) / np.sum(sos[:, 3:], axis=1))
    sos = sos.copy()
    sos[0, :3] *= dc_gain / h1
    return sos


def impulse_sums(sos: np.ndarray, chunk: int = 20_000) -> tuple[float, float, float]:
    """``sum h``, ``sum h^2`` and ``sum n h`` of the SOS impulse response, run until the tail is negligible."""
    zi = np.zeros((sos.shape[0], 2))
    total, energy, moment = [], [], []
    x = np.zeros(chunk)
    x[0] = 1.0
    start = 0
    while True:
        h, zi = signal.sosfilt(sos, x, zi=zi)
        n = np.arange(start, start + chunk)
        total.append(math.fsum(h))
        energy.append(math.fsum(h * h))
        moment.append(math.fsum(n * h))
        x = np.zeros(chunk)
        start += chunk
        if np.max(np.abs(h[-100:])) < 1e-18 * max(1.0, math.sqrt(math.fsum(energy))):
            return math.fsum(total), math.fsum(energy), math.fsum(moment)
        assert start < 5_000_000, "the impulse response does not decay"


def mp_poly(roots: np.ndarray) -> list[mpmath.mpc]:
    """prod (z - r) multiplied out in mpmath (descending powers)."""
    coefficients = [mpmath.mpc(1)]
    for r in roots:
        r = mpmath.mpc(complex(r))
        coefficients = [*coefficients, mpmath.mpc(0)]
        for i in range(len(coefficients) - 1, 0, -1):
            coefficients[i] -= r * coefficients[i - 1]
    return coefficients


def mp_group_delay(zeros: np.ndarray, poles: np.ndarray, w: float) -> float:
    """-d/dw arg H(e^{iw}) by numerical differentiation of the multiplied-out polynomials at 50 digits."""
    with mpmath.workdps(50):
        b, a = mp_poly(zeros), mp_poly(poles)

        def arg(x: mpmath.mpf) -> mpmath.mpf:
            z = mpmath.exp(1j * x)
            return mpmath.arg(mpmath.polyval(b, z) / mpmath.polyval(a, z) * z ** (len(a) - len(b)))

        return float(-mpmath.diff(arg, mpmath.mpf(w), h=mpmath.mpf(10) ** -25))


def dense_unwrapped_phase(sos: np.ndarray, f_end: float, points: int = 200_001) -> float:
    """The phase at ``f_end`` (degrees) from a dense sosfreqz grid from DC, unwrapped by numpy."""
    grid = np.linspace(0.0, f_end, points)
    _, h = signal.sosfreqz(sos, worN=grid, fs=1.0)
    return float(np.degrees(np.unwrap(np.angle(h)))[-1])


def mp_max_root_modulus(coefficients: list[float]) -> mpmath.mpf:
    with mpmath.workdps(60):
        exact = [mpmath.mpf(Fraction(c).numerator) / Fraction(c).denominator for c in coefficients]
        return max(abs(r) for r in mpmath.polyroots(exact, maxsteps=500, extraprec=600))


def cli_stdout(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def cli_json(*args: str) -> dict:
    import json

    return json.loads(cli_stdout(*args, "--json"))


def number_after(text: str, label: str) -> float:
    match = re.search(re.escape(label) + r"\s+(-?[0-9.e+-]+)", text)
    assert match, (label, text)
    return float(match.group(1))


# ----------------------------------------------------------------------------- designed low-passes


def test_butterworth_order_8_summary_numbers() -> None:
    """Issue row 1: noise gain 1.00645, |H(0)| = 10, mean delay 163.147 (printed -3.1e-10 and 9.90)."""
    total, energy, moment = impulse_sums(design_sos("butterworth", 8, 0.005))
    data = cli_json("response", "butterworth", "--order", "8", "--cutoff", "0.005", "--dc-gain", "10")
    f = data["filters"]["gradient"]
    assert total == pytest.approx(10.0, rel=1e-9)
    assert f["dc_gain"] == pytest.approx(total, rel=1e-9)
    assert f["magnitude"][0] == pytest.approx(10.0, rel=1e-12)  # |H(0)| in the table, not 9.90
    assert f["noise_gain"] == pytest.approx(energy, rel=1e-9)
    assert f["mean_delay"] == pytest.approx(moment / total, rel=1e-9)
    text = cli_stdout(
        "response", "butterworth", "--order", "8", "--cutoff", "0.005", "--dc-gain", "10", "--points", "3"
    )
    assert number_after(text, "noise gain") == pytest.approx(1.00645, abs=5e-6)
    assert number_after(text, "mean delay") == pytest.approx(163.147, abs=5e-4)
    assert re.search(r"\n\s+0\s+10\s+20\s+0\n", text)


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


# ----------------------------------------------------------------------------- cancellations


def test_momentum_with_a_cancelled_pair_at_one() -> None:
    """Issue row 3: (1 - z^-1) / ((1 - z^-1)(1 - 0.9 z^-1)) is momentum 0.9: DC 10, stable, 5.26316, 9, a note."""
    mu = 0.9
    text = cli_stdout("describe", "custom", "--b", "1,-1", "--a", "1,-1.9,0.9")
    assert number_after(text, "DC gain:") == pytest.approx(1 / (1 - mu), rel=1e-9)
    assert "stability: stable" in text and "cancelled" in text and "note:" in text
    data = cli_json("response", "custom", "--b", "1,-1", "--a", "1,-1.9,0.9")
    f = data["filters"]["gradient"]
    assert f["stability"] == "stable" and f["stable"] is True
    assert f["dc_gain"] == pytest.approx(1 / (1 - mu), rel=1e-9)
    assert f["noise_gain"] == pytest.approx(1 / (1 - mu**2), rel=1e-9)  # 5.26316
    assert f["mean_delay"] == pytest.approx(mu / (1 - mu), rel=1e-9)  # 9
    assert len(f["cancelled"]) == 1 and "z = 1" in f["cancelled"][0]
    result = CliRunner().invoke(main, ["describe", "custom", "--b", "1,-1", "--a", "1,-1.9,0.9"])
    assert "WARNING" not in result.stderr  # no longer flagged marginal


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


def test_four_emas_entered_expanded_are_stable() -> None:
    """Issue row 5: all |p| <= 0.9999963 (mpmath roots of these very coefficients): stable (was UNSTABLE)."""
    reference = mp_max_root_modulus(A4)
    assert reference < 1 and abs(float(reference) - 0.9999963) < 1e-7
    f = ArmaFilter([1e-16], A4)
    assert f.stability == "stable"
    assert float(np.max(np.abs(f.poles))) == pytest.approx(float(reference), abs=1e-15)
    assert f.factorisation.poles.method == "high precision"
    text = cli_stdout("describe", "custom", "--a", ",".join(repr(c) for c in A4), "--b", "1e-16")
    assert "stability: stable" in text


def test_four_emas_closed_loop_interval() -> None:
    """Issue row 5: closed loop stable for 0 < lr*h < 4.678e-5 (was "no stable interval").

    Reference: bisection on the largest root modulus of (1 - z^-1) A + x z^-1 B from mpmath's
    polyroots of the exact coefficients at 40 digits.
    """
    with mpmath.workdps(40):
        a = [mpmath.mpf(Fraction(c).numerator) / Fraction(c).denominator for c in A4]
        b = mpmath.mpf(Fraction(1e-16).numerator) / Fraction(1e-16).denominator

        def radius(x: mpmath.mpf) -> mpmath.mpf:
            p = [a[0]] + [a[i] - a[i - 1] for i in range(1, 5)] + [-a[4]]
            p[1] += x * b
            return max(abs(r) for r in mpmath.polyroots(p, maxsteps=200, extraprec=200))

        lo, hi = mpmath.mpf("4.5e-5"), mpmath.mpf("4.9e-5")
        assert radius(mpmath.mpf("1e-7")) < 1 and radius(lo) < 1 < radius(hi)
        for _ in range(24):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if radius(mid) < 1 else (lo, mid)
        edge = float(lo)
    from optfilters.closed_loop import stability_interval

    s = stability_interval(ArmaFilter([1e-16], A4, name="custom"))
    assert s.interval is not None and s.interval[0] == 0.0
    assert s.max_stable_lr_curvature == pytest.approx(edge, rel=1e-7)
    assert edge == pytest.approx(4.678e-5, rel=1e-3)
    text = cli_stdout("stability", "custom", "--a", ",".join(repr(c) for c in A4), "--b", "1e-16")
    assert "stable for 0 < lr*h < 4.67775e-05" in text


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


# ----------------------------------------------------------------------------- singular frequencies


def test_group_delay_at_a_zero_on_the_unit_circle() -> None:
    """Issue row 7: the limits 0.1120 (butterworth's zeros at -1) and 0.5 (b = 0.5, 0.5) at Nyquist."""
    z, p, _ = signal.butter(2, 0.1, output="zpk")
    reference = mp_group_delay(z, p, math.pi - 1e-15)
    f = optfilters.get("butterworth").filters()["gradient"]
    r = optfilters.frequency_response(f, freqs=[0.5])
    assert r.group_delay[0] == pytest.approx(reference, rel=1e-9)
    assert r.group_delay[0] == pytest.approx(0.1120, abs=5e-5)
    # elsewhere the delay agrees with scipy's own group_delay
    freqs = np.array([0.0, 0.1, 0.3])
    _, gd = signal.group_delay((f.b, f.a), w=freqs, fs=1.0)
    np.testing.assert_allclose(optfilters.frequency_response(f, freqs=freqs).group_delay, gd, rtol=1e-8)
    data = cli_json("response", "custom", "--b", "0.5,0.5", "--a", "1", "--points", "3")
    assert data["filters"]["gradient"]["group_delay"] == pytest.approx([0.5, 0.5, 0.5], rel=1e-15)


@pytest.mark.parametrize(
    ("args", "freq", "expected"),
    [
        (("chebyshev1", "--order", "6", "--cutoff", "0.05", "--points", "11"), 0.05, -388.8),
        (("butterworth", "--order", "4", "--cutoff", "0.001", "--points", "6", "--log"), 0.001, -180.0),
    ],
)
def test_phase_is_continuous_on_a_coarse_grid(args: tuple[str, ...], freq: float, expected: float) -> None:
    """Issue row 8: -388.8 deg at 0.05 and -180 deg at 0.001 (each was 360 deg off)."""
    kind, order, cutoff = args[0], int(args[2]), float(args[4])
    reference = dense_unwrapped_phase(design_sos(kind, order, cutoff), freq)
    assert reference == pytest.approx(expected, abs=0.05)
    data = cli_json("response", *args)
    freqs = np.asarray(data["freqs"])
    phase = np.degrees(np.asarray(data["filters"]["gradient"]["phase"]))
    (i,) = np.flatnonzero(np.isclose(freqs, freq, rtol=1e-12))
    assert phase[i] == pytest.approx(reference, abs=1e-6)
    if freqs[0] == 0.0:
        assert phase[0] == 0.0  # anchored at DC
    assert f" {expected:.4g}\n" in cli_stdout("response", *args)


# ----------------------------------------------------------------------------- bias correction


def test_bias_corrected_step_of_stages_that_start_from_the_first_gradient() -> None:
    """Issue row 9: Grokfast 3, 3, 3 and momentum with dampening 1, 1.4: never above the DC gain (3; 5)."""
    grok = cli_json("step", "grokfast", "--steps", "3")["filters"]["gradient"]
    # y_t = g_t + lamb * ema_t with ema_1 = g_1: 1 + 2 * 1 at every step of a unit step
    assert grok["step"] == [3.0, 3.0, 3.0] and grok["bias_corrected"] == [3.0, 3.0, 3.0]
    assert grok["dc_gain"] == pytest.approx(3.0)
    mom = cli_json("step", "momentum", "--momentum", "0.9", "--dampening", "0.5", "--steps", "2")["filters"]
    # torch: buf_1 = g_1 = 1; buf_2 = 0.9 * 1 + 0.5 * 1 = 1.4 -- nothing to correct
    assert mom["gradient"]["bias_corrected"] == pytest.approx([1.0, 1.4], rel=1e-15)
    assert max(mom["gradient"]["bias_corrected"]) <= mom["gradient"]["dc_gain"] == pytest.approx(5.0)
    # a term from rest is still corrected (Adam's bias correction, momentum without dampening)
    plain = optfilters.step_response(optfilters.get("momentum", momentum=0.9).gradient, 3)
    np.testing.assert_allclose(plain.bias_corrected, [10.0, 10.0, 10.0], rtol=1e-14)
    text = cli_stdout("step", "grokfast", "--steps", "3")
    assert "101" not in text and "terms that start from the first gradient are left as they are" in text


# ----------------------------------------------------------------------------- plots and text


def test_bode_of_zeros_on_the_unit_circle_has_a_floor_and_marks_the_zero(tmp_path) -> None:
    """Issue row 10: a readable dB axis (was -701 dB) with the zero at Nyquist marked; phase within -720..0."""
    import matplotlib

    matplotlib.use("Agg")
    from optfilters import plot

    f = optfilters.get("butterworth", order=8, cutoff=0.005).filters()["gradient"]
    r = plot.bode(f, n=257)
    magnitude = r.artists["magnitude"][0].get_ydata()
    floor = r.data["db_floor"]
    assert floor == pytest.approx(20.0 - 120.0)  # 120 dB below the 20 dB peak
    assert np.nanmin(magnitude) >= floor and r.axes[0].get_ylim()[0] >= floor - 10.0
    (mark,) = r.artists["unit_circle_zeros"]
    assert mark.get_xdata().tolist() == [0.5] and mark.get_ydata().tolist() == [floor]
    phase = r.artists["phase"][0].get_ydata()
    assert np.all(np.isfinite(phase)) and phase.max() <= 1e-9 and phase.min() >= -720.0 - 1e-9
    sos = design_sos("butterworth", 8, 0.005)
    for i in (1, 5, 100, 255):  # the continuous phase, as a dense unwrapped sosfreqz gives it
        assert phase[i] == pytest.approx(dense_unwrapped_phase(sos, r.artists["phase"][0].get_xdata()[i]), abs=1e-6)
    r.close()
    path = tmp_path / "bode.png"
    assert f"figure written to {path}" in cli_stdout(
        "response", "butterworth", "--order", "8", "--cutoff", "0.005", "--plot", str(path)
    )
    assert path.stat().st_size > 0


def test_stability_text_has_no_meaningless_shortcut() -> None:
    """Issue row 11: 2/H(-1) is not a number when H(-1) = 0 (printed -1.3e35)."""
    for args in (("butterworth",), ("butterworth", "--order", "8", "--cutoff", "0.005"), ("bessel",)):
        text = cli_stdout("stability", *args)
        assert "2/H(-1): none (H(-1) = 0" in text
        numbers = [float(x) for x in re.findall(r"-?\d+\.?\d*(?:e[+-]?\d+)?", text)]
        assert all(abs(x) < 1e6 for x in numbers), text
    assert "2/H(-1) = 3.8 " in cli_stdout("stability", "momentum", "--momentum", "0.9")


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
