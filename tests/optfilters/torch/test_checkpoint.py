"""Checkpoints both ways between FilterOptimizer and torch.optim, and the refusal of dicts that do not fit.

For every catalogue entry with a torch.optim counterpart (defaults and each
example setting; a new entry is covered automatically), a run is checkpointed
mid-run, after a scheduler step, and resumed by the other implementation:

* torch.optim -> FilterOptimizer: ``FilterOptimizer.load_state_dict`` of the
  torch class's dict; the run continues exactly as the torch class continues
  after loading the same dict;
* FilterOptimizer -> torch.optim: the torch class loads
  ``state_dict(format="torch")``; the run continues exactly as the bridge's own.

Mismatched dicts (another optimizer, other settings, shapes or groups, state
missing) raise a one-line CheckpointError and leave the optimizer unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import torch

from optfilters import CATALOGUE
from optfilters.torch import CheckpointError, FilterOptimizer
from optfilters.torch.checkpoint import from_torch, to_torch
from tests.support.torch_setup import (  # noqa: F401 (one_thread: autouse fixture)
    make_params,
    one_thread,
    set_grads,
    torch_class,
    torch_optimizer,
    trained,
)

TORCH_ENTRIES = [name for name, entry in CATALOGUE.items() if entry.torch_class is not None]


BEFORE, AFTER = 7, 20


LRS = {"adadelta": 1.0, "adagrad": 0.1}


def flat(params: list[torch.nn.Parameter]) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in params])


def schedule(opt: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    return torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.7)


def run(opt: torch.optim.Optimizer, sched: Any, params: list[torch.nn.Parameter], start: int, stop: int) -> None:
    for step in range(start, stop):
        set_grads(params, step)
        opt.step()
        sched.step()


def settings() -> list[tuple[str, dict[str, Any]]]:
    return [(name, dict(example)) for name in TORCH_ENTRIES for example in ({}, *CATALOGUE[name].examples)]


def _kwargs(name: str, example: dict[str, Any]) -> dict[str, Any]:
    kwargs = dict(example)
    kwargs.setdefault("lr", LRS.get(name, 0.05))
    return kwargs


def test_every_counterpart_has_a_state_map() -> None:
    for name in TORCH_ENTRIES:
        entry = CATALOGUE[name]
        assert entry.torch_state, f"{name}: give CATALOGUE[{name!r}].torch_state (torch key -> optfilters key)"


@pytest.mark.parametrize(("name", "example"), settings(), ids=str)
def test_a_torch_checkpoint_resumes_in_the_bridge(name: str, example: dict[str, Any]) -> None:
    kwargs = _kwargs(name, example)
    params = make_params(name=name)
    theirs = torch_optimizer(name, params, **kwargs)
    sched = schedule(theirs)
    run(theirs, sched, params, 0, BEFORE)
    saved = copy.deepcopy({"opt": theirs.state_dict(), "sched": sched.state_dict(), "params": flat(params)})

    def resume(make: Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer]) -> torch.Tensor:
        ps = make_params(name=name)
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(saved["params"].clone(), ps)
        opt = make(ps)
        s = schedule(opt)
        opt.load_state_dict(copy.deepcopy(saved["opt"]))
        s.load_state_dict(saved["sched"])
        run(opt, s, ps, BEFORE, BEFORE + AFTER)
        return flat(ps)

    reference = resume(lambda ps: torch_optimizer(name, ps, **kwargs))
    ours = resume(lambda ps: FilterOptimizer(ps, name, **kwargs))
    assert (reference - saved["params"]).abs().max() > 1e-3  # it moved after the checkpoint
    error = float((ours - reference).abs().max() / reference.abs().max())
    assert error <= 1e-12, f"{name} {example}: relative error {error:.3g} after resuming a torch checkpoint"


@pytest.mark.parametrize(("name", "example"), settings(), ids=str)
def test_a_bridge_checkpoint_resumes_in_torch(name: str, example: dict[str, Any]) -> None:
    kwargs = _kwargs(name, example)
    params = make_params(name=name)
    ours = FilterOptimizer(params, name, **kwargs)
    sched = schedule(ours)
    run(ours, sched, params, 0, BEFORE)
    torch_dict = copy.deepcopy(ours.state_dict(format="torch"))
    saved_sched = sched.state_dict()
    start = flat(params)
    resumed = make_params(name=name)
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(start.clone(), resumed)
    theirs = torch_optimizer(name, resumed, **{k: v for k, v in kwargs.items() if k != "lr"})
    their_sched = schedule(theirs)
    theirs.load_state_dict(torch_dict)
    their_sched.load_state_dict(saved_sched)
    run(ours, sched, params, BEFORE, BEFORE + AFTER)
    run(theirs, their_sched, resumed, BEFORE, BEFORE + AFTER)
    assert (flat(params) - start).abs().max() > 1e-3
    error = float((flat(resumed) - flat(params)).abs().max() / flat(params).abs().max())
    assert error <= 1e-12, f"{name} {example}: relative error {error:.3g} after resuming in torch"
    # the torch class's own dict has exactly the torch keys
    expected = torch_optimizer(name, make_params(name=name), **kwargs)
    expected_state = copy.deepcopy(expected.state_dict())
    set_grads(list(expected.param_groups[0]["params"]), 0)
    expected.step()
    assert set(torch_dict["state"].get(0, {})) == set(expected.state_dict()["state"].get(0, {}))
    assert set(torch_dict["param_groups"][0]) - {"initial_lr"} == set(expected_state["param_groups"][0])


def test_the_issues_adam_checkpoint() -> None:
    """``FilterOptimizer(p, "adam").load_state_dict(torch_adam.state_dict())`` keeps exp_avg and exp_avg_sq."""
    p = torch.nn.Parameter(torch.linspace(-1, 1, 4, dtype=torch.float64))
    adam = torch.optim.Adam([p], lr=0.1)
    for _ in range(3):
        p.grad = 2 * p.detach()
        adam.step()
    q = torch.nn.Parameter(p.detach().clone())
    ours = FilterOptimizer([q], "adam", lr=0.1)
    ours.load_state_dict(copy.deepcopy(adam.state_dict()))
    assert torch.equal(ours.state[q]["gradient.0"], adam.state[p]["exp_avg"])
    assert torch.equal(ours.state[q]["second_moment.0"], adam.state[p]["exp_avg_sq"])
    for _ in range(5):
        p.grad = 2 * p.detach()
        q.grad = 2 * q.detach()
        adam.step()
        ours.step()
    assert torch.equal(p, q)
    # and the reverse no longer raises KeyError: 'exp_avg'
    back = torch.optim.Adam([torch.nn.Parameter(q.detach().clone())], lr=0.1)
    back.load_state_dict(ours.state_dict(format="torch"))
    assert torch.equal(back.state_dict()["state"][0]["exp_avg"], ours.state[q]["gradient.0"])


def test_sgd_without_a_step_count() -> None:
    """torch.optim.SGD keeps no step: the loaded state counts from 1, and dampening's first step is not redone."""
    p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    sgd = torch.optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.5)
    for _ in range(2):
        p.grad = p.detach().clone()
        sgd.step()
    q = torch.nn.Parameter(p.detach().clone())
    ours = FilterOptimizer([q], "sgd", lr=0.1, momentum=0.9, dampening=0.5)
    ours.load_state_dict(copy.deepcopy(sgd.state_dict()))
    assert float(ours.state[q]["step"]) == 1.0
    for _ in range(3):
        p.grad, q.grad = p.detach().clone(), q.detach().clone()
        sgd.step()
        ours.step()
    assert torch.equal(p, q)
    assert "step" not in ours.state_dict(format="torch")["state"][0]


