"""Autograd through the step (``differentiable=True``) and mixed precision (``torch.amp.GradScaler``).

* ``differentiable=True``: for every catalogue entry with a torch.optim
  counterpart, the Jacobian of one step (new parameter and state with respect
  to parameter, gradient and state) equals torch.optim's own differentiable
  mode, and ``torch.autograd.gradcheck`` (float64, finite differences) passes;
  a learning-rate tensor that requires grad gets torch's hypergradient.
* GradScaler: ``scaler.step(opt)`` with a gradient overflow skips the step and
  lowers the scale; the bridge trains as the torch class does under the same
  scaler (fused too: torch's fused Adam unscales inside its kernel, the
  bridge's kernels take gradients that GradScaler unscaled).
"""

from __future__ import annotations

import copy
import importlib
import inspect
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

from optfilters import CATALOGUE
from optfilters.torch import FilterOptimizer

TORCH_ENTRIES = [name for name, entry in CATALOGUE.items() if entry.torch_class is not None]
WARMUP = 7  # RAdam's rectification is on from step 6


def torch_optimizer_with_options(name: str, params: list[Any], **overrides: Any) -> torch.optim.Optimizer:
    entry = CATALOGUE[name]
    dotted = entry.torch_class
    assert dotted is not None
    module, cls = dotted.rsplit(".", 1)
    overrides = dict(overrides)
    options = {k: overrides.pop(k) for k in ("differentiable", "foreach", "fused") if k in overrides}
    kwargs = entry.torch_kwargs(entry.validate(overrides))
    return getattr(importlib.import_module(module), cls)(params, **kwargs, **options)


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# torch classes without a differentiable step: FilterOptimizer refuses differentiable=True for their entries
NO_DIFFERENTIABLE_STEP = {
    "muon": "torch.optim.Muon(differentiable=...) does not exist (Newton-Schulz on the whole matrix)",
    "adafactor": "torch.optim.Adafactor takes foreach only, no differentiable",
}


def test_the_entries_without_a_differentiable_step_are_those_of_torch() -> None:
    without = {
        name for name in TORCH_ENTRIES if "differentiable" not in inspect.signature(torch_class(name)).parameters
    }
    assert without == set(NO_DIFFERENTIABLE_STEP)


@pytest.mark.parametrize("name", sorted(NO_DIFFERENTIABLE_STEP))
def test_differentiable_is_refused_where_torch_has_no_differentiable_step(name: str) -> None:
    params = [torch.nn.Parameter(torch.ones(2, 2))]
    with pytest.raises(
        ValueError, match=rf"differentiable=True: {name} follows torch\.optim\.\w+, which has no"
    ) as info:
        FilterOptimizer(params, name, differentiable=True)
    assert "\n" not in str(info.value)
    FilterOptimizer(params, name)  # without it, it runs


def torch_class(name: str) -> Any:
    dotted = CATALOGUE[name].torch_class
    assert dotted is not None
    module, cls = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module), cls)


def _autograd_settings() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name in TORCH_ENTRIES:
        if name in NO_DIFFERENTIABLE_STEP:
            continue
        takes = {hp.name for hp in CATALOGUE[name].hyperparameters}
        out.append((name, {"lr": 0.1, "weight_decay": 0.05} if "weight_decay" in takes else {"lr": 0.1}))
    out += [("rmsprop", {"lr": 0.1, "centered": True, "momentum": 0.5}), ("sgd", {"lr": 0.1, "momentum": 0.9})]
    return out


def _warm_state(name: str, kwargs: dict[str, Any]) -> dict[str, torch.Tensor]:
    """torch's state after a few steps (float64), keyed by torch's names."""
    p = torch.nn.Parameter(torch.linspace(-1.0, 1.5, 5, dtype=torch.float64))
    opt = torch_optimizer_with_options(name, [p], **kwargs)
    for k in range(WARMUP):
        p.grad = torch.cos(p.detach() * (k + 1)) + 0.5
        opt.step()
    return {k: v.detach().clone() for k, v in opt.state[p].items()}


