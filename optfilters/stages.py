"""Optimizer stages: the stage-kind protocol, linear filters, normalisers, the sign, weight decay and the update.

Each stage is an immutable value of a *stage kind* (a subclass of
:class:`Stage`), and the kind owns everything about it: its step (one program
that is both the numpy reference and what the PyTorch bridge runs), its
linearisation about an operating point (the closed loop, the noisy-quadratic
model), what recording reads back, its rows in the summary table and its
description.  Analysis, bridge, closed loop, noisy quadratic, network
recording and the table ask the stage; none of them knows the kinds.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import InvalidFilterError, deprecated_alias, deprecated_attribute, renamed_keywords
from .filters import ArmaFilter, parallel
from .gains import Constant, Gain, RAdamRectification
from .program import ONE, Coef, LinComb, NumpyOps, Program, ProgramBuilder, Signals, bind, execute, run_numpy

__all__ = [
    "AdadeltaNormaliser",
    "FilterTerm",
    "LearningRate",
    "LinearStage",
    "LinearStageRunner",
    "Moments",
    "Normaliser",
    "PeakNormaliser",
    "RmsNormaliser",
    "SignNonlinearity",
    "Stage",
    "Tracker",
    "WeightDecay",
    "bias_correction",
    "bias_correction_gain",
    "classify_filter",
    "classify_stage",
    "transient_compensation",
    "transient_correction",
]

FloatArray = NDArray[np.float64]

#: The form of a one-pole filter's state: its previous output (torch.optim's buffers).
ONE_POLE = ("one-pole output",)


# ----------------------------------------------------------------------------- bias correction


def _one_pole(f: ArmaFilter) -> float | None:
    """The pole of ``b0 / (1 - p z^-1)``, else None."""
    if f.b.size == 1 and f.a.size == 2:
        return float(-f.a[1])
    return None


class _StepResponseCache:
    """Step responses of filters, extended on demand (for bias correction)."""

    def __init__(self) -> None:
        # keyed by the realisation: filters equal by coefficients run differently when their sections differ
        self._cache: dict[tuple[bytes, bytes, bytes], FloatArray] = {}

    def value(self, f: ArmaFilter, t: int) -> float:
        key = f._realisation_key()
        known = self._cache.get(key)
        if known is None or known.size < t:
            n = max(64, 1 << t.bit_length())
            known = f.step_response(n)
            self._cache[key] = known
        return float(known[t - 1])


_STEP_CACHE = _StepResponseCache()


def bias_correction(f: ArmaFilter, t: int) -> float:
    """The fraction ``s[t] / H(1)`` of its DC gain that the step response of ``f`` has reached at step ``t``.

    For a one-pole filter this is ``1 - p^t`` (torch.optim.Adam's
    ``bias_correction1 = 1 - beta1 ** step``), computed with that very
    expression; otherwise from the step response (the same correction for any
    filter with a finite, non-zero DC gain).

    Parameters
    ----------
    f : ArmaFilter
        A filter with a finite, non-zero DC gain.
    t : int
        Step count, ``t >= 1``.

    Returns
    -------
    float

    Raises
    ------
    InvalidFilterError
        If the DC gain is zero or infinite, or the step response is zero at ``t``.

    Examples
    --------
    >>> from optfilters import ArmaFilter
    >>> from optfilters.stages import bias_correction
    >>> bias_correction(ArmaFilter.ema(0.9), 2)
    0.18999999999999995
    """
    pole = _one_pole(f)
    if pole is not None and pole != 1.0:
        try:  # t may be an array or a tensor (the bridge evaluates coefficients on device): keep the operator
            return 1.0 - pole**t
        except OverflowError:  # an unstable pole at a large scalar t saturates to inf
            grows_positive = pole > 0 or int(t) % 2 == 0
            return -math.inf if grows_positive else math.inf
    dc = f.dc_gain
    if not math.isfinite(dc) or dc == 0.0:
        raise InvalidFilterError(f"bias correction needs a finite, non-zero DC gain, got {dc}")
    s = _STEP_CACHE.value(f, t)
    if s == 0.0:
        raise InvalidFilterError(f"bias correction is undefined at step {t}: the step response is 0")
    return s / dc


def bias_correction_gain(f: ArmaFilter, t: int) -> float:
    """The gain ``H(1) / s[t]`` that makes the step response of ``f`` equal its DC gain at step ``t``.

    ``s[t]`` is the step response at step ``t`` (``t = 1`` is the first
    sample).  For the unit-DC-gain EMA this is Adam's bias correction
    ``1 / (1 - beta^t)``, computed with that very expression.

    Parameters
    ----------
    f : ArmaFilter
        A filter with a finite, non-zero DC gain.
    t : int
        Step count, ``t >= 1``.

    Returns
    -------
    float

    Raises
    ------
    InvalidFilterError
        If the DC gain is zero or infinite, or the step response is zero at ``t``.

    Examples
    --------
    >>> from optfilters import ArmaFilter
    >>> from optfilters.stages import bias_correction_gain
    >>> bias_correction_gain(ArmaFilter.ema(0.9), 1)
    10.000000000000002
    """
    return 1.0 / bias_correction(f, t)


#: Former names (the field's term is bias correction), kept as deprecated aliases.
transient_correction = deprecated_alias(bias_correction, "transient_correction", "optfilters.stages")
transient_compensation = deprecated_alias(bias_correction_gain, "transient_compensation", "optfilters.stages")


def _correction_coef(f: ArmaFilter) -> Coef:
    """Bias correction gain ``1 / correction(t)`` (Adam's ``1 / (1 - beta^t)``); limit 1."""
    return Coef(lambda t: (1.0, bias_correction(f, t)), 1.0)


# ----------------------------------------------------------------------------- table text


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def classify_filter(f: ArmaFilter) -> str:
    """A short name for a filter's structure: identity, AR1 unit input/DC gain, summer, ARMA(p,q).

    Parameters
    ----------
    f : ArmaFilter
        The filter.

    Returns
    -------
    str
        The table's wording ("identity", "AR1, unit DC gain (pole 0.9)", ...).

    Examples
    --------
    >>> from optfilters import ArmaFilter
    >>> from optfilters.table import classify_filter
    >>> classify_filter(ArmaFilter([1.0], [1.0, -0.9]))
    'AR1, unit input gain (pole 0.9)'
    >>> classify_filter(ArmaFilter.ema(0.9))
    'AR1, unit DC gain (pole 0.9)'
    """
    b, a = f.b, f.a
    if a.size == 1:
        if b.size == 1:
            return "none" if b[0] == 1.0 else f"gain {_fmt(b[0])}"
        return f"FIR({b.size - 1})"
    if a.size == 2 and b.size == 1:
        pole = float(-a[1])
        if pole == 1.0:
            return "summer (integrator, marginal pole at 1)"
        if abs(b[0] - 1.0) < 1e-12:
            return f"AR1, unit input gain (pole {_fmt(pole)})"
        if abs(b[0] - (1.0 - pole)) < 1e-12:
            return f"AR1, unit DC gain (pole {_fmt(pole)})"
        return f"AR1, gain {_fmt(b[0])} (pole {_fmt(pole)})"
    zeros = f.zeros[abs(f.zeros) > 1e-12]
    poles = f.poles[abs(f.poles) > 1e-12]
    if f.order == 1:
        return f"ARMA(1,1) (pole {_fmt(float(poles[0].real))}, zero {_fmt(float(zeros[0].real))})"
    return f"ARMA({poles.size},{zeros.size}), DC gain {_fmt(f.dc_gain)}"


def classify_stage(stage: LinearStage) -> str:
    """Describe a (possibly time-varying) linear stage: its limit's structure plus bias-correction notes.

    Parameters
    ----------
    stage : LinearStage
        The stage.

    Returns
    -------
    str
        :func:`classify_filter` of its limit, with its bias-correction and time-variation notes.

    Examples
    --------
    >>> import optfilters
    >>> from optfilters.table import classify_stage
    >>> classify_stage(optfilters.get("adam").gradient)
    'AR1, unit DC gain (pole 0.9), bias correction'
    """
    text = classify_filter(stage.limit())
    if len(stage.terms) > 1 and not all(t.filter.is_fir for t in stage.terms[1:]):
        text += f" [sum of {len(stage.terms)} terms]"
    notes = []
    if stage.bias_corrected:
        notes.append("bias correction")
    if any(not t.gain.is_constant for t in stage.terms):
        notes.append("time-varying coefficients (t->inf limit shown)")
    if any(t.first_output_is_input for t in stage.terms):
        notes.append("starts at the first gradient")
    if any(t.initial_output for t in stage.terms):
        notes.append("non-zero initial state")
    return ", ".join([text, *notes])


# ----------------------------------------------------------------------------- the protocol


@dataclass
class Moments:
    """Predicted moments at a stage's input, per coordinate (the noisy-quadratic model's mean-field step).

    Attributes
    ----------
    grad2 : ndarray
        ``E[g_t^2]`` of the effective gradient.
    grad_mean : ndarray
        ``E[g_t]``.
    direction2 : ndarray
        ``E[d_t^2]`` of the direction entering the stage.
    param2 : ndarray or None
        ``E[theta_{t-1}^2]`` of the parameter as the step found it (for stages
        whose gain depends on the parameter, like Adafactor's relative step).

    Examples
    --------
    >>> import numpy as np, optfilters
    >>> from optfilters.stages import Moments
    >>> tracker = optfilters.get("rmsprop", alpha=0.5, eps=0.0).normaliser.tracker(1)
    >>> tracker.gain(1, Moments(np.array([4.0]), np.zeros(1), np.ones(1))).tolist()   # v = 0.5 * 4
    [0.7071067811865475]
    """

    grad2: FloatArray
    grad_mean: FloatArray
    direction2: FloatArray
    param2: FloatArray | None = None


class Tracker:
    """A nonlinear stage followed through the predicted moments (the noisy-quadratic model's ``tracking`` mode).

    :meth:`gain` is called once per step, in order, with the moments at the
    stage's input; it returns the gain that replaces the stage at that step
    and advances whatever the stage keeps (its second moment, run on
    ``E[g^2]``).

    Examples
    --------
    >>> import numpy as np, optfilters
    >>> from optfilters.stages import Moments
    >>> sign = optfilters.get("lion").nonlinearity.tracker(1)   # Bussgang: sqrt(2/pi) / rms(d)
    >>> round(float(sign.gain(1, Moments(np.ones(1), np.ones(1), np.array([4.0])))[0]), 6)
    0.398942
    """

    #: False when :meth:`gain` does not read the moments (a stage the linearisation leaves out, gain 1): the
    #: noisy-quadratic model then does not compute them, and can reuse its step matrices across steps.
    needs_moments: ClassVar[bool] = True

    def gain(self, t: int, moments: Moments) -> FloatArray:
        """The stage's gain per coordinate at step ``t``, advancing the tracked state by one step.

        Parameters
        ----------
        t : int
            The step count, ``t >= 1``; calls come once per step, in order.
        moments : Moments
            The predicted moments at the stage's input at step ``t``, each of
            shape ``(size,)`` (the ``size`` given to :meth:`Stage.tracker`).

        Returns
        -------
        ndarray, shape (size,)
            The gain that replaces the stage at step ``t`` (units of
            ``1 / gradient`` for a normaliser).

        Raises
        ------
        NotImplementedError
            In the base class: every tracker defines it.
        """
        raise NotImplementedError


class _FrozenTracker(Tracker):
    """The default mean-field gain: the stage frozen at the predicted ``E[g^2]`` of each step."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage

    def gain(self, t: int, moments: Moments) -> FloatArray:
        return np.asarray(self.stage.frozen_gain(moments.grad2, t), dtype=np.float64)


class Stage:
    """Base class of a stage kind: one class owns everything about its stage.

    A step is a sequence of stages acting on the :class:`~optfilters.program.Signals`
    of the step: the effective gradient ``g`` (what normalisers measure), the
    update direction ``d`` and the parameter.  A stage kind is a subclass,
    usually a frozen dataclass, and defines:

    Execution (required)
        :meth:`emit` appends the stage's operations to a
        :class:`~optfilters.program.ProgramBuilder`.  This one definition is the
        numpy reference executor (:class:`~optfilters.NumpyOptimizer`,
        :meth:`~optfilters.OptimizerModel.simulate`), what the PyTorch bridge
        runs on every path (single-tensor, ``foreach``, fused C kernels,
        ``torch.compile``) and, for linear stages, the noisy-quadratic model's
        state-space step.  Operations outside the built-in set are
        :class:`~optfilters.program.Op` values.  When the operations differ
        between steps (the first step, RAdam's regime), :attr:`varies` is True
        and :meth:`variant` says which form step ``t`` uses (None is the
        ``t -> infinity`` limit).
    Structure
        :attr:`role` (the slot it fills: ``weight_decay``, ``gradient``,
        ``normaliser``, ``post``, ``nonlinearity``, ``learning_rate``, or a new
        one), :attr:`key` (its name in state keys and filter names),
        :attr:`is_linear`, :attr:`is_time_invariant`, :meth:`linear_stages`
        (the linear filters inside it, by name) and :meth:`direction_filter`
        (the LTI limit it applies to the direction, linear stages only).
    Linearisation (nonlinear kinds)
        :meth:`frozen_gain` (the gain that replaces the stage frozen at a second
        moment ``v``: the closed loop's preconditioner ``P = 1 / (sqrt(v) + eps)``,
        which multiplies the direction), :meth:`linearisation_note`,
        :meth:`tracker` (the noisy-quadratic model's mean-field gain),
        :meth:`steady_dc` (its operating point at steady state) and
        :meth:`emit_linearised` (default: multiply the direction by the gain).
    Closed loop and recording
        :meth:`loop_decay` (weight decay's effect on the loop),
        :meth:`normaliser_denominator` (how to read the denominator
        ``D = sqrt(v) + eps``, torch.optim.Adam's ``denom``, back from the
        bridge's state; the preconditioner is its reciprocal).
    Description
        :meth:`describe`, :meth:`describe_line`, :meth:`table_cells` (its cells
        in the summary table).

    Only :meth:`emit` and :meth:`describe` are required; the defaults make a
    linear stage with no filters inside.

    Examples
    --------
    >>> from optfilters.stages import Stage, WeightDecay
    >>> isinstance(WeightDecay(0.1), Stage), WeightDecay(0.1).role
    (True, 'weight_decay')
    """

    #: The slot the stage fills (``gradient``, ``normaliser``, ``post``, ...).
    role: ClassVar[str] = "stage"
    #: True when the stage's output is a linear function of its inputs.
    is_linear: ClassVar[bool] = True
    #: True when each coordinate is processed on its own (False: Muon's orthogonalisation, Adafactor's factored
    #: statistics and RMS, which act on whole tensors).
    elementwise: ClassVar[bool] = True

    # ------------------------------------------------------------------ structure
    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise ValueError (one line) for a parameter shape the stage cannot take (default: every shape).

        Executors call it before a step moves any parameter (Muon's
        orthogonalisation takes matrices only).

        Parameters
        ----------
        shape : tuple of int
            The parameter's shape.

        Raises
        ------
        ValueError
            In kinds that refuse the shape (one line naming it); the default accepts every shape.
        """

    @property
    def key(self) -> str:
        """The stage's name in state keys (``<key>.<i>``) and filter names (default: its role)."""
        return self.role

    @property
    def is_time_invariant(self) -> bool:  # type: ignore[override]
        """True when the stage's recursion does not depend on the step count."""
        return True

    def linear_stages(self) -> dict[str, LinearStage]:
        """The linear (possibly time-varying) filters inside the stage, by name.

        Returns
        -------
        dict of str to LinearStage
            E.g. ``{"second_moment": ...}`` for an RMS normaliser, the stage
            itself for a linear stage; empty (the default) when it has none.
        """
        return {}

    def filters(self) -> dict[str, ArmaFilter]:
        """The LTI limits of :meth:`linear_stages`, by name.

        Returns
        -------
        dict of str to ArmaFilter
            Each filter's ``t -> infinity`` limit (bias corrections at 1),
            renamed to its key; transfer functions in ``z^-1``, one step per
            sample.
        """
        return {name: stage.limit().renamed(name) for name, stage in self.linear_stages().items()}

    def direction_filter(self) -> ArmaFilter | None:
        """The LTI limit the stage applies to the direction.

        Returns
        -------
        ArmaFilter or None
            The filter in ``z^-1`` (one step per sample) that a linear stage
            applies to the update direction; None (the default) when the stage
            applies no filter (normalisers, weight decay, the learning rate).
        """
        return None

    def with_role(self, role: str) -> Stage:
        """This stage filling the slot ``role``.

        Parameters
        ----------
        role : str
            The slot (``gradient``, ``normaliser``, ``post``, ... or a new one).

        Returns
        -------
        Stage
            A stage of the same kind in that slot; kinds whose role is fixed by
            their kind (the default) return the stage itself.
        """
        return self

    # ------------------------------------------------------------------ execution
    @property
    def varies(self) -> bool:
        """True when the stage's operations differ between steps (see :meth:`variant`)."""
        return False

    def variant(self, t: int | None) -> Hashable:
        """Which form of the stage's operations step ``t`` uses.

        Executors build one program per distinct variant (and cache it), so
        the value must be hashable and equal for steps that run the same
        operations.

        Parameters
        ----------
        t : int or None
            The step count (``t >= 1``); None is the ``t -> infinity`` limit.

        Returns
        -------
        Hashable
            Passed back to :meth:`emit` as ``variant``; None (the default) for
            stages whose operations never change (:attr:`varies` False).
        """
        return None

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """Append the stage's operations to ``bld``, reading and updating the signals ``sig``.

        This one definition is the numpy reference step, the bridge's step on
        every path and, for linear stages, the noisy-quadratic model's
        state-space step.

        Parameters
        ----------
        bld : ProgramBuilder
            The program of the step being built: declare state with
            :meth:`~optfilters.program.ProgramBuilder.state`, append
            operations with :meth:`~optfilters.program.ProgramBuilder.emit` /
            :meth:`~optfilters.program.ProgramBuilder.new`.
        sig : Signals
            The step's signals so far: read ``sig.grad``, ``sig.direction``,
            ``sig.param``, ``sig.outputs``; replace ``sig.direction`` with the
            stage's output (and record it in ``sig.outputs[self.key]``).
        variant : Hashable, optional
            The value of :meth:`variant` for the step (None: the
            ``t -> infinity`` form).

        Raises
        ------
        NotImplementedError
            In the base class: every stage kind defines it.
        """
        raise NotImplementedError(f"{type(self).__name__} does not define emit()")

    def emit_before(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """Operations at the very start of the step, before any stage's :meth:`emit` (default: none).

        For what must see the parameter as the step found it: Lookahead's slow
        weights start at the initial parameter, Adafactor's relative step
        measures the parameter before the weight decay.  In the linearised step
        of the noisy-quadratic model only linear stages run it.

        Parameters
        ----------
        bld : ProgramBuilder
            The program of the step being built.
        sig : Signals
            The signals at the start of the step (``sig.param`` is the parameter
            before the update).
        variant : Hashable, optional
            The value of :meth:`variant` for the step.
        """

    @property
    def period(self) -> int | None:
        """The period ``k`` of a periodically time-varying stage (its operations depend on ``t mod k``), else None.

        The closed loop and the noisy-quadratic model analyse models with a
        period through the product of one period's transition matrices (the
        monodromy matrix), not through an LTI limit.
        """
        return None

    @property
    def parameter_output(self) -> str | None:
        """The state key of a parameter estimate the stage keeps besides the parameter (averaged weights), or None.

        Trajectories (:meth:`optfilters.OptimizerModel.simulate`), the
        noisy-quadratic prediction and the bridge's helpers
        (:mod:`optfilters.torch.averaged`) report it as the model's averaged
        parameters.
        """
        return None

    def emit_linearised(self, bld: ProgramBuilder, sig: Signals, variant: Any, gain: str) -> None:
        """The stage in the linearised step: linear stages run as they are, nonlinear ones multiply by ``gain``.

        Parameters
        ----------
        bld : ProgramBuilder
            The linearised program being built (``bld.linearised`` True).
        sig : Signals
            The step's signals so far; ``sig.direction`` is replaced.
        variant : Hashable
            The value of :meth:`variant` for the step.
        gain : str
            The register of the stage's gain per coordinate (from
            :meth:`frozen_gain` or the :meth:`tracker`), the same shape as the
            direction.
        """
        if self.is_linear:
            self.emit(bld, sig, variant)
            return
        x = bld.materialise(sig.direction)
        sig.direction = LinComb.of(bld.new("mul", x, gain))

    # ------------------------------------------------------------------ evaluation point
    @property
    def has_eval_rule(self) -> bool:
        """True when the parameters to evaluate differ from the stored ones (Schedule-Free's average)."""
        return False

    def emit_eval(self, bld: ProgramBuilder, sig: Signals, mode: str) -> None:
        """Move the parameter to the evaluation point (``mode="eval"``) or back (``"train"``); default: nothing.

        Stages with :attr:`has_eval_rule` append the operations that map the
        stored parameter (and their state) to the point at which the model is
        evaluated, and back (``FilterOptimizer.eval()`` / ``train()``).

        Parameters
        ----------
        bld : ProgramBuilder
            The (separate) program of the switch being built.
        sig : Signals
            Its signals; ``sig.param`` is the stored parameter.
        mode : {"eval", "train"}
            The direction of the switch.
        """

    # ------------------------------------------------------------------ linearisation
    def frozen_gain(self, second_moment: ArrayLike, t: int | None = None) -> Any:
        """The gain that replaces the stage frozen at second moment ``v`` (elementwise; 1 for linear stages).

        The closed loop's preconditioner: with the stage frozen, the loop sees
        ``lr * gain * h`` instead of ``lr * h`` for a curvature ``h``.

        Parameters
        ----------
        second_moment : float or array_like
            ``v``: the stage's second-moment statistic per coordinate (``E[g^2]``
            scaled by the filter's DC gain; units of a squared gradient).
        t : int or None, optional
            The step count; None (default) is the ``t -> infinity`` limit
            (RAdam's rectification ``r_t`` needs ``t``).

        Returns
        -------
        ndarray
            The gain per coordinate, the shape of ``second_moment`` (units of
            ``1 / gradient`` for normalisers, dimensionless otherwise); ones
            (the default) for linear stages.
        """
        return np.ones_like(np.asarray(second_moment, dtype=np.float64))

    def linearisation_note(self, how: str, second_moment: float | None = None) -> str | None:
        """What linearising the stage means, for labels of plots and results.

        Parameters
        ----------
        how : {"frozen", "frozen_given", "steady", "tracking"}
            ``"frozen"`` at ``second_moment`` (the closed loop), or the
            noisy-quadratic model's modes.
        second_moment : float, optional
            The ``v`` the stage is frozen at (``"frozen"``).

        Returns
        -------
        str or None
            One line; None for linear stages, which are not linearised.
        """
        if self.is_linear:
            return None
        return f"linearised: {self.key} frozen at a gain ({how})"

    def tracker(self, size: int) -> Tracker | None:
        """The mean-field linearisation of the stage (the noisy-quadratic model's ``tracking`` mode).

        Parameters
        ----------
        size : int
            The number of coordinates tracked.

        Returns
        -------
        Tracker or None
            A fresh :class:`Tracker` (default: the stage frozen at each step's
            predicted ``E[g^2]`` through :meth:`frozen_gain`); None for linear
            stages.
        """
        if self.is_linear:
            return None
        return _FrozenTracker(self)

    def gaussian_closure(self, mean: Any, std: Any) -> tuple[FloatArray, FloatArray, FloatArray] | None:
        """The statistical linearisation of a memoryless stage for a Gaussian input ``N(mean, std^2)``.

        With it the stage's output is ``E[f] + gain (x - mean) + e``, ``e``
        uncorrelated with the state.

        Parameters
        ----------
        mean : float or array_like
            The input's mean per coordinate (units of the direction).
        std : float or array_like
            The input's standard deviation per coordinate (``>= 0``), broadcast
            with ``mean``.

        Returns
        -------
        tuple of ndarray or None
            ``(E[f(x)], E[f'(x)], Var[f(x)])`` elementwise (the middle one the
            random-input gain, Bussgang's theorem), or None (the default) when
            the stage has none: the noisy-quadratic model then uses its
            :meth:`tracker`'s gain.

        References
        ----------
        A. Gelb and W. E. Vander Velde, *Multiple-Input Describing Functions
        and Nonlinear System Design*, McGraw-Hill, 1968 (the random-input
        describing function).
        """
        return None

    def scalar_closure(self) -> Callable[[float, float], tuple[float, float, float]] | None:
        """:meth:`gaussian_closure` for one coordinate, on Python floats (a long scalar recursion calls it per step).

        Returns
        -------
        callable or None
            ``f(mean, std) -> (E[f(x)], E[f'(x)], Var[f(x)])`` as floats, the
            same numbers as :meth:`gaussian_closure`; None when the stage has
            no closure.  The default wraps :meth:`gaussian_closure`.
        """
        if self.gaussian_closure(np.zeros(1), np.ones(1)) is None:
            return None

        def closure(mean: float, std: float) -> tuple[float, float, float]:
            found = self.gaussian_closure(np.array([mean]), np.array([std]))
            assert found is not None
            expected, gain, variance = (float(np.asarray(x).ravel()[0]) for x in found)
            return expected, gain, variance

        return closure

    def steady_dc(self, owner: str = "the model") -> float | None:
        """``v / E[g^2]`` at steady state: the self-consistent operating point of the linearisation.

        Parameters
        ----------
        owner : str, optional
            The model's name, for error messages.

        Returns
        -------
        float or None
            The ratio of the stage's statistic ``v`` to the gradient's second
            moment at steady state (the second-moment filter's DC gain for an
            RMS normaliser); 1.0 (the default) for nonlinear stages, None for
            linear stages, in which ``v`` plays no part.

        Raises
        ------
        ValueError
            In kinds without a steady state (a summing second moment, such as
            Adagrad's, whose DC gain is infinite); the message names ``owner``.
        """
        return None if self.is_linear else 1.0

    # ------------------------------------------------------------------ closed loop and recording
    def loop_decay(self) -> tuple[float, float]:
        """The weight decay the stage adds to the closed loop.

        Returns
        -------
        tuple of float
            ``(coupled, decoupled)``: the coefficient ``lambda`` of an L2 term
            added to the gradient (``g + lambda theta``) and the one of a decay
            applied to the parameter (``theta (1 - lr lambda)`` per step);
            ``(0.0, 0.0)`` for most stages.
        """
        return (0.0, 0.0)

    def loop_factor(self, lr: float) -> float:
        """The factor ``f`` by which a stage after the update multiplies the parameter (1 for most).

        The closed loop is then ``theta_t = f (theta_{t-1} - lr d_t)``: the
        plant's pole and the loop gain are both multiplied by ``f``.

        Parameters
        ----------
        lr : float
            The learning rate (per step).

        Returns
        -------
        float
            The dimensionless factor ``f``; 1.0 (the default) for stages that
            do not act on the parameter.
        """
        return 1.0

    def normaliser_denominator(self, owner: str) -> tuple[tuple[str, ...], Callable[[Sequence[Any], int, Any], Any]]:
        """The state entries holding the stage's statistics and the denominator ``D(values, t, ops)``.

        ``D`` is what the update divides the direction by (elementwise),
        torch.optim.Adam's ``denom = sqrt(v_hat) + eps``; the preconditioner
        in the usual sense (Kingma & Ba 2015, Algorithm 1: the update is
        ``-lr P m_hat`` with ``P = diag(1 / (sqrt(v_hat) + eps))``) is its
        reciprocal, as :attr:`optfilters.closed_loop.ClosedLoop.preconditioner`
        and :meth:`frozen_gain` use it.

        Parameters
        ----------
        owner : str
            The optimizer's name, for error messages.

        Returns
        -------
        keys : tuple of str
            The bridge's state keys (``"second_moment.0"``, ...) whose values
            ``D`` reads, in order.
        denominator : callable
            ``D(values, t, ops)``: from the values of ``keys`` (numpy arrays,
            or tensors with the bridge's ``ops``; ``ops`` defaults to
            :class:`~optfilters.program.NumpyOps`) at step ``t`` (1-based),
            the denominator, shaped like the parameter.

        Raises
        ------
        ValueError
            When the stage has no denominator to read back (this default),
            or its statistics are not held in a readable form.
        """
        legacy = getattr(type(self), "preconditioner", None)
        if legacy is not None and legacy is not Stage.preconditioner:  # a kind written before the rename
            warnings.warn(
                f"{type(self).__name__}.preconditioner is deprecated; define normaliser_denominator "
                "(same meaning: the denominator D)",
                DeprecationWarning,
                stacklevel=2,
            )
            return legacy(self, owner)  # type: ignore[no-any-return]
        raise ValueError(
            f"preconditioned sharpness and frozen gains need an RMS or peak normaliser; {owner} has "
            f"{type(self).__name__}, whose denominator cannot be read back"
        )

    def preconditioner(self, owner: str) -> tuple[tuple[str, ...], Callable[[Sequence[Any], int, Any], Any]]:
        """Deprecated name of :meth:`normaliser_denominator` (it returns the denominator, not ``1 / D``).

        Parameters
        ----------
        owner : str
            The optimizer's name, for error messages.

        Returns
        -------
        tuple
            What :meth:`normaliser_denominator` returns.
        """
        warnings.warn(
            "optfilters.stages.Stage.preconditioner is deprecated; use normaliser_denominator (same behaviour: "
            "it returns the denominator D = sqrt(v) + eps; the preconditioner is 1 / D)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.normaliser_denominator(owner)

    # ------------------------------------------------------------------ description
    def describe(self) -> str:
        """A short formula of what the stage does.

        Returns
        -------
        str
            One line, e.g. ``"divide by sqrt(v) + eps, v = ... of g^2"``.

        Raises
        ------
        NotImplementedError
            In the base class: every stage kind defines it.
        """
        raise NotImplementedError

    def describe_line(self) -> str | None:
        """The stage's line in :meth:`OptimizerModel.describe`.

        Returns
        -------
        str or None
            ``"<role>: <describe()>"`` by default; None to leave the stage out.
        """
        return f"{self.role}: {self.describe()}"

    def nonlinear_description(self) -> str:
        """What the stage does, for lists of the nonlinear parts of a model.

        Returns
        -------
        str
            One line (default: :meth:`describe`).
        """
        return self.describe()

    def table_cells(self) -> dict[str, str]:
        """The stage's cells in the summary table.

        Returns
        -------
        dict of str to str
            Cell text by column name (one of :data:`optfilters.table.COLUMNS`);
            the table joins the cells of all stages per column.  Empty by
            default.
        """
        return {}


# ----------------------------------------------------------------------------- filter terms


@dataclass(frozen=True)
class FilterTerm:
    """One term ``c(t) * F(x)`` of a :class:`LinearStage`, and its realisation.

    Parameters
    ----------
    filter : ArmaFilter
        The LTI filter, run from rest unless an initialisation option says otherwise.
    gain : Gain, optional
        Time-varying coefficient ``c(t)`` (default 1).
    bias_corrected : bool, optional
        Apply Adam's bias correction: multiply by ``H(1) / s[t]``.  For the EMA this is ``1 / (1 - beta^t)``.
    first_output_is_input : bool, optional
        At the first step the output equals the input (torch's SGD momentum
        buffer and Grokfast's EMA start at the first gradient).  Needs an
        all-pole filter (``len(b) == 1``).
    initial_output : float, optional
        Start the recursion as though the previous output were this value
        (Adagrad's ``initial_accumulator_value``).  Needs a one-pole all-pole
        filter, or a memoryless one (``b = [k]``, ``a = [1]``: an EMA with
        pole 0), whose output ``k x`` never reads the previous output: there
        the value has no effect and is kept as 0 (Yogi with ``beta1 = 0``).

    Notes
    -----
    The realisation (:meth:`emit`, chosen from the filter's shape) is the one
    used everywhere, numpy reference and bridge alike:

    * a constant ``b = [k]``: no state, ``k`` joins the term's coefficient;
    * a one-pole all-pole filter ``b0 / (1 - p z^-1)`` keeps its previous output
      as state (torch.optim's buffers; one step late, ``b1 z^-1 / (1 - p z^-1)``,
      it outputs that state before updating it, as Lion reads its ``m``) and runs
      in torch.optim's own form:
      ``lerp`` for the unit-DC-gain EMA (``b0 = 1 - p``), ``mul_``/``add_`` for
      heavy-ball momentum, ``mul_``/``addcmul_`` for second moments and
      ``add_``/``addcmul_`` for a summer (``p = 1``).  Where rounding ``p`` to
      the state's dtype would move the pole by more than ``1e-6 (1 - p)``
      (float32 state with ``p`` close to 1), the update is written in delta form
      ``y += b0 x - (1 - p) y`` (or ``lerp`` with weight ``1 - p``);
    * any other IIR filter runs as second-order sections (one up to order 2,
      ``ArmaFilter.to_sos()`` above), each in transposed direct form II over the
      delta operator ``delta^-1 = z^-1 / (1 - z^-1)``, which stays accurate in
      float32 for poles near ``z = 1``;
    * FIR filters, and all-pole filters whose first output is their input, run
      in plain transposed direct form II.

    Examples
    --------
    >>> from optfilters import ArmaFilter
    >>> from optfilters.stages import FilterTerm
    >>> FilterTerm(ArmaFilter.ema(0.9), bias_corrected=True).is_time_invariant
    False
    """

    filter: ArmaFilter
    gain: Gain = field(default_factory=lambda: Constant(1.0))
    bias_corrected: bool = False
    first_output_is_input: bool = False
    initial_output: float = 0.0
    compensated = deprecated_attribute("bias_corrected", "compensated", "optfilters.stages.FilterTerm")

    def __post_init__(self) -> None:
        if (self.first_output_is_input or self.initial_output != 0.0) and self.filter.b.size != 1:
            raise InvalidFilterError("first-step initialisation needs an all-pole filter (len(b) == 1)")
        if self.initial_output != 0.0 and self.filter.a.size == 1:
            # memoryless (b = [k], a = [1]): y_t = k x_t never reads y_{t-1}, so a previous output changes nothing
            object.__setattr__(self, "initial_output", 0.0)
        if self.initial_output != 0.0 and _one_pole(self.filter) is None:
            raise InvalidFilterError("initial_output needs a one-pole filter b0 / (1 - p z^-1)")
        if self.bias_corrected:
            dc = self.filter.dc_gain
            if not math.isfinite(dc) or dc == 0.0:
                raise InvalidFilterError(f"bias correction needs a finite, non-zero DC gain, got {dc}")

    @property
    def is_time_invariant(self) -> bool:
        """True when the term is an LTI filter run from rest."""
        return (
            self.gain.is_constant
            and not self.bias_corrected
            and not self.first_output_is_input
            and self.initial_output == 0.0
        )

    @property
    def can_bias_correct(self) -> bool:
        """True when bias correction ``H(1) / s[t]`` is defined for this term and changes it.

        The correction undoes the start from rest (zero state), so it needs a
        finite, non-zero DC gain; a term that starts from its first input
        (``first_output_is_input``: torch's SGD buffer with dampening,
        Grokfast's EMA) or from a given previous output (``initial_output``)
        does not start from rest and is used as it is; nor is a term whose
        first output is 0 (a leading delay), where ``s[1] = 0``.
        """
        if self.first_output_is_input or self.initial_output != 0.0:
            return False
        if self.filter.b[0] == 0.0:  # a term one step late (Lion's m read before its update): s[1] = 0
            return False
        dc = self.filter.dc_gain
        return math.isfinite(dc) and dc != 0.0

    can_compensate = deprecated_attribute("can_bias_correct", "can_compensate", "optfilters.stages.FilterTerm")

    @renamed_keywords("optfilters.stages.FilterTerm.coefficient", compensate="bias_correction")
    def coefficient(self, t: int, bias_correction: bool | None = None) -> float:
        """``c(t)``, times the bias-correction gain when applied.

        ``bias_correction`` None follows :attr:`bias_corrected`; True corrects
        wherever that is defined; False never does.

        Parameters
        ----------
        t : int
            The step count, ``t >= 1``.
        bias_correction : bool or None, optional
            None follows :attr:`bias_corrected`; True corrects wherever that
            is defined; False never does (old name ``compensate``, deprecated).

        Returns
        -------
        float
            The dimensionless coefficient of the term's filter output at step
            ``t`` (bias correction ``H(1) / s[t]``, ``1 / (1 - beta^t)`` for
            the EMA, included when applied).
        """
        c = self.gain.value(t)
        apply = self.bias_corrected if bias_correction is None else (bias_correction and self.can_bias_correct)
        if apply:
            c *= bias_correction_gain(self.filter, t)
        return c

    def limit(self) -> ArmaFilter:
        """The ``t -> infinity`` LTI filter ``c(inf) * F`` (the bias correction tends to 1).

        Returns
        -------
        ArmaFilter
            The term's filter scaled by its gain's limit.
        """
        return self.filter.scaled(self.gain.limit)

    def describe(self) -> str:
        """Short text: the gain and the filter.

        Returns
        -------
        str
            ``"<gain> * <filter>"`` with the initialisation options noted.
        """
        parts = []
        if not (self.gain.is_constant and self.gain.limit == 1.0):
            parts.append(self.gain.describe())
        parts.append(f"{self.filter!r}")
        text = " * ".join(parts)
        if self.bias_corrected:
            text += " (bias-corrected)"
        if self.first_output_is_input:
            text += " (first output = first input)"
        if self.initial_output:
            text += f" (initial output {self.initial_output:g})"
        return text

    # ------------------------------------------------------------------ realisation
    @renamed_keywords("optfilters.stages.FilterTerm.output_coef", compensate="bias_correction")
    def output_coef(self, extra: Coef = ONE, bias_correction: bool | None = None) -> Coef:
        """The coefficient of the term's raw output: ``c(t)`` times ``extra`` (times the bias correction if applied).

        Parameters
        ----------
        extra : Coef, optional
            A further factor (the constant of a stateless term, see :meth:`emit`).
        bias_correction : bool or None, optional
            As in :meth:`coefficient`.

        Returns
        -------
        Coef
            The coefficient as the step program computes it (torch.optim's
            order: the bias correction divides last).
        """
        coef = self.gain.coef().times(extra)
        apply = self.bias_corrected if bias_correction is None else (bias_correction and self.can_bias_correct)
        if apply:
            coef = coef.times(_correction_coef(self.filter))
        return coef

    def absorbs(self, bld: ProgramBuilder) -> bool:
        """True when the term takes a scaled (or divided) input in its own update (``buf.mul_().addcdiv_()``).

        That is a one-pole filter in ``mul_``/``add_`` form: not the EMA (which
        runs as ``lerp``), not a summer, not started at its input, with a pole
        the state's dtype holds accurately.

        Parameters
        ----------
        bld : ProgramBuilder
            The program being built (its state dtype decides accuracy).

        Returns
        -------
        bool
            True when :meth:`emit_absorbing` applies.
        """
        f = self.filter
        if f.a.size != 2 or f.b.size != 1 or self.first_output_is_input:
            return False
        pole = float(-f.a[1])
        return pole != 1.0 and float(f.b[0]) != 1.0 - pole and not bld.is_coarse(pole)

    def emit_absorbing(self, bld: ProgramBuilder, lc: LinComb, key: str) -> LinComb:
        """``y = p y + b0 * c * x (/ den)`` for a one-term input ``lc`` (see :meth:`absorbs`).

        Parameters
        ----------
        bld : ProgramBuilder
            The program being built.
        lc : LinComb
            The input: one register with a coefficient ``c``, maybe divided by ``den``.
        key : str
            The state key of the term's buffer ``y``.

        Returns
        -------
        LinComb
            ``c(t) y``: the buffer with the term's output coefficient.
        """
        f = self.filter
        reg, coef = lc.terms[0]
        y = bld.state(key, self.initial_output, form=ONE_POLE)
        bld.emit("mul_s_", None, y, slot=bld.const(float(-f.a[1])))
        slot = bld.coef_slot(coef, float(f.b[0]))
        if lc.den is not None:
            bld.emit("addcdiv_", None, y, reg, lc.den, slot=slot)
        else:
            bld.emit("add_", None, y, reg, slot=slot)
        return LinComb([(y, self.output_coef())])

    def emit(
        self, bld: ProgramBuilder, x: str, key: str, square: bool = False, first: bool = False
    ) -> tuple[str, Coef]:
        """Advance the term on ``x`` (or ``x**2``) in its realisation (see the class Notes).

        Parameters
        ----------
        bld : ProgramBuilder
            The program being built.
        x : str
            The input register.
        key : str
            The prefix of the term's state keys.
        square : bool, optional
            Filter ``x * x`` instead of ``x``.
        first : bool, optional
            True at the first step (where :attr:`first_output_is_input` applies).

        Returns
        -------
        register : str
            The register of the raw filter output (before ``c(t)``).
        factor : Coef
            A constant factor of the output (a stateless term's ``b0``;
            :data:`~optfilters.program.ONE` otherwise), for :meth:`output_coef`.
        """
        f = self.filter
        b, a = f.b, f.a
        if a.size == 1 and b.size == 1 and not (self.first_output_is_input and first):
            # A constant: no state, the constant joins the coefficient.
            return (bld.square(x) if square else x), Coef.constant(float(b[0]))
        if a.size == 2 and b.size == 1:
            return self._one_pole(bld, x, key, square, first), ONE
        if a.size == 2 and b.size == 2 and b[0] == 0.0 and not self.first_output_is_input:
            # A one-pole filter one step late, b1 z^-1 / (1 - p z^-1): the reference's buffer of the one-pole
            # filter, read before its update (Lion's m in sign(beta1 m + (1 - beta1) g), then m's update).
            y = bld.state(key, form=ONE_POLE)
            previous = bld.new("clone", y)
            self._one_pole_update(bld, y, x, float(b[1]), float(-a[1]), square)
            return previous, ONE
        source = bld.square(x) if square else x
        if f.is_fir or self.first_output_is_input:
            return _direct_form(bld, b, a, source, key, self.first_output_is_input and first, ("direct",)), ONE
        sections = [(b, a)] if f.order <= 2 else [(s[:3], s[3:]) for s in f.to_sos()]
        y = source
        for k, (bs, as_) in enumerate(sections):
            form = ("sections", f.order, len(sections), k)
            if np.all(as_[1:] == 0.0):  # a pure FIR section (a delay)
                y = _direct_form(bld, bs / as_[0], np.ones(1), y, f"{key}.s{k}", False, form)
            else:
                y = _delta_section(bld, _section(bs, as_), y, f"{key}.s{k}", form)
        return y, ONE

    def _one_pole(self, bld: ProgramBuilder, x: str, key: str, square: bool, first: bool) -> str:
        """``y = p y + b0 x`` with the previous output ``y`` as state (see the class notes)."""
        f = self.filter
        b0, pole = float(f.b[0]), float(-f.a[1])
        y = bld.state(key, self.initial_output, form=ONE_POLE)
        if self.first_output_is_input and first:
            bld.emit("copy_", None, y, bld.square(x) if square else x)
            return y
        self._one_pole_update(bld, y, x, b0, pole, square)
        return y

    @staticmethod
    def _one_pole_update(bld: ProgramBuilder, y: str, x: str, b0: float, pole: float, square: bool) -> None:
        """``y = p y + b0 x`` (or ``x**2``) in place, in torch.optim's forms (see the class notes)."""
        if pole == 1.0:
            if square:
                bld.emit("addcmul_", None, y, x, x, slot=bld.const(b0))
            else:
                bld.emit("add_", None, y, x, slot=bld.const(b0))
            return
        ema = b0 == 1.0 - pole
        if ema and not square:
            bld.emit("lerp_", None, y, x, slot=bld.const(b0))
            return
        if bld.is_coarse(pole):
            source = bld.square(x) if square else x
            if ema:
                bld.emit("lerp_", None, y, source, slot=bld.const(b0))
            else:
                step = bld.new("mul_s", source, slot=bld.const(b0))
                bld.emit("add_", None, step, y, slot=bld.const(-(1.0 - pole)))
                bld.emit("add_", None, y, step, slot=bld.const(1.0))
            return
        bld.emit("mul_s_", None, y, slot=bld.const(pole))
        if square:
            bld.emit("addcmul_", None, y, x, x, slot=bld.const(b0))
        else:
            bld.emit("add_", None, y, x, slot=bld.const(b0))


def _direct_form(
    bld: ProgramBuilder,
    b_in: np.ndarray,
    a_in: np.ndarray,
    x: str,
    key: str,
    force_first: bool,
    form: tuple[Any, ...],
) -> str:
    """Transposed direct form II of any order (FIR, or all-pole with the first output forced).

    ``form`` prefixes the state's forms (:attr:`optfilters.program.StateSpec.form`).
    """
    b_in, a_in = np.trim_zeros(np.asarray(b_in, float), "b"), np.trim_zeros(np.asarray(a_in, float), "b")
    n = max(b_in.size, a_in.size, 1) - 1
    b = np.zeros(n + 1)
    a = np.zeros(n + 1)
    b[: b_in.size] = b_in
    a[: a_in.size] = a_in
    if n == 0:
        return bld.new("clone", x) if force_first else bld.new("mul_s", x, slot=bld.const(b[0]))
    z = [bld.state(f"{key}.z{k}", form=(*form, "tdf2", n, k)) for k in range(n)]
    if force_first:
        y = bld.new("clone", x)
    else:
        y = bld.new("add", z[0], x, slot=bld.const(b[0]))
    for k in range(n):
        if k + 1 < n:
            bld.emit("copy_", None, z[k], z[k + 1])
        else:
            bld.emit("zero_", None, z[k])
        if b[k + 1] != 0.0:
            bld.emit("add_", None, z[k], x, slot=bld.const(b[k + 1]))
        if a[k + 1] != 0.0:
            bld.emit("add_", None, z[k], y, slot=bld.const(-a[k + 1]))
    return y


def _delta_section(
    bld: ProgramBuilder,
    section: tuple[float, float, float, float, float, bool],
    x: str,
    key: str,
    form: tuple[Any, ...],
) -> str:
    """One section in delta-operator transposed direct form II.

    ``y = beta0 x + s1``; ``s1 += beta1 x - alpha1 y + s2``; ``s2 += beta2 x - alpha2 y``.
    """
    beta0, beta1, beta2, alpha1, alpha2, second_order = section
    form = (*form, "delta", 2 if second_order else 1)
    s1 = bld.state(f"{key}.0", form=(*form, 0))
    y = bld.new("add", s1, x, slot=bld.const(beta0))
    if second_order:
        s2 = bld.state(f"{key}.1", form=(*form, 1))
        inc = bld.new("add", s2, x, slot=bld.const(beta1))
    else:
        inc = bld.new("mul_s", x, slot=bld.const(beta1))
    bld.emit("add_", None, inc, y, slot=bld.const(-alpha1))
    bld.emit("add_", None, s1, inc, slot=bld.const(1.0))
    if second_order:
        bld.emit("add_", None, s2, x, slot=bld.const(beta2))
        bld.emit("add_", None, s2, y, slot=bld.const(-alpha2))
    return y


def _section(b: np.ndarray, a: np.ndarray) -> tuple[float, float, float, float, float, bool]:
    """Delta-operator coefficients of ``(b0 + b1 z^-1 + b2 z^-2) / (1 + a1 z^-1 + a2 z^-2)``.

    Substituting ``z^-1 = d / (1 + d)`` with ``d = delta^-1`` gives
    ``(beta0 + beta1 d + beta2 d^2) / (1 + alpha1 d + alpha2 d^2)``; a first-order
    section uses ``(1 + d)`` once.
    """
    bb = np.zeros(3)
    aa = np.zeros(3)
    bb[: min(3, b.size)] = b[:3]
    aa[: min(3, a.size)] = a[:3]
    aa = aa / aa[0]
    bb = bb / (a[0] if a.size else 1.0)
    b0, b1, b2 = (float(v) for v in bb)
    _, a1, a2 = (float(v) for v in aa)
    if a2 == 0.0 and b2 == 0.0:
        return (b0, b0 + b1, 0.0, 1.0 + a1, 0.0, False)
    return (b0, 2.0 * b0 + b1, b0 + b1 + b2, 2.0 + a1, (1.0 + a1) + a2, True)


# the former keyword ``FilterTerm(..., compensated=True)`` still works, with a DeprecationWarning
setattr(  # noqa: B010 (mypy forbids assigning to a method)
    FilterTerm,
    "__init__",
    renamed_keywords("optfilters.stages.FilterTerm", compensated="bias_corrected")(FilterTerm.__init__),
)


# ----------------------------------------------------------------------------- linear stages


@dataclass(frozen=True)
class LinearStage(Stage):
    """A linear, possibly time-varying stage ``y_t = sum_i c_i(t) F_i(x)_t``.

    Parameters
    ----------
    terms : tuple of FilterTerm
        The terms; their LTI limits add up (in parallel) to :meth:`limit`.
    name : str
        The stage's role: ``"gradient"``, ``"second_moment"``, ``"post"``, ...
    summed : bool
        Add the terms into one register at this stage, as the reference
        implementation does (torch.optim.SGD's Nesterov direction
        ``grad.add(buf, alpha=momentum)``), instead of passing them on lazily
        to be folded into the update (NAdam's two ``addcdiv_`` calls).  The
        same sum either way, rounded differently.

    Examples
    --------
    >>> from optfilters import ArmaFilter
    >>> from optfilters.stages import FilterTerm, LinearStage
    >>> stage = LinearStage((FilterTerm(ArmaFilter.ema(0.9), bias_corrected=True),), "gradient")
    >>> stage.limit().isclose(ArmaFilter.ema(0.9))
    True
    >>> stage.bias_corrected, stage.is_time_invariant
    (True, False)
    """

    terms: tuple[FilterTerm, ...]
    name: str = "gradient"
    summed: bool = field(default=False, kw_only=True)

    def __post_init__(self) -> None:
        if not self.terms:
            raise InvalidFilterError("a linear stage needs at least one term")

    @classmethod
    def of(cls, f: ArmaFilter, name: str = "gradient", **term_options: Any) -> LinearStage:
        """A single-term stage.

        Parameters
        ----------
        f : ArmaFilter
            The term's filter (in ``z^-1``, one step per sample).
        name : str, optional
            The stage's role (default ``"gradient"``).
        **term_options
            Passed to :class:`FilterTerm` (``bias_corrected=True`` for a
            bias-corrected term, ``gain=``, ...).

        Returns
        -------
        LinearStage
            The stage ``y_t = c(t) F(x)_t``.

        Raises
        ------
        InvalidFilterError
            From :class:`FilterTerm` when the options do not fit the filter:
            bias correction of a filter with an infinite or zero DC gain, a
            first-step initialisation of a filter that is not all-pole.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> from optfilters.stages import LinearStage
        >>> LinearStage.of(ArmaFilter.ema(0.5)).is_time_invariant
        True
        """
        return cls((FilterTerm(f, **term_options),), name)

    @property
    def role(self) -> str:  # type: ignore[override]
        """The stage's name: ``gradient``, ``post``, ..."""
        return self.name

    def with_role(self, role: str) -> LinearStage:
        """The same stage named ``role`` (a subclass keeps its type and fields)."""
        return self if self.name == role else dataclasses.replace(self, name=role)

    def limit(self) -> ArmaFilter:
        """The LTI filter as ``t -> infinity`` (the exact filter when time-invariant).

        Returns
        -------
        ArmaFilter
            The parallel sum of the terms' limits (gains at their limits, bias
            corrections at 1), named after the stage; in ``z^-1``, one step per
            sample.
        """
        return parallel(*(term.limit() for term in self.terms)).renamed(self.name)

    def exact_limit(self) -> ArmaFilter:
        """:meth:`limit`, keeping a single term's exact zeros and poles (designs of high order).

        Returns
        -------
        ArmaFilter
            The single term's own limit (its zeros, poles and gain as designed,
            without a round trip through polynomial coefficients), or
            :meth:`limit` for several terms.
        """
        if len(self.terms) == 1:
            return self.terms[0].limit()
        return self.limit()

    @property
    def is_time_invariant(self) -> bool:  # type: ignore[override]
        """True when every term is LTI from rest."""
        return all(term.is_time_invariant for term in self.terms)

    @property
    def bias_corrected(self) -> bool:
        """True when any term is bias-corrected."""
        return any(term.bias_corrected for term in self.terms)

    compensated = deprecated_attribute("bias_corrected", "compensated", "optfilters.stages.LinearStage")

    @property
    def is_identity(self) -> bool:
        """True for the single constant term ``1``."""
        limit = self.limit()
        return self.is_time_invariant and limit.b.tolist() == [1.0] and limit.a.tolist() == [1.0]

    def linear_stages(self) -> dict[str, LinearStage]:
        """Itself, by its name."""
        return {self.name: self}

    def direction_filter(self) -> ArmaFilter:
        """Its LTI limit."""
        return self.limit()

    def describe(self) -> str:
        """Terms joined with ``+``."""
        return " + ".join(term.describe() for term in self.terms)

    def table_cells(self) -> dict[str, str]:
        """``post-filter`` for a post stage, else ``gradient filtering``."""
        column = "post-filter" if self.name == "post" else "gradient filtering"
        return {column: classify_stage(self)}

    # ------------------------------------------------------------------ execution
    @property
    def varies(self) -> bool:
        """True when a term starts at its input (the first step differs)."""
        return any(term.first_output_is_input for term in self.terms)

    def variant(self, t: int | None) -> bool:
        """True at the first step (where a term starts at its input)."""
        return t == 1 and self.varies

    @renamed_keywords("optfilters.stages.LinearStage.emit_on", compensate="bias_correction")
    def emit_on(
        self,
        bld: ProgramBuilder,
        x: str,
        key: str,
        square: bool = False,
        bias_correction: bool | None = None,
        first: bool = False,
    ) -> LinComb:
        """Advance every term on the register ``x`` (or ``x**2``); returns the lazy sum of their outputs.

        Parameters
        ----------
        bld : ProgramBuilder
            The program being built.
        x : str
            The input register (the parameter's shape).
        key : str
            The prefix of the state keys: ``<key>.<i>`` for term ``i``.
        square : bool, optional
            Filter ``x * x`` instead of ``x`` (a second moment).
        bias_correction : bool or None, optional
            None applies the bias correction where the terms do, True to every
            term where defined, False to none.
        first : bool, optional
            Build the first step's form (terms that start at their input).

        Returns
        -------
        LinComb
            ``sum_i c_i(t) y_i``: each term's output register with its
            coefficient (gain and bias correction), not yet added.
        """
        terms = []
        for i, term in enumerate(self.terms):
            out, extra = term.emit(bld, x, f"{key}.{i}", square, first)
            terms.append((out, term.output_coef(extra, bias_correction)))
        return LinComb(terms)

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """Filter the direction (a one-term direction is folded into a one-pole update, as torch.optim does)."""
        lc = sig.direction
        if len(self.terms) == 1 and len(lc.terms) == 1 and self.terms[0].absorbs(bld):
            out = self.terms[0].emit_absorbing(bld, lc, f"{self.key}.0")
        else:
            out = self.emit_on(bld, bld.materialise(lc), self.key, first=bool(variant))
            if self.summed and len(out.terms) > 1:
                out = LinComb.of(bld.materialise(out))
        sig.direction = out
        sig.outputs[self.key] = out

    @renamed_keywords("optfilters.stages.LinearStage.response", compensate="bias_correction")
    def response(self, x: ArrayLike, bias_correction: bool | None = None) -> FloatArray:
        """Run the exact stage over a sequence ``x`` (first axis is time).

        Parameters
        ----------
        x : ndarray
            Input sequence, ``x[0]`` at step ``t = 1``.
        bias_correction : bool or None
            None applies bias correction where the optimizer does; True applies it
            to every term; False to none.

        Returns
        -------
        ndarray
            The output sequence, the shape of ``x`` (float64); ``y[k]`` is the
            output at step ``t = k + 1``.

        Examples
        --------
        >>> import numpy as np
        >>> from optfilters import ArmaFilter
        >>> from optfilters.stages import LinearStage
        >>> stage = LinearStage.of(ArmaFilter.ema(0.5), bias_corrected=True)
        >>> stage.response(np.ones(3)).tolist()
        [1.0, 1.0, 1.0]
        >>> stage.response(np.ones(3), bias_correction=False).tolist()
        [0.5, 0.75, 0.875]
        """
        x = np.asarray(x, dtype=np.float64)
        runner = LinearStageRunner(self, x.shape[1:], bias_correction=bias_correction)
        return np.stack([runner.step(x[t], t + 1) for t in range(x.shape[0])]) if x.shape[0] else x.copy()


def _stage_program(stage: LinearStage, bias_correction: bool | None, first: bool, square: bool) -> Program:
    """The stage's program, cached by the stage and its filters' realisations (``==`` on filters ignores them)."""
    realisations = tuple(term.filter._realisation_key() for term in stage.terms)
    return _cached_stage_program(stage, realisations, bias_correction, first, square)


@functools.lru_cache(maxsize=256)
def _cached_stage_program(
    stage: LinearStage, realisations: tuple[Any, ...], bias_correction: bool | None, first: bool, square: bool
) -> Program:
    bld = ProgramBuilder()
    y = bld.materialise(stage.emit_on(bld, "x", "s", square=square, bias_correction=bias_correction, first=first))
    bld.tap("y", y)
    return bld.program()


class LinearStageRunner:
    """Step-by-step numpy execution of a :class:`LinearStage` (its realisation, as the bridge runs it).

    Parameters
    ----------
    stage : LinearStage
        The stage to run.
    shape : tuple of int
        The shape of one input sample.
    bias_correction : bool or None, optional
        As in :meth:`LinearStage.response`.
    square : bool, optional
        Filter the square of the input (a second moment).

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters import ArmaFilter
    >>> from optfilters.stages import LinearStage, LinearStageRunner
    >>> run = LinearStageRunner(LinearStage.of(ArmaFilter([1.0], [1.0, -0.5])), shape=())
    >>> [float(run.step(np.float64(x), t)) for t, x in enumerate([1.0, 0.0, 0.0], start=1)]
    [1.0, 0.5, 0.25]
    """

    @renamed_keywords("optfilters.stages.LinearStageRunner", compensate="bias_correction")
    def __init__(
        self, stage: LinearStage, shape: tuple[int, ...], bias_correction: bool | None = None, square: bool = False
    ) -> None:
        self.stage = stage
        self.bias_correction = bias_correction
        self.square = square
        self.shape = tuple(shape)
        self._size = int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1
        self.states: dict[str, FloatArray] = {}
        self._programs: dict[bool, Program] = {}

    def step(self, x: ArrayLike, t: int) -> FloatArray:
        """Feed ``x`` at step ``t`` and return the stage output.

        Parameters
        ----------
        x : array_like
            The input sample, broadcast to ``shape``.
        t : int
            The step count, ``t >= 1``, increasing by one per call.

        Returns
        -------
        ndarray
            The output sample, of shape ``shape`` (float64).
        """
        first = self.stage.variant(t)
        program = self._programs.get(first)
        if program is None:
            program = self._programs[first] = _stage_program(self.stage, self.bias_correction, first, self.square)
        value = np.broadcast_to(np.asarray(x, dtype=np.float64), self.shape)
        regs: dict[str, Any] = {"x": np.array(value, dtype=np.float64).reshape(self._size)}
        for spec in program.state:
            state = self.states.get(spec.key)
            if state is None:
                state = self.states[spec.key] = np.full(self._size, spec.init)
            regs[f"state.{spec.key}"] = state
        run_numpy(program, regs, program.scalar_values(t, 0.0))
        out = regs[program.taps[0][1]]
        return np.array(out, dtype=np.float64, copy=True).reshape(self.shape)


# ----------------------------------------------------------------------------- normalisers

EpsPlacement = Literal["after_root", "inside_root", "before_correction"]


def _correction_scalar(f: ArmaFilter, root: bool = False) -> Callable[[int, float], float]:
    def correction(t: int, lr: float) -> float:
        c = bias_correction(f, t)
        return c**0.5 if root else c  # torch.optim: bias_correction2**0.5 (a tensor for a tensor t: capturable)

    return correction


def _one(lr: float) -> float:
    return 1.0


def _run_small(program: Program, regs: dict[str, Any], t: int | None, ops: Any = NumpyOps) -> dict[str, Any]:
    """Run a small program (a denominator) with ``ops``; returns the registers."""
    scalars = program.values(t, 0.0)
    if ops is NumpyOps:
        run_numpy(program, regs, scalars)
    else:
        execute(bind(program, ops), regs, scalars)
    return regs


def _as_rows(value: ArrayLike) -> tuple[FloatArray, tuple[int, ...]]:
    v = np.asarray(value, dtype=np.float64)
    return np.array(v, copy=True).reshape(-1), v.shape


@dataclass(frozen=True)
class RmsNormaliser(Stage):
    """Divide the direction by ``sqrt(F(g^2))`` plus ``eps``: Adam, RMSprop, Adagrad, ...

    Parameters
    ----------
    second_moment : LinearStage
        Filter on the squared (effective) gradient; e.g. Adam's EMA with
        ``beta2`` (bias-corrected), Adagrad's summer.
        A single bias-corrected term is corrected after the AMSGrad maximum, as
        torch does.
    eps : float
        Added for numerical safety.
    eps_placement : {"after_root", "inside_root", "before_correction"}
        ``sqrt(v_hat) + eps`` (Adam, RMSprop, Adagrad), ``sqrt(v_hat + eps)``, or
        ``(sqrt(v) + eps) / sqrt(c)`` with the bias correction ``c`` applied
        after eps (RAdam).
    amsgrad : bool
        Use the running maximum of the (uncorrected) second moment.
    center : LinearStage or None
        RMSprop ``centered``: subtract the square of this filter of ``g``.
    rectification : RAdamRectification or None
        RAdam: no normalisation while inactive, ``r_t`` times the normalised
        update afterwards.
    correction_inside_root : bool
        With ``eps_placement="after_root"``, apply a single bias correction
        inside the root, ``sqrt(v / c) + eps`` (torch.optim.NAdam), rather than
        ``sqrt(v) / sqrt(c) + eps`` (torch.optim.Adam): the same value, rounded
        differently, which executors that mirror torch.optim need to know.

    Notes
    -----
    The denominator is written once (:meth:`emit_denominator`): the step, the
    frozen gain ``1 / (sqrt(v) + eps)`` of the linearisation, the
    noisy-quadratic model's mean-field gain and the preconditioner read back
    from the bridge's state all run it.

    Examples
    --------
    >>> from optfilters import ArmaFilter
    >>> from optfilters.stages import LinearStage, RmsNormaliser
    >>> v = LinearStage.of(ArmaFilter.ema(0.999), "second_moment", bias_corrected=True)
    >>> n = RmsNormaliser(v, eps=1e-8)
    >>> n.kind, n.bias_corrected
    ('rms', True)
    >>> float(n.frozen_gain(4.0))
    0.4999999975
    """

    second_moment: LinearStage
    eps: float = 1e-8
    eps_placement: EpsPlacement = "after_root"
    amsgrad: bool = False
    center: LinearStage | None = None
    rectification: RAdamRectification | None = None
    correction_inside_root: bool = False
    kind: str = field(default="rms", init=False)

    role: ClassVar[str] = "normaliser"
    is_linear: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.amsgrad and len(self.second_moment.terms) != 1:
            raise InvalidFilterError("AMSGrad needs a single-term second-moment filter")
        if self.eps_placement == "before_correction" and len(self.second_moment.terms) != 1:
            raise InvalidFilterError("eps before the bias correction needs a single-term second-moment filter")

    @property
    def bias_corrected(self) -> bool:
        """True when the second moment is bias-corrected."""
        return self.second_moment.bias_corrected

    compensated = deprecated_attribute("bias_corrected", "compensated", "optfilters.stages.RmsNormaliser")

    @property
    def _single_corrected(self) -> bool:
        """A single bias-corrected term: corrected after the AMSGrad maximum, with torch's expressions."""
        return len(self.second_moment.terms) == 1 and self.second_moment.bias_corrected

    def filters(self) -> dict[str, ArmaFilter]:
        """The linear filters inside: ``second_moment`` and, if centered, ``center``."""
        out = {"second_moment": self.second_moment.limit().renamed("second_moment")}
        if self.center is not None:
            out["center"] = self.center.limit().renamed("center")
        return out

    def linear_stages(self) -> dict[str, LinearStage]:
        """``second_moment`` and, if centered, ``center``."""
        out = {"second_moment": self.second_moment}
        if self.center is not None:
            out["center"] = self.center
        return out

    @property
    def is_time_invariant(self) -> bool:  # type: ignore[override]
        """Whether the normaliser's recursion is time-invariant (it is nonlinear either way)."""
        center_ti = self.center is None or self.center.is_time_invariant
        return self.rectification is None and self.second_moment.is_time_invariant and center_ti

    # ------------------------------------------------------------------ execution
    @property
    def varies(self) -> bool:
        """True with RAdam's rectification or a second moment started at its input."""
        return (
            self.rectification is not None
            or self.second_moment.varies
            or (self.center is not None and self.center.varies)
        )

    def variant(self, t: int | None) -> tuple[bool, bool, bool]:
        """``(first step of the second moment, of the center, rectification active)``."""
        rect = self.rectification
        active = rect is None or t is None or rect.active(t)
        if t != 1:
            return (False, False, active)
        center = self.center is not None and self.center.varies
        return (self.second_moment.varies, center, active)

    def emit_statistics(self, bld: ProgramBuilder, g: str, variant: Any = None) -> str:
        """Update the second moment (and its maximum, and the center) from ``g``; returns the register of ``v``.

        Parameters
        ----------
        bld : ProgramBuilder
            The program being built.
        g : str
            The register of the effective gradient.
        variant : tuple of bool, optional
            The value of :meth:`variant` for the step (None: the
            ``t -> infinity`` form).

        Returns
        -------
        str
            The register of ``v`` (units of a squared gradient): the filtered
            ``g^2``, uncorrected when a single bias-corrected term is corrected
            later (:meth:`emit_denominator`), after the AMSGrad maximum and
            minus the squared center if any.
        """
        first, center_first, _ = variant if variant is not None else (False, False, True)
        correct = False if self._single_corrected else None
        v = bld.materialise(
            self.second_moment.emit_on(bld, g, "second_moment", square=True, bias_correction=correct, first=first)
        )
        if self.amsgrad:
            vmax = bld.state("second_moment.max", form=("running max",))
            bld.emit("maximum_", None, vmax, v)
            v = vmax
        if self.center is not None:
            mean = bld.materialise(self.center.emit_on(bld, g, "center", first=center_first))
            v = bld.new("addcmul", v, mean, mean, slot=bld.const(-1.0))
        return v

    def emit_denominator(self, bld: ProgramBuilder, v: str, corrected: bool = True) -> tuple[str, list[Coef]]:
        """The denominator from the second moment ``v``, in torch.optim's order of operations.

        Parameters
        ----------
        bld : ProgramBuilder
            The program being built.
        v : str
            The register of the second moment (from :meth:`emit_statistics`).
        corrected : bool, optional
            False leaves the bias correction out (the ``t -> infinity`` limit,
            or a second moment given already corrected).

        Returns
        -------
        den : str
            The register of the denominator (units of a gradient):
            ``sqrt(v_hat) + eps``, ``sqrt(v_hat + eps)`` or ``sqrt(v) + eps``.
        extras : list of Coef
            The factors (applied in order) that multiply the direction besides
            the division: RAdam's ``sqrt(bias_correction)`` when eps comes
            before it, and its rectification ``r_t``.

        Notes
        -----
        The orders are those of torch.optim.Adam
        (``(exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)``),
        torch.optim.NAdam (``exp_avg_sq.div(bias_correction2).sqrt().add_(eps)``)
        and torch.optim.RAdam (eps before the correction).
        """
        correction = self.second_moment.terms[0].filter if (corrected and self._single_corrected) else None
        eps = bld.const(self.eps)
        extras: list[Coef] = []
        if self.eps_placement == "after_root" and correction is not None and self.correction_inside_root:
            # torch.optim.NAdam: exp_avg_sq.div(bias_correction2).sqrt().add_(eps)
            den = bld.new("div_s", v, slot=bld.slot(_correction_scalar(correction), _one))
            bld.emit("sqrt_", None, den)
            bld.emit("add_s_", None, den, slot=eps)
        elif self.eps_placement == "after_root":
            # torch.optim.Adam: (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
            den = bld.new("sqrt", v)
            if correction is not None:
                bld.emit("div_s_", None, den, slot=bld.slot(_correction_scalar(correction, root=True), _one))
            bld.emit("add_s_", None, den, slot=eps)
        elif self.eps_placement == "inside_root":
            if correction is not None:
                den = bld.new("div_s", v, slot=bld.slot(_correction_scalar(correction), _one))
                bld.emit("add_s_", None, den, slot=eps)
            else:
                den = bld.new("add_s", v, slot=eps)
            bld.emit("sqrt_", None, den)
        else:  # before_correction: (sqrt(v) + eps) / sqrt(c); the sqrt(c) joins the coefficients
            den = bld.new("sqrt", v)
            bld.emit("add_s_", None, den, slot=eps)
            if correction is not None:
                f = correction
                extras.append(Coef(lambda t: (bias_correction(f, t) ** 0.5, 1.0), 1.0))
        if self.rectification is not None:
            extras.append(self.rectification.coef())
        return den, extras

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """Update the statistics from ``g`` and divide the direction by the denominator."""
        v = self.emit_statistics(bld, sig.grad, variant)
        if variant is not None and not variant[2]:
            return  # RAdam before rectification: no normalisation at all
        den, extras = self.emit_denominator(bld, v)
        lc = sig.direction
        if lc.den is not None:
            lc = LinComb.of(bld.materialise(lc))
        for extra in extras:
            lc = lc.scaled(extra)
        sig.direction = LinComb(lc.terms, den=den)
        sig.outputs[self.key] = sig.direction

    # ------------------------------------------------------------------ linearisation
    def frozen_gain(self, second_moment: ArrayLike, t: int | None = None) -> Any:
        """``1 / (sqrt(v) + eps)`` (``1 / sqrt(v + eps)`` with eps inside the root), times RAdam's ``r_t``.

        ``v`` is the (bias-corrected) second moment; before RAdam's
        rectification starts the gain is 1.
        """
        v, shape = _as_rows(second_moment)
        if self.rectification is not None and t is not None and not self.rectification.active(t):
            return np.ones(shape)
        program = _denominator_program(self, False)
        regs = _run_small(program, {"v": v}, t)
        with np.errstate(divide="ignore"):
            scale = 1.0 / regs[program.taps[0][1]]
        if self.rectification is not None and t is not None:
            scale = scale * self.rectification.value(t)
        return scale.reshape(shape)

    def linearisation_note(self, how: str, second_moment: float | None = None) -> str:
        """The label of the linearisation."""
        return _NORMALISER_NOTES[how].format(v=second_moment)

    def tracker(self, size: int) -> Tracker:
        """The second moment run on the predicted ``E[g^2]`` (bias correction and AMSGrad included)."""
        return _RmsTracker(self, size)

    def steady_dc(self, owner: str = "the model") -> float:
        """The second-moment filter's DC gain (``v = F(1) E[g^2]``; a centered mean vanishes at steady state).

        Parameters
        ----------
        owner : str, optional
            The model's name, for the message.

        Returns
        -------
        float
            ``F(1)``, the DC gain of the second-moment filter (1 for the EMAs
            of Adam and RMSprop).

        Raises
        ------
        ValueError
            When that DC gain is not finite (Adagrad's sum): there is no steady state.
        """
        dc = float(self.second_moment.limit().dc_gain)
        if not math.isfinite(dc):
            raise ValueError(
                f"{owner}'s second moment has no steady state (DC gain {dc}); use second_moment='tracking'"
            )
        return dc

    # ------------------------------------------------------------------ recording
    def normaliser_denominator(self, owner: str) -> tuple[tuple[str, ...], Callable[[Sequence[Any], int, Any], Any]]:
        """The state keys of ``v`` (and the center) and ``D = denominator / (r_t sqrt(c))`` at step ``t``.

        Needs a single-term one-pole second moment (its state is ``v`` itself)
        and, if centered, a one-pole center without bias correction.

        Parameters
        ----------
        owner : str
            The model's name, for error messages.

        Returns
        -------
        keys : tuple of str
            ``("second_moment.0",)`` (``"second_moment.max"`` with AMSGrad), plus
            ``"center.0"`` when centered.
        denominator : callable
            ``D(values, t, ops)``: the denominator at step ``t`` divided by the
            factors the update multiplies by (RAdam's ``r_t`` and ``sqrt(c)``);
            ones while RAdam's rectification is inactive.

        Raises
        ------
        ValueError
            When the second moment has several terms or is not a one-pole EMA or
            sum, or the center is not a single one-pole term without bias correction.
        """
        if len(self.second_moment.terms) != 1:
            raise ValueError(
                f"the denominator of {owner} has a {len(self.second_moment.terms)}-term second moment; "
                "reading it from the optimizer's state is supported for single-term ones only"
            )
        f = self.second_moment.terms[0].filter
        if f.order != 1 or len(f.b) != 1:
            raise ValueError(f"the second-moment filter of {owner} is not a one-pole EMA/sum; unsupported")
        center = self.center
        if center is not None and (
            len(center.terms) != 1 or center.bias_corrected or center.terms[0].filter.order != 1
        ):
            raise ValueError(f"the centring filter of {owner} is unsupported")
        keys: tuple[str, ...] = ("second_moment.max" if self.amsgrad else "second_moment.0",)
        if center is not None:
            keys += ("center.0",)
        program = _read_program(self)
        den_reg = program.taps[0][1]

        def denominator(values: Sequence[Any], t: int, ops: Any = NumpyOps) -> Any:
            v = values[0]
            if self.rectification is not None and not self.rectification.active(t):
                return v * 0.0 + 1.0
            regs = _run_small(program, {"v": v, **({"mean": values[1]} if center is not None else {})}, t, ops)
            den = regs[den_reg]
            for extra in _read_extras(self):
                den = den / extra.value(t)
            return den

        return keys, denominator

    # ------------------------------------------------------------------ description
    def describe(self) -> str:
        """Short formula."""
        root = {
            "after_root": "sqrt(v) + eps",
            "inside_root": "sqrt(v + eps)",
            "before_correction": "(sqrt(v) + eps) / sqrt(bias correction)",
        }[self.eps_placement]
        text = f"divide by {root}, v = {self.second_moment.describe()} of g^2"
        if self.amsgrad:
            text += ", running max (AMSGrad)"
        if self.center is not None:
            text += f", centered by ({self.center.describe()})^2"
        if self.rectification is not None:
            text += ", RAdam rectification (unnormalised until rho_t > 5)"
        return text

    def table_cells(self) -> dict[str, str]:
        """The normalisation and the variance filter."""
        text = {
            "after_root": "divide by sqrt(v) + eps",
            "inside_root": "divide by sqrt(v + eps)",
            "before_correction": "divide by (sqrt(v) + eps)/sqrt(1 - beta2^t)",
        }[self.eps_placement]
        if self.amsgrad:
            text += ", running max of v (AMSGrad)"
        if self.center is not None:
            text += ", centered (v - mean^2)"
        if self.rectification is not None:
            text += ", rectified (none while rho_t <= 5)"
        return {"gradient normalisation": text, "variance filter": classify_stage(self.second_moment)}


_NORMALISER_NOTES = {
    "frozen": (
        "linearised: normaliser frozen at second moment v={v:g}; lr*h uses the preconditioned curvature h/(sqrt(v)+eps)"
    ),
    "tracking": "linearised: normaliser driven by the predicted E[g^2] (mean-field)",
    "steady": "linearised: normaliser frozen at the self-consistent steady-state E[g^2]",
    "frozen_given": "linearised: normaliser frozen at the given second moment",
}


@functools.lru_cache(maxsize=256)
def _denominator_program(norm: RmsNormaliser, corrected: bool) -> Program:
    """The denominator alone, from a register ``v`` (no statistics, no state)."""
    bld = ProgramBuilder()
    den, _ = norm.emit_denominator(bld, "v", corrected=corrected)
    bld.tap("den", den)
    return bld.program()


@functools.lru_cache(maxsize=256)
def _read_program(norm: RmsNormaliser) -> Program:
    """The denominator from the registers ``v`` (the state) and ``mean`` (the center's state)."""
    bld = ProgramBuilder()
    v = "v"
    if norm.center is not None:
        v = bld.new("addcmul", v, "mean", "mean", slot=bld.const(-1.0))
    den, _ = norm.emit_denominator(bld, v)
    bld.tap("den", den)
    return bld.program()


def _read_extras(norm: RmsNormaliser) -> list[Coef]:
    return norm.emit_denominator(ProgramBuilder(), "v")[1]


class _RmsTracker(Tracker):
    """Adam's (RMSprop's, ...) normaliser run on the predicted ``E[g^2]``: a mean-field approximation."""

    def __init__(self, norm: RmsNormaliser, size: int) -> None:
        self.norm = norm
        correct = False if norm._single_corrected else None
        self.v_runner = LinearStageRunner(norm.second_moment, (size,), bias_correction=correct)
        self.vmax = np.zeros(size)
        self.center = LinearStageRunner(norm.center, (size,)) if norm.center is not None else None
        self.program = _denominator_program(norm, True)
        self.extras = _read_extras(norm)
        self.size = size

    def gain(self, t: int, moments: Moments) -> FloatArray:
        norm = self.norm
        v = self.v_runner.step(moments.grad2, t)
        if norm.amsgrad:
            self.vmax = np.maximum(self.vmax, v)
            v = self.vmax
        if self.center is not None:
            mean = self.center.step(moments.grad_mean, t)
            v = np.maximum(v - mean * mean, 0.0)
        if norm.rectification is not None and not norm.rectification.active(t):
            return np.ones(self.size)
        regs = _run_small(self.program, {"v": np.array(v, dtype=np.float64)}, t)
        out = 1.0 / regs[self.program.taps[0][1]]
        for extra in self.extras:
            out = out * extra.value(t)
        return np.asarray(out, dtype=np.float64)


@dataclass(frozen=True)
class PeakNormaliser(Stage):
    """Adamax's peak envelope: ``u_t = max(beta2 * u_{t-1}, |g_t| + eps)``; divide by ``u``.

    Parameters
    ----------
    beta2 : float
        torch.optim.Adamax's ``betas[1]``: the decay of the running peak.
    eps : float
        torch.optim.Adamax's ``eps``.

    Examples
    --------
    >>> from optfilters.stages import PeakNormaliser
    >>> PeakNormaliser(0.999, 1e-8).filters()
    {}
    """

    beta2: float = 0.999
    eps: float = 1e-8
    kind: str = field(default="peak", init=False)
    is_time_invariant: bool = field(default=True, init=False)

    role: ClassVar[str] = "normaliser"
    is_linear: ClassVar[bool] = False

    def filters(self) -> dict[str, ArmaFilter]:
        """None: the envelope is a max-plus recursion, not a linear filter."""
        return {}

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """``u = max(beta2 u, |g| + eps)`` (state ``peak``); the direction is divided by ``u``."""
        u = bld.state("peak", form=("peak envelope",))
        bld.emit("mul_s_", None, u, slot=bld.const(self.beta2))
        level = bld.new("abs", sig.grad)
        bld.emit("add_s_", None, level, slot=bld.const(self.eps))
        bld.emit("maximum_", None, u, level)
        lc = sig.direction
        if lc.den is not None:
            lc = LinComb.of(bld.materialise(lc))
        sig.direction = LinComb(lc.terms, den=u)
        sig.outputs[self.key] = sig.direction

    def frozen_gain(self, second_moment: ArrayLike, t: int | None = None) -> Any:
        """``1 / (sqrt(v) + eps)``, reading ``sqrt(v)`` as the peak level."""
        v = np.asarray(second_moment, dtype=np.float64)
        with np.errstate(divide="ignore"):
            return 1.0 / (np.sqrt(v) + self.eps)

    def linearisation_note(self, how: str, second_moment: float | None = None) -> str:
        """The label of the linearisation."""
        return _NORMALISER_NOTES[how].format(v=second_moment)

    def tracker(self, size: int) -> Tracker:
        """The envelope run on ``sqrt(E[g^2])``."""
        return _PeakTracker(self, size)

    def steady_dc(self, owner: str = "the model") -> float:
        """1: the peak level is read as ``sqrt(E[g^2])``."""
        return 1.0

    def normaliser_denominator(self, owner: str) -> tuple[tuple[str, ...], Callable[[Sequence[Any], int, Any], Any]]:
        """The state ``peak`` is the denominator ``D`` itself."""
        return ("peak",), lambda values, t, ops=NumpyOps: values[0]

    def describe(self) -> str:
        """Short formula."""
        return f"divide by u, u = max({self.beta2:g} u, |g| + eps) (peak envelope)"

    def table_cells(self) -> dict[str, str]:
        """The normalisation and the envelope."""
        return {
            "gradient normalisation": "divide by peak envelope max(beta2 u, |g| + eps)",
            "variance filter": f"peak envelope (max-plus, decay {_fmt(self.beta2)})",
        }


class _PeakTracker(Tracker):
    def __init__(self, norm: PeakNormaliser, size: int) -> None:
        self.norm = norm
        self.u = np.zeros(size)

    def gain(self, t: int, moments: Moments) -> FloatArray:
        self.u = np.maximum(self.norm.beta2 * self.u, np.sqrt(moments.grad2) + self.norm.eps)
        return np.asarray(1.0 / self.u, dtype=np.float64)


@dataclass(frozen=True)
class AdadeltaNormaliser(Stage):
    """Adadelta: ``delta = sqrt(u + eps) / sqrt(v + eps) * g`` with EMAs ``v`` of ``g^2`` and ``u`` of ``delta^2``.

    Parameters
    ----------
    rho : float
        torch.optim.Adadelta's ``rho``: the pole of both moment filters.
    eps : float
        torch.optim.Adadelta's ``eps``, inside both square roots.

    Examples
    --------
    >>> from optfilters.stages import AdadeltaNormaliser
    >>> sorted(AdadeltaNormaliser(0.9, 1e-6).filters())
    ['second_moment', 'update_moment']
    """

    rho: float = 0.9
    eps: float = 1e-6
    kind: str = field(default="adadelta", init=False)
    is_time_invariant: bool = field(default=True, init=False)

    role: ClassVar[str] = "normaliser"
    is_linear: ClassVar[bool] = False

    def filters(self) -> dict[str, ArmaFilter]:
        """EMA(rho) of ``g^2`` (``second_moment``) and of ``delta^2`` (``update_moment``)."""
        ema = ArmaFilter.ema(self.rho)
        return {"second_moment": ema.renamed("second_moment"), "update_moment": ema.renamed("update_moment")}

    def linear_stages(self) -> dict[str, LinearStage]:
        """The two EMAs as stages."""
        return {
            "second_moment": LinearStage.of(ArmaFilter.ema(self.rho), "second_moment"),
            "update_moment": LinearStage.of(ArmaFilter.ema(self.rho), "update_moment"),
        }

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """torch.optim.Adadelta: ``std = sqrt(v + eps)``, ``delta = sqrt(u + eps) / std * d``, then ``u``'s EMA."""
        d = bld.materialise(sig.direction)
        ema = FilterTerm(ArmaFilter.ema(self.rho))
        eps = bld.const(self.eps)
        v, v_coef = ema.emit(bld, sig.grad, "adadelta.v", square=True)
        u = "state.adadelta.u"
        std = bld.new("add_s", v, slot=eps)
        bld.emit("sqrt_", None, std)
        delta = bld.new("add_s", u, slot=eps)
        bld.emit("sqrt_", None, delta)
        bld.emit("div_", None, delta, std)
        bld.emit("mul_", None, delta, d)
        if self.rho == 0.0:
            bld.emit("copy_", None, bld.state("adadelta.u", form=ONE_POLE), bld.square(delta))
        else:
            ema.emit(bld, delta, "adadelta.u", square=True)
        assert v_coef.one
        sig.direction = LinComb.of(delta)
        sig.outputs[self.key] = sig.direction

    def frozen_gain(self, second_moment: ArrayLike, t: int | None = None) -> Any:
        """``sqrt(eps) / sqrt(v + eps)`` (the update accumulator at rest).

        Parameters
        ----------
        second_moment : float or array_like
            ``v``, the EMA of ``g^2`` (units of a squared gradient).
        t : int or None, optional
            Unused (Adadelta has no time-varying gain).

        Returns
        -------
        ndarray
            ``sqrt(eps) / sqrt(v + eps)`` per coordinate: the update accumulator
            ``u`` at rest (0), so the numerator is ``sqrt(u + eps) = sqrt(eps)``
            (Zeiler 2012, "ADADELTA", Algorithm 1).
        """
        v = np.asarray(second_moment, dtype=np.float64)
        return math.sqrt(self.eps) / np.sqrt(v + self.eps)

    def linearisation_note(self, how: str, second_moment: float | None = None) -> str:
        """The label of the linearisation."""
        return _NORMALISER_NOTES[how].format(v=second_moment)

    def tracker(self, size: int) -> Tracker:
        """Both EMAs run on the predicted moments (``E[g^2]`` and ``E[delta^2]``)."""
        return _AdadeltaTracker(self, size)

    def steady_dc(self, owner: str = "the model") -> float:
        """Not defined: Adadelta's gain depends on its own update accumulator.

        Parameters
        ----------
        owner : str, optional
            The model's name (unused: the message names Adadelta).

        Raises
        ------
        ValueError
            Always: use the noisy-quadratic model's ``second_moment="tracking"``.
        """
        raise ValueError("second_moment='steady' is not available for adadelta; use 'tracking'")

    def describe(self) -> str:
        """Short formula."""
        return f"multiply by sqrt(u + eps)/sqrt(v + eps); v, u = EMA({self.rho:g}) of g^2, delta^2"

    def table_cells(self) -> dict[str, str]:
        """The normalisation and its two EMAs."""
        ema = classify_filter(ArmaFilter.ema(self.rho))
        return {
            "gradient normalisation": "multiply by sqrt(u + eps)/sqrt(v + eps)",
            "variance filter": f"{ema} on g^2 and on the squared updates",
        }


class _AdadeltaTracker(Tracker):
    def __init__(self, norm: AdadeltaNormaliser, size: int) -> None:
        self.norm = norm
        self.v = np.zeros(size)
        self.u = np.zeros(size)

    def gain(self, t: int, moments: Moments) -> FloatArray:
        rho, eps = self.norm.rho, self.norm.eps
        self.v = rho * self.v + (1.0 - rho) * moments.grad2
        scale = np.asarray(np.sqrt(self.u + eps) / np.sqrt(self.v + eps), dtype=np.float64)
        self.u = rho * self.u + (1.0 - rho) * scale * scale * moments.direction2
        return scale


Normaliser = RmsNormaliser | PeakNormaliser | AdadeltaNormaliser


# ----------------------------------------------------------------------------- the sign, weight decay, the update


@dataclass(frozen=True)
class SignNonlinearity(Stage):
    """Elementwise ``sign`` (Lion).

    Examples
    --------
    >>> from optfilters.stages import SignNonlinearity
    >>> SignNonlinearity().describe()
    'sign'
    """

    kind: str = field(default="sign", init=False)

    role: ClassVar[str] = "nonlinearity"
    is_linear: ClassVar[bool] = False

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """``d = sign(d)``."""
        sig.direction = LinComb.of(bld.new("sign", bld.materialise(sig.direction)))
        sig.outputs[self.key] = sig.direction

    def frozen_gain(self, second_moment: ArrayLike, t: int | None = None) -> Any:
        """1: the sign is left out (the direction only)."""
        return np.ones_like(np.asarray(second_moment, dtype=np.float64))

    def linearisation_note(self, how: str, second_moment: float | None = None) -> str:
        """Left out in the closed loop; its Gaussian closure (:meth:`gaussian_closure`) in the noisy-quadratic model."""
        if how == "frozen":
            return "linearised: sign() left out (direction only)"
        return (
            "sign() by its statistical linearisation (Gaussian closure: the relay's mean erf(mu/(sigma sqrt 2)), "
            "random-input gain sqrt(2/pi)/sigma exp(-mu^2/(2 sigma^2)) and variance 1 - mean^2; exact without "
            "noise from a fixed start); steady state = long-run average"
        )

    def gaussian_closure(self, mean: Any, std: Any) -> tuple[FloatArray, FloatArray, FloatArray]:
        """The sign's Gaussian closure: :meth:`gaussian` (mean, random-input gain, variance of ``sign x``)."""
        return self.gaussian(mean, std)

    def scalar_closure(self) -> Callable[[float, float], tuple[float, float, float]]:
        """:meth:`gaussian` for one coordinate with :func:`math.erf` (the same formulas, Python floats).

        Returns
        -------
        callable
            ``f(mean, std) -> (E[sign x], gain, Var[sign x])``.

        Examples
        --------
        >>> from optfilters.stages import SignNonlinearity
        >>> closure = SignNonlinearity().scalar_closure()
        >>> [round(v, 6) for v in closure(0.0, 1.0)], closure(-2.0, 0.0)
        ([0.0, 0.797885, 1.0], (-1.0, 0.0, 0.0))
        """
        return _sign_closure

    def tracker(self, size: int) -> Tracker:
        """The Gaussian (Bussgang) gain ``sqrt(2/pi) / rms(d)`` of the predicted direction."""
        return _SignTracker()

    def steady_dc(self, owner: str = "the model") -> None:
        """None: frozen at gain 1 at steady state."""
        return None

    def describe(self) -> str:
        """'sign'."""
        return "sign"

    def nonlinear_description(self) -> str:
        """What it does to the direction."""
        return f"takes the {self.describe()} of the direction"

    def table_cells(self) -> dict[str, str]:
        """``sign()`` in the normalisation column."""
        return {"gradient normalisation": "sign()"}

    def __call__(self, x: Any) -> FloatArray:
        """``sign(x)`` elementwise (0 at 0, as ``np.sign`` and ``torch.sign``)."""
        return np.asarray(np.sign(np.asarray(x, dtype=np.float64)), dtype=np.float64)

    def sinusoidal_gain(self, amplitude: Any) -> FloatArray:
        """The classical describing function of the unit relay: ``N(A) = 4 / (pi A)`` for ``A > 0``.

        The fundamental of ``sign(A sin wt)`` is ``(4 / pi) sin wt``
        (Gelb and Vander Velde, *Multiple-Input Describing Functions*, 1968).

        Parameters
        ----------
        amplitude : float or array_like
            The amplitude ``A`` of the sinusoidal input (units of the direction).

        Returns
        -------
        ndarray
            ``N(A)`` elementwise (units of ``1 / direction``; ``inf`` at ``A = 0``).

        Examples
        --------
        >>> from optfilters.stages import SignNonlinearity
        >>> float(SignNonlinearity().sinusoidal_gain(4.0 / 3.141592653589793))
        1.0
        """
        a = np.asarray(amplitude, dtype=np.float64)
        with np.errstate(divide="ignore"):
            return np.asarray(4.0 / (math.pi * a), dtype=np.float64)

    def gaussian(self, mean: Any, std: Any) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``E[sign x]``, the random-input gain ``E[sign'(x)]`` and ``Var[sign x]`` for ``x ~ N(mean, std^2)``.

        ``E[sign x] = erf(mean / (std sqrt 2))`` (the bias part of the
        dual-input describing function), the gain ``sqrt(2/pi) / std *
        exp(-mean^2 / (2 std^2))`` is the Bussgang / random-input describing
        function (``Cov(sign x, y) = gain * Cov(x, y)`` for any ``y`` jointly
        Gaussian with ``x``, by Price's theorem), and ``Var[sign x] = 1 -
        E[sign x]^2``.  With ``std = 0`` the input is deterministic: ``sign(mean)``,
        gain 0, variance 0.

        Parameters
        ----------
        mean : float or array_like
            The input's mean.
        std : float or array_like
            The input's standard deviation (``>= 0``), broadcast with ``mean``.

        Returns
        -------
        expected : ndarray
            ``E[sign x]``.
        gain : ndarray
            ``E[sign'(x)]`` (units of ``1 / direction``).
        variance : ndarray
            ``Var[sign x]``.

        Examples
        --------
        >>> from optfilters.stages import SignNonlinearity
        >>> m, gain, var = SignNonlinearity().gaussian([0.0, 1.0], [1.0, 0.0])
        >>> m.tolist(), gain.round(6).tolist(), var.tolist()
        ([0.0, 1.0], [0.797885, 0.0], [1.0, 0.0])
        """
        from scipy.special import erf

        mu = np.asarray(mean, dtype=np.float64)
        sd = np.asarray(std, dtype=np.float64)
        mu, sd = np.broadcast_arrays(mu, sd)
        random = sd > 0.0
        safe = np.where(random, sd, 1.0)
        with np.errstate(over="ignore", under="ignore"):
            expected = np.where(random, erf(mu / (safe * math.sqrt(2.0))), np.sign(mu))
            gain = np.where(random, math.sqrt(2.0 / math.pi) / safe * np.exp(-0.5 * (mu / safe) ** 2), 0.0)
        variance = np.where(random, np.maximum(1.0 - expected * expected, 0.0), 0.0)
        return (
            np.asarray(expected, dtype=np.float64),
            np.asarray(gain, dtype=np.float64),
            np.asarray(variance, dtype=np.float64),
        )


def _sign_closure(mean: float, std: float) -> tuple[float, float, float]:
    """:meth:`SignNonlinearity.gaussian` on floats (tests/optfilters/test_stages.py checks they agree)."""
    if not std > 0.0:  # deterministic: np.sign (nan stays nan)
        return (math.copysign(1.0, mean) if mean != 0.0 and mean == mean else mean), 0.0, 0.0
    z = mean / std
    expected = math.erf(z / math.sqrt(2.0))
    gain = math.sqrt(2.0 / math.pi) / std * math.exp(-0.5 * z * z)
    return expected, gain, max(1.0 - expected * expected, 0.0)


class _SignTracker(Tracker):
    def gain(self, t: int, moments: Moments) -> FloatArray:
        return np.asarray(math.sqrt(2.0 / math.pi) / np.sqrt(np.maximum(moments.direction2, 1e-300)), dtype=np.float64)


def _decay_factor(lam: float) -> Callable[[int, float], float]:
    def factor(t: int, lr: float) -> float:
        return 1 - lr * lam  # torch.optim: param.mul_(1 - lr * weight_decay)

    return factor


@dataclass(frozen=True)
class WeightDecay(Stage):
    """Weight decay: coupled L2 (``g += wd * theta``) or decoupled (``theta *= 1 - lr * wd``).

    Parameters
    ----------
    weight_decay : float
        The coefficient ``lambda`` (torch.optim's ``weight_decay``).
    decoupled : bool
        Applied to the parameter after the update (AdamW) rather than added to the gradient (L2).

    Examples
    --------
    >>> from optfilters.stages import WeightDecay
    >>> WeightDecay(0.01, decoupled=True).describe()
    'decoupled: theta *= 1 - lr*0.01'
    """

    weight_decay: float
    decoupled: bool = False

    role: ClassVar[str] = "weight_decay"

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """``param.mul_(1 - lr wd)`` (decoupled) or ``g = g + wd param`` (coupled; the direction follows)."""
        if self.weight_decay == 0.0:
            return
        lam = float(self.weight_decay)
        if self.decoupled:
            factor = _decay_factor(lam)
            bld.emit("mul_s_", None, sig.param, slot=bld.slot(factor, functools.partial(factor, 1)))
            return
        g = bld.new("add", sig.grad, sig.param, slot=bld.const(lam))
        if sig.direction.register != sig.grad:  # after a filter: the direction takes the decay too
            d = bld.materialise(sig.direction)
            sig.direction = LinComb.of(bld.new("add", d, sig.param, slot=bld.const(lam)))
        else:
            sig.direction = LinComb.of(g)
        sig.grad = g

    def loop_decay(self) -> tuple[float, float]:
        """``(wd, 0)`` coupled, ``(0, wd)`` decoupled."""
        return (0.0, self.weight_decay) if self.decoupled else (self.weight_decay, 0.0)

    def describe(self) -> str:
        """Short formula."""
        if self.decoupled:
            return f"decoupled: theta *= 1 - lr*{self.weight_decay:g}"
        return f"coupled L2: g += {self.weight_decay:g}*theta"

    def table_cells(self) -> dict[str, str]:
        """Decoupled or coupled."""
        return {"weight decay": "decoupled" if self.decoupled else "coupled (L2 into g)"}


@dataclass(frozen=True)
class LearningRate(Stage):
    """The update ``theta -= lr * c(t) * d``, with a time-varying factor ``c(t)`` on the learning rate.

    Every model has one (added at the end when not given); stages after it
    act on the updated parameter.

    Parameters
    ----------
    gain : Gain
        The learning-rate factor ``lr_t / lr`` (a schedule, Adagrad's ``lr_decay``; default 1).

    Examples
    --------
    >>> from optfilters.gains import InverseTimeDecay
    >>> from optfilters.stages import LearningRate
    >>> LearningRate(InverseTimeDecay(0.5)).describe()
    '1/(1+(t-1)*0.5)'
    """

    gain: Gain = field(default_factory=lambda: Constant(1.0))

    role: ClassVar[str] = "learning_rate"

    @property
    def is_constant(self) -> bool:
        """True when the factor on the learning rate is constant."""
        return self.gain.is_constant

    @property
    def is_time_invariant(self) -> bool:  # type: ignore[override]
        """True for a constant factor."""
        return self.gain.is_constant

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """``param += -(lr c(t)) * d`` (``addcdiv_`` when the direction carries a divisor)."""
        lr_coef = self.gain.coef()
        lc = sig.direction
        for reg, coef in lc.terms:
            slot = bld.update_slot(lr_coef.times(coef))
            if lc.den is not None:
                bld.emit("addcdiv_", None, sig.param, reg, lc.den, slot=slot)
            else:
                bld.emit("add_", None, sig.param, reg, slot=slot)

    def describe(self) -> str:
        """The factor's formula."""
        return self.gain.describe()

    def describe_line(self) -> str | None:
        """``learning rate: lr * c(t)`` for a time-varying factor, else nothing."""
        if self.gain.is_constant:
            return None
        return f"learning rate: lr * {self.gain.describe()}"

    def table_cells(self) -> dict[str, str]:
        """Separate, or built in."""
        if self.gain.is_constant:
            return {"learning-rate schedule": "separate"}
        return {"learning-rate schedule": f"built in: lr * {self.gain.describe()}"}
