"""Parity: the bridge trains a small network exactly like torch.optim (float64, 1000 steps).

Every catalogue entry with a torch.optim counterpart is checked with its
defaults, each of its ``examples`` and a weight-decay/maximize setting, so a new
entry with a ``torch_class`` is covered automatically.  The gradients come from
the closed-form backpropagation of a 4-8-1 tanh MLP whose 49 weights live in
one flat parameter (checked against autograd below): both optimizers see the
same gradient function of their own parameters, so the trajectories agree only
if every step does.  Multi-tensor parameters are covered by the other tests.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest
import torch

import optfilters
from optfilters import CATALOGUE
from optfilters.torch import FilterOptimizer

STEPS = 1000
TOLERANCE = 1e-10


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4))
    y = np.sin(x.sum(1, keepdims=True)) + 0.1 * x[:, :1]
    return x, y


X, Y = _data()
SHAPES = [(8, 4), (8,), (1, 8), (1,)]
SIZES = [int(np.prod(s)) for s in SHAPES]


def init_params() -> list[torch.nn.Parameter]:
    """The network's weights in one flat tensor (W1, b1, W2, b2), which keeps each step cheap."""
    rng = np.random.default_rng(1)
    return [torch.nn.Parameter(torch.from_numpy(0.5 * rng.normal(size=sum(SIZES))))]


def unflatten(flat: Any) -> list[Any]:
    parts, start = [], 0
    for size, shape in zip(SIZES, SHAPES, strict=True):
        parts.append(flat[start : start + size].reshape(shape))
        start += size
    return parts


def gradients(flat: np.ndarray) -> np.ndarray:
    """The gradient of the mean squared error of ``W2 tanh(W1 x + b1) + b2``, by hand (numpy: cheap)."""
    w1, b1, w2, b2 = unflatten(flat)
    a = np.tanh(X @ w1.T + b1)
    d_out = (a @ w2.T + b2 - Y) * (2.0 / X.shape[0])
    d_hidden = (d_out @ w2) * (1.0 - a * a)
    return np.concatenate([(d_hidden.T @ X).ravel(), d_hidden.sum(0), (d_out.T @ a).ravel(), d_out.sum(0)])


def train_pair(
    make_a: Any, make_b: Any, steps: int = STEPS, maximize: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Train two copies in lockstep; the gradient is computed once while the parameters are bitwise equal.

    With ``maximize`` the optimizers get the gradient of the negated loss, so
    that they still train the network (maximizing ``-loss``).
    """
    pa, pb = init_params(), init_params()
    opt_a, opt_b = make_a(pa), make_b(pb)
    a, b = pa[0].detach().numpy(), pb[0].detach().numpy()
    for _ in range(steps):
        ga = gradients(a)
        gb = ga if np.array_equal(a, b) else gradients(b)
        if maximize:
            ga, gb = -ga, -gb
        pa[0].grad = torch.from_numpy(ga)
        pb[0].grad = torch.from_numpy(gb.copy())
        opt_a.step()
        opt_b.step()
    return pa[0].detach().clone(), pb[0].detach().clone()


def torch_class(dotted: str) -> Any:
    module, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def settings() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    extras = {"weight_decay": 0.05, "maximize": True}  # maximize: trained on the negated loss
    for name, entry in CATALOGUE.items():
        if entry.torch_class is None:
            continue
        for example in ({}, *entry.examples):
            cases.append((name, dict(example)))
        taken = {hp.name for hp in entry.hyperparameters}
        cases.append((name, {k: v for k, v in extras.items() if k in taken}))
    return cases


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Any:
    # Tiny tensors gain nothing from threads, and on a shared machine spinning threads cost a lot.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_manual_gradients_match_autograd() -> None:
    flat = init_params()[0]
    w1, b1, w2, b2 = unflatten(flat)
    x, y = torch.from_numpy(X), torch.from_numpy(Y)
    loss = ((torch.tanh(x @ w1.t() + b1) @ w2.t() + b2 - y) ** 2).mean()
    (auto,) = torch.autograd.grad(loss, flat)
    np.testing.assert_allclose(gradients(flat.detach().numpy()), auto.numpy(), rtol=1e-12, atol=1e-14)


def test_every_torch_counterpart_is_covered() -> None:
    covered = {name for name, _ in settings()}
    assert covered == {name for name, e in CATALOGUE.items() if e.torch_class}
    assert {"sgd", "momentum", "nesterov", "adam", "adamw", "amsgrad", "nadam", "radam"} <= covered
    assert {"adagrad", "adadelta", "rmsprop", "adamax"} <= covered


@pytest.mark.parametrize(("name", "overrides"), settings(), ids=lambda v: str(v))
def test_parity_with_torch_optim(name: str, overrides: dict[str, Any]) -> None:
    entry = CATALOGUE[name]
    params = entry.validate(overrides)
    reference, bridge = train_pair(
        lambda ps: torch_class(entry.torch_class)(ps, **entry.torch_kwargs(params)),
        lambda ps: FilterOptimizer(ps, name, **overrides),
        maximize=bool(params.get("maximize", False)),
    )
    error = ((bridge - reference).abs().max() / reference.abs().max()).item()
    assert error <= TOLERANCE, f"{name} {overrides}: max relative error {error:.3g}"
    # the run moved: the comparison is not between two copies of the initial point
    assert (reference - init_params()[0].detach()).abs().max() > 1e-3


def test_parity_with_model_object_and_betas_spelling() -> None:
    model = optfilters.get("adam", beta1=0.8, beta2=0.99, lr=0.01)
    for make in (
        lambda ps: FilterOptimizer(ps, model),
        lambda ps: FilterOptimizer(ps, "adam", lr=0.01, betas=(0.8, 0.99)),
        lambda ps: FilterOptimizer(ps, "adam", lr=0.01, beta1=0.8, beta2=0.99),
    ):
        reference, bridge = train_pair(lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99)), make, steps=200)
        assert torch.equal(bridge, reference)