def test_a_float64_nadam_checkpoint_gets_torchs_cast_and_its_own_keeps_its_precision() -> None:
    """torch.optim casts mu_product to the parameter's dtype on loading; the bridge does so for torch's dicts only."""
    p = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    nadam = torch.optim.NAdam([p], lr=0.1)
    p.grad = torch.ones(2, dtype=torch.float64)
    nadam.step()
    ours = FilterOptimizer([torch.nn.Parameter(p.detach().clone())], "nadam", lr=0.1)
    ours.load_state_dict(copy.deepcopy(nadam.state_dict()))
    assert ours.state[ours.param_groups[0]["params"][0]]["mu_product"].dtype == torch.float64
    again = FilterOptimizer([torch.nn.Parameter(p.detach().clone())], "nadam", lr=0.1)
    mine = FilterOptimizer([torch.nn.Parameter(p.detach().clone())], "nadam", lr=0.1)
    mine.param_groups[0]["params"][0].grad = torch.ones(2, dtype=torch.float64)
    mine.step()
    again.load_state_dict(copy.deepcopy(mine.state_dict()))
    assert again.state[again.param_groups[0]["params"][0]]["mu_product"].dtype == torch.float32


# ----------------------------------------------------------------------------- refusals


def _snapshot(opt: torch.optim.Optimizer) -> Any:
    return copy.deepcopy(opt.state_dict())


def _assert_same(a: Any, b: Any) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    else:
        assert a == b


def _torch_dict(name: str, params: list[torch.nn.Parameter] | None = None, **kwargs: Any) -> dict[str, Any]:
    opt = trained(torch_optimizer(name, params if params is not None else make_params(name=name), **kwargs))
    return copy.deepcopy(opt.state_dict())


def _without(d: dict[str, Any], key: str) -> dict[str, Any]:
    d = copy.deepcopy(d)
    for st in d["state"].values():
        st.pop(key, None)
    return d


