"""The installed ``optfilters`` console script, the import budget of the analysis commands, and ``--plot``."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from optfilters.cli import main


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
