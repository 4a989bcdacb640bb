"""ASGD's ``eta`` and ``mu`` as torch.optim.ASGD keeps them: state written at the end of a step, read by the next.

torch.optim.ASGD reads, at step ``t``, the ``eta`` and ``mu`` computed at the
end of step ``t - 1`` from that step's ``lr``, ``lambd``, ``alpha`` and ``t0``
(0-dim tensors of torch's scalar dtype), so under a schedule they lag it by
one step and a checkpoint carries them.  The bridge keeps them as the state
entries ``eta`` and ``mu`` (:class:`optfilters.parameter_stages.AsgdEta`,
:class:`~optfilters.parameter_stages.AsgdMu`) on every path, and the numpy
executor runs the same recursion.  Reference: torch.optim.ASGD itself.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch

import optfilters
from optfilters.torch import FilterOptimizer
from optfilters.torch._native import compiler

ASGD_STEPS = 60


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def float64_default() -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def asgd_params() -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(5)
    return [
        torch.nn.Parameter(torch.randn(3, 4, generator=gen, dtype=torch.float64)),
        torch.nn.Parameter(torch.randn(5, generator=gen, dtype=torch.float64)),
    ]


def set_asgd_grads(params: list[torch.nn.Parameter], step: int) -> None:
    for i, p in enumerate(params):
        x = p.detach()
        p.grad = (0.8 + 0.2 * i) * x + 0.5 * torch.sin(2.0 * x + step) - 0.1


def change(t: int, group: dict[str, Any]) -> None:
    """Every hyperparameter of ASGD changes from step to step (t0 so that mu switches between 1 and a mean)."""
    lr = 0.05 * (0.5 + 0.5 * ((7 * t) % 11) / 10)
    if isinstance(group["lr"], torch.Tensor):
        group["lr"].fill_(lr)
    else:
        group["lr"] = lr
    group["lambd"] = 1e-4 + 0.02 * ((2 * t) % 5) / 4
    group["alpha"] = 0.6 + 0.4 * ((3 * t) % 4) / 3
    group["t0"] = (3.0, 40.0, 10.0)[t % 3] + t // 2
    group["weight_decay"] = 0.01 * (t % 2)


def lockstep(
    ours: FilterOptimizer,
    theirs: torch.optim.Optimizer,
    ours_p: list[torch.nn.Parameter],
    theirs_p: list[torch.nn.Parameter],
    steps: int,
    before: Callable[[int, dict[str, Any]], None] | None = change,
    start: int = 0,
) -> None:
    for t in range(start, start + steps):
        for opt, ps in ((ours, ours_p), (theirs, theirs_p)):
            if before is not None:
                before(t, opt.param_groups[0])
            set_asgd_grads(ps, t)
            opt.step()


def assert_same_state(
    ours: FilterOptimizer,
    theirs: torch.optim.Optimizer,
    ours_p: list[torch.nn.Parameter],
    theirs_p: list[torch.nn.Parameter],
    rtol: float = 0.0,
) -> dict[str, float]:
    """Parameters, ax, eta, mu (and step) of the two optimizers; returns the relative errors."""
    errors: dict[str, float] = {}
    for p, q in zip(ours_p, theirs_p, strict=True):
        mine, ref = ours.state[p], theirs.state[q]
        pairs = {"param": (p.detach(), q.detach()), "ax": (mine["averaged"], ref["ax"])}
        pairs.update({k: (mine[k], ref[k]) for k in ("eta", "mu")})
        for key, (a, b) in pairs.items():
            err = float((a.double() - b.double()).abs().max() / b.double().abs().max())
            errors[key] = max(errors.get(key, 0.0), err)
            assert err <= rtol, f"{key}: relative error {err:.3g}"
        assert mine["eta"].dtype == ref["eta"].dtype and mine["mu"].dtype == ref["mu"].dtype
        assert float(mine["step"]) == float(ref["step"])
    return errors


def test_eta_lags_a_change_of_lr_by_one_step_as_in_torch() -> None:
    """lr 0.1 -> 0.2 before step 3: step 3 still moves by eta(0.1, t=3), step 4 by eta(0.2, t=4); as torch."""
    kwargs = {"lr": 0.1, "lambd": 0.5, "alpha": 1.0, "t0": 1e6}
    ours_p = [torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))]
    theirs_p = [torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))]
    bridge, reference = FilterOptimizer(ours_p, "asgd", **kwargs), torch.optim.ASGD(theirs_p, **kwargs)
    moves = []
    for step in range(1, 5):
        for opt, ps in ((bridge, ours_p), (reference, theirs_p)):
            if step == 3:
                opt.param_groups[0]["lr"] = 0.2
            ps[0].data.zero_()  # each step from 0: the leak does nothing, the move is -eta
            ps[0].grad = torch.ones(1, dtype=torch.float64)
            opt.step()
        moves.append((ours_p[0].item(), theirs_p[0].item()))
    assert all(a == b for a, b in moves)  # bit for bit
    eta = [float(np.float32(v)) for v in (0.1, 0.1 / 1.05, 0.1 / 1.1, 0.2 / 1.3)]
    assert [-a for a, _ in moves] == eta  # the third step uses lr 0.1 (written at step 2), the fourth lr 0.2
    # the analysis (constant hyperparameters) is unchanged: eta_t = lr / (1 + lambd lr (t - 1)) in float32
    gain = optfilters.get("asgd", **kwargs).pipeline[0].gain
    assert [gain.eta(t, 0.1) for t in (1, 2, 3)] == eta[:3]


ASGD_PATHS = {
    "single": {},
    "foreach": {"foreach": True},
    "fused": {"fused": True},
    "compile": {"fused": True},
    "capturable": {"capturable": True},
}


@pytest.mark.parametrize("path", list(ASGD_PATHS))
@pytest.mark.parametrize("tensor_lr", [False, True], ids=["float lr", "tensor lr"])
def test_every_path_keeps_torchs_state_under_changes_of_every_hyperparameter(path: str, tensor_lr: bool) -> None:
    """Parameters, ax, eta and mu equal torch.optim.ASGD's after 120 steps of per-step changes (float32 eta/mu)."""
    if path == "fused" and compiler() is None:
        pytest.skip("no C compiler")
    if path == "compile" and tensor_lr:
        pytest.skip("the compiled path is covered with a float lr")
    lr: Any = torch.tensor(0.05, dtype=torch.float64) if tensor_lr else 0.05
    ours_p, theirs_p = asgd_params(), asgd_params()
    ours = FilterOptimizer(ours_p, "asgd", lr=lr if not tensor_lr else lr.clone(), t0=5.0, **ASGD_PATHS[path])
    if path == "compile":
        ours._fused_backend = "compile"
    theirs = torch.optim.ASGD(theirs_p, lr=lr, t0=5.0)
    before, steps = change, ASGD_STEPS
    if path == "compile":  # one structure (weight decay held), fewer steps: each structure compiles once

        def before(t: int, group: dict[str, Any]) -> None:
            change(t, group)
            group["weight_decay"] = 0.01

        steps = 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.compile's own warnings
        lockstep(ours, theirs, ours_p, theirs_p, steps, before)
    if path == "compile":
        assert any(key[0] == "compile" for key in ours._fused), "torch.compile ran"
    exact = path in ("single", "foreach", "fused")
    errors = assert_same_state(ours, theirs, ours_p, theirs_p, rtol=0.0 if exact else 1e-12)
    assert max(errors.values()) <= 1e-12
    if path == "fused":
        assert ours._fused, "the C kernel ran"


