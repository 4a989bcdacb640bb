"""Beyond the linear quadratic: ``sign-loop``, ``large-signal`` and ``certify`` (and ``stability --certify``).

* ``optfilters sign-loop lion --lr 0.01 [--init X] [--curvature H] [--noise-std S,...]``:
  the relay loop of a sign-type optimizer on a quadratic: the constant-speed
  approach, the exact limit cycles, the classical describing-function
  estimate, the cycle a noiseless run ends in, and with ``--noise-std`` the
  steady state against noise (:mod:`optfilters.describing_function`).
* ``optfilters large-signal adam --ratio 10 [--before N] [--burst L] [--map-rows ...
  --map-columns ...] [--bound B --rows ...]``: the exact update after a change
  of gradient scale (:mod:`optfilters.large_signal`).
* ``optfilters certify NAME --condition-number K [--tune]``: the rate certified
  over all smooth strongly convex functions by the IQC SDP of Lessard, Recht
  and Packard (:mod:`optfilters.iqc`; cvxpy is imported only here).

None of them imports torch or matplotlib unless ``--plot`` is given.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from optfilters.validation import MAX_LARGE_SIGNAL_STEPS, MAX_SIGN_LOOP_HALF_PERIOD, MAX_SIGN_LOOP_STEPS

from ._common import (
    CliError,
    DependentOption,
    FiniteFloatRange,
    IntegerRange,
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
    record_plot,
    second_moment_option,
)
from ._common import parse_floats as _floats

__all__ = ["certify_summary", "register"]


# ----------------------------------------------------------------------------- sign-loop


def _crossing_text(crossing: float) -> str:
    """When the approach reaches 0, in steps: ``theta0 / speed`` steps, "within the first step" below one."""
    if crossing < 1.0:
        return "within the first step"
    return f"at step {fmt(crossing)}"


def _sign_loop(
    selection: Selection,
    curvature: float,
    init: float,
    steps: int | None,
    max_half: int,
    noise_std: str | None,
    as_json: bool,
    plot: Path | None,
) -> None:
    from optfilters.describing_function import noise_transition, sign_loop

    model = selection.model
    sigmas = _floats(noise_std, "--noise-std", positive=True) if noise_std is not None else []
    loop = sign_loop(model, curvature=curvature)
    approach = loop.approach(init)
    if steps is None:  # past the approach, then long enough for the cycle to repeat
        steps = min(max(5000, 3 * approach.switch + 2000), MAX_SIGN_LOOP_STEPS)
    run = loop.run(init, steps=steps)
    exact = loop.cycle(run.pattern) if run.pattern is not None else None
    cycles = loop.symmetric_cycles(max_half)
    hb = loop.harmonic_balance()
    data: dict[str, Any] = {
        "name": model.name,
        "hyperparameters": dict(model.hyperparameters),
        "prefilter": loop.prefilter.as_dict(),
        "step": loop.step,
        "label": loop.label,
        "approach": approach.as_dict(),
        "symmetric_cycles": [c.as_dict() for c in cycles],
        "harmonic_balance": hb.as_dict(),
        "run": run.as_dict(),
        "run_cycle_offsets": None if exact is None else list(exact.offsets),
        "run_cycle_is_exact_solution": None
        if exact is None or run.offset is None
        else bool(exact.offsets[0] < run.offset < exact.offsets[1]),
        "why_null": {}
        if exact is not None
        else dict.fromkeys(
            ("run_cycle_offsets", "run_cycle_is_exact_solution"), "undefined: the noiseless run ends in no cycle"
        ),
    }
    transition = None
    if sigmas:
        transition = noise_transition(model, sigmas, curvature=curvature, init=init)
        data["noise_transition"] = transition.as_dict()
    record_plot(data, lambda p: run.plot(approach=approach) if transition is None else transition.plot(), plot)
    if as_json:
        echo_json(data)
        return
    lines = [
        f"{model.name}: sign loop on h theta^2/2 (h = {fmt(curvature)}), pre-sign filter "
        f"b = {[float(fmt(v)) for v in loop.prefilter.b]}, a = {[float(fmt(v)) for v in loop.prefilter.a]}, "
        f"step lr = {fmt(loop.step)}",
        f"  approach: constant speed {fmt(loop.step)} per step from {fmt(init)}; theta reaches 0 "
        f"{_crossing_text(approach.crossing)}, the sign first flips at step {approach.switch} "
        f"(overshoot {fmt(approach.overshoot)}; a long ramp: {fmt(approach.ramp_estimate)} = crossing + the "
        f"filter's mean delay {fmt(approach.lag)} + 1); loss at step t < {approach.switch}: h (theta0 - lr t)^2 / 2",
        "  exact symmetric cycles (period 2k, theta_{-1} = q lr with q in the interval; independent of lr and h):",
    ]
    for c in cycles:
        lines.append(f"    period {c.period}: q in ({fmt(c.offsets[0])}, {fmt(c.offsets[1])})")
    if not cycles:
        lines.append(f"    none up to period {2 * max_half}")
    if run.period is None or run.amplitude is None:
        why = run.as_dict()["why_null"]["period"].removeprefix("undefined: ")
        lines.append(f"  noiseless run of {steps} steps: {why}")
    else:
        lines.append(
            f"  noiseless run of {steps} steps ends in period {run.period}, amplitude {fmt(run.amplitude)} "
            f"= {fmt(run.amplitude / loop.step)} lr, q = {fmt(run.offset)}; exact interval for its pattern "
            f"({fmt(data['run_cycle_offsets'][0])}, {fmt(data['run_cycle_offsets'][1])})"
        )
    for w, period, amp in zip(hb.frequencies, hb.periods, hb.theta_amplitudes, strict=True):
        lines.append(
            f"  describing function (approximate): period {fmt(period)} (w = {fmt(w)} rad/step), "
            f"theta amplitude {fmt(amp)}"
        )
    if transition is not None:
        lines.append(f"  steady-state loss against noise (noiseless cycle {fmt(transition.cycle)}):")
        for s, pr, li in zip(transition.noise_std, transition.predicted, transition.linearised, strict=True):
            lines.append(f"    noise std {fmt(s)}: predicted {fmt(pr)}, Gaussian gain only {fmt(li)}")
    echo_text(lines, data.get("plot"))


def _sign_loop_options() -> list[click.Parameter]:
    return [
        click.Option(
            ["--curvature", "curvature"],
            type=FiniteFloatRange(min=0.0, min_open=True),
            default=1.0,
            show_default=True,
            help="Curvature h of the quadratic h theta^2 / 2.",
        ),
        click.Option(
            ["--init", "init"],
            type=FiniteFloatRange(),
            default=1.0,
            show_default=True,
            help="Start theta_0 (non-zero).",
        ),
        click.Option(
            ["--steps", "steps"],
            type=IntegerRange(min=8, max=MAX_SIGN_LOOP_STEPS),
            default=None,
            help="Steps of the noiseless run whose final cycle is reported (default: 3 times the approach plus "
            "2000, at least 5000).",
        ),
        click.Option(
            ["--max-period", "max_half"],
            type=IntegerRange(min=1, max=MAX_SIGN_LOOP_HALF_PERIOD),
            default=32,
            show_default=True,
            help="Largest half-period k of the symmetric cycles searched.",
        ),
        click.Option(
            ["--noise-std", "noise_std"],
            default=None,
            metavar="S1,S2,...",
            help="Also the steady-state loss for these gradient-noise standard deviations.",
        ),
        json_option(),
        plot_option("Also write the run (or, with --noise-std, the noise sweep) to FILE (png, svg, pdf)."),
    ]


# ----------------------------------------------------------------------------- large-signal


def _large_signal(
    selection: Selection,
    ratio: float,
    before: int | None,
    burst: int | None,
    map_rows: str | None,
    map_columns: str | None,
    bound: float | None,
    rows: str | None,
    parameters: str,
    as_json: bool,
    plot: Path | None,
) -> None:
    from optfilters.large_signal import bounded_region, burst_response, peak_ratio_map, step_response

    model = selection.model
    names = parse_names(parameters, "--parameters")
    if len(names) != 2:
        raise CliError(f"--parameters needs two names separated by a comma, got {parameters!r}")
    if burst is not None:
        response = burst_response(model, ratio, burst, before=before)
    else:
        response = step_response(model, ratio, before=before)
    data: dict[str, Any] = {"response": response.as_dict()}
    grid = None
    if map_rows is not None or map_columns is not None:
        if map_rows is None or map_columns is None:
            raise CliError("--map-rows and --map-columns go together")
        grid = peak_ratio_map(
            model,
            _floats(map_rows, "--map-rows"),
            _floats(map_columns, "--map-columns"),
            ratio=ratio,
            parameters=names,
            before=before,
        )
        data["map"] = grid.as_dict()
    region = None
    if bound is not None:
        region = bounded_region(
            model, bound, ratio=ratio, rows=_floats(rows or "0.9", "--rows"), parameters=names, before=before
        )
        data["bounded_region"] = region.as_dict()
    record_plot(data, lambda p: response.plot() if grid is None else grid.plot(), plot)
    if as_json:
        echo_json(data)
        return
    r = response
    kind = f"a burst of {burst} steps at" if burst is not None else "a step to"
    history = "the long-history limit" if before is None else f"{before} steps"
    lines = [
        f"{model.name}: gradient scale 1 for {history}, then {kind} {fmt(ratio)} (exact recursion, weight decay off)",
        f"  steady-state update (long constant gradient): {fmt(r.steady)} before, {fmt(r.steady_after)} after",
        f"  peak update {fmt(r.peak)} = {fmt(r.peak_ratio)} x the steady state, {r.peak_delay} steps after the change; "
        f"lowest {fmt(r.minimum_ratio)} x",
    ]
    if grid is not None:
        lines.append(f"  peak ratio over {names[0]} (rows) x {names[1]} (columns):")
        lines.append("    " + " ".join(f"{fmt(c):>9}" for c in [math.nan, *grid.columns]).replace("nan", "   "))
        for value, row in zip(grid.rows, grid.peak_ratio, strict=True):
            lines.append("    " + " ".join(f"{fmt(v, 4):>9}" for v in [value, *row]))
    if region is not None:
        for value, limit in zip(region.rows, region.limits, strict=True):
            lines.append(
                f"  peak <= {fmt(bound)} x: {names[0]} = {fmt(value)} needs {names[1]} <= {fmt(limit)}"
                if math.isfinite(limit)
                else f"  peak <= {fmt(bound)} x: {names[0]} = {fmt(value)}: not within the span"
            )
    echo_text(lines, data.get("plot"))


def _large_signal_options() -> list[click.Parameter]:
    return [
        click.Option(
            ["--ratio", "ratio"],
            type=FiniteFloatRange(min=0.0, min_open=True),
            default=10.0,
            show_default=True,
            help="New gradient scale over the old (> 1 step up, < 1 step down).",
        ),
        click.Option(
            ["--before", "before"],
            type=IntegerRange(min=1, max=MAX_LARGE_SIGNAL_STEPS),
            default=None,
            help="Steps at the old scale (default: the long-history limit).",
        ),
        click.Option(
            ["--burst", "burst"],
            type=IntegerRange(min=1, max=MAX_LARGE_SIGNAL_STEPS),
            default=None,
            help="A burst of this many steps at the new scale, then back.",
        ),
        click.Option(
            ["--map-rows", "map_rows"],
            default=None,
            metavar="V1,V2,...",
            help="Peak-ratio map: values of the first parameter (default beta1).",
        ),
        click.Option(
            ["--map-columns", "map_columns"],
            default=None,
            metavar="V1,V2,...",
            help="Peak-ratio map: values of the second parameter (default beta2).",
        ),
        click.Option(
            ["--bound", "bound"],
            type=FiniteFloatRange(min=1.0),
            default=None,
            help="Also the largest second parameter keeping the peak within this factor.",
        ),
        DependentOption(
            ["--rows", "rows"],
            default=None,
            metavar="V1,...",
            needs="bound",
            help="values of the first parameter (default 0.9).",
        ),
        DependentOption(
            ["--parameters", "parameters"],
            default="beta1,beta2",
            show_default=True,
            needs=("map_rows", "map_columns", "bound"),
            help="the two hyperparameters of the map and the bound.",
        ),
        json_option(),
        plot_option("Also write the response (or the map) to FILE (png, svg, pdf)."),
    ]


# ----------------------------------------------------------------------------- certify


def _certifier() -> Any:
    try:
        import cvxpy  # noqa: F401
    except ImportError:
        raise CliError("certification needs cvxpy (pip install cvxpy)") from None
    from optfilters import iqc

    return iqc


def certify_summary(model: Any, condition_number: float, mu: float, second_moment: float, tune: bool) -> dict[str, Any]:
    """The certificate of the model's own setting, of the quadratic tuning, and (``tune``) the certified tuning."""
    from optfilters.closed_loop import as_model
    from optfilters.closed_loop import tune as tune_quadratic

    iqc = _certifier()
    L = condition_number * mu
    out: dict[str, Any] = {
        "given": iqc.certify(model, mu=mu, L=L, second_moment=second_moment).as_dict(),
    }
    quadratic = tune_quadratic(model, condition_number=condition_number, mu=mu, second_moment=second_moment)
    tuned = {k: float(v) for k, v in quadratic.hyperparameters.items()}
    tuned_model = as_model(model, **tuned, lr=quadratic.lr)
    out["quadratic_tuning"] = {
        "lr": quadratic.lr,
        **tuned,
        "quadratic_rate": quadratic.rate,
        "certificate": iqc.certify(tuned_model, mu=mu, L=L, second_moment=second_moment).as_dict(),
    }
    if tune:
        out["certified_tuning"] = iqc.tune_certified(
            model, condition_number=condition_number, mu=mu, second_moment=second_moment
        ).as_dict()
    return out


