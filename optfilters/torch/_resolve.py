"""From ``FilterOptimizer(params, model, **hyperparameters)`` to per-group models.

A *source* turns a param group's hyperparameters (torch.optim's keywords:
``betas=(beta1, beta2)`` where the catalogue entry has both) into an
:class:`~optfilters.OptimizerModel`, validated by the catalogue, and caches
the model by the hyperparameter values (the learning rate excluded: it is read
at every step and never changes the stages).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, MutableMapping
from typing import Any

import torch

from ..catalogue import CATALOGUE, CatalogueEntry, as_model, resolve_name
from ..errors import InvalidHyperparameterError, UnknownNameError
from ..filters import ArmaFilter
from ..hyperparameters import Hyperparameter
from ..model import OptimizerModel
from ..stages import Stage, WeightDecay
from ..validation import check_value_type

__all__ = ["CatalogueSource", "FixedSource", "Source", "check_lr", "make_source", "refuse_text"]

#: Keys of a param group that are options of the bridge, not hyperparameters of the model.
OPTION_KEYS = ("foreach", "fused", "capturable", "differentiable")

_MAXIMIZE = Hyperparameter("maximize", False, "bool", help="maximize the objective (negate the gradient)")
_LR = Hyperparameter("lr", 1e-3, low=0.0, help="learning rate")
_WEIGHT_DECAY = Hyperparameter("weight_decay", 0.0, low=0.0, help="weight decay")
_CACHE_SIZE = 16


#: Types whose values key the model cache as they are; not bool: ``False == 0`` and ``True == 1`` hash alike
#: (:func:`_freeze` keys a bool by its type too).
_PLAIN = (float, int, str, type(None))


def _plain(values: tuple[Any, ...]) -> bool:
    """True when the values are numbers (not bools), strings or tuples of them (hashable by value)."""
    for v in values:
        kind = type(v)
        if kind in _PLAIN:
            continue
        if kind is tuple and all(type(x) in _PLAIN for x in v):
            continue
        return False
    return True


def refuse_text(key: str, value: Any) -> None:
    """Refuse text, bytes and booleans where a number (or tuple of numbers) is read: ``param_groups[0]["lr"] = "0.1"``.

    :func:`optfilters.validation.check_value_type` for a numeric kind: an
    optimizer's param group holds what the training script put there, and
    torch.optim computes with it as it is, so text there is a bug of the
    caller: refused, not parsed.

    Parameters
    ----------
    key : str
        The hyperparameter's name for the message.
    value : object
        Its value (a number, a tensor, a tuple of them ...).

    Raises
    ------
    InvalidHyperparameterError
        One line naming ``key`` and the value.

    Examples
    --------
    >>> from optfilters.torch._resolve import refuse_text
    >>> refuse_text("lr", 0.1)
    >>> refuse_text("betas", (0.9, "0.99"))
    Traceback (most recent call last):
    ...
    optfilters.errors.InvalidHyperparameterError: betas must be numbers, got (0.9, '0.99') (a str inside)
    """
    check_value_type(key, value, "floats")


def check_lr(value: Any, where: str = "lr", read: bool = True) -> Any:
    """A valid learning rate: a finite number >= 0, or a 1-element real floating tensor holding one.

    ``where`` names it in the message (``"param_groups[1]['lr']"``); with
    ``read=False`` a tensor's value is not read (no host-device synchronisation,
    as in a captured step): only its shape and dtype are checked.  Returns a
    number as a float and a tensor unchanged.

    Raises
    ------
    InvalidHyperparameterError
        One line naming ``where`` and the value.

    Examples
    --------
    >>> from optfilters.torch._resolve import check_lr
    >>> check_lr(0.1)
    0.1
    >>> check_lr(float("nan"), "param_groups[0]['lr']")
    Traceback (most recent call last):
    ...
    optfilters.errors.InvalidHyperparameterError: param_groups[0]['lr'] must be a finite number, got nan
    """
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise InvalidHyperparameterError(
                f"{where} must be a number or a 1-element tensor, got a tensor of shape {tuple(value.shape)}"
            )
        if not value.is_floating_point():
            raise InvalidHyperparameterError(f"{where} must be a real floating-point tensor, got {value.dtype}")
        if read:  # once, at construction (as the catalogue's own validation of a tensor does)
            check_lr(float(value.detach()), where)
        return value
    refuse_text(where, value)
    try:
        return _LR.validate(value)
    except InvalidHyperparameterError as exc:
        message = str(exc)
        if where != "lr" and message.startswith("lr "):
            message = where + message[2:]
        raise InvalidHyperparameterError(message) from None


def _types(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """The types of the values, and of the items of sequences among them (a cache key's other half)."""
    return tuple((type(v), *map(type, v)) if isinstance(v, (list, tuple)) else type(v) for v in values)


def _freeze(value: Any) -> Any:
    """A hashable version of a hyperparameter value, by value and type (tensors become numbers, lists tuples).

    The type is part of it: ``False == 0`` and ``True == 1`` with equal hashes, so a bool where a number is read
    (refused) found the model cached for the equal number, and was trained with, once that number had been stepped.
    """
    if isinstance(value, torch.Tensor):
        value = value.item() if value.numel() == 1 else tuple(value.tolist())
    if isinstance(value, (list, tuple)):
        return ("seq", *(_freeze(v) for v in value))
    return (type(value), value)


class Source:
    """Base class: defaults, group normalisation and validation, and the cached model of a group."""

    name: str
    keys: tuple[str, ...]

    @property
    def _model_keys(self) -> tuple[str, ...]:
        keys = self.__dict__.get("_model_keys_cache")
        if keys is None:
            keys = self.__dict__["_model_keys_cache"] = tuple(k for k in self.keys if k != "lr")
        return keys

    def __init__(self) -> None:
        self._cache: dict[tuple[Any, ...], OptimizerModel] = {}

    def defaults(self) -> dict[str, Any]:
        """Every hyperparameter with its value, in torch.optim's spelling."""
        raise NotImplementedError

    def normalise(self, group: MutableMapping[str, Any]) -> None:
        """Rewrite ``beta1``/``beta2`` into ``betas`` (in place) where the model uses ``betas``."""

    def build(self, hyperparameters: Mapping[str, Any]) -> OptimizerModel:
        """The model for complete hyperparameters (validated; raises InvalidHyperparameterError)."""
        raise NotImplementedError

    def model(self, group: Mapping[str, Any]) -> OptimizerModel:
        """The (cached) model of a param group; rebuilt only when a hyperparameter other than lr changes."""
        values = tuple(group[k] for k in self._model_keys)
        # typed: True == 1 and False == 0.0, so an untyped key would take nesterov=1 (or momentum=False) for a
        # cached nesterov=True (momentum=0.0) without checking it
        key = (_types(values), values if _plain(values) else tuple(_freeze(v) for v in values))
        model = self._cache.get(key)
        if model is None:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
            model = self._cache[key] = self.build(group)
        return model

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = {}
        return state


class CatalogueSource(Source):
    """Hyperparameters of a catalogue entry (validated by the entry itself)."""

    def __init__(self, entry: CatalogueEntry, overrides: Mapping[str, Any]) -> None:
        super().__init__()
        self.name = entry.name
        names = [hp.name for hp in entry.hyperparameters]
        self.uses_betas = "beta1" in names and "beta2" in names
        self.adds_maximize = "maximize" not in names
        # torch.optim's tuples spelled as separate hyperparameters (Adafactor's eps = (eps1, eps2)): torch's key
        self.packed = {k: tuple(v) for k, v in entry.packed.items() if not self.uses_betas or k != "betas"}
        packed_of = {name: k for k, v in self.packed.items() for name in v}
        torch_names: list[str] = []
        for hp in names:
            if self.uses_betas and hp in ("beta1", "beta2"):
                if "betas" not in torch_names:
                    torch_names.append("betas")
                continue
            if hp in packed_of:
                if packed_of[hp] not in torch_names:
                    torch_names.append(packed_of[hp])
                continue
            torch_names.append(hp)
        if self.adds_maximize:
            torch_names.append("maximize")
        self.keys = tuple(torch_names)
        given = dict(overrides)
        if isinstance(given.get("lr"), torch.Tensor):
            check_lr(given["lr"])
        self.normalise(given, what="hyperparameters")
        self._refuse_text(given)
        params = self._catalogue_params(given, strict=True)
        validated = entry.validate(params)
        self._defaults = self._torch_params(validated, maximize=given.get("maximize", False))
        self.build(self._defaults)  # validate the whole set now, with the catalogue's messages

    @property
    def entry(self) -> CatalogueEntry:
        """The catalogue entry (looked up by name, so that the source pickles)."""
        return CATALOGUE[self.name]

    def _catalogue_params(self, group: Mapping[str, Any], strict: bool = False) -> dict[str, Any]:
        """Catalogue names and values; ``strict`` keeps unknown keys (for the entry to refuse them)."""
        params: dict[str, Any] = {}
        for key, value in group.items():
            if key in OPTION_KEYS or (key == "maximize" and self.adds_maximize):
                continue
            if key == "betas" and self.uses_betas:
                beta1, beta2 = _pair(value)
                params["beta1"], params["beta2"] = beta1, beta2
            elif strict or key in self.keys:
                params[key] = value
        return params

    def _torch_params(self, params: Mapping[str, Any], maximize: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in self.keys:
            if key == "betas" and self.uses_betas:
                out["betas"] = (params["beta1"], params["beta2"])
            elif key == "maximize" and self.adds_maximize:
                out["maximize"] = _MAXIMIZE.validate(maximize)
            elif key in self.packed:
                out[key] = tuple(params[name] for name in self.packed[key])
            else:
                out[key] = params[key]
        return out

    def defaults(self) -> dict[str, Any]:
        return dict(self._defaults)

    def normalise(self, group: MutableMapping[str, Any], what: str = "param group") -> None:
        for packed, names in getattr(self, "packed", {}).items():
            given = [name for name in names if name in group]
            if given:
                if packed in group:
                    raise InvalidHyperparameterError(f"give {packed} or {', '.join(given)}, not both (in the {what})")
                base = getattr(self, "_defaults", {}).get(packed, tuple(self.entry.defaults()[n] for n in names))
                group[packed] = tuple(group.pop(name, value) for name, value in zip(names, base, strict=True))
        if not self.uses_betas or ("beta1" not in group and "beta2" not in group):
            return
        if "betas" in group:
            raise InvalidHyperparameterError(f"give betas or beta1/beta2, not both (in the {what})")
        base = getattr(self, "_defaults", {}).get(
            "betas", (self.entry.defaults()["beta1"], self.entry.defaults()["beta2"])
        )
        beta1 = group.pop("beta1", base[0])
        beta2 = group.pop("beta2", base[1])
        group["betas"] = (beta1, beta2)

    def _refuse_text(self, group: Mapping[str, Any]) -> None:
        """Values of the wrong type (:func:`~optfilters.validation.check_value_type`): text, bytes or a bool where
        the entry reads a number (float, int or floats kinds; betas; packed tuples), anything but a bool where it
        reads a bool (``nesterov="False"``, which torch.optim reads as True; ``maximize``)."""
        kinds = {hp.name: hp.kind for hp in self.entry.hyperparameters}
        if self.adds_maximize:
            kinds["maximize"] = "bool"
        for key, value in group.items():
            names = self.packed.get(key, ("beta1", "beta2") if key == "betas" and self.uses_betas else (key,))
            found = {kinds[name] for name in names if name in kinds}
            if "bool" in found:
                check_value_type(key, value, "bool")
            elif found & {"float", "int", "floats"}:
                refuse_text(key, value)

    def build(self, hyperparameters: Mapping[str, Any]) -> OptimizerModel:
        self._refuse_text(hyperparameters)
        params = self.entry.validate(self._catalogue_params(hyperparameters))
        model = self.entry.build(params)
        if self.adds_maximize:
            maximize = _MAXIMIZE.validate(hyperparameters.get("maximize", False))
            if maximize:
                model = dataclasses.replace(model, maximize=True)
        return model


class FixedSource(Source):
    """A model given as an object: only ``lr``, ``weight_decay`` and ``maximize`` vary per group."""

    keys = ("lr", "weight_decay", "maximize")

    def __init__(self, model: OptimizerModel, overrides: Mapping[str, Any]) -> None:
        super().__init__()
        self.base = model
        self.name = model.name
        unknown = [k for k in overrides if k not in self.keys]
        if unknown:
            raise InvalidHyperparameterError(
                f"a {model.name!r} model given as an object takes only lr, weight_decay and maximize, "
                f"got {', '.join(repr(k) for k in unknown)} (build the model with those settings instead)"
            )
        wd = model.weight_decay
        base = {
            "lr": model.hyperparameters.get("lr", _LR.default),
            "weight_decay": wd.weight_decay if wd is not None else 0.0,
            "maximize": model.maximize,
        }
        base.update(overrides)
        self._defaults = self._validated(base, read=True)

    @staticmethod
    def _validated(group: Mapping[str, Any], read: bool = False) -> dict[str, Any]:
        refuse_text("weight_decay", group["weight_decay"])
        check_value_type("maximize", group["maximize"], "bool")
        return {
            "lr": check_lr(group["lr"], read=read),
            "weight_decay": _WEIGHT_DECAY.validate(group["weight_decay"]),
            "maximize": _MAXIMIZE.validate(group["maximize"]),
        }

    def defaults(self) -> dict[str, Any]:
        return dict(self._defaults)

    def build(self, hyperparameters: Mapping[str, Any]) -> OptimizerModel:
        values = self._validated(hyperparameters)
        decoupled = self.base.weight_decay.decoupled if self.base.weight_decay is not None else False
        wd = values["weight_decay"]
        hps = dict(self.base.hyperparameters)
        hps.update(weight_decay=wd, maximize=values["maximize"])
        base = self.base
        return OptimizerModel(
            base.name,
            hps,
            weight_decay=WeightDecay(wd, decoupled=decoupled) if wd else None,
            maximize=values["maximize"],
            description=base.description,
            pipeline=base.pipeline,
        )


def _pair(value: Any) -> tuple[Any, Any]:
    try:
        beta1, beta2 = (v.item() if isinstance(v, torch.Tensor) else v for v in value)
    except (TypeError, ValueError):
        raise InvalidHyperparameterError(f"betas must be a pair (beta1, beta2), got {value!r}") from None
    return beta1, beta2


def _catalogue_model(model: OptimizerModel) -> CatalogueEntry | None:
    """The catalogue entry that rebuilds ``model`` exactly from its hyperparameters, if any."""
    try:
        entry = CATALOGUE[resolve_name(model.name)]
    except UnknownNameError:
        return None
    if set(model.hyperparameters) != {hp.name for hp in entry.hyperparameters}:
        return None
    try:
        rebuilt = entry.build(entry.validate(model.hyperparameters))
    except ValueError:
        return None
    return entry if rebuilt == dataclasses.replace(model, description=rebuilt.description) else None


def make_source(model: Any, hyperparameters: Mapping[str, Any]) -> Source:
    """The source for ``FilterOptimizer``'s ``model`` argument.

    Parameters
    ----------
    model : str, OptimizerModel, Stage or ArmaFilter
        A catalogue name or alias; a model (from the catalogue, whose
        hyperparameters may then be overridden, built by hand or composed with
        :func:`optfilters.chain`); a stage or a filter on the gradient (plain
        filtered gradient descent), resolved by :func:`optfilters.as_model`.
    hyperparameters : mapping
        Keyword arguments of the constructor.

    Examples
    --------
    >>> from optfilters.torch._resolve import make_source
    >>> make_source("adam", {"betas": (0.8, 0.99)}).defaults()["betas"]
    (0.8, 0.99)
    >>> make_source("adam", {"beta1": 0.8}).defaults()["betas"]
    (0.8, 0.999)
    """
    if isinstance(model, str):
        return CatalogueSource(CATALOGUE[resolve_name(model)], hyperparameters)
    if isinstance(model, OptimizerModel):
        entry = _catalogue_model(model)
        if entry is not None:
            names = {hp.name for hp in entry.hyperparameters}
            given = dict(hyperparameters)
            if "betas" in given and {"beta1", "beta2"} <= names:
                if "beta1" in given or "beta2" in given:
                    raise InvalidHyperparameterError("give betas or beta1/beta2, not both (in the hyperparameters)")
                given["beta1"], given["beta2"] = _pair(given.pop("betas"))
            merged = {**model.hyperparameters, **given}
            if "maximize" not in names:
                merged.setdefault("maximize", model.maximize)
            return CatalogueSource(entry, merged)
        return FixedSource(model, hyperparameters)
    if isinstance(model, (ArmaFilter, Stage)):
        fixed = as_model(model, lr=_LR.default)  # the analysis functions' resolution: the same model
        if isinstance(model, ArmaFilter):
            fixed = dataclasses.replace(fixed, description=f"gradient filter {model!r}")
        return FixedSource(fixed, hyperparameters)
    raise TypeError(
        f"model must be a catalogue name, an optfilters.OptimizerModel or an optfilters.ArmaFilter (or a stage), "
        f"got {type(model).__name__}"
    )
