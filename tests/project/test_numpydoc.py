"""numpydoc validation of every public object: Parameters, Returns and Raises sections where they apply.

What is checked
    Every public module (found by walking the ``optfilters`` package, the
    bridge ``optfilters.torch`` included; a module is public when no part of
    its dotted name starts with ``_``), every class and function in its
    ``__all__``, and every public method (name without a leading ``_``;
    functions, classmethods and staticmethods, not properties) DEFINED in such
    a class.  An object is named by where it is defined
    (``obj.__module__ + "." + obj.__qualname__``), so a re-export is checked
    once.

The inheritance rule
    An override whose own docstring has no numpydoc section (Parameters,
    Returns, Raises, Yields), or no docstring, and whose parameters have the
    same names and kinds as a documented method of the same name in a base
    class (the nearest in the MRO that defines one with sections) inherits
    that method's documentation and is not checked again: document the
    protocol's base methods (``Stage.emit``, ``Gain.value``, ...) fully and let
    overrides keep a one-line summary, or give them full sections where they
    differ.  An override with other parameters is checked on its own.

The codes
    :func:`numpydoc.validate.validate` reports ``GL08`` no docstring, ``PR01`` a
    parameter not documented (private ``_x`` parameters exempt), ``PR02`` an
    unknown parameter documented, ``RT01`` no Returns section (functions and
    methods), ``GL06`` an unknown section and ``GL07`` sections out of
    numpydoc's order; ours is ``RS01``: a function whose own body raises (not
    its nested functions) has no Raises section.  Classes may document their
    constructor's parameters (a dataclass's fields) under Attributes instead
    of Parameters; exceptions need not document theirs.

The allowlist
    What is still missing is listed in ``numpydoc_allowlist.txt`` next to this
    file (one ``qualified.name CODE`` a line).  The list may only shrink: a
    new gap fails, and so does an entry that has been fixed (remove it).
    Regenerate it from the tree (after a documentation sweep, never to hide a
    new gap) with::

        python tests/project/test_numpydoc.py --write-allowlist

    and print the gaps of some modules (``--gaps optfilters.stages ...``)
    to see what is left there.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from numpydoc.docscrape import ClassDoc, FunctionDoc
from numpydoc.validate import get_doc_object, validate

CODES = {"GL06", "GL07", "GL08", "PR01", "PR02", "RT01"}
ALLOWLIST = Path(__file__).resolve().parents[2] / "tests/project/numpydoc_allowlist.txt"
_SECTIONS = re.compile(r"^\s*(Parameters|Returns|Raises|Yields)\s*\n\s*-{3,}\s*$", re.M)
_HEADER = """\
# numpydoc gaps still open (tests/project/test_numpydoc.py): one "qualified.name CODE" a line; the list may only shrink.
#
# GL08: no docstring.  PR01: a parameter (or a result class's field) is not documented under
# Parameters/Attributes.  PR02: an unknown parameter is documented.  RT01: no Returns section.
# RS01: the body raises but there is no Raises section.  GL06/GL07: unknown or misordered sections.
# Written by `python tests/project/test_numpydoc.py --write-allowlist`:\n# {summary}.  Fix one, delete its line.
"""


# ----------------------------------------------------------------------------- what is checked


def public_modules() -> list[str]:
    """Every public module of the package, the package itself first."""
    import optfilters

    names = ["optfilters"]
    for info in pkgutil.walk_packages(optfilters.__path__, "optfilters."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


def has_sections(doc: str | None) -> bool:
    """True when the docstring has a Parameters, Returns, Raises or Yields section."""
    return bool(doc) and _SECTIONS.search(inspect.cleandoc(doc or "")) is not None


def _parameters(fn: Any) -> list[tuple[str, Any]] | None:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    return [(p.name, p.kind) for p in params]


def documented_base(cls: type, name: str, fn: Any) -> Any | None:
    """The documented base method that ``cls.name`` (the function ``fn``) inherits its documentation from.

    None when ``fn`` has sections of its own, or when the nearest base that
    defines ``name`` with sections takes other parameters.
    """
    if has_sections(fn.__doc__):
        return None
    for base in cls.__mro__[1:]:
        if name not in vars(base):
            continue
        candidate = getattr(vars(base)[name], "__func__", vars(base)[name])
        if inspect.isfunction(candidate) and has_sections(candidate.__doc__):
            same = _parameters(candidate) == _parameters(fn)
            return candidate if same else None
    return None


def methods(cls: type, qualname: str) -> dict[str, Any]:
    """The public methods defined in ``cls`` that are checked (not inheriting their documentation), by path."""
    out: dict[str, Any] = {}
    for name, value in vars(cls).items():
        if name.startswith("_") or isinstance(value, property):
            continue
        fn = getattr(value, "__func__", value)
        if not inspect.isfunction(fn) or documented_base(cls, name, fn) is not None:
            continue
        out[f"{qualname}.{name}"] = fn
    return out


def public_objects(modules: list[str] | None = None) -> dict[str, Any]:
    """Every checked object by its qualified name (see the module docstring)."""
    found: dict[str, Any] = {}
    for module_name in modules if modules is not None else public_modules():
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            path = f"{obj.__module__}.{obj.__qualname__}"
            if path in found:
                continue
            found[path] = obj
            if inspect.isclass(obj):
                found.update(methods(obj, path))
    return dict(sorted(found.items()))


# ----------------------------------------------------------------------------- the check


def own_raises(obj: object) -> bool:
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


def gaps(obj: object) -> set[str]:
    """The numpydoc codes ``obj`` fails (see the module docstring)."""
    codes = set()
    for code, message in validate(get_doc_object(obj))["errors"]:
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
    elif own_raises(obj) and not FunctionDoc(obj)["Raises"]:  # type: ignore[arg-type]
        codes.add("RS01")
    return codes


def all_gaps(objects: dict[str, Any]) -> list[tuple[str, str]]:
    """Every ``(path, code)`` gap of ``objects``, sorted."""
    return sorted((path, code) for path, obj in objects.items() for code in gaps(obj))


def _allowed() -> set[tuple[str, str]]:
    out = set()
    for line in ALLOWLIST.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, code = line.split()
            out.add((name, code))
    return out


def write_allowlist() -> int:
    """Write every gap of the tree to the allowlist; returns how many."""
    objects = public_objects()
    found = all_gaps(objects)
    counts = Counter(code for _, code in found)
    summary = (
        f"{len(found)} gaps ("
        + ", ".join(f"{code} {n}" for code, n in sorted(counts.items()))
        + f") in {len({path for path, _ in found})} of {len(objects)} checked objects"
        if found
        else f"0 gaps in {len(objects)} checked objects"
    )
    lines = "".join(f"{path} {code}\n" for path, code in found)
    ALLOWLIST.write_text(_HEADER.format(summary=summary) + lines, encoding="utf-8")
    return len(found)


# ----------------------------------------------------------------------------- the tests

OBJECTS = public_objects()


def test_the_check_sees_the_public_surface() -> None:
    modules = public_modules()
    assert {"optfilters.stages", "optfilters.torch", "optfilters.torch.optimizer"} <= set(modules)
    assert not any(part.startswith("_") for name in modules for part in name.split("."))
    assert len(OBJECTS) > 600
    assert "optfilters.analysis.frequency_response" in OBJECTS
    assert "optfilters.torch.optimizer.FilterOptimizer" in OBJECTS
    assert "optfilters.torch.optimizer.FilterOptimizer.step" in OBJECTS  # a method
    assert "optfilters.stages.Stage.emit" in OBJECTS  # a protocol base method
    assert "optfilters.filters.ArmaFilter.ema" in OBJECTS  # a classmethod


def test_the_check_catches_a_missing_section() -> None:
    def undocumented(x: float) -> float:
        """Twice ``x``."""
        if x < 0:
            raise ValueError("x must be >= 0")
        return 2 * x

    assert {"PR01", "RT01", "RS01"} <= gaps(undocumented)


class _Base:
    """A protocol base class (for the tests below)."""

    def step(self, x: float) -> float:
        """One step.

        Parameters
        ----------
        x : float
            The input.

        Returns
        -------
        float
            The output.
        """
        return x

    def other(self, x: float) -> float:
        """Another step, undocumented sections."""
        return x


class _Kind(_Base):
    """A kind overriding the base's methods."""

    def step(self, x: float) -> float:
        """Twice the input (inherits the base's sections)."""
        return 2 * x

    def other(self, x: float) -> float:
        """The base has no sections to inherit."""
        return x

    def scaled(self, x: float, k: float) -> float:
        """A new method without sections."""
        return k * x


