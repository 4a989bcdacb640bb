"""Issue 13's sweep: every catalogue entry x every hyperparameter x extreme values, through the library's
analysis functions and the CLI's analysis commands, each case under a time bound (a hang fails, never blocks).

Each case ends in one of two ways:

- a refusal: the library raises :class:`~optfilters.InvalidHyperparameterError` /
  :class:`~optfilters.InvalidFilterError` (one line, naming the parameter); the CLI exits 2 with one stderr
  line, no traceback and no warning text;
- an answer: finite numbers or explicitly labelled ones (``inf``, ``unstable``, ``diverged``,
  ``undefined``), never a printed ``nan``, strict JSON, exit 0 with only ``WARNING:`` lines on stderr.

The full product (about 2 600 CLI cases) takes several minutes, so the suite runs a deterministic sample:
every (entry, hyperparameter, value) triple once, through one command chosen round-robin (the triple's
index modulo the number of commands, so each command sees every value class); ``OPTFILTERS_FULL_SWEEP=1``
runs every command on every triple.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import optfilters
from optfilters import InvalidFilterError, InvalidHyperparameterError
from optfilters.cli import main

#: Seconds one case may take (the slowest valid extreme case takes about 2 s on the CI machine).
CASE_SECONDS = 30
FULL = os.environ.get("OPTFILTERS_FULL_SWEEP") == "1"

#: Extreme values of every class: zero, negative, not a number, infinite, the largest double, the smallest
#: subnormal, huge integers, just below one (betas near 1), text.
FLOAT_VALUES = ["0", "-1", "nan", "inf", "-inf", "1e308", "5e-324", "1000000000", "0.9999999999999999", "abc"]
INT_VALUES = ["0", "-1", "nan", "inf", "1e308", "1000000000", "100000", "2.5", "abc"]
LIST_VALUES = ["1e308,0.5", "nan,0.5", "0,0", "-1,2", "abc", "1e308"]

#: The analysis commands that take an optimizer (observe trains with torch: its own tests).
COMMANDS = [
    ["describe"],
    ["response", "--points", "16"],
    ["poles"],
    ["step", "--steps", "64"],
    ["impulse", "--steps", "64"],
    ["stability", "--points", "16"],
    ["predict", "--steps", "64"],
    ["margins"],
    ["sensitivity", "--points", "16"],
    ["locus", "--points", "16"],
    ["thresholds", "--run-steps", "64"],
    ["large-signal", "--before", "16", "--burst", "16"],
    ["sign-loop", "--steps", "64"],
    ["compare", "--points", "16"],
]
#: Result fields whose nan is documented as "not applicable" (the z = -1 shortcut of a loop without one).
NAN_FIELDS = {"nyquist_estimate"}
LIBRARY = ["get", "summarise", "frequency_response", "step_response", "stability", "predict"]


class CaseTimeout(Exception):
    """A case ran past :data:`CASE_SECONDS`."""


@contextmanager
def time_bound(seconds: int = CASE_SECONDS) -> Iterator[None]:
    """Raise :class:`CaseTimeout` in the main thread after ``seconds`` (SIGALRM; the suite runs on Linux)."""

    def expire(signum: int, frame: Any) -> None:
        raise CaseTimeout(f"ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _triples() -> list[tuple[str, str, str]]:
    out = []
    for name in optfilters.names():
        entry = optfilters.CATALOGUE[name]
        for hp in entry.hyperparameters:
            if hp.kind in ("bool", "str"):
                continue
            values = {"int": INT_VALUES, "floats": LIST_VALUES}.get(hp.kind, FLOAT_VALUES)
            out += [(name, hp.name, value) for value in values]
    return out


TRIPLES = _triples()


def _base_args(name: str, hp: str) -> list[str]:
    """Valid values of the other required hyperparameters."""
    return ["--b", "0.1"] if name == "custom" and hp != "b" else []


def _cli_cases() -> list[tuple[list[str], str]]:
    cases = []
    for i, (name, hp, value) in enumerate(TRIPLES):
        commands = COMMANDS if FULL else [COMMANDS[i % len(COMMANDS)]]
        for command in commands:
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


def _finite_or_labelled(value: Any, where: str) -> None:
    """Numbers of a result are finite, or inf (a labelled quantity); never nan unless the field says why."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.name not in NAN_FIELDS}
    if isinstance(value, np.ndarray) and value.dtype.kind in "fc":
        assert not np.isnan(value).any(), f"{where} has nan"
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _finite_or_labelled(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for item in value:
            _finite_or_labelled(item, where)
    elif isinstance(value, (float, np.floating)):
        assert not math.isnan(value), f"{where} is nan"


def _library_call(function: str, name: str, settings: dict[str, Any]) -> Any:
    from optfilters.closed_loop import closed_loop
    from optfilters.noisy_quadratic import predict

    model = optfilters.get(name, **settings)
    if function == "get":
        return model.describe() if hasattr(model, "describe") else str(model)
    if function == "summarise":
        return optfilters.summarise(model)
    if function == "frequency_response":
        return optfilters.frequency_response(model, n=16)
    if function == "step_response":
        return optfilters.step_response(model, n=64)
    if function == "stability":
        interval = closed_loop(model).stability()
        return {"interval": interval.interval, "max": interval.max_stable_lr_curvature}
    return predict(model, curvatures=[1.0], steps=64)


def _library_cases() -> list[tuple[str, str, str, str]]:
    cases = []
    for i, (name, hp, value) in enumerate(TRIPLES):
        functions = LIBRARY if FULL else [LIBRARY[i % len(LIBRARY)]]
        cases += [(function, name, hp, value) for function in functions]
    return cases


LIBRARY_CASES = _library_cases()


def _library_value(hp_kind: str, text: str) -> Any:
    if hp_kind == "floats":
        return [float(v) if v != "abc" else v for v in text.split(",")]
    if text == "abc":
        return text
    number = float(text)
    return int(number) if hp_kind == "int" and number.is_integer() and abs(number) < 1e300 else number


@pytest.mark.parametrize(("function", "name", "hp", "value"), LIBRARY_CASES, ids=[" ".join(c) for c in LIBRARY_CASES])
def test_library_extreme_value(function: str, name: str, hp: str, value: str) -> None:
    kind = next(h.kind for h in optfilters.CATALOGUE[name].hyperparameters if h.name == hp)
    settings = {hp: _library_value(kind, value)}
    if name == "custom" and hp != "b":
        settings["b"] = (0.1,)
    with time_bound(), np.errstate(all="ignore"):
        try:
            result = _library_call(function, name, settings)
        except (InvalidHyperparameterError, InvalidFilterError) as exc:
            message = str(exc)
            assert "\n" not in message, message
            assert hp in message or name in message or "b" in settings, message
            return
    _finite_or_labelled(result, f"{function}({name}, {hp}={value})")
