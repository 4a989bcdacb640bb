"""Checkpoints between optfilters and torch.optim: conversion both ways, and the checks that refuse a misfit.

A :class:`~optfilters.torch.FilterOptimizer` of a catalogue entry with a
torch.optim counterpart (``CATALOGUE[name].torch_class``) keeps the same
tensors as that class under other names (``exp_avg`` is ``gradient.0``,
``exp_avg_sq`` is ``second_moment.0``, SGD's ``momentum_buffer`` is
``gradient.0``; the map is ``CATALOGUE[name].torch_state``), and the same
hyperparameters under the same names.  So a checkpoint converts both ways
without loss:

* ``FilterOptimizer.load_state_dict`` takes its own state dicts and those of
  the torch class (``torch.optim.Adam(...).state_dict()``), and the run
  continues exactly as the torch run would after loading the same dict;
* ``FilterOptimizer.state_dict(format="torch")`` is a state dict of the torch
  class, which its ``load_state_dict`` takes;
* :func:`to_torch` and :func:`from_torch` convert dicts without an optimizer
  (``optfilters convert-checkpoint`` on ``torch.save`` files).

A dict that does not fit (of another optimizer, with other groups or shapes,
with state missing) is refused with a one-line :class:`CheckpointError` naming
what does not fit, before anything changes.

torch.optim.SGD keeps no step count: a loaded SGD state counts its steps from
1 (SGD's step does not depend on the count after the first step).
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Mapping
from itertools import chain
from typing import Any

import torch
from torch import Tensor

from ..catalogue import CATALOGUE, CatalogueEntry, resolve_name
from ..errors import InvalidHyperparameterError
from ._resolve import OPTION_KEYS, CatalogueSource, Source, make_source

__all__ = ["CheckpointError", "from_torch", "to_torch"]

_STEP = "step"


class CheckpointError(ValueError):
    """An optimizer state dict does not fit the optimizer (or the conversion asked for).

    Examples
    --------
    >>> import torch
    >>> from optfilters.torch import FilterOptimizer
    >>> from optfilters.torch.checkpoint import CheckpointError
    >>> w = torch.nn.Parameter(torch.ones(2))
    >>> saved = torch.optim.SGD([w], lr=0.1, momentum=0.9).state_dict()
    >>> try:
    ...     FilterOptimizer([w], "adam").load_state_dict(saved)
    ... except CheckpointError as exc:
    ...     print(str(exc).split(": ")[-1])
    it was saved by another optimizer, not adam
    """


# ----------------------------------------------------------------------------- the torch counterpart


def _torch_class(entry: CatalogueEntry) -> type[torch.optim.Optimizer]:
    assert entry.torch_class is not None
    module, name = entry.torch_class.rsplit(".", 1)
    cls: type[torch.optim.Optimizer] = getattr(importlib.import_module(module), name)
    return cls


def _freeze(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.item()
    if isinstance(value, (tuple, list)):
        return tuple(_freeze(v) for v in value)
    return value


@functools.lru_cache(maxsize=256)
def _reference(name: str, kwargs: tuple[tuple[str, Any], ...]) -> tuple[dict[str, Any], frozenset[str]]:
    """The torch class's param group (without params) and the state keys it keeps after one step."""
    entry = CATALOGUE[name]
    # one parameter of each shape the class takes (Muon: matrices only); the state keys
    # every shape keeps (Adafactor keeps row_var/col_var of a matrix, variance of a vector)
    shapes = [(2, 2)] if entry.parameter_ndim == 2 else [(2,), (2, 2)]
    params = [torch.zeros(shape, dtype=torch.float64, requires_grad=True) for shape in shapes]
    opt = _torch_class(entry)(params, **dict(kwargs))
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    group = {k: v for k, v in opt.param_groups[0].items() if k != "params"}
    return group, frozenset.intersection(*(frozenset(opt.state[p]) for p in params))


