"""Prediction commands: ``stability``, ``predict`` and ``observe``.

* ``optfilters stability NAME [hp] [--condition-number K] --json``: the closed
  loop on a quadratic (stability interval of ``lr * h``, crossing frequency,
  the ``2 / H(-1)`` shortcut for comparison) and, with ``K``, the tuned
  hyperparameters and learning rate minimising the worst-case rate over
  ``h`` in ``[mu, K mu]`` (:mod:`optfilters.closed_loop`).
* ``optfilters predict NAME [hp] --lr LR --curvatures 1,0.1 --noise-var S
  --init X --steps N --json``: the exact expected loss on the noisy quadratic
  (:mod:`optfilters.noisy_quadratic`).
* ``optfilters observe NAME [hp] ... --seeds K [--json] [--plot FILE]``: the
  same quadratic trained with the PyTorch bridge over many seeds, observed and
  predicted side by side (:mod:`optfilters.observe`); ``--network`` trains the
  real network of :mod:`optfilters.network` instead.

``stability`` and ``predict`` never import torch or matplotlib; ``observe``
imports torch inside the command, matplotlib only with ``--plot``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from optfilters.errors import InvalidHyperparameterError
from optfilters.validation import (
    MAX_OBSERVE_WORK,
    MAX_PREDICT_STALENESS,
    MAX_SAMPLES,
    MAX_SEED,
    MAX_STEPS,
    OBSERVE_SEED_FLOOR,
    fmt_rate,
    parse_decimal,
)

from ._common import (
    CliError,
    DependentOption,
    IntegerRange,
    NormaliserOption,
    Selection,
    condition_number_option,
    echo_json,
    echo_text,
    fmt,
    json_option,
    mu_option,
    optimizer_group,
    parse_names,
    plot_option,
    plot_style_options,
    points_option,
    record_plot,
    save_plot,
    second_moment_option,
    staleness_option,
)
from ._common import parse_floats as _floats
from ._common import text_table as _table

__all__ = ["register"]

#: Runs of at least this many steps show a progress bar on stderr.
PROGRESS_STEPS = 200


# ----------------------------------------------------------------------------- parsing


def _rate_verdict(rate: float) -> str:
    """`` (UNSTABLE: the expected loss diverges)`` for a rate above 1 (inf too), ``(marginal)`` at 1, else empty."""
    if math.isnan(rate):
        return ""
    if rate > 1.0 + 1e-12:
        return " (UNSTABLE: the expected loss diverges)"
    if rate > 1.0 - 1e-12:
        return " (marginal: the expected loss does not decay)"
    return ""


def _second_moment(text: str) -> Any:
    value = str(text).strip().lower()
    if value in ("tracking", "steady"):
        return value
    try:
        number = parse_decimal(value, "--second-moment", finite=False)
    except InvalidHyperparameterError:
        raise CliError(f"--second-moment must be 'tracking', 'steady' or a number >= 0, got {text!r}") from None
    if not (math.isfinite(number) and number >= 0.0):
        raise CliError(f"--second-moment must be 'tracking', 'steady' or a number >= 0, got {text!r}")
    return number


def _schedule(text: str | None) -> Any:
    if text is None:
        return None
    from optfilters.noisy_quadratic import parse_schedule

    return parse_schedule(text)


def _sampled(n: int, rows: int = 12) -> list[int]:
    """Steps shown in text tables: all for short runs, else 0, the first few and log-spaced ones to n."""
    if n + 1 <= rows:
        return list(range(n + 1))
    tail = np.unique(np.round(np.geomspace(5, n, rows - 5)).astype(int))
    return sorted({0, 1, 2, 3, 4, *(int(i) for i in tail), n})


# ----------------------------------------------------------------------------- options


def _quadratic_options(default_steps: int, least_steps: int = 0) -> list[click.Option]:
    """The quadratic's options; ``least_steps``: the fewest steps the command means anything with."""
    return [
        click.Option(
            ["--curvatures", "curvatures"],
            default="1",
            show_default=True,
            metavar="H1,H2,...",
            help="Curvatures h_i of the quadratic 1/2 sum h_i theta_i^2 (one coordinate each).",
        ),
        click.Option(
            ["--noise-var", "noise_var"],
            default="0",
            show_default=True,
            metavar="S[,S2,...]",
            help="Variance of the white noise added to each coordinate's gradient (one value or one per curvature).",
        ),
        click.Option(
            ["--init", "init"],
            default="1",
            show_default=True,
            metavar="X[,X2,...]",
            help="Initial point theta_0 (one value or one per curvature).",
        ),
        click.Option(
            ["--init-var", "init_var"],
            default="0",
            show_default=True,
            metavar="V[,V2,...]",
            help="Variance of a random initial point around --init.",
        ),
        click.Option(
            ["--steps", "steps"],
            type=IntegerRange(min=least_steps, max=10_000_000),
            default=default_steps,
            show_default=True,
            help="Number of steps N (N + 1 values from step 0)"
            + (f"; at least {least_steps}: steps 1..N are compared." if least_steps else "."),
        ),
        click.Option(
            ["--schedule", "schedule"],
            default=None,
            metavar="SPEC",
            help="Learning-rate schedule, with torch.optim.lr_scheduler's names: exponential:gamma, "
            "step:step_size[:gamma], linear:total_iters[:end_factor], inverse:lr_decay, cosine:T_max[:min_factor] "
            "(min_factor = eta_min / lr), warmup:steps[,SPEC] (default: constant).  Step counts are integers in "
            "[1, 10000000]; gamma > 0, end_factor >= 0, lr_decay >= 0 and min_factor in [0, 1] are 0 or at least "
            "2.2250738585072014e-308 (the smallest normal double: a subnormal keeps fewer digits than written).",
        ),
        NormaliserOption(
            ["--second-moment", "second_moment"],
            default="tracking",
            show_default=True,
            metavar="tracking|steady|V",
            help="Normalised optimizers (linearised): the normaliser follows the predicted E[g^2] (tracking), "
            "is frozen at its self-consistent steady state (steady) or at V.",
        ),
        staleness_option(
            "Gradients D steps stale: the optimizer gets h theta_{t-1-D} + noise (asynchronous training); at most "
            f"{MAX_PREDICT_STALENESS} (the recursion's covariance has size (D + n)^2).",
            most=MAX_PREDICT_STALENESS,
        ),
    ]


