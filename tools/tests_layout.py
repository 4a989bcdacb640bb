#!/usr/bin/env python3
"""Lay the tests out as a mirror of the modules: one test module per source module, CLI tests in one place.

The rule (checked on the tree by ``tests/project/test_layout.py`` through :func:`violations`):

* the tests of ``optfilters/<m>.py`` are ``tests/optfilters/test_<m>.py``, of ``optfilters/torch/<m>.py``
  ``tests/optfilters/torch/test_<m>.py``, of ``cli/<m>.py`` ``tests/cli/test_<m>.py``, of ``papers/<m>.py``
  ``tests/papers/test_<m>.py``, of ``tools/<m>.py`` ``tests/tools/test_<m>.py``; a package's ``__init__.py``
  is tested in ``test_<package>.py`` of its mirror folder (``papers/__init__.py``: ``tests/papers/test_papers.py``);
* private helper modules (``_native``, ``_program``, ``cli/_common``, ...) are tested through the public
  module that uses them (:data:`PRIVATE_VIA`);
* project-wide checks (README, docs build, notebooks, import graph, public API, numpydoc, this layout)
  live in ``tests/project/``; helper modules and data used by tests of several folders in ``tests/support/``;
* every test that drives the command line (imports ``optfilters.cli`` or ``click``, or names
  ``optfilters.cli`` in a subprocess) lives under ``tests/cli/``.

:data:`MAPPING` names, for every test file of the old topical layout, the source module it tests (and,
where some of its tests drive the CLI, the CLI module those tests move to). The script then

* moves each file onto its target, or CONCATENATES the files of one target with an AST-aware merge:
  module docstrings combined, the imports above the first statement hoisted and de-duplicated
  (``from __future__`` first), identical top-level definitions kept once; a top-level name bound to
  DIFFERENT things by two merged files is an error naming both (rename it in one source file, rerun);
* splits the CLI tests out of a library test file, with the helpers and fixtures they use (helpers used
  by both halves are copied into both, and listed);
* re-bases ``Path(__file__).resolve().parents[N]`` to the new depth (any other use of ``__file__`` in a
  moved file is an error: locate files from the repository root);
* moves conftest files, helper modules and data (:data:`MOVES`), adds the ``__init__.py`` that keeps the
  mirrored basenames apart (``tests/cli/test_analysis.py`` and ``tests/optfilters/test_analysis.py``);
* rewrites every reference to a moved path (README, docs/, .ci/, pyproject, papers/, tests, conftest
  ``KNOWN_GAPS`` file names, the numpydoc allowlist) and reports references to test paths that no
  longer exist;
* runs ``ruff check --select I,F401,F811 --fix`` and ``ruff format`` on what it wrote (where ruff is
  installed): the imports a split half or a merge no longer needs go.

A test file under ``tests/`` that is neither laid out nor in :data:`MAPPING` / :data:`MOVES` stops the
script before it writes anything, with the list. Idempotent: on a laid-out tree it says "nothing to do".

Usage::

    python tools/tests_layout.py [--root DIR] [--dry-run] [--no-git]
"""

from __future__ import annotations

import argparse
import ast
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

