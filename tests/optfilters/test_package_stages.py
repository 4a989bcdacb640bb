"""The package entries' stage kinds in the analysis: closed loops against the step program, labels, CLI.

The closed loop of each entry (built from its stages' direction filters, weight
decay placements and frozen gains) is checked against an independent path: the
eigenvalues of the linearised step program run on rows of affine maps (the
noisy-quadratic model's state-space matrix of the ``t -> infinity`` limit).
Every nonlinear stage is labelled as such in each analysis.

The hyperparameter checks of the package, parameter-side and matrix stage kinds: one line naming the parameter.

Every kind validates through :mod:`optfilters.validation` (``check_number`` /
``check_integer``), so a bad value raises ``InvalidHyperparameterError`` with
the house's message ``"<name> must be <range>, got <value>"``; the edges of
each range are accepted.

The package entries in main's nonlinear and control tools: sign loops, frozen-time edges, the audit's matches.

Signum is Lion with ``beta1 = beta2`` (the sign of an EMA): its relay loop must
be Lion's at those betas, cycle for cycle; a cautious mask after the sign is not
a relay and is refused.  AdEMAMix's slow EMA puts a near-unit pole next to the
loop's integrator: its frozen-time edge at large ``t`` must equal the closed
loop's ``t -> infinity`` edge (an independent path).  The audit matches a
library class to the catalogue entry whose reference implementation it is.

Schedule-Free's closed loop and noisy-quadratic prediction, checked against runs.

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

import importlib.util
import math
import warnings
from typing import Any

import numpy as np
import pytest
import torch

import optfilters
from optfilters import CATALOGUE, InvalidHyperparameterError
from optfilters.closed_loop import closed_loop
from optfilters.describing_function import noise_transition, sign_loop
from optfilters.matrix_stages import FactoredNormaliser, Orthogonalise
from optfilters.noisy_quadratic import _Loop, predict
from optfilters.observe import LossComparison
from optfilters.package_stages import ScheduleFree, ScheduleFreeWeights
from optfilters.parameter_stages import EmaAverage, Lookahead, SwaAverage, ema_average_variance_ratio
from optfilters.thresholds import frozen_edges
from optfilters.torch import FilterOptimizer

PACKAGE_ENTRIES = [name for name, entry in CATALOGUE.items() if entry.reference]


def loop_cases() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for name in PACKAGE_ENTRIES:
        entry = CATALOGUE[name]
        cases += [(name, {"lr": 0.01}), (name, {**entry.examples[-1], "lr": 0.02})]
        if "weight_decouple" in entry.defaults():
            for decouple in (False, True):
                cases.append((name, {"lr": 0.03, "weight_decay": 0.5, "weight_decouple": decouple}))
        elif "weight_decay" in entry.defaults():
            cases.append((name, {"lr": 0.03, "weight_decay": 0.5}))
    return cases


@pytest.mark.parametrize(("name", "overrides"), loop_cases(), ids=str)
def test_closed_loop_poles_are_eigenvalues_of_the_linearised_step(name: str, overrides: dict[str, Any]) -> None:
    model = optfilters.get(name, **overrides)
    v, h = 4.0, 3.0
    loop = closed_loop(model, second_moment=v)
    gains = [np.atleast_1d(np.asarray(s.frozen_gain(v), dtype=np.float64)) for s in model.nonlinear_stages]
    matrix = _Loop(model, np.array([h]), np.zeros(1)).matrix(None, model.lr, gains)[0]
    eigenvalues = np.linalg.eigvals(matrix[:, :-1])
    x = model.lr * h * loop.preconditioner
    for pole in loop.poles(x):  # every closed-loop pole is a mode of the step (which may have more: state unseen)
        assert np.min(np.abs(eigenvalues - pole)) < 1e-7 * (1.0 + abs(pole)), (pole, eigenvalues)
    assert "linearised" in loop.label or model.is_linear


def test_decay_on_the_normalised_direction_is_not_preconditioned() -> None:
    loop = closed_loop("adamw-schedule-free", lr=0.01, weight_decay=0.5, second_moment=4.0)
    assert loop.offset == pytest.approx(0.01 * 0.5, rel=1e-12)  # lr * wd, not lr * wd / (sqrt(v) + eps)
    assert closed_loop("adabelief", lr=0.01, weight_decay=0.5, weight_decouple=False, second_moment=4.0).offset == (
        pytest.approx(0.01 * 0.5 / (2.0 + 1e-16), rel=1e-12)
    )


def test_proximal_decay_closed_loop_against_the_recursion() -> None:
    """Adan's theta /= 1 + lr wd: the plant pole and the loop gain both scale by 1 / (1 + lr wd)."""
    lr, wd, h = 0.05, 2.0, 1.0
    sgd_like = optfilters.get("adan", lr=lr, weight_decay=wd, beta1=0.0, beta2=0.0, beta3=0.0, eps=0.0)
    loop = closed_loop(sgd_like, second_moment=1.0)
    f = 1.0 / (1.0 + lr * wd)
    assert loop.plant_pole == pytest.approx(f, rel=1e-14)
    # beta = 0: theta_t = f (theta - lr h theta / |h theta|) is not linear; compare the linear part at v = 1
    assert float(loop.rate(lr * h)) == pytest.approx(abs(f * (1.0 - lr * h)), rel=1e-12)


