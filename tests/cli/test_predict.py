"""``optfilters stability``, ``predict`` and ``observe``: JSON keys, closed forms, one-line errors, imports."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner
from optfilters.cli.main import main

from tests.support.cli import assert_one_line_error, ok_json, run

# ----------------------------------------------------------------------------- stability


def test_stability_adam_is_38():
    data = ok_json("stability", "adam", "--beta1", "0.9")
    assert data["max_stable_lr_curvature"] == pytest.approx(38.0, rel=1e-12)  # (2 + 2 beta1) / (1 - beta1)
    assert data["linearised"] is True and "preconditioned" in data["label"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("sgd",), 2.0),
        (("momentum", "--momentum", "0.9"), 3.8),
        (("heavy-ball", "--momentum", "0.5"), 3.0),
        (("nag", "--momentum", "0.9"), 3.8 / 2.8),
        (("custom", "--b", "0.401,0.377", "--a", "1,0.513"), 4.01326),
    ],
)
def test_stability_edges(args, expected):
    data = ok_json("stability", *args)
    assert data["max_stable_lr_curvature"] == pytest.approx(expected, rel=1e-5)


def test_stability_tuning_is_polyak():
    data = ok_json("stability", "momentum", "--condition-number", "100")
    opt = data["optimal"]
    assert opt["rate"] == pytest.approx(9 / 11, abs=1e-8)
    assert opt["momentum"] == pytest.approx((9 / 11) ** 2, rel=1e-6)
    assert opt["lr_curvature_max"] == pytest.approx(opt["lr"] * 100.0, rel=1e-12)
    assert opt["lr"] == pytest.approx(4 / 121, rel=1e-6)
    assert opt["tuned"] == ["lr", "momentum"]


def test_stability_tune_option_and_text():
    data = ok_json("stability", "momentum", "--condition-number", "100", "--tune", "none")
    assert data["optimal"]["tuned"] == ["lr"] and "momentum" not in data["optimal"]
    result = run("stability", "nesterov", "--condition-number", "10", "--mu", "2")
    assert result.exit_code == 0, result.output
    assert "tuned: lr, momentum" in result.stdout and "h in [2, 20]" in result.stdout
    assert "stable for 0 < lr*h < " in result.stdout


def test_stability_plot(tmp_path: Path):
    target = tmp_path / "rate.png"
    data = ok_json("stability", "nesterov", "--plot", str(target))
    assert target.stat().st_size > 0 and data["plot"] == str(target)


# ----------------------------------------------------------------------------- predict


def test_predict_json_keys_and_closed_form():
    lr, s2 = 0.1, 2.0
    data = ok_json(
        "predict",
        "sgd",
        "--lr",
        str(lr),
        "--curvatures",
        "1,0.1",
        "--noise-var",
        str(s2),
        "--init",
        "1",
        "--steps",
        "50",
    )
    assert len(data["expected_loss"]) == 51
    assert data["expected_loss"][0] == pytest.approx(0.5 * (1.0 + 0.1))
    per_dim = [lr * s2 / (2 * (2 - lr * h)) for h in (1.0, 0.1)]
    assert data["steady_state_loss"] == pytest.approx(sum(per_dim), rel=1e-10)
    assert data["rate"] == pytest.approx(1 - lr * 0.1)


def test_predict_schedule_and_linearised_text():
    data = ok_json("predict", "sgd", "--lr", "0.1", "--noise-var", "1", "--steps", "10", "--schedule", "step:5:0.5")
    assert data["final_lr"] == pytest.approx(0.05) and "time-varying" in data["label"]
    result = run("predict", "adam", "--lr", "0.01", "--noise-var", "1", "--steps", "20")
    assert result.exit_code == 0, result.output
    assert "linearised" in result.stdout and "expected loss" in result.stdout


# ----------------------------------------------------------------------------- observe


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_observe_json_and_plot(tmp_path: Path):
    target = tmp_path / "overlay.svg"
    data = ok_json(
        "observe", "momentum", "--lr", "0.1", "--curvatures", "1,0.1", "--noise-var", "1", "--steps", "20",
        "--seeds", "64", "--plot", str(target),
    )  # fmt: skip
    for key in ("observed_mean_loss", "observed_stderr", "predicted_loss"):
        assert len(data[key]) == 21
    assert data["observed_mean_loss"][0] == pytest.approx(data["predicted_loss"][0])
    assert target.stat().st_size > 0


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_observe_text_progress_and_divergence():
    result = run("observe", "sgd", "--lr", "0.5", "--noise-var", "1", "--steps", "250", "--seeds", "16", "--divergence")
    assert result.exit_code == 0, result.output
    assert "sgd: 16 seeds" in result.stderr  # the progress bar's label
    assert "predicted lr = 2" in result.stdout and "observed mean" in result.stdout


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_observe_network_mode():
    if importlib.util.find_spec("optfilters.network") is None:
        result = run("observe", "momentum", "--network", "--lr", "0.05", "--steps", "5")
        assert_one_line_error(result, "--network needs optfilters.network")
        pytest.skip("optfilters.network is not written yet")
    data = ok_json("observe", "momentum", "--network", "--lr", "0.05", "--steps", "3")
    assert data["name"] == "momentum" and data["lr"] == 0.05
    assert len(data["loss"]) == 4 and data["final_loss"] == data["loss"][-1]


def test_observe_network_wiring(monkeypatch: pytest.MonkeyPatch):
    network = pytest.importorskip("optfilters.network")
    calls = []

    class Fake:
        def as_dict(self):
            return {
                "loss": [1.0, 0.5],
                "final_loss": 0.5,
                "diverged": False,
                "train_accuracy": 0.9,
                "test_accuracy": 0.8,
                "sharpness": {"preconditioned": True, "late_phase_median": 37.0, "threshold": 38.0,
                              "late_phase_ratio": 37 / 38},
                "empirical": {"coordinates": 8, "freqs": [0.0, 0.25, 0.5]},
                "seconds_per_step": 0.01,
            }  # fmt: skip

    def fake(model, **kwargs):
        calls.append((model, kwargs))
        if "progress" in kwargs:
            for step in range(1, kwargs["steps"] + 1):
                kwargs["progress"](step, kwargs["steps"])
        return Fake()

    monkeypatch.setattr(network, "observe_network", fake)
    result = run(
        "observe", "adam", "--beta1", "0.9", "--lr", "0.01", "--network", "--steps", "300", "--seed", "4",
        "--record-coordinates", "8", "--sharpness-every", "10",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    model, kwargs = calls[0]
    assert model.name == "adam" and model.hyperparameters["beta1"] == 0.9
    assert kwargs["lr"] == 0.01 and kwargs["steps"] == 300 and kwargs["seed"] == 4
    assert kwargs["record_coordinates"] == 8 and kwargs["sharpness_every"] == 10
    assert "preconditioned sharpness: late-phase median 37 against the predicted edge of stability 38" in result.stdout
    assert "adam: digits MLP" in result.stderr  # progress bar on a long run
    run("observe", "sgd", "--network", "--steps", "5")
    assert set(calls[-1][1]) == {"lr", "steps", "seed"}  # recording and sharpness stay off by default


# ----------------------------------------------------------------------------- errors and imports


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (("stability", "adma"), "unknown optimizer 'adma'"),
        (("stability", "adam", "--beta1", "1.5"), "beta1 must be in [0, 1), got 1.5"),
        (("stability", "momentum", "--condition-number", "0.5"), "--condition-number"),
        (("stability", "momentum", "--condition-number", "10", "--tune", "moment"), "no hyperparameter 'moment'"),
        (("predict", "sgd", "--curvatures", "1,x"), "--curvatures must be numbers"),
        (("predict", "sgd", "--curvatures", "-1"), "--curvatures must be >= 0"),
        (("predict", "sgd", "--noise-var", "1,2"), "noise_var must have 1 value, got 2"),
        (("predict", "sgd", "--schedule", "cosine"), "schedule must be one of"),
        (("predict", "adam", "--second-moment", "frozen"), "--second-moment must be"),
        (("predict", "sgd", "--steps", "-1"), "--steps"),
        (("predict", "sgd", "--momentun", "0.9"), "did you mean --momentum"),
        (("observe", "sgd", "--seeds", "1"), "--seeds"),
        # observe compares steps 1..N: with none it printed "100.0% of steps 1..0"
        (("observe", "sgd", "--steps", "0"), "--steps"),
        (("observe", "sgd", "--steps", "0", "--network"), "--steps"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, pattern):
    assert_one_line_error(run(*args), pattern)


def test_stability_and_predict_import_neither_torch_nor_matplotlib():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from optfilters.cli.main import main\n"
        "r1 = CliRunner().invoke(main, ['stability', 'adam', '--condition-number', '10', '--json'])\n"
        "r2 = CliRunner().invoke(main, ['predict', 'nesterov', '--lr', '0.1', '--noise-var', '1', '--json'])\n"
        "assert r1.exit_code == 0 and r2.exit_code == 0, (r1.output, r2.output)\n"
        "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "args",
    [
        # lr * h beyond the double range (at lr = 1e200, h = 1 the pole -1e200 is finite: rate 1e200, below)
        ["momentum", "--lr", "1e200", "--curvatures", "1e200"],
        ["sgd", "--schedule", "exponential:1e308", "--steps", "3"],
        ["custom", "--b", "1", "--a", "1,-0.5", "--lr", "1e308", "--curvatures", "1e10"],
    ],
)
def test_an_infinite_rate_is_labelled_unstable(args: list[str]) -> None:
    """A rate that saturated to inf is a divergence, and says so (it was printed bare)."""
    result = CliRunner().invoke(main, ["predict", *args])
    assert result.exit_code == 0, result.output
    assert "= inf (UNSTABLE: the expected loss diverges)" in result.output


def test_predict_json_tells_a_diverging_steady_state_from_an_undefined_one():
    """Issue 13: "steady-state loss = inf" and "undefined (no steady state)" were both a bare null in JSON."""
    text = run("predict", "momentum", "--lr", "5", "--steps", "20")
    assert "steady-state loss = inf" in text.stdout
    diverged = ok_json("predict", "momentum", "--lr", "5", "--steps", "20")
    assert diverged["steady_state_loss"] is None and diverged["why_null"]["steady_state_loss"] == "diverges: rate >= 1"
    marginal = ok_json("predict", "sgd", "--lr", "0", "--steps", "3")
    assert marginal["steady_state_loss"] is None
    assert marginal["why_null"]["steady_state_loss"].startswith("undefined: no steady state")


# ----------------------------------------------------------------------------- issue 13: overflow and labels


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_observe_a_diverged_run_says_diverged_without_warning_text():
    text = run("observe", "momentum", "--lr", "1e308", "--steps", "5", "--seeds", "2")
    assert text.exit_code == 0, text.output
    assert text.stderr == ""  # numpy's "All-NaN slice encountered" reached stderr as a WARNING line
    assert "the runs DIVERGED (their loss overflowed) from step 1" in text.stdout
    rows = [line.split() for line in text.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert rows[-1] == ["5", "inf", "diverged", "diverged", "diverged"] and "undefined" not in text.stdout
    data = ok_json("observe", "momentum", "--lr", "1e308", "--steps", "5", "--seeds", "2")
    assert data["diverged_step"] == 1 and data["observed_mean_loss"][1:] == [None] * 5
    assert data["stable"] is False and data["rate"] == pytest.approx(1e308)
    calm = ok_json("observe", "sgd", "--lr", "0.1", "--steps", "3", "--seeds", "2")
    assert calm["diverged_step"] is None and calm["stable"] is True and calm["linearisation_holds"] is True
    broken = ok_json("observe", "adam", "--lr", "1e308", "--steps", "2", "--seeds", "2")
    assert broken["linearisation_holds"] is False and broken["diverged_step"] == 1


@pytest.mark.parametrize(
    "args",
    [
        ["predict", "momentum", "--lr", "1e308", "--curvatures", "1e308", "--steps", "2"],
        ["observe", "momentum", "--lr", "1e308", "--curvatures", "1e308", "--steps", "2", "--seeds", "2"],
    ],
)
def test_json_convention_an_infinite_rate_is_null_beside_stable_false(args: list[str]) -> None:
    """README, JSON: non-finite numbers are null, and ``stable`` (rate < 1) says that a null rate is infinite."""
    if args[0] == "observe" and importlib.util.find_spec("torch") is None:
        pytest.skip("needs torch")
    data = ok_json(*args)
    data = data.get("at_point", data)
    assert data["rate"] is None and data["stable"] is False


@pytest.mark.parametrize(
    ("args", "rate"),
    [(["momentum", "--lr", "1e200"], "1e+200"), (["custom", "--b", "1", "--a", "1,-0.5", "--lr", "1e308"], "1e+308")],
)
def test_a_huge_finite_rate_is_printed_finite_and_unstable(args: list[str], rate: str) -> None:
    """The pole of modulus 1e200 is finite: its rate is printed as the number (it saturated to inf before)."""
    result = run("predict", *args)
    assert result.exit_code == 0, result.output
    assert f"= {rate} (UNSTABLE: the expected loss diverges)" in result.stdout


def test_predict_huge_init_variance_prints_the_finite_loss():
    result = run("predict", "momentum", "--init-var", "1e308", "--steps", "4")
    assert result.exit_code == 0, result.output
    assert "     1   4.99001e+307" in result.stdout and "inf" not in result.stdout


def test_predict_a_broken_linearisation_says_so():
    """Adam at lr = 1e308: the linearised loss overflows at step 1, and the overflow makes the normaliser's gain nan.

    The linearised loop then has no rate: undefined, never a number.  (The rate printed here was read from
    uninitialised memory, 0.1 or 1 depending on the tests that ran before in the same process.)
    """
    result = run("predict", "adam", "--lr", "1e308", "--steps", "4")
    assert result.exit_code == 0, result.output
    broken = "NOT VALID here: the linearised loss overflows to inf from step 1 while the linearised rate is undefined"
    assert broken in result.stdout
    assert "rate (largest closed-loop pole modulus) = undefined (of the linearised loop: NOT VALID" in result.stdout
    assert "steady-state loss = undefined" in result.stdout
    data = ok_json("predict", "adam", "--lr", "1e308", "--steps", "4")
    assert data["linearisation_holds"] is False and "NOT VALID" in data["label"]
    assert data["rate"] is None and data["steady_state_loss"] is None
    assert data["stable"] is False and data["marginal"] is False
    why = {"rate": "undefined: no rate", "steady_state_loss": "undefined: no steady state (no rate)"}
    assert {key: data["why_null"][key] for key in why} == why
    assert ok_json("predict", "adam", "--lr", "0.01", "--steps", "4")["linearisation_holds"] is True


def test_predict_schedule_free_huge_r_is_an_answer():
    result = run("predict", "sgd-schedule-free", "--r", "1e308", "--steps", "4")
    assert result.exit_code == 0 and result.stderr == "", result.output


def test_predict_json_calls_a_marginal_loop_marginal_not_stable():
    """lr = 0: the rate rounds to 1 - 6e-16 (heavy ball's pole at 1); the text said marginal, the JSON said stable."""
    data = ok_json("predict", "momentum", "--lr", "0", "--steps", "3")
    assert data["marginal"] is True and data["stable"] is False
    assert "marginal" in run("predict", "momentum", "--lr", "0", "--steps", "3").stdout
    converging = ok_json("predict", "momentum", "--lr", "0.1", "--steps", "3")
    assert converging["stable"] is True and converging["marginal"] is False


# ----------------------------------------------------------------------------- issue 13: nulls and comparisons


def test_predict_json_says_from_which_step_the_expected_loss_overflows() -> None:
    """sgd at lr*h = 3: E[L]_t = 4^t / 2 (theta_t = (-2)^t): null from the first t where it is beyond the doubles."""
    data = ok_json("predict", "sgd", "--lr", "3", "--steps", "600")
    first = next(t for t in range(601) if Fraction(4**t, 2) > Fraction(sys.float_info.max))
    assert data["expected_loss"][first - 1] == math.ldexp(1.0, 2 * (first - 1) - 1)
    assert data["expected_loss"][first:] == [None] * (601 - first)
    assert (
        data["why_null"]["expected_loss"]
        == f"diverges: the expected loss overflows from step {first} (each null entry)"
    )


def test_predict_with_no_steps_says_why_its_lr_is_null() -> None:
    data = ok_json("predict", "sgd", "--steps", "0")
    assert data["expected_loss"] == [0.5] and data["lr"] is None and data["final_lr"] is None
    assert data["why_null"]["lr"] == "undefined: no steps (steps = 0): no learning rate is used"


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_observe_counts_only_comparable_steps() -> None:
    """sgd at lr*h = 3 diverges: both series overflow from the same step, which is no failure (it was 51%)."""
    text = run("observe", "sgd", "--lr", "3", "--seeds", "4", "--steps", "1000")
    assert text.exit_code == 0 and "Warning" not in text.stderr, text.output  # stderr: the progress bar
    data = ok_json("observe", "sgd", "--lr", "3", "--seeds", "4", "--steps", "1000")
    first = data["diverged_step"]
    assert data["comparable_steps"] == first - 1 and data["fraction_within_4_stderr"] == 1.0
    assert data["not_comparable"] == [
        f"the prediction and the runs diverged (both overflowed) at {1001 - first} steps from step {first}"
    ]
    assert (
        f"within 4 standard errors of the observed mean at 100.0% of the {first - 1} comparable steps of 1..1000"
        in text.stdout
    )
    assert (
        f"  not comparable: the prediction and the runs diverged (both overflowed) at {1001 - first} steps"
        in text.stdout
    )


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_observe_huge_losses_have_a_finite_standard_error() -> None:
    """Losses near 1e300: numpy's std squared them to inf, and every step read "within 4 s.e., max |z| = 0"."""
    args = ["observe", "sgd", "--lr", "0.5", "--init", "1e150", "--init-var", "1e298", "--seeds", "64", "--steps", "5"]
    data = ok_json(*args)
    assert all(se is not None and se > 0 for se in data["observed_stderr"])
    assert data["comparable_steps"] == 5 and data["not_comparable"] == []
    assert data["max_abs_z"] is not None and data["max_abs_z"] > 0
    result = run(*args)
    assert result.stderr == "" and "of all steps of 1..5" in result.stdout


@pytest.mark.parametrize("command", ["stability", "margins"])
def test_a_loop_whose_coefficients_overflow_is_refused_with_its_verdict(command: str) -> None:
    """Nesterov at lr*h = 1e308: x (1 + mu) overflows the loop polynomial; one line that says it diverges there
    (it blamed weight-decay terms the model does not have)."""
    result = run(command, "nesterov", "--lr", "1", "--curvature", "1e308")
    assert_one_line_error(result, "the loop's coefficients at lr*h = 1e+308 overflow the floating-point range")
    assert ": the loop diverges there" in result.output and "weight-decay" not in result.output
