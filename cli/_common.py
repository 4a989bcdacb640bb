"""Shared command-line pieces: one subcommand per catalogue optimizer, one-line errors, JSON and plots.

Commands that take an optimizer ``NAME`` and its hyperparameters
(``optfilters response adam --beta1 0.9``) are click groups made by
:func:`optimizer_group` (one optimizer) or :func:`optimizer_chain` (several,
``optfilters compare momentum nesterov``).  Their subcommands are generated
from :data:`optfilters.CATALOGUE` on demand: the name is looked up
case-insensitively with aliases, and each subcommand has exactly its entry's
hyperparameters as options (``--beta1``, ``--weight-decay``,
``--nesterov/--no-nesterov``, ``--a 1,-0.9``), defaults shown in ``--help``,
plus the command's own options (``--json``, ``--plot FILE``, ...).

Every bad input ends the same way: one line ``Error: ...`` on stderr, exit
code 2, no traceback (:class:`CliError`, :func:`one_line_errors`).  Values are
range-checked by the library (:meth:`optfilters.Hyperparameter.validate`), so
the command line and the Python API give the same messages.

Importing this module loads click, numpy and the optfilters core only: no
SciPy, torch or matplotlib.
"""

from __future__ import annotations

import copy
import errno
import math
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

import optfilters
from optfilters import CATALOGUE, ArmaFilter, CatalogueEntry, Hyperparameter, OptimizerModel
from optfilters.errors import InvalidHyperparameterError
from optfilters.user_models import is_file_reference, load_entry
from optfilters.validation import (
    check_distinct,
    dumps_json,
    fmt,
    fmt_complex,
    fmt_list,
    jsonable,
    number_or_text,
    parse_decimal,
    parse_integer,
)

__all__ = [
    "PLOT_SUFFIXES",
    "CliError",
    "DependentOption",
    "FiniteFloatRange",
    "IntegerRange",
    "NonEmptyPath",
    "NormaliserOption",
    "OneLineCommand",
    "OneLineErrorGroup",
    "OptimizerChain",
    "OptimizerCommand",
    "OptimizerGroup",
    "Selection",
    "check_dependent_options",
    "check_model_options",
    "check_output_file",
    "check_output_folder",
    "check_plot_suffix",
    "check_repeated_options",
    "command_line_numerics",
    "echo_json",
    "echo_text",
    "fmt",
    "fmt_complex",
    "fmt_list",
    "headless_matplotlib",
    "json_option",
    "jsonable",
    "normalises",
    "one_line_errors",
    "optimizer_chain",
    "optimizer_group",
    "parse_floats",
    "parse_names",
    "plot_option",
    "plot_style_options",
    "record_plot",
    "require_option",
    "save_plot",
    "stability_message",
    "text_table",
    "warn",
]

#: Figure formats accepted by ``--plot FILE`` (from the file's suffix).
PLOT_SUFFIXES = ("png", "svg", "pdf")


# ----------------------------------------------------------------------------- errors


