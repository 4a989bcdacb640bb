"""Hyperparameters that change during training: the bridge keeps torch.optim's contract (float64, 300 steps).

Every catalogue entry with a torch.optim counterpart (so a new one is covered
automatically) trains the same problem as its torch class, each optimizer
reading the gradient of its own parameters, under

* ``OneCycleLR`` and ``CyclicLR``, which rewrite ``momentum`` or ``betas[0]``
  (``cycle_momentum``) at every step, on the single-tensor, multi-tensor and
  fused paths;
* a change of every hyperparameter the entry has at (almost) every step,
  written into the param group by hand (:data:`SCHEDULES`; the test checks that
  the table names each hyperparameter of each entry);
* a tensor learning rate (and tensor betas where torch takes them) changed in
  place;
* ``torch.set_default_dtype(torch.float64)`` (NAdam's ``mu_product`` in float64).

With time-varying coefficients a filter's state form IS its semantics, so
these runs agree only if the bridge runs torch's own recursions (Nesterov's
buffer ``buf = mu buf + g`` with update ``g + mu buf``, NAdam's running product
of the ``mu_t`` of each step); the acceptance bound is 1e-12 relative.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch

import optfilters
from optfilters import CATALOGUE
from optfilters.torch import FilterOptimizer

STEPS = 300
TOLERANCE = 1e-12
#: The fused C kernels compute in IEEE arithmetic; torch's CPU kernels do not everywhere (its vectorised sqrt
#: on AVX-512 differs from the correctly rounded one in the last bit for about 0.7% of doubles), and this
#: problem's trajectories grow a one-ulp difference (RMSprop under CyclicLR measured 2.6e-10; every other entry
#: and schedule <= 6e-16).
FUSED_TOLERANCE = 1e-9
TORCH_ENTRIES = [name for name, entry in CATALOGUE.items() if entry.torch_class is not None]

_A = np.linspace(0.5, 3.0, 12)
_C = np.linspace(-1.0, 1.0, 12)


def gradient(theta: np.ndarray) -> np.ndarray:
    """The gradient of ``sum a (theta - c)^2 / 2 + 0.3 sum sin(3 theta)`` (smooth, non-quadratic)."""
    return _A * (theta - _C) + 0.9 * np.cos(3.0 * theta)


def schedule_params(dtype: torch.dtype = torch.float64, matrices: bool = False) -> list[torch.nn.Parameter]:
    """Two parameters (a matrix and a vector) that share the 12 coordinates of the problem.

    ``matrices``: the second is a 2 x 2 matrix (entries whose parameters must be matrices, Muon).
    """
    theta = np.linspace(1.5, -1.2, 12)
    return [
        torch.nn.Parameter(torch.tensor(theta[:8].reshape(2, 4), dtype=dtype)),
        torch.nn.Parameter(torch.tensor(theta[8:].reshape((2, 2) if matrices else (4,)), dtype=dtype)),
    ]


def matrices(name: str) -> bool:
    return CATALOGUE[name].parameter_ndim == 2


def set_grads(params: list[torch.nn.Parameter]) -> None:
    flat = np.concatenate([p.detach().double().numpy().ravel() for p in params])
    g = gradient(flat)
    params[0].grad = torch.tensor(g[:8].reshape(2, 4), dtype=params[0].dtype)
    params[1].grad = torch.tensor(g[8:].reshape(params[1].shape), dtype=params[1].dtype)


def flat(params: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([p.detach().double().flatten() for p in params])


def torch_class(name: str) -> Any:
    dotted = CATALOGUE[name].torch_class
    assert dotted is not None
    module, cls = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module), cls)


def torch_optimizer(name: str, params: list[torch.nn.Parameter], **overrides: Any) -> torch.optim.Optimizer:
    entry = CATALOGUE[name]
    tensors = {k: overrides.pop(k) for k in ("lr", "betas") if isinstance(overrides.get(k), (torch.Tensor, tuple))}
    kwargs = entry.torch_kwargs(entry.validate(overrides))
    kwargs.update(tensors)
    return torch_class(name)(params, **kwargs)


def tensor_relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def run_pair(
    make_ours: Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer],
    make_theirs: Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer],
    before_step: Callable[[int, torch.optim.Optimizer], None] | None = None,
    scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
    dtype: torch.dtype = torch.float64,
    steps: int = STEPS,
    name: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.optim.Optimizer]:
    """Train both in lockstep (parameters of the shapes ``name`` takes); returns (ours, theirs, our optimizer)."""
    square = name is not None and matrices(name)
    ours_p, theirs_p = schedule_params(dtype, square), schedule_params(dtype, square)
    ours, theirs = make_ours(ours_p), make_theirs(theirs_p)
    schedules = [scheduler(ours), scheduler(theirs)] if scheduler is not None else []
    for t in range(steps):
        for opt, ps in ((ours, ours_p), (theirs, theirs_p)):
            if before_step is not None:
                before_step(t, opt)
            set_grads(ps)
            opt.step()
        for s in schedules:
            s.step()
    start = flat(schedule_params(dtype, square))
    assert (flat(theirs_p) - start).abs().max() > 1e-3  # it trained
    return flat(ours_p), flat(theirs_p), ours


def cycles(name: str) -> bool:
    """Whether the torch class has ``momentum`` or ``betas`` for cycle_momentum to rewrite."""
    defaults = torch_class(name)([torch.zeros(1, 1, requires_grad=True)]).defaults
    return "momentum" in defaults or "betas" in defaults


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- the issue's cases


def test_nesterov_with_changing_momentum_takes_torchs_steps() -> None:
    """lr 1, momentum 0.9, 0.9, 0.8, 0.8, 0.7: torch.optim.SGD's steps 3 to 5 are 2.732, 0.0856, 1.20868."""
    grads = (-0.5, 0.5, 1.5, -0.5, 0.5)
    momenta = (0.9, 0.9, 0.8, 0.8, 0.7)

    def steps(make: Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer]) -> list[float]:
        p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        opt, out = make([p]), []
        for g, mu in zip(grads, momenta, strict=True):
            opt.param_groups[0]["momentum"] = mu
            p.grad = torch.tensor([g], dtype=torch.float64)
            before = p.item()
            opt.step()
            out.append(before - p.item())
        return out

    ours = steps(lambda ps: FilterOptimizer(ps, "sgd", lr=1.0, momentum=0.9, nesterov=True))
    theirs = steps(lambda ps: torch.optim.SGD(ps, lr=1.0, momentum=0.9, nesterov=True))
    assert ours == theirs
    # by hand: buf = mu buf + g (buf_1 = g), update g + mu buf
    buf, expected = 0.0, []
    for i, (g, mu) in enumerate(zip(grads, momenta, strict=True)):
        buf = g if i == 0 else mu * buf + g
        expected.append(g + mu * buf)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-15)  # (updates read back from the parameter)
    np.testing.assert_allclose(ours[2:], [2.732, 0.0856, 1.20868], rtol=1e-12)
    # the numpy reference executor runs the same recursion
    numpy_opt = optfilters.get("nesterov", lr=1.0).optimizer([0.0])
    reference = []
    for g, mu in zip(grads, momenta, strict=True):
        numpy_opt.set(momentum=mu)
        before = float(numpy_opt.theta[0])
        reference.append(before - float(numpy_opt.step([g])[0]))
    assert reference == ours