def _torch_reference(entry: CatalogueEntry, params: Mapping[str, Any]) -> tuple[dict[str, Any], frozenset[str]]:
    kwargs = entry.torch_kwargs(params)
    return _reference(entry.name, tuple(sorted((k, _freeze(v)) for k, v in kwargs.items())))


@functools.lru_cache(maxsize=1)
def _hyperparameter_names() -> frozenset[str]:
    """Every hyperparameter name of the catalogue (torch's spelling) and of the torch counterparts' groups."""
    names: set[str] = set()
    for entry in CATALOGUE.values():
        hps = {hp.name for hp in entry.hyperparameters}
        if {"beta1", "beta2"} <= hps:
            hps = (hps - {"beta1", "beta2", "beta3"}) | {"betas"}
        names |= hps
        if entry.torch_class is not None:
            names |= set(_torch_reference(entry, entry.validate({}))[0])
    return frozenset(names - set(OPTION_KEYS) - {"lr"})


@functools.lru_cache(maxsize=1)
def _torch_state_keys() -> frozenset[str]:
    """The state keys of every torch counterpart (other than those the bridge shares: step, mu_product)."""
    keys = set(chain.from_iterable(entry.torch_state for entry in CATALOGUE.values()))
    shared = set(chain.from_iterable(entry.torch_state.values() for entry in CATALOGUE.values()))
    return frozenset(keys - shared - {_STEP})


def _counterpart(source: Source) -> CatalogueEntry | None:
    if isinstance(source, CatalogueSource):
        entry = source.entry
        if entry.torch_class is not None and entry.torch_state:
            return entry
    return None


def _describe(entry: CatalogueEntry) -> str:
    fixed = ", ".join(f"{k}={v!r}" for k, v in entry.torch_fixed.items())
    return f"{entry.torch_class}({fixed})"


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(_freeze(a) == _freeze(b))
    except (RuntimeError, ValueError):
        return False


# ----------------------------------------------------------------------------- groups


def _structure(state_dict: Any) -> tuple[dict[Any, Any], list[dict[str, Any]]]:
    if not isinstance(state_dict, Mapping) or "state" not in state_dict or "param_groups" not in state_dict:
        raise CheckpointError("not an optimizer state dict: it needs the entries 'state' and 'param_groups'")
    state, groups = state_dict["state"], state_dict["param_groups"]
    if not isinstance(state, Mapping) or not isinstance(groups, (list, tuple)):
        raise CheckpointError("not an optimizer state dict: 'state' must be a dict and 'param_groups' a list")
    for i, group in enumerate(groups):
        if not isinstance(group, Mapping) or not isinstance(group.get("params"), (list, tuple)):
            raise CheckpointError(f"parameter group {i} of the checkpoint is not a dict with a list 'params'")
    return dict(state), [dict(g) for g in groups]


def _takes_maximize(entry: CatalogueEntry) -> bool:
    return "maximize" in inspect.signature(_torch_class(entry)).parameters


def _bridge_spelling(source: Source, saved: Mapping[str, Any]) -> Mapping[str, Any]:
    """A torch group with ``maximize=False`` where the torch class has none (Muon), as the bridge's groups have it."""
    entry = _counterpart(source)
    if entry is None:
        return saved
    out = dict(saved)
    if "maximize" in source.keys and "maximize" not in out and not _takes_maximize(entry):
        out["maximize"] = False
    return out


