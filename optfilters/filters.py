"""The linear filter value: ``H(z) = B(z^-1) / A(z^-1)``.

Every coefficient array in optfilters is in powers of ``z^-1`` (the order that
:func:`scipy.signal.lfilter` uses): ``b = [b0, b1, ...]`` means
``b0 + b1 z^-1 + ...``.  Frequencies are in cycles per step, 0 to 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import exact as _exact
from .errors import InvalidFilterError
from .factored import (
    Cancellation,
    Factorisation,
    RootSet,
    cancel,
    exact_polynomial,
    given_roots,
    join_roots,
    roots,
    subset_roots,
)
from .validation import MAX_COEFFICIENTS, MAX_STEPS, check_integer, check_number, null_reasons, saturating_float
from .validation import finite_or_none as _finite_or_none

__all__ = [
    "ArmaFilter",
    "Stability",
    "cascade",
    "parallel",
]

Stability = Literal["stable", "marginal", "unstable"]

#: Default relative tolerance of :meth:`ArmaFilter.minreal` (MATLAB's and python-control's ``sqrt(eps)``).
MINREAL_TOLERANCE = math.sqrt(float(np.finfo(np.float64).eps))

ExactPoly = _exact.Poly
ExactPair = tuple[ExactPoly, ExactPoly]

FloatArray = NDArray[np.float64]
ComplexArray = NDArray[np.complex128]


def _refuse_text_and_bools(values: Any, what: str) -> None:
    """Refuse text (``"12"`` read as 12) and booleans (``True`` read as 1), as hyperparameters are."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiuc":
        return
    try:
        items = np.ravel(np.asarray(values, dtype=object))
    except (TypeError, ValueError):
        return  # said by the float conversion
    for item in items:
        if isinstance(item, (str, bytes, bool, np.bool_, np.str_, np.bytes_)):
            raise InvalidFilterError(
                f"{what} must hold numbers, not text or booleans: got {type(item).__name__} {item!r} in {values!r}"
            )