BAD = [
    (lambda: ScheduleFree(momentum=1.0), r"momentum must be in \(0, 1\), got 1.0"),
    (lambda: ScheduleFree(momentum=0.0), r"momentum must be in \(0, 1\), got 0.0"),
    (lambda: ScheduleFree(momentum=math.nan), r"momentum must be a finite number, got nan"),
    (lambda: ScheduleFree(averaging=0.0), r"averaging must be in \(0, 1\], got 0.0"),
    (lambda: EmaAverage(decay=1.0), r"decay must be in \[0, 1\), got 1.0"),
    (lambda: EmaAverage(start=0), r"start must be >= 1, got 0"),
    (lambda: EmaAverage(start=1.5), r"start must be an integer, got 1.5"),
    (lambda: SwaAverage(every=0), r"every must be >= 1, got 0"),
    (lambda: SwaAverage().window(0), r"n must be >= 1, got 0"),
    (lambda: Lookahead(k=0), r"k must be >= 1, got 0"),
    (lambda: Lookahead(alpha=1.5), r"alpha must be in \[0, 1\], got 1.5"),
    (lambda: ema_average_variance_ratio(0.5, 1.0), r"pole must be in \(-1, 1\), got 1.0"),
    (lambda: ema_average_variance_ratio(-0.1, 0.5), r"decay must be in \[0, 1\), got -0.1"),
    (lambda: Orthogonalise(steps=100), r"ns_steps must be in \[0, 99\], got 100"),
    (lambda: Orthogonalise(coefficients=(1.0, math.inf, 2.0)), r"ns_coefficients must be a finite number, got inf"),
    (lambda: FactoredNormaliser(beta2_decay=0.1), r"beta2_decay must be <= 0, got 0.1"),
]


@pytest.mark.parametrize(("build", "message"), BAD)
def test_a_bad_hyperparameter_is_refused_naming_it(build, message) -> None:
    with pytest.raises(InvalidHyperparameterError, match=f"^{message}$"):
        build()


