"""Best linear approximation of an optimizer under a Gaussian dither (Bussgang's theorem).

A sign, a clip or a matrix orthogonalisation after a filter hides the filter
from the small-signal probes of :mod:`optfilters.identify` (the sign of a
perturbed constant does not change).  A large zero-mean Gaussian dither makes
it visible again: drive the optimizer with i.i.d. Gaussian gradients ``g_t``
(variance ``sigma^2``, independent across steps and elements); the pre-
nonlinearity signal ``m_t = (h * g)_t`` is Gaussian, and for any memoryless
nonlinearity ``f`` Bussgang's theorem (Price's / Stein's lemma for several
variables) gives

    E[f(m_t) g_{t-k}] = E[f'(m_t)] E[m_t g_{t-k}] = c sigma^2 h_k,

so the input-output cross-correlation, divided by ``sigma^2``, is the filter's
impulse response ``h`` times the equivalent gain ``c = E[f'(m)]`` (for the
sign, ``c = sqrt(2/pi) / std(m)``).  The same holds entry by entry for a
matrix map that commutes with signed permutations of rows and columns (Muon's
orthogonalisation): averaged over entries the cross-correlation is ``c h_k``.
The *best linear approximation* (BLA; Pintelon & Schoukens, *System
Identification*, 2nd ed., 2012, ch. 3) is this ``c H(z)``: the linear filter
closest to the optimizer in the mean-square sense for this input.

:func:`estimate_best_linear_approximation` works on recorded arrays;
:func:`best_linear_approximation` probes an optimizer (dotted path, class or
catalogue model).  The estimate comes with its uncertainty: the records are
independent optimizer instances, the response's standard error comes from
their spread, the ARMA order is the simplest consistent with that noise
(reduced chi-square), and the poles', zeros' and DC gain's standard errors are
jackknife estimates over the records.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .display import Plottable
from .filters import ArmaFilter, complex_pairs

__all__ = [
    "BestLinearApproximation",
    "best_linear_approximation",
    "estimate_best_linear_approximation",
]

FloatArray = NDArray[np.float64]
ComplexArray = NDArray[np.complex128]

#: Largest number of poles and of zeros tried by the order selection.
MAX_ORDER = 3
#: A lag counts as significant above this many standard errors.
SIGNIFICANCE = 4.0


def _fmt_roots_with_errors(roots: ComplexArray, errors: FloatArray) -> str:
    out = []
    for r, e in zip(np.atleast_1d(roots), np.atleast_1d(errors), strict=True):
        if abs(r.imag) <= 1e-9 * max(1.0, abs(r)):
            out.append(f"{r.real:.4g} ± {e:.2g}")
        else:
            out.append(f"{r.real:.4g}{r.imag:+.4g}j ± {e:.2g}")
    return "[" + ", ".join(out) + "]"


@dataclass(frozen=True)
class BestLinearApproximation(Plottable):
    """The best linear approximation of an optimizer under a Gaussian dither, with its uncertainty.

    Attributes
    ----------
    dither : float
        Standard deviation ``sigma`` of the Gaussian gradients.
    lr : float
        Learning rate of the records; updates are per unit lr.
    records : int
        Independent records (fresh optimizer instances, seeds ``seed + i``).
    steps : int
        Steps per record.
    burn_in : int
        Steps left out at the start of each record (the state settles).
    elements : int
        Parameter elements per record.
    shape : tuple of int
        Shape of the probed parameter.
    response : numpy.ndarray
        ``r_k = mean(u_t g_{t-k}) / sigma^2`` for lags ``k = 0, 1, ...``:
        the BLA's impulse response per unit lr (shape ``(lags,)``).
    standard_error : numpy.ndarray
        Standard error of each ``r_k`` from the spread over records.
    window : int
        Lags used by the ARMA fit (three times the last significant lag,
        at least 16).
    filter : ArmaFilter or None
        The fitted ARMA model of the response (None when no lag is significant).
    orders : tuple of int or None
        ``(p, q)`` of the fit.
    reduced_chi2 : float or None
        Weighted residual sum of squares per degree of freedom (about 1 when
        the fit is within the noise).
    consistent : bool
        An order was found whose reduced chi-square is within the noise
        (below ``1 + 4 sqrt(2 / dof) + sqrt(2 / (records - 1))``: four standard
        deviations of the chi-square plus one of the variance estimate).
    pole_errors, zero_errors : numpy.ndarray
        Jackknife standard errors of :attr:`poles` and :attr:`zeros` (distance
        in the z-plane), in the same order.
    dc_gain, dc_gain_error : float
        ``H(1)`` of the fit and its jackknife standard error.
    linear_fraction : float
        Share of the update variance that the fitted filter reproduces
        (``1 - var(u - h * g) / var(u)``; ``2/pi = 0.637`` for a sign of a
        Gaussian).
    sign_magnitude : float or None
        When at least 99% of the update elements have the same magnitude (a
        sign-type output), that magnitude per unit lr.
    magnitude_share : float
        Share of update elements at the most common magnitude.
    seed : int
        Seed of the first record.
    notes : list of str
        What the estimate shows, each from a number above.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import signal
    >>> from optfilters.dither import estimate_best_linear_approximation
    >>> rng = np.random.default_rng(0)
    >>> g = rng.standard_normal((4, 1024, 16))
    >>> u = np.sign(signal.lfilter([0.1], [1.0, -0.8], g, axis=1))
    >>> bla = estimate_best_linear_approximation(g, u, burn_in=128)
    >>> bla.orders, bool(abs(bla.poles[0] - 0.8) < 4 * bla.pole_errors[0] + 0.01)
    ((1, 0), True)

    :meth:`plot` draws the estimated response with its error band and the
    fitted filter's response (:func:`optfilters.plot.best_linear_approximation_plot`):

    >>> r = bla.plot()
    >>> sorted(r.artists)
    ['band', 'fit', 'response']
    >>> r.close()
    """

    _plot_function = "best_linear_approximation_plot"

    dither: float
    lr: float
    records: int
    steps: int
    burn_in: int
    elements: int
    shape: tuple[int, ...]
    response: FloatArray
    standard_error: FloatArray
    window: int
    filter: ArmaFilter | None
    orders: tuple[int, int] | None
    reduced_chi2: float | None
    consistent: bool
    pole_errors: FloatArray
    zero_errors: FloatArray
    dc_gain: float
    dc_gain_error: float
    linear_fraction: float
    sign_magnitude: float | None
    magnitude_share: float
    seed: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def poles(self) -> ComplexArray:
        """Poles of the fitted filter (empty when none)."""
        return np.array([], dtype=np.complex128) if self.filter is None else self.filter.poles

    @property
    def zeros(self) -> ComplexArray:
        """Zeros of the fitted filter (empty when none)."""
        return np.array([], dtype=np.complex128) if self.filter is None else self.filter.zeros

    @property
    def memoryless(self) -> bool:
        """True when only lag 0 is significant: the filter before the nonlinearity has no memory.

        Examples
        --------
        >>> import numpy as np
        >>> from optfilters.dither import estimate_best_linear_approximation
        >>> g = np.random.default_rng(1).standard_normal((4, 512, 8))
        >>> estimate_best_linear_approximation(g, np.sign(g), burn_in=64).memoryless
        True
        """
        return self.filter is not None and self.orders == (0, 0)

    def summary(self) -> str:
        """A readable multi-line report (every line is a measured number or says how it was measured).

        Returns
        -------
        str
            Several lines: the dither and record sizes, the fitted ``b`` and
            ``a``, the poles and zeros with their jackknife standard errors,
            the DC gain and the share of the update variance the linear part
            reproduces.

        Examples
        --------
        >>> import numpy as np
        >>> from optfilters.dither import estimate_best_linear_approximation
        >>> g = np.random.default_rng(1).standard_normal((4, 512, 8))
        >>> print(estimate_best_linear_approximation(g, np.sign(g), burn_in=64, dither=1.0).summary().splitlines()[0])
        best linear approximation under a Gaussian dither (sigma = 1, 4 records x 512 steps x 8 elements, lr = 1):
        """
        shape = "x".join(str(s) for s in self.shape)
        head = (
            f"best linear approximation under a Gaussian dither (sigma = {self.dither:g}, {self.records} records x "
            f"{self.steps} steps x {self.elements} elements, lr = {self.lr:g}):"
        )
        if shape not in ("", str(self.elements)):
            head = head[:-2] + f", a {shape} parameter):"
        lines = [head]
        if self.filter is None:
            lines.append("  no lag of the input-output cross-correlation is significant: nothing linear is visible")
        else:
            f = self.filter
            assert self.orders is not None
            lines.append(
                f"  b = {_fmt_list(f.b)}, a = {_fmt_list(f.a)} (orders p={self.orders[0]}, q={self.orders[1]} over "
                f"{self.window} lags; reduced chi-square {self.reduced_chi2:.3g})"
            )
            lines.append(
                f"  poles {_fmt_roots_with_errors(f.poles, self.pole_errors)}; zeros "
                f"{_fmt_roots_with_errors(f.zeros, self.zero_errors)} (± one jackknife standard error)"
            )
            lines.append(
                f"  DC gain {self.dc_gain:.4g} ± {self.dc_gain_error:.2g}; linear part reproduces "
                f"{100 * self.linear_fraction:.1f}% of the update variance"
            )
        lines.extend(f"  {note}" for note in self.notes)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def matches(self, other: BestLinearApproximation, sigmas: float = 4.0) -> bool:
        """True when two estimates agree within ``sigmas`` combined standard errors at every lag.

        Parameters
        ----------
        other : BestLinearApproximation
            Another estimate (same lags compared).
        sigmas : float
            Allowed deviation in combined standard errors.

        Returns
        -------
        bool

        Examples
        --------
        >>> import numpy as np
        >>> from optfilters.dither import estimate_best_linear_approximation
        >>> g = np.random.default_rng(2).standard_normal((4, 512, 8))
        >>> a = estimate_best_linear_approximation(g, np.sign(g), burn_in=64)
        >>> a.matches(a), a.matches(estimate_best_linear_approximation(g, 2 * np.sign(g), burn_in=64))
        (True, False)
        """
        n = min(self.response.size, other.response.size)
        se = np.sqrt(self.standard_error[:n] ** 2 + other.standard_error[:n] ** 2)
        deviation = np.abs(self.response[:n] - other.response[:n])
        return bool(np.all(deviation <= sigmas * se + 1e-12 * max(1.0, float(np.max(np.abs(self.response[:n]))))))

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON (non-finite numbers as None, roots as ``[re, im]``).

        Returns
        -------
        dict
            The dither level, ``lr``, record sizes, seed and window, the
            fitted filter (``b``, ``a``, ``orders``, poles and zeros with
            their errors, DC gain with its error), the consistency and
            linear-fraction statistics, the estimated response with its
            standard errors, and the notes.

        Examples
        --------
        >>> import json
        >>> import numpy as np
        >>> from optfilters.dither import estimate_best_linear_approximation
        >>> g = np.random.default_rng(1).standard_normal((4, 512, 8))
        >>> d = estimate_best_linear_approximation(g, np.sign(g), burn_in=64).as_dict()
        >>> d["orders"], json.loads(json.dumps(d))["poles"]
        ([0, 0], [])
        """
        from .validation import jsonable as _jsonable

        f = self.filter
        return _jsonable(
            {
                "dither": self.dither,
                "lr": self.lr,
                "records": self.records,
                "steps": self.steps,
                "burn_in": self.burn_in,
                "elements": self.elements,
                "shape": list(self.shape),
                "seed": self.seed,
                "window": self.window,
                "b": None if f is None else f.b.tolist(),
                "a": None if f is None else f.a.tolist(),
                "orders": None if self.orders is None else list(self.orders),
                "poles": complex_pairs(self.poles),
                "zeros": complex_pairs(self.zeros),
                "pole_errors": self.pole_errors.tolist(),
                "zero_errors": self.zero_errors.tolist(),
                "dc_gain": self.dc_gain,
                "dc_gain_error": self.dc_gain_error,
                "reduced_chi2": self.reduced_chi2,
                "consistent": self.consistent,
                "linear_fraction": self.linear_fraction,
                "sign_magnitude": self.sign_magnitude,
                "magnitude_share": self.magnitude_share,
                "response": self.response[: self.window].tolist(),
                "standard_error": self.standard_error[: self.window].tolist(),
                "notes": list(self.notes),
            }
        )


