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
``E[g_t^2]``, a mean-field approximation that follows the transient).  Lion's
``sign`` becomes, when tracking, the Gaussian (Bussgang) gain
``sqrt(2/pi) / rms(d)``.  These are approximations: see
:mod:`optfilters.observe` for how far they are from real runs.

Learning-rate schedules enter as the time-varying gain ``lr_t``: the
schedules of the lectures (:func:`exponential`, :func:`step_decay`,
:func:`linear`, :func:`inverse_time`, :func:`cosine`, :func:`warmup`), any
``torch.optim.lr_scheduler`` object or factory (sampled; torch is imported
only then) or an explicit sequence of learning rates.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._errors import InvalidHyperparameterError
from ._model import OptimizerModel
from ._stages import Moments
from .closed_loop import ModelLike, as_model, closed_loop
from .program import Program, run_numpy

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


def _list(values: ArrayLike) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=np.float64).ravel()]


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


# ----------------------------------------------------------------------------- schedules


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not float(value).is_integer() or int(value) < 1:
        raise InvalidHyperparameterError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _in_range(name: str, value: Any, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> float:
    v = float(value)
    bad = not math.isfinite(v) or (v <= lo if lo_open else v < lo) or (v >= hi if hi_open else v > hi)
    if bad:
        text = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise InvalidHyperparameterError(f"{name} must be in {text}, got {value!r}")
    return v


class Schedule:
    """A learning-rate schedule: ``lr_t = lr * factor(t)`` at step ``t = 1, 2, ...``.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import exponential
    >>> exponential(0.5).factors(3).tolist()
    [1.0, 0.5, 0.25]
    """

    def factor(self, t: int) -> float:
        """The factor at step ``t`` (1-based)."""
        raise NotImplementedError

    def factors(self, n: int) -> FloatArray:
        """``factor(t)`` for ``t = 1 .. n``."""
        return np.array([self.factor(t) for t in range(1, n + 1)], dtype=np.float64)

    def describe(self) -> str:
        """A short formula."""
        raise NotImplementedError


@dataclass(frozen=True)
class Constant(Schedule):
    """Factor 1 at every step.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import constant
    >>> constant().factors(2).tolist()
    [1.0, 1.0]
    """

    def factor(self, t: int) -> float:
        """1."""
        return 1.0

    def describe(self) -> str:
        """'constant'."""
        return "constant"


@dataclass(frozen=True)
class Exponential(Schedule):
    """``gamma^(t-1)``: torch's ``ExponentialLR(gamma)`` stepped after every optimizer step.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import Exponential
    >>> Exponential(0.9).factor(3)
    0.81
    """

    gamma: float

    def __post_init__(self) -> None:
        _in_range("gamma", self.gamma, 0.0, math.inf, lo_open=True)

    def factor(self, t: int) -> float:
        """``gamma^(t-1)``."""
        return float(self.gamma ** (t - 1))

    def describe(self) -> str:
        """The formula."""
        return f"{self.gamma:g}^(t-1)"


@dataclass(frozen=True)
class Step(Schedule):
    """``gamma^floor((t-1)/step_size)``: torch's ``StepLR(step_size, gamma)``.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import Step
    >>> Step(2, 0.1).factors(5).round(12).tolist()
    [1.0, 1.0, 0.1, 0.1, 0.01]
    """

    step_size: int
    gamma: float = 0.1

    def __post_init__(self) -> None:
        _positive_int("step_size", self.step_size)
        _in_range("gamma", self.gamma, 0.0, math.inf, lo_open=True)

    def factor(self, t: int) -> float:
        """``gamma^floor((t-1)/step_size)``."""
        return float(self.gamma ** ((t - 1) // int(self.step_size)))

    def describe(self) -> str:
        """The formula."""
        return f"{self.gamma:g}^floor((t-1)/{self.step_size})"


@dataclass(frozen=True)
class Linear(Schedule):
    """``start + (end - start) min(t-1, total) / total``: torch's ``LinearLR``.

    ``Linear(total=N, start_factor=1, end_factor=0)`` is the lectures' linear
    decay ``lr (1 - i/N)``.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import Linear
    >>> Linear(4).factors(6).tolist()
    [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """

    total: int
    start_factor: float = 1.0
    end_factor: float = 0.0

    def __post_init__(self) -> None:
        _positive_int("total", self.total)
        _in_range("start_factor", self.start_factor, 0.0, math.inf)
        _in_range("end_factor", self.end_factor, 0.0, math.inf)

    def factor(self, t: int) -> float:
        """The interpolated factor."""
        frac = min(t - 1, int(self.total)) / int(self.total)
        return float(self.start_factor + (self.end_factor - self.start_factor) * frac)

    def describe(self) -> str:
        """The formula."""
        return f"linear {self.start_factor:g} -> {self.end_factor:g} over {self.total} steps"


@dataclass(frozen=True)
class InverseTime(Schedule):
    """``1 / (1 + decay (t-1))``: the lectures' ``lr0 / (1 + gamma t)`` (and Adagrad's ``lr_decay``).

    Examples
    --------
    >>> from optfilters.noisy_quadratic import InverseTime
    >>> InverseTime(1.0).factors(3).tolist()
    [1.0, 0.5, 0.3333333333333333]
    """

    decay: float

    def __post_init__(self) -> None:
        _in_range("decay", self.decay, 0.0, math.inf)

    def factor(self, t: int) -> float:
        """``1 / (1 + decay (t-1))``."""
        return 1.0 / (1.0 + self.decay * (t - 1))

    def describe(self) -> str:
        """The formula."""
        return f"1/(1+{self.decay:g}(t-1))"


@dataclass(frozen=True)
class Cosine(Schedule):
    """``m + (1 - m)(1 + cos(pi min(t-1, total)/total)) / 2``: torch's ``CosineAnnealingLR`` up to ``total``.

    After ``total`` steps the factor stays at ``min_factor`` (torch's own
    recursion would rise again).

    Examples
    --------
    >>> from optfilters.noisy_quadratic import Cosine
    >>> Cosine(2).factors(4).round(12).tolist()
    [1.0, 0.5, 0.0, 0.0]
    """

    total: int
    min_factor: float = 0.0

    def __post_init__(self) -> None:
        _positive_int("total", self.total)
        _in_range("min_factor", self.min_factor, 0.0, 1.0)

    def factor(self, t: int) -> float:
        """The cosine factor."""
        frac = min(t - 1, int(self.total)) / int(self.total)
        return float(self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * frac)))

    def describe(self) -> str:
        """The formula."""
        return f"cosine to {self.min_factor:g} over {self.total} steps"


@dataclass(frozen=True)
class Warmup(Schedule):
    """Linear warm-up ``min(1, t / steps)`` (from ``start_factor`` if given), then ``then`` restarted.

    With ``start_factor = s`` the factor is ``s + (1 - s) (t - 1) / steps``
    (torch's ``LinearLR(s, 1, steps)``) until it reaches 1.  After the warm-up,
    step ``t`` uses ``then.factor(t - steps)``.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import Warmup, Exponential
    >>> Warmup(4, then=Exponential(0.5)).factors(6).tolist()
    [0.25, 0.5, 0.75, 1.0, 1.0, 0.5]
    """

    steps: int
    then: Schedule | None = None
    start_factor: float | None = None

    def __post_init__(self) -> None:
        _positive_int("steps", self.steps)
        if self.start_factor is not None:
            _in_range("start_factor", self.start_factor, 0.0, 1.0)

    def factor(self, t: int) -> float:
        """The warm-up factor, then the following schedule's."""
        w = int(self.steps)
        if t <= w:
            if self.start_factor is None:
                return t / w
            return float(self.start_factor + (1.0 - self.start_factor) * (t - 1) / w)
        return 1.0 if self.then is None else self.then.factor(t - w)

    def describe(self) -> str:
        """The formula."""
        after = "" if self.then is None else f", then {self.then.describe()}"
        return f"linear warm-up over {self.steps} steps{after}"


def constant() -> Constant:
    """A constant learning rate.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import constant
    >>> constant().describe()
    'constant'
    """
    return Constant()


def exponential(gamma: float) -> Exponential:
    """Exponential decay ``lr gamma^(t-1)``.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import exponential
    >>> exponential(0.5).factor(2)
    0.5
    """
    return Exponential(gamma)


def step_decay(step_size: int, gamma: float = 0.1) -> Step:
    """Step decay ``lr gamma^floor((t-1)/step_size)``.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import step_decay
    >>> round(step_decay(10, 0.5).factor(11), 12)
    0.5
    """
    return Step(step_size, gamma)


def linear(total: int, start_factor: float = 1.0, end_factor: float = 0.0) -> Linear:
    """Linear decay (or increase) over ``total`` steps.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import linear
    >>> linear(10).factor(6)
    0.5
    """
    return Linear(total, start_factor, end_factor)


def inverse_time(decay: float) -> InverseTime:
    """Inverse-time decay ``lr / (1 + decay (t-1))``.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import inverse_time
    >>> inverse_time(0.5).factor(3)
    0.5
    """
    return InverseTime(decay)


def cosine(total: int, min_factor: float = 0.0) -> Cosine:
    """Cosine annealing over ``total`` steps down to ``min_factor``.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import cosine
    >>> round(cosine(10).factor(6), 12)
    0.5
    """
    return Cosine(total, min_factor)


def warmup(steps: int, then: Schedule | None = None, start_factor: float | None = None) -> Warmup:
    """Linear warm-up over ``steps`` steps, then ``then``.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import warmup, cosine
    >>> warmup(2, cosine(2)).factors(5).round(12).tolist()
    [0.5, 1.0, 1.0, 0.5, 0.0]
    """
    return Warmup(steps, then, start_factor)


def parse_schedule(text: str) -> Schedule:
    """A schedule from text (the CLI's ``--schedule``).

    Forms: ``constant``, ``exponential:GAMMA``, ``step:STEP_SIZE[:GAMMA]``,
    ``linear:TOTAL[:END_FACTOR]``, ``inverse:DECAY``, ``cosine:TOTAL[:MIN_FACTOR]``,
    ``warmup:STEPS[,THEN]`` where THEN is another form.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import parse_schedule
    >>> parse_schedule("warmup:10,cosine:100").describe()
    'linear warm-up over 10 steps, then cosine to 0 over 100 steps'
    >>> parse_schedule("decay:2")
    Traceback (most recent call last):
    ...
    optfilters._errors.InvalidHyperparameterError: schedule must be one of constant, exponential:GAMMA, \
step:STEP_SIZE[:GAMMA], linear:TOTAL[:END_FACTOR], inverse:DECAY, cosine:TOTAL[:MIN_FACTOR], \
warmup:STEPS[,THEN]; got 'decay:2'
    """
    forms = (
        "constant, exponential:GAMMA, step:STEP_SIZE[:GAMMA], linear:TOTAL[:END_FACTOR], inverse:DECAY, "
        "cosine:TOTAL[:MIN_FACTOR], warmup:STEPS[,THEN]"
    )
    raw = text.strip()
    head, _, rest = raw.partition(",")
    kind, *args = head.strip().lower().split(":")
    try:
        if kind == "warmup" and len(args) == 1:
            return Warmup(int(float(args[0])), parse_schedule(rest) if rest.strip() else None)
        if rest.strip():
            raise ValueError
        if kind == "constant" and not args:
            return Constant()
        if kind == "exponential" and len(args) == 1:
            return Exponential(float(args[0]))
        if kind == "step" and len(args) in (1, 2):
            return Step(int(float(args[0])), *(float(a) for a in args[1:]))
        if kind == "linear" and len(args) in (1, 2):
            return Linear(int(float(args[0])), 1.0, *(float(a) for a in args[1:]))
        if kind in ("inverse", "inverse_time", "inverse-time") and len(args) == 1:
            return InverseTime(float(args[0]))
        if kind == "cosine" and len(args) in (1, 2):
            return Cosine(int(float(args[0])), *(float(a) for a in args[1:]))
    except InvalidHyperparameterError:
        raise
    except ValueError:
        pass
    raise InvalidHyperparameterError(f"schedule must be one of {forms}; got {text!r}")


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
        Number of steps.

    Returns
    -------
    ndarray

    Examples
    --------
    >>> from optfilters.noisy_quadratic import lr_sequence, step_decay
    >>> lr_sequence(step_decay(2, 0.5), 0.1, 4).round(12).tolist()
    [0.1, 0.1, 0.05, 0.05]
    """
    steps = int(steps)
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

    def __init__(self, model: OptimizerModel, curvatures: FloatArray, noise_var: FloatArray) -> None:
        self.model = model
        self.h = curvatures
        self.noise_var = noise_var
        self.d = curvatures.size
        self.plan = model.plan("float64", linearised=True)
        limit = self.plan.program(None)
        self.keys = limit.keys
        self.init = np.array([spec.init for spec in limit.state], dtype=np.float64)
        self.n = 1 + len(self.keys)
        self.nonlinear = [i for i, stage in enumerate(model.pipeline) if not stage.is_linear]
        key = model.parameter_output
        self.output_index = 1 + self.keys.index(key) if key is not None and key in self.keys else None

    def initial(self, init: FloatArray, init_var: FloatArray) -> tuple[FloatArray, FloatArray]:
        mean = np.zeros((self.d, self.n))
        mean[:, 0] = init
        mean[:, 1:] = self.init
        cov = np.zeros((self.d, self.n, self.n))
        cov[:, 0, 0] = init_var
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
        rows[n, :, 0] = self.h
        rows[n, :, n] = 1.0
        regs: dict[str, Any] = {"param": rows[0], "grad": rows[n]}
        for k, key in enumerate(self.keys):
            regs[f"state.{key}"] = rows[1 + k]
        for i, gain in zip(self.nonlinear, gains, strict=True):
            regs[f"gain.{i}"] = np.asarray(gain, dtype=np.float64).reshape(self.d, 1)
        run_numpy(program, regs, scalars, stop)
        return regs

    def matrix_of(self, regs: dict[str, Any]) -> FloatArray:
        """``[A | B]`` of shape (d, n, n+1) from a run's registers."""
        return np.stack([regs["param"], *[regs[f"state.{key}"] for key in self.keys]], axis=1)

    def matrix(self, t: int | None, lr: float, gains: list[FloatArray]) -> FloatArray:
        """``[A_t | B_t]`` of shape (d, n, n+1) for step ``t`` (None: the LTI limit)."""
        program = self.plan.program(t)
        return self.matrix_of(self.run(program, program.values(t, lr), gains))

    def taps(self, regs: dict[str, Any], program: Program, i: int) -> tuple[FloatArray, FloatArray]:
        """The rows of the effective gradient and of the direction entering nonlinear stage ``i``."""
        taps = dict(program.taps)
        return regs[taps[f"{i}.grad"]], regs[taps[f"{i}.direction"]]


def transition_matrices(
    model: ModelLike,
    t: int | None,
    lr: float,
    curvatures: ArrayLike,
    gains: Any = None,
    *,
    limit: bool = False,
) -> FloatArray:
    """``[A_t | B_t]`` per coordinate: one step of the model on the noisy quadratic, ``X_t = A_t X_{t-1} + B_t xi_t``.

    ``X`` is the parameter followed by every stage's state (in the order of the
    step program's state keys) and ``xi`` the gradient noise; the step is the
    model's own (linearised) step program run on affine rows, the matrices
    :func:`predict` propagates.

    Parameters
    ----------
    model : str, OptimizerModel, Stage or ArmaFilter
        The optimizer (:func:`optfilters.as_model`).
    t : int or None
        The step (None: the ``t -> infinity`` limit program).
    lr : float
        The learning rate.
    curvatures : array_like
        ``h_i``, one per coordinate.
    gains : sequence, optional
        The gain of each nonlinear stage (scalars or one per coordinate; default 1).
    limit : bool
        Use the ``t -> infinity`` limits of the step's scalars with step ``t``'s
        operations (a periodic stage's phase, the other stages' limit).

    Returns
    -------
    ndarray
        Shape ``(d, n, n + 1)``: ``A_t`` in ``[..., :n]``, ``B_t`` in ``[..., n]``.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import transition_matrices
    >>> transition_matrices("sgd", 1, 0.1, [1.0, 2.0])[:, 0].tolist()   # theta' = (1 - lr h) theta - lr xi
    [[0.9, -0.1], [0.8, -0.2]]
    """
    m = as_model(model)
    h = np.atleast_1d(np.asarray(curvatures, dtype=np.float64)).ravel()
    loop = _Loop(m, h, np.zeros(h.size))
    count = len(loop.nonlinear)
    given = [1.0] * count if gains is None else list(gains)
    if len(given) != count:
        raise InvalidHyperparameterError(f"{m.name} has {count} nonlinear stage(s), got {len(given)} gain(s)")
    program = loop.plan.program(t)
    scalars = program.limit_values(lr) if (limit or t is None) else program.scalar_values(t, lr)
    arrays = [np.asarray(g, dtype=np.float64) * np.ones(h.size) for g in given]
    return loop.matrix_of(loop.run(program, scalars, arrays))


@dataclass(frozen=True)
class NoisyQuadraticPrediction:
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
        return np.asarray(0.5 * (self.averaged_mean**2 + self.averaged_variance) @ self.curvatures, dtype=np.float64)

    @property
    def bias_loss(self) -> FloatArray:
        """``1/2 sum h E[theta]^2``: the part of the expected loss from the mean."""
        return np.asarray(0.5 * (self.mean**2) @ self.curvatures, dtype=np.float64)

    @property
    def variance_loss(self) -> FloatArray:
        """``1/2 sum h Var[theta]``: the part from the noise (and a random start)."""
        return np.asarray(0.5 * self.variance @ self.curvatures, dtype=np.float64)

    def as_dict(self) -> dict[str, Any]:
        """``expected_loss``, ``steady_state_loss``, ``rate`` and the context (JSON-able, non-finite as None)."""
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
            "preconditioner": _list(self.preconditioner),
            **self._averaged_dict(),
        }

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
_MARGIN = 1e-12


