"""Two-dimensional test functions and optimizer runs on them (the Copernicus L5 lecture's examples).

The functions are written with arithmetic operators only, so one definition
serves numpy arrays, Python floats and torch tensors (autograd included).

* ``quadratic_bowl()``: ``f(x, y) = 10 x^2 + 100 y^2`` (curvatures 20 and 200:
  gradient descent converges for ``lr < 2/200 = 0.01``, oscillates without
  decay at ``lr = 0.01`` and diverges above);
* ``rosenbrock()``: ``f(x, y) = (x - 1)^2 + b (y - x^2)^2`` with ``b = 10``
  (minimum at ``(1, 1)``, Hessian there ``[[82, -40], [-40, 20]]``, largest
  curvature about 101.6, so gradient descent is stable near the minimum for
  ``lr < 0.0197``).

Runs go through the PyTorch bridge (:class:`optfilters.torch.FilterOptimizer`),
through ``torch.optim`` (the catalogue's ``torch_class``), or through the
numpy reference executor (:meth:`optfilters.OptimizerModel.optimizer`).
Nothing here imports torch or matplotlib at module import; the runs are
computed here and drawn by :func:`optfilters.plot.trajectories_plot` (or
:meth:`TrajectoryGrid.plot`), so the plotting layer never reaches the bridge.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .catalogue import CATALOGUE, get, resolve_name
from .filters import ArmaFilter
from .model import OptimizerModel
from .validation import FrozenMapping

__all__ = [
    "ENGINES",
    "Function2D",
    "OptimizerSpec",
    "TrajectoryGrid",
    "TrajectoryRun",
    "bridge_available",
    "get_function",
    "optimizer_specs",
    "quadratic_bowl",
    "rosenbrock",
    "run_trajectories",
    "run_trajectory",
]

FloatArray = NDArray[np.float64]

#: The execution engines of :func:`run_trajectory`.
ENGINES = ("bridge", "torch", "numpy", "auto")


@dataclass(frozen=True)
class Function2D:
    """A two-dimensional test function with its gradient, minimum and the lecture's learning-rate grids.

    ``value`` and ``gradient`` take ``(x, y)`` as numpy arrays, floats or
    torch tensors (arithmetic only).

    Attributes
    ----------
    name : str
        Short name (``"quadratic"``, ``"rosenbrock"``).
    formula : str
        The formula, for titles and captions.
    value : callable
        ``value(x, y) -> f``.
    gradient : callable
        ``gradient(x, y) -> (df/dx, df/dy)`` in closed form.
    hessian : callable
        ``hessian(x, y) -> 2x2 ndarray`` (numpy).
    minimum : tuple of float
        The global minimiser ``(x*, y*)``.
    start : tuple of float
        Default starting point of the trajectories.
    xlim, ylim : tuple of float
        Default view.
    lecture_lrs : mapping
        Catalogue optimizer name -> the lecture's grid of learning rates.

    Examples
    --------
    >>> from optfilters.trajectory import quadratic_bowl
    >>> f = quadratic_bowl()
    >>> float(f.value(1.0, 1.0)), [float(g) for g in f.gradient(1.0, 1.0)]
    (110.0, [20.0, 200.0])
    >>> f.curvatures()
    (20.0, 200.0)
    """

    name: str
    formula: str
    value: Callable[[Any, Any], Any]
    gradient: Callable[[Any, Any], tuple[Any, Any]]
    hessian: Callable[[float, float], FloatArray]
    minimum: tuple[float, float]
    start: tuple[float, float]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    lecture_lrs: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lecture_lrs", FrozenMapping(dict(self.lecture_lrs)))

    def loss(self, theta: ArrayLike) -> FloatArray:
        """``f`` at points ``theta`` of shape ``(..., 2)`` (numpy).

        Parameters
        ----------
        theta : array_like, shape (..., 2)
            Points ``(x, y)`` along the last axis.

        Returns
        -------
        ndarray, shape (...)
            ``f(x, y)`` per point (overflow gives inf, not a warning).

        Examples
        --------
        >>> from optfilters.trajectory import rosenbrock
        >>> rosenbrock().loss([[1.0, 1.0], [0.0, 0.0]]).tolist()
        [0.0, 1.0]
        """
        points = np.asarray(theta, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            return np.asarray(self.value(points[..., 0], points[..., 1]), dtype=np.float64)

    def curvatures(self, x: float | None = None, y: float | None = None) -> tuple[float, float]:
        """Eigenvalues of the Hessian (ascending) at ``(x, y)``, the minimum by default.

        Parameters
        ----------
        x, y : float, optional
            The point; the minimum when either is None.

        Returns
        -------
        (float, float)
            The smaller and the larger eigenvalue (curvatures along the principal axes).

        Examples
        --------
        >>> from optfilters.trajectory import rosenbrock
        >>> [round(h, 4) for h in rosenbrock().curvatures()]
        [0.3937, 101.6063]
        """
        px, py = self.minimum if x is None or y is None else (x, y)
        eig = np.linalg.eigvalsh(self.hessian(px, py))
        return float(eig[0]), float(eig[1])

    def grid(self, n: int = 201) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``X, Y, Z`` on an ``n x n`` grid over ``xlim x ylim`` (for contours).

        Parameters
        ----------
        n : int
            Points per axis (>= 2).

        Returns
        -------
        X, Y : ndarray, shape (n, n)
            :func:`numpy.meshgrid` of the axes (``x`` along columns).
        Z : ndarray, shape (n, n)
            ``f(X, Y)``.

        Raises
        ------
        ValueError
            If ``n < 2``.

        Examples
        --------
        >>> from optfilters.trajectory import quadratic_bowl
        >>> X, Y, Z = quadratic_bowl().grid(3)
        >>> Z.shape, float(Z[1, 1])
        ((3, 3), 0.0)
        """
        if n < 2:
            raise ValueError(f"n must be >= 2, got {n}")
        xs = np.linspace(self.xlim[0], self.xlim[1], n)
        ys = np.linspace(self.ylim[0], self.ylim[1], n)
        X, Y = np.meshgrid(xs, ys)
        return X, Y, np.asarray(self.value(X, Y), dtype=np.float64)

    def lecture_grid(self, optimizer: str) -> tuple[float, ...]:
        """The lecture's learning rates for a catalogue optimizer on this function.

        Parameters
        ----------
        optimizer : str
            Catalogue name or alias (``"gd"`` is ``"sgd"``).

        Returns
        -------
        tuple of float
            The learning rates, in the lecture's order.

        Raises
        ------
        ValueError
            If the lecture shows no grid for that optimizer on this function.

        Examples
        --------
        >>> from optfilters.trajectory import quadratic_bowl
        >>> quadratic_bowl().lecture_grid("gd")[-1]
        0.01
        """
        name = resolve_name(optimizer)
        if name not in self.lecture_lrs:
            known = ", ".join(self.lecture_lrs) or "none"
            raise ValueError(
                f"the lecture shows no learning-rate grid for {name} on {self.name} (it has: {known}); give lrs"
            )
        return tuple(self.lecture_lrs[name])


