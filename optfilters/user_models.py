"""Optimizer models defined in the user's own Python files, usable wherever a catalogue name is.

A *model reference* is ``path/to/file.py:NAME``: the file is executed as a
module and ``NAME`` is looked up in it.  ``NAME`` may be

* a :class:`~optfilters.CatalogueEntry` (its hyperparameters become options
  of every command, with their ranges and defaults),
* an :class:`~optfilters.OptimizerModel` (used as it is; no options),
* an :class:`~optfilters.ArmaFilter` (the gradient filter of a
  ``custom``-like model: options ``lr`` and ``weight_decay``),
* or a function of no arguments returning one of these.

A *model specification* adds hyperparameters: ``adam:beta1=0.95,beta2=0.99``,
``aggmo:betas=0,0.9,0.99`` (a value may contain commas: the text up to the
next ``KEY=``) or ``models.py:mine:lr=0.1``.

Examples
--------
>>> import pathlib, tempfile, textwrap
>>> from optfilters.user_models import load_entry, model_from_spec
>>> with tempfile.TemporaryDirectory() as folder:
...     path = pathlib.Path(folder) / "mine.py"
...     _ = path.write_text("from optfilters import ArmaFilter\\nslow = ArmaFilter([0.05], [1, -0.95])\\n")
...     entry = load_entry(f"{path}:slow")
...     label, model = model_from_spec(f"{path}:slow:lr=0.1")
>>> entry.name, [hp.name for hp in entry.hyperparameters]
('slow', ['lr', 'weight_decay'])
>>> label, model.lr, round(model.filters()["gradient"].dc_gain, 9)
('slow(lr=0.1)', 0.1, 1.0)
>>> model_from_spec("adam:beta1=0.95")[0]
'adam(beta1=0.95)'
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .catalogue import CATALOGUE, CatalogueEntry, resolve_name
from .errors import InvalidHyperparameterError, UnknownNameError, user_code
from .filters import ArmaFilter
from .hyperparameters import Hyperparameter
from .model import OptimizerModel
from .validation import number_or_text

__all__ = ["entry_for", "is_file_reference", "load_entry", "model_from_spec", "parse_spec"]

_REFERENCE = re.compile(r"^(?P<path>.+?\.py):(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")
_SETTING = re.compile(r"(?:^|,)\s*([A-Za-z_][A-Za-z0-9_]*)\s*=")


def is_file_reference(text: str) -> bool:
    """True for ``something.py:NAME`` (with or without hyperparameters after a further ``:``).

    Parameters
    ----------
    text : str
        A command-line NAME.

    Returns
    -------
    bool
        Whether it names a model in a Python file.

    Examples
    --------
    >>> is_file_reference("models/mine.py:slow"), is_file_reference("adam:beta1=0.9")
    (True, False)
    """
    return ".py:" in str(text)


class _UserExit(UnknownNameError):
    """The user's code called ``sys.exit`` (reported as it is, not as a load error)."""


