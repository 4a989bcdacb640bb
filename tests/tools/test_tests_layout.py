"""tools/tests_layout.py: the mirror layout as a script (mapping, AST-aware merge, CLI split, rewrites, idempotent)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script() -> Any:
    spec = importlib.util.spec_from_file_location("tests_layout", ROOT / "tools" / "tests_layout.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["tests_layout"] = module
    spec.loader.exec_module(module)
    return module


#: Spelt apart so that the layout tool, moving this file, leaves the fixtures' text alone.
PARENTS = "Path(__file__).resolve()" + ".parents"


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        text = text.replace("P_[", PARENTS + "[")
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _read(root: Path, name: str) -> str:
    return (root / name).read_text(encoding="utf-8")


SOURCES = {
    "optfilters/__init__.py": "",
    "optfilters/filters.py": "",
    "optfilters/torch/__init__.py": "",
    "optfilters/torch/optimizer.py": "",
    "optfilters/torch/_native.py": "",
    "cli/__init__.py": "",
    "cli/analysis.py": "",
    "papers/__init__.py": "",
}

OLD = {
    "tests/core/test_filter.py": '''"""Filters: laws."""

from __future__ import annotations

import numpy as np
import pytest  # noqa: F401

from optfilters.filters import cascade

EPS = 1e-12


def test_cascade() -> None:
    assert np.isfinite(EPS) and cascade
''',
    "tests/core/test_exact_numbers.py": '''"""Exact numbers.

Every case against a reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner
from optfilters.cli import main

EPS = 1e-12
DATA = P_[2] / "README.md"


def run(*args: str) -> str:
    return CliRunner().invoke(main, list(args)).stdout


def shared() -> float:
    return float(np.pi)


def test_numbers() -> None:
    assert shared() > EPS


def test_on_the_command_line() -> None:
    assert run("list") is not None and shared() and DATA
''',
    "tests/torch/test_bridge_fused.py": '''"""Fused kernels."""

from __future__ import annotations

import pytest


def settings() -> list[int]:
    return [1, 2]


@pytest.mark.parametrize("n", settings())
def test_fused(n: int) -> None:
    assert n
''',
    "tests/torch/test_bridge_triton.py": '''"""Triton kernels."""

from __future__ import annotations

from test_bridge_fused import settings


def test_triton() -> None:
    assert settings()
''',
    "tests/torch/conftest.py": """KNOWN = {("test_bridge_fused.py", "test_fused")}\n""",
    "tests/test_readme.py": '''"""README."""

from pathlib import Path

ROOT = P_[1]


def test_readme() -> None:
    assert (ROOT / "README.md").exists()