def _group(source: Source, saved: Mapping[str, Any], index: int) -> tuple[dict[str, Any], frozenset[str] | None]:
    """A saved group in the bridge's form (hyperparameters checked); and the torch class's state keys, if any.

    Keys of the torch counterpart that the bridge's entry fixes (``nesterov``
    of the ``nesterov`` entry) must have the fixed value and are dropped;
    hyperparameters of other optimizers are refused; everything else
    (options, ``initial_lr`` and other keys of schedulers, ``param_names``) is
    kept.
    """
    keys = source.keys
    saved = _bridge_spelling(source, saved)
    missing = [k for k in keys if k not in saved]
    if missing:
        raise CheckpointError(
            f"parameter group {index} of the checkpoint has no {', '.join(repr(k) for k in missing)}: "
            f"it was saved by another optimizer, not {source.name}"
        )
    hps = {k: saved[k] for k in keys}
    try:
        source.build(hps)
    except (InvalidHyperparameterError, ValueError) as exc:
        raise CheckpointError(f"parameter group {index} of the checkpoint: {exc}") from None
    entry = _counterpart(source)
    reference: dict[str, Any] = {}
    state_keys: frozenset[str] | None = None
    if entry is not None:
        assert isinstance(source, CatalogueSource)
        params = entry.validate(source._catalogue_params(hps))
        reference, state_keys = _torch_reference(entry, params)
        for key, value in reference.items():
            if key in keys or key in OPTION_KEYS or key not in saved:
                continue
            if not _same(saved[key], value):
                raise CheckpointError(
                    f"parameter group {index} of the checkpoint has {key}={_freeze(saved[key])!r}; "
                    f"{source.name} is {_describe(entry)} with {key}={_freeze(value)!r}"
                )
    foreign = [k for k in saved if k in _hyperparameter_names() and k not in keys and k not in reference]
    if foreign:
        raise CheckpointError(
            f"parameter group {index} of the checkpoint has {', '.join(repr(k) for k in foreign)}, which "
            f"{source.name} does not take: it was saved by another optimizer"
        )
    group = {k: v for k, v in saved.items() if k in keys or k in OPTION_KEYS or k not in reference}
    return group, state_keys


# ----------------------------------------------------------------------------- state


def _is_torch_format(source: Source, state: Mapping[Any, Any]) -> bool:
    """True when the state uses torch.optim's keys; refuses a mixture, and torch's state without a counterpart."""
    torch_keys = _torch_state_keys()
    found_torch = sorted({k for st in state.values() if isinstance(st, Mapping) for k in st if k in torch_keys})
    if not found_torch:
        return False
    entry = _counterpart(source)
    if entry is None:
        raise CheckpointError(
            f"the checkpoint holds torch.optim state ({', '.join(found_torch)}); it loads into a catalogue optimizer "
            f"with that torch.optim counterpart, and this optimizer runs {source.name}, which has none"
        )
    ours = set(entry.torch_state.values()) - set(entry.torch_state)
    mixed = sorted({k for st in state.values() if isinstance(st, Mapping) for k in st if k in ours})
    if mixed:
        raise CheckpointError(
            f"the checkpoint mixes torch.optim state keys ({', '.join(found_torch)}) with optfilters keys "
            f"({', '.join(mixed)})"
        )
    return True


def _state_from_torch(
    entry: CatalogueEntry, saved: Mapping[str, Any], required: frozenset[str], pid: Any
) -> dict[str, Any]:
    mapping = entry.torch_state
    unknown = [k for k in saved if k != _STEP and k not in mapping]
    if unknown:
        raise CheckpointError(
            f"the state of parameter {pid} has {', '.join(repr(k) for k in unknown)}, which "
            f"{entry.torch_class} does not keep"
        )
    if saved:
        missing = [k for k in sorted(required) if k not in saved]
        if missing:
            raise CheckpointError(
                f"the state of parameter {pid} lacks {', '.join(repr(k) for k in missing)}, which "
                f"{_describe(entry)} with these hyperparameters keeps"
            )
    out = {mapping[k]: v for k, v in saved.items() if k != _STEP}
    if _STEP in saved:
        out[_STEP] = saved[_STEP]
    elif out:  # torch.optim.SGD keeps no step count; its step does not depend on it after the first
        out[_STEP] = torch.tensor(1.0, dtype=_scalar_dtype())
    return out


