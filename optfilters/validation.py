"""Input validation, number formatting and strict JSON, shared by the library and the command line.

One place for the rules every entry point follows:

- a bad value raises :class:`~optfilters.InvalidHyperparameterError` (a
  ``ValueError``) whose message names the parameter (:func:`check_number`,
  :func:`check_integer`, :func:`as_float_array`);
- arrays are accepted alike whether they come as lists, tuples, numpy arrays
  or torch tensors (anything with ``__array__`` or ``tolist``);
- sizes have documented upper bounds (:data:`MAX_STEPS`, :data:`MAX_POINTS`,
  :data:`MAX_SAMPLES`, :data:`MAX_ORDER`, :data:`MAX_PERIOD`, :data:`MAX_COEFFICIENTS`;
  an integer hyperparameter without its own bound is bounded by :data:`MAX_STEPS`), checked
  before anything is allocated;
- numbers that overflow saturate to ``inf`` (:func:`saturating_power`,
  :func:`quiet_numerics`) and are reported as what they are: a result is never
  printed as ``nan`` but labelled (:func:`fmt`: ``diverged``, ``undefined``,
  ``inf``), and JSON is strict (:func:`dumps_json`: no ``NaN``/``Infinity``
  tokens; non-finite numbers become ``null`` or a label);
- files are written atomically (:func:`atomic_write_text`: a temporary file in
  the same folder, then :func:`os.replace`).

It imports numpy only.

Examples
--------
>>> from optfilters.validation import check_integer, fmt, dumps_json
>>> check_integer(3.0, "steps", low=1, high=MAX_STEPS)
3
>>> fmt(float("nan")), fmt(float("inf")), fmt(0.1 + 0.2)
('undefined', 'inf', '0.3')
>>> dumps_json({"rate": float("nan"), "gain": float("inf"), "x": 1.5})
'{"rate": null, "gain": null, "x": 1.5}'
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import InvalidHyperparameterError

__all__ = [
    "MARGINAL_RATE_TOL",
    "MAX_COEFFICIENTS",
    "MAX_LOOP_STALENESS",
    "MAX_ORDER",
    "MAX_PERIOD",
    "MAX_POINTS",
    "MAX_PREDICT_STALENESS",
    "MAX_SAMPLES",
    "MAX_SEED",
    "MAX_STEPS",
    "FrozenMapping",
    "as_float_array",
    "atomic_write_text",
    "check_distinct",
    "check_integer",
    "check_number",
    "check_value_type",
    "dumps_json",
    "finite_list",
    "finite_or_none",
    "fmt",
    "fmt_complex",
    "fmt_list",
    "fmt_rate",
    "is_marginal",
    "jsonable",
    "nonfinite_label",
    "null_reasons",
    "number_or_text",
    "parse_decimal",
    "parse_integer",
    "quiet_numerics",
    "range_text",
    "saturating_float",
    "saturating_power",
    "saturating_spectral_radius",
    "series_null_reason",
    "unexplained_nulls",
]

#: Largest number of steps of a simulated or probed run (time series, probes, predictions).
MAX_STEPS = 10_000_000
#: Largest number of steps of ``large-signal`` (``--before``, ``--burst``): the exact recursion keeps every step
#: of three columns.  ``large-signal adam --burst 1000000`` takes 5 s and 0.43 GB on the 2-core development
#: machine, ``--before 10000000`` took 55 s and about 4 GB, so longer windows are refused.
MAX_LARGE_SIGNAL_STEPS = 2_000_000
#: Largest number of steps of the noiseless ``sign-loop`` run (``--steps``): it runs step by step
#: (``sign-loop lion --lr 0.01 --steps 300000`` took 69 s on the loaded 2-core development machine, ``--steps
#: 1000000`` would take minutes), so runs longer than about 45 s there are refused.
MAX_SIGN_LOOP_STEPS = 200_000
#: Largest half-period ``k`` of the symmetric cycles ``sign-loop`` searches (``--max-period``): each ``k`` solves
#: its own cycle, at a cost that grows faster than ``k`` (``--max-period 3000`` takes 12.5 s, ``5000`` 53 s on
#: the loaded 2-core machine, 10 000 more than 100 s), so larger ones are refused.
MAX_SIGN_LOOP_HALF_PERIOD = 5_000
#: Largest work of ``observe`` (noisy quadratic over seeds): ``steps * max(seeds, OBSERVE_SEED_FLOOR) *
#: coordinates``.  ``observe momentum --lr 0.1 --steps 100 --seeds 200000`` (2e7) takes 26 s and 1 GB on the
#: loaded 2-core development machine (``--seeds 10000000`` needed 5.8 GB), and a step costs about as much as
#: 2000 seeds (``--steps 50000 --seeds 2`` ran past 150 s), so larger products are refused.
MAX_OBSERVE_WORK = 20_000_000
#: Seeds a step of ``observe`` costs at least (the per-step overhead of the PyTorch bridge).
OBSERVE_SEED_FLOOR = 2000
#: Largest number of frequency points of a response.
MAX_POINTS = 100_000
#: Largest number of samples (Monte-Carlo runs, dither samples).
MAX_SAMPLES = 10_000_000
#: Largest order of a designed filter or of an identified ARMA model.
MAX_ORDER = 64
#: Largest period of a periodically time-varying model (Lookahead's ``k``).  Its analysis multiplies one
#: transition matrix per step of the period for every point of a stability grid: ``optfilters stability
#: lookahead --k 1000`` takes about 10 s, so longer periods are refused.
MAX_PERIOD = 1000
#: Largest random seed (numpy's and torch's generators both accept 0 .. 2**32 - 1).
MAX_SEED = 2**32 - 1
#: Largest number of coefficients of a hyperparameter list (a custom filter's ``b`` or ``a``).  The
#: analysis solves eigenvalue and Lyapunov problems of the filter's order (cubic cost): at 256
#: coefficients a command takes seconds, at 10 000 it would take hours, so longer lists are refused.
MAX_COEFFICIENTS = 256
#: Largest gradient staleness ``D`` of the closed-loop readings on the command line (``margins``, ``locus``,
#: ``sensitivity``): their characteristic polynomial has degree ``order + 1 + D`` and each reading needs the roots
#: of many such polynomials (``locus`` one per point).  At ``D = 100`` ``margins`` and ``sensitivity`` take
#: 2-3 s of CPU and ``locus`` (400 points) 20 s; at 128 ``locus`` takes 45 s, so larger staleness is refused.
MAX_LOOP_STALENESS = 100
#: Largest gradient staleness ``D`` of ``predict``/``observe`` on the command line: the moment recursion carries
#: ``D`` delayed copies of the parameter (covariance of size ``(D + n)^2``) and the steady state solves a
#: Lyapunov equation of that size (cubic).  ``predict adam --staleness 256 --steps 1000`` takes about 3 s;
#: ``predict momentum --staleness 1000`` 12 s before its first step, so larger staleness is refused.
MAX_PREDICT_STALENESS = 256
#: A closed-loop rate (largest pole modulus per step) within this of 1 is *marginal*: the distance from 1 is
#: below what the pole computation resolves (a pole at 1 that no lr moves, or ``lr * h`` near the smallest
#: double), so the loop neither provably converges nor diverges and has no steady state.
MARGINAL_RATE_TOL = 1e-12


# ----------------------------------------------------------------------------- checks


def _scalar(value: Any) -> Any:
    """A 0-d numpy array as a Python scalar (other values, tensors included, unchanged: ``float()`` reads them)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    return value


