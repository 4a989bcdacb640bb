"""What every figure source shares: Check records, the summary and exit code of ``optfilters figures``, progress
bars, deterministic outputs (the main job twice leaves ``git status`` clean), and the modules' command lines.

Output files: atomic writes, a corrupt numbers.json repaired from the per-source files, concurrent updates.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from optfilters.cli import figures, main
from optfilters.cli._common import CliError, check_output_folder

from optfilters.validation import atomic_write_text
from tests.support.fake_source import fake_source

# ----------------------------------------------------------------------------- a fake source


def test_a_failed_check_fails_the_command_and_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with fake_source(monkeypatch, fail=True):
        result = CliRunner().invoke(main, ["figures", "fake", "--out", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "fake: 2 checks, 1 FAILED; worst: late-phase ratio (value 1.4, allowed [0.85, 1.25])" in result.stdout
    assert "Error: 1 check(s) failed: fake: late-phase ratio" in result.stderr
    assert "Traceback" not in result.output


def test_summary_and_progress_of_a_passing_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with fake_source(monkeypatch, fail=False):
        result = CliRunner().invoke(main, ["figures", "fake", "--out", str(tmp_path)])
        quiet = CliRunner().invoke(main, ["figures", "fake", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    assert (
        result.stdout.splitlines()[0]
        == "fake: 2 checks, all passed; worst: late-phase ratio (value 1, allowed [0.85, 1.25])"
    )
    assert "fake: running (full size)" in result.stderr and "fake run: 3 steps" in result.stderr  # the bar's label
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert json.loads(quiet.stdout)["fake"]["checks"][1]["passed"] is True
    summary = json.loads((tmp_path / "numbers.json").read_text())
    assert summary["fake"] == json.loads((tmp_path / "fake" / "numbers.json").read_text())


def test_main_job_twice_leaves_git_status_clean(quick_figures: tuple[dict, Path], tmp_path: Path) -> None:
    """The session's quick run is committed, the main job runs again (quick size): nothing changes."""
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    _, first = quick_figures
    repo = tmp_path / "repo"
    shutil.copytree(first, repo / "figures")

    def call(*args: str) -> str:
        done = subprocess.run(
            [git, "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    call("init", "-q")
    call("add", "-A")
    call("commit", "-qm", "first run")
    result = CliRunner().invoke(main, ["figures", "--all", "--quick", "--out", str(repo / "figures")])
    assert result.exit_code == 0, result.output
    assert call("status", "--porcelain") == ""


def test_corrupt_summary_is_rebuilt_from_the_per_source_files(tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "numbers.json").write_text("{broken")
    for source, value in (("a", 1), ("b", 2)):
        (tmp_path / source).mkdir()
        (tmp_path / source / "numbers.json").write_text(json.dumps({"x": value}))
    merged = figures._read_summary(tmp_path / "numbers.json", ["a", "b", "c"])
    assert merged == {"a": {"x": 1}, "b": {"x": 2}}  # no source's numbers lost
    err = capsys.readouterr().err
    assert err.startswith("WARNING: ") and "rebuilt from the per-source files (a, b)" in err
    assert len(err.splitlines()) == 1
    (tmp_path / "numbers.json").write_text("[1, 2]")  # valid JSON, not an object
    assert figures._read_summary(tmp_path / "numbers.json", ["a"], quiet=True) == {"a": {"x": 1}}


def test_unwritable_out_is_a_one_line_error() -> None:
    with pytest.raises(CliError, match="cannot write to --out"):
        check_output_folder(Path("/proc/optfilters-figures"), "--out")  # figures' --out check (moved to _common)


def test_out_creates_its_folder_but_not_a_missing_parent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Issue 13: --out DIR is created (like mkdir), a missing parent is refused by name before any run (it was
    created with all its parents, like mkdir -p); a source named twice is refused (it ran twice)."""
    with fake_source(monkeypatch, fail=False):
        made = CliRunner().invoke(main, ["figures", "fake", "--out", str(tmp_path / "new"), "--json"])
        deep = CliRunner().invoke(main, ["figures", "fake", "--out", str(tmp_path / "missing" / "deep")])
        twice = CliRunner().invoke(main, ["figures", "fake", "fake", "--out", str(tmp_path / "twice")])
    assert made.exit_code == 0, made.output
    assert (tmp_path / "new" / "fake" / "numbers.json").is_file()
    assert deep.exit_code == 2 and deep.stdout == ""
    assert deep.stderr == (
        f"Error: --out: folder '{tmp_path / 'missing'}' does not exist: cannot create 'deep' in it "
        "(create the folder first)\n"
    )
    assert not (tmp_path / "missing").exists()
    assert twice.exit_code == 2 and twice.stderr.startswith("Error: SOURCES names 'fake' twice")
    assert not (tmp_path / "twice").exists()


def test_concurrent_updates_keep_every_source(tmp_path: Path) -> None:
    """Eight writers update their own key of one summary under the lock: all eight survive."""
    summary = tmp_path / "numbers.json"

    def update(key: str) -> None:
        with figures._locked(tmp_path):
            merged = figures._read_summary(summary, [], quiet=True)
            merged[key] = {"n": key}
            atomic_write_text(summary, json.dumps(merged))

    threads = [threading.Thread(target=update, args=(f"s{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(json.loads(summary.read_text())) == [f"s{i}" for i in range(8)]


def test_outputs_within_tolerance_are_kept_and_counted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The committed numbers.json (another machine's: the 10th digit differs) is kept byte for byte, and said so."""
    with fake_source(monkeypatch, fail=False):
        CliRunner().invoke(main, ["figures", "fake", "--out", str(tmp_path)])
        part = tmp_path / "fake" / "numbers.json"
        part.write_text(part.read_text().replace('"value": 1.0', '"value": 1.0000000001', 1))
        before = part.read_bytes()
        result = CliRunner().invoke(main, ["figures", "fake", "--out", str(tmp_path)])
        assert result.exit_code == 0, result.output
        assert "; 1 output kept (within tolerance of the files there)" in result.stdout.splitlines()[0]
        assert part.read_bytes() == before
        assert json.loads((tmp_path / "numbers.json").read_text())["fake"] == json.loads(before)  # the summary too
        part.write_text(part.read_text().replace('"value": 1.0000000001', '"value": 1.1', 1))  # beyond: rewritten
        result = CliRunner().invoke(main, ["figures", "fake", "--out", str(tmp_path)])
    assert "kept" not in result.stdout and json.loads(part.read_text())["checks"][0]["value"] == 1.0
