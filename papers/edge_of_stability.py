"""Edge of stability on a real network: sharpness rises, then hovers at the closed loop's threshold.

Reproduces, on an MLP trained full-batch on scikit-learn's digits
(:class:`optfilters.network.DigitsMLP`, squared loss, trained with the bridge
:class:`optfilters.torch.FilterOptimizer`), the observation of Cohen, Kaur,
Li, Kolter & Talwalkar, "Gradient Descent on Neural Networks Typically
Occurs at the Edge of Stability" (ICLR 2021), and of Cohen et al., "Adaptive
Gradient Methods at the Edge of Stability" (2022): the sharpness (top
Hessian eigenvalue of the training loss) rises during training ("progressive
sharpening") until it reaches the largest curvature at which the optimizer's
closed loop on a quadratic is stable, then hovers there:

* gradient descent: ``2 / lr``;
* heavy-ball momentum (torch SGD, ``mu = 0.9``): ``(2 + 2 mu) / lr = 3.8 / lr``;
* Nesterov (``mu = 0.9``): ``(2 + 2 mu) / ((1 + 2 mu) lr) = 1.357 / lr``;
* Adam (``beta1 = 0.9``): the *preconditioned* sharpness
  ``lambda_max(P H) = lambda_max(D^-1 H)``, preconditioner ``P = 1 / D``,
  denominator ``D = diag(sqrt(v_hat)) + eps``, at
  ``(2 + 2 beta1) / ((1 - beta1) lr) = 38 / lr``.

Every threshold is computed by :func:`optfilters.network.sharpness_threshold`
(the closed loop's stability edge from the optimizer's filter, not typed in),
and each run reports the median sharpness over the last 30% of its steps as a
ratio to it.  A second part records gradients and updates on 256 coordinates
of mini-batch runs and compares the empirical transfer function with the
model's ``|H|``.

Run ``python -m optfilters.papers.edge_of_stability [OUT_DIR] [--quick]``
(or ``optfilters figures edge_of_stability``).

Numbers (full mode, seed 0, 64-64-64-10 tanh MLP on 1000 digits, 2000
full-batch steps, sharpness every 20 steps; late phase = median over the last
30% of the steps; 75 s on one core):

=========================  ==============================  ==========  ==========  =====
run                        predicted threshold             late phase  ratio       10-90%
=========================  ==============================  ==========  ==========  =====
GD lr=0.2                  2/lr = 10                       10.08       1.008       0.997-1.024
GD lr=0.4                  2/lr = 5                        5.129       1.026       1.015-1.035
GD lr=0.6                  2/lr = 3.333                    3.470       1.041       1.029-1.052
heavy ball 0.9, lr=0.5     3.8/lr = 7.6                    7.465       0.982       0.963-1.012
Nesterov 0.9, lr=0.2       1.357/lr = 6.786                6.838       1.008       1.004-1.010
Adam 0.9, lr=0.002         38/lr = 19000 (preconditioned)  19000       1.000       0.987-1.012
=========================  ==============================  ==========  ==========  =====

Every run starts at sharpness 2.34 (Adam's preconditioned: 988) and crosses
90% of its threshold between steps 60 and 640.  The empirical ``|H|`` of
mini-batch heavy ball (exact LTI prediction) and Adam (linearised) is within
0.03% (median; 3.7% and 3.1% at worst) of the prediction where the coherence is
at least 0.9.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from optfilters.papers import Check, progress, rounded, run_source, save_figure, write_outputs

TITLE = "Edge of stability on a real network: sharpness hovers at the closed-loop threshold (Cohen et al. 2021, 2022)"

#: Fraction of the run (by step) over which the late-phase sharpness is taken.
LATE_FRACTION = 0.3

#: (label, optimizer, lr, hyperparameters, threshold formula) of the full-batch runs.
RUNS: tuple[tuple[str, str, float, dict[str, Any], str], ...] = (
    ("GD lr=0.2", "sgd", 0.2, {}, "2/lr"),
    ("GD lr=0.4", "sgd", 0.4, {}, "2/lr"),
    ("GD lr=0.6", "sgd", 0.6, {}, "2/lr"),
    ("heavy ball mu=0.9 lr=0.5", "momentum", 0.5, {"momentum": 0.9}, "(2+2mu)/lr"),
    ("Nesterov mu=0.9 lr=0.2", "nesterov", 0.2, {"momentum": 0.9}, "(2+2mu)/((1+2mu)lr)"),
    ("Adam beta1=0.9 lr=0.002", "adam", 0.002, {"betas": (0.9, 0.999)}, "(2+2beta1)/((1-beta1)lr), preconditioned"),
)

#: The quick (CI) runs: a smaller network, fewer steps.
QUICK_RUNS: tuple[tuple[str, str, float, dict[str, Any], str], ...] = (
    ("GD lr=0.4", "sgd", 0.4, {}, "2/lr"),
    ("GD lr=0.6", "sgd", 0.6, {}, "2/lr"),
    ("heavy ball mu=0.9 lr=0.5", "momentum", 0.5, {"momentum": 0.9}, "(2+2mu)/lr"),
    ("Adam beta1=0.9 lr=0.004", "adam", 0.004, {"betas": (0.9, 0.999)}, "(2+2beta1)/((1-beta1)lr), preconditioned"),
)

#: (label, optimizer, lr, hyperparameters) of the mini-batch runs whose transfer function is measured.
RESPONSE_RUNS: tuple[tuple[str, str, float, dict[str, Any]], ...] = (
    ("heavy ball mu=0.9", "momentum", 0.01, {"momentum": 0.9}),
    ("Adam beta1=0.9", "adam", 0.001, {"betas": (0.9, 0.999)}),
)


def _settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "network": {"hidden": (32, 32), "samples": 300},
            "steps": 600,
            "every": 10,
            "runs": QUICK_RUNS,
            "response_steps": 1200,
            "response_start": 400,
            "coordinates": 64,
        }
    return {
        "network": {"hidden": (64, 64), "samples": 1000},
        "steps": 2000,
        "every": 20,
        "runs": RUNS,
        "response_steps": 3000,
        "response_start": 1000,
        "coordinates": 256,
    }


def _figure_sharpness(traces: dict[str, Any], out: Path) -> list[str]:
    import matplotlib.pyplot as plt

    from optfilters import plot

    groups = {
        "gradient descent": [k for k in traces if k.startswith("GD")],
        "momentum": [k for k in traces if k.startswith(("heavy", "Nesterov"))],
        "Adam (preconditioned)": [k for k in traces if k.startswith("Adam")],
    }
    groups = {k: v for k, v in groups.items() if v}
    with plot.style():
        fig, axes = plt.subplots(len(groups), 1, figsize=(6.4, 2.9 * len(groups)), squeeze=False)
    for ax, (title, labels) in zip(axes[:, 0], groups.items(), strict=True):
        # A list: each trace is labelled by its optimizer and lr.
        plot.sharpness_plot([traces[label] for label in labels], ax=ax, log=title.startswith("gradient"), title=title)
        ax.legend(loc="lower right", ncols=2 if len(labels) > 2 else 1, fontsize="small")
        if title.startswith("Adam"):
            ax.set_ylabel("preconditioned sharpness")
    return [save_figure(fig, out / "sharpness.png", 150, machine_dependent=True)]


def _figure_ratios(rows: dict[str, dict[str, Any]], out: Path) -> list[str]:
    import matplotlib.pyplot as plt

    from optfilters import plot

    labels = list(rows)
    ratios = [rows[k]["ratio"] if rows[k]["ratio"] is not None else math.nan for k in labels]
    with plot.style():
        fig, ax = plt.subplots(figsize=(6.4, 0.5 * len(labels) + 1.4))
        y = np.arange(len(labels))
        ax.axvline(1.0, color="0.3", linestyle="--", linewidth=1.0, label="predicted threshold")
        low = [rows[k]["late_phase_p10"] / rows[k]["threshold"] for k in labels]
        high = [rows[k]["late_phase_p90"] / rows[k]["threshold"] for k in labels]
        ax.hlines(y, low, high, color=plot.PALETTE[0], linewidth=1.2, label="10th-90th percentile")
        ax.plot(ratios, y, "o", color=plot.PALETTE[0], label="late-phase median / threshold")
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        lo = min([0.8, *[r for r in low if math.isfinite(r)]])
        hi = max([1.2, *[r for r in high if math.isfinite(r)]])
        ax.set_xlim(lo - 0.05, hi + 0.05)
        ax.set_xlabel(f"observed sharpness (median, last {LATE_FRACTION:.0%} of steps) / predicted threshold")
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=3, fontsize="small")
        name = save_figure(fig, out / "ratios.png", 150, machine_dependent=True)
    return [name]


def _figure_loss(observations: dict[str, Any], out: Path) -> list[str]:
    import matplotlib.pyplot as plt

    from optfilters import plot

    with plot.style():
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        for i, (label, obs) in enumerate(observations.items()):
            ax.plot(obs.steps, obs.loss, color=plot.PALETTE[i % len(plot.PALETTE)], linewidth=1.0, label=label)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("training loss (squared, full batch)")
        ax.legend(fontsize="small")
        name = save_figure(fig, out / "loss.png", 150, machine_dependent=True)
    return [name]


def _figure_response(responses: dict[str, Any], out: Path) -> list[str]:
    import matplotlib.pyplot as plt

    from optfilters import plot

    with plot.style():
        fig, axes = plt.subplots(2, len(responses), figsize=(5.0 * len(responses), 5.6), squeeze=False, sharex=True)
    for j, (label, response) in enumerate(responses.items()):
        plot.empirical_response_plot(response, ax=[axes[0, j], axes[1, j]], log=True, title=label)
    return [save_figure(fig, out / "empirical_response.png", 150, machine_dependent=True)]


def _fmt(value: Any, digits: int = 2) -> str:
    """Training numbers at two significant digits (machine-dependent beyond that; see the captions)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(int(rounded(float(value), digits)))
    if isinstance(value, float):
        return f"{rounded(value, digits):g}"
    return str(value)


