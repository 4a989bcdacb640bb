"""The extreme-value sweep's shared grid: values, the catalogue triples, sampling and the per-case time bound.

Used by the CLI half (tests/cli/test_main.py) and the library half (tests/optfilters/test_validation.py)
of the sweep, so the two halves sample the same triples the same way.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import optfilters

#: Seconds one case may take: a hang fails here instead of blocking CI.  The cases once run only in the full sweep
#: (a sign optimizer's relay steady state continued for 3 / lr steps; AdEMAMix's and ADOPT's 1e5-step settling in
#: large-signal: 30-80 s on a loaded 2-core machine) take well under a second of compute since
#: bench/bench_slow_paths.py's fixes, and run in the default sample like every other case.
CASE_SECONDS = 90


FULL = os.environ.get("OPTFILTERS_FULL_SWEEP") == "1"


#: Extreme values of every class: zero, negative, not a number, infinite, the largest double, the smallest
#: subnormal, huge integers, just below one (betas near 1), text.
FLOAT_VALUES = ["0", "-1", "nan", "inf", "-inf", "1e308", "5e-324", "1000000000", "0.9999999999999999", "abc"]


INT_VALUES = ["0", "-1", "nan", "inf", "1e308", "1000000000", "100000", "2.5", "abc"]


LIST_VALUES = ["1e308,0.5", "nan,0.5", "0,0", "-1,2", "abc", "1e308"]


class CaseTimeout(Exception):
    """A case ran past :data:`CASE_SECONDS`."""


@contextmanager
def time_bound(seconds: int = CASE_SECONDS) -> Iterator[None]:
    """Raise :class:`CaseTimeout` in the main thread after ``seconds`` (SIGALRM; the suite runs on Linux)."""

    def expire(signum: int, frame: Any) -> None:
        raise CaseTimeout(f"ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def triples() -> list[tuple[str, str, str]]:
    out = []
    for name in optfilters.names():
        entry = optfilters.CATALOGUE[name]
        for hp in entry.hyperparameters:
            if hp.kind in ("bool", "str"):
                continue
            values = {"int": INT_VALUES, "floats": LIST_VALUES}.get(hp.kind, FLOAT_VALUES)
            out += [(name, hp.name, value) for value in values]
    return out


TRIPLES = triples()


#: Sampling (the default run): triple ``i`` goes to the CLI when ``i % STRIDE == 0`` and to the library when
#: ``i % STRIDE == STRIDE // 2``, through command/function number ``i // STRIDE`` round-robin; with about ten
#: values per hyperparameter and STRIDE coprime to 6, 9 and 10 (the value counts), every value class meets
#: every command over the entries.
STRIDE = 7


def chosen(i: int, offset: int, choices: list[Any]) -> list[Any]:
    if FULL:
        return choices
    return [choices[(i // STRIDE) % len(choices)]] if i % STRIDE == offset else []
