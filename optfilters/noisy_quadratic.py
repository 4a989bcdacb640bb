"""Noisy quadratic model: the exact expected loss of an optimizer model, step by step.

The loss is ``L(theta) = 1/2 sum_i h_i theta_i^2`` and the optimizer sees the
gradient ``g_t = h * theta_{t-1} + xi_t`` with white noise ``xi_t`` of variance
``sigma_i^2`` per coordinate (independent across steps and coordinates).  Every
optimizer here acts elementwise, so each coordinate is its own closed loop:
the parameter and the filter memories form a state ``X`` with

    X_t = A_t X_{t-1} + B_t xi_t

where ``A_t``, ``B_t`` are built at every step from the model's stages exactly
as :meth:`optfilters.NumpyOptimizer.step` runs them (each term's coefficient
``c(t)`` and bias correction, the first-step quirks ``first_output_is_input``
and ``initial_output``, the learning-rate gain, coupled or decoupled weight
decay, ``maximize``) and from the learning rate of that step.  The mean and the
covariance then propagate exactly,

    m_t = A_t m_{t-1},    P_t = A_t P_{t-1} A_t^T + sigma^2 B_t B_t^T,

and ``E[L_t] = 1/2 sum_i h_i (m_{t,i}^2 + P_{t,i})``.  For linear models
(SGD, momentum, Nesterov, QHM, designed filters, ...) the prediction is exact,
time-varying parts and learning-rate schedules included; the steady state
solves the discrete Lyapunov equation ``P = A P A^T + sigma^2 B B^T`` of the
``t -> infinity`` LTI limit.

Normalised models are **linearised**: the normaliser becomes a gain
``1 / (sqrt(v) + eps)`` per coordinate, with ``v`` either given (frozen),
``"steady"`` (frozen at the self-consistent steady-state second moment
``v = E[g^2]``), or ``"tracking"`` (the default: the model's own second-moment
stage, bias correction and AMSGrad maximum included, run on the predicted
``E[g_t^2]``, a mean-field approximation that follows the transient).  These
are approximations: see :mod:`optfilters.observe` for how far they are from
real runs.

A memoryless stage with a Gaussian closure (:meth:`optfilters.stages.Stage.gaussian_closure`;
Lion's ``sign``) is statistically linearised around the predicted mean and
variance of its input ``d``: the relay contributes its exact mean ``E[sign d] =
erf(mu / (sigma sqrt 2))`` to the mean, its random-input describing function
``sqrt(2/pi) / sigma exp(-mu^2 / (2 sigma^2))`` (the Bussgang gain) to the
correlation with the state, and the rest of its variance ``1 - E[sign d]^2`` as
uncorrelated noise.  Without noise and from a fixed start (``sigma = 0``) this
is the exact recursion: the constant-speed approach of
:mod:`optfilters.describing_function` (Lion with lr 0.01 from 1 has loss ``(1 -
0.45)^2 / 2 = 0.15125`` at step 45; the Gaussian gain alone gave 0.2054); with
noise it moves smoothly to the linearised (dithered) regime.  The steady state
of such a loop is the long-run average of the same recursion (its limit cycle
without noise).

Learning-rate schedules enter as the time-varying gain ``lr_t``: the
schedules of the lectures (:func:`exponential`, :func:`step_decay`,
:func:`linear`, :func:`inverse_time`, :func:`cosine`, :func:`warmup`), any
``torch.optim.lr_scheduler`` object or factory (sampled; torch is imported
only then) or an explicit sequence of learning rates.
"""

from __future__ import annotations

import copy
import math
import sys
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import gains as _gains
from .closed_loop import ModelLike, as_model, closed_loop
from .display import Plottable, RichDisplay
from .errors import InvalidHyperparameterError
from .gains import Gain
from .model import OptimizerModel
from .program import Program, run_numpy
from .stages import Moments, Stage
from .validation import (
    MARGINAL_RATE_TOL,
    MAX_STEPS,
    check_integer,
    check_number,
    fmt_list,
    is_marginal,
    null_reasons,
    quiet_numerics,
    saturating_spectral_radius,
    series_null_reason,
)
from .validation import finite_list as _list
from .validation import finite_or_none as _finite_or_none

__all__ = [
    "Constant",
    "Cosine",
    "Exponential",
    "InverseTime",
    "Linear",
    "NoisyQuadraticPrediction",
    "Schedule",
    "Step",
    "Warmup",
    "constant",
    "cosine",
    "exponential",
    "inverse_time",
    "linear",
    "lr_sequence",
    "parse_schedule",
    "predict",
    "steady_state_loss",
    "step_decay",
    "transition_matrices",
    "warmup",
]

FloatArray = NDArray[np.float64]


# ----------------------------------------------------------------------------- schedules


# The schedules are gains (:mod:`optfilters.gains`): one implementation of each decay; these are their
# names in the noisy quadratic model's vocabulary.
Schedule = Gain
Exponential = _gains.ExponentialDecay
Step = _gains.StepDecay
Linear = _gains.LinearDecay
InverseTime = _gains.InverseTimeDecay
Cosine = _gains.CosineDecay
Warmup = _gains.LinearWarmup


@dataclass(frozen=True)
class Constant(_gains.Constant):
    """Factor 1 at every step: the gain :class:`optfilters.gains.Constant` described as a schedule.

    Parameters
    ----------
    constant : float
        The factor (1 for a constant learning rate).

    Examples
    --------
    >>> from optfilters.noisy_quadratic import constant
    >>> constant().factors(2).tolist()
    [1.0, 1.0]
    """

    def describe(self) -> str:
        """'constant'.

        Returns
        -------
        str
            ``"constant"``.
        """
        return "constant"


def constant() -> Constant:
    """A constant learning rate.

    Returns
    -------
    Constant
        Factor 1.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import constant
    >>> constant().describe()
    'constant'
    """
    return Constant()


def exponential(gamma: float) -> Exponential:
    """Exponential decay ``lr gamma^(t-1)``.

    Parameters
    ----------
    gamma : float
        Decay per step, > 0.

    Returns
    -------
    ExponentialDecay
        The gain ``gamma^(t-1)`` (:class:`optfilters.gains.ExponentialDecay`).

    Raises
    ------
    InvalidHyperparameterError
        When ``gamma`` is not positive.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import exponential
    >>> exponential(0.5).factor(2)
    0.5
    """
    return Exponential(gamma)


def step_decay(step_size: int, gamma: float = 0.1) -> Step:
    """Step decay ``lr gamma^floor((t-1)/step_size)``.

    Parameters
    ----------
    step_size : int
        Steps between decays, >= 1.
    gamma : float
        Factor per decay, > 0.

    Returns
    -------
    StepDecay
        The gain (:class:`optfilters.gains.StepDecay`).

    Raises
    ------
    InvalidHyperparameterError
        For a bad ``step_size`` or ``gamma``.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import step_decay
    >>> round(step_decay(10, 0.5).factor(11), 12)
    0.5
    """
    return Step(step_size, gamma)


def linear(total: int, start_factor: float = 1.0, end_factor: float = 0.0) -> Linear:
    """Linear decay (or increase) over ``total`` steps.

    Parameters
    ----------
    total : int
        Steps of the interpolation, >= 1.
    start_factor, end_factor : float
        Factors at step 1 and from step ``total + 1`` on, >= 0.

    Returns
    -------
    LinearDecay
        The gain (:class:`optfilters.gains.LinearDecay`).

    Raises
    ------
    InvalidHyperparameterError
        For a bad ``total`` or factor.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import linear
    >>> linear(10).factor(6)
    0.5
    """
    return Linear(total, start_factor, end_factor)


def inverse_time(decay: float) -> InverseTime:
    """Inverse-time decay ``lr / (1 + decay (t-1))``.

    Parameters
    ----------
    decay : float
        >= 0.

    Returns
    -------
    InverseTimeDecay
        The gain (:class:`optfilters.gains.InverseTimeDecay`).

    Raises
    ------
    InvalidHyperparameterError
        For a negative ``decay``.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import inverse_time
    >>> inverse_time(0.5).factor(3)
    0.5
    """
    return InverseTime(decay)


def cosine(total: int, min_factor: float = 0.0) -> Cosine:
    """Cosine annealing over ``total`` steps down to ``min_factor``.

    Parameters
    ----------
    total : int
        Steps of the half cosine, >= 1.
    min_factor : float
        Final factor, in [0, 1].

    Returns
    -------
    CosineDecay
        The gain (:class:`optfilters.gains.CosineDecay`).

    Raises
    ------
    InvalidHyperparameterError
        For a bad ``total`` or ``min_factor``.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import cosine
    >>> round(cosine(10).factor(6), 12)
    0.5
    """
    return Cosine(total, min_factor)


def warmup(steps: int, then: Schedule | None = None, start_factor: float | None = None) -> Warmup:
    """Linear warm-up over ``steps`` steps, then ``then``.

    Parameters
    ----------
    steps : int
        Warm-up steps, >= 1.
    then : Gain, optional
        The schedule after the warm-up (default: constant).
    start_factor : float, optional
        Factor at step 1, in [0, 1] (default ``1 / steps``).

    Returns
    -------
    LinearWarmup
        The gain (:class:`optfilters.gains.LinearWarmup`).

    Raises
    ------
    InvalidHyperparameterError
        For a bad ``steps`` or ``start_factor``.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import warmup, cosine
    >>> warmup(2, cosine(2)).factors(5).round(12).tolist()
    [0.5, 1.0, 1.0, 0.5, 0.0]
    """
    return Warmup(steps, then, start_factor)


#: The forms of :func:`parse_schedule`, with torch.optim.lr_scheduler's argument names.
SCHEDULE_FORMS = (
    "constant, exponential:gamma, step:step_size[:gamma], linear:total_iters[:end_factor], inverse:lr_decay, "
    "cosine:T_max[:min_factor], warmup:steps[,THEN]"
)


def _schedule_factor(text: str, name: str, low: float, high: float | None = None, low_open: bool = False) -> float:
    """A real field of a schedule: in range, and 0 or a normal double (a subnormal keeps fewer digits than written)."""
    value = check_number(text, name, low, high, low_open)
    if 0.0 < value < sys.float_info.min:
        raise InvalidHyperparameterError(
            f"{name} must be {'' if low_open else '0 or '}>= {sys.float_info.min:.17g} (the smallest normal double: "
            f"below it a number keeps fewer digits than written), got {text.strip()!r}"
        )
    return value


