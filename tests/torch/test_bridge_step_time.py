"""What the bridge reads at step time is checked: hyperparameters, stability, structure (issue 13, class 7).

* Every hyperparameter a step reads is validated at that step, before any
  parameter of any group moves: ``param_groups[0]["lr"] = nan`` (or -5) after
  the first step raises a one-line ValueError naming it, on every path, and
  leaves parameters and state as they were; so does any other hyperparameter
  of any catalogue entry set to NaN.  A tensor ``lr`` is checked too (at
  construction and at every step where it is read on the host), whatever the
  model (a raw ``ArmaFilter`` included).
* A filter whose poles leave the unit circle warns once, with a
  :class:`optfilters.StabilityWarning` that points at the caller's line;
  marginal filters by design (Adagrad's accumulator) and stable ones do not.
* A change of a structural hyperparameter (the ``order`` of a designed
  filter, the length of a custom filter's ``a``) restarts the stale memories:
  the run continues exactly as a fresh optimizer of the new structure would.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import torch

import optfilters
from optfilters import CATALOGUE, ArmaFilter, StabilityWarning, StateResetWarning
from optfilters.torch import FilterOptimizer

PATHS: dict[str, dict[str, Any]] = {
    "single": {},
    "foreach": {"foreach": True},
    "fused": {"fused": True},
    "capturable": {"capturable": True},
    "differentiable": {"differentiable": True},
}


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _params(path: str = "single", matrices: bool = False) -> list[Any]:
    """A matrix and a vector; two matrices with ``matrices`` (entries with parameter_ndim 2, Muon)."""
    params = [
        torch.nn.Parameter(torch.linspace(-1.0, 1.0, 6, dtype=torch.float64).reshape(2, 3)),
        torch.nn.Parameter(torch.linspace(0.5, 2.0, 4, dtype=torch.float64).reshape((2, 2) if matrices else (4,))),
    ]
    if path == "differentiable":  # torch.optim's differentiable mode steps non-leaf tensors
        return [p.clone() for p in params]
    return params


def _grads(opt: torch.optim.Optimizer) -> None:
    for group in opt.param_groups:
        for p in group["params"]:
            p.grad = (torch.cos(3.0 * p) + p).detach()


def _make(model: Any, path: str = "single", params: list[Any] | None = None, **kwargs: Any) -> FilterOptimizer:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fused without a C compiler falls back with a warning
        return FilterOptimizer(params if params is not None else _params(path), model, **PATHS[path], **kwargs)


def _step(opt: torch.optim.Optimizer, steps: int = 1) -> None:
    for _ in range(steps):
        _grads(opt)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            opt.step()


def _snapshot(opt: FilterOptimizer) -> tuple[list[torch.Tensor], list[dict[str, Any]]]:
    params = [p for g in opt.param_groups for p in g["params"]]
    return [p.detach().clone() for p in params], [copy.deepcopy(dict(opt.state[p])) for p in params]


def _assert_unchanged(opt: FilterOptimizer, before: tuple[list[torch.Tensor], list[dict[str, Any]]]) -> None:
    params = [p for g in opt.param_groups for p in g["params"]]
    for p, old in zip(params, before[0], strict=True):
        assert torch.equal(p.detach(), old)
    for p, old_state in zip(params, before[1], strict=True):
        assert opt.state[p].keys() == old_state.keys()
        for key, value in old_state.items():
            assert torch.equal(opt.state[p][key], value), key


# ----------------------------------------------------------------------------- lr at step time


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (math.nan, r"param_groups\[0\]\['lr'\] must be a finite number, got nan"),
        (-5.0, r"param_groups\[0\]\['lr'\] must be >= 0, got -5"),
        (-5, r"param_groups\[0\]\['lr'\] must be >= 0, got -5"),
        (math.inf, r"param_groups\[0\]\['lr'\] must be a finite number, got inf"),
        ("fast", r"param_groups\[0\]\['lr'\] must be a number, got 'fast'"),
        (None, r"param_groups\[0\]\['lr'\] is required"),
    ],
    ids=["nan", "-5.0", "-5", "inf", "str", "None"],
)
def test_a_bad_lr_written_after_the_first_step_is_refused(path: str, bad: Any, message: str) -> None:
    opt = _make("adam", path, lr=0.01)
    _step(opt, 2)
    before = _snapshot(opt)
    opt.param_groups[0]["lr"] = bad
    _grads(opt)
    with pytest.raises(ValueError, match=r"^FilterOptimizer\(adam\): " + message) as info:
        opt.step()
    assert "\n" not in str(info.value)
    _assert_unchanged(opt, before)
    opt.param_groups[0]["lr"] = 0.01  # and it runs on once the value is good again
    _step(opt)


@pytest.mark.parametrize("path", list(PATHS))
def test_a_bad_lr_in_a_later_group_moves_no_group(path: str) -> None:
    a, b = _params(path)
    opt = _make("nesterov", path, params=[{"params": [a]}, {"params": [b], "lr": 0.02}], lr=0.01, momentum=0.9)
    _step(opt, 2)
    before = _snapshot(opt)
    opt.param_groups[1]["lr"] = -1e-3
    _grads(opt)
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['lr'\] must be >= 0, got -0.001"):
        opt.step()
    _assert_unchanged(opt, before)


def test_add_param_group_checks_its_lr() -> None:
    a, b = _params()
    opt = FilterOptimizer([a], "sgd", lr=0.1)
    with pytest.raises(ValueError, match=r"lr must be >= 0, got -1"):
        opt.add_param_group({"params": [b], "lr": -1.0})
    with pytest.raises(ValueError, match=r"lr must be a number or a 1-element tensor, got a tensor of shape \(2,\)"):
        opt.add_param_group({"params": [b], "lr": torch.tensor([0.1, 0.2])})
    assert len(opt.param_groups) == 1


# ----------------------------------------------------------------------------- tensor lr


@pytest.mark.parametrize(
    "model", [ArmaFilter([0.1], [1.0, -0.9]), "adam", optfilters.get("butterworth", order=2)], ids=str
)
@pytest.mark.parametrize(
    ("lr", "message"),
    [
        (torch.tensor(math.nan), r"lr must be a finite number, got nan"),
        (torch.tensor(-1.0), r"lr must be >= 0, got -1"),
        (torch.tensor([0.1, 0.2]), r"lr must be a number or a 1-element tensor, got a tensor of shape \(2,\)"),
        (torch.tensor(1), r"lr must be a real floating-point tensor, got torch.int64"),
    ],
    ids=["nan", "negative", "two elements", "integer"],
)
def test_a_bad_tensor_lr_is_refused_at_construction(model: Any, lr: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FilterOptimizer(_params(), model, lr=lr)


@pytest.mark.parametrize("path", ["single", "foreach", "fused", "differentiable"])
@pytest.mark.parametrize("model", [ArmaFilter([0.1], [1.0, -0.9]), "adam"], ids=str)
def test_a_tensor_lr_changed_in_place_to_a_bad_value_is_refused(model: Any, path: str) -> None:
    lr = torch.tensor(0.05, dtype=torch.float64)
    opt = _make(model, path, lr=lr)
    _step(opt, 2)
    before = _snapshot(opt)
    for bad, message in ((math.nan, "must be a finite number, got nan"), (-2.0, "must be >= 0, got -2")):
        lr.fill_(bad)
        _grads(opt)
        with pytest.raises(ValueError, match=r"param_groups\[0\]\['lr'\] " + message):
            opt.step()
        _assert_unchanged(opt, before)
    lr.fill_(0.05)
    _step(opt)


def test_a_tensor_lr_read_on_the_device_is_checked_without_reading_it() -> None:
    """capturable=True reads lr on the device: its shape and dtype are checked at each step, its value is not."""
    lr = torch.tensor(0.05, dtype=torch.float64)
    opt = _make("adam", "capturable", lr=lr)
    _step(opt, 2)
    before = _snapshot(opt)
    opt.param_groups[0]["lr"] = torch.tensor([0.05, 0.05])
    _grads(opt)
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['lr'\] must be a number or a 1-element tensor"):
        opt.step()
    _assert_unchanged(opt, before)


# ----------------------------------------------------------------------------- every other hyperparameter


def _float_hyperparameters() -> list[tuple[str, str]]:
    out = []
    for name, entry in CATALOGUE.items():
        for hp in entry.hyperparameters:
            if hp.kind == "float" and hp.name != "lr":
                out.append((name, hp.name))
    return out


def test_every_float_hyperparameter_set_to_nan_mid_run_is_refused() -> None:
    """For every catalogue entry, each float hyperparameter written as NaN after two steps: refused, nothing moves."""
    cases = _float_hyperparameters()
    assert len(cases) > 40
    for name, key in cases:
        entry = CATALOGUE[name]
        needs = any(hp.default is None for hp in entry.hyperparameters)  # custom: b and a have no default
        settings = {k: v for k, v in entry.examples[0].items() if k != "lr"} if needs else {}
        opt = _make(name, params=_params(matrices=entry.parameter_ndim == 2), lr=0.01, **settings)
        _step(opt, 2)
        before = _snapshot(opt)
        group = opt.param_groups[0]
        packed = {n: (k, names.index(n)) for k, names in entry.packed.items() for n in names}
        if key in ("beta1", "beta2") and "betas" in group:
            betas = list(group["betas"])
            betas[0 if key == "beta1" else 1] = math.nan
            group["betas"] = tuple(betas)
        elif key in packed:  # torch's tuple (Adafactor's eps = (eps1, eps2))
            spelled, index = packed[key]
            values = list(group[spelled])
            values[index] = math.nan
            group[spelled] = tuple(values)
        else:
            group[key] = math.nan
        _grads(opt)
        with pytest.raises(ValueError, match=rf"^FilterOptimizer\({name}\), param group 0: .*{key}") as info:
            opt.step()
        assert "\n" not in str(info.value)
        _assert_unchanged(opt, before)


def test_tensor_betas_changed_in_place_to_a_bad_value_are_refused() -> None:
    betas = (torch.tensor(0.9, dtype=torch.float64), torch.tensor(0.999, dtype=torch.float64))
    opt = _make("adam", lr=0.01, betas=betas)
    _step(opt, 2)
    before = _snapshot(opt)
    betas[1].fill_(1.5)
    _grads(opt)
    with pytest.raises(ValueError, match=r"param group 0: beta2 must be in \[0, 1\), got 1.5"):
        opt.step()
    _assert_unchanged(opt, before)


# ----------------------------------------------------------------------------- stability


def _stability_warnings(opt: FilterOptimizer, steps: int, change: dict[str, Any] | None = None) -> list[Any]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(steps):
            if change is not None and k == steps // 2:
                opt.param_groups[0].update(change)
            _grads(opt)
            opt.step()
    return [w for w in caught if issubclass(w.category, StabilityWarning)]


@pytest.mark.parametrize("path", list(PATHS))
def test_an_unstable_filter_warns_once(path: str) -> None:
    """momentum=1.5 (a pole at z = 1.5): one StabilityWarning in 6 steps, still one after a change to 1.6."""
    opt = _make("momentum", path, lr=0.01, momentum=1.5)
    caught = _stability_warnings(opt, 6, change={"momentum": 1.6})
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "FilterOptimizer(momentum): the gradient filter of param group 0 is UNSTABLE" in message
    assert "|z| = 1.5 > 1" in message
    assert caught[0].filename == __file__  # it points at the line that called step()


def test_an_unstable_raw_filter_warns_and_each_group_once() -> None:
    a, b = _params()
    opt = FilterOptimizer([{"params": [a]}, {"params": [b]}], ArmaFilter([1.0], [1.0, -2.0]), lr=1e-3)
    caught = _stability_warnings(opt, 4)
    assert sorted(str(w.message).split(" of ")[1].split(" is ")[0] for w in caught) == [
        "param group 0",
        "param group 1",
    ]
    assert all("|z| = 2 > 1" in str(w.message) for w in caught)


def test_a_change_from_stable_to_unstable_warns_then() -> None:
    opt = _make("sgd", lr=0.01, momentum=0.9)
    caught = _stability_warnings(opt, 6, change={"momentum": 1.2})
    assert len(caught) == 1 and "|z| = 1.2" in str(caught[0].message)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("momentum", {"momentum": 0.99}), ("adagrad", {}), ("momentum", {"momentum": 1.0}), ("butterworth", {})],
    ids=str,
)
def test_stable_and_marginal_filters_do_not_warn(name: str, kwargs: dict[str, Any]) -> None:
    """Adagrad's accumulator (a pole at z = 1 by design) and momentum 1 are marginal: no StabilityWarning."""
    assert _stability_warnings(_make(name, lr=0.01, **kwargs), 3) == []


