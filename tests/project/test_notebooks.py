"""The course notebooks under examples/, executed top to bottom (nbclient), with their rich outputs checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is a test dependency")
nbclient = pytest.importorskip("nbclient", reason="nbclient is a test dependency")
pytest.importorskip("ipykernel", reason="ipykernel is a test dependency")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def execute(path: Path) -> Any:
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(EXAMPLES)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell (their asserts included)
    return notebook


def outputs(notebook: Any) -> list[dict[str, Any]]:
    return [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]


def test_two_course_notebooks() -> None:
    assert [p.name for p in NOTEBOOKS] == ["lab_predicted_vs_observed.ipynb", "lecture_filter_view.ipynb"]
    for path in NOTEBOOKS:
        stored = nbformat.read(path, as_version=4)
        assert all(not cell.get("outputs") for cell in stored.cells if cell.cell_type == "code"), path  # kept clean


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_shows_rich_output(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel draws inline, as in Jupyter (the suite uses Agg)
    notebook = execute(path)
    produced = outputs(notebook)
    assert not [o for o in produced if o.get("output_type") == "error"]
    html = [o["data"]["text/html"] for o in produced if "text/html" in o.get("data", {})]
    images = [o for o in produced if "image/png" in o.get("data", {})]
    assert html and images, path.name
    if path.stem == "lecture_filter_view":
        latex = [o["data"]["text/latex"] for o in produced if "text/latex" in o.get("data", {})]
        # The first cell shows the momentum model: its stages as a table and H(z) typeset.
        assert "<table" in html[0] and "gradient" in html[0]
        assert any(r"\frac{1}{1 - 0.9 z^{-1}}" in text for text in latex)
        assert any(r"\frac{1.9 - 0.9 z^{-1}}{1 - 0.9 z^{-1}}" in text for text in latex)
    else:
        assert any("NoisyQuadraticPrediction" in text for text in html)