#: Old test file -> the source module its tests test, or (that module, the CLI module its CLI tests test).
#: A private module is allowed here: it is redirected through :data:`PRIVATE_VIA`.
MAPPING: dict[str, str | tuple[str, str]] = {
    # tests/cli: already one folder; one module per command module
    "tests/cli/test_cli_analysis.py": "cli/analysis.py",
    "tests/cli/test_cli_common.py": "cli/_common.py",
    "tests/cli/test_cli_entry_point.py": "cli/main.py",
    "tests/cli/test_cli_errors.py": "cli/main.py",
    "tests/cli/test_cli_new_user.py": "cli/analysis.py",
    "tests/cli/test_cli_nonlinear.py": "cli/nonlinear.py",
    # tests/control
    "tests/control/test_batch_size.py": "optfilters/batch_size.py",
    "tests/control/test_cli_control.py": "cli/control.py",
    "tests/control/test_divergence.py": "optfilters/observe.py",
    "tests/control/test_margins.py": "optfilters/margins.py",
    "tests/control/test_staleness.py": "optfilters/margins.py",
    "tests/control/test_thresholds.py": "optfilters/thresholds.py",
    # tests/core
    "tests/core/test_analysis.py": "optfilters/analysis.py",
    "tests/core/test_catalogue.py": "optfilters/catalogue.py",
    "tests/core/test_catalogue_owns_the_facts.py": ("optfilters/catalogue.py", "cli/analysis.py"),
    "tests/core/test_deprecated_names.py": "optfilters/errors.py",
    "tests/core/test_display.py": "optfilters/display.py",
    "tests/core/test_exact.py": "optfilters/exact.py",
    "tests/core/test_exact_numbers.py": ("optfilters/filters.py", "cli/analysis.py"),
    "tests/core/test_factored_properties.py": "optfilters/factored.py",
    "tests/core/test_filter.py": "optfilters/filters.py",
    "tests/core/test_model.py": "optfilters/model.py",
    "tests/core/test_package_stages.py": ("optfilters/package_stages.py", "cli/analysis.py"),
    "tests/core/test_program.py": "optfilters/program.py",
    "tests/core/test_recursions.py": "optfilters/catalogue.py",
    "tests/core/test_table.py": "optfilters/table.py",
    # project-wide
    "tests/docs/test_docs_build.py": "project",
    "tests/examples/test_notebooks.py": "project",
    "tests/test_import_graph.py": "project",
    "tests/test_numpydoc.py": "project",
    "tests/test_public_api.py": "project",
    "tests/test_readme.py": "project",
    "tests/test_layout.py": "project",
    # tests/explore
    "tests/explore/test_explore_unit.py": ("optfilters/explore.py", "cli/explore.py"),
    # end to end in a browser; its module-level skips (no chromium, no selenium) must not skip other tests
    "tests/explore/test_explorer_browser.py": "project",
    # tests/identify
    "tests/identify/test_audit.py": ("optfilters/audit.py", "cli/audit.py"),
    "tests/identify/test_dither.py": "optfilters/dither.py",
    "tests/identify/test_identify.py": "optfilters/identify.py",
    "tests/identify/test_identify_cli.py": "cli/identify.py",
    "tests/identify/test_identify_nonlinear.py": "optfilters/identify.py",
    "tests/identify/test_probes.py": "optfilters/probes.py",
    # tests/network
    "tests/network/test_edge_of_stability.py": "papers/edge_of_stability.py",
    "tests/network/test_empirical_response.py": "optfilters/network.py",
    "tests/network/test_observe_network.py": "optfilters/network.py",
    "tests/network/test_sharpness.py": "optfilters/network.py",
    # tests/papers
    "tests/papers/test_atlas_libraries.py": "papers/atlas_libraries.py",
    "tests/papers/test_paper_batch_size.py": "papers/batch_size.py",
    "tests/papers/test_paper_copernicus_l5.py": "papers/copernicus_l5.py",
    "tests/papers/test_paper_ee541_unit7b.py": "papers/ee541_unit7b.py",
    "tests/papers/test_paper_goh_momentum.py": "papers/goh_momentum.py",
    "tests/papers/test_paper_iqc_worst_case.py": "papers/iqc_worst_case.py",
    "tests/papers/test_paper_large_signal.py": "papers/large_signal.py",
    "tests/papers/test_paper_noisy_quadratic.py": "papers/noisy_quadratic.py",
    "tests/papers/test_paper_optimizer_atlas.py": "papers/optimizer_atlas.py",
    "tests/papers/test_paper_sign_stages.py": "papers/sign_stages.py",
    "tests/papers/test_papers_infra.py": ("papers/__init__.py", "cli/figures.py"),
    # tests/plot
    "tests/plot/test_plot_infra.py": "optfilters/plot.py",
    "tests/plot/test_plot_overlays.py": "optfilters/plot.py",
    "tests/plot/test_plot_trajectories.py": "optfilters/trajectory.py",
    "tests/plot/test_plot_views.py": "optfilters/plot.py",
    # tests/predict
    "tests/predict/test_cli_predict.py": "cli/predict.py",
    "tests/predict/test_closed_loop.py": "optfilters/closed_loop.py",
    "tests/predict/test_describing_function.py": "optfilters/describing_function.py",
    "tests/predict/test_iqc.py": "optfilters/iqc.py",
    "tests/predict/test_large_signal.py": "optfilters/large_signal.py",
    "tests/predict/test_noisy_quadratic.py": "optfilters/noisy_quadratic.py",
    "tests/predict/test_observe.py": "optfilters/observe.py",
    "tests/predict/test_package_entries_nonlinear.py": ("optfilters/package_stages.py", "cli/nonlinear.py"),
    "tests/predict/test_parameter_side_analysis.py": "optfilters/parameter_stages.py",
    "tests/predict/test_schedule_free.py": "optfilters/package_stages.py",
    "tests/predict/test_schedules_torch.py": "optfilters/gains.py",
    # top level
    "tests/test_external_stage_kind.py": "optfilters/stages.py",
    "tests/test_house_rename.py": "tools/house_rename.py",
    "tests/test_tests_layout.py": "tools/tests_layout.py",
    # tests/torch
    "tests/torch/test_bridge_asgd_state.py": "optfilters/torch/optimizer.py",
    "tests/torch/test_bridge_autograd.py": "optfilters/torch/optimizer.py",
    "tests/torch/test_bridge_capturable.py": "optfilters/torch/optimizer.py",
    "tests/torch/test_bridge_checkpoints.py": ("optfilters/torch/checkpoint.py", "cli/checkpoint.py"),
    "tests/torch/test_bridge_distributed.py": "optfilters/torch/optimizer.py",
    "tests/torch/test_bridge_filters.py": "optfilters/torch/_kernels.py",
    "tests/torch/test_bridge_fsdp.py": "optfilters/torch/optimizer.py",
    "tests/torch/test_bridge_fused.py": "optfilters/torch/_native.py",
    "tests/torch/test_bridge_optimizer.py": "optfilters/torch/optimizer.py",
    "tests/torch/test_bridge_parity.py": "optfilters/torch/optimizer.py",
    "tests/torch/test_bridge_schedules.py": "optfilters/torch/optimizer.py",
    "tests/torch/test_bridge_stages.py": "optfilters/torch/_program.py",
    "tests/torch/test_bridge_step_time.py": "optfilters/torch/optimizer.py",
    "tests/torch/test_bridge_triton.py": "optfilters/torch/triton_kernels.py",
    "tests/torch/test_parameter_side_parity.py": "optfilters/torch/averaged.py",
    "tests/torch/test_reference_parity_packages.py": "optfilters/torch/optimizer.py",
    # tests/validation
    "tests/validation/test_cli_bad_input_table.py": "cli/main.py",
    "tests/validation/test_output_files.py": ("optfilters/validation.py", "cli/figures.py"),
    "tests/validation/test_properties_and_copying.py": "optfilters/validation.py",
    "tests/validation/test_extreme_sweep.py": ("optfilters/validation.py", "cli/main.py"),
    "tests/core/test_stage_kind_validation.py": "optfilters/package_stages.py",
}

