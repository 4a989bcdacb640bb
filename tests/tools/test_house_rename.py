"""tools/house_rename.py: the public-module rule as a script (moves, rewrites, merges shims, idempotent)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script() -> object:
    spec = importlib.util.spec_from_file_location("house_rename", ROOT / "tools" / "house_rename.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["house_rename"] = module
    spec.loader.exec_module(module)
    return module


def test_the_tree_follows_the_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert _script().main(["--root", str(ROOT), "--dry-run"]) == 0  # type: ignore[attr-defined]
    assert capsys.readouterr().out.strip() == "nothing to do: the tree already follows the public-module rule"


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_a_private_layout_is_moved_and_every_reference_rewritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(
        tmp_path,
        {
            "optfilters/__init__.py": "from ._model import Model\nfrom . import _gains\n",
            "optfilters/_model.py": '__all__ = ["Model"]\n\nfrom ._filter import F\n\n\nclass Model:\n    pass\n',
            "optfilters/_filter.py": "class F:\n    pass\n",
            "optfilters/_gains.py": '__all__ = ["Gain"]\n\n\nclass Gain:\n    pass\n\n\ndef nadam():\n    pass\n',
            "optfilters/gains.py": '"""Shim."""\n\nfrom ._gains import Gain, nadam\n\n__all__ = ["Gain", "nadam"]\n',
            "optfilters/torch/__init__.py": "from .._filter import F\nfrom ._optimizer import Opt\n",
            "optfilters/torch/_optimizer.py": "from .._model import Model\n\n\nclass Opt:\n    pass\n",
            "cli/main.py": "from optfilters._model import Model\nfrom optfilters import _gains\n",
            "tests/test_x.py": 'TARGET = "optfilters._model.Model"\nimport optfilters.torch._optimizer as o\n',
            "docs/layout.rst": "See ``optfilters/_model.py`` and :mod:`optfilters._gains`.\n",
        },
    )
    script = _script()
    assert script.main(["--root", str(tmp_path), "--no-git"]) == 0  # type: ignore[attr-defined]
    out = capsys.readouterr().out
    assert "moved   optfilters/_gains.py -> optfilters/gains.py (shim replaced)" in out
    files = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.py")}
    assert files == {
        "optfilters/__init__.py",
        "optfilters/model.py",
        "optfilters/filters.py",
        "optfilters/gains.py",
        "optfilters/torch/__init__.py",
        "optfilters/torch/optimizer.py",
        "cli/main.py",
        "tests/test_x.py",
    }
    read = lambda name: (tmp_path / name).read_text(encoding="utf-8")  # noqa: E731
    assert read("optfilters/__init__.py") == "from .model import Model\nfrom . import gains as _gains\n"
    assert "from .filters import F" in read("optfilters/model.py")
    assert read("optfilters/torch/__init__.py") == "from ..filters import F\nfrom .optimizer import Opt\n"
    assert read("optfilters/torch/optimizer.py").startswith("from ..model import Model\n")
    assert read("cli/main.py") == "from optfilters.model import Model\nfrom optfilters import gains as _gains\n"
    assert read("tests/test_x.py") == 'TARGET = "optfilters.model.Model"\nimport optfilters.torch.optimizer as o\n'
    assert read("docs/layout.rst") == "See ``optfilters/model.py`` and :mod:`optfilters.gains`.\n"
    # the shim's names are merged into the module that now holds the code
    assert '__all__ = [\n    "Gain",\n    "nadam",\n]\n' in read("optfilters/gains.py")
    # idempotent
    assert script.main(["--root", str(tmp_path), "--no-git"]) == 0  # type: ignore[attr-defined]
    assert capsys.readouterr().out.strip() == "nothing to do: the tree already follows the public-module rule"
