"""The factored form of a filter: roots to double precision, multiplicities, and per-factor analysis.

A filter ``H(z) = gain * z^-delay * prod_i (1 - z_i / z) / prod_j (1 - p_j / z)``
is analysed through its factors, never through multiplied-out high-order
polynomials in floating point, whose roots and sums are ill-conditioned at
high order, low cutoff or repeated roots:

* :func:`roots` factors an exact rational polynomial (a user's ``b`` or
  ``a``: floats are exact dyadic rationals) once: Yun's square-free
  decomposition in exact arithmetic gives every multiplicity, each
  square-free part is solved in closed form (degree <= 2) or by Aberth-Ehrlich
  iterations in high-precision arithmetic (mpmath, 160 bits and up, raised
  until the roots are separated), and the roots are rounded to the nearest
  doubles.  :class:`RootSet` says how they were found and how accurate they
  are, and lists clusters of distinct roots (a multiple root split by the
  rounding of the coefficients).
* :func:`response`, :func:`phase` and :func:`group_delay` evaluate on the
  unit circle factor by factor: the phase is the sum of per-factor angles,
  continuous by construction and anchored at DC; the group delay of a factor
  whose root lies on the unit circle is its limit, ``1/2`` step.
* :func:`cancel` pairs coinciding poles and zeros (minimal realisation).

References: O. Aberth, Iteration methods for finding all zeros of a
polynomial simultaneously, Math. Comp. 27 (1973); D. Y. Y. Yun, On
square-free decomposition algorithms, SYMSAC (1976); A. V. Oppenheim and
R. W. Schafer, *Discrete-Time Signal Processing* (3rd ed.), sec. 5.1-5.3
(phase and group delay of first-order factors).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .exact import Poly, poly_mul, square_free_decomposition

__all__ = [
    "Cancellation",
    "Factorisation",
    "RootSet",
    "cancel",
    "canonical_roots",
    "exact_polynomial",
    "given_roots",
    "group_delay",
    "join_roots",
    "phase",
    "response",
    "roots",
    "unit_circle",
]

FloatArray = NDArray[np.float64]
ComplexArray = NDArray[np.complex128]

#: Roots within this of the unit circle (relative to double precision) are on it for the limits of phase/delay.
_ON_CIRCLE = 4.0 * np.finfo(np.float64).eps


# ----------------------------------------------------------------------------- roots


@dataclass(frozen=True)
class RootSet:
    """The roots of a polynomial and how well they are known.

    Attributes
    ----------
    values : ndarray of complex
        Every root, repeated by multiplicity; conjugate pairs are exact
        conjugates, real roots have a zero imaginary part.
    multiplicities : ndarray of int
        The exact multiplicity of each entry's value (from the square-free
        decomposition); 1 for a simple root.
    method : str
        ``"given"`` (supplied as roots: exact by definition), ``"exact"``
        (rational roots, exactly representable), ``"closed form"`` (degree
        <= 2 parts: a few units in the last place) or ``"high precision"``
        (Aberth-Ehrlich at ``precision`` bits, rounded: within one unit in
        the last place).
    error_bound : float
        Bound on ``|computed - true| / max(1, |true|)`` over the roots.
    precision : int
        Working precision in bits of the high-precision solve (53 otherwise).
    clusters : tuple of (complex, int, float)
        ``(centre, count, spread)`` of groups of ``k`` distinct roots within
        ``2 eps^(1/k)`` (relative) of their centre: the signature of a
        ``k``-fold root split by the rounding of the coefficients.  Each
        member is the exact root of the coefficients as given, to double
        precision, but moves by about the spread if they change in the last
        place.

    Examples
    --------
    >>> from optfilters.exact import fractions_of
    >>> r = roots(fractions_of([1, -2, 1]))
    >>> r.values.real.tolist(), r.multiplicities.tolist(), r.method
    ([1.0, 1.0], [2, 2], 'exact')
    """

    values: ComplexArray
    multiplicities: NDArray[np.int64]
    method: str = "given"
    error_bound: float = 0.0
    precision: int = 53
    clusters: tuple[tuple[complex, int, float], ...] = field(default=())

    @property
    def exact(self) -> bool:
        """True when the roots are exactly the truth (given, or exact rationals)."""
        return self.error_bound == 0.0

    def describe(self) -> str:
        """One line: how the roots were found, their accuracy and any clusters.

        Returns
        -------
        str
            E.g. ``"exact"``, ``"given"`` or the method and the certified error bound.

        Examples
        --------
        >>> from optfilters.exact import fractions_of
        >>> roots(fractions_of([1, -0.5])).describe()
        'exact'
        """
        text = self.method
        if self.method == "high precision":
            text += f" ({self.precision}-bit Aberth-Ehrlich, rounded to double)"
        elif not self.exact:
            text += f" (relative error <= {self.error_bound:.1g})"
        for centre, count, spread in self.clusters:
            text += (
                f"; {count} distinct roots within {spread:.2g} of {_fmt_root(centre)}"
                " (a multiple root split by rounding? they move with the coefficients' last digits)"
            )
        return text


def _fmt_root(r: complex) -> str:
    if r.imag == 0.0:
        return f"{r.real:.6g}"
    return f"{r.real:.6g}{'+' if r.imag >= 0 else '-'}{abs(r.imag):.6g}j"


def canonical_roots(values: ArrayLike, what: str = "roots") -> ComplexArray:
    """Roots of a real polynomial with exact conjugate pairs and exactly real singletons.

    Each root with a positive imaginary part is paired with the nearest root
    with a negative one; the pair becomes ``r, conj(r)`` with ``r`` their
    mean (unchanged when they were exact conjugates).  A root with a
    negligible imaginary part (``1e-12`` relative) and no partner is real.

    Parameters
    ----------
    values : array_like of complex
        The roots.
    what : str, optional
        Their name in the error message (``"zeros"``, ``"poles"``).

    Returns
    -------
    ndarray of complex
        The roots, canonical, in the input's order (pairs adjacent).

    Raises
    ------
    ValueError
        If complex roots do not come in conjugate pairs (to ``1e-9`` relative).

    Examples
    --------
    >>> canonical_roots([0.5 + 0.5j, 0.5 - 0.5j, 2.0 + 1e-17j]).tolist()
    [(0.5+0.5j), (0.5-0.5j), (2+0j)]
    """
    z = np.array(np.atleast_1d(np.asarray(values, dtype=np.complex128)), copy=True)
    scale = np.maximum(1.0, np.abs(z))
    upper = [i for i in range(z.size) if z[i].imag > 0.0]
    lower = [i for i in range(z.size) if z[i].imag < 0.0]
    paired: set[int] = set()
    for i in sorted(upper, key=lambda k: -z[k].imag):
        best, distance = -1, math.inf
        for j in lower:
            if j not in paired:
                d = abs(z[i] - np.conj(z[j]))
                if d < distance:
                    best, distance = j, d
        if best >= 0 and distance <= 1e-9 * scale[i]:
            paired.update((i, best))
            mean = 0.5 * (z[i] + np.conj(z[best]))
            z[i], z[best] = mean, np.conj(mean)
    for i in range(z.size):
        if i in paired or z[i].imag == 0.0:
            continue
        if abs(z[i].imag) > 1e-12 * scale[i]:
            raise ValueError(f"complex {what} must come in conjugate pairs, got {z.tolist()}")
        z[i] = complex(z[i].real, 0.0)
    return z


def _float(x: Fraction) -> float:
    """``float(x)``, infinite beyond the double range instead of raising."""
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


def _sqrt(x: Fraction) -> float:
    """``sqrt(x)`` of a positive Fraction, correctly rounded input when it fits a double."""
    f = _float(x)
    if 0.0 < f < math.inf:
        return math.sqrt(f)
    try:
        return math.exp(0.5 * (math.log(x.numerator) - math.log(x.denominator)))
    except OverflowError:
        return math.inf


def _quadratic_roots(p: Poly) -> tuple[list[complex], bool]:
    """Roots of ``c0 z^2 + c1 z + c2`` from the exact discriminant (a few ulps each); exact flag."""
    c0, c1, c2 = p
    disc = c1 * c1 - 4 * c0 * c2
    if disc == 0:
        r = -c1 / (2 * c0)
        return [complex(_float(r)), complex(_float(r))], _float(r) == r
    if disc < 0:
        re = _float(-c1 / (2 * c0))
        im = _sqrt(-disc) / abs(2.0 * _float(c0))
        return [complex(re, im), complex(re, -im)], False
    s = _sqrt(disc)
    f0, f1, f2 = _float(c0), _float(c1), _float(c2)
    if f1 == 0.0:
        r1 = s / (2.0 * f0)
        return [complex(r1), complex(-r1)], False
    q = -0.5 * (f1 + math.copysign(s, f1))
    r1, r2 = q / f0, f2 / q
    exact = False
    # Rational roots (a perfect-square discriminant) are exact when representable.
    root = _exact_sqrt(disc)
    if root is not None:
        e1, e2 = (-c1 + root) / (2 * c0), (-c1 - root) / (2 * c0)
        r1, r2 = _float(e1), _float(e2)
        exact = r1 == e1 and r2 == e2
    return [complex(r1), complex(r2)], exact


def _exact_sqrt(x: Fraction) -> Fraction | None:
    n, d = x.numerator, x.denominator
    rn, rd = math.isqrt(n), math.isqrt(d)
    if rn * rn == n and rd * rd == d:
        return Fraction(rn, rd)
    return None


def _horner(coefficients: Sequence[Any], z: Any) -> Any:
    """``sum c_k z^(n-k)`` by Horner's rule, in the arithmetic of ``coefficients`` and ``z`` (mpmath here)."""
    value = coefficients[0]
    for c in coefficients[1:]:
        value = value * z + c
    return value