#: Private module -> the public module whose tests test it.
PRIVATE_VIA: dict[str, str] = {
    "cli/_common.py": "cli/main.py",  # the shared command factory, used by every command module through main
    "optfilters/torch/_compiled.py": "optfilters/torch/optimizer.py",  # the torch.compile path
    "optfilters/torch/_kernels.py": "optfilters/torch/optimizer.py",  # the per-path op tables
    "optfilters/torch/_native.py": "optfilters/torch/optimizer.py",  # generated C kernels (fused=True on CPU)
    "optfilters/torch/_program.py": "optfilters/torch/optimizer.py",  # the bridge's compiled step program
    "optfilters/torch/_resolve.py": "optfilters/torch/optimizer.py",  # constructor argument resolution
}

#: Non-test files under tests/: old path -> new path (conftest scope moves with the tests it served).
MOVES: dict[str, str] = {
    "tests/plot/conftest.py": "tests/optfilters/conftest.py",
    "tests/torch/conftest.py": "tests/optfilters/torch/conftest.py",
    "tests/identify/optimizers_for_audit.py": "tests/support/optimizers_for_audit.py",
    "tests/identify/optimizers_for_identify.py": "tests/support/optimizers_for_identify.py",
    "tests/numpydoc_allowlist.txt": "tests/project/numpydoc_allowlist.txt",
}

#: Folders mirrored under tests/ (source folder -> test folder).
MIRRORS = {"optfilters": "tests/optfilters", "cli": "tests/cli", "papers": "tests/papers", "tools": "tests/tools"}
PROJECT = "tests/project"
SUPPORT = "tests/support"
#: Files that may sit anywhere under tests/ (pytest's own).
ANYWHERE = {"conftest.py", "__init__.py"}
#: Test folders whose modules may drive the CLI (tests of tools/ hold CLI code as text fixtures).
WHOLE = ("tests/cli/", PROJECT + "/", "tests/tools/")
#: Modules every test run has (CI installs them): a module-level importorskip of one never skips a module.
ALWAYS_INSTALLED = {"torch", "numpy", "scipy"}
#: Imported names that make a test a CLI test.
CLI_MODULES = ("optfilters.cli", "click")
CLI_TEXT = re.compile(r"optfilters\.cli\b")

#: Folders (and files) whose text is searched for references to moved paths.
TREES = (
    "optfilters",
    "cli",
    "papers",
    "tests",
    "docs",
    "bench",
    "examples",
    "tools",
    ".ci",
    "README.md",
    "conftest.py",
    "pyproject.toml",
)
TEXT_SUFFIXES = {".py", ".md", ".rst", ".ipynb", ".toml", ".txt", ".cfg", ".ini", ""}
SKIP_PARTS = {".venv", "_build", "auto_gallery", "__pycache__", ".git", "_generated", ".hypothesis"}
#: This script and its test name old paths on purpose.
SKIP_FILES = {"tools/tests_layout.py", "tests/test_tests_layout.py", "tests/tools/test_tests_layout.py"}


class LayoutError(Exception):
    """The layout cannot be applied; the message lists every offending file or name."""


# ----------------------------------------------------------------------------- the rule


def test_module_of(source: str) -> str:
    """The test module of a source module (repo-relative paths); private modules go through PRIVATE_VIA."""
    if source == "project":
        raise LayoutError("project-wide tests have no single module: map them to a file name in tests/project")
    source = PRIVATE_VIA.get(source, source)
    path = Path(source)
    if path.name.startswith("_") and path.name != "__init__.py":
        raise LayoutError(f"{source} is private: say in PRIVATE_VIA which public module's tests test it")
    top = path.parts[0]
    if top not in MIRRORS or path.suffix != ".py":
        raise LayoutError(f"{source} is not a module of {sorted(MIRRORS)}")
    folder = Path(MIRRORS[top]).joinpath(*path.parts[1:-1])
    name = path.parent.name if path.name == "__init__.py" else path.stem
    return (folder / f"test_{name}.py").as_posix()


