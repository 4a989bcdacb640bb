#!/usr/bin/env python3
"""Apply the public-module rule: code that holds public objects lives in public modules.

Each private module of :data:`RENAMES` becomes its public name with ``git mv``
(where a public shim re-exported it, the shim is replaced and its ``__all__``
merged in), then every reference across the tree is rewritten:

* relative imports (``from ._model import``, ``from .._filter import``,
  ``from . import _gains``), resolved against the importing file's package;
* absolute dotted names anywhere in Python, reStructuredText, Markdown,
  notebooks and TOML (``from optfilters._catalogue import``,
  ``"optfilters._errors.InvalidHyperparameterError"`` in doctests and mocks,
  ``:mod:`optfilters._stages``` in docstrings);
* file paths in prose (``optfilters/_stages.py``).

Idempotent: a second run finds nothing to move and nothing to rewrite.  Run it
from anywhere inside the repository (or pass ``--root``); ``--dry-run`` lists
what would change; ``--no-git`` moves with the file system only (a checkout
that is not a git work tree).  Afterwards run ``ruff format`` and the tests.

Usage::

    python tools/house_rename.py [--root DIR] [--dry-run] [--no-git]
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from pathlib import Path

#: Private module -> public module (dotted, within the installed package ``optfilters``).
RENAMES: dict[str, str] = {
    "optfilters._analysis": "optfilters.analysis",
    "optfilters._catalogue": "optfilters.catalogue",
    "optfilters._errors": "optfilters.errors",
    "optfilters._filter": "optfilters.filters",
    "optfilters._gains": "optfilters.gains",
    "optfilters._hyperparameters": "optfilters.hyperparameters",
    "optfilters._model": "optfilters.model",
    "optfilters._stages": "optfilters.stages",
    "optfilters._table": "optfilters.table",
    "optfilters._testfunctions": "optfilters.trajectory",
    "optfilters.torch._optimizer": "optfilters.torch.optimizer",
}

#: Where each installed package's sources are (cli/ and papers/ install as optfilters.cli/.papers).
PACKAGE_DIRS = {"optfilters": "optfilters", "optfilters.cli": "cli", "optfilters.papers": "papers"}

#: Folders (and files) whose text is rewritten.
TREES = ("optfilters", "cli", "papers", "tests", "docs", "bench", "examples", "tools", "README.md", "conftest.py")
TEXT_SUFFIXES = {".py", ".md", ".rst", ".ipynb", ".toml", ".txt", ".cfg", ".ini"}
SKIP_PARTS = {".venv", "_build", "auto_gallery", "__pycache__", ".git", "_generated"}
#: This script and its test name the old modules on purpose.
SKIP_FILES = {"tools/house_rename.py", "tests/tools/test_house_rename.py"}


def module_path(root: Path, dotted: str) -> Path:
    """The source file of a dotted module name of the package."""
    parts = dotted.split(".")
    for package, folder in sorted(PACKAGE_DIRS.items(), key=lambda kv: -len(kv[0])):
        if dotted == package or dotted.startswith(package + "."):
            rest = parts[len(package.split(".")) :]
            return root.joinpath(folder, *rest).with_suffix(".py")
    raise ValueError(dotted)


def file_module(root: Path, path: Path) -> tuple[str, bool] | None:
    """(dotted module name, is_package) of a source file of the package, None outside it."""
    rel = path.relative_to(root)
    for package, folder in PACKAGE_DIRS.items():
        if rel.parts[0] == folder:
            rest = list(rel.with_suffix("").parts[1:])
            is_package = rest[-1:] == ["__init__"]
            if is_package:
                rest = rest[:-1]
            return ".".join([package, *rest]), is_package
    return None


def run(cmd: list[str], root: Path) -> None:
    subprocess.run(cmd, cwd=root, check=True)


def all_names(source: str) -> list[str] | None:
    """The literal ``__all__`` of a module's source (None without one)."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return [ast.literal_eval(elt) for elt in node.value.elts]  # type: ignore[attr-defined]
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "__all__":
            return [ast.literal_eval(elt) for elt in node.value.elts]  # type: ignore[union-attr]
    return None


def replace_all(source: str, names: list[str]) -> str:
    """``source`` with its ``__all__`` assignment replaced by ``names`` (sorted, one a line)."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in targets
        ):
            text = "__all__ = [\n" + "".join(f'    "{n}",\n' for n in names) + "]\n"
            start, end = node.lineno - 1, node.end_lineno or node.lineno
            return "".join(lines[:start]) + text + "".join(lines[end:])
    raise ValueError("no __all__")


def defined_names(source: str) -> set[str]:
    """Names bound at module level (definitions, assignments, imports)."""
    found: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                found |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            found.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return found


def move_modules(root: Path, dry: bool, git: bool) -> list[str]:
    """``git mv`` each private module onto its public name, merging a shim's ``__all__``."""
    done = []
    for old, new in RENAMES.items():
        src, dst = module_path(root, old), module_path(root, new)
        if not src.exists():
            continue
        merged: list[str] | None = None
        if dst.exists():
            shim = dst.read_text(encoding="utf-8")
            shim_all = all_names(shim) or []
            code = src.read_text(encoding="utf-8")
            own = all_names(code) or []
            missing = [n for n in shim_all if n not in defined_names(code)]
            if missing:
                raise SystemExit(f"{dst} re-exports {missing}, which {src} does not define: merge by hand")
            merged = sorted(set(own) | set(shim_all))
        done.append(f"{src.relative_to(root)} -> {dst.relative_to(root)}" + (" (shim replaced)" if merged else ""))
        if dry:
            continue
        if git:
            if dst.exists():
                run(["git", "rm", "-q", "-f", str(dst.relative_to(root))], root)
            run(["git", "mv", str(src.relative_to(root)), str(dst.relative_to(root))], root)
        else:
            src.replace(dst)
        if merged is not None:
            text = dst.read_text(encoding="utf-8")
            dst.write_text(replace_all(text, merged) if all_names(text) is not None else text, encoding="utf-8")
    return done


