"""Observed against predicted: the noisy quadratic trained for real, through the PyTorch bridge.

The quadratic of :mod:`optfilters.noisy_quadratic` becomes a torch model: one
float64 parameter tensor of shape ``(seeds, d)`` (the seeds are a batch
dimension, so that every run advances in one tensor operation), the loss
``sum_k [1/2 sum_i h_i theta_ki^2 + xi_ki theta_ki]`` with fresh Gaussian
``xi`` of variance ``sigma_i^2`` at every step (so autograd gives
``g = h theta + xi``), and :class:`optfilters.torch.FilterOptimizer` as the
optimizer.  The recorded loss is the noiseless ``1/2 sum_i h_i theta_i^2`` of
each run; :class:`LossComparison` holds the mean over seeds, its standard
error and the exact prediction.  Every element of the parameter tensor is
its own run of the elementwise optimizer, so the runs are independent.

:func:`divergence_threshold` finds the learning rate where training starts to
diverge on the noiseless quadratic, by multisection: each round runs a batch
of learning rates as parameter groups of one optimizer and keeps the bracket
between the largest convergent and the smallest divergent one.

torch is imported inside the functions only.

Normalised optimizers: how far the linearisation is from observation
--------------------------------------------------------------------
The prediction for Adam and RMSprop is a linearisation (the normaliser
becomes a gain; see :mod:`optfilters.noisy_quadratic`), so it is not exact.
Measured with :func:`linearisation_report` (its defaults: curvatures
``(1, 0.1)``, noise variance 1, start at 1 in both coordinates, 300 steps,
4096 seeds, seed 0, torch's defaults otherwise).  "error" is ``|observed mean
- predicted| / observed mean``: its maximum and median over steps 1..300, and
"final", its mean over steps 201..300; "within 4 s.e." is the fraction of
steps 1..300 where the prediction lies within four standard errors of the
observed mean (with 4096 seeds one standard error is about 0.5 to 1% of the
loss, so a correct prediction scores about 100%):

=========================  ==========  ============  =============  ============  ===============
optimizer                  linearised  max error     median error   final error   within 4 s.e.
=========================  ==========  ============  =============  ============  ===============
adam lr=0.01               tracking    0.59%         0.36%          0.36%         100.0%
adam lr=0.01               steady      28.70%        18.30%         8.80%         0.0%
adam lr=0.05               tracking    4.55%         0.86%          1.25%         94.0%
adam lr=0.05               steady      25.88%        2.06%          2.16%         86.7%
adam lr=0.2                tracking    12.14%        1.14%          1.49%         97.3%
adam lr=0.2                steady      28.28%        1.77%          1.53%         95.0%
rmsprop lr=0.01            tracking    2.06%         1.11%          1.03%         100.0%
rmsprop lr=0.01            steady      121.46%       52.41%         25.13%        0.0%
rmsprop lr=0.05            tracking    6.51%         0.77%          0.72%         99.0%
rmsprop lr=0.05            steady      126.35%       9.47%          4.47%         37.0%
=========================  ==========  ============  =============  ============  ===============

* ``tracking`` (the default: the normaliser follows the predicted
  ``E[g^2]``) is within about 1 to 1.5% on the plateau, within the
  Monte-Carlo band at most steps, and worst in the transient (steps 5 to
  30: 4.5% for Adam at lr 0.05, 12% at lr 0.2, 6.5% for RMSprop at lr 0.05).
  The gap is the mean-field step: the real normaliser divides by
  ``sqrt(v_t)`` of the *random* ``v_t``, the prediction by ``sqrt(E[v_t])``
  (Jensen), which matters while ``v_t`` averages few squared gradients.
* ``steady`` (frozen at the self-consistent steady state) misses the whole
  transient by design (up to 29% for Adam, 126% for RMSprop) and, for the
  small learning rates, the 300 steps never reach that steady state.
* Without noise the tracking prediction is exact (the run is deterministic),
  which the tests check for every normalised optimizer of the catalogue.

Neither optimizer diverges on the noiseless quadratic (its normaliser
rescales the step as the gradient grows), so there is no divergence threshold
to compare; :func:`divergence_threshold` refuses normalised models.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._errors import InvalidHyperparameterError
from ._model import OptimizerModel
from .closed_loop import ModelLike, as_model, closed_loop
from .noisy_quadratic import NoisyQuadraticPrediction, predict

__all__ = [
    "DivergenceComparison",
    "LossComparison",
    "divergence_threshold",
    "linearisation_report",
    "observe_quadratic",
    "predicted_divergence_lr",
]

FloatArray = NDArray[np.float64]


def _list(values: ArrayLike) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=np.float64).ravel()]


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class LossComparison:
    """Predicted loss against the observed mean loss over seeds (see :func:`optfilters.plot.loss_comparison`).

    Attributes
    ----------
    name : str
    steps : ndarray
        ``0 .. N``.
    predicted_loss : ndarray
        The exact (or linearised) expected loss.
    observed_mean_loss, observed_stderr : ndarray
        Mean over seeds and its standard error (``std / sqrt(seeds)``, ``ddof=1``).
    seeds : int
    lrs : ndarray
        Learning rate of steps ``1 .. N``.
    label : str
        The prediction's label (``"exact"`` or what is linearised).

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters.observe import LossComparison
    >>> c = LossComparison("sgd", np.arange(3.0), np.array([1.0, 0.5, 0.25]), np.array([1.0, 0.52, 0.2]),
    ...                    np.array([0.0, 0.01, 0.01]), seeds=10, lrs=np.full(2, 0.5))
    >>> c.z_scores.round(6).tolist(), c.fraction_within(4.0)
    ([0.0, 2.0, -5.0], 0.5)
    """

    name: str
    steps: FloatArray
    predicted_loss: FloatArray
    observed_mean_loss: FloatArray
    observed_stderr: FloatArray
    seeds: int
    lrs: FloatArray
    label: str = "exact"
    linearised: bool = False
    prediction: NoisyQuadraticPrediction | None = field(default=None, repr=False, compare=False)

    def _floor(self) -> FloatArray:
        # Rounding floor for steps without spread (a fixed start): relative 1e-10.
        scale = np.maximum(np.abs(self.predicted_loss), np.abs(self.observed_mean_loss))
        return np.asarray(1e-10 * scale + 1e-300, dtype=np.float64)

    @property
    def z_scores(self) -> FloatArray:
        """``(observed mean - predicted) / stderr`` per step (0 where both agree to rounding)."""
        diff = self.observed_mean_loss - self.predicted_loss
        se = np.maximum(self.observed_stderr, self._floor())
        with np.errstate(invalid="ignore"):
            z = np.where(np.abs(diff) <= self._floor(), 0.0, diff / se)
        return np.asarray(z, dtype=np.float64)

    def fraction_within(self, band: float = 4.0, start: int = 1) -> float:
        """Fraction of steps ``start .. N`` where the prediction lies within ``band`` standard errors."""
        z = self.z_scores[start:]
        if z.size == 0:
            return 1.0
        return float(np.mean(np.abs(z) <= band))

    @property
    def relative_error(self) -> FloatArray:
        """``|observed mean - predicted| / observed mean`` per step."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(
                np.abs(self.observed_mean_loss - self.predicted_loss) / np.abs(self.observed_mean_loss),
                dtype=np.float64,
            )

    def as_dict(self) -> dict[str, Any]:
        """The three series (``N + 1`` values each) and the summary (JSON-able, non-finite as None)."""
        z = self.z_scores
        return {
            "name": self.name,
            "steps": int(self.steps[-1]),
            "seeds": self.seeds,
            "observed_mean_loss": _list(self.observed_mean_loss),
            "observed_stderr": _list(self.observed_stderr),
            "predicted_loss": _list(self.predicted_loss),
            "fraction_within_4_stderr": self.fraction_within(4.0),
            "max_abs_z": _finite_or_none(float(np.max(np.abs(z[1:]))) if z.size > 1 else 0.0),
            "max_relative_error": _finite_or_none(float(np.nanmax(self.relative_error[1:])) if z.size > 1 else 0.0),
            "steady_state_loss": None if self.prediction is None else self.prediction.as_dict()["steady_state_loss"],
            "rate": None if self.prediction is None else self.prediction.as_dict()["rate"],
            "lr": _list(self.lrs[:1])[0] if self.lrs.size else None,
            "label": self.label,
            "linearised": self.linearised,
        }

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Draw with :func:`optfilters.plot.loss_comparison`."""
        from . import plot

        return plot.loss_comparison(self, ax=ax, **kwargs)


@dataclass(frozen=True)
class DivergenceComparison:
    """Predicted and observed learning rate at which training on a quadratic starts to diverge.

    Examples
    --------
    >>> from optfilters.observe import DivergenceComparison
    >>> d = DivergenceComparison("sgd", 1.0, predicted_lr=2.0, observed_lr=2.001, bracket=(2.0, 2.002))
    >>> round(d.relative_error, 6)
    0.0005
    """

    name: str
    curvature: float
    predicted_lr: float
    observed_lr: float
    bracket: tuple[float, float]
    steps: int = 0
    rounds: int = 0
    label: str = "exact"

    @property
    def relative_error(self) -> float:
        """``|observed - predicted| / predicted``."""
        return abs(self.observed_lr - self.predicted_lr) / self.predicted_lr

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data."""
        return {
            "name": self.name,
            "curvature": self.curvature,
            "predicted_lr": _finite_or_none(self.predicted_lr),
            "observed_lr": _finite_or_none(self.observed_lr),
            "bracket": _list(self.bracket),
            "relative_error": _finite_or_none(self.relative_error),
            "predicted_lr_curvature": _finite_or_none(self.predicted_lr * self.curvature),
            "observed_lr_curvature": _finite_or_none(self.observed_lr * self.curvature),
            "steps": self.steps,
            "rounds": self.rounds,
            "label": self.label,
        }


