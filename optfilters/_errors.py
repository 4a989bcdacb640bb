"""Exceptions and warnings raised by optfilters."""

from __future__ import annotations

__all__ = [
    "InvalidFilterError",
    "InvalidHyperparameterError",
    "StabilityWarning",
    "UnknownNameError",
]


class InvalidFilterError(ValueError):
    """A filter's coefficients are not a valid rational transfer function."""


class InvalidHyperparameterError(ValueError):
    """A hyperparameter is unknown, of the wrong type, or out of its range."""


class UnknownNameError(ValueError):
    """A catalogue name (or other named choice) does not exist."""


class StabilityWarning(UserWarning):
    """An analysed filter is marginally stable or unstable."""
