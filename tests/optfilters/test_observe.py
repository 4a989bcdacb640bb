"""The divergence search decides from the envelope over a horizon set by the closed-loop poles, or says undecided.

Acceptance: the noisy quadratic trained with the PyTorch bridge against the exact prediction.

Band: the observed mean over K seeds is compared with the prediction in units
of its standard error.  If the prediction is exact, z = (mean - predicted) / se
is close to N(0, 1) at every step (theta is Gaussian, so the loss is a
weighted chi-square; with K = 4096 the skewness of the mean is below 0.05), so
|z| > 4 has probability about 6e-5 per step: with N = 200 steps a correct
prediction leaves the band at 0.013 steps on average, and the acceptance
criterion (inside at >= 99% of steps, i.e. at most 2 steps outside) fails
with probability well below 1%.  The band is also narrow enough to matter
(one standard error is about 1.5% of the loss): the same runs reject a
prediction whose learning rate is off by 10% at almost every step.
"""

from __future__ import annotations

import math
import re
import warnings
from fractions import Fraction

import numpy as np
import pytest

from optfilters.margins import margins
from optfilters.observe import LossComparison, _mean_and_stderr, divergence_threshold, envelope_verdict, horizon
from optfilters.validation import unexplained_nulls


def test_the_reported_case_is_fixed():
    """observe momentum --momentum 0.99 --curvatures 50 --divergence reported 1e-06 against 0.0796."""
    d = divergence_threshold("momentum", momentum=0.99, curvature=50.0)
    assert d.predicted_lr == pytest.approx(3.98 / 50.0, rel=1e-12)
    assert d.status == "decided" and d.relative_error < 1e-3
    assert d.bracket[0] < d.predicted_lr < d.bracket[1]


def test_a_short_budget_says_undecided_instead_of_a_wrong_number():
    d = divergence_threshold("butterworth", curvature=2.0, steps=100, candidates=8)
    assert d.status == "undecided" and math.isnan(d.observed_lr) and math.isnan(d.relative_error)
    lo, hi = d.bracket
    assert lo <= d.predicted_lr <= hi  # what it did decide is right
    assert d.as_dict()["status"] == "undecided"


def test_slow_oscillations_are_not_growth():
    # The old rule (last quarter of 400 steps against the quarter before) called lr*h = 1e-4 divergent.
    m = margins("momentum", 1e-4, momentum=0.99)
    assert m.stable and m.rate == pytest.approx(math.sqrt(0.99))
    burn, window = horizon(m.loop.poles())
    assert window >= 4 * 360  # |theta| oscillates with a period of ~360 steps at this lr
    import optfilters

    # The run itself (lr = 2e-6 at h = 50, the reference executor): the old rule's verdict, then the new one.
    opt = optfilters.get("momentum", lr=2e-6, momentum=0.99).optimizer([1.0])
    trace = np.abs([1.0] + [float(opt.step(50.0 * opt.theta)[0]) for _ in range(burn + 2 * window)])
    old_late, old_before = trace[300:401].max(), trace[200:300].max()
    assert old_late > old_before  # the 400-step rule: "divergent"
    assert envelope_verdict(trace, window)[0] == -1


def test_horizon_and_envelope_units():
    assert horizon([1.0]) is None
    assert horizon([]) == (8, 8)
    burn, window = horizon([0.999])
    assert burn == 0 and window == math.ceil(0.15 / -math.log(0.999))
    t = np.arange(400)
    assert envelope_verdict(1.0002**t, 100) == (0, pytest.approx(1.0002))  # too little change: undecided
    assert envelope_verdict(1.001**t, 100)[0] == 1
    assert envelope_verdict(np.r_[1.0, np.inf, 1.0], 1)[0] == 1
    assert envelope_verdict(np.zeros(10) + (np.arange(10) == 0), 3) == (-1, 0.0)


