"""Stage kinds of the third-party optimizers: Schedule-Free, Adan, AdaBelief, ADOPT, Yogi, Cautious, AdEMAMix's warm-up.

Each kind owns its step (one program: the numpy reference and the PyTorch
bridge), its linearisation and its description, like the kinds of
:mod:`optfilters.stages`; the catalogue's 2025-26 entries are built from them
(``optfilters list``).  The recursions follow the packages the catalogue
names, whose own tests check them step by step (``schedulefree`` and
``pytorch-optimizer``; see each kind for where a package differs from its
paper).

* :class:`ScheduleFree`: the Schedule-Free update (Defazio et al. 2024,
  package ``schedulefree``).  The gradient is taken at ``y = (1 - beta) z +
  beta x`` while the output is the running average ``x``; the parameter holds
  ``y`` during training and ``x`` after :meth:`OptimizerModel.swap_program`
  ``("eval")`` (``FilterOptimizer.eval()``).  Linear.
* :class:`MeasurementFilter`: a linear filter on the signal that the next
  normaliser measures (AdaBelief's residual ``g - m``, Adan's ``g + beta2 (g -
  g_prev)``): a normaliser fed a filtered input.
* :class:`AdanNumerator` and :class:`LeadFilter`: Adan's numerator and
  normaliser input, with its previous gradient started at the first one.
* :class:`AccumulatingEma`: an EMA of ``x^2`` that also adds a constant every
  step (AdaBelief's ``+ eps`` inside its second moment).
* :class:`DelayedNormaliser` (ADOPT: divide by the previous step's RMS),
  :class:`Clip` (ADOPT's ``t^(1/4)`` clip), :class:`CautiousMask` (C-Optim's
  mask), :class:`YogiNormaliser` (Yogi's sign-driven second moment): nonlinear,
  labelled as such in every analysis.
* :class:`ScheduledMixture`: AdEMAMix's numerator with the authors' alpha and
  beta3 warm-up (a time-varying gain and pole).
* :class:`PostUpdateDecay` (weight decay after the update: Adan's proximal
  ``theta /= 1 + lr wd``, LaProp's), :class:`DirectionDecay` (Schedule-Free
  AdamW's decay on the normalised direction), :class:`LionInterpolation`,
  :class:`OffsetRmsNormaliser` and :class:`LrWeightedMomentum` (LaProp).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import InvalidFilterError, renamed_keywords
from .filters import ArmaFilter
from .gains import Constant
from .program import ONE, Coef, LinComb, Op, ProgramBuilder, Signals
from .stages import FilterTerm, LinearStage, Moments, Stage, Tracker, classify_filter
from .validation import check_number

__all__ = [
    "CAUTIOUS",
    "CLIP",
    "AccumulatingEma",
    "AdanNumerator",
    "CautiousMask",
    "Clip",
    "DelayedNormaliser",
    "DirectionDecay",
    "LeadFilter",
    "LionInterpolation",
    "LrWeightedMomentum",
    "MeasurementFilter",
    "OffsetRmsNormaliser",
    "PostUpdateDecay",
    "ScheduleFree",
    "ScheduleFreeWeights",
    "ScheduledMixture",
    "YogiNormaliser",
    "ademamix_alpha",
    "ademamix_beta3",
]

FloatArray = NDArray[np.float64]


def _fmt(x: float) -> str:
    return f"{x:.4g}"


# ----------------------------------------------------------------------------- operations outside the built-in set


def _cautious_numpy(d: Any, g: Any, s: Any = None) -> Any:
    mask = (d * g > 0.0).astype(np.float64)
    mask = mask * (mask.size / (mask.sum() + 1.0))
    return d * mask


def _cautious_torch(d: Any, g: Any, s: Any = None) -> Any:
    # pytorch_optimizer.BaseOptimizer.apply_cautious, out of place
    mask = (d * g > 0).to(g.dtype)
    mask.mul_(mask.numel() / (mask.sum() + 1))
    return d * mask


#: C-Optim's mask ``d * [d g > 0] * n / (sum [d g > 0] + 1)`` over each parameter tensor (no C form: a reduction).
CAUTIOUS = Op("cautious", numpy=_cautious_numpy, torch=_cautious_torch)

#: ``clamp(x, -s, s)``.
CLIP = Op(
    "clip",
    numpy=lambda x, s: np.clip(x, -s, s),
    torch=lambda x, s: x.clamp(-s, s),
    c=lambda args, s: f"fmin(fmax({args[0]}, -{s}), {s})",
    triton=lambda args, s: f"tl.minimum(tl.maximum({args[0]}, -{s}), {s})",
)

#: ``max(x, s)`` (torch's ``clamp_min``).
CLAMP_MIN = Op(
    "clamp_min",
    numpy=lambda x, s: np.maximum(x, s),
    torch=lambda x, s: x.clamp_min(s),
    foreach=lambda xs, s: list(__import__("torch")._foreach_clamp_min(xs, s)),
    c=lambda args, s: f"fmax({args[0]}, {s})",
    triton=lambda args, s: f"tl.maximum({args[0]}, {s})",
)


# ----------------------------------------------------------------------------- shared parts of the kinds


class _FirstStepVaries(Stage):
    """Mixin of the kinds whose first step differs from the later ones (it starts a state).

    :attr:`varies` is True and :meth:`variant` is True at ``t = 1`` only
    (False for later steps and for the ``t -> infinity`` limit, None).
    """

    @property
    def varies(self) -> bool:
        """True: the first step starts a state."""
        return True

    def variant(self, t: int | None) -> bool:
        """True at the first step."""
        return t == 1


class _OwnRealisation(LinearStage):
    """Mixin of the linear kinds whose :meth:`emit_on` is their whole realisation.

    Their :meth:`emit` filters the direction through :meth:`emit_on` (never
    folded into a one-pole update, as :class:`~optfilters.stages.LinearStage`
    may fold a plain EMA) and publishes the result under :attr:`key`.
    """

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """Filter the direction through :meth:`emit_on` (the first step when ``variant`` is true)."""
        out = self.emit_on(bld, bld.materialise(sig.direction), self.key, first=bool(variant))
        sig.direction = out
        sig.outputs[self.key] = out


class _LeftOut(Stage):
    """Mixin of the nonlinear kinds that the linearised analyses leave out (gain 1, no operating point)."""

    is_linear: ClassVar[bool] = False

    def tracker(self, size: int) -> Tracker:
        """Gain 1."""
        return _UnitTracker()

    def steady_dc(self, owner: str = "the model") -> None:
        """None: frozen at gain 1."""
        return None


class _OwnUpdate(Stage):
    """Mixin of the update kinds whose step takes the learning rate itself (not ``lr`` times the direction).

    Role ``learning_rate`` with gain 1 and :attr:`is_constant` False; equality
    and hash by :meth:`_key` (the hyperparameters), leaving out the cached
    sequences a kind keeps beside them (its dataclass says ``eq=False``).
    """

    role: ClassVar[str] = "learning_rate"

    def _key(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._key() == other._key()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, *self._key()))

    @property
    def gain(self) -> Constant:
        """1: the learning rate enters through the step itself."""
        return Constant(1.0)

    @property
    def is_constant(self) -> bool:
        """False: the update is not the learning rate times the direction."""
        return False

    def describe_line(self) -> str:
        """The update's line."""
        return f"update: {self.describe()}"


class _UnitTracker(Tracker):
    needs_moments: ClassVar[bool] = False

    def gain(self, t: int, moments: Moments) -> FloatArray:
        return np.ones_like(np.asarray(moments.grad2, dtype=np.float64))


class _MomentTracker(Tracker):
    """A tracker that runs a stage's statistic ``v`` (one per coordinate, started at ``initial``) on ``E[g^2]``."""

    def __init__(self, norm: Any, size: int, initial: float = 0.0) -> None:
        self.norm = norm
        self.v = np.full(size, float(initial))


def _divide_direction(bld: ProgramBuilder, sig: Signals, den: str, key: str) -> None:
    """Divide the direction by the register ``den`` (materialising a direction that already has a divisor)."""
    lc = sig.direction
    if lc.den is not None:
        lc = LinComb.of(bld.materialise(lc))
    sig.direction = LinComb(lc.terms, den=den)
    sig.outputs[key] = sig.direction


# ----------------------------------------------------------------------------- Schedule-Free


