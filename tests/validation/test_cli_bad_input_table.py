"""Bad input on every command: exit 2, one line on stderr, no traceback, no warning text, stdout empty or strict JSON.

The table is generated from the commands themselves (every command that :data:`optfilters.cli.main.COMMAND_MODULES`
registers), so a new command or option is covered without editing it: unknown options, a missing argument,
out-of-range and non-integer values of every bounded option, and for the optimizer commands the library's
hyperparameter checks; hand-written rows add the representatives of issue 13.
"""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys
from typing import Any

import click
import pytest
from click.testing import CliRunner
from optfilters.cli import main
from optfilters.cli._common import OptimizerGroup
from optfilters.cli.main import COMMAND_MODULES


def _registered() -> dict[str, click.Command]:
    """Command name -> command, for every module of COMMAND_MODULES (each registers into a fresh group)."""
    out: dict[str, click.Command] = {}
    for module_name in COMMAND_MODULES:
        group = click.Group("probe")
        importlib.import_module(f"optfilters.cli.{module_name}").register(group)
        assert group.commands, module_name
        out.update(group.commands)
    return out


COMMANDS = _registered()
SAMPLE_OPTIMIZER = "momentum"
#: Required options of a command, given valid values in rows about other inputs.
REQUIRED = {"certify": ["--condition-number", "10"]}


def _options(command: click.Command) -> list[click.Option]:
    if isinstance(command, OptimizerGroup):
        entry_command = command.get_command(click.Context(command), SAMPLE_OPTIMIZER)
        assert entry_command is not None
        return [p for p in entry_command.params if isinstance(p, click.Option)]
    return [p for p in command.params if isinstance(p, click.Option)]


def _prefix(name: str) -> list[str]:
    command = COMMANDS[name]
    return [name, SAMPLE_OPTIMIZER] if isinstance(command, OptimizerGroup) else [name]


def _bounded_rows(name: str) -> list[tuple[list[str], str]]:
    """Values outside each numeric option's documented range, and non-integers for integer options."""
    rows = []
    for opt in _options(COMMANDS[name]):
        flag = next((o for o in opt.opts if o.startswith("--")), None)
        if flag is None or opt.is_flag:
            continue
        kind = opt.type
        if isinstance(kind, (click.IntRange, click.FloatRange)):
            if kind.max is not None:
                rows.append(([*_prefix(name), flag, repr(kind.max * 10 + 1)], flag))
            if kind.min is not None:
                rows.append(([*_prefix(name), flag, repr(kind.min - 1)], flag))
        if isinstance(kind, (click.IntRange,)) or kind is click.INT:
            rows.append(([*_prefix(name), flag, "2.5"], flag))
        if isinstance(kind, (click.IntRange, click.FloatRange)) or kind in (click.INT, click.FLOAT):
            rows.append(([*_prefix(name), flag, "abc"], flag))
        if isinstance(kind, click.Choice):
            rows.append(([*_prefix(name), flag, "no-such-choice"], flag))
    return rows


def _generic_rows() -> list[tuple[list[str], str]]:
    rows: list[tuple[list[str], str]] = []
    for name, command in COMMANDS.items():
        rows.append(([name, "--no-such-option"], "option"))
        rows.append(([name, "--json", "--no-such-option"], "option"))
        rows += _bounded_rows(name)
        if isinstance(command, OptimizerGroup):
            extra = REQUIRED.get(name, [])
            rows += [
                (args, pattern) if len(args) < 2 else ([*args, *extra], pattern)
                for args, pattern in [
                    ([name], "missing"),
                    ([name, "adma"], "unknown optimizer 'adma'"),
                    ([name, "adam", "--beta1", "1.5"], r"beta1 must be in \[0, 1\)"),
                    ([name, "adam", "--beta1", "nan"], "beta1 must be a finite number"),
                    ([name, "adam", "--beta1", "abc"], "beta1 must be a number"),
                    ([name, "adam", "--betas", "0.5,"], "betas"),
                    ([name, "adam", "--betas", "0.5,,0.9"], "betas"),
                    ([name, "adam", "--eps", "-1", "--json"], "eps must be >= 0"),
                    ([name, "momentum", "--momentum", "inf"], "momentum must be a finite number"),
                    ([name, "momentum", "--nesterov"], "momentum takes no option --nesterov"),
                    ([name, "sgd", "--lr", "-1"], "lr"),
                    ([name, "custom", "--b", "1,,2"], "b has an empty item"),
                    ([name, "custom", "--b", ",".join(["0.1"] * 300)], "at most 256 values"),
                    ([name, "custom", "--b", "1", "--a", "0,1"], r"a\[0\]"),
                    ([name, "butterworth", "--order", "2.5"], "order must be an integer"),
                    ([name, SAMPLE_OPTIMIZER, "--momentum", "1e400"], "momentum"),
                ]
            ]
        else:
            required = [p for p in command.params if isinstance(p, click.Argument) and p.required]
            if required:
                rows.append(([name], "Missing argument|missing"))
    return rows


