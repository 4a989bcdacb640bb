"""The plotting library's contract: light imports, saving, no show, no figure leak, no leaked style."""

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


def _every_view(ax: Any = None) -> list[oplot.PlotResult]:
    """One call of every plot function (into ``ax`` where a single Axes fits)."""
    x = np.linspace(0.01, 3.0, 20)
    steps = np.arange(5)
    return [
        oplot.bode("momentum", ax=ax, n=16),
        oplot.pole_zero("nesterov", ax=ax),
        oplot.step("adam", ax=ax, n=5),
        oplot.impulse("momentum", ax=ax, n=5),
        oplot.compare(["sgd", "momentum"], kind="step", ax=ax, n=3),
        oplot.stability_map(
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
        oplot.closed_loop_rate(SimpleNamespace(lr_curvature=x, rate=np.abs(1 - x), stable_interval=(0, 2)), ax=ax),
        oplot.loss_comparison(
            SimpleNamespace(
                steps=steps, predicted_loss=0.5**steps, observed_mean_loss=0.5**steps, observed_stderr=0 * steps
            ),
            ax=ax,
        ),
        oplot.empirical_response(
            SimpleNamespace(freqs=x / 6, magnitude=x, predicted_magnitude=x, coherence=None), ax=ax
        ),
        oplot.sharpness(SimpleNamespace(steps=steps, sharpness=steps * 1.0, threshold=4.0), ax=ax),
        oplot.trajectories(run_trajectories("quadratic", "sgd", lrs=0.001, steps=5, engine="numpy"), ax=ax),
    ]


def test_each_view_without_ax_makes_exactly_one_figure_and_close_releases_it() -> None:
    before = set(plt.get_fignums())
    results = _every_view()
    results.append(oplot.overview("adam", n=5))
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
    r = oplot.bode(["momentum", "nesterov"], n=8)
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
        r = oplot.overview(["momentum", "nesterov"], n=10)
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