def test_triton_kernel_keeps_torchs_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fused Triton kernel (Triton's interpreter on CPU, float32) against torch.optim.ASGD in float32."""
    from optfilters.torch import triton_kernels as tk

    if not tk.available():
        pytest.skip("triton is not installed")
    monkeypatch.setattr(tk, "BLOCK", 16)
    ours_p = [torch.nn.Parameter(p.detach().float()) for p in asgd_params()]
    theirs_p = [torch.nn.Parameter(p.detach().float()) for p in asgd_params()]
    ours = FilterOptimizer(ours_p, "asgd", lr=0.05, t0=5.0, fused=True)
    ours._fused_backend = "triton"
    theirs = torch.optim.ASGD(theirs_p, lr=0.05, t0=5.0)
    lockstep(ours, theirs, ours_p, theirs_p, 30)
    assert any(key[0] == "triton" for key in ours._fused)
    errors = assert_same_state(ours, theirs, ours_p, theirs_p, rtol=1e-5)
    for p, q in zip(ours_p, theirs_p, strict=True):  # the scalars are computed on the host: exactly torch's
        assert torch.equal(ours.state[p]["eta"], theirs.state[q]["eta"])
        assert torch.equal(ours.state[p]["mu"], theirs.state[q]["mu"])
    assert errors["eta"] == 0.0


def test_float64_default_dtype_keeps_eta_and_mu_in_float64(float64_default: None) -> None:
    ours_p, theirs_p = asgd_params(), asgd_params()
    ours = FilterOptimizer(ours_p, "asgd", lr=0.05, t0=5.0)
    theirs = torch.optim.ASGD(theirs_p, lr=0.05, t0=5.0)
    lockstep(ours, theirs, ours_p, theirs_p, ASGD_STEPS)
    assert_same_state(ours, theirs, ours_p, theirs_p)
    assert ours.state[ours_p[0]]["eta"].dtype == torch.float64
    # eta is not float32-rounded under a float64 default dtype
    assert ours.state[ours_p[0]]["eta"].item() != float(np.float32(ours.state[ours_p[0]]["eta"].item()))


@pytest.mark.parametrize("direction", ["torch to bridge", "bridge to torch"])
def test_a_mid_run_checkpoint_after_a_scheduler_step_carries_eta_and_mu(direction: str) -> None:
    """Checkpoint after 9 steps of StepLR (lr changed at the last step): eta and mu travel; the runs stay equal."""
    first_p = asgd_params()
    first: torch.optim.Optimizer = (
        torch.optim.ASGD(first_p, lr=0.05, lambd=0.01, t0=4.0)
        if direction == "torch to bridge"
        else FilterOptimizer(first_p, "asgd", lr=0.05, lambd=0.01, t0=4.0)
    )
    sched = torch.optim.lr_scheduler.StepLR(first, step_size=3, gamma=0.5)
    for t in range(9):
        set_asgd_grads(first_p, t)
        first.step()
        sched.step()
    saved = first.state_dict() if direction == "torch to bridge" else first.state_dict(format="torch")  # type: ignore[call-arg]
    saved = copy.deepcopy(saved)
    assert {"eta", "mu", "ax", "step"} <= set(saved["state"][0])
    assert saved["state"][0]["mu"].item() == float(np.float32(1.0 / (9 - 4)))  # written at step 9 with t0 4
    assert saved["param_groups"][0]["lr"] == 0.05 * 0.5**3  # the scheduler stepped after the last step
    ours_p = [torch.nn.Parameter(p.detach().clone()) for p in first_p]
    theirs_p = [torch.nn.Parameter(p.detach().clone()) for p in first_p]
    ours = FilterOptimizer(ours_p, "asgd")
    theirs = torch.optim.ASGD(theirs_p)
    ours.load_state_dict(copy.deepcopy(saved))
    theirs.load_state_dict(copy.deepcopy(saved))
    for p, q in zip(ours_p, theirs_p, strict=True):  # the loaded eta is the one torch wrote, not recomputed
        assert torch.equal(ours.state[p]["eta"], theirs.state[q]["eta"])
    scheds = [torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5) for o in (ours, theirs)]
    for s in scheds:
        s.load_state_dict(sched.state_dict())
    for t in range(9, 30):
        for opt, ps, s in ((ours, ours_p, scheds[0]), (theirs, theirs_p, scheds[1])):
            set_asgd_grads(ps, t)
            opt.step()
            s.step()
    assert_same_state(ours, theirs, ours_p, theirs_p)
    # and the bridge's own dict, back into a bridge
    again_p = [torch.nn.Parameter(p.detach().clone()) for p in ours_p]
    again = FilterOptimizer(again_p, "asgd")
    again.load_state_dict(copy.deepcopy(ours.state_dict()))
    for p, q in zip(ours_p, again_p, strict=True):
        for key in ("eta", "mu", "averaged"):
            assert torch.equal(ours.state[p][key], again.state[q][key])


