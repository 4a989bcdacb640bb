"""2-D test functions and optimizer trajectories: closed forms, the lecture's grids, and engine equivalence."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import optfilters
from optfilters import ArmaFilter
from optfilters import plot as oplot
from optfilters import trajectory as otraj

coords = st.floats(-3.0, 3.0)


@settings(max_examples=25, deadline=None)
@given(coords, coords)
def test_gradients_are_the_autograd_gradients_of_the_values(x: float, y: float) -> None:
    for f in (otraj.quadratic_bowl(), otraj.rosenbrock()):
        p = torch.tensor([x, y], dtype=torch.float64, requires_grad=True)
        f.value(p[0], p[1]).backward()
        np.testing.assert_allclose(np.array(f.gradient(x, y), dtype=float), p.grad.numpy(), rtol=1e-12, atol=1e-12)
        # Hessian against central differences of the closed-form gradient.
        eps = 1e-6
        jac = np.column_stack(
            [
                (np.array(f.gradient(x + eps, y)) - np.array(f.gradient(x - eps, y))) / (2 * eps),
                (np.array(f.gradient(x, y + eps)) - np.array(f.gradient(x, y - eps))) / (2 * eps),
            ]
        )
        np.testing.assert_allclose(f.hessian(x, y), jac, rtol=1e-6, atol=1e-5)


def test_the_lecture_functions_and_grids() -> None:
    q, r = otraj.get_function("quadratic"), otraj.get_function("rosenbrock")
    assert float(q.value(1.0, 2.0)) == 10 * 1 + 100 * 4
    assert float(r.value(2.0, 3.0)) == (2 - 1) ** 2 + 10 * (3 - 4) ** 2
    assert q.curvatures() == (20.0, 200.0)
    assert q.lecture_grid("sgd") == pytest.approx(np.arange(1, 11) * 0.001)
    assert q.lecture_grid("momentum") == (0.0001, 0.0005, 0.001, 0.002, 0.003, 0.004)
    assert r.lecture_grid("gd") == r.lecture_grid("momentum") == (0.001, 0.005, 0.01, 0.02)
    assert r.lecture_grid("rmsprop") == (0.0005, 0.005, 0.01, 0.05)
    lo, hi = r.curvatures()
    assert lo + hi == pytest.approx(82 + 20) and lo * hi == pytest.approx(82 * 20 - 40**2)
    with pytest.raises(ValueError, match="no learning-rate grid for adam on quadratic"):
        q.lecture_grid("adam")
    with pytest.raises(ValueError, match="function must be one of 'quadratic', 'rosenbrock'"):
        otraj.get_function("himmelblau")


def test_gd_path_on_the_quadratic_is_the_closed_form_and_diverges_above_lr_0_01() -> None:
    lrs = [0.001, 0.005, 0.009, 0.01, 0.0101, 0.011]
    r = oplot.trajectories_plot(otraj.run_trajectories("quadratic", "gd", lrs=lrs, steps=300, engine="numpy"))
    runs = r.data["runs"][0]
    x0, y0 = otraj.quadratic_bowl().start
    for run, line in zip(runs[:4], r.artists["paths"][:4], strict=True):
        t = np.arange(run.steps + 1)
        # x_t = x0 (1 - 20 lr)^t, y_t = y0 (1 - 200 lr)^t: curvatures 20 and 200.
        np.testing.assert_allclose(line.get_xdata(), x0 * (1 - 20 * run.lr) ** t, rtol=1e-9, atol=1e-300)
        np.testing.assert_allclose(line.get_ydata(), y0 * (1 - 200 * run.lr) ** t, rtol=1e-9, atol=1e-300)
    assert [run.diverged for run in runs] == [False, False, False, False, True, True]
    # At lr = 2/200 exactly the y-mode oscillates without decay: |y_t| = y0 forever.
    np.testing.assert_allclose(np.abs(runs[3].params[:, 1]), y0, rtol=1e-9)
    assert runs[3].final_loss == pytest.approx(100 * y0**2, rel=1e-6)
    assert runs[5].stopped and runs[5].steps < 300  # left |theta| <= 1e6
    assert [a.get_title().endswith("(diverged)") for a in r.axes] == [run.diverged for run in runs]
    # Diverging paths leave the view; the view stays the function's box.
    assert r.axes[5].get_xlim() == otraj.quadratic_bowl().xlim


def test_the_bridge_torch_optim_and_the_numpy_reference_agree() -> None:
    assert otraj.bridge_available()
    for opt in ["sgd", "momentum", "nesterov", "rmsprop", ("adam", {"beta1": 0.8, "beta2": 0.99})]:
        runs = {e: otraj.run_trajectory("rosenbrock", opt, 0.005, steps=60, engine=e) for e in otraj.ENGINES}
        assert runs["auto"].engine == "bridge" and runs["bridge"].engine == "bridge"
        for engine in ("torch", "numpy"):
            np.testing.assert_allclose(runs[engine].params, runs["bridge"].params, rtol=1e-12, atol=1e-14)
    # Optimizers without a torch.optim class run through the bridge and the numpy reference.
    lion_bridge = otraj.run_trajectory("quadratic", "lion", 0.01, steps=30)
    lion_numpy = otraj.run_trajectory("quadratic", "lion", 0.01, steps=30, engine="numpy")
    np.testing.assert_allclose(lion_bridge.params, lion_numpy.params, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match=r"engine='torch' needs a torch\.optim class; lion has none"):
        otraj.run_trajectory("quadratic", "lion", 0.01, steps=3, engine="torch")


def test_trajectories_default_to_the_lecture_grid_through_the_bridge() -> None:
    r = oplot.trajectories_plot(otraj.run_trajectories("quadratic", ["sgd", "momentum"], steps=40), max_cols=5)
    runs = r.data["runs"]
    assert [len(row) for row in runs] == [10, 6] and r.data["engine"] == "bridge"
    assert len(r.axes) == 16 and len(r.artists["paths"]) == 16 and len(r.artists["contours"]) == 16
    assert r.figure.get_suptitle() == "f = 10 x^2 + 100 y^2"
    # 4 rows x 5 columns: 10 GD panels, 6 momentum panels, 4 panels switched off.
    assert sum(not a.axison for a in r.figure.axes) == 4
    assert r.axes[10].get_title() == "momentum, lr=0.0001"
    # Heavy ball (beta = 0.9) on curvature 200 is stable for lr < 2 (1 + 0.9) / 200 = 0.019: all converge.
    assert not any(run.diverged for row in runs for run in row)
    start = r.artists["start"][0]
    assert (start.get_xdata()[0], start.get_ydata()[0]) == otraj.quadratic_bowl().start


def test_trajectories_overlay_on_one_axes_with_labels_from_a_dict() -> None:
    fig, ax = plt.subplots()
    optimizers = {"GD": "sgd", "heavy ball": optfilters.get("momentum", momentum=0.9), "EMA": ArmaFilter.ema(0.9)}
    runs = otraj.run_trajectories("rosenbrock", optimizers, lrs=0.01, steps=50, engine="numpy")
    r = oplot.trajectories_plot(runs, ax=ax)
    assert r.axes == (ax,) and r.figure is fig
    labels = [t.get_text() for t in r.legend.get_texts()]
    assert labels == ["GD, lr=0.01", "heavy ball, lr=0.01", "EMA, lr=0.01"]
    # Filtered gradient descent with the unit-DC-gain EMA from rest: first step is lr * 0.1 * grad.
    x0, y0 = otraj.rosenbrock().start
    g = np.array(otraj.rosenbrock().gradient(x0, y0))
    np.testing.assert_allclose(r.data["runs"][2][0].params[1], np.array([x0, y0]) - 0.01 * 0.1 * g, rtol=1e-12)
    assert r.ax.get_title() == "f = (x - 1)^2 + 10 (y - x^2)^2"


def test_run_validation_messages() -> None:
    with pytest.raises(ValueError, match=r"lr must be finite and > 0, got -0\.1"):
        otraj.run_trajectory("quadratic", "sgd", -0.1)
    with pytest.raises(ValueError, match="steps must be an integer >= 1, got 0"):
        otraj.run_trajectory("quadratic", "sgd", 0.1, steps=0)
    with pytest.raises(ValueError, match="engine must be one of bridge, torch, numpy, auto; got 'jax'"):
        otraj.run_trajectory("quadratic", "sgd", 0.1, engine="jax")
    with pytest.raises(ValueError, match=r"start must be two finite numbers, got \[1.0\]"):
        otraj.run_trajectory("quadratic", "sgd", 0.1, start=[1.0])
    with pytest.raises(ValueError, match=r"sgd has no hyperparameter 'momentun'.*did you mean 'momentum'"):
        otraj.run_trajectory("quadratic", ("sgd", {"momentun": 0.9}), 0.1)
    with pytest.raises(ValueError, match="optimizers must be catalogue names"):
        otraj.run_trajectory("quadratic", 3.0, 0.1)
    run = otraj.run_trajectory("quadratic", "sgd", 0.02, steps=500, engine="numpy")
    d = run.as_dict()
    assert d["diverged"] and d["stopped"] and d["steps"] == run.steps
    assert all(v is None or math.isfinite(v) for row in d["params"] for v in row)


def test_the_old_plot_paths_of_the_trajectory_code_are_deprecated_aliases() -> None:
    for name in ("run_trajectory", "run_trajectories", "get_function", "quadratic_bowl", "TrajectoryRun", "ENGINES"):
        with pytest.warns(DeprecationWarning, match=rf"optfilters\.plot\.{name} moved to optfilters\.trajectory"):
            assert getattr(oplot, name) is getattr(otraj, name)
    with pytest.raises(AttributeError, match="has no attribute 'no_such_view'"):
        _ = oplot.no_such_view  # type: ignore[attr-defined]
    # computing inside the plot call still works, with a warning, and draws the same runs
    with pytest.warns(DeprecationWarning, match="compute the runs with optfilters.trajectory.run_trajectories"):
        old = oplot.trajectories_plot("quadratic", "sgd", lrs=0.001, steps=5, engine="numpy")
    new = otraj.run_trajectories("quadratic", "sgd", lrs=0.001, steps=5, engine="numpy").plot()
    np.testing.assert_array_equal(old.data["runs"][0][0].params, new.data["runs"][0][0].params)
    old.close()
    new.close()
    with pytest.raises(ValueError, match="optimizers= goes with a test function"):
        oplot.trajectories_plot(otraj.run_trajectories("quadratic", "sgd", lrs=0.001, steps=2, engine="numpy"), "sgd")


def test_the_plotting_layer_never_reaches_the_bridge() -> None:
    import ast
    from pathlib import Path

    source = Path(oplot.__file__).read_text(encoding="utf-8")
    imported = {node.module or "" for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)} | {
        alias.name for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Import) for alias in node.names
    }
    assert not any(m == "torch" or m.startswith(("torch.", "optfilters.torch")) or m == ".torch" for m in imported)
