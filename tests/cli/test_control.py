"""``margins``, ``locus``, ``sensitivity``, ``thresholds``; new options of ``stability``, ``predict``, ``observe``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.cli import assert_one_line_error, ok_json, run


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


def test_stability_at_a_tiny_cutoff_converges_inside_its_interval():
    """Issue 13: the rate at lr*h = 1e-9 printed 1.00028 and 'DIVERGES' inside the printed interval (0, 2.23e-7);
    mpmath's rate is 1 - 1.007e-8, and the step that has not settled by its last simulated step says so."""
    text = run("stability", "bessel", "--order", "16", "--cutoff", "1e-6", "--lr", "1e-9").stdout
    assert "stable for 0 < lr*h < 2.22922e-07" in text and "rate 1 - 1.007e-08 (real pole" in text
    assert "DIVERGES" not in text and "settles to 2% in 1000001" not in text
    assert "not within 2% of its final value after 1000000 steps" in text


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


# ----------------------------------------------------------------------------- issue 13: sentinels, marginal, sizes


def test_stability_at_a_marginal_point_prints_no_sentinel():
    """It printed "10-90% rise in -1 steps" and "delay margin 1.084e+07 steps: tolerates 17 more steps"."""
    text = run("stability", "momentum", "--lr", "0.1", "--curvature", "1e-320")
    assert text.exit_code == 0, text.output
    assert "MARGINAL here: the rate is 1 within rounding" in text.stdout
    assert "in -1 steps" not in text.stdout and "tolerates" not in text.stdout
    point = ok_json("stability", "momentum", "--lr", "0.1", "--curvature", "1e-320")["at_point"]
    assert point["marginal"] is True and point["stable"] is False and point["max_staleness"] is None


def test_margins_json_of_a_diverging_point_says_why_it_is_null():
    data = ok_json("margins", "momentum", "--lr", "5")
    assert data["max_staleness"] is None and data["delay_margin_steps"] is None
    assert data["why_null"]["delay_margin_steps"] == "undefined: the loop diverges here"


def test_margins_says_at_least_at_the_staleness_search_bound():
    text = run("margins", "momentum", "--momentum", "0.9", "--lr", "0.001", "--curvature", "0.001")
    assert "delay margin 1.571e+05 steps: tolerates at least 100000 more steps" in text.stdout


def test_lookahead_without_slow_steps_is_marginal_for_every_lr():
    """alpha = 0: it printed "all stable intervals: (4.01408e+06, 4.03046e+06), ..." (rounding of a rate 1)."""
    for alpha in ("0", "1e-320"):
        text = run("stability", "lookahead", "--base", "sgd", "--alpha", alpha)
        assert text.exit_code == 0, text.output
        assert "marginal for every lr*h" in text.stdout and "stable for" not in text.stdout
        data = ok_json("stability", "lookahead", "--base", "sgd", "--alpha", alpha)
        assert data["marginal"] is True and data["intervals"] == [] and data["crossings"] == []
    assert "stable for 0 < lr*h < 5.57259" in run("stability", "lookahead", "--base", "sgd", "--alpha", "0.001").stdout


@pytest.mark.parametrize(
    ("command", "most"),
    [("margins", 100), ("locus", 100), ("sensitivity", 100), ("predict", 256)],
)
def test_staleness_above_what_is_fast_is_refused_in_one_line(command, most):
    """Issue 13: margins --staleness 300 took > 200 s, predict --staleness 1000 97 s; the bounds are documented."""
    assert_one_line_error(run(command, "momentum", "--staleness", str(most + 1)), "--staleness")
    assert f"at most {most}" in " ".join(run(command, "--help").stdout.split())
    assert run(command, "momentum", "--lr", "0.001", "--staleness", str(most)).exit_code == 0


# ----------------------------------------------------------------------------- designed filters at order 16

_UNLABELLED = ("undefined", "nan", "n/a", "through none", "in 0 steps", " 1 steps")


def _assert_sentences(text: str) -> None:
    """No line carries a bare non-finite number or an empty state (the order-16 report had several)."""
    import re

    for line in text.splitlines():
        for bad in _UNLABELLED:
            assert bad not in line, (bad, line)
        assert not re.search(r"\binf\b(?! \()", line), line  # an infinity says what it is: inf (UNSTABLE: ...)


