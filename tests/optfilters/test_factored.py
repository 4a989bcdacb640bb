"""Issue 11, the whole class: every summary number of random factored filters against independent references.

Filters: scipy designs (orders 1-12, cutoffs down to 1e-4) and random zeros/poles (up to 12 poles, radii up
to 0.9999, repeated poles, exactly cancelled pole-zero pairs, zeros on and outside the unit circle,
occasionally poles on or outside it).  References, none of which uses optfilters' factored or exact code:

* gains, delays and phase: the multiplied-out polynomials in mpmath at 150 digits (values, and the group
  delay as the numerical derivative of the phase);
* noise gain: ``sum h^2`` of the impulse response run through complex first-order sections with
  ``scipy.signal.lfilter`` (each pole exact, no rounded second-order coefficients), until it has decayed;
* the continuous phase: numpy's ``unwrap`` of ``sosfreqz`` on a grid refined around every root;
* stability: ``|p|^2`` against 1 in rational arithmetic (``fractions``), and for filters entered as
  multiplied-out coefficients, mpmath's roots of those exact coefficients at 60 digits.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scipy import signal

import optfilters
from optfilters import ArmaFilter

RTOL = 1e-9


# ----------------------------------------------------------------------------- filters


def _radius(draw: st.DrawFn) -> float:
    if draw(st.booleans()):
        return draw(st.floats(0.05, 0.99))
    return 1.0 - 10.0 ** draw(st.floats(-4.0, -2.0))  # up to 0.9999


def _far_from(value: complex, roots: list[complex], distance: float = 1e-3) -> bool:
    return all(abs(value - r) > distance for r in roots)


@st.composite
def factored_filters(draw: st.DrawFn) -> dict:
    """Zeros, poles, gain, and which zero cancels which pole exactly."""
    if draw(st.integers(0, 3)) == 0:
        kind = draw(st.sampled_from(["butter", "cheby1", "bessel"]))
        order = draw(st.integers(1, 12))
        cutoff = 10.0 ** draw(st.floats(-4.0, math.log10(0.45)))
        wn = 2.0 * cutoff
        if kind == "butter":
            z, p, k = signal.butter(order, wn, output="zpk")
        elif kind == "cheby1":
            z, p, k = signal.cheby1(order, 1.0, wn, output="zpk")
        else:
            z, p, k = signal.bessel(order, wn, norm="mag", output="zpk")
        return {"zeros": list(z), "poles": list(p), "gain": float(k), "cancelled": 0, "label": f"{kind}{order}"}
    poles: list[complex] = []
    budget = draw(st.integers(1, 12))
    while len(poles) < budget:
        choice = draw(st.integers(0, 9))
        if choice == 0 and poles:  # repeat an earlier pole (and its conjugate)
            r = draw(st.sampled_from(poles))
            extra = [r] if r.imag == 0 else [r, r.conjugate()]
            if len(poles) + len(extra) <= 12:
                poles += extra
            continue
        if choice == 1:  # on the unit circle (marginal) or just outside (unstable)
            r = draw(st.sampled_from([1.0, -1.0, 1.02, -1.3]))
            poles.append(complex(r))
            continue
        radius = _radius(draw)
        if choice < 5 or len(poles) + 2 > 12:
            poles.append(complex(radius * draw(st.sampled_from([1.0, -1.0]))))
        else:
            angle = draw(st.one_of(st.floats(1e-3, math.pi - 1e-3), st.floats(1e-4, 1e-2)))
            r = radius * complex(math.cos(angle), math.sin(angle))
            poles += [r, r.conjugate()]
    zeros: list[complex] = []
    n_zeros = draw(st.integers(0, len(poles)))
    while len(zeros) < n_zeros:
        choice = draw(st.integers(0, 5))
        if choice == 0:
            z = complex(draw(st.sampled_from([-1.0, 1.0])))
            zeros.append(z)
            continue
        if choice == 1 and len(zeros) + 2 <= n_zeros:  # a pair on the unit circle
            angle = draw(st.floats(0.05, math.pi - 0.05))
            z = complex(math.cos(angle), math.sin(angle))
            if _far_from(z, poles, 1e-2):
                zeros += [z, z.conjugate()]
            continue
        radius = draw(st.one_of(st.floats(0.0, 0.99), st.floats(1.01, 3.0)))
        if choice < 4 or len(zeros) + 2 > n_zeros:
            z = complex(radius * draw(st.sampled_from([1.0, -1.0])))
            if _far_from(z, poles):
                zeros.append(z)
        else:
            angle = draw(st.floats(1e-2, math.pi - 1e-2))
            z = radius * complex(math.cos(angle), math.sin(angle))
            if _far_from(z, poles):
                zeros += [z, z.conjugate()]
    # Exact cancellations: a zero equal to a pole (with its conjugate), within the causality budget.
    cancelled = 0
    for _ in range(draw(st.integers(0, 2))):
        r = draw(st.sampled_from(poles))
        extra = [r] if r.imag == 0 else [r, r.conjugate()]
        if len(zeros) + len(extra) <= len(poles):
            zeros += extra
            cancelled += len(extra)
    gain = draw(st.sampled_from([1.0, -1.0])) * 10.0 ** draw(st.floats(-2.0, 2.0))
    return {"zeros": zeros, "poles": poles, "gain": gain, "cancelled": cancelled, "label": "random"}


def reduced(spec: dict) -> tuple[list[complex], list[complex]]:
    """The reference minimal realisation: remove exactly equal pole-zero pairs."""
    zeros = [complex(z) for z in spec["zeros"] if z != 0]
    poles = [complex(p) for p in spec["poles"] if p != 0]
    keep_z = []
    for z in zeros:
        if z in poles:
            poles.remove(z)
        else:
            keep_z.append(z)
    return keep_z, poles


def cancelled_count(spec: dict) -> int:
    zeros, _ = reduced(spec)
    return len([z for z in spec["zeros"] if z != 0]) - len(zeros)


# ----------------------------------------------------------------------------- references


def exact_verdict(poles: list[complex]) -> str:
    on = []
    for p in poles:
        m = Fraction(p.real) ** 2 + Fraction(p.imag) ** 2
        if m > 1:
            return "unstable"
        if m == 1:
            on.append(p)
    if len(set(on)) < len(on):
        return "unstable"
    return "marginal" if on else "stable"


def mp_coefficients(roots: list[complex]) -> list:
    c = [mpmath.mpc(1)]
    for r in roots:
        r = mpmath.mpc(r)
        c = [*c, mpmath.mpc(0)]
        for i in range(len(c) - 1, 0, -1):
            c[i] -= r * c[i - 1]
    return c


class MpFilter:
    """H(z) = gain z^-d B(z) / A(z) * z^(nA - nB) from multiplied-out polynomials in mpmath."""

    def __init__(self, zeros: list[complex], poles: list[complex], gain: float, delay: int) -> None:
        self.b, self.a = mp_coefficients(zeros), mp_coefficients(poles)
        self.shift = len(self.a) - len(self.b) - delay  # power of z
        self.gain = mpmath.mpf(gain)

    def value(self, z: mpmath.mpc) -> mpmath.mpc:
        return self.gain * mpmath.polyval(self.b, z) / mpmath.polyval(self.a, z) * z**self.shift

    def group_delay(self, w: float, h: float = 1e-60) -> float:
        w0 = mpmath.mpf(w)
        ref = self.value(mpmath.exp(1j * w0))

        def arg(x: mpmath.mpf) -> mpmath.mpf:
            return mpmath.arg(self.value(mpmath.exp(1j * x)) / ref)

        return float(-mpmath.diff(arg, w0, h=mpmath.mpf(h)))


def impulse_energy(zeros: list[complex], poles: list[complex], gain: float) -> float:
    """sum h^2 through complex first-order sections (lfilter), each zero paired with the nearest pole."""
    zeros, poles = list(zeros), list(poles)
    sections = []
    for p in poles:
        z = min(zeros, key=lambda u: abs(u - p)) if zeros else None
        if z is not None:
            zeros.remove(z)
        sections.append(([1.0, -z] if z is not None else [1.0], [1.0, -p]))
    sections += [([1.0, -z], [1.0]) for z in zeros]
    states = [np.zeros(max(len(b), len(a)) - 1, dtype=np.complex128) for b, a in sections]
    chunk = 50_000
    x = np.zeros(chunk, dtype=np.complex128)
    x[0] = gain
    parts: list[float] = []
    for _ in range(200):
        y = x
        for i, (b, a) in enumerate(sections):
            y, states[i] = signal.lfilter(np.asarray(b, complex), np.asarray(a, complex), y, zi=states[i])
        parts.append(math.fsum(np.abs(y) ** 2))
        x = np.zeros(chunk, dtype=np.complex128)
        total = math.fsum(parts)
        if parts[-1] <= 1e-15 * total and np.max(np.abs(y[-1000:])) ** 2 * 1e5 <= 1e-13 * total:
            return total
    raise AssertionError("the impulse response did not decay")


def refined_grid(roots: list[complex]) -> np.ndarray:
    grid = [np.linspace(0.0, 0.5, 4001)]
    for r in roots:
        d = max(abs(1.0 - abs(r)), 1e-7)
        theta = abs(math.atan2(r.imag, r.real)) / (2 * math.pi)
        offsets = d / (2 * math.pi) * np.geomspace(1e-2, 1e2, 200)
        grid.append(np.concatenate([theta - offsets, theta + offsets]))
    g = np.unique(np.concatenate(grid))
    return g[(g >= 0.0) & (g <= 0.5)]


# ----------------------------------------------------------------------------- the property


FREQS = np.array([0.0, 0.0731, 0.25, 0.4113, 0.5])


def check_summary(f: ArmaFilter, zeros: list[complex], poles: list[complex], gain: float, delay: int) -> None:
    s = optfilters.summarise(f)
    verdict = exact_verdict(poles)
    assert s.stability == verdict == f.stability
    with mpmath.workdps(150):  # multiplied out, an 8-fold pole at 0.9999 cancels 34 digits at z = 1
        ref = MpFilter(zeros, poles, gain, delay)
        dc_zero = any(z == 1 for z in zeros)
        dc_pole = any(p == 1 for p in poles)
        if dc_pole and not dc_zero:
            assert math.isinf(s.dc_gain)
        elif dc_zero:
            assert s.dc_gain == 0.0
        else:
            assert s.dc_gain == pytest.approx(float(mpmath.re(ref.value(mpmath.mpf(1)))), rel=RTOL, abs=0.0)
        ny_pole = any(p == -1 for p in poles)
        if any(z == -1 for z in zeros) and not ny_pole:
            assert s.nyquist_gain == 0.0
        elif not ny_pole:
            assert s.nyquist_gain == pytest.approx(float(mpmath.re(ref.value(mpmath.mpf(-1)))), rel=RTOL, abs=0.0)
        if not (dc_zero or dc_pole):
            assert s.mean_delay == pytest.approx(ref.group_delay(0.0), rel=RTOL, abs=1e-9)
        elif dc_pole and not dc_zero:
            assert s.mean_delay == math.inf  # infinite: a pole at z = 1 (labelled, never nan)
        else:
            assert not math.isnan(s.mean_delay)  # a zero at DC: the group delay's one-sided limit there
        r = optfilters.frequency_response(f, freqs=FREQS)
        for i, fr in enumerate(FREQS):
            w = 2 * math.pi * fr
            on_nyquist = fr == 0.5 and (any(z == -1 for z in zeros) or ny_pole)
            on_dc = fr == 0.0 and (dc_zero or dc_pole)
            if on_nyquist or on_dc:
                # the one-sided limit, close enough that the error O(offset) vanishes and far enough that the
                # k-fold root on the circle (|H| ~ offset^k) stays within the working digits; multiplied out,
                # the other roots near the point cost more (ten poles at 0.99 next to a pole at z = 1: 20 digits
                # of |A| ~ offset * 1e-20), so the limit is taken at 400 digits (at most 12 roots, each at
                # least 1e-4 from the point unless on it, lose under 200)
                point = -1 if fr == 0.5 else 1
                k = max(sum(1 for z in zeros if z == point), sum(1 for p in poles if p == point))
                offset = 10.0 ** -(140 // (k + 1))
                w = w - offset if fr == 0.5 else w + offset
                with mpmath.workdps(400):
                    limit = MpFilter(zeros, poles, gain, delay)
                    expected_gd = limit.group_delay(w, h=offset * 1e-20)  # the quotient stays on one side
            else:
                expected_gd = ref.group_delay(w)
                value = ref.value(mpmath.exp(1j * mpmath.mpf(w)))
                angle = float(mpmath.arg(value))
                difference = math.remainder(r.phase[i] - angle, 2 * math.pi)
                assert abs(difference) <= 1e-9 * max(1.0, abs(r.phase[i]))
                assert abs(r.response[i]) == pytest.approx(float(abs(value)), rel=RTOL)
            assert r.group_delay[i] == pytest.approx(expected_gd, rel=RTOL, abs=1e-9)
    if not (dc_zero or dc_pole):
        assert r.phase[0] == (math.pi if s.dc_gain < 0 else 0.0)  # anchored at DC
    if verdict == "stable":
        assert s.noise_gain == pytest.approx(impulse_energy(zeros, poles, gain), rel=RTOL)
    else:
        assert math.isinf(s.noise_gain)


@pytest.mark.filterwarnings("ignore::optfilters.StabilityWarning")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(factored_filters())
@example(  # found by hypothesis: at DC the limit is 11 + 10 * 99 - 1/2 = 1000.5; the reference lost its digits
    {"zeros": [], "poles": [0.99 + 0j] * 10 + [1 + 0j], "gain": 1.0, "cancelled": 0, "label": "random"}
)
def test_summary_numbers_of_factored_filters(spec: dict) -> None:
    f = ArmaFilter.from_zpk(spec["zeros"], spec["poles"], spec["gain"])
    zeros, poles = reduced(spec)
    delay = len([p for p in spec["poles"] if p != 0]) - len([z for z in spec["zeros"] if z != 0])
    delay += sum(1 for p in spec["poles"] if p == 0) - sum(1 for z in spec["zeros"] if z == 0)
    assert sum(c.count for c in f.cancellations()) == cancelled_count(spec)
    check_summary(f, zeros, poles, spec["gain"], delay)


@pytest.mark.filterwarnings("ignore::optfilters.StabilityWarning")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(factored_filters())
def test_continuous_phase_matches_a_dense_unwrapped_reference(spec: dict) -> None:
    zeros, poles = reduced(spec)
    interior = [z for z in zeros if abs(abs(z) - 1.0) < 1e-12 and 0 < abs(math.atan2(z.imag, z.real)) < math.pi]
    stable_dc = not any(r == 1 for r in zeros + poles)
    if interior or not stable_dc:
        return  # the phase jumps by pi at a zero on the circle: unwrap cannot tell its sign
    f = ArmaFilter.from_zpk(spec["zeros"], spec["poles"], spec["gain"])
    grid = refined_grid(zeros + poles)
    if any(r == -1 for r in zeros + poles):  # sosfreqz's phase is rounding noise next to a root at z = -1
        grid = grid[grid < 0.5 - 1e-3]
    k = spec["gain"]
    sos = signal.zpk2sos(zeros + [0.0] * (len(poles) - len(zeros)), poles + [0.0] * (len(zeros) - len(poles)), k)
    _, h = signal.sosfreqz(sos, worN=grid, fs=1.0)
    reference = np.unwrap(np.angle(h))
    reference += (math.pi if np.real(h[0]) < 0 else 0.0) - reference[0]
    delay = len(spec["poles"]) - len(spec["zeros"])  # net delay, roots at the origin included
    reference -= 2.0 * math.pi * grid * delay  # zpk2sos pads with roots at the origin: no delay of its own
    ours = optfilters.frequency_response(f, freqs=grid).phase
    np.testing.assert_allclose(ours, reference, rtol=0.0, atol=1e-7 * max(1.0, float(np.max(np.abs(ours)))))


# ----------------------------------------------------------------------------- entered as coefficients


@st.composite
def expanded_filters(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    spec = draw(factored_filters())
    a = np.real(np.poly(spec["poles"]))
    b = spec["gain"] * np.real(np.poly(spec["zeros"])) if spec["zeros"] else np.array([spec["gain"]])
    return b, a


def mp_roots(coefficients: np.ndarray) -> list:
    exact = [Fraction(float(c)) for c in coefficients]
    while exact and exact[-1] == 0:
        exact.pop()
    if len(exact) <= 1:
        return []
    import sympy

    z = sympy.Symbol("z")
    poly = sympy.Poly([sympy.Rational(c.numerator, c.denominator) for c in exact], z)
    out = []
    with mpmath.workdps(60):
        for factor, multiplicity in sympy.sqf_list(poly)[1]:
            cs = [mpmath.mpf(sympy.Rational(c).p) / sympy.Rational(c).q for c in factor.all_coeffs()]
            if len(cs) > 1:
                try:
                    roots = mpmath.polyroots(cs, maxsteps=300, extraprec=300)
                except mpmath.libmp.libhyper.NoConvergence:  # a tight cluster (e.g. four roots near 1e-59)
                    roots = mpmath.polyroots(cs, maxsteps=5000, extraprec=3000)
                out += [(r, multiplicity) for r in roots]
    return out


def mp_minimal_verdict(b: np.ndarray, a: np.ndarray) -> str:
    """Verdict of the exact coefficients' high-precision roots after the sqrt(eps) pole-zero matching."""
    tol = 2.0**-26
    with mpmath.workdps(60):
        poles = [(r, m) for r, m in mp_roots(a) for _ in range(m)]
        zeros = [r for r, m in mp_roots(b) for _ in range(m)]

        def is_real(r: mpmath.mpc) -> bool:
            return abs(mpmath.im(r)) <= mpmath.mpf(10) ** -40 * max(1, abs(r))

        pairs = sorted(
            (float(abs(p - z)), i, j)
            for i, (p, _) in enumerate(poles)
            for j, z in enumerate(zeros)
            if is_real(p) == is_real(z) and abs(p - z) <= tol * max(1, abs(p))
        )
        gone_p, gone_z = set(), set()
        for _, i, j in pairs:
            if i not in gone_p and j not in gone_z:
                gone_p.add(i)
                gone_z.add(j)
        left = [(p, m) for i, (p, m) in enumerate(poles) if i not in gone_p]
        eps = mpmath.mpf(10) ** -40
        if any(abs(p) > 1 + eps for p, _ in left):
            return "unstable"
        on = [p for p, _ in left if abs(abs(p) - 1) <= eps]
        distinct = {(round(float(mpmath.re(p)), 12), round(float(mpmath.im(p)), 12)) for p in on}
        if len(on) > len(distinct):  # a repeated root on the circle
            return "unstable"
        return "marginal" if on else "stable"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expanded_filters())
def test_verdicts_of_expanded_coefficients_match_high_precision_roots(ba: tuple[np.ndarray, np.ndarray]) -> None:
    """Entered as b/a the filter is what those exact coefficients say: its verdict is that of their roots."""
    b, a = ba
    f = ArmaFilter(b, a)
    assert f.stability == mp_minimal_verdict(b, a)
    # the Schur-Cohn verdict on the coefficients themselves (no cancellation) is that of all their roots
    with mpmath.workdps(60):
        pole_roots = mp_roots(a)
        outside = any(abs(r) > 1 + mpmath.mpf(10) ** -40 for r, _ in pole_roots)
        on = [m for r, m in pole_roots if abs(abs(r) - 1) <= mpmath.mpf(10) ** -40]
    expected = "unstable" if outside or any(m > 1 for m in on) else ("marginal" if on else "stable")
    assert optfilters.exact.stability(f.exact[1]) == expected
    # where the computed roots are far from the circle, they agree with the exact verdict
    radii = np.abs(f.factorisation.poles.values)
    if radii.size and np.all(np.abs(radii - 1.0) > 1e-9) and not f.cancellations():
        by_roots = "unstable" if np.any(radii > 1.0) else "stable"
        assert by_roots == f.stability
