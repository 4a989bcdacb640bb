"""Control readings of the optimizer loop: gain, phase and delay margins, staleness, root locus, step and sensitivity.

On the quadratic ``f = h theta^2 / 2`` the optimizer is a feedback loop: the
gradient ``h theta`` goes through the direction filter ``H(z)`` (per unit
learning rate) and the parameter integrates ``-lr`` times the result.  Its
open-loop transfer function is (Bode's loop gain, ``x = lr * h``)::

    L(z) = x z^-1 H(z) / (1 - z^-1)

and the closed loop converges when every root of the characteristic
polynomial ``P(z^-1) = (1 - z^-1) A(z^-1) + x z^-1 B(z^-1)`` lies inside the
unit circle (:mod:`optfilters.closed_loop`).  The classical readings of a loop
then answer the questions a user brings:

* **gain margin**: the factor by which the learning rate can grow (at a given
  ``lr`` and ``h``) before the loop diverges, and the mode through which it
  fails (a pole through ``z = -1``: a period-2 oscillation; a complex pair at
  a frequency: a ringing that grows; ``z = 1``: monotone growth);
* **phase margin** and **delay margin**: how many steps of gradient
  staleness (asynchronous or pipelined training, local-SGD outer loops) the
  loop tolerates: with gradients ``d`` steps old the loop becomes
  ``z^-d L(z)``, and it stays stable for every delay below ``PM / w_c``
  (``w_c`` the gain-crossover frequency, ``|L| = 1``);
* the **root locus** (closed-loop poles as the loop gain sweeps), the
  closed-loop **step information** (overshoot of the parameter past the
  minimum, settling steps to 2%) and the **sensitivity** ``S = 1 / (1 + L)`` and
  **complementary sensitivity** ``T = L / (1 + L)`` (``T / h`` maps gradient
  noise to the parameter: heavy ball's resonance peak).

Every reading comes from the closed-loop characteristic polynomial, not from a
crossing search on a frequency grid: with ``P = C + g S`` (``g`` the factor on
the learning rate, ``g = 1`` the operating point), a closed-loop pole sits on
the unit circle at ``z = e^{iw}`` exactly when ``g = -C(z) / S(z)`` is real,
i.e. at the unit-circle roots of the polynomial ``C(z) S~(z) - S(z) C~(z)``
(``~`` reverses the coefficients), and ``|L| = 1`` at the unit-circle roots of
``S(z) S~(z) - C(z) C~(z)``.  Both always include ``z = +-1`` exactly when
they are roots, so the heavy-ball crossing at ``z = -1`` (which python-control
0.10.2's ``stability_margins`` misses: its phase-crossover search does not
return ``w = pi``) is found; the stable segments between the crossings are
then classified by the closed-loop poles.

Normalised models (Adam, RMSprop, ...) are **linearised** (normaliser frozen
at a second moment ``v``; ``x`` uses the preconditioned curvature
``h / (sqrt(v) + eps)``) and time-varying ones read in their ``t -> infinity``
limit; results say so in ``label`` (see :mod:`optfilters.thresholds` for the
thresholds at a given step).  Weight decay enters exactly: the gain factor
``g`` scales the learning rate, so it scales the decay terms too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .closed_loop import (
    _UNBOUNDED,
    ClosedLoop,
    ModelLike,
    _by_modulus,
    _cell_tests,
    _circle_crossings,
    _Degenerate,
    _degenerate_pencil,
    _merge_stable,
    _shifted_loop,
    _ShiftedPolynomial,
    _unbounded,
    as_model,
    closed_loop,
    marginal_text,
    spectral_radius,
)
from .display import Plottable
from .errors import InvalidFilterError, InvalidHyperparameterError
from .exact import fractions_of
from .factored import canonical_roots, unit_circle
from .validation import (
    MARGINAL_RATE_TOL,
    check_number,
    fmt_rate,
    is_marginal,
    null_reasons,
    quiet_numerics,
    series_null_reason,
)
from .validation import finite_list as _list
from .validation import finite_or_none as _finite_or_none

__all__ = [
    "FeedbackLoop",
    "Margins",
    "RootLocus",
    "Sensitivity",
    "StalenessRates",
    "StepInfo",
    "crossing_mode",
    "feedback_loop",
    "margins",
    "nonlinear_edge_note",
    "root_locus",
    "sensitivity",
    "staleness_rates",
    "step_info",
]

FloatArray = NDArray[np.float64]
ComplexArray = NDArray[np.complex128]

#: A crossing is on the unit circle when its root modulus is within this of 1 (then polished).
_CIRCLE_TOL = 1e-5
#: Largest staleness considered for the integer staleness tolerance.
MAX_STALENESS = 100_000
#: Every staleness up to this is checked on the poles; beyond it only floor(DM) and floor(DM) + 1.
_STALE_SCAN = 64


def _nonnegative_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not float(value).is_integer() or int(value) < 0:
        raise InvalidHyperparameterError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def _positive(name: str, value: Any) -> float:
    number = check_number(value, name, finite=False)  # not a number: an error that names it
    if not (math.isfinite(number) and number > 0.0):
        raise InvalidHyperparameterError(f"{name} must be finite and > 0, got {value!r}")
    return number


def _pad(a: FloatArray, n: int) -> FloatArray:
    out = np.zeros(n)
    out[: a.size] = a
    return out


def crossing_mode(frequency: float | None) -> str:
    """What a closed-loop pole crossing the unit circle at ``frequency`` (cycles/step) does.

    Parameters
    ----------
    frequency : float or None
        The crossing's frequency in cycles/step, in ``[0, 0.5]`` (None: no crossing).

    Returns
    -------
    str
        ``"none"`` without a crossing, ``z = +1: monotone growth``, ``z = -1:
        period-2 oscillation``, or the complex pair's frequency and period.

    Examples
    --------
    >>> from optfilters.margins import crossing_mode
    >>> crossing_mode(0.5), crossing_mode(0.25)
    ('z = -1: period-2 oscillation', 'complex pair at 0.25 cycles/step: oscillation of period 4 steps')
    """
    if frequency is None:
        return "none"
    if abs(frequency - 0.5) < 1e-9:
        return "z = -1: period-2 oscillation"
    if abs(frequency) < 1e-9:
        return "z = +1: monotone growth"
    return f"complex pair at {frequency:.6g} cycles/step: oscillation of period {1.0 / frequency:.4g} steps"


def _pole_mode(poles: ComplexArray) -> str:
    """The dominant closed-loop mode: the largest-modulus pole(s)."""
    if poles.size == 0:
        return "no pole (deadbeat)"
    p = poles[0]
    r = abs(p)
    if r == 0.0:
        return "all poles at the origin (deadbeat)"
    angle = abs(math.atan2(p.imag, p.real))
    if angle < 1e-9:
        return f"real pole {fmt_rate(p.real)}: monotone, |z| = {fmt_rate(r)}"
    if abs(angle - math.pi) < 1e-9:
        return f"real pole {p.real:.6g}: period-2 oscillation, |z| = {fmt_rate(r)}"
    f = angle / (2.0 * math.pi)
    return f"complex pair |z| = {fmt_rate(r)} at {f:.6g} cycles/step: ringing of period {1.0 / f:.4g} steps"


# ----------------------------------------------------------------------------- the loop polynomial


@dataclass(frozen=True)
class _LoopFactors:
    """The characteristic polynomial of a high-order loop kept in factored form.

    With the loop filter ``H = k z^-delta prod(1 - z_i/z) / prod(1 - p_j/z)`` (its minimal realisation), the
    gain factor ``g`` and ``d`` steps of staleness, ``z^N P(1/z; g) = C(z) + g S(z)`` with::

        C(z) = (z - 1) prod(z - p_j) z^a
        S(z) = lam prod(z - p_j) z^a + k (o z^d + s x) prod(z - z_i) z^b

    (``lam = lr * decoupled decay``, ``o`` the coupled decay's loop gain, ``s x`` the signed ``lr * h``,
    ``a = N - 1 - len(p)``, ``b = N - 1 - delta - d - len(z)``).  Evaluating the products factor by factor keeps
    the roots as well determined as the factors are (the expanded coefficients of an order-16 design lose them:
    Wilkinson's perturbation of clustered roots); ``z^min(a, b)`` gives exact roots at the origin.
    """

    poles: ComplexArray
    zeros: ComplexArray
    gain: float
    delay: int
    lam: float
    offset: float
    loop_gain: float
    staleness: int
    order: int

    @property
    def a(self) -> int:
        return self.order - 1 - self.poles.size

    @property
    def b(self) -> int:
        return self.order - 1 - self.delay - self.staleness - self.zeros.size

    @property
    def at_origin(self) -> int:
        """Closed-loop poles exactly at ``z = 0`` (for every ``g``)."""
        return min(self.a, self.b)

    def terms(self, z: ArrayLike) -> tuple[ComplexArray, ComplexArray]:
        """``C(z)`` and ``S(z)`` (so that ``L = g S / C`` and the closed loop is ``C + g S``)."""
        z = np.asarray(z, dtype=np.complex128)
        with np.errstate(all="ignore"):
            den = np.ones_like(z)
            for p in self.poles:
                den = den * (z - p)
            num = np.ones_like(z)
            for r in self.zeros:
                num = num * (z - r)
            den = den * z**self.a
            num = num * z**self.b
            constant = (z - 1.0) * den
            slope = self.lam * den + self.gain * (self.offset * z**self.staleness + self.loop_gain) * num
        return constant, slope

    @property
    def _shifted(self) -> _ShiftedPolynomial:
        return _shifted_loop(self.poles, self.zeros, self.a, self.b, self.staleness)

    def shifted_at(self, gain: ArrayLike) -> ComplexArray:
        """Closed-loop poles minus 1 (``w = z - 1``, to relative precision) at gain factors ``g`` (``g.shape + (n,)``).

        Solved factor by factor in ``w`` (:func:`optfilters.closed_loop._shifted_loop`), where the poles of a
        low-cutoff design (within ``1e-6`` of ``z = 1``) keep their distance from 1 to full precision.
        """
        g = np.asarray(gain, dtype=np.float64)
        flat = g.reshape(-1)
        with np.errstate(all="ignore"):
            scale = flat * self.gain
            coefficients = np.stack(
                [np.ones_like(flat), flat * self.lam, scale * self.loop_gain, scale * self.offset], -1
            )
            w = self._shifted.solve(coefficients)
        w = np.concatenate([w, np.full((flat.size, self.at_origin), -1.0 + 0j)], axis=-1)
        return w.reshape((*g.shape, w.shape[-1]))

    def poles_at(self, gain: ArrayLike) -> ComplexArray:
        """Closed-loop poles at gain factors ``g`` (shape ``g.shape + (order,)``), largest modulus first."""
        return _by_modulus(1.0 + self.shifted_at(gain))

    def rate_at(self, gain: ArrayLike) -> FloatArray:
        """The largest ``|1 + w|`` over the closed-loop poles at gain factors ``g`` (the distance from 1 kept exact)."""
        w = self.shifted_at(gain)
        return np.asarray(np.max(np.hypot(1.0 + w.real, w.imag), axis=-1, initial=0.0), dtype=np.float64)

    def dc_gain(self) -> float:
        """``T(1)`` at ``g = 1``: the parameter's final value after a unit step of the optimum."""
        num = self.gain * self.loop_gain * np.prod(1.0 - self.zeros)
        den = self.lam * np.prod(1.0 - self.poles) + self.gain * (self.offset + self.loop_gain) * np.prod(
            1.0 - self.zeros
        )
        return float(np.real(num / den))


@dataclass(frozen=True)
class FeedbackLoop:
    """The optimizer loop at an operating point, as ``P(z^-1; g) = C + g S`` (``g`` the factor on ``lr``).

    Build with :func:`feedback_loop`.  ``C`` is the loop at ``lr = 0``
    (``(1 - z^-1) A``), ``S`` what the learning rate adds at the operating
    point (``x z^-(1+d) B`` plus the weight-decay terms, which scale with
    ``lr`` too), so ``g = 1`` is the operating point and ``g`` scales the
    learning rate at fixed curvature.  The open loop is ``L = g S / C``.

    Attributes
    ----------
    name : str
    constant, slope : ndarray
        ``C`` and ``S`` in powers of ``z^-1`` (same length).
    lr_curvature : float
        ``x`` at the operating point (preconditioned when linearised).
    reference : ndarray
        The loss-gradient part of ``S`` (``x z^-(1+d) B``): the path from a
        moving optimum (or gradient noise times ``h``) to the parameter.
    staleness : int
        Steps of gradient staleness ``d`` in the loop.
    label : str
        ``"exact"`` or the linearisation / time-varying note.
    linearised : bool
    preconditioner : float
        The frozen normaliser's gain (1 for linear models).
    closed : ClosedLoop or None
        The closed-loop model the loop was built from (kept for the time-varying
        and stale variants; not compared).

    Examples
    --------
    >>> from optfilters.margins import feedback_loop
    >>> loop = feedback_loop("momentum", 0.05, momentum=0.9)
    >>> loop.constant.round(12).tolist(), loop.slope.round(12).tolist()
    ([1.0, -1.9, 0.9], [0.0, 0.05, 0.0])
    >>> round(float(loop.rate(1.0)), 6)
    0.948683
    """

    name: str
    constant: FloatArray
    slope: FloatArray
    lr_curvature: float
    reference: FloatArray
    staleness: int = 0
    label: str = "exact"
    linearised: bool = False
    preconditioner: float = 1.0
    closed: ClosedLoop | None = field(default=None, repr=False, compare=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def order(self) -> int:
        """Number of closed-loop poles."""
        return int(self.constant.size - 1)

    def polynomial(self, gain: ArrayLike = 1.0) -> FloatArray:
        """``C + g S`` (coefficient axis last).

        Parameters
        ----------
        gain : array_like
            The factor ``g`` on the learning rate (1: the operating point).

        Returns
        -------
        ndarray, shape ``g.shape + (order + 1,)``
            Coefficients in powers of ``z^-1``.

        """
        g = np.asarray(gain, dtype=np.float64)[..., None]
        return np.asarray(self.constant + g * self.slope, dtype=np.float64)

    def _exact(self) -> ClosedLoop | None:
        """The closed loop of :mod:`optfilters.closed_loop` when it is the same loop (no staleness, no decay)."""
        c = self.closed
        if c is None or self.staleness or c.coupled_decay or c.decoupled_decay:
            return None
        return c

    @property
    def _factors(self) -> _LoopFactors | None:
        """The factored characteristic polynomial of a loop around a high-order filter (None: use coefficients)."""
        if "factors" not in self._cache:
            self._cache["factors"] = _loop_factors(self)
        value: _LoopFactors | None = self._cache["factors"]
        return value

    @property
    def degenerate(self) -> _Degenerate | None:
        """The marginal set (in gain factors ``g``) of a loop whose rate is exactly 1 over an interval; else None.

        Such a loop (heavy ball with ``momentum = 1``, a filter without DC gain) has a rate ``>= 1`` at every
        ``g``: no stable interval and no isolated crossings.  Decided exactly on the closed loop's characteristic
        polynomial when the loop is that one (no staleness, no weight decay), else on ``C`` and ``S`` as they
        stand (:func:`optfilters.closed_loop._degenerate_pencil`).
        """
        if "degenerate" not in self._cache and not (
            np.all(np.isfinite(self.constant)) and np.all(np.isfinite(self.slope))
        ):
            self._cache["degenerate"] = None  # no exact polynomial to read
        if "degenerate" not in self._cache:
            exact = self._exact()
            found: _Degenerate | None
            if exact is not None and self.lr_curvature != 0.0:
                base = exact._degenerate
                x0 = self.lr_curvature
                found = (
                    None
                    if base is None
                    else replace(base, marginal=tuple((lo / x0, hi / x0) for lo, hi in base.marginal))
                )
            else:
                found = _degenerate_pencil(fractions_of(self.constant), fractions_of(self.slope))
            self._cache["degenerate"] = found
        value: _Degenerate | None = self._cache["degenerate"]
        return value

    def verdict(self, gain: float = 1.0) -> tuple[float, bool, bool]:
        """``(rate, stable, marginal)`` at gain factor ``g``: exact for a degenerate loop (never stable there).

        Parameters
        ----------
        gain : float
            The factor ``g`` on the learning rate (1: the operating point).

        Returns
        -------
        rate : float
            The largest closed-loop pole modulus (1 where the loop is exactly marginal).
        stable, marginal : bool
            ``rate < 1`` beyond rounding; the rate 1 (within
            :data:`~optfilters.validation.MARGINAL_RATE_TOL`, or exactly on a degenerate loop's marginal set).
        """
        rate = float(self.rate(gain))
        degenerate = self.degenerate
        if degenerate is not None:
            marginal = degenerate.contains(float(gain))
            return (1.0 if marginal else rate), False, marginal
        marginal = bool(is_marginal(rate))
        return rate, rate < 1.0 and not marginal, marginal

    def values(self, z: ArrayLike) -> tuple[ComplexArray, ComplexArray]:
        """``C`` and ``S`` at points ``z`` of the plane, scaled alike (``L = g S / C``; poles where ``C + g S = 0``).

        Factor by factor for a loop around a high-order design, else from the coefficients.

        Parameters
        ----------
        z : array_like of complex
            Points of the plane.

        Returns
        -------
        C, S : ndarray of complex
            Shaped like ``z``.
        """
        factors = self._factors
        if factors is not None:
            return factors.terms(z)
        z = np.asarray(z, dtype=np.complex128)
        return np.polyval(self.constant, z), np.polyval(self.slope, z)

    def poles(self, gain: ArrayLike = 1.0) -> ComplexArray:
        """Closed-loop poles at gain factor ``g``, largest modulus first; shape ``g.shape + (order,)``.

        Parameters
        ----------
        gain : array_like
            The factor ``g`` on the learning rate (1: the operating point).

        Returns
        -------
        ndarray of complex, shape ``g.shape + (order,)``

        """
        g = np.asarray(gain, dtype=np.float64)
        exact = self._exact()
        if exact is not None:
            return exact.poles(g * self.lr_curvature)
        factors = self._factors
        if factors is not None:
            return factors.poles_at(g)
        p = self.polynomial(g)
        p = p / p[..., :1]
        n = p.shape[-1] - 1
        if n == 0:
            return np.zeros((*g.shape, 0), dtype=np.complex128)
        companion = np.zeros((*g.shape, n, n))
        companion[..., 0, :] = -p[..., 1:]
        idx = np.arange(n - 1)
        companion[..., idx + 1, idx] = 1.0
        with np.errstate(all="ignore"):
            start = np.linalg.eigvals(np.nan_to_num(companion))
        return _by_modulus(start)

    def rate(self, gain: ArrayLike = 1.0) -> Any:
        """Largest closed-loop pole modulus at gain factor ``g`` (vectorised).

        Parameters
        ----------
        gain : array_like
            The factor ``g`` on the learning rate (1: the operating point).

        Returns
        -------
        float or ndarray
            The spectral radius (per step; below 1: the loop converges), shaped as ``g``.

        """
        g = np.asarray(gain, dtype=np.float64)
        exact = self._exact()
        if exact is not None:
            return exact.rate(g * self.lr_curvature)
        if self._factors is not None:
            out = self._factors.rate_at(g)
        else:
            out = spectral_radius(self.polynomial(g))
        return out[()] if np.ndim(out) == 0 else out

    def open_loop(self, freqs: ArrayLike, gain: float = 1.0) -> ComplexArray:
        """``L(e^{2 pi i f}) = g S / C`` at frequencies ``f`` (cycles/step).

        Parameters
        ----------
        freqs : array_like
            Frequencies ``f`` in cycles/step.
        gain : float
            The factor ``g`` on the learning rate (1: the operating point).

        Returns
        -------
        ndarray of complex
            ``L`` at each frequency, same shape as ``freqs``.

        """
        f = np.asarray(freqs, dtype=np.float64)
        z = unit_circle(f).reshape(f.shape) if self._factors is not None else np.exp(2j * math.pi * f)
        constant, slope = self.values(z)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.asarray(gain * slope / constant, dtype=np.complex128)

    # ------------------------------------------------------------------ unit-circle crossings
    def crossings(self) -> list[tuple[float, float]]:
        """Every gain factor ``g`` where a closed-loop pole is on the unit circle, with its frequency (cycles/step).

        From the unit-circle roots of ``C(z) S~(z) - S(z) C~(z)`` (``z = +-1``
        always tried exactly), merged with the exact unit-circle scan of
        :meth:`optfilters.closed_loop.ClosedLoop.crossings` when the loop is
        the same.  Sorted by ``g``.

        Returns
        -------
        list of (float, float)
            ``(g, frequency)`` pairs, ``g`` real and >= 0, frequency in cycles/step.

        Examples
        --------
        >>> from optfilters.margins import feedback_loop
        >>> [(round(g, 9), f) for g, f in feedback_loop("sgd", 0.5).crossings()]
        [(0.0, 0.0), (4.0, 0.5)]
        """
        if "crossings" not in self._cache:
            # a degenerate loop's poles stay on the circle over whole intervals: no isolated crossing to list
            self._cache["crossings"] = [] if self.degenerate is not None else self._crossings()
        return list(self._cache["crossings"])

    def _crossings(self) -> list[tuple[float, float]]:
        if self._factors is not None and self.closed is not None:
            return self._crossings_factored(self.closed)
        # S divided by a power of two near its size (exact): at lr * h = 1e308 its products with C overflow,
        # and the crossings are the roots of a polynomial bilinear in C and S (the same roots).
        c, (s, k) = self.constant, _unit_scaled(self.slope)
        found: list[tuple[float, float]] = []

        def gain_at(z: complex) -> complex | None:
            sz = np.polyval(s, z)
            scale = float(np.sum(np.abs(s))) or 1.0
            if abs(sz) <= 1e-13 * scale:
                return None
            g = complex(-np.polyval(c, z) / sz)  # g = -C / S with S = 2^k (S / 2^k)
            return complex(math.ldexp(g.real, -k), math.ldexp(g.imag, -k))

        for z0 in (1.0 + 0j, -1.0 + 0j):
            g = gain_at(z0)
            if g is not None and math.isfinite(g.real):
                found.append((g.real, 0.0 if z0.real > 0 else 0.5))
        cross = np.convolve(c, s[::-1]) - np.convolve(s, c[::-1])
        if np.any(np.abs(cross) > 1e-14 * np.sum(np.abs(c)) * np.sum(np.abs(s))):  # bilinear, as cross
            for r in _roots(cross):
                if abs(abs(r) - 1.0) > _CIRCLE_TOL:
                    continue
                w = abs(math.atan2(r.imag, r.real))
                if w < 1e-9 or w > math.pi - 1e-9:
                    continue  # z = +-1: done exactly above
                w = self._polish(w, s)
                g = gain_at(complex(math.cos(w), math.sin(w)))
                if g is None or not math.isfinite(g.real):
                    continue
                if abs(g.imag) <= 1e-7 * (1.0 + abs(g)):
                    found.append((g.real, w / (2.0 * math.pi)))
        exact = self._exact()
        if exact is not None and self.lr_curvature != 0.0:
            found.extend((xc / self.lr_curvature, f) for xc, f in exact.crossings())
        # Rounding is relative to the gain scale sum|C| / sum|S| (tiny at a huge lr * h: a crossing at
        # g = 3.8e-305 is a crossing, not the g = 0 one); capped at 1 so that ordinary points keep 1e-12.
        slope_size = float(np.sum(np.abs(s)))
        unit = min(1.0, float(np.ldexp(float(np.sum(np.abs(c))) / slope_size, -k))) if slope_size > 0.0 else 1.0
        out: list[tuple[float, float]] = []
        for g, f in sorted(found):
            g = 0.0 if abs(g) < 1e-12 * unit else g
            if not out or abs(g - out[-1][0]) > 1e-9 * (unit + abs(g)):
                out.append((g, f))
        return out

    def _grid(self, closed: ClosedLoop) -> FloatArray:
        """The unit-circle scan of the closed loop, denser with many closed-loop poles (staleness winds the phase)."""
        grid = [closed._scan_grid(), np.geomspace(1e-9, math.pi, 4001)]
        if 64 * self.order > grid[0].size:
            grid.append(np.linspace(0.0, math.pi, 64 * self.order + 1))
        return np.unique(np.concatenate(grid))

    def _crossings_factored(self, closed: ClosedLoop) -> list[tuple[float, float]]:
        """The crossings of a high-order loop: where ``g = -C / S`` is real on the unit circle, factor by factor."""

        def boundary(omega: FloatArray) -> ComplexArray:
            constant, slope = self.values(unit_circle(omega / (2.0 * math.pi)))
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                return np.asarray(-constant / slope, dtype=np.complex128)

        return _circle_crossings(boundary, self._grid(closed))

    def _polish(self, w: float, slope: FloatArray) -> float:
        """Refine a crossing frequency: the root of ``Im[C(e^{iw}) conj(S(e^{iw}))]`` near ``w`` (``S`` scaled)."""
        from scipy.optimize import brentq

        def imag(v: float) -> float:
            z = complex(math.cos(v), math.sin(v))
            return float((np.polyval(self.constant, z) * np.conj(np.polyval(slope, z))).imag)

        for width in (1e-6, 1e-4, 1e-3):
            lo, hi = max(w - width, 0.0), min(w + width, math.pi)
            if imag(lo) * imag(hi) < 0.0:
                return float(brentq(imag, lo, hi, xtol=1e-15, rtol=1e-15, maxiter=200))
        return w

    def stable_intervals(self) -> list[tuple[float, float]]:
        """Every interval of gain factors ``g`` (real) where the closed loop converges.

        Returns
        -------
        list of (float, float)
            ``(low, high)`` intervals of ``g`` (the ends may be infinite).

        Examples
        --------
        >>> from optfilters.margins import feedback_loop
        >>> [(round(a, 9), b) for a, b in feedback_loop("momentum", 0.05, momentum=0.9).stable_intervals()]
        [(0.0, 76.0)]
        """
        if self.degenerate is not None:
            return []  # the rate is >= 1 at every g
        points = [g for g, _ in self.crossings()]
        edges = [-math.inf, *points, math.inf]
        # a rate within rounding of 1 is marginal, never stable (a frozen loop's numerical characteristic
        # polynomial of heavy ball with momentum 1 has its rate 1 - 1e-16: it read "stable below lr*h = 4")
        rates = np.asarray(self.rate(np.array(_cell_tests(edges, 1.0))), dtype=np.float64)
        return _merge_stable(edges, (rates < 1.0 - MARGINAL_RATE_TOL).tolist())

    def gain_crossovers(self, gain: float = 1.0) -> list[float]:
        """Frequencies (cycles/step, in ``[0, 0.5]``) where ``|L| = 1``: unit-circle roots of ``g^2 S S~ - C C~``.

        Parameters
        ----------
        gain : float
            The factor ``g`` on the learning rate (1: the operating point).

        Returns
        -------
        list of float
            The crossover frequencies in cycles/step, ascending.

        Examples
        --------
        >>> from optfilters.margins import feedback_loop
        >>> [round(2 * 3.141592653589793 * f, 6) for f in feedback_loop("sgd", 0.5).gain_crossovers()]
        [0.505361]
        """
        found: list[float] = []
        if self._factors is not None and self.closed is not None:
            found.extend(self._gain_crossovers_factored(self.closed, gain))
        else:  # g^2 S S~ - C C~ divided by 4^k (S ~ 2^k): no overflow at a huge lr * h
            (s, k), c = _unit_scaled(self.slope), self.constant
            c = np.ldexp(c, -k)
            poly = gain * gain * np.convolve(s, s[::-1]) - np.convolve(c, c[::-1])
            for r in _roots(poly):
                if abs(abs(r) - 1.0) > _CIRCLE_TOL:
                    continue
                found.append(self._polish_gain(abs(math.atan2(r.imag, r.real)), gain))
        for w in (0.0, math.pi):
            value = abs(self.open_loop([w / (2.0 * math.pi)], gain)[0])
            if math.isfinite(value) and abs(value - 1.0) <= 1e-12:
                found.append(w)
        out: list[float] = []
        for w in sorted(found):
            if not out or abs(w - out[-1]) > 1e-9:
                out.append(w)
        return [w / (2.0 * math.pi) for w in out]

    def _gain_crossovers_factored(self, closed: ClosedLoop, gain: float) -> list[float]:
        """Frequencies (rad/step) where ``log |L|`` changes sign on the scan grid, refined by Brent's method."""
        from scipy.optimize import brentq

        def excess(omega: FloatArray) -> FloatArray:
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.asarray(np.log(np.abs(self.open_loop(omega / (2.0 * math.pi), gain))), dtype=np.float64)

        omega = self._grid(closed)
        omega = omega[(omega > 0.0) & (omega < math.pi)]
        values = excess(omega)
        finite = np.isfinite(values)
        change = np.flatnonzero(finite[:-1] & finite[1:] & (np.sign(values[:-1]) * np.sign(values[1:]) < 0))
        found = []
        for i in change:
            found.append(
                float(brentq(lambda v: float(excess(np.array([v]))[0]), omega[i], omega[i + 1], xtol=1e-15, rtol=1e-15))
            )
        found.extend(float(w) for w in omega[finite & (values == 0.0)])
        return found

    def _polish_gain(self, w: float, gain: float) -> float:
        from scipy.optimize import brentq

        def excess(v: float) -> float:
            value = abs(self.open_loop([v / (2.0 * math.pi)], gain)[0])
            return math.log(value) if math.isfinite(value) and value > 0 else math.inf

        for width in (1e-6, 1e-4, 1e-3):
            lo, hi = max(w - width, 1e-300), min(w + width, math.pi)
            a, b = excess(lo), excess(hi)
            if math.isfinite(a) and math.isfinite(b) and a * b < 0.0:
                return float(brentq(excess, lo, hi, xtol=1e-15, rtol=1e-15, maxiter=200))
        return w

    def reference_response(self, signal: ArrayLike) -> FloatArray:
        """The parameter's response to a moving optimum ``signal`` (``reference / P``, from rest).

        A loop around a high-order design is filtered in second-order sections
        built from its accurate closed-loop poles (the expanded ``P`` of an
        order-16 design is numerically unstable in direct form).

        Parameters
        ----------
        signal : array_like, shape (n,)
            The optimum's position per step.

        Returns
        -------
        ndarray, shape (n,)
            The parameter per step.
        """
        from scipy.signal import lfilter, sosfilt, zpk2sos

        u = np.asarray(signal, dtype=np.float64)
        factors = self._factors
        if factors is None:
            return np.asarray(lfilter(self.reference, self.polynomial(1.0), u), dtype=np.float64)
        try:
            poles = canonical_roots(self.poles(1.0), "closed-loop poles")  # exact conjugate pairs for the sections
        except ValueError:  # a near-multiple pole split unevenly: the coefficients' direct form is all there is
            return np.asarray(lfilter(self.reference, self.polynomial(1.0), u), dtype=np.float64)
        zeros = np.concatenate([factors.zeros, np.zeros(factors.b, dtype=np.complex128)])
        sos = zpk2sos(zeros, poles, factors.gain * factors.loop_gain)
        # zpk2sos pads the zeros with zeros at the origin up to the poles: the loop's delay is put back here.
        lag = min(poles.size - zeros.size, u.size)
        shifted = np.concatenate([np.zeros(lag), u[: u.size - lag]])
        return np.asarray(sosfilt(sos, shifted), dtype=np.float64)

    def final_value(self) -> float:
        """The parameter's final value after a unit step of the optimum: ``reference(1) / P(1)`` (1 without decay).

        Returns
        -------
        float
            The DC gain of ``reference / P``.
        """
        factors = self._factors
        if factors is not None:
            return factors.dc_gain()
        return float(np.sum(self.reference) / np.sum(self.polynomial(1.0)))

    def delayed(self, steps: int) -> FeedbackLoop:
        """The same loop with ``steps`` more steps of gradient staleness (``z^-steps`` on the loss gradient).

        Parameters
        ----------
        steps : int
            Extra steps of staleness (>= 0).

        Returns
        -------
        FeedbackLoop
            With ``staleness + steps``: the loss-gradient part of ``S`` delayed
            by ``steps``.

        Raises
        ------
        InvalidHyperparameterError
            When ``steps`` is not an integer >= 0.

        Examples
        --------
        >>> from optfilters.margins import feedback_loop
        >>> round(float(feedback_loop("momentum", 0.05, momentum=0.9).delayed(3).rate()), 4)
        1.0181
        """
        d = _nonnegative_int("staleness", steps)
        if d == 0:
            return self
        n = self.constant.size + d
        reference = np.concatenate([np.zeros(d), self.reference])
        slope = _pad(self.slope - _pad(self.reference, self.slope.size), n) + reference
        label = self.label if self.staleness + d == 0 else _stale_label(self.label, self.staleness + d)
        return replace(
            self,
            constant=_pad(self.constant, n),
            slope=slope,
            reference=reference,
            staleness=self.staleness + d,
            label=label,
            _cache={},
        )


def _unit_scaled(values: FloatArray) -> tuple[FloatArray, int]:
    """``(values / 2^k, k)`` with ``2^k`` the power of two at the largest magnitude (exact; ``k = 0`` for zeros)."""
    big = float(np.max(np.abs(values))) if values.size else 0.0
    k = int(np.frexp(big)[1]) if big > 0.0 and math.isfinite(big) else 0
    return np.ldexp(values, -k), k


def _roots(coefficients: FloatArray) -> ComplexArray:
    """Roots of a (palindromic or anti-palindromic) polynomial, negligible end coefficients dropped first.

    Coefficients below 1e-14 of the largest at either end are roots at
    infinity or at the origin (they come in pairs ``r``, ``1/r``); keeping them
    would overflow the companion matrix.  Unit-circle roots move by about that
    relative size.
    """
    c = np.asarray(coefficients, dtype=np.float64)
    if not np.all(np.isfinite(c)):
        raise InvalidFilterError(
            "the loop polynomial's coefficients overflow the floating-point range: lr * curvature is too large"
        )
    scale = float(np.max(np.abs(c))) if c.size else 0.0
    if scale == 0.0:
        return np.zeros(0, dtype=np.complex128)
    keep = np.flatnonzero(np.abs(c) > 1e-14 * scale)
    c = c[keep[0] : keep[-1] + 1]
    if c.size <= 1:
        return np.zeros(0, dtype=np.complex128)
    return np.asarray(np.roots(c), dtype=np.complex128)


def _loop_factors(loop: FeedbackLoop) -> _LoopFactors | None:
    """The factored form of a loop built around a high-order filter (as :class:`ClosedLoop` polishes its poles)."""
    closed = loop.closed
    if closed is None or not closed._factored:
        return None
    fact = closed._transfer.factorisation
    x = loop.lr_curvature
    factors = _LoopFactors(
        poles=np.asarray(fact.poles.values, dtype=np.complex128),
        zeros=np.asarray(fact.zeros.values, dtype=np.complex128),
        gain=float(fact.gain),
        delay=int(fact.delay),
        lam=closed.lr * closed.decoupled_decay,
        offset=closed.offset,
        loop_gain=closed.sign * x,
        staleness=loop.staleness,
        order=loop.order,
    )
    if factors.a < 0 or factors.b < 0:
        return None
    return factors


def _stale_label(label: str, d: int) -> str:
    base = label.split("; gradients ")[0]
    note = f"gradients {d} step{'s' if d != 1 else ''} stale"
    return note if base == "exact" else f"{base}; {note}"


def feedback_loop(
    model: ModelLike,
    lr_curvature: float | None = None,
    *,
    curvature: float | None = None,
    staleness: int = 0,
    second_moment: float = 1.0,
    **hyperparameters: Any,
) -> FeedbackLoop:
    """The optimizer's loop on a quadratic at an operating point, as its characteristic polynomial.

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        Catalogue name (with ``hyperparameters``), model, or gradient filter.
    lr_curvature : float, optional
        ``x = lr * h`` at the operating point (preconditioned curvature for
        linearised models).  Default: the model's ``lr`` times ``curvature``
        times the frozen normaliser's gain.
    curvature : float, optional
        ``h`` (default 1) when ``lr_curvature`` is not given.
    staleness : int
        Steps ``d`` by which the loss gradient is stale: ``g_t = h theta_{t-1-d}``
        (weight decay stays current, as an optimizer adds it at its step).
    second_moment : float
        Where a normaliser is frozen (linearised models).
    **hyperparameters
        Catalogue hyperparameters (``lr`` included).

    Returns
    -------
    FeedbackLoop

    Raises
    ------
    InvalidHyperparameterError
        For ``x <= 0``, a negative staleness or a non-positive curvature.

    Examples
    --------
    >>> from optfilters.margins import feedback_loop
    >>> round(feedback_loop("adam", lr=0.01, curvature=2.0, beta1=0.9).lr_curvature, 9)   # lr h / (1 + eps)
    0.02
    """
    m = as_model(model, **hyperparameters)
    d = _nonnegative_int("staleness", staleness)
    base = closed_loop(m, second_moment=second_moment)
    if not isinstance(base, ClosedLoop):  # Lookahead: no loop transfer function, hence no margins
        raise InvalidHyperparameterError(
            f"{m.name} is periodically time-varying (period {base.period}): it has no loop transfer function (no "
            "margins, root locus or sensitivity functions); its rate is rho(M)^(1/k) of the monodromy matrix "
            "(closed_loop(...).rate)"
        )
    if lr_curvature is None:
        h = 1.0 if curvature is None else _positive("curvature", curvature)
        x = m.lr * h * base.preconditioner
        if math.isinf(x) and m.lr > 0.0:  # finite factors whose product is beyond the double range
            factors = f"{m.lr:g} * {h:g}" + ("" if base.preconditioner == 1.0 else f" * {base.preconditioner:g}")
            raise InvalidHyperparameterError(
                f"lr * h = {factors} overflows the floating-point range (above 1.8e308): {_far_verdict(base)}, "
                "but no reading of the loop there is representable; give a smaller lr or curvature"
            )
    else:
        if curvature is not None:
            raise InvalidHyperparameterError("give lr_curvature or curvature (with the model's lr), not both")
        x = float(lr_curvature)
    x = _positive("x = lr * h", x)
    return loop_of(base, m.name, x).delayed(d)


def _far_verdict(base: ClosedLoop) -> str:
    """What the loop does at every ``lr * h`` beyond its last crossing (beyond the double range)."""
    found = base.stability()
    if any(math.isinf(hi) for _, hi in found.intervals):
        return "the loop converges there (stable for every larger lr*h)"
    if any(math.isinf(hi) for _, hi in found.marginal_intervals):
        return "the loop is marginal there (rate exactly 1)"
    return "the loop diverges there (no stable interval reaches that far)"


def loop_of(base: ClosedLoop, name: str, lr_curvature: float) -> FeedbackLoop:
    """The feedback loop of a closed loop at ``x = lr * h`` (no staleness; :meth:`FeedbackLoop.delayed` adds it).

    Parameters
    ----------
    base : ClosedLoop
        The closed loop (:func:`optfilters.closed_loop.closed_loop`).
    name : str
        The model's name.
    lr_curvature : float
        ``x = lr * h`` at the operating point.

    Returns
    -------
    FeedbackLoop
        ``C + g S`` with ``g = 1`` at ``x``.
    """
    x = float(lr_curvature)
    at_rest = replace(base, lr=0.0)
    constant = at_rest.polynomial.constant
    poly = base.polynomial
    with np.errstate(over="ignore", invalid="ignore"):
        operating = poly(x)
    if not np.all(np.isfinite(operating)):  # lr*h times the filter's coefficients (and lr * weight_decay) overflow
        terms = f" with its weight-decay terms (lr = {base.lr:g})" if base.coupled_decay or base.decoupled_decay else ""
        raise InvalidHyperparameterError(
            f"the loop's coefficients at lr*h = {x:g}{terms} overflow the floating-point range (above 1.8e308): "
            f"{_far_verdict(base)}, but no reading of the loop there is representable; give a smaller lr"
        )
    n = max(constant.size, operating.size)
    constant = _pad(constant, n)
    slope = _pad(np.asarray(operating, dtype=np.float64), n) - constant
    reference = _pad(x * poly.slope, n)
    return FeedbackLoop(
        name=name,
        constant=constant,
        slope=slope,
        lr_curvature=x,
        reference=reference,
        staleness=0,
        label=base.label,
        linearised=base.linearised,
        preconditioner=base.preconditioner,
        closed=base,
    )


# ----------------------------------------------------------------------------- step information


@dataclass(frozen=True)
class StepInfo(Plottable):
    """The closed loop's response to a unit step of the optimum (``theta_0 = 0``, the minimum moves to 1).

    Equivalently the error of a run started at distance 1 from the minimum,
    mirrored.  python-control's ``step_info`` readings, in steps.

    Attributes
    ----------
    response : ndarray
        ``theta_t`` for ``t = 0 .. N``.
    final_value : float
        The limit (1 without weight decay).
    overshoot : float
        How far the parameter goes past the minimum, as a fraction of the final value (0 when it does not).
    peak, peak_step : float, int
    rise_steps : int
        Steps from 10% to 90% of the final value.
    settling_steps : int
        First step after which ``|theta_t - final| <= 2% |final|`` for good; -1 (with the overshoot and the
        peak undetermined: nan, -1) when the response is still outside 2% at its last step.
    stable : bool
        False when the loop diverges or is marginal (the readings are then nan / -1;
        None in :meth:`as_dict`, whose ``why_null`` says why).
    name : str
    lr_curvature : float
        ``x`` at the operating point.
    staleness : int
        Steps of gradient staleness in the loop.
    label : str
        ``"exact"`` or the linearisation note.
    marginal : bool
        True when the loop's rate is within
        :data:`~optfilters.validation.MARGINAL_RATE_TOL` of 1 (then not ``stable``).

    Examples
    --------
    >>> from optfilters.margins import step_info
    >>> s = step_info("momentum", 0.05, momentum=0.9)
    >>> round(s.overshoot, 4), s.settling_steps
    (0.4779, 73)
    """

    _plot_function = "closed_loop_step_plot"

    name: str
    lr_curvature: float
    response: FloatArray
    final_value: float
    overshoot: float
    peak: float
    peak_step: int
    rise_steps: int
    settling_steps: int
    stable: bool
    staleness: int = 0
    label: str = "exact"
    marginal: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (the readings; the response as a list).

        Returns
        -------
        dict
            The fields by name.
        """
        return {
            "name": self.name,
            "lr_curvature": self.lr_curvature,
            "staleness": self.staleness,
            "stable": self.stable,
            "final_value": _finite_or_none(self.final_value),
            "overshoot": _finite_or_none(self.overshoot),
            "overshoot_percent": _finite_or_none(100.0 * self.overshoot),
            "peak": _finite_or_none(self.peak),
            "peak_step": None if self.peak_step < 0 else self.peak_step,
            "rise_steps": None if self.rise_steps < 0 else self.rise_steps,
            "settling_steps": None if self.settling_steps < 0 else self.settling_steps,
            "response": _list(self.response),
            "label": self.label,
            "marginal": self.marginal,
            "why_null": self._why_null(),
        }

    def _why_null(self) -> dict[str, str]:
        gone = "undefined: the loop is marginal (rate 1 within rounding)" if self.marginal else "diverges"
        if self.stable:
            gone = (
                f"not determined: the response is not within 2% of its final value by step {self.response.size - 1} "
                "(it settles beyond the simulated steps)"
            )
        reasons: dict[str, tuple[Any, str]] = {
            name: (getattr(self, name), gone) for name in ("final_value", "overshoot", "peak")
        }
        reasons["overshoot_percent"] = (self.overshoot, gone)
        for name in ("peak_step", "settling_steps"):
            reasons[name] = (None if getattr(self, name) < 0 else 0.0, gone)
        reached = (
            gone
            if not self.stable
            else (
                f"undefined: the response does not pass 10% and 90% of its final value within {self.response.size - 1} "
                "steps"
            )
        )
        reasons["rise_steps"] = (None if self.rise_steps < 0 else 0.0, reached)
        return null_reasons(reasons)


def _step_of(loop: FeedbackLoop, steps: int | None) -> StepInfo:
    rate, stable, marginal = loop.verdict(1.0)
    if steps is None:
        n = 200 if not stable or rate == 0.0 else int(min(max(200, 30.0 / -math.log(rate)), 1_000_000))
    else:
        n = int(steps)
    y = loop.reference_response(np.ones(n + 1))  # the reference starts with the loop's delay
    name, x, d, label = loop.name, loop.lr_curvature, loop.staleness, loop.label
    if not stable:
        nan = math.nan
        return StepInfo(name, x, y, nan, nan, nan, -1, -1, -1, False, d, label, marginal)
    final = loop.final_value()
    ref = abs(final) if final != 0.0 else 1.0
    peak_step = int(np.argmax(y * np.sign(final or 1.0)))
    peak = float(y[peak_step])
    overshoot = max(0.0, (peak - final) / ref) if final >= 0 else max(0.0, (final - peak) / ref)
    frac = y / final if final != 0.0 else y
    lo = np.flatnonzero(frac >= 0.1)
    hi = np.flatnonzero(frac >= 0.9)
    rise = int(hi[0] - lo[0]) if lo.size and hi.size else -1
    outside = np.flatnonzero(np.abs(y - final) > 0.02 * ref)
    if outside.size and outside[-1] == y.size - 1:  # not settled by the last step: the peak may come later
        return StepInfo(name, x, y, final, math.nan, math.nan, -1, rise, -1, True, d, label)
    settling = int(outside[-1] + 1) if outside.size else 0
    return StepInfo(name, x, y, final, float(overshoot), peak, peak_step, rise, settling, True, d, label)


def step_info(
    model: ModelLike,
    lr_curvature: float | None = None,
    *,
    steps: int | None = None,
    staleness: int = 0,
    **options: Any,
) -> StepInfo:
    """Closed-loop step information: overshoot of the parameter past the minimum, settling steps to 2%.

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
    lr_curvature : float, optional
        ``x = lr * h`` (see :func:`feedback_loop`).
    steps : int, optional
        Length of the simulated response (default: 30 time constants of the rate, at least 200).
    staleness : int
        Steps of gradient staleness.
    **options
        ``curvature``, ``second_moment`` and catalogue hyperparameters.

    Returns
    -------
    StepInfo

    Examples
    --------
    >>> from optfilters.margins import step_info
    >>> step_info("sgd", 0.5).settling_steps      # 0.5^t <= 0.02 from t = 6
    6
    """
    return _step_of(feedback_loop(model, lr_curvature, staleness=staleness, **options), steps)


# ----------------------------------------------------------------------------- margins


@dataclass(frozen=True)
class Margins(Plottable):
    """Gain, phase and delay margins of the optimizer loop at an operating point.

    Attributes
    ----------
    name : str
    lr_curvature : float
        ``x`` at the operating point.
    staleness : int
        Steps of gradient staleness already in the loop.
    rate : float
        Largest closed-loop pole modulus at the point.
    stable : bool
    mode : str
        The dominant closed-loop mode at the point.
    gain_margin : float
        Factor by which ``lr`` can grow before the loop diverges (inf: never;
        below 1: the point is unstable and ``lr`` must shrink by it).
    lower_gain_margin : float
        Factor down to which ``lr`` can shrink (0 for the usual loops).
    failure_frequency : float or None
        Frequency (cycles/step) of the pole that crosses the unit circle at the upper edge.
    failure_mode : str
    phase_margin : float
        Degrees (nan when the point is unstable; inf without a gain crossover).
    crossover_frequency : float or None
        Gain-crossover frequency (cycles/step) of the phase margin.
    delay_margin : float
        Steps of (continuous) delay the loop tolerates: ``PM / w_c``, the
        smallest over the gain crossovers.
    max_staleness : int
        Largest ``d`` such that every staleness ``0 .. d`` converges:
        ``ceil(delay_margin) - 1`` (no delay below the delay margin can move the
        Nyquist plot through -1), checked on the stale loops' poles up to 64
        steps; ``-1`` when the point itself diverges.
    stale_rates : tuple of float
        Rates with ``0 .. max_staleness + 1`` extra steps of staleness (at most 65 values).
    step : StepInfo
    label : str
    stable_intervals : tuple of (float, float)
        Every stable interval of the gain factor.
    crossings : tuple of (float, float)
        ``(g, frequency)`` pairs where a pole is on the unit circle.
    crossovers : tuple of (float, float, float)
        ``(frequency, phase margin, delay margin)`` per gain crossover
        (cycles/step, degrees, steps).
    linearised : bool
        True when a normaliser was frozen to build the loop.
    preconditioner : float
        The frozen normaliser's gain (1 for linear models).
    loop : FeedbackLoop or None
        The loop the margins were read from (not compared).
    marginal : bool
        True when the rate is within :data:`~optfilters.validation.MARGINAL_RATE_TOL`
        of 1 (then not ``stable``: the readings of a stable point are undefined).
    staleness_capped : bool
        True when ``max_staleness`` stopped at the search bound
        (:data:`MAX_STALENESS`): the loop tolerates at least that many steps.
    marginal_intervals : tuple of (float, float)
        For a degenerate loop (rate exactly 1 over whole intervals, never below:
        heavy ball with ``momentum = 1``), the closed intervals of the gain
        factor where the rate is exactly 1 (:attr:`FeedbackLoop.degenerate`);
        empty for every other loop.

    Non-finite readings and ``max_staleness = -1`` are None in :meth:`as_dict`,
    whose ``why_null`` says why (``diverges``, ``infinite: ...``, ``undefined: ...``).

    Examples
    --------
    >>> from optfilters.margins import margins
    >>> m = margins("momentum", 0.05, momentum=0.9)
    >>> round(m.gain_margin, 6), m.failure_frequency, round(m.phase_margin, 2), round(m.delay_margin, 2)
    (76.0, 0.5, 25.66, 2.05)
    >>> m.max_staleness, [round(r, 4) for r in m.stale_rates]
    (2, [0.9487, 0.9747, 0.9989, 1.0181])
    """

    _plot_function = "margins_plot"

    name: str
    lr_curvature: float
    staleness: int
    rate: float
    stable: bool
    mode: str
    gain_margin: float
    lower_gain_margin: float
    failure_frequency: float | None
    failure_mode: str
    phase_margin: float
    crossover_frequency: float | None
    delay_margin: float
    max_staleness: int
    stale_rates: tuple[float, ...]
    step: StepInfo
    label: str = "exact"
    linearised: bool = False
    preconditioner: float = 1.0
    stable_intervals: tuple[tuple[float, float], ...] = ()
    crossings: tuple[tuple[float, float], ...] = ()
    crossovers: tuple[tuple[float, float, float], ...] = ()
    loop: FeedbackLoop | None = field(default=None, repr=False, compare=False)
    marginal: bool = False
    staleness_capped: bool = False
    marginal_intervals: tuple[tuple[float, float], ...] = ()

    @property
    def gain_margin_db(self) -> float:
        """``20 log10(gain_margin)``."""
        g = self.gain_margin
        return 20.0 * math.log10(g) if g > 0 and math.isfinite(g) else (math.inf if g == math.inf else math.nan)

    @property
    def edge_lr_curvature(self) -> float:
        """``x`` at which the loop diverges: ``gain_margin * lr_curvature``."""
        return self.gain_margin * self.lr_curvature

    @property
    def crossover_rad(self) -> float | None:
        """The crossover frequency in rad/step."""
        f = self.crossover_frequency
        return None if f is None else 2.0 * math.pi * f

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (non-finite as None).

        Returns
        -------
        dict
            The fields by name.
        """
        return {
            "name": self.name,
            "lr_curvature": self.lr_curvature,
            "staleness": self.staleness,
            "rate": _finite_or_none(self.rate),
            "stable": self.stable,
            "mode": self.mode,
            "gain_margin": _finite_or_none(self.gain_margin),
            "gain_margin_db": _finite_or_none(self.gain_margin_db),
            "lower_gain_margin": _finite_or_none(self.lower_gain_margin),
            "edge_lr_curvature": _finite_or_none(self.edge_lr_curvature),
            "failure_frequency": self.failure_frequency,
            "failure_mode": self.failure_mode,
            "phase_margin_deg": _finite_or_none(self.phase_margin),
            "crossover_frequency": self.crossover_frequency,
            "crossover_rad_per_step": self.crossover_rad,
            "delay_margin_steps": _finite_or_none(self.delay_margin),
            "max_staleness": None if self.max_staleness < 0 else self.max_staleness,
            "max_staleness_is_lower_bound": self.staleness_capped,
            "marginal": self.marginal,
            "why_null": self._why_null(),
            "stale_rates": _list(self.stale_rates),
            "step": {k: v for k, v in self.step.as_dict().items() if k != "response"},
            "stable_intervals": [_list(i) for i in self.stable_intervals],
            "marginal_intervals": [_list(i) for i in self.marginal_intervals],
            "crossings": [{"gain": _finite_or_none(g), "frequency": f} for g, f in self.crossings],
            "gain_crossovers": [
                {"frequency": f, "phase_margin_deg": _finite_or_none(pm), "delay_steps": _finite_or_none(tau)}
                for f, pm, tau in self.crossovers
            ],
            "label": self.label,
            "linearised": self.linearised,
            "preconditioner": self.preconditioner,
        }

    def _why_null(self) -> dict[str, str]:
        """Why each null reading of :meth:`as_dict` is null."""
        if self.marginal:
            here = "undefined: the loop is marginal here (rate 1 within rounding)"
        else:
            here = "undefined: the loop diverges here"
        if self.stable:
            gain = "infinite: no larger lr diverges at this curvature"
        elif self.marginal:
            gain = here
        else:
            gain = "undefined: the loop diverges here and no smaller lr converges"
        crossover = "infinite: no gain crossover (|L| never reaches 1)" if self.stable else here
        no_crossover = "undefined: no gain crossover (|L| never reaches 1)" if self.stable else here
        reasons: dict[str, tuple[Any, str]] = {
            "rate": (self.rate, "diverges: a pole's modulus overflows"),
            "gain_margin": (self.gain_margin, gain),
            "gain_margin_db": (self.gain_margin_db, gain),
            "edge_lr_curvature": (self.edge_lr_curvature, gain),
            "lower_gain_margin": (self.lower_gain_margin, here),
            "phase_margin_deg": (self.phase_margin, crossover),
            "delay_margin_steps": (self.delay_margin, crossover),
            "max_staleness": (None if self.max_staleness < 0 else 0.0, here),
            "marginal_intervals": (_unbounded(self.marginal_intervals), _UNBOUNDED),
            "failure_frequency": (self.failure_frequency, gain),
            "crossover_frequency": (self.crossover_frequency, no_crossover),
            "crossover_rad_per_step": (self.crossover_frequency, no_crossover),
            "stale_rates": series_null_reason(
                self.stale_rates, "the rate with more stale gradients", index="extra staleness"
            ),
            "crossings": (
                0.0 if all(math.isfinite(g) for g, _ in self.crossings) else None,
                "infinite: a pole reaches the unit circle only as lr -> inf",
            ),
            "stable_intervals": (
                0.0 if all(math.isfinite(v) for iv in self.stable_intervals for v in iv) else None,
                "infinite: an unbounded stable interval of lr*h (each null end)",
            ),
            "gain_crossovers": (
                0.0 if all(math.isfinite(pm) and math.isfinite(tau) for _, pm, tau in self.crossovers) else None,
                "undefined: no phase or delay margin at that crossover (|L| = 1 at DC: no delay moves it)",
            ),
        }
        return null_reasons(reasons)


def _margins_of(loop: FeedbackLoop, max_staleness: int = MAX_STALENESS) -> Margins:
    rate, stable, marginal = loop.verdict(1.0)
    poles = loop.poles(1.0)
    crossings = loop.crossings()
    intervals = loop.stable_intervals()
    here = next((iv for iv in intervals if iv[0] < 1.0 < iv[1]), None)
    if here is not None:
        gm, lower = here[1], max(here[0], 0.0)
    else:  # unstable here: the factor down to the edge of the interval reached from small lr (below 1)
        small = next((iv for iv in intervals if iv[0] <= 0.0 < iv[1] <= 1.0), None)
        gm = small[1] if small is not None else math.nan
        lower = math.nan
    failure = None
    if math.isfinite(gm):
        nearest = min(crossings, key=lambda c: abs(c[0] - gm), default=None)
        failure = None if nearest is None else round(nearest[1], 12)
    crossovers: list[tuple[float, float, float]] = []
    pm, wc, dm = math.nan, None, math.nan
    if stable:
        best = math.inf
        for f in loop.gain_crossovers(1.0):
            value = loop.open_loop([f])[0]
            w = 2.0 * math.pi * f
            margin = (math.pi + math.atan2(value.imag, value.real)) % (2.0 * math.pi)
            wrapped = margin if margin <= math.pi else margin - 2.0 * math.pi
            tau = margin / w if w > 0 else math.inf
            crossovers.append((f, math.degrees(wrapped), tau))
            if tau < best or (tau == best and wc is None):
                best, pm, wc = tau, math.degrees(wrapped), f
        dm = best if crossovers else math.inf
        if not crossovers:
            pm = math.inf
    stale: list[float] = [rate]
    tolerated = -1
    if stable:
        # Every delay below the delay margin keeps the loop stable (the Nyquist plot of z^-tau L cannot pass
        # through -1 while tau < PM / w_c at every crossover), so ceil(DM) - 1 steps are tolerated; the stale
        # loops' poles check it directly up to _STALE_SCAN steps.
        tolerated = max_staleness if not math.isfinite(dm) else min(max_staleness, math.ceil(dm) - 1)
        for d in range(1, min(tolerated + 1, _STALE_SCAN) + 1):
            stale.append(float(loop.delayed(d).rate(1.0)))
        checked = [i for i, r in enumerate(stale) if r >= 1.0 - MARGINAL_RATE_TOL]
        if checked:
            tolerated = checked[0] - 1
    capped = stable and tolerated == max_staleness and not (math.isfinite(dm) and math.ceil(dm) - 1 == tolerated)
    step = _step_of(loop, None)
    return Margins(
        name=loop.name,
        lr_curvature=loop.lr_curvature,
        staleness=loop.staleness,
        rate=rate,
        stable=stable,
        mode=_pole_mode(poles),
        gain_margin=float(gm),
        lower_gain_margin=float(lower),
        failure_frequency=failure,
        failure_mode=crossing_mode(failure),
        phase_margin=float(pm),
        crossover_frequency=wc,
        delay_margin=float(dm),
        max_staleness=tolerated,
        stale_rates=tuple(stale),
        step=step,
        label=loop.label,
        linearised=loop.linearised,
        preconditioner=loop.preconditioner,
        stable_intervals=tuple(intervals),
        crossings=tuple(crossings),
        crossovers=tuple(crossovers),
        loop=loop,
        marginal=marginal,
        staleness_capped=capped,
        marginal_intervals=() if loop.degenerate is None else loop.degenerate.marginal,
    )


def margins(
    model: ModelLike,
    lr_curvature: float | None = None,
    *,
    staleness: int = 0,
    **options: Any,
) -> Margins:
    """Gain, phase and delay margins, staleness tolerance and step information at an operating point.

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        Catalogue name (with hyperparameters), model, or gradient filter.
    lr_curvature : float, optional
        ``x = lr * h`` (default: the model's ``lr`` times ``curvature``, times
        the normaliser's gain when linearised).
    staleness : int
        Steps of gradient staleness already in the loop.
    **options
        ``curvature``, ``second_moment`` and catalogue hyperparameters.

    Returns
    -------
    Margins

    Notes
    -----
    The gain margin is the upper end of the stable interval of the gain
    factor that contains 1, from the exact crossings of the characteristic
    polynomial (see the module notes); the phase margin is ``180 + angle L``
    at the gain crossover, the delay margin ``PM / w_c`` in steps (the
    smallest over the crossovers).  ``max_staleness`` is checked directly on
    the poles of the loops with ``d`` extra steps of staleness.

    Examples
    --------
    >>> from optfilters.margins import margins
    >>> m = margins("momentum", 0.2, momentum=0.9)
    >>> m.max_staleness, round(m.stale_rates[1], 4)    # one step of staleness diverges
    (0, 1.0488)
    >>> [round(r, 3) for r in margins("sgd", 0.05).stale_rates[:5]]   # GD speeds up with staleness
    [0.95, 0.947, 0.944, 0.94, 0.934]
    """
    return _margins_of(feedback_loop(model, lr_curvature, staleness=staleness, **options))


# ----------------------------------------------------------------------------- staleness


@dataclass(frozen=True)
class StalenessRates(Plottable):
    """Closed-loop rate against the staleness ``d`` of the gradient, at one or more operating points.

    Attributes
    ----------
    name : str
    staleness : ndarray
        ``d`` values.
    lr_curvature : ndarray
        Operating points ``x``.
    rate : ndarray
        Shape ``(len(lr_curvature), len(staleness))``.
    delay_margin : ndarray
        Per operating point, the delay margin of the undelayed loop (steps).
    label : str
        ``"exact"`` or the linearisation note.

    Examples
    --------
    >>> from optfilters.margins import staleness_rates
    >>> r = staleness_rates("momentum", [0.05, 0.2], range(4), momentum=0.9)
    >>> r.rate.round(4).tolist()
    [[0.9487, 0.9747, 0.9989, 1.0181], [0.9487, 1.0488, 1.1109, 1.1392]]
    """

    _plot_function = "staleness_rates_plot"

    name: str
    staleness: FloatArray
    lr_curvature: FloatArray
    rate: FloatArray
    delay_margin: FloatArray
    label: str = "exact"

    @property
    def stable(self) -> NDArray[np.bool_]:
        """``rate < 1``."""
        return np.asarray(self.rate < 1.0)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data.

        Returns
        -------
        dict
            The fields by name.
        """
        return {
            "name": self.name,
            "staleness": [int(d) for d in self.staleness],
            "lr_curvature": _list(self.lr_curvature),
            "rate": [_list(row) for row in self.rate],
            "delay_margin_steps": _list(self.delay_margin),
            "label": self.label,
        }


def staleness_rates(
    model: ModelLike,
    lr_curvature: float | ArrayLike,
    staleness: Iterable[int] = range(5),
    **options: Any,
) -> StalenessRates:
    """The closed-loop rate with ``d``-step-stale gradients for each ``d`` and operating point ``x``.

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        Catalogue name (with hyperparameters), model, or gradient filter.
    lr_curvature : float or array_like
        Operating points ``x = lr * h``.
    staleness : iterable of int
        The stalenesses ``d`` (steps, >= 0).
    **options
        ``curvature``, ``second_moment`` and catalogue hyperparameters (as for
        :func:`feedback_loop`).

    Returns
    -------
    StalenessRates
        ``rate[i, j]``: the largest closed-loop pole modulus at ``lr_curvature[i]``
        with ``staleness[j]`` steps of staleness.

    Examples
    --------
    >>> from optfilters.margins import staleness_rates
    >>> staleness_rates("sgd", 0.05, [0, 4]).rate.round(4).tolist()
    [[0.95, 0.9344]]
    """
    xs = np.atleast_1d(np.asarray(lr_curvature, dtype=np.float64))
    ds = np.array([_nonnegative_int("staleness", d) for d in staleness], dtype=np.float64)
    rows, margins_ = [], []
    label = "exact"
    for x in xs:
        loop = feedback_loop(model, float(x), **options)
        label = loop.label
        rows.append([float(loop.delayed(int(d)).rate(1.0)) for d in ds])
        margins_.append(_margins_of(loop, max_staleness=0).delay_margin)
    return StalenessRates(
        name=loop.name,
        staleness=ds,
        lr_curvature=xs,
        rate=np.asarray(rows, dtype=np.float64),
        delay_margin=np.asarray(margins_, dtype=np.float64),
        label=label,
    )


# ----------------------------------------------------------------------------- root locus


@dataclass(frozen=True)
class RootLocus(Plottable):
    """Closed-loop poles as the loop gain ``x = lr * h`` sweeps (see :func:`optfilters.plot.root_locus_plot`).

    Attributes
    ----------
    name : str
    lr_curvature : ndarray
        The ``x`` values, shape ``(K,)``.
    poles : ndarray
        Complex, shape ``(K, order)``, largest modulus first per row.
    open_loop_poles : ndarray
        The poles at ``x = 0`` (``z = 1`` and the filter's poles).
    zeros : ndarray
        Where poles go as ``x -> infinity`` (the filter's zeros, delays at the origin).
    crossings : tuple of (float, float)
        ``(x, frequency)`` where a pole crosses the unit circle.
    stable_interval : (float, float) or None
        The stable interval of ``x`` reached from small ``x``.
    operating_point : float or None
        The ``x`` marked on the plot.
    staleness : int
        Steps of gradient staleness in the loop.
    label : str
        ``"exact"`` or the linearisation note.
    marginal_intervals : tuple of (float, float)
        For a degenerate loop (heavy ball with ``momentum = 1``: the poles
        move along the unit circle), the closed intervals of ``x`` where the
        rate is exactly 1 (:attr:`FeedbackLoop.degenerate`); it then has no
        stable interval and no crossings.  Empty for every other loop.

    Examples
    --------
    >>> from optfilters.margins import root_locus
    >>> r = root_locus("momentum", [1.0, 3.8], momentum=0.81)
    >>> abs(r.poles[0]).round(6).tolist(), [round(v, 9) for v in r.stable_interval]
    ([0.9, 0.9], [0.0, 3.62])
    """

    _plot_function = "root_locus_plot"

    name: str
    lr_curvature: FloatArray
    poles: ComplexArray
    open_loop_poles: ComplexArray
    zeros: ComplexArray
    crossings: tuple[tuple[float, float], ...]
    stable_interval: tuple[float, float] | None
    operating_point: float | None = None
    staleness: int = 0
    label: str = "exact"
    marginal_intervals: tuple[tuple[float, float], ...] = ()

    @property
    def rate(self) -> FloatArray:
        """Largest pole modulus per ``x``."""
        return np.asarray(np.max(np.abs(self.poles), axis=-1), dtype=np.float64)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (complex as ``[re, im]``).

        Returns
        -------
        dict
            The fields by name.
        """

        def pairs(z: ArrayLike) -> list[list[float]]:
            return [[float(v.real), float(v.imag)] for v in np.asarray(z, dtype=np.complex128).ravel()]

        return {
            "name": self.name,
            "lr_curvature": _list(self.lr_curvature),
            "poles": [pairs(row) for row in self.poles],
            "rate": _list(self.rate),
            "open_loop_poles": pairs(self.open_loop_poles),
            "zeros": pairs(self.zeros),
            "crossings": [{"lr_curvature": _finite_or_none(x), "frequency": f} for x, f in self.crossings],
            "stable_interval": None if self.stable_interval is None else _list(self.stable_interval),
            "marginal_intervals": [_list(i) for i in self.marginal_intervals],
            "operating_point": self.operating_point,
            "staleness": self.staleness,
            "label": self.label,
            "why_null": self._why_null(),
        }

    def _why_null(self) -> dict[str, str]:
        """Why :meth:`as_dict`'s nulls are null: the stable interval (or its end) and the rates that overflow."""
        interval = self.stable_interval
        return null_reasons(
            {
                "stable_interval": (
                    None if interval is None else 0.0,
                    f"undefined: {marginal_text(self.marginal_intervals)}"
                    if self.marginal_intervals
                    else "undefined: no stable interval reached from small lr*h",
                ),
                "marginal_intervals": (_unbounded(self.marginal_intervals), _UNBOUNDED),
                "stable_interval[1]": (
                    0.0 if interval is None else interval[1],
                    "infinite: stable for every larger lr*h",
                ),
                "rate": (
                    0.0 if np.all(np.isfinite(self.rate)) else math.inf,
                    "diverges: a pole's modulus overflows (each null entry)",
                ),
            }
        )


def root_locus(
    model: ModelLike,
    lr_curvature: ArrayLike | None = None,
    *,
    points: int = 400,
    staleness: int = 0,
    operating_point: float | None = None,
    **options: Any,
) -> RootLocus:
    """The closed-loop poles over a sweep of ``x = lr * h``.

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
    lr_curvature : array_like, optional
        The ``x`` values (default: ``points`` values, geometric from 1e-3 of
        the stability edge to 1.5 times it, plus linear ones).
    points : int
        Number of default ``x`` values.
    staleness : int
        Steps of gradient staleness.
    operating_point : float, optional
        An ``x`` to mark.
    **options
        ``curvature`` (default 1), ``second_moment`` and catalogue hyperparameters.  The sweep scales
        the learning rate at that curvature (weight-decay terms scale with it).

    Returns
    -------
    RootLocus

    Raises
    ------
    InvalidHyperparameterError
        When ``points < 2`` or an ``lr_curvature`` value is not finite.

    Examples
    --------
    >>> from optfilters.margins import root_locus
    >>> r = root_locus("sgd", [0.5, 1.0, 3.0])
    >>> r.poles.real.round(12).ravel().tolist(), r.crossings
    ([0.5, 0.0, -2.0], ((0.0, 0.0), (2.0, 0.5)))
    """
    if int(points) < 2:
        raise InvalidHyperparameterError(f"points must be >= 2, got {points}")
    loop = feedback_loop(model, None, staleness=staleness, **options)
    x0 = loop.lr_curvature  # the gain factor g sweeps lr: x = g x0
    crossings = tuple((g * x0, f) for g, f in loop.crossings())
    intervals = [(lo * x0, hi * x0) for lo, hi in loop.stable_intervals()]
    here = next((iv for iv in intervals if iv[0] <= 0.0 < iv[1]), None)
    if lr_curvature is None:
        top = here[1] if here is not None and math.isfinite(here[1]) else 4.0
        geometric = np.geomspace(1e-3 * top, 1.5 * top, int(points) // 2)
        linear = np.linspace(0.0, 1.5 * top, int(points) - int(points) // 2)
        x = np.unique(np.concatenate([geometric, linear]))
    else:
        x = np.atleast_1d(np.asarray(lr_curvature, dtype=np.float64))
        if not np.all(np.isfinite(x)):
            raise InvalidHyperparameterError("x = lr * h values must be finite")
    exact = loop._exact()
    if exact is not None:
        with quiet_numerics():  # the exact loop takes x itself: x / x0 overflows at x = 1e308 and lr * h = 1e-3
            poles = exact.poles(x)
    else:
        with quiet_numerics():  # an x beyond x0 times the double range: an infinite gain (poles at infinity)
            gains = x / x0
        poles = loop.poles(gains)
    return RootLocus(
        name=loop.name,
        lr_curvature=x,
        poles=poles,
        open_loop_poles=_open_loop_poles(loop),
        zeros=_zeros(loop),
        crossings=crossings,
        stable_interval=None if here is None else (max(here[0], 0.0), here[1]),
        operating_point=None if operating_point is None else float(operating_point),
        staleness=loop.staleness,
        label=loop.label,
        marginal_intervals=()
        if loop.degenerate is None
        else tuple((lo * x0, hi * x0) for lo, hi in loop.degenerate.marginal),
    )


def _open_loop_poles(loop: FeedbackLoop) -> ComplexArray:
    """The closed-loop poles at ``lr = 0``: the parameter's pole ``z = 1``, the filter's own poles, the delays.

    ``C = (1 - z^-1) A`` (padded by the staleness), so its roots are exactly
    ``1``, the filter's poles (:attr:`ArmaFilter.poles`, those of
    ``optfilters poles``) and the origin: not ``np.roots`` of the product,
    which moves ``z = 1`` by rounding (momentum: 0.9999999999999994).
    """
    factors = loop._factors
    if factors is not None:
        origin = np.zeros(factors.a, dtype=np.complex128)
        return np.concatenate([[1.0 + 0j], factors.poles, origin]).astype(np.complex128)
    closed = loop.closed
    if closed is not None:
        own = np.asarray(closed._transfer.poles, dtype=np.complex128)
        delays = loop.order - 1 - own.size
        if delays >= 0:
            return np.concatenate([[1.0 + 0j], own, np.zeros(delays, dtype=np.complex128)]).astype(np.complex128)
    return np.asarray(np.roots(loop.constant), dtype=np.complex128)


def _zeros(loop: FeedbackLoop) -> ComplexArray:
    """Finite zeros of the loop in ``z``: the roots of ``z^n S(z^-1)`` (where poles go as ``x -> infinity``)."""
    factors = loop._factors
    if factors is not None:
        return np.concatenate([factors.zeros, np.zeros(factors.b, dtype=np.complex128)]).astype(np.complex128)
    coefficients = np.asarray(loop.reference, dtype=np.float64)
    if not np.any(coefficients):
        return np.zeros(0, dtype=np.complex128)
    return np.asarray(np.roots(coefficients), dtype=np.complex128)


# ----------------------------------------------------------------------------- sensitivity


@dataclass(frozen=True)
class Sensitivity(Plottable):
    """Sensitivity ``S = 1 / (1 + L)`` and complementary sensitivity ``T = L / (1 + L)`` over frequency.

    ``S`` is the error's response to a moving optimum (tracking a drifting
    minimum: continual learning, non-stationary objectives); ``T`` the
    parameter's response to the optimum, and ``T / h`` the response to
    gradient noise (without weight decay): a peak of ``|T|`` above 1 is a band
    of gradient-noise frequencies that the closed loop amplifies (heavy
    ball's resonance near the crossover).

    Attributes
    ----------
    freqs : ndarray
        Cycles/step, 0 to 0.5.
    S, T : ndarray
        Complex responses.
    peak_s, peak_t : float
        ``max |S|`` (its inverse is the modulus margin, the distance of ``L``
        from -1) and ``max |T|``.
    peak_s_frequency, peak_t_frequency : float
    noise_gain : float
        ``sum_k t_k^2`` (the squared H2 norm of ``T``): with gradient noise of
        variance ``sigma^2`` the parameter's steady-state variance is
        ``sigma^2 noise_gain / h^2`` and the loss ``sigma^2 noise_gain / (2 h)``.
    name : str
    lr_curvature : float
        ``x`` at the operating point.
    staleness : int
        Steps of gradient staleness in the loop.
    label : str
        ``"exact"`` or the linearisation note.
    linearised : bool
        True when a normaliser was frozen to build the loop.

    Examples
    --------
    >>> from optfilters.margins import sensitivity
    >>> s = sensitivity("momentum", 0.05, momentum=0.9)
    >>> round(s.peak_t, 3), round(s.peak_t_frequency, 4), round(s.noise_gain, 6)   # 2 x the NQM loss 0.126667
    (2.252, 0.0347, 0.253333)
    """

    _plot_function = "sensitivity_plot"

    name: str
    lr_curvature: float
    freqs: FloatArray
    S: ComplexArray
    T: ComplexArray
    peak_s: float
    peak_s_frequency: float
    peak_t: float
    peak_t_frequency: float
    noise_gain: float
    staleness: int = 0
    label: str = "exact"
    linearised: bool = False

    @property
    def modulus_margin(self) -> float:
        """``1 / max |S|``: the smallest distance of ``L(e^{iw})`` from -1."""
        return 1.0 / self.peak_s

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (magnitudes in linear units and dB).

        Returns
        -------
        dict
            The fields by name.
        """
        with np.errstate(divide="ignore"):
            s_db, t_db = 20.0 * np.log10(np.abs(self.S)), 20.0 * np.log10(np.abs(self.T))
        return {
            "name": self.name,
            "lr_curvature": self.lr_curvature,
            "staleness": self.staleness,
            "freqs": _list(self.freqs),
            "S_magnitude": _list(np.abs(self.S)),
            "T_magnitude": _list(np.abs(self.T)),
            "S_db": _list(s_db),
            "T_db": _list(t_db),
            "peak_s": _finite_or_none(self.peak_s),
            "peak_s_frequency": self.peak_s_frequency,
            "peak_t": _finite_or_none(self.peak_t),
            "peak_t_frequency": self.peak_t_frequency,
            "modulus_margin": _finite_or_none(self.modulus_margin),
            "noise_gain": _finite_or_none(self.noise_gain),
            "label": self.label,
            "units": {"freqs": "cycles/step"},
            "why_null": self._why_null(s_db, t_db),
        }

    def _why_null(self, s_db: FloatArray, t_db: FloatArray) -> dict[str, str]:
        """Why :meth:`as_dict`'s nulls are null: a zero magnitude in dB, a pole on the unit circle."""
        pole = "infinite: a closed-loop pole on the unit circle at that frequency"

        def every(values: ArrayLike) -> float | None:
            return 0.0 if np.all(np.isfinite(values)) else None

        return null_reasons(
            {
                "S_magnitude": (every(np.abs(self.S)), pole),
                "T_magnitude": (every(np.abs(self.T)), pole),
                "S_db": (every(s_db), "infinite: -inf dB where |S| = 0 (the loop gain is infinite there: DC)"),
                "T_db": (every(t_db), "infinite: -inf dB where |T| = 0 (the loop gain is 0 there)"),
                "peak_s": (self.peak_s, pole),
                "peak_t": (self.peak_t, pole),
                "modulus_margin": (self.modulus_margin, pole),
                "noise_gain": (self.noise_gain, "infinite: the loop is not stable (no steady-state variance)"),
            }
        )


def _sensitivities(loop: FeedbackLoop, freqs: ArrayLike) -> tuple[ComplexArray, ComplexArray]:
    """``S = C / (C + S_lr)`` and ``T = S_lr / (C + S_lr)`` at frequencies in cycles/step (factor by factor)."""
    f = np.asarray(freqs, dtype=np.float64)
    z = unit_circle(f).reshape(f.shape) if loop._factors is not None else np.exp(2j * math.pi * f)
    constant, slope = loop.values(z)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = constant + slope
        return np.asarray(constant / p, dtype=np.complex128), np.asarray(slope / p, dtype=np.complex128)


def _peak(loop: FeedbackLoop, which: int, grid: FloatArray) -> tuple[float, float]:
    """``max |S|`` (``which = 0``) or ``max |T|`` (1) over ``[0, 0.5]``: a dense grid refined by a bounded search."""
    from scipy.optimize import minimize_scalar

    def magnitude(f: float) -> float:
        return float(abs(_sensitivities(loop, f)[which]))

    values = np.abs(_sensitivities(loop, grid)[which])
    i = int(np.nanargmax(values))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    res = minimize_scalar(lambda f: -magnitude(f), bounds=(lo, hi), method="bounded", options={"xatol": 1e-12})
    if -res.fun >= values[i]:
        return float(-res.fun), float(res.x)
    return float(values[i]), float(grid[i])


def sensitivity(
    model: ModelLike,
    lr_curvature: float | None = None,
    *,
    points: int = 1025,
    staleness: int = 0,
    **options: Any,
) -> Sensitivity:
    """The sensitivity and complementary sensitivity of the optimizer loop at an operating point.

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
    lr_curvature : float, optional
        ``x = lr * h`` (see :func:`feedback_loop`).
    points : int
        Frequencies from 0 to 0.5 cycles/step.
    staleness : int
        Steps of gradient staleness.
    **options
        ``curvature``, ``second_moment`` and catalogue hyperparameters.

    Returns
    -------
    Sensitivity

    Raises
    ------
    InvalidHyperparameterError
        If the closed loop diverges or is marginal at the point (``S`` and ``T`` are then not the responses of
        anything).

    Examples
    --------
    >>> from optfilters.margins import sensitivity
    >>> s = sensitivity("sgd", 0.5)
    >>> round(s.peak_t, 6), round(s.noise_gain, 6)    # T = 0.5 z^-1 / (1 - 0.5 z^-1): sum 0.25^k / 4
    (1.0, 0.333333)
    """
    if int(points) < 2:
        raise InvalidHyperparameterError(f"points must be >= 2, got {points}")
    loop = feedback_loop(model, lr_curvature, staleness=staleness, **options)
    rate = float(loop.rate(1.0))
    if not rate < 1.0 or is_marginal(rate):
        verdict = "is marginal (rate 1 within rounding)" if is_marginal(rate) else "diverges"
        raise InvalidHyperparameterError(
            f"{loop.name}: the closed loop {verdict} at lr*h = {loop.lr_curvature:g} (rate {rate:.6g}); "
            "sensitivity functions need a convergent loop"
        )
    freqs = np.linspace(0.0, 0.5, int(points))
    s_resp, t_resp = _sensitivities(loop, freqs)
    dense = np.linspace(0.0, 0.5, 8193)
    peak_s, f_s = _peak(loop, 0, dense)
    peak_t, f_t = _peak(loop, 1, dense)
    n = 64 if rate == 0.0 else int(min(max(64, 60.0 / -math.log(rate)), 10_000_000))
    impulse = np.zeros(n)
    impulse[0] = 1.0
    response = loop.reference_response(impulse)
    noise_gain = float(np.sum(response * response))
    return Sensitivity(
        name=loop.name,
        lr_curvature=loop.lr_curvature,
        freqs=freqs,
        S=np.asarray(s_resp, dtype=np.complex128),
        T=np.asarray(t_resp, dtype=np.complex128),
        peak_s=peak_s,
        peak_s_frequency=f_s,
        peak_t=peak_t,
        peak_t_frequency=f_t,
        noise_gain=noise_gain,
        staleness=loop.staleness,
        label=loop.label,
        linearised=loop.linearised,
    )


# ----------------------------------------------------------------------------- normalised models


def nonlinear_edge_note(model: ModelLike, **hyperparameters: Any) -> str | None:
    """Why the stability edge of a normalised (or sign) optimizer is not a divergence learning rate.

    The closed-loop analysis linearises a normaliser (frozen at a second
    moment ``v``) and leaves out a sign: its edge is where the *linearised*
    loop stops converging, in preconditioned curvature.  The real update is
    bounded (the normaliser divides by a running estimate of the gradient's
    scale, which grows with the oscillation; a sign step has size ``lr``), so
    a real run past the edge oscillates around the minimum at the edge (the
    preconditioned sharpness hovers near it: the edge of stability of adaptive
    methods, Cohen et al. 2022) instead of diverging.  None for linear models.

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        Catalogue name (with hyperparameters), model, or gradient filter.
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    str or None
        The note, or None for a linear model.

    References
    ----------
    Cohen et al., "Adaptive Gradient Methods at the Edge of Stability" (2022).

    Examples
    --------
    >>> from optfilters.margins import nonlinear_edge_note
    >>> nonlinear_edge_note("sgd") is None
    True
    >>> nonlinear_edge_note("adam").split(":")[0]
    'adam normalises its step'
    """
    m = as_model(model, **hyperparameters)
    if m.normaliser is not None:
        return (
            f"{m.name} normalises its step: the edge is that of the linearised loop (normaliser frozen, lr*h in "
            "preconditioned curvature h/(sqrt(v)+eps)); a real run does not diverge past it, because v grows with "
            "the oscillation and shrinks the step: the run oscillates around the minimum at the edge (its "
            "preconditioned sharpness hovers near it) instead of diverging"
        )
    if m.nonlinearity is not None and not m.nonlinearity.elementwise:  # Muon's orthogonalisation
        return f"{m.name} {m.nonlinearity.nonlinear_description()}: the edge is that of the linear part only"
    if m.nonlinearity is not None:
        return (
            f"{m.name} takes the sign of its direction: every step has size lr, so a real run cannot diverge on a "
            "quadratic (it oscillates around the minimum with an amplitude of order lr); the edge is that of the "
            "linear part only"
        )
    return None
