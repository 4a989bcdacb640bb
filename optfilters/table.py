"""The generated summary-of-optimizers table and the filter classifier behind it."""

from ._table import COLUMNS, CORRECTIONS, SummaryTable, classify_filter, classify_stage, summary_table, table_row

__all__ = ["COLUMNS", "CORRECTIONS", "SummaryTable", "classify_filter", "classify_stage", "summary_table", "table_row"]
