"""The "summary of optimizers" table, generated from the catalogue models.

It generalises the table of the EE 541 Unit 7B lecture (gradient filtering /
gradient normalisation / variance filter / learning-rate schedule) and
corrects it; the corrections are listed in :data:`CORRECTIONS`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .catalogue import CATALOGUE, get
from .errors import InvalidHyperparameterError
from .model import OptimizerModel
from .stages import classify_filter, classify_stage

__all__ = [
    "COLUMNS",
    "CORRECTIONS",
    "SummaryTable",
    "classify_filter",
    "classify_stage",
    "summary_table",
    "table_row",
]

COLUMNS = (
    "optimizer",
    "gradient filtering",
    "gradient normalisation",
    "variance filter",
    "post-filter",
    "learning-rate schedule",
    "weight decay",
    "parameter side",
)

#: Where the lecture's table (and slides) are wrong, and what the models say instead.
CORRECTIONS = (
    "The slides write the AR1 filters as (1 - a)/(1 + a z^-1) and 1/(1 + a z^-1); the recursion "
    "y[n] = a y[n-1] + ... gives 1 - a z^-1 in the denominator (pole at z = +a).",
    "Nesterov (torch / Bengio form) has its zero at z = mu/(1 + mu), not (1 + mu)/mu (that is the root in z^-1): "
    "H = ((1 + mu) - mu z^-1)/(1 - mu z^-1).",
    "Adam's gradient and variance filters are unit-DC-gain AR1 filters (1 - beta)/(1 - beta z^-1) with transient "
    "compensation, not unit-input-gain ones as the table says (its own Adam slide says unit DC gain).",
    "NAdam's variance filter is Adam's (AR1, unit DC gain, compensated), not ARMA(1,1); its gradient filter is "
    "ARMA(1,1) with a time-varying numerator (torch's momentum schedule mu_t), tending to "
    "(1 - beta1)((1 + beta1) - beta1 z^-1)/(1 - beta1 z^-1).",
    "torch's SGD momentum is unit input gain only with dampening 0; with dampening d it is (1 - d)/(1 - mu z^-1) "
    "and the buffer starts at the first gradient (not (1 - d) times it), a first-step transient.",
    "RMSprop and Adadelta do not compensate the transient: their second moment starts at 0, so early steps are "
    "larger than the steady state.",
    "Adadelta's numerator is a second AR1 (unit DC gain) filter, on the squared updates; the table omits it.",
)


def _cells(model: OptimizerModel) -> dict[str, list[str]]:
    """Every stage's cells, by column (several stages may fill one column)."""
    cells: dict[str, list[str]] = {column: [] for column in COLUMNS[1:]}
    for stage in model.pipeline:
        for column, text in stage.table_cells().items():
            cells.setdefault(column, []).append(text)
    return cells


def _schedule(model: OptimizerModel, cells: dict[str, list[str]]) -> str:
    text = "; ".join(cells["learning-rate schedule"]) or "separate"
    if not model.is_linear:
        text += ", but the normalisation alters the effective step"
    return text


def _weight_decay(model: OptimizerModel, cells: dict[str, list[str]]) -> str:
    entry = CATALOGUE.get(model.name)
    names = {hp.name for hp in entry.hyperparameters} if entry else set()
    if cells["weight decay"]:
        return "; ".join(cells["weight decay"])
    if "weight_decay" not in names:
        return "n/a"
    if (entry is not None and entry.decoupled_weight_decay) or model.hyperparameters.get("decoupled_weight_decay"):
        return "decoupled"
    return "coupled (L2 into g)"


def table_row(model: OptimizerModel) -> tuple[str, ...]:
    """One model's row of the summary table: each stage fills its own cells.

    Parameters
    ----------
    model : OptimizerModel
        Any model (catalogue entry, composition, stage kinds of your own).

    Returns
    -------
    tuple of str
        One cell per column of :data:`COLUMNS`.

    Examples
    --------
    >>> import optfilters
    >>> from optfilters.table import table_row
    >>> table_row(optfilters.get("adam"))[2]
    'divide by sqrt(v) + eps'
    """
    cells = _cells(model)
    gradient = cells["gradient filtering"] or [classify_stage(model.gradient_stage)]
    return (
        model.name,
        "; ".join(gradient),
        "; ".join(cells["gradient normalisation"]) or "none",
        "; ".join(cells["variance filter"]) or "n/a",
        "; ".join(cells["post-filter"]) or "none",
        _schedule(model, cells),
        _weight_decay(model, cells),
        "; ".join(cells["parameter side"]) or "none",
    )