# ----------------------------------------------------------------------------- only comparable steps count (no torch)
INF, NAN = math.inf, math.nan


def comparison(predicted, observed, stderr) -> LossComparison:
    n = len(predicted)
    return LossComparison(
        "sgd",
        np.arange(float(n)),
        np.array(predicted, dtype=float),
        np.array(observed, dtype=float),
        np.array(stderr, dtype=float),
        seeds=4,
        lrs=np.full(n - 1, 0.5),
    )


def test_infinite_standard_errors_are_not_a_pass():
    c = comparison([1.0, 0.5, 0.25, 0.125], [1.0, 0.5, 0.3, 0.125], [0.0, INF, 0.01, INF])
    assert c.comparable.tolist() == [True, False, True, False]
    assert c.comparable_steps() == 1
    assert c.fraction_within(4.0) == 0.0  # the one comparable step is 5 s.e. off (it was 2/3: two "passes" at inf)
    assert math.isnan(c.z_scores[1]) and math.isnan(c.z_scores[3])
    assert c.not_comparable() == [
        "the standard error is infinite (the seeds' spread overflowed) at 2 steps from step 1"
    ]
    data = c.as_dict()
    assert data["fraction_within_4_stderr"] == 0.0 and data["comparable_steps"] == 1
    assert data["max_abs_z"] == pytest.approx(5.0)
    assert data["not_comparable"] == c.not_comparable()


def test_two_diverged_series_are_not_a_fail():
    c = comparison([0.5, 8.0, INF, INF], [0.5, 8.0, NAN, NAN], [0.0, 0.0, NAN, NAN])
    assert c.fraction_within(4.0) == 1.0 and c.comparable_steps() == 1  # was 1/3: the diverged steps "failed"
    assert c.not_comparable() == ["the prediction and the runs diverged (both overflowed) at 2 steps from step 2"]
    gone = comparison([0.5, INF, INF], [0.5, NAN, NAN], [0.0, NAN, NAN])
    assert math.isnan(gone.fraction_within(4.0)) and gone.comparable_steps() == 0
    data = gone.as_dict()
    assert data["fraction_within_4_stderr"] is None and data["max_abs_z"] is None
    assert data["why_null"]["fraction_within_4_stderr"] == (
        "undefined: not comparable at any step: the prediction and the runs diverged (both overflowed) at 2 steps "
        "from step 1"
    )
    assert unexplained_nulls(data) == []


def test_one_sided_divergence_is_named():
    runs = comparison([0.5, 0.25, 0.125], [0.5, 0.25, NAN], [0.0, 0.0, NAN])
    assert runs.not_comparable() == ["the runs diverged (their mean loss overflowed) at 1 step from step 2"]
    prediction = comparison([0.5, 0.25, INF], [0.5, 0.25, 1e300], [0.0, 0.0, 1e299])
    assert prediction.not_comparable() == [
        "the prediction diverged (its expected loss overflows) at 1 step from step 2"
    ]
    assert runs.fraction_within(4.0) == prediction.fraction_within(4.0) == 1.0


def test_no_steps_is_no_verdict():
    """``observe_quadratic(steps=0)``: steps 1..0 are empty; the fraction was 1.0 ("100.0% of steps 1..0")."""
    c = comparison([0.5], [0.5], [0.0])
    assert math.isnan(c.fraction_within(4.0)) and c.comparable_steps() == 0 and c.not_comparable() == []
    data = c.as_dict()
    assert data["fraction_within_4_stderr"] is None and data["lr"] is None
    assert data["why_null"]["fraction_within_4_stderr"] == "undefined: no steps after step 0 (--steps 0)"
    assert unexplained_nulls(data) == []


