"""Sphinx configuration of the optfilters documentation (built offline, warnings as errors: sphinx-build -W)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

project = "optfilters"
author = "the optfilters developers"
copyright = "the optfilters developers"
release = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_click",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_generated", "gallery/README.rst"]
templates_path: list[str] = []
html_static_path = ["_static"]
html_theme = "alabaster"
html_theme_options = {"description": "optimizers as filters on the gradient sequence", "fixed_sidebar": True}

# The API reference: numpydoc renders the docstrings; no member lists of its own (autosummary pages would
# duplicate them) and no links out (the build is offline).
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_typehints = "none"
autodoc_member_order = "bysource"
autosummary_generate = False

myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

sphinx_gallery_conf = {
    "examples_dirs": "gallery",
    "gallery_dirs": "auto_gallery",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "plot_gallery": "True",
    "abort_on_example_error": True,
    "reset_modules": ("matplotlib",),
    "show_memory": False,
    "show_signature": False,
}


def _escape_rst(app: object, ctx: object, lines: list[str]) -> None:
    """Click's help is plain text: ``|H|`` and ``*`` are not reStructuredText substitutions or emphasis."""
    for i, line in enumerate(lines):
        lines[i] = line.replace("|", r"\|").replace("*", r"\*")


def _plot_function_line(app: object, what: str, name: str, obj: object, options: object, lines: list[str]) -> None:
    """A result class's ``.plot()`` is inherited (display.Plottable): say which optfilters.plot function draws it."""
    from optfilters.display import Plottable

    if what == "class" and isinstance(obj, type) and issubclass(obj, Plottable) and obj is not Plottable:
        drawn_by = f":func:`optfilters.plot.{obj._plot_function}`"
        lines.extend(
            ["", f"``plot(ax=None, **kwargs)`` draws it with {drawn_by} (:class:`~optfilters.display.Plottable`)."]
        )


def setup(app: object) -> None:
    # priority 600: after numpydoc (500) has rendered the sections, so the line comes last, outside Examples.
    app.connect("autodoc-process-docstring", _plot_function_line, priority=600)  # type: ignore[attr-defined]
    for event in ("description", "options", "arguments", "epilog"):  # not usage: a literal block
        app.connect(f"sphinx-click-process-{event}", _escape_rst)  # type: ignore[attr-defined]


# The catalogue page's list is generated from the catalogue (one place to add an optimizer: its entry).
from optfilters.catalogue import catalogue_docs  # noqa: E402

_GENERATED = Path(__file__).resolve().parent / "_generated"
_GENERATED.mkdir(exist_ok=True)
(_GENERATED / "catalogue_list.rst").write_text(catalogue_docs(), encoding="utf-8")