def test_a_torch_checkpoint_without_eta_is_refused_naming_it() -> None:
    p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    torch_opt = torch.optim.ASGD([p], lr=0.05)
    p.grad = torch.ones(3, dtype=torch.float64)
    torch_opt.step()
    saved = copy.deepcopy(torch_opt.state_dict())
    del saved["state"][0]["eta"]
    ours = FilterOptimizer([torch.nn.Parameter(torch.ones(3, dtype=torch.float64))], "asgd", lr=0.05)
    from optfilters.torch import CheckpointError

    with pytest.raises(CheckpointError, match=r"lacks 'eta'") as info:
        ours.load_state_dict(saved)
    assert "\n" not in str(info.value)
    assert not ours.state  # unchanged


def test_the_numpy_executor_runs_the_same_recursion() -> None:
    """NumpyOptimizer under the same per-step changes: the same trajectory, eta and mu as torch.optim.ASGD."""
    theirs_p = [torch.nn.Parameter(torch.linspace(-1.0, 1.0, 5, dtype=torch.float64))]
    theirs = torch.optim.ASGD(theirs_p, lr=0.05, t0=5.0)
    numpy_opt = optfilters.get("asgd", lr=0.05, t0=5.0).optimizer(np.linspace(-1.0, 1.0, 5))
    for t in range(ASGD_STEPS):
        group = theirs.param_groups[0]
        change(t, group)
        numpy_opt.set(**{k: group[k] for k in ("lr", "lambd", "alpha", "t0", "weight_decay")})
        set_asgd_grads(theirs_p, t)
        numpy_opt.step(theirs_p[0].grad.numpy())
        theirs.step()
    state = theirs.state[theirs_p[0]]
    np.testing.assert_allclose(numpy_opt.theta, theirs_p[0].detach().numpy(), rtol=1e-13, atol=0)
    np.testing.assert_allclose(numpy_opt.averaged, state["ax"].numpy(), rtol=1e-13, atol=0)
    assert float(numpy_opt.state["eta"]) == state["eta"].item()
    assert float(numpy_opt.state["mu"]) == state["mu"].item()


