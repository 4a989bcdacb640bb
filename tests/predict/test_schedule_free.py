"""Schedule-Free's closed loop and noisy-quadratic prediction, checked against runs.

The gradient is evaluated at ``y = (1 - beta) z + beta x`` while the output is
the average ``x``.  With a constant averaging weight ``c`` the loop of ``y`` is
quasi-hyperbolic momentum: characteristic polynomial ``(1 - z^-1)(1 - (1 - c)
z^-1) + x z^-1 ((1 - beta + beta c) - (1 - beta)(1 - c) z^-1)``, stable for
``0 < lr h < 2 (2 - c) / (2 (1 - beta) - c (1 - 2 beta))`` (the ``z = -1``
crossing).  With the package's ``1/t`` weights the average freezes: the fast
mode of ``y`` is SGD at ``lr (1 - beta)`` (stable for ``lr h < 2 / (1 -
beta)``) and ``x`` converges like ``t^(-(1 + r)/(1 - beta))``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import optfilters
from optfilters.closed_loop import closed_loop
from optfilters.noisy_quadratic import predict
from optfilters.observe import LossComparison
from optfilters.package_stages import ScheduleFree
from optfilters.torch import FilterOptimizer


def constant_model(beta: float, c: float, lr: float = 1.0) -> optfilters.OptimizerModel:
    return optfilters.chain(ScheduleFree(momentum=beta, averaging=c), lr=lr)


def state_matrix(beta: float, c: float, x: float) -> np.ndarray:
    """The recursion on ``(z, x_avg)`` for ``f = h theta^2 / 2`` with ``lr h = x``, written out independently."""
    # z' = z - x ((1 - beta) z + beta a);  a' = (1 - c) a + c z'
    z_row = np.array([1.0 - x * (1.0 - beta), -x * beta])
    a_row = (1.0 - c) * np.array([0.0, 1.0]) + c * z_row
    return np.stack([z_row, a_row])


def edge(beta: float, c: float) -> float:
    return 2.0 * (2.0 - c) / (2.0 * (1.0 - beta) - c * (1.0 - 2.0 * beta))


@pytest.mark.parametrize(("beta", "c"), [(0.9, 0.1), (0.5, 0.3), (0.9, 0.6), (0.2, 0.05)])
def test_constant_averaging_characteristic_polynomial_and_poles(beta: float, c: float) -> None:
    loop = closed_loop(constant_model(beta, c))
    assert loop.label == "exact"
    np.testing.assert_allclose(loop.polynomial.constant, [1.0, -(2.0 - c), 1.0 - c], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(
        loop.polynomial.slope, [0.0, 1.0 - beta + beta * c, -(1.0 - beta) * (1.0 - c)], rtol=1e-14, atol=1e-15
    )
    for x in (0.05, 0.7, 3.0):
        expected = np.sort_complex(np.linalg.eigvals(state_matrix(beta, c, x)))
        np.testing.assert_allclose(np.sort_complex(loop.poles(x)), expected, rtol=1e-9, atol=1e-12)
    assert loop.stability().interval == pytest.approx((0.0, edge(beta, c)), rel=1e-9)


@pytest.mark.parametrize(("beta", "c"), [(0.9, 0.1), (0.5, 0.3)])
def test_constant_averaging_rate_and_edge_against_runs(beta: float, c: float) -> None:
    loop = closed_loop(constant_model(beta, c))
    hi = loop.stability().max_stable_lr_curvature
    slope = loop.polynomial.slope
    for x in (0.3, 0.5 * hi):
        traj = constant_model(beta, c, lr=x).simulate(lambda theta, t: theta, theta0=[1.0], steps=400)
        y = traj.params[:, 0]
        # the run obeys P(z^-1) y = 0 once z and x are under way (t >= 3)
        residual = y[3:] - (2.0 - c) * y[2:-1] + (1.0 - c) * y[1:-2] + x * (slope[1] * y[2:-1] + slope[2] * y[1:-2])
        assert np.max(np.abs(residual) / np.maximum(np.abs(y[3:]), 1e-300)) < 1e-9 or np.max(np.abs(residual)) < 1e-15
        envelope = np.abs(y[300:400]).max() / np.abs(y[100:200]).max()  # over 200 steps (complex poles oscillate)
        assert envelope ** (1.0 / 200.0) == pytest.approx(float(loop.rate(x)), rel=5e-3)
    for factor, grows in ((0.97, False), (1.03, True)):
        traj = constant_model(beta, c, lr=factor * hi).simulate(lambda theta, t: theta, theta0=[1.0], steps=3000)
        assert (abs(traj.params[-1, 0]) > 1.0) == grows


def test_one_over_t_regime_fast_mode_interval_and_slow_power_law() -> None:
    beta = 0.5
    loop = closed_loop("sgd-schedule-free", momentum=beta)
    assert loop.stability().interval == pytest.approx((0.0, 2.0 / (1.0 - beta)), rel=1e-12)
    assert "marginal mode" in loop.label and "t->infinity" in loop.label
    for factor, grows in ((0.95, False), (1.05, True)):
        traj = optfilters.get("sgd-schedule-free", momentum=beta, lr=factor * 4.0).simulate(
            lambda theta, t: theta, theta0=[1.0], steps=600
        )
        assert (abs(traj.params[-1, 0]) > 1.0) == grows
    for r in (0.0, 1.0):  # the average: x_t ~ t^(-(1 + r) / (1 - beta))
        opt = optfilters.get("sgd-schedule-free", momentum=beta, r=r, lr=0.5).optimizer([1.0])
        seen = {}
        for t in range(1, 4001):
            opt.step(opt.theta.copy())
            if t in (2000, 4000):
                opt.eval()
                seen[t] = abs(float(opt.theta[0]))
                opt.train()
        slope = math.log(seen[4000] / seen[2000]) / math.log(2.0)
        assert slope == pytest.approx(-(1.0 + r) / (1.0 - beta), rel=5e-3)


@pytest.mark.parametrize(("lr", "momentum"), [(0.5, 0.9), (0.3, 0.5)])
def test_noisy_quadratic_prediction_at_y_and_x_against_bridge_runs(lr: float, momentum: float) -> None:
    """Monte-Carlo through FilterOptimizer (eval() every step for x): within 4 s.e. at >= 99% of steps."""
    h, noise, steps, seeds = np.array([1.0, 0.1]), 0.5, 200, 4096
    prediction = predict(
        "sgd-schedule-free", lr=lr, momentum=momentum, curvatures=h, noise_var=noise, init=1.0, steps=steps
    )
    assert prediction.eval_expected_loss is not None
    gen = torch.Generator().manual_seed(0)
    theta = torch.nn.Parameter(torch.ones(seeds, 2, dtype=torch.float64))
    opt = FilterOptimizer([theta], "sgd-schedule-free", lr=lr, momentum=momentum)
    h_t = torch.tensor(h, dtype=torch.float64)
    at_y = np.empty((steps + 1, seeds))
    at_x = np.empty((steps + 1, seeds))
    with torch.no_grad():
        at_y[0] = at_x[0] = (0.5 * (h_t * theta * theta).sum(1)).numpy()
    for t in range(1, steps + 1):
        with torch.no_grad():
            theta.grad = h_t * theta + math.sqrt(noise) * torch.randn(seeds, 2, generator=gen, dtype=torch.float64)
        opt.step()
        with torch.no_grad():
            at_y[t] = (0.5 * (h_t * theta * theta).sum(1)).numpy()
            opt.eval()
            at_x[t] = (0.5 * (h_t * theta * theta).sum(1)).numpy()
            opt.train()
    for predicted, observed in ((prediction.expected_loss, at_y), (prediction.eval_expected_loss, at_x)):
        comparison = LossComparison(
            "sgd-schedule-free",
            prediction.steps,
            predicted,
            observed.mean(1),
            observed.std(1, ddof=1) / math.sqrt(seeds),
            seeds,
            prediction.lrs,
        )
        assert comparison.fraction_within(4.0) >= 0.99
    # x and y differ, and averaging lowers the late loss
    assert prediction.eval_expected_loss[-1] < 0.9 * prediction.expected_loss[-1]


def test_eval_mode_refuses_steps_and_round_trips() -> None:
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    opt = FilterOptimizer([w], "adamw-schedule-free", lr=0.1)
    opt.eval()  # before any step: nothing to move
    assert w.tolist() == [1.0, -2.0]
    opt.train()
    for _ in range(3):
        w.grad = w.detach().clone()
        opt.step()
    y = w.detach().clone()
    opt.eval()
    x = w.detach().clone()
    opt.eval()  # already in eval mode
    assert torch.equal(w, x) and not torch.allclose(x, y)
    w.grad = torch.ones(2, dtype=torch.float64)
    with pytest.raises(RuntimeError, match=r"is in eval mode .* call train\(\) before step\(\)"):
        opt.step()
    saved = opt.state_dict()
    assert saved["param_groups"][0]["train_mode"] is False
    opt.train()
    torch.testing.assert_close(w.detach(), y, rtol=1e-15, atol=1e-15)
    numpy_opt = optfilters.get("adamw-schedule-free", lr=0.1).optimizer([1.0, -2.0])
    for _ in range(3):
        numpy_opt.step(numpy_opt.theta.copy())
    numpy_opt.eval()
    np.testing.assert_allclose(numpy_opt.theta, x.numpy(), rtol=1e-14)
    with pytest.raises(RuntimeError, match="eval mode"):
        numpy_opt.step([1.0, 1.0])
