"""Time issue 13's long and stale ``predict`` runs against their step-by-step reference paths, in the same run.

* ``lti-momentum``: ``predict momentum --lr 0.1`` over many steps.  A
  time-invariant linear loop at a constant learning rate runs in blocks
  (:func:`optfilters.noisy_quadratic._lti_series`: the block's read-outs
  ``W A^j`` once, a few array operations per block).  Reference:
  ``_LTI_BLOCK = 0``, one Python-level step of the mean/covariance recursion
  per step (the code before the fix: 77 s for 1e6 steps).
* ``stale-momentum``: the same with ``--staleness 256`` (state of size 258).
* ``stale-adam``: ``predict adam --staleness 256`` (time-varying, step by
  step): the delay line's rows of the step matrix are a shift, applied by
  indexing (:meth:`optfilters.noisy_quadratic._Loop.congruence`, ``O(k n^2)``).
  Reference: the dense ``A C A^T`` (``O(n^3)`` per step).

Each case reports wall-clock and process (CPU) seconds, the CPU ratio (the
machine may be shared: CPU seconds are the steadier measure) and the largest
relative difference of the expected loss between the two paths.

Usage::

    python bench/bench_long_predict.py                      # every case
    python bench/bench_long_predict.py --cases lti-momentum --steps 1000000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

import optfilters.noisy_quadratic as nq


@contextmanager
def _reference(case: str) -> Iterator[None]:
    """The code path before the fix for ``case``."""
    if case == "stale-adam":
        original = nq._Loop.congruence

        def dense(self: Any, a: Any, cov: Any) -> Any:
            return a @ cov @ np.swapaxes(a, 1, 2)

        nq._Loop.congruence = dense  # type: ignore[method-assign]
        try:
            yield
        finally:
            nq._Loop.congruence = original  # type: ignore[method-assign]
        return
    saved = nq._LTI_BLOCK
    nq._LTI_BLOCK = 0
    try:
        yield
    finally:
        nq._LTI_BLOCK = saved


def _cases(steps: int) -> dict[str, Callable[[], Any]]:
    return {
        "lti-momentum": lambda: nq.predict("momentum", lr=0.1, noise_var=1.0, steps=steps).expected_loss,
        "stale-momentum": lambda: (
            nq.predict("momentum", lr=0.01, noise_var=1.0, staleness=256, steps=max(steps // 50, 2)).expected_loss
        ),
        "stale-adam": lambda: nq.predict("adam", lr=0.001, noise_var=1.0, staleness=256, steps=300).expected_loss,
    }


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=None, help="comma-separated case names (default: all)")
    parser.add_argument("--steps", type=int, default=100_000, help="steps of the long run (default 1e5)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    cases = _cases(args.steps)
    chosen = list(cases) if args.cases is None else [c.strip() for c in args.cases.split(",")]
    rows = []
    for name in chosen:
        fast, wall_fast, cpu_fast = _timed(cases[name])
        with _reference(name):
            slow, wall_slow, cpu_slow = _timed(cases[name])
        finite = np.isfinite(slow) & (slow != 0)
        diff = float(np.max(np.abs(fast[finite] - slow[finite]) / np.abs(slow[finite]))) if finite.any() else 0.0
        rows.append(
            {
                "case": name,
                "fast_wall_s": wall_fast,
                "fast_cpu_s": cpu_fast,
                "reference_wall_s": wall_slow,
                "reference_cpu_s": cpu_slow,
                "cpu_ratio": cpu_slow / max(cpu_fast, 1e-9),
                "max_relative_difference": diff,
            }
        )
        print(
            f"{name:15s} fast {wall_fast:7.2f} s wall {cpu_fast:7.2f} s cpu | reference {wall_slow:7.2f} s wall "
            f"{cpu_slow:7.2f} s cpu | x{cpu_slow / max(cpu_fast, 1e-9):.1f} | max rel diff {diff:.2e}"
        )
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"machine": platform.platform(), "steps": args.steps, "results": rows}, out, indent=2)


if __name__ == "__main__":
    main()