@pytest.mark.parametrize("name", ["nesterov", "nadam"])
@pytest.mark.parametrize("kind", ["onecycle", "cyclic"])
def test_the_issues_schedules_60_steps(name: str, kind: str) -> None:
    """The issue's settings (nesterov: lr 0.05, momentum 0.9; 60 steps) now agree bit for bit."""
    if kind == "onecycle":

        def scheduler(o: torch.optim.Optimizer) -> Any:
            return torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=60)
    else:

        def scheduler(o: torch.optim.Optimizer) -> Any:
            return torch.optim.lr_scheduler.CyclicLR(o, 0.01, 0.05, step_size_up=10)

    kwargs: dict[str, Any] = {"lr": 0.05, "momentum": 0.9} if name == "nesterov" else {"lr": 0.05}
    ours, theirs, _ = run_pair(
        lambda ps: FilterOptimizer(ps, name, **kwargs),
        lambda ps: torch_optimizer(name, ps, **kwargs),
        scheduler=scheduler,
        steps=60,
    )
    assert torch.equal(ours, theirs)


# ----------------------------------------------------------------------------- schedulers


def _scheduler(kind: str, name: str, lr: float) -> Callable[[torch.optim.Optimizer], Any]:
    cycle = cycles(name)
    if kind == "onecycle":
        return lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o, max_lr=lr, total_steps=STEPS, cycle_momentum=cycle, base_momentum=0.8, max_momentum=0.95
        )
    return lambda o: torch.optim.lr_scheduler.CyclicLR(
        o, lr / 10, lr, step_size_up=40, cycle_momentum=cycle, base_momentum=0.8, max_momentum=0.95
    )