#: The strict decimal grammar of numeric text: an optional sign, ASCII digits with an optional point, an optional
#: exponent.  Python's ``float()`` and ``int()`` also read ``1_0`` (as 10), other scripts' digits (``\u0661``) and
#: ``nan``/``inf``: none of them is a number here.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NONFINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_BINARY = (bytes, bytearray, memoryview)


def parse_decimal(text: str, name: str, finite: bool = True) -> float:
    """Numeric text as a float by the strict decimal grammar, or a one-line error naming ``name``.

    The grammar is ``[+-] digits [. digits] [(e|E) [+-] digits]`` (or ``.digits``) in ASCII digits, with
    surrounding white space ignored; ``-0`` is 0.  Refused, each with its own message: text outside the
    grammar (``1_0``, ``0x10``, ``1e``, ``1,5``, other scripts' digits), ``nan``/``inf`` (unless
    ``finite=False``), and a number beyond the double range (``1e400``, which ``float()`` reads as inf).

    Parameters
    ----------
    text : str
        The text.
    name : str
        The field's name, for the message.
    finite : bool
        Refuse ``nan`` and ``inf`` (default); with False they are read as ``float()`` reads them.

    Returns
    -------
    float
        The correctly rounded double nearest to the decimal number.

    Raises
    ------
    InvalidHyperparameterError
        ``"{name} must be a number, got '1_0'"``; ``"{name} must be a finite number, got 'inf'"``;
        ``"{name} must be within the double range (magnitude < 1.8e308), got '1e400'"``.

    Examples
    --------
    >>> parse_decimal(" +1.5e-3", "gamma"), parse_decimal("-0", "gamma")
    (0.0015, 0.0)
    >>> parse_decimal("1_0", "gamma")
    Traceback (most recent call last):
    ...
    optfilters.errors.InvalidHyperparameterError: gamma must be a number, got '1_0'
    """
    stripped = text.strip()
    if _DECIMAL.fullmatch(stripped):
        number = float(stripped)
        if math.isinf(number):
            raise InvalidHyperparameterError(
                f"{name} must be within the double range (magnitude < 1.8e308), got {text!r}"
            )
        return number + 0.0  # -0 is 0
    if _NONFINITE.fullmatch(stripped):
        if not finite:
            return float(stripped)
        raise InvalidHyperparameterError(f"{name} must be a finite number, got {text!r}")
    raise InvalidHyperparameterError(f"{name} must be a number, got {text!r}")