def _tolerated_and_rates(text: str) -> tuple[int, list[tuple[int, float, bool]]]:
    tolerated = int(text.split("tolerates ")[1].split(" more")[0].replace("at least ", ""))
    listed = text.split("rate with d-step-stale gradients: ")[1].splitlines()[0].split(", ")
    rates = [(int(item.split()[0][2:]), float(item.split()[1]), "(diverges)" in item) for item in listed]
    return tolerated, rates


@pytest.mark.parametrize("name", ["butterworth", "chebyshev1", "bessel"])
@pytest.mark.parametrize("staleness", ["0", "3"])
def test_order_16_margins_are_sentences_and_agree_with_the_stale_rates(name: str, staleness: str) -> None:
    """The issue's reports: 'delay margin inf ... tolerates 0 more steps' next to rates 1.10-1.11 (diverges), a rise
    in 0 steps and 'gain margin xundefined ... through none'."""
    args = ("margins", name, "--order", "16", "--lr", "0.001", "--curvature", "1", "--staleness", staleness)
    result = run(*args)
    assert result.exit_code == 0, result.output
    _assert_sentences(result.stdout)
    assert "gain margin x" in result.stdout and ", through complex pair at" in result.stdout
    tolerated, rates = _tolerated_and_rates(result.stdout)
    assert tolerated > 50  # the loop crosses over near 0.0016 cycles/step with a phase margin of 60-70 degrees
    assert all(r < 1.0 and not diverges and d - int(staleness) <= tolerated for d, r, diverges in rates)
    data = ok_json(*args)
    assert data["delay_margin_steps"] == pytest.approx(tolerated + 1, abs=1.0)
    assert data["step"]["rise_steps"] > 10 and data["step"]["settling_steps"] > data["step"]["rise_steps"]


def test_chebyshev_order_16_stale_rate_is_the_mpmath_root():
    from optfilters import get
    from tests.support import mp_loop

    f = get("chebyshev1", order=16).direction_filter().factorisation
    data = ok_json("margins", "chebyshev1", "--order", "16", "--lr", "0.001", "--curvature", "1")
    expected = mp_loop.rate(f.zeros.values, f.poles.values, f.gain, f.delay, 0.001, 1)
    assert data["stale_rates"][1] == pytest.approx(expected, abs=1e-12) and expected < 0.9973  # it printed 1.11404


def test_margins_lines_label_every_state():
    """Marginal stale loops, a one-step rise and the states without a finite number read as sentences."""
    import dataclasses
    import math

    from optfilters.cli.control import point_lines

    from optfilters.margins import margins

    text = run("margins", "sgd", "--lr", "1").stdout
    assert "d=1 1 (marginal: does not converge)" in text and "delay margin 1 step: tolerates 0 more steps" in text
    assert "settles to 2% in 1 step, rises from 10% to 90% within one step" in text
    _assert_sentences(text)
    m = margins("momentum", 0.05, momentum=0.9)
    states = {
        "gain margin: not determined": dataclasses.replace(m, gain_margin=math.nan),
        "gain margin: infinite": dataclasses.replace(m, gain_margin=math.inf),
        "phase margin: none (|L| never crosses 1": dataclasses.replace(m, phase_margin=math.inf),
        "delay margin: infinite (no gain crossover): no staleness": dataclasses.replace(
            m, delay_margin=math.inf, max_staleness=100_000
        ),
        "d=1 inf (UNSTABLE: overflows)": dataclasses.replace(m, stale_rates=(m.rate, math.inf)),
    }
    for label, variant in states.items():
        lines = "\n".join(point_lines(variant, 0.05))
        assert label in lines, lines
        _assert_sentences(lines)


def test_stability_at_a_huge_curvature_prints_the_finite_rate_and_the_edge():
    text = run("stability", "momentum", "--curvature", "1e308")
    assert text.exit_code == 0, text.output
    assert "rate 1e+305 (real pole -1e+305" in text.stdout
    assert "DIVERGES here: lr must shrink by a factor 2.63158e+304 to reach the edge lr*h = 3.8" in text.stdout
    point = ok_json("stability", "momentum", "--curvature", "1e308")["at_point"]
    assert point["rate"] == pytest.approx(1e305) and point["stable"] is False


