"""FilterOptimizer behaves like a native torch optimizer.

Construction and errors, parameter groups, skipped parameters, closures,
state_dict round trips, every kind of learning-rate scheduler (against
torch.optim under the same scheduler), low-precision and complex parameters.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch

import optfilters
from optfilters import ArmaFilter, InvalidHyperparameterError, UnknownNameError
from optfilters.stages import FilterTerm, LinearStage
from optfilters.torch import FilterOptimizer


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_params(dtype: torch.dtype = torch.float64, seed: int = 0) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=gen).to(dtype)) for s in [(4, 3), (3,), (2, 4)]]


def quadratic_grads(params: list[torch.Tensor], step: int) -> None:
    """Gradients of a fixed quadratic plus a deterministic wobble (closed loop: they depend on the parameters)."""
    for i, p in enumerate(params):
        wobble = torch.sin(torch.arange(p.numel(), dtype=torch.float64, device=p.device) + 0.37 * step + i)
        wobble = wobble.reshape(p.shape)
        p.grad = (0.5 * p.detach().double() + 0.1 * wobble).to(p.dtype)


def run(
    opt: torch.optim.Optimizer, params: list[torch.Tensor], steps: int, start: int = 0, scheduler: Any = None
) -> None:
    for k in range(start, start + steps):
        quadratic_grads(params, k)
        opt.step()
        if scheduler is not None:
            scheduler.step()


def flat(params: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([p.detach().double().flatten() for p in params])


# ----------------------------------------------------------------------------- construction and errors


def test_is_a_torch_optimizer_with_catalogue_defaults() -> None:
    opt = FilterOptimizer(make_params(), "adam")
    assert isinstance(opt, torch.optim.Optimizer)
    group = opt.param_groups[0]
    assert group["betas"] == (0.9, 0.999) and group["lr"] == 1e-3 and group["eps"] == 1e-8
    assert "beta1" not in group and group["foreach"] is None and group["fused"] is None
    assert opt.model.name == "adam"


def test_names_aliases_models_and_filters() -> None:
    params = make_params()
    assert FilterOptimizer(params, "NAG").model.name == "nesterov"
    assert FilterOptimizer(params, "heavy-ball", momentum=0.5).param_groups[0]["momentum"] == 0.5
    model = optfilters.get("butterworth", order=4, cutoff=0.02, dc_gain=10.0)
    opt = FilterOptimizer(params, model, lr=0.01)
    assert opt.param_groups[0]["order"] == 4 and opt.param_groups[0]["lr"] == 0.01
    assert opt.model.gradient == model.gradient
    raw = FilterOptimizer(params, ArmaFilter([0.1], [1.0, -0.9]), lr=0.5)
    assert raw.param_groups[0]["lr"] == 0.5
    assert raw.model.filters()["gradient"].isclose(ArmaFilter.ema(0.9))


@pytest.mark.parametrize(
    ("model", "kwargs", "error", "match"),
    [
        ("adma", {}, UnknownNameError, r"unknown optimizer 'adma'; did you mean 'adam'"),
        ("adam", {"betas": (1.5, 0.999)}, InvalidHyperparameterError, r"beta1 must be in \[0, 1\), got 1.5"),
        ("adam", {"beta2": 1.0}, InvalidHyperparameterError, r"beta2 must be in \[0, 1\), got 1.0"),
        ("adam", {"lr": -1.0}, InvalidHyperparameterError, r"lr must be >= 0, got -1.0"),
        ("adam", {"momentum": 0.9}, InvalidHyperparameterError, r"adam has no hyperparameter 'momentum'"),
        ("adam", {"betas": (0.9, 0.99), "beta1": 0.9}, InvalidHyperparameterError, r"betas or beta1/beta2, not both"),
        ("adam", {"betas": 0.9}, InvalidHyperparameterError, r"betas must be a pair \(beta1, beta2\), got 0.9"),
        ("sgd", {"nesterov": True}, InvalidHyperparameterError, r"nesterov needs momentum > 0"),
        ("sgd", {"betas": (0.9, 0.9)}, InvalidHyperparameterError, r"sgd has no hyperparameter 'betas'"),
        (
            ArmaFilter.ema(0.9),
            {"momentum": 0.9},
            InvalidHyperparameterError,
            r"takes only lr, weight_decay and maximize",
        ),
        (ArmaFilter.ema(0.9), {"lr": -2.0}, InvalidHyperparameterError, r"lr must be >= 0, got -2.0"),
        (
            3.0,
            {},
            TypeError,
            r"model must be a catalogue name, an optfilters.OptimizerModel or an optfilters.ArmaFilter",
        ),
    ],
)
def test_bad_arguments_fail_in_the_constructor(model: Any, kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        FilterOptimizer(make_params(), model, **kwargs)


def test_catalogue_bad_inputs_are_refused_with_the_catalogue_messages() -> None:
    for name, entry in optfilters.CATALOGUE.items():
        for kwargs, pattern in entry.bad_inputs:
            with pytest.raises(ValueError, match=pattern):
                FilterOptimizer(make_params(), name, **kwargs)


def test_bad_group_values_fail_when_the_group_is_added() -> None:
    a, b, c = make_params()
    with pytest.raises(InvalidHyperparameterError, match=r"beta2 must be in \[0, 1\), got 1.2"):
        FilterOptimizer([{"params": [a]}, {"params": [b], "betas": (0.9, 1.2)}], "adam")
    opt = FilterOptimizer([a], "momentum")
    with pytest.raises(InvalidHyperparameterError, match=r"momentum must be >= 0, got -0.5"):
        opt.add_param_group({"params": [b], "momentum": -0.5})
    with pytest.raises(ValueError, match="foreach and fused cannot both be True"):
        FilterOptimizer([c], "sgd", foreach=True, fused=True)


def test_sparse_gradients_are_refused() -> None:
    emb = torch.nn.Embedding(5, 3, sparse=True)
    opt = FilterOptimizer(emb.parameters(), "adam")
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(ValueError, match="does not support sparse gradients"):
        opt.step()


# ----------------------------------------------------------------------------- groups, skipping, closures


def test_per_group_hyperparameters_match_torch() -> None:
    pa, pb = make_params(), make_params()
    ref = torch.optim.Adam(
        [
            {"params": pa[:1]},
            {"params": pa[1:2], "lr": 0.05, "betas": (0.8, 0.99), "weight_decay": 0.1},
            {"params": pa[2:], "betas": (0.5, 0.999)},
        ],
        lr=0.01,
    )
    opt = FilterOptimizer(
        [
            {"params": pb[:1]},
            {"params": pb[1:2], "lr": 0.05, "betas": (0.8, 0.99), "weight_decay": 0.1},
            {"params": pb[2:], "beta1": 0.5},
        ],
        "adam",
        lr=0.01,
    )
    assert opt.param_groups[2]["betas"] == (0.5, 0.999)
    run(ref, pa, 30)
    run(opt, pb, 30)
    assert torch.equal(flat(pa), flat(pb))


def test_parameters_without_grad_are_skipped() -> None:
    pa, pb = make_params(), make_params()
    ref = torch.optim.Adam(pa, lr=0.1)
    opt = FilterOptimizer(pb, "adam", lr=0.1)
    for k in range(12):
        for params in (pa, pb):
            quadratic_grads(params, k)
            if k < 5:
                params[1].grad = None  # no gradient: no step, state untouched
        if k == 4:
            assert pb[1] not in opt.state or len(opt.state[pb[1]]) == 0
            before = pb[1].detach().clone()
        ref.step()
        opt.step()
        if k == 4:
            assert torch.equal(pb[1], before)
    assert torch.equal(flat(pa), flat(pb))
    assert int(opt.state[pb[0]]["step"]) == 12 and int(opt.state[pb[1]]["step"]) == 7


def test_step_runs_the_closure_with_grad_enabled_and_returns_its_loss() -> None:
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = FilterOptimizer([w], "sgd", lr=0.1)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 5.0
    assert torch.allclose(w, torch.tensor([0.8, 1.6]))
    opt.zero_grad()
    assert w.grad is None


def test_state_holds_float32_step_and_filter_memories() -> None:
    params = make_params()
    opt = FilterOptimizer(params, "adam", amsgrad=True)
    run(opt, params, 3)
    state = opt.state[params[0]]
    assert state["step"].dtype == torch.float32 and state["step"].dim() == 0 and float(state["step"]) == 3.0
    assert set(state) == {"step", "gradient.0", "second_moment.0", "second_moment.max"}
    assert all(v.dtype == torch.float64 for k, v in state.items() if k != "step")


def test_changing_a_hyperparameter_rebuilds_the_model() -> None:
    params = make_params()
    opt = FilterOptimizer(params, "momentum", momentum=0.9)
    assert opt.model.filters()["gradient"].a.tolist() == [1.0, -0.9]
    opt.param_groups[0]["momentum"] = 0.5
    assert opt.model.filters()["gradient"].a.tolist() == [1.0, -0.5]
    opt.param_groups[0]["lr"] = 0.25
    assert opt.model.lr == 0.25


def test_hand_built_model_runs_its_reference_recursion() -> None:
    stage = LinearStage(
        (FilterTerm(ArmaFilter.identity()), FilterTerm(ArmaFilter([0.2, 0.1], [1.0, -0.5, 0.06]), bias_corrected=True)),
        "gradient",
    )
    model = optfilters.OptimizerModel("mine", {"lr": 0.1}, gradient=stage)
    grads = np.random.default_rng(0).normal(size=(40, 2))
    w = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = FilterOptimizer([w], model, weight_decay=0.01)
    expected = optfilters.OptimizerModel(
        "mine", {"lr": 0.1}, gradient=stage, weight_decay=optfilters.stages.WeightDecay(0.01)
    )
    traj = expected.simulate(grads, theta0=np.zeros(2)).params[1:]
    got = []
    for g in grads:
        w.grad = torch.from_numpy(g)
        opt.step()
        got.append(w.detach().numpy().copy())
    np.testing.assert_allclose(got, traj, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- state_dict


RESUMABLE = [
    ("adam", {"amsgrad": True, "weight_decay": 0.01}),
    ("sgd", {"momentum": 0.9, "dampening": 0.3}),
    ("nadam", {}),
    ("radam", {}),
    ("rmsprop", {"centered": True, "momentum": 0.5}),
    ("adagrad", {"initial_accumulator_value": 0.1, "lr_decay": 0.01}),
    ("adadelta", {}),
    ("adamax", {}),
    ("butterworth", {"order": 5, "cutoff": 0.05}),
    ("grokfast", {}),
    ("asgd", {"t0": 3.0}),
    ("rprop", {}),
    ("adafactor", {}),
    ("lookahead", {"base": "momentum", "k": 3}),  # synchronisations on both sides of the checkpoint
    ("ema", {"base": "adam", "decay": 0.9}),
    ("swa", {"every": 2}),
]


@pytest.mark.parametrize(("name", "kwargs"), RESUMABLE, ids=lambda v: str(v))
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16], ids=str)
def test_resumed_run_continues_exactly(name: str, kwargs: dict[str, Any], dtype: torch.dtype) -> None:
    params = make_params(dtype)
    opt = FilterOptimizer(params, name, lr=0.01, **kwargs)
    run(opt, params, 7)
    saved_params = [p.detach().clone() for p in params]
    saved_state = copy.deepcopy(opt.state_dict())
    run(opt, params, 8, start=7)

    resumed = [torch.nn.Parameter(p.clone()) for p in saved_params]
    opt2 = FilterOptimizer(resumed, name, lr=0.5, **kwargs)  # lr comes back from the state dict
    opt2.load_state_dict(saved_state)
    assert opt2.param_groups[0]["lr"] == 0.01
    if dtype == torch.bfloat16:
        assert all(v.dtype == torch.float32 for k, v in opt2.state[resumed[0]].items())
    run(opt2, resumed, 8, start=7)
    assert torch.equal(flat(params), flat(resumed))


def test_state_dict_survives_torch_save_and_pickle(tmp_path: Any) -> None:
    params = make_params()
    opt = FilterOptimizer(params, "adam", lr=0.01)
    run(opt, params, 3)
    torch.save(opt.state_dict(), tmp_path / "opt.pt")
    loaded = torch.load(tmp_path / "opt.pt", weights_only=True)
    assert float(loaded["state"][0]["step"]) == 3.0
    clone = pickle.loads(pickle.dumps(opt))
    assert clone.model.name == "adam" and clone.param_groups[0]["lr"] == 0.01


# ----------------------------------------------------------------------------- schedulers


SCHEDULERS: list[tuple[str, Callable[[torch.optim.Optimizer], Any]]] = [
    ("StepLR", lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=5, gamma=0.5)),
    ("CosineAnnealingLR", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20)),
    ("ExponentialLR", lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.95)),
    ("LambdaLR", lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda k: 1.0 / (1 + k))),
    ("OneCycleLR", lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=30, cycle_momentum=True)),
    (
        "CyclicLR",
        lambda o: torch.optim.lr_scheduler.CyclicLR(o, base_lr=0.001, max_lr=0.05, step_size_up=5, cycle_momentum=True),
    ),
    ("ReduceLROnPlateau", lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, patience=1)),
]


@pytest.mark.parametrize(("scheduler_name", "make_scheduler"), SCHEDULERS, ids=[s[0] for s in SCHEDULERS])
@pytest.mark.parametrize(
    ("torch_cls", "name", "kwargs"),
    [(torch.optim.SGD, "momentum", {"momentum": 0.9}), (torch.optim.Adam, "adam", {})],
    ids=["sgd-momentum", "adam"],
)
def test_schedulers_drive_the_bridge_like_torch(
    scheduler_name: str,
    make_scheduler: Callable[[torch.optim.Optimizer], Any],
    torch_cls: Any,
    name: str,
    kwargs: dict[str, Any],
) -> None:
    if scheduler_name == "CyclicLR" and torch_cls is torch.optim.Adam:
        pytest.skip("CyclicLR's cycle_momentum needs 'momentum' (torch refuses Adam too)")
    pa, pb = make_params(), make_params()
    ref = torch_cls(pa, lr=0.01, **kwargs)
    opt = FilterOptimizer(pb, name, lr=0.01, **kwargs)
    sa, sb = make_scheduler(ref), make_scheduler(opt)
    seen = set()
    for k in range(30):
        for params, o, s in ((pa, ref, sa), (pb, opt, sb)):
            quadratic_grads(params, k)
            o.step()
            if isinstance(s, torch.optim.lr_scheduler.ReduceLROnPlateau):
                s.step(1.0)  # a flat loss: the lr drops every other step
            else:
                s.step()
        seen.add(opt.param_groups[0]["lr"])
        assert opt.param_groups[0]["lr"] == ref.param_groups[0]["lr"]
        if scheduler_name in ("OneCycleLR", "CyclicLR"):
            key = "momentum" if "momentum" in kwargs else "betas"
            assert opt.param_groups[0][key] == ref.param_groups[0][key]
    assert len(seen) > 3  # the schedule did change the lr
    assert torch.equal(flat(pa), flat(pb))


# ----------------------------------------------------------------------------- dtypes and devices


def test_bfloat16_training_tracks_float32() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 6, generator=gen)
    y = x @ torch.randn(6, 1, generator=gen) + 0.1 * torch.randn(64, 1, generator=gen)
    losses = {}
    for dtype in (torch.float32, torch.bfloat16):
        torch.manual_seed(1)
        net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)).to(dtype)
        opt = FilterOptimizer(net.parameters(), "adam", lr=1e-2)
        curve = []
        for _ in range(150):
            opt.zero_grad()
            loss = ((net(x.to(dtype)) - y.to(dtype)) ** 2).mean()
            loss.backward()
            opt.step()
            curve.append(loss.item())
        losses[dtype] = np.array(curve)
        state = opt.state[next(net.parameters())]
        assert all(v.dtype == torch.float32 for v in state.values())
        assert next(net.parameters()).dtype == dtype
    full, low = losses[torch.float32], losses[torch.bfloat16]
    assert low[-1] < 0.1 * low[0]  # it trains
    assert np.all(np.abs(low[10:] - full[10:]) <= 0.05 * full[0] + 0.1 * full[10:])


def test_float32_follows_torch_closely() -> None:
    pa, pb = make_params(torch.float32), make_params(torch.float32)
    ref = torch.optim.Adam(pa, lr=0.01)
    opt = FilterOptimizer(pb, "adam", lr=0.01)
    run(ref, pa, 50)
    run(opt, pb, 50)
    torch.testing.assert_close(flat(pa), flat(pb), rtol=1e-5, atol=1e-6)


def test_complex_parameters_use_real_coordinates_like_torch() -> None:
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(4, dtype=torch.complex128, generator=gen)
    pa, pb = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    ref = torch.optim.Adam([pa], lr=0.05)
    opt = FilterOptimizer([pb], "adam", lr=0.05)
    for k in range(20):
        for p, o in ((pa, ref), (pb, opt)):
            p.grad = p.detach() * 0.5 + (1 + 2j) * np.sin(k)
            o.step()
    assert torch.equal(pa, pb)
    assert opt.state[pb]["gradient.0"].dtype == torch.complex128


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu() -> None:  # pragma: no cover - runs where a GPU is available
    cpu = make_params(torch.float32)
    gpu = [torch.nn.Parameter(p.detach().cuda()) for p in cpu]
    for fused in (False, True):
        oc = FilterOptimizer(cpu, "adam", lr=0.01)
        og = FilterOptimizer(gpu, "adam", lr=0.01, fused=fused)
        run(oc, cpu, 10)
        run(og, gpu, 10)
        torch.testing.assert_close(flat(cpu), flat([p.cpu() for p in gpu]), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("fused", [False, True])
def test_cuda_parity_with_torch_optim_for_every_catalogue_entry(fused: bool) -> None:  # pragma: no cover - GPU only
    """On the GPU, in float64, the bridge follows torch.optim's own CUDA implementation step by step."""
    from optfilters import CATALOGUE

    for name, entry in CATALOGUE.items():
        if entry.torch_class is None:
            continue
        torch_class = getattr(torch.optim, entry.torch_class.rsplit(".", 1)[-1])
        params = entry.validate({})
        start = make_params()
        if entry.parameter_ndim == 2:  # matrices only (Muon)
            start = [p for p in start if p.dim() == 2]
        ours = [torch.nn.Parameter(p.detach().cuda()) for p in start]
        theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
        run(FilterOptimizer(ours, name, fused=fused), ours, 50)
        run(torch_class(theirs, **entry.torch_kwargs(params)), theirs, 50)
        torch.testing.assert_close(flat(ours), flat(theirs), rtol=1e-10, atol=1e-12, msg=name)
