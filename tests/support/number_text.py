"""Numeric text for the parsers' properties (issue 13): a strategy of texts near the decimal grammar, and the
value the strict grammar gives, computed independently of the parsers (with :class:`decimal.Decimal`)."""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation

from hypothesis import strategies as st

#: Characters of numbers and of the texts Python's ``float()`` also reads (``_``, ``inf``, ``nan``, other
#: scripts' digits ``\u0661``, white space) or that are close (``x``, ``,``); no ``:`` (a schedule's separator).
NEAR_NUMBER_TEXT = st.one_of(
    st.text(alphabet="0123456789+-.eE_ xXabfinNIF\t\u0661\u2003", max_size=12),
    st.from_regex(r"\A[ ]?[+-]?[0-9_]{0,4}(\.[0-9]{0,3})?([eE][+-]?[0-9]{1,4})?[ ]?\Z", fullmatch=True),
    st.sampled_from(
        [
            "1_0",
            "+1",
            " 1",
            "0x10",
            "1e",
            "nan",
            "-inf",
            "inf",
            "Infinity",
            "-0",
            "5e-324",
            "1e-320",
            "1e400",
            "2.2250738585072014e-308",
            "1e308",
            ".5",
            "5.",
            "\u0661\u0662",
            "1 0",
            "++1",
            "1e+5",
            "-.5e-3",
        ]
    ),
)


def strict_decimal(text: str) -> float | None:
    """The double nearest to ``text`` read by the strict decimal grammar; None where the grammar refuses it.

    The grammar's numbers are those :class:`decimal.Decimal` reads, less what it also reads but the grammar does
    not: underscores, non-ASCII digits, ``nan`` and ``inf``; and a number must be within the double range.
    """
    stripped = text.strip()
    if not stripped.isascii() or "_" in stripped:
        return None
    try:
        exact = Decimal(stripped)
    except InvalidOperation:
        return None
    if not exact.is_finite():
        return None
    value = float(exact)  # correctly rounded
    return None if math.isinf(value) else value + 0.0
