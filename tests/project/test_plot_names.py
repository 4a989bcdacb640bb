"""Plot functions are named ``<what>_plot`` and no plot function shares its name with a computation.

python-control 0.10's convention (``bode_plot``, ``nyquist_plot``, ``root_locus_plot``): a name means one
thing across the package, so ``from optfilters.margins import root_locus`` and ``from optfilters.plot import
root_locus_plot`` live side by side without aliasing either.  The public names are found by walking every
public module of the package (no part of its dotted name starts with ``_``), ``optfilters.torch`` included.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import optfilters

pytest.importorskip("matplotlib")


def _public_modules() -> list[ModuleType]:
    names = ["optfilters"] + [
        info.name
        for info in pkgutil.walk_packages(optfilters.__path__, "optfilters.")
        if not any(part.startswith("_") for part in info.name.split("."))
    ]
    return [importlib.import_module(name) for name in names]


def _public_names(module: ModuleType) -> set[str]:
    """What ``module`` exports: its ``__all__``, else every name bound in it without a leading ``_``."""
    exported = getattr(module, "__all__", None)
    if exported is None:
        exported = [name for name in vars(module) if not name.startswith("_")]
    return set(exported)


def _plot_functions() -> dict[str, object]:
    """The public functions of optfilters.plot (by name), defined there, whether or not ``__all__`` lists them."""
    plot = importlib.import_module("optfilters.plot")
    return {
        name: obj
        for name, obj in vars(plot).items()
        if not name.startswith("_") and inspect.isfunction(obj) and obj.__module__ == plot.__name__
    }


def test_every_public_plot_function_is_exported_and_named_what_plot() -> None:
    plot = importlib.import_module("optfilters.plot")
    functions = _plot_functions()
    drawing = {name for name, f in functions.items() if inspect.signature(f).return_annotation == "PlotResult"}
    # Every public function draws, except the style context manager.
    assert set(functions) - drawing == {"style"}
    assert {"bode_plot", "root_locus_plot", "atlas_plot", "trajectories_plot"} <= drawing
    assert sorted(name for name in drawing if not name.endswith("_plot")) == []
    assert sorted(set(functions) - set(plot.__all__)) == []


def test_no_public_name_of_plot_is_a_public_name_elsewhere_in_the_package() -> None:
    modules = _public_modules()
    elsewhere: dict[str, list[str]] = {}
    for module in modules:
        if module.__name__ == "optfilters.plot":
            continue
        names = _public_names(module) | {module.__name__.rsplit(".", 1)[-1]}  # a module's own name is public too
        for name in names:
            elsewhere.setdefault(name, []).append(module.__name__)
    assert len(modules) > 30  # the walk found the package (not one module that happened to import)
    assert {"root_locus", "margins", "stability_map", "expected_loss"} <= set(elsewhere)  # computations it must see
    plot = importlib.import_module("optfilters.plot")
    ours = _public_names(plot) | set(_plot_functions())
    clashes = {name: elsewhere[name] for name in sorted(ours) if name in elsewhere}
    assert clashes == {}