@dataclass(frozen=True)
class SummaryTable:
    """Rows of the generated summary table, with the corrections to the lecture's table.

    Attributes
    ----------
    columns : tuple of str
        :data:`COLUMNS`.
    rows : tuple of tuple of str
        One row per optimizer, one cell per column.
    corrections : tuple of str
        Where the lecture's table is wrong (:data:`CORRECTIONS`).

    Examples
    --------
    >>> from optfilters import summary_table
    >>> table = summary_table(["sgd", "momentum"])
    >>> table.rows[1][1]
    'AR1, unit input gain (pole 0.9)'
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    corrections: tuple[str, ...] = CORRECTIONS

    def to_markdown(self, notes: bool = True) -> str:
        """A GitHub-flavoured Markdown table, followed by the corrections as a list.

        Parameters
        ----------
        notes : bool, optional
            Append the corrections to the lecture's table as a list.

        Returns
        -------
        str
            The Markdown text.
        """
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in self.rows]
        if notes:
            lines += ["", "Corrections to the lecture's table (EE 541 Unit 7B):", ""]
            lines += [f"{i}. {text}" for i, text in enumerate(self.corrections, start=1)]
        return "\n".join(lines)

    def to_latex(self, notes: bool = True) -> str:
        """A LaTeX ``tabular`` (booktabs rules; special characters escaped), then the corrections as a list.

        Parameters
        ----------
        notes : bool, optional
            Append the corrections to the lecture's table as an ``enumerate`` list.

        Returns
        -------
        str
            The LaTeX source.

        Examples
        --------
        >>> from optfilters import summary_table
        >>> print(summary_table(["sgd"]).to_latex(notes=False).splitlines()[0])
        \\begin{tabular}{llllllll}
        """
        escape = str.maketrans({c: "\\" + c for c in "&%$#_{}"} | {"~": r"\textasciitilde{}", "^": r"\^{}"})
        lines = [r"\begin{tabular}{" + "l" * len(self.columns) + "}", r"\toprule"]
        lines.append(" & ".join(c.translate(escape) for c in self.columns) + r" \\")
        lines.append(r"\midrule")
        lines += [" & ".join(cell.translate(escape) for cell in row) + r" \\" for row in self.rows]
        lines += [r"\bottomrule", r"\end{tabular}"]
        if notes:
            lines += ["", r"\begin{enumerate}"]
            lines += [r"  \item " + text.translate(escape) for text in self.corrections]
            lines.append(r"\end{enumerate}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """Jupyter: the table as HTML (cells escaped), without the corrections."""
        import html

        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in self.rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    def to_csv(self) -> str:
        """Comma-separated values (RFC 4180 quoting), one header row; no corrections.

        Returns
        -------
        str
            The CSV text, one line per row.

        Examples
        --------
        >>> from optfilters import summary_table
        >>> print(summary_table(["sgd"]).to_csv().splitlines()[1])
        sgd,none,none,n/a,none,separate,coupled (L2 into g),none
        """
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return buffer.getvalue()

    def as_dict(self) -> dict[str, Any]:
        """Plain data: columns, rows (lists of cells) and corrections.

        Returns
        -------
        dict
            ``columns`` (list of str), ``rows`` (lists of cells) and ``corrections``.
        """
        return {
            "columns": list(self.columns),
            "rows": [list(r) for r in self.rows],
            "corrections": list(self.corrections),
        }


def summary_table(names: Iterable[str | tuple[str, OptimizerModel]] | None = None) -> SummaryTable:
    """Generate the summary-of-optimizers table from the catalogue models (default settings).

    Parameters
    ----------
    names : iterable of str or (label, OptimizerModel), optional
        Catalogue names (default settings), or rows given as a label and a
        model (``("adam(beta1=0.95)", optfilters.get("adam", beta1=0.95))``);
        default: every entry that builds with its defaults.

    Returns
    -------
    SummaryTable

    Examples
    --------
    >>> from optfilters import summary_table
    >>> row = summary_table(["adagrad"]).rows[0]
    >>> row[3]
    'summer (integrator, marginal pole at 1)'
    """
    rows = []
    for item in names if names is not None else CATALOGUE:
        if isinstance(item, tuple):
            label, model = item
        else:
            try:
                model = get(item)
            except InvalidHyperparameterError:
                continue  # entries with required hyperparameters (custom)
            label = model.name
        rows.append((label, *table_row(model)[1:]))
    return SummaryTable(COLUMNS, tuple(rows))