def _quadratic_values(
    curvatures: str,
    noise_var: str,
    init: str,
    init_var: str,
    second_moment: str,
    schedule: str | None,
    staleness: int = 0,
) -> dict[str, Any]:
    return {
        "curvatures": _floats(curvatures, "--curvatures", 0.0),
        "noise_var": _floats(noise_var, "--noise-var", 0.0),
        "init": _floats(init, "--init"),
        "init_var": _floats(init_var, "--init-var", 0.0),
        "second_moment": _second_moment(second_moment),
        "schedule": _schedule(schedule),
        "staleness": int(staleness),
    }


# ----------------------------------------------------------------------------- stability


def _stability(
    selection: Selection,
    condition_number: float | None,
    mu: float,
    tune: str | None,
    second_moment: float,
    points: int,
    as_json: bool,
    plot: Path | None,
    curvature: float | None = None,
    certify: bool = False,
) -> None:
    from optfilters.closed_loop import closed_loop, marginal_text
    from optfilters.closed_loop import tune as tune_loop

    from .control import stability_at_point

    model = selection.model
    loop = closed_loop(model, second_moment=second_moment)
    result = loop.stability()
    data: dict[str, Any] = result.as_dict()
    data["hyperparameters"] = dict(model.hyperparameters)
    point_data, head, tail = stability_at_point(selection, curvature, second_moment)
    reasons = {**data.pop("why_null"), **point_data.pop("why_null", {})}
    data.update(point_data)
    data["why_null"] = reasons
    optimal = None
    if condition_number is not None:
        names = None
        if tune is not None:
            names = [] if tune.strip().lower() in ("", "none", "lr") else list(parse_names(tune, "--tune"))
        optimal = tune_loop(
            model,
            condition_number=condition_number,
            mu=mu,
            tune=names,
            second_moment=second_moment,
        )
        data["optimal"] = optimal.as_dict()
    certified = None
    if certify:  # beyond quadratics: the IQC certificate (cvxpy imported only here)
        from .nonlinear import certify_summary

        assert condition_number is not None
        certified = certify_summary(selection.model, condition_number, mu, second_moment, tune=True)
        data["certified"] = certified
    record_plot(data, lambda p: p.closed_loop_rate_plot(loop.rate_curve(points=points)), plot)
    if as_json:
        echo_json(data)
        return
    lines = list(head)  # a normalised optimizer's note comes first
    lines.append(
        f"{model.name}: closed loop on a quadratic, x = lr * h" + (" (preconditioned)" if loop.linearised else "")
    )
    if loop.label != "exact":
        lines.append(f"  note: {loop.label}")
    hi = result.max_stable_lr_curvature
    if result.marginal:
        lines.append(f"  {marginal_text(result.marginal_intervals)}: no lr converges")
    elif result.interval is None:
        lines.append("  no stable interval reached from small lr * h")
    else:
        lines.append(
            f"  stable for {fmt(result.interval[0])} < lr*h < {fmt(hi)}  (max_stable_lr_curvature = {fmt(hi)})"
        )
    if len(result.intervals) > 1:
        lines.append("  all stable intervals: " + ", ".join(f"({fmt(a)}, {fmt(b)})" for a, b in result.intervals))
    freq = result.edge_frequency
    if freq is not None:
        kind = "at z = -1 (period-2 oscillation)" if abs(freq - 0.5) < 1e-9 else f"at {fmt(freq)} cycles/step"
        lines.append(f"  poles leave the unit circle {kind}")
    if math.isnan(result.nyquist_estimate):
        pass  # a periodic loop has no H(z)
    elif math.isfinite(result.nyquist_estimate):
        lines.append(f"  z = -1 shortcut 2/H(-1) = {fmt(result.nyquist_estimate)} (not general)")
    else:
        lines.append("  z = -1 shortcut 2/H(-1): none (H(-1) = 0: the filter has a zero at z = -1)")
    if optimal is not None:
        tuned = ", ".join(f"{k} = {fmt(v)}" for k, v in optimal.hyperparameters.items())
        lines.append(
            f"  tuned for kappa = {fmt(optimal.condition_number)} (h in [{fmt(optimal.mu)}, {fmt(optimal.L)}]): "
            f"rate = {fmt(optimal.rate)}, lr = {fmt(optimal.lr)}, lr*L = {fmt(optimal.lr_curvature_max)}"
            + (f", {tuned}" if tuned else "")
        )
        lines.append(f"  tuned: {', '.join(['lr', *optimal.tuned])}")
    lines += tail
    if certified is not None:
        from .nonlinear import _certify_lines

        assert condition_number is not None
        lines += _certify_lines(certified, mu, condition_number * mu)
    echo_text(lines, data.get("plot"))


