"""``optfilters identify``: measure the gradient filter inside any optimizer class.

``optfilters identify torch.optim.SGD --momentum 0.9 --nesterov --json``: the
first argument is an importable dotted path or ``path/to/file.py:Class``; every
other ``--key value`` or ``--flag`` goes to the optimizer's constructor.  Importing this module does not
import torch: only running the command does.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Any

import click

from optfilters.validation import check_distinct

from ._common import CliError, FiniteFloatRange, OneLineCommand, echo_json, one_line_errors

# ASCII digits only (re's \d also matches other scripts' digits, which int() and float() read)
_NUMBER = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$|^[+-]?(inf|nan)$", re.IGNORECASE)
_INT = re.compile(r"^[+-]?[0-9]+$")


def parse_value(text: str) -> Any:
    """A command-line value as Python: bool, None, int, float, tuple (``0.9,0.999``) or str.

    Examples
    --------
    >>> parse_value("0.9,0.999"), parse_value("true"), parse_value("3"), parse_value("1e-3")
    ((0.9, 0.999), True, 3, 0.001)
    >>> parse_value("(0.9, 0.99)"), parse_value("none"), parse_value("adam")
    ((0.9, 0.99), None, 'adam')
    """
    s = text.strip()
    low = s.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    if len(s) >= 2 and s[0] + s[-1] in ("()", "[]"):
        inner = s[1:-1].strip()
        return tuple(parse_value(p) for p in inner.split(",") if p.strip()) if inner else ()
    if "," in s:
        return tuple(parse_value(p) for p in s.split(",") if p.strip())
    if _INT.match(s):
        return int(s)
    if _NUMBER.match(s):
        return float(s)
    try:
        float(s)  # Python reads '1_0' as 10 and other scripts' digits: not numbers here, and not names either
    except ValueError:
        return s
    raise CliError(f"{s!r} is not a number (digits, '.', an exponent; no '_') nor a name")


def _is_option(token: str) -> bool:
    return token.startswith("-") and not _NUMBER.match(token)


def _option_value(key: str, raw: str) -> Any:
    try:
        return parse_value(raw)
    except CliError as exc:
        raise CliError(f"--{key}: {exc}") from None


def parse_constructor_options(tokens: Sequence[str]) -> dict[str, Any]:
    """``--key value``, ``--key=value``, ``--flag`` (True) and ``--no-flag`` (False) as keywords.

    Dashes in names become underscores.

    Examples
    --------
    >>> parse_constructor_options(["--momentum", "0.9", "--nesterov", "--weight-decay=-0.0"])
    {'momentum': 0.9, 'nesterov': True, 'weight_decay': -0.0}
    >>> parse_constructor_options(["--betas", "0.9,0.999", "--no-amsgrad"])
    {'betas': (0.9, 0.999), 'amsgrad': False}
    """
    options: dict[str, Any] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--") or token == "--":
            raise CliError(f"unexpected argument {token!r}: constructor options are --name VALUE or --flag")
        body = token[2:]
        if "=" in body:
            key, raw = body.split("=", 1)
            value = _option_value(key, raw)
            i += 1
        elif i + 1 < len(tokens) and not _is_option(tokens[i + 1]):
            key, value = body, _option_value(body, tokens[i + 1])
            i += 2
        elif body.startswith("no-"):
            key, value = body[3:], False
            i += 1
        else:
            key, value = body, True
            i += 1
        name = key.replace("-", "_")
        if not name.isidentifier():
            raise CliError(f"option {token!r} is not a valid keyword name")
        if name in options:
            raise CliError(f"option --{key} given twice")
        options[name] = value
    return options


def register(group: click.Group) -> None:
    """Add the ``identify`` command to ``group``."""

    @group.command(
        "identify",
        cls=OneLineCommand,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    @click.argument("path")
    @click.option("--json", "as_json", is_flag=True, help="Print the identification as one JSON object.")
    @click.option("--compare", metavar="NAME", default=None, help="Compare with this catalogue model (same keywords).")
    @click.option("--steps", default="128", metavar="N", show_default=True, help="Length of each probe.")
    @click.option("--seed", default="0", metavar="N", show_default=True, help="Seed of the white-noise probes.")
    @click.option("--max-order", default="6", metavar="N", show_default=True, help="Largest ARMA order tried.")
    @click.option(
        "--max-background",
        default="16384",
        metavar="N",
        show_default=True,
        help="Longest constant-gradient background of the small-signal measurement.",
    )
    @click.option(
        "--map",
        "raw_map",
        multiple=True,
        metavar="KEY=NAME[,NAME]",
        help="With --compare: map a constructor keyword onto catalogue hyperparameter(s) (repeatable).",
    )
    @click.option(
        "--layout",
        type=click.Choice(["auto", "scalar", "matrix", "sparse"]),
        default="auto",
        show_default=True,
        help="1-element parameter, 4x8 matrix or sparse gradients (auto: the first the optimizer accepts).",
    )
    @click.option(
        "--dither/--no-dither",
        default=True,
        show_default=True,
        help="Measure nonlinear optimizers' best linear approximation under a Gaussian dither.",
    )
    @click.option(
        "--progress/--no-progress",
        "show_progress",
        default=None,
        help="Report the probes' progress on stderr (default: when stderr is a terminal).",
    )
    @click.option(
        "--time-limit",
        type=FiniteFloatRange(),
        default=600.0,
        metavar="SECONDS",
        show_default=True,
        help="Stop probing after this long, even inside a step() that does not return (an error, exit 2).",
    )
    @click.option(
        "--option",
        "-o",
        "raw_options",
        multiple=True,
        metavar="KEY=VALUE",
        help="A constructor keyword whose name clashes with the options above (repeatable).",
    )
    @click.pass_context
    def identify_command(
        ctx: click.Context,
        path: str,
        as_json: bool,
        compare: str | None,
        steps: str,
        seed: str,
        max_order: str,
        max_background: str,
        raw_map: tuple[str, ...],
        layout: str,
        dither: bool,
        show_progress: bool | None,
        time_limit: float,
        raw_options: tuple[str, ...],
    ) -> None:
        """Probe the optimizer class at PATH and measure its gradient filter.

        PATH is an importable dotted path (torch.optim.SGD, mypackage.MyOptimizer), a file and a
        class (path/to/file.py:MyOptimizer), or a model of your own file, path/to/file.py:NAME
        (probed through its reference executor); --compare takes a catalogue name or
        path/to/file.py:NAME.  Every other --key VALUE / --flag / --no-flag is passed to its
        constructor: numbers, true/false, none and tuples (--betas 0.9,0.999) are parsed.  The
        identification is printed whatever the comparison says.

        \b
        Examples:
          optfilters identify torch.optim.SGD --momentum 0.9 --nesterov
          optfilters identify torch.optim.Adam --betas 0.8,0.99 --json
          optfilters identify torch.optim.Muon
          optfilters identify my_optim.py:Signum --compare lion --map momentum=beta1,beta2
        """
        from optfilters.identify import foreign_code

        with one_line_errors(), foreign_code():  # the optimizer's module is imported and run in here only
            if path.startswith("-"):
                raise CliError(f"give the optimizer's dotted path first, got {path!r}")
            if not time_limit > 0:
                raise CliError(f"--time-limit must be > 0 seconds, got {time_limit:g}")
            options = parse_constructor_options(ctx.args)
            for item in raw_options:
                if "=" not in item:
                    raise CliError(f"--option needs KEY=VALUE, got {item!r}")
                key, raw = item.split("=", 1)
                parsed = parse_constructor_options([f"--{key.strip()}={raw}"])
                repeated = sorted(set(parsed) & set(options))
                if repeated:  # the last would silently win
                    raise CliError(f"constructor keyword {repeated[0]!r} given twice (--option {item!r})")
                options.update(parsed)
            mapping = _parse_map(raw_map)
            if mapping and not compare:
                raise CliError("--map needs --compare NAME")
            lr = options.pop("lr", None)
            from optfilters.identify import identify
            from optfilters.user_models import is_file_reference, load_entry

            if compare and not is_file_reference(compare):
                from optfilters.identify import map_keywords

                map_keywords(compare, {}, mapping=mapping)  # an unknown name or mapping: an error before probing

            target: Any = path
            entry = _model_entry(path)
            if entry is not None:  # a model of the user's file, probed through its reference executor
                target = entry.build(entry.validate({}))
                if options:
                    raise CliError(f"{path} is probed with its own hyperparameters; constructor options do not apply")
            reference: Any = compare
            if compare is not None and is_file_reference(compare):
                entry = load_entry(compare)
                reference = entry.build(entry.validate({}))

            if show_progress is None:
                show_progress = sys.stderr.isatty()
            bar = _Progress() if show_progress else None
            ident = identify(
                target,
                options=options,
                lr=lr,
                steps=_integer("--steps", steps),
                seed=_integer("--seed", seed),
                max_order=_integer("--max-order", max_order),
                max_background=_integer("--max-background", max_background),
                layout=layout,
                dither=1.0 if dither else None,
                progress=bar,
                time_limit=time_limit,
            )
            if bar is not None:
                bar.close()
        comparison = None
        failure = None
        if compare:
            try:
                comparison = ident.compare(reference, mapping=mapping or None)
            except ValueError as exc:  # the identification stands; say why there is no comparison
                failure = f"comparison with catalogue {compare!r} not possible: {str(exc).splitlines()[0]}"
        if as_json:
            data = ident.as_dict()
            if comparison is not None:
                data["comparison"] = comparison.as_dict()
            elif failure is not None:
                data["comparison"] = {"error": failure}
            echo_json(data)
            return
        click.echo(ident.summary())
        if comparison is not None:
            click.echo("")
            click.echo(comparison.summary())
        elif failure is not None:
            click.echo("")
            click.echo(failure)


def _model_entry(path: str) -> Any:
    """The entry of ``file.py:NAME`` naming a model, entry, filter or model factory, else None (a class).

    The file is loaded here once: its import-time code runs (and prints) once.
    """
    from optfilters.user_models import is_file_reference, load_entry

    if not is_file_reference(path):
        return None
    try:
        return load_entry(path)
    except ValueError:  # an optimizer class (probed as a class) or a bad reference (identify says why)
        return None


def _parse_map(items: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """``KEY=NAME[,NAME]`` items as a keyword mapping.

    Examples
    --------
    >>> _parse_map(["momentum=beta1,beta2", "wd=weight_decay"])
    {'momentum': ('beta1', 'beta2'), 'wd': ('weight_decay',)}
    """
    out: dict[str, tuple[str, ...]] = {}
    for item in items:
        key, sep, names = item.partition("=")
        targets = tuple(n.strip() for n in names.split(",") if n.strip())
        with one_line_errors():
            check_distinct(targets, "--map")
        if not sep or not key.strip().isidentifier() or not targets or not all(t.isidentifier() for t in targets):
            raise CliError(f"--map needs KEY=NAME[,NAME], got {item!r}")
        name = key.strip().replace("-", "_")
        if name in out:  # the last would silently win
            raise CliError(f"--map maps {key.strip()!r} twice, got {item!r}")
        out[name] = targets
    return out


class _Progress:
    """The probes' progress on stderr: rewritten in place on a terminal, else a line when a phase starts and ends."""

    def __init__(self) -> None:
        self.phase: str | None = None
        self.tty = sys.stderr.isatty()

    def __call__(self, phase: str, done: int, total: int) -> None:
        line = f"identify: {phase} {done}/{total}"
        if self.tty:
            prefix = "\n" if self.phase not in (None, phase) else "\r"
            click.echo(prefix + line, nl=False, err=True)
        elif phase != self.phase or done >= total:
            click.echo(line, err=True)
        self.phase = phase

    def close(self) -> None:
        if self.tty and self.phase is not None:
            click.echo("", err=True)
        self.phase = None


def _integer(name: str, text: str) -> int:
    value = parse_value(text)
    if isinstance(value, bool) or not isinstance(value, int):
        raise CliError(f"{name} must be an integer, got {text!r}")
    return value
