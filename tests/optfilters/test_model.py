"""The model as an ordered sequence of stages: the classic slots, composition, and the one input resolution."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
import pytest

import optfilters
from optfilters import ArmaFilter, OptimizerModel, as_model, chain
from optfilters.gains import Constant, InverseTimeDecay
from optfilters.stages import LearningRate, LinearStage, SignNonlinearity, WeightDecay


def roles(model: OptimizerModel) -> list[str]:
    return [role for role, _ in model.stages]


def test_slot_keywords_set_replace_and_remove_stages_in_the_classic_order() -> None:
    adam = optfilters.get("adam")
    decayed = dataclasses.replace(adam, weight_decay=WeightDecay(0.1))
    assert roles(decayed) == ["weight_decay", "gradient", "normaliser", "learning_rate"]
    assert decayed.weight_decay == WeightDecay(0.1) and decayed.gradient == adam.gradient
    plain = dataclasses.replace(adam, normaliser=None)
    assert roles(plain) == ["gradient", "learning_rate"] and plain.is_linear
    signed = dataclasses.replace(plain, nonlinearity=SignNonlinearity(), post=LinearStage.of(ArmaFilter.ema(0.5)))
    assert roles(signed) == ["gradient", "post", "nonlinearity", "learning_rate"]
    assert signed.post is not None and signed.post.name == "post"  # a stage given for a slot takes its role
    slowed = dataclasses.replace(adam, lr_gain=InverseTimeDecay(0.5))
    assert slowed.lr_gain == InverseTimeDecay(0.5) and roles(slowed) == roles(adam)
    assert OptimizerModel("bare").pipeline == (LearningRate(Constant(1.0)),)


def test_the_slots_and_the_pipeline_describe_the_same_model() -> None:
    adam = optfilters.get("adam")
    rebuilt = OptimizerModel(
        "adam", adam.hyperparameters, pipeline=adam.pipeline, maximize=adam.maximize, description=adam.description
    )
    assert rebuilt == adam
    grads = np.random.default_rng(0).normal(size=(30, 3))
    np.testing.assert_array_equal(rebuilt.simulate(grads, np.zeros(3)).params, adam.simulate(grads, np.zeros(3)).params)


def test_bad_pipelines_are_refused() -> None:
    with pytest.raises(TypeError, match="pipeline entries must be stages"):
        OptimizerModel("x", pipeline=[ArmaFilter.ema(0.9)])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="one learning-rate \\(update\\) stage, got 2"):
        OptimizerModel("x", pipeline=[LearningRate(), LearningRate()])
    with pytest.raises(TypeError, match="not both"):
        chain(ArmaFilter.ema(0.9), LearningRate(), lr_gain=InverseTimeDecay(0.1))


def test_chain_takes_models_stages_and_filters_in_order() -> None:
    adagrad = optfilters.get("adagrad", lr_decay=0.1)
    model = chain(ArmaFilter.ema(0.9), adagrad, SignNonlinearity(), lr=0.5)
    assert roles(model) == ["gradient", "normaliser", "nonlinearity", "learning_rate"]
    assert model.lr == 0.5 and model.lr_gain == InverseTimeDecay(0.1)  # the model part's time-varying lr factor
    assert model.name == "ema(0.9)+adagrad+nonlinearity"
    assert model.filters()["gradient"].isclose(ArmaFilter.ema(0.9))


def test_as_model_is_the_one_resolution() -> None:
    stage = LinearStage.of(ArmaFilter([1.0], [1.0, -0.5]))
    from_stage = as_model(stage, lr=0.1)
    assert from_stage.gradient == stage and from_stage.lr == 0.1
    composed = chain(ArmaFilter.ema(0.9), optfilters.get("adam").normaliser)
    assert as_model(composed, lr=0.2).lr == 0.2
    with pytest.raises(ValueError, match="it takes lr only"):
        as_model(composed, beta1=0.5)
    with pytest.raises(TypeError, match="expected a catalogue name"):
        as_model(3.0)  # type: ignore[arg-type]


def _stability_warnings(run: Any) -> tuple[Any, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = run()
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]  # numpy's overflow text never leaks
    return out, [str(w.message) for w in caught if issubclass(w.category, optfilters.StabilityWarning)]


def test_the_numpy_executor_warns_once_per_unstable_filter_and_saturates_quietly() -> None:
    """momentum 1.5 (a pole at 1.5) grows as 1.5^t: one StabilityWarning, then -inf after ~1750 steps, as torch."""

    def run() -> Any:
        opt = optfilters.get("momentum", momentum=1.5).optimizer([1.0], lr=0.1)
        for _ in range(2000):
            opt.step([1.0])
        opt.set(momentum=1.6)  # still the same filter: no second warning
        return opt.step([1.0])

    theta, messages = _stability_warnings(run)
    assert theta.tolist() == [-np.inf]
    assert messages == [
        "NumpyOptimizer(momentum): the gradient filter is UNSTABLE (a pole at |z| = 1.5 > 1): "
        "its output, and the parameters, grow without bound"
    ]


@pytest.mark.parametrize(
    ("name", "kwargs"), [("momentum", {"momentum": 1.0}), ("adagrad", {}), ("adam", {}), ("butterworth", {})]
)
def test_the_numpy_executor_does_not_warn_for_stable_or_marginal_filters(name: str, kwargs: dict[str, Any]) -> None:
    model = optfilters.get(name, **kwargs)
    assert model.unstable_filters() == {}
    _, messages = _stability_warnings(lambda: [model.optimizer([1.0]).step([1.0]) for _ in range(3)])
    assert messages == []


def test_unstable_filters_names_each_stage_with_its_largest_pole() -> None:
    assert optfilters.get("momentum", momentum=1.5).unstable_filters() == {"gradient": 1.5}
    repeated = chain(ArmaFilter([1.0], [1.0, -2.0, 1.0]))  # a double pole at z = 1: unbounded output
    assert list(repeated.unstable_filters()) == ["gradient"]


def test_a_huge_stable_step_saturates_to_inf_without_numpy_warnings() -> None:
    theta, messages = _stability_warnings(
        lambda: optfilters.get("sgd").optimizer([1e308, 1.0], lr=1e308).step([1e308, 1.0])
    )
    assert theta.tolist() == [-np.inf, -1e308] and messages == []


# ----------------------------------------------------------------------------- issue 13: values as they are


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"lr": b"0.1"}, r"^lr must be a number, got b'0.1' \(a bytes\)"),
        ({"lr": "0.1"}, r"^lr must be a number, got '0.1' \(a str\)"),
        ({"momentum": "0.5"}, r"^momentum must be a number, got '0.5' \(a str\)"),
        ({"momentum": bytearray(b"0.5")}, r"^momentum must be a number"),
        (
            {"nesterov": "False"},
            r"^nesterov must be True or False, got 'False' \(a str; torch.optim takes the truth of any value",
        ),
        ({"nesterov": 1}, r"^nesterov must be True or False, got 1 \(a int"),
        ({"maximize": "false"}, r"^maximize must be True or False"),
    ],
)
def test_numpy_optimizer_set_takes_values_as_they_are(settings: dict, message: str) -> None:
    """As the bridge's param groups: NumpyOptimizer.set(nesterov="False") ran without Nesterov (the catalogue
    parses text for the command line) and set(lr=b"0.1") ran with 0.1; torch.optim reads the first as True."""
    opt = optfilters.get("sgd", momentum=0.9).optimizer([1.0], lr=0.1)
    opt.step([1.0])
    before = (opt.model, opt.lr)
    with pytest.raises(optfilters.InvalidHyperparameterError, match=message):
        opt.set(**settings)
    assert (opt.model, opt.lr) == before
    opt.set(nesterov=np.bool_(True), lr=0.05)  # numpy's bool is a bool; a number is a number
    assert opt.model.hyperparameters["nesterov"] is True and opt.lr == 0.05


@pytest.mark.parametrize("lr", [b"0.1", "0.1", bytearray(b"0.1"), True])
def test_numpy_optimizer_lr_is_a_number_at_construction_and_at_every_step(lr: object) -> None:
    model = optfilters.get("momentum", momentum=0.9)
    with pytest.raises(optfilters.InvalidHyperparameterError, match=r"^lr must be a number"):
        model.optimizer([1.0], lr=lr)
    opt = model.optimizer([1.0], lr=0.1)
    opt.step([1.0])
    opt.lr = lr  # type: ignore[assignment]
    with pytest.raises(optfilters.InvalidHyperparameterError, match=r"^lr must be a number"):
        opt.step([1.0])


def test_as_model_lr_of_a_filter_is_a_number() -> None:
    """as_model(filter, lr=b"0.1") built a model with lr 0.1 (float() reads bytes and '1_0')."""
    for bad in (b"0.1", "1_0"):
        with pytest.raises(optfilters.InvalidHyperparameterError, match=r"^lr must be a number"):
            as_model(ArmaFilter([0.1], [1.0, -0.9]), lr=bad)
