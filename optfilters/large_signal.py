"""Large-signal response of normalised optimizers to a change of gradient scale (Adam's update spike).

A normaliser makes the update bounded but not smooth: after the gradient's
scale jumps, the numerator (a filter of ``g``) and the denominator (the root
of a filter of ``g^2``) follow at their own speeds, and the update overshoots
its steady state when the denominator is the slower one.  For Adam with a
long history at scale 1 and then scale ``r`` (``eps`` negligible), the update
``j`` steps after the jump is exactly

    u_j = (r - (r - 1) beta1^(j+1)) / sqrt(r^2 - (r^2 - 1) beta2^(j+1)),

so with ``beta1 = 0.9`` a 10x jump peaks at 5.2017 times the steady state with
``beta2 = 0.999`` (17 steps after the jump) and at 1.1104 with ``beta2 = 0.95``
(18 steps after), which is why large-model recipes take ``beta2 = 0.95``.

Everything here is the model's own exact recursion
(:meth:`optfilters.OptimizerModel.simulate`, open loop: the gradient sequence
is given), so it holds for every normalised model of the catalogue (Adam,
AdamW, AMSGrad, NAdam, RAdam, Adamax, RMSprop, Adagrad, Adadelta, QHAdam,
AdEMAMix, ...) with its bias correction, eps and first-step rules; the closed
form above is only the check.  Weight decay is left out (the update direction
per unit learning rate is what is measured; catalogue models are rebuilt with
``weight_decay=0``).

Definitions
-----------
* The **update** ``u_t`` is the step per unit learning rate, ``-(theta_t -
  theta_{t-1}) / lr``, under the gradient ``g_t = s_t`` (the scale sequence).
* The **steady state** ``u_ss(s)`` is ``lim |u_t|`` under the gradient held
  constant at ``s``: the model run from rest for as many steps as its slowest
  linear stage needs to decay to ``1e-6`` (``settle_steps``), its last update.
  For Adam with ``eps << s`` it is ``s / (s + eps)``, i.e. 1.
* The **peak ratio** is ``max |u_t|`` over the steps from the change on,
  divided by ``u_ss`` of the scale *before* the change.
* "How long the small scale lasted" is ``before``: ``None`` means
  ``settle_steps`` (the long-history limit); a shorter history gives a smaller
  spike when the normaliser is bias-corrected (its correction still weighs new
  squared gradients more).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .catalogue import CATALOGUE, get
from .closed_loop import ModelLike, as_model
from .display import Plottable
from .errors import InvalidHyperparameterError
from .model import OptimizerModel
from .validation import check_distinct
from .validation import finite_or_none as _finite_or_none

__all__ = [
    "BoundedRegion",
    "LargeSignalResponse",
    "PeakRatioMap",
    "adam_step_closed_form",
    "bounded_region",
    "burst_response",
    "peak_ratio",
    "peak_ratio_map",
    "scale_response",
    "settle_steps",
    "steady_update",
    "step_response",
]

FloatArray = NDArray[np.float64]

#: The slowest linear stage decays to this fraction in :func:`settle_steps` steps.
SETTLE_TOLERANCE = 1e-6

#: Longest run accepted (a pole too close to 1 asks for more steps than this).
MAX_STEPS = 2_000_000


def _model(model: ModelLike, hyperparameters: dict[str, Any]) -> OptimizerModel:
    """The model with its weight decay removed (catalogue models), checked to have no sign stage."""
    m = as_model(model, **hyperparameters)
    if m.weight_decay is not None and m.weight_decay.weight_decay != 0.0:
        if m.name in CATALOGUE and "weight_decay" in CATALOGUE[m.name].defaults():
            m = as_model(m, weight_decay=0.0)
        else:
            raise InvalidHyperparameterError(f"{m.name} has weight decay; give a model without it")
    return m


def settle_steps(model: ModelLike, tolerance: float = SETTLE_TOLERANCE, **hyperparameters: Any) -> int:
    """Steps for the slowest pole of the model's linear stages to decay to ``tolerance`` (at least 1).

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        The optimizer: a catalogue name, a model or a gradient filter (see :func:`optfilters.as_model`).
    tolerance : float
        In ``(0, 1)``.
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    int
        ``ceil(log(tolerance) / log(rho))`` steps for the largest pole modulus ``rho`` (at least 1).

    Raises
    ------
    InvalidHyperparameterError
        When a stage has a pole on or outside the unit circle (Adagrad's
        summer: there is no steady state; give ``before`` explicitly), the
        step size itself varies (ASGD's decay, Adafactor's relative step,
        Rprop's adaptation) or the model is periodic (Lookahead).

    Examples
    --------
    >>> from optfilters.large_signal import settle_steps
    >>> settle_steps("adam", beta1=0.9, beta2=0.999)        # log(1e-6) / log(0.999)
    13809
    """
    if not (0.0 < tolerance < 1.0):
        raise InvalidHyperparameterError(f"tolerance must be in (0, 1), got {tolerance}")
    m = as_model(model, **hyperparameters)
    if m.period is not None:
        raise InvalidHyperparameterError(
            f"{m.name} is periodically time-varying (period {m.period}): its update has no steady state "
            "(give the history length explicitly)"
        )
    for stage in m.pipeline:
        if stage.role == "learning_rate" and not (stage.is_linear and stage.is_time_invariant):
            raise InvalidHyperparameterError(
                f"{m.name}'s step size changes with the step or the gradient history ({stage.describe()}): no "
                "steady state (give the history length explicitly)"
            )
    radius = 0.0
    for name, f in m.filters().items():
        poles = np.abs(f.poles)
        if poles.size and float(np.max(poles)) >= 1.0:
            raise InvalidHyperparameterError(
                f"{m.name}'s {name} filter has a pole on or outside the unit circle: no steady state "
                "(give the history length explicitly)"
            )
        if poles.size:
            radius = max(radius, float(np.max(poles)))
    if radius == 0.0:
        return 1
    steps = math.ceil(math.log(tolerance) / math.log(radius))
    if steps > MAX_STEPS:
        raise InvalidHyperparameterError(
            f"{m.name} needs {steps} steps to settle (slowest pole {radius:.9g}); at most {MAX_STEPS}"
        )
    return max(steps, 1)


#: Steady states of catalogue models already computed, by (name, hyperparameters, scale before, scale after).
_STEADY: dict[tuple[Any, ...], tuple[float, float]] = {}


def _steady_key(m: OptimizerModel, first: float, second: float) -> tuple[Any, ...] | None:
    """A cache key for catalogue models (rebuilt from their hyperparameters alone); None for other models."""
    if m.name not in CATALOGUE or get(m.name, **dict(m.hyperparameters)) != m:
        return None
    return (m.name, tuple(sorted((k, repr(v)) for k, v in m.hyperparameters.items())), first, second)


def _updates(m: OptimizerModel, scales: FloatArray) -> FloatArray:
    """Update per unit learning rate for each column of ``scales`` (time on axis 0)."""
    from .open_loop import simulate_open_loop  # the recursion over the whole sequence at once (same numbers)

    trajectory = simulate_open_loop(m, scales, theta0=np.zeros(scales.shape[1:]), lr=1.0)
    return np.asarray(-trajectory.updates, dtype=np.float64)


#: The largest gradient of a sequence is run at ``2**SCALED_TOP`` (its square, ``2**800``, stays finite and
#: the smallest positive gradient, ``2**-1074`` times it, stays a normal number).
SCALED_TOP = 400

#: A rise of the running largest gradient by more than ``2**_SEGMENT_JUMP`` starts a new rescaled run (below
#: it, the smallest gradient run with the largest at ``2**SCALED_TOP`` still has a normal square).
_SEGMENT_JUMP = 900

#: Largest ``|log2|`` of a rescaled eps.
_SCALED_RANGE = 1000

#: Largest ``log2`` of a rescaled gradient (its square stays finite).
_SCALED_TOP_LIMIT = 510


@dataclass(frozen=True)
class _Scaling:
    """How the model's update transforms when every gradient is multiplied by ``c`` (checked, not assumed).

    ``u(c g; eps * c**eps_degree) = c**degree * u(g; eps)`` for the hyperparameter ``eps``
    (None: no hyperparameter moves).
    """

    eps: str | None
    eps_degree: int
    degree: int

    def run(self, m: OptimizerModel, scales: FloatArray, exponent: int) -> FloatArray:
        """The updates of ``scales`` (one column) computed at ``scales * 2**-exponent``, mapped back."""
        if self.eps is not None:
            eps = float(m.hyperparameters[self.eps])
            m = as_model(m, **{self.eps: math.ldexp(eps, -exponent * self.eps_degree)})
        with np.errstate(all="ignore"):  # ldexp is exact (or rounds a subnormal result); callers check the result
            return np.ldexp(_updates(m, np.ldexp(scales, -exponent)), exponent * self.degree)

    def exponent(self, m: OptimizerModel, high: float, top: int | None) -> int:
        """The power of two to divide by: ``high`` to ``2**top`` (None: a constant column, balanced against eps).

        Kept where the largest rescaled gradient is at most ``2**510`` (finite squares) and the rescaled eps
        within ``2**-1000 .. 2**1000``.

        Raises
        ------
        InvalidHyperparameterError
            If no power of two does both (eps and the gradients are too far apart for float64).
        """
        e_high = math.frexp(high)[1]
        eps = float(m.hyperparameters[self.eps]) if self.eps is not None else 0.0
        k = self.eps_degree if eps > 0.0 else 0
        e_eps = math.frexp(eps)[1]
        if top is not None:
            exponent = e_high - top
        elif k:  # rescaled gradient**k and eps equally far from 1 (Adam at 5e-324 with eps 1e-8: 2**-523, 2**524)
            exponent = round((k * e_high + e_eps) / (2 * k))
        else:
            exponent = e_high
        lowest = e_high - _SCALED_TOP_LIMIT
        if k:
            exponent = min(max(exponent, math.ceil((e_eps - _SCALED_RANGE) / k)), (e_eps + _SCALED_RANGE) // k)
        exponent = max(exponent, lowest)
        if k and not (-_SCALED_RANGE <= e_eps - k * exponent <= _SCALED_RANGE):
            raise InvalidHyperparameterError(
                f"{m.name}: {self.eps} = {eps:g} and gradients up to {high:.6g} are too far apart for float64, "
                "even rescaled by a power of two (give a smaller ratio or scale, or another eps)"
            )
        return exponent


#: Largest ``|log2|`` of a gradient run without rescaling (its square and fourth power stay normal numbers).
_UNSCALED_RANGE = 250

#: Scalings found for catalogue models, by the key of :func:`_steady_key`.
_SCALINGS: dict[tuple[Any, ...], _Scaling | None] = {}

#: The probe of :func:`_scaling`: a gradient sequence (times each probe scale) and the factor tried.
_PROBE = np.array([1.0, 3.0, 0.5, 2.0, 7.0, 0.25, 1.5, 4.0, 1.0, 0.5, 6.0, 2.0])
_PROBE_FACTOR = 20


def _scaling(m: OptimizerModel) -> _Scaling | None:
    """The model's scaling law, found by running it on a probe at ``c = 2**20`` (None: none holds to 1e-9).

    Tried: no hyperparameter moving, then a catalogue ``eps`` moving like ``c`` or ``c**2`` (torch.optim's
    ``sqrt(v) + eps`` and ``sqrt(v + eps)``); each on probes at the scales where eps matters (``eps``,
    ``sqrt(eps)``) and at 1, with the update's degree read from the first step.
    """
    key = _steady_key(m, 0.0, 0.0)
    if key is not None and key in _SCALINGS:
        return _SCALINGS[key]
    eps = m.hyperparameters.get("eps") if m.name in CATALOGUE else None
    candidates: list[tuple[str | None, int]] = [(None, 0)]
    levels = [1.0]
    if isinstance(eps, float) and math.isfinite(eps) and eps > 0.0:
        candidates = [("eps", 1), ("eps", 2)]
        levels = [1.0, eps, math.sqrt(eps)]
    found = None
    for name, k in candidates:
        law: _Scaling | None = _Scaling(name, k, 0)
        for level in levels:
            probe = (_PROBE * level)[:, None]
            with np.errstate(all="ignore"):
                base = _updates(m, probe)[:, 0]
                moved = _Scaling(name, k, 0).run(m, probe, -_PROBE_FACTOR)[:, 0]  # at c * probe, eps * c**k
            nonzero = np.isfinite(base) & (base != 0.0)
            if not (np.all(np.isfinite(moved)) and np.any(nonzero)):
                law = None
                break
            first = float(moved[nonzero][0] / base[nonzero][0])
            degree = round(math.log2(abs(first)) / _PROBE_FACTOR) if first else -1
            if degree not in (0, 1) or not np.allclose(
                moved, base * math.ldexp(1.0, _PROBE_FACTOR * degree), rtol=1e-9, atol=0.0
            ):
                law = None
                break
            law = _Scaling(name, k, degree)
        if law is not None:
            found = law
            break
    if key is not None:
        _SCALINGS[key] = found
    return found


def _scaled_updates(m: OptimizerModel, scales: FloatArray, top: int | None) -> FloatArray:
    """Updates of one positive column, run at a power-of-two rescaling where the model has a checked law.

    ``top``: the largest gradient goes to ``2**top`` (None: the geometric middle to 1, for a constant column).
    Models without a law run as given.
    """
    law = _scaling(m)
    if law is None:
        low, high = math.frexp(float(np.min(scales)))[1], math.frexp(float(np.max(scales)))[1]
        if not (-_UNSCALED_RANGE <= low and high <= _UNSCALED_RANGE):
            raise InvalidHyperparameterError(
                f"{m.name}: gradients from {np.min(scales):.6g} to {np.max(scales):.6g} leave the range whose "
                f"squares float64 holds (2**-{_UNSCALED_RANGE} .. 2**{_UNSCALED_RANGE}), and its update has no "
                "scaling law to rescale them by (give a smaller ratio or scale)"
            )
        return _updates(m, scales[:, None])[:, 0]
    if top is None:
        exponent = law.exponent(m, float(np.max(scales)), top)
        return law.run(m, scales[:, None], exponent)[:, 0]
    # The recursion is causal: the steps before the running maximum jumps by more than 2**200 run on their
    # own prefix at their own power of two (a long history at 1 before a step to 1e308 keeps its squares).
    out = np.empty_like(scales)
    running = np.maximum.accumulate(scales)
    start = 0
    while start < scales.size:
        jumps = np.flatnonzero(np.frexp(running[start:])[1] > np.frexp(running[start])[1] + _SEGMENT_JUMP)
        stop = scales.size if jumps.size == 0 else start + int(jumps[0])
        # The earlier steps (kept from their own run) are raised to 2**-900 of this segment's largest
        # gradient, whose squares stay normal: assumed negligible, and checked by raising them to 2**-800.
        runs = []
        for level in (_SEGMENT_JUMP, _SEGMENT_JUMP - 100):
            top_exponent = int(np.frexp(running[stop - 1])[1])
            prefix = np.maximum(scales[:stop], math.ldexp(1.0, top_exponent - level) if start else 0.0)
            prefix[start:] = scales[start:stop]
            exponent = law.exponent(m, float(running[stop - 1]), top)
            runs.append(law.run(m, prefix[:, None], exponent)[start:stop, 0])
            if not start:
                break
        # A degree-1 update (Adadelta's) carries its own scale-free memory: the history is not negligible.
        if (start and law.degree != 0) or not np.allclose(runs[0], runs[-1], rtol=1e-12, atol=0.0):
            raise InvalidHyperparameterError(
                f"{m.name}: gradients from {np.min(scales):.6g} to {np.max(scales):.6g} span more than float64 "
                "holds squared, and the history before the rise is not negligible (give a smaller ratio)"
            )
        out[start:stop] = runs[0]
        start = stop
    return out


def steady_update(model: ModelLike, scale: float = 1.0, **hyperparameters: Any) -> float:
    """``u_ss(s)``: the update per unit lr after a long constant gradient ``s`` (:func:`settle_steps` steps).

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        The optimizer: a catalogue name, a model or a gradient filter (see :func:`optfilters.as_model`).
    scale : float
        The constant gradient.
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    float
        The update per unit learning rate, in the units of the gradient
        (``s`` for SGD; about ``1`` for Adam, which normalises the scale away).

    Examples
    --------
    >>> from optfilters.large_signal import steady_update
    >>> round(steady_update("adam", 1.0, eps=1e-3), 9)       # s / (s + eps)
    0.999000999
    """
    m = _model(model, hyperparameters)
    n = settle_steps(m)
    return float(abs(_scaled_updates(m, np.full(n, float(scale)), None)[-1]))


@dataclass(frozen=True)
class LargeSignalResponse(Plottable):
    """The exact update of a model under a gradient whose scale changes.

    Attributes
    ----------
    name : str
    scales : ndarray, shape (T,)
        The gradient at each step (``g_t = scales[t-1]``).
    updates : ndarray, shape (T,)
        The update per unit learning rate at each step.
    change : int
        Index (0-based) of the first step at the new scale.
    steady : float
        ``u_ss`` of the scale before the change (the reference of the ratios).
    steady_after : float
        ``u_ss`` of the scale after the change.
    kind : str
        ``"step"``, ``"burst"`` or ``"custom"``.
    before : int
        Steps at the first scale.
    label : str
    hyperparameters : dict

    Examples
    --------
    >>> from optfilters.large_signal import step_response
    >>> r = step_response("adam", ratio=10.0, beta1=0.9, beta2=0.99, eps=0.0)
    >>> round(r.peak_ratio, 4), r.peak_delay
    (2.1311, 11)
    """

    _plot_function = "large_signal_plot"

    name: str
    scales: FloatArray
    updates: FloatArray
    change: int
    steady: float
    steady_after: float
    kind: str = "custom"
    before: int = 0
    label: str = "exact recursion of the model (open loop), weight decay left out"
    hyperparameters: dict[str, Any] = field(default_factory=dict)

    @property
    def ratios(self) -> FloatArray:
        """``|u_t| / u_ss`` at every step."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(np.abs(self.updates) / self.steady, dtype=np.float64)

    @property
    def peak(self) -> float:
        """``max |u_t|`` from the change on."""
        return float(np.max(np.abs(self.updates[self.change :])))

    @property
    def peak_ratio(self) -> float:
        """``peak / steady`` (nan, printed ``undefined``, for an optimizer whose updates are all zero)."""
        return self._ratio(self.peak)

    def _ratio(self, value: float) -> float:
        if self.steady == 0.0:  # no steady update (a zero filter): the ratio is undefined, or infinite
            return math.nan if value == 0.0 else math.inf
        return value / self.steady

    @property
    def peak_delay(self) -> int:
        """Steps from the change to the peak (0: the first step at the new scale)."""
        return int(np.argmax(np.abs(self.updates[self.change :])))

    @property
    def minimum_ratio(self) -> float:
        """``min |u_t| / steady`` from the change on (the dip after a step down)."""
        return self._ratio(float(np.min(np.abs(self.updates[self.change :]))))

    def as_dict(self) -> dict[str, Any]:
        """The peak, its delay, the steady states and the context (JSON-able; the series are left out).

        Returns
        -------
        dict
            Scalars only (non-finite as None); the per-step series stay on the object.
        """
        return {
            "name": self.name,
            "kind": self.kind,
            "before": self.before,
            "change": self.change,
            "steps": int(self.scales.size),
            "steady": self.steady,
            "steady_after": self.steady_after,
            "peak": self.peak,
            "peak_ratio": self.peak_ratio,
            "peak_delay": self.peak_delay,
            "minimum_ratio": self.minimum_ratio,
            "label": self.label,
            "hyperparameters": dict(self.hyperparameters),
        }


def scale_response(
    model: ModelLike, scales: ArrayLike, *, change: int | None = None, kind: str = "custom", **hyperparameters: Any
) -> LargeSignalResponse:
    """The exact update under an arbitrary positive gradient sequence ``scales`` (open loop).

    The steady states are the last updates of constant-gradient columns run
    alongside for ``max(T, settle_steps)`` steps.

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        The optimizer: a catalogue name, a model or a gradient filter (see :func:`optfilters.as_model`).
    scales : array_like, shape (T,)
        Gradient at each step (finite, > 0).
    change : int, optional
        Index of the first step after the change (default: the first step whose
        scale differs from ``scales[0]``).
    kind : str
        A label.
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    LargeSignalResponse

    Raises
    ------
    InvalidHyperparameterError
        If ``scales`` is not at least 2 finite positive numbers or ``change``
        is outside ``1 .. T - 1``.

    Examples
    --------
    >>> from optfilters.large_signal import scale_response
    >>> r = scale_response("rmsprop", [1.0, 1.0, 4.0], alpha=0.5, eps=0.0)
    >>> r.updates.round(6).tolist()       # g / sqrt(v): v = 0.5, 0.75, 8.375
    [1.414214, 1.154701, 1.38219]
    """
    s = np.asarray(scales, dtype=np.float64).ravel()
    if s.size < 2 or not np.all(np.isfinite(s)) or np.any(s <= 0.0):
        raise InvalidHyperparameterError("scales must be at least 2 finite positive numbers")
    m = _model(model, hyperparameters)
    if change is None:
        moved = np.flatnonzero(s != s[0])
        change = int(moved[0]) if moved.size else s.size - 1
    if not (0 < change < s.size):
        raise InvalidHyperparameterError(f"change must be in 1..{s.size - 1}, got {change}")
    first, second = float(s[change - 1]), float(s[change])
    key = _steady_key(m, first, second)
    low, high = math.frexp(float(np.min(s)))[1], math.frexp(float(np.max(s)))[1]
    if -_UNSCALED_RANGE <= low and high <= _UNSCALED_RANGE:  # squares in range: one run, as given
        if key in _STEADY:
            updates = _updates(m, s[:, None])[:, 0]
            steady, steady_after = _STEADY[key]
        else:
            n = max(settle_steps(m), s.size)
            columns = np.empty((n, 3))
            columns[:, 1], columns[:, 2] = first, second
            columns[: s.size, 0] = s
            columns[s.size :, 0] = s[-1]
            both = _updates(m, columns)  # the sequence and both steady states in one run of the recursion
            updates = both[: s.size, 0]
            steady, steady_after = float(abs(both[-1, 1])), float(abs(both[-1, 2]))
    else:
        # Each column at its own power of two (the model's checked scaling law): the squares of a gradient
        # of 1e160, or of 5e-324, leave float64 at scale 1 while Adam's update is scale-invariant.
        updates = _scaled_updates(m, s, SCALED_TOP)
        if key in _STEADY:
            steady, steady_after = _STEADY[key]
        else:
            n = max(settle_steps(m), s.size)
            steady = float(abs(_scaled_updates(m, np.full(n, first), None)[-1]))
            steady_after = float(abs(_scaled_updates(m, np.full(n, second), None)[-1]))
    if not np.all(np.isfinite(updates)):
        raise InvalidHyperparameterError(
            f"{m.name}: the updates leave the float64 range for gradients from {np.min(s):.6g} to {np.max(s):.6g} "
            "(give a smaller ratio, scale or window)"
        )
    if key is not None and key not in _STEADY:
        if len(_STEADY) > 256:
            _STEADY.clear()
        _STEADY[key] = (steady, steady_after)
    return LargeSignalResponse(
        name=m.name,
        scales=s,
        updates=updates,
        change=change,
        steady=steady,
        steady_after=steady_after,
        kind=kind,
        before=change,
        hyperparameters=dict(m.hyperparameters),
    )


def _windows(m: OptimizerModel, before: int | None, after: int | None) -> tuple[int, int]:
    """Steps before and after the change (default :func:`settle_steps`); ``before >= 1``, ``after`` raised to 1."""
    if before is None:
        n_before = settle_steps(m)
    else:
        n_before = int(before)
        if n_before < 1:
            raise InvalidHyperparameterError(f"before must be >= 1, got {n_before}")
    return n_before, settle_steps(m) if after is None else max(int(after), 1)


def _check_ratio(ratio: float) -> float:
    ratio = float(ratio)
    if not (math.isfinite(ratio) and ratio > 0.0):
        raise InvalidHyperparameterError(f"ratio must be finite and > 0, got {ratio}")
    return ratio


def step_response(
    model: ModelLike,
    ratio: float = 10.0,
    *,
    before: int | None = None,
    after: int | None = None,
    scale: float = 1.0,
    **hyperparameters: Any,
) -> LargeSignalResponse:
    """The update after the gradient's scale jumps from ``scale`` to ``ratio * scale`` (a step up or down).

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        The optimizer: a catalogue name, a model or a gradient filter (see :func:`optfilters.as_model`).
    ratio : float
        New scale over old (> 1: step up, < 1: step down).
    before : int, optional
        Steps at the old scale (default: :func:`settle_steps`, the long-history limit).
    after : int, optional
        Steps at the new scale (default: :func:`settle_steps`).
    scale : float
        The old scale.
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    LargeSignalResponse

    Examples
    --------
    >>> from optfilters.large_signal import step_response
    >>> round(step_response("adam", 10.0, beta1=0.9, beta2=0.95, eps=0.0).peak_ratio, 4)
    1.1104
    """
    ratio = _check_ratio(ratio)
    m = _model(model, hyperparameters)
    n_before, n_after = _windows(m, before, after)
    scales = np.concatenate([np.full(n_before, scale), np.full(n_after, scale * ratio)])
    return scale_response(m, scales, change=n_before, kind="step")


def burst_response(
    model: ModelLike,
    ratio: float = 10.0,
    length: int = 10,
    *,
    before: int | None = None,
    after: int | None = None,
    scale: float = 1.0,
    **hyperparameters: Any,
) -> LargeSignalResponse:
    """The update under a burst: ``length`` steps at ``ratio * scale``, then back to ``scale``.

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        The optimizer: a catalogue name, a model or a gradient filter (see :func:`optfilters.as_model`).
    ratio : float
        Burst scale over the base scale.
    length : int
        Steps of the burst.
    before, after : int, optional
        Steps at the base scale before and after (default: :func:`settle_steps`).
    scale : float
        The base gradient scale (> 0).
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    LargeSignalResponse

    Raises
    ------
    InvalidHyperparameterError
        If ``length < 1``, and for the inputs :func:`scale_response` rejects.

    Examples
    --------
    >>> from optfilters.large_signal import burst_response
    >>> r = burst_response("adam", 10.0, length=1, beta1=0.9, beta2=0.99, eps=0.0)
    >>> round(r.peak_ratio, 6)          # one step of 10: (0.1 * 10 + 0.9) / sqrt(0.01 * 100 + 0.99)
    1.346874
    """
    ratio = _check_ratio(ratio)
    if int(length) < 1:
        raise InvalidHyperparameterError(f"length must be >= 1, got {length}")
    m = _model(model, hyperparameters)
    n_before, n_after = _windows(m, before, after)
    scales = np.concatenate([np.full(n_before, scale), np.full(int(length), scale * ratio), np.full(n_after, scale)])
    return scale_response(m, scales, change=n_before, kind="burst")


def peak_ratio(model: ModelLike, ratio: float = 10.0, *, before: int | None = None, **hyperparameters: Any) -> float:
    """Peak update over the steady state after a step of the gradient scale by ``ratio``.

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        The optimizer: a catalogue name, a model or a gradient filter (see :func:`optfilters.as_model`).
    ratio : float
        New gradient scale over the old one (> 0).
    before : int, optional
        History at the old scale (default: the long-history limit).
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    float
        The largest update after the step over the new steady-state update
        (dimensionless; 1 means no overshoot).

    Examples
    --------
    >>> from optfilters.large_signal import peak_ratio
    >>> [round(peak_ratio("adam", 10.0, beta2=b2, eps=0.0), 4) for b2 in (0.999, 0.95)]
    [5.2017, 1.1104]
    """
    return step_response(model, ratio, before=before, **hyperparameters).peak_ratio


def adam_step_closed_form(ratio: float, beta1: float, beta2: float, steps: int) -> FloatArray:
    """Adam's update ratio ``u_j`` for ``j = 0 .. steps-1`` after a jump by ``ratio`` (long history, eps = 0).

    ``u_j = (r - (r - 1) beta1^(j+1)) / sqrt(r^2 - (r^2 - 1) beta2^(j+1))``:
    the bias corrections are 1 in the long-history limit and both moments
    start from the old steady state (1 and 1).

    Parameters
    ----------
    ratio : float
        ``r``: new gradient scale over the old one (> 0).
    beta1, beta2 : float
        Adam's first- and second-moment decays, in ``[0, 1)``.
    steps : int
        Number of updates after the jump.

    Returns
    -------
    ndarray, shape (steps,)
        ``u_j``: each update over the new steady-state update.

    Examples
    --------
    >>> from optfilters.large_signal import adam_step_closed_form
    >>> adam_step_closed_form(10.0, 0.9, 0.999, 20).max().round(4)
    np.float64(5.2017)
    """
    j = np.arange(1, int(steps) + 1, dtype=np.float64)
    r = float(ratio)
    return np.asarray((r - (r - 1.0) * beta1**j) / np.sqrt(r * r - (r * r - 1.0) * beta2**j), dtype=np.float64)


# ----------------------------------------------------------------------------- maps and regions


def _catalogue_model(model: ModelLike, hyperparameters: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    m = _model(model, hyperparameters)
    if m.name not in CATALOGUE:
        raise InvalidHyperparameterError(f"maps need a catalogue optimizer, got {m.name!r}")
    return m.name, dict(m.hyperparameters)


@dataclass(frozen=True)
class PeakRatioMap(Plottable):
    """Peak update ratio after a scale step, over a grid of two hyperparameters (default ``beta1``, ``beta2``).

    Attributes
    ----------
    name : str
    parameters : tuple of str
        ``(row parameter, column parameter)``.
    rows, columns : ndarray
        Their values.
    ratio : float
        The scale step.
    peak_ratio : ndarray, shape (rows, columns)
    peak_delay : ndarray, shape (rows, columns)
    before : int or None
        History length (None: the long-history limit of each cell).
    hyperparameters : dict
        The other hyperparameters.

    Examples
    --------
    >>> from optfilters.large_signal import peak_ratio_map
    >>> m = peak_ratio_map("adam", [0.9], [0.9, 0.95], ratio=10.0, eps=0.0)
    >>> m.peak_ratio.round(4).tolist()
    [[1.0, 1.1104]]
    """

    _plot_function = "peak_ratio_map_plot"

    name: str
    parameters: tuple[str, str]
    rows: FloatArray
    columns: FloatArray
    ratio: float
    peak_ratio: FloatArray
    peak_delay: NDArray[np.int64]
    before: int | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)

    def bounded(self, bound: float) -> NDArray[np.bool_]:
        """Cells whose peak ratio is at most ``bound``.

        Parameters
        ----------
        bound : float
            Allowed peak ratio (peak update over the new steady state).

        Returns
        -------
        ndarray of bool, shape (rows, columns)
            True where ``peak_ratio <= bound`` (False for nan cells).
        """
        return np.asarray(self.peak_ratio <= bound)

    def as_dict(self) -> dict[str, Any]:
        """The grid and the map (JSON-able).

        Returns
        -------
        dict
            The parameter names and values, the ratio, ``peak_ratio`` and
            ``peak_delay`` as nested lists (rows first), the history and the
            other hyperparameters.
        """
        return {
            "name": self.name,
            "parameters": list(self.parameters),
            "rows": self.rows.tolist(),
            "columns": self.columns.tolist(),
            "ratio": self.ratio,
            "peak_ratio": [[_finite_or_none(v) for v in row] for row in self.peak_ratio],
            "peak_delay": self.peak_delay.tolist(),
            "before": self.before,
            "hyperparameters": dict(self.hyperparameters),
        }


def peak_ratio_map(
    model: ModelLike,
    rows: ArrayLike,
    columns: ArrayLike,
    *,
    ratio: float = 10.0,
    parameters: Sequence[str] = ("beta1", "beta2"),
    before: int | None = None,
    **hyperparameters: Any,
) -> PeakRatioMap:
    """The peak ratio of :func:`step_response` on a grid of two hyperparameters.

    Each cell is the exact recursion of its own model (a long history at the
    old scale, then :func:`settle_steps` steps at the new one), so the cost is
    about ``2 / (1 - beta2)`` steps per cell.

    Parameters
    ----------
    model : str or OptimizerModel
        A catalogue optimizer.
    rows, columns : array_like
        Values of ``parameters[0]`` and ``parameters[1]``.
    ratio : float
        Scale step.
    parameters : pair of str
        Hyperparameter names (default ``("beta1", "beta2")``).
    before : int, optional
        History at the old scale (default: each cell's long-history limit).
    **hyperparameters
        The other hyperparameters.

    Returns
    -------
    PeakRatioMap

    Raises
    ------
    InvalidHyperparameterError
        If ``parameters`` does not name two hyperparameters, or the model has
        no hyperparameter of one of those names.

    Examples
    --------
    >>> from optfilters.large_signal import peak_ratio_map
    >>> peak_ratio_map("adam", [0.9], [0.99], eps=0.0).peak_delay.tolist()
    [[11]]
    """
    if len(tuple(parameters)) != 2:
        raise InvalidHyperparameterError(f"parameters must name two hyperparameters, got {parameters!r}")
    p_row, p_col = check_distinct(parameters, "parameters")
    name, base = _catalogue_model(model, hyperparameters)
    for p in (p_row, p_col):
        if p not in base:
            raise InvalidHyperparameterError(f"{name} has no hyperparameter {p!r}")
    r = np.atleast_1d(np.asarray(rows, dtype=np.float64))
    c = np.atleast_1d(np.asarray(columns, dtype=np.float64))
    ratio = _check_ratio(ratio)
    peaks = np.empty((r.size, c.size))
    delays = np.empty((r.size, c.size), dtype=np.int64)
    for i, rv in enumerate(r):
        for j, cv in enumerate(c):
            response = step_response(name, ratio, before=before, **{**base, p_row: float(rv), p_col: float(cv)})
            peaks[i, j], delays[i, j] = response.peak_ratio, response.peak_delay
    others = {k: v for k, v in base.items() if k not in (p_row, p_col)}
    return PeakRatioMap(name, (p_row, p_col), r, c, ratio, peaks, delays, before, others)


@dataclass(frozen=True)
class BoundedRegion(Plottable):
    """For each value of the first parameter, the largest second one whose peak ratio stays within ``bound``.

    Attributes
    ----------
    name : str
    parameters : tuple of str
    bound : float
    ratio : float
    rows : ndarray
        Values of the first parameter.
    limits : ndarray
        The boundary value of the second parameter for each row (nan when even
        the lowest value exceeds the bound, the upper end when none does).
    tolerance : float
        Bisection tolerance on ``log(1 - second)``.

    Examples
    --------
    >>> from optfilters.large_signal import bounded_region
    >>> r = bounded_region("adam", bound=1.05, ratio=10.0, rows=[0.9], span=(0.5, 0.99), eps=0.0, tolerance=1e-3)
    >>> 0.9 < float(r.limits[0]) < 0.95           # beta2 = 0.9 stays at 1, beta2 = 0.95 peaks at 1.11
    True
    """

    _plot_function = "bounded_region_plot"

    name: str
    parameters: tuple[str, str]
    bound: float
    ratio: float
    rows: FloatArray
    limits: FloatArray
    tolerance: float

    def as_dict(self) -> dict[str, Any]:
        """The boundary (JSON-able).

        Returns
        -------
        dict
            The fields, ``rows`` and ``limits`` as lists (nan as None).
        """
        return {
            "name": self.name,
            "parameters": list(self.parameters),
            "bound": self.bound,
            "ratio": self.ratio,
            "rows": self.rows.tolist(),
            "limits": [_finite_or_none(v) for v in self.limits],
            "tolerance": self.tolerance,
        }


def bounded_region(
    model: ModelLike,
    bound: float,
    *,
    ratio: float = 10.0,
    rows: ArrayLike = (0.9,),
    span: tuple[float, float] = (0.5, 0.999),
    parameters: Sequence[str] = ("beta1", "beta2"),
    before: int | None = None,
    tolerance: float = 1e-4,
    **hyperparameters: Any,
) -> BoundedRegion:
    """The region where the peak update stays within ``bound`` times the steady state, by bisection.

    For each value of ``parameters[0]`` the boundary value of ``parameters[1]``
    in ``span`` is bisected on ``log(1 - value)``, assuming the peak ratio grows
    with it (a slower normaliser overshoots more; the tests check this on grids).

    Parameters
    ----------
    model : str or OptimizerModel
        A catalogue optimizer.
    bound : float
        Allowed peak ratio (>= 1).
    ratio : float
        Scale step.
    rows : array_like
        Values of the first parameter.
    span : (float, float)
        Search interval of the second parameter, inside ``(0, 1)``.
    parameters : pair of str
        Hyperparameter names (default ``("beta1", "beta2")``).
    before : int, optional
        History (default: long-history limit).
    tolerance : float
        On ``log(1 - value)``.
    **hyperparameters
        The other hyperparameters.

    Returns
    -------
    BoundedRegion

    Raises
    ------
    InvalidHyperparameterError
        If ``bound`` is not finite and >= 1, ``span`` is not
        ``0 < low < high < 1``, or ``parameters`` does not name two
        hyperparameters.

    Examples
    --------
    >>> from optfilters.large_signal import bounded_region
    >>> r = bounded_region("adam", 1.2, rows=[0.9, 0.99], span=(0.5, 0.99), eps=0.0, tolerance=1e-2)
    >>> r.parameters, bool(r.limits[1] > r.limits[0])     # a slower numerator allows a slower normaliser
    (('beta1', 'beta2'), True)
    """
    bound = float(bound)
    if not (math.isfinite(bound) and bound >= 1.0):
        raise InvalidHyperparameterError(f"bound must be finite and >= 1, got {bound}")
    lo_v, hi_v = (float(v) for v in span)
    if not (0.0 < lo_v < hi_v < 1.0):
        raise InvalidHyperparameterError(f"span must satisfy 0 < low < high < 1, got {span}")
    if len(tuple(parameters)) != 2:
        raise InvalidHyperparameterError(f"parameters must name two hyperparameters, got {parameters!r}")
    p_row, p_col = check_distinct(parameters, "parameters")
    name, base = _catalogue_model(model, hyperparameters)
    r = np.atleast_1d(np.asarray(rows, dtype=np.float64))

    def peak(row: float, log_gap: float) -> float:
        value = 1.0 - math.exp(log_gap)
        return step_response(name, ratio, before=before, **{**base, p_row: row, p_col: value}).peak_ratio

    limits = np.empty(r.size)
    for i, rv in enumerate(r):
        small, large = math.log(1.0 - hi_v), math.log(1.0 - lo_v)  # small log gap: slow (large value)
        if peak(float(rv), large) > bound:
            limits[i] = math.nan
            continue
        if peak(float(rv), small) <= bound:
            limits[i] = hi_v
            continue
        while large - small > tolerance:
            mid = 0.5 * (small + large)
            if peak(float(rv), mid) <= bound:
                large = mid
            else:
                small = mid
        limits[i] = 1.0 - math.exp(large)
    return BoundedRegion(name, (p_row, p_col), bound, float(ratio), r, limits, float(tolerance))
