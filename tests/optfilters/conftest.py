"""Plot tests run headless; every figure a test opens is closed after it, and plt.show must never be called."""

from __future__ import annotations

from collections.abc import Iterator

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest


@pytest.fixture(autouse=True)
def _headless_and_tidy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def no_show(*args: object, **kwargs: object) -> None:
        raise AssertionError("optfilters.plot called plt.show()")

    monkeypatch.setattr(plt, "show", no_show)
    before = set(plt.get_fignums())
    yield
    for number in set(plt.get_fignums()) - before:
        plt.close(number)