class ScheduleFreeWeights:
    """The averaging weight ``c_t`` and warmed-up learning rate of the ``schedulefree`` package, step by step.

    ``lr_t = lr min(1, t / warmup_steps)``; ``w_t = t^r max_{k <= t}(lr_k)^weight_lr_power``;
    ``c_t = w_t / sum_{k <= t} w_k`` (0 when the sum is 0), computed with the
    package's own expressions in its order.  Where those overflow (``r = 1e308``:
    ``2^r``, on which the package raises ``OverflowError``), the weight goes on
    from the overflowing step as ``c_t = 1 / R_t`` with the scale-free
    ``R_t = 1 + R_{t-1} w_{t-1} / w_t`` (the ratio taken in logs).  The package keeps the running
    maximum of the scheduled learning rate in its parameter group; here the
    sequence is computed for the learning rate given, as though it had held
    since the first step (the package's intended use: no schedule besides its
    warm-up).  For ``r > -1`` the weight tends to 0 like ``(1 + r) / t``.

    Parameters
    ----------
    warmup_steps : int
        Steps of the linear learning-rate warm-up (0: none).
    r : float
        Exponent of the polynomial weighting ``t^r``.
    weight_lr_power : float
        Exponent ``p`` of the running maximum learning rate in the weight.

    References
    ----------
    Defazio et al., "The Road Less Scheduled" (2024), the weighting
    ``c_{t+1} = w_t / sum w``; ``schedulefree`` 1.4.1's ``ckp1``.

    Examples
    --------
    >>> from optfilters.package_stages import ScheduleFreeWeights
    >>> w = ScheduleFreeWeights(warmup_steps=0, r=0.0, weight_lr_power=2.0)
    >>> [round(w.at(t, 0.1)[0], 12) for t in (1, 2, 4)]   # 1/t: a running mean
    [1.0, 0.5, 0.25]
    """

    def __init__(self, warmup_steps: int, r: float, weight_lr_power: float) -> None:
        self.warmup_steps = int(warmup_steps)
        self.r = r
        self.weight_lr_power = weight_lr_power
        self._runs: dict[float, tuple[list[float], list[float], list[float]]] = {}

    def at(self, t: int, lr: float) -> tuple[float, float]:
        """``(c_t, lr_t)`` at step ``t >= 1`` for the base learning rate ``lr``.

        Parameters
        ----------
        t : int
            The step, from 1.
        lr : float
            The base learning rate (per step).

        Returns
        -------
        c_t : float
            The averaging weight of step ``t``, in ``[0, 1]`` (0 while every weight is 0).
        lr_t : float
            The warmed-up learning rate ``lr min(1, t / warmup_steps)``.
        """
        lr = float(lr)
        run = self._runs.get(lr)
        if run is None:
            if len(self._runs) >= 8:
                self._runs.pop(next(iter(self._runs)))
            run = self._runs[lr] = ([], [], [-1.0, 0.0])  # c_t, lr_t, (lr_max, weight_sum)
        cs, lrs, acc = run
        while len(cs) < t:
            k = len(cs)
            sched = (k + 1) / self.warmup_steps if k < self.warmup_steps else 1.0
            lr_k = lr * sched
            previous_max = acc[0]
            acc[0] = max(lr_k, acc[0])
            if len(acc) == 2:  # the package's expressions, while they stay finite
                weight = self._weight(k, acc[0])
                total = acc[1] + weight
                if math.isfinite(total):
                    acc[1] = total
                    try:
                        ckp1 = weight / acc[1]
                    except ZeroDivisionError:
                        ckp1 = 0.0
                    cs.append(ckp1)
                    lrs.append(lr_k)
                    continue
                # Overflow: go on with R_k = sum_{j <= k} w_j / w_k, which is scale-free (R_k >= 1, c_k = 1 / R_k).
                last = self._weight(k - 1, previous_max) if k > 0 else 0.0
                acc.append(0.0 if acc[1] == 0.0 else (acc[1] / last if last > 0.0 else math.inf))
            carried = 0.0
            if acc[2] > 0.0 and previous_max > 0.0:
                # R_k = 1 + R_{k-1} w_{k-1} / w_k, the ratio (k / (k + 1))^r (lr_max_{k-1} / lr_max_k)^p in logs.
                log_ratio = -self.r * math.log1p(1.0 / k)
                if self.weight_lr_power != 0.0 and previous_max != acc[0]:
                    log_ratio += self.weight_lr_power * (math.log(previous_max) - math.log(acc[0]))
                carried = math.inf if log_ratio > 709.0 else acc[2] * math.exp(log_ratio)
            acc[2] = 1.0 + carried
            cs.append(1.0 / acc[2])
            lrs.append(lr_k)
        return cs[t - 1], lrs[t - 1]

    def _weight(self, k: int, lr_max: float) -> float:
        """The package's ``w = (k + 1)^r lr_max^p``; ``inf`` where it overflows, 0 where ``lr_max^p`` is 0."""
        try:
            scale = lr_max**self.weight_lr_power
            if scale == 0.0:
                return 0.0
            return ((k + 1) ** self.r) * scale
        except OverflowError:
            return math.inf


@dataclass(frozen=True, eq=False)
class ScheduleFree(_FirstStepVaries, _OwnUpdate):
    """The Schedule-Free update: the parameter is the gradient point ``y``, the output is the average ``x``.

    With the direction ``d`` (the gradient, or Adam's normalised gradient) at
    ``y_t``, the learning rate ``lr_t`` (linear warm-up) and the averaging
    weight ``c_t`` (:class:`ScheduleFreeWeights`, or the constant ``averaging``)::

        z_{t+1} = z_t - lr_t d_t
        x_{t+1} = (1 - c_t) x_t + c_t z_{t+1}
        y_{t+1} = (1 - beta) z_{t+1} + beta x_{t+1}

    The parameter holds ``y``; ``z`` is the state (``z``, the parameter at the
    first step), and ``x = y + (1 - 1/beta)(z - y)`` is recovered by the
    evaluation rule (:meth:`emit_eval`, the package's ``eval()``).  The step
    runs the package's own in-place form ``y = lerp(y, z, c_t) + lr_t (beta (1
    - c_t) - 1) d``, ``z -= lr_t d`` (Defazio et al., "The Road Less Scheduled",
    2024; ``schedulefree`` 1.4.1 ``SGDScheduleFree``/``AdamWScheduleFree``).

    Closed loop: for a constant ``c``, ``y`` is quasi-hyperbolic momentum,
    ``y_{t+1} = y_t - lr H(z) d_t`` with ``H = (1 - beta) + beta c / (1 - (1 -
    c) z^-1)`` (unit DC gain; :meth:`direction_filter`).  With the package's
    ``1/t`` weights ``c_t -> 0``: ``H -> 1 - beta`` (the average stops moving:
    its pole is marginal, and ``x`` converges like a power of ``t``), which is
    the ``t -> infinity`` limit the analysis reports, labelled.

    Parameters
    ----------
    momentum : float
        ``beta``, the interpolation between ``z`` and ``x`` (the package's
        ``momentum``, ``betas[0]`` for AdamW), in ``(0, 1)``.
    warmup_steps : int
        Linear warm-up of the learning rate over this many steps.
    r : float
        Polynomial weighting ``t^r`` of the average.
    weight_lr_power : float
        Weights ``lr_max^weight_lr_power`` of the average.
    averaging : float or None
        A constant averaging weight ``c`` in ``(0, 1]`` instead of the
        package's weights (for analysis; the package has none).

    Raises
    ------
    InvalidHyperparameterError
        When ``momentum`` is not in ``(0, 1)`` or ``averaging`` not in ``(0, 1]``.

    References
    ----------
    Defazio, Yang, Mehta, Mishchenko, Khaled and Cutkosky, "The Road Less
    Scheduled" (2024); ``schedulefree`` 1.4.1 ``SGDScheduleFree``,
    ``AdamWScheduleFree``.

    Examples
    --------
    >>> import numpy as np, optfilters
    >>> from optfilters.package_stages import ScheduleFree
    >>> model = optfilters.chain(ScheduleFree(momentum=0.9), lr=0.5)
    >>> opt = model.optimizer([1.0])
    >>> opt.step([1.0]).round(12).tolist()      # y after one step: z = 0.5, x = 0.5 (c_1 = 1)
    [0.5]
    >>> opt.eval(); opt.theta.round(12).tolist()   # the average x
    [0.5]
    >>> ScheduleFree(momentum=0.9, averaging=0.1).direction_filter().b.round(12).tolist()
    [0.19, -0.09]
    """

    momentum: float = 0.9
    warmup_steps: int = 0
    r: float = 0.0
    weight_lr_power: float = 2.0
    averaging: float | None = None
    weights: ScheduleFreeWeights = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_number(self.momentum, "momentum", 0.0, 1.0, low_open=True, high_open=True)
        if self.averaging is not None:
            check_number(self.averaging, "averaging", 0.0, 1.0, low_open=True)
        object.__setattr__(self, "weights", ScheduleFreeWeights(self.warmup_steps, self.r, self.weight_lr_power))

    def _key(self) -> tuple[Any, ...]:
        return (self.momentum, self.warmup_steps, self.r, self.weight_lr_power, self.averaging)

    @property
    def key(self) -> str:
        """``schedule_free`` (its state is ``z``)."""
        return "schedule_free"

    @property
    def is_time_invariant(self) -> bool:  # type: ignore[override]
        """True only with a constant averaging weight and no warm-up."""
        return self.averaging is not None and self.warmup_steps == 0

    # ------------------------------------------------------------------ step
    def _c(self, t: int, lr: float) -> float:
        return float(self.averaging) if self.averaging is not None else self.weights.at(t, lr)[0]

    def _lr(self, t: int, lr: float) -> float:
        return self.weights.at(t, lr)[1]

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """``y = lerp(y, z, c_t)``; ``y += lr_t (beta (1 - c_t) - 1) d``; ``z -= lr_t d`` (z = y at the first step)."""
        beta = self.momentum
        z = bld.state("z")
        if variant:
            bld.emit("copy_", None, z, sig.param)
        d = bld.materialise(sig.direction)
        c_limit = float(self.averaging) if self.averaging is not None else 0.0

        def c_slot(t: int, lr: float) -> float:
            return self._c(t, lr)

        def y_slot(t: int, lr: float) -> float:
            return self._lr(t, lr) * (beta * (1 - self._c(t, lr)) - 1)

        def z_slot(t: int, lr: float) -> float:
            return -self._lr(t, lr)

        bld.emit("lerp_", None, sig.param, z, slot=bld.slot(c_slot, lambda lr: c_limit))
        bld.emit("add_", None, sig.param, d, slot=bld.slot(y_slot, lambda lr: lr * (beta * (1 - c_limit) - 1)))
        bld.emit("add_", None, z, d, slot=bld.slot(z_slot, lambda lr: -lr))

    @property
    def has_eval_rule(self) -> bool:
        """True: the evaluation point ``x`` differs from the parameter ``y``."""
        return True

    def emit_eval(self, bld: ProgramBuilder, sig: Signals, mode: str) -> None:
        """``eval``: ``y -> x = lerp(y, z, 1 - 1/beta)``; ``train``: ``x -> y = lerp(x, z, 1 - beta)`` (package)."""
        z = bld.state("z")
        weight = 1 - 1 / self.momentum if mode == "eval" else 1 - self.momentum
        bld.emit("lerp_", None, sig.param, z, slot=bld.const(weight))

    # ------------------------------------------------------------------ analysis
    def direction_filter(self) -> ArmaFilter:
        """``H(z) = (1 - beta) + beta c / (1 - (1 - c) z^-1)`` (the map from ``d`` to ``-(y_{t+1} - y_t) / lr``).

        With the package's weights (``c_t -> 0``) the limit is the constant
        ``1 - beta``: the common factor ``1 - z^-1`` of the marginal average is
        cancelled (see :meth:`linearisation_note`).
        """
        beta = self.momentum
        if self.averaging is None:
            return ArmaFilter([1.0 - beta], name="schedule_free")
        c = float(self.averaging)
        return ArmaFilter([1.0 - beta + beta * c, -(1.0 - beta) * (1.0 - c)], [1.0, -(1.0 - c)], name="schedule_free")

    def linearisation_note(self, how: str, second_moment: float | None = None) -> str | None:
        """The meaning of the ``t -> infinity`` loop with the package's ``1/t``-like weights."""
        if self.averaging is not None:
            return None
        return (
            "Schedule-Free with c_t -> 0: the loop of the gradient point y is SGD with lr*(1-momentum); "
            "the average x (the output) is a marginal mode, converging like t^-(1+r)/(1-momentum)"
        )

    def describe(self) -> str:
        """Short formula."""
        c = f"c = {self.averaging:g}" if self.averaging is not None else "c_t = w_t / sum w (w_t = t^r lr_max^p)"
        warm = f", lr warm-up over {self.warmup_steps} steps" if self.warmup_steps else ""
        return (
            f"Schedule-Free: z -= lr d; x = (1-c) x + c z; y = {1 - self.momentum:g} z + {self.momentum:g} x "
            f"({c}{warm}); the parameter is y (gradient point), eval() gives x"
        )

    def table_cells(self) -> dict[str, str]:
        """The built-in averaging and warm-up."""
        warm = f"linear warm-up ({self.warmup_steps} steps), " if self.warmup_steps else ""
        return {
            "learning-rate schedule": f"built in: {warm}Schedule-Free averaging (no decay schedule)",
            "post-filter": f"parameter side: average x of z, gradient at y = {1 - self.momentum:g} z + "
            f"{self.momentum:g} x",
        }