def test_constant_hyperparameters_leave_the_analysis_unchanged() -> None:
    """With constant hyperparameters the carried eta is the closed form the analysis uses (float32)."""
    model = optfilters.get("asgd", lr=0.1, lambd=0.5, alpha=0.75, t0=3.0)
    program = model.plan().program(1)
    assert [p.key for p in program.products] == ["eta", "mu"]
    gain = model.pipeline[0].gain
    for t in (1, 2, 7, 50):
        assert program.products[0].history(t, lr=0.1) == gain.eta(t, 0.1)
        assert program.products[1].history(t) == model.pipeline[1].weight(t)


def test_muon_refuses_a_parameter_that_is_not_2d_naming_it() -> None:
    """One line naming the group, the parameter's index and its shape; nothing moves before the refusal."""
    matrix = torch.nn.Parameter(torch.ones(2, 2))
    vector = torch.nn.Parameter(torch.ones(3))
    opt = FilterOptimizer([{"params": [matrix]}, {"params": [torch.nn.Parameter(torch.ones(2, 2)), vector]}], "muon")
    for p in (matrix, vector, opt.param_groups[1]["params"][0]):
        p.grad = torch.ones_like(p)
    with pytest.raises(ValueError) as info:
        opt.step()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("FilterOptimizer(muon): parameter 1 of param group 1 (shape (3,)): ")
    assert "needs 2-D parameters (matrices)" in message
    assert torch.equal(matrix.detach(), torch.ones(2, 2))  # the first group did not move