def _captions(numbers: dict[str, Any], settings: dict[str, Any], files: dict[str, list[str]]) -> str:
    net = numbers["network"]
    lines = [
        f"# {TITLE}",
        "",
        f"Network: MLP 64-{'-'.join(str(h) for h in net['hidden'])}-10 ({net['activation']}), "
        f"{net['samples']} digits (scikit-learn), squared loss 1/2 mean_n sum_k (f_k - y_nk)^2, float64, "
        f"full batch, seed {numbers['seed']}; {settings['steps']} steps per run, sharpness every "
        f"{settings['every']} steps by Lanczos on Hessian-vector products (relative residual 1e-3). "
        f"{'Quick (CI) settings.' if numbers['quick'] else 'Full settings.'} "
        "Squared loss rather than cross-entropy: with cross-entropy the sharpness falls as the margins grow "
        "(on this network full-batch GD at lr 2 and 4 ends at 0.6% and 0.4% of 2/lr after 3000 steps, loss 1e-4), "
        "which hides the plateau.",
        "",
        f"## {', '.join(files['sharpness'])}",
        "Sharpness during training against the predicted edge of stability (dashed, one per run): "
        "gradient descent at several learning rates (log scale), heavy-ball and Nesterov momentum, and "
        "Adam's preconditioned sharpness lambda_max(D^-1 H) with D = diag(sqrt(v_hat)) + eps (the preconditioner "
        "is P = 1/D) read from the "
        "optimizer's state. Each threshold is the largest stable lr*h of the optimizer's closed loop on a "
        "quadratic (optfilters.network.sharpness_threshold), divided by lr. Checks: the sharpness rises from "
        "below its threshold (progressive sharpening) and then stays near it.",
        "",
        "| run | threshold (formula) | initial | late-phase median (10th-90th pct) | ratio | first step >= 90% | max |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, row in numbers["runs"].items():
        lines.append(
            f"| {label} | {_fmt(row['threshold'], 4)} ({row['formula']}) | {_fmt(row['initial_sharpness'])} | "
            f"{_fmt(row['late_phase_sharpness'])} ({_fmt(row['late_phase_p10'])}-{_fmt(row['late_phase_p90'])}) | "
            f"{_fmt(row['ratio'])} | {_fmt(row['first_reach_90'])} | "
            f"{_fmt(row['max_sharpness'])} |"
        )
    lines += [
        "",
        f"## {', '.join(files['ratios'])}",
        f"Observed late-phase sharpness (median over the last {LATE_FRACTION:.0%} of the steps) divided by the "
        "predicted threshold, one point per run, with the 10th-90th percentile of the late-phase values; 1 is the "
        "prediction. Checks the numbers in the table above.",
        "",
        f"## {', '.join(files['loss'])}",
        "Full-batch training loss of the same runs: it keeps decreasing over long times while the sharpness "
        "sits at the threshold, non-monotonically (the edge-of-stability regime), instead of diverging.",
        "",
        f"## {', '.join(files['response'])}",
        "Empirical transfer function from gradient to update direction (u_t = -(theta_t - theta_{t-1})/lr) on "
        f"{settings['coordinates']} random coordinates of mini-batch runs (batch "
        f"{numbers['response_batch_size']}, steps {settings['response_start']}..{settings['response_steps']}), "
        "Welch cross-spectrum over power spectrum, against the model's |H| (top), and the coherence (bottom). "
        "Heavy ball is linear and time-invariant, so the prediction is exact; Adam's is linearised, the "
        "normaliser frozen at each coordinate's recorded gain 1/P per Welch segment. Checks: relative error "
        "of |H| where the coherence is >= 0.9:",
        "",
        "| run | median relative error | max relative error | coherent fraction |",
        "|---|---|---|---|",
    ]
    for label, row in numbers["response"].items():
        lines.append(
            f"| {label} | {_fmt(row['median_relative_error'])} | {_fmt(row['max_relative_error'])} | "
            f"{_fmt(row['coherent_fraction'])} |"
        )
    lines += [
        "",
        "Numbers from training (sharpness, ratios, losses, |H| errors) are given to two significant digits: the "
        "runs are deterministic on one machine, but a CPU with other floating-point kernels follows a slightly "
        "different path near the edge of stability (the late-phase ratio moves by a few tenths of a percent).",
        "",
    ]
    return "\n".join(lines)


def reproduce(out_dir: str | Path = "figures/edge_of_stability", quick: bool = False) -> dict[str, Any]:
    """Run the edge-of-stability experiments, write the figures and ``captions.md``, return the checked numbers.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created).
    quick : bool
        CI size: a 64-32-32-10 network on 300 digits, 600 steps (seconds);
        the full size is 64-64-64-10 on 1000 digits, 2000 steps (about two
        minutes on two cores).

    Returns
    -------
    dict
        ``runs``: per run the ``threshold``, ``late_phase_sharpness``
        (median over the last 30% of the steps), their ``ratio``,
        ``initial_sharpness``, ``first_reach_90`` and more; ``response``: the
        empirical transfer function's errors; ``network``, ``quick``,
        ``checks``.  ``numbers.json`` keeps ``runs`` and ``response`` to two
        significant digits (machine-dependent; see the captions).

    Examples
    --------
    >>> from optfilters.papers import edge_of_stability
    >>> edge_of_stability.LATE_FRACTION
    0.3
    """
    import torch

    from optfilters.network import observe_network

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = _settings(quick)
    seed = 0
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the network is small: one thread is fastest, and leaves the other core free
    try:
        observations: dict[str, Any] = {}
        rows: dict[str, dict[str, Any]] = {}
        for label, name, lr, hp, formula in settings["runs"]:
            with progress(f"{label}: {settings['steps']} steps", settings["steps"]) as advance:
                obs = observe_network(
                    name,
                    lr=lr,
                    steps=settings["steps"],
                    seed=seed,
                    sharpness_every=settings["every"],
                    network=settings["network"],
                    progress=lambda step, total: advance(1),
                    **hp,
                )
            observations[label] = obs
            trace = obs.sharpness
            assert trace is not None
            rows[label] = {
                "optimizer": name,
                "lr": lr,
                "hyperparameters": {k: list(v) if isinstance(v, tuple) else v for k, v in hp.items()},
                "formula": formula,
                "threshold": trace.threshold,
                "threshold_times_lr": trace.threshold * lr,
                "preconditioned": trace.preconditioned,
                "initial_sharpness": float(trace.sharpness[0]),
                "late_phase_sharpness": trace.late_phase(LATE_FRACTION),
                "late_phase_p10": float(np.percentile(trace.late_values(LATE_FRACTION), 10)),
                "late_phase_p90": float(np.percentile(trace.late_values(LATE_FRACTION), 90)),
                "ratio": trace.ratio(LATE_FRACTION),
                "first_reach_90": trace.first_reach(0.9),
                "max_sharpness": float(np.max(trace.sharpness)),
                "final_loss": float(obs.loss[-1]),
                "test_accuracy": obs.test_accuracy,
                "diverged": obs.diverged,
            }
        batch = 32
        responses: dict[str, Any] = {}
        response_rows: dict[str, dict[str, Any]] = {}
        for label, name, lr, hp in RESPONSE_RUNS:
            with progress(
                f"{label} (mini-batch): {settings['response_steps']} steps", settings["response_steps"]
            ) as advance:
                obs = observe_network(
                    name,
                    lr=lr,
                    steps=settings["response_steps"],
                    seed=seed,
                    record_coordinates=settings["coordinates"],
                    record_start=settings["response_start"],
                    network={**settings["network"], "batch_size": batch},
                    progress=lambda step, total: advance(1),
                    **hp,
                )
            response = obs.empirical
            assert response is not None
            responses[label] = response
            response_rows[label] = {
                "label": response.label,
                "median_relative_error": response.relative_error(0.9),
                "max_relative_error": response.relative_error(0.9, "max"),
                "coherent_fraction": response.coherent_fraction(0.9),
                "dc_gain_predicted": float(response.predicted_magnitude[0]),
            }
    finally:
        torch.set_num_threads(previous_threads)

    files = {
        "sharpness": _figure_sharpness({k: o.sharpness for k, o in observations.items()}, out),
        "ratios": _figure_ratios(rows, out),
        "loss": _figure_loss(observations, out),
        "response": _figure_response(responses, out),
    }
    first = next(iter(observations.values()))
    numbers: dict[str, Any] = {
        "title": TITLE,
        "quick": quick,
        "seed": seed,
        "network": first.network.as_dict(),
        "steps": settings["steps"],
        "sharpness_every": settings["every"],
        "late_fraction": LATE_FRACTION,
        "runs": rows,
        "response_batch_size": batch,
        "response": response_rows,
        "files": [name for group in files.values() for name in group] + ["captions.md", "numbers.json"],
    }
    numbers["checks"] = _checks(numbers)
    write_outputs(out, numbers, _captions(numbers, settings, files), machine_dependent=("runs", "response", "checks"))
    return numbers


def _checks(numbers: dict[str, Any]) -> list[Check]:
    """Thresholds against their closed forms, sharpness against the thresholds (the bounds of this module's tests)."""
    closed = {"sgd": 2.0, "momentum": 3.8, "nesterov": 3.8 / 2.8, "adam": 38.0}
    out: list[Check] = []
    for label, row in numbers["runs"].items():
        name = row["optimizer"]
        linear = name in ("sgd", "momentum", "nesterov")
        out += [
            Check.close(f"{label}: threshold x lr vs closed form", row["threshold_times_lr"], closed[name], 1e-9),
            Check.within(
                f"{label}: initial sharpness / threshold (progressive sharpening)",
                row["initial_sharpness"] / row["threshold"],
                high=0.75 if name == "sgd" else 0.5,
            ),
            Check.within(f"{label}: late-phase sharpness / threshold", row["ratio"], 0.85 if linear else 0.8, 1.25),
            Check.holds(f"{label}: does not diverge", not row["diverged"]),
        ]
    for label, row in numbers["response"].items():
        out.append(
            Check.within(f"empirical |H| {label}: median relative error", row["median_relative_error"], high=0.05)
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: ``[OUT_DIR] [--quick]``; prints the late-phase ratios and the check summary; 1 on a failure."""
    return run_source("edge_of_stability", argv, _report)


def _report(numbers: dict[str, Any]) -> None:
    for label, row in numbers["runs"].items():
        print(
            f"{label:28s} threshold {row['threshold']:10.4g}  late-phase {row['late_phase_sharpness']:10.4g}  "
            f"ratio {row['ratio']:.3f}"
        )
    for label, row in numbers["response"].items():
        print(f"|H| {label:22s} median rel. error {row['median_relative_error']:.3g} (coherence >= 0.9)")


if __name__ == "__main__":
    raise SystemExit(main())