def _fmt_list(values: ArrayLike) -> str:
    return "[" + ", ".join(f"{float(v):.4g}" for v in np.atleast_1d(values)) + "]"


# ----------------------------------------------------------------------------- estimation


def _cross_correlation(u: FloatArray, g: FloatArray, burn_in: int, lags: int) -> FloatArray:
    """``r[k] = sum_{t >= burn_in} u[t] g[t-k] / count`` summed over elements (u, g: (steps, elements))."""
    steps = u.shape[0]
    masked = u.copy()
    masked[:burn_in] = 0.0
    nfft = 1 << math.ceil(math.log2(2 * steps))
    spectrum = np.conj(np.fft.rfft(g, nfft, axis=0)) * np.fft.rfft(masked, nfft, axis=0)
    corr = np.fft.irfft(spectrum, nfft, axis=0)[:lags]
    return np.asarray(corr.sum(axis=1) / ((steps - burn_in) * u.shape[1]), dtype=np.float64)


def _impulse(b: FloatArray, a: FloatArray, n: int) -> FloatArray:
    from scipy import signal

    x = np.zeros(n)
    x[0] = 1.0
    return np.asarray(signal.lfilter(b, a, x), dtype=np.float64)


def _equation_error(r: FloatArray, p: int, q: int) -> tuple[FloatArray, FloatArray]:
    n = r.size
    x = np.zeros(n)
    x[0] = 1.0
    t = np.arange(n)
    rpad = np.concatenate([np.zeros(p), r])
    xpad = np.concatenate([np.zeros(q), x])
    cols = [-rpad[p + t - k] for k in range(1, p + 1)] + [xpad[q + t - k] for k in range(q + 1)]
    solution, *_ = np.linalg.lstsq(np.column_stack(cols), r, rcond=None)
    a = np.concatenate([[1.0], solution[:p]])
    return np.asarray(solution[p:], dtype=np.float64), _inside(a)


