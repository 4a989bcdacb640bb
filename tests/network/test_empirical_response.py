"""The empirical transfer function recovers known filters from recorded training sequences.

The references are closed forms written out here (the heavy-ball filter
``1 / (1 - mu e^{-i w})``, Nesterov's ``((1 + mu) - mu e^{-i w}) / (1 - mu e^{-i w})``)
and :func:`scipy.signal.coherence` for the coherence of a single coordinate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from scipy import signal

import optfilters
from optfilters.network import CoordinateRecorder, empirical_response, observe_network
from optfilters.torch import FilterOptimizer


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _noisy_quadratic_run(name: str, steps: int, coordinates: int, **hp: float) -> tuple[np.ndarray, np.ndarray]:
    """FilterOptimizer on f = 1/2 sum h_i w_i^2 + xi . w (fresh white noise xi every step): recorded g and u."""
    gen = torch.Generator().manual_seed(0)
    d = 256
    h = torch.logspace(-2, 0, d, dtype=torch.float64)
    w = torch.nn.Parameter(torch.randn(d, generator=gen, dtype=torch.float64))
    lr = hp.pop("lr")
    opt = FilterOptimizer([w], name, lr=lr, **hp)
    rec = CoordinateRecorder([w], coordinates, steps, seed=1)
    for t in range(steps):
        opt.zero_grad()
        noise = torch.randn(d, generator=gen, dtype=torch.float64)
        (0.5 * (h * w**2).sum() + (noise * w).sum()).backward()
        rec.before_step(t)
        opt.step()
        rec.after_step(t)
    g = rec.gradients.numpy()
    u = -np.diff(rec.params.numpy(), axis=0) / lr
    return g, u


def _closed_form(freqs: np.ndarray, b: list[float], a: list[float]) -> np.ndarray:
    zinv = np.exp(-2j * np.pi * freqs)
    return np.asarray(np.polyval(b[::-1], zinv) / np.polyval(a[::-1], zinv))


@pytest.mark.parametrize(
    ("name", "hp", "b", "a"),
    [
        ("momentum", {"momentum": 0.9, "lr": 0.01}, [1.0], [1.0, -0.9]),
        ("nesterov", {"momentum": 0.9, "lr": 0.005}, [1.9, -0.9], [1.0, -0.9]),
        ("sgd", {"lr": 0.1}, [1.0], [1.0]),
    ],
)
def test_recovers_a_known_filter_from_white_noise_gradients(
    name: str, hp: dict, b: list[float], a: list[float]
) -> None:
    g, u = _noisy_quadratic_run(name, steps=4096, coordinates=32, **dict(hp))
    model = optfilters.get(name, **{k: v for k, v in hp.items() if k != "lr"})
    r = empirical_response(g, u, model)
    truth = np.abs(_closed_form(r.freqs, b, a))
    np.testing.assert_allclose(r.predicted_magnitude, truth, rtol=1e-12)
    coherent = r.coherence >= 0.95
    assert coherent.mean() > 0.95  # an exact linear relation: coherent everywhere but the mean-removed DC bin
    np.testing.assert_allclose(r.magnitude[coherent], truth[coherent], rtol=0.05)
    # Phase too (away from DC): the estimate is the complex H, not only its size.
    far = coherent & (r.freqs > 0.02)
    np.testing.assert_allclose(r.phase[far], np.angle(_closed_form(r.freqs[far], b, a)), atol=0.05)


def test_coherence_of_one_coordinate_is_scipys() -> None:
    rng = np.random.default_rng(4)
    g = rng.standard_normal(2048)
    u = signal.lfilter([1.0], [1.0, -0.5], g) + 0.3 * rng.standard_normal(2048)
    r = empirical_response(g, u, nperseg=128)
    freqs, expected = signal.coherence(g, u, nperseg=128)
    np.testing.assert_allclose(r.freqs, freqs)
    np.testing.assert_allclose(r.coherence, expected, rtol=1e-10, atol=1e-12)
    assert np.all(np.isnan(r.predicted_magnitude))


def test_constant_coordinates_are_left_out() -> None:
    rng = np.random.default_rng(0)
    g = np.column_stack([rng.standard_normal(512), np.zeros(512)])
    r = empirical_response(g, 3.0 * g, nperseg=64)
    assert r.coordinates == 1
    np.testing.assert_allclose(r.magnitude, 3.0)


def test_empirical_response_errors() -> None:
    g = np.zeros((100, 2))
    with pytest.raises(ValueError, match="same"):
        empirical_response(g, np.zeros((100, 3)))
    with pytest.raises(ValueError, match="at least 8 steps, got 4"):
        empirical_response(np.ones((4, 1)), np.ones((4, 1)))
    with pytest.raises(ValueError, match="every recorded gradient is constant"):
        empirical_response(g, g)
    with pytest.raises(ValueError, match=r"nperseg must be in \[8, 100\], got 1000"):
        empirical_response(np.random.default_rng(0).standard_normal((100, 2)), g, nperseg=1000)
    with pytest.raises(ValueError, match="needs its frozen gains"):
        x = np.random.default_rng(0).standard_normal((100, 2))
        empirical_response(x, x, optfilters.get("adam"))


# ----------------------------------------------------------------------------- on the real network


def test_momentum_with_weight_decay_on_the_network_is_exact() -> None:
    """Mini-batch momentum with coupled weight decay: u = H g_eff exactly, so the estimate equals the filter."""
    obs = observe_network(
        "momentum",
        lr=0.01,
        momentum=0.9,
        weight_decay=1e-3,
        steps=1200,
        record_coordinates=64,
        record_start=200,
        network={"hidden": [16], "samples": 200, "batch_size": 20},
    )
    e = obs.empirical
    assert e is not None and e.label == "exact"
    assert e.coherent_fraction(0.95) > 0.95
    assert e.relative_error(0.95, "max") < 0.05
    truth = np.abs(_closed_form(e.freqs, [1.0], [1.0, -0.9]))
    np.testing.assert_allclose(e.predicted_magnitude, truth, rtol=1e-12)


def test_adam_linearised_prediction_on_the_network() -> None:
    """Adam, mini-batch, after its transient: the direction filter times the recorded frozen gains."""
    obs = observe_network(
        "adam",
        lr=1e-3,
        steps=1500,
        record_coordinates=64,
        record_start=500,
        network={"hidden": [16], "samples": 200, "batch_size": 20},
    )
    e = obs.empirical
    assert e is not None and e.label.startswith("linearised")
    assert e.coherent_fraction(0.9) > 0.8
    assert e.relative_error(0.9) < 0.05
    # Far above the first moment's corner the prediction is the EMA's (1-beta1)/(1+beta1) times the gain, not 1.
    assert e.predicted_magnitude[-1] < e.predicted_magnitude[1]
    json.dumps(e.as_dict(), allow_nan=False)