def target_of(old: str, cli: bool = False) -> str:
    """Where the tests of old test file ``old`` go (``cli``: its CLI tests)."""
    entry = MAPPING[old]
    source = entry[1] if cli and isinstance(entry, tuple) else entry if isinstance(entry, str) else entry[0]
    if source == "project":
        return f"{PROJECT}/{Path(old).name}"
    return test_module_of(source)


def source_modules(root: Path) -> set[str]:
    """Every source module of the mirrored folders (repo-relative)."""
    found = set()
    for folder in MIRRORS:
        base = root / folder
        if base.is_dir():
            found |= {p.relative_to(root).as_posix() for p in base.rglob("*.py") if not SKIP_PARTS & set(p.parts)}
    return found


def laid_out_targets(root: Path) -> set[str]:
    """The test module paths the rule allows for this tree's source modules."""
    allowed = set()
    for source in source_modules(root):
        try:
            allowed.add(test_module_of(source))
        except LayoutError:
            continue
    return allowed


def test_files(root: Path) -> list[str]:
    """Every file under tests/ (repo-relative, sorted)."""
    base = root / "tests"
    if not base.is_dir():
        return []
    return sorted(
        p.relative_to(root).as_posix() for p in base.rglob("*") if p.is_file() and not SKIP_PARTS & set(p.parts)
    )


def is_laid_out(rel: str, allowed: set[str]) -> bool:
    path = Path(rel)
    if path.name in ANYWHERE or rel in allowed:
        return True
    return rel.startswith((PROJECT + "/", SUPPORT + "/"))


def cli_tests(source: str) -> list[str]:
    """The tests of a module's source that drive the command line."""
    module = parse_module(source, "<check>")
    return [item.name for item in module.items if item.is_test and module.needs_cli(item)]


def violations(root: Path) -> list[str]:
    """Where the tree breaks the layout rule (empty: it follows it)."""
    allowed = laid_out_targets(root)
    found = []
    for rel in test_files(root):
        path = Path(rel)
        is_test = path.name.startswith("test_") and path.suffix == ".py"
        if is_test and not is_laid_out(rel, allowed):
            found.append(f"{rel}: mirrors no source module (allowed: tests/<folder>/test_<module>.py, {PROJECT}/)")
        elif not is_test and not is_laid_out(rel, allowed):
            found.append(f"{rel}: a helper or data file outside {SUPPORT}/ and {PROJECT}/")
        if is_test and not rel.startswith(WHOLE):
            text = (root / rel).read_text(encoding="utf-8")
            names = cli_tests(text)
            if names:
                found.append(f"{rel}: CLI tests outside tests/cli: {', '.join(names)}")
    return found


# ----------------------------------------------------------------------------- parsing a test module