LRS = {"adadelta": 1.0, "adagrad": 0.1}


@pytest.mark.parametrize("name", TORCH_ENTRIES)
@pytest.mark.parametrize("kind", ["onecycle", "cyclic"])
@pytest.mark.parametrize("path", ["single", "foreach", "fused"])
def test_schedulers_that_cycle_momentum_or_betas(name: str, kind: str, path: str) -> None:
    lr = LRS.get(name, 0.05)
    options = {"single": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}[path]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fused without a C compiler falls back with a warning
        ours, theirs, opt = run_pair(
            lambda ps: FilterOptimizer(ps, name, lr=lr, **options),
            lambda ps: torch_optimizer(name, ps, lr=lr),
            scheduler=_scheduler(kind, name, lr),
            name=name,
        )
    error = tensor_relative_error(ours, theirs)
    bound = TOLERANCE if path != "fused" else FUSED_TOLERANCE
    assert error <= bound, f"{name} under {kind} ({path}): relative error {error:.3g}"
    if cycles(name):  # the scheduler did rewrite the coefficients, and the bridge read them
        group = opt.param_groups[0]
        value = group["betas"][0] if "betas" in group else group["momentum"]
        defaults = CATALOGUE[name].defaults()
        assert value != pytest.approx(defaults.get("beta1", defaults.get("momentum")))


# ----------------------------------------------------------------------------- every hyperparameter by hand


def _frac(t: int, a: int, m: int) -> float:
    return ((a * t) % m) / (m - 1)


