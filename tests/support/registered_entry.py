"""A catalogue entry registered by a test (``slowball``, a heavy ball), removed again afterwards.

Used by the catalogue's tests (tests/optfilters/test_catalogue.py) and the CLI's (tests/cli/test_analysis.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import optfilters
from optfilters import CatalogueEntry, Hyperparameter
from optfilters.catalogue import register, unregister


def _build(params: dict[str, float]) -> optfilters.OptimizerModel:
    model = optfilters.get("momentum", momentum=params["momentum"], weight_decay=params["weight_decay"])
    return dataclasses.replace(model, name="slowball")


@contextmanager
def registered_slowball() -> Iterator[CatalogueEntry]:
    """Register ``slowball`` (alias ``sb``; lr, momentum 0.8, weight decay) for the block, then unregister it."""
    entry = CatalogueEntry(
        "slowball",
        "a heavy ball registered by a test",
        (
            Hyperparameter("lr", 0.01, low=0.0, help="learning rate"),
            Hyperparameter("momentum", 0.8, low=0.0, high=1.0, high_open=True, help="momentum"),
            Hyperparameter("weight_decay", 0.0, low=0.0, help="weight decay"),
        ),
        _build,
        aliases=("sb",),
        source="a test",
        tuned=("momentum",),
        poles=("momentum",),
        decoupled_weight_decay=True,
    )
    register(entry)
    try:
        yield entry
    finally:
        unregister("slowball")
