"""The analysis commands' text and JSON output, checked against closed forms and independent references.

The CLI as a new user meets it: table formats, option scope, ``--betas``, predict's help and plot, slide options,
models from the user's own files in every command, and identify's progress.

The catalogue owns every per-optimizer fact: an entry registered here reaches the table, CLI, docs and tuners.

Issue 11: every number of every filter, each case checked against a reference computed here.

References are independent of optfilters' factored/exact code: scipy's own SOS designs run through
``sosfilt``, mpmath roots and derivatives of the multiplied-out polynomials at 50 digits, dense
``sosfreqz`` grids unwrapped by numpy, and closed forms.

The package entries' stage kinds in the analysis: closed loops against the step program, labels, CLI.

The closed loop of each entry (built from its stages' direction filters, weight
decay placements and frozen gains) is checked against an independent path: the
eigenvalues of the linearised step program run on rows of affine maps (the
noisy-quadratic model's state-space matrix of the ``t -> infinity`` limit).
Every nonlinear stage is labelled as such in each analysis.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import mpmath
import numpy as np
import pytest
from click.testing import CliRunner, Result
from optfilters.cli import main
from scipy import signal

import optfilters
from optfilters import CATALOGUE, ArmaFilter, CatalogueEntry
from optfilters.batch_size import POLE_HYPERPARAMETERS
from optfilters.catalogue import catalogue_docs, register
from optfilters.closed_loop import DEFAULT_TUNED, closed_loop
from optfilters.noisy_quadratic import predict
from optfilters.table import COLUMNS, table_row
from tests.support.cli import cli_args
from tests.support.filter_references import design_sos, impulse_sums
from tests.support.registered_entry import registered_slowball


def _strict(text: str) -> Any:
    """Parse JSON refusing NaN / Infinity tokens (they are not JSON)."""

    def refuse(token: str) -> None:
        raise AssertionError(f"non-JSON token {token} in the output")

    return json.loads(text, parse_constant=refuse)


def run(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    if code == 0:
        assert "Traceback" not in result.output
    return result


def run_json(*args: str) -> dict[str, Any]:
    result = run(*args, "--json")
    data = _strict(result.stdout)
    assert isinstance(data, dict)
    return data


def ema_response(beta: float, freqs: np.ndarray) -> np.ndarray:
    """(1 - beta) / (1 - beta e^{-jw}) written out by hand."""
    w = 2 * np.pi * freqs
    return (1 - beta) / (1 - beta * np.cos(w) + 1j * beta * np.sin(w))


# ----------------------------------------------------------------------------- list and table


def test_list_text_and_json() -> None:
    text = run("list").stdout
    for name in optfilters.names():
        assert f"  {name} " in text
    assert "nag" in text and "heavy-ball" in text  # aliases
    data = run_json("list")
    assert [item["name"] for item in data["optimizers"]] == optfilters.names()
    adam = next(item for item in data["optimizers"] if item["name"] == "adam")
    assert adam["hyperparameters"]["beta2"]["default"] == 0.999
    assert adam["hyperparameters"]["beta1"]["range"] == "[0, 1)"
    assert adam["torch_class"] == "torch.optim.Adam"


def test_table_markdown_and_json() -> None:
    text = run("table").stdout
    lines = text.splitlines()
    assert lines[0].startswith("| optimizer | gradient filtering |")
    assert lines[1].startswith("|---|")
    rows = [line for line in lines[2:] if line.startswith("| ")]
    buildable = [n for n in optfilters.names() if n != "custom"]  # custom has a required b
    assert [row.split(" | ")[0][2:] for row in rows] == buildable
    momentum = next(row for row in rows if row.startswith("| momentum |"))
    assert "AR1, unit input gain (pole 0.9)" in momentum
    assert "Corrections" in text
    assert "Corrections" not in run("table", "--no-notes").stdout
    data = run_json("table", "momentum", "NAG")
    assert [row[0] for row in data["rows"]] == ["momentum", "nesterov"]
    assert data["columns"][0] == "optimizer"


# ----------------------------------------------------------------------------- describe


def test_describe_momentum_json_closed_form() -> None:
    data = run_json("describe", "momentum", "--momentum", "0.9")
    assert data["name"] == "momentum"
    assert data["hyperparameters"]["momentum"] == 0.9
    f = data["filters"]["gradient"]
    assert f["b"] == [1.0] and f["a"] == pytest.approx([1.0, -0.9])
    assert f["poles"] == [pytest.approx([0.9, 0.0])]
    assert f["zeros"] == [pytest.approx([0.0, 0.0])]
    assert f["dc_gain"] == pytest.approx(1 / (1 - 0.9))  # 10
    assert f["stable"] is True and f["marginal"] is False and f["bias_corrected"] is False
    assert data["is_linear"] is True and data["nonlinear"] is None


def test_describe_nesterov_zero_and_text() -> None:
    data = run_json("describe", "nesterov", "--momentum", "0.9")
    f = data["filters"]["gradient"]
    assert f["b"] == pytest.approx([1.9, -0.9]) and f["a"] == pytest.approx([1.0, -0.9])
    assert f["zeros"][0] == pytest.approx([0.9 / 1.9, 0.0])  # mu / (1 + mu)
    assert f["dc_gain"] == pytest.approx(10.0)
    text = run("describe", "NAG").stdout  # alias, case-insensitive
    assert text.startswith("nesterov: lr=0.001, momentum=0.9")
    assert "zeros: 0.473684" in text and "DC gain: 10" in text and "stability: stable" in text


def test_describe_adam_limits_and_nonlinearity() -> None:
    data = run_json("describe", "adam", "--beta1", "0.9")
    grad, second = data["filters"]["gradient"], data["filters"]["second_moment"]
    assert grad["b"] == pytest.approx([0.1]) and grad["a"] == pytest.approx([1.0, -0.9])
    assert second["b"] == pytest.approx([1 - 0.999]) and second["a"] == pytest.approx([1.0, -0.999])
    assert grad["bias_corrected"] is True and second["bias_corrected"] is True
    assert grad["time_varying"] is True
    assert grad["dc_gain"] == pytest.approx(1.0) and second["dc_gain"] == pytest.approx(1.0)
    assert data["is_linear"] is False and "sqrt(v) + eps" in data["nonlinear"]
    text = run("describe", "adam", "--beta1", "0.9").stdout
    assert "gradient filter (time-varying: t->inf limit; bias-corrected)" in text
    assert "nonlinear: divide by sqrt(v) + eps" in text


def test_describe_quasi_hyperbolic_forms() -> None:
    grok = run_json("describe", "grokfast", "--alpha", "0.98", "--lamb", "2")["filters"]["gradient"]
    assert grok["dc_gain"] == pytest.approx(1 + 2.0)  # g + lamb * unit-DC-gain EMA
    assert grok["quasi_hyperbolic"]["alpha"] == pytest.approx(3.0)
    assert "effective lr x 3" in run("describe", "grokfast").stdout
    lion = run_json("describe", "lion", "--beta1", "0.9", "--beta2", "0.99")["filters"]["gradient"]
    assert lion["quasi_hyperbolic"]["nu"] == pytest.approx(0.9 / 0.99)
    assert lion["quasi_hyperbolic"]["beta"] == pytest.approx(0.99)
    assert lion["quasi_hyperbolic"]["alpha"] == pytest.approx(1.0)
    assert "nonlinear: takes the sign" in run("describe", "lion").stdout


def test_describe_marginal_adagrad_is_flagged() -> None:
    result = run("describe", "adagrad")
    assert "MARGINAL" in result.stdout
    assert result.stderr.startswith("WARNING: adagrad second_moment filter is marginally stable")
    data = run_json("describe", "adagrad")
    second = data["filters"]["second_moment"]
    assert second["marginal"] is True and second["stable"] is False
    assert second["dc_gain"] is None  # infinite: null, never Infinity
    assert second["poles"] == [pytest.approx([1.0, 0.0])]


def test_describe_stage_names() -> None:
    assert set(run_json("describe", "rmsprop", "--centered", "--momentum", "0.9")["filters"]) == {
        "gradient",
        "second_moment",
        "center",
        "post",
    }
    assert set(run_json("describe", "adadelta")["filters"]) == {"gradient", "second_moment", "update_moment"}


# ----------------------------------------------------------------------------- response


def test_response_momentum_json_closed_forms() -> None:
    mu = 0.9
    data = run_json("response", "momentum", "--momentum", "0.9")
    freqs = np.array(data["freqs"])
    assert freqs == pytest.approx(np.linspace(0.0, 0.5, 11))
    f = data["filters"]["gradient"]
    w = 2 * np.pi * freqs
    h = 1.0 / (1 - mu * np.cos(w) + 1j * mu * np.sin(w))
    assert np.array(f["magnitude"]) == pytest.approx(np.abs(h), rel=1e-12)
    assert np.array(f["phase"]) == pytest.approx(np.angle(h), abs=1e-12)
    assert f["dc_gain"] == pytest.approx(1 / (1 - mu))
    assert f["nyquist_gain"] == pytest.approx(1 / (1 + mu))
    assert f["noise_gain"] == pytest.approx(1 / (1 - mu**2))
    assert f["mean_delay"] == pytest.approx(mu / (1 - mu))
    # |H|^2 = 1 / (1 - 2 mu cos w + mu^2) falls to half its DC value where cos w = (1 + mu^2 - 2 (1 - mu)^2) / (2 mu)
    cutoff = math.acos((1 + mu**2 - 2 * (1 - mu) ** 2) / (2 * mu)) / (2 * math.pi)
    assert f["cutoff"] == pytest.approx(cutoff, rel=1e-8)
    assert f["stable"] is True and f["marginal"] is False


def test_response_adam_gradient_is_the_ema() -> None:
    data = run_json("response", "adam", "--beta1", "0.9", "--points", "7")
    freqs = np.array(data["freqs"])
    assert len(freqs) == 7
    grad = data["filters"]["gradient"]
    assert np.array(grad["magnitude"]) == pytest.approx(np.abs(ema_response(0.9, freqs)), rel=1e-12)
    second = data["filters"]["second_moment"]
    assert np.array(second["magnitude"]) == pytest.approx(np.abs(ema_response(0.999, freqs)), rel=1e-12)
    assert grad["bias_corrected"] is True and grad["time_varying"] is True


def test_response_text_summary_and_table() -> None:
    text = run("response", "adam", "--beta1", "0.9").stdout
    assert "nonlinear: divide by sqrt(v) + eps" in text
    assert "gradient filter (time-varying: t->inf limit; bias-corrected)" in text
    assert "DC gain 1, Nyquist gain 0.0526316" in text  # (1 - 0.9) / (1 + 0.9)
    assert "mean delay 9 steps" in text
    header = [i for i, line in enumerate(text.splitlines()) if line.split() == ["freq", "|H|", "dB", "phase(deg)"]]
    assert len(header) == 2  # gradient and second_moment
    table = text.splitlines()[header[0] + 1 : header[0] + 12]
    assert [row.split()[0] for row in table] == [f"{f:g}" for f in np.linspace(0, 0.5, 11)]
    assert table[0].split()[1:] == ["1", "0", "0"]  # DC: |H| = 1, 0 dB, no phase


def test_response_log_grid() -> None:
    data = run_json("response", "momentum", "--points", "5", "--log")
    assert np.array(data["freqs"]) == pytest.approx(np.geomspace(1e-3, 0.5, 5))


def test_response_designed_butterworth() -> None:
    data = run_json("response", "butterworth", "--order", "2", "--cutoff", "0.05", "--dc-gain", "10")
    f = data["filters"]["gradient"]
    assert data["freqs"][1] == pytest.approx(0.05)
    assert f["dc_gain"] == pytest.approx(10.0)
    assert f["magnitude"][1] == pytest.approx(10 / math.sqrt(2), rel=1e-9)  # Butterworth: -3 dB at the cutoff
    assert f["cutoff"] == pytest.approx(0.05, rel=1e-6)


def test_response_custom_unstable_is_analysed_and_flagged() -> None:
    result = run("response", "custom", "--b", "1", "--a", "1,-1.1")
    assert "UNSTABLE" in result.stdout
    assert result.stderr.startswith("WARNING: custom gradient filter is UNSTABLE")
    data = run_json("response", "custom", "--b", "1", "--a", "1,-1.1")
    f = data["filters"]["gradient"]
    assert f["stable"] is False and f["marginal"] is False and f["stability"] == "unstable"
    assert f["noise_gain"] is None  # infinite
    assert f["dc_gain"] == pytest.approx(1 / (1 - 1.1))


def test_response_marginal_json_has_nulls_not_infinity() -> None:
    data = run_json("response", "adagrad")
    second = data["filters"]["second_moment"]
    assert second["magnitude"][0] is None  # |H(1)| of the summer is infinite
    assert second["marginal"] is True


# ----------------------------------------------------------------------------- poles


def test_poles_nesterov() -> None:
    data = run_json("poles", "nesterov", "--momentum", "0.9")
    f = data["filters"]["gradient"]
    assert f["poles"] == [pytest.approx([0.9, 0.0])]
    assert f["zeros"] == [pytest.approx([0.9 / 1.9, 0.0])]
    assert f["pole_radius"] == pytest.approx(0.9) and f["stable"] is True
    text = run("poles", "nesterov").stdout
    assert "angle(cycles/step)" in text and "0.473684" in text


def test_poles_butterworth_match_scipy_design() -> None:
    from scipy import signal

    data = run_json("poles", "butterworth", "--order", "4", "--cutoff", "0.1")
    poles = np.array([complex(re, im) for re, im in data["filters"]["gradient"]["poles"]])
    _, expected, _ = signal.butter(4, 2 * 0.1, output="zpk")
    assert np.sort_complex(poles) == pytest.approx(np.sort_complex(expected), abs=1e-9)
    assert data["filters"]["gradient"]["pole_radius"] == pytest.approx(np.max(np.abs(expected)))


def test_poles_high_order_design_keeps_exact_zeros() -> None:
    data = run_json("poles", "butterworth", "--order", "8", "--cutoff", "0.02")
    zeros = np.array([complex(re, im) for re, im in data["filters"]["gradient"]["zeros"]])
    assert zeros == pytest.approx(np.full(8, -1.0 + 0j), abs=1e-9)  # Butterworth: all zeros at z = -1


# ----------------------------------------------------------------------------- step and impulse


def test_step_adam_raw_and_bias_corrected() -> None:
    n = np.arange(1, 9)
    data = run_json("step", "adam", "--beta1", "0.9", "--steps", "8")
    assert data["steps"] == n.tolist()
    grad = data["filters"]["gradient"]
    assert np.array(grad["step"]) == pytest.approx(1 - 0.9**n, rel=1e-12)
    assert np.array(grad["bias_corrected"]) == pytest.approx(np.ones(8), rel=1e-12)
    assert grad["applied"] is True and grad["bias_corrected_by_optimizer"] is True
    assert "compensated" not in grad and "compensated_by_optimizer" not in grad  # the field's name only
    second = data["filters"]["second_moment"]
    assert np.array(second["step"]) == pytest.approx(1 - 0.999**n, rel=1e-12)


def test_step_momentum_and_torch_dampening_quirk() -> None:
    n = np.arange(1, 21)
    grad = run_json("step", "momentum", "--momentum", "0.9")["filters"]["gradient"]
    assert np.array(grad["step"]) == pytest.approx(10 * (1 - 0.9**n), rel=1e-12)  # sum of 0.9^k
    assert np.array(grad["bias_corrected"]) == pytest.approx(np.full(20, 10.0), rel=1e-12)  # DC gain / partial sum
    assert grad["applied"] is False
    # torch: buf_1 = g_1, then buf = 0.9 buf + 0.5 g  =>  y_t = 5 - 4 * 0.9^(t-1)
    grad = run_json("step", "momentum", "--momentum", "0.9", "--dampening", "0.5")["filters"]["gradient"]
    assert np.array(grad["step"]) == pytest.approx(5 - 4 * 0.9 ** (n - 1), rel=1e-12)
    assert grad["time_varying"] is True


def test_step_text() -> None:
    text = run("step", "adam", "--steps", "5").stdout
    assert "step      raw  bias-corrected*" in text
    lines = text.splitlines()
    start = lines.index("  step      raw  bias-corrected*")
    assert [line.split() for line in lines[start + 1 : start + 4]] == [
        ["1", "0.1", "1"],
        ["2", "0.19", "1"],
        ["3", "0.271", "1"],
    ]
    text = run("step", "momentum").stdout
    assert "raw*" in text and len([ln for ln in text.splitlines() if ln.strip()[:1].isdigit()]) == 20
    long = run("step", "momentum", "--steps", "500").stdout
    assert "rows sampled from 500 steps" in long and "\n   500  " in long


def test_impulse_closed_forms() -> None:
    n = np.arange(1, 11)
    mom = run_json("impulse", "momentum", "--momentum", "0.9", "--steps", "10")["filters"]["gradient"]
    assert np.array(mom["impulse"]) == pytest.approx(0.9 ** (n - 1), rel=1e-12)
    nes = run_json("impulse", "nesterov", "--momentum", "0.9", "--steps", "10")["filters"]["gradient"]
    expected = np.concatenate([[1.9], 0.81 * 0.9 ** (n[1:] - 2)])  # h0 = 1 + mu, h_k = mu^2 mu^(k-1)
    assert np.array(nes["impulse"]) == pytest.approx(expected, rel=1e-12)
    adam = run_json("impulse", "adam", "--beta1", "0.5", "--steps", "10")["filters"]["gradient"]
    assert np.array(adam["impulse"]) == pytest.approx(0.5 * 0.5 ** (n - 1) / (1 - 0.5**n), rel=1e-12)
    assert "impulse" in run("impulse", "sgd", "--steps", "3").stdout


def test_impulse_unstable_overflow_is_null() -> None:
    result = run("impulse", "custom", "--b", "1", "--a", "1,-1.1", "--steps", "10000", "--json")
    values = _strict(result.stdout)["filters"]["gradient"]["impulse"]
    assert values[1] == pytest.approx(1.1) and values[-1] is None  # 1.1^9999 overflows: null
    assert "UNSTABLE" in result.stderr


# ----------------------------------------------------------------------------- compare


def test_compare_momentum_nesterov() -> None:
    data = run_json("compare", "momentum", "nesterov")
    assert data["optimizers"] == ["momentum", "nesterov"]
    mom, nes = data["filters"]["momentum"], data["filters"]["nesterov"]
    assert mom["dc_gain"] == pytest.approx(10.0) and nes["dc_gain"] == pytest.approx(10.0)
    assert mom["nyquist_gain"] == pytest.approx(1 / 1.9)  # 1 / (1 + mu)
    assert nes["nyquist_gain"] == pytest.approx(2.8 / 1.9)  # ((1 + mu) + mu) / (1 + mu)
    assert data["most_high_frequency_attenuation"] == "momentum"
    text = run("compare", "momentum", "nesterov").stdout
    assert "most high-frequency attenuation relative to DC (|H(0.5)|/|H(0)|): momentum" in text
    assert "Nyquist/DC (dB)" in text


def test_compare_hyperparameters_per_optimizer_and_shared() -> None:
    data = run_json("compare", "--set", "momentum=0.5", "momentum", "nesterov")
    assert data["optimizers"] == ["momentum(momentum=0.5)", "nesterov(momentum=0.5)"]
    assert [f["dc_gain"] for f in data["filters"].values()] == pytest.approx([2.0, 2.0])
    data = run_json("compare", "momentum", "--momentum", "0.5", "momentum", "--momentum", "0.9")
    assert [f["dc_gain"] for f in data["filters"].values()] == pytest.approx([2.0, 10.0])
    data = run_json("compare", "--set", "momentum=0.5", "momentum", "--momentum", "0.8")  # own option wins
    assert data["filters"]["momentum(momentum=0.8)"]["dc_gain"] == pytest.approx(5.0)
    data = run_json("compare", "adam", "adam")
    assert data["optimizers"] == ["adam", "adam #2"]


def test_compare_options_anywhere_and_stage() -> None:
    data = _strict(run("compare", "--points", "3", "adam", "rmsprop", "--stage", "second_moment", "--json").stdout)
    assert data["stage"] == "second_moment" and data["freqs"] == [0.0, 0.25, 0.5]
    assert data["filters"]["adam"]["dc_gain"] == pytest.approx(1.0)
    assert data["filters"]["rmsprop"]["b"] == pytest.approx([0.01])  # 1 - alpha, alpha = 0.99


# ----------------------------------------------------------------------------- every catalogue entry


def _cli_value(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(repr(float(v)) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


@pytest.mark.parametrize("name", optfilters.names())
def test_every_entry_matches_the_library(name: str) -> None:
    entry = optfilters.CATALOGUE[name]
    for settings in entry.examples:
        data = run_json("describe", name, *cli_args(settings))
        filters = optfilters.get(name, **settings).filters()
        assert set(data["filters"]) == set(filters)
        for stage, f in filters.items():
            assert data["filters"][stage]["b"] == pytest.approx(f.b.tolist(), rel=1e-12, abs=1e-15)
            assert data["filters"][stage]["a"] == pytest.approx(f.a.tolist(), rel=1e-12, abs=1e-15)
        for key, value in settings.items():
            expected = list(value) if isinstance(value, tuple) else value
            assert data["hyperparameters"][key] == pytest.approx(expected)


@pytest.mark.parametrize("name", optfilters.names())
def test_every_entry_help_lists_its_hyperparameters(name: str) -> None:
    entry = optfilters.CATALOGUE[name]
    text = " ".join(run("response", name, "--help").stdout.split())  # undo line wrapping
    for hp in entry.hyperparameters:
        assert "--" + hp.name.replace("_", "-") in text
    if "beta1" in entry.defaults():
        assert f"[default: {entry.defaults()['beta1']:g}]" in text


# ----------------------------------------------------------------------------- the 2025-26 entries (issue 14a)

NEW_ENTRIES = ("muon", "adafactor", "asgd", "rprop", "ema", "swa", "lookahead")


@pytest.mark.parametrize("name", NEW_ENTRIES)
def test_new_entries_in_list_describe_response_and_table(name: str) -> None:
    assert any(item["name"] == name for item in run_json("list")["optimizers"])
    model = optfilters.get(name)
    described = run("describe", name).stdout
    response = run("response", name, "--points", "3").stdout
    for text in (described, response):
        assert text.splitlines()[0].startswith(f"{name}: ")
        if not model.is_linear:
            assert "nonlinear: " in text
        if model.period is not None:
            assert f"periodic (period {model.period})" in text and "monodromy" in text
        if model.parameter_output is not None:
            assert "output: averaged parameters (state 'averaged')" in text
    data = run_json("response", name, "--points", "3")
    assert set(data["filters"]) == set(model.filters())
    row = run_json("table", name)["rows"][0]
    assert row[0] == name and len(row) == len(run_json("table", name)["columns"])


def test_new_kinds_of_hyperparameters_on_the_command_line() -> None:
    data = run_json("describe", "muon", "--adjust-lr-fn", "match_rms_adamw", "--ns-coefficients", "3,-4,2")
    assert data["hyperparameters"]["adjust_lr_fn"] == "match_rms_adamw"
    assert data["hyperparameters"]["ns_coefficients"] == [3.0, -4.0, 2.0]
    assert run_json("describe", "adafactor", "--eps1", "none")["hyperparameters"]["eps1"] is None
    assert run_json("describe", "adafactor", "--eps1", "1e-30")["hyperparameters"]["eps1"] == 1e-30
    data = run_json("describe", "ema", "--base", "adam", "--decay", "0.9")
    assert data["hyperparameters"]["base"] == "adam"
    assert data["filters"]["parameter_average"]["a"] == pytest.approx([1.0, -0.9])
    assert "normaliser" in data["filters"] or "second_moment" in data["filters"]  # Adam's stages inside
    text = run("stability", "lookahead", "--base", "sgd", "--k", "5").stdout
    assert "monodromy matrix" in text and "lr*h < 2.24573" in text  # 1 + (2/alpha - 1)^(1/k)
    help_text = " ".join(run("response", "muon", "--help").stdout.split())
    assert "one of none, original, match_rms_adamw" in help_text


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (("margins", "lookahead"), "periodically time-varying (period 5): it has no loop transfer function"),
        (("locus", "lookahead"), "no loop transfer function"),
        (("sensitivity", "lookahead"), "no loop transfer function"),
        (("thresholds", "lookahead"), "a loop frozen at one step is not its loop"),
        (("certify", "lookahead", "--condition-number", "10"), "certify needs a time-invariant loop"),
        (("certify", "muon", "--condition-number", "10"), "orthogonalises the 2-D direction"),
        (("sign-loop", "muon"), "orthogonalises the 2-D direction"),
        (("sign-loop", "rprop"), "adapted on sign agreement"),
        (("sign-loop", "ema"), "takes no sign"),
        (("large-signal", "rprop"), "step size changes"),
        (("large-signal", "asgd"), "step size changes"),
        (("large-signal", "adafactor"), "step size changes"),
        (("large-signal", "lookahead"), "periodically time-varying"),
        (("large-signal", "muon"), "needs 2-D parameters"),
    ],
)
def test_new_entries_are_refused_by_analyses_that_do_not_apply(args: tuple[str, ...], pattern: str) -> None:
    result = run(*args, code=2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and pattern in lines[0], result.stderr
    assert "Traceback" not in result.output


def one_line_error(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output and result.stdout == ""
    return lines[0]


# ----------------------------------------------------------------------------- table


def test_table_formats_agree_with_the_library() -> None:
    expected = optfilters.summary_table(["sgd", "nesterov", "adam"])
    text = run("table", "sgd", "nesterov", "adam", "--format", "csv").stdout
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(expected.columns)
    assert rows[1:] == [list(r) for r in expected.rows]  # cells with commas survive the quoting
    latex = run("table", "sgd", "nesterov", "adam", "--format", "latex", "--no-notes").stdout.strip().splitlines()
    # one column per summary-table column (eight since the parameter-side column)
    assert len(expected.columns) == 8
    assert latex[0] == r"\begin{tabular}{" + "l" * 8 + "}" and latex[-1] == r"\end{tabular}"
    body = [line for line in latex if line.endswith(r"\\")]
    assert len(body) == 1 + 3  # header and three rows
    assert body[2].split(" & ")[1] == "ARMA(1,1) (pole 0.9, zero 0.4737)"
    escaped = run("table", "adam:beta1=0.5", "--format", "latex", "--no-notes").stdout
    assert r"(L2 into g)" in escaped and "beta1=0.5" in escaped
    markdown = run("table", "sgd", "--format", "markdown").stdout
    assert markdown.startswith("| optimizer |") and "Corrections" in markdown


def test_table_rows_with_hyperparameters() -> None:
    data = json.loads(
        run("table", "adam", "adam:beta1=0.95", "adam:betas=0.8,0.99", "aggmo:betas=0,0.5", "--json").stdout
    )
    labels = [row[0] for row in data["rows"]]
    assert labels == ["adam", "adam(beta1=0.95)", "adam(betas=0.8,0.99)", "aggmo(betas=0,0.5)"]
    # The cells describe the model with those hyperparameters, as the library classifies it.
    from optfilters.table import classify_stage

    for label, model in (
        ("adam(beta1=0.95)", optfilters.get("adam", beta1=0.95)),
        ("adam(betas=0.8,0.99)", optfilters.get("adam", betas=(0.8, 0.99))),
        ("aggmo(betas=0,0.5)", optfilters.get("aggmo", betas=(0.0, 0.5))),
    ):
        row = data["rows"][labels.index(label)]
        assert row[1] == classify_stage(model.gradient_stage)
    assert "pole 0.95" in data["rows"][1][1] and "pole 0.99" in data["rows"][2][3]
    assert "beta1 must be in [0, 1), got 2" in one_line_error("table", "adam:beta1=2")
    assert "KEY=VALUE" in one_line_error("table", "adam:beta1")
    assert "adam has no hyperparameter 'momentum'" in one_line_error("table", "adam:momentum=0.9")
    assert "did you mean 'adam'" in one_line_error("table", "adma")


# ----------------------------------------------------------------------------- option scope and --betas


def test_compare_option_scope_is_said_and_set_applies_to_all() -> None:
    result = run("compare", "momentum", "nesterov", "--momentum", "0.5", "--json")
    data = json.loads(result.stdout)
    # An option belongs to the NAME before it: nesterov gets 0.5, momentum keeps its default 0.9 ...
    assert data["filters"]["momentum"]["hyperparameters"]["momentum"] == 0.9
    assert data["filters"]["nesterov(momentum=0.5)"]["hyperparameters"]["momentum"] == 0.5
    # ... and the command says so, with the way to set both.
    note = result.stderr.strip().splitlines()
    assert len(note) == 1 and note[0].startswith("note: --momentum 0.5 sets nesterov's momentum only")
    assert "--set momentum=0.5" in note[0] and "momentum keeps momentum=0.9" in note[0]
    both = run("compare", "--set", "momentum=0.5", "momentum", "nesterov", "--json")
    assert both.stderr == ""
    filters = json.loads(both.stdout)["filters"]
    assert [f["poles"] for f in filters.values()] == [[[0.5, 0.0]], [[0.5, 0.0]]]
    # Explicit per-NAME options are not ambiguous: no note.
    each = run("compare", "momentum", "--momentum", "0.5", "nesterov", "--momentum", "0.5", "--json")
    assert each.stderr == ""
    assert "--set KEY=VALUE" in run("compare", "--help").stdout


@pytest.mark.parametrize("name", ["adam", "adamw", "nadam", "radam", "adamax", "lion", "qhadam", "ademamix"])
def test_betas_tuple_like_the_python_api(name: str) -> None:
    count = 3 if name == "ademamix" else 2
    betas = (0.8, 0.95, 0.9995)[:count]
    text = ",".join(f"{b:g}" for b in betas)
    via_tuple = json.loads(run("response", name, "--betas", text, "--json", "--points", "3").stdout)
    flags = [arg for k, b in enumerate(betas, start=1) for arg in (f"--beta{k}", f"{b:g}")]
    via_flags = json.loads(run("response", name, *flags, "--json", "--points", "3").stdout)
    assert via_tuple["filters"] == via_flags["filters"]
    expected = optfilters.get(name, betas=betas)
    assert via_tuple["hyperparameters"] == {
        k: (list(v) if isinstance(v, tuple) else v) for k, v in expected.hyperparameters.items()
    }
    if name == "adam":
        assert "give betas or beta1, not both" in one_line_error(
            "response", "adam", "--betas", "0.8,0.9", "--beta1", "0.5"
        )
        assert "betas must be a tuple (beta1, beta2) of 2 numbers" in one_line_error(
            "response", "adam", "--betas", "0.8"
        )
        assert "beta2 must be a number, got 'x'" in one_line_error("response", "adam", "--betas", "0.8,x")


def test_betas_with_set_and_an_own_option() -> None:
    data = json.loads(run("compare", "--set", "betas=0.8,0.9", "adam", "--beta1", "0.5", "adamw", "--json").stdout)
    hps = {k: v["hyperparameters"] for k, v in data["filters"].items()}
    assert [(h["beta1"], h["beta2"]) for h in hps.values()] == [(0.5, 0.9), (0.8, 0.9)]


# ----------------------------------------------------------------------------- predict: help and plot


def test_predict_help_lists_its_options() -> None:
    text = run("predict", "--help").stdout
    for flag in ("--curvatures", "--noise-var", "--init", "--steps", "--schedule", "--json", "--plot", "--title"):
        assert flag in text, flag
    assert "path/to/file.py:NAME" in text
    for command in ("response", "step", "describe", "stability"):
        assert "--json" in run(command, "--help").stdout, command


def test_predict_plot_draws_the_library_prediction(tmp_path: Path) -> None:
    from optfilters.noisy_quadratic import predict

    target = tmp_path / "loss.png"
    args = ["predict", "momentum", "--momentum", "0.9", "--lr", "0.1", "--curvatures", "1,0.1", "--noise-var", "0.01"]
    data = json.loads(run(*args, "--steps", "50", "--plot", str(target), "--json").stdout)
    assert data["plot"] == str(target) and target.stat().st_size > 10_000
    expected = predict(optfilters.get("momentum", momentum=0.9, lr=0.1), curvatures=[1, 0.1], noise_var=0.01, steps=50)
    np.testing.assert_allclose(data["expected_loss"], expected.expected_loss, rtol=1e-12)
    drawn = expected.plot()
    np.testing.assert_allclose(drawn.artists["loss"][0].get_ydata(), expected.expected_loss, rtol=0)
    assert drawn.artists["steady_state"][0].get_ydata()[0] == pytest.approx(expected.steady_state_loss)
    drawn.close()
    assert "--plot FILE needs a suffix" in one_line_error(*args, "--plot", str(tmp_path / "x.gif"))


def test_slide_options(tmp_path: Path) -> None:
    import matplotlib.image

    wide = tmp_path / "wide.png"
    run("response", "momentum", "--plot", str(wide), "--magnitude-only", "--scale", "linear", "--size", "8x4.5")
    height, width = matplotlib.image.imread(wide).shape[:2]
    assert width / height == pytest.approx(8 / 4.5, rel=0.08)  # bbox "tight" trims a few pixels
    # What was drawn: one panel, |H| (not dB) with the title given.
    import matplotlib

    matplotlib.use("Agg")
    from optfilters.cli import _common

    drawn: list[Any] = []
    real = _common.save_plot

    def spy(draw: Any, path: Path, title: Any = None, size: Any = None) -> Path:
        from optfilters import plot

        drawn.append((draw(plot), title, size))
        return real(draw, path, title=title, size=size)

    try:
        _common.save_plot = spy
        import optfilters.cli.analysis as analysis

        original = analysis.save_plot
        analysis.save_plot = spy
        run(
            "response",
            "momentum",
            "--plot",
            str(tmp_path / "a.png"),
            "--magnitude-only",
            "--scale",
            "linear",
            "--title",
            "Heavy ball",
            "--size",
            "8x4.5",
        )
    finally:
        _common.save_plot = real
        analysis.save_plot = original
    result, title, size = drawn[0]
    assert len(result.axes) == 1 and "phase" not in result.artists
    assert result.artists["magnitude"][0].get_ydata()[0] == pytest.approx(10.0)  # |H(1)| = 1/(1 - 0.9), linear
    assert title == "Heavy ball" and size == (8.0, 4.5)
    assert "--size needs WIDTHxHEIGHT" in one_line_error("response", "sgd", "--plot", "a.png", "--size", "big")
    assert "between 0.5 and 50" in one_line_error("response", "sgd", "--plot", "a.png", "--size", "100x2")


# ----------------------------------------------------------------------------- models from the user's files

MODELS = textwrap.dedent(
    """
    import optfilters
    from optfilters import ArmaFilter, CatalogueEntry, Hyperparameter

    slow = ArmaFilter([0.05], [1.0, -0.95], name="slow")
    half = optfilters.get("momentum", momentum=0.5, lr=0.1)


    def _build(p):
        return optfilters.get("momentum", lr=p["lr"], momentum=p["pole"])


    pole = CatalogueEntry(
        "pole",
        "heavy ball by its pole",
        (Hyperparameter("lr", 0.01, low=0.0), Hyperparameter("pole", 0.8, low=0.0, high=1.0, high_open=True)),
        _build,
    )
    not_a_model = 3
    """
)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("user") / "my_models.py"
    path.write_text(MODELS)
    (path.parent / "broken.py").write_text("def f(:\n")
    return path


def _filters(*args: str) -> dict[str, Any]:
    return json.loads(run(*args, "--json").stdout)["filters"]


def test_user_model_in_every_analysis_command(models: Path) -> None:
    pole = f"{models}:pole"
    for command in ("describe", "response", "poles", "step", "impulse"):
        mine = _filters(command, pole, "--pole", "0.5")
        same = _filters(command, "momentum", "--momentum", "0.5", "--lr", "0.01")
        assert mine.keys() == same.keys()
        for key in mine:
            for field in ("b", "a", "poles", "zeros", "dc_gain", "magnitude", "raw", "impulse"):
                if field in same[key]:
                    assert mine[key][field] == same[key][field], (command, field)
    # A model instance and a bare filter work too.
    assert _filters("response", f"{models}:half")["gradient"]["poles"] == [[0.5, 0.0]]
    slow = _filters("response", f"{models}:slow", "--lr", "0.2")["gradient"]
    assert slow["b"] == pytest.approx([0.05]) and slow["a"] == pytest.approx([1.0, -0.95])
    # compare mixes catalogue entries and user models; each keeps its own options.
    compared = _filters("compare", pole, "--pole", "0.5", "momentum", "--momentum", "0.5")
    assert list(compared) == ["pole(pole=0.5)", "momentum(momentum=0.5)"]
    assert compared["pole(pole=0.5)"]["magnitude"] == compared["momentum(momentum=0.5)"]["magnitude"]
    assert "--pole FLOAT" in run("response", pole, "--help").stdout


def test_user_model_in_prediction_commands_and_table(models: Path) -> None:
    pole = f"{models}:pole"
    mine = json.loads(run("stability", pole, "--pole", "0.5", "--json").stdout)
    same = json.loads(run("stability", "momentum", "--momentum", "0.5", "--json").stdout)
    assert mine["max_stable_lr_curvature"] == same["max_stable_lr_curvature"] == pytest.approx(3.0)
    mine = json.loads(run("predict", pole, "--pole", "0.9", "--lr", "0.1", "--steps", "30", "--json").stdout)
    same = json.loads(run("predict", "momentum", "--lr", "0.1", "--steps", "30", "--json").stdout)
    assert mine["expected_loss"] == same["expected_loss"]
    table = json.loads(run("table", f"{pole}:pole=0.5", f"{models}:slow", "--json").stdout)
    assert [r[0] for r in table["rows"]] == ["pole(pole=0.5)", "slow"]
    assert "pole 0.5" in table["rows"][0][1]


def test_user_model_observed_through_the_bridge(models: Path) -> None:
    pytest.importorskip("torch")
    args = ["--lr", "0.1", "--steps", "20", "--seeds", "16", "--noise-var", "0.1", "--json"]
    mine = json.loads(run("observe", f"{models}:pole", "--pole", "0.5", *args).stdout)
    same = json.loads(run("observe", "momentum", "--momentum", "0.5", *args).stdout)
    assert mine["observed_mean_loss"] == same["observed_mean_loss"]


def test_user_model_errors_are_one_line(models: Path) -> None:
    assert "defines no 'nope'; it defines half, pole, slow" in one_line_error("response", f"{models}:nope")
    assert "no model file" in one_line_error("response", f"{models.parent / 'absent.py'}:x")
    assert "SyntaxError" in one_line_error("response", f"{models.parent / 'broken.py'}:f")
    assert "not_a_model is a int" in one_line_error("response", f"{models}:not_a_model")
    assert "pole must be in [0, 1), got 1.5" in one_line_error("response", f"{models}:pole", "--pole", "1.5")
    assert "pole takes no option --momentum" in one_line_error("response", f"{models}:pole", "--momentum", "0.5")


def test_user_model_keeps_the_analysis_import_budget(models: Path) -> None:
    code = (
        "import sys; from optfilters.cli import main; "
        f"main(['response', {str(models) + ':pole'!r}, '--json'], standalone_mode=False); "
        "print('torch' in sys.modules, 'matplotlib' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "False False"


# ----------------------------------------------------------------------------- identify progress


def test_identify_reports_progress() -> None:
    pytest.importorskip("torch")
    from optfilters.identify import identify

    seen: list[tuple[str, int, int]] = []
    identify("torch.optim.Adam", max_background=1024, progress=lambda *a: seen.append(a))
    probes = [s for s in seen if s[0] == "probes"]
    assert probes and probes[-1][1] == probes[-1][2] and [s[1] for s in probes] == list(range(1, len(probes) + 1))
    background = [s for s in seen if s[0] == "small-signal background"]
    assert background and background[-1][1] <= 1024 and all(s[2] == 1024 for s in background)
    result = run("identify", "torch.optim.SGD", "--momentum", "0.9", "--progress")
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("identify: probes 1/") and lines[-1] == f"identify: probes {len(probes)}/{len(probes)}"
    assert run("identify", "torch.optim.SGD", "--momentum", "0.9").stderr == ""  # not a terminal: quiet


def test_user_model_in_identify(models: Path) -> None:
    pytest.importorskip("torch")
    compared = json.loads(
        run("identify", "torch.optim.SGD", "--momentum", "0.5", "--compare", f"{models}:half", "--json").stdout
    )
    assert compared["comparison"]["match"] is True
    probed = json.loads(run("identify", f"{models}:slow", "--json").stdout)
    assert probed["b"] == pytest.approx([0.05], rel=1e-9) and probed["a"] == pytest.approx([1.0, -0.95], rel=1e-9)
    assert "constructor options do not apply" in one_line_error("identify", f"{models}:slow", "--momentum", "0.9")


@pytest.fixture
def slowball() -> Iterator[CatalogueEntry]:
    with registered_slowball() as entry:
        yield entry


def test_a_registered_entry_gets_its_table_row_cli_listing_docs_line_and_facts(slowball: CatalogueEntry) -> None:
    from optfilters.cli.main import main

    assert optfilters.names()[-1] == "slowball" and optfilters.resolve_name("SB") == "slowball"
    row = next(r for r in optfilters.summary_table().rows if r[0] == "slowball")
    assert row[1] == "AR1, unit input gain (pole 0.8)"  # its own default momentum, read through its stages
    assert (
        row[COLUMNS.index("weight decay")] == "decoupled"
    )  # the catalogue's weight-decay fact, not a list in the table module
    listing = CliRunner().invoke(main, ["list"])
    assert listing.exit_code == 0 and "slowball" in listing.output and "a heavy ball registered" in listing.output
    response = CliRunner().invoke(main, ["response", "slowball", "--momentum", "0.5", "--json"])
    assert response.exit_code == 0, response.output
    assert "``slowball`` (sb): a heavy ball registered by a test." in catalogue_docs()
    assert DEFAULT_TUNED["slowball"] == ("momentum",) and POLE_HYPERPARAMETERS["slowball"] == ("momentum",)
    with pytest.raises(ValueError, match="already taken: slowball, sb"):
        register(slowball)


# ----------------------------------------------------------------------------- references


def mp_poly(roots: np.ndarray) -> list[mpmath.mpc]:
    """prod (z - r) multiplied out in mpmath (descending powers)."""
    coefficients = [mpmath.mpc(1)]
    for r in roots:
        r = mpmath.mpc(complex(r))
        coefficients = [*coefficients, mpmath.mpc(0)]
        for i in range(len(coefficients) - 1, 0, -1):
            coefficients[i] -= r * coefficients[i - 1]
    return coefficients


def mp_group_delay(zeros: np.ndarray, poles: np.ndarray, w: float) -> float:
    """-d/dw arg H(e^{iw}) by numerical differentiation of the multiplied-out polynomials at 50 digits."""
    with mpmath.workdps(50):
        b, a = mp_poly(zeros), mp_poly(poles)

        def arg(x: mpmath.mpf) -> mpmath.mpf:
            z = mpmath.exp(1j * x)
            return mpmath.arg(mpmath.polyval(b, z) / mpmath.polyval(a, z) * z ** (len(a) - len(b)))

        return float(-mpmath.diff(arg, mpmath.mpf(w), h=mpmath.mpf(10) ** -25))


def dense_unwrapped_phase(sos: np.ndarray, f_end: float, points: int = 200_001) -> float:
    """The phase at ``f_end`` (degrees) from a dense sosfreqz grid from DC, unwrapped by numpy."""
    grid = np.linspace(0.0, f_end, points)
    _, h = signal.sosfreqz(sos, worN=grid, fs=1.0)
    return float(np.degrees(np.unwrap(np.angle(h)))[-1])


def mp_max_root_modulus(coefficients: list[float]) -> mpmath.mpf:
    with mpmath.workdps(60):
        exact = [mpmath.mpf(Fraction(c).numerator) / Fraction(c).denominator for c in coefficients]
        return max(abs(r) for r in mpmath.polyroots(exact, maxsteps=500, extraprec=600))


def cli_stdout(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def cli_json(*args: str) -> dict:
    import json

    return json.loads(cli_stdout(*args, "--json"))


def number_after(text: str, label: str) -> float:
    match = re.search(re.escape(label) + r"\s+(-?[0-9.e+-]+)", text)
    assert match, (label, text)
    return float(match.group(1))


# ----------------------------------------------------------------------------- designed low-passes


def test_butterworth_order_8_summary_numbers() -> None:
    """Issue row 1: noise gain 1.00645, |H(0)| = 10, mean delay 163.147 (printed -3.1e-10 and 9.90)."""
    total, energy, moment = impulse_sums(design_sos("butterworth", 8, 0.005))
    data = cli_json("response", "butterworth", "--order", "8", "--cutoff", "0.005", "--dc-gain", "10")
    f = data["filters"]["gradient"]
    assert total == pytest.approx(10.0, rel=1e-9)
    assert f["dc_gain"] == pytest.approx(total, rel=1e-9)
    assert f["magnitude"][0] == pytest.approx(10.0, rel=1e-12)  # |H(0)| in the table, not 9.90
    assert f["noise_gain"] == pytest.approx(energy, rel=1e-9)
    assert f["mean_delay"] == pytest.approx(moment / total, rel=1e-9)
    text = cli_stdout(
        "response", "butterworth", "--order", "8", "--cutoff", "0.005", "--dc-gain", "10", "--points", "3"
    )
    assert number_after(text, "noise gain") == pytest.approx(1.00645, abs=5e-6)
    assert number_after(text, "mean delay") == pytest.approx(163.147, abs=5e-4)
    assert re.search(r"\n\s+0\s+10\s+20\s+0\n", text)


# ----------------------------------------------------------------------------- cancellations


def test_momentum_with_a_cancelled_pair_at_one() -> None:
    """Issue row 3: (1 - z^-1) / ((1 - z^-1)(1 - 0.9 z^-1)) is momentum 0.9: DC 10, stable, 5.26316, 9, a note."""
    mu = 0.9
    text = cli_stdout("describe", "custom", "--b", "1,-1", "--a", "1,-1.9,0.9")
    assert number_after(text, "DC gain:") == pytest.approx(1 / (1 - mu), rel=1e-9)
    assert "stability: stable" in text and "cancelled" in text and "note:" in text
    data = cli_json("response", "custom", "--b", "1,-1", "--a", "1,-1.9,0.9")
    f = data["filters"]["gradient"]
    assert f["stability"] == "stable" and f["stable"] is True
    assert f["dc_gain"] == pytest.approx(1 / (1 - mu), rel=1e-9)
    assert f["noise_gain"] == pytest.approx(1 / (1 - mu**2), rel=1e-9)  # 5.26316
    assert f["mean_delay"] == pytest.approx(mu / (1 - mu), rel=1e-9)  # 9
    assert len(f["cancelled"]) == 1 and "z = 1" in f["cancelled"][0]
    result = CliRunner().invoke(main, ["describe", "custom", "--b", "1,-1", "--a", "1,-1.9,0.9"])
    assert "WARNING" not in result.stderr  # no longer flagged marginal


# ----------------------------------------------------------------------------- repeated poles


A4 = [1, -3.9996, 5.998800060000001, -3.9988001199960004, 0.9996000599960002]  # (1 - 0.9999 z^-1)^4, rounded


def test_four_emas_entered_expanded_are_stable() -> None:
    """Issue row 5: all |p| <= 0.9999963 (mpmath roots of these very coefficients): stable (was UNSTABLE)."""
    reference = mp_max_root_modulus(A4)
    assert reference < 1 and abs(float(reference) - 0.9999963) < 1e-7
    f = ArmaFilter([1e-16], A4)
    assert f.stability == "stable"
    assert float(np.max(np.abs(f.poles))) == pytest.approx(float(reference), abs=1e-15)
    assert f.factorisation.poles.method == "high precision"
    text = cli_stdout("describe", "custom", "--a", ",".join(repr(c) for c in A4), "--b", "1e-16")
    assert "stability: stable" in text


def test_four_emas_closed_loop_interval() -> None:
    """Issue row 5: closed loop stable for 0 < lr*h < 4.678e-5 (was "no stable interval").

    Reference: bisection on the largest root modulus of (1 - z^-1) A + x z^-1 B from mpmath's
    polyroots of the exact coefficients at 40 digits.
    """
    with mpmath.workdps(40):
        a = [mpmath.mpf(Fraction(c).numerator) / Fraction(c).denominator for c in A4]
        b = mpmath.mpf(Fraction(1e-16).numerator) / Fraction(1e-16).denominator

        def radius(x: mpmath.mpf) -> mpmath.mpf:
            p = [a[0]] + [a[i] - a[i - 1] for i in range(1, 5)] + [-a[4]]
            p[1] += x * b
            return max(abs(r) for r in mpmath.polyroots(p, maxsteps=200, extraprec=200))

        lo, hi = mpmath.mpf("4.5e-5"), mpmath.mpf("4.9e-5")
        assert radius(mpmath.mpf("1e-7")) < 1 and radius(lo) < 1 < radius(hi)
        for _ in range(24):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if radius(mid) < 1 else (lo, mid)
        edge = float(lo)
    from optfilters.closed_loop import stability_interval

    s = stability_interval(ArmaFilter([1e-16], A4, name="custom"))
    assert s.interval is not None and s.interval[0] == 0.0
    assert s.max_stable_lr_curvature == pytest.approx(edge, rel=1e-7)
    assert edge == pytest.approx(4.678e-5, rel=1e-3)
    text = cli_stdout("stability", "custom", "--a", ",".join(repr(c) for c in A4), "--b", "1e-16")
    assert "stable for 0 < lr*h < 4.67775e-05" in text


# ----------------------------------------------------------------------------- singular frequencies


def test_group_delay_at_a_zero_on_the_unit_circle() -> None:
    """Issue row 7: the limits 0.1120 (butterworth's zeros at -1) and 0.5 (b = 0.5, 0.5) at Nyquist."""
    z, p, _ = signal.butter(2, 0.1, output="zpk")
    reference = mp_group_delay(z, p, math.pi - 1e-15)
    f = optfilters.get("butterworth").filters()["gradient"]
    r = optfilters.frequency_response(f, freqs=[0.5])
    assert r.group_delay[0] == pytest.approx(reference, rel=1e-9)
    assert r.group_delay[0] == pytest.approx(0.1120, abs=5e-5)
    # elsewhere the delay agrees with scipy's own group_delay
    freqs = np.array([0.0, 0.1, 0.3])
    _, gd = signal.group_delay((f.b, f.a), w=freqs, fs=1.0)
    np.testing.assert_allclose(optfilters.frequency_response(f, freqs=freqs).group_delay, gd, rtol=1e-8)
    data = cli_json("response", "custom", "--b", "0.5,0.5", "--a", "1", "--points", "3")
    assert data["filters"]["gradient"]["group_delay"] == pytest.approx([0.5, 0.5, 0.5], rel=1e-15)


@pytest.mark.parametrize(
    ("args", "freq", "expected"),
    [
        (("chebyshev1", "--order", "6", "--cutoff", "0.05", "--points", "11"), 0.05, -388.8),
        (("butterworth", "--order", "4", "--cutoff", "0.001", "--points", "6", "--log"), 0.001, -180.0),
    ],
)
def test_phase_is_continuous_on_a_coarse_grid(args: tuple[str, ...], freq: float, expected: float) -> None:
    """Issue row 8: -388.8 deg at 0.05 and -180 deg at 0.001 (each was 360 deg off)."""
    kind, order, cutoff = args[0], int(args[2]), float(args[4])
    reference = dense_unwrapped_phase(design_sos(kind, order, cutoff), freq)
    assert reference == pytest.approx(expected, abs=0.05)
    data = cli_json("response", *args)
    freqs = np.asarray(data["freqs"])
    phase = np.degrees(np.asarray(data["filters"]["gradient"]["phase"]))
    (i,) = np.flatnonzero(np.isclose(freqs, freq, rtol=1e-12))
    assert phase[i] == pytest.approx(reference, abs=1e-6)
    if freqs[0] == 0.0:
        assert phase[0] == 0.0  # anchored at DC
    assert f" {expected:.4g}\n" in cli_stdout("response", *args)


# ----------------------------------------------------------------------------- bias correction


def test_bias_corrected_step_of_stages_that_start_from_the_first_gradient() -> None:
    """Issue row 9: Grokfast 3, 3, 3 and momentum with dampening 1, 1.4: never above the DC gain (3; 5)."""
    grok = cli_json("step", "grokfast", "--steps", "3")["filters"]["gradient"]
    # y_t = g_t + lamb * ema_t with ema_1 = g_1: 1 + 2 * 1 at every step of a unit step
    assert grok["step"] == [3.0, 3.0, 3.0] and grok["bias_corrected"] == [3.0, 3.0, 3.0]
    assert grok["dc_gain"] == pytest.approx(3.0)
    mom = cli_json("step", "momentum", "--momentum", "0.9", "--dampening", "0.5", "--steps", "2")["filters"]
    # torch: buf_1 = g_1 = 1; buf_2 = 0.9 * 1 + 0.5 * 1 = 1.4 -- nothing to correct
    assert mom["gradient"]["bias_corrected"] == pytest.approx([1.0, 1.4], rel=1e-15)
    assert max(mom["gradient"]["bias_corrected"]) <= mom["gradient"]["dc_gain"] == pytest.approx(5.0)
    # a term from rest is still corrected (Adam's bias correction, momentum without dampening)
    plain = optfilters.step_response(optfilters.get("momentum", momentum=0.9).gradient, 3)
    np.testing.assert_allclose(plain.bias_corrected, [10.0, 10.0, 10.0], rtol=1e-14)
    text = cli_stdout("step", "grokfast", "--steps", "3")
    assert "101" not in text and "terms that start from the first gradient are left as they are" in text


# ----------------------------------------------------------------------------- plots and text


def test_bode_of_zeros_on_the_unit_circle_has_a_floor_and_marks_the_zero(tmp_path) -> None:
    """Issue row 10: a readable dB axis (was -701 dB) with the zero at Nyquist marked; phase within -720..0."""
    import matplotlib

    matplotlib.use("Agg")
    from optfilters import plot

    f = optfilters.get("butterworth", order=8, cutoff=0.005).filters()["gradient"]
    r = plot.bode_plot(f, n=257)
    magnitude = r.artists["magnitude"][0].get_ydata()
    floor = r.data["db_floor"]
    assert floor == pytest.approx(20.0 - 120.0)  # 120 dB below the 20 dB peak
    assert np.nanmin(magnitude) >= floor and r.axes[0].get_ylim()[0] >= floor - 10.0
    (mark,) = r.artists["unit_circle_zeros"]
    assert mark.get_xdata().tolist() == [0.5] and mark.get_ydata().tolist() == [floor]
    phase = r.artists["phase"][0].get_ydata()
    assert np.all(np.isfinite(phase)) and phase.max() <= 1e-9 and phase.min() >= -720.0 - 1e-9
    sos = design_sos("butterworth", 8, 0.005)
    for i in (1, 5, 100, 255):  # the continuous phase, as a dense unwrapped sosfreqz gives it
        assert phase[i] == pytest.approx(dense_unwrapped_phase(sos, r.artists["phase"][0].get_xdata()[i]), abs=1e-6)
    r.close()
    path = tmp_path / "bode.png"
    assert f"figure written to {path}" in cli_stdout(
        "response", "butterworth", "--order", "8", "--cutoff", "0.005", "--plot", str(path)
    )
    assert path.stat().st_size > 0


def test_stability_text_has_no_meaningless_shortcut() -> None:
    """Issue row 11: 2/H(-1) is not a number when H(-1) = 0 (printed -1.3e35)."""
    for args in (("butterworth",), ("butterworth", "--order", "8", "--cutoff", "0.005"), ("bessel",)):
        text = cli_stdout("stability", *args)
        assert "2/H(-1): none (H(-1) = 0" in text
        numbers = [float(x) for x in re.findall(r"-?\d+\.?\d*(?:e[+-]?\d+)?", text)]
        assert all(abs(x) < 1e6 for x in numbers), text
    assert "2/H(-1) = 3.8 " in cli_stdout("stability", "momentum", "--momentum", "0.9")


PACKAGE_ENTRIES = [name for name, entry in CATALOGUE.items() if entry.reference]


@pytest.mark.parametrize("name", [n for n in PACKAGE_ENTRIES if not optfilters.get(n).is_linear])
def test_nonlinear_stages_are_labelled_in_every_analysis(name: str) -> None:
    model = optfilters.get(name)
    text = model.describe()
    for stage in model.nonlinear_stages:
        assert stage.linearisation_note("frozen", 1.0)
        assert stage.linearisation_note("tracking", 1.0) in predict(model, steps=3, noise_var=0.1).label
    assert closed_loop(model).label.startswith("linearised")
    runner = CliRunner()
    described = runner.invoke(main, ["describe", name])
    assert described.exit_code == 0 and "nonlinear:" in described.output
    assert "nonlinear" in text or described.output.count("nonlinear") >= 1
    response = runner.invoke(main, ["response", name, "--points", "3", "--json"])
    assert response.exit_code == 0, response.output
    data = json.loads(response.output)
    assert set(data["filters"]) == set(model.filters())
    assert data["nonlinear"]
    assert table_row(model)[2] not in ("", "none")


@pytest.mark.parametrize("name", PACKAGE_ENTRIES)
def test_cli_list_describe_response_table_and_stability(name: str) -> None:
    runner = CliRunner()
    for args in (["list"], ["describe", name], ["response", name, "--points", "3"], ["table", name]):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, (args, result.output)
        assert name in result.output
    stability = runner.invoke(main, ["stability", name, "--json"])
    assert stability.exit_code == 0, stability.output
    assert json.loads(stability.output)["max_stable_lr_curvature"] > 0


@pytest.mark.parametrize("b", ["1e308", "5e-324", "1"])
def test_response_cutoff_and_delay_do_not_depend_on_the_scale_of_b(b: str) -> None:
    """1 / (1 - 0.5 z^-1) scaled by b: -3 dB where cos w = 0.75, mean delay 1, no warning text."""
    result = run("response", "custom", "--b", b, "--a", "1,-0.5")
    assert result.stderr == ""  # no numpy RuntimeWarning
    assert f"-3 dB cutoff {math.acos(0.75) / (2 * math.pi):.6g} cycles/step" in result.output
    assert "mean delay 1 steps" in result.output


def test_sign_loop_from_a_subnormal_start_reaches_zero_within_the_first_step() -> None:
    result = run("sign-loop", "lion", "--lr", "0.01", "--init", "5e-324")
    assert "theta reaches 0 within the first step" in result.output
    assert "the run came to rest" in result.output  # the pre-sign EMA of a 5e-324 gradient underflows to 0


@pytest.mark.parametrize("b", ["1e308", "5e-324", "1"])
def test_compare_nyquist_over_dc_does_not_depend_on_the_scale_of_b(b: str) -> None:
    """|H(-1)/H(1)| of b / (1 - 0.5 z^-1) is (2/3) / 2 = 1/3 (the rounded gains gave null and 0.5)."""
    data = run_json("compare", "sgd", "custom", "--b", b, "--a", "1,-0.5")
    ratios = [item["nyquist_over_dc"] for item in data["filters"].values()]
    assert ratios == [1.0, pytest.approx(1.0 / 3.0, rel=1e-15)]
