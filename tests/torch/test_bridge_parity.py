"""Parity: the bridge trains a small network exactly like torch.optim (float64).

Every catalogue entry with a torch.optim counterpart is checked with its
defaults, each of its ``examples`` and a weight-decay/maximize setting, so a new
entry with a ``torch_class`` is covered automatically, twice:

* 1000 steps on the closed-form backpropagation of a 4-8-1 tanh MLP whose 49
  weights live in one flat parameter (checked against autograd below; a 7 x 7
  matrix for entries that take matrices only, ``parameter_ndim = 2``), to a
  relative ``1e-10``;
* 300 steps with one tensor per weight (``W1`` 8 x 4, ``b1``, ``W2`` 1 x 8,
  ``b2``; the biases as 1 x n matrices for matrix-only entries) and gradients
  with zeros (every 17th step all of them, 15% of the elements at every step)
  and outliers (three elements scaled by 100 every 23 steps), to a relative
  ``1e-12``.

Both optimizers see the same gradient function of their own parameters, so the
trajectories agree only if every step does.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

import optfilters
from optfilters import CATALOGUE
from optfilters.torch import FilterOptimizer

PARITY_STEPS = 1000
PARITY_TOLERANCE = 1e-10


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4))
    y = np.sin(x.sum(1, keepdims=True)) + 0.1 * x[:, :1]
    return x, y


X, Y = _data()
SHAPES = [(8, 4), (8,), (1, 8), (1,)]
SIZES = [int(np.prod(s)) for s in SHAPES]


def init_params(shape: tuple[int, ...] | None = None) -> list[torch.nn.Parameter]:
    """The network's weights in one flat tensor (W1, b1, W2, b2), which keeps each step cheap (or a 7 x 7 matrix)."""
    rng = np.random.default_rng(1)
    flat = 0.5 * rng.normal(size=sum(SIZES))
    return [torch.nn.Parameter(torch.from_numpy(flat.reshape(shape) if shape else flat))]


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
    make_a: Any, make_b: Any, steps: int = PARITY_STEPS, maximize: bool = False, shape: tuple[int, ...] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Train two copies in lockstep; the gradient is computed once while the parameters are bitwise equal.

    With ``maximize`` the optimizers get the gradient of the negated loss, so
    that they still train the network (maximizing ``-loss``).
    """
    pa, pb = init_params(shape), init_params(shape)
    opt_a, opt_b = make_a(pa), make_b(pb)
    a, b = pa[0].detach().numpy().ravel(), pb[0].detach().numpy().ravel()
    for _ in range(steps):
        ga = gradients(a)
        gb = ga if np.array_equal(a, b) else gradients(b)
        if maximize:
            ga, gb = -ga, -gb
        pa[0].grad = torch.from_numpy(ga.reshape(pa[0].shape))
        pb[0].grad = torch.from_numpy(gb.copy().reshape(pb[0].shape))
        opt_a.step()
        opt_b.step()
    return pa[0].detach().clone(), pb[0].detach().clone()


def flat_shape(entry: Any) -> tuple[int, ...] | None:
    """The one-tensor layout: flat, or a 7 x 7 matrix for entries that take matrices only."""
    return (7, 7) if entry.parameter_ndim == 2 else None


def import_class(dotted: str) -> Any:
    module, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def parity_settings() -> list[tuple[str, dict[str, Any]]]:
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
def one_thread() -> Iterator[None]:
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
    covered = {name for name, _ in parity_settings()}
    assert covered == {name for name, e in CATALOGUE.items() if e.torch_class}
    assert {"sgd", "momentum", "nesterov", "adam", "adamw", "amsgrad", "nadam", "radam"} <= covered
    assert {"adagrad", "adadelta", "rmsprop", "adamax"} <= covered
    assert {"muon", "adafactor", "asgd", "rprop"} <= covered


@pytest.mark.parametrize(("name", "overrides"), parity_settings(), ids=lambda v: str(v))
def test_parity_with_torch_optim(name: str, overrides: dict[str, Any]) -> None:
    entry = CATALOGUE[name]
    params = entry.validate(overrides)
    shape = flat_shape(entry)
    reference, bridge = train_pair(
        lambda ps: import_class(entry.torch_class)(ps, **entry.torch_kwargs(params)),
        lambda ps: FilterOptimizer(ps, name, **overrides),
        maximize=bool(params.get("maximize", False)),
        shape=shape,
    )
    error = ((bridge - reference).abs().max() / reference.abs().max()).item()
    assert error <= PARITY_TOLERANCE, f"{name} {overrides}: max relative error {error:.3g}"
    # the run moved: the comparison is not between two copies of the initial point
    assert (reference - init_params(shape)[0].detach()).abs().max() > 1e-3


def test_parity_with_model_object_and_betas_spelling() -> None:
    model = optfilters.get("adam", beta1=0.8, beta2=0.99, lr=0.01)
    for make in (
        lambda ps: FilterOptimizer(ps, model),
        lambda ps: FilterOptimizer(ps, "adam", lr=0.01, betas=(0.8, 0.99)),
        lambda ps: FilterOptimizer(ps, "adam", lr=0.01, beta1=0.8, beta2=0.99),
    ):
        reference, bridge = train_pair(lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99)), make, steps=200)
        assert torch.equal(bridge, reference)


# ----------------------------------------------------------------------------- 300 steps, zeros and outliers

HARD_STEPS = 300
HARD_TOLERANCE = 1e-12
LAYOUTS = {"mixed": [(8, 4), (8,), (1, 8), (1,)], "matrices": [(8, 4), (1, 8), (1, 8), (1, 1)]}


def layout(entry: Any) -> list[tuple[int, ...]]:
    """One tensor per weight; every tensor a matrix for entries that take matrices only."""
    return LAYOUTS["matrices" if entry.parameter_ndim == 2 else "mixed"]


def hard_gradients(flat: np.ndarray, t: int) -> np.ndarray:
    """The network's gradient at step ``t`` with zeros and outliers (the same pattern for both optimizers)."""
    g = gradients(flat)
    if t % 17 == 0:
        return np.zeros_like(g)
    rng = np.random.default_rng(1000 + t)
    g = g * (rng.random(g.size) > 0.15)
    if t % 23 == 5:
        g[rng.choice(g.size, 3, replace=False)] *= 100.0
    return g


