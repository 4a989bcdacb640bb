"""Analysis commands: ``list``, ``describe``, ``response``, ``poles``, ``step``, ``impulse``, ``compare``, ``table``.

A thin front end over :mod:`optfilters`: every number printed comes from the
library (``ArmaFilter``, ``summarise``, ``frequency_response``,
``step_response``, ``impulse_response``, ``quasi_hyperbolic_form``,
``summary_table``); this module only chooses, formats and labels.

Time-varying stages (bias correction, schedules, first-step quirks) are
analysed in their ``t -> inf`` LTI limit and labelled so; step and impulse
responses are simulated exactly.  Marginal and unstable filters are analysed
and flagged with a ``WARNING:`` line on stderr (and ``stable``/``marginal``
flags in JSON).  No command here imports torch or matplotlib unless ``--plot``
is given.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import numpy as np

import optfilters
from optfilters import CATALOGUE, ArmaFilter, OptimizerModel
from optfilters.analysis import NO_QUASI_HYPERBOLIC

from ._common import (
    CliError,
    DependentOption,
    IntegerRange,
    OneLineCommand,
    Selection,
    echo_json,
    fmt,
    fmt_list,
    json_option,
    one_line_errors,
    optimizer_chain,
    optimizer_group,
    plot_option,
    plot_style_options,
    save_plot,
    stability_message,
    warn,
)
from ._common import text_table as _table

__all__ = ["register"]

#: Largest number of rows printed in a step/impulse table before it is sampled.
MAX_ROWS = 30


# ----------------------------------------------------------------------------- helpers


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the library's own StabilityWarning (the CLI flags stability itself) and numpy overflow noise."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", optfilters.StabilityWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _nonlinear_text(model: OptimizerModel) -> str | None:
    parts = [stage.nonlinear_description() for stage in model.nonlinear_stages]
    return "; ".join(parts) if parts else None


def _header(model: OptimizerModel) -> list[str]:
    lines = [model.describe().splitlines()[0]]
    nonlinear = _nonlinear_text(model)
    if nonlinear:
        lines.append(f"nonlinear: {nonlinear}")
        lines.append("  (the filters below are its linear parts; the update is not an LTI function of the gradient)")
    for stage in model.pipeline:
        if stage.period is not None:
            lines.append(f"periodic (period {stage.period}): {stage.describe()}")
            lines.append(
                "  (no transfer function: the loop's rate comes from the monodromy matrix of one period, "
                "see `optfilters stability`)"
            )
    if model.parameter_output is not None:
        lines.append(
            f"output: averaged parameters (state {model.parameter_output!r}), a filter of the parameter sequence "
            "outside the loop"
        )
    return lines


def _time_varying(model: OptimizerModel) -> dict[str, bool]:
    return {name: not stage.is_time_invariant for name, stage in model.linear_stages().items()}


def _stage_notes(model: OptimizerModel, name: str, exact: bool = False) -> str:
    stage = model.linear_stages()[name]
    notes = []
    if not stage.is_time_invariant:
        notes.append("time-varying: simulated exactly" if exact else "time-varying: t->inf limit")
    if stage.bias_corrected:
        notes.append("bias-corrected")
    return f" ({'; '.join(notes)})" if notes else ""


def _flag_stability(model: OptimizerModel, filters: dict[str, ArmaFilter]) -> None:
    tv = _time_varying(model)
    for name, f in filters.items():
        limit = " (t->inf limit)" if tv.get(name) else ""
        message = stability_message(f, f"{model.name} {name} filter{limit}")
        if message:
            warn(message)


def _stability_text(f: ArmaFilter) -> str:
    from optfilters.analysis import stability_reason

    reason = stability_reason(f)
    if reason is None:
        return "stable"
    if f.stability == "marginal":
        return "MARGINAL (pole on the unit circle: the response does not decay)"
    detail = reason.removeprefix("UNSTABLE: ")
    return f"UNSTABLE ({detail}; frequency-domain numbers are formal)"


def _factorisation_notes(f: ArmaFilter) -> list[str]:
    """How the roots of entered coefficients were found, when that is more than a closed form."""
    fact = f.factorisation
    lines = []
    for kind, roots in (("poles", fact.poles), ("zeros", fact.zeros)):
        if roots.method == "high precision" or roots.clusters:
            lines.append(f"  {kind} found: {roots.describe()}")
    return lines


def _cancellation_notes(f: ArmaFilter) -> list[str]:
    """``note:`` lines for pole-zero pairs that cancel (the numbers shown are the reduced filter's)."""
    cancelled = f.cancellations()
    if not cancelled:
        return []
    lines = [f"  note: {c.describe()}" for c in cancelled]
    lines.append("  note: gains, delays and stability are those of the filter with these pairs cancelled")
    return lines


def _base_json(selection: Selection) -> dict[str, Any]:
    model = selection.model
    nonlinear = _nonlinear_text(model)
    return {
        "name": model.name,
        "hyperparameters": dict(model.hyperparameters),
        "is_linear": model.is_linear,
        "is_time_invariant": model.is_time_invariant,
        "nonlinear": nonlinear,
        "why_null": {} if nonlinear else {"nonlinear": "undefined: no nonlinear stage (a linear optimizer)"},
    }


def _qh_text(f: ArmaFilter) -> str | None:
    try:
        qh = optfilters.quasi_hyperbolic_form(f)
    except ValueError:
        return None
    return (
        f"alpha = {fmt(qh.alpha)} (DC gain: effective lr x {fmt(qh.alpha)}), "
        f"beta = {fmt(qh.beta)}, nu = {fmt(qh.nu)}  [alpha((1 - nu) + nu (1 - beta)/(1 - beta z^-1))]"
    )


def _qh_json(f: ArmaFilter) -> dict[str, float] | None:
    if f.order != 1 or f.b.size > 2:
        return None
    try:
        return optfilters.quasi_hyperbolic_form(f).as_dict()
    except ValueError:
        return None


def _sampled_indices(n: int) -> tuple[list[int], bool]:
    """Row indices shown for an n-step response: all up to MAX_ROWS, else the first 10 and log-spaced ones."""
    if n <= MAX_ROWS:
        return list(range(n)), False
    tail = np.unique(np.round(np.geomspace(11, n, MAX_ROWS - 10)).astype(int)) - 1
    return sorted({*range(10), *(int(i) for i in tail), n - 1}), True


def _frequency_grid(points: int, log: bool) -> np.ndarray:
    if log:
        return np.geomspace(1e-3, 0.5, points)
    return np.linspace(0.0, 0.5, points)


def _plot(path: Path | None, draw: Any, as_json: bool, data: dict[str, Any] | None = None, style: Any = None) -> None:
    if path is None:
        return
    style = style or {}
    written = save_plot(draw, path, title=style.get("title"), size=style.get("size"))
    if data is not None:
        data["plot"] = str(written)
    if not as_json:
        click.echo(f"figure written to {written}")


def _emit(
    data: dict[str, Any], text: Callable[[], list[str]], plot: Path | None, draw: Any, as_json: bool, style: Any
) -> None:
    """An analysis command's output: the JSON object, or the text lines (``text()``); then the optional figure."""
    if as_json:
        _plot(plot, draw, as_json, data, style)
        echo_json(data)
        return
    click.echo("\n".join(text()))
    _plot(plot, draw, as_json, style=style)


def _bode_style(style: dict[str, Any]) -> dict[str, Any]:
    """bode() keywords from the slide options: dB or linear magnitude, the phase panel or not."""
    return {"db": style.get("scale", "db") == "db", "phase": not style.get("magnitude_only", False)}


# ----------------------------------------------------------------------------- options


def _points_option() -> click.Option:
    return click.Option(
        ["--points", "points"],
        type=IntegerRange(min=2, max=100_000),
        default=11,
        show_default=True,
        help="Number of frequencies sampled from 0 to 0.5 cycles/step (the table, and the JSON arrays).",
    )


def _log_option() -> click.Option:
    return click.Option(
        ["--log", "log"], is_flag=True, help="Sample the frequencies logarithmically from 0.001 to 0.5 instead."
    )


def _steps_option(default: int = 20) -> click.Option:
    return click.Option(
        ["--steps", "steps"],
        type=IntegerRange(min=1, max=1_000_000),
        default=default,
        show_default=True,
        help="Number of steps, from the first one.",
    )


# ----------------------------------------------------------------------------- describe


def _describe(selection: Selection, as_json: bool, plot: Path | None, **style: Any) -> None:
    model = selection.model
    entry = selection.entry if selection.entry is not None else CATALOGUE[model.name]
    stages = model.linear_stages()
    tv = _time_varying(model)
    with _quiet():
        filters = model.filters()
    _flag_stability(model, filters)
    data = _base_json(selection)
    data.update(
        {
            "summary": entry.summary,
            "aliases": list(entry.aliases),
            "torch_class": entry.torch_class,
            "source": entry.source,
            "stages": [{"role": role, "description": stage.describe()} for role, stage in model.stages],
            "filters": {},
        }
    )
    for name, f in filters.items():
        item = f.as_dict()
        item.pop("name", None)
        qh = _qh_json(f)
        item.update(
            {
                "order": f.order,
                "bias_corrected": stages[name].bias_corrected,
                "time_varying": tv[name],
                "quasi_hyperbolic": qh,
                "factorisation": f.factorisation.describe(),
            }
        )
        if qh is None:
            item.setdefault("why_null", {})["quasi_hyperbolic"] = NO_QUASI_HYPERBOLIC
        data["filters"][name] = item
    if entry.torch_class is None:
        data["why_null"]["torch_class"] = NO_TORCH_CLASS

    def draw(p: Any) -> Any:
        return p.pole_zero_plot(model, stages="all")

    def text() -> list[str]:
        lines = _header(model)
        lines[1:1] = [f"  {entry.summary}"]
        lines.append("stages (in execution order):")
        lines += ["  " + line.strip() for line in model.describe().splitlines()[1:]] or [
            "  (identity: the update is g)"
        ]
        lines.append(
            f"linear: {'yes' if model.is_linear else 'no'}; "
            f"time-invariant: {'yes' if model.is_time_invariant else 'no'}"
            + ("" if model.is_time_invariant else " (time-varying filters are shown in their t->inf limit)")
        )
        for name, f in filters.items():
            lines += ["", f"{name} filter{_stage_notes(model, name)}"]
            lines.append(f"  b = [{fmt_list(f.b)}]")
            lines.append(f"  a = [{fmt_list(f.a)}]")
            lines.append(f"  poles: {fmt_list(f.poles)}")
            lines.append(f"  zeros: {fmt_list(f.zeros)}")
            lines += _factorisation_notes(f)
            lines.append(f"  DC gain: {fmt(f.dc_gain)}")
            lines.append(f"  stability: {_stability_text(f)}")
            lines += _cancellation_notes(f)
            lines.append(f"  bias-corrected: {'yes' if stages[name].bias_corrected else 'no'}")
            if f.order == 1 and f.b.size <= 2:
                qh = _qh_text(f)
                if qh:
                    lines.append(f"  quasi-hyperbolic form: {qh}")
        return lines

    _emit(data, text, plot, draw, as_json, style)


# ----------------------------------------------------------------------------- response


def _response_item(summary: optfilters.FilterSummary, response: optfilters.FrequencyResponse) -> dict[str, Any]:
    """A filter's summary and frequency response as one JSON object (their ``why_null`` entries merged)."""
    facts, samples = summary.as_dict(), response.as_dict()
    why = {**facts.pop("why_null"), **samples.pop("why_null")}
    return {**facts, **samples, "why_null": why}


def _response(selection: Selection, points: int, log: bool, as_json: bool, plot: Path | None, **style: Any) -> None:
    model = selection.model
    stages = model.linear_stages()
    tv = _time_varying(model)
    grid = _frequency_grid(points, log)
    with _quiet():
        filters = model.filters()
        results = {
            name: (optfilters.summarise(f), optfilters.frequency_response(f, freqs=grid)) for name, f in filters.items()
        }
    _flag_stability(model, filters)
    data = _base_json(selection)
    data["freqs"] = grid
    data["units"] = {"freqs": "cycles/step", "phase": "rad", "magnitude_db": "dB", "group_delay": "steps"}
    data["filters"] = {}
    for name, (summary, response) in results.items():
        item = _response_item(summary, response)
        for key in ("name", "freqs"):
            item.pop(key, None)
        item.update({"bias_corrected": stages[name].bias_corrected, "time_varying": tv[name]})
        data["filters"][name] = item

    def draw(p: Any) -> Any:
        return p.bode_plot(model, stages="all", log=log, **_bode_style(style))

    def text() -> list[str]:
        lines = _header(model)
        for name, (summary, response) in results.items():
            lines += ["", f"{name} filter{_stage_notes(model, name)}"]
            lines.append(f"  b = [{fmt_list(summary.b)}], a = [{fmt_list(summary.a)}]  (powers of z^-1)")
            lines.append(
                f"  DC gain {fmt(summary.dc_gain)}, Nyquist gain {fmt(summary.nyquist_gain)}, "
                f"-3 dB cutoff {fmt(summary.cutoff)} cycles/step"
            )
            delay = summary.mean_delay
            delay_text = f"{fmt(delay)} steps" if math.isfinite(delay) else "infinite (a pole at z = 1)"
            lines.append(
                f"  noise gain {fmt(summary.noise_gain)}, mean delay {delay_text}, "
                f"time constant {fmt(summary.time_constant)} steps"
            )
            lines.append(f"  poles: {fmt_list(summary.poles)}; zeros: {fmt_list(summary.zeros)}")
            lines.append(f"  stability: {_stability_text(filters[name])}")
            lines += [f"  note: {note}" for note in summary.notes]
            rows = [
                [fmt(fq, 4), fmt(m), fmt(db, 4, tiny=1e-9), fmt(np.degrees(ph), 4, tiny=1e-9)]
                for fq, m, db, ph in zip(
                    response.freqs, response.magnitude, response.magnitude_db, response.phase, strict=True
                )
            ]
            lines += _table(["freq", "|H|", "dB", "phase(deg)"], rows)
        return lines

    _emit(data, text, plot, draw, as_json, style)


# ----------------------------------------------------------------------------- poles


def _poles(selection: Selection, as_json: bool, plot: Path | None, **style: Any) -> None:
    model = selection.model
    stages = model.linear_stages()
    tv = _time_varying(model)
    with _quiet():
        filters = model.filters()
        maps = {name: optfilters.pole_zero(f) for name, f in filters.items()}
    _flag_stability(model, filters)
    data = _base_json(selection)
    data["filters"] = {}
    for name, pz in maps.items():
        item = pz.as_dict()
        item.pop("name", None)
        radius = float(np.max(np.abs(pz.poles))) if pz.poles.size else 0.0
        item.update(
            {
                "stable": pz.stability == "stable",
                "marginal": pz.stability == "marginal",
                "pole_radius": radius,
                "bias_corrected": stages[name].bias_corrected,
                "time_varying": tv[name],
            }
        )
        data["filters"][name] = item

    def draw(p: Any) -> Any:
        return p.pole_zero_plot(model, stages="all")

    def text() -> list[str]:
        lines = _header(model)
        for name, pz in maps.items():
            lines += ["", f"{name} filter{_stage_notes(model, name)}"]
            for kind, roots in (("poles", pz.poles), ("zeros", pz.zeros)):
                if roots.size == 0:
                    lines.append(f"  {kind}: none")
                    continue
                lines.append(f"  {kind}:")
                rows = [[fmt(r), fmt(abs(r)), fmt(np.angle(r) / (2 * np.pi), 4)] for r in roots]
                lines += _table(["root", "|z|", "angle(cycles/step)"], rows, indent="    ")
            lines.append(f"  gain: {fmt(pz.gain)}; stability: {_stability_text(filters[name])}")
        return lines

    _emit(data, text, plot, draw, as_json, style)


# ----------------------------------------------------------------------------- step and impulse


def _time_responses(selection: Selection, steps: int, response: Callable[..., Any]) -> tuple[Any, ...]:
    """Each linear stage's ``response`` over ``steps`` steps (stability flagged), with the JSON skeleton."""
    model = selection.model
    stages = model.linear_stages()
    tv = _time_varying(model)
    with _quiet():
        filters = model.filters()
        results = {name: response(stage, n=steps) for name, stage in stages.items()}
    _flag_stability(model, filters)
    data = _base_json(selection)
    data["steps"] = np.arange(1, steps + 1)
    data["filters"] = {}
    return model, stages, filters, tv, results, data


def _step(selection: Selection, steps: int, as_json: bool, plot: Path | None, **style: Any) -> None:
    model, stages, filters, tv, results, data = _time_responses(selection, steps, optfilters.step_response)
    for name, sr in results.items():
        item = sr.as_dict()
        item.pop("name", None)
        dc = filters[name].dc_gain
        item.update(
            {
                "dc_gain": dc,
                "bias_corrected_by_optimizer": stages[name].bias_corrected,
                "time_varying": tv[name],
            }
        )
        if not math.isfinite(dc):
            item["why_null"]["dc_gain"] = filters[name].gain_null_reason(1)
        data["filters"][name] = item

    def draw(p: Any) -> Any:
        return p.step_plot(model, n=steps, stages="all")

    def text() -> list[str]:
        lines = _header(model)
        index, sampled = _sampled_indices(steps)
        for name, sr in results.items():
            lines += ["", f"{name} filter: unit-step response{_stage_notes(model, name, exact=True)}"]
            used = "bias-corrected" if sr.applied else "raw"
            lines.append(
                f"  DC gain (t->inf) {fmt(filters[name].dc_gain)}; the optimizer produces the {used} column (*); "
                "'bias-corrected' multiplies each term started from rest by its DC gain / step response "
                "(Adam's bias correction; terms that start from the first gradient are left as they are)"
            )
            headers = [
                "step",
                "raw*" if not sr.applied else "raw",
                "bias-corrected*" if sr.applied else "bias-corrected",
            ]
            rows = [
                [str(i + 1), fmt(sr.raw[i], nan="diverged"), fmt(sr.bias_corrected[i], nan="diverged")] for i in index
            ]
            lines += _table(headers, rows)
            if sampled:
                lines.append(f"  (rows sampled from {steps} steps; --json prints them all)")
        return lines

    _emit(data, text, plot, draw, as_json, style)


def _impulse(selection: Selection, steps: int, as_json: bool, plot: Path | None, **style: Any) -> None:
    model, stages, _filters, tv, results, data = _time_responses(selection, steps, optfilters.impulse_response)
    for name, ir in results.items():
        data["filters"][name] = {
            **{key: value for key, value in ir.as_dict().items() if key != "name"},
            "bias_corrected": stages[name].bias_corrected,
            "time_varying": tv[name],
        }

    def draw(p: Any) -> Any:
        return p.impulse_plot(model, n=steps, stages="all")

    def text() -> list[str]:
        lines = _header(model)
        index, sampled = _sampled_indices(steps)
        for name, ir in results.items():
            lines += [
                "",
                f"{name} filter: unit-impulse response as the optimizer runs it{_stage_notes(model, name, True)}",
            ]
            lines += _table(["step", "impulse"], [[str(i + 1), fmt(ir.values[i], nan="diverged")] for i in index])
            if sampled:
                lines.append(f"  (rows sampled from {steps} steps; --json prints them all)")
        return lines

    _emit(data, text, plot, draw, as_json, style)


# ----------------------------------------------------------------------------- compare


def _unique_labels(selections: Sequence[Selection]) -> list[str]:
    labels: list[str] = []
    for s in selections:
        label = s.label
        if label in labels:
            label = f"{label} #{sum(1 for x in labels if x == label or x.startswith(label + ' #')) + 1}"
        labels.append(label)
    return labels


def _compare(
    selections: list[Selection],
    stage: str,
    points: int,
    log: bool,
    as_json: bool,
    plot: Path | None,
    **style: Any,
) -> None:
    labels = _unique_labels(selections)
    grid = _frequency_grid(points, log)
    filters: dict[str, ArmaFilter] = {}
    for label, s in zip(labels, selections, strict=True):
        available = s.model.linear_stages()
        if stage not in available:
            raise CliError(f"{label} has no {stage!r} stage (it has {', '.join(available)})")
        filters[label] = s.model.filters()[stage]
    with _quiet():
        results = {
            label: (optfilters.summarise(f), optfilters.frequency_response(f, freqs=grid))
            for label, f in filters.items()
        }
    for label, s in zip(labels, selections, strict=True):
        tv = not s.model.linear_stages()[stage].is_time_invariant
        message = stability_message(filters[label], f"{label} {stage} filter{' (t->inf limit)' if tv else ''}")
        if message:
            warn(message)
    # High-frequency attenuation relative to DC: |H(Nyquist)| / |H(DC)|, from the library's gains.
    hf: dict[str, float | None] = {}
    for label, (summary, _) in results.items():
        ratio = summary.nyquist_over_dc  # exact, so independent of the scale of b
        hf[label] = ratio if ratio is not None and math.isfinite(ratio) else None
    ranked = sorted((v, k) for k, v in hf.items() if v is not None)
    data: dict[str, Any] = {
        "stage": stage,
        "freqs": grid,
        "units": {"freqs": "cycles/step", "phase": "rad", "magnitude_db": "dB", "group_delay": "steps"},
        "optimizers": labels,
        "filters": {},
        "most_high_frequency_attenuation": ranked[0][1] if ranked else None,
    }
    for label, s in zip(labels, selections, strict=True):
        summary, response = results[label]
        item: dict[str, Any] = {
            "name": s.model.name,
            "hyperparameters": dict(s.model.hyperparameters),
            "is_linear": s.model.is_linear,
        }
        item.update(_response_item(summary, response))
        item.pop("freqs", None)
        if hf[label] is None:
            item["why_null"]["nyquist_over_dc"] = "undefined: a zero DC gain, or a pole at z = 1 or z = -1"
        item["name"] = s.model.name
        stage_obj = s.model.linear_stages()[stage]
        item.update(
            {
                "nyquist_over_dc": hf[label],
                "bias_corrected": stage_obj.bias_corrected,
                "time_varying": not stage_obj.is_time_invariant,
            }
        )
        data["filters"][label] = item

    def draw(p: Any) -> Any:
        models = {label: s.model for label, s in zip(labels, selections, strict=True)}
        return p.bode_plot(models, stages=stage, log=log, **_bode_style(style))

    def text() -> list[str]:
        any_tv = any(not s.model.linear_stages()[stage].is_time_invariant for s in selections)
        lines = [f"{stage} filters{' (time-varying ones in their t->inf limit)' if any_tv else ''}:"]
        for label, s in zip(labels, selections, strict=True):
            lines.append(f"  {label}: {s.model.describe().splitlines()[0].split(': ', 1)[-1]}")
            nonlinear = _nonlinear_text(s.model)
            if nonlinear:
                lines.append(f"    nonlinear: {nonlinear}")
        rows = []
        facts = [
            ("DC gain", lambda sm: fmt(sm.dc_gain)),
            ("Nyquist gain", lambda sm: fmt(sm.nyquist_gain)),
            ("-3 dB cutoff (cycles/step)", lambda sm: fmt(sm.cutoff)),
            ("noise gain", lambda sm: fmt(sm.noise_gain)),
            ("mean delay (steps)", lambda sm: fmt(sm.mean_delay)),
            ("poles", lambda sm: fmt_list(sm.poles, 4)),
            ("zeros", lambda sm: fmt_list(sm.zeros, 4)),
            ("stability", lambda sm: sm.stability),
        ]
        for title, get in facts:
            rows.append([title, *(get(results[label][0]) for label in labels)])
        rows.append(["Nyquist/DC (dB)", *(_db(hf[label]) for label in labels)])
        lines += ["", *_left_table(["", *labels], rows)]
        for label in labels:
            lines += [f"  note ({label}): {note}" for note in results[label][0].notes]
        lines += ["", "|H| at sampled frequencies:"]
        mag_rows = [
            [fmt(fq, 4), *(fmt(results[label][1].magnitude[i]) for label in labels)] for i, fq in enumerate(grid)
        ]
        lines += _table(["freq", *labels], mag_rows)
        if len(ranked) >= 2:
            best_value, best = ranked[0]
            lines.append("")
            lines.append(
                f"most high-frequency attenuation relative to DC (|H(0.5)|/|H(0)|): {best} "
                f"({_db(best_value)} dB); " + ", ".join(f"{k} {_db(v)} dB" for v, k in ranked[1:])
            )
        return lines

    _emit(data, text, plot, draw, as_json, style)


def _db(ratio: float | None) -> str:
    return "n/a" if ratio is None or ratio <= 0 else fmt(20.0 * np.log10(ratio), 4)


def _left_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    out = ["  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    out += ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return out


# ----------------------------------------------------------------------------- list and table


#: Why a catalogue entry's ``torch_class`` is null in JSON.
NO_TORCH_CLASS = "undefined: no torch.optim class implements it"


def _hyperparameter_json(hp: Any) -> dict[str, Any]:
    """A hyperparameter's default, kind, range and help for ``list --json`` (``why_null`` for an absent one)."""
    data = {"default": hp.default, "kind": hp.kind, "range": hp.range_text() or None, "help": hp.help}
    reasons = {}
    if hp.default is None:
        reasons["default"] = "undefined: no default (the option must be given)"
    if data["range"] is None:
        reasons["range"] = "undefined: any value of its kind" if hp.kind != "bool" else "undefined: a flag"
    data["why_null"] = reasons
    return data


@click.command("list", cls=OneLineCommand)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def list_command(as_json: bool) -> None:
    """List the catalogue: names, aliases and one-line descriptions."""
    entries = [CATALOGUE[name] for name in optfilters.names()]
    if as_json:
        echo_json(
            {
                "optimizers": [
                    {
                        "name": e.name,
                        "aliases": list(e.aliases),
                        "summary": e.summary,
                        "torch_class": e.torch_class,
                        "source": e.source,
                        "hyperparameters": {hp.name: _hyperparameter_json(hp) for hp in e.hyperparameters},
                        "why_null": {} if e.torch_class else {"torch_class": NO_TORCH_CLASS},
                    }
                    for e in entries
                ]
            }
        )
        return
    rows = [[e.name, ", ".join(e.aliases) or "-", e.summary] for e in entries]
    click.echo("\n".join(_left_table(["NAME", "ALIASES", "DESCRIPTION"], rows)))


@click.command("table", cls=OneLineCommand)
@click.argument("rows", nargs=-1, metavar="[ROW]...")
@click.option(
    "--format",
    "output_format",
    cls=DependentOption,
    excludes=("as_json",),
    type=click.Choice(["markdown", "latex", "csv"]),
    default="markdown",
    show_default=True,
    help="Markdown (GitHub), a LaTeX tabular (booktabs) or CSV (no corrections).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (columns, rows, corrections).")
@click.option(
    "--notes/--no-notes",
    cls=DependentOption,
    excludes=("as_json",),
    default=True,
    show_default=True,
    help="Append the corrections to the lecture table (markdown, latex).",
)
def table_command(rows: tuple[str, ...], output_format: str, as_json: bool, notes: bool) -> None:
    """Print the generated summary-of-optimizers table (ROWs: a subset, default every catalogue entry).

    A ROW is a catalogue name with optional hyperparameters after a colon,
    NAME[:KEY=VALUE[,KEY=VALUE...]], or a model of your own,
    path/to/file.py:NAME[:KEY=VALUE...].  A value may hold commas (betas=0.9,0.99).

    \b
    Examples:
      optfilters table momentum nesterov adam
      optfilters table adam adam:beta1=0.95 adam:betas=0.8,0.99 --format latex
      optfilters table sgd my_models.py:slow --format csv
    """
    from optfilters.user_models import model_from_spec

    source = click.get_current_context().get_parameter_source("notes")
    if output_format == "csv" and source not in (None, click.core.ParameterSource.DEFAULT):
        raise CliError("--notes/--no-notes has no effect with --format csv (CSV has no corrections)")
    with one_line_errors():
        chosen = [model_from_spec(r) for r in rows] if rows else None
        table = optfilters.summary_table(chosen)
    if as_json:
        echo_json(table.as_dict())
        return
    if output_format == "latex":
        click.echo(table.to_latex(notes=notes))
    elif output_format == "csv":
        click.echo(table.to_csv(), nl=False)
    else:
        click.echo(table.to_markdown(notes=notes))


# ----------------------------------------------------------------------------- registration

_SINGLE_EPILOG = (
    "NAME is a catalogue name or alias, case-insensitive (optfilters list), or a model of your own, "
    "path/to/file.py:NAME; 'optfilters {cmd} NAME --help' lists its hyperparameters with their defaults."
)


def _single(
    name: str,
    action: Any,
    options: list[click.Parameter],
    plot_help: str,
    help: str,
    short_help: str,
    bode: bool = False,
) -> click.Command:
    """A one-optimizer analysis command: its ``options``, then ``--json``, ``--plot`` and the plot-style options."""
    return optimizer_group(
        name,
        action,
        [*options, json_option(), plot_option(plot_help), *plot_style_options(bode=bode)],
        help=help + "\n\n" + _SINGLE_EPILOG.format(cmd=name),
        short_help=short_help,
    )


def register(group: click.Group) -> None:
    """Add the analysis commands to ``group``."""
    group.add_command(list_command)
    group.add_command(
        _single(
            "describe",
            _describe,
            [],
            "Also write the pole-zero map to FILE (png, svg, pdf).",
            help="Describe an optimizer's stages and each linear stage's b, a, poles, zeros, DC gain and stability.",
            short_help="Stages, filters, poles, zeros, DC gain, stability.",
        )
    )
    group.add_command(
        _single(
            "response",
            _response,
            [_points_option(), _log_option()],
            "Also write a Bode plot to FILE.",
            help="Frequency response of each linear stage: DC/Nyquist gains, -3 dB cutoff, noise gain, "
            "delay, poles/zeros and a sampled table.",
            short_help="Frequency response of each linear stage.",
            bode=True,
        )
    )
    group.add_command(
        _single(
            "poles",
            _poles,
            [],
            "Also write the pole-zero map to FILE.",
            help="Poles and zeros of each linear stage (|z|, angle in cycles/step), gain and stability.",
            short_help="Poles and zeros of each linear stage.",
        )
    )
    group.add_command(
        _single(
            "step",
            _step,
            [_steps_option()],
            "Also write the step responses to FILE.",
            help="Exact unit-step response of each linear stage, raw and bias-corrected.",
            short_help="Unit-step response (raw and bias-corrected).",
        )
    )
    group.add_command(
        _single(
            "impulse",
            _impulse,
            [_steps_option()],
            "Also write the impulse responses to FILE.",
            help="Exact unit-impulse response of each linear stage, as the optimizer runs it.",
            short_help="Unit-impulse response of each linear stage.",
        )
    )
    group.add_command(
        optimizer_chain(
            "compare",
            _compare,
            [
                click.Option(
                    ["--stage", "stage"],
                    default="gradient",
                    show_default=True,
                    help="Which linear stage to compare (gradient, second_moment, center, update_moment, post).",
                ),
                _points_option(),
                _log_option(),
                json_option(),
                plot_option("Also write a Bode plot of all of them to FILE."),
                *plot_style_options(bode=True),
            ],
            help="Compare optimizers side by side: NAME [HYPERPARAMETERS] NAME [HYPERPARAMETERS] ...\n\n"
            "Each NAME takes its own hyperparameters (compare momentum --momentum 0.5 nesterov --momentum 0.5); "
            "--set momentum=0.5 (before the first NAME) sets one on every optimizer that takes it.",
            short_help="Several optimizers' filters side by side.",
        )
    )
    group.add_command(table_command)
