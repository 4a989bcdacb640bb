"""Reproduced lectures and papers: one module per source, each regenerating its figures.

Every module defines ``TITLE`` (one line) and
``reproduce(out_dir, quick=False) -> dict`` which writes its figures and a
``captions.md`` (what each figure shows and which numbers it checks) into
``out_dir`` and returns the key numbers it checked.  ``quick`` is a reduced
size for CI.  Modules use only optfilters' public API.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

__all__ = ["SOURCES", "reproduce", "source_module"]

#: Source name -> module (inside this package); the figures go to ``figures/<source>/``.
SOURCES: dict[str, str] = {
    "ee541_unit7b": "ee541_unit7b",
    "copernicus_l5": "copernicus_l5",
    "goh_momentum": "goh_momentum",
    "edge_of_stability": "edge_of_stability",
    "noisy_quadratic": "noisy_quadratic",
}


def source_module(source: str) -> Any:
    """Import the module that reproduces ``source`` (a key of :data:`SOURCES`).

    Examples
    --------
    >>> from optfilters.papers import SOURCES
    >>> "ee541_unit7b" in SOURCES
    True
    """
    if source not in SOURCES:
        raise ValueError(f"unknown figure source {source!r}; known: {', '.join(SOURCES)}")
    return importlib.import_module(f"{__name__}.{SOURCES[source]}")


def reproduce(source: str, out_dir: str | Path, quick: bool = False) -> dict[str, Any]:
    """Regenerate one source's figures into ``out_dir/<source>/`` and return its checked numbers.

    Examples
    --------
    >>> from optfilters.papers import reproduce
    >>> reproduce("nonexistent", "figures")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown figure source 'nonexistent'; known: ee541_unit7b, copernicus_l5, ...
    """
    module = source_module(source)
    target = Path(out_dir) / source
    target.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = module.reproduce(target, quick=quick)
    return result