def _stability_options() -> list[click.Parameter]:
    from .control import curvature_option

    return [
        curvature_option(),
        condition_number_option(
            "Also tune lr and the filter's hyperparameters for curvatures in [mu, K mu] (worst-case rate).",
            required=False,
        ),
        mu_option("Smallest curvature of the tuning range.", needs="condition_number"),
        DependentOption(
            ["--tune", "tune"],
            default=None,
            metavar="NAME,...|none",
            needs="condition_number",
            help="Hyperparameters to tune besides lr (default: those that shape the filter, e.g. momentum).",
        ),
        second_moment_option(
            "Normalised optimizers: second moment v at which the normaliser is frozen "
            "(lr*h uses the preconditioned curvature h/(sqrt(v)+eps))."
        ),
        points_option(512, "points of the rate curve drawn.", needs="plot"),
        DependentOption(
            ["--certify", "certify"],
            is_flag=True,
            needs="condition_number",
            help="also the rate certified over ALL smooth strongly convex functions with "
            "curvature in [mu, K mu] (IQC SDP, cvxpy) for this setting and the quadratic tuning, and the tuning "
            "minimising the certified rate.",
        ),
        json_option(),
        plot_option("Also write the closed-loop rate against lr*h to FILE (png, svg, pdf)."),
    ]


# ----------------------------------------------------------------------------- predict


