"""observe_network: recording is free when off and does not perturb training; results are plain data; errors.

The reference trajectory is a hand-written training loop over the same
network with :class:`optfilters.torch.FilterOptimizer` and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
import torch

import optfilters
from optfilters.network import DigitsMLP, observe_network
from optfilters.torch import FilterOptimizer

NET = {"hidden": [16], "samples": 200}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _manual_run(name: str, steps: int, **hp: object) -> tuple[list[torch.Tensor], list[float], FilterOptimizer]:
    problem = DigitsMLP(hidden=(16,), samples=200).build(seed=0)
    params = problem.parameters
    opt = FilterOptimizer(params, name, **hp)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = problem.full_loss()
        loss.backward()
        losses.append(float(loss.detach()))
        opt.step()
    return [p.detach().clone() for p in params], losses, opt


@pytest.mark.parametrize(("name", "hp"), [("momentum", {"momentum": 0.9}), ("adam", {})])
def test_recording_off_allocates_nothing_and_recording_on_changes_nothing(name: str, hp: dict) -> None:
    steps, lr = 30, 0.05 if name == "momentum" else 0.01
    expected, losses, reference = _manual_run(name, steps, lr=lr, **hp)
    off = observe_network(name, lr=lr, steps=steps, network=NET, **hp)
    on = observe_network(name, lr=lr, steps=steps, network=NET, record_coordinates=50, **hp)
    assert off.recording is None and off.empirical is None and off.sharpness is None
    # The optimizer's state holds exactly what a bare FilterOptimizer holds: no recording tensors.
    ref_keys = [sorted(reference.state[p]) for p in reference.param_groups[0]["params"]]
    off_keys = [sorted(off.optimizer.state[p]) for p in off.optimizer.param_groups[0]["params"]]
    assert off_keys == ref_keys
    for obs in (off, on):
        got = [p.detach() for p in obs.problem.parameters]
        for a, b in zip(got, expected, strict=True):
            assert torch.equal(a, b)  # bit for bit: observation does not perturb training
        np.testing.assert_array_equal(obs.loss[:-1], losses)
    # The recording is what happened: preallocated (steps, coordinates) rows equal to the parameters' path.
    rec = on.recording
    assert rec is not None
    assert tuple(rec.gradients.shape) == (steps, 50) and tuple(rec.params.shape) == (steps + 1, 50)
    flat_final = torch.cat([p.detach().reshape(-1) for p in expected])
    np.testing.assert_array_equal(rec.params[-1].numpy(), flat_final[torch.as_tensor(rec.index)].numpy())
    assert on.empirical is not None and on.empirical.steps == steps


def test_recorded_gradient_is_the_step_gradient() -> None:
    """Row t of the recording is the gradient that step t used (SGD: the update is -lr times it)."""
    obs = observe_network("sgd", lr=0.1, steps=12, network=NET, record_coordinates=20)
    rec = obs.recording
    assert rec is not None
    update = np.diff(rec.params.numpy(), axis=0)
    np.testing.assert_allclose(update, -0.1 * rec.gradients.numpy(), rtol=1e-12, atol=1e-15)
    # ... and the empirical |H| of plain SGD is exactly 1.
    assert obs.empirical is not None
    np.testing.assert_allclose(obs.empirical.magnitude, 1.0, rtol=1e-9)
    np.testing.assert_allclose(obs.empirical.predicted_magnitude, 1.0, rtol=1e-12)


def test_results_are_json_and_plot() -> None:
    obs = observe_network(
        "adam",
        lr=0.005,
        steps=60,
        network={**NET, "batch_size": 25},
        record_coordinates=30,
        sharpness_every=20,
    )
    data = json.loads(json.dumps(obs.as_dict(), allow_nan=False))
    assert data["steps"] == list(range(61))
    assert data["sharpness"]["steps"] == [20, 40, 60]  # preconditioned: from the first step with optimizer state
    assert data["sharpness"]["threshold"] == pytest.approx(38.0 / 0.005)
    assert data["empirical"]["label"].startswith("linearised")
    assert data["network"]["batch_size"] == 25
    json.dumps(obs.sharpness.as_dict(), allow_nan=False)
    json.dumps(obs.empirical.as_dict(), allow_nan=False)

    import matplotlib.pyplot as plt

    drawn = obs.plot()
    assert len(drawn.axes) == obs.panels == 4
    assert "sharpness.sharpness" in drawn.artists and "empirical.empirical" in drawn.artists
    plt.close(drawn.figure)
    single = obs.sharpness.plot()
    plt.close(single.figure)


def test_a_divergent_run_stops_and_says_so() -> None:
    obs = observe_network("sgd", lr=50.0, steps=40, network=NET, sharpness_every=5)
    assert obs.diverged
    assert np.isnan(obs.loss[-1])
    json.dumps(obs.as_dict(), allow_nan=False)


def test_normalisers_without_a_readable_denominator() -> None:
    """Adadelta: recording still measures |H| (no prediction); the preconditioned sharpness refuses clearly."""
    obs = observe_network("adadelta", lr=1.0, steps=40, network=NET, record_coordinates=20)
    assert obs.empirical is not None and obs.empirical.label == "no prediction"
    assert np.all(np.isnan(obs.empirical.predicted_magnitude))
    json.dumps(obs.as_dict(), allow_nan=False)
    with pytest.raises(ValueError, match="need an RMS or peak normaliser; adadelta has AdadeltaNormaliser"):
        observe_network("adadelta", lr=1.0, steps=10, network=NET, sharpness_every=5)


def test_observe_options_do_not_shadow_hyperparameters() -> None:
    import inspect

    options = set(inspect.signature(observe_network).parameters) - {"name_or_model", "hyperparameters", "lr"}
    hyperparameters = {h.name for entry in optfilters.CATALOGUE.values() for h in entry.hyperparameters}
    assert not options & hyperparameters


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"lr must be a finite number > 0, got -1"):
        observe_network("sgd", lr=-1, steps=3)
    with pytest.raises(ValueError, match=r"steps must be >= 1, got 0"):
        observe_network("sgd", lr=0.1, steps=0)
    with pytest.raises(ValueError, match=r"record_coordinates must be in \[0, 1210\], got 5000"):
        observe_network("sgd", lr=0.1, steps=3, network=NET, record_coordinates=5000)
    with pytest.raises(ValueError, match=r"network must be one of digits-mlp, got 'cifar'"):
        observe_network("sgd", lr=0.1, steps=3, network="cifar")
    with pytest.raises(ValueError, match=r"batch_size must be in \[1, 200\], got 500"):
        observe_network("sgd", lr=0.1, steps=3, network=NET, batch_size=500)
    with pytest.raises(ValueError, match=r"samples must be in \[10, 1797\], got 5"):
        DigitsMLP(samples=5)
    with pytest.raises(optfilters.InvalidHyperparameterError, match=r"momentum must be >= 0, got -1"):
        observe_network("momentum", lr=0.1, steps=3, network=NET, momentum=-1)


def test_importing_the_module_is_cheap() -> None:
    import subprocess
    import sys

    code = (
        "import sys, optfilters.network; "
        "print(','.join(m for m in ('torch', 'scipy', 'sklearn', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
