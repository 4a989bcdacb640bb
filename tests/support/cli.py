"""The CLI tests' shared helpers: invoke ``optfilters``, read its JSON, check a one-line error.

Used by the command tests of tests/cli/ (control, nonlinear, predict, identify, analysis, main), which had
each copied them.
"""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner, Result
from optfilters.cli.main import main


def run(*args: str) -> Result:
    """``optfilters ARGS...`` in-process (click's runner, stdout and stderr apart)."""
    return CliRunner().invoke(main, list(args))


def ok_json(*args: str) -> dict:
    """``optfilters ARGS... --json``: exit code 0 and the JSON object it printed."""
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_one_line_error(result: Result, pattern: str, empty_stdout: bool = False) -> None:
    """Exit code 2, exactly one stderr line ``Error: ...`` containing ``pattern``, no traceback.

    ``empty_stdout``: also nothing on stdout.
    """
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and pattern in lines[0], lines[0]
    assert "Traceback" not in result.output
    if empty_stdout:
        assert result.stdout == ""


def cli_args(settings: dict[str, Any]) -> list[str]:
    """Hyperparameter settings as command-line options (``--no-FLAG`` for False, tuples comma-separated)."""
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
