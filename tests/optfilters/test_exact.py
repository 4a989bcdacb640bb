"""optfilters.exact and optfilters.factored.roots against sympy's exact factorisation and mpmath's roots."""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scipy import signal

from optfilters import exact
from optfilters.factored import roots

# ----------------------------------------------------------------------------- polynomials


@st.composite
def polynomials(draw: st.DrawFn) -> list[Fraction]:
    """Real polynomials with roots on the circle, repeated, in reciprocal pairs, inside and outside."""
    n = draw(st.integers(1, 9))
    rs: list[complex] = []
    while len(rs) < n:
        kind = draw(st.integers(0, 6))
        if kind == 0:
            theta = draw(st.sampled_from([math.pi / 3, math.pi / 2, 2 * math.pi / 3, math.pi / 4]))
            rs += [complex(math.cos(theta), math.sin(theta)), complex(math.cos(theta), -math.sin(theta))]
        elif kind == 1:
            rs.append(complex(draw(st.sampled_from([1.0, -1.0]))))
        elif kind == 2:
            r, t = draw(st.floats(0.1, 1.9)), draw(st.floats(0.1, 3.0))
            rs += [r * complex(math.cos(t), math.sin(t)), r * complex(math.cos(t), -math.sin(t))]
        elif kind == 3:  # (a root of 1e-300 moves the others by 1e-400: beyond the 60-digit reference)
            rs.append(complex(draw(st.one_of(st.just(0.0), st.floats(0.001, 1.9), st.floats(-1.9, -0.001)))))
        elif kind == 4 and rs:
            rs.append(rs[-1])
        else:
            r = draw(st.sampled_from([0.5, 2.0, 0.25, 4.0, 0.8, 1.25]))
            rs += [complex(r), complex(1 / r)]
    a = np.real(np.poly(rs))
    if draw(st.booleans()):
        a = np.round(a * 8) / 8  # exactly representable "nice" coefficients keep exact structure
    return list(exact.fractions_of(a))


def _off_circle_side(cs: list, dps: int = 60) -> list[int]:
    """For each root of a square-free polynomial with no root on the circle: -1 inside, +1 outside.

    Decided by mpmath's roots at rising precision until every ``|r| - 1`` clears the roots' error bound
    (roots of these polynomials come within 5.3e-48 of the circle without lying on it).
    """
    while dps <= 2000:
        with mpmath.workdps(dps):
            exact_cs = [mpmath.mpf(c.p) / c.q for c in cs]
            found, error = mpmath.polyroots(exact_cs, maxsteps=400, extraprec=4 * dps, error=True)
            distances = [abs(r) - 1 for r in found]
            if all(abs(d) > 10 * error + mpmath.mpf(10) ** (15 - dps) for d in distances):
                return [1 if d > 0 else -1 for d in distances]
        dps *= 4
    raise AssertionError("a root too close to the circle for the reference")


def reference_counts(p: list[Fraction]) -> tuple[int, int, int, bool]:
    """sympy's exact square-free factorisation and gcd with the reciprocal, then mpmath's roots.

    A root on the circle of a real square-free factor ``f`` is a root of ``gcd(f, f*)`` (``f*`` the
    reciprocal); that gcd's roots are on the circle or come in pairs ``r, 1/r`` (one inside, one outside),
    told apart at 60 digits.  The other roots lie off the circle: their sides are decided by
    :func:`_off_circle_side`.
    """
    z = sympy.Symbol("z")
    poly = sympy.Poly([sympy.Rational(c.numerator, c.denominator) for c in p], z)
    inside = on = outside = 0
    repeated = False
    for factor, m in sympy.sqf_list(poly)[1]:
        if factor.degree() < 1:
            continue
        reciprocal = sympy.Poly(list(reversed(factor.all_coeffs())), z)
        g = sympy.gcd(factor, reciprocal)
        rest = sympy.quo(factor, g)
        if rest.degree() > 0:
            for side in _off_circle_side([sympy.Rational(c) for c in rest.all_coeffs()]):
                inside, outside = inside + m * (side < 0), outside + m * (side > 0)
        if g.degree() > 0:
            with mpmath.workdps(60):
                cs = [mpmath.mpf(sympy.Rational(c).p) / sympy.Rational(c).q for c in g.all_coeffs()]
                for r in mpmath.polyroots(cs, maxsteps=300, extraprec=300):
                    d = abs(r) - 1
                    if d < -(mpmath.mpf(10) ** -45):
                        inside += m
                    elif d > mpmath.mpf(10) ** -45:
                        outside += m
                    else:
                        on += m
                        repeated = repeated or m > 1
    return inside, on, outside, repeated


