"""The noisy-quadratic prediction against closed forms and an independent exact method.

The independent method runs the reference executor (``NumpyOptimizer``) itself:
for a linear model, ``theta_t = mean_t + sum_s K[t, s] xi_s`` with ``mean_t``
the noiseless run and ``K[t, s]`` the response to a unit noise impulse at step
``s`` (one batch element per ``s``), so ``E[L_t] = 1/2 sum_i h_i (mean^2 +
sigma_i^2 sum_s K^2)`` exactly, in O(T^2) work and without any state-space.
"""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import optfilters
import optfilters.noisy_quadratic as nq
from optfilters.closed_loop import closed_loop
from optfilters.noisy_quadratic import (
    Cosine,
    Exponential,
    InverseTime,
    Linear,
    Step,
    Warmup,
    lr_sequence,
    parse_schedule,
    predict,
    steady_state_loss,
)
from tests.support.number_text import NEAR_NUMBER_TEXT, strict_decimal


def reference_loss(model, lrs, h, sigma2, theta0):
    """Exact E[L_t] by the impulse-response method on the reference executor (linear models only)."""
    h = np.asarray(h, float)
    d, steps = h.size, len(lrs)
    opt = model.optimizer(np.broadcast_to(theta0, (d,)).astype(float))
    mean = [opt.theta.copy()]
    for t in range(steps):
        opt.lr = lrs[t]
        mean.append(opt.step(h * opt.theta).copy())
    mean = np.array(mean)
    opt = model.optimizer(np.zeros((steps, d)))  # batch row s: unit noise at step s + 1
    var = [np.zeros(d)]
    for t in range(steps):
        opt.lr = lrs[t]
        noise = np.zeros((steps, d))
        noise[t] = 1.0
        theta = opt.step(h * opt.theta + noise)
        var.append(np.asarray(sigma2) * np.sum(theta**2, axis=0))
    return 0.5 * (mean**2 + np.array(var)) @ h


LINEAR_CASES = [
    ("sgd", {}),
    ("sgd", {"maximize": True}),
    ("momentum", {"momentum": 0.9, "dampening": 0.5}),
    ("momentum", {"momentum": 0.8, "weight_decay": 0.3}),
    ("nesterov", {"momentum": 0.9, "weight_decay": 0.1}),
    ("qhm", {"nu": 0.7, "beta": 0.9}),
    ("grokfast", {"alpha": 0.9, "lamb": 2.0}),
    ("pid", {"kp": 1.0, "ki": 0.5, "kd": 2.0, "momentum": 0.5}),
    ("aggmo", {"betas": (0.0, 0.5, 0.9)}),
    ("butterworth", {"order": 4, "cutoff": 0.1}),
    ("chebyshev1", {"order": 3, "cutoff": 0.2}),
    ("butterworth", {"order": 8, "cutoff": 0.01, "dc_gain": 1.0}),
    ("custom", {"b": (0.401, 0.377), "a": (1.0, 0.513), "weight_decay": 0.05}),
]


@pytest.mark.parametrize(("name", "hp"), LINEAR_CASES)
def test_exact_against_the_reference_executor(name, hp):
    model = optfilters.get(name, **hp)
    h, sigma2, steps = np.array([1.0, 0.3]), np.array([0.5, 2.0]), 40
    lr = 0.02 if name in ("butterworth", "chebyshev1", "pid") else 0.1
    p = predict(model, lr=lr, curvatures=h, noise_var=sigma2, init=[1.0, -2.0], steps=steps)
    expected = reference_loss(model, np.full(steps, lr), h, sigma2, np.array([1.0, -2.0]))
    np.testing.assert_allclose(p.expected_loss, expected, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    "schedule",
    [Exponential(0.95), Step(7, 0.5), Linear(30, 1.0, 0.1), InverseTime(0.2), Cosine(25, 0.05), Warmup(5, Cosine(30))],
)
def test_schedules_stay_exact(schedule):
    model = optfilters.get("momentum", momentum=0.9, dampening=0.2)
    h, sigma2, steps = np.array([1.0, 0.05]), np.array([1.0, 1.0]), 40
    p = predict(model, lr=0.2, curvatures=h, noise_var=sigma2, steps=steps, schedule=schedule)
    lrs = lr_sequence(schedule, 0.2, steps)
    np.testing.assert_allclose(p.lrs, lrs)
    np.testing.assert_allclose(p.expected_loss, reference_loss(model, lrs, h, sigma2, 1.0), rtol=1e-10)
    assert "time-varying" in p.label


