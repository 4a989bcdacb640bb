"""Thresholds at the step you run: frozen-time edges against closed forms and against runs frozen at t."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest

import optfilters
from optfilters.noisy_quadratic import Warmup, parse_schedule, predict
from optfilters.observe import divergence_threshold
from optfilters.thresholds import frozen_edges, frozen_loop, time_varying_verdict


def nadam_edge(t, beta1=0.9, psi=0.004):
    """NAdam frozen at step t, written out from torch.optim.NAdam's update (not from the library).

    mu_t = beta1 (1 - 0.5 * 0.96^(t psi)); the update is lr [(1 - mu_t) g / (1 - prod_{i<=t} mu_i)
    + mu_{t+1} m / (1 - prod_{i<=t+1} mu_i)] / sqrt(v) with m the EMA (1 - beta1) / (1 - beta1 z^-1); frozen at
    v = 1 the loop filter's z = -1 gain is H(-1) = c1 + c2 (1 - beta1) / (1 + beta1), and the edge 2 / H(-1).
    The products are taken in float32, as torch does (immaterial here).
    """
    mu = lambda k: beta1 * (1.0 - 0.5 * 0.96 ** (k * psi))  # noqa: E731
    prod = np.float32(1.0)
    for k in range(1, t + 1):
        prod = np.float32(prod * np.float32(mu(k)))
    c1 = (1.0 - mu(t)) / (1.0 - float(prod))
    c2 = mu(t + 1) / (1.0 - float(prod) * mu(t + 1))
    return 2.0 / (c1 + c2 * (1.0 - beta1) / (1.0 + beta1))


def test_nadam_frozen_edges_are_the_reference_values():
    e = frozen_edges("nadam", [100, 1000, 10000])
    np.testing.assert_allclose(e.edge, [3.53, 3.93, 8.67], atol=5e-3)  # the numbers hold
    np.testing.assert_allclose(e.edge, [nadam_edge(t) for t in (100, 1000, 10000)], rtol=1e-7)
    assert e.limit == pytest.approx(13.571428, rel=1e-6)
    assert np.all(e.frequency == 0.5) and "linearised" in e.label


def test_adam_and_radam_frozen_edges_closed_forms():
    t = np.array([1, 2, 5, 10, 100])
    e = frozen_edges("adam", t, beta1=0.9, eps=0.0)
    np.testing.assert_allclose(e.edge, 38.0 * (1.0 - 0.9**t), rtol=1e-9)  # bias correction 1 / (1 - beta1^t)
    # RAdam (Liu et al. 2020; torch.optim.RAdam): no normaliser while rho_t <= 5 (the bias-corrected momentum
    # step alone), then the rectification r_t divides into the edge.
    b2 = 0.999
    rho_inf = 2.0 / (1.0 - b2) - 1.0
    steps = np.array([5, 6, 10, 1000, 100000])
    rho = rho_inf - 2.0 * steps * b2**steps / (1.0 - b2**steps)
    r_t = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
    expected = 38.0 * (1.0 - 0.9**steps) / np.where(rho > 5.0, r_t, 1.0)
    np.testing.assert_allclose(frozen_edges("radam", steps, eps=0.0).edge, expected, rtol=1e-9)


def test_schedules_read_in_the_base_learning_rate():
    e = frozen_edges("momentum", [1, 5, 10, 20], momentum=0.9, schedule=Warmup(10))
    np.testing.assert_allclose(e.edge, 3.8)
    np.testing.assert_allclose(e.base_edge, [38.0, 7.6, 3.8, 3.8])


@pytest.mark.parametrize("t", [100, 1000, 10000])
def test_nadam_edges_against_runs_frozen_at_t(t):
    """NAdam's numerator (the normaliser frozen at v = 1 is a gain of 1) run by the bridge with its step pinned at t."""
    numerator = dataclasses.replace(optfilters.get("nadam"), normaliser=None)
    d = divergence_threshold(numerator, curvature=1.0, frozen_step=t, lr_range=(0.1, 100.0))
    assert d.status == "decided" and d.label == f"frozen at step {t}"
    assert d.predicted_lr == pytest.approx(nadam_edge(t), rel=1e-6)
    assert d.observed_lr == pytest.approx(d.predicted_lr, rel=0.01)


def test_the_exact_verdict_is_the_real_run():
    """The product of the transition matrices against a noiseless bridge run of NAdam's numerator (not frozen)."""
    import torch

    from optfilters.torch import FilterOptimizer

    numerator = dataclasses.replace(optfilters.get("nadam", lr=5.0), normaliser=None)
    v = time_varying_verdict(numerator, steps=400)
    p = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    opt = FilterOptimizer([p], numerator, lr=5.0)
    theta = [1.0]
    for _ in range(400):
        p.grad = p.detach().clone()
        opt.step()
        theta.append(float(p.detach()[0]))
    logs = np.log10(np.abs(np.array(theta)))
    np.testing.assert_allclose(v.log10_amplitude, logs, atol=1e-9)
    assert v.verdict == "grows" and v.frozen_unstable_steps == 400  # x = 5 is above the frozen edge throughout