SPECIFIC: list[tuple[list[str], str]] = [
    (["identify", "torch.optim.SGD", "--steps", "1000000000000"], r"steps must be in \[48, 1000000\]"),
    (["identify", "torch.optim.SGD", "--seed", "1e23"], "--seed must be an integer"),
    (["identify", "torch.optim.SGD", "--seed", "100000000000000000000000"], "seed must be in"),
    (["identify", "torch.optim.SGD", "--max-order", "1000"], "max_order"),
    (["identify", "torch.optim.SGD", "--max-background", "2.5"], "--max-background must be an integer"),
    (["identify", "--json"], "Missing argument|dotted path"),
    (["figures", "--out", "/proc/optfilters-figures", "ee541_unit7b"], "cannot write to --out"),
    (["figures", "--out", "/proc/optfilters-figures", "--all", "--json"], "cannot write to --out"),
    (["figures"], "name at least one source"),
    (["figures", "nonexistent"], "unknown figure source"),
    (["stability", "momentum", "--mu", "0.1"], "--mu needs --condition-number"),
    (["stability", "momentum", "--tune", "lr"], "--tune needs --condition-number"),
    (["stability", "momentum", "--condition-number", "1e16"], "condition_number must be <= 1e\\+12"),
    (["certify", "momentum", "--condition-number", "1e16"], "condition_number must be <= 1e\\+12"),
    (["predict", "momentum", "--schedule", "step:2.5"], "STEP_SIZE must be an integer"),
    (["predict", "momentum", "--schedule", "warmup:0.5,cosine:10"], "STEPS must be an integer"),
    (["predict", "momentum", "--schedule", "cosine:1e400"], "schedule"),
    (["predict", "adam", "--second-moment", "0", "--eps", "0"], "frozen normaliser's gain must be finite"),
    (["predict", "adam", "--second-moment", "0", "--eps", "0", "--json"], "frozen normaliser's gain"),
    (["predict", "momentum", "--seed", "1e23"], "seed"),
    (["response", "momentum", "--plot", "figure.gif"], "suffix among"),
    (["response", "momentum", "--size", "0x0", "--plot", "f.png"], "--size"),
    (["compare"], "missing"),
    (["compare", "--json"], "name at least one optimizer"),
    (["compare", "--set", "momentum=abc", "momentum"], "momentum must be a number"),
    (["observe", "momentum", "--seed", "100000000000000000000000"], "--seed"),
    (["predict", "momentum", "--curvatures", "1,,2"], "--curvatures has an empty item"),
    (["predict", "momentum", "--init", "1,"], "--init has an empty item"),
    (["locus", "momentum", "--lr", "1e308"], "overflow the floating-point range"),
    (["identify", "/nonexistent/file.py:Opt", "--json"], "."),
    ([], "missing a COMMAND"),
    (["no-such-command"], "No such command"),
]

