"""Copernicus Master "Introduction to Deep Learning", lecture 5: optimizers on a bowl and on Rosenbrock.

Reproduces the lecture's trajectory slides (C. Pelletier, "How to train a
network?", Copernicus Master on Digital Earth) through the PyTorch bridge
(:func:`optfilters.trajectory.run_trajectories`, which runs
:class:`optfilters.torch.FilterOptimizer`), and checks what they show against
closed forms:

* gradient descent on ``f = 10 x^2 + 100 y^2`` (curvatures ``h = 20`` and
  ``200``) at the lecture's ``lr = 0.001 .. 0.01`` plus ``0.011``: each
  coordinate contracts by exactly ``|1 - lr h|`` per step, read off the drawn
  paths, so ``y`` converges for ``lr < 2/200 = 0.01``, oscillates without decay
  at ``0.01`` and diverges above (``x``'s edge, ``2/20 = 0.1``, is far away);
* momentum at the lecture's ``lr = 0.0001 .. 0.004``, in the lecture's form
  (an EMA ``u_t = 0.9 u_{t-1} + 0.1 g_t``, ``u_0 = 0``:
  :meth:`optfilters.ArmaFilter.ema` as filtered gradient descent) and torch's
  heavy ball (``SGD(momentum=0.9)``, what the lecture's PyTorch slide uses): the
  two-term recurrence fitted to each run's coordinates has exactly the poles of
  :func:`optfilters.closed_loop.closed_loop` at ``lr h``, and the runs' envelopes
  decay at that rate; the EMA form at ``lr`` *is* the heavy ball at
  ``0.1 lr`` (same path to rounding);
* RMSprop (``beta = 0.99``) and Adam (``0.9, 0.99`` as on the slide) on both
  functions: the first step is ``10 lr`` (RMSprop, ``1/sqrt(1 - 0.99)``) and
  ``lr`` (Adam, bias-corrected) along every coordinate whatever its curvature;
* on Rosenbrock ``f = (x - 1)^2 + 10 (y - x^2)^2`` (minimum ``(1, 1)``,
  Hessian there ``[[82, -40], [-40, 20]]``, eigenvalues ``51 -+ sqrt(2561)`` =
  0.3937 and 101.61): the final distances to the minimum per lr, and gradient
  descent at ``lr = 0.02``: ``0.02 * 101.61 = 2.03 > 2``, so the minimum is
  unstable, yet the run neither converges nor diverges: it settles on a stable
  period-2 orbit ``p <-> q`` (found independently by Newton's method on
  ``T(T(p)) = p``; multipliers of modulus 0.990).  On any period-2 orbit the
  Hessian averaged over ``[p, q]`` has curvature exactly ``2 / lr = 100`` along
  the step; here the orbit's midpoint has slid 0.022 down the valley from the
  minimum, to where the largest curvature is 99.99 (it is 101.6 at the
  minimum and falls down the valley), and oscillates across the valley there:
  gradient descent at the edge of stability, in two dimensions.

The lecture text gives no starting points or step counts (only the figures):
the runs start from the library's ``(-1, 0.5)`` (bowl) and ``(-1.5, 2)``
(Rosenbrock).  The library's learning-rate grids
(:meth:`optfilters.trajectory.Function2D.lecture_grid`) equal the lecture's, checked
against the transcription :data:`LECTURE_GRIDS` (the RMSprop slide prints
``0.005, 0.0005, 0.05, 0.01, 0.05``: 0.05 twice, kept once).

Run ``python -m optfilters.papers.copernicus_l5 [OUT_DIR] [--quick]`` (or
``optfilters figures copernicus_l5``).

Numbers (full mode; bowl 100 steps for GD, 200 for the others; Rosenbrock
1000 steps; about 20 s on one core):

=====================================  ====================================  ===========================
check                                  closed form                           observed (run data)
=====================================  ====================================  ===========================
GD bowl, per-step contraction of y     ``|1 - 200 lr|``                      equal to 5e-16 (every step)
GD bowl, y converges / diverges        ``lr < 0.01`` / ``lr > 0.01``         0.001-0.009 / 0.011
momentum bowl, pole moduli             closed loop at ``lr h``               fitted recurrence, 1e-12
momentum bowl, envelope decay          same                                  within 0.9%
first step / lr (RMSprop, Adam)        10, 1 (up to eps)                     equal to 1e-13
Rosenbrock GD lr=0.02                  period-2 orbit, ``|q - p| = 0.0318``  run's last points within 4e-10
=====================================  ====================================  ===========================

Rosenbrock final distances to ``(1, 1)`` after 1000 steps at ``lr = 0.001,
0.005, 0.01, 0.02``: GD 1.7, 0.18, 0.023 and the 2-cycle (0.028); heavy ball
0.0195, 9e-13, 0, 0; the lecture's EMA momentum 1.71, 0.17, 0.0195, 2.1e-4.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from optfilters.papers import Check, caption_number, progress, run_source, save_figure, write_outputs

TITLE = "Copernicus Master Intro to DL, lecture 5: GD, momentum, RMSprop and Adam on a bowl and on Rosenbrock"

#: The lecture's learning rates, transcribed from the slides in their printed order: (function, optimizer) -> lrs.
LECTURE_GRIDS: dict[tuple[str, str], tuple[float, ...]] = {
    ("quadratic", "sgd"): (0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009, 0.01),
    ("quadratic", "momentum"): (0.0001, 0.0005, 0.001, 0.002, 0.003, 0.004),
    ("rosenbrock", "sgd"): (0.001, 0.005, 0.01, 0.02),
    ("rosenbrock", "momentum"): (0.001, 0.005, 0.01, 0.02),
    ("rosenbrock", "rmsprop"): (0.005, 0.0005, 0.05, 0.01, 0.05),
}

#: Learning rates beyond the lecture's grid for gradient descent on the bowl (above 2/200: divergence).
EXTRA_GD_LRS: tuple[float, ...] = (0.011,)

#: The lecture's momentum coefficient, RMSprop's beta and Adam's (beta1, beta2) ("0.99" on the slide).
MOMENTUM = 0.9
RMSPROP_ALPHA = 0.99
ADAM_BETAS = (0.9, 0.99)

#: Curvatures of the bowl f = 10 x^2 + 100 y^2 along x and y.
BOWL_CURVATURES = (20.0, 200.0)

#: Rosenbrock's valley steepness and the lr at which gradient descent is analysed near the minimum.
ROSENBROCK_B = 10.0
CYCLE_LR = 0.02

#: Relative tolerance deciding "marginal" (per-step contraction equal to 1).
MARGINAL_TOL = 1e-9


#: Learning-rate subsets of the quick (CI) mode: key -> lrs (None: the full grid).
QUICK_LRS: dict[str, tuple[float, ...]] = {
    "quadratic_gd": (0.001, 0.005, 0.009, 0.01, 0.011),
    "quadratic_momentum": (0.0001, 0.001, 0.004),
    "quadratic_adaptive": (0.005, 0.05),
    "rosenbrock_gd": (0.005, 0.02),
    "rosenbrock_momentum": (0.001, 0.01),
    "rosenbrock_adaptive": (0.005, 0.05),
}


def _settings(quick: bool) -> dict[str, int]:
    if quick:
        return {"gd_steps": 40, "momentum_steps": 120, "adaptive_steps": 60, "rosenbrock_steps": 150, "cycle": 800}
    return {"gd_steps": 100, "momentum_steps": 200, "adaptive_steps": 200, "rosenbrock_steps": 1000, "cycle": 4000}


def _lrs(key: str, full: tuple[float, ...], quick: bool) -> tuple[float, ...]:
    return QUICK_LRS[key] if quick else full


def _momentum_specs() -> dict[str, Any]:
    from optfilters import ArmaFilter

    return {
        "EMA momentum (lecture)": ArmaFilter.ema(MOMENTUM),
        "heavy ball (torch SGD)": ("momentum", {"momentum": MOMENTUM}),
    }


def _adaptive_specs() -> dict[str, Any]:
    return {
        "RMSprop": ("rmsprop", {"alpha": RMSPROP_ALPHA}),
        "Adam": ("adam", {"beta1": ADAM_BETAS[0], "beta2": ADAM_BETAS[1]}),
    }


def _loops() -> dict[str, Any]:
    from optfilters import ArmaFilter
    from optfilters.closed_loop import closed_loop

    return {
        "EMA momentum (lecture)": closed_loop(ArmaFilter.ema(MOMENTUM)),
        "heavy ball (torch SGD)": closed_loop("momentum", momentum=MOMENTUM),
    }


# ----------------------------------------------------------------------------- closed forms (independent)


def rosenbrock_gradient(p: Any, b: float = ROSENBROCK_B) -> np.ndarray:
    """Gradient of ``(x - 1)^2 + b (y - x^2)^2`` (the lecture's formula).

    Examples
    --------
    >>> from optfilters.papers.copernicus_l5 import rosenbrock_gradient
    >>> rosenbrock_gradient([0.0, 0.0]).tolist()
    [-2.0, 0.0]
    """
    x, y = (float(v) for v in p)
    return np.array([2.0 * (x - 1.0) - 4.0 * b * (y - x * x) * x, 2.0 * b * (y - x * x)])


def rosenbrock_hessian(p: Any, b: float = ROSENBROCK_B) -> np.ndarray:
    """Hessian of ``(x - 1)^2 + b (y - x^2)^2``: ``[[2 - 4b y + 12 b x^2, -4 b x], [-4 b x, 2 b]]``.

    Examples
    --------
    >>> from optfilters.papers.copernicus_l5 import rosenbrock_hessian
    >>> rosenbrock_hessian([1.0, 1.0]).tolist()
    [[82.0, -40.0], [-40.0, 20.0]]
    """
    x, y = (float(v) for v in p)
    return np.array([[2.0 - 4.0 * b * y + 12.0 * b * x * x, -4.0 * b * x], [-4.0 * b * x, 2.0 * b]])


def rosenbrock_minimum_curvatures(b: float = ROSENBROCK_B) -> tuple[float, float]:
    """Eigenvalues of the Hessian at ``(1, 1)``: ``[[2 + 8b, -4b], [-4b, 2b]]`` has trace ``2 + 10b``, det ``4b``.

    Examples
    --------
    >>> from optfilters.papers.copernicus_l5 import rosenbrock_minimum_curvatures
    >>> [round(v, 4) for v in rosenbrock_minimum_curvatures()]
    [0.3937, 101.6063]
    """
    trace, det = 2.0 + 10.0 * b, 4.0 * b
    root = math.sqrt(trace * trace - 4.0 * det)
    return (2.0 * det / (trace + root), 0.5 * (trace + root))


def period_two_orbit(lr: float, start: Any, b: float = ROSENBROCK_B) -> dict[str, Any]:
    """The period-2 orbit ``p -> q -> p`` of gradient descent on Rosenbrock, by Newton's method from ``start``.

    Newton on ``F(p) = T(T(p)) - p`` (``T(p) = p - lr grad f(p)``, Jacobian
    ``J(q) J(p) - I`` with ``J = I - lr H``).  Returns ``p``, ``q``, the
    residual, the orbit's multipliers (eigenvalues of ``J(q) J(p)``), the
    curvature of the Hessian averaged over the segment ``[p, q]`` along the step
    (``2 / lr`` on any period-2 orbit, since ``grad f(q) = -grad f(p)``), and
    where the orbit sits: its midpoint, the largest curvature there, and the
    midpoint's offset from ``(1, 1)`` along the soft and stiff eigenvectors of
    the Hessian at the minimum.

    Examples
    --------
    >>> from optfilters.papers.copernicus_l5 import period_two_orbit
    >>> o = period_two_orbit(0.02, [0.976, 0.987])
    >>> round(o["secant_curvature"], 9), o["stable"]
    (100.0, True)
    """
    if not (math.isfinite(lr) and lr > 0.0):
        raise ValueError(f"lr must be finite and > 0, got {lr!r}")
    eye = np.eye(2)

    def step(v: np.ndarray) -> np.ndarray:
        return v - lr * rosenbrock_gradient(v, b)

    def jac(v: np.ndarray) -> np.ndarray:
        return eye - lr * rosenbrock_hessian(v, b)

    p = np.asarray(start, dtype=np.float64).copy()
    if p.shape != (2,) or not np.all(np.isfinite(p)):
        raise ValueError(f"start must be two finite numbers, got {start!r}")
    for _ in range(100):
        q = step(p)
        delta = np.linalg.solve(jac(q) @ jac(p) - eye, -(step(q) - p))
        p = p + delta
        if np.max(np.abs(delta)) <= 1e-15 * (1.0 + np.max(np.abs(p))):
            break
    q = step(p)
    multipliers = np.linalg.eigvals(jac(q) @ jac(p))
    nodes, weights = np.polynomial.legendre.leggauss(3)  # exact: the Hessian is quadratic along a line
    mean_hessian = sum(
        0.5 * w * rosenbrock_hessian(p + 0.5 * (1.0 + s) * (q - p), b) for s, w in zip(nodes, weights, strict=True)
    )
    direction = (q - p) / np.linalg.norm(q - p)
    secant = float(direction @ mean_hessian @ direction)
    midpoint = 0.5 * (p + q)
    _, vectors = np.linalg.eigh(rosenbrock_hessian([1.0, 1.0], b))
    soft, stiff = vectors[:, 0], vectors[:, 1]
    soft = soft if soft[0] >= 0.0 else -soft  # pointing up the valley (x and y increasing)
    return {
        "p": p.tolist(),
        "q": q.tolist(),
        "residual": float(np.max(np.abs(step(q) - p))),
        "is_fixed_point": bool(np.linalg.norm(q - p) < 1e-9),
        "step_length": float(np.linalg.norm(q - p)),
        "distance_p": float(np.linalg.norm(p - 1.0)),
        "distance_q": float(np.linalg.norm(q - 1.0)),
        "multiplier_modulus": float(np.max(np.abs(multipliers))),
        "stable": bool(np.max(np.abs(multipliers)) < 1.0),
        "secant_curvature": secant,
        "secant_eigen_residual": float(np.linalg.norm(mean_hessian @ direction - secant * direction)),
        "direction": direction.tolist(),
        "midpoint": midpoint.tolist(),
        "midpoint_max_curvature": float(np.linalg.eigvalsh(rosenbrock_hessian(midpoint, b))[1]),
        "midpoint_offset_soft": float((midpoint - 1.0) @ soft),
        "midpoint_offset_stiff": float((midpoint - 1.0) @ stiff),
        "half_amplitude_stiff": float(abs((q - p) @ stiff) / 2.0),
    }


# ----------------------------------------------------------------------------- reading the runs


def contraction_ratios(series: Any, floor: float = 1e-250) -> np.ndarray:
    """``|s_{t+1} / s_t|`` over the steps where ``|s_t| > floor`` and both are finite.

    Examples
    --------
    >>> from optfilters.papers.copernicus_l5 import contraction_ratios
    >>> contraction_ratios([1.0, -0.5, 0.25]).tolist()
    [0.5, 0.5]
    """
    s = np.asarray(series, dtype=np.float64)
    prev, nxt = s[:-1], s[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = np.isfinite(prev) & np.isfinite(nxt) & (np.abs(prev) > floor)
        return np.asarray(np.abs(nxt[ok] / prev[ok]), dtype=np.float64)


def fitted_poles(series: Any) -> np.ndarray:
    """Poles of the recurrence ``s_{t+1} = a1 s_t + a2 s_{t-1}`` fitted (least squares) to ``s_1 ..``.

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters.papers.copernicus_l5 import fitted_poles
    >>> s = 0.9 ** np.arange(12) + 0.5 ** np.arange(12)
    >>> sorted(np.abs(fitted_poles(s)).round(9).tolist())
    [0.5, 0.9]
    """
    s = np.asarray(series, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size < 6:
        raise ValueError(f"series needs at least 6 finite values, got {s.size}")
    a = np.stack([s[1:-1], s[:-2]], axis=1)
    scale = np.max(np.abs(a), axis=1)
    keep = scale > 0.0
    coef = np.linalg.lstsq(a[keep] / scale[keep, None], s[2:][keep] / scale[keep], rcond=None)[0]
    return np.roots([1.0, -coef[0], -coef[1]])


def envelope_rate(series: Any) -> float:
    """Geometric decay of ``||(s_t, s_{t-1})||`` over the second half of a run (least-squares slope of its log).

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters.papers.copernicus_l5 import envelope_rate
    >>> round(envelope_rate(0.95 ** np.arange(100)), 12)
    0.95
    """
    s = np.asarray(series, dtype=np.float64)
    norm = np.hypot(s[1:], s[:-1])
    t = np.arange(norm.size)
    half = t >= norm.size // 2
    ok = half & np.isfinite(norm) & (norm > 0.0)
    if ok.sum() < 3:
        return math.nan
    return float(np.exp(np.polyfit(t[ok], np.log(norm[ok]), 1)[0]))


def _status(rate_max: float, rate_min: float) -> str:
    if rate_max < 1.0 - MARGINAL_TOL:
        return "converges"
    if rate_min > 1.0 + MARGINAL_TOL:
        return "diverges"
    return "marginal"


def _predicted_status(lr: float, h: float) -> str:
    x = lr * h
    if math.isclose(x, 2.0, rel_tol=MARGINAL_TOL):
        return "marginal"
    return "converges" if x < 2.0 else "diverges"


# ----------------------------------------------------------------------------- figures


def _trajectory_figure(
    function: str, optimizers: Any, lrs: Any, steps: int, path: Path, dpi: int, **kwargs: Any
) -> tuple[str, Any]:
    from optfilters import plot
    from optfilters.trajectory import run_trajectories

    with progress(f"{path.name}: {len(optimizers) * len(lrs)} runs of {steps} steps", 1) as advance:
        result = plot.trajectories_plot(run_trajectories(function, optimizers, lrs, steps=steps), **kwargs)
        advance(1)
    runs = result.data["runs"]
    return save_figure(result.figure, path, dpi), runs


def _contraction_figure(gd_rows: list[dict[str, Any]], runs: list[Any], path: Path, dpi: int) -> str:
    import matplotlib.pyplot as plt

    from optfilters import plot

    with plot.style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(11.0, 4.0))
        shown = [i for i, row in enumerate(gd_rows) if row["lr"] in (0.002, 0.004, 0.007, 0.009, 0.01, 0.011)]
        for k, i in enumerate(shown):
            run, row = runs[i], gd_rows[i]
            colour = plot.PALETTE[k % len(plot.PALETTE)]
            y = np.abs(run.params[:, 1])
            t = np.arange(y.size)
            left.semilogy(t, np.where(y > 0.0, y, np.nan), color=colour, linewidth=1.4, label=f"lr={row['lr']:g}")
            with np.errstate(divide="ignore"):
                predicted = abs(run.params[0, 1]) * row["contraction_y_closed_form"] ** t
            left.semilogy(t, predicted, color="black", linestyle=":", linewidth=0.9, label="_predicted")
        left.plot([], [], color="black", linestyle=":", linewidth=0.9, label="|y0| |1 - 200 lr|^t")
        left.set_ylim(1e-16, 1e7)
        left.set_xlabel("step t")
        left.set_ylabel("|y_t| (distance along the stiff axis)")
        left.set_title("GD on f = 10 x^2 + 100 y^2: |y_t| against |1 - 200 lr|^t")
        left.legend(fontsize="small", ncols=2, loc="lower left")
        lr_line = np.linspace(0.0, 0.0125, 400)
        right.plot(lr_line, np.abs(1.0 - 200.0 * lr_line), color=plot.PALETTE[0], label="|1 - 200 lr| (y)")
        right.plot(lr_line, np.abs(1.0 - 20.0 * lr_line), color=plot.PALETTE[1], label="|1 - 20 lr| (x)")
        lrs = [row["lr"] for row in gd_rows]
        right.plot(lrs, [row["contraction_y_observed"] for row in gd_rows], "o", color=plot.PALETTE[0], label="run: y")
        right.plot(lrs, [row["contraction_x_observed"] for row in gd_rows], "s", color=plot.PALETTE[1], label="run: x")
        right.axhline(1.0, color="0.45", linestyle="--", linewidth=0.9)
        right.axvline(0.01, color="0.45", linestyle=":", linewidth=0.9)
        right.text(0.0101, 0.05, "2/200", fontsize="small", color="0.3")
        right.set_xlabel("learning rate")
        right.set_ylabel("per-step contraction |s_{t+1} / s_t|")
        right.set_title("contraction read off the runs (markers)")
        right.set_ylim(0.0, 1.3)
        right.legend(fontsize="small", loc="upper left")
        result = plot.PlotResult(fig, (left, right))
    return save_figure(result.figure, path, dpi)


def _momentum_rate_figure(rows: list[dict[str, Any]], path: Path, dpi: int) -> str:
    import matplotlib.pyplot as plt

    from optfilters import plot

    loops = _loops()
    x = np.geomspace(1e-5, 60.0, 600)
    curves = {label: loop.rate_curve(x) for label, loop in loops.items()}
    with plot.style():
        _, ax = plt.subplots(figsize=(7.6, 4.4))
    result = plot.closed_loop_rate_plot(curves, ax=ax, log=True, shade=False, ymax=1.06, title=None)
    ax.set_ylim(0.88, 1.06)
    markers = {20.0: "s", 200.0: "o"}
    for i, label in enumerate(loops):
        colour = plot.PALETTE[i]
        for h, marker in markers.items():
            sel = [r for r in rows if r["optimizer"] == label and r["curvature"] == h]
            ax.plot(
                [r["lr_curvature"] for r in sel],
                [r["envelope_rate"] for r in sel],
                marker,
                color=colour,
                markerfacecolor="none" if h == 20.0 else colour,
                markersize=6,
                linestyle="none",
                label=f"{label}: runs, {'x (h=20)' if h == 20.0 else 'y (h=200)'}",
            )
        edge = loops[label].stability().max_stable_lr_curvature
        ax.axvline(edge, color=colour, linestyle=":", linewidth=1.0)
        ax.text(edge * 1.05, 0.895, f"edge {edge:.3g}", color=colour, fontsize="small", rotation=90, va="bottom")
    ax.axhline(math.sqrt(MOMENTUM), color="0.45", linestyle="-.", linewidth=0.8)
    ax.text(1.2e-5, math.sqrt(MOMENTUM) - 0.008, "sqrt(0.9) = 0.9487", fontsize="small", color="0.3")
    ax.set_title("Momentum (beta = 0.9) on the bowl: closed-loop rate vs envelope decay of the runs")
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=2)
    return save_figure(result.figure, path, dpi)


def _rosenbrock_distance_figure(
    gd_runs: list[Any], momentum_runs: list[list[Any]], cycle_run: Any, orbit: dict[str, Any], path: Path, dpi: int
) -> str:
    import matplotlib.pyplot as plt

    from optfilters import plot

    with plot.style():
        fig, axes = plt.subplots(1, 3, figsize=(15.0, 4.2))
        left, middle, right = axes
        for i, run in enumerate(gd_runs):
            d = np.linalg.norm(run.params - 1.0, axis=1)
            left.semilogy(np.where(d > 0.0, d, np.nan), color=plot.PALETTE[i], linewidth=1.2, label=f"lr={run.lr:g}")
        left.axhline(orbit["distance_p"], color="0.45", linestyle=":", linewidth=0.9)
        left.set_title("gradient descent")
        styles = ("--", "-")  # the lecture's EMA form first, then torch's heavy ball
        for j, row in enumerate(momentum_runs):
            for k, run in enumerate(row):
                d = np.linalg.norm(run.params - 1.0, axis=1)
                middle.semilogy(
                    np.where(d > 0.0, d, np.nan),
                    color=plot.PALETTE[k % len(plot.PALETTE)],
                    linestyle=styles[j],
                    linewidth=1.2,
                    label=f"{run.optimizer}, lr={run.lr:g}",
                )
        middle.set_title("momentum (beta = 0.9): lecture's EMA (dashed), heavy ball (solid)")
        for axis in (left, middle):
            axis.set_xlabel("step")
            axis.set_ylabel("distance to the minimum (1, 1)")
        left.legend(fontsize="small", loc="lower left")
        left.set_ylim(1e-4, 10.0)
        left.text(
            0.98 * len(gd_runs[0].params), orbit["distance_p"] * 1.7, "2-cycle (lr=0.02)", ha="right", fontsize="small"
        )
        middle.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=2)
        middle.set_ylim(1e-16, 10.0)
        tail = cycle_run.params[-40:]
        right.plot(
            tail[:, 0], tail[:, 1], "-o", color=plot.PALETTE[0], markersize=3, linewidth=0.8, label="run, last 40"
        )
        p, q = np.array(orbit["p"]), np.array(orbit["q"])
        right.plot(
            [p[0], q[0]], [p[1], q[1]], "x", color=plot.PALETTE[1], markersize=10, mew=2, label="2-cycle (Newton)"
        )
        right.plot(1.0, 1.0, "*", color="black", markersize=11, label="minimum (1, 1)")
        vals, vecs = np.linalg.eigh(rosenbrock_hessian([1.0, 1.0]))
        span = 0.045
        for k, (style, name) in enumerate((("-.", "soft"), ("--", "stiff"))):
            v = vecs[:, k]
            right.plot(
                [1.0 - span * v[0], 1.0 + span * v[0]],
                [1.0 - span * v[1], 1.0 + span * v[1]],
                color="0.45",
                linestyle=style,
                linewidth=1.0,
                label=f"{name} eigenvector at (1, 1) (h={vals[k]:.4g})",
            )
        mid = np.array(orbit["midpoint"])
        right.plot(
            *mid,
            "d",
            color=plot.PALETTE[2],
            markersize=6,
            label=f"orbit midpoint (h_max={orbit['midpoint_max_curvature']:.4g})",
        )
        right.set_aspect("equal")
        right.set_xlabel("x")
        right.set_ylabel("y")
        right.set_title(f"GD lr={CYCLE_LR:g}, steps {cycle_run.steps - 39}-{cycle_run.steps}: period-2 orbit")
        right.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=2)
        result = plot.PlotResult(fig, tuple(axes))
    return save_figure(result.figure, path, dpi)


# ----------------------------------------------------------------------------- checks


def _grid_check() -> dict[str, Any]:
    from optfilters.trajectory import get_function

    out: dict[str, Any] = {}
    for (fname, opt), lrs in LECTURE_GRIDS.items():
        library = tuple(get_function(fname).lecture_grid(opt))
        out[f"{fname}/{opt}"] = {
            "lecture": list(lrs),
            "library": list(library),
            "match": tuple(sorted(set(lrs))) == library,
        }
    return out


def _gd_rows(runs: list[Any]) -> list[dict[str, Any]]:
    hx, hy = BOWL_CURVATURES
    rows = []
    for run in runs:
        lr = run.lr
        ry, rx = contraction_ratios(run.params[:, 1]), contraction_ratios(run.params[:, 0])
        cy, cx = abs(1.0 - hy * lr), abs(1.0 - hx * lr)
        rows.append(
            {
                "lr": lr,
                "steps": run.steps,
                "stopped": run.stopped,
                "contraction_y_closed_form": cy,
                "contraction_y_observed": float(np.median(ry)),
                "contraction_y_max_error": float(np.max(np.abs(ry - cy))),
                "contraction_x_closed_form": cx,
                "contraction_x_observed": float(np.median(rx)),
                "contraction_x_max_error": float(np.max(np.abs(rx - cx))),
                "status_y_observed": _status(float(ry.max()), float(ry.min())),
                "status_y_predicted": _predicted_status(lr, hy),
                "status_x_observed": _status(float(rx.max()), float(rx.min())),
                "status_x_predicted": _predicted_status(lr, hx),
                "initial_abs_y": float(abs(run.params[0, 1])),
                "final_abs_y": float(abs(run.params[-1, 1])),
                "final_abs_x": float(abs(run.params[-1, 0])),
            }
        )
    return rows


def _momentum_rows(runs: list[list[Any]], labels: list[str]) -> list[dict[str, Any]]:
    loops = _loops()
    rows = []
    for label, row in zip(labels, runs, strict=True):
        loop = loops[label]
        edge = loop.stability().max_stable_lr_curvature
        for run in row:
            for k, h in enumerate(BOWL_CURVATURES):
                x = run.lr * h
                s = run.params[:, k]
                predicted = np.sort(np.abs(loop.poles(x)))
                fitted = np.sort(np.abs(fitted_poles(s)))
                closed_rate = float(loop.rate(x))
                observed = envelope_rate(s)
                rows.append(
                    {
                        "optimizer": label,
                        "lr": run.lr,
                        "curvature": h,
                        "coordinate": "xy"[k],
                        "lr_curvature": x,
                        "closed_loop_rate": closed_rate,
                        "complex_poles": bool(np.any(np.abs(loop.poles(x).imag) > 0.0)),
                        "stable_edge": edge,
                        "stable_predicted": bool(x < edge),
                        "fitted_rate": float(fitted[-1]),
                        "fitted_pole_error": float(np.max(np.abs(fitted - predicted))),
                        "envelope_rate": observed,
                        "envelope_relative_error": abs(observed - closed_rate) / closed_rate,
                        "final_abs": float(abs(s[-1])),
                        "initial_abs": float(abs(s[0])),
                    }
                )
    return rows


def _first_step_rows(runs: list[list[Any]], labels: list[str]) -> list[dict[str, Any]]:
    from optfilters.trajectory import quadratic_bowl

    f = quadratic_bowl()
    eps = 1e-8
    rows = []
    for label, row in zip(labels, runs, strict=True):
        for run in row:
            g = np.abs(np.array(f.gradient(*run.params[0]), dtype=float))
            if label == "RMSprop":
                closed = g / (math.sqrt(1.0 - RMSPROP_ALPHA) * g + eps)
            else:
                closed = g / (g + eps)
            observed = np.abs(run.params[1] - run.params[0]) / run.lr
            rows.append(
                {
                    "optimizer": label,
                    "lr": run.lr,
                    "first_step_over_lr_observed": observed.tolist(),
                    "first_step_over_lr_closed_form": closed.tolist(),
                    "first_step_max_relative_error": float(np.max(np.abs(observed - closed) / closed)),
                    "final_distance": float(np.linalg.norm(run.params[-1])),
                    "final_loss": float(run.final_loss),
                    "diverged": run.diverged,
                }
            )
    return rows


def _rosenbrock_status(d: np.ndarray, params: np.ndarray, diverged: bool) -> tuple[str, float, float]:
    last_step = float(np.linalg.norm(params[-1] - params[-2]))
    period2 = float(np.linalg.norm(params[-1] - params[-3]))
    if diverged:
        return "diverged", last_step, period2
    if d[-1] < 1e-8:
        return "converged", last_step, period2
    if last_step > 1e-6 and period2 < 1e-3 * last_step:
        return "period-2 oscillation", last_step, period2
    tail = d[-max(10, d.size // 10) :]
    if tail[-1] < tail[0]:
        return "approaching (distance still falling)", last_step, period2
    return "hovering (distance not falling)", last_step, period2


def _rosenbrock_rows(family: str, runs: list[list[Any]], edges: dict[str, tuple[float, bool]]) -> list[dict[str, Any]]:
    lam_max = rosenbrock_minimum_curvatures()[1]
    rows = []
    for row in runs:
        for run in row:
            d = np.linalg.norm(run.params - 1.0, axis=1)
            status, last_step, period2 = _rosenbrock_status(d, run.params, run.diverged)
            edge, preconditioned = edges[run.optimizer]
            tail = d[-max(10, d.size // 10) :]
            rows.append(
                {
                    "family": family,
                    "optimizer": run.optimizer,
                    "lr": run.lr,
                    "steps": run.steps,
                    "final_distance": float(d[-1]),
                    "tail_max_distance": float(tail.max()),
                    "last_step_length": last_step,
                    "period2_residual": period2,
                    "diverged": run.diverged,
                    "status": status,
                    "lr_times_max_curvature": run.lr * lam_max,
                    "edge": edge,
                    "edge_is_preconditioned": preconditioned,
                    "stable_at_minimum_predicted": None if preconditioned else bool(run.lr * lam_max < edge),
                }
            )
    return rows


def _max_path_difference(a: Any, b: Any) -> float:
    n = min(a.params.shape[0], b.params.shape[0])
    return float(np.max(np.abs(a.params[:n] - b.params[:n])))


def _find(runs: list[list[Any]], label: str, lr: float) -> Any:
    for row in runs:
        for run in row:
            if run.optimizer == label and math.isclose(run.lr, lr, rel_tol=1e-12):
                return run
    raise KeyError(f"no run {label} at lr={lr}")


# ----------------------------------------------------------------------------- captions


def _g(value: Any, digits: int = 4) -> str:
    return caption_number(value, digits)


def _captions(n: dict[str, Any]) -> str:
    s = n["settings"]
    lines = [
        f"# {TITLE}",
        "",
        "Runs through the PyTorch bridge (optfilters.torch.FilterOptimizer, float64, gradients by autograd) from "
        "the library's starting points (-1, 0.5) on the bowl and (-1.5, 2) on Rosenbrock (the lecture text gives no "
        f"starting point or step count). {'Quick (CI) settings.' if n['quick'] else 'Full settings.'} "
        "The learning-rate grids are the lecture's; the library's grids (Function2D.lecture_grid) were compared with "
        "the transcription of the slides:",
        "",
        "| function / optimizer | lecture (as printed) | library | match |",
        "|---|---|---|---|",
    ]
    for key, g in n["grids"].items():
        lines.append(
            f"| {key} | {', '.join(f'{v:g}' for v in g['lecture'])} | {', '.join(f'{v:g}' for v in g['library'])} "
            f"| {_g(g['match'])} |"
        )
    lines += [
        "",
        "(The RMSprop slide prints 0.05 twice; the library keeps it once. The slides put the RMSprop runs after "
        "Rosenbrock; they are drawn on both functions here. The lecture shows no Adam runs: Adam is drawn at the "
        "RMSprop grid with the slide's beta1 = 0.9, beta2 = 0.99; the slide's claim that the original paper uses "
        "beta2 = 0.99 is wrong: Kingma & Ba use 0.999.)",
        "",
        "## quadratic_gd.png",
        f"Gradient descent on f = 10 x^2 + 100 y^2 ({s['gd_steps']} steps) at the lecture's lr = 0.001 .. 0.01 and "
        "0.011 (beyond the lecture). The curvatures are 20 (x) and 200 (y): y converges for lr < 2/200 = 0.01, "
        "bounces between +-0.5 without decay at 0.01, and diverges at 0.011 (the path leaves the view; the run "
        "stops once a coordinate exceeds 1e6). x converges at every lr shown (edge 2/20 = 0.1).",
        "",
        "## quadratic_gd_contraction.png",
        "Left: |y_t| of the runs (log scale) with |y_0| |1 - 200 lr|^t dotted. Right: the per-step contraction "
        "|s_{t+1}/s_t| read off each run (markers, median over the steps) against |1 - 200 lr| (y) and "
        "|1 - 20 lr| (x). Every ratio of every step equals the closed form to the error below (at lr = 0.005, "
        "1 - 200 lr = 0: y is 1e-17 after one step).",
        "",
        "| lr | y: \\|1-200lr\\| | y: observed | max error | y predicted / observed | x: \\|1-20lr\\| | x max error |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in n["quadratic_gd"]:
        lines.append(
            f"| {r['lr']:g} | {_g(r['contraction_y_closed_form'], 6)} | {_g(r['contraction_y_observed'], 6)} | "
            f"{_g(r['contraction_y_max_error'], 2)} | {r['status_y_predicted']} / {r['status_y_observed']} | "
            f"{_g(r['contraction_x_closed_form'], 6)} | {_g(r['contraction_x_max_error'], 2)} |"
        )
    mom = n["quadratic_momentum"]
    lines += [
        "",
        "## quadratic_momentum.png",
        f"Momentum (beta = 0.9) on the bowl at the lecture's lr = 0.0001 .. 0.004 ({s['momentum_steps']} steps). "
        "Top: the lecture's form u_t = 0.9 u_{t-1} + 0.1 g_t, u_0 = 0, w -= lr u_t (an EMA of the gradients; "
        "ArmaFilter.ema(0.9) run as filtered gradient descent). Bottom: torch's heavy ball SGD(momentum=0.9), "
        "buf = 0.9 buf + g, which the lecture's PyTorch slide uses: the same closed loop at 10 times the "
        "learning rate, so the EMA form at lr is exactly the heavy ball at 0.1 lr (max path difference between EMA "
        f"at 0.001 and heavy ball at 0.0001: {_g(n['ema_equals_heavy_ball']['bowl'], 2)}). Every run is stable "
        "(edges lr h < 38 and 3.8).",
        "",
        "## quadratic_momentum_rate.png",
        "Closed-loop convergence rate (largest |pole| from optfilters.closed_loop) against lr h for both forms, "
        "with the envelope decay of every run (markers: exp of the least-squares slope of log ||(s_t, s_{t-1})|| "
        "over the second half of the run; open squares x, h = 20; filled circles y, h = 200). Inside the complex "
        "band (1 - sqrt(0.9))^2 < lr h (heavy ball; 10 lr h for the EMA) < (1 + sqrt(0.9))^2 the rate is "
        "sqrt(0.9) = 0.9487. The envelope estimate oscillates with the phase of complex poles (a log-periodic "
        "factor over a finite window), hence deviations up to about 1%; the two-term recurrence fitted to each "
        "run has the closed loop's pole moduli to the error in the table.",
        "",
        "| form | lr | coordinate | lr h | closed-loop rate | complex | fitted-pole error | envelope rate | "
        "envelope rel. error |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in mom:
        lines.append(
            f"| {r['optimizer']} | {r['lr']:g} | {r['coordinate']} | {_g(r['lr_curvature'])} | "
            f"{_g(r['closed_loop_rate'], 6)} | {_g(r['complex_poles'])} | {_g(r['fitted_pole_error'], 2)} | "
            f"{_g(r['envelope_rate'], 6)} | {_g(r['envelope_relative_error'], 2)} |"
        )
    lines += [
        "",
        "## quadratic_adaptive.png",
        f"RMSprop (beta = 0.99, eps = 1e-8) and Adam (0.9, 0.99) on the bowl ({s['adaptive_steps']} steps) at the "
        "RMSprop slide's grid. Both normalise each coordinate by its own gradient scale, so the first step has the "
        "same length along x and y whatever the curvature: lr |g|/(sqrt(1 - 0.99) |g| + eps) = 10 lr (RMSprop, "
        "no bias correction) and lr |g| / (|g| + eps) = lr (Adam, bias-corrected), checked on the runs:",
        "",
        "| optimizer | lr | first step / lr (x, y), run | closed form | max rel. error | final distance to 0 |",
        "|---|---|---|---|---|---|",
    ]
    for r in n["quadratic_adaptive"]:
        obs = ", ".join(f"{v:.12g}" for v in r["first_step_over_lr_observed"])
        cf = ", ".join(f"{v:.12g}" for v in r["first_step_over_lr_closed_form"])
        lines.append(
            f"| {r['optimizer']} | {r['lr']:g} | {obs} | {cf} | {_g(r['first_step_max_relative_error'], 2)} | "
            f"{_g(r['final_distance'], 3)} |"
        )
    ros = n["rosenbrock"]
    cyc = ros["cycle"]
    lam = ros["minimum_curvatures"]
    lines += [
        "",
        "## rosenbrock_gd.png, rosenbrock_momentum.png, rosenbrock_adaptive.png",
        f"The lecture's runs on f = (x - 1)^2 + 10 (y - x^2)^2 ({s['rosenbrock_steps']} steps): gradient descent and "
        "momentum (lecture's EMA form and torch's heavy ball) at lr = 0.001, 0.005, 0.01, 0.02, RMSprop and Adam at "
        "0.0005, 0.005, 0.01, 0.05. At the minimum (1, 1) the Hessian [[2 + 8b, -4b], [-4b, 2b]] = [[82, -40], "
        f"[-40, 20]] has eigenvalues (102 -+ sqrt(102^2 - 160))/2 = {lam[0]:.6g} and {lam[1]:.6g} (library's "
        f"Function2D.curvatures agrees to {_g(ros['curvature_check_error'], 2)}), so near the minimum gradient "
        f"descent is stable for lr < 2/{lam[1]:.4g} = {2 / lam[1]:.5g}, heavy ball for lr < 3.8/{lam[1]:.4g} = "
        f"{3.8 / lam[1]:.4g} and the EMA form for lr < 38/{lam[1]:.4g} = {38 / lam[1]:.4g}; the soft direction "
        f"(h = {lam[0]:.4g}) sets the slow final approach. Heavy ball at 0.001 and the EMA form at 0.01 follow the "
        f"same path (max difference {_g(n['ema_equals_heavy_ball']['rosenbrock'], 2)}).",
        "",
        "| optimizer | lr | lr * h_max | near-minimum edge | final distance to (1, 1) | max distance, last 10% | "
        "last step | status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in ros["runs"]:
        lines.append(
            f"| {r['optimizer']} | {r['lr']:g} | {_g(r['lr_times_max_curvature'])} | {_g(r['edge'])}"
            f"{' (preconditioned)' if r['edge_is_preconditioned'] else ''} | "
            f"{_g(r['final_distance'], 3)} | {_g(r['tail_max_distance'], 3)} | {_g(r['last_step_length'], 3)} | "
            f"{r['status']} |"
        )
    lines += [
        "",
        "Heavy ball is the fastest (all four lrs are below its near-minimum edge 3.8/h_max = 0.0374; at 0.005 to "
        "0.02 it reaches the minimum to 1e-12); the lecture's EMA form is heavy ball at 0.1 lr, hence slower. "
        "RMSprop and Adam have no fixed edge in "
        "lr h: linearised with the normaliser frozen (optfilters.closed_loop), their loop is stable for the "
        "preconditioned lr h / (sqrt(v) + eps) < 2 (RMSprop) and < 38 (Adam, beta1 = 0.9), and near the minimum v "
        "shrinks with the gradients, so the preconditioned curvature grows until the loop reaches that edge: with a "
        "constant lr they need not settle, and runs that stop falling hover at a distance set by lr (the 'hovering' "
        "rows; the same adaptive edge of stability as Cohen et al. 2022).",
        "",
        "## rosenbrock_distance.png",
        "Distance to (1, 1) against the step for gradient descent (left) and momentum (middle), and the last 40 "
        f"iterates of a {cyc['steps']}-step gradient-descent run at lr = {CYCLE_LR:g} with the Newton orbit, its "
        "midpoint and the Hessian's eigenvectors at (1, 1) (right). At lr = 0.02, "
        f"lr h_max = {cyc['lr_times_max_curvature']:.4g} > 2: the minimum is linearly unstable (the multiplier "
        f"along the stiff eigenvector is 1 - lr h_max = {1 - cyc['lr_times_max_curvature']:.4g}), yet the run "
        "neither converges nor diverges: it settles on a period-2 orbit p <-> q. Newton's method on T(T(p)) = p "
        f"(T the GD map with the lecture's gradient formula, started from the run's last-but-one point) gives "
        f"p = ({cyc['p'][0]:.6f}, {cyc['p'][1]:.6f}), q = ({cyc['q'][0]:.6f}, {cyc['q'][1]:.6f}) (residual "
        f"{_g(cyc['residual'], 2)}), |q - p| = {cyc['step_length']:.4g}, at distances {cyc['distance_p']:.4g} and "
        f"{cyc['distance_q']:.4g} from the minimum; the run's last two points are within "
        f"{_g(cyc['run_to_orbit'], 2)} of it. The orbit is stable: the multipliers of the two-step map "
        f"(eigenvalues of J(q) J(p), J = I - lr H) have modulus {cyc['multiplier_modulus']:.4f} < 1. Why it exists: "
        "on any period-2 orbit grad f(q) = -grad f(p), so the Hessian averaged over the segment [p, q] has "
        f"curvature exactly 2/lr = {2 / CYCLE_LR:g} along the step (computed: {cyc['secant_curvature']:.12g}, "
        f"eigenvector residual {_g(cyc['secant_eigen_residual'], 2)}). On the quadratic the curvature is the same "
        "everywhere, so lr h > 2 can only diverge. On Rosenbrock the largest curvature varies: it is "
        f"{lam[1]:.4g} at (1, 1) and falls down the valley. The orbit's midpoint "
        f"({cyc['midpoint'][0]:.5f}, {cyc['midpoint'][1]:.5f}) sits {abs(cyc['midpoint_offset_soft']):.4f} down the "
        f"valley from the minimum (along the soft eigenvector; {cyc['midpoint_offset_stiff']:.1e} along the stiff "
        f"one), where the largest curvature is {cyc['midpoint_max_curvature']:.5g}, about 2/lr, and oscillates "
        f"across the valley with half-amplitude {cyc['half_amplitude_stiff']:.4f} along the stiff direction. "
        "This is the edge of stability in two dimensions: instead of diverging, the oscillation has carried the "
        "iterate down the valley to where the sharpness is 2/lr (the self-stabilisation described by Damian, "
        "Nichani & Lee, ICLR 2023); the library's docstring ('oscillates rather than diverges') is right. "
        "At the start (-1.5, 2) the largest curvature is "
        f"{cyc['start_max_curvature']:.4g} (lr h = {CYCLE_LR * cyc['start_max_curvature']:.3g} > 2): the first "
        "steps overshoot across the valley before the path reaches flatter ground (rosenbrock_gd.png).",
        "",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- entry point


def reproduce(out_dir: str | Path = "figures/copernicus_l5", quick: bool = False) -> dict[str, Any]:
    """Run the lecture's trajectories, check them against closed forms, write figures, captions and numbers.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created).
    quick : bool
        CI size: fewer steps per run (a few seconds); the full size takes
        about 20 s.

    Returns
    -------
    dict
        ``grids`` (lecture vs library learning rates), ``quadratic_gd``
        (per lr: per-step contraction read off the run against ``|1 - lr h|``,
        predicted and observed status), ``quadratic_momentum`` (per form, lr
        and coordinate: closed-loop rate, fitted poles, envelope decay),
        ``quadratic_adaptive`` (first step over lr against closed forms),
        ``rosenbrock`` (per run final distances and status; the period-2
        orbit of GD at lr = 0.02), ``ema_equals_heavy_ball``, ``files``,
        ``quick``, ``checks``.

    Examples
    --------
    >>> from optfilters.papers import copernicus_l5
    >>> copernicus_l5.LECTURE_GRIDS[("quadratic", "momentum")][-1]
    0.004
    """
    from optfilters.trajectory import get_function, run_trajectory

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = _settings(quick)
    dpi = 90 if quick else 150
    files: list[str] = []

    grids = _grid_check()
    bowl_gd_lrs = _lrs("quadratic_gd", (*get_function("quadratic").lecture_grid("sgd"), *EXTRA_GD_LRS), quick)
    name, gd_runs = _trajectory_figure(
        "quadratic", {"GD": "sgd"}, bowl_gd_lrs, settings["gd_steps"], out / "quadratic_gd.png", dpi, max_cols=4
    )
    files.append(name)
    gd_rows = _gd_rows(gd_runs[0])
    files.append(_contraction_figure(gd_rows, gd_runs[0], out / "quadratic_gd_contraction.png", dpi))

    momentum_specs = _momentum_specs()
    labels = list(momentum_specs)
    name, mom_runs = _trajectory_figure(
        "quadratic",
        momentum_specs,
        _lrs("quadratic_momentum", get_function("quadratic").lecture_grid("momentum"), quick),
        settings["momentum_steps"],
        out / "quadratic_momentum.png",
        dpi,
    )
    files.append(name)
    mom_rows = _momentum_rows(mom_runs, labels)
    files.append(_momentum_rate_figure(mom_rows, out / "quadratic_momentum_rate.png", dpi))

    adaptive_specs = _adaptive_specs()
    adaptive_lrs = get_function("rosenbrock").lecture_grid("rmsprop")
    name, ada_runs = _trajectory_figure(
        "quadratic",
        adaptive_specs,
        _lrs("quadratic_adaptive", adaptive_lrs, quick),
        settings["adaptive_steps"],
        out / "quadratic_adaptive.png",
        dpi,
    )
    files.append(name)
    ada_rows = _first_step_rows(ada_runs, list(adaptive_specs))

    steps = settings["rosenbrock_steps"]
    rosen = get_function("rosenbrock")
    name, r_gd = _trajectory_figure(
        "rosenbrock",
        {"GD": "sgd"},
        _lrs("rosenbrock_gd", rosen.lecture_grid("sgd"), quick),
        steps,
        out / "rosenbrock_gd.png",
        dpi,
        markers=False,
    )
    files.append(name)
    name, r_mom = _trajectory_figure(
        "rosenbrock",
        momentum_specs,
        _lrs("rosenbrock_momentum", rosen.lecture_grid("momentum"), quick),
        steps,
        out / "rosenbrock_momentum.png",
        dpi,
        markers=False,
    )
    files.append(name)
    name, r_ada = _trajectory_figure(
        "rosenbrock",
        adaptive_specs,
        _lrs("rosenbrock_adaptive", adaptive_lrs, quick),
        steps,
        out / "rosenbrock_adaptive.png",
        dpi,
        markers=False,
    )
    files.append(name)

    from optfilters.closed_loop import closed_loop

    loops = _loops()
    edges: dict[str, tuple[float, bool]] = {"GD": (closed_loop("sgd").stability().max_stable_lr_curvature, False)}
    edges.update({label: (loops[label].stability().max_stable_lr_curvature, False) for label in labels})
    for label, (opt, hp) in adaptive_specs.items():
        edges[label] = (closed_loop(opt, **hp).stability().max_stable_lr_curvature, True)
    rosen_rows = (
        _rosenbrock_rows("gradient descent", r_gd, edges)
        + _rosenbrock_rows("momentum", r_mom, edges)
        + _rosenbrock_rows("adaptive", r_ada, edges)
    )
    cycle_run = run_trajectory("rosenbrock", "sgd", lr=CYCLE_LR, steps=settings["cycle"])
    orbit = period_two_orbit(CYCLE_LR, cycle_run.params[-2])
    last = cycle_run.params[-2:]
    p, q = np.array(orbit["p"]), np.array(orbit["q"])
    run_to_orbit = min(float(np.max(np.abs(last - np.stack([p, q])))), float(np.max(np.abs(last - np.stack([q, p])))))
    lam = rosenbrock_minimum_curvatures()
    orbit.update(
        {
            "steps": cycle_run.steps,
            "run_to_orbit": run_to_orbit,
            "lr_times_max_curvature": CYCLE_LR * lam[1],
            "start_max_curvature": float(np.linalg.eigvalsh(rosenbrock_hessian(rosen.start))[1]),
            "fixed_point_multipliers": [1.0 - CYCLE_LR * lam[1], 1.0 - CYCLE_LR * lam[0]],
            "converged": bool(np.linalg.norm(cycle_run.params[-1] - 1.0) < 1e-8),
            "diverged": cycle_run.diverged,
        }
    )
    files.append(_rosenbrock_distance_figure(r_gd[0], r_mom, cycle_run, orbit, out / "rosenbrock_distance.png", dpi))

    ema_label, hb_label = labels
    equal = {
        "bowl": _max_path_difference(_find(mom_runs, ema_label, 0.001), _find(mom_runs, hb_label, 0.0001)),
        "rosenbrock": _max_path_difference(_find(r_mom, ema_label, 0.01), _find(r_mom, hb_label, 0.001)),
    }
    library_curvatures = rosen.curvatures()
    numbers: dict[str, Any] = {
        "title": TITLE,
        "quick": quick,
        "settings": settings,
        "engine": gd_runs[0][0].engine,
        "grids": grids,
        "grids_match": all(g["match"] for g in grids.values()),
        "quadratic_gd": gd_rows,
        "quadratic_momentum": mom_rows,
        "quadratic_adaptive": ada_rows,
        "ema_equals_heavy_ball": equal,
        "rosenbrock": {
            "minimum_curvatures": list(lam),
            "library_curvatures": list(library_curvatures),
            "curvature_check_error": float(np.max(np.abs(np.array(lam) - np.array(library_curvatures)))),
            "gd_max_stable_lr": 2.0 / lam[1],
            "runs": rosen_rows,
            "cycle": orbit,
        },
        "files": [*files, "captions.md", "numbers.json"],
    }
    numbers["checks"] = _checks(numbers)
    write_outputs(out, numbers, _captions(numbers))
    return numbers


def _checks(n: dict[str, Any]) -> list[Check]:
    """The lecture's runs against the closed forms (the same bounds as the tests of this module)."""
    out = [Check.holds("lecture learning-rate grids match the library's", n["grids_match"])]
    for r in n["quadratic_gd"]:
        tag = f"GD bowl lr={r['lr']:g}"
        out += [
            Check.within(f"{tag}: contraction |y_t+1/y_t| - |1 - 200 lr|", r["contraction_y_max_error"], high=1e-12),
            Check.within(f"{tag}: contraction |x_t+1/x_t| - |1 - 20 lr|", r["contraction_x_max_error"], high=1e-12),
            Check.holds(
                f"{tag}: observed status is the predicted one ({r['status_y_predicted']})",
                r["status_y_observed"] == r["status_y_predicted"],
                r["status_y_observed"],
            ),
        ]
    for r in n["quadratic_momentum"]:
        tag = f"{r['optimizer']} lr={r['lr']:g} {r['coordinate']}"
        out += [
            Check.within(f"{tag}: fitted poles against the closed loop", r["fitted_pole_error"], high=1e-8),
            Check.within(
                f"{tag}: envelope decay against the closed-loop rate", r["envelope_relative_error"], high=0.03
            ),
        ]
    for key, difference in n["ema_equals_heavy_ball"].items():
        out.append(Check.within(f"EMA momentum = heavy ball with lr (1 - beta) ({key})", difference, high=1e-12))
    for r in n["quadratic_adaptive"]:
        out.append(
            Check.within(
                f"{r['optimizer']} lr={r['lr']:g}: first step over lr against its closed form",
                r["first_step_max_relative_error"],
                high=1e-12,
            )
        )
    ros = n["rosenbrock"]
    out.append(Check.within("Rosenbrock Hessian eigenvalues at the minimum", ros["curvature_check_error"], high=1e-10))
    for r in ros["runs"]:
        out.append(Check.holds(f"Rosenbrock {r['optimizer']} lr={r['lr']:g}: does not diverge", not r["diverged"]))
    c = ros["cycle"]
    out += [
        Check.within("GD lr=0.02 period-2 orbit: map residual", c["residual"], high=1e-12),
        Check.holds("GD lr=0.02 period-2 orbit: stable (multiplier modulus < 1)", c["stable"], c["multiplier_modulus"]),
        Check.within(
            "GD lr=0.02: run ends on the period-2 orbit", c["run_to_orbit"], high=1e-2 if n["quick"] else 1e-8
        ),
    ]
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: ``[OUT_DIR] [--quick]``; prints the key numbers and the check summary; 1 when a check fails."""
    return run_source("copernicus_l5", argv, _report)


def _report(n: dict[str, Any]) -> None:
    print(f"lecture grids match the library's: {n['grids_match']}")
    for r in n["quadratic_gd"]:
        print(
            f"GD bowl lr={r['lr']:<6g} contraction y {r['contraction_y_observed']:.6g} "
            f"(|1-200lr| = {r['contraction_y_closed_form']:.6g}), {r['status_y_observed']}"
        )
    worst = max(r["fitted_pole_error"] for r in n["quadratic_momentum"])
    env = max(r["envelope_relative_error"] for r in n["quadratic_momentum"])
    print(f"momentum: fitted pole error <= {worst:.2g}, envelope rate within {env:.2%} of the closed loop")
    for r in n["rosenbrock"]["runs"]:
        print(f"Rosenbrock {r['optimizer']:24s} lr={r['lr']:<7g} distance {r['final_distance']:.3g}  {r['status']}")
    c = n["rosenbrock"]["cycle"]
    print(f"GD lr={CYCLE_LR}: 2-cycle |q-p| = {c['step_length']:.4g}, run within {c['run_to_orbit']:.2g}")


if __name__ == "__main__":
    raise SystemExit(main())