#: Found by hypothesis: a pair near exp(+-i pi/3) 5.3e-48 OUTSIDE the unit circle, not on it (the counts are
#: (3, 0, 3); a 1e-45 tolerance on the reference's roots once said (3, 2, 1)).
NEAR_CIRCLE = [
    Fraction(1, 1),
    Fraction(-577023702256845, 281474976710656),
    Fraction(1125899906842625, 562949953421312),
    Fraction(-2308094809027381, 1125899906842624),
    Fraction(4503599627370499, 2251799813685248),
    Fraction(-4616189618054759, 2251799813685248),
    Fraction(4503599627370495, 4503599627370496),
]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(polynomials())
@example(NEAR_CIRCLE)
def test_unit_circle_counts_match_exact_factorisation_and_high_precision_roots(p: list[Fraction]) -> None:
    counts = exact.unit_circle_counts(p)
    assert (counts.inside, counts.on, counts.outside, counts.repeated_on_circle) == reference_counts(p)
    degree = len(p) - 1
    assert exact.is_schur_stable(p) == (counts.inside == degree)
    assert exact.stability(p) == counts.verdict


def test_counts_of_known_polynomials() -> None:
    assert exact.unit_circle_counts(exact.fractions_of([1, -2.5, 1])) == exact.UnitCircleCounts(1, 0, 1, False)
    assert exact.unit_circle_counts(exact.fractions_of([1, 0, 0, -1])).verdict == "marginal"  # cube roots of 1
    assert exact.unit_circle_counts(exact.fractions_of([1, 0, 2, 0, 1])).verdict == "unstable"  # (z^2 + 1)^2
    assert exact.stability(exact.fractions_of([1, 1, 1, 1])) == "marginal"  # -1, +-j
    # The Schur-Cohn singular case |k| = 1 with no root on the circle (z^3 + z^2 + 2z + 1)
    singular = exact.fractions_of([1, 1, 2, 1])
    assert exact.unit_circle_counts(singular) == exact.UnitCircleCounts(*reference_counts(list(singular)))
    # 5.3e-48 outside the circle: mpmath's roots at 60 and 300 digits agree on the sign
    assert exact.unit_circle_counts(NEAR_CIRCLE) == exact.UnitCircleCounts(3, 0, 3, False)
    for dps in (60, 300):
        with mpmath.workdps(dps):
            cs = [mpmath.mpf(c.numerator) / c.denominator for c in NEAR_CIRCLE]
            found = mpmath.polyroots(cs, maxsteps=400, extraprec=4 * dps)
            near = sorted(float(abs(r) - 1) for r in found if abs(abs(r) - 1) < 1e-30)
            assert near == pytest.approx([5.319555e-48, 5.319555e-48], rel=1e-6)


