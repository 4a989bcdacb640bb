"""Closed-loop analysis on a quadratic: characteristic polynomial, poles, rate, stability, tuning, maps.

On the quadratic ``f = h theta^2 / 2`` the gradient ``g_t = h theta_{t-1}`` is
fed back through the optimizer's direction filter ``H(z) = B(z^-1) / A(z^-1)``
(per unit learning rate) and ``theta_t = theta_{t-1} - lr * d_t``.  With
``x = lr * h`` the closed loop has the characteristic polynomial (powers of
``z^-1``)::

    P(z^-1) = (1 - z^-1) A(z^-1) + x z^-1 B(z^-1)

whose roots (the closed-loop poles) set the convergence rate, the largest pole
modulus.  Weight decay enters exactly: coupled decay ``wd`` adds ``lr * wd``
to the loop gain (``x -> x + lr * wd``), decoupled decay moves the plant's pole
from 1 to ``1 - lr * wd``; ``maximize`` flips the sign of ``x``.  Those two
depend on ``lr`` itself, not only on ``lr * h``: they use the model's ``lr``.

* Time-varying models (bias correction, first-step quirks, NAdam's schedule)
  are analysed in their ``t -> infinity`` LTI limit, and say so (``label``).
* Normalised models (Adam, RMSprop, Adagrad, ...) are **linearised**: the
  normaliser is frozen at a second moment ``v`` (:meth:`OptimizerModel.linearised_filter`),
  and ``x`` is ``lr`` times the *preconditioned* curvature ``h / (sqrt(v) + eps)``,
  so that the stability edge does not depend on ``v`` (Adam with ``beta1 =
  0.9``: 38).  Lion's ``sign`` is left out (direction only).

The stability interval comes from an exact scan of the unit circle: ``x`` on
the boundary solves ``P(e^{iw}) = 0``, i.e. ``x(w) = -(z - c) / H(z)`` real;
every such crossing is found (sign changes of ``Im x(w)`` on a dense grid,
refined by Brent's method, plus ``w = 0`` and ``w = pi``; the grid is refined
around every open-loop root near the circle, down to its distance from it),
and each segment between crossings is classified by the Schur-Cohn test on
the exact characteristic polynomial (:func:`optfilters.exact.is_schur_stable`:
rigorous interval arithmetic, exact rational arithmetic where that cannot
decide), so that the verdict does not depend on how accurately the
closed-loop poles are computed.  ``H`` is
evaluated from its factors (coinciding pole-zero pairs cancelled).  The familiar
shortcut ``2 / H(-1)`` is only the ``w = pi`` crossing and is not general
(:attr:`StabilityInterval.nyquist_estimate` keeps it for comparison).
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import exact as _exact
from .catalogue import CATALOGUE, CatalogueFacts, ModelLike, as_model, resolve_name
from .display import Plottable
from .errors import InvalidFilterError, InvalidHyperparameterError
from .factored import unit_circle
from .filters import ArmaFilter, cascade
from .model import OptimizerModel
from .validation import (
    MARGINAL_RATE_TOL,
    MAX_POINTS,
    check_distinct,
    check_integer,
    is_marginal,
    null_reasons,
    quiet_numerics,
    saturating_float,
    saturating_spectral_radius,
)
from .validation import finite_list as _list
from .validation import finite_or_none as _finite_or_none

__all__ = [
    "DEFAULT_TUNED",
    "MAX_TUNING_CONDITION_NUMBER",
    "CharacteristicPolynomial",
    "ClosedLoop",
    "PeriodicClosedLoop",
    "RateCurve",
    "StabilityInterval",
    "StabilityMap",
    "TuningResult",
    "as_model",
    "closed_loop",
    "closed_loop_poles",
    "convergence_rate",
    "marginal_text",
    "max_stable_lr_curvature",
    "normaliser_scale",
    "rate_curve",
    "spectral_radius",
    "stability_interval",
    "stability_map",
    "tune",
]

FloatArray = NDArray[np.float64]
ComplexArray = NDArray[np.complex128]

#: Hyperparameters tuned by default (besides ``lr``) for each catalogue entry: those that shape the filter
#: (a live view of :attr:`CatalogueEntry.tuned <optfilters.CatalogueEntry>`; the catalogue owns the fact).
DEFAULT_TUNED: Mapping[str, tuple[str, ...]] = CatalogueFacts("tuned")

#: Tuning bounds for hyperparameters whose catalogue range is unbounded (by name, or ``entry.name`` first).
DEFAULT_BOUNDS: dict[str, tuple[float, float]] = {
    "momentum": (0.0, 1.0),
    "ademamix.alpha": (0.0, 10.0),
    "lamb": (0.0, 10.0),
    "kp": (0.0, 10.0),
    "ki": (0.0, 10.0),
    "kd": (0.0, 10.0),
}

# Loops around filters with a pole closer than this to z = 1 are solved factored in w = z - 1.
_NEAR_ONE = 1e-2

# Frequency grid of the unit-circle scan (points on [0, pi]).
_SCAN_POINTS = 16385


# ----------------------------------------------------------------------------- models and loop filters


def normaliser_scale(model: OptimizerModel, second_moment: float | ArrayLike = 1.0) -> Any:
    """The frozen normaliser's gain at second moment ``v``: the preconditioner ``1 / (sqrt(v) + eps)``.

    RMS normalisers give ``1 / (sqrt(v) + eps)`` (``1 / sqrt(v + eps)`` with
    eps inside the root), Adamax ``1 / (sqrt(v) + eps)`` reading ``sqrt(v)`` as
    the peak level, Adadelta ``sqrt(eps) / sqrt(v + eps)`` (its update
    accumulator at rest); 1 for models without a normaliser.  Each stage kind
    defines its own (:meth:`optfilters.stages.Stage.frozen_gain`); this is
    :meth:`OptimizerModel.frozen_gain`, the factor by which
    :meth:`OptimizerModel.linearised_filter` scales the direction filter;
    ``v`` may be an array (one value per coordinate).

    Parameters
    ----------
    model : OptimizerModel
        The optimizer model.
    second_moment : float or array_like
        The second moment ``v`` (units of gradient squared) the normaliser is
        frozen at, ``>= 0``; any shape (one value per coordinate).

    Returns
    -------
    float or ndarray
        The preconditioner ``P`` (the multiplier of the direction), a float
        for scalar ``v``, else shaped like ``v``; ``inf`` where ``v = eps = 0``.

    Raises
    ------
    InvalidFilterError
        If ``second_moment`` has a non-finite or negative entry.

    References
    ----------
    Kingma & Ba (2015), "Adam", Algorithm 1: ``theta_t = theta_{t-1} - lr
    m_hat / (sqrt(v_hat) + eps)``, so ``P = 1 / (sqrt(v_hat) + eps)``.

    Examples
    --------
    >>> import optfilters
    >>> from optfilters.closed_loop import normaliser_scale
    >>> float(normaliser_scale(optfilters.get("adam", eps=0.0), 4.0))
    0.5
    >>> float(normaliser_scale(optfilters.get("sgd"), 4.0))
    1.0
    """
    v = np.asarray(second_moment, dtype=np.float64)
    if np.any(~np.isfinite(v)) or np.any(v < 0.0):
        raise InvalidFilterError(f"second_moment must be finite and >= 0, got {second_moment!r}")
    with np.errstate(divide="ignore"):
        scale = np.asarray(model.frozen_gain(v), dtype=np.float64)
    return scale[()] if scale.ndim == 0 else scale


def _by_modulus(eig: ArrayLike) -> ComplexArray:
    """Eigenvalues along the last axis, largest modulus first (stable order among equal moduli)."""
    eig = np.asarray(eig, dtype=np.complex128)
    order = np.argsort(-np.abs(eig), axis=-1, kind="stable")
    return np.asarray(np.take_along_axis(eig, order, axis=-1), dtype=np.complex128)


def _realise(f: ArmaFilter) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    """A state-space realisation ``(A, B, C, D)`` of ``f``: ``y = C s + D x``, ``s' = A s + B x``.

    Orders up to 2 (and FIR filters) use transposed direct form II; higher
    orders a cascade of second-order sections from the exact zeros and poles,
    which keeps the eigenvalues accurate for clustered poles.
    """
    if f.order > 2 and not f.is_fir:
        sections = f.to_sos()
        blocks = [_realise_df2t(np.array(s[:3]), np.array(s[3:])) for s in sections]
        a_mat, b_vec, c_vec, d = blocks[0]
        for a2, b2, c2, d2 in blocks[1:]:
            n1, n2 = a_mat.shape[0], a2.shape[0]
            top = np.hstack([a_mat, np.zeros((n1, n2))])
            bottom = np.hstack([np.outer(b2, c_vec), a2])
            a_mat = np.vstack([top, bottom])
            b_vec = np.concatenate([b_vec, b2 * d])
            c_vec = np.concatenate([d2 * c_vec, c2])
            d = d2 * d
        return a_mat, b_vec, c_vec, d
    return _realise_df2t(f.b, f.a)


def _realise_df2t(b: FloatArray, a: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    b = np.trim_zeros(np.asarray(b, dtype=np.float64), "b")
    a = np.trim_zeros(np.asarray(a, dtype=np.float64), "b")
    b, a = b / a[0], a / a[0]
    n = max(a.size, b.size) - 1
    if b.size == 0:
        b = np.zeros(1)
    bp = np.zeros(n + 1)
    ap = np.zeros(n + 1)
    bp[: b.size] = b
    ap[: a.size] = a
    # y = s[0] + b0 x;  s[k]' = b[k+1] x - a[k+1] y + s[k+1]
    a_mat = np.zeros((n, n))
    if n:
        a_mat[:, 0] = -ap[1:]
        a_mat[np.arange(n - 1), np.arange(1, n)] = 1.0
    b_vec = bp[1:] - ap[1:] * bp[0]
    c_vec = np.zeros(n)
    if n:
        c_vec[0] = 1.0
    return a_mat, b_vec, c_vec, float(bp[0])


# ----------------------------------------------------------------------------- the closed loop


def spectral_radius(coefficients: ArrayLike) -> FloatArray:
    """Largest root modulus of monic polynomials, vectorised over leading axes.

    ``coefficients[..., :]`` are ``[1, c1, ..., cN]`` of ``z^N + c1 z^(N-1) + ...``
    (the characteristic polynomial in powers of ``z^-1``).  Degrees up to 2
    use the closed form; higher degrees the eigenvalues of companion matrices.

    Parameters
    ----------
    coefficients : array_like, shape (..., N + 1)
        Polynomial coefficients, highest power of ``z`` first (need not be
        monic: each row is divided by its first entry); trailing zeros are
        roots at the origin.

    Returns
    -------
    ndarray, shape (...)
        The largest root modulus of each polynomial (0 for degree 0).

    Raises
    ------
    ValueError
        If ``coefficients`` is a scalar or its last axis is empty.

    Examples
    --------
    >>> from optfilters.closed_loop import spectral_radius
    >>> spectral_radius([[1.0, -1.5, 0.5], [1.0, 0.0, 0.81]]).round(12).tolist()
    [1.0, 0.9]
    """
    c = np.asarray(coefficients, dtype=np.float64)
    if c.ndim == 0 or c.shape[-1] == 0:
        raise ValueError(f"coefficients must have a last axis of length >= 1, got shape {c.shape}")
    c = c / c[..., :1]
    while c.shape[-1] > 1 and not np.any(c[..., -1]):
        c = c[..., :-1]  # roots at the origin
    n = c.shape[-1] - 1
    if n == 0:
        return np.zeros(c.shape[:-1])
    if n == 1:
        return np.abs(c[..., 1])
    if n == 2:
        # z^2 + p z + q with the root scale (the power of two nearest max(|p|, sqrt|q|)) factored out, z = unit w:
        # p^2 cannot overflow where the roots are finite (a pole of modulus 1e305 at lr * h = 1e305), and
        # scaling by a power of two is exact, so the result is the unscaled formula's wherever that one is finite.
        p, q = c[..., 1], c[..., 2]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            unit = np.ldexp(1.0, np.frexp(np.maximum(np.abs(p), np.sqrt(np.abs(q))))[1] - 1)  # 2^1024 is inf
            p, q = p / unit, q / unit / unit
            disc = p * p - 4.0 * q
            real = 0.5 * (np.abs(p) + np.sqrt(np.maximum(disc, 0.0)))
            return np.asarray(np.where(disc >= 0.0, real, np.sqrt(np.abs(q))) * unit, dtype=np.float64)
    companion = np.zeros((*c.shape[:-1], n, n))
    companion[..., 0, :] = -c[..., 1:]
    idx = np.arange(n - 1)
    companion[..., idx + 1, idx] = 1.0
    return np.asarray(saturating_spectral_radius(companion), dtype=np.float64)


@dataclass(frozen=True)
class CharacteristicPolynomial:
    """``P(z^-1; x) = constant + x * slope`` in powers of ``z^-1`` (``x = lr * h``).

    Attributes
    ----------
    constant, slope : ndarray
        Coefficients of ``z^0, z^-1, ...`` (same length); ``constant[0] == 1``.

    Examples
    --------
    >>> import optfilters
    >>> from optfilters.closed_loop import closed_loop
    >>> p = closed_loop(optfilters.get("momentum", momentum=0.9)).polynomial
    >>> p.constant.round(12).tolist(), p.slope.tolist()
    ([1.0, -1.9, 0.9], [0.0, 1.0, 0.0])
    >>> p(0.5).round(12).tolist()    # z^2 - (1 + beta - x) z + beta
    [1.0, -1.4, 0.9]
    """

    constant: FloatArray
    slope: FloatArray

    def __call__(self, lr_curvature: ArrayLike) -> FloatArray:
        """Coefficients at ``x = lr * h`` (any shape; the coefficient axis is last).

        Parameters
        ----------
        lr_curvature : float or array_like
            ``x = lr * h`` (dimensionless: learning rate times curvature, the
            preconditioned curvature for linearised models), any shape.

        Returns
        -------
        ndarray, shape ``x.shape + (n,)``
            ``constant + x * slope``.
        """
        x = np.asarray(lr_curvature, dtype=np.float64)[..., None]
        return np.asarray(self.constant + x * self.slope, dtype=np.float64)

    def as_dict(self) -> dict[str, Any]:
        """Plain lists.

        Returns
        -------
        dict
            ``constant`` and ``slope`` as lists (non-finite entries as None).
        """
        return {"constant": _list(self.constant), "slope": _list(self.slope)}


@dataclass(frozen=True)
class StabilityInterval:
    """Where the closed loop converges, in ``x = lr * h`` (preconditioned curvature when linearised).

    Attributes
    ----------
    name : str
    interval : (float, float) or None
        The stable interval reached from small positive ``x`` (``lo <= 0 < hi``,
        usually ``(0, hi)``), open at both ends; None when small positive ``x``
        is unstable.
    intervals : tuple of (float, float)
        Every stable interval of real ``x`` (ends may be infinite).
    crossings : tuple of (float, float)
        ``(x, frequency)`` where a closed-loop pole crosses the unit circle at
        ``exp(2j pi frequency)``.
    nyquist_estimate : float
        The ``z = -1`` shortcut ``2 / H(-1)`` (generalised to weight decay): equal
        to the edge for low-pass momentum filters, not in general.
    label : str
        ``"exact"``, the LTI-limit note or the linearisation note.
    linearised : bool
        True when a normaliser was frozen (``x`` is then ``lr`` times the
        preconditioned curvature).
    preconditioner : float
        The frozen normaliser's gain ``P = 1 / (sqrt(v) + eps)`` that
        multiplies the curvature (1 for linear models).
    marginal : bool
        True when the rate is exactly 1 over whole intervals of ``x``
        (:attr:`marginal_intervals`): a degenerate loop that converges for no
        ``lr * h``, whose closed-loop poles stay on the unit circle there (a
        pole no ``x`` moves: Lookahead with ``alpha = 0``, a filter without
        gain at DC; or poles that move along the circle: heavy ball with
        ``momentum = 1``) and that diverges at every other ``x``; there are
        then no stable intervals and no crossings (a crossing is an isolated
        ``x``, and these poles stay on the circle over an interval).
    marginal_intervals : tuple of (float, float)
        The closed intervals of ``x`` where the rate is exactly 1 (ends may be
        infinite; ``(0, inf)`` for a periodic loop marginal at every ``x``);
        decided exactly, not by a tolerance on a grid.

    Examples
    --------
    >>> from optfilters.closed_loop import stability_interval
    >>> s = stability_interval("momentum", momentum=0.9)
    >>> round(s.max_stable_lr_curvature, 9), s.edge_frequency
    (3.8, 0.5)
    """

    name: str
    interval: tuple[float, float] | None
    intervals: tuple[tuple[float, float], ...]
    crossings: tuple[tuple[float, float], ...]
    nyquist_estimate: float
    label: str = "exact"
    linearised: bool = False
    preconditioner: float = 1.0
    marginal: bool = False
    marginal_intervals: tuple[tuple[float, float], ...] = ()

    @property
    def max_stable_lr_curvature(self) -> float:
        """Upper edge of :attr:`interval` (nan when there is none)."""
        return self.interval[1] if self.interval is not None else math.nan

    @property
    def edge_frequency(self) -> float | None:
        """Frequency (cycles/step) at which the poles leave the unit circle at the upper edge."""
        hi = self.max_stable_lr_curvature
        if not math.isfinite(hi):
            return None
        best = min(self.crossings, key=lambda c: abs(c[0] - hi), default=None)
        return None if best is None else round(best[1], 12)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (non-finite as None).

        Returns
        -------
        dict
            The fields (and derived properties) as numbers, lists and strings.
        """
        return {
            "name": self.name,
            "max_stable_lr_curvature": _finite_or_none(self.max_stable_lr_curvature),
            "interval": None if self.interval is None else _list(self.interval),
            "intervals": [_list(i) for i in self.intervals],
            "crossings": [{"lr_curvature": _finite_or_none(x), "frequency": f} for x, f in self.crossings],
            "edge_frequency": self.edge_frequency,
            "nyquist_estimate": _finite_or_none(self.nyquist_estimate),
            "label": self.label,
            "linearised": self.linearised,
            "preconditioner": self.preconditioner,
            "marginal": self.marginal,
            "marginal_intervals": [_list(i) for i in self.marginal_intervals],
            "why_null": null_reasons(
                {
                    "max_stable_lr_curvature": (
                        self.max_stable_lr_curvature,
                        _no_edge_reason(self.interval, self.marginal_intervals),
                    ),
                    "marginal_intervals": (_unbounded(self.marginal_intervals), _UNBOUNDED),
                    "interval": (
                        None if self.interval is None else 0.0,
                        _no_edge_reason(self.interval, self.marginal_intervals),
                    ),
                    "interval[1]": (
                        0.0 if self.interval is None else self.interval[1],
                        "infinite: stable for every larger lr*h",
                    ),
                    "intervals": (
                        0.0 if all(math.isfinite(hi) for _, hi in self.intervals) else None,
                        "infinite: the last interval is stable for every larger lr*h",
                    ),
                    "edge_frequency": (
                        self.edge_frequency,
                        _no_edge_reason(self.interval, self.marginal_intervals)
                        if not math.isfinite(self.max_stable_lr_curvature)
                        else "undefined: no unit-circle crossing found at the edge",
                    ),
                    "crossings": (
                        0.0 if all(math.isfinite(x) for x, _ in self.crossings) else None,
                        "infinite: a pole reaches the unit circle only as lr*h -> inf",
                    ),
                    "nyquist_estimate": (
                        self.nyquist_estimate,
                        "undefined: a periodic loop has no H(z)"
                        if math.isnan(self.nyquist_estimate)
                        else "infinite: H(-1) = 0",
                    ),
                }
            ),
        }


