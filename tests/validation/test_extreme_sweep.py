"""Issue 13's sweep: every catalogue entry x every hyperparameter x extreme values, through the library's
analysis functions and the CLI's analysis commands, each case under a time bound (a hang fails, never blocks).

Each case ends in one of two ways:

- a refusal: the library raises :class:`~optfilters.InvalidHyperparameterError` /
  :class:`~optfilters.InvalidFilterError` (one line, naming the parameter); the CLI exits 2 with one stderr
  line, no traceback and no warning text;
- an answer: finite numbers or explicitly labelled ones (``inf``, ``unstable``, ``diverged``,
  ``undefined``), never a printed ``nan``, strict JSON, exit 0 with only ``WARNING:`` lines on stderr.

The full product (about 28 000 CLI and 12 000 library cases) takes hours, so the suite runs a deterministic
sample (:data:`STRIDE`, :data:`SLOW`); ``OPTFILTERS_FULL_SWEEP=1`` runs every command and function on every
triple.
"""

from __future__ import annotations

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
from optfilters.cli import main

import optfilters
from optfilters import InvalidFilterError, InvalidHyperparameterError

#: Seconds one case may take: a hang fails here instead of blocking CI (the slowest finished case, a sign
#: optimizer's relay steady state run up to a million steps, takes about 50 s on a loaded 2-core machine).
CASE_SECONDS = 90
FULL = os.environ.get("OPTFILTERS_FULL_SWEEP") == "1"

#: Extreme values of every class: zero, negative, not a number, infinite, the largest double, the smallest
#: subnormal, huge integers, just below one (betas near 1), text.
FLOAT_VALUES = ["0", "-1", "nan", "inf", "-inf", "1e308", "5e-324", "1000000000", "0.9999999999999999", "abc"]
INT_VALUES = ["0", "-1", "nan", "inf", "1e308", "1000000000", "100000", "2.5", "abc"]
LIST_VALUES = ["1e308,0.5", "nan,0.5", "0,0", "-1,2", "abc", "1e308"]