def init_tensors(shapes: list[tuple[int, ...]]) -> list[torch.nn.Parameter]:
    flat = init_params()[0].detach().numpy()
    out, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(torch.nn.Parameter(torch.from_numpy(flat[start : start + size].reshape(shape).copy())))
        start += size
    return out


def flatten(params: list[torch.Tensor]) -> np.ndarray:
    return np.concatenate([p.detach().numpy().ravel() for p in params])


def train_hard(
    make_a: Any, make_b: Any, shapes: list[tuple[int, ...]], steps: int = HARD_STEPS, maximize: bool = False
) -> tuple[list[torch.nn.Parameter], list[torch.nn.Parameter], Any, Any]:
    """Train two copies in lockstep on the gradients with zeros and outliers; returns both and their optimizers."""
    pa, pb = init_tensors(shapes), init_tensors(shapes)
    opt_a, opt_b = make_a(pa), make_b(pb)
    for t in range(1, steps + 1):
        a, b = flatten(pa), flatten(pb)
        ga = hard_gradients(a, t)
        gb = ga if np.array_equal(a, b) else hard_gradients(b, t)
        if maximize:
            ga, gb = -ga, -gb
        for params, g in ((pa, ga), (pb, gb)):
            start = 0
            for p in params:
                p.grad = torch.from_numpy(g[start : start + p.numel()].reshape(p.shape).copy())
                start += p.numel()
        opt_a.step()
        opt_b.step()
    return pa, pb, opt_a, opt_b


def relative_error(got: np.ndarray, reference: np.ndarray) -> float:
    return float(np.max(np.abs(got - reference)) / np.max(np.abs(reference)))


@pytest.mark.parametrize(("name", "overrides"), parity_settings(), ids=lambda v: str(v))
def test_parity_with_zeros_and_outliers_over_300_steps(name: str, overrides: dict[str, Any]) -> None:
    entry = CATALOGUE[name]
    params = entry.validate(overrides)
    shapes = layout(entry)
    reference, bridge, _, _ = train_hard(
        lambda ps: import_class(entry.torch_class)(ps, **entry.torch_kwargs(params)),
        lambda ps: FilterOptimizer(ps, name, **overrides),
        shapes,
        maximize=bool(params.get("maximize", False)),
    )
    error = relative_error(flatten(bridge), flatten(reference))
    assert error <= HARD_TOLERANCE, f"{name} {overrides}: max relative error {error:.3g}"
    assert np.max(np.abs(flatten(reference) - flatten(init_tensors(shapes)))) > 1e-2


def test_the_outliers_and_zeros_matter() -> None:
    """The gradient pattern really has zeros and outliers (and differs from the plain gradient)."""
    flat = init_params()[0].detach().numpy()
    plain, hard = gradients(flat), hard_gradients(flat, 5)
    assert np.mean(hard == 0.0) > 0.05
    assert np.sum((plain != 0.0) & (np.abs(hard) >= 99.0 * np.abs(plain))) >= 2  # outliers (one may fall on a zero)
    assert not np.any(hard_gradients(flat, 17))


def test_matrix_only_entries_refuse_vectors_like_torch() -> None:
    """torch.optim.Muon refuses 1-D parameters in its constructor; the bridge and the numpy model at the first step."""
    for name, entry in CATALOGUE.items():
        if entry.parameter_ndim != 2:
            continue
        vectors = init_tensors(LAYOUTS["mixed"])
        with pytest.raises(ValueError, match="2D parameters"):
            import_class(entry.torch_class)(vectors)
        opt = FilterOptimizer(vectors, name)
        for p in vectors:
            p.grad = torch.ones_like(p)
        with pytest.raises(ValueError, match=r"needs 2-D parameters \(matrices\), got one of shape \(8,\)"):
            opt.step()
        with pytest.raises(ValueError, match="needs 2-D parameters"):
            optfilters.get(name).simulate(np.ones((2, 3)), theta0=np.zeros(3))


@pytest.mark.parametrize("overrides", [{"t0": 100.0}, {"lambd": 0.01, "alpha": 1.0, "t0": 20.0}], ids=str)
def test_asgd_average_is_torchs_ax(overrides: dict[str, Any]) -> None:
    """The Polyak average the model keeps (state ``averaged``) is torch.optim.ASGD's ``ax``, bit for bit."""
    entry = CATALOGUE["asgd"]
    params = entry.validate(overrides)
    ref, got, torch_opt, bridge = train_hard(
        lambda ps: torch.optim.ASGD(ps, **entry.torch_kwargs(params)),
        lambda ps: FilterOptimizer(ps, "asgd", **overrides),
        layout(entry),
    )
    expected = np.concatenate([torch_opt.state[p]["ax"].numpy().ravel() for p in ref])
    averaged = np.concatenate([bridge.state[p]["averaged"].numpy().ravel() for p in got])
    assert relative_error(averaged, expected) <= HARD_TOLERANCE
    assert relative_error(averaged, flatten(got)) > 1e-3  # the average is not the parameter
