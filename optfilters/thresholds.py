"""Thresholds at the step you run: frozen-time stability edges and the exact time-varying verdict.

Bias correction, NAdam's momentum schedule, RAdam's rectification and
learning-rate schedules make the optimizer loop time-varying: the
closed-loop analysis of :mod:`optfilters.closed_loop` reads the
``t -> infinity`` limit, which can be far from the loop a run actually has
at step ``t`` (NAdam's ``mu_t`` reaches 0.8 only after about 9000 steps).

* **Frozen-time edge** (:func:`frozen_edges`, :func:`frozen_loop`): the
  loop with every coefficient held at its value at step ``t`` (the per-step
  state-space matrix ``A_t`` of :func:`optfilters.noisy_quadratic.transition_matrices`,
  repeated forever).  Its characteristic polynomial ``det(zI - A_t)`` is affine
  in the learning rate (only the parameter's row of ``A_t`` scales with it),
  so the margins machinery of :mod:`optfilters.margins` reads its stability
  edge exactly.  A run whose step counter is pinned at ``t`` diverges beyond
  it (:func:`optfilters.observe.divergence_threshold` with ``frozen_step``).
* **Exact time-varying verdict** (:func:`time_varying_verdict`): the product
  ``Phi_N = A_N ... A_1`` of the transition matrices of a run of ``N`` steps:
  the amplification of the parameter from rest (the noiseless run itself, as
  :func:`optfilters.noisy_quadratic.predict` propagates it), the worst-case
  growth ``||Phi_N||`` and the average rate ``rho(Phi_N)^(1/N)``, against the
  frozen-time verdict step by step.  A loop can be frozen-time unstable for
  a while and still contract over the run, or the reverse.

Normalised models are linearised with the normaliser frozen at a second
moment ``v`` (``lr * h`` in preconditioned curvature); the bias correction of
``v`` is then part of the frozen value (``v`` is the corrected estimate), and
a sign is left out (direction only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .closed_loop import ModelLike, as_model, closed_loop, normaliser_scale
from .display import Plottable
from .errors import InvalidHyperparameterError
from .margins import FeedbackLoop, _stale_label
from .validation import check_distinct, saturating_spectral_radius
from .validation import finite_list as _list

__all__ = ["FrozenEdges", "TimeVaryingVerdict", "frozen_edges", "frozen_loop", "time_varying_verdict"]

FloatArray = NDArray[np.float64]


def _finite_or_none(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _step(name: str, value: Any) -> int:
    if isinstance(value, bool) or not float(value).is_integer() or int(value) < 1:
        raise InvalidHyperparameterError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _operating_point(lr_curvature: Any, curvature: Any, lr: float, scale: float, where: str) -> tuple[float, float]:
    """``(h, x)``: the curvature and ``x = lr h scale`` from ``lr_curvature`` or ``curvature`` (default ``h = 1``).

    ``lr`` is the learning rate of the step (``where`` names it in the error
    when it is 0 and ``lr_curvature`` is given); ``scale`` the normaliser's.
    """
    if lr_curvature is not None:
        if curvature is not None:
            raise InvalidHyperparameterError("give lr_curvature or curvature (with the model's lr), not both")
        x = float(lr_curvature)
        if not (math.isfinite(x) and x > 0.0):
            raise InvalidHyperparameterError(f"x = lr * h must be finite and > 0, got {lr_curvature!r}")
        if lr * scale <= 0.0:
            raise InvalidHyperparameterError(f"the learning rate{where} is 0: no lr*h to set")
        return x / (lr * scale), x
    h = 1.0 if curvature is None else float(curvature)
    if not (math.isfinite(h) and h > 0.0):
        raise InvalidHyperparameterError(f"curvature must be finite and > 0, got {curvature!r}")
    return h, lr * h * scale


def _charpoly(matrix: FloatArray) -> FloatArray:
    """``det(zI - A)`` as ``[1, c1, ..., cn]`` (powers of ``z^-1`` after dividing by ``z^n``)."""
    return np.asarray(np.real(np.poly(matrix)), dtype=np.float64)


def _notes(model: Any, second_moment: float) -> tuple[bool, str]:
    notes = []
    if model.normaliser is not None:
        notes.append(
            f"linearised: normaliser frozen at second moment v={second_moment:g}; "
            "lr*h uses the preconditioned curvature h/(sqrt(v)+eps)"
        )
    if model.nonlinearity is not None:
        notes.append("linearised: sign() left out (direction only)")
    return bool(notes), "; ".join(notes)


def frozen_loop(
    model: ModelLike,
    t: int,
    *,
    lr_curvature: float | None = None,
    curvature: float | None = None,
    staleness: int = 0,
    second_moment: float = 1.0,
    schedule: Any = None,
    **hyperparameters: Any,
) -> FeedbackLoop:
    """The optimizer loop frozen at step ``t``: ``A_t`` repeated, as a :class:`~optfilters.margins.FeedbackLoop`.

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        The optimizer: a catalogue name, a model or a gradient filter (see :func:`optfilters.as_model`).
    t : int
        The step (1-based) whose coefficients are held.
    lr_curvature : float, optional
        ``x = lr_t * h`` at step ``t`` (preconditioned when linearised);
        default the model's ``lr`` (times the schedule's factor at ``t``)
        times ``curvature``.
    curvature : float, optional
        ``h`` (default 1).
    staleness : int
        Steps of gradient staleness.
    second_moment : float
        Where a normaliser is frozen.
    schedule : optional
        Learning-rate schedule (:func:`optfilters.noisy_quadratic.lr_sequence`).
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    FeedbackLoop
        ``g`` scales the learning rate (of every step); its crossings and
        stable intervals give the frozen-time edge.

    Raises
    ------
    InvalidHyperparameterError
        If the model is periodically time-varying (its loop is that of one
        period), ``second_moment`` is not finite and >= 0, both
        ``lr_curvature`` and ``curvature`` are given, either is not finite
        and > 0, or the learning rate at step ``t`` is 0.

    Examples
    --------
    >>> from optfilters.thresholds import frozen_loop
    >>> loop = frozen_loop("adam", 3, lr_curvature=1.0, beta1=0.9, eps=0.0)   # edge 38 (1 - 0.9^t)
    >>> [round(b, 6) for a, b in loop.stable_intervals() if a <= 0 < b]
    [10.298]
    """
    from .noisy_quadratic import lr_sequence, transition_matrices

    m = as_model(model, **hyperparameters)
    if m.period is not None:  # Lookahead: a step held forever is not the loop
        raise InvalidHyperparameterError(
            f"{m.name} is periodically time-varying (period {m.period}): a loop frozen at one step is not its loop; "
            "its edge is that of the monodromy matrix of one period (optfilters.closed_loop(...).stability())"
        )
    t = _step("t", t)
    v = float(second_moment)
    if not (math.isfinite(v) and v >= 0.0):
        raise InvalidHyperparameterError(f"second_moment must be finite and >= 0, got {second_moment!r}")
    scale = float(normaliser_scale(m, v))
    factor = float(lr_sequence(schedule, 1.0, t)[-1])
    lr = m.lr
    h, x = _operating_point(lr_curvature, curvature, lr * factor, scale, f" at step {t}")
    if (
        lr_curvature is not None
        and not 1e-100 <= h <= 1e100
        and (m.weight_decay is None or m.weight_decay.weight_decay == 0.0)
    ):
        lr, h = x / (factor * scale), 1.0  # a tiny or huge lr: the loop depends on lr * h only
    if not math.isfinite(h):
        raise InvalidHyperparameterError(f"lr = {lr:g} is too small to reach x = lr * h = {x:g} at step {t}")
    common = {"schedule": schedule, "second_moment": v, "staleness": staleness}
    at_rest = transition_matrices(m, [t], lr=0.0, curvatures=[h], **common)[0, 0]
    running = transition_matrices(m, [t], lr=lr, curvatures=[h], **common)[0, 0]
    flat = transition_matrices(m, [t], lr=lr, curvatures=[0.0], **common)[0, 0]
    n = running.shape[0]
    constant = _charpoly(at_rest[:, :n])
    operating = _charpoly(running[:, :n])
    reference = operating - _charpoly(flat[:, :n])
    linearised, label = _notes(m, v)
    label = f"frozen at step {t}" + (f"; {label}" if label else "")
    if staleness:
        label = _stale_label(label, int(staleness))
    return FeedbackLoop(
        name=m.name,
        constant=constant,
        slope=operating - constant,
        lr_curvature=x,
        reference=reference,
        staleness=int(staleness),
        label=label,
        linearised=linearised,
        preconditioner=scale,
    )


#: Gain factors below this count as "small gains" (the rounding level of a crossing at g = 0).
_SMALL_GAIN = 1e-9


def _edge(loop: FeedbackLoop) -> tuple[float, float | None]:
    """The upper end of the stable interval of the gain factor reached from small gains, and its frequency."""
    # A loop with an integrator and a near-unit pole (AdEMAMix's slow EMA) has its g = 0 crossing computed at
    # ~1e-12: the interval reached from small gains starts at the rounding level of the polynomial's roots.
    here = next((iv for iv in loop.stable_intervals() if iv[0] <= _SMALL_GAIN < iv[1]), None)
    if here is None:
        return math.nan, None
    if not math.isfinite(here[1]):
        return math.inf, None
    nearest = min(loop.crossings(), key=lambda c: abs(c[0] - here[1]))
    return here[1], round(nearest[1], 12)


@dataclass(frozen=True)
class FrozenEdges(Plottable):
    """The frozen-time stability edge against the step ``t`` (see :func:`optfilters.plot.frozen_edges_plot`).

    Attributes
    ----------
    name : str
    steps : ndarray
        The steps ``t``.
    edge : ndarray
        Largest stable ``lr_t * h`` of the loop frozen at ``t`` (``lr_t`` the
        learning rate of step ``t``; preconditioned when linearised).
    base_edge : ndarray
        The same edge in terms of the base learning rate: ``edge / factor(t)``
        (equal to ``edge`` without a schedule).
    frequency : ndarray
        Frequency (cycles/step) at which the frozen loop fails (nan when it never does).
    limit : float
        The ``t -> infinity`` edge of :mod:`optfilters.closed_loop` (without the schedule).
    label : str

    Examples
    --------
    >>> from optfilters.thresholds import frozen_edges
    >>> e = frozen_edges("nadam", [100, 1000, 10000])
    >>> e.edge.round(2).tolist(), round(e.limit, 2)
    ([3.53, 3.93, 8.67], 13.57)
    """

    _plot_function = "frozen_edges_plot"

    name: str
    steps: FloatArray
    edge: FloatArray
    base_edge: FloatArray
    frequency: FloatArray
    limit: float
    label: str = "exact"

    def edge_at(self, t: float) -> float:
        """The frozen-time edge at step ``t`` (log-linear interpolation between the computed steps).

        Parameters
        ----------
        t : float
            Step (> 0); outside the computed steps the end values are held.

        Returns
        -------
        float
            Largest stable ``lr_t * h`` of the loop frozen at ``t``.
        """
        return float(np.interp(math.log(t), np.log(self.steps), self.edge))

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data.

        Returns
        -------
        dict
            The fields (arrays as lists; non-finite as None).
        """
        return {
            "name": self.name,
            "steps": [int(t) for t in self.steps],
            "edge": _list(self.edge),
            "base_edge": _list(self.base_edge),
            "frequency": _list(self.frequency),
            "limit": _finite_or_none(self.limit),
            "label": self.label,
        }


