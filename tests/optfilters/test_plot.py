"""The plotting library's contract: light imports, saving, no show, no figure leak, no leaked style.

Prediction overlays, drawn from stand-ins that follow the result-object contract (duck typing).

Filter views (Bode, pole-zero, step, impulse): the values drawn against closed forms.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optfilters
from optfilters import ArmaFilter
from optfilters import plot as oplot
from optfilters.trajectory import run_trajectories


def test_importing_optfilters_or_optfilters_plot_loads_no_matplotlib_or_torch() -> None:
    code = (
        "import sys, optfilters, optfilters.plot; "
        "print(' '.join(m for m in ('matplotlib', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_each_former_plot_name_warns_and_is_the_renamed_function() -> None:
    renamed = [name for name in oplot.__all__ if name.endswith("_plot")]
    assert len(renamed) == 29
    for new in renamed:
        old = new.removesuffix("_plot")
        assert old not in oplot.__all__ and old not in vars(oplot)
        message = rf"^optfilters\.plot\.{old} is deprecated; use optfilters\.plot\.{new} \(same behaviour\)$"
        with pytest.warns(DeprecationWarning, match=message) as caught:
            alias = getattr(oplot, old)
        assert alias is getattr(oplot, new)
        assert len(caught) == 1 and caught[0].filename == __file__  # attributed to the caller's line
    with pytest.warns(DeprecationWarning, match=r"optfilters\.plot\.root_locus is deprecated"):
        from optfilters.plot import root_locus  # type: ignore[attr-defined]
    assert root_locus is oplot.root_locus_plot
    with pytest.raises(AttributeError, match="has no attribute 'nyquist'"):
        oplot.nyquist  # type: ignore[attr-defined]  # noqa: B018


def _every_view(ax: Any = None) -> list[oplot.PlotResult]:
    """One call of every plot function (into ``ax`` where a single Axes fits)."""
    x = np.linspace(0.01, 3.0, 20)
    steps = np.arange(5)
    return [
        oplot.bode_plot("momentum", ax=ax, n=16),
        oplot.pole_zero_plot("nesterov", ax=ax),
        oplot.step_plot("adam", ax=ax, n=5),
        oplot.impulse_plot("momentum", ax=ax, n=5),
        oplot.compare_plot(["sgd", "momentum"], kind="step", ax=ax, n=3),
        oplot.stability_map_plot(
            SimpleNamespace(
                parameter="momentum",
                parameter_values=np.array([0.0, 0.5]),
                lr_curvature=x,
                rate=np.abs(1 - x)[None, :].repeat(2, axis=0),
                name="m",
            ),
            ax=ax,
            colorbar=ax is None,
        ),
        oplot.closed_loop_rate_plot(SimpleNamespace(lr_curvature=x, rate=np.abs(1 - x), stable_interval=(0, 2)), ax=ax),
        oplot.loss_comparison_plot(
            SimpleNamespace(
                steps=steps, predicted_loss=0.5**steps, observed_mean_loss=0.5**steps, observed_stderr=0 * steps
            ),
            ax=ax,
        ),
        oplot.empirical_response_plot(
            SimpleNamespace(freqs=x / 6, magnitude=x, predicted_magnitude=x, coherence=None), ax=ax
        ),
        oplot.sharpness_plot(SimpleNamespace(steps=steps, sharpness=steps * 1.0, threshold=4.0), ax=ax),
        oplot.trajectories_plot(run_trajectories("quadratic", "sgd", lrs=0.001, steps=5, engine="numpy"), ax=ax),
    ]


def test_each_view_without_ax_makes_exactly_one_figure_and_close_releases_it() -> None:
    before = set(plt.get_fignums())
    results = _every_view()
    results.append(oplot.overview_plot("adam", n=5))
    results.append(
        run_trajectories("rosenbrock", ["sgd", "momentum"], lrs=[0.001, 0.002], steps=5, engine="numpy").plot()
    )
    made = set(plt.get_fignums()) - before
    assert made == {r.figure.number for r in results} and len(made) == len(results)
    for r in results:
        assert r.axes and all(a.figure is r.figure for a in r.axes)
        assert any(r.artists.values())
        r.close()
    assert set(plt.get_fignums()) == before


def test_views_into_a_given_axes_make_no_figure() -> None:
    fig, ax = plt.subplots()
    before = plt.get_fignums()
    results = _every_view(ax)
    assert plt.get_fignums() == before
    assert all(r.figure is fig and r.axes[0] is ax for r in results)


def test_style_is_applied_inside_calls_and_does_not_leak() -> None:
    snapshot = dict(matplotlib.rcParams)
    r = oplot.bode_plot(["momentum", "nesterov"], n=8)
    assert dict(matplotlib.rcParams) == snapshot
    assert r.artists["magnitude"][0].get_color() == oplot.PALETTE[0]
    assert r.legend.get_frame_on() is False  # STYLE["legend.frameon"]
    assert not r.ax.spines["top"].get_visible()
    with oplot.style():
        assert matplotlib.rcParams["legend.frameon"] is False
    assert dict(matplotlib.rcParams) == snapshot


@pytest.mark.parametrize(("suffix", "magic"), [("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_saving_writes_each_format_byte_stable(tmp_path: Path, suffix: str, magic: bytes) -> None:
    paths = []
    for k in range(2):  # the same figure built twice, as two regenerations of a committed figure
        r = oplot.overview_plot(["momentum", "nesterov"], n=10)
        paths.append(r.savefig(tmp_path / f"run{k}" / "deep" / f"overview.{suffix}"))
        r.close()
    first, second = (p.read_bytes() for p in paths)
    assert first.startswith(magic) and len(first) > 1000
    assert first == second  # no dates, versions or random ids in the file


def test_analysis_results_plot_through_this_module() -> None:
    f = ArmaFilter([1.9, -0.9], [1.0, -0.9], name="nesterov")
    fr = optfilters.frequency_response(f, n=16).plot()
    pz = optfilters.pole_zero(f).plot()
    st = optfilters.step_response(optfilters.get("adam").gradient, n=8).plot(bias_corrected=True)
    ir = optfilters.impulse_response(f, n=4).plot()
    assert isinstance(fr, oplot.PlotResult) and fr.artists["magnitude"][0].get_ydata()[0] == pytest.approx(20.0)
    assert pz.artists["poles"][0].get_xdata().tolist() == pytest.approx([0.9])
    np.testing.assert_allclose(st.artists["bias_corrected"][0].get_ydata(), np.ones(8), atol=1e-12)
    np.testing.assert_allclose(ir.artists["impulse"][0].get_ydata(), [1.9, 0.81, 0.729, 0.6561])
    assert len(fr.lines) == 2 and fr.ax is fr.axes[0]


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
    r = oplot.stability_map_plot(m, optimum=True)
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
        oplot.stability_map_plot(bad)
    with pytest.raises(ValueError, match="lacks rate"):
        oplot.stability_map_plot(SimpleNamespace(parameter="mu", parameter_values=[0.0], lr_curvature=[1.0]))


def test_closed_loop_rate_line_unit_level_and_stable_interval() -> None:
    x = np.linspace(0.0, 3.0, 301)
    gd = SimpleNamespace(lr_curvature=x, rate=np.abs(1.0 - x), stable_interval=(0.0, 2.0), name="gd")
    hb = SimpleNamespace(lr_curvature=x, rate=_heavy_ball_rate(0.5, x), stable_interval=(0.0, 3.0), name="momentum")
    r = oplot.closed_loop_rate_plot([gd, hb])
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
    (span,) = oplot.closed_loop_rate_plot(open_ended).artists["stable_interval"]
    assert span.get_x() + span.get_width() == 3.0  # an open end runs to the last lr * h


def test_loss_comparison_band_is_mean_plus_minus_two_stderr() -> None:
    steps = np.arange(51)
    predicted = 0.9**steps + 0.1
    mean = predicted + 0.01 * np.sin(steps)
    stderr = np.full(51, 0.02)
    obj = SimpleNamespace(
        steps=steps, predicted_loss=predicted, observed_mean_loss=mean, observed_stderr=stderr, name="sgd"
    )
    r = oplot.loss_comparison_plot(obj)
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
    assert np.isnan(oplot.loss_comparison_plot(with_none).artists["predicted"][0].get_ydata()[1])
    short = SimpleNamespace(steps=steps, predicted_loss=predicted[:-1], observed_mean_loss=mean, observed_stderr=stderr)
    with pytest.raises(ValueError, match="same length; steps has 51, predicted_loss has 50"):
        oplot.loss_comparison_plot(short)
    with pytest.raises(ValueError, match="band must be >= 0, got -1"):
        oplot.loss_comparison_plot(obj, band=-1)


def test_empirical_response_in_db_with_coherence_panel() -> None:
    f = np.linspace(0.0, 0.5, 65)
    z = np.exp(2j * np.pi * f)
    predicted = np.abs(1.0 / (1.0 - 0.9 / z))
    empirical = predicted * 1.05
    obj = SimpleNamespace(freqs=f, magnitude=empirical, predicted_magnitude=predicted, coherence=1 - f, name="momentum")
    r = oplot.empirical_response_plot(obj)
    assert len(r.axes) == 2
    np.testing.assert_allclose(r.artists["empirical"][0].get_ydata(), 20 * np.log10(empirical))
    np.testing.assert_allclose(r.artists["predicted"][0].get_ydata(), 20 * np.log10(predicted))
    assert r.artists["predicted"][0].get_ydata()[0] == pytest.approx(20.0)
    np.testing.assert_allclose(r.artists["coherence"][0].get_ydata(), 1 - f)
    log = oplot.empirical_response_plot(obj, log=True, db=False, coherence=False)
    assert len(log.axes) == 1 and np.all(log.artists["empirical"][0].get_xdata() > 0)
    np.testing.assert_allclose(log.artists["predicted"][0].get_ydata(), predicted[1:])


def test_sharpness_traces_thresholds_and_extra_levels() -> None:
    steps = np.arange(100)
    lr, mu = 0.1, 0.9
    gd = SimpleNamespace(steps=steps, sharpness=20 * (1 - np.exp(-steps / 10)), threshold=2 / lr, lr=lr, name="gd")
    hb = SimpleNamespace(
        steps=steps, sharpness=38 * (1 - np.exp(-steps / 10)), threshold=(2 + 2 * mu) / lr, lr=lr, name="momentum"
    )
    r = oplot.sharpness_plot([gd, hb], thresholds={"2/lr": 2 / lr})
    np.testing.assert_allclose(r.artists["sharpness"][1].get_ydata(), hb.sharpness)
    assert r.artists["threshold"][0].get_ydata().tolist() == [20.0] * 100
    assert r.artists["threshold"][1].get_ydata()[0] == pytest.approx(38.0)
    (extra,) = r.artists["extra"]
    assert extra.get_ydata()[0] == pytest.approx(20.0)
    labels = [t.get_text() for t in r.legend.get_texts()]
    assert labels == ["gd (lr=0.1)", "threshold 20", "momentum (lr=0.1)", "threshold 38", "2/lr = 20"]
    varying = SimpleNamespace(steps=steps[:3], sharpness=np.ones(3), threshold=np.array([1.0, 2.0, 3.0]), name="")
    assert oplot.sharpness_plot(varying).artists["threshold"][0].get_ydata().tolist() == [1.0, 2.0, 3.0]


def test_overlays_take_dicts_for_labels_and_refuse_label_with_several() -> None:
    x = np.linspace(0, 2, 5)
    c = SimpleNamespace(lr_curvature=x, rate=np.abs(1 - x), stable_interval=(0.0, 2.0), name="gd")
    r = oplot.closed_loop_rate_plot({"plain GD": c})
    assert r.artists["rate"][0].get_label() == "plain GD"
    with pytest.raises(ValueError, match="label names a single curve"):
        oplot.closed_loop_rate_plot([c, c], label="x")


def _momentum_h(beta: float, freqs: np.ndarray) -> np.ndarray:
    """Heavy-ball gradient filter 1 / (1 - beta z^-1) on the unit circle, written out."""
    z = np.exp(2j * np.pi * freqs)
    return 1.0 / (1.0 - beta / z)


# ----------------------------------------------------------------------------- Bode


def test_bode_of_momentum_matches_the_closed_form_and_starts_at_20_db() -> None:
    r = oplot.bode_plot(optfilters.get("momentum", momentum=0.9), n=257)
    (mag,), (phase,) = r.artists["magnitude"], r.artists["phase"]
    f = mag.get_xdata()
    np.testing.assert_allclose(f, np.linspace(0.0, 0.5, 257))
    h = _momentum_h(0.9, f)
    np.testing.assert_allclose(mag.get_ydata(), 20 * np.log10(np.abs(h)), atol=1e-9)
    np.testing.assert_allclose(phase.get_ydata(), np.degrees(np.angle(h)), atol=1e-7)
    assert mag.get_ydata()[0] == pytest.approx(20.0, abs=1e-12)  # 20 log10(1 / (1 - 0.9))
    assert mag.get_ydata()[-1] == pytest.approx(20 * np.log10(1 / 1.9), abs=1e-12)
    assert r.axes[0].get_ylabel() == "magnitude (dB)"
    assert r.axes[1].get_xlabel() == "frequency (cycles/step)"
    assert r.legend is None  # one unlabelled series


@settings(max_examples=15, deadline=None)
@given(st.floats(0.0, 0.99))
def test_bode_of_any_heavy_ball_dc_level_is_minus_20_log10_one_minus_beta(beta: float) -> None:
    r = oplot.bode_plot(ArmaFilter.leaky_integrator(beta), n=8, phase=False)
    try:
        assert r.artists["magnitude"][0].get_ydata()[0] == pytest.approx(-20 * np.log10(1 - beta), abs=1e-9)
    finally:
        r.close()


def test_bode_linear_magnitude_and_log_axis() -> None:
    r = oplot.bode_plot(ArmaFilter([1.0], [1.0, -0.9]), log=True, db=False, fmin=1e-3, n=64)
    (mag,) = r.artists["magnitude"]
    f = mag.get_xdata()
    assert r.axes[0].get_xscale() == "log" and r.axes[1].get_xscale() == "log"
    assert f[0] == pytest.approx(1e-3) and f[-1] == pytest.approx(0.5) and np.all(f > 0)
    np.testing.assert_allclose(np.diff(np.log(f)), np.log(500) / 63)  # geometric spacing
    np.testing.assert_allclose(mag.get_ydata(), np.abs(_momentum_h(0.9, f)), rtol=1e-12)


def test_bode_several_optimizers_give_several_lines_and_a_legend() -> None:
    models = [optfilters.get("momentum", momentum=0.9), optfilters.get("nesterov", momentum=0.9), "adam"]
    r = oplot.bode_plot(models, n=65)
    lines = r.artists["magnitude"]
    assert len(lines) == 3 and len(r.artists["phase"]) == 3
    assert [t.get_text() for t in r.legend.get_texts()] == ["momentum", "nesterov", "adam"]
    assert len({line.get_color() for line in lines}) == 3
    f = lines[1].get_xdata()
    z = np.exp(2j * np.pi * f)
    nesterov = (1.9 - 0.9 / z) / (1 - 0.9 / z)  # Bengio-Nesterov (1 + mu) - mu z^-1 over 1 - mu z^-1
    np.testing.assert_allclose(lines[1].get_ydata(), 20 * np.log10(np.abs(nesterov)), atol=1e-9)
    ema = 0.1 / (1 - 0.9 / z)  # Adam's unit-DC-gain gradient filter: 0 dB at DC
    np.testing.assert_allclose(lines[2].get_ydata(), 20 * np.log10(np.abs(ema)), atol=1e-9)
    # The lecture's point: standard momentum attenuates high frequencies more than Nesterov.
    assert lines[0].get_ydata()[-1] < lines[1].get_ydata()[-1]


def test_bode_dict_labels_hyperparameter_labels_and_stages() -> None:
    r = oplot.bode_plot({"standard": "momentum", "Bengio-Nesterov": "nesterov"}, phase=False, n=16)
    assert [t.get_text() for t in r.legend.get_texts()] == ["standard", "Bengio-Nesterov"]
    assert len(r.axes) == 1
    r2 = oplot.bode_plot(optfilters.get("momentum", momentum=0.5), n=4)
    assert r2.artists["magnitude"][0].get_label() == "momentum (momentum=0.5)"
    r3 = oplot.bode_plot(optfilters.get("adam", beta1=0.9, beta2=0.99), stages="all", n=16)
    labels = [line.get_label() for line in r3.artists["magnitude"]]
    assert labels == ["adam (beta2=0.99): gradient", "adam (beta2=0.99): second_moment"]
    # Both EMAs have unit DC gain: 0 dB at f = 0.
    assert [line.get_ydata()[0] for line in r3.artists["magnitude"]] == pytest.approx([0.0, 0.0], abs=1e-9)


def test_bode_direction_stage_and_bad_inputs() -> None:
    r = oplot.bode_plot("nesterov", stages="direction", n=9, phase=False)
    ref = optfilters.frequency_response(optfilters.get("nesterov").direction_filter(), n=9)
    np.testing.assert_allclose(r.artists["magnitude"][0].get_ydata(), ref.magnitude_db)
    with pytest.raises(ValueError, match="not linear"):
        oplot.bode_plot("adam", stages="direction")
    with pytest.raises(ValueError, match=r"stages must be .*second_moment.*got 'velocity'"):
        oplot.bode_plot("adam", stages="velocity")
    with pytest.raises(ValueError, match="n must be an integer >= 2, got 1"):
        oplot.bode_plot("sgd", n=1)
    with pytest.raises(ValueError, match=r"fmin must be in \(0, 0.5\), got 0.7"):
        oplot.bode_plot("sgd", log=True, fmin=0.7)
    with pytest.raises(ValueError, match=r"bode_plot\(\) accepts .* got int"):
        oplot.bode_plot(42)
    with pytest.raises(ValueError, match="unknown optimizer 'adma'"):
        oplot.bode_plot("adma")
    _fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="ax must be a sequence of 2 Axes; got 1"):
        oplot.bode_plot("sgd", ax=ax, phase=True)


def test_bode_into_given_axes_and_from_a_frequency_response() -> None:
    fig, (a, b) = plt.subplots(2, 1)
    before = plt.get_fignums()
    fr = optfilters.frequency_response(ArmaFilter.ema(0.9), n=33)
    r = fr.plot(ax=(a, b))
    assert plt.get_fignums() == before  # drew into the given figure, made none
    assert r.figure is fig and r.axes == (a, b)
    np.testing.assert_allclose(r.artists["magnitude"][0].get_ydata(), fr.magnitude_db)
    np.testing.assert_allclose(r.artists["phase"][0].get_ydata(), np.degrees(fr.phase))
    _fig2, c = plt.subplots()
    r2 = oplot.bode_plot("momentum", ax=c)  # a single Axes: magnitude only
    assert list(r2.artists) == ["magnitude"] and r2.axes == (c,)


# ----------------------------------------------------------------------------- pole-zero


def test_pole_zero_of_momentum_has_its_pole_at_0_9_and_the_unit_circle() -> None:
    r = oplot.pole_zero_plot(optfilters.get("momentum", momentum=0.9))
    (poles,) = r.artists["poles"]
    assert poles.get_xdata().tolist() == pytest.approx([0.9]) and poles.get_ydata().tolist() == pytest.approx([0.0])
    assert poles.get_marker() == "x"
    (zeros,) = r.artists["zeros"]
    assert zeros.get_marker() == "o" and zeros.get_markerfacecolor() == "none"
    assert zeros.get_xdata().tolist() == pytest.approx([0.0])  # 1/(1 - 0.9 z^-1) = z/(z - 0.9)
    (circle,) = r.artists["unit_circle"]
    np.testing.assert_allclose(np.hypot(circle.get_xdata(), circle.get_ydata()), 1.0)
    assert np.ptp(np.arctan2(circle.get_ydata(), circle.get_xdata())) > 6.2  # the whole circle
    assert r.ax.get_aspect() == 1.0
    lo, hi = r.ax.get_xlim()
    assert lo < -1 and hi > 1


def test_pole_zero_nesterov_zero_several_series_and_legend() -> None:
    r = oplot.pole_zero_plot(["momentum", optfilters.get("nesterov", momentum=0.9)])
    assert r.artists["zeros"][1].get_xdata().tolist() == pytest.approx([0.9 / 1.9])  # zero of 1.9 - 0.9 z^-1
    assert [t.get_text() for t in r.legend.get_texts()] == ["momentum", "nesterov", "pole", "zero"]
    assert r.artists["poles"][0].get_color() != r.artists["poles"][1].get_color()


def test_pole_zero_complex_repeated_and_unstable_roots() -> None:
    f = optfilters.get("butterworth").filters()["gradient"]
    r = oplot.pole_zero_plot(f)
    (poles,) = r.artists["poles"]
    drawn = np.sort_complex(poles.get_xdata() + 1j * poles.get_ydata())
    np.testing.assert_allclose(drawn, np.sort_complex(f.poles), atol=1e-12)
    assert np.all(np.abs(drawn) < 1)
    # A Butterworth low-pass of order k has a k-fold zero at z = -1, annotated with its count.
    order = len(f.zeros)
    np.testing.assert_allclose(f.zeros, -1.0, atol=1e-6)
    assert [t.get_text() for t in r.artists["multiplicity"]] == [str(order)]
    unstable = oplot.pole_zero_plot(ArmaFilter([1.0], [1.0, -1.5]))
    assert unstable.ax.get_xlim()[1] > 1.5  # the view includes a pole outside the circle
    pz = optfilters.pole_zero(ArmaFilter([1.9, -0.9], [1.0, -0.9]))
    r2 = pz.plot()
    assert r2.artists["zeros"][0].get_xdata().tolist() == pytest.approx([0.9 / 1.9])


# ----------------------------------------------------------------------------- step and impulse


def test_step_of_adam_raw_is_one_minus_beta_to_the_t_and_bias_corrected_is_one() -> None:
    r = oplot.step_plot(optfilters.get("adam", beta1=0.9), n=50)
    (raw,), (comp,) = r.artists["raw"], r.artists["bias_corrected"]
    t = np.arange(1, 51)
    assert raw.get_xdata().tolist() == t.tolist()
    np.testing.assert_allclose(raw.get_ydata(), 1 - 0.9**t, atol=1e-12)
    np.testing.assert_allclose(comp.get_ydata(), np.ones(50), atol=1e-12)
    assert raw.get_linestyle() == "-" and comp.get_linestyle() == "--"
    assert (raw.get_label(), comp.get_label()) == ("adam, raw", "adam, bias-corrected")
    assert r.legend is not None  # raw vs bias-corrected needs a key
    actual = oplot.step_plot(optfilters.get("adam", beta1=0.9), n=10, bias_corrected="actual")
    np.testing.assert_allclose(actual.artists["actual"][0].get_ydata(), np.ones(10), atol=1e-12)


def test_step_unit_input_gain_ar1_and_the_torch_first_step_quirk() -> None:
    r = oplot.step_plot(
        {"unit DC gain AR1": ArmaFilter.ema(0.9), "unit input gain AR1": ArmaFilter([1.0], [1.0, -0.9])},
        n=30,
        bias_corrected=False,
    )
    t = np.arange(1, 31)
    dc, ui = r.artists["raw"]
    np.testing.assert_allclose(dc.get_ydata(), 1 - 0.9**t, atol=1e-12)  # lecture: 1 - alpha^(n+1), n from 0
    np.testing.assert_allclose(ui.get_ydata(), (1 - 0.9**t) / 0.1, rtol=1e-12)
    assert list(r.artists) == ["raw"]
    # torch's SGD buffer starts at the first gradient: with dampening = momentum its step response is 1 at once.
    quirk = oplot.step_plot(optfilters.get("sgd", momentum=0.9, dampening=0.9), n=20, bias_corrected=False)
    np.testing.assert_allclose(quirk.artists["raw"][0].get_ydata(), np.ones(20), atol=1e-12)


def test_step_of_momentum_bias_corrected_reaches_the_dc_gain_and_bad_inputs() -> None:
    r = oplot.step_plot("momentum", n=12, bias_corrected=True)
    np.testing.assert_allclose(r.artists["bias_corrected"][0].get_ydata(), np.full(12, 10.0), rtol=1e-12)
    s = optfilters.step_response(ArmaFilter.ema(0.5), n=5)
    r2 = s.plot()
    np.testing.assert_allclose(r2.artists["raw"][0].get_ydata(), 1 - 0.5 ** np.arange(1, 6))
    with pytest.raises(ValueError, match="bias_corrected must be None, True, False or 'actual'; got 'both'"):
        oplot.step_plot("adam", bias_corrected="both")
    with pytest.raises(ValueError, match="n must be an integer >= 1, got 0"):
        oplot.step_plot("adam", n=0)
    with pytest.raises(ValueError, match=r"step_plot\(\) accepts .* got FrequencyResponse"):
        oplot.step_plot(optfilters.frequency_response(ArmaFilter.ema(0.9)))


def test_impulse_responses_against_closed_forms() -> None:
    r = oplot.impulse_plot([optfilters.get("momentum", momentum=0.9), optfilters.get("nesterov", momentum=0.9)], n=25)
    t = np.arange(1, 26)
    heavy, nesterov = r.artists["impulse"]
    np.testing.assert_allclose(heavy.get_ydata(), 0.9 ** (t - 1), rtol=1e-12)
    # Nesterov: h1 = 1 + mu, then (1 + mu) mu^(t-1) - mu^(t-1) = mu^t.
    np.testing.assert_allclose(nesterov.get_ydata(), np.r_[1.9, 0.9 ** t[1:]], rtol=1e-12)
    assert [t.get_text() for t in r.legend.get_texts()] == ["momentum", "nesterov"]
    # Adam's bias-corrected gradient filter, beta1 = 0.5: h_t = 0.5 * 0.5^(t-1) / (1 - 0.5^t).
    adam = oplot.impulse_plot(optfilters.get("adam", beta1=0.5), n=6).artists["impulse"][0].get_ydata()
    np.testing.assert_allclose(adam, 0.5 * 0.5 ** (np.arange(1, 7) - 1) / (1 - 0.5 ** np.arange(1, 7)), rtol=1e-12)
    ir = optfilters.impulse_response(ArmaFilter([1.0], [1.0, -0.5]), n=4)
    assert ir.plot().artists["impulse"][0].get_ydata().tolist() == [1.0, 0.5, 0.25, 0.125]


def test_compare_and_overview() -> None:
    r = oplot.compare_plot({"GD": "sgd", "heavy ball": "momentum"}, kind="impulse", n=5)
    assert [line.get_label() for line in r.artists["impulse"]] == ["GD", "heavy ball"]
    assert r.artists["impulse"][0].get_ydata().tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="kind must be one of bode, pole_zero, step, impulse; got 'nyquist'"):
        oplot.compare_plot(["sgd"], kind="nyquist")
    o = oplot.overview_plot(optfilters.get("adam", beta1=0.9), n=20)
    assert len(o.axes) == 4
    assert o.artists["magnitude"][0].get_ydata()[0] == pytest.approx(0.0, abs=1e-9)
    assert o.artists["poles"][0].get_xdata().tolist() == pytest.approx([0.9])
    np.testing.assert_allclose(o.artists["bias_corrected"][0].get_ydata(), np.ones(20), atol=1e-12)
    several = oplot.overview_plot(["momentum", "nesterov"], n=5)
    assert len(several.artists["magnitude"]) == 2 and several.legend is not None