#: How each hyperparameter changes with the step ``t`` (torch's names); ``lr0`` is the starting lr.
SCHEDULES: dict[str, Callable[[int, float], Any]] = {
    "lr": lambda t, lr0: lr0 * (0.5 + 0.5 * _frac(t, 7, 11)),
    "momentum": lambda t, lr0: 0.5 + 0.45 * _frac(t, 3, 7),
    "dampening": lambda t, lr0: 0.3 * _frac(t, 5, 4),
    "weight_decay": lambda t, lr0: 0.02 * _frac(t, 1, 5),
    "betas": lambda t, lr0: (0.8 + 0.15 * _frac(t, 3, 7), 0.95 + 0.049 * _frac(t, 5, 9)),
    "eps": lambda t, lr0: 1e-8 * 10.0 ** (t % 3),
    "alpha": lambda t, lr0: 0.9 + 0.09 * _frac(t, 2, 5),
    "rho": lambda t, lr0: 0.8 + 0.15 * _frac(t, 3, 4),
    "lr_decay": lambda t, lr0: 0.01 * _frac(t, 1, 3),
    "momentum_decay": lambda t, lr0: 0.002 + 0.004 * _frac(t, 1, 5),
    "maximize": lambda t, lr0: (t // 50) % 2 == 1,
    "decoupled_weight_decay": lambda t, lr0: (t // 30) % 2 == 1,
    "nesterov": lambda t, lr0: (t // 40) % 2 == 1,
    "lambd": lambda t, lr0: 1e-4 + 0.02 * _frac(t, 2, 5),
    "t0": lambda t, lr0: 10.0 + 5.0 * (t % 3),
    "beta2_decay": lambda t, lr0: -0.8 + 0.3 * _frac(t, 2, 5),
    "d": lambda t, lr0: 1.0 + _frac(t, 3, 4),
    "etas": lambda t, lr0: (0.4 + 0.2 * _frac(t, 2, 5), 1.1 + 0.3 * _frac(t, 3, 4)),
    "step_sizes": lambda t, lr0: (1e-6 * (1 + t % 3), 0.02 + 0.03 * _frac(t, 1, 5)),
    "ns_steps": lambda t, lr0: 3 + t % 3,
    "ns_coefficients": lambda t, lr0: (3.4445, -4.775, 2.0315) if t % 2 == 0 else (2.0, -1.5, 0.5),
    "adjust_lr_fn": lambda t, lr0: (None, "original", "match_rms_adamw")[t % 3],
}
#: Schedules of an entry whose torch key has another form (Adafactor's eps is the tuple (eps1, eps2)).
ENTRY_SCHEDULES: dict[tuple[str, str], Callable[[int, float], Any]] = {
    ("adafactor", "eps"): lambda t, lr0: (None if t % 2 else 1e-30, 1e-3 * (1 + t % 3)),
}


def schedule_of(name: str, key: str) -> Callable[[int, float], Any]:
    return ENTRY_SCHEDULES.get((name, key), SCHEDULES[key])


#: Hyperparameters held constant in a run, and why (each appears in the entries' examples instead).
CONSTANT = {
    "amsgrad": "it adds a state tensor: torch.optim.Adam raises a KeyError when it is switched on mid-run",
    "centered": "it adds a state tensor: torch.optim.RMSprop raises a KeyError when it is switched on mid-run",
    "initial_accumulator_value": "it sets the initial state only (torch.optim.Adagrad reads it in __init__)",
}


def _torch_names(name: str) -> set[str]:
    names = {hp.name for hp in CATALOGUE[name].hyperparameters}
    if {"beta1", "beta2"} <= names:
        names = (names - {"beta1", "beta2"}) | {"betas"}
    for packed, parts in CATALOGUE[name].packed.items():  # torch's tuple: Adafactor's eps = (eps1, eps2)
        names = (names - set(parts)) | {packed}
    return names


def test_the_schedule_table_covers_every_hyperparameter() -> None:
    for name in TORCH_ENTRIES:
        missing = _torch_names(name) - set(SCHEDULES) - set(CONSTANT)
        assert not missing, f"{name}: give {sorted(missing)} a schedule (or a reason to hold it) in this test"


def _settings() -> list[tuple[str, dict[str, Any]]]:
    return [(name, dict(example)) for name in TORCH_ENTRIES for example in ({}, *CATALOGUE[name].examples)]


@pytest.mark.parametrize(("name", "example"), _settings(), ids=str)
def test_every_hyperparameter_changed_at_every_step(name: str, example: dict[str, Any]) -> None:
    example = dict(example)
    lr0 = example.pop("lr", LRS.get(name, 0.05))
    names = _torch_names(name)
    varied = sorted(names & set(SCHEDULES))
    held = {k: v for k, v in example.items() if k not in SCHEDULES}

    def before_step(t: int, opt: torch.optim.Optimizer) -> None:
        group = opt.param_groups[0]
        for key in varied:
            group[key] = schedule_of(name, key)(t, lr0)
        if "nesterov" in varied and group["nesterov"]:
            group["dampening"] = 0.0  # torch.optim.SGD's Nesterov needs dampening 0
        for key, value in held.items():
            if key in ("beta1", "beta2") or key not in names:  # parts of a scheduled tuple
                continue
            group[key] = value

    ours, theirs, _ = run_pair(
        lambda ps: FilterOptimizer(ps, name, lr=lr0, **example),
        lambda ps: torch_optimizer(name, ps, lr=lr0, **example),
        before_step=before_step,
        name=name,
    )
    error = tensor_relative_error(ours, theirs)
    assert error <= TOLERANCE, f"{name} {example}: relative error {error:.3g} with {varied} changing"


@pytest.mark.parametrize("name", TORCH_ENTRIES)
@pytest.mark.parametrize("path", ["foreach", "fused"])
def test_every_hyperparameter_and_a_tensor_lr_changed_on_the_other_paths(name: str, path: str) -> None:
    """The multi-tensor and fused paths under the same per-step changes, with lr a tensor changed in place."""
    lr0 = LRS.get(name, 0.05)
    varied = sorted(_torch_names(name) & set(SCHEDULES) - {"lr"})
    options = {"foreach": {"foreach": True}, "fused": {"fused": True}}[path]

    def before_step(t: int, opt: torch.optim.Optimizer) -> None:
        group = opt.param_groups[0]
        group["lr"].fill_(SCHEDULES["lr"](t, lr0))
        for key in varied:
            group[key] = schedule_of(name, key)(t, lr0)
        if "nesterov" in varied and group["nesterov"]:
            group["dampening"] = 0.0

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fused without a C compiler falls back with a warning
        ours, theirs, _ = run_pair(
            lambda ps: FilterOptimizer(ps, name, lr=torch.tensor(lr0, dtype=torch.float64), **options),
            lambda ps: torch_optimizer(name, ps, lr=torch.tensor(lr0, dtype=torch.float64)),
            before_step=before_step,
            name=name,
        )
    error = tensor_relative_error(ours, theirs)
    bound = TOLERANCE if path != "fused" else FUSED_TOLERANCE
    assert error <= bound, f"{name} ({path}): relative error {error:.3g} with {varied} changing"


# ----------------------------------------------------------------------------- tensor hyperparameters


@pytest.mark.parametrize("name", TORCH_ENTRIES)
def test_a_tensor_lr_stays_a_tensor_and_in_place_changes_count(name: str) -> None:
    lr0 = LRS.get(name, 0.05)
    lrs: list[torch.Tensor] = []

    def make(factory: Callable[..., torch.optim.Optimizer]) -> Callable[[list[torch.nn.Parameter]], Any]:
        def build(ps: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
            lr = torch.tensor(lr0, dtype=torch.float64)
            lrs.append(lr)
            opt = factory(ps, lr)
            assert opt.param_groups[0]["lr"] is lr
            return opt

        return build

    def before_step(t: int, opt: torch.optim.Optimizer) -> None:
        opt.param_groups[0]["lr"].fill_(lr0 * (0.5 + 0.5 * _frac(t, 7, 11)))

    ours, theirs, _ = run_pair(
        make(lambda ps, lr: FilterOptimizer(ps, name, lr=lr)),
        make(lambda ps, lr: torch_optimizer(name, ps, lr=lr)),
        before_step=before_step,
        name=name,
    )
    assert tensor_relative_error(ours, theirs) <= TOLERANCE


def test_the_issues_tensor_lr_changed_after_construction() -> None:
    """``FilterOptimizer([p], "sgd", lr=t)`` then ``t.fill_(0.5)``: one step from 1 with gradient 1 gives 0.5."""
    for make in (FilterOptimizer, lambda ps, name, lr: torch.optim.SGD(ps, lr=lr)):
        p = torch.nn.Parameter(torch.ones(1))
        lr = torch.tensor(0.1)
        opt = make([p], "sgd", lr=lr)
        lr.fill_(0.5)
        p.grad = torch.ones(1)
        opt.step()
        assert p.item() == 0.5


@pytest.mark.parametrize("name", [n for n in TORCH_ENTRIES if "betas" in _torch_names(n)])
def test_tensor_betas_changed_in_place(name: str) -> None:
    """torch takes tensor betas (Adam, AdamW); the bridge takes them for every entry with betas."""
    betas_of: list[tuple[torch.Tensor, torch.Tensor]] = []

    def ours(ps: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        betas = (torch.tensor(0.9, dtype=torch.float64), torch.tensor(0.999, dtype=torch.float64))
        betas_of.append(betas)
        opt = FilterOptimizer(ps, name, lr=0.05, betas=betas)
        assert opt.param_groups[0]["betas"][0] is betas[0]
        return opt

    def theirs(ps: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        return torch_optimizer(name, ps, lr=0.05)

    def before_step(t: int, opt: torch.optim.Optimizer) -> None:
        beta1, beta2 = SCHEDULES["betas"](t, 0.0)
        if isinstance(opt, FilterOptimizer):
            opt.param_groups[0]["betas"][0].fill_(beta1)
            opt.param_groups[0]["betas"][1].fill_(beta2)
        else:
            opt.param_groups[0]["betas"] = (beta1, beta2)

    a, b, _ = run_pair(ours, theirs, before_step=before_step)
    assert tensor_relative_error(a, b) <= TOLERANCE
    if name in ("adam", "adamw"):  # and against torch's own tensor betas

        def theirs_tensor(ps: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
            betas = (torch.tensor(0.9, dtype=torch.float64), torch.tensor(0.999, dtype=torch.float64))
            return torch_optimizer(name, ps, lr=0.05, betas=betas)

        def fill(t: int, opt: torch.optim.Optimizer) -> None:
            beta1, beta2 = SCHEDULES["betas"](t, 0.0)
            opt.param_groups[0]["betas"][0].fill_(beta1)
            opt.param_groups[0]["betas"][1].fill_(beta2)

        a, b, _ = run_pair(ours, theirs_tensor, before_step=fill)
        assert tensor_relative_error(a, b) <= TOLERANCE


# ----------------------------------------------------------------------------- scalar state dtype


@pytest.fixture
def float64_default() -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _float64_cases() -> list[tuple[str, str]]:
    return [(name, "single") for name in TORCH_ENTRIES] + [
        (name, path) for name in ("nadam", "radam", "adam") for path in ("foreach", "fused")
    ]


@pytest.mark.parametrize(("name", "path"), _float64_cases())
def test_float64_default_dtype(name: str, path: str, float64_default: None) -> None:
    """Scalar state (``step``, NAdam's ``mu_product``) in torch's scalar dtype: float64 here."""
    lr = LRS.get(name, 0.05)
    options = {"single": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}[path]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fused without a C compiler falls back with a warning
        ours, theirs, opt = run_pair(
            lambda ps: FilterOptimizer(ps, name, lr=lr, **options),
            lambda ps: torch_optimizer(name, ps, lr=lr),
            scheduler=_scheduler("onecycle", name, lr),
            name=name,
        )
    assert tensor_relative_error(ours, theirs) <= (TOLERANCE if path != "fused" else FUSED_TOLERANCE)
    state = opt.state[opt.param_groups[0]["params"][0]]
    for key in ("step", "mu_product"):
        if key in state:
            assert state[key].dtype == torch.float64


def test_nadam_under_float64_default_over_1000_steps(float64_default: None) -> None:
    """The issue's drift (8.1e-11 from a float32 running product) is gone: bit for bit."""
    ours, theirs, opt = run_pair(
        lambda ps: FilterOptimizer(ps, "nadam", lr=0.01),
        lambda ps: torch.optim.NAdam(ps, lr=0.01),
        steps=1000,
    )
    assert torch.equal(ours, theirs)
    assert opt.state[opt.param_groups[0]["params"][0]]["mu_product"].dtype == torch.float64


def test_nadam_product_is_state_under_changing_beta1() -> None:
    """mu_product multiplies in each step's mu_t with that step's beta1 (the issue's 2e-4 came from recomputing it)."""
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = FilterOptimizer([p], "nadam", lr=0.01)
    expected = np.float32(1.0)
    for t, beta1 in enumerate((0.9, 0.5, 0.7), start=1):
        opt.param_groups[0]["betas"] = (beta1, 0.999)
        p.grad = torch.ones(3, dtype=torch.float64)
        opt.step()
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * 4e-3))
        expected = np.float32(expected * np.float32(mu))
        assert opt.state[p]["mu_product"].item() == float(expected)


# ----------------------------------------------------------------------------- structure


def test_a_structural_change_restarts_the_stale_state_with_a_warning() -> None:
    """Butterworth order 4 -> 2 mid-run: the section memories of order 4 are not reused."""
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = FilterOptimizer([p], "butterworth", lr=0.1, order=4, cutoff=0.05)
    for _ in range(5):
        p.grad = torch.ones(3, dtype=torch.float64)
        opt.step()
    opt.param_groups[0]["order"] = 2
    before = p.detach().clone()
    p.grad = torch.ones(3, dtype=torch.float64)
    with pytest.warns(optfilters.StateResetWarning, match=r"order|structure of the filter state gradient\.0\.s0\.0"):
        opt.step()
    # the order-2 filter restarted from rest: its first output is b0 * g
    b0 = optfilters.get("butterworth", order=2, cutoff=0.05).filters()["gradient"].b[0]
    torch.testing.assert_close(before - p.detach(), torch.full((3,), 0.1 * b0, dtype=torch.float64), rtol=1e-14, atol=0)
    # a change of coefficients that keeps the structure continues silently
    opt.param_groups[0]["cutoff"] = 0.08
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p.grad = torch.ones(3, dtype=torch.float64)
        opt.step()


def test_the_numpy_executor_follows_the_same_semantics() -> None:
    """NumpyOptimizer under the same per-step changes as the bridge (OneCycle-like momentum, order change)."""
    model = optfilters.get("nadam", lr=0.01)
    numpy_opt = model.optimizer(np.zeros(3))
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    bridge = FilterOptimizer([p], "nadam", lr=0.01)
    rng = np.random.default_rng(0)
    for t in range(40):
        beta1 = 0.85 + 0.1 * _frac(t, 3, 7)
        g = rng.normal(size=3)
        numpy_opt.set(betas=(beta1, 0.999))
        bridge.param_groups[0]["betas"] = (beta1, 0.999)
        p.grad = torch.tensor(g)
        bridge.step()
        numpy_opt.step(g)
    np.testing.assert_allclose(numpy_opt.theta, p.detach().numpy(), rtol=1e-13, atol=1e-16)  # numpy rounds as numpy
    numpy_opt = optfilters.get("butterworth", order=4, lr=0.1).optimizer(np.zeros(2))
    for _ in range(3):
        numpy_opt.step([1.0, 1.0])
    numpy_opt.set(order=2)
    with pytest.warns(optfilters.StateResetWarning):
        numpy_opt.step([1.0, 1.0])


def test_lion_with_changing_betas_runs_the_references_recursion() -> None:
    """Lion (no torch.optim class) in lucidrains/lion-pytorch's state form: c = b1 m + (1 - b1) g, then m's update."""
    rng = np.random.default_rng(1)
    grads = rng.normal(size=(60, 4))
    betas = [(0.8 + 0.15 * _frac(t, 3, 7), 0.9 + 0.09 * _frac(t, 5, 9)) for t in range(60)]
    theta, m, expected = np.linspace(-1.0, 1.0, 4), np.zeros(4), []
    for g, (b1, b2) in zip(grads, betas, strict=True):
        theta = theta - 0.01 * np.sign(b1 * m + (1 - b1) * g)
        m = b2 * m + (1 - b2) * g
        expected.append(theta)
    p = torch.nn.Parameter(torch.linspace(-1.0, 1.0, 4, dtype=torch.float64))
    bridge = FilterOptimizer([p], "lion", lr=0.01)
    numpy_opt = optfilters.get("lion", lr=0.01).optimizer(np.linspace(-1.0, 1.0, 4))
    for t, (g, (b1, b2)) in enumerate(zip(grads, betas, strict=True)):
        bridge.param_groups[0]["betas"] = (b1, b2)
        p.grad = torch.tensor(g)
        bridge.step()
        numpy_opt.set(betas=(b1, b2))
        numpy_opt.step(g)
        np.testing.assert_allclose(p.detach().numpy(), expected[t], rtol=0, atol=1e-15)
        np.testing.assert_allclose(numpy_opt.theta, expected[t], rtol=0, atol=1e-15)
    # the ARMA(1,1) transfer function of constant betas is unchanged
    f = optfilters.get("lion", betas=(0.9, 0.99)).filters()["gradient"]
    np.testing.assert_allclose(f.b, [0.1, -0.09], rtol=1e-14)
    np.testing.assert_allclose(f.a, [1.0, -0.99], rtol=0)
