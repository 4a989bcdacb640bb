"""Large-signal response of normalised optimizers: the reference values, closed forms and torch.optim itself."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch

from optfilters import CATALOGUE, InvalidHyperparameterError
from optfilters.large_signal import (
    adam_step_closed_form,
    bounded_region,
    burst_response,
    peak_ratio,
    peak_ratio_map,
    scale_response,
    settle_steps,
    steady_update,
    step_response,
)


def torch_updates(name: str, scales: np.ndarray, lr: float = 1e-3, **hyperparameters) -> np.ndarray:
    """``-(p_t - p_{t-1}) / lr`` of the catalogue entry's torch.optim class under the gradient ``scales`` (float64)."""
    entry = CATALOGUE[name]
    params = {**entry.defaults(), **hyperparameters, "lr": lr}
    module, _, cls_name = entry.torch_class.rpartition(".")
    cls = getattr(importlib.import_module(module), cls_name)
    kwargs = entry.torch_kwargs(params)
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = cls([p], **kwargs)
    out, previous = [], 0.0
    for g in scales:
        p.grad = torch.full((1,), float(g), dtype=torch.float64)
        opt.step()
        value = float(p.detach()[0])
        out.append(-(value - previous) / lr)
        previous = value
    return np.asarray(out)


def test_reference_values_of_the_issue():
    """beta1 0.9, a 10x jump: 5.2x with beta2 0.999 and 1.11x with beta2 0.95 (long history, eps negligible)."""
    high = step_response("adam", 10.0, beta1=0.9, beta2=0.999, eps=0.0)
    low = step_response("adam", 10.0, beta1=0.9, beta2=0.95, eps=0.0)
    assert round(high.peak_ratio, 1) == 5.2 and high.peak_ratio == pytest.approx(5.20172, abs=2e-5)
    assert round(low.peak_ratio, 2) == 1.11 and low.peak_ratio == pytest.approx(1.11036, abs=2e-5)
    assert (high.peak_delay, low.peak_delay) == (16, 17)  # the 17th and 18th steps at the new scale
    assert high.steady == pytest.approx(1.0, abs=1e-12) and high.steady_after == pytest.approx(1.0, abs=1e-12)
    with_eps = step_response("adam", 10.0, beta1=0.9, beta2=0.999)  # torch's eps = 1e-8 changes nothing visible
    assert with_eps.peak_ratio == pytest.approx(high.peak_ratio, rel=1e-7)


@pytest.mark.parametrize(
    ("ratio", "beta1", "beta2"),
    [(10.0, 0.9, 0.999), (10.0, 0.9, 0.95), (0.1, 0.9, 0.99), (3.0, 0.5, 0.9), (100.0, 0.99, 0.999)],
)
def test_long_history_is_the_closed_form(ratio, beta1, beta2):
    r = step_response("adam", ratio, beta1=beta1, beta2=beta2, eps=0.0)
    closed = adam_step_closed_form(ratio, beta1, beta2, r.updates.size - r.change)
    np.testing.assert_allclose(r.updates[r.change :], closed, rtol=3e-6)  # the 1e-6 settling tolerance


def test_against_torch_optim_adam_itself():
    scales = np.concatenate([np.ones(2500), np.full(300, 10.0), np.ones(200), np.full(5, 0.1), np.ones(50)])
    for beta2 in (0.999, 0.95):
        ours = scale_response("adam", scales, beta1=0.9, beta2=beta2, eps=0.0, change=2500).updates
        theirs = torch_updates("adam", scales, beta1=0.9, beta2=beta2, eps=0.0)
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("name", "hp"),
    [
        ("adamw", {"weight_decay": 0.0}),
        ("amsgrad", {}),
        ("nadam", {}),
        ("radam", {}),
        ("adamax", {}),
        ("rmsprop", {"alpha": 0.9}),
        ("rmsprop", {"centered": True, "momentum": 0.5}),
        ("adagrad", {}),
        ("adadelta", {"rho": 0.9}),
    ],
)
def test_every_normalised_model_against_its_torch_class(name, hp):
    scales = np.concatenate([np.ones(150), np.full(60, 8.0), np.full(40, 0.25)])
    ours = scale_response(name, scales, change=150, **hp) if name != "adagrad" else None
    if ours is None:  # Adagrad's summer has no steady state: compare the raw sequence only
        from optfilters.large_signal import _model, _updates

        series = _updates(_model(name, hp), scales[:, None])[:, 0]
    else:
        series = ours.updates
    np.testing.assert_allclose(series, torch_updates(name, scales, **hp), rtol=1e-9, atol=1e-12)


