"""Stage combinations the catalogue does not use, built by hand, against the core's reference executor.

The bridge implements each stage type generically (any linear stage, every
normaliser option, post-filters, signs, learning-rate gains), so models that
no catalogue entry builds must run exactly as ``OptimizerModel.simulate``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch

from optfilters import ArmaFilter, OptimizerModel
from optfilters.gains import Gain, InverseTimeDecay, RAdamRectification
from optfilters.stages import (
    AdadeltaNormaliser,
    FilterTerm,
    LinearStage,
    PeakNormaliser,
    RmsNormaliser,
    SignNonlinearity,
    WeightDecay,
)
from optfilters.torch import FilterOptimizer
from optfilters.torch._native import compiler


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@dataclass(frozen=True)
class InverseSqrt(Gain):
    """A gain the bridge does not know: ``1 / sqrt(t)``."""

    is_constant: bool = field(default=False, init=False)

    def value(self, t: int) -> float:
        return 1.0 / math.sqrt(t)

    @property
    def limit(self) -> float:
        return 0.0

    def describe(self) -> str:
        return "1/sqrt(t)"


def ema(beta: float, name: str = "second_moment", **options: Any) -> LinearStage:
    return LinearStage.of(ArmaFilter.ema(beta), name, **options)


ARMA2 = ArmaFilter([0.3, 0.2, -0.1], [1.0, -1.2, 0.5])  # complex poles, radius 0.71
POSITIVE = ArmaFilter([0.3, 0.2, 0.1], [1.0, -0.6, 0.08])  # poles 0.4 and 0.2: a positive impulse response

MODELS: dict[str, OptimizerModel] = {
    "eps inside the root, corrected": OptimizerModel(
        "m1",
        {"lr": 0.05},
        gradient=ema(0.9, "gradient", bias_corrected=True),
        normaliser=RmsNormaliser(ema(0.99, bias_corrected=True), eps=1e-3, eps_placement="inside_root"),
    ),
    "eps inside the root, uncorrected": OptimizerModel(
        "m2", {"lr": 0.05}, normaliser=RmsNormaliser(ema(0.9), eps=1e-2, eps_placement="inside_root")
    ),
    "eps before correction, amsgrad, no rectification": OptimizerModel(
        "m3",
        {"lr": 0.05},
        gradient=ema(0.8, "gradient", bias_corrected=True),
        normaliser=RmsNormaliser(
            ema(0.95, bias_corrected=True), eps=1e-4, eps_placement="before_correction", amsgrad=True
        ),
    ),
    "rectified with eps after the root": OptimizerModel(
        "m4",
        {"lr": 0.05},
        gradient=ema(0.9, "gradient", bias_corrected=True),
        normaliser=RmsNormaliser(ema(0.99, bias_corrected=True), eps=1e-6, rectification=RAdamRectification(0.99)),
    ),
    "centered, corrected, amsgrad": OptimizerModel(
        "m5",
        {"lr": 0.02},
        normaliser=RmsNormaliser(ema(0.9, bias_corrected=True), eps=1e-3, amsgrad=True, center=ema(0.9, "center")),
    ),
    "two-term second moment with an ARMA term": OptimizerModel(
        "m6",
        {"lr": 0.02},
        normaliser=RmsNormaliser(
            LinearStage((FilterTerm(ArmaFilter.identity(), gain=InverseSqrt()), FilterTerm(POSITIVE)), "second_moment"),
            eps=1e-2,
        ),
    ),
    "EMA post-filter after Adam's normaliser": OptimizerModel(
        "m7",
        {"lr": 0.05},
        gradient=ema(0.9, "gradient", bias_corrected=True),
        normaliser=RmsNormaliser(ema(0.999, bias_corrected=True), eps=1e-8),
        post=ema(0.5, "post", bias_corrected=True),
    ),
    "two-term post-filter": OptimizerModel(
        "m8",
        {"lr": 0.05},
        normaliser=RmsNormaliser(ema(0.9), eps=1e-3),
        post=LinearStage((FilterTerm(ArmaFilter.identity(), gain=InverseSqrt()), FilterTerm(ARMA2)), "post"),
    ),
    "sign of a three-term filter, decoupled decay": OptimizerModel(
        "m9",
        {"lr": 0.01},
        gradient=LinearStage(
            (
                FilterTerm(ArmaFilter.identity()),
                FilterTerm(ArmaFilter.ema(0.9), bias_corrected=True),
                FilterTerm(ARMA2),
            ),
            "gradient",
        ),
        nonlinearity=SignNonlinearity(),
        weight_decay=WeightDecay(0.1, decoupled=True),
    ),
    "inverse-time lr gain, maximize, coupled decay": OptimizerModel(
        "m10",
        {"lr": 0.1},
        gradient=LinearStage.of(ArmaFilter([1.0], [1.0, -0.7])),
        lr_gain=InverseTimeDecay(0.1),
        maximize=True,
        weight_decay=WeightDecay(0.05),
    ),
    "all-pole order 2 starting at the input": OptimizerModel(
        "m11",
        {"lr": 0.1},
        gradient=LinearStage.of(ArmaFilter([0.5], [1.0, -0.9, 0.2]), "gradient", first_output_is_input=True),
    ),
    "peak normaliser over a two-term filter": OptimizerModel(
        "m12",
        {"lr": 0.02},
        gradient=LinearStage(
            (
                FilterTerm(ArmaFilter.ema(0.9), bias_corrected=True),
                FilterTerm(ArmaFilter([0.5, 0.5]), gain=InverseSqrt()),
            ),
            "gradient",
        ),
        normaliser=PeakNormaliser(0.99, 1e-3),
    ),
    "Adadelta over heavy-ball momentum": OptimizerModel(
        "m13",
        {"lr": 1.0},
        gradient=LinearStage.of(ArmaFilter([1.0], [1.0, -0.5])),
        normaliser=AdadeltaNormaliser(0.9, 1e-4),
    ),
    "high-order bias-corrected filter (sections)": OptimizerModel(
        "m14",
        {"lr": 0.01},
        gradient=LinearStage.of(
            ArmaFilter.from_zpk([-1.0, -1.0, 0.3, 0.0], [0.9, 0.8, 0.5 + 0.3j, 0.5 - 0.3j], 0.01), bias_corrected=True
        ),
    ),
}


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("options", [{"foreach": False}, {"foreach": True}, {"fused": True}], ids=str)
def test_hand_built_models_follow_the_reference_executor(name: str, options: dict[str, Any]) -> None:
    if options.get("fused") and compiler() is None:
        pytest.skip("no C compiler")
    model = MODELS[name]
    rng = np.random.default_rng(11)
    grads = rng.normal(size=(50, 3)) * np.array([1.0, 0.2, 5.0]) + 0.2
    theta0 = rng.normal(size=3)
    expected = model.simulate(grads, theta0=theta0).params[1:]
    w = torch.nn.Parameter(torch.tensor(theta0))
    w2 = torch.nn.Parameter(torch.tensor(theta0))
    opt = FilterOptimizer([w, w2], model, **options)
    got = []
    for g in grads:
        w.grad = torch.tensor(g)
        w2.grad = torch.tensor(g)
        opt.step()
        got.append(w.detach().numpy().copy())
    assert np.all(np.isfinite(expected))
    np.testing.assert_allclose(np.array(got), expected, rtol=1e-10, atol=1e-12)