def parse_integer(text: str, name: str) -> int:
    """Integer text (``[+-] digits`` in ASCII, white space around ignored) as an int, else a message naming ``name``.

    Integral decimal text (``1e3``, ``10.0``) is read by the decimal grammar (:func:`parse_decimal`), exactly.

    Parameters
    ----------
    text, name : str
        The text, and the field's name for the message (as :func:`parse_decimal`).

    Returns
    -------
    int

    Raises
    ------
    InvalidHyperparameterError
        Text outside the grammar (``1_0``, ``0x10``), non-finite, or not integral (``2.5``).

    Examples
    --------
    >>> parse_integer("+12", "steps"), parse_integer("1e3", "steps")
    (12, 1000)
    """
    stripped = text.strip()
    if _INTEGER.fullmatch(stripped):
        return int(stripped)
    parse_decimal(text, name)  # in the grammar and within the double range (no 1e999999999-digit integers)
    exact = Decimal(stripped)  # the integer itself, not its double (9007199254740993e0 is odd)
    if exact != exact.to_integral_value():
        raise InvalidHyperparameterError(f"{name} must be an integer, got {text!r}")
    return int(exact)


def number_or_text(text: str) -> Any:
    """Text as an int (integer grammar), a float (strict decimal grammar, ``nan``/``inf`` included) or unchanged.

    For text that goes on to a hyperparameter's check: integers stay integers (so that a message echoes
    ``-1``, not ``-1.0``), and text that is not a number (``1_0``, ``abc``) is left for the check to refuse
    by name (:func:`check_number`).

    Parameters
    ----------
    text : str
        The text (a command-line value).

    Returns
    -------
    int, float or str
        The integer, the number (``nan``/``inf`` for their words), or ``text`` unchanged.

    Examples
    --------
    >>> number_or_text(" -1"), number_or_text("1e-3"), number_or_text("1_0")
    (-1, 0.001, '1_0')
    """
    stripped = text.strip()
    if _INTEGER.fullmatch(stripped):
        return int(stripped)
    try:
        return parse_decimal(stripped, "value", finite=False)
    except InvalidHyperparameterError:
        return text


def check_value_type(key: str, value: Any, kind: str) -> None:
    """Refuse a hyperparameter of the wrong Python type in an optimizer's own settings (never parse it).

    The catalogue's validation reads text for the command line; an optimizer's
    param group (:class:`optfilters.torch.FilterOptimizer`,
    :class:`optfilters.NumpyOptimizer`) holds what the training script put
    there, and torch.optim computes with it as it is: ``nesterov="False"`` is
    true for torch.optim.SGD (any non-empty text is), ``lr="0.1"`` fails inside
    its step.  So a numeric kind (``float``, ``int``, ``floats``; a tuple such
    as ``betas`` item by item) refuses text, bytes and bools, and a ``bool``
    kind takes only ``True``/``False`` (Python's or numpy's bool).  Other
    values pass to the range checks.

    Parameters
    ----------
    key : str
        The hyperparameter's name (with its group) for the message.
    value : object
        Its value.
    kind : str
        The hyperparameter's kind (:attr:`optfilters.Hyperparameter.kind`).

    Raises
    ------
    InvalidHyperparameterError
        One line naming ``key``, the value and its type.

    Examples
    --------
    >>> check_value_type("lr", 0.1, "float")
    >>> check_value_type("nesterov", "False", "bool")
    Traceback (most recent call last):
    ...
    optfilters.errors.InvalidHyperparameterError: nesterov must be True or False, got 'False' (a str; torch.optim \
takes the truth of any value: the text 'False' is true)
    >>> check_value_type("betas", (0.9, b"0.99"), "floats")
    Traceback (most recent call last):
    ...
    optfilters.errors.InvalidHyperparameterError: betas must be numbers, got (0.9, b'0.99') (a bytes inside)
    """
    if value is None:
        return
    if kind == "bool":
        if not isinstance(value, (bool, np.bool_)):
            raise InvalidHyperparameterError(
                f"{key} must be True or False, got {value!r} (a {type(value).__name__}; torch.optim takes the truth "
                "of any value: the text 'False' is true)"
            )
        return
    if kind not in ("float", "int", "floats"):
        return
    wrong = (str, bool, np.bool_, *_BINARY)
    if isinstance(value, wrong):
        raise InvalidHyperparameterError(f"{key} must be a number, got {value!r} (a {type(value).__name__})")
    if isinstance(value, (tuple, list)):
        for item in value:
            if isinstance(item, wrong):
                raise InvalidHyperparameterError(
                    f"{key} must be numbers, got {value!r} (a {type(item).__name__} inside)"
                )