def quadratic_bowl(a: float = 10.0, b: float = 100.0) -> Function2D:
    """The lecture's bowl ``f(x, y) = a x^2 + b y^2`` (``a = 10``, ``b = 100``).

    Curvatures are ``2a`` and ``2b``; gradient descent is stable for
    ``lr < 2 / (2 max(a, b))`` (0.01 with the defaults).

    Parameters
    ----------
    a, b : float
        Positive coefficients.

    Returns
    -------
    Function2D

    Raises
    ------
    ValueError
        When ``a`` or ``b`` is not finite and positive.

    Examples
    --------
    >>> from optfilters.trajectory import quadratic_bowl
    >>> f = quadratic_bowl()
    >>> f.formula, f.lecture_lrs["momentum"]
    ('f = 10 x^2 + 100 y^2', (0.0001, 0.0005, 0.001, 0.002, 0.003, 0.004))
    """
    for pname, v in (("a", a), ("b", b)):
        if not (math.isfinite(v) and v > 0.0):
            raise ValueError(f"{pname} must be finite and > 0, got {v}")

    def value(x: Any, y: Any) -> Any:
        return a * x**2 + b * y**2

    def gradient(x: Any, y: Any) -> tuple[Any, Any]:
        return 2.0 * a * x, 2.0 * b * y

    def hessian(x: float, y: float) -> FloatArray:
        return np.array([[2.0 * a, 0.0], [0.0, 2.0 * b]])

    lecture = {}
    if a == 10.0 and b == 100.0:
        # Copernicus L5: gradient descent at 0.001 .. 0.01, momentum (beta = 0.9) at 0.0001 .. 0.004.
        lecture = {
            "sgd": tuple(round(0.001 * k, 3) for k in range(1, 11)),
            "momentum": (0.0001, 0.0005, 0.001, 0.002, 0.003, 0.004),
        }
    return Function2D(
        name="quadratic",
        formula=f"f = {a:g} x^2 + {b:g} y^2",
        value=value,
        gradient=gradient,
        hessian=hessian,
        minimum=(0.0, 0.0),
        start=(-1.0, 0.5),
        xlim=(-1.25, 1.25),
        ylim=(-0.75, 0.75),
        lecture_lrs=lecture,
    )


