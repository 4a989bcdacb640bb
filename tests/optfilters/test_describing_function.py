"""Sign stages: the constant-speed approach, the exact limit-cycle condition, describing functions, noise."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate, signal
from scipy.special import erf

import optfilters
from optfilters import ArmaFilter, InvalidFilterError, InvalidHyperparameterError
from optfilters.describing_function import (
    Saturation,
    final_cycle,
    harmonic_balance,
    noise_transition,
    relay,
    relay_dual_input,
    sign_loop,
)
from optfilters.noisy_quadratic import predict


def lion_numpy(beta1: float, beta2: float, lr: float, theta0: float, steps: int, h: float = 1.0) -> np.ndarray:
    """Lion written out (Chen et al. 2023): c = b1 m + (1-b1) g; theta -= lr sign(c); m = b2 m + (1-b2) g."""
    theta, m = float(theta0), 0.0
    out = [theta]
    for _ in range(steps):
        g = h * theta
        c = beta1 * m + (1.0 - beta1) * g
        theta -= lr * float(np.sign(c))
        m = beta2 * m + (1.0 - beta2) * g
        out.append(theta)
    return np.asarray(out)


# ----------------------------------------------------------------------------- the approach


def test_lion_loss_at_step_45_is_the_constant_speed_value():
    p = predict("lion", lr=0.01, curvatures=1.0, init=1.0, steps=60)
    assert p.expected_loss[45] == pytest.approx((1.0 - 0.45) ** 2 / 2.0, abs=1e-12)  # 0.15125
    assert "Gaussian closure" in p.label and p.linearised
    approach = sign_loop("lion", lr=0.01).approach(1.0)
    assert approach.loss(45) == pytest.approx(0.15125, abs=1e-12)


def test_noiseless_prediction_is_the_exact_recursion():
    theta = lion_numpy(0.9, 0.99, 0.01, 1.0, 1500)
    p = predict("lion", lr=0.01, curvatures=1.0, init=1.0, steps=1500)
    np.testing.assert_allclose(p.expected_loss, 0.5 * theta**2, rtol=0, atol=1e-13)
    assert np.all(p.variance == 0.0)
    assert p.steady_state_loss == pytest.approx(0.5 * np.mean(theta[-400:] ** 2), rel=1e-9)  # the cycle lr,0,-lr,0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    beta1=st.floats(0.0, 0.99),
    beta2=st.floats(0.0, 0.995),
    lr=st.sampled_from([0.003, 0.01, 0.02]),
    theta0=st.floats(0.05, 2.0),
)
def test_approach_is_exact_until_the_first_flip(beta1, beta2, lr, theta0):
    theta = lion_numpy(beta1, beta2, lr, theta0, int(theta0 / lr) * 3 + 400)
    a = sign_loop("lion", lr=lr, beta1=beta1, beta2=beta2).approach(theta0)
    steps = np.diff(theta)
    assert np.all(steps[: a.switch - 1] == pytest.approx(-lr, abs=1e-15))
    assert steps[a.switch - 1] == pytest.approx(lr, abs=1e-15)  # the first flip, exactly where predicted
    t = np.arange(a.switch)
    np.testing.assert_allclose(theta[t], a.theta(t), atol=1e-12)


# ----------------------------------------------------------------------------- limit cycles


def test_lion_symmetric_cycles_and_the_default_run():
    loop = sign_loop("lion", lr=0.01)
    assert [c.period for c in loop.symmetric_cycles(40)] == [2, 4]
    run = loop.run(1.0, steps=3000)
    assert run.period == 4 and run.pattern.tolist() == [1, 1, -1, -1]
    assert run.amplitude == pytest.approx(0.01, rel=1e-9) and run.mean_loss == pytest.approx(2.5e-5, rel=1e-9)
    c = loop.cycle(run.pattern)
    assert c.offsets[0] < run.offset < c.offsets[1] and c.admits(1.0) and not c.admits(1.005)


def test_signum_admits_every_half_period_near_the_minimum():
    loop = sign_loop("lion", lr=0.01, beta1=0.9, beta2=0.9)
    cycles = loop.symmetric_cycles(8)
    assert [c.period for c in cycles] == [2, 4, 6, 8, 10, 12, 14]  # k = 1 .. 7 only
    for c in cycles:
        k = c.period // 2
        assert c.offsets[0] < k / 2.0 < c.offsets[1]  # centred on the minimum: theta_{-1} = k lr / 2


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    beta1=st.floats(0.0, 0.97),
    beta2=st.floats(0.0, 0.97),
    lr=st.sampled_from([0.01, 0.03, 0.007, 0.013]),
    theta0=st.sampled_from([1.0, 0.77, 0.31]),
)
def test_every_observed_cycle_satisfies_the_exact_condition(beta1, beta2, lr, theta0):
    theta = lion_numpy(beta1, beta2, lr, theta0, 6000)
    run = final_cycle(theta, lr, window=1500)
    if run.period is None:  # a very long pattern (rational offsets): nothing to check
        return
    loop = sign_loop("lion", lr=lr, beta1=beta1, beta2=beta2)
    c = loop.cycle(run.pattern)
    assert c.exists and c.offsets[0] - 1e-9 <= run.offset <= c.offsets[1] + 1e-9
    assert c.amplitude(run.offset) == pytest.approx(run.amplitude, rel=1e-9)


@pytest.mark.parametrize(("beta1", "beta2", "half"), [(0.9, 0.99, 2), (0.9, 0.9, 3), (0.9, 0.9, 4), (0.5, 0.5, 2)])
def test_a_predicted_cycle_is_a_solution_of_an_independent_loop(beta1, beta2, half):
    """Drive scipy's lfilter with the pattern until its state is periodic, then close the loop: the pattern stays."""
    lr = 0.01
    loop = sign_loop("lion", lr=lr, beta1=beta1, beta2=beta2)
    pattern = np.array([1] * half + [-1] * half)
    c = loop.cycle(pattern)
    assert c.exists
    q = 0.5 * (c.offsets[0] + c.offsets[1])
    b, a = [1.0 - beta1, beta1 - beta2], [1.0, -beta2]
    zi = np.zeros(max(len(a), len(b)) - 1)
    theta = q * lr
    for _ in range(400):  # forced: theta follows the pattern, the filter settles onto its periodic state
        for s in pattern:
            _, zi = signal.lfilter(b, a, [theta], zi=zi)
            theta -= lr * s
    signs = []
    for _ in range(10 * pattern.size):  # closed loop
        d, zi = signal.lfilter(b, a, [theta], zi=zi)
        s = float(np.sign(d[0]))
        signs.append(s)
        theta -= lr * s
    np.testing.assert_array_equal(np.asarray(signs), np.tile(pattern, 10))