def _certified(ctx: Any, coefficients: list[Any], z: list[Any], target: float) -> bool:
    """True when every root lies within ``target * max(1, |z_i|)`` of its approximation ``z_i``.

    Inclusion theorem (Carstensen 1991; Braess and Hadeler 1973): the disks
    ``|z - z_i| <= n |W_i|`` with Weierstrass corrections
    ``W_i = p(z_i) / (a0 prod_{j != i} (z_i - z_j))`` contain every root, and a
    connected component of ``m`` disks contains exactly ``m`` roots.  A
    component no wider than ``target`` therefore pins its roots to within
    ``target`` of each member (a cluster that tight rounds to neighbouring
    doubles).
    """
    n = len(z)
    radii = []
    for i, zi in enumerate(z):
        value = _horner(coefficients, zi)
        product = coefficients[0]
        for j, zj in enumerate(z):
            if j != i:
                product *= zi - zj
        if product == 0:
            return False
        radii.append(n * abs(value / product))
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            if abs(z[i] - z[j]) <= radii[i] + radii[j]:
                parent[find(i)] = find(j)
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(find(i), []).append(i)
    for group in members.values():
        width = max(radii[i] for i in group) * 2 + max(abs(z[i] - z[j]) for i in group for j in group)
        scale = max(ctx.mpf(1), min(abs(z[i]) for i in group))
        if width > target * scale:
            return False
    return True


