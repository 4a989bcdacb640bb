"""``sign-loop``, ``large-signal``, ``certify`` and ``stability --certify``: JSON, text, one-line errors, imports.

The package entries in main's nonlinear and control tools (sign loops, frozen-time edges, the audit's
matches): the command-line half of tests/optfilters/test_package_stages.py, whose docstring says what each
check compares against.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from optfilters.cli.main import main

from optfilters import InvalidFilterError
from optfilters.describing_function import sign_loop
from tests.support.cli import assert_one_line_error, ok_json, run


def test_sign_loop_json_and_text(tmp_path: Path):
    data = ok_json("sign-loop", "lion", "--lr", "0.01", "--steps", "1500")
    assert data["approach"]["switch"] == 152 and data["approach"]["speed"] == pytest.approx(0.01)
    assert [c["period"] for c in data["symmetric_cycles"]] == [2, 4]
    assert data["run"]["period"] == 4 and data["run_cycle_is_exact_solution"] is True
    assert data["harmonic_balance"]["periods"] == [2.0]
    text = run("sign-loop", "lion", "--lr", "0.01", "--steps", "1500", "--plot", str(tmp_path / "run.png"))
    assert text.exit_code == 0, text.output
    assert "constant speed 0.01 per step" in text.output and "ends in period 4" in text.output
    assert (tmp_path / "run.png").stat().st_size > 1000


def test_sign_loop_noise_sweep():
    data = ok_json("sign-loop", "lion", "--lr", "0.01", "--steps", "500", "--noise-std", "1e-5,1")
    t = data["noise_transition"]
    assert t["cycle"] == pytest.approx(2.5e-5, rel=1e-9)
    assert t["predicted"][0] == pytest.approx(2.5e-5, rel=1e-3)


def test_large_signal_json_text_and_map(tmp_path: Path):
    data = ok_json("large-signal", "adam", "--beta2", "0.95", "--eps", "0")
    assert data["response"]["peak_ratio"] == pytest.approx(1.11036, abs=2e-5)
    burst = ok_json("large-signal", "adam", "--beta2", "0.99", "--eps", "0", "--burst", "1")
    assert burst["response"]["kind"] == "burst"
    m = ok_json(
        "large-signal",
        "adam",
        "--eps",
        "0",
        "--map-rows",
        "0.9",
        "--map-columns",
        "0.9,0.95",
        "--bound",
        "1.05",
        "--rows",
        "0.9",
    )
    assert m["map"]["peak_ratio"][0][1] == pytest.approx(1.11036, abs=2e-5)
    assert 0.9 < m["bounded_region"]["limits"][0] < 0.95
    text = run("large-signal", "adam", "--beta2", "0.95", "--eps", "0", "--plot", str(tmp_path / "ls.png"))
    assert text.exit_code == 0 and "1.11036 x the steady state, 17 steps after" in text.output


def test_certify_and_stability_certify():
    data = ok_json("certify", "sgd", "--lr", "0.2", "--condition-number", "9")
    assert data["given"]["rate"] == pytest.approx(0.8, abs=2e-5) and data["given"]["certified"] is True
    assert data["quadratic_tuning"]["certificate"]["rate"] == pytest.approx(0.8, abs=2e-5)
    text = run("stability", "sgd", "--condition-number", "9", "--certify")
    assert text.exit_code == 0, text.output
    assert "certified over ALL smooth strongly convex f with curvature in [1, 9]" in text.output
    assert "certified tuning (lr = " in text.output and "solver CLARABEL" in text.output
    js = ok_json("stability", "sgd", "--condition-number", "9", "--certify")
    assert js["certified"]["certified_tuning"]["rate"] == pytest.approx(0.8, abs=5e-4)


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (("sign-loop", "adam"), "takes no sign"),
        (("sign-loop", "lion", "--weight-decay", "0.1"), "weight_decay = 0"),
        (("sign-loop", "lion", "--noise-std", "x"), "--noise-std must be numbers"),
        (("sign-loop", "lion", "--noise-std", "-1"), "--noise-std must be finite and > 0"),
        (("sign-loop", "lion", "--init", "0"), "non-zero"),
        (("large-signal", "adam", "--ratio", "-1"), "--ratio"),
        (("large-signal", "adam", "--map-rows", "0.9"), "--map-rows and --map-columns go together"),
        (("large-signal", "adagrad"), "no steady state"),
        (("large-signal", "adam", "--parameters", "beta1", "--bound", "2"), "--parameters needs two names"),
        (("certify", "lion", "--condition-number", "4"), "takes the sign"),
        (("certify", "sgd"), "--condition-number"),
        (("stability", "momentum", "--certify"), "--certify needs --condition-number"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, pattern):
    assert_one_line_error(run(*args), pattern)


def test_commands_import_neither_torch_nor_matplotlib():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from optfilters.cli.main import main\n"
        "for args in (['sign-loop', 'lion', '--steps', '300'], ['large-signal', 'adam', '--beta2', '0.9'],\n"
        "             ['certify', 'sgd', '--lr', '0.2', '--condition-number', '4']):\n"
        "    r = CliRunner().invoke(main, args + ['--json'])\n"
        "    assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cautious_lion_is_no_relay_loop() -> None:
    with pytest.raises(InvalidFilterError, match=r"lion-cautious has a nonlinear stage besides its sign"):
        sign_loop("lion-cautious", lr=0.01)
    result = CliRunner().invoke(main, ["sign-loop", "lion-cautious", "--lr", "0.01"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "needs a pure relay" in lines[0]