# ----------------------------------------------------------------------------- filters of the measured signal


@dataclass(frozen=True)
class MeasurementFilter(Stage):
    """A linear filter on the effective gradient that the following normaliser measures.

    It replaces ``sig.grad`` (the signal normalisers compute their statistics
    from) by ``F(g)`` and leaves the direction alone: AdaBelief's residual
    ``g - m`` and Adan's ``g + beta2 (g - g_prev)``.  Stages after it see
    ``F(g)`` as the effective gradient.  The noisy-quadratic model's tracking
    mode then follows ``E[F(g)^2]`` exactly (the measured signal is tapped at
    the normaliser's input).

    Parameters
    ----------
    filter : LinearStage
        The linear filter ``F`` applied to the effective gradient.
    name : str
        The stage's name (its role and the key of its state and filter).

    Examples
    --------
    >>> from optfilters import ArmaFilter
    >>> from optfilters.package_stages import MeasurementFilter
    >>> from optfilters.stages import LinearStage
    >>> m = MeasurementFilter(LinearStage.of(ArmaFilter([1.0, -1.0])))
    >>> sorted(m.filters()), m.is_linear
    (['measurement'], True)
    """

    filter: LinearStage
    name: str = "measurement"

    @property
    def role(self) -> str:  # type: ignore[override]
        """Its name."""
        return self.name

    @property
    def is_time_invariant(self) -> bool:  # type: ignore[override]
        """That of the filter."""
        return self.filter.is_time_invariant

    def linear_stages(self) -> dict[str, LinearStage]:
        """The filter, under the stage's name."""
        return {self.name: self.filter.with_role(self.name)}

    @property
    def varies(self) -> bool:
        """When the filter's first step differs."""
        return self.filter.varies

    def variant(self, t: int | None) -> Hashable:
        """The filter's."""
        return self.filter.variant(t)

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """``g <- F(g)`` (the direction is unchanged)."""
        sig.grad = bld.materialise(self.filter.emit_on(bld, sig.grad, self.name, first=bool(variant)))

    def describe(self) -> str:
        """Short formula."""
        return f"normalisers measure F(g), F = {self.filter.describe()}"

    def table_cells(self) -> dict[str, str]:
        """What the variance filter is fed."""
        return {"variance filter": f"fed {classify_filter(self.filter.limit())} of g"}


def _check_linear(square: bool, what: str) -> None:
    if square:
        raise InvalidFilterError(f"{what} does not run on squared inputs")


def _started_difference(bld: ProgramBuilder, x: str, key: str, first: bool, start: float = 1.0) -> str:
    """``x - x_prev`` with the previous input started at ``start`` times the first one; updates ``x_prev``."""
    prev = bld.state(key)
    if first:
        if start == 1.0:
            bld.emit("copy_", None, prev, x)
        else:
            bld.emit("copy_", None, prev, bld.new("mul_s", x, slot=bld.const(start)))
    diff = bld.new("add", x, prev, slot=bld.const(-1.0))
    bld.emit("copy_", None, prev, x)
    return diff


@dataclass(frozen=True)
class LeadFilter(_FirstStepVaries, _OwnRealisation):
    """``y = x + k (x - x_prev)``, the previous input started at the first one: ``(1 + k) - k z^-1``.

    Adan's normaliser input ``g + beta2 (g - g_prev)`` (``pytorch-optimizer``'s
    and sail-sg's ``Adan`` start the previous gradient at the first, so the
    first difference is 0).  Build with :meth:`of_gain`.

    Parameters
    ----------
    terms : tuple of FilterTerm
        The terms, as built by :meth:`of_gain` (see :class:`~optfilters.stages.LinearStage`).
    name : str
        The stage's role (``"gradient"``, ``"measurement"``, ...).
    summed : bool
        As in :class:`~optfilters.stages.LinearStage` (keyword only).
    k : float
        The lead gain (Adan's ``beta2``); the DC gain is 1.
    start : float
        The previous input at the first step, as a multiple of the first input
        (1: the first difference is 0).

    References
    ----------
    Xie et al., "Adan: Adaptive Nesterov Momentum Algorithm" (2022), Algorithm 1;
    ``pytorch-optimizer`` 4.1.0 ``Adan``.

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters.package_stages import LeadFilter
    >>> LeadFilter.of_gain(0.5).response(np.array([1.0, 1.0, 3.0])).tolist()
    [1.0, 1.0, 4.0]
    """

    k: float = 0.0
    start: float = 1.0

    @classmethod
    def of_gain(cls, k: float, name: str = "measurement", start: float = 1.0) -> LeadFilter:
        """The lead filter with gain ``k``: ``(1 + k) - k z^-1``.

        Parameters
        ----------
        k : float
            The lead gain.
        name : str
            The stage's role.
        start : float
            The previous input at the first step, as a multiple of the first input.

        Returns
        -------
        LeadFilter
        """
        return cls((FilterTerm(ArmaFilter([1.0 + k, -k])),), name, float(k), float(start))

    @property
    def is_time_invariant(self) -> bool:  # type: ignore[override]
        """False: the first step differs."""
        return False

    @renamed_keywords("optfilters.package_stages", compensate="bias_correction")
    def emit_on(
        self,
        bld: ProgramBuilder,
        x: str,
        key: str,
        square: bool = False,
        bias_correction: bool | None = None,
        first: bool = False,
    ) -> LinComb:
        """``diff = x - prev``; ``y = k diff + x`` (pytorch-optimizer's ``grad_diff.mul_(beta2).add_(grad)``)."""
        _check_linear(square, "a lead filter")
        diff = _started_difference(bld, x, f"{key}.prev", first, self.start)
        bld.emit("mul_s_", None, diff, slot=bld.const(self.k))
        bld.emit("add_", None, diff, x, slot=bld.const(1.0))
        return LinComb.of(diff)

    def describe(self) -> str:
        """Short formula.

        Returns
        -------
        str
            ``x + k (x - x_prev) (x_prev starts at the first x)``.
        """
        return f"x + {self.k:g} (x - x_prev) (x_prev starts at the first x)"