class _Different(_Base):
    """A kind whose override takes other parameters."""

    def step(self, x: float, k: float = 1.0) -> float:  # type: ignore[override]
        """The base's sections do not describe ``k``."""
        return k * x


def test_the_check_catches_a_method_gap() -> None:
    checked = methods(_Kind, "tests._Kind")
    assert "tests._Kind.scaled" in checked and "tests._Kind.other" in checked
    assert {"PR01", "RT01"} <= gaps(checked["tests._Kind.scaled"])
    assert {"PR01", "RT01"} <= gaps(checked["tests._Kind.other"])
    assert gaps(_Base.step) == set()


def test_an_override_inherits_the_documented_base_method() -> None:
    assert documented_base(_Kind, "step", _Kind.step) is _Base.step
    assert "tests._Kind.step" not in methods(_Kind, "tests._Kind")
    assert documented_base(_Kind, "other", _Kind.other) is None  # the base has no sections
    assert documented_base(_Different, "step", _Different.step) is None  # other parameters
    assert "PR01" in gaps(methods(_Different, "tests._Different")["tests._Different.step"])


@pytest.mark.parametrize("path", list(OBJECTS))
def test_numpydoc_sections(path: str) -> None:
    found = gaps(OBJECTS[path])
    allowed = {code for name, code in _allowed() if name == path}
    assert not found - allowed, f"{path}: numpydoc gaps {sorted(found - allowed)} (document them)"
    assert not allowed - found, f"{path}: {sorted(allowed - found)} fixed; remove it from {ALLOWLIST.name}"


def test_the_allowlist_names_public_objects_only() -> None:
    assert {name for name, _ in _allowed()} <= set(OBJECTS)


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-allowlist"]:
        print(f"{write_allowlist()} gaps written to {ALLOWLIST}")
    elif sys.argv[1:2] == ["--gaps"]:
        mods = sys.argv[2:] or None
        for path, code in all_gaps(public_objects(mods)):
            if mods is None or path.startswith(tuple(mods)):
                print(path, code)
    else:
        sys.exit("usage: python tests/project/test_numpydoc.py --write-allowlist | --gaps [module ...]")
