"""The papers' tests read their source's numbers and files from the session's one quick figures run.

Each tests/papers/test_<source>.py module sets ``quick = quick_source("<source>")``; the run itself is the
session fixture ``quick_figures`` of tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def quick_source(source: str) -> Callable[..., tuple[dict[str, Any], Path]]:
    """A module-scoped fixture: ``source``'s numbers and folder from the one ``optfilters figures --all --quick``."""

    @pytest.fixture(scope="module")
    def quick(quick_figures: tuple[dict, Path]) -> tuple[dict[str, Any], Path]:
        numbers, out = quick_figures
        return numbers[source], out / source

    return quick