def _bias_correction(beta: float) -> Coef:
    return Coef(lambda t: (1.0, 1.0 - math.pow(beta, t)), 1.0)


@dataclass(frozen=True)
class AdanNumerator(_FirstStepVaries, _OwnRealisation):
    """Adan's numerator ``m_t / (1 - beta1^t) + beta2 n_t / (1 - beta2^t)``.

    ``m`` is the EMA(beta1) of ``g`` and ``n`` the EMA(beta2) of ``g - g_prev``
    (the previous gradient started at the first, so the first difference is
    0; ``pytorch-optimizer`` 4.1.0 with ``maximize`` starts it at the raw, not
    the negated, gradient: ``start = -1``): each bias-corrected by its own EMA's correction (Xie et al. 2022,
    ``pytorch-optimizer`` ``Adan``).  Its limit is the unit-DC ARMA(2,2) lead
    filter ``(1 - b1)/(1 - b1 z^-1) + b2 (1 - b2)(1 - z^-1)/(1 - b2 z^-1)``.
    Build with :meth:`of_betas`.

    Parameters
    ----------
    terms : tuple of FilterTerm
        The terms, as built by :meth:`of_betas` (see :class:`~optfilters.stages.LinearStage`).
    name : str
        The stage's role (``"gradient"``, ``"measurement"``, ...).
    summed : bool
        As in :class:`~optfilters.stages.LinearStage` (keyword only).
    beta1 : float
        Pole of the EMA ``m`` of the gradient, in ``[0, 1)``.
    beta2 : float
        Pole of the EMA ``n`` of the gradient difference, and its gain.
    start : float
        The previous gradient at the first step, as a multiple of the first
        gradient (1: the first difference is 0; -1 with ``maximize``).

    References
    ----------
    Xie et al., "Adan: Adaptive Nesterov Momentum Algorithm" (2022), Algorithm 1
    (the bias-corrected form of ``pytorch-optimizer`` 4.1.0 ``Adan``).

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters.package_stages import AdanNumerator
    >>> stage = AdanNumerator.of_betas(0.98, 0.92)
    >>> round(stage.limit().dc_gain, 12), stage.response(np.ones(3)).round(12).tolist()   # a step: n stays 0
    (1.0, [1.0, 1.0, 1.0])
    """

    beta1: float = 0.98
    beta2: float = 0.92
    start: float = 1.0

    @classmethod
    def of_betas(cls, beta1: float, beta2: float, name: str = "gradient", start: float = 1.0) -> AdanNumerator:
        """The numerator for ``beta1``, ``beta2``.

        Parameters
        ----------
        beta1 : float
            Pole of the EMA of the gradient.
        beta2 : float
            Pole of the EMA of the gradient difference, and its gain.
        name : str
            The stage's role.
        start : float
            The previous gradient at the first step, as a multiple of the first.

        Returns
        -------
        AdanNumerator
        """
        difference = ArmaFilter([1.0 - beta2, -(1.0 - beta2)], [1.0, -beta2], name="ema_difference")
        terms = (
            FilterTerm(ArmaFilter.ema(beta1), bias_corrected=True),
            FilterTerm(difference, gain=Constant(beta2)),
        )
        return cls(terms, name, float(beta1), float(beta2), float(start))

    @property
    def is_time_invariant(self) -> bool:  # type: ignore[override]
        """False: bias corrections and the started difference."""
        return False

    @property
    def bias_corrected(self) -> bool:
        """True: both moments are bias-corrected."""
        return True

    @renamed_keywords("optfilters.package_stages", compensate="bias_correction")
    def emit_on(
        self,
        bld: ProgramBuilder,
        x: str,
        key: str,
        square: bool = False,
        bias_correction: bool | None = None,
        first: bool = False,
    ) -> LinComb:
        """``m.lerp_(x, 1 - b1)``, ``n.lerp_(x - x_prev, 1 - b2)``; returns ``m / bc1 + b2 n / bc2``."""
        _check_linear(square, "Adan's numerator")
        m = bld.state(f"{key}.0")
        bld.emit("lerp_", None, m, x, slot=bld.const(1.0 - self.beta1))
        diff = _started_difference(bld, x, f"{key}.prev", first, self.start)
        n = bld.state(f"{key}.1")
        bld.emit("lerp_", None, n, diff, slot=bld.const(1.0 - self.beta2))
        apply = bias_correction is not False
        c1 = _bias_correction(self.beta1) if apply else ONE
        c2 = _bias_correction(self.beta2) if apply else ONE
        return LinComb([(m, c1), (n, Coef.constant(self.beta2).times(c2))])

    def describe(self) -> str:
        """Short formula.

        Returns
        -------
        str
            The numerator's formula with its poles.
        """
        return (
            f"m/(1-{self.beta1:g}^t) + {self.beta2:g} n/(1-{self.beta2:g}^t); m = EMA({self.beta1:g}) of g, "
            f"n = EMA({self.beta2:g}) of g - g_prev (g_prev starts at the first g)"
        )

    def table_cells(self) -> dict[str, str]:
        """The ARMA(2,2) lead filter.

        Returns
        -------
        dict of str to str
            The ``gradient filtering`` cell.
        """
        return {
            "gradient filtering": f"{classify_filter(self.limit())}: EMA of g + {self.beta2:g} EMA of the "
            "difference, each bias-corrected"
        }


@dataclass(frozen=True)
class AccumulatingEma(_OwnRealisation):
    """An EMA of ``x^2`` that adds ``increment`` to its state every step: ``s = beta s + (1 - beta) x^2 + increment``.

    AdaBelief's second moment (its ``eps`` inside the state; the reference
    code and ``pytorch-optimizer`` both add it every step).  The linear part
    is the EMA (the terms); the increment is a constant input.  Build with
    :meth:`of_beta`.

    Parameters
    ----------
    terms : tuple of FilterTerm
        The terms, as built by :meth:`of_beta` (see :class:`~optfilters.stages.LinearStage`).
    name : str
        The stage's role (``"gradient"``, ``"measurement"``, ...).
    summed : bool
        As in :class:`~optfilters.stages.LinearStage` (keyword only).
    increment : float
        Added to the state every step (AdaBelief's ``eps``), in units of ``x^2``.

    References
    ----------
    Zhuang et al., "AdaBelief Optimizer" (NeurIPS 2020): ``s_t = beta2
    s_{t-1} + (1 - beta2)(g_t - m_t)^2 + eps``; ``pytorch-optimizer`` ``AdaBelief``.

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters.package_stages import AccumulatingEma
    >>> AccumulatingEma.of_beta(0.5, 1.0).response(np.zeros(3), bias_correction=False).tolist()
    [1.0, 1.5, 1.75]
    """

    increment: float = 0.0

    @classmethod
    def of_beta(cls, beta: float, increment: float, name: str = "second_moment") -> AccumulatingEma:
        """The bias-corrected EMA(beta) plus ``increment`` per step.

        Parameters
        ----------
        beta : float
            The EMA's pole, in ``[0, 1)``.
        increment : float
            Added to the state every step.
        name : str
            The stage's role.

        Returns
        -------
        AccumulatingEma
        """
        return cls((FilterTerm(ArmaFilter.ema(beta), bias_corrected=True),), name, float(increment))

    @renamed_keywords("optfilters.package_stages", compensate="bias_correction")
    def emit_on(
        self,
        bld: ProgramBuilder,
        x: str,
        key: str,
        square: bool = False,
        bias_correction: bool | None = None,
        first: bool = False,
    ) -> LinComb:
        """The EMA's update, then ``s += increment`` in place."""
        out = super().emit_on(bld, x, key, square, bias_correction, first)
        if self.increment:
            bld.emit("add_s_", None, out.terms[0][0], slot=bld.const(self.increment))
        return out

    def describe(self) -> str:
        """Short formula.

        Returns
        -------
        str
            The EMA's formula followed by ``+ increment per step``.
        """
        return f"{super().describe()} + {self.increment:g} per step"


# ----------------------------------------------------------------------------- nonlinear kinds


_NOTES = {
    "frozen": "linearised: {what} frozen at second moment v={v:g}; lr*h uses the preconditioned curvature",
    "tracking": "linearised: {what} driven by the predicted E[g^2] (mean-field)",
    "steady": "linearised: {what} frozen at the self-consistent steady-state E[g^2]",
    "frozen_given": "linearised: {what} frozen at the given second moment",
}


