"""Exact rational arithmetic on filter polynomials: stability, root counts, gains, delays and noise gain.

Every float is a dyadic rational, so a filter's coefficients are exactly
representable as :class:`fractions.Fraction` and every question that has a
rational answer gets it exactly, independent of how well the roots are known:

* :func:`unit_circle_counts` and :func:`stability` decide where the roots lie
  relative to the unit circle (Schur-Cohn/Jury step-down recursion, with the
  common factor of the polynomial and its reciprocal removed first and its
  unit-circle roots counted by a Sturm sequence);
* :func:`is_schur_stable` is the plain yes/no Schur-Cohn test (all roots
  strictly inside);
* :func:`noise_gain` is the white-noise power gain ``sum h[n]^2`` of a stable
  ``B/A`` by Astrom's recursion (the same step-down table), exact or, above
  degree 4, rigorously enclosed to within a unit in the last place;
* :func:`value_at_one`, :func:`value_at_minus_one` and :func:`mean_delay` are
  ``H(1)``, ``H(-1)`` and ``sum n h[n] / sum h[n]``.

Polynomials are tuples of Fractions in **descending** powers of ``z``:
``(c0, c1, ..., cn)`` is ``c0 z^n + ... + cn``.  A filter's coefficient array
in powers of ``z^-1`` (``lfilter`` order) is the same tuple: ``sum c_k z^-k =
z^-n (c0 z^n + ... + cn)`` has the same roots away from the origin.

References: E. I. Jury, *Theory and Application of the z-Transform Method*
(1964), ch. 3 (the step-down table); M. Marden, *Geometry of Polynomials*
(1966), sec. 42-43 (counting roots in the disk); K. J. Astrom, *Introduction
to Stochastic Control Theory* (1970), ch. 5.6 (the variance integral).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

__all__ = [
    "Poly",
    "SchurPencil",
    "UnitCircleCounts",
    "fractions_of",
    "is_schur_stable",
    "mean_delay",
    "noise_gain",
    "poly_divmod",
    "poly_gcd",
    "poly_mul",
    "square_free_decomposition",
    "stability",
    "unit_circle_counts",
    "value_at_minus_one",
    "value_at_one",
]

Poly = tuple[Fraction, ...]
Verdict = Literal["stable", "marginal", "unstable"]

_ZERO = Fraction(0)
_ONE = Fraction(1)


def fractions_of(values: Iterable[float | int | Fraction]) -> Poly:
    """The exact rational value of each number (floats are dyadic rationals).

    Parameters
    ----------
    values : iterable of float, int or Fraction
        The numbers.

    Returns
    -------
    tuple of Fraction
        Each value exactly.

    Raises
    ------
    ValueError
        If a value is not finite.

    Examples
    --------
    >>> fractions_of([1.0, 0.5])
    (Fraction(1, 1), Fraction(1, 2))
    >>> fractions_of([0.1])[0] == Fraction(1, 10)   # 0.1 is not one tenth
    False
    """
    out = []
    for v in values:
        if isinstance(v, Fraction):
            out.append(v)
            continue
        x = float(v)
        if not math.isfinite(x):
            raise ValueError(f"coefficients must be finite, got {v!r}")
        out.append(Fraction(x))
    return tuple(out)


def _strip(p: Sequence[Fraction]) -> Poly:
    """Drop leading zero coefficients (a lower degree); the zero polynomial is ``()``."""
    i = 0
    while i < len(p) and p[i] == 0:
        i += 1
    return tuple(p[i:])


def _monic(p: Poly) -> Poly:
    lead = p[0]
    return p if lead == 1 else tuple(c / lead for c in p)


def poly_mul(p: Sequence[Fraction], q: Sequence[Fraction]) -> Poly:
    """The product (a convolution of the coefficient lists).

    Parameters
    ----------
    p, q : sequence of Fraction
        Descending powers of ``z``.

    Returns
    -------
    tuple of Fraction
        ``p * q`` (``()`` when either is empty).

    Examples
    --------
    >>> [str(c) for c in poly_mul(fractions_of([1, -1]), fractions_of([1, 1]))]
    ['1', '0', '-1']
    """
    if not p or not q:
        return ()
    out = [_ZERO] * (len(p) + len(q) - 1)
    for i, a in enumerate(p):
        if a == 0:
            continue
        for j, b in enumerate(q):
            out[i + j] += a * b
    return tuple(out)


def poly_add(p: Sequence[Fraction], q: Sequence[Fraction]) -> Poly:
    """The sum of two coefficient lists in powers of ``z^-1`` (aligned at the first coefficient).

    Examples
    --------
    >>> [str(c) for c in poly_add(fractions_of([1]), fractions_of([0, 2]))]
    ['1', '2']
    """
    n = max(len(p), len(q))
    return tuple((p[i] if i < len(p) else _ZERO) + (q[i] if i < len(q) else _ZERO) for i in range(n))


def poly_divmod(p: Sequence[Fraction], q: Sequence[Fraction]) -> tuple[Poly, Poly]:
    """Quotient and remainder of polynomial division (descending powers of ``z``).

    Parameters
    ----------
    p, q : sequence of Fraction
        Dividend and divisor, descending powers of ``z``.

    Returns
    -------
    quotient, remainder : tuple of Fraction
        ``p = quotient * q + remainder`` with ``deg remainder < deg q``
        (``()`` for the zero polynomial).

    Raises
    ------
    ZeroDivisionError
        If ``q`` is the zero polynomial.

    Examples
    --------
    >>> quo, rem = poly_divmod(fractions_of([1, 0, -1]), fractions_of([1, -1]))
    >>> [str(c) for c in quo], rem
    (['1', '1'], ())
    """
    num = list(_strip(p))
    den = _strip(q)
    if not den:
        raise ZeroDivisionError("polynomial division by zero")
    if len(num) < len(den):
        return (), tuple(num)
    lead = den[0]
    quotient = []
    for i in range(len(num) - len(den) + 1):
        c = num[i] / lead
        quotient.append(c)
        if c != 0:
            for j in range(1, len(den)):
                num[i + j] -= c * den[j]
    remainder = _strip(num[len(num) - len(den) + 1 :])
    return tuple(quotient), remainder


def poly_gcd(p: Sequence[Fraction], q: Sequence[Fraction]) -> Poly:
    """The monic greatest common divisor (``(1,)`` when coprime, ``()`` when both are zero).

    Parameters
    ----------
    p, q : sequence of Fraction
        Descending powers of ``z``.

    Returns
    -------
    tuple of Fraction
        The monic gcd (Euclid's algorithm in exact arithmetic).

    Examples
    --------
    >>> g = poly_gcd(fractions_of([1, -1.9, 0.9]), fractions_of([1, -1]))   # 1.9 and 0.9 are not exact
    >>> [str(c) for c in g]
    ['1']
    >>> [str(c) for c in poly_gcd(fractions_of([1, -1.5, 0.5]), fractions_of([1, -1]))]
    ['1', '-1']
    """
    a, b = _strip(p), _strip(q)
    while b:
        rem = poly_divmod(a, b)[1]
        a, b = b, (_monic(rem) if rem else ())
    return _monic(a) if a else ()


def _sub(p: Sequence[Fraction], q: Sequence[Fraction]) -> Poly:
    """``p - q`` in descending powers of ``z`` (aligned at the constant term)."""
    n = max(len(p), len(q))
    pp = (_ZERO,) * (n - len(p)) + tuple(p)
    qq = (_ZERO,) * (n - len(q)) + tuple(q)
    return _strip(tuple(x - y for x, y in zip(pp, qq, strict=True)))


def _derivative(p: Poly) -> Poly:
    n = len(p) - 1
    return _strip(tuple(c * (n - i) for i, c in enumerate(p[:-1])))


def square_free_decomposition(p: Sequence[Fraction]) -> list[tuple[Poly, int]]:
    """Yun's algorithm: ``p = lead * prod_m S_m^m`` with monic, square-free, pairwise coprime ``S_m``.

    Returns the non-constant factors with their multiplicities ``m``.

    Parameters
    ----------
    p : sequence of Fraction
        Descending powers of ``z``.

    Returns
    -------
    list of (tuple of Fraction, int)
        The non-constant factors ``S_m`` with their multiplicities ``m``
        (empty for a constant).

    Examples
    --------
    >>> parts = square_free_decomposition(fractions_of([1, -3, 3, -1]))   # (z - 1)^3
    >>> [([str(c) for c in s], m) for s, m in parts]
    [(['1', '-1'], 3)]
    """
    f = _strip(p)
    if len(f) <= 1:
        return []
    f = _monic(f)
    out: list[tuple[Poly, int]] = []
    df = _derivative(f)
    a = poly_gcd(f, df)
    b = poly_divmod(f, a)[0]
    c = poly_divmod(df, a)[0]
    d = _sub(c, _derivative(b))
    m = 1
    while len(b) > 1:
        a = poly_gcd(b, d) if d else _monic(b)
        if len(a) > 1:
            out.append((a, m))
        b = poly_divmod(b, a)[0]
        c = poly_divmod(d, a)[0] if d else ()
        d = _sub(c, _derivative(b))
        m += 1
    return out


def _evaluate(p: Poly, x: Fraction) -> Fraction:
    value = _ZERO
    for c in p:
        value = value * x + c
    return value


# ----------------------------------------------------------------------------- the unit circle


def _step_down_counts(p: Poly) -> int | None:
    """Number of roots strictly inside the unit circle by the Schur-Cohn step-down; None in a singular case.

    ``p`` must have no roots on the unit circle.  Each step forms
    ``(p(z) - k p*(z)) / z`` with ``k = p(0) / lead`` (``p*`` the reciprocal
    polynomial); by Rouche's theorem it keeps the inside count when
    ``|k| < 1`` and mirrors it when ``|k| > 1`` (Marden, Geometry of
    Polynomials, Thm 42.1).  ``|k| = 1`` is the singular case.
    """
    c = list(_strip(p))
    inside_offset = 0
    sign = 1  # +1: counts add; -1: counts mirror
    # Track #in(p_original) as an affine function of #in(current): inside = offset + sign * current.
    while len(c) > 1:
        n = len(c) - 1
        k = c[-1] / c[0]
        ak = abs(k)
        if ak == 1:
            return None
        nxt = [c[i] - k * c[n - i] for i in range(n)]
        lead = nxt[0]
        nxt = [x / lead for x in nxt]
        if ak < 1:
            # #in(p) = #in(q) + 1
            inside_offset += sign * 1
        else:
            # #in(p) = n - 1 - #in(q)
            inside_offset += sign * (n - 1)
            sign = -sign
        c = nxt
    return inside_offset  # degree 0: no roots, current count 0


def _scaled(p: Poly, rho: Fraction) -> Poly:
    """Coefficients of ``p(rho z)`` (roots divided by rho)."""
    n = len(p) - 1
    return tuple(c * rho ** (n - i) for i, c in enumerate(p))


def _inside_count(p: Poly) -> int:
    """Roots strictly inside the unit circle of a polynomial with no roots on it (exact).

    The singular step-down cases are resolved by counting the roots inside the
    circles of radius ``1 - d`` and ``1 + d``: equal counts mean no root lies
    between them, so the count inside the unit circle is that number.
    """
    direct = _step_down_counts(p)
    if direct is not None:
        return direct
    delta = Fraction(1, 1 << 20)
    for _ in range(60):
        low = _step_down_counts(_scaled(p, 1 - delta))
        high = _step_down_counts(_scaled(p, 1 + delta))
        if low is None or high is None:
            delta = delta * Fraction(3, 4)  # step off an accidental singular radius
            continue
        if low == high:
            return low
        delta = delta / (1 << 16)
    raise ArithmeticError("the unit-circle root count did not resolve (a root within 2^-960 of the circle)")


def _reciprocal(p: Poly) -> Poly:
    return _strip(tuple(reversed(p)))


def _sturm_count(t: Poly, lo: Fraction, hi: Fraction) -> int:
    """Distinct real roots of ``t`` in ``(lo, hi]`` (Sturm's theorem; ``t(lo) != 0``)."""
    seq = [_strip(t)]
    d = _derivative(seq[0])
    if d:
        seq.append(d)
    while len(seq[-1]) > 1:
        rem = poly_divmod(seq[-2], seq[-1])[1]
        if not rem:
            break
        seq.append(tuple(-c for c in rem))

    def changes(x: Fraction) -> int:
        values = [v for v in (_evaluate(s, x) for s in seq) if v != 0]
        return sum(1 for u, v in itertools.pairwise(values) if (u > 0) != (v > 0))

    return changes(lo) - changes(hi)


def _count_on_circle(g: Poly) -> int:
    """Roots on the unit circle of a square-free ``g`` whose roots come in pairs ``r, 1/r`` (exact).

    Roots at ``z = +-1`` are divided out; the rest is self-reciprocal,
    ``g(z) = z^m T(z + 1/z)``, and its roots on the circle, ``x = 2 cos(theta)``,
    are the distinct real roots of ``T`` in ``(-2, 2)``, each a conjugate pair,
    counted by a Sturm sequence.
    """
    g = _monic(_strip(g))
    count = 0
    for point in (_ONE, -_ONE):
        if len(g) > 1 and _evaluate(g, point) == 0:
            g = poly_divmod(g, (_ONE, -point))[0]
            count += 1
    degree = len(g) - 1
    if degree == 0:
        return count
    if degree % 2 or any(g[i] != g[degree - i] * g[0] / g[degree] for i in range(degree + 1)):
        raise ArithmeticError("expected a self-reciprocal factor")  # pragma: no cover - guarded by construction
    g = tuple(c / g[degree] for c in g) if g[degree] != 1 else g
    m = degree // 2
    # z^-m g(z) = g_m + sum_j g_{m-j} (z^j + z^-j), z^j + z^-j = C_j(x), C_{j+1} = x C_j - C_{j-1}.
    t: list[Fraction] = [g[m]]  # ascending powers of x
    c_prev: list[Fraction] = [Fraction(2)]
    c_cur: list[Fraction] = [_ZERO, _ONE]
    for j in range(1, m + 1):
        coefficient = g[m - j]
        for i, v in enumerate(c_cur):
            if i >= len(t):
                t.append(_ZERO)
            t[i] += coefficient * v
        nxt = [_ZERO, *c_cur]
        for i, v in enumerate(c_prev):
            nxt[i] -= v
        c_prev, c_cur = c_cur, nxt
    descending = _strip(tuple(reversed(t)))
    two = Fraction(2)
    return count + 2 * _sturm_count(descending, -two, two)


@dataclass(frozen=True)
class UnitCircleCounts:
    """Where the roots of a polynomial lie relative to the unit circle (exact, with multiplicity).

    Attributes
    ----------
    inside, on, outside : int
        Root counts with multiplicity (``inside + on + outside`` is the degree).
    repeated_on_circle : bool
        True when a root on the circle is repeated (a double integrator).

    Examples
    --------
    >>> unit_circle_counts(fractions_of([1, -2, 1]))   # (z - 1)^2
    UnitCircleCounts(inside=0, on=2, outside=0, repeated_on_circle=True)
    """

    inside: int
    on: int
    outside: int
    repeated_on_circle: bool = False

    @property
    def verdict(self) -> Verdict:
        """``'stable'`` (all inside), ``'marginal'`` (simple roots on the circle) or ``'unstable'``."""
        if self.outside or self.repeated_on_circle:
            return "unstable"
        return "marginal" if self.on else "stable"


def unit_circle_counts(p: Sequence[Fraction]) -> UnitCircleCounts:
    """Exact counts of the roots inside, on and outside the unit circle.

    ``G = gcd(p, p*)`` holds every root on the circle and every reciprocal
    pair ``r, 1/r``; ``p / G`` is counted by the Schur-Cohn step-down
    (:func:`is_schur_stable`'s recursion with Marden's counting rule), and
    ``G``'s unit-circle roots by a Sturm sequence after ``z + 1/z = x``.

    Parameters
    ----------
    p : sequence of Fraction
        Coefficients in descending powers of ``z`` (a denominator ``a`` in
        powers of ``z^-1`` as it stands).

    Returns
    -------
    UnitCircleCounts

    Examples
    --------
    >>> unit_circle_counts(fractions_of([1, -2.5, 1]))   # roots 2 and 0.5
    UnitCircleCounts(inside=1, on=0, outside=1, repeated_on_circle=False)
    >>> unit_circle_counts(fractions_of([1, 0, 1])).verdict   # +-j
    'marginal'
    """
    poly = _strip(p)
    degree = len(poly) - 1
    if degree <= 0:
        return UnitCircleCounts(0, 0, 0)
    # Roots at the origin (trailing zeros) are inside.
    origin = 0
    while len(poly) > 1 and poly[-1] == 0:
        poly = poly[:-1]
        origin += 1
    if len(poly) == 1:
        return UnitCircleCounts(origin, 0, 0)
    g = poly_gcd(poly, _reciprocal(poly))
    rest = poly_divmod(poly, g)[0] if len(g) > 1 else poly
    rest_degree = len(rest) - 1
    rest_inside = _inside_count(rest) if rest_degree > 0 else 0
    inside = origin + rest_inside
    outside = rest_degree - rest_inside
    if len(g) <= 1:
        return UnitCircleCounts(inside, 0, outside)
    # G: roots on the circle, and reciprocal pairs r, 1/r off it (one inside, one outside).
    on = 0
    repeated = False
    for factor, multiplicity in square_free_decomposition(g):
        on_factor = _count_on_circle(factor)
        off_factor = len(factor) - 1 - on_factor
        on += on_factor * multiplicity
        repeated = repeated or (multiplicity > 1 and on_factor > 0)
        inside += off_factor // 2 * multiplicity
        outside += off_factor // 2 * multiplicity
    return UnitCircleCounts(inside, on, outside, repeated)


_CONTEXTS: dict[int, Any] = {}


def _interval_context(prec: int) -> Any:
    """An mpmath interval-arithmetic context at ``prec`` bits (outward rounding: rigorous enclosures)."""
    ctx = _CONTEXTS.get(prec)
    if ctx is None:
        import mpmath

        ctx = type(mpmath.iv)()  # building one costs milliseconds: one per precision, never modified
        ctx.prec = prec
        _CONTEXTS[prec] = ctx
    return ctx


def _enclose(ctx: Any, values: Sequence[Fraction]) -> list[Any]:
    return [ctx.mpf(v.numerator) / v.denominator for v in values]


#: Working precisions (bits) of the interval passes before exact rational arithmetic takes over.
_INTERVAL_PRECISIONS = (113, 400, 1600)


def _schur_pass(a: list[Any]) -> bool | None:
    """One step-down pass over interval coefficients: True/False when every step is decided, else None."""
    while len(a) > 1:
        n = len(a) - 1
        k = a[-1] / a[0]
        inside = abs(k) < 1
        if inside is None:
            return None
        if not inside:
            return False
        a = [a[i] - k * a[n - i] for i in range(n)]
    return True


def _schur_by_intervals(c: Poly) -> bool | None:
    """The step-down test in interval arithmetic at rising precision; None when no precision decides."""
    for prec in _INTERVAL_PRECISIONS:
        decided = _schur_pass(_enclose(_interval_context(prec), c))
        if decided is not None:
            return decided
    return None


class SchurPencil:
    """The Schur-Cohn test along a pencil ``P(x) = constant + x * slope`` (a closed loop's ``x = lr * h``).

    The coefficients' interval enclosures are made once per precision, so
    that testing many ``x`` costs only the step-down recursion; the decision
    is that of :func:`is_schur_stable` on ``constant + Fraction(x) * slope``.

    Parameters
    ----------
    constant, slope : sequence of Fraction
        The coefficients of ``P(0)`` and of ``dP/dx`` (descending powers of
        ``z``, the same length).

    Examples
    --------
    >>> pencil = SchurPencil(fractions_of([1, -1.9, 0.9]), fractions_of([0, 1, 0]))   # momentum 0.9
    >>> pencil.is_stable(3.7999), pencil.is_stable(3.8001)
    (True, False)
    """

    def __init__(self, constant: Sequence[Fraction], slope: Sequence[Fraction]) -> None:
        if len(constant) != len(slope):
            raise ValueError("constant and slope need the same length")
        self.constant, self.slope = tuple(constant), tuple(slope)
        self._enclosures: dict[int, tuple[list[Any], list[Any]]] = {}

    def is_stable(self, x: float) -> bool:
        """Whether every root of ``P(x)`` lies strictly inside the unit circle (exact decision).

        Parameters
        ----------
        x : float
            The pencil's parameter (for a closed loop, ``lr * h``: dimensionless).

        Returns
        -------
        bool
            True when ``P(x)`` is Schur stable.
        """
        y = Fraction(float(x))
        if len(self.constant) > 5 and self.constant[0] + y * self.slope[0] != 0:
            for prec in _INTERVAL_PRECISIONS:
                ctx = _interval_context(prec)
                if prec not in self._enclosures:
                    self._enclosures[prec] = (_enclose(ctx, self.constant), _enclose(ctx, self.slope))
                constant, slope = self._enclosures[prec]
                yi = ctx.mpf(float(x))
                decided = _schur_pass([c + yi * s for c, s in zip(constant, slope, strict=True)])
                if decided is not None:
                    return decided
        return is_schur_stable(tuple(c + y * s for c, s in zip(self.constant, self.slope, strict=True)))


def is_schur_stable(p: Sequence[Fraction]) -> bool:
    """True when every root of ``p`` lies strictly inside the unit circle (Schur-Cohn/Jury, exact).

    The step-down recursion ``p -> (p - k p*) / z`` with reflection
    coefficient ``k = p(0) / lead`` keeps a Schur-stable polynomial stable
    exactly when ``|k| < 1`` at every step (Jury 1964, ch. 3).  Above degree
    4 the recursion runs first in interval arithmetic (mpmath's ``iv``,
    rigorous enclosures); it is done in exact rational arithmetic up to degree
    4, and whenever an enclosure of some ``|k|`` contains 1 (a root on or
    within rounding of the circle).

    Parameters
    ----------
    p : sequence of Fraction
        The polynomial's coefficients, descending powers of ``z``.

    Returns
    -------
    bool
        True when every root has ``|z| < 1``; False when one is on or outside
        the unit circle.

    Raises
    ------
    ValueError
        If ``p`` is the zero polynomial.

    Examples
    --------
    >>> is_schur_stable(fractions_of([1, -1.9, 0.9]))   # 1.9 and 0.9 as floats: pole at 1 - 1.1e-15
    True
    >>> is_schur_stable(fractions_of([1, -1.5, 0.5]))   # pole exactly at 1
    False
    """
    c = _strip(p)
    if not c:
        raise ValueError("the zero polynomial has no roots to test")
    if len(c) <= 2:
        return len(c) == 1 or abs(c[1]) < abs(c[0])
    if len(c) > 5:  # above degree 4 rational sizes grow: intervals first
        decided = _schur_by_intervals(c)
        if decided is not None:
            return decided
    work = list(c)
    while len(work) > 1:
        n = len(work) - 1
        k = work[-1] / work[0]
        if abs(k) >= 1:
            return False
        work = [work[i] - k * work[n - i] for i in range(n)]
    return True


def stability(den: Sequence[Fraction]) -> Verdict:
    """``'stable'``, ``'marginal'`` or ``'unstable'`` for a denominator (exact, see :func:`unit_circle_counts`).

    Parameters
    ----------
    den : sequence of Fraction
        The denominator ``a`` (coefficients of ``z^0, z^-1, ...``).

    Returns
    -------
    {"stable", "marginal", "unstable"}
        ``stable``: every pole strictly inside the unit circle; ``marginal``:
        poles on the circle are simple and none is outside; ``unstable``
        otherwise.

    Examples
    --------
    >>> stability(fractions_of([1, -1])), stability(fractions_of([1, -2, 1])), stability(fractions_of([1, -0.5]))
    ('marginal', 'unstable', 'stable')
    """
    poly = _strip(den)
    if len(poly) <= 1:
        return "stable"
    if is_schur_stable(poly):
        return "stable"
    return unit_circle_counts(poly).verdict


# ----------------------------------------------------------------------------- gains, delays, noise gain


def value_at_one(num: Sequence[Fraction], den: Sequence[Fraction]) -> Fraction | None:
    """``H(1) = sum(b) / sum(a)`` exactly; None when ``sum(a) == 0`` (a pole at ``z = 1``).

    Parameters
    ----------
    num, den : sequence of Fraction
        ``b`` and ``a``: the coefficients of ``z^0, z^-1, ...`` of the
        numerator and denominator (exact rationals, see :func:`fractions_of`).

    Returns
    -------
    Fraction or None
        ``H(1)``, the DC gain.

    Examples
    --------
    >>> value_at_one(fractions_of([0.5]), fractions_of([1, -0.5]))
    Fraction(1, 1)
    """
    a = sum(den, _ZERO)
    if a == 0:
        return None
    return sum(num, _ZERO) / a


def value_at_minus_one(num: Sequence[Fraction], den: Sequence[Fraction]) -> Fraction | None:
    """``H(-1) = sum (-1)^k b_k / sum (-1)^k a_k`` exactly; None at a pole at ``z = -1``.

    Parameters
    ----------
    num, den : sequence of Fraction
        ``b`` and ``a``: the coefficients of ``z^0, z^-1, ...`` of the
        numerator and denominator (exact rationals, see :func:`fractions_of`).

    Returns
    -------
    Fraction or None
        ``H(-1)``, the gain at the Nyquist frequency (0.5 cycles/step).

    Examples
    --------
    >>> value_at_minus_one(fractions_of([0.5, 0.5]), fractions_of([1]))
    Fraction(0, 1)
    """
    a = sum((c if k % 2 == 0 else -c for k, c in enumerate(den)), _ZERO)
    if a == 0:
        return None
    return sum((c if k % 2 == 0 else -c for k, c in enumerate(num)), _ZERO) / a


def mean_delay(num: Sequence[Fraction], den: Sequence[Fraction]) -> Fraction | None:
    """``sum n h[n] / sum h[n] = sum k b_k / sum b_k - sum k a_k / sum a_k`` exactly (the group delay at DC).

    None when ``H(1)`` is zero or infinite.

    Parameters
    ----------
    num, den : sequence of Fraction
        ``b`` and ``a``: the coefficients of ``z^0, z^-1, ...`` of the
        numerator and denominator (exact rationals, see :func:`fractions_of`).

    Returns
    -------
    Fraction or None
        The mean delay in steps; None when ``H(1)`` is zero or infinite.

    Examples
    --------
    >>> mean_delay(fractions_of([0.5]), fractions_of([1, -0.5]))   # beta / (1 - beta)
    Fraction(1, 1)
    """
    sb, sa = sum(num, _ZERO), sum(den, _ZERO)
    if sb == 0 or sa == 0:
        return None
    kb = sum((k * c for k, c in enumerate(num)), _ZERO)
    ka = sum((k * c for k, c in enumerate(den)), _ZERO)
    return kb / sb - ka / sa


def _astrom(num: Sequence[Any], den: Sequence[Any], below_one: Any) -> Any:
    """Astrom's recursion on any number type; None when a reflection coefficient is not below 1 in magnitude."""
    n = max(len(num), len(den)) - 1
    zero = den[0] * 0
    a = list(den) + [zero] * (n + 1 - len(den))
    b = list(num) + [zero] * (n + 1 - len(num))
    a0 = a[0]
    total = zero
    for k in range(n, 0, -1):
        alpha = a[k] / a[0]
        check = below_one(alpha)
        if check is not True:
            return check
        beta = b[k] / a[0]
        total += a[0] * beta * beta
        a, b = (
            [a[i] - alpha * a[k - i] for i in range(k)],
            [b[i] - beta * a[k - i] for i in range(k)],
        )
    beta0 = b[0] / a[0]
    total += a[0] * beta0 * beta0
    return total / a0


def noise_gain(num: Sequence[Fraction], den: Sequence[Fraction]) -> Fraction | float | None:
    """White-noise power gain ``sum h[n]^2`` of ``H = B(z^-1) / A(z^-1)`` (Astrom's recursion).

    ``I = (1 / 2 pi i) oint B(z) B(1/z) / (A(z) A(1/z)) dz / z`` by the
    step-down table of ``A`` (Astrom 1970, ch. 5.6): with ``A^n = A``,
    ``B^n = B`` padded to degree ``n``, each step ``alpha_k = a^k_k / a^k_0``,
    ``beta_k = b^k_k / a^k_0``, ``a^{k-1}_i = a^k_i - alpha_k a^k_{k-i}``,
    ``b^{k-1}_i = b^k_i - beta_k a^k_{k-i}``, and
    ``I = sum_k a^k_0 beta_k^2 / a_0``.

    Degrees up to 4 run in exact rational arithmetic (a Fraction); higher
    degrees in interval arithmetic from the exact coefficients (rigorous
    enclosures), returning the enclosure's midpoint as a double once it is
    narrower than ``2^-60`` relative, i.e. the value to within one unit in the
    last place (exact arithmetic again if no precision tried gets there).

    Parameters
    ----------
    num, den : sequence of Fraction
        ``b`` and ``a``: the coefficients of ``z^0, z^-1, ...`` of the
        numerator and denominator (exact rationals, see :func:`fractions_of`).

    Returns
    -------
    Fraction, float or None
        None unless every root of ``A`` is strictly inside the unit circle.

    Raises
    ------
    ValueError
        If ``den`` is empty or its leading coefficient ``a_0`` is zero.

    Examples
    --------
    >>> noise_gain(fractions_of([0.5]), fractions_of([1, -0.5]))   # (1 - beta) / (1 + beta)
    Fraction(1, 3)
    """
    if not den or den[0] == 0:
        raise ValueError("the denominator's leading coefficient must be non-zero")
    degree = max(len(num), len(den)) - 1
    if degree > 4:
        for prec in _INTERVAL_PRECISIONS:
            ctx = _interval_context(prec)
            value = _astrom(_enclose(ctx, num), _enclose(ctx, den), lambda x: abs(x) < 1)
            if value is False:
                return None
            if value is None:
                continue  # a reflection coefficient within rounding of 1 at this precision
            lo, hi = float(value.a), float(value.b)
            if math.isfinite(lo) and math.isfinite(hi) and (hi - lo) <= 2.0**-60 * max(abs(lo), abs(hi)):
                return float(value.mid)
    exact_value = _astrom(list(num), list(den), lambda x: abs(x) < 1 or None)
    return exact_value if isinstance(exact_value, Fraction) else None
