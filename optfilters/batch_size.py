"""Batch size on the noisy quadratic model: steps to a target loss, critical batch size, scaling rules.

The noisy quadratic model of Zhang, Li, Nado, Martens, Sachdeva, Dahl,
Shallue & Grosse ("Which Algorithmic Choices Matter at Which Batch Sizes?
Insights From a Noisy Quadratic Model", NeurIPS 2019): the loss
``L = 1/2 sum_i h_i theta_i^2``, a per-example gradient covariance ``C =
diag(c_i)``, so that a batch of ``B`` examples gives gradient noise of
variance ``c_i / B``, and a random start ``theta_0 ~ N(0, s_0 I)``.  Their
spectrum is ``h_i = 1/i`` (``i <= 10^4``) with ``c_i = h_i``, and their
question: how many steps does an optimizer need to reach a target loss at
batch size ``B``, with its learning rate (and momentum) tuned for that ``B``?
Perfect scaling (steps ``~ 1/B``) holds for small batches and ends at a
*critical batch size*, beyond which more examples per step buy little.

Each coordinate's loop is the LTI limit of the optimizer's closed loop
(:func:`optfilters.noisy_quadratic.transition_matrices`, the exact
state-space model of :func:`optfilters.noisy_quadratic.predict`): ``X_t = A X_{t-1}
+ b xi_t``, so that ``E[L_k] = 1/2 sum_i h_i (s_0 [A_i^k]_{00}^2 + (c_i / B)
G_{i,k})`` with ``G_k = sum_{j<k} (e_0^T A^j b)^2``.  The powers ``A^{2^m}``
and sums ``G_{2^m}`` are built by doubling (``G_{2k} = G_k + A^k G_k
A^{kT}``), and any ``k`` is read from its binary digits with vector products
only, so every coordinate's exact sum costs ``O(log k)`` per step count: no
eigendecomposition (critically damped momentum loops are defective) and no
per-step loop.  The search over learning rates (and momentum) runs on a
quantised copy of the spectrum (geometric bins with counts, as the paper's
notebook does); the reported steps are then recomputed with the exact sums
over every coordinate, and refined to the exact integer step count.

* Preconditioning ``P = H^{-p}`` (the paper's model of Adam and K-FAC: ``p =
  1/2`` is "Adam-like", since Adam's second moment tracks ``c_i = h_i``) is a
  fixed gain per coordinate (``preconditioning=p``); normalised catalogue
  entries (``adam``, ``rmsprop``, ...) are linearised with the normaliser frozen
  at the second moment of the gradient noise, ``v_i = c_i / B``
  (``1 / sqrt(v) = sqrt(B / c_i)``: Adam's own ``H^{-1/2}`` with a ``sqrt(B)`` gain).
* :func:`scaling_rule` derives from the filter how hyperparameters must change
  with the batch size to keep the same closed loop per example seen (every
  pole ``p -> p^kappa``, the loop gain per example kept), and
  :func:`check_scaling_rule` checks a rule with exact predictions
  (:func:`optfilters.noisy_quadratic.predict`) against the loss per example seen.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .catalogue import CATALOGUE, CatalogueFacts, get
from .closed_loop import ModelLike, as_model, closed_loop
from .display import Plottable
from .errors import InvalidHyperparameterError
from .validation import finite_list as _list
from .validation import finite_or_none as _finite_or_none
from .validation import saturating_spectral_radius

__all__ = [
    "POLE_HYPERPARAMETERS",
    "BatchScaling",
    "NoisyQuadraticSpectrum",
    "ScalingRuleCheck",
    "batch_scaling",
    "check_scaling_rule",
    "critical_batch_size",
    "expected_loss",
    "scaling_rule",
    "steps_to_target",
]

FloatArray = NDArray[np.float64]

#: Doubling levels: step counts up to 2^LEVELS are reachable.
LEVELS = 24


# ----------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class NoisyQuadraticSpectrum:
    """The noisy quadratic model's curvatures, per-example gradient variances and start.

    Attributes
    ----------
    curvatures : ndarray
        ``h_i > 0``.
    noise : ndarray
        Per-example gradient variance ``c_i`` (batch ``B`` gives ``c_i / B``).
    init_var : float
        ``theta_0 ~ N(0, init_var I)``.
    weights : ndarray
        Multiplicity of each coordinate (1; bin counts for a quantised copy).

    Examples
    --------
    >>> from optfilters.batch_size import NoisyQuadraticSpectrum
    >>> nqm = NoisyQuadraticSpectrum.zhang2019(10_000)
    >>> nqm.dim, round(nqm.initial_loss, 6)      # 1/2 sum h_i: the harmonic number H_10000 / 2
    (10000, 4.893803)
    """

    curvatures: FloatArray
    noise: FloatArray
    init_var: float = 1.0
    weights: FloatArray = field(default_factory=lambda: np.ones(0))

    def __post_init__(self) -> None:
        h = np.atleast_1d(np.asarray(self.curvatures, dtype=np.float64)).ravel()
        c = np.broadcast_to(np.asarray(self.noise, dtype=np.float64), h.shape).copy()
        w = np.asarray(self.weights, dtype=np.float64).ravel()
        w = np.ones_like(h) if w.size == 0 else np.broadcast_to(w, h.shape).copy()
        if h.size == 0 or not np.all(np.isfinite(h)) or np.any(h <= 0):
            raise InvalidHyperparameterError("curvatures must be finite and > 0")
        if not np.all(np.isfinite(c)) or np.any(c < 0):
            raise InvalidHyperparameterError("noise variances must be finite and >= 0")
        if not (math.isfinite(self.init_var) and self.init_var >= 0):
            raise InvalidHyperparameterError(f"init_var must be finite and >= 0, got {self.init_var!r}")
        object.__setattr__(self, "curvatures", h)
        object.__setattr__(self, "noise", c)
        object.__setattr__(self, "weights", w)

    @classmethod
    def zhang2019(cls, dim: int = 10_000, init_var: float = 1.0) -> NoisyQuadraticSpectrum:
        """``h_i = 1/i`` for ``i = 1 .. dim`` and ``c_i = h_i`` (Zhang et al. 2019; their notebook's ``N(0, I)``).

        Parameters
        ----------
        dim : int
            Number of coordinates (>= 1; the paper uses 10^4).
        init_var : float
            Variance of the start, ``theta_0 ~ N(0, init_var I)``.

        Returns
        -------
        NoisyQuadraticSpectrum

        Raises
        ------
        InvalidHyperparameterError
            If ``dim < 1``.

        References
        ----------
        G. Zhang et al., "Which algorithmic choices matter at which batch
        sizes? Insights from a noisy quadratic model", NeurIPS 2019.
        """
        if int(dim) < 1:
            raise InvalidHyperparameterError(f"dim must be >= 1, got {dim}")
        h = 1.0 / np.arange(1, int(dim) + 1, dtype=np.float64)
        return cls(h, h.copy(), init_var)

    @property
    def dim(self) -> int:
        """Number of coordinates represented (the sum of the weights)."""
        return round(float(np.sum(self.weights)))

    @property
    def initial_loss(self) -> float:
        """``E[L_0] = 1/2 sum_i h_i init_var``."""
        return float(0.5 * self.init_var * np.sum(self.weights * self.curvatures))

    def quantised(self, bins: int = 256) -> NoisyQuadraticSpectrum:
        """A copy with the curvatures grouped in ``bins`` geometric bins (count-weighted means; for searches).

        Each bin's curvature is the weighted mean of its ``h_i`` and its noise
        the ``h``-weighted mean of its ``c_i`` (so ``sum w h`` and ``sum w h c``
        are kept); the bin counts become the weights.

        Parameters
        ----------
        bins : int
            Number of geometric bins between the smallest and largest curvature.

        Returns
        -------
        NoisyQuadraticSpectrum
            At most ``bins`` coordinates (``self`` when it has no more already).

        Examples
        --------
        >>> from optfilters.batch_size import NoisyQuadraticSpectrum
        >>> q = NoisyQuadraticSpectrum.zhang2019(10_000).quantised(100)
        >>> q.curvatures.size <= 100, q.dim, round(q.initial_loss, 6)
        (True, 10000, 4.893803)
        """
        h, c, w = self.curvatures, self.noise, self.weights
        if h.size <= bins:
            return self
        edges = np.geomspace(h.min(), h.max(), int(bins) + 1)
        index = np.clip(np.searchsorted(edges, h, side="right") - 1, 0, int(bins) - 1)
        counts = np.bincount(index, weights=w, minlength=bins)
        keep = counts > 0
        mean_h = np.bincount(index, weights=w * h, minlength=bins)[keep] / counts[keep]
        mean_c = np.bincount(index, weights=w * h * c, minlength=bins)[keep] / (mean_h * counts[keep])
        return NoisyQuadraticSpectrum(mean_h, mean_c, self.init_var, np.asarray(counts[keep], dtype=np.float64))


# ----------------------------------------------------------------------------- exact sums by doubling


class _Doubling:
    """``A^{2^m}`` and ``G_{2^m}`` for stacked loops (rows), and the exact sums ``T_k``, ``N_k`` at any ``k``."""

    def __init__(self, a: FloatArray, b: FloatArray, levels: int = LEVELS) -> None:
        self.powers: list[FloatArray] = [a]
        self.grams: list[FloatArray] = [b[:, :, None] * b[:, None, :]]
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(levels):
                p, g = self.powers[-1], self.grams[-1]
                pg = p @ g
                self.grams.append(g + pg @ np.swapaxes(p, 1, 2))
                self.powers.append(p @ p)

    def state(self, k: int) -> tuple[FloatArray, FloatArray]:
        """``e_0^T A^k`` (rows, n) and ``G_k[0, 0]`` per row, from the binary digits of ``k`` (vector products only)."""
        if k >= 1 << len(self.powers):
            raise InvalidHyperparameterError(f"step counts above 2^{len(self.powers)} are out of range, got {k}")
        rows, n = self.powers[0].shape[:2]
        r = np.zeros((rows, n))
        r[:, 0] = 1.0
        gram = np.zeros(rows)
        with np.errstate(over="ignore", invalid="ignore"):
            for m in range(len(self.powers) - 1, -1, -1):
                if k >> m & 1:
                    r, gram = self.advance(r, gram, m)
        return r, gram

    def advance(self, r: FloatArray, gram: FloatArray, m: int) -> tuple[FloatArray, FloatArray]:
        """From the state after ``k`` steps to the state after ``k + 2^m``."""
        with np.errstate(over="ignore", invalid="ignore"):
            return np.einsum("ri,rij->rj", r, self.powers[m]), gram + np.einsum("ri,rij,rj->r", r, self.grams[m], r)

    def at(self, k: int) -> tuple[FloatArray, FloatArray]:
        """``(A^k)_{00}`` and ``G_k[0, 0]`` per row."""
        r, gram = self.state(k)
        return r[:, 0], gram

    def grid_values(self) -> tuple[FloatArray, FloatArray]:
        """``(A^k)_{00}`` and ``G_k[0, 0]`` per row at every step count of :func:`_grid`, shape ``(rows, len(grid))``.

        ``k = 2^m`` reads the powers directly; ``k = 3 * 2^(m-1) = 2^m + 2^(m-1)``
        combines two of them with one vector product each.
        """
        rows = self.powers[0].shape[0]
        grid = _grid(len(self.powers) - 1)
        a00 = np.empty((rows, grid.size))
        gram = np.empty((rows, grid.size))
        with np.errstate(over="ignore", invalid="ignore"):
            for i, k in enumerate(grid):
                k = int(k)
                if k == 0:
                    a00[:, i], gram[:, i] = 1.0, 0.0
                    continue
                m = k.bit_length() - 1
                if k == 1 << m:
                    a00[:, i] = self.powers[m][:, 0, 0]
                    gram[:, i] = self.grams[m][:, 0, 0]
                    continue
                r = self.powers[m][:, 0, :]  # k = 2^m + 2^(m-1)
                gram[:, i] = self.grams[m][:, 0, 0] + np.einsum("ri,rij,rj->r", r, self.grams[m - 1], r)
                a00[:, i] = np.einsum("ri,ri->r", r, self.powers[m - 1][:, :, 0])
        return a00, gram


def _grid(levels: int = LEVELS) -> NDArray[np.int64]:
    """Step counts ``2^m`` and ``3 * 2^(m-1)`` (ratio at most 1.5), with 0, up to ``2^levels``."""
    out = {0, 1}
    for m in range(1, levels + 1):
        out.add(1 << m)
        out.add(3 << (m - 1))
    return np.array(sorted(out), dtype=np.int64)


def _rows(model: Any, lr: float, nqm: NoisyQuadraticSpectrum, batch: float | None, preconditioning: float) -> Any:
    """The LTI loop matrices ``(A, b)`` of every coordinate (normalised models frozen at ``v = c / B``)."""
    from .noisy_quadratic import transition_matrices

    gain = nqm.curvatures ** (-float(preconditioning)) if preconditioning else None
    options: dict[str, Any] = {}
    if model.normaliser is not None:
        if batch is None:
            raise InvalidHyperparameterError("a normalised model needs the batch size (v = c / B)")
        options["second_moment"] = nqm.noise / float(batch)
    mats = transition_matrices(model, None, lr=lr, curvatures=nqm.curvatures, preconditioner=gain, **options)
    n = mats.shape[1]
    return mats[:, :, :n], mats[:, :, n]


def _loss_at(doubling: _Doubling, k: int, nqm: NoisyQuadraticSpectrum, batch: ArrayLike) -> FloatArray:
    """Exact ``E[L_k]`` for each batch size (one loop per coordinate, rows = coordinates)."""
    a00, gram = doubling.at(int(k))
    half = 0.5 * nqm.weights * nqm.curvatures
    t = float(np.sum(half * nqm.init_var * a00 * a00))
    n = float(np.sum(half * nqm.noise * gram))
    return np.asarray(t + n / np.asarray(batch, dtype=np.float64), dtype=np.float64)


def expected_loss(
    model: ModelLike,
    steps: ArrayLike,
    *,
    lr: float,
    batch_size: float,
    nqm: NoisyQuadraticSpectrum | None = None,
    preconditioning: float = 0.0,
    **hyperparameters: Any,
) -> FloatArray:
    """The exact expected loss of the NQM after ``k`` steps at batch size ``B`` (the LTI limit of the optimizer).

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        The optimizer: a catalogue name, a model or a gradient filter (see :func:`optfilters.as_model`).
    steps : array_like of int
        Step counts ``k >= 0``.
    lr : float
        Learning rate.
    batch_size : float
        ``B``: gradient noise variance ``c_i / B``.
    nqm : NoisyQuadraticSpectrum, optional
        Default: :meth:`NoisyQuadraticSpectrum.zhang2019`.
    preconditioning : float
        ``p`` of the preconditioner ``H^{-p}``.
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    ndarray, shape (len(steps),)
        ``E[L_k]``, the expected loss after each step count.

    Raises
    ------
    InvalidHyperparameterError
        If a step count is negative.

    Examples
    --------
    >>> from optfilters.batch_size import NoisyQuadraticSpectrum, expected_loss
    >>> nqm = NoisyQuadraticSpectrum([1.0], [1.0], init_var=1.0)
    >>> expected_loss("sgd", [0, 1, 2], lr=0.5, batch_size=4.0, nqm=nqm).round(6).tolist()
    [0.5, 0.15625, 0.070312]
    """
    m = as_model(model, **hyperparameters)
    nqm = NoisyQuadraticSpectrum.zhang2019() if nqm is None else nqm
    ks = np.atleast_1d(np.asarray(steps))
    if np.any(ks < 0):
        raise InvalidHyperparameterError("steps must be >= 0")
    a, b = _rows(m, float(lr), nqm, float(batch_size), preconditioning)
    doubling = _Doubling(a, b, max(int(ks.max()).bit_length(), 1))
    return np.array([float(_loss_at(doubling, int(k), nqm, float(batch_size))) for k in ks])


def _first_crossing(
    doubling: _Doubling, nqm: NoisyQuadraticSpectrum, batch: float, target: float, lo: int, hi: int
) -> int:
    """The smallest ``k`` in ``(lo, hi]`` with ``E[L_k] <= target``, given ``E[L_lo] > target >= E[L_hi]``.

    Binary lifting from ``lo``: try to advance by ``2^m`` for ``m`` from high to
    low, keeping the step while the loss is still above the target (a
    bisection that reuses the state, two vector products per trial).
    """
    half = 0.5 * nqm.weights * nqm.curvatures
    r, gram = doubling.state(lo)
    k = lo
    for m in range(max(hi - lo, 1).bit_length(), -1, -1):
        if k + (1 << m) >= hi:
            continue
        r2, gram2 = doubling.advance(r, gram, m)
        loss = float(np.sum(half * (nqm.init_var * r2[:, 0] ** 2 + nqm.noise * gram2 / batch)))
        if loss > target:
            r, gram, k = r2, gram2, k + (1 << m)
    return k + 1


def steps_to_target(
    model: ModelLike,
    batch_sizes: ArrayLike,
    *,
    lr: float,
    target: float,
    nqm: NoisyQuadraticSpectrum | None = None,
    preconditioning: float = 0.0,
    **hyperparameters: Any,
) -> FloatArray:
    """The first step count at which the expected loss is at or below ``target``, for each batch size.

    A step count on the doubling grid (``2^m``, ``3 * 2^(m-1)``) brackets the
    first crossing, and bisection on exact sums finds it (the loss may
    oscillate for momentum, so "first" means first on the grid bracket).
    ``inf`` when the loop diverges or the target is below the noise floor.

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        The optimizer (its LTI limit; normalised ones linearised at ``v = c / B``).
    batch_sizes : array_like, shape (n,)
        Batch sizes ``B`` (gradient noise variance ``c_i / B``).
    lr : float
        Learning rate.
    target : float
        The expected loss to reach.
    nqm : NoisyQuadraticSpectrum, optional
        Default: :meth:`NoisyQuadraticSpectrum.zhang2019`.
    preconditioning : float
        ``p`` of the preconditioner ``H^{-p}``.
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    ndarray, shape (n,)
        Steps per batch size (integers as floats; inf when unreachable).

    Examples
    --------
    >>> from optfilters.batch_size import NoisyQuadraticSpectrum, steps_to_target
    >>> nqm = NoisyQuadraticSpectrum([1.0], [1.0])
    >>> steps_to_target("sgd", [1.0, 100.0], lr=0.1, target=0.01, nqm=nqm).tolist()   # floor 0.026 at B = 1
    [inf, 19.0]
    """
    m = as_model(model, **hyperparameters)
    nqm = NoisyQuadraticSpectrum.zhang2019() if nqm is None else nqm
    batches = np.atleast_1d(np.asarray(batch_sizes, dtype=np.float64))
    out = np.full(batches.size, math.inf)
    grid = _grid()
    cached: _Doubling | None = None
    half = 0.5 * nqm.weights * nqm.curvatures
    for j, batch in enumerate(batches):
        if cached is None or m.normaliser is not None:
            a, b = _rows(m, float(lr), nqm, float(batch), preconditioning)
            if np.max(saturating_spectral_radius(a)) >= 1.0:
                continue
            cached = _Doubling(a, b)
            a00, gram = cached.grid_values()
            t_values = (half * nqm.init_var) @ (a00 * a00)
            n_values = (half * nqm.noise) @ gram
        with np.errstate(invalid="ignore"):
            below = np.flatnonzero(t_values + n_values / batch <= target)
        if below.size == 0:
            continue
        i = int(below[0])
        out[j] = 0 if i == 0 else _first_crossing(cached, nqm, batch, target, int(grid[i - 1]), int(grid[i]))
    return out


# ----------------------------------------------------------------------------- the search


def _grid_losses(
    model: Any, lrs: FloatArray, nqm: NoisyQuadraticSpectrum, batch: float | None, preconditioning: float
) -> tuple[FloatArray, FloatArray, NDArray[np.bool_]]:
    """For each lr: ``T_k`` and ``N_k`` (loss = T + N / B) on the doubling grid, and which loops are stable."""
    from .noisy_quadratic import transition_matrices

    d = nqm.curvatures.size
    gain = nqm.curvatures ** (-float(preconditioning)) if preconditioning else None
    options: dict[str, Any] = {}
    if model.normaliser is not None:
        options["second_moment"] = nqm.noise / float(batch)  # type: ignore[arg-type]
    blocks = [
        transition_matrices(model, None, lr=float(lr), curvatures=nqm.curvatures, preconditioner=gain, **options)
        for lr in lrs
    ]
    mats = np.concatenate(blocks)
    n = mats.shape[1]
    a, b = mats[:, :, :n], mats[:, :, n]
    radius = np.asarray(saturating_spectral_radius(a)).reshape(lrs.size, d)
    stable = np.all(radius < 1.0, axis=1)
    a00, gram = _Doubling(a, b).grid_values()
    half = 0.5 * nqm.weights * nqm.curvatures
    with np.errstate(over="ignore", invalid="ignore"):
        t_values = np.einsum("ldg,d->lg", (a00 * a00).reshape(lrs.size, d, -1), half * nqm.init_var)
        n_values = np.einsum("ldg,d->lg", gram.reshape(lrs.size, d, -1), half * nqm.noise)
    return t_values, n_values, stable


def _interpolated_steps(t_values: FloatArray, n_values: FloatArray, batch: float, target: float) -> FloatArray:
    """First grid crossing of ``T + N / B <= target`` per row, log-linearly interpolated (inf if none)."""
    grid = _grid().astype(np.float64)
    loss = t_values + n_values / batch
    with np.errstate(invalid="ignore", divide="ignore"):
        below = np.where(np.isfinite(loss), loss <= target, False)
        hit = np.argmax(below, axis=1)
        found = below[np.arange(loss.shape[0]), hit]
        out = np.full(loss.shape[0], math.inf)
        for r in np.flatnonzero(found):
            i = int(hit[r])
            if i == 0:
                out[r] = 0.0
                continue
            l0, l1 = loss[r, i - 1], loss[r, i]
            k0, k1 = grid[i - 1], grid[i]
            frac = (math.log(l0) - math.log(target)) / (math.log(l0) - math.log(l1)) if l1 > 0 and l0 > l1 else 1.0
            out[r] = k0 + min(max(frac, 0.0), 1.0) * (k1 - k0)
    return out


@dataclass(frozen=True)
class BatchScaling(Plottable):
    """Steps to a target loss against the batch size, the learning rate (and more) tuned per batch size.

    Attributes
    ----------
    name : str
    label : str
        Which optimizer and preconditioning (``"sgd"``, ``"momentum, H^-0.5"``, ...).
    batch_sizes : ndarray
    steps : ndarray
        Exact integer steps to the target at the tuned setting (inf: unreachable).
    lr : ndarray
        The tuned learning rate per batch size.
    effective_lr : ndarray
        ``lr`` times the direction filter's DC gain (``lr / (1 - beta)`` for heavy ball).
    hyperparameters : dict of str to ndarray
        The other tuned hyperparameters per batch size.
    target : float
    critical_batch_size : float
        Where the examples needed (steps times ``B``) reach twice the small-batch value.
    search_steps : ndarray
        The steps the search found on the quantised spectrum (interpolated), for comparison.
    preconditioning : float
        ``p`` of the preconditioner ``H^{-p}``.
    note : str
        Free text on how the result was obtained.

    Examples
    --------
    >>> from optfilters.batch_size import NoisyQuadraticSpectrum, batch_scaling
    >>> nqm = NoisyQuadraticSpectrum.zhang2019(1000)
    >>> r = batch_scaling("sgd", [1, 16, 256, 4096], target=0.05, nqm=nqm, lr_points=24)
    >>> bool((r.steps[:-1] > r.steps[1:]).all()), bool(r.steps[0] * 1 > r.steps[-1] * 4096 / 100)
    (True, True)
    """

    _plot_function = "batch_scaling_plot"

    name: str
    label: str
    batch_sizes: FloatArray
    steps: FloatArray
    lr: FloatArray
    effective_lr: FloatArray
    hyperparameters: Mapping[str, FloatArray]
    target: float
    critical_batch_size: float
    search_steps: FloatArray
    preconditioning: float = 0.0
    note: str = ""

    @property
    def examples(self) -> FloatArray:
        """``steps * B``: examples processed to reach the target."""
        return np.asarray(self.steps * self.batch_sizes, dtype=np.float64)

    def lr_slope(self, upto: float | None = None) -> float:
        """Least-squares slope of ``log lr`` against ``log B`` for ``B <= upto`` (default: half the critical batch).

        1 means the tuned learning rate grows linearly with the batch size.

        Parameters
        ----------
        upto : float, optional
            Largest batch size in the fit (default ``critical_batch_size / 2``).

        Returns
        -------
        float
            The slope (dimensionless); nan with fewer than two finite positive
            learning rates in range.
        """
        top = 0.5 * self.critical_batch_size if upto is None else float(upto)
        sel = (self.batch_sizes <= top) & np.isfinite(self.lr) & (self.lr > 0)
        if np.sum(sel) < 2:
            return math.nan
        return float(np.polyfit(np.log(self.batch_sizes[sel]), np.log(self.lr[sel]), 1)[0])

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data.

        Returns
        -------
        dict
            The fields (arrays as lists, non-finite as None), the examples
            ``steps * B`` and the small-batch :meth:`lr_slope`.
        """
        return {
            "name": self.name,
            "label": self.label,
            "batch_sizes": _list(self.batch_sizes),
            "steps": _list(self.steps),
            "examples": _list(self.examples),
            "lr": _list(self.lr),
            "effective_lr": _list(self.effective_lr),
            "hyperparameters": {k: _list(v) for k, v in self.hyperparameters.items()},
            "target": self.target,
            "critical_batch_size": _finite_or_none(self.critical_batch_size),
            "lr_slope_small_batch": _finite_or_none(self.lr_slope()),
            "search_steps": _list(self.search_steps),
            "preconditioning": self.preconditioning,
            "note": self.note,
        }


def critical_batch_size(batch_sizes: ArrayLike, steps: ArrayLike, factor: float = 2.0) -> float:
    """The batch size at which ``steps * B`` (examples needed) reaches ``factor`` times its small-batch value.

    The reference is the smallest batch size (perfect scaling keeps ``steps *
    B`` constant); log-linear interpolation between the batch sizes around
    the crossing; inf when it is not reached.  For McCandlish et al.'s
    ``S = S_min (1 + B_noise / B)`` the examples ``S B`` double those at
    ``B = 1`` at ``B = 2 + B_noise`` (10 below; the interpolation reads 9.78).

    Parameters
    ----------
    batch_sizes : array_like, shape (n,)
        Increasing batch sizes.
    steps : array_like, shape (n,)
        Steps to the target at each batch size (inf: unreachable).
    factor : float
        Growth of the examples needed that defines the critical batch size.

    Returns
    -------
    float
        The critical batch size (examples per step); inf when never reached,
        nan when the smallest batch size never reaches the target.

    References
    ----------
    S. McCandlish et al., "An empirical model of large-batch training",
    arXiv:1812.06162 (2018).

    Examples
    --------
    >>> from optfilters.batch_size import critical_batch_size
    >>> b = [1, 2, 4, 8, 16, 32]
    >>> round(critical_batch_size(b, [12.5 * (1 + 8 / bb) for bb in b]), 3)   # S_min (1 + B_noise / B)
    9.784
    """
    bs = np.asarray(batch_sizes, dtype=np.float64)
    st = np.asarray(steps, dtype=np.float64)
    examples = bs * st
    base = examples[0]
    if not math.isfinite(base):
        return math.nan
    over = np.flatnonzero(examples >= factor * base)
    if over.size == 0:
        return math.inf
    i = int(over[0])
    if i == 0:
        return float(bs[0])
    e0, e1 = math.log(examples[i - 1]), math.log(examples[i]) if math.isfinite(examples[i]) else math.inf
    if not math.isfinite(e1):
        return float(bs[i])
    frac = (math.log(factor * base) - e0) / (e1 - e0)
    return float(math.exp(math.log(bs[i - 1]) + frac * (math.log(bs[i]) - math.log(bs[i - 1]))))


def _edge_lr(model: Any, nqm: NoisyQuadraticSpectrum, preconditioning: float, batch: float | None) -> float:
    """The largest stable learning rate on the spectrum (its stiffest preconditioned coordinate)."""
    from .closed_loop import normaliser_scale

    edge = closed_loop(model).stability().max_stable_lr_curvature
    if not math.isfinite(edge):
        return 1.0
    scale = nqm.curvatures * (nqm.curvatures ** (-float(preconditioning)) if preconditioning else 1.0)
    if model.normaliser is not None:
        scale = scale * np.asarray(normaliser_scale(model, nqm.noise / float(batch)), dtype=np.float64)  # type: ignore[arg-type]
    return float(edge / np.max(scale))


def batch_scaling(
    model: ModelLike,
    batch_sizes: ArrayLike,
    *,
    target: float = 0.01,
    nqm: NoisyQuadraticSpectrum | None = None,
    tune: Mapping[str, Sequence[float]] | None = None,
    preconditioning: float = 0.0,
    lr_points: int = 48,
    lr_span: float = 1e-6,
    bins: int = 256,
    **hyperparameters: Any,
) -> BatchScaling:
    """Steps to ``target`` against the batch size, each batch size with its own tuned learning rate (and more).

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        Any catalogue entry (normalised ones linearised at ``v = c / B``), model or gradient filter.
    batch_sizes : array_like
        Increasing batch sizes.
    target : float
        The loss to reach (Zhang et al.: 0.01 on their spectrum).
    nqm : NoisyQuadraticSpectrum, optional
        Default: the paper's ``h_i = 1/i``, ``i <= 10^4``, ``c_i = h_i``, ``theta_0 ~ N(0, I)``.
    tune : mapping, optional
        Catalogue hyperparameters searched on a grid besides ``lr``
        (e.g. ``{"momentum": [0, 0.5, 0.9, 0.99]}``).
    preconditioning : float
        ``p`` of the preconditioner ``H^{-p}``.
    lr_points : int
        Learning rates searched: geometric from ``lr_span`` times the stability edge to just below it.
    lr_span : float
        The smallest learning rate as a fraction of the edge.
    bins : int
        Bins of the quantised spectrum used by the search.
    **hyperparameters
        Fixed catalogue hyperparameters.

    Returns
    -------
    BatchScaling

    Raises
    ------
    InvalidHyperparameterError
        If ``batch_sizes`` is not positive and increasing, ``target`` is not
        finite and > 0, or ``lr_points < 2``.

    Notes
    -----
    For each hyperparameter setting and learning rate the exact sums on the
    quantised spectrum give ``T_k`` and ``N_k`` on the doubling grid; each batch
    size picks the setting whose interpolated first crossing of
    ``T_k + N_k / B <= target`` comes first.  Its steps are then recomputed with
    the exact sums over every coordinate (``steps``; ``search_steps`` keeps the
    search's estimate).
    """
    nqm = NoisyQuadraticSpectrum.zhang2019() if nqm is None else nqm
    batches = np.atleast_1d(np.asarray(batch_sizes, dtype=np.float64))
    if batches.size == 0 or np.any(batches <= 0) or np.any(np.diff(batches) <= 0):
        raise InvalidHyperparameterError("batch_sizes must be positive and increasing")
    if not (math.isfinite(target) and target > 0):
        raise InvalidHyperparameterError(f"target must be finite and > 0, got {target!r}")
    if int(lr_points) < 2:
        raise InvalidHyperparameterError(f"lr_points must be >= 2, got {lr_points}")
    base = as_model(model, **hyperparameters)
    tune = dict(tune or {})
    names = list(tune)
    grids = [np.asarray(list(tune[k]), dtype=np.float64) for k in names]
    settings = [dict(zip(names, values, strict=True)) for values in _product(grids)] if names else [{}]
    coarse = nqm.quantised(bins)
    fractions = np.geomspace(float(lr_span), 0.999, int(lr_points))
    normalised = base.normaliser is not None
    best = np.full(batches.size, math.inf)
    best_setting: list[tuple[dict[str, float], float] | None] = [None] * batches.size
    for setting in settings:
        m = as_model(base, **setting) if setting else base
        groups = [(None, batches)] if not normalised else [(float(bb), np.array([bb])) for bb in batches]
        for batch, members in groups:
            lrs = _edge_lr(m, coarse, preconditioning, batch) * fractions
            t_values, n_values, stable = _grid_losses(m, lrs, coarse, batch, preconditioning)
            for bb in members:
                j = int(np.flatnonzero(batches == bb)[0])
                est = _interpolated_steps(t_values, n_values, float(bb), target)
                est = np.where(stable, est, math.inf)
                i = int(np.argmin(est))
                if est[i] < best[j]:
                    best[j] = float(est[i])
                    best_setting[j] = (setting, float(lrs[i]))
    steps = np.full(batches.size, math.inf)
    lr_out = np.full(batches.size, math.nan)
    tuned: dict[str, FloatArray] = {k: np.full(batches.size, math.nan) for k in names}
    effective = np.full(batches.size, math.nan)
    for j, chosen in enumerate(best_setting):
        if chosen is None:
            continue
        setting, lr = chosen
        m = as_model(base, **setting) if setting else base
        steps[j] = steps_to_target(m, [batches[j]], lr=lr, target=target, nqm=nqm, preconditioning=preconditioning)[0]
        lr_out[j] = lr
        for k in names:
            tuned[k][j] = setting[k]
        effective[j] = lr * closed_loop(m).filter.dc_gain
    parts = [base.name] + [f"tuned {k}" for k in names]
    if preconditioning:
        parts.append(f"H^-{preconditioning:g}")
    note = "linearised: normaliser frozen at v = c/B" if normalised else ""
    return BatchScaling(
        name=base.name,
        label=", ".join(parts),
        batch_sizes=batches,
        steps=steps,
        lr=lr_out,
        effective_lr=effective,
        hyperparameters=tuned,
        target=float(target),
        critical_batch_size=critical_batch_size(batches, steps),
        search_steps=best,
        preconditioning=float(preconditioning),
        note=note,
    )


def _product(grids: Sequence[FloatArray]) -> list[tuple[float, ...]]:
    import itertools

    return [tuple(float(v) for v in combo) for combo in itertools.product(*grids)]


# ----------------------------------------------------------------------------- scaling rules

#: Catalogue hyperparameters that are poles (EMA coefficients) of an optimizer's filters (a live view of
#: ``CatalogueEntry.poles``; the catalogue owns the fact).
POLE_HYPERPARAMETERS: Mapping[str, tuple[str, ...]] = CatalogueFacts("poles")


def scaling_rule(model: ModelLike, kappa: float, rule: str = "filter", **hyperparameters: Any) -> Any:
    """Hyperparameters for a batch ``kappa`` times larger that keep the closed loop per example seen.

    One step at batch ``kappa B`` stands for ``kappa`` steps at ``B``.  Rules:

    * ``"linear"``: ``lr -> kappa lr`` (Goyal et al. 2017): the drift ``lr h
      theta`` and the diffusion ``lr^2 c / B`` per example stay the same to
      first order in ``lr h``; poles unchanged.
    * ``"sqrt"``: ``lr -> sqrt(kappa) lr`` (Adam-like optimizers: Malladi et al.
      2022): the normaliser divides by ``sqrt(v)`` with ``v ~ c / B``, so it
      already contributes ``sqrt(kappa)``.
    * ``"filter"`` (derived from the filter): every pole ``p`` of the
      optimizer's filters becomes ``p^kappa`` (the EMA scaling rule: a memory
      of ``1 / (1 - p)`` steps is the same number of examples), and ``lr`` is
      set so that the loop gain per example is kept: ``lr' H'(1) = kappa lr
      H(1)`` for linear optimizers (``sqrt(kappa)`` for normalised ones), e.g.
      heavy ball ``lr' = kappa lr (1 - beta^kappa) / (1 - beta)``.  Digital
      filter designs keep their cutoff in cycles per example
      (``cutoff -> kappa cutoff``).

    Parameters
    ----------
    model : str or OptimizerModel
        A catalogue optimizer.
    kappa : float
        Batch-size ratio (> 0).
    rule : {"filter", "linear", "sqrt"}
    **hyperparameters
        Catalogue hyperparameters of the starting point.

    Returns
    -------
    OptimizerModel

    Raises
    ------
    InvalidHyperparameterError
        If ``model`` is not a catalogue optimizer, ``kappa`` is not finite and
        > 0, or ``rule`` is not one of the three.

    Examples
    --------
    >>> from optfilters.batch_size import scaling_rule
    >>> m = scaling_rule("momentum", 4, lr=0.01, momentum=0.9)
    >>> round(m.hyperparameters["momentum"], 4), round(m.lr, 6)      # 0.9^4, 4 lr (1 - 0.9^4) / 0.1
    (0.6561, 0.13756)
    >>> round(scaling_rule("adam", 4, lr=1e-3).hyperparameters["beta2"], 6)
    0.996006
    """
    m = as_model(model, **hyperparameters)
    if m.name not in CATALOGUE:
        raise InvalidHyperparameterError("scaling rules need a catalogue optimizer (its hyperparameters are rescaled)")
    k = float(kappa)
    if not (math.isfinite(k) and k > 0):
        raise InvalidHyperparameterError(f"kappa must be finite and > 0, got {kappa!r}")
    hp = dict(m.hyperparameters)
    normalised = m.normaliser is not None
    if rule == "linear":
        hp["lr"] = k * m.lr
        return get(m.name, **hp)
    if rule == "sqrt":
        hp["lr"] = math.sqrt(k) * m.lr
        return get(m.name, **hp)
    if rule != "filter":
        raise InvalidHyperparameterError(f"rule must be 'filter', 'linear' or 'sqrt', got {rule!r}")
    for name in POLE_HYPERPARAMETERS.get(m.name, ()):
        value = hp.get(name)
        if isinstance(value, tuple):
            hp[name] = tuple(float(v) ** k for v in value)
        elif value is not None:
            hp[name] = float(value) ** k
    if "cutoff" in hp:
        hp["cutoff"] = min(float(hp["cutoff"]) * k, 0.499)
    before = closed_loop(m).filter.dc_gain
    scaled = get(m.name, **hp)
    after = closed_loop(scaled).filter.dc_gain
    gain = math.sqrt(k) if normalised else k
    hp["lr"] = m.lr * gain * before / after if math.isfinite(before) and math.isfinite(after) and after else gain * m.lr
    return get(m.name, **hp)


@dataclass(frozen=True)
class ScalingRuleCheck:
    """A scaling rule checked on the exact NQM prediction: loss against examples seen, at ``B`` and ``kappa B``.

    Attributes
    ----------
    name, rule : str
    kappa : float
    batch_size : float
        The base batch size ``B``.
    examples : ndarray
        Examples seen (``k kappa B``) at the compared points.
    base_loss, scaled_loss : ndarray
        Expected loss at those points: ``kappa k`` steps at ``B``, ``k`` steps at ``kappa B``.
    max_relative_difference : float
        Over the compared points.
    base, scaled : dict
        The hyperparameters of both runs.

    Examples
    --------
    >>> from optfilters.batch_size import NoisyQuadraticSpectrum, check_scaling_rule
    >>> nqm = NoisyQuadraticSpectrum.zhang2019(100)
    >>> c = check_scaling_rule("sgd", 4, rule="linear", batch_size=4, steps=400, nqm=nqm, lr=0.005)
    >>> c.max_relative_difference < 0.05
    True
    """

    name: str
    rule: str
    kappa: float
    batch_size: float
    examples: FloatArray
    base_loss: FloatArray
    scaled_loss: FloatArray
    base: Mapping[str, Any]
    scaled: Mapping[str, Any]

    @property
    def max_relative_difference(self) -> float:
        """``max |scaled - base| / base`` over the compared points."""
        return float(np.max(np.abs(self.scaled_loss - self.base_loss) / self.base_loss))

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data.

        Returns
        -------
        dict
            The fields (arrays as lists; boolean hyperparameters left out) and
            :attr:`max_relative_difference`.
        """
        return {
            "name": self.name,
            "rule": self.rule,
            "kappa": self.kappa,
            "batch_size": self.batch_size,
            "max_relative_difference": _finite_or_none(self.max_relative_difference),
            "examples": _list(self.examples),
            "base_loss": _list(self.base_loss),
            "scaled_loss": _list(self.scaled_loss),
            "base": {k: v for k, v in self.base.items() if not isinstance(v, bool)},
            "scaled": {k: v for k, v in self.scaled.items() if not isinstance(v, bool)},
        }


def check_scaling_rule(
    model: ModelLike,
    kappa: int,
    *,
    rule: str = "filter",
    batch_size: float = 1.0,
    steps: int = 1000,
    nqm: NoisyQuadraticSpectrum | None = None,
    **hyperparameters: Any,
) -> ScalingRuleCheck:
    """Check a scaling rule with :func:`optfilters.noisy_quadratic.predict`: same loss per example seen?

    Runs ``steps`` steps at batch ``B`` and ``steps / kappa`` steps at ``kappa
    B`` with the rule's hyperparameters, both from ``theta_0 ~ N(0, init_var)``
    (the exact mean and covariance recursion, bias corrections and first-step
    quirks included; normalised models tracking their second moment), and
    compares the expected losses after the same number of examples.

    Parameters
    ----------
    model : str or OptimizerModel
        A catalogue optimizer (see :func:`scaling_rule`).
    kappa : int
        Batch-size ratio (an integer >= 1).
    rule : {"filter", "linear", "sqrt"}
        The scaling rule (:func:`scaling_rule`).
    batch_size : float
        The base batch size ``B``.
    steps : int
        Steps at ``B`` (>= ``kappa``; rounded down to a multiple of ``kappa``).
    nqm : NoisyQuadraticSpectrum, optional
        Default: :meth:`NoisyQuadraticSpectrum.zhang2019` with 100 coordinates.
    **hyperparameters
        Catalogue hyperparameters of the base run.

    Returns
    -------
    ScalingRuleCheck

    Raises
    ------
    InvalidHyperparameterError
        If ``kappa`` is not an integer >= 1 or ``steps < kappa``.

    Examples
    --------
    >>> from optfilters.batch_size import NoisyQuadraticSpectrum, check_scaling_rule
    >>> nqm = NoisyQuadraticSpectrum.zhang2019(100)
    >>> good = check_scaling_rule("momentum", 4, batch_size=4, steps=800, nqm=nqm, lr=0.002, momentum=0.9)
    >>> bad = check_scaling_rule("momentum", 4, rule="linear", batch_size=4, steps=800, nqm=nqm, lr=0.002,
    ...                          momentum=0.9)
    >>> good.max_relative_difference < bad.max_relative_difference
    True
    """
    from .noisy_quadratic import predict

    k = int(kappa)
    if k < 1 or k != kappa:
        raise InvalidHyperparameterError(f"kappa must be an integer >= 1, got {kappa!r}")
    n = int(steps)
    if n < k:
        raise InvalidHyperparameterError(f"steps must be >= kappa, got {steps}")
    nqm = NoisyQuadraticSpectrum.zhang2019(100) if nqm is None else nqm
    m = as_model(model, **hyperparameters)
    scaled = scaling_rule(m, k, rule)
    h, c = nqm.curvatures, nqm.noise
    common: dict[str, Any] = {"curvatures": h, "init": 0.0, "init_var": nqm.init_var}
    base_run = predict(m, noise_var=c / float(batch_size), steps=n - n % k, **common)
    scaled_run = predict(scaled, noise_var=c / (k * float(batch_size)), steps=(n - n % k) // k, **common)
    w = nqm.weights
    base_loss = 0.5 * (base_run.mean**2 + base_run.variance) @ (w * h)
    scaled_loss = 0.5 * (scaled_run.mean**2 + scaled_run.variance) @ (w * h)
    idx = np.arange(1, scaled_loss.size)
    return ScalingRuleCheck(
        name=m.name,
        rule=rule,
        kappa=float(k),
        batch_size=float(batch_size),
        examples=np.asarray(idx * k * float(batch_size), dtype=np.float64),
        base_loss=np.asarray(base_loss[idx * k], dtype=np.float64),
        scaled_loss=np.asarray(scaled_loss[idx], dtype=np.float64),
        base=dict(m.hyperparameters),
        scaled=dict(scaled.hyperparameters),
    )
