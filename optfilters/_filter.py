"""The linear filter value: ``H(z) = B(z^-1) / A(z^-1)``.

Every coefficient array in optfilters is in powers of ``z^-1`` (the order that
:func:`scipy.signal.lfilter` uses): ``b = [b0, b1, ...]`` means
``b0 + b1 z^-1 + ...``.  Frequencies are in cycles per step, 0 to 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._errors import InvalidFilterError
from .validation import check_number
from .validation import finite_or_none as _finite_or_none

__all__ = [
    "ArmaFilter",
    "Stability",
    "cascade",
    "parallel",
]

Stability = Literal["stable", "marginal", "unstable"]

#: Poles closer than this to the unit circle count as on it.
UNIT_CIRCLE_TOLERANCE = 1e-9

FloatArray = NDArray[np.float64]
ComplexArray = NDArray[np.complex128]


def _as_coefficients(values: ArrayLike, what: str) -> FloatArray:
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


def _classify(poles: ComplexArray) -> Stability:
    if poles.size == 0:
        return "stable"
    radii = np.abs(poles)
    if np.any(radii > 1.0 + UNIT_CIRCLE_TOLERANCE):
        return "unstable"
    on_circle = poles[radii >= 1.0 - UNIT_CIRCLE_TOLERANCE]
    if on_circle.size == 0:
        return "stable"
    # A repeated pole on the unit circle (a double integrator) grows without bound.
    for i in range(on_circle.size):
        for j in range(i + 1, on_circle.size):
            if abs(on_circle[i] - on_circle[j]) < 1e-6:
                return "unstable"
    return "marginal"


class ArmaFilter:
    """A linear time-invariant filter ``H(z) = B(z^-1) / A(z^-1)``.

    Coefficients are in powers of ``z^-1`` (:func:`scipy.signal.lfilter`
    order).  ``a`` is normalised so that ``a[0] == 1``; trailing zero
    coefficients are dropped.  The value is immutable: operations return new
    filters.

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
        If a coefficient array is empty or not finite, or ``a[0] == 0``.

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
    """

    __slots__ = ("_roots", "_zpk", "a", "b", "name")

    b: FloatArray
    a: FloatArray
    name: str
    _zpk: tuple[ComplexArray, ComplexArray, float] | None
    _roots: dict[str, ComplexArray]

    def __init__(
        self,
        b: ArrayLike,
        a: ArrayLike = (1.0,),
        name: str = "",
        *,
        _zpk: tuple[ArrayLike, ArrayLike, float] | None = None,
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
        zpk = None
        if _zpk is not None:
            zeros = np.atleast_1d(np.asarray(_zpk[0], dtype=np.complex128))
            poles = np.atleast_1d(np.asarray(_zpk[1], dtype=np.complex128))
            zeros = zeros[np.abs(zeros) > 0.0]  # the origin is implied by the order
            poles = poles[np.abs(poles) > 0.0]
            zpk = (_frozen(zeros), _frozen(poles), float(_zpk[2]))
        set_(self, "_zpk", zpk)
        set_(self, "_roots", {})  # poles and zeros, computed once (an eigenvalue problem of the filter's order)

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"ArmaFilter is immutable; cannot set {key!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.b.tolist(), self.a.tolist(), self.name, self._zpk))

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_zpk(cls, zeros: ArrayLike, poles: ArrayLike, gain: float, name: str = "") -> ArmaFilter:
        """Build a filter from zeros, poles (in z) and gain.

        The zeros and poles are kept and used for :attr:`poles`,
        :attr:`zeros` and :meth:`to_sos`, so that high-order designs keep their
        accuracy.  Complex values must come in conjugate pairs.

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

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> f = ArmaFilter.from_zpk([0.0], [0.9], 0.1)   # 0.1 z / (z - 0.9)
        >>> f.b.tolist(), f.a.round(12).tolist()
        ([0.1], [1.0, -0.9])
        >>> ArmaFilter.from_zpk([], [0.9], 0.1).b.tolist()   # 0.1 / (z - 0.9): a delay
        [0.0, 0.1]
        """
        z = np.atleast_1d(np.asarray(zeros, dtype=np.complex128))
        p = np.atleast_1d(np.asarray(poles, dtype=np.complex128))
        if not (np.all(np.isfinite(z)) and np.all(np.isfinite(p)) and math.isfinite(gain)):
            raise InvalidFilterError("zeros, poles and gain must be finite")
        if z.size > p.size:
            raise InvalidFilterError(
                f"a causal filter needs at least as many poles as zeros, got {z.size} zeros and {p.size} poles"
            )
        num = np.poly(z) if z.size else np.ones(1)
        den = np.poly(p) if p.size else np.ones(1)
        if np.max(np.abs(np.imag(num)), initial=0.0) > 1e-9 or np.max(np.abs(np.imag(den)), initial=0.0) > 1e-9:
            raise InvalidFilterError("complex zeros and poles must come in conjugate pairs")
        # k prod(z - zi) / prod(z - pi) = k z^-(np-nz) prod(1 - zi z^-1) / prod(1 - pi z^-1)
        b = np.concatenate([np.zeros(p.size - z.size), gain * np.real(num)])
        a = np.real(den)
        return cls(b, a, name=name, _zpk=(z, p, float(gain)))

    @classmethod
    def from_sos(cls, sos: ArrayLike, name: str = "") -> ArmaFilter:
        """Build a filter from second-order sections ``[b0 b1 b2 1 a1 a2]``.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> f = ArmaFilter.from_sos([[0.1, 0.0, 0.0, 1.0, -0.9, 0.0]])
        >>> f.b.tolist(), f.a.tolist()
        ([0.1], [1.0, -0.9])
        """
        sections = np.atleast_2d(np.asarray(sos, dtype=np.float64))
        if sections.ndim != 2 or sections.shape[1] != 6:
            raise InvalidFilterError(f"sos must have shape (n, 6), got {sections.shape}")
        if not np.all(np.isfinite(sections)):
            raise InvalidFilterError("sos must contain finite numbers only")
        if np.any(sections[:, 3] == 0.0):
            raise InvalidFilterError("every section needs a non-zero a0 (column 3)")
        # Multiply the sections out in powers of z^-1 (scipy's sos2tf drops leading zeros, i.e. delays),
        # collecting each section's roots for an accurate zpk.
        b = np.ones(1)
        a = np.ones(1)
        zeros: list[ComplexArray] = []
        poles: list[ComplexArray] = []
        gain = 1.0
        for section in sections:
            num, den = section[:3] / section[3], section[3:] / section[3]
            b, a = np.convolve(b, num), np.convolve(a, den)
            zeros.append(_roots_in_z(num, 3))
            poles.append(_roots_in_z(den, 3))
            nonzero = np.flatnonzero(num)
            gain *= float(num[nonzero[0]]) if nonzero.size else 0.0
        return cls(b, a, name=name, _zpk=(np.concatenate(zeros), np.concatenate(poles), gain))

    @classmethod
    def identity(cls) -> ArmaFilter:
        """The identity filter ``H(z) = 1`` (plain SGD).

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
        if self._zpk is not None:
            return self._with_origin(self._zpk[1], self.order)
        if "poles" not in self._roots:
            self._roots["poles"] = _frozen(_roots_in_z(self.a, self.order + 1))
        return np.array(self._roots["poles"])

    @property
    def zeros(self) -> ComplexArray:
        """Zeros in ``z`` (roots of ``z^order B(z^-1)``), origin padding included.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter([1.9, -0.9], [1.0, -0.9]).zeros.real.round(6).tolist()
        [0.473684]
        """
        if self._zpk is not None:
            return self._with_origin(self._zpk[0], self.order - self._leading_zero_count())
        if "zeros" not in self._roots:
            self._roots["zeros"] = _frozen(_roots_in_z(self.b, self.order + 1))
        return np.array(self._roots["zeros"])

    def _leading_zero_count(self) -> int:
        nonzero = np.flatnonzero(self.b)
        return int(nonzero[0]) if nonzero.size else 0

    @staticmethod
    def _with_origin(roots: ComplexArray, count: int) -> ComplexArray:
        missing = count - roots.size
        if missing > 0:
            return np.concatenate([roots, np.zeros(missing, dtype=np.complex128)])
        return np.asarray(roots, dtype=np.complex128)

    @property
    def gain(self) -> float:
        """The zpk gain: the first non-zero numerator coefficient (``a[0] == 1``).

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter([0.0, 0.5], [1.0, -0.5]).gain
        0.5
        """
        nonzero = np.flatnonzero(self.b)
        return float(self.b[nonzero[0]]) if nonzero.size else 0.0

    @property
    def stability(self) -> Stability:
        """``'stable'``, ``'marginal'`` (simple poles on the unit circle) or ``'unstable'``.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter([1.0], [1.0, -1.0]).stability   # Adagrad's summer
        'marginal'
        """
        return _classify(self.poles)

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
        """``H(z)`` at the given complex points.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> complex(ArmaFilter([1.0], [1.0, -0.5]).evaluate(-1.0)).real
        0.6666666666666666
        """
        if self._zpk is not None:  # exact factored form: no error from expanded high-order polynomials
            points = np.asarray(z, dtype=np.complex128)
            with np.errstate(divide="ignore", invalid="ignore"):
                value = (
                    self._zpk[2]
                    * _product_of_differences(points, self.zeros)
                    / _product_of_differences(points, self.poles)
                )
            return np.asarray(value, dtype=np.complex128)
        zinv = 1.0 / np.asarray(z, dtype=np.complex128)
        num = np.polyval(self.b[::-1], zinv)
        den = np.polyval(self.a[::-1], zinv)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(num / den, dtype=np.complex128)

    @property
    def dc_gain(self) -> float:
        """``H(1) = sum(b) / sum(a)``; ``inf`` when a pole sits at ``z = 1``.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter([1.0], [1.0, -1.0]).dc_gain
        inf
        """
        return self._real_gain_at(1.0, float(np.sum(self.b)), float(np.sum(self.a)))

    @property
    def nyquist_gain(self) -> float:
        """``H(-1)``: the gain at 0.5 cycles/step (signed, real).

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> round(ArmaFilter([0.1], [1.0, -0.9]).nyquist_gain, 12)
        0.052631578947
        """
        sign_b = (-1.0) ** np.arange(self.b.size)
        sign_a = (-1.0) ** np.arange(self.a.size)
        return self._real_gain_at(-1.0, float(np.dot(self.b, sign_b)), float(np.dot(self.a, sign_a)))

    def _real_gain_at(self, point: float, numerator: float, denominator: float) -> float:
        """``H(point)`` for ``point = +-1``: from the exact zpk when known, else ``numerator / denominator``."""
        ratio = _ratio(numerator, denominator)
        if self._zpk is not None and math.isfinite(ratio):
            value = complex(self.evaluate(point)).real
            if math.isfinite(value):
                return value
        return ratio

    # ----------------------------------------------------------------- conversions
    def to_zpk(self) -> tuple[ComplexArray, ComplexArray, float]:
        """Zeros, poles and gain (as :attr:`zeros`, :attr:`poles`, :attr:`gain`).

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
        delay = self._leading_zero_count()
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
        """Plain-data view for JSON: b, a, poles, zeros, gains and stability.

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
        }

    # ----------------------------------------------------------------- composition
    def cascade(self, *others: ArmaFilter) -> ArmaFilter:
        """Series connection: the product of the transfer functions.

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

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter.ema(0.9).scaled(10).b.round(9).tolist()
        [1.0]
        """
        if not math.isfinite(factor):
            raise InvalidFilterError(f"gain factor must be finite, got {factor}")
        zpk = None
        if self._zpk is not None:
            zpk = (self._zpk[0], self._zpk[1], self._zpk[2] * factor)
        return ArmaFilter(self.b * factor, self.a, name=self.name, _zpk=zpk)

    def delayed(self, steps: int = 1) -> ArmaFilter:
        """The filter followed by ``steps`` unit delays (``z^-steps``).

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter([1.0]).delayed(2).b.tolist()
        [0.0, 0.0, 1.0]
        """
        if steps < 0:
            raise InvalidFilterError(f"steps must be >= 0, got {steps}")
        return ArmaFilter(np.concatenate([np.zeros(steps), self.b]), self.a, name=self.name)

    def renamed(self, name: str) -> ArmaFilter:
        """The same filter with another label.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter([1.0]).renamed("sgd").name
        'sgd'
        """
        return ArmaFilter(self.b, self.a, name=name, _zpk=self._zpk)

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

    def isclose(self, other: ArmaFilter, rtol: float = 1e-9, atol: float = 1e-12) -> bool:
        """True when both coefficient arrays agree to the given tolerance.

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

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> r = ArmaFilter.ema(0.9).frequency_response(n=3)
        >>> r.freqs.tolist()
        [0.0, 0.25, 0.5]
        """
        from ._analysis import frequency_response

        return frequency_response(self, n=n, freqs=freqs)

    def impulse_response(self, n: int = 50) -> FloatArray:
        """The first ``n`` samples of the impulse response (``h[0]`` first).

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter([1.0], [1.0, -0.5]).impulse_response(4).tolist()
        [1.0, 0.5, 0.25, 0.125]
        """
        from scipy import signal

        x = np.zeros(n)
        if n:
            x[0] = 1.0
        return np.asarray(signal.lfilter(self.b, self.a, x), dtype=np.float64)

    def step_response(self, n: int = 50) -> FloatArray:
        """The first ``n`` samples of the unit-step response (``s[0] = h[0]`` first).

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> ArmaFilter.ema(0.5).step_response(3).tolist()
        [0.5, 0.75, 0.875]
        """
        from scipy import signal

        return np.asarray(signal.lfilter(self.b, self.a, np.ones(n)), dtype=np.float64)

    def filter(self, x: ArrayLike, axis: int = 0) -> FloatArray:
        """Run the filter from rest over ``x`` (``scipy.signal.lfilter``; SOS above order 2).

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


def _rebuild(b: list[float], a: list[float], name: str, zpk: Any) -> ArmaFilter:
    return ArmaFilter(b, a, name, _zpk=zpk)


def _pad(array: FloatArray, n: int) -> FloatArray:
    out = np.zeros(n)
    out[: array.size] = array
    return out


def _fmt(array: FloatArray) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in array) + "]"


def _ratio(num: float, den: float) -> float:
    scale = max(abs(num), 1.0)
    if abs(den) <= 1e-14 * scale:
        if abs(num) <= 1e-14:
            return math.nan
        return math.copysign(math.inf, num)
    return num / den


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

    Parameters
    ----------
    *filters : ArmaFilter
        At least one filter.

    Returns
    -------
    ArmaFilter

    Examples
    --------
    >>> from optfilters import ArmaFilter, cascade
    >>> round(cascade(ArmaFilter.ema(0.9), ArmaFilter([2.0])).dc_gain, 12)
    2.0
    """
    if not filters:
        raise InvalidFilterError("cascade needs at least one filter")
    b = np.ones(1)
    a = np.ones(1)
    zpk_parts: list[tuple[ComplexArray, ComplexArray, float]] | None = []
    for f in filters:
        b = np.convolve(b, f.b)
        a = np.convolve(a, f.a)
        if zpk_parts is not None and f._zpk is not None:
            zpk_parts.append(f._zpk)
        else:
            zpk_parts = None
    zpk = None
    if zpk_parts:
        zpk = (
            np.concatenate([p[0] for p in zpk_parts]),
            np.concatenate([p[1] for p in zpk_parts]),
            float(np.prod([p[2] for p in zpk_parts])),
        )
    return ArmaFilter(b, a, _zpk=zpk)