def test_step_down_never_overshoots_and_burst_of_one_step():
    down = step_response("adam", 0.1, beta1=0.9, beta2=0.999, eps=0.0)
    assert down.peak_ratio <= 1.0 + 1e-12 and down.minimum_ratio < 0.2
    r = 10.0
    one = burst_response("adam", r, length=1, beta1=0.9, beta2=0.999, eps=0.0)
    assert one.peak_ratio == pytest.approx((0.1 * r + 0.9) / math.sqrt(0.001 * r * r + 0.999), rel=2e-6)


def test_history_at_beta2_0999():
    peaks = [peak_ratio("adam", 10.0, before=n, beta1=0.9, beta2=0.999, eps=0.0) for n in (100, 1000)]
    assert [round(p, 2) for p in peaks] == [2.14, 4.48]


def test_a_longer_history_spikes_more():
    peaks = [peak_ratio("adam", 10.0, before=n, beta2=0.99, eps=0.0) for n in (1, 10, 100, 1000)]
    assert np.all(np.diff(peaks) > 0.0)
    assert peaks[-1] == pytest.approx(peak_ratio("adam", 10.0, beta2=0.99, eps=0.0), rel=1e-3)


def test_map_and_region_agree():
    grid = peak_ratio_map("adam", [0.5, 0.9], [0.9, 0.95, 0.98, 0.99], ratio=10.0, eps=0.0)
    assert np.all(np.diff(grid.peak_ratio, axis=1) >= 0.0)  # slower normaliser: bigger spike
    assert np.all(np.diff(grid.peak_ratio, axis=0) <= 0.0)  # slower numerator: smaller spike
    region = bounded_region("adam", 1.5, ratio=10.0, rows=[0.9], span=(0.5, 0.99), eps=0.0, tolerance=1e-4)
    limit = float(region.limits[0])
    assert 0.95 < limit < 0.98  # between the map's columns where 1.5 is crossed
    assert peak_ratio("adam", 10.0, beta1=0.9, beta2=limit, eps=0.0) <= 1.5 + 1e-9
    assert peak_ratio("adam", 10.0, beta1=0.9, beta2=1.0 - (1.0 - limit) * 0.99, eps=0.0) > 1.5


def test_settle_steps_and_steady_update():
    assert settle_steps("adam", beta1=0.9, beta2=0.999) == math.ceil(math.log(1e-6) / math.log(0.999))
    assert steady_update("adam", 2.0, eps=0.5) == pytest.approx(2.0 / 2.5, rel=1e-12)
    with pytest.raises(InvalidHyperparameterError, match="no steady state"):
        settle_steps("adagrad")


def test_bad_inputs():
    with pytest.raises(InvalidHyperparameterError, match="ratio"):
        step_response("adam", -1.0)
    with pytest.raises(InvalidHyperparameterError, match="scales"):
        scale_response("adam", [1.0, -1.0])
    with pytest.raises(InvalidHyperparameterError, match="bound"):
        bounded_region("adam", 0.5)
    with pytest.raises(InvalidHyperparameterError, match="no hyperparameter"):
        peak_ratio_map("adam", [0.9], [0.9], parameters=("beta1", "gamma"))
    with pytest.raises(InvalidHyperparameterError, match="length"):
        burst_response("adam", 10.0, 0)


def test_the_maps_refuse_a_parameter_named_twice() -> None:
    with pytest.raises(InvalidHyperparameterError, match="parameters names 'beta1' twice"):
        peak_ratio_map("adam", [0.9], [0.9], parameters=("beta1", "beta1"))
    with pytest.raises(InvalidHyperparameterError, match="parameters names 'beta2' twice"):
        bounded_region("adam", 2.0, parameters=("beta2", "beta2"))