def _predict(
    selection: Selection,
    curvatures: str,
    noise_var: str,
    init: str,
    init_var: str,
    steps: int,
    schedule: str | None,
    second_moment: str,
    staleness: int,
    as_json: bool,
    plot: Path | None = None,
    title: str | None = None,
    size: tuple[float, float] | None = None,
) -> None:
    from optfilters.noisy_quadratic import predict

    model = selection.model
    values = _quadratic_values(curvatures, noise_var, init, init_var, second_moment, schedule, staleness)
    result = predict(model, steps=steps, **values)
    written = None if plot is None else save_plot(lambda p: p.expected_loss_plot(result), plot, title=title, size=size)
    if as_json:
        data = result.as_dict()
        data["hyperparameters"] = dict(model.hyperparameters)
        if written is not None:
            data["plot"] = str(written)
        echo_json(data)
        return
    invalid = "" if result.linearisation_holds else " (of the linearised loop: NOT VALID for this run)"
    lines = [
        f"{model.name}: expected loss 1/2 sum h_i theta_i^2 on the noisy quadratic, lr = {fmt(model.lr)}",
        f"  curvatures {', '.join(fmt(h) for h in result.curvatures)}; noise variance "
        f"{', '.join(fmt(s) for s in result.noise_var)}",
        f"  prediction: {result.label}",
        f"  rate (largest closed-loop pole modulus) = {fmt_rate(result.rate)}{_rate_verdict(result.rate)}{invalid}",
        f"  steady-state loss = {fmt(result.steady_state_loss, nan='undefined (no steady state)')}{invalid}",
    ]
    averaged = result.averaged_loss
    if averaged is None:
        rows = [[str(t), fmt(result.expected_loss[t], nan="undefined")] for t in _sampled(steps)]
        lines += _table(["step", "expected loss"], rows)
    else:  # the model keeps averaged parameters (EMA, SWA, Polyak): their loss too
        steady = result.averaged_steady_state_loss if result.averaged_steady_state_loss is not None else math.nan
        lines.append(f"  steady-state loss of the averaged parameters = {fmt(steady)}")
        rows = [
            [str(t), fmt(result.expected_loss[t], nan="undefined"), fmt(averaged[t], nan="undefined")]
            for t in _sampled(steps)
        ]
        lines += _table(["step", "expected loss", "averaged"], rows)
    echo_text(lines, written)


# ----------------------------------------------------------------------------- observe


def _progress(steps: int, label: str) -> Any:
    """A click progress bar on stderr for long runs (a no-op context otherwise)."""
    if steps < PROGRESS_STEPS:
        return None
    return click.progressbar(length=steps, label=label, file=sys.stderr)


def _observe(
    selection: Selection,
    curvatures: str,
    noise_var: str,
    init: str,
    init_var: str,
    steps: int,
    schedule: str | None,
    second_moment: str,
    staleness: int,
    seeds: int,
    seed: int,
    divergence: bool,
    divergence_steps: int,
    network: bool,
    record_coordinates: int | None,
    sharpness_every: int | None,
    as_json: bool,
    plot: Path | None,
) -> None:
    if network:
        _observe_network(selection, steps, seed, record_coordinates, sharpness_every, as_json, plot)
        return
    from optfilters.margins import nonlinear_edge_note
    from optfilters.observe import divergence_threshold, observe_quadratic

    model = selection.model
    values = _quadratic_values(curvatures, noise_var, init, init_var, second_moment, schedule, staleness)
    work = steps * max(seeds, OBSERVE_SEED_FLOOR) * len(values["curvatures"])
    if work > MAX_OBSERVE_WORK:
        raise CliError(
            f"--steps {steps} x --seeds {seeds} (counted as at least {OBSERVE_SEED_FLOOR}) x "
            f"{len(values['curvatures'])} curvatures is {work} seed-steps; at most {MAX_OBSERVE_WORK} "
            "(about 30 s on a small machine): give fewer steps, seeds or curvatures"
        )
    if divergence:  # decided before any run: a normalised optimizer has no divergence lr to observe
        note = nonlinear_edge_note(model)
        if note is not None:
            raise CliError(f"--divergence needs a linear optimizer: {note}; see optfilters stability {model.name}")
        if max(values["curvatures"]) <= 0.0:
            raise CliError("--divergence needs a positive curvature")
    bar = _progress(steps, f"{model.name}: {seeds} seeds")
    if bar is None:
        comparison = observe_quadratic(model, steps=steps, seeds=seeds, seed=seed, **values)
    else:
        with bar:
            comparison = observe_quadratic(model, steps=steps, seeds=seeds, seed=seed, progress=bar.update, **values)
    data = comparison.as_dict()
    data["hyperparameters"] = dict(model.hyperparameters)
    if divergence:
        data["divergence"] = divergence_threshold(
            model, curvature=max(values["curvatures"]), steps=divergence_steps, staleness=staleness
        ).as_dict()
    record_plot(data, lambda p: p.loss_comparison_plot(comparison), plot)
    if as_json:
        echo_json(data)
        return
    lines = [
        f"{model.name}: noisy quadratic trained with the PyTorch bridge over {seeds} seeds, lr = {fmt(model.lr)}",
        f"  prediction: {comparison.label}",
        *_within_lines(data, steps),
    ]
    diverged = comparison.diverged_step
    if diverged is not None:
        rate = comparison.prediction.rate if comparison.prediction is not None else math.nan
        lines.append(
            f"  observed: the runs DIVERGED (their loss overflowed) from step {diverged}; predicted rate {fmt(rate)}"
            + _rate_verdict(rate)
        )
    z = comparison.z_scores
    rows = []
    for t in _sampled(steps):
        gone = "diverged" if diverged is not None and t >= diverged else "undefined"  # a run's nan is its overflow
        rows.append(
            [
                str(t),
                fmt(comparison.predicted_loss[t]),
                fmt(comparison.observed_mean_loss[t], nan=gone),
                fmt(comparison.observed_stderr[t], 3, nan=gone),
                fmt(z[t], 3, nan=gone if gone == "diverged" else "not comparable"),
            ]
        )
    lines += _table(["step", "predicted", "observed mean", "std. error", "z"], rows)
    if divergence:
        d = data["divergence"]
        if d["status"] == "decided":
            lines.append(
                f"  divergence at h = {fmt(d['curvature'])}: predicted lr = {fmt(d['predicted_lr'])}, observed lr = "
                f"{fmt(d['observed_lr'])} (bracket {fmt(d['bracket'][0])}..{fmt(d['bracket'][1])}), "
                f"relative error {fmt(d['relative_error'], 3)}"
            )
        else:
            lines.append(
                f"  divergence at h = {fmt(d['curvature'])}: predicted lr = {fmt(d['predicted_lr'])}, observed: "
                f"UNDECIDED within {d['steps']} steps per run (bracket {fmt(d['bracket'][0])}.."
                f"{fmt(d['bracket'][1])}; runs too slow to classify: raise --divergence-steps)"
            )
    echo_text(lines, data.get("plot"))


