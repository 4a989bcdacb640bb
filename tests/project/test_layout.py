"""The tests mirror the modules (tools/tests_layout.py's rule), checked on this tree once it is laid out."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    not (ROOT / "tests" / "project").is_dir(), reason="the tree is not laid out yet: run tools/tests_layout.py"
)
def test_the_tests_mirror_the_modules() -> None:
    """Every test module mirrors a source module (or is project-wide), and CLI tests are under tests/cli."""
    spec = importlib.util.spec_from_file_location("tests_layout", ROOT / "tools" / "tests_layout.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["tests_layout"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    assert module.violations(ROOT) == []