def test_heavy_ball_with_momentum_one_is_marginal_on_an_interval_in_every_command():
    """momentum 1: P = z^2 - (2 - x) z + 1, its poles on the unit circle for 0 <= x <= 4 and a real pair r, 1/r
    outside.  `stability --json` listed 18,463 grid "crossings" (Im x(w) = 0 all round the circle), `locus` printed
    one line per grid point, and `thresholds --lr` read a stable interval below 4 from a rate of 1 - 1e-16."""
    text = run("stability", "momentum", "--momentum", "1")
    assert text.exit_code == 0, text.output
    assert "marginal for 0 <= lr*h <= 4 (closed-loop poles on the unit circle: rate exactly 1)" in text.stdout
    assert "stable for" not in text.stdout
    data = ok_json("stability", "momentum", "--momentum", "1")
    assert data["marginal_intervals"] == [[0.0, 4.0]] and data["crossings"] == [] and data["intervals"] == []
    assert data["why_null"]["max_stable_lr_curvature"].startswith("undefined: marginal for 0 <= lr*h <= 4")
    inside = ok_json("margins", "momentum", "--momentum", "1", "--lr-curvature", "2")
    assert inside["marginal"] is True and inside["stable"] is False and inside["rate"] == 1.0
    assert inside["crossings"] == [] and inside["stable_intervals"] == [] and inside["marginal_intervals"] == [[0, 2]]
    outside = ok_json("margins", "momentum", "--momentum", "1", "--lr-curvature", "5")  # z^2 + 3 z + 1
    assert outside["marginal"] is False and outside["rate"] == pytest.approx((3 + 5**0.5) / 2, rel=1e-14)
    diverging = run("margins", "momentum", "--momentum", "1", "--lr", "5")
    assert "DIVERGES here: marginal for 0 <= lr*h <= 4" in diverging.stdout
    locus = run("locus", "momentum", "--momentum", "1", "--points", "30")
    assert locus.exit_code == 0 and "marginal for 0 <= lr*h <= 4" in locus.stdout
    assert "crosses the unit circle" not in locus.stdout and len(locus.stdout.splitlines()) < 30
    locus_data = ok_json("locus", "momentum", "--momentum", "1", "--points", "30")
    assert locus_data["crossings"] == [] and locus_data["marginal_intervals"] == [[0.0, 4.0]]
    assert locus_data["why_null"]["stable_interval"].startswith("undefined: marginal for 0 <= lr*h <= 4")
    edges = ok_json("thresholds", "momentum", "--momentum", "1", "--lr", "0.5", "--run-steps", "20")
    assert all(e is None for e in edges["frozen_edges"]["edge"])
    assert ok_json("predict", "momentum", "--momentum", "1", "--lr", "0.5", "--steps", "3")["marginal"] is True


def test_nesterov_with_momentum_one_is_stable_below_four_thirds():
    """mu = 1: P = z^2 - (2 - 2x) z + (1 - x), stable for 0 < x < 4/3 (Jury); the scan's tolerance made five
    crossings below 1e-6 out of the double pole at z = 1 and hid x = 0: "no stable interval"."""
    data = ok_json("stability", "nesterov", "--momentum", "1")
    assert data["interval"] == [0.0, pytest.approx(4 / 3, rel=1e-15)] and data["marginal"] is False
    assert [c["lr_curvature"] for c in data["crossings"]] == [0.0, pytest.approx(4 / 3, rel=1e-15)]


@pytest.mark.parametrize(
    ("args", "rate", "expected"),
    [
        # z^2 - (1.9 - x) z + 0.9 at x = 1e308: the pole -(x - 1.9) (mpmath: 1e308 to 16 digits)
        (("margins", "momentum", "--lr-curvature", "1e308"), 1e308, "lr must shrink by a factor 2.63158e+307"),
        (("margins", "momentum", "--lr", "1e308", "--curvature", "1"), 1e308, "edge lr*h = 3.8"),
        (("stability", "momentum", "--lr", "1e308", "--curvature", "1"), 1e308, "edge lr*h = 3.8"),
        # gradients 2 steps stale: z^3 - 1.9 z^2 + 0.9 z + x, roots of modulus x^(1/3) (1 + O(x^-1/3))
        (("margins", "momentum", "--lr-curvature", "1e308", "--staleness", "2"), 4.641588833612779e102, "DIVERGES"),
        # the edge 0.0366 is 3.7e-310 of x: the factor 1 / 3.7e-310 overflows and is said as a fraction
        (("margins", "butterworth", "--lr-curvature", "1e308"), None, "lr must shrink to 3.65999e-310 times itself"),
    ],
)
def test_a_huge_lr_curvature_diverges_and_says_so(args, rate, expected):
    """They were refused with "the loop polynomial's coefficients overflow": C S~ - S C~ overflowed at x = 1e308."""
    text = run(*args)
    assert text.exit_code == 0, text.output
    assert expected in text.stdout and "DIVERGES here" in text.stdout
    data = ok_json(*args)
    point = data.get("at_point", data)
    assert point["stable"] is False and point["marginal"] is False
    if rate is not None:
        assert point["rate"] == pytest.approx(rate, rel=1e-12)


