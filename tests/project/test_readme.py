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


#: ``...`` on a line of its own in a console block stands for printed lines the README leaves out.
ELLIPSIS = "..."

#: ``~X`` in a shown line stands for a number that is rounding noise: the CLI prints some number of
#: magnitude below 10 X there (0 included), which differs between machines and library versions.
_NOISE = re.compile(r"~(\d+(?:\.\d+)?(?:e[-+]?\d+)?)")
_NUMBER = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?)"


def _fenced_blocks(language: str) -> list[str]:
    """The README's fenced blocks of ``language`` ("" for a plain block), paired fence by fence (a regular
    expression over the text pairs the closing fence of a ```python block with the next opening one)."""
    blocks: list[str] = []
    current: list[str] | None = None
    kind = ""
    for line in README.splitlines():
        if line.startswith("```"):
            if current is None:
                current, kind = [], line[3:].strip()
            else:
                if kind == language:
                    blocks.append("\n".join(current) + "\n")
                current = None
        elif current is not None:
            current.append(line)
    assert current is None, "a fenced block is not closed"
    return blocks


def _console_blocks() -> list[tuple[str, list[str]]]:
    """``$ optfilters ...`` commands in fenced blocks, each with the lines shown under it (``...`` kept)."""
    found: list[tuple[str, list[str]]] = []
    for block in _fenced_blocks(""):
        command: str | None = None
        shown: list[str] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command is not None:
                    found.append((command, shown))
                command, shown = line[2:], []
            elif line.strip():
                shown.append(ELLIPSIS if line.strip() == ELLIPSIS else line.rstrip())
        if command is not None:
            found.append((command, shown))
    return found


def shown_matches(shown: list[str], printed: list[str]) -> bool:
    """Whether the README's lines are the printed lines (blank lines aside) in order, every omission marked
    by a ``...`` line (any number of lines, at least one), and every ``~X`` a printed number below 10 X.

    Examples
    --------
    >>> shown_matches(["a", "...", "d"], ["a", "b", "c", "d"]), shown_matches(["a", "d"], ["a", "b", "c", "d"])
    (True, False)
    >>> shown_matches(["error ~1e-15"], ["error 3.26e-15"]), shown_matches(["error ~1e-15"], ["error 2e-13"])
    (True, False)
    """
    pattern, bounds = "", []
    for line in shown:
        if line == ELLIPSIS:
            pattern += r"(?:[^\n]*\n)+?"
            continue
        parts = _NOISE.split(line)
        pattern += re.escape(parts[0])
        for bound, literal in zip(parts[1::2], parts[2::2], strict=True):
            pattern += _NUMBER + re.escape(literal)
            bounds.append(float(bound))
        pattern += r"\n"
    text = "".join(line.rstrip() + "\n" for line in printed if line.strip())
    match = re.fullmatch(pattern, text)
    if match is None:
        return False
    values = [float(v) for v in match.groups()]
    return all(abs(v) < 10.0 * b for v, b in zip(values, bounds, strict=True))


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
        if line != ELLIPSIS:
            assert _NOISE.search(line) or line in printed, f"README shows {line!r} for {command!r}, not printed"
    assert shown_matches(shown, printed), (
        f"README's block for {command!r} is not the printed output with '...' for each omission:\n" + "\n".join(printed)
    )


def test_readme_has_console_examples_of_the_main_commands() -> None:
    commands = {shlex.split(command)[1] for command, _ in _console_blocks()}
    assert {"response", "compare", "stability", "predict", "identify"} <= commands


def test_python_examples_run() -> None:
    blocks = _fenced_blocks("python")
    assert blocks
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})


def test_an_omission_needs_an_ellipsis_and_noise_a_stated_bound() -> None:
    printed = ["head", "a 1", "b", "error 3.26e-15", "tail"]
    assert shown_matches(["...", "a 1", "b", "error ~1e-15", "..."], printed)
    assert shown_matches(["head", "a 1", "...", "tail"], printed)
    assert not shown_matches(["a 1", "b", "error ~1e-15", "..."], printed)  # the first line left out silently
    assert not shown_matches(["head", "a 1", "error ~1e-15", "tail"], printed)  # "b" left out silently
    assert not shown_matches(["head", "b", "a 1", "..."], printed)  # out of order
    assert not shown_matches(["...", "error ~1e-16", "..."], printed)  # 3.26e-15 is not below 1e-15
    assert not shown_matches(["...", "error 2.33e-15", "..."], printed)  # a noisy number shown as exact
    assert not shown_matches(["head", "...", "...", "tail"], ["head", "tail"])  # "..." stands for >= 1 line


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
