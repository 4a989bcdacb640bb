"""Time-varying gains (bias correction, NAdam's schedule, RAdam's rectification, learning-rate schedules)."""

from ._gains import (
    Constant,
    CosineDecay,
    ExponentialDecay,
    Gain,
    InverseTimeDecay,
    LinearDecay,
    LinearWarmup,
    NadamCurrentGain,
    NadamMomentumGain,
    NadamProduct,
    RAdamRectification,
    StepDecay,
    nadam_momentum,
    nadam_product,
)

__all__ = [
    "Constant",
    "CosineDecay",
    "ExponentialDecay",
    "Gain",
    "InverseTimeDecay",
    "LinearDecay",
    "LinearWarmup",
    "NadamCurrentGain",
    "NadamMomentumGain",
    "NadamProduct",
    "RAdamRectification",
    "StepDecay",
    "nadam_momentum",
    "nadam_product",
]
