"""Parity of the parameter-side entries with their references: AveragedModel (EMA, SWA), pytorch_optimizer's Lookahead.

The harness of :mod:`test_bridge_parity` (a 4-8-1 MLP, one tensor per weight,
300 float64 steps with zeros and outliers): the bridge runs the catalogue's
``ema``/``swa``/``lookahead`` wrapped around an optimizer, the reference runs
that optimizer's torch.optim class with ``torch.optim.swa_utils.AveragedModel``
updated after every step, or wrapped in ``pytorch_optimizer.Lookahead``.
Lookahead is checked around every catalogue entry with a torch.optim
counterpart (a new one is covered automatically).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

import optfilters
from optfilters import CATALOGUE
from optfilters.torch import FilterOptimizer
from optfilters.torch.averaged import averaged_parameters, swap_averaged
from tests.optfilters.torch.test_optimizer import (
    HARD_BOUNDS,
    HARD_TOLERANCE,
    flatten,
    import_class,
    init_tensors,
    layout,
    relative_error,
    train_hard,
)
from tests.support.torch_setup import one_thread  # noqa: F401 (autouse fixture)

pytorch_optimizer = pytest.importorskip("pytorch_optimizer")


class _Averaging:
    """A torch optimizer followed by ``AveragedModel.update_parameters`` from step ``start`` (every ``every`` steps)."""

    def __init__(
        self, optimizer: Any, params: list[torch.nn.Parameter], averaged: AveragedModel, start: int, every: int
    ):
        self.optimizer, self.params, self.averaged = optimizer, params, averaged
        self.module = averaged.module_source
        self.start, self.every, self.t = start, every, 0

    def step(self) -> None:
        self.optimizer.step()
        self.t += 1
        if self.t >= self.start and (self.t - self.start) % self.every == 0:
            self.averaged.update_parameters(self.module)


def _averaging(
    name: str, base: str, params: list[torch.nn.Parameter], options: dict[str, Any]
) -> tuple[_Averaging, AveragedModel]:
    entry = CATALOGUE[base]
    inner = import_class(entry.torch_class)(params, **entry.torch_kwargs(entry.validate({"lr": options["lr"]})))
    module = torch.nn.ParameterList(params)
    if name == "ema":
        averaged = AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(options["decay"]))
    else:
        averaged = AveragedModel(module)  # equal weights: get_swa_avg_fn on the CPU
    averaged.module_source = module  # type: ignore[assignment]
    return _Averaging(inner, params, averaged, options.get("start", 1), options.get("every", 1)), averaged


AVERAGING = [
    ("ema", {"base": "momentum", "lr": 0.05, "decay": 0.9}),
    ("ema", {"base": "adam", "lr": 0.01, "decay": 0.999, "start": 40}),
    ("swa", {"base": "momentum", "lr": 0.05, "start": 30}),
    ("swa", {"base": "adamw", "lr": 0.01, "start": 1, "every": 7}),
    ("ema", {"base": "muon", "lr": 0.02, "decay": 0.95}),
]


#: Measured bounds of the averages and Lookahead (0: bit for bit); the README states them.
AVERAGED_BOUNDS = {"muon": HARD_BOUNDS["muon"], "radam": 1e-15}


@pytest.mark.parametrize(("name", "options"), AVERAGING, ids=str)
def test_averages_are_averaged_models(name: str, options: dict[str, Any]) -> None:
    """The bridge's averaged parameters follow AveragedModel's, bit for bit or nearly, over 300 steps."""
    entry = CATALOGUE[options["base"]]
    holder: dict[str, Any] = {}

    def reference(params: list[torch.nn.Parameter]) -> _Averaging:
        opt, holder["averaged"] = _averaging(name, options["base"], params, options)
        return opt

    ref, got, _, bridge = train_hard(reference, lambda ps: FilterOptimizer(ps, name, **options), layout(entry))
    assert relative_error(flatten(got), flatten(ref)) <= HARD_TOLERANCE
    expected = np.concatenate([p.detach().numpy().ravel() for p in holder["averaged"].module.parameters()])
    averaged = np.concatenate([a.numpy().ravel() for a in averaged_parameters(bridge)])
    assert relative_error(averaged, expected) <= HARD_TOLERANCE
    # measured: bit for bit, but around Muon (1.5e-16: its bfloat16 Newton-Schulz); the README states these bounds
    bound = AVERAGED_BOUNDS.get(options["base"], 0.0)
    assert relative_error(flatten(got), flatten(ref)) <= bound
    assert relative_error(averaged, expected) <= bound
    assert relative_error(averaged, flatten(got)) > 1e-3  # the average is not the parameter


def test_swap_averaged_puts_the_average_in_and_the_parameters_back() -> None:
    shapes = layout(CATALOGUE["adam"])
    params = init_tensors(shapes)
    opt = FilterOptimizer(params, "ema", base="adam", lr=0.05, decay=0.5)
    before = averaged_parameters(opt)  # no step yet: the parameters themselves
    assert all(torch.equal(a, p) for a, p in zip(before, params, strict=True))
    for step in range(5):
        for p in params:
            p.grad = torch.full_like(p, float(step + 1))
        opt.step()
    training = [p.detach().clone() for p in params]
    with swap_averaged(opt):
        inside = [p.detach().clone() for p in params]
    assert all(torch.equal(p, t) for p, t in zip(params, training, strict=True))
    assert all(torch.equal(i, a) for i, a in zip(inside, averaged_parameters(opt), strict=True))
    assert not any(torch.equal(i, t) for i, t in zip(inside, training, strict=True))
    with pytest.raises(ValueError, match="adam keeps no averaged parameters"):
        averaged_parameters(FilterOptimizer(params, "adam"))


def lookahead_settings() -> list[tuple[str, dict[str, Any]]]:
    cases = [(name, {"k": 5, "alpha": 0.5}) for name, e in CATALOGUE.items() if e.torch_class]
    return [
        *cases,
        ("momentum", {"k": 1, "alpha": 0.3}),
        ("adam", {"k": 7, "alpha": 0.9}),
        ("sgd", {"k": 3, "alpha": 0.0}),
    ]


@pytest.mark.parametrize(("base", "options"), lookahead_settings(), ids=str)
def test_lookahead_is_pytorch_optimizers_lookahead(base: str, options: dict[str, Any]) -> None:
    """Lookahead around every entry with a torch.optim counterpart follows pytorch_optimizer.Lookahead (300 steps)."""
    entry = CATALOGUE[base]
    params = entry.validate({})
    model = optfilters.lookahead(base, **options)

    def reference(ps: list[torch.nn.Parameter]) -> Any:
        inner = import_class(entry.torch_class)(ps, **entry.torch_kwargs(params))
        return pytorch_optimizer.Lookahead(inner, **options)

    ref, got, _, _ = train_hard(reference, lambda ps: FilterOptimizer(ps, model), layout(entry))
    assert relative_error(flatten(got), flatten(ref)) <= HARD_TOLERANCE, base
    # measured: bit for bit, but around RAdam and Muon (4.2e-17)
    assert relative_error(flatten(got), flatten(ref)) <= AVERAGED_BOUNDS.get(base, 0.0), base
    if base not in ("sgd", "momentum", "adam"):
        return
    _, plain, _, _ = train_hard(
        reference, lambda ps: import_class(entry.torch_class)(ps, **entry.torch_kwargs(params)), layout(entry)
    )
    assert options["k"] == 1 or relative_error(flatten(plain), flatten(ref)) > 1e-6  # the pull-back matters


def test_lookahead_state_is_the_slow_weights() -> None:
    entry = CATALOGUE["momentum"]
    ref, got, reference, bridge = train_hard(
        lambda ps: pytorch_optimizer.Lookahead(torch.optim.SGD(ps, lr=0.05, momentum=0.9), k=4, alpha=0.5),
        lambda ps: FilterOptimizer(ps, "lookahead", base="momentum", lr=0.05, k=4, alpha=0.5),
        layout(entry),
        steps=102,
    )
    slow = np.concatenate([reference.state[p]["slow_params"].numpy().ravel() for p in ref])
    ours = np.concatenate([bridge.state[p]["lookahead.slow"].numpy().ravel() for p in got])
    assert relative_error(ours, slow) <= HARD_TOLERANCE
