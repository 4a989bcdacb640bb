"""The documentation site builds offline with warnings as errors (sphinx-build -W): API reference from the
docstrings (numpydoc), the gallery (sphinx-gallery runs docs/gallery/plot_*.py), the paper (myst-parser) and the
CLI reference (sphinx-click)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

for module in ("sphinx", "numpydoc", "sphinx_gallery", "myst_parser", "sphinx_click"):
    pytest.importorskip(module, reason=f"{module} is a test dependency: pip install -e '.[test]'")

ROOT = Path(__file__).resolve().parents[2]


def test_docs_build_with_warnings_as_errors(tmp_path: Path) -> None:
    out = tmp_path / "html"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q", "-b", "html", "docs", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stderr.strip() == "", done.stderr[-4000:]  # -q: only warnings would print
    api = (out / "api.html").read_text()
    for name in ("optfilters.get", "optfilters.closed_loop.stability_map", "optfilters.explore.panel_data", "Check"):
        assert name in api, name
    # A result class's inherited plot() names the function that draws it (docs/conf.py, from _plot_function).
    assert 'draws it with <a class="reference internal" href="#optfilters.plot.bode_plot"' in api
    cli = (out / "cli.html").read_text()
    assert "--beta1" in cli and "--betas" in cli and "--magnitude-only" in cli and "explore" in cli
    paper = (out / "paper.html").read_text()
    assert 'src="_images/momentum_vs_nesterov.png"' in paper and (out / "_images" / "momentum_vs_nesterov.png").exists()
    gallery = sorted((out / "auto_gallery").glob("plot_*.html"))
    assert len(gallery) >= 5
    for page in gallery:
        assert "sphx-glr-single-img" in page.read_text(), page.name  # the script ran and drew its figure