#: The entries added after the table was first written (issue 13 follow-up), each with out-of-range, non-finite,
#: non-integer and too-large values of its own hyperparameters, on a command chosen round-robin.
NEWER_ENTRIES: list[tuple[str, list[str], str]] = [
    ("muon", ["--ns-steps", "100"], r"ns_steps must be in \[0, 99\]"),
    ("muon", ["--ns-steps", "2.5"], "ns_steps must be an integer"),
    ("muon", ["--momentum", "1"], "momentum must be in"),
    ("muon", ["--ns-coefficients", "1,nan,2"], r"ns_coefficients\[1\] must be a finite number"),
    ("adafactor", ["--beta2-decay", "0.5"], "beta2_decay must be"),
    ("adafactor", ["--d", "0.5"], "d must be >= 1"),
    ("adafactor", ["--eps2", "-1"], "eps2 must be >= 0"),
    ("asgd", ["--lambd", "-1"], "lambd must be >= 0"),
    ("asgd", ["--t0", "nan"], "t0 must be a finite number"),
    ("asgd", ["--alpha", "inf"], "alpha must be a finite number"),
    ("rprop", ["--etas", "0.5"], "etas"),
    ("rprop", ["--step-sizes", "1,nan"], r"step_sizes\[1\]"),
    ("ema", ["--decay", "1.5"], r"decay must be in \[0, 1\)"),
    ("ema", ["--start", "0"], "start must be in"),
    ("ema", ["--start", "1e12"], r"start must be in \[1, 10000000\]"),
    ("ema", ["--base", "ema"], "other than a wrapper"),
    ("swa", ["--every", "1000000000"], r"every must be in \[1, 10000000\]"),
    ("swa", ["--every", "2.5"], "every must be an integer"),
    ("lookahead", ["--k", "1000000000"], r"k must be in \[1, 1000\]"),
    ("lookahead", ["--k", "100000"], r"k must be in \[1, 1000\]"),
    ("lookahead", ["--k", "0"], r"k must be in \[1, 1000\]"),
    ("lookahead", ["--alpha", "1.5"], r"alpha must be in \[0, 1\]"),
    ("lookahead", ["--base", "lookahead"], "other than a wrapper"),
    ("sgd-schedule-free", ["--warmup-steps", "1e12"], r"warmup_steps must be in \[0, 10000000\]"),
    ("sgd-schedule-free", ["--momentum", "1"], "momentum must be in"),
    ("adamw-schedule-free", ["--warmup-steps", "-1"], "warmup_steps must be in"),
    ("adamw-schedule-free", ["--beta2", "nan"], "beta2 must be a finite number"),
    ("adan", ["--beta3", "1.5"], "beta3 must be in"),
    ("adabelief", ["--eps", "-1"], "eps must be >= 0"),
    ("adopt", ["--beta2", "abc"], "beta2 must be a number"),
    ("laprop", ["--beta1", "inf"], "beta1 must be a finite number"),
    ("yogi", ["--initial-accumulator", "-1"], "initial_accumulator must be >= 0"),
    ("signum", ["--momentum", "1.5"], "momentum must be in"),
    ("signsgd", ["--lr", "-1"], "lr must be >= 0"),
    ("lion-cautious", ["--beta2", "2"], "beta2 must be in"),
    ("adam-cautious", ["--beta1", "-0.1"], "beta1 must be in"),
    ("ademamix", ["--beta3", "1"], "beta3 must be in"),
    ("ademamix", ["--alpha", "-1"], "alpha must be >= 0"),
    ("ademamix-scheduled", ["--t-alpha-beta3", "-1"], "t_alpha_beta3 must be >= 0"),
    ("chebyshev1", ["--ripple", "3083"], r"ripple must be in \[1e-09, 100\]"),
    ("chebyshev1", ["--ripple", "1e-300"], r"ripple must be in \[1e-09, 100\]"),
    ("butterworth", ["--cutoff", "1e-300"], r"cutoff must be in \[1e-06, 0.5\)"),
    ("butterworth", ["--order", "17"], r"order must be in \[1, 16\]"),
    ("bessel", ["--dc-gain", "1e308"], r"dc_gain must be in \[1e-06, 1000000\]"),
]
_ROUND_ROBIN = ["response", "stability", "step", "impulse", "predict", "describe", "poles", "margins", "locus"]
NEWER_ROWS = [
    ([_ROUND_ROBIN[i % len(_ROUND_ROBIN)], name, *options], pattern)
    for i, (name, options, pattern) in enumerate(NEWER_ENTRIES)
]

ROWS = _generic_rows() + SPECIFIC + NEWER_ROWS


def test_table_is_large_and_covers_every_command() -> None:
    assert len(ROWS) >= 200, len(ROWS)
    covered = {row[0][0] for row in ROWS if row[0]}
    assert covered >= set(COMMANDS), set(COMMANDS) - covered
    assert set(COMMANDS) <= set(main.commands)