def rosenbrock(b: float = 10.0) -> Function2D:
    """The lecture's Rosenbrock function ``f(x, y) = (x - 1)^2 + b (y - x^2)^2`` with ``b = 10``.

    Gradient (as on the slide): ``df/dx = 2(x - 1) - 4 b (y - x^2) x``,
    ``df/dy = 2 b (y - x^2)``.

    Parameters
    ----------
    b : float
        Positive valley steepness.

    Returns
    -------
    Function2D

    Raises
    ------
    ValueError
        When ``b`` is not finite and positive.

    Examples
    --------
    >>> from optfilters.trajectory import rosenbrock
    >>> f = rosenbrock()
    >>> [float(g) for g in f.gradient(0.0, 0.0)], f.minimum
    ([-2.0, 0.0], (1.0, 1.0))
    """
    if not (math.isfinite(b) and b > 0.0):
        raise ValueError(f"b must be finite and > 0, got {b}")

    def value(x: Any, y: Any) -> Any:
        return (x - 1.0) ** 2 + b * (y - x**2) ** 2

    def gradient(x: Any, y: Any) -> tuple[Any, Any]:
        return 2.0 * (x - 1.0) - 4.0 * b * (y - x**2) * x, 2.0 * b * (y - x**2)

    def hessian(x: float, y: float) -> FloatArray:
        return np.array([[2.0 - 4.0 * b * (y - 3.0 * x**2), -4.0 * b * x], [-4.0 * b * x, 2.0 * b]])

    lecture = {}
    if b == 10.0:
        # Copernicus L5: GD and momentum at 0.001, 0.005, 0.01, 0.02; RMSprop (beta = 0.99) at the
        # slide's 0.005, 0.0005, 0.05, 0.01, 0.05 (0.05 appears twice; kept once, sorted).
        lecture = {
            "sgd": (0.001, 0.005, 0.01, 0.02),
            "momentum": (0.001, 0.005, 0.01, 0.02),
            "rmsprop": (0.0005, 0.005, 0.01, 0.05),
        }
    return Function2D(
        name="rosenbrock",
        formula=f"f = (x - 1)^2 + {b:g} (y - x^2)^2",
        value=value,
        gradient=gradient,
        hessian=hessian,
        minimum=(1.0, 1.0),
        start=(-1.5, 2.0),
        xlim=(-2.0, 2.0),
        ylim=(-1.0, 3.0),
        lecture_lrs=lecture,
    )


_FUNCTIONS: dict[str, Callable[[], Function2D]] = {
    "quadratic": quadratic_bowl,
    "quadratic_bowl": quadratic_bowl,
    "bowl": quadratic_bowl,
    "rosenbrock": rosenbrock,
}


def get_function(function: str | Function2D) -> Function2D:
    """A test function by name (``"quadratic"``, ``"rosenbrock"``), or the object itself.

    Parameters
    ----------
    function : str or Function2D
        A name (any case) or a :class:`Function2D`, returned as it is.

    Returns
    -------
    Function2D

    Raises
    ------
    ValueError
        For another name.

    Examples
    --------
    >>> from optfilters.trajectory import get_function
    >>> get_function("Rosenbrock").formula
    'f = (x - 1)^2 + 10 (y - x^2)^2'
    """
    if isinstance(function, Function2D):
        return function
    if isinstance(function, str):
        key = function.strip().lower().replace("-", "_").replace(" ", "_")
        if key in _FUNCTIONS:
            return _FUNCTIONS[key]()
    raise ValueError(f"function must be one of 'quadratic', 'rosenbrock' or a Function2D, got {function!r}")


