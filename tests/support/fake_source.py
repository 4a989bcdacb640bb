"""A fake figure source registered for a test: a progress bar, one passing check and one that may fail.

Used by the papers' shared machinery tests (tests/papers/test_papers.py) and the ``optfilters figures``
command's (tests/cli/test_figures.py).
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest
from optfilters.papers import SOURCES, Check, progress, write_outputs


def _fake_module(fail: bool) -> types.ModuleType:
    module = types.ModuleType("optfilters.papers._fake_source")
    module.TITLE = "A fake source for the tests"  # type: ignore[attr-defined]

    def reproduce(out_dir: Any, quick: bool = False) -> dict[str, Any]:
        with progress("fake run: 3 steps", 3) as advance:
            for _ in range(3):
                advance(1)
        numbers = {
            "title": module.TITLE,  # type: ignore[attr-defined]
            "checks": [
                Check.close("closed form", 1.0, 1.0, 1e-12),
                Check.within("late-phase ratio", 1.4 if fail else 1.0, 0.85, 1.25),
            ],
        }
        write_outputs(out_dir, numbers, "# fake\n")
        return numbers

    module.reproduce = reproduce  # type: ignore[attr-defined]
    return module


@contextlib.contextmanager
def fake_source(monkeypatch: pytest.MonkeyPatch, fail: bool) -> Iterator[None]:
    """Register source ``fake`` for the block; with ``fail`` its second check fails (1.4 outside [0.85, 1.25])."""
    monkeypatch.setitem(sys.modules, "optfilters.papers._fake_source", _fake_module(fail))
    monkeypatch.setitem(SOURCES, "fake", "_fake_source")
    yield
