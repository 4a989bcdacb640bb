"""The generated summary table corrects the lecture's table."""

from __future__ import annotations

import optfilters
from optfilters.table import CORRECTIONS, classify_filter


def _row(name: str) -> dict[str, str]:
    table = optfilters.summary_table([name])
    return dict(zip(table.columns, table.rows[0], strict=True))


def test_lecture_rows() -> None:
    assert _row("sgd")["gradient filtering"] == "none"
    assert _row("momentum")["gradient filtering"].startswith("AR1, unit input gain")
    assert _row("nesterov")["gradient filtering"].startswith("ARMA(1,1) (pole 0.9, zero 0.4737)")
    assert _row("adagrad")["variance filter"].startswith("summer")
    assert _row("rmsprop")["variance filter"].startswith("AR1, unit DC gain (pole 0.99)")
    adam = _row("adam")
    # the lecture's table says "unit input gain" for Adam: it is unit DC gain, bias-corrected
    assert adam["gradient filtering"] == "AR1, unit DC gain (pole 0.9), bias correction"
    assert adam["variance filter"] == "AR1, unit DC gain (pole 0.999), bias correction"
    # and NAdam's variance filter is Adam's AR1, not ARMA(1,1)
    assert _row("nadam")["variance filter"] == adam["variance filter"]
    assert "time-varying" in _row("nadam")["gradient filtering"]
    assert _row("lion")["gradient normalisation"] == "sign()"


def test_markdown_has_every_row_and_the_corrections() -> None:
    text = optfilters.summary_table().to_markdown()
    for name in optfilters.names():
        if name != "custom":
            assert f"| {name} |" in text
    for correction in CORRECTIONS:
        assert correction in text


def test_classify_filter() -> None:
    assert classify_filter(optfilters.ArmaFilter([1.0], [1.0, -1.0])).startswith("summer")
    assert classify_filter(optfilters.ArmaFilter([0.5, 0.5])) == "FIR(1)"
