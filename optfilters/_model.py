"""The optimizer model: an ordered list of stages, and its reference numpy executor.

Update convention (per parameter element, step ``t = 1, 2, ...``)::

    g      = -grad if maximize else grad
    g      = g + wd * theta                     (coupled weight decay)    | theta *= 1 - lr*wd (decoupled)
    d      = gradient filter (g)                (H(z), maybe time-varying / bias-corrected)
    d      = normaliser (d, g)                  (divide by an RMS or peak estimate of g)
    d      = post filter (d)                    (RMSprop's momentum)
    d      = sign(d)                            (Lion)
    theta  = theta - lr * lr_gain(t) * d

``H`` maps the (effective) gradient to the update direction per unit
learning rate; frequencies are in cycles per step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._errors import InvalidFilterError
from ._filter import ArmaFilter, cascade
from ._gains import Constant, Gain
from ._stages import (
    AdadeltaNormaliser,
    LinearStage,
    LinearStageRunner,
    Normaliser,
    PeakNormaliser,
    RmsNormaliser,
    SignNonlinearity,
    WeightDecay,
    transient_correction,
)

__all__ = ["NumpyOptimizer", "OptimizerModel", "Trajectory"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class OptimizerModel:
    """An optimizer described as signal-processing stages.

    Stages run in this fixed order: weight decay, gradient filter,
    normaliser, post-filter, nonlinearity, learning-rate gain.  Absent stages
    are None.  Build models with :func:`optfilters.get`; the value is
    immutable.

    Parameters
    ----------
    name : str
        Catalogue name (``"adam"``) or a label.
    hyperparameters : mapping
        Every hyperparameter by its torch.optim name, defaults filled in.
    gradient : LinearStage or None
        Filter on the effective gradient (None: identity).
    normaliser : RmsNormaliser, PeakNormaliser, AdadeltaNormaliser or None
        Elementwise normalisation by a running estimate of the gradient scale.
    post : LinearStage or None
        Filter after normalisation (RMSprop's momentum buffer).
    nonlinearity : SignNonlinearity or None
        Elementwise nonlinearity (Lion's sign).
    weight_decay : WeightDecay or None
        Coupled (L2) or decoupled weight decay.
    lr_gain : Gain
        Time-varying factor on the learning rate (Adagrad's ``lr_decay``).
    maximize : bool
        Ascend instead of descend (torch's ``maximize``).
    description : str
        One line for listings.

    Examples
    --------
    >>> import optfilters
    >>> m = optfilters.get("momentum", momentum=0.9)
    >>> m.is_linear, m.is_time_invariant
    (True, True)
    >>> round(m.filters()["gradient"].dc_gain, 9)
    10.0
    """

    name: str
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    gradient: LinearStage | None = None
    normaliser: Normaliser | None = None
    post: LinearStage | None = None
    nonlinearity: SignNonlinearity | None = None
    weight_decay: WeightDecay | None = None
    lr_gain: Gain = field(default_factory=lambda: Constant(1.0))
    maximize: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "hyperparameters", MappingProxyType(dict(self.hyperparameters)))

    # ----------------------------------------------------------------- structure
    @property
    def lr(self) -> float:
        """The learning rate hyperparameter (1.0 when the model has none)."""
        return float(self.hyperparameters.get("lr", 1.0))

    @property
    def stages(self) -> tuple[tuple[str, Any], ...]:
        """``(role, stage)`` pairs in execution order, absent stages left out.

        Examples
        --------
        >>> import optfilters
        >>> [role for role, _ in optfilters.get("adamw").stages]
        ['weight_decay', 'gradient', 'normaliser', 'learning_rate']
        """
        out: list[tuple[str, Any]] = []
        if self.weight_decay is not None:
            out.append(("weight_decay", self.weight_decay))
        if self.gradient is not None:
            out.append(("gradient", self.gradient))
        if self.normaliser is not None:
            out.append(("normaliser", self.normaliser))
        if self.post is not None:
            out.append(("post", self.post))
        if self.nonlinearity is not None:
            out.append(("nonlinearity", self.nonlinearity))
        out.append(("learning_rate", self.lr_gain))
        return tuple(out)

    def linear_stages(self) -> dict[str, LinearStage]:
        """The linear stages by name: ``gradient``, the normaliser's ``second_moment`` / ``center``, ``post``.

        The gradient stage is the identity when the model has none.

        Examples
        --------
        >>> import optfilters
        >>> sorted(optfilters.get("rmsprop", centered=True).linear_stages())
        ['center', 'gradient', 'second_moment']
        """
        out: dict[str, LinearStage] = {"gradient": self.gradient_stage}
        if isinstance(self.normaliser, RmsNormaliser):
            out["second_moment"] = self.normaliser.second_moment
            if self.normaliser.center is not None:
                out["center"] = self.normaliser.center
        elif isinstance(self.normaliser, AdadeltaNormaliser):
            ema = LinearStage.of(ArmaFilter.ema(self.normaliser.rho), "second_moment")
            out["second_moment"] = ema
            out["update_moment"] = LinearStage.of(ArmaFilter.ema(self.normaliser.rho), "update_moment")
        if self.post is not None:
            out["post"] = self.post
        return out

    @property
    def gradient_stage(self) -> LinearStage:
        """The gradient filter stage (the identity when the model has none)."""
        if self.gradient is not None:
            return self.gradient
        return LinearStage.of(ArmaFilter.identity(), "gradient")

    def filters(self) -> dict[str, ArmaFilter]:
        """Each linear stage's LTI filter (its ``t -> infinity`` limit when time-varying).

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
        return self.normaliser is None and self.nonlinearity is None

    @property
    def is_time_invariant(self) -> bool:
        """True when every stage is time-invariant (no bias correction, schedules or first-step quirks).

        Examples
        --------
        >>> import optfilters
        >>> optfilters.get("adam").is_time_invariant
        False
        """
        stages_ti = all(stage.is_time_invariant for stage in self.linear_stages().values())
        norm_ti = self.normaliser is None or self.normaliser.is_time_invariant
        return stages_ti and norm_ti and self.lr_gain.is_constant

    def direction_filter(self) -> ArmaFilter:
        """The whole linear map from effective gradient to update direction (per unit lr), LTI limit.

        This is the gradient filter cascaded with the post-filter.  Only for
        linear models: normalised models need :meth:`linearised_filter`.

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
        parts = [self.gradient_stage.limit()]
        if self.post is not None:
            parts.append(self.post.limit())
        return cascade(*parts).renamed(self.name) * self.lr_gain.limit

    def linearised_filter(self, second_moment: float = 1.0) -> ArmaFilter:
        """The direction filter with the normaliser frozen at a second moment ``v`` (linearisation).

        For RMS normalisers the direction is divided by ``sqrt(v) + eps``
        (``sqrt(v + eps)`` when eps sits inside the root); for Adamax by ``sqrt(v)
        + eps`` read as the peak level; for Adadelta multiplied by
        ``sqrt(eps) / sqrt(v + eps)`` (its ``u`` at rest); Lion's sign is left
        out (direction only).  Linear models return :meth:`direction_filter`.

        Examples
        --------
        >>> import optfilters
        >>> f = optfilters.get("adam", eps=0.0).linearised_filter(second_moment=4.0)
        >>> round(f.dc_gain, 12)
        0.5
        """
        if not (second_moment >= 0.0 and math.isfinite(second_moment)):
            raise InvalidFilterError(f"second_moment must be finite and >= 0, got {second_moment}")
        parts = [self.gradient_stage.limit()]
        scale = 1.0
        norm = self.normaliser
        if isinstance(norm, RmsNormaliser):
            if norm.eps_placement == "inside_root":
                scale = 1.0 / math.sqrt(second_moment + norm.eps)
            else:
                scale = 1.0 / (math.sqrt(second_moment) + norm.eps)
        elif isinstance(norm, PeakNormaliser):
            scale = 1.0 / (math.sqrt(second_moment) + norm.eps)
        elif isinstance(norm, AdadeltaNormaliser):
            scale = math.sqrt(norm.eps) / math.sqrt(second_moment + norm.eps)
        if self.post is not None:
            parts.append(self.post.limit())
        return (cascade(*parts) * (scale * self.lr_gain.limit)).renamed(self.name)

    # ----------------------------------------------------------------- execution
    def optimizer(self, theta0: ArrayLike, lr: float | None = None) -> NumpyOptimizer:
        """A step-by-step numpy executor of this model starting at ``theta0``.

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

        Examples
        --------
        >>> import optfilters
        >>> traj = optfilters.get("momentum", lr=1.0, momentum=0.5).simulate([1.0, 0.0, 0.0])
        >>> traj.updates.ravel().tolist()
        [-1.0, -0.5, -0.25]
        """
        opt = self.optimizer(theta0, lr=lr)
        params = [opt.theta.copy()]
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
        stacked = np.stack(params)
        return Trajectory(params=stacked, updates=np.diff(stacked, axis=0))

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

        Examples
        --------
        >>> import optfilters
        >>> print(optfilters.get("sgd").describe().splitlines()[0])
        sgd: lr=0.001, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False
        """
        hps = ", ".join(f"{k}={_fmt_value(v)}" for k, v in self.hyperparameters.items())
        lines = [f"{self.name}: {hps}"]
        for role, stage in self.stages:
            if role == "learning_rate":
                if not stage.is_constant:
                    lines.append(f"  learning rate: lr * {stage.describe()}")
                continue
            lines.append(f"  {role}: {stage.describe()}")
        if self.maximize:
            lines.append("  maximize: the gradient is negated first")
        return "\n".join(lines)


def _fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_fmt_value(v) for v in value) + ")"
    return str(value)


@dataclass(frozen=True)
class Trajectory:
    """Parameters ``params[t]`` (``params[0]`` initial) and updates ``params[t] - params[t-1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters import Trajectory
    >>> Trajectory(params=np.zeros((2, 1)), updates=np.zeros((1, 1))).steps
    1
    """

    params: FloatArray
    updates: FloatArray

    @property
    def steps(self) -> int:
        """Number of steps taken."""
        return int(self.updates.shape[0])


class NumpyOptimizer:
    """Reference executor: runs an :class:`OptimizerModel` step by step on numpy arrays.

    It is the literal recursion that the model describes, used to check the
    model against independently written optimizers and by the analysis.  The
    ``lr`` attribute may be changed between steps (a schedule).

    Parameters
    ----------
    model : OptimizerModel
    theta0 : array_like
        Initial parameters (copied).
    lr : float, optional
        Learning rate (default: the model's).

    Examples
    --------
    >>> import optfilters
    >>> opt = optfilters.get("adam", lr=0.1).optimizer([0.0])
    >>> opt.step([3.0]).round(9).tolist()   # Adam's first step is lr * sign(g)
    [-0.1]
    """

    def __init__(self, model: OptimizerModel, theta0: ArrayLike, lr: float | None = None) -> None:
        self.model = model
        self.theta = np.array(theta0, dtype=np.float64, copy=True)
        self.lr = model.lr if lr is None else float(lr)
        self.t = 0
        shape = self.theta.shape
        self._gradient = LinearStageRunner(model.gradient, shape) if model.gradient is not None else None
        self._post = LinearStageRunner(model.post, shape) if model.post is not None else None
        norm = model.normaliser
        self._norm_state: dict[str, Any] = {}
        if isinstance(norm, RmsNormaliser):
            self._single_corrected = len(norm.second_moment.terms) == 1 and norm.second_moment.compensated
            # A single bias-corrected term is corrected after the AMSGrad max (torch's order).
            self._norm_state["v"] = LinearStageRunner(
                norm.second_moment, shape, compensate=False if self._single_corrected else None
            )
            if norm.amsgrad:
                self._norm_state["vmax"] = np.zeros(shape)
            if norm.center is not None:
                self._norm_state["center"] = LinearStageRunner(norm.center, shape)
        elif isinstance(norm, PeakNormaliser):
            self._norm_state["u"] = np.zeros(shape)
        elif isinstance(norm, AdadeltaNormaliser):
            self._norm_state["v"] = np.zeros(shape)
            self._norm_state["u"] = np.zeros(shape)

    def step(self, grad: ArrayLike) -> FloatArray:
        """Take one step with the raw loss gradient ``grad``; returns the new parameters."""
        model = self.model
        self.t += 1
        t = self.t
        lr = self.lr
        g = np.array(grad, dtype=np.float64, copy=True)
        if g.shape != self.theta.shape:
            g = np.broadcast_to(g, self.theta.shape).copy()
        if model.maximize:
            g = -g
        wd = model.weight_decay
        if wd is not None and wd.weight_decay != 0.0:
            if wd.decoupled:
                self.theta = self.theta * (1.0 - lr * wd.weight_decay)
            else:
                g = g + wd.weight_decay * self.theta
        d = self._gradient.step(g, t) if self._gradient is not None else g
        if model.normaliser is not None:
            d = self._normalise(d, g, t)
        if self._post is not None:
            d = self._post.step(d, t)
        if model.nonlinearity is not None:
            d = np.sign(d)
        self.theta = self.theta - (lr * model.lr_gain.value(t)) * d
        return self.theta

    def _normalise(self, d: FloatArray, g: FloatArray, t: int) -> FloatArray:
        norm = self.model.normaliser
        state = self._norm_state
        if isinstance(norm, RmsNormaliser):
            runner: LinearStageRunner = state["v"]
            v = runner.step(g * g, t)
            if norm.amsgrad:
                state["vmax"] = np.maximum(state["vmax"], v)
                v = state["vmax"]
            correction = 1.0
            if self._single_corrected:
                correction = transient_correction(norm.second_moment.terms[0].filter, t)
            if norm.center is not None:
                mean = state["center"].step(g, t)
                v = v - mean * mean
            if norm.rectification is not None and not norm.rectification.active(t):
                return d
            if norm.eps_placement == "after_root" and norm.correction_inside_root:
                den = np.sqrt(v / correction) + norm.eps
            elif norm.eps_placement == "after_root":
                den = np.sqrt(v) / math.sqrt(correction) + norm.eps
            elif norm.eps_placement == "inside_root":
                den = np.sqrt(v / correction + norm.eps)
            else:
                den = (np.sqrt(v) + norm.eps) / math.sqrt(correction)
            out = d / den
            if norm.rectification is not None:
                out = out * norm.rectification.value(t)
            return np.asarray(out, dtype=np.float64)
        if isinstance(norm, PeakNormaliser):
            state["u"] = np.maximum(norm.beta2 * state["u"], np.abs(g) + norm.eps)
            return np.asarray(d / state["u"], dtype=np.float64)
        if isinstance(norm, AdadeltaNormaliser):
            rho, eps = norm.rho, norm.eps
            state["v"] = rho * state["v"] + (1.0 - rho) * g * g
            delta = np.sqrt(state["u"] + eps) / np.sqrt(state["v"] + eps) * d
            state["u"] = rho * state["u"] + (1.0 - rho) * delta * delta
            return np.asarray(delta, dtype=np.float64)
        raise TypeError(f"unknown normaliser {norm!r}")
