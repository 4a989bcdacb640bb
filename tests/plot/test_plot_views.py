"""Filter views (Bode, pole-zero, step, impulse): the values drawn against closed forms."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optfilters
from optfilters import ArmaFilter
from optfilters import plot as oplot


def _momentum_h(beta: float, freqs: np.ndarray) -> np.ndarray:
    """Heavy-ball gradient filter 1 / (1 - beta z^-1) on the unit circle, written out."""
    z = np.exp(2j * np.pi * freqs)
    return 1.0 / (1.0 - beta / z)


# ----------------------------------------------------------------------------- Bode


def test_bode_of_momentum_matches_the_closed_form_and_starts_at_20_db() -> None:
    r = oplot.bode(optfilters.get("momentum", momentum=0.9), n=257)
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
    r = oplot.bode(ArmaFilter.leaky_integrator(beta), n=8, phase=False)
    try:
        assert r.artists["magnitude"][0].get_ydata()[0] == pytest.approx(-20 * np.log10(1 - beta), abs=1e-9)
    finally:
        r.close()


def test_bode_linear_magnitude_and_log_axis() -> None:
    r = oplot.bode(ArmaFilter([1.0], [1.0, -0.9]), log=True, db=False, fmin=1e-3, n=64)
    (mag,) = r.artists["magnitude"]
    f = mag.get_xdata()
    assert r.axes[0].get_xscale() == "log" and r.axes[1].get_xscale() == "log"
    assert f[0] == pytest.approx(1e-3) and f[-1] == pytest.approx(0.5) and np.all(f > 0)
    np.testing.assert_allclose(np.diff(np.log(f)), np.log(500) / 63)  # geometric spacing
    np.testing.assert_allclose(mag.get_ydata(), np.abs(_momentum_h(0.9, f)), rtol=1e-12)


def test_bode_several_optimizers_give_several_lines_and_a_legend() -> None:
    models = [optfilters.get("momentum", momentum=0.9), optfilters.get("nesterov", momentum=0.9), "adam"]
    r = oplot.bode(models, n=65)
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
    r = oplot.bode({"standard": "momentum", "Bengio-Nesterov": "nesterov"}, phase=False, n=16)
    assert [t.get_text() for t in r.legend.get_texts()] == ["standard", "Bengio-Nesterov"]
    assert len(r.axes) == 1
    r2 = oplot.bode(optfilters.get("momentum", momentum=0.5), n=4)
    assert r2.artists["magnitude"][0].get_label() == "momentum (momentum=0.5)"
    r3 = oplot.bode(optfilters.get("adam", beta1=0.9, beta2=0.99), stages="all", n=16)
    labels = [line.get_label() for line in r3.artists["magnitude"]]
    assert labels == ["adam (beta2=0.99): gradient", "adam (beta2=0.99): second_moment"]
    # Both EMAs have unit DC gain: 0 dB at f = 0.
    assert [line.get_ydata()[0] for line in r3.artists["magnitude"]] == pytest.approx([0.0, 0.0], abs=1e-9)


def test_bode_direction_stage_and_bad_inputs() -> None:
    r = oplot.bode("nesterov", stages="direction", n=9, phase=False)
    ref = optfilters.frequency_response(optfilters.get("nesterov").direction_filter(), n=9)
    np.testing.assert_allclose(r.artists["magnitude"][0].get_ydata(), ref.magnitude_db)
    with pytest.raises(ValueError, match="not linear"):
        oplot.bode("adam", stages="direction")
    with pytest.raises(ValueError, match=r"stages must be .*second_moment.*got 'velocity'"):
        oplot.bode("adam", stages="velocity")
    with pytest.raises(ValueError, match="n must be an integer >= 2, got 1"):
        oplot.bode("sgd", n=1)
    with pytest.raises(ValueError, match=r"fmin must be in \(0, 0.5\), got 0.7"):
        oplot.bode("sgd", log=True, fmin=0.7)
    with pytest.raises(ValueError, match=r"bode\(\) accepts .* got int"):
        oplot.bode(42)
    with pytest.raises(ValueError, match="unknown optimizer 'adma'"):
        oplot.bode("adma")
    _fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="ax must be a sequence of 2 Axes; got 1"):
        oplot.bode("sgd", ax=ax, phase=True)


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
    r2 = oplot.bode("momentum", ax=c)  # a single Axes: magnitude only
    assert list(r2.artists) == ["magnitude"] and r2.axes == (c,)


# ----------------------------------------------------------------------------- pole-zero


def test_pole_zero_of_momentum_has_its_pole_at_0_9_and_the_unit_circle() -> None:
    r = oplot.pole_zero(optfilters.get("momentum", momentum=0.9))
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
    r = oplot.pole_zero(["momentum", optfilters.get("nesterov", momentum=0.9)])
    assert r.artists["zeros"][1].get_xdata().tolist() == pytest.approx([0.9 / 1.9])  # zero of 1.9 - 0.9 z^-1
    assert [t.get_text() for t in r.legend.get_texts()] == ["momentum", "nesterov", "pole", "zero"]
    assert r.artists["poles"][0].get_color() != r.artists["poles"][1].get_color()


def test_pole_zero_complex_repeated_and_unstable_roots() -> None:
    f = optfilters.get("butterworth").filters()["gradient"]
    r = oplot.pole_zero(f)
    (poles,) = r.artists["poles"]
    drawn = np.sort_complex(poles.get_xdata() + 1j * poles.get_ydata())
    np.testing.assert_allclose(drawn, np.sort_complex(f.poles), atol=1e-12)
    assert np.all(np.abs(drawn) < 1)
    # A Butterworth low-pass of order k has a k-fold zero at z = -1, annotated with its count.
    order = len(f.zeros)
    np.testing.assert_allclose(f.zeros, -1.0, atol=1e-6)
    assert [t.get_text() for t in r.artists["multiplicity"]] == [str(order)]
    unstable = oplot.pole_zero(ArmaFilter([1.0], [1.0, -1.5]))
    assert unstable.ax.get_xlim()[1] > 1.5  # the view includes a pole outside the circle
    pz = optfilters.pole_zero(ArmaFilter([1.9, -0.9], [1.0, -0.9]))
    r2 = pz.plot()
    assert r2.artists["zeros"][0].get_xdata().tolist() == pytest.approx([0.9 / 1.9])


# ----------------------------------------------------------------------------- step and impulse


def test_step_of_adam_raw_is_one_minus_beta_to_the_t_and_bias_corrected_is_one() -> None:
    r = oplot.step(optfilters.get("adam", beta1=0.9), n=50)
    (raw,), (comp,) = r.artists["raw"], r.artists["bias_corrected"]
    t = np.arange(1, 51)
    assert raw.get_xdata().tolist() == t.tolist()
    np.testing.assert_allclose(raw.get_ydata(), 1 - 0.9**t, atol=1e-12)
    np.testing.assert_allclose(comp.get_ydata(), np.ones(50), atol=1e-12)
    assert raw.get_linestyle() == "-" and comp.get_linestyle() == "--"
    assert (raw.get_label(), comp.get_label()) == ("adam, raw", "adam, bias-corrected")
    assert r.legend is not None  # raw vs bias-corrected needs a key
    actual = oplot.step(optfilters.get("adam", beta1=0.9), n=10, bias_corrected="actual")
    np.testing.assert_allclose(actual.artists["actual"][0].get_ydata(), np.ones(10), atol=1e-12)


def test_step_unit_input_gain_ar1_and_the_torch_first_step_quirk() -> None:
    r = oplot.step(
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
    quirk = oplot.step(optfilters.get("sgd", momentum=0.9, dampening=0.9), n=20, bias_corrected=False)
    np.testing.assert_allclose(quirk.artists["raw"][0].get_ydata(), np.ones(20), atol=1e-12)


def test_step_of_momentum_bias_corrected_reaches_the_dc_gain_and_bad_inputs() -> None:
    r = oplot.step("momentum", n=12, bias_corrected=True)
    np.testing.assert_allclose(r.artists["bias_corrected"][0].get_ydata(), np.full(12, 10.0), rtol=1e-12)
    s = optfilters.step_response(ArmaFilter.ema(0.5), n=5)
    r2 = s.plot()
    np.testing.assert_allclose(r2.artists["raw"][0].get_ydata(), 1 - 0.5 ** np.arange(1, 6))
    with pytest.raises(ValueError, match="bias_corrected must be None, True, False or 'actual'; got 'both'"):
        oplot.step("adam", bias_corrected="both")
    with pytest.raises(ValueError, match="n must be an integer >= 1, got 0"):
        oplot.step("adam", n=0)
    with pytest.raises(ValueError, match=r"step\(\) accepts .* got FrequencyResponse"):
        oplot.step(optfilters.frequency_response(ArmaFilter.ema(0.9)))


def test_impulse_responses_against_closed_forms() -> None:
    r = oplot.impulse([optfilters.get("momentum", momentum=0.9), optfilters.get("nesterov", momentum=0.9)], n=25)
    t = np.arange(1, 26)
    heavy, nesterov = r.artists["impulse"]
    np.testing.assert_allclose(heavy.get_ydata(), 0.9 ** (t - 1), rtol=1e-12)
    # Nesterov: h1 = 1 + mu, then (1 + mu) mu^(t-1) - mu^(t-1) = mu^t.
    np.testing.assert_allclose(nesterov.get_ydata(), np.r_[1.9, 0.9 ** t[1:]], rtol=1e-12)
    assert [t.get_text() for t in r.legend.get_texts()] == ["momentum", "nesterov"]
    # Adam's bias-corrected gradient filter, beta1 = 0.5: h_t = 0.5 * 0.5^(t-1) / (1 - 0.5^t).
    adam = oplot.impulse(optfilters.get("adam", beta1=0.5), n=6).artists["impulse"][0].get_ydata()
    np.testing.assert_allclose(adam, 0.5 * 0.5 ** (np.arange(1, 7) - 1) / (1 - 0.5 ** np.arange(1, 7)), rtol=1e-12)
    ir = optfilters.impulse_response(ArmaFilter([1.0], [1.0, -0.5]), n=4)
    assert ir.plot().artists["impulse"][0].get_ydata().tolist() == [1.0, 0.5, 0.25, 0.125]


def test_compare_and_overview() -> None:
    r = oplot.compare({"GD": "sgd", "heavy ball": "momentum"}, kind="impulse", n=5)
    assert [line.get_label() for line in r.artists["impulse"]] == ["GD", "heavy ball"]
    assert r.artists["impulse"][0].get_ydata().tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="kind must be one of bode, pole_zero, step, impulse; got 'nyquist'"):
        oplot.compare(["sgd"], kind="nyquist")
    o = oplot.overview(optfilters.get("adam", beta1=0.9), n=20)
    assert len(o.axes) == 4
    assert o.artists["magnitude"][0].get_ydata()[0] == pytest.approx(0.0, abs=1e-9)
    assert o.artists["poles"][0].get_xdata().tolist() == pytest.approx([0.9])
    np.testing.assert_allclose(o.artists["bias_corrected"][0].get_ydata(), np.ones(20), atol=1e-12)
    several = oplot.overview(["momentum", "nesterov"], n=5)
    assert len(several.artists["magnitude"]) == 2 and several.legend is not None
