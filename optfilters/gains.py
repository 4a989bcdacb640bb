"""Time-varying gains (bias correction, NAdam's schedule, RAdam's rectification, lr decay)."""

from ._gains import (
    Constant,
    Gain,
    InverseTimeDecay,
    NadamCurrentGain,
    NadamMomentumGain,
    NadamProduct,
    RAdamRectification,
    nadam_momentum,
    nadam_product,
)

__all__ = [
    "Constant",
    "Gain",
    "InverseTimeDecay",
    "NadamCurrentGain",
    "NadamMomentumGain",
    "NadamProduct",
    "RAdamRectification",
    "nadam_momentum",
    "nadam_product",
]