# ----------------------------------------------------------------------------- structure


STRUCTURAL: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("butterworth", {"order": 4, "cutoff": 0.1}, {"order": 2}),
    ("butterworth", {"order": 2, "cutoff": 0.1}, {"order": 5}),
    ("chebyshev1", {"order": 3, "ripple": 0.5}, {"order": 4}),
    ("bessel", {"order": 4, "cutoff": 0.1}, {"order": 1}),
    ("custom", {"b": (0.1,), "a": (1.0, -0.9)}, {"b": (1.0, 0.5), "a": (1.0, -0.5, 0.06)}),
]


def test_the_structural_table_covers_every_designed_entry() -> None:
    designed = {name for name, entry in CATALOGUE.items() if "order" in {hp.name for hp in entry.hyperparameters}}
    assert designed <= {name for name, _, _ in STRUCTURAL}


@pytest.mark.parametrize("path", ["single", "foreach", "fused", "capturable"])
@pytest.mark.parametrize(("name", "before", "after"), STRUCTURAL, ids=str)
def test_a_structural_change_never_reuses_stale_memories(
    name: str, before: dict[str, Any], after: dict[str, Any], path: str
) -> None:
    """After the change, the run equals a fresh optimizer of the new structure started where the old one stopped."""
    opt = _make(name, path, lr=0.05, **before)
    _step(opt, 5)
    params = [p for g in opt.param_groups for p in g["params"]]
    fresh = _make(name, path, params=[torch.nn.Parameter(p.detach().clone()) for p in params], lr=0.05, **before)
    fresh.param_groups[0].update(after)
    opt.param_groups[0].update(after)
    _grads(opt)
    with pytest.warns(StateResetWarning, match=r"change the structure of the filter state gradient\.0"):
        opt.step()
    _step(opt, 4)
    _step(fresh, 5)
    for p, q in zip(params, [p for g in fresh.param_groups for p in g["params"]], strict=True):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("path", ["single", "fused"])