def _certify_lines(summary: dict[str, Any], mu: float, L: float) -> list[str]:
    def rate(cert: dict[str, Any]) -> str:
        return fmt(cert["rate"]) if cert["certified"] else "none (LMI infeasible at rho = 1)"

    given = summary["given"]
    lines = [
        f"  certified over ALL smooth strongly convex f with curvature in [{fmt(mu)}, {fmt(L)}] "
        "(IQC SDP, sector + weighted off-by-one multipliers; Lessard, Recht & Packard 2016):",
        f"    given setting (lr = {fmt(given['lr'])}): certified rate {rate(given)}, worst quadratic "
        f"{fmt(given['quadratic_rate'])}",
    ]
    q = summary["quadratic_tuning"]
    tuned = ", ".join(f"{k} = {fmt(v)}" for k, v in q.items() if k not in ("lr", "quadratic_rate", "certificate"))
    lines.append(
        f"    quadratic tuning (lr = {fmt(q['lr'])}{', ' + tuned if tuned else ''}): quadratic rate "
        f"{fmt(q['quadratic_rate'])}, certified rate {rate(q['certificate'])}"
    )
    if "certified_tuning" in summary:
        c = summary["certified_tuning"]
        tuned = ", ".join(f"{k} = {fmt(c[k])}" for k in c["tuned"] if k != "lr")
        lines.append(
            f"    certified tuning (lr = {fmt(c['lr'])}{', ' + tuned if tuned else ''}): certified rate "
            f"{fmt(c['rate'])}, its worst quadratic {fmt(c['quadratic_rate'])}"
        )
    label = given.get("label", "exact")
    if label != "exact":
        lines.append(f"    note: {label}")
    lines.append(
        f"    solver {given['solver']} ({', '.join(f'{k}={v:g}' for k, v in given['solver_options'].items())}), "
        f"bisection tolerance {fmt(given['tolerance'])}"
    )
    return lines