def test_noise_gain_against_impulse_energy_and_closed_forms() -> None:
    rng = np.random.default_rng(7)
    for _ in range(40):
        n = int(rng.integers(1, 6))
        p = rng.uniform(0.1, 0.95, n) * np.exp(1j * rng.uniform(0.0, 3.0, n))
        a = np.real(np.poly(np.concatenate([p, p.conj()])))
        b = rng.normal(size=int(rng.integers(1, 2 * n + 3)))
        h = signal.lfilter(b, a, np.r_[1.0, np.zeros(4000)])
        value = exact.noise_gain(exact.fractions_of(b), exact.fractions_of(a))
        assert value is not None and float(value) == pytest.approx(math.fsum(h * h), rel=1e-12)
    # (1 - beta) / (1 + beta) exactly for the EMA; None for a pole on the circle
    assert exact.noise_gain((Fraction(1, 4),), (Fraction(1), Fraction(-3, 4))) == Fraction(1, 7)
    assert exact.noise_gain((Fraction(1),), (Fraction(1), Fraction(-1))) is None


def test_gains_and_mean_delay_are_exact() -> None:
    b, a = exact.fractions_of([0.25]), exact.fractions_of([1, -0.75])
    assert exact.value_at_one(b, a) == 1 and exact.value_at_minus_one(b, a) == Fraction(1, 7)
    assert exact.mean_delay(b, a) == 3  # beta / (1 - beta)
    assert exact.value_at_one(exact.fractions_of([1]), exact.fractions_of([1, -1])) is None
    assert exact.mean_delay(exact.fractions_of([1, -1]), exact.fractions_of([1])) is None


def test_gcd_and_square_free_decomposition() -> None:
    p = exact.poly_mul(exact.fractions_of([1, -0.5]), exact.fractions_of([1, -0.5]))
    p = exact.poly_mul(p, exact.poly_mul(p, exact.fractions_of([1, 0.25])))  # (z - 1/2)^4 (z + 1/4)
    parts = {m: [str(c) for c in s] for s, m in exact.square_free_decomposition(p)}
    assert parts == {1: ["1", "1/4"], 4: ["1", "-1/2"]}
    q, r = exact.poly_divmod(p, exact.fractions_of([1, -0.5]))
    assert r == () and len(q) == 5
    assert exact.poly_gcd(p, exact.fractions_of([1, 0.25])) == exact.fractions_of([1, 0.25])


# ----------------------------------------------------------------------------- roots


def mp_reference_roots(p: tuple[Fraction, ...]) -> list[complex]:
    with mpmath.workdps(80):
        cs = [mpmath.mpf(c.numerator) / c.denominator for c in p]
        return sorted(
            (complex(r) for r in mpmath.polyroots(cs, maxsteps=2000, extraprec=3000)), key=lambda c: (c.real, c.imag)
        )


@pytest.mark.parametrize(
    "coefficients",
    [
        signal.butter(8, 0.004, output="ba")[1],  # eight poles clustered at 1 - 0.01
        signal.cheby1(10, 1.0, 0.02, output="ba")[1],
        [1, -3.9996, 5.998800060000001, -3.9988001199960004, 0.9996000599960002],  # EMA(0.9999)^4, rounded
        [1, -1, 0.25, -3.11254e-109],  # a pair split by 1e-54 and a root at 1.2e-108
        np.real(np.poly([0.9, 0.9 + 1e-7, 0.5 + 0.5j, 0.5 - 0.5j, -0.3])),
    ],
)
def test_roots_are_the_exact_roots_to_double_precision(coefficients: np.ndarray) -> None:
    p = exact.fractions_of(coefficients)
    found = roots(p)
    ours = sorted(found.values.tolist(), key=lambda c: (c.real, c.imag))
    for r, ref in zip(ours, mp_reference_roots(p), strict=True):
        assert abs(r - ref) <= 2.0 * np.spacing(max(1.0, abs(ref)))
    assert found.method in ("high precision", "closed form", "exact")


def test_exact_multiplicities() -> None:
    p = exact.fractions_of(np.real(np.poly([0.5, 0.5, 0.5, -0.25, -0.25, 1.0])))  # exact binary roots
    found = roots(p)
    assert sorted(zip(found.values.real.tolist(), found.multiplicities.tolist(), strict=True)) == sorted(
        [(0.5, 3)] * 3 + [(-0.25, 2)] * 2 + [(1.0, 1)]
    )
    assert found.exact and found.method == "exact"