class _DelayedTracker(_MomentTracker):
    def gain(self, t: int, moments: Moments) -> FloatArray:
        if t == 1:
            self.v = np.asarray(moments.grad2, dtype=np.float64).copy()
            return np.zeros_like(self.v)  # no update at the first step
        gain = self.norm.frozen_gain(self.v)
        self.v = self.norm.beta2 * self.v + (1.0 - self.norm.beta2) * moments.grad2
        return np.asarray(gain, dtype=np.float64)


@dataclass(frozen=True)
class DelayedNormaliser(_FirstStepVaries):
    """ADOPT's normaliser: divide by ``max(sqrt(v_{t-1}), eps)``, then update ``v`` (no bias correction).

    At the first step ``v = g^2`` and the direction is 0 (no update); after
    it ``d / max(sqrt(v), eps)`` with the previous ``v``, then ``v = beta2 v +
    (1 - beta2) g^2`` (Taniguchi et al. 2024; ``pytorch-optimizer`` ``ADOPT``).
    Nonlinear: the closed loop freezes it at ``v``.

    Parameters
    ----------
    beta2 : float
        Pole of the EMA of ``g^2``, in ``[0, 1)``.
    eps : float
        Floor of ``sqrt(v)`` (units of the gradient).

    References
    ----------
    Taniguchi et al., "ADOPT: Modified Adam Can Converge with Any beta2 with the
    Optimal Rate" (2024); ``pytorch-optimizer`` ``ADOPT``.

    Examples
    --------
    >>> from optfilters.package_stages import DelayedNormaliser
    >>> float(DelayedNormaliser(0.9999, 1e-6).frozen_gain(4.0))
    0.5
    """

    beta2: float = 0.9999
    eps: float = 1e-6

    role: ClassVar[str] = "normaliser"
    is_linear: ClassVar[bool] = False

    def linear_stages(self) -> dict[str, LinearStage]:
        """The EMA of ``g^2`` (uncorrected, started at ``g_1^2``)."""
        return {"second_moment": LinearStage.of(ArmaFilter.ema(self.beta2), "second_moment")}

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """First step: ``v = g^2``, direction 0; later: divide by ``max(sqrt(v), eps)``, then update ``v``."""
        v = bld.state("second_moment.0")
        g = sig.grad
        if variant:
            bld.emit("addcmul_", None, v, g, g, slot=bld.const(1.0))
            zero = bld.new("clone", bld.materialise(sig.direction))
            bld.emit("zero_", None, zero)
            sig.direction = LinComb.of(zero)
            sig.outputs[self.key] = sig.direction
            return
        den = bld.new(CLAMP_MIN, bld.new("sqrt", v), slot=bld.const(self.eps))
        _divide_direction(bld, sig, den, self.key)
        bld.emit("mul_s_", None, v, slot=bld.const(self.beta2))
        bld.emit("addcmul_", None, v, g, g, slot=bld.const(1.0 - self.beta2))

    def frozen_gain(self, second_moment: ArrayLike, t: int | None = None) -> Any:
        """``1 / max(sqrt(v), eps)`` (0 at the first step, which does not update)."""
        v = np.asarray(second_moment, dtype=np.float64)
        if t == 1:
            return np.zeros_like(v)
        return 1.0 / np.maximum(np.sqrt(v), self.eps)

    def linearisation_note(self, how: str, second_moment: float | None = None) -> str:
        """The label of the linearisation."""
        return _NOTES[how].format(what="delayed normaliser", v=second_moment or 0.0)

    def tracker(self, size: int) -> Tracker:
        """The delayed second moment run on the predicted ``E[g^2]``."""
        return _DelayedTracker(self, size)

    def describe(self) -> str:
        """Short formula."""
        return (
            f"divide by max(sqrt(v_prev), {self.eps:g}), v = EMA({self.beta2:g}) of g^2 started at g_1^2 "
            "(one-step-delayed; no update at step 1)"
        )

    def nonlinear_description(self) -> str:
        """What it does."""
        return f"{self.describe()} [nonlinear]"

    def table_cells(self) -> dict[str, str]:
        """Normalisation and variance filter."""
        return {
            "gradient normalisation": "divide by max(sqrt(v_{t-1}), eps) (delayed), before the momentum",
            "variance filter": f"AR1, unit DC gain (pole {_fmt(self.beta2)}), started at g_1^2",
        }


def _clip_bound(power: float) -> Callable[[int, float], float]:
    def bound(t: int, lr: float) -> float:
        return math.pow(t, power)

    return bound


@dataclass(frozen=True)
class Clip(_LeftOut):
    """Elementwise clip of the direction to ``[-t^power, t^power]`` (ADOPT's ``clip_lambda``, power 1/4).

    A saturation: nonlinear; the linearisation leaves it out (it is inactive
    while ``|d| < t^power``, and the bound grows without limit).

    Parameters
    ----------
    power : float
        The bound is ``t^power`` at step ``t`` (0: a constant bound 1).

    References
    ----------
    Taniguchi et al. (2024), ADOPT's clipped update (``clip_lambda``,
    ``t^(1/4)``); ``pytorch-optimizer`` ``ADOPT``.

    Examples
    --------
    >>> from optfilters.package_stages import Clip
    >>> Clip(0.25).describe()
    'clip to +-t^0.25'
    """

    power: float = 0.25

    role: ClassVar[str] = "clip"

    @property
    def is_time_invariant(self) -> bool:  # type: ignore[override]
        """False: the bound grows with ``t``."""
        return self.power == 0.0

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """``d = clamp(d, -t^power, t^power)``."""
        d = bld.materialise(sig.direction)
        limit = math.inf if self.power > 0 else 1.0
        slot = bld.slot(_clip_bound(self.power), lambda lr: limit)
        sig.direction = LinComb.of(bld.new(CLIP, d, slot=slot))
        sig.outputs[self.key] = sig.direction

    def linearisation_note(self, how: str, second_moment: float | None = None) -> str:
        """Left out."""
        return f"linearised: clip to +-t^{self.power:g} left out (unsaturated)"

    def describe(self) -> str:
        """Short formula."""
        return f"clip to +-t^{self.power:g}"

    def nonlinear_description(self) -> str:
        """What it does."""
        return f"clips the direction to +-t^{self.power:g} [nonlinear: saturation]"

    def table_cells(self) -> dict[str, str]:
        """A note in the normalisation column."""
        return {"gradient normalisation": f"clip to +-t^{self.power:g}"}


@dataclass(frozen=True)
class CautiousMask(_LeftOut):
    """C-Optim's mask: keep the direction where it agrees in sign with the gradient, rescaled per tensor.

    ``d <- d * m * n / (sum m + 1)`` with ``m = [d g > 0]`` over each parameter
    tensor of ``n`` elements (Liang et al. 2024, "Cautious Optimizers";
    ``pytorch-optimizer``'s ``apply_cautious``).  Nonlinear (a mask gated by
    the gradient, and a per-tensor reduction: ``fused=True`` runs it on the
    multi-tensor path); the linearisation leaves it out (every coordinate
    agreeing, the rescaling ``n / (n + 1)`` ignored).

    References
    ----------
    Liang, Chen, Liu and Liu, "Cautious Optimizers: Improving Training with One
    Line of Code" (2024); ``pytorch-optimizer`` ``apply_cautious``.

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters.package_stages import CAUTIOUS
    >>> CAUTIOUS.numpy(np.array([1.0, -2.0, 3.0]), np.array([1.0, 1.0, 1.0])).tolist()   # 3 / (2 + 1) = 1
    [1.0, -0.0, 3.0]
    """

    role: ClassVar[str] = "mask"

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """``d = cautious(d, g)``."""
        d = bld.materialise(sig.direction)
        sig.direction = LinComb.of(bld.new(CAUTIOUS, d, sig.grad))
        sig.outputs[self.key] = sig.direction

    def linearisation_note(self, how: str, second_moment: float | None = None) -> str:
        """Left out."""
        return "linearised: cautious mask left out (all coordinates agreeing)"

    def describe(self) -> str:
        """Short formula."""
        return "cautious mask d * [d g > 0] * n / (sum [d g > 0] + 1) per tensor"

    def nonlinear_description(self) -> str:
        """What it does."""
        return f"{self.describe()} [nonlinear: mask]"

    def table_cells(self) -> dict[str, str]:
        """A note in the normalisation column."""
        return {"gradient normalisation": "cautious mask [d g > 0], rescaled per tensor"}


class _YogiTracker(_MomentTracker):
    def gain(self, t: int, moments: Moments) -> FloatArray:
        g2 = np.asarray(moments.grad2, dtype=np.float64)
        self.v = self.v - (1.0 - self.norm.beta2) * np.sign(self.v - g2) * g2
        v_hat = self.v / (1.0 - self.norm.beta2**t)
        return np.asarray(self.norm.frozen_gain(v_hat), dtype=np.float64)


