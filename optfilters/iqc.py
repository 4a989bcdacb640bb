"""Certified convergence rates over all smooth strongly convex functions: the IQC / Lyapunov SDP.

The quadratic analysis of :mod:`optfilters.closed_loop` gives the rate on every
quadratic with curvature in ``[mu, L]``; a smooth strongly convex function is
not a quadratic, and a setting tuned for quadratics can fail on one (Polyak's
heavy ball with ``kappa = 25`` ends in a 3-cycle on the piecewise quadratic of
Lessard, Recht and Packard; see :func:`lessard_counterexample`).  This module
certifies a rate ``rho`` for **every** function ``f`` that is ``mu``-strongly
convex with an ``L``-Lipschitz gradient, following

    L. Lessard, B. Recht, A. Packard, "Analysis and design of optimization
    algorithms via integral quadratic constraints", SIAM J. Optim. 26(1),
    57-95 (2016), Theorem 4 with Lemma 6 (sector IQC) and Lemma 10 (weighted
    off-by-one IQC, a Zames-Falb multiplier).

The optimizer's loop comes from the model's own filter
(:meth:`optfilters.OptimizerModel.linearised_filter`, which is
:meth:`~optfilters.OptimizerModel.direction_filter` for linear models): with a
realisation ``(A_F, B_F, C_F, D_F)`` of ``H(z)`` of any order (second-order
sections above order 2), the state ``xi_k = [theta_{k-1}; s_k]`` gives

    xi_{k+1} = A xi_k + B u_k,    y_k = C xi_k,    u_k = grad f(y_k),

    A = [[c, -lr C_F], [0, A_F]],  B = [[-lr D_F], [B_F]],  C = [1, 0, ..., 0]

with ``c = 1 - lr * wd`` for decoupled weight decay (``c = 1`` otherwise),
coupled decay shifting the curvature range to ``[mu + wd, L + wd]`` and
``maximize`` negating ``B``.  The rate ``rho`` is certified when the linear
matrix inequality (the ``psi`` state ``zeta`` carries ``L y - u`` one step)

    [A^ B^]^T P [A^ B^] - rho^2 [I 0]^T P [I 0]
        + l1 S^T M_s S + l2 [C^ D^]^T M_o [C^ D^]  <=  0,    P >= I,  l1, l2 >= 0

is feasible, where ``M_s = [[-2 mu L, mu + L], [mu + L, -2]]`` acts on ``(y,
u)`` (the sector IQC), ``M_o = [[0, 1], [1, 0]]`` on the off-by-one output
``z = [L y_k - u_k - rho^2 (L y_{k-1} - u_{k-1}); u_k - mu y_k]``.  Then
``||xi_k - xi*|| <= sqrt(cond P) rho^k ||xi_0 - xi*||`` for every such ``f``
(any dimension: the certificate is the scalar one times the identity).  The
LMI is written in its Schur-complement form, so one compiled cvxpy problem per
state dimension serves every optimizer and every ``rho`` (cvxpy parameters),
and ``rho`` is found by bisection between the quadratic worst case (a lower
bound: quadratics are in the class) and 1.

Solver: Clarabel (bundled with cvxpy; an interior-point method) with absolute
and relative gap and feasibility tolerances ``1e-9``; SCS (``solver="SCS"``,
``eps_abs = eps_rel = 1e-9``) is the alternative.  A solver's answer counts
as feasible only when its ``P`` and multipliers satisfy the LMI in float64
(largest eigenvalue at most ``1e-9 ||P||``, :data:`VERIFY_TOLERANCE`); when
it fails, or its solution does not pass, the other solver is asked once (at
most 1000 SCS or 200 Clarabel iterations), and anything else counts as
infeasible (conservative).  The reported rate is the smallest verified
``rho`` of the bisection (bracket width ``tol``, default ``1e-5``), with that
certificate and its residual (:attr:`Certificate.residual`).
cvxpy is imported only when a certificate is asked for.

Normalised models are linearised (the normaliser frozen at a second moment,
labelled); models with a sign stage are refused (see
:mod:`optfilters.describing_function`).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .catalogue import CATALOGUE
from .closed_loop import DEFAULT_BOUNDS, DEFAULT_TUNED, ModelLike, _realise, as_model, closed_loop
from .errors import InvalidFilterError, InvalidHyperparameterError
from .validation import finite_or_none as _finite_or_none
from .validation import null_reasons, saturating_spectral_radius

__all__ = [
    "SOLVER_OPTIONS",
    "VERIFY_TOLERANCE",
    "Certificate",
    "CertifiedTuning",
    "LoopRealisation",
    "certify",
    "lessard_counterexample",
    "lessard_gradient",
    "loop_realisation",
    "tune_certified",
]

FloatArray = NDArray[np.float64]

#: Tolerances passed to each solver (stated in every :class:`Certificate`).
SOLVER_OPTIONS: dict[str, dict[str, float]] = {
    "CLARABEL": {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9},
    "SCS": {"eps_abs": 1e-9, "eps_rel": 1e-9},
}

#: A solver's solution counts only if the LMI's largest eigenvalue is at most this times ``||P||`` (float64).
VERIFY_TOLERANCE = 1e-9

#: Iteration caps when a solver is asked as the fallback of the other.
FALLBACK_LIMITS: dict[str, dict[str, int]] = {"SCS": {"max_iters": 1000}, "CLARABEL": {"max_iter": 200}}

#: Multiplier names: the sector IQC (Lemma 6) and the weighted off-by-one Zames-Falb IQC (Lemma 10).
MULTIPLIERS = ("sector", "off_by_one")


# ----------------------------------------------------------------------------- the loop


@dataclass(frozen=True)
class LoopRealisation:
    """The optimizer as a linear system driven by the gradient: ``xi' = A xi + B u``, ``y = C xi``, ``u = grad f(y)``.

    Attributes
    ----------
    name : str
    A : ndarray, shape (n, n)
    B : ndarray, shape (n, 1)
    C : ndarray, shape (1, n)
        ``y_k = theta_{k-1}``: the point where the gradient is taken.
    lr : float
    mu_shift : float
        Coupled weight decay, added to the curvature range by :func:`certify`.
    label : str
        ``"exact"``, or the linearisation / ``t -> infinity`` note.

    Examples
    --------
    >>> from optfilters.iqc import loop_realisation
    >>> r = loop_realisation("momentum", lr=0.1, momentum=0.5)
    >>> r.A.round(12).tolist(), r.B.ravel().round(12).tolist(), r.C.ravel().tolist()
    ([[1.0, -0.1], [0.0, 0.5]], [-0.1, 0.5], [1.0, 0.0])
    """

    name: str
    A: FloatArray
    B: FloatArray
    C: FloatArray
    lr: float
    mu_shift: float = 0.0
    label: str = "exact"

    @property
    def order(self) -> int:
        """State dimension ``n`` (the filter's order plus one)."""
        return int(self.A.shape[0])

    def transfer(self, z: ArrayLike) -> NDArray[np.complex128]:
        """``G(z) = C (z I - A)^-1 B``, the map from gradient to evaluation point, at points ``z``.

        Parameters
        ----------
        z : complex or array_like of complex, shape (k,)
            Points of the z-plane (on the unit circle ``z = exp(2 pi i f)``,
            ``f`` in cycles per step).

        Returns
        -------
        ndarray of complex, shape (k,)
            ``G(z)`` at each point (a scalar ``z`` gives one value); it
            includes the factor ``-lr``.

        Examples
        --------
        >>> from optfilters.iqc import loop_realisation
        >>> r = loop_realisation("sgd", lr=0.5)
        >>> complex(r.transfer(2.0)[0])          # -lr z^-1 / (1 - z^-1) = -0.5 / (z - 1)
        (-0.5+0j)
        """
        points = np.atleast_1d(np.asarray(z, dtype=np.complex128))
        eye = np.eye(self.order)
        out = [complex((self.C @ np.linalg.solve(p * eye - self.A, self.B))[0, 0]) for p in points]
        return np.asarray(out, dtype=np.complex128)

    def closed_loop_matrix(self, curvature: float) -> FloatArray:
        """``A + h B C``: the loop on the quadratic ``f = h y^2 / 2`` (curvature ``h``, coupled decay included).

        Parameters
        ----------
        curvature : float
            ``h`` (the coupled decay ``mu_shift`` is added to it).

        Returns
        -------
        ndarray, shape (n, n)
            The closed-loop state matrix; the loop converges at the rate of
            its spectral radius.

        Examples
        --------
        >>> import numpy as np
        >>> from optfilters.iqc import loop_realisation
        >>> r = loop_realisation("momentum", lr=1 / 9, momentum=4 / 9)
        >>> round(float(np.max(np.abs(np.linalg.eigvals(r.closed_loop_matrix(1.0))))), 12)   # Polyak: 2/3
        0.666666666667
        """
        return np.asarray(self.A + (float(curvature) + self.mu_shift) * (self.B @ self.C), dtype=np.float64)


def loop_realisation(
    model: ModelLike, *, lr: float | None = None, second_moment: float = 1.0, **hyperparameters: Any
) -> LoopRealisation:
    """The state-space loop ``(A, B, C)`` of an optimizer, from its filter (any order).

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        Catalogue name (with ``hyperparameters``), model or gradient filter.
    lr : float, optional
        Learning rate (default: the model's).
    second_moment : float
        Where a normaliser is frozen (linearised models, labelled).
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    LoopRealisation

    Raises
    ------
    InvalidFilterError
        For models with a sign stage, or an invalid frozen normaliser.

    Examples
    --------
    >>> from optfilters.iqc import loop_realisation
    >>> loop_realisation("adam", beta1=0.9).label.split(";")[0]
    'linearised: normaliser frozen at second moment v=1'
    """
    m = as_model(model, **hyperparameters)
    if m.period is not None:  # Lookahead: the loop is not LTI, its direction filter is not the loop
        raise InvalidFilterError(
            f"{m.name} is periodically time-varying (period {m.period}): certify needs a time-invariant loop "
            "(its quadratic rate is rho(M)^(1/k) of the monodromy matrix, optfilters.closed_loop)"
        )
    if m.nonlinearity is not None and not m.nonlinearity.elementwise:  # Muon's orthogonalisation
        raise InvalidFilterError(
            f"{m.name} {m.nonlinearity.nonlinear_description()}; certify needs a linear (or linearised normalised) "
            "model"
        )
    if m.nonlinearity is not None:
        raise InvalidFilterError(
            f"{m.name} takes the sign of its direction; certify needs a linear (or linearised normalised) model "
            "(see optfilters.describing_function for sign stages)"
        )
    step = m.lr if lr is None else float(lr)
    if not (math.isfinite(step) and step > 0.0):
        raise InvalidHyperparameterError(f"lr must be finite and > 0, got {lr}")
    f = m.linearised_filter(second_moment)
    if not f.is_stable:
        raise InvalidFilterError(f"{m.name}'s direction filter is {f.stability}; its loop has no certificate")
    a_f, b_f, c_f, d_f = _realise(f)
    n = a_f.shape[0]
    wd = m.weight_decay
    decoupled = wd.weight_decay if wd is not None and wd.decoupled else 0.0
    coupled = wd.weight_decay if wd is not None and not wd.decoupled else 0.0
    sign = -1.0 if m.maximize else 1.0
    a_mat = np.zeros((n + 1, n + 1))
    a_mat[0, 0] = 1.0 - step * decoupled
    a_mat[0, 1:] = -step * c_f
    a_mat[1:, 1:] = a_f
    b_mat = np.zeros((n + 1, 1))
    b_mat[0, 0] = -step * d_f * sign
    b_mat[1:, 0] = b_f * sign
    c_mat = np.zeros((1, n + 1))
    c_mat[0, 0] = 1.0
    label = closed_loop(m, second_moment=second_moment).label
    return LoopRealisation(m.name, a_mat, b_mat, c_mat, step, coupled, label)


# ----------------------------------------------------------------------------- the SDP


@dataclass(frozen=True)
class _Found:
    """A certificate that passed the float64 check: ``P``, the multipliers and the relative LMI residual."""

    P: FloatArray
    l_sector: float
    l_offbyone: float
    residual: float


class _Problem:
    """One compiled cvxpy feasibility problem for a state dimension (parameters: the loop, the IQCs and rho)."""

    def __init__(self, n: int, solver: str) -> None:
        import cvxpy as cp

        self.cp = cp
        self.n = n
        self.solver = solver
        big = n + 1  # state with the off-by-one filter's state
        self.P = cp.Variable((big, big), symmetric=True)
        self.l_sector = cp.Variable(nonneg=True)
        self.l_offbyone = cp.Variable(nonneg=True)
        self.AB = cp.Parameter((big, big + 1))
        self.sector = cp.Parameter((big + 1, big + 1), symmetric=True)
        self.offbyone = cp.Parameter((big + 1, big + 1), symmetric=True)
        self.use_sector = cp.Parameter(nonneg=True)
        self.use_offbyone = cp.Parameter(nonneg=True)
        self.r2 = cp.Parameter(nonneg=True)
        embed = np.zeros((big, big + 1))
        embed[:, :big] = np.eye(big)
        q = self.r2 * (embed.T @ self.P @ embed) - self.l_sector * self.sector - self.l_offbyone * self.offbyone
        schur = cp.bmat([[q, self.AB.T @ self.P], [self.P @ self.AB, self.P]])
        constraints = [
            self.P >> np.eye(big),
            0.5 * (schur + schur.T) >> 0,
            self.l_sector <= 1e12 * self.use_sector,
            self.l_offbyone <= 1e12 * self.use_offbyone,
        ]
        self.problem = cp.Problem(cp.Minimize(0), constraints)
        self.last: _Found | None = None

    def feasible(
        self, ab: FloatArray, sector: FloatArray, offbyone: FloatArray, rho: float, use: tuple[bool, bool]
    ) -> bool:
        self.AB.value = ab
        self.sector.value = sector
        self.offbyone.value = offbyone
        self.r2.value = rho * rho
        self.use_sector.value = 1.0 if use[0] else 0.0
        self.use_offbyone.value = 1.0 if use[1] else 0.0
        self.last = None
        status = self._solve(self.solver)
        if status == "infeasible":
            return False
        if status in ("optimal", "optimal_inaccurate") and self._verified(ab, sector, offbyone, rho):
            return True
        # numerical trouble (near the boundary, or an ill-conditioned P): the other bundled solver, once
        status = self._solve("SCS" if self.solver == "CLARABEL" else "CLARABEL", fallback=True)
        return status in ("optimal", "optimal_inaccurate") and self._verified(ab, sector, offbyone, rho)

    def _verified(self, ab: FloatArray, sector: FloatArray, offbyone: FloatArray, rho: float) -> bool:
        """True when the solver's ``P`` and multipliers satisfy the LMI in float64 (then kept in :attr:`last`)."""
        if self.P.value is None:
            return False
        p = np.array(self.P.value, dtype=np.float64)
        p = 0.5 * (p + p.T)
        n1 = p.shape[0]
        embed = np.zeros((n1, n1 + 1))
        embed[:, :n1] = np.eye(n1)
        l_sector, l_offbyone = _value(self.l_sector), _value(self.l_offbyone)
        if l_sector < 0.0 or l_offbyone < 0.0:
            return False
        lmi = ab.T @ p @ ab - rho * rho * (embed.T @ p @ embed) + l_sector * sector + l_offbyone * offbyone
        scale = max(float(np.linalg.norm(p, 2)), 1e-300)
        residual = float(np.max(np.linalg.eigvalsh(0.5 * (lmi + lmi.T)))) / scale
        if residual <= VERIFY_TOLERANCE and float(np.min(np.linalg.eigvalsh(p))) > 0.0:
            self.last = _Found(p, l_sector, l_offbyone, residual)
            return True
        return False

    def _solve(self, solver: str, fallback: bool = False) -> str | None:
        options = dict(SOLVER_OPTIONS[solver])
        if fallback:
            options.update(FALLBACK_LIMITS.get(solver, {}))
        try:
            with warnings.catch_warnings(), solver_output_dropped():
                warnings.simplefilter("ignore")  # "solution may be inaccurate": checked by the caller
                self.problem.solve(solver=solver, **options)
        except (self.cp.error.SolverError, ValueError):  # SCS refuses numbers it cannot scale ("allocation error")
            return None
        return str(self.problem.status)


@contextlib.contextmanager
def solver_output_dropped() -> Iterator[None]:
    """Run a C/Rust solver with file descriptors 1 and 2 sent to a scratch file that is then dropped.

    SCS and Clarabel write diagnostics (``"KKT matrix has < n positive
    eigenvalues. P not PSD.ERROR: init_lin_sys_work failure"``) from native
    code straight to the process's stdout and stderr, below ``sys.stdout``:
    a ``contextlib.redirect_stdout`` cannot catch them.  Their outcome is read
    from the problem's status, and their text would corrupt a command's
    output (``--json``) or its one-line error, so it is discarded.  C stdio
    buffers are flushed before the descriptors are restored, so nothing
    buffered leaks out later.

    Yields
    ------
    None

    Examples
    --------
    >>> import os
    >>> from optfilters.iqc import solver_output_dropped
    >>> with solver_output_dropped():
    ...     _ = os.write(1, b"native chatter")
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        scratch = tempfile.TemporaryFile()
    except OSError:  # no scratch file can be made: run unprotected rather than not at all
        yield
        return
    saved: list[tuple[int, int]] = []
    with scratch:
        try:
            for fd in (1, 2):
                with contextlib.suppress(OSError):  # a closed descriptor: nothing to protect
                    copy = os.dup(fd)
                    saved.append((fd, copy))
                    os.dup2(scratch.fileno(), fd)
            yield
        finally:
            _flush_c_stdio()
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)


def _flush_c_stdio() -> None:
    """``fflush(NULL)`` through the C library, where it can be reached."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).fflush(None)


_PROBLEMS: dict[tuple[int, str], _Problem] = {}


def _problem(n: int, solver: str) -> _Problem:
    key = (n, solver)
    if key not in _PROBLEMS:
        _PROBLEMS[key] = _Problem(n, solver)
    return _PROBLEMS[key]


def _blocks(loop: LoopRealisation, mu: float, L: float, rho: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``[A^ B^]``, the sector term ``S^T M_s S`` and the off-by-one term ``[C^ D^]^T M_o [C^ D^]``."""
    n = loop.order
    a_hat = np.zeros((n + 1, n + 1))
    a_hat[:n, :n] = loop.A
    a_hat[n, :n] = -L * loop.C[0]
    b_hat = np.zeros((n + 1, 1))
    b_hat[:n] = loop.B
    b_hat[n, 0] = 1.0
    ab = np.hstack([a_hat, b_hat])
    s = np.zeros((2, n + 2))
    s[0, :n] = loop.C[0]
    s[1, n + 1] = 1.0
    m_s = np.array([[-2.0 * mu * L, mu + L], [mu + L, -2.0]])
    cd = np.zeros((2, n + 2))
    cd[0, :n] = L * loop.C[0]
    cd[0, n] = rho * rho
    cd[0, n + 1] = -1.0
    cd[1, :n] = -mu * loop.C[0]
    cd[1, n + 1] = 1.0
    m_o = np.array([[0.0, 1.0], [1.0, 0.0]])
    return ab, s.T @ m_s @ s, cd.T @ m_o @ cd


def _value(variable: Any) -> float:
    """A scalar cvxpy variable's value (0 when the solver left none)."""
    value = variable.value
    return 0.0 if value is None else float(np.asarray(value))


def _quadratic_worst(loop: LoopRealisation, mu: float, L: float, points: int = 257) -> float:
    """Worst closed-loop rate over quadratics with curvature in ``[mu, L]`` (geometric and linear grid)."""
    grid = np.unique(np.concatenate([np.geomspace(mu, L, points), np.linspace(mu, L, points)]))
    mats = loop.A[None] + (grid[:, None, None]) * (loop.B @ loop.C)[None]
    return float(np.max(saturating_spectral_radius(mats)))


@dataclass(frozen=True)
class Certificate:
    """A convergence rate certified over every ``mu``-strongly convex, ``L``-smooth function (or none).

    Attributes
    ----------
    name : str
    mu, L : float
        Curvature range of the function class (coupled weight decay included).
    lr : float
    rate : float
        The certified rate ``rho`` (``inf`` when the LMI is infeasible at ``rho = 1``: no certificate,
        which is not a proof of divergence).
    quadratic_rate : float
        The worst case over quadratics with curvature in ``[mu, L]`` (a lower bound of ``rate``).
    multipliers : tuple of str
        The IQCs used: ``"sector"`` (Lemma 6), ``"off_by_one"`` (Lemma 10).
    lyapunov : ndarray or None
        ``P`` of the certificate at ``rate`` (normalised so that ``P >= I``).
    lambdas : dict
        The multipliers' weights.
    residual : float
        Largest LMI eigenvalue at the certificate, relative to ``||P||`` (re-checked in numpy).
    tolerance : float
        Bisection bracket width on ``rho``.
    solver : str
        The cvxpy solver and its tolerances.
    label : str
        ``"exact"`` or the linearisation / ``t -> infinity`` note.
    hyperparameters : dict

    Examples
    --------
    >>> from optfilters.iqc import certify
    >>> c = certify("sgd", mu=1.0, L=10.0, lr=0.1)
    >>> c.certified, round(c.rate, 4), round(c.quadratic_rate, 12)      # max |1 - lr h| = 0.9
    (True, 0.9, 0.9)
    """

    name: str
    mu: float
    L: float
    lr: float
    rate: float
    quadratic_rate: float
    multipliers: tuple[str, ...]
    lyapunov: FloatArray | None = None
    lambdas: Mapping[str, float] = field(default_factory=dict)
    residual: float = math.nan
    tolerance: float = 1e-5
    solver: str = "CLARABEL"
    label: str = "exact"
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def certified(self) -> bool:
        """True when a rate below 1 was certified."""
        return bool(math.isfinite(self.rate) and self.rate < 1.0)

    @property
    def condition_number(self) -> float:
        """``L / mu``."""
        return self.L / self.mu

    @property
    def iterations_constant(self) -> float:
        """``sqrt(cond P)``: the constant of ``||xi_k - xi*|| <= c rho^k ||xi_0 - xi*||`` (nan without certificate)."""
        if self.lyapunov is None:
            return math.nan
        eig = np.linalg.eigvalsh(self.lyapunov)
        return float(math.sqrt(eig[-1] / eig[0]))

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary (``rate`` None when not certified).

        Returns
        -------
        dict
            The problem class (``mu``, ``L``, condition number), ``lr``, the
            verdict and rates, the multipliers' weights, the solver's residual,
            tolerance and options, the context, and ``why_null`` (why each null is null).
        """
        return {
            "name": self.name,
            "mu": self.mu,
            "L": self.L,
            "condition_number": self.condition_number,
            "lr": self.lr,
            "certified": self.certified,
            "rate": _finite_or_none(self.rate),
            "quadratic_rate": _finite_or_none(self.quadratic_rate),
            "multipliers": list(self.multipliers),
            "lambdas": {k: float(v) for k, v in self.lambdas.items()},
            "residual": _finite_or_none(self.residual),
            "tolerance": self.tolerance,
            "solver": self.solver,
            "solver_options": dict(SOLVER_OPTIONS.get(self.solver, {})),
            "label": self.label,
            "hyperparameters": {k: v for k, v in self.hyperparameters.items()},
            "why_null": null_reasons(
                {
                    "rate": (
                        self.rate,
                        "infinite: no certificate (the LMI is infeasible at rate 1; not a proof of divergence)",
                    ),
                    "quadratic_rate": (self.quadratic_rate, "infinite: beyond the double range (1.8e+308)"),
                    "residual": (self.residual, "undefined: no certificate to check"),
                }
            ),
        }

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Bars of the quadratic worst-case and the certified rate (:func:`optfilters.plot.certified_rates_plot`).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw into (default: a new figure).
        **kwargs
            Passed to :func:`optfilters.plot.certified_rates_plot`.

        Returns
        -------
        optfilters.plot.PlotResult
            What was drawn.
        """
        from . import plot

        return plot.certified_rates_plot({self.name: self}, ax=ax, **kwargs)


def _bisect(
    loop: LoopRealisation, mu: float, L: float, lo: float, hi: float, tol: float, use: tuple[bool, bool], solver: str
) -> tuple[float, _Found | None]:
    """Smallest verified ``rho`` in ``(lo, hi]`` to within ``tol``, and its certificate (``inf``, None if none)."""
    problem = _problem(loop.order, solver)
    found: _Found | None = None

    def ok(rho: float) -> bool:
        nonlocal found
        ab, sector, offbyone = _blocks(loop, mu, L, rho)
        if problem.feasible(ab, sector, offbyone, rho, use):
            found = problem.last
            return True
        return False

    if not ok(hi):
        return math.inf, None
    lo = max(0.0, min(lo, hi))
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi, found


def _check_range(mu: float, L: float | None, condition_number: float | None) -> tuple[float, float]:
    mu = float(mu)
    if L is None:
        if condition_number is None:
            raise InvalidHyperparameterError("give L or condition_number")
        L = float(condition_number) * mu
    L = float(L)
    if not (math.isfinite(mu) and mu > 0.0 and math.isfinite(L) and L >= mu):
        raise InvalidHyperparameterError(f"curvatures need 0 < mu <= L (finite), got mu={mu}, L={L}")
    return mu, L


def _check_multipliers(multipliers: Sequence[str]) -> tuple[bool, bool]:
    names = tuple(multipliers)
    unknown = [n for n in names if n not in MULTIPLIERS]
    if unknown or not names:
        raise InvalidHyperparameterError(f"multipliers must be a non-empty subset of {MULTIPLIERS}, got {names}")
    return "sector" in names, "off_by_one" in names


def _check_solver(solver: str, tol: float) -> str:
    name = str(solver).upper()
    if name not in SOLVER_OPTIONS:
        raise InvalidHyperparameterError(f"solver must be one of {', '.join(SOLVER_OPTIONS)}, got {solver!r}")
    if not (math.isfinite(tol) and 0.0 < tol < 0.5):
        raise InvalidHyperparameterError(f"tol must be in (0, 0.5), got {tol}")
    return name


def certify(
    model: ModelLike,
    *,
    mu: float = 1.0,
    L: float | None = None,
    condition_number: float | None = None,
    lr: float | None = None,
    second_moment: float = 1.0,
    multipliers: Sequence[str] = MULTIPLIERS,
    tol: float = 1e-5,
    solver: str = "CLARABEL",
    **hyperparameters: Any,
) -> Certificate:
    """Certify a convergence rate over all ``mu``-strongly convex ``L``-smooth functions (Lessard et al. 2016).

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        A linear model, or a normalised one (linearised at ``second_moment``, labelled).
    mu, L : float
        Strong convexity and smoothness constants (or give ``condition_number`` with ``mu``).
    condition_number : float, optional
        ``L / mu``.
    lr : float, optional
        Learning rate (default: the model's).
    second_moment : float
        Frozen second moment of a normaliser.
    multipliers : sequence of {"sector", "off_by_one"}
        The IQCs: the sector IQC alone reproduces the gradient method's rates;
        the weighted off-by-one (Zames-Falb) IQC is needed for momentum methods.
    tol : float
        Width of the final bisection bracket on ``rho``.
    solver : {"CLARABEL", "SCS"}
        cvxpy solver (tolerances in :data:`SOLVER_OPTIONS`).
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    Certificate

    Raises
    ------
    InvalidHyperparameterError
        For a bad curvature range, multiplier, solver or tolerance.
    InvalidFilterError
        For a sign-type model or an unstable filter.

    Examples
    --------
    >>> from optfilters.iqc import certify
    >>> round(certify("sgd", mu=1.0, L=10.0, lr=2 / 11).rate, 4)     # (kappa - 1) / (kappa + 1)
    0.8182
    >>> certify("momentum", mu=1.0, L=25.0, lr=1 / 9, momentum=4 / 9).certified   # Polyak's tuning
    False
    """
    mu, L = _check_range(mu, L, condition_number)
    use = _check_multipliers(multipliers)
    solver = _check_solver(solver, tol)
    m = as_model(model, **hyperparameters)
    loop = loop_realisation(m, lr=lr, second_moment=second_moment)
    mu_eff, l_eff = mu + loop.mu_shift, L + loop.mu_shift
    quad = _quadratic_worst(loop, mu_eff, l_eff)
    lo = min(quad, 1.0) * (1.0 - 1e-9)
    rate, found = _bisect(loop, mu_eff, l_eff, lo, 1.0, tol, use, solver)
    lyapunov, lambdas, residual = None, {}, math.nan
    if found is not None:
        lyapunov = found.P
        lambdas = {"sector": found.l_sector, "off_by_one": found.l_offbyone}
        lambdas = {k: v for k, v in lambdas.items() if k in multipliers}
        residual = found.residual
    return Certificate(
        name=m.name,
        mu=mu_eff,
        L=l_eff,
        lr=loop.lr,
        rate=rate,
        quadratic_rate=quad,
        multipliers=tuple(n for n in MULTIPLIERS if n in multipliers),
        lyapunov=lyapunov,
        lambdas=lambdas,
        residual=residual,
        tolerance=tol,
        solver=solver,
        label=loop.label,
        hyperparameters=dict(m.hyperparameters, lr=loop.lr),
    )


# ----------------------------------------------------------------------------- tuning


@dataclass(frozen=True)
class CertifiedTuning:
    """The learning rate and hyperparameters minimising the certified rate over ``[mu, L]``.

    Attributes
    ----------
    name : str
    mu, L : float
    lr : float
    hyperparameters : dict
        The tuned hyperparameters' values.
    tuned : tuple of str
    certificate : Certificate
        At the tuned setting.
    evaluations : int
        Number of SDP solves.

    Examples
    --------
    >>> from optfilters.iqc import tune_certified
    >>> t = tune_certified("sgd", condition_number=9.0, tol=1e-4)
    >>> round(t.certificate.rate, 3), round(t.lr * t.L, 2)      # (kappa - 1)/(kappa + 1) at lr = 2/(L + mu)
    (0.8, 1.8)
    """

    name: str
    mu: float
    L: float
    lr: float
    hyperparameters: dict[str, float]
    tuned: tuple[str, ...]
    certificate: Certificate
    evaluations: int = 0

    @property
    def rate(self) -> float:
        """The certified rate at the tuned setting."""
        return self.certificate.rate

    def as_dict(self) -> dict[str, Any]:
        """``lr``, each tuned hyperparameter, the certificate and the context (JSON-able).

        Returns
        -------
        dict
            ``lr``, ``lr_curvature_max`` (``lr L``), one entry per tuned
            hyperparameter, ``tuned``, both rates, the nested
            :meth:`Certificate.as_dict` and the number of evaluations.
        """
        out: dict[str, Any] = {"lr": self.lr, "lr_curvature_max": self.lr * self.L}
        out.update({k: float(v) for k, v in self.hyperparameters.items()})
        out.update(
            {
                "tuned": ["lr", *self.tuned],
                "rate": _finite_or_none(self.certificate.rate),
                "quadratic_rate": _finite_or_none(self.certificate.quadratic_rate),
                "certificate": self.certificate.as_dict(),
                "evaluations": self.evaluations,
            }
        )
        return out

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Bars of the tuned setting's quadratic and certified rates (:func:`optfilters.plot.certified_rates_plot`).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw into (default: a new figure).
        **kwargs
            Passed to :func:`optfilters.plot.certified_rates_plot`.

        Returns
        -------
        optfilters.plot.PlotResult
            What was drawn.
        """
        from . import plot

        return plot.certified_rates_plot({f"{self.name} (certified tuning)": self.certificate}, ax=ax, **kwargs)


def _box(name: str, parameter: str) -> tuple[float, float]:
    spec = CATALOGUE[name].hyperparameter(parameter)
    key = f"{name}.{parameter}"
    if key in DEFAULT_BOUNDS:
        lo, hi = DEFAULT_BOUNDS[key]
    elif spec.low is not None and spec.high is not None:
        lo, hi = float(spec.low), float(spec.high)
    elif parameter in DEFAULT_BOUNDS:
        lo, hi = DEFAULT_BOUNDS[parameter]
    else:
        raise InvalidHyperparameterError(f"{name}.{parameter} has no finite range to search; give bounds")
    width = hi - lo
    if spec.low is not None and lo <= spec.low and spec.low_open:
        lo = spec.low + 1e-9 * width
    if spec.high is not None and hi >= spec.high and (spec.high_open or parameter == "momentum"):
        hi = (spec.high if spec.high is not None else hi) - 1e-3 * width
    if parameter == "momentum" and hi >= 1.0:
        hi = 1.0 - 1e-3
    return lo, hi


def _golden(f: Any, lo: float, hi: float, tol: float) -> tuple[float, float]:
    """Golden-section search of a unimodal ``f(x, cap)`` on ``[lo, hi]``: ``(x, f(x))`` of the best point.

    ``f(x, cap)`` may return ``inf`` for any value not below ``cap``: each new
    point is evaluated with the retained point's value as ``cap``, which is all
    a comparison needs.
    """
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fc = f(c, math.inf)
    fd = f(d, fc)
    while hi - lo > tol:
        if fc <= fd:
            hi, d, fd = d, c, fc
            c = hi - ratio * (hi - lo)
            fc = f(c, fd)
        else:
            lo, c, fc = c, d, fd
            d = lo + ratio * (hi - lo)
            fd = f(d, fc)
    return (c, fc) if fc <= fd else (d, fd)


def tune_certified(
    model: ModelLike,
    condition_number: float | None = None,
    *,
    mu: float = 1.0,
    L: float | None = None,
    tune: Sequence[str] | None = None,
    second_moment: float = 1.0,
    grid: int = 5,
    refinements: int = 6,
    tol: float = 1e-4,
    solver: str = "CLARABEL",
    **hyperparameters: Any,
) -> CertifiedTuning:
    """Search ``lr`` and the filter's hyperparameters for the smallest certified rate over ``[mu, L]``.

    For given hyperparameters the certified rate is minimised over ``lr * L``
    in ``[0.02, 4]`` by a log-spaced scan (9 points) and a golden-section
    search between the best point's neighbours down to ``3 tol`` in ``log lr``
    (the rate is unimodal in ``lr`` on the momentum family: it falls until a
    constraint becomes active, then rises).  One tuned hyperparameter is
    searched the same way over its range (``grid`` points, then golden section
    down to ``20 tol`` of the range); several by a grid and
    ``refinements`` rounds of a pattern search with diagonal moves (the optimum
    lies in a narrow valley across the axes).  A candidate costs one SDP solve
    when it cannot beat the best rate so far (its feasibility at that rate is
    tested first, after its quadratic worst case, a lower bound); only
    improving candidates are bisected.

    Parameters
    ----------
    model : str or OptimizerModel
        A catalogue optimizer (a model outside the catalogue tunes ``lr`` only).
    condition_number : float, optional
        ``L / mu`` (or give ``L``).
    mu, L : float
        Curvature range.
    tune : sequence of str, optional
        Hyperparameters to tune besides ``lr`` (default:
        :data:`optfilters.closed_loop.DEFAULT_TUNED`; empty: ``lr`` only).
    second_moment : float
        Frozen second moment (normalised models).
    grid : int
        Grid points per tuned hyperparameter.
    refinements : int
        Pattern-search rounds (two or more tuned hyperparameters).
    tol : float
        Bisection tolerance of each certified rate (the searches' tolerances scale with it).
    solver : {"CLARABEL", "SCS"}
    **hyperparameters
        Fixed hyperparameters.

    Returns
    -------
    CertifiedTuning

    Raises
    ------
    InvalidHyperparameterError
        When no setting in the search box is certified.

    Examples
    --------
    >>> from optfilters.iqc import tune_certified
    >>> t = tune_certified("momentum", condition_number=4.0, grid=5, tol=1e-3)
    >>> t.certificate.certified and t.rate < 0.6   # below gradient descent's (kappa-1)/(kappa+1) = 0.6
    True
    """
    mu, L = _check_range(mu, L, condition_number)
    solver = _check_solver(solver, tol)
    grid = max(int(grid), 3)
    base = as_model(model, **hyperparameters)
    names: tuple[str, ...] = ()
    if base.name in CATALOGUE:
        names = tuple(DEFAULT_TUNED.get(base.name, ()) if tune is None else tune)
        for n_ in names:
            CATALOGUE[base.name].hyperparameter(n_)  # unknown names raise
    elif tune:
        raise InvalidHyperparameterError("only catalogue optimizers have hyperparameters to tune")
    boxes = [_box(base.name, n_) for n_ in names]
    use = (True, True)
    evaluations = 0
    best: dict[str, Any] = {"rate": math.inf, "values": None, "x": None}
    log_lo, log_hi = math.log(0.02), math.log(4.0)

    def realisation(values: tuple[float, ...], log_x: float) -> LoopRealisation | None:
        """The loop at these hyperparameters and ``lr * L = exp(log_x)``; None where the model refuses them."""
        settings = dict(zip(names, values, strict=True))
        try:
            m = as_model(base, **settings) if settings else base
            return loop_realisation(m, lr=math.exp(log_x) / L, second_moment=second_moment)
        except ValueError:
            return None

    def rate_at(values: tuple[float, ...], log_x: float, cap: float) -> float:
        """Certified rate at ``lr * L = exp(log_x)``; ``inf`` when it is not below ``cap`` (then one solve)."""
        nonlocal evaluations
        loop = realisation(values, log_x)
        if loop is None:
            return math.inf
        mu_e, l_e = mu + loop.mu_shift, L + loop.mu_shift
        lo = _quadratic_worst(loop, mu_e, l_e)
        cap = min(cap, 1.0)
        if lo >= cap:
            return math.inf
        problem = _problem(loop.order, solver)
        top = cap - tol if cap < 1.0 else 1.0
        ab, sector, offbyone = _blocks(loop, mu_e, l_e, top)
        evaluations += 1
        if not problem.feasible(ab, sector, offbyone, top, use):
            return math.inf
        # feasible at top: gallop down (improvements are usually small), then bisect the last gap
        step, hi, low = tol, top, lo * (1.0 - 1e-9)
        while True:
            step *= 2.0
            trial = hi - step
            if trial <= low:
                break
            evaluations += 1
            ab, sector, offbyone = _blocks(loop, mu_e, l_e, trial)
            if not problem.feasible(ab, sector, offbyone, trial, use):
                low = trial
                break
            hi = trial
        while hi - low > tol:
            mid = 0.5 * (low + hi)
            evaluations += 1
            ab, sector, offbyone = _blocks(loop, mu_e, l_e, mid)
            if problem.feasible(ab, sector, offbyone, mid, use):
                hi = mid
            else:
                low = mid
        rate = hi
        if rate < best["rate"]:
            best.update(rate=rate, values=values, x=log_x)
        return rate

    def quadratic(values: tuple[float, ...], log_x: float) -> float:
        """The worst quadratic rate (a cheap proxy that orders the scan)."""
        loop = realisation(values, log_x)
        if loop is None:
            return math.inf
        return _quadratic_worst(loop, mu + loop.mu_shift, L + loop.mu_shift, points=33)

    def over_lr(values: tuple[float, ...], cap: float = math.inf) -> float:
        """The smallest certified rate over lr for these hyperparameters.

        Pruning is only against this search's own best point (the coarse scan
        could miss a sharp minimum between its points), so the value is exact
        to the tolerances whatever ``cap``.
        """
        del cap
        scan = np.linspace(log_lo, log_hi, 9)
        rates = [math.inf] * scan.size
        for j in sorted(range(scan.size), key=lambda k: quadratic(values, float(scan[k]))):
            rates[j] = rate_at(values, float(scan[j]), min(rates))  # the most promising first: the rest prune
        i = int(np.argmin(rates))
        if not math.isfinite(rates[i]):
            return math.inf
        lo_x, hi_x = float(scan[max(i - 1, 0)]), float(scan[min(i + 1, scan.size - 1)])
        _, value = _golden(lambda v, c: rate_at(values, v, c), lo_x, hi_x, 3.0 * tol)
        return min(value, rates[i])

    if not names:
        over_lr(())
    elif len(names) == 1:
        lo_b, hi_b = boxes[0]
        points = np.linspace(lo_b, hi_b, grid)
        outer: list[float] = []
        for v in points:
            outer.append(over_lr((float(v),), min([math.inf, *outer])))
        i = int(np.argmin(outer))
        if math.isfinite(outer[i]):
            lo_p, hi_p = float(points[max(i - 1, 0)]), float(points[min(i + 1, grid - 1)])
            _golden(lambda v, c: over_lr((v,), c), lo_p, hi_p, 20.0 * tol * (hi_b - lo_b))
    else:
        axes = [np.linspace(lo_b, hi_b, grid) for lo_b, hi_b in boxes]
        for combo in np.array(np.meshgrid(*axes, indexing="ij")).reshape(len(names), -1).T:
            over_lr(tuple(float(v) for v in combo), best["rate"])
        if best["values"] is not None:
            steps = np.array([(hi_b - lo_b) / (grid - 1) for lo_b, hi_b in boxes])
            moves = [np.array(m) for m in itertools.product((-1.0, 0.0, 1.0), repeat=len(names)) if any(m)]
            for _ in range(max(int(refinements), 0)):
                steps = steps / 2.0
                improved = True
                while improved:
                    improved = False
                    centre = np.array(best["values"])
                    for move in moves:
                        candidate = centre + move * steps
                        if any(not (lo_b <= v <= hi_b) for v, (lo_b, hi_b) in zip(candidate, boxes, strict=True)):
                            continue
                        before = best["rate"]
                        over_lr(tuple(float(v) for v in candidate), before)
                        improved = improved or best["rate"] < before
    if best["values"] is None:
        raise InvalidHyperparameterError(
            f"{base.name}: no setting in the search box is certified for kappa = {L / mu:g}"
        )
    values = dict(zip(names, best["values"], strict=True))
    lr_best = math.exp(best["x"]) / L
    certificate = certify(
        as_model(base, **values) if values else base,
        mu=mu,
        L=L,
        lr=lr_best,
        second_moment=second_moment,
        tol=tol,
        solver=solver,
    )
    return CertifiedTuning(
        name=base.name,
        mu=mu,
        L=L,
        lr=lr_best,
        hyperparameters=values,
        tuned=names,
        certificate=certificate,
        evaluations=evaluations,
    )


# ----------------------------------------------------------------------------- the counter-example


def lessard_gradient(x: ArrayLike) -> FloatArray:
    """Gradient of Lessard, Recht and Packard's piecewise quadratic (``mu = 1``, ``L = 25``; 2016, eq. (4.11)).

    ``f'(x) = 25 x`` for ``x < 1``, ``x + 24`` for ``1 <= x < 2``, ``25 x - 24``
    for ``x >= 2``: continuous, strongly convex with ``mu = 1``, smooth with
    ``L = 25``, minimised at 0.

    Parameters
    ----------
    x : array_like
        Points (any shape).

    Returns
    -------
    ndarray of float, shape like ``x``
        ``f'(x)``.

    References
    ----------
    L. Lessard, B. Recht and A. Packard, "Analysis and design of optimization
    algorithms via integral quadratic constraints", SIAM J. Optim. 26(1), 2016.

    Examples
    --------
    >>> from optfilters.iqc import lessard_gradient
    >>> lessard_gradient([0.5, 1.5, 3.0]).tolist()
    [12.5, 25.5, 51.0]
    """
    x = np.asarray(x, dtype=np.float64)
    return np.asarray(np.where(x < 1.0, 25.0 * x, np.where(x < 2.0, x + 24.0, 25.0 * x - 24.0)), dtype=np.float64)


def lessard_counterexample(
    model: ModelLike = "momentum", *, x0: float = 3.3, steps: int = 300, lr: float | None = None, **hyperparameters: Any
) -> FloatArray:
    """The model's iterates on :func:`lessard_gradient` from ``x0`` (the exact recursion, ``steps + 1`` values).

    Parameters
    ----------
    model : str, OptimizerModel or ArmaFilter
        The optimizer: a catalogue name, a model or a gradient filter (see :func:`optfilters.as_model`).
    x0 : float
        Start.
    steps : int
        Steps of the recursion.
    lr : float, optional
        Learning rate (default: the model's).
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    ndarray, shape (steps + 1,)
        ``x_0 = x0, x_1, ..., x_steps``.

    Examples
    --------
    >>> from optfilters.iqc import lessard_counterexample
    >>> x = lessard_counterexample("momentum", lr=1 / 9, momentum=4 / 9)   # Polyak's tuning for kappa = 25
    >>> x[-3:].round(4).tolist()          # the 3-cycle 0.6465 -> -1.8024 -> 2.1159 -> 0.6465
    [-1.8024, 2.1159, 0.6465]
    """
    m = as_model(model, **hyperparameters)
    trajectory = m.simulate(
        lambda theta, t: lessard_gradient(theta), theta0=np.array([float(x0)]), steps=int(steps), lr=lr
    )
    return np.asarray(trajectory.params[:, 0], dtype=np.float64)
