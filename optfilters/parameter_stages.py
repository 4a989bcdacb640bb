"""Stage kinds that act on the parameter, and update kinds other than ``theta -= lr * d``.

Parameter-side stages run after the update (:class:`~optfilters.stages.LearningRate`
or an update kind below) and filter the *parameter sequence* rather than the
gradient:

* :class:`EmaAverage` and :class:`SwaAverage`: the weight averages of
  ``torch.optim.swa_utils.AveragedModel`` (``get_ema_multi_avg_fn`` and the
  default equal-weight average), kept as the state ``averaged``, an *output*
  of the model beside the parameter (:attr:`Stage.parameter_output`): the EMA
  is the LTI filter ``(1 - decay) / (1 - decay z^-1)`` on the iterates, the
  SWA average an ``N``-tap boxcar after ``N`` averaged steps;
* :class:`PolyakAverage`: torch.optim.ASGD's Polyak-Ruppert average ``ax``;
* :class:`Lookahead`: pytorch_optimizer's ``Lookahead`` (Zhang et al. 2019):
  every ``k`` steps the parameter is pulled back towards slow weights, a
  *periodically* time-varying stage (:attr:`Stage.period`) inside the loop,
  analysed through the product of one period's transition matrices.

Update kinds replace the learning-rate stage where the step is not
``theta -= lr * c(t) * d``:

* :class:`AsgdUpdate`: ASGD's decaying step ``eta_t`` and leak ``1 - lambd eta_t``;
* :class:`RpropUpdate`: Rprop's sign with per-element multiplicative step
  adaptation on sign agreement (``lr`` is only the initial step);
* :class:`RelativeStep`: Adafactor's relative step
  ``max(eps2, RMS(theta)) * min(lr, 1/sqrt(t))``.

:func:`lookahead` and :func:`averaged` wrap any model.  Each kind owns its
step (one program: the numpy reference and the bridge), its linearisation and
its description, as :class:`optfilters.stages.Stage` asks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import InvalidHyperparameterError
from .filters import ArmaFilter
from .gains import Gain
from .package_stages import _FirstStepVaries
from .program import LinComb, Op, ProgramBuilder, Signals, StepValue
from .stages import LinearStage, Moments, Stage, Tracker
from .validation import check_integer, check_number

if TYPE_CHECKING:
    from .catalogue import ModelLike
    from .model import OptimizerModel

__all__ = [
    "AsgdEta",
    "AsgdMu",
    "AsgdStepSize",
    "AsgdUpdate",
    "EmaAverage",
    "Lookahead",
    "PolyakAverage",
    "RelativeStep",
    "RelativeStepSize",
    "RpropUpdate",
    "SwaAverage",
    "averaged",
    "ema_average_variance_ratio",
    "lookahead",
]

FloatArray = NDArray[np.float64]

#: The state key of the averaged parameters (every averaging kind keeps them under this key).
AVERAGED = "averaged"


def _f32(value: float) -> float:
    """``value`` rounded to float32 (torch.optim keeps ASGD's ``eta`` and ``mu`` in float32 tensors)."""
    return float(np.float32(value))


def _update(
    bld: ProgramBuilder, sig: Signals, step: Callable[[int, float], float], limit: Callable[[float], float]
) -> None:
    """``param += -step(t, lr) * d`` for the lazy direction (``addcdiv_`` when it carries a divisor)."""
    lc = sig.direction
    for reg, coef in lc.terms:
        fn, coef_limit = coef.fn, coef.limit

        def scalar(t: int, lr: float, fn: Any = fn) -> float:
            if fn is None:
                return -step(t, lr)
            num, den = fn(t)
            return -(step(t, lr) * num) / den

        def scalar_limit(lr: float, c: float = coef_limit) -> float:
            return -(limit(lr) * c)

        slot = bld.slot(scalar, scalar_limit)
        if lc.den is not None:
            bld.emit("addcdiv_", None, sig.param, reg, lc.den, slot=slot)
        else:
            bld.emit("add_", None, sig.param, reg, slot=slot)


# ----------------------------------------------------------------------------- weight averages


class _AverageOutput(Stage):
    """Mixin of the stages that keep an average of the parameters: role ``average``, the output ``averaged``."""

    role: ClassVar[str] = "average"

    @property
    def parameter_output(self) -> str:
        """``averaged``."""
        return AVERAGED

    @property
    def is_time_invariant(self) -> bool:  # type: ignore[override]
        """False: the average starts as a copy of the parameter."""
        return False


class _ParameterAverage(_AverageOutput):
    """Mixin of the weight averages whose first step is a variant: ``a = theta``, then the average."""

    @property
    def varies(self) -> bool:
        """True: the average copies the parameter before it averages."""
        return True

    def _average(self, bld: ProgramBuilder, sig: Signals, variant: Any) -> str | None:
        """The register of the average; after ``a = theta`` (variant ``copy``) None: nothing left to do."""
        a = bld.state(AVERAGED)
        if variant == "copy":
            bld.emit("copy_", None, a, sig.param)
            return None
        return a


@dataclass(frozen=True)
class EmaAverage(_ParameterAverage):
    """EMA of the parameters after each update: ``a = decay * a + (1 - decay) * theta`` (``a = theta`` until ``start``).

    ``torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))``
    with ``update_parameters`` called after every optimizer step from step
    ``start`` on: its first call copies the parameters, later calls run
    ``torch._foreach_lerp_(a, theta, 1 - decay)`` (the form used here; the
    single-tensor ``get_ema_avg_fn`` computes ``decay * a + (1 - decay) *
    theta``, equal to rounding).  Before ``start`` the average follows the
    parameter.  The average is an output of the model (state ``averaged``,
    :attr:`parameter_output`), outside the loop: it does not change the
    parameter's trajectory.  On the iterates it is the LTI filter
    ``(1 - decay) / (1 - decay z^-1)`` (:meth:`filters`, key ``parameter_average``).

    Parameters
    ----------
    decay : float
        In ``[0, 1)`` (torch's default 0.999).
    start : int
        The first averaged step (>= 1).

    Raises
    ------
    InvalidHyperparameterError
        When ``decay`` is not in ``[0, 1)`` or ``start`` is not an integer >= 1.

    Examples
    --------
    >>> import optfilters
    >>> from optfilters.parameter_stages import EmaAverage
    >>> from optfilters.stages import LearningRate
    >>> model = optfilters.chain(optfilters.get("sgd", lr=1.0), LearningRate(), EmaAverage(0.5))
    >>> traj = model.simulate([-1.0, -1.0, 0.0])
    >>> traj.params.ravel().tolist(), traj.averaged.ravel().tolist()
    ([0.0, 1.0, 2.0, 2.0], [0.0, 1.0, 1.5, 1.75])
    """

    decay: float = 0.999
    start: int = 1

    def __post_init__(self) -> None:
        check_number(self.decay, "decay", 0.0, 1.0, high_open=True)
        check_integer(self.start, "start", 1)

    def variant(self, t: int | None) -> str:
        """``copy`` up to ``start``, then ``ema``."""
        return "copy" if t is not None and t <= self.start else "ema"

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """``a = theta`` (copy) or ``a.lerp_(theta, 1 - decay)`` after the update."""
        a = self._average(bld, sig, variant)
        if a is not None:
            bld.emit("lerp_", None, a, sig.param, slot=bld.const(1.0 - self.decay))

    def linear_stages(self) -> dict[str, LinearStage]:
        """``parameter_average``: the EMA on the parameter sequence (started at the parameter)."""
        ema = ArmaFilter.ema(self.decay)
        return {"parameter_average": LinearStage.of(ema, "parameter_average", first_output_is_input=True)}

    def describe(self) -> str:
        """Short formula."""
        return (
            f"EMA of the parameters after each update, a = {self.decay:g} a + {1.0 - self.decay:g} theta "
            f"(a = theta up to step {self.start}); an output (state 'averaged'), outside the loop"
        )

    def table_cells(self) -> dict[str, str]:
        """The parameter-side column."""
        return {"parameter side": f"EMA of the weights (decay {self.decay:g}), an output"}


@dataclass(frozen=True)
class SwaAverage(_ParameterAverage):
    """The equal-weight average of the parameters at steps ``start, start + every, ...`` (SWA).

    ``torch.optim.swa_utils.AveragedModel(model)`` (no ``avg_fn``: on CPU
    ``get_swa_avg_fn``, ``a + (theta - a) / (n + 1)`` with ``n`` the number
    already averaged; its first call copies), with ``update_parameters``
    called at those steps.  Before ``start`` the average follows the
    parameter.  After ``N`` averaged steps the average is an ``N``-tap boxcar
    of the iterates (:meth:`window`), ``|H(f)| = |sin(pi f N) / (N sin(pi f))|``
    for ``every = 1``: a time-varying filter without an LTI limit.  An output
    of the model (state ``averaged``), outside the loop.

    Parameters
    ----------
    start : int
        The first averaged step (>= 1).
    every : int
        Average every ``every`` steps (>= 1; e.g. once per epoch).

    Raises
    ------
    InvalidHyperparameterError
        When ``start`` or ``every`` is not an integer >= 1.

    Examples
    --------
    >>> import optfilters
    >>> from optfilters.parameter_stages import SwaAverage
    >>> from optfilters.stages import LearningRate
    >>> model = optfilters.chain(optfilters.get("sgd", lr=1.0), LearningRate(), SwaAverage())
    >>> model.simulate([-1.0, -1.0, -1.0]).averaged.ravel().tolist()   # means of 1; 1, 2; 1, 2, 3
    [0.0, 1.0, 1.5, 2.0]
    >>> SwaAverage().window(4).b.tolist()
    [0.25, 0.25, 0.25, 0.25]
    """

    start: int = 1
    every: int = 1

    def __post_init__(self) -> None:
        check_integer(self.start, "start", 1)
        check_integer(self.every, "every", 1)

    def variant(self, t: int | None) -> str:
        """``copy`` up to ``start``, ``mean`` at averaged steps, else ``hold`` (the limit: the weight tends to 0)."""
        if t is None:
            return "hold"
        if t <= self.start:
            return "copy"
        return "mean" if (t - self.start) % self.every == 0 else "hold"

    def count(self, t: int) -> int:
        """The number of parameters already averaged when step ``t`` (an averaged step after ``start``) is added.

        Parameters
        ----------
        t : int
            An averaged step: ``t > start`` and ``(t - start) % every == 0``.

        Returns
        -------
        int
            ``n = (t - start) // every``; the step's weight is ``1 / (n + 1)``.
        """
        return (t - self.start) // self.every

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """``a = theta`` (copy), or ``a = a + (theta - a) / (n + 1)`` (torch's ``get_swa_avg_fn``), or nothing."""
        a = self._average(bld, sig, variant)
        if a is not None and variant == "mean":
            diff = bld.new("add", sig.param, a, slot=bld.const(-1.0))
            weight = bld.slot(lambda t, lr: float(self.count(t) + 1), lambda lr: math.inf)
            bld.emit("div_s_", None, diff, slot=weight)
            bld.emit("add_", None, a, diff, slot=bld.const(1.0))

    def window(self, n: int) -> ArmaFilter:
        """The FIR filter the average applies to the iterates after ``n`` averaged steps (taps ``every`` apart).

        Parameters
        ----------
        n : int
            The number of averaged steps, >= 1.

        Returns
        -------
        ArmaFilter
            The FIR filter with ``n`` taps ``1/n``, ``every`` apart (order
            ``every (n - 1)``).

        Raises
        ------
        InvalidHyperparameterError
            When ``n`` is not an integer >= 1.

        Examples
        --------
        >>> from optfilters.parameter_stages import SwaAverage
        >>> SwaAverage(every=2).window(2).b.tolist()
        [0.5, 0.0, 0.5]
        """
        n = check_integer(n, "n", 1)
        b = np.zeros(self.every * (n - 1) + 1)
        b[:: self.every] = 1.0 / n
        return ArmaFilter(b, [1.0], name=f"swa window({n})")

    def describe(self) -> str:
        """Short formula."""
        return (
            f"equal-weight average of the parameters at steps {self.start}, {self.start}+{self.every}, ... "
            "(SWA; an N-tap boxcar after N averaged steps); an output (state 'averaged'), outside the loop"
        )

    def table_cells(self) -> dict[str, str]:
        """The parameter-side column."""
        return {"parameter side": "equal-weight average of the weights (SWA), an output"}


@dataclass(frozen=True)
class AsgdMu(StepValue):
    """torch.optim.ASGD's ``mu`` (state ``"mu"``): 1 at first, then ``1 / max(1, t - t0)`` written at step ``t``.

    Each step reads the value written by the previous one (with that step's
    ``t0``), as torch keeps it (a 0-dim tensor of torch's scalar dtype).

    Parameters
    ----------
    t0 : float
        ASGD's ``t0``: the step after which averaging starts (``mu`` is 1 up to ``t0 + 1``).

    Examples
    --------
    >>> from optfilters.parameter_stages import AsgdMu
    >>> mu = AsgdMu(t0=1.0)
    >>> [mu.history(t) for t in (1, 2, 3, 4, 5)]
    [1.0, 1.0, 1.0, 0.5, 0.3333333432674408]
    """

    t0: float = 1e6
    key: ClassVar[str] = "mu"

    def value(self, t: Any, lr: Any) -> Any:
        """``1 / max(1, t - t0)`` (a tensor ``t``: ``clamp``, as torch's capturable ``maximum``)."""
        d = t - self.t0
        return 1 / (d.clamp(min=1.0) if hasattr(d, "clamp") else max(1, d))


def _polyak_average() -> Op:
    """torch.optim.ASGD's average: ``param`` where ``mu == 1`` (``ax.copy_(param)``), else ``ax + (param - ax) mu``."""

    def numpy(p: Any, ax: Any, s: Any = None) -> Any:
        return np.array(p, copy=True) if s == 1 else ax + (p - ax) * s

    def torch_form(p: Any, ax: Any, s: Any = None) -> Any:
        if isinstance(s, (float, int)):
            return p.clone() if s == 1 else ax + (p - ax) * s
        return ax + (p - ax) * s  # mu on the device (capturable): torch's form without reading it back

    return Op(
        "polyak_average",
        numpy=numpy,
        torch=torch_form,
        c=lambda a, s: f"({s} == 1.0 ? {a[0]} : {a[1]} + ({a[0]} - {a[1]}) * {s})",
        triton=lambda a, s: f"tl.where({s} == 1.0, {a[0]}, {a[1]} + ({a[0]} - {a[1]}) * {s})",
    )


@dataclass(frozen=True)
class PolyakAverage(_AverageOutput):
    """torch.optim.ASGD's average ``ax``: ``ax += mu (theta - ax)``, with ``mu`` ASGD's state (:class:`AsgdMu`).

    ``mu`` is written at the end of each step, ``1 / max(1, t - t0)`` with
    that step's ``t0``, and read by the next one (so a change of ``t0`` acts
    one step later, and a checkpoint carries ``mu``).  While ``mu`` is 1 the
    average copies the parameter (torch's ``ax.copy_(param)``); with a
    constant ``t0`` that is up to step ``t0 + 2``, and from there on ``ax``
    is the running mean of the parameters.  An output of the model (state
    ``averaged``), outside the loop.

    Parameters
    ----------
    t0 : float
        The step after which averaging starts.

    Examples
    --------
    >>> import optfilters
    >>> model = optfilters.get("asgd", lr=1.0, lambd=0.0, t0=1.0)
    >>> model.simulate([-1.0, -1.0, -1.0, -1.0]).averaged.ravel().tolist()   # copies to step 3, then the mean
    [0.0, 1.0, 2.0, 3.0, 3.5]
    """

    t0: float = 1e6

    def weight(self, t: int) -> float:
        """``mu`` at step ``t`` with a constant ``t0`` (float32, torch's default scalar dtype).

        Parameters
        ----------
        t : int
            The step, from 1.

        Returns
        -------
        float
            The weight of the parameter in the average at step ``t`` (1: a copy).

        Examples
        --------
        >>> from optfilters.parameter_stages import PolyakAverage
        >>> [PolyakAverage(t0=1.0).weight(t) for t in (1, 3, 4)]
        [1.0, 1.0, 0.5]
        """
        return AsgdMu(self.t0).history(t)

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """torch's ``ax.add_(param.sub(ax).mul_(mu))``, or ``ax.copy_(param)`` while ``mu`` is 1 (``mu`` the state)."""
        ax = bld.state(AVERAGED)
        mu = bld.carried_slot((AsgdMu(self.t0),), lambda t, lr, m: m, lambda lr: 0.0)
        bld.emit("copy_", None, ax, bld.new(_polyak_average(), sig.param, ax, slot=mu))

    def describe(self) -> str:
        """Short formula."""
        return (
            f"Polyak average of the parameters, ax += mu_t (theta - ax), mu_t = 1/max(1, t - 1 - {self.t0:g}) "
            "(float32); an output (state 'averaged'), outside the loop"
        )

    def table_cells(self) -> dict[str, str]:
        """The parameter-side column."""
        return {"parameter side": f"Polyak average after step {self.t0:g} (ASGD's ax), an output"}


def ema_average_variance_ratio(decay: float, pole: float) -> float:
    """``Var[a] / Var[theta]`` for the EMA ``a`` of a first-order iterate ``theta_t = r theta_{t-1} + noise``.

    With ``theta = n / (1 - r z^-1)`` and ``a = (1 - g) / (1 - g z^-1) theta``
    (``g`` the decay), summing the squared impulse response of
    ``1 / ((1 - g z^-1)(1 - r z^-1))``, ``(1 + g r) / ((1 - g r)(1 - g^2)(1 - r^2))``,
    gives

        Var[a] / Var[theta] = (1 - g)(1 + g r) / ((1 + g)(1 - g r)),

    which is below 1 for ``0 < g < 1`` and ``|r| < 1``: the EMA of the iterates
    lowers the steady-state loss (Zhang et al. 2019, "Which algorithmic choices
    matter at which batch sizes?", eq. 38, the noisy quadratic model with an EMA
    of the iterates: plain SGD on curvature ``h`` has ``r = 1 - lr h``).

    Parameters
    ----------
    decay : float
        The EMA's decay ``g`` in ``[0, 1)``.
    pole : float
        The iterate's pole ``r`` in ``(-1, 1)``.

    Returns
    -------
    float
        ``Var[a] / Var[theta]`` in the steady state, in ``(0, 1]``.

    Raises
    ------
    InvalidHyperparameterError
        When ``decay`` is not in ``[0, 1)`` or ``pole`` not in ``(-1, 1)``.

    Examples
    --------
    >>> from optfilters.parameter_stages import ema_average_variance_ratio
    >>> round(ema_average_variance_ratio(0.9, 0.9), 6)    # SGD with lr h = 0.1 and decay 0.9
    0.501385
    >>> ema_average_variance_ratio(0.0, 0.5)
    1.0
    """
    g = check_number(decay, "decay", 0.0, 1.0, high_open=True)
    r = check_number(pole, "pole", -1.0, 1.0, low_open=True, high_open=True)
    return (1.0 - g) * (1.0 + g * r) / ((1.0 + g) * (1.0 - g * r))


# ----------------------------------------------------------------------------- Lookahead


@dataclass(frozen=True)
class Lookahead(Stage):
    """Lookahead: every ``k`` steps ``theta = slow + alpha (theta - slow)`` and ``slow = theta``.

    pytorch_optimizer's ``Lookahead(optimizer, k, alpha)`` (Zhang, Lucas, Hinton
    & Ba 2019): the slow weights start at the initial parameter (copied at the
    start of the first step, :meth:`emit_before`); after every ``k``-th inner
    step the parameter is ``theta.lerp_(slow, 1 - alpha)`` and the slow weights
    copy it.  A linear stage inside the loop with period ``k``
    (:attr:`period`): the closed loop and the noisy-quadratic model use the
    product of one period's transition matrices (the monodromy matrix), whose
    spectral radius to the power ``1/k`` is the per-step rate.  Only
    ``pullback_momentum='none'`` (the inner optimizer's state is left alone).

    Parameters
    ----------
    k : int
        Inner steps per synchronisation (>= 1).
    alpha : float
        Interpolation towards the fast weights, in ``[0, 1]``.

    Raises
    ------
    InvalidHyperparameterError
        When ``k`` is not an integer >= 1 or ``alpha`` not in ``[0, 1]``.

    References
    ----------
    Zhang, Lucas, Hinton and Ba, "Lookahead Optimizer: k steps forward, 1 step
    back" (NeurIPS 2019), Algorithm 1; ``pytorch-optimizer`` ``Lookahead``.

    Examples
    --------
    >>> import optfilters
    >>> model = optfilters.lookahead("sgd", k=2, alpha=0.5, lr=1.0)
    >>> model.simulate([-1.0, -1.0, -1.0, -1.0]).params.ravel().tolist()   # pulled back to 1 after steps 2 and 4
    [0.0, 1.0, 1.0, 2.0, 2.0]
    """

    k: int = 5
    alpha: float = 0.5

    role: ClassVar[str] = "lookahead"

    def __post_init__(self) -> None:
        check_integer(self.k, "k", 1)
        check_number(self.alpha, "alpha", 0.0, 1.0)

    @property
    def period(self) -> int:
        """``k``."""
        return int(self.k)

    @property
    def is_time_invariant(self) -> bool:  # type: ignore[override]
        """False: periodically time-varying."""
        return False

    @property
    def varies(self) -> bool:
        """True."""
        return True

    def variant(self, t: int | None) -> tuple[bool, bool]:
        """``(first step, synchronisation step)``."""
        if t is None:
            return (False, False)
        return (t == 1, t % int(self.k) == 0)

    def emit_before(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """At the first step the slow weights copy the parameter (pytorch_optimizer does so at construction)."""
        slow = bld.state("lookahead.slow")
        if variant is not None and variant[0]:
            bld.emit("copy_", None, slow, sig.param)

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """After a ``k``-th step: ``theta.lerp_(slow, 1 - alpha)``, ``slow.copy_(theta)``."""
        if variant is None or not variant[1]:
            return
        slow = "state.lookahead.slow"
        bld.emit("lerp_", None, sig.param, slow, slot=bld.const(1.0 - self.alpha))
        bld.emit("copy_", None, slow, sig.param)

    def describe(self) -> str:
        """Short formula."""
        return (
            f"every {self.k} steps theta = slow + {self.alpha:g} (theta - slow), slow = theta (slow starts at "
            f"theta_0): period-{self.k} parameter-side stage inside the loop"
        )

    def table_cells(self) -> dict[str, str]:
        """The parameter-side column."""
        return {"parameter side": f"Lookahead (k = {self.k}, alpha = {self.alpha:g}): period-{self.k} pull-back"}


# ----------------------------------------------------------------------------- update kinds


@dataclass(frozen=True)
class AsgdStepSize(Gain):
    """ASGD's ``eta_t / lr = (1 + lambd lr (t - 1))^-alpha`` (``eta_t`` in float32, as torch keeps it).

    Parameters
    ----------
    lambd : float
        torch's decay term ``lambd``.
    alpha : float
        torch's power ``alpha``.
    lr : float
        The learning rate at which :meth:`value` evaluates ``eta_t / lr``.

    References
    ----------
    ``torch.optim.ASGD`` (single-tensor ``_single_tensor_asgd``: ``new_eta =
    lr / ((1 + lambd * lr * step) ** alpha)``); Polyak and Juditsky (1992).

    Examples
    --------
    >>> from optfilters.parameter_stages import AsgdStepSize
    >>> g = AsgdStepSize(lambd=1.0, alpha=1.0, lr=0.5)
    >>> g.value(1), g.value(3), g.limit
    (1.0, 0.5, 0.0)
    """

    lambd: float = 1e-4
    alpha: float = 0.75
    lr: float = 1e-2

    def eta(self, t: int, lr: float) -> float:
        """``eta_t = lr / (1 + lambd lr (t - 1))^alpha`` rounded to float32 (torch's ``state['eta']``).

        Parameters
        ----------
        t : int
            The step, from 1.
        lr : float
            The learning rate (per step).

        Returns
        -------
        float
            ``eta_t``, the step size of step ``t`` (per step).
        """
        return _f32(lr / ((1 + self.lambd * lr * (t - 1)) ** self.alpha))

    def value(self, t: int) -> float:
        """``eta_t / lr`` at the stage's ``lr``.

        Parameters
        ----------
        t : int
            The step, from 1.

        Returns
        -------
        float
            The dimensionless factor ``eta_t / lr`` (1 when ``lr`` is 0).
        """
        return self.eta(t, self.lr) / self.lr if self.lr else 1.0

    @property
    def limit(self) -> float:
        """0 when ``eta_t`` decays (``lambd lr alpha > 0``), else 1."""
        return 0.0 if self.lambd * self.lr * self.alpha > 0.0 else 1.0

    def describe(self) -> str:
        """The formula."""
        return f"(1 + {self.lambd:g} lr (t-1))^-{self.alpha:g}"


@dataclass(frozen=True)
class AsgdEta(StepValue):
    """torch.optim.ASGD's ``eta`` (state ``"eta"``): ``lr`` at the first step, then ``lr / (1 + lambd lr t)^alpha``.

    Written at the end of step ``t`` with that step's ``lr``, ``lambd`` and
    ``alpha``, read by step ``t + 1`` (a 0-dim tensor of torch's scalar
    dtype: float32, float64 under a float64 default dtype).

    Parameters
    ----------
    lambd : float
        ASGD's decay term ``lambd`` (per step, times ``lr``).
    alpha : float
        ASGD's power ``alpha`` of the decay.

    Examples
    --------
    >>> from optfilters.parameter_stages import AsgdEta
    >>> eta = AsgdEta(lambd=1.0, alpha=1.0)
    >>> eta.start(0.5), eta.value(1, 0.5), eta.value(2, 0.5)
    (0.5, 0.3333333333333333, 0.25)
    """

    lambd: float = 1e-4
    alpha: float = 0.75
    key: ClassVar[str] = "eta"

    def start(self, lr: Any) -> Any:
        """``lr`` (torch creates ``eta`` from the group's lr at the first step)."""
        return lr

    def value(self, t: Any, lr: Any) -> Any:
        """``lr / (1 + lambd lr t)^alpha`` (Python double, torch's order of operations; 0 where the power overflows)."""
        try:
            return lr / ((1 + self.lambd * lr * t) ** self.alpha)
        except OverflowError:  # alpha = 1e308: the power is beyond the double range, eta underflows to 0
            return lr * 0.0


@dataclass(frozen=True)
class AsgdUpdate(Stage):
    """torch.optim.ASGD's step: ``theta *= 1 - lambd eta``, then ``theta -= eta d``.

    ``eta`` is ASGD's state (:class:`AsgdEta`): ``lr`` at the first step, then
    ``lr / (1 + lambd lr (t - 1))^alpha`` computed by torch at the end of the
    previous step with that step's ``lr``, ``lambd`` and ``alpha``, kept in
    torch's scalar dtype (float32, float64 under a float64 default dtype).
    So under a schedule ``eta`` lags it by one step, and a checkpoint carries
    it.  With constant hyperparameters ``eta_t = lr / (1 + lambd lr (t -
    1))^alpha`` in float32 (:class:`AsgdStepSize`, what the analysis uses).
    Linear in the gradient; its ``t -> infinity`` limit has a zero step when
    ``eta_t`` decays.

    Parameters
    ----------
    lambd, alpha : float
        torch's decay term and power.
    lr : float
        The learning rate the analysis uses for ``eta_t / lr`` (the step itself
        reads the carried ``eta``).

    Examples
    --------
    >>> import optfilters
    >>> opt = optfilters.get("asgd", lr=0.5, lambd=1.0, alpha=1.0).optimizer([1.0])
    >>> opt.step([0.0]).tolist(), opt.step([0.0]).tolist()   # leak 1 - eta_t: 0.5, then 1 - 0.5/1.5
    ([0.5], [0.3333333283662796])
    """

    lambd: float = 1e-4
    alpha: float = 0.75
    lr: float = 1e-2

    role: ClassVar[str] = "learning_rate"
    #: The step size varies (with the step or the gradient history): not a constant learning rate.
    is_constant: ClassVar[bool] = False

    @property
    def gain(self) -> AsgdStepSize:
        """``eta_t / lr`` (what the closed loop reads as the learning-rate factor)."""
        return AsgdStepSize(self.lambd, self.alpha, self.lr)

    @property
    def is_time_invariant(self) -> bool:  # type: ignore[override]
        """True only when ``eta_t`` is constant."""
        return self.lambd * self.alpha == 0.0

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """``param.mul_(1 - lambd * eta)``, ``param.add_(d, alpha=-eta)``, as torch.optim.ASGD (``eta`` the state)."""
        limit = self.gain.limit
        eta = (AsgdEta(self.lambd, self.alpha),)
        lambd = self.lambd
        if lambd != 0.0:
            leak = bld.carried_slot(eta, lambda t, lr, e: 1 - lambd * e, lambda lr: 1 - lambd * _f32(lr) * limit)
            bld.emit("mul_s_", None, sig.param, slot=leak)
        lc = sig.direction
        for reg, coef in lc.terms:
            fn, coef_limit = coef.fn, coef.limit

            def scalar(t: int, lr: float, e: float, fn: Any = fn) -> float:
                if fn is None:
                    return -e
                num, den = fn(t)
                return -(e * num) / den

            def scalar_limit(lr: float, c: float = coef_limit) -> float:
                return -(_f32(lr) * limit * c)

            slot = bld.carried_slot(eta, scalar, scalar_limit)
            if lc.den is not None:
                bld.emit("addcdiv_", None, sig.param, reg, lc.den, slot=slot)
            else:
                bld.emit("add_", None, sig.param, reg, slot=slot)

    def loop_decay(self) -> tuple[float, float]:
        """The leak as decoupled decay ``lambd * eta / lr`` (its limit)."""
        return (0.0, self.lambd * self.gain.limit)

    def describe(self) -> str:
        """Short formula."""
        return (
            f"theta *= 1 - {self.lambd:g} eta_t; theta -= eta_t d, eta_t = lr/(1 + {self.lambd:g} lr (t-1))^"
            f"{self.alpha:g} (float32)"
        )

    def describe_line(self) -> str:
        """The step size."""
        return f"learning rate: {self.describe()}"

    def table_cells(self) -> dict[str, str]:
        """The built-in schedule and the leak."""
        return {
            "learning-rate schedule": f"built in: eta_t = lr/(1 + lambd lr t)^{self.alpha:g}",
            "weight decay": f"leak theta *= 1 - lambd eta_t (lambd = {self.lambd:g})",
        }


#: Rprop's factor from the sign of ``g * g_prev`` (NaN stays NaN, as in torch's masked assignment).
def _rprop_factor(etaminus: float, etaplus: float) -> Op:
    def numpy(x: Any, s: Any = None) -> Any:
        f = np.sign(x)
        f[f > 0] = etaplus
        f[f < 0] = etaminus
        f[f == 0] = 1.0
        return f

    def torch_form(x: Any, s: Any = None) -> Any:  # out of place: sharded DTensors take no masked assignment
        f = x.sign()
        return f.masked_fill(f.gt(0), etaplus).masked_fill(f.lt(0), etaminus).masked_fill(f.eq(0), 1)

    ep, em = repr(float(etaplus)), repr(float(etaminus))
    return Op(
        f"rprop_factor({etaminus!r}, {etaplus!r})",
        numpy=numpy,
        torch=torch_form,
        c=lambda a, s: f"({a[0]} > 0 ? {ep} : ({a[0]} < 0 ? {em} : ({a[0]} == 0 ? 1.0 : {a[0]})))",
        triton=lambda a, s: (
            f"tl.where({a[0]} > 0, {ep}, tl.where({a[0]} < 0, {em}, tl.where({a[0]} == 0, 1.0, {a[0]})))"
        ),
    )


def _clamp(low: float, high: float) -> Op:
    lo, hi = repr(float(low)), repr(float(high))
    return Op(
        f"clamp({low!r}, {high!r})",
        numpy=lambda x, s=None: np.minimum(np.maximum(x, low), high),
        torch=lambda x, s=None: x.clamp(low, high),
        c=lambda a, s: f"fmin(fmax({a[0]}, {lo}), {hi})",
        triton=lambda a, s: f"tl.minimum(tl.maximum({a[0]}, {lo}), {hi})",
    )


def _zero_where_negative() -> Op:
    def torch_form(g: Any, p: Any, s: Any = None) -> Any:  # out of place (sharded DTensors)
        return g.masked_fill(p.lt(0), 0)

    def numpy(g: Any, p: Any, s: Any = None) -> Any:
        out = np.array(g, copy=True)
        out[p < 0] = 0.0
        return out

    return Op(
        "zero_where_negative",
        numpy=numpy,
        torch=torch_form,
        c=lambda a, s: f"({a[1]} < 0 ? 0.0 : {a[0]})",
        triton=lambda a, s: f"tl.where({a[1]} < 0, 0.0, {a[0]})",
    )


@dataclass(frozen=True)
class RpropUpdate(_FirstStepVaries):
    """torch.optim.Rprop's step: ``theta -= s * sign(d)`` with per-element step sizes ``s`` adapted on sign agreement.

    With ``p = d_t d_{t-1}`` (``d`` the direction, the gradient for Rprop):
    ``s *= etaplus`` where ``p > 0``, ``s *= etaminus`` where ``p < 0`` (and
    ``d`` is zeroed there, so the next step does not adapt), clamped to
    ``[step_size_min, step_size_max]``; ``s`` starts at ``lr`` (torch's only
    use of the learning rate).  In ``log s`` the adaptation is an integrator
    of the agreements, clipped: a nonlinear stage (sign, comparison, clamp),
    left out of the linearised analyses (the step frozen at ``lr``).

    Parameters
    ----------
    etaminus, etaplus : float
        ``0 < etaminus < 1 < etaplus``.
    step_size_min, step_size_max : float
        The clamp.

    References
    ----------
    Riedmiller and Braun, "A Direct Adaptive Method for Faster Backpropagation
    Learning: The RPROP Algorithm" (1993); ``torch.optim.Rprop`` (its
    ``_single_tensor_rprop``).

    Examples
    --------
    >>> import optfilters
    >>> opt = optfilters.get("rprop", lr=0.1).optimizer([0.0])
    >>> [round(float(opt.step([g])[0]), 6) for g in (1.0, 1.0, -1.0, -1.0)]   # steps 0.1, 0.12, flip: none, 0.06
    [-0.1, -0.22, -0.22, -0.16]
    """

    etaminus: float = 0.5
    etaplus: float = 1.2
    step_size_min: float = 1e-6
    step_size_max: float = 50.0

    role: ClassVar[str] = "learning_rate"
    #: The step size varies (with the step or the gradient history): not a constant learning rate.
    is_constant: ClassVar[bool] = False
    is_linear: ClassVar[bool] = False

    @property
    def key(self) -> str:
        """``rprop``."""
        return "rprop"

    @property
    def is_time_invariant(self) -> bool:  # type: ignore[override]
        """True (the step sizes start at ``lr``: a first-step initialisation, nonlinear anyway)."""
        return True

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """torch.optim.Rprop's single-tensor step (state ``rprop.prev`` and ``rprop.step_size``)."""
        d = bld.materialise(sig.direction)
        prev = bld.state("rprop.prev")
        size = bld.state("rprop.step_size")
        if variant:
            bld.emit("add_s_", None, size, slot=bld.slot(lambda t, lr: lr, lambda lr: lr))
        agreement = bld.new("mul", d, prev)
        factor = bld.new(_rprop_factor(self.etaminus, self.etaplus), agreement)
        bld.emit("mul_", None, size, factor)
        bld.emit("copy_", None, size, bld.new(_clamp(self.step_size_min, self.step_size_max), size))
        kept = bld.new(_zero_where_negative(), d, agreement)
        bld.emit("addcmul_", None, sig.param, bld.new("sign", kept), size, slot=bld.const(-1.0))
        bld.emit("copy_", None, prev, kept)

    def emit_linearised(self, bld: ProgramBuilder, sig: Signals, variant: Any, gain: str) -> None:
        """``theta -= lr * gain * d``: the sign and the adaptation replaced by a gain, the step frozen at ``lr``."""
        x = bld.materialise(sig.direction)
        sig.direction = LinComb.of(bld.new("mul", x, gain))
        _update(bld, sig, lambda t, lr: lr, lambda lr: lr)

    def frozen_gain(self, second_moment: ArrayLike, t: int | None = None) -> Any:
        """1: the sign and the adaptation left out (the step frozen at ``lr``)."""
        return np.ones_like(np.asarray(second_moment, dtype=np.float64))

    def linearisation_note(self, how: str, second_moment: float | None = None) -> str:
        """What the linearisation keeps."""
        if how == "tracking":
            return "linearised: Rprop's sign as the Gaussian gain sqrt(2/pi)/rms(d), its step frozen at lr"
        return "linearised: Rprop's sign and step adaptation left out (step frozen at its initial size lr)"

    def tracker(self, size: int) -> Tracker:
        """The Gaussian (Bussgang) gain of the sign, the step frozen at ``lr``."""
        return _BussgangTracker()

    def steady_dc(self, owner: str = "the model") -> None:
        """None: frozen at gain 1."""
        return None

    def describe(self) -> str:
        """Short formula."""
        return (
            f"theta -= s sign(g); s *= {self.etaplus:g} where g g_prev > 0, {self.etaminus:g} where < 0 "
            f"(and g = 0 there), clamped to [{self.step_size_min:g}, {self.step_size_max:g}]; s starts at lr"
        )

    def describe_line(self) -> str:
        """The update."""
        return f"update (Rprop): {self.describe()}"

    def nonlinear_description(self) -> str:
        """What it does."""
        return "takes the sign of g with per-element step sizes adapted on sign agreement (Rprop)"

    def table_cells(self) -> dict[str, str]:
        """Sign and adapted steps."""
        return {
            "gradient normalisation": "sign(g) with per-element steps adapted on sign agreement (Rprop)",
            "learning-rate schedule": "per-element step sizes from lr (x etaplus / etaminus)",
        }


class _BussgangTracker(Tracker):
    def gain(self, t: int, moments: Moments) -> FloatArray:
        rms = np.sqrt(np.maximum(moments.direction2, 1e-300))
        return np.asarray(math.sqrt(2.0 / math.pi) / rms, dtype=np.float64)


@dataclass(frozen=True)
class RelativeStepSize(Gain):
    """Adafactor's ``rho_t / lr = min(lr, 1/sqrt(t)) / lr`` (limit 0: the relative step decays as ``1/sqrt(t)``).

    Parameters
    ----------
    lr : float
        The learning rate at which :meth:`value` evaluates ``rho_t / lr``.

    References
    ----------
    Shazeer and Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory
    Cost" (ICML 2018), the relative step; ``torch.optim.Adafactor``.

    Examples
    --------
    >>> from optfilters.parameter_stages import RelativeStepSize
    >>> g = RelativeStepSize(lr=0.5)
    >>> g.value(1), g.value(16), g.limit
    (1.0, 0.5, 0.0)
    """

    lr: float = 1e-2

    @staticmethod
    def rho(t: int, lr: float) -> float:
        """``min(lr, 1 / t**0.5)`` (torch.optim.Adafactor's ``rho_t``).

        Parameters
        ----------
        t : int
            The step, from 1.
        lr : float
            The learning rate (per step).

        Returns
        -------
        float
            ``rho_t`` (per step).
        """
        return min(lr, 1 / (float(t) ** 0.5))

    def value(self, t: int) -> float:
        """``rho_t / lr``.

        Parameters
        ----------
        t : int
            The step, from 1.

        Returns
        -------
        float
            The dimensionless factor ``rho_t / lr`` (1 when ``lr`` is 0).
        """
        return self.rho(t, self.lr) / self.lr if self.lr else 1.0

    @property
    def limit(self) -> float:
        """0."""
        return 0.0

    def describe(self) -> str:
        """The formula."""
        return "min(lr, 1/sqrt(t))/lr"


def _param_scale(eps2: float) -> Op:
    def numpy(x: Any, s: Any = None) -> Any:
        return np.asarray(max(eps2, float(np.linalg.norm(x)) / (x.size**0.5)))

    def torch_form(x: Any, s: Any = None) -> Any:
        return max(eps2, x.norm(2).item() / (x.numel() ** 0.5))

    return Op("parameter_scale", numpy=numpy, torch=torch_form)


def _step_coefficient(d: float | None) -> Op:
    """``-(scale * rho) / max(1, RMS(u) / d)``: torch.optim.Adafactor's ``alpha / denom``, in its order."""

    def numpy(u: Any, scale: Any, s: float) -> Any:
        denom = 1.0 if d is None else max(1.0, float(np.linalg.norm(u)) / ((u.size**0.5) * d))
        return np.asarray(-(float(scale) * s) / denom)

    def torch_form(u: Any, scale: Any, s: float) -> Any:
        denom = 1.0 if d is None else max(1.0, u.norm(2).item() / ((u.numel() ** 0.5) * d))
        return -(float(scale) * s) / denom

    return Op("relative_step_coefficient", numpy=numpy, torch=torch_form)


def _add_scaled() -> Op:
    def torch_form(p: Any, u: Any, coef: Any, s: Any = None) -> Any:
        import torch

        return torch.add(p, u, alpha=coef)

    return Op("add_scaled", numpy=lambda p, u, coef, s=None: p + coef * u, torch=torch_form)


@dataclass(frozen=True)
class RelativeStep(Stage):
    """Adafactor's update: ``theta *= 1 - lr wd``, then ``theta -= max(eps2, RMS(theta)) min(lr, 1/sqrt(t)) u / c``.

    ``c = max(1, RMS(u) / d)`` clips the update's RMS at ``d`` (per tensor).
    torch.optim.Adafactor measures ``RMS(theta)`` (``||theta|| / sqrt(numel)``,
    per tensor) before the weight decay (:meth:`emit_before`) and computes the
    step's coefficient ``-(scale rho_t) / c`` in Python before one ``add_``; so
    does this stage.  Nonlinear (the step scales with the parameter, the clip
    saturates): linearised at the quadratic's minimum ``theta = 0``, where the
    scale is its floor ``eps2``, with the clip inactive (the noisy-quadratic
    model's tracking mode follows ``sqrt(mean E[theta^2])`` and the predicted
    RMS of ``u`` instead).  The relative step ``rho_t = min(lr, 1/sqrt(t))``
    decays as ``1/sqrt(t)``: its ``t -> infinity`` limit is 0.

    Parameters
    ----------
    eps2 : float
        Floor of the parameter scale.
    weight_decay : float
        Decoupled decay (``theta *= 1 - lr wd``, with ``lr`` itself).
    lr : float
        The learning rate the analysis uses for ``rho_t / lr``.
    d : float or None
        The clipping threshold of the update's RMS (None: no clip).

    Examples
    --------
    >>> import optfilters
    >>> opt = optfilters.get("adafactor", lr=0.1).optimizer([3.0, 4.0])
    >>> opt.step([1.0, 1.0]).round(6).tolist()   # RMS(theta) = sqrt(12.5), unit normalised step, rho_1 = 0.1
    [2.646447, 3.646447]
    """

    eps2: float = 1e-3
    weight_decay: float = 0.0
    lr: float = 1e-2
    d: float | None = 1.0

    role: ClassVar[str] = "learning_rate"
    #: The step size varies (with the step or the gradient history): not a constant learning rate.
    is_constant: ClassVar[bool] = False
    is_linear: ClassVar[bool] = False
    elementwise: ClassVar[bool] = False

    @property
    def key(self) -> str:
        """``relative_step``."""
        return "relative_step"

    @property
    def gain(self) -> RelativeStepSize:
        """``rho_t / lr`` (what the closed loop reads as the learning-rate factor)."""
        return RelativeStepSize(self.lr)

    @property
    def is_time_invariant(self) -> bool:  # type: ignore[override]
        """False: ``rho_t`` decays."""
        return False

    def emit_before(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """The parameter scale ``max(eps2, RMS(theta))`` as the step found the parameter."""
        sig.outputs["parameter_scale"] = LinComb.of(bld.new(_param_scale(self.eps2), sig.param))

    def _decay(self, bld: ProgramBuilder, sig: Signals) -> None:
        if self.weight_decay:
            lam = float(self.weight_decay)
            bld.emit("mul_s_", None, sig.param, slot=bld.slot(lambda t, lr: 1 - lr * lam, lambda lr: 1 - lr * lam))

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """Decay, then ``param.add_(u, alpha=-(scale rho_t) / c)``."""
        self._decay(bld, sig)
        scale = sig.outputs["parameter_scale"].terms[0][0]
        u = bld.materialise(sig.direction)
        rho = bld.slot(RelativeStepSize.rho, lambda lr: 0.0)
        coefficient = bld.new(_step_coefficient(self.d), u, scale, slot=rho)
        bld.emit("copy_", None, sig.param, bld.new(_add_scaled(), sig.param, u, coefficient))

    def emit_linearised(self, bld: ProgramBuilder, sig: Signals, variant: Any, gain: str) -> None:
        """Decay, then ``param += -rho_t * gain * d`` (the scale and the clip replaced by a gain)."""
        self._decay(bld, sig)
        x = bld.materialise(sig.direction)
        sig.direction = LinComb.of(bld.new("mul", x, gain))
        _update(bld, sig, RelativeStepSize.rho, lambda lr: 0.0)

    def frozen_gain(self, second_moment: ArrayLike, t: int | None = None) -> Any:
        """``eps2``: the parameter scale at the quadratic's minimum (the clip inactive)."""
        return np.full_like(np.asarray(second_moment, dtype=np.float64), self.eps2)

    def linearisation_note(self, how: str, second_moment: float | None = None) -> str:
        """What the linearisation keeps."""
        if how == "tracking":
            return (
                "linearised: Adafactor's parameter scale max(eps2, RMS(theta)) from the predicted E[theta^2], "
                "its RMS clip from the predicted E[u^2]"
            )
        return "linearised: Adafactor's parameter scale frozen at its floor eps2 (theta = 0), RMS clip inactive"

    def tracker(self, size: int) -> Tracker:
        """``max(eps2, sqrt(mean E[theta^2])) / max(1, sqrt(mean E[u^2]) / d)`` over the coordinates (one tensor)."""
        return _RelativeStepTracker(self.eps2, self.d)

    def steady_dc(self, owner: str = "the model") -> None:
        """None: frozen at ``eps2``."""
        return None

    def loop_decay(self) -> tuple[float, float]:
        """``(0, weight_decay)``: decoupled."""
        return (0.0, self.weight_decay)

    def describe(self) -> str:
        """Short formula."""
        clip = "" if self.d is None else f" / max(1, RMS(u)/{self.d:g}) (RMS clip)"
        text = f"theta -= max({self.eps2:g}, RMS(theta)) min(lr, 1/sqrt(t)) u{clip} (relative step)"
        if self.weight_decay:
            text = f"theta *= 1 - lr*{self.weight_decay:g}; " + text
        return text

    def describe_line(self) -> str:
        """The update."""
        return f"update: {self.describe()}"

    def nonlinear_description(self) -> str:
        """What it does."""
        clip = "" if self.d is None else " and clips the update's RMS"
        return f"scales the step by the parameter's RMS (relative step){clip}"

    def table_cells(self) -> dict[str, str]:
        """The relative step, the clip and decoupled decay."""
        cells = {
            "learning-rate schedule": "built in: max(eps2, RMS(theta)) min(lr, 1/sqrt(t)) (relative step)",
            "weight decay": "decoupled",
        }
        if self.d is not None:
            cells["gradient normalisation"] = f"RMS clip at d = {self.d:g} (per tensor)"
        return cells


class _RelativeStepTracker(Tracker):
    def __init__(self, eps2: float, d: float | None) -> None:
        self.eps2 = eps2
        self.d = d

    def gain(self, t: int, moments: Moments) -> FloatArray:
        scale = self.eps2
        if moments.param2 is not None:
            scale = max(self.eps2, math.sqrt(float(np.mean(moments.param2))))
        if self.d is not None:
            scale /= max(1.0, math.sqrt(float(np.mean(moments.direction2))) / self.d)
        return np.full_like(moments.grad2, scale)


# ----------------------------------------------------------------------------- wrappers


def _wrap(base: OptimizerModel, stage: Stage, name: str, hyperparameters: Mapping[str, Any]) -> OptimizerModel:
    """``base`` with ``stage`` appended after its update, named ``name``, with ``hyperparameters``."""
    from .catalogue import CATALOGUE
    from .model import OptimizerModel

    summary = CATALOGUE[name].summary if name in CATALOGUE else ""
    return OptimizerModel(
        name,
        hyperparameters,
        maximize=base.maximize,
        description=summary,
        pipeline=[*base.pipeline, stage],
    )


def lookahead(base: ModelLike = "sgd", k: int = 5, alpha: float = 0.5, **hyperparameters: Any) -> OptimizerModel:
    """Any optimizer wrapped in Lookahead (pytorch_optimizer's ``Lookahead(optimizer, k, alpha)``).

    Parameters
    ----------
    base : str, OptimizerModel, Stage or ArmaFilter
        The inner optimizer (resolved by :func:`optfilters.as_model`).
    k : int
        Inner steps per synchronisation.
    alpha : float
        Interpolation towards the fast weights.
    **hyperparameters
        The inner optimizer's hyperparameters.

    Returns
    -------
    OptimizerModel
        Named ``lookahead``; its hyperparameters are the inner one's plus
        ``base`` (its name), ``k`` and ``alpha``.

    Examples
    --------
    >>> import optfilters
    >>> model = optfilters.lookahead("adam", k=6, alpha=0.8, beta1=0.5)
    >>> [role for role, _ in model.stages], model.period, model.hyperparameters["beta1"]
    (['gradient', 'normaliser', 'learning_rate', 'lookahead'], 6, 0.5)
    """
    from .catalogue import as_model

    inner = as_model(base, **hyperparameters)
    stage = Lookahead(k, alpha)
    return _wrap(inner, stage, "lookahead", {"base": inner.name, **inner.hyperparameters, "k": k, "alpha": alpha})


def averaged(
    base: ModelLike = "sgd",
    average: str = "ema",
    *,
    decay: float = 0.999,
    start: int = 1,
    every: int = 1,
    **hyperparameters: Any,
) -> OptimizerModel:
    """Any optimizer with an average of its parameters kept as an output (``torch.optim.swa_utils.AveragedModel``).

    Parameters
    ----------
    base : str, OptimizerModel, Stage or ArmaFilter
        The optimizer (resolved by :func:`optfilters.as_model`).
    average : {"ema", "swa"}
        :class:`EmaAverage` (``decay``, ``start``) or :class:`SwaAverage`
        (``start``, ``every``).
    decay : float
        The EMA's decay.
    start : int
        The first averaged step.
    every : int
        SWA: average every ``every`` steps.
    **hyperparameters
        The optimizer's hyperparameters.

    Returns
    -------
    OptimizerModel
        Named ``ema`` or ``swa``; the averaged parameters are its
        :attr:`~optfilters.OptimizerModel.parameter_output`.

    Raises
    ------
    InvalidHyperparameterError
        When ``average`` is neither ``"ema"`` nor ``"swa"``, or a stage's
        hyperparameter is out of range (see :class:`EmaAverage`, :class:`SwaAverage`).

    Examples
    --------
    >>> import optfilters
    >>> model = optfilters.averaged("momentum", "ema", decay=0.9, momentum=0.5)
    >>> model.parameter_output, model.filters()["parameter_average"].poles.real.round(12).tolist()
    ('averaged', [0.9])
    """
    from .catalogue import as_model

    inner = as_model(base, **hyperparameters)
    if average == "ema":
        ema = EmaAverage(decay, start)
        return _wrap(inner, ema, "ema", {"base": inner.name, **inner.hyperparameters, "decay": decay, "start": start})
    if average == "swa":
        swa = SwaAverage(start, every)
        return _wrap(inner, swa, "swa", {"base": inner.name, **inner.hyperparameters, "start": start, "every": every})
    raise InvalidHyperparameterError(f"average must be 'ema' or 'swa', got {average!r}")