@dataclass(frozen=True)
class YogiNormaliser(Stage):
    """Yogi's normaliser: ``v <- v - (1 - beta2) sign(v - g^2) g^2``, divide by ``sqrt(v)/sqrt(1 - beta2^t) + eps``.

    The second moment moves towards ``g^2`` by an additive step (Zaheer et al.
    2018; ``pytorch-optimizer`` ``Yogi``, which starts ``v`` at
    ``initial_accumulator``).  Nonlinear twice: the division and the sign in
    the statistic; the tracker runs the recursion on the predicted ``E[g^2]``.

    Parameters
    ----------
    beta2 : float
        The rate ``1 - beta2`` of the additive second-moment step, in ``[0, 1)``.
    eps : float
        Added to the denominator (units of the gradient).
    initial : float
        The second moment's initial value (``initial_accumulator``, units of ``g^2``).

    References
    ----------
    Zaheer, Reddi, Sachan, Kale and Kumar, "Adaptive Methods for Nonconvex
    Optimization" (NeurIPS 2018); ``pytorch-optimizer`` ``Yogi``.

    Examples
    --------
    >>> from optfilters.package_stages import YogiNormaliser
    >>> round(float(YogiNormaliser(0.999, 1e-3, 1e-6).frozen_gain(1.0)), 9)
    0.999000999
    """

    beta2: float = 0.999
    eps: float = 1e-3
    initial: float = 1e-6

    role: ClassVar[str] = "normaliser"
    is_linear: ClassVar[bool] = False

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """``v += -(1 - beta2) sign(v - g^2) g^2``; ``den = sqrt(v) / sqrt(bc2) + eps``."""
        v = bld.state("second_moment.0", self.initial)
        g2 = bld.square(sig.grad)
        s = bld.new("sign", bld.new("add", v, g2, slot=bld.const(-1.0)))
        bld.emit("addcmul_", None, v, s, g2, slot=bld.const(-(1.0 - self.beta2)))
        den = bld.new("sqrt", v)
        beta2 = self.beta2

        def root_correction(t: int, lr: float) -> float:
            return math.sqrt(1.0 - math.pow(beta2, t))

        bld.emit("div_s_", None, den, slot=bld.slot(root_correction, lambda lr: 1.0))
        bld.emit("add_s_", None, den, slot=bld.const(self.eps))
        _divide_direction(bld, sig, den, self.key)

    def frozen_gain(self, second_moment: ArrayLike, t: int | None = None) -> Any:
        """``1 / (sqrt(v) + eps)`` at the (bias-corrected) second moment ``v``."""
        v = np.asarray(second_moment, dtype=np.float64)
        return 1.0 / (np.sqrt(v) + self.eps)

    def linearisation_note(self, how: str, second_moment: float | None = None) -> str:
        """The label of the linearisation."""
        return _NOTES[how].format(what="Yogi normaliser", v=second_moment or 0.0)

    def tracker(self, size: int) -> Tracker:
        """The sign-driven recursion run on the predicted ``E[g^2]``."""
        return _YogiTracker(self, size, self.initial)

    def describe(self) -> str:
        """Short formula."""
        return (
            f"divide by sqrt(v)/sqrt(1-{self.beta2:g}^t) + {self.eps:g}, v -= (1-{self.beta2:g}) sign(v - g^2) g^2 "
            f"(v starts at {self.initial:g})"
        )

    def nonlinear_description(self) -> str:
        """What it does."""
        return f"{self.describe()} [nonlinear: sign-driven second moment and division]"

    def table_cells(self) -> dict[str, str]:
        """Normalisation and variance filter."""
        return {
            "gradient normalisation": "divide by sqrt(v_hat) + eps",
            "variance filter": f"additive sign(v - g^2) step of size (1 - {_fmt(self.beta2)}) g^2 (nonlinear)",
        }


# ----------------------------------------------------------------------------- AdEMAMix's warm-up


def ademamix_alpha(t: int, alpha: float, t_warmup: float | None) -> float:
    """The authors' linear warm-up of alpha: ``min(t alpha / T, alpha)`` (``alpha`` without warm-up).

    Parameters
    ----------
    t : int
        The step, from 1.
    alpha : float
        The slow EMA's final gain.
    t_warmup : float or None
        The warm-up length ``T`` in steps (None: no warm-up).

    Returns
    -------
    float
        ``alpha_t``.

    References
    ----------
    Pagliardini, Ablin and Grangier, "The AdEMAMix Optimizer: Better, Faster,
    Older" (2024), the authors' ``alpha_scheduler``; ``pytorch-optimizer`` ``AdEMAMix``.

    Examples
    --------
    >>> from optfilters.package_stages import ademamix_alpha
    >>> ademamix_alpha(5, 8.0, 10.0), ademamix_alpha(20, 8.0, 10.0)
    (4.0, 8.0)
    """
    return alpha if t_warmup is None else min(t * alpha / t_warmup, alpha)


def ademamix_beta3(t: int, beta1: float, beta3: float, t_warmup: float | None) -> float:
    """The authors' beta3 warm-up: ``min(exp(ln b1 ln b3 / ((1 - t/T) ln b3 + t/T ln b1)), b3)``.

    Parameters
    ----------
    t : int
        The step, from 1.
    beta1 : float
        The fast EMA's pole (the start of the warm-up), in ``(0, 1)``.
    beta3 : float
        The slow EMA's final pole, in ``(0, 1)``.
    t_warmup : float or None
        The warm-up length ``T`` in steps (None: no warm-up).

    Returns
    -------
    float
        ``beta3_t``, rising from about ``beta1`` to ``beta3`` (reached at ``t = T``).

    References
    ----------
    Pagliardini, Ablin and Grangier (2024), the authors' ``beta3_scheduler``
    (the half-life grows linearly); ``pytorch-optimizer`` ``AdEMAMix``.

    Examples
    --------
    >>> from optfilters.package_stages import ademamix_beta3
    >>> round(ademamix_beta3(1, 0.9, 0.9999, 1000.0), 6), ademamix_beta3(2000, 0.9, 0.9999, 1000.0)
    (0.949964, 0.9999)
    """
    if t_warmup is None:
        return beta3
    log_beta1, log_beta3 = math.log(beta1), math.log(beta3)
    return min(math.exp(log_beta1 * log_beta3 / ((1.0 - t / t_warmup) * log_beta3 + (t / t_warmup) * log_beta1)), beta3)


@dataclass(frozen=True)
class ScheduledMixture(_OwnRealisation):
    """AdEMAMix's numerator with the authors' warm-up: ``m1 / (1 - beta1^t) + alpha_t m2`` with ``m2`` an EMA(beta3_t).

    The slow EMA's pole ``beta3_t`` and its gain ``alpha_t`` rise over
    ``t_alpha_beta3`` steps (:func:`ademamix_beta3`, :func:`ademamix_alpha`;
    Pagliardini et al. 2024, ``pytorch-optimizer`` ``AdEMAMix``): a linear
    stage with a time-varying gain and pole.  Its limit (reached at ``t =
    t_alpha_beta3``) is the constant AdEMAMix filter.  Build with :meth:`of_mixture`.

    Parameters
    ----------
    terms : tuple of FilterTerm
        The terms, as built by :meth:`of_mixture` (see :class:`~optfilters.stages.LinearStage`).
    name : str
        The stage's role (``"gradient"``, ``"measurement"``, ...).
    summed : bool
        As in :class:`~optfilters.stages.LinearStage` (keyword only).
    beta1 : float
        The fast EMA's pole, in ``[0, 1)``.
    beta3 : float
        The slow EMA's final pole, in ``[0, 1)``.
    alpha : float
        The slow EMA's final gain.
    t_alpha_beta3 : float or None
        The warm-up length in steps (None: no warm-up).

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters.package_stages import ScheduledMixture
    >>> stage = ScheduledMixture.of_mixture(0.9, 0.999, 5.0, 100.0)
    >>> round(stage.limit().dc_gain, 9), stage.response(np.ones(2)).round(6).tolist()
    (6.0, [1.002513, 1.008214])
    """

    beta1: float = 0.9
    beta3: float = 0.9999
    alpha: float = 5.0
    t_alpha_beta3: float | None = None

    @classmethod
    def of_mixture(
        cls, beta1: float, beta3: float, alpha: float, t_alpha_beta3: float | None, name: str = "gradient"
    ) -> ScheduledMixture:
        """The numerator for these hyperparameters.

        Parameters
        ----------
        beta1, beta3 : float
            The fast and the slow EMA's (final) poles.
        alpha : float
            The slow EMA's final gain.
        t_alpha_beta3 : float or None
            The warm-up length in steps (None: no warm-up).
        name : str
            The stage's role.

        Returns
        -------
        ScheduledMixture
        """
        terms = (
            FilterTerm(ArmaFilter.ema(beta1), bias_corrected=True),
            FilterTerm(ArmaFilter.ema(beta3), gain=Constant(alpha)),
        )
        return cls(terms, name, float(beta1), float(beta3), float(alpha), t_alpha_beta3)

    @property
    def is_time_invariant(self) -> bool:  # type: ignore[override]
        """False: bias correction (and the warm-up)."""
        return False

    @renamed_keywords("optfilters.package_stages", compensate="bias_correction")
    def emit_on(
        self,
        bld: ProgramBuilder,
        x: str,
        key: str,
        square: bool = False,
        bias_correction: bool | None = None,
        first: bool = False,
    ) -> LinComb:
        """``m1.lerp_(x, 1 - b1)``, ``m2.lerp_(x, 1 - b3_t)``; returns ``m1 / bc1 + alpha_t m2``."""
        _check_linear(square, "AdEMAMix's numerator")
        beta1, beta3, alpha, warm = self.beta1, self.beta3, self.alpha, self.t_alpha_beta3
        m1 = bld.state(f"{key}.0")
        bld.emit("lerp_", None, m1, x, slot=bld.const(1.0 - beta1))
        m2 = bld.state(f"{key}.1")

        def slow(t: int, lr: float) -> float:
            return 1.0 - ademamix_beta3(t, beta1, beta3, warm)

        bld.emit("lerp_", None, m2, x, slot=bld.slot(slow, lambda lr: 1.0 - beta3))
        c1 = _bias_correction(beta1) if bias_correction is not False else ONE
        gain = Coef(lambda t: (ademamix_alpha(t, alpha, warm), 1.0), alpha)
        return LinComb([(m1, c1), (m2, gain)])

    def describe(self) -> str:
        """Short formula.

        Returns
        -------
        str
            The mixture's formula, with the warm-up when there is one.
        """
        warm = f"; alpha_t, beta3_t warm up over {self.t_alpha_beta3:g} steps" if self.t_alpha_beta3 is not None else ""
        return (
            f"m1/(1-{self.beta1:g}^t) + alpha_t m2; m1 = EMA({self.beta1:g}) of g, m2 = EMA(beta3_t) of g "
            f"(alpha -> {self.alpha:g}, beta3 -> {self.beta3:g}{warm})"
        )

    def table_cells(self) -> dict[str, str]:
        """The mixture, with its warm-up.

        Returns
        -------
        dict of str to str
            The ``gradient filtering`` cell.
        """
        text = f"{classify_stage_text(self)}"
        if self.t_alpha_beta3 is not None:
            text += ", alpha and beta3 warm-up (time-varying gain and pole)"
        return {"gradient filtering": text}


