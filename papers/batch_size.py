"""Batch size on the noisy quadratic model: steps to a target loss, critical batch size, scaling rules.

Reproduces the qualitative results of Zhang, Li, Nado, Martens, Sachdeva,
Dahl, Shallue & Grosse, "Which Algorithmic Choices Matter at Which Batch
Sizes? Insights From a Noisy Quadratic Model" (NeurIPS 2019) on their
spectrum (``h_i = 1/i``, ``i <= 10^4``, per-example gradient variance ``c_i =
h_i``, so a batch of ``B`` gives noise variance ``c_i / B``; ``theta_0 ~ N(0,
I)``; target loss 0.01, as in their notebook gd-zhang/noisy-quadratic-model):

* steps to the target fall as ``1/B`` (perfect scaling) for small batches and
  level off beyond a critical batch size;
* the tuned learning rate grows linearly with ``B`` in the small-batch regime;
* momentum (tuned per batch size) does not help at small batches but
  extends perfect scaling to larger ones; preconditioning (``H^{-1/2}``,
  "Adam-like") helps at every batch size and extends it too; Adam itself,
  linearised with its normaliser at the noise's second moment ``v = c/B``,
  behaves like ``H^{-1/2}`` with a learning rate growing as ``sqrt(B)``.

The curves come from :func:`optfilters.batch_size.batch_scaling` (exact
sums over the 10^4 coordinates by doubling; the search runs on a quantised
copy of the spectrum and the reported steps are exact), checked against the
step-by-step recursion of :func:`optfilters.noisy_quadratic.predict` and
against Monte-Carlo runs of the real optimizer through the PyTorch bridge
(:func:`optfilters.observe.observe_quadratic`) at three batch sizes.  The
scaling rules of :func:`optfilters.batch_size.scaling_rule` (linear ``lr ~
B`` for SGD; poles ``beta -> beta^kappa`` with the loop gain per example kept
for heavy ball; ``lr ~ sqrt(B)`` for Adam) are checked with
:func:`optfilters.batch_size.check_scaling_rule` (loss per example seen, exact
predictions) against the rule that ignores the filter.

Run ``python -m optfilters.papers.batch_size [OUT_DIR] [--quick]`` (or
``optfilters figures batch_size``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from optfilters.papers import Check, caption_number, checks_section, run_source, save_figure, write_outputs

TITLE = "Batch size on the noisy quadratic model: critical batch size and scaling rules (Zhang et al. 2019)"

#: Momentum grid searched per batch size (as the paper's notebook: 1 - 10^-k).
MOMENTA_FULL = tuple(float(v) for v in 1.0 - np.geomspace(1e-4, 1.0, 9))
MOMENTA_QUICK = tuple(float(v) for v in 1.0 - np.geomspace(1e-3, 1.0, 5))

#: (key, label, catalogue name, fixed hyperparameters, tuned grid key, preconditioning power).
OPTIMIZERS: tuple[tuple[str, str, str, dict[str, Any], bool, float], ...] = (
    ("sgd", "SGD", "sgd", {}, False, 0.0),
    ("heavy_ball", "heavy ball (momentum tuned)", "momentum", {}, True, 0.0),
    ("sgd_preconditioned", "SGD, H^-1/2", "sgd", {}, False, 0.5),
    ("heavy_ball_preconditioned", "heavy ball, H^-1/2", "momentum", {}, True, 0.5),
    ("adam", "Adam (beta1 0.9), linearised at v = c/B", "adam", {"beta1": 0.9}, False, 0.0),
)


def _settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "dim": 1000,
            "target": 0.01,
            "batches": [float(4**k) for k in range(9)],
            "momenta": MOMENTA_QUICK,
            "lr_points": 20,
            "bins": 48,
            "predict_batches": (16.0,),
            "predict_steps": (1, 10, 100),
            "mc_batches": (4096.0, 16384.0, 65536.0),
            "mc_seeds": 4,
            "rules_kappa": (4,),
            "rule_steps": 200,
            "adam_rule_steps": 120,
            "dpi": 100,
        }
    return {
        "dim": 10_000,
        "target": 0.01,
        "batches": [float(4**k) for k in range(11)],
        "momenta": MOMENTA_FULL,
        "lr_points": 40,
        "bins": 192,
        "predict_batches": (4096.0,),
        "predict_steps": (1, 10, 100, 300),
        "mc_batches": (4096.0, 16384.0, 65536.0),
        "mc_seeds": 4,
        "rules_kappa": (4, 16),
        "rule_steps": 800,
        "adam_rule_steps": 400,
        "dpi": 150,
    }


# ----------------------------------------------------------------------------- experiments


def _scaling(settings: dict[str, Any]) -> dict[str, Any]:
    from optfilters.batch_size import NoisyQuadraticSpectrum, batch_scaling

    nqm = NoisyQuadraticSpectrum.zhang2019(settings["dim"])
    results: dict[str, Any] = {}
    for key, label, name, fixed, tuned, power in OPTIMIZERS:
        tune = {"momentum": settings["momenta"]} if tuned else None
        r = batch_scaling(
            name,
            settings["batches"],
            target=settings["target"],
            nqm=nqm,
            tune=tune,
            preconditioning=power,
            lr_points=settings["lr_points"],
            bins=settings["bins"],
            **fixed,
        )
        results[key] = {"label": label, "result": r, "optimizer": name, "fixed": fixed, "preconditioning": power}
    return results


def _exact_vs_predict(settings: dict[str, Any], scaling: dict[str, Any]) -> dict[str, Any]:
    """The doubling sums against :func:`optfilters.noisy_quadratic.predict` at the tuned settings."""
    from optfilters.batch_size import NoisyQuadraticSpectrum, expected_loss
    from optfilters.noisy_quadratic import predict

    nqm = NoisyQuadraticSpectrum.zhang2019(settings["dim"])
    ks = np.asarray(settings["predict_steps"])
    out: dict[str, Any] = {}
    worst = 0.0
    for key in ("sgd", "heavy_ball", "heavy_ball_preconditioned"):
        entry = scaling[key]
        r = entry["result"]
        for batch in settings["predict_batches"]:
            j = int(np.flatnonzero(r.batch_sizes == batch)[0])
            hp = {k: float(v[j]) for k, v in r.hyperparameters.items()}
            lr = float(r.lr[j])
            mine = expected_loss(
                entry["optimizer"], ks, lr=lr, batch_size=batch, nqm=nqm, preconditioning=entry["preconditioning"], **hp
            )
            scale = nqm.curvatures ** (-entry["preconditioning"])
            # Preconditioning as predict sees it: per-coordinate lr on a reparametrised quadratic
            # (theta = P^{1/2} u: curvature h P, gradient noise c P, start variance 1 / P).
            reference = predict(
                entry["optimizer"],
                lr=lr,
                curvatures=nqm.curvatures * scale,
                noise_var=nqm.noise * scale / batch,
                init=0.0,
                init_var=1.0 / scale,
                steps=int(ks.max()),
                **hp,
            )
            theirs = 0.5 * (reference.variance[ks] @ (nqm.curvatures * scale))
            diff = float(np.max(np.abs(mine - theirs) / theirs))
            worst = max(worst, diff)
            out[f"{key} B={batch:g}"] = {
                "steps": ks.tolist(),
                "doubling": mine.tolist(),
                "predict": theirs.tolist(),
                "max_relative_difference": diff,
            }
    return {"runs": out, "max_relative_difference": worst}


def _monte_carlo(settings: dict[str, Any], scaling: dict[str, Any]) -> dict[str, Any]:
    """Real optimizer runs (bridge) at the tuned heavy-ball settings of three batch sizes, to the predicted step."""
    from optfilters.batch_size import NoisyQuadraticSpectrum
    from optfilters.observe import observe_quadratic

    nqm = NoisyQuadraticSpectrum.zhang2019(settings["dim"])
    r = scaling["heavy_ball"]["result"]
    target = settings["target"]
    out: dict[str, Any] = {}
    for batch in settings["mc_batches"]:
        j = int(np.flatnonzero(r.batch_sizes == batch)[0])
        k = int(r.steps[j])
        momentum = float(r.hyperparameters["momentum"][j])
        obs = observe_quadratic(
            "momentum",
            lr=float(r.lr[j]),
            momentum=momentum,
            curvatures=nqm.curvatures,
            noise_var=nqm.noise / batch,
            init=0.0,
            init_var=nqm.init_var,
            steps=k + max(k // 20, 5),
            seeds=settings["mc_seeds"],
            seed=0,
        )
        mean, se = float(obs.observed_mean_loss[k]), float(obs.observed_stderr[k])
        below = np.flatnonzero(obs.observed_mean_loss <= target)
        observed_k = int(below[0]) if below.size else -1
        out[f"B={batch:g}"] = {
            "batch_size": batch,
            "lr": float(r.lr[j]),
            "momentum": momentum,
            "predicted_steps": k,
            "predicted_loss_at_steps": float(obs.predicted_loss[k]),
            "observed_mean_at_steps": mean,
            "observed_stderr_at_steps": se,
            "z_at_steps": (mean - float(obs.predicted_loss[k])) / se if se > 0 else 0.0,
            "observed_first_step_below_target": observed_k,
            "step_relative_difference": abs(observed_k - k) / k if observed_k >= 0 else math.inf,
            "fraction_within_4_stderr": obs.fraction_within(4.0),
            "comparison": obs,
        }
    return out


def _rules(settings: dict[str, Any]) -> dict[str, Any]:
    """Scaling rules checked on exact predictions: the derived rule against the one that ignores the filter."""
    from optfilters.batch_size import NoisyQuadraticSpectrum, check_scaling_rule

    nqm = NoisyQuadraticSpectrum.zhang2019(100)
    h = 1.0 / np.arange(1, 31)
    near = NoisyQuadraticSpectrum(h, h, init_var=0.01)  # a start near the minimum: v is noise-dominated
    cases = (
        ("sgd", "SGD lr 0.005, B 4", "sgd", {"lr": 0.005}, ("linear", "sqrt"), nqm, 4.0, settings["rule_steps"]),
        (
            "heavy_ball",
            "heavy ball lr 0.002, momentum 0.9, B 4",
            "momentum",
            {"lr": 0.002, "momentum": 0.9},
            ("filter", "linear"),
            nqm,
            4.0,
            settings["rule_steps"],
        ),
        (
            "adam",
            "Adam lr 5e-4, B 1, 30 coordinates, start near the minimum",
            "adam",
            {"lr": 5e-4},
            ("sqrt", "linear"),
            near,
            1.0,
            settings["adam_rule_steps"],
        ),
    )
    out: dict[str, Any] = {}
    for key, label, name, hp, rules, spectrum, batch, steps in cases:
        for kappa in settings["rules_kappa"]:
            for rule in rules:
                c = check_scaling_rule(name, kappa, rule=rule, batch_size=batch, steps=steps, nqm=spectrum, **hp)
                out[f"{key} kappa={kappa} {rule}"] = {
                    "label": label,
                    "optimizer": key,
                    "kappa": kappa,
                    "rule": rule,
                    "derived": rule == rules[0],
                    "max_relative_difference": c.max_relative_difference,
                    "scaled": {k: v for k, v in c.scaled.items() if k in ("lr", "momentum", "beta1", "beta2")},
                    "check": c,
                }
    return out


# ----------------------------------------------------------------------------- figures


def _figure_scaling(scaling: dict[str, Any], out: Path, dpi: int) -> list[str]:
    import matplotlib.pyplot as plt

    from optfilters import plot

    with plot.style():
        fig, axes = plt.subplots(1, 2, figsize=(12.0, 4.8), squeeze=False)
    results = {v["label"]: v["result"] for v in scaling.values()}
    plot.batch_scaling_plot(results, ax=axes[0, 0], quantity="steps", title="steps to loss 0.01 (tuned per batch size)")
    plot.batch_scaling_plot(results, ax=axes[0, 1], quantity="lr", title="tuned learning rate")
    return [save_figure(fig, out / "steps_vs_batch.png", dpi)]


def _figure_checks(mc: dict[str, Any], rules: dict[str, Any], out: Path, dpi: int) -> list[str]:
    import matplotlib.pyplot as plt

    from optfilters import plot

    with plot.style():
        fig, axes = plt.subplots(1, 3, figsize=(15.0, 4.4), squeeze=False)
    comparisons = {k: v["comparison"] for k, v in mc.items()}
    plot.loss_comparison_plot(comparisons, ax=axes[0, 0], log=True, band=2.0, title="heavy ball (tuned): bridge runs")
    for i, row in enumerate(mc.values()):
        axes[0, 0].axvline(row["predicted_steps"], color=plot.PALETTE[i % len(plot.PALETTE)], linestyle=":")
    axes[0, 0].axhline(0.01, color="0.3", linewidth=0.8)
    for ax, key in ((axes[0, 1], "heavy_ball"), (axes[0, 2], "adam")):
        for i, row in enumerate(
            r for r in rules.values() if r["optimizer"] == key and r["kappa"] == max(v["kappa"] for v in rules.values())
        ):
            c = row["check"]
            colour = plot.PALETTE[i % len(plot.PALETTE)]
            if i == 0:
                ax.plot(c.examples, c.base_loss, color="black", linewidth=2.2, label=f"B = {c.batch_size:g}")
            ax.plot(
                c.examples,
                c.scaled_loss,
                color=colour,
                linestyle="--",
                label=f"B = {c.kappa * c.batch_size:g}, {row['rule']} rule "
                f"(max diff {100 * row['max_relative_difference']:.2g}%)",
            )
        ax.set_yscale("log")
        ax.set_xlabel("examples seen")
        ax.set_ylabel("expected loss")
        ax.set_title(f"{key.replace('_', ' ')}: scaling rules")
        ax.legend(fontsize="x-small")
    return [save_figure(fig, out / "checks.png", dpi)]


# ----------------------------------------------------------------------------- numbers and captions


def _g(value: Any, digits: int = 4) -> str:
    return caption_number(value, digits, yes_no=False, infinite="inf")


def _numbers(
    settings: dict[str, Any],
    scaling: dict[str, Any],
    exact: dict[str, Any],
    mc: dict[str, Any],
    rules: dict[str, Any],
    quick: bool,
) -> dict[str, Any]:
    table = {k: {**v["result"].as_dict(), "label": v["label"]} for k, v in scaling.items()}
    sgd, hb = scaling["sgd"]["result"], scaling["heavy_ball"]["result"]
    pre = scaling["sgd_preconditioned"]["result"]
    claims = {
        "sgd_lr_slope_small_batch": sgd.lr_slope(),
        "sgd_preconditioned_lr_slope_small_batch": pre.lr_slope(),
        "adam_lr_slope_small_batch": scaling["adam"]["result"].lr_slope(),
        "critical_batch_size": {k: v["result"].critical_batch_size for k, v in scaling.items()},
        "heavy_ball_over_sgd_critical_batch": hb.critical_batch_size / sgd.critical_batch_size,
        "preconditioned_over_sgd_critical_batch": pre.critical_batch_size / sgd.critical_batch_size,
        "heavy_ball_over_sgd_steps_smallest_batch": float(hb.steps[0] / sgd.steps[0]),
        "heavy_ball_over_sgd_steps_largest_batch": float(hb.steps[-1] / sgd.steps[-1]),
        "preconditioned_over_sgd_steps_smallest_batch": float(pre.steps[0] / sgd.steps[0]),
        "search_vs_exact_max_relative_difference": max(
            float(np.nanmax(np.abs(v["result"].search_steps - v["result"].steps) / v["result"].steps))
            for v in scaling.values()
        ),
    }
    return {
        "title": TITLE,
        "quick": quick,
        "seed": 0,
        "dim": settings["dim"],
        "target": settings["target"],
        "batch_sizes": settings["batches"],
        "momenta": list(settings["momenta"]),
        "initial_loss": float(0.5 * np.sum(1.0 / np.arange(1, settings["dim"] + 1))),
        "scaling": table,
        "claims": claims,
        "exact_vs_predict": exact,
        "monte_carlo": {k: {kk: vv for kk, vv in v.items() if kk != "comparison"} for k, v in mc.items()},
        "scaling_rules": {k: {kk: vv for kk, vv in v.items() if kk != "check"} for k, v in rules.items()},
    }


def _captions(numbers: dict[str, Any], files: dict[str, list[str]]) -> str:
    claims = numbers["claims"]
    lines = [
        f"# {TITLE}",
        "",
        f"Model: h_i = 1/i, c_i = h_i, i = 1..{numbers['dim']}; gradient noise variance c_i/B at batch size B; "
        f"theta_0 ~ N(0, I) (initial loss {numbers['initial_loss']:.4g}); target loss {numbers['target']:g}. "
        "Steps from optfilters.batch_size.batch_scaling: for each batch size the learning rate (and the momentum, "
        f"grid {', '.join(f'{m:.4g}' for m in numbers['momenta'])}) that reaches the target in the fewest steps, "
        "searched with exact doubling sums on a quantised spectrum, then the exact integer steps over every "
        f"coordinate. {'Quick (CI) settings.' if numbers['quick'] else 'Full settings.'}",
        "",
        f"## {', '.join(files['scaling'])}",
        "Left: steps to the target against B (log-log); dotted: perfect scaling (steps ~ 1/B) through each "
        "curve's smallest batch; triangles: critical batch sizes (examples needed, steps x B, twice the "
        "smallest batch's). Right: the tuned learning rate (dotted: lr ~ B).",
        "",
        "| optimizer | " + " | ".join(f"B={b:.0f}" for b in numbers["batch_sizes"]) + " | critical B | lr slope |",
        "|---|" + "---|" * len(numbers["batch_sizes"]) + "---|---|",
    ]
    for row in numbers["scaling"].values():
        steps = " | ".join(_g(s, 6) for s in row["steps"])
        lines.append(
            f"| {row['label']} | {steps} | {_g(row['critical_batch_size'], 4)} | {_g(row['lr_slope_small_batch'], 3)} |"
        )
    lines += [
        "",
        "Checked claims (Zhang et al. 2019): the tuned lr grows linearly with B at small batches (slope of log lr "
        f"against log B below half the critical batch: SGD {_g(claims['sgd_lr_slope_small_batch'], 4)}, SGD with "
        f"H^-1/2 {_g(claims['sgd_preconditioned_lr_slope_small_batch'], 4)}; Adam linearised at v = c/B "
        f"{_g(claims['adam_lr_slope_small_batch'], 4)}: its normaliser already scales the step by sqrt(B)); "
        "momentum does not help at small batches (heavy ball / SGD steps at the smallest batch: "
        f"{_g(claims['heavy_ball_over_sgd_steps_smallest_batch'], 4)}) but does at large ones "
        f"({_g(claims['heavy_ball_over_sgd_steps_largest_batch'], 4)} at the largest) and extends perfect scaling "
        f"(critical batch x{_g(claims['heavy_ball_over_sgd_critical_batch'], 3)}); preconditioning helps at "
        f"every batch size ({_g(claims['preconditioned_over_sgd_steps_smallest_batch'], 4)} x SGD's steps at the "
        "smallest) and extends perfect scaling (critical batch "
        f"x{_g(claims['preconditioned_over_sgd_critical_batch'], 3)}). "
        "The search's estimate on the quantised spectrum is within "
        f"{_g(100 * claims['search_vs_exact_max_relative_difference'], 3)}% of the exact steps.",
        "",
        f"Exact sums against optfilters.noisy_quadratic.predict (the step-by-step recursion) at the tuned settings: "
        f"max relative difference {_g(numbers['exact_vs_predict']['max_relative_difference'], 2)}.",
        "",
        f"## {', '.join(files['checks'])}",
        "Left: heavy ball at its tuned (lr, momentum) for three batch sizes, trained for real through the PyTorch "
        "bridge (optfilters.observe.observe_quadratic; mean over seeds with 2 s.e.) against the exact prediction; "
        "dotted: the predicted steps to the target. Middle and right: loss against examples seen at batch B and "
        "kappa B (exact predictions, optfilters.batch_size.check_scaling_rule): the rule derived from the filter "
        "against the rule that ignores it.",
        "",
        "| batch size | lr | momentum | predicted steps | predicted loss there | observed mean (s.e.) | z | "
        "observed first step below target | within 4 s.e. |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in numbers["monte_carlo"].values():
        lines.append(
            f"| {row['batch_size']:g} | {_g(row['lr'], 4)} | {_g(row['momentum'], 4)} | {row['predicted_steps']} | "
            f"{_g(row['predicted_loss_at_steps'], 5)} | {_g(row['observed_mean_at_steps'], 5)} "
            f"({_g(row['observed_stderr_at_steps'], 2)}) | {row['z_at_steps']:.2f} | "
            f"{row['observed_first_step_below_target']} | {100 * row['fraction_within_4_stderr']:.1f}% |"
        )
    lines += [
        "",
        "| case | kappa | rule | max relative difference of the loss per example | scaled hyperparameters |",
        "|---|---|---|---|---|",
    ]
    for row in numbers["scaling_rules"].values():
        hp = ", ".join(f"{k} {v:.4g}" for k, v in row["scaled"].items())
        derived = " (derived)" if row["derived"] else ""
        lines.append(
            f"| {row['label']} | {row['kappa']} | {row['rule']}{derived} | "
            f"{_g(100 * row['max_relative_difference'], 3)}% | {hp} |"
        )
    lines += [
        "",
        "Rules: linear lr ~ B for SGD; for heavy ball every pole beta -> beta^kappa with the loop gain per example "
        "kept (lr' = kappa lr (1 - beta^kappa) / (1 - beta)), against lr ~ B alone; for Adam lr ~ sqrt(B) "
        "(the normaliser contributes the other sqrt(B) when v is noise-dominated: the check starts near the "
        "minimum), against lr ~ B.",
    ]
    lines += checks_section(
        numbers["checks"],
        "The paper's claims (slopes and ratios), the exact sums against the step-by-step recursion (1e-10), the "
        "bridge runs against the prediction (|z| <= 4, steps to the target within 10%, 95% of steps within 4 s.e.) "
        "and each derived scaling rule (within 3% at kappa <= 4 and 6% at kappa = 16, where the first-order rule's "
        "lr h reaches 0.26; at least 3x better than the rule that ignores the filter).",
    )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- entry points


def reproduce(out_dir: str | Path = "figures/batch_size", quick: bool = False) -> dict[str, Any]:
    """Run the batch-size experiments, write the figures, ``captions.md`` and ``numbers.json``.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created).
    quick : bool
        CI size (10^3 coordinates, 7 batch sizes).

    Returns
    -------
    dict
        ``scaling`` (per optimizer: steps, tuned lr and momentum per batch size, critical batch size, lr
        slope), ``claims``, ``exact_vs_predict``, ``monte_carlo`` (three batch sizes), ``scaling_rules``.

    Examples
    --------
    >>> from optfilters.papers import batch_size
    >>> [key for key, *_ in batch_size.OPTIMIZERS][:2]
    ['sgd', 'heavy_ball']
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = _settings(quick)
    scaling = _scaling(settings)
    exact = _exact_vs_predict(settings, scaling)
    mc = _monte_carlo(settings, scaling)
    rules = _rules(settings)
    files = {
        "scaling": _figure_scaling(scaling, out, settings["dpi"]),
        "checks": _figure_checks(mc, rules, out, settings["dpi"]),
    }
    numbers = _numbers(settings, scaling, exact, mc, rules, quick)
    numbers["files"] = [name for group in files.values() for name in group] + ["captions.md", "numbers.json"]
    numbers["checks"] = _checks(numbers)
    write_outputs(out, numbers, _captions(numbers, files))
    return numbers