def _within_lines(data: dict[str, Any], steps: int) -> list[str]:
    """The comparison's verdict: the share of the comparable steps within 4 s.e., and why the others are not."""
    counted = data["comparable_steps"]
    lines = []
    if counted:
        every = "all" if counted == steps else f"the {counted} comparable"
        lines.append(
            f"  prediction within 4 standard errors of the observed mean at "
            f"{100 * data['fraction_within_4_stderr']:.1f}% of {every} steps of 1..{steps}; "
            f"max |z| = {fmt(data['max_abs_z'], 3)}"
        )
    else:
        lines.append(f"  prediction against observation: not comparable at any of the steps 1..{steps}")
    lines += [f"  not comparable: {why}" for why in data["not_comparable"]]
    return lines


def _observe_network(
    selection: Selection,
    steps: int,
    seed: int,
    record_coordinates: int | None,
    sharpness_every: int | None,
    as_json: bool,
    plot: Path | None,
) -> None:
    try:
        from optfilters.network import observe_network
    except ModuleNotFoundError as exc:
        if exc.name not in ("optfilters.network",):
            raise
        raise CliError("--network needs optfilters.network, which this installation lacks") from None
    model = selection.model
    options: dict[str, Any] = {}
    if record_coordinates is not None:
        options["record_coordinates"] = record_coordinates
    if sharpness_every is not None:
        options["sharpness_every"] = sharpness_every
    bar = _progress(steps, f"{model.name}: digits MLP")
    if bar is None:
        observation = observe_network(model, lr=model.lr, steps=steps, seed=seed, **options)
    else:
        with bar:
            observation = observe_network(
                model, lr=model.lr, steps=steps, seed=seed, progress=lambda step, total: bar.update(1), **options
            )
    data = dict(observation.as_dict())
    record_plot(data, lambda p: observation.plot(), plot)
    if as_json:
        echo_json(data)
        return
    lines = [
        f"{model.name}: MLP on scikit-learn's digits through the PyTorch bridge, lr = {fmt(model.lr)}, "
        f"{steps} steps, seed {seed}",
        f"  loss {fmt(data['loss'][0])} -> {fmt(data['final_loss'])}"
        + ("  (DIVERGED)" if data["diverged"] else "")
        + f"; train accuracy {fmt(data['train_accuracy'], 4)}, test accuracy {fmt(data['test_accuracy'], 4)}",
    ]
    sharp = data.get("sharpness")
    if sharp:
        kind = "preconditioned sharpness" if sharp.get("preconditioned") else "sharpness"
        lines.append(
            f"  {kind}: late-phase median {fmt(sharp['late_phase_median'])} against the predicted edge of "
            f"stability {fmt(sharp['threshold'])} (ratio {fmt(sharp['late_phase_ratio'], 4)})"
        )
    empirical = data.get("empirical")
    if empirical:
        lines.append(
            f"  empirical |H| from {empirical.get('coordinates')} coordinates over {len(empirical['freqs'])} "
            "frequencies (JSON for the values)"
        )
    lines.append(f"  {fmt(data['seconds_per_step'], 3)} s per step")
    echo_text(lines, data.get("plot"))


