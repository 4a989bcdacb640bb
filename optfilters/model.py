"""The optimizer model: an ordered sequence of stages, its step program and the reference numpy executor.

Update convention (per parameter element, step ``t = 1, 2, ...``) of the
models the catalogue builds::

    g      = -grad if maximize else grad
    g      = g + wd * theta                     (coupled weight decay)    | theta *= 1 - lr*wd (decoupled)
    d      = gradient filter (g)                (H(z), maybe time-varying / bias-corrected)
    d      = normaliser (d, g)                  (divide by an RMS or peak estimate of g)
    d      = post filter (d)                    (RMSprop's momentum)
    d      = sign(d)                            (Lion)
    theta  = theta - lr * lr_gain(t) * d

Any other order, and stage kinds defined outside the package, compose with
:func:`chain`.  ``H`` maps the (effective) gradient to the update direction
per unit learning rate; frequencies are in cycles per step.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import InvalidFilterError, StabilityWarning, StateResetWarning
from .filters import ArmaFilter, cascade
from .gains import Constant, Gain
from .program import LinComb, Program, ProgramBuilder, Signals, changed_forms, run_numpy
from .stages import LearningRate, LinearStage, Stage
from .validation import FrozenMapping, as_float_array, check_number, check_value_type

__all__ = ["NumpyOptimizer", "OptimizerModel", "StepPlan", "Trajectory", "chain"]

FloatArray = NDArray[np.float64]

#: The slots of the classic stage order, first to last (the order slot keywords insert stages in).
SLOTS = ("weight_decay", "gradient", "normaliser", "post", "nonlinearity", "learning_rate")
_RANK = {role: i for i, role in enumerate(SLOTS)}


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


def _set_role(stages: list[Stage], role: str, value: Stage | None) -> list[Stage]:
    """``stages`` with the stage of ``role`` replaced by ``value`` (inserted in slot order; removed for None)."""
    index = next((i for i, s in enumerate(stages) if s.role == role), None)
    if value is not None:
        value = value.with_role(role)
    if index is not None:
        if value is None:
            return stages[:index] + stages[index + 1 :]
        return [*stages[:index], value, *stages[index + 1 :]]
    if value is None:
        return stages
    rank = _RANK[role]
    position = next(
        (i for i, s in enumerate(stages) if s.role in _RANK and _RANK[s.role] > rank),
        len(stages),
    )
    return [*stages[:position], value, *stages[position:]]


@dataclass(frozen=True, init=False)
class OptimizerModel:
    """An optimizer described as an ordered sequence of stages.

    The stages (:attr:`pipeline`) run in order on each step's signals (the
    effective gradient, the direction, the parameter); exactly one is the
    update :class:`~optfilters.stages.LearningRate` (appended at the end when
    not given).  Build catalogue models with :func:`optfilters.get` and
    compositions with :func:`optfilters.chain`; the value is immutable.

    The classic slots are keywords (and properties): ``gradient``,
    ``normaliser``, ``post``, ``nonlinearity``, ``weight_decay`` and
    ``lr_gain`` set (or, with None, remove) the stage of that role, in the
    order weight decay, gradient filter, normaliser, post-filter,
    nonlinearity, learning rate.  With ``pipeline`` given too, they replace
    its stages of those roles (which is what ``dataclasses.replace(model,
    weight_decay=...)`` does).

    Parameters
    ----------
    name : str
        Catalogue name (``"adam"``) or a label.
    hyperparameters : mapping
        Every hyperparameter by its torch.optim name, defaults filled in.
    gradient : LinearStage or None
        Filter on the effective gradient (None: identity).
    normaliser : Stage or None
        Elementwise normalisation by a running estimate of the gradient scale
        (:class:`~optfilters.stages.RmsNormaliser`, ...).
    post : LinearStage or None
        Filter after normalisation (RMSprop's momentum buffer).
    nonlinearity : Stage or None
        Elementwise nonlinearity (Lion's sign).
    weight_decay : WeightDecay or None
        Coupled (L2) or decoupled weight decay.
    lr_gain : Gain
        Time-varying factor on the learning rate (Adagrad's ``lr_decay``).
    maximize : bool
        Ascend instead of descend (torch's ``maximize``).
    description : str
        One line for listings.
    pipeline : sequence of Stage, optional
        The stages in execution order (any stage kinds, see
        :class:`optfilters.stages.Stage`).

    Examples
    --------
    >>> import optfilters
    >>> m = optfilters.get("momentum", momentum=0.9)
    >>> m.is_linear, m.is_time_invariant
    (True, True)
    >>> round(m.filters()["gradient"].dc_gain, 9)
    10.0
    >>> [stage.role for stage in m.pipeline]
    ['gradient', 'learning_rate']
    """

    name: str
    hyperparameters: Mapping[str, Any]
    pipeline: tuple[Stage, ...]
    maximize: bool
    description: str

    def __init__(
        self,
        name: str,
        hyperparameters: Mapping[str, Any] | None = None,
        gradient: LinearStage | None = _UNSET,
        normaliser: Stage | None = _UNSET,
        post: LinearStage | None = _UNSET,
        nonlinearity: Stage | None = _UNSET,
        weight_decay: Stage | None = _UNSET,
        lr_gain: Gain = _UNSET,
        maximize: bool = False,
        description: str = "",
        pipeline: Iterable[Stage] | None = None,
    ) -> None:
        stages = list(pipeline) if pipeline is not None else []
        for stage in stages:
            if not isinstance(stage, Stage):
                raise TypeError(
                    f"pipeline entries must be stages (optfilters.stages.Stage), got {type(stage).__name__}"
                )
        slots = {"weight_decay": weight_decay, "gradient": gradient, "normaliser": normaliser, "post": post}
        slots["nonlinearity"] = nonlinearity
        for role, value in slots.items():
            if value is not _UNSET:
                stages = _set_role(stages, role, value)
        updates = [s for s in stages if s.role == "learning_rate"]
        if len(updates) > 1:
            raise InvalidFilterError(f"a model has one learning-rate (update) stage, got {len(updates)}")
        if lr_gain is not _UNSET:
            stages = _set_role(stages, "learning_rate", LearningRate(lr_gain))
        elif not updates:
            stages.append(LearningRate(Constant(1.0)))
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "hyperparameters", FrozenMapping(dict(hyperparameters or {})))
        object.__setattr__(self, "pipeline", tuple(stages))
        object.__setattr__(self, "maximize", bool(maximize))
        object.__setattr__(self, "description", description)

    # ----------------------------------------------------------------- structure
    def _role(self, role: str) -> Any:
        return next((s for s in self.pipeline if s.role == role), None)

    @property
    def gradient(self) -> LinearStage | None:
        """The gradient filter stage (None: identity)."""
        stage: LinearStage | None = self._role("gradient")
        return stage

    @property
    def normaliser(self) -> Any:
        """The normaliser stage, or None."""
        return self._role("normaliser")

    @property
    def post(self) -> LinearStage | None:
        """The post-filter stage, or None."""
        stage: LinearStage | None = self._role("post")
        return stage

    @property
    def nonlinearity(self) -> Any:
        """The nonlinearity stage (Lion's sign), or None."""
        return self._role("nonlinearity")

    @property
    def weight_decay(self) -> Any:
        """The weight-decay stage, or None."""
        return self._role("weight_decay")

    @property
    def lr_gain(self) -> Gain:
        """The time-varying factor on the learning rate: the update stage's ``gain`` (1 for kinds without one)."""
        gain: Gain = getattr(self._role("learning_rate"), "gain", Constant(1.0))
        return gain

    @property
    def lr(self) -> float:
        """The learning rate hyperparameter (1.0 when the model has none)."""
        return float(self.hyperparameters.get("lr", 1.0))

    @property
    def stages(self) -> tuple[tuple[str, Any], ...]:
        """``(role, stage)`` pairs in execution order.

        Examples
        --------
        >>> import optfilters
        >>> [role for role, _ in optfilters.get("adamw").stages]
        ['weight_decay', 'gradient', 'normaliser', 'learning_rate']
        """
        return tuple((stage.role, stage) for stage in self.pipeline)

    @property
    def nonlinear_stages(self) -> tuple[Stage, ...]:
        """The stages whose output is not a linear function of their inputs (normalisers, the sign).

        Examples
        --------
        >>> import optfilters
        >>> [s.role for s in optfilters.get("lion").nonlinear_stages]
        ['nonlinearity']
        """
        return tuple(stage for stage in self.pipeline if not stage.is_linear)

    def unstable_filters(self) -> dict[str, float]:
        """The linear stages whose filter has a pole outside the unit circle (or a repeated one on it), by name.

        Each term of a linear stage is realised with its own memories, so each
        term's poles count (a sum of terms has no other poles).  This is the
        check behind the executors' :class:`~optfilters.StabilityWarning`.

        Returns
        -------
        dict of str to float
            Stage name to the largest pole modulus of its unstable terms
            (``1.0`` for a repeated pole on the circle), in pipeline order;
            empty when every filter is stable or marginal.

        Examples
        --------
        >>> import optfilters
        >>> optfilters.get("momentum", momentum=1.5).unstable_filters()
        {'gradient': 1.5}
        >>> optfilters.get("adam").unstable_filters()
        {}
        """
        out: dict[str, float] = {}
        for key, stage in self.linear_stages().items():
            unstable = [term.filter for term in stage.terms if _is_unstable(term.filter)]
            if unstable:
                out[key] = max(float(abs(f.poles).max()) for f in unstable)
        return out

    def linear_stages(self) -> dict[str, LinearStage]:
        """The linear stages by name: ``gradient``, the normaliser's ``second_moment`` / ``center``, ``post``.

        The gradient stage is the identity when the model has none.

        Returns
        -------
        dict of str to LinearStage
            By name, in pipeline order.

        Examples
        --------
        >>> import optfilters
        >>> sorted(optfilters.get("rmsprop", centered=True).linear_stages())
        ['center', 'gradient', 'second_moment']
        """
        out: dict[str, LinearStage] = {"gradient": self.gradient_stage}
        for stage in self.pipeline:
            out.update(stage.linear_stages())
        return out

    @property
    def gradient_stage(self) -> LinearStage:
        """The gradient filter stage (the identity when the model has none)."""
        gradient = self.gradient
        if gradient is not None:
            return gradient
        return LinearStage.of(ArmaFilter.identity(), "gradient")

    def filters(self) -> dict[str, ArmaFilter]:
        """Each linear stage's LTI filter (its ``t -> infinity`` limit when time-varying).

        Returns
        -------
        dict of str to ArmaFilter
            By stage name (see :meth:`linear_stages`), each renamed to its key.

        Examples
        --------
        >>> import optfilters
        >>> f = optfilters.get("adam", beta1=0.9).filters()
        >>> f["gradient"].b.round(12).tolist(), f["gradient"].a.tolist()
        ([0.1], [1.0, -0.9])
        """
        return {name: stage.limit().renamed(name) for name, stage in self.linear_stages().items()}

    @property
    def is_linear(self) -> bool:
        """True when the update is a linear function of the gradient sequence (no normaliser, no sign).

        Examples
        --------
        >>> import optfilters
        >>> optfilters.get("nesterov").is_linear, optfilters.get("adam").is_linear
        (True, False)
        """
        return all(stage.is_linear for stage in self.pipeline)

    @property
    def is_time_invariant(self) -> bool:
        """True when every stage is time-invariant (no bias correction, schedules or first-step quirks).

        Examples
        --------
        >>> import optfilters
        >>> optfilters.get("adam").is_time_invariant
        False
        """
        return all(stage.is_time_invariant for stage in self.pipeline)

    @property
    def period(self) -> int | None:
        """The period of the model's periodically time-varying stages (the lcm of theirs), None if it has none.

        Examples
        --------
        >>> import optfilters
        >>> optfilters.lookahead("sgd", k=5).period, optfilters.get("adam").period
        (5, None)
        """
        periods = [stage.period for stage in self.pipeline if stage.period is not None]
        return math.lcm(*periods) if periods else None

    @property
    def parameter_output(self) -> str | None:
        """The state key of the averaged parameters the model keeps (EMA/SWA/Polyak averages), None if none.

        Raises
        ------
        InvalidFilterError
            If two stages keep one.

        Examples
        --------
        >>> import optfilters
        >>> optfilters.get("asgd").parameter_output, optfilters.get("sgd").parameter_output
        ('averaged', None)
        """
        keys = [stage.parameter_output for stage in self.pipeline if stage.parameter_output is not None]
        if len(keys) > 1:
            raise InvalidFilterError(f"{self.name} has {len(keys)} stages that keep averaged parameters; keep one")
        return keys[0] if keys else None

    def direction_parts(self) -> list[ArmaFilter]:
        """The LTI filters the direction passes through, in order (the gradient filter first, the identity if none).

        Nonlinear stages are left out; see :meth:`linearised_filter`.

        Returns
        -------
        list of ArmaFilter
            The stages' ``t -> infinity`` limits, in pipeline order.

        Examples
        --------
        >>> import optfilters
        >>> [f.a.tolist() for f in optfilters.get("rmsprop", momentum=0.5).direction_parts()]
        [[1.0], [1.0, -0.5]]
        """
        parts: list[ArmaFilter] = []
        for stage in self.pipeline:
            f = stage.direction_filter()
            if f is not None:
                if not parts and stage.role != "gradient":
                    parts.append(self.gradient_stage.limit())
                parts.append(f)
        return parts or [self.gradient_stage.limit()]

    def direction_filter(self) -> ArmaFilter:
        """The whole linear map from effective gradient to update direction (per unit lr), LTI limit.

        This is the gradient filter cascaded with the post-filter.  Only for
        linear models: normalised models need :meth:`linearised_filter`.

        Returns
        -------
        ArmaFilter
            The cascade of :meth:`direction_parts` times the learning-rate
            gain's limit, in ``z^-1`` (one step per sample), named after the model.

        Raises
        ------
        InvalidFilterError
            If the model has a normaliser or a nonlinearity.

        Examples
        --------
        >>> import optfilters
        >>> optfilters.get("nesterov", momentum=0.9).direction_filter().b.round(9).tolist()
        [1.9, -0.9]
        """
        if not self.is_linear:
            raise InvalidFilterError(
                f"{self.name} is not linear (it normalises or takes a sign); use linearised_filter(second_moment=...)"
            )
        return cascade(*self.direction_parts()).renamed(self.name) * self.lr_gain.limit

    def frozen_gain(self, second_moment: ArrayLike = 1.0, t: int | None = None) -> Any:
        """The product of the nonlinear stages' frozen gains at second moment ``v`` (1 for linear models).

        This is the preconditioner ``1 / (sqrt(v) + eps)`` of Adam (see
        :meth:`optfilters.stages.Stage.frozen_gain`).

        Parameters
        ----------
        second_moment : float or array_like, optional
            ``v`` per coordinate (units of a squared gradient).
        t : int or None, optional
            The step count; None (default) is the ``t -> infinity`` limit.

        Returns
        -------
        ndarray
            The gain per coordinate, the shape of ``second_moment``.

        Examples
        --------
        >>> import optfilters
        >>> float(optfilters.get("adam", eps=0.0).frozen_gain(4.0))
        0.5
        """
        v = np.asarray(second_moment, dtype=np.float64)
        gain: Any = np.ones_like(v)
        for stage in self.nonlinear_stages:
            gain = gain * stage.frozen_gain(v, t)
        return gain

    def linearised_filter(self, second_moment: float = 1.0) -> ArmaFilter:
        """The direction filter with the normaliser frozen at a second moment ``v`` (linearisation).

        For RMS normalisers the direction is divided by ``sqrt(v) + eps``
        (``sqrt(v + eps)`` when eps sits inside the root); for Adamax by ``sqrt(v)
        + eps`` read as the peak level; for Adadelta multiplied by
        ``sqrt(eps) / sqrt(v + eps)`` (its ``u`` at rest); Lion's sign is left
        out (direction only).  Each stage kind defines its own
        (:meth:`~optfilters.stages.Stage.frozen_gain`).  Linear models return
        :meth:`direction_filter`.

        Parameters
        ----------
        second_moment : float, optional
            ``v``, the (bias-corrected) second moment the normaliser is frozen
            at (units of a squared gradient), finite and ``>= 0``.

        Returns
        -------
        ArmaFilter
            The direction filter times the frozen gain, in ``z^-1`` (one step
            per sample).

        Raises
        ------
        InvalidFilterError
            If ``second_moment`` is negative or not finite.

        Examples
        --------
        >>> import optfilters
        >>> f = optfilters.get("adam", eps=0.0).linearised_filter(second_moment=4.0)
        >>> round(f.dc_gain, 12)
        0.5
        """
        if not (second_moment >= 0.0 and math.isfinite(second_moment)):
            raise InvalidFilterError(f"second_moment must be finite and >= 0, got {second_moment}")
        scale = 1.0
        for stage in self.nonlinear_stages:
            scale = float(scale * stage.frozen_gain(second_moment))
        return (cascade(*self.direction_parts()) * (scale * self.lr_gain.limit)).renamed(self.name)

    def loop_decay(self) -> tuple[float, float]:
        """``(coupled, decoupled)`` weight decay of the model (what the closed loop on a quadratic sees).

        Returns
        -------
        tuple of float
            The sums of the stages' :meth:`~optfilters.stages.Stage.loop_decay`.

        Examples
        --------
        >>> import optfilters
        >>> optfilters.get("adamw", weight_decay=0.1).loop_decay()
        (0.0, 0.1)
        """
        coupled = decoupled = 0.0
        for stage in self.pipeline:
            c, d = stage.loop_decay()
            coupled += c
            decoupled += d
        return coupled, decoupled

    # ----------------------------------------------------------------- evaluation point
    @property
    def has_eval_rule(self) -> bool:
        """True when a stage evaluates the model elsewhere than at the stored parameter (Schedule-Free).

        Examples
        --------
        >>> import optfilters
        >>> optfilters.get("adam").has_eval_rule, optfilters.get("sgd-schedule-free").has_eval_rule
        (False, True)
        """
        return any(stage.has_eval_rule for stage in self.pipeline)

    def swap_program(self, mode: str) -> Program:
        """The program that moves the parameter to the evaluation point (``"eval"``) or back (``"train"``).

        Each stage contributes :meth:`optfilters.stages.Stage.emit_eval`; the
        program reads the parameter and the stages' state (``program.keys``).

        Parameters
        ----------
        mode : {"eval", "train"}
            The direction of the switch.

        Returns
        -------
        Program
            The switch's program (empty for models without an eval rule).

        Raises
        ------
        ValueError
            For a mode other than ``"eval"`` and ``"train"``.
        """
        if mode not in ("eval", "train"):
            raise ValueError(f"mode must be 'eval' or 'train', got {mode!r}")
        bld = ProgramBuilder()
        sig = Signals.start("grad")
        for stage in self.pipeline:
            stage.emit_eval(bld, sig, mode)
        return bld.program()

    # ----------------------------------------------------------------- execution
    def plan(self, state_dtype: str = "float64", linearised: bool = False) -> StepPlan:
        """The step programs of this model (see :class:`StepPlan`).

        Parameters
        ----------
        state_dtype : {"float64", "float32", "float16"}, optional
            The dtype of the filter state.
        linearised : bool, optional
            The noisy-quadratic model's linearised step.

        Returns
        -------
        StepPlan
            The programs, built on demand and cached per variant.
        """
        return StepPlan(self, state_dtype, linearised)

    def optimizer(self, theta0: ArrayLike, lr: float | None = None) -> NumpyOptimizer:
        """A step-by-step numpy executor of this model starting at ``theta0``.

        Parameters
        ----------
        theta0 : array_like
            The initial parameters.
        lr : float, optional
            The learning rate (default: the model's ``lr``).

        Returns
        -------
        NumpyOptimizer
            A fresh executor (state at its initial values, ``t = 0``).

        Examples
        --------
        >>> import optfilters
        >>> opt = optfilters.get("sgd", lr=0.1).optimizer(theta0=[1.0])
        >>> opt.step([2.0]).tolist()
        [0.8]
        """
        return NumpyOptimizer(self, theta0, lr=lr)

    def simulate(
        self,
        gradients: ArrayLike | Callable[[FloatArray, int], ArrayLike],
        theta0: ArrayLike = 0.0,
        steps: int | None = None,
        lr: float | None = None,
    ) -> Trajectory:
        """Run the exact recursion: open loop over a gradient sequence, or closed loop over a gradient function.

        Parameters
        ----------
        gradients : array_like or callable
            Either raw loss gradients with time on the first axis (open loop:
            ``gradients[t-1]`` is the gradient at step ``t``), or
            ``grad_fn(theta, t)`` returning the gradient at the current point
            (closed loop).
        theta0 : array_like
            Initial parameters.
        steps : int, optional
            Number of steps (required with a callable).
        lr : float, optional
            Learning rate (default: the model's ``lr``).

        Returns
        -------
        Trajectory
            With the averaged parameters (:attr:`Trajectory.averaged`) when the
            model keeps them (:attr:`parameter_output`).

        Raises
        ------
        ValueError
            When ``gradients`` is a callable and ``steps`` is not given.

        Examples
        --------
        >>> import optfilters
        >>> traj = optfilters.get("momentum", lr=1.0, momentum=0.5).simulate([1.0, 0.0, 0.0])
        >>> traj.updates.ravel().tolist()
        [-1.0, -0.5, -0.25]
        """
        opt = self.optimizer(theta0, lr=lr)
        params = [opt.theta.copy()]
        keeps_average = self.parameter_output is not None
        averaged = [opt.averaged.copy()] if keeps_average else []
        if callable(gradients):
            if steps is None:
                raise ValueError("steps is required with a gradient function")
            grad_fn = gradients
            seq: Iterator[ArrayLike] = (grad_fn(opt.theta.copy(), t) for t in range(1, steps + 1))
        else:
            array = np.asarray(gradients, dtype=np.float64)
            if steps is not None:
                array = array[:steps]
            seq = iter(array)
        for grad in seq:
            params.append(opt.step(grad).copy())
            if keeps_average:
                averaged.append(opt.averaged.copy())
        stacked = np.stack(params)
        return Trajectory(
            params=stacked, updates=np.diff(stacked, axis=0), averaged=np.stack(averaged) if keeps_average else None
        )

    def _repr_html_(self) -> str:
        """Jupyter: hyperparameters and the stages as a small table (:func:`optfilters.display.model_html`)."""
        from .display import model_html

        return model_html(self)

    def _repr_latex_(self) -> str:
        """Jupyter: each linear stage's H(z) as display math."""
        from .display import model_latex

        return model_latex(self)

    def describe(self) -> str:
        """Several lines: one per stage.

        Returns
        -------
        str
            The model's name and hyperparameters, then one line per stage
            (:meth:`~optfilters.stages.Stage.describe_line`).

        Examples
        --------
        >>> import optfilters
        >>> print(optfilters.get("sgd").describe().splitlines()[0])
        sgd: lr=0.001, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False
        """
        hps = ", ".join(f"{k}={_fmt_value(v)}" for k, v in self.hyperparameters.items())
        lines = [f"{self.name}: {hps}"]
        for stage in self.pipeline:
            line = stage.describe_line()
            if line is not None:
                lines.append(f"  {line}")
        if self.maximize:
            lines.append("  maximize: the gradient is negated first")
        return "\n".join(lines)


def _fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_fmt_value(v) for v in value) + ")"
    return str(value)


def _part_name(part: Any) -> str:
    if isinstance(part, OptimizerModel):
        return part.name
    if isinstance(part, ArmaFilter):
        return part.name or "filter"
    return str(part.key)


def chain(
    *parts: Stage | ArmaFilter | OptimizerModel,
    name: str | None = None,
    lr: float | None = None,
    lr_gain: Gain | None = None,
    maximize: bool = False,
    hyperparameters: Mapping[str, Any] | None = None,
    description: str = "",
) -> OptimizerModel:
    """Compose a model from stages, filters and models, run in the order given (optax's ``chain``).

    Parameters
    ----------
    *parts : Stage, ArmaFilter or OptimizerModel
        A stage of any kind (``optfilters.get("adam").normaliser``, a stage kind
        of your own); a filter ``H(z)``, which becomes a gradient filter (a
        :class:`~optfilters.stages.LinearStage` named ``gradient``); or a model,
        which contributes its stages except its learning rate.  The update
        (:class:`~optfilters.stages.LearningRate`) comes last unless given
        among the parts: stages after it act on the updated parameter.
    name : str, optional
        Label (default: the parts' names joined with ``+``).
    lr : float, optional
        The learning rate hyperparameter.
    lr_gain : Gain, optional
        A time-varying factor on the learning rate (default: that of the first
        model part, else 1).
    maximize : bool
        Ascend instead of descend.
    hyperparameters : mapping, optional
        Further values to record (``lr`` is added).
    description : str
        One line for listings.

    Returns
    -------
    OptimizerModel
        Accepted by :class:`optfilters.torch.FilterOptimizer` and every
        analysis function.

    Raises
    ------
    TypeError
        For a part that is not a stage, a filter or a model.

    Examples
    --------
    A 4th-order Butterworth gradient filter followed by Adam's normaliser:

    >>> import optfilters
    >>> model = optfilters.chain(optfilters.get("butterworth", order=4, cutoff=0.02), optfilters.get("adam").normaliser)
    >>> [role for role, _ in model.stages]
    ['gradient', 'normaliser', 'learning_rate']
    >>> model.name
    'butterworth+normaliser'
    """
    stages: list[Stage] = []
    gain = lr_gain
    for part in parts:
        if isinstance(part, OptimizerModel):
            for stage in part.pipeline:
                if stage.role == "learning_rate":
                    if gain is None and not stage.is_time_invariant:
                        gain = part.lr_gain
                    continue
                stages.append(stage)
        elif isinstance(part, ArmaFilter):
            stages.append(LinearStage.of(part, "gradient"))
        elif isinstance(part, Stage):
            stages.append(part)
        else:
            raise TypeError(
                f"chain() takes stages, filters (ArmaFilter) and models (OptimizerModel), got {type(part).__name__}"
            )
    hps = dict(hyperparameters or {})
    if lr is not None:
        hps["lr"] = lr
    named = [part for part in parts if not (isinstance(part, Stage) and part.role == "learning_rate")]
    label = name if name is not None else "+".join(_part_name(part) for part in named) or "chain"
    if not any(stage.role == "learning_rate" for stage in stages):
        stages.append(LearningRate(gain if gain is not None else Constant(1.0)))
    elif lr_gain is not None:
        raise TypeError("chain(): give the learning-rate factor in the LearningRate stage or as lr_gain, not both")
    return OptimizerModel(label, hps, maximize=maximize, description=description, pipeline=stages)


# ----------------------------------------------------------------------------- the step program


def build_program(
    model: OptimizerModel, state_dtype: str, variants: tuple[Any, ...], linearised: bool = False
) -> Program:
    """The step program of ``model`` for one combination of the stages' variants.

    ``linearised`` builds the noisy-quadratic model's linearised step: each
    nonlinear stage ``i`` multiplies the direction by the register ``gain.<i>``,
    and the signals entering it are tapped as ``<i>.grad`` and ``<i>.direction``.
    """
    bld = ProgramBuilder(state_dtype, linearised)
    g = "grad"
    if model.maximize:
        g = bld.new("neg", g)
    sig = Signals.start(g)
    for stage, variant in zip(model.pipeline, variants, strict=True):
        if not linearised or stage.is_linear:
            stage.emit_before(bld, sig, variant)
    for i, (stage, variant) in enumerate(zip(model.pipeline, variants, strict=True)):
        if not linearised:
            stage.emit(bld, sig, variant)
            continue
        if not stage.is_linear:
            x = bld.materialise(sig.direction)
            sig.direction = LinComb.of(x)
            bld.tap(f"{i}.grad", sig.grad)
            bld.tap(f"{i}.direction", x)
        stage.emit_linearised(bld, sig, variant, f"gain.{i}")
    return bld.program()


class StepPlan:
    """The step programs of one model for one state dtype: one per combination of the stages' variants.

    Parameters
    ----------
    model : OptimizerModel
    state_dtype : {"float64", "float32", "float16"}
        The dtype of the filter state.
    linearised : bool
        The noisy-quadratic model's linearised step (see :func:`build_program`).

    Examples
    --------
    >>> import optfilters
    >>> plan = optfilters.get("adam").plan()
    >>> [spec.key for spec in plan.program(1).state]
    ['gradient.0', 'second_moment.0']
    >>> plan.program(1) is plan.program(2)
    True
    """

    def __init__(self, model: OptimizerModel, state_dtype: str = "float64", linearised: bool = False) -> None:
        self.model = model
        self.state_dtype = state_dtype
        self.linearised = linearised
        self._size = len(model.pipeline)
        self._varying = tuple((i, stage.variant) for i, stage in enumerate(model.pipeline) if stage.varies)
        self._variant_fns = tuple(variant for _, variant in self._varying)
        self._programs: dict[tuple[Any, ...], Program] = {}
        self._single: Program | None = None

    @property
    def varying_stages(self) -> tuple[Stage, ...]:
        """The stages whose operations differ between steps (the plan then has several programs)."""
        return tuple(self.model.pipeline[i] for i, _ in self._varying)

    def variants(self, t: int | None) -> tuple[Any, ...]:
        """Each stage's variant at step ``t`` (None: the ``t -> infinity`` limit).

        Parameters
        ----------
        t : int or None
            The step count (``t >= 1``), or None.

        Returns
        -------
        tuple
            One entry per stage, in pipeline order: its
            :meth:`~optfilters.stages.Stage.variant` when it
            :attr:`~optfilters.stages.Stage.varies`, else None.
        """
        out: list[Any] = [None] * self._size
        for i, variant in self._varying:
            out[i] = variant(t)
        return tuple(out)

    def program(self, t: int | None) -> Program:
        """The program for step ``t`` (None: the ``t -> infinity`` limit, whose scalars are the limits).

        Parameters
        ----------
        t : int or None
            The step count (``t >= 1``), or None.

        Returns
        -------
        Program
            The program of the stages' variants at ``t`` (the same object for
            steps with the same variants).
        """
        if not self._varying:
            single = self._single
            if single is None:
                variants = (None,) * self._size
                single = self._single = build_program(self.model, self.state_dtype, variants, self.linearised)
            return single
        fns = self._variant_fns
        key = (fns[0](t),) if len(fns) == 1 else tuple([fn(t) for fn in fns])
        program = self._programs.get(key)
        if program is None:
            program = self._programs[key] = build_program(
                self.model, self.state_dtype, self.variants(t), self.linearised
            )
        return program


@dataclass(frozen=True)
class Trajectory:
    """Parameters ``params[t]`` (``params[0]`` initial), updates ``params[t] - params[t-1]`` and averaged parameters.

    ``averaged[t]`` is the model's averaged parameters after step ``t``
    (``averaged[0]`` the initial point) for models that keep them
    (:attr:`OptimizerModel.parameter_output`), else None.

    Attributes
    ----------
    params : ndarray, shape (T + 1, ...)
        ``params[0]`` the start, ``params[t]`` the parameter after step ``t``.
    updates : ndarray, shape (T, ...)
        ``params[t] - params[t - 1]``.
    averaged : ndarray, shape (T + 1, ...), or None
        The averaged parameters (``averaged[0]`` the start), or None.

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters import Trajectory
    >>> Trajectory(params=np.zeros((2, 1)), updates=np.zeros((1, 1))).steps
    1
    """

    params: FloatArray
    updates: FloatArray
    averaged: FloatArray | None = None

    @property
    def steps(self) -> int:
        """Number of steps taken."""
        return int(self.updates.shape[0])


def _is_unstable(f: ArmaFilter) -> bool:
    """``f.stability == "unstable"``, without a root finder for one pole (the per-step check of momentum schedules)."""
    a = f.a
    if a.size == 1:
        return False
    if a.size == 2:
        return bool(abs(a[1]) > abs(a[0]))  # exact, as the filter's own verdict: |pole| > 1
    return f.stability == "unstable"


class NumpyOptimizer:
    """Reference executor: runs an :class:`OptimizerModel` step by step on numpy float64 arrays.

    It runs the model's step program (each stage kind's one definition of its
    step, :meth:`optfilters.stages.Stage.emit`) with numpy, so it is the
    literal recursion that the model describes and that the PyTorch bridge
    runs; it is checked against independently written optimizers and used by
    the analysis.  :attr:`state` holds the stages' state arrays by key, as the
    bridge's ``optimizer.state[p]`` does (and the scalars carried between steps,
    NAdam's ``mu_product``, ASGD's ``eta`` and ``mu``, as 0-dim arrays).

    Hyperparameters may change between steps, as a scheduler changes a torch
    optimizer's: assign :attr:`lr`, call :meth:`set` (catalogue models) or
    assign another :attr:`model`.  The state carries over in each stage's own
    state form (torch.optim's buffers), which is what makes a run with
    changing coefficients well defined; state arrays whose structure the change
    alters (another order of a designed filter) restart from their initial
    value with a :class:`~optfilters.StateResetWarning`.  A model whose
    filter is unstable runs (its parameters saturate to ``inf`` without numpy
    warnings, as the bridge's do) after one :class:`~optfilters.StabilityWarning`
    per filter, as the bridge warns.

    Parameters
    ----------
    model : OptimizerModel
    theta0 : array_like
        Initial parameters (copied).
    lr : float, optional
        Learning rate (default: the model's).
    scalar_dtype : {"float32", "float64"}
        Precision of the scalars carried between steps (torch.optim keeps
        NAdam's ``mu_product`` and ASGD's ``eta`` and ``mu`` in
        ``torch.get_default_dtype()``'s precision: float32 unless it was
        changed to float64).

    Raises
    ------
    ValueError
        When a stage cannot take ``theta0``'s shape (Muon's orthogonalisation:
        matrices only), here as torch.optim.Muon's constructor refuses it; also
        when another :attr:`model` is assigned.

    Warns
    -----
    StabilityWarning
        Once per linear stage whose filter is unstable (see
        :meth:`OptimizerModel.unstable_filters`), when the model is set.

    Examples
    --------
    >>> import optfilters
    >>> opt = optfilters.get("adam", lr=0.1).optimizer([0.0])
    >>> opt.step([3.0]).round(9).tolist()   # Adam's first step is lr * sign(g)
    [-0.1]
    >>> sorted(opt.state)
    ['gradient.0', 'second_moment.0']

    Nesterov momentum whose ``momentum`` changes every step, as
    ``torch.optim.SGD(nesterov=True)`` runs it (``buf = mu buf + g``, update
    ``g + mu buf``):

    >>> opt = optfilters.get("nesterov", lr=1.0).optimizer([0.0])
    >>> steps = []
    >>> for mu, g in zip((0.9, 0.9, 0.8), (-0.5, 0.5, 1.5)):
    ...     opt.set(momentum=mu)
    ...     before = float(opt.theta[0])
    ...     steps.append(round(before - float(opt.step([g])[0]), 6))
    >>> steps
    [-0.95, 0.545, 2.732]
    """

    def __init__(
        self, model: OptimizerModel, theta0: ArrayLike, lr: float | None = None, scalar_dtype: str = "float32"
    ) -> None:
        if scalar_dtype not in ("float32", "float64"):
            raise ValueError(f"scalar_dtype must be 'float32' or 'float64', got {scalar_dtype!r}")
        self.theta = as_float_array(theta0, "theta0", ndim=None)
        check_value_type("lr", lr, "float")  # a number, never text (as the bridge's param groups)
        self.lr = check_number(model.lr if lr is None else lr, "lr", low=0.0)
        self.t = 0
        self.scalar_dtype = scalar_dtype
        self.state: dict[str, Any] = {}
        self.training = True
        self._forms: dict[str, Any] = {}
        self._last: Program | None = None
        self._unstable_warned: set[str] = set()  # the filters already warned about (StabilityWarning, once each)
        self.model = model

    @property
    def model(self) -> OptimizerModel:
        """The model the next step runs (assign another one to change hyperparameters between steps)."""
        return self._model

    @model.setter
    def model(self, model: OptimizerModel) -> None:
        if not isinstance(model, OptimizerModel):
            raise TypeError(f"model must be an OptimizerModel, got {type(model).__name__}")
        for stage in model.pipeline:  # a shape a stage cannot take (Muon: matrices only) is refused now, not at a step
            stage.check_shape(tuple(self.theta.shape))
        self._model = model
        self._plan = StepPlan(model, "float64")
        for key, radius in model.unstable_filters().items():
            if key not in self._unstable_warned:
                self._unstable_warned.add(key)
                where = f"|z| = {radius:.6g} > 1" if radius > 1 else f"|z| = {radius:.6g}, repeated"
                warnings.warn(
                    f"NumpyOptimizer({model.name}): the {key} filter is UNSTABLE (a pole at {where}): "
                    "its output, and the parameters, grow without bound",
                    StabilityWarning,
                    stacklevel=3,
                )

    def set(self, **hyperparameters: Any) -> None:
        """Change hyperparameters before the next step (``lr`` included), keeping the state.

        The model is rebuilt by :func:`optfilters.as_model` (catalogue models
        take any of their hyperparameters; other models ``lr`` only).  Values
        are taken as they are, as the bridge's param groups take them: text or
        bytes for a number, or anything but ``True``/``False`` for a bool
        (``nesterov="False"``), is refused naming the key
        (:func:`optfilters.validation.check_value_type`).
        """
        from .catalogue import CATALOGUE, as_model  # the catalogue builds on this module

        kinds: dict[str, str] = {"maximize": "bool"}
        if self.model.name in CATALOGUE:
            kinds.update({hp.name: hp.kind for hp in CATALOGUE[self.model.name].hyperparameters})
        for key, value in hyperparameters.items():  # betas and packed tuples (Adafactor's eps): numbers
            check_value_type(key, value, kinds.get(key, "floats"))
        lr = hyperparameters.pop("lr", None)
        if hyperparameters:
            self.model = as_model(self.model, **hyperparameters)
        if lr is not None:
            self.lr = check_number(lr, "lr", low=0.0)

    def step(self, grad: ArrayLike) -> FloatArray:
        """Take one step with the raw loss gradient ``grad``; returns the new parameters.

        Parameters
        ----------
        grad : array_like
            The loss gradient at the current parameters, the parameters' shape
            (a scalar broadcasts).

        Returns
        -------
        ndarray
            The parameters after the step (float64, the shape of ``theta0``);
            the executor's own array, updated in place by later steps.

        Raises
        ------
        RuntimeError
            In eval mode (after :meth:`eval`, before :meth:`train`).
        """
        if not self.training and self.model.has_eval_rule:
            raise RuntimeError(f"{self.model.name}: the executor is in eval mode; call train() before step()")
        # lr may have been changed between steps (a schedule): checked, and kept as the number it denotes
        check_value_type("lr", self.lr, "float")
        lr = self.lr = check_number(self.lr, "lr", low=0.0)
        self.t += 1
        t = self.t
        shape = self.theta.shape
        g = np.array(grad, dtype=np.float64, copy=True)
        if g.shape != shape:
            g = np.broadcast_to(g, shape).copy()
        program = self._plan.program(t)
        if program is not self._last:
            _reset_stale(self.state, self._forms, program, self._model.name)
            self._last = program
        work = shape if shape else (1,)  # registers are at least one-dimensional (in-place operations)
        regs: dict[str, Any] = {"param": self.theta.reshape(work).copy(), "grad": g.reshape(work)}
        for spec in program.state:
            value = self.state.get(spec.key)
            if value is None:
                value = self.state[spec.key] = np.full(spec.shape_for(shape), spec.init)
            regs[f"state.{spec.key}"] = value.reshape(spec.shape_for(work))
        env = None
        if program.products:
            before = [self.state.get(p.key) for p in program.products]
            start = [None if v is None else float(v) for v in before]
            env, stored = program.carry(t, start, self.scalar_dtype, lr)
            for p, v in zip(program.products, stored, strict=True):
                self.state[p.key] = np.array(v, dtype=self.scalar_dtype)
        with np.errstate(over="ignore"):  # a diverging run saturates to inf, as torch's kernels do, without warnings
            run_numpy(program, regs, program.scalar_values(t, lr, env))
        self.theta = regs["param"].reshape(shape)
        return self.theta

    def eval(self) -> None:
        """Move :attr:`theta` to the model's evaluation point (Schedule-Free's average ``x``); see :meth:`train`.

        Nothing happens for models without an evaluation rule, before the
        first step, or when already in eval mode.
        """
        if self.training:
            self._swap("eval")
            self.training = False

    def train(self) -> None:
        """Move :attr:`theta` back to the training point (the inverse of :meth:`eval`)."""
        if not self.training:
            self._swap("train")
            self.training = True

    def _swap(self, mode: str) -> None:
        if not self.model.has_eval_rule:
            return
        program = self.model.swap_program(mode)
        if not all(key in self.state for key in program.keys):
            return  # no step yet: the evaluation point is the parameter
        shape = self.theta.shape
        work = shape if shape else (1,)
        regs: dict[str, Any] = {"param": self.theta.reshape(work).copy(), "grad": np.zeros(work)}
        for spec in program.state:
            regs[f"state.{spec.key}"] = self.state[spec.key].reshape(spec.shape_for(work))
        run_numpy(program, regs, program.scalar_values(max(self.t, 1), self.lr))
        self.theta = regs["param"].reshape(shape)

    @property
    def averaged(self) -> FloatArray:
        """The model's averaged parameters (its :attr:`~OptimizerModel.parameter_output` state), parameter-shaped.

        Before the first step (and for models that keep none) this is the parameter itself.

        Examples
        --------
        >>> import optfilters
        >>> opt = optfilters.get("ema", base="sgd", lr=1.0, decay=0.5).optimizer([0.0])
        >>> for g in (-1.0, -1.0):
        ...     _ = opt.step([g])
        >>> opt.theta.tolist(), opt.averaged.tolist()   # the first average copies, then 0.5 a + 0.5 theta
        ([2.0], [1.5])
        """
        key = self.model.parameter_output
        value = self.state.get(key) if key is not None else None
        if value is None:
            return self.theta.copy()
        return value.reshape(self.theta.shape).copy()


def _reset_stale(state: dict[str, Any], forms: dict[str, Any], program: Program, name: str) -> None:
    """Drop the state arrays whose form ``program`` changes (they restart at their initial value), with a warning."""
    dropped = changed_forms(forms, program)
    stale = [key for key in dropped if key in state]
    for key in stale:
        del state[key]
    for key in dropped:
        forms.pop(key, None)
    forms.update(program.forms)
    if stale:
        warnings.warn(
            f"{name}: the new hyperparameters change the structure of the filter state {', '.join(stale)}; "
            "it restarts from its initial value",
            StateResetWarning,
            stacklevel=3,
        )