def test_a_return_to_the_old_structure_does_not_revive_its_memories(path: str) -> None:
    """one-pole -> second order -> one-pole: the one-pole memory of before the detour is dead, not reused."""
    one_pole = {"b": (0.1,), "a": (1.0, -0.9)}
    opt = _make("custom", path, lr=0.05, **one_pole)
    _step(opt, 4)
    opt.param_groups[0].update(b=(1.0, 0.5), a=(1.0, -0.5, 0.06))
    with pytest.warns(StateResetWarning):
        _grads(opt)
        opt.step()
    _step(opt, 2)
    params = [p for g in opt.param_groups for p in g["params"]]
    fresh = _make("custom", path, params=[torch.nn.Parameter(p.detach().clone()) for p in params], lr=0.05, **one_pole)
    opt.param_groups[0].update(one_pole)
    with pytest.warns(StateResetWarning, match=r"gradient\.0\.s0\.0"):
        _grads(opt)
        opt.step()
    _step(opt, 3)
    _step(fresh, 4)
    for p, q in zip(params, [p for g in fresh.param_groups for p in g["params"]], strict=True):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-13, atol=1e-15)
    # the numpy reference executor drops the dead memory too
    numpy_opt = optfilters.get("custom", lr=0.05, **one_pole).optimizer([1.0])
    for _ in range(3):
        numpy_opt.step([1.0])
    numpy_opt.set(b=(1.0, 0.5), a=(1.0, -0.5, 0.06))
    with pytest.warns(StateResetWarning):
        numpy_opt.step([1.0])
    numpy_opt.set(**one_pole)
    before = float(numpy_opt.theta[0])
    with pytest.warns(StateResetWarning):
        numpy_opt.step([1.0])
    assert before - float(numpy_opt.theta[0]) == pytest.approx(0.05 * 0.1, rel=1e-14)  # b0 g from rest
