"""Reproduced lectures and papers: one module per source, each regenerating its figures.

Every module defines ``TITLE`` (one line) and
``reproduce(out_dir, quick=False) -> dict`` which writes its figures and a
``captions.md`` (what each figure shows and which numbers it checks) into
``out_dir`` and returns the key numbers it checked.  ``quick`` is a reduced
size for CI.  Modules use only optfilters' public API.
"""

from __future__ import annotations

import importlib
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["SOURCES", "command_line", "plain_numbers", "reproduce", "source_module", "write_outputs"]

#: Source name -> module (inside this package); the figures go to ``figures/<source>/``.
SOURCES: dict[str, str] = {
    "ee541_unit7b": "ee541_unit7b",
    "copernicus_l5": "copernicus_l5",
    "goh_momentum": "goh_momentum",
    "edge_of_stability": "edge_of_stability",
    "noisy_quadratic": "noisy_quadratic",
    "batch_size": "batch_size",
    "sign_stages": "sign_stages",
    "large_signal": "large_signal",
    "iqc_worst_case": "iqc_worst_case",
    "optimizer_atlas": "optimizer_atlas",
}


def plain_numbers(value: Any) -> Any:
    """``value`` made JSON-safe: keys as strings, tuples as lists, numpy scalars as numbers, inf/NaN as None.

    Examples
    --------
    >>> import numpy as np
    >>> plain_numbers({1: (np.float64(0.5), float("inf")), "ok": np.bool_(True)})
    {'1': [0.5, None], 'ok': True}
    """
    if isinstance(value, dict):
        return {str(k): plain_numbers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_numbers(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return plain_numbers(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_outputs(out_dir: str | Path, numbers: dict[str, Any], captions: str) -> None:
    """Write a source's ``captions.md`` and its ``numbers.json`` (JSON-safe, sorted) into ``out_dir``.

    Examples
    --------
    >>> import tempfile, json
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     write_outputs(folder, {"rate": float("nan")}, "# title")
    ...     json.loads((Path(folder) / "numbers.json").read_text())
    {'rate': None}
    """
    out = Path(out_dir)
    (out / "captions.md").write_text(captions)
    (out / "numbers.json").write_text(json.dumps(plain_numbers(numbers), indent=2, sort_keys=True) + "\n")


def command_line(source: str, argv: Sequence[str] | None = None) -> tuple[str, bool]:
    """A source module's command line ``[OUT_DIR] [--quick]``: the output folder and the quick flag.

    Examples
    --------
    >>> command_line("goh_momentum", ["--quick"])
    ('figures/goh_momentum', True)
    """
    args = list(sys.argv[1:] if argv is None else argv)
    rest = [a for a in args if a != "--quick"]
    return (rest[0] if rest else f"figures/{source}"), "--quick" in args


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
