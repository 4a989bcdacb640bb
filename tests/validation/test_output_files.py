"""Output files: atomic writes, a corrupt numbers.json repaired from the per-source files, concurrent updates."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from optfilters.cli import figures
from optfilters.cli._common import CliError

from optfilters.validation import atomic_write_text


def test_atomic_write_replaces_whole_files_and_leaves_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "numbers.json"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["numbers.json"]


def test_atomic_write_into_an_unwritable_folder_raises_oserror() -> None:
    with pytest.raises(OSError):
        atomic_write_text("/proc/optfilters-test/numbers.json", "{}")


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
        figures._check_writable(Path("/proc/optfilters-figures"))


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
