"""Identify: measure the gradient filter inside a black-box optimizer.

:func:`identify` drives any optimizer - a dotted class path such as
``"torch.optim.SGD"``, a class or factory, or a catalogue
:class:`~optfilters.OptimizerModel` (through its reference executor) - on a
one-element float64 parameter.  It sets ``.grad`` and calls ``step()`` (with a
closure when ``step()`` needs one) and records the update per unit learning
rate, ``u_t = -(theta_t - theta_{t-1}) / lr``.  Every probe uses a fresh
optimizer instance starting from rest at ``theta = 0``:

===================================  ========================================
probe                                what it measures
===================================  ========================================
impulses at steps 1, 2, 3, 5, 9, 17  time invariance, length of a start-up
                                     transient (first-step initialisation)
steps of sizes 1, 3, -0.5            homogeneity
white noise x1, x2, x1 + x2          superposition; the ARMA fit
x1 scaled by 2, -1, 1e3, 1e-3        homogeneity over scales, scale
                                     invariance (normalisation), odd symmetry
x1 starting at steps 9 and 17        time invariance
x1 from theta = 1                    dependence on the parameter value
                                     (weight decay)
===================================  ========================================

For a linear optimizer that is time-invariant (possibly after a start-up
transient of a few steps) ``b`` and ``a`` come from a least-squares ARMA fit
(:func:`fit_arma`: regression of ``u_t`` on past updates and current and past
gradients, orders chosen by residual with a parsimony rule), run on the rows
after the transient.  For the others the *visible linear part* is the
small-signal response to an impulse perturbation on a long constant gradient
background (:class:`VisibleLinearPart`), fitted the same way, and the *best
linear approximation* under a large Gaussian dither
(:mod:`optfilters.dither`, Bussgang) shows the filter in front of a sign, a
clip or an orthogonalisation, with standard errors.

An optimizer that refuses a 1-element dense parameter is probed on a 4 x 8
matrix (a scalar probe ``g`` enters as ``g E`` for a fixed matrix ``E``:
:func:`probe_direction`) or with sparse gradients; it may be given a
parameter group instead of a list, a closure, or a ``.grad`` that carries its
autograd graph (optimizers that take Hessian-vector products).  The measured
facts are in the notes; mechanisms they suggest are worded as hypotheses.

torch is imported only inside the functions that drive torch optimizers.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib
import importlib.util
import inspect
import io
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .catalogue import CATALOGUE, close_matches, get, resolve_name
from .errors import InvalidHyperparameterError, user_code
from .filters import ArmaFilter, complex_pairs
from .hyperparameters import Hyperparameter
from .model import OptimizerModel
from .validation import MAX_SEED, jsonable

if TYPE_CHECKING:
    from .dither import BestLinearApproximation
    from .probes import EventClock, MatrixCheck

__all__ = [
    "ArmaFit",
    "Comparison",
    "Identification",
    "IdentificationError",
    "KeywordMapping",
    "NonFiniteUpdate",
    "ProbeTimeout",
    "PropertyCheck",
    "VisibleLinearPart",
    "catalogue_model",
    "constructor_defaults",
    "fit_arma",
    "foreign_code",
    "identify",
    "map_keywords",
    "one_torch_thread",
    "probe",
    "probe_direction",
    "resolve_optimizer",
]

FloatArray = NDArray[np.float64]
ComplexArray = NDArray[np.complex128]

#: Steps at which the impulse probes start (1-based).
IMPULSE_STARTS = (1, 2, 3, 5, 9, 17)
#: Steps at which the (same) white-noise probe starts.
NOISE_STARTS = (1, 9, 17)
#: Sizes of the step probes.
STEP_SIZES = (1.0, 3.0, -0.5)
#: Scales applied to the first noise probe (homogeneity).
NOISE_SCALES = (2.0, -1.0, 1e3, 1e-3)
#: The verdicts of :attr:`Identification.verdict`.
VERDICTS = ("linear", "linear time-varying", "normalised", "sign-type", "matrix", "nonlinear")
#: torch keyword arguments that select an implementation, not a filter.
TORCH_ONLY_OPTIONS = frozenset({"foreach", "fused", "capturable", "differentiable"})

_DTYPE_TOLERANCES = {"float64": (1e-9, 1e-6), "float32": (1e-4, 1e-2)}


class IdentificationError(ValueError):
    """An optimizer cannot be resolved, built or probed (one-line message)."""


# ----------------------------------------------------------------------------- small helpers


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0].strip() if text else ""
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_fmt(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _fmt_roots(roots: ArrayLike) -> str:
    out = []
    for r in np.atleast_1d(np.asarray(roots, dtype=np.complex128)):
        if abs(r.imag) <= 1e-12 * max(1.0, abs(r)):
            out.append(f"{r.real:.6g}")
        else:
            out.append(f"{r.real:.6g}{r.imag:+.6g}j")
    return "[" + ", ".join(out) + "]"


def _call_text(name: str, options: Mapping[str, Any]) -> str:
    return f"{name}({', '.join(f'{k}={_fmt(v)}' for k, v in options.items())})"


def _max_abs(values: ArrayLike) -> float:
    array = np.asarray(values, dtype=np.float64)
    return float(np.max(np.abs(array))) if array.size else 0.0


def _relative(difference: float, scale: float) -> float:
    if difference == 0.0:
        return 0.0
    if scale <= 0.0 or not math.isfinite(scale):
        return math.inf
    return difference / scale


#: Upper bound of ``steps``, ``window``, ``max_background`` and ``dither_steps`` (each probe is a torch run).
MAX_PROBE_STEPS = 1_000_000


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    return int(_validated(Hyperparameter(name, value, "int", low=low, high=high), value))


def _check_float(name: str, value: Any, low: float, high: float | None = None, low_open: bool = True) -> float:
    return float(_validated(Hyperparameter(name, value, "float", low=low, high=high, low_open=low_open), value))


def _validated(spec: Hyperparameter, value: Any) -> Any:
    """The catalogue's validation (messages name the setting, the range and the value), as IdentificationError."""
    try:
        return spec.validate(value)
    except InvalidHyperparameterError as exc:
        raise IdentificationError(str(exc)) from None


# ----------------------------------------------------------------------------- resolving optimizers

#: Import names -> the pip package that provides them (for "install it" hints).
_PIP_NAMES = {"pytorch_optimizer": "pytorch-optimizer", "schedulefree": "schedulefree", "torch": "torch==2.13.0"}


def _install_hint(missing: str) -> str:
    top = missing.split(".")[0]
    return f"install it (pip install {_PIP_NAMES.get(top, top)}) or put its folder on PYTHONPATH"


def _local_hint(top: str, rest: Sequence[str]) -> str:
    """What to type instead when ``top`` is not importable but a file or folder of that name is here."""
    here = Path.cwd()
    attrs = ".".join(rest)
    if (here / f"{top}.py").is_file():
        return f"; ./{top}.py is not on the import path: give {top}.py:{attrs or 'ClassName'} or set PYTHONPATH=."
    if (here / top / "__init__.py").is_file():
        return f"; ./{top}/ is not on the import path: set PYTHONPATH=. (or pip install -e ./{top})"
    return f"; {_install_hint(top)}, or give a file as path/to/file.py:ClassName"


def _is_file_path(text: str) -> bool:
    return text.endswith(".py") or "/" in text or "\\" in text


