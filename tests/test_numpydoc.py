"""numpydoc validation of every public object: Parameters, Returns and Raises sections where they apply.

Checked with :func:`numpydoc.validate.validate` (codes ``GL08`` no docstring,
``PR01`` a parameter not documented, ``PR02`` an unknown parameter documented,
``RT01`` no Returns section, ``GL06`` an unknown section, ``GL07`` sections out
of numpydoc's order) over every class and function in the ``__all__``
of the public modules, plus ``RS01`` (ours): a function whose own body raises
has no Raises section.  Result classes (dataclasses) may document their fields
under Attributes instead of Parameters.

What is still missing is listed, explicitly, in ``numpydoc_allowlist.txt``
next to this file (one ``qualified.name CODE`` a line).  The list may only
shrink: a new gap fails, and so does an entry that has been fixed (remove it).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from pathlib import Path

import pytest
from numpydoc.docscrape import ClassDoc, FunctionDoc
from numpydoc.validate import validate

PUBLIC_MODULES = (
    "optfilters",
    "optfilters.analysis",
    "optfilters.audit",
    "optfilters.batch_size",
    "optfilters.catalogue",
    "optfilters.closed_loop",
    "optfilters.describing_function",
    "optfilters.display",
    "optfilters.dither",
    "optfilters.errors",
    "optfilters.explore",
    "optfilters.filters",
    "optfilters.gains",
    "optfilters.hyperparameters",
    "optfilters.identify",
    "optfilters.iqc",
    "optfilters.large_signal",
    "optfilters.margins",
    "optfilters.model",
    "optfilters.network",
    "optfilters.noisy_quadratic",
    "optfilters.observe",
    "optfilters.plot",
    "optfilters.probes",
    "optfilters.program",
    "optfilters.stages",
    "optfilters.table",
    "optfilters.thresholds",
    "optfilters.torch",
    "optfilters.trajectory",
    "optfilters.user_models",
)
CODES = {"GL06", "GL07", "GL08", "PR01", "PR02", "RT01"}
ALLOWLIST = Path(__file__).resolve().parents[1] / "tests/numpydoc_allowlist.txt"


def _public_objects() -> dict[str, object]:
    found: dict[int, tuple[str, object]] = {}
    for module_name in PUBLIC_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:  # optional parts (none today)
            continue
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                found.setdefault(id(obj), (f"{obj.__module__}.{obj.__qualname__}", obj))
    return dict(sorted(found.values()))


def _own_raises(obj: object) -> bool:
    """The function's own body (not nested functions) has a ``raise`` with an exception."""
    try:
        source = textwrap.dedent(inspect.getsource(obj))  # type: ignore[arg-type]
    except (OSError, TypeError):
        return False
    tree = ast.parse(source).body[0]
    stack = list(ast.iter_child_nodes(tree))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, ast.Raise) and node.exc is not None:
            return True
        stack.extend(ast.iter_child_nodes(node))
    return False


def _gaps(path: str, obj: object) -> set[str]:
    codes = set()
    for code, message in validate(path)["errors"]:
        if code == "PR01" and all(name.startswith("_") for name in re.findall(r"'(\w+)'", message)):
            continue  # private parameters (``_zpk``) are not part of the documented signature
        if code in CODES:
            codes.add(code)
    if inspect.isclass(obj):
        codes.discard("RT01")
        if issubclass(obj, BaseException):
            codes.discard("PR01")
        if "PR01" in codes:
            doc = ClassDoc(obj)
            documented = {
                part.strip()
                for item in [*doc["Parameters"], *doc["Attributes"]]
                for part in item.name.split(":")[0].split(",")
            }
            try:
                params = inspect.signature(obj).parameters.values()
            except (TypeError, ValueError):
                params = []  # type: ignore[assignment]
            if all(
                p.name in documented or p.name.startswith("_")
                for p in params
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            ):
                codes.discard("PR01")
    elif _own_raises(obj) and not FunctionDoc(obj)["Raises"]:  # type: ignore[arg-type]
        codes.add("RS01")
    return codes


def _allowed() -> set[tuple[str, str]]:
    out = set()
    for line in ALLOWLIST.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, code = line.split()
            out.add((name, code))
    return out


OBJECTS = _public_objects()


def test_the_check_sees_the_public_surface() -> None:
    assert len(OBJECTS) > 250
    assert "optfilters.analysis.frequency_response" in OBJECTS
    assert "optfilters.torch.optimizer.FilterOptimizer" in OBJECTS


def test_the_check_catches_a_missing_section() -> None:
    def undocumented(x: float) -> float:
        """Twice ``x``."""
        if x < 0:
            raise ValueError("x must be >= 0")
        return 2 * x

    assert _own_raises(undocumented) and not FunctionDoc(undocumented)["Raises"]


@pytest.mark.parametrize("path", list(OBJECTS))
def test_numpydoc_sections(path: str) -> None:
    gaps = _gaps(path, OBJECTS[path])
    allowed = {code for name, code in _allowed() if name == path}
    assert not gaps - allowed, f"{path}: numpydoc gaps {sorted(gaps - allowed)} (document them)"
    assert not allowed - gaps, f"{path}: {sorted(allowed - gaps)} fixed; remove it from {ALLOWLIST.name}"


def test_the_allowlist_names_public_objects_only() -> None:
    assert {name for name, _ in _allowed()} <= set(OBJECTS)
