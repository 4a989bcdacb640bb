"""A real network on real data, trained through the PyTorch bridge and observed as a filter.

The network is a small MLP on scikit-learn's handwritten digits
(:func:`sklearn.datasets.load_digits`: 1797 images of 8 x 8 pixels, shipped
with scikit-learn, nothing downloaded), described by :class:`DigitsMLP` and
trained with :class:`optfilters.torch.FilterOptimizer` by
:func:`observe_network`.  Two things are observed along training:

* **The empirical transfer function** from gradient to update.  Each step's
  gradient and parameter change are recorded on a seeded random sample of
  coordinates (:class:`CoordinateRecorder`, off by default: with
  ``record_coordinates=0`` nothing is allocated and the training loop does no
  extra work), and :func:`empirical_response` estimates ``H = S_gu / S_gg``
  (Welch cross-spectral over power spectral density, averaged over the
  coordinates) with its coherence, next to the model's predicted ``|H|``.
* **The sharpness**, the top eigenvalue of the Hessian of the full training
  loss, by Hessian-vector products (double backward) and Lanczos
  (:func:`top_eigenvalue`), every ``sharpness_every`` steps; for normalised
  optimizers (Adam, RMSprop, ...) the *preconditioned* sharpness
  ``lambda_max(P H) = lambda_max(D^-1 H)`` with ``P = D^-1`` the preconditioner
  and ``D`` the optimizer's current denominator (``diag(sqrt(v_hat)) + eps``
  for Adam, bias correction folded in, torch.optim.Adam's ``denom``; see
  :func:`adaptive_denominator`).  Cohen et al. (2022), "Adaptive gradient
  methods at the edge of stability", write that denominator as ``P`` and the
  sharpness as ``lambda_max(P^-1 H)``: the same number.  It is compared with the predicted
  edge-of-stability threshold (:func:`sharpness_threshold`): the closed loop's
  largest stable ``lr * h`` divided by ``lr`` (``2 / lr`` for gradient descent,
  ``(2 + 2 mu) / lr`` for heavy-ball momentum, ``(2 + 2 beta1) / ((1 - beta1)
  lr)`` for Adam's preconditioned sharpness).

Conventions
-----------
``theta_t = theta_{t-1} - lr * u_t``: the recorded *direction* is ``u_t =
-(theta_t - theta_{t-1}) / lr`` (with decoupled weight decay's
``-lr * wd * theta_{t-1}`` removed), and the recorded gradient is the
*effective* gradient of :mod:`optfilters.model` (negated for ``maximize``,
plus ``wd * theta_{t-1}`` for coupled weight decay).  So the empirical ``|H|``
is per unit learning rate, in the units of :meth:`OptimizerModel.direction_filter`
(momentum 0.9 has DC gain 10); the parameter change itself is ``-lr`` times it.

Cost of recording
-----------------
Off (the default), the training loop only tests ``recorder is not None``.
On, each step does one ``index_select`` per parameter tensor into a row of
preallocated ``(steps, coordinates)`` buffers for the gradient and one for the
parameters (one more per state entry for normalised optimizers): measured
26-59 us per step for 64-1024 coordinates of the 6-tensor default network
(one thread, median of interleaved runs), which is +13-20% of a 0.4-0.5 ms
mini-batch step (batch 32) and 0-10% of a 3 ms full-batch step.

torch (and scikit-learn, SciPy) are imported inside the functions only, so
``import optfilters.network`` is cheap.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .catalogue import ModelLike, as_model
from .display import Plottable
from .errors import InvalidFilterError, InvalidHyperparameterError, deprecated_alias, renamed_keywords
from .filters import ArmaFilter, cascade
from .model import OptimizerModel
from .program import NumpyOps
from .validation import finite_list as _list
from .validation import finite_or_none as _finite_or_none

__all__ = [
    "NETWORKS",
    "CoordinateRecorder",
    "DigitsMLP",
    "EigenResult",
    "EmpiricalResponse",
    "NetworkObservation",
    "NetworkProblem",
    "SharpnessTrace",
    "adaptive_denominator",
    "adaptive_preconditioner",
    "empirical_response",
    "observe_network",
    "sharpness_threshold",
    "top_eigenvalue",
]

FloatArray = NDArray[np.float64]

#: Training stops as diverged when the loss exceeds this factor times its initial value (or is not finite).
DIVERGENCE_FACTOR = 1e6

_ACTIVATIONS = ("tanh", "relu", "elu", "gelu", "silu")
_LOSSES = ("mse", "cross_entropy")
_DIGITS_TOTAL = 1797


def _int_option(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return value


def _positive_float(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number > 0, got {value!r}") from None
    if not (math.isfinite(number) and number > 0.0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return number


# ----------------------------------------------------------------------------- the network


@dataclass(frozen=True)
class DigitsMLP:
    """An MLP on scikit-learn's digits: the real network of :func:`observe_network`.

    The 1797 images are split once (a fixed permutation, the same for every
    seed) into ``samples`` training examples and a test set of the rest; the
    64 pixel features are standardised with the training set's mean and
    standard deviation (constant pixels are only centred).  ``seed`` (given to
    :meth:`build`) sets the initialisation (torch's default for
    ``torch.nn.Linear``) and the mini-batch order.

    Parameters
    ----------
    hidden : tuple of int
        Hidden layer widths (``(64, 64)``: 64-64-64-10, 8970 parameters).
    activation : {"tanh", "relu", "elu", "gelu", "silu"}
        Hidden nonlinearity.
    loss : {"mse", "cross_entropy"}
        ``"mse"`` is the squared loss against one-hot targets,
        ``1/2 mean_n sum_k (f_k(x_n) - y_nk)^2`` (Cohen et al. 2021's
        ``SquaredLoss`` divided by the number of examples); the default,
        because with cross-entropy the sharpness falls as the margins grow
        (measured here: full-batch GD at lr 2 and 4 drives the loss to 1e-4 in
        3000 steps and ends at 0.6% and 0.4% of ``2 / lr``), which hides the
        edge of stability.
    samples : int
        Training examples (10 to 1797); the rest are the test set.
    batch_size : int or None
        None: full batch (every step uses the whole training set, the edge
        of stability's setting); else mini-batches without replacement,
        reshuffled every epoch, the last incomplete batch dropped.
    dtype : {"float64", "float32"}
        Parameter and data precision.

    Examples
    --------
    >>> from optfilters.network import DigitsMLP
    >>> spec = DigitsMLP(hidden=(16,), samples=200)
    >>> problem = spec.build(seed=0)
    >>> problem.parameter_count, tuple(problem.inputs.shape), tuple(problem.test_inputs.shape)
    (1210, (200, 64), (1597, 64))
    >>> DigitsMLP(loss="hinge")
    Traceback (most recent call last):
    ...
    ValueError: loss must be one of mse, cross_entropy, got 'hinge'
    """

    hidden: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    loss: str = "mse"
    samples: int = 1000
    batch_size: int | None = None
    dtype: str = "float64"

    def __post_init__(self) -> None:
        hidden = tuple(self.hidden) if isinstance(self.hidden, (tuple, list)) else (self.hidden,)
        for width in hidden:
            _int_option("hidden width", width, 1)
        object.__setattr__(self, "hidden", tuple(int(w) for w in hidden))
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(_ACTIVATIONS)}, got {self.activation!r}")
        if self.loss not in _LOSSES:
            raise ValueError(f"loss must be one of {', '.join(_LOSSES)}, got {self.loss!r}")
        _int_option("samples", self.samples, 10, _DIGITS_TOTAL)
        if self.batch_size is not None:
            _int_option("batch_size", self.batch_size, 1, int(self.samples))
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be one of float64, float32, got {self.dtype!r}")

    @property
    def full_batch(self) -> bool:
        """True when every step sees the whole training set."""
        return self.batch_size is None or self.batch_size == self.samples

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON-able).

        Returns
        -------
        dict
            The fields (``hidden`` as a list) and ``"name": "digits-mlp"``.
        """
        out = asdict(self)
        out["hidden"] = list(self.hidden)
        out["name"] = "digits-mlp"
        return out

    def build(self, seed: int = 0) -> NetworkProblem:
        """The data tensors and a freshly initialised network (seeded; the global RNG is left untouched).

        Parameters
        ----------
        seed : int
            Seed (>= 0) of the layers' initialisation (torch's default for
            ``torch.nn.Linear``, under :func:`torch.random.fork_rng`); the
            train/test split is fixed (seed 0) whatever ``seed`` is.

        Returns
        -------
        NetworkProblem
            The module, the standardised training inputs ``(samples, 64)``
            and targets (one-hot ``(samples, 10)`` for ``"mse"``, labels
            ``(samples,)`` for ``"cross_entropy"``), and the test set.

        Raises
        ------
        ValueError
            If ``seed`` is not an integer >= 0.
        """
        import torch
        from sklearn.datasets import load_digits

        seed = _int_option("seed", seed, 0)
        dtype = torch.float64 if self.dtype == "float64" else torch.float32
        digits = load_digits()
        order = np.random.default_rng(0).permutation(len(digits.target))
        train, test = order[: self.samples], order[self.samples :]
        features = np.asarray(digits.data, dtype=np.float64)
        mean = features[train].mean(axis=0)
        std = features[train].std(axis=0)
        std = np.where(std > 0.0, std, 1.0)
        features = (features - mean) / std
        labels = np.asarray(digits.target, dtype=np.int64)

        def targets(index: NDArray[np.int64]) -> Any:
            y = torch.as_tensor(labels[index])
            if self.loss == "mse":
                return torch.nn.functional.one_hot(y, 10).to(dtype)
            return y

        activation = {
            "tanh": torch.nn.Tanh,
            "relu": torch.nn.ReLU,
            "elu": torch.nn.ELU,
            "gelu": torch.nn.GELU,
            "silu": torch.nn.SiLU,
        }[self.activation]
        layers: list[Any] = []
        width = 64
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for h in self.hidden:
                layers += [torch.nn.Linear(width, h, dtype=dtype), activation()]
                width = h
            layers.append(torch.nn.Linear(width, 10, dtype=dtype))
        module = torch.nn.Sequential(*layers)
        return NetworkProblem(
            spec=self,
            module=module,
            inputs=torch.as_tensor(features[train], dtype=dtype),
            targets=targets(train),
            test_inputs=torch.as_tensor(features[test], dtype=dtype),
            test_labels=torch.as_tensor(labels[test]),
            train_labels=torch.as_tensor(labels[train]),
            seed=seed,
        )


#: Networks by name for :func:`observe_network` (``network="digits-mlp"``).
NETWORKS: dict[str, type[DigitsMLP]] = {"digits-mlp": DigitsMLP}


@dataclass
class NetworkProblem:
    """A built network with its data (from :meth:`DigitsMLP.build`).

    Attributes
    ----------
    spec : DigitsMLP
    module : torch.nn.Module
    inputs, targets : torch.Tensor
        Training set (one-hot targets for the squared loss, labels for cross-entropy).
    test_inputs, test_labels, train_labels : torch.Tensor
    seed : int

    Examples
    --------
    >>> from optfilters.network import DigitsMLP
    >>> problem = DigitsMLP(hidden=(8,), samples=100, loss="cross_entropy").build(seed=1)
    >>> float(problem.full_loss().detach()) > 0, tuple(problem.targets.shape)
    (True, (100,))
    >>> x, y = next(problem.batches(seed=0))          # full batch: the whole training set
    >>> x.shape[0], 0.0 <= problem.accuracy(test=True) <= 1.0
    (100, True)
    """

    spec: DigitsMLP
    module: Any
    inputs: Any
    targets: Any
    test_inputs: Any
    test_labels: Any
    train_labels: Any
    seed: int

    @property
    def parameters(self) -> list[Any]:
        """The trainable tensors, in ``module.parameters()`` order."""
        return [p for p in self.module.parameters() if p.requires_grad]

    @property
    def parameter_count(self) -> int:
        """Number of trainable scalars."""
        return int(sum(p.numel() for p in self.parameters))

    def loss(self, outputs: Any, targets: Any) -> Any:
        """The training loss of ``outputs`` against ``targets`` (a scalar tensor).

        Parameters
        ----------
        outputs : torch.Tensor, shape (batch, 10)
            Network outputs (logits).
        targets : torch.Tensor
            One-hot targets ``(batch, 10)`` for ``"mse"``, class labels
            ``(batch,)`` for ``"cross_entropy"``.

        Returns
        -------
        torch.Tensor
            0-d: ``1/2 sum (outputs - targets)^2 / batch`` for ``"mse"``, else
            :func:`torch.nn.functional.cross_entropy` (mean over the batch).
        """
        import torch

        if self.spec.loss == "mse":
            return 0.5 * ((outputs - targets) ** 2).sum() / outputs.shape[0]
        return torch.nn.functional.cross_entropy(outputs, targets)

    def full_loss(self) -> Any:
        """The loss on the whole training set (with the autograd graph).

        Returns
        -------
        torch.Tensor
            0-d, :meth:`loss` of the network's outputs on :attr:`inputs`.
        """
        return self.loss(self.module(self.inputs), self.targets)

    def accuracy(self, test: bool = False) -> float:
        """Classification accuracy on the training set (or the test set; nan when it is empty).

        Parameters
        ----------
        test : bool
            Measure on the test set instead of the training set.

        Returns
        -------
        float
            Fraction of examples whose arg-max output is the label, in
            ``[0, 1]`` (nan when the set is empty).
        """
        import torch

        x, y = (self.test_inputs, self.test_labels) if test else (self.inputs, self.train_labels)
        if len(y) == 0:
            return math.nan
        with torch.no_grad():
            return float((self.module(x).argmax(dim=1) == y).to(torch.float64).mean())

    def batches(self, seed: int) -> Iterator[tuple[Any, Any]]:
        """Endless ``(inputs, targets)`` batches: the whole set when full-batch, else seeded epochs.

        Parameters
        ----------
        seed : int
            Seed of the :class:`torch.Generator` that shuffles each epoch
            (unused when full-batch).

        Yields
        ------
        inputs : torch.Tensor, shape (batch_size, 64)
        targets : torch.Tensor
            ``(batch_size, 10)`` one-hot or ``(batch_size,)`` labels; the
            last incomplete batch of an epoch is dropped.
        """
        import torch

        if self.spec.full_batch:
            while True:
                yield self.inputs, self.targets
        size = int(self.spec.batch_size)  # type: ignore[arg-type]
        gen = torch.Generator().manual_seed(seed)
        n = self.inputs.shape[0]
        while True:
            order = torch.randperm(n, generator=gen)
            for start in range(0, n - size + 1, size):
                index = order[start : start + size]
                yield self.inputs[index], self.targets[index]


# ----------------------------------------------------------------------------- Hessian eigenvalues


@dataclass(frozen=True)
class EigenResult:
    """The top eigenvalue of a (preconditioned) Hessian from :func:`top_eigenvalue`.

    Attributes
    ----------
    value : float
        The eigenvalue (largest algebraic for Lanczos/ARPACK, largest in modulus for power iteration).
    vector : ndarray
        Unit eigenvector estimate (flattened over the parameters; in the
        symmetric ``D^-1/2 H D^-1/2`` coordinates when preconditioned).
    matvecs : int
        Hessian-vector products used.
    converged : bool
        Whether the residual criterion was met within the iteration cap.
    residual : float
        ``||A y - value y||`` (relative to ``|value|``).

    Examples
    --------
    >>> import torch
    >>> from optfilters.network import top_eigenvalue
    >>> w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    >>> r = top_eigenvalue(lambda: (torch.tensor([1.0, 5.0, 2.0], dtype=torch.float64) * w**2).sum(), [w])
    >>> round(r.value, 9), r.converged, r.vector.round(6).tolist()
    (10.0, True, [0.0, 1.0, 0.0])
    """

    value: float
    vector: FloatArray
    matvecs: int
    converged: bool
    residual: float


def _flat(tensors: Sequence[Any]) -> Any:
    import torch

    return torch.cat([t.reshape(-1) for t in tensors])


@renamed_keywords("optfilters.network.top_eigenvalue", preconditioner="denominator")
def top_eigenvalue(
    loss_fn: Callable[[], Any],
    params: Sequence[Any],
    *,
    denominator: Sequence[Any] | None = None,
    method: str = "lanczos",
    tol: float = 1e-4,
    max_iterations: int = 100,
    v0: ArrayLike | None = None,
    seed: int = 0,
) -> EigenResult:
    """Top eigenvalue of the Hessian of ``loss_fn()`` in ``params``, from Hessian-vector products.

    The gradient is taken once with ``create_graph=True``; each product
    ``H v`` is one more backward pass through it (double backward).  With a
    ``denominator`` ``D`` (one positive tensor per parameter, the diagonal the
    update divides by), the eigenvalue is the preconditioned one, of
    ``P H = D^-1 H`` with the preconditioner ``P = D^-1``, computed as the
    symmetric ``D^-1/2 H D^-1/2`` (same eigenvalues).  The keyword was called
    ``preconditioner`` (deprecated; same behaviour).

    Parameters
    ----------
    loss_fn : callable
        Returns the scalar loss (a tensor with its autograd graph).
    params : sequence of torch.Tensor
        The tensors to differentiate in (``requires_grad``).
    denominator : sequence of torch.Tensor, optional
        Diagonal of ``D`` (e.g. :func:`adaptive_denominator`), shaped like ``params``.
    method : {"lanczos", "arpack", "power"}
        ``"lanczos"``: Lanczos with full reorthogonalisation until the top
        Ritz pair's residual is below ``tol * |value|`` (largest algebraic
        eigenvalue); ``"arpack"``: :func:`scipy.sparse.linalg.eigsh` with a
        ``LinearOperator`` (``which="LA"``); ``"power"``: power iteration
        (the eigenvalue of largest *modulus*, which is the sharpness only
        when no negative eigenvalue is larger in modulus).
    tol : float
        Relative residual (Lanczos, power) or ARPACK's tolerance.
    max_iterations : int
        Hessian-vector products at most (Lanczos, power); ARPACK's ``maxiter``.
    v0 : array_like, optional
        Starting vector (e.g. the previous eigenvector, a warm start).
    seed : int
        Seed of the random starting vector when ``v0`` is None.

    Returns
    -------
    EigenResult
        The eigenvalue, its eigenvector and the convergence record.

    Raises
    ------
    ValueError
        For an unknown ``method``, a ``tol`` that is not a finite positive
        number, ``max_iterations < 1``, a ``denominator`` not shaped like
        ``params`` or not positive everywhere, or a ``v0`` of the wrong size.

    References
    ----------
    Cohen et al. (2022), "Adaptive gradient methods at the edge of
    stability" (arXiv:2207.14484): the preconditioned sharpness.

    Examples
    --------
    >>> import torch
    >>> from optfilters.network import top_eigenvalue
    >>> w = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    >>> loss = lambda: 0.5 * (3.0 * w[0] ** 2 + 0.5 * w[1] ** 2 + 2.0 * w[0] * w[1])
    >>> round(top_eigenvalue(loss, [w]).value, 9)   # eigenvalues of [[3, 1], [1, 0.5]]
    3.350781059
    >>> D = [torch.tensor([3.0, 0.5], dtype=torch.float64)]
    >>> round(top_eigenvalue(loss, [w], denominator=D).value, 9)   # D^-1 H = [[1, 1/3], [2, 1]]: 1 + sqrt(2/3)
    1.816496581
    """
    import torch

    if method not in ("lanczos", "arpack", "power"):
        raise ValueError(f"method must be one of lanczos, arpack, power, got {method!r}")
    tol = _positive_float("tol", tol)
    max_iterations = _int_option("max_iterations", max_iterations, 1)
    params = list(params)
    n = int(sum(p.numel() for p in params))
    dtype = params[0].dtype
    scale = None
    if denominator is not None:
        pre = list(denominator)
        if len(pre) != len(params) or any(a.shape != p.shape for a, p in zip(pre, params, strict=True)):
            raise ValueError("denominator must have one tensor shaped like each parameter")
        flat_pre = _flat([a.detach() for a in pre]).to(dtype)
        if not bool(torch.all(flat_pre > 0)):
            raise ValueError("denominator must be positive everywhere")
        scale = flat_pre.rsqrt()
    with torch.enable_grad():
        loss = loss_fn()
        grads = torch.autograd.grad(loss, params, create_graph=True)
    flat_grad = _flat(grads)
    count = 0

    def matvec(vector: FloatArray) -> FloatArray:
        nonlocal count
        count += 1
        v = torch.as_tensor(np.ascontiguousarray(vector, dtype=np.float64).ravel(), dtype=dtype)
        if scale is not None:
            v = v * scale
        with torch.enable_grad():
            hv = torch.autograd.grad(flat_grad, params, grad_outputs=v, retain_graph=True)
        out = _flat(hv).detach()
        if scale is not None:
            out = out * scale
        return np.asarray(out.to(torch.float64).numpy(), dtype=np.float64)

    if v0 is None:
        start = np.random.default_rng(seed).standard_normal(n)
    else:
        start = np.asarray(v0, dtype=np.float64).ravel()
        if start.shape != (n,):
            raise ValueError(f"v0 must have {n} entries (one per parameter scalar), got {start.size}")
    start = start / np.linalg.norm(start)
    if method == "arpack":
        from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

        op = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
        try:
            values, vectors = eigsh(op, k=1, which="LA", tol=tol, v0=start, maxiter=max_iterations)
            converged = True
        except ArpackNoConvergence as err:
            if len(err.eigenvalues) == 0:
                raise
            values, vectors, converged = err.eigenvalues, err.eigenvectors, False
        value, vec = float(values[-1]), np.asarray(vectors[:, -1], dtype=np.float64)
        resid = float(np.linalg.norm(matvec(vec) - value * vec)) / max(abs(value), 1e-300)
        count -= 1
        return EigenResult(value, vec, count, converged, resid)
    if method == "power":
        return _power(matvec, start, tol, max_iterations)
    return _lanczos(matvec, start, tol, max_iterations)


def _power(matvec: Callable[[FloatArray], FloatArray], v: FloatArray, tol: float, cap: int) -> EigenResult:
    value, resid = 0.0, math.inf
    for i in range(1, cap + 1):
        w = matvec(v)
        value = float(v @ w)
        resid = float(np.linalg.norm(w - value * v)) / max(abs(value), 1e-300)
        norm = float(np.linalg.norm(w))
        if resid <= tol or norm == 0.0:
            return EigenResult(value, v, i, True, resid)
        v = w / norm
    return EigenResult(value, v, cap, False, resid)


def _lanczos(matvec: Callable[[FloatArray], FloatArray], v: FloatArray, tol: float, cap: int) -> EigenResult:
    from scipy.linalg import eigh_tridiagonal

    n = v.size
    cap = min(cap, n)
    basis = np.empty((cap, n))
    alphas: list[float] = []
    betas: list[float] = []
    basis[0] = v
    value, vec, resid, converged = 0.0, v, math.inf, False
    for j in range(cap):
        w = matvec(basis[j])
        alpha = float(basis[j] @ w)
        alphas.append(alpha)
        w = w - alpha * basis[j]
        if j > 0:
            w = w - betas[-1] * basis[j - 1]
        for _ in range(2):  # full reorthogonalisation, twice is enough
            w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        beta = float(np.linalg.norm(w))
        if j == 0:
            thetas, s = np.array([alpha]), np.array([[1.0]])
        else:
            thetas, s = eigh_tridiagonal(np.array(alphas), np.array(betas))
        value = float(thetas[-1])
        top = s[:, -1]
        resid = beta * abs(float(top[-1])) / max(abs(value), 1e-300)
        vec = basis[: j + 1].T @ top
        if resid <= tol or beta <= 1e-12 * max(abs(value), 1e-300) or j + 1 == cap:
            converged = resid <= tol or beta <= 1e-12 * max(abs(value), 1e-300)
            return EigenResult(value, vec / np.linalg.norm(vec), j + 1, converged, resid)
        betas.append(beta)
        basis[j + 1] = w / beta
    return EigenResult(value, vec, cap, converged, resid)  # pragma: no cover (cap >= 1 returns above)


# ----------------------------------------------------------------------------- normaliser state


class _NormaliserReader:
    """Reads a normalised optimizer's denominator ``D`` from the bridge's state (each stage kind says how)."""

    def __init__(self, model: OptimizerModel) -> None:
        self.model = model
        norm = model.normaliser
        if norm is None:
            raise ValueError(
                f"preconditioned sharpness and frozen gains need an RMS or peak normaliser; {model.name} has none"
            )
        self.keys, self._denominator = norm.normaliser_denominator(model.name)

    def denominator(self, values: Sequence[Any], t: int, ops: Any = NumpyOps) -> Any:
        """``D`` at step ``t`` (1-based) from the state values (numpy arrays, or tensors with the bridge's ``ops``)."""
        return self._denominator(values, t, ops)


def adaptive_denominator(optimizer: Any, group: int = 0) -> list[Any]:
    """The diagonal ``D`` of a normalised :class:`~optfilters.torch.FilterOptimizer`'s current step, per parameter.

    ``D`` is what the update divides the filtered gradient by (torch.optim.Adam's
    ``denom``; the preconditioner is ``P = 1 / D``): for Adam
    ``sqrt(v_hat) + eps`` with the bias correction ``1 - beta2^t`` folded in,
    for AMSGrad the running maximum, for RMSprop ``sqrt(v) + eps`` (centred:
    ``sqrt(v - m^2) + eps``), for RAdam divided by the rectification (1 before
    it is active), for Adamax the peak ``u``.  The preconditioned sharpness is
    ``lambda_max(D^-1 H)``.  Read after at least one step.  Formerly
    ``adaptive_preconditioner`` (a deprecated alias; same behaviour).

    Parameters
    ----------
    optimizer : optfilters.torch.FilterOptimizer
        A normalised optimizer (Adam, RMSprop, ...) after at least one step.
    group : int
        Parameter group.

    Returns
    -------
    list of torch.Tensor
        One tensor per parameter of the group, shaped like it.

    Raises
    ------
    ValueError
        Before the first step (no state), or when the model has no normaliser
        whose denominator can be read back (see
        :meth:`optfilters.stages.Stage.normaliser_denominator`).

    Examples
    --------
    >>> import torch
    >>> from optfilters.torch import FilterOptimizer
    >>> from optfilters.network import adaptive_denominator
    >>> w = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    >>> opt = FilterOptimizer([w], "adam", lr=0.1, eps=0.0)
    >>> w.grad = torch.tensor([3.0, -4.0], dtype=torch.float64)
    >>> opt.step()
    >>> adaptive_denominator(opt)[0].tolist()   # sqrt(v_hat) = |g| after one step
    [3.0, 4.0]
    """
    from .torch._kernels import SingleOps

    model = optimizer.group_model(group)
    reader = _NormaliserReader(model)
    out = []
    for p in optimizer.param_groups[group]["params"]:
        state = optimizer.state.get(p, {})
        if "step" not in state or any(k not in state for k in reader.keys):
            raise ValueError("adaptive_denominator() needs the optimizer's state: take a step first")
        t = int(state["step"])
        out.append(reader.denominator([state[k] for k in reader.keys], t, SingleOps).to(p.dtype))
    return out


adaptive_preconditioner = deprecated_alias(adaptive_denominator, "adaptive_preconditioner", "optfilters.network")


def sharpness_threshold(model: ModelLike, lr: float | None = None, **hyperparameters: Any) -> float:
    """The predicted edge-of-stability sharpness: the closed loop's largest stable ``lr * h`` over ``lr``.

    For linear models it bounds the Hessian's top eigenvalue, for normalised
    ones the preconditioned ``lambda_max(P H) = lambda_max(D^-1 H)`` (the closed loop is
    linearised with the normaliser frozen, see :mod:`optfilters.closed_loop`).

    Parameters
    ----------
    model : OptimizerModel, str or ArmaFilter
        The optimizer (see :func:`optfilters.as_model`).
    lr : float, optional
        Learning rate (> 0; default: the model's).
    **hyperparameters
        Hyperparameters when ``model`` is a catalogue name.

    Returns
    -------
    float
        ``max_stable_lr_curvature(model, lr) / lr``, in units of curvature
        (the Hessian's eigenvalue); ``2 / lr`` for gradient descent.

    Raises
    ------
    ValueError
        If ``lr`` is not a finite number > 0.

    Examples
    --------
    >>> from optfilters.network import sharpness_threshold
    >>> [round(sharpness_threshold(n, lr=0.1, **hp), 6) for n, hp in
    ...  [("sgd", {}), ("momentum", {"momentum": 0.9}), ("adam", {"beta1": 0.9})]]
    [20.0, 38.0, 380.0]
    """
    from .closed_loop import max_stable_lr_curvature

    m = as_model(model, **hyperparameters)
    rate = m.lr if lr is None else _positive_float("lr", lr)
    return float(max_stable_lr_curvature(m, lr=rate)) / rate


# ----------------------------------------------------------------------------- recording


class CoordinateRecorder:
    """Records each step's gradient and parameters on a seeded sample of coordinates, into preallocated tensors.

    ``coordinates`` positions are drawn without replacement (``seed``) from
    all the scalars of ``params`` (flattened in order).  Call
    :meth:`before_step` after ``backward()`` and :meth:`after_step` after
    ``optimizer.step()``, with the 0-based index of the step; steps before
    ``start`` are skipped.  Each call is one ``index_select`` per parameter
    into a row of the buffers (no allocation when the buffers have the
    parameters' dtype).  With ``state_keys`` (and the optimizer) it also
    records those optimizer-state entries after each step (a normaliser's
    second moment).

    Parameters
    ----------
    params : sequence of torch.Tensor
        The parameters to sample from (flattened in order).
    coordinates : int
        Sample size (1 to the number of scalars).
    steps : int
        Steps that will be recorded (rows).
    start : int
        Index of the first recorded step.
    seed : int
        Seed of the coordinate sample.
    optimizer : torch.optim.Optimizer, optional
        Needed with ``state_keys``.
    state_keys : sequence of str
        Optimizer state entries to record after each step.

    Attributes
    ----------
    gradients : torch.Tensor
        ``(steps, coordinates)`` raw gradients (``p.grad``) before each step.
    params : torch.Tensor
        ``(steps + 1, coordinates)``: row 0 before step ``start``, row ``r + 1`` after recorded step ``r``.
    state : dict of str to torch.Tensor
        ``(steps, coordinates)`` per state key, after each step.
    index : ndarray
        The sampled flat positions.

    Examples
    --------
    >>> import torch
    >>> from optfilters.network import CoordinateRecorder
    >>> w = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
    >>> rec = CoordinateRecorder([w], coordinates=4, steps=2)
    >>> opt = torch.optim.SGD([w], lr=0.5)
    >>> for step in range(2):
    ...     w.grad = torch.ones(4, dtype=torch.float64)
    ...     rec.before_step(step); opt.step(); rec.after_step(step)
    >>> rec.params[:, 0].tolist(), rec.gradients[:, 0].tolist()
    ([0.0, -0.5, -1.0], [1.0, 1.0])
    """

    def __init__(
        self,
        params: Sequence[Any],
        coordinates: int,
        steps: int,
        *,
        start: int = 0,
        seed: int = 0,
        optimizer: Any = None,
        state_keys: Sequence[str] = (),
    ) -> None:
        import torch

        self._params = list(params)
        total = int(sum(p.numel() for p in self._params))
        k = _int_option("coordinates", coordinates, 1, total)
        self.steps = _int_option("steps", steps, 1)
        self.start = _int_option("start", start, 0)
        if state_keys and optimizer is None:
            raise ValueError("state_keys need the optimizer")
        gen = torch.Generator().manual_seed(_int_option("seed", seed, 0))
        flat = torch.randperm(total, generator=gen)[:k].sort().values
        self.index = flat.numpy().copy()
        dtypes = {p.dtype for p in self._params}
        dtype = self._params[0].dtype if len(dtypes) == 1 else torch.float64
        self._slots: list[tuple[Any, Any, int, int]] = []
        offset, column = 0, 0
        for p in self._params:
            size = p.numel()
            local = flat[(flat >= offset) & (flat < offset + size)] - offset
            if local.numel():
                self._slots.append((p, local, column, column + local.numel()))
                column += local.numel()
            offset += size
        self.gradients = torch.zeros((self.steps, k), dtype=dtype)
        self.params = torch.zeros((self.steps + 1, k), dtype=dtype)
        self._optimizer = optimizer
        self.state = {key: torch.zeros((self.steps, k), dtype=dtype) for key in state_keys}
        self.rows = 0
        # Column blocks of the buffers, one per parameter: row r of a block is a contiguous slice.
        self._grad_cols = [self.gradients[:, a:b] for _, _, a, b in self._slots]
        self._param_cols = [self.params[:, a:b] for _, _, a, b in self._slots]
        self._state_cols = {key: [buf[:, a:b] for _, _, a, b in self._slots] for key, buf in self.state.items()}

    @staticmethod
    def _gather(source: Any, index: Any, out: Any) -> None:
        import torch

        flat = source.detach().reshape(-1)
        if flat.dtype == out.dtype:
            torch.index_select(flat, 0, index, out=out)
        else:
            out.copy_(flat.index_select(0, index))

    def before_step(self, step: int) -> None:
        """Record the gradients (and, at ``start``, the parameters) before step ``step`` (0-based).

        Parameters
        ----------
        step : int
            0-based index of the step about to be taken; steps outside
            ``[start, start + steps)`` are ignored.  A parameter without a
            gradient records zeros.
        """
        row = step - self.start
        if row < 0 or row >= self.steps:
            return
        gather = self._gather
        if row == 0:
            for (p, idx, _, _), cols in zip(self._slots, self._param_cols, strict=True):
                gather(p, idx, cols[0])
        for (p, idx, _, _), cols in zip(self._slots, self._grad_cols, strict=True):
            grad = p.grad
            if grad is None:
                cols[row].zero_()
            else:
                gather(grad, idx, cols[row])

    def after_step(self, step: int) -> None:
        """Record the parameters (and state entries) after step ``step`` (0-based).

        Parameters
        ----------
        step : int
            0-based index of the step just taken (the one given to
            :meth:`before_step`); steps outside ``[start, start + steps)`` are
            ignored.
        """
        row = step - self.start
        if row < 0 or row >= self.steps:
            return
        gather = self._gather
        for (p, idx, _, _), cols in zip(self._slots, self._param_cols, strict=True):
            gather(p, idx, cols[row + 1])
        for key, blocks in self._state_cols.items():
            for (p, idx, _, _), cols in zip(self._slots, blocks, strict=True):
                gather(self._optimizer.state[p][key], idx, cols[row])
        self.rows = row + 1


# ----------------------------------------------------------------------------- empirical transfer function


@dataclass(frozen=True)
class EmpiricalResponse(Plottable):
    """The empirical transfer function from gradient to update direction, against the prediction.

    Attributes
    ----------
    name : str
    freqs : ndarray
        Cycles per step, 0 to 0.5.
    magnitude : ndarray
        Empirical ``|H| = |sum_i S_gu,i / sum_i S_gg,i|`` over the recorded coordinates ``i``.
    phase : ndarray
        Its phase (radians).
    coherence : ndarray
        Magnitude-squared coherence of each coordinate (as
        :func:`scipy.signal.coherence`), averaged with weights ``S_gg,i``.
    predicted_magnitude, predicted_phase : ndarray
        The model's ``|H|`` and phase at ``freqs`` (for normalised models the
        linearised filter with each coordinate's normaliser frozen at its
        recorded average gain over each Welch segment, averaged with the
        weights the pooled estimate gives them: ``S_gg`` per coordinate and segment).
    coordinates : int
        Coordinates used (those with nonzero gradient power).
    steps : int
        Length of the recorded sequences.
    nperseg : int
        Welch segment length.
    label : str
        ``"exact"`` (linear time-invariant model), or what is linearised / taken in its limit.

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters.network import empirical_response
    >>> g = np.random.default_rng(0).standard_normal((512, 4))
    >>> r = empirical_response(g, 2.0 * g, nperseg=64)
    >>> float(r.magnitude.min().round(9)), float(r.coherence.min().round(9))
    (2.0, 1.0)
    """

    _plot_function = "empirical_response_plot"

    name: str
    freqs: FloatArray
    magnitude: FloatArray
    phase: FloatArray
    coherence: FloatArray
    predicted_magnitude: FloatArray
    predicted_phase: FloatArray
    coordinates: int
    steps: int
    nperseg: int
    label: str = "exact"

    def relative_error(self, min_coherence: float = 0.9, statistic: str = "median") -> float:
        """``|magnitude / predicted - 1|`` over the frequencies with coherence >= ``min_coherence`` (nan if none).

        Parameters
        ----------
        min_coherence : float
            Frequencies whose coherence is below this (or whose predicted
            magnitude is 0) are left out.
        statistic : {"median", "max"}
            How the per-frequency errors are summarised.

        Returns
        -------
        float
            The relative magnitude error (dimensionless; nan when no frequency qualifies).

        Raises
        ------
        ValueError
            If ``statistic`` is neither ``"median"`` nor ``"max"``.
        """
        if statistic not in ("median", "max"):
            raise ValueError(f"statistic must be median or max, got {statistic!r}")
        keep = (self.coherence >= min_coherence) & (self.predicted_magnitude > 0)
        if not np.any(keep):
            return math.nan
        err = np.abs(self.magnitude[keep] / self.predicted_magnitude[keep] - 1.0)
        return float(np.median(err) if statistic == "median" else np.max(err))

    def coherent_fraction(self, min_coherence: float = 0.9) -> float:
        """Fraction of the frequencies with coherence >= ``min_coherence``.

        Parameters
        ----------
        min_coherence : float
            Coherence threshold (0 to 1).

        Returns
        -------
        float
            In ``[0, 1]``.
        """
        return float(np.mean(self.coherence >= min_coherence))

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON-able; non-finite as None).

        Returns
        -------
        dict
            The fields (arrays as lists), the sign convention of ``H``, the
            median relative error and the coherent fraction (at coherence 0.9).
        """
        return {
            "name": self.name,
            "label": self.label,
            "convention": "H maps the effective gradient to the update direction u_t = -(theta_t - theta_{t-1})/lr",
            "coordinates": self.coordinates,
            "steps": self.steps,
            "nperseg": self.nperseg,
            "freqs": _list(self.freqs),
            "magnitude": _list(self.magnitude),
            "phase": _list(self.phase),
            "coherence": _list(self.coherence),
            "predicted_magnitude": _list(self.predicted_magnitude),
            "predicted_phase": _list(self.predicted_phase),
            "median_relative_error": _finite_or_none(self.relative_error()),
            "coherent_fraction": self.coherent_fraction(),
        }


def _shape_filter(model: OptimizerModel) -> ArmaFilter:
    """The direction filter per unit lr, without the normaliser's gain (the normaliser enters as a frozen gain)."""
    if model.is_linear:
        return model.direction_filter()
    return (cascade(*model.direction_parts()) * model.lr_gain.limit).renamed(model.name)


