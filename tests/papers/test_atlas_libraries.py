"""The library-atlas script: one folder per installed library, no timings in the files, missing ones reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from optfilters.papers import atlas_libraries

pytest.importorskip("torch")


def test_writes_an_atlas_per_installed_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "tiny_library_i15.py").write_text(
        "import torch\n\nclass Heavy(torch.optim.SGD):\n    def __init__(self, params, lr=0.1, momentum=0.5):\n"
        "        super().__init__(params, lr=lr, momentum=momentum)\n"
    )
    monkeypatch.syspath_prepend(str(lib))
    monkeypatch.setattr(atlas_libraries, "LIBRARIES", ("tiny_library_i15", "not_installed_library_i15"))
    summary = atlas_libraries.reproduce(tmp_path / "out", quick=True)
    assert summary["not_installed_library_i15"] is None
    tiny = summary["tiny_library_i15"]
    assert tiny["classes"] == 1 and tiny["verdict_counts"]["linear"] == 1 and tiny["findings"] == 0
    folder = tmp_path / "out" / "tiny_library_i15"
    assert sorted(p.name for p in folder.iterdir()) == ["atlas.json", "atlas.md", "atlas.png"]
    assert "seconds" not in json.loads((folder / "atlas.json").read_text())
    atlas_libraries.main([str(tmp_path / "again"), "--quick"])
    printed = capsys.readouterr().out
    assert "tiny_library_i15" in printed and "not_installed_library_i15: not installed" in printed