def _state_to_torch(
    entry: CatalogueEntry, ours: Mapping[str, Any], required: frozenset[str], pid: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    shaped = any(isinstance(v, Tensor) and v.dim() > 0 for v in ours.values())
    for torch_key, key in entry.torch_state.items():
        if key in ours:
            value = ours[key]
            if shaped and torch_key not in required and isinstance(value, Tensor) and value.dim() == 0:
                continue  # a placeholder of this parameter's shape (Adafactor's variance of a matrix)
            out[torch_key] = value
    if not out:
        return {}
    if _STEP in required and _STEP in ours:
        step = ours[_STEP]
        out[_STEP] = step.clone() if isinstance(step, Tensor) else step  # not a view of the bridge's step buffer
    missing = [k for k in sorted(required) if k not in out]
    if missing:
        names = {v: k for k, v in entry.torch_state.items()}
        text = ", ".join(f"{k!r}" + (f" ({names[k]})" if k in names else "") for k in missing)
        raise CheckpointError(f"the state of parameter {pid} lacks {text}, which {_describe(entry)} needs")
    return out


def _scalar_dtype() -> torch.dtype:
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


# ----------------------------------------------------------------------------- conversions


def _convert_from(source: Source, state_dict: Any) -> tuple[dict[str, Any], bool]:
    """``state_dict`` (either format) in the bridge's format, checked but for shapes; and whether it was torch's."""
    state, groups = _structure(state_dict)
    torch_format = _is_torch_format(source, state)
    entry = _counterpart(source)
    new_groups = []
    required_of: dict[Any, frozenset[str] | None] = {}
    for i, saved in enumerate(groups):
        group, required = _group(source, saved, i)
        new_groups.append(group)
        for pid in saved["params"]:
            required_of[pid] = required
    new_state: dict[Any, Any] = {}
    for pid, st in state.items():
        if not isinstance(st, Mapping):
            raise CheckpointError(f"the state of parameter {pid} is not a dict")
        if torch_format:
            assert entry is not None
            new_state[pid] = _state_from_torch(entry, st, required_of.get(pid) or frozenset(), pid)
        else:
            if any(k != _STEP and isinstance(v, Tensor) and v.dim() > 0 for k, v in st.items()) and _STEP not in st:
                raise CheckpointError(f"the state of parameter {pid} has filter memories but no 'step'")
            new_state[pid] = dict(st)
    out = {k: v for k, v in dict(state_dict).items() if k not in ("state", "param_groups")}
    out.update(state=new_state, param_groups=new_groups)
    return out, torch_format


def _convert_to_torch(source: Source, state_dict: Any) -> dict[str, Any]:
    entry = _counterpart(source)
    if entry is None:
        raise CheckpointError(
            f"format='torch' needs a catalogue optimizer with a torch.optim counterpart; {source.name} has none"
        )
    state, groups = _structure(state_dict)
    if _is_torch_format(source, state):
        raise CheckpointError("the state dict is in torch.optim's format already")
    assert isinstance(source, CatalogueSource)
    new_groups = []
    required_of: dict[Any, frozenset[str]] = {}
    for i, saved in enumerate(groups):
        group, required = _group(source, saved, i)
        assert required is not None
        params = entry.validate(source._catalogue_params({k: group[k] for k in source.keys}))
        reference, _ = _torch_reference(entry, params)
        torch_group = dict(reference)  # the torch class's options and fixed settings
        torch_group.update({k: v for k, v in group.items() if k not in OPTION_KEYS})
        if "maximize" not in reference and "maximize" in torch_group:
            if torch_group.pop("maximize"):
                raise CheckpointError(f"parameter group {i} maximizes; {entry.torch_class} has no maximize")
        new_groups.append(torch_group)
        for pid in saved["params"]:
            required_of[pid] = required
    new_state: dict[Any, Any] = {}
    for pid, st in state.items():
        converted = _state_to_torch(entry, st, required_of.get(pid, frozenset()), pid)
        if converted:
            new_state[pid] = converted
    return {"state": new_state, "param_groups": new_groups}


def _shape_error(pid: Any, key: str, shape: tuple[int, ...], expected: tuple[int, ...], what: str) -> CheckpointError:
    return CheckpointError(
        f"the state {key!r} of parameter {pid} has shape {shape}, {what} {expected}: "
        "the checkpoint is of other parameters"
    )


def _check_shapes(state: Mapping[Any, Any], torch_names: Mapping[str, str]) -> None:
    """Without parameters: the elementwise state of each parameter must agree in shape."""
    for pid, st in state.items():
        shapes = {k: tuple(v.shape) for k, v in st.items() if isinstance(v, Tensor) and v.dim() > 0}
        if len(set(shapes.values())) > 1:
            (k1, s1), *rest = shapes.items()
            k2, s2 = next((k, s) for k, s in rest if s != s1)
            raise _shape_error(pid, torch_names.get(k2, k2), s2, s1, f"and {torch_names.get(k1, k1)!r}")


def to_torch(state_dict: Mapping[str, Any], model: str) -> dict[str, Any]:
    """A FilterOptimizer state dict of catalogue entry ``model`` as a state dict of its torch.optim counterpart.

    Parameters
    ----------
    state_dict : dict
        ``FilterOptimizer(..., model).state_dict()`` (or a ``torch.load`` of it).
    model : str
        Catalogue name or alias with a ``torch_class`` (``"adam"``, ``"nesterov"``, ...).

    Returns
    -------
    dict
        What ``torch_class(...).load_state_dict`` takes: state under torch's
        keys, groups with the torch class's keys (its own option defaults).
        Tensors are shared with ``state_dict``, as torch.optim's state dicts do.

    Raises
    ------
    CheckpointError
        When ``state_dict`` is not one of ``model`` (missing or foreign
        hyperparameters, state missing), or ``model`` has no counterpart.
    optfilters.UnknownNameError
        For an unknown name.

    Examples
    --------
    >>> import torch
    >>> from optfilters.torch import FilterOptimizer
    >>> from optfilters.torch.checkpoint import to_torch
    >>> w = torch.nn.Parameter(torch.ones(2))
    >>> opt = FilterOptimizer([w], "adam", lr=0.1)
    >>> w.grad = torch.ones(2)
    >>> opt.step()
    >>> sorted(to_torch(opt.state_dict(), "adam")["state"][0])
    ['exp_avg', 'exp_avg_sq', 'step']
    """
    source = make_source(resolve_name(model), {})
    converted = _convert_to_torch(source, state_dict)
    _check_shapes(converted["state"], {})
    return converted


def from_torch(state_dict: Mapping[str, Any], model: str) -> dict[str, Any]:
    """A state dict of ``model``'s torch.optim counterpart as a FilterOptimizer state dict.

    ``FilterOptimizer.load_state_dict`` converts torch's dicts itself; this is
    for converting files (``optfilters convert-checkpoint``).

    Parameters
    ----------
    state_dict : dict
        ``torch_class(...).state_dict()`` of the counterpart.
    model : str
        Catalogue name or alias with a ``torch_class``.

    Returns
    -------
    dict
        The same tensors under the bridge's keys (``gradient.0``, ...).

    Raises
    ------
    CheckpointError
        When ``state_dict`` is not a checkpoint of that torch class with
        those settings.

    Examples
    --------
    >>> import torch
    >>> from optfilters.torch.checkpoint import from_torch
    >>> w = torch.nn.Parameter(torch.ones(2))
    >>> sgd = torch.optim.SGD([w], lr=0.1, momentum=0.9, nesterov=True)
    >>> w.grad = torch.ones(2)
    >>> sgd.step()
    >>> sorted(from_torch(sgd.state_dict(), "nesterov")["state"][0])
    ['gradient.0', 'step']
    """
    source = make_source(resolve_name(model), {})
    if _counterpart(source) is None:
        raise CheckpointError(f"{source.name} has no torch.optim counterpart to convert from")
    converted, _ = _convert_from(source, state_dict)
    entry = _counterpart(source)
    assert entry is not None
    _check_shapes(converted["state"], {v: k for k, v in entry.torch_state.items()})
    return converted