MISFITS: list[tuple[str, str, Callable[[], Any], str]] = [
    ("adam", "another optimizer (SGD)", lambda: _torch_dict("sgd", momentum=0.9), r"has no 'betas'.*another optimizer"),
    ("sgd", "another optimizer (Adam)", lambda: _torch_dict("adam"), r"has no 'momentum'"),
    ("radam", "Adam's dict in RAdam", lambda: _torch_dict("adam"), r"'amsgrad', which radam does not take"),
    ("adam", "NAdam's dict in Adam", lambda: _torch_dict("nadam"), r"has no 'amsgrad'"),
    ("nesterov", "plain momentum in Nesterov", lambda: _torch_dict("momentum"), r"nesterov=False.*nesterov=True"),
    ("amsgrad", "Adam without amsgrad", lambda: _torch_dict("adam"), r"amsgrad=False"),
    (
        "adam",
        "other shapes",
        lambda: _torch_dict("adam", [torch.nn.Parameter(torch.ones(2, 3, dtype=torch.float64)), make_params()[1]]),
        r"'exp_avg' of parameter 0 has shape \(2, 3\), the parameter \(3, 2\)",
    ),
    (
        "adam",
        "other groups",
        lambda: _torch_dict("adam", [make_params()[0]]),
        r"1 parameter group\(s\) of \[1\] parameters; this optimizer has 1 of \[2\]",
    ),
    ("adam", "a missing state key", lambda: _without(_torch_dict("adam"), "exp_avg_sq"), r"lacks 'exp_avg_sq'"),
    ("rmsprop", "an unknown state key", lambda: _torch_dict("rmsprop"), None),
    ("butterworth", "torch state without counterpart", lambda: _torch_dict("adam"), r"butterworth, which has none"),
    ("adam", "not a state dict", lambda: {"state": {}}, r"not an optimizer state dict"),
]


def _rename(d: dict[str, Any]) -> dict[str, Any]:
    d = copy.deepcopy(d)
    for st in d["state"].values():
        st["exp_inf"] = st.pop("square_avg")
    return d


@pytest.mark.parametrize(("name", "what", "make_dict", "message"), MISFITS, ids=[m[1] for m in MISFITS])
def test_a_dict_that_does_not_fit_is_refused_and_changes_nothing(
    name: str, what: str, make_dict: Callable[[], Any], message: str | None
) -> None:
    state_dict = make_dict()
    if what == "an unknown state key":
        state_dict, message = _rename(state_dict), r"'exp_inf', which torch.optim.RMSprop does not keep"
    opt = trained(FilterOptimizer(make_params(name=name), name, lr=0.01))
    before = _snapshot(opt)
    with pytest.raises(CheckpointError, match=message) as info:
        opt.load_state_dict(state_dict)
    assert "\n" not in str(info.value)
    _assert_same(_snapshot(opt), before)
    trained(opt, 1)  # and it still runs


def test_bridge_dicts_of_another_model_are_refused_too() -> None:
    adam = trained(FilterOptimizer(make_params(), "adam"))
    for name, message in (("nadam", r"has no 'momentum_decay'"), ("momentum", r"has no 'momentum'")):
        opt = trained(FilterOptimizer(make_params(name=name), name))
        before = _snapshot(opt)
        with pytest.raises(CheckpointError, match=message):
            opt.load_state_dict(copy.deepcopy(adam.state_dict()))
        _assert_same(_snapshot(opt), before)
    butter = trained(FilterOptimizer(make_params(), "butterworth", order=2))
    other = copy.deepcopy(trained(FilterOptimizer([make_params()[0]], "butterworth", order=2)).state_dict())
    with pytest.raises(CheckpointError, match="parameter group"):
        butter.load_state_dict(other)
    bad = copy.deepcopy(butter.state_dict())
    bad["state"][0]["gradient.0.s0.0"] = torch.zeros(5, dtype=torch.float64)
    with pytest.raises(CheckpointError, match=r"'gradient.0.s0.0' of parameter 0 has shape \(5,\)"):
        butter.load_state_dict(bad)


def test_torch_format_needs_a_counterpart() -> None:
    opt = trained(FilterOptimizer(make_params(), "butterworth"))
    with pytest.raises(CheckpointError, match="butterworth has none"):
        opt.state_dict(format="torch")
    with pytest.raises(ValueError, match="format must be"):
        opt.state_dict(format="tf")


def test_conversion_functions_round_trip() -> None:
    ours = trained(FilterOptimizer(make_params(), "rmsprop", centered=True, momentum=0.5))
    saved = ours.state_dict()
    theirs = to_torch(saved, "rmsprop")
    assert set(theirs["state"][0]) == {"step", "square_avg", "grad_avg", "momentum_buffer"}
    back = from_torch(theirs, "rmsprop")
    _assert_same({k: v for k, v in back["state"][0].items()}, dict(saved["state"][0]))
    with pytest.raises(CheckpointError, match=r"lion has no torch\.optim counterpart"):
        from_torch(theirs, "lion")