def _certify(
    selection: Selection,
    condition_number: float,
    mu: float,
    tune: bool,
    second_moment: float,
    as_json: bool,
    plot: Path | None,
) -> None:
    model = selection.model
    summary = certify_summary(model, condition_number, mu, second_moment, tune)
    summary["name"] = model.name
    summary["hyperparameters"] = dict(model.hyperparameters)
    record_plot(
        summary,
        lambda p: p.certified_rates_plot(
            {"given": _certifier().certify(model, mu=mu, L=condition_number * mu, second_moment=second_moment)}
        ),
        plot,
    )
    if as_json:
        echo_json(summary)
        return
    lines = [f"{model.name}: worst case beyond quadratics, kappa = {fmt(condition_number)}"]
    lines += _certify_lines(summary, mu, condition_number * mu)
    echo_text(lines, summary.get("plot"))


def _certify_options() -> list[click.Parameter]:
    return [
        condition_number_option("Curvatures in [mu, K mu].", required=True),
        mu_option("Strong convexity constant."),
        click.Option(
            ["--tune", "tune"],
            is_flag=True,
            help="Also search lr and the filter's hyperparameters for the smallest certified rate.",
        ),
        second_moment_option("Normalised optimizers: where the normaliser is frozen (linearised)."),
        json_option(),
        plot_option("Also write the quadratic and certified rates to FILE (png, svg, pdf)."),
    ]


