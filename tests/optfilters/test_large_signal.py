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


# ----------------------------------------------------------------------------- ratios at the ends of float64


def mpmath_updates(name: str, scales: list[float], **hp: float) -> list:
    """torch.optim's update per unit lr (lr = 1) under the gradient ``scales``, in mpmath at 60 digits."""
    import mpmath

    mp = mpmath.mp.clone()
    mp.dps = 60
    b1, b2 = mp.mpf(hp.get("beta1", 0.9)), mp.mpf(hp.get("beta2", hp.get("alpha", hp.get("rho", 0.9))))
    eps = mp.mpf(hp["eps"])
    m = v = vmax = acc = peak = mp.mpf(0)
    out = []
    for t, g in enumerate(scales, start=1):
        g = mp.mpf(g)
        if name == "adadelta":  # v, acc with rho; delta = sqrt(acc + eps) / sqrt(v + eps) g
            v = b2 * v + (1 - b2) * g * g
            delta = mp.sqrt(acc + eps) / mp.sqrt(v + eps) * g
            acc = b2 * acc + (1 - b2) * delta * delta
            out.append(delta)
            continue
        if name == "rmsprop":
            v = b2 * v + (1 - b2) * g * g
            out.append(g / (mp.sqrt(v) + eps))
            continue
        m = b1 * m + (1 - b1) * g
        if name == "adamax":  # u = max(beta2 u, |g| + eps); m / ((1 - beta1^t) u)
            peak = max(b2 * peak, abs(g) + eps)
            out.append(m / ((1 - b1**t) * peak))
            continue
        v = b2 * v + (1 - b2) * g * g
        vmax = max(vmax, v) if name == "amsgrad" else v
        out.append((m / (1 - b1**t)) / (mp.sqrt(vmax) / mp.sqrt(1 - b2**t) + eps))
    return out


_RANGE_HP = {
    "adam": {"beta1": 0.9, "beta2": 0.9},
    "amsgrad": {"beta1": 0.9, "beta2": 0.9},
    "adamax": {"beta1": 0.9, "beta2": 0.9},
    "rmsprop": {"alpha": 0.9},
    "adadelta": {"rho": 0.9},
}


def _check_against_mpmath(name: str, ratio: float, eps: float, before: int = 150, after: int = 150) -> None:
    hp = {**_RANGE_HP[name], "eps": eps}
    r = step_response(name, ratio, before=before, after=after, **hp)
    exact = mpmath_updates(name, r.scales.tolist(), **hp)
    n = max(settle_steps(name, **{k: v for k, v in hp.items() if k != "eps"}), r.scales.size)
    steady_after = abs(mpmath_updates(name, [r.scales[-1]] * n, **hp)[-1])
    assert r.steady_after == pytest.approx(float(steady_after), rel=1e-9, abs=1e-300)
    after_change = [abs(u) for u in exact[r.change :]]
    assert r.peak == pytest.approx(float(max(after_change)), rel=1e-9)
    # every update to 1e-9, above the rounding of the parameter the updates are read back from
    floor = 1e-13 * float(sum(abs(u) for u in exact))
    np.testing.assert_allclose(np.abs(r.updates), [float(abs(u)) for u in exact], rtol=1e-9, atol=floor)


@pytest.mark.parametrize("name", sorted(_RANGE_HP))
@pytest.mark.parametrize("ratio", [5e-324, 1e-300, 1e-160, 1e160, 1e300, 1e308])
def test_extreme_ratios_against_mpmath(name, ratio):
    """The squares of 1e160 or 5e-324 leave float64: each run goes to a power of two where they do not."""
    if name == "adadelta" and ratio > 2.0**900:  # a rise past 2**900 needs the history made negligible
        with pytest.raises(InvalidHyperparameterError, match=r"not negligible|too far apart"):
            step_response(name, ratio, before=150, after=150, **_RANGE_HP[name], eps=1e-8)
        return
    _check_against_mpmath(name, ratio, 1e-8)
    if name != "adadelta":  # Adadelta's updates are all zero without eps
        _check_against_mpmath(name, ratio, 0.0)


def test_issue_examples_at_extreme_ratios():
    """``--ratio 1e160`` gave steady state 0 and peak 0; ``--ratio 5e-324 --eps 0`` an undefined steady state."""
    up = step_response("adam", 1e160)
    assert up.steady_after == pytest.approx(1.0, rel=1e-12)
    assert up.peak_ratio == pytest.approx(step_response("adam", 1e100).peak_ratio, rel=1e-12)
    down = step_response("adam", 5e-324, eps=0.0)
    assert down.steady_after == 1.0
    assert down.peak_ratio == pytest.approx(0.9 / math.sqrt(0.999), rel=1e-9)  # m = 0.9, v = 0.999 at the change


def test_models_without_a_scaling_law_refuse_squares_out_of_range():
    """RAdam's first steps are unnormalised (degree 1), the rest degree 0: no single law, so no silent answer."""
    with pytest.raises(InvalidHyperparameterError, match="no scaling law"):
        step_response("radam", 1e160)
    assert step_response("radam", 1e3).steady_after == pytest.approx(1.0, rel=1e-6)
