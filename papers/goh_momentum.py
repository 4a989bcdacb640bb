"""Why Momentum Really Works (Goh, Distill 2017): the heavy-ball rate over step size and momentum.

Goh's iteration on one eigendirection (curvature ``lambda``) of a quadratic,

    z_{k+1} = beta z_k + lambda w_k,    w_{k+1} = w_k - alpha z_{k+1},    z_0 = 0,

is exactly ``torch.optim.SGD(lr=alpha, momentum=beta)`` (``buf = beta buf +
g``, ``p -= lr buf``; torch's first ``buf = g`` is ``beta * 0 + g``), and the
catalogue's ``"momentum"`` model.  With ``x = alpha lambda`` the state ``(w_k,
w_{k-1})`` evolves by ``[[1 + beta - x, -beta], [1, 0]]`` (characteristic
polynomial ``z^2 - (1 + beta - x) z + beta``; Goh's ``R = [[beta, lambda],
[-alpha beta, 1 - alpha lambda]]`` on ``(z, w)`` has the same trace and
determinant), and the convergence rate is its largest eigenvalue modulus:

* stable for ``0 < x < 2 + 2 beta``;
* complex eigenvalues, of modulus exactly ``sqrt(beta)`` whatever ``x``, for
  ``(1 - sqrt(beta))^2 < x < (1 + sqrt(beta))^2`` (the lower edge is Goh's
  critical damping ``beta = (1 - sqrt(alpha lambda))^2``);
* the best worst-case rate over curvatures in ``[mu, L]`` (condition number
  ``kappa = L / mu``) is Polyak's: ``alpha* = 4 / (sqrt(L) + sqrt(mu))^2``,
  ``beta* = ((sqrt(kappa) - 1) / (sqrt(kappa) + 1))^2``, rate
  ``(sqrt(kappa) - 1) / (sqrt(kappa) + 1)``, against gradient descent's
  ``(kappa - 1) / (kappa + 1)`` at ``alpha = 2 / (L + mu)``.

The figures are drawn by :func:`optfilters.plot.stability_map_plot` and
:func:`optfilters.plot.closed_loop_rate_plot` from
:func:`optfilters.closed_loop.stability_map`, :func:`~optfilters.closed_loop.rate_curve`
and :func:`~optfilters.closed_loop.tune`; the numbers drawn are checked against
the closed forms above, written out independently here
(:func:`heavy_ball_rate`, :func:`polyak_tuning`, :func:`gd_tuning`).

Run ``python -m optfilters.papers.goh_momentum [OUT_DIR] [--quick]`` (or
``optfilters figures goh_momentum``).

Numbers (full mode: a 841 x 200 map over ``x`` in ``[0, 4.2]`` and ``beta``
in ``[0, 0.995]``; 17 condition numbers from 2 to 1e4; about 10 s):

===============================================  ===================================  ==========
check                                            closed form                          error
===============================================  ===================================  ==========
drawn map vs eigenvalues (every grid point)      quadratic formula                    < 1e-15
drawn map vs ``eigvals`` of the 2x2 matrix       numpy, 400 sampled points            < 1e-12
torch SGD(momentum) vs Goh's iteration           same iterates                        0
stability edge, exact (closed_loop)              ``2 + 2 beta``                       < 1e-12
complex band ends on the map                     ``(1 -+ sqrt(beta))^2``              < grid step
tuned heavy ball vs Polyak (rate, beta, alpha)   closed forms                         < 1e-7
tuned GD vs ``(kappa - 1)/(kappa + 1)``          closed form                          < 1e-8
===============================================  ===================================  ==========
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from optfilters.papers import Check, caption_number, run_source, save_figure, write_outputs

TITLE = "Why Momentum Really Works (Goh, Distill 2017): heavy-ball rate over step size and momentum, Polyak tuning"

#: Momentum values of the rate-curve figure.
CURVE_BETAS: tuple[float, ...] = (0.0, 0.3, 0.6, 0.9)

#: Largest alpha * lambda shown (beyond the stability edge 2 + 2 beta <= 4).
X_MAX = 4.2

#: Largest momentum on the map.
BETA_MAX = 0.995

#: (alpha * lambda, beta) pairs on which torch.optim.SGD is compared with Goh's iteration.
TORCH_CHECKS: tuple[tuple[float, float], ...] = ((0.5, 0.9), (0.01, 0.5), (3.0, 0.6), (3.9, 0.9))


def _settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {"x_points": 211, "beta_points": 60, "kappas": (10.0, 100.0), "samples": 200, "curve_points": 421}
    return {
        "x_points": 841,
        "beta_points": 200,
        "kappas": tuple(float(k) for k in np.geomspace(2.0, 1e4, 17)),
        "samples": 400,
        "curve_points": 841,
    }


# ----------------------------------------------------------------------------- closed forms


def heavy_ball_matrix(lr_curvature: float, beta: float) -> NDArray[np.float64]:
    """The heavy ball's state matrix on ``(w_k, w_{k-1})``: ``[[1 + beta - x, -beta], [1, 0]]``, ``x = alpha lambda``.

    Examples
    --------
    >>> from optfilters.papers.goh_momentum import heavy_ball_matrix
    >>> heavy_ball_matrix(0.5, 0.9).tolist()
    [[1.4, -0.9], [1.0, 0.0]]
    """
    return np.array([[1.0 + beta - lr_curvature, -beta], [1.0, 0.0]])


def goh_matrix(alpha: float, lam: float, beta: float) -> NDArray[np.float64]:
    """Goh's ``R = [[beta, lambda], [-alpha beta, 1 - alpha lambda]]`` acting on ``(z_k, w_k)``.

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters.papers.goh_momentum import goh_matrix
    >>> float(np.trace(goh_matrix(0.5, 1.0, 0.9))), round(float(np.linalg.det(goh_matrix(0.5, 1.0, 0.9))), 12)
    (1.4, 0.9)
    """
    return np.array([[beta, lam], [-alpha * beta, 1.0 - alpha * lam]])


def heavy_ball_rate(lr_curvature: ArrayLike, beta: ArrayLike) -> Any:
    """Largest eigenvalue modulus of :func:`heavy_ball_matrix`, by the quadratic formula (vectorised).

    The eigenvalues are ``(t -+ sqrt(t^2 - 4 beta)) / 2`` with ``t = 1 + beta -
    x``: complex of modulus ``sqrt(beta)`` when ``t^2 < 4 beta``, else real.

    Examples
    --------
    >>> from optfilters.papers.goh_momentum import heavy_ball_rate
    >>> [round(float(heavy_ball_rate(x, 0.81)), 12) for x in (0.5, 3.0, 3.62)]   # band, band, edge 2 + 2 beta
    [0.9, 0.9, 1.0]
    """
    x = np.asarray(lr_curvature, dtype=np.float64)
    b = np.asarray(beta, dtype=np.float64)
    t = 1.0 + b - x
    disc = t * t - 4.0 * b
    with np.errstate(invalid="ignore"):
        real = np.maximum(np.abs(t + np.sqrt(np.maximum(disc, 0.0))), np.abs(t - np.sqrt(np.maximum(disc, 0.0)))) / 2
    out = np.where(disc < 0.0, np.sqrt(np.abs(b)), real)
    return out[()] if out.ndim == 0 else out


def complex_band(beta: float) -> tuple[float, float]:
    """``((1 - sqrt(beta))^2, (1 + sqrt(beta))^2)``: where the eigenvalues are complex, of modulus ``sqrt(beta)``.

    Examples
    --------
    >>> from optfilters.papers.goh_momentum import complex_band
    >>> [round(v, 12) for v in complex_band(0.81)]
    [0.01, 3.61]
    """
    if not (0.0 <= beta < 1.0):
        raise ValueError(f"beta must be in [0, 1), got {beta!r}")
    r = math.sqrt(beta)
    return ((1.0 - r) ** 2, (1.0 + r) ** 2)


def polyak_tuning(kappa: float) -> dict[str, float]:
    """Polyak's optimal heavy ball for curvatures in ``[1, kappa]``: ``alpha``, ``alpha * L``, ``beta`` and ``rate``.

    Examples
    --------
    >>> from optfilters.papers.goh_momentum import polyak_tuning
    >>> {k: round(v, 6) for k, v in polyak_tuning(100.0).items()}
    {'alpha': 0.033058, 'alpha_L': 3.305785, 'beta': 0.669421, 'rate': 0.818182}
    """
    if not (math.isfinite(kappa) and kappa >= 1.0):
        raise ValueError(f"kappa must be finite and >= 1, got {kappa!r}")
    s = math.sqrt(kappa)
    alpha = 4.0 / (s + 1.0) ** 2
    return {
        "alpha": alpha,
        "alpha_L": alpha * kappa,
        "beta": ((s - 1.0) / (s + 1.0)) ** 2,
        "rate": (s - 1.0) / (s + 1.0),
    }


def gd_tuning(kappa: float) -> dict[str, float]:
    """Best gradient descent for curvatures in ``[1, kappa]``: ``alpha = 2/(kappa + 1)``, rate ``(kappa-1)/(kappa+1)``.

    Examples
    --------
    >>> from optfilters.papers.goh_momentum import gd_tuning
    >>> {k: round(v, 6) for k, v in gd_tuning(9.0).items()}
    {'alpha': 0.2, 'alpha_L': 1.8, 'rate': 0.8}
    """
    if not (math.isfinite(kappa) and kappa >= 1.0):
        raise ValueError(f"kappa must be finite and >= 1, got {kappa!r}")
    alpha = 2.0 / (kappa + 1.0)
    return {"alpha": alpha, "alpha_L": alpha * kappa, "rate": (kappa - 1.0) / (kappa + 1.0)}


def goh_iterates(alpha: float, lam: float, beta: float, w0: float, steps: int) -> NDArray[np.float64]:
    """``w_0 .. w_steps`` of Goh's iteration ``z <- beta z + lambda w``, ``w <- w - alpha z`` from ``z_0 = 0``.

    Examples
    --------
    >>> from optfilters.papers.goh_momentum import goh_iterates
    >>> goh_iterates(0.5, 1.0, 0.5, 1.0, 3).tolist()
    [1.0, 0.5, 0.0, -0.25]
    """
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    w, z = float(w0), 0.0
    out = [w]
    for _ in range(int(steps)):
        z = beta * z + lam * w
        w = w - alpha * z
        out.append(w)
    return np.array(out)


# ----------------------------------------------------------------------------- checks


def _torch_equivalence(steps: int = 60) -> list[dict[str, Any]]:
    import torch

    rows = []
    lam = 2.0
    for x, beta in TORCH_CHECKS:
        alpha = x / lam
        w = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.SGD([w], lr=alpha, momentum=beta)
        path = [1.0]
        for _ in range(steps):
            opt.zero_grad()
            (0.5 * lam * w * w).sum().backward()
            opt.step()
            path.append(float(w.detach()[0]))
        goh = goh_iterates(alpha, lam, beta, 1.0, steps)
        torch_path = np.array(path)
        scale = np.maximum(np.abs(goh), 1e-300)
        rows.append(
            {
                "lr_curvature": x,
                "beta": beta,
                "max_relative_difference": float(np.max(np.abs(torch_path - goh) / scale)),
                "rate": float(heavy_ball_rate(x, beta)),
            }
        )
    return rows


def _map_checks(m: Any, drawn: NDArray[np.float64], samples: int) -> dict[str, Any]:
    x = np.asarray(m.lr_curvature, dtype=np.float64)
    b = np.asarray(m.parameter_values, dtype=np.float64)
    closed = heavy_ball_rate(x[None, :], b[:, None])
    rng = np.random.default_rng(0)
    rows = rng.integers(0, b.size, samples)
    cols = rng.integers(0, x.size, samples)
    eig_err, goh_err, used = 0.0, 0.0, 0
    for i, j in zip(rows, cols, strict=True):
        t = 1.0 + b[i] - x[j]
        if abs(t * t - 4.0 * b[i]) < 1e-6:  # a double eigenvalue: eigvals is only sqrt(eps)-accurate there
            continue
        used += 1
        rate = float(np.max(np.abs(np.linalg.eigvals(heavy_ball_matrix(x[j], b[i])))))
        eig_err = max(eig_err, abs(rate - drawn[i, j]))
        lam = 1.0
        goh = float(np.max(np.abs(np.linalg.eigvals(goh_matrix(x[j] / lam, lam, b[i])))))
        goh_err = max(goh_err, abs(goh - drawn[i, j]))
    dx = float(x[1] - x[0])
    edge_err, band_lo_err, band_hi_err = 0.0, 0.0, 0.0
    band_contiguous = True
    for i, beta in enumerate(b):
        row = drawn[i]
        stable = np.flatnonzero(row < 1.0)
        edge = 2.0 + 2.0 * beta
        if stable.size and edge < x[-1]:
            last = int(stable.max())
            # the edge lies between the last stable and the first unstable column
            assert row[last + 1] >= 1.0
            edge_err = max(edge_err, abs(0.5 * (x[last] + x[last + 1]) - edge))
        if beta > 0.0:
            band = np.flatnonzero(np.abs(row - math.sqrt(beta)) <= 1e-12)
            if band.size:
                lo, hi = complex_band(float(beta))
                band_contiguous &= bool(np.all(np.diff(band) == 1))
                band_lo_err = max(band_lo_err, abs(x[band.min()] - lo) if lo > x[0] else 0.0)
                band_hi_err = max(band_hi_err, abs(x[band.max()] - hi) if hi < x[-1] else 0.0)
    return {
        "grid": [int(b.size), int(x.size)],
        "dx": dx,
        "closed_form_max_error": float(np.max(np.abs(closed - drawn))),
        "eigvals_max_error": eig_err,
        "goh_matrix_max_error": goh_err,
        "eigvals_points": used,
        "edge_max_error": edge_err,
        "band_low_max_error": band_lo_err,
        "band_high_max_error": band_hi_err,
        "band_contiguous": band_contiguous,
        "stable_fraction": float(np.mean(drawn < 1.0)),
    }


def _exact_edges(betas: tuple[float, ...]) -> list[dict[str, Any]]:
    from optfilters.closed_loop import closed_loop

    rows = []
    for beta in betas:
        loop = closed_loop("momentum", momentum=beta)
        edge = loop.stability().max_stable_lr_curvature
        lo, hi = complex_band(beta)
        delta = 1e-6
        imag = [float(np.max(np.abs(loop.poles(v).imag))) for v in (lo - delta, lo + delta, hi - delta, hi + delta)]
        rows.append(
            {
                "beta": beta,
                "edge": edge,
                "edge_closed_form": 2.0 + 2.0 * beta,
                "edge_error": abs(edge - (2.0 + 2.0 * beta)),
                "band": [lo, hi],
                "complex_inside": bool(beta > 0.0 and imag[1] > 0.0 and imag[2] > 0.0),
                "real_outside": bool(imag[0] == 0.0 and imag[3] == 0.0),
                "rate_inside": float(loop.rate(0.5 * (lo + hi))),
            }
        )
    return rows


# ----------------------------------------------------------------------------- figures


def _map_figure(m: Any, path: Path, dpi: int) -> tuple[str, Any]:
    import matplotlib.pyplot as plt

    from optfilters import plot

    with plot.style():
        _, ax = plt.subplots(figsize=(7.6, 5.0))
    result = plot.stability_map_plot(m, ax=ax, title="Heavy ball (Goh's z, w iteration = torch SGD momentum): rate")
    b = np.linspace(0.0, float(np.max(m.parameter_values)), 400)
    ax.plot((1.0 - np.sqrt(b)) ** 2, b, color="#D55E00", linestyle="--", linewidth=1.4, label="(1 - sqrt(beta))^2")
    ax.plot((1.0 + np.sqrt(b)) ** 2, b, color="#E69F00", linestyle="--", linewidth=1.4, label="(1 + sqrt(beta))^2")
    ax.plot(2.0 + 2.0 * b, b, color="black", linestyle=":", linewidth=1.6, label="2 + 2 beta (edge)")
    ax.plot([], [], color="white", linewidth=1.5, label="rate = 1 contour (drawn map)")
    ax.text(1.9, 0.55, "complex poles\nrate = sqrt(beta)", color="white", ha="center", fontsize="small")
    ax.text(0.03, 0.03, "real,\nslow", color="black", fontsize="x-small")
    ax.text(1.72, 0.015, "real,\nnegative", color="black", fontsize="x-small", ha="center")
    ax.text(3.3, 0.3, "unstable\n(rate >= 1)", color="0.25", fontsize="small", ha="center")
    ax.set_xlabel("alpha · lambda (step size × curvature)")
    ax.set_ylabel("beta (momentum)")
    ax.set_xlim(0.0, float(np.max(m.lr_curvature)))
    ax.legend(
        fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=2, frameon=True, facecolor="0.85"
    )
    return save_figure(result.figure, path, dpi), result.data


def _curve_figure(curves: dict[str, Any], path: Path, dpi: int) -> tuple[str, Any]:
    import matplotlib.pyplot as plt

    from optfilters import plot

    with plot.style():
        _, ax = plt.subplots(figsize=(7.6, 4.6))
    result = plot.closed_loop_rate_plot(curves, ax=ax, shade=False, ymax=1.25, title="Rate against alpha · lambda")
    for i, beta in enumerate(CURVE_BETAS):
        colour = plot.PALETTE[i]
        ax.plot(2.0 + 2.0 * beta, 1.0, "o", color=colour, markersize=6, label="_edge")
        if beta > 0.0:
            lo, hi = complex_band(beta)
            ax.hlines(math.sqrt(beta), lo, hi, color=colour, linestyle=":", linewidth=3.0, alpha=0.6, label="_band")
            ax.text(hi + 0.03, math.sqrt(beta) - 0.045, f"sqrt({beta:g})", color=colour, fontsize="x-small")
    ax.plot([], [], "o", color="0.4", label="edge 2 + 2 beta")
    ax.plot([], [], ":", color="0.4", linewidth=3.0, label="sqrt(beta) on (1 -+ sqrt(beta))^2")
    ax.set_xlabel("alpha · lambda (step size × curvature)")
    ax.set_xlim(0.0, X_MAX)
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=3)
    return save_figure(result.figure, path, dpi), result.data


def _tuning_figure(rows: list[dict[str, Any]], path: Path, dpi: int) -> str:
    import matplotlib.pyplot as plt

    from optfilters import plot

    kappas = np.array([r["kappa"] for r in rows])
    line = np.geomspace(max(1.01, float(kappas.min()) / 1.5), float(kappas.max()) * 1.5, 300)
    polyak = [polyak_tuning(float(k)) for k in line]
    gd = [gd_tuning(float(k)) for k in line]
    with plot.style():
        fig, (left, right, third) = plt.subplots(1, 3, figsize=(16.5, 4.3))
        c0, c1, c2 = plot.PALETTE[0], plot.PALETTE[1], plot.PALETTE[2]
        left.semilogx(line, [p["rate"] for p in polyak], color=c0, label="heavy ball: (sqrt(k) - 1)/(sqrt(k) + 1)")
        left.semilogx(line, [g["rate"] for g in gd], color=c1, label="GD: (k - 1)/(k + 1)")
        left.plot(kappas, [r["momentum_rate"] for r in rows], "o", color=c0, mfc="none", label="tune('momentum')")
        left.plot(kappas, [r["gd_rate"] for r in rows], "s", color=c1, mfc="none", label="tune('sgd')")
        left.set_xlabel("condition number kappa = L / mu")
        left.set_ylabel("optimal worst-case rate")
        left.set_title("Best rate over curvatures in [mu, L]")
        left.legend(fontsize="small", loc="lower right")
        right.semilogx(line, [p["beta"] for p in polyak], color=c0, label="beta* = ((sqrt(k)-1)/(sqrt(k)+1))^2")
        right.semilogx(line, [p["alpha_L"] / 4.0 for p in polyak], color=c2, label="alpha* L / 4 = k/(sqrt(k)+1)^2")
        right.semilogx(line, [g["alpha_L"] / 2.0 for g in gd], color=c1, label="GD: alpha L / 2 = k/(k+1)")
        right.plot(kappas, [r["momentum_beta"] for r in rows], "o", color=c0, mfc="none", label="_t")
        right.plot(kappas, [r["momentum_alpha_L"] / 4.0 for r in rows], "o", color=c2, mfc="none", label="_t")
        right.plot(kappas, [r["gd_alpha_L"] / 2.0 for r in rows], "s", color=c1, mfc="none", label="_t")
        right.plot([], [], "o", color="0.4", mfc="none", label="tuned (markers)")
        right.set_xlabel("condition number kappa = L / mu")
        right.set_ylabel("tuned hyperparameter")
        right.set_title("Polyak's tuning (mu = 1, L = kappa)")
        right.set_ylim(0.0, 1.05)
        right.legend(fontsize="small", loc="lower right")
        hb_iters = [-math.log(10.0) / math.log(p["rate"]) for p in polyak]
        gd_iters = [-math.log(10.0) / math.log(g["rate"]) for g in gd]
        third.loglog(line, hb_iters, color=c0, label="heavy ball (Polyak)")
        third.loglog(line, gd_iters, color=c1, label="gradient descent")
        third.loglog(line, np.log(10.0) * np.sqrt(line) / 2.0, color=c0, linestyle=":", label="ln(10) sqrt(k) / 2")
        third.loglog(line, np.log(10.0) * line / 2.0, color=c1, linestyle=":", label="ln(10) k / 2")
        third.plot(kappas, [-math.log(10.0) / math.log(r["momentum_rate"]) for r in rows], "o", color=c0, mfc="none")
        third.plot(kappas, [-math.log(10.0) / math.log(r["gd_rate"]) for r in rows], "s", color=c1, mfc="none")
        third.set_xlabel("condition number kappa = L / mu")
        third.set_ylabel("iterations per tenfold error reduction")
        third.set_title("-ln 10 / ln(rate): sqrt(kappa) vs kappa")
        third.legend(fontsize="small", loc="upper left")
        result = plot.PlotResult(fig, (left, right, third))
    return save_figure(result.figure, path, dpi)


# ----------------------------------------------------------------------------- captions


def _g(value: Any, digits: int = 4) -> str:
    return caption_number(value, digits)


def _captions(n: dict[str, Any]) -> str:
    mc = n["map"]
    lines = [
        f"# {TITLE}",
        "",
        "Goh's iteration z <- beta z + lambda w, w <- w - alpha z (z_0 = 0) on one eigendirection of a quadratic is "
        "torch.optim.SGD(lr=alpha, momentum=beta) step for step (max relative difference over 60 steps at "
        f"{len(n['torch'])} settings: {_g(max(r['max_relative_difference'] for r in n['torch']), 2)}), i.e. the "
        "closed loop of optfilters' 'momentum' model with x = alpha lambda. "
        f"{'Quick (CI) settings.' if n['quick'] else 'Full settings.'}",
        "",
        "## rate_map.png",
        f"Convergence rate (largest |eigenvalue| of [[1 + beta - x, -beta], [1, 0]]) over x = alpha lambda in [0, "
        f"{X_MAX:g}] and beta in [0, {BETA_MAX:g}] ({mc['grid'][0]} x {mc['grid'][1]} grid), drawn by "
        "optfilters.plot.stability_map_plot from optfilters.closed_loop.stability_map; grey: rate >= 1; white contour: "
        "rate = 1 on the drawn map. Overlaid closed forms: the edge x = 2 + 2 beta (dotted, on the contour), and "
        "the complex band (1 - sqrt(beta))^2 < x < (1 + sqrt(beta))^2 (dashed) inside which the rate is exactly "
        "sqrt(beta), flat in x (the modulus is sqrt(beta), not 2 sqrt(beta)); to its left two real poles (slow, "
        "overdamped), to its right a negative real pole (oscillating sign). Checks:",
        "",
        "| check | max error |",
        "|---|---|",
        f"| drawn rate vs quadratic-formula eigenvalues, all {mc['grid'][0] * mc['grid'][1]} points | "
        f"{_g(mc['closed_form_max_error'], 2)} |",
        f"| drawn rate vs numpy eigvals of [[1 + beta - x, -beta], [1, 0]], {mc['eigvals_points']} random points "
        f"(double eigenvalues skipped) | {_g(mc['eigvals_max_error'], 2)} |",
        "| same with Goh's R = [[beta, lambda], [-alpha beta, 1 - alpha lambda]] | "
        f"{_g(mc['goh_matrix_max_error'], 2)} |",
        f"| rate = 1 crossing on each row vs 2 + 2 beta (grid step {mc['dx']:.3g}) | {_g(mc['edge_max_error'], 2)} |",
        f"| ends of the rate = sqrt(beta) run on each row vs (1 -+ sqrt(beta))^2 | "
        f"{_g(max(mc['band_low_max_error'], mc['band_high_max_error']), 2)} |",
        "",
        "Exact edges and bands from optfilters.closed_loop (unit-circle scan; poles 1e-6 inside/outside the band):",
        "",
        "| beta | edge (closed_loop) | 2 + 2 beta | band (1 -+ sqrt(beta))^2 | complex inside | real outside | rate "
        "inside |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in n["edges"]:
        lines.append(
            f"| {r['beta']:g} | {r['edge']:.12g} | {r['edge_closed_form']:.12g} | {r['band'][0]:.6g} - "
            f"{r['band'][1]:.6g} | {_g(r['complex_inside'])} | {_g(r['real_outside'])} | {r['rate_inside']:.12g} |"
        )
    lines += [
        "",
        "## rate_curves.png",
        f"Rate against x = alpha lambda at beta = {', '.join(f'{b:g}' for b in CURVE_BETAS)} "
        "(optfilters.closed_loop.rate_curve drawn by optfilters.plot.closed_loop_rate_plot); "
        "dots: the edges 2 + 2 beta; "
        "thick dotted: sqrt(beta) over the band (1 -+ sqrt(beta))^2 where each curve is flat at its minimum. "
        "Momentum does not lower the best rate for a single curvature (GD reaches 0 at x = 1); it widens the range "
        "of x over which the rate is good, which is what matters when the curvatures spread over [mu, L].",
        "",
        "| beta | drawn vs closed form (max) | min rate | sqrt(beta) | flat band on the curve | closed form band | "
        "stable interval |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in n["curves"]:
        band = "n/a" if r["flat_band"] is None else f"{r['flat_band'][0]:.4g} - {r['flat_band'][1]:.4g}"
        cband = "n/a" if r["beta"] == 0.0 else f"{r['band'][0]:.4g} - {r['band'][1]:.4g}"
        lines.append(
            f"| {r['beta']:g} | {_g(r['max_error'], 2)} | {r['min_rate']:.12g} | {math.sqrt(r['beta']):.12g} | "
            f"{band} | {cband} | {r['stable_interval'][0]:.6g} - {r['stable_interval'][1]:.12g} |"
        )
    lines += [
        "",
        "## tuning.png",
        "Optimal worst-case rate over curvatures in [mu, L] = [1, kappa] (left) and the tuned hyperparameters "
        "(right): optfilters.closed_loop.tune (markers; a numerical minimax search over lr and beta) against "
        "Polyak's closed forms alpha* = 4/(sqrt(L) + sqrt(mu))^2, beta* = ((sqrt(kappa) - 1)/(sqrt(kappa) + 1))^2, "
        "rate (sqrt(kappa) - 1)/(sqrt(kappa) + 1), and gradient descent's alpha = 2/(L + mu), rate "
        "(kappa - 1)/(kappa + 1). Iterations per tenfold error reduction, -ln 10 / ln(rate), grow like sqrt(kappa) "
        "with momentum and like kappa without.",
        "",
        "| kappa | HB rate: tuned | Polyak | beta*: tuned | closed form | alpha* L: tuned | closed form | "
        "GD rate: tuned | (k-1)/(k+1) | iterations/10x HB | GD |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in n["tuning"]:
        lines.append(
            f"| {r['kappa']:.4g} | {r['momentum_rate']:.9f} | {r['polyak_rate']:.9f} | {r['momentum_beta']:.9f} | "
            f"{r['polyak_beta']:.9f} | {r['momentum_alpha_L']:.8f} | {r['polyak_alpha_L']:.8f} | {r['gd_rate']:.9f} | "
            f"{r['gd_closed_rate']:.9f} | {r['momentum_iterations']:.1f} | {r['gd_iterations']:.1f} |"
        )
    worst = n["tuning_max_errors"]
    lines += [
        "",
        f"Largest differences: rate {_g(worst['momentum_rate'], 2)}, beta {_g(worst['momentum_beta'], 2)}, "
        f"alpha L {_g(worst['momentum_alpha_L'], 2)} (relative), GD rate {_g(worst['gd_rate'], 2)}, GD alpha L "
        f"{_g(worst['gd_alpha_L'], 2)}.",
        "",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- entry point


def reproduce(out_dir: str | Path = "figures/goh_momentum", quick: bool = False) -> dict[str, Any]:
    """Draw the heavy-ball rate map, rate curves and Polyak tuning; check them against closed forms.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created).
    quick : bool
        CI size: a 60 x 211 map and two condition numbers (seconds).

    Returns
    -------
    dict
        ``map`` (errors of the drawn map against the closed forms, region
        boundaries), ``edges`` (exact edges and bands from closed_loop),
        ``curves`` (per beta), ``tuning`` (per kappa: tuned and closed-form
        rate, beta, alpha L), ``tuning_max_errors``, ``torch``, ``files``,
        ``quick``, ``checks``.

    Examples
    --------
    >>> from optfilters.papers import goh_momentum
    >>> goh_momentum.CURVE_BETAS
    (0.0, 0.3, 0.6, 0.9)
    """
    from optfilters.closed_loop import rate_curve, stability_map, tune

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    s = _settings(quick)
    dpi = 90 if quick else 150

    x = np.linspace(0.0, X_MAX, s["x_points"])
    betas = np.linspace(0.0, BETA_MAX, s["beta_points"])
    m = stability_map("momentum", "momentum", betas, x)
    map_name, drawn = _map_figure(m, out / "rate_map.png", dpi)
    map_numbers = _map_checks(m, np.asarray(drawn["rate"], dtype=np.float64), s["samples"])
    edges = _exact_edges((0.0, 0.25, 0.5, 0.81, 0.9, 0.99))

    cx = np.linspace(0.0, X_MAX, s["curve_points"])
    curves = {f"beta = {b:g}": rate_curve("momentum", cx, momentum=b) for b in CURVE_BETAS}
    curve_name, curve_data = _curve_figure(curves, out / "rate_curves.png", dpi)
    curve_rows = []
    for beta, series in zip(CURVE_BETAS, curve_data["series"], strict=True):
        xs, rate = np.asarray(series["lr_curvature"]), np.asarray(series["rate"])
        lo, hi = complex_band(beta)
        flat = np.flatnonzero(np.abs(rate - math.sqrt(beta)) <= 1e-12) if beta > 0.0 else np.array([], dtype=int)
        interval = series["stable_interval"]
        curve_rows.append(
            {
                "beta": beta,
                "max_error": float(np.max(np.abs(rate - heavy_ball_rate(xs, beta)))),
                "min_rate": float(np.min(rate)),
                "argmin": float(xs[int(np.argmin(rate))]),
                "flat_band": None if flat.size == 0 else [float(xs[flat.min()]), float(xs[flat.max()])],
                "band": [lo, hi],
                "dx": float(xs[1] - xs[0]),
                "stable_interval": [float(interval[0]), float(interval[1])],
            }
        )

    tuning_rows = []
    for kappa in s["kappas"]:
        hb = tune("momentum", condition_number=kappa)
        gd = tune("sgd", condition_number=kappa)
        polyak, best_gd = polyak_tuning(kappa), gd_tuning(kappa)
        tuning_rows.append(
            {
                "kappa": kappa,
                "momentum_rate": hb.rate,
                "momentum_beta": hb.hyperparameters["momentum"],
                "momentum_alpha_L": hb.lr_curvature_max,
                "polyak_rate": polyak["rate"],
                "polyak_beta": polyak["beta"],
                "polyak_alpha_L": polyak["alpha_L"],
                "gd_rate": gd.rate,
                "gd_alpha_L": gd.lr_curvature_max,
                "gd_closed_rate": best_gd["rate"],
                "gd_closed_alpha_L": best_gd["alpha_L"],
                "momentum_iterations": -math.log(10.0) / math.log(polyak["rate"]),
                "gd_iterations": -math.log(10.0) / math.log(best_gd["rate"]),
            }
        )
    tuning_name = _tuning_figure(tuning_rows, out / "tuning.png", dpi)
    max_errors = {
        "momentum_rate": max(abs(r["momentum_rate"] - r["polyak_rate"]) for r in tuning_rows),
        "momentum_beta": max(abs(r["momentum_beta"] - r["polyak_beta"]) for r in tuning_rows),
        "momentum_alpha_L": max(abs(r["momentum_alpha_L"] / r["polyak_alpha_L"] - 1.0) for r in tuning_rows),
        "gd_rate": max(abs(r["gd_rate"] - r["gd_closed_rate"]) for r in tuning_rows),
        "gd_alpha_L": max(abs(r["gd_alpha_L"] / r["gd_closed_alpha_L"] - 1.0) for r in tuning_rows),
    }

    numbers: dict[str, Any] = {
        "title": TITLE,
        "quick": quick,
        "map": map_numbers,
        "edges": edges,
        "curves": curve_rows,
        "tuning": tuning_rows,
        "tuning_max_errors": max_errors,
        "torch": _torch_equivalence(),
        "files": [map_name, curve_name, tuning_name, "captions.md", "numbers.json"],
    }
    numbers["checks"] = _checks(numbers)
    write_outputs(out, numbers, _captions(numbers))
    return numbers


def _checks(n: dict[str, Any]) -> list[Check]:
    """The drawn map, curves and tuning against the closed forms (the same bounds as this module's tests)."""
    mc = n["map"]
    dx = mc["dx"]
    out = [
        Check.within("map: drawn rate against the quadratic formula", mc["closed_form_max_error"], high=1e-9),
        Check.within("map: drawn rate against numpy eigvals", mc["eigvals_max_error"], high=1e-9),
        Check.within("map: drawn rate against Goh's matrix R", mc["goh_matrix_max_error"], high=1e-9),
        Check.within(
            "map: stability edge 2 + 2 beta (within half a column)", mc["edge_max_error"], high=0.5 * dx + 1e-12
        ),
        Check.within("map: complex band lower edge (within a column)", mc["band_low_max_error"], high=dx + 1e-12),
        Check.within("map: complex band upper edge (within a column)", mc["band_high_max_error"], high=dx + 1e-12),
        Check.holds("map: complex band contiguous", mc["band_contiguous"]),
    ]
    for r in n["edges"]:
        out.append(Check.close(f"edge beta={r['beta']:g}: 2 + 2 beta", r["edge"], r["edge_closed_form"], 1e-9))
    for c in n["curves"]:
        out.append(Check.within(f"rate curve beta={c['beta']:g}: against the closed form", c["max_error"], high=1e-9))
    for r in n["tuning"]:
        k = f"tuning kappa={r['kappa']:g}"
        out += [
            Check.close(f"{k}: heavy-ball rate vs Polyak", r["momentum_rate"], r["polyak_rate"], 1e-6, relative=False),
            Check.close(f"{k}: heavy-ball beta vs Polyak", r["momentum_beta"], r["polyak_beta"], 1e-6, relative=False),
            Check.close(f"{k}: heavy-ball alpha L vs Polyak", r["momentum_alpha_L"], r["polyak_alpha_L"], 1e-6),
            Check.close(
                f"{k}: GD rate vs (kappa-1)/(kappa+1)", r["gd_rate"], r["gd_closed_rate"], 1e-6, relative=False
            ),
            Check.close(f"{k}: GD alpha L vs 2 kappa/(kappa+1)", r["gd_alpha_L"], r["gd_closed_alpha_L"], 1e-6),
        ]
    for r in n["torch"]:
        out.append(
            Check.within(
                f"torch SGD vs Goh's iteration (x={r['lr_curvature']:g}, beta={r['beta']:g})",
                r["max_relative_difference"],
                high=1e-12,
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: ``[OUT_DIR] [--quick]``; prints the key numbers and the check summary; 1 when a check fails."""
    return run_source("goh_momentum", argv, _report)


def _report(n: dict[str, Any]) -> None:
    mc = n["map"]
    print(
        f"map {mc['grid']}: closed form {mc['closed_form_max_error']:.2g}, eigvals {mc['eigvals_max_error']:.2g}, "
        f"edge {mc['edge_max_error']:.2g}, band {max(mc['band_low_max_error'], mc['band_high_max_error']):.2g} "
        f"(dx {mc['dx']:.3g})"
    )
    for r in n["tuning"]:
        print(
            f"kappa {r['kappa']:10.4g}: HB {r['momentum_rate']:.9f} (Polyak {r['polyak_rate']:.9f}), "
            f"GD {r['gd_rate']:.9f} ((k-1)/(k+1) {r['gd_closed_rate']:.9f})"
        )
    print(f"max errors: {n['tuning_max_errors']}")


if __name__ == "__main__":
    raise SystemExit(main())
