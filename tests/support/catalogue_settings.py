"""Every catalogue entry at its defaults and at each of its example settings (``custom`` only with its ``b``).

Used by the catalogue's invariant tests (tests/optfilters/test_catalogue.py) and the bridge's
(tests/optfilters/torch/test_optimizer.py), so both cover the same settings.
"""

from __future__ import annotations

from typing import Any

from optfilters import CATALOGUE


def catalogue_settings() -> list[tuple[str, dict[str, Any]]]:
    """``(name, overrides)`` pairs: ``{}`` and each example of every entry (``custom`` needs ``b``)."""
    cases = []
    for name, entry in CATALOGUE.items():
        for example in ({}, *entry.examples):
            if name == "custom" and "b" not in example:
                continue
            cases.append((name, dict(example)))
    return cases
