"""Uninitialised memory made visible: ``numpy.empty`` (and ``empty_like``) return arrays filled with a chosen value.

A result that reads an entry it never wrote then changes with the value, where plain ``numpy.empty`` hands back
whatever the allocator last freed (an order-dependent failure: ``predict adam --lr 1e308`` printed a rate of 0.1 or 1
depending on the tests that had run before it in the same process).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

_EMPTY = np.empty
_EMPTY_LIKE = np.empty_like


def _filled(out: Any, value: float) -> Any:
    if isinstance(out, np.ndarray) and out.dtype.kind in "fciu":
        out.fill(value if out.dtype.kind in "fc" else abs(int(value)) % 100 if out.dtype.kind == "u" else int(value))
    return out


def poison_empty(monkeypatch: pytest.MonkeyPatch, value: float) -> None:
    """Until the test ends, ``np.empty`` and ``np.empty_like`` return arrays filled with ``value``.

    Integer arrays get its integer part (unsigned ones its magnitude mod 100).
    """
    monkeypatch.setattr(np, "empty", lambda *args, **kwargs: _filled(_EMPTY(*args, **kwargs), value))
    monkeypatch.setattr(np, "empty_like", lambda *args, **kwargs: _filled(_EMPTY_LIKE(*args, **kwargs), value))