def _gain_weights(
    gains: FloatArray, active: NDArray[np.bool_], g: FloatArray, seg: int, s_gg: FloatArray, total: FloatArray
) -> FloatArray:
    """The frozen gains averaged with the weights that the pooled H1 estimate gives them, per frequency."""
    from scipy import signal

    k = active.size
    if gains.ndim == 1:
        if gains.size != k:
            raise ValueError(f"gains must have one value per coordinate ({k}), got {gains.size}")
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray((s_gg * gains[active]).sum(axis=1) / total, dtype=np.float64)
    if gains.shape != (g.shape[0], k):
        raise ValueError(
            f"gains must have shape (coordinates,) or (steps, coordinates) = {(g.shape[0], k)}, got {gains.shape}"
        )
    # Per Welch segment: the segment's gradient power, and the mean gain over the segment.
    _, _, per = signal.spectrogram(
        g, nperseg=seg, noverlap=seg // 2, window="hann", detrend="constant", axis=0, mode="psd"
    )  # (freqs, coordinates, segments)
    hop = seg - seg // 2
    window = signal.get_window("hann", seg) ** 2
    mean_gain = np.empty(per.shape[1:])
    for j in range(per.shape[2]):
        part = g[j * hop : j * hop + seg]
        power = window[:, None] * (part - part.mean(axis=0)) ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_gain[:, j] = (power * gains[j * hop : j * hop + seg][:, active]).sum(axis=0) / power.sum(axis=0)
    mean_gain = np.where(np.isfinite(mean_gain), mean_gain, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray((per * mean_gain[None]).sum(axis=(1, 2)) / per.sum(axis=(1, 2)), dtype=np.float64)


def empirical_response(
    gradients: ArrayLike,
    directions: ArrayLike,
    model: OptimizerModel | ArmaFilter | None = None,
    *,
    gains: ArrayLike | None = None,
    nperseg: int | None = None,
    name: str | None = None,
) -> EmpiricalResponse:
    """Estimate the transfer function from gradient to update direction by Welch spectra.

    For each recorded coordinate ``i`` the cross-spectral density
    ``S_gu,i`` (:func:`scipy.signal.csd`, Hann window, half overlap, mean
    removed per segment) and power spectral density ``S_gg,i``
    (:func:`scipy.signal.welch`) are estimated; the transfer function is
    ``sum_i S_gu,i / sum_i S_gg,i`` (the H1 estimator pooled over
    coordinates), and the coherence ``|S_gu,i|^2 / (S_gg,i S_uu,i)`` of each
    coordinate is averaged with weights ``S_gg,i``.  Coordinates whose
    gradient never changes are left out.

    Parameters
    ----------
    gradients : array_like, shape (steps, coordinates)
        Effective gradients ``g_t``.
    directions : array_like, shape (steps, coordinates)
        Update directions ``u_t = -(theta_t - theta_{t-1}) / lr``.
    model : OptimizerModel or ArmaFilter, optional
        The prediction: a linear model's :meth:`~OptimizerModel.direction_filter`,
        a normalised model's direction filter times each coordinate's frozen
        gain ``gains[i]``, or a filter.  None: the prediction is nan.
    gains : array_like, shape (coordinates,) or (steps, coordinates), optional
        Normaliser gains ``1 / P_i`` (required for normalised models): frozen
        per coordinate, or per step, in which case each Welch segment uses its
        mean gain and the segments are weighted by their gradient power, as
        the pooled estimate weights them.
    nperseg : int, optional
        Welch segment length (default ``min(256, steps)``).
    name : str, optional
        Label (default: the model's name).

    Returns
    -------
    EmpiricalResponse

    Raises
    ------
    ValueError
        If ``gradients`` and ``directions`` differ in shape or are not 1-D/2-D,
        there are fewer than 8 steps, every gradient is constant, ``nperseg``
        is not an integer in ``[8, steps]``, a normalised model comes without
        ``gains``, or ``gains`` has neither shape.

    Examples
    --------
    Momentum 0.9 on white-noise gradients, recovered at low frequency:

    >>> import numpy as np, optfilters
    >>> from optfilters.network import empirical_response
    >>> g = np.random.default_rng(1).standard_normal((4096, 8))
    >>> model = optfilters.get("momentum", momentum=0.9)
    >>> u = model.direction_filter().filter(g)      # u = H g along time (axis 0)
    >>> r = empirical_response(g, u, model)
    >>> bool(r.relative_error(0.95, "max") < 0.05), round(float(r.predicted_magnitude[0]), 6)
    (True, 10.0)
    """
    from scipy import signal

    g = np.asarray(gradients, dtype=np.float64)
    u = np.asarray(directions, dtype=np.float64)
    if g.ndim == 1:
        g = g[:, None]
    if u.ndim == 1:
        u = u[:, None]
    if g.shape != u.shape or g.ndim != 2:
        raise ValueError(
            f"gradients and directions must have the same (steps, coordinates) shape, got {g.shape} and {u.shape}"
        )
    steps = g.shape[0]
    if steps < 8:
        raise ValueError(f"empirical_response() needs at least 8 steps, got {steps}")
    seg = min(256, steps) if nperseg is None else _int_option("nperseg", nperseg, 8, steps)
    active = np.ptp(g, axis=0) > 0.0
    if not np.any(active):
        raise ValueError("empirical_response(): every recorded gradient is constant; nothing to estimate")
    g, u = g[:, active], u[:, active]
    opts: dict[str, Any] = {"nperseg": seg, "axis": 0, "window": "hann", "detrend": "constant"}
    freqs, s_gg = signal.welch(g, **opts)
    _, s_uu = signal.welch(u, **opts)
    _, s_gu = signal.csd(g, u, **opts)
    total = s_gg.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = s_gu.sum(axis=1) / total
        per = np.abs(s_gu) ** 2 / (s_gg * s_uu)
        per = np.where(s_gg * s_uu > 0.0, per, 0.0)
        coh = (per * s_gg).sum(axis=1) / total
    label = "exact"
    label_name = name
    if model is None:
        label = "no prediction"
        pred = np.full(freqs.shape, np.nan, dtype=np.complex128)
    else:
        if isinstance(model, ArmaFilter):
            shape = model
            label_name = label_name or model.name
            weights: FloatArray | None = None
        else:
            shape = _shape_filter(model)
            label_name = label_name or model.name
            weights = None
            if not model.is_linear:
                if gains is None:
                    raise ValueError(f"{model.name} is normalised: empirical_response() needs its frozen gains")
                label = "linearised: normaliser frozen at each coordinate's average gain over each Welch segment"
            elif not model.is_time_invariant:
                label = "t->infinity LTI limit of a time-varying model"
        if gains is not None:
            weights = _gain_weights(np.asarray(gains, dtype=np.float64), active, g, seg, s_gg, total)
        pred = np.asarray(shape.evaluate(np.exp(2j * np.pi * freqs)), dtype=np.complex128)
        if weights is not None:
            pred = pred * weights
    return EmpiricalResponse(
        name=label_name or "",
        freqs=np.asarray(freqs, dtype=np.float64),
        magnitude=np.abs(h),
        phase=np.angle(h),
        coherence=np.asarray(coh, dtype=np.float64),
        predicted_magnitude=np.abs(pred),
        predicted_phase=np.angle(pred),
        coordinates=int(active.sum()),
        steps=int(steps),
        nperseg=int(seg),
        label=label,
    )


# ----------------------------------------------------------------------------- sharpness trace


@dataclass(frozen=True)
class SharpnessTrace(Plottable):
    """Sharpness along training against the predicted edge-of-stability threshold.

    Attributes
    ----------
    name : str
    steps : ndarray
        Steps at which it was measured (after that many updates).
    sharpness : ndarray
        Top eigenvalue of the full training loss's Hessian (``preconditioned``:
        of ``D^-1 H``, ``D`` the optimizer's denominator).
    threshold : float
        Predicted edge: :func:`sharpness_threshold` (``2/lr`` for gradient descent).
    lr : float
    preconditioned : bool
    converged : ndarray of bool
        Whether each eigenvalue met its tolerance.
    label : str
        What is measured, and the threshold's provenance.

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters.network import SharpnessTrace
    >>> values = np.array([2.0, 5.0, 9.0, 14.0, 19.0, 21.0, 19.0, 20.0, 21.0, 19.0])
    >>> tr = SharpnessTrace("sgd", np.arange(0, 100, 10), values, threshold=20.0, lr=0.1)
    >>> tr.late_phase(0.3), tr.ratio(0.3), tr.first_reach(0.9)   # median of steps 70, 80, 90
    (20.0, 1.0, 40)
    """

    _plot_function = "sharpness_plot"

    name: str
    steps: NDArray[np.int64]
    sharpness: FloatArray
    threshold: float
    lr: float
    preconditioned: bool = False
    converged: NDArray[np.bool_] | None = None
    label: str = "lambda_max(H)"

    def late_values(self, fraction: float = 0.3) -> FloatArray:
        """The finite sharpness values measured in the last ``fraction`` of the measured steps.

        Parameters
        ----------
        fraction : float
            In ``(0, 1]``: the window is the last ``fraction`` of the span
            from the first to the last measured step.

        Returns
        -------
        ndarray
            The finite values in that window, in measurement order.

        Raises
        ------
        ValueError
            If ``fraction`` is not in ``(0, 1]``.
        """
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        if self.steps.size == 0:
            return np.array([], dtype=np.float64)
        last = float(self.steps[-1])
        first = float(self.steps[0])
        cut = last - fraction * (last - first)
        values = self.sharpness[(self.steps >= cut) & np.isfinite(self.sharpness)]
        return np.asarray(values, dtype=np.float64)

    def late_phase(self, fraction: float = 0.3) -> float:
        """Median sharpness over the last ``fraction`` of the measured steps (nan when none).

        Parameters
        ----------
        fraction : float
            Window, as in :meth:`late_values`.

        Returns
        -------
        float
            The median of :meth:`late_values` (curvature units), nan when empty.
        """
        values = self.late_values(fraction)
        return float(np.median(values)) if values.size else math.nan

    def ratio(self, fraction: float = 0.3) -> float:
        """:meth:`late_phase` over the threshold.

        Parameters
        ----------
        fraction : float
            Window, as in :meth:`late_values`.

        Returns
        -------
        float
            Dimensionless; 1 means the late sharpness sits at the predicted edge.
        """
        return self.late_phase(fraction) / self.threshold

    def first_reach(self, level: float = 0.9) -> int | None:
        """First measured step with sharpness >= ``level * threshold`` (None if never).

        Parameters
        ----------
        level : float
            Fraction of the threshold to reach.

        Returns
        -------
        int or None
            The step (updates taken), or None when never reached.
        """
        hit = np.nonzero(self.sharpness >= level * self.threshold)[0]
        return int(self.steps[hit[0]]) if hit.size else None

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON-able; non-finite as None).

        Returns
        -------
        dict
            The fields (arrays as lists) and the late-phase median and ratio
            (last 30%) and the first step at 90% of the threshold.
        """
        return {
            "name": self.name,
            "label": self.label,
            "preconditioned": self.preconditioned,
            "lr": self.lr,
            "threshold": _finite_or_none(self.threshold),
            "steps": [int(s) for s in self.steps],
            "sharpness": _list(self.sharpness),
            "converged": None if self.converged is None else [bool(c) for c in self.converged],
            "late_phase_median": _finite_or_none(self.late_phase()),
            "late_phase_ratio": _finite_or_none(self.ratio()),
            "first_reach_90": self.first_reach(0.9),
        }


# ----------------------------------------------------------------------------- observation


@dataclass(frozen=True)
class NetworkObservation:
    """What :func:`observe_network` saw.

    Attributes
    ----------
    name : str
        Optimizer name.
    lr : float
    hyperparameters : dict
        The model's hyperparameters (all values).
    network : DigitsMLP
    seed : int
    steps : ndarray
        ``0 .. N``.
    loss : ndarray
        ``loss[t]``: the training loss at ``theta_t`` on the data of step
        ``t + 1`` (the whole training set when full-batch); ``loss[N]`` on
        the whole training set.  nan after a divergence.
    train_accuracy, test_accuracy : float
        Of the final parameters.
    diverged : bool
        The loss became non-finite or exceeded :data:`DIVERGENCE_FACTOR` times
        its initial value (training stopped there; the loss after it is nan).
    sharpness : SharpnessTrace or None
        With ``sharpness_every > 0``.
    empirical : EmpiricalResponse or None
        With ``record_coordinates > 0``.
    seconds_training : float
        Wall time of the training steps (recording included, sharpness excluded).
    seconds_sharpness : float
        Wall time of the sharpness measurements.
    recording : CoordinateRecorder or None
        The raw records (not in :meth:`as_dict`).
    optimizer : FilterOptimizer
        The optimizer after training (not in :meth:`as_dict`).
    problem : NetworkProblem
        The trained network and its data (not in :meth:`as_dict`).

    Examples
    --------
    >>> import json
    >>> from optfilters.network import observe_network
    >>> obs = observe_network("sgd", lr=0.1, steps=20, record_coordinates=10, network={"hidden": [8], "samples": 100})
    >>> obs.panels, obs.diverged, bool(obs.loss[-1] < obs.loss[0])
    (3, False, True)
    >>> round(float(obs.empirical.magnitude.mean()), 9)   # plain SGD: |H| = 1 at every frequency
    1.0
    >>> sorted(json.loads(json.dumps(obs.as_dict())))[:4]
    ['diverged', 'empirical', 'final_loss', 'hyperparameters']
    """

    name: str
    lr: float
    hyperparameters: Mapping[str, Any]
    network: DigitsMLP
    seed: int
    steps: NDArray[np.int64]
    loss: FloatArray
    train_accuracy: float
    test_accuracy: float
    diverged: bool
    sharpness: SharpnessTrace | None
    empirical: EmpiricalResponse | None
    seconds_training: float
    seconds_sharpness: float
    recording: CoordinateRecorder | None = field(default=None, repr=False, compare=False)
    optimizer: Any = field(default=None, repr=False, compare=False)
    problem: NetworkProblem | None = field(default=None, repr=False, compare=False)

    @property
    def seconds_per_step(self) -> float:
        """Training wall time per step."""
        taken = int(np.sum(np.isfinite(self.loss[:-1]))) or 1
        return self.seconds_training / taken

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON-able; non-finite as None).

        Returns
        -------
        dict
            The run's settings, loss curve, accuracies, wall times and the
            nested :meth:`SharpnessTrace.as_dict` / :meth:`EmpiricalResponse.as_dict`
            (None when not measured).
        """
        hps = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.hyperparameters.items()}
        return {
            "name": self.name,
            "lr": self.lr,
            "hyperparameters": hps,
            "network": self.network.as_dict(),
            "seed": self.seed,
            "steps": [int(s) for s in self.steps],
            "loss": _list(self.loss),
            "final_loss": _finite_or_none(self.loss[-1]),
            "train_accuracy": _finite_or_none(self.train_accuracy),
            "test_accuracy": _finite_or_none(self.test_accuracy),
            "diverged": self.diverged,
            "sharpness": None if self.sharpness is None else self.sharpness.as_dict(),
            "empirical": None if self.empirical is None else self.empirical.as_dict(),
            "seconds_training": self.seconds_training,
            "seconds_sharpness": self.seconds_sharpness,
            "seconds_per_step": self.seconds_per_step,
        }

    @property
    def panels(self) -> int:
        """Number of panels :meth:`plot` draws: loss, sharpness (if measured), |H| and coherence (if recorded)."""
        return 1 + (self.sharpness is not None) + 2 * (self.empirical is not None)

    def plot(self, ax: Any = None, *, fig: Any = None, log_frequency: bool = True) -> Any:
        """Loss, sharpness against its threshold, and empirical against predicted ``|H|`` (the panels there are).

        Uses :func:`optfilters.plot.sharpness_plot` and
        :func:`optfilters.plot.empirical_response_plot` for their panels.

        Parameters
        ----------
        ax : sequence of Axes, optional
            :attr:`panels` axes to draw into (default: a new figure, or ``fig``).
        fig : Figure, optional
            Figure to add the panels to when ``ax`` is None.
        log_frequency : bool
            Logarithmic frequency axis for the transfer function.

        Returns
        -------
        optfilters.plot.PlotResult
            ``artists["loss"]``, plus the panels' artists prefixed ``"sharpness."`` and ``"empirical."``.

        Raises
        ------
        ValueError
            If ``ax`` does not hold exactly :attr:`panels` axes.
        """
        import matplotlib.pyplot as plt

        from . import plot as oplot

        count = self.panels
        with oplot.style():
            if ax is not None:
                axes = list(np.ravel(np.asarray(ax, dtype=object))) if not hasattr(ax, "plot") else [ax]
                if len(axes) != count:
                    raise ValueError(
                        f"this observation draws {count} panels, so ax must hold {count} Axes; got {len(axes)}"
                    )
                figure = axes[0].figure
            else:
                figure = fig if fig is not None else plt.figure(figsize=(6.4, 2.4 * count + 0.6))
                axes = list(figure.subplots(count, 1, squeeze=False)[:, 0])
            loss_line = axes[0].plot(
                self.steps, self.loss, color=oplot.PALETTE[0], label=f"{self.name} (lr={self.lr:g})"
            )
            axes[0].set_yscale("log")
            axes[0].set_xlabel("step")
            axes[0].set_ylabel(f"training loss ({self.network.loss})")
            axes[0].legend()
        artists: dict[str, tuple[Any, ...]] = {"loss": tuple(loss_line)}
        index = 1
        if self.sharpness is not None:
            drawn = self.sharpness.plot(ax=axes[index])
            artists.update({f"sharpness.{k}": v for k, v in drawn.artists.items()})
            index += 1
        if self.empirical is not None:
            drawn = self.empirical.plot(ax=axes[index : index + 2], log=log_frequency)
            artists.update({f"empirical.{k}": v for k, v in drawn.artists.items()})
        return oplot.PlotResult(figure, tuple(axes), artists, None, {"observation": self.as_dict()})