def _inside(a: FloatArray) -> FloatArray:
    """Move poles on or outside the unit circle just inside it (a starting point for the output-error fit)."""
    if a.size <= 1:
        return a
    roots = np.roots(a)
    big = np.abs(roots) >= 0.999
    if not np.any(big):
        return a
    roots = np.where(big, 0.999 * roots / np.abs(roots), roots)
    return np.real(np.poly(roots)).astype(np.float64)


def _output_error_fit(
    r: FloatArray, weights: FloatArray, p: int, q: int, start: tuple[FloatArray, FloatArray] | None = None
) -> tuple[FloatArray, FloatArray, float] | None:
    """Weighted least-squares fit of an ARMA(p, q) impulse response to ``r``; None when it fails or is unstable."""
    from scipy import optimize

    n = r.size
    b0, a0 = _equation_error(r, p, q) if start is None else start
    theta0 = np.concatenate([b0, a0[1:]])

    def residual(theta: FloatArray) -> FloatArray:
        b = theta[: q + 1]
        a = np.concatenate([[1.0], theta[q + 1 :]])
        with np.errstate(all="ignore"):
            h = _impulse(b, a, n)
        out = (r - h) * weights
        return np.where(np.isfinite(out), out, 1e6)

    try:
        solution = optimize.least_squares(residual, theta0, method="lm" if theta0.size <= n else "trf")
    except (ValueError, np.linalg.LinAlgError):
        return None
    b = np.asarray(solution.x[: q + 1], dtype=np.float64)
    a = np.concatenate([[1.0], solution.x[q + 1 :]])
    if a.size > 1 and np.max(np.abs(np.roots(a))) >= 1.0:
        return None
    return b, a, float(np.sum(residual(solution.x) ** 2))


