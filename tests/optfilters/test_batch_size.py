"""Batch size on the noisy quadratic model: exact doubling sums against the step recursion and brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optfilters.batch_size import (
    NoisyQuadraticSpectrum,
    batch_scaling,
    check_scaling_rule,
    critical_batch_size,
    expected_loss,
    scaling_rule,
    steps_to_target,
)
from optfilters.noisy_quadratic import predict


@pytest.mark.parametrize(
    ("name", "hp"),
    [
        ("sgd", {"lr": 0.7}),
        ("momentum", {"lr": 0.3, "momentum": 0.9}),
        ("nesterov", {"lr": 0.2}),
        ("butterworth", {"lr": 0.005}),
    ],
)
def test_doubling_sums_are_the_step_recursion(name, hp):
    nqm = NoisyQuadraticSpectrum.zhang2019(500)
    ks = [0, 1, 7, 64, 300]
    mine = expected_loss(name, ks, batch_size=32.0, nqm=nqm, **hp)
    ref = predict(name, curvatures=nqm.curvatures, noise_var=nqm.noise / 32.0, init=0.0, init_var=1.0, steps=300, **hp)
    np.testing.assert_allclose(mine, ref.expected_loss[ks], rtol=1e-11)


def test_preconditioning_is_a_reparametrised_quadratic():
    nqm = NoisyQuadraticSpectrum.zhang2019(200)
    p = nqm.curvatures**-0.5
    mine = expected_loss("momentum", [10, 100], lr=0.05, batch_size=8.0, nqm=nqm, preconditioning=0.5, momentum=0.9)
    ref = predict(
        "momentum",
        lr=0.05,
        momentum=0.9,
        curvatures=nqm.curvatures * p,
        noise_var=nqm.noise * p / 8.0,
        init=0.0,
        init_var=1.0 / p,
        steps=100,
    )
    np.testing.assert_allclose(mine, 0.5 * ref.variance[[10, 100]] @ (nqm.curvatures * p), rtol=1e-11)


def test_steps_to_target_is_the_first_crossing():
    nqm = NoisyQuadraticSpectrum.zhang2019(300)
    for name, hp in [("momentum", {"lr": 0.3, "momentum": 0.9}), ("sgd", {"lr": 1.0}), ("nesterov", {"lr": 0.2})]:
        steps = steps_to_target(name, [256.0, 4096.0, 1.0], target=1.0, nqm=nqm, **hp)
        for batch, k in zip([256.0, 4096.0], steps[:2], strict=True):
            losses = expected_loss(name, np.arange(int(k) + 1), batch_size=batch, nqm=nqm, **hp)
            assert np.flatnonzero(losses <= 1.0)[0] == k
        assert math.isinf(steps[2])  # below the noise floor at B = 1
    one = NoisyQuadraticSpectrum([1.0], [1.0])
    assert steps_to_target("sgd", [100.0], lr=0.1, target=0.01, nqm=one)[0] == 19  # 0.81^k / 2 <= 0.01 - floor
    assert math.isinf(steps_to_target("sgd", [100.0], lr=2.5, target=0.01, nqm=one)[0])  # diverges


def test_quantised_spectrum_and_critical_batch():
    nqm = NoisyQuadraticSpectrum.zhang2019(10_000)
    q = nqm.quantised(100)
    assert q.dim == 10_000 and q.initial_loss == pytest.approx(nqm.initial_loss, rel=1e-12)
    b = np.array([1, 2, 4, 8, 16, 32, 64.0])
    # McCandlish et al. 2018: S = S_min (1 + B_noise / B); examples S B = 100 (B + 8) double those at B = 1 (900)
    # at B = 10 (log-linear interpolation between 8 and 16 gives 9.78).
    assert critical_batch_size(b, 100 * (1 + 8.0 / b)) == pytest.approx(10.0, rel=0.03)
    assert math.isinf(critical_batch_size(b, 100 / b))


def test_the_papers_qualitative_results_on_a_small_spectrum():
    nqm = NoisyQuadraticSpectrum.zhang2019(1000)
    batches = [float(4**k) for k in range(9)]
    sgd = batch_scaling("sgd", batches, nqm=nqm, lr_points=20, bins=48)
    hb = batch_scaling("momentum", batches, nqm=nqm, lr_points=20, bins=48, tune={"momentum": [0.0, 0.9, 0.99]})
    pre = batch_scaling("sgd", batches, nqm=nqm, lr_points=20, bins=48, preconditioning=0.5)
    assert np.all(np.diff(sgd.steps) <= 0) and sgd.steps[1] / sgd.steps[0] == pytest.approx(0.25, rel=0.1)
    assert 0.8 < sgd.lr_slope() < 1.2  # the tuned lr grows linearly with B at small batches
    assert hb.critical_batch_size > 3 * sgd.critical_batch_size
    assert pre.critical_batch_size > 3 * sgd.critical_batch_size
    assert pre.steps[0] < 0.5 * sgd.steps[0] and hb.steps[0] > 0.7 * sgd.steps[0]
    for r in (sgd, hb, pre):  # the reported steps are exact at the reported setting
        j = 4
        hp = {k: v[j] for k, v in r.hyperparameters.items()}
        name = "momentum" if hp else "sgd"
        exact = steps_to_target(
            name, [batches[j]], lr=r.lr[j], target=0.01, nqm=nqm, preconditioning=r.preconditioning, **hp
        )
        assert exact[0] == r.steps[j]


def test_scaling_rules():
    m = scaling_rule("momentum", 4, lr=0.01, momentum=0.9)
    assert m.hyperparameters["momentum"] == pytest.approx(0.9**4)
    assert m.lr == pytest.approx(0.01 * 4 * (1 - 0.9**4) / 0.1)
    assert scaling_rule("adam", 4, lr=1e-3).lr == pytest.approx(2e-3)  # sqrt(kappa): Adam's H(1) = 1
    assert scaling_rule("butterworth", 2, lr=1e-3, cutoff=0.05).hyperparameters["cutoff"] == pytest.approx(0.1)
    assert scaling_rule("sgd", 3, rule="linear", lr=0.1).lr == pytest.approx(0.3)
    with pytest.raises(ValueError, match="rule must be"):
        scaling_rule("sgd", 2, rule="cubic")
    nqm = NoisyQuadraticSpectrum.zhang2019(100)
    good = check_scaling_rule("momentum", 4, batch_size=4, steps=400, nqm=nqm, lr=0.002, momentum=0.9)
    bad = check_scaling_rule("momentum", 4, rule="linear", batch_size=4, steps=400, nqm=nqm, lr=0.002, momentum=0.9)
    assert good.max_relative_difference < 0.02 < 0.1 < bad.max_relative_difference
    sgd = check_scaling_rule("sgd", 4, rule="linear", batch_size=4, steps=400, nqm=nqm, lr=0.005)
    assert sgd.max_relative_difference < 0.002


def test_bad_inputs():
    with pytest.raises(ValueError, match="increasing"):
        batch_scaling("sgd", [4, 2])
    with pytest.raises(ValueError, match="target must be"):
        batch_scaling("sgd", [1], target=0.0)
    with pytest.raises(ValueError, match="curvatures must be finite and > 0"):
        NoisyQuadraticSpectrum([0.0], [1.0])
    with pytest.raises(ValueError, match="kappa must be an integer"):
        check_scaling_rule("sgd", 2.5)
