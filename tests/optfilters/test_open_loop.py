"""Open-loop runs over the time axis: the same trajectory as the step-by-step executor, for every catalogue entry.

The reference is :meth:`optfilters.OptimizerModel.simulate` (the literal recursion, one step at a time, itself
checked against torch.optim and the reference packages elsewhere); the block path must agree with it to
rounding, and must be the path actually taken where it applies (else the comparison proves nothing).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import optfilters
import optfilters.open_loop as open_loop
from optfilters.open_loop import simulate_open_loop

#: Entries whose step is a 2-D operation (Muon: matrices only) or needs coefficients (custom) are left out.
NAMES = [name for name in optfilters.names() if name not in ("muon", "custom")]

#: Entries whose long runs must go through the block path (the large-signal models among them).
BLOCKED = ["sgd", "momentum", "adam", "amsgrad", "rmsprop", "ademamix", "ademamix-scheduled", "adopt", "adabelief"]


def _gradients(steps: int = 400, columns: int = 3) -> np.ndarray:
    rng = np.random.default_rng(0)
    g = np.abs(rng.normal(size=(steps, columns))) + 0.5
    g[steps // 2 :] *= 10.0  # a change of scale, as large-signal feeds
    g[steps // 3, 0] = -2.0  # and a sign change
    return g


def _counting(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    counts = {"accepted": 0}
    original = open_loop._run_block

    def run_block(*args: Any) -> bool:
        ok = original(*args)
        counts["accepted"] += int(ok)
        return ok

    monkeypatch.setattr(open_loop, "_run_block", run_block)
    return counts


@pytest.mark.parametrize("name", NAMES)
def test_open_loop_equals_the_step_by_step_recursion(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model = optfilters.get(name, lr=1.0)
    g = _gradients()
    counts = _counting(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        slow = model.simulate(g, theta0=np.zeros(3))
        fast = simulate_open_loop(model, g)
    np.testing.assert_allclose(fast.params, slow.params, rtol=1e-12, atol=1e-12 * float(np.max(np.abs(slow.params))))
    np.testing.assert_allclose(fast.updates, np.diff(slow.params, axis=0), rtol=1e-9, atol=1e-12)
    if name in BLOCKED:
        assert counts["accepted"] == 1, "the block path was not taken"


@pytest.mark.parametrize(
    ("name", "hyperparameters"),
    [
        ("ademamix", {"beta3": 0.999, "alpha": 8.0, "eps": 0.0}),
        ("adopt", {"beta2": 0.999}),
        ("ademamix-scheduled", {"beta3": 0.999, "t_alpha_beta3": 100.0}),  # a pole that changes during the warm-up
        ("amsgrad", {"beta2": 0.99}),
    ],
)
def test_long_runs_agree_to_rounding(
    name: str, hyperparameters: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """6000 steps of a slow EMA (the filter's memory many times over): relative differences stay near 1e-12."""
    model = optfilters.get(name, lr=1.0, **hyperparameters)
    g = np.ones((6000, 2))
    g[:, 1] = 10.0
    g[3000:, 0] = 10.0
    counts = _counting(monkeypatch)
    slow = model.simulate(g, theta0=np.zeros(2))
    fast = simulate_open_loop(model, g)
    assert counts["accepted"] >= 1
    np.testing.assert_allclose(-fast.updates, -slow.updates, rtol=1e-10, atol=0.0)


def test_a_tensor_wide_operation_runs_step_by_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """C-Optim's mask rescales over the whole tensor: over a block it would mix the steps, so it is refused."""
    model = optfilters.get("adam-cautious", lr=1.0)
    g = _gradients()
    counts = _counting(monkeypatch)
    fast = simulate_open_loop(model, g)
    assert counts["accepted"] == 0
    np.testing.assert_array_equal(fast.params, model.simulate(g, theta0=np.zeros(3)).params)


def test_a_block_that_disagrees_with_its_first_steps_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check against the step-by-step executor: a wrong block (here a doctored solver) is discarded."""
    model = optfilters.get("adam", lr=1.0)
    g = _gradients()
    original = open_loop._solve
    monkeypatch.setattr(open_loop, "_solve", lambda reg, start, n: original(reg, start, n) * 1.001)
    fast = simulate_open_loop(model, g)
    np.testing.assert_array_equal(fast.params, model.simulate(g, theta0=np.zeros(3)).params)


def test_gradients_need_a_time_axis() -> None:
    with pytest.raises(ValueError, match="time axis"):
        simulate_open_loop(optfilters.get("adam"), 1.0)


@pytest.mark.parametrize("hyperparameters", [{"beta1": 0.0}, {"beta2": 0.0}, {"beta3": 0.0}])
def test_slots_that_take_one_step_at_a_time(hyperparameters: dict[str, Any], monkeypatch: Any) -> None:
    """A zero beta's bias correction is an integer power (``int.bit_length``): it fails on an array of steps and is
    evaluated step by step; the block still runs (the full extreme-value sweep found the array call crashing)."""
    model = optfilters.get("ademamix", lr=1.0, **hyperparameters)
    g = _gradients()
    counts = _counting(monkeypatch)
    fast = simulate_open_loop(model, g)
    assert counts["accepted"] == 1
    np.testing.assert_allclose(fast.params, model.simulate(g, theta0=np.zeros(3)).params, rtol=1e-12, atol=1e-9)
