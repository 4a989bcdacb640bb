"""Exceptions and warnings raised by optfilters."""

from __future__ import annotations

__all__ = [
    "InvalidFilterError",
    "InvalidHyperparameterError",
    "StabilityWarning",
    "StateResetWarning",
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


class StateResetWarning(UserWarning):
    """A change of hyperparameters changed the structure of an optimizer's filter state.

    The state arrays written by the old structure (a Butterworth design of
    another order, say) would be stale memories under the new one: they are
    recreated at their initial values, so that filter restarts from rest.
    """
