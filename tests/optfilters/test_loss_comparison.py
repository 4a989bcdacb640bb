"""A comparison of prediction and observation counts only the steps where both are numbers (issue 13).

An infinite standard error (the seeds' spread overflowed), or a step where the prediction or the runs
diverged, is neither inside nor outside the band: ``optfilters observe`` printed "100% within 4 s.e.,
max |z| = 0" against infinite standard errors and "0%" where both diverged.  No torch needed: the
comparisons are built by hand, and the mean and standard error over seeds are checked against exact
rational arithmetic.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest

from optfilters.observe import LossComparison, _mean_and_stderr
from optfilters.validation import unexplained_nulls

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