# ----------------------------------------------------------------------------- torch runs


@contextmanager
def _single_thread() -> Iterator[None]:
    """Run torch on one intra-op thread (restored afterwards).

    The tensors here are small: on a shared machine, extra intra-op threads
    made a step several times slower (4096 x 2 float64 Adam: 8 ms against 1 ms).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


OptimizerFactory = Callable[[Any, float], Any]


def _factory(model: OptimizerModel, optimizer: Any) -> Callable[[Sequence[Any], float], Any]:
    """``make(params_or_groups, lr) -> torch optimizer`` for the bridge, torch.optim, or a callable."""
    if optimizer is None or optimizer == "bridge":
        from .torch import FilterOptimizer

        return lambda params, lr: FilterOptimizer(params, model, lr=lr)
    if optimizer == "torch":
        import importlib

        from ._catalogue import CATALOGUE

        entry = CATALOGUE.get(model.name)
        if entry is None or entry.torch_class is None:
            raise InvalidHyperparameterError(f"{model.name} has no torch.optim counterpart; use the bridge")
        module, _, cls_name = entry.torch_class.rpartition(".")
        cls = getattr(importlib.import_module(module), cls_name)
        kwargs = entry.torch_kwargs(dict(model.hyperparameters))
        kwargs.pop("lr", None)
        return lambda params, lr: cls(params, lr=lr, **kwargs)
    if callable(optimizer):
        return lambda params, lr: optimizer(params, lr)
    raise InvalidHyperparameterError(f"optimizer must be None, 'bridge', 'torch' or a callable, got {optimizer!r}")


def _train(
    opt: Any,
    theta: Any,
    h_t: Any,
    sd: Any,
    losses: Any,
    lrs: FloatArray,
    noisy: bool,
    gen: Any,
    progress: Callable[[int], None] | None,
    chunk: int,
    read: Callable[[], Any] | None = None,
) -> FloatArray:
    """The training loop of :func:`observe_quadratic`; fills ``losses`` (steps + 1, seeds) and returns it.

    ``read`` returns the tensor whose loss is recorded (default: the parameter).
    """
    import torch

    steps = lrs.size
    seeds, d = theta.shape
    done = 0
    for t in range(steps):
        for group in opt.param_groups:
            group["lr"] = float(lrs[t])
        opt.zero_grad(set_to_none=True)
        loss = 0.5 * (h_t * theta * theta).sum()
        if noisy:
            loss = loss + (torch.randn(seeds, d, generator=gen, dtype=theta.dtype) * sd * theta).sum()
        loss.backward()
        opt.step()
        with torch.no_grad():
            point = theta if read is None else read()
            losses[t + 1] = 0.5 * (h_t * point * point).sum(dim=1)
        if progress is not None and ((t + 1) % chunk == 0 or t + 1 == steps):
            progress(t + 1 - done)
            done = t + 1
    return np.asarray(losses.numpy(), dtype=np.float64)


def observe_quadratic(
    model: ModelLike,
    *,
    lr: float | None = None,
    curvatures: ArrayLike = 1.0,
    noise_var: ArrayLike = 0.0,
    init: ArrayLike = 1.0,
    steps: int = 100,
    seeds: int = 256,
    schedule: Any = None,
    init_var: ArrayLike = 0.0,
    seed: int = 0,
    second_moment: Any = "tracking",
    optimizer: Any = None,
    progress: Callable[[int], None] | None = None,
    averaged: bool = False,
    **hyperparameters: Any,
) -> LossComparison:
    """Train the noisy quadratic with torch over many seeds and compare with the prediction.

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        As for :func:`optfilters.noisy_quadratic.predict`.
    lr, curvatures, noise_var, init, steps, schedule, init_var, second_moment
        As for :func:`optfilters.noisy_quadratic.predict`.
    seeds : int
        Number of independent runs (a batch dimension of the parameter).
    seed : int
        Seed of the torch generator (noise and random starts).
    optimizer : None, "bridge", "torch" or callable
        The bridge :class:`optfilters.torch.FilterOptimizer` (default), the
        catalogue's ``torch.optim`` class, or ``make(params, lr)``.
    progress : callable, optional
        Called with the number of steps done since the last call.
    averaged : bool
        Compare the loss of the model's averaged parameters (EMA, SWA,
        Polyak: :attr:`optfilters.OptimizerModel.parameter_output`, read from
        the bridge's state) with its prediction
        (:attr:`~optfilters.noisy_quadratic.NoisyQuadraticPrediction.averaged_loss`)
        instead of the parameter's.  Needs the bridge.
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    LossComparison

    Examples
    --------
    >>> from optfilters.observe import observe_quadratic
    >>> c = observe_quadratic("momentum", lr=0.1, momentum=0.5, curvatures=[1.0, 0.1], noise_var=1.0,
    ...                       steps=50, seeds=512)
    >>> len(c.observed_mean_loss), c.fraction_within(4.0) >= 0.99
    (51, True)
    """
    import torch

    m = as_model(model, **hyperparameters)
    whole = [stage.key for stage in m.pipeline if not stage.elementwise]
    if whole:
        raise InvalidHyperparameterError(
            f"{m.name}'s stages {', '.join(whole)} act on whole tensors: the seeds of one parameter tensor would not "
            "be independent runs"
        )
    prediction = predict(
        m,
        lr=lr,
        curvatures=curvatures,
        noise_var=noise_var,
        init=init,
        steps=steps,
        schedule=schedule,
        init_var=init_var,
        second_moment=second_moment,
    )
    seeds = int(seeds)
    if seeds < 2:
        raise InvalidHyperparameterError(f"seeds must be >= 2 (for a standard error), got {seeds}")
    predicted = prediction.expected_loss
    if averaged:
        if prediction.averaged_loss is None:
            raise InvalidHyperparameterError(f"{m.name} keeps no averaged parameters (averaged=True needs an average)")
        if optimizer not in (None, "bridge"):
            raise InvalidHyperparameterError("averaged=True reads the bridge's state: use optimizer=None or 'bridge'")
        predicted = prediction.averaged_loss
    steps = int(steps)
    h = prediction.curvatures
    d = h.size
    lrs = prediction.lrs
    dtype = torch.float64
    gen = torch.Generator().manual_seed(int(seed))
    h_t = torch.as_tensor(h, dtype=dtype)
    sd = torch.as_tensor(np.sqrt(prediction.noise_var), dtype=dtype)
    theta0 = torch.as_tensor(np.broadcast_to(np.asarray(init, dtype=np.float64), (d,)).copy(), dtype=dtype)
    var0 = np.broadcast_to(np.asarray(init_var, dtype=np.float64), (d,))
    start = theta0.expand(seeds, d).clone()
    if np.any(var0 > 0):
        start += torch.randn(seeds, d, generator=gen, dtype=dtype) * torch.as_tensor(np.sqrt(var0), dtype=dtype)
    theta = torch.nn.Parameter(start)
    opt = _factory(m, optimizer)([theta], float(lrs[0]) if steps else float(m.lr if lr is None else lr))
    losses = torch.empty(steps + 1, seeds, dtype=dtype)
    noisy = bool(np.any(prediction.noise_var > 0))
    with torch.no_grad():
        losses[0] = 0.5 * (h_t * theta * theta).sum(dim=1)
    chunk = max(1, steps // 100)
    read: Callable[[], Any] | None = None
    if averaged:
        key = m.parameter_output

        def average() -> Any:
            state = opt.state.get(theta, {})
            return state[key] if key in state else theta

        read = average

    with _single_thread():
        observed = _train(opt, theta, h_t, sd, losses, lrs, noisy, gen, progress, chunk, read)
    mean = observed.mean(axis=1)
    stderr = observed.std(axis=1, ddof=1) / math.sqrt(seeds)
    return LossComparison(
        name=m.name,
        steps=prediction.steps,
        predicted_loss=predicted,
        observed_mean_loss=np.asarray(mean, dtype=np.float64),
        observed_stderr=np.asarray(stderr, dtype=np.float64),
        seeds=seeds,
        lrs=lrs,
        label=prediction.label,
        linearised=prediction.linearised,
        prediction=prediction,
    )


def predicted_divergence_lr(model: ModelLike, curvature: float = 1.0, **hyperparameters: Any) -> float:
    """The learning rate at which the closed loop on curvature ``h`` leaves the unit circle.

    Without weight decay this is the stability edge of ``lr * h`` divided by
    ``h``; with weight decay (which makes the loop depend on ``lr`` itself) it
    is the smallest ``lr`` whose closed-loop rate reaches 1, found by a scan
    and Brent's method.

    Examples
    --------
    >>> from optfilters.observe import predicted_divergence_lr
    >>> round(predicted_divergence_lr("momentum", 2.0, momentum=0.9), 9)   # 2 (1 + mu) / h
    1.9
    """
    from scipy.optimize import brentq

    m = as_model(model, **hyperparameters)
    h = float(curvature)
    if not (math.isfinite(h) and h > 0.0):
        raise InvalidHyperparameterError(f"curvature must be > 0, got {curvature}")
    if m.loop_decay() == (0.0, 0.0):  # the loop does not depend on lr itself
        return closed_loop(m).stability().max_stable_lr_curvature / h

    def excess(log_lr: float) -> float:
        lr = math.exp(log_lr)
        return float(closed_loop(m, lr=lr).rate(lr * h)) - 1.0

    grid = np.linspace(math.log(1e-8 / h), math.log(1e8 / h), 801)
    values = np.array([excess(v) for v in grid])
    stable = np.flatnonzero(values < 0.0)
    if stable.size == 0:
        return math.nan
    first = stable[0]
    after = np.flatnonzero(values[first:] >= 0.0)
    if after.size == 0:
        return math.inf
    i = first + after[0]
    return math.exp(brentq(excess, grid[i - 1], grid[i], xtol=1e-14))


def _diverges(amplitude: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Per run (columns): non-finite, or the envelope of the last quarter above that of the quarter before."""
    n = amplitude.shape[0]
    q = max(n // 4, 1)
    late = np.max(amplitude[n - q :], axis=0)
    before = np.max(amplitude[n - 2 * q : n - q], axis=0)
    bad = ~np.all(np.isfinite(amplitude), axis=0)
    return np.asarray(bad | (late > before), dtype=np.bool_)


def divergence_threshold(
    model: ModelLike,
    *,
    curvature: float = 1.0,
    steps: int = 400,
    candidates: int = 16,
    rtol: float = 1e-3,
    lr_range: tuple[float, float] | None = None,
    init: float = 1.0,
    optimizer: Any = None,
    max_rounds: int = 12,
    **hyperparameters: Any,
) -> DivergenceComparison:
    """Observed (torch, by multisection on lr) and predicted divergence learning rate on ``h theta^2 / 2``.

    Each round trains ``candidates`` learning rates for ``steps`` steps on the
    noiseless quadratic (one parameter group each, from ``theta = init``) and
    calls a run divergent when it is non-finite or its envelope ``max |theta|``
    over the last quarter exceeds that over the quarter before.  The bracket
    starts geometric over ``lr_range`` (default ``1e-4 / h`` to ``1e4 / h``),
    then narrows to the interval between the largest convergent and the
    smallest divergent rate until its width is below ``rtol`` relative.  The
    observed threshold is the bracket's middle.

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        A linear model (normalised optimizers do not diverge on a quadratic).
    curvature : float
        ``h``.
    steps : int
        Steps per run (more resolve rates closer to 1).
    candidates : int
        Learning rates per round.
    rtol : float
        Relative width of the final bracket.
    lr_range : (float, float), optional
        Initial bracket.
    init : float
        Starting point.
    optimizer : None, "bridge", "torch" or callable
        As for :func:`observe_quadratic`.
    max_rounds : int
        Upper bound on rounds.
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    DivergenceComparison

    Examples
    --------
    >>> from optfilters.observe import divergence_threshold
    >>> d = divergence_threshold("nesterov", momentum=0.9, curvature=1.0)
    >>> round(d.predicted_lr, 6), d.relative_error < 0.01
    (1.357143, True)
    """
    import torch

    m = as_model(model, **hyperparameters)
    if not m.is_linear:
        raise InvalidHyperparameterError(
            f"{m.name} normalises its step (or takes a sign), so it does not diverge on a quadratic; "
            "divergence_threshold needs a linear model"
        )
    h = float(curvature)
    predicted = predicted_divergence_lr(m, h)
    lo, hi = lr_range if lr_range is not None else (1e-4 / h, 1e4 / h)
    if not (0.0 < lo < hi and math.isfinite(hi)):
        raise InvalidHyperparameterError(f"lr_range must satisfy 0 < low < high, got {lr_range}")
    k = max(int(candidates), 2)
    make = _factory(m, optimizer)
    dtype = torch.float64
    lrs = np.geomspace(lo, hi, k)
    rounds = 0
    low, high = 0.0, math.inf
    while rounds < max_rounds:
        rounds += 1
        params = [torch.nn.Parameter(torch.full((1,), float(init), dtype=dtype)) for _ in lrs]
        opt = make([{"params": [p], "lr": float(lr)} for p, lr in zip(params, lrs, strict=True)], float(lrs[0]))
        amplitude = np.empty((steps + 1, k))
        amplitude[0] = abs(init)
        with torch.no_grad(), _single_thread():
            for t in range(steps):
                for p in params:
                    p.grad = h * p.detach().clone()
                opt.step()
                amplitude[t + 1] = [abs(float(p)) for p in params]
        bad = np.flatnonzero(_diverges(amplitude))
        if bad.size == 0:
            low = float(lrs[-1])
        else:
            high = float(lrs[bad[0]])
            if bad[0] > 0:
                low = float(lrs[bad[0] - 1])
        if not math.isfinite(high) or low == 0.0 or high - low <= rtol * high:
            break  # outside the initial range, or narrow enough
        lrs = np.linspace(low, high, k + 2)[1:-1]
    bracket = (low, high)
    observed = 0.5 * (bracket[0] + bracket[1]) if all(map(math.isfinite, bracket)) else math.nan
    return DivergenceComparison(
        name=m.name,
        curvature=h,
        predicted_lr=predicted,
        observed_lr=observed,
        bracket=bracket,
        steps=int(steps),
        rounds=rounds,
        label="exact" if m.is_time_invariant else "t->infinity LTI limit of a time-varying model",
    )


#: The settings of the module docstring's table.
LINEARISATION_SETTINGS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("adam", {"lr": 0.01}),
    ("adam", {"lr": 0.05}),
    ("adam", {"lr": 0.2}),
    ("rmsprop", {"lr": 0.01}),
    ("rmsprop", {"lr": 0.05}),
)


