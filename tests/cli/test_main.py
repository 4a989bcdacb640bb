"""The shared CLI factory (cli/_common.py): generated per-optimizer subcommands, option merging, JSON.

The installed ``optfilters`` console script, the import budget of the analysis commands, and ``--plot``.

Bad input on the command line: one line on stderr, exit code 2, no traceback, nothing on stdout.

Bad input on every command: exit 2, one line on stderr, no traceback, no warning text, stdout empty or strict JSON.

The table is generated from the commands themselves (every command that :data:`optfilters.cli.main.COMMAND_MODULES`
registers), so a new command or option is covered without editing it: unknown options, a missing argument,
out-of-range and non-integer values of every bounded option, and for the optimizer commands the library's
hyperparameter checks; hand-written rows add the representatives of issue 13.

Issue 13's sweep, the command-line half: every catalogue entry x every hyperparameter x extreme values through
the CLI's analysis commands, each case under a time bound.  The library half, and how each case must end, is in
tests/optfilters/test_validation.py; the shared grid and sampling in tests/support/sweep.py.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import re
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import example, given, settings
from optfilters.cli import _common as common
from optfilters.cli import main
from optfilters.cli._common import OptimizerGroup
from optfilters.cli.main import COMMAND_MODULES

import optfilters
from optfilters.validation import MAX_LARGE_SIGNAL_STEPS, MAX_SIGN_LOOP_HALF_PERIOD, MAX_SIGN_LOOP_STEPS
from tests.support.cli import cli_args
from tests.support.number_text import NEAR_NUMBER_TEXT, strict_decimal
from tests.support.sweep import TRIPLES, CaseTimeout, chosen, time_bound


def _recorder() -> tuple[list[Any], Any]:
    seen: list[Any] = []

    def action(selection: Any, **extras: Any) -> None:
        seen.append((selection, extras))

    return seen, action


def test_group_resolves_names_aliases_and_case() -> None:
    seen, action = _recorder()
    group = common.optimizer_group("probe", action, options=[common.json_option()])
    for name in ("NAG", "heavy-ball", "Adam", "sgd_nesterov"):
        assert CliRunner().invoke(group, [name]).exit_code == 0
    assert [s.model.name for s, _ in seen] == ["nesterov", "momentum", "adam", "nesterov"]
    assert seen[0][1] == {"as_json": False}


def test_only_explicit_hyperparameters_are_passed() -> None:
    seen, action = _recorder()
    group = common.optimizer_group("probe", action)
    result = CliRunner().invoke(group, ["adam", "--beta1", "0.8", "--amsgrad"])
    assert result.exit_code == 0, result.output
    selection = seen[0][0]
    assert selection.overrides == {"beta1": 0.8, "amsgrad": True}
    assert selection.model.hyperparameters["beta2"] == 0.999  # the library's default
    assert selection.label == "adam(beta1=0.8, amsgrad=True)"


def test_list_hyperparameter_and_integer_kinds() -> None:
    seen, action = _recorder()
    group = common.optimizer_group("probe", action)
    assert CliRunner().invoke(group, ["aggmo", "--betas", "0,0.5"]).exit_code == 0
    assert CliRunner().invoke(group, ["bessel", "--order", "3"]).exit_code == 0
    assert CliRunner().invoke(group, ["custom", "--b", "-1,0.5", "--a", "1,-0.5"]).exit_code == 0  # leading minus
    assert seen[0][0].model.hyperparameters["betas"] == (0.0, 0.5)
    assert seen[1][0].model.hyperparameters["order"] == 3
    assert seen[2][0].model.hyperparameters["b"] == (-1.0, 0.5)


def test_every_command_builds_for_every_entry() -> None:
    """No command option clashes with any catalogue hyperparameter; each subcommand has exactly its entry's."""
    ctx = click.Context(main)
    for name in ("describe", "response", "poles", "step", "impulse", "compare"):
        group = main.get_command(ctx, name)
        assert isinstance(group, common.OptimizerGroup)
        assert group.list_commands(ctx) == optfilters.names()
        for entry_name in optfilters.names():
            command = group.get_command(ctx, entry_name)
            assert isinstance(command, common.OptimizerCommand)
            params = {p.name for p in command.params}
            assert {hp.name for hp in optfilters.CATALOGUE[entry_name].hyperparameters} <= params


def test_chain_merges_options_and_refuses_conflicts() -> None:
    seen: list[Any] = []

    def action(selections: list[Any], points: int, as_json: bool) -> None:
        seen.append(([s.label for s in selections], points, as_json))

    points = click.Option(["--points"], type=int, default=5)
    chain = common.optimizer_chain("probe", action, options=[points, common.json_option()])
    runner = CliRunner()
    assert runner.invoke(chain, ["momentum", "nesterov", "--points", "7"]).exit_code == 0
    assert runner.invoke(chain, ["--points", "7", "momentum", "--json", "nesterov", "--points", "7"]).exit_code == 0
    assert runner.invoke(chain, ["momentum"]).exit_code == 0
    assert seen == [
        (["momentum", "nesterov"], 7, False),
        (["momentum", "nesterov"], 7, True),
        (["momentum"], 5, False),
    ]
    result = runner.invoke(chain, ["momentum", "--points", "3", "nesterov", "--points", "4"])
    assert result.exit_code == 2 and "--points given twice" in result.stderr


def test_one_line_errors_converts_value_errors_only() -> None:
    with pytest.raises(common.CliError, match="bad thing"):
        with common.one_line_errors():
            raise ValueError("bad thing\nsecond line")
    with pytest.raises(KeyError):  # programming errors keep their traceback
        with common.one_line_errors():
            raise KeyError("x")
    assert common.CliError("a\nb").format_message() == "a"


def test_jsonable_output_is_strict_json() -> None:
    data = {"a": np.array([1.0, np.nan, -np.inf]), "z": np.complex128(1 - 2j), "t": (np.float32(0.5), True)}
    text = json.dumps(common.jsonable(data), allow_nan=False)
    assert json.loads(text) == {"a": [1.0, None, None], "z": [1.0, -2.0], "t": [0.5, True]}


def test_fmt() -> None:
    assert common.fmt(1 / 3) == "0.333333"
    assert common.fmt(math.nan) == "undefined" and common.fmt(-math.inf) == "-inf"  # never a printed nan
    assert common.fmt_list(np.array([0.5 + 0.25j, 0.5 - 0.25j])) == "0.5+0.25j, 0.5-0.25j"


def test_stability_message_uses_the_library_wording() -> None:
    summer = optfilters.ArmaFilter([1.0], [1.0, -1.0])
    message = common.stability_message(summer, "summer")
    assert message is not None and message.startswith("summer is marginally stable")
    assert common.stability_message(optfilters.ArmaFilter.ema(0.5), "ema") is None


def _console_script() -> str:
    beside = Path(sys.executable).with_name("optfilters")
    found = str(beside) if beside.exists() else shutil.which("optfilters")
    if not found:
        pytest.skip("the optfilters console script is not installed")
    return found