def _lyapunov(
    matrix: FloatArray, noise_var: FloatArray, radius: FloatArray | None = None
) -> tuple[FloatArray, FloatArray]:
    """Per coordinate: steady-state ``Var[theta]`` (inf when unstable) and the spectral radius.

    ``radius`` (the closed-loop rate) is computed from the matrices when not given.
    """
    n = matrix.shape[1]
    variance = np.empty(matrix.shape[0])
    if radius is None:
        radius = np.array([float(np.max(np.abs(np.linalg.eigvals(m[:, :n])))) for m in matrix])
    for i, m in enumerate(matrix):
        a, b = m[:, :n], m[:, n]
        if radius[i] > 1.0 + _MARGIN:
            variance[i] = math.inf  # diverges
        elif radius[i] >= 1.0 - _MARGIN:
            variance[i] = math.nan  # marginal (e.g. lr = 0 at the end of a schedule): no steady state
        elif noise_var[i] == 0.0 or not np.any(b):
            variance[i] = 0.0
        else:
            variance[i] = float(_stein(a, noise_var[i] * np.outer(b, b))[0, 0])
    return variance, radius


def _steady_cov(matrix: FloatArray, noise_var: float) -> FloatArray | None:
    """The steady-state covariance of one coordinate's loop (None when it does not converge)."""
    n = matrix.shape[0]
    a, b = matrix[:, :n], matrix[:, n]
    radius = float(np.max(np.abs(np.linalg.eigvals(a))))
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
    variance = np.empty(d)
    avg = np.empty(d) if output is not None else None
    radius = np.empty(d)
    for i in range(d):
        a = [p[i, :, :n] for p in phases]
        b = [p[i, :, n] for p in phases]
        mono = np.eye(n)
        q = np.zeros((n, n))
        for a_j, b_j in zip(a, b, strict=True):
            mono = a_j @ mono
            q = a_j @ q @ a_j.T + noise_var[i] * np.outer(b_j, b_j)
        rho = float(np.max(np.abs(np.linalg.eigvals(mono))))
        radius[i] = rho ** (1.0 / k)
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
        sub = _Loop(model, loop.h[i : i + 1], loop.noise_var[i : i + 1])

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