def linearisation_report(
    settings: Sequence[tuple[str, dict[str, Any]]] = LINEARISATION_SETTINGS,
    modes: Sequence[Any] = ("tracking", "steady"),
    *,
    curvatures: ArrayLike = (1.0, 0.1),
    noise_var: float = 1.0,
    init: float = 1.0,
    steps: int = 300,
    seeds: int = 4096,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Measure how far the linearised prediction of normalised optimizers is from real runs.

    One row per (setting, linearisation mode) with the maximum, median and
    final (last third of the steps) relative error of the predicted loss
    against the observed mean, and the fraction of steps within four standard
    errors.  The module docstring's table is this function's output.

    Examples
    --------
    >>> from optfilters.observe import linearisation_report
    >>> rows = linearisation_report([("adam", {"lr": 0.05})], ["tracking"], steps=20, seeds=64)
    >>> sorted(rows[0])
    ['final_error', 'hyperparameters', 'max_error', 'median_error', 'mode', 'name', 'within_4_stderr']
    """
    rows = []
    for name, hp in settings:
        for mode in modes:
            c = observe_quadratic(
                name,
                curvatures=curvatures,
                noise_var=noise_var,
                init=init,
                steps=steps,
                seeds=seeds,
                seed=seed,
                second_moment=mode,
                **hp,
            )
            err = c.relative_error[1:]
            tail = err[-max(len(err) // 3, 1) :]
            rows.append(
                {
                    "name": name,
                    "hyperparameters": dict(hp),
                    "mode": mode,
                    "max_error": float(np.max(err)),
                    "median_error": float(np.median(err)),
                    "final_error": float(np.mean(tail)),
                    "within_4_stderr": c.fraction_within(4.0),
                }
            )
    return rows


def linearisation_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows of :func:`linearisation_report` as the reStructuredText table of the module docstring.

    Examples
    --------
    >>> from optfilters.observe import linearisation_table
    >>> row = {"name": "adam", "hyperparameters": {"lr": 0.05}, "mode": "tracking", "max_error": 0.04,
    ...        "median_error": 0.01, "final_error": 0.012, "within_4_stderr": 0.94}
    >>> print(linearisation_table([row]).splitlines()[3])
    adam lr=0.05               tracking    4.00%         1.00%          1.20%         94.0%
    """
    widths = (25, 10, 12, 13, 12, 15)
    heads = ("optimizer", "linearised", "max error", "median error", "final error", "within 4 s.e.")
    rule = "  ".join("=" * w for w in widths)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [rule, line(heads), rule]
    for r in rows:
        setting = " ".join([str(r["name"]), *(f"{k}={v:g}" for k, v in r["hyperparameters"].items())])
        cells = (
            setting,
            str(r["mode"]),
            f"{100 * r['max_error']:.2f}%",
            f"{100 * r['median_error']:.2f}%",
            f"{100 * r['final_error']:.2f}%",
            f"{100 * r['within_4_stderr']:.1f}%",
        )
        out.append(line(cells))
    out.append(rule)
    return "\n".join(out)
