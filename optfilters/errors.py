"""Exceptions and warnings raised by optfilters, and the deprecation of renamed public names."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])

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


def deprecated_alias(func: _F, old: str, module: str) -> _F:
    """``func`` under its former public name ``old``: same behaviour, one :class:`DeprecationWarning` a call.

    Parameters
    ----------
    func : callable
        The function under its current name.
    old : str
        The former name.
    module : str
        The public module both names live in (for the message).

    Returns
    -------
    callable
        A wrapper that warns, then calls ``func``.

    Examples
    --------
    >>> import warnings
    >>> from optfilters.errors import deprecated_alias
    >>> def bias_correct(x):
    ...     return x
    >>> compensate = deprecated_alias(bias_correct, "compensate", "optfilters")
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     compensate(2), str(caught[0].message)
    (2, 'optfilters.compensate is deprecated; use optfilters.bias_correct (same behaviour)')
    """
    message = f"{module}.{old} is deprecated; use {module}.{func.__name__} (same behaviour)"

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        return func(*args, **kwargs)

    wrapper.__name__ = wrapper.__qualname__ = old
    wrapper.__doc__ = f"Deprecated alias of :func:`{module}.{func.__name__}`.\n\n" + (func.__doc__ or "")
    return wrapper  # type: ignore[return-value]
