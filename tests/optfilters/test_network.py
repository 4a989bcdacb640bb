"""The empirical transfer function recovers known filters from recorded training sequences.

The references are closed forms written out here (the heavy-ball filter
``1 / (1 - mu e^{-i w})``, Nesterov's ``((1 + mu) - mu e^{-i w}) / (1 - mu e^{-i w})``)
and :func:`scipy.signal.coherence` for the coherence of a single coordinate.

observe_network: recording is free when off and does not perturb training; results are plain data; errors.

The reference trajectory is a hand-written training loop over the same
network with :class:`optfilters.torch.FilterOptimizer` and nothing else.

Sharpness by Hessian-vector products against explicitly formed Hessians, and the optimizer's preconditioner.

The references are independent of the code under test: the Hessian comes from
``torch.autograd.functional.hessian`` of the loss as a function of the flat
parameter vector and is diagonalised by LAPACK; the preconditioner is rebuilt
from ``torch.optim``'s own state (``exp_avg_sq``, ``max_exp_avg_sq``,
``square_avg``/``grad_avg``, ``exp_inf``) after identical gradient sequences.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

import optfilters
from optfilters.network import (
    CoordinateRecorder,
    DigitsMLP,
    adaptive_denominator,
    empirical_response,
    observe_network,
    sharpness_threshold,
    top_eigenvalue,
)
from optfilters.torch import FilterOptimizer


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _noisy_quadratic_run(name: str, steps: int, coordinates: int, **hp: float) -> tuple[np.ndarray, np.ndarray]:
    """FilterOptimizer on f = 1/2 sum h_i w_i^2 + xi . w (fresh white noise xi every step): recorded g and u."""
    gen = torch.Generator().manual_seed(0)
    d = 256
    h = torch.logspace(-2, 0, d, dtype=torch.float64)
    w = torch.nn.Parameter(torch.randn(d, generator=gen, dtype=torch.float64))
    lr = hp.pop("lr")
    opt = FilterOptimizer([w], name, lr=lr, **hp)
    rec = CoordinateRecorder([w], coordinates, steps, seed=1)
    for t in range(steps):
        opt.zero_grad()
        noise = torch.randn(d, generator=gen, dtype=torch.float64)
        (0.5 * (h * w**2).sum() + (noise * w).sum()).backward()
        rec.before_step(t)
        opt.step()
        rec.after_step(t)
    g = rec.gradients.numpy()
    u = -np.diff(rec.params.numpy(), axis=0) / lr
    return g, u


def _closed_form(freqs: np.ndarray, b: list[float], a: list[float]) -> np.ndarray:
    zinv = np.exp(-2j * np.pi * freqs)
    return np.asarray(np.polyval(b[::-1], zinv) / np.polyval(a[::-1], zinv))


@pytest.mark.parametrize(
    ("name", "hp", "b", "a"),
    [
        ("momentum", {"momentum": 0.9, "lr": 0.01}, [1.0], [1.0, -0.9]),
        ("nesterov", {"momentum": 0.9, "lr": 0.005}, [1.9, -0.9], [1.0, -0.9]),
        ("sgd", {"lr": 0.1}, [1.0], [1.0]),
    ],
)
def test_recovers_a_known_filter_from_white_noise_gradients(
    name: str, hp: dict, b: list[float], a: list[float]
) -> None:
    g, u = _noisy_quadratic_run(name, steps=4096, coordinates=32, **dict(hp))
    model = optfilters.get(name, **{k: v for k, v in hp.items() if k != "lr"})
    r = empirical_response(g, u, model)
    truth = np.abs(_closed_form(r.freqs, b, a))
    np.testing.assert_allclose(r.predicted_magnitude, truth, rtol=1e-12)
    coherent = r.coherence >= 0.95
    assert coherent.mean() > 0.95  # an exact linear relation: coherent everywhere but the mean-removed DC bin
    np.testing.assert_allclose(r.magnitude[coherent], truth[coherent], rtol=0.05)
    # Phase too (away from DC): the estimate is the complex H, not only its size.
    far = coherent & (r.freqs > 0.02)
    np.testing.assert_allclose(r.phase[far], np.angle(_closed_form(r.freqs[far], b, a)), atol=0.05)


def test_coherence_of_one_coordinate_is_scipys() -> None:
    rng = np.random.default_rng(4)
    g = rng.standard_normal(2048)
    u = signal.lfilter([1.0], [1.0, -0.5], g) + 0.3 * rng.standard_normal(2048)
    r = empirical_response(g, u, nperseg=128)
    freqs, expected = signal.coherence(g, u, nperseg=128)
    np.testing.assert_allclose(r.freqs, freqs)
    np.testing.assert_allclose(r.coherence, expected, rtol=1e-10, atol=1e-12)
    assert np.all(np.isnan(r.predicted_magnitude))


def test_constant_coordinates_are_left_out() -> None:
    rng = np.random.default_rng(0)
    g = np.column_stack([rng.standard_normal(512), np.zeros(512)])
    r = empirical_response(g, 3.0 * g, nperseg=64)
    assert r.coordinates == 1
    np.testing.assert_allclose(r.magnitude, 3.0)


def test_empirical_response_errors() -> None:
    g = np.zeros((100, 2))
    with pytest.raises(ValueError, match="same"):
        empirical_response(g, np.zeros((100, 3)))
    with pytest.raises(ValueError, match="at least 8 steps, got 4"):
        empirical_response(np.ones((4, 1)), np.ones((4, 1)))
    with pytest.raises(ValueError, match="every recorded gradient is constant"):
        empirical_response(g, g)
    with pytest.raises(ValueError, match=r"nperseg must be in \[8, 100\], got 1000"):
        empirical_response(np.random.default_rng(0).standard_normal((100, 2)), g, nperseg=1000)
    with pytest.raises(ValueError, match="needs its frozen gains"):
        x = np.random.default_rng(0).standard_normal((100, 2))
        empirical_response(x, x, optfilters.get("adam"))


# ----------------------------------------------------------------------------- on the real network


def test_momentum_with_weight_decay_on_the_network_is_exact() -> None:
    """Mini-batch momentum with coupled weight decay: u = H g_eff exactly, so the estimate equals the filter."""
    obs = observe_network(
        "momentum",
        lr=0.01,
        momentum=0.9,
        weight_decay=1e-3,
        steps=1200,
        record_coordinates=64,
        record_start=200,
        network={"hidden": [16], "samples": 200, "batch_size": 20},
    )
    e = obs.empirical
    assert e is not None and e.label == "exact"
    assert e.coherent_fraction(0.95) > 0.95
    assert e.relative_error(0.95, "max") < 0.05
    truth = np.abs(_closed_form(e.freqs, [1.0], [1.0, -0.9]))
    np.testing.assert_allclose(e.predicted_magnitude, truth, rtol=1e-12)


def test_adam_linearised_prediction_on_the_network() -> None:
    """Adam, mini-batch, after its transient: the direction filter times the recorded frozen gains."""
    obs = observe_network(
        "adam",
        lr=1e-3,
        steps=1500,
        record_coordinates=64,
        record_start=500,
        network={"hidden": [16], "samples": 200, "batch_size": 20},
    )
    e = obs.empirical
    assert e is not None and e.label.startswith("linearised")
    assert e.coherent_fraction(0.9) > 0.8
    assert e.relative_error(0.9) < 0.05
    # Far above the first moment's corner the prediction is the EMA's (1-beta1)/(1+beta1) times the gain, not 1.
    assert e.predicted_magnitude[-1] < e.predicted_magnitude[1]
    json.dumps(e.as_dict(), allow_nan=False)


NET = {"hidden": [16], "samples": 200}


def _manual_run(name: str, steps: int, **hp: object) -> tuple[list[torch.Tensor], list[float], FilterOptimizer]:
    problem = DigitsMLP(hidden=(16,), samples=200).build(seed=0)
    params = problem.parameters
    opt = FilterOptimizer(params, name, **hp)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = problem.full_loss()
        loss.backward()
        losses.append(float(loss.detach()))
        opt.step()
    return [p.detach().clone() for p in params], losses, opt


@pytest.mark.parametrize(("name", "hp"), [("momentum", {"momentum": 0.9}), ("adam", {})])
def test_recording_off_allocates_nothing_and_recording_on_changes_nothing(name: str, hp: dict) -> None:
    steps, lr = 30, 0.05 if name == "momentum" else 0.01
    expected, losses, reference = _manual_run(name, steps, lr=lr, **hp)
    off = observe_network(name, lr=lr, steps=steps, network=NET, **hp)
    on = observe_network(name, lr=lr, steps=steps, network=NET, record_coordinates=50, **hp)
    assert off.recording is None and off.empirical is None and off.sharpness is None
    # The optimizer's state holds exactly what a bare FilterOptimizer holds: no recording tensors.
    ref_keys = [sorted(reference.state[p]) for p in reference.param_groups[0]["params"]]
    off_keys = [sorted(off.optimizer.state[p]) for p in off.optimizer.param_groups[0]["params"]]
    assert off_keys == ref_keys
    for obs in (off, on):
        got = [p.detach() for p in obs.problem.parameters]
        for a, b in zip(got, expected, strict=True):
            assert torch.equal(a, b)  # bit for bit: observation does not perturb training
        np.testing.assert_array_equal(obs.loss[:-1], losses)
    # The recording is what happened: preallocated (steps, coordinates) rows equal to the parameters' path.
    rec = on.recording
    assert rec is not None
    assert tuple(rec.gradients.shape) == (steps, 50) and tuple(rec.params.shape) == (steps + 1, 50)
    flat_final = torch.cat([p.detach().reshape(-1) for p in expected])
    np.testing.assert_array_equal(rec.params[-1].numpy(), flat_final[torch.as_tensor(rec.index)].numpy())
    assert on.empirical is not None and on.empirical.steps == steps


def test_recorded_gradient_is_the_step_gradient() -> None:
    """Row t of the recording is the gradient that step t used (SGD: the update is -lr times it)."""
    obs = observe_network("sgd", lr=0.1, steps=12, network=NET, record_coordinates=20)
    rec = obs.recording
    assert rec is not None
    update = np.diff(rec.params.numpy(), axis=0)
    np.testing.assert_allclose(update, -0.1 * rec.gradients.numpy(), rtol=1e-12, atol=1e-15)
    # ... and the empirical |H| of plain SGD is exactly 1.
    assert obs.empirical is not None
    np.testing.assert_allclose(obs.empirical.magnitude, 1.0, rtol=1e-9)
    np.testing.assert_allclose(obs.empirical.predicted_magnitude, 1.0, rtol=1e-12)


def test_results_are_json_and_plot() -> None:
    obs = observe_network(
        "adam",
        lr=0.005,
        steps=60,
        network={**NET, "batch_size": 25},
        record_coordinates=30,
        sharpness_every=20,
    )
    data = json.loads(json.dumps(obs.as_dict(), allow_nan=False))
    assert data["steps"] == list(range(61))
    assert data["sharpness"]["steps"] == [20, 40, 60]  # preconditioned: from the first step with optimizer state
    assert data["sharpness"]["threshold"] == pytest.approx(38.0 / 0.005)
    assert data["empirical"]["label"].startswith("linearised")
    assert data["network"]["batch_size"] == 25
    json.dumps(obs.sharpness.as_dict(), allow_nan=False)
    json.dumps(obs.empirical.as_dict(), allow_nan=False)

    import matplotlib.pyplot as plt

    drawn = obs.plot()
    assert len(drawn.axes) == obs.panels == 4
    assert "sharpness.sharpness" in drawn.artists and "empirical.empirical" in drawn.artists
    plt.close(drawn.figure)
    single = obs.sharpness.plot()
    plt.close(single.figure)


def test_a_divergent_run_stops_and_says_so() -> None:
    obs = observe_network("sgd", lr=50.0, steps=40, network=NET, sharpness_every=5)
    assert obs.diverged
    assert np.isnan(obs.loss[-1])
    json.dumps(obs.as_dict(), allow_nan=False)


def test_normalisers_without_a_readable_denominator() -> None:
    """Adadelta: recording still measures |H| (no prediction); the preconditioned sharpness refuses clearly."""
    obs = observe_network("adadelta", lr=1.0, steps=40, network=NET, record_coordinates=20)
    assert obs.empirical is not None and obs.empirical.label == "no prediction"
    assert np.all(np.isnan(obs.empirical.predicted_magnitude))
    json.dumps(obs.as_dict(), allow_nan=False)
    with pytest.raises(ValueError, match="need an RMS or peak normaliser; adadelta has AdadeltaNormaliser"):
        observe_network("adadelta", lr=1.0, steps=10, network=NET, sharpness_every=5)


def test_observe_options_do_not_shadow_hyperparameters() -> None:
    import inspect

    options = set(inspect.signature(observe_network).parameters) - {"name_or_model", "hyperparameters", "lr"}
    hyperparameters = {h.name for entry in optfilters.CATALOGUE.values() for h in entry.hyperparameters}
    assert not options & hyperparameters


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"lr must be a finite number > 0, got -1"):
        observe_network("sgd", lr=-1, steps=3)
    with pytest.raises(ValueError, match=r"steps must be >= 1, got 0"):
        observe_network("sgd", lr=0.1, steps=0)
    with pytest.raises(ValueError, match=r"record_coordinates must be in \[0, 1210\], got 5000"):
        observe_network("sgd", lr=0.1, steps=3, network=NET, record_coordinates=5000)
    with pytest.raises(ValueError, match=r"network must be one of digits-mlp, got 'cifar'"):
        observe_network("sgd", lr=0.1, steps=3, network="cifar")
    with pytest.raises(ValueError, match=r"batch_size must be in \[1, 200\], got 500"):
        observe_network("sgd", lr=0.1, steps=3, network=NET, batch_size=500)
    with pytest.raises(ValueError, match=r"samples must be in \[10, 1797\], got 5"):
        DigitsMLP(samples=5)
    with pytest.raises(optfilters.InvalidHyperparameterError, match=r"momentum must be >= 0, got -1"):
        observe_network("momentum", lr=0.1, steps=3, network=NET, momentum=-1)


def test_importing_the_module_is_cheap() -> None:
    import subprocess
    import sys

    code = (
        "import sys, optfilters.network; "
        "print(','.join(m for m in ('torch', 'scipy', 'sklearn', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


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
