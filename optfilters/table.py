"""The generated summary-of-optimizers table and the filter classifier behind it."""

from ._table import CORRECTIONS, SummaryTable, classify_filter, classify_stage, summary_table

__all__ = ["CORRECTIONS", "SummaryTable", "classify_filter", "classify_stage", "summary_table"]