def frozen_edges(
    model: ModelLike,
    steps: ArrayLike | None = None,
    *,
    staleness: int = 0,
    second_moment: float = 1.0,
    schedule: Any = None,
    **hyperparameters: Any,
) -> FrozenEdges:
    """The stability edge of the loop frozen at each step ``t`` (the threshold at the step you run).

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        The optimizer: a catalogue name, a model or a gradient filter (see :func:`optfilters.as_model`).
    steps : array_like of int, optional
        Steps ``t`` (default: 61 geometric steps from 1 to 1e5).
    staleness : int
        Steps of gradient staleness.
    second_moment : float
        Where a normaliser is frozen.
    schedule : optional
        Learning-rate schedule; ``base_edge`` then reads the edge in the base learning rate.
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    FrozenEdges

    Raises
    ------
    InvalidHyperparameterError
        If a step is not an integer >= 1 or appears twice, or the schedule's learning-rate
        factor overflows the floating-point range by one of the steps.

    Examples
    --------
    >>> from optfilters.thresholds import frozen_edges
    >>> e = frozen_edges("adam", [1, 10], beta1=0.9, eps=0.0)      # 38 (1 - 0.9^t)
    >>> e.edge.round(6).tolist()
    [3.8, 24.750219]
    """
    m = as_model(model, **hyperparameters)
    if steps is None:
        ts = np.unique(np.round(np.geomspace(1, 1e5, 61)).astype(np.int64))
    else:
        ts = np.atleast_1d(np.asarray(steps))
        for t in ts:
            _step("steps", t)
        ts = ts.astype(np.int64)
        check_distinct(ts.tolist(), "steps")  # a repeat would be a duplicate row
    from .noisy_quadratic import lr_sequence

    factors = lr_sequence(schedule, 1.0, int(ts.max()))
    edges, bases, freqs = [], [], []
    for t in ts:
        factor = float(factors[t - 1])
        if not math.isfinite(factor):
            raise InvalidHyperparameterError(
                f"the schedule's learning-rate factor overflows the floating-point range by step {t}: "
                "ask for fewer steps or a schedule that stays finite"
            )
        if factor == 0.0:
            edges.append(math.inf)
            bases.append(math.inf)
            freqs.append(math.nan)
            continue
        loop = frozen_loop(
            m, int(t), lr_curvature=1.0, staleness=staleness, second_moment=second_moment, schedule=schedule
        )
        g, f = _edge(loop)
        edges.append(g)  # x = 1 at the operating point: the gain factor is the edge in lr_t * h
        bases.append(g / factor)
        freqs.append(math.nan if f is None else f)
    limit = closed_loop(m, second_moment=second_moment).stability().max_stable_lr_curvature
    _, label = _notes(m, second_moment)
    label = "frozen-time edges" + (f"; {label}" if label else "")
    if staleness:
        label = _stale_label(label, int(staleness))
    return FrozenEdges(
        name=m.name,
        steps=ts.astype(np.float64),
        edge=np.asarray(edges, dtype=np.float64),
        base_edge=np.asarray(bases, dtype=np.float64),
        frequency=np.asarray(freqs, dtype=np.float64),
        limit=float(limit) if staleness == 0 else math.nan,
        label=label,
    )