@dataclass
class Item:
    """A top-level statement of a test module with the comments above it."""

    text: str
    node: ast.stmt
    binds: set[str]
    uses: set[str]

    @property
    def name(self) -> str:
        return getattr(self.node, "name", ", ".join(sorted(self.binds)))

    @property
    def is_test(self) -> bool:
        node = self.node
        return (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test")) or (
            isinstance(node, ast.ClassDef) and node.name.startswith("Test")
        )

    def key(self) -> str:
        return ast.dump(self.node, include_attributes=False)

    @property
    def module_wide(self) -> bool:
        """``pytestmark``, an autouse fixture or a module-level skip: it acts on every test of its module."""
        if "pytestmark" in self.binds:
            return True
        if not isinstance(self.node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for call in ast.walk(self.node):
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
                    continue
                if call.func.attr == "skip" and any(k.arg == "allow_module_level" for k in call.keywords):
                    return True
                if call.func.attr == "importorskip" and call.args:
                    arg = call.args[0]
                    if not (isinstance(arg, ast.Constant) and arg.value in ALWAYS_INSTALLED):
                        return True
        for deco in getattr(self.node, "decorator_list", []):
            if isinstance(deco, ast.Call) and any(
                k.arg == "autouse" and isinstance(k.value, ast.Constant) and k.value.value for k in deco.keywords
            ):
                return True
        return False


@dataclass
class Module:
    """A test module cut into its docstring, its hoistable imports and the rest, in order."""

    path: str
    docstring: str | None
    future: list[str]
    imports: list[Item]
    items: list[Item]
    cli_names: set[str] = field(default_factory=set)

    def definitions(self) -> dict[str, Item]:
        return {name: item for item in self.items for name in item.binds}

    def closure(self, start: Iterable[Item]) -> list[Item]:
        """``start`` and every top-level item it uses, transitively (in module order)."""
        defs = self.definitions()
        keep: dict[int, Item] = {}
        todo = list(start)
        while todo:
            item = todo.pop()
            if id(item) in keep:
                continue
            keep[id(item)] = item
            todo.extend(defs[n] for n in item.uses if n in defs and defs[n] is not item)
        return [item for item in self.items if id(item) in keep]

    def needs_cli(self, item: Item) -> bool:
        return any(
            bool(other.uses & self.cli_names) or bool(CLI_TEXT.search(other.text)) for other in self.closure([item])
        )


def _bound(node: ast.stmt) -> set[str]:
    found: set[str] = set()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        found.add(node.name)
    elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for t in targets:
            found |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        found |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return found


def _used(node: ast.AST) -> set[str]:
    used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    for fn in ast.walk(node):  # fixture parameters name other top-level fixtures
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            used |= {a.arg for a in fn.args.args + fn.args.kwonlyargs}
    for const in ast.walk(node):  # usefixtures("name") and string annotations
        if isinstance(const, ast.Constant) and isinstance(const.value, str) and const.value.isidentifier():
            used.add(const.value)
    return used


def parse_module(source: str, path: str) -> Module:
    """Cut ``source`` into top-level items, each with the comment lines above it."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    body = list(tree.body)
    docstring = None
    start = 0
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        if isinstance(body[0].value.value, str):  # type: ignore[attr-defined]
            docstring = "".join(lines[: body[0].end_lineno]).strip()
            start = body[0].end_lineno or 0
            body = body[1:]
    future: list[str] = []
    imports: list[Item] = []
    items: list[Item] = []
    header = True
    prev_end = start
    for index, node in enumerate(body):
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        end = node.end_lineno or node.lineno
        if index == len(body) - 1:
            end = len(lines)
        chunk = "".join(lines[prev_end:end])
        own = "".join(lines[first - 1 : end])
        prev_end = end
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            future.extend(a.name for a in node.names)
            continue
        is_import = isinstance(node, (ast.Import, ast.ImportFrom))
        if header and is_import:
            imports.append(Item(own.strip() + "\n", node, _bound(node), set()))
            continue
        header = False
        items.append(Item(chunk.strip("\n") + "\n", node, _bound(node), _used(node)))
    module = Module(path, docstring, future, imports, items)
    for node in [i.node for i in imports] + [i.node for i in items]:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(CLI_MODULES):
            module.cli_names |= _bound(node)
        elif isinstance(node, ast.Import):
            module.cli_names |= {
                (a.asname or a.name).split(".")[0] for a in node.names if a.name.startswith(CLI_MODULES)
            }
    return module


# ----------------------------------------------------------------------------- merging


@dataclass
class Piece:
    """Part of an old test module bound for one target."""

    old: str
    docstring: str | None
    future: list[str]
    imports: list[Item]
    items: list[Item]
    whole: bool = False


def split(module: Module, has_cli_target: bool) -> tuple[Piece, Piece | None, list[str]]:
    """(library part, CLI part or None, helpers copied into both)."""
    tests = [item for item in module.items if item.is_test]
    cli = [item for item in tests if module.needs_cli(item)]
    if not cli:
        return Piece(module.path, module.docstring, module.future, module.imports, module.items), None, []
    if not has_cli_target:
        names = ", ".join(item.name for item in cli)
        raise LayoutError(f"{module.path}: tests that drive the CLI ({names}) need a CLI module in MAPPING")
    lib = [item for item in tests if item not in cli]
    cli_items = module.closure(cli)
    lib_items = module.closure(lib)
    # guards, sys.path set-up, pytestmark and autouse fixtures act on both halves
    setup = module.closure(item for item in module.items if not item.binds or item.module_wide)
    chosen_cli = {id(i) for i in cli_items + setup}
    chosen_lib = {id(i) for i in lib_items + setup}
    # items used by neither half stay in the library half
    chosen_lib |= {id(i) for i in module.items if id(i) not in chosen_cli}
    copied = [i.name for i in module.items if id(i) in chosen_cli and id(i) in chosen_lib and i.binds]

    def piece(chosen: set[int], docstring: str | None) -> Piece:
        items = [i for i in module.items if id(i) in chosen]
        used = set().union(*(i.uses for i in items)) if items else set()
        imports = [i for i in module.imports if i.binds & used]
        return Piece(module.path, docstring, module.future, imports, items)

    return piece(chosen_lib, module.docstring), piece(chosen_cli, module.docstring), copied


def _import_key(item: Item) -> list[tuple[str, ...]]:
    node = item.node
    if isinstance(node, ast.Import):
        return [("import", a.name, a.asname or "") for a in node.names]
    assert isinstance(node, ast.ImportFrom)
    return [("from", "." * node.level + (node.module or ""), a.name, a.asname or "") for a in node.names]


def _bind_name(key: tuple[str, ...]) -> str:
    if key[0] == "import":
        return key[2] or key[1].split(".")[0]
    return key[3] or key[2]


def _bind_key(key: tuple[str, ...]) -> str:
    if key[0] == "import":
        return repr(("import", key[1] if key[2] else key[1].split(".")[0]))
    return repr(key)


def _import_text(keys: list[tuple[str, ...]]) -> str:
    out: list[str] = []
    grouped: dict[str, list[str]] = {}
    for key in keys:
        if key[0] == "import":
            out.append(f"import {key[1]}" + (f" as {key[2]}" if key[2] else ""))
        else:
            if key[1] not in grouped:
                grouped[key[1]] = []
                out.append(key[1])
            grouped[key[1]].append(key[2] + (f" as {key[3]}" if key[3] else ""))
    return "".join(
        (f"from {line} import {', '.join(grouped[line])}\n" if line in grouped else line + "\n") for line in out
    )


def merge(target: str, pieces: list[Piece]) -> str:
    """One module from ``pieces`` (in order); raises LayoutError on a top-level name collision."""
    docstrings = [p.docstring for p in pieces if p.docstring]
    future = sorted({name for p in pieces for name in p.future})
    bound: dict[str, tuple[str, str]] = {}  # name -> (its defining key, the file)
    collisions: list[str] = []

    def bind(name: str, key: str, old: str) -> bool:
        """False where the same definition is already there."""
        if name in bound:
            if bound[name][0] == key:
                return False
            collisions.append(f"{name!r} in {bound[name][1]} and {old}")
            return False
        bound[name] = (key, old)
        return True

    plain: list[tuple[str, ...]] = []
    verbatim: list[str] = []
    for p in pieces:
        for item in p.imports:
            if "#" in item.text:
                keys = _import_key(item)
                new = [k for k in keys if bind(_bind_name(k), _bind_key(k), p.old)]
                if new and item.text not in verbatim:
                    verbatim.append(item.text)
                continue
            for k in _import_key(item):
                if bind(_bind_name(k), _bind_key(k), p.old):
                    plain.append(k)
                elif k[0] == "import" and k not in plain:  # ``import a.b`` after ``import a``: both needed
                    plain.append(k)
    body: list[str] = []
    for p in pieces:
        for item in p.items:
            if isinstance(item.node, (ast.Import, ast.ImportFrom)):  # an import below the header
                fresh = [bind(_bind_name(k), _bind_key(k), p.old) for k in _import_key(item)]
                if any(fresh):
                    body.append(item.text)
                continue
            if not item.binds:
                if item.text not in body:
                    body.append(item.text)
                continue
            fresh = [bind(name, item.key(), p.old) for name in sorted(item.binds)]
            if any(fresh):
                body.append(item.text)
    real = [p for p in pieces if any(i.is_test for i in p.items)]
    wide: dict[str, dict[str, str]] = {}  # name -> file -> definition
    for p in real:
        for item in p.items:
            if item.module_wide:
                for name in sorted(item.binds) or [item.text.strip().splitlines()[-1].strip()]:
                    wide.setdefault(name, {})[p.old] = item.key()
    for name, where in sorted(wide.items()):
        if len(real) > 1 and (len(where) < len(real) or len(set(where.values())) > 1):
            others = [p.old for p in real if p.old not in where]
            collisions.append(
                f"{name!r} (module-wide: pytestmark or an autouse fixture) of {', '.join(sorted(where))} would also "
                f"act on the tests of {', '.join(others) or 'the others, differently'}"
            )
    if collisions:
        raise LayoutError(
            f"{target}: top-level names bound differently by merged files (rename in one source file): "
            + "; ".join(sorted(set(collisions)))
        )
    text = ""
    if docstrings:
        first, *rest = docstrings
        combined = first[:-3].rstrip() if first.endswith(('"""', "'''")) else first
        for more in rest:
            inner = more.strip()[3:-3].strip() if more.strip()[:3] in ('"""', "'''") else more
            combined += "\n\n" + inner
        text += combined + ('\n"""' if "\n" in combined else '"""') + "\n\n"
    if future:
        text += f"from __future__ import {', '.join(future)}\n\n"
    text += _import_text(plain) + "".join(verbatim)
    text += "\n\n" + "\n\n".join(chunk.rstrip("\n") + "\n" for chunk in body)
    return text


# ----------------------------------------------------------------------------- paths inside moved files

FILE_ROOT = re.compile(r"Path\(__file__\)\.resolve\(\)\.parents\[(\d+)\]")


def rebase(text: str, old: str, new: str) -> str:
    """``Path(__file__).resolve().parents[N]`` re-based from ``old``'s depth to ``new``'s."""
    delta = len(Path(new).parts) - len(Path(old).parts)
    return FILE_ROOT.sub(lambda m: f"Path(__file__).resolve().parents[{int(m.group(1)) + delta}]", text)


def file_uses(text: str) -> list[int]:
    """Lines that locate files from ``__file__`` other than as ``Path(__file__).resolve().parents[N]``."""
    lines = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Call) and any(isinstance(a, ast.Name) and a.id == "__file__" for a in node.args):
            line = text.splitlines()[node.lineno - 1]
            if not FILE_ROOT.search(line):
                lines.append(node.lineno)
    return sorted(set(lines))