def test_frozen_time_verdict_can_be_wrong_both_ways():
    # Adam at x = 30: frozen-time unstable for its first 14 steps only, yet the 300-step run ends 10^2 times larger.
    v = time_varying_verdict("adam", 30.0, steps=300, beta1=0.9, eps=0.0)
    assert v.frozen_unstable_steps == 14 and v.verdict == "grows"
    p = predict("adam", lr=1e-3, curvatures=3e4, init=1.0, steps=300, second_moment=1.0, beta1=0.9, eps=0.0)
    np.testing.assert_allclose(v.log10_amplitude, np.log10(np.abs(p.mean[:, 0])), atol=1e-9)
    # NAdam at x = 5: frozen-unstable for 3204 steps; a 20000-step run contracts overall.
    long = time_varying_verdict("nadam", 5.0, steps=20000)
    assert long.last_frozen_unstable_step == 3204 and long.verdict == "shrinks"
    assert long.log10_peak_amplification > 400 and long.average_rate < 1.0


def test_frozen_loop_and_bad_inputs():
    loop = frozen_loop("adam", 3, lr_curvature=1.0, beta1=0.9, eps=0.0)
    assert "frozen at step 3" in loop.label
    assert [round(b, 9) for a, b in loop.stable_intervals() if a <= 0 < b] == [round(38 * (1 - 0.9**3), 9)]
    with pytest.raises(ValueError, match="t must be an integer >= 1"):
        frozen_loop("adam", 0)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        frozen_edges("adam", [0])
    with pytest.raises(ValueError, match="not both"):
        time_varying_verdict("sgd", 1.0, curvature=2.0, steps=3)
    # lr = 0 leaves no lr*h to set: both say so (time_varying_verdict blamed lr_curvature before)
    with pytest.raises(ValueError, match=r"the learning rate at step 2 is 0: no lr\*h to set"):
        frozen_loop("sgd", 2, lr_curvature=1.0, lr=0.0)
    with pytest.raises(ValueError, match=r"the learning rate is 0: no lr\*h to set"):
        time_varying_verdict("sgd", 1.0, steps=3, lr=0.0)
    v = time_varying_verdict("sgd", 0.5, steps=20)
    assert v.log10_final_amplification == pytest.approx(20 * math.log10(0.5))
    import matplotlib

    matplotlib.use("Agg")
    for result in (frozen_edges("nadam", [10, 100]), v):
        r = result.plot()
        assert r.figure is not None
        r.close()
        assert isinstance(result.as_dict(), dict)


@pytest.mark.parametrize("lr", [1e-320, 1e308])
def test_the_frozen_edges_of_an_extreme_lr_are_those_of_any_lr(lr: float) -> None:
    """Without weight decay the loop depends on lr * h only: an lr near the ends of the float range (whose h = 1 / lr
    would overflow) gives the edges of lr = 1e-3 (Adam's closed form 38 (1 - 0.9^t) at eps = 0)."""
    extreme = frozen_edges(optfilters.get("adam", lr=lr, eps=0.0), [1, 10, 100])
    ordinary = frozen_edges(optfilters.get("adam", lr=1e-3, eps=0.0), [1, 10, 100])
    np.testing.assert_allclose(extreme.edge, ordinary.edge, rtol=1e-9)
    np.testing.assert_allclose(extreme.edge, 38.0 * (1.0 - 0.9 ** np.array([1.0, 10.0, 100.0])), rtol=1e-6)


def test_a_run_whose_numbers_overflow_at_once_is_refused_in_one_line() -> None:
    with (
        warnings.catch_warnings(),
        pytest.raises(optfilters.InvalidHyperparameterError, match=r"^x = lr \* h = 1e\+308: .*overflow") as info,
    ):
        warnings.simplefilter("error", RuntimeWarning)  # the executor saturates without numpy's overflow warning
        time_varying_verdict("adam", 1e308, steps=3)
    assert "\n" not in str(info.value)
    with pytest.raises(optfilters.InvalidHyperparameterError, match="factor overflows the floating-point range"):
        frozen_edges("adam", [5, 50], schedule=parse_schedule("exponential:1e308"))


def test_frozen_edges_refuse_a_repeated_step() -> None:
    """Issue 13: ``steps=[1, 1]`` gave the same row twice; a repeat is refused, naming it."""
    from optfilters.errors import InvalidHyperparameterError
    from optfilters.thresholds import frozen_edges

    with pytest.raises(InvalidHyperparameterError, match=r"steps names 3 twice"):
        frozen_edges("adam", [3, 10, 3])