def check_number(
    value: Any,
    name: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    finite: bool = True,
) -> float:
    """``value`` as a float, or an error naming ``name``.

    Parameters
    ----------
    value : object
        A Python or numpy number, a 0-d array or tensor, or numeric text in the strict decimal
        grammar (:func:`parse_decimal`: ``1_0`` and ``0x10`` are not numbers); bytes are refused.
    name : str
        The parameter's name, used in the message.
    low, high : float, optional
        Bounds (closed unless ``low_open`` / ``high_open``).
    low_open, high_open : bool
        Exclude the bound itself.
    finite : bool
        Refuse ``nan`` and ``inf`` (default).

    Returns
    -------
    float

    Raises
    ------
    InvalidHyperparameterError
        ``"{name} must be ..., got ..."``.

    Examples
    --------
    >>> check_number("0.5", "beta", 0.0, 1.0, high_open=True)
    0.5
    >>> check_number(1.5, "beta", 0.0, 1.0, high_open=True)
    Traceback (most recent call last):
    ...
    optfilters.errors.InvalidHyperparameterError: beta must be in [0, 1), got 1.5
    """
    value = _scalar(value)
    if isinstance(value, (bool, np.bool_, *_BINARY)) or value is None:
        raise InvalidHyperparameterError(f"{name} must be a number, got {value!r}")
    if isinstance(value, str):
        number = parse_decimal(value, name, finite)
    else:
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise InvalidHyperparameterError(f"{name} must be a number, got {value!r}") from None
    if finite and not math.isfinite(number):
        raise InvalidHyperparameterError(f"{name} must be a finite number, got {value!r}")
    low_bad = low is not None and (number <= low if low_open else number < low)
    high_bad = high is not None and (number >= high if high_open else number > high)
    if low_bad or high_bad:
        raise InvalidHyperparameterError(f"{name} must be {range_text(low, high, low_open, high_open)}, got {value!r}")
    return number