# ----------------------------------------------------------------------------- optimizer specifications


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer to run: a catalogue name with hyperparameters, or a model; and its label.

    Attributes
    ----------
    label : str
        How plots and tables name the run.
    name : str
        Catalogue name (``"custom"`` for a filter).
    hyperparameters : mapping
        Catalogue hyperparameters (the learning rate is given per run).
    model : OptimizerModel or None
        A model given as such (built as it is, with the run's learning rate).

    Examples
    --------
    >>> from optfilters.trajectory import optimizer_specs
    >>> [s.label for s in optimizer_specs(["gd", ("momentum", {"momentum": 0.5})])]
    ['sgd', 'momentum (momentum=0.5)']
    """

    label: str
    name: str
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    model: OptimizerModel | None = None

    def build(self, lr: float) -> OptimizerModel:
        """The optfilters model at learning rate ``lr``.

        Parameters
        ----------
        lr : float
            Learning rate of the run.

        Returns
        -------
        OptimizerModel
            The catalogue model with :attr:`hyperparameters` and ``lr``; a
            given non-catalogue model as it is.

        Examples
        --------
        >>> from optfilters.trajectory import optimizer_specs
        >>> optimizer_specs("momentum")[0].build(0.1).lr
        0.1
        """
        if self.model is not None:
            params = dict(self.model.hyperparameters)
            if self.model.name in CATALOGUE:
                params["lr"] = lr
                return get(self.model.name, **params)
            return self.model
        return get(self.name, **{**self.hyperparameters, "lr": lr})


def _hp_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _spec(value: Any, label: str | None = None) -> OptimizerSpec:
    if isinstance(value, OptimizerSpec):
        return value if label is None else OptimizerSpec(label, value.name, value.hyperparameters, value.model)
    if isinstance(value, OptimizerModel):
        if label is None:
            label = value.name
            entry = CATALOGUE.get(value.name)
            if entry is not None:
                defaults = entry.defaults()
                changed = {k: v for k, v in value.hyperparameters.items() if k != "lr" and defaults.get(k, v) != v}
                if changed:
                    label = f"{value.name} ({_hp_text(changed)})"
        return OptimizerSpec(label, value.name, dict(value.hyperparameters), value)
    if isinstance(value, ArmaFilter):
        # Filtered gradient descent theta -= lr * H(z) grad: the catalogue's "custom" model.
        model = get("custom", b=tuple(value.b.tolist()), a=tuple(value.a.tolist()))
        return OptimizerSpec(label or value.name or "custom filter", "custom", dict(model.hyperparameters), model)
    if isinstance(value, str):
        name = resolve_name(value)
        return OptimizerSpec(label or name, name, {})
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], Mapping):
        name = resolve_name(value[0])
        hps = dict(value[1])
        get(name, **hps)  # validate now, with the catalogue's message
        return OptimizerSpec(label or (f"{name} ({_hp_text(hps)})" if hps else name), name, hps)
    raise ValueError(
        "optimizers must be catalogue names, (name, {hyperparameters}) pairs, OptimizerModels, ArmaFilters, "
        f"or a list/dict of them; got {type(value).__name__}"
    )


def optimizer_specs(optimizers: Any) -> list[OptimizerSpec]:
    """Normalise an optimizer argument to a list of :class:`OptimizerSpec`.

    Accepts a catalogue name, a ``(name, {hyperparameters})`` pair, an
    :class:`~optfilters.OptimizerModel`, an :class:`~optfilters.ArmaFilter`
    (filtered gradient descent ``theta -= lr * H(z) grad``, the catalogue's
    ``custom`` model), a list of those, or a dict mapping labels to those.

    Parameters
    ----------
    optimizers : str, (str, dict), OptimizerModel, ArmaFilter, OptimizerSpec, list or dict
        What to run; a dict's keys are the labels.

    Returns
    -------
    list of OptimizerSpec
        One per optimizer, in order.

    Raises
    ------
    ValueError
        For an empty list, or anything else (with unknown hyperparameters named).

    Examples
    --------
    >>> from optfilters.trajectory import optimizer_specs
    >>> [s.name for s in optimizer_specs({"GD": "sgd", "heavy ball": "momentum"})]
    ['sgd', 'momentum']
    """
    if isinstance(optimizers, Mapping):
        return [_spec(v, str(k)) for k, v in optimizers.items()]
    if isinstance(optimizers, (str, OptimizerModel, OptimizerSpec, ArmaFilter)) or (
        isinstance(optimizers, tuple) and len(optimizers) == 2 and isinstance(optimizers[1], Mapping)
    ):
        return [_spec(optimizers)]
    if isinstance(optimizers, Iterable):
        specs = [_spec(v) for v in optimizers]
        if not specs:
            raise ValueError("optimizers must not be empty")
        return specs
    return [_spec(optimizers)]


# ----------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class TrajectoryRun:
    """One optimizer run on a 2-D test function.

    Attributes
    ----------
    function : str
        The test function's name.
    optimizer : str
        The optimizer's label.
    lr : float
        Learning rate.
    params : ndarray, shape (T + 1, 2)
        ``params[0]`` is the start; ``params[t]`` the point after step ``t``.
    losses : ndarray, shape (T + 1,)
        ``f(params[t])``.
    engine : str
        ``"bridge"``, ``"torch"`` or ``"numpy"``: what executed the steps.
    stopped : bool
        True when the run was cut short because a coordinate left ``|theta| <= bound`` (or became non-finite).

    Examples
    --------
    >>> from optfilters.trajectory import run_trajectory
    >>> run = run_trajectory("quadratic", "sgd", lr=0.001, steps=3, engine="numpy")
    >>> run.steps, run.diverged, run.params[1].round(6).tolist()
    (3, False, [-0.98, 0.4])
    """

    function: str
    optimizer: str
    lr: float
    params: FloatArray
    losses: FloatArray
    engine: str
    stopped: bool = False

    @property
    def steps(self) -> int:
        """Number of steps taken."""
        return int(self.params.shape[0] - 1)

    @property
    def final_loss(self) -> float:
        """``f`` at the last point."""
        return float(self.losses[-1])

    @property
    def diverged(self) -> bool:
        """True when the run was stopped, or ended with a loss above its initial loss (or non-finite)."""
        final = self.final_loss
        return bool(self.stopped or not math.isfinite(final) or final > float(self.losses[0]))

    def as_dict(self) -> dict[str, Any]:
        """Plain data (non-finite numbers as None).

        Returns
        -------
        dict
            The fields, ``steps``, ``diverged``, ``final_loss``, ``params``
            (``T + 1`` pairs) and ``losses`` (``T + 1`` values).
        """

        def clean(values: FloatArray) -> Any:
            return [[v if math.isfinite(v) else None for v in row] for row in np.atleast_2d(values).tolist()]

        return {
            "function": self.function,
            "optimizer": self.optimizer,
            "lr": self.lr,
            "engine": self.engine,
            "steps": self.steps,
            "stopped": self.stopped,
            "diverged": self.diverged,
            "final_loss": self.final_loss if math.isfinite(self.final_loss) else None,
            "params": clean(self.params),
            "losses": clean(self.losses[None, :])[0],
        }


def bridge_available() -> bool:
    """True when the PyTorch bridge :class:`optfilters.torch.FilterOptimizer` can be imported.

    Returns
    -------
    bool
        Whether ``optfilters.torch`` imports (torch is installed) and provides ``FilterOptimizer``.

    Examples
    --------
    >>> from optfilters.trajectory import bridge_available
    >>> isinstance(bridge_available(), bool)
    True
    """
    try:
        module = importlib.import_module("optfilters.torch")
    except ImportError:
        return False
    return hasattr(module, "FilterOptimizer")


def _torch_optimizer(spec: OptimizerSpec, param: Any, lr: float, engine: str) -> Any:
    if engine == "bridge":
        from optfilters.torch import FilterOptimizer

        if spec.model is not None:
            return FilterOptimizer([param], spec.build(lr), lr=lr)
        return FilterOptimizer([param], spec.name, lr=lr, **dict(spec.hyperparameters))
    model = spec.build(lr)
    entry = CATALOGUE.get(model.name)
    if entry is None or entry.torch_class is None:
        raise ValueError(f"engine='torch' needs a torch.optim class; {model.name} has none (use engine='bridge')")
    module_name, _, class_name = entry.torch_class.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    params = dict(model.hyperparameters)
    params["lr"] = lr
    return cls([param], **entry.torch_kwargs(params))


def run_trajectory(
    function: str | Function2D,
    optimizer: Any,
    lr: float,
    steps: int = 100,
    start: Sequence[float] | None = None,
    engine: str = "bridge",
    bound: float = 1e6,
) -> TrajectoryRun:
    """Run one optimizer from ``start`` on a 2-D test function and record its path.

    Parameters
    ----------
    function : str or Function2D
        ``"quadratic"`` (``10 x^2 + 100 y^2``), ``"rosenbrock"`` (``b = 10``) or a :class:`Function2D`.
    optimizer : str, (str, dict), OptimizerModel or OptimizerSpec
        What to run (see :func:`optimizer_specs`).
    lr : float
        Learning rate, > 0.
    steps : int
        Number of steps, >= 1.
    start : sequence of 2 floats, optional
        Starting point (default: the function's ``start``).
    engine : {"bridge", "torch", "numpy", "auto"}
        ``"bridge"`` (default): :class:`optfilters.torch.FilterOptimizer` on a
        float64 ``torch`` parameter, gradients by autograd; ``"torch"``: the
        catalogue's ``torch.optim`` class (same float64 setup; for
        cross-checks); ``"numpy"``: the reference executor
        (:meth:`optfilters.OptimizerModel.optimizer`) with the closed-form
        gradient, no torch needed; ``"auto"``: the bridge when it can be
        imported, else ``torch.optim``.
    bound : float
        Stop early once any coordinate exceeds this magnitude (or is not finite).

    Returns
    -------
    TrajectoryRun

    Raises
    ------
    ValueError
        For a bad ``lr``, ``steps``, ``engine``, ``bound`` or ``start``, several optimizers, or
        ``engine="torch"`` for an optimizer torch.optim does not have.

    Examples
    --------
    >>> from optfilters.trajectory import run_trajectory
    >>> run = run_trajectory("quadratic", "sgd", lr=0.011, steps=200, engine="numpy")
    >>> run.diverged, run.stopped
    (True, True)
    """
    f = get_function(function)
    spec = optimizer_specs(optimizer)
    if len(spec) != 1:
        raise ValueError(f"optimizer must be a single optimizer, got {len(spec)}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0.0):
        raise ValueError(f"lr must be finite and > 0, got {lr!r}")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    if not (bound > 0.0):
        raise ValueError(f"bound must be > 0, got {bound}")
    theta0 = np.asarray(f.start if start is None else start, dtype=np.float64)
    if theta0.shape != (2,) or not np.all(np.isfinite(theta0)):
        raise ValueError(f"start must be two finite numbers, got {start!r}")
    if engine == "auto":
        engine = "bridge" if bridge_available() else "torch"
    return _run(f, spec[0], float(lr), int(steps), theta0, engine, float(bound))


def _run(
    f: Function2D, spec: OptimizerSpec, lr: float, steps: int, theta0: FloatArray, engine: str, bound: float
) -> TrajectoryRun:
    points = [theta0.copy()]
    stopped = False
    if engine == "numpy":
        opt = spec.build(lr).optimizer(theta0, lr=lr)
        for _ in range(steps):
            theta = opt.theta
            with np.errstate(over="ignore", invalid="ignore"):
                grad = np.array(f.gradient(theta[0], theta[1]), dtype=np.float64)
                new = opt.step(grad).copy()
            points.append(new)
            if not np.all(np.isfinite(new)) or np.max(np.abs(new)) > bound:
                stopped = True
                break
    else:
        import torch

        param = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
        opt = _torch_optimizer(spec, param, lr, engine)
        for _ in range(steps):
            opt.zero_grad()
            loss = f.value(param[0], param[1])
            loss.backward()
            opt.step()
            new = param.detach().numpy().copy()
            points.append(new)
            if not np.all(np.isfinite(new)) or np.max(np.abs(new)) > bound:
                stopped = True
                break
    params = np.stack(points)
    return TrajectoryRun(f.name, spec.label, lr, params, f.loss(params), engine, stopped)


@dataclass(frozen=True)
class TrajectoryGrid(Sequence[list[TrajectoryRun]]):
    """Runs of several optimizers at several learning rates on one test function.

    A sequence of rows: ``grid[i][j]`` is optimizer ``i`` at its ``j``-th
    learning rate (rows may differ in length).

    Attributes
    ----------
    function : Function2D
        The test function the runs descend.
    runs : list of list of TrajectoryRun
        ``runs[i][j]``, as indexed on the grid itself.

    Examples
    --------
    >>> from optfilters.trajectory import run_trajectories
    >>> grid = run_trajectories("quadratic", ["sgd", "momentum"], lrs=[0.001, 0.002], steps=3, engine="numpy")
    >>> len(grid), len(grid[1]), grid.engine, grid.function.name
    (2, 2, 'numpy', 'quadratic')
    """

    function: Function2D
    runs: list[list[TrajectoryRun]]

    @property
    def engine(self) -> str:
        """What executed the steps (``"bridge"``, ``"torch"`` or ``"numpy"``)."""
        return self.runs[0][0].engine

    def __len__(self) -> int:
        return len(self.runs)

    def __getitem__(self, index: Any) -> Any:
        return self.runs[index]

    def __iter__(self) -> Iterator[list[TrajectoryRun]]:
        return iter(self.runs)

    def plot(self, ax: Any = None, fig: Any = None, **kwargs: Any) -> Any:
        """Draw the runs over the function's contours (:func:`optfilters.plot.trajectories_plot`).

        Parameters
        ----------
        ax : Axes, optional
            Overlay every run on this axes.
        fig : Figure, optional
            Figure for the grid of panels.
        **kwargs
            Passed on to :func:`optfilters.plot.trajectories_plot` (``levels``, ``max_cols``, ``markers``, ``title``).

        Returns
        -------
        PlotResult
        """
        from .plot import trajectories_plot

        return trajectories_plot(self, ax=ax, fig=fig, **kwargs)


def run_trajectories(
    function: str | Function2D,
    optimizers: Any,
    lrs: float | Sequence[float] | None = None,
    steps: int = 100,
    start: Sequence[float] | None = None,
    engine: str = "bridge",
    bound: float = 1e6,
) -> TrajectoryGrid:
    """Run every optimizer at every learning rate: ``runs[i][j]`` is optimizer ``i`` at its ``j``-th lr.

    Parameters
    ----------
    function : str or Function2D
        The test function.
    optimizers : str, list or dict
        See :func:`optimizer_specs`.
    lrs : float or sequence of float, optional
        Learning rates for every optimizer; default: the lecture's grid of
        each optimizer on this function (:meth:`Function2D.lecture_grid`).
    steps, start, engine, bound
        As in :func:`run_trajectory`.

    Returns
    -------
    TrajectoryGrid
        A sequence of rows, ``runs[i][j]``; ``.plot()`` draws it.

    Raises
    ------
    ValueError
        As :func:`run_trajectory`, and for an empty ``lrs``.

    Examples
    --------
    >>> from optfilters.trajectory import run_trajectories
    >>> runs = run_trajectories("quadratic", "gd", steps=5, engine="numpy")
    >>> [r.lr for r in runs[0]][:3], len(runs[0])
    ([0.001, 0.002, 0.003], 10)
    """
    f = get_function(function)
    specs = optimizer_specs(optimizers)
    out: list[list[TrajectoryRun]] = []
    for spec in specs:
        if lrs is None:
            grid: Sequence[float] = f.lecture_grid(spec.name)
        elif isinstance(lrs, (int, float)):
            grid = [float(lrs)]
        else:
            grid = [float(v) for v in lrs]
            if not grid:
                raise ValueError("lrs must not be empty")
        out.append([run_trajectory(f, spec, lr, steps, start, engine, bound) for lr in grid])
    return TrajectoryGrid(f, out)