def dotted(target: str) -> str:
    """The module name of a laid-out test file (tests/ folders are packages)."""
    return ".".join(Path(target).with_suffix("").parts)


def fix_test_import(item: Item, target: str, stems: dict[str, str]) -> Item | None:
    """``from test_bridge_parity import x``: from the module it became, or dropped where merged into ``target``."""
    node = item.node
    if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in stems):
        return item
    new = stems[node.module]
    if new == target:
        return None
    text = re.sub(rf"^from\s+{re.escape(node.module)}\s+import", f"from {dotted(new)} import", item.text)
    return Item(text, ast.parse(text).body[0], item.binds, item.uses)


# ----------------------------------------------------------------------------- the plan


@dataclass
class Plan:
    targets: dict[str, list[Piece]] = field(default_factory=dict)
    moves: dict[str, str] = field(default_factory=dict)  # whole files moved as they are
    removed: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    renames: dict[str, str] = field(default_factory=dict)  # old path -> new path (references)


def plan(root: Path) -> Plan:
    """What to move and merge; raises LayoutError listing unmapped files, collisions and ``__file__`` uses."""
    allowed = laid_out_targets(root)
    files = test_files(root)
    unmapped = [
        rel
        for rel in files
        if rel not in MAPPING and rel not in MOVES and not is_laid_out(rel, allowed) and rel not in SKIP_FILES
    ]
    if unmapped:
        raise LayoutError("test files in no place of the layout and not in MAPPING/MOVES:\n  " + "\n  ".join(unmapped))
    result = Plan()
    problems: list[str] = []
    stems = {Path(old).stem: target_of(old) for old in MAPPING if (root / old).exists()}
    for old in files:
        if old in MOVES and MOVES[old] != old:
            result.moves[old] = MOVES[old]
            result.renames[old] = MOVES[old]
            continue
        if old not in MAPPING:
            continue
        try:
            lib_target, cli_target = target_of(old), target_of(old, cli=True)
        except LayoutError as exc:
            problems.append(f"{old}: {exc}")
            continue
        if lib_target == old and cli_target == old:
            continue
        text = (root / old).read_text(encoding="utf-8")
        bad = file_uses(text)
        if bad:
            problems.append(
                f"{old}:{','.join(map(str, bad))}: locate files as Path(__file__).resolve().parents[N] / ..."
            )
            continue
        module = parse_module(text, old)
        copied: list[str]
        cli: Piece | None
        if lib_target.startswith(WHOLE):  # CLI, project and tool tests stay whole
            lib, cli, copied = Piece(old, module.docstring, module.future, module.imports, module.items), None, []
        else:
            try:
                lib, cli, copied = split(module, isinstance(MAPPING[old], tuple))
            except LayoutError as exc:
                problems.append(str(exc))
                continue
        lib.whole = cli is None
        for piece, target in ((lib, lib_target), (cli, cli_target)):
            if piece is None or not piece.items:
                continue
            piece.items = [Item(rebase(i.text, old, target), i.node, i.binds, i.uses) for i in piece.items]
            imports = [fix_test_import(i, target, stems) for i in piece.imports]
            if imports != piece.imports:
                piece.whole = False  # written from the merge, not moved as it is
            piece.imports = [Item(rebase(i.text, old, target), i.node, i.binds, i.uses) for i in imports if i]
            result.targets.setdefault(target, []).append(piece)
        result.copied += [f"{old}: {name} (into {lib_target} and {cli_target})" for name in copied]
        result.removed.append(old)
        result.renames[old] = lib_target
    if problems:
        raise LayoutError("\n  ".join(["cannot lay out:", *problems]))
    return result


