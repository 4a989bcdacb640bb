"""optfilters audit: verdicts and findings on optimizers with planted slips, the atlas files, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from optfilters.cli.main import main

from optfilters.audit import audit
from optfilters.identify import IdentificationError

ROOT = Path(__file__).resolve().parents[2]


AUDIT_FILE = str(ROOT / "tests/support/optimizers_for_audit.py")


# ----------------------------------------------------------------------------- CLI


def run(*args: str):
    return CliRunner().invoke(main, ["audit", *args])


def test_cli_json_on_stdout_progress_on_stderr(tmp_path: Path) -> None:
    result = run(AUDIT_FILE, "--only", "Signum", "--only", "SumMomentum", "--quick", "--json", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [c["verdict"] for c in data["classes"]] == ["sign-type", "linear"]
    assert "[1/2]" in result.stderr and "[2/2]" in result.stderr and "wrote" in result.stderr
    assert (tmp_path / "atlas.png").is_file()
    quiet = run(AUDIT_FILE, "--only", "SumMomentum", "--quick", "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert quiet.stdout.startswith("# Optimizer atlas:")


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["no_such_module_xyz"], "cannot import 'no_such_module_xyz'"),
        (["torch.optim", "--only", "Nope"], "exports no optimizer class 'Nope'"),
        (["torch.optim", "--time-limit", "0"], "--time-limit must be > 0 seconds"),
        (["torch.optim", "--time-limit", "x"], "'x' is not a number"),
        (["torch.optim", "--time-limit", "1_0"], "'1_0' is not a number"),
        (["torch.optim", "--time-limit", "inf"], "inf is not a finite number"),
        ([], "Missing argument 'MODULE'"),
    ],
)
def test_cli_errors_are_one_line_with_exit_code_2(args, pattern) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and pattern in lines[0], lines
    assert result.stdout == ""


def test_cli_module_import_stays_light() -> None:
    code = "import sys, optfilters.cli.audit; print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False False"


@pytest.mark.parametrize("exit_code", [0, 3])
def test_audit_of_a_module_that_exits_gives_the_same_error_every_time(tmp_path: Path, exit_code: int) -> None:
    """A file that calls sys.exit while imported: the same one-line error on every call in one process (the
    half-run module is not left in sys.modules for the next call to find, issue 13)."""
    path = tmp_path / f"exits_{exit_code}.py"
    path.write_text(
        f"import sys\nimport torch\n\n\nclass Mine(torch.optim.SGD):\n    pass\n\n\nsys.exit({exit_code})\n"
    )
    messages = []
    for _ in range(3):
        with pytest.raises(IdentificationError) as info:
            audit(str(path), quick=True)
        messages.append(str(info.value))
    assert messages == [f"the optimizer's code called sys.exit({exit_code}) while being imported, built or probed"] * 3
    assert not any(getattr(m, "__file__", None) == str(path) for m in list(sys.modules.values()))
    for _ in range(2):  # the command line too: exit 2, one line, each time
        result = CliRunner().invoke(main, ["audit", str(path), "--quick"])
        assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1, result.stderr
        assert f"sys.exit({exit_code})" in result.stderr


def test_audit_of_a_class_calling_os_exit_reports_it_and_goes_on(tmp_path: Path) -> None:
    """Issue 13: ``os._exit(5)`` in a step() ended ``optfilters audit`` with exit 5 and no output; now the class
    is reported as not probed, naming the call, and the audit goes on."""
    path = tmp_path / "ends.py"
    path.write_text(
        "import os\nimport torch\n\n\nclass Ends(torch.optim.SGD):\n    def step(self, closure=None):\n"
        "        os._exit(5)\n"
    )
    result = run(str(path), "--quick", "--json")
    assert result.exit_code == 0, result.output
    assert "called os._exit(5) while being imported, built or probed" in result.stdout