def test_the_edges_of_each_range_are_accepted() -> None:
    assert ScheduleFree(momentum=0.5, averaging=1.0).averaging == 1.0
    assert EmaAverage(decay=0.0, start=1).decay == 0.0
    assert SwaAverage(start=2.0, every=3).window(1).b.tolist() == [1.0]
    assert Lookahead(k=1, alpha=0.0).period == 1
    assert ema_average_variance_ratio(0.0, -0.5) == 1.0
    assert Orthogonalise(steps=0).steps == 0
    assert FactoredNormaliser(beta2_decay=0.0).is_time_invariant


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_signum_sign_loop_is_lion_with_equal_betas(beta: float) -> None:
    signum = sign_loop("signum", lr=0.01, momentum=beta)
    lion = sign_loop("lion", lr=0.01, beta1=beta, beta2=beta)
    np.testing.assert_allclose(signum.prefilter.b, lion.prefilter.b, rtol=1e-12)
    np.testing.assert_allclose(signum.prefilter.a, lion.prefilter.a, rtol=1e-12)
    assert signum.approach(1.0) == lion.approach(1.0)
    assert [(c.period, c.offsets) for c in signum.symmetric_cycles(16)] == [
        (c.period, c.offsets) for c in lion.symmetric_cycles(16)
    ]
    run_s, run_l = signum.run(1.0, steps=1500), lion.run(1.0, steps=1500)
    assert (run_s.period, run_s.amplitude) == (run_l.period, run_l.amplitude)


def test_signum_default_cycles_match_the_module_notes() -> None:
    """The module docstring: Signum with beta = 0.9 admits the symmetric cycles k = 1 .. 7."""
    loop = sign_loop("signum", lr=0.01)
    assert [c.period for c in loop.symmetric_cycles(20)] == [2, 4, 6, 8, 10, 12, 14]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        transition = noise_transition("signum", [1e-5], lr=0.01)
    assert np.all(np.isfinite(transition.predicted))


@pytest.mark.parametrize(("name", "overrides"), [("ademamix", {}), ("ademamix-scheduled", {"t_alpha_beta3": 100.0})])
def test_frozen_edge_with_a_near_unit_pole_is_the_closed_loop_edge(name: str, overrides: dict) -> None:
    edges = frozen_edges(name, [1, 10, 100000], **overrides)
    assert np.all(np.isfinite(edges.edge))
    limit = closed_loop(name, **overrides).stability().max_stable_lr_curvature
    assert edges.edge[-1] == pytest.approx(limit, rel=1e-9)
    assert edges.edge[0] < edges.edge[1] < edges.edge[2]  # bias correction: the edge grows from ~2 (1 + beta1)
    assert edges.edge[0] == pytest.approx(3.8, rel=1e-3)


@pytest.mark.skipif(
    importlib.util.find_spec("pytorch_optimizer") is None or importlib.util.find_spec("schedulefree") is None,
    reason="the reference packages (test extras)",
)
def test_audit_matches_library_classes_to_their_entries() -> None:
    from optfilters.audit import _catalogue_entry, audit
    from optfilters.identify import resolve_optimizer

    expected = {
        "pytorch_optimizer.SignSGD": "signum",  # by the entry's reference
        "pytorch_optimizer.Lion": "lion",  # by name (cautious=False: not lion-cautious's fixed keyword)
        "pytorch_optimizer.AdEMAMix": "ademamix",  # by name before any reference
        "pytorch_optimizer.ADOPT": "adopt",
        "schedulefree.SGDScheduleFree": "sgd-schedule-free",
        "schedulefree.AdamWScheduleFree": "adamw-schedule-free",
        "schedulefree.SGDScheduleFreeReference": None,
        "pytorch_optimizer.Tiger": None,  # its keyword beta is not signum's momentum
    }
    found = {path: _catalogue_entry(path, resolve_optimizer(path)) for path in expected}
    assert found == expected
    result = audit("pytorch_optimizer", only=["SignSGD"], quick=True)
    (signsgd,) = result.classes
    assert signsgd.catalogue == "signum" and signsgd.comparison is not None and signsgd.comparison.match


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