''',
    "README.md": "See `tests/core/test_filter.py` and `test_bridge_fused.py`, `tests/torch/test_bridge_triton.py`.\n",
}

MAPPING = {
    "tests/core/test_filter.py": "optfilters/filters.py",
    "tests/core/test_exact_numbers.py": ("optfilters/filters.py", "cli/analysis.py"),
    "tests/torch/test_bridge_fused.py": "optfilters/torch/_native.py",
    "tests/torch/test_bridge_triton.py": "optfilters/torch/optimizer.py",
    "tests/test_readme.py": "project",
}


@pytest.fixture
def tool(monkeypatch: pytest.MonkeyPatch) -> Any:
    script = _script()
    monkeypatch.setattr(script, "MAPPING", dict(MAPPING))
    monkeypatch.setattr(script, "MOVES", {"tests/torch/conftest.py": "tests/optfilters/torch/conftest.py"})
    monkeypatch.setattr(script, "PRIVATE_VIA", {"optfilters/torch/_native.py": "optfilters/torch/optimizer.py"})
    return script


def test_a_topical_tree_is_laid_out_merged_split_and_rewritten(
    tool: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, {**SOURCES, **OLD})
    assert tool.main(["--root", str(tmp_path), "--no-git"]) == 0, capsys.readouterr().err
    tests = {p.relative_to(tmp_path).as_posix() for p in (tmp_path / "tests").rglob("*.py")}
    assert tests == {
        "tests/__init__.py",
        "tests/cli/__init__.py",
        "tests/cli/test_analysis.py",
        "tests/optfilters/__init__.py",
        "tests/optfilters/test_filters.py",
        "tests/optfilters/torch/__init__.py",
        "tests/optfilters/torch/conftest.py",
        "tests/optfilters/torch/test_optimizer.py",
        "tests/project/__init__.py",
        "tests/project/test_readme.py",
    }
    lib = _read(tmp_path, "tests/optfilters/test_filters.py")
    # docstrings combined, __future__ first, imports hoisted once, identical EPS kept once, no CLI test
    assert lib.startswith(
        '"""Exact numbers.\n\nEvery case against a reference.\n\nFilters: laws.\n"""\n\nfrom __future__'
    )
    assert lib.count("EPS = 1e-12") == 1 and lib.count("import numpy as np") == 1
    assert "import pytest  # noqa: F401" in lib
    assert "test_numbers" in lib and "test_cascade" in lib and "test_on_the_command_line" not in lib
    assert "CliRunner" not in lib and "def run" not in lib
    cli = _read(tmp_path, "tests/cli/test_analysis.py")
    # the CLI test with its helpers (shared is copied: both halves use it); paths re-based and rewritten
    assert "def test_on_the_command_line" in cli and "def shared" in cli and "def test_numbers" not in cli
    assert f'DATA = {PARENTS}[2] / "README.md"' in cli
    assert "copied  tests/core/test_exact_numbers.py: shared" in capsys.readouterr().out
    bridge = _read(tmp_path, "tests/optfilters/torch/test_optimizer.py")
    # a test module importing another merged into the same module: the import goes
    assert "from test_bridge_fused" not in bridge and "def test_triton" in bridge and "def test_fused" in bridge
    assert _read(tmp_path, "tests/optfilters/torch/conftest.py") == 'KNOWN = {("test_optimizer.py", "test_fused")}\n'
    assert _read(tmp_path, "README.md") == (
        "See `tests/optfilters/test_filters.py` and `tests/optfilters/torch/test_optimizer.py`.\n"
    )
    assert "parents[2]" in _read(tmp_path, "tests/project/test_readme.py")  # re-based one level deeper
    assert tool.violations(tmp_path) == []
    # idempotent
    assert tool.main(["--root", str(tmp_path), "--no-git"]) == 0
    assert capsys.readouterr().out.strip() == "nothing to do: the tests already mirror the modules"


def test_an_import_of_a_test_module_merged_elsewhere_names_its_new_module(tool: Any, tmp_path: Path) -> None:
    tool.MAPPING["tests/torch/test_bridge_fused.py"] = "optfilters/filters.py"
    _write(tmp_path, {**SOURCES, **OLD})
    assert tool.main(["--root", str(tmp_path), "--no-git"]) == 0
    assert "from tests.optfilters.test_filters import settings" in _read(
        tmp_path, "tests/optfilters/torch/test_optimizer.py"
    )


def test_unmapped_files_stop_it_before_it_writes(tool: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, {**SOURCES, **OLD, "tests/misc/test_new.py": "def test_x() -> None:\n    pass\n"})
    assert tool.main(["--root", str(tmp_path), "--no-git"]) == 2
    assert "tests/misc/test_new.py" in capsys.readouterr().err
    assert (tmp_path / "tests/core/test_filter.py").exists()


def test_a_name_collision_is_an_error_naming_both_files(
    tool: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = OLD["tests/core/test_filter.py"].replace("EPS = 1e-12", "EPS = 1e-9")
    _write(tmp_path, {**SOURCES, **OLD, "tests/core/test_filter.py": other})
    assert tool.main(["--root", str(tmp_path), "--no-git"]) == 2
    err = capsys.readouterr().err
    assert "'EPS' in tests/core/test_exact_numbers.py and tests/core/test_filter.py" in err
    assert (tmp_path / "tests/core/test_filter.py").exists()


def test_a_module_wide_fixture_may_not_spread_to_merged_tests(
    tool: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    autouse = "\n\n@pytest.fixture(autouse=True)\ndef quiet() -> None:\n    return None\n"
    _write(tmp_path, {**SOURCES, **OLD})
    path = tmp_path / "tests/torch/test_bridge_fused.py"
    path.write_text(path.read_text(encoding="utf-8") + autouse, encoding="utf-8")
    assert tool.main(["--root", str(tmp_path), "--no-git"]) == 2
    assert "'quiet' (module-wide" in capsys.readouterr().err
    path.write_text(path.read_text(encoding="utf-8").replace(autouse, '\n\npytest.importorskip("selenium")\n'))
    assert tool.main(["--root", str(tmp_path), "--no-git"]) == 2
    assert """'pytest.importorskip("selenium")' (module-wide""" in capsys.readouterr().err


def test_cli_tests_without_a_cli_module_and_file_lookups_are_refused(
    tool: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tool.MAPPING["tests/core/test_exact_numbers.py"] = "optfilters/filters.py"
    lookup = "from pathlib import Path\n\nHERE = Path(__file__).parent\n\n\ndef test_x() -> None:\n    assert HERE\n"
    _write(tmp_path, {**SOURCES, **OLD, "tests/core/test_filter.py": lookup})
    assert tool.main(["--root", str(tmp_path), "--no-git"]) == 2
    err = capsys.readouterr().err
    assert "test_exact_numbers.py: tests that drive the CLI (test_on_the_command_line) need a CLI module" in err
    assert "tests/core/test_filter.py:3: locate files as Path(__file__).resolve().parents[N]" in err


def test_the_rule_finds_what_breaks_it(tool: Any, tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            **SOURCES,
            "tests/optfilters/test_filters.py": "def test_x() -> None:\n    pass\n",
            "tests/optfilters/test_nothing.py": "def test_x() -> None:\n    pass\n",
            "tests/optfilters/torch/test_optimizer.py": "from optfilters.cli import main\n\n\n"
            "def test_cli() -> None:\n    assert main\n",
            "tests/optfilters/helper.py": "",
            "tests/support/helper.py": "",
            "tests/project/test_readme.py": "from optfilters.cli import main\n",
            "tests/papers/test_papers.py": "",
        },
    )
    assert tool.violations(tmp_path) == [
        "tests/optfilters/helper.py: a helper or data file outside tests/support/ and tests/project/",
        "tests/optfilters/test_nothing.py: mirrors no source module "
        "(allowed: tests/<folder>/test_<module>.py, tests/project/)",
        "tests/optfilters/torch/test_optimizer.py: CLI tests outside tests/cli: test_cli",
    ]
    assert tool.test_module_of("optfilters/torch/_native.py") == "tests/optfilters/torch/test_optimizer.py"
    assert tool.test_module_of("papers/__init__.py") == "tests/papers/test_papers.py"


def test_every_old_test_file_of_this_tree_is_mapped_or_laid_out() -> None:
    """The real mapping covers this tree: planning it raises nothing (unmapped files, collisions, lookups)."""
    script = _script()
    script.apply(ROOT, script.plan(ROOT), dry=True, git=False)