@pytest.mark.parametrize(
    ("name", "hp"),
    [
        ("adam", {}),
        ("adam", {"amsgrad": True, "eps": 1e-3}),
        ("adamw", {"weight_decay": 0.5}),
        ("nadam", {}),
        ("radam", {}),
        ("rmsprop", {"momentum": 0.9, "centered": True}),
        ("adagrad", {"lr_decay": 0.1, "initial_accumulator_value": 0.5}),
        ("adadelta", {}),
        ("adamax", {}),
        ("qhadam", {}),
        ("ademamix", {}),
    ],
)
def test_tracking_linearisation_is_exact_without_noise(name, hp):
    # Without noise the run is deterministic: E[g^2] = g^2, so the tracked normaliser is the real one.
    model = optfilters.get(name, **hp)
    h, steps, lr = np.array([1.0, 0.1]), 60, 0.05
    p = predict(model, lr=lr, curvatures=h, noise_var=0.0, init=[1.0, 3.0], steps=steps)
    traj = model.simulate(lambda theta, t: h * theta, theta0=[1.0, 3.0], steps=steps, lr=lr)
    np.testing.assert_allclose(p.expected_loss, 0.5 * traj.params**2 @ h, rtol=1e-9, atol=1e-15)
    assert p.linearised and "linearised" in p.label


def test_radam_is_exact_while_its_rectification_is_off():
    model = optfilters.get("radam")
    h, sigma2 = np.array([1.0, 0.2]), np.array([1.0, 0.5])
    p = predict(model, lr=0.1, curvatures=h, noise_var=sigma2, steps=5)
    np.testing.assert_allclose(p.expected_loss, reference_loss(model, np.full(5, 0.1), h, sigma2, 1.0), rtol=1e-10)


# ----------------------------------------------------------------------------- closed forms


