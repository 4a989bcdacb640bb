"""The model as an ordered sequence of stages: the classic slots, composition, and the one input resolution."""

from __future__ import annotations

import dataclasses

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