def test_installed_console_script() -> None:
    script = _console_script()
    done = subprocess.run(
        [script, "response", "adam", "--beta1", "0.9", "--json"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["filters"]["gradient"]["b"] == pytest.approx([0.1])
    assert data["filters"]["gradient"]["a"] == pytest.approx([1.0, -0.9])
    bad = subprocess.run([script, "response", "adma"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        "Error: unknown optimizer 'adma'; did you mean 'adam' or 'adamax' or 'adan'?"
    ]


IMPORT_CHECK = r"""
import json, sys
from optfilters.cli import main
commands = [
    ["list"], ["table", "--json"], ["describe", "adam"], ["response", "adam", "--beta1", "0.9", "--json"],
    ["response", "adagrad"], ["poles", "butterworth", "--order", "4"], ["step", "adam", "--json"],
    ["impulse", "nadam"], ["compare", "momentum", "nesterov"],
]
for args in commands:
    try:
        main(args, standalone_mode=False)
    except SystemExit as exc:
        assert not exc.code, (args, exc.code)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "matplotlib"))
print(json.dumps(heavy), file=sys.stderr)
"""


def test_analysis_commands_import_neither_torch_nor_matplotlib() -> None:
    done = subprocess.run([sys.executable, "-c", IMPORT_CHECK], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    last = [line for line in done.stderr.splitlines() if line.startswith("[")][-1]
    assert json.loads(last) == []


# ----------------------------------------------------------------------------- --plot

needs_plot = pytest.mark.skipif(
    importlib.util.find_spec("optfilters.plot") is None, reason="optfilters.plot is not written yet"
)


MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF", "svg": b"<?xml"}


@needs_plot
@pytest.mark.parametrize(
    ("args", "suffix"),
    [
        (["response", "momentum", "--points", "3"], "svg"),
        (["compare", "momentum", "nesterov", "--points", "3"], "png"),
        (["step", "adam", "--steps", "10"], "pdf"),
        (["describe", "adagrad"], "png"),
        (["poles", "butterworth", "--order", "3"], "svg"),
        (["impulse", "nesterov", "--steps", "5"], "png"),
    ],
)
def test_plot_writes_the_figure(tmp_path: Path, args: list[str], suffix: str) -> None:
    target = tmp_path / f"figure.{suffix}"
    result = CliRunner().invoke(main, [*args, "--plot", str(target)])
    assert result.exit_code == 0, (result.output, result.exception)
    assert target.read_bytes().startswith(MAGIC[suffix])
    assert f"figure written to {target}" in result.stdout


@needs_plot
def test_plot_path_in_json(tmp_path: Path) -> None:
    target = tmp_path / "bode.svg"
    result = CliRunner().invoke(main, ["response", "adam", "--json", "--plot", str(target)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["plot"] == str(target)
    assert target.exists()


def test_plot_unknown_suffix_is_refused_before_drawing(tmp_path: Path) -> None:
    target = tmp_path / "bode.gif"
    result = CliRunner().invoke(main, ["response", "adam", "--plot", str(target)])
    assert result.exit_code == 2 and result.stdout == ""
    assert "suffix among .png, .svg, .pdf" in result.stderr
    assert not target.exists()


def assert_one_line_error(args: list[str], pattern: str) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, (args, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # a clean exit, not a crash
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.output
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        ("response adma", r"unknown optimizer 'adma'; did you mean 'adam'"),
        ("describe rmsprob", r"unknown optimizer 'rmsprob'; did you mean 'rmsprop'"),
        ("response adam --beta1 1.5", r"beta1 must be in \[0, 1\), got 1\.5$"),
        ("response adam --eps -1", r"eps must be >= 0, got -1$"),
        ("response custom --b 1 --a 0,1", r"a\[0\] must be non-zero"),
        ("response adam --beta1 abc", r"beta1 must be a number, got 'abc'"),
        ("response adam --beta1 nan", r"beta1 must be a finite number"),
        ("response custom --b 1,x", r"b\[1\] must be a number, got 'x'"),
        ("response custom", r"custom needs b"),
        ("response adam --momentum 0.9", r"adam takes no option --momentum .*--beta1"),
        ("response adam --weight_decay 0.1", r"did you mean --weight-decay"),
        ("poles momentum --nesterov", r"momentum takes no option --nesterov"),
        ("response adam --beta1", r"requires an argument"),
        ("response adam extra", r"unexpected extra argument"),
        ("response sgd --nesterov", r"nesterov needs momentum > 0"),
        ("response butterworth --order 2.5", r"order must be an integer, got 2\.5"),
        ("response butterworth --cutoff 0.6", r"cutoff must be in \[1e-06, 0\.5\)"),
        ("response adam --points 1", r"--points"),
        ("step adam --steps 0", r"--steps"),
        ("response adam --plot figure.gif", r"suffix among \.png, \.svg, \.pdf"),
        ("response --bogus adam", r"--bogus"),
        ("compare momentum nesterov --bogus", r"nesterov takes no option --bogus"),
        ("compare momentum --points 3 nesterov --points 4", r"--points given twice with different values"),
        ("compare --set foo=1 momentum", r"no optimizer in the list takes --set foo=1"),
        ("compare --set momentum momentum", r"--set needs KEY=VALUE"),
        ("compare --set momentum=2x momentum", r"momentum must be a number, got '2x'"),
        ("compare --json", r"name at least one optimizer"),
        ("compare momentum --stage post", r"momentum has no 'post' stage \(it has gradient\)"),
        ("compare momentum adma", r"unknown optimizer 'adma'"),
        ("table adma", r"unknown optimizer 'adma'"),
        ("respons adam", r"No such command 'respons'. Did you mean 'response'"),
        ("--bogus", r"No such option '--bogus'"),
    ],
)
def test_bad_input(args: str, pattern: str) -> None:
    assert_one_line_error(args.split(), pattern)


BAD_INPUTS = [
    pytest.param(name, settings, pattern, id=f"{name}-{i}")
    for name in optfilters.names()
    for i, (settings, pattern) in enumerate(optfilters.CATALOGUE[name].bad_inputs)
]


@pytest.mark.parametrize(("name", "settings", "pattern"), BAD_INPUTS)
def test_catalogue_bad_inputs(name: str, settings: dict[str, Any], pattern: str) -> None:
    """Every bad input the catalogue declares fails on the command line with the library's message."""
    known = {hp.name for hp in optfilters.CATALOGUE[name].hyperparameters}
    unknown = [key for key in settings if key not in known]
    if unknown:  # not an option of this subcommand at all
        pattern = f"{name} takes no option --{unknown[0].replace('_', '-')}"
    assert_one_line_error(["response", name, *cli_args(settings)], pattern)


def test_no_name_is_one_line_not_the_help() -> None:
    line = assert_one_line_error(["response"], r"missing an optimizer NAME .*--help")
    assert "Usage:" not in line


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
    """Values outside each numeric option's documented range, and non-integers for integer options; issue 13:
    numeric text that Python's float() and int() read but the strict decimal grammar does not (``1_0`` as 10,
    ``\u0661`` as 1), ``0x10`` and ``1e``, for every numeric option and hyperparameter."""
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
        if isinstance(kind, (click.IntRange, click.FloatRange)):
            rows += [([*_prefix(name), flag, text], flag) for text in ("1_0", "\u0661", "0x10", "1e")]
        elif isinstance(kind, common.HyperparameterType) and kind.hp.kind in ("float", "int", "floats"):
            extra = REQUIRED.get(name, [])
            rows += [([*_prefix(name), flag, text, *extra], rf"\b{kind.hp.name}\b") for text in ("1_0", "\u0661")]
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
    (["stability", "momentum", "--condition-number", "1.0000001e12"], r"got 1000000100000\.0"),  # not 1e+12
    (["predict", "momentum", "--schedule", "step:2.5"], "step_size must be an integer"),
    (["predict", "momentum", "--schedule", "warmup:0.5,cosine:10"], "warmup:steps must be an integer"),
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


def _sample(opt: click.Option) -> list[str]:
    """The option with a valid value: ``["--points", "2"]``, ``["--json"]``."""
    flag = opt.opts[0]
    if opt.is_flag:
        return [flag]
    if isinstance(opt.type, click.Choice):
        return [flag, str(opt.type.choices[-1])]
    if isinstance(opt.type, (click.IntRange, click.FloatRange)):
        low = opt.type.min if opt.type.min is not None else 1
        return [flag, str(low + 1 if opt.type.min_open else low)]
    return [flag, {"--size": "8x4.5", "--tune": "lr", "--rows": "0.9", "--lr": "0.1"}.get(flag, "x")]


def _dependent_rows() -> list[tuple[list[str], str]]:
    """Issue 13: every option that only works with another one (``--title`` with ``--plot``, ``--mu`` with
    ``--condition-number``, ``thresholds --curvature`` with ``--lr`` or ``--run-steps``), of every command, given
    without it: refused, naming both (it was ignored); and every option given with one it excludes
    (``margins --lr-curvature`` with ``--curvature`` or ``--lr``: one overrode the other), refused naming both."""
    rows: list[tuple[list[str], str]] = []
    for name in COMMANDS:
        options = {opt.name: opt for opt in _options(COMMANDS[name])}
        for opt in options.values():
            if not isinstance(opt, common.DependentOption):
                continue
            flag = opt.opts[0]
            prefix = [*_prefix(name), *REQUIRED.get(name, [])]
            if opt.needs is not None:
                names = [opt.needs] if isinstance(opt.needs, str) else list(opt.needs)
                needs = " or ".join(common.option_name(n) for n in names)
                rows.append(([*prefix, *_sample(opt)], f"^Error: {flag} needs {needs} "))
            for other in opt.excludes:
                other_flag = common.option_name(other) if other != "as_json" else "--json"
                rows.append(
                    (
                        [*prefix, *_sample(opt), *_sample(options[other])],
                        f"^Error: give {flag} or {other_flag}, not both",
                    )
                )
    return rows


def _normaliser_rows() -> list[tuple[list[str], str]]:
    """Issue 13: every option that only means something for a normalising optimizer (``--second-moment``), given
    for sgd, momentum and lion (a sign, no normaliser) on every command that has one: refused (it was ignored)."""
    rows = []
    for name in COMMANDS:
        for opt in _options(COMMANDS[name]):
            if isinstance(opt, common.NormaliserOption):
                for model in ("sgd", "momentum", "lion"):
                    args = [name, model, *REQUIRED.get(name, []), opt.opts[0], "2"]
                    rows.append((args, f"^Error: {opt.opts[0]} has no effect on {model}: it does not normalise"))
    return rows


def _output_rows() -> list[tuple[list[str], str]]:
    """Issue 13: every command that writes a figure refuses a file in a missing folder (naming the folder;
    it used to create it) before any work."""
    rows = []
    for name in COMMANDS:
        if any("--plot" in opt.opts for opt in _options(COMMANDS[name])):
            args = [*_prefix(name), *REQUIRED.get(name, []), "--plot", "/nonexistent_dir_zz/sub/x.png"]
            rows.append((args, "--plot: folder '/nonexistent_dir_zz/sub' does not exist"))
    return rows


ISSUE_13_ROWS: list[tuple[list[str], str]] = [
    # a stability edge beyond the double range (2 / H(-1) = 6e323) is refused, not reported as "no edge"
    *[
        ([command, "custom", "--b", "5e-324", "--a", "1,-0.5", *extra], "lr\\*h beyond the double range")
        for command, extra in (("stability", []), ("locus", []), ("margins", ["--lr", "0.1"]))
    ],
    (["predict", "momentum", "--plot", "/proc/optfilters-x.png"], "/proc"),
    (["response", "momentum", "--plot", "/"], "--plot"),
    (["audit", "torch.optim", "--out", "/proc/optfilters-atlas"], "cannot write to --out '/proc/optfilters-atlas'"),
    (["convert-checkpoint", "no.pt", "/nonexistent_dir_zz/sub/out.pt", "--optimizer", "adam"], "TARGET: folder"),
    (["compare", "momentum", "nesterov", "--title", "T"], "--title needs --plot"),
    (["compare", "--title", "T", "momentum"], "--title needs --plot"),
    (["predict", "momentum", "--schedule", "warmup:1e308"], r"warmup:steps must be in \[1, 10000000\]"),
    (["predict", "momentum", "--schedule", "linear:1e308"], r"linear:total_iters must be in \[1, 10000000\]"),
    (["predict", "momentum", "--schedule", "cosine:20000000"], r"cosine:T_max must be in \[1, 10000000\]"),
    (["predict", "momentum", "--schedule", "step:0"], r"step:step_size must be in \[1, 10000000\]"),
    (["predict", "momentum", "--schedule", "exponential:inf"], "exponential:gamma must be a finite number, got 'inf'"),
    (["predict", "momentum", "--schedule", "exponential:1_0"], "exponential:gamma must be a number, got '1_0'"),
    (["predict", "momentum", "--schedule", "step:1_0"], "step:step_size must be a number, got '1_0'"),
    (
        ["predict", "momentum", "--schedule", "exponential:5e-324"],
        r"exponential:gamma must be >= 2.2250738585072014e-308",
    ),
    (["predict", "momentum", "--schedule", "cosine:10:1e-310"], r"cosine:min_factor must be 0 or >= 2.225"),
    (["predict", "momentum", "--schedule", "exponential:-0"], "exponential:gamma must be > 0, got '-0'"),
    (["thresholds", "momentum", "--schedule", "step:10:nan"], "step:gamma must be a finite number"),
    (["thresholds", "momentum", "--schedule", "inverse:0x1"], "inverse:lr_decay must be a number, got '0x1'"),
    (["predict", "momentum", "--curvatures", "1_0"], "--curvatures must be numbers"),
    (["predict", "momentum", "--curvatures", "1e400"], "--curvatures must be within the double range"),
    (["predict", "momentum", "--init", "1,1_0"], "--init must be numbers"),
    (["predict", "adam", "--second-moment", "1_0"], "--second-moment must be 'tracking', 'steady' or a number"),
    (["thresholds", "momentum", "--at", "1_0"], "--at must be steps separated by commas"),
    (["thresholds", "momentum", "--at", "5,\u0661\u0660"], "--at must be steps separated by commas"),
    (["predict", "adam", "--betas", "0.9,9_9"], "beta2 must be a number, got '9_9'"),
    (["predict", "adam", "--betas", "0.9,0x1"], "beta2 must be a number, got '0x1'"),
    (["predict", "adam", "--beta1", "1e400"], "beta1 must be within the double range"),
    (["predict", "custom", "--b", "1,1_0", "--a", "1,-0.5"], r"b\[1\] must be a number, got '1_0'"),
    (["predict", "custom", "--b", "1", "--a", "1,-\u0660.5"], r"a\[1\] must be a number"),
    (["compare", "--set", "momentum=1_0", "momentum"], "momentum must be a number, got '1_0'"),
    (["response", "momentum", "--size", "8x4_5", "--plot", "f.png"], "--size needs WIDTHxHEIGHT"),
    (["audit", "torch.optim", "--time-limit", "1_0"], "--time-limit"),
    (["sign-loop", "lion", "--init", "1_0"], "--init"),
    (["sign-loop", "lion", "--init", "-inf"], "--init"),
    (["identify", "torch.optim.SGD", "--lr", "1_0"], "--lr: '1_0' is not a number"),
    (["table", "adam:beta1=1_0"], "beta1 must be a number, got '1_0'"),
    (["table", "adam:betas=0.8,9_9"], "beta2 must be a number, got '9_9'"),
    (["table", "adam:eps=\u0661e-8"], "eps must be a number"),
    (["predict", "momentum", "--schedule", "warmup:10,"], "trailing comma"),
    (["predict", "momentum", "--schedule", "warmup:10,cosine:100,"], "trailing comma"),
    (["predict", "momentum", "--schedule", "step:"], "empty field"),
    (["predict", "momentum", "--schedule", "cosine:100:"], "empty field"),
    (["predict", "momentum", "--schedule", "step::0.5"], "empty field"),
    (
        ["stability", "momentum", "--tune", "momentum,momentum", "--condition-number", "10"],
        "--tune names 'momentum' twice",
    ),
    (["stability", "qhm", "--tune", "nu,beta,nu", "--condition-number", "10"], "--tune names 'nu' twice"),
    (["stability", "momentum", "--tune", "momentum,", "--condition-number", "10"], "--tune has an empty item"),
    (["large-signal", "adam", "--parameters", "beta1,beta1", "--bound", "2"], "--parameters names 'beta1' twice"),
    (["large-signal", "radam", "--ratio", "1e160"], "no scaling law"),
    (["large-signal", "adadelta", "--ratio", "1e308"], "too far apart"),
    (["identify", "torch.optim.Adam", "--compare", "adam", "--map", "betas=beta1,beta1"], "--map names 'beta1' twice"),
    (["stability", "momentum", "--mu", "1e-320", "--condition-number", "10"], "--mu"),
    (["certify", "momentum", "--mu", "1e-320", "--condition-number", "10"], "--mu"),
]


#: Positional arguments of the commands with folder outputs, for rows about their options.
ARGUMENTS = {"figures": ["sign_stages"], "audit": ["torch.optim"], "convert-checkpoint": ["in.pt", "out.pt"]}


def _folder_rows() -> list[tuple[list[str], str]]:
    """Issue 13: every folder output (``figures --out``, ``audit --out``) creates its folder but not a missing
    parent (like mkdir, not mkdir -p: it created the whole tree), refused by name before any work; and every
    path option or argument refuses an empty name (it read as the current folder '.')."""
    rows = []
    for name, command in COMMANDS.items():
        for param in command.params:
            if not isinstance(param.type, common.NonEmptyPath):
                continue
            if isinstance(param, click.Option):
                args = [name, *ARGUMENTS.get(name, []), param.opts[0]]
                if not param.type.file_okay:
                    rows.append(
                        (
                            [*args, "/nonexistent_dir_zz/deep"],
                            f"^Error: {param.opts[0]}: folder '/nonexistent_dir_zz' does not exist: cannot create "
                            "'deep' in it",
                        )
                    )
                rows.append(([*args, ""], "an empty name is not a path, got ''"))
            else:
                values = ["x.pt" if p is not param else "" for p in command.params if isinstance(p, click.Argument)]
                rows.append(([name, *values, "--optimizer", "adam"], "an empty name is not a path, got ''"))
    for name in COMMANDS:
        if any("--plot" in opt.opts for opt in _options(COMMANDS[name])):
            rows.append(([*_prefix(name), *REQUIRED.get(name, []), "--plot", ""], r"--plot.*got ''"))
    return rows


def _repeated_rows() -> list[tuple[list[str], str]]:
    """Issue 13: every single-valued option of every command (hyperparameters too) given twice is refused by name
    (click kept the last value silently)."""
    rows = []
    arguments = {**ARGUMENTS, "identify": ["torch.optim.SGD"]}
    for name in COMMANDS:
        for opt in _options(COMMANDS[name]):
            longs = [o for o in (*opt.opts, *opt.secondary_opts) if o.startswith("--")]
            if opt.multiple or opt.count or not longs:
                continue
            args = [*_prefix(name), *arguments.get(name, []), *_sample(opt), *_sample(opt)]
            rows.append((args, f"^Error: {re.escape('/'.join(longs))} given twice: give it once"))
    return rows


#: Issue 13 (silently ignored or repeated options): an option given twice kept its last value; a repeated figure
#: source ran twice; output places that cannot be written were found only after the work.
OPTION_ROWS: list[tuple[list[str], str]] = [
    (["response", "momentum", "--plot", "a.png", "--plot", "b.png"], "^Error: --plot given twice: give it once"),
    (["step", "momentum", "--steps", "3", "--steps", "4"], "--steps given twice"),
    (["response", "adam", "--beta1", "0.8", "--beta1", "0.9"], "--beta1 given twice"),
    (["response", "sgd", "--momentum", "0.9", "--nesterov", "--no-nesterov"], "--nesterov/--no-nesterov given twice"),
    (["response", "momentum", "--json", "--json"], "--json given twice"),
    (["compare", "--points", "3", "--points", "4", "momentum"], "--points given twice"),
    (["compare", "momentum", "--momentum", "0.5", "--momentum", "0.6", "nesterov"], "--momentum given twice"),
    (["predict", "momentum", "--curvatures", "1", "--curvatures", "2"], "--curvatures given twice"),
    (["figures", "--out", "a", "--out", "b", "sign_stages"], "--out given twice"),
    (["table", "--format", "csv", "--format", "latex"], "--format given twice"),
    (["audit", "torch.optim", "--time-limit", "1", "--time-limit", "2"], "--time-limit given twice"),
    (["convert-checkpoint", "a.pt", "b.pt", "--optimizer", "adam", "--optimizer", "sgd"], "--optimizer given twice"),
    (["identify", "torch.optim.SGD", "--steps", "64", "--steps", "96"], "--steps given twice"),
    (["figures", "sign_stages", "sign_stages"], "SOURCES names 'sign_stages' twice"),
    (["compare", "--set", "momentum=0.5", "--set", "momentum=0.6", "momentum"], "--set momentum given twice"),
    (["audit", "torch.optim", "--only", "SGD", "--only", "SGD"], "--only names 'SGD' twice"),
    (["explore", "--model", "m.py:a", "--model", "m.py:a"], "--model names 'm.py:a' twice"),
    (["identify", "torch.optim.SGD", "--momentum", "0.9", "-o", "momentum=0.5"], "keyword 'momentum' given twice"),
    (
        ["identify", "torch.optim.SGD", "--compare", "momentum", "--map", "m=momentum", "--map", "m=dampening"],
        "--map maps 'm' twice",
    ),
    (["figures", "sign_stages", "batch_size", "sign_stages"], "SOURCES names 'sign_stages' twice"),
    (["table", "--format", "csv", "--no-notes"], "--notes/--no-notes has no effect with --format csv"),
    (["thresholds", "momentum", "--curvature", "2"], "^Error: --curvature needs --lr or --run-steps "),
    (["margins", "momentum", "--lr-curvature", "1", "--curvature", "2"], "give --lr-curvature or --curvature"),
    (["sensitivity", "momentum", "--lr-curvature", "1", "--lr", "0.1"], "give --lr-curvature or --lr"),
    (["large-signal", "adam", "--parameters", "beta1,eps"], "--parameters needs --map-rows or --map-columns"),
    (["response", "momentum", "--plot", "/proc/optfilters-x.png"], "^Error: --plot: .*cannot write"),
    (["margins", "adam", "--plot", "/sys/optfilters-x.png"], "^Error: --plot: .*cannot write"),
    (
        ["convert-checkpoint", "in.pt", "/proc/optfilters-out.pt", "--optimizer", "adam"],
        "^Error: TARGET: .*cannot write",
    ),
]


ROWS = (
    _generic_rows()
    + SPECIFIC
    + NEWER_ROWS
    + _dependent_rows()
    + _normaliser_rows()
    + _output_rows()
    + ISSUE_13_ROWS
    + _folder_rows()
    + _repeated_rows()
    + OPTION_ROWS
)


README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_no_option_is_silently_dropped_and_outputs_are_checked_first(tmp_path: Path) -> None:
    """The README's sentences on dropped options and output places, each case run (the tables cover every
    command)."""
    text = " ".join(README.read_text().split())
    assert "No option is silently dropped: one given twice (`--plot a.png --plot b.png`)" in text
    assert "create DIR but not a missing parent folder (like `mkdir`, not `mkdir -p`)" in text
    cases = [
        (["response", "momentum", "--plot", str(tmp_path / "a.png"), "--plot", str(tmp_path / "b.png")], "twice"),
        (["thresholds", "momentum", "--curvature", "2"], "--curvature needs --lr or --run-steps"),
        (["margins", "momentum", "--lr-curvature", "1", "--curvature", "2"], "give --lr-curvature or --curvature"),
        (["margins", "momentum", "--lr-curvature", "1", "--lr", "0.1"], "give --lr-curvature or --lr"),
        *[(["margins", m, "--second-moment", "2"], f"no effect on {m}") for m in ("sgd", "momentum", "lion")],
        (["response", "momentum", "--plot", str(tmp_path / "no" / "x.png")], "does not exist"),
        (["convert-checkpoint", "in.pt", str(tmp_path / "no" / "out.pt"), "--optimizer", "adam"], "does not exist"),
        (["audit", "torch.optim", "--out", str(tmp_path / "no" / "atlas")], "does not exist"),
        (["figures", "sign_stages", "--out", str(tmp_path / "no" / "figures")], "does not exist"),
    ]
    for args, pattern in cases:
        check_one_line_error(CliRunner().invoke(main, args), args, pattern)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, no folder created
    assert common.check_output_folder(tmp_path / "atlas", "--out") == tmp_path / "atlas"
    assert (tmp_path / "atlas").is_dir()  # the folder itself is created


def test_table_is_large_and_covers_every_command() -> None:
    assert len(ROWS) >= 200, len(ROWS)
    covered = {row[0][0] for row in ROWS if row[0]}
    assert covered >= set(COMMANDS), set(COMMANDS) - covered
    assert set(COMMANDS) <= set(main.commands)


#: Internals that have no place in a message to a command-line user: Python exception classes and reprs, errno
#: tuples, numpy/scipy/torch internals and their texts, source paths, Python warning categories, and the library's
#: keyword ``lr_curvature`` (the options are --lr, --curvature and --lr-curvature).
FOREIGN = re.compile(
    r"Error\(|Exception|Traceback|\(\d+, '|numpy\.|scipy\.|torch\._|\.py:\d+|\.cc:\d+|lr_curvature|<class|"
    r"\b[A-Z][A-Za-z]*(?:Error|Warning)\b|\bC long\b|miniz|enforce fail|PytorchStreamReader|Unpickler|Scs[A-Z]\w*|"
    r"f\(a\) and f\(b\)|Maximum allowed dimension|must not contain infs|did not converge|got None"
)


def check_one_line_error(result: Any, args: list[str], pattern: str | None = None) -> None:
    stderr, stdout = result.stderr, result.stdout
    assert result.exit_code == 2, (args, result.exit_code, stderr[-500:], result.exception)
    assert "Traceback" not in stderr and "Traceback" not in stdout, stderr
    assert "Warning" not in stderr, stderr  # no Python warning text (RuntimeWarning, UserWarning, ...)
    assert not FOREIGN.search(stderr), (args, stderr)
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


def _nonfinite_rows() -> list[tuple[list[str], str]]:
    """nan and inf for every real-valued option of every command (click lets nan through a range)."""
    rows = []
    for name in COMMANDS:
        for opt in _options(COMMANDS[name]):
            flag = next((o for o in opt.opts if o.startswith("--")), None)
            if flag is not None and isinstance(opt.type, click.FloatRange):
                extra = REQUIRED.get(name, []) if flag not in REQUIRED.get(name, []) else []
                rows += [([*_prefix(name), flag, value, *extra], flag) for value in ("nan", "inf")]
    return rows


#: Files for convert-checkpoint, made by the ``checkpoints`` fixture; a row names one as ``{name}``.
CHECKPOINT_FILES = ("empty", "truncated", "text", "bytes", "zip", "pickle", "sgd", "adam", "train", "tensor")


FOREIGN_ROWS: list[tuple[list[str], str]] = [
    # convert-checkpoint: files that are not checkpoints, of another optimizer, places that cannot be written
    (["convert-checkpoint", "{empty}", "{out}", "--optimizer", "momentum"], "the file is empty"),
    (["convert-checkpoint", "{truncated}", "{out}", "--optimizer", "momentum"], "truncated or damaged"),
    (["convert-checkpoint", "{text}", "{out}", "--optimizer", "momentum"], "not a torch.save file"),
    # plain bytes were said to hold "Python objects other than tensors"; /dev/null was "no such file"
    (["convert-checkpoint", "{bytes}", "{out}", "--optimizer", "momentum"], ": it is not a torch.save file$"),
    (["convert-checkpoint", "/dev/null", "{out}", "--optimizer", "momentum"], "/dev/null: is not a regular file"),
    (["convert-checkpoint", "{zip}", "{out}", "--optimizer", "momentum"], "zip archive but not one torch.save"),
    (["convert-checkpoint", "{pickle}", "{out}", "--optimizer", "momentum"], "weights_only=True refuses"),
    (["convert-checkpoint", "{tensor}", "{out}", "--optimizer", "momentum"], "not an optimizer state dict"),
    (["convert-checkpoint", "{sgd}", "{out}", "--optimizer", "adam"], "saved by another optimizer, not adam"),
    (["convert-checkpoint", "{adam}", "{out}", "--optimizer", "nadam"], "saved by another optimizer, not nadam"),
    (["convert-checkpoint", "{adam}", "{out}", "--optimizer", "momentum"], "not momentum"),
    (["convert-checkpoint", "{sgd}", "{out}", "--optimizer", "butterworth"], "no torch.optim counterpart"),
    (["convert-checkpoint", "{sgd}", "{out}", "--optimizer", "momentum", "--to", "torch"], "format already"),
    (
        ["convert-checkpoint", "{train}", "{out}", "--optimizer", "momentum"],
        r"entry 'optimizer' .*give --key optimizer$",
    ),
    (["convert-checkpoint", "{train}", "{out}", "--optimizer", "momentum", "--key", "opt"], "has no key 'opt'"),
    (["convert-checkpoint", "{train}", "{out}", "--optimizer", "momentum", "--key", "model"], "not an optimizer"),
    (["convert-checkpoint", "{sgd}", "/proc/optfilters-out.pt", "--optimizer", "momentum"], "cannot write"),
    (["convert-checkpoint", "{sgd}", "{missing}/out.pt", "--optimizer", "momentum"], "cannot write"),
    (["convert-checkpoint", "{missing}/in.pt", "{out}", "--optimizer", "momentum"], "no such file"),
    # thresholds: steps, learning rates and schedules out of the floating-point range
    (["thresholds", "momentum", "--at", "1e30"], r"--at needs steps <= 10000000"),
    (["thresholds", "adam", "--at", "1e18"], r"--at needs steps <= 10000000"),
    (["thresholds", "nadam", "--at", "1,1"], r"--at names 1 twice, got 1,1"),  # was a duplicate row
    (["thresholds", "nadam", "--at", "2,5,2.0"], r"--at names 2 twice"),
    (["thresholds", "adam", "--lr", "1e308", "--at", "5", "--run-steps", "3"], "overflow the floating-point range"),
    (["thresholds", "adam", "--lr", "1e308", "--curvature", "1e308", "--at", "5", "--run-steps", "3"], "overflow"),
    (["thresholds", "adam", "--schedule", "exponential:1e308", "--at", "5,50"], "schedule's learning-rate factor"),
    (["thresholds", "adam", "--second-moment", "0", "--eps", "0"], "normaliser's gain must be finite"),
    (["thresholds", "momentum", "--staleness", "10001"], "--staleness"),
    # issue 13: sizes whose run takes minutes are refused just above their named bound
    (["sign-loop", "lion", "--steps", str(MAX_SIGN_LOOP_STEPS + 1)], rf"--steps.*{MAX_SIGN_LOOP_STEPS}"),
    (["sign-loop", "lion", "--max-period", str(MAX_SIGN_LOOP_HALF_PERIOD + 1)], "--max-period"),
    (["large-signal", "adam", "--before", str(MAX_LARGE_SIGNAL_STEPS + 1)], "--before"),
    (["large-signal", "adam", "--burst", str(MAX_LARGE_SIGNAL_STEPS + 1)], "--burst"),
    (["observe", "momentum", "--lr", "0.1", "--steps", "100", "--seeds", "10000000"], "seed-steps; at most"),
    (["observe", "momentum", "--lr", "0.1", "--steps", "10000000", "--seeds", "2"], "seed-steps; at most"),
    (["observe", "momentum", "--lr", "0.1", "--steps", "6000", "--curvatures", "1,2"], r"x 2 curvatures"),
    # sign-loop: starts and steps whose approach or cycle leaves the floating-point range
    (["sign-loop", "lion", "--init", "1e308"], "steps to reach the optimum"),
    (["sign-loop", "lion", "--lr", "1e-300"], "steps to reach the optimum"),
    (["sign-loop", "lion", "--lr", "0"], r"lr must be finite and > 0, got 0"),
    (["sign-loop", "lion", "--init", "0"], "theta0 must be finite and non-zero"),
    (["sign-loop", "lion", "--noise-std", "0"], "--noise-std must be finite and > 0"),
    (["sign-loop", "adam"], "adam takes no sign"),
    (["sign-loop", "lion", "--curvature", "1e308"], "too large for the describing function"),
    # certify: models it cannot take, settings out of range
    (["certify", "muon", "--condition-number", "10"], "certify needs a linear"),
    (["certify", "lion", "--condition-number", "10"], "certify needs a linear"),
    (["certify", "adam", "--condition-number", "10", "--second-moment", "0", "--eps", "0"], "must be finite"),
    (["certify", "custom", "--b", "1", "--a", "1,-2", "--condition-number", "10"], "unstable"),
    (["certify", "momentum", "--condition-number", "10", "--mu", "1e308"], "mu"),
    # margins, locus, sensitivity: staleness past its bound; an operating point that is not a number
    (["margins", "momentum", "--staleness", "101"], r"--staleness.*0<=x<=100"),
    (["locus", "momentum", "--staleness", "100001"], "--staleness"),
    # lr * h beyond the double range: refused with the loop's verdict there, in the user's numbers
    (
        ["margins", "momentum", "--lr", "1e308", "--curvature", "1e308"],
        r"lr \* h = 1e\+308 \* 1e\+308 overflows.*diverges",
    ),
    (["sensitivity", "momentum", "--lr", "1e200", "--curvature", "1e200"], r"lr \* h = 1e\+200 \* 1e\+200 overflows"),
    (["stability", "nesterov", "--lr", "1e308", "--curvature", "10"], r"overflows the floating-point range.*diverges"),
    (["margins", "momentum", "--lr", "1e308", "--weight-decay", "1"], r"weight-decay terms.*overflow.*diverges"),
    (["sign-loop", "lion", "--lr", "1e308", "--curvature", "10"], r"1e\+308 \* 10 overflows the floating-point"),
    (["margins", "momentum", "--lr-curvature", "1", "--lr", "0.1"], "give --lr-curvature or --lr"),
    (["locus", "momentum", "--lr-curvature", "nan"], "--lr-curvature"),
    *_nonfinite_rows(),
]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The files of :data:`CHECKPOINT_FILES` (and ``out``, ``missing``): real checkpoints and files that are not."""
    import pickle
    import zipfile

    torch = pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("checkpoints")
    paths = {name: folder / f"{name}.pt" for name in CHECKPOINT_FILES}
    w = torch.nn.Parameter(torch.ones(2, 2))
    w.grad = torch.ones(2, 2)
    sgd, adam = torch.optim.SGD([w], lr=0.1, momentum=0.9), torch.optim.Adam([w])
    sgd.step()
    adam.step()
    torch.save(sgd.state_dict(), paths["sgd"])
    torch.save(adam.state_dict(), paths["adam"])
    torch.save({"model": {"w": w.detach()}, "optimizer": sgd.state_dict()}, paths["train"])
    torch.save(torch.ones(3), paths["tensor"])
    paths["empty"].write_bytes(b"")
    whole = paths["sgd"].read_bytes()
    paths["truncated"].write_bytes(whole[: len(whole) // 2])
    paths["text"].write_text("step,loss\n1,0.5\n")
    paths["bytes"].write_bytes(bytes(range(256)) * 4)
    with zipfile.ZipFile(paths["zip"], "w") as archive:
        archive.writestr("notes.txt", "not a checkpoint")
    paths["pickle"].write_bytes(pickle.dumps({"lr": 0.1}, protocol=4))
    out = {name: str(path) for name, path in paths.items()}
    out.update(out=str(folder / "out.pt"), missing=str(folder / "no-such-folder"))
    return out


def test_foreign_rows_cover_every_command() -> None:
    """The named commands of issue 13 (class 3) and every command with a real-valued option (ROWS, through
    check_one_line_error, scans every other command's bad inputs for the same patterns)."""
    assert len(FOREIGN_ROWS) >= 80, len(FOREIGN_ROWS)
    named = {"thresholds", "sign-loop", "certify", "convert-checkpoint", "margins", "locus", "sensitivity"}
    real = {n for n in COMMANDS if any(isinstance(o.type, click.FloatRange) for o in _options(COMMANDS[n]))}
    covered = {row[0][0] for row in FOREIGN_ROWS}
    assert covered >= named | real, (named | real) - covered
    assert len(real) >= 8, real


@pytest.mark.parametrize(("args", "pattern"), FOREIGN_ROWS, ids=[" ".join(r[0])[:80] for r in FOREIGN_ROWS])
def test_errors_speak_the_users_language(args: list[str], pattern: str, checkpoints: dict[str, str]) -> None:
    """Bad and extreme inputs on every command: exit 2, one stderr line, and nothing foreign in it (:data:`FOREIGN`:
    no exception class or errno tuple, no numpy/scipy/torch internals or paths, no warning category, no
    ``lr_curvature`` where the user typed --lr/--curvature)."""
    result = CliRunner().invoke(main, [a.format(**checkpoints) for a in args])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    check_one_line_error(result, args, pattern)


def _subprocess(args: list[str]) -> subprocess.CompletedProcess[str]:
    code = "import sys; from optfilters.cli import main; main(sys.argv[1:], prog_name='optfilters')"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


@needs_plot
def test_plot_prints_no_matplotlib_text(tmp_path: Path) -> None:
    """Issue 13: with matplotlib's config and cache folders unwritable, --plot wrote the figure but matplotlib's
    log ("Matplotlib created a temporary cache directory ...") reached stderr; nothing does now."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "MPLCONFIGDIR"}
    env.update(HOME="/proc", XDG_CONFIG_HOME="/proc/optfilters-config", XDG_CACHE_HOME="/proc/optfilters-cache")
    code = "import sys; from optfilters.cli import main; main(sys.argv[1:], prog_name='optfilters')"
    target = tmp_path / "bode.png"
    proc = subprocess.run(
        [sys.executable, "-c", code, "response", "momentum", "--plot", str(target)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert target.read_bytes().startswith(MAGIC["png"])


@pytest.mark.parametrize(
    "args",
    [
        ["step", "momentum", "--momentum", "1e400"],
        ["predict", "adam", "--second-moment", "0", "--eps", "0"],
        ["response"],
        ["identify", "torch.optim.SGD", "--steps", "1000000000000"],
        ["predict", "momentum", "--steps", "2000000", "--plot", "/proc/optfilters-x.png"],
        ["observe", "momentum", "--plot", "/sys/optfilters-x.png"],
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
        (["response", "momentum", "--momentum", "1", "--points", "9"], "inf"),
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


def _echo_command(kind: click.ParamType) -> click.Command:
    def run(x: Any) -> None:
        click.echo(repr(x))

    return common.OneLineCommand("run", callback=run, params=[click.Option(["--x", "x"], type=kind, required=True)])


_FLOAT_OPTION = _echo_command(common.FiniteFloatRange(min=-1e300))
_INT_OPTION = _echo_command(common.IntegerRange(min=-(10**6), max=10**6))


@settings(max_examples=300, deadline=None)
@given(text=NEAR_NUMBER_TEXT)
@example(text="1_0")  # click's FLOAT and INT read 10
@example(text="\u0661")
@example(text=" +1")
def test_numeric_options_read_the_strict_decimal_grammar(text: str) -> None:
    """Any text for a real or an integer option: the value the strict decimal grammar gives (in range), or exit 2
    with one line naming the option."""
    expected = strict_decimal(text)
    exact = None if expected is None else Decimal(text.strip())  # integers are read exactly
    for command, integer in ((_FLOAT_OPTION, False), (_INT_OPTION, True)):
        result = CliRunner().invoke(command, [f"--x={text}"])
        if result.exit_code == 0:
            got = eval(result.stdout)  # repr of a float or an int
            assert exact is not None and got == (exact if integer else expected), (text, got, expected)
            assert isinstance(got, int) if integer else isinstance(got, float)
        else:
            assert result.exit_code == 2 and result.stdout == "", (text, result.output)
            lines = result.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("Error: Invalid value for '--x'"), (text, lines)
            if integer:
                assert exact is None or exact != exact.to_integral_value() or not -(10**6) <= exact <= 10**6, text
            else:
                assert expected is None or expected < -1e300, (text, lines)


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


#: The analysis commands that take an optimizer (observe trains with torch: its own tests).
SWEPT_COMMANDS = [
    ["describe"],
    ["response", "--points", "16"],
    ["poles"],
    ["step", "--steps", "64"],
    ["impulse", "--steps", "64"],
    ["stability"],  # its --points is the plotted curve's (refused without --plot)
    ["predict", "--steps", "64"],
    ["margins"],
    ["sensitivity", "--points", "16"],
    ["locus", "--points", "16"],
    ["thresholds", "--run-steps", "64"],
    ["large-signal", "--before", "16", "--burst", "16"],
    ["sign-loop", "--steps", "64"],
    ["compare", "--points", "16"],
]


def _base_args(name: str, hp: str) -> list[str]:
    """Valid values of the other required hyperparameters."""
    return ["--b", "0.1"] if name == "custom" and hp != "b" else []


def _cli_cases() -> list[tuple[list[str], str]]:
    cases = []
    for i, (name, hp, value) in enumerate(TRIPLES):
        for command in chosen(i, 0, SWEPT_COMMANDS):
            flag = "--" + hp.replace("_", "-")
            cases.append(([command[0], name, *command[1:], *_base_args(name, hp), flag, value], hp))
    return cases


CLI_CASES = _cli_cases()


NAN_WORD = re.compile(r"(?<![A-Za-z_])nan(?![A-Za-z_])", re.IGNORECASE)


def check_cli_case(args: list[str], hp: str) -> None:
    with time_bound():
        result = CliRunner().invoke(main, args)
    assert not isinstance(result.exception, CaseTimeout), (args, "hang")
    assert result.exit_code in (0, 2), (args, result.exit_code, result.stderr[-600:], repr(result.exception))
    stderr, stdout = result.stderr, result.stdout
    assert "Traceback" not in stderr + stdout, (args, stderr)
    if result.exit_code == 2:
        lines = stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), (args, stderr)
        assert "Warning" not in stderr, (args, stderr)
        assert stdout == "", (args, stdout[:300])
        return
    assert not NAN_WORD.search(stdout), (args, "printed nan", stdout[:600])
    assert all(line.startswith("WARNING: ") for line in stderr.splitlines()), (args, stderr)


@pytest.mark.parametrize(("args", "hp"), CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_cli_extreme_value(args: list[str], hp: str) -> None:
    check_cli_case(args, hp)


def test_command_line_numerics_hides_numpy_text_and_the_errno_tuple(capsys: pytest.CaptureFixture[str]) -> None:
    with common.command_line_numerics():
        assert math.isnan(float(np.nanmax(np.array([np.nan]))))  # "All-NaN slice encountered"
        assert math.isnan(float(np.nanmean(np.array([]))))  # "Mean of empty slice"
    assert capsys.readouterr().err == ""
    with pytest.raises(common.CliError) as caught:
        with common.command_line_numerics():
            _ = 10.0**400  # Python's float power: OverflowError(34, 'Numerical result out of range')
    message = caught.value.format_message()
    assert message.startswith("numbers overflow the floating-point range: ")
    assert "34" not in message


# ----------------------------------------------------------------------------- issue 13: a newcomer's findings


def test_plot_into_a_missing_folder_creates_nothing_and_a_good_path_still_works(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "dir"
    result = CliRunner().invoke(main, ["predict", "momentum", "--steps", "5", "--plot", str(missing / "x.png")])
    check_one_line_error(result, [], f"folder '{missing}' does not exist")
    assert not (tmp_path / "no").exists()
    result = CliRunner().invoke(main, ["predict", "momentum", "--steps", "5", "--plot", str(tmp_path / "x.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "x.png").stat().st_size > 0


def test_the_plot_style_options_work_with_plot(tmp_path: Path) -> None:
    """The refused combinations above are refused for the missing --plot only: with it they run."""
    path = tmp_path / "bode.png"
    args = ["response", "momentum", "--plot", str(path), "--title", "T", "--size", "4x3", "--scale", "linear"]
    result = CliRunner().invoke(main, [*args, "--magnitude-only"])
    assert result.exit_code == 0, result.output
    assert path.stat().st_size > 0


EXIT_FILES = {
    "import": "import sys\nsys.exit(3)\n",
    "factory": "import sys\n\ndef slow():\n    sys.exit(3)\n",
    "build": (
        "import sys\nfrom optfilters import CATALOGUE\nimport dataclasses\n"
        "def _build(params):\n    sys.exit(3)\n"
        "slow = dataclasses.replace(CATALOGUE['momentum'], name='slow', build=_build)\n"
    ),
}


@pytest.mark.parametrize("where", sorted(EXIT_FILES))
@pytest.mark.parametrize("command", sorted(n for n, c in COMMANDS.items() if isinstance(c, OptimizerGroup)))
def test_a_model_file_calling_sys_exit_is_one_line(tmp_path: Path, command: str, where: str) -> None:
    """Issue 13: ``sys.exit(3)`` in a model file (at import, in its factory or its build) on every command that
    takes ``file.py:NAME``: exit 2 and one line naming the file (it exited 3 with nothing on stderr)."""
    path = tmp_path / "exits.py"
    path.write_text(EXIT_FILES[where])
    args = [command, f"{path}:slow", *REQUIRED.get(command, [])]
    result = CliRunner().invoke(main, args)
    check_one_line_error(result, args, r"called sys\.exit\(3\) while (loading|building the model)")
    assert (str(path) in result.stderr) if where == "import" else ("slow" in result.stderr)


@pytest.mark.parametrize("call", ["os._exit(3)", "os.abort()"])
@pytest.mark.parametrize("command", sorted(n for n, c in COMMANDS.items() if isinstance(c, OptimizerGroup)))
def test_a_model_file_ending_the_process_is_one_line(tmp_path: Path, command: str, call: str) -> None:
    """Issue 13: ``os._exit(3)`` (or ``os.abort()``) in a model file's factory ended the command with exit 3 (a
    core dump) and no message: now exit 2 and one line naming the call, on every command taking ``file.py:NAME``."""
    path = tmp_path / "ends.py"
    path.write_text(f"import os\n\ndef slow():\n    {call}\n")
    args = [command, f"{path}:slow", *REQUIRED.get(command, [])]
    result = CliRunner().invoke(main, args)
    check_one_line_error(result, args, rf"slow\(\) called {re.escape(call)} while building the model")


def test_a_keyboard_interrupt_in_a_model_file_is_not_swallowed(tmp_path: Path) -> None:
    from optfilters.user_models import load_entry

    path = tmp_path / "interrupts.py"
    path.write_text("raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        load_entry(f"{path}:slow")


@pytest.mark.parametrize(
    ("a", "words"),
    [
        ("1,-2,1", "repeated pole on the unit circle"),  # double pole at z = 1: h[t] = t + 1
        ("1,2,1", "repeated pole on the unit circle"),  # double pole at z = -1
        ("1,0,2,0,1", "repeated pole on the unit circle"),  # double pair at +-j
        ("1,-2.1,1.1", "pole(s) outside the unit circle"),  # poles 1 and 1.1
        ("1,-2,1.0000001", "pole(s) outside the unit circle"),  # a pair just outside, |p|^2 = 1.0000001
    ],
)
def test_unstable_wording_tells_repeated_on_the_circle_from_outside(a: str, words: str) -> None:
    """Issue 13: a double pole on the circle was worded "outside the unit circle (max |p| = 1)"."""
    result = CliRunner().invoke(main, ["response", "custom", "--b", "1", "--a", a, "--points", "3"])
    assert result.exit_code == 0, result.output
    assert f"UNSTABLE ({words}" in result.stdout
    assert f"is UNSTABLE: {words}" in result.stderr
    other = {"repeated pole on the unit circle", "pole(s) outside the unit circle"} - {words}
    assert not any(o in result.output for o in other)


_BALL = """
import dataclasses
import optfilters
from optfilters import CatalogueEntry, Hyperparameter


def _build(p):
    return dataclasses.replace(optfilters.get("momentum", momentum=p["momentum"]), name="{name}")


{name} = CatalogueEntry(
    "{name}",
    "a heavy ball, momentum {momentum}",
    (
        Hyperparameter("lr", 0.01, low=0.0, help="learning rate"),
        Hyperparameter("momentum", {momentum}, low=0.0, high=1.0, high_open=True, help="momentum"),
    ),
    _build,
)
"""


def _ball(name: str, momentum: float) -> Any:
    namespace: dict[str, Any] = {}
    exec(_BALL.format(name=name, momentum=momentum), namespace)  # the model file's text, run here
    return namespace[name]


def test_a_name_is_rebuilt_when_what_it_names_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The optimizer groups keep the command built for each NAME: an entry registered again under the same name, and
    ``mine.py:ball`` in another directory, ran with the first one's command (its default momentum 0.5, not 0.9)."""
    from optfilters.catalogue import register, unregister

    def momentum(name: str) -> float:
        result = CliRunner().invoke(main, ["describe", name, "--json"])
        assert result.exit_code == 0, result.output
        return float(json.loads(result.stdout)["hyperparameters"]["momentum"])

    for value in (0.5, 0.9):
        register(_ball("rebuiltball", value))
        try:
            assert momentum("rebuiltball") == value
        finally:
            unregister("rebuiltball")
    for value in (0.5, 0.9):
        folder = tmp_path / str(value)
        folder.mkdir()
        (folder / "mine.py").write_text(_BALL.format(name="ball", momentum=value))
        monkeypatch.chdir(folder)
        assert momentum("mine.py:ball") == value