@settings(max_examples=40, deadline=None)
@given(st.floats(0.01, 1.99), st.floats(0.05, 5.0), st.floats(0.0, 4.0), st.floats(-2.0, 2.0))
def test_sgd_closed_form(x, h, sigma2, theta0):
    lr = x / h
    p = predict("sgd", lr=lr, curvatures=h, noise_var=sigma2, init=theta0, steps=30)
    t = np.arange(31)
    v_star = lr * sigma2 / (h * (2 - lr * h))
    np.testing.assert_allclose(p.mean[:, 0], (1 - x) ** t * theta0, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(p.variance[:, 0], v_star + (1 - x) ** (2 * t) * (0 - v_star), rtol=1e-8, atol=1e-14)
    assert p.steady_state_loss == pytest.approx(lr * sigma2 / (2 * (2 - lr * h)), rel=1e-9, abs=1e-15)
    assert p.rate == pytest.approx(abs(1 - x), abs=1e-12)


def test_nqm_reference_numbers():
    # theory note 1(c): alpha = 0.1, h = c = 1: V* = 0.0526316, l = 0.0263158; heavy ball beta = 0.9: 0.256757
    assert steady_state_loss("sgd", lr=0.1, curvatures=1.0, noise_var=1.0) == pytest.approx(0.0263158, abs=1e-7)
    p = predict("momentum", momentum=0.9, lr=0.1, curvatures=1.0, noise_var=1.0, steps=0)
    assert p.steady_state_loss == pytest.approx(0.256757, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.floats(0.0, 0.98), st.floats(0.01, 0.99), st.floats(0.1, 3.0))
def test_heavy_ball_steady_state_closed_form(beta, frac, h):
    lr = frac * 2 * (1 + beta) / h  # inside the stable interval
    sigma2 = 0.7
    expected = (1 + beta) * lr * sigma2 / (2 * (1 - beta) * (2 * (1 + beta) - lr * h))
    got = steady_state_loss("momentum", momentum=beta, lr=lr, curvatures=h, noise_var=sigma2)
    assert got == pytest.approx(expected, rel=1e-7)


def test_steady_state_is_the_trajectory_limit_and_a_sum_over_coordinates():
    h = 1.0 / np.arange(1, 6)  # the NQM spectrum h_i = 1/i
    p = predict("nesterov", momentum=0.5, lr=0.5, curvatures=h, noise_var=h, init=0.0, steps=3000)
    assert p.expected_loss[-1] == pytest.approx(p.steady_state_loss, rel=1e-9)
    parts = [steady_state_loss("nesterov", momentum=0.5, lr=0.5, curvatures=hi, noise_var=hi) for hi in h]
    assert p.steady_state_loss == pytest.approx(sum(parts), rel=1e-12)


def test_steady_state_of_a_strongly_non_normal_design():
    # 8th-order Butterworth at 0.005 cycles/step: poles clustered near 1 (a Kronecker Lyapunov solve fails here).
    from optfilters.closed_loop import max_stable_lr_curvature

    edge = max_stable_lr_curvature("butterworth", order=8, cutoff=0.005)
    p = predict("butterworth", order=8, cutoff=0.005, lr=0.5 * edge, noise_var=1.0, init=0.0, steps=6000)
    assert p.rate == pytest.approx(0.99704, abs=1e-5)
    assert p.steady_state_loss == pytest.approx(p.expected_loss[-1], rel=1e-8)


def test_rates_agree_with_the_closed_loop():
    h = np.array([0.1, 1.0, 3.0])
    p = predict("qhm", nu=0.7, beta=0.9, lr=0.5, curvatures=h, noise_var=1.0, steps=1)
    np.testing.assert_allclose(p.rates, closed_loop("qhm", nu=0.7, beta=0.9).rate(0.5 * h), rtol=1e-12)
    assert p.rate == pytest.approx(p.rates.max())


def test_unstable_loop_has_infinite_steady_state():
    p = predict("sgd", lr=2.5, curvatures=1.0, noise_var=1.0, steps=3)
    assert p.steady_state_loss == math.inf and p.rate == pytest.approx(1.5)
    assert p.as_dict()["steady_state_loss"] is None


def test_steady_linearisation_is_self_consistent():
    model = optfilters.get("adam", eps=0.0)
    p = predict(model, lr=0.05, curvatures=[1.0, 0.1], noise_var=[1.0, 2.0], steps=0, second_moment="steady")
    v = (1.0 / p.preconditioner) ** 2  # eps = 0: preconditioner = 1 / sqrt(v)
    for i, (h, s2) in enumerate([(1.0, 1.0), (0.1, 2.0)]):
        frozen = predict(model, lr=0.05, curvatures=h, noise_var=s2, steps=0, second_moment=v[i])
        variance = 2 * frozen.steady_state_loss / h
        assert v[i] == pytest.approx(h * h * variance + s2, rel=1e-9)  # v = E[g^2] at the steady state


def test_frozen_linearisation_matches_the_closed_loop():
    model = optfilters.get("adam", beta1=0.9)
    p = predict(model, lr=0.01, curvatures=2.0, noise_var=1.0, steps=1, second_moment=4.0)
    scale = 1 / (2.0 + 1e-8)
    assert p.rate == pytest.approx(float(closed_loop(model, second_moment=4.0).rate(0.01 * 2.0 * scale)), rel=1e-12)


# ----------------------------------------------------------------------------- schedules and inputs


def test_schedule_text():
    assert parse_schedule("step:10:0.5") == Step(10, 0.5)
    assert parse_schedule("linear:100") == Linear(100, 1.0, 0.0)
    assert parse_schedule("cosine:50:0.1") == Cosine(50, 0.1)
    assert parse_schedule("warmup:5,exponential:0.9") == Warmup(5, Exponential(0.9))
    with pytest.raises(ValueError, match="schedule must be one of"):
        parse_schedule("cosine")
    with pytest.raises(ValueError, match="gamma must be > 0"):
        parse_schedule("exponential:-1")


def test_schedule_inputs():
    assert lr_sequence(None, 0.1, 3).tolist() == [0.1, 0.1, 0.1]
    assert lr_sequence([0.3, 0.2, 0.1, 0.0], 1.0, 3).tolist() == [0.3, 0.2, 0.1]
    with pytest.raises(ValueError, match="at least 5"):
        lr_sequence([0.1], 1.0, 5)
    with pytest.raises(ValueError, match="step_size must be an integer >= 1"):
        Step(0)


def test_bad_inputs():
    with pytest.raises(ValueError, match="curvatures must be finite and >= 0"):
        predict("sgd", curvatures=[-1.0])
    with pytest.raises(ValueError, match="noise_var must have 1 or 2 values"):
        predict("sgd", curvatures=[1.0, 2.0], noise_var=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="steps must be >= 0"):
        predict("sgd", steps=-1)
    with pytest.raises(ValueError, match="second_moment must be a number, 'tracking' or 'steady'"):
        predict("adam", second_moment="frozen")
    with pytest.raises(ValueError, match="needs noise_var > 0"):
        predict("adam", second_moment="steady")
    with pytest.raises(ValueError, match="no steady state"):
        predict("adagrad", noise_var=1.0, second_moment="steady")
    with pytest.raises(ValueError, match="momentum must be >= 0"):
        predict("momentum", momentum=-1.0)


# ----------------------------------------------------------------------------- relay loops (the sign): fast paths


def _limit_cycle_mean(loss: np.ndarray) -> float:
    """Mean of a tail that repeats exactly (the relay's limit cycle), over a whole number of periods."""
    scale = float(np.max(np.abs(loss)))
    period = next(k for k in range(1, loss.size // 2) if np.max(np.abs(loss[k:] - loss[:-k])) <= 1e-12 * scale)
    whole = (loss.size // period) * period
    return float(np.mean(loss[loss.size - whole :]))


@pytest.mark.parametrize(
    ("name", "hyperparameters", "h"),
    [
        ("lion", {"lr": 1e-2}, 1.0),
        ("lion", {"lr": 1e-2, "beta1": 0.95, "beta2": 0.98}, 0.3),
        ("signum", {"lr": 1e-2, "momentum": 0.5}, 1.0),
        ("signum", {"lr": 2e-2}, 0.7),
    ],
)
def test_noiseless_relay_steady_state_is_the_exact_runs_limit_cycle(name: str, hyperparameters: dict, h: float) -> None:
    """Without noise the closure is exact: the trajectory and the steady state are those of the optimizer itself.

    The reference runs the model's own executor in closed loop (``grad = h theta``) for 20000 steps and averages
    the loss over whole periods of its limit cycle; the prediction reaches its steady state by the scalar
    continuation of the relay loop.
    """
    p = predict(name, curvatures=h, init=1.0, steps=50, **hyperparameters)
    run = optfilters.get(name, **hyperparameters).simulate(lambda th, t: h * th, theta0=np.array([1.0]), steps=20000)
    loss = 0.5 * h * run.params[:, 0] ** 2
    np.testing.assert_allclose(p.expected_loss, loss[:51], rtol=1e-12, atol=1e-15 * loss[0])
    assert p.steady_state_loss == pytest.approx(_limit_cycle_mean(loss[-4000:]), rel=1e-9)


RELAY_CASES = [
    ("lion", {"lr": 1e-2}, {}),
    ("lion", {"lr": 1e-2}, {"noise_var": 0.01}),
    (
        "lion",
        {"lr": 5e-3, "beta1": 0.95, "beta2": 0.98},
        {"curvatures": [1.0, 0.1], "noise_var": 0.001, "init": [1, -0.5]},
    ),
    ("lion", {"lr": 1e-2, "weight_decay": 0.1}, {"init_var": 0.1, "steps": 30}),
    ("signum", {"lr": 1e-2}, {"noise_var": 0.01, "staleness": 1}),
    ("signum", {"lr": 1e-2, "momentum": 0.0}, {"noise_var": [0.01]}),
    ("lion-cautious", {"lr": 1e-2}, {"noise_var": 0.01, "init_var": 0.1}),
    ("lion-cautious", {"lr": 1e-2, "weight_decay": 0.1}, {"second_moment": "steady", "noise_var": 0.01}),
]


@pytest.mark.parametrize(("name", "hyperparameters", "settings_"), RELAY_CASES)
def test_relay_fast_path_equals_the_per_step_rebuild(
    name: str, hyperparameters: dict, settings_: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reused step matrices and the scalar continuation give the numbers of the per-step reference.

    The reference (``_RELAY_CACHE = False``) rebuilds the step's matrices from the program at every step, as the
    prediction did before; on these small cases (lr 1e-2: a few thousand continuation steps) both run.
    """
    import optfilters.noisy_quadratic as nq

    fast = predict(name, **hyperparameters, **settings_)
    monkeypatch.setattr(nq, "_RELAY_CACHE", False)
    slow = predict(name, **hyperparameters, **settings_)
    np.testing.assert_allclose(fast.expected_loss, slow.expected_loss, rtol=1e-10, atol=0.0)
    np.testing.assert_allclose(fast.variance, slow.variance, rtol=1e-10, atol=1e-300)
    assert fast.steady_state_loss == pytest.approx(slow.steady_state_loss, rel=1e-9)
    assert fast.rate == slow.rate and fast.label == slow.label


# ----------------------------------------------------------------------------- issue 13: long and stale runs


LTI_CASES = [
    ("sgd", {"lr": 0.3}),
    ("momentum", {"lr": 0.1, "momentum": 0.9}),
    ("nesterov", {"lr": 0.2, "momentum": 0.8}),
    ("qhm", {"lr": 0.1}),
    ("aggmo", {"lr": 0.05}),
    ("pid", {"lr": 0.05}),
    ("butterworth", {"lr": 0.05}),
    ("momentum", {"lr": 5.0}),  # diverges: the blocks overflow like the steps do
]


@pytest.mark.parametrize(("name", "hp"), LTI_CASES, ids=[f"{n}-{hp['lr']}" for n, hp in LTI_CASES])
@pytest.mark.parametrize("staleness", [0, 3])
def test_time_invariant_blocks_equal_the_step_by_step_recursion(monkeypatch, name, hp, staleness):
    """The blocked run of a time-invariant loop (several blocks and a partial one) against the step-by-step one."""
    args = {"curvatures": [1.0, 0.01], "noise_var": [0.5, 2.0], "init": [1.0, -3.0], "init_var": 0.25}
    fast = nq.predict(name, steps=1300, staleness=staleness, **args, **hp)
    monkeypatch.setattr(nq, "_LTI_BLOCK", 0)
    slow = nq.predict(name, steps=1300, staleness=staleness, **args, **hp)
    for got, want in ((fast.expected_loss, slow.expected_loss), (fast.variance, slow.variance)):
        finite = np.isfinite(want)
        assert np.array_equal(finite, np.isfinite(got))
        np.testing.assert_allclose(got[finite], want[finite], rtol=1e-12, atol=0.0)
    # the mean crosses zero (its modes cancel): compared on its scale, the root of the second moment
    scale = np.sqrt(slow.mean**2 + slow.variance)
    finite = np.isfinite(scale)
    assert np.all(np.abs(fast.mean - slow.mean)[finite] <= 1e-12 * scale[finite])


def test_delay_line_congruence_equals_the_dense_product():
    """``_Loop.congruence`` (the shift rows applied by indexing) against ``A C A^T`` with the dense matrix."""
    m = optfilters.get("adam")
    loop = nq._Loop(m, np.array([1.0, 2.0]), np.ones(2), staleness=4)
    a = loop.matrix(7, 0.01, [np.ones(2)])[:, :, : loop.n]
    rng = np.random.default_rng(0)
    root = rng.normal(size=(2, loop.n, loop.n))
    cov = root @ np.swapaxes(root, 1, 2)
    np.testing.assert_allclose(loop.congruence(a, cov), a @ cov @ np.swapaxes(a, 1, 2), rtol=1e-13, atol=1e-13)


def test_json_says_why_a_steady_state_is_null():
    """Issue 13: inf (diverges) and nan (no steady state) were both a bare null."""
    diverged = nq.predict("momentum", lr=5.0, steps=3).as_dict()
    assert diverged["steady_state_loss"] is None
    assert diverged["why_null"]["steady_state_loss"].startswith("diverges")
    marginal = nq.predict("sgd", lr=0.0, steps=3).as_dict()  # lr = 0: the rate is exactly 1
    assert marginal["steady_state_loss"] is None
    assert marginal["why_null"]["steady_state_loss"].startswith("undefined: no steady state")
    assert nq.predict("sgd", lr=0.1, noise_var=1.0, steps=3).as_dict()["why_null"] == {}


@pytest.mark.parametrize("name", ["butterworth", "chebyshev1", "bessel"])
def test_stale_rate_of_order_16_designs_is_the_mpmath_root(name):
    """The delay-line realisation's eigenvalues were 1e-4 off at order 16 (chebyshev1): the factored loop's rate."""
    from tests.support import mp_loop

    f = optfilters.get(name, order=16).direction_filter().factorisation
    for d in (1, 3):
        rate = predict(name, order=16, lr=0.001, staleness=d, steps=10).rate
        assert rate == pytest.approx(mp_loop.rate(f.zeros.values, f.poles.values, f.gain, f.delay, 0.001, d), abs=1e-12)


def _heavy_ball_loss_mpmath(lr, beta, h, init, init_var, steps):
    """``1/2 h E[theta_t^2]`` of torch's heavy ball (buffer = first gradient) in 60-digit mpmath: the noiseless
    run from 1 scales both the mean and the spread of the starting point, E[theta_t^2] = (m0^2 + V) r_t^2."""
    import mpmath

    with mpmath.workdps(60):  # not mpmath.mp.dps = 60: that leaked to later tests
        lr, beta, h = mpmath.mpf(lr), mpmath.mpf(beta), mpmath.mpf(h)
        theta, buf, out = mpmath.mpf(1), None, []
        second = mpmath.mpf(init) ** 2 + mpmath.mpf(init_var)
        for _ in range(steps + 1):
            out.append(second * theta**2 * h / 2)
            g = h * theta
            buf = g if buf is None else beta * buf + g
            theta = theta - lr * buf
        return out


@pytest.mark.parametrize(
    ("lr", "h", "init", "init_var"),
    [
        (0.001, 1.0, 0.0, 1e308),  # the variance itself is near the largest double: A cov A^T overflowed
        (0.001, 1e-100, 1e200, 0.0),  # the mean's square overflows, the loss 5e299 does not
        (10.0, 1.0, 1e120, 1e200),  # unstable: finite, then inf from the first step past the double range
    ],
)
def test_huge_moments_give_the_true_loss_finite_where_it_is_finite(lr, h, init, init_var):
    pytest.importorskip("mpmath")
    steps = 60
    exact = _heavy_ball_loss_mpmath(lr, 0.9, h, init, init_var, steps)
    got = predict("momentum", lr=lr, momentum=0.9, curvatures=h, init=init, init_var=init_var, steps=steps)
    for t, value in enumerate(exact):
        if value < 1.7e308:
            assert got.expected_loss[t] == pytest.approx(float(value), rel=1e-10), t
        else:
            assert got.expected_loss[t] == math.inf, t
    if lr == 10.0:
        assert math.isinf(got.expected_loss[-1]) and math.isfinite(got.expected_loss[1])
    else:
        assert np.all(np.isfinite(got.expected_loss))
        assert got.variance[0, 0] == init_var and got.mean[0, 0] == init


def test_a_zero_frozen_gain_is_refused_naming_the_optimizer():
    """Adafactor with eps2 = 0 has a zero parameter-scale floor at theta = 0: gain 0, refused, naming the model."""
    with pytest.raises(optfilters.InvalidHyperparameterError, match=r"^adafactor: second_moment: the frozen"):
        predict("adafactor", eps2=0.0, curvatures=[1.0], steps=4)


# ----------------------------------------------------------------------------- issue 13: one rule for --schedule


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("warmup:1e308", r"schedule warmup:steps must be in \[1, 10000000\], got '1e308'"),
        ("linear:1e308", r"schedule linear:total_iters must be in \[1, 10000000\]"),
        ("cosine:10000001", r"schedule cosine:T_max must be in \[1, 10000000\]"),
        ("step:1.5", "schedule step:step_size must be an integer"),
        ("step:0", r"schedule step:step_size must be in \[1, 10000000\]"),
        ("warmup:10,", "trailing comma"),
        ("warmup:10, ", "trailing comma"),
        ("warmup:5,warmup:10,", "trailing comma"),
        ("step:", "empty field"),
        ("step:10:", "empty field"),
        ("cosine: :0.1", "empty field"),
        ("exponential:", "empty field"),
        ("constant,", "trailing comma"),
    ],
)
def test_parse_schedule_integer_fields_are_step_counts_and_no_field_is_empty(text: str, message: str) -> None:
    with pytest.raises(optfilters.InvalidHyperparameterError, match=message):
        parse_schedule(text)


def test_parse_schedule_accepts_the_largest_step_count() -> None:
    from optfilters.validation import MAX_STEPS

    assert parse_schedule(f"warmup:{MAX_STEPS},linear:{MAX_STEPS}").factors(3).tolist() == pytest.approx(
        [1 / MAX_STEPS, 2 / MAX_STEPS, 3 / MAX_STEPS]
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # non-finite: said so (it said "gamma must be > 0, got inf")
        ("exponential:inf", "schedule exponential:gamma must be a finite number, got 'inf'"),
        ("exponential:-inf", "schedule exponential:gamma must be a finite number"),
        ("exponential:nan", "schedule exponential:gamma must be a finite number"),
        ("step:10:Infinity", "schedule step:gamma must be a finite number"),
        ("exponential:1e400", r"schedule exponential:gamma must be within the double range"),
        # float() and int() read these (1_0 as 10, \u0661\u0660 as 10): not numbers here
        ("exponential:1_0", "schedule exponential:gamma must be a number, got '1_0'"),
        ("step:1_0", "schedule step:step_size must be a number, got '1_0'"),
        ("warmup:1_0,constant", "schedule warmup:steps must be a number, got '1_0'"),
        ("cosine:\u0661\u0660", "schedule cosine:T_max must be a number"),
        ("linear:10:0x1", "schedule linear:end_factor must be a number, got '0x1'"),
        ("inverse:1e", "schedule inverse:lr_decay must be a number, got '1e'"),
        # ranges, with torch.optim.lr_scheduler's names
        ("exponential:-0", "schedule exponential:gamma must be > 0, got '-0'"),
        ("step:10:0", "schedule step:gamma must be > 0, got '0'"),
        ("inverse:-1", "schedule inverse:lr_decay must be >= 0, got '-1'"),
        ("cosine:10:1.5", r"schedule cosine:min_factor must be in \[0, 1\], got '1.5'"),
        ("linear:10:-0.5", "schedule linear:end_factor must be >= 0"),
        # subnormal: 0 or a normal double (1e-320 is held as 9.99989e-321; 5e-324 stands for 2.5e-324 .. 7.4e-324)
        ("exponential:5e-324", r"schedule exponential:gamma must be >= 2.2250738585072014e-308 \(the smallest normal"),
        ("exponential:1e-320", "schedule exponential:gamma must be >= 2.2250738585072014e-308"),
        ("step:10:2e-308", "schedule step:gamma must be >= 2.2250738585072014e-308"),
        ("linear:10:1e-310", "schedule linear:end_factor must be 0 or >= 2.2250738585072014e-308"),
        ("cosine:10:1e-310", "schedule cosine:min_factor must be 0 or >= 2.2250738585072014e-308"),
        ("inverse:4e-320", "schedule inverse:lr_decay must be 0 or >= 2.2250738585072014e-308"),
    ],
)
def test_parse_schedule_real_fields_read_the_strict_grammar(text: str, message: str) -> None:
    with pytest.raises(optfilters.InvalidHyperparameterError, match="^" + message) as info:
        parse_schedule(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "schedule"),
    [
        ("exponential:+0.5", Exponential(0.5)),
        ("exponential: 0.5 ", Exponential(0.5)),
        ("exponential:2.2250738585072014e-308", Exponential(2.2250738585072014e-308)),
        ("step:+10:.5", Step(10, 0.5)),
        ("step:1e1", Step(10)),
        ("linear:5:-0", Linear(5, 1.0, 0.0)),
        ("cosine:10:0", Cosine(10, 0.0)),
        ("inverse:0", InverseTime(0.0)),
        ("warmup:+3,exponential:1e-300", Warmup(3, Exponential(1e-300))),
    ],
)
def test_parse_schedule_reads_signs_spaces_and_normal_extremes(text: str, schedule: object) -> None:
    got = parse_schedule(text)
    assert got == schedule
    assert all(math.copysign(1.0, v) == 1.0 for v in vars(got).values() if isinstance(v, float))  # -0 is 0


@settings(max_examples=300, deadline=None)
@given(text=NEAR_NUMBER_TEXT.filter(lambda t: "," not in t))
@example(text="1_0")
@example(text="5e-324")
@example(text="inf")
def test_parse_schedule_gamma_is_the_decimal_value_or_one_line_naming_it(text: str) -> None:
    """Any text as ``exponential:GAMMA``: ExponentialLR(gamma) with the value the strict decimal grammar gives
    (a normal double > 0), or one line naming ``exponential:gamma`` (an empty field: named as such)."""
    expected = strict_decimal(text)
    try:
        got = parse_schedule(f"exponential:{text}")
    except optfilters.InvalidHyperparameterError as exc:
        message = str(exc)
        assert "\n" not in message
        if not text.strip():
            assert "empty field" in message
        else:
            assert message.startswith("schedule exponential:gamma must be"), message
            assert expected is None or not expected >= sys.float_info.min, (text, message)
        return
    assert expected is not None and expected >= sys.float_info.min and got == Exponential(expected), (text, got)


@pytest.mark.parametrize("name", ["momentum", "sgd", "lookahead"])
def test_noise_near_the_double_range_scales_the_loss_exactly(name):
    """Noise-driven moments are linear in the noise variance: at 1e308 the trajectory and the steady state are 1e8
    times those at 1e300 (from a zero start), finite, although a variance near 1e308 once overflowed inside the step
    (cov + cov^T) and inside the steady-state solve (it printed inf from step 2 and 'undefined: marginal')."""
    small = predict(name, lr=0.1, init=0.0, noise_var=1e300, steps=6)
    big = predict(name, lr=0.1, init=0.0, noise_var=1e308, steps=6)
    assert np.all(np.isfinite(big.expected_loss)) and math.isfinite(big.steady_state_loss)
    np.testing.assert_allclose(big.expected_loss, 1e8 * small.expected_loss, rtol=1e-12)
    assert big.steady_state_loss == pytest.approx(1e8 * small.steady_state_loss, rel=1e-12)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("adam", {"lr": 1e308}),  # the tracked moments overflow at step 1: the normaliser's gain is nan
        ("adam", {"lr": 1e308, "staleness": 1}),
        ("lookahead", {"base": "adam", "lr": 1e308}),  # periodic: the monodromy matrix's rate
        ("adam", {"lr": 1e308, "curvatures": [1.0, 0.0, 1e-3], "noise_var": 1.0}),
        ("adam", {"lr": 0.01, "noise_var": 1.0}),
        ("momentum", {"lr": 0.1, "noise_var": 1.0, "staleness": 2}),
        ("ema", {"base": "sgd", "lr": 0.5, "noise_var": 1.0}),
        ("lion", {"lr": 0.01, "noise_var": 1.0}),
    ],
)
def test_a_prediction_reads_no_uninitialised_memory(name, options, monkeypatch):
    """The same prediction whatever ``np.empty`` hands back: every number it reports was written first.

    ``predict`` kept each coordinate's rate in ``np.empty`` and filled it by distinct normaliser gain; a nan gain
    (tracked moments that overflowed) matched no group, so Adam at ``lr = 1e308`` reported the allocator's leftovers
    (0.1 or 1, depending on the tests run before it) as its rate.
    """
    from tests.support.poison import poison_empty

    def prediction() -> str:
        return repr(predict(name, steps=4, **options).as_dict())

    clean = prediction()
    for value in (0.375, -7.0):
        poison_empty(monkeypatch, value)
        assert prediction() == clean, value


def test_an_undefined_normaliser_gain_has_no_rate_and_no_steady_state():
    """Adam at ``lr = 1e308``: the overflow makes the tracked gain nan; the loop has no rate, and the linearisation
    does not hold (the loss overflowed while the linearised loop gives no divergence)."""
    adam = predict("adam", lr=1e308, steps=4)
    assert math.isnan(adam.rate) and math.isnan(adam.steady_state_loss) and not adam.linearisation_holds
    assert "linearised rate is undefined" in adam.label


# ----------------------------------------------------------------------------- issue 13: diverged results


def test_a_diverged_result_computes_and_plots_without_warnings():
    """predict(...).plot() of a diverged prediction printed numpy's overflow RuntimeWarnings (bias_loss: mean**2)."""
    from optfilters.closed_loop import rate_curve
    from optfilters.margins import margins, root_locus

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = [
            predict("sgd", lr=3.0, curvatures=[1.0, 0.0], noise_var=1.0, steps=600),
            predict("ema", base="sgd", lr=3.0, decay=0.5, noise_var=1.0, steps=600),
            predict("momentum", lr=1e200, curvatures=1e200, steps=3),
            margins("sgd", lr=3.0),
            root_locus("sgd", [0.5, 3.0, 1e308]),
            rate_curve("momentum", lr_curvature=[0.5, 5.0, 1e308]),
        ]
        for p in results[:3]:
            assert not np.all(np.isfinite(p.expected_loss))
            p.bias_loss, p.variance_loss, p.averaged_loss, p.as_dict()
        for result in results:
            result.plot().close()


def test_the_loss_parts_do_not_overflow_before_the_loss():
    """E[theta]^2 = 1e320 overflowed although 1/2 h E[theta]^2 = 5e219 at h = 1e-100: bias_loss said inf."""
    p = predict("sgd", lr=1.0, curvatures=1e-100, init=1e160, init_var=1e300, steps=2)
    assert p.bias_loss[0] == pytest.approx(5e219, rel=1e-14)
    assert p.variance_loss[0] == pytest.approx(5e199, rel=1e-14)
    assert p.bias_loss[0] + p.variance_loss[0] == pytest.approx(p.expected_loss[0], rel=1e-14)
    ema = predict("ema", base="sgd", lr=1.0, decay=0.5, curvatures=1e-100, init=1e160, steps=2)
    assert ema.averaged_loss[0] == pytest.approx(5e219, rel=1e-14)