def _schedule_free_weights_mpmath(warmup: int, r: float, power: float, lr: float, steps: int) -> list[float]:
    """``c_t = w_t / sum_{k <= t} w_k``, ``w_k = k^r lr_max_k^p`` (the package's weight), in 60-digit mpmath."""
    import mpmath

    with mpmath.workdps(60):  # not mpmath.mp.dps = 60: that leaked to later tests
        out, total, lr_max = [], mpmath.mpf(0), mpmath.mpf(-1)
        for k in range(steps):
            lr_k = mpmath.mpf(lr) * ((k + 1) / mpmath.mpf(warmup) if k < warmup else 1)
            lr_max = max(lr_max, lr_k)
            weight = mpmath.mpf(k + 1) ** mpmath.mpf(r) * lr_max ** mpmath.mpf(power)
            total += weight
            out.append(float(weight / total) if total else 0.0)
        return out


@pytest.mark.parametrize(
    ("warmup", "r", "power", "lr"),
    [(0, 1e308, 2.0, 0.1), (3, 500.0, 2.0, 0.5), (0, -1e308, 2.0, 0.1), (2, 1.0, 300.0, 1e200), (4, 900.0, 0.5, 3.0)],
)
def test_schedule_free_weight_past_the_package_overflow_against_mpmath(warmup, r, power, lr) -> None:
    """Where the package's Python-float weight overflows (it raises OverflowError), c_t goes on finite and equal
    to the exact weight (issue 13); before that it is the package's own number."""
    pytest.importorskip("mpmath")
    weights = ScheduleFreeWeights(warmup_steps=warmup, r=r, weight_lr_power=power)
    got = [weights.at(t, lr)[0] for t in range(1, 41)]
    exact = _schedule_free_weights_mpmath(warmup, r, power, lr, 40)
    assert got == pytest.approx(exact, rel=1e-12, abs=1e-300)


@pytest.mark.skipif(importlib.util.find_spec("schedulefree") is None, reason="the reference package (test extras)")
def test_schedule_free_weight_is_the_package_own_while_the_package_is_finite() -> None:
    """schedulefree's SGDScheduleFree keeps lr_max and weight_sum in its group: c_t = w_t / weight_sum with
    w_t = weight_sum_t - weight_sum_{t-1}; at r = 500 its step 5 raises OverflowError (5^500), ours goes on."""
    import schedulefree

    param = torch.nn.Parameter(torch.ones(1))
    opt = schedulefree.SGDScheduleFree([param], lr=0.5, warmup_steps=2, r=500.0, weight_lr_power=2.0)
    opt.train()
    weights = ScheduleFreeWeights(warmup_steps=2, r=500.0, weight_lr_power=2.0)
    previous = 0.0
    for t in range(1, 5):
        param.grad = torch.ones(1)
        opt.step()
        total = opt.param_groups[0]["weight_sum"]
        assert weights.at(t, 0.5)[0] == pytest.approx((total - previous) / total, rel=1e-13)
        previous = total
    param.grad = torch.ones(1)
    with pytest.raises(OverflowError):
        opt.step()
    assert weights.at(5, 0.5)[0] == pytest.approx(1.0 - (4 / 5) ** 500, rel=1e-15)


@pytest.mark.parametrize("lr", [5e-324, 1e-310, 1e308])
def test_laprop_lr_correction_is_adams_at_any_lr(lr) -> None:
    """c_t = a_t / lr with a_t the EMA(beta1) of a constant lr is 1 - beta1^t (Adam's bias correction); at
    lr = 5e-324 a_t underflowed to 0 and the step divided by it (ZeroDivisionError, the sweep of issue 13)."""
    from optfilters.package_stages import _LrEma

    ema = _LrEma(0.9)
    assert [ema.correction(t, lr) for t in (1, 2, 10)] == pytest.approx([1 - 0.9**t for t in (1, 2, 10)], rel=1e-14)
    loss = predict("laprop", lr=lr, curvatures=[1.0], steps=8).expected_loss
    assert np.all(np.isfinite(loss)) if lr < 1.0 else np.all(np.isinf(loss[1:]))  # 1e308: a step of lr overflows