_EPILOG = (
    "NAME is a catalogue optimizer or alias (optfilters list), followed by its hyperparameters "
    "(optfilters {cmd} NAME --help lists them)."
)


def register(group: click.Group) -> None:
    """Add ``sign-loop``, ``large-signal`` and ``certify`` to ``group``."""
    group.add_command(
        optimizer_group(
            "sign-loop",
            _sign_loop,
            _sign_loop_options(),
            help="Sign-type optimizers (Lion; Signum/Tiger with beta1 = beta2) on a quadratic: the constant-speed "
            "approach, the exact limit cycles of the discrete relay loop, the describing-function estimate, "
            "and the steady state against gradient noise.\n\n" + _EPILOG.format(cmd="sign-loop"),
            short_help="Relay loop of sign optimizers: approach, limit cycle, noise.",
        )
    )
    group.add_command(
        optimizer_group(
            "large-signal",
            _large_signal,
            _large_signal_options(),
            help="The exact update of a normalised optimizer after the gradient's scale changes (step up, step "
            "down, burst): its peak over the steady state, a map over two hyperparameters and the region "
            "where it stays bounded.\n\n" + _EPILOG.format(cmd="large-signal"),
            short_help="Update spike after a change of gradient scale.",
        )
    )
    group.add_command(
        optimizer_group(
            "certify",
            _certify,
            _certify_options(),
            help="Convergence rate certified over all smooth strongly convex functions with curvature in "
            "[mu, K mu] (IQC SDP of Lessard, Recht and Packard 2016, solved with cvxpy), for the given "
            "setting, the quadratic tuning and (--tune) the tuning minimising the certified rate.\n\n"
            + _EPILOG.format(cmd="certify"),
            short_help="Certified rate over smooth strongly convex functions (IQC).",
        )
    )
