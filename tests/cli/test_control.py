"""``margins``, ``locus``, ``sensitivity``, ``thresholds``; new options of ``stability``, ``predict``, ``observe``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from optfilters.cli.main import main


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def ok_json(*args: str) -> dict:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_one_line_error(result, pattern: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and pattern in lines[0], lines[0]
    assert "Traceback" not in result.output


def test_margins_text_and_json():
    text = run("margins", "momentum", "--momentum", "0.9", "--lr", "0.05")
    assert text.exit_code == 0, text.output
    assert "gain margin x76" in text.stdout and "z = -1: period-2 oscillation" in text.stdout
    assert "phase margin 25.66 deg" in text.stdout and "(0.2182 rad/step)" in text.stdout
    assert "delay margin 2.052 steps: tolerates 2 more steps" in text.stdout
    assert "d=3 1.01811 (diverges)" in text.stdout
    data = ok_json("margins", "momentum", "--momentum", "0.9", "--lr-curvature", "0.05", "--staleness", "1")
    assert data["staleness"] == 1 and data["rate"] == pytest.approx(0.9746794, rel=1e-6)
    unstable = run("margins", "momentum", "--momentum", "0.9", "--lr", "5")
    assert unstable.exit_code == 0 and "DIVERGES here" in unstable.stdout


def test_normalised_models_explain_the_edge_up_front():
    for args in (("margins", "adam", "--lr", "0.01"), ("stability", "adam"), ("locus", "adam", "--points", "20")):
        result = run(*args)
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("note: adam normalises its step"), result.stdout[:80]
    assert ok_json("stability", "rmsprop")["nonlinear_note"].startswith("rmsprop normalises its step")


def test_stability_reads_the_point_at_lr_and_curvature():
    data = ok_json("stability", "momentum", "--momentum", "0.9", "--lr", "0.1", "--curvature", "0.5")
    point = data["at_point"]
    assert point["lr_curvature"] == pytest.approx(0.05) and point["gain_margin"] == pytest.approx(76.0)
    assert point["max_staleness"] == 2 and "complex pair" in point["mode"]
    text = run("stability", "sgd", "--lr", "0.5")
    assert "at lr = 0.5, h = 1: x = lr*h = 0.5" in text.stdout and "gain margin x4" in text.stdout
    assert "at_point" not in ok_json("stability", "sgd")


def test_locus_sensitivity_and_thresholds():
    locus = ok_json("locus", "momentum", "--momentum", "0.9", "--points", "30")
    assert locus["stable_interval"][1] == pytest.approx(3.8) and len(locus["poles"]) >= 25
    sens = ok_json("sensitivity", "momentum", "--momentum", "0.9", "--lr", "0.05", "--points", "5")
    assert sens["peak_t"] == pytest.approx(2.2518, abs=1e-4) and len(sens["freqs"]) == 5
    th = ok_json("thresholds", "nadam", "--at", "100,1000,10000")
    assert [round(e, 2) for e in th["frozen_edges"]["edge"]] == [3.53, 3.93, 8.67]
    run_ = ok_json("thresholds", "nadam", "--at", "100", "--lr", "5", "--run-steps", "500")["run"]
    assert run_["verdict"] == "grows" and run_["frozen_unstable_steps"] == 500
    text = run("thresholds", "momentum", "--schedule", "warmup:10", "--at", "1,10")
    assert "in base lr*h" in text.stdout and "38" in text.stdout


def test_predict_and_observe_take_staleness():
    data = ok_json("predict", "momentum", "--momentum", "0.9", "--lr", "0.05", "--staleness", "3", "--steps", "10")
    assert data["rate"] == pytest.approx(1.0181136, rel=1e-6) and "3 steps stale" in data["label"]
    obs = ok_json(
        "observe", "momentum", "--momentum", "0.9", "--lr", "0.05", "--staleness", "2", "--steps", "50", "--seeds", "4"
    )
    assert obs["max_relative_error"] < 1e-9


def test_observe_divergence_reports_undecided_rather_than_a_wrong_number():
    text = run(
        "observe",
        "butterworth",
        "--curvatures",
        "2",
        "--steps",
        "5",
        "--seeds",
        "2",
        "--divergence",
        "--divergence-steps",
        "100",
    )
    assert text.exit_code == 0, text.output
    assert "observed: UNDECIDED within" in text.stdout and "raise --divergence-steps" in text.stdout


ADAM_UP_FRONT = r"""
import sys
from optfilters.cli import main
try:
    main(["observe", "adam", "--divergence"], standalone_mode=False)
