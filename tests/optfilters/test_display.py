"""Rich display: H(z) typeset in LaTeX and HTML (read back and compared with b and a), models' stage tables,
result objects as well-formed HTML."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optfilters
from optfilters import ArmaFilter
from optfilters.display import polynomial_latex, transfer_function_latex


def _coefficients(latex_polynomial: str) -> dict[int, float]:
    """Read ``c0 + c1 z^{-1} - c2 z^{-2} ...`` back into {power: coefficient} (independently of the writer)."""
    text = re.sub(r" \\times 10\^\{(-?\d+)\}", r"e\1", latex_polynomial).replace(" ", "")
    out: dict[int, float] = {}
    for term in re.findall(r"[+-]?(?:[0-9.]+(?:e-?\d+)?)?(?:z\^\{-\d+\})?", text):
        if not term:
            continue
        match = re.fullmatch(r"([+-]?)([0-9.]+(?:e-?\d+)?)?(?:z\^\{-(\d+)\})?", term)
        assert match and (match.group(2) or match.group(3)), (term, latex_polynomial)
        sign, number, power = match.groups()
        value = float(number) if number else 1.0
        out[int(power) if power else 0] = -value if sign == "-" else value
    return out


def _check_polynomial(text: str, coefficients: np.ndarray) -> None:
    read = _coefficients(text)
    expected = {k: float(c) for k, c in enumerate(coefficients) if c != 0.0}
    assert read.keys() == expected.keys(), (text, coefficients)
    for k, c in expected.items():
        assert read[k] == pytest.approx(c, rel=1e-5), (text, coefficients)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-50, 50).filter(lambda v: abs(v) > 1e-3), min_size=1, max_size=4),
    st.lists(st.floats(-0.95, 0.95).filter(lambda v: abs(v) > 1e-3), min_size=0, max_size=3),
)
def test_latex_transfer_function_reads_back_as_b_and_a(b: list[float], a_tail: list[float]) -> None:
    f = ArmaFilter(b, [1.0, *a_tail])
    text = transfer_function_latex(f)
    assert text.startswith("H(z) = ")
    body = text[len("H(z) = ") :]
    if f.a.size == 1:
        _check_polynomial(body, f.b)
        return
    match = re.fullmatch(r"\\frac\{(.*)\}\{(.*)\}", body)
    assert match, text
    _check_polynomial(match.group(1), f.b)
    _check_polynomial(match.group(2), f.a)
    assert f._repr_latex_() == f"$${text}$$"


def test_known_forms() -> None:
    assert transfer_function_latex(ArmaFilter([0.1], [1.0, -0.9])) == r"H(z) = \frac{0.1}{1 - 0.9 z^{-1}}"
    assert (
        transfer_function_latex(ArmaFilter([1.9, -0.9], [1.0, -0.9]))
        == r"H(z) = \frac{1.9 - 0.9 z^{-1}}{1 - 0.9 z^{-1}}"
    )
    assert polynomial_latex([0.0, 0.0, -1.0]) == "-z^{-2}"
    assert polynomial_latex([1e-8]) == r"1 \times 10^{-8}"
    assert transfer_function_latex(ArmaFilter.identity()) == "H(z) = 1"


@pytest.mark.parametrize("name", optfilters.names())
def test_every_catalogue_model_displays(name: str) -> None:
    model = optfilters.get(name, b=(0.1,), a=(1.0, -0.9)) if name == "custom" else optfilters.get(name)
    html = model._repr_html_()
    root = ET.fromstring(html)  # well-formed
    assert root.tag == "div" and model.name in "".join(root.itertext())
    rows = root.findall(".//tr")
    roles = [role.replace("_", " ") for role, stage in model.stages if role != "learning_rate" or not stage.is_constant]
    assert len(rows) == 1 + max(len(roles), 1)  # a header, then one row per stage
    for role in roles:
        assert role in html
    latex = model._repr_latex_()
    assert latex.startswith(r"$$\begin{aligned}") and latex.endswith(r"\end{aligned}$$")
    for stage, f in model.filters().items():
        assert transfer_function_latex(f).split(" = ", 1)[1] in latex, stage


def test_result_objects_display_their_numbers() -> None:
    f = ArmaFilter.ema(0.9)
    from optfilters.noisy_quadratic import predict

    for obj in (
        optfilters.summarise(f),
        optfilters.frequency_response(f, n=64),
        optfilters.step_response(f, n=10),
        optfilters.impulse_response(f, n=10),
        optfilters.pole_zero(f),
        optfilters.quasi_hyperbolic_form(f),
        predict("sgd", lr=0.1, curvatures=1.0, noise_var=1.0, steps=20),
        optfilters.summary_table(["sgd", "adam"]),
    ):
        html = obj._repr_html_()
        ET.fromstring(html)
        assert "<table" in html
    summary_html = optfilters.summarise(f)._repr_html_()
    assert "dc_gain" in summary_html and ">1<" in summary_html and "0.0526316" in summary_html  # DC, Nyquist gain
    long_html = optfilters.frequency_response(f, n=64)._repr_html_()
    assert "64 values" in long_html  # long arrays are shortened, with their range
    table = ET.fromstring(optfilters.summary_table(["sgd", "momentum"])._repr_html_())
    cells = [[c.text for c in row] for row in table.findall("tr")]
    assert cells[2][:2] == ["momentum", "AR1, unit input gain (pole 0.9)"]