def _match(reference: ComplexArray, roots: ComplexArray) -> ComplexArray:
    """``roots`` reordered to pair with ``reference`` (minimum total distance); NaN where counts differ."""
    if reference.size != roots.size:
        return np.full(reference.size, np.nan + 0j)
    if reference.size == 0:
        return roots
    from scipy.optimize import linear_sum_assignment

    cost = np.abs(reference[:, None] - roots[None, :])
    rows, cols = linear_sum_assignment(cost)
    out = np.empty_like(reference)
    out[rows] = roots[cols]
    return out


def _jackknife(values: Sequence[ArrayLike]) -> FloatArray:
    """Jackknife standard error of each component (complex values: distance in the plane)."""
    stack = np.asarray(values)
    k = stack.shape[0]
    if k < 2:
        return np.full(stack.shape[1:], np.nan)
    centre = np.nanmean(stack, axis=0)
    return np.asarray(np.sqrt((k - 1) / k * np.nansum(np.abs(stack - centre) ** 2, axis=0)), dtype=np.float64)


def _records(data: ArrayLike, name: str) -> FloatArray:
    array = np.asarray(data, dtype=np.float64)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim < 2:
        raise ValueError(f"{name} must have shape (records, steps[, elements...]), got shape {array.shape}")
    return array.reshape(array.shape[0], array.shape[1], -1)


