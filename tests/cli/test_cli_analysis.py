"""The analysis commands' text and JSON output, checked against closed forms and independent references."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result
from optfilters.cli import main

import optfilters


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


def _cli_args(entry: optfilters.CatalogueEntry, settings: dict[str, Any]) -> list[str]:
    args = []
    for key, value in settings.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else f"--no-{flag[2:]}")
        else:
            args += [flag, _cli_value(value)]
    return args


@pytest.mark.parametrize("name", optfilters.names())
def test_every_entry_matches_the_library(name: str) -> None:
    entry = optfilters.CATALOGUE[name]
    for settings in entry.examples:
        data = run_json("describe", name, *_cli_args(entry, settings))
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
