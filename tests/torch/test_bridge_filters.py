"""The bridge runs linear stages exactly and robustly.

* For linear models the update sequence is ``-lr * lfilter(b, a, grads)``
  (``sosfilt`` above order 2), for random stable filters (hypothesis).
* Every catalogue model, fed an open-loop gradient sequence, follows the core's
  reference executor (``NumpyOptimizer``), on every execution path.
* In float32, an 8th-order Butterworth low-pass (cutoff 0.005 cycles/step) and
  a pole at 0.9999 stay accurate over 100k steps against float64 SciPy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

import optfilters
from optfilters import CATALOGUE, ArmaFilter
from optfilters.torch import FilterOptimizer
from optfilters.torch._kernels import SingleOps, bind, execute
from optfilters.torch._native import NativeKernel, compiler
from optfilters.torch._program import Plan


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def updates(opt: torch.optim.Optimizer, param: torch.Tensor, grads: np.ndarray) -> np.ndarray:
    """The update of each step, with the parameter reset to zero before it (so it is read exactly)."""
    out = []
    for g in grads:
        with torch.no_grad():
            param.zero_()
        param.grad = torch.as_tensor(g, dtype=param.dtype)
        opt.step()
        out.append(param.detach().double().numpy().copy())
    return np.array(out)


@st.composite
def stable_filters(draw: Any) -> ArmaFilter:
    """Random poles strictly inside the unit circle (conjugate pairs and real ones) and a random numerator."""
    pairs = draw(st.integers(0, 3))
    reals = draw(st.integers(0 if pairs else 1, 3))
    poles: list[complex] = []
    for _ in range(pairs):
        radius = draw(st.floats(0.05, 0.97))
        angle = draw(st.floats(0.05, 3.09))
        poles += [radius * np.exp(1j * angle), radius * np.exp(-1j * angle)]
    poles += [draw(st.floats(-0.97, 0.97)) for _ in range(reals)]
    order = len(poles)
    b = draw(st.lists(st.floats(-2.0, 2.0), min_size=1, max_size=order + 1))
    if not any(abs(v) > 1e-3 for v in b):
        b = [1.0]
    if draw(st.booleans()):
        return ArmaFilter(b, np.real(np.poly(poles)))
    zeros = [draw(st.floats(-1.5, 1.5)) for _ in range(draw(st.integers(0, order)))]
    return ArmaFilter.from_zpk(zeros, poles, draw(st.floats(0.1, 2.0)))


def reference(f: ArmaFilter, grads: np.ndarray) -> np.ndarray:
    if f.order > 2 and not f.is_fir:
        return np.asarray(signal.sosfilt(f.to_sos(), grads, axis=0))
    return np.asarray(signal.lfilter(f.b, f.a, grads, axis=0))


@settings(max_examples=40, deadline=None)
@given(f=stable_filters(), lr=st.floats(1e-3, 1.0), foreach=st.booleans(), seed=st.integers(0, 2**16))
def test_linear_updates_equal_scipy_filter(f: ArmaFilter, lr: float, foreach: bool, seed: int) -> None:
    grads = np.random.default_rng(seed).normal(size=(80, 2)) + 0.5
    w = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    got = updates(FilterOptimizer([w], f, lr=lr, foreach=foreach), w, grads)
    expected = -lr * reference(f, grads)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10 * scale)


@settings(max_examples=25, deadline=None)
@given(b=st.lists(st.floats(-2.0, 2.0), min_size=1, max_size=5), seed=st.integers(0, 2**16))
def test_fir_filters_equal_scipy_filter(b: list[float], seed: int) -> None:
    grads = np.random.default_rng(seed).normal(size=(30, 3))
    w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    got = updates(FilterOptimizer([w], ArmaFilter(b), lr=0.5), w, grads)
    np.testing.assert_allclose(got, -0.5 * signal.lfilter(b, [1.0], grads, axis=0), rtol=1e-12, atol=1e-12)


def catalogue_settings() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for name, entry in CATALOGUE.items():
        for example in ({}, *entry.examples):
            if name == "custom" and "b" not in example:
                continue
            cases.append((name, dict(example)))
    return cases


#: How far the bridge may be from the numpy executor when an operation's torch form computes in a coarser dtype
#: (Muon's bfloat16 Newton-Schulz iteration against float64), relative to the largest parameter.
PRECISION_TOLERANCE = {"bfloat16": 1e-2}


@pytest.mark.parametrize(("name", "overrides"), catalogue_settings(), ids=lambda v: str(v))
def test_every_catalogue_model_follows_the_reference_executor(name: str, overrides: dict[str, Any]) -> None:
    rng = np.random.default_rng(7)
    shape = (3, 2) if CATALOGUE[name].parameter_ndim == 2 else (3,)  # matrices for matrix-only entries
    scales = np.array([1.0, 0.1, 10.0]).reshape((3,) + (1,) * (len(shape) - 1))
    grads = rng.normal(size=(60, *shape)) * scales + 0.3
    theta0 = rng.normal(size=shape)
    model = optfilters.get(name, **overrides)
    if "lr" not in overrides:
        model = optfilters.get(name, **{**overrides, "lr": 0.01})
    traj = model.simulate(grads, theta0=theta0)
    expected = traj.params[1:]
    precision = model.plan().program(1).precision
    for options in ({"foreach": False}, {"foreach": True}):
        w = torch.nn.Parameter(torch.tensor(theta0))
        w2 = torch.nn.Parameter(torch.tensor(theta0))
        opt = FilterOptimizer([w, w2], model, **options)  # two tensors: the multi-tensor path runs lists
        got = []
        for g in grads:
            w.grad = torch.tensor(g)
            w2.grad = torch.tensor(g)
            opt.step()
            got.append(w.detach().numpy().copy())
        if precision is None:
            np.testing.assert_allclose(np.array(got), expected, rtol=1e-11, atol=1e-13)
        else:  # the bridge computes an operation in a coarser dtype, as the reference implementation does
            error = np.max(np.abs(np.array(got) - expected)) / np.max(np.abs(expected))
            assert 0.0 < error <= PRECISION_TOLERANCE[precision], error
        assert torch.equal(w, w2)
        key = model.parameter_output
        if key is not None and traj.averaged is not None:  # the averaged parameters are the same output
            np.testing.assert_allclose(opt.state[w][key].numpy(), traj.averaged[-1], rtol=1e-11, atol=1e-13)


def test_foreach_and_single_tensor_paths_agree_bitwise_on_cpu() -> None:
    gen = torch.Generator().manual_seed(3)
    for name, overrides in catalogue_settings():
        shapes = [(3, 4), (2, 5) if CATALOGUE[name].parameter_ndim == 2 else (5,)]
        runs = []
        for foreach in (False, True):
            params = [torch.nn.Parameter(torch.ones(s)) for s in shapes]
            opt = FilterOptimizer(
                params, name, lr=1e-2, foreach=foreach, **{k: v for k, v in overrides.items() if k != "lr"}
            )
            gen.manual_seed(3)
            for _ in range(15):
                for p in params:
                    p.grad = torch.randn(p.shape, generator=gen)
                opt.step()
            runs.append(params)
        for a, b in zip(*runs, strict=True):
            assert torch.equal(a, b), (name, overrides)


# ----------------------------------------------------------------------------- float32 over 100k steps


def run_program(model: optfilters.OptimizerModel, grads: torch.Tensor, fused: bool = False) -> np.ndarray:
    """The bridge's kernels (eager single-tensor, or the fused C kernel) without the optimizer's bookkeeping."""
    program = Plan(model, torch.float32).program(2)  # LTI: every step after the first is the same program
    scalars = program.scalar_values(2, 1.0)
    state = {spec.key: torch.full(grads.shape[1:], spec.init) for spec in program.state}
    out = torch.zeros_like(grads)
    if fused:
        kernel = NativeKernel(program, "float32")
        for t in range(grads.shape[0]):
            kernel.run([out[t]], [grads[t]], [state], scalars, torch.float32)
    else:
        steps = bind(program, SingleOps)
        registers = {f"state.{k}": v for k, v in state.items()}
        for t in range(grads.shape[0]):
            regs = dict(registers)
            regs["grad"] = grads[t]
            regs["param"] = out[t]
            execute(steps, regs, scalars)
    return -out.double().numpy()


ROBUST_CASES = {
    "butterworth-8": optfilters.get("butterworth", order=8, cutoff=0.005, dc_gain=1.0, lr=1.0),
    "ema-0.9999": optfilters.get("custom", b=[1e-4], a=[1.0, -0.9999], lr=1.0),
    "heavy-ball-0.9999": optfilters.get("momentum", momentum=0.9999, lr=1.0),
}


def float32_input(steps: int) -> np.ndarray:
    rng = np.random.default_rng(5)
    return (1.0 + rng.normal(size=(steps, 3))).astype(np.float32)


def sos_reference(model: optfilters.OptimizerModel, x: np.ndarray) -> np.ndarray:
    f = model.gradient.terms[0].filter  # the design itself (exact zeros, poles and gain)
    return np.asarray(signal.sosfilt(f.to_sos(), x.astype(np.float64), axis=0))


@pytest.mark.parametrize("name", list(ROBUST_CASES))
def test_float32_filters_stay_accurate_over_100k_steps(name: str) -> None:
    model = ROBUST_CASES[name]
    x = float32_input(100_000)
    expected = sos_reference(model, x)
    peak = np.abs(expected).max()
    if name == "butterworth-8":
        # 25 eager operations a step: 20k steps eagerly, 100k with the fused kernel (same program, quick)
        eager = run_program(model, torch.from_numpy(x[:20_000]))
        assert np.abs(eager - expected[:20_000]).max() <= 1e-5 * peak
        if compiler() is None:
            pytest.skip("no C compiler for the fused kernel")
        got = run_program(model, torch.from_numpy(x), fused=True)
    else:
        got = run_program(model, torch.from_numpy(x))
    error = np.abs(got - expected)
    assert np.all(np.isfinite(got))
    assert error.max() <= 5e-5 * peak, f"{name}: max error {error.max() / peak:.2e} of the peak"
    assert error[-10_000:].max() <= 5e-5 * peak  # no drift at the end


def test_program_harness_is_the_optimizer_step() -> None:
    x = float32_input(300)
    for model in ROBUST_CASES.values():
        w = torch.nn.Parameter(torch.zeros(3))
        got = -updates(FilterOptimizer([w], model, foreach=False), w, x)
        np.testing.assert_array_equal(got, run_program(model, torch.from_numpy(x)))
        if compiler() is not None:
            got = -updates(FilterOptimizer([w], model, fused=True), w, x)
            np.testing.assert_array_equal(got, run_program(model, torch.from_numpy(x), fused=True))


def test_naive_float32_recursion_would_fail_the_same_bound() -> None:
    """The bound above is meaningful: ``y = p y + x`` with p rounded to float32 misses it for p = 0.9999."""
    x = float32_input(20_000)
    y = np.zeros(3, dtype=np.float32)
    out = np.empty_like(x)
    for t in range(x.shape[0]):
        y = np.float32(0.9999) * y + x[t]
        out[t] = y
    expected = signal.lfilter([1.0], [1.0, -0.9999], x.astype(np.float64), axis=0)
    assert np.abs(out - expected).max() > 5e-5 * np.abs(expected).max()


def test_a_cancelled_pair_runs_as_entered_and_is_not_excited() -> None:
    """README: the bridge runs ``custom --b 1,-1 --a 1,-1.9,0.9`` as entered (a second-order state),
    and from rest its updates are torch.optim.SGD's with momentum 0.9 (the pair at z = 1 stays unexcited,
    up to rounding)."""
    model = optfilters.get("custom", b=[1.0, -1.0], a=[1.0, -1.9, 0.9], lr=0.01)
    torch.manual_seed(0)
    start = torch.randn(5, dtype=torch.float64)
    curvature = torch.linspace(0.5, 3.0, 5, dtype=torch.float64)
    ours = start.clone().requires_grad_(True)
    theirs = start.clone().requires_grad_(True)
    opt_ours = FilterOptimizer([ours], model)
    opt_theirs = torch.optim.SGD([theirs], lr=0.01, momentum=0.9)
    for _ in range(200):
        for p, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            (0.5 * curvature * p**2).sum().backward()
            opt.step()
    # equal to rounding: the pair's mode at z = 1 only sums rounding errors (1e-14 after 200 steps)
    torch.testing.assert_close(ours.detach(), theirs.detach(), rtol=0, atol=1e-12)
    state = opt_ours.state[ours]
    assert sum(v.numel() for v in state.values() if torch.is_tensor(v) and v.shape == ours.shape) >= 2 * ours.numel()