def _load_file(file_text: str) -> Any:
    """Import a Python file as a module (its folder first on sys.path while it runs, for sibling imports)."""
    path = Path(file_text).expanduser()
    if not path.is_file():
        raise IdentificationError(f"no such file {file_text!r} (give an existing path/to/file.py:ClassName)")
    path = path.resolve()
    stem = path.stem if path.stem.isidentifier() else "user_module"
    name = stem
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) != str(path):
        name = f"{stem}_{abs(hash(str(path))) % 10**8}"
    elif existing is not None:
        return existing
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise IdentificationError(f"cannot import {file_text!r}: not a Python source file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    folder = str(path.parent)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except ModuleNotFoundError as exc:
        del sys.modules[name]
        missing = exc.name or "?"
        raise IdentificationError(
            f"importing {file_text!r} failed: {_first_line(exc)}; {_install_hint(missing)}"
        ) from None
    except Exception as exc:  # a file that raises on import
        del sys.modules[name]
        raise IdentificationError(f"importing {file_text!r} failed: {_first_line(exc)}") from None
    except BaseException:  # sys.exit (or ^C) while importing: no half-run module stays for the next call
        sys.modules.pop(name, None)
        raise
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
    return module


def _attribute_chain(obj: Any, owner: str, attrs: Sequence[str]) -> Any:
    for attr in attrs:
        if not hasattr(obj, attr):
            kind = "module" if inspect.ismodule(obj) else "object"
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = close_matches(attr, names, n=3)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise IdentificationError(f"{kind} {owner!r} has no attribute {attr!r}{hint}")
        obj = getattr(obj, attr)
        owner = f"{owner}.{attr}"
    return obj


def resolve_optimizer(path: str) -> Any:
    """Import the object that a path names: ``"torch.optim.SGD"``, ``"pkg.mod:Class"`` or ``"path/to/file.py:Class"``.

    Parameters
    ----------
    path : str
        A dotted module path followed by attribute names (the last part may
        follow a colon), or a Python file followed by ``:`` and the attribute
        (the file's folder is on ``sys.path`` while it is imported, so it may
        import its siblings).

    Returns
    -------
    object
        The imported object (normally an optimizer class, or a module).

    Raises
    ------
    IdentificationError
        When the path is malformed, a module or file cannot be imported or an
        attribute does not exist; the message says what to do (close matches,
        the package to install, ``file.py:Class`` for a local file).

    Examples
    --------
    >>> from optfilters.identify import resolve_optimizer
    >>> resolve_optimizer("torch.optim.SGD").__name__
    'SGD'
    >>> resolve_optimizer("torch.optim.SGDD")
    Traceback (most recent call last):
    ...
    optfilters.identify.IdentificationError: module 'torch.optim' has no attribute 'SGDD'; did you mean 'SGD' or 'ASGD'?
    """
    if not isinstance(path, str):
        raise IdentificationError(f"optimizer path must be a string like 'torch.optim.SGD', got {path!r}")
    stripped = path.strip()
    file_part, colon, attr_part = stripped.rpartition(":")
    if colon and _is_file_path(file_part):
        attrs = attr_part.split(".") if attr_part else []
        if not attrs or not all(a.isidentifier() for a in attrs):
            raise IdentificationError(f"give the class after the file as path/to/file.py:ClassName, got {path!r}")
        return _attribute_chain(_load_file(file_part), Path(file_part).name, attrs)
    if _is_file_path(stripped):
        if stripped.endswith(".py"):
            return _load_file(stripped)
        raise IdentificationError(f"give a file as path/to/file.py:ClassName, got {path!r}")
    text = stripped.replace(":", ".")
    parts = text.split(".")
    if not text or not all(part.isidentifier() for part in parts):
        raise IdentificationError(
            f"optimizer path must be a dotted path like 'torch.optim.SGD' or path/to/file.py:ClassName, got {path!r}"
        )
    for i in range(len(parts), 0, -1):
        module_name = ".".join(parts[:i])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if missing and (module_name == missing or module_name.startswith(missing + ".")):
                continue  # this prefix is not a module: try a shorter one
            hint = f"; {_install_hint(missing)}" if missing else ""
            raise IdentificationError(f"importing {module_name!r} failed: {_first_line(exc)}{hint}") from None
        except Exception as exc:  # a module that raises on import
            raise IdentificationError(f"importing {module_name!r} failed: {_first_line(exc)}") from None
        return _attribute_chain(obj, module_name, parts[i:])
    raise IdentificationError(f"cannot import {path!r}: no module named {parts[0]!r}{_local_hint(parts[0], parts[1:])}")


def _accepts_keyword(factory: Any, name: str) -> bool:
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return True
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.VAR_KEYWORD:
            return True
        if parameter.name == name and parameter.kind is not parameter.POSITIONAL_ONLY:
            return True
    return False


def constructor_defaults(factory: Any) -> dict[str, Any]:
    """The keyword defaults of an optimizer's constructor (``params`` and ``**kwargs`` left out).

    Parameters
    ----------
    factory : class or callable
        An optimizer class or factory ``f(params, **options)``.

    Returns
    -------
    dict
        Keyword -> default value, in signature order (empty when the
        signature cannot be read).

    Examples
    --------
    >>> import torch
    >>> from optfilters.identify import constructor_defaults
    >>> constructor_defaults(torch.optim.SGD)["momentum"]
    0
    """
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return {}
    out: dict[str, Any] = {}
    for parameter in list(signature.parameters.values())[1:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.default is not parameter.empty:
            out[parameter.name] = parameter.default
    return out


#: How the probes present the gradient to the optimizer.
LAYOUTS = ("scalar", "matrix", "sparse")
#: Shape of the matrix parameter of the ``"matrix"`` layout.
MATRIX_SHAPE = (4, 8)


def probe_direction(layout: str, shape: tuple[int, ...] | None = None) -> FloatArray:
    """The fixed array ``E`` along which a scalar probe ``g`` enters as the gradient ``g E``.

    ``"scalar"`` and ``"sparse"``: ``[1.0]``; ``"matrix"``: a fixed Gaussian
    matrix (seed 15) of shape ``MATRIX_SHAPE`` scaled to unit Frobenius norm.
    The measured update is the projection ``<-delta theta, E> / (lr <E, E>)``.

    Parameters
    ----------
    layout : {"scalar", "matrix", "sparse"}
        Probe layout.
    shape : tuple of int, optional
        Shape of the matrix (default ``MATRIX_SHAPE``).

    Returns
    -------
    numpy.ndarray
        ``[1.0]`` (shape ``(1,)``), or the unit-norm matrix of shape ``shape``.

    Raises
    ------
    IdentificationError
        If ``layout`` is not one of :data:`LAYOUTS`.

    Examples
    --------
    >>> from optfilters.identify import probe_direction
    >>> probe_direction("scalar").tolist()
    [1.0]
    >>> E = probe_direction("matrix")
    >>> E.shape, round(float((E**2).sum()), 12)
    ((4, 8), 1.0)
    """
    if layout not in LAYOUTS:
        raise IdentificationError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if layout != "matrix":
        return np.ones(1)
    e = np.random.default_rng(15).standard_normal(shape or MATRIX_SHAPE)
    return np.asarray(e / np.linalg.norm(e), dtype=np.float64)


class ProbeTimeout(IdentificationError):
    """A probe ran past its time limit."""


class NonFiniteUpdate(IdentificationError):
    """An optimizer produced a non-finite update; ``step`` (1-based), ``gradient`` (its largest magnitude there)."""

    def __init__(self, message: str, step: int, gradient: float, probe: str = "") -> None:
        super().__init__(message)
        self.step = step
        self.gradient = gradient
        self.probe = probe


class _StepInterrupted(BaseException):
    """Raised by the ``SIGALRM`` handler inside a foreign step (a ``BaseException``: its ``except Exception``
    cannot swallow it)."""


def _raise_step_interrupted(signum: int, frame: Any) -> None:
    raise _StepInterrupted


class _Target:
    """What is probed: a torch optimizer factory with options, or a catalogue model."""

    def __init__(
        self,
        optimizer: Any,
        options: Mapping[str, Any],
        lr: float | None,
        dtype: str,
        layout: str = "auto",
        time_limit: float | None = None,
    ) -> None:
        self.options = dict(options)
        self.dtype = dtype
        self.closure = False
        self.notes: list[str] = []
        self.model: OptimizerModel | None = None
        self.layout = "scalar"
        self.layout_failures: dict[str, str] = {}
        self.time_limit = time_limit
        self.deadline = None if time_limit is None else time.monotonic() + time_limit
        self.direction = probe_direction("scalar")
        self.steps_taken = 0
        self.closure_calls = 0
        self.calls_per_step = 1.0
        self.group_form = ""
        self.mode = "plain"
        self.train_mode = False
        if layout != "auto" and layout not in LAYOUTS:
            raise IdentificationError(f"layout must be 'auto' or one of {', '.join(LAYOUTS)}, got {layout!r}")
        if isinstance(optimizer, OptimizerModel):
            if self.options:
                raise IdentificationError(
                    f"a catalogue model carries its hyperparameters; got extra options {sorted(self.options)}"
                )
            if layout not in ("auto", "scalar"):
                raise IdentificationError(f"a catalogue model is probed with the scalar layout, got {layout!r}")
            self.model = optimizer
            self.name = f"optfilters model {optimizer.name!r}"
            self.lr = 1.0 if lr is None else _check_lr(lr)
            self.user_options: dict[str, Any] = {}
            self.factory: Any = None
            return
        if isinstance(optimizer, str):
            factory = resolve_optimizer(optimizer)
            self.name = optimizer.strip()
            if not inspect.isclass(factory):
                kind = "module" if inspect.ismodule(factory) else type(factory).__name__
                raise IdentificationError(f"{self.name!r} is not an optimizer class (it is a {kind})")
        elif callable(optimizer):
            factory = optimizer
            module = getattr(optimizer, "__module__", "") or ""
            qualname = getattr(optimizer, "__qualname__", None) or type(optimizer).__name__
            self.name = f"{module}.{qualname}" if module and module != "builtins" else str(qualname)
        else:
            raise IdentificationError(
                f"optimizer must be a dotted path, an optimizer class or an OptimizerModel, got {optimizer!r}"
            )
        try:
            import torch
        except ImportError as exc:
            raise IdentificationError(f"probing {self.name} needs torch ({_first_line(exc)})") from None

        if inspect.isclass(factory) and not issubclass(factory, torch.optim.Optimizer):
            if not callable(getattr(factory, "step", None)):
                raise IdentificationError(
                    f"{self.name} is not an optimizer class: it has no step() method "
                    "(expected a torch.optim.Optimizer subclass)"
                )
            self.notes.append(f"{self.name} is not a torch.optim.Optimizer subclass; probed through its step() method")
        self.factory = factory
        self.torch_dtype = {"float64": torch.float64, "float32": torch.float32}[dtype]
        if lr is not None:
            self.options["lr"] = _check_lr(lr)
        elif "lr" not in self.options and _accepts_keyword(factory, "lr"):
            self.options["lr"] = 1.0
        self.user_options = dict(options)
        self.lr = 1.0
        first: IdentificationError | None = None
        for candidate in LAYOUTS if layout == "auto" else (layout,):
            try:
                self._set_layout(candidate)
            except ProbeTimeout:
                raise
            except IdentificationError as exc:
                first = first or exc
                self.layout_failures[candidate] = str(exc)
                continue
            break
        else:
            assert first is not None
            others = {k: v for k, v in list(self.layout_failures.items())[1:] if v != str(first)}
            if others:
                text = "; ".join(f"{k}: {v}" for k, v in others.items())
                raise IdentificationError(f"{first} (other layouts failed too: {text})")
            raise first
        if self.layout != "scalar":
            why = self.layout_failures.get("scalar", "")
            shape = "x".join(str(s) for s in self.shape)
            what = {"matrix": f"a {shape} matrix parameter", "sparse": "sparse gradients"}[self.layout]
            self.notes.append(f"probed with {what}: the 1-element dense probe failed ({why})")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.direction.shape)

    def _set_layout(self, layout: str) -> None:
        self.layout = layout
        self.direction = probe_direction(layout)
        # Build once to check the constructor and read the learning rate it uses.
        opt = self.construct(self.make_param(0.0))
        if not callable(getattr(opt, "step", None)):
            raise IdentificationError(f"{_call_text(self.name, self.options)} returned an object without step()")
        used = None
        groups = getattr(opt, "param_groups", None)
        if isinstance(groups, list) and groups and isinstance(groups[0], Mapping) and "lr" in groups[0]:
            used = groups[0]["lr"]
        if used is None:
            used = self.options.get("lr", 1.0)
        try:
            self.lr = _check_lr(float(used))
        except (TypeError, ValueError) as exc:
            raise IdentificationError(f"{self.name}: cannot read a learning rate ({_first_line(exc)})") from None
        self._choose_step_mode()

    def make_param(self, theta0: ArrayLike, shape: tuple[int, ...] | None = None) -> Any:
        import torch

        value = np.asarray(theta0, dtype=np.float64)
        if value.ndim == 0:
            value = float(value) * (self.direction if shape is None else np.ones(shape))
        return torch.nn.Parameter(torch.tensor(value, dtype=self.torch_dtype))

    def construct(self, param: Any, lr: float | None = None) -> Any:
        options = self.options if lr is None else {**self.options, "lr": lr}
        forms = [self.group_form] if self.group_form else ["list", "group"]
        first: BaseException | None = None
        second: BaseException | None = None
        for form in forms:
            params: list[Any] = [param] if form == "list" else [{"params": [param]}]
            try:
                opt = self.factory(params, **options)
            except Exception as exc:  # any failure of foreign code becomes one clear line
                if first is None:
                    first = exc
                else:
                    second = exc
                continue
            if not self.group_form:
                self.group_form = form
                if form == "group":
                    self.notes.append(
                        "the constructor refused a list of tensors; probed with one parameter group {'params': [p]}"
                    )
            train = getattr(opt, "train", None)
            if callable(train) and not isinstance(opt, _torch_module()):
                try:
                    train()  # Schedule-Free's protocol: step() only in train mode
                except Exception:  # a train() that is something else: leave the optimizer as built
                    pass
                else:
                    if not self.train_mode:
                        self.train_mode = True
                        self.notes.append("called the optimizer's train() after construction (Schedule-Free protocol)")
            return opt
        assert first is not None
        text = f"{_call_text(self.name, options)} failed: {_first_line(first)}"
        if second is not None and _first_line(second) != _first_line(first):
            text += f" (with a parameter group {{'params': [p]}}: {_first_line(second)})"
        raise IdentificationError(text) from None

    @property
    def closure(self) -> bool:
        """step() is called with a closure."""
        return self.mode == "closure"

    @closure.setter
    def closure(self, value: bool) -> None:
        self.mode = "closure" if value else "plain"

    def _choose_step_mode(self) -> None:
        """``plain`` (.grad then step()), else ``closure``, else ``graph`` (.grad with its autograd graph)."""
        first: BaseException | None = None
        modes = ("plain", "closure") if self.layout == "sparse" else ("plain", "closure", "graph")
        for mode in modes:  # (autograd gives dense gradients: no graph mode with sparse ones)
            self.mode = mode
            driver = self.driver(0.0)
            self.closure_calls = 0
            try:
                for g in (1.0, 0.5, -0.25, 0.0):
                    driver.raw_step(g)
                if mode == "closure" and self.closure_calls == 0:
                    raise RuntimeError("step(closure) never called the closure")
            except ProbeTimeout:
                raise
            except Exception as exc:  # foreign code
                first = first or exc
                continue
            if mode == "closure":
                self.calls_per_step = max(1.0, self.closure_calls / 4.0)
                self.notes.append(
                    f"step() needs a closure: probed with a closure that sets .grad and returns the loss (it was "
                    f"evaluated {self.closure_calls} times in 4 steps)"
                )
            elif mode == "graph":
                self.notes.append(
                    "step() needs .grad with its autograd graph (second derivatives): probed with the gradient of "
                    "g * theta + 0 * theta^2, so the gradient is g and every Hessian-vector product is 0"
                )
            return
        assert first is not None
        raise IdentificationError(f"{self.name}.step() failed: {_first_line(first)}")

    def driver(self, theta0: ArrayLike, shape: tuple[int, ...] | None = None, lr: float | None = None) -> _Driver:
        if self.model is not None:
            return _ModelDriver(self, theta0, shape, lr)
        return _TorchDriver(self, theta0, shape, lr)

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Run one foreign ``step()``: past the deadline it is interrupted with :class:`ProbeTimeout`.

        :meth:`tick` checks the deadline between steps only: a step that never
        returns (a ``time.sleep``, a deadlock) would hang the caller forever.
        On the main thread of a platform with ``SIGALRM``, an interval timer
        set to the time left interrupts it; the previous handler and timer are
        restored on leaving (elsewhere the check stays between steps).
        """
        if (
            self.deadline is None
            or not hasattr(signal, "setitimer")
            or threading.current_thread() is not threading.main_thread()
        ):
            yield
            return
        left = self.deadline - time.monotonic()
        if left <= 0.0:
            self.tick()  # raises
        previous_handler = signal.signal(signal.SIGALRM, _raise_step_interrupted)
        started = time.monotonic()
        previous_timer, _ = signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))
        try:
            yield
        except _StepInterrupted:
            self.deadline = None  # report once; the caller decides what to keep
            raise ProbeTimeout(
                f"{self.name}: time limit of {self.time_limit:g} s reached inside a step() that had not returned "
                "(interrupted)"
            ) from None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0.0)
            signal.signal(signal.SIGALRM, previous_handler)
            if previous_timer > 0.0:  # someone else's alarm: re-armed with what is left of it
                signal.setitimer(signal.ITIMER_REAL, max(previous_timer - (time.monotonic() - started), 1e-3))

    def tick(self) -> None:
        """Count a step; raise :class:`ProbeTimeout` past the deadline."""
        self.steps_taken += 1
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.deadline = None  # report once; the caller decides what to keep
            raise ProbeTimeout(
                f"{self.name}: time limit of {self.time_limit:g} s reached after {self.steps_taken} probe steps"
            )


def _torch_module() -> type:
    """``torch.nn.Module`` (an optimizer that is also a module has a train() of another meaning)."""
    import torch

    return torch.nn.Module


def _check_lr(lr: Any) -> float:
    try:
        value = float(lr)
    except (TypeError, ValueError):
        raise IdentificationError(f"lr must be a number, got {lr!r}") from None
    if not math.isfinite(value) or value == 0.0:
        raise IdentificationError(f"lr must be a finite non-zero number to measure updates per unit lr, got {lr!r}")
    return value


class _Driver:
    """One optimizer instance on one parameter, stepped with scalar gradients (along the probe direction) or arrays."""

    target: _Target
    history: list[tuple[FloatArray, FloatArray | None]]
    theta0: ArrayLike
    shape: tuple[int, ...]
    lr: float

    def _setup(self, target: _Target, theta0: ArrayLike, shape: tuple[int, ...] | None, lr: float | None) -> None:
        self.target = target
        self.theta0 = theta0
        self.shape = target.shape if shape is None else tuple(shape)
        self.lr = target.lr if lr is None else _check_lr(lr)
        self.history = []
        self.direction = target.direction if self.shape == target.shape else np.ones(self.shape)
        self.norm2 = float(np.sum(self.direction**2))

    def step(self, g: float) -> float:
        """Update per unit lr for the scalar gradient ``g`` (projected on the probe direction)."""
        u = self.step_array(g * self.direction)
        return float(np.vdot(u, self.direction)) / self.norm2

    def raw_step(self, g: float) -> float:
        u = self.raw_step_array(g * self.direction, None)
        return float(np.vdot(u, self.direction)) / self.norm2

    def step_array(self, grad: ArrayLike, present: ArrayLike | None = None) -> FloatArray:
        """Update per unit lr (an array of the parameter's shape) for the gradient array ``grad``.

        ``present`` (sparse layout only) marks the elements that the sparse
        gradient contains; the others are absent (not zero).
        """
        self.target.tick()
        g = np.asarray(grad, dtype=np.float64).reshape(self.shape)
        mask = None if present is None else np.asarray(present, dtype=bool).reshape(self.shape)
        try:
            u = self.raw_step_array(g, mask)
        except IdentificationError:
            raise
        except Exception as exc:  # foreign code
            raise IdentificationError(
                f"{self.target.name}.step() failed at step {len(self.history)}: {_first_line(exc)}"
            ) from None
        peak = getattr(self, "_peak", 0.0)
        if not np.all(np.isfinite(u)):
            size = float(np.max(np.abs(g))) if g.size else 0.0
            if peak > 1e30:  # the updates were growing before they overflowed
                hint = (
                    f"; the updates grew to {peak:.3g} before: the optimizer's filter is unstable "
                    "(a pole outside the unit circle), try smaller steps or a stable setting"
                )
            else:
                hint = "; e.g. 0/0 on a zero gradient, which a positive eps avoids" if size == 0.0 else ""
            raise NonFiniteUpdate(
                f"{self.target.name} produced a non-finite update at step {len(self.history)} (gradient of size "
                f"{size:.3g} there{hint})",
                len(self.history),
                size,
            )
        if u.size:
            self._peak = max(peak, float(np.max(np.abs(u))))
        return u

    def raw_step_array(self, grad: FloatArray, present: FloatArray | None) -> FloatArray:
        raise NotImplementedError

    def fork(self, how: str) -> _Driver:
        """A copy in the same state: ``native`` (state_dict or deepcopy) or ``replay`` (rerun the history)."""
        if how == "replay":
            twin = self.target.driver(self.theta0, self.shape, self.lr)
            for g, mask in self.history:
                twin.step_array(g, mask)
            return twin
        return self.native_fork()

    def native_fork(self) -> _Driver:
        raise NotImplementedError

    def state_arrays(self) -> dict[str, FloatArray]:
        """The optimizer's floating-point state tensors as arrays, by ``key`` (empty for models)."""
        return {}


class _TorchDriver(_Driver):
    def __init__(self, target: _Target, theta0: ArrayLike, shape: tuple[int, ...] | None, lr: float | None) -> None:
        self._setup(target, theta0, shape, lr)
        self.param = target.make_param(theta0, None if self.shape == target.shape else self.shape)
        self.opt = target.construct(self.param, None if lr is None else self.lr)

    def _gradient(self, grad: FloatArray, present: FloatArray | None) -> Any:
        import torch

        dense = torch.tensor(grad, dtype=self.param.dtype)
        if self.target.layout != "sparse":
            return dense
        flat = dense.reshape(-1)
        keep = np.arange(flat.numel()) if present is None else np.flatnonzero(present.reshape(-1))
        index = torch.tensor(keep, dtype=torch.long)
        if self.param.dim() == 1:
            return torch.sparse_coo_tensor(
                index.unsqueeze(0), flat[index], self.param.shape, check_invariants=True
            ).coalesce()
        coords = np.stack(np.unravel_index(keep, self.shape))
        values = dense[tuple(torch.tensor(c) for c in coords)]
        return torch.sparse_coo_tensor(torch.tensor(coords), values, self.param.shape, check_invariants=True).coalesce()

    def raw_step_array(self, grad: FloatArray, present: FloatArray | None) -> FloatArray:
        param = self.param
        g = self._gradient(grad, present)
        before = param.detach().numpy().astype(np.float64, copy=True)
        self.history.append((grad, present))
        if self.target.mode == "closure":
            target = self.target

            def closure() -> Any:
                target.closure_calls += 1
                param.grad = g.clone()
                return (g.to_dense() * param.detach()).sum()

            with self.target.interruptible():
                self.opt.step(closure)
        elif self.target.mode == "graph":
            import torch

            with torch.enable_grad():
                loss = (g.to_dense() * param).sum() + 0.0 * (param * param).sum()
                (graph_grad,) = torch.autograd.grad(loss, param, create_graph=True)
            param.grad = graph_grad
            with self.target.interruptible():
                self.opt.step()
        else:
            param.grad = g
            with self.target.interruptible():
                self.opt.step()
        after = param.detach().numpy().astype(np.float64)
        return np.asarray(-(after - before) / self.lr, dtype=np.float64)

    def native_fork(self) -> _Driver:
        twin = _TorchDriver.__new__(_TorchDriver)
        twin._setup(self.target, self.theta0, self.shape, self.lr)
        twin.history = list(self.history)
        twin.param = type(self.param)(self.param.detach().clone())
        twin.opt = self.target.construct(twin.param, self.lr)
        twin.opt.load_state_dict(copy.deepcopy(self.opt.state_dict()))
        return twin

    def state_arrays(self) -> dict[str, FloatArray]:
        import torch

        out: dict[str, FloatArray] = {}
        state = getattr(self.opt, "state", None)
        if not isinstance(state, Mapping):
            return out
        entry = state.get(self.param, {})
        if not isinstance(entry, Mapping):
            return out
        for key, value in entry.items():
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                tensor = value.detach()
                if tensor.is_sparse:
                    tensor = tensor.to_dense()
                out[str(key)] = tensor.to(torch.float64).numpy().copy()
            elif isinstance(value, float):
                out[str(key)] = np.array(value)
        return out


class _ModelDriver(_Driver):
    def __init__(self, target: _Target, theta0: ArrayLike, shape: tuple[int, ...] | None, lr: float | None) -> None:
        assert target.model is not None
        self._setup(target, theta0, shape, lr)
        value = np.asarray(theta0, dtype=np.float64)
        start = value * np.ones(self.shape) if value.ndim == 0 else value.reshape(self.shape)
        self.opt = target.model.optimizer(start.ravel(), lr=self.lr)

    def raw_step_array(self, grad: FloatArray, present: FloatArray | None) -> FloatArray:
        before = np.array(self.opt.theta, dtype=np.float64)
        self.history.append((grad, present))
        after = np.array(self.opt.step(grad.ravel()), dtype=np.float64)
        return np.asarray(-(after - before) / self.lr, dtype=np.float64).reshape(self.shape)

    def native_fork(self) -> _Driver:
        model = self.target.model
        twin = _ModelDriver.__new__(_ModelDriver)
        twin._setup(self.target, self.theta0, self.shape, self.lr)
        twin.history = list(self.history)
        twin.opt = copy.deepcopy(self.opt, {id(model): model})
        return twin


def _silent(phase: str, done: int, total: int) -> None:
    """The default progress hook: nothing."""


def _run(target: _Target, gradients: ArrayLike, theta0: float = 0.0) -> FloatArray:
    driver = target.driver(theta0)
    return np.array([driver.step(float(g)) for g in np.asarray(gradients, dtype=np.float64).ravel()])


def _make_target(
    optimizer: Any,
    options: Mapping[str, Any] | None,
    extra: Mapping[str, Any],
    lr: float | None,
    dtype: Any,
    layout: str = "auto",
    time_limit: float | None = None,
) -> _Target:
    merged = dict(options or {})
    for key, value in extra.items():
        if key in merged:
            raise IdentificationError(f"option {key!r} given twice (in options and as a keyword)")
        merged[key] = value
    dtype_name = str(dtype).replace("torch.", "")
    if dtype_name not in _DTYPE_TOLERANCES:
        raise IdentificationError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    if time_limit is not None:
        time_limit = _check_float("time_limit", time_limit, 0.0)
    return _Target(optimizer, merged, lr, dtype_name, layout, time_limit)


def probe(
    optimizer: Any,
    gradients: ArrayLike,
    /,
    *,
    options: Mapping[str, Any] | None = None,
    lr: float | None = None,
    theta0: float = 0.0,
    dtype: str = "float64",
    layout: str = "auto",
    **constructor_options: Any,
) -> FloatArray:
    """Drive a fresh optimizer instance with a gradient sequence; return its updates per unit lr.

    Parameters
    ----------
    optimizer : str, class, callable or OptimizerModel
        Dotted path (``"torch.optim.Adam"``) or ``path/to/file.py:Class``,
        optimizer class or factory ``f(params, **options)``, or a catalogue
        model (run by its numpy reference executor).
    gradients : array_like
        Scalar gradient per step (``gradients[t-1]`` at step ``t``), applied
        along the layout's probe direction (:func:`probe_direction`).
    options : mapping, optional
        Constructor keywords (for names that clash with this function's own).
    lr : float, optional
        Learning rate; default 1.0 when the constructor takes ``lr``.
    theta0 : float
        Initial value of the parameter (times the probe direction).
    dtype : {"float64", "float32"}
        Parameter dtype.
    layout : {"auto", "scalar", "matrix", "sparse"}
        A 1-element parameter, a ``MATRIX_SHAPE`` matrix, or a 1-element
        parameter with sparse gradients; ``"auto"`` takes the first that the
        optimizer accepts.
    **constructor_options
        More constructor keywords (``momentum=0.9``).

    Returns
    -------
    numpy.ndarray
        ``u_t = -(theta_t - theta_{t-1}) / lr`` for each step (projected on
        the probe direction).

    Raises
    ------
    IdentificationError
        For a bad path, a failing constructor or step, or a non-finite update.

    Examples
    --------
    >>> from optfilters.identify import probe
    >>> probe("torch.optim.SGD", [1.0, 0.0, 0.0], momentum=0.5).tolist()
    [1.0, 0.5, 0.25]
    """
    target = _make_target(optimizer, options, constructor_options, lr, dtype, layout)
    return _run(target, gradients, float(theta0))


# ----------------------------------------------------------------------------- ARMA fit


@dataclass(frozen=True)
class ArmaFit:
    """A least-squares ARMA fit ``a(z^-1) y = b(z^-1) x`` with its order selection.

    Attributes
    ----------
    b, a : numpy.ndarray
        Coefficients in powers of ``z^-1`` (``a[0] == 1``).
    orders : tuple of int
        ``(p, q)``: ``len(a) - 1`` poles and ``len(b) - 1`` numerator delays.
    residual : float
        Relative equation error ``||y - y_hat|| / ||y||`` of the chosen fit.
    residuals : dict
        The relative equation error of every ``(p, q)`` tried.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import signal
    >>> from optfilters.identify import fit_arma
    >>> x = np.random.default_rng(0).standard_normal(200)
    >>> fit = fit_arma(x, signal.lfilter([1.9, -0.9], [1.0, -0.9], x))
    >>> fit.orders, fit.b.round(9).tolist(), fit.a.round(9).tolist()
    ((1, 1), [1.9, -0.9], [1.0, -0.9])
    """

    b: FloatArray
    a: FloatArray
    orders: tuple[int, int]
    residual: float
    residuals: Mapping[tuple[int, int], float] = field(default_factory=dict, repr=False)

    def to_filter(self, name: str = "") -> ArmaFilter:
        """The fitted :class:`~optfilters.ArmaFilter`.

        Parameters
        ----------
        name : str
            The filter's name.

        Returns
        -------
        ArmaFilter
            ``H(z) = B(z^-1) / A(z^-1)`` with the fitted ``b`` and ``a``.

        Examples
        --------
        >>> import numpy as np
        >>> from optfilters.identify import fit_arma
        >>> fit_arma([1.0, 0.0, 0.0, 0.0], [0.5, 0.25, 0.125, 0.0625]).to_filter().a.tolist()
        [1.0, -0.5]
        """
        return ArmaFilter(self.b, self.a, name=name)


def _regression(
    xs: Sequence[FloatArray], ys: Sequence[FloatArray], p: int, q: int, start: int
) -> tuple[FloatArray, FloatArray]:
    rows: list[FloatArray] = []
    targets: list[FloatArray] = []
    for x, y in zip(xs, ys, strict=True):
        n = y.size
        if n <= start:
            continue
        t = np.arange(start, n)
        ypad = np.concatenate([np.zeros(p), y])
        xpad = np.concatenate([np.zeros(q), x])
        cols = [-ypad[p + t - k] for k in range(1, p + 1)] + [xpad[q + t - k] for k in range(q + 1)]
        rows.append(np.column_stack(cols))
        targets.append(y[start:])
    if not rows:
        raise IdentificationError(f"no data after row {start}: the records are too short")
    return np.vstack(rows), np.concatenate(targets)


def fit_arma(
    inputs: ArrayLike | Sequence[ArrayLike],
    outputs: ArrayLike | Sequence[ArrayLike],
    max_order: int = 6,
    *,
    start: int = 0,
    tol: float = 1e-9,
) -> ArmaFit:
    """Least-squares ARMA fit of outputs on inputs, with order selection by residual.

    The regression is ``y_t = -a_1 y_{t-1} - ... - a_p y_{t-p} + b_0 x_t + ...
    + b_q x_{t-q}`` over every record (values before a record's start are 0:
    records start from rest), using rows ``t >= start`` (0-based) only, so that
    a start-up transient can be left out.  Every ``(p, q)`` up to
    ``max_order`` is fitted; the simplest (smallest ``p + q``, then ``p``)
    whose relative equation error is at most ``max(tol, 10 * smallest)`` is
    chosen (parsimony).

    Parameters
    ----------
    inputs, outputs : array_like or sequence of array_like
        One record, or several records of equal length pairwise.
    max_order : int
        Largest ``p`` and ``q`` tried.
    start : int
        First row used in each record.
    tol : float
        Equation-error level that counts as an exact fit.

    Returns
    -------
    ArmaFit

    Raises
    ------
    IdentificationError
        For mismatched or empty records or out-of-range settings.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import signal
    >>> from optfilters.identify import fit_arma
    >>> x = np.random.default_rng(1).standard_normal(300)
    >>> fit = fit_arma(x, signal.lfilter([0.1], [1.0, -0.9], x))
    >>> fit.orders, fit.b.round(12).tolist(), fit.a.round(12).tolist()
    ((1, 0), [0.1], [1.0, -0.9])
    """
    max_order = _check_int("max_order", max_order, 0, 32)
    start = _check_int("start", start, 0)
    tol = _check_float("tol", tol, 0.0, 1.0)
    xs, ys = _records(inputs), _records(outputs)
    if len(xs) != len(ys):
        raise IdentificationError(f"got {len(xs)} input records but {len(ys)} output records")
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        if x.size != y.size:
            raise IdentificationError(f"record {i}: input has {x.size} samples but output has {y.size}")
    _, target = _regression(xs, ys, 0, 0, start)
    norm = float(np.linalg.norm(target))
    if norm == 0.0:
        return ArmaFit(np.zeros(1), np.ones(1), (0, 0), 0.0, {(0, 0): 0.0})
    # Growing records (an unstable filter: y ~ 2^t) would let the last rows swamp the input's columns;
    # each equation is then weighted by its largest magnitude, so that every step counts alike.
    magnitude = np.abs(target)
    growing = float(np.max(magnitude)) > 1e6 * max(1.0, float(np.median(magnitude)))
    weights = 1.0 / np.maximum(1.0, magnitude) if growing else None
    if weights is not None:
        norm = float(np.linalg.norm(target * weights))
    fits: dict[tuple[int, int], tuple[FloatArray, float]] = {}
    with _single_threaded_blas():
        for p in range(max_order + 1):
            for q in range(max_order + 1):
                matrix, y = _regression(xs, ys, p, q, start)
                if weights is not None:
                    rows = np.maximum(weights, 1.0 / np.maximum(1.0, np.max(np.abs(matrix), axis=1, initial=0.0)))
                    matrix, y = matrix * np.minimum(weights, rows)[:, None], y * np.minimum(weights, rows)
                solution, *_ = np.linalg.lstsq(matrix, y, rcond=None)
                coef = np.asarray(solution, dtype=np.float64)
                residual = float(np.linalg.norm(y - matrix @ coef)) / norm
                fits[(p, q)] = (coef, residual)
    smallest = min(r for _, r in fits.values())
    threshold = max(tol, 10.0 * smallest)
    p, q = min((k for k, (_, r) in fits.items() if r <= threshold), key=lambda k: (k[0] + k[1], k[0], k[1]))
    coef, residual = fits[(p, q)]
    coef, residual = _without_solver_rounding(xs, ys, p, q, start, coef, residual, norm, threshold)
    a = np.concatenate([[1.0], coef[:p]])
    b = np.array(coef[p:], dtype=np.float64)
    return ArmaFit(b, a, (p, q), residual, {k: r for k, (_, r) in fits.items()})


def _without_solver_rounding(
    xs: Sequence[FloatArray],
    ys: Sequence[FloatArray],
    p: int,
    q: int,
    start: int,
    coef: FloatArray,
    residual: float,
    norm: float,
    threshold: float,
) -> tuple[FloatArray, float]:
    """Coefficients within 4 ulps of a 12-significant-digit decimal, taken as that decimal, where that matters.

    The least-squares solve leaves an ulp or so of rounding (a summer's pole
    comes out at ``1.0000000000000002``), which exact analysis reads as a
    pole outside the unit circle.  When that rounding changes the stability
    verdict of the denominator, the cleaned coefficients are used, provided
    the equation error stays within the fit's threshold.
    """
    from .exact import fractions_of, stability

    cleaned = coef.copy()
    for i, c in enumerate(coef):
        short = float(f"{c:.12g}")
        if short != c and abs(short - c) <= 4.0 * np.spacing(abs(c)):
            cleaned[i] = short
    if np.array_equal(cleaned, coef):
        return coef, residual
    verdicts = {stability(fractions_of([1.0, *c[:p]])) for c in (coef, cleaned)}
    if len(verdicts) == 1:
        return coef, residual
    matrix, y = _regression(xs, ys, p, q, start)
    error = float(np.linalg.norm(y - matrix @ cleaned)) / norm
    return (cleaned, error) if error <= threshold else (coef, residual)


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Small least-squares problems run faster on one BLAS thread (and far faster on a busy machine)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _records(data: ArrayLike | Sequence[ArrayLike]) -> list[FloatArray]:
    if isinstance(data, np.ndarray) and data.ndim == 1:
        return [np.asarray(data, dtype=np.float64)]
    if isinstance(data, Sequence) and data and all(np.ndim(v) == 0 for v in data):
        return [np.asarray(data, dtype=np.float64)]
    try:
        records = [np.asarray(r, dtype=np.float64).ravel() for r in data]  # type: ignore[union-attr]
    except (TypeError, ValueError) as exc:
        raise IdentificationError(f"records must be sequences of numbers ({_first_line(exc)})") from None
    if not records:
        raise IdentificationError("at least one record is needed")
    for r in records:
        if not np.all(np.isfinite(r)):
            raise IdentificationError("records must be finite")
    return records


# ----------------------------------------------------------------------------- result objects


@dataclass(frozen=True)
class PropertyCheck:
    """A measured property (linearity, time invariance) with its discrepancy and tolerance.

    Attributes
    ----------
    name : str
        ``"linearity"`` or ``"time invariance"``.
    passed : bool
        ``discrepancy <= tolerance``.
    discrepancy : float
        Largest relative discrepancy measured (see ``details``).
    tolerance : float
        The tolerance it is compared with.
    details : dict
        The individual discrepancies and measurements.

    Examples
    --------
    >>> from optfilters.identify import PropertyCheck
    >>> PropertyCheck("linearity", True, 0.0, 1e-9).as_dict()["passed"]
    True
    """

    name: str
    passed: bool
    discrepancy: float
    tolerance: float
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON (non-finite numbers as None).

        Returns
        -------
        dict
            ``name``, ``passed``, ``discrepancy``, ``tolerance``, ``details``.
        """
        return jsonable(
            {
                "name": self.name,
                "passed": self.passed,
                "discrepancy": self.discrepancy,
                "tolerance": self.tolerance,
                "details": dict(self.details),
            }
        )


@dataclass(frozen=True)
class VisibleLinearPart:
    """The small-signal (linearised) response of a nonlinear or time-varying optimizer.

    After ``background_steps`` steps of the constant gradient ``background``,
    an impulse ``+perturbation`` and, on a copy of the optimizer, an impulse
    ``-perturbation`` are added; ``response`` is the symmetric difference of
    the two update sequences per unit perturbation and unit lr (second-order
    terms cancel).  Small steps ``+-perturbation`` from the same point give
    ``step_response``, a check of the linearisation.  The
    background length doubles until the response stops changing (``drift``),
    which approximates the ``t -> infinity`` limit.  ``filter`` is an ARMA fit
    of the response and ``components`` its parallel (partial-fraction) branches,
    largest first: for Adam they are ``EMA(beta1) / |g|`` and
    ``-EMA(beta2) / |g|``, whose sum has a zero at ``z = 1`` (scale invariance).

    Attributes
    ----------
    background, perturbation : float
        The constant gradient and the perturbation size.
    background_steps : int
        Steps of background before the perturbation.
    background_update : float
        The update per unit lr on the background alone at that step.
    response : numpy.ndarray
        Small-signal impulse response per unit perturbation and unit lr.
    step_response : numpy.ndarray
        Small-signal response to a step of size ``perturbation`` from the same
        point, per unit perturbation and unit lr.
    step_discrepancy : float
        How far ``step_response`` is from the running sum of ``response``
        (relative): 0 for a time-invariant linearisation.
    drift : float or None
        Relative change of the response since ``previous_background_steps``.
    previous_background_steps : int or None
        The background length compared with.
    gain_exponent : float or None
        ``d log(peak response) / d log(background_steps)``: about -0.5 for an
        accumulator that grows like ``t`` under a square root (Adagrad).
    filter : ArmaFilter or None
        ARMA fit of the response (None when nothing is visible or nothing fits).
    orders : tuple of int or None
        ``(p, q)`` of the fit.
    residual : float or None
        Relative output error of the fit.
    components : tuple of ArmaFilter
        Parallel branches of ``filter``, largest response energy first.
    fork : str
        How the optimizer was copied: ``"native"`` (state_dict or deepcopy) or
        ``"replay"``.
    notes : list of str
        What the response shows.

    Examples
    --------
    >>> from optfilters.identify import identify
    >>> part = identify("torch.optim.RMSprop", alpha=0.9, max_background=1024).visible
    >>> part.filter.poles.real.round(6).tolist(), part.filter.zeros.real.round(6).tolist()
    ([0.9], [1.0])
    """

    background: float
    perturbation: float
    background_steps: int
    background_update: float
    response: FloatArray
    step_response: FloatArray
    step_discrepancy: float
    drift: float | None
    previous_background_steps: int | None
    gain_exponent: float | None
    filter: ArmaFilter | None
    orders: tuple[int, int] | None
    residual: float | None
    components: tuple[ArmaFilter, ...]
    fork: str
    notes: list[str] = field(default_factory=list)

    @property
    def dominant(self) -> ArmaFilter | None:
        """The largest parallel branch (for Adam the first-moment EMA scaled by ``1/|g|``).

        Examples
        --------
        >>> from optfilters.identify import identify
        >>> part = identify("torch.optim.Adam", betas=(0.5, 0.9), max_background=2048).visible
        >>> d = part.dominant
        >>> d.poles.real.round(4).tolist(), round(d.dc_gain, 4)
        ([0.5], 1.0)
        """
        return self.components[0] if self.components else None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON (non-finite numbers as None).

        Returns
        -------
        dict
            The operating point and measurements (background, perturbation,
            responses, ...), and each fitted filter as ``b``, ``a``, poles and
            zeros (``[re, im]`` pairs) and DC gain.
        """

        def brief(f: ArmaFilter | None) -> dict[str, Any] | None:
            if f is None:
                return None
            return {
                "b": f.b.tolist(),
                "a": f.a.tolist(),
                "poles": complex_pairs(f.poles),
                "zeros": complex_pairs(f.zeros),
                "dc_gain": f.dc_gain,
            }

        return jsonable(
            {
                "background": self.background,
                "perturbation": self.perturbation,
                "background_steps": self.background_steps,
                "background_update": self.background_update,
                "drift": self.drift,
                "previous_background_steps": self.previous_background_steps,
                "gain_exponent": self.gain_exponent,
                "response": self.response,
                "step_response": self.step_response,
                "step_discrepancy": self.step_discrepancy,
                "filter": brief(self.filter),
                "orders": list(self.orders) if self.orders else None,
                "residual": self.residual,
                "components": [brief(c) for c in self.components],
                "fork": self.fork,
                "notes": list(self.notes),
            }
        )


@dataclass(frozen=True)
class Comparison:
    """Where an identified filter and a reference differ.

    Attributes
    ----------
    identified, reference : ArmaFilter
        The two filters compared (LTI filters, or small-signal parts when an
        optimizer is not LTI: see ``what``).
    reference_name : str
        Label of the reference.
    what : str
        ``"filter"`` or ``"small-signal part"``.
    match : bool
        True when the frequency responses agree within ``tolerance`` (relative
        to the reference's peak) and the structural properties agree.
    tolerance : float
        Relative tolerance.
    dc_gain, nyquist_gain : tuple of float
        ``(identified, reference)``.
    poles, zeros : tuple of numpy.ndarray
        ``(identified, reference)``.
    pole_distance, zero_distance : float
        Largest distance between matched roots (inf when the counts differ).
    max_deviation : float
        ``max |H_identified - H_reference|`` over 0..0.5 cycles/step.
    relative_deviation : float
        ``max_deviation`` over the reference's peak gain.
    deviation_frequency : float
        Where the largest deviation occurs (cycles/step).
    differences : list of str
        One line per aspect (DC gain, Nyquist gain, poles, zeros, response,
        linearity and time invariance when known, keyword mapping).
    keywords : KeywordMapping or None
        How the constructor keywords were mapped (catalogue references).

    Examples
    --------
    >>> from optfilters.identify import identify
    >>> c = identify("torch.optim.SGD", momentum=0.9).compare("momentum")
    >>> c.match, c.relative_deviation < 1e-12
    (True, True)
    """

    identified: ArmaFilter
    reference: ArmaFilter
    reference_name: str
    what: str
    match: bool
    tolerance: float
    dc_gain: tuple[float, float]
    nyquist_gain: tuple[float, float]
    poles: tuple[ComplexArray, ComplexArray]
    zeros: tuple[ComplexArray, ComplexArray]
    pole_distance: float
    zero_distance: float
    max_deviation: float
    relative_deviation: float
    deviation_frequency: float
    differences: list[str] = field(default_factory=list)
    keywords: KeywordMapping | None = None

    def summary(self) -> str:
        """A readable report: a verdict line, then one line per aspect.

        Returns
        -------
        str
            One line per aspect, the verdict (``MATCH`` or ``DIFFERENT``) first.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> from optfilters.identify import identify
        >>> c = identify("torch.optim.SGD", momentum=0.5).compare(ArmaFilter([1.0], [1.0, -0.9]))
        >>> print(c.summary().splitlines()[0])
        DIFFERENT: the identified filter differs from b=[1], a=[1, -0.9]
        """
        if self.match:
            head = (
                f"MATCH: the identified {self.what} equals {self.reference_name} "
                f"(max frequency-response deviation {self.relative_deviation:.3g} of its peak, "
                f"tolerance {self.tolerance:g})"
            )
        else:
            head = f"DIFFERENT: the identified {self.what} differs from {self.reference_name}"
        return "\n".join([head] + [f"  {line}" for line in self.differences])

    def __str__(self) -> str:
        return self.summary()

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON (non-finite numbers as None, roots as ``[re, im]``).

        Returns
        -------
        dict
            Both filters' coefficients, gains, poles and zeros (identified
            first), the distances and deviations, the differences, the
            keyword mapping and :meth:`summary`.
        """
        return jsonable(
            {
                "reference_name": self.reference_name,
                "what": self.what,
                "match": self.match,
                "tolerance": self.tolerance,
                "identified": {"b": self.identified.b.tolist(), "a": self.identified.a.tolist()},
                "reference": {"b": self.reference.b.tolist(), "a": self.reference.a.tolist()},
                "dc_gain": list(self.dc_gain),
                "nyquist_gain": list(self.nyquist_gain),
                "poles": [complex_pairs(self.poles[0]), complex_pairs(self.poles[1])],
                "zeros": [complex_pairs(self.zeros[0]), complex_pairs(self.zeros[1])],
                "pole_distance": self.pole_distance,
                "zero_distance": self.zero_distance,
                "max_deviation": self.max_deviation,
                "relative_deviation": self.relative_deviation,
                "deviation_frequency": self.deviation_frequency,
                "differences": list(self.differences),
                "keywords": None if self.keywords is None else self.keywords.as_dict(),
                "summary": self.summary(),
            }
        )


@dataclass(frozen=True)
class Identification:
    """What :func:`identify` measured about an optimizer.

    Attributes
    ----------
    optimizer : str
        The optimizer's name (dotted path).
    options : dict
        Constructor keywords used (``lr`` included).
    lr : float
        Learning rate the optimizer used; updates are divided by it.
    linear : bool
        Passed the linearity check (homogeneity and superposition).
    time_invariant : bool
        Passed the time-invariance check (delayed inputs give delayed outputs).
    b, a : numpy.ndarray or None
        The identified filter (the steady part after ``transient_steps``);
        None where no LTI model fits.
    poles, zeros : numpy.ndarray or None
        Of the identified filter.
    residual : float or None
        Relative output error of the fitted filter on the probes.
    orders : tuple of int or None
        ``(p, q)`` of the fit.
    notes : list of str
        What breaks linearity or time invariance, and other findings.
    visible : VisibleLinearPart or None
        The small-signal linear part, for optimizers without an LTI model.
    linearity, time_invariance : PropertyCheck
        The checks with their discrepancies and tolerances.
    transient_steps : int or None
        Steps at the start during which the rule is time-varying (0 when
        time-invariant; None when it never settles within the probes).
    parameter_dependent : bool
        The updates depend on the parameter value (weight decay).
    closure : bool
        ``step()`` needed a closure.
    settings : dict
        Probe settings (steps, seed, dtype, max_order, background, ...).
    user_options : dict
        The constructor keywords as the caller gave them (before ``lr`` was
        added), for keyword mapping in :meth:`compare`.
    layout : str
        ``"scalar"``, ``"matrix"`` or ``"sparse"`` (see :func:`probe`).
    shape : tuple of int
        Shape of the probed parameter.
    bla : BestLinearApproximation or None
        The best linear approximation under a Gaussian dither
        (:mod:`optfilters.dither`), for nonlinear optimizers.
    matrix : MatrixCheck or None
        :func:`optfilters.probes.matrix_check` (matrix layout).
    events : EventClock or None
        :func:`optfilters.probes.event_clock` (sparse layout).
    defaults : dict
        The constructor's keyword defaults (for keyword mapping).
    stage_errors : dict
        Optional stages (``"small-signal"``, ``"dither"``) that failed, with
        their errors.

    Examples
    --------
    >>> from optfilters.identify import identify
    >>> ident = identify("torch.optim.SGD", momentum=0.9, nesterov=True)
    >>> ident.linear, ident.time_invariant, ident.orders
    (True, True, (1, 1))
    >>> ident.b.round(9).tolist(), ident.a.round(9).tolist()
    ([1.9, -0.9], [1.0, -0.9])
    """

    optimizer: str
    options: Mapping[str, Any]
    lr: float
    linear: bool
    time_invariant: bool
    b: FloatArray | None
    a: FloatArray | None
    poles: ComplexArray | None
    zeros: ComplexArray | None
    residual: float | None
    orders: tuple[int, int] | None
    notes: list[str]
    visible: VisibleLinearPart | None
    linearity: PropertyCheck
    time_invariance: PropertyCheck
    transient_steps: int | None
    parameter_dependent: bool
    closure: bool
    settings: Mapping[str, Any] = field(default_factory=dict)
    user_options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    layout: str = "scalar"
    shape: tuple[int, ...] = (1,)
    bla: BestLinearApproximation | None = None
    matrix: MatrixCheck | None = None
    events: EventClock | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict, repr=False)
    stage_errors: Mapping[str, IdentificationError] = field(default_factory=dict, repr=False)

    @property
    def verdict(self) -> str:
        """One of :data:`VERDICTS`, from the measurements (see :meth:`verdict_reason`).

        ``"linear"``: linear and time-invariant, possibly after a start-up
        transient; ``"linear time-varying"``; ``"matrix"``: a matrix
        parameter whose update couples elements and rotates with the gradient;
        ``"sign-type"``: every update has the same magnitude, or a small
        perturbation of a constant gradient does not change the updates;
        ``"normalised"``: scale-invariant (degree 0) on the second half of
        the noise records; ``"nonlinear"``: none of these.

        Examples
        --------
        >>> from optfilters.identify import identify
        >>> identify("torch.optim.SGD", momentum=0.9).verdict
        'linear'
        >>> identify("torch.optim.RMSprop", max_background=1024, dither=None).verdict
        'normalised'
        """
        return self._verdict()[0]

    def verdict_reason(self) -> str:
        """The measurement behind :attr:`verdict`, in one line.

        Returns
        -------
        str
            The numbers behind the verdict: the linearity and
            time-invariance discrepancies, or the scale degree of a
            normalised optimizer, ...

        Examples
        --------
        >>> from optfilters.identify import identify
        >>> identify("torch.optim.SGD", momentum=0.5).verdict_reason()  # doctest: +ELLIPSIS
        'linearity discrepancy ..., time-invariance discrepancy 0'
        """
        return self._verdict()[1]

    def _verdict(self) -> tuple[str, str]:
        lin, ti = self.linearity, self.time_invariance
        if self.linear:
            head = f"linearity discrepancy {lin.discrepancy:.3g}"
            if self.time_invariant:
                return "linear", f"{head}, time-invariance discrepancy {ti.discrepancy:.3g}"
            if self.transient_steps is not None:
                return "linear", f"{head}, time-invariant after a {self.transient_steps}-step start-up transient"
            return "linear time-varying", f"{head}, time-invariance discrepancy {ti.discrepancy:.3g}"
        m = self.matrix
        if m is not None and m.rotation_equivariant and not m.elementwise:
            return "matrix", (
                f"a matrix map: couples elements ({m.coupling:.3g}), rotation-equivariant (discrepancy "
                f"{m.rotation_discrepancy:.3g}), cosine {m.polar_cosine:.3f} with the gradient's polar factor"
            )
        if lin.details.get("magnitude_independent"):
            return "sign-type", "every update on the noise probes has the same magnitude"
        if self.bla is not None and self.bla.sign_magnitude is not None:
            return "sign-type", f"{100 * self.bla.magnitude_share:.1f}% of the dither updates have one magnitude"
        degree = lin.details.get("scale_degree_late", lin.details.get("scale_degree", math.nan))
        part = self.visible
        if part is not None and _max_abs(part.response) == 0.0 and abs(degree) < 0.01:
            return "sign-type", "scale degree 0 and a small perturbation of a constant gradient changes no update"
        if isinstance(degree, float) and math.isfinite(degree) and abs(degree) < 0.01:
            return (
                "normalised",
                f"scale degree {degree:.2g} (doubling the gradients leaves the later updates unchanged)",
            )
        return "nonlinear", f"linearity discrepancy {lin.discrepancy:.3g}, scale degree {degree:.3g}"

    @property
    def is_lti(self) -> bool:
        """True when an LTI filter was identified (``b`` and ``a`` are set).

        Examples
        --------
        >>> from optfilters.identify import identify
        >>> identify("torch.optim.SGD").is_lti
        True
        """
        return self.b is not None and self.a is not None

    def to_filter(self) -> ArmaFilter:
        """The identified :class:`~optfilters.ArmaFilter`.

        Returns
        -------
        ArmaFilter
            The filter from gradient to update direction (per unit ``lr``),
            named after the optimizer.

        Raises
        ------
        IdentificationError
            When no LTI model fits (see :attr:`visible` for the small-signal part).

        Examples
        --------
        >>> from optfilters.identify import identify
        >>> identify("torch.optim.SGD", momentum=0.5).to_filter().a.round(12).tolist()
        [1.0, -0.5]
        """
        if self.b is None or self.a is None:
            raise IdentificationError(
                f"{self.optimizer} has no LTI filter (linear={self.linear}, time_invariant={self.time_invariant}); "
                "see .visible for its small-signal part"
            )
        return ArmaFilter(self.b, self.a, name=self.optimizer)

    def _comparable(self) -> tuple[ArmaFilter, str]:
        if self.is_lti:
            return self.to_filter(), "filter"
        if self.visible is not None and self.visible.filter is not None:
            return self.visible.filter, "small-signal part"
        if self.bla is not None and self.bla.filter is not None:
            return self.bla.filter, BLA_WHAT
        raise IdentificationError(
            f"{self.optimizer}: neither an LTI filter, a small-signal part nor a best linear approximation to compare"
        )

    def compare(
        self,
        reference: str | OptimizerModel | ArmaFilter | Identification,
        tol: float = 1e-6,
        n: int = 512,
        mapping: Mapping[str, str | Sequence[str]] | None = None,
    ) -> Comparison:
        """Compare with a catalogue model, an explicit filter or another identification.

        A catalogue name gets this optimizer's constructor keywords, given or
        default, through :func:`map_keywords` (``betas`` -> ``beta1``,
        ``beta2``; same names; ``mapping`` for the rest); the comparison lists
        what was mapped and what was not.  A model is identified through its
        reference executor with the same probes, seeds and lr, so that the
        comparison is like for like (first-step quirks, weight-decay feedback,
        small-signal parts, best linear approximations); an
        :class:`~optfilters.ArmaFilter` is compared as it is.  What is compared
        is the LTI filter, else the small-signal part, else the best linear
        approximation (whose tolerances widen by 4 combined standard errors);
        two small-signal parts match when their measured responses agree within
        ``tol`` (the ARMA fit of a nearly marginal response is ill-conditioned).

        Parameters
        ----------
        reference : str, OptimizerModel, ArmaFilter or Identification
            What to compare with.
        tol : float
            Relative tolerance on the frequency response.
        n : int
            Frequencies from 0 to 0.5 cycles/step.
        mapping : mapping, optional
            Constructor keyword -> catalogue hyperparameter name(s), for a
            catalogue reference (``{"momentum": ("beta1", "beta2")}``).

        Returns
        -------
        Comparison

        Raises
        ------
        IdentificationError
            When there is nothing comparable on either side or the reference is
            of the wrong type.
        UnknownNameError, InvalidHyperparameterError
            For an unknown catalogue name or a bad mapping.

        Examples
        --------
        >>> from optfilters.identify import identify
        >>> c = identify("torch.optim.SGD", momentum=0.9, nesterov=True).compare("nesterov")
        >>> c.match, round(c.dc_gain[1], 9)
        (True, 10.0)
        >>> c.keywords.mapped[0][:2]
        ('momentum', 'momentum')
        """
        tol = _check_float("tol", tol, 0.0, 1.0)
        n = _check_int("n", n, 2)
        flags: tuple[Identification, Identification] | None = None
        keywords: KeywordMapping | None = None
        reference_ident: Identification | None = None
        if mapping is not None and not isinstance(reference, str):
            raise IdentificationError("a keyword mapping applies to a catalogue name only")
        if isinstance(reference, str):
            # The probe's lr drives both sides: the constructor's lr is not a filter setting.
            given = {k: v for k, v in self.user_options.items() if k != "lr"}
            keywords = map_keywords(reference, given, {k: v for k, v in self.defaults.items() if k != "lr"}, mapping)
            model = get(keywords.reference, **keywords.kwargs)
            reference_ident = _identify_like(self, model)
            name = f"catalogue {model.name!r}"
        elif isinstance(reference, OptimizerModel):
            reference_ident = _identify_like(self, reference)
            name = f"model {reference.name!r}"
        elif isinstance(reference, Identification):
            reference_ident = reference
            name = reference.optimizer
        elif isinstance(reference, ArmaFilter):
            name = reference.name or f"b={_fmt(reference.b.tolist())}, a={_fmt(reference.a.tolist())}"
        else:
            raise IdentificationError(
                f"reference must be a catalogue name, an OptimizerModel, an ArmaFilter or an Identification, "
                f"got {reference!r}"
            )
        if reference_ident is not None:
            flags = (self, reference_ident)
            ref_filter, ref_what = reference_ident._comparable()
        else:
            assert isinstance(reference, ArmaFilter)
            ref_filter, ref_what = reference, "filter"
        mine, what = self._comparable()
        root_tol = None
        lag_match = None
        if what == BLA_WHAT and self.bla is not None:
            others = reference_ident.bla if reference_ident is not None and ref_what == BLA_WHAT else None
            tol, root_tol = _bla_tolerances(self.bla, others, ref_filter, tol)
            if others is not None:
                lag_match = self.bla.matches(others)
        comparison = _compare_filters(mine, what, ref_filter, ref_what, name, tol, n, flags, root_tol)
        match = comparison.match
        theirs = None if reference_ident is None else reference_ident.visible
        if what == ref_what == "small-signal part" and self.visible is not None and theirs is not None:
            # The measured responses decide: the ARMA fit of a nearly marginal response is ill-conditioned.
            k = min(self.visible.response.size, theirs.response.size)
            deviation = _relative(
                _max_abs(self.visible.response[:k] - theirs.response[:k]), _max_abs(theirs.response[:k])
            )
            agree = deviation <= tol and self.visible.background_steps == theirs.background_steps
            comparison.differences.append(
                f"measured small-signal responses {'agree' if agree else 'differ'}: max deviation {deviation:.3g} "
                f"of the peak over {k} steps (backgrounds {self.visible.background_steps} and "
                f"{theirs.background_steps} steps); they decide the match, not their ARMA fits"
            )
            structural = ("kind differs", "linear differs", "time-invariant differs", "start-up transient")
            match = agree and not any(d.startswith(structural) for d in comparison.differences)
        if lag_match is not None:
            comparison.differences.append(
                f"best linear approximations lag by lag: {'within' if lag_match else 'NOT within'} 4 combined "
                "standard errors"
            )
            match = match and lag_match
        if keywords is not None:
            comparison.differences.extend(keywords.describe())
        return dataclasses.replace(comparison, match=match, keywords=keywords)

    def summary(self) -> str:
        """A readable multi-line report.

        Returns
        -------
        str
            Several lines: what was probed, the linearity and time-invariance
            checks, the filter (or the small-signal part and the best linear
            approximation), the verdict and the notes.

        Examples
        --------
        >>> from optfilters.identify import identify
        >>> print(identify("torch.optim.SGD", momentum=0.9).summary().splitlines()[0])
        torch.optim.SGD(momentum=0.9, lr=1) probed at lr=1
        """
        lines = [f"{_call_text(self.optimizer, self.options)} probed at lr={self.lr:g}"]
        if self.layout != "scalar":
            shape = "x".join(str(v) for v in self.shape)
            kind = f"a {shape} matrix parameter" if self.layout == "matrix" else "sparse gradients"
            lines[0] += f" (with {kind})"
        for check in (self.linearity, self.time_invariance):
            verdict = "yes" if check.passed else "no"
            lines.append(
                f"{check.name}: {verdict} (discrepancy {check.discrepancy:.3g}, tolerance {check.tolerance:g})"
            )
        if self.is_lti:
            f = self.to_filter()
            assert self.orders is not None and self.residual is not None
            lines.append(
                f"filter: b = {_fmt([float(v) for v in f.b])}, a = {_fmt([float(v) for v in f.a])} "
                f"(orders p={self.orders[0]}, q={self.orders[1]}; output error {self.residual:.3g})"
            )
            lines.append(f"poles: {_fmt_roots(f.poles)}; zeros: {_fmt_roots(f.zeros)}")
            lines.append(f"DC gain {f.dc_gain:.6g}, Nyquist gain {f.nyquist_gain:.6g}, {f.stability}")
        else:
            lines.append("filter: none (no LTI model fits)")
            part = self.visible
            if part is not None and part.filter is not None:
                f = part.filter
                lines.append(
                    f"small-signal part after {part.background_steps} steps of gradient {part.background:g}: "
                    f"b = {_fmt([float(v) for v in f.b])}, a = {_fmt([float(v) for v in f.a])}"
                )
                lines.append(f"  poles: {_fmt_roots(f.poles)}; zeros: {_fmt_roots(f.zeros)}")
        if self.bla is not None:
            lines.extend(self.bla.summary().splitlines())
        lines.append(f"verdict: {self.verdict} ({self.verdict_reason()})")
        if self.notes:
            lines.append("notes:")
            lines.extend(f"  - {note}" for note in self.notes)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON: b/a/poles/zeros are None where no LTI model fits.

        Returns
        -------
        dict
            The settings, the verdicts and checks, the identified filter
            (``b``, ``a``, poles and zeros as ``[re, im]``, gains) and the
            optional stages' results; non-finite numbers as None.

        Examples
        --------
        >>> import json
        >>> from optfilters.identify import identify
        >>> d = identify("torch.optim.SGD", momentum=0.9).as_dict()
        >>> d["linear"], d["time_invariant"], [round(v, 9) for v in d["a"]]
        (True, True, [1.0, -0.9])
        >>> json.loads(json.dumps(d))["poles"][0][0] > 0.89
        True
        """
        f = self.to_filter() if self.is_lti else None
        return jsonable(
            {
                "optimizer": self.optimizer,
                "options": dict(self.options),
                "lr": self.lr,
                "linear": self.linear,
                "time_invariant": self.time_invariant,
                "transient_steps": self.transient_steps,
                "b": None if self.b is None else self.b.tolist(),
                "a": None if self.a is None else self.a.tolist(),
                "poles": None if self.poles is None else complex_pairs(self.poles),
                "zeros": None if self.zeros is None else complex_pairs(self.zeros),
                "orders": None if self.orders is None else list(self.orders),
                "residual": self.residual,
                "dc_gain": None if f is None else f.dc_gain,
                "nyquist_gain": None if f is None else f.nyquist_gain,
                "stability": None if f is None else f.stability,
                "parameter_dependent": self.parameter_dependent,
                "closure": self.closure,
                "linearity": self.linearity.as_dict(),
                "time_invariance": self.time_invariance.as_dict(),
                "visible": None if self.visible is None else self.visible.as_dict(),
                "bla": None if self.bla is None else self.bla.as_dict(),
                "matrix": None if self.matrix is None else self.matrix.as_dict(),
                "events": None if self.events is None else self.events.as_dict(),
                "layout": self.layout,
                "shape": list(self.shape),
                "verdict": self.verdict,
                "verdict_reason": self.verdict_reason(),
                "notes": list(self.notes),
                "settings": dict(self.settings),
            }
        )


# ----------------------------------------------------------------------------- comparison


def _match_roots(mine: ComplexArray, theirs: ComplexArray) -> float:
    if mine.size != theirs.size:
        return math.inf
    if mine.size == 0:
        return 0.0
    from scipy.optimize import linear_sum_assignment

    cost = np.abs(mine[:, None] - theirs[None, :])
    rows, cols = linear_sum_assignment(cost)
    return float(np.max(cost[rows, cols]))


def _close(x: float, y: float, tol: float) -> bool:
    if math.isinf(x) or math.isinf(y):
        return x == y
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return abs(x - y) <= tol * max(1.0, abs(y))


def _compare_filters(
    mine: ArmaFilter,
    what: str,
    ref: ArmaFilter,
    ref_what: str,
    name: str,
    tol: float,
    n: int,
    flags: tuple[Identification, Identification] | None,
    root_tol: float | None = None,
) -> Comparison:
    freqs = np.linspace(0.0, 0.5, n)
    z = np.exp(2j * np.pi * freqs)
    with np.errstate(all="ignore"):
        h_mine = mine.evaluate(z)
        h_ref = ref.evaluate(z)
        finite = np.isfinite(h_mine) & np.isfinite(h_ref)
        deviation = np.where(finite, np.abs(h_mine - h_ref), 0.0)
    peak = float(np.max(np.abs(h_ref[finite]))) if np.any(finite) else 0.0
    k = int(np.argmax(deviation))
    max_dev = float(deviation[k])
    rel_dev = _relative(max_dev, peak)
    one_sided_inf = bool(np.any(np.isfinite(h_mine) != np.isfinite(h_ref)))
    root_tol = max(1e-6, math.sqrt(tol)) if root_tol is None else root_tol
    pole_d = _match_roots(mine.poles, ref.poles)
    zero_d = _match_roots(mine.zeros, ref.zeros)
    differences: list[str] = []
    ok = rel_dev <= tol and not one_sided_inf
    if what != ref_what:
        differences.append(f"kind differs: identified {what} vs reference {ref_what}")
        ok = False
    if flags is not None:
        a, b = flags
        for label, mine_flag, ref_flag in (
            ("linear", a.linear, b.linear),
            ("time-invariant", a.time_invariant, b.time_invariant),
            ("start-up transient steps", a.transient_steps, b.transient_steps),
        ):
            if mine_flag != ref_flag:
                differences.append(f"{label} differs: identified {mine_flag} vs reference {ref_flag}")
                ok = False
    for label, x, y in (("DC gain", mine.dc_gain, ref.dc_gain), ("Nyquist gain", mine.nyquist_gain, ref.nyquist_gain)):
        if _close(x, y, tol):
            differences.append(f"{label} agrees: {x:.6g}")
        else:
            differences.append(f"{label} differs: identified {x:.6g} vs reference {y:.6g} (by {x - y:+.6g})")
    for label, distance, roots in (
        ("poles", pole_d, (mine.poles, ref.poles)),
        ("zeros", zero_d, (mine.zeros, ref.zeros)),
    ):
        if distance <= root_tol:
            differences.append(f"{label} agree: {_fmt_roots(roots[0])} (max distance {distance:.3g})")
        else:
            differences.append(f"{label} differ: identified {_fmt_roots(roots[0])} vs reference {_fmt_roots(roots[1])}")
    if rel_dev <= tol and not one_sided_inf:
        differences.append(f"frequency response agrees: max deviation {max_dev:.3g} ({rel_dev:.3g} of the peak)")
    else:
        differences.append(
            f"frequency response differs: max deviation {max_dev:.6g} at f = {freqs[k]:.4g} cycles/step "
            f"({100 * rel_dev:.3g}% of the reference's peak {peak:.6g})"
        )
    return Comparison(
        identified=mine,
        reference=ref,
        reference_name=name,
        what=what,
        match=ok,
        tolerance=tol,
        dc_gain=(mine.dc_gain, ref.dc_gain),
        nyquist_gain=(mine.nyquist_gain, ref.nyquist_gain),
        poles=(mine.poles, ref.poles),
        zeros=(mine.zeros, ref.zeros),
        pole_distance=pole_d,
        zero_distance=zero_d,
        max_deviation=max_dev,
        relative_deviation=rel_dev,
        deviation_frequency=float(freqs[k]),
        differences=differences,
    )


def catalogue_model(name: str, options: Mapping[str, Any] | None = None, strict: bool = True) -> OptimizerModel:
    """The catalogue model named ``name`` with an optimizer's constructor keywords.

    ``betas`` becomes ``beta1``, ``beta2`` (...); torch's implementation
    switches (``foreach``, ``fused``, ``capturable``, ``differentiable``) and
    keywords that the entry fixes (``nesterov=True`` for ``nesterov``) are
    dropped; anything else must be a hyperparameter of the entry, unless
    ``strict`` is False, when other keywords are left out
    (:func:`map_keywords` says which).

    Parameters
    ----------
    name : str
        Catalogue name or alias.
    options : mapping, optional
        Constructor keywords.
    strict : bool
        Refuse keywords that the entry does not take.

    Returns
    -------
    OptimizerModel

    Raises
    ------
    UnknownNameError, InvalidHyperparameterError
        For an unknown name, a keyword the entry does not take (when strict)
        or an out-of-range value.

    Examples
    --------
    >>> from optfilters.identify import catalogue_model
    >>> catalogue_model("adam", {"betas": (0.8, 0.99), "foreach": None}).hyperparameters["beta1"]
    0.8
    >>> catalogue_model("nesterov", {"momentum": 0.5, "nesterov": True}).name
    'nesterov'
    >>> catalogue_model("sgd", {"momentum": 0.5, "buggy": True}, strict=False).hyperparameters["momentum"]
    0.5
    """
    keywords = map_keywords(name, options)
    if strict and keywords.unmapped:
        entry = CATALOGUE[keywords.reference]
        raise InvalidHyperparameterError(f"{entry.name} has no hyperparameter {keywords.unmapped[0]!r}")
    return get(keywords.reference, **keywords.kwargs)


@dataclass(frozen=True)
class KeywordMapping:
    """How an optimizer's constructor keywords map onto a catalogue entry's hyperparameters.

    Attributes
    ----------
    reference : str
        The catalogue entry's canonical name.
    kwargs : dict
        Catalogue hyperparameter -> value, ready for :func:`optfilters.get`.
    mapped : tuple of tuple
        ``(keyword, hyperparameter, value, source)`` per mapped keyword;
        ``source`` is ``"given"``, ``"default"`` (the constructor's default),
        ``"mapping"`` (an explicit mapping) or says ``synonym``.
    unmapped : tuple of str
        Keywords the entry has no hyperparameter for (left out).
    unmapped_values : dict
        Their values.
    switches : tuple of str
        torch implementation switches (``foreach``, ``fused``, ...), left out.
    fixed : tuple of str
        Keywords whose value the entry fixes (``nesterov=True`` for ``nesterov``).

    Examples
    --------
    >>> from optfilters.identify import map_keywords
    >>> m = map_keywords("lion", {"betas": (0.9, 0.99), "weight_decouple": True})
    >>> m.kwargs, m.unmapped
    ({'beta1': 0.9, 'beta2': 0.99}, ('weight_decouple',))
    """

    reference: str
    kwargs: Mapping[str, Any]
    mapped: tuple[tuple[str, str, Any, str], ...]
    unmapped: tuple[str, ...]
    switches: tuple[str, ...]
    fixed: tuple[str, ...]
    unmapped_values: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> list[str]:
        """One line on what was mapped, one on what was not (when anything was not).

        Returns
        -------
        list of str
            One or two lines.

        Examples
        --------
        >>> from optfilters.identify import map_keywords
        >>> for line in map_keywords("sgd", {"momentum": 0.9, "buggy": True}).describe():
        ...     print(line)
        keywords mapped onto catalogue 'sgd': momentum -> momentum = 0.9
        not mapped, left out: buggy=True (catalogue 'sgd' has no such setting)
        """
        pairs = ", ".join(
            f"{key} -> {hp} = {_fmt(value)}{'' if source == 'given' else f' ({source})'}"
            for key, hp, value, source in self.mapped
        )
        lines = [f"keywords mapped onto catalogue {self.reference!r}: {pairs or 'none'}"]
        if self.unmapped:
            values = ", ".join(
                f"{k}={_fmt(self.unmapped_values[k])}" if k in self.unmapped_values else k for k in self.unmapped
            )
            lines.append(f"not mapped, left out: {values} (catalogue {self.reference!r} has no such setting)")
        return lines

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON.

        Returns
        -------
        dict
            ``reference``, ``kwargs``, ``mapped`` (one dict per keyword:
            ``keyword``, ``hyperparameter``, ``value``, ``source``),
            ``unmapped``, ``unmapped_values``, ``switches``, ``fixed``.

        Examples
        --------
        >>> from optfilters.identify import map_keywords
        >>> map_keywords("adam", {"betas": (0.8, 0.9)}).as_dict()["kwargs"]
        {'beta1': 0.8, 'beta2': 0.9}
        """
        return jsonable(
            {
                "reference": self.reference,
                "kwargs": dict(self.kwargs),
                "mapped": [
                    {"keyword": k, "hyperparameter": h, "value": v, "source": src} for k, h, v, src in self.mapped
                ],
                "unmapped": list(self.unmapped),
                "unmapped_values": dict(self.unmapped_values),
                "switches": list(self.switches),
                "fixed": list(self.fixed),
            }
        )


def map_keywords(
    name: str,
    options: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
    mapping: Mapping[str, str | Sequence[str]] | None = None,
) -> KeywordMapping:
    """Map constructor keywords (given and default) onto a catalogue entry's hyperparameters.

    Rules, in order: an explicit ``mapping`` (one keyword to one or more
    hyperparameters; a tuple value is spread over several); torch's
    implementation switches are left out; a tuple under a plural name spreads
    over numbered names (``betas`` -> ``beta1``, ``beta2``; ``nus`` ->
    ``nu1``, ``nu2``); a keyword with a hyperparameter's name maps to it, else
    one of its :data:`SYNONYMS` (``momentum`` -> ``beta``, ``derivative`` ->
    ``kd``); a keyword that the entry fixes to the same value (``nesterov=True``) is
    dropped; anything else is *unmapped*.  Given keywords override defaults.
    A default that the entry refuses (out of range) is unmapped too; a given
    one raises.

    Parameters
    ----------
    name : str
        Catalogue name or alias.
    options : mapping, optional
        Keywords given to the constructor.
    defaults : mapping, optional
        The constructor's defaults (:func:`constructor_defaults`).
    mapping : mapping, optional
        Keyword -> hyperparameter name or names.

    Returns
    -------
    KeywordMapping

    Raises
    ------
    UnknownNameError
        For an unknown catalogue name.
    InvalidHyperparameterError
        For a mapping onto a name the entry does not have, or a given value
        the entry refuses.

    Examples
    --------
    >>> from optfilters.identify import map_keywords
    >>> m = map_keywords("lion", {"momentum": 0.9}, mapping={"momentum": ("beta1", "beta2")})
    >>> m.kwargs
    {'beta1': 0.9, 'beta2': 0.9}
    """
    entry = CATALOGUE[resolve_name(name)]
    known = [hp.name for hp in entry.hyperparameters]
    explicit: dict[str, tuple[str, ...]] = {}
    for key, targets in (mapping or {}).items():
        names = (targets,) if isinstance(targets, str) else tuple(targets)
        for t in names:
            if t not in known:
                raise InvalidHyperparameterError(
                    f"catalogue {entry.name!r} has no hyperparameter {t!r} (mapped from {key!r}); it has: "
                    f"{', '.join(known)}"
                )
        explicit[str(key)] = names
    sources: dict[str, tuple[Any, str]] = {}
    for key, value in (defaults or {}).items():
        sources[key] = (value, "default")
    for key, value in (options or {}).items():
        sources[key] = (value, "given")
    while True:
        result = _map(entry, known, sources, explicit)
        try:
            entry.validate(dict(result.kwargs))
        except InvalidHyperparameterError as exc:
            culprit = next(
                (k.split("[")[0] for k, hp, _, src in result.mapped if src == "default" and f"{hp} " in f"{exc} "),
                None,
            )
            if culprit is None:
                raise
            sources[culprit] = (sources[culprit][0], "refused")
            continue
        return result


def _map(
    entry: Any, known: Sequence[str], sources: Mapping[str, tuple[Any, str]], explicit: Mapping[str, tuple[str, ...]]
) -> KeywordMapping:
    kwargs: dict[str, Any] = {}
    mapped: list[tuple[str, str, Any, str]] = []
    unmapped: list[str] = []
    switches: list[str] = []
    fixed: list[str] = []
    sources_extra: dict[str, Any] = {}
    # Defaults first, so that given keywords override them.
    order = sorted(sources, key=lambda k: sources[k][1] == "given")
    for key in order:
        value, source = sources[key]
        if source == "refused":
            unmapped.append(key)
            continue
        if key in explicit:
            targets = explicit[key]
            spread = isinstance(value, (tuple, list)) and len(value) == len(targets) and len(targets) > 1
            for i, t in enumerate(targets):
                v = value[i] if spread else value
                kwargs[t] = v
                mapped.append((key if not spread else f"{key}[{i}]", t, v, "mapping"))
            continue
        if key in TORCH_ONLY_OPTIONS:
            switches.append(key)
            continue
        stem = key[:-1]
        if key.endswith("s") and key not in known and f"{stem}1" in known and isinstance(value, (tuple, list)):
            for i, item in enumerate(value, start=1):  # betas -> beta1, beta2; nus -> nu1, nu2
                if f"{stem}{i}" in known:
                    kwargs[f"{stem}{i}"] = item
                    mapped.append((f"{key}[{i - 1}]", f"{stem}{i}", item, source))
                else:
                    unmapped.append(f"{key}[{i - 1}]")
                    sources_extra[f"{key}[{i - 1}]"] = item
            continue
        if key in known:
            kwargs[key] = value
            mapped.append((key, key, value, source))
            continue
        synonym = next((n for n in SYNONYMS.get(key, ()) if n in known and n not in sources), None)
        if synonym is not None:
            kwargs[synonym] = value
            mapped.append((key, synonym, value, "synonym" if source == "given" else f"{source}, synonym"))
            continue
        if key in entry.torch_fixed and entry.torch_fixed[key] == value:
            fixed.append(key)
            continue
        unmapped.append(key)
    # Given keywords listed first, in the order given.
    mapped.sort(key=lambda m: m[3] == "default")
    values = {k: sources[k][0] if k in sources else sources_extra[k] for k in unmapped}
    return KeywordMapping(entry.name, kwargs, tuple(mapped), tuple(unmapped), tuple(switches), tuple(fixed), values)


def _identify_like(ident: Identification, model: OptimizerModel) -> Identification:
    settings = dict(ident.settings)
    settings.pop("dtype", None)
    settings.pop("mode", None)
    settings["layout"] = "scalar"
    return identify(model, lr=ident.lr, **settings)


#: Constructor keywords -> catalogue names with the same meaning, tried when the entry lacks the keyword itself
#: (pytorch-optimizer's QHM calls its EMA coefficient ``momentum``, its PID the gains ``derivative`` and ``integral``).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "momentum": ("beta",),
    "beta": ("momentum",),
    "derivative": ("kd",),
    "integral": ("ki",),
    "proportional": ("kp",),
}

#: What a comparison calls a best linear approximation.
BLA_WHAT = "best linear approximation"


def _bla_tolerances(
    bla: BestLinearApproximation, other: BestLinearApproximation | None, ref: ArmaFilter, tol: float
) -> tuple[float, float]:
    """Tolerances widened by 4 combined standard errors: (relative frequency response, root distance)."""
    window = bla.window
    se2 = bla.standard_error[:window] ** 2
    roots = [*bla.pole_errors.tolist(), *bla.zero_errors.tolist()]
    if other is not None:
        m = min(window, other.standard_error.size)
        se2 = se2[:m] + other.standard_error[:m] ** 2
        roots += [*other.pole_errors.tolist(), *other.zero_errors.tolist()]
    with np.errstate(all="ignore"):
        grid = np.abs(ref.evaluate(np.exp(2j * np.pi * np.linspace(0.0, 0.5, 64))))
    peak = float(np.max(grid[np.isfinite(grid)], initial=0.0))
    spread = 4.0 * math.sqrt(float(np.sum(se2)))
    finite = [r for r in roots if math.isfinite(r)]
    root_spread = 4.0 * math.sqrt(2.0) * max(finite, default=0.0)
    return max(tol, _relative(spread, peak) if peak > 0 else tol), max(1e-6, math.sqrt(tol), root_spread)


# ----------------------------------------------------------------------------- identification


def _probe_plan(n: int, seed: int) -> tuple[dict[str, FloatArray], FloatArray, FloatArray]:
    rng = np.random.default_rng(seed)
    x1 = rng.standard_normal(n)
    x2 = rng.standard_normal(n)
    plan: dict[str, FloatArray] = {}
    for s in IMPULSE_STARTS:
        e = np.zeros(n)
        e[s - 1] = 1.0
        plan[f"impulse@{s}"] = e
    for c in STEP_SIZES:
        plan[f"step*{c:g}"] = np.full(n, c)
    plan["noise1"] = x1
    plan["noise2"] = x2
    plan["noise1+noise2"] = x1 + x2
    for c in NOISE_SCALES:
        plan[f"noise1*{c:g}"] = c * x1
    for s in NOISE_STARTS[1:]:
        d = np.zeros(n)
        d[s - 1 :] = x1[: n - s + 1]
        plan[f"noise1@{s}"] = d
    return plan, x1, x2


def _record_at(y: dict[str, FloatArray], kind: str, s: int) -> FloatArray:
    if kind == "impulse":
        return y[f"impulse@{s}"]
    return y["noise1"] if s == 1 else y[f"noise1@{s}"]


def _shift_discrepancy(y: dict[str, FloatArray], kind: str, starts: Sequence[int], n: int) -> dict[int, float]:
    """Relative discrepancy of each record (start s) from the first (start starts[0]), aligned."""
    m = n - max(IMPULSE_STARTS) + 1
    s0 = starts[0]
    ref = _record_at(y, kind, s0)
    ref_part = ref[s0 - 1 : s0 - 1 + m]
    scale = _max_abs(ref_part)
    out: dict[int, float] = {}
    for s in starts[1:]:
        rec = _record_at(y, kind, s)
        diff = max(_max_abs(rec[s - 1 : s - 1 + m] - ref_part), _max_abs(rec[s0 - 1 : s - 1]))
        out[s] = _relative(diff, scale)
    return out


def _transient(y: dict[str, FloatArray], n: int, tol: float) -> tuple[int | None, float, dict[str, Any]]:
    """Start-up transient length, the time-invariance discrepancy and its details."""
    details: dict[str, Any] = {}
    imp = _shift_discrepancy(y, "impulse", IMPULSE_STARTS, n)
    noise = _shift_discrepancy(y, "noise", NOISE_STARTS, n)
    for s, d in imp.items():
        details[f"impulse at step {s} vs step 1"] = d
    for s, d in noise.items():
        details[f"noise from step {s} vs step 1"] = d
    discrepancy = max([*imp.values(), *noise.values()])
    transient: int | None = None
    for s0 in IMPULSE_STARTS[:-1]:
        later_imp = [s for s in IMPULSE_STARTS if s >= s0]
        later_noise = [s for s in NOISE_STARTS if s >= s0]
        worst = max(_shift_discrepancy(y, "impulse", later_imp, n).values())
        if len(later_noise) >= 2:
            worst = max(worst, *_shift_discrepancy(y, "noise", later_noise, n).values())
        if worst <= tol:
            transient = s0 - 1
            break
    return transient, discrepancy, details


def _linearity(y: dict[str, FloatArray], tol: float) -> tuple[PropertyCheck, list[str], bool]:
    base = y["noise1"]
    scale1 = _max_abs(base)
    details: dict[str, Any] = {}
    worst = 0.0
    for c in NOISE_SCALES:
        d = _relative(_max_abs(y[f"noise1*{c:g}"] - c * base), abs(c) * scale1)
        details[f"noise x {c:g}"] = d
        worst = max(worst, d)
    step1 = y["step*1"]
    for c in STEP_SIZES[1:]:
        d = _relative(_max_abs(y[f"step*{c:g}"] - c * step1), abs(c) * _max_abs(step1))
        details[f"step of size {c:g}"] = d
        worst = max(worst, d)
    sup_scale = max(_max_abs(y["noise1+noise2"]), scale1, _max_abs(y["noise2"]))
    superposition = _relative(_max_abs(y["noise1+noise2"] - base - y["noise2"]), sup_scale)
    details["superposition"] = superposition
    worst = max(worst, superposition)
    homogeneity = max(v for k, v in details.items() if k != "superposition")
    rms1 = float(np.sqrt(np.mean(base**2)))
    rms2 = float(np.sqrt(np.mean(y["noise1*2"] ** 2)))
    degree = math.log2(rms2 / rms1) if rms1 > 0.0 and rms2 > 0.0 else math.nan
    details["scale_degree"] = degree
    half = base.size // 2
    late1 = float(np.sqrt(np.mean(base[half:] ** 2)))
    late2 = float(np.sqrt(np.mean(y["noise1*2"][half:] ** 2)))
    details["scale_degree_late"] = math.log2(late2 / late1) if late1 > 0.0 and late2 > 0.0 else math.nan
    odd = _relative(_max_abs(y["noise1*-1"] + base), scale1)
    details["odd_symmetry"] = odd
    moved = any(_max_abs(v) > 0.0 for v in y.values())
    passed = worst <= tol
    notes: list[str] = []
    if not moved:
        notes.append("the optimizer never moved the parameter on any probe (zero updates)")
    if passed:
        notes.append(
            f"linear: scaled inputs (x2, x-1, x1e3, x1e-3, steps of 1, 3, -0.5) give scaled updates and "
            f"x1 + x2 gives the sum of the updates (discrepancy {worst:.3g}, tolerance {tol:g})"
        )
        return PropertyCheck("linearity", True, worst, tol, details), notes, moved
    notes.append(
        f"nonlinear: homogeneity discrepancy {homogeneity:.3g}, superposition discrepancy {superposition:.3g} "
        f"(tolerance {tol:g})"
    )
    if math.isfinite(degree) and abs(degree) < 0.01:
        notes.append(
            f"scale-invariant: doubling every gradient scales the updates by 2^{degree:.2g} (degree 0); "
            "hypothesis: a normaliser, a sign or another map of degree 0"
        )
    elif math.isfinite(degree) and abs(degree - 1.0) > 0.01:
        notes.append(f"partly scale-dependent: doubling every gradient scales the updates by 2^{degree:.3g}")
    elif math.isfinite(degree) and superposition > tol:
        notes.append(
            f"homogeneous of degree 1 (2^{degree:.3g} on doubling) but not additive: the response to x1 + x2 is not "
            f"the sum (superposition discrepancy {superposition:.3g})"
        )
    magnitudes = np.concatenate([np.abs(y[k]) for k in ("noise1", "noise2", "noise1+noise2", "noise1*2")])
    magnitudes = magnitudes[magnitudes > 0.0]
    details["magnitude_independent"] = bool(
        magnitudes.size >= 8 and (magnitudes.max() - magnitudes.min()) <= 1e-9 * magnitudes.max()
    )
    if details["magnitude_independent"]:
        notes.append(
            f"magnitude-independent updates: every update has size {magnitudes.max():.6g} whatever the gradient; "
            "hypothesis: a sign nonlinearity (as in signSGD or Lion)"
        )
    if odd > tol:
        notes.append(f"not odd: negating the gradients does not negate the updates (discrepancy {odd:.3g})")
    return PropertyCheck("linearity", False, worst, tol, details), notes, moved


def identify(
    optimizer: Any,
    /,
    *,
    options: Mapping[str, Any] | None = None,
    lr: float | None = None,
    steps: int = 128,
    seed: int = 0,
    max_order: int = 6,
    tol: float | None = None,
    background: float = 1.0,
    perturbation: float = 1e-4,
    window: int = 256,
    max_background: int = 16384,
    drift_tol: float = 1e-6,
    small_signal: bool = True,
    dtype: str = "float64",
    layout: str = "auto",
    dither: float | None = 1.0,
    dither_records: int = 8,
    dither_steps: int = 2048,
    time_limit: float | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    **constructor_options: Any,
) -> Identification:
    """Measure the gradient filter inside an optimizer by probing it.

    Parameters
    ----------
    optimizer : str, class, callable or OptimizerModel
        Dotted path (``"torch.optim.SGD"``), optimizer class, factory
        ``f(params, **options)``, or a catalogue model (probed through its
        numpy reference executor).
    options : mapping, optional
        Constructor keywords whose names clash with this function's own.
    lr : float, optional
        Learning rate (default 1.0 when the constructor takes ``lr``); the
        updates are divided by the learning rate the optimizer reports.
    steps : int
        Length of each probe, in [48, ``MAX_PROBE_STEPS`` = 1 000 000].
    seed : int
        Seed of the white-noise probes, in [0, 2**32 - 1].
    max_order : int
        Largest ARMA order ``p`` and ``q`` tried.
    tol : float, optional
        Relative tolerance of the linearity and time-invariance checks and of
        the order selection (1e-9 for float64, 1e-4 for float32).
    background : float
        Constant gradient of the small-signal measurement.
    perturbation : float
        Size of its impulse perturbation, relative to ``|background|``.
    window : int
        Length of the small-signal response (at most 1 000 000).
    max_background : int
        Longest background before the perturbation (doubling from 512), at most 1 000 000.
    drift_tol : float
        The background length stops doubling when the response changes less.
    small_signal : bool
        Measure the small-signal part of optimizers without an LTI model.
    dtype : {"float64", "float32"}
        Parameter dtype.
    layout : {"auto", "scalar", "matrix", "sparse"}
        How the gradient is presented (:func:`probe`): ``"auto"`` takes a
        1-element parameter, else a matrix (Muon), else sparse gradients
        (SparseAdam); a matrix layout adds :func:`optfilters.probes.matrix_check`,
        a sparse one :func:`optfilters.probes.event_clock`.
    dither : float or None
        Standard deviation of the Gaussian dither of the best linear
        approximation (:mod:`optfilters.dither`) measured for nonlinear
        optimizers; None or 0 skips it.
    dither_records, dither_steps : int
        Records and steps per record of the dither probe (32 elements each);
        records in [2, 256], steps in [64, 1 000 000].
    time_limit : float, optional
        Seconds after which probing stops: the core probes raise
        :class:`ProbeTimeout`; the optional ones (small-signal, dither, matrix,
        sparse) are left out with a note.
    progress : callable, optional
        Called as ``progress(phase, done, total)`` as the probes run
        (``"probes"``: probes done of all; ``"small-signal background"``: steps
        of constant gradient so far, of at most ``max_background``).
    **constructor_options
        Constructor keywords (``momentum=0.9``, ``betas=(0.9, 0.999)``).

    Returns
    -------
    Identification

    Raises
    ------
    IdentificationError
        For a bad path, a non-optimizer class, a failing constructor or step,
        or a non-finite update.

    Notes
    -----
    Linearity: the responses to white noise ``x1`` scaled by 2, -1, 1e3 and
    1e-3 and to steps of sizes 3 and -0.5 are compared with the scaled
    responses to ``x1`` and to a unit step, and the response to ``x1 + x2``
    with the sum (superposition); the discrepancy is the largest of these
    relative to the peak update.  Time invariance: impulses at steps 2, 3, 5,
    9, 17 and ``x1`` started at steps 9 and 17 are compared with the records
    starting at step 1, shifted.  When the records starting at step ``s0 > 1``
    and later agree with each other, the optimizer is time-varying only during
    the first ``s0 - 1`` steps (``transient_steps``; torch SGD with dampening
    has 1): its steady filter is fitted on the rows ``t >= s0 + max_order`` of
    the white-noise records (x1, x2, x1 + x2, x1 from steps 9 and 17), where
    the recursion is time-invariant whatever the start-up state was.  The fit
    must reproduce every record that starts at ``s0`` or later from rest
    (output error ``residual``, at most 1e-6 for float64).  Nonlinear
    optimizers also get :attr:`Identification.bla` from ``dither_records``
    fresh instances driven by Gaussian gradients (at 1e-3 times the lr when
    the updates depend on the parameter), and a verdict
    (:attr:`Identification.verdict`).

    Examples
    --------
    >>> from optfilters.identify import identify
    >>> ident = identify("torch.optim.SGD", momentum=0.9, dampening=0.5)
    >>> ident.linear, ident.time_invariant, ident.transient_steps
    (True, False, 1)
    >>> ident.b.round(9).tolist(), ident.a.round(9).tolist()
    ([0.5], [1.0, -0.9])
    >>> adam = identify("torch.optim.Adam", max_background=1024)
    >>> adam.linear, adam.time_invariant, adam.b is None
    (False, False, True)
    """
    steps = _check_int("steps", steps, 48, MAX_PROBE_STEPS)  # bounds checked before any probe is allocated
    seed = _check_int("seed", seed, 0, MAX_SEED)
    max_order = _check_int("max_order", max_order, 0, 16)
    window = _check_int("window", window, 16, MAX_PROBE_STEPS)
    max_background = _check_int("max_background", max_background, 16, MAX_PROBE_STEPS)
    background = _check_float("background", background, -math.inf, math.inf, low_open=True)
    if background == 0.0:
        raise IdentificationError("background must be a non-zero number, got 0")
    perturbation = _check_float("perturbation", perturbation, 0.0, 0.1)
    drift_tol = _check_float("drift_tol", drift_tol, 0.0, 1.0)
    if dither is not None:
        dither = _check_float("dither", dither, 0.0, low_open=False)
    dither_records = _check_int("dither_records", dither_records, 2, 256)
    dither_steps = _check_int("dither_steps", dither_steps, 64, MAX_PROBE_STEPS)
    with foreign_code():
        target = _make_target(optimizer, options, constructor_options, lr, dtype, layout, time_limit)
        with one_torch_thread():
            return _identify(
                target,
                steps=steps,
                seed=seed,
                max_order=max_order,
                tol=tol,
                background=background,
                perturbation=perturbation,
                window=window,
                max_background=max_background,
                drift_tol=drift_tol,
                small_signal=small_signal,
                dither=dither,
                dither_records=dither_records,
                dither_steps=dither_steps,
                progress=progress,
            )


@contextlib.contextmanager
def foreign_code() -> Iterator[None]:
    """Run someone else's optimizer code in isolation: its ``print`` goes to stderr, its ``sys.exit`` is an error.

    The optimizer's module, constructor and ``step()`` run inside; output
    they print is captured and written to stderr after a success (dropped
    after an error), so it cannot corrupt a caller's stdout (``optfilters
    identify --json``), and a ``SystemExit`` they raise becomes an
    :class:`IdentificationError` instead of ending the caller.

    Yields
    ------
    None
        The block runs with ``sys.stdout`` redirected to a buffer.

    Raises
    ------
    IdentificationError
        If the block raises :class:`SystemExit`.

    Examples
    --------
    >>> from optfilters.identify import foreign_code
    >>> with foreign_code():
    ...     print("chatter")   # written to stderr
    >>> try:
    ...     with foreign_code():
    ...         raise SystemExit(3)
    ... except IdentificationError as exc:
    ...     print(exc)
    the optimizer's code called sys.exit(3) while being imported, built or probed
    """
    captured = io.StringIO()
    with (
        user_code("the optimizer's code", "while being imported, built or probed", IdentificationError),
        contextlib.redirect_stdout(captured),
    ):
        yield
    text = captured.getvalue()
    if text:  # after a success only: an error stays one line
        sys.stderr.write(text if text.endswith("\n") else text + "\n")


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread inside the block when torch is imported (probes are small; threads only contend).

    Examples
    --------
    >>> from optfilters.identify import one_torch_thread
    >>> with one_torch_thread():
    ...     pass
    """
    torch: Any = sys.modules.get("torch")  # set only when torch is in use: a catalogue model needs no torch
    if torch is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _identify(
    target: _Target,
    *,
    steps: int,
    seed: int,
    max_order: int,
    tol: float | None,
    background: float,
    perturbation: float,
    window: int,
    max_background: int,
    drift_tol: float,
    small_signal: bool,
    dither: float | None,
    dither_records: int,
    dither_steps: int,
    progress: Callable[[str, int, int], None] | None = None,
) -> Identification:
    default_tol, fit_tol = _DTYPE_TOLERANCES[target.dtype]
    tol = default_tol if tol is None else _check_float("tol", tol, 0.0, 1.0)
    notes = list(target.notes)

    if target.calls_per_step > 1.0 and steps > 32:
        notes.append(f"probes shortened to 32 steps (from {steps}): step() evaluates the closure several times")
        steps = 32
    plan, x1, _ = _probe_plan(steps, seed)
    report = progress if progress is not None else _silent
    y = {}
    for done, (name, x) in enumerate(plan.items(), start=1):
        try:
            y[name] = _run(target, x)
        except NonFiniteUpdate as exc:
            raise NonFiniteUpdate(f"{exc} on probe {name!r}", exc.step, exc.gradient, name) from None
        report("probes", done, len(plan))

    linearity, lin_notes, moved = _linearity(y, tol)
    notes.extend(lin_notes)
    linear = linearity.passed

    transient, ti_discrepancy, ti_details = _transient(y, steps, tol)
    ti_details["transient_steps"] = transient
    time_invariant = ti_discrepancy <= tol
    time_invariance = PropertyCheck("time invariance", time_invariant, ti_discrepancy, tol, ti_details)
    firsts = [float(y[f"impulse@{s}"][s - 1]) for s in IMPULSE_STARTS]
    ti_details["first_updates"] = firsts
    ti_details["step_first_update"] = float(y["step*1"][0])
    if time_invariant:
        notes.append(
            f"time-invariant: impulses at steps 2, 3, 5, 9, 17 and noise from steps 9, 17 give the step-1 "
            f"responses delayed (discrepancy {ti_discrepancy:.3g}, tolerance {tol:g})"
        )
    elif transient is not None:
        notes.append(
            f"time-varying during the first {transient} step(s) only: inputs from step {transient + 1} on give "
            f"delayed copies of each other, but an input at step 1 does not (discrepancy {ti_discrepancy:.3g}); "
            "hypothesis: a start-up rule such as a state initialised from the first gradient (torch SGD's momentum "
            "buffer = g_1, which skips the 1 - dampening factor)"
        )
    else:
        notes.append(
            f"time-varying: an impulse gives a different response depending on when it arrives (discrepancy "
            f"{ti_discrepancy:.3g}, tolerance {tol:g}; first update per unit impulse at steps "
            f"{', '.join(str(s) for s in IMPULSE_STARTS)}: {', '.join(f'{v:.6g}' for v in firsts)}); hypothesis: a "
            "step-count dependent rule such as bias correction, a built-in schedule or a warm-up"
        )

    theta_one = _run(target, x1, theta0=1.0)
    dependence = _relative(_max_abs(theta_one - y["noise1"]), _max_abs(y["noise1"]))
    parameter_dependent = dependence > tol
    if parameter_dependent:
        notes.append(
            f"the updates depend on the parameter value (noise from theta = 1 vs theta = 0: discrepancy "
            f"{dependence:.3g}); the measured map is the closed loop from gradient to update at lr = "
            f"{target.lr:g}, starting from theta = 0; hypothesis: weight decay or another term in theta"
        )

    b = a = poles = zeros = None
    residual: float | None = None
    orders: tuple[int, int] | None = None
    if linear and transient is not None:
        names = list(plan)
        # White noise excites every mode: the noise records suffice for the fit; all records check it.
        noise = [k for k in names if k.startswith("noise") and "*" not in k]
        start = 0 if transient == 0 else transient + max_order
        fit = fit_arma([plan[k] for k in noise], [y[k] for k in noise], max_order, start=start, tol=tol)
        candidate = fit.to_filter()
        checks = [k for k in names if transient == 0 or _starts_at(k) > transient]
        err = max(_max_abs(candidate.filter(plan[k]) - y[k]) for k in checks)
        residual = _relative(err, max(_max_abs(y[k]) for k in checks))
        if residual <= fit_tol:
            b, a, orders = candidate.b, candidate.a, fit.orders
            poles, zeros = candidate.poles, candidate.zeros
            if transient:
                first = float(y["impulse@1"][0])
                notes.append(
                    f"steady filter fitted on the recursion from step {transient + max_order + 1} on; an input at "
                    f"step 1 gives a first update of {first:.6g} per unit gradient where the steady filter gives "
                    f"{float(candidate.impulse_response(1)[0]):.6g}"
                )
            notes.append(
                f"ARMA fit: orders p={fit.orders[0]}, q={fit.orders[1]} (simplest with equation error <= "
                f"max({tol:g}, 10 x the smallest)); output error on the probes {residual:.3g}"
            )
        else:
            notes.append(
                f"no ARMA model up to order {max_order} reproduces the probes (best output error {residual:.3g} > "
                f"{fit_tol:g}); try a larger max_order"
            )
            residual = None
    elif linear and moved:
        notes.append(
            f"no LTI model: no start step from which the delayed records agree (time-invariance discrepancy "
            f"{ti_discrepancy:.3g})"
        )

    visible = None
    bla = None
    matrix = None
    events = None
    stopped = False
    stage_errors: dict[str, IdentificationError] = {}
    if target.calls_per_step > 1.0 and (small_signal or dither):
        notes.append(
            f"step() evaluates the closure {target.calls_per_step:g} times per step (a line search or inner "
            "iterations): the small-signal and dither probes, whose cost grows with that, were left out"
        )
        small_signal, dither = False, None
    if b is None and moved and small_signal:
        try:
            visible = _small_signal(
                target,
                background=background,
                perturbation=perturbation * abs(background),
                window=window,
                max_background=max_background,
                drift_tol=drift_tol,
                max_order=max_order,
                progress=report,
            )
            notes.extend(visible.notes)
        except ProbeTimeout as exc:
            notes.append(f"small-signal part left out: {exc}")
            stopped = True
        except IdentificationError as exc:
            notes.append(f"small-signal part failed: {exc}")
            stage_errors["small-signal"] = exc
    if not linear and moved and dither and not stopped:
        from .dither import _probe_bla

        dither_lr = target.lr * (1e-3 if parameter_dependent else 1.0)
        try:
            bla = _probe_bla(
                target,
                lr=dither_lr,
                dither=dither,
                records=dither_records,
                steps=dither_steps,
                elements=32,
                burn_in=None,
                seed=seed + 1000,
            )
        except ProbeTimeout as exc:
            notes.append(f"dither probe left out: {exc}")
            stopped = True
        except IdentificationError as exc:
            notes.append(f"dither probe failed: {exc}")
            stage_errors["dither"] = exc
        if bla is not None and parameter_dependent:
            bla.notes.append(
                f"recorded at lr = {dither_lr:g} (1e-3 x the probe lr) so that the parameter-dependent part of the "
                "update stays small"
            )
    if target.layout == "matrix" and not stopped:
        from .probes import _matrix_check

        try:
            matrix = _matrix_check(target, seed)
            notes.extend(f"matrix: {note}" for note in matrix.notes)
        except ProbeTimeout as exc:
            notes.append(f"matrix check left out: {exc}")
            stopped = True
        except IdentificationError as exc:
            notes.append(f"matrix check failed: {exc}")
    if target.layout == "sparse" and not stopped:
        from .probes import _event_clock

        try:
            events = _event_clock(target, seed=seed)
            notes.extend(f"sparse: {note}" for note in events.notes)
        except ProbeTimeout as exc:
            notes.append(f"sparse-gradient check left out: {exc}")
        except IdentificationError as exc:
            notes.append(f"sparse-gradient check failed: {exc}")

    settings = {
        "steps": steps,
        "seed": seed,
        "max_order": max_order,
        "tol": tol,
        "background": background,
        "perturbation": perturbation,
        "window": window,
        "max_background": max_background,
        "drift_tol": drift_tol,
        "small_signal": small_signal,
        "dtype": target.dtype,
        "layout": target.layout,
        "mode": target.mode,
        "dither": dither,
        "dither_records": dither_records,
        "dither_steps": dither_steps,
    }
    return Identification(
        optimizer=target.name,
        options=dict(target.options),
        lr=target.lr,
        linear=linear,
        time_invariant=time_invariant,
        b=b,
        a=a,
        poles=poles,
        zeros=zeros,
        residual=residual,
        orders=orders,
        notes=notes,
        visible=visible,
        linearity=linearity,
        time_invariance=time_invariance,
        transient_steps=transient,
        parameter_dependent=parameter_dependent,
        closure=target.closure,
        settings=settings,
        user_options=dict(target.user_options),
        layout=target.layout,
        shape=target.shape,
        bla=bla,
        matrix=matrix,
        events=events,
        defaults=constructor_defaults(target.factory) if target.factory is not None else {},
        stage_errors=stage_errors,
    )