class CliError(click.ClickException):
    """A one-line ``Error: ...`` on stderr with exit code 2 (bad input).

    Examples
    --------
    >>> CliError("beta1 must be in [0, 1), got 1.5\\nmore").format_message()
    'beta1 must be in [0, 1), got 1.5'
    >>> CliError("x").exit_code
    2
    """

    exit_code = 2

    def __init__(self, message: str) -> None:
        text = str(message).strip()
        super().__init__(text.splitlines()[0] if text else "invalid input")


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn library errors (``ValueError`` and subclasses) into a :class:`CliError`.

    Usable as a ``with`` block or a decorator.

    Examples
    --------
    >>> import optfilters
    >>> try:
    ...     with one_line_errors():
    ...         optfilters.get("adam", beta1=1.5)
    ... except CliError as exc:
    ...     print(exc.format_message(), exc.exit_code)
    beta1 must be in [0, 1), got 1.5 2
    """
    try:
        yield
    except click.ClickException:
        raise
    except ValueError as exc:
        raise CliError(str(exc) or "invalid input") from None


def _usage_to_one_line(exc: click.UsageError) -> CliError:
    return CliError(exc.format_message())


def _missing_argument(ctx: click.Context) -> CliError:
    """The one-line error of a command given no arguments at all (instead of printing its help)."""
    command = ctx.command
    if isinstance(command, click.Group):
        what = "an optimizer NAME" if isinstance(command, OptimizerGroup) else "a COMMAND"
        example = f" (e.g. {ctx.command_path} adam)" if isinstance(command, OptimizerGroup) else ""
    else:
        names = [p.human_readable_name for p in command.params if isinstance(p, click.Argument) and p.required]
        what = " ".join(names) or "an argument"
        example = ""
    return CliError(f"missing {what}{example}; see {ctx.command_path} --help")


#: numpy's floating-point RuntimeWarnings and those of its nan-functions over all-nan data (the nan result is
#: labelled where it is checked: ``diverged``, ``undefined``): never printed.
_NUMPY_WARNINGS = (
    r"(overflow|invalid value|divide by zero|underflow) encountered|All-NaN (slice|axis) encountered"
    r"|Mean of empty slice|Degrees of freedom <= 0 for slice"
)


def _one_line_warning(
    message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    """A Python warning on the command line: ``WARNING: message`` (one line, no source path)."""
    text = str(message).strip().splitlines()
    click.echo(f"WARNING: {text[0] if text else category.__name__}", err=True)


@contextmanager
def command_line_numerics() -> Iterator[None]:
    """How every command runs: numpy overflow saturates silently (results are labelled where they are
    checked), other Python warnings print as one ``WARNING:`` line, and an overflow or memory error that
    escapes a command is one ``Error:`` line (exit 2) instead of a traceback."""
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        warnings.filterwarnings("ignore", message=_NUMPY_WARNINGS, category=RuntimeWarning)
        warnings.showwarning = _one_line_warning
        try:
            yield
        except OverflowError:  # Python's own text ("(34, 'Numerical result out of range')") says nothing more
            raise CliError(
                "numbers overflow the floating-point range: the run diverges; reduce --steps or use a stable setting"
            ) from None
        except MemoryError:
            raise CliError("not enough memory for this size: ask for fewer steps or points") from None


class FiniteFloatRange(click.FloatRange):
    """:class:`click.FloatRange` that reads the strict decimal grammar and refuses ``nan`` and ``inf``.

    click lets nan through any range and reads ``1_0`` as 10; here every number on the command line follows
    :func:`optfilters.validation.parse_decimal` (white space around it and a leading ``+`` allowed, ``-0`` is 0;
    ``1_0``, other scripts' digits, ``0x10``, ``nan``, ``inf`` and text beyond the double range refused).

    Examples
    --------
    >>> from click.testing import CliRunner
    >>> cmd = OneLineCommand("run", params=[click.Option(["--lr"], type=FiniteFloatRange(min=0.0, min_open=True))])
    >>> CliRunner().invoke(cmd, ["--lr", "nan"]).stderr
    "Error: Invalid value for '--lr': nan is not a finite number.\\n"
    >>> CliRunner().invoke(cmd, ["--lr", "1_0"]).stderr
    "Error: Invalid value for '--lr': '1_0' is not a number (digits, '.', an exponent; no '_').\\n"
    """

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The number, read strictly, checked finite, then against the range."""
        return super().convert(_strict(self, value, param, ctx, integer=False), param, ctx)


class IntegerRange(click.IntRange):
    """:class:`click.IntRange` that reads integers by the strict grammar (ASCII digits; click reads ``1_0`` as 10).

    Examples
    --------
    >>> from click.testing import CliRunner
    >>> cmd = OneLineCommand("run", params=[click.Option(["--steps"], type=IntegerRange(1, 100))])
    >>> CliRunner().invoke(cmd, ["--steps", "1_0"]).stderr
    "Error: Invalid value for '--steps': '1_0' is not an integer (ASCII digits; no '_').\\n"
    """

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The integer, read strictly, then checked against the range."""
        return super().convert(_strict(self, value, param, ctx, integer=True), param, ctx)


def _strict(
    kind: click.ParamType, value: Any, param: click.Parameter | None, ctx: click.Context | None, integer: bool
) -> Any:
    """``value`` read by the strict grammar, or ``kind.fail`` with the reason (a non-text default passes)."""
    if not isinstance(value, str):
        if isinstance(value, float) and not math.isfinite(value):
            kind.fail(f"{value} is not a finite number.", param, ctx)
        return value
    text = value.strip()
    grammar = "an integer (ASCII digits; no '_')" if integer else "a number (digits, '.', an exponent; no '_')"
    try:
        return parse_integer(text, "value") if integer else parse_decimal(text, "value")
    except InvalidHyperparameterError as exc:
        message = str(exc)
        if message.startswith("value must be a finite number"):
            kind.fail(f"{text} is not a finite number.", param, ctx)
        if message.startswith("value must be within the double range"):
            kind.fail(f"{text} is beyond the double range (magnitude < 1.8e308).", param, ctx)
        kind.fail(f"{value!r} is not {grammar}.", param, ctx)


def _explicit(ctx: click.Context, name: str) -> bool:
    """True when the parameter ``name`` was given on the command line (not left at its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source != click.core.ParameterSource.DEFAULT


def _given(ctx: click.Context, name: str) -> bool:
    """True when the parameter ``name`` was given on the command line and is not None or a flag left off."""
    value = ctx.params.get(name)
    return _explicit(ctx, name) and value is not None and value is not False


def _names(needs: str | Sequence[str]) -> tuple[str, ...]:
    return (needs,) if isinstance(needs, str) else tuple(needs)


def require_option(option: str, needs: str | Sequence[str], ctx: click.Context | None = None) -> None:
    """Refuse an option given without the option it only works with (instead of silently ignoring it).

    ``option`` and ``needs`` are parameter names (``"mu"``, ``"condition_number"``) of the command of
    ``ctx`` (default: the current context); ``needs`` may name several options, any of which will do
    (``("lr", "run_steps")``).  A needed option counts as missing unless it was given on the command line
    with a value other than None or a flag left off.
    """
    ctx = ctx or click.get_current_context()
    if _explicit(ctx, option) and not any(_given(ctx, name) for name in _names(needs)):
        raise _needs_error(option, needs, ctx.command.params)


def _flag(name: str, params: Sequence[click.Parameter] = ()) -> str:
    """The command-line flag of the parameter ``name`` among ``params`` (``as_json`` -> ``--json``); else
    :func:`option_name`."""
    for param in params:
        if param.name == name and isinstance(param, click.Option):
            longs = [o for o in param.opts if o.startswith("--")]
            if longs:
                return longs[0]
    return option_name(name)


def _needs_error(option: str, needs: str | Sequence[str], params: Sequence[click.Parameter] = ()) -> CliError:
    wanted = " or ".join(_flag(name, params) for name in _names(needs))
    return CliError(f"{_flag(option, params)} needs {wanted} (without it, it would be ignored)")


def _excludes_error(option: str, other: str, params: Sequence[click.Parameter] = ()) -> CliError:
    return CliError(
        f"give {_flag(option, params)} or {_flag(other, params)}, not both (with both, one would be ignored)"
    )


class DependentOption(click.Option):
    """An option that only works with another one (``--title`` with ``--plot``), or not with others.

    Its help starts with ``--NEEDS:``; given without ``NEEDS`` (any of them,
    when it names several), the command refuses it with :func:`require_option`'s
    one-line error instead of ignoring it; given with an option it
    ``excludes`` (``--lr-curvature`` with ``--curvature``: one would override
    the other), the command refuses both by name.  Checked for every command
    by :func:`check_dependent_options`.

    Parameters
    ----------
    *args, **kwargs
        As :class:`click.Option`.
    needs : str or sequence of str, optional
        The parameter name(s) of the option(s) it needs (``"plot"``; ``("lr", "run_steps")``: either).
    excludes : sequence of str
        Parameter names of options it cannot be given with.
    """

    def __init__(
        self, *args: Any, needs: str | Sequence[str] | None = None, excludes: Sequence[str] = (), **kwargs: Any
    ) -> None:
        if needs is not None:
            wanted = " or ".join(option_name(name) for name in _names(needs))
            kwargs["help"] = f"{wanted}: {kwargs.get('help') or ''}".rstrip()
        super().__init__(*args, **kwargs)
        self.needs = needs
        self.excludes = tuple(excludes)

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        """click's help line, the options it excludes first (``not with --json: ...``)."""
        record = super().get_help_record(ctx)
        if record is None or not self.excludes:
            return record
        others = ", ".join(_flag(name, ctx.command.params) for name in self.excludes)
        return record[0], f"not with {others}: {record[1]}"


def check_dependent_options(ctx: click.Context) -> None:
    """Refuse every :class:`DependentOption` of ``ctx``'s command given without an option it needs, or with
    one it excludes.

    Raises
    ------
    CliError
        ``--title needs --plot (without it, it would be ignored)``;
        ``give --lr-curvature or --curvature, not both (...)``.
    """
    for param in ctx.command.params:
        if isinstance(param, DependentOption) and param.name is not None:
            if param.needs is not None:
                require_option(param.name, param.needs, ctx)
            if _explicit(ctx, param.name):
                for other in param.excludes:
                    if _given(ctx, other):
                        raise _excludes_error(param.name, other, ctx.command.params)


def warn(message: str) -> None:
    """Print ``WARNING: message`` on stderr (one line)."""
    click.echo(f"WARNING: {message}", err=True)


def stability_message(f: ArmaFilter, what: str) -> str | None:
    """The library's warning text for a marginal or unstable filter (None when stable).

    Examples
    --------
    >>> from optfilters import ArmaFilter
    >>> stability_message(ArmaFilter([1.0], [1.0, -1.1]), "custom gradient filter")[:38]
    'custom gradient filter is UNSTABLE: po'
    >>> stability_message(ArmaFilter.ema(0.9), "ema") is None
    True
    """
    from optfilters.analysis import warn_if_unstable

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_if_unstable(f, what)
    return str(caught[0].message) if caught else None


# ----------------------------------------------------------------------------- numbers and JSON
# One implementation for the library and the command line: optfilters.validation.


def echo_json(data: Any) -> None:
    """Print one JSON object on stdout (strict JSON: no NaN or Infinity tokens)."""
    click.echo(dumps_json(data))


def echo_text(lines: list[str], figure: str | Path | None = None) -> None:
    """Print a command's text lines, then ``figure written to FIGURE`` when a figure was written.

    Parameters
    ----------
    lines : list of str
        The report, one line each (not modified).
    figure : str or Path or None
        Where ``--plot`` wrote the figure; None when no figure was asked for.
    """
    tail = [] if figure is None else [f"figure written to {figure}"]
    click.echo("\n".join([*lines, *tail]))


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    """Right-aligned text columns: one line of ``headers``, then one line per row of cells.

    Parameters
    ----------
    headers : sequence of str
        Column headers.
    rows : sequence of sequence of str
        Cells, one sequence per row, as many as ``headers``.
    indent : str
        Prefix of every line.

    Returns
    -------
    list of str
        The lines, without newlines.
    """
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    out = [indent + "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    out += [indent + "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return out


def parse_floats(text: str, flag: str, low: float | None = None, positive: bool = False) -> list[float]:
    """Numbers separated by commas (or semicolons), with a one-line error naming the option.

    Parameters
    ----------
    text : str
        The option's value, e.g. ``"1, 10, 100"``.
    flag : str
        The option's name for the messages, e.g. ``"--curvatures"``.
    low : float, optional
        Smallest accepted value.
    positive : bool
        Accept only values > 0.

    Returns
    -------
    list of float
        The numbers, in order.

    Raises
    ------
    CliError
        On an empty item, no number, a non-number, a non-finite value or one out of range.
    """
    items = str(text).replace(";", ",").split(",")
    if len(items) > 1 and not all(t.strip() for t in items):
        raise CliError(f"{flag} has an empty item in {text!r}")
    items = [t for t in items if t.strip()]
    if not items:
        raise CliError(f"{flag} needs at least one number, got {text!r}")
    out = []
    for item in items:
        try:
            value = parse_decimal(item, flag, finite=False)
        except InvalidHyperparameterError as exc:
            if str(exc).startswith(f"{flag} must be within the double range"):  # "... got '1e400'"
                raise CliError(str(exc)) from None
            raise CliError(f"{flag} must be numbers separated by commas, got {text!r}") from None
        if not math.isfinite(value) or (positive and value <= 0.0):
            raise CliError(f"{flag} must be finite{' and > 0' if positive else ''}, got {item.strip()}")
        if low is not None and value < low:
            raise CliError(f"{flag} must be >= {low:g}, got {item.strip()}")
        out.append(value)
    return out


def parse_names(text: str, flag: str) -> tuple[str, ...]:
    """Names separated by commas, with a one-line error naming the option.

    Parameters
    ----------
    text : str
        The option's value, e.g. ``"momentum, dampening"``.
    flag : str
        The option's name for the messages, e.g. ``"--tune"``.

    Returns
    -------
    tuple of str
        The names, stripped, in order.

    Raises
    ------
    CliError
        On an empty item (``"momentum,"``) or a name given twice.

    Examples
    --------
    >>> parse_names("beta1, beta2", "--parameters")
    ('beta1', 'beta2')
    >>> try:
    ...     parse_names("momentum,momentum", "--tune")
    ... except CliError as exc:
    ...     print(exc.format_message())
    --tune names 'momentum' twice, got momentum,momentum
    """
    items = tuple(t.strip() for t in str(text).split(","))
    if not all(items):
        raise CliError(f"{flag} has an empty item in {text!r}")
    with one_line_errors():
        return check_distinct(items, flag)


# ----------------------------------------------------------------------------- shared options


def json_option() -> click.Option:
    """``--json``: print one JSON object instead of text (parameter ``as_json``)."""
    return click.Option(["--json", "as_json"], is_flag=True, help="Print one JSON object instead of text.")


class NormaliserOption(click.Option):
    """An option that only means something for an optimizer that normalises (``--second-moment``).

    Given for a model whose frozen gain does not depend on the second moment (sgd,
    momentum, the sign of lion: :meth:`optfilters.OptimizerModel.frozen_gain` is 1),
    the command refuses it by name (:func:`check_model_options`) instead of ignoring it.
    """


def normalises(model: OptimizerModel) -> bool:
    """True when ``model``'s frozen gain depends on a second moment (it has a normaliser, e.g. Adam, RMSprop).

    Asked of the model itself (its stages' :meth:`~optfilters.stages.Stage.frozen_gain`), not of stage types.

    Examples
    --------
    >>> import optfilters
    >>> [normalises(optfilters.get(n)) for n in ("adam", "adadelta", "sgd", "momentum", "lion")]
    [True, True, False, False, False]
    """
    with np.errstate(all="ignore"):
        gains = np.asarray(model.frozen_gain(np.array([0.25, 4.0])), dtype=np.float64)
    return bool(np.any(gains != 1.0))


def check_model_options(ctx: click.Context, model: OptimizerModel) -> None:
    """Refuse every :class:`NormaliserOption` given explicitly for a model that does not normalise.

    Raises
    ------
    CliError
        ``--second-moment has no effect on sgd: it does not normalise its steps (...)``.
    """
    for param in ctx.command.params:
        if isinstance(param, NormaliserOption) and param.name is not None and _explicit(ctx, param.name):
            if not normalises(model):
                raise CliError(
                    f"{option_name(param.name)} has no effect on {model.name}: it does not normalise its steps "
                    "(no normaliser frozen at a second moment; without one, the option would be ignored)"
                )


def second_moment_option(help: str) -> click.Option:
    """``--second-moment V`` (>= 0, default 1): where a normalised optimizer's normaliser is frozen.

    Parameters
    ----------
    help : str
        The command's help text for the option.

    Returns
    -------
    click.Option
    """
    return NormaliserOption(
        ["--second-moment", "second_moment"], type=FiniteFloatRange(min=0.0), default=1.0, show_default=True, help=help
    )


def staleness_option(help: str, most: int = 10_000) -> click.Option:
    """``--staleness D`` (integer steps, 0 to ``most``, default 0): gradient staleness in the loop.

    Parameters
    ----------
    help : str
        The command's help text for the option.
    most : int
        Largest accepted staleness.

    Returns
    -------
    click.Option
    """
    return click.Option(
        ["--staleness", "staleness"],
        type=IntegerRange(min=0, max=most),
        default=0,
        show_default=True,
        metavar="D",
        help=help,
    )


def points_option(default: int, help: str, needs: str | None = None) -> click.Option:
    """``--points N`` (2 to 100000): how many points a sweep or table samples.

    Parameters
    ----------
    default : int
        The command's default.
    help : str
        The command's help text for the option.
    needs : str, optional
        The option it only works with (``"plot"``: the points of a drawn curve); see :class:`DependentOption`.

    Returns
    -------
    click.Option
    """
    decls = ["--points", "points"]
    kwargs: dict[str, Any] = {
        "type": IntegerRange(min=2, max=100_000),
        "default": default,
        "show_default": True,
        "help": help,
    }
    return click.Option(decls, **kwargs) if needs is None else DependentOption(decls, needs=needs, **kwargs)


def condition_number_option(help: str, required: bool) -> click.Option:
    """``--condition-number K`` (>= 1): curvatures in ``[mu, K mu]`` (parameter ``condition_number``).

    Parameters
    ----------
    help : str
        The command's help text for the option.
    required : bool
        Whether the command needs it (otherwise it is None when not given).

    Returns
    -------
    click.Option
    """
    return click.Option(
        ["--condition-number", "condition_number"],
        type=FiniteFloatRange(min=1.0),
        required=required,
        metavar="K",
        help=help,
    )


def mu_option(help: str, needs: str | None = None) -> click.Option:
    """``--mu MU`` (normal and finite, default 1): the smallest curvature (strong convexity constant) of a range.

    A subnormal ``mu`` (below ``sys.float_info.min``) loses precision and is refused.

    Parameters
    ----------
    help : str
        The command's help text for the option.
    needs : str, optional
        The parameter name of an option ``--mu`` only works with (a :class:`DependentOption`).

    Returns
    -------
    click.Option
    """
    decls = ["--mu", "mu"]
    kwargs: dict[str, Any] = {
        "type": FiniteFloatRange(min=sys.float_info.min),
        "default": 1.0,
        "show_default": True,
        "help": help,
    }
    return click.Option(decls, **kwargs) if needs is None else DependentOption(decls, needs=needs, **kwargs)


class NonEmptyPath(click.Path):
    """:class:`click.Path` that refuses an empty name (``--plot ""`` would otherwise be the current folder ``.``).

    Examples
    --------
    >>> from click.testing import CliRunner
    >>> cmd = OneLineCommand("run", params=[click.Option(["--out"], type=NonEmptyPath())])
    >>> CliRunner().invoke(cmd, ["--out", ""]).stderr
    "Error: Invalid value for '--out': an empty name is not a path, got ''.\\n"
    """

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The path, refused when empty (or only spaces)."""
        if isinstance(value, str) and not value.strip():
            self.fail(f"an empty name is not a path, got {value!r}.", param, ctx)
        return super().convert(value, param, ctx)


def check_plot_suffix(path: Path | str) -> Path:
    """Refuse a figure file name whose suffix is not png, svg or pdf (one-line exit-2 error).

    The message quotes ``path`` as given (a string: as the user typed it).

    Examples
    --------
    >>> from pathlib import Path
    >>> check_plot_suffix(Path("bode.SVG")).name
    'bode.SVG'
    >>> try:
    ...     check_plot_suffix("./bode.gif")
    ... except CliError as exc:
    ...     print(exc.format_message())
    --plot FILE needs a suffix among .png, .svg, .pdf, got './bode.gif'
    """
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in PLOT_SUFFIXES:
        raise CliError(
            f"--plot FILE needs a suffix among {', '.join('.' + s for s in PLOT_SUFFIXES)}, got {str(path)!r}"
        )
    return Path(path)


def _probe_file(path: Path, flag: str) -> None:
    """Check that ``path`` can be written, before any work: open an existing file for appending (nothing is
    truncated or written), or create the new file and remove it again.

    ``os.access`` is not enough: run as root it says yes to ``/proc`` and ``/sys``, where creating a file fails.
    """
    try:
        if path.exists():
            with path.open("ab"):
                pass
        else:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            path.unlink()
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            why = f"folder {str(path.parent)!r} does not accept new files"
        else:
            why = (exc.strerror or "not writable").lower()
        raise CliError(f"{flag}: cannot write {str(path)!r}: {why}") from None


def _require_folder(folder: Path, flag: str, what: str) -> None:
    """Refuse a ``folder`` that does not exist or is not a folder, naming it: ``{flag}: folder ... {what}``."""
    if not folder.is_dir():
        if folder.exists():
            raise CliError(f"{flag}: {str(folder)!r} is not a folder: {what}")
        raise CliError(f"{flag}: folder {str(folder)!r} does not exist: {what} (create the folder first)")


def check_output_file(path: Path, flag: str) -> Path:
    """Refuse an output file that cannot be written (missing or read-only folder, a folder, a place such as
    ``/proc`` that accepts no files), before any work (one-line exit-2 error).

    Missing folders are never created for a file (``--plot /nonexistent/dir/x.png``
    is refused, naming the folder); only folder outputs (``figures --out``,
    ``audit --out``) create their folder, with :func:`check_output_folder`.
    Writability is tried for real (:func:`_probe_file`): an existing file is
    opened for appending, a new one created and removed.

    Parameters
    ----------
    path : Path
        The file to be written.
    flag : str
        The option or argument for the message (``"--plot"``, ``"TARGET"``).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    CliError
        The folder does not exist, is not a folder or is not writable, ``path`` is a folder, or it
        cannot be created or opened for writing.

    Examples
    --------
    >>> try:
    ...     check_output_file(Path("/nonexistent_dir_zz/sub/x.png"), "--plot")
    ... except CliError as exc:
    ...     print(exc.format_message())
    --plot: folder '/nonexistent_dir_zz/sub' does not exist: cannot write 'x.png' into it (create the folder first)
    """
    folder = path.parent
    if path.is_dir():
        raise CliError(f"{flag}: {str(path)!r} is a folder, not a file: cannot write it")
    into = f"cannot write {path.name!r} into it"
    _require_folder(folder, flag, into)
    if not os.access(folder, os.W_OK):
        raise CliError(f"{flag}: folder {str(folder)!r} is not writable: {into}")
    _probe_file(path, flag)
    return path


def check_output_folder(out: Path, flag: str) -> Path:
    """Create the output folder ``out`` if needed (not its parents) and check that a file can be written in it.

    Like ``mkdir``, not ``mkdir -p``: a missing parent folder is refused by name
    (a typo in it would otherwise create a whole tree somewhere unexpected).

    Parameters
    ----------
    out : Path
        The folder (created when missing; its parent must exist).
    flag : str
        The option for the message (``"--out"``).

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    CliError
        The parent folder does not exist, or the folder cannot be created or written (``/proc/x``, a file
        in the way).

    Examples
    --------
    >>> try:
    ...     check_output_folder(Path("/nonexistent_dir_zz/deep"), "--out")
    ... except CliError as exc:
    ...     print(exc.format_message())
    --out: folder '/nonexistent_dir_zz' does not exist: cannot create 'deep' in it (create the folder first)
    """
    if not out.is_dir():
        parent = out.parent
        if out.exists():
            raise CliError(f"{flag}: {str(out)!r} is a file, not a folder")
        _require_folder(parent, flag, f"cannot create {out.name!r} in it")
    try:
        out.mkdir(exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise CliError(f"cannot write to {flag} {str(out)!r}: {(exc.strerror or str(exc)).lower()}") from None
    return out


def _check_plot_path(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    return None if value is None else check_output_file(check_plot_suffix(value), "--plot")


def plot_option(help: str = "Also write a figure to FILE (format from the suffix: png, svg, pdf).") -> click.Option:
    """``--plot FILE``: checked suffix (png, svg, pdf) and writable before any work; parameter ``plot`` (a Path)."""
    return click.Option(
        ["--plot", "plot"],
        type=NonEmptyPath(dir_okay=False),
        default=None,
        metavar="FILE",
        callback=_check_plot_path,
        expose_value=True,
        help=help,
    )


def _parse_size(ctx: click.Context | None, param: click.Parameter | None, value: str | None) -> Any:
    if value is None:
        return None
    parts = [p for p in re.split(r"[x,X]", str(value).strip()) if p.strip()]
    try:
        width, height = (parse_decimal(p, "--size") for p in parts)
    except (ValueError, InvalidHyperparameterError):
        raise CliError(f"--size needs WIDTHxHEIGHT in inches (e.g. 8x4.5), got {value!r}") from None
    if not (0.5 <= width <= 50.0 and 0.5 <= height <= 50.0):
        raise CliError(f"--size needs each side between 0.5 and 50 inches, got {value!r}")
    return (width, height)


def plot_style_options(bode: bool = False) -> list[click.Option]:
    """Figure options for slides: ``--title``, ``--size``; with ``bode``, ``--magnitude-only`` and ``--scale``."""
    options: list[click.Option] = [
        DependentOption(
            ["--title", "title"], default=None, metavar="TEXT", needs="plot", help="the figure's title ('' for none)."
        ),
        DependentOption(
            ["--size", "size"],
            default=None,
            metavar="WxH",
            callback=_parse_size,
            needs="plot",
            help="figure size in inches, e.g. 8x4.5 for a 16:9 slide.",
        ),
    ]
    if bode:
        options += [
            DependentOption(
                ["--magnitude-only", "magnitude_only"], is_flag=True, needs="plot", help="the magnitude panel only."
            ),
            DependentOption(
                ["--scale", "scale"],
                type=click.Choice(["db", "linear"]),
                default="db",
                show_default=True,
                needs="plot",
                help="magnitude in dB or as |H|.",
            ),
        ]
    return options


def headless_matplotlib() -> Any:
    """Import matplotlib with the Agg backend and silence its log and warnings on the command line.

    matplotlib logs through :mod:`logging` (``Matplotlib created a temporary cache
    directory ...`` when its config folder cannot be written, ``Matplotlib is building
    the font cache``): Python's last-resort handler would print them on stderr.  Its
    logger gets a null handler and stops propagating, and warnings raised from
    matplotlib's modules are ignored, so no matplotlib text reaches stderr.

    Returns
    -------
    module
        ``matplotlib``.
    """
    import logging

    logger = logging.getLogger("matplotlib")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    logger.propagate = False
    warnings.filterwarnings("ignore", module=r"matplotlib(\.|$)")
    import matplotlib

    matplotlib.use("Agg")
    return matplotlib


def save_plot(
    draw: Callable[[Any], Any], path: Path, title: str | None = None, size: tuple[float, float] | None = None
) -> Path:
    """Draw with ``draw(optfilters.plot)`` and save the figure to ``path`` (headless Agg backend).

    matplotlib is imported here only (:func:`headless_matplotlib`: no matplotlib text on stderr), so commands
    without ``--plot`` never load it.  ``draw`` returns the plot function's result (an object with ``.figure``);
    ``title`` replaces the title of its first panel, ``size`` (inches) the figure's size.
    """
    check_output_file(check_plot_suffix(path), "--plot")
    headless_matplotlib()
    from optfilters import plot as plotting

    result = draw(plotting)
    axes = getattr(result, "axes", None) or (result.figure.axes if hasattr(result, "figure") else [])
    if title is not None and axes:
        axes[0].set_title(title)
    if size is not None:
        result.figure.set_size_inches(*size)
    try:
        if hasattr(result, "savefig"):
            result.savefig(path)
        else:
            result.figure.savefig(path)
    except OSError as exc:
        raise CliError(f"cannot write the figure to {str(path)!r}: {exc.strerror or exc}") from None
    finally:
        import matplotlib.pyplot as plt

        plt.close(result.figure)
    return path


def record_plot(data: dict[str, Any], draw: Callable[[Any], Any], path: Path | None) -> None:
    """With ``--plot PATH``: draw and save the figure (:func:`save_plot`) and record ``data["plot"]``.

    Parameters
    ----------
    data : dict
        The command's JSON object; gains the key ``plot`` (the path written, a string).
    draw : callable
        ``draw(optfilters.plot)`` draws the figure and returns the plot's result.
    path : Path or None
        The ``--plot`` file; None (no ``--plot``) draws nothing.
    """
    if path is not None:
        data["plot"] = str(save_plot(draw, path))


# ----------------------------------------------------------------------------- hyperparameter options


class HyperparameterType(click.ParamType):
    """Command-line text to a number (range checks are left to the library, for its messages).

    Text that is not a number is passed on unchanged, so the library's error
    names the parameter: ``beta1 must be a number, got 'abc'``.  Lists of
    floats (``--a 1,-0.9``) are parsed by the library too.
    """

    def __init__(self, hp: Hyperparameter) -> None:
        self.hp = hp
        self.name = {"float": "float", "int": "integer", "floats": "numbers", "bool": "boolean", "str": "name"}[hp.kind]

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str) or self.hp.kind in ("floats", "bool", "str"):
            return value
        # Integers stay integers so that messages echo them as typed ("got -1", not "got -1.0"); text that is not
        # a number is left for the library's check, which names the parameter ("beta1 must be a number, got '1_0'").
        return number_or_text(value)


def option_name(name: str) -> str:
    """``weight_decay`` -> ``--weight-decay``.

    Examples
    --------
    >>> option_name("decoupled_weight_decay")
    '--decoupled-weight-decay'
    """
    return "--" + name.replace("_", "-")


def _default_text(hp: Hyperparameter) -> str:
    if hp.default is None:
        return "none"
    if hp.kind == "floats":
        return ",".join(fmt(v) for v in hp.default)
    if hp.kind == "bool":
        return str(bool(hp.default)).lower()
    if hp.kind == "str":
        return str(hp.default)
    return fmt(hp.default, 12)


def hyperparameter_option(hp: Hyperparameter) -> click.Option:
    """The click option of one catalogue hyperparameter (its help shows the range and default)."""
    flag = option_name(hp.name)
    text = hp.help or hp.name
    if hp.range_text():
        text += f"; range {hp.range_text()}"
    if hp.kind == "bool":
        return click.Option(
            [f"{flag}/--no-{flag[2:]}", hp.name],
            default=bool(hp.default),
            show_default=True,
            help=text,
        )
    metavar = {"float": "FLOAT", "int": "INT", "floats": "X,Y,...", "str": "NAME"}[hp.kind]
    if hp.required:  # not click-required: the library says "custom needs b (no default)"
        return click.Option(
            [flag, hp.name], type=HyperparameterType(hp), default=None, metavar=metavar, help=f"{text}  [required]"
        )
    return click.Option(
        [flag, hp.name],
        type=HyperparameterType(hp),
        default=_default_text(hp) if hp.kind == "floats" or hp.default is None else hp.default,
        show_default=True,
        metavar=metavar,
        help=text,
    )


def takes_betas(entry: CatalogueEntry) -> bool:
    """True when ``entry`` has ``beta1`` and ``beta2`` but no ``betas``: it accepts torch's ``betas`` tuple too.

    Examples
    --------
    >>> from optfilters import CATALOGUE
    >>> takes_betas(CATALOGUE["adam"]), takes_betas(CATALOGUE["aggmo"]), takes_betas(CATALOGUE["sgd"])
    (True, False, False)
    """
    names = {hp.name for hp in entry.hyperparameters}
    return {"beta1", "beta2"} <= names and "betas" not in names


def parse_betas(text: Any) -> Any:
    """``"0.9,0.999"`` -> ``(0.9, 0.999)`` (items that are not numbers are left for the library's message).

    Examples
    --------
    >>> parse_betas("0.9, 0.99"), parse_betas("(0.8,0.9,0.99)")
    ((0.9, 0.99), (0.8, 0.9, 0.99))
    """
    if not isinstance(text, str):
        return text
    items = [t.strip() for t in text.strip().strip("()[]").split(",")]
    if len(items) > 1 and not all(items):
        raise CliError(f"--betas has an empty item in {text!r} (give B1,B2 with no empty entries)")
    out: list[Any] = []
    for item in items:
        try:
            out.append(parse_decimal(item, "--betas", finite=False))
        except InvalidHyperparameterError:
            out.append(item)  # the library's check names it ("beta2 must be a number, got '9_9'")
    return tuple(out)


def betas_option(entry: CatalogueEntry) -> click.Option:
    """``--betas B1,B2[,B3]``: torch.optim's tuple, the same as ``--beta1 B1 --beta2 B2``."""
    names = [f"beta{k}" for k in range(1, 4) if any(hp.name == f"beta{k}" for hp in entry.hyperparameters)]
    return click.Option(
        ["--betas", "betas"],
        default=None,
        metavar=",".join(n.upper() for n in names),
        help=f"torch.optim's betas tuple ({', '.join(names)}); instead of {', '.join('--' + n for n in names)}.",
    )


def explicit_hyperparameters(ctx: click.Context, entry: CatalogueEntry) -> dict[str, Any]:
    """The hyperparameters given on the command line (defaults are the library's); ``--betas`` as a tuple."""
    given = {}
    for hp in entry.hyperparameters:
        source = ctx.get_parameter_source(hp.name)
        if source is not None and source not in (click.core.ParameterSource.DEFAULT,):
            given[hp.name] = ctx.params[hp.name]
    if takes_betas(entry) and ctx.params.get("betas") is not None:
        given["betas"] = parse_betas(ctx.params["betas"])
    return given


# ----------------------------------------------------------------------------- generated commands


@dataclass(frozen=True)
class Selection:
    """One optimizer chosen on the command line: its model and the hyperparameters given explicitly.

    Examples
    --------
    >>> import optfilters
    >>> Selection(optfilters.get("momentum", momentum=0.5), {"momentum": 0.5}).label
    'momentum(momentum=0.5)'
    """

    model: OptimizerModel
    overrides: Mapping[str, Any] = field(default_factory=dict)
    entry: CatalogueEntry | None = None

    @property
    def label(self) -> str:
        """The name, with the explicitly given hyperparameters in parentheses."""
        name = self.entry.name if self.entry is not None else self.model.name
        if not self.overrides:
            return name
        hps = self.model.hyperparameters
        values = ", ".join(f"{k}={_value_text(hps[k] if k in hps else v)}" for k, v in self.overrides.items())
        return f"{name}({values})"


def _value_text(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(fmt(v) for v in value)
    return fmt(value)


def check_repeated_options(command: click.Command, ctx: click.Context, args: Sequence[str]) -> None:
    """Refuse an option given twice to one command (click would silently keep its last value).

    Options declared ``multiple`` (``--set``, ``--only``) or counting may repeat.  ``--nesterov
    --no-nesterov`` counts as ``--nesterov/--no-nesterov`` given twice.  Arguments click itself cannot
    parse are left to its own message.

    Raises
    ------
    CliError
        ``--plot given twice: give it once (a repeated option keeps only its last value)``.

    Examples
    --------
    >>> from click.testing import CliRunner
    >>> cmd = OneLineCommand("run", params=[click.Option(["--points"], type=int)])
    >>> CliRunner().invoke(cmd, ["--points", "3", "--points", "4"]).stderr
    'Error: --points given twice: give it once (a repeated option keeps only its last value)\\n'
    """
    if ctx.resilient_parsing:
        return
    try:
        _, _, order = command.make_parser(ctx).parse_args(args=list(args))
    except click.UsageError:
        return
    seen: set[str] = set()
    for param in order:
        if not isinstance(param, click.Option) or param.multiple or param.count or param.name is None:
            continue
        if param.name in seen:
            flags = "/".join(o for o in (*param.opts, *param.secondary_opts) if o.startswith("--")) or param.name
            raise CliError(f"{flags} given twice: give it once (a repeated option keeps only its last value)")
        seen.add(param.name)


class _OneLineUsage(click.Command):
    """Usage errors (bad option values, unknown options or commands) as one line with exit code 2."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse as click does; a usage error (a missing argument too) becomes a one-line :class:`CliError`,
        and an option given twice is refused (:func:`check_repeated_options`)."""
        check_repeated_options(self, ctx, args)
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.NoArgsIsHelpError:
            raise _missing_argument(ctx) from None
        except click.UsageError as exc:
            raise _usage_to_one_line(exc) from None


class OneLineErrorGroup(_OneLineUsage, click.Group):
    """A plain click group whose own usage errors (unknown command, unknown option) are one line, exit code 2.

    For the top-level ``optfilters`` group: ``@click.group(cls=OneLineErrorGroup, ...)``.

    Examples
    --------
    >>> from click.testing import CliRunner
    >>> group = OneLineErrorGroup("top")
    >>> group.add_command(click.Command("response", callback=lambda: None))
    >>> result = CliRunner().invoke(group, ["respons"])
    >>> result.exit_code, result.stderr
    (2, "Error: No such command 'respons'. Did you mean 'response'?\\n")
    """

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            raise _usage_to_one_line(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand under :func:`command_line_numerics` (no warning text, no overflow traceback)."""
        with command_line_numerics():
            return super().invoke(ctx)


class OneLineCommand(_OneLineUsage):
    """A plain command whose usage errors (bad option values, unknown options) are one line, exit code 2.

    Examples
    --------
    >>> from click.testing import CliRunner
    >>> cmd = OneLineCommand("serve", params=[click.Option(["--port"], type=IntegerRange(0, 10))])
    >>> result = CliRunner().invoke(cmd, ["--port", "99"])
    >>> result.exit_code, result.stderr
    (2, "Error: Invalid value for '--port': 99 is not in the range 0<=x<=10.\\n")
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            check_dependent_options(ctx)
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _usage_to_one_line(exc) from None


class OptimizerCommand(click.Command):
    """A generated per-optimizer subcommand; usage errors become one line with exit code 2."""

    def __init__(self, entry: CatalogueEntry, extra_names: Sequence[str], **attrs: Any) -> None:
        super().__init__(entry.name, **attrs)
        self.entry = entry
        self.extra_names = tuple(extra_names)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        check_repeated_options(self, ctx, args)
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            raise CliError(self._no_such_option(exc)) from None
        except click.exceptions.NoArgsIsHelpError:
            raise _missing_argument(ctx) from None
        except click.UsageError as exc:
            raise _usage_to_one_line(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; options that need another are checked here, except in a chain (checked when
        the chain's options are merged: ``compare a --plot f.png b --title T``)."""
        if not (ctx.parent is not None and isinstance(ctx.parent.command, OptimizerChain)):
            check_dependent_options(ctx)
        return super().invoke(ctx)

    def _no_such_option(self, exc: click.NoSuchOption) -> str:
        hps = [option_name(hp.name) for hp in self.entry.hyperparameters]
        candidates = [*hps, *self.extra_names]
        import difflib

        close = difflib.get_close_matches(exc.option_name, candidates, n=2)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        return (
            f"{self.entry.name} takes no option {exc.option_name}{hint} "
            f"(its hyperparameters: {', '.join(hps)}; other options: {', '.join(self.extra_names) or 'none'})"
        )


def _extra_flags(options: Sequence[click.Parameter]) -> list[str]:
    flags = []
    for opt in options:
        for decl in getattr(opt, "opts", []):
            if decl.startswith("--"):
                flags.append(decl)
        flags.extend(d for d in getattr(opt, "secondary_opts", []) if d.startswith("--"))
    return flags


def _build_command(
    entry: CatalogueEntry,
    options: Sequence[click.Parameter],
    callback: Callable[..., Any],
    command_name: str,
) -> OptimizerCommand:
    params: list[click.Parameter] = [hyperparameter_option(hp) for hp in entry.hyperparameters]
    hp_names = {hp.name for hp in entry.hyperparameters}
    if takes_betas(entry):
        params.append(betas_option(entry))
        hp_names.add("betas")
    for opt in options:
        if opt.name in hp_names:
            raise RuntimeError(f"{command_name}: option {opt.name!r} clashes with a hyperparameter of {entry.name}")
        params.append(copy.copy(opt))
    aliases = f" Aliases: {', '.join(entry.aliases)}." if entry.aliases else ""
    torch = f" torch: {entry.torch_class}." if entry.torch_class else ""
    source = f"Source: {entry.source}." if entry.source else ""
    help_text = f"{entry.summary}.\n\n{source}{torch}{aliases}".rstrip()
    return OptimizerCommand(
        entry,
        _extra_flags(options),
        params=params,
        callback=callback,
        help=help_text,
        short_help=entry.summary,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    )


class OptimizerGroup(_OneLineUsage, click.Group):
    """A group whose subcommands are the catalogue optimizers, generated on demand.

    Names resolve case-insensitively with aliases (``NAG`` -> ``nesterov``); an
    unknown name is a one-line error with suggestions and exit code 2.
    """

    def __init__(self, name: str, make_command: Callable[[CatalogueEntry], click.Command], **attrs: Any) -> None:
        attrs.setdefault("subcommand_metavar", "NAME [HYPERPARAMETERS] [OPTIONS]")
        attrs.setdefault("context_settings", {"help_option_names": ["-h", "--help"], "max_content_width": 100})
        super().__init__(name, **attrs)
        self._make_command = make_command
        #: Commands built, by name, with what they were built from: the catalogue entry itself (an entry registered
        #: again under the same name is a new command) or a model file's path, size and modification time.
        self._built: dict[str, tuple[Any, click.Command]] = {}
        #: The command's own options, shown in ``--help`` (they follow NAME and its hyperparameters).
        self.shared_options: Sequence[click.Parameter] = ()

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """``--help``: the group's options, the command's own options (after NAME), then the optimizers."""
        click.Command.format_options(self, ctx, formatter)
        records = [r for r in (opt.get_help_record(ctx) for opt in self.shared_options) if r is not None]
        if records:
            with formatter.section(
                "Options after NAME [HYPERPARAMETERS] (each NAME's --help adds its hyperparameters)"
            ):
                formatter.write_dl(records)
        self.format_commands(ctx, formatter)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return optfilters.names()

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if is_file_reference(cmd_name):
            source: Any = _file_state(cmd_name)
            built = self._built.get(cmd_name)
            if built is None or source is None or built[0] != source:
                with one_line_errors():
                    built = self._built[cmd_name] = (source, self._make_command(load_entry(cmd_name)))
            return built[1]
        try:
            canonical = optfilters.resolve_name(cmd_name)
        except ValueError:
            return None
        entry = CATALOGUE[canonical]
        built = self._built.get(canonical)
        if built is None or built[0] is not entry:
            built = self._built[canonical] = (entry, self._make_command(entry))
        return built[1]

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0]
        if name.startswith("-"):
            return super().resolve_command(ctx, args)
        if is_file_reference(name):
            return name, self.get_command(ctx, name), args[1:]
        try:
            canonical = optfilters.resolve_name(name)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        return canonical, self.get_command(ctx, canonical), args[1:]


def _file_state(reference: str) -> tuple[str, int, int] | None:
    """A model file's resolved path, size and modification time (None when it cannot be read: load it to say why).

    ``models/mine.py:slow`` names another file after a change of directory, and the same file after an edit.
    """
    path = Path(reference.split(".py:", 1)[0] + ".py").expanduser()
    try:
        stat = path.stat()
    except OSError:
        return None
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


def optimizer_group(
    name: str,
    action: Callable[..., Any],
    options: Sequence[click.Parameter] = (),
    help: str | None = None,
    short_help: str | None = None,
) -> OptimizerGroup:
    """A command ``NAME OPTIMIZER [HYPERPARAMETERS] [OPTIONS]`` with one subcommand per catalogue entry.

    Parameters
    ----------
    name : str
        The command's name (``"response"``).
    action : callable
        ``action(selection, **options)``: called with a :class:`Selection` (the
        validated model and the hyperparameters given explicitly) and the
        values of ``options`` by parameter name.  Library ``ValueError``\\ s
        raised inside become one-line exit-2 errors.
    options : sequence of click.Option
        The command's own options (``--json``, ``--points``, ...), added to
        every subcommand after the hyperparameters.
    help, short_help : str, optional
        Help text of the group.

    Returns
    -------
    OptimizerGroup

    Examples
    --------
    >>> from click.testing import CliRunner
    >>> def show(selection, as_json):
    ...     print(selection.label, round(selection.model.filters()["gradient"].dc_gain, 6))
    >>> cmd = optimizer_group("dc", show, options=[json_option()])
    >>> print(CliRunner().invoke(cmd, ["nag", "--momentum", "0.5"]).output.strip())
    nesterov(momentum=0.5) 2.0
    """

    def make_command(entry: CatalogueEntry) -> click.Command:
        def callback(**kwargs: Any) -> Any:
            ctx = click.get_current_context()
            overrides = explicit_hyperparameters(ctx, entry)
            extras = {k: v for k, v in kwargs.items() if k not in {"betas", *(hp.name for hp in entry.hyperparameters)}}
            with one_line_errors():
                model = entry.build(entry.validate(overrides))
                check_model_options(ctx, model)
                return action(Selection(model, overrides, entry), **extras)

        return _build_command(entry, options, callback, name)

    group = OptimizerGroup(name, make_command, help=help, short_help=short_help)
    group.shared_options = tuple(options)
    return group


class OptimizerChain(OptimizerGroup):
    """:class:`OptimizerGroup` in chain mode: ``NAME [HPS] NAME [HPS] ...`` (several optimizers)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError:  # "Missing command.": options but no optimizer name
            raise CliError(
                f"name at least one optimizer after {ctx.command_path} (see {ctx.command_path} --help)"
            ) from None


def _parse_setting(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise CliError(f"--set needs KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    key = key.strip().lstrip("-").replace("-", "_")
    if not key.isidentifier():
        raise CliError(f"--set needs KEY=VALUE with a hyperparameter name as KEY, got {text!r}")
    return key, value.strip()


def optimizer_chain(
    name: str,
    action: Callable[..., Any],
    options: Sequence[click.Parameter] = (),
    help: str | None = None,
    short_help: str | None = None,
) -> OptimizerChain:
    """A command taking several optimizers, each with its own hyperparameters: ``NAME [HPS] NAME [HPS] ...``.

    The command's ``options`` may be given before the first name or after any
    optimizer (``compare momentum nesterov --json``); giving one twice with
    different values is an error.  ``--set KEY=VALUE`` (repeatable, before the
    first name) sets a hyperparameter on every optimizer that takes it; an
    optimizer's own option wins.

    Parameters
    ----------
    name : str
        The command's name (``"compare"``).
    action : callable
        ``action(selections, **options)`` with the list of :class:`Selection`
        in command-line order.
    options : sequence of click.Option
        The command's own options.
    help, short_help : str, optional
        Help text.

    Returns
    -------
    OptimizerChain

    Examples
    --------
    >>> from click.testing import CliRunner
    >>> def show(selections, as_json):
    ...     print([s.label for s in selections], as_json)
    >>> cmd = optimizer_chain("labels", show, options=[json_option()])
    >>> print(CliRunner().invoke(cmd, ["--set", "momentum=0.5", "momentum", "nesterov", "--json"]).output.strip())
    ['momentum(momentum=0.5)', 'nesterov(momentum=0.5)'] True
    """
    option_names = [opt.name for opt in options if opt.name]
    flags = {opt.name: (_extra_flags([opt]) or [str(opt.name)])[0] for opt in options if opt.name}

    def make_command(entry: CatalogueEntry) -> click.Command:
        def callback(**kwargs: Any) -> Any:
            ctx = click.get_current_context()
            overrides = explicit_hyperparameters(ctx, entry)
            settings = ctx.find_root().meta.setdefault(f"optfilters.{name}.settings", {})
            takes = {hp.name for hp in entry.hyperparameters} | ({"betas"} if takes_betas(entry) else set())
            shared = {k: v for k, v in settings.items() if k in takes}
            for key in shared:
                settings[key]["used"] = True
            conversions = {hp.name: HyperparameterType(hp).convert for hp in entry.hyperparameters}
            merged = {
                k: parse_betas(v["value"]) if k == "betas" else conversions[k](v["value"], None, None)
                for k, v in shared.items()
            }
            if "betas" in merged:  # --set betas=B1,B2: as --set beta1=B1 --set beta2=B2 (each may be overridden)
                names = [hp.name for hp in entry.hyperparameters if re.fullmatch(r"beta[123]", hp.name)]
                betas = merged.pop("betas")
                if len(betas) == len(names):
                    merged.update(zip(names, betas, strict=True))
                else:
                    merged["betas"] = betas  # the library's message on the wrong length
            if "betas" in overrides:  # an optimizer's own --betas wins over --set
                merged = {k: v for k, v in merged.items() if not re.fullmatch(r"beta[123]", k)}
            merged.update(overrides)
            explicit_extras = {
                k: kwargs[k]
                for k in option_names
                if ctx.get_parameter_source(k) not in (None, click.core.ParameterSource.DEFAULT)
            }
            with one_line_errors():
                model = entry.build(entry.validate(merged))
            return Selection(model, merged, entry), explicit_extras, overrides

        return _build_command(entry, options, callback, name)

    group_options = [copy.copy(opt) for opt in options]
    group_options.append(
        click.Option(
            ["--set", "settings"],
            multiple=True,
            metavar="KEY=VALUE",
            help="Set a hyperparameter on every optimizer that takes it (repeatable); an optimizer's own option wins.",
        )
    )

    def group_callback(**kwargs: Any) -> None:
        ctx = click.get_current_context()
        settings: dict[str, dict[str, Any]] = {}
        for text in kwargs.get("settings", ()):
            key, value = _parse_setting(text)
            if key in settings:  # the last would silently win
                raise CliError(f"--set {key} given twice ({settings[key]['text']!r} and {text!r})")
            settings[key] = {"value": value, "used": False, "text": text}
        ctx.find_root().meta[f"optfilters.{name}.settings"] = settings

    group = OptimizerChain(
        name,
        make_command,
        subcommand_metavar="NAME [HYPERPARAMETERS] [NAME [HYPERPARAMETERS]]... [OPTIONS]",
        chain=True,
        params=group_options,
        callback=group_callback,
        help=help,
        short_help=short_help,
    )

    @group.result_callback()
    def finish(results: list[tuple[Selection, dict[str, Any], dict[str, Any]]], **group_values: Any) -> Any:
        ctx = click.get_current_context()
        _note_option_scope(results)
        settings = ctx.find_root().meta.get(f"optfilters.{name}.settings", {})
        unused = [v["text"] for v in settings.values() if not v["used"]]
        if unused:
            raise CliError(f"no optimizer in the list takes --set {unused[0]}")
        values = {k: group_values[k] for k in option_names}
        given: dict[str, Any] = {
            k: group_values[k]
            for k in option_names
            if ctx.get_parameter_source(k) not in (None, click.core.ParameterSource.DEFAULT)
        }
        for _, extras, _ in results:
            for key, value in extras.items():
                if key in given and given[key] != value:
                    flag = flags[key]
                    raise CliError(f"{flag} given twice with different values ({given[key]!r} and {value!r})")
                given[key] = value
        values.update(given)
        for opt in options:
            if not isinstance(opt, DependentOption) or opt.name not in given:
                continue
            if opt.needs is not None and all(given.get(n) is None or given.get(n) is False for n in _names(opt.needs)):
                raise _needs_error(opt.name, opt.needs, options)
            for other in opt.excludes:
                if given.get(other) is not None and given.get(other) is not False:
                    raise _excludes_error(opt.name, other, options)
        with one_line_errors():
            return action([selection for selection, _, _ in results], **values)

    return group


def _note_option_scope(results: Sequence[tuple[Selection, Any, Mapping[str, Any]]]) -> None:
    """A note on stderr when options after the last NAME could be read as meant for every optimizer.

    ``compare momentum nesterov --momentum 0.5`` sets nesterov's momentum only
    (hyperparameter options belong to the NAME they follow); momentum keeps
    its default.  Said once, with the way to set it on all of them.
    """
    if len(results) < 2:
        return
    last, _, explicit = results[-1]
    for key, value in explicit.items():
        others = [
            s.label
            for s, _, given in results[:-1]
            if key not in given and key in {hp.name for hp in (s.entry.hyperparameters if s.entry else ())}
        ]
        if others:
            kept = "; ".join(
                f"{s.label} keeps {key}={_value_text(s.model.hyperparameters.get(key))}"
                for s, _, _ in results[:-1]
                if s.label in others
            )
            name = last.entry.name if last.entry is not None else last.model.name
            click.echo(
                f"note: {option_name(key)} {_value_text(value)} sets {name}'s {key} only (an option belongs to the "
                f"NAME before it); {kept}. For every optimizer: --set {key}={_value_text(value)} "
                "before the first NAME.",
                err=True,
            )
