"""Hyperparameter specifications: names, defaults, types and ranges, with validation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .errors import InvalidHyperparameterError
from .validation import MAX_COEFFICIENTS, MAX_STEPS, check_number, range_text

__all__ = ["Hyperparameter"]

Kind = Literal["float", "int", "bool", "floats", "str"]


@dataclass(frozen=True)
class Hyperparameter:
    """One hyperparameter of a catalogue entry.

    Parameters
    ----------
    name : str
        torch.optim's keyword where torch has the optimizer (``beta1``/``beta2``
        stand for ``betas``), else the paper's name.
    default : object
        Default value (None: required).
    kind : {"float", "int", "bool", "floats", "str"}
        Value type; ``floats`` is a tuple of floats, ``str`` a name (one of
        ``choices`` when given).
    low, high : float or None
        Range bounds.  Every ``int`` hyperparameter is bounded: one given
        without ``high`` (a step count, a period, a warm-up length) gets
        :data:`optfilters.validation.MAX_STEPS`, so that a huge value is
        refused before anything loops over it.
    low_open, high_open : bool
        Exclude the bound (an open interval end).
    help : str
        One line for ``--help``.
    min_length : int
        ``kind="floats"``: the fewest values accepted.
    max_length : int or None
        ``kind="floats"``: the most values accepted (never more than
        :data:`optfilters.validation.MAX_COEFFICIENTS`; None: that bound).
    choices : tuple or None
        The allowed values of a ``str`` hyperparameter (None among them allows
        None, also spelled ``"none"``).
    nullable : bool
        None is a value (its meaning is in ``help``: Adafactor's ``eps1`` None is
        the dtype's machine epsilon); the text ``"none"`` stands for it.

    Examples
    --------
    >>> from optfilters import Hyperparameter
    >>> beta = Hyperparameter("beta1", 0.9, "float", low=0.0, high=1.0, high_open=True)
    >>> beta.validate(0.5)
    0.5
    >>> beta.validate(1.5)
    Traceback (most recent call last):
    ...
    optfilters.errors.InvalidHyperparameterError: beta1 must be in [0, 1), got 1.5
    >>> Hyperparameter("start", 1, "int", low=1).range_text()   # every integer is bounded
    '[1, 10000000]'
    """

    name: str
    default: Any
    kind: Kind = "float"
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    help: str = ""
    min_length: int = 1
    max_length: int | None = None
    choices: tuple[Any, ...] | None = None
    nullable: bool = False

    def __post_init__(self) -> None:
        if self.kind == "int" and self.high is None:
            object.__setattr__(self, "high", MAX_STEPS)

    @property
    def allows_none(self) -> bool:
        """True when None is a value (``nullable``, or None among the ``choices``)."""
        return self.nullable or (self.choices is not None and None in self.choices)

    @property
    def required(self) -> bool:
        """True when there is no default (a default of None that is a value does not count)."""
        return self.default is None and not self.allows_none

    def range_text(self) -> str:
        """The allowed range as text, e.g. ``[0, 1)``; empty when unbounded.

        Returns
        -------
        str
            ``"[0, 1)"``, ``">= 0"``, ``"one of a, b"`` for a choice; ``""`` when unbounded.

        Examples
        --------
        >>> from optfilters import Hyperparameter
        >>> Hyperparameter("eps", 1e-8, low=0.0).range_text()
        '>= 0'
        """
        if self.choices is not None:
            return "one of " + ", ".join("none" if c is None else str(c) for c in self.choices)
        if self.low is None and self.high is None:
            return ""
        return range_text(self.low, self.high, self.low_open, self.high_open).removeprefix("in ")

    def _check_number(self, value: Any, label: str) -> float:
        return check_number(value, label, self.low, self.high, self.low_open, self.high_open)

    def validate(self, value: Any) -> Any:
        """Convert and check a value; raises :class:`InvalidHyperparameterError` naming the parameter.

        Parameters
        ----------
        value : object
            The value given: a number, a numeric string (CLI), a bool or its text,
            a list / tuple / array / tensor or ``"a,b"`` text for ``floats``, or
            None for the default.

        Returns
        -------
        object
            The value as the parameter's kind: ``float``, ``int``, ``bool``,
            ``str``, a tuple of floats, or None for an optional parameter given None.

        Raises
        ------
        InvalidHyperparameterError
            When the value is required but missing, of the wrong kind, not
            finite, outside the allowed range or choices, or a list of the wrong
            length; the message names the parameter.
        """
        if self.allows_none and (value is None or (isinstance(value, str) and value.strip().lower() == "none")):
            return None
        if value is None:
            raise InvalidHyperparameterError(f"{self.name} is required")
        if self.kind == "str":
            if not isinstance(value, str) or not value.strip():
                raise InvalidHyperparameterError(f"{self.name} must be a name, got {value!r}")
            if self.choices is not None and value not in self.choices:
                raise InvalidHyperparameterError(f"{self.name} must be {self.range_text()}, got {value!r}")
            return value
        if self.kind == "bool":
            if isinstance(value, (bool, np.bool_)):
                return bool(value)
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise InvalidHyperparameterError(f"{self.name} must be true or false, got {value!r}")
        if self.kind == "int":
            number = self._check_number(value, self.name)
            if number != int(number):
                raise InvalidHyperparameterError(f"{self.name} must be an integer, got {value!r}")
            return int(number)
        if self.kind == "floats":
            if isinstance(value, str):
                items = value.replace(";", ",").split(",")
                if len(items) > 1 and any(not v.strip() for v in items):
                    raise InvalidHyperparameterError(f"{self.name} has an empty item in {value!r}")
                value = [v for v in items if v.strip()]
            elif not isinstance(value, Sequence) and (hasattr(value, "__array__") or hasattr(value, "tolist")):
                value = _to_list(value, self.name)  # numpy arrays and torch tensors, as lists
            if not isinstance(value, Sequence):
                raise InvalidHyperparameterError(f"{self.name} must be a list of numbers, got {value!r}")
            if len(value) < self.min_length:
                raise InvalidHyperparameterError(
                    f"{self.name} must have at least {self.min_length} value(s), got {list(value)!r}"
                )
            limit = MAX_COEFFICIENTS if self.max_length is None else min(self.max_length, MAX_COEFFICIENTS)
            if len(value) > limit:
                raise InvalidHyperparameterError(
                    f"{self.name} may have at most {limit} values"
                    + (" (optfilters.validation.MAX_COEFFICIENTS)" if limit == MAX_COEFFICIENTS else "")
                    + f", got {len(value)}"
                )
            return tuple(self._check_number(v, f"{self.name}[{i}]") for i, v in enumerate(value))
        return self._check_number(value, self.name)


def _to_list(value: Any, name: str) -> list[Any]:
    items = value.tolist() if hasattr(value, "tolist") else list(value)
    if not isinstance(items, list):  # a 0-d array: one value
        items = [items]
    if any(isinstance(v, list) for v in items):
        raise InvalidHyperparameterError(
            f"{name} must be a 1-d list of numbers, got shape {getattr(value, 'shape', '?')}"
        )
    return items