def check_one_line_error(result: Any, args: list[str], pattern: str | None = None) -> None:
    stderr, stdout = result.stderr, result.stdout
    assert result.exit_code == 2, (args, result.exit_code, stderr[-500:], result.exception)
    assert "Traceback" not in stderr and "Traceback" not in stdout, stderr
    assert "Warning" not in stderr, stderr  # no Python warning text (RuntimeWarning, UserWarning, ...)
    lines = stderr.splitlines()
    assert len(lines) == 1, (args, stderr)
    assert lines[0].startswith("Error: "), lines[0]
    if pattern is not None:
        import re

        assert re.search(pattern, lines[0]), (args, lines[0])
    if stdout.strip():
        json.loads(stdout, parse_constant=lambda token: pytest.fail(f"non-strict JSON token {token}"))


@pytest.mark.parametrize(("args", "pattern"), ROWS, ids=[" ".join(r[0])[:80] or "(none)" for r in ROWS])
def test_bad_input_row(args: list[str], pattern: str) -> None:
    result = CliRunner().invoke(main, args)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    check_one_line_error(result, args, pattern)


def _subprocess(args: list[str]) -> subprocess.CompletedProcess[str]:
    code = "import sys; from optfilters.cli import main; main(sys.argv[1:], prog_name='optfilters')"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "args",
    [
        ["step", "momentum", "--momentum", "1e400"],
        ["predict", "adam", "--second-moment", "0", "--eps", "0"],
        ["response"],
        ["identify", "torch.optim.SGD", "--steps", "1000000000000"],
    ],
)
def test_bad_input_real_process(args: list[str]) -> None:
    """The installed entry point, with real stderr: one line, exit 2, no warning text."""
    proc = _subprocess(args)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("args", "label"),
    [
        (["step", "momentum", "--momentum", "1.5", "--steps", "2000"], "inf"),
        (["predict", "momentum", "--lr", "10", "--steps", "1000"], "UNSTABLE"),
        (["predict", "momentum", "--lr", "0.1", "--schedule", "exponential:2", "--steps", "2000"], "inf"),
        (["response", "momentum", "--momentum", "1", "--points", "9"], "undefined"),
    ],
)
def test_overflow_saturates_and_is_labelled(args: list[str], label: str) -> None:
    """Unstable settings run to the end: overflow is inf and labelled, never a traceback, never a printed nan."""
    proc = _subprocess(args)
    assert proc.returncode == 0, proc.stderr
    assert label in proc.stdout
    assert "nan" not in proc.stdout.lower().split() and "RuntimeWarning" not in proc.stderr
    assert all(line.startswith("WARNING: ") for line in proc.stderr.splitlines()), proc.stderr
    proc = _subprocess([*args, "--json"])
    assert proc.returncode == 0
    json.loads(proc.stdout, parse_constant=lambda token: pytest.fail(f"non-strict JSON token {token}"))


def test_response_phase_defined_away_from_a_pole_on_the_circle() -> None:
    data = json.loads(CliRunner().invoke(main, ["response", "momentum", "--momentum", "1", "--json"]).stdout)
    phase = data["filters"]["gradient"]["phase"]
    # at the pole the phase is its one-sided limit (the factored phase, issue 11): -90 degrees
    assert phase[0] == pytest.approx(-math.pi / 2) and all(p is not None for p in phase[1:])


def test_every_integer_option_has_a_documented_upper_bound() -> None:
    """Every integer option (sizes, counts, steps) of every command is bounded (issue 13: a huge size is refused
    before anything is allocated), and so is every integer hyperparameter of every catalogue entry."""
    import optfilters

    unbounded = []
    for name in COMMANDS:
        for opt in _options(COMMANDS[name]):
            if isinstance(opt.type, click.IntRange) and opt.type.max is None:
                unbounded.append(f"{name} {opt.opts[0]}")
            elif opt.type is click.INT:
                unbounded.append(f"{name} {opt.opts[0]}")
    assert unbounded == []
    for entry_name in optfilters.names():
        for hp in optfilters.CATALOGUE[entry_name].hyperparameters:
            if hp.kind == "int":
                assert hp.high is not None and hp.high <= 10_000_000, (entry_name, hp.name)