def test_scale_law_period_independent_of_lr_and_h_amplitude_proportional_to_lr():
    runs = []
    for lr, h in ((0.02, 1.0), (0.01, 1.0), (0.005, 3.0)):
        theta = lion_numpy(0.9, 0.99, lr, 37 * lr, 2000, h=h)  # same lattice offset: theta0 / lr = 37
        runs.append(theta / lr)
    np.testing.assert_allclose(runs[1], runs[0], atol=1e-9)
    np.testing.assert_allclose(runs[2], runs[0], atol=1e-9)


def test_harmonic_balance_of_the_relay_and_its_discrete_time_failure():
    loop = sign_loop("lion", lr=0.01)
    hb = loop.harmonic_balance()
    assert hb.periods[-1] == pytest.approx(2.0) and hb.theta_amplitudes[-1] == pytest.approx(2.0 / math.pi * 0.01)
    assert hb.periods.size == 1  # only the z = -1 crossover: the exact answer (period 4) needs the lattice


def test_saturation_describing_functions():
    s = Saturation(limit=1.0, slope=2.0)
    assert float(s.sinusoidal_gain(0.4)) == pytest.approx(2.0)  # linear region
    big = 1e4
    assert float(s.sinusoidal_gain(big)) == pytest.approx(4.0 / (math.pi * big), rel=1e-6)  # a relay of height 1
    # harmonic balance: Sophia's clip on an EMA cycles only when the linear region's loop is unstable
    ema = ArmaFilter.ema(0.9)
    edge = optfilters.closed_loop.closed_loop(ema).stability().max_stable_lr_curvature
    assert np.isnan(harmonic_balance(ema, Saturation(1.0, 1.0), 0.5 * edge).input_amplitudes).all()
    assert np.isfinite(harmonic_balance(ema, Saturation(1.0, 1.0), 2.0 * edge).input_amplitudes).any()