def _network_spec(network: Any, batch_size: Any, loss: Any) -> DigitsMLP:
    if network is None:
        spec = DigitsMLP()
    elif isinstance(network, DigitsMLP):
        spec = network
    elif isinstance(network, str):
        if network not in NETWORKS:
            raise ValueError(f"network must be one of {', '.join(NETWORKS)}, got {network!r}")
        spec = NETWORKS[network]()
    elif isinstance(network, Mapping):
        options = {k: v for k, v in network.items() if k != "name"}
        if "hidden" in options:
            options["hidden"] = tuple(options["hidden"])
        spec = DigitsMLP(**options)
    else:
        raise ValueError(f"network must be a name, a DigitsMLP or a dict of its fields, got {type(network).__name__}")
    changes: dict[str, Any] = {}
    if batch_size is not None:
        changes["batch_size"] = batch_size
    if loss is not None:
        changes["loss"] = loss
    if changes:
        spec = DigitsMLP(**{**asdict(spec), **changes})
    return spec


def observe_network(
    name_or_model: str | OptimizerModel | ArmaFilter,
    *,
    lr: float,
    steps: int,
    seed: int = 0,
    record_coordinates: int = 0,
    sharpness_every: int = 0,
    network: DigitsMLP | str | Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    loss: str | None = None,
    record_start: int = 0,
    nperseg: int | None = None,
    sharpness_method: str = "lanczos",
    sharpness_tol: float = 1e-3,
    sharpness_iterations: int = 100,
    progress: Callable[[int, int], None] | None = None,
    threads: int | None = None,
    **hyperparameters: Any,
) -> NetworkObservation:
    """Train the digits MLP with :class:`optfilters.torch.FilterOptimizer` and observe it as a filter.

    Parameters
    ----------
    name_or_model : str, OptimizerModel or ArmaFilter
        The optimizer, as :class:`~optfilters.torch.FilterOptimizer` takes it.
    lr : float
        Learning rate.
    steps : int
        Optimizer steps.
    seed : int
        Initialisation, mini-batch order and coordinate sample.
    record_coordinates : int
        Record the gradient and update of this many seeded random coordinates
        every step (0, the default: off, nothing allocated) and estimate the
        empirical transfer function (:func:`empirical_response`).
    sharpness_every : int
        Measure the sharpness every this many steps (0: off); for normalised
        optimizers the preconditioned sharpness (from step ``sharpness_every`` on).
    network : DigitsMLP, str or dict, optional
        The network (default ``DigitsMLP()``: 64-64-64-10 tanh, squared loss,
        1000 examples, full batch, float64).
    batch_size, loss : optional
        Override those fields of ``network``.
    record_start : int
        First step recorded (skip a transient).
    nperseg : int, optional
        Welch segment length.
    sharpness_method, sharpness_tol, sharpness_iterations :
        :func:`top_eigenvalue`'s ``method``, ``tol``, ``max_iterations``.
    progress : callable, optional
        Called as ``progress(step, steps)`` after each step.
    threads : int, optional
        Run with this many torch intra-op threads (restored afterwards); the
        network is small, and one thread is fastest on a busy machine.
    **hyperparameters
        The optimizer's hyperparameters (``momentum=0.9``, ``betas=(0.9, 0.999)``, ...).

    Returns
    -------
    NetworkObservation

    Examples
    --------
    >>> from optfilters.network import observe_network
    >>> obs = observe_network("momentum", lr=0.05, momentum=0.9, steps=40, sharpness_every=20,
    ...                       network={"hidden": [16], "samples": 200})
    >>> obs.loss.shape, obs.sharpness.steps.tolist(), round(obs.sharpness.threshold, 6)
    ((41,), [0, 20, 40], 76.0)
    >>> bool(obs.loss[-1] < obs.loss[0])
    True
    """
    import torch

    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(_int_option("threads", threads, 1))
    try:
        return _observe(
            name_or_model,
            lr,
            steps,
            seed,
            record_coordinates,
            sharpness_every,
            network,
            batch_size,
            loss,
            record_start,
            nperseg,
            sharpness_method,
            sharpness_tol,
            sharpness_iterations,
            progress,
            hyperparameters,
        )
    finally:
        torch.set_num_threads(previous)


