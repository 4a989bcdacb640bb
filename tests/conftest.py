"""Session fixtures shared across test folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