@pytest.mark.parametrize(("mu", "sd"), [(0.0, 1.0), (0.3, 0.5), (-1.2, 0.4), (2.0, 3.0), (0.9, 0.05)])
def test_gaussian_statistics_against_quadrature(mu, sd):
    def moments(f):
        pdf = lambda x: math.exp(-0.5 * ((x - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))  # noqa: E731
        lo, hi = mu - 12 * sd, mu + 12 * sd
        points = [-1.0, 0.0, 1.0]
        m1 = integrate.quad(lambda x: f(x) * pdf(x), lo, hi, points=points, limit=200)[0]
        m2 = integrate.quad(lambda x: f(x) ** 2 * pdf(x), lo, hi, points=points, limit=200)[0]
        cov = integrate.quad(lambda x: f(x) * (x - mu) * pdf(x), lo, hi, points=points, limit=200)[0]
        return m1, cov / sd**2, m2 - m1 * m1

    for nl in (relay(), Saturation(1.0, 1.0), Saturation(0.5, 3.0)):
        expected = moments(lambda x, nl=nl: float(nl(x)))
        got = [float(v) for v in nl.gaussian(mu, sd)]
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(("amp", "sd"), [(0.5, 1.0), (2.0, 0.3), (1.0, 1.0), (5.0, 0.1)])
def test_relay_dual_input_against_quadrature(amp, sd):
    n_a = integrate.quad(lambda u: erf(amp * math.sin(u) / (sd * math.sqrt(2))) * math.sin(u), 0, 2 * math.pi)[0]
    n_n = integrate.quad(
        lambda u: math.sqrt(2 / math.pi) / sd * math.exp(-((amp * math.sin(u)) ** 2) / (2 * sd * sd)), 0, 2 * math.pi
    )[0]
    got_a, got_n = relay_dual_input(amp, sd)
    assert float(got_a) == pytest.approx(n_a / (math.pi * amp), rel=1e-9)
    assert float(got_n) == pytest.approx(n_n / (2 * math.pi), rel=1e-9)


# ----------------------------------------------------------------------------- noise


def lion_monte_carlo(sigma: float, seeds: int = 2000, steps: int = 3000, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    theta, m = np.ones(seeds), np.zeros(seeds)
    tail = []
    for t in range(steps):
        g = theta + sigma * rng.standard_normal(seeds)
        c = 0.9 * m + 0.1 * g
        theta = theta - 0.01 * np.sign(c)
        m = 0.99 * m + 0.01 * g
        if t >= steps // 2:
            tail.append(0.5 * np.mean(theta**2))
    return float(np.mean(tail))


@pytest.mark.parametrize(("sigma", "tolerance"), [(1e-3, 0.25), (0.03, 0.05), (0.3, 0.05)])
def test_noisy_steady_state_against_monte_carlo(sigma, tolerance):
    predicted = predict("lion", lr=0.01, curvatures=1.0, noise_var=sigma**2, init=1.0, steps=0).steady_state_loss
    assert predicted == pytest.approx(lion_monte_carlo(sigma), rel=tolerance)


def test_noise_transition_limits():
    t = noise_transition("lion", [1e-5, 3.0], lr=0.01)
    assert t.cycle == pytest.approx(2.5e-5, rel=1e-9)
    assert t.predicted[0] == pytest.approx(t.cycle, rel=1e-3)  # small noise: the cycle
    assert t.predicted[1] == pytest.approx(t.linearised[1], rel=0.05)  # large noise: the dithered linear loop
    assert t.linearised[0] < 0.5 * t.cycle  # the Gaussian gain alone misses the cycle


def test_errors_are_value_errors():
    with pytest.raises(InvalidFilterError, match="takes no sign"):
        sign_loop("adam")
    with pytest.raises(InvalidFilterError, match="weight_decay"):
        sign_loop("lion", weight_decay=0.1)
    with pytest.raises(InvalidHyperparameterError, match="as many"):
        sign_loop("lion").cycle([1, 1, -1])
    with pytest.raises(InvalidHyperparameterError, match="non-zero"):
        sign_loop("lion").approach(0.0)
    with pytest.raises(InvalidHyperparameterError, match="noise_std"):
        noise_transition("lion", [0.0])
    with pytest.raises(InvalidHyperparameterError, match="std > 0"):
        relay_dual_input(1.0, 0.0)


def test_a_long_approach_switches_one_mean_delay_after_the_crossing():
    a = sign_loop("lion", lr=1e-4).approach(1.0)  # a ramp of 10^4 steps through a filter of memory ~100
    assert a.lag == pytest.approx(90.0) and abs(a.switch - a.ramp_estimate) <= 1.0


def test_a_vanishing_learning_rate_has_no_sign_steady_state_and_says_so():
    from optfilters.noisy_quadratic import parse_schedule

    p = predict("lion", lr=0.01, schedule=parse_schedule("cosine:300"), noise_var=0.01, steps=300)
    assert math.isnan(p.steady_state_loss) and "steady state not computed" in p.label
    assert np.all(np.isfinite(p.expected_loss))
