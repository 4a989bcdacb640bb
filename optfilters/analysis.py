"""SciPy analysis of filters and linear stages, returning small result objects.

All frequencies are in cycles per step (0 to 0.5); ``z = exp(2j*pi*f)``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import exact as _exact
from .catalogue import as_model
from .display import Plottable, RichDisplay
from .errors import (
    InvalidFilterError,
    InvalidHyperparameterError,
    StabilityWarning,
    deprecated_alias,
    deprecated_attribute,
)
from .factored import Cancellation
from .filters import ArmaFilter, complex_pairs
from .model import OptimizerModel
from .stages import LinearStage, Stage, bias_correction
from .validation import (
    MAX_POINTS,
    MAX_STEPS,
    check_integer,
    null_reasons,
    quiet_numerics,
    saturating_float,
    series_null_reason,
)
from .validation import finite_list as _list

__all__ = [
    "FilterSummary",
    "FrequencyResponse",
    "ImpulseResponse",
    "PoleZeroMap",
    "QuasiHyperbolicForm",
    "StepResponse",
    "bias_correct",
    "compensate",
    "cutoff_frequency",
    "frequency_response",
    "impulse_response",
    "mean_delay",
    "noise_gain",
    "pole_zero",
    "quasi_hyperbolic_form",
    "stability_reason",
    "step_response",
    "summarise",
    "time_constant",
    "warn_if_unstable",
]

FloatArray = NDArray[np.float64]
#: What the analysis functions accept: a filter, a linear stage, a model or a catalogue name (with hyperparameters).
FilterLike = ArmaFilter | Stage | OptimizerModel | str


def _as_stage(system: Any, hyperparameters: dict[str, Any] | None = None) -> LinearStage:
    """The linear stage to analyse: a filter's, the stage itself, or a model's gradient filter.

    Models and catalogue names resolve through :func:`optfilters.as_model`
    (the one input resolution); a model contributes its gradient filter (the
    lecture's "gradient filter"), named after the model.
    """
    hps = hyperparameters or {}
    if isinstance(system, ArmaFilter):
        if hps:
            raise InvalidHyperparameterError(f"a filter takes no hyperparameters here, got {', '.join(sorted(hps))}")
        return LinearStage.of(system, system.name or "filter")
    if isinstance(system, Stage):
        if hps:
            raise InvalidHyperparameterError(f"a stage takes no hyperparameters here, got {', '.join(sorted(hps))}")
        inner = system.linear_stages()
        if len(inner) != 1:
            raise TypeError(
                f"a {type(system).__name__} holds {len(inner)} linear stages ({', '.join(inner) or 'none'}); "
                "analyse one of them (stage.linear_stages()[name])"
            )
        return next(iter(inner.values()))
    model = as_model(system, **hps)
    return LinearStage(model.gradient_stage.terms, model.name)


def _as_filter(system: Any, hyperparameters: dict[str, Any] | None = None) -> ArmaFilter:
    if isinstance(system, ArmaFilter) and not hyperparameters:
        return system
    return _as_stage(system, hyperparameters).limit()


def warn_if_unstable(f: ArmaFilter, what: str = "filter") -> None:
    """Issue a :class:`StabilityWarning` when ``f`` is marginal or unstable (it is still analysed).

    Parameters
    ----------
    f : ArmaFilter
        The filter.
    what : str
        How the warning names it.

    Examples
    --------
    >>> import warnings
    >>> from optfilters import ArmaFilter
    >>> from optfilters.analysis import warn_if_unstable
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_if_unstable(ArmaFilter([1.0], [1.0, -1.0]), "summer")
    >>> str(caught[0].message)
    'summer is marginally stable: pole(s) on the unit circle (|p| = 1); its response does not decay'
    """
    reason = stability_reason(f)
    if reason is not None:
        warnings.warn(f"{what} is {reason}", StabilityWarning, stacklevel=3)


def stability_reason(f: ArmaFilter) -> str | None:
    """Why ``f`` is not stable, in words (None when stable): the one wording of marginal and unstable filters.

    Three cases, decided exactly (:attr:`ArmaFilter.stability`, and the exact
    root counts of the reduced denominator,
    :func:`optfilters.exact.unit_circle_counts`): simple poles on the unit
    circle (marginal: the response does not decay), a repeated pole on the
    circle (unstable: the response grows polynomially, like ``t`` for a double
    pole at 1) and a pole outside it (unstable: the response grows
    exponentially).

    Parameters
    ----------
    f : ArmaFilter
        The filter.

    Returns
    -------
    str or None
        ``"marginally stable: ..."`` or ``"UNSTABLE: ..."``; None when every pole is inside.

    Examples
    --------
    >>> from optfilters import ArmaFilter
    >>> stability_reason(ArmaFilter([1.0], [1.0, -2.0, 1.0]))
    'UNSTABLE: repeated pole on the unit circle (|p| = 1); its response grows polynomially'
    >>> stability_reason(ArmaFilter([1.0], [1.0, -1.1]))
    'UNSTABLE: pole(s) outside the unit circle (max |p| = 1.1); its response grows'
    """
    stability = f.stability
    if stability == "stable":
        return None
    reduced = f.minreal()
    poles = reduced.poles
    if poles.size == 0:  # the rounded cancellation took every pole; the exact verdict kept some
        reduced, poles = f, f.poles
    radius = float(np.max(np.abs(poles))) if poles.size else 1.0
    if stability == "marginal":
        return f"marginally stable: pole(s) on the unit circle (|p| = {radius:.6g}); its response does not decay"
    counts = _exact.unit_circle_counts(reduced.exact[1])
    if counts.outside == 0 and counts.repeated_on_circle:
        return f"UNSTABLE: repeated pole on the unit circle (|p| = {radius:.6g}); its response grows polynomially"
    return f"UNSTABLE: pole(s) outside the unit circle (max |p| = {radius:.6g}); its response grows"


# ----------------------------------------------------------------------------- frequency response


@dataclass(frozen=True)
class FrequencyResponse(RichDisplay, Plottable):
    """``H(exp(2j pi f))`` sampled at ``freqs`` (cycles/step).

    Attributes
    ----------
    freqs : ndarray
        Frequencies in cycles per step.
    response : ndarray of complex
        The complex response.
    group_delay : ndarray
        Group delay in steps at ``freqs``.
    name : str
        Label of the filter.
    continuous_phase : ndarray or None
        Phase from the factors (see :attr:`phase`).
    unit_circle_zeros : ndarray
        Frequencies in ``[0, 0.5]`` (cycles/step) of zeros on the unit circle,
        where ``|H| = 0`` exactly (``-inf`` dB) and the phase jumps by ``pi``.

    Examples
    --------
    >>> from optfilters import ArmaFilter, frequency_response
    >>> r = frequency_response(ArmaFilter.ema(0.9), n=3)
    >>> r.magnitude.round(6).tolist()
    [1.0, 0.074329, 0.052632]
    """

    _plot_function = "bode_plot"

    freqs: FloatArray
    response: NDArray[np.complex128]
    group_delay: FloatArray
    name: str = ""
    continuous_phase: FloatArray | None = field(default=None, repr=False)
    unit_circle_zeros: FloatArray = field(default_factory=lambda: np.zeros(0), repr=False)

    @property
    def magnitude(self) -> FloatArray:
        """``|H|``."""
        return np.abs(self.response)

    @property
    def magnitude_db(self) -> FloatArray:
        """``20 log10 |H|`` (``-inf`` at exact zeros)."""
        with np.errstate(divide="ignore"):
            return 20.0 * np.log10(self.magnitude)

    @property
    def phase(self) -> FloatArray:
        """Phase in radians: the sum of per-factor angles, continuous and anchored at DC.

        Independent of the sampling: a coarse grid does not make it jump by
        ``2 pi`` (:func:`optfilters.factored.phase`).  Responses built from
        samples alone fall back to ``numpy.unwrap`` over the finite points (NaN
        only where the response is not finite: a pole on the circle).
        """
        if self.continuous_phase is not None:
            return self.continuous_phase
        response = np.asarray(self.response)
        finite = np.isfinite(response)
        phase = np.full(response.shape, np.nan)
        phase[finite] = np.unwrap(np.angle(response[finite]))
        return phase

    def as_dict(self) -> dict[str, Any]:
        """Plain data: freqs, magnitude, magnitude_db, phase, group_delay (non-finite values as None).

        Returns
        -------
        dict
            ``name``, ``freqs`` (cycles/step), ``magnitude``, ``magnitude_db`` (dB),
            ``phase`` (rad, unwrapped), ``group_delay`` (steps) and
            ``unit_circle_zeros`` as lists; non-finite values as None, each
            field with one explained in ``why_null``.
        """
        series = {
            "magnitude": self.magnitude,
            "magnitude_db": self.magnitude_db,
            "phase": self.phase,
            "group_delay": self.group_delay,
        }
        return {
            "name": self.name,
            "freqs": _list(self.freqs),
            **{key: _list(values) for key, values in series.items()},
            "unit_circle_zeros": _list(self.unit_circle_zeros),
            "why_null": {key: why for key, values in series.items() if (why := _series_why_null(values))},
        }


def _series_why_null(values: ArrayLike) -> str:
    """Why the null entries of a response series are null ("" when every entry is finite)."""
    array = np.asarray(values, dtype=np.float64)
    reasons = []
    if np.any(array == math.inf):
        reasons.append(
            "infinite: a pole on the unit circle at that frequency, or a value beyond the double range "
            "(1.8e+308) (each +inf entry)"
        )
    if np.any(array == -math.inf):
        reasons.append("-inf dB: |H| = 0 exactly, a zero on the unit circle (each -inf entry)")
    if np.any(np.isnan(array)):
        reasons.append("undefined: at a pole on the unit circle (each such entry)")
    return "; ".join(reasons)


def frequency_response(
    system: FilterLike, n: int = 512, freqs: ArrayLike | None = None, **hyperparameters: Any
) -> FrequencyResponse:
    """Frequency response of a filter (or a stage's LTI limit), factor by factor.

    Response, phase and group delay come from the zeros and poles of the
    transfer function (coinciding pole-zero pairs cancelled,
    :meth:`ArmaFilter.minreal`), never from multiplied-out coefficients: the
    phase is continuous and anchored at DC, and at a zero on the unit circle
    the group delay is its limit (:mod:`optfilters.factored`).

    Parameters
    ----------
    system : ArmaFilter, LinearStage, OptimizerModel or str
        A filter, a linear stage (its LTI limit), or a model or catalogue name
        (its gradient filter; see :func:`optfilters.as_model`).
    n : int
        Number of equally spaced frequencies from 0 to 0.5 inclusive, in
        ``[2, MAX_POINTS]`` (:data:`optfilters.validation.MAX_POINTS`, the
        command line's ``--points`` bound).
    freqs : array_like, optional
        Explicit frequencies in cycles per step (overrides ``n``), at most ``MAX_POINTS`` of them.
    **hyperparameters
        Catalogue hyperparameters, with a catalogue name.

    Returns
    -------
    FrequencyResponse
        At a pole on the unit circle the response is ``inf`` (real, so its
        magnitude is ``inf`` and never NaN; the phase is :attr:`FrequencyResponse.phase`).

    Raises
    ------
    InvalidHyperparameterError
        If ``n`` is not an integer in ``[2, MAX_POINTS]``, or more than ``MAX_POINTS`` ``freqs`` are given.
    InvalidFilterError
        If ``freqs`` are not finite.

    Examples
    --------
    >>> from optfilters import ArmaFilter, frequency_response
    >>> r = frequency_response(ArmaFilter([1.0], [1.0, -0.9]), freqs=[0.0, 0.5])
    >>> r.magnitude.round(6).tolist()
    [10.0, 0.526316]
    """
    f = _as_filter(system, hyperparameters)
    warn_if_unstable(f, f"filter {f.name}".strip())
    if freqs is None:
        grid = np.linspace(0.0, 0.5, check_integer(n, "n", 2, MAX_POINTS))
    else:
        grid = np.atleast_1d(np.asarray(freqs, dtype=np.float64))
        if grid.size > MAX_POINTS:
            raise InvalidHyperparameterError(f"freqs must hold at most {MAX_POINTS} frequencies, got {grid.size}")
        if not np.all(np.isfinite(grid)):
            raise InvalidFilterError("freqs must be finite")
    fact = f.minreal().factorisation
    on_circle = [r for r in fact.zeros.values if abs(abs(r) - 1.0) <= 4.0 * np.finfo(np.float64).eps]
    notches = np.unique([abs(math.atan2(r.imag, r.real)) / (2.0 * math.pi) for r in on_circle])
    with quiet_numerics():
        response = fact.response(grid)
    # At a pole on the circle the factor product is inf * (unit phasor) = inf + nan j: report it as real inf.
    response = np.where(np.isfinite(response), response, complex(math.inf, 0.0))
    return FrequencyResponse(
        np.asarray(grid, dtype=np.float64),
        response,
        fact.group_delay(grid),
        f.name,
        continuous_phase=fact.phase(grid),
        unit_circle_zeros=np.asarray(notches, dtype=np.float64),
    )


# ----------------------------------------------------------------------------- poles and zeros


@dataclass(frozen=True)
class PoleZeroMap(RichDisplay, Plottable):
    """Poles, zeros, gain and stability of a filter.

    Attributes
    ----------
    zeros, poles : ndarray of complex
        Roots in ``z`` of the numerator and denominator.
    gain : float
        Leading numerator coefficient over the leading denominator coefficient.
    stability : {"stable", "marginal", "unstable"}
        From the largest pole radius.
    name : str
        Label of the filter.

    Examples
    --------
    >>> from optfilters import ArmaFilter, pole_zero
    >>> pole_zero(ArmaFilter([1.0], [1.0, -1.0])).stability
    'marginal'
    """

    _plot_function = "pole_zero_plot"

    zeros: NDArray[np.complex128]
    poles: NDArray[np.complex128]
    gain: float
    stability: str
    name: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain data with ``[re, im]`` pairs.

        Returns
        -------
        dict
            ``name``, ``zeros`` and ``poles`` as ``[re, im]`` pairs, ``gain`` and ``stability``.
        """
        return {
            "name": self.name,
            "zeros": complex_pairs(self.zeros),
            "poles": complex_pairs(self.poles),
            "gain": self.gain,
            "stability": self.stability,
        }


def pole_zero(system: FilterLike, **hyperparameters: Any) -> PoleZeroMap:
    """Poles, zeros and gain of a filter (or a stage's LTI limit).

    Parameters
    ----------
    system : ArmaFilter, LinearStage, OptimizerModel or str
        A filter, a linear stage (its LTI limit), or a model or catalogue name
        (its gradient filter; see :func:`optfilters.as_model`).
    **hyperparameters
        Catalogue hyperparameters, with a catalogue name.

    Returns
    -------
    PoleZeroMap
        Zeros, poles (complex, in ``z``), gain and stability.

    Examples
    --------
    >>> from optfilters import ArmaFilter, pole_zero
    >>> pz = pole_zero(ArmaFilter([1.9, -0.9], [1.0, -0.9]))
    >>> pz.poles.real.round(6).tolist(), pz.zeros.real.round(6).tolist()
    ([0.9], [0.473684])
    """
    f = _as_filter(system, hyperparameters)
    return PoleZeroMap(f.zeros, f.poles, f.gain, f.stability, f.name)


# ----------------------------------------------------------------------------- time responses


@dataclass(frozen=True)
class StepResponse(RichDisplay, Plottable):
    """Unit-step response of a stage, raw and bias-corrected, from the first step on.

    Attributes
    ----------
    steps : ndarray
        ``1 .. n``.
    raw : ndarray
        The stage's recursion without bias correction.
    bias_corrected : ndarray
        With bias correction applied to every term that starts from rest
        (see :func:`step_response` for the formula).  For an unstable filter
        whose recursion overflows, ``raw`` is ``inf`` and so is
        ``bias_corrected`` from there on (the optimizer's own arithmetic gives
        ``inf`` times a correction that underflowed to 0, a NaN): the run
        diverged (the command line prints ``diverged``).
    applied : bool
        Whether the optimizer itself applies the correction.
    name : str
        Label of the stage.

    Examples
    --------
    >>> from optfilters import ArmaFilter, step_response
    >>> s = step_response(ArmaFilter.ema(0.9), n=3)
    >>> s.raw.round(6).tolist(), s.bias_corrected.round(6).tolist()
    ([0.1, 0.19, 0.271], [1.0, 1.0, 1.0])
    """

    _plot_function = "step_plot"

    steps: NDArray[np.int64]
    raw: FloatArray
    bias_corrected: FloatArray
    applied: bool = False
    name: str = ""
    compensated = deprecated_attribute("bias_corrected", "compensated", "optfilters.StepResponse")

    @property
    def actual(self) -> FloatArray:
        """The response the optimizer produces (bias-corrected if it applies bias correction)."""
        return self.bias_corrected if self.applied else self.raw

    def as_dict(self) -> dict[str, Any]:
        """Plain data; ``step`` is the raw response.

        Returns
        -------
        dict
            ``name``, ``step`` (the raw response), ``bias_corrected`` (lists;
            ``null`` where the recursion overflowed, explained in ``why_null``) and ``applied``.
        """
        return {
            "name": self.name,
            "step": _list(self.raw),
            "bias_corrected": _list(self.bias_corrected),
            "applied": self.applied,
            "why_null": null_reasons(
                {
                    "step": series_null_reason(self.raw, "the step response", "index"),
                    "bias_corrected": series_null_reason(self.bias_corrected, "the bias-corrected response", "index"),
                }
            ),
        }


@dataclass(frozen=True)
class ImpulseResponse(RichDisplay, Plottable):
    """Unit-impulse response of a stage from the first step on (exact, time-varying parts included).

    Attributes
    ----------
    steps : ndarray of int, shape (n,)
        ``1 .. n``.
    values : ndarray, shape (n,)
        The response (per unit impulse at step 1).
    name : str
        Label of the stage.

    Examples
    --------
    >>> from optfilters import ArmaFilter, impulse_response
    >>> impulse_response(ArmaFilter([1.0], [1.0, -0.5]), n=3).values.tolist()
    [1.0, 0.5, 0.25]
    """

    _plot_function = "impulse_plot"

    steps: NDArray[np.int64]
    values: FloatArray
    name: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain data.

        Returns
        -------
        dict
            ``name``, ``impulse`` (the response, a list; non-finite values as
            None) and ``why_null`` (why, when one is).
        """
        return {
            "name": self.name,
            "impulse": _list(self.values),
            "why_null": null_reasons({"impulse": series_null_reason(self.values, "the impulse response", "index")}),
        }


def step_response(system: FilterLike, n: int = 50, **hyperparameters: Any) -> StepResponse:
    """Exact unit-step response of a filter or linear stage, raw and bias-corrected.

    Time-varying stages (bias correction, NAdam's schedule, first-step
    initialisation) are simulated exactly.  For a stage
    ``y_t = sum_i c_i(t) y_i,t`` with terms ``y_i = F_i(x)``, the bias-corrected
    response is::

        y_t = sum_i c_i(t) kappa_i(t) y_i,t,   kappa_i(t) = F_i(1) / s_i[t]

    where ``s_i[t]`` is the step response of ``F_i`` from rest at step ``t``
    (for the EMA, ``kappa = 1 / (1 - beta^t)``: Adam's bias correction), so a
    term started from rest reaches its DC gain from the first step.  A term
    that does not start from rest, because its first output is its first input
    (torch's SGD buffer with dampening, Grokfast's EMA) or it starts from a
    given previous output (Adagrad's initial accumulator), has ``kappa = 1``:
    it carries no start-up bias towards zero to undo.  Terms whose DC gain is
    zero or infinite cannot be corrected and also have ``kappa = 1``.

    Parameters
    ----------
    system : ArmaFilter, LinearStage, OptimizerModel or str
        A filter, a linear stage, or a model or catalogue name (its gradient filter).
    n : int
        Number of steps, in ``[1, MAX_STEPS]`` (:data:`optfilters.validation.MAX_STEPS`).
    **hyperparameters
        Catalogue hyperparameters, with a catalogue name.

    Returns
    -------
    StepResponse
        An unstable filter's overflow saturates quietly to ``inf`` (no RuntimeWarning, no NaN).

    Raises
    ------
    InvalidHyperparameterError
        If ``n`` is not an integer in ``[1, MAX_STEPS]``.

    Examples
    --------
    >>> import optfilters
    >>> s = optfilters.step_response(optfilters.get("momentum", momentum=0.9).gradient, n=2)
    >>> s.raw.round(6).tolist()
    [1.0, 1.9]
    >>> optfilters.step_response("adam", n=2, beta1=0.5).bias_corrected.round(12).tolist()   # its gradient filter
    [1.0, 1.0]
    """
    n = check_integer(n, "n", 1, MAX_STEPS)
    stage = _as_stage(system, hyperparameters)
    ones = np.ones(n)
    raw, corrected = _saturated(stage, ones, False), _saturated(stage, ones, True)
    return StepResponse(np.arange(1, n + 1), raw, corrected, stage.bias_corrected, stage.name)


def _saturated(stage: LinearStage, x: FloatArray, bias_correction: bool | None = None) -> FloatArray:
    """``stage.response(x)`` with overflow saturating quietly: a NaN (``inf * 0``, ``inf - inf``) becomes ``inf``.

    Only a recursion that overflowed makes a NaN from finite input, so the
    response has diverged there: ``inf`` says so, where the NaN said nothing.
    """
    with quiet_numerics():
        y = stage.response(x, bias_correction=bias_correction)
    return np.where(np.isnan(y), math.inf, y)


def impulse_response(system: FilterLike, n: int = 50, **hyperparameters: Any) -> ImpulseResponse:
    """Exact unit-impulse response of a filter or linear stage (as the optimizer runs it).

    Parameters
    ----------
    system : ArmaFilter, LinearStage, OptimizerModel or str
        A filter, a linear stage (as the optimizer runs it), or a model or catalogue name
        (its gradient filter; see :func:`optfilters.as_model`).
    n : int
        Number of steps, in ``[1, MAX_STEPS]`` (:data:`optfilters.validation.MAX_STEPS`).
    **hyperparameters
        Catalogue hyperparameters, with a catalogue name.

    Returns
    -------
    ImpulseResponse
        The response at steps ``1 .. n``; an unstable filter's overflow
        saturates quietly to ``inf`` (no RuntimeWarning, no NaN).

    Raises
    ------
    InvalidHyperparameterError
        If ``n`` is not an integer in ``[1, MAX_STEPS]``.

    Examples
    --------
    >>> import optfilters
    >>> r = optfilters.impulse_response(optfilters.get("adam", beta1=0.5).gradient, n=3)
    >>> r.values.round(6).tolist()   # bias-corrected: 0.5/(1-0.5), 0.25/(1-0.25), ...
    [1.0, 0.333333, 0.142857]
    """
    n = check_integer(n, "n", 1, MAX_STEPS)
    stage = _as_stage(system, hyperparameters)
    x = np.zeros(n)
    x[0] = 1.0
    return ImpulseResponse(np.arange(1, n + 1), _saturated(stage, x), stage.name)


def bias_correct(system: ArmaFilter, x: ArrayLike) -> FloatArray:
    """Filter ``x`` from rest and apply bias correction (``y_t * H(1) / s_t``).

    This is Adam's bias correction (Kingma & Ba 2015, Algorithm 1;
    torch.optim.Adam's ``exp_avg / bias_correction1``) generalised to any
    filter with a finite, non-zero DC gain: the output of a constant input is
    that constant times ``H(1)`` from the first step on.

    Parameters
    ----------
    system : ArmaFilter
        A filter with a finite, non-zero DC gain.
    x : array_like, shape (T,) or (T, ...)
        The input sequence, time along the first axis.

    Returns
    -------
    ndarray, shape of ``x``
        The bias-corrected output.

    Raises
    ------
    InvalidFilterError
        If the DC gain is zero or infinite, or a step response sample is zero.

    Examples
    --------
    >>> from optfilters import ArmaFilter, bias_correct
    >>> bias_correct(ArmaFilter.ema(0.9), [2.0, 2.0, 2.0]).round(12).tolist()
    [2.0, 2.0, 2.0]
    """
    data = np.asarray(x, dtype=np.float64)
    y = system.filter(data)
    corrections = np.array([bias_correction(system, t) for t in range(1, data.shape[0] + 1)])
    shape = (-1,) + (1,) * (data.ndim - 1)
    return np.asarray(y / corrections.reshape(shape), dtype=np.float64)


#: Former name (the field's term is bias correction), kept as a deprecated alias.
compensate = deprecated_alias(bias_correct, "compensate", "optfilters")


# ----------------------------------------------------------------------------- scalar summaries


def noise_gain(system: FilterLike, **hyperparameters: Any) -> float:
    """White-noise power gain ``sum_n h[n]^2``: how much gradient-noise variance passes.

    Astrom's recursion on the exact coefficients of the transfer function
    (coinciding pole-zero pairs cancelled), in rational arithmetic or, above
    degree 4, in interval arithmetic to within a unit in the last place
    (:func:`optfilters.exact.noise_gain`): no expanded-polynomial rounding.
    ``inf`` for marginal or unstable filters.

    Parameters
    ----------
    system : ArmaFilter, LinearStage, OptimizerModel or str
        A filter, a linear stage (its LTI limit), or a model or catalogue name
        (its gradient filter; see :func:`optfilters.as_model`).
    **hyperparameters
        Catalogue hyperparameters, with a catalogue name.

    Returns
    -------
    float
        ``sum_n h[n]^2`` (dimensionless; ``inf`` when not stable).

    Examples
    --------
    >>> from optfilters import ArmaFilter, noise_gain
    >>> round(noise_gain(ArmaFilter.ema(0.9)), 12)   # (1 - beta) / (1 + beta)
    0.052631578947
    """
    f = _as_filter(system, hyperparameters).minreal()
    if f.stability != "stable":
        return math.inf
    num, den = f.exact
    value = _exact.noise_gain(num, den)
    return math.inf if value is None else saturating_float(value)


def mean_delay(system: FilterLike, **hyperparameters: Any) -> float:
    """Mean delay (lag) in steps: ``sum n h[n] / sum h[n]``, the group delay at DC.

    Exact, then rounded: ``sum k b_k / sum b_k - sum k a_k / sum a_k`` in
    rational arithmetic on the transfer function's exact coefficients
    (coinciding pole-zero pairs cancelled).  Never NaN: ``inf`` with a pole
    at ``z = 1`` (``sum h[n]`` diverges, so does the weighted sum: the
    integrator's lag grows without bound), and with a zero DC gain, where the
    ratio is ``x / 0``, the group delay at DC is its limit ``f -> 0``
    (:attr:`FrequencyResponse.group_delay` at 0: 0.5 steps for the
    differencer ``1 - z^-1``).

    Parameters
    ----------
    system : ArmaFilter, LinearStage, OptimizerModel or str
        A filter, a linear stage (its LTI limit), or a model or catalogue name
        (its gradient filter; see :func:`optfilters.as_model`).
    **hyperparameters
        Catalogue hyperparameters, with a catalogue name.

    Returns
    -------
    float
        The delay in steps (``inf`` with a pole at ``z = 1``).

    Examples
    --------
    >>> from optfilters import ArmaFilter, mean_delay
    >>> round(mean_delay(ArmaFilter.ema(0.9)), 9)   # beta / (1 - beta)
    9.0
    """
    f = _as_filter(system, hyperparameters).minreal()
    num, den = f.exact
    value = _exact.mean_delay(num, den)
    if value is not None:
        return saturating_float(value)
    if sum(den) == 0:
        return math.inf
    return float(_unit_scaled(f).factorisation.group_delay(np.zeros(1))[0])


def cutoff_frequency(system: FilterLike, **hyperparameters: Any) -> float | None:
    """The -3 dB frequency (cycles/step): where ``|H|`` first falls to ``|H(1)| / sqrt(2)``.

    None when the DC gain is zero or infinite (a pole at ``z = 1``), or the
    response never falls that far.  Independent of the scale of ``b``: it is
    computed with ``b`` scaled by a power of two to a largest coefficient in
    ``[0.5, 1)``, so ``b = [1e308]`` (DC gain beyond the double range) and
    ``b = [5e-324]`` have the cutoff of ``b = [1]``.

    Parameters
    ----------
    system : ArmaFilter, LinearStage, OptimizerModel or str
        A filter, a linear stage (its LTI limit), or a model or catalogue name
        (its gradient filter; see :func:`optfilters.as_model`).
    **hyperparameters
        Catalogue hyperparameters, with a catalogue name.

    Returns
    -------
    float or None
        Frequency in cycles per step (0 to 0.5), or None.

    Examples
    --------
    >>> from optfilters import ArmaFilter, cutoff_frequency
    >>> round(cutoff_frequency(ArmaFilter.ema(0.9)), 6)
    0.016784
    """
    from scipy import optimize

    f = _unit_scaled(_as_filter(system, hyperparameters).minreal())
    dc = abs(f.dc_gain)
    if not math.isfinite(dc) or dc == 0.0:
        return None
    target = dc / math.sqrt(2.0)
    fact = f.factorisation
    # A uniform grid, and a logarithmic one for low cutoffs.
    grid = np.unique(np.concatenate([np.linspace(0.0, 0.5, 4097), np.geomspace(1e-9, 0.5, 2049)]))
    mags = np.abs(fact.response(grid))
    below = np.flatnonzero(mags <= target)
    if below.size == 0:
        return None
    i = int(below[0])
    if i == 0:
        return 0.0

    def excess(x: float) -> float:
        return float(np.abs(fact.response([x]))[0]) - target

    return float(optimize.brentq(excess, grid[i - 1], grid[i], xtol=1e-15, rtol=1e-14))


def _unit_scaled(f: ArmaFilter) -> ArmaFilter:
    """``f`` with ``b`` scaled exactly by a power of two to a largest ``|coefficient|`` in ``[0.5, 1)``.

    Ratios of responses (the cutoff, delays, normalised responses) do not
    depend on the scale of ``b``; computed on this form they neither overflow
    (``b = [1e308]``) nor lose digits to subnormals (``b = [5e-324]``).
    """
    peak = float(np.max(np.abs(f.b))) if f.b.size else 0.0
    if peak == 0.0 or not math.isfinite(peak):
        return f
    exponent = math.frexp(peak)[1]
    if exponent == 0:
        return f
    return ArmaFilter(np.ldexp(f.b, -exponent), f.a, name=f.name)


def time_constant(system: FilterLike, **hyperparameters: Any) -> float:
    """E-folding time of the slowest mode, ``-1 / ln max|pole|``, in steps (0 for FIR, inf if marginal).

    Parameters
    ----------
    system : ArmaFilter, LinearStage, OptimizerModel or str
        A filter, a linear stage (its LTI limit), or a model or catalogue name
        (its gradient filter; see :func:`optfilters.as_model`).
    **hyperparameters
        Catalogue hyperparameters, with a catalogue name.

    Returns
    -------
    float
        Steps (0 for FIR filters, ``inf`` with a pole on the unit circle).

    Examples
    --------
    >>> from optfilters import ArmaFilter
    >>> from optfilters.analysis import time_constant
    >>> round(time_constant(ArmaFilter.ema(0.9)), 4)
    9.4912
    """
    f = _as_filter(system, hyperparameters).minreal()
    poles = f.factorisation.poles.values
    radius = float(np.max(np.abs(poles))) if poles.size else 0.0
    if radius == 0.0:
        return 0.0
    if f.stability != "stable" or radius >= 1.0:
        return math.inf
    # log1p keeps the digits of a pole near 1; log a pole near 0 (radius - 1 rounds to -1 below 1e-16)
    return -1.0 / (math.log(radius) if radius < 0.5 else math.log1p(radius - 1.0))


@dataclass(frozen=True)
class QuasiHyperbolicForm(RichDisplay):
    """A first-order filter as quasi-hyperbolic momentum: ``alpha [(1 - nu) + nu (1 - beta)/(1 - beta z^-1)]``.

    ``alpha = H(1)`` is the effective learning-rate multiplier (DC gain).

    Attributes
    ----------
    alpha : float
        The DC gain ``H(1)``.
    beta : float
        The pole.
    nu : float
        The weight of the momentum term (0: plain SGD, 1: normalised EMA).

    Examples
    --------
    >>> from optfilters import ArmaFilter, quasi_hyperbolic_form
    >>> qh = quasi_hyperbolic_form(ArmaFilter([1.0], [1.0, -0.9]))
    >>> round(qh.alpha, 9), round(qh.beta, 9), round(qh.nu, 9)
    (10.0, 0.9, 1.0)
    """

    alpha: float
    beta: float
    nu: float

    def to_filter(self) -> ArmaFilter:
        """Back to b/a: ``alpha [1 - nu beta, -(1 - nu) beta] / [1, -beta]``.

        Returns
        -------
        ArmaFilter
            The first-order filter with these ``alpha``, ``beta`` and ``nu``.
        """
        return ArmaFilter(
            [self.alpha * (1.0 - self.nu * self.beta), -self.alpha * (1.0 - self.nu) * self.beta], [1.0, -self.beta]
        )

    def as_dict(self) -> dict[str, float]:
        """Plain data.

        Returns
        -------
        dict
            ``alpha``, ``beta`` and ``nu``.
        """
        return {"alpha": self.alpha, "beta": self.beta, "nu": self.nu}


def quasi_hyperbolic_form(system: FilterLike, **hyperparameters: Any) -> QuasiHyperbolicForm:
    """The QHM canonical form (``alpha = H(1)``, ``beta``, ``nu``) of a one-pole/one-zero filter.

    ``(b0 + b1 z^-1) / (1 - beta z^-1)`` equals QHM with ``alpha = (b0 + b1)/(1 - beta)``,
    the same ``beta`` and ``nu = (1 - b0/alpha) / beta``.  FIR gains
    (``beta = 0``) give ``nu = 0``.

    Parameters
    ----------
    system : ArmaFilter, LinearStage, OptimizerModel or str
        A filter, a linear stage (its LTI limit), or a model or catalogue name
        (its gradient filter; see :func:`optfilters.as_model`).
    **hyperparameters
        Catalogue hyperparameters, with a catalogue name.

    Returns
    -------
    QuasiHyperbolicForm
        ``alpha``, ``beta`` and ``nu``.

    Raises
    ------
    InvalidFilterError
        If the filter is not first order, or its DC gain is zero or infinite.

    Examples
    --------
    >>> import optfilters
    >>> lion = optfilters.get("lion", beta1=0.9, beta2=0.99).filters()["gradient"]
    >>> qh = optfilters.quasi_hyperbolic_form(lion)
    >>> round(qh.nu, 9) == round(0.9 / 0.99, 9), round(qh.alpha, 9)
    (True, 1.0)
    """
    f = _as_filter(system, hyperparameters)
    if f.order > 1 or f.b.size > 2:
        raise InvalidFilterError(f"the quasi-hyperbolic form needs a one-pole, one-zero filter, got order {f.order}")
    b = np.zeros(2)
    b[: f.b.size] = f.b
    beta = float(-f.a[1]) if f.a.size > 1 else 0.0
    with quiet_numerics():  # a DC gain beyond the double range saturates to inf (refused below)
        alpha = float((b[0] + b[1]) / (1.0 - beta)) if beta != 1.0 else math.inf
    if not math.isfinite(alpha) or alpha == 0.0:
        raise InvalidFilterError(f"the quasi-hyperbolic form needs a finite, non-zero DC gain, got {alpha}")
    nu = 0.0 if beta == 0.0 else (1.0 - b[0] / alpha) / beta
    return QuasiHyperbolicForm(alpha, beta, float(nu))


#: Why a filter's ``quasi_hyperbolic`` is null in JSON (``why_null``).
NO_QUASI_HYPERBOLIC = "undefined: only a first-order filter with a finite, non-zero DC gain has that form"


@dataclass(frozen=True)
class FilterSummary(RichDisplay):
    """Scalar facts about a filter: gains, cutoff, noise gain, delay, poles, zeros, stability.

    Attributes
    ----------
    name : str
        Label of the filter.
    b, a : ndarray
        Coefficients in powers of ``z^-1``.
    order : int
        Number of poles.
    dc_gain, nyquist_gain : float
        ``|H|`` at frequency 0 and 0.5 cycles/step.
    cutoff : float or None
        The -3 dB frequency (:func:`cutoff_frequency`).
    noise_gain : float
        :func:`noise_gain`.
    mean_delay : float
        :func:`mean_delay`, in steps.
    time_constant : float
        :func:`time_constant`, in steps.
    zeros, poles : ndarray of complex
        Roots in ``z``.
    stability : {"stable", "marginal", "unstable"}
        From the largest pole radius.
    quasi_hyperbolic : QuasiHyperbolicForm or None
        For first-order filters with a finite, non-zero DC gain.
    cancelled : tuple of Cancellation
        The pole-zero pairs cancelled in the minimal realisation the facts are computed from.

    Examples
    --------
    >>> from optfilters import ArmaFilter, summarise
    >>> s = summarise(ArmaFilter.ema(0.9))
    >>> round(s.dc_gain, 9), round(s.mean_delay, 9), s.stability
    (1.0, 9.0, 'stable')
    """

    name: str
    b: FloatArray
    a: FloatArray
    order: int
    dc_gain: float
    nyquist_gain: float
    cutoff: float | None
    noise_gain: float
    mean_delay: float
    time_constant: float
    zeros: NDArray[np.complex128]
    poles: NDArray[np.complex128]
    stability: str
    quasi_hyperbolic: QuasiHyperbolicForm | None = field(default=None)
    cancelled: tuple[Cancellation, ...] = field(default=())

    @property
    def nyquist_over_dc(self) -> float | None:
        """``|H(-1) / H(1)|``, exact then rounded (None with a zero DC gain or a pole at ``z = 1`` or ``z = -1``).

        A ratio, so independent of the scale of ``b``: ``b = [1e308]`` and
        ``b = [5e-324]`` over ``1 - 0.5 z^-1`` both give ``(2/3) / 2 = 1/3``,
        where the rounded gains (``inf``; ``4.9e-324 / 9.9e-324``) would not.

        Examples
        --------
        >>> from optfilters import ArmaFilter, summarise
        >>> [round(summarise(ArmaFilter([c], [1.0, -0.5])).nyquist_over_dc, 12) for c in (1e308, 5e-324)]
        [0.333333333333, 0.333333333333]
        """
        num, den = ArmaFilter(self.b, self.a).minreal().exact
        dc, nyquist = _exact.value_at_one(num, den), _exact.value_at_minus_one(num, den)
        if dc is None or nyquist is None or dc == 0:
            return None
        return saturating_float(abs(nyquist / dc))

    @property
    def notes(self) -> list[str]:
        """What the numbers rest on: each cancelled pole-zero pair (the summary is of the reduced filter)."""
        if not self.cancelled:
            return []
        lines = [c.describe() for c in self.cancelled]
        lines.append("gains, noise gain, delays and stability are those of the filter with these pairs cancelled")
        return lines

    def as_dict(self) -> dict[str, Any]:
        """Plain data (non-finite numbers as None).

        Returns
        -------
        dict
            Every attribute as plain data (complex roots as ``[re, im]`` pairs,
            non-finite numbers as None), plus ``stable``, ``marginal`` and ``notes``.
        """

        def num(x: float | None) -> float | None:
            return x if x is not None and math.isfinite(x) else None

        return {
            "name": self.name,
            "b": self.b.tolist(),
            "a": self.a.tolist(),
            "order": self.order,
            "dc_gain": num(self.dc_gain),
            "nyquist_gain": num(self.nyquist_gain),
            "cutoff": num(self.cutoff),
            "noise_gain": num(self.noise_gain),
            "mean_delay": num(self.mean_delay),
            "time_constant": num(self.time_constant),
            "zeros": complex_pairs(self.zeros),
            "poles": complex_pairs(self.poles),
            "stability": self.stability,
            "stable": self.stability == "stable",
            "marginal": self.stability == "marginal",
            "quasi_hyperbolic": self.quasi_hyperbolic.as_dict() if self.quasi_hyperbolic else None,
            "cancelled": [c.describe() for c in self.cancelled],
            "notes": self.notes,
            "why_null": self._why_null(),
        }

    def _why_null(self) -> dict[str, str]:
        """Why each null of :meth:`as_dict` is null."""
        dc = self.dc_gain
        f = ArmaFilter(self.b, self.a)
        no_dc = "undefined: a zero DC gain" if dc == 0.0 else "infinite: a pole at z = 1 (an infinite DC gain)"
        return null_reasons(
            {
                "dc_gain": (dc, f.gain_null_reason(1)),
                "nyquist_gain": (self.nyquist_gain, f.gain_null_reason(-1)),
                "cutoff": (
                    self.cutoff,
                    "undefined: the response never falls 3 dB below its DC gain"
                    if math.isfinite(dc) and dc != 0.0
                    else no_dc,
                ),
                "noise_gain": (
                    self.noise_gain,
                    "infinite: the filter is not stable (its impulse response does not decay)"
                    if self.stability != "stable"
                    else "infinite: overflows the double range (sum h[n]^2 > 1.8e+308)",
                ),
                "mean_delay": (self.mean_delay, no_dc if not (math.isfinite(dc) and dc != 0.0) else "undefined"),
                "time_constant": (self.time_constant, "infinite: a pole on the unit circle (or outside it)"),
                "quasi_hyperbolic": (None if self.quasi_hyperbolic is None else 0.0, NO_QUASI_HYPERBOLIC),
            }
        )


def summarise(system: FilterLike, **hyperparameters: Any) -> FilterSummary:
    """All scalar facts about a filter (or a stage's LTI limit) in one object.

    Gains, noise gain, delays, cutoff and stability are those of the transfer
    function: coinciding pole-zero pairs cancel first
    (:meth:`ArmaFilter.minreal`), and :attr:`FilterSummary.cancelled` and
    :attr:`FilterSummary.notes` say so.

    Parameters
    ----------
    system : ArmaFilter, LinearStage, OptimizerModel or str
        A filter, a linear stage (its LTI limit), or a model or catalogue name
        (its gradient filter; see :func:`optfilters.as_model`).
    **hyperparameters
        Catalogue hyperparameters, with a catalogue name.

    Returns
    -------
    FilterSummary
        Order, DC and Nyquist gains, poles, stability, noise gain, delays, cutoff, QHM form.

    Examples
    --------
    >>> from optfilters import ArmaFilter, summarise
    >>> summarise(ArmaFilter([1.0], [1.0, -1.0])).stability   # Adagrad's summer
    'marginal'
    >>> s = summarise(ArmaFilter([1.0, -1.0], [1.0, -1.9, 0.9]))   # momentum 0.9 with a cancelled pair
    >>> s.stability, round(s.dc_gain, 9), round(s.noise_gain, 5), round(s.mean_delay, 9), len(s.cancelled)
    ('stable', 10.0, 5.26316, 9.0, 1)
    """
    f = _as_filter(system, hyperparameters)
    qh = None
    if f.order <= 1 and f.b.size <= 2:
        try:
            qh = quasi_hyperbolic_form(f)
        except InvalidFilterError:
            qh = None
    return FilterSummary(
        name=f.name,
        b=f.b,
        a=f.a,
        order=f.order,
        dc_gain=f.dc_gain,
        nyquist_gain=f.nyquist_gain,
        cutoff=cutoff_frequency(f),
        noise_gain=noise_gain(f),
        mean_delay=mean_delay(f),
        time_constant=time_constant(f),
        zeros=f.zeros,
        poles=f.poles,
        stability=f.stability,
        quasi_hyperbolic=qh,
        cancelled=f.cancellations(),
    )