def _product_of_differences(points: NDArray[np.complex128], roots: ComplexArray) -> NDArray[np.complex128]:
    """``prod_k (z - roots[k])`` at every point (1 for no roots)."""
    result = np.ones(points.shape, dtype=np.complex128)
    for root in roots:
        result = result * (points - root)
    return result


def parallel(*filters: ArmaFilter) -> ArmaFilter:
    """Parallel connection of filters: ``H = H1 + H2 + ...``.

    Filters with equal denominators are added without raising the order.

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
    for f in filters[1:]:
        if f.a.size == a.size and np.array_equal(f.a, a):
            n = max(b.size, f.b.size)
            b = _pad(b, n) + _pad(f.b, n)
        else:
            left = np.convolve(b, f.a)
            right = np.convolve(f.b, a)
            n = max(left.size, right.size)
            b = _pad(left, n) + _pad(right, n)
            a = np.convolve(a, f.a)
    return ArmaFilter(b, a)


def coefficients_from_text(text: str, what: str) -> Sequence[float]:
    """Parse ``"1,-0.9"`` into floats with a clear error.

    Examples
    --------
    >>> coefficients_from_text("1, -0.9", "a")
    [1.0, -0.9]
    """
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    if not parts:
        raise InvalidFilterError(f"{what} must list at least one number, got {text!r}")
    values = []
    for part in parts:
        try:
            values.append(float(part))
        except ValueError as exc:
            raise InvalidFilterError(f"{what} must be comma-separated numbers, got {text!r}") from exc
    return values