_UNBOUNDED = "infinite: the marginal interval is unbounded at each null end"


def _unbounded(intervals: Iterable[tuple[float, float]]) -> float:
    """``inf`` when an interval has an infinite end (its JSON end is null), else 0 (for ``why_null``)."""
    return 0.0 if all(math.isfinite(v) for iv in intervals for v in iv) else math.inf


def _no_edge_reason(interval: tuple[float, float] | None, marginal: Sequence[tuple[float, float]]) -> str:
    """Why a stability result has no finite upper edge (the JSON's ``why_null``)."""
    if marginal:
        return f"undefined: {marginal_text(marginal)}"
    if interval is None:
        return "undefined: no stable interval reached from small lr*h"
    return "infinite: stable for every larger lr*h"


def marginal_text(marginal: Sequence[tuple[float, float]], variable: str = "lr*h", scale: float = 1.0) -> str:
    """A degenerate loop in words: where it is marginal (rate exactly 1), and that it diverges elsewhere.

    Parameters
    ----------
    marginal : sequence of (float, float)
        The closed intervals of ``x`` where the rate is exactly 1 (:attr:`StabilityInterval.marginal_intervals`).
    variable : str
        The name of ``x`` in the text.
    scale : float
        Multiplies the interval ends (a gain factor's intervals read in ``lr * h``).

    Returns
    -------
    str
        E.g. ``marginal for 0 <= lr*h <= 4 (closed-loop poles on the unit circle: rate exactly 1), diverges for
        every other lr*h``.

    Examples
    --------
    >>> from optfilters.closed_loop import marginal_text
    >>> marginal_text([(0.0, 4.0)])
    'marginal for 0 <= lr*h <= 4 (closed-loop poles on the unit circle: rate exactly 1), diverges for every other lr*h'
    """
    where = _Degenerate(tuple(marginal), False).describe(variable, scale)
    text = f"marginal for {where} (closed-loop poles on the unit circle: rate exactly 1)"
    return text if where == f"every {variable}" else f"{text}, diverges for every other {variable}"