# ----------------------------------------------------------------------------- rewriting references


def _short(dotted: str) -> str:
    return dotted.rsplit(".", 1)[1]


def _absolute_pattern() -> re.Pattern[str]:
    olds = sorted(RENAMES, key=len, reverse=True)
    return re.compile(r"(?<![\w.])(" + "|".join(re.escape(o) for o in olds) + r")(?!\w)")


def _path_pattern() -> re.Pattern[str]:
    olds = sorted((o.replace(".", "/") for o in RENAMES), key=len, reverse=True)
    return re.compile(r"(?<![\w/])(" + "|".join(re.escape(o) for o in olds) + r")(?=\.py\b|/|\b)")


ABSOLUTE = _absolute_pattern()
PATHS = _path_pattern()
PATH_RENAMES = {o.replace(".", "/"): n.replace(".", "/") for o, n in RENAMES.items()}
RELATIVE_FROM = re.compile(r"^(\s*from\s+)(\.+)([\w.]*)(\s+import\s+)(\(?[^\n]*)", re.M)


def _resolve_relative(package: str, dots: int, rest: str) -> str:
    parts = package.split(".")
    base = parts[: len(parts) - (dots - 1)]
    return ".".join(base + ([rest] if rest else []))


def rewrite_relative(text: str, module: str, is_package: bool) -> str:
    """Relative imports of renamed modules, resolved against ``module``'s package."""
    package = module if is_package else module.rpartition(".")[0]

    def fix(m: re.Match[str]) -> str:
        head, dots, rest, imp, names = m.groups()
        target = _resolve_relative(package, len(dots), rest)
        for old, new in RENAMES.items():
            if target == old or target.startswith(old + "."):
                return f"{head}{dots}{rest.replace(_short(old), _short(new), 1)}{imp}{names}"
        # ``from . import _gains`` (a renamed module imported by name from its package)
        if rest == "" or target in PACKAGE_DIRS or target == "optfilters.torch":
            new_names = names
            for old, new in RENAMES.items():
                if old.rpartition(".")[0] == target:
                    new_names = re.sub(
                        rf"(?<![\w.])(?<!\bas\s){re.escape(_short(old))}(?!\w)(?!\s+as\b)",
                        f"{_short(new)} as {_short(old)}",
                        new_names,
                    )
            return f"{head}{dots}{rest}{imp}{new_names}"
        return m.group(0)

    return RELATIVE_FROM.sub(fix, text)


def rewrite_absolute(text: str) -> str:
    """Dotted names and file paths of renamed modules; ``from optfilters import _x`` keeps its local name."""
    text = ABSOLUTE.sub(lambda m: RENAMES[m.group(1)], text)
    text = PATHS.sub(lambda m: PATH_RENAMES[m.group(1)], text)
    for old, new in RENAMES.items():
        package, _, name = old.rpartition(".")
        text = re.sub(
            rf"(from\s+{re.escape(package)}\s+import\s+)(?<![\w.]){re.escape(name)}(?!\w)(?!\s+as\b)",
            rf"\g<1>{_short(new)} as {name}",
            text,
        )
    return text


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


def rewrite_tree(root: Path, dry: bool) -> list[str]:
    changed = []
    for path in text_files(root):
        text = path.read_text(encoding="utf-8")
        new = text
        if path.suffix == ".py":
            where = file_module(root, path)
            if where is not None:
                new = rewrite_relative(new, *where)
        new = rewrite_absolute(new)
        if new != text:
            changed.append(str(path.relative_to(root)))
            if not dry:
                path.write_text(new, encoding="utf-8")
    return changed


def check(root: Path) -> list[str]:
    """References to the old private modules that are left (expected: none)."""
    left = []
    for path in text_files(root):
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if ABSOLUTE.search(line) or PATHS.search(line):
                left.append(f"{path.relative_to(root)}:{i}: {line.strip()}")
    return left


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="repository root (default: this script's parent's)")
    parser.add_argument("--dry-run", action="store_true", help="list what would move and change; write nothing")
    parser.add_argument("--no-git", action="store_true", help="move files without git mv")
    args = parser.parse_args(argv)
    root = (args.root or Path(__file__).resolve().parents[1]).resolve()
    moved = move_modules(root, args.dry_run, not args.no_git)
    changed = rewrite_tree(root, args.dry_run)
    for line in moved:
        print(f"moved   {line}")
    for line in changed:
        print(f"rewrote {line}")
    if not moved and not changed:
        print("nothing to do: the tree already follows the public-module rule")
    if not args.dry_run:
        left = check(root)
        for line in left:
            print(f"LEFT    {line}", file=sys.stderr)
        return 1 if left else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