def _observe_options() -> list[click.Parameter]:
    return [
        *_quadratic_options(100, least_steps=1),
        click.Option(
            ["--seeds", "seeds"],
            type=IntegerRange(min=2, max=10_000_000),
            default=256,
            show_default=True,
            help="Independent runs (a batch dimension of one parameter tensor).",
        ),
        click.Option(
            ["--seed", "seed"],
            type=IntegerRange(0, MAX_SEED),
            default=0,
            show_default=True,
            help="Random seed (0 to 2**32 - 1).",
        ),
        click.Option(
            ["--divergence", "divergence"],
            is_flag=True,
            help="Also find the divergence learning rate on the largest curvature by multisection (noiseless) "
            "and compare it with the predicted one; each run is judged by its envelope over a horizon set by "
            "its closed-loop poles, and reported undecided rather than guessed (linear optimizers only: a "
            "normaliser bounds the real step).",
        ),
        DependentOption(
            ["--divergence-steps", "divergence_steps"],
            type=IntegerRange(min=16, max=10_000_000),
            default=20_000,
            show_default=True,
            needs="divergence",
            help="largest number of steps per run.",
        ),
        DependentOption(
            ["--network", "network"],
            is_flag=True,
            excludes=(
                "curvatures",
                "noise_var",
                "init",
                "init_var",
                "schedule",
                "second_moment",
                "staleness",
                "seeds",
                "divergence",
            ),
            help="Train the real network of optfilters.network (an MLP on scikit-learn's digits) instead of the "
            "quadratic: loss, sharpness against the predicted edge of stability, empirical transfer function.",
        ),
        DependentOption(
            ["--record-coordinates", "record_coordinates"],
            type=IntegerRange(min=0, max=MAX_SAMPLES),
            default=None,
            needs="network",
            help="number of sampled coordinates whose gradient and update are recorded "
            "(at most optfilters.validation.MAX_SAMPLES).",
        ),
        DependentOption(
            ["--sharpness-every", "sharpness_every"],
            type=IntegerRange(min=0, max=MAX_STEPS),
            default=None,
            needs="network",
            help="estimate the sharpness every this many steps (at most optfilters.validation.MAX_STEPS).",
        ),
        json_option(),
        plot_option(
            "Also write the overlay (observed mean +- 2 s.e. and prediction) to FILE (png, svg, pdf); with "
            "--network, the loss, sharpness and |H| panels."
        ),
    ]


_EPILOG = (
    "NAME is a catalogue optimizer or alias (optfilters list) or path/to/file.py:NAME, followed by its hyperparameters "
    "(optfilters {cmd} NAME --help lists them)."
)


def register(group: click.Group) -> None:
    """Add ``stability``, ``predict`` and ``observe`` to ``group``."""
    group.add_command(
        optimizer_group(
            "stability",
            _stability,
            _stability_options(),
            help="Closed loop on a quadratic: the stable interval of lr*h (exact unit-circle scan), and with "
            "--condition-number the tuned hyperparameters minimising the worst-case rate.\n\n"
            + _EPILOG.format(cmd="stability"),
            short_help="Stability interval of lr*h; tuning for a condition number.",
        )
    )
    group.add_command(
        optimizer_group(
            "predict",
            _predict,
            [
                *_quadratic_options(100),
                json_option(),
                plot_option("Also write the expected loss against the step (with its steady state) to FILE."),
                *plot_style_options(),
            ],
            help="Exact expected loss on the noisy quadratic (gradient h*theta + white noise), step by step, "
            "and its steady state.\n\n" + _EPILOG.format(cmd="predict"),
            short_help="Expected loss on the noisy quadratic.",
        )
    )
    group.add_command(
        optimizer_group(
            "observe",
            _observe,
            _observe_options(),
            help="Train the noisy quadratic with the PyTorch bridge over many seeds and print the observed mean "
            "loss beside the prediction (or, with --network, a real network).\n\n" + _EPILOG.format(cmd="observe"),
            short_help="Observed vs predicted loss (torch).",
        )
    )