@dataclass(frozen=True)
class RateCurve(Plottable):
    """Closed-loop rate against ``x = lr * h`` (see :func:`optfilters.plot.closed_loop_rate_plot`).

    Attributes
    ----------
    lr_curvature : ndarray, shape (n,)
        The values of ``x = lr * h``.
    rate : ndarray, shape (n,)
        The rate (largest closed-loop pole modulus, per step) at each ``x``;
        ``inf`` where the loop diverges without bound.
    stable_interval : (float, float) or None
        The stable interval of ``x`` reached from small positive ``x``.
    name : str
        The optimizer's name.
    label : str
        How exact the analysis is (as :attr:`ClosedLoop.label`).

    Examples
    --------
    >>> from optfilters.closed_loop import rate_curve
    >>> c = rate_curve("sgd", lr_curvature=[0.5, 1.0, 2.5])
    >>> c.rate.round(12).tolist(), c.stable_interval
    ([0.5, 0.0, 1.5], (0.0, 2.0))
    """

    _plot_function = "closed_loop_rate_plot"

    lr_curvature: FloatArray
    rate: FloatArray
    stable_interval: tuple[float, float] | None
    name: str = ""
    label: str = "exact"

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (non-finite as None).

        Returns
        -------
        dict
            The fields (and derived properties) as numbers, lists and strings.
        """
        return {
            "name": self.name,
            "lr_curvature": _list(self.lr_curvature),
            "rate": _list(self.rate),
            "stable_interval": None if self.stable_interval is None else _list(self.stable_interval),
            "label": self.label,
        }


def _aberth(
    roots: ArrayLike,
    evaluate: Callable[[ComplexArray, NDArray[np.intp]], tuple[Any, Any]],
    iterations: int,
    tol: float = 4e-16,
    *,
    relative: bool = False,
) -> ComplexArray:
    """Aberth-Ehrlich refinement of every root of a polynomial at once, from approximations (last axis).

    Each iteration moves every ``z_i`` by ``N_i / (1 - N_i sum_{j != i} 1 / (z_i - z_j))`` with the Newton
    correction ``N_i = p(z_i) / p'(z_i)``; ``evaluate(z, rows)`` returns ``(p(z), p'(z))`` for the batch rows
    ``rows`` (indices into the flattened leading axes), so the polynomial can be evaluated in a well-conditioned
    (factored) form instead of from expanded coefficients.  Exactly repeated starting values are separated first;
    a row stops once its steps are below ``tol`` relative (the last one applied: the convergence is cubic).

    Parameters
    ----------
    roots : array_like of complex, shape ``(..., n)``
        Approximations of the ``n`` roots (batched over leading axes).
    evaluate : callable
        ``(z, rows) -> (p(z), p'(z))`` for ``z`` of shape ``(len(rows), n)``.
    iterations : int
        Most iterations.
    tol : float
        Relative step at which a row has converged.
    relative : bool
        Measure steps against ``|z|`` (roots known to relative precision: the shifted variable of
        :class:`_ShiftedPolynomial`) instead of ``1 + |z|``.

    Returns
    -------
    ndarray of complex, shape ``(..., n)``
        The refined roots.

    References
    ----------
    O. Aberth, Iteration methods for finding all zeros of a polynomial simultaneously, Math. Comp. 27 (1973).
    """
    z0 = np.array(roots, dtype=np.complex128, copy=True)
    n = z0.shape[-1]
    if n == 0 or z0.size == 0:
        return z0
    shape = z0.shape
    z = z0.reshape(-1, n)
    size = np.abs(z) + (np.max(np.abs(z), axis=-1, keepdims=True) if relative else 1.0)
    z = z + 1e-12 * size * np.exp(1j * np.arange(n))  # separate exactly repeated starting points
    idx = np.arange(n)
    chunk = max(1, 1_000_000 // (n * n))  # bound the (rows, n, n) differences (and evaluations) held at once
    with np.errstate(all="ignore"):
        for lo in range(0, z.shape[0], chunk):
            active = np.arange(lo, min(lo + chunk, z.shape[0]))
            previous = np.full(active.size, np.inf)
            for _ in range(iterations):
                zs = z[active]
                value, slope = evaluate(zs, active)
                ratio = np.where(value == 0.0, 0.0, value / slope)
                diff = zs[:, :, None] - zs[:, None, :]
                diff[:, idx, idx] = np.inf
                repulsion = np.sum(1.0 / diff, axis=-1)
                step = ratio / (1.0 - ratio * repulsion)
                step = np.where(np.isfinite(step), step, 0.0)
                z[active] = zs - step
                moved = np.max(np.abs(step) / (np.abs(zs) if relative else 1.0 + np.abs(zs)), axis=-1)
                done = moved <= tol
                if relative:  # steps at the rounding noise of the evaluation stop shrinking: nothing left to gain
                    done |= (moved < 1e-12) & (moved >= 0.25 * previous)
                previous = moved[~done]
                active = active[~done]
                if active.size == 0:
                    break
    return np.asarray(z.reshape(shape), dtype=np.complex128)


@dataclass(frozen=True)
class _ShiftedPolynomial:
    """``F(w) = sum_t c_t prod_{r in roots[t]} (w - r)`` in the shifted variable ``w = z - 1``, kept factored.

    A loop around a low-cutoff design has its poles within ``1e-6`` of ``z = 1``: as ``z`` they hold about ten
    significant digits of their distance from 1, and that distance is all the rate depends on.  As ``w`` (``p - 1``
    is exact for ``0.5 <= p <= 2``, Sterbenz) every factor keeps full relative precision, so the roots come out
    with relative error near rounding in ``w`` and the rate ``|1 + w|`` within a few units of ``1e-16`` of the
    exact one.  Term 0 is monic and of the highest degree; the coefficients ``c_t`` are given per row.
    """

    roots: tuple[ComplexArray, ...]

    @property
    def degree(self) -> int:
        return int(self.roots[0].size)

    def expanded(self, coefficients: FloatArray, shift: float = 0.0) -> FloatArray:
        """The coefficients in ``w`` (``z = w + 1`` with ``shift = 1``; highest first) per row, from the factors."""
        n = self.degree
        out = np.zeros((coefficients.shape[0], n + 1))
        for t, roots in enumerate(self.roots):
            poly = np.real(np.poly(roots + shift)) if roots.size else np.ones(1)
            out[:, n + 1 - poly.size :] += coefficients[:, t : t + 1] * poly
        return out

    def _start(self, coefficients: FloatArray) -> ComplexArray:
        """Starting values: companion eigenvalues in ``w`` near ``w = 0``, in ``z`` away from it, where each is good.

        The expansion in ``w`` resolves the cluster at ``z = 1`` but smears a cluster at ``z = 0`` (stale gradients
        put ``d`` roots there); the expansion in ``z`` the other way round.  Where the two do not split the roots
        between them (a root near ``|w| = 1/2``), the ``w`` eigenvalues alone.
        """
        n = self.degree
        found = []
        for shift in (0.0, 1.0):
            poly = self.expanded(coefficients, shift)
            companion = np.zeros((coefficients.shape[0], n, n))
            companion[:, 0, :] = -poly[:, 1:] / poly[:, :1]
            idx = np.arange(n - 1)
            companion[:, idx + 1, idx] = 1.0
            with np.errstate(all="ignore"):
                found.append(np.linalg.eigvals(np.nan_to_num(companion)).astype(np.complex128) - shift)
        near, far = found
        keep_near, keep_far = np.abs(near) <= 0.5, np.abs(far) > 0.5
        split = np.sum(keep_near, axis=-1) + np.sum(keep_far, axis=-1) == n
        # per split row, its kept near roots then its kept far ones (a stable sort moves the kept to the front)
        candidates = np.concatenate([near, far], axis=-1)
        kept = np.concatenate([keep_near, keep_far], axis=-1)
        order = np.argsort(~kept, axis=-1, kind="stable")[:, :n]
        merged = np.take_along_axis(candidates, order, axis=-1)
        return np.where(split[:, None], merged, near)

    def evaluate(self, w: ComplexArray, coefficients: FloatArray) -> tuple[ComplexArray, ComplexArray]:
        """``(F(w), F'(w))`` factor by factor; ``coefficients`` holds one row per row of ``w``."""
        value = np.zeros_like(w)
        slope = np.zeros_like(w)
        for t, roots in enumerate(self.roots):
            c = coefficients[:, t : t + 1]
            if roots.size == 0:
                value = value + c
                continue
            factors = w[..., None] - roots  # (rows, n, m): the product and its derivative from prefix/suffix products
            ones = np.ones((*w.shape, 1), dtype=np.complex128)
            before = np.cumprod(np.concatenate([ones, factors[..., :-1]], axis=-1), axis=-1)
            after = np.cumprod(np.concatenate([ones, factors[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
            value = value + c * before[..., -1] * factors[..., -1]
            slope = slope + c * np.sum(before * after, axis=-1)
        return value, slope

    def solve(self, coefficients: ArrayLike) -> ComplexArray:
        """The roots in ``w`` for each row of ``coefficients`` (shape ``(rows, terms)``): shape ``(rows, degree)``.

        Started from companion-matrix eigenvalues (:meth:`_start`; LAPACK balances them, which takes care of
        the roots' spread of scales) and refined by Aberth-Ehrlich on :meth:`evaluate`, stopping on
        steps below rounding relative to ``|w|``; rows whose coefficients are not finite give nan.
        """
        c = np.asarray(coefficients, dtype=np.float64)
        n = self.degree
        finite = np.all(np.isfinite(c), axis=-1)
        out = np.full((c.shape[0], n), np.nan + 0j, dtype=np.complex128)
        if n == 0 or not np.any(finite):
            return out
        rows = c[finite]
        start = self._start(rows)
        out[finite] = _aberth(start, lambda w, r: self.evaluate(w, rows[r]), 100, relative=True)
        return out


def _shifted_loop(poles: ArrayLike, zeros: ArrayLike, a: int, b: int, staleness: int) -> _ShiftedPolynomial:
    """The loop polynomial ``(z - 1 + l) prod(z - p_j) z^a + (s + o z^d) prod(z - z_i) z^b`` in ``w = z - 1``.

    Its terms are ``w prod(w - q_j) (w + 1)^a``, ``prod(w - q_j) (w + 1)^a``, ``prod(w - r_i) (w + 1)^b`` and
    ``prod(w - r_i) (w + 1)^(b + d)`` (``q = p - 1``, ``r = z - 1``, the ``min(a, b)`` common roots at ``z = 0``
    removed), with the coefficients ``[1, l, s, o]`` given per row to :meth:`_ShiftedPolynomial.solve`.
    """
    m = min(a, b)
    q = np.asarray(poles, dtype=np.complex128) - 1.0
    r = np.asarray(zeros, dtype=np.complex128) - 1.0
    left = np.concatenate([q, np.full(a - m, -1.0 + 0j)])
    right = np.concatenate([r, np.full(b - m, -1.0 + 0j)])
    stale = np.concatenate([right, np.full(staleness, -1.0 + 0j)])
    return _ShiftedPolynomial((np.concatenate([[0j], left]), left, right, stale))


@dataclass(frozen=True)
class ClosedLoop:
    """An optimizer's direction filter in feedback with a quadratic of curvature ``h``.

    Build with :func:`closed_loop`.  ``x = lr * h`` throughout, with ``h`` the
    preconditioned curvature ``h * preconditioner`` for linearised models.

    Attributes
    ----------
    name : str
    filter : ArmaFilter
        The loop filter per unit learning rate and unit (preconditioned)
        curvature: the direction filter (``t -> infinity`` limit, learning-rate
        gain included), divided by the frozen normaliser's gain.
    preconditioner : float
        The frozen normaliser's gain ``1 / (sqrt(v) + eps)`` (1 for linear models).
    lr : float
        Learning rate; it matters only through weight decay.
    coupled_decay, decoupled_decay : float
        Weight decay added to the gradient (L2), or applied to the parameter.
    sign : float
        -1 for ``maximize`` (the gradient is negated), else 1.
    linearised : bool
        True when a normaliser was frozen at a second moment.
    time_varying : bool
        True when the model is time-varying and analysed in its ``t -> infinity`` limit.
    label : str
        How exact the analysis is: ``"exact"``, the time-varying note, the linearisation note.

    Notes
    -----
    The loop is that of the transfer function: pole-zero pairs of ``filter``
    that :meth:`ArmaFilter.minreal` cancels are no closed-loop poles, so
    :meth:`poles`, :meth:`rate`, :attr:`polynomial`, :attr:`order` and
    :meth:`stability` agree with one another (a cancelled pair is neither
    controllable from the gradient nor observable in the update).  The
    optimizer itself (:class:`optfilters.torch.FilterOptimizer`, the numpy
    executor) runs the filter as entered, cancelled pair included; started
    from rest, that pair's mode is not excited.

    Examples
    --------
    >>> import optfilters
    >>> from optfilters.closed_loop import closed_loop
    >>> loop = closed_loop(optfilters.get("nesterov", momentum=0.9))
    >>> loop.polynomial(1.0).round(12).tolist()     # deadbeat: both poles at the origin
    [1.0, 0.0, 0.0]
    >>> round(loop.stability().max_stable_lr_curvature, 9)   # (2 + 2 mu) / (1 + 2 mu)
    1.357142857
    """

    name: str
    filter: ArmaFilter
    preconditioner: float = 1.0
    lr: float = 1.0
    coupled_decay: float = 0.0
    decoupled_decay: float = 0.0
    sign: float = 1.0
    linearised: bool = False
    time_varying: bool = False
    label: str = "exact"
    _realisation: tuple[FloatArray, FloatArray] = field(init=False, repr=False, compare=False)
    _factored: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        a_mat, b_vec, c_vec, d = _realise(self._transfer)
        n = a_mat.shape[0]
        m0 = np.zeros((n + 1, n + 1))
        m1 = np.zeros((n + 1, n + 1))
        # state [theta, s]: theta' = c theta - (C s + D y theta); s' = A s + B y theta  (y = loop gain)
        m0[0, 0] = self.plant_pole
        m0[0, 1:] = -c_vec
        m0[1:, 1:] = a_mat
        m1[0, 0] = -d
        m1[1:, 0] = b_vec
        object.__setattr__(self, "_realisation", (m0, m1))
        transfer = self._transfer
        # Solved factored, in w = z - 1 (_shifted_roots): high orders, and any order with a pole near z = 1 (the
        # expanded coefficients of an order-2 design at cutoff 1e-6 put its rate 9e-9 off).
        near_one = bool(np.any(np.abs(transfer.factorisation.poles.values - 1.0) < _NEAR_ONE))
        object.__setattr__(self, "_factored", not transfer.is_fir and (transfer.order > 2 or near_one))

    # ------------------------------------------------------------------ loop gain
    @property
    def plant_pole(self) -> float:
        """``1 - lr * decoupled_decay``: the parameter's own pole (1 without decoupled decay)."""
        return 1.0 - self.lr * self.decoupled_decay

    @property
    def offset(self) -> float:
        """The loop gain at ``x = 0``: ``lr * preconditioner * coupled_decay``."""
        return self.lr * self.preconditioner * self.coupled_decay

    def loop_gain(self, lr_curvature: ArrayLike) -> FloatArray:
        """``sign * x + offset``: the gain multiplying the loop filter.

        Parameters
        ----------
        lr_curvature : float or array_like
            ``x = lr * h`` (dimensionless: learning rate times curvature, the
            preconditioned curvature for linearised models), any shape.

        Returns
        -------
        ndarray
            The loop gain, shaped like ``x``.
        """
        return self.sign * np.asarray(lr_curvature, dtype=np.float64) + self.offset

    @property
    def order(self) -> int:
        """Number of closed-loop poles (the order of the filter's transfer function plus one)."""
        return int(self._realisation[0].shape[0])

    @cached_property
    def polynomial(self) -> CharacteristicPolynomial:
        """``(1 - c z^-1) A + (sign x + offset) z^-1 B`` as a :class:`CharacteristicPolynomial`."""
        b, a = self._transfer.b, self._transfer.a
        n = max(a.size + 1, b.size + 1)
        constant = np.zeros(n)
        slope = np.zeros(n)
        left = np.convolve([1.0, -self.plant_pole], a)
        constant[: left.size] += left
        constant[1 : b.size + 1] += self.offset * b
        slope[1 : b.size + 1] = self.sign * b
        return CharacteristicPolynomial(constant, slope)

    def state_matrix(self, lr_curvature: ArrayLike) -> FloatArray:
        """Closed-loop state matrices ``M0 + y M1`` (state ``[theta, filter state]``), shape ``x.shape + (n, n)``.

        ``y`` is :meth:`loop_gain`; ``theta_t = M theta_{t-1}`` advances the
        parameter's error and the filter's state by one step.

        Parameters
        ----------
        lr_curvature : float or array_like
            ``x = lr * h`` (dimensionless: learning rate times curvature, the
            preconditioned curvature for linearised models), any shape.

        Returns
        -------
        ndarray, shape ``x.shape + (n, n)``
            One state matrix per ``x``; ``n`` is :attr:`order`.

        Examples
        --------
        >>> from optfilters.closed_loop import closed_loop
        >>> closed_loop("sgd").state_matrix([0.5, 1.5]).ravel().tolist()
        [0.5, -0.5]
        """
        m0, m1 = self._realisation
        y = self.loop_gain(lr_curvature)[..., None, None]
        return np.asarray(m0 + y * m1, dtype=np.float64)

    def poles(self, lr_curvature: ArrayLike) -> ComplexArray:
        """Closed-loop poles at ``x = lr * h``, largest modulus first; shape ``x.shape + (order,)``.

        Parameters
        ----------
        lr_curvature : float or array_like
            ``x = lr * h`` (dimensionless: learning rate times curvature, the
            preconditioned curvature for linearised models), any shape.

        Returns
        -------
        ndarray of complex, shape ``x.shape + (order,)``
            The eigenvalues of :meth:`state_matrix`; for filters above order 2
            or with a pole within 1e-2 of ``z = 1``, the roots of the factored
            characteristic polynomial solved in ``w = z - 1`` (to about 1e-16
            of their distance from 1 at any cutoff).

        Examples
        --------
        >>> from optfilters.closed_loop import closed_loop
        >>> p = closed_loop("momentum", momentum=0.81).poles(0.1)   # complex pair of modulus sqrt(0.81)
        >>> abs(p).round(12).tolist()
        [0.9, 0.9]
        """
        eig = self._eigenvalues(lr_curvature)
        if self._factored:
            shifted = 1.0 + self._shifted_roots(lr_curvature)
            eig = np.where(np.all(np.isfinite(shifted), axis=-1, keepdims=True), shifted, eig)
        return _by_modulus(eig)

    def _eigenvalues(self, lr_curvature: ArrayLike) -> ComplexArray:
        """The eigenvalues of :meth:`state_matrix` (unsorted), by power-of-two scaling where ``y M1`` overflows."""
        with quiet_numerics():  # a huge lr * h overflows some entries: handled below
            matrices = self.state_matrix(lr_curvature)
        finite = np.all(np.isfinite(matrices), axis=(-2, -1))
        if np.all(finite):
            return np.asarray(np.linalg.eigvals(matrices), dtype=np.complex128)
        return self._huge_gain_poles(self.loop_gain(lr_curvature), finite)

    def _huge_gain_poles(self, gain: FloatArray, finite: NDArray[np.bool_]) -> ComplexArray:
        """Eigenvalues of ``M0 + y M1`` where ``y M1`` overflows: ``2^k eig(2^-k M0 + (2^-k y) M1)``, ``2^k ~ |y|``.

        Scaling by a power of two is exact, so only the poles that are themselves beyond the double range
        saturate (to ``inf``); an infinite gain gives infinite poles.
        """
        m0, m1 = self._realisation
        k = np.where(finite | ~np.isfinite(gain), 0, np.frexp(gain)[1])
        with quiet_numerics():
            scaled = np.ldexp(m0, -k[..., None, None]) + np.ldexp(gain, -k)[..., None, None] * m1
            usable = np.all(np.isfinite(scaled), axis=(-2, -1))
            eig = np.linalg.eigvals(np.where(usable[..., None, None], scaled, 0.0)).astype(np.complex128)
            half = np.ldexp(1.0, k // 2)[..., None]
            eig = eig * half * np.ldexp(1.0, k - k // 2)[..., None]  # 2^k in two factors: 2^1024 alone is inf
        return np.asarray(np.where(usable[..., None], eig, np.inf + 0j), dtype=np.complex128)

    def rate(self, lr_curvature: ArrayLike) -> Any:
        """Convergence rate (largest closed-loop pole modulus) at ``x = lr * h``; vectorised.

        The error shrinks by this factor per step asymptotically (``< 1``:
        converges).

        Parameters
        ----------
        lr_curvature : float or array_like
            ``x = lr * h`` (dimensionless: learning rate times curvature, the
            preconditioned curvature for linearised models), any shape.

        Returns
        -------
        float or ndarray
            The rate per step, a float for scalar ``x``, else shaped like ``x``;
            ``inf`` for an infinite ``x``.

        Raises
        ------
        InvalidHyperparameterError
            If ``lr_curvature`` is not numeric or contains nan.

        Examples
        --------
        >>> from optfilters.closed_loop import closed_loop
        >>> float(closed_loop("momentum", momentum=0.9).rate(0.5).round(9))   # sqrt(0.9)
        0.948683298
        """
        try:
            x = np.asarray(lr_curvature, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidHyperparameterError(
                f"lr_curvature (x = lr * h) must be numbers, got {lr_curvature!r}"
            ) from None
        if np.any(np.isnan(x)):
            raise InvalidHyperparameterError("lr_curvature (x = lr * h) must be numbers, got nan")
        infinite = np.isinf(x)
        with quiet_numerics():  # a huge lr * h overflows to an infinite rate (unstable), without warnings
            safe = np.where(infinite, 0.0, x)
            if self.order <= 2 and not self._factored:
                out = spectral_radius(self.polynomial(safe))
            elif self._factored:  # |1 + w| from w = z - 1: the distance from 1 to full precision
                w = self._shifted_roots(safe)  # solved once (the tuning's inner loop is this call)
                out = np.asarray(np.max(np.hypot(1.0 + w.real, w.imag), axis=-1))
                lost = ~np.isfinite(out)  # rows whose gain overflows the factored form: the eigenvalues
                if np.any(lost):
                    out[lost] = np.max(np.abs(self._eigenvalues(safe[lost])), axis=-1)
            else:
                out = np.max(np.abs(self._eigenvalues(safe)), axis=-1)
        out = np.where(np.isnan(out) | infinite, np.inf, out)  # an infinite lr * h: the loop diverges
        return out[()] if np.ndim(out) == 0 else out

    @cached_property
    def _shifted(self) -> tuple[_ShiftedPolynomial, int]:
        """The characteristic polynomial of a high-order loop in ``w = z - 1``, factored, and its roots at ``z = 0``."""
        fact = self._transfer.factorisation
        n = self.order
        a = n - 1 - fact.poles.values.size
        b = n - 1 - int(fact.delay) - fact.zeros.values.size
        return _shifted_loop(fact.poles.values, fact.zeros.values, a, b, 0), min(a, b)

    def _shifted_roots(self, lr_curvature: ArrayLike) -> ComplexArray:
        """Closed-loop poles minus 1 (``w = z - 1``, to relative precision), shape ``x.shape + (order,)``.

        The characteristic polynomial ``(z - c) prod(z - p_j) z^a + y k prod(z - z_i) z^b`` is solved in ``w``
        (:class:`_ShiftedPolynomial`): the eigenvalues of the cascaded realisation, or Aberth on the polynomial in
        ``z``, leave the poles of a design with cutoff ``1e-6`` (within ``6e-6`` of ``z = 1``) wrong by ``3e-4``.
        Used for high orders and for filters with a pole near ``z = 1``; rows whose gain overflows are nan.
        """
        shifted, origin = self._shifted
        y = np.asarray(self.loop_gain(lr_curvature), dtype=np.float64)
        flat = y.reshape(-1)
        gain = float(self._transfer.factorisation.gain)
        with quiet_numerics():
            coefficients = np.stack(
                [np.ones_like(flat), np.full_like(flat, 1.0 - self.plant_pole), gain * flat, np.zeros_like(flat)], -1
            )
            w = shifted.solve(coefficients)
        w = np.concatenate([w, np.full((flat.size, origin), -1.0 + 0j)], axis=-1)
        return w.reshape((*y.shape, w.shape[-1]))

    # ------------------------------------------------------------------ stability
    @cached_property
    def _transfer(self) -> ArmaFilter:
        """The loop filter with coinciding pole-zero pairs cancelled (its transfer function)."""
        return self.filter.minreal()

    @cached_property
    def _exact_polynomial(self) -> tuple[_exact.Poly, _exact.Poly]:
        """``(constant, slope)`` of the characteristic polynomial in exact rational arithmetic."""
        num, den = self._transfer.exact
        n = max(len(den) + 1, len(num) + 1)
        constant = [Fraction(0)] * n
        slope = [Fraction(0)] * n
        c = Fraction(self.plant_pole)
        for i, v in enumerate(den):
            constant[i] += v
            constant[i + 1] -= c * v
        offset, sign = Fraction(self.offset), Fraction(self.sign)
        for i, v in enumerate(num):
            constant[i + 1] += offset * v
            slope[i + 1] = sign * v
        return tuple(constant), tuple(slope)

    def is_stable(self, lr_curvature: float) -> bool:
        """Whether every closed-loop pole at ``x = lr * h`` lies strictly inside the unit circle.

        Decided by the Schur-Cohn test on the exact characteristic polynomial
        (``x`` as the float it is; :func:`optfilters.exact.is_schur_stable`),
        not from computed poles.

        Parameters
        ----------
        lr_curvature : float
            ``x = lr * h`` (a scalar).

        Returns
        -------
        bool
            True when the loop converges at ``x`` (False for a non-finite ``x``).

        Examples
        --------
        >>> from optfilters.closed_loop import closed_loop
        >>> loop = closed_loop("momentum", momentum=0.9)
        >>> loop.is_stable(3.7999), loop.is_stable(3.8001)   # the edge 2 + 2 mu = 3.8
        (True, False)
        """
        x = float(lr_curvature)
        if not math.isfinite(x):
            return False
        return self._pencil.is_stable(x)

    @cached_property
    def _pencil(self) -> _exact.SchurPencil:
        return _exact.SchurPencil(*self._exact_polynomial)

    def _response(self, omega: FloatArray) -> ComplexArray:
        """``H(exp(i omega))`` from the factors of the transfer function."""
        return self._transfer.evaluate(unit_circle(np.asarray(omega, dtype=np.float64) / (2.0 * math.pi)))

    def _scan_grid(self) -> FloatArray:
        """The unit-circle scan: a uniform grid plus, around each root near the circle, points down to its distance.

        A closed-loop pole can cross the circle at a frequency far below the
        uniform spacing when open-loop roots sit within ``1e-4`` of it (four
        EMA(0.9999) in series cross at ``4e-5`` rad).
        """
        omega = [np.linspace(0.0, math.pi, _SCAN_POINTS)]
        fact = self._transfer.factorisation
        roots = [*fact.poles.values, *fact.zeros.values, complex(self.plant_pole)]
        offsets = np.geomspace(1e-4, 1e4, 161)
        for r in roots:
            distance = abs(1.0 - abs(r))
            if r == 0 or distance > 0.05 or distance <= 4.0 * np.finfo(np.float64).eps:
                continue  # far from the circle, or on it (x(w) -> 0 or infinity there: no crossing of its own)
            scale = distance
            theta = abs(math.atan2(r.imag, r.real))
            points = np.concatenate([theta - scale * offsets, theta + scale * offsets])
            omega.append(points[(points > 0.0) & (points < math.pi)])
        return np.unique(np.concatenate(omega))

    def _boundary(self, omega: FloatArray) -> ComplexArray:
        """``x(omega)`` that puts a closed-loop pole at ``exp(i omega)`` (complex in general)."""
        omega = np.asarray(omega, dtype=np.float64)
        z = unit_circle(omega / (2.0 * math.pi))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            q = (z - self.plant_pole) / self._response(omega)
            x = np.asarray(-self.sign * (q + self.offset), dtype=np.complex128)
        for i in np.flatnonzero(~np.isfinite(x) & ((omega == 0.0) | (omega == math.pi))):
            # 0 / 0 or inf / inf at z = +-1 (an open-loop pole there: momentum 1's z = 1): the polynomial decides
            x[i] = self._real_crossing(1 if omega[i] == 0.0 else -1)
        return x

    def _real_crossing(self, z: int) -> complex:
        """The ``x`` putting a closed-loop pole at ``z = +-1``: ``-P_0(z) / P_1(z)`` in exact arithmetic (nan: none)."""
        constant, slope = self._exact_polynomial
        point = Fraction(z)
        den = _exact._evaluate(slope, point)  # both read at the same degree: the same power of z drops out
        if den == 0:
            return complex(math.nan)
        x = saturating_float(-_exact._evaluate(constant, point) / den)
        if math.isinf(x):  # not "no edge": an edge the doubles cannot hold (b = [5e-324]: 2 / H(-1) = 6e323)
            raise InvalidFilterError(
                f"the closed loop has a pole at z = {z} at lr*h beyond the double range (|lr*h| > 1.8e+308): "
                "the filter's gain is too small to analyse; scale b up (lr*h scales inversely)"
            )
        return complex(x)

    def crossings(self) -> list[tuple[float, float]]:
        """Every real ``x`` where a closed-loop pole is on the unit circle, with its frequency (cycles/step).

        Returns
        -------
        list of (float, float)
            ``(x, frequency)`` pairs sorted by ``x``, the frequency in cycles
            per step in ``[0, 0.5]`` (the pole is at ``exp(2j pi frequency)``).

        Examples
        --------
        >>> from optfilters.closed_loop import closed_loop
        >>> [(round(x, 9), f) for x, f in closed_loop("sgd").crossings()]
        [(0.0, 0.0), (2.0, 0.5)]
        """
        return _circle_crossings(self._boundary, self._scan_grid())

    def stability(self) -> StabilityInterval:
        """The stable intervals of ``x = lr * h`` by the exact unit-circle scan (see the module notes).

        Returns
        -------
        StabilityInterval
            The stable intervals, the crossings and the ``2 / H(-1)`` estimate.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> from optfilters.closed_loop import closed_loop
        >>> s = closed_loop(ArmaFilter([0.401, 0.377], [1.0, 0.513])).stability()
        >>> round(s.max_stable_lr_curvature, 4), round(s.nyquist_estimate, 1)   # 2 / H(-1) is wrong here
        (4.0133, 40.6)
        """
        nyquist = self._boundary(np.array([math.pi]))[0]
        estimate = float(nyquist.real) if np.isfinite(nyquist) else math.inf
        degenerate = self._degenerate
        if degenerate is not None:
            return _marginal_interval(self, estimate, degenerate.marginal)
        found = self.crossings()
        points = [x for x, _ in found]
        edges = [-math.inf, *points, math.inf]
        stable = [self.is_stable(x) for x in _cell_tests(edges, 0.5)]
        return _stability_interval(self, found, edges, stable, estimate)

    @cached_property
    def _degenerate(self) -> _Degenerate | None:
        """The marginal set of a loop whose rate is 1 over an interval of ``x`` (None for any other loop).

        Decided exactly on the characteristic polynomial (:func:`_degenerate_pencil`): a pole that no ``x``
        moves off the unit circle (a zero of the filter at the plant's pole: no gain at DC), or a
        self-reciprocal loop whose poles move along the circle (heavy ball with ``momentum = 1``).
        """
        return _degenerate_pencil(*self._exact_polynomial)

    def rate_curve(self, lr_curvature: ArrayLike | None = None, points: int = 512) -> RateCurve:
        """The rate over ``x`` (default: ``points`` values from 0 to 1.25 times the stability edge).

        Parameters
        ----------
        lr_curvature : array_like, optional
            The values of ``x = lr * h`` (flattened to 1-D); default
            ``points`` values from 0 to 1.25 times the upper stability edge
            (to 4 when there is no finite edge).
        points : int
            Number of default values, in ``[1, MAX_POINTS]`` (:data:`optfilters.validation.MAX_POINTS`;
            an error naming ``points`` otherwise); at most ``MAX_POINTS`` explicit ``lr_curvature`` values.

        Returns
        -------
        RateCurve
            The rate at each ``x`` and the stable interval.

        Examples
        --------
        >>> from optfilters.closed_loop import closed_loop
        >>> c = closed_loop("sgd").rate_curve(points=5)
        >>> c.lr_curvature.tolist(), c.rate.tolist()
        ([0.0, 0.625, 1.25, 1.875, 2.5], [1.0, 0.375, 0.25, 0.875, 1.5])
        """
        return _rate_curve(self, lr_curvature, points)


def _circle_crossings(boundary: Callable[[FloatArray], ComplexArray], omega: FloatArray) -> list[tuple[float, float]]:
    """Every real gain on a unit-circle crossing: where ``boundary(w)`` (the gain putting a pole at ``e^{iw}``) is real.

    ``w = 0`` and ``w = pi`` exactly, the grid points where it is real, and the sign changes of its imaginary part
    on the grid ``omega`` (radians, ascending in ``[0, pi]``) refined by Brent's method.  Returns ``(gain,
    frequency in cycles/step)`` pairs sorted by gain, coinciding gains merged.
    """
    from scipy.optimize import brentq

    x = boundary(omega)
    im = x.imag
    scale = np.abs(x)
    found: list[tuple[float, float]] = []
    for w in (0.0, math.pi):
        value = boundary(np.array([w]))[0]
        if np.isfinite(value):
            found.append((float(value.real), w))
    finite = np.isfinite(im)
    # relative: near a double pole at z = 1 (momentum 1) x(w) ~ w^2 is tiny and Im x ~ w^3 tinier, but not real
    tol = 1e-9 * scale
    exact = np.flatnonzero(finite & (np.abs(im) <= tol))
    for i in exact[(exact > 0) & (exact < omega.size - 1)]:
        found.append((float(x[i].real), float(omega[i])))
    change = np.flatnonzero(finite[:-1] & finite[1:] & (np.sign(im[:-1]) * np.sign(im[1:]) < 0))

    def imag(w: float) -> float:
        return float(boundary(np.array([w]))[0].imag)

    for i in change:
        lo, hi = imag(omega[i]), imag(omega[i + 1])
        if not (math.isfinite(lo) and math.isfinite(hi)) or (lo > 0) == (hi > 0) or lo == 0 or hi == 0:
            continue  # the sign change came from rounding next to a pole of x(w) (a zero of H on the circle)
        w = brentq(imag, omega[i], omega[i + 1], xtol=1e-15, rtol=1e-15, maxiter=200)
        value = boundary(np.array([w]))[0]
        if np.isfinite(value) and abs(value.imag) <= 1e-7 * (1.0 + abs(value)):
            found.append((float(value.real), float(w)))
    out: list[tuple[float, float]] = []
    for x_c, w in sorted(found):
        x_c = 0.0 if abs(x_c) < 1e-12 else x_c
        if not out or abs(x_c - out[-1][0]) > 1e-12 * (1.0 + abs(x_c)):
            out.append((x_c, w / (2.0 * math.pi)))
    return out


@dataclass(frozen=True)
class _Degenerate:
    """A loop whose rate is at least 1 at every ``x`` (decided exactly by :func:`_degenerate_pencil`).

    ``marginal`` holds the closed intervals of ``x`` (ends may be infinite) where the rate is exactly 1: a
    closed-loop pole stays on the unit circle over the whole interval; outside them the loop diverges.
    ``moving`` is True when those poles move along the circle as ``x`` changes (a self-reciprocal factor),
    False when a pole stays put on it (a root common to both parts of the pencil).
    """

    marginal: tuple[tuple[float, float], ...]
    moving: bool

    def contains(self, x: float) -> bool:
        """Whether the rate at ``x`` is exactly 1 (``x`` in a closed marginal interval)."""
        return any(lo <= x <= hi for lo, hi in self.marginal)

    def describe(self, variable: str = "lr*h", scale: float = 1.0) -> str:
        """The marginal set in words (``scale`` multiplies the interval ends), e.g. ``0 <= lr*h <= 4``."""
        from .validation import fmt

        parts = []
        for lo, hi in self.marginal:
            lo, hi = lo * scale, hi * scale
            if lo <= 0.0 and math.isinf(hi):
                parts.append(f"every {variable}")
            elif math.isinf(hi):
                parts.append(f"{variable} >= {fmt(lo)}")
            elif math.isinf(lo):
                parts.append(f"{variable} <= {fmt(hi)}")
            else:
                parts.append(f"{fmt(lo)} <= {variable} <= {fmt(hi)}")
        return " and ".join(parts) if parts else f"no {variable}"


def _self_reciprocal(p: _exact.Poly, sign: int) -> bool:
    return all(u == sign * v for u, v in zip(p, reversed(p), strict=True))


def _float_poly(p: _exact.Poly) -> FloatArray:
    """Exact coefficients as floats, divided by the largest first (no overflow; only root locations matter)."""
    big = max((abs(c) for c in p), default=Fraction(0))
    return np.array([float(c / big) if big else 0.0 for c in p], dtype=np.float64)


def _circle_values(gc: _exact.Poly, gs: _exact.Poly, roots: ComplexArray) -> list[float]:
    """``x = -gc(z) / gs(z)`` (real part) at each root near the unit circle projected onto it (100-bit mpmath)."""
    import mpmath

    ctx = mpmath.mp.clone()
    ctx.prec = 100
    out = []
    num = [ctx.mpf(c.numerator) / c.denominator for c in gc]
    den = [ctx.mpf(c.numerator) / c.denominator for c in gs]
    for r in roots:
        if not (np.isfinite(r) and abs(abs(r) - 1.0) <= 1e-3):
            continue
        z = ctx.mpc(complex(r / abs(r)))
        d = ctx.polyval(den, z)
        if d != 0:
            value = float(ctx.re(-ctx.polyval(num, z) / d))
            if math.isfinite(value):
                out.append(value)
    return out


_PRIME = (1 << 61) - 1  # a Mersenne prime: the modular gcd of the coprimality test


def _coprime(p: _exact.Poly, q: _exact.Poly) -> bool:
    """True when ``p`` and ``q`` (exact, leading coefficients non-zero) certainly have no common root.

    Their gcd modulo a large prime has at least the degree of the rational gcd whenever the prime divides
    neither leading coefficient, so a constant gcd mod p proves coprimality; anything else returns False
    (the caller then runs the exact rational gcd).  Microseconds where the rational Euclid's algorithm of
    two degree-17 polynomials with 2^-1074-sized denominators takes most of a second.
    """

    def reduce(poly: _exact.Poly) -> list[int]:
        scale = math.lcm(*(c.denominator for c in poly))
        return [int(c * scale) % _PRIME for c in poly]

    def strip(poly: list[int]) -> list[int]:
        i = 0
        while i < len(poly) and poly[i] == 0:
            i += 1
        return poly[i:]

    a, b = reduce(p), reduce(q)
    if not a[0] or not b[0]:
        return False
    while b:
        if len(b) == 1:
            return True  # a non-zero constant remainder: the gcd mod p is 1
        inverse = pow(b[0], _PRIME - 2, _PRIME)
        while len(a) >= len(b):  # a mod b
            factor = a[0] * inverse % _PRIME
            a = strip([(u - factor * v) % _PRIME for u, v in zip(a, b + [0] * (len(a) - len(b)), strict=True)][1:])
        a, b = b, a
    return len(a) <= 1


def _degenerate_pencil(constant: Sequence[Any], slope: Sequence[Any]) -> _Degenerate | None:
    """Whether ``P(x) = C + x S`` keeps a pole on the unit circle over an interval of ``x``, and where (exact).

    ``C``, ``S``: Fractions in descending powers of ``z``, ``C[0] != 0 = S[0]`` (a closed loop's characteristic
    polynomial, read in powers of ``z^-1``).  Write ``P = Q G`` with ``Q = gcd(C, S)`` (the roots no ``x``
    moves) and ``G = C/Q + x S/Q``.  If a root stays on the circle over an interval, ``P`` and its reciprocal
    share a root there, so their resultant (a polynomial in ``x``) vanishes identically and they share a factor
    over ``Q(x)``; ``P`` being linear in ``x``, that factor is ``x``-free (a root of ``Q`` on the circle: a pole
    that stays put, Lookahead-like, a filter without DC gain) or it is ``G`` itself, self-reciprocal for every
    ``x`` (``C/Q`` and ``S/Q`` both palindromic or both anti-palindromic: heavy ball with momentum 1,
    ``z^2 - (2 - x) z + 1``, whose poles move along the circle).  Either way the rate is ``>= 1`` at every
    ``x``; these are the only loops whose rate is 1 over an interval, and None is returned for every other.

    The rate is exactly 1 where every root of ``G`` is in the closed disc (and ``Q`` has none outside).  That
    set changes only where a root of ``G`` reaches the circle: at ``z = +-1``, at the unit-circle roots of
    ``G_C G_S~ - G_S G_C~`` (crossings), or, for a self-reciprocal ``G`` whose ``x(z) = -G_C / G_S`` is real
    all round the circle, where ``x(z)`` is stationary (roots collide and leave the circle: the roots of
    ``G_C' G_S - G_C G_S'``).  Each cell between those points is classified by exact root counts
    (:func:`optfilters.exact.unit_circle_counts`) at one rational point inside it, so a boundary found
    inexactly can shift an end by rounding but never change a verdict.
    """
    c = tuple(constant)
    s = _exact._strip(slope)
    if not s or not c or c[0] == 0 or slope[0] != 0:
        return None
    padded = (Fraction(0),) * (len(c) - len(s)) + s
    if _coprime(c, s) and not any(_self_reciprocal(c, e) and _self_reciprocal(padded, e) for e in (1, -1)):
        return None  # no common root and P itself not self-reciprocal: the ordinary loop (the fast, usual case)
    q = _exact.poly_gcd(c, s)
    gc = _exact.poly_divmod(c, q)[0]
    gs = _exact.poly_divmod(s, q)[0]
    gs = (Fraction(0),) * (len(gc) - len(gs)) + gs
    reciprocal = len(gc) > 1 and any(_self_reciprocal(gc, e) and _self_reciprocal(gs, e) for e in (1, -1))
    fixed = _exact.unit_circle_counts(q) if len(q) > 1 else None
    if not reciprocal and (fixed is None or not fixed.on):
        return None
    if fixed is not None and fixed.outside:
        return _Degenerate((), reciprocal)  # a pole outside that no x moves: diverges at every x
    points: set[float] = set()
    for z in (Fraction(1), Fraction(-1)):
        d = _exact._evaluate(gs, z)
        if d != 0:
            points.add(float(-_exact._evaluate(gc, z) / d))
    if len(gc) > 2:
        if reciprocal:
            edge = _exact._sub(_exact.poly_mul(_exact._derivative(gc), gs), _exact.poly_mul(gc, _exact._derivative(gs)))
        else:  # reversed at G's full length (a root at the origin is a root at infinity of the reciprocal)
            edge = _exact._sub(_exact.poly_mul(gc, gs[::-1]), _exact.poly_mul(gs, gc[::-1]))
        if len(edge) > 1:
            points.update(_circle_values(gc, gs, np.roots(_float_poly(edge)).astype(np.complex128)))
    edges = [-math.inf, *sorted(points), math.inf]
    flags = []
    for test in _cell_tests(edges, 0.5):
        y = Fraction(test)
        counts = _exact.unit_circle_counts(tuple(a + y * b for a, b in zip(c, slope, strict=True)))
        flags.append(counts.outside == 0)
    merged = _merge_stable(edges, flags)
    return _Degenerate(tuple((float(lo), float(hi)) for lo, hi in merged), reciprocal)


def _periodic_rate(phases: Sequence[FloatArray]) -> FloatArray:
    """The per-step rate ``rho(A_k ... A_1)^(1/k)`` of a periodic loop, without overflow at any period.

    ``phases[j]`` holds the transition matrices of phase ``j + 1``, shape
    ``(d, n, n)`` (one per point ``d``).  The product is rescaled by its largest
    entry after every factor and the scales are kept as a logarithm, so a long
    period (Lookahead's ``k`` in the thousands) or a fast-growing loop gives a
    finite rate, or ``inf``, instead of an overflowed product (whose eigenvalues
    SciPy refuses).  A phase matrix with a non-finite entry (a curvature or
    learning rate at the floating-point limit) gives ``inf``: that loop diverges.

    Returns
    -------
    ndarray, shape (d,)
        The rate per point (``inf`` for a point that overflows).

    Examples
    --------
    >>> a = np.array([[[3.0]]])
    >>> _periodic_rate([a] * 1000).tolist()   # 3**1000 overflows; its 1000th root does not
    [3.0]
    >>> _periodic_rate([np.array([[[np.inf]]])]).tolist()
    [inf]
    """
    k = len(phases)
    first = np.asarray(phases[0], dtype=np.float64)
    d, n = first.shape[0], first.shape[-1]
    mono = np.broadcast_to(np.eye(n), (d, n, n)).copy()
    log_scale = np.zeros(d)
    bad = np.zeros(d, dtype=bool)
    with quiet_numerics():
        for phase in phases:
            a = np.asarray(phase, dtype=np.float64)
            bad |= ~np.all(np.isfinite(a), axis=(-2, -1))
            mono = np.einsum("dij,djk->dik", np.where(bad[:, None, None], 0.0, a), mono)
            scale = np.max(np.abs(mono), axis=(-2, -1))
            scale = np.where(np.isfinite(scale) & (scale > 0.0), scale, 1.0)
            mono = mono / scale[:, None, None]
            log_scale += np.log(scale)
        rho = np.max(np.abs(np.linalg.eigvals(mono)), axis=-1)
        rate = np.where(rho > 0.0, np.exp((np.log(np.where(rho > 0.0, rho, 1.0)) + log_scale) / k), 0.0)
    return np.asarray(np.where(bad, math.inf, rate), dtype=np.float64)


@dataclass(frozen=True)
class PeriodicClosedLoop:
    """The closed loop of a periodically time-varying model (Lookahead) on a quadratic, lifted over one period.

    A model whose stages repeat with period ``k`` (:attr:`OptimizerModel.period`)
    has no transfer function: its state after one period is ``X_{t+k} = M(x) X_t``
    with the *monodromy matrix* ``M(x) = A_k(x) ... A_1(x)``, the product of one
    period's transition matrices (each built from the model's own step program
    run on affine rows, the noisy-quadratic model's state space, in the
    ``t -> infinity`` limit of any other time-varying stage).  The loop
    converges iff the Floquet multipliers (the eigenvalues of ``M``) lie inside
    the unit circle; the per-step rate is ``rho(M(x))^(1/k)``.  ``x = lr * h``
    (times the frozen gains of nonlinear stages, as in :class:`ClosedLoop`).

    Build with :func:`closed_loop`.

    Attributes
    ----------
    name : str
    model : OptimizerModel
    period : int
    preconditioner : float
        The product of the nonlinear stages' frozen gains.
    gains : tuple of float
        Each nonlinear stage's frozen gain.
    lr : float
        Learning rate (it matters through weight decay).
    coupled_decay, decoupled_decay : float
        The model's weight decay (as :class:`ClosedLoop`'s).
    linearised, time_varying : bool
    label : str

    Examples
    --------
    >>> from optfilters.closed_loop import closed_loop
    >>> loop = closed_loop("lookahead", base="sgd", k=5, alpha=0.5)
    >>> x = 0.5     # SGD's one-step factor 1 - x; after k steps theta = slow + alpha (theta - slow)
    >>> round(float(loop.rate(x)), 12), round(abs(1 - 0.5 + 0.5 * (1 - x) ** 5) ** (1 / 5), 12)
    (0.875924740525, 0.875924740525)
    >>> round(loop.stability().max_stable_lr_curvature, 9)   # 1 + (2/alpha - 1)^(1/k): beyond SGD's 2
    2.245730940
    """

    name: str
    model: OptimizerModel
    period: int
    preconditioner: float = 1.0
    gains: tuple[float, ...] = ()
    lr: float = 1.0
    coupled_decay: float = 0.0
    decoupled_decay: float = 0.0
    linearised: bool = False
    time_varying: bool = True
    label: str = "exact"

    @property
    def order(self) -> int:
        """The dimension of the loop's state (the parameter and every stage's state)."""
        return int(self.state_matrix(np.zeros(1)).shape[-1])

    @property
    def polynomial(self) -> CharacteristicPolynomial:
        """Not defined: a periodically time-varying loop has no characteristic polynomial in ``x``."""
        raise InvalidFilterError(
            f"{self.name} is periodically time-varying (period {self.period}): it has no characteristic polynomial "
            "in lr*h; use rate(), poles() (the Floquet multipliers) or state_matrix() (the monodromy matrix)"
        )

    @property
    def filter(self) -> ArmaFilter:
        """Not defined: a periodically time-varying loop has no transfer function (no DC gain, no margins)."""
        raise InvalidFilterError(
            f"{self.name} is periodically time-varying (period {self.period}): it has no transfer function; "
            "use rate(), poles() (the Floquet multipliers) or state_matrix() (the monodromy matrix)"
        )

    def _phases(self, lr_curvature: ArrayLike) -> list[FloatArray]:
        """The transition matrices of each phase at the points ``x`` (raveled), each ``(x.size, n, n)``."""
        from .noisy_quadratic import _step_matrix

        x = np.asarray(lr_curvature, dtype=np.float64)
        lr = self.lr if self.lr > 0.0 else 1.0
        h = x.ravel() / (lr * self.preconditioner)
        return [
            _step_matrix(self.model, self.period * 1_000_000 + phase, lr, h, list(self.gains), limit=True)[:, :, :-1]
            for phase in range(1, self.period + 1)
        ]

    def state_matrix(self, lr_curvature: ArrayLike) -> FloatArray:
        """The monodromy matrices ``M(x) = A_k(x) ... A_1(x)``, shape ``x.shape + (n, n)``.

        Entries overflow to ``inf`` for a loop that grows fast over a long
        period; :meth:`rate` does not (it rescales, :func:`_periodic_rate`).

        Parameters
        ----------
        lr_curvature : float or array_like
            ``x = lr * h`` (dimensionless: learning rate times curvature, the
            preconditioned curvature for linearised models), any shape.

        Returns
        -------
        ndarray, shape ``x.shape + (n, n)``
            One matrix per ``x``: the state after one period from the state before it.

        Examples
        --------
        >>> from optfilters.closed_loop import closed_loop
        >>> closed_loop("lookahead", base="sgd", k=2, alpha=0.5).state_matrix(0.5).round(12).tolist()
        [[0.125, 0.5], [0.125, 0.5]]
        """
        x = np.asarray(lr_curvature, dtype=np.float64)
        mono: FloatArray | None = None
        with quiet_numerics():
            for a in self._phases(x):
                mono = a if mono is None else np.einsum("dij,djk->dik", a, mono)
        assert mono is not None
        return np.asarray(mono.reshape((*x.shape, *mono.shape[1:])), dtype=np.float64)

    def poles(self, lr_curvature: ArrayLike) -> ComplexArray:
        """The Floquet multipliers (eigenvalues of the monodromy matrix), largest modulus first.

        Parameters
        ----------
        lr_curvature : float or array_like
            ``x = lr * h`` (dimensionless: learning rate times curvature, the
            preconditioned curvature for linearised models), any shape.

        Returns
        -------
        ndarray of complex, shape ``x.shape + (n,)``
            The multipliers per period (not per step).

        Examples
        --------
        >>> from optfilters.closed_loop import closed_loop
        >>> closed_loop("lookahead", base="sgd", k=2, alpha=0.5).poles(0.5).real.round(12).tolist()
        [0.625, 0.0]
        """
        return _by_modulus(np.linalg.eigvals(self.state_matrix(lr_curvature)))

    def rate(self, lr_curvature: ArrayLike) -> Any:
        """The per-step rate ``rho(M(x))^(1/k)``; vectorised; ``inf`` where the loop overflows.

        Parameters
        ----------
        lr_curvature : float or array_like
            ``x = lr * h`` (dimensionless: learning rate times curvature, the
            preconditioned curvature for linearised models), any shape.

        Returns
        -------
        float or ndarray
            The rate per step, a float for scalar ``x``, else shaped like ``x``.

        Examples
        --------
        >>> from optfilters.closed_loop import closed_loop
        >>> round(float(closed_loop("lookahead", base="sgd", k=2, alpha=0.5).rate(0.5)), 12)   # sqrt(0.625)
        0.790569415042
        """
        x = np.asarray(lr_curvature, dtype=np.float64)
        out = _periodic_rate(self._phases(x)).reshape(x.shape)
        return out[()] if np.ndim(out) == 0 else out

    def _edge_guess(self) -> float:
        inner = [stage for stage in self.model.pipeline if stage.period is None]
        model = OptimizerModel(
            self.model.name, self.model.hyperparameters, maximize=self.model.maximize, pipeline=inner
        )
        edge = closed_loop(model, lr=self.lr).stability().max_stable_lr_curvature
        return float(edge) if math.isfinite(edge) and edge > 0 else 4.0

    def crossings(self) -> list[tuple[float, float]]:
        """Every ``x >= 0`` where a Floquet multiplier is on the unit circle, with its frequency (cycles/step).

        Found on a grid up to where the loop stays unstable (doubling it while
        the end of the grid is stable), refined by Brent's method; the frequency
        is the multiplier's angle per period divided by ``2 pi k`` (defined up to
        multiples of ``1/k``: the lifted loop aliases).

        Returns
        -------
        list of (float, float)
            ``(x, frequency)`` pairs in increasing ``x``, the frequency in cycles per step.

        Examples
        --------
        >>> from optfilters.closed_loop import closed_loop
        >>> [round(x, 9) for x, _ in closed_loop("lookahead", base="sgd", k=2, alpha=0.5).crossings()]
        [0.0, 2.0]
        """
        from scipy.optimize import brentq

        top = 2.0 * self._edge_guess()
        for _ in range(24):
            grid = np.linspace(0.0, top, 2049)
            margin = np.asarray(self.rate(grid), dtype=np.float64) - 1.0
            if margin[-1] > 0.0 and np.all(margin[-64:] > 0.0):
                break
            top *= 2.0
        found: list[tuple[float, float]] = []

        def edge(value: float) -> float:
            return float(self.rate(value)) - 1.0

        on_circle = np.abs(margin) <= MARGINAL_RATE_TOL
        for i in range(grid.size - 1):
            if on_circle[i]:
                multiplier = self.poles(grid[i])[0]
                found.append((float(grid[i]), float(abs(np.angle(multiplier))) / (2.0 * math.pi * self.period)))
                continue
            if not on_circle[i + 1] and np.sign(margin[i]) * np.sign(margin[i + 1]) < 0:
                x_c = brentq(edge, grid[i], grid[i + 1], xtol=1e-14, rtol=1e-15, maxiter=200)
                multiplier = self.poles(x_c)[0]
                found.append((float(x_c), float(abs(np.angle(multiplier))) / (2.0 * math.pi * self.period)))
        return found

    def stability(self) -> StabilityInterval:
        """The stable intervals of ``x >= 0`` (see :meth:`crossings`); ``nyquist_estimate`` is nan.

        Returns
        -------
        StabilityInterval
            The stable intervals of ``x >= 0`` and the crossings.

        Examples
        --------
        >>> from optfilters.closed_loop import closed_loop
        >>> closed_loop("lookahead", base="sgd", k=2, alpha=0.5).stability().interval
        (0.0, 2.0)
        """
        if self._unmoved_multiplier():
            return _marginal_interval(self, math.nan, ((0.0, math.inf),))
        found = self.crossings()
        points = sorted({x for x, _ in found} | {0.0})
        edges = [*points, math.inf]
        # a rate within rounding of 1 is marginal, not stable
        stable = [float(self.rate(test)) < 1.0 - MARGINAL_RATE_TOL for test in _cell_tests(edges, 0.5)]
        return _stability_interval(self, found, edges, stable, math.nan)

    def _unmoved_multiplier(self) -> bool:
        """Whether a Floquet multiplier stays on the unit circle (within rounding) at every ``x``: degenerate.

        Lookahead with ``alpha = 0`` (or below the double range's resolution)
        resets the fast weights to slow weights that never move: the
        multiplier 1 for every ``lr * h``.  Probed at points spread over four
        decades around the edge of the loop without the periodic stage (a
        multiplier that crosses the circle does so at isolated ``x``).
        """
        probes = self._edge_guess() * np.array([1e-2, 0.137, 0.71, 1.9, 13.0])
        return bool(np.all(is_marginal(self.rate(probes))))

    def rate_curve(self, lr_curvature: ArrayLike | None = None, points: int = 512) -> RateCurve:
        """The rate over ``x`` (default: ``points`` values from 0 to 1.25 times the stability edge).

        Parameters
        ----------
        lr_curvature : array_like, optional
            The values of ``x = lr * h`` (flattened to 1-D); default
            ``points`` values from 0 to 1.25 times the upper stability edge
            (to 4 when there is no finite edge).
        points : int
            Number of default values, in ``[1, MAX_POINTS]`` (:data:`optfilters.validation.MAX_POINTS`;
            an error naming ``points`` otherwise); at most ``MAX_POINTS`` explicit ``lr_curvature`` values.

        Returns
        -------
        RateCurve
            The rate at each ``x`` and the stable interval.

        Examples
        --------
        >>> from optfilters.closed_loop import closed_loop
        >>> c = closed_loop("lookahead", base="sgd", k=2, alpha=0.5).rate_curve([0.0, 1.0])
        >>> c.rate.round(12).tolist()
        [1.0, 0.707106781187]
        """
        return _rate_curve(self, lr_curvature, points)


def _cell_tests(edges: Sequence[float], whole: float) -> list[float]:
    """One test point inside each cell between consecutive ``edges`` (``whole`` when both ends are infinite)."""
    tests = []
    for lo, hi in itertools.pairwise(edges):
        if math.isinf(lo) and math.isinf(hi):
            tests.append(whole)
        elif math.isinf(lo):
            tests.append(hi - max(1.0, abs(hi)))
        elif math.isinf(hi):
            tests.append(lo + max(1.0, abs(lo)))
        else:
            tests.append(0.5 * (lo + hi))
    return tests


def _merge_stable(edges: Sequence[float], stable: Iterable[bool]) -> list[tuple[float, float]]:
    """The cells between consecutive ``edges`` flagged ``stable``, adjacent ones merged."""
    intervals: list[tuple[float, float]] = []
    for (lo, hi), ok in zip(itertools.pairwise(edges), stable, strict=True):
        if not ok:
            continue
        if intervals and intervals[-1][1] == lo:
            intervals[-1] = (intervals[-1][0], hi)
        else:
            intervals.append((lo, hi))
    return intervals


def _stability_interval(
    loop: ClosedLoop | PeriodicClosedLoop,
    found: Sequence[tuple[float, float]],
    edges: Sequence[float],
    stable: Sequence[bool],
    nyquist_estimate: float,
) -> StabilityInterval:
    """The stability result of ``loop``: the stable cells between ``edges`` merged, and the one holding 0+."""
    intervals = _merge_stable(edges, stable)
    interval = next((iv for iv in intervals if iv[0] <= 0.0 < iv[1]), None)
    return StabilityInterval(
        name=loop.name,
        interval=interval,
        intervals=tuple(intervals),
        crossings=tuple(found),
        nyquist_estimate=nyquist_estimate,
        label=loop.label,
        linearised=loop.linearised,
        preconditioner=loop.preconditioner,
    )


def _marginal_interval(
    loop: ClosedLoop | PeriodicClosedLoop, nyquist_estimate: float, marginal: tuple[tuple[float, float], ...]
) -> StabilityInterval:
    """The stability result of a degenerate loop: marginal on ``marginal`` and diverging elsewhere (no stable
    interval, no crossing)."""
    return replace(
        _stability_interval(loop, (), [], [], nyquist_estimate), marginal=bool(marginal), marginal_intervals=marginal
    )


def _rate_curve(loop: ClosedLoop | PeriodicClosedLoop, lr_curvature: ArrayLike | None, points: int) -> RateCurve:
    """``loop``'s rate over ``lr_curvature`` (default: ``points`` values up to 1.25 times the stability edge)."""
    interval = loop.stability().interval
    if lr_curvature is None:
        top = 1.25 * interval[1] if interval is not None and math.isfinite(interval[1]) else 4.0
        x = np.linspace(0.0, top, check_integer(points, "points", 1, MAX_POINTS))
    else:
        x = np.atleast_1d(np.asarray(lr_curvature, dtype=np.float64)).ravel()
        if x.size > MAX_POINTS:
            raise InvalidHyperparameterError(f"lr_curvature must hold at most {MAX_POINTS} values, got {x.size}")
    return RateCurve(x, np.asarray(loop.rate(x), dtype=np.float64), interval, loop.name, loop.label)


def _label(model: OptimizerModel, second_moment: float) -> tuple[bool, bool, str]:
    time_varying = not model.is_time_invariant
    notes = [note for stage in model.pipeline if (note := stage.linearisation_note("frozen", second_moment))]
    if time_varying:
        notes.append("t->infinity LTI limit of a time-varying model")
    return not model.is_linear, time_varying, "; ".join(notes) if notes else "exact"


def closed_loop(
    model: ModelLike, *, second_moment: float = 1.0, lr: float | None = None, **hyperparameters: Any
) -> ClosedLoop | PeriodicClosedLoop:
    """The closed loop of an optimizer on a quadratic.

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        Catalogue name, model, or gradient filter (filtered gradient descent).
    second_moment : float
        Where a normaliser is frozen (linearised models); ``x`` uses the
        preconditioned curvature, so only weight decay and eps make this matter.
    lr : float, optional
        Learning rate for weight decay (default: the model's).
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    ClosedLoop or PeriodicClosedLoop
        The loop; :class:`PeriodicClosedLoop` for a periodically
        time-varying model (Lookahead).

    Raises
    ------
    UnknownNameError
        For an unknown catalogue name.
    InvalidHyperparameterError
        For an unknown or out-of-range hyperparameter.
    InvalidFilterError
        If ``second_moment`` is negative or not finite, or the frozen
        normaliser's gain at it is not finite and positive (``v = eps = 0``).

    Examples
    --------
    >>> from optfilters.closed_loop import closed_loop
    >>> closed_loop("adam", beta1=0.9).label.split(";")[0]
    'linearised: normaliser frozen at second moment v=1'
    >>> round(closed_loop("adam", beta1=0.9).stability().max_stable_lr_curvature, 9)
    38.0
    """
    m = as_model(model, **hyperparameters)
    scale = float(normaliser_scale(m, second_moment))
    if not (math.isfinite(scale) and scale > 0.0):
        raise InvalidFilterError(
            f"{m.name}: the frozen normaliser's gain must be finite and > 0, got {scale} (at second moment "
            f"{second_moment}; with eps = 0 a zero second moment or state divides by 0 or stops every step)"
        )
    if m.period is not None:
        return _periodic_loop(m, second_moment, scale, lr)
    parts = m.direction_parts()
    loop_filter = (cascade(*parts) if len(parts) > 1 else parts[0]).scaled(m.lr_gain.limit)
    loop_lr = m.lr if lr is None else float(lr)
    coupled, decoupled, factor = _loop_decay(m, second_moment, loop_lr)
    if factor != 1.0:  # theta_t = f (theta_{t-1} - lr d_t): the pole and the loop gain both scale by f
        loop_filter = loop_filter.scaled(factor)
        decoupled = (1.0 - (1.0 - loop_lr * decoupled) * factor) / loop_lr
    linearised, time_varying, label = _label(m, second_moment)
    return ClosedLoop(
        name=m.name,
        filter=loop_filter.renamed(m.name),
        preconditioner=scale,
        lr=loop_lr,
        coupled_decay=coupled,
        decoupled_decay=decoupled,
        sign=-1.0 if m.maximize else 1.0,
        linearised=linearised,
        time_varying=time_varying,
        label=label,
    )


def _loop_decay(model: OptimizerModel, second_moment: float, lr: float) -> tuple[float, float, float]:
    """``(coupled, decoupled, factor)`` of the loop at the frozen second moment.

    A coupled decay entering after nonlinear stages (Schedule-Free AdamW adds
    it to the normalised direction) is not preconditioned by them: it counts
    divided by their frozen gains (the loop's offset is ``lr * P * coupled``
    with ``P`` the whole preconditioner).  ``factor`` is the product of the
    stages' :meth:`~optfilters.stages.Stage.loop_factor` (decay after the update).
    """
    coupled = decoupled = 0.0
    factor = 1.0
    before = 1.0
    for stage in model.pipeline:
        c, d = stage.loop_decay()
        coupled += c / before
        decoupled += d
        factor *= stage.loop_factor(lr)
        if not stage.is_linear:
            before *= float(np.asarray(stage.frozen_gain(second_moment), dtype=np.float64))
    return coupled, decoupled, factor


def _periodic_loop(m: OptimizerModel, second_moment: float, scale: float, lr: float | None) -> PeriodicClosedLoop:
    linearised, _, label = _label(m, second_moment)
    gains = tuple(float(np.asarray(stage.frozen_gain(second_moment))) for stage in m.nonlinear_stages)
    coupled, decoupled = m.loop_decay()
    note = f"periodic (period {m.period}): rate rho(M)^(1/{m.period}) of the monodromy matrix M of one period"
    label = note if label in ("exact", "t->infinity LTI limit of a time-varying model") else f"{label}; {note}"
    return PeriodicClosedLoop(
        name=m.name,
        model=m,
        period=int(m.period or 1),
        preconditioner=scale,
        gains=gains,
        lr=m.lr if lr is None else float(lr),
        coupled_decay=coupled,
        decoupled_decay=decoupled,
        linearised=linearised,
        label=label,
    )


def closed_loop_poles(model: ModelLike, lr_curvature: ArrayLike, **options: Any) -> ComplexArray:
    """Closed-loop poles at ``x = lr * h`` (largest modulus first); options as :func:`closed_loop`.

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        Catalogue name, model, or gradient filter (as :func:`closed_loop`).
    lr_curvature : float or array_like
        ``x = lr * h``, any shape.
    **options
        Keywords of :func:`closed_loop` (``second_moment``, ``lr``) and catalogue hyperparameters.

    Returns
    -------
    ndarray of complex, shape ``x.shape + (order,)``
        :meth:`ClosedLoop.poles`.

    Examples
    --------
    >>> from optfilters.closed_loop import closed_loop_poles
    >>> closed_loop_poles("momentum", [0.0, 3.0], momentum=0.5).real.round(9).tolist()
    [[1.0, 0.5], [-1.0, -0.5]]
    """
    return closed_loop(model, **options).poles(lr_curvature)


def convergence_rate(model: ModelLike, lr_curvature: ArrayLike, **options: Any) -> Any:
    """Largest closed-loop pole modulus at ``x = lr * h``; options as :func:`closed_loop`.

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        Catalogue name, model, or gradient filter (as :func:`closed_loop`).
    lr_curvature : float or array_like
        ``x = lr * h``, any shape.
    **options
        Keywords of :func:`closed_loop` (``second_moment``, ``lr``) and catalogue hyperparameters.

    Returns
    -------
    float or ndarray
        The rate per step (:meth:`ClosedLoop.rate`), shaped like ``x``.

    Examples
    --------
    >>> from optfilters.closed_loop import convergence_rate
    >>> convergence_rate("sgd", [0.5, 2.5]).tolist()
    [0.5, 1.5]
    """
    return closed_loop(model, **options).rate(lr_curvature)


def stability_interval(model: ModelLike, **options: Any) -> StabilityInterval:
    """The stable intervals of ``x = lr * h``; options as :func:`closed_loop`.

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        Catalogue name, model, or gradient filter (as :func:`closed_loop`).
    **options
        Keywords of :func:`closed_loop` (``second_moment``, ``lr``) and catalogue hyperparameters.

    Returns
    -------
    StabilityInterval
        :meth:`ClosedLoop.stability`.

    Examples
    --------
    >>> from optfilters.closed_loop import stability_interval
    >>> stability_interval("sgd").interval
    (0.0, 2.0)
    """
    return closed_loop(model, **options).stability()


def max_stable_lr_curvature(model: ModelLike, **options: Any) -> float:
    """The upper edge of the stable interval of ``lr * h`` (nan when none); options as :func:`closed_loop`.

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        Catalogue name, model, or gradient filter (as :func:`closed_loop`).
    **options
        Keywords of :func:`closed_loop` (``second_moment``, ``lr``) and catalogue hyperparameters.

    Returns
    -------
    float
        The largest stable ``x = lr * h`` (``inf`` when every positive ``x``
        is stable, nan when small positive ``x`` is unstable).

    Examples
    --------
    >>> from optfilters.closed_loop import max_stable_lr_curvature
    >>> round(max_stable_lr_curvature("momentum", momentum=0.5), 12)   # 2 (1 + mu)
    3.0
    """
    return closed_loop(model, **options).stability().max_stable_lr_curvature


def rate_curve(
    model: ModelLike, lr_curvature: ArrayLike | None = None, *, points: int = 512, **options: Any
) -> RateCurve:
    """:meth:`ClosedLoop.rate_curve` of :func:`closed_loop`.

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        Catalogue name, model, or gradient filter (as :func:`closed_loop`).
    lr_curvature : array_like, optional
        The values of ``x = lr * h`` (default: ``points`` values from 0 to
        1.25 times the stability edge).
    points : int
        Number of default values.
    **options
        Keywords of :func:`closed_loop` (``second_moment``, ``lr``) and catalogue hyperparameters.

    Returns
    -------
    RateCurve
        The rate at each ``x`` and the stable interval.

    Examples
    --------
    >>> from optfilters.closed_loop import rate_curve
    >>> rate_curve("sgd", points=3).rate.tolist()
    [1.0, 0.25, 1.5]
    """
    return closed_loop(model, **options).rate_curve(lr_curvature, points=points)


# ----------------------------------------------------------------------------- maps


@dataclass(frozen=True)
class StabilityMap(Plottable):
    """Closed-loop rate over a grid of one hyperparameter (rows) and ``lr * h`` (columns).

    See :func:`optfilters.plot.stability_map_plot`.

    Attributes
    ----------
    name : str
        The optimizer's catalogue name.
    parameter : str
        The hyperparameter on the rows.
    parameter_values : ndarray, shape (rows,)
        Its values.
    lr_curvature : ndarray, shape (columns,)
        The values of ``x = lr * h``.
    rate : ndarray, shape (rows, columns)
        The closed-loop rate per step at each pair.
    label : str
        How exact the analysis is (as :attr:`ClosedLoop.label`).

    Examples
    --------
    >>> from optfilters.closed_loop import stability_map
    >>> m = stability_map("momentum", "momentum", [0.0, 0.5], [1.0, 2.5])
    >>> m.rate.round(12).tolist()
    [[0.0, 1.5], [0.707106781187, 0.707106781187]]
    >>> m.stable.tolist()
    [[True, False], [True, True]]
    """

    _plot_function = "stability_map_plot"

    name: str
    parameter: str
    parameter_values: FloatArray
    lr_curvature: FloatArray
    rate: FloatArray
    label: str = "exact"

    @property
    def stable(self) -> NDArray[np.bool_]:
        """``rate < 1``."""
        return np.asarray(self.rate < 1.0)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (non-finite as None).

        Returns
        -------
        dict
            The fields (and derived properties) as numbers, lists and strings.
        """
        return {
            "name": self.name,
            "parameter": self.parameter,
            "parameter_values": _list(self.parameter_values),
            "lr_curvature": _list(self.lr_curvature),
            "rate": [_list(row) for row in self.rate],
            "label": self.label,
        }


def _catalogue_base(model: ModelLike, hyperparameters: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    if isinstance(model, str):
        name = resolve_name(model)
        return name, dict(hyperparameters)
    if isinstance(model, OptimizerModel) and model.name in CATALOGUE:
        return model.name, {**dict(model.hyperparameters), **hyperparameters}
    raise InvalidHyperparameterError("hyperparameter maps and tuning need a catalogue optimizer (a name)")


def _bounds(name: str, parameter: str, given: Mapping[str, tuple[float, float]] | None) -> tuple[float, float]:
    if given and parameter in given:
        lo, hi = (float(v) for v in given[parameter])
    else:
        spec = CATALOGUE[name].hyperparameter(parameter)
        if spec.kind != "float":
            raise InvalidHyperparameterError(f"{parameter} is not a continuous hyperparameter of {name}")
        default = DEFAULT_BOUNDS.get(f"{name}.{parameter}", DEFAULT_BOUNDS.get(parameter))
        lo = spec.low if spec.low is not None else (default[0] if default else None)  # type: ignore[assignment]
        hi = spec.high if spec.high is not None else (default[1] if default else None)  # type: ignore[assignment]
        if lo is None or hi is None:
            raise InvalidHyperparameterError(f"{parameter} of {name} is unbounded: give bounds for it")
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise InvalidHyperparameterError(f"bounds of {parameter} must be finite with low < high, got ({lo}, {hi})")
    return lo, hi


def stability_map(
    model: ModelLike,
    parameter: str,
    values: ArrayLike | None = None,
    lr_curvature: ArrayLike | None = None,
    *,
    second_moment: float = 1.0,
    points: int = 256,
    **hyperparameters: Any,
) -> StabilityMap:
    """The closed-loop rate over a grid of one hyperparameter and ``x = lr * h``, vectorised.

    Parameters
    ----------
    model : str or OptimizerModel
        A catalogue optimizer.
    parameter : str
        The hyperparameter on the rows (e.g. ``"momentum"``).
    values : array_like, optional
        Its values (default: ``points`` values across its range, ends excluded).
    lr_curvature : array_like, optional
        ``x`` values (default: ``points`` values from 0 to 1.2 times the largest edge
        at three sample rows).
    second_moment : float
        Frozen second moment for normalised models.
    points : int
        Grid size for defaults.
    **hyperparameters
        The other hyperparameters.

    Returns
    -------
    StabilityMap
        The rate per step on the grid (rows: ``values``; columns: ``lr_curvature``).

    Raises
    ------
    InvalidHyperparameterError
        If ``model`` is not a catalogue optimizer, or ``parameter`` is not a
        continuous hyperparameter of it, or has no bounds for the default ``values``.

    Notes
    -----
    Loops of degree 2 or less use the closed-form root moduli; higher degrees
    the eigenvalues of the closed-loop state matrices (second-order sections,
    so that high-order designs stay accurate).

    Examples
    --------
    >>> from optfilters.closed_loop import stability_map
    >>> m = stability_map("nesterov", "momentum", [0.5, 0.9], [1.0, 1.4])
    >>> m.stable.tolist()
    [[True, True], [True, False]]
    """
    name, base = _catalogue_base(model, hyperparameters)
    if values is None:
        lo, hi = _bounds(name, parameter, None)
        values = np.linspace(lo, hi, int(points) + 2)[1:-1]
    rows = np.atleast_1d(np.asarray(values, dtype=np.float64))
    loops = [closed_loop(name, second_moment=second_moment, **{**base, parameter: float(v)}) for v in rows]
    if lr_curvature is None:
        sample = {0, len(loops) // 2, len(loops) - 1}
        edges = [loops[i].stability().max_stable_lr_curvature for i in sample]
        finite = [e for e in edges if math.isfinite(e)]
        x = np.linspace(0.0, 1.2 * max(finite) if finite else 4.0, int(points))
    else:
        x = np.atleast_1d(np.asarray(lr_curvature, dtype=np.float64))
    if all(isinstance(loop, ClosedLoop) for loop in loops) and max(loop.order for loop in loops) <= 2:
        polys = [loop.polynomial for loop in loops]
        n = max(p.constant.size for p in polys)
        constant = np.zeros((rows.size, n))
        slope = np.zeros((rows.size, n))
        for i, p in enumerate(polys):
            constant[i, : p.constant.size] = p.constant
            slope[i, : p.slope.size] = p.slope
        coefficients = constant[:, None, :] + x[None, :, None] * slope[:, None, :]
        rate = spectral_radius(coefficients)
    else:
        rate = np.stack([np.asarray(loop.rate(x), dtype=np.float64) for loop in loops])
    return StabilityMap(name, parameter, rows, x, rate, loops[0].label)


# ----------------------------------------------------------------------------- tuning


@dataclass(frozen=True)
class TuningResult:
    """The hyperparameters and learning rate that minimise the worst-case rate over ``h`` in ``[mu, L]``.

    Attributes
    ----------
    name : str
    mu, L : float
        Curvature range (preconditioned curvature when linearised).
    lr : float
    rate : float
        Worst-case closed-loop rate over ``[mu, L]`` (on a fine grid of ``h``).
    hyperparameters : dict
        The tuned hyperparameters' values.
    tuned : tuple of str
        Their names (``lr`` is always tuned).
    fixed : dict
        The other hyperparameters.
    label : str
        How exact the analysis is (as :attr:`ClosedLoop.label`).
    evaluations : int
        Closed-loop rates evaluated during the search.

    Examples
    --------
    >>> from optfilters.closed_loop import tune
    >>> r = tune("sgd", condition_number=9.0)
    >>> round(r.rate, 6), round(r.lr_curvature_max, 6)   # (k-1)/(k+1), 2k/(k+1)
    (0.8, 1.8)
    """

    name: str
    mu: float
    L: float
    lr: float
    rate: float
    hyperparameters: dict[str, float]
    tuned: tuple[str, ...]
    fixed: dict[str, Any]
    label: str = "exact"
    evaluations: int = 0

    @property
    def condition_number(self) -> float:
        """``L / mu``."""
        return self.L / self.mu

    @property
    def lr_curvature_max(self) -> float:
        """``lr * L``."""
        return self.lr * self.L

    @property
    def lr_curvature_min(self) -> float:
        """``lr * mu``."""
        return self.lr * self.mu

    def as_dict(self) -> dict[str, Any]:
        """``rate``, ``lr``, ``lr_curvature_max``/``_min``, each tuned hyperparameter by name, and the context.

        Returns
        -------
        dict
            Plain JSON-able data (non-finite numbers as None).
        """
        out: dict[str, Any] = {
            "rate": _finite_or_none(self.rate),
            "lr": _finite_or_none(self.lr),
            "lr_curvature_max": _finite_or_none(self.lr_curvature_max),
            "lr_curvature_min": _finite_or_none(self.lr_curvature_min),
        }
        out.update({k: float(v) for k, v in self.hyperparameters.items()})
        out.update(
            {
                "tuned": ["lr", *self.tuned],
                "condition_number": self.condition_number,
                "mu": self.mu,
                "L": self.L,
                "label": self.label,
            }
        )
        return out


def _reached_edge(loop: ClosedLoop | PeriodicClosedLoop) -> float:
    """Upper edge of the stable interval reached from small positive ``x`` (inf: none; nan: small ``x`` diverges).

    For the tuning's inner loop: the unit-circle crossings (:meth:`ClosedLoop.crossings`) with each cell between
    them classified by the rate at its midpoint, instead of :meth:`ClosedLoop.stability`'s exact Schur-Cohn test
    of every cell (a loop with a pole near ``z = 1`` has hundreds of near-coincident crossings at its edge).
    """
    if isinstance(loop, PeriodicClosedLoop):
        return loop.stability().max_stable_lr_curvature
    xs = sorted({x for x, _ in loop.crossings() if 0.0 < x < math.inf})
    ends = [0.0, *xs]
    probes = np.array([*(0.5 * (a + b) for a, b in itertools.pairwise(ends)), 2.0 * ends[-1] if xs else 1.0])
    stable = np.asarray(loop.rate(probes)) < 1.0
    if not stable[0]:
        return math.nan
    unstable = np.flatnonzero(~stable)
    return math.inf if unstable.size == 0 else float(xs[int(unstable[0]) - 1])


def _between(v: float, lo: float, hi: float) -> float:
    """``lo + (hi - lo) / (1 + e^-v)``, computed from the nearer end: full relative precision in the distance to it.

    The tuning searches ``v`` on the real line: ``v -> -inf`` and ``v -> +inf`` reach ``lo`` and ``hi``
    geometrically (``e^v`` and ``e^-v`` of the width away), so an optimum ``1e-12`` of the width from an end
    (heavy ball's ``lr * L`` below its stability edge, its momentum below 1 at ``kappa = 1e12``) is as easy to
    resolve as one in the middle.
    """
    if v <= 0.0:
        return lo + (hi - lo) / (1.0 + math.exp(min(-v, 700.0)))
    return hi - (hi - lo) / (1.0 + math.exp(min(v, 700.0)))


def _between_inverse(value: float, lo: float, hi: float) -> float:
    """The ``v`` of :func:`_between` (clipped to ``[-40, 40]``: within ``4e-18`` of the width from an end)."""
    near_lo, near_hi = value - lo, hi - value
    if near_lo <= 0.0 or near_hi <= 0.0:
        return -40.0 if near_lo <= near_hi else 40.0
    return min(max(math.log(near_lo / near_hi), -40.0), 40.0)


def _curvature_grid(kappa: float, points: int) -> FloatArray:
    """Curvatures in ``[1/kappa, 1]`` (relative to L): geometric and linear spacing merged, ends included."""
    geometric = np.geomspace(1.0 / kappa, 1.0, points)
    linear = np.linspace(1.0 / kappa, 1.0, points)
    return np.unique(np.concatenate([geometric, linear]))


def _open_box(name: str, parameter: str, lo: float, hi: float) -> tuple[float, float]:
    """Shrink ends that the catalogue range excludes (``[0, 1)``) by a relative 1e-12."""
    spec = CATALOGUE[name].hyperparameter(parameter)
    width = hi - lo
    if spec.low is not None and lo <= spec.low and spec.low_open:
        lo = spec.low + 1e-12 * width
    if spec.high is not None and hi >= spec.high and spec.high_open:
        hi = spec.high - 1e-12 * width
    if parameter in DEFAULT_BOUNDS and spec.high is None and hi >= DEFAULT_BOUNDS[parameter][1]:
        hi = hi - 1e-12 * width  # momentum: 1 itself is a pole on the unit circle
    return lo, hi


#: Largest condition number :func:`tune` accepts: at 1e12 heavy ball's tuned ``1 - rate`` is within 0.2 % of
#: Polyak's ``2/(sqrt(kappa)+1)``; at 1e16 the search returns momentum 0.86 instead of 1 - 4e-8.
MAX_TUNING_CONDITION_NUMBER = 1e12


def tune(
    model: ModelLike,
    condition_number: float | None = None,
    *,
    mu: float = 1.0,
    L: float | None = None,
    tune: Sequence[str] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    second_moment: float = 1.0,
    points: int = 65,
    **hyperparameters: Any,
) -> TuningResult:
    """Minimise the worst-case closed-loop rate over curvatures ``h`` in ``[mu, L]``.

    The hyperparameters named in ``tune`` (default: :data:`DEFAULT_TUNED` for
    the optimizer, e.g. ``momentum`` for heavy ball, ``nu`` and ``beta`` for
    QHM) are searched on a grid and refined by Nelder-Mead (through a smooth
    periodic map onto their bounds, which reaches the ends); for each setting
    the best ``lr * L`` is found by a log-spaced scan refined by a bounded
    golden-section search.  The worst case is taken over ``h`` on a merged
    geometric and linear grid that includes both ends.

    Parameters
    ----------
    model : str or OptimizerModel
        A catalogue optimizer (a filter or custom model tunes ``lr`` only).
    condition_number : float, optional
        ``kappa = L / mu`` (or give ``L``), at most :data:`MAX_TUNING_CONDITION_NUMBER` (1e12): beyond,
        the best rate is within ``2/sqrt(kappa)`` of 1 and the search cannot resolve it (refused).
    mu, L : float
        Curvature range; ``L`` defaults to ``kappa * mu``.
    tune : sequence of str, optional
        Hyperparameters to tune besides ``lr`` (empty: ``lr`` only).
    bounds : mapping, optional
        ``{name: (low, high)}`` overriding catalogue ranges.
    second_moment : float
        Frozen second moment for normalised models (curvatures are then preconditioned).
    points : int
        Curvature grid size for the search (the reported rate uses 16 times more).
    **hyperparameters
        Fixed hyperparameters (and starting values).

    Returns
    -------
    TuningResult
        The minimising hyperparameters and ``lr``, and the worst-case rate.

    Raises
    ------
    InvalidHyperparameterError
        If neither ``condition_number`` nor ``L`` is given, the curvatures
        are not ``0 < mu <= L`` (finite), ``mu`` or ``1/L`` is below the smallest normal float
        (``sys.float_info.min``: subnormal numbers lose precision), the condition number exceeds
        :data:`MAX_TUNING_CONDITION_NUMBER`, ``tune`` names hyperparameters
        of a model outside the catalogue, a tuned hyperparameter is not
        continuous or has no bounds, or no convergent setting exists within
        the bounds.

    References
    ----------
    Polyak (1964), "Some methods of speeding up the convergence of
    iteration methods": heavy ball's optimum, the check in the example.

    Examples
    --------
    >>> from optfilters.closed_loop import tune
    >>> r = tune("momentum", condition_number=100.0)
    >>> round(r.rate, 6), round(r.hyperparameters["momentum"], 6)   # Polyak: 9/11, (9/11)^2
    (0.818182, 0.669421)
    """
    from scipy.optimize import minimize, minimize_scalar

    if condition_number is None and L is None:
        raise InvalidHyperparameterError("give condition_number or L")
    mu = float(mu)
    L = float(L) if L is not None else float(condition_number) * mu  # type: ignore[arg-type]
    if not (math.isfinite(mu) and mu > 0.0 and math.isfinite(L) and L >= mu):
        raise InvalidHyperparameterError(f"curvatures need 0 < mu <= L (finite), got mu={mu}, L={L}")
    if mu < sys.float_info.min or 1.0 / L < sys.float_info.min:
        raise InvalidHyperparameterError(
            f"mu must be >= {sys.float_info.min:.6g} and L <= {1.0 / sys.float_info.min:.6g} for tuning, got "
            f"mu={mu:.6g}, L={L:.6g}: beyond, mu or lr = 1/L is a subnormal float and L/mu loses precision "
            "(rescale the curvatures)"
        )
    kappa = L / mu
    if kappa > MAX_TUNING_CONDITION_NUMBER:
        raise InvalidHyperparameterError(
            f"condition_number must be <= {MAX_TUNING_CONDITION_NUMBER:g} for tuning, got {kappa!r}: the best rate "
            f"is within about 2/sqrt(kappa) = {2.0 / math.sqrt(kappa):.2g} of 1, closer than the double-precision "
            "search can resolve (Polyak's heavy ball: momentum = ((sqrt(kappa)-1)/(sqrt(kappa)+1))^2)"
        )
    if isinstance(model, str) or (isinstance(model, OptimizerModel) and model.name in CATALOGUE):
        name, base = _catalogue_base(model, hyperparameters)
        names = check_distinct(DEFAULT_TUNED.get(name, ()) if tune is None else tune, "tune")
        box = [_open_box(name, n_, *_bounds(name, n_, bounds)) for n_ in names]
        base = CATALOGUE[name].validate(base)

        def build(values: Sequence[float], lr: float) -> ClosedLoop | PeriodicClosedLoop:
            params = {**base, **dict(zip(names, values, strict=True)), "lr": lr}
            return closed_loop(name, second_moment=second_moment, **params)

        fixed = {k: v for k, v in base.items() if k not in names and k != "lr"}
    else:
        if tune:
            raise InvalidHyperparameterError("only catalogue optimizers have hyperparameters to tune")
        fixed_model = as_model(model, **hyperparameters)
        name, names, box, fixed = fixed_model.name, (), [], {}

        def build(values: Sequence[float], lr: float) -> ClosedLoop | PeriodicClosedLoop:
            return closed_loop(fixed_model, second_moment=second_moment, lr=lr)

    grid = _curvature_grid(kappa, max(int(points), 3))
    fine = _curvature_grid(kappa, 16 * max(int(points), 3))
    rough = _curvature_grid(kappa, 9)  # for the coarse lr scan only
    count = 0
    cache: dict[tuple[float, ...], ClosedLoop | PeriodicClosedLoop] = {}
    edges: dict[tuple[float, ...], tuple[float, float] | None] = {}

    def loop_for(values: Sequence[float]) -> ClosedLoop | PeriodicClosedLoop:
        key = tuple(float(v) for v in values)
        loop = cache.get(key)
        if loop is None:
            if len(cache) > 64:
                cache.clear()
            loop = cache[key] = build(values, 1.0 / L)
        return loop

    def worst(values: Sequence[float], x_max: FloatArray, curvatures: FloatArray) -> FloatArray:
        nonlocal count
        loop = loop_for(values)
        if loop.coupled_decay or loop.decoupled_decay:  # the loop depends on lr itself
            rows = [np.asarray(replace(loop, lr=xm / L).rate(xm * curvatures)) for xm in x_max]
            rates = np.stack(rows)
        else:
            rates = np.asarray(loop.rate(np.multiply.outer(x_max, curvatures)), dtype=np.float64)
        count += rates.size
        rates = np.where(np.isfinite(rates), rates, 1e6)
        return np.asarray(rates.max(axis=-1), dtype=np.float64)

    def edge(values: Sequence[float]) -> tuple[float, float] | None:
        """``(x_max, scale)``: the stable interval's upper edge in ``lr * L`` (inf: none) and the scale of ``lr * L``.

        The search for ``lr`` runs over ``(0, x_max)``, wherever the filter's gain puts it (a gain ``g`` scales
        it by ``1/g``; Adam's ``beta1 -> 1`` stretches it to ``2 (1 + beta1) / (1 - beta1)``); ``scale`` is
        ``1 / |H(1)|`` for an unbounded interval.  None: small ``lr`` does not converge.
        """
        key = tuple(float(v) for v in values)
        if key in edges:
            return edges[key]
        loop = loop_for(values)
        try:
            hi = _reached_edge(loop)
            if (loop.coupled_decay or loop.decoupled_decay) and math.isfinite(hi):
                for _ in range(8):  # the decay's share lr * wd moves with lr = x_max / L: a fixed point
                    new = _reached_edge(replace(loop, lr=hi / L))
                    if not math.isfinite(new) or abs(new - hi) <= 1e-15 * hi:
                        break
                    hi = new
        except (ValueError, InvalidFilterError):
            hi = math.nan
        if math.isnan(hi) or hi <= 0.0:
            found = None
        else:
            transfer = loop.filter
            with quiet_numerics():
                dc = abs(float(np.sum(transfer.b)) / float(np.sum(transfer.a)))
            found = (hi, 1.0 / dc if math.isfinite(dc) and dc > 0.0 else 1.0)
        if len(edges) > 256:
            edges.clear()
        edges[key] = found
        return found

    def best_lr(values: Sequence[float], xatol: float = 1e-10) -> tuple[float, float]:
        """Smallest worst-case rate over lr for these hyperparameters, and its lr * L (``xatol``: in v, see below).

        ``lr * L = _between(v, 0, x_max)`` (geometric towards 0 and towards the edge), or ``scale * e^v`` for an
        unbounded stable interval.
        """
        try:
            found = edge(values)
        except InvalidHyperparameterError:  # a box end the entry's own check refuses (nesterov: momentum 0)
            return 1e6, 1.0
        if found is None:
            return 1e6, 1.0
        x_max, scale = found
        if math.isfinite(x_max):
            vs = np.linspace(-24.0, 34.0, 30)  # lr * L from 4e-11 x_max to within 2e-15 x_max of the edge

            def position(v: float) -> float:
                return _between(v, 0.0, x_max)

        else:
            vs = np.linspace(-28.0, 28.0, 29)  # lr * L from 7e-13 to 1.4e12 times 1 / |H(1)|

            def position(v: float) -> float:
                return scale * math.exp(v)

        try:
            coarse = worst(values, np.array([position(v) for v in vs]), rough)
        except ValueError:
            return 1e6, 1.0
        i = int(np.argmin(coarse))
        res = minimize_scalar(
            lambda v: float(worst(values, np.array([position(v)]), grid)[0]),
            bounds=(vs[max(i - 1, 0)], vs[min(i + 1, vs.size - 1)]),
            method="bounded",
            options={"xatol": xatol},
        )
        at_grid = float(worst(values, np.array([position(vs[i])]), grid)[0])
        if res.fun <= at_grid:
            return float(res.fun), position(float(res.x))
        return at_grid, position(float(vs[i]))

    def objective(u: Sequence[float]) -> float:
        values = [_between(v, lo, hi) for v, (lo, hi) in zip(u, box, strict=True)]
        return best_lr(values)[0]

    if len(names) == 1:
        (lo1, hi1), us = box[0], np.linspace(-20.0, 20.0, 17)
        # the box's own ends too (momentum 0 is the optimum at kappa = 1), reached by u = -/+40 when refining
        starts1 = np.concatenate([[-40.0], us, [40.0]])
        points1 = [lo1, *(_between(u, lo1, hi1) for u in us), hi1]
        values1 = [best_lr([v], 1e-6)[0] for v in points1]
        i = int(np.argmin(values1))
        if values1[i] >= 1.0:
            raise InvalidHyperparameterError(f"{name}: no convergent setting found within the bounds")
        res = minimize_scalar(
            lambda u: best_lr([_between(float(u), lo1, hi1)])[0],
            bounds=(starts1[max(i - 1, 0)], starts1[min(i + 1, starts1.size - 1)]),
            method="bounded",
            options={"xatol": 1e-10},
        )
        at_start = best_lr([points1[i]])[0]
        values = [_between(float(res.x), lo1, hi1)] if res.fun <= at_start else [float(points1[i])]
    elif names:
        per_dim = {2: 9, 3: 5}.get(len(names), 3)
        axes = [[_between(u, lo, hi) for u in np.linspace(-12.0, 12.0, per_dim)] for lo, hi in box]
        combos = np.array(np.meshgrid(*axes, indexing="ij")).reshape(len(names), -1).T
        starts = sorted(((best_lr(list(c), 1e-6)[0], list(c)) for c in combos), key=lambda s: s[0])
        if starts[0][0] >= 1.0:
            raise InvalidHyperparameterError(f"{name}: no convergent setting found within the bounds")
        best_f = starts[0][0]
        best_u = [_between_inverse(v, lo, hi) for v, (lo, hi) in zip(starts[0][1], box, strict=True)]
        for _, c in starts[:2]:
            u = np.array([_between_inverse(v, lo, hi) for v, (lo, hi) in zip(c, box, strict=True)])
            previous = math.inf
            for _restart in range(4):  # restarts: Nelder-Mead stalls on the kinks of a worst case
                res = minimize(objective, u, method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-14})
                u = res.x
                if res.fun < best_f:
                    best_f, best_u = float(res.fun), list(res.x)
                if previous - res.fun <= 1e-12:
                    break
                previous = float(res.fun)
        values = [_between(v, lo, hi) for v, (lo, hi) in zip(best_u, box, strict=True)]
    else:
        values = []
    rate, x_max = best_lr(values)
    if rate >= 1.0:
        raise InvalidHyperparameterError(f"{name}: no convergent learning rate for kappa={kappa:g}")
    rate = float(worst(values, np.array([x_max]), fine)[0])
    return TuningResult(
        name=name,
        mu=mu,
        L=L,
        lr=x_max / L,
        rate=rate,
        hyperparameters=dict(zip(names, values, strict=True)),
        tuned=tuple(names),
        fixed=fixed,
        label=build(values, x_max / L).label,
        evaluations=count,
    )