def _starts_at(name: str) -> int:
    """Step at which a probe's input starts (1 unless delayed)."""
    if "@" in name:
        return int(name.split("@")[1])
    return 1


# ----------------------------------------------------------------------------- small-signal part


def _small_signal(
    target: _Target,
    *,
    background: float,
    perturbation: float,
    window: int,
    max_background: int,
    drift_tol: float,
    max_order: int,
    progress: Callable[[str, int, int], None] | None = None,
) -> VisibleLinearPart:
    report = progress if progress is not None else _silent
    notes: list[str] = []
    base = target.driver(0.0)
    last = 0.0
    # Background lengths double up to max_background: ..., max/4, max/2, max (the first at least 512).
    checkpoints = [max_background]
    while checkpoints[0] // 2 >= max(512, 2 * window):
        checkpoints.insert(0, checkpoints[0] // 2)

    def advance(to: int) -> None:
        nonlocal last
        while len(base.history) < to:
            last = base.step(background)

    # Check that a copy continues exactly as the original does (on the way to the first checkpoint).
    advance(max(checkpoints[0] - window, 0))
    fork = "native"
    twin: _Driver | None
    try:
        twin = base.fork("native")
    except Exception:  # foreign state_dict / deepcopy support
        twin = None
    if twin is not None:
        mine = [base.step(background) for _ in range(window)]
        theirs = [twin.step(background) for _ in range(window)]
        last = mine[-1]
        if _max_abs(np.subtract(mine, theirs)) > 1e-12 * max(_max_abs(mine), 1e-300):
            twin = None
    if twin is None:
        fork = "replay"
        checkpoints = [w for w in checkpoints if w <= 4096] or checkpoints[:1]
        notes.append("the optimizer's state could not be copied natively; copies were made by replaying its inputs")

    previous: FloatArray | None = None
    previous_w: int | None = None
    compared_w: int | None = None
    drift: float | None = None
    exponent: float | None = None
    pulse_plus = np.full(window, background)
    pulse_plus[0] += perturbation
    pulse_minus = np.full(window, background)
    pulse_minus[0] -= perturbation
    for checkpoint in checkpoints:
        advance(checkpoint)
        w = len(base.history)
        report("small-signal background", w, checkpoints[-1])
        plus, minus = base.fork(fork), base.fork(fork)
        up = np.array([plus.step(float(g)) for g in pulse_plus])
        down = np.array([minus.step(float(g)) for g in pulse_minus])
        response = (up - down) / (2.0 * perturbation)
        if previous is not None:
            compared_w = previous_w
            drift = _relative(_max_abs(response - previous), max(_max_abs(response), _max_abs(previous)))
            peak, prev_peak = _max_abs(response), _max_abs(previous)
            if peak > 0.0 and prev_peak > 0.0 and previous_w:
                exponent = math.log(peak / prev_peak) / math.log(w / previous_w)
            if drift <= drift_tol:
                break
        previous, previous_w = response, w

    # Small steps on the same background: for a linear small-signal system, the running sum of the impulse response.
    plus, minus = base.fork(fork), base.fork(fork)
    up = np.array([plus.step(background + perturbation) for _ in range(window)])
    down = np.array([minus.step(background - perturbation) for _ in range(window)])
    step_response = (up - down) / (2.0 * perturbation)
    step_discrepancy = _relative(_max_abs(step_response - np.cumsum(response)), _max_abs(step_response))
    if step_discrepancy > 1e-3:
        notes.append(
            f"the small-signal step response is not the running sum of the impulse response (discrepancy "
            f"{step_discrepancy:.3g}): the linearisation still changes within the {window}-step window"
        )

    scale = max(abs(last), 1.0)
    components: tuple[ArmaFilter, ...] = ()
    fitted: ArmaFilter | None = None
    orders: tuple[int, int] | None = None
    residual: float | None = None
    if _max_abs(response) <= 1e-12 * scale:
        notes.append(
            f"small-signal response zero: perturbing the gradient by {perturbation:.3g} around {background:g} "
            "does not change the updates; hypothesis: a sign or another piecewise-constant map"
        )
    else:
        impulse = np.zeros(window)
        impulse[0] = 1.0
        fit = fit_arma(impulse, response, max_order, tol=1e-5)
        candidate = fit.to_filter(name="small-signal")
        residual = _relative(_max_abs(candidate.filter(impulse) - response), _max_abs(response))
        if residual <= 1e-3:
            fitted, orders = candidate, fit.orders
            components = _components(candidate)
        notes.append(_describe_small_signal(background, w, fitted, components, residual, drift, drift_tol, exponent))
    return VisibleLinearPart(
        background=background,
        perturbation=perturbation,
        background_steps=w,
        background_update=last,
        response=response,
        step_response=step_response,
        step_discrepancy=step_discrepancy,
        drift=drift,
        previous_background_steps=compared_w,
        gain_exponent=exponent,
        filter=fitted,
        orders=orders,
        residual=residual,
        components=components,
        fork=fork,
        notes=notes,
    )


def _components(f: ArmaFilter) -> tuple[ArmaFilter, ...]:
    """Parallel branches of ``f`` (partial fractions), largest response energy first."""
    from scipy import signal

    poles = f.poles
    if poles.size > 1:
        gaps = np.abs(poles[:, None] - poles[None, :]) + np.eye(poles.size)
        if np.min(gaps) < 1e-6:
            return (f,)
    try:
        r, p, k = signal.residuez(f.b, f.a)
    except (ValueError, np.linalg.LinAlgError):
        return (f,)
    branches: list[ArmaFilter] = []
    if np.size(k) and np.any(np.abs(k) > 0.0):
        branches.append(ArmaFilter(np.real(np.atleast_1d(k)), [1.0], name="direct"))
    used = np.zeros(len(p), dtype=bool)
    for i, (ri, pi) in enumerate(zip(r, p, strict=True)):
        if used[i]:
            continue
        used[i] = True
        if abs(pi.imag) <= 1e-12:
            branches.append(ArmaFilter([float(ri.real)], [1.0, -float(pi.real)], name=f"pole {pi.real:.6g}"))
            continue
        partner = next((j for j in range(i + 1, len(p)) if not used[j] and abs(p[j] - np.conj(pi)) < 1e-8), None)
        if partner is not None:
            used[partner] = True
        branches.append(
            ArmaFilter(
                [2.0 * ri.real, -2.0 * (ri * np.conj(pi)).real],
                [1.0, -2.0 * pi.real, abs(pi) ** 2],
                name=f"poles {pi.real:.6g}±{abs(pi.imag):.6g}j",
            )
        )

    def energy(g: ArmaFilter) -> float:
        if not g.is_stable and not g.is_fir:
            return math.inf
        return float(np.sum(g.impulse_response(4096) ** 2))

    return tuple(sorted(branches, key=energy, reverse=True))


def _describe_small_signal(
    background: float,
    w: int,
    fitted: ArmaFilter | None,
    components: tuple[ArmaFilter, ...],
    residual: float,
    drift: float | None,
    drift_tol: float,
    exponent: float | None,
) -> str:
    head = f"small-signal part after {w} steps of gradient {background:g}"
    if fitted is None:
        return f"{head}: no ARMA model up to the maximum order fits it (output error {residual:.3g})"
    parts = [
        f"{head}: b = {_fmt([float(v) for v in fitted.b])}, a = {_fmt([float(v) for v in fitted.a])}, "
        f"poles {_fmt_roots(fitted.poles)}, zeros {_fmt_roots(fitted.zeros)}"
    ]
    branches = []
    for c in components:
        if c.is_fir:
            branches.append(f"direct {_fmt([float(v) for v in c.b])}")
        elif c.a.size == 2:
            pole = -float(c.a[1])
            if math.isfinite(c.dc_gain):
                branches.append(f"{c.dc_gain:.6g} x EMA({pole:.6g})")
            else:
                branches.append(f"{float(c.b[0]):.6g} / (1 - {pole:.6g} z^-1)")
        else:
            branches.append(f"resonant pair {_fmt_roots(c.poles)}")
    if branches:
        parts.append("branches, largest first: " + " + ".join(branches))
    with np.errstate(all="ignore"):
        grid = np.abs(fitted.evaluate(np.exp(2j * np.pi * np.linspace(0.0, 0.5, 64))))
    peak = float(np.max(grid[np.isfinite(grid)], initial=0.0))
    if math.isfinite(fitted.dc_gain) and abs(fitted.dc_gain) <= 1e-3 * max(peak, 1e-300):
        parts.append(
            "DC gain ~0 (a zero at z = 1): a lasting change of the gradient level does not change the update; "
            "hypothesis: normalisation by a running estimate of the gradient scale"
        )
    if drift is not None and drift > drift_tol:
        head = f"no t -> infinity limit reached: the response still changed by {drift:.3g} when the background doubled"
        if exponent is not None and abs(exponent) > 0.05:
            parts.append(
                f"{head}, its peak scaling like steps^{exponent:.2f} as the background lengthens; hypothesis: a "
                "gain that keeps changing with the step count (a growing accumulator or a decaying step size)"
            )
        else:
            parts.append(
                f"{head}; hypothesis: a slow transient such as bias correction with beta near 1 (raise max_background)"
            )
    return "; ".join(parts)