def classify_stage_text(stage: LinearStage) -> str:
    """:func:`optfilters.table.classify_stage` of the stage's terms (a plain linear stage)."""
    from .stages import classify_stage

    return classify_stage(LinearStage(stage.terms, stage.name))


# ----------------------------------------------------------------------------- weight decay placements


@dataclass(frozen=True)
class PostUpdateDecay(Stage):
    """Weight decay after the update: ``theta /= 1 + lr wd`` (proximal, Adan) or ``theta *= 1 - lr wd`` (LaProp).

    In the closed loop ``theta_t = f (theta_{t-1} - lr d_t)`` with ``f`` the
    factor (:meth:`loop_factor`): the plant's pole and the loop gain are both
    multiplied by ``f``.

    Parameters
    ----------
    weight_decay : float
        The decay ``wd`` per unit learning rate (0: the stage does nothing).
    proximal : bool
        True: ``theta /= 1 + lr wd`` (Adan's proximal form); False: ``theta *=
        1 - lr wd`` (``pytorch-optimizer``'s LaProp).

    Examples
    --------
    >>> import optfilters
    >>> from optfilters.package_stages import PostUpdateDecay
    >>> from optfilters.stages import LearningRate
    >>> opt = optfilters.chain(LearningRate(), PostUpdateDecay(1.0), lr=0.5).optimizer([3.0])
    >>> opt.step([0.0]).tolist()
    [2.0]
    """

    weight_decay: float
    proximal: bool = True

    role: ClassVar[str] = "post_update_decay"

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """``param.div_(1 + lr wd)`` (proximal) or ``param.mul_(1 - wd lr)``."""
        if self.weight_decay == 0.0:
            return
        wd = float(self.weight_decay)
        if self.proximal:
            bld.emit("div_s_", None, sig.param, slot=bld.slot(lambda t, lr: 1.0 + lr * wd, lambda lr: 1.0 + lr * wd))
        else:  # pytorch-optimizer: p.mul_(1.0 - weight_decay * lr)
            bld.emit("mul_s_", None, sig.param, slot=bld.slot(lambda t, lr: 1.0 - wd * lr, lambda lr: 1.0 - wd * lr))

    def loop_factor(self, lr: float) -> float:
        """``1 / (1 + lr wd)`` or ``1 - lr wd``."""
        return 1.0 / (1.0 + lr * self.weight_decay) if self.proximal else 1.0 - lr * self.weight_decay

    def describe(self) -> str:
        """Short formula."""
        if self.proximal:
            return f"proximal: theta /= 1 + lr*{self.weight_decay:g} after the update"
        return f"decoupled after the update: theta *= 1 - lr*{self.weight_decay:g}"

    def table_cells(self) -> dict[str, str]:
        """Where the decay acts."""
        return {"weight decay": "proximal (theta /= 1 + lr wd)" if self.proximal else "decoupled, after the update"}

    def describe_line(self) -> str | None:
        """Nothing at ``weight_decay = 0``."""
        return f"{self.role}: {self.describe()}" if self.weight_decay else None


@dataclass(frozen=True)
class DirectionDecay(Stage):
    """``d += wd theta`` after the normaliser (Schedule-Free AdamW: decay at the gradient point, not normalised).

    In the closed loop it is a coupled decay that the preceding normaliser
    does not precondition (``optfilters.closed_loop`` divides it by their
    frozen gain).

    Parameters
    ----------
    weight_decay : float
        The decay ``wd`` (0: the stage does nothing).

    References
    ----------
    ``schedulefree`` 1.4.1 ``AdamWScheduleFree`` (``grad.add_(y, alpha=decay)``
    after the division by the denominator).

    Examples
    --------
    >>> from optfilters.package_stages import DirectionDecay
    >>> DirectionDecay(0.1).loop_decay()
    (0.1, 0.0)
    """

    weight_decay: float

    role: ClassVar[str] = "weight_decay"

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """``d = d + wd * param`` (the direction materialised first)."""
        if self.weight_decay == 0.0:
            return
        d = bld.materialise(sig.direction)
        sig.direction = LinComb.of(bld.new("add", d, sig.param, slot=bld.const(float(self.weight_decay))))

    def loop_decay(self) -> tuple[float, float]:
        """``(wd, 0)``: coupled, entering after the normaliser."""
        return (float(self.weight_decay), 0.0)

    def describe(self) -> str:
        """Short formula."""
        return f"d += {self.weight_decay:g}*theta (after the normaliser)"

    def table_cells(self) -> dict[str, str]:
        """Where it acts."""
        return {"weight decay": "added to the normalised direction (at the gradient point)"}

    def describe_line(self) -> str | None:
        """Nothing at ``weight_decay = 0``."""
        return f"{self.role}: {self.describe()}" if self.weight_decay else None


# ----------------------------------------------------------------------------- Lion's interpolation, LaProp


@dataclass(frozen=True)
class LionInterpolation(_OwnRealisation):
    """Lion's ``c = lerp(m, x, 1 - beta1)``, then ``m.lerp_(x, 1 - beta2)``: ``((1-b1) + (b1-b2) z^-1)/(1 - b2 z^-1)``.

    The realisation of ``pytorch-optimizer``'s ``Lion`` (the sign that follows
    is discontinuous, so the interpolation is computed in the package's
    order).  Build with :meth:`of_betas`.

    Parameters
    ----------
    terms : tuple of FilterTerm
        The terms, as built by :meth:`of_betas` (see :class:`~optfilters.stages.LinearStage`).
    name : str
        The stage's role (``"gradient"``, ``"measurement"``, ...).
    summed : bool
        As in :class:`~optfilters.stages.LinearStage` (keyword only).
    beta1 : float
        The interpolation weight of the update direction, in ``[0, 1]``.
    beta2 : float
        The momentum's pole, in ``[0, 1)``.

    References
    ----------
    Chen et al., "Symbolic Discovery of Optimization Algorithms" (2023),
    Program 1; ``pytorch-optimizer`` ``Lion``.

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters.package_stages import LionInterpolation
    >>> LionInterpolation.of_betas(0.9, 0.99).response(np.ones(2)).round(6).tolist()
    [0.1, 0.109]
    """

    beta1: float = 0.9
    beta2: float = 0.99

    @classmethod
    def of_betas(cls, beta1: float, beta2: float, name: str = "gradient") -> LionInterpolation:
        """The interpolation filter for ``beta1``, ``beta2``.

        Parameters
        ----------
        beta1 : float
            The interpolation weight of the update direction.
        beta2 : float
            The momentum's pole.
        name : str
            The stage's role.

        Returns
        -------
        LionInterpolation
        """
        f = ArmaFilter([1.0 - beta1, beta1 - beta2], [1.0, -beta2], name="lion")
        return cls((FilterTerm(f),), name, float(beta1), float(beta2))

    @renamed_keywords("optfilters.package_stages", compensate="bias_correction")
    def emit_on(
        self,
        bld: ProgramBuilder,
        x: str,
        key: str,
        square: bool = False,
        bias_correction: bool | None = None,
        first: bool = False,
    ) -> LinComb:
        """``c = m.lerp(x, 1 - b1)``; ``m.lerp_(x, 1 - b2)``."""
        _check_linear(square, "Lion's interpolation")
        m = bld.state(f"{key}.0")
        c = bld.new("clone", m)
        bld.emit("lerp_", None, c, x, slot=bld.const(1.0 - self.beta1))
        bld.emit("lerp_", None, m, x, slot=bld.const(1.0 - self.beta2))
        return LinComb.of(c)


