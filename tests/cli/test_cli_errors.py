"""Bad input on the command line: one line on stderr, exit code 2, no traceback, nothing on stdout."""

from __future__ import annotations

import re
from typing import Any

import pytest
from click.testing import CliRunner
from optfilters.cli import main

import optfilters


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


def _cli_args(settings: dict[str, Any]) -> list[str]:
    args = []
    for key, value in settings.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else f"--no-{flag[2:]}")
        elif isinstance(value, tuple):
            args += [flag, ",".join(repr(float(v)) for v in value)]
        else:
            args += [flag, repr(value) if isinstance(value, float) else str(value)]
    return args


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
    assert_one_line_error(["response", name, *_cli_args(settings)], pattern)


def test_no_name_is_one_line_not_the_help() -> None:
    line = assert_one_line_error(["response"], r"missing an optimizer NAME .*--help")
    assert "Usage:" not in line
