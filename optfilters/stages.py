"""Optimizer stages: the stage-kind protocol and the kinds (linear filters, normalisers, sign, weight decay, update)."""

from ._stages import (
    AdadeltaNormaliser,
    FilterTerm,
    LearningRate,
    LinearStage,
    LinearStageRunner,
    Moments,
    Normaliser,
    PeakNormaliser,
    RmsNormaliser,
    SignNonlinearity,
    Stage,
    Tracker,
    WeightDecay,
    transient_compensation,
    transient_correction,
)

__all__ = [
    "AdadeltaNormaliser",
    "FilterTerm",
    "LearningRate",
    "LinearStage",
    "LinearStageRunner",
    "Moments",
    "Normaliser",
    "PeakNormaliser",
    "RmsNormaliser",
    "SignNonlinearity",
    "Stage",
    "Tracker",
    "WeightDecay",
    "transient_compensation",
    "transient_correction",
]