def _step_function(
    make: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    keys: list[str],
    fixed: dict[str, torch.Tensor],
) -> Callable[..., tuple[torch.Tensor, ...]]:
    """``(param, grad, *state) -> (new param, *new state)`` for one differentiable step."""

    def step(param: torch.Tensor, grad: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        p = param.clone()  # a non-leaf parameter, as for torch's own differentiable tests
        p.grad = grad
        opt = make([p])
        opt.state[p].update({k: v.clone() for k, v in fixed.items()})
        opt.state[p].update({k: v.clone() for k, v in zip(keys, state, strict=True)})
        opt.step()
        return (p, *[opt.state[p][k] for k in keys])

    return step


@pytest.mark.parametrize(("name", "kwargs"), _autograd_settings(), ids=str)
def test_differentiable_step_matches_torch_and_passes_gradcheck(name: str, kwargs: dict[str, Any]) -> None:
    mapping = CATALOGUE[name].torch_state
    warm = _warm_state(name, kwargs)
    torch_keys = [k for k, v in warm.items() if k in mapping and v.dim() > 0]
    # torch's differentiable path computes its scalars from the state's tensors (step, NAdam's mu_product): in
    # float64 here, not float32, so that both compute them in double precision
    fixed_theirs = {k: v.double() for k, v in warm.items() if k not in torch_keys}
    fixed_ours = {mapping.get(k, k): v for k, v in fixed_theirs.items()}
    if "step" not in fixed_ours:  # torch.optim.SGD keeps no step count
        fixed_ours["step"] = torch.tensor(float(WARMUP))
    ours = _step_function(
        lambda ps: FilterOptimizer(ps, name, differentiable=True, **kwargs),
        [mapping[k] for k in torch_keys],
        fixed_ours,
    )
    theirs = _step_function(
        lambda ps: torch_optimizer_with_options(name, ps, differentiable=True, **kwargs), torch_keys, fixed_theirs
    )
    gen = torch.Generator().manual_seed(0)
    inputs = (
        torch.linspace(-1.0, 1.5, 5, dtype=torch.float64).requires_grad_(),
        (torch.randn(5, generator=gen, dtype=torch.float64) + 0.3).requires_grad_(),
        *[warm[k].clone().requires_grad_() for k in torch_keys],
    )
    values_ours, values_theirs = ours(*inputs), theirs(*inputs)
    for a, b in zip(values_ours, values_theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)
    assert values_ours[0].grad_fn is not None  # autograd recorded the step
    jac_ours = torch.autograd.functional.jacobian(ours, inputs)
    jac_theirs = torch.autograd.functional.jacobian(theirs, inputs)
    for row_ours, row_theirs in zip(jac_ours, jac_theirs, strict=True):
        for a, b in zip(row_ours, row_theirs, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(ours, inputs, eps=1e-8, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(("name", "kwargs"), [("sgd", {}), ("adam", {}), ("nesterov", {"momentum": 0.9})], ids=str)
def test_a_learning_rate_that_requires_grad_gets_the_hypergradient(name: str, kwargs: dict[str, Any]) -> None:
    """d(loss after 3 steps)/d(lr): torch.optim's differentiable value (SGD, Adam), and finite differences."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # torch's differentiable bias corrections use its (float64) step tensor
    try:
        _hypergradient(name, kwargs)
    finally:
        torch.set_default_dtype(previous)


def _final_loss(make: Callable[..., torch.optim.Optimizer], lr: torch.Tensor) -> torch.Tensor:
    p = torch.linspace(-1.0, 1.0, 4, dtype=torch.float64).requires_grad_().clone()
    opt = make([p], lr)
    for k in range(3):
        p.grad = torch.linspace(0.5, -1.0, 4, dtype=torch.float64) * (k + 1)  # data: autograd takes it as given
        opt.step()
    return p.pow(2).sum()


def _hypergradient(name: str, kwargs: dict[str, Any]) -> None:
    def ours(ps: list[torch.Tensor], lr: torch.Tensor) -> torch.optim.Optimizer:
        return FilterOptimizer(ps, name, lr=lr, differentiable=True, **kwargs)

    lr = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(_final_loss(ours, lr), lr)
    assert grad.item() != 0.0
    if name in ("sgd", "adam"):  # (torch.optim.SGD's differentiable momentum cannot take a tensor lr)
        cls = torch.optim.SGD if name == "sgd" else torch.optim.Adam
        lr2 = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
        loss = _final_loss(lambda ps, lr: cls(ps, lr=lr, differentiable=True, **kwargs), lr2)
        (reference,) = torch.autograd.grad(loss, lr2)
        torch.testing.assert_close(grad, reference, rtol=1e-12, atol=0)
    h = 1e-6
    with torch.no_grad():
        up = _final_loss(ours, torch.tensor(0.1 + h, dtype=torch.float64))
        down = _final_loss(ours, torch.tensor(0.1 - h, dtype=torch.float64))
    torch.testing.assert_close(grad, (up - down) / (2 * h), rtol=1e-7, atol=0)


def test_differentiable_refuses_foreach_and_fused_and_default_steps_record_nothing() -> None:
    p = torch.nn.Parameter(torch.ones(2))
    for option in ({"foreach": True}, {"fused": True}):
        with pytest.raises(ValueError, match="differentiable=True runs one tensor at a time"):
            FilterOptimizer([p], "adam", differentiable=True, **option)
    q = torch.nn.Parameter(torch.ones(2))
    q.grad = torch.ones(2)
    with torch.enable_grad():
        FilterOptimizer([q], "adam").step()
    assert q.grad_fn is None  # the step was not recorded


# ----------------------------------------------------------------------------- GradScaler


def _scaled_run(
    make: Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer], steps: int = 12, overflow_at: int = 4
) -> tuple[torch.Tensor, list[float], torch.optim.Optimizer]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = make(list(net.parameters()))
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12, growth_interval=3)
    gen = torch.Generator().manual_seed(1)
    scales = []
    for step in range(steps):
        x = torch.randn(16, 4, generator=gen)
        opt.zero_grad()
        loss = (net(x) - x.sum(1, keepdim=True).sin()).pow(2).mean()
        if step == overflow_at:
            loss = loss * float("inf")
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        scales.append(scaler.get_scale())
    return torch.cat([p.detach().flatten() for p in net.parameters()]), scales, opt


@pytest.mark.parametrize(
    ("name", "options"),
    [("adam", {}), ("adam", {"fused": True}), ("nesterov", {}), ("nadam", {}), ("rmsprop", {"foreach": True})],
    ids=str,
)
def test_grad_scaler_parity_with_overflow_skipping(name: str, options: dict[str, Any]) -> None:
    kwargs = {"lr": 0.01, **({"momentum": 0.9} if name == "nesterov" else {})}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fused without a C compiler falls back with a warning
        ours, ours_scales, opt = _scaled_run(lambda ps: FilterOptimizer(ps, name, **kwargs, **options))
    theirs, their_scales, _ = _scaled_run(lambda ps: torch_optimizer_with_options(name, ps, **kwargs, **options))
    assert ours_scales == their_scales
    assert ours_scales[4] == ours_scales[3] / 2  # the overflow halved the scale
    torch.testing.assert_close(ours, theirs, rtol=2e-6, atol=1e-7)  # float32
    # the overflowing step was skipped: one step fewer than iterations
    assert float(opt.state[opt.param_groups[0]["params"][0]]["step"]) == 11


def test_grad_scaler_leaves_a_designed_filter_as_unscaled_training_would() -> None:
    """Scaling by powers of two is exact: the scaled run equals the run without scaler that skips the same step."""
    model: dict[str, Any] = {"order": 4, "cutoff": 0.05, "lr": 0.01}
    ours, scales, _ = _scaled_run(lambda ps: FilterOptimizer(ps, "butterworth", **model))
    assert scales[4] < scales[3]
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = FilterOptimizer(list(net.parameters()), "butterworth", **model)
    gen = torch.Generator().manual_seed(1)
    for step in range(12):
        x = torch.randn(16, 4, generator=gen)
        opt.zero_grad()
        (net(x) - x.sum(1, keepdim=True).sin()).pow(2).mean().backward()
        if step != 4:
            opt.step()
    assert torch.equal(ours, torch.cat([p.detach().flatten() for p in net.parameters()]))


def test_grad_scaler_state_dict_round_trip() -> None:
    """A checkpoint taken between scaled steps (optimizer and scaler) resumes exactly, overflow skipping included."""

    def run(resume_from: dict[str, Any] | None, steps: int, start: int) -> tuple[Any, ...]:
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
        opt = FilterOptimizer(list(net.parameters()), "adam", lr=0.01)
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12, growth_interval=3)
        if resume_from is not None:
            net.load_state_dict(resume_from["net"])
            opt.load_state_dict(resume_from["opt"])
            scaler.load_state_dict(resume_from["scaler"])
        gen = torch.Generator().manual_seed(1)
        for step in range(start + steps):
            x = torch.randn(16, 4, generator=gen)
            if step < start:
                continue  # the same batches as the uninterrupted run
            opt.zero_grad()
            loss = (net(x) - x.sum(1, keepdim=True).sin()).pow(2).mean()
            scaler.scale(loss * (float("inf") if step == 8 else 1.0)).backward()
            scaler.step(opt)
            scaler.update()
        saved = {"net": net.state_dict(), "opt": opt.state_dict(), "scaler": scaler.state_dict()}
        return torch.cat([p.detach().flatten() for p in net.parameters()]), copy.deepcopy(saved), scaler.get_scale()

    whole, _, whole_scale = run(None, 12, 0)
    _, checkpoint, _ = run(None, 6, 0)
    resumed, _, resumed_scale = run(checkpoint, 6, 6)
    assert torch.equal(resumed, whole) and resumed_scale == whole_scale
    assert float(checkpoint["opt"]["state"][0]["step"]) == 6
