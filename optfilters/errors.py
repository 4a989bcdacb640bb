"""Exceptions and warnings raised by optfilters, and the deprecation of renamed public names."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])

__all__ = [
    "InvalidFilterError",
    "InvalidHyperparameterError",
    "StabilityWarning",
    "StateResetWarning",
    "UnknownNameError",
    "user_code",
]


class InvalidFilterError(ValueError):
    """A filter's coefficients are not a valid rational transfer function."""


class InvalidHyperparameterError(ValueError):
    """A hyperparameter is unknown, of the wrong type, or out of its range."""


class UnknownNameError(ValueError):
    """A catalogue name (or other named choice) does not exist."""


@contextlib.contextmanager
def user_code(who: str, when: str, error: type[Exception] = UnknownNameError) -> Iterator[None]:
    """Run someone else's code (a model file, an optimizer module): its ``sys.exit`` becomes an error.

    A ``SystemExit`` raised inside the block would end the caller (the command
    line would exit with the user's code and print nothing); it becomes
    ``error("<who> called sys.exit(<code>) <when>")``.  So do the calls that
    end the process without unwinding: while the block runs, ``os._exit(n)``,
    ``os.abort()`` and ``os.kill`` of this process are replaced by functions
    that raise instead (``"<who> called os._exit(5) <when>"``); the originals
    are restored on leaving.  ``KeyboardInterrupt`` passes unchanged.

    Parameters
    ----------
    who : str
        Whose code runs, for the message (``"'models.py'"``).
    when : str
        What it was doing (``"while loading"``).
    error : type of Exception
        The exception raised instead (default :class:`UnknownNameError`).

    Yields
    ------
    None

    Raises
    ------
    Exception
        ``error`` when the block raises :class:`SystemExit`.

    Examples
    --------
    >>> try:
    ...     with user_code("'exits.py'", "while loading"):
    ...         raise SystemExit(3)
    ... except UnknownNameError as exc:
    ...     print(exc)
    'exits.py' called sys.exit(3) while loading
    """
    with _process_exits_contained():
        try:
            yield
        except SystemExit as exc:
            raise error(f"{who} called sys.exit({exc.code!r}) {when}") from None
        except _ForeignExit as exc:
            raise error(f"{who} called {exc.call} {when}") from None


class _ForeignExit(BaseException):
    """Raised in place of ``os._exit``/``os.abort``/``os.kill(own pid)`` inside :func:`user_code`.

    A ``BaseException`` so that the foreign code's own ``except Exception``
    cannot swallow it, as it cannot swallow the exit it replaces.
    """

    def __init__(self, call: str) -> None:
        super().__init__(call)
        self.call = call


def _exit_instead(code: Any) -> None:
    raise _ForeignExit(f"os._exit({code!r})")


def _abort_instead() -> None:
    raise _ForeignExit("os.abort()")


@contextlib.contextmanager
def _process_exits_contained() -> Iterator[None]:
    """``os._exit``, ``os.abort`` and ``os.kill(os.getpid(), sig)`` raise :class:`_ForeignExit` inside the block."""
    real_exit, real_abort, real_kill = os._exit, os.abort, os.kill
    own = os.getpid()

    def kill_instead(pid: int, sig: int) -> None:
        if pid in (own, 0):  # this process (0: its process group, which holds it)
            name = getattr(sig, "name", None) or next((s.name for s in signal.Signals if s == sig), str(sig))
            raise _ForeignExit(f"os.kill(os.getpid(), signal.{name})" if pid else f"os.kill(0, signal.{name})")
        real_kill(pid, sig)

    os._exit, os.abort, os.kill = _exit_instead, _abort_instead, kill_instead  # type: ignore[assignment]
    try:
        yield
    finally:
        os._exit, os.abort, os.kill = real_exit, real_abort, real_kill  # type: ignore[assignment]


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


def renamed_keywords(module: str, **renames: str) -> Callable[[_F], _F]:
    """Accept former keyword names of ``func`` (``old="new"``), one :class:`DeprecationWarning` a call.

    The decorated callable takes its new keyword names; a call with an old
    name warns and is passed on under the new name.  Works for functions,
    methods and a dataclass's ``__init__``.

    Parameters
    ----------
    module : str
        Where the callable lives, for the message (``"optfilters.stages.FilterTerm"``).
    **renames : str
        ``old_name="new_name"`` pairs.

    Returns
    -------
    callable
        A decorator: ``func`` -> a wrapper with the same signature.

    Raises
    ------
    TypeError
        From the wrapper, when a call passes both the old and the new name.

    Examples
    --------
    >>> import warnings
    >>> from optfilters.errors import renamed_keywords
    >>> @renamed_keywords("demo", compensate="bias_correction")
    ... def response(x, bias_correction=None):
    ...     return x, bias_correction
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     response(1, compensate=True), str(caught[0].message)
    ((1, True), "demo: keyword 'compensate' is deprecated; use 'bias_correction' (same behaviour)")
    """

    def decorate(func: _F) -> _F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{module}: pass {new!r} only (its deprecated name {old!r} too)")
                    warnings.warn(
                        f"{module}: keyword {old!r} is deprecated; use {new!r} (same behaviour)",
                        DeprecationWarning,
                        stacklevel=2,
                    )
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def deprecated_attribute(new: str, old: str, owner: str) -> property:
    """A read-only property ``old`` that warns and returns the attribute ``new``.

    Parameters
    ----------
    new : str
        The attribute's current name.
    old : str
        Its former name (the property's name in the class body).
    owner : str
        The class, for the message (``"optfilters.StepResponse"``).

    Returns
    -------
    property
        Assign it in the class body under ``old``.

    Examples
    --------
    >>> import warnings
    >>> from optfilters.errors import deprecated_attribute
    >>> class Response:
    ...     bias_corrected = 1.0
    ...     compensated = deprecated_attribute("bias_corrected", "compensated", "Response")
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     Response().compensated, str(caught[0].message)
    (1.0, 'Response.compensated is deprecated; use Response.bias_corrected (same value)')
    """
    message = f"{owner}.{old} is deprecated; use {owner}.{new} (same value)"

    def getter(self: Any) -> Any:
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        return getattr(self, new)

    getter.__name__ = old
    getter.__doc__ = f"Deprecated alias of :attr:`{new}`."
    return property(getter)