def _aberth(p: Poly) -> tuple[list[complex], int]:
    """Roots of a square-free polynomial of degree >= 3 in high precision, certified, rounded to doubles.

    Aberth-Ehrlich iterations at 160 bits and up from the companion-matrix
    eigenvalues of the rounded coefficients; each result is accepted only when
    the inclusion test (:func:`_certified`) pins every root to a quarter of a
    double's unit in the last place.  Should the iterations settle on a
    configuration the test rejects (a tight cluster approached symmetrically),
    mpmath's Durand-Kerner ``polyroots`` is tried at rising precision under
    the same test.
    """
    import mpmath

    degree = len(p) - 1
    target = 2.0**-62
    scale = max(abs(_float(c)) for c in p) or 1.0
    with np.errstate(all="ignore"):
        try:
            start = np.roots([_float(c) / scale for c in p]) if math.isfinite(scale) else np.array([])
        except np.linalg.LinAlgError:
            start = np.array([])
    if start.size != degree or not np.all(np.isfinite(start)):
        radius = min(1e300, max(1.0, max(abs(_float(c / p[0])) for c in p[1:]) ** (1.0 / degree)))
        start = radius * np.exp(2j * np.pi * (np.arange(degree) + 0.25) / degree)
    # Separate exactly coinciding starting points (clusters round to equal doubles).
    start = start + 1e-10 * np.maximum(1.0, np.abs(start)) * np.exp(1j * (np.arange(degree) + 0.5))
    values: list[complex] = [complex(s) for s in start]
    for prec in (160, 320, 640):
        ctx = mpmath.mp.clone()
        ctx.prec = prec
        coefficients = [ctx.mpf(c.numerator) / c.denominator for c in p]
        derivative = [c * (degree - i) for i, c in enumerate(coefficients[:-1])]
        z = [ctx.mpc(v.real, v.imag) for v in values]
        tolerance = ctx.mpf(2) ** (-(prec // 2))
        for _iteration in range(200):
            worst = ctx.mpf(0)
            new = []
            for i, zi in enumerate(z):
                value = _horner(coefficients, zi)
                slope = _horner(derivative, zi)
                if value == 0 or slope == 0:
                    new.append(zi)
                    continue
                ratio = value / slope
                repulsion = ctx.fsum(1 / (zi - zj) for j, zj in enumerate(z) if j != i and zi != zj)
                step = ratio / (1 - ratio * repulsion)
                new.append(zi - step)
                worst = max(worst, abs(step) / max(ctx.mpf(1), abs(zi)))
            z = new
            if worst <= tolerance:
                break
        if _certified(ctx, coefficients, z, target):
            return _rounded(ctx, z, tolerance), prec
        values = [complex(float(v.real), float(v.imag)) for v in z]
    for dps in (40, 80, 160, 320):
        ctx = mpmath.mp.clone()
        ctx.dps = dps
        coefficients = [ctx.mpf(c.numerator) / c.denominator for c in p]
        try:
            z = list(ctx.polyroots(coefficients, maxsteps=400, extraprec=4 * ctx.prec))
        except ctx.NoConvergence:
            continue
        if _certified(ctx, coefficients, z, target):
            return _rounded(ctx, z, ctx.mpf(2) ** (-(ctx.prec // 2))), ctx.prec
    raise ArithmeticError(f"polynomial roots could not be certified (degree {degree})")


def _rounded(ctx: Any, z: list[Any], tolerance: Any) -> list[complex]:
    """Nearest doubles; imaginary parts below the working tolerance are zero (real roots)."""
    return [
        complex(float(v.real), 0.0 if abs(v.imag) <= tolerance * max(ctx.mpf(1), abs(v)) else float(v.imag)) for v in z
    ]


def _clusters(values: ComplexArray) -> tuple[tuple[complex, int, float], ...]:
    """Groups of ``k`` distinct roots within ``2 eps^(1/k)`` of their centre (relative).

    Rounding a polynomial's coefficients splits a ``k``-fold root into ``k``
    roots about ``eps^(1/k)`` apart; such a group is reported so that a user
    knows those roots are the exact roots of the coefficients as entered, but
    move a lot with them.  Larger groups are looked for first.
    """
    eps = float(np.finfo(np.float64).eps)
    remaining: list[complex] = []
    for v in values:
        if not any(v == d for d in remaining):
            remaining.append(complex(v))
    out = []
    for k in range(len(remaining), 1, -1):
        threshold = 4.0 * eps ** (1.0 / k)
        found = True
        while found and len(remaining) >= k:
            found = False
            for seed in remaining:
                near = [u for u in remaining if abs(u - seed) <= threshold * max(1.0, abs(seed))]
                if len(near) != k:
                    continue
                centre = complex(np.mean(near))
                spread = max(abs(u - centre) for u in near)
                if spread <= 2.0 * eps ** (1.0 / k) * max(1.0, abs(centre)):
                    out.append((centre, k, spread))
                    remaining = [u for u in remaining if u not in near]
                    found = True
                    break
    return tuple(out)


@lru_cache(maxsize=512)
def roots(poly: Poly) -> RootSet:
    """All roots of an exact polynomial (descending powers of ``z``), with multiplicities.

    Parameters
    ----------
    poly : tuple of Fraction
        Coefficients ``c0 z^n + ... + cn`` (a filter's ``b`` or ``a`` in
        powers of ``z^-1``, leading zeros removed); exact rationals, e.g.
        :func:`optfilters.exact.fractions_of` of floats.

    Returns
    -------
    RootSet

    Examples
    --------
    >>> from optfilters.exact import fractions_of
    >>> a = fractions_of([1, -3.9996, 5.998800060000001, -3.9988001199960004, 0.9996000599960002])
    >>> r = roots(a)   # four EMA(0.9999) in series, entered expanded: the rounding splits the pole
    >>> round(float(max(abs(r.values))), 7), r.method
    (0.9999963, 'high precision')
    """
    p = tuple(poly)
    while p and p[0] == 0:
        p = p[1:]
    degree = len(p) - 1
    if degree <= 0:
        return RootSet(np.zeros(0, dtype=np.complex128), np.zeros(0, dtype=np.int64), "exact")
    values: list[complex] = []
    multiplicity: list[int] = []
    exact = True
    polished = False
    precision = 53
    origin = 0
    while p[-1] == 0:  # roots at the origin
        p = p[:-1]
        origin += 1
    values += [0j] * origin
    multiplicity += [origin] * origin
    for factor, m in square_free_decomposition(p) if len(p) > 1 else []:
        d = len(factor) - 1
        part: list[complex]
        if d == 1:
            rational = -factor[1] / factor[0]
            part = [complex(_float(rational))]
            exact = exact and _float(rational) == rational
        elif d == 2:
            part, part_exact = _quadratic_roots(factor)
            exact = exact and part_exact
        else:
            part, bits = _aberth(factor)
            exact, polished, precision = False, True, max(precision, bits)
        for r in part:
            values += [r] * m
            multiplicity += [m] * m
    array = canonical_roots(np.array(values, dtype=np.complex128)) if values else np.zeros(0, dtype=np.complex128)
    if exact:
        method, bound = "exact", 0.0
    elif polished:
        method, bound = "high precision", float(np.finfo(np.float64).eps)
    else:
        method, bound = "closed form", 8.0 * float(np.finfo(np.float64).eps)
    return RootSet(array, np.array(multiplicity, dtype=np.int64), method, bound, precision, _clusters(array))


def given_roots(values: ArrayLike, what: str = "roots") -> RootSet:
    """A :class:`RootSet` of roots supplied as such (exact by definition), multiplicities by equality.

    Parameters
    ----------
    values : array_like of complex
        The roots (made canonical with :func:`canonical_roots`).
    what : str, optional
        Their name in error messages.

    Returns
    -------
    RootSet
        Method ``"given"``, error bound 0.

    Raises
    ------
    ValueError
        From :func:`canonical_roots`, when complex roots are not in conjugate pairs.

    Examples
    --------
    >>> given_roots([-1.0, -1.0, 0.5]).multiplicities.tolist()
    [2, 2, 1]
    """
    array = canonical_roots(values, what)
    counts = np.array([int(np.sum(array == v)) for v in array], dtype=np.int64)
    return RootSet(array, counts, "given", 0.0, 53, _clusters(array))


def exact_polynomial(values: ArrayLike) -> Poly:
    """``prod (z - r)`` expanded exactly from roots (conjugate pairs as real quadratics).

    The roots must be canonical (:func:`canonical_roots`): exact conjugate
    pairs and exactly real singletons.

    Parameters
    ----------
    values : array_like of complex
        Canonical roots.

    Returns
    -------
    tuple of Fraction
        The monic polynomial's coefficients, descending powers of ``z``
        (each root's float value taken exactly).

    Examples
    --------
    >>> [str(c) for c in exact_polynomial([0.5 + 0.5j, 0.5 - 0.5j])]
    ['1', '-1', '1/2']
    """
    out: Poly = (Fraction(1),)
    for r in np.asarray(values, dtype=np.complex128):
        if r.imag == 0.0:
            out = poly_mul(out, (Fraction(1), -Fraction(float(r.real))))
        elif r.imag > 0.0:
            re, im = Fraction(float(r.real)), Fraction(float(r.imag))
            out = poly_mul(out, (Fraction(1), -2 * re, re * re + im * im))
    return out


def join_roots(*sets: RootSet) -> RootSet:
    """The union of root sets (a cascade): multiplicities by exact equality, the worst accuracy.

    Parameters
    ----------
    *sets : RootSet
        The root sets of the factors.

    Returns
    -------
    RootSet
        All roots; the least accurate method, the largest error bound and the
        highest working precision of the sets (an empty union is ``"given"``).

    Examples
    --------
    >>> join_roots(given_roots([0.999]), given_roots([0.999])).multiplicities.tolist()
    [2, 2]
    """
    values = (np.concatenate([s.values for s in sets]) if sets else np.zeros(0, dtype=np.complex128)).astype(
        np.complex128
    )
    counts = np.array([int(np.sum(values == v)) for v in values], dtype=np.int64)
    order = {"given": 0, "exact": 1, "closed form": 2, "high precision": 3}
    worst = max(sets, key=lambda s: (order.get(s.method, 4), s.error_bound), default=None)
    method = worst.method if worst is not None else "given"
    bound = max((s.error_bound for s in sets), default=0.0)
    precision = max((s.precision for s in sets), default=53)
    return RootSet(values, counts, method, bound, precision, _clusters(values))


def subset_roots(rootset: RootSet, values: ComplexArray) -> RootSet:
    """The same accuracy record for a subset of the roots (after a cancellation).

    Examples
    --------
    >>> subset_roots(given_roots([0.5, 0.5, 0.9]), [0.5, 0.9]).multiplicities.tolist()
    [1, 1]
    """
    array = np.asarray(values, dtype=np.complex128).reshape(-1)
    counts = np.array([int(np.sum(array == v)) for v in array], dtype=np.int64)
    return RootSet(array, counts, rootset.method, rootset.error_bound, rootset.precision, _clusters(array))


@dataclass(frozen=True)
class Factorisation:
    """``H(z) = gain * z^-delay * prod_i (1 - z_i / z) / prod_j (1 - p_j / z)``: the factored form of a filter.

    Roots at the origin are not listed (they are part of ``delay``).

    Attributes
    ----------
    zeros, poles : RootSet
        Zeros and poles away from the origin, with multiplicities and accuracy.
    gain : float
        The first non-zero numerator coefficient (``a[0] == 1``).
    delay : int
        Net delay in steps (leading zero coefficients of ``b``).

    Examples
    --------
    >>> f = Factorisation(given_roots([-1.0]), given_roots([0.5]), 0.25, 0)
    >>> abs(f.response([0.0, 0.5])).round(12).tolist()
    [1.0, 0.0]
    """

    zeros: RootSet
    poles: RootSet
    gain: float
    delay: int = 0

    def response(self, freqs: ArrayLike) -> NDArray[np.complex128]:
        """``H(exp(2j pi f))`` (see :func:`response`).

        Parameters
        ----------
        freqs : array_like
            Frequencies in cycles/step (0.5 is Nyquist).

        Returns
        -------
        ndarray of complex
            ``H``, the shape of ``freqs``.
        """
        return response(self.zeros.values, self.poles.values, self.gain, self.delay, freqs)

    def phase(self, freqs: ArrayLike) -> FloatArray:
        """Continuous phase in radians anchored at DC (see :func:`phase`).

        Parameters
        ----------
        freqs : array_like
            Frequencies in cycles/step (0.5 is Nyquist).

        Returns
        -------
        ndarray
            The phase in radians, the shape of ``freqs``.
        """
        return phase(self.zeros.values, self.poles.values, self.gain, self.delay, freqs)

    def group_delay(self, freqs: ArrayLike) -> FloatArray:
        """Group delay in steps with the limits at unit-circle roots (see :func:`group_delay`).

        Parameters
        ----------
        freqs : array_like
            Frequencies in cycles/step (0.5 is Nyquist).

        Returns
        -------
        ndarray
            The group delay in steps, the shape of ``freqs``.
        """
        return group_delay(self.zeros.values, self.poles.values, self.delay, freqs)

    def value_at(self, point: complex) -> complex:
        """``H(point)`` from the factors: ``inf``/``nan`` at a pole, exactly 0 at a zero.

        Parameters
        ----------
        point : complex
            A point ``z`` of the complex plane.

        Returns
        -------
        complex
            ``H(z)``: ``inf`` at a pole (``nan`` where a pole and a zero meet).

        Examples
        --------
        >>> Factorisation(given_roots([]), given_roots([0.9]), 0.1, 0).value_at(1.0)
        (1.0000000000000002+0j)
        """
        z = complex(point)
        value = complex(self.gain) * z ** (-self.delay)
        for k in range(max(self.zeros.values.size, self.poles.values.size)):
            if k < self.zeros.values.size:
                value *= 1.0 - complex(self.zeros.values[k]) / z
            if k < self.poles.values.size:
                den = 1.0 - complex(self.poles.values[k]) / z
                if den == 0:
                    return complex(math.inf) if value != 0 else complex(math.nan)
                value /= den
        return value

    def describe(self) -> str:
        """How the zeros and poles are known (one line each).

        Returns
        -------
        str
            ``"zeros: ...; poles: ..."`` (:meth:`RootSet.describe` of each).

        Examples
        --------
        >>> print(Factorisation(given_roots([]), given_roots([0.9]), 0.1, 0).describe())
        zeros: given; poles: given
        """
        return f"zeros: {self.zeros.describe()}; poles: {self.poles.describe()}"


# ----------------------------------------------------------------------------- on the unit circle


def unit_circle(freqs: ArrayLike) -> NDArray[np.complex128]:
    """``exp(2j pi f)``, exact at multiples of a quarter cycle (``z = 1, j, -1, -j``).

    ``numpy.exp(1j * pi)`` is ``-1 + 1.2e-16j``; a zero at ``z = -1`` evaluated
    there would leave ``1e-16`` per factor instead of an exact 0.

    Parameters
    ----------
    freqs : array_like
        Frequencies in cycles/step.

    Returns
    -------
    ndarray of complex
        ``z`` on the unit circle, the shape of ``freqs``.

    Examples
    --------
    >>> unit_circle([0.0, 0.25, 0.5, 0.75]).tolist()
    [(1+0j), 1j, (-1+0j), -1j]
    """
    f = np.atleast_1d(np.asarray(freqs, dtype=np.float64))
    z = np.exp(2j * np.pi * f)
    quarters = 4.0 * f
    exact = np.isfinite(quarters) & (quarters == np.round(quarters))
    if np.any(exact):
        k = np.mod(np.round(quarters[exact]).astype(np.int64), 4)
        z[exact] = np.array([complex(1, 0), complex(0, 1), complex(-1, 0), complex(0, -1)])[k]
    return np.asarray(z, dtype=np.complex128)


def _on_circle(r: complex) -> bool:
    return abs(abs(r) - 1.0) <= _ON_CIRCLE


def response(
    zeros: ComplexArray, poles: ComplexArray, gain: float, delay: int, freqs: ArrayLike
) -> NDArray[np.complex128]:
    """``H(exp(2j pi f))`` factor by factor: ``gain z^-delay prod (1 - z_i/z) / prod (1 - p_j/z)``.

    Numerator and denominator factors are multiplied in alternation, so that
    high orders neither overflow nor underflow.

    Parameters
    ----------
    zeros, poles : ndarray of complex
        The roots in ``z`` (canonical: exact conjugate pairs).
    gain : float
        The real gain ``k``.
    delay : int
        The pure delay (steps).
    freqs : array_like
        Frequencies in cycles/step (0.5 is Nyquist).

    Returns
    -------
    ndarray of complex
        ``H``, the shape of ``freqs``.

    Examples
    --------
    >>> import numpy as np
    >>> abs(response(np.array([-1.0 + 0j]), np.array([], complex), 0.5, 0, [0.0, 0.5])).tolist()
    [1.0, 0.0]
    """
    f = np.atleast_1d(np.asarray(freqs, dtype=np.float64))
    zinv = unit_circle(-f)
    value = np.full(f.shape, complex(gain), dtype=np.complex128) * zinv**delay
    nz, npole = len(zeros), len(poles)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for k in range(max(nz, npole)):
            if k < nz:
                value = value * (1.0 - zeros[k] * zinv)
            if k < npole:
                value = value / (1.0 - poles[k] * zinv)
    return np.asarray(value, dtype=np.complex128)


def _factor_angle(r: complex, w: FloatArray) -> FloatArray:
    """Continuous angle of ``1 - r exp(-i w)`` on ``w`` in ``[0, pi]`` (limits at a root on the circle)."""
    if r == 0:
        return np.zeros_like(w)
    if _on_circle(r):
        theta = math.atan2(r.imag, r.real)
        # Limit of a root just inside: -pi/2 before the root's frequency, +pi/2 after (a +pi jump there).
        after = (w > theta) | ((w == theta) & (theta == 0.0))
        return (theta - w) / 2.0 + np.where(after, np.pi / 2.0, -np.pi / 2.0)
    if abs(r) < 1.0:
        return np.angle(1.0 - r * np.exp(-1j * w))
    # 1 - r e^{-iw} = -r e^{-iw} (1 - e^{iw} / r): the last factor stays in the right half-plane.
    return math.atan2(-r.imag, -r.real) - w + np.angle(1.0 - np.exp(1j * w) / r)


def phase(zeros: ComplexArray, poles: ComplexArray, gain: float, delay: int, freqs: ArrayLike) -> FloatArray:
    """Phase in radians, the sum of per-factor angles: continuous in frequency and anchored at DC.

    ``arg H = arg(gain) - delay w + sum_i arg(1 - z_i e^{-iw}) - sum_j arg(1 - p_j e^{-iw})``
    with each factor's angle continuous on ``[0, pi]`` (a factor with its root
    outside the circle is written ``-r e^{-iw} (1 - e^{iw}/r)``; a root on the
    circle contributes its one-sided limits, a jump of ``pi`` at its
    frequency).  The value at DC is the principal angle of ``H(1)`` (0 or
    ``pi``; from the right when ``H(1) = 0``).

    Parameters
    ----------
    zeros, poles : ndarray of complex
        The roots in ``z`` (canonical: exact conjugate pairs).
    gain : float
        The real gain ``k`` of ``H(z) = k z^-delay prod(1 - z_i/z) / prod(1 - p_j/z)``.
    delay : int
        The pure delay (steps).
    freqs : array_like
        Frequencies in cycles/step (0.5 is Nyquist).

    Returns
    -------
    ndarray
        The phase in radians, the shape of ``freqs`` (odd in ``f``).

    Examples
    --------
    >>> import numpy as np
    >>> ph = phase(np.array([], complex), np.array([0.9 + 0j]), 1.0, 0, [0.0, 0.25])
    >>> np.round(np.degrees(ph), 4).tolist()
    [0.0, -41.9872]
    """
    f = np.atleast_1d(np.asarray(freqs, dtype=np.float64))
    w = 2.0 * np.pi * np.abs(f)
    total = np.full(w.shape, math.pi if gain < 0 else 0.0) - delay * w
    for r in zeros:
        total = total + _factor_angle(complex(r), w)
    for r in poles:
        total = total - _factor_angle(complex(r), w)
    # Anchor: at DC the phase is that of the real H(1): 0 or pi (from the right at a root at z = 1).
    at_dc = math.pi if gain < 0 else 0.0
    for r in zeros:
        at_dc += float(_factor_angle(complex(r), np.zeros(1))[0])
    for r in poles:
        at_dc -= float(_factor_angle(complex(r), np.zeros(1))[0])
    at_one = [complex(r) for r in (*zeros, *poles) if r == 1]
    if at_one:
        anchor = math.remainder(at_dc, 2.0 * math.pi)
    else:
        sign = math.copysign(1.0, gain)
        for r in zeros:
            sign *= math.copysign(1.0, (1.0 - complex(r)).real) if complex(r).imag == 0 else 1.0
        for r in poles:
            sign *= math.copysign(1.0, (1.0 - complex(r)).real) if complex(r).imag == 0 else 1.0
        anchor = math.pi if sign < 0 else 0.0
    out = total + 2.0 * math.pi * round((anchor - at_dc) / (2.0 * math.pi))
    out = np.where(w == 0.0, anchor, out)
    return np.asarray(np.where(f < 0, -out, out), dtype=np.float64)


def group_delay(zeros: ComplexArray, poles: ComplexArray, delay: int, freqs: ArrayLike) -> FloatArray:
    """Group delay in steps, factor by factor: ``delay + sum_j Re(p_j/(z - p_j)) - sum_i Re(z_i/(z - z_i))``.

    A factor whose root lies on the unit circle has ``Re(r/(z - r)) = -1/2``
    at every other point of the circle; its limit at the root is used there,
    so a zero at ``z = -1`` adds half a step at Nyquist too.

    Parameters
    ----------
    zeros, poles : ndarray of complex
        The roots in ``z`` (canonical: exact conjugate pairs).
    delay : int
        The pure delay ``z^-delay`` (steps).
    freqs : array_like
        Frequencies in cycles/step (0.5 is Nyquist).

    Returns
    -------
    ndarray
        The group delay ``-d(arg H)/dw`` in steps, the shape of ``freqs``.

    Examples
    --------
    >>> import numpy as np
    >>> group_delay(np.array([-1.0 + 0j]), np.array([], complex), 0, [0.0, 0.5]).tolist()
    [0.5, 0.5]
    """
    f = np.atleast_1d(np.asarray(freqs, dtype=np.float64))
    z = unit_circle(f)
    total = np.full(f.shape, float(delay))
    with np.errstate(divide="ignore", invalid="ignore"):
        for r, sign in [(complex(r), 1.0) for r in poles] + [(complex(r), -1.0) for r in zeros]:
            if r == 0:
                continue
            if _on_circle(r):
                total = total - sign * 0.5
            else:
                total = total + sign * np.real(r / (z - r))
    return np.asarray(total, dtype=np.float64)


# ----------------------------------------------------------------------------- cancellation


@dataclass(frozen=True)
class Cancellation:
    """A pole and a zero that cancel (to a relative tolerance) in a minimal realisation.

    Attributes
    ----------
    pole, zero : complex
        The pair; for a complex pair only the upper half-plane member is listed.
    distance : float
        ``|pole - zero|``.
    count : int
        2 for a complex-conjugate pair cancelled together, else 1.

    Examples
    --------
    >>> Cancellation(0.5 + 0j, 0.5 + 0j, 0.0).describe()
    'pole-zero pair at z = 0.5 cancelled (exactly)'
    >>> Cancellation(1.0 + 0j, 1.0 + 0j, 0.0).describe()[45:]
    'the cancelled pole lies on the unit circle: the realisation as entered keeps a marginal mode'
    """

    pole: complex
    zero: complex
    distance: float
    count: int = 1

    def describe(self) -> str:
        """One line for reports.

        Returns
        -------
        str
            ``"pole-zero pair at z = ... cancelled (|p - z| = ...)"``.
        """
        how = "exactly" if self.distance == 0.0 else f"|p - z| = {self.distance:.2g}"
        where = _fmt_root(self.pole)
        pair = "conjugate pole-zero pairs" if self.count == 2 else "pole-zero pair"
        text = f"{pair} at z = {where}{' (and conjugate)' if self.count == 2 else ''} cancelled ({how})"
        if _on_circle(self.pole):
            text += "; the cancelled pole lies on the unit circle: the realisation as entered keeps a marginal mode"
        elif abs(self.pole) > 1.0:
            text += "; the cancelled pole lies outside the unit circle: the realisation as entered is unstable inside"
        return text


def cancel(
    zeros: ComplexArray, poles: ComplexArray, tol: float
) -> tuple[ComplexArray, ComplexArray, tuple[Cancellation, ...]]:
    """Remove pole-zero pairs with ``|p - z| <= tol * max(1, |p|)`` (closest pairs first).

    Real roots pair with real roots, complex ones with complex ones (each
    upper-half-plane pair with its conjugates), so that the remaining roots
    still belong to a real filter.

    Parameters
    ----------
    zeros, poles : ndarray of complex
        The roots in ``z``.
    tol : float
        Relative tolerance: a pair cancels when ``|p - z| <= tol * max(1, |p|)``.

    Returns
    -------
    zeros, poles : ndarray of complex
        What remains.
    cancelled : tuple of Cancellation

    Examples
    --------
    >>> import numpy as np
    >>> z, p, c = cancel(np.array([1.0 + 0j]), np.array([1.0 + 0j, 0.9 + 0j]), 1.5e-8)
    >>> z.tolist(), p.tolist(), len(c)
    ([], [(0.9+0j)], 1)
    """
    zs = [complex(v) for v in zeros]
    ps = [complex(v) for v in poles]
    candidates = []
    for i, p in enumerate(ps):
        if p.imag < 0.0:
            continue
        for j, z in enumerate(zs):
            if z.imag < 0.0 or (p.imag == 0.0) != (z.imag == 0.0):
                continue
            d = abs(p - z)
            if d <= tol * max(1.0, abs(p)):
                candidates.append((d, i, j))
    candidates.sort()
    gone_p: set[int] = set()
    gone_z: set[int] = set()
    out: list[Cancellation] = []
    for d, i, j in candidates:
        if i in gone_p or j in gone_z:
            continue
        p, z = ps[i], zs[j]
        if p.imag == 0.0:
            gone_p.add(i)
            gone_z.add(j)
            out.append(Cancellation(p, z, d, 1))
            continue
        # Complex: also remove the conjugates (exact conjugates by canonicalisation).
        ip = next((k for k, v in enumerate(ps) if k not in gone_p and k != i and v == p.conjugate()), None)
        jz = next((k for k, v in enumerate(zs) if k not in gone_z and k != j and v == z.conjugate()), None)
        if ip is None or jz is None:
            continue
        gone_p.update((i, ip))
        gone_z.update((j, jz))
        out.append(Cancellation(p, z, d, 2))
    keep_z = np.array([v for k, v in enumerate(zs) if k not in gone_z], dtype=np.complex128)
    keep_p = np.array([v for k, v in enumerate(ps) if k not in gone_p], dtype=np.complex128)
    return keep_z, keep_p, tuple(out)


def multiplicity_of(values: Sequence[complex]) -> list[tuple[complex, int]]:
    """Distinct values with their counts (exact equality), in first-seen order.

    Examples
    --------
    >>> multiplicity_of([1.0, 1.0, 0.5])
    [(1.0, 2), (0.5, 1)]
    """
    out: list[tuple[complex, int]] = []
    for v in values:
        for k, (u, n) in enumerate(out):
            if u == v:
                out[k] = (u, n + 1)
                break
        else:
            out.append((v, 1))
    return out