def _load_module(path: Path) -> Any:
    if not path.is_file():
        raise UnknownNameError(f"no model file {str(path)!r}")
    module_name = f"optfilters_user_model_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UnknownNameError(f"cannot load {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        with user_code(repr(str(path)), "while loading", _UserExit):
            spec.loader.exec_module(module)
    except _UserExit:
        sys.modules.pop(module_name, None)
        raise
    except Exception as exc:  # the user's code: any error is reported in one line
        sys.modules.pop(module_name, None)
        where = ""
        if isinstance(exc, SyntaxError) and exc.lineno:
            where = f" (line {exc.lineno})"
        raise UnknownNameError(f"error while loading {str(path)!r}{where}: {type(exc).__name__}: {exc}") from None
    return module


class _GuardedBuild:
    """A user entry's ``build``, run as foreign code (a module-level class, so that the entry pickles)."""

    def __init__(self, name: str, build: Callable[[dict[str, Any]], OptimizerModel], source: str) -> None:
        self.name, self.build, self.source = name, build, source

    def __call__(self, params: dict[str, Any]) -> OptimizerModel:
        with user_code(f"{self.name}.build", f"while building the model ({self.source})", _UserExit):
            return self.build(params)


class _FixedModel:
    """The ``build`` of an entry made from one :class:`OptimizerModel`: that model, whatever the parameters."""

    def __init__(self, model: OptimizerModel) -> None:
        self.model = model

    def __call__(self, params: Mapping[str, Any]) -> OptimizerModel:
        return self.model


class _FilterModel:
    """The ``build`` of an entry made from an :class:`ArmaFilter`: the ``custom`` model of that filter."""

    def __init__(self, name: str, f: ArmaFilter, source: str) -> None:
        self.name, self.f, self.source = name, f, source

    def __call__(self, params: Mapping[str, Any]) -> OptimizerModel:
        base = CATALOGUE["custom"]
        model = base.build(base.validate({**params, "b": tuple(self.f.b), "a": tuple(self.f.a)}))
        return dataclasses.replace(model, name=self.name, description=f"gradient filter {self.f!r} ({self.source})")


def entry_for(obj: Any, name: str, source: str = "user supplied") -> CatalogueEntry:
    """A catalogue entry for a user object: a CatalogueEntry, OptimizerModel, ArmaFilter or a factory of one.

    Parameters
    ----------
    obj : CatalogueEntry, OptimizerModel, ArmaFilter or callable
        The user's object (a callable returns one of the others).
    name : str
        The entry's name.
    source : str
        Where it came from (the entry's ``source``).

    Returns
    -------
    CatalogueEntry

    Raises
    ------
    UnknownNameError
        For any other object.

    Examples
    --------
    >>> import optfilters
    >>> from optfilters.user_models import entry_for
    >>> entry_for(optfilters.get("momentum", momentum=0.5), "half").build({}).hyperparameters["momentum"]
    0.5
    """
    if callable(obj) and not isinstance(obj, (CatalogueEntry, OptimizerModel, ArmaFilter)):
        try:
            with user_code(f"{name}()", f"while building the model ({source})", _UserExit):
                obj = obj()
        except _UserExit:
            raise
        except Exception as exc:
            raise UnknownNameError(f"{name}() failed: {type(exc).__name__}: {exc}") from None
    if isinstance(obj, CatalogueEntry):
        return dataclasses.replace(obj, build=_GuardedBuild(obj.name, obj.build, source))
    if isinstance(obj, OptimizerModel):
        return CatalogueEntry(
            name, obj.description or f"user-defined model ({source})", (), _FixedModel(obj), source=source
        )
    if isinstance(obj, ArmaFilter):
        hps = tuple(hp for hp in CATALOGUE["custom"].hyperparameters if hp.name in ("lr", "weight_decay"))
        return CatalogueEntry(
            name,
            f"user-defined gradient filter b={list(obj.b)}, a={list(obj.a)}",
            hps,
            _FilterModel(name, obj, source),
            source=source,
        )
    raise UnknownNameError(
        f"{name} is a {type(obj).__name__}; a model file must define a CatalogueEntry, an OptimizerModel, "
        "an ArmaFilter or a function returning one"
    )


def load_entry(reference: str) -> CatalogueEntry:
    """The catalogue entry defined by ``path/to/file.py:NAME`` (see the module's description).

    Parameters
    ----------
    reference : str
        ``path/to/file.py:NAME``.

    Returns
    -------
    CatalogueEntry
        The file's entry (built from its model, filter or factory).

    Raises
    ------
    UnknownNameError
        If the file is missing or fails to load, does not define ``NAME``, or
        ``NAME`` is not a model.

    Examples
    --------
    >>> from optfilters.user_models import load_entry
    >>> load_entry("no/such/file.py:mine")
    Traceback (most recent call last):
    ...
    optfilters.errors.UnknownNameError: no model file 'no/such/file.py'
    """
    match = _REFERENCE.match(str(reference).strip())
    if match is None:
        raise UnknownNameError(f"a model reference is path/to/file.py:NAME, got {reference!r}")
    path, name = Path(match["path"]), match["name"]
    module = _load_module(path)
    if not hasattr(module, name):
        defined = sorted(
            k
            for k, v in vars(module).items()
            if not k.startswith("_") and isinstance(v, (CatalogueEntry, OptimizerModel, ArmaFilter))
        )
        hint = f"; it defines {', '.join(defined)}" if defined else ""
        raise UnknownNameError(f"{str(path)!r} defines no {name!r}{hint}")
    return entry_for(getattr(module, name), name, source=f"{path}:{name}")


def parse_spec(spec: str) -> tuple[CatalogueEntry, dict[str, str]]:
    """A model specification as (entry, hyperparameter texts): ``adam:beta1=0.95``, ``file.py:NAME:lr=0.1``.

    Parameters
    ----------
    spec : str
        ``NAME[:key=value,...]`` or ``file.py:NAME[:key=value,...]``.

    Returns
    -------
    tuple of (CatalogueEntry, dict of str to str)
        The entry and the hyperparameters as given (text, validated later).

    Examples
    --------
    >>> entry, settings = parse_spec("aggmo:betas=0,0.9,lr=0.1")
    >>> entry.name, settings
    ('aggmo', {'betas': '0,0.9', 'lr': '0.1'})
    """
    text = str(spec).strip()
    if is_file_reference(text):
        head, _, rest = text.partition(".py:")
        name, _, settings_text = rest.partition(":")
        entry = load_entry(f"{head}.py:{name}")
    else:
        name, _, settings_text = text.partition(":")
        entry = CATALOGUE[resolve_name(name)]
    return entry, _settings(settings_text, spec)


def _settings(text: str, spec: str) -> dict[str, str]:
    text = text.strip()
    if not text:
        return {}
    keys = list(_SETTING.finditer(text))
    if not keys or keys[0].start() != 0:
        raise InvalidHyperparameterError(f"hyperparameters after ':' are KEY=VALUE[,KEY=VALUE...], got {spec!r}")
    out: dict[str, str] = {}
    for i, m in enumerate(keys):
        end = keys[i + 1].start() if i + 1 < len(keys) else len(text)
        value = text[m.end() : end].strip()
        if not value:
            raise InvalidHyperparameterError(f"{m.group(1)} has no value in {spec!r}")
        if m.group(1) in out:
            raise InvalidHyperparameterError(f"{m.group(1)} given twice in {spec!r}")
        out[m.group(1)] = value
    return out


def _convert(entry: CatalogueEntry, key: str, value: str) -> Any:
    try:
        hp: Hyperparameter | None = entry.hyperparameter(key)
    except InvalidHyperparameterError:
        if key != "betas":
            raise
        hp = None
    if hp is None:  # torch's betas=(beta1, beta2): a tuple of numbers
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if hp.kind in ("floats", "bool"):
        return value
    return number_or_text(value)  # text that is not a number: the library's message names the parameter


def model_from_spec(spec: str) -> tuple[str, OptimizerModel]:
    """The label and model of a specification (``adam:beta1=0.95`` -> ``("adam(beta1=0.95)", model)``).

    Parameters
    ----------
    spec : str
        As :func:`parse_spec`.

    Returns
    -------
    tuple of (str, OptimizerModel)
        The label (``name(settings)``) and the built model.

    Raises
    ------
    UnknownNameError, InvalidHyperparameterError
        For an unknown name or file, or a bad hyperparameter.

    Examples
    --------
    >>> from optfilters.user_models import model_from_spec
    >>> label, model = model_from_spec("adam:betas=0.8,0.99")
    >>> label, model.hyperparameters["beta2"]
    ('adam(betas=0.8,0.99)', 0.99)
    """
    entry, settings = parse_spec(spec)
    values = {k: _convert(entry, k, v) for k, v in settings.items()}
    if "betas" in values and isinstance(values["betas"], tuple):
        values["betas"] = tuple(number_or_text(v) for v in values["betas"])
    model = entry.build(entry.validate(values))
    label = entry.name if not settings else f"{entry.name}({', '.join(f'{k}={v}' for k, v in settings.items())})"
    return label, model