@pytest.mark.parametrize("command", ["stability", "margins", "locus", "sensitivity"])
def test_an_lr_curvature_product_beyond_the_double_range_is_refused_with_the_verdict(command):
    """--lr 1e308 --curvature 10: x = 1e309 is no double. It said "x = lr * h must be finite and > 0, got inf"."""
    result = run(command, "momentum", "--lr", "1e308", "--curvature", "10")
    assert_one_line_error(
        result,
        "lr * h = 1e+308 * 10 overflows the floating-point range (above 1.8e308): the loop diverges there (no "
        "stable interval reaches that far)",
    )


def test_an_lr_whose_weight_decay_terms_overflow_the_loop_is_refused_with_the_verdict():
    """--lr 1e308 --weight-decay 1: lr*h + lr*wd = 2e308. It said "coefficients must be finite, got np.float64(inf)"."""
    result = run("margins", "momentum", "--lr", "1e308", "--weight-decay", "1")
    assert_one_line_error(result, "overflow the floating-point range (above 1.8e308): the loop diverges there")


def test_locus_at_a_huge_lr_sweeps_around_the_edge():
    """--lr 1e308 (x = 1e308 at h = 1) was refused with "overflow the floating-point range"; the sweep is in x."""
    data = ok_json("locus", "momentum", "--lr", "1e308", "--points", "20")
    assert data["stable_interval"] == [0.0, pytest.approx(3.8, rel=1e-12)]
    assert set(data["why_null"]) == {"nonlinear_note"}  # a linear loop: no note, and nothing else null
    rate = ok_json("locus", "momentum", "--lr-curvature", "1e308", "--points", "20")["rate"]
    assert max(rate) < 10.0  # the default sweep: up to 1.5 times the edge 3.8


# ----------------------------------------------------------------------------- issue 13: locus states its point


@pytest.mark.parametrize(
    ("args", "poles"),
    [
        (["momentum", "--momentum", "0.9"], [[1.0, 0.0], [0.9, 0.0]]),
        (["momentum", "--momentum", "0.9", "--staleness", "2"], [[1.0, 0.0], [0.9, 0.0], [0.0, 0.0], [0.0, 0.0]]),
        (["sgd"], [[1.0, 0.0]]),
    ],
)
def test_locus_poles_at_lr_0_are_exactly_the_filters_own(args: list[str], poles: list[list[float]]) -> None:
    """The JSON had 0.9999999999999994 (np.roots of (1 - z^-1)(1 - 0.9 z^-1)) where the text printed 1."""
    data = ok_json("locus", *args)
    assert data["open_loop_poles"] == poles
    text = run("locus", *args).stdout
    assert "  poles at lr = 0: " + ", ".join(f"{re:g}" for re, _ in poles) + "\n" in text


def test_locus_text_and_json_give_the_operating_point() -> None:
    text = run("locus", "momentum", "--momentum", "0.9", "--lr", "0.05", "--curvature", "2").stdout
    assert "  operating point (marked): lr = 0.05, h = 2: x = lr*h = 0.1\n" in text
    data = ok_json("locus", "momentum", "--momentum", "0.9", "--lr", "0.05", "--curvature", "2")
    assert data["operating_point"] == pytest.approx(0.1)
    assert data["at_point"] == {
        "lr_curvature": pytest.approx(0.1),
        "preconditioned": False,
        "lr": 0.05,
        "curvature": 2.0,
    }
    given = ok_json("locus", "sgd", "--lr-curvature", "0.5")
    assert given["at_point"] == {"lr_curvature": 0.5, "preconditioned": False}
    assert "  operating point (marked): x = lr*h = 0.5\n" in run("locus", "sgd", "--lr-curvature", "0.5").stdout
    adam = run("locus", "adam", "--lr", "0.01").stdout
    assert "x = lr*h (preconditioned) = " in adam
    assert_one_line_error(run("locus", "sgd", "--lr", "0.1", "--lr-curvature", "0.5"), "not both")