class _OffsetTracker(_MomentTracker):
    def gain(self, t: int, moments: Moments) -> FloatArray:
        beta2 = self.norm.beta2
        self.v = beta2 * self.v + (1.0 - beta2) * np.asarray(moments.grad2, dtype=np.float64)
        c = 1.0 - beta2**t
        return np.asarray(math.sqrt(c) / (np.sqrt(self.v + self.norm.offset) + self.norm.eps), dtype=np.float64)


@dataclass(frozen=True)
class OffsetRmsNormaliser(Stage):
    """Divide by ``(sqrt(v + offset) + eps) / sqrt(1 - beta2^t)``, ``v`` the EMA(beta2) of ``g^2``.

    ``pytorch-optimizer``'s ``apply_ams_bound`` denominator (``offset`` its
    ``exp_avg_sq_eps``, 1e-15) with the bias correction after eps, as its
    ``LaProp`` divides.

    Parameters
    ----------
    beta2 : float
        Pole of the EMA of ``g^2``, in ``[0, 1)``.
    offset : float
        Added to ``v`` inside the root (units of ``g^2``).
    eps : float
        Added to the root (units of the gradient).

    References
    ----------
    Ziyin, Wang and Ueda, "LaProp: Separating Momentum and Adaptivity in Adam"
    (2020); ``pytorch-optimizer`` ``LaProp``.

    Examples
    --------
    >>> from optfilters.package_stages import OffsetRmsNormaliser
    >>> float(OffsetRmsNormaliser(0.999, 0.0, 0.0).frozen_gain(4.0))
    0.5
    """

    beta2: float = 0.999
    offset: float = 1e-15
    eps: float = 1e-15

    role: ClassVar[str] = "normaliser"
    is_linear: ClassVar[bool] = False

    def linear_stages(self) -> dict[str, LinearStage]:
        """The bias-corrected EMA of ``g^2``."""
        return {"second_moment": LinearStage.of(ArmaFilter.ema(self.beta2), "second_moment", bias_corrected=True)}

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """``v = beta2 v + (1 - beta2) g^2``; ``den = (sqrt(v + offset) + eps) / sqrt(bc2)``."""
        v = bld.state("second_moment.0")
        g = sig.grad
        bld.emit("mul_s_", None, v, slot=bld.const(self.beta2))
        bld.emit("addcmul_", None, v, g, g, slot=bld.const(1.0 - self.beta2))
        den = bld.new("add_s", v, slot=bld.const(self.offset))
        bld.emit("sqrt_", None, den)
        bld.emit("add_s_", None, den, slot=bld.const(self.eps))
        beta2 = self.beta2
        bld.emit(
            "div_s_",
            None,
            den,
            slot=bld.slot(lambda t, lr: math.sqrt(1.0 - math.pow(beta2, t)), lambda lr: 1.0),
        )
        _divide_direction(bld, sig, den, self.key)

    def frozen_gain(self, second_moment: ArrayLike, t: int | None = None) -> Any:
        """``1 / (sqrt(v + offset) + eps)`` at the bias-corrected ``v`` (the correction's limit is 1)."""
        v = np.asarray(second_moment, dtype=np.float64)
        return 1.0 / (np.sqrt(v + self.offset) + self.eps)

    def linearisation_note(self, how: str, second_moment: float | None = None) -> str:
        """The label of the linearisation."""
        return _NOTES[how].format(what="normaliser", v=second_moment or 0.0)

    def tracker(self, size: int) -> Tracker:
        """The EMA run on the predicted ``E[g^2]``, with the exact correction."""
        return _OffsetTracker(self, size)

    def describe(self) -> str:
        """Short formula."""
        return (
            f"divide by (sqrt(v + {self.offset:g}) + {self.eps:g})/sqrt(1-{self.beta2:g}^t), "
            f"v = EMA({self.beta2:g}) of g^2"
        )

    def table_cells(self) -> dict[str, str]:
        """Normalisation and variance filter."""
        return {
            "gradient normalisation": "divide by (sqrt(v) + eps)/sqrt(1 - beta2^t)",
            "variance filter": f"AR1, unit DC gain (pole {_fmt(self.beta2)}), bias correction",
        }


#: The smallest positive normal double (below it a float keeps fewer than 53 bits).
_SMALLEST_NORMAL = 2.2250738585072014e-308


class _LrEma:
    """``a_t = beta a_{t-1} + (1 - beta) lr`` for a constant ``lr``, cached (LaProp's ``exp_avg_lr_1``)."""

    def __init__(self, beta: float) -> None:
        self.beta = beta
        self._runs: dict[float, list[float]] = {}

    def correction(self, t: int, lr: float) -> float:
        if lr == 0.0:
            return 1.0
        run = self._runs.get(lr)
        if run is None:
            if len(self._runs) >= 8:
                self._runs.pop(next(iter(self._runs)))
            run = self._runs[lr] = [0.0]
        while len(run) <= t:
            run.append(run[-1] * self.beta + (1.0 - self.beta) * lr)
        value = run[t] / lr
        if lr != 1.0 and t > 0 and not (run[t] >= _SMALLEST_NORMAL and value < math.inf):
            # a_t lost its digits below the normal range (lr = 5e-324 gives a_t = 0) or overflowed: for a
            # constant lr, c_t = a_t / lr does not depend on lr
            return self.correction(t, 1.0)
        return value


@dataclass(frozen=True, eq=False)
class LrWeightedMomentum(_OwnUpdate):
    """LaProp's momentum and update: ``m = beta1 m + (1 - beta1) lr d``; ``theta -= m / c_t``.

    The learning rate enters the momentum (a change of learning rate applies
    to new steps only), and ``c_t = a_t / lr`` with ``a_t`` the EMA(beta1) of
    the learning rates (Ziyin et al. 2020; ``pytorch-optimizer`` ``LaProp``),
    computed here for the learning rate given as though it had held since the
    first step (then ``c_t = 1 - beta1^t``, Adam's bias correction).  Per unit
    learning rate the direction filter is the EMA(beta1).

    Parameters
    ----------
    beta1 : float
        The momentum's pole, in ``[0, 1)``.

    References
    ----------
    Ziyin, Wang and Ueda (2020); ``pytorch-optimizer`` ``LaProp``
    (``exp_avg_lr_1``).

    Examples
    --------
    >>> import optfilters
    >>> from optfilters.package_stages import LrWeightedMomentum
    >>> opt = optfilters.chain(LrWeightedMomentum(0.5), lr=0.1).optimizer([1.0])
    >>> opt.step([2.0]).round(12).tolist()    # m = 0.5 * 0.1 * 2, c_1 = 0.5
    [0.8]
    """

    beta1: float = 0.9
    lr_ema: _LrEma = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr_ema", _LrEma(self.beta1))

    def _key(self) -> tuple[Any, ...]:
        return (self.beta1,)

    @property
    def key(self) -> str:
        """``post`` (its state is ``post.0``)."""
        return "post"

    @property
    def is_time_invariant(self) -> bool:  # type: ignore[override]
        """False: the bias correction."""
        return False

    def linear_stages(self) -> dict[str, LinearStage]:
        """The momentum, as a bias-corrected EMA (per unit learning rate)."""
        return {"post": LinearStage.of(ArmaFilter.ema(self.beta1), "post", bias_corrected=True)}

    def direction_filter(self) -> ArmaFilter:
        """The EMA(beta1) (its bias correction tends to 1)."""
        return ArmaFilter.ema(self.beta1).renamed("post")

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """``m.mul_(b1).addcdiv_(g, den, value=(1 - b1) lr)``; ``param.add_(m, alpha=-1/c_t)``."""
        beta1 = self.beta1
        m = bld.state("post.0")
        bld.emit("mul_s_", None, m, slot=bld.const(beta1))
        lc = sig.direction
        if len(lc.terms) != 1 or not lc.terms[0][1].one:
            lc = LinComb.of(bld.materialise(lc))
        slot = bld.slot(lambda t, lr: (1.0 - beta1) * lr, lambda lr: (1.0 - beta1) * lr)
        if lc.den is not None:
            bld.emit("addcdiv_", None, m, lc.terms[0][0], lc.den, slot=slot)
        else:
            bld.emit("add_", None, m, lc.terms[0][0], slot=slot)
        ema = self.lr_ema

        def step(t: int, lr: float) -> float:
            return -(1.0 / ema.correction(t, lr))

        bld.emit("add_", None, sig.param, m, slot=bld.slot(step, lambda lr: -1.0))

    def describe(self) -> str:
        """Short formula."""
        return f"m = {self.beta1:g} m + (1-{self.beta1:g}) lr d; theta -= m / c_t (c_t = EMA of lr / lr)"

    def table_cells(self) -> dict[str, str]:
        """The post-filter."""
        return {"post-filter": f"AR1, unit DC gain (pole {_fmt(self.beta1)}), lr inside, bias correction"}
