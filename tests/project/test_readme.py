"""The README stays true: its commands, its Python example and the CLI output it shows."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner
from optfilters.cli import main

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
TEST_COMMAND = 'pip install torch==2.13.0 -e ".[test]" && python -m pytest'
MAIN_COMMAND = "pip install torch==2.13.0 -e . && optfilters figures --all --out figures"


def _console_blocks() -> list[tuple[str, list[str]]]:
    """``$ optfilters ...`` commands in fenced blocks, each with the output lines shown under it."""
    found: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```\n(.*?)```", README, re.S):
        command: str | None = None
        shown: list[str] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command is not None:
                    found.append((command, shown))
                command, shown = line[2:], []
            elif line.strip() and line.strip() != "...":
                shown.append(line)
        if command is not None:
            found.append((command, shown))
    return found


def test_first_screen_gives_the_two_commands_and_ci_runs_the_test_command() -> None:
    first_screen = "\n".join(README.splitlines()[:24])
    assert MAIN_COMMAND in first_screen
    assert TEST_COMMAND in first_screen
    ci_lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci_lines[-1] == TEST_COMMAND


@pytest.mark.parametrize(("command", "shown"), _console_blocks(), ids=lambda v: v if isinstance(v, str) else "")
def test_console_output_shown_in_the_readme_is_what_the_cli_prints(command: str, shown: list[str]) -> None:
    args = shlex.split(command)
    assert args[0] == "optfilters"
    result = CliRunner().invoke(main, args[1:])
    assert result.exit_code == 0, result.output
    printed = [line.rstrip() for line in result.output.splitlines()]
    for line in shown:
        assert line.rstrip() in printed, f"README shows {line!r} for {command!r}, the CLI does not print it"


def test_readme_has_console_examples_of_the_main_commands() -> None:
    commands = {shlex.split(command)[1] for command, _ in _console_blocks()}
    assert {"response", "compare", "stability", "predict", "identify"} <= commands


def test_python_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})


def test_reproducibility_paragraph_states_the_tolerances_the_code_applies() -> None:
    """Each tolerance README quotes is the constant named next to it (the behaviours: tests/papers/test_papers.py)."""
    from optfilters.papers import iqc_worst_case

    from optfilters import papers

    start = README.index("Runs are deterministic")
    paragraph = " ".join(README[start : README.index("\n\n", start)].split())
    for name in (
        "EXACT_RTOL",
        "ROUNDING_LEVEL",
        "CHECK_ERROR_FRACTION",
        "MACHINE_RTOL",
        "FIGURE_RMS",
        "MACHINE_FIGURE_RMS",
    ):
        quoted = re.search(rf"(\d[\d.e+-]*)[^\d(]*\(`{name}`", paragraph)
        assert quoted is not None, name
        assert float(quoted.group(1)) == getattr(papers, name), name
    assert f"within {iqc_worst_case.RATES_REPRODUCIBILITY:g} (" in paragraph
    assert f"bisection to {iqc_worst_case.BISECTION_TOLERANCE:g}, rounded up" in paragraph
    assert "IQC certified tuning" in paragraph and {"tuning", "counterexample"} <= set(iqc_worst_case.MACHINE_DEPENDENT)
    assert "written with ten significant digits" in paragraph and papers.DIGITS == 10
