"""Prediction overlays, drawn from stand-ins that follow the result-object contract (duck typing)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from optfilters import plot as oplot


def _heavy_ball_rate(mu: float, x: np.ndarray) -> np.ndarray:
    """Largest |root| of z^2 - (1 + mu - x) z + mu: heavy ball on a quadratic with lr * h = x."""
    return np.array([np.max(np.abs(np.roots([1.0, -(1.0 + mu - xi), mu]))) for xi in x])


@pytest.fixture(scope="module")
def heavy_ball_map() -> SimpleNamespace:
    mus = np.linspace(0.0, 0.9, 10)
    x = np.linspace(0.0025, 4.5, 1800)
    rate = np.array([_heavy_ball_rate(mu, x) for mu in mus])
    return SimpleNamespace(parameter="momentum", parameter_values=mus, lr_curvature=x, rate=rate, name="momentum")


def test_stability_map_draws_the_rates_the_boundary_and_the_fastest_step(heavy_ball_map: SimpleNamespace) -> None:
    m = heavy_ball_map
    r = oplot.stability_map(m, optimum=True)
    (mesh,) = r.artists["mesh"]
    drawn = np.asarray(mesh.get_array())
    assert drawn.shape == m.rate.shape
    stable = m.rate < 1.0
    np.testing.assert_allclose(drawn[stable], m.rate[stable])
    assert np.all(drawn[~stable] > mesh.norm.vmax) and mesh.norm.vmax == 1.0  # unstable cells use the "over" colour
    # The rate-1 contour crosses each grid row on the heavy-ball stability edge lr * h = 2 (1 + mu)
    # (between rows the contour is interpolated, so only the crossings on rows are exact to the x spacing).
    (boundary,) = r.artists["boundary"]
    vertices = np.concatenate([p.vertices for p in boundary.get_paths()])
    on_rows = np.isclose(vertices[:, 1][:, None], m.parameter_values[None, :], atol=1e-12).any(axis=1)
    assert on_rows.sum() >= len(m.parameter_values) - 1
    np.testing.assert_allclose(vertices[on_rows, 0], 2.0 * (1.0 + vertices[on_rows, 1]), atol=0.0025)
    # The fastest lr * h is the middle of the flat band ((1 - sqrt mu)^2, (1 + sqrt mu)^2), i.e. 1 + mu.
    np.testing.assert_allclose(r.data["fastest_lr_curvature"], 1.0 + m.parameter_values, atol=0.005)
    np.testing.assert_allclose(r.artists["optimum"][0].get_xdata(), r.data["fastest_lr_curvature"])
    assert r.ax.get_ylabel() == "momentum" and "lr" in r.ax.get_xlabel()
    assert r.ax.get_title() == "momentum: closed-loop rate"
    assert "colorbar" in r.artists


def test_stability_map_rejects_bad_shapes_and_missing_fields() -> None:
    bad = SimpleNamespace(parameter="mu", parameter_values=np.zeros(3), lr_curvature=np.zeros(4), rate=np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"rate must have shape .* \(3, 4\), got \(4, 3\)"):
        oplot.stability_map(bad)
    with pytest.raises(ValueError, match="lacks rate"):
        oplot.stability_map(SimpleNamespace(parameter="mu", parameter_values=[0.0], lr_curvature=[1.0]))


def test_closed_loop_rate_line_unit_level_and_stable_interval() -> None:
    x = np.linspace(0.0, 3.0, 301)
    gd = SimpleNamespace(lr_curvature=x, rate=np.abs(1.0 - x), stable_interval=(0.0, 2.0), name="gd")
    hb = SimpleNamespace(lr_curvature=x, rate=_heavy_ball_rate(0.5, x), stable_interval=(0.0, 3.0), name="momentum")
    r = oplot.closed_loop_rate([gd, hb])
    lines = r.artists["rate"]
    np.testing.assert_allclose(lines[0].get_ydata(), np.abs(1.0 - x))
    np.testing.assert_allclose(lines[1].get_ydata(), hb.rate)
    spans = r.artists["stable_interval"]
    assert [(s.get_x(), s.get_x() + s.get_width()) for s in spans] == [(0.0, 2.0), (0.0, 3.0)]
    (unit,) = r.artists["unit_rate"]
    assert unit.get_ydata()[0] == 1.0
    assert [t.get_text() for t in r.legend.get_texts()] == ["gd", "momentum"]
    assert r.ax.get_ylim()[1] == pytest.approx(2.0 * 1.05)
    open_ended = SimpleNamespace(lr_curvature=x, rate=np.abs(1.0 - x), stable_interval=(0.0, None), name="gd")
    (span,) = oplot.closed_loop_rate(open_ended).artists["stable_interval"]
    assert span.get_x() + span.get_width() == 3.0  # an open end runs to the last lr * h


def test_loss_comparison_band_is_mean_plus_minus_two_stderr() -> None:
    steps = np.arange(51)
    predicted = 0.9**steps + 0.1
    mean = predicted + 0.01 * np.sin(steps)
    stderr = np.full(51, 0.02)
    obj = SimpleNamespace(
        steps=steps, predicted_loss=predicted, observed_mean_loss=mean, observed_stderr=stderr, name="sgd"
    )
    r = oplot.loss_comparison(obj)
    np.testing.assert_allclose(r.artists["predicted"][0].get_ydata(), predicted)
    np.testing.assert_allclose(r.artists["observed"][0].get_ydata(), mean)
    (band,) = r.artists["band"]
    verts = band.get_paths()[0].vertices
    np.testing.assert_allclose(verts[:, 1].min(), np.min(mean - 2 * stderr))
    np.testing.assert_allclose(verts[:, 1].max(), np.max(mean + 2 * stderr))
    (series,) = r.data["series"]
    np.testing.assert_allclose(series["lo"], mean - 2 * stderr)
    np.testing.assert_allclose(series["hi"], mean + 2 * stderr)
    labels = [t.get_text() for t in r.legend.get_texts()]
    assert labels == ["sgd: observed (mean ± 2 s.e.)", "sgd: predicted"]
    # Producers write non-finite values as None in plain data; they are left out of the drawing.
    with_none = SimpleNamespace(
        steps=[0, 1, 2],
        predicted_loss=[1.0, None, 0.25],
        observed_mean_loss=[1.0, 0.5, 0.25],
        observed_stderr=[0.0, 0.0, 0.0],
        name="",
    )
    assert np.isnan(oplot.loss_comparison(with_none).artists["predicted"][0].get_ydata()[1])
    short = SimpleNamespace(steps=steps, predicted_loss=predicted[:-1], observed_mean_loss=mean, observed_stderr=stderr)
    with pytest.raises(ValueError, match="same length; steps has 51, predicted_loss has 50"):
        oplot.loss_comparison(short)
    with pytest.raises(ValueError, match="band must be >= 0, got -1"):
        oplot.loss_comparison(obj, band=-1)


def test_empirical_response_in_db_with_coherence_panel() -> None:
    f = np.linspace(0.0, 0.5, 65)
    z = np.exp(2j * np.pi * f)
    predicted = np.abs(1.0 / (1.0 - 0.9 / z))
    empirical = predicted * 1.05
    obj = SimpleNamespace(freqs=f, magnitude=empirical, predicted_magnitude=predicted, coherence=1 - f, name="momentum")
    r = oplot.empirical_response(obj)
    assert len(r.axes) == 2
    np.testing.assert_allclose(r.artists["empirical"][0].get_ydata(), 20 * np.log10(empirical))
    np.testing.assert_allclose(r.artists["predicted"][0].get_ydata(), 20 * np.log10(predicted))
    assert r.artists["predicted"][0].get_ydata()[0] == pytest.approx(20.0)
    np.testing.assert_allclose(r.artists["coherence"][0].get_ydata(), 1 - f)
    log = oplot.empirical_response(obj, log=True, db=False, coherence=False)
    assert len(log.axes) == 1 and np.all(log.artists["empirical"][0].get_xdata() > 0)
    np.testing.assert_allclose(log.artists["predicted"][0].get_ydata(), predicted[1:])


def test_sharpness_traces_thresholds_and_extra_levels() -> None:
    steps = np.arange(100)
    lr, mu = 0.1, 0.9
    gd = SimpleNamespace(steps=steps, sharpness=20 * (1 - np.exp(-steps / 10)), threshold=2 / lr, lr=lr, name="gd")
    hb = SimpleNamespace(
        steps=steps, sharpness=38 * (1 - np.exp(-steps / 10)), threshold=(2 + 2 * mu) / lr, lr=lr, name="momentum"
    )
    r = oplot.sharpness([gd, hb], thresholds={"2/lr": 2 / lr})
    np.testing.assert_allclose(r.artists["sharpness"][1].get_ydata(), hb.sharpness)
    assert r.artists["threshold"][0].get_ydata().tolist() == [20.0] * 100
    assert r.artists["threshold"][1].get_ydata()[0] == pytest.approx(38.0)
    (extra,) = r.artists["extra"]
    assert extra.get_ydata()[0] == pytest.approx(20.0)
    labels = [t.get_text() for t in r.legend.get_texts()]
    assert labels == ["gd (lr=0.1)", "threshold 20", "momentum (lr=0.1)", "threshold 38", "2/lr = 20"]
    varying = SimpleNamespace(steps=steps[:3], sharpness=np.ones(3), threshold=np.array([1.0, 2.0, 3.0]), name="")
    assert oplot.sharpness(varying).artists["threshold"][0].get_ydata().tolist() == [1.0, 2.0, 3.0]


def test_overlays_take_dicts_for_labels_and_refuse_label_with_several() -> None:
    x = np.linspace(0, 2, 5)
    c = SimpleNamespace(lr_curvature=x, rate=np.abs(1 - x), stable_interval=(0.0, 2.0), name="gd")
    r = oplot.closed_loop_rate({"plain GD": c})
    assert r.artists["rate"][0].get_label() == "plain GD"
    with pytest.raises(ValueError, match="label names a single curve"):
        oplot.closed_loop_rate([c, c], label="x")
