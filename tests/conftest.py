"""Session fixtures shared across test folders."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest


@pytest.fixture(scope="session")
def quick_figures(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """``optfilters figures --all --quick --json`` run once, as CI runs it: (numbers by source, output folder).

    The tests of each papers/ module read their source's numbers and files from this one run.
    """
    import matplotlib
    from click.testing import CliRunner
    from optfilters.cli import main

    matplotlib.use("Agg")
    out = tmp_path_factory.mktemp("figures")
    result = CliRunner().invoke(main, ["figures", "--all", "--quick", "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    numbers = json.loads(result.stdout)
    summary = json.loads((out / "numbers.json").read_text())  # the committed form: rounded (papers.write_outputs)
    assert summary.keys() == numbers.keys()
    for source in numbers:
        assert summary[source] == json.loads((out / source / "numbers.json").read_text())
    return numbers, out


def _global_state() -> dict[str, Any]:
    """Process-wide settings a test could change for the tests after it in the same worker."""
    from optfilters.catalogue import _ALIASES, CATALOGUE

    mpmath = sys.modules.get("mpmath")
    return {
        "numpy's error state (np.seterr)": np.geterr(),
        "mpmath's working precision (mpmath.mp.dps = ...)": mpmath.mp.prec if mpmath is not None else 53,
        "the catalogue's entries (register/unregister)": [(name, id(entry)) for name, entry in CATALOGUE.items()],
        "the catalogue's aliases": dict(_ALIASES),
    }


@pytest.fixture(autouse=True)
def _no_leaked_global_state() -> Iterator[None]:
    """Each test leaves numpy's error state, mpmath's precision and the catalogue as it found them.

    A test that changes them without restoring (``mpmath.mp.dps = 60`` did, in five tests) makes the tests run after
    it in the same worker depend on the order: use ``monkeypatch``, ``np.errstate``, ``mpmath.workdps`` or
    ``register``/``unregister`` in a ``try``/``finally``.  (Environment variables are not checked: importing torch
    or scikit-learn sets ``KMP_*`` ones.)
    """
    before = _global_state()
    yield
    after = _global_state()
    changed = [what for what, value in before.items() if after[what] != value]
    assert not changed, f"the test left global state changed: {'; '.join(changed)}"