def estimate_best_linear_approximation(
    gradients: ArrayLike,
    updates: ArrayLike,
    *,
    burn_in: int,
    lags: int | None = None,
    dither: float | None = None,
    lr: float = 1.0,
    seed: int = 0,
    shape: tuple[int, ...] | None = None,
) -> BestLinearApproximation:
    """The best linear approximation from recorded Gaussian inputs and outputs, with standard errors.

    Parameters
    ----------
    gradients, updates : array_like
        Shape ``(records, steps)`` or ``(records, steps, elements...)``: the
        i.i.d. zero-mean Gaussian inputs and the optimizer's updates per unit
        lr.  Each record is an independent run from rest.
    burn_in : int
        Steps left out at the start of each record (>= ``lags``).
    lags : int, optional
        Lags of the cross-correlation (default ``burn_in``, at most 1024).
    dither : float, optional
        The inputs' standard deviation (default: measured).
    lr : float
        Learning rate of the records (reported only).
    seed : int
        Seed of the first record (reported only).
    shape : tuple of int, optional
        Shape of the parameter (reported; default ``(elements,)``).

    Returns
    -------
    BestLinearApproximation

    Raises
    ------
    ValueError
        For mismatched shapes, fewer than 2 records, non-finite data or a
        burn-in too short for the lags.

    Notes
    -----
    ``r_k`` is the cross-correlation over steps ``t >= burn_in`` and all
    elements, divided by ``sigma^2``; its standard error is the records'
    spread over ``sqrt(records)`` (per lag, averaged with the mean over lags
    to steady it).  ARMA models with up to ``MAX_ORDER`` poles and zeros are
    fitted to the first ``window`` lags by weighted output-error least squares
    (started from the equation-error fit); the simplest (fewest coefficients,
    then most poles) whose reduced chi-square is below ``1 + 4 sqrt(2/dof) +
    sqrt(2/(records - 1))`` is chosen, else the smallest BIC; a pole-zero pair
    closer than 0.05 is then left out when the BIC prefers the smaller model
    (always when closer than 0.01).  The poles, zeros and DC gain get
    jackknife standard errors: the chosen order is refitted with each record
    left out in turn.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import signal
    >>> from optfilters.dither import estimate_best_linear_approximation
    >>> rng = np.random.default_rng(3)
    >>> g = rng.standard_normal((6, 2048, 16))
    >>> u = np.sign(signal.lfilter([0.1, -0.09], [1.0, -0.99], g, axis=1))  # Lion's pre-sign filter
    >>> bla = estimate_best_linear_approximation(g, u, burn_in=512)
    >>> bla.orders, round(float(bla.poles[0].real), 2), round(float(bla.zeros[0].real), 1)
    ((1, 1), 0.99, 0.9)
    """
    x = _records(gradients, "gradients")
    y = _records(updates, "updates")
    if x.shape != y.shape:
        raise ValueError(f"gradients have shape {x.shape} but updates {y.shape}")
    records, steps, elements = x.shape
    if records < 2:
        raise ValueError(f"at least 2 records are needed for standard errors, got {records}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("gradients and updates must be finite")
    burn_in = int(burn_in)
    lags = min(burn_in, 1024) if lags is None else int(lags)
    if lags < 2 or burn_in < lags or steps - burn_in < lags:
        raise ValueError(
            f"need 2 <= lags <= burn_in and steps - burn_in >= lags, got lags={lags}, burn_in={burn_in}, steps={steps}"
        )
    sigma = float(np.sqrt(np.mean(x**2))) if dither is None else float(dither)
    if not sigma > 0.0:
        raise ValueError(f"the dither must have a positive standard deviation, got {sigma}")
    per_record = np.array([_cross_correlation(y[i], x[i], burn_in, lags) for i in range(records)]) / sigma**2
    response = per_record.mean(axis=0)
    spread = per_record.std(axis=0, ddof=1) / math.sqrt(records)
    pooled = float(np.sqrt(np.mean(spread**2)))
    se = np.sqrt(0.5 * (spread**2 + pooled**2))
    floor = 1e-12 * max(float(np.max(np.abs(response))), 1e-300)
    se = np.maximum(se, floor)

    notes: list[str] = []
    significant = np.flatnonzero(np.abs(response) > SIGNIFICANCE * se)
    magnitudes = np.abs(y[:, burn_in:, :]).ravel()
    share, modal = _magnitude_share(magnitudes)
    sign_magnitude = modal if share >= 0.99 and modal > 0.0 else None
    if sign_magnitude is not None:
        notes.append(
            f"{100 * share:.1f}% of the update elements have magnitude {modal:.6g} per unit lr whatever the "
            "gradient: a sign-type output"
        )
    empty = np.array([], dtype=np.float64)
    common: dict[str, Any] = {
        "dither": sigma,
        "lr": float(lr),
        "records": records,
        "steps": steps,
        "burn_in": burn_in,
        "elements": elements,
        "shape": tuple(shape) if shape is not None else (elements,),
        "response": response,
        "standard_error": se,
        "sign_magnitude": sign_magnitude,
        "magnitude_share": share,
        "seed": seed,
    }
    if significant.size == 0:
        notes.append(
            f"no lag of the cross-correlation exceeds {SIGNIFICANCE:g} standard errors: the updates are "
            "uncorrelated with the gradients at this dither"
        )
        return BestLinearApproximation(
            window=min(lags, 16),
            filter=None,
            orders=None,
            reduced_chi2=None,
            consistent=False,
            pole_errors=empty,
            zero_errors=empty,
            dc_gain=0.0,
            dc_gain_error=float(np.sqrt(np.sum(se[:16] ** 2))),
            linear_fraction=0.0,
            notes=notes,
            **common,
        )
    window = int(min(lags, max(16, 3 * (int(significant.max()) + 1))))
    r, w = response[:window], 1.0 / se[:window]
    fits: dict[tuple[int, int], tuple[FloatArray, FloatArray, float]] = {}
    chosen: tuple[int, int] | None = None
    for total in range(0, 2 * MAX_ORDER + 1):
        # Within a total order, poles first: optimizers are made of EMAs, and a fast pole and a short FIR
        # can be equally close within the noise.
        for p in range(min(total, MAX_ORDER), -1, -1):
            q = total - p
            if q > MAX_ORDER or p + q + 1 >= window:
                continue
            fit = _output_error_fit(r, w, p, q)
            if fit is None:
                continue
            fits[(p, q)] = fit
            dof = window - (p + q + 1)
            if chosen is None and fit[2] <= dof * _threshold(dof, records):
                chosen = (p, q)
        if chosen is not None:
            break
    consistent = chosen is not None
    if chosen is None:
        chosen = min(fits, key=lambda k: window * math.log(fits[k][2] / window) + (sum(k) + 1) * math.log(window))
    before = chosen
    chosen = _prune_cancelling(fits, chosen, window)
    if chosen != before:
        notes.append(
            f"a nearly cancelling pole-zero pair of the ARMA{before} fit was left out (ARMA{chosen} shown; the BIC "
            "prefers it or the pair is closer than 0.01)"
        )
    b, a, chi2 = fits[chosen]
    fitted = ArmaFilter(b, a, name="best linear approximation")
    dof = max(window - (sum(chosen) + 1), 1)
    if not consistent:
        notes.append(
            f"no ARMA model with up to {MAX_ORDER} poles and zeros is within the noise (best reduced chi-square "
            f"{chi2 / dof:.3g}); the one shown has the smallest BIC"
        )

    # Jackknife: refit the chosen order with each record left out.
    poles_j, zeros_j, dc_j = [], [], []
    for i in range(records):
        rest = np.delete(per_record, i, axis=0).mean(axis=0)[:window]
        refit = _output_error_fit(rest, w, chosen[0], chosen[1], start=(b, a))
        if refit is None:
            poles_j.append(np.full(fitted.poles.size, np.nan + 0j))
            zeros_j.append(np.full(fitted.zeros.size, np.nan + 0j))
            dc_j.append(np.nan)
            continue
        replicate = ArmaFilter(refit[0], refit[1])
        poles_j.append(_match(fitted.poles, replicate.poles))
        zeros_j.append(_match(fitted.zeros, replicate.zeros))
        dc_j.append(replicate.dc_gain)
    pole_errors = _jackknife(poles_j) if fitted.poles.size else empty
    zero_errors = _jackknife(zeros_j) if fitted.zeros.size else empty
    dc_error = float(_jackknife([[v] for v in dc_j])[0])

    # Share of the update variance the fitted filter reproduces.
    from scipy import signal

    predicted = signal.lfilter(b, a, x, axis=1)[:, burn_in:, :]
    tail = y[:, burn_in:, :]
    total_var = float(np.mean((tail - tail.mean()) ** 2))
    linear_fraction = 1.0 - float(np.mean((tail - predicted) ** 2)) / total_var if total_var > 0.0 else 0.0
    if chosen == (0, 0):
        notes.append(
            f"only lag 0 is significant (next largest |r_k| = {float(np.max(np.abs(response[1:window]))):.2g}, "
            f"standard error {float(np.mean(se[1:window])):.2g}): no memory before the nonlinearity"
        )
    return BestLinearApproximation(
        window=window,
        filter=fitted,
        orders=chosen,
        reduced_chi2=chi2 / dof,
        consistent=consistent,
        pole_errors=pole_errors,
        zero_errors=zero_errors,
        dc_gain=float(fitted.dc_gain),
        dc_gain_error=dc_error,
        linear_fraction=float(linear_fraction),
        notes=notes,
        **common,
    )


def _threshold(dof: int, records: int) -> float:
    """Largest reduced chi-square within the noise: 4 of its own standard deviations, plus one standard deviation
    of the variance estimate itself (the standard errors come from ``records`` records)."""
    return 1.0 + SIGNIFICANCE * math.sqrt(2.0 / dof) + math.sqrt(2.0 / max(records - 1, 1))


def _bic(fit: tuple[FloatArray, FloatArray, float], order: tuple[int, int], window: int) -> float:
    return window * math.log(max(fit[2], 1e-300) / window) + (sum(order) + 1) * math.log(window)


def _prune_cancelling(
    fits: Mapping[tuple[int, int], tuple[FloatArray, FloatArray, float]], chosen: tuple[int, int], window: int
) -> tuple[int, int]:
    """Drop a nearly cancelling pole-zero pair when the model without it has the smaller BIC."""
    while chosen[0] >= 1 and chosen[1] >= 1:
        b, a, _ = fits[chosen]
        poles, zeros = np.roots(a), np.roots(b)
        zeros = zeros[np.abs(zeros) > 1e-9]
        if not poles.size or not zeros.size:
            return chosen
        gap = float(np.min(np.abs(poles[:, None] - zeros[None, :])))
        smaller = (chosen[0] - 1, chosen[1] - 1)
        if gap > 0.05 or smaller not in fits:
            return chosen
        if gap >= 0.01 and _bic(fits[smaller], smaller, window) > _bic(fits[chosen], chosen, window):
            return chosen
        chosen = smaller
    return chosen


def _magnitude_share(magnitudes: FloatArray) -> tuple[float, float]:
    """Share of values within 1e-6 (relative) of the most common magnitude, and that magnitude."""
    if magnitudes.size == 0:
        return 0.0, 0.0
    scale = float(np.max(magnitudes))
    if scale == 0.0:
        return 1.0, 0.0
    keys = np.round(magnitudes / scale, 6)
    values, counts = np.unique(keys, return_counts=True)
    k = int(np.argmax(counts))
    modal = float(np.median(magnitudes[keys == values[k]]))
    return float(counts[k] / magnitudes.size), modal


# ----------------------------------------------------------------------------- probing an optimizer


def default_shape(layout: str, elements: int) -> tuple[int, ...]:
    """Shape of the dither parameter: ``(elements,)``, or a matrix with about ``elements`` entries.

    Examples
    --------
    >>> from optfilters.dither import default_shape
    >>> default_shape("scalar", 32), default_shape("matrix", 128)
    ((32,), (8, 16))
    """
    if layout != "matrix":
        return (int(elements),)
    rows = max(2, round(math.sqrt(elements / 2.0)))
    return (rows, max(2, round(elements / rows)))


def best_linear_approximation(
    optimizer: Any,
    /,
    *,
    options: Mapping[str, Any] | None = None,
    lr: float | None = None,
    dither: float = 1.0,
    records: int = 8,
    steps: int = 2048,
    elements: int = 32,
    burn_in: int | None = None,
    seed: int = 0,
    layout: str = "auto",
    dtype: str = "float64",
    **constructor_options: Any,
) -> BestLinearApproximation:
    """Probe an optimizer with Gaussian gradients and estimate its best linear approximation.

    Parameters
    ----------
    optimizer : str, class, callable or OptimizerModel
        Dotted path or ``path/to/file.py:Class``, optimizer class or factory,
        or a catalogue model (its numpy reference executor).
    options : mapping, optional
        Constructor keywords (for names that clash with this function's own).
    lr : float, optional
        Learning rate of the records (default: 1.0 when the constructor takes
        ``lr``); updates are per unit lr.  A small lr keeps parameter-dependent
        terms (weight decay) small.
    dither : float
        Standard deviation of the Gaussian gradients.
    records : int
        Independent records (>= 2), seeds ``seed, seed + 1, ...``.
    steps : int
        Steps per record.
    elements : int
        Parameter elements per record (a vector; a matrix of about that many
        entries in the ``"matrix"`` layout).
    burn_in : int, optional
        Steps left out at the start of each record (default ``steps // 4``).
    seed : int
        Seed of the first record.
    layout : {"auto", "scalar", "matrix", "sparse"}
        As in :func:`optfilters.identify.probe` (``"sparse"``: every element is
        present in every sparse gradient).
    dtype : {"float64", "float32"}
        Parameter dtype.
    **constructor_options
        More constructor keywords.

    Returns
    -------
    BestLinearApproximation

    Raises
    ------
    optfilters.identify.IdentificationError
        For a bad path, a failing constructor or step, a non-finite update or
        bad settings.

    Examples
    --------
    >>> from optfilters.dither import best_linear_approximation
    >>> bla = best_linear_approximation("pytorch_optimizer.Lion", records=4, steps=1024, elements=16)
    >>> bla.orders, bla.sign_magnitude  # Lion: sign of ((1 - b1) + (b1 - b2) z^-1) / (1 - b2 z^-1)
    ((1, 1), 1.0)
    >>> bool(abs(bla.poles[0] - 0.99) < 4 * bla.pole_errors[0] + 2e-3)
    True
    """
    from .identify import _make_target, one_torch_thread

    target = _make_target(optimizer, options, constructor_options, None, dtype, layout)
    with one_torch_thread():
        return _probe_bla(
            target, lr=lr, dither=dither, records=records, steps=steps, elements=elements, burn_in=burn_in, seed=seed
        )


def _probe_bla(
    target: Any,
    *,
    lr: float | None,
    dither: float,
    records: int,
    steps: int,
    elements: int,
    burn_in: int | None,
    seed: int,
    shape: tuple[int, ...] | None = None,
) -> BestLinearApproximation:
    """Record Gaussian-dither runs of a probe target (see :mod:`optfilters.identify`) and estimate the BLA."""
    from .identify import IdentificationError, _check_float, _check_int

    check = _check_int
    records = check("records", records, 2, 256)
    steps = check("steps", steps, 64)
    elements = check("elements", elements, 1, 1 << 16)
    burn_in = steps // 4 if burn_in is None else check("burn_in", burn_in, 2, steps // 2)
    dither = _check_float("dither", dither, 0.0)
    seed = check("seed", seed, 0)
    shape = default_shape(target.layout, elements) if shape is None else tuple(shape)
    gradients = np.empty((records, steps, *shape))
    updates = np.empty_like(gradients)
    for i in range(records):
        rng = np.random.default_rng(seed + i)
        gradients[i] = dither * rng.standard_normal((steps, *shape))
        driver = target.driver(0.0, shape, lr)
        for t in range(steps):
            updates[i, t] = driver.step_array(gradients[i, t])
    try:
        return estimate_best_linear_approximation(
            gradients,
            updates,
            burn_in=burn_in,
            dither=dither,
            lr=driver.lr,
            seed=seed,
            shape=shape,
        )
    except ValueError as exc:
        raise IdentificationError(str(exc)) from None
