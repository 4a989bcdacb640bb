"""Stale gradients: predictions against the numpy reference executor and against real runs through the bridge.

Delay-margin and staleness predictions (:mod:`optfilters.margins`) against
runs of :class:`optfilters.torch.FilterOptimizer` fed d-step-old gradients,
for heavy ball, Nesterov, Adam (linearised) and a Butterworth design; the
gain margin against the bisected divergence learning rate of real runs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import optfilters
from optfilters.margins import margins
from optfilters.noisy_quadratic import predict
from optfilters.observe import divergence_threshold, envelope_verdict, observe_quadratic

CASES = [
    ("momentum", {"momentum": 0.9}, 0.05),
    ("nesterov", {"momentum": 0.9}, 0.1),
    ("butterworth", {"order": 2, "cutoff": 0.05, "dc_gain": 10.0}, 0.01),
]


def stale_reference(name, hp, lr, h, d, steps, theta0=1.0):
    """The model's numpy reference executor fed gradients d steps old (the start before the run)."""
    opt = optfilters.get(name, lr=lr, **hp).optimizer([theta0])
    history = [theta0] * (d + 1)
    out = [theta0]
    for _ in range(steps):
        theta = float(opt.step([h * history[0]])[0])
        history = [*history[1:], theta]
        out.append(theta)
    return np.array(out)


@pytest.mark.parametrize(("name", "hp", "x"), [*CASES, ("adam", {"beta1": 0.9}, 0.05)])
@pytest.mark.parametrize("d", [0, 2])
def test_stale_prediction_is_the_stale_recursion(name, hp, x, d):
    h = 2.0
    lr = x / h
    ref = stale_reference(name, hp, lr, h, d, 150)
    p = predict(name, lr=lr, curvatures=h, init=1.0, steps=150, staleness=d, **hp)
    np.testing.assert_allclose(p.mean[:, 0], ref, rtol=1e-9, atol=1e-12)
    if d:
        assert f"gradients {d} steps stale" in p.label


def bridge_trajectory(name, hp, lr, h, d, steps, theta0=1.0):
    """theta_t of a real FilterOptimizer run fed gradients d steps old (float64, noiseless)."""
    import torch

    from optfilters.torch import FilterOptimizer

    p = torch.nn.Parameter(torch.full((1,), theta0, dtype=torch.float64))
    opt = FilterOptimizer([p], optfilters.get(name, **hp), lr=lr)
    history = [theta0] * (d + 1)
    out = [theta0]
    for _ in range(steps):
        p.grad = torch.full((1,), h * history[0], dtype=torch.float64)
        opt.step()
        theta = float(p.detach()[0])
        history = [*history[1:], theta]
        out.append(theta)
    return np.array(out)


def observed_poles(theta, order, start):
    """The closed-loop poles of a run, identified from its trajectory: the least-squares linear recurrence
    theta_t = -sum_k c_k theta_{t-k} (Prony's method), rescaled to avoid underflow, and its roots."""
    seg = np.asarray(theta[start : start + 6 * order + 60], dtype=np.float64)
    seg = seg / np.max(np.abs(seg))
    rows = np.array([seg[t - order : t][::-1] for t in range(order, seg.size)])
    coeffs, *_ = np.linalg.lstsq(rows, seg[order:], rcond=None)
    return np.roots(np.concatenate([[1.0], -coeffs]))


@pytest.mark.parametrize(("name", "hp", "x"), CASES)
def test_bridge_runs_with_stale_gradients_have_the_predicted_poles(name, hp, x):
    """Bridge runs at d = 0 .. max_staleness + 1: the poles identified from the run are the predicted ones."""
    m = margins(name, x, **hp)
    assert m.max_staleness >= 1
    order = m.loop.order
    for d in range(m.max_staleness + 2):
        theta = bridge_trajectory(name, hp, x, 1.0, d, 200)
        np.testing.assert_allclose(theta, stale_reference(name, hp, x, 1.0, d, 200), rtol=1e-9, atol=1e-300)
        rate = float(np.max(np.abs(observed_poles(theta, order + d, start=d + 5))))
        assert rate == pytest.approx(m.stale_rates[d], rel=1e-6), (d, rate, m.stale_rates[d])
    assert m.stale_rates[m.max_staleness] < 1.0 < m.stale_rates[m.max_staleness + 1]


def test_heavy_ball_reference_staleness_in_real_runs():
    rates = [
        float(
            np.max(
                np.abs(
                    observed_poles(
                        bridge_trajectory("momentum", {"momentum": 0.9}, 0.05, 1.0, d, 150), 2 + d, start=d + 5
                    )
                )
            )
        )
        for d in range(4)
    ]
    np.testing.assert_allclose(rates, [0.9487, 0.9747, 0.9989, 1.0181], atol=5e-5)
    c = observe_quadratic("momentum", lr=0.05, momentum=0.9, steps=1500, seeds=2, staleness=3)  # and the envelope
    assert envelope_verdict(np.sqrt(2.0 * c.observed_mean_loss), 500)[0] == 1


@pytest.mark.parametrize(
    ("name", "hp", "x", "d"),
    [
        ("momentum", {"momentum": 0.9}, 0.05, 2),
        ("nesterov", {"momentum": 0.9}, 0.1, 1),
        ("butterworth", {"order": 2, "cutoff": 0.05, "dc_gain": 10.0}, 0.01, 1),
    ],
)
def test_gain_margin_of_the_stale_loop_is_the_bisected_divergence_lr(name, hp, x, d):
    m = margins(name, x, staleness=d, **hp)
    observed = divergence_threshold(name, curvature=1.0, staleness=d, lr_range=(0.1 * x, 100.0 * x), **hp)
    assert observed.status == "decided"
    assert observed.predicted_lr == pytest.approx(m.edge_lr_curvature, rel=1e-9)
    assert observed.observed_lr == pytest.approx(m.edge_lr_curvature, rel=0.01)


def test_adam_linearised_staleness_against_real_adam():
    """Real Adam, noisy d-stale gradients: the linearised (tracking) prediction holds; past the frozen-v delay
    margin the real normaliser does not let it diverge: v grows and the loop sits just inside its edge."""
    frozen = margins("adam", 0.5, beta1=0.9, second_moment=1.0)  # v = noise variance: heavy ball at 0.05
    assert frozen.max_staleness == 2
    losses = {}
    for d in (0, 2, 3):
        c = observe_quadratic(
            "adam", lr=0.5, beta1=0.9, curvatures=1.0, noise_var=1.0, init=0.0, steps=500, seeds=512, staleness=d
        )
        tail = slice(300, 501)
        observed, predicted = c.observed_mean_loss[tail].mean(), c.predicted_loss[tail].mean()
        assert observed == pytest.approx(predicted, rel=0.07), d
        losses[d] = (observed, c.prediction.rate)
    assert losses[3][0] > 4 * losses[0][0] and math.isfinite(losses[3][0])
    assert 0.99 < losses[3][1] < 1.0  # the tracked loop ends just inside the edge, not beyond it