def _checks(n: dict[str, Any]) -> list[Check]:
    """The paper's claims, the exact sums against predict, Monte Carlo and the scaling rules (the tests' bounds)."""
    c = n["claims"]
    steps = np.asarray(n["scaling"]["sgd"]["steps"], dtype=float)
    out = [
        Check.within(
            "SGD: tuned lr slope against B at small batches (lr ~ B)", c["sgd_lr_slope_small_batch"], 0.8, 1.25
        ),
        Check.within(
            "Adam linearised: tuned lr slope at small batches (lr ~ sqrt(B))",
            c["adam_lr_slope_small_batch"],
            0.35,
            0.65,
        ),
        Check.within(
            "momentum extends perfect scaling (critical batch / SGD's)",
            c["heavy_ball_over_sgd_critical_batch"],
            low=3.0,
        ),
        Check.within(
            "preconditioning extends perfect scaling (critical batch / SGD's)",
            c["preconditioned_over_sgd_critical_batch"],
            low=3.0,
        ),
        Check.within(
            "momentum barely helps at the smallest batch (steps / SGD's)",
            c["heavy_ball_over_sgd_steps_smallest_batch"],
            low=0.7,
        ),
        Check.within(
            "momentum helps at the largest batch (steps / SGD's)",
            c["heavy_ball_over_sgd_steps_largest_batch"],
            high=0.3,
        ),
        Check.within(
            "preconditioning helps at the smallest batch (steps / SGD's)",
            c["preconditioned_over_sgd_steps_smallest_batch"],
            high=0.5,
        ),
        Check.holds("SGD: steps to the target never grow with B", bool(np.all(np.diff(steps) <= 0))),
        Check.holds(
            "SGD: a finite critical batch size",
            math.isfinite(n["scaling"]["sgd"]["critical_batch_size"]),
            n["scaling"]["sgd"]["critical_batch_size"],
        ),
        Check.within(
            "exact doubling sums vs noisy_quadratic.predict (relative)",
            n["exact_vs_predict"]["max_relative_difference"],
            high=1e-10,
        ),
    ]
    for key, row in n["monte_carlo"].items():
        k = f"Monte Carlo heavy ball {key}"
        out += [
            Check.within(
                f"{k}: observed vs predicted loss at the predicted step (z)", abs(row["z_at_steps"]), high=4.0
            ),
            Check.within(
                f"{k}: predicted loss at the predicted step", row["predicted_loss_at_steps"], high=n["target"]
            ),
            Check.within(
                f"{k}: observed first step below the target vs predicted (relative)",
                row["step_relative_difference"],
                high=0.1,
            ),
            Check.within(f"{k}: fraction of steps within 4 s.e.", row["fraction_within_4_stderr"], low=0.95),
        ]
    rules = n["scaling_rules"]
    for key, kappa in dict.fromkeys((r["optimizer"], r["kappa"]) for r in rules.values()):
        rows = [r for r in rules.values() if r["optimizer"] == key and r["kappa"] == kappa]
        derived = max(r["max_relative_difference"] for r in rows if r["derived"])
        other = min(r["max_relative_difference"] for r in rows if not r["derived"])
        k = f"scaling rule {key} kappa={kappa}"
        out += [
            Check.within(f"{k}: derived rule, loss per example (relative)", derived, high=_rule_bound(kappa)),
            Check.within(f"{k}: the rule ignoring the filter is 3x worse", other, low=3.0 * derived),
        ]
    return out


def _rule_bound(kappa: float) -> float:
    """The derived rule's allowed loss error: 3% up to kappa = 4, 6% above.

    The rules are first order in ``lr * h``; at kappa = 16 the tuned heavy-ball ``lr * h`` reaches 0.26
    and the measured error 5.4% (1.3% at kappa = 4), so the bound states where the first-order rule holds.
    """
    return 0.03 if kappa <= 4 else 0.06


def main(argv: list[str] | None = None) -> int:
    """Command line: ``[OUT_DIR] [--quick]``; prints the key numbers and the check summary; 1 when a check fails."""
    return run_source("batch_size", argv, _report)


def _report(numbers: dict[str, Any]) -> None:
    for key, row in numbers["scaling"].items():
        critical, slope = _g(row["critical_batch_size"], 4), _g(row["lr_slope_small_batch"], 3)
        print(f"{key:28s} critical B {critical:>8s}  lr slope {slope}")
    print(numbers["claims"])


if __name__ == "__main__":
    raise SystemExit(main())
