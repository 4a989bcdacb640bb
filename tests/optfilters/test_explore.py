"""The explorer without a browser: widgets from the hyperparameter specs, the URL state, and the numbers drawn
(every catalogue entry), against the library and closed forms; the command's one-line errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optfilters
from optfilters.explore import panel_data, parse_query, query_string, stability_parameter, widget_spec


@pytest.mark.parametrize("name", optfilters.names())
def test_widgets_from_the_specs(name: str) -> None:
    entry = optfilters.CATALOGUE[name]
    for hp in entry.hyperparameters:
        spec = widget_spec(hp)
        if hp.kind in ("bool", "floats"):
            assert spec.slider is None
        elif spec.slider == "linear":
            assert hp.low is not None and hp.high is not None and (spec.start, spec.end) == (hp.low, hp.high)
            if hp.default is not None:
                assert spec.start <= hp.default <= spec.end
        elif spec.slider == "log":
            assert hp.high is None and hp.default > 0
            assert spec.start < math.log10(hp.default) < spec.end  # the default sits inside the log range
        else:
            assert hp.default in (0, 0.0, None) or hp.low is None  # zero defaults and unbounded gains: text only
    if name in ("momentum", "adam", "butterworth", "rmsprop"):
        assert stability_parameter(entry) in {hp.name for hp in entry.hyperparameters}


def test_log_sliders_for_learning_rates_and_linear_for_betas() -> None:
    adam = {hp.name: widget_spec(hp) for hp in optfilters.CATALOGUE["adam"].hyperparameters}
    assert adam["lr"].slider == "log" and adam["eps"].slider == "log" and adam["beta1"].slider == "linear"
    butter = {hp.name: widget_spec(hp) for hp in optfilters.CATALOGUE["butterworth"].hyperparameters}
    assert butter["order"].slider == "linear" and butter["order"].step == 1.0 and butter["cutoff"].end == 0.5


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(optfilters.names()),
    st.sampled_from(optfilters.names()),
    st.floats(0.0, 0.99),
    st.sampled_from(["quadratic", "rosenbrock"]),
    st.integers(1, 5000),
)
def test_url_state_round_trips(a: str, b: str, value: float, fn: str, steps: int) -> None:
    entry = optfilters.CATALOGUE[a]
    arguments = {"a": [a], "b": [b], "fn": [fn], "steps": [str(steps)]}
    floats = [hp.name for hp in entry.hyperparameters if hp.kind == "float"]
    if floats:
        arguments[f"a.{floats[0]}"] = [f"{value:g}"]
    state, problems = parse_query(arguments)
    assert problems == []
    again, problems = parse_query({k: [v] for k, v in (item.split("=", 1) for item in query_string(state).split("&"))})
    assert problems == [] and query_string(again) == query_string(state)
    assert again.entries["a"].name == a and again.fn == fn and again.steps == steps


def test_bad_url_values_fall_back_with_messages() -> None:
    state, problems = parse_query({"a": ["adma"], "fn": ["saddle"], "steps": ["x"], "noise": ["-1"]})
    assert state.entries["a"].name == "momentum" and state.fn == "quadratic" and state.steps == 200
    assert len(problems) == 4 and problems[0].startswith("a: unknown optimizer 'adma'")


@pytest.mark.parametrize("name", optfilters.names())
def test_numbers_drawn_for_every_entry_are_the_library_s(name: str) -> None:
    entry = optfilters.CATALOGUE[name]
    model = optfilters.get(name, b=(0.1,), a=(1.0, -0.9)) if name == "custom" else optfilters.get(name)
    d = panel_data(model, entry, steps=20, points=33, map_points=6)
    gradient = model.filters()["gradient"]
    expected = optfilters.frequency_response(gradient, freqs=np.linspace(0.0, 0.5, 33))
    np.testing.assert_allclose(d.bode["magnitude"], expected.magnitude, rtol=1e-12)
    poles = np.sort_complex(np.array(d.poles["x"]) + 1j * np.array(d.poles["y"]))
    np.testing.assert_allclose(poles, np.sort_complex(gradient.poles), atol=1e-12)
    step = optfilters.step_response(model.gradient_stage, n=20)
    np.testing.assert_allclose(d.step["raw"], step.raw, rtol=1e-12)
    np.testing.assert_allclose(d.step["corrected"], step.bias_corrected, rtol=1e-12)
    assert d.trajectory or any(n.startswith("trajectory") for n in d.notes)
    assert d.prediction or any(n.startswith("prediction") for n in d.notes)
    if d.rate:
        from optfilters.closed_loop import closed_loop

        # nan both ways where the t -> infinity loop is marginal (Adafactor's and ASGD's steps vanish)
        assert d.edge == pytest.approx(closed_loop(model).stability().max_stable_lr_curvature, rel=1e-12, nan_ok=True)


def test_heavy_ball_closed_forms() -> None:
    mu, lr = 0.7, 0.004
    d = panel_data(optfilters.get("momentum", momentum=mu, lr=lr), optfilters.CATALOGUE["momentum"], steps=10)
    assert d.edge == pytest.approx(2 + 2 * mu, rel=1e-12)
    x = np.asarray(d.rate["x"])
    expected = np.array([max(abs(np.roots([1.0, -(1.0 + mu - v), mu]))) for v in x])
    np.testing.assert_allclose(d.rate["rate"], expected, rtol=1e-9, atol=1e-12)
    assert d.point["x"] == [pytest.approx(lr * 200.0)]
    assert d.map["parameter"] == "momentum" and d.map["current"] == mu
    inside = [r for row in d.map["rate"] for r in row]
    assert min(inside) >= 0.0