def parse_schedule(text: str) -> Schedule:
    """A schedule from text (the CLI's ``--schedule``).

    Forms, with torch.optim.lr_scheduler's argument names: ``constant``,
    ``exponential:gamma`` (``ExponentialLR``), ``step:step_size[:gamma]``
    (``StepLR``, gamma 0.1 by default), ``linear:total_iters[:end_factor]``
    (``LinearLR`` from 1, end factor 0 by default), ``inverse:lr_decay``
    (Adagrad's ``lr / (1 + (t - 1) lr_decay)``), ``cosine:T_max[:min_factor]``
    (``CosineAnnealingLR`` with ``eta_min = min_factor * lr``, held after
    ``T_max``), ``warmup:steps[,THEN]`` where THEN is another form.  Step counts
    (``steps``, ``step_size``, ``total_iters``, ``T_max``) are integers in
    [1, :data:`~optfilters.validation.MAX_STEPS`].  Numbers follow the strict
    decimal grammar (:func:`~optfilters.validation.parse_decimal`: no ``1_0``,
    ``0x10``, ``nan`` or ``inf``); ``gamma > 0``, ``end_factor >= 0``,
    ``lr_decay >= 0`` and ``min_factor`` in [0, 1] are 0 or normal doubles
    (>= 2.2250738585072014e-308, ``sys.float_info.min``: a subnormal keeps
    fewer digits than written, ``1e-320`` is held as ``9.99989e-321``).  An
    empty field or a trailing comma is refused.

    Parameters
    ----------
    text : str
        One of the forms above.

    Returns
    -------
    Gain
        The schedule as a gain.

    Raises
    ------
    InvalidHyperparameterError
        For any other text, listing the forms; a field that is not a number in
        its range (naming the form and the field: ``schedule step:gamma must
        be > 0, got '0'``); an empty field or a trailing comma.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import parse_schedule
    >>> parse_schedule("warmup:10,cosine:100").describe()
    'linear warm-up over 10 steps, then cosine to 0 over 100 steps'
    >>> parse_schedule("decay:2")
    Traceback (most recent call last):
    ...
    optfilters.errors.InvalidHyperparameterError: schedule must be one of constant, exponential:gamma, \
step:step_size[:gamma], linear:total_iters[:end_factor], inverse:lr_decay, cosine:T_max[:min_factor], \
warmup:steps[,THEN]; got 'decay:2'
    >>> parse_schedule("exponential:1_0")
    Traceback (most recent call last):
    ...
    optfilters.errors.InvalidHyperparameterError: schedule exponential:gamma must be a number, got '1_0'
    """
    raw = text.strip()
    head, comma, rest = raw.partition(",")
    kind, *args = head.strip().lower().split(":")
    if comma and not rest.strip():
        raise InvalidHyperparameterError(f"schedule has a trailing comma in {text!r} (warmup:steps[,THEN])")
    if any(not a.strip() for a in args):
        raise InvalidHyperparameterError(f"schedule has an empty field in {text!r}")

    def steps(value: str, field: str) -> int:  # every integer field: a step count within MAX_STEPS
        return check_integer(value, f"schedule {kind}:{field}", 1, MAX_STEPS)

    def real(value: str, field: str, low: float, high: float | None = None, low_open: bool = False) -> float:
        return _schedule_factor(value, f"schedule {kind}:{field}", low, high, low_open)

    n = len(args)
    if kind == "warmup" and n == 1:
        return Warmup(steps(args[0], "steps"), parse_schedule(rest) if comma else None)
    if not comma:
        if kind == "constant" and n == 0:
            return Constant()
        if kind == "exponential" and n == 1:
            return Exponential(real(args[0], "gamma", 0.0, low_open=True))
        if kind == "step" and n in (1, 2):
            return Step(steps(args[0], "step_size"), *(real(a, "gamma", 0.0, low_open=True) for a in args[1:]))
        if kind == "linear" and n in (1, 2):
            return Linear(steps(args[0], "total_iters"), 1.0, *(real(a, "end_factor", 0.0) for a in args[1:]))
        if kind in ("inverse", "inverse_time", "inverse-time") and n == 1:
            return InverseTime(real(args[0], "lr_decay", 0.0))
        if kind == "cosine" and n in (1, 2):
            return Cosine(steps(args[0], "T_max"), *(real(a, "min_factor", 0.0, 1.0) for a in args[1:]))
    raise InvalidHyperparameterError(f"schedule must be one of {SCHEDULE_FORMS}; got {text!r}")


def _is_torch_scheduler(obj: Any) -> bool:
    module = type(obj).__module__ or ""
    return module.startswith("torch.") and hasattr(obj, "step") and hasattr(obj, "optimizer")