#: The analysis commands that take an optimizer (observe trains with torch: its own tests).
SWEPT_COMMANDS = [
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


#: Sampling (the default run): triple ``i`` goes to the CLI when ``i % STRIDE == 0`` and to the library when
#: ``i % STRIDE == STRIDE // 2``, through command/function number ``i // STRIDE`` round-robin; with about ten
#: values per hyperparameter and STRIDE coprime to 6, 9 and 10 (the value counts), every value class meets
#: every command over the entries.
STRIDE = 7
#: (command or function, entry) pairs whose valid cases are slow but finish (a sign optimizer's relay steady
#: state, continued up to a million steps; AdEMAMix's slow EMA and ADOPT settling over 1e5 steps in large-signal): run
#: in the full sweep only, so the default run stays near two minutes.
SLOW = {
    ("predict", "lion"),
    ("predict", "lion-cautious"),
    ("predict", "signum"),
    ("large-signal", "ademamix"),
    ("large-signal", "ademamix-scheduled"),
    ("large-signal", "adopt"),
}
#: Open failures (strict expected failures: fixing one turns its case green and the xfail red): a mean that
#: overflows to inf - inf in the noisy-quadratic recursion at lr or weight decay 1e308 prints nan in the
#: library (the CLI labels it), Schedule-Free's r = 1e308 overflows in its weight, Yogi's beta1 = 0 error
#: does not name beta1.
KNOWN_OPEN = {
    ("predict", "nesterov", "momentum", "1e308"),
    ("predict", "adamw", "lr", "1e308"),
    ("predict", "amsgrad", "weight_decay", "1e308"),
    ("predict", "adamax", "lr", "1e308"),
    ("predict", "qhadam", "lr", "1e308"),
    ("predict", "qhadam", "weight_decay", "1e308"),
    ("predict", "asgd", "lr", "1e308"),
    ("predict", "adabelief", "lr", "1e308"),
    ("predict", "sgd-schedule-free", "r", "1e308"),
    ("summarise", "yogi", "beta1", "0"),
}


def _chosen(i: int, offset: int, choices: list[Any]) -> list[Any]:
    if FULL:
        return choices
    return [choices[(i // STRIDE) % len(choices)]] if i % STRIDE == offset else []


def _cli_cases() -> list[tuple[list[str], str]]:
    cases = []
    for i, (name, hp, value) in enumerate(TRIPLES):
        for command in _chosen(i, 0, SWEPT_COMMANDS):
            if not FULL and (command[0], name) in SLOW:
                continue
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


def _no_nan(value: Any, where: str) -> None:
    array = np.asarray(value, dtype=np.complex128 if np.iscomplexobj(value) else np.float64)
    assert not np.isnan(array).any(), f"{where} has nan"


def _library_call(function: str, name: str, settings: dict[str, Any]) -> None:
    """Run one public analysis function; assert its numbers are finite or labelled (inf, or a documented nan)."""
    from optfilters.closed_loop import closed_loop
    from optfilters.noisy_quadratic import predict

    model = optfilters.get(name, **settings)
    where = f"{function}({name}, {settings})"
    if function == "get":
        assert model.describe()
    elif function == "summarise":
        summary = optfilters.summarise(model)
        for key, value in summary.as_dict().items():
            # mean_delay is nan without a finite, non-zero DC gain (documented; the CLI prints "undefined")
            if key != "mean_delay" and isinstance(value, float):
                assert not math.isnan(value), f"{where}.{key} is nan"
    elif function == "frequency_response":
        response = optfilters.frequency_response(model, n=16)
        _no_nan(response.magnitude, where)
    elif function == "step_response":
        step = optfilters.step_response(model, n=64)
        raw, compensated = np.asarray(step.raw), np.asarray(step.compensated)
        _no_nan(raw, where)
        # documented: nan in `compensated` only after the recursion overflowed (raw is inf: diverged)
        overflowed = np.maximum.accumulate(~np.isfinite(raw))
        assert not np.any(np.isnan(compensated) & ~overflowed), f"{where}: nan before any overflow"
    elif function == "stability":
        interval = closed_loop(model).stability()
        # max_stable_lr_curvature is nan exactly when there is no stable interval (interval None: "never stable")
        assert math.isnan(interval.max_stable_lr_curvature) == (interval.interval is None), where
    else:
        prediction = predict(model, curvatures=[1.0], steps=64)
        _no_nan(prediction.expected_loss, where)
        assert not math.isnan(prediction.rate), f"{where}: rate is nan"


def _library_cases() -> list[Any]:
    cases = []
    for i, (name, hp, value) in enumerate(TRIPLES):
        for function in _chosen(i, STRIDE // 2, LIBRARY):
            if not FULL and (function, name) in SLOW:
                continue
            marks = [pytest.mark.xfail(strict=True, reason="open")] if (function, name, hp, value) in KNOWN_OPEN else []
            cases.append(pytest.param(function, name, hp, value, marks=marks, id=f"{function} {name} {hp} {value}"))
    return cases


LIBRARY_CASES = _library_cases()


def _library_value(hp_kind: str, text: str) -> Any:
    if hp_kind == "floats":
        return [float(v) if v != "abc" else v for v in text.split(",")]
    if text == "abc":
        return text
    number = float(text)
    return int(number) if hp_kind == "int" and number.is_integer() and abs(number) < 1e300 else number


@pytest.mark.parametrize(("function", "name", "hp", "value"), LIBRARY_CASES)
def test_library_extreme_value(function: str, name: str, hp: str, value: str) -> None:
    kind = next(h.kind for h in optfilters.CATALOGUE[name].hyperparameters if h.name == hp)
    settings = {hp: _library_value(kind, value)}
    if name == "custom" and hp != "b":
        settings["b"] = (0.1,)
    with time_bound(), np.errstate(all="ignore"):
        try:
            _library_call(function, name, settings)
        except (InvalidHyperparameterError, InvalidFilterError) as exc:
            message = str(exc)
            assert "\n" not in message, message
            assert hp in message or name in message or "b" in settings, message
