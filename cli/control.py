"""Control readings of the optimizer loop: ``margins``, ``locus``, ``sensitivity`` and ``thresholds``.

* ``optfilters margins NAME [hp] --lr LR --curvature H [--staleness D]``: gain
  margin (how far lr can grow, and through which mode the loop fails), phase
  and delay margins (steps of gradient staleness tolerated), the rates with
  stale gradients and the closed-loop step information
  (:func:`optfilters.margins.margins`).
* ``optfilters locus NAME [hp]``: the closed-loop poles as ``lr * h`` sweeps
  (:func:`optfilters.margins.root_locus`).
* ``optfilters sensitivity NAME [hp] --lr LR --curvature H``: ``|S|`` and
  ``|T|`` over frequency, their peaks and the noise gain
  (:func:`optfilters.margins.sensitivity`).
* ``optfilters thresholds NAME [hp] [--at T1,T2] [--lr LR --run-steps N]``:
  the stability edge of the loop frozen at each step ``t`` and the exact
  verdict of a run (:mod:`optfilters.thresholds`).

Every command takes ``--json`` and ``--plot FILE``; none imports torch, and
matplotlib only with ``--plot``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click
import numpy as np

from optfilters.errors import InvalidHyperparameterError
from optfilters.validation import MARGINAL_RATE_TOL, MAX_LOOP_STALENESS, check_distinct, fmt_rate, parse_decimal

from ._common import (
    CliError,
    DependentOption,
    FiniteFloatRange,
    IntegerRange,
    Selection,
    echo_json,
    echo_text,
    fmt,
    fmt_complex,
    json_option,
    optimizer_group,
    plot_option,
    points_option,
    record_plot,
    second_moment_option,
    staleness_option,
)
from ._common import text_table as _table

__all__ = ["curvature_option", "point_lines", "point_options", "register", "set_note", "stability_at_point"]


# ----------------------------------------------------------------------------- shared options


def point_options(curvature_default: float | None = 1.0, exclusive: bool = True) -> list[click.Option]:
    """``--curvature``, ``--lr-curvature``, ``--staleness`` and ``--second-moment``: the operating point.

    With ``exclusive`` (margins, sensitivity) ``--lr-curvature`` replaces ``--lr`` and ``--curvature`` and
    is refused with either (one would override the other); without (locus) it only marks a point.
    """
    return [
        click.Option(
            ["--curvature", "curvature"],
            type=FiniteFloatRange(min=0.0, min_open=True),
            default=curvature_default,
            show_default=curvature_default is not None,
            help="Curvature h of the quadratic; the operating point is x = lr * h (with --lr).",
        ),
        DependentOption(
            ["--lr-curvature", "lr_curvature"],
            type=FiniteFloatRange(min=0.0, min_open=True),
            default=None,
            metavar="X",
            excludes=("curvature", "lr") if exclusive else (),
            help="Give x = lr * h directly instead of --lr and --curvature (preconditioned when linearised)."
            if exclusive
            else "Mark the operating point x = lr * h on the locus.",
        ),
        staleness_option(
            "Steps of gradient staleness in the loop: the gradient is taken at theta_{t-1-D} (at most "
            f"{MAX_LOOP_STALENESS}: each reading finds the roots of polynomials of degree order + 1 + D).",
            most=MAX_LOOP_STALENESS,
        ),
        second_moment_option(
            "Normalised optimizers: second moment v at which the normaliser is frozen (linearised loop)."
        ),
    ]


def _point(selection: Selection, curvature: float | None, lr_curvature: float | None) -> dict[str, Any]:
    if lr_curvature is not None:  # neither --lr nor --curvature was given (DependentOption's excludes)
        return {"lr_curvature": lr_curvature}
    return {"curvature": 1.0 if curvature is None else curvature}


def _where(result: Any, model: Any, curvature: float | None, lr_curvature: float | None) -> str:
    """The operating point in words: ``lr = .., h = ..: x = lr*h = ..`` (only ``x`` when it was given)."""
    if lr_curvature is not None:
        return f"x = lr*h = {fmt(result.lr_curvature)}"
    h = 1.0 if curvature is None else curvature
    pre = " (preconditioned)" if result.linearised else ""
    return f"lr = {fmt(model.lr)}, h = {fmt(h)}: x = lr*h{pre} = {fmt(result.lr_curvature)}"


def set_note(data: dict[str, Any], note: str | None) -> None:
    """``data["nonlinear_note"] = note``, with its ``why_null`` entry when there is no note (a linear loop)."""
    data["nonlinear_note"] = note
    if note is None:
        data.setdefault("why_null", {})["nonlinear_note"] = (
            "undefined: no note (no normaliser, sign or clip: the loop is the optimizer's own)"
        )


def _report(
    result: Any,
    model: Any,
    plot: Path | None,
    draw: Any,
    as_json: bool,
    head: str,
    staleness: int,
    extra: dict[str, Any] | None = None,
) -> tuple[list[str], dict[str, Any]] | None:
    """The loop readings' common output: JSON (and the optional figure), or the text's first lines and the data.

    ``extra``: more JSON fields.  None when the JSON was printed (the command is done).
    """
    from optfilters.margins import nonlinear_edge_note

    note = nonlinear_edge_note(model)
    data = result.as_dict()
    data["hyperparameters"] = dict(model.hyperparameters)
    set_note(data, note)
    data.update(extra or {})
    record_plot(data, draw, plot)
    if as_json:
        echo_json(data)
        return None
    lines = [f"note: {note}"] if note else []
    lines.append(head + (f", gradients {staleness} steps stale" if staleness else ""))
    if result.label != "exact":
        lines.append(f"  note: {result.label}")
    return lines, data


def _rate_text(rate: float) -> str:
    """A rate as a finite number, or the labelled state of one that saturated (a diverging loop)."""
    if math.isnan(rate):
        return "undetermined"
    return fmt_rate(rate) if math.isfinite(rate) else "inf (UNSTABLE: overflows)"


def _gain_margin_line(result: Any, lr: float | None, indent: str) -> str:
    gm = result.gain_margin
    if math.isinf(gm):
        return f"{indent}gain margin: infinite (no lr diverges at this curvature: stable for every lr*h above this one)"
    if not math.isfinite(gm):
        return (
            f"{indent}gain margin: not determined (the unit-circle crossings bound no stable interval of lr "
            "around this point, although its rate converges)"
        )
    through = "" if result.failure_frequency is None else f", through {result.failure_mode}"
    return (
        f"{indent}gain margin x{fmt(gm)} ({fmt(result.gain_margin_db, 4)} dB): diverges at lr*h = "
        f"{fmt(result.edge_lr_curvature)}" + ("" if lr is None else f" (lr = {fmt(gm * lr)})") + through
    )


def _delay_lines(result: Any, indent: str) -> list[str]:
    from optfilters.margins import MAX_STALENESS

    dm, most = result.delay_margin, result.max_staleness
    if math.isfinite(result.phase_margin) and result.crossover_frequency is not None:
        f = result.crossover_frequency
        phase = (
            f"{indent}phase margin {fmt(result.phase_margin, 4)} deg at the gain crossover {fmt(f, 4)} "
            f"cycles/step ({fmt(2 * math.pi * f, 4)} rad/step)"
        )
    else:
        phase = f"{indent}phase margin: none (|L| never crosses 1: no gain crossover)"
    steps = f"{most} more step{'s' if most != 1 else ''}"
    if math.isinf(dm):
        if most >= MAX_STALENESS:
            delay = f"{indent}delay margin: infinite (no gain crossover): no staleness destabilises the loop"
        else:
            delay = f"{indent}delay margin: infinite (no gain crossover), but the stale loops' poles tolerate {steps}"
    else:
        at_least = "at least " if most >= MAX_STALENESS else ""
        unit = "step" if fmt(dm, 4) == "1" else "steps"
        delay = f"{indent}delay margin {fmt(dm, 4)} {unit}: tolerates {at_least}{steps} of gradient staleness"
    rates = ", ".join(
        f"d={result.staleness + i} {_rate_text(r)}" + _stale_verdict(r) for i, r in enumerate(result.stale_rates[:12])
    )
    return [phase, delay, f"{indent}rate with d-step-stale gradients: {rates}"]


def _stale_verdict(rate: float) -> str:
    if not math.isfinite(rate) or rate < 1.0 - 1e-12:
        return ""
    return " (diverges)" if rate > 1.0 + 1e-12 else " (marginal: does not converge)"


def _step_line(step: Any, indent: str) -> str:
    n = step.response.size - 1
    if step.rise_steps < 0:
        rise = f"does not rise from 10% to 90% of its final value within {n} steps"
    elif step.rise_steps == 0:
        rise = "rises from 10% to 90% within one step"
    else:
        rise = f"10-90% rise in {step.rise_steps} steps"
    k = step.settling_steps
    if k < 0:
        return (
            f"{indent}step (optimum moved by 1): not within 2% of its final value after {n} steps (overshoot and "
            f"settling not determined), {rise}"
        )
    settle = "settles to 2% at once" if k == 0 else f"settles to 2% in {k} step{'s' if k != 1 else ''}"
    overshoot = f"overshoot {fmt(100 * step.overshoot, 4)}% past the minimum"
    return f"{indent}step (optimum moved by 1): {overshoot}, {settle}, {rise}"


def point_lines(result: Any, lr: float | None, indent: str = "  ") -> list[str]:
    """Text lines for a :class:`optfilters.margins.Margins` at learning rate ``lr`` (None: ``x`` was given).

    Every line is a sentence with finite numbers or a labelled state (infinite, none, not determined, UNSTABLE).
    """
    lines = [f"{indent}rate {_rate_text(result.rate)} ({result.mode})"]
    gm = result.gain_margin
    if result.stable:
        lines.append(_gain_margin_line(result, lr, indent))
        if result.lower_gain_margin > 0:
            lines.append(f"{indent}lower gain margin x{fmt(result.lower_gain_margin)} (lr cannot shrink below it)")
        lines += _delay_lines(result, indent)
        lines.append(_step_line(result.step, indent))
    elif result.marginal_intervals:
        from optfilters.closed_loop import marginal_text

        here = "MARGINAL here (rate exactly 1)" if result.marginal else "DIVERGES here"
        lines.append(
            f"{indent}{here}: {marginal_text(result.marginal_intervals, scale=result.lr_curvature)}: no lr "
            "converges; no margins"
        )
    elif result.marginal:
        lines.append(
            f"{indent}MARGINAL here: the rate is 1 within rounding (|rate - 1| <= {MARGINAL_RATE_TOL:g}): the loop "
            "neither converges nor diverges measurably; no margins"
        )
    elif math.isfinite(gm) and gm > 0:
        # 1 / gm overflows below gm = 5.6e-309 (lr*h = 1e308 against an edge of 0.05): say it as a fraction
        factor = f"by a factor {fmt(1 / gm)}" if math.isfinite(1 / gm) else f"to {fmt(gm)} times itself"
        lines.append(
            f"{indent}DIVERGES here: lr must shrink {factor} to reach the edge lr*h = {fmt(result.edge_lr_curvature)}"
        )
    else:
        lines.append(f"{indent}DIVERGES here, and no smaller lr converges")
    return lines


# ----------------------------------------------------------------------------- stability at a point


def curvature_option() -> click.Option:
    """``--curvature H`` of ``stability``: with it (or an explicit ``--lr``) the readings at ``x = lr * h``."""
    return click.Option(
        ["--curvature", "curvature"],
        type=FiniteFloatRange(min=0.0, min_open=True),
        default=None,
        metavar="H",
        help="Also report the rate, gain/phase/delay margins and the limiting mode at x = lr * H "
        "(H defaults to 1 when --lr is given).",
    )


def stability_at_point(
    selection: Selection, curvature: float | None, second_moment: float
) -> tuple[dict[str, Any], list[str], list[str]]:
    """``stability``'s additions: the nonlinear note (first) and, given ``--lr`` or ``--curvature``, the readings there.

    Returns the JSON additions, the lines printed before the interval and those printed after it.
    """
    from optfilters.margins import margins, nonlinear_edge_note

    model = selection.model
    note = nonlinear_edge_note(model)
    data: dict[str, Any] = {}
    set_note(data, note)
    head = [f"note: {note}"] if note else []
    if curvature is None and "lr" not in selection.overrides:
        return data, head, []
    h = 1.0 if curvature is None else curvature
    result = margins(model, curvature=h, second_moment=second_moment)
    point = result.as_dict()
    point.update({"lr": model.lr, "curvature": h})
    data["at_point"] = point
    tail = [f"  at {_where(result, model, h, None)}"]
    tail += point_lines(result, model.lr, indent="    ")
    return data, head, tail


# ----------------------------------------------------------------------------- margins


def _margins(
    selection: Selection,
    curvature: float | None,
    lr_curvature: float | None,
    staleness: int,
    second_moment: float,
    as_json: bool,
    plot: Path | None,
) -> None:
    from optfilters.margins import margins

    model = selection.model
    result = margins(
        model, staleness=staleness, second_moment=second_moment, **_point(selection, curvature, lr_curvature)
    )
    lr_scale = model.lr if lr_curvature is None else None
    report = _report(
        result,
        model,
        plot,
        lambda p: p.margins_plot(result),
        as_json,
        f"{model.name}: loop L(z) = x z^-1 H(z) / (1 - z^-1) at {_where(result, model, curvature, lr_curvature)}",
        staleness,
    )
    if report is None:
        return
    lines, data = report
    lines += point_lines(result, lr_scale)
    echo_text(lines, data.get("plot"))


# ----------------------------------------------------------------------------- locus


def _locus(
    selection: Selection,
    curvature: float | None,
    lr_curvature: float | None,
    staleness: int,
    second_moment: float,
    points: int,
    as_json: bool,
    plot: Path | None,
) -> None:
    from optfilters.margins import feedback_loop, root_locus

    model = selection.model
    h = 1.0 if curvature is None else curvature
    # the operating point: the x given, else the model's lr * h (preconditioned when linearised)
    loop = feedback_loop(model, second_moment=second_moment, **_point(selection, curvature, lr_curvature))
    result = root_locus(
        model,
        points=points,
        staleness=staleness,
        second_moment=second_moment,
        curvature=h,
        operating_point=loop.lr_curvature,
    )
    point: dict[str, Any] = {"lr_curvature": loop.lr_curvature, "preconditioned": loop.linearised}
    if lr_curvature is None:
        point.update({"lr": model.lr, "curvature": h})
    report = _report(
        result,
        model,
        plot,
        lambda p: p.root_locus_plot(result),
        as_json,
        f"{model.name}: closed-loop poles as x = lr*h sweeps ({len(result.lr_curvature)} values)",
        staleness,
        {"at_point": point},
    )
    if report is None:
        return
    lines, data = report
    lines.append(f"  operating point (marked): {_where(loop, model, curvature, lr_curvature)}")
    lines.append(f"  poles at lr = 0: {', '.join(fmt_complex(z) for z in result.open_loop_poles)}")
    zeros = ", ".join(fmt_complex(z) for z in result.zeros) or "none"
    lines.append(f"  zeros (where poles go as lr -> inf): {zeros}")
    if result.stable_interval is not None:
        lo, hi = result.stable_interval
        lines.append(f"  stable for {fmt(lo)} < lr*h < {fmt(hi)}")
    elif result.marginal_intervals:
        from optfilters.closed_loop import marginal_text

        lines.append(f"  {marginal_text(result.marginal_intervals)}: no lr converges")
    else:
        lines.append("  no stable interval reached from small lr*h")
    for x, f in result.crossings:
        if x > 0:
            lines.append(f"  a pole crosses the unit circle at lr*h = {fmt(x)}: {_mode(f)}")
    picks = np.unique(np.linspace(0, result.lr_curvature.size - 1, min(12, result.lr_curvature.size)).astype(int))
    rows = [
        [fmt(result.lr_curvature[i]), fmt_rate(result.rate[i]), ", ".join(fmt_complex(z, 4) for z in result.poles[i])]
        for i in picks
    ]
    lines += _table(["lr*h", "rate", "poles"], rows)
    echo_text(lines, data.get("plot"))


def _mode(frequency: float) -> str:
    from optfilters.margins import crossing_mode

    return crossing_mode(frequency)


# ----------------------------------------------------------------------------- sensitivity


def _sensitivity(
    selection: Selection,
    curvature: float | None,
    lr_curvature: float | None,
    staleness: int,
    second_moment: float,
    points: int,
    as_json: bool,
    plot: Path | None,
) -> None:
    from optfilters.margins import sensitivity

    model = selection.model
    result = sensitivity(
        model,
        points=points,
        staleness=staleness,
        second_moment=second_moment,
        **_point(selection, curvature, lr_curvature),
    )
    report = _report(
        result,
        model,
        plot,
        lambda p: p.sensitivity_plot(result),
        as_json,
        f"{model.name}: sensitivity S = 1/(1+L) and T = L/(1+L) at {_where(result, model, curvature, lr_curvature)}",
        staleness,
    )
    if report is None:
        return
    lines, data = report
    lines.append(
        f"  peak |S| = {fmt(result.peak_s)} at {fmt(result.peak_s_frequency, 4)} cycles/step "
        f"(modulus margin {fmt(result.modulus_margin, 4)}: the distance of L from -1)"
    )
    lines.append(
        f"  peak |T| = {fmt(result.peak_t)} at {fmt(result.peak_t_frequency, 4)} cycles/step"
        + (" (gradient noise near it is amplified)" if result.peak_t > 1.0 + 1e-9 else "")
    )
    lines.append(
        f"  noise gain sum t_k^2 = {fmt(result.noise_gain)}: steady-state loss = noise variance x "
        f"{fmt(result.noise_gain)} / (2 h)"
    )
    with np.errstate(divide="ignore"):
        rows = [
            [fmt(f, 4), fmt(abs(s)), fmt(20 * np.log10(abs(s)), 4), fmt(abs(t)), fmt(20 * np.log10(abs(t)), 4)]
            for f, s, t in zip(result.freqs, result.S, result.T, strict=True)
        ]
    lines += _table(["freq", "|S|", "S dB", "|T|", "T dB"], rows)
    echo_text(lines, data.get("plot"))


# ----------------------------------------------------------------------------- thresholds


#: The largest step of --at and --run-steps (the run's arrays hold one value per step).
_MOST_STEPS = 10_000_000


def _steps_list(text: str | None) -> list[int] | None:
    if text is None:
        return None
    out = []
    for item in str(text).replace(";", ",").split(","):
        if not item.strip():
            continue
        try:
            value = parse_decimal(item, "--at", finite=False)
        except InvalidHyperparameterError:
            raise CliError(f"--at must be steps separated by commas, got {text!r}") from None
        if not (math.isfinite(value) and value.is_integer() and value >= 1):
            raise CliError(f"--at needs integer steps >= 1, got {item.strip()}")
        if value > _MOST_STEPS:
            raise CliError(f"--at needs steps <= {_MOST_STEPS} (as --run-steps), got {item.strip()}")
        out.append(int(value))
    if not out:
        raise CliError(f"--at needs at least one step, got {text!r}")
    return list(check_distinct(out, "--at"))


def _thresholds(
    selection: Selection,
    at: str | None,
    run_steps: int | None,
    curvature: float | None,
    schedule: str | None,
    staleness: int,
    second_moment: float,
    as_json: bool,
    plot: Path | None,
) -> None:
    from optfilters.margins import crossing_mode, nonlinear_edge_note
    from optfilters.noisy_quadratic import parse_schedule
    from optfilters.thresholds import frozen_edges, time_varying_verdict

    model = selection.model
    steps = _steps_list(at)
    plan = None if schedule is None else parse_schedule(schedule)
    note = nonlinear_edge_note(model)
    edges = frozen_edges(model, steps, staleness=staleness, second_moment=second_moment, schedule=plan)
    data: dict[str, Any] = {"frozen_edges": edges.as_dict(), "hyperparameters": dict(model.hyperparameters)}
    set_note(data, note)
    verdict = None
    if run_steps is not None or "lr" in selection.overrides:
        n = run_steps if run_steps is not None else int(edges.steps.max())
        verdict = time_varying_verdict(
            model,
            steps=n,
            curvature=curvature,
            schedule=plan,
            staleness=staleness,
            second_moment=second_moment,
        )
        data["run"] = verdict.as_dict()
    record_plot(data, lambda p: p.frozen_edges_plot(edges, base=plan is not None), plot)
    if as_json:
        echo_json(data)
        return
    lines = [f"note: {note}"] if note else []
    lines.append(
        f"{model.name}: stability edge of the loop frozen at step t (coefficients held at their step-t values)"
    )
    lines.append(f"  note: {edges.label}")
    if math.isfinite(edges.limit):
        lines.append(f"  t -> infinity limit: lr*h < {fmt(edges.limit)}")
    headers = ["t", "max stable lr_t*h"] + (["in base lr*h"] if plan is not None else []) + ["fails through"]
    rows = []
    for i, t in enumerate(edges.steps):
        f = edges.frequency[i]
        row = [str(int(t)), fmt(edges.edge[i])]
        if plan is not None:
            row.append(fmt(edges.base_edge[i]))
        row.append(crossing_mode(None if not math.isfinite(f) else float(f)).split(":")[0])
        rows.append(row)
    lines += _table(headers, rows)
    if verdict is not None:
        lines.append(
            f"  run of {verdict.steps} steps at lr*h = {fmt(verdict.lr_curvature)} (exact, product of the transition "
            f"matrices): it {verdict.verdict} (|theta_N/theta_0| = 10^{fmt(verdict.log10_final_amplification, 4)}, "
            f"peak 10^{fmt(verdict.log10_peak_amplification, 4)} at step {verdict.peak_step}; "
            f"worst start ||Phi_N|| = 10^{fmt(verdict.log10_norm, 4)})"
        )
        lines.append(
            f"  frozen-time view: unstable at {verdict.frozen_unstable_steps} of {verdict.steps} steps"
            + (f" (the last at step {verdict.last_frozen_unstable_step})" if verdict.frozen_unstable_steps else "")
        )
    echo_text(lines, data.get("plot"))


# ----------------------------------------------------------------------------- register

_EPILOG = (
    "NAME is a catalogue optimizer or alias (optfilters list), followed by its hyperparameters "
    "(optfilters {cmd} NAME --help lists them); --lr is the learning rate of the operating point."
)


def register(group: click.Group) -> None:
    """Add ``margins``, ``locus``, ``sensitivity`` and ``thresholds`` to ``group``."""
    group.add_command(
        optimizer_group(
            "margins",
            _margins,
            [
                *point_options(),
                json_option(),
                plot_option("Also write the loop's Bode diagram with the margins to FILE (png, svg, pdf)."),
            ],
            help="Gain margin (how far lr can grow, and how the loop fails), phase and delay margins (steps of "
            "gradient staleness tolerated), rates with stale gradients and closed-loop step information at "
            "the operating point x = lr * h.\n\n" + _EPILOG.format(cmd="margins"),
            short_help="Gain, phase and delay margins at lr, h.",
        )
    )
    group.add_command(
        optimizer_group(
            "locus",
            _locus,
            [
                *point_options(),
                points_option(400, "Number of lr*h values swept."),
                json_option(),
                plot_option("Also write the root locus to FILE (png, svg, pdf)."),
            ],
            help="Root locus: the closed-loop poles as lr*h sweeps, where they cross the unit circle, and the "
            "stable interval.\n\n" + _EPILOG.format(cmd="locus"),
            short_help="Closed-loop poles as lr*h sweeps.",
        )
    )
    group.add_command(
        optimizer_group(
            "sensitivity",
            _sensitivity,
            [
                *point_options(),
                points_option(11, "Frequencies from 0 to 0.5 cycles/step in the table and JSON."),
                json_option(),
                plot_option("Also write |S| and |T| to FILE (png, svg, pdf)."),
            ],
            help="Sensitivity S = 1/(1+L) (a moving optimum -> error) and complementary sensitivity T = L/(1+L) "
            "(h x gradient noise -> parameter): peaks, modulus margin, noise gain.\n\n"
            + _EPILOG.format(cmd="sensitivity"),
            short_help="Sensitivity and complementary sensitivity at lr, h.",
        )
    )
    group.add_command(
        optimizer_group(
            "thresholds",
            _thresholds,
            [
                click.Option(
                    ["--at", "at"],
                    default=None,
                    metavar="T1,T2,...",
                    help="Steps t at which to freeze the loop (default: 61 geometric steps from 1 to 1e5).",
                ),
                click.Option(
                    ["--run-steps", "run_steps"],
                    type=IntegerRange(min=1, max=_MOST_STEPS),
                    default=None,
                    metavar="N",
                    help="Also give the exact verdict of a run of N steps at lr*h (with --lr, default N: the last t).",
                ),
                DependentOption(
                    ["--curvature", "curvature"],
                    type=FiniteFloatRange(min=0.0, min_open=True),
                    default=None,
                    metavar="H",
                    needs=("lr", "run_steps"),
                    help="curvature of the run (default 1).",
                ),
                click.Option(
                    ["--schedule", "schedule"],
                    default=None,
                    metavar="SPEC",
                    help="Learning-rate schedule (as for predict): the edges are then also given in the base lr.",
                ),
                staleness_option("Steps of gradient staleness."),
                second_moment_option("Normalised optimizers: second moment at which the normaliser is frozen."),
                json_option(),
                plot_option("Also write the edge against t to FILE (png, svg, pdf)."),
            ],
            help="Thresholds at the step you run: the stability edge of lr*h with the time-varying coefficients "
            "(bias correction, NAdam's schedule, RAdam's rectification, an lr schedule) frozen at each step t, "
            "and with --lr / --run-steps the exact verdict of a run of N steps.\n\n" + _EPILOG.format(cmd="thresholds"),
            short_help="Frozen-time stability edges against the step; exact run verdict.",
        )
    )
