"""Sharpness by Hessian-vector products against explicitly formed Hessians, and the optimizer's preconditioner.

The references are independent of the code under test: the Hessian comes from
``torch.autograd.functional.hessian`` of the loss as a function of the flat
parameter vector and is diagonalised by LAPACK; the preconditioner is rebuilt
from ``torch.optim``'s own state (``exp_avg_sq``, ``max_exp_avg_sq``,
``square_avg``/``grad_avg``, ``exp_inf``) after identical gradient sequences.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from optfilters.network import DigitsMLP, adaptive_denominator, sharpness_threshold, top_eigenvalue
from optfilters.torch import FilterOptimizer


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _tiny_problem(steps: int = 0) -> tuple[object, list[torch.Tensor], np.ndarray]:
    """A 64-3-10 tanh MLP on 20 digits (235 parameters), optionally trained a few steps, with its exact Hessian."""
    problem = DigitsMLP(hidden=(3,), samples=20).build(seed=3)
    params = problem.parameters
    opt = torch.optim.SGD(params, lr=0.5)
    for _ in range(steps):
        opt.zero_grad()
        problem.full_loss().backward()
        opt.step()
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]
    names = [name for name, _ in problem.module.named_parameters()]

    def loss_of(flat: torch.Tensor) -> torch.Tensor:
        chunks = torch.split(flat, sizes)
        values = {n: c.reshape(s) for n, c, s in zip(names, chunks, shapes, strict=True)}
        out = torch.func.functional_call(problem.module, values, (problem.inputs,))
        return problem.loss(out, problem.targets)

    flat = torch.cat([p.detach().reshape(-1) for p in params])
    hessian = torch.autograd.functional.hessian(loss_of, flat).numpy()
    return problem, params, hessian


@pytest.mark.parametrize("trained", [0, 30])
def test_lanczos_and_arpack_equal_the_explicit_hessian(trained: int) -> None:
    problem, params, hessian = _tiny_problem(trained)
    assert np.allclose(hessian, hessian.T, atol=1e-12)
    exact = np.linalg.eigvalsh(hessian)
    top = exact[-1]
    for method in ("lanczos", "arpack"):
        result = top_eigenvalue(problem.full_loss, params, method=method, tol=1e-10, max_iterations=300)
        assert result.converged
        assert result.value == pytest.approx(top, rel=1e-8), method
        # The eigenvector is one: H v = lambda v with the explicit Hessian.
        v = result.vector
        assert np.linalg.norm(hessian @ v - top * v) < 1e-6 * abs(top)
    if trained:
        assert exact[0] < 0.0  # an indefinite Hessian: Lanczos returned the largest algebraic eigenvalue


def test_power_iteration_finds_the_largest_modulus() -> None:
    problem, params, hessian = _tiny_problem(0)
    exact = np.linalg.eigvalsh(hessian)
    largest = exact[np.argmax(np.abs(exact))]
    result = top_eigenvalue(problem.full_loss, params, method="power", tol=1e-9, max_iterations=5000)
    assert result.value == pytest.approx(largest, rel=1e-6)


def test_preconditioned_sharpness_equals_the_explicit_generalised_eigenvalue() -> None:
    problem, params, hessian = _tiny_problem(10)
    gen = torch.Generator().manual_seed(5)
    pre = [torch.rand(p.shape, generator=gen, dtype=torch.float64) + 0.1 for p in params]
    diag = torch.cat([a.reshape(-1) for a in pre]).numpy()
    exact = np.linalg.eigvals(hessian / diag[:, None])  # D^-1 H (the preconditioner P = 1/D times H)
    top = float(np.max(exact.real))
    result = top_eigenvalue(problem.full_loss, params, denominator=pre, tol=1e-10, max_iterations=300)
    assert result.value == pytest.approx(top, rel=1e-8)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 10),
    seed=st.integers(0, 2**31 - 1),
)
def test_lanczos_returns_the_largest_eigenvalue_of_any_quadratic(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, n))
    a = torch.tensor(m + m.T, dtype=torch.float64)
    w = torch.tensor(rng.standard_normal(n), dtype=torch.float64, requires_grad=True)
    result = top_eigenvalue(lambda: 0.5 * w @ a @ w, [w], tol=1e-12)
    top = float(np.linalg.eigvalsh(a.numpy())[-1])
    assert result.value == pytest.approx(top, rel=1e-9, abs=1e-9)


def test_top_eigenvalue_rejects_bad_input() -> None:
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    loss = lambda: (w**2).sum()  # noqa: E731
    with pytest.raises(ValueError, match=r"method must be one of lanczos, arpack, power, got 'qr'"):
        top_eigenvalue(loss, [w], method="qr")
    with pytest.raises(ValueError, match=r"tol must be a finite number > 0, got -1"):
        top_eigenvalue(loss, [w], tol=-1)
    with pytest.raises(ValueError, match="denominator must be positive"):
        top_eigenvalue(loss, [w], denominator=[torch.zeros(3, dtype=torch.float64)])
    with pytest.raises(ValueError, match=r"v0 must have 3 entries"):
        top_eigenvalue(loss, [w], v0=[1.0])


# ----------------------------------------------------------------------------- the optimizer's preconditioner


def _twin_runs(name: str, torch_cls: type, steps: int, hp: dict, torch_hp: dict) -> tuple[FilterOptimizer, object]:
    gen = torch.Generator().manual_seed(11)
    shapes = [(4, 3), (5,)]
    ours = [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64)) for s in shapes]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    opt = FilterOptimizer(ours, name, lr=0.01, **hp)
    ref = torch_cls(theirs, lr=0.01, **torch_hp)
    for _ in range(steps):
        for a, b in zip(ours, theirs, strict=True):
            g = torch.randn(a.shape, generator=gen, dtype=torch.float64) * 3.0
            a.grad, b.grad = g.clone(), g.clone()
        opt.step()
        ref.step()
    return opt, ref


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_preconditioner_is_torch_adams_denominator(amsgrad: bool) -> None:
    steps, beta2, eps = 7, 0.99, 1e-3
    opt, ref = _twin_runs(
        "adam",
        torch.optim.Adam,
        steps,
        {"beta2": beta2, "eps": eps, "amsgrad": amsgrad},
        {"betas": (0.9, beta2), "eps": eps, "amsgrad": amsgrad},
    )
    got = adaptive_denominator(opt)
    for p, mine in zip(ref.param_groups[0]["params"], got, strict=True):
        v = ref.state[p]["max_exp_avg_sq" if amsgrad else "exp_avg_sq"]
        expected = (v / (1.0 - beta2**steps)).sqrt() + eps
        torch.testing.assert_close(mine, expected, rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("centered", [False, True])
def test_rmsprop_preconditioner(centered: bool) -> None:
    opt, ref = _twin_runs("rmsprop", torch.optim.RMSprop, 5, {"centered": centered}, {"centered": centered})
    for p, mine in zip(ref.param_groups[0]["params"], adaptive_denominator(opt), strict=True):
        v = ref.state[p]["square_avg"]
        if centered:
            v = v - ref.state[p]["grad_avg"] ** 2
        torch.testing.assert_close(mine, v.sqrt() + 1e-8, rtol=1e-12, atol=0.0)


def test_adamax_preconditioner_is_the_peak() -> None:
    opt, ref = _twin_runs("adamax", torch.optim.Adamax, 5, {}, {})
    for p, mine in zip(ref.param_groups[0]["params"], adaptive_denominator(opt), strict=True):
        torch.testing.assert_close(mine, ref.state[p]["exp_inf"], rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("steps", [3, 12])
def test_radam_preconditioner_includes_the_rectification(steps: int) -> None:
    beta2 = 0.999
    opt, ref = _twin_runs("radam", torch.optim.RAdam, steps, {}, {})
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    rho_t = rho_inf - 2.0 * steps * beta2**steps / (1.0 - beta2**steps)
    for p, mine in zip(ref.param_groups[0]["params"], adaptive_denominator(opt), strict=True):
        if rho_t <= 5.0:  # not rectified yet: the update is the first moment itself
            torch.testing.assert_close(mine, torch.ones_like(mine))
            continue
        rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        expected = (ref.state[p]["exp_avg_sq"].sqrt() + 1e-8) / math.sqrt(1.0 - beta2**steps) / rect
        torch.testing.assert_close(mine, expected, rtol=1e-12, atol=0.0)
    assert (steps > 5) == (rho_t > 5.0)


def test_preconditioner_errors() -> None:
    w = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="take a step first"):
        adaptive_denominator(FilterOptimizer([w], "adam", lr=0.1))
    with pytest.raises(ValueError, match="need an RMS or peak normaliser; momentum has none"):
        adaptive_denominator(FilterOptimizer([w], "momentum", lr=0.1))
    with pytest.raises(ValueError, match="2-term second moment"):
        w.grad = torch.ones(2, dtype=torch.float64)
        opt = FilterOptimizer([w], "qhadam", lr=0.1)
        opt.step()
        adaptive_denominator(opt)


def test_frozen_adam_preconditioned_sharpness_on_a_quadratic() -> None:
    """On f = 1/2 sum h_i w_i^2 the preconditioned sharpness is max h_i / P_i, with P read from the state."""
    h = torch.tensor([4.0, 1.0, 0.25], dtype=torch.float64)
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64))
    opt = FilterOptimizer([w], "adam", lr=0.01, betas=(0.9, 0.999))
    for _ in range(5):
        opt.zero_grad()
        (0.5 * (h * w**2).sum()).backward()
        opt.step()
    (pre,) = adaptive_denominator(opt)
    value = top_eigenvalue(lambda: 0.5 * (h * w**2).sum(), [w], denominator=[pre], tol=1e-12).value
    assert value == pytest.approx(float((h / pre).max()), rel=1e-10)


# ----------------------------------------------------------------------------- thresholds (closed forms)


@pytest.mark.parametrize("lr", [0.01, 0.4])
@pytest.mark.parametrize("mu", [0.5, 0.9])
def test_sharpness_thresholds_are_the_closed_forms(lr: float, mu: float) -> None:
    assert sharpness_threshold("sgd", lr=lr) == pytest.approx(2.0 / lr, rel=1e-9)
    assert sharpness_threshold("momentum", lr=lr, momentum=mu) == pytest.approx((2 + 2 * mu) / lr, rel=1e-9)
    assert sharpness_threshold("nesterov", lr=lr, momentum=mu) == pytest.approx(
        (2 + 2 * mu) / ((1 + 2 * mu) * lr), rel=1e-9
    )
    assert sharpness_threshold("adam", lr=lr, beta1=mu) == pytest.approx((2 + 2 * mu) / ((1 - mu) * lr), rel=1e-9)