# ----------------------------------------------------------------------------- the exact verdict


@dataclass(frozen=True)
class TimeVaryingVerdict(Plottable):
    """What a run of ``N`` steps does, exactly (product of the transition matrices), against the frozen-time view.

    Attributes
    ----------
    name : str
    lr_curvature : float
        ``x = lr * h`` (base learning rate; preconditioned when linearised).
    steps : int
        ``N``.
    log10_amplitude : ndarray
        ``log10 |theta_t / theta_0|`` for ``t = 0 .. N`` of the noiseless run from rest
        (in logs: a run frozen-time unstable for thousands of steps overflows any float).
    frozen_rate : ndarray
        ``rho(A_t)`` for ``t = 1 .. N``: the frozen-time rate of each step.
    log10_norm : float
        ``log10 ||Phi_N||_2``: the worst-case growth over any starting state
        (state: the parameter and the filter memories at curvature 1, in units
        of the parameter).
    average_rate : float
        ``rho(Phi_N)^(1/N)``.
    label : str
        ``"exact"``, or what is linearised.
    schedule : str or None
        The learning-rate schedule's description, if any.

    Examples
    --------
    >>> from optfilters.thresholds import time_varying_verdict
    >>> v = time_varying_verdict("nadam", 5.0, steps=2000)   # above the frozen edge for the first 3204 steps
    >>> v.verdict, v.frozen_unstable_steps, round(v.log10_final_amplification)
    ('grows', 2000, 394)
    >>> v = time_varying_verdict("nadam", 5.0, steps=20000)  # the same lr, a longer run: it contracts overall
    >>> v.verdict, v.last_frozen_unstable_step, v.peak_step
    ('shrinks', 3204, 3204)
    """

    _plot_function = "time_varying_verdict_plot"

    name: str
    lr_curvature: float
    steps: int
    log10_amplitude: FloatArray
    frozen_rate: FloatArray
    log10_norm: float
    average_rate: float
    label: str = "exact"
    schedule: str | None = field(default=None)

    @property
    def log10_final_amplification(self) -> float:
        """``log10 |theta_N / theta_0|``."""
        return float(self.log10_amplitude[-1])

    @property
    def log10_peak_amplification(self) -> float:
        """``log10 max_t |theta_t / theta_0|``."""
        return float(np.max(self.log10_amplitude))

    @property
    def peak_step(self) -> int:
        """The step of the peak amplification."""
        return int(np.argmax(self.log10_amplitude))

    @property
    def average_growth(self) -> float:
        """``|theta_N / theta_0|^(1/N)``: the run's own average rate per step."""
        return float(10.0 ** (self.log10_final_amplification / self.steps))

    @property
    def verdict(self) -> str:
        """``"grows"`` when the run ends farther from the minimum than it started, else ``"shrinks"``."""
        return "grows" if self.log10_final_amplification > 0.0 else "shrinks"

    @property
    def frozen_unstable_steps(self) -> int:
        """How many of the ``N`` steps have a frozen-time rate of 1 or more."""
        return int(np.sum(self.frozen_rate >= 1.0))

    @property
    def last_frozen_unstable_step(self) -> int:
        """The last step whose frozen-time loop is unstable (0 when none)."""
        bad = np.flatnonzero(self.frozen_rate >= 1.0)
        return int(bad[-1] + 1) if bad.size else 0

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (the amplitude sampled at most 1000 times).

        Returns
        -------
        dict
            The fields and summary properties (verdict, amplifications, peak
            step, frozen-unstable steps), ``amplitude_steps`` and the
            ``log10_amplitude`` at those steps; non-finite as None.
        """
        idx = np.unique(np.round(np.linspace(0, self.steps, min(self.steps + 1, 1000))).astype(int))
        return {
            "name": self.name,
            "lr_curvature": self.lr_curvature,
            "steps": self.steps,
            "verdict": self.verdict,
            "log10_final_amplification": _finite_or_none(self.log10_final_amplification),
            "log10_peak_amplification": _finite_or_none(self.log10_peak_amplification),
            "average_growth": _finite_or_none(self.average_growth),
            "peak_step": self.peak_step,
            "log10_norm": _finite_or_none(self.log10_norm),
            "average_rate": _finite_or_none(self.average_rate),
            "frozen_unstable_steps": self.frozen_unstable_steps,
            "last_frozen_unstable_step": self.last_frozen_unstable_step,
            "amplitude_steps": idx.tolist(),
            "log10_amplitude": _list(self.log10_amplitude[idx]),
            "label": self.label,
        }


def time_varying_verdict(
    model: ModelLike,
    lr_curvature: float | None = None,
    *,
    steps: int,
    curvature: float | None = None,
    schedule: Any = None,
    staleness: int = 0,
    second_moment: float = 1.0,
    **hyperparameters: Any,
) -> TimeVaryingVerdict:
    """The exact verdict of a run of ``steps`` steps: the product of the per-step transition matrices.

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        The optimizer: a catalogue name, a model or a gradient filter (see :func:`optfilters.as_model`).
    lr_curvature : float, optional
        ``x = lr * h`` with the base learning rate (default: the model's ``lr`` times ``curvature``).
    steps : int
        The run length ``N``.
    curvature : float, optional
        ``h`` (default 1).
    schedule : optional
        Learning-rate schedule.
    staleness : int
        Steps of gradient staleness.
    second_moment : float
        Where a normaliser is frozen (linearised models).
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    TimeVaryingVerdict

    Raises
    ------
    InvalidHyperparameterError
        If both ``lr_curvature`` and ``curvature`` are given, either is
        not finite and > 0, ``lr_curvature`` is given and the learning
        rate is 0, or the run's numbers overflow the floating-point range
        at once (``x = lr * h`` near the largest float).

    Examples
    --------
    >>> from optfilters.thresholds import time_varying_verdict
    >>> v = time_varying_verdict("adam", 30.0, steps=300, beta1=0.9, eps=0.0)   # edge 38 (1 - 0.9^t)
    >>> v.frozen_unstable_steps, v.verdict, round(v.log10_final_amplification, 2)   # 14 steps leave a mark
    (14, 'grows', 2.15)
    """
    from .noisy_quadratic import transition_matrices

    m = as_model(model, **hyperparameters)
    n_steps = _step("steps", steps)
    v = float(second_moment)
    scale = float(normaliser_scale(m, v))
    lr = m.lr
    h, x = _operating_point(lr_curvature, curvature, lr, scale, "")
    if m.weight_decay is None or m.weight_decay.weight_decay == 0.0:
        # The loop depends on lr * h only: take h = 1, so that the state (parameter and filter memories in
        # gradient units) and ||Phi_N|| do not depend on how x was split into lr and h.
        lr, h = x / scale, 1.0
    matrices, start = transition_matrices(
        m,
        np.arange(1, n_steps + 1),
        lr=lr,
        curvatures=[h],
        schedule=schedule,
        second_moment=v,
        staleness=staleness,
        init=1.0,
    )
    n = matrices.shape[2]
    a = matrices[:, 0, :, :n]
    overflow = InvalidHyperparameterError(
        f"x = lr * h = {x:g}: the step's numbers overflow the floating-point range (the run diverges at once); "
        "use a smaller lr * h"
    )
    if not np.all(np.isfinite(a)):
        raise overflow
    frozen = np.asarray(saturating_spectral_radius(a), dtype=np.float64)
    # Phi_N and the run from rest, renormalised at every step (the logs of the scales add up).
    phi = np.eye(n)
    state = np.array(start[0], dtype=np.float64)
    log_phi = log_state = 0.0
    log_amplitude = np.empty(n_steps + 1)
    log_amplitude[0] = 0.0
    with np.errstate(divide="ignore"):
        for t, step_matrix in enumerate(a, start=1):
            phi = step_matrix @ phi
            size = float(np.max(np.abs(phi)))
            if size > 0.0:
                phi = phi / size
                log_phi += math.log(size)
            state = step_matrix @ state
            size = float(np.max(np.abs(state)))
            if size > 0.0:
                state = state / size
                log_state += math.log(size)
            log_amplitude[t] = log_state + math.log(abs(state[0])) if state[0] != 0.0 else -math.inf
    if not (np.all(np.isfinite(phi)) and np.all(np.isfinite(state))):
        raise overflow
    norm = float(np.linalg.norm(phi, 2))
    log10_norm = (log_phi + math.log(norm)) / math.log(10.0) if norm > 0 else -math.inf
    radius = float(saturating_spectral_radius(phi))
    average = math.exp((log_phi + math.log(radius)) / n_steps) if radius > 0 else 0.0
    log10_amplitude = log_amplitude / math.log(10.0)
    _, label = _notes(m, v)
    label = "exact (product of the transition matrices)" + (f"; {label}" if label else "")
    if staleness:
        label = _stale_label(label, int(staleness))
    return TimeVaryingVerdict(
        name=m.name,
        lr_curvature=x,
        steps=n_steps,
        log10_amplitude=np.asarray(log10_amplitude, dtype=np.float64),
        frozen_rate=np.asarray(frozen, dtype=np.float64),
        log10_norm=float(log10_norm),
        average_rate=float(average),
        label=label,
        schedule=None if schedule is None else str(getattr(schedule, "describe", lambda: schedule)()),
    )