def test_the_mean_and_stderr_of_huge_losses_are_finite_and_exact():
    """Losses near 1e200: their squares overflowed inside numpy's std (inf standard error, a RuntimeWarning)."""
    rng = np.random.default_rng(0)
    observed = np.ldexp(rng.random((3, 5)), 700)  # about 5e210
    observed[2, 1] = INF  # a run that overflowed: that step's mean is inf (the runs diverged)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean, stderr = _mean_and_stderr(observed)
    for row in range(2):
        exact = [Fraction(float(v)) for v in observed[row]]
        m = sum(exact) / len(exact)
        var = sum((v - m) ** 2 for v in exact) / (len(exact) - 1)
        assert mean[row] == pytest.approx(float(m), rel=1e-15)
        scaled = float(var / len(exact) / 2**1400)  # var itself is beyond the double range
        assert stderr[row] == pytest.approx(math.ldexp(math.sqrt(scaled), 700), rel=1e-14)
    assert math.isinf(mean[2])


torch = pytest.importorskip("torch")


import optfilters  # noqa: E402
from optfilters.observe import (  # noqa: E402
    LINEARISATION_SETTINGS,
    DivergenceComparison,
    linearisation_report,
    observe_quadratic,
    predicted_divergence_lr,
)

QUADRATIC = {"curvatures": (1.0, 0.5, 0.2, 0.05), "noise_var": 1.0, "init": 1.0, "steps": 200, "seeds": 4096}


ACCEPTANCE = [
    ("sgd", {"lr": 0.5}),
    ("momentum", {"lr": 0.1, "momentum": 0.9}),
    ("nesterov", {"lr": 0.2, "momentum": 0.9}),
    ("qhm", {"lr": 1.0, "nu": 0.7, "beta": 0.9}),
    ("butterworth", {"lr": 0.02, "order": 2, "cutoff": 0.05, "dc_gain": 10.0}),
]


@pytest.fixture(scope="module")
def comparisons() -> dict[str, LossComparison]:
    return {name: observe_quadratic(name, seed=1, **QUADRATIC, **hp) for name, hp in ACCEPTANCE}


@pytest.mark.parametrize(("name", "hp"), ACCEPTANCE)
def test_observed_loss_stays_in_the_monte_carlo_band(comparisons, name, hp):
    c = comparisons[name]
    assert c.label == "exact" and not c.linearised
    assert len(c.observed_mean_loss) == len(c.predicted_loss) == len(c.observed_stderr) == 201
    assert c.observed_mean_loss[0] == pytest.approx(c.predicted_loss[0], rel=1e-14)
    assert c.fraction_within(4.0) >= 0.99
    # The z-scores behave like standard normals: mean near 0, spread near 1.
    z = c.z_scores[1:]
    assert abs(np.mean(z)) < 1.0 and 0.3 < np.std(z) < 1.7


@pytest.mark.parametrize(("name", "hp"), ACCEPTANCE)
@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_the_band_rejects_a_wrong_prediction(comparisons, name, hp, factor):
    c = comparisons[name]
    quadratic = {k: v for k, v in QUADRATIC.items() if k != "seeds"}
    wrong = optfilters.noisy_quadratic.predict(name, **{**hp, "lr": factor * hp["lr"]}, **quadratic)
    shifted = LossComparison(
        name, c.steps, wrong.expected_loss, c.observed_mean_loss, c.observed_stderr, c.seeds, c.lrs
    )
    assert shifted.fraction_within(4.0) < 0.2


@pytest.mark.parametrize(("name", "hp"), ACCEPTANCE)
def test_divergence_threshold_within_one_percent(name, hp):
    hp = {k: v for k, v in hp.items() if k != "lr"}
    d = divergence_threshold(name, curvature=2.0, **hp)
    assert isinstance(d, DivergenceComparison)
    assert d.bracket[0] < d.observed_lr < d.bracket[1]
    assert d.relative_error < 0.01
    assert d.predicted_lr == pytest.approx(predicted_divergence_lr(name, 2.0, **hp))


