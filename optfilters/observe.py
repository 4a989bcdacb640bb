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
of learning rates (elements of one parameter tensor whose gradient is scaled
per learning rate, since the loop depends on ``lr * h`` only; parameter groups
when weight decay makes it depend on ``lr`` itself), judges every run by its
envelope over a horizon set by its predicted closed-loop poles
(:func:`horizon`, :func:`envelope_verdict`), reports a run whose horizon does
not fit in the step budget as undecided, and keeps the bracket between the
largest convergent and the smallest divergent one.  Gradients may be stale
(``staleness``) and the step counter pinned (``frozen_step``).

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

from .closed_loop import ModelLike, as_model, closed_loop
from .display import Plottable
from .errors import InvalidHyperparameterError
from .model import OptimizerModel
from .noisy_quadratic import NoisyQuadraticPrediction, predict
from .validation import finite_list as _list
from .validation import finite_or_none as _finite_or_none
from .validation import null_reasons, quiet_numerics, series_null_reason

__all__ = [
    "DivergenceComparison",
    "LossComparison",
    "divergence_threshold",
    "envelope_verdict",
    "horizon",
    "linearisation_report",
    "observe_quadratic",
    "predicted_divergence_lr",
]

FloatArray = NDArray[np.float64]


# ----------------------------------------------------------------------------- results


def _max_of_numbers(values: FloatArray) -> float:
    """The largest value that is not nan (0 for none at all, nan when all are nan: no warning either way)."""
    kept = values[~np.isnan(values)]
    if kept.size:
        return float(np.max(kept))
    return math.nan if values.size else 0.0


