"""The explorer without a browser: widgets from the hyperparameter specs, the URL state, and the numbers drawn
(every catalogue entry), against the library and closed forms; the command's one-line errors.
"""

from __future__ import annotations

from click.testing import CliRunner
from optfilters.cli import main


def test_explore_command_errors_are_one_line(tmp_path) -> None:
    for args, text in (
        (["explore", "--port", "70000"], "70000 is not in the range"),
        (["explore", "--model", str(tmp_path / "none.py") + ":x", "--no-browser"], "no model file"),
    ):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and text in lines[0], result.stderr
    assert "--no-browser" in CliRunner().invoke(main, ["explore", "--help"]).stdout