def _observe(
    name_or_model: Any,
    lr: Any,
    steps: Any,
    seed: Any,
    record_coordinates: Any,
    sharpness_every: Any,
    network: Any,
    batch_size: Any,
    loss: Any,
    record_start: Any,
    nperseg: Any,
    sharpness_method: str,
    sharpness_tol: float,
    sharpness_iterations: int,
    progress: Callable[[int, int], None] | None,
    hyperparameters: dict[str, Any],
) -> NetworkObservation:
    import torch

    from .torch import FilterOptimizer

    lr = _positive_float("lr", lr)
    steps = _int_option("steps", steps, 1)
    seed = _int_option("seed", seed, 0)
    sharpness_every = _int_option("sharpness_every", sharpness_every, 0)
    record_start = _int_option("record_start", record_start, 0, steps - 1)
    spec = _network_spec(network, batch_size, loss)
    problem = spec.build(seed)
    params = problem.parameters
    record_coordinates = _int_option("record_coordinates", record_coordinates, 0, problem.parameter_count)
    seeds = np.random.SeedSequence(seed).generate_state(2)
    optimizer = FilterOptimizer(params, name_or_model, lr=lr, **hyperparameters)
    model = optimizer.model
    normalised = model.normaliser is not None
    reader = None
    if normalised and (record_coordinates or sharpness_every):
        try:
            reader = _NormaliserReader(model)
        except ValueError:
            if sharpness_every:  # the preconditioned sharpness needs D: say so
                raise
            # recording only: the empirical response is still measured, without a prediction

    recorder = None
    if record_coordinates:
        recorder = CoordinateRecorder(
            params,
            record_coordinates,
            steps - record_start,
            start=record_start,
            seed=int(seeds[0]),
            optimizer=optimizer,
            state_keys=reader.keys if reader is not None else (),
        )
    threshold = math.nan
    if sharpness_every:
        try:
            threshold = sharpness_threshold(model, lr=lr)
        except (InvalidFilterError, InvalidHyperparameterError, ValueError):
            threshold = math.nan
    sharp_steps: list[int] = []
    sharp_values: list[float] = []
    sharp_ok: list[bool] = []
    vector: FloatArray | None = None
    seconds_sharpness = 0.0

    def measure(t: int) -> None:
        nonlocal vector, seconds_sharpness
        if normalised and t == 0:
            return
        began = time.perf_counter()
        pre = adaptive_denominator(optimizer) if normalised else None
        result = top_eigenvalue(
            problem.full_loss,
            params,
            denominator=pre,
            method=sharpness_method,
            tol=sharpness_tol,
            max_iterations=sharpness_iterations,
            v0=vector,
            seed=int(seeds[1]),
        )
        vector = result.vector
        sharp_steps.append(t)
        sharp_values.append(result.value)
        sharp_ok.append(result.converged)
        seconds_sharpness += time.perf_counter() - began

    losses = np.full(steps + 1, np.nan)
    limit = math.inf
    batches = problem.batches(int(seeds[1]))
    module = problem.module
    diverged = False
    seconds_training = 0.0
    for t in range(steps):
        if sharpness_every and t % sharpness_every == 0:
            measure(t)
        began = time.perf_counter()
        x, y = next(batches)
        optimizer.zero_grad()
        value = problem.loss(module(x), y)
        value.backward()
        loss_value = float(value.detach())
        losses[t] = loss_value
        if t == 0:
            limit = DIVERGENCE_FACTOR * max(abs(loss_value), 1e-300)
        if not (math.isfinite(loss_value) and loss_value <= limit):
            diverged = True
            seconds_training += time.perf_counter() - began
            break
        if recorder is not None:
            recorder.before_step(t)
        optimizer.step()
        if recorder is not None:
            recorder.after_step(t)
        seconds_training += time.perf_counter() - began
        if progress is not None:
            progress(t + 1, steps)
    if not diverged:
        with torch.no_grad():
            final = float(problem.full_loss())
        losses[steps] = final
        if not (math.isfinite(final) and final <= limit):
            diverged = True
            losses[steps] = np.nan
        elif sharpness_every and steps % sharpness_every == 0:
            measure(steps)

    trace = None
    if sharpness_every:
        trace = SharpnessTrace(
            name=model.name,
            steps=np.asarray(sharp_steps, dtype=np.int64),
            sharpness=np.asarray(sharp_values, dtype=np.float64),
            threshold=threshold,
            lr=lr,
            preconditioned=normalised,
            converged=np.asarray(sharp_ok, dtype=bool),
            label=(
                "lambda_max(D^-1 H), D = the optimizer's denominator; threshold from the linearised closed loop"
                if normalised
                else "lambda_max(H) of the full training loss; threshold from the closed loop"
            )
            + ("; sign() left out of the threshold (linearised)" if model.nonlinearity is not None else ""),
        )
    empirical = None
    if recorder is not None and recorder.rows >= 8:
        empirical = _empirical_from(recorder, model, lr, reader, nperseg)
    return NetworkObservation(
        name=model.name,
        lr=lr,
        hyperparameters=dict(model.hyperparameters),
        network=spec,
        seed=seed,
        steps=np.arange(steps + 1, dtype=np.int64),
        loss=losses,
        train_accuracy=problem.accuracy() if not diverged else math.nan,
        test_accuracy=problem.accuracy(test=True) if not diverged else math.nan,
        diverged=diverged,
        sharpness=trace,
        empirical=empirical,
        seconds_training=seconds_training,
        seconds_sharpness=seconds_sharpness,
        recording=recorder,
        optimizer=optimizer,
        problem=problem,
    )


def _empirical_from(
    recorder: CoordinateRecorder,
    model: OptimizerModel,
    lr: float,
    reader: _NormaliserReader | None,
    nperseg: int | None,
) -> EmpiricalResponse:
    rows = recorder.rows
    grads = recorder.gradients[:rows].double().numpy()
    theta = recorder.params[: rows + 1].double().numpy()
    before = theta[:-1]
    delta = np.diff(theta, axis=0)
    g = -grads if model.maximize else grads.copy()
    u = -delta / lr
    coupled, decoupled = model.loop_decay()
    if decoupled != 0.0:
        u = u - decoupled * before
    if coupled != 0.0:
        g = g + coupled * before
    gains = None
    if reader is not None:
        ts = np.arange(recorder.start + 1, recorder.start + rows + 1)
        values = [recorder.state[k][:rows].double().numpy() for k in reader.keys]
        den = np.stack([np.asarray(reader.denominator([v[i] for v in values], int(t))) for i, t in enumerate(ts)])
        with np.errstate(divide="ignore"):
            gains = 1.0 / den
    seg = None if nperseg is None else min(nperseg, rows)
    predicted = model if model.is_linear or gains is not None else None
    return empirical_response(g, u, predicted, gains=gains, nperseg=seg, name=model.name)