def _sample_torch(scheduler: Any, steps: int) -> FloatArray:
    """The learning rates a torch scheduler gives for ``steps`` optimizer steps (a copy is stepped)."""
    import torch  # noqa: F401  (a torch scheduler was given: torch is present)

    if type(scheduler).__name__ == "ReduceLROnPlateau":
        raise InvalidHyperparameterError("ReduceLROnPlateau depends on the loss: it is not a fixed schedule")
    try:
        copied = copy.deepcopy(scheduler)
    except Exception as exc:  # a scheduler holding something that cannot be copied
        raise InvalidHyperparameterError(
            f"cannot copy the scheduler to sample it ({exc}); pass a factory lambda opt: Scheduler(opt, ...)"
        ) from None
    out = np.empty(steps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()"
        for i in range(steps):
            out[i] = float(copied.optimizer.param_groups[0]["lr"])
            copied.step()
    return out


def lr_sequence(schedule: Any, lr: float, steps: int) -> FloatArray:
    """The learning rate of each step ``t = 1 .. steps``.

    Parameters
    ----------
    schedule : Schedule, torch scheduler, callable, sequence or None
        A :class:`Schedule` (factors of ``lr``); a ``torch.optim.lr_scheduler``
        object (its absolute learning rates, sampled on a copy from its
        current state); a callable ``factory(optimizer) -> scheduler``, sampled
        on a throw-away ``torch.optim.SGD`` with learning rate ``lr``; a
        sequence of absolute learning rates (at least ``steps`` long); None
        for a constant ``lr``.
    lr : float
        Base learning rate.
    steps : int
        Number of steps, in ``[0, MAX_STEPS]`` (:data:`optfilters.validation.MAX_STEPS`).

    Returns
    -------
    ndarray, shape (steps,)
        The learning rate of each step (absolute, not a factor).

    Raises
    ------
    InvalidHyperparameterError
        If the schedule gives fewer than ``steps`` learning rates, or one
        that is negative or not finite.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import lr_sequence, step_decay
    >>> lr_sequence(step_decay(2, 0.5), 0.1, 4).round(12).tolist()
    [0.1, 0.1, 0.05, 0.05]
    """
    steps = check_integer(steps, "steps", 0, MAX_STEPS)
    if schedule is None:
        return np.full(steps, float(lr))
    if isinstance(schedule, Schedule):
        return float(lr) * schedule.factors(steps)
    if _is_torch_scheduler(schedule):
        return _sample_torch(schedule, steps)
    if callable(schedule):
        import torch

        dummy = torch.nn.Parameter(torch.zeros(1))
        optimizer = torch.optim.SGD([dummy], lr=float(lr))
        return _sample_torch(schedule(optimizer), steps)
    values = np.asarray(schedule, dtype=np.float64).ravel()
    if values.size < steps:
        raise InvalidHyperparameterError(f"schedule must give at least {steps} learning rates, got {values.size}")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise InvalidHyperparameterError("schedule learning rates must be finite and >= 0")
    return values[:steps].copy()


# ----------------------------------------------------------------------------- per-step state space


def _second_moment(rows: FloatArray, mean: FloatArray, cov: FloatArray, noise_var: FloatArray) -> FloatArray:
    """``E[(r . [X; xi])^2]`` per coordinate for rows ``r`` (d, n+1)."""
    rx, rn = rows[:, :-1], rows[:, -1]
    second = cov + mean[:, :, None] * mean[:, None, :]
    return np.asarray(np.einsum("di,dij,dj->d", rx, second, rx) + rn * rn * noise_var, dtype=np.float64)


def _mean(rows: FloatArray, mean: FloatArray) -> FloatArray:
    """``E[r . [X; xi]]`` per coordinate (the noise has mean zero)."""
    return np.asarray(np.einsum("di,di->d", rows[:, :-1], mean), dtype=np.float64)


class _Loop:
    """The closed loop of one model on a diagonal quadratic, one scalar system per coordinate.

    The model's linearised step program (:meth:`optfilters.OptimizerModel.plan`
    with ``linearised=True``) runs on rows of affine maps over ``[X; xi]``, the
    parameter and the linear stages' state: its result is ``[A_t | B_t]``.  Each
    nonlinear stage ``i`` multiplies the direction by a gain register.
    """

    def __init__(
        self, model: OptimizerModel, curvatures: FloatArray, noise_var: FloatArray, staleness: int = 0
    ) -> None:
        self.model = model
        self.h = curvatures
        self.noise_var = noise_var
        self.d = curvatures.size
        self.plan = model.plan("float64", linearised=True)
        limit = self.plan.program(None)
        self.keys = limit.keys
        self.init = np.array([spec.init for spec in limit.state], dtype=np.float64)
        # Stale gradients: the state carries theta_{t-2} .. theta_{t-1-lag} after the stages' state.
        self.lag = int(staleness)
        self.first_lag = 1 + len(self.keys)
        self.n = self.first_lag + self.lag
        self.nonlinear = [i for i, stage in enumerate(model.pipeline) if not stage.is_linear]
        key = model.parameter_output
        self.output_index = 1 + self.keys.index(key) if key is not None and key in self.keys else None

    def initial(self, init: FloatArray, init_var: FloatArray) -> tuple[FloatArray, FloatArray]:
        mean = np.zeros((self.d, self.n))
        mean[:, 0] = init
        mean[:, 1 : self.first_lag] = self.init
        cov = np.zeros((self.d, self.n, self.n))
        cov[:, 0, 0] = init_var
        if self.lag:  # the history before the run is the starting point itself
            mean[:, self.first_lag :] = init[:, None]
            idx = np.r_[0, self.first_lag : self.n]
            cov[:, idx[:, None], idx[None, :]] = init_var[:, None, None]
        return mean, cov

    def run(
        self, program: Program, scalars: list[float], gains: list[FloatArray], stop: int | None = None
    ) -> dict[str, Any]:
        """Run the linearised program on rows (its first ``stop`` instructions); returns the registers."""
        if program.keys != self.keys:
            raise InvalidHyperparameterError(
                f"{self.model.name}: the linear state changes between steps ({program.keys} vs {self.keys}); "
                "the noisy-quadratic model needs the same state at every step"
            )
        n = self.n
        rows = np.zeros((n + 1, self.d, n + 1))  # param, the state, grad: separate rows to update in place
        rows[np.arange(n), :, np.arange(n)] = 1.0
        # The loss gradient h theta + xi; with stale gradients h theta_{t-1-lag} (the last lag state).
        rows[n, :, n - 1 if self.lag else 0] = self.h
        rows[n, :, n] = 1.0
        regs: dict[str, Any] = {"param": rows[0], "grad": rows[n]}
        for k, key in enumerate(self.keys):
            regs[f"state.{key}"] = rows[1 + k]
        for i, gain in zip(self.nonlinear, gains, strict=True):
            regs[f"gain.{i}"] = np.asarray(gain, dtype=np.float64).reshape(self.d, 1)
        with quiet_numerics():  # lr * h beyond the double range: inf entries, a diverging loop the result labels
            run_numpy(program, regs, scalars, stop)
        return regs

    def congruence(self, a: FloatArray, cov: FloatArray) -> FloatArray:
        """``A C A^T`` per coordinate, the delay line's rows of ``A`` (a shift) applied by indexing.

        With ``lag`` stale steps the last ``lag`` rows of ``A`` select the
        parameter and the previous history entries: ``O(k n^2)`` work for the
        ``k`` rows of the parameter and the stages' state instead of ``O(n^3)``.
        """
        if not self.lag:
            return np.asarray(a @ cov @ np.swapaxes(a, 1, 2), dtype=np.float64)
        k = self.first_lag
        picks = np.r_[0, k : self.n - 1]  # the delay line shifts: theta, then the history but its oldest
        top = a[:, :k, :]
        left = np.concatenate([top @ cov, cov[:, picks, :]], axis=1)  # A C
        return np.concatenate([left @ np.swapaxes(top, 1, 2), left[:, :, picks]], axis=2)

    def _unit(self, i: int) -> FloatArray:
        row = np.zeros((self.d, self.n + 1))
        row[:, i] = 1.0
        return row

    def matrix_of(self, regs: dict[str, Any]) -> FloatArray:
        """``[A | B]`` of shape (d, n, n+1) from a run's registers (the stale history shifts by one step)."""
        lags = [self._unit(0), *(self._unit(self.first_lag + k) for k in range(self.lag - 1))] if self.lag else []
        return np.stack([regs["param"], *[regs[f"state.{key}"] for key in self.keys], *lags], axis=1)

    def matrix(self, t: int | None, lr: float, gains: list[FloatArray]) -> FloatArray:
        """``[A_t | B_t]`` of shape (d, n, n+1) for step ``t`` (None: the LTI limit)."""
        program = self.plan.program(t)
        return self.matrix_of(self.run(program, program.values(t, lr), gains))

    def eval_rows(self, lr: float) -> FloatArray | None:
        """The evaluation point as rows over ``[X; xi]`` (d, n), or None when the model has no evaluation rule."""
        if not self.model.has_eval_rule:
            return None
        program = self.model.swap_program("eval")
        n = self.n
        rows = np.zeros((n + 1, self.d, n + 1))
        rows[np.arange(n), :, np.arange(n)] = 1.0
        regs: dict[str, Any] = {"param": rows[0], "grad": rows[n]}
        for k, key in enumerate(self.keys):
            regs[f"state.{key}"] = rows[1 + k]
        run_numpy(program, regs, program.scalar_values(1, lr))
        return np.asarray(regs["param"][:, :n], dtype=np.float64)

    def taps(self, regs: dict[str, Any], program: Program, i: int) -> tuple[FloatArray, FloatArray]:
        """The rows of the effective gradient and of the direction entering nonlinear stage ``i``."""
        taps = dict(program.taps)
        return regs[taps[f"{i}.grad"]], regs[taps[f"{i}.direction"]]


def _step_matrix(
    model: OptimizerModel, t: int | None, lr: float, curvatures: FloatArray, gains: list[float], *, limit: bool = False
) -> FloatArray:
    """``[A_t | B_t]`` (d, n, n + 1) at given nonlinear-stage gains (for the periodic closed loop).

    With ``limit`` the ``t -> infinity`` limits of the step's scalars are used
    with step ``t``'s operations (a periodic stage's phase, the other stages' limit).
    """
    loop = _Loop(model, curvatures, np.zeros(curvatures.size))
    if len(gains) != len(loop.nonlinear):
        raise InvalidHyperparameterError(
            f"{model.name} has {len(loop.nonlinear)} nonlinear stage(s), got {len(gains)} gain(s)"
        )
    program = loop.plan.program(t)
    scalars = program.limit_values(lr) if (limit or t is None) else program.scalar_values(t, lr)
    arrays = [np.asarray(g, dtype=np.float64) * np.ones(curvatures.size) for g in gains]
    return loop.matrix_of(loop.run(program, scalars, arrays))


@dataclass(frozen=True)
class NoisyQuadraticPrediction(RichDisplay, Plottable):
    """The expected loss of an optimizer on the noisy quadratic, step by step.

    Attributes
    ----------
    name : str
    steps : ndarray
        ``0 .. N``.
    expected_loss : ndarray
        ``E[1/2 sum h_i theta_i^2]`` at each step (``N + 1`` values).
    mean, variance : ndarray
        ``E[theta_i]`` and ``Var[theta_i]`` per step and coordinate, shape ``(N + 1, d)``.
    lrs : ndarray
        The learning rate of steps ``1 .. N``.
    steady_state_loss : float
        Lyapunov steady state of the LTI limit at the last learning rate (inf when unstable); for a
        periodic model (Lookahead) the periodic steady state, averaged over one period.
    rate : float
        Largest closed-loop pole modulus over the coordinates (LTI limit, last learning rate); for a
        periodic model ``rho(M)^(1/k)`` of the monodromy matrix ``M`` of one period.
    rates : ndarray
        Per coordinate.
    curvatures, noise_var : ndarray
    label : str
        ``"exact"`` or what is approximated.
    linearised : bool
    preconditioner : ndarray
        The normaliser's gain per coordinate used for the steady state (1 for linear models).
    eval_mean, eval_variance : ndarray or None
        Per step and coordinate, the mean and variance of the model's
        evaluation point (Schedule-Free's average ``x``; see
        :attr:`eval_expected_loss`); None for other models.
    averaged_mean, averaged_variance : ndarray or None
        Per step and coordinate, the averaged parameters' (models with an
        average, :attr:`optfilters.OptimizerModel.parameter_output`; the
        parameter itself at step 0); see :attr:`averaged_loss`.
    averaged_steady_state_loss : float or None
        Their steady-state loss (nan where the average keeps all history, as SWA does).
    period : int or None
        The model's period (Lookahead's ``k``).

    Examples
    --------
    >>> from optfilters.noisy_quadratic import predict
    >>> p = predict("sgd", lr=0.1, curvatures=1.0, noise_var=1.0, init=0.0, steps=2)
    >>> p.expected_loss.round(6).tolist(), round(p.steady_state_loss, 7)
    ([0.0, 0.005, 0.00905], 0.0263158)
    """

    _plot_function = "expected_loss_plot"

    name: str
    steps: FloatArray
    expected_loss: FloatArray
    mean: FloatArray
    variance: FloatArray
    lrs: FloatArray
    steady_state_loss: float
    rate: float
    rates: FloatArray
    curvatures: FloatArray
    noise_var: FloatArray
    label: str = "exact"
    linearised: bool = False
    preconditioner: FloatArray = field(default_factory=lambda: np.ones(1))
    eval_mean: FloatArray | None = None
    eval_variance: FloatArray | None = None

    @property
    def linearisation_holds(self) -> bool:
        """False when a linearised prediction contradicts itself: its loss overflows while its rate is below 1.

        The normaliser's small-signal model then does not describe the run (Adam at ``lr = 1e308``: the first
        step is ``lr`` itself); :attr:`label` says so.  True for exact predictions.
        """
        return _linearisation_breaks(self.linearised, self.rate, self.expected_loss) is None

    @property
    def eval_expected_loss(self) -> FloatArray | None:
        """``E[L]`` at the model's evaluation point (Schedule-Free's average ``x``); None for other models.

        The evaluation point is a linear function of the parameter and the
        stages' state (:meth:`optfilters.OptimizerModel.swap_program`), so its
        mean and variance follow exactly from the propagated state covariance.
        """
        if self.eval_mean is None or self.eval_variance is None:
            return None
        return _half_loss(self.eval_mean, self.eval_variance, self.curvatures)

    averaged_mean: FloatArray | None = None
    averaged_variance: FloatArray | None = None
    averaged_steady_state_loss: float | None = None
    period: int | None = None

    @property
    def averaged_loss(self) -> FloatArray | None:
        """``E[1/2 sum h_i a_i^2]`` of the averaged parameters ``a`` per step (None when the model keeps none).

        Exact for linear models: the average (EMA, SWA, Polyak) is part of the
        loop's state.

        Examples
        --------
        >>> from optfilters.noisy_quadratic import predict
        >>> p = predict("ema", base="sgd", lr=0.5, decay=0.5, curvatures=1.0, noise_var=0.0, init=1.0, steps=3)
        >>> p.expected_loss.tolist(), p.averaged_loss.tolist()   # theta halves; a = theta, then a/2 + theta/2
        ([0.5, 0.125, 0.03125, 0.0078125], [0.5, 0.125, 0.0703125, 0.03125])
        """
        if self.averaged_mean is None or self.averaged_variance is None:
            return None
        return _half_loss(self.averaged_mean, self.averaged_variance, self.curvatures)

    @property
    def bias_loss(self) -> FloatArray:
        """``1/2 sum h E[theta]^2``: the part of the expected loss from the mean (``inf`` once it overflows)."""
        return _half_loss(self.mean, None, self.curvatures)

    @property
    def variance_loss(self) -> FloatArray:
        """``1/2 sum h Var[theta]``: the part from the noise (and a random start; ``inf`` once it overflows)."""
        return _half_loss(None, self.variance, self.curvatures)

    def as_dict(self) -> dict[str, Any]:
        """``expected_loss``, ``steady_state_loss``, ``rate`` and the context (JSON-able, non-finite as None).

        Returns
        -------
        dict
            ``expected_loss`` (``N + 1`` values), the steady-state loss and
            rates, the first and last learning rate, the curvatures, noise,
            label and preconditioner, and the averaged parameters' loss when
            the model keeps an average.  Non-finite numbers are None; ``stable``
            (``rate < 1``) tells an infinite rate (False) from a finite one, and
            ``linearisation_holds`` is :attr:`linearisation_holds`; ``why_null``
            maps each null number among the steady-state loss, the rate and the
            averaged steady-state loss to why it is null (``diverges: ...`` for
            an infinite value, ``undefined: ...`` for no value).
        """
        return {
            "name": self.name,
            "expected_loss": _list(self.expected_loss),
            "steady_state_loss": _finite_or_none(self.steady_state_loss),
            "rate": _finite_or_none(self.rate),
            "rates": _list(self.rates),
            "steps": int(self.steps[-1]),
            "lr": _list(self.lrs[:1])[0] if self.lrs.size else None,
            "final_lr": _list(self.lrs[-1:])[0] if self.lrs.size else None,
            "curvatures": _list(self.curvatures),
            "noise_var": _list(self.noise_var),
            "label": self.label,
            "linearised": self.linearised,
            "linearisation_holds": self.linearisation_holds,
            "stable": bool(self.rate < 1.0 and not is_marginal(self.rate)),
            "marginal": bool(is_marginal(self.rate)),
            "preconditioner": _list(self.preconditioner),
            **self._averaged_dict(),
            "why_null": self._why_null(),
        }

    def _why_null(self) -> dict[str, str]:
        """Why each null number of :meth:`as_dict` is null: an infinite value diverges, a nan one is undefined."""

        def why(value: float | None, undefined: str) -> tuple[Any, str]:
            return value, "diverges: rate >= 1" if value == math.inf else f"undefined: {undefined}"

        no_steps = "undefined: no steps (steps = 0): no learning rate is used"
        return null_reasons(
            {
                "steady_state_loss": why(
                    self.steady_state_loss,
                    "no steady state (no rate)"
                    if math.isnan(self.rate)
                    else "no steady state (a rate within rounding of 1: marginal)",
                ),
                "rate": why(self.rate, "no rate"),
                "averaged_steady_state_loss": why(
                    self.averaged_steady_state_loss if self.averaged_loss is not None else 0.0,
                    "the average keeps all history (no steady state)",
                ),
                "expected_loss": series_null_reason(self.expected_loss, "the expected loss"),
                "averaged_loss": series_null_reason(self.averaged_loss, "the averaged parameters' loss"),
                "rates": series_null_reason(self.rates, "the rate (largest pole modulus)"),
                "preconditioner": (
                    0.0 if np.all(np.isfinite(self.preconditioner)) else None,
                    "undefined: the normaliser's gain has no value (its tracked second moment overflowed)",
                ),
                "lr": (None if self.lrs.size == 0 else 0.0, no_steps),
                "final_lr": (None if self.lrs.size == 0 else 0.0, no_steps),
            }
        )

    def _averaged_dict(self) -> dict[str, Any]:
        averaged = self.averaged_loss
        if averaged is None:
            return {}
        steady = self.averaged_steady_state_loss
        return {
            "averaged_loss": _list(averaged),
            "averaged_steady_state_loss": None if steady is None else _finite_or_none(steady),
        }


def _per_coordinate(name: str, value: ArrayLike, d: int, low: float = -math.inf) -> FloatArray:
    array = np.asarray(value, dtype=np.float64).ravel()
    if array.size == 1:
        array = np.full(d, float(array[0]))
    if array.size != d:
        allowed = "1 value" if d == 1 else f"1 or {d} values (one per curvature)"
        raise InvalidHyperparameterError(f"{name} must have {allowed}, got {array.size}")
    if not np.all(np.isfinite(array)):
        raise InvalidHyperparameterError(f"{name} must be finite, got {array.tolist()}")
    if np.any(array < low):
        raise InvalidHyperparameterError(f"{name} must be >= {low:g}, got {array.tolist()}")
    return array


def _stein(a: FloatArray, q: FloatArray) -> FloatArray:
    """``P = sum_k A^k Q (A^T)^k``, the solution of ``P = A P A^T + Q`` for a stable ``A``, by Smith's doubling.

    Every term is positive semidefinite, so nothing cancels: unlike the
    Bartels-Stewart or Kronecker solvers this stays accurate for the strongly
    non-normal loops of high-order designs with poles clustered near 1 (an
    8th-order Butterworth at 0.005 cycles/step, where ``solve_discrete_lyapunov``
    returns a negative variance).  Iterates until the added term is below
    rounding; ``nan`` if it has not after 64 doublings (``2^64`` steps).
    """
    p = np.array(q, dtype=np.float64, copy=True)
    power = np.array(a, dtype=np.float64, copy=True)
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(64):
            term = power @ p @ power.T
            p = p + term
            if not np.all(np.isfinite(p)):
                break
            if np.max(np.abs(term)) <= 1e-17 * np.max(np.abs(p)):
                return 0.5 * (p + p.T)
            power = power @ power
    return np.full_like(p, math.nan)


#: Rates within this of 1 count as marginal (no steady state).
_MARGIN = MARGINAL_RATE_TOL


def _lyapunov(
    matrix: FloatArray, noise_var: FloatArray, radius: FloatArray | None = None
) -> tuple[FloatArray, FloatArray]:
    """Per coordinate: steady-state ``Var[theta]`` (inf when unstable) and the spectral radius.

    ``radius`` (the closed-loop rate) is computed from the matrices when not given.
    """
    n = matrix.shape[1]
    variance = np.zeros(matrix.shape[0])
    if radius is None:
        radius = np.asarray(saturating_spectral_radius(matrix[:, :, :n]), dtype=np.float64)
    radius = np.asarray(radius, dtype=np.float64)
    b = matrix[:, :, n]
    variance[radius > 1.0 + _MARGIN] = math.inf  # diverges
    # marginal (e.g. lr = 0 at the end of a schedule): no steady state
    variance[(radius >= 1.0 - _MARGIN) & (radius <= 1.0 + _MARGIN)] = math.nan
    variance[np.isnan(radius)] = math.nan  # an undefined loop (no rate): no steady state either
    solve = np.flatnonzero((radius < 1.0 - _MARGIN) & (noise_var != 0.0) & np.any(b != 0.0, axis=1))
    if 0 < solve.size <= 4:  # a few loops: one at a time (less overhead than the stacked iteration)
        for i in solve:
            variance[i] = float(_stein(matrix[i, :, :n], noise_var[i] * np.outer(b[i], b[i]))[0, 0])
    elif solve.size:
        q = noise_var[solve, None, None] * b[solve, :, None] * b[solve, None, :]
        variance[solve] = _stein_batch(matrix[solve, :, :n], q)[:, 0, 0]
    return variance, radius


def _stein_batch(a: FloatArray, q: FloatArray) -> FloatArray:
    """:func:`_stein` for a stack of loops (leading axis), all doubled together until each has converged."""
    p = np.array(q, dtype=np.float64, copy=True)
    power = np.array(a, dtype=np.float64, copy=True)
    done = np.zeros(p.shape[0], dtype=bool)
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(64):
            active = np.flatnonzero(~done)
            if active.size == 0:
                break
            pw = power[active]
            term = pw @ p[active] @ np.swapaxes(pw, 1, 2)
            p[active] = p[active] + term
            scale = np.max(np.abs(p[active]), axis=(1, 2))
            finished = np.max(np.abs(term), axis=(1, 2)) <= 1e-17 * scale
            bad = ~np.all(np.isfinite(p[active]), axis=(1, 2))
            p[active[bad]] = math.nan
            done[active[finished | bad]] = True
            power[active] = pw @ pw
    p[~done] = math.nan
    return 0.5 * (p + np.swapaxes(p, 1, 2))


def _steady_cov(matrix: FloatArray, noise_var: float) -> FloatArray | None:
    """The steady-state covariance of one coordinate's loop (None when it does not converge)."""
    n = matrix.shape[0]
    a, b = matrix[:, :n], matrix[:, n]
    radius = float(saturating_spectral_radius(a))
    if radius >= 1.0 - _MARGIN:
        return None
    p = _stein(a, noise_var * np.outer(b, b))
    return p if np.all(np.isfinite(p)) else None


def _lyapunov_output(matrix: FloatArray, noise_var: FloatArray, index: int) -> FloatArray:
    """Per coordinate: the steady-state variance of state ``index`` (the averaged parameters); nan without one."""
    out = np.empty(matrix.shape[0])
    for i, m in enumerate(matrix):
        cov = _steady_cov(m, float(noise_var[i]))
        out[i] = math.nan if cov is None else float(cov[index, index])
    return out


def _phase_step(period: int, phase: int) -> int:
    """A step in phase ``phase`` (1..period) of a periodic model, far enough that first-step quirks are over."""
    return period * 1_000_000 + phase


def _periodic_steady(
    phases: list[FloatArray], noise_var: FloatArray, output: int | None
) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    """The periodic steady state of a loop with period ``len(phases)``, per coordinate.

    ``phases[j]`` is ``[A_j | B_j]`` of phase ``j + 1``.  The state after a whole
    period is ``X_k = M X_0 + sum_j Phi_j B_j xi_j`` with the monodromy matrix
    ``M = A_k ... A_1`` and ``Phi_j = A_k ... A_{j+1}``; its steady covariance
    solves ``P_0 = M P_0 M^T + Q`` and is propagated through the period.
    Returns the parameter's (and the averaged output's) variance averaged over
    the ``k`` phases, and the per-step rate ``rho(M)^(1/k)``.
    """
    d, n = phases[0].shape[0], phases[0].shape[1]
    k = len(phases)
    variance = np.full(d, math.nan)  # a nan rate (an undefined loop) leaves its entries nan: never stale memory
    avg = np.full(d, math.nan) if output is not None else None
    radius = np.full(d, math.nan)
    from .closed_loop import _periodic_rate

    rates = _periodic_rate([p[:, :, :n] for p in phases])  # rescaled: no overflow at a long period
    for i in range(d):
        a = [p[i, :, :n] for p in phases]
        b = [p[i, :, n] for p in phases]
        radius[i] = rates[i]
        rho = float(rates[i]) ** k if rates[i] < 1.0 else float(rates[i])
        if rho > 1.0 + _MARGIN:
            variance[i] = math.inf
        elif rho >= 1.0 - _MARGIN:
            variance[i] = math.nan
        elif noise_var[i] == 0.0:
            variance[i] = 0.0
        if not (rho < 1.0 - _MARGIN and noise_var[i] > 0.0):
            if avg is not None:
                avg[i] = variance[i]
            continue
        mono = np.eye(n)
        q = np.zeros((n, n))
        for a_j, b_j in zip(a, b, strict=True):
            mono = a_j @ mono
            q = a_j @ q @ a_j.T + noise_var[i] * np.outer(b_j, b_j)
        p = _stein(mono, q)
        total = np.zeros((n, n))
        for a_j, b_j in zip(a, b, strict=True):
            p = a_j @ p @ a_j.T + noise_var[i] * np.outer(b_j, b_j)
            total += p
        variance[i] = total[0, 0] / k
        if avg is not None and output is not None:
            avg[i] = total[output, output] / k
    return variance, radius, avg


def _steady_points(loop: _Loop, model: OptimizerModel, lr: float) -> list[FloatArray | None]:
    """Self-consistent operating points ``v = F(1) E[g^2]`` at steady state, per nonlinear stage and coordinate.

    None for a stage with no second moment (frozen at its gain at ``v = 1``,
    e.g. the sign).  The stages' points are proportional to one another; the
    first stage's is solved for (in ``log v``, by Brent's method).
    """
    from scipy.optimize import brentq

    stages = [model.pipeline[i] for i in loop.nonlinear]
    dcs: list[float | None] = []
    for stage in stages:
        try:
            dcs.append(stage.steady_dc(model.name))
        except ValueError as exc:
            raise InvalidHyperparameterError(str(exc)) from None
    ref = next((j for j, dc in enumerate(dcs) if dc is not None), None)
    if ref is None:
        return [None] * len(stages)
    if np.any(loop.noise_var == 0.0):
        raise InvalidHyperparameterError(
            "second_moment='steady' needs noise_var > 0 (without noise v tends to 0); use a number or 'tracking'"
        )
    dc = dcs[ref]
    assert dc is not None
    ratios = [None if d is None else d / dc for d in dcs]
    vs = np.full(loop.d, math.nan)
    program = loop.plan.program(None)
    for i in range(loop.d):
        sub = _Loop(model, loop.h[i : i + 1], loop.noise_var[i : i + 1], loop.lag)

        def gains_at(v: float) -> list[FloatArray]:
            return [
                np.atleast_1d(np.asarray(stage.frozen_gain(v * ratio if ratio is not None else 1.0), dtype=np.float64))
                for stage, ratio in zip(stages, ratios, strict=True)
            ]

        def expected(log_v: float, sub: _Loop = sub) -> float:
            v = math.exp(log_v)
            regs = sub.run(program, program.limit_values(lr), gains_at(v))
            cov = _steady_cov(sub.matrix_of(regs)[0], float(sub.noise_var[0]))
            if cov is None:
                return -1e3
            g_row, _ = sub.taps(regs, program, loop.nonlinear[ref])
            eg2 = _second_moment(g_row, np.zeros((1, sub.n)), cov[None], sub.noise_var)[0]
            return math.log(dc * eg2) - log_v

        lo = math.log(dc * loop.noise_var[i])
        hi = lo + 1.0
        while expected(hi) > 0.0 and hi < lo + 200.0:
            hi += 2.0
        if expected(lo) < 0.0:
            lo_try = lo
            while expected(lo_try) < 0.0 and lo_try < hi:
                lo_try += 0.5
            lo = lo_try - 0.5 if lo_try < hi else lo
        f_lo, f_hi = expected(lo), expected(hi)
        if not (f_lo >= 0.0 >= f_hi):
            raise InvalidHyperparameterError(
                f"no self-consistent steady second moment for curvature {loop.h[i]:g} (the linearised loop diverges)"
            )
        log_v = brentq(expected, lo, hi, xtol=1e-13) if f_lo > 0.0 > f_hi else (lo if f_lo == 0.0 else hi)
        vs[i] = math.exp(log_v)
    return [None if ratio is None else vs * ratio for ratio in ratios]


#: Settling tolerance of the slowest pole for a relay loop's steady state.
_SIGN_SETTLE = 1e-6

#: Longest continuation run for a relay loop's steady state (beyond it the steady state is not computed).
_SIGN_MAX_STEPS = 1_000_000


def _closure_horizon(
    model: OptimizerModel, mean: FloatArray, variance: FloatArray, lr: float
) -> tuple[int, int] | None:
    """Steps to settle and to average over for a relay loop's steady state (None: more than ``_SIGN_MAX_STEPS``).

    Settling: the slowest pole of the linear stages decays to 1e-6, after
    covering the distance left (``|E theta| + 3 sd``) at constant speed three
    times over; the average is taken over as many steps as the slowest pole
    needs (at least 64).
    """
    radius = 0.0
    for f in model.filters().values():
        if f.poles.size:
            radius = max(radius, float(np.max(np.abs(f.poles))))
    memory = 1 if radius == 0.0 else math.ceil(math.log(_SIGN_SETTLE) / math.log(min(radius, 1.0 - 1e-12)))
    speed = lr * abs(model.lr_gain.limit)
    distance = float(np.max(np.abs(mean) + 3.0 * np.sqrt(np.maximum(variance, 0.0))))
    if speed == 0.0 or not math.isfinite(distance / speed):  # no motion, or a run that overflowed
        return None
    settle = memory + math.ceil(3.0 * distance / speed)
    window = max(memory, 64)
    return None if settle + window > _SIGN_MAX_STEPS else (settle, window)


def _periodic_mean(tail: FloatArray) -> float:
    """Mean of ``tail`` over a whole number of periods when it repeats exactly (a limit cycle), else the plain mean."""
    n = tail.size
    scale = max(float(np.max(np.abs(tail))), 1e-300)
    for period in range(1, n // 2 + 1):
        if np.max(np.abs(tail[period:] - tail[:-period])) <= 1e-12 * scale:
            whole = (n // period) * period
            return float(np.mean(tail[n - whole :]))
    return float(np.mean(tail))


#: Reuse a relay loop's step matrices across steps (False: rebuild them from the program at every step, the
#: reference the tests compare against).
_RELAY_CACHE = True

#: Run a time-invariant linear loop at a constant learning rate in blocks of this many steps (:func:`_lti_series`);
#: 0: step by step, the reference the tests and ``bench/bench_slow_paths.py`` compare against.
_LTI_BLOCK = 512


def _lti_series(
    matrix: FloatArray, noise_var: FloatArray, mean: FloatArray, cov: FloatArray, rows: FloatArray, steps: int
) -> tuple[FloatArray, FloatArray]:
    """``rows`` read off the mean and covariance recursion of a fixed step ``[A | b]``, ``steps`` steps, in blocks.

    ``m_t = A m_{t-1}``, ``C_t = A C_{t-1} A^T + s b b^T`` (``s`` the noise variance).
    Within a block of ``K`` steps ``W m_{t+j} = (W A^j) m_t`` and
    ``diag(W C_{t+j} W^T) = diag((W A^j) C_t (W A^j)^T) + s sum_{i<j} (W A^i b)^2``:
    the ``K`` products ``W A^j`` and noise sums are computed once, each block
    costs a few array operations instead of ``K`` Python-level steps, and the
    state at the block's end is advanced by ``A^K`` and the doubled noise sum.

    Parameters
    ----------
    matrix : ndarray, shape (d, n, n + 1)
        ``[A | b]`` per coordinate.
    noise_var : ndarray, shape (d,)
    mean, cov : ndarray, shapes (d, n) and (d, n, n)
        The state before the first step.
    rows : ndarray, shape (d, r, n)
        The linear read-outs ``W`` (the parameter, an evaluation point, an average).
    steps : int

    Returns
    -------
    means, variances : ndarray, shape (steps, d, r)
        ``W m_t`` and ``diag(W C_t W^T)`` for ``t = 1 .. steps``.
    """
    n = matrix.shape[1]
    a, b = matrix[:, :, :n], matrix[:, :, n]
    d, r = rows.shape[0], rows.shape[1]
    k = max(1, min(max(_LTI_BLOCK, 16 * n), steps))  # a block's end costs O(n^3): amortised over >= 16 n steps
    read = np.empty((k, d, r, n))
    noise = np.empty((k, d, r))
    current = np.array(rows, dtype=np.float64, copy=True)
    acc = np.zeros((d, r))
    for j in range(k):
        acc = acc + noise_var[:, None] * np.einsum("dri,di->dr", current, b) ** 2
        current = current @ a
        read[j], noise[j] = current, acc
    # A^k and the noise added over k steps, by doubling (k need not be a power of two: binary expansion)
    power, added = np.broadcast_to(np.eye(n), (d, n, n)).copy(), np.zeros((d, n, n))
    base, base_added = a.copy(), noise_var[:, None, None] * b[:, :, None] * b[:, None, :]
    left = k if steps > k else 0  # one block: its end state is not needed
    while left:
        if left & 1:  # (power, added) after base's steps: x -> base (power x) + ...
            added = base @ added @ np.swapaxes(base, 1, 2) + base_added
            power = base @ power
        left >>= 1
        if left:
            base_added = base @ base_added @ np.swapaxes(base, 1, 2) + base_added
            base = base @ base
    means = np.empty((steps, d, r))
    variances = np.empty((steps, d, r))
    for start in range(0, steps, k):
        m = min(k, steps - start)
        block = read[:m]
        means[start : start + m] = np.einsum("jdri,di->jdr", block, mean)
        variances[start : start + m] = np.sum((block @ cov[None]) * block, axis=-1) + noise[:m]
        if m == k:
            mean = np.einsum("dij,dj->di", power, mean)
            cov = power @ cov @ np.swapaxes(power, 1, 2) + added
            cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
    return means, variances


def _relay_input(
    rows: FloatArray, mean: FloatArray, cov: FloatArray, noise_var: FloatArray, scale: int = 0
) -> tuple[FloatArray, FloatArray]:
    """Mean and standard deviation of a relay's input ``rows . [X; xi]`` per coordinate (0 for an exactly known one).

    ``mean``, ``cov`` and ``noise_var`` are in the moments' scale ``2^scale`` (see :func:`_rescaled`); the results
    are the true values.
    """
    mu = _mean(rows, mean)
    variance = np.maximum(_second_moment(rows, mean, cov, noise_var) - mu * mu, 0.0)
    mu, variance = _unscaled(mu, scale // 2), _unscaled(variance, scale)
    std = np.sqrt(variance)
    return mu, np.where(std <= 1e-15 * np.abs(mu), 0.0, std)  # rounding of an exactly known direction


def _relay_run(
    rows: FloatArray,
    m0: FloatArray,
    m1: FloatArray,
    column: FloatArray,
    mean: FloatArray,
    cov: FloatArray,
    noise_var: FloatArray,
    output: int | None,
    closure: Any,
    settle: int,
    window: int,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray | None]:
    """``settle + window`` steps of a relay loop whose step is fixed, one coordinate at a time on Python floats.

    The same recursion as the noisy-quadratic step with one relay: the relay's
    input ``rows . [X; xi]`` has mean ``mu`` and deviation ``std``, its closure
    gives ``(E, gain, var)``; the step matrix is ``M0 + gain M1``, the state's
    mean moves by ``A m + (E - gain mu) column`` and its covariance by ``A P
    A^T + s^2 b b^T + (var - gain^2 std^2) column column^T``.  Returns the
    final mean and covariance and, for the last ``window`` steps, ``E[theta^2]``
    (and the averaged output's) per coordinate, shape ``(window, d)``.
    """
    d, n = mean.shape
    span = range(n)
    parts = np.zeros((window, d))
    parts_avg = np.zeros((window, d)) if output is not None else None
    mean, cov = mean.copy(), cov.copy()
    for i in range(d):
        r, rn, s2 = rows[i, :n].tolist(), float(rows[i, n]), float(noise_var[i])
        a0, b0 = m0[i, :, :n].tolist(), m0[i, :, n].tolist()
        a1, b1 = m1[i, :, :n].tolist(), m1[i, :, n].tolist()
        col = column[i].tolist()
        x, c = mean[i].tolist(), cov[i].tolist()
        zero = not any(v != 0.0 for line in c for v in line)  # an exactly known state stays so without noise
        for k in range(settle + window):
            mu = 0.0
            second = rn * rn * s2
            for p in span:
                mu += r[p] * x[p]
                if r[p] != 0.0:
                    line, xp = c[p], x[p]
                    for q in span:
                        second += r[p] * r[q] * (line[q] + xp * x[q])
            var = second - mu * mu
            if var < 0.0:
                var = 0.0
            std = math.sqrt(var)
            if std <= 1e-15 * abs(mu):
                std = 0.0
            e, g, vo = closure(mu, std)
            a = a0 if g == 0.0 else [[a0[p][q] + g * a1[p][q] for q in span] for p in span]
            shift = e - g * mu
            x = [sum(a[p][q] * x[q] for q in span) + shift * col[p] for p in span]
            left = vo - g * g * std * std
            if left < 0.0:
                left = 0.0
            if not (zero and s2 == 0.0 and left == 0.0):
                b = b0 if g == 0.0 else [b0[p] + g * b1[p] for p in span]
                ac = [[sum(a[p][j] * c[j][q] for j in span) for q in span] for p in span]
                new = [
                    [sum(ac[p][j] * a[q][j] for j in span) + s2 * b[p] * b[q] + left * col[p] * col[q] for q in span]
                    for p in span
                ]
                c = [[0.5 * (new[p][q] + new[q][p]) for q in span] for p in span]
                zero = False
            if k >= settle:
                parts[k - settle, i] = x[0] * x[0] + c[0][0]
                if parts_avg is not None and output is not None:
                    parts_avg[k - settle, i] = x[output] * x[output] + c[output][output]
        mean[i], cov[i] = x, c
    return mean, cov, parts, parts_avg


def _has_closure(stage: Any) -> bool:
    """True when the stage has a Gaussian closure (its statistical linearisation, e.g. the sign)."""
    return stage.gaussian_closure(np.zeros(1), np.ones(1)) is not None


def _has_point(stage: Any) -> bool:
    """True when the stage is linearised at a second moment (not frozen at a fixed gain, like the sign)."""
    try:
        return stage.steady_dc() is not None
    except ValueError:
        return True


#: The moment recursion carries a power-of-two scale ``2^e`` (the mean ``2^(e/2)``) once a covariance entry
#: passes ``2^_RESCALE_ABOVE`` (about 1e154): ``A cov A^T`` and ``cov + cov^T`` of a variance near 1e308 would
#: overflow although the loss is finite.  Below it ``e = 0`` and the recursion is the plain one, bit for bit.
_RESCALE_ABOVE = 512


def _binary_exponent(values: ArrayLike) -> int:
    """The exponent ``k`` with ``max|values| = f 2^k``, ``0.5 <= f < 1`` (``0`` for all zeros or none).

    Examples
    --------
    >>> _binary_exponent(np.array([1.0, -3.0])), _binary_exponent(np.zeros(2)), _binary_exponent(np.array([1e308]))
    (2, 0, 1024)
    """
    return int(np.frexp(np.max(np.abs(np.asarray(values, dtype=np.float64)), initial=0.0))[1])


def _rescaled(mean: FloatArray, cov: FloatArray, e: int) -> tuple[FloatArray, FloatArray, int]:
    """The moments ``(mean, cov)`` of scale ``2^e`` renormalised to entries of order 1 (``e`` even, ``>= 0``).

    Scaling by powers of two is exact (short of underflow), so the true moments ``mean 2^(e/2)`` and ``cov 2^e``
    are unchanged; nothing happens while ``e = 0`` and the entries stay below ``2^_RESCALE_ABOVE``, or once
    the recursion has overflowed (the run diverged).

    Examples
    --------
    >>> m, c, e = _rescaled(np.array([[0.0, 0.0]]), np.array([[[1e308, 0.0], [0.0, 0.0]]]), 0)
    >>> e, float(np.ldexp(c[0, 0, 0], e)), _rescaled(m, c, e)[2] == e
    (1024, 1e+308, True)
    """
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(cov))):
        return mean, cov, e
    top = max(_binary_exponent(cov), 2 * _binary_exponent(mean))
    if e == 0 and top <= _RESCALE_ABOVE:
        return mean, cov, e
    shift = max(top - top % 2, -e)  # even (the mean scales by half of it), and e stays >= 0
    if shift == 0:
        return mean, cov, e
    return np.ldexp(mean, -shift // 2), np.ldexp(cov, -shift), e + shift


def _half_loss(mean: FloatArray | None, variance: FloatArray | None, h: FloatArray) -> FloatArray:
    """``1/2 sum_i h_i (mean_i^2 + variance_i)`` per step (row), without an overflowing intermediate or a warning.

    Flat directions (``h = 0``) add nothing, even where their moments
    overflowed; each row is scaled by a power of two before squaring, so the
    loss is ``inf`` only where it exceeds the double range (a diverged
    prediction), never by ``mean^2`` overflowing alone.  Either part may be
    None (only the other is summed).

    Examples
    --------
    >>> _half_loss(np.array([[1e160], [np.inf]]), None, np.array([1e-100])).tolist()
    [5e+219, inf]
    """
    other = mean if mean is not None else variance
    assert other is not None
    curved = h != 0.0
    rows = np.asarray(other, dtype=np.float64).shape[0]
    m = np.zeros((rows, int(np.count_nonzero(curved)))) if mean is None else np.asarray(mean)[:, curved]
    v = np.zeros_like(m) if variance is None else np.asarray(variance)[:, curved]
    with quiet_numerics():
        big = np.maximum(np.max(np.abs(m), axis=1, initial=0.0), np.sqrt(np.max(np.abs(v), axis=1, initial=0.0)))
        e = np.frexp(np.where(np.isfinite(big) & (big > 0.0), big, 1.0))[1]
        part = 0.5 * (np.ldexp(m, -e[:, None]) ** 2 + np.ldexp(v, -2 * e[:, None])) @ h[curved]
    return _unscaled(part, 2 * e)


def _unscaled(values: ArrayLike, e: Any) -> FloatArray:
    """``values 2^e`` (``e`` per row or one), saturating to ``inf`` beyond the double range."""
    with quiet_numerics():
        return np.asarray(np.ldexp(values, np.minimum(e, 1 << 20)), dtype=np.float64)


def _linearisation_breaks(linearised: bool, rate: float, loss: FloatArray) -> int | None:
    """The first step whose linearised loss overflowed although the linearised rate is below 1 or undefined (else None).

    An undefined (nan) rate comes from a normaliser gain that the overflow itself made nan: the small-signal model
    has no loop left to describe the run.
    """
    bad = ~np.isfinite(loss)
    if not (linearised and not rate >= 1.0 and bad.any()):  # a rate below 1, or none (nan): not a divergence
        return None
    return int(np.argmax(bad))


def _overflowed_stays_infinite(loss: FloatArray) -> FloatArray:
    """From the first non-finite value on, ``inf``: the loss of a recursion from finite inputs that overflowed.

    Examples
    --------
    >>> _overflowed_stays_infinite(np.array([0.5, np.nan, 2.0, np.inf])).tolist()
    [0.5, inf, inf, inf]
    """
    bad = ~np.isfinite(loss)
    if not bad.any():
        return loss
    out = np.array(loss, dtype=np.float64, copy=True)
    out[int(np.argmax(bad)) :] = np.inf
    return out


def _frozen_gains(
    stages: list[Any], points: list[FloatArray | None], t: int | None, d: int, name: str = ""
) -> list[FloatArray]:
    """Each stage's frozen gain at its operating point (1 where it has none); ``name`` (the model's) starts errors."""
    out = []
    for stage, v in zip(stages, points, strict=True):
        with quiet_numerics():
            gain = np.asarray(stage.frozen_gain(v if v is not None else np.ones(d), t), dtype=np.float64)
        if not np.all(np.isfinite(gain)) or np.any(gain <= 0.0):
            raise InvalidHyperparameterError(
                f"{name + ': ' if name else ''}second_moment: the frozen normaliser's gain must be finite and > 0, "
                f"got {fmt_list(gain)} "
                f"(at second moment {fmt_list(v if v is not None else 1.0)}; eps = 0 needs a second moment > 0)"
            )
        out.append(gain * np.ones(d))
    return out


def predict(
    model: ModelLike,
    *,
    lr: float | None = None,
    curvatures: ArrayLike = 1.0,
    noise_var: ArrayLike = 0.0,
    init: ArrayLike = 1.0,
    steps: int = 100,
    schedule: Any = None,
    init_var: ArrayLike = 0.0,
    second_moment: Any = "tracking",
    staleness: int = 0,
    **hyperparameters: Any,
) -> NoisyQuadraticPrediction:
    """The exact expected loss trajectory on the noisy quadratic (linearised for normalised models).

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        Catalogue name (with ``hyperparameters``), model, or gradient filter.
    lr : float, optional
        Learning rate (default: the model's).
    curvatures : array_like
        ``h_i`` (``>= 0``), one per coordinate.
    noise_var : array_like
        Variance of the additive gradient noise, scalar or per coordinate.
    init : array_like
        Initial point ``E[theta_0]`` (scalar or per coordinate).
    steps : int
        Number of steps ``N``; the result has ``N + 1`` values from step 0.
    schedule : optional
        Learning-rate schedule (see :func:`lr_sequence`).
    init_var : array_like
        Variance of a random initial point.
    second_moment : float, array_like, "tracking" or "steady"
        How a normaliser is linearised (ignored by linear models).
    staleness : int
        Steps ``d`` by which the loss gradient is stale: ``g_t = h theta_{t-1-d}
        + xi_t`` (asynchronous or pipelined training; ``z^-d`` in the loop).
        The steps before the run see the starting point; coupled weight decay
        stays on the current parameter, as the optimizer adds it.
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    NoisyQuadraticPrediction

    Raises
    ------
    InvalidHyperparameterError
        If ``steps < 0``, a curvature is negative or not finite, ``lr`` is
        negative or not finite, ``second_moment`` is not a number,
        ``"tracking"`` or ``"steady"``, or ``staleness`` is not an integer >= 0.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import predict
    >>> p = predict("momentum", lr=0.1, momentum=0.9, curvatures=1.0, noise_var=1.0, steps=1000)
    >>> round(p.steady_state_loss, 6)     # (1+b) lr s^2 / (2 (1-b) (2 (1+b) - lr h))
    0.256757
    >>> round(predict("momentum", lr=0.05, momentum=0.9, staleness=3).rate, 4)   # 3 stale steps diverge
    1.0181
    """
    m = as_model(model, **hyperparameters)
    steps = int(steps)
    if steps < 0:
        raise InvalidHyperparameterError(f"steps must be >= 0, got {steps}")
    h = np.atleast_1d(np.asarray(curvatures, dtype=np.float64)).ravel()
    if h.size == 0 or not np.all(np.isfinite(h)) or np.any(h < 0):
        raise InvalidHyperparameterError(f"curvatures must be finite and >= 0, got {h.tolist()}")
    d = h.size
    sigma2 = _per_coordinate("noise_var", noise_var, d, 0.0)
    theta0 = _per_coordinate("init", init, d)
    var0 = _per_coordinate("init_var", init_var, d, 0.0)
    base_lr = m.lr if lr is None else float(lr)
    if not (math.isfinite(base_lr) and base_lr >= 0.0):
        raise InvalidHyperparameterError(f"lr must be finite and >= 0, got {lr}")
    lrs = lr_sequence(schedule, base_lr, steps)
    final_lr = float(lrs[-1]) if steps else base_lr
    _check_staleness(staleness)
    loop = _Loop(m, h, sigma2, int(staleness))
    stages = [m.pipeline[i] for i in loop.nonlinear]
    ones = np.ones(d)

    mode: Any = second_moment
    points: list[FloatArray | None] = [None] * len(stages)
    notes: list[str] = []
    trackers: list[Any] = []
    if stages:
        if isinstance(mode, str):
            if mode not in ("tracking", "steady"):
                raise InvalidHyperparameterError(
                    f"second_moment must be a number, 'tracking' or 'steady', got {second_moment!r}"
                )
        else:
            v = _per_coordinate("second_moment", mode, d, 0.0)
            points = [v] * len(stages)
            mode = "frozen"
        if mode == "steady":
            points = _steady_points(loop, m, final_lr)
        if mode == "tracking":
            trackers = [stage.tracker(d) for stage in stages]
        how = {"tracking": "tracking", "steady": "steady", "frozen": "frozen_given"}[mode]
        for stage in stages:
            note = stage.linearisation_note(how)
            if note:
                notes.append(note)

    mean, cov = loop.initial(theta0, var0)
    mean, cov, scale = _rescaled(mean, cov, 0)  # true moments: mean 2^(scale/2), cov 2^scale
    n = loop.n
    mean_theta = np.empty((steps + 1, d))  # scaled, by 2^(exponents / 2)
    var_theta = np.empty((steps + 1, d))  # scaled, by 2^exponents
    exponents = np.zeros(steps + 1, dtype=np.int64)
    mean_theta[0], var_theta[0], exponents[0] = mean[:, 0], cov[:, 0, 0], scale
    eval_rows = loop.eval_rows(final_lr)
    eval_mean = eval_var = None
    if eval_rows is not None:  # before the first step the evaluation point is the parameter
        eval_mean, eval_var = _unscaled(mean_theta, scale // 2), _unscaled(var_theta, scale)
    output = loop.output_index  # the averaged parameters' row, if the model keeps them
    mean_avg = np.empty((steps + 1, d)) if output is not None else None
    var_avg = np.empty((steps + 1, d)) if output is not None else None
    if mean_avg is not None and var_avg is not None:
        mean_avg[0], var_avg[0] = _unscaled(mean[:, 0], scale // 2), _unscaled(cov[:, 0, 0], scale)  # the parameter
    cached: tuple[Any, FloatArray] | None = None
    gains: list[FloatArray] = [ones] * len(stages)
    closures = [_has_closure(stage) for stage in stages]

    # One relay (the sign) and no normaliser tracked through the moments: the step's matrix is M0 + gain M1 in the
    # relay's gain, with M0, M1 and the relay's input rows fixed by the program, its scalars and the other (frozen)
    # gains; they are computed once per distinct step (every step of a relay loop's long steady-state run shares
    # them).
    fixed = all(closures[k] or not tracker.needs_moments for k, tracker in enumerate(trackers))
    relay = closures.index(True) if closures.count(True) == 1 and fixed and _RELAY_CACHE else None
    unit = Moments(ones, ones, ones, param2=ones)  # read by no tracker on this path (needs_moments is False)
    structures: dict[Any, Any] = {}

    def relay_structure(
        program: Program, scalars: list[float]
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """The relay's input rows, ``M0``, ``M1`` and the column by which its output enters the state."""
        assert relay is not None
        key = (id(program), tuple(scalars), tuple(g.tobytes() for k, g in enumerate(gains) if k != relay))
        found = structures.get(key)
        if found is not None:
            return found
        if len(structures) > 64:
            structures.clear()
        at = [list(gains), list(gains)]
        at[0][relay], at[1][relay] = np.zeros(d), ones
        i = loop.nonlinear[relay]
        _, rows = loop.taps(loop.run(program, scalars, at[0], dict(program.marks)[f"{i}.direction"]), program, i)
        rows = np.array(rows, dtype=np.float64, copy=True)
        m0 = loop.matrix_of(loop.run(program, scalars, at[0]))
        m1 = loop.matrix_of(loop.run(program, scalars, at[1])) - m0
        norm = np.einsum("di,di->d", rows, rows)
        column = np.einsum("dij,dj->di", m1, rows) / np.where(norm > 0.0, norm, 1.0)[:, None]
        found = structures[key] = (rows, m0, m1, column)
        return found

    def relay_step(
        t: int, program: Program, scalars: list[float]
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """The other stages' gains at step ``t`` (into ``gains``) and the relay's structure of that step."""
        nonlocal gains
        if trackers:
            gains = [np.asarray(tr.gain(t, unit), dtype=np.float64) * ones for tr in trackers]
        else:
            gains = _frozen_gains(stages, points, t, d, m.name)
        return relay_structure(program, scalars)

    def advance(t: int, lr_t: float) -> None:
        """One step of the mean and covariance recursion (the model's stages at step ``t``)."""
        nonlocal mean, cov, scale, cached, gains
        program = loop.plan.program(t)
        noise = _unscaled(sigma2, -scale)  # the noise in the moments' scale
        scalars = program.scalar_values(t, lr_t)
        if relay is not None:
            rows, m0, m1, column = relay_step(t, program, scalars)
            mu, std = _relay_input(rows, mean, cov, noise, scale)
            closure = stages[relay].gaussian_closure(mu, std)
            assert closure is not None
            expected_out, gain, var_out = (np.asarray(x, dtype=np.float64) * ones for x in closure)
            gains[relay] = gain
            matrix = m0 + gain[:, None, None] * m1
            a, b = matrix[:, :, :n], matrix[:, :, n]
            shift = _unscaled(expected_out - gain * mu, -(scale // 2))
            leftover = _unscaled(np.maximum(var_out - gain * gain * std * std, 0.0), -scale)
            new_mean = (a @ mean[:, :, None])[:, :, 0] + shift[:, None] * column
            new_cov = (
                a @ cov @ np.swapaxes(a, 1, 2)
                + noise[:, None, None] * b[:, :, None] * b[:, None, :]
                + leftover[:, None, None] * column[:, :, None] * column[:, None, :]
            )
            mean, cov, scale = _rescaled(new_mean, 0.5 * new_cov + 0.5 * np.swapaxes(new_cov, 1, 2), scale)
            return
        relays: list[tuple[int, FloatArray, FloatArray, FloatArray]] = []  # (stage, input rows, shift, variance)
        if trackers or any(closures):
            if not trackers:
                gains = _frozen_gains(stages, points, t, d, m.name)
            marks = dict(program.marks)
            for j, i in enumerate(loop.nonlinear):
                if not (trackers or closures[j]):
                    continue
                regs = loop.run(program, scalars, gains, marks[f"{i}.direction"])
                g_row, d_row = loop.taps(regs, program, i)
                if closures[j]:  # E[f(d)] + gain (d - mu) + e, e uncorrelated with the state (Bussgang)
                    mu, std = _relay_input(d_row, mean, cov, noise, scale)
                    closure = stages[j].gaussian_closure(mu, std)
                    assert closure is not None
                    expected_out, gain, var_out = (np.asarray(x, dtype=np.float64) * ones for x in closure)
                    gains[j] = gain
                    leftover = np.maximum(var_out - gain * gain * std * std, 0.0)
                    relays.append((j, d_row, expected_out - gain * mu, leftover))
                else:
                    moments = Moments(
                        _unscaled(_second_moment(g_row, mean, cov, noise), scale),
                        _unscaled(_mean(g_row, mean), scale // 2),
                        _unscaled(_second_moment(d_row, mean, cov, noise), scale),
                        param2=_unscaled(mean[:, 0] ** 2 + cov[:, 0, 0], scale),
                    )
                    gains[j] = np.asarray(trackers[j].gain(t, moments), dtype=np.float64) * ones
        elif stages:
            gains = _frozen_gains(stages, points, t, d, m.name)
        key = (id(program), tuple(scalars), tuple(g.tobytes() for g in gains))
        if cached is None or cached[0] != key:
            cached = (key, loop.matrix_of(loop.run(program, scalars, gains)))
        matrix = cached[1]
        a, b = matrix[:, :, :n], matrix[:, :, n]
        new_mean = (a @ mean[:, :, None])[:, :, 0]
        new_cov = loop.congruence(a, cov) + noise[:, None, None] * b[:, :, None] * b[:, None, :]
        for j, rows, shift, leftover in relays:
            # How a unit of the stage's output enters the next state: the matrix is linear in the stage's gain,
            # M(gain + 1) - M(gain) = column (x) rows.
            bumped = list(gains)
            bumped[j] = gains[j] + 1.0
            outer = loop.matrix_of(loop.run(program, scalars, bumped)) - matrix
            norm = np.einsum("di,di->d", rows, rows)
            column = np.einsum("dij,dj->di", outer, rows) / np.where(norm > 0.0, norm, 1.0)[:, None]
            new_mean = new_mean + _unscaled(shift, -(scale // 2))[:, None] * column
            new_cov = new_cov + _unscaled(leftover, -scale)[:, None, None] * column[:, :, None] * column[:, None, :]
        mean, cov, scale = _rescaled(new_mean, 0.5 * new_cov + 0.5 * np.swapaxes(new_cov, 1, 2), scale)

    relay_steady = relay_avg_steady = math.nan
    first = 1
    lti = not stages and m.is_time_invariant and m.period is None and eval_rows is None and output is None
    if _LTI_BLOCK and lti and steps > 1 and np.all(lrs == lrs[0]):
        # The same step at every t: the recursion in blocks (_lti_series), the same numbers without a Python step
        program = loop.plan.program(1)
        matrix = loop.matrix_of(loop.run(program, program.scalar_values(1, float(lrs[0])), []))
        with np.errstate(over="ignore", invalid="ignore"):
            means, variances = _lti_series(
                matrix, _unscaled(sigma2, -scale), mean, cov, loop._unit(0)[:, None, :n], steps
            )
        # moments that grow past the rescaling threshold: step by step, which rescales them (finite stays finite)
        if np.all(np.isfinite(means)) and np.max(np.abs(variances), initial=0.0) < 2.0**_RESCALE_ABOVE:
            mean_theta[1:], var_theta[1:], exponents[1:] = means[:, :, 0], variances[:, :, 0], scale
            first = steps + 1
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(first, steps + 1):
            advance(t, float(lrs[t - 1]))
            mean_theta[t], var_theta[t], exponents[t] = mean[:, 0], cov[:, 0, 0], scale
            if eval_rows is not None and eval_mean is not None and eval_var is not None:
                eval_mean[t] = _unscaled(np.einsum("di,di->d", eval_rows, mean), scale // 2)
                eval_var[t] = _unscaled(np.einsum("di,dij,dj->d", eval_rows, cov, eval_rows), scale)
            if mean_avg is not None and var_avg is not None:
                mean_avg[t] = _unscaled(mean[:, output], scale // 2)
                var_avg[t] = _unscaled(cov[:, output, output], scale)
        horizon = (
            _closure_horizon(m, _unscaled(mean[:, 0], scale // 2), _unscaled(cov[:, 0, 0], scale), final_lr)
            if any(closures)
            else None
        )
        if horizon is not None:  # a relay loop's steady state: the long-run average of the same recursion
            settle, window = horizon
            tail = np.empty(window)
            tail_avg = np.empty(window)
            first = steps + 1
            same = None
            if relay is not None and m.is_time_invariant and scale == 0:  # the same step from here on: scalar recursion
                program = loop.plan.program(first)
                scalars = program.scalar_values(first, final_lr)
                later = loop.plan.program(first + 1)
                if later is program and later.scalar_values(first + 1, final_lr) == scalars:
                    same = relay_step(first, program, scalars)
            if same is not None and relay is not None:
                closure = stages[relay].scalar_closure()
                assert closure is not None
                mean, cov, parts, parts_avg = _relay_run(*same, mean, cov, sigma2, output, closure, settle, window)
                tail[:] = 0.5 * (parts @ h)
                if parts_avg is not None:
                    tail_avg[:] = 0.5 * (parts_avg @ h)
            else:
                for k in range(settle + window):
                    advance(first + k, final_lr)
                    if k >= settle:
                        tail[k - settle] = float(_unscaled(0.5 * (mean[:, 0] ** 2 + cov[:, 0, 0]) @ h, scale))
                        if output is not None:
                            loss_avg = 0.5 * (mean[:, output] ** 2 + cov[:, output, output]) @ h
                            tail_avg[k - settle] = float(_unscaled(loss_avg, scale))
            relay_steady = _periodic_mean(tail)
            relay_avg_steady = _periodic_mean(tail_avg) if output is not None else math.nan
        elif any(closures):
            notes.append(
                f"steady state not computed: the sign loop would need more than {_SIGN_MAX_STEPS} steps at the "
                "last learning rate to reach it"
            )
    with quiet_numerics():
        # Flat directions (h = 0) add nothing to the loss, even where their variance overflowed (0 * inf).
        curved = h != 0.0
        expected = _unscaled(0.5 * (mean_theta[:, curved] ** 2 + var_theta[:, curved]) @ h[curved], exponents)
        mean_theta = _unscaled(mean_theta, exponents[:, None] // 2)
        var_theta = _unscaled(var_theta, exponents[:, None])
    # The inputs are finite (validated), so a non-finite loss can only come from a recursion that overflowed
    # (inf, or the nan of inf - inf inside the same step): the run diverged, and stays so.
    expected = _overflowed_stays_infinite(expected)

    # Steady state and rate: the LTI limit at the last learning rate.
    limit_gains: list[FloatArray] = []
    if stages:
        if mode == "tracking":
            try:
                points = _steady_points(loop, m, final_lr)
            except InvalidHyperparameterError:  # no steady state: the last tracked gains
                points = []
        if points:
            limit_gains = _frozen_gains(stages, points, None, d, m.name)
        else:
            limit_gains = [
                gain if _has_point(stage) else _frozen_gains([stage], [None], None, d, m.name)[0]
                for stage, gain in zip(stages, gains, strict=True)
            ]
    steady_scale = ones
    for gain in limit_gains:
        steady_scale = steady_scale * gain
    # A limit gain that is nan (the tracked moments overflowed inside a step: inf - inf) leaves the linearised loop
    # undefined in that coordinate: no rate and no steady state (nan), never a number.
    undefined = np.isnan(np.asarray(steady_scale, dtype=np.float64) * ones)
    avg_variance: FloatArray | None = None
    # The steady-state covariance is linear in the noise: solved for the noise scaled by a power of two (exact) where
    # a variance near 1e308 would overflow inside the solve, then scaled back (saturating to inf).
    noise_exponent = _binary_exponent(sigma2) if np.max(sigma2, initial=0.0) > 2.0**512 else 0
    unit_noise = np.ldexp(sigma2, -noise_exponent)
    if m.period is not None:
        # Periodically time-varying (Lookahead): the monodromy matrix of one period and the periodic steady state.
        phases = [loop.matrix(_phase_step(m.period, j), final_lr, limit_gains) for j in range(1, m.period + 1)]
        variance, radius, avg_variance = _periodic_steady(phases, unit_noise, output)
        if loop.lag:
            notes.append(f"gradients {loop.lag} step{'s' if loop.lag != 1 else ''} stale")
    else:
        limit = loop.matrix(None, final_lr, limit_gains)
        if loop.lag:  # stale gradients: the poles of the state-space loop with its delay line
            radius = np.asarray(saturating_spectral_radius(limit[:, :, : loop.n]), dtype=np.float64)
            _stale_design_rates(m, final_lr, h, steady_scale, loop.lag, radius)
            notes.append(f"gradients {loop.lag} step{'s' if loop.lag != 1 else ''} stale")
        else:
            # The rate from the closed loop itself (accurate for high-order designs), per coordinate; one
            # vectorised call per distinct normaliser gain (a single one for linear models).
            base = closed_loop(m, lr=final_lr)
            radius = np.full(h.size, math.nan)
            scales = np.asarray(steady_scale, dtype=np.float64) * np.ones(h.size)
            for s_value in np.unique(scales[~undefined]):
                same = scales == s_value
                loop_s = replace(base, preconditioner=float(s_value))
                with quiet_numerics():  # lr * h beyond the double range is an infinite rate
                    x = final_lr * h[same] * float(s_value)
                radius[same] = np.asarray(loop_s.rate(x), dtype=np.float64)
        variance, radius = _lyapunov(limit, unit_noise, radius)
        if output is not None:
            avg_variance = _lyapunov_output(limit, unit_noise, output)
    radius = np.where(undefined, math.nan, radius)
    variance = np.where(undefined, math.nan, variance)
    avg_variance = np.where(undefined, math.nan, avg_variance) if avg_variance is not None else None
    if noise_exponent:
        variance = _unscaled(variance, noise_exponent)
        avg_variance = _unscaled(avg_variance, noise_exponent) if avg_variance is not None else None
    positive = h > 0.0
    with np.errstate(invalid="ignore"):
        steady = float(0.5 * np.sum(np.where(positive, h * variance, 0.0)))
        avg_steady = (
            float(0.5 * np.sum(np.where(positive, h * avg_variance, 0.0))) if avg_variance is not None else None
        )
    if np.any(positive & (radius > 1.0 + _MARGIN)):
        steady = math.inf
        avg_steady = math.inf if avg_steady is not None else None
    if any(closures):
        steady = relay_steady
        avg_steady = relay_avg_steady if avg_steady is not None else None
    rate = float(np.max(radius[positive])) if np.any(positive) else 1.0
    broken = _linearisation_breaks(bool(stages), rate, expected)
    if broken is not None:
        why = "undefined" if math.isnan(rate) else f"{fmt_list([rate])} < 1"  # undefined: a nan normaliser gain
        notes.append(
            f"NOT VALID here: the linearised loss overflows to inf from step {broken} while the linearised rate is "
            f"{why} (the normaliser's small-signal model does not describe this run)"
        )
    time_varying = not m.is_time_invariant or schedule is not None
    if m.period is not None:
        exact = "" if stages else f"exact (periodically time-varying recursion, period {m.period}); "
        notes.append(exact + "rate and steady state from the monodromy matrix of one period at the last learning rate")
    elif time_varying and not notes:
        notes.append("exact (time-varying recursion); steady state of the LTI limit at the last learning rate")
    return NoisyQuadraticPrediction(
        name=m.name,
        steps=np.arange(steps + 1, dtype=np.float64),
        expected_loss=np.asarray(expected, dtype=np.float64),
        mean=mean_theta,
        variance=var_theta,
        lrs=lrs,
        steady_state_loss=steady,
        rate=rate,
        rates=radius,
        curvatures=h,
        noise_var=sigma2,
        label="; ".join(notes) if notes else "exact",
        linearised=bool(stages),
        preconditioner=np.asarray(steady_scale, dtype=np.float64),
        eval_mean=eval_mean,
        eval_variance=eval_var,
        averaged_mean=mean_avg,
        averaged_variance=var_avg,
        averaged_steady_state_loss=avg_steady,
        period=m.period,
    )


def steady_state_loss(
    model: ModelLike,
    *,
    lr: float | None = None,
    curvatures: ArrayLike = 1.0,
    noise_var: ArrayLike = 1.0,
    second_moment: Any = "steady",
    **hyperparameters: Any,
) -> float:
    """The Lyapunov steady-state expected loss (inf when the loop diverges).

    The stationary covariance of the LTI limit's closed loop driven by the
    gradient noise (a discrete Lyapunov equation), weighted by the
    curvatures: ``lim E[1/2 sum_i h_i theta_i^2]``.

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        As for :func:`predict`.
    lr : float, optional
        Learning rate (default: the model's).
    curvatures : array_like
        ``h_i`` (``>= 0``), one per coordinate.
    noise_var : array_like
        Variance of the additive gradient noise, scalar or per coordinate.
    second_moment : float, array_like or "steady"
        Where a normaliser is frozen (``"tracking"`` is read as ``"steady"``:
        a steady state has no transient to track).
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    float
        The expected loss (units of the loss); inf when the loop is unstable.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import steady_state_loss
    >>> round(steady_state_loss("sgd", lr=0.1, curvatures=1.0, noise_var=1.0), 7)   # lr s^2 / (2 (2 - lr h))
    0.0263158
    """
    mode = "steady" if second_moment == "tracking" else second_moment
    return predict(
        model,
        lr=lr,
        curvatures=curvatures,
        noise_var=noise_var,
        steps=0,
        second_moment=mode,
        **hyperparameters,
    ).steady_state_loss


def _stale_design_rates(m: OptimizerModel, lr: float, h: FloatArray, scale: Any, lag: int, radius: FloatArray) -> None:
    """Replace, in place, the state-space rates of a stale loop around a high-order design by the factored loop's.

    The eigenvalues of the expanded realisation are off by up to 1e-4 at order 16 (clustered poles); the loop of
    :mod:`optfilters.margins` keeps the characteristic polynomial factored.
    """
    from .closed_loop import ClosedLoop
    from .margins import loop_of

    base = closed_loop(m, lr=lr)
    if not isinstance(base, ClosedLoop) or not base._factored:
        return
    scales = np.asarray(scale, dtype=np.float64) * np.ones(h.size)
    for i in np.flatnonzero((h > 0.0) & np.isfinite(radius)):
        s = float(scales[i])
        stale = loop_of(replace(base, preconditioner=s), m.name, lr * float(h[i]) * s).delayed(lag)
        radius[i] = float(stale.rate(1.0))


def _check_staleness(staleness: Any) -> None:
    if isinstance(staleness, bool) or not float(staleness).is_integer() or int(staleness) < 0:
        raise InvalidHyperparameterError(f"staleness must be an integer >= 0, got {staleness!r}")


@dataclass(frozen=True)
class _DiagonalGain(Stage):
    """A fixed gain per coordinate on the direction (a diagonal preconditioner), for :func:`transition_matrices`.

    Only its linearisation exists: it is a gain register of the linearised step.
    """

    values: tuple[float, ...] = ()

    role = "preconditioner"
    key = "preconditioner"
    is_linear = False

    def emit(self, bld: Any, sig: Any, variant: Any = None) -> None:  # pragma: no cover - never executed
        raise InvalidHyperparameterError("a diagonal preconditioner is an analysis device, not an executable stage")

    def frozen_gain(self, second_moment: ArrayLike, t: int | None = None) -> Any:
        return np.asarray(self.values, dtype=np.float64)

    def linearisation_note(self, how: str, second_moment: float | None = None) -> str | None:
        return None

    def describe(self) -> str:
        return "times a fixed diagonal preconditioner"


def _with_preconditioner(model: OptimizerModel, gain: FloatArray) -> OptimizerModel:
    """``model`` with a fixed per-coordinate gain on the direction just before its update."""
    at = next(i for i, stage in enumerate(model.pipeline) if stage.role == "learning_rate")
    stage = _DiagonalGain(tuple(float(v) for v in gain))
    return replace(model, pipeline=(*model.pipeline[:at], stage, *model.pipeline[at:]))


def transition_matrices(
    model: ModelLike,
    times: ArrayLike | None,
    *,
    lr: float | None = None,
    curvatures: ArrayLike = 1.0,
    schedule: Any = None,
    second_moment: Any = 1.0,
    staleness: int = 0,
    init: ArrayLike | None = None,
    preconditioner: ArrayLike | None = None,
    **hyperparameters: Any,
) -> Any:
    """The closed loop's per-step state-space matrices ``[A_t | B_t]`` at steps ``t`` (exact, as :func:`predict`).

    ``X_t = A_t X_{t-1} + B_t xi_t`` with the state ``X = [theta, stage
    state, stale parameters]`` of each coordinate; ``A_t`` holds every
    time-varying coefficient of step ``t`` (bias corrections, NAdam's schedule,
    RAdam's rectification, first-step quirks, the learning rate of a
    schedule).  Nonlinear stages are linearised at their frozen gain: a
    normaliser at ``second_moment`` (a number or one per coordinate), a sign at
    its gain at ``v = 1``.

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        The optimizer: a catalogue name, a model or a gradient filter (see :func:`optfilters.as_model`).
    times : array_like of int or None
        Steps ``t >= 1``; None for the ``t -> infinity`` LTI limit (one matrix per coordinate).
    lr, curvatures, schedule, staleness
        As for :func:`predict`.
    second_moment : float or array_like
        Where a normaliser is frozen.
    init : array_like, optional
        Also return the state ``X_0`` of a run starting at ``theta_0 = init``
        (stage state at its initial values, the stale history at ``init``).
    preconditioner : array_like, optional
        A fixed gain per coordinate on the direction (a diagonal preconditioner
        ``P``: ``theta -= lr P H(g)``), times the frozen normaliser's gain.
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    ndarray or (ndarray, ndarray)
        Shape ``(len(times), d, n, n + 1)`` (``(d, n, n + 1)`` for the limit);
        with ``init``, also ``X_0`` of shape ``(d, n)``.

    Raises
    ------
    InvalidHyperparameterError
        For steps below 1, negative or non-finite curvatures, a negative
        staleness, or a non-numeric ``second_moment``.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import transition_matrices
    >>> m = transition_matrices("momentum", [5], lr=0.1, momentum=0.9)
    >>> m[0, 0].round(12).tolist()    # theta' = (1 - lr h) theta - lr s - lr xi;  s' = b (h theta + s + xi)
    [[0.9, -0.1, -0.1], [0.9, 0.9, 0.9]]
    >>> a = transition_matrices("adam", [1, 1000], lr=0.1, eps=0.0)   # bias correction: 1/(1 - 0.9^t)
    >>> a[:, 0, 0, 0].round(6).tolist()
    [0.9, 0.99]
    """
    m = as_model(model, **hyperparameters)
    limit = times is None
    ts = np.ones(1, dtype=np.int64) if limit else np.atleast_1d(np.asarray(times))
    if ts.size == 0 or not np.all(np.isfinite(ts.astype(np.float64))) or np.any(ts < 1):
        raise InvalidHyperparameterError(f"times must be integers >= 1, got {ts.tolist()}")
    ts = ts.astype(np.int64)
    h = np.atleast_1d(np.asarray(curvatures, dtype=np.float64)).ravel()
    if h.size == 0 or not np.all(np.isfinite(h)) or np.any(h < 0):
        raise InvalidHyperparameterError(f"curvatures must be finite and >= 0, got {h.tolist()}")
    d = h.size
    _check_staleness(staleness)
    if isinstance(second_moment, str):
        raise InvalidHyperparameterError("transition_matrices freezes the normaliser: second_moment must be a number")
    if preconditioner is not None:
        m = _with_preconditioner(m, _per_coordinate("preconditioner", preconditioner, d, 0.0))
    base_lr = m.lr if lr is None else float(lr)
    lrs = lr_sequence(schedule, base_lr, int(ts.max()))
    loop = _Loop(m, h, np.zeros(d), int(staleness))
    stages = [m.pipeline[i] for i in loop.nonlinear]
    points: list[FloatArray | None] = [_per_coordinate("second_moment", second_moment, d, 0.0)] * len(stages)
    start = None if init is None else loop.initial(_per_coordinate("init", init, d), np.zeros(d))[0]
    if limit:
        out = loop.matrix(
            None, float(lrs[-1]) if schedule is not None else base_lr, _frozen_gains(stages, points, None, d, m.name)
        )
        return out if start is None else (out, start)
    result = np.empty((ts.size, d, loop.n, loop.n + 1))
    for i, t in enumerate(ts):
        result[i] = loop.matrix(int(t), float(lrs[t - 1]), _frozen_gains(stages, points, int(t), d, m.name))
    return result if start is None else (result, start)
