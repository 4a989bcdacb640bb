"""Parity with third-party reference implementations (``schedulefree``, ``pytorch-optimizer``): float64, 300 steps.

Every catalogue entry with a ``reference`` (a dotted path to a
``torch.optim.Optimizer`` in a package of the test extras) is checked with its
defaults, each of its ``examples`` and a weight-decay/maximize setting, so a new
entry with a reference is covered automatically.  Both optimizers train the
4-8-1 tanh MLP of ``test_bridge_parity`` (one flat float64 parameter) in
lockstep on the gradient of their own parameters, perturbed so that the
gradient sequence has zeros (every 17th step) and outliers (every 23rd step,
one weight in five multiplied by 50): the trajectories agree only if every step
does.  Models with an evaluation point (Schedule-Free) are compared after
``eval()`` too.  The check is skipped, naming the package, only when the
reference's package is not installed (CI installs the test extras).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from test_bridge_parity import gradients, init_params

from optfilters import CATALOGUE
from optfilters.torch import FilterOptimizer

STEPS = 300
TOLERANCE = 1e-12


def reference_class(dotted: str) -> Any:
    module, name = dotted.rsplit(".", 1)
    package = module.split(".")[0]
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        pytest.skip(f"the reference package {package!r} is not installed (pip install -e '.[test]')")


def perturbed(flat: np.ndarray, step: int) -> np.ndarray:
    """The network's gradient, with zeros and outliers in the sequence."""
    g = gradients(flat)
    if step % 17 == 16:
        return np.zeros_like(g)
    if step % 23 == 5:
        g = g.copy()
        g[::5] *= 50.0
    return g


def reference_settings() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for name, entry in CATALOGUE.items():
        if entry.reference is None:
            continue
        for example in ({}, *entry.examples):
            cases.append((name, dict(example)))
        taken = {hp.name for hp in entry.hyperparameters}
        extra = {k: v for k, v in {"weight_decay": 0.05, "maximize": True}.items() if k in taken}
        if extra:
            cases.append((name, extra))
    return cases


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def train_reference_pair(reference: Any, bridge: Any, maximize: bool) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    pa, pb = init_params(), init_params()
    opt_a, opt_b = reference(pa), bridge(pb)
    if hasattr(opt_a, "train"):  # schedulefree: train mode before stepping (the bridge starts in it)
        opt_a.train()
    a, b = pa[0].detach().numpy(), pb[0].detach().numpy()
    for step in range(STEPS):
        ga = perturbed(a, step)
        gb = ga if np.array_equal(a, b) else perturbed(b, step)
        if maximize:
            ga, gb = -ga, -gb
        pa[0].grad = torch.from_numpy(ga.copy())
        pb[0].grad = torch.from_numpy(gb.copy())
        opt_a.step()
        opt_b.step()
    return a.copy(), b.copy(), [opt_a, opt_b, pa, pb]


def relative_error(got: np.ndarray, reference: np.ndarray) -> float:
    return float(np.max(np.abs(got - reference)) / np.max(np.abs(reference)))


def test_every_reference_entry_is_covered() -> None:
    covered = {name for name, _ in reference_settings()}
    assert covered == {name for name, e in CATALOGUE.items() if e.reference}
    assert {"sgd-schedule-free", "adamw-schedule-free", "adan", "adabelief", "adopt", "laprop", "yogi"} <= covered
    assert {"signum", "lion-cautious", "adam-cautious", "ademamix-scheduled"} <= covered


@pytest.mark.parametrize(("name", "overrides"), reference_settings(), ids=lambda v: str(v))
def test_parity_with_the_reference_package(name: str, overrides: dict[str, Any]) -> None:
    entry = CATALOGUE[name]
    cls = reference_class(entry.reference or "")
    params = entry.validate(overrides)
    expected, got, (ref, ours, pa, pb) = train_reference_pair(
        lambda ps: cls(ps, **entry.reference_kwargs(params)),
        lambda ps: FilterOptimizer(ps, name, **overrides),
        maximize=bool(params.get("maximize", False)),
    )
    assert np.all(np.isfinite(expected))
    error = relative_error(got, expected)
    assert error <= TOLERANCE, f"{name} {overrides}: max relative error {error:.3g}"
    assert np.max(np.abs(got - init_params()[0].detach().numpy())) > 1e-6  # it trained
    if ours.model.has_eval_rule:  # the evaluation point: the package's eval() and the bridge's
        ref.eval()
        ours.eval()
        x_ref, x_ours = pa[0].detach().numpy(), pb[0].detach().numpy()
        assert relative_error(x_ours, x_ref) <= TOLERANCE
        assert relative_error(x_ours, expected) > 1e-8  # x differs from y
        ref.train()
        ours.train()
        assert relative_error(pb[0].detach().numpy(), pa[0].detach().numpy()) <= TOLERANCE


def test_tiger_is_signum_with_its_own_defaults() -> None:
    """pytorch-optimizer's Tiger is sign(EMA_beta(g)) with decoupled decay: the signum entry's stages."""
    cls = reference_class("pytorch_optimizer.Tiger")
    expected, got, _ = train_reference_pair(
        lambda ps: cls(ps, lr=1e-3, beta=0.965, weight_decay=0.01),
        lambda ps: FilterOptimizer(ps, "signum", lr=1e-3, momentum=0.965, weight_decay=0.01),
        maximize=False,
    )
    assert relative_error(got, expected) <= TOLERANCE