def _bound(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


def range_text(low: float | None, high: float | None, low_open: bool = False, high_open: bool = False) -> str:
    """A range as text for messages: ``in [0, 1)``, ``>= 1``, ``in [1, 10000000]``.

    Parameters
    ----------
    low, high : float or None
        The bounds (None: unbounded on that side).
    low_open, high_open : bool, optional
        Whether each bound is excluded.

    Returns
    -------
    str
        ``"in [low, high]"``, ``">= low"``, ``"<= high"`` (with ``(``/``<`` for
        open bounds), or ``"a number"`` when both are None.

    Examples
    --------
    >>> range_text(0.0, 1.0, high_open=True), range_text(1, None), range_text(None, 2**32 - 1)
    ('in [0, 1)', '>= 1', '<= 4294967295')
    """
    if low is None and high is None:
        return "a number"
    if high is None:
        return f"{'>' if low_open else '>='} {_bound(low)}"  # type: ignore[arg-type]
    if low is None:
        return f"{'<' if high_open else '<='} {_bound(high)}"
    return f"in {'(' if low_open else '['}{_bound(low)}, {_bound(high)}{')' if high_open else ']'}"


def check_integer(value: Any, name: str, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int (integral floats and numeric text accepted), or an error naming ``name``.

    Sizes pass their documented bound as ``high`` so that a huge request is
    refused before anything is allocated.

    Parameters
    ----------
    value : object
        The value given (an int, an integral float, numeric text, ...).
    name : str
        The parameter's name, for the message.
    low, high : int, optional
        Inclusive bounds (None: unbounded on that side).

    Returns
    -------
    int
        The integer.

    Raises
    ------
    InvalidHyperparameterError
        Not a number, not an integer (``2.5``), or out of ``[low, high]``.

    Examples
    --------
    >>> check_integer("12", "steps", 1, 100), check_integer(4.0, "order")
    (12, 4)
    >>> check_integer(2.5, "step")
    Traceback (most recent call last):
    ...
    optfilters.errors.InvalidHyperparameterError: step must be an integer, got 2.5
    >>> check_integer(10**12, "steps", 1, MAX_STEPS)
    Traceback (most recent call last):
    ...
    optfilters.errors.InvalidHyperparameterError: steps must be in [1, 10000000], got 1000000000000
    """
    value = _scalar(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        number = int(value)
    elif isinstance(value, str):  # the strict grammar: int() also reads '1_0' and other scripts' digits
        number = parse_integer(value, name)
        if _INTEGER.fullmatch(value.strip()):
            value = number  # echoed as the integer typed
    else:
        real = check_number(value, name, finite=True)
        if real != math.floor(real):
            raise InvalidHyperparameterError(f"{name} must be an integer, got {value!r}")
        number = int(real)
    if (low is not None and number < low) or (high is not None and number > high):
        text = range_text(low, high, False, False) if low is not None or high is not None else ""
        raise InvalidHyperparameterError(f"{name} must be {text}, got {value!r}")
    return number


def check_distinct(values: Any, name: str) -> tuple[Any, ...]:
    """Refuse a list that names the same thing twice (``tune=("momentum", "momentum")``).

    Parameters
    ----------
    values : iterable
        The names (or any hashable items).
    name : str
        The parameter's name for the message.

    Returns
    -------
    tuple
        ``values`` as a tuple, in order.

    Raises
    ------
    InvalidHyperparameterError
        An item appears more than once; the message names it.

    Examples
    --------
    >>> check_distinct(["lr", "momentum"], "tune")
    ('lr', 'momentum')
    >>> try:
    ...     check_distinct(["momentum", "momentum"], "tune")
    ... except ValueError as exc:
    ...     print(exc)
    tune names 'momentum' twice, got momentum,momentum
    """
    items = tuple(values)
    seen: set[Any] = set()
    for item in items:
        if item in seen:
            raise InvalidHyperparameterError(f"{name} names {item!r} twice, got {','.join(str(v) for v in items)}")
        seen.add(item)
    return items


def as_float_array(value: Any, name: str, max_size: int | None = None, ndim: int | None = 1) -> NDArray[np.float64]:
    """Numbers given as a list, tuple, numpy array or torch tensor, as a float64 array (finite values).

    Parameters
    ----------
    value : array_like
        The numbers; text items must parse as numbers.
    name : str
        The parameter's name, used in messages (items as ``name[i]``).
    max_size : int, optional
        Largest number of values.
    ndim : int or None
        Required number of dimensions (a scalar is promoted to 1-d when 1).

    Returns
    -------
    ndarray
        The values as float64, ``ndim`` dimensions (a fresh array).

    Raises
    ------
    InvalidHyperparameterError
        Not numbers, non-finite items, too many values or the wrong shape.

    Examples
    --------
    >>> as_float_array([1, "-0.5"], "a").tolist(), as_float_array(np.array([2.0]), "b").tolist()
    ([1.0, -0.5], [2.0])
    >>> as_float_array([1.0, float("nan")], "a")
    Traceback (most recent call last):
    ...
    optfilters.errors.InvalidHyperparameterError: a[1] must be a finite number, got nan
    """
    if hasattr(value, "detach"):  # a torch tensor (no torch import)
        value = value.detach().cpu().numpy()
    if isinstance(value, (str, bytes, Mapping)) or value is None:
        raise InvalidHyperparameterError(f"{name} must be a list of numbers, got {value!r}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        items = list(value) if np.iterable(value) else [value]
        for i, item in enumerate(items):
            check_number(item, f"{name}[{i}]")
        raise InvalidHyperparameterError(f"{name} must be a list of numbers, got {value!r}") from None
    if ndim == 1 and array.ndim == 0:
        array = array.reshape(1)
    if ndim is not None and array.ndim != ndim:
        raise InvalidHyperparameterError(f"{name} must be a {ndim}-d list of numbers, got shape {array.shape}")
    if max_size is not None and array.size > max_size:
        raise InvalidHyperparameterError(f"{name} may have at most {max_size} values, got {array.size}")
    bad = np.flatnonzero(~np.isfinite(array.ravel()))
    if bad.size:
        i = int(bad[0])
        raise InvalidHyperparameterError(f"{name}[{i}] must be a finite number, got {float(array.ravel()[i])!r}")
    return array


# ----------------------------------------------------------------------------- overflow


@contextmanager
def quiet_numerics() -> Iterator[None]:
    """Overflow saturates to ``inf`` and ``0/0`` gives ``nan`` without RuntimeWarnings.

    For code that checks its results afterwards (and labels non-finite ones)
    instead of letting numpy print warnings with source paths.

    Examples
    --------
    >>> with quiet_numerics():
    ...     float(np.float64(1e300) * 1e300)
    inf
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def saturating_power(base: Any, exponent: Any) -> Any:
    """``base ** exponent`` with overflow saturating to ``±inf`` (never an OverflowError).

    Parameters
    ----------
    base, exponent : float or array_like
        Broadcast together.

    Returns
    -------
    float or ndarray
        ``base ** exponent`` (a float for scalar inputs), ``±inf`` where it
        overflows.

    Examples
    --------
    >>> saturating_power(1.5, 2000), saturating_power(-1.5, 2001), saturating_power(0.5, 2)
    (inf, -inf, 0.25)
    >>> saturating_power(np.array([2.0, 0.9]), 5000).tolist()
    [inf, 0.0]
    """
    with quiet_numerics():
        result = np.power(np.asarray(base, dtype=np.float64), exponent)
    return float(result) if np.ndim(result) == 0 else result


def saturating_float(value: Any) -> float:
    """``float(value)`` with overflow saturating to ``±inf`` (an exact rational or integer beyond the double range).

    Parameters
    ----------
    value : int, Fraction, float or any real number
        What :class:`float` converts (an exact rational may lie beyond the double range).

    Returns
    -------
    float
        ``float(value)``, or ``inf`` / ``-inf`` (by the sign of ``value``) where that overflows.

    Examples
    --------
    >>> from fractions import Fraction
    >>> saturating_float(Fraction(10**400, 3)), saturating_float(-(10**400)), saturating_float(Fraction(1, 4))
    (inf, -inf, 0.25)
    """
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def saturating_spectral_radius(matrices: Any) -> Any:
    """The spectral radius ``max |eig|`` of a square matrix or a stack of them (last two axes).

    A matrix with a non-finite entry (a loop whose transition overflowed at a
    huge curvature or learning rate) has radius ``inf``, so the caller reports
    it as unstable, where :func:`numpy.linalg.eigvals` would raise "Array must
    not contain infs or NaNs".

    Parameters
    ----------
    matrices : array_like, shape (..., n, n)
        A square matrix or a stack of them (converted to float64).

    Returns
    -------
    float or ndarray
        Shape ``matrices.shape[:-2]``.

    Examples
    --------
    >>> saturating_spectral_radius(np.array([[0.5, 1.0], [0.0, -0.9]]))
    0.9
    >>> saturating_spectral_radius(np.array([[[np.inf]], [[0.25]]])).tolist()
    [inf, 0.25]
    """
    a = np.asarray(matrices, dtype=np.float64)
    bad = ~np.all(np.isfinite(a), axis=(-2, -1))
    with quiet_numerics():
        radius = np.max(np.abs(np.linalg.eigvals(np.where(bad[..., None, None], 0.0, a))), axis=-1)
    radius = np.where(bad, np.inf, radius)
    return float(radius) if np.ndim(radius) == 0 else radius


# ----------------------------------------------------------------------------- formatting


def finite_or_none(value: Any) -> float | None:
    """``value`` as a float, or None when it is None, ``nan`` or infinite (plain data for JSON).

    Parameters
    ----------
    value : float or None
        A number (anything :class:`float` accepts).

    Returns
    -------
    float or None
        The finite float, else None.

    Examples
    --------
    >>> finite_or_none(np.float64(0.5)), finite_or_none(float("inf")), finite_or_none(None)
    (0.5, None, None)
    """
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def finite_list(values: ArrayLike) -> list[float | None]:
    """``values`` flattened to a list of floats, ``nan`` and infinities as None (plain data for JSON).

    Parameters
    ----------
    values : array_like of float
        Any shape; flattened in C order.

    Returns
    -------
    list of float or None
        One entry per element: the finite value, or None (see :func:`finite_or_none`).

    Examples
    --------
    >>> finite_list([[0.5, float("nan")], [float("-inf"), 2.0]])
    [0.5, None, None, 2.0]
    """
    return [finite_or_none(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def is_marginal(rate: Any) -> Any:
    """Whether a closed-loop rate is within :data:`MARGINAL_RATE_TOL` of 1 (vectorised).

    Parameters
    ----------
    rate : float or array_like
        Largest closed-loop pole modulus per step.

    Returns
    -------
    bool or ndarray of bool
        True where ``|rate - 1| <= MARGINAL_RATE_TOL`` (False for ``nan`` and ``inf``).

    Examples
    --------
    >>> is_marginal(1.0 - 1e-16), is_marginal(0.999), is_marginal(float("inf"))
    (True, False, False)
    """
    with np.errstate(invalid="ignore"):
        out = np.abs(np.asarray(rate, dtype=np.float64) - 1.0) <= MARGINAL_RATE_TOL
    return bool(out) if out.ndim == 0 else out


def null_reasons(reasons: Mapping[str, tuple[Any, str]]) -> dict[str, str]:
    """Why each JSON field that is ``null`` is null: the reason of every non-finite or None value.

    Parameters
    ----------
    reasons : mapping of str to (value, str)
        Field name to its value and the reason it would be null (``"diverges"``,
        ``"undefined: ..."``, ``"infinite: ..."``).

    Returns
    -------
    dict of str to str
        The fields whose value is None or not finite, with their reason.

    Examples
    --------
    >>> null_reasons({"gain_margin": (float("inf"), "infinite: no lr diverges"), "rate": (0.5, "diverges")})
    {'gain_margin': 'infinite: no lr diverges'}
    """
    out = {}
    for name, (value, why) in reasons.items():
        if value is None or not math.isfinite(float(value)):
            out[name] = why
    return out


def series_null_reason(values: ArrayLike | None, what: str, index: str = "step") -> tuple[Any, str]:
    """A series' entry for :func:`null_reasons`: None (with why) when an entry is not finite, else 0.

    Parameters
    ----------
    values : array_like of float or None
        The series (None: absent, nothing to explain).
    what : str
        What the series is, for the reason (``"the expected loss"``).
    index : str
        What the series' index counts (``"step"``).

    Returns
    -------
    (float or None, str)
        ``(0.0, "")`` when every entry is finite; else None and ``"diverges:
        WHAT overflows from step T (each null entry)"`` for an infinite first
        non-finite entry, ``"undefined: ..."`` for a nan one.

    Examples
    --------
    >>> series_null_reason([0.5, 2.0, float("inf"), float("nan")], "the expected loss")
    (None, 'diverges: the expected loss overflows from step 2 (each null entry)')
    >>> series_null_reason([0.5], "the expected loss")
    (0.0, '')
    """
    if values is None:
        return 0.0, ""
    array = np.asarray(values, dtype=np.float64).ravel()
    bad = ~np.isfinite(array)
    if not bad.any():
        return 0.0, ""
    first = int(np.argmax(bad))
    if np.isinf(array[first]):
        return None, f"diverges: {what} overflows from {index} {first} (each null entry)"
    return None, f"undefined: {what} has no value from {index} {first} (each null entry)"


def unexplained_nulls(payload: Any) -> list[str]:
    """The paths of the ``null`` values of a JSON payload that no ``why_null`` entry explains.

    The JSON convention (README, "Marginal loops and null numbers"): every
    ``null`` is explained by the ``why_null`` object of a dict that holds it,
    directly or in a list or dict below one of its fields, under that field's
    name (``"expected_loss"`` explains each null entry of ``expected_loss``),
    or under a longer path from that dict (``"stable_interval[1]"``,
    ``"step.rise_steps"``).

    Parameters
    ----------
    payload : dict, list or scalar
        Parsed JSON (or the plain data a command prints).

    Returns
    -------
    list of str
        Paths such as ``"at_point.lr"`` or ``"expected_loss[3]"``; empty when every null is explained.

    Examples
    --------
    >>> unexplained_nulls({"rate": None, "loss": [1.0, None], "why_null": {"rate": "diverges"}})
    ['loss[1]']
    >>> unexplained_nulls({"interval": [0.0, None], "why_null": {"interval[1]": "infinite: stable for every lr*h"}})
    []
    """
    missing: list[str] = []

    def names(path: Sequence[str | int]) -> list[str]:
        """``path`` written out, then each shorter prefix: ``a[1].b``, ``a[1]``, ``a``."""
        out, text = [], ""
        for key in path:
            text = f"{text}[{key}]" if isinstance(key, int) else (f"{text}.{key}" if text else key)
            out.append(text)
        return out[::-1]

    def walk(value: Any, path: tuple[str | int, ...], owners: tuple[tuple[int, Mapping[str, Any]], ...]) -> None:
        if isinstance(value, Mapping):
            reasons = value.get("why_null")
            here = (*owners, (len(path), reasons if isinstance(reasons, Mapping) else {}))
            for key, item in value.items():
                if key != "why_null":
                    walk(item, (*path, str(key)), here)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(item, (*path, i), owners)
        elif value is None:
            explained = any(set(names(path[depth:])) & set(reasons) for depth, reasons in owners)
            if not explained:
                missing.append(names(path)[0] if path else "")

    walk(payload, (), ())
    return missing


def nonfinite_label(value: float, nan: str = "undefined") -> str | None:
    """The text of a non-finite number: ``inf``, ``-inf`` or the ``nan`` label; None when finite.

    ``nan`` is the label of a quantity that has no value (``undefined``, or
    ``diverged`` for a run that blew up); callers pass the reason.

    Parameters
    ----------
    value : float
        The number.
    nan : str, optional
        The label of a NaN.

    Returns
    -------
    str or None
        The label, or None for a finite number.

    Examples
    --------
    >>> nonfinite_label(float("inf")), nonfinite_label(float("nan"), "diverged"), nonfinite_label(1.0)
    ('inf', 'diverged', None)
    """
    if math.isnan(value):
        return nan
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return None


def fmt(value: Any, digits: int = 6, tiny: float = 0.0, nan: str = "undefined") -> str:
    """A number for text output: ``digits`` significant digits, ``n/a`` for None, no ``-0``, never ``nan``.

    Magnitudes below ``tiny`` print as ``0`` (rounding noise such as a phase of
    1e-15 degrees); a NaN prints as ``nan`` (default ``undefined``; pass
    ``"diverged"`` for a run that blew up).

    Parameters
    ----------
    value : float, complex, bool or None
        The number.
    digits : int, optional
        Significant digits.
    tiny : float, optional
        Magnitudes below it print as ``0``.
    nan : str, optional
        The text of a NaN.

    Returns
    -------
    str
        The text (``%g`` style).

    Examples
    --------
    >>> fmt(0.1 + 0.2), fmt(-0.0), fmt(None), fmt(float("inf")), fmt(True), fmt(-3e-15, tiny=1e-9)
    ('0.3', '0', 'n/a', 'inf', 'True', '0')
    >>> fmt(float("nan"), nan="diverged")
    'diverged'
    """
    if value is None:
        return "n/a"
    if isinstance(value, (bool, np.bool_, str)):
        return str(value)
    if isinstance(value, (complex, np.complexfloating)):
        return fmt_complex(complex(value), digits)
    number = float(value)
    label = nonfinite_label(number, nan)
    if label is not None:
        return label
    if abs(number) < tiny:
        return "0"
    text = f"{number:.{digits}g}"
    return "0" if text in ("-0", "0") else text


def fmt_rate(rate: Any, digits: int = 6) -> str:
    """A rate (pole modulus) for text: ``1 - 1e-08`` where ``digits`` digits would round a non-marginal rate to 1.

    A loop at ``lr * h = 1e-9`` converges at ``1 - 1e-8`` per step; ``%g`` prints ``1``, which reads as marginal.
    Rates within :data:`MARGINAL_RATE_TOL` of 1 (marginal) and all others print as :func:`fmt` does.

    Parameters
    ----------
    rate : float
        The rate per step.
    digits : int, optional
        Significant digits.

    Returns
    -------
    str
        The text.

    Examples
    --------
    >>> fmt_rate(1.0 - 1e-8), fmt_rate(1.0 + 3e-7), fmt_rate(0.5), fmt_rate(1.0 - 1e-15)
    ('1 - 1e-08', '1 + 3e-07', '0.5', '1')
    """
    text = fmt(rate, digits)
    number = float(rate)
    if text == "1" and abs(number - 1.0) > MARGINAL_RATE_TOL:
        return f"1 - {fmt(1.0 - number, 4)}" if number < 1.0 else f"1 + {fmt(number - 1.0, 4)}"
    return text


def fmt_complex(value: complex, digits: int = 6) -> str:
    """A root for text output: real when the imaginary part is negligible.

    Parameters
    ----------
    value : complex
        The number.
    digits : int, optional
        Significant digits of each part.

    Returns
    -------
    str
        ``"re"`` or ``"re+imj"``; ``inf`` / ``undefined`` for non-finite parts.

    Examples
    --------
    >>> fmt_complex(0.9 + 0j), fmt_complex(0.78 - 0.18j)
    ('0.9', '0.78-0.18j')
    """
    re, im = float(value.real), float(value.imag)
    if not (math.isfinite(re) and math.isfinite(im)):
        return "undefined" if math.isnan(re) or math.isnan(im) else "inf"
    scale = max(abs(re), abs(im), 1.0)
    if abs(im) <= 1e-12 * scale:
        return fmt(re, digits)
    sign = "-" if im < 0 else "+"
    return f"{fmt(re, digits)}{sign}{fmt(abs(im), digits)}j"


def fmt_list(values: Any, digits: int = 6, empty: str = "none") -> str:
    """Numbers (real or complex) joined with ``, ``; ``empty`` when there are none.

    Parameters
    ----------
    values : iterable of float or complex
        The numbers.
    digits : int, optional
        Significant digits of each.
    empty : str, optional
        The text when there are none.

    Returns
    -------
    str
        The joined text.

    Examples
    --------
    >>> fmt_list([1.0, -0.9]), fmt_list([]), fmt_list([0.5 + 0.5j, 0.5 - 0.5j])
    ('1, -0.9', 'none', '0.5+0.5j, 0.5-0.5j')
    """
    items = [fmt(v, digits) for v in np.asarray(values).ravel()]
    return ", ".join(items) if items else empty


def jsonable(value: Any) -> Any:
    """Plain JSON data: numpy values to Python, complex to ``[re, im]``, non-finite floats to None.

    Dataclass-like objects with ``as_dict()`` are converted through it.

    Parameters
    ----------
    value : object
        Any value: mappings, sequences, numpy arrays and scalars, complex
        numbers, objects with ``as_dict()``; other objects become their ``str``.

    Returns
    -------
    object
        Nested dicts, lists, str, int, float, bool and None only.

    Examples
    --------
    >>> jsonable({"x": np.array([1.0, np.inf]), "p": (0.5 + 1j,), "n": np.int64(3), "k": float("nan")})
    {'x': [1.0, None], 'p': [[0.5, 1.0]], 'n': 3, 'k': None}
    """
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, (complex, np.complexfloating)):
        return [jsonable(float(value.real)), jsonable(float(value.imag))]
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "as_dict") and callable(value.as_dict):
        return jsonable(value.as_dict())
    if hasattr(value, "tolist") and callable(value.tolist):  # torch tensors and other array types
        try:
            return jsonable(value.tolist())
        except (TypeError, ValueError, RuntimeError):
            pass
    return str(value)


def dumps_json(data: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``data`` (through :func:`jsonable`: never a ``NaN`` or ``Infinity`` token).

    Parameters
    ----------
    data : object
        Anything :func:`jsonable` converts.
    **kwargs
        Passed to :func:`json.dumps` (``indent``, ``sort_keys``, ...).

    Returns
    -------
    str
        The JSON text; non-finite numbers are ``null``.

    Examples
    --------
    >>> dumps_json([1.0, float("-inf")])
    '[1.0, null]'
    """
    return __import__("json").dumps(jsonable(data), allow_nan=False, **kwargs)


# ----------------------------------------------------------------------------- files


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically: a temporary file in the same folder, then :func:`os.replace`.

    A reader sees the old file or the new one, never a half-written one, and
    two concurrent writers leave one complete file.

    Parameters
    ----------
    path : str or os.PathLike
        The file; missing parent folders are created.
    text : str
        The content, written as UTF-8.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    OSError
        The folder cannot be created or written.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> atomic_write_text(Path(folder) / "n.json", "{}").read_text()
    '{}'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


# ----------------------------------------------------------------------------- values


class FrozenMapping(Mapping[str, Any]):
    """A read-only mapping that pickles and deep-copies (unlike :class:`types.MappingProxyType`).

    The hyperparameters of an :class:`~optfilters.OptimizerModel` are one.

    Parameters
    ----------
    data : mapping, optional
        The items, copied (None: empty).

    Examples
    --------
    >>> import copy, pickle
    >>> m = FrozenMapping({"lr": 0.1})
    >>> pickle.loads(pickle.dumps(m)) == m == copy.deepcopy(m), m["lr"], dict(m)
    (True, 0.1, {'lr': 0.1})
    >>> m["lr"] = 1.0
    Traceback (most recent call last):
    ...
    TypeError: 'FrozenMapping' object does not support item assignment
    """

    __slots__ = ("_data",)
    _data: dict[str, Any]

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_data", dict(data or {}))

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        return dict(self._data) == dict(other) if isinstance(other, Mapping) else NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, repr(v)) for k, v in self._data.items())))

    def __repr__(self) -> str:
        return repr(self._data)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("FrozenMapping is read-only")

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenMapping, (dict(self._data),))

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenMapping:
        import copy

        return FrozenMapping(copy.deepcopy(self._data, memo))

    def copy(self) -> dict[str, Any]:
        """A plain (mutable) dict copy.

        Returns
        -------
        dict
            A plain, mutable copy of the items.
        """
        return dict(self._data)