except Exception as exc:
    print(type(exc).__name__, file=sys.stderr)
print("torch" in sys.modules, file=sys.stderr)
"""


def test_observe_adam_divergence_is_refused_before_any_run():
    result = run("observe", "adam", "--divergence")
    assert_one_line_error(result, "--divergence needs a linear optimizer: adam normalises its step")
    done = subprocess.run([sys.executable, "-c", ADAM_UP_FRONT], capture_output=True, text=True, timeout=120)
    assert done.stderr.strip().splitlines()[-1] == "False"  # no torch imported: nothing ran


def test_bad_inputs_are_one_line_errors():
    assert_one_line_error(run("margins", "sgd", "--staleness", "-1"), "--staleness")
    assert_one_line_error(run("margins", "sgd", "--lr", "0.1", "--lr-curvature", "0.2"), "not both")
    assert_one_line_error(run("sensitivity", "sgd", "--lr", "3"), "the closed loop diverges at lr*h = 3")
    assert_one_line_error(run("thresholds", "sgd", "--at", "0"), "--at needs integer steps >= 1")
    assert_one_line_error(run("thresholds", "sgd", "--at", "x"), "--at must be steps")
    assert_one_line_error(run("margins", "sgd", "--plot", "out.gif"), "--plot FILE needs a suffix")


def test_plots(tmp_path):
    pytest.importorskip("matplotlib")
    for command in (
        ["margins", "momentum", "--lr", "0.05"],
        ["locus", "momentum", "--points", "20"],
        ["sensitivity", "momentum", "--lr", "0.05"],
        ["thresholds", "nadam", "--at", "10,100"],
    ):
        target = tmp_path / f"{command[0]}.png"
        data = ok_json(*command, "--plot", str(target))
        assert data["plot"] == str(target) and target.stat().st_size > 0


IMPORT_CHECK = r"""
import json, sys
from optfilters.cli import main
for args in (["margins", "adam"], ["locus", "nesterov", "--points", "20"], ["sensitivity", "momentum", "--lr", "0.05"],
             ["thresholds", "nadam", "--at", "10,100", "--lr", "1"], ["stability", "momentum", "--lr", "0.1"],
             ["predict", "momentum", "--staleness", "2"]):
    try:
        main(args, standalone_mode=False)
    except SystemExit as exc:
        assert not exc.code, (args, exc.code)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "matplotlib"))), file=sys.stderr)
"""


def test_commands_import_neither_torch_nor_matplotlib():
    done = subprocess.run([sys.executable, "-c", IMPORT_CHECK], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert json.loads([line for line in done.stderr.splitlines() if line.startswith("[")][-1]) == []


def test_stability_at_a_huge_curvature_prints_the_finite_rate_and_the_edge():
    text = run("stability", "momentum", "--curvature", "1e308")
    assert text.exit_code == 0, text.output
    assert "rate 1e+305 (real pole -1e+305" in text.stdout
    assert "DIVERGES here: lr must shrink by a factor 2.63158e+304 to reach the edge lr*h = 3.8" in text.stdout
    point = ok_json("stability", "momentum", "--curvature", "1e308")["at_point"]
    assert point["rate"] == pytest.approx(1e305) and point["stable"] is False