def _as_coefficients(values: ArrayLike, what: str) -> FloatArray:
    _refuse_text_and_bools(values, what)
    try:
        array = np.atleast_1d(np.asarray(values, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise InvalidFilterError(f"{what} must be a sequence of real numbers, got {values!r}") from exc
    if array.ndim != 1:
        raise InvalidFilterError(f"{what} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise InvalidFilterError(f"{what} must not be empty")
    if not np.all(np.isfinite(array)):
        raise InvalidFilterError(f"{what} must contain finite numbers only, got {array.tolist()}")
    size = _trim_trailing_zeros(array).size
    if size > MAX_COEFFICIENTS:
        raise InvalidFilterError(
            f"{what} may have at most {MAX_COEFFICIENTS} coefficients (optfilters.validation.MAX_COEFFICIENTS), "
            f"got {size}"
        )
    return array


def _trim_trailing_zeros(array: FloatArray) -> FloatArray:
    nonzero = np.flatnonzero(array)
    if nonzero.size == 0:
        return array[:1]
    return array[: nonzero[-1] + 1]


def _frozen(array: NDArray[Any]) -> NDArray[Any]:
    array = np.array(array, copy=True)
    array.flags.writeable = False
    return array


def _roots_in_z(coefficients: FloatArray, length: int) -> ComplexArray:
    """Roots in z of ``sum c_k z^-k`` padded to ``length`` coefficients."""
    padded = np.zeros(length)
    padded[: coefficients.size] = coefficients
    first = np.flatnonzero(padded)
    if first.size == 0:
        return np.zeros(0, dtype=np.complex128)
    return np.asarray(np.roots(padded[first[0] :]), dtype=np.complex128)


def _factor_exact(num: _exact.Poly, den: _exact.Poly) -> Factorisation:
    """The factored form of exact ``B(z^-1) / A(z^-1)`` (``den[0] == 1``)."""
    delay = 0
    while delay < len(num) and num[delay] == 0:
        delay += 1
    if delay == len(num):
        return Factorisation(given_roots([]), roots(den), 0.0, 0)
    zeros, gain, delay = _numerator_factors(num, delay)
    return Factorisation(zeros, _off_origin(roots(den)), gain, delay)


def _numerator_factors(num: _exact.Poly, delay: int) -> tuple[RootSet, float, int]:
    """Zeros, gain and delay of ``sum b_k z^-k`` from its first non-zero coefficient ``b_delay``.

    A leading coefficient so small that a zero lies beyond ``1e100`` in
    modulus (``b = [1e-311, 1]``: a zero at ``-4.5e310``, past the double
    range) is taken as a zero at infinity: the coefficient is dropped, which
    changes ``H`` on the unit circle by about its relative size.
    """
    while True:
        zeros = _off_origin(roots(num[delay:]))
        rest = delay + 1
        while rest < len(num) and num[rest] == 0:
            rest += 1
        if rest == len(num) or np.all(np.abs(zeros.values) < 1e100):
            return zeros, float(num[delay]), delay
        delay = rest


def _off_origin(rootset: RootSet) -> RootSet:
    values = rootset.values
    if values.size == 0 or np.all(values != 0):
        return rootset
    return subset_roots(rootset, values[values != 0])


def _pole_verdict(poles: ComplexArray) -> Stability:
    """Stability from exactly known poles: ``|p|^2`` against 1 in rational arithmetic, repeats by equality."""
    on_circle: list[complex] = []
    for p in poles:
        if p == 0:
            continue
        re, im = Fraction(float(p.real)), Fraction(float(p.imag))
        radius2 = re * re + im * im
        if radius2 > 1:
            return "unstable"
        if radius2 == 1:
            on_circle.append(complex(p))
    if not on_circle:
        return "stable"
    if len(set(on_circle)) < len(on_circle):
        return "unstable"  # a repeated pole on the circle (a double integrator) grows without bound
    return "marginal"


class ArmaFilter:
    """A linear time-invariant filter ``H(z) = B(z^-1) / A(z^-1)``.

    Coefficients are in powers of ``z^-1`` (:func:`scipy.signal.lfilter`
    order).  ``a`` is normalised so that ``a[0] == 1``; trailing zero
    coefficients are dropped.  The value is immutable: operations return new
    filters.

    What a filter stands for is exact: the rational coefficients it was given
    (floats are dyadic rationals), or the zeros, poles and gain it was built
    from (:meth:`from_zpk`, designs), carried through :func:`cascade`,
    :func:`parallel`, :meth:`scaled` and :meth:`delayed` (:attr:`exact`,
    :attr:`factorisation`).  ``b`` and ``a`` are that filter multiplied out in
    floating point, for running it; the analysis never uses them.  Gains,
    delays and the stability verdict refer to the transfer function: pole-zero
    pairs that coincide (:meth:`minreal`) cancel first, and
    :meth:`cancellations` lists them.

    Parameters
    ----------
    b : array_like
        Numerator coefficients ``b0, b1, ...`` of ``b0 + b1 z^-1 + ...``.
    a : array_like, optional
        Denominator coefficients; ``a[0]`` must be non-zero.  Default ``[1]``.
    name : str, optional
        A label used in plots and tables.

    Raises
    ------
    InvalidFilterError
        If a coefficient array is empty or not finite, ``a[0] == 0``, or it has
        more than :data:`optfilters.validation.MAX_COEFFICIENTS` (256)
        coefficients after trailing zeros are dropped: the cap is applied here,
        so every way to a filter (the catalogue, the CLI, the constructor,
        :func:`cascade`, :meth:`from_zpk`) is bounded.  The analysis solves
        eigenvalue and Lyapunov problems of the filter's order (cubic cost): at
        256 coefficients it takes seconds, at 10 000 hours.

    Examples
    --------
    >>> from optfilters import ArmaFilter
    >>> momentum = ArmaFilter([1.0], [1.0, -0.9])
    >>> momentum.poles.real.round(6).tolist()
    [0.9]
    >>> round(momentum.dc_gain, 6)
    10.0
    >>> momentum.stability
    'stable'
    >>> ArmaFilter([0.1] * 10_000)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    optfilters.errors.InvalidFilterError: b (numerator) may have at most 256 coefficients (...), got 10000
    """

    __slots__ = ("_cache", "_exact", "_fact", "a", "b", "name")

    b: FloatArray
    a: FloatArray
    name: str
    _exact: ExactPair | Callable[[], ExactPair] | None
    _fact: Factorisation | Callable[[], Factorisation] | None
    _cache: dict[str, Any]

    def __init__(
        self,
        b: ArrayLike,
        a: ArrayLike = (1.0,),
        name: str = "",
        *,
        _zpk: tuple[ArrayLike, ArrayLike, float] | None = None,
        _exact: ExactPair | Callable[[], ExactPair] | None = None,
        _fact: Factorisation | Callable[[], Factorisation] | None = None,
    ) -> None:
        b_arr = _as_coefficients(b, "b (numerator)")
        a_arr = _as_coefficients(a, "a (denominator)")
        if a_arr[0] == 0.0:
            raise InvalidFilterError(f"a[0] must be non-zero, got a = {a_arr.tolist()}")
        with np.errstate(over="ignore"):
            b_norm, a_norm = b_arr / a_arr[0], a_arr / a_arr[0]
        if not (np.all(np.isfinite(b_norm)) and np.all(np.isfinite(a_norm))):
            raise InvalidFilterError(
                f"a[0] = {a_arr[0]:.3g} is too small: the coefficients divided by it overflow (a = {a_arr.tolist()})"
            )
        set_ = object.__setattr__
        set_(self, "b", _frozen(_trim_trailing_zeros(b_norm)))
        set_(self, "a", _frozen(_trim_trailing_zeros(a_norm)))
        set_(self, "name", str(name))
        if _zpk is not None:  # zeros, poles (in z, origin included) and gain: the filter stands for these
            zeros = np.atleast_1d(np.asarray(_zpk[0], dtype=np.complex128))
            poles = np.atleast_1d(np.asarray(_zpk[1], dtype=np.complex128))
            delay = poles.size - zeros.size
            given_zeros = _off_origin(given_roots(zeros, "zeros"))
            _fact = Factorisation(given_zeros, _off_origin(given_roots(poles, "poles")), float(_zpk[2]), delay)
        set_(self, "_exact", _exact)
        set_(self, "_fact", _fact)
        set_(self, "_cache", {})

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"ArmaFilter is immutable; cannot set {key!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        given = self._fact if isinstance(self._fact, Factorisation) else None
        exact = self._exact if isinstance(self._exact, tuple) else None
        if given is None and self._fact is not None:
            given = self.factorisation
        if exact is None and self._exact is not None:
            exact = self.exact
        return (_rebuild, (self.b.tolist(), self.a.tolist(), self.name, given, exact))

    # ----------------------------------------------------------------- what the filter stands for
    @property
    def exact(self) -> tuple[tuple[Fraction, ...], tuple[Fraction, ...]]:
        """The exact rational ``(b, a)`` this filter stands for (``a[0] == 1``), in powers of ``z^-1``.

        Entered coefficients as they are (floats are exact dyadic rationals);
        zeros and poles multiplied out exactly; products and sums of filters
        formed exactly.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> b, a = ArmaFilter.from_zpk([], [0.5 + 0.5j, 0.5 - 0.5j], 1.0).exact
        >>> [str(c) for c in a]
        ['1', '-1', '1/2']
        """
        value = self._exact
        if value is None:
            value = (_exact.fractions_of(self.b), _exact.fractions_of(self.a))
        elif callable(value):
            value = value()
        object.__setattr__(self, "_exact", value)
        return value

    @property
    def factorisation(self) -> Factorisation:
        """Zeros, poles, gain and delay, each root to double precision with its multiplicity.

        Entered coefficients are factored once, exactly where possible and
        otherwise in high precision (:func:`optfilters.factored.roots`); zeros
        and poles given as such are kept.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> f = ArmaFilter([1.0], [1.0, -2.0, 1.0]).factorisation   # a double pole at 1, found exactly
        >>> f.poles.values.real.tolist(), f.poles.multiplicities.tolist(), f.poles.method
        ([1.0, 1.0], [2, 2], 'exact')
        """
        value = self._fact
        if value is None:
            num, den = self.exact
            value = _factor_exact(num, den)
        elif callable(value):
            value = value()
        object.__setattr__(self, "_fact", value)
        return value

    def _exact_sourced(self) -> bool:
        """True when the exact coefficients (not roots) are what the filter stands for."""
        return not isinstance(self._fact, Factorisation) and not callable(self._fact)

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_zpk(cls, zeros: ArrayLike, poles: ArrayLike, gain: float, name: str = "") -> ArmaFilter:
        """Build a filter from zeros, poles (in z) and gain.

        The zeros and poles are what the filter stands for: they are used for
        :attr:`poles`, :attr:`zeros`, :meth:`to_sos` and every analysis, so
        that high-order designs keep their accuracy.  Complex values must come
        in conjugate pairs.

        Parameters
        ----------
        zeros, poles : array_like
            Roots of the numerator and denominator in ``z``.
        gain : float
            ``H(z) = gain * prod(z - zeros) / prod(z - poles)``.
        name : str, optional
            Label.

        Returns
        -------
        ArmaFilter
            The filter, with the given roots kept as its factored form.

        Raises
        ------
        InvalidFilterError
            If a zero, pole or the gain is not finite, there are more zeros
            than poles (not causal), or complex roots do not come in conjugate
            pairs.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> f = ArmaFilter.from_zpk([0.0], [0.9], 0.1)   # 0.1 z / (z - 0.9)
        >>> f.b.tolist(), f.a.round(12).tolist()
        ([0.1], [1.0, -0.9])
        >>> ArmaFilter.from_zpk([], [0.9], 0.1).b.tolist()   # 0.1 / (z - 0.9): a delay
        [0.0, 0.1]
        """
        for values, what in ((zeros, "zeros"), (poles, "poles"), (gain, "gain")):
            _refuse_text_and_bools(values, what)
        z = np.atleast_1d(np.asarray(zeros, dtype=np.complex128))
        p = np.atleast_1d(np.asarray(poles, dtype=np.complex128))
        if not (np.all(np.isfinite(z)) and np.all(np.isfinite(p)) and math.isfinite(gain)):
            raise InvalidFilterError("zeros, poles and gain must be finite")
        if z.size > p.size:
            raise InvalidFilterError(
                f"a causal filter needs at least as many poles as zeros, got {z.size} zeros and {p.size} poles"
            )
        try:
            fact = Factorisation(
                _off_origin(given_roots(z, "zeros and poles")),
                _off_origin(given_roots(p, "zeros and poles")),
                float(gain),
                p.size - z.size,
            )
        except ValueError as exc:
            raise InvalidFilterError(str(exc)) from None
        return cls._from_factorisation(fact, name)

    @classmethod
    def _from_factorisation(cls, fact: Factorisation, name: str = "") -> ArmaFilter:
        """The filter a factorisation stands for; ``b``/``a`` multiplied out in floating point."""
        num = np.real(np.poly(fact.zeros.values)) if fact.zeros.values.size else np.ones(1)
        den = np.real(np.poly(fact.poles.values)) if fact.poles.values.size else np.ones(1)
        # gain z^-d prod(1 - z_i z^-1) / prod(1 - p_j z^-1)
        b = np.concatenate([np.zeros(fact.delay), fact.gain * num])
        return cls(b, den, name=name, _exact=lambda: _exact_of(fact), _fact=fact)

    @classmethod
    def from_sos(cls, sos: ArrayLike, name: str = "") -> ArmaFilter:
        """Build a filter from second-order sections ``[b0 b1 b2 1 a1 a2]``.

        The sections' coefficients are what the filter stands for; each is
        factored on its own (closed form), so the roots keep their accuracy.

        Parameters
        ----------
        sos : array_like, shape (n_sections, 6)
            The sections, each ``[b0, b1, b2, a0, a1, a2]`` (``scipy.signal`` layout).
        name : str, optional
            Label.

        Returns
        -------
        ArmaFilter
            The cascade of the sections.

        Raises
        ------
        InvalidFilterError
            If ``sos`` is not of shape ``(n, 6)``, holds a non-finite number, or a
            section has ``a0 == 0``.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> f = ArmaFilter.from_sos([[0.1, 0.0, 0.0, 1.0, -0.9, 0.0]])
        >>> f.b.tolist(), f.a.tolist()
        ([0.1], [1.0, -0.9])
        """
        _refuse_text_and_bools(sos, "sos")
        sections = np.atleast_2d(np.asarray(sos, dtype=np.float64))
        if sections.ndim != 2 or sections.shape[1] != 6:
            raise InvalidFilterError(f"sos must have shape (n, 6), got {sections.shape}")
        if not np.all(np.isfinite(sections)):
            raise InvalidFilterError("sos must contain finite numbers only")
        if np.any(sections[:, 3] == 0.0):
            raise InvalidFilterError("every section needs a non-zero a0 (column 3)")
        # Multiply the sections out in powers of z^-1 (scipy's sos2tf drops leading zeros, i.e. delays).
        b = np.ones(1)
        a = np.ones(1)
        parts = []
        for section in sections:
            num, den = section[:3] / section[3], section[3:] / section[3]
            b, a = np.convolve(b, num), np.convolve(a, den)
            parts.append(ArmaFilter(num, den))

        def exact() -> ExactPair:
            return _exact_product(parts)

        return cls(b, a, name=name, _exact=exact, _fact=lambda: _fact_product(parts))

    @classmethod
    def identity(cls) -> ArmaFilter:
        """The identity filter ``H(z) = 1`` (plain SGD).

        Returns
        -------
        ArmaFilter
            ``b = [1]``, ``a = [1]``, named ``"identity"``.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter.identity().dc_gain
        1.0
        """
        return cls([1.0], [1.0], name="identity")

    @classmethod
    def ema(cls, beta: float, name: str = "") -> ArmaFilter:
        """Unit-DC-gain one-pole low-pass ``(1 - beta) / (1 - beta z^-1)``.

        This is the exponential moving average of Adam's moments.

        Parameters
        ----------
        beta : float
            The pole (torch.optim's ``beta1`` / ``beta2`` / ``alpha``), per step.
        name : str, optional
            Label (default ``"ema(<beta>)"``).

        Returns
        -------
        ArmaFilter
            The first-order low-pass with DC gain 1.

        Raises
        ------
        InvalidHyperparameterError
            If ``beta`` is not a finite number (from :func:`~optfilters.validation.check_number`).

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> f = ArmaFilter.ema(0.9)
        >>> round(f.dc_gain, 12), f.poles.real.round(12).tolist()
        (1.0, [0.9])
        """
        beta = check_number(beta, "beta")
        return cls([1.0 - beta], [1.0, -beta], name=name or f"ema({beta:g})")

    @classmethod
    def leaky_integrator(cls, pole: float, name: str = "") -> ArmaFilter:
        """Unit-input-gain one-pole filter ``1 / (1 - pole z^-1)`` (heavy-ball momentum).

        Parameters
        ----------
        pole : float
            The pole (torch.optim.SGD's ``momentum``), per step.
        name : str, optional
            Label.

        Returns
        -------
        ArmaFilter
            The one-pole filter with ``b = [1]``, DC gain ``1 / (1 - pole)``.

        Raises
        ------
        InvalidHyperparameterError
            If ``pole`` is not a finite number (from :func:`~optfilters.validation.check_number`).

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> round(ArmaFilter.leaky_integrator(0.9).dc_gain, 9)
        10.0
        """
        pole = check_number(pole, "pole")
        return cls([1.0], [1.0, -pole], name=name or f"1/(1-{pole:g}z^-1)")

    # ----------------------------------------------------------------- structure
    @property
    def order(self) -> int:
        """``max(len(b), len(a)) - 1``: the number of delays the filter needs.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter([1.1, -0.1], [1.0, -0.9]).order
        1
        """
        return max(self.b.size, self.a.size) - 1

    @property
    def poles(self) -> ComplexArray:
        """Poles in ``z`` (roots of ``z^order A(z^-1)``), origin padding included.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter([1.0], [1.0, -0.5]).poles.real.tolist()
        [0.5]
        """
        return self._with_origin(self.factorisation.poles.values, self.order)

    @property
    def zeros(self) -> ComplexArray:
        """Zeros in ``z`` (roots of ``z^order B(z^-1)``), origin padding included.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter([1.9, -0.9], [1.0, -0.9]).zeros.real.round(6).tolist()
        [0.473684]
        """
        fact = self.factorisation
        return self._with_origin(fact.zeros.values, self.order - fact.delay)

    @staticmethod
    def _with_origin(roots: ComplexArray, count: int) -> ComplexArray:
        missing = count - roots.size
        if missing > 0:
            return np.concatenate([roots, np.zeros(missing, dtype=np.complex128)])
        return np.asarray(roots, dtype=np.complex128)

    @property
    def gain(self) -> float:
        """The zpk gain: the first non-zero numerator coefficient (``a[0] == 1``) of the exact filter.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter([0.0, 0.5], [1.0, -0.5]).gain
        0.5
        """
        return self.factorisation.gain

    # ----------------------------------------------------------------- minimal realisation
    def minreal(self, tol: float | None = None) -> ArmaFilter:
        """The minimal realisation: pole-zero pairs with ``|p - z| <= tol * max(1, |p|)`` cancelled.

        Real roots cancel real roots and complex pairs complex pairs (closest
        first), so the result is a real filter; the gain and delay are kept
        (``H = gain z^-d prod(1 - z_i/z) / prod(1 - p_j/z)`` loses the factor
        pairs).  Returns the filter itself when nothing cancels.

        Parameters
        ----------
        tol : float, optional
            Relative tolerance; default ``sqrt(eps)`` (1.5e-8), as MATLAB's and
            python-control's ``minreal``.  ``0`` cancels exactly equal roots only.

        Returns
        -------
        ArmaFilter

        Raises
        ------
        InvalidFilterError
            If ``tol`` is negative or not finite.

        Examples
        --------
        >>> from optfilters import ArmaFilter, cascade
        >>> f = cascade(ArmaFilter([1.0, -1.0]), ArmaFilter([1.0], [1.0, -1.0]))   # differencer, summer
        >>> g = f.minreal()
        >>> g.b.tolist(), g.a.tolist(), f.stability, f.dc_gain
        ([1.0], [1.0], 'stable', 1.0)
        """
        tol = MINREAL_TOLERANCE if tol is None else float(tol)
        if not (tol >= 0.0 and math.isfinite(tol)):
            raise InvalidFilterError(f"tol must be finite and >= 0, got {tol}")
        key = f"minreal:{tol!r}"
        cached = self._cache.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        fact = self.factorisation
        zeros, poles, cancelled = cancel(fact.zeros.values, fact.poles.values, tol)
        if not cancelled:
            result = self
        else:
            kept_zeros, kept_poles = subset_roots(fact.zeros, zeros), subset_roots(fact.poles, poles)
            reduced = Factorisation(kept_zeros, kept_poles, fact.gain, fact.delay)
            result = ArmaFilter._from_factorisation(reduced, self.name)
        self._cache[key] = result
        self._cache[f"cancellations:{tol!r}"] = cancelled
        return result

    def cancellations(self, tol: float | None = None) -> tuple[Cancellation, ...]:
        """The pole-zero pairs :meth:`minreal` cancels (empty when the realisation is minimal).

        Parameters
        ----------
        tol : float, optional
            Relative tolerance: a pair cancels when ``|p - z| <= tol * max(1, |p|)``
            (default ``MINREAL_TOLERANCE``, as :meth:`minreal`).

        Returns
        -------
        tuple of Cancellation
            One per cancelled pair.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> [c.describe() for c in ArmaFilter([1.0, -1.0], [1.0, -1.9, 0.9]).cancellations()]
        ['pole-zero pair at z = 1 cancelled (|p - z| = 1.1e-15)']
        """
        tol = MINREAL_TOLERANCE if tol is None else float(tol)
        self.minreal(tol)
        return self._cache[f"cancellations:{tol!r}"]  # type: ignore[no-any-return]

    # ----------------------------------------------------------------- stability
    def _own_stability(self) -> Stability:
        """The exact verdict of this realisation's denominator (no cancellation)."""
        cached = self._cache.get("own_stability")
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        fact = self._fact if isinstance(self._fact, Factorisation) else None
        if fact is not None and fact.poles.exact:
            verdict: Stability = _pole_verdict(fact.poles.values)
        elif self.a.size == 1 and self._exact_sourced():
            verdict = "stable"
        else:
            verdict = _exact.stability(self.exact[1])
        self._cache["own_stability"] = verdict
        return verdict

    @property
    def stability(self) -> Stability:
        """``'stable'``, ``'marginal'`` (simple poles on the unit circle) or ``'unstable'``.

        Decided exactly, not from rounded roots: the Schur-Cohn test on the
        exact denominator (:func:`optfilters.exact.stability`), or ``|p|^2``
        against 1 in rational arithmetic for poles given as such.  A pole that
        cancels against a zero (:meth:`minreal`) does not count: the verdict
        is that of the transfer function, from the exact root counts of the
        denominator (:func:`optfilters.exact.unit_circle_counts`) less the
        cancelled poles, each placed against the circle exactly (or by a
        256-bit Newton refinement on the exact polynomial when it lies within
        rounding of it).

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter([1.0], [1.0, -1.0]).stability   # Adagrad's summer
        'marginal'
        """
        cached = self._cache.get("stability")
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        own = self._own_stability()
        cancelled = () if own == "stable" else self.cancellations()
        if not cancelled:
            verdict = own
        elif self.factorisation.poles.exact:
            verdict = self.minreal()._own_stability()  # the remaining poles are exactly known
        else:
            verdict = self._reduced_stability(cancelled)
        self._cache["stability"] = verdict
        return verdict

    def _reduced_stability(self, cancelled: tuple[Cancellation, ...]) -> Stability:
        """The verdict after cancellations, from exact counts of the denominator's roots."""
        den = self.exact[1]
        counts = _exact.unit_circle_counts(den)
        outside, on, touched_circle = counts.outside, counts.on, False
        for c in cancelled:
            for pole in (c.pole,) if c.count == 1 else (c.pole, c.pole.conjugate()):
                side = self._side_of_circle(pole, den)
                if side > 0:
                    outside -= 1
                elif side == 0:
                    on -= 1
                    touched_circle = True
        if outside > 0:
            return "unstable"
        if on <= 0:
            return "stable"
        if counts.repeated_on_circle and not touched_circle:
            return "unstable"
        remaining = [complex(p) for p in self.minreal().factorisation.poles.values if abs(abs(p) - 1.0) < 1e-6]
        return "unstable" if len(set(remaining)) < len(remaining) else "marginal"

    def _side_of_circle(self, pole: complex, den: ExactPoly) -> int:
        """-1, 0 or 1: a root of the exact ``den`` inside, on or outside the unit circle."""
        re, im = Fraction(pole.real), Fraction(pole.imag)
        gap = re * re + im * im - 1
        if abs(gap) > 64 * Fraction(2.0**-52):  # rounding moves |p|^2 by a few ulps at most
            return 1 if gap > 0 else -1
        import mpmath

        ctx = mpmath.mp.clone()
        ctx.prec = 256
        values = self.factorisation.poles.values
        multiplicity = int(self.factorisation.poles.multiplicities[int(np.argmin(np.abs(values - pole)))])
        coefficients = [ctx.mpf(c.numerator) / c.denominator for c in den]
        for _ in range(multiplicity - 1):  # an m-fold root is a simple root of the (m-1)-th derivative
            n = len(coefficients) - 1
            coefficients = [c * (n - i) for i, c in enumerate(coefficients[:-1])]
        derivative = [c * (len(coefficients) - 1 - i) for i, c in enumerate(coefficients[:-1])]
        z = ctx.mpc(pole.real, pole.imag)
        for _ in range(60):
            value, slope = ctx.polyval(coefficients, z), ctx.polyval(derivative, z)
            if slope == 0:
                break
            step = value / slope
            z -= step
            if abs(step) < ctx.mpf(2) ** -240:
                break
        distance = abs(z) - 1
        if abs(distance) < ctx.mpf(2) ** -200:
            return 0
        return 1 if distance > 0 else -1

    @property
    def is_stable(self) -> bool:
        """True when every pole is strictly inside the unit circle.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter([1.0], [1.0, -1.1]).is_stable
        False
        """
        return self.stability == "stable"

    @property
    def is_fir(self) -> bool:
        """True when the filter has no feedback (``a == [1]``).

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter([0.5, 0.5]).is_fir
        True
        """
        return self.a.size == 1

    # ----------------------------------------------------------------- gains
    def evaluate(self, z: ArrayLike) -> NDArray[np.complex128]:
        """``H(z)`` at the given complex points, from the factored form.

        Parameters
        ----------
        z : complex or array_like
            Points of the complex plane.

        Returns
        -------
        ndarray of complex
            ``H(z)``, the shape of ``z``.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> complex(ArmaFilter([1.0], [1.0, -0.5]).evaluate(-1.0)).real
        0.6666666666666666
        """
        fact = self.factorisation
        points = np.asarray(z, dtype=np.complex128)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            zinv = 1.0 / points
            value = fact.gain * zinv**fact.delay * np.ones(points.shape, dtype=np.complex128)
            zeros, poles = fact.zeros.values, fact.poles.values
            for k in range(max(zeros.size, poles.size)):
                if k < zeros.size:
                    value = value * (1.0 - zeros[k] * zinv)
                if k < poles.size:
                    value = value / (1.0 - poles[k] * zinv)
        return np.asarray(value, dtype=np.complex128)

    def _gain_at(self, point: float) -> float:
        """``H(point)`` for ``point = +-1`` of the transfer function (cancelled pairs removed)."""
        reduced = self.minreal()
        if reduced is self and self._exact_sourced():
            num, den = self.exact
            ratio = _exact.value_at_one(num, den) if point > 0 else _exact.value_at_minus_one(num, den)
            if ratio is None:
                numerator = sum(num) if point > 0 else sum(c if k % 2 == 0 else -c for k, c in enumerate(num))
                return math.copysign(math.inf, numerator) if numerator != 0 else math.nan
            return saturating_float(ratio)
        value = reduced.factorisation.value_at(point)
        if math.isinf(value.real) or math.isinf(abs(value)):
            return math.inf if value.real >= 0 else -math.inf
        return float(value.real)

    def gain_null_reason(self, point: float) -> str:
        """Why :attr:`dc_gain` (``point = 1``) or :attr:`nyquist_gain` (``point = -1``) is not finite (``why_null``).

        A pole at ``z = point`` makes the gain infinite; otherwise a
        non-finite gain is a finite number beyond the double range.

        Parameters
        ----------
        point : {1, -1}
            ``z`` of the gain.

        Returns
        -------
        str
            ``"infinite: a pole at z = 1"`` or ``"infinite: overflows the double range ..."``.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter([1.0], [1.0, -1.0]).gain_null_reason(1)
        'infinite: a pole at z = 1'
        >>> ArmaFilter([1e308], [1.0, -0.5]).gain_null_reason(1)
        'infinite: overflows the double range (|H(1)| = 2e+308 > 1.8e+308)'
        """
        sign = 1 if point > 0 else -1
        num, den = self.minreal().exact
        value_at = _exact.value_at_one if sign > 0 else _exact.value_at_minus_one
        where = "1" if sign > 0 else "-1"
        ratio = value_at(num, den)
        if ratio is None:
            return f"infinite: a pole at z = {where}"
        size = abs(ratio)
        digits = len(str(size.numerator)) - len(str(size.denominator))
        mantissa = float(Fraction(size) / Fraction(10) ** digits) if digits > 0 else float(size)
        text = f"{mantissa:.2g}e+{digits:03d}" if digits > 0 else f"{mantissa:.2g}"
        return f"infinite: overflows the double range (|H({where})| = {text} > 1.8e+308)"

    @property
    def dc_gain(self) -> float:
        """``H(1) = sum(b) / sum(a)`` of the transfer function, exactly rounded; ``inf`` at a pole at ``z = 1``.

        Coinciding pole-zero pairs cancel first (:meth:`minreal`): the
        differencer followed by the summer has DC gain 1.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter([1.0], [1.0, -1.0]).dc_gain
        inf
        >>> round(ArmaFilter([1.0, -1.0], [1.0, -1.9, 0.9]).dc_gain, 9)   # momentum 0.9, a pair cancelled at z = 1
        10.0
        """
        return self._gain_at(1.0)

    @property
    def nyquist_gain(self) -> float:
        """``H(-1)``: the gain at 0.5 cycles/step (signed, real), as :attr:`dc_gain`.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> round(ArmaFilter([0.1], [1.0, -0.9]).nyquist_gain, 12)
        0.052631578947
        """
        return self._gain_at(-1.0)

    # ----------------------------------------------------------------- conversions
    def to_zpk(self) -> tuple[ComplexArray, ComplexArray, float]:
        """Zeros, poles and gain (as :attr:`zeros`, :attr:`poles`, :attr:`gain`).

        Returns
        -------
        zeros : ndarray of complex
            Roots of the numerator in ``z``.
        poles : ndarray of complex
            Roots of the denominator in ``z``.
        gain : float
            ``k`` in ``H(z) = k prod(z - zeros) / prod(z - poles)``.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> z, p, k = ArmaFilter([0.1], [1.0, -0.9]).to_zpk()
        >>> p.real.round(9).tolist(), k
        ([0.9], 0.1)
        """
        return self.zeros, self.poles, self.gain

    def to_sos(self) -> FloatArray:
        """Second-order sections (``scipy.signal`` layout), from the zeros and poles.

        Returns
        -------
        ndarray, shape (n_sections, 6)
            ``[b0, b1, b2, 1, a1, a2]`` per section; one gain-only section for a constant.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter([0.1], [1.0, -0.9]).to_sos().round(9).tolist()
        [[0.1, 0.0, 0.0, 1.0, -0.9, 0.0]]
        """
        from scipy import signal

        z, p, k = self.to_zpk()
        # Pad to equal root counts: the extra zeros at the origin are the delays
        # of the leading zero coefficients of b, restored below as sections.
        n = max(z.size, p.size)
        z = np.concatenate([z, np.zeros(n - z.size)])
        p = np.concatenate([p, np.zeros(n - p.size)])
        if n == 0:
            return np.array([[k, 0.0, 0.0, 1.0, 0.0, 0.0]])
        delay = self.factorisation.delay
        sos = np.asarray(signal.zpk2sos(z, p, k), dtype=np.float64)
        sections = [sos]
        while delay > 0:
            # A pure delay is a zero at the origin that zpk2sos cannot see.
            section = np.zeros((1, 6))
            section[0, min(delay, 2)] = 1.0
            section[0, 3] = 1.0
            sections.append(section)
            delay -= 2
        return np.vstack(sections)

    def to_dlti(self) -> Any:
        """The :class:`scipy.signal.dlti` with ``dt = 1`` (the only conversion to it).

        Returns
        -------
        scipy.signal.dlti
            The transfer function (leading zeros of ``b`` trimmed), sample time 1 step.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> sys = ArmaFilter([0.1], [1.0, -0.9]).to_dlti()
        >>> sys.poles.real.round(9).tolist()
        [0.9]
        """
        from scipy import signal

        n = self.order + 1
        num = np.zeros(n)
        den = np.zeros(n)
        num[: self.b.size] = self.b
        den[: self.a.size] = self.a
        # Positive powers of z: leading zeros of b (delays) just lower the numerator's degree.
        return signal.dlti(np.trim_zeros(num, "f") if np.any(num) else num[-1:], den, dt=1.0)

    def as_dict(self) -> dict[str, Any]:
        """Plain-data view for JSON: b, a, poles, zeros, gains, stability and cancelled pairs.

        Returns
        -------
        dict
            JSON-ready: ``name``, ``b``, ``a`` (lists), ``poles`` and ``zeros``
            as ``[re, im]`` pairs, ``gain``, ``dc_gain``, ``nyquist_gain``,
            ``stability``, ``stable``, ``marginal`` and the ``cancelled``
            pole-zero pairs.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter([0.1], [1.0, -0.9]).as_dict()["stable"]
        True
        """
        return {
            "name": self.name,
            "b": self.b.tolist(),
            "a": self.a.tolist(),
            "poles": complex_pairs(self.poles),
            "zeros": complex_pairs(self.zeros),
            "gain": self.gain,
            "dc_gain": _finite_or_none(self.dc_gain),
            "nyquist_gain": _finite_or_none(self.nyquist_gain),
            "stability": self.stability,
            "stable": self.stability == "stable",
            "marginal": self.stability == "marginal",
            "cancelled": [c.describe() for c in self.cancellations()],
            "why_null": null_reasons(
                {
                    "dc_gain": (self.dc_gain, self.gain_null_reason(1)),
                    "nyquist_gain": (self.nyquist_gain, self.gain_null_reason(-1)),
                }
            ),
        }

    # ----------------------------------------------------------------- composition
    def cascade(self, *others: ArmaFilter) -> ArmaFilter:
        """Series connection: the product of the transfer functions.

        Parameters
        ----------
        *others : ArmaFilter
            The filters that follow, in order.

        Returns
        -------
        ArmaFilter
            ``H(z) prod_k H_k(z)``.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> two = ArmaFilter.ema(0.5).cascade(ArmaFilter.ema(0.5))
        >>> two.a.tolist()
        [1.0, -1.0, 0.25]
        """
        return cascade(self, *others)

    def parallel(self, *others: ArmaFilter) -> ArmaFilter:
        """Parallel connection: the sum of the transfer functions.

        Parameters
        ----------
        *others : ArmaFilter
            The filters added.

        Returns
        -------
        ArmaFilter
            ``H(z) + sum_k H_k(z)``.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> qh = ArmaFilter([0.3]).parallel(ArmaFilter.ema(0.9).scaled(0.7))
        >>> qh.b.round(6).tolist(), qh.a.tolist()
        ([0.37, -0.27], [1.0, -0.9])
        """
        return parallel(self, *others)

    def scaled(self, factor: float) -> ArmaFilter:
        """The filter times a constant gain.

        Parameters
        ----------
        factor : float
            The gain, finite.

        Returns
        -------
        ArmaFilter
            ``factor * H(z)``, with the same name.

        Raises
        ------
        InvalidFilterError
            If ``factor`` is not finite.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter.ema(0.9).scaled(10).b.round(9).tolist()
        [1.0]
        """
        if not math.isfinite(factor):
            raise InvalidFilterError(f"gain factor must be finite, got {factor}")
        k = Fraction(float(factor))
        parent = self

        def exact() -> ExactPair:
            num, den = parent.exact
            return tuple(c * k for c in num), den

        def fact() -> Factorisation:
            f = parent.factorisation
            return Factorisation(f.zeros, f.poles, f.gain * float(factor), f.delay)

        return ArmaFilter(self.b * factor, self.a, name=self.name, _exact=exact, _fact=self._derived(fact))

    def _derived(self, make: Callable[[], Factorisation]) -> Factorisation | Callable[[], Factorisation] | None:
        """A derived filter's factorisation: None (from its exact coefficients) when this one is exact-sourced."""
        return None if self._exact_sourced() else make

    def delayed(self, steps: int = 1) -> ArmaFilter:
        """The filter followed by ``steps`` unit delays (``z^-steps``).

        Parameters
        ----------
        steps : int, optional
            The number of unit delays, ``>= 0``.

        Returns
        -------
        ArmaFilter
            ``z^-steps H(z)``, with the same name.

        Raises
        ------
        InvalidFilterError
            If ``steps`` is negative.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter([1.0]).delayed(2).b.tolist()
        [0.0, 0.0, 1.0]
        """
        if steps < 0:
            raise InvalidFilterError(f"steps must be >= 0, got {steps}")
        parent = self

        def exact() -> ExactPair:
            num, den = parent.exact
            return (Fraction(0),) * steps + tuple(num), den

        def fact() -> Factorisation:
            f = parent.factorisation
            return Factorisation(f.zeros, f.poles, f.gain, f.delay + steps)

        b = np.concatenate([np.zeros(steps), self.b])
        return ArmaFilter(b, self.a, name=self.name, _exact=exact, _fact=self._derived(fact))

    def renamed(self, name: str) -> ArmaFilter:
        """The same filter with another label.

        Parameters
        ----------
        name : str
            The new label.

        Returns
        -------
        ArmaFilter
            A filter with the same coefficients (and exact and factored forms).

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter([1.0]).renamed("sgd").name
        'sgd'
        """
        out = ArmaFilter(self.b, self.a, name=name, _exact=self._exact, _fact=self._fact)
        return out

    def __mul__(self, other: object) -> ArmaFilter:
        if isinstance(other, ArmaFilter):
            return cascade(self, other)
        if isinstance(other, (int, float, np.floating, np.integer)):
            return self.scaled(float(other))
        return NotImplemented

    __rmul__ = __mul__

    def __add__(self, other: object) -> ArmaFilter:
        if isinstance(other, ArmaFilter):
            return parallel(self, other)
        if isinstance(other, (int, float, np.floating, np.integer)):
            return parallel(self, ArmaFilter([float(other)]))
        return NotImplemented

    __radd__ = __add__

    def __neg__(self) -> ArmaFilter:
        return self.scaled(-1.0)

    def __sub__(self, other: object) -> ArmaFilter:
        if isinstance(other, ArmaFilter):
            return parallel(self, -other)
        if isinstance(other, (int, float, np.floating, np.integer)):
            return parallel(self, ArmaFilter([-float(other)]))
        return NotImplemented

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ArmaFilter):
            return NotImplemented
        return bool(np.array_equal(self.b, other.b) and np.array_equal(self.a, other.a))

    def __hash__(self) -> int:
        return hash((tuple(self.b.tolist()), tuple(self.a.tolist())))

    def _realisation_key(self) -> tuple[bytes, bytes, bytes]:
        """What running the filter reads, hashable: ``b``, ``a`` and, above order 2, its second-order sections.

        ``==`` compares the coefficients only, but above order 2 the filter runs as sections of the zeros and poles
        it stands for (:meth:`from_zpk`, exact products), which equal coefficients do not fix: a cache of what
        the filter computes (its step response, a stage's program) is keyed by this, not by the filter.
        """
        key: tuple[bytes, bytes, bytes] | None = self._cache.get("realisation")
        if key is None:
            sections = self.to_sos().tobytes() if self.order > 2 and not self.is_fir else b""
            key = self._cache["realisation"] = (self.b.tobytes(), self.a.tobytes(), sections)
        return key

    def isclose(self, other: ArmaFilter, rtol: float = 1e-9, atol: float = 1e-12) -> bool:
        """True when both coefficient arrays agree to the given tolerance.

        Parameters
        ----------
        other : ArmaFilter
            The filter to compare with (both are normalised to ``a[0] = 1``).
        rtol, atol : float, optional
            Relative and absolute tolerances (as :func:`numpy.allclose`).

        Returns
        -------
        bool
            True when ``b`` and ``a`` have the same length and agree.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter([0.1], [1, -0.9]).isclose(ArmaFilter.ema(0.9))
        True
        """
        n = max(self.b.size, other.b.size)
        m = max(self.a.size, other.a.size)
        return bool(
            np.allclose(_pad(self.b, n), _pad(other.b, n), rtol=rtol, atol=atol)
            and np.allclose(_pad(self.a, m), _pad(other.a, m), rtol=rtol, atol=atol)
        )

    def __repr__(self) -> str:
        label = f", name={self.name!r}" if self.name else ""
        return f"ArmaFilter(b={_fmt(self.b)}, a={_fmt(self.a)}{label})"

    def _repr_html_(self) -> str:
        """Jupyter: H(z) typeset, poles, zeros, gains, stability (:func:`optfilters.display.filter_html`)."""
        from .display import filter_html

        return filter_html(self)

    def _repr_latex_(self) -> str:
        """Jupyter: ``$$H(z) = B(z^{-1}) / A(z^{-1})$$``."""
        from .display import filter_latex

        return filter_latex(self)

    # ----------------------------------------------------------------- analysis shortcuts
    def frequency_response(self, n: int = 512, freqs: ArrayLike | None = None) -> Any:
        """Shortcut for :func:`optfilters.frequency_response`.

        Parameters
        ----------
        n : int, optional
            Number of frequencies from 0 to Nyquist (0.5 cycles/step).
        freqs : array_like, optional
            Explicit frequencies in cycles/step (overrides ``n``).

        Returns
        -------
        FrequencyResponse
            The complex response, group delay (steps) and continuous phase at
            each frequency (cycles/step).

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> r = ArmaFilter.ema(0.9).frequency_response(n=3)
        >>> r.freqs.tolist()
        [0.0, 0.25, 0.5]
        """
        from .analysis import frequency_response

        return frequency_response(self, n=n, freqs=freqs)

    def impulse_response(self, n: int = 50) -> FloatArray:
        """The first ``n`` samples of the impulse response (``h[0]`` first), run as :meth:`filter`.

        Parameters
        ----------
        n : int, optional
            The number of samples (steps), in ``[0, MAX_STEPS]`` (:data:`optfilters.validation.MAX_STEPS`;
            an error naming ``n`` otherwise).

        Returns
        -------
        ndarray, shape (n,)
            ``h[k]``, the response at step ``k`` to a unit impulse at step 0.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter([1.0], [1.0, -0.5]).impulse_response(4).tolist()
        [1.0, 0.5, 0.25, 0.125]
        """
        x = np.zeros(check_integer(n, "n", 0, MAX_STEPS))
        if x.size:
            x[0] = 1.0
        return self.filter(x)

    def step_response(self, n: int = 50) -> FloatArray:
        """The first ``n`` samples of the unit-step response (``s[0] = h[0]`` first), run as :meth:`filter`.

        Parameters
        ----------
        n : int, optional
            The number of samples (steps), in ``[0, MAX_STEPS]`` (:data:`optfilters.validation.MAX_STEPS`;
            an error naming ``n`` otherwise).

        Returns
        -------
        ndarray, shape (n,)
            ``s[k] = sum_{j <= k} h[j]``, the response to a unit step starting at step 0.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter.ema(0.5).step_response(3).tolist()
        [0.5, 0.75, 0.875]
        """
        return self.filter(np.ones(check_integer(n, "n", 0, MAX_STEPS)))

    def filter(self, x: ArrayLike, axis: int = 0) -> FloatArray:
        """Run the filter from rest over ``x`` (``scipy.signal.lfilter``; SOS above order 2).

        Parameters
        ----------
        x : array_like
            The input sequence.
        axis : int, optional
            The time axis of ``x``.

        Returns
        -------
        ndarray
            The output, the shape of ``x`` (float64).

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter([1.0], [1.0, -0.5]).filter([1.0, 0.0, 0.0]).tolist()
        [1.0, 0.5, 0.25]
        """
        from scipy import signal

        data = np.asarray(x, dtype=np.float64)
        if self.order > 2 and not self.is_fir:
            return np.asarray(signal.sosfilt(self.to_sos(), data, axis=axis), dtype=np.float64)
        return np.asarray(signal.lfilter(self.b, self.a, data, axis=axis), dtype=np.float64)


def _rebuild(b: list[float], a: list[float], name: str, fact: Any, exact: Any = None) -> ArmaFilter:
    if isinstance(fact, tuple):  # older pickles: (zeros, poles, gain)
        return ArmaFilter(b, a, name, _zpk=fact)
    return ArmaFilter(b, a, name, _fact=fact, _exact=exact)


def _exact_of(fact: Factorisation) -> ExactPair:
    """The exact ``(b, a)`` of a factorisation: roots multiplied out in rational arithmetic."""
    num = (Fraction(0),) * fact.delay + tuple(Fraction(fact.gain) * c for c in exact_polynomial(fact.zeros.values))
    return num, exact_polynomial(fact.poles.values)


def _exact_product(filters: Sequence[ArmaFilter]) -> ExactPair:
    num: _exact.Poly = (Fraction(1),)
    den: _exact.Poly = (Fraction(1),)
    for f in filters:
        fb, fa = f.exact
        num, den = _exact.poly_mul(num, fb), _exact.poly_mul(den, fa)
    return num, den


def _fact_product(filters: Sequence[ArmaFilter]) -> Factorisation:
    parts = [f.factorisation for f in filters]
    gain = 1.0
    for p in parts:
        gain *= p.gain
    return Factorisation(
        join_roots(*(p.zeros for p in parts)),
        join_roots(*(p.poles for p in parts)),
        gain,
        sum(p.delay for p in parts),
    )


def _pad(array: FloatArray, n: int) -> FloatArray:
    out = np.zeros(n)
    out[: array.size] = array
    return out


def _fmt(array: FloatArray) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in array) + "]"


def complex_pairs(values: Iterable[complex]) -> list[list[float]]:
    """``[[re, im], ...]`` for JSON output.

    Examples
    --------
    >>> complex_pairs([0.5 + 1j])
    [[0.5, 1.0]]
    """
    return [[float(np.real(v)), float(np.imag(v))] for v in values]


def cascade(*filters: ArmaFilter) -> ArmaFilter:
    """Series connection of filters: ``H = H1 * H2 * ...``.

    The result stands for the exact product: its zeros and poles are the
    parts' own (so six one-pole filters in series keep a six-fold pole), and
    its exact coefficients the product of the parts'.

    Parameters
    ----------
    *filters : ArmaFilter
        At least one filter.

    Returns
    -------
    ArmaFilter

    Raises
    ------
    InvalidFilterError
        Without any filter.

    Examples
    --------
    >>> from optfilters import ArmaFilter, cascade
    >>> round(cascade(ArmaFilter.ema(0.9), ArmaFilter([2.0])).dc_gain, 12)
    2.0
    >>> six = cascade(*[ArmaFilter([0.001], [1.0, -0.999])] * 6)
    >>> six.poles.real.tolist() == [0.999] * 6, six.stability, round(six.dc_gain, 12)
    (True, 'stable', 1.0)
    """
    if not filters:
        raise InvalidFilterError("cascade needs at least one filter")
    b = np.ones(1)
    a = np.ones(1)
    for f in filters:
        b = np.convolve(b, f.b)
        a = np.convolve(a, f.a)
    parts = tuple(filters)
    return ArmaFilter(b, a, _exact=lambda: _exact_product(parts), _fact=lambda: _fact_product(parts))


def parallel(*filters: ArmaFilter) -> ArmaFilter:
    """Parallel connection of filters: ``H = H1 + H2 + ...``.

    Filters with equal denominators are added without raising the order.  The
    result stands for the exact sum; its poles are the parts' own and its
    zeros are those of the exact numerator (factored in high precision).

    Parameters
    ----------
    *filters : ArmaFilter
        At least one filter.

    Returns
    -------
    ArmaFilter
        The sum, over the least common denominator.

    Raises
    ------
    InvalidFilterError
        Without any filter.

    Examples
    --------
    >>> from optfilters import ArmaFilter, parallel
    >>> f = parallel(ArmaFilter.identity(), ArmaFilter.ema(0.98).scaled(2.0))
    >>> f.b.round(6).tolist(), f.a.tolist()
    ([1.04, -0.98], [1.0, -0.98])
    """
    if not filters:
        raise InvalidFilterError("parallel needs at least one filter")
    if len(filters) == 1:
        return filters[0].renamed("")  # a sum of one term: keep its exact zeros and poles
    b = filters[0].b
    a = filters[0].a
    shared = [False]
    for f in filters[1:]:
        if f.a.size == a.size and np.array_equal(f.a, a):
            n = max(b.size, f.b.size)
            b = _pad(b, n) + _pad(f.b, n)
            shared.append(True)
        else:
            left = np.convolve(b, f.a)
            right = np.convolve(f.b, a)
            n = max(left.size, right.size)
            b = _pad(left, n) + _pad(right, n)
            a = np.convolve(a, f.a)
            shared.append(False)
    parts = tuple(filters)

    def exact() -> ExactPair:
        num, den = parts[0].exact
        for f, same in zip(parts[1:], shared[1:], strict=True):
            fb, fa = f.exact
            if same:
                num = _exact.poly_add(num, fb)
            else:
                num = _exact.poly_add(_exact.poly_mul(num, fa), _exact.poly_mul(fb, den))
                den = _exact.poly_mul(den, fa)
        return num, den

    def fact() -> Factorisation:
        num = out.exact[0]
        pole_sets = [parts[0].factorisation.poles] + [
            f.factorisation.poles for f, same in zip(parts[1:], shared[1:], strict=True) if not same
        ]
        delay = 0
        while delay < len(num) and num[delay] == 0:
            delay += 1
        poles = join_roots(*pole_sets)
        if delay == len(num):
            return Factorisation(given_roots([]), poles, 0.0, 0)
        zeros, gain, delay = _numerator_factors(num, delay)
        return Factorisation(zeros, poles, gain, delay)

    out = ArmaFilter(b, a, _exact=exact, _fact=fact)
    return out
