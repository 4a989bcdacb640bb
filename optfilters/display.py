"""Rich display in Jupyter: filters and models typeset, result objects as small tables.

Jupyter shows an object through its ``_repr_html_`` (and ``_repr_latex_``)
method; the classes of :mod:`optfilters` delegate theirs to the functions
here.  The HTML is self-contained (no scripts, no external styles) and
well-formed XML; the LaTeX is display math for MathJax.

Examples
--------
>>> from optfilters import ArmaFilter
>>> from optfilters.display import transfer_function_latex
>>> transfer_function_latex(ArmaFilter([0.1], [1.0, -0.9]))
'H(z) = \\\\frac{0.1}{1 - 0.9 z^{-1}}'
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "Plottable",
    "RichDisplay",
    "filter_html",
    "filter_latex",
    "model_html",
    "model_latex",
    "number",
    "polynomial_latex",
    "result_html",
    "transfer_function_html",
    "transfer_function_latex",
]

#: Largest number of array entries shown in a result table before it is shortened.
MAX_ITEMS = 8

_STYLE = "border-collapse:collapse;font-size:90%"
_CELL = "padding:2px 8px;text-align:left;border-bottom:1px solid #ddd"


def number(value: Any, digits: int = 6) -> str:
    """A number for display: ``digits`` significant digits, no ``-0``, ``inf``/``nan`` spelled out.

    Parameters
    ----------
    value : float, int, complex or bool
        The number (a complex one with a negligible imaginary part, below
        ``1e-12`` of its scale, is shown as real).
    digits : int
        Significant digits (``format(x, ".{digits}g")``).

    Returns
    -------
    str
        E.g. ``"0.3"``, ``"-inf"``, ``"1+2j"``, ``"True"``.

    Examples
    --------
    >>> number(0.1 + 0.2), number(-0.0), number(float("inf")), number(2.0)
    ('0.3', '0', 'inf', '2')
    """
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (complex, np.complexfloating)):
        z = complex(value)
        scale = max(abs(z.real), abs(z.imag), 1.0)
        if abs(z.imag) <= 1e-12 * scale:
            return number(z.real, digits)
        sign = "-" if z.imag < 0 else "+"
        return f"{number(z.real, digits)}{sign}{number(abs(z.imag), digits)}j"
    x = float(value)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    text = f"{x:.{digits}g}"
    return "0" if text in ("-0", "0") else text


def _latex_number(value: float) -> str:
    text = number(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        return rf"{mantissa} \times 10^{{{int(exponent)}}}"
    return text


def _signed_sum(coefficients: Sequence[float], term: Callable[[int, float], str], minus: str) -> str:
    """``c0 + c1 x + ...`` with zero terms left out and signs folded in (``"0"`` when all are 0).

    ``term(k, |c_k|)`` writes the ``k``-th term without its sign; ``minus`` is
    the minus sign of the markup (a leading one is attached, the others spaced).
    """
    terms: list[str] = []
    for k, c in enumerate(np.asarray(coefficients, dtype=np.float64)):
        if c == 0.0:
            continue
        body = term(k, abs(float(c)))
        sign = minus if c < 0 else "+"
        terms.append(body if not terms and sign == "+" else (f"{minus}{body}" if not terms else f"{sign} {body}"))
    return " ".join(terms) if terms else "0"


def polynomial_latex(coefficients: Sequence[float], variable: str = "z^{-1}") -> str:
    """``c0 + c1 z^{-1} + ...`` in LaTeX (zero terms left out, signs folded in).

    Parameters
    ----------
    coefficients : sequence of float
        ``c0, c1, ...``: the coefficient of ``variable^k`` at index ``k``.
    variable : str
        LaTeX of the first power; its ``{-1}`` becomes ``{-k}`` for the ``k``-th.

    Returns
    -------
    str
        LaTeX without math delimiters (``"0"`` when every coefficient is 0).

    Examples
    --------
    >>> polynomial_latex([1.0, -0.9]), polynomial_latex([0.0, 2.0]), polynomial_latex([0.0])
    ('1 - 0.9 z^{-1}', '2 z^{-1}', '0')
    """

    def term(k: int, magnitude: float) -> str:
        if k == 0:
            return _latex_number(magnitude)
        power = variable if k == 1 else variable.replace("{-1}", f"{{-{k}}}")
        return power if magnitude == 1.0 else f"{_latex_number(magnitude)} {power}"

    return _signed_sum(coefficients, term, "-")


def transfer_function_latex(f: Any, name: str = "H") -> str:
    """``H(z) = B(z^-1) / A(z^-1)`` of an :class:`~optfilters.ArmaFilter` in LaTeX (no math delimiters).

    Parameters
    ----------
    f : ArmaFilter
        The filter (its ``b`` and ``a`` coefficients in powers of ``z^-1``).
    name : str
        Symbol of the transfer function.

    Returns
    -------
    str
        ``name(z) = \\frac{B}{A}``, or ``name(z) = B`` for an FIR filter.

    Examples
    --------
    >>> from optfilters import ArmaFilter
    >>> print(transfer_function_latex(ArmaFilter.ema(0.9)))
    H(z) = \\frac{0.1}{1 - 0.9 z^{-1}}
    """
    numerator = polynomial_latex(f.b)
    if f.a.size == 1:
        return f"{name}(z) = {numerator}"
    return rf"{name}(z) = \frac{{{numerator}}}{{{polynomial_latex(f.a)}}}"


def _polynomial_html(coefficients: Sequence[float]) -> str:
    def term(k: int, magnitude: float) -> str:
        power = "" if k == 0 else ("z<sup>&#8722;1</sup>" if k == 1 else f"z<sup>&#8722;{k}</sup>")
        coefficient = number(magnitude) if k == 0 or magnitude != 1.0 else ""
        return f"{coefficient}&#8201;{power}" if coefficient and power else (coefficient or power)

    return _signed_sum(coefficients, term, "&#8722;")


def transfer_function_html(f: Any, name: str = "H") -> str:
    """``H(z)`` as an HTML fraction (an inline table): numerator over denominator in powers of z^-1.

    Parameters
    ----------
    f : ArmaFilter
        The filter.
    name : str
        Symbol of the transfer function (HTML-escaped).

    Returns
    -------
    str
        An HTML ``<span>`` (just the numerator for an FIR filter).

    Examples
    --------
    >>> from optfilters import ArmaFilter
    >>> transfer_function_html(ArmaFilter([1.0, 0.5]))
    '<span>H(z) = 1 + 0.5&#8201;z<sup>&#8722;1</sup></span>'
    """
    numerator = _polynomial_html(f.b)
    if f.a.size == 1:
        return f"<span>{html.escape(name)}(z) = {numerator}</span>"
    fraction = (
        '<span style="display:inline-table;vertical-align:middle;text-align:center">'
        f'<span style="display:table-row"><span style="display:table-cell;padding:0 4px">{numerator}</span></span>'
        '<span style="display:table-row"><span style="display:table-cell;padding:0 4px;border-top:1px solid">'
        f"{_polynomial_html(f.a)}</span></span></span>"
    )
    return f"<span>{html.escape(name)}(z) = {fraction}</span>"


def _table(rows: Sequence[Sequence[str]], header: Sequence[str] | None = None) -> str:
    out = [f'<table style="{_STYLE}">']
    if header:
        out.append("<tr>" + "".join(f'<th style="{_CELL}">{h}</th>' for h in header) + "</tr>")
    for row in rows:
        out.append("<tr>" + "".join(f'<td style="{_CELL}">{cell}</td>' for cell in row) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _roots_text(roots: Any) -> str:
    values = np.asarray(roots).ravel()
    return ", ".join(number(r) for r in values) if values.size else "none"


def filter_html(f: Any) -> str:
    """An :class:`~optfilters.ArmaFilter`: H(z), poles, zeros, gains and stability as HTML.

    Parameters
    ----------
    f : ArmaFilter
        The filter.

    Returns
    -------
    str
        A ``<div>`` with the filter's name and a table: ``H(z)``, ``b``,
        ``a``, poles, zeros, DC and Nyquist gains, stability.

    Examples
    --------
    >>> from optfilters import ArmaFilter
    >>> html = filter_html(ArmaFilter.ema(0.9))
    >>> html.startswith("<div><strong>ema(0.9)</strong><table"), "stable" in html
    (True, True)
    """
    title = html.escape(f.name or "ArmaFilter")
    rows = [
        ["H(z)", transfer_function_html(f)],
        ["b (powers of z<sup>&#8722;1</sup>)", html.escape(", ".join(number(v) for v in f.b))],
        ["a", html.escape(", ".join(number(v) for v in f.a))],
        ["poles", html.escape(_roots_text(f.poles))],
        ["zeros", html.escape(_roots_text(f.zeros))],
        ["DC gain, Nyquist gain", f"{number(f.dc_gain)}, {number(f.nyquist_gain)}"],
        ["stability", html.escape(f.stability)],
    ]
    return f"<div><strong>{title}</strong>{_table(rows)}</div>"


def filter_latex(f: Any) -> str:
    """An :class:`~optfilters.ArmaFilter` as display math: ``$$H(z) = ...$$``.

    Parameters
    ----------
    f : ArmaFilter
        The filter.

    Returns
    -------
    str
        :func:`transfer_function_latex` between ``$$`` delimiters.

    Examples
    --------
    >>> from optfilters import ArmaFilter
    >>> filter_latex(ArmaFilter([1.0, 0.5]))
    '$$H(z) = 1 + 0.5 z^{-1}$$'
    """
    return f"$${transfer_function_latex(f)}$$"


def _stage_filter(model: Any, role: str) -> Any:
    """The LTI filter shown for a stage role (its t -> inf limit), or None."""
    filters = model.filters()
    if role == "gradient":
        return filters.get("gradient")
    if role == "post":
        return filters.get("post")
    if role == "normaliser":
        return filters.get("second_moment")
    return None


def model_html(model: Any) -> str:
    """An :class:`~optfilters.OptimizerModel`: hyperparameters, then its stages as a small table.

    Each stage row has the role, the stage's own description and, for a linear
    stage, its transfer function (the t -> inf limit when time-varying; the
    normaliser row shows the filter of its second moment).

    Parameters
    ----------
    model : OptimizerModel
        The optimizer model.

    Returns
    -------
    str
        A ``<div>``: the name and hyperparameters, whether the model is
        linear and time-invariant, and a stage / description / transfer
        function table (a constant learning rate is left out).

    Examples
    --------
    >>> import optfilters
    >>> html = model_html(optfilters.get("adam"))
    >>> html.count("<tr>") - 1, "normaliser" in html   # two stages: gradient filter and normaliser
    (2, True)
    """
    hps = ", ".join(f"{html.escape(str(k))}={html.escape(_value(v))}" for k, v in model.hyperparameters.items())
    facts = (
        f"linear: {'yes' if model.is_linear else 'no'}; "
        f"time-invariant: {'yes' if model.is_time_invariant else 'no (filters shown in their t → ∞ limit)'}"
    )
    rows = []
    for role, stage in model.stages:
        if role == "learning_rate" and getattr(stage, "is_constant", False):
            continue
        f = _stage_filter(model, role)
        rows.append(
            [
                html.escape(role.replace("_", " ")),
                html.escape(stage.describe()),
                transfer_function_html(f, "H") if f is not None else "",
            ]
        )
    if not rows:
        rows.append(["(none)", "the update is the gradient", transfer_function_html(model.filters()["gradient"])])
    return (
        f"<div><strong>{html.escape(model.name)}</strong>: {hps}<br/>{html.escape(facts)}"
        f"{_table(rows, ['stage', 'description', 'transfer function'])}</div>"
    )


def model_latex(model: Any) -> str:
    """An :class:`~optfilters.OptimizerModel`'s linear stages as display math, one line per stage.

    Parameters
    ----------
    model : OptimizerModel
        The optimizer model (its :meth:`~optfilters.OptimizerModel.filters`).

    Returns
    -------
    str
        An ``aligned`` environment between ``$$`` delimiters, one
        ``H_{role}(z)`` per filter.

    Examples
    --------
    >>> import optfilters
    >>> print(model_latex(optfilters.get("momentum", momentum=0.5)))
    $$\\begin{aligned}H_{\\mathrm{gradient}}(z) &= \\frac{1}{1 - 0.5 z^{-1}}\\end{aligned}$$
    """
    lines = []
    for name, f in model.filters().items():
        label = name.replace("_", r"\_")
        lines.append(transfer_function_latex(f, rf"H_{{\mathrm{{{label}}}}}"))
    return r"$$\begin{aligned}" + r" \\ ".join(line.replace(" = ", " &= ", 1) for line in lines) + r"\end{aligned}$$"


def _value(value: Any) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(np.asarray(value, dtype=object).ravel()) if not isinstance(value, (list, tuple)) else list(value)
        return "(" + ", ".join(_value(v) for v in items) + ")"
    if isinstance(value, (float, np.floating, complex, np.complexfloating)):
        return number(value)
    return str(value)


def _cell(value: Any) -> str:
    """One value of ``as_dict()``: numbers, short lists, shortened long arrays, nested mappings."""
    if value is None:
        return "n/a"
    if isinstance(value, Mapping):
        return _table([[html.escape(str(k)), _cell(v)] for k, v in value.items()])
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
        if items and all(isinstance(v, (list, tuple)) and len(v) == 2 for v in items):  # complex pairs [re, im]
            items = [complex(v[0], v[1]) if None not in v else None for v in items]
        if len(items) <= MAX_ITEMS:
            return html.escape(", ".join(_value(v) if v is not None else "n/a" for v in items) or "none")
        finite = [float(v) for v in items if isinstance(v, (int, float)) and math.isfinite(float(v))]
        span = f"; min {number(min(finite))}, max {number(max(finite))}" if finite else ""
        head = ", ".join(_value(v) if v is not None else "n/a" for v in items[:4])
        return html.escape(f"{len(items)} values: {head}, ...{span}")
    return html.escape(_value(value))


def result_html(obj: Any) -> str:
    """A result object (anything with ``as_dict()``) as an HTML table of its fields; long arrays are shortened.

    Parameters
    ----------
    obj : object
        Anything with ``as_dict()``; one with ``b`` and ``a`` also gets its
        transfer function.

    Returns
    -------
    str
        A ``<div>``: the class name, the ``name`` field, and one row per other
        field (lists longer than :data:`MAX_ITEMS` as their count, first four
        values, min and max; None as ``n/a``).

    Examples
    --------
    >>> from optfilters import ArmaFilter, pole_zero
    >>> result_html(pole_zero(ArmaFilter.ema(0.5))).startswith("<div><strong>PoleZeroMap</strong>")
    True
    """
    data = obj.as_dict()
    title = type(obj).__name__
    name = data.get("name") if isinstance(data, Mapping) else None
    rows = [[html.escape(str(k)), _cell(v)] for k, v in data.items() if k != "name"]
    extra = ""
    if hasattr(obj, "b") and hasattr(obj, "a"):
        from .filters import ArmaFilter

        extra = transfer_function_html(ArmaFilter(obj.b, obj.a))
    label = f" {html.escape(str(name))}" if name else ""
    return f"<div><strong>{title}</strong>{label}<br/>{extra}{_table(rows)}</div>"


class RichDisplay:
    """Mixin: ``_repr_html_`` from ``as_dict()`` (:func:`result_html`), for result objects.

    Examples
    --------
    >>> from optfilters import ArmaFilter, summarise
    >>> "<table" in summarise(ArmaFilter.ema(0.9))._repr_html_()
    True
    """

    __slots__ = ()

    def _repr_html_(self) -> str:
        return result_html(self)


class Plottable:
    """Mixin: ``.plot()`` for result objects, drawn by the :mod:`optfilters.plot` function the class names.

    A result class sets ``_plot_function`` to the name of a ``<what>_plot``
    function of :mod:`optfilters.plot`; ``result.plot(ax, **kwargs)`` is
    ``optfilters.plot.<what>_plot(result, ax=ax, **kwargs)``.  matplotlib is
    imported when a result is drawn, not when this module is.

    Examples
    --------
    >>> from optfilters import ArmaFilter, frequency_response
    >>> response = frequency_response(ArmaFilter.ema(0.9), n=16)
    >>> type(response)._plot_function
    'bode_plot'
    >>> r = response.plot()
    >>> sorted(r.artists)
    ['magnitude', 'phase']
    >>> r.close()
    """

    __slots__ = ()

    #: Name of the :mod:`optfilters.plot` function that draws this result (``"bode_plot"``, ...).
    _plot_function: ClassVar[str]

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Draw this result with the :mod:`optfilters.plot` function its class names (``_plot_function``).

        Parameters
        ----------
        ax : matplotlib.axes.Axes or sequence of Axes, optional
            Where to draw, as that function takes it (None: a new figure).
        **kwargs
            Passed on to that function (labels, styles, ``title``, ...: see
            its documentation in :mod:`optfilters.plot`).

        Returns
        -------
        optfilters.plot.PlotResult
            What was drawn: the figure, axes, artists by role and the numbers.
        """
        from . import plot

        draw: Callable[..., Any] = getattr(plot, self._plot_function)
        return draw(self, ax=ax, **kwargs)