def _has_point(stage: Any) -> bool:
    """True when the stage is linearised at a second moment (not frozen at a fixed gain, like the sign)."""
    try:
        return stage.steady_dc() is not None
    except ValueError:
        return True


def _frozen_gains(stages: list[Any], points: list[FloatArray | None], t: int | None, d: int) -> list[FloatArray]:
    """Each stage's frozen gain at its operating point (1 where it has none)."""
    out = []
    for stage, v in zip(stages, points, strict=True):
        gain = stage.frozen_gain(v if v is not None else np.ones(d), t)
        out.append(np.asarray(gain, dtype=np.float64) * np.ones(d))
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
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    NoisyQuadraticPrediction

    Examples
    --------
    >>> from optfilters.noisy_quadratic import predict
    >>> p = predict("momentum", lr=0.1, momentum=0.9, curvatures=1.0, noise_var=1.0, steps=1000)
    >>> round(p.steady_state_loss, 6)     # (1+b) lr s^2 / (2 (1-b) (2 (1+b) - lr h))
    0.256757
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
    loop = _Loop(m, h, sigma2)
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
    n = loop.n
    mean_theta = np.empty((steps + 1, d))
    var_theta = np.empty((steps + 1, d))
    mean_theta[0], var_theta[0] = mean[:, 0], cov[:, 0, 0]
    output = loop.output_index  # the averaged parameters' row, if the model keeps them
    mean_avg = np.empty((steps + 1, d)) if output is not None else None
    var_avg = np.empty((steps + 1, d)) if output is not None else None
    if mean_avg is not None and var_avg is not None:
        mean_avg[0], var_avg[0] = mean[:, 0], cov[:, 0, 0]  # before the first step: the parameter itself
    cached: tuple[Any, FloatArray] | None = None
    gains: list[FloatArray] = [ones] * len(stages)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, steps + 1):
            program = loop.plan.program(t)
            scalars = program.scalar_values(t, float(lrs[t - 1]))
            if trackers:
                marks = dict(program.marks)
                for j, i in enumerate(loop.nonlinear):
                    regs = loop.run(program, scalars, gains, marks[f"{i}.direction"])
                    g_row, d_row = loop.taps(regs, program, i)
                    moments = Moments(
                        _second_moment(g_row, mean, cov, sigma2),
                        _mean(g_row, mean),
                        _second_moment(d_row, mean, cov, sigma2),
                        param2=mean[:, 0] ** 2 + cov[:, 0, 0],
                    )
                    gains[j] = np.asarray(trackers[j].gain(t, moments), dtype=np.float64) * ones
            elif stages:
                gains = _frozen_gains(stages, points, t, d)
            key = (id(program), tuple(scalars), tuple(g.tobytes() for g in gains))
            if cached is None or cached[0] != key:
                cached = (key, loop.matrix_of(loop.run(program, scalars, gains)))
            matrix = cached[1]
            a, b = matrix[:, :, :n], matrix[:, :, n]
            mean = np.einsum("dij,dj->di", a, mean)
            cov = np.einsum("dij,djk,dlk->dil", a, cov, a) + sigma2[:, None, None] * b[:, :, None] * b[:, None, :]
            cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
            mean_theta[t], var_theta[t] = mean[:, 0], cov[:, 0, 0]
            if mean_avg is not None and var_avg is not None:
                mean_avg[t], var_avg[t] = mean[:, output], cov[:, output, output]
    expected = 0.5 * (mean_theta**2 + var_theta) @ h

    # Steady state and rate: the LTI limit at the last learning rate.
    limit_gains: list[FloatArray] = []
    if stages:
        if mode == "tracking":
            try:
                points = _steady_points(loop, m, final_lr)
            except InvalidHyperparameterError:  # no steady state: the last tracked gains
                points = []
        if points:
            limit_gains = _frozen_gains(stages, points, None, d)
        else:
            limit_gains = [
                gain if _has_point(stage) else _frozen_gains([stage], [None], None, d)[0]
                for stage, gain in zip(stages, gains, strict=True)
            ]
    steady_scale = ones
    for gain in limit_gains:
        steady_scale = steady_scale * gain
    avg_variance: FloatArray | None = None
    if m.period is not None:
        # Periodically time-varying (Lookahead): the monodromy matrix of one period and the periodic steady state.
        phases = [loop.matrix(_phase_step(m.period, j), final_lr, limit_gains) for j in range(1, m.period + 1)]
        variance, radius, avg_variance = _periodic_steady(phases, sigma2, output)
    else:
        limit = loop.matrix(None, final_lr, limit_gains)
        # The rate from the closed loop itself (accurate for high-order designs), per coordinate.
        base = closed_loop(m, lr=final_lr)
        radius = np.array(
            [
                float(replace(base, preconditioner=float(s_i)).rate(final_lr * h_i * float(s_i)))
                for h_i, s_i in zip(h, steady_scale, strict=True)
            ]
        )
        variance, radius = _lyapunov(limit, sigma2, radius)
        if output is not None:
            avg_variance = _lyapunov_output(limit, sigma2, output)
    positive = h > 0.0
    with np.errstate(invalid="ignore"):
        steady = float(0.5 * np.sum(np.where(positive, h * variance, 0.0)))
        avg_steady = (
            float(0.5 * np.sum(np.where(positive, h * avg_variance, 0.0))) if avg_variance is not None else None
        )
    if np.any(positive & (radius > 1.0 + _MARGIN)):
        steady = math.inf
        avg_steady = math.inf if avg_steady is not None else None
    rate = float(np.max(radius[positive])) if np.any(positive) else 1.0
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
