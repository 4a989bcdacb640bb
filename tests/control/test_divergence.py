"""The divergence search decides from the envelope over a horizon set by the closed-loop poles, or says undecided."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optfilters.margins import margins
from optfilters.observe import divergence_threshold, envelope_verdict, horizon


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
