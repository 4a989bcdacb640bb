"""The noisy quadratic model: steady-state loss and loss trajectories, predicted against real torch runs.

Reproduces the noisy quadratic model (NQM) of Zhang, Li, Nado, Martens,
Sachdeva, Dahl, Shallue & Grosse, "Which Algorithmic Choices Matter at Which
Batch Sizes? Insights From a Noisy Quadratic Model" (NeurIPS 2019; also
Schaul, Zhang & LeCun, "No More Pesky Learning Rates", 2013): the loss
``L = 1/2 sum_i h_i theta_i^2`` on the spectrum ``h_i = 1/i`` (``i = 1..10``)
and the gradient ``g = h theta + xi`` with white Gaussian noise of variance
``c_i = h_i`` per coordinate (the NQM's gradient covariance ``C = H`` at
batch size 1).  The predictions come from :mod:`optfilters.noisy_quadratic`
(exact mean and covariance recursion of the closed loop; the Lyapunov steady
state), the observations from :func:`optfilters.observe.observe_quadratic`
(the quadratic trained with torch through the bridge
:class:`optfilters.torch.FilterOptimizer`, many seeds at once, mean and
standard error over the seeds) and the divergence learning rates from
:func:`optfilters.observe.predicted_divergence_lr` and
:func:`optfilters.observe.divergence_threshold` (multisection on real runs).

Closed forms checked (derived from the recursions, independently of the
library):

* SGD, ``theta' = (1 - lr h) theta - lr xi``: ``Var = lr^2 c / (1 - (1 - lr
  h)^2)``, so the steady-state loss is ``sum_i lr c_i / (2 (2 - lr h_i))``
  (:func:`sgd_steady_state`); it diverges at ``lr = 2 / h_max``.
* Heavy ball (torch SGD, ``v' = beta v + g``, ``theta' = theta - lr v'``):
  ``E[theta^2] = lr^2 c (1 + beta) / ((1 - beta) lr h (2 (1 + beta) - lr
  h))``, loss ``sum_i (1 + beta) lr c_i / (2 (1 - beta) (2 (1 + beta) - lr
  h_i))`` (:func:`heavy_ball_steady_state`; checked against SciPy's
  ``solve_discrete_lyapunov`` of the 2x2 loop, :func:`heavy_ball_lyapunov`);
  it diverges at ``lr = 2 (1 + beta) / h_max``.
* Adam, **linearised** (the normaliser frozen at the self-consistent
  ``v = E[g^2] = h^2 Var + c``, gain ``s = 1 / (sqrt(v) + eps)``, bias
  corrections at their limit 1): heavy ball with ``lr_eff = lr s (1 -
  beta1)``, solved for ``s`` by Brent's method
  (:func:`adam_linearised_steady_state`).  This checks the library's
  linearisation, not Adam itself: the observed runs measure how good it is.
* Trajectories: ``E[theta]`` and ``Var[theta]`` of SGD and heavy ball
  propagated step by step with the learning rate of each step
  (:func:`sgd_trajectory`, :func:`heavy_ball_trajectory`).

Run ``python -m optfilters.papers.noisy_quadratic [OUT_DIR] [--quick]`` (or
``optfilters figures noisy_quadratic``).

Numbers (full mode, seed 0, 4096 seeds; steady state: the loss at step 600
from ``theta_0 = 0``, 13 learning rates per linear optimizer from 5% to 99%
of the edge, 9 for Adam from 0.01 to 3; trajectories: 400 steps from
``theta_0 ~ N(0, I)``; 56 to 77 s on one core of a shared machine):

=================  ============  ============  =======  =========  =================  ====================
optimizer          library vs    within 4      max |z|  max rel.   predicted          observed divergence
                   closed form   s.e.                   error      divergence lr      lr (rel. error)
=================  ============  ============  =======  =========  =================  ====================
SGD                8.4e-16       13/13         0.93     1.6%       2 (= 2/h_max)      1.99996 (1.8e-5)
heavy ball 0.9     3.5e-14       13/13         1.78     2.1%       3.8 (= 3.8/h_max)  3.79995 (1.2e-5)
Adam (linearised)  3.9e-15       9/9           1.02     0.77%      none               none (no divergence)
=================  ============  ============  =======  =========  =================  ====================

"library vs closed form" is the largest relative difference between
:func:`optfilters.noisy_quadratic.steady_state_loss` and the closed form over
the learning rates; the heavy-ball closed form agrees with SciPy's Lyapunov
solver to 1.9e-13.  The observed points are compared with the predicted loss
at step 600, which is within 2.6e-7 (SGD) and 1e-13 (heavy ball) of the
steady state; one standard error is 1 to 2% of the loss.  The divergence
brackets of the real runs contain the predicted edges: [1.99991, 2.00002]
and [3.79985, 3.80006].  At 1.01 times the predicted edge the noisy runs
diverge too (loss 1e12 and 3e82 at step 600).

Trajectories (steps 1..400; within 4 s.e. over all steps / over the second half):

=================================  ==================  ===============  ===========  =================
run                                library vs          within 4 s.e.    max |z|      max rel. error
                                   recursion
=================================  ==================  ===============  ===========  =================
SGD lr 0.3, lr 1.5                 4.4e-16             100% / 100%      3.05         4.3%
heavy ball lr 0.05, lr 0.5         6.0e-16             100% / 100%      3.35         3.2%
SGD lr 1.5, step decay             1.3e-15             99.8% / 99.5%    4.02         4.1%
SGD lr 1.5, cosine                 4.0e-16             100% / 100%      2.94         4.1%
Adam lr 0.03 (linearised)          n/a                 50.7% / 97.5%    24.2         26%
Adam lr 0.3 (linearised)           n/a                 96.5% / 100%     16.1         13%
=================================  ==================  ===============  ===========  =================

The one step just outside 4 s.e. for an exact prediction (z = 4.02, one of
2400 steps that are correlated in time; a mean of squared Gaussians is skewed)
is consistent with chance.
Adam's linearised (mean-field) prediction misses the transient from a
random start (by up to 26%: the real normaliser divides by the square root of
the random ``v_t``, the prediction by that of ``E[v_t]``) and agrees once
``v_t`` has averaged many steps.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from optfilters.papers import Check, caption_number, progress, run_source, save_figure, write_outputs

TITLE = "Noisy quadratic model: steady-state loss and trajectories, predicted against torch runs (Zhang et al. 2019)"

#: The curvature spectrum ``h_i = 1/i``, ``i = 1..10``.
CURVATURES: tuple[float, ...] = tuple(1.0 / i for i in range(1, 11))

#: Heavy-ball momentum and Adam's betas.
BETA = 0.9
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8

#: (key, label, catalogue name, hyperparameters) of the optimizers compared.
OPTIMIZERS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("sgd", "SGD", "sgd", {}),
    ("heavy_ball", f"heavy ball (momentum {BETA:g})", "momentum", {"momentum": BETA}),
    (
        "adam",
        "Adam (linearised)",
        "adam",
        {"beta1": ADAM_BETAS[0], "beta2": ADAM_BETAS[1], "eps": ADAM_EPS},
    ),
)

#: Beyond the predicted edge: the learning rate (as a multiple of the edge) that must diverge.
BEYOND_EDGE = 1.01


def _settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "fractions": (0.2, 0.6, 0.95),
            "adam_lrs": (0.03, 0.3),
            "steps": 150,
            "seeds": 512,
            "dense": 12,
            "divergence": {"steps": 2000, "candidates": 8, "rtol": 2e-2},
            "trajectory_steps": 60,
            "trajectory_seeds": 512,
            "dpi": 100,
        }
    return {
        "fractions": (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99),
        "adam_lrs": tuple(float(x) for x in np.geomspace(0.01, 3.0, 9)),
        "steps": 600,
        "seeds": 4096,
        "dense": 200,
        "divergence": {"steps": 20_000, "candidates": 16, "rtol": 1e-4},
        "trajectory_steps": 400,
        "trajectory_seeds": 4096,
        "dpi": 150,
    }


# ----------------------------------------------------------------------------- closed forms


def _arrays(h: ArrayLike, c: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    hh = np.atleast_1d(np.asarray(h, dtype=np.float64))
    cc = np.broadcast_to(np.asarray(c, dtype=np.float64), hh.shape)
    return hh, cc


def sgd_steady_state(lr: float, curvatures: ArrayLike, noise_var: ArrayLike) -> float:
    """Steady-state expected loss of SGD on the noisy quadratic: ``sum_i lr c_i / (2 (2 - lr h_i))``.

    From ``theta' = (1 - lr h) theta - lr xi``: ``Var = lr^2 c / (1 - (1 - lr
    h)^2)`` and the loss is ``1/2 h Var`` per coordinate; ``inf`` unless
    ``0 < lr h_i < 2`` for every coordinate.

    Parameters
    ----------
    lr : float
        Learning rate.
    curvatures, noise_var : array_like
        ``h_i`` and ``c_i`` (``noise_var`` broadcasts).

    Returns
    -------
    float

    Examples
    --------
    >>> from optfilters.papers.noisy_quadratic import sgd_steady_state
    >>> round(sgd_steady_state(0.1, 1.0, 1.0), 7)
    0.0263158
    """
    h, c = _arrays(curvatures, noise_var)
    x = lr * h
    if np.any(x <= 0.0) or np.any(x >= 2.0):
        return math.inf
    return float(np.sum(lr * c / (2.0 * (2.0 - x))))


def heavy_ball_steady_state(lr: float, beta: float, curvatures: ArrayLike, noise_var: ArrayLike) -> float:
    """Steady-state expected loss of heavy ball (torch SGD with momentum ``beta``) on the noisy quadratic.

    ``sum_i (1 + beta) lr c_i / (2 (1 - beta) (2 (1 + beta) - lr h_i))``, from
    ``E[theta^2] = lr^2 c (1 + beta) / ((1 - beta) lr h (2 (1 + beta) - lr
    h))``; ``inf`` unless ``0 < lr h_i < 2 (1 + beta)``.

    Parameters
    ----------
    lr, beta : float
        Learning rate and momentum.
    curvatures, noise_var : array_like
        ``h_i`` and ``c_i`` (``noise_var`` broadcasts).

    Returns
    -------
    float

    Examples
    --------
    >>> from optfilters.papers.noisy_quadratic import heavy_ball_steady_state
    >>> round(heavy_ball_steady_state(0.1, 0.9, 1.0, 1.0), 6)
    0.256757
    """
    h, c = _arrays(curvatures, noise_var)
    x = lr * h
    if np.any(x <= 0.0) or np.any(x >= 2.0 * (1.0 + beta)):
        return math.inf
    return float(np.sum((1.0 + beta) * lr * c / (2.0 * (1.0 - beta) * (2.0 * (1.0 + beta) - x))))


def heavy_ball_lyapunov(lr: float, beta: float, curvatures: ArrayLike, noise_var: ArrayLike) -> float:
    """The same steady state from SciPy's ``solve_discrete_lyapunov`` on the 2x2 loop of each coordinate.

    State ``(theta, v)``: ``v' = beta v + h theta + xi``, ``theta' = (1 - lr
    h) theta - lr beta v - lr xi``, so ``A = [[1 - lr h, -lr beta], [h,
    beta]]`` and ``B = [-lr, 1]``.

    Parameters
    ----------
    lr, beta : float
        Learning rate and momentum.
    curvatures, noise_var : array_like
        ``h_i`` and ``c_i`` (``noise_var`` broadcasts).

    Returns
    -------
    float
        ``inf`` when a coordinate's loop is not stable.

    Examples
    --------
    >>> from optfilters.papers.noisy_quadratic import heavy_ball_lyapunov
    >>> round(heavy_ball_lyapunov(0.1, 0.9, 1.0, 1.0), 6)
    0.256757
    """
    from scipy.linalg import solve_discrete_lyapunov

    h, c = _arrays(curvatures, noise_var)
    total = 0.0
    for hi, ci in zip(h, c, strict=True):
        a = np.array([[1.0 - lr * hi, -lr * beta], [hi, beta]])
        if np.max(np.abs(np.linalg.eigvals(a))) >= 1.0:
            return math.inf
        b = np.array([-lr, 1.0])
        p = solve_discrete_lyapunov(a, ci * np.outer(b, b))
        total += 0.5 * float(hi) * float(p[0, 0])
    return float(total)


def adam_linearised_steady_state(
    lr: float,
    curvatures: ArrayLike,
    noise_var: ArrayLike,
    beta1: float = ADAM_BETAS[0],
    eps: float = ADAM_EPS,
) -> tuple[float, np.ndarray]:
    """Steady-state loss of Adam linearised at its self-consistent second moment, and the gains ``s_i``.

    In the ``t -> infinity`` limit (bias corrections 1) with the normaliser
    frozen at ``s = 1 / (sqrt(v) + eps)``, Adam is heavy ball with momentum
    ``beta1`` and learning rate ``lr s (1 - beta1)``; ``v = E[g^2] = h^2 Var +
    c`` closes the loop.  Solved per coordinate by Brent's method.

    Parameters
    ----------
    lr : float
        Learning rate.
    curvatures, noise_var : array_like
        ``h_i`` and ``c_i > 0`` (``noise_var`` broadcasts).
    beta1, eps : float
        Adam's first-moment coefficient and ``eps`` (added after the square root, as torch does).

    Returns
    -------
    (float, ndarray)
        The loss and the gains ``s_i``.

    Examples
    --------
    >>> from optfilters.papers.noisy_quadratic import adam_linearised_steady_state
    >>> loss, s = adam_linearised_steady_state(0.01, 1.0, 1.0)
    >>> round(loss, 6), s.round(6).tolist()
    (0.002494, [0.997515])
    """
    from scipy.optimize import brentq

    h, c = _arrays(curvatures, noise_var)
    gains = np.empty(h.size)
    loss = 0.0
    for i, (hi, ci) in enumerate(zip(h, c, strict=True)):

        def var(s: float, hi: float = hi, ci: float = ci) -> float:
            lr_eff = lr * s * (1.0 - beta1)
            return lr_eff * ci * (1.0 + beta1) / ((1.0 - beta1) * hi * (2.0 * (1.0 + beta1) - lr_eff * hi))

        def excess(s: float, hi: float = hi, ci: float = ci) -> float:
            return s - 1.0 / (math.sqrt(hi * hi * var(s) + ci) + eps)

        s_edge = 2.0 * (1.0 + beta1) / (lr * (1.0 - beta1) * hi)  # the frozen loop's edge: Var -> inf
        upper = min(1.0 / (math.sqrt(ci) + eps), s_edge * (1.0 - 1e-12))
        gains[i] = brentq(excess, 1e-300, upper, xtol=1e-300, rtol=4 * np.finfo(float).eps)
        loss += 0.5 * hi * var(float(gains[i]))
    return float(loss), gains


def sgd_trajectory(
    lrs: ArrayLike, curvatures: ArrayLike, noise_var: ArrayLike, init: float = 0.0, init_var: float = 1.0
) -> np.ndarray:
    """Expected loss of SGD at steps ``0..N`` for the learning rates ``lrs`` of steps ``1..N``.

    ``m' = (1 - lr_t h) m``, ``V' = (1 - lr_t h)^2 V + lr_t^2 c``, loss
    ``1/2 sum h (m^2 + V)``.

    Parameters
    ----------
    lrs : array_like
        Learning rate of each step.
    curvatures, noise_var : array_like
        ``h_i`` and ``c_i`` (``noise_var`` broadcasts).
    init, init_var : float
        Mean and variance of ``theta_0`` in every coordinate.

    Returns
    -------
    ndarray
        ``N + 1`` values.

    Examples
    --------
    >>> from optfilters.papers.noisy_quadratic import sgd_trajectory
    >>> sgd_trajectory([0.1, 0.1], 1.0, 1.0, init=0.0, init_var=0.0).round(6).tolist()
    [0.0, 0.005, 0.00905]
    """
    h, c = _arrays(curvatures, noise_var)
    m = np.full(h.size, float(init))
    v = np.full(h.size, float(init_var))
    out = [0.5 * float(np.sum(h * (m * m + v)))]
    for lr in np.asarray(lrs, dtype=np.float64):
        a = 1.0 - lr * h
        m, v = a * m, a * a * v + lr * lr * c
        out.append(0.5 * float(np.sum(h * (m * m + v))))
    return np.asarray(out)


def heavy_ball_trajectory(
    lrs: ArrayLike,
    beta: float,
    curvatures: ArrayLike,
    noise_var: ArrayLike,
    init: float = 0.0,
    init_var: float = 1.0,
) -> np.ndarray:
    """Expected loss of heavy ball (``v' = beta v + g``, ``theta' = theta - lr_t v'``, ``v_0 = 0``) at steps ``0..N``.

    The mean and the 2x2 covariance of ``(theta, v)`` propagate through
    ``A_t = [[1 - lr_t h, -lr_t beta], [h, beta]]``, ``B_t = [-lr_t, 1]``.
    (torch starts the buffer at the first gradient, which is the same as
    ``v_0 = 0``.)

    Parameters
    ----------
    lrs : array_like
        Learning rate of each step.
    beta : float
        Momentum.
    curvatures, noise_var : array_like
        ``h_i`` and ``c_i`` (``noise_var`` broadcasts).
    init, init_var : float
        Mean and variance of ``theta_0`` in every coordinate.

    Returns
    -------
    ndarray
        ``N + 1`` values.

    Examples
    --------
    >>> from optfilters.papers.noisy_quadratic import heavy_ball_trajectory
    >>> heavy_ball_trajectory([0.1, 0.1], 0.9, 1.0, 1.0, init=0.0, init_var=0.0).round(6).tolist()
    [0.0, 0.005, 0.0212]
    """
    h, c = _arrays(curvatures, noise_var)
    out = []
    mean = np.zeros((h.size, 2))
    mean[:, 0] = init
    cov = np.zeros((h.size, 2, 2))
    cov[:, 0, 0] = init_var
    out.append(0.5 * float(np.sum(h * (mean[:, 0] ** 2 + cov[:, 0, 0]))))
    for lr in np.asarray(lrs, dtype=np.float64):
        for i, (hi, ci) in enumerate(zip(h, c, strict=True)):
            a = np.array([[1.0 - lr * hi, -lr * beta], [hi, beta]])
            b = np.array([-lr, 1.0])
            mean[i] = a @ mean[i]
            cov[i] = a @ cov[i] @ a.T + ci * np.outer(b, b)
        out.append(0.5 * float(np.sum(h * (mean[:, 0] ** 2 + cov[:, 0, 0]))))
    return np.asarray(out)


def _closed_form(key: str, lr: float, h: np.ndarray, c: np.ndarray) -> float:
    if key == "sgd":
        return sgd_steady_state(lr, h, c)
    if key == "heavy_ball":
        return heavy_ball_steady_state(lr, BETA, h, c)
    return adam_linearised_steady_state(lr, h, c, ADAM_BETAS[0], ADAM_EPS)[0]


def _edge_closed_form(key: str, h_max: float) -> float:
    return {"sgd": 2.0 / h_max, "heavy_ball": 2.0 * (1.0 + BETA) / h_max}.get(key, math.nan)


# ----------------------------------------------------------------------------- experiments


def _steady_state_experiment(settings: dict[str, Any]) -> dict[str, Any]:
    """Figure 1's numbers: per optimizer and lr, the prediction, the closed form and the observed loss."""
    from optfilters.noisy_quadratic import predict, steady_state_loss
    from optfilters.observe import divergence_threshold, observe_quadratic, predicted_divergence_lr

    h = np.asarray(CURVATURES)
    c = h.copy()
    h_max = float(np.max(h))
    steps, seeds = settings["steps"], settings["seeds"]
    out: dict[str, Any] = {}
    for key, label, name, hp in OPTIMIZERS:
        linear = key != "adam"
        row: dict[str, Any] = {"label": label, "optimizer": name, "hyperparameters": dict(hp)}
        if linear:
            predicted_edge = predicted_divergence_lr(name, h_max, **hp)
            # The search starts two decades around 1/h_max (not at the prediction): geometric, then linear rounds.
            div = divergence_threshold(
                name, curvature=h_max, lr_range=(0.1 / h_max, 10.0 / h_max), **settings["divergence"], **hp
            )
            row["divergence"] = {
                "predicted_lr": predicted_edge,
                "closed_form_lr": _edge_closed_form(key, h_max),
                "observed_lr": div.observed_lr,
                "bracket": list(div.bracket),
                "relative_error": div.relative_error,
                "rounds": div.rounds,
                "steps": div.steps,
            }
            lrs = [f * predicted_edge for f in settings["fractions"]]
            dense = np.linspace(predicted_edge / 200.0, predicted_edge * 0.999, settings["dense"])
        else:
            row["divergence"] = None
            lrs = list(settings["adam_lrs"])
            dense = np.geomspace(min(lrs) / 1.5, max(lrs) * 1.5, settings["dense"])
        row["dense_lr"] = dense.tolist()
        row["dense_steady_state"] = [
            steady_state_loss(name, lr=float(x), curvatures=h, noise_var=c, **hp) for x in dense
        ]
        points = []
        for lr in lrs:
            steady = steady_state_loss(name, lr=lr, curvatures=h, noise_var=c, **hp)
            closed = _closed_form(key, lr, h, c)
            with progress(f"{label} lr={lr:.4g}: {seeds} seeds", steps) as advance:
                obs = observe_quadratic(
                    name,
                    lr=lr,
                    curvatures=h,
                    noise_var=c,
                    init=0.0,
                    steps=steps,
                    seeds=seeds,
                    seed=0,
                    progress=advance,
                    **hp,
                )
            at_n = float(obs.predicted_loss[-1])
            mean, se = float(obs.observed_mean_loss[-1]), float(obs.observed_stderr[-1])
            points.append(
                {
                    "lr": lr,
                    "steady_state": steady,
                    "closed_form": closed,
                    "closed_form_relative_difference": abs(steady - closed) / closed,
                    "predicted_at_step_n": at_n,
                    "transient_left": abs(at_n - steady) / steady,
                    "observed_mean": mean,
                    "observed_stderr": se,
                    "z": (mean - at_n) / se,
                    "relative_error": abs(mean - at_n) / mean,
                    "label": obs.label,
                }
            )
        row["points"] = points
        z = np.array([p["z"] for p in points])
        row["within_4_stderr"] = int(np.sum(np.abs(z) <= 4.0))
        row["count"] = len(points)
        row["fraction_within_4_stderr"] = float(np.mean(np.abs(z) <= 4.0))
        row["max_abs_z"] = float(np.max(np.abs(z)))
        row["max_relative_error"] = max(p["relative_error"] for p in points)
        row["max_closed_form_relative_difference"] = max(p["closed_form_relative_difference"] for p in points)
        row["max_transient_left"] = max(p["transient_left"] for p in points)
        if key == "heavy_ball":
            row["closed_form_vs_scipy_lyapunov"] = max(
                abs(heavy_ball_steady_state(p["lr"], BETA, h, c) - heavy_ball_lyapunov(p["lr"], BETA, h, c))
                / p["closed_form"]
                for p in points
            )
        if linear:
            beyond = BEYOND_EDGE * row["divergence"]["predicted_lr"]
            obs = observe_quadratic(
                name, lr=beyond, curvatures=h, noise_var=c, init=0.0, steps=steps, seeds=seeds, seed=0, **hp
            )
            prediction = predict(name, lr=beyond, curvatures=h, noise_var=c, init=0.0, steps=0, **hp)
            final = float(obs.observed_mean_loss[-1])
            row["beyond_edge"] = {
                "lr": beyond,
                "observed_mean": final if math.isfinite(final) else math.inf,
                "steady_state": prediction.steady_state_loss,
                "diverged": (not math.isfinite(final)) or final > 1e3 * points[-1]["observed_mean"],
            }
        out[key] = row
    return out


def _schedules(steps: int) -> dict[str, Any]:
    from optfilters.noisy_quadratic import cosine, step_decay

    return {"step": step_decay(max(steps // 4, 1), 0.3), "cosine": cosine(steps)}


def _trajectory_runs(steps: int) -> tuple[tuple[str, str, str, float, str | None], ...]:
    """(panel, run label, optimizer key, lr, schedule key) of figure 2."""
    sched = _schedules(steps)
    return (
        ("SGD, constant lr", "lr 0.3", "sgd", 0.3, None),
        ("SGD, constant lr", "lr 1.5", "sgd", 1.5, None),
        (f"heavy ball {BETA:g}, constant lr", "lr 0.05", "heavy_ball", 0.05, None),
        (f"heavy ball {BETA:g}, constant lr", "lr 0.5", "heavy_ball", 0.5, None),
        ("SGD lr 1.5, schedules", f"step decay {sched['step'].describe()}", "sgd", 1.5, "step"),
        ("SGD lr 1.5, schedules", sched["cosine"].describe(), "sgd", 1.5, "cosine"),
        ("Adam (linearised), constant lr", "lr 0.03", "adam", 0.03, None),
        ("Adam (linearised), constant lr", "lr 0.3", "adam", 0.3, None),
    )


def _trajectory_experiment(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    from optfilters.noisy_quadratic import steady_state_loss
    from optfilters.observe import observe_quadratic

    h = np.asarray(CURVATURES)
    c = h.copy()
    steps, seeds = settings["trajectory_steps"], settings["trajectory_seeds"]
    schedules = _schedules(steps)
    optimizers = {key: (name, hp) for key, _, name, hp in OPTIMIZERS}
    rows: dict[str, Any] = {}
    panels: dict[str, dict[str, Any]] = {}
    for panel, run_label, key, lr, sched in _trajectory_runs(steps):
        name, hp = optimizers[key]
        schedule = None if sched is None else schedules[sched]
        with progress(f"{key} {run_label}: {seeds} seeds", steps) as advance:
            obs = observe_quadratic(
                name,
                lr=lr,
                curvatures=h,
                noise_var=c,
                init=0.0,
                init_var=1.0,
                steps=steps,
                seeds=seeds,
                seed=1,
                schedule=schedule,
                progress=advance,
                **hp,
            )
        if key == "sgd":
            closed = sgd_trajectory(obs.lrs, h, c, 0.0, 1.0)
        elif key == "heavy_ball":
            closed = heavy_ball_trajectory(obs.lrs, BETA, h, c, 0.0, 1.0)
        else:
            closed = None
        row = {
            "panel": panel,
            "optimizer": name,
            "lr": lr,
            "schedule": None if schedule is None else schedule.describe(),
            "label": obs.label,
            "fraction_within_4_stderr": obs.fraction_within(4.0),
            "fraction_within_4_stderr_second_half": obs.fraction_within(4.0, start=steps // 2),
            "max_abs_z": float(np.max(np.abs(obs.z_scores[1:]))),
            "max_relative_error": float(np.max(obs.relative_error[1:])),
            "final_predicted": float(obs.predicted_loss[-1]),
            "final_observed": float(obs.observed_mean_loss[-1]),
            "final_stderr": float(obs.observed_stderr[-1]),
            "steady_state": steady_state_loss(name, lr=lr, curvatures=h, noise_var=c, **hp)
            if schedule is None
            else None,
            "closed_form_max_relative_difference": None
            if closed is None
            else float(np.max(np.abs(obs.predicted_loss - closed) / closed)),
        }
        rows[f"{key} {run_label}"] = row
        panels.setdefault(panel, {})[run_label] = (obs, row)
    return rows, panels


# ----------------------------------------------------------------------------- figures


def _figure_steady_state(rows: dict[str, Any], steps: int, out: Path, dpi: int) -> list[str]:
    import matplotlib.pyplot as plt

    from optfilters import plot

    with plot.style():
        fig, axes = plt.subplots(
            2, 3, figsize=(13.0, 6.4), sharex="col", gridspec_kw={"height_ratios": [3, 1.3]}, squeeze=False
        )
    for j, (key, row) in enumerate(rows.items()):
        ax, axz = axes[0, j], axes[1, j]
        colour = plot.PALETTE[j % len(plot.PALETTE)]
        dense = np.asarray(row["dense_lr"])
        steady = np.asarray(row["dense_steady_state"], dtype=np.float64)
        curve = "predicted steady state (linearised)" if key == "adam" else "predicted steady state (Lyapunov)"
        ax.plot(dense, steady, color=colour, linewidth=1.6, label=curve)
        lrs = np.array([p["lr"] for p in row["points"]])
        mean = np.array([p["observed_mean"] for p in row["points"]])
        se = np.array([p["observed_stderr"] for p in row["points"]])
        at_n = np.array([p["predicted_at_step_n"] for p in row["points"]])
        ax.plot(lrs, at_n, "o", mfc="none", mec="black", ms=8, mew=0.9, label=f"predicted at step {steps}")
        ax.errorbar(lrs, mean, yerr=2 * se, fmt="o", ms=3.5, color=colour, capsize=2, label="observed (mean ± 2 s.e.)")
        ax.set_yscale("log")
        ax.set_title(row["label"])
        axz.axhspan(-4, 4, color="0.9", zorder=0)
        axz.axhline(0.0, color="0.4", linewidth=0.8)
        axz.plot(lrs, [p["z"] for p in row["points"]], "o", color=colour, ms=4)
        axz.set_ylim(-6, 6)
        axz.set_yticks([-4, 0, 4])
        axz.set_ylabel("z (s.e.)")
        axz.set_xlabel("learning rate")
        if row["divergence"] is not None:
            div = row["divergence"]
            for a in (ax, axz):
                a.axvline(div["predicted_lr"], color="0.2", linestyle="--", linewidth=1.0)
                a.axvline(div["observed_lr"], color="tab:red", linestyle=":", linewidth=1.6)
            ax.plot(
                [], [], color="0.2", linestyle="--", linewidth=1.0, label=f"predicted edge {div['predicted_lr']:.6g}"
            )
            ax.plot(
                [], [], color="tab:red", linestyle=":", linewidth=1.6, label=f"observed edge {div['observed_lr']:.6g}"
            )
            beyond = row["beyond_edge"]
            top = ax.get_ylim()[1]
            if beyond["diverged"]:
                ax.plot([beyond["lr"]], [top], "^", color="tab:red", ms=7, clip_on=False, label="diverged (noisy run)")
            ax.set_ylim(top=top)
            ax.set_xlim(0.0, 1.05 * div["predicted_lr"])
        else:
            ax.set_xscale("log")
            ax.text(
                0.03,
                0.97,
                "no divergence: the normaliser\nrescales the step",
                transform=ax.transAxes,
                va="top",
                fontsize="small",
            )
        ax.legend(loc="lower right", fontsize="x-small")
    axes[0, 0].set_ylabel(f"loss at step {steps} (steady state)")
    return [save_figure(fig, out / "steady_state.png", dpi)]


def _figure_trajectories(panels: dict[str, dict[str, Any]], out: Path, dpi: int) -> list[str]:
    import matplotlib.pyplot as plt

    from optfilters import plot

    with plot.style():
        fig, axes = plt.subplots(2, 2, figsize=(11.0, 7.6), squeeze=False)
    for ax, (panel, runs) in zip(axes.ravel(), panels.items(), strict=True):
        result = plot.loss_comparison_plot({k: v[0] for k, v in runs.items()}, ax=ax, log=True, band=2.0, title=panel)
        for i, (_, row) in enumerate(runs.values()):
            if row["steady_state"] is not None and math.isfinite(row["steady_state"]):
                ax.axhline(row["steady_state"], color=plot.PALETTE[i % len(plot.PALETTE)], linestyle=":", linewidth=1)
        ax.plot([], [], color="0.4", linestyle=":", linewidth=1, label="steady state")
        if result.legend is not None:
            result.legend.remove()
        ax.legend(fontsize="x-small", loc="best")
    return [save_figure(fig, out / "trajectories.png", dpi)]


# ----------------------------------------------------------------------------- captions


def _g(value: Any, digits: int = 4) -> str:
    return caption_number(value, digits, yes_no=False, infinite="inf")


def _captions(numbers: dict[str, Any], settings: dict[str, Any], files: dict[str, list[str]]) -> str:
    steps = settings["steps"]
    lines = [
        f"# {TITLE}",
        "",
        "Model: L = 1/2 sum_i h_i theta_i^2 with h_i = 1/i, i = 1..10; gradient h theta + xi with white Gaussian "
        "noise of variance c_i = h_i per coordinate (the NQM's C = H at batch size 1). Observed: "
        "optfilters.observe.observe_quadratic, torch float64 through the bridge FilterOptimizer, "
        f"seed {numbers['seed']}. {'Quick (CI) settings.' if numbers['quick'] else 'Full settings.'}",
        "",
        f"## {', '.join(files['steady_state'])}",
        f"Loss against learning rate. Line: the predicted steady state (Lyapunov; Adam linearised at its "
        f"self-consistent second moment). Open circles: the predicted expected loss at step {steps} "
        f"(exact recursion from theta_0 = 0; for Adam the linearised mean-field 'tracking' prediction). Points: "
        f"observed mean loss at step {steps} over {settings['seeds']} seeds with 2 standard errors. Bottom: "
        "z = (observed - predicted at step N) / s.e.; grey band |z| <= 4. Dashed: the predicted divergence lr "
        "(optfilters.observe.predicted_divergence_lr on h_max = 1); red dotted: the observed one "
        "(optfilters.observe.divergence_threshold, multisection on noiseless torch runs at h_max); red triangle: "
        f"a noisy run at {BEYOND_EDGE:g} x the predicted edge diverged. Checks: the library's steady state against "
        "the closed forms (SGD sum lr c/(2(2 - lr h)); heavy ball sum (1+b) lr c/(2(1-b)(2(1+b) - lr h)), itself "
        "checked against SciPy's solve_discrete_lyapunov; Adam: heavy ball at lr s (1-b1) with "
        "s = 1/(sqrt(h^2 Var + c) + eps) solved by Brent), the observations within 4 s.e., the divergence lr.",
        "",
        "| optimizer | library vs closed form (max rel.) | transient left at step N | observed within 4 s.e. | "
        "max abs z | max rel. error | predicted divergence lr (closed form) | observed divergence lr (rel. error) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in numbers["steady_state"].values():
        div = row["divergence"]
        pred = "none" if div is None else f"{_g(div['predicted_lr'], 6)} ({_g(div['closed_form_lr'], 6)})"
        obs = "none" if div is None else f"{_g(div['observed_lr'], 6)} ({_g(div['relative_error'], 2)})"
        lines.append(
            f"| {row['label']} | {_g(row['max_closed_form_relative_difference'], 2)} | "
            f"{_g(row['max_transient_left'], 2)} | {row['within_4_stderr']}/{row['count']} | "
            f"{_g(row['max_abs_z'], 3)} | {_g(row['max_relative_error'], 3)} | {pred} | {obs} |"
        )
    hb = numbers["steady_state"]["heavy_ball"]
    lines += [
        "",
        f"Heavy-ball closed form against SciPy's Lyapunov solver: {_g(hb['closed_form_vs_scipy_lyapunov'], 2)} "
        "(max relative difference). Beyond the edge: "
        + "; ".join(
            f"{r['label']} at lr {_g(r['beyond_edge']['lr'], 4)}: observed loss "
            f"{_g(r['beyond_edge']['observed_mean'], 3)} "
            f"at step {steps} ({'diverged' if r['beyond_edge']['diverged'] else 'did not diverge'})"
            for r in numbers["steady_state"].values()
            if r["divergence"] is not None
        )
        + ". Adam (linearised) is an approximation: the real normaliser divides by sqrt of the random v_t, "
        "the prediction by sqrt(E[v_t]) (Jensen); a point outside 4 s.e. there measures the linearisation "
        "error, not noise.",
        "",
        "Per learning rate:",
        "",
        "| optimizer | lr | predicted steady state | closed form | predicted at step N | observed (s.e.) | z |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in numbers["steady_state"].values():
        for p in row["points"]:
            lines.append(
                f"| {row['label']} | {_g(p['lr'], 4)} | {_g(p['steady_state'], 6)} | {_g(p['closed_form'], 6)} | "
                f"{_g(p['predicted_at_step_n'], 6)} | {_g(p['observed_mean'], 5)} ({_g(p['observed_stderr'], 2)}) | "
                f"{p['z']:.2f} |"
            )
    lines += [
        "",
        f"## {', '.join(files['trajectories'])}",
        f"Expected loss over {settings['trajectory_steps']} steps from theta_0 ~ N(0, I) (as in the NQM notebook): "
        f"observed mean over {settings['trajectory_seeds']} seeds with a 2 s.e. band (solid), prediction "
        "(dashed, optfilters.observe.observe_quadratic / optfilters.plot.loss_comparison_plot), steady state "
        "of each constant lr (dotted). Panels: SGD at two lrs, heavy ball at two lrs, SGD at lr 1.5 with step "
        "decay and cosine schedules (the loss falls below the constant-lr floor as the lr decays), Adam "
        "(linearised, mean-field tracking). Checks: the prediction against independent recursions for SGD "
        "and heavy ball (with the schedules), the fraction of steps 1..N (and of the second half) within 4 s.e. "
        "Adam's linearised prediction is not exact: from a random start it misses the transient (at lr 0.03 the "
        "predicted loss falls faster than the observed one, by up to the max rel. error below), because the real "
        "normaliser divides by sqrt(v_t) of the random v_t, the prediction by sqrt(E[v_t]) (Jensen), and early "
        "v_t averages few squared gradients whose spread across seeds is large (each seed starts at its own "
        "theta_0); once the second moment has averaged many steps the two agree (second half). For the exact "
        "predictions an occasional step just beyond 4 s.e. is consistent with chance (hundreds of steps, "
        "correlated in time; a mean of squared Gaussians is skewed).",
        "",
        "| run | prediction | library vs recursion (max rel.) | within 4 s.e. (steps 1..N) | "
        "within 4 s.e. (second half) | max abs z | max rel. error | final predicted | final observed (s.e.) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, row in numbers["trajectories"].items():
        lines.append(
            f"| {label} | {row['label']} | {_g(row['closed_form_max_relative_difference'], 2)} | "
            f"{100 * row['fraction_within_4_stderr']:.1f}% | "
            f"{100 * row['fraction_within_4_stderr_second_half']:.1f}% | {_g(row['max_abs_z'], 3)} | "
            f"{_g(row['max_relative_error'], 3)} | {_g(row['final_predicted'], 5)} | "
            f"{_g(row['final_observed'], 5)} ({_g(row['final_stderr'], 2)}) |"
        )
    lines += [""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- entry points


def reproduce(out_dir: str | Path = "figures/noisy_quadratic", quick: bool = False) -> dict[str, Any]:
    """Run the noisy-quadratic experiments, write the figures, ``captions.md`` and ``numbers.json``.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created).
    quick : bool
        CI size: 3 learning rates per linear optimizer, 2 for Adam, 150
        steps, 256 seeds (seconds); the full size is 13 (9 for Adam), 600
        steps, 4096 seeds (under a minute on one core).

    Returns
    -------
    dict
        ``steady_state``: per optimizer (``sgd``, ``heavy_ball``, ``adam``)
        the ``points`` (per lr: ``steady_state``, ``closed_form``,
        ``predicted_at_step_n``, ``observed_mean``, ``observed_stderr``,
        ``z``), ``divergence`` (predicted, closed-form and observed lr) and
        summaries; ``trajectories``: per run the fraction of steps within 4
        s.e. and the library's difference from the independent recursion;
        ``files``, ``quick``, ``checks``.

    Examples
    --------
    >>> from optfilters.papers import noisy_quadratic
    >>> noisy_quadratic.CURVATURES[:2]
    (1.0, 0.5)
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = _settings(quick)
    steady = _steady_state_experiment(settings)
    trajectories, panels = _trajectory_experiment(settings)
    files = {
        "steady_state": _figure_steady_state(steady, settings["steps"], out, settings["dpi"]),
        "trajectories": _figure_trajectories(panels, out, settings["dpi"]),
    }
    numbers: dict[str, Any] = {
        "title": TITLE,
        "quick": quick,
        "seed": 0,
        "curvatures": list(CURVATURES),
        "noise_var": list(CURVATURES),
        "steps": settings["steps"],
        "seeds": settings["seeds"],
        "trajectory_steps": settings["trajectory_steps"],
        "trajectory_seeds": settings["trajectory_seeds"],
        "steady_state": steady,
        "trajectories": trajectories,
        "files": [name for group in files.values() for name in group] + ["captions.md", "numbers.json"],
    }
    numbers["checks"] = _checks(numbers)
    write_outputs(out, numbers, _captions(numbers, settings, files))
    return numbers


def _checks(n: dict[str, Any]) -> list[Check]:
    """Predictions against closed forms and the torch runs (the same bounds as this module's tests)."""
    out: list[Check] = []
    h_max = max(CURVATURES)
    for key, row in n["steady_state"].items():
        for p in row["points"]:
            tag = f"{row['label']} lr={p['lr']:.4g}"
            if key == "adam":
                out.append(Check.within(f"{tag}: observed vs linearised prediction", p["relative_error"], high=0.05))
                continue
            out.append(Check.close(f"{tag}: steady state vs closed form", p["steady_state"], p["closed_form"], 1e-10))
            z = abs(p["z"]) if math.isfinite(p["z"]) else None
            out.append(Check.within(f"{tag}: observed mean vs prediction (|z|)", z, high=4.0))
        div = row["divergence"]
        if div is not None:
            edge = _edge_closed_form(key, h_max)
            out.append(
                Check.close(f"{row['label']}: predicted divergence lr vs closed form", div["predicted_lr"], edge, 1e-12)
            )
            low, high = div["bracket"]
            out.append(
                Check.holds(f"{row['label']}: observed divergence bracket contains the edge", low < edge <= high)
            )
            out.append(Check.within(f"{row['label']}: observed divergence lr", div["relative_error"], high=2e-2))
            out.append(Check.holds(f"{row['label']}: diverges beyond the edge", row["beyond_edge"]["diverged"]))
    for label, row in n["trajectories"].items():
        if row["closed_form_max_relative_difference"] is not None:
            out.append(
                Check.within(
                    f"trajectory {label}: prediction vs independent recursion",
                    row["closed_form_max_relative_difference"],
                    high=1e-10,
                )
            )
            out.append(
                Check.within(
                    f"trajectory {label}: fraction of steps within 4 s.e.", row["fraction_within_4_stderr"], 0.9
                )
            )
        else:
            out.append(
                Check.within(f"trajectory {label}: linearised prediction error", row["max_relative_error"], high=0.4)
            )
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: ``[OUT_DIR] [--quick]``; prints the key numbers and the check summary; 1 when a check fails."""
    return run_source("noisy_quadratic", argv, _report)


def _report(numbers: dict[str, Any]) -> None:
    for row in numbers["steady_state"].values():
        div = row["divergence"]
        edge = "" if div is None else f"  edge predicted {div['predicted_lr']:.6g} observed {div['observed_lr']:.6g}"
        print(
            f"{row['label']:28s} closed form {row['max_closed_form_relative_difference']:.1e}  "
            f"within 4 s.e. {row['within_4_stderr']}/{row['count']}  max |z| {row['max_abs_z']:.2f}{edge}"
        )
    for label, row in numbers["trajectories"].items():
        print(f"{label:40s} within 4 s.e. {100 * row['fraction_within_4_stderr']:.1f}%")


if __name__ == "__main__":
    raise SystemExit(main())
