"""Hyperparameter specifications: names, defaults, types and ranges, with validation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._errors import InvalidHyperparameterError

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
        Range bounds; ``low_open`` / ``high_open`` exclude them.
    help : str
        One line for ``--help``.
    min_length, max_length : int
        Bounds on the number of values of a ``floats`` hyperparameter.
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
    optfilters._errors.InvalidHyperparameterError: beta1 must be in [0, 1), got 1.5
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
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"

    def _check_number(self, value: Any, label: str) -> float:
        if isinstance(value, bool):
            raise InvalidHyperparameterError(f"{label} must be a number, got {value!r}")
        if hasattr(value, "detach"):  # a tensor (torch.optim takes tensor lr and betas): its value
            value = value.detach()
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidHyperparameterError(f"{label} must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise InvalidHyperparameterError(f"{label} must be a finite number, got {value!r}")
        low_bad = self.low is not None and (number <= self.low if self.low_open else number < self.low)
        high_bad = self.high is not None and (number >= self.high if self.high_open else number > self.high)
        if low_bad or high_bad:
            raise InvalidHyperparameterError(f"{label} must be {_in(self.range_text())}, got {value!r}")
        return number

    def validate(self, value: Any) -> Any:
        """Convert and check a value; raises :class:`InvalidHyperparameterError` naming the parameter."""
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
            if isinstance(value, bool):
                return value
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
                value = [v for v in value.replace(";", ",").split(",") if v.strip()]
            if not isinstance(value, Sequence):
                raise InvalidHyperparameterError(f"{self.name} must be a list of numbers, got {value!r}")
            if len(value) < self.min_length:
                raise InvalidHyperparameterError(
                    f"{self.name} must have at least {self.min_length} value(s), got {list(value)!r}"
                )
            if self.max_length is not None and len(value) > self.max_length:
                raise InvalidHyperparameterError(
                    f"{self.name} must have at most {self.max_length} value(s), got {list(value)!r}"
                )
            return tuple(self._check_number(v, f"{self.name}[{i}]") for i, v in enumerate(value))
        return self._check_number(value, self.name)


def _in(range_text: str) -> str:
    if range_text.startswith(("[", "(")):
        return f"in {range_text}"
    return range_text
