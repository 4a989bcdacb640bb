"""The "summary of optimizers" table, generated from the catalogue models.

It generalises the table of the EE 541 Unit 7B lecture (gradient filtering /
gradient normalisation / variance filter / learning-rate schedule) and
corrects it; the corrections are listed in :data:`CORRECTIONS`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ._catalogue import CATALOGUE, get
from ._errors import InvalidHyperparameterError
from ._filter import ArmaFilter
from ._model import OptimizerModel
from ._stages import AdadeltaNormaliser, LinearStage, PeakNormaliser, RmsNormaliser

__all__ = ["CORRECTIONS", "SummaryTable", "classify_filter", "classify_stage", "summary_table"]

COLUMNS = (
    "optimizer",
    "gradient filtering",
    "gradient normalisation",
    "variance filter",
    "post-filter",
    "learning-rate schedule",
    "weight decay",
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


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def classify_filter(f: ArmaFilter) -> str:
    """A short name for a filter's structure: identity, AR1 unit input/DC gain, summer, ARMA(p,q).

    Examples
    --------
    >>> from optfilters import ArmaFilter
    >>> from optfilters.table import classify_filter
    >>> classify_filter(ArmaFilter([1.0], [1.0, -0.9]))
    'AR1, unit input gain (pole 0.9)'
    >>> classify_filter(ArmaFilter.ema(0.9))
    'AR1, unit DC gain (pole 0.9)'
    """
    b, a = f.b, f.a
    if a.size == 1:
        if b.size == 1:
            return "none" if b[0] == 1.0 else f"gain {_fmt(b[0])}"
        return f"FIR({b.size - 1})"
    if a.size == 2 and b.size == 1:
        pole = float(-a[1])
        if pole == 1.0:
            return "summer (integrator, marginal pole at 1)"
        if abs(b[0] - 1.0) < 1e-12:
            return f"AR1, unit input gain (pole {_fmt(pole)})"
        if abs(b[0] - (1.0 - pole)) < 1e-12:
            return f"AR1, unit DC gain (pole {_fmt(pole)})"
        return f"AR1, gain {_fmt(b[0])} (pole {_fmt(pole)})"
    zeros = f.zeros[abs(f.zeros) > 1e-12]
    poles = f.poles[abs(f.poles) > 1e-12]
    if f.order == 1:
        return f"ARMA(1,1) (pole {_fmt(float(poles[0].real))}, zero {_fmt(float(zeros[0].real))})"
    return f"ARMA({poles.size},{zeros.size}), DC gain {_fmt(f.dc_gain)}"


def classify_stage(stage: LinearStage) -> str:
    """Describe a (possibly time-varying) linear stage: its limit's structure plus compensation notes.

    Examples
    --------
    >>> import optfilters
    >>> from optfilters.table import classify_stage
    >>> classify_stage(optfilters.get("adam").gradient)
    'AR1, unit DC gain (pole 0.9), transient compensation'
    """
    text = classify_filter(stage.limit())
    if len(stage.terms) > 1 and not all(t.filter.is_fir for t in stage.terms[1:]):
        text += f" [sum of {len(stage.terms)} terms]"
    notes = []
    if stage.compensated:
        notes.append("transient compensation")
    if any(not t.gain.is_constant for t in stage.terms):
        notes.append("time-varying coefficients (t->inf limit shown)")
    if any(t.first_output_is_input for t in stage.terms):
        notes.append("starts at the first gradient")
    if any(t.initial_output for t in stage.terms):
        notes.append("non-zero initial state")
    return ", ".join([text, *notes])


def _normalisation(model: OptimizerModel) -> str:
    norm = model.normaliser
    parts = []
    if isinstance(norm, RmsNormaliser):
        text = {
            "after_root": "divide by sqrt(v) + eps",
            "inside_root": "divide by sqrt(v + eps)",
            "before_correction": "divide by (sqrt(v) + eps)/sqrt(1 - beta2^t)",
        }[norm.eps_placement]
        if norm.amsgrad:
            text += ", running max of v (AMSGrad)"
        if norm.center is not None:
            text += ", centered (v - mean^2)"
        if norm.rectification is not None:
            text += ", rectified (none while rho_t <= 5)"
        parts.append(text)
    elif isinstance(norm, PeakNormaliser):
        parts.append("divide by peak envelope max(beta2 u, |g| + eps)")
    elif isinstance(norm, AdadeltaNormaliser):
        parts.append("multiply by sqrt(u + eps)/sqrt(v + eps)")
    if model.nonlinearity is not None:
        parts.append("sign()")
    return "; ".join(parts) or "none"


def _variance(model: OptimizerModel) -> str:
    norm = model.normaliser
    if isinstance(norm, RmsNormaliser):
        return classify_stage(norm.second_moment)
    if isinstance(norm, PeakNormaliser):
        return f"peak envelope (max-plus, decay {_fmt(norm.beta2)})"
    if isinstance(norm, AdadeltaNormaliser):
        ema = classify_filter(ArmaFilter.ema(norm.rho))
        return f"{ema} on g^2 and on the squared updates"
    return "n/a"


def _schedule(model: OptimizerModel) -> str:
    text = "separate"
    if not model.lr_gain.is_constant:
        text = f"built in: lr * {model.lr_gain.describe()}"
    if model.normaliser is not None or model.nonlinearity is not None:
        text += ", but the normalisation alters the effective step"
    return text


def _weight_decay(model: OptimizerModel) -> str:
    entry = CATALOGUE.get(model.name)
    names = {hp.name for hp in entry.hyperparameters} if entry else set()
    if model.weight_decay is not None:
        return "decoupled" if model.weight_decay.decoupled else "coupled (L2 into g)"
    if "weight_decay" not in names:
        return "n/a"
    if model.name in ("lion", "ademamix", "adamw") or model.hyperparameters.get("decoupled_weight_decay"):
        return "decoupled"
    return "coupled (L2 into g)"


@dataclass(frozen=True)
class SummaryTable:
    """Rows of the generated summary table, with the corrections to the lecture's table.

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
        """A GitHub-flavoured Markdown table, followed by the corrections as a list."""
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in self.rows]
        if notes:
            lines += ["", "Corrections to the lecture's table (EE 541 Unit 7B):", ""]
            lines += [f"{i}. {text}" for i, text in enumerate(self.corrections, start=1)]
        return "\n".join(lines)

    def to_latex(self, notes: bool = True) -> str:
        """A LaTeX ``tabular`` (booktabs rules; special characters escaped), then the corrections as a list.

        Examples
        --------
        >>> from optfilters import summary_table
        >>> print(summary_table(["sgd"]).to_latex(notes=False).splitlines()[0])
        \\begin{tabular}{lllllll}
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

        Examples
        --------
        >>> from optfilters import summary_table
        >>> print(summary_table(["sgd"]).to_csv().splitlines()[1])
        sgd,none,none,n/a,none,separate,coupled (L2 into g)
        """
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return buffer.getvalue()

    def as_dict(self) -> dict[str, Any]:
        """Plain data: columns, rows (lists of cells) and corrections."""
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
        post = classify_stage(model.post) if model.post is not None else "none"
        rows.append(
            (
                label,
                classify_stage(model.gradient_stage),
                _normalisation(model),
                _variance(model),
                post,
                _schedule(model),
                _weight_decay(model),
            )
        )
    return SummaryTable(COLUMNS, tuple(rows))
