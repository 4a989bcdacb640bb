"""What every figure source shares: Check records, the summary and exit code of ``optfilters figures``, progress
bars, deterministic outputs (the main job twice leaves ``git status`` clean), and the modules' command lines.
"""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from optfilters.papers import (
    SOURCES,
    Check,
    check_table,
    checks_of,
    deterministic,
    plain_numbers,
    reporting,
    run_source,
    summary_lines,
    write_outputs,
)

from tests.support.fake_source import fake_source

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- Check records


def test_check_close_relative_and_absolute() -> None:
    c = Check.close("gain", 10.0 + 5e-9, 10.0, 1e-9)
    assert c.error == pytest.approx(5e-10, rel=1e-6) and c.passed  # relative: 5e-9 / 10
    assert not Check.close("gain", 10.0 + 1e-7, 10.0, 1e-9).passed
    assert Check.close("zero", 1e-12, 0.0, 1e-11).error == pytest.approx(1e-12)  # zero reference: absolute
    assert not Check.close("x", float("nan"), 1.0, 1.0).passed
    assert Check.close("abs", 2.0, 1.0, 1.5, relative=False).passed


def test_check_within_and_holds() -> None:
    bound = Check.within("error", 0.02, high=0.03)
    assert bound.passed and bound.error == 0.02 and bound.tolerance == 0.03 and bound.margin == pytest.approx(2 / 3)
    assert not Check.within("error", 0.04, high=0.03).passed
    ratio = Check.within("ratio", 1.3, 0.85, 1.25)
    assert not ratio.passed and ratio.error == pytest.approx(0.05) and ratio.reference == "[0.85, 1.25]"
    inside = Check.within("ratio", 1.05, 0.85, 1.25)
    assert inside.passed and inside.margin == pytest.approx(0.0)
    assert not Check.within("missing", None, 0.0, 1.0).passed
    assert Check.holds("fact", True).passed and not Check.holds("fact", False).passed
    c = Check.within("ratio", 1.3, 0.85, 1.25)
    assert Check.from_dict(json.loads(json.dumps(c.as_dict()))) == c


def test_checks_of_refuses_duplicate_names() -> None:
    with pytest.raises(ValueError, match="two checks are named 'a'"):
        checks_of({"checks": [Check.holds("a", True), Check.holds("a", True)]})
    assert checks_of({}) == []


def test_summary_names_the_worst_and_the_failed() -> None:
    numbers = {
        "checks": [
            Check.close("tight", 1.0 + 5e-10, 1.0, 1e-9),
            Check.close("loose", 1.0, 1.0, 1e-3),
            Check.within("ratio", 2.0, 0.5, 1.5),
        ]
    }
    lines, failed = summary_lines("demo", numbers)
    assert lines[0] == "demo: 3 checks, 1 FAILED; worst: ratio (value 2, allowed [0.5, 1.5])"
    assert lines[1] == "  FAILED ratio (value 2, allowed [0.5, 1.5])"
    assert [c.name for c in failed] == ["ratio"]
    lines, failed = summary_lines("demo", {"checks": numbers["checks"][:2]})
    assert lines == ["demo: 2 checks, all passed; worst: tight (error 5e-10, tolerance 1e-09)"] and not failed


def test_check_table_lists_every_check_with_its_verdict() -> None:
    checks = [
        Check.close("gain", 1.5, 1.0, 1e-3),
        Check.within("error", 2e-13, high=1e-12),
        Check.within("ratio", 0.4, 0.5, 1.5),
        Check.holds("converges", True),
        Check.within("missing", None, high=1.0),
    ]
    header, rule, *rows = check_table(checks)
    assert header.startswith("| check | value |") and rule == "|---|---|---|---|---|"
    assert rows == [
        "| gain | 1.5 | 1 | 0.5 (0.001) | no |",
        "| error | 2e-13 | <= 1e-12 | 2e-13 (1e-12) | yes |",
        "| ratio | 0.4 | [0.5, 1.5] | 0.1 | no |",
        "| converges | yes | holds |  | yes |",
        "| missing | n/a | <= 1 | n/a (1) | no |",
    ]


def test_write_outputs_rounds_and_keeps_machine_dependent_numbers_coarse(tmp_path: Path) -> None:
    numbers = {"exact": 1 / 3, "run": {"ratio": 0.99812, "first_step": 487}, "checks": [Check.holds("a", True)]}
    write_outputs(tmp_path, numbers, "# t", machine_dependent=("run",))
    saved = json.loads((tmp_path / "numbers.json").read_text())
    assert saved["exact"] == 0.3333333333  # DIGITS = 10 significant digits
    assert saved["run"] == {"ratio": 1.0, "first_step": 490}
    assert saved["checks"][0]["name"] == "a" and saved["checks"][0]["passed"] is True
    assert plain_numbers({"x": math.inf}) == {"x": None}


def test_deterministic_block_restores_the_run_conditions() -> None:
    torch = pytest.importorskip("torch")
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    with deterministic(5):
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
        first = torch.rand(3)
    with deterministic(5):
        assert torch.equal(first, torch.rand(3))
    assert torch.get_num_threads() == threads and torch.are_deterministic_algorithms_enabled() == det


# ----------------------------------------------------------------------------- a fake source


def test_progress_reporter_sees_every_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[tuple[str, int]] = []

    @contextlib.contextmanager
    def record(label: str, total: int) -> Iterator[Any]:
        yield lambda n=1: seen.append((label, n))

    with fake_source(monkeypatch, fail=False), reporting(record):
        from optfilters.papers import reproduce

        reproduce("fake", tmp_path)
    assert seen == [("fake run: 3 steps", 1)] * 3


def test_module_entry_point_exit_codes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any) -> None:
    with fake_source(monkeypatch, fail=True):
        assert run_source("fake", [str(tmp_path / "out")]) == 1
    assert "FAILED late-phase ratio" in capsys.readouterr().out
    with fake_source(monkeypatch, fail=False):
        assert run_source("fake", [str(tmp_path / "out"), "--quick"]) == 0


# ----------------------------------------------------------------------------- the real sources


@pytest.mark.parametrize("source", list(SOURCES))
def test_every_source_reports_passing_checks(quick_figures: tuple[dict, Path], source: str) -> None:
    numbers, out = quick_figures
    checks = checks_of(numbers[source])
    assert checks, f"{source} reports no Check records in numbers['checks'] (see optfilters.papers.Check)"
    assert all(c.passed for c in checks), [c.name for c in checks if not c.passed]
    text = (out / source / "captions.md").read_text() + (out / source / "numbers.json").read_text()
    assert "Wall time" not in text and '"seconds"' not in text


def test_committed_outputs_hold_no_timings() -> None:
    for path in sorted((REPO / "figures").rglob("*")):
        if path.suffix in (".md", ".json"):
            text = path.read_text()
            assert "Wall time" not in text and '"seconds"' not in text, path


@pytest.mark.parametrize("source", list(SOURCES))
def test_module_command_lines_handle_help_and_bad_options(source: str, tmp_path: Path) -> None:
    module = f"optfilters.papers.{source}"
    shown = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"usage: python -m {module}") and "--quick" in shown.stdout
    assert list(tmp_path.iterdir()) == []  # nothing run, no ./--help/ folder
    for bad in (["--bogus"], ["a", "b"], ["-x"]):
        done = subprocess.run(
            [sys.executable, "-m", module, *bad], capture_output=True, text=True, timeout=120, cwd=tmp_path
        )
        assert done.returncode == 2, (bad, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "error:" in done.stderr and done.stdout == ""
    assert list(tmp_path.iterdir()) == []
