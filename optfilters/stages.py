"""Optimizer stages: linear (possibly time-varying) filters, normalisers, nonlinearity, weight decay."""

from ._stages import (
    AdadeltaNormaliser,
    FilterTerm,
    LinearStage,
    LinearStageRunner,
    Normaliser,
    PeakNormaliser,
    RmsNormaliser,
    SignNonlinearity,
    WeightDecay,
    transient_compensation,
    transient_correction,
)

__all__ = [
    "AdadeltaNormaliser",
    "FilterTerm",
    "LinearStage",
    "LinearStageRunner",
    "Normaliser",
    "PeakNormaliser",
    "RmsNormaliser",
    "SignNonlinearity",
    "WeightDecay",
    "transient_compensation",
    "transient_correction",
]