def test_divergence_uses_the_exact_edge_not_the_shortcut():
    d = divergence_threshold("custom", b=(0.401, 0.377), a=(1.0, 0.513), curvature=1.0)
    assert d.predicted_lr == pytest.approx(4.0133, abs=1e-4)
    assert d.relative_error < 0.01


@pytest.mark.parametrize(("name", "hp"), [("sgd", {}), ("momentum", {"momentum": 0.9}), ("nesterov", {})])
def test_bridge_and_torch_optim_give_the_same_runs(name, hp):
    common = {"lr": 0.1, "curvatures": (1.0, 0.1), "noise_var": 1.0, "steps": 30, "seeds": 64, "seed": 3}
    bridge = observe_quadratic(name, **common, **hp)
    reference = observe_quadratic(name, optimizer="torch", **common, **hp)
    np.testing.assert_allclose(bridge.observed_mean_loss, reference.observed_mean_loss, rtol=1e-12)


def test_time_varying_first_step_and_schedule_and_random_start():
    from optfilters.noisy_quadratic import warmup

    c = observe_quadratic(
        "momentum",
        lr=0.2,
        momentum=0.9,
        dampening=0.5,
        curvatures=(1.0, 0.1),
        noise_var=0.5,
        init=(1.0, -1.0),
        init_var=0.25,
        schedule=warmup(20),
        steps=120,
        seeds=2048,
    )
    assert "time-varying" in c.label
    assert c.observed_stderr[0] > 0.0  # random start
    assert c.fraction_within(4.0, start=0) >= 0.99


def test_linearised_models_are_labelled_and_close():
    c = observe_quadratic("adam", lr=0.01, curvatures=(1.0, 0.1), noise_var=1.0, steps=100, seeds=1024)
    assert c.linearised and "linearised" in c.label
    assert np.nanmax(c.relative_error[1:]) < 0.05


def test_the_documented_linearisation_table_is_what_we_measure():
    rows = linearisation_report()
    doc = optfilters.observe.__doc__
    assert len(rows) == 2 * len(LINEARISATION_SETTINGS)
    for row in rows:
        setting = " ".join([row["name"], *(f"{k}={v:g}" for k, v in row["hyperparameters"].items())])
        pattern = re.escape(setting) + r"\s+" + row["mode"] + r"\s+([\d.]+)%\s+([\d.]+)%\s+([\d.]+)%\s+([\d.]+)%"
        found = re.search(pattern, doc)
        assert found, setting
        documented = [float(v) / 100 for v in found.groups()]
        measured = [row["max_error"], row["median_error"], row["final_error"], row["within_4_stderr"]]
        np.testing.assert_allclose(measured, documented, rtol=0.02, atol=2e-4)


def test_results_have_the_plot_contract_and_json():
    import matplotlib

    matplotlib.use("Agg")
    c = observe_quadratic("sgd", lr=0.1, noise_var=1.0, steps=10, seeds=8)
    d = c.as_dict()
    assert {"observed_mean_loss", "observed_stderr", "predicted_loss"} <= set(d)
    assert all(len(d[k]) == 11 for k in ("observed_mean_loss", "observed_stderr", "predicted_loss"))
    r = c.plot()
    assert len(r.artists["predicted"]) == 1
    r.close()


def test_progress_callback_counts_every_step():
    seen = []
    observe_quadratic("sgd", lr=0.1, steps=250, seeds=4, progress=seen.append)
    assert sum(seen) == 250


def test_bad_inputs():
    with pytest.raises(ValueError, match="seeds must be >= 2"):
        observe_quadratic("sgd", seeds=1)
    with pytest.raises(ValueError, match="does not diverge on a quadratic"):
        divergence_threshold("adam")
    with pytest.raises(ValueError, match=r"no torch\.optim counterpart"):
        observe_quadratic("qhm", optimizer="torch", steps=2)
    with pytest.raises(ValueError, match="curvature must be > 0"):
        predicted_divergence_lr("sgd", 0.0)