def _single(pieces: list[Piece], target: str, root: Path) -> bool:
    return len(pieces) == 1 and not (root / target).exists() and pieces[0].old in MAPPING


def apply(root: Path, the_plan: Plan, dry: bool, git: bool) -> tuple[list[str], list[str]]:
    """Write the targets and moves; (lines to report, files written)."""
    report: list[str] = []
    written: list[str] = []
    merged_text: dict[str, str] = {}
    problems: list[str] = []
    for target, pieces in sorted(the_plan.targets.items()):
        existing = root / target
        if existing.exists() and target not in the_plan.removed:
            pieces = [_existing_piece(existing, target), *pieces]
        try:
            merged_text[target] = merge(target, pieces)
        except LayoutError as exc:
            problems.append(str(exc))
    if problems:
        raise LayoutError("\n  ".join(["cannot merge:", *problems]))
    for target, pieces in sorted(the_plan.targets.items()):
        olds = [p.old for p in pieces]
        how = "moved  " if len(olds) == 1 else "merged "
        report.append(f"{how} {', '.join(dict.fromkeys(olds))} -> {target}")
    for old, new in sorted(the_plan.moves.items()):
        report.append(f"moved   {old} -> {new}")
    if dry:
        return report, written
    singles = {
        p.old: target
        for target, pieces in the_plan.targets.items()
        for p in pieces
        if _single(pieces, target, root) and the_plan.renames.get(p.old) == target
    }
    for old, new in [*sorted(the_plan.moves.items()), *sorted(singles.items())]:
        (root / new).parent.mkdir(parents=True, exist_ok=True)
        if git and (root / old).exists():
            run(["git", "mv", old, new], root)
        else:
            (root / old).replace(root / new)
    for target, text in merged_text.items():
        pieces = the_plan.targets[target]
        if pieces[0].old in singles and pieces[0].whole:  # moved as it is, re-based
            path = root / target
            before = path.read_text(encoding="utf-8")
            text = rebase(before, pieces[0].old, target)
            if text == before:
                continue
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        (root / target).write_text(text, encoding="utf-8")
        written.append(target)
    for old in the_plan.removed:
        if old in singles:
            continue
        if (root / old).exists():
            if git:
                run(["git", "rm", "-q", "-f", old], root)
            else:
                (root / old).unlink()
    for folder in sorted({str(Path(t).parent) for t in [*merged_text, *the_plan.moves.values()]}):
        if folder.startswith(SUPPORT):
            continue
        path = Path(folder)
        while path.parts and path != Path("."):
            init = root / path / "__init__.py"
            if not init.exists():
                init.write_text("", encoding="utf-8")
                written.append(init.relative_to(root).as_posix())
            path = path.parent
    for path in sorted((root / "tests").rglob("*"), reverse=True):  # folders left empty
        if path.is_dir() and not any(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            shutil.rmtree(path)
    if git:
        run(["git", "add", "-A", "tests"], root)
    return report, written


def _existing_piece(path: Path, target: str) -> Piece:
    module = parse_module(path.read_text(encoding="utf-8"), target)
    return Piece(target, module.docstring, module.future, module.imports, module.items)


def run(cmd: list[str], root: Path) -> None:
    subprocess.run(cmd, cwd=root, check=True)


# ----------------------------------------------------------------------------- references


def text_files(root: Path) -> list[Path]:
    out: list[Path] = []
    for entry in TREES:
        base = root / entry
        candidates = [base] if base.is_file() else sorted(base.rglob("*")) if base.is_dir() else []
        for path in candidates:
            rel = path.relative_to(root).as_posix()
            if (
                path.is_file()
                and path.suffix in TEXT_SUFFIXES
                and not SKIP_PARTS & set(path.parts)
                and rel not in SKIP_FILES
            ):
                out.append(path)
    return out


def rewrite_references(root: Path, renames: dict[str, str], dry: bool) -> list[str]:
    """Full paths of moved files everywhere; bare old file names (unique ones) in tests and prose."""
    if not renames:
        return []
    full = re.compile(r"(?<![\w/.-])(" + "|".join(re.escape(o) for o in sorted(renames, key=len, reverse=True)) + ")")
    names: dict[str, str] = {}
    for old, new in renames.items():
        names.setdefault(Path(old).name, new)
    unique = {n: new for n, new in names.items() if sum(Path(o).name == n for o in renames) == 1}
    unique = {n: new for n, new in unique.items() if n != Path(new).name}
    bare = re.compile(r"(?<![\w/.-])(" + "|".join(re.escape(n) for n in unique) + r")(?![\w/])") if unique else None
    changed = []
    for path in text_files(root):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        rel = path.relative_to(root).as_posix()
        new = full.sub(lambda m: renames[m.group(1)], text)
        if bare is not None:
            if rel.startswith("tests/") and path.suffix == ".py":
                new = bare.sub(lambda m: Path(unique[m.group(1)]).name, new)
            else:
                new = bare.sub(lambda m: unique[m.group(1)], new)
        if path.suffix != ".py":  # "`a.py`, `b.py`" merged into one module: name it once
            new = re.sub(r"(`tests/[\w/]+\.py`)(?:,\s*\1)+", r"\1", new)
        if new != text:
            changed.append(rel)
            if not dry:
                path.write_text(new, encoding="utf-8")
    return changed


STALE = re.compile(r"(?<![\w/.-])(tests/[\w/]+(?:\.py|\.txt|/))")


def stale_references(root: Path, renames: dict[str, str]) -> list[str]:
    """Mentions of moved test paths, or of the folders they left, that no longer exist."""
    gone = {old for old in renames} | {str(Path(old).parent) + "/" for old in renames}
    gone = {g for g in gone if not (root / g).exists()}
    left = []
    for path in text_files(root):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            continue
        for i, line in enumerate(lines, 1):
            for m in STALE.finditer(line):
                mention = m.group(1)
                stale = mention in gone or any(mention.startswith(g) for g in gone if g.endswith("/"))
                if stale and not (root / mention).exists():
                    left.append(f"{path.relative_to(root)}:{i}: {m.group(1)}")
    return left


def tidy(root: Path, files: list[str]) -> None:
    """Drop unused imports, sort them and format what the script wrote (ruff, where installed)."""
    py = [f for f in files if f.endswith(".py")]
    ruff = shutil.which("ruff")
    if not py or ruff is None:
        return
    # imports a split half or a merge no longer uses (each was used in its source, which passed ruff)
    subprocess.run([ruff, "check", "--quiet", "--select", "I,F401,F811", "--fix", *py], cwd=root, check=False)
    subprocess.run([ruff, "format", "--quiet", *py], cwd=root, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="repository root (default: this script's parent's)")
    parser.add_argument("--dry-run", action="store_true", help="list what would move and merge; write nothing")
    parser.add_argument("--no-git", action="store_true", help="move files without git mv / git rm")
    args = parser.parse_args(argv)
    root = (args.root or Path(__file__).resolve().parents[1]).resolve()
    try:
        the_plan = plan(root)
        report, written = apply(root, the_plan, args.dry_run, not args.no_git)
    except LayoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    changed = rewrite_references(root, the_plan.renames, args.dry_run)
    for line in report:
        print(line)
    for line in the_plan.copied:
        print(f"copied  {line}")
    for line in changed:
        print(f"rewrote {line}")
    if not report and not changed:
        print("nothing to do: the tests already mirror the modules")
        return 0
    if args.dry_run:
        return 0
    tidy(root, written + [t for t in the_plan.targets if t not in written] + changed)
    left = stale_references(root, the_plan.renames) + violations(root)
    for line in left:
        print(f"LEFT    {line}", file=sys.stderr)
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
