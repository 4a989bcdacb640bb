"""The shared CLI factory (cli/_common.py): generated per-optimizer subcommands, option merging, JSON."""

from __future__ import annotations

import json
import math
from typing import Any

import click
import numpy as np
import pytest
from click.testing import CliRunner
from optfilters.cli import _common as common
from optfilters.cli import main

import optfilters


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
