"""``optfilters identify``: JSON output, constructor options, comparisons and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from optfilters.cli.identify import parse_constructor_options, parse_value
from optfilters.cli.main import main

from tests.support.cli import assert_one_line_error

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
IDENTIFY_FILE = ROOT / "tests/support/optimizers_for_identify.py"


def run(*args: str):
    return CliRunner().invoke(main, ["identify", *args])


def test_json_for_nesterov_sgd() -> None:
    result = run("torch.optim.SGD", "--momentum", "0.9", "--nesterov", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["linear"] is True and data["time_invariant"] is True
    # torch Nesterov: H = ((1 + mu) - mu z^-1) / (1 - mu z^-1)
    assert data["b"] == pytest.approx([1.9, -0.9], rel=1e-9)
    assert data["a"] == pytest.approx([1.0, -0.9], rel=1e-9)
    assert data["poles"][0] == pytest.approx([0.9, 0.0], abs=1e-9)
    assert data["zeros"][0] == pytest.approx([0.9 / 1.9, 0.0], abs=1e-9)
    assert data["options"] == {"momentum": 0.9, "nesterov": True, "lr": 1.0}


def test_json_for_adam_has_null_filter_and_parses_tuples() -> None:
    result = run("torch.optim.Adam", "--betas", "0.5,0.9", "--json", "--max-background", "1024")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["linear"] is False and data["time_invariant"] is False
    assert data["b"] is None and data["a"] is None and data["poles"] is None and data["zeros"] is None
    assert data["options"]["betas"] == [0.5, 0.9]
    assert data["visible"]["filter"]["poles"] is not None


def test_text_output_and_key_value_forms() -> None:
    result = run("torch.optim.SGD", "--momentum=0.5", "--no-nesterov", "--lr", "0.1")
    assert result.exit_code == 0, result.output
    assert "torch.optim.SGD(momentum=0.5, nesterov=False, lr=0.1) probed at lr=0.1" in result.stdout
    assert "filter: b = [1], a = [1, -0.5]" in result.stdout


def test_compare_with_the_catalogue_audits_a_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(IDENTIFY_FILE.parent))
    hp = ["--kp", "1", "--ki", "2", "--kd", "3", "--momentum", "0.8"]
    good = run("optimizers_for_identify.PID", *hp, "--compare", "pid", "--json")
    assert good.exit_code == 0, good.output
    assert json.loads(good.stdout)["comparison"]["match"] is True
    # The buggy one takes an extra keyword (buggy): the comparison leaves it out and says so.
    bad = run("optimizers_for_identify.PID", *hp, "--buggy", "--compare", "pid", "--json")
    assert bad.exit_code == 0, bad.output
    data = json.loads(bad.stdout)
    # kp + (ki + kd (1 - beta)) / (1 - beta z^-1) instead of the PID's kp + ki/(..) + kd (1-beta)(1-z^-1)/(..)
    assert data["b"] == pytest.approx([1 + 2 + 3 * 0.2, -0.8], rel=1e-9)
    comparison = data["comparison"]
    assert comparison["match"] is False
    assert comparison["dc_gain"][0] - comparison["dc_gain"][1] == pytest.approx(3.0, rel=1e-9)
    assert any("left out: buggy" in line for line in comparison["differences"])
    text = run("optimizers_for_identify.PID", *hp, "--buggy", "--compare", "pid")
    assert text.exit_code == 0
    assert "DIFFERENT: the identified filter differs from catalogue 'pid'" in text.stdout
    assert "zeros differ" in text.stdout


def test_compare_text() -> None:
    result = run("torch.optim.SGD", "--momentum", "0.9", "--dampening", "0.5", "--compare", "sgd")
    assert result.exit_code == 0, result.output
    assert "MATCH: the identified filter equals catalogue 'sgd'" in result.stdout
    assert "time invariance: no" in result.stdout


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["no_such_module_abc.Optim"], "cannot import 'no_such_module_abc.Optim'"),
        (["torch.optim.Adma"], "did you mean 'Adam'"),
        (["torch.optim"], "is not an optimizer class"),
        (["collections.OrderedDict"], "has no step() method"),
        (["torch.optim.SGD", "--lr", "-1"], "torch.optim.SGD(lr=-1) failed: ValueError: Invalid learning rate"),
        (["torch.optim.SGD", "--nesterov"], "Nesterov momentum requires a momentum"),
        (["torch.optim.SGD", "--momentun", "0.9"], "unexpected keyword argument 'momentun'"),
        (["torch.optim.SGD", "--steps", "ten"], "--steps must be an integer, got 'ten'"),
        (["torch.optim.SGD", "--steps", "8"], "steps must be in [48, 1000000], got 8"),
        (["torch.optim.SGD", "stray"], "unexpected argument 'stray'"),
        (["torch.optim.SGD", "--compare", "adma"], "unknown optimizer 'adma'"),
        (["torch.optim.SGD", "--momentum", "1", "--momentum", "2"], "--momentum given twice"),
        (["--momentum", "0.9"], "give the optimizer's dotted path first"),
        ([], "Missing argument 'PATH'"),
        (["torch.optim.SGD", "--time-limit", "0"], "--time-limit must be > 0 seconds, got 0"),
        (["torch.optim.SGD", "--time-limit", "nan"], "--time-limit"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(args, pattern) -> None:
    assert_one_line_error(run(*args), pattern, empty_stdout=True)


def test_option_escape_for_clashing_names() -> None:
    result = run("torch.optim.SGD", "-o", "momentum=0.25", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["a"] == pytest.approx([1.0, -0.25], rel=1e-9)
    assert_one_line_error(run("torch.optim.SGD", "-o", "momentum"), "--option needs KEY=VALUE", empty_stdout=True)


def test_value_parsing() -> None:
    assert parse_value("0.9,0.999") == (0.9, 0.999)
    assert parse_value("[1, 2]") == (1, 2)
    assert parse_value("-3") == -3 and parse_value("-1e-3") == -0.001 and parse_value(".5") == 0.5
    assert parse_value("False") is False and parse_value("NULL") is None
    assert parse_value("name") == "name"
    options = parse_constructor_options(["--weight-decay", "-0.5", "--amsgrad", "--betas=0.8,0.9"])
    assert options == {"weight_decay": -0.5, "amsgrad": True, "betas": (0.8, 0.9)}


def test_importing_the_command_module_does_not_import_torch() -> None:
    code = "import sys, optfilters.cli.main; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


AUDIT_FILE = str(ROOT / "tests/support/optimizers_for_audit.py")


def test_compare_on_a_lion_like_class_keeps_the_identification() -> None:
    pytest.importorskip("pytorch_optimizer")
    result = run("pytorch_optimizer.Lion", "--compare", "lion")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "best linear approximation under a Gaussian dither" in out and "verdict: sign-type" in out
    assert "MATCH: the identified best linear approximation equals catalogue 'lion'" in out
    assert "betas[0] -> beta1 = 0.9 (default)" in out and "not mapped, left out: weight_decouple=True" in out


def test_comparison_that_cannot_be_made_still_prints_the_identification() -> None:
    result = run(f"{AUDIT_FILE}:Signum", "--no-dither", "--compare", "lion", "--max-background", "1024")
    assert result.exit_code == 0, result.output
    assert "verdict: sign-type" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("comparison with catalogue 'lion' not possible: ")
    data = json.loads(run(f"{AUDIT_FILE}:Signum", "--no-dither", "--compare", "lion", "--json").stdout)
    assert data["verdict"] == "sign-type" and "not possible" in data["comparison"]["error"]


def test_explicit_keyword_mapping_and_file_paths() -> None:
    args = [f"{AUDIT_FILE}:Signum", "--compare", "lion", "--map", "momentum=beta1,beta2", "--json"]
    data = json.loads(run(*args).stdout)
    assert data["comparison"]["match"] is True
    assert data["comparison"]["keywords"]["kwargs"] == {"beta1": 0.9, "beta2": 0.9}
    muon = json.loads(run("torch.optim.Muon", "--json", "--max-background", "1024").stdout)
    assert muon["layout"] == "matrix" and muon["verdict"] == "matrix" and muon["matrix"]["orthogonalising"] is True


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["torch.optim.SGD", "--map", "momentum=beta1"], "--map needs --compare NAME"),
        (["torch.optim.SGD", "--compare", "lion", "--map", "momentum"], "--map needs KEY=NAME[,NAME]"),
        (["torch.optim.SGD", "--compare", "lion", "--map", "momentum=beta9"], "has no hyperparameter 'beta9'"),
        (["torch.optim.SGD", "--layout", "cube"], "'cube' is not one of"),
        (["nofile_i15.py:Opt"], "no such file 'nofile_i15.py'"),
    ],
)
def test_more_one_line_errors(args, pattern) -> None:
    assert_one_line_error(run(*args), pattern, empty_stdout=True)


HARD_EXITS = {
    "os._exit(5)": "os._exit(5)",
    "os.abort()": "os.abort()",
    "os.kill(os.getpid(), signal.SIGTERM)": "os.kill(os.getpid(), signal.SIGTERM)",
}


@pytest.mark.parametrize("call", sorted(HARD_EXITS))
@pytest.mark.parametrize("where", ["import", "init", "step"])
def test_an_optimizer_ending_the_process_is_one_line(tmp_path: Path, call: str, where: str) -> None:
    """Issue 13: a step() calling ``os._exit(5)`` ended optfilters with exit 5 and no message (os.abort: a core
    dump, SIGTERM: killed); now exit 2 and one line naming the call, and the real os functions are back after."""
    import os

    body = {"import": f"{call}\n", "init": "", "step": ""}[where]
    init = f"        {call}\n" if where == "init" else ""
    step = f"        {call}\n" if where == "step" else "        super().step(closure)\n"
    path = tmp_path / "ends.py"
    path.write_text(
        "import os\nimport signal\nimport torch\n\n\nclass Ends(torch.optim.SGD):\n"
        f"    def __init__(self, params, lr=0.1):\n        super().__init__(params, lr=lr)\n{init}\n"
        f"    def step(self, closure=None):\n{step}\n{body}"
    )
    real = (os._exit, os.abort, os.kill)
    assert_one_line_error(
        run(f"{path}:Ends"), f"the optimizer's code called {HARD_EXITS[call]} while being", empty_stdout=True
    )
    assert (os._exit, os.abort, os.kill) == real


def test_identify_of_a_step_that_sleeps_ends_at_the_time_limit(tmp_path: Path) -> None:
    """Issue 13: ``identify file.py:Sleeps`` (a step() calling time.sleep(1000)) hung forever; with
    ``--time-limit 4`` it ends in one line, exit 2, well before the sleep would."""
    import time

    path = tmp_path / "sleeps.py"
    path.write_text(
        "import time\nimport torch\n\n\nclass Sleeps(torch.optim.SGD):\n"
        "    def step(self, closure=None):\n        time.sleep(1000)\n"
    )
    started = time.monotonic()
    assert_one_line_error(run(f"{path}:Sleeps", "--time-limit", "4"), "time limit of 4 s reached", empty_stdout=True)
    assert time.monotonic() - started < 60


def test_identify_of_a_model_file_runs_the_file_once(tmp_path: Path) -> None:
    """Issue 13: ``identify mymodels.py:slow`` executed the file twice (its import-time print appeared twice)."""
    log = tmp_path / "runs.log"
    path = tmp_path / "mymodels.py"
    path.write_text(
        f"import optfilters\nwith open({str(log)!r}, 'a') as f:\n    f.write('run\\n')\n\n\n"
        "def slow():\n    return optfilters.get('momentum', momentum=0.5)\n"
    )
    result = run(f"{path}:slow", "--json", "--no-dither")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["a"] == pytest.approx([1.0, -0.5], abs=1e-9)
    assert log.read_text() == "run\n"