@dataclass(frozen=True)
class LossComparison(Plottable):
    """Predicted loss against the observed mean loss over seeds (see :func:`optfilters.plot.loss_comparison_plot`).

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
    linearised : bool
        Whether the prediction linearises the model (a normaliser frozen or tracked).
    prediction : NoisyQuadraticPrediction or None
        The prediction compared (None when built by hand).

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters.observe import LossComparison
    >>> c = LossComparison("sgd", np.arange(3.0), np.array([1.0, 0.5, 0.25]), np.array([1.0, 0.52, 0.2]),
    ...                    np.array([0.0, 0.01, 0.01]), seeds=10, lrs=np.full(2, 0.5))
    >>> c.z_scores.round(6).tolist(), c.fraction_within(4.0)
    ([0.0, 2.0, -5.0], 0.5)
    """

    _plot_function = "loss_comparison_plot"

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
    def comparable(self) -> NDArray[np.bool_]:
        """Per step, whether prediction and observation can be compared: both finite, with a finite standard error.

        A step where the runs diverged (their mean loss overflowed), the
        prediction diverged (its expected loss overflows) or the seeds' spread
        overflowed (an infinite standard error) is neither a pass nor a fail:
        :attr:`z_scores` is nan there and :meth:`fraction_within` skips it.
        """
        return np.asarray(
            np.isfinite(self.predicted_loss) & np.isfinite(self.observed_mean_loss) & np.isfinite(self.observed_stderr),
            dtype=np.bool_,
        )

    @property
    def z_scores(self) -> FloatArray:
        """``(observed mean - predicted) / stderr`` (0 where both agree to rounding, nan if not :attr:`comparable`)."""
        ok = self.comparable
        diff = np.where(ok, self.observed_mean_loss - np.where(ok, self.predicted_loss, 0.0), 0.0)
        floor = np.where(ok, self._floor(), 1.0)
        se = np.maximum(np.where(ok, self.observed_stderr, 1.0), floor)
        z = np.where(np.abs(diff) <= floor, 0.0, diff / se)
        return np.asarray(np.where(ok, z, np.nan), dtype=np.float64)

    def comparable_steps(self, start: int = 1) -> int:
        """How many of the steps ``start .. N`` are :attr:`comparable` (what :meth:`fraction_within` counts).

        Parameters
        ----------
        start : int
            First step counted (1 skips the fixed starting point).

        Returns
        -------
        int
            The count, ``0 .. N - start + 1``.
        """
        return int(np.count_nonzero(self.comparable[start:]))

    def fraction_within(self, band: float = 4.0, start: int = 1) -> float:
        """Fraction of the :attr:`comparable` steps ``start .. N`` with the prediction within ``band`` standard errors.

        Parameters
        ----------
        band : float
            Half-width of the band, in standard errors of the observed mean (:attr:`z_scores`).
        start : int
            First step counted (1 skips the fixed starting point).

        Returns
        -------
        float
            In ``[0, 1]``; nan when no step is comparable (no steps, or all
            diverged: :meth:`not_comparable` says why), never a pass or a fail.
        """
        ok = self.comparable[start:]
        if not ok.any():
            return math.nan
        return float(np.mean(np.abs(self.z_scores[start:][ok]) <= band))

    def not_comparable(self, start: int = 1) -> list[str]:
        """Why the steps ``start .. N`` that are not :attr:`comparable` are not, one sentence per cause.

        Parameters
        ----------
        start : int
            First step considered (1 skips the fixed starting point).

        Returns
        -------
        list of str
            ``"the prediction and the runs diverged at 12 steps from step 40"``,
            ``"the runs diverged ..."``, ``"the prediction diverged ..."``,
            ``"the standard error is infinite (the seeds' spread overflowed) ..."``;
            empty when every step is comparable.
        """
        predicted = ~np.isfinite(self.predicted_loss[start:])
        observed = ~np.isfinite(self.observed_mean_loss[start:])
        spread = ~np.isfinite(self.observed_stderr[start:]) & ~observed & ~predicted
        causes = (
            ("the prediction and the runs diverged (both overflowed)", predicted & observed),
            ("the runs diverged (their mean loss overflowed)", observed & ~predicted),
            ("the prediction diverged (its expected loss overflows)", predicted & ~observed),
            ("the standard error is infinite (the seeds' spread overflowed)", spread),
        )
        out = []
        for cause, mask in causes:
            if mask.any():
                count = int(np.count_nonzero(mask))
                first = start + int(np.argmax(mask))
                out.append(f"{cause} at {count} step{'s' if count != 1 else ''} from step {first}")
        return out

    @property
    def diverged_step(self) -> int | None:
        """The first step at which the observed mean loss is not finite (a run overflowed: it diverged); None if none.

        Examples
        --------
        >>> import numpy as np
        >>> c = LossComparison("sgd", np.arange(3.0), np.array([0.5, 8.0, np.inf]), np.array([0.5, 8.0, np.nan]),
        ...                    np.array([0.0, 0.0, np.nan]), seeds=2, lrs=np.full(2, 5.0))
        >>> calm = LossComparison("sgd", np.arange(1.0), *[np.zeros(1)] * 3, seeds=2, lrs=np.zeros(0))
        >>> c.diverged_step, calm.diverged_step
        (2, None)
        """
        bad = ~np.isfinite(self.observed_mean_loss)
        return int(np.argmax(bad)) if bad.any() else None

    @property
    def relative_error(self) -> FloatArray:
        """``|observed mean - predicted| / observed mean`` per step."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(
                np.abs(self.observed_mean_loss - self.predicted_loss) / np.abs(self.observed_mean_loss),
                dtype=np.float64,
            )

    def as_dict(self) -> dict[str, Any]:
        """The three series (``N + 1`` values each) and the summary (JSON-able, non-finite as None).

        Returns
        -------
        dict
            ``observed_mean_loss``, ``observed_stderr``, ``predicted_loss``
            (lists), the fraction within 4 standard errors, the largest
            ``|z|`` and relative error (after step 0), the prediction's
            steady-state loss, rate and ``stable`` (``rate < 1``; None without
            a prediction), ``linearisation_holds`` (the prediction's),
            :attr:`diverged_step`, the first learning rate and the labels.
            The fraction and the largest ``|z|`` count only the
            :attr:`comparable` steps: ``comparable_steps`` says how many,
            ``not_comparable`` (:meth:`not_comparable`) why the others are not.
            Non-finite numbers are None: ``diverged_step`` says from which step
            the observed series are None because the runs diverged, ``stable``
            whether a None rate is infinite, and ``why_null`` why each null is null.
        """
        z = self.z_scores[1:]
        kept = z[~np.isnan(z)]
        prediction = None if self.prediction is None else self.prediction.as_dict()
        data = {
            "name": self.name,
            "steps": int(self.steps[-1]),
            "seeds": self.seeds,
            "observed_mean_loss": _list(self.observed_mean_loss),
            "observed_stderr": _list(self.observed_stderr),
            "predicted_loss": _list(self.predicted_loss),
            "fraction_within_4_stderr": _finite_or_none(self.fraction_within(4.0)),
            "comparable_steps": self.comparable_steps(),
            "not_comparable": self.not_comparable(),
            "max_abs_z": _finite_or_none(float(np.max(np.abs(kept))) if kept.size else math.nan),
            "max_relative_error": _finite_or_none(_max_of_numbers(self.relative_error[1:])),
            "steady_state_loss": None if prediction is None else prediction["steady_state_loss"],
            "rate": None if prediction is None else prediction["rate"],
            "stable": None if prediction is None else prediction["stable"],
            "linearisation_holds": None if self.prediction is None else self.prediction.linearisation_holds,
            "diverged_step": self.diverged_step,
            "lr": _list(self.lrs[:1])[0] if self.lrs.size else None,
            "label": self.label,
            "linearised": self.linearised,
        }
        data["why_null"] = self._why_null(data, prediction)
        return data

    def _why_null(self, data: Mapping[str, Any], prediction: Mapping[str, Any] | None) -> dict[str, str]:
        """Why each null of :meth:`as_dict` is null (``data`` is that dict without ``why_null``)."""
        steps = int(self.steps[-1])
        if steps < 1:
            nothing = "undefined: no steps after step 0 (--steps 0)"
        else:
            nothing = "undefined: not comparable at any step: " + "; ".join(self.not_comparable())
        diverged = self.diverged_step
        ran = "undefined: the runs diverged (their loss overflowed)" + (
            "" if diverged is None else f" from step {diverged}"
        )
        without = "undefined: built without a prediction"
        reasons: dict[str, tuple[Any, str]] = {
            "fraction_within_4_stderr": (data["fraction_within_4_stderr"], nothing),
            "max_abs_z": (data["max_abs_z"], nothing),
            "max_relative_error": (
                data["max_relative_error"],
                "undefined: no steps after step 0 (--steps 0)" if steps < 1 else ran,
            ),
            "observed_mean_loss": (series_null_reason(self.observed_mean_loss, "")[0], ran + " (each null entry)"),
            "observed_stderr": series_null_reason(self.observed_stderr, "the standard error (the seeds' spread)"),
            "predicted_loss": series_null_reason(self.predicted_loss, "the predicted loss"),
            "diverged_step": (data["diverged_step"], "undefined: the runs did not diverge (no step's loss overflowed)"),
            "lr": (data["lr"], "undefined: no steps (--steps 0), hence no learning rate used"),
        }
        out = null_reasons(reasons)
        if prediction is None:
            out.update({k: without for k in ("steady_state_loss", "rate", "stable", "linearisation_holds")})
        else:
            out.update({k: v for k, v in prediction["why_null"].items() if k in ("steady_state_loss", "rate")})
        return out


@dataclass(frozen=True)
class DivergenceComparison:
    """Predicted and observed learning rate at which training on a quadratic starts to diverge.

    Attributes
    ----------
    name : str
    curvature : float
        ``h`` of the quadratic ``h theta^2 / 2``.
    predicted_lr : float
        :func:`predicted_divergence_lr` (the closed loop's edge).
    observed_lr : float
        Midpoint of the final bracket (nan when undecided).
    bracket : (float, float)
        Largest convergent and smallest divergent learning rate found.
    steps : int
        Longest run used (steps).
    rounds : int
        Multisection rounds.
    label : str
        ``"exact"``, or what is taken in its limit, frozen or stale.
    status : {"decided", "undecided"}
        ``"undecided"`` when runs whose horizon did not fit stopped the bracket narrowing.
    undecided : tuple of float
        The undecided learning rates inside the bracket.
    staleness : int
        Steps by which the gradient was stale.
    frozen_step : int or None
        The step the optimizer's counter was pinned at, if any.

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
    status: str = "decided"
    undecided: tuple[float, ...] = ()
    staleness: int = 0
    frozen_step: int | None = None

    @property
    def relative_error(self) -> float:
        """``|observed - predicted| / predicted`` (nan when undecided)."""
        if not (math.isfinite(self.observed_lr) and math.isfinite(self.predicted_lr)):
            return math.nan
        return abs(self.observed_lr - self.predicted_lr) / self.predicted_lr

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data.

        Returns
        -------
        dict
            The fields (non-finite as None), the relative error and both
            edges as ``lr * h`` (``predicted_lr_curvature``, ``observed_lr_curvature``).
        """
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
            "status": self.status,
            "undecided_lrs": _list(self.undecided),
            "staleness": self.staleness,
            "frozen_step": self.frozen_step,
        }


# ----------------------------------------------------------------------------- torch runs


@contextmanager
def _single_thread() -> Iterator[None]:
    """Run torch on one intra-op thread (restored afterwards).

    The tensors here are small: on a shared machine, extra intra-op threads
    made a step several times slower (4096 x 2 float64 Adam: 8 ms against 1 ms).
    """
    import torch  # noqa: F401  (one_torch_thread acts on an imported torch)

    from .identify import one_torch_thread

    with one_torch_thread():
        yield


def _factory(model: OptimizerModel, optimizer: Any) -> Callable[[Sequence[Any], float], Any]:
    """``make(params_or_groups, lr) -> torch optimizer`` for the bridge, torch.optim, or a callable."""
    if optimizer is None or optimizer == "bridge":
        from .torch import FilterOptimizer

        return lambda params, lr: FilterOptimizer(params, model, lr=lr)
    if optimizer == "torch":
        import importlib

        from .catalogue import CATALOGUE

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
    staleness: int = 0,
) -> FloatArray:
    """The training loop of :func:`observe_quadratic`; fills ``losses`` (steps + 1, seeds) and returns it.

    ``read`` returns the tensor whose loss is recorded (default: the parameter).
    With ``staleness = d`` the loss gradient is taken at ``theta_{t-1-d}`` (the
    starting point before the run): the loss is ``h stale theta`` with
    ``stale`` detached, so autograd gives ``h theta_{t-1-d} + xi``.
    """
    from collections import deque

    import torch

    steps = lrs.size
    seeds, d = theta.shape
    done = 0
    history: deque[Any] = deque([theta.detach().clone() for _ in range(staleness + 1)], maxlen=staleness + 1)
    for t in range(steps):
        for group in opt.param_groups:
            group["lr"] = float(lrs[t])
        opt.zero_grad(set_to_none=True)
        if staleness:
            loss = (h_t * history[0] * theta).sum()
        else:
            loss = 0.5 * (h_t * theta * theta).sum()
        if noisy:
            loss = loss + (torch.randn(seeds, d, generator=gen, dtype=theta.dtype) * sd * theta).sum()
        loss.backward()
        opt.step()
        with torch.no_grad():
            point = theta if read is None else read()
            losses[t + 1] = (0.5 * h_t * point * point).sum(dim=1)  # the same bits, but no h theta^2 overflow at 2^1023
            if staleness:
                history.append(theta.detach().clone())
        if progress is not None and ((t + 1) % chunk == 0 or t + 1 == steps):
            progress(t + 1 - done)
            done = t + 1
    return np.asarray(losses.numpy(), dtype=np.float64)


def _mean_and_stderr(observed: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Mean over seeds (axis 1) and its standard error (``ddof=1``) per step, each step scaled by a power of two.

    Exact scaling, so the sums and squares inside cannot overflow where the
    mean and spread themselves are within the double range (losses near
    ``1e200``: their squares overflowed, the standard error was ``inf``); a step
    where a run overflowed has a non-finite mean (the runs diverged).  No warnings.

    Examples
    --------
    >>> m, se = _mean_and_stderr(np.array([[1e300, 3e300], [1.0, np.inf]]))
    >>> m.tolist(), (se / 1e300).round(12).tolist()[:1], bool(np.isinf(m[1]))
    ([2e+300, inf], [1.0], True)
    """
    seeds = observed.shape[1]
    with quiet_numerics():
        finite = np.where(np.isfinite(observed), np.abs(observed), 0.0)
        e = np.frexp(np.maximum(np.max(finite, axis=1), np.finfo(np.float64).tiny))[1][:, None]
        scaled = np.ldexp(observed, -e)
        mean = np.ldexp(scaled.mean(axis=1), e[:, 0])
        stderr = np.ldexp(scaled.std(axis=1, ddof=1) / math.sqrt(seeds), e[:, 0])
    return np.asarray(mean, dtype=np.float64), np.asarray(stderr, dtype=np.float64)


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
    staleness: int = 0,
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
    staleness : int
        Steps ``d`` by which the loss gradient fed to the optimizer is stale
        (``h theta_{t-1-d} + xi``), predicted with the same ``staleness``.
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    LossComparison

    Raises
    ------
    InvalidHyperparameterError
        If a stage acts on whole tensors (the seeds would not be independent
        runs), ``seeds < 2``, or ``averaged=True`` for a model without an
        average or with ``optimizer`` other than the bridge; and for the
        inputs :func:`optfilters.noisy_quadratic.predict` rejects.

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
        staleness=staleness,
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
        losses[0] = (0.5 * h_t * theta * theta).sum(dim=1)
    chunk = max(1, steps // 100)
    read: Callable[[], Any] | None = None
    if averaged:
        key = m.parameter_output

        def average() -> Any:
            state = opt.state.get(theta, {})
            return state[key] if key in state else theta

        read = average

    with _single_thread():
        observed = _train(opt, theta, h_t, sd, losses, lrs, noisy, gen, progress, chunk, read, int(staleness))
    mean, stderr = _mean_and_stderr(observed)
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

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        A linear model (see :func:`optfilters.as_model`).
    curvature : float
        ``h`` (> 0) of the quadratic ``h theta^2 / 2``.
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    float
        The learning rate at the edge; with weight decay, inf when no
        scanned learning rate (``1e-8 / h`` to ``1e8 / h``) above the first
        stable one diverges, nan when none of them is stable.

    Raises
    ------
    InvalidHyperparameterError
        If ``curvature`` is not a finite number > 0.

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


#: Decision threshold on the envelope ratio of the last two windows: ``|log ratio| > ENVELOPE_TOL`` decides.
ENVELOPE_TOL = 0.05
#: Sub-dominant closed-loop modes must have decayed by this factor relative to the dominant one (burn-in).
_SUPPRESSION = 1e6
#: A run is divergent once its amplitude exceeds this multiple of the start (no stable loop grows so far).
_BLOWUP = 1e50


def horizon(poles: ArrayLike) -> tuple[int, int] | None:
    """Burn-in and window (steps) over which a run's envelope reveals its closed-loop rate.

    From the closed-loop poles (largest modulus ``rho1`` first): the window
    covers at least four periods of the dominant mode and enough steps for
    the envelope to change by ``e^0.15`` (three times the decision threshold
    :data:`ENVELOPE_TOL`) at rate ``rho1``.  The period that matters is that
    of ``|theta_t|``: ``pi / dist(angle, {0, pi})`` steps, so that a complex
    pair near ``z = -1`` (a period-2 sign flip under a slow beat) counts as
    slow, as one near ``z = 1`` does.  The burn-in lets
    the other modes decay by 1e6 relative to the dominant one
    (``log 1e6 / log(rho1 / rho2)``).  None when ``rho1 == 1`` exactly (no
    finite horizon decides).

    Parameters
    ----------
    poles : array_like of complex
        The closed-loop poles (any order).

    Returns
    -------
    (int, int) or None
        ``(burn_in, window)`` in steps (``(0, 8)`` for one pole, ``(8, 8)``
        for none), or None when the dominant pole lies on the unit circle.

    Examples
    --------
    >>> from optfilters.observe import horizon
    >>> horizon([0.5])                 # one pole: no burn-in
    (0, 8)
    >>> horizon([-1.01, -0.98])        # the heavy-ball edge: two real poles near -1
    (459, 16)
    """
    p = np.asarray(poles, dtype=np.complex128).ravel()
    if p.size == 0:
        return 8, 8
    p = p[np.argsort(-np.abs(p), kind="stable")]
    rho1 = float(abs(p[0]))
    if rho1 == 1.0:
        return None
    dominant = np.abs(p) >= rho1 * (1.0 - 1e-9)
    angles = np.abs(np.angle(p[dominant]))
    # |cos(a t + phi)| sampled at integer t has the period pi / dist(a, {0, pi}): a pole near z = -1
    # (a near pi) beats slowly, like one near z = 1; real poles do not oscillate in |theta|.
    distance = np.minimum(angles, math.pi - angles)
    periods = [1.0 if a < 1e-12 else math.pi / a for a in distance]
    period = max(periods)
    window = max(8, math.ceil(4.0 * period))
    if rho1 > 0.0:
        window = max(window, math.ceil(3.0 * ENVELOPE_TOL / abs(math.log(rho1))))
    rest = np.abs(p[~dominant])
    rho2 = float(rest.max()) if rest.size else 0.0
    burn = 0 if rho2 == 0.0 or rho1 == 0.0 else math.ceil(math.log(_SUPPRESSION) / math.log(rho1 / rho2))
    return burn, window


def envelope_verdict(amplitude: ArrayLike, window: int, tol: float = ENVELOPE_TOL) -> tuple[int, float]:
    """Classify a run from its amplitude trace ``|theta_t|``: +1 diverges, -1 converges, 0 undecided.

    Compares ``max |theta|`` over the last ``window`` steps with that over the
    ``window`` steps before; returns the verdict and the per-step envelope
    rate ``(last / previous)^(1 / window)`` (the observed closed-loop rate).
    Non-finite or blown-up runs (1e50 times the start) diverge; runs that
    decay to zero converge.

    Parameters
    ----------
    amplitude : array_like, shape (steps + 1,)
        ``|theta_t|`` of one run (its sign is ignored).
    window : int
        Steps per comparison window (from :func:`horizon`); fewer than
        ``2 * window + 1`` values leave the run undecided.
    tol : float
        Decision threshold on ``log(last / previous)`` (default :data:`ENVELOPE_TOL`).

    Returns
    -------
    verdict : int
        +1 diverges, -1 converges, 0 undecided.
    rate : float
        Per-step envelope rate (inf for a blow-up, 0 for a run decayed to
        zero, nan when too short).

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters.observe import envelope_verdict
    >>> t = np.arange(200)
    >>> envelope_verdict(np.abs(0.97**t * np.cos(0.3 * t)), 40)[0], envelope_verdict(1.02**t, 40)[0]
    (-1, 1)
    >>> round(envelope_verdict(0.97**t, 40)[1], 6)
    0.97
    """
    a = np.abs(np.asarray(amplitude, dtype=np.float64))
    w = int(window)
    start = float(a[0]) if a.size and a[0] > 0 else 1.0
    if not np.all(np.isfinite(a)) or float(np.max(a)) > _BLOWUP * start:
        return 1, math.inf
    if a.size < 2 * w + 1 or w < 1:
        return 0, math.nan
    last = float(np.max(a[-w:]))
    previous = float(np.max(a[-2 * w : -w]))
    if last == 0.0 or last < 1e-280 * start:
        return -1, 0.0
    if previous == 0.0:
        return 1, math.inf
    ratio = last / previous
    rate = ratio ** (1.0 / w)
    if math.log(ratio) > tol:
        return 1, rate
    if math.log(ratio) < -tol:
        return -1, rate
    return 0, rate


def _run_envelopes(
    model: OptimizerModel,
    lrs: FloatArray,
    curvature: float,
    steps: int,
    init: float,
    optimizer: Any,
    staleness: int,
    frozen_step: int | None,
) -> FloatArray:
    """``|theta_t|`` (``steps + 1``, ``len(lrs)``) of noiseless runs with gradients ``staleness`` steps old.

    Without weight decay the loop depends on ``lr * h`` only, so every
    learning rate runs as one element of a single parameter tensor whose
    gradient is scaled by ``lr_i / lr_run`` (one optimizer step advances all
    of them); with weight decay, which makes the loop depend on ``lr``
    itself, each learning rate is its own parameter group.  With
    ``frozen_step`` the optimizer's step counter is pinned at that step
    (the bridge's state ``step``), so every step applies the coefficients of
    step ``frozen_step``.
    """
    from collections import deque

    import torch

    k = lrs.size
    dtype = torch.float64
    make = _factory(model, optimizer)
    decay = model.weight_decay is not None and model.weight_decay.weight_decay != 0.0
    out = np.empty((steps + 1, k))
    out[0] = abs(init)
    with torch.no_grad(), _single_thread():
        if decay:
            params = [torch.nn.Parameter(torch.full((1,), float(init), dtype=dtype)) for _ in range(k)]
            opt = make([{"params": [p], "lr": float(lr)} for p, lr in zip(params, lrs, strict=True)], float(lrs[0]))
            theta = None
            scale = None
        else:
            theta = torch.nn.Parameter(torch.full((k,), float(init), dtype=dtype))
            params = [theta]
            lr_run = float(lrs.max())
            opt = make([theta], lr_run)
            scale = torch.as_tensor(curvature * lrs / lr_run, dtype=dtype)
        if frozen_step is not None:
            for p in params:
                p.grad = torch.zeros_like(p)
            opt.step()  # creates the state from rest (a zero gradient moves nothing)
            states = [opt.state[p] for p in params]
            if any("step" not in st for st in states):
                raise InvalidHyperparameterError("frozen_step needs an optimizer that keeps a 'step' in its state")
        history: deque[Any] = deque(maxlen=staleness + 1)
        current = theta.detach().clone() if theta is not None else torch.cat([p.detach() for p in params])
        for _ in range(staleness + 1):
            history.append(current.clone())
        for t in range(steps):
            stale = history[0]
            if frozen_step is not None:
                for st in states:
                    st["step"].fill_(float(frozen_step - 1))
            if theta is not None:
                theta.grad = scale * stale
            else:
                for i, p in enumerate(params):
                    p.grad = curvature * stale[i : i + 1].clone()
            opt.step()
            current = theta.detach().clone() if theta is not None else torch.cat([p.detach() for p in params])
            history.append(current)
            out[t + 1] = current.abs().numpy()
    return out


def divergence_threshold(
    model: ModelLike,
    *,
    curvature: float = 1.0,
    steps: int = 20_000,
    candidates: int = 16,
    rtol: float = 1e-3,
    lr_range: tuple[float, float] | None = None,
    init: float = 1.0,
    optimizer: Any = None,
    max_rounds: int = 30,
    staleness: int = 0,
    frozen_step: int | None = None,
    **hyperparameters: Any,
) -> DivergenceComparison:
    """Observed (torch, by multisection on lr) and predicted divergence learning rate on ``h theta^2 / 2``.

    Each round trains ``candidates`` learning rates on the noiseless
    quadratic (from ``theta = init``; the gradient ``h theta_{t-1-d}`` is
    ``d = staleness`` steps old) and classifies each run from its envelope
    (:func:`envelope_verdict`) over a horizon set by that learning rate's
    predicted closed-loop poles (:func:`horizon`: several periods of the
    dominant mode, enough steps for the envelope to move by ``e^0.15``, and a
    burn-in for the other modes), up to ``steps`` steps.  A run whose horizon
    does not fit in ``steps`` is decided only if it blows up; otherwise it is
    **undecided**, never guessed: a slow oscillation is not mistaken for
    growth.  The bracket starts geometric over ``lr_range`` (default
    ``1e-4 / h`` to ``1e4 / h``), then narrows to the interval between the
    largest convergent and the smallest divergent rate until its relative
    width is below ``rtol``; when undecided runs stop it narrowing first, the
    result's ``status`` is ``"undecided"`` and ``observed_lr`` is nan (the
    bracket is reported as found).

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        A linear model (normalised optimizers do not diverge on a quadratic).
    curvature : float
        ``h``.
    steps : int
        Largest number of steps per run.
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
    staleness : int
        Steps by which the gradient is stale (asynchronous training).
    frozen_step : int, optional
        Pin the optimizer's step counter (bridge state ``step``) at this step:
        a run frozen at ``t``, compared with the frozen-time edge of
        :func:`optfilters.thresholds.frozen_loop`.
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    DivergenceComparison

    Raises
    ------
    InvalidHyperparameterError
        If the model is not linear (a normaliser or sign: it does not diverge
        on a quadratic), ``curvature`` is not a finite number > 0,
        ``staleness < 0``, ``steps < 16``, ``frozen_step < 1`` or ``lr_range``
        is not ``0 < low < high``.

    Examples
    --------
    >>> from optfilters.observe import divergence_threshold
    >>> d = divergence_threshold("nesterov", momentum=0.9, curvature=1.0)
    >>> round(d.predicted_lr, 6), d.status, d.relative_error < 0.01
    (1.357143, 'decided', True)
    """
    from .margins import feedback_loop

    m = as_model(model, **hyperparameters)
    if not m.is_linear:
        raise InvalidHyperparameterError(
            f"{m.name} normalises its step (or takes a sign), so it does not diverge on a quadratic; "
            "divergence_threshold needs a linear model"
        )
    h = float(curvature)
    if not (math.isfinite(h) and h > 0.0):
        raise InvalidHyperparameterError(f"curvature must be > 0, got {curvature}")
    d = int(staleness)
    if d < 0:
        raise InvalidHyperparameterError(f"staleness must be >= 0, got {staleness}")
    steps = int(steps)
    if steps < 16:
        raise InvalidHyperparameterError(f"steps must be >= 16, got {steps}")
    if frozen_step is not None:
        from .thresholds import frozen_loop

        if int(frozen_step) < 1:
            raise InvalidHyperparameterError(f"frozen_step must be >= 1, got {frozen_step}")
        loop = frozen_loop(m, int(frozen_step), curvature=h, staleness=d)
    else:
        loop = feedback_loop(m, curvature=h, staleness=d)
    lr_ref = loop.lr_curvature / h  # the gain factor g scales this learning rate
    small = next((iv for iv in loop.stable_intervals() if iv[0] <= 1e-300 < iv[1]), None)
    if frozen_step is None and d == 0:
        predicted = predicted_divergence_lr(m, h)
    else:
        predicted = math.nan if small is None else small[1] * lr_ref
    lo, hi = lr_range if lr_range is not None else (1e-4 / h, 1e4 / h)
    if not (0.0 < lo < hi and math.isfinite(hi)):
        raise InvalidHyperparameterError(f"lr_range must satisfy 0 < low < high, got {lr_range}")
    k = max(int(candidates), 2)
    lrs = np.geomspace(lo, hi, k)
    rounds = 0
    low, high = 0.0, math.inf
    verdicts: dict[float, int] = {}
    used = 0
    while rounds < max_rounds:
        rounds += 1
        plans = [horizon(loop.poles(lr / lr_ref)) for lr in lrs]
        needed = [steps + 1 if plan is None else plan[0] + 2 * plan[1] for plan in plans]
        n = min(steps, max(needed))
        used = max(used, n)
        trace = _run_envelopes(m, lrs, h, n, init, optimizer, d, frozen_step)
        fresh = 0
        for i, lr in enumerate(lrs):
            plan = plans[i]
            window = 1 if plan is None else plan[1]
            column = trace[:, i]
            verdict, _ = envelope_verdict(column, min(window, n // 2))
            blown = not np.all(np.isfinite(column)) or float(np.max(column)) > _BLOWUP * abs(init)
            if needed[i] > n and not blown:
                verdict = 0  # the horizon did not fit in the steps: only a blow-up decides
            if float(lr) not in verdicts:
                fresh += verdict != 0
            verdicts[float(lr)] = verdict
        diverging = sorted(lr for lr, v in verdicts.items() if v == 1)
        if diverging:
            high = diverging[0]
            below = [lr for lr, v in verdicts.items() if v == -1 and lr < high]
            low = max(below) if below else 0.0
        else:
            converging = [lr for lr, v in verdicts.items() if v == -1]
            low = max(converging) if converging else 0.0
        if not math.isfinite(high) or low == 0.0 or high - low <= rtol * high or fresh == 0:
            break  # outside the initial range, narrow enough, or nothing new decided
        lrs = np.linspace(low, high, k + 2)[1:-1]
    bracket = (low, high)
    decided = low > 0.0 and math.isfinite(high) and high - low <= rtol * high
    observed = 0.5 * (low + high) if decided else math.nan
    undecided = tuple(sorted(lr for lr, v in verdicts.items() if v == 0 and low <= lr <= high))
    label = "exact" if m.is_time_invariant else "t->infinity LTI limit of a time-varying model"
    if frozen_step is not None:
        label = f"frozen at step {int(frozen_step)}"
    if d:
        label = f"{label}; gradients {d} step{'s' if d != 1 else ''} stale"
    return DivergenceComparison(
        name=m.name,
        curvature=h,
        predicted_lr=predicted,
        observed_lr=observed,
        bracket=bracket,
        steps=used,
        rounds=rounds,
        label=label,
        status="decided" if decided else "undecided",
        undecided=undecided,
        staleness=d,
        frozen_step=None if frozen_step is None else int(frozen_step),
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

    Parameters
    ----------
    settings : sequence of (str, dict)
        Catalogue names with their hyperparameters (default
        :data:`LINEARISATION_SETTINGS`).
    modes : sequence
        ``second_moment`` linearisations of :func:`optfilters.noisy_quadratic.predict`
        (``"tracking"``, ``"steady"``, ...).
    curvatures : array_like
        Curvatures ``h`` of the quadratic, one per coordinate.
    noise_var : float
        Gradient-noise variance per coordinate.
    init : float
        Starting point.
    steps : int
        Steps per run.
    seeds : int
        Runs per setting (:func:`observe_quadratic`).
    seed : int
        Seed of the torch generator.

    Returns
    -------
    list of dict
        One row per (setting, mode): ``name``, ``hyperparameters``, ``mode``,
        ``max_error``, ``median_error``, ``final_error`` (mean over the last
        third; relative errors of the loss, dimensionless) and
        ``within_4_stderr`` (a fraction).

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
