"""The package's import graph: one direction, no cycles at module level, a torch- and matplotlib-free core.

The graph is read from the source with :mod:`ast` (module-level imports
only: imports inside functions and ``if TYPE_CHECKING:`` blocks are the lazy
kind the architecture allows, e.g. a result's ``.plot()`` reaching
:mod:`optfilters.plot`).  ``cli/`` and ``papers/`` install as
``optfilters.cli`` and ``optfilters.papers``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"optfilters": ROOT / "optfilters", "optfilters.cli": ROOT / "cli", "optfilters.papers": ROOT / "papers"}

#: The analysis core: model, stage kinds, gains, filters, catalogue, analysis, closed loop, NQM.
CORE = (
    "optfilters",
    "optfilters.analysis",
    "optfilters.batch_size",
    "optfilters.catalogue",
    "optfilters.closed_loop",
    "optfilters.errors",
    "optfilters.filters",
    "optfilters.gains",
    "optfilters.hyperparameters",
    "optfilters.margins",
    "optfilters.model",
    "optfilters.noisy_quadratic",
    "optfilters.program",
    "optfilters.stages",
    "optfilters.table",
    "optfilters.thresholds",
    "optfilters.trajectory",
)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            parts = [] if rel.parts == ("__init__",) else list(rel.parts)
            if parts and parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([package, *parts])
            if name.startswith("optfilters.") and name.split(".")[1] in ("cli", "papers") and package == "optfilters":
                continue
            found[name] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports executed when the module is imported: module body, try/except and non-TYPE_CHECKING ifs."""
    out: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node):
                stack.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            stack.extend(node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body])
        elif isinstance(node, ast.With):
            stack.extend(node.body)
    return out


def _resolve(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Absolute names this import statement loads (a ``from pkg import sub`` counts ``pkg.sub`` when it is a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        parts = module.split(".")
        base_parts = parts if is_package else parts[:-1]
        base_parts = base_parts[: len(base_parts) - (node.level - 1)]
        base = ".".join(base_parts + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    names = [base]
    for alias in node.names:
        if f"{base}.{alias.name}" in MODULES:
            names.append(f"{base}.{alias.name}")
    return names


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets: set[str] = set()
        for node in _top_level_imports(tree):
            for target in _resolve(name, path.name == "__init__.py", node):
                targets.add(target)
        graph[name] = targets
    return graph


GRAPH = _graph()


def _internal_edges(name: str) -> set[str]:
    """Package modules ``name`` loads at import, parents included (importing ``a.b.c`` runs ``a`` and ``a.b``)."""
    out: set[str] = set()
    for target in GRAPH[name]:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix in MODULES and prefix != name and not name.startswith(prefix + "."):
                out.add(prefix)
    return out


def _closure(name: str) -> set[str]:
    """Every module (internal or external top-level name) loaded at import of ``name``."""
    seen: set[str] = set()
    external: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        # importing a submodule runs its parent packages first
        parts = current.split(".")
        for i in range(1, len(parts)):
            if ".".join(parts[:i]) in MODULES:
                todo.append(".".join(parts[:i]))
        for target in GRAPH[current]:
            if target.split(".")[0] != "optfilters":
                external.add(target.split(".")[0])
        todo.extend(_internal_edges(current))
    return seen | external


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(_internal_edges(v)):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(MODULES):
        if v not in index:
            visit(v)
    return found


def test_the_walker_sees_every_module_and_real_edges() -> None:
    assert {"optfilters", "optfilters.plot", "optfilters.cli.main", "optfilters.papers", "optfilters.torch"} <= set(
        MODULES
    )
    assert "optfilters.plot" in _closure("optfilters.cli.analysis") or "matplotlib" not in _closure(
        "optfilters.cli.analysis"
    )
    # a known module-level edge: the torch bridge loads torch
    assert "torch" in _closure("optfilters.torch")


def test_the_walker_finds_a_cycle_when_there_is_one() -> None:
    saved = {k: set(v) for k, v in GRAPH.items()}
    try:
        GRAPH["optfilters.analysis"].add("optfilters.plot")
        GRAPH["optfilters.plot"].add("optfilters.analysis")
        assert any({"optfilters.analysis", "optfilters.plot"} <= set(c) for c in _cycles())
    finally:
        GRAPH.clear()
        GRAPH.update(saved)


def test_no_import_cycle_at_module_level() -> None:
    # The package's __init__ re-exports its submodules: a submodule importing a sibling through the
    # package (``from . import x``) is the ordinary direction, not a cycle; what is checked is every
    # other strongly connected component.
    cycles = [c for c in _cycles() if not _only_through_init(c)]
    assert cycles == [], cycles


def _only_through_init(component: list[str]) -> bool:
    """A component closed only by a package ``__init__`` that re-exports its own children."""
    members = set(component)
    packages = {m for m in members if (MODULES[m].name == "__init__.py")}
    if not packages:
        return False
    rest = members - packages
    # remove the package nodes and their edges: what remains must be acyclic
    for m in rest:
        for w in _internal_edges(m) & rest:
            if m in _closure_within(w, rest):
                return False
    return True


def _closure_within(start: str, allowed: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        v = todo.pop()
        if v in seen:
            continue
        seen.add(v)
        todo.extend(_internal_edges(v) & allowed)
    return seen


@pytest.mark.parametrize("module", CORE)
def test_the_analysis_core_imports_neither_torch_nor_matplotlib(module: str) -> None:
    loaded = _closure(module)
    assert not ({"torch", "matplotlib"} & loaded), sorted(m for m in loaded if m.startswith("optfilters"))


@pytest.mark.parametrize("module", CORE)
def test_the_core_does_not_reach_up_to_the_bridge_plot_cli_or_papers(module: str) -> None:
    above = ("optfilters.torch", "optfilters.plot", "optfilters.cli", "optfilters.papers", "optfilters.explore")
    reached = sorted(m for m in _closure(module) if m.startswith(above))
    assert reached == []
