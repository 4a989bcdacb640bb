"""Time issue 13's slow analyses against their step-by-step reference paths, in the same run.

* ``predict`` of the sign optimizers (Lion, Cautious Lion, Signum) at their
  defaults: the relay loop's steady state is the long-run average of the
  mean/covariance recursion, continued for ``3 / lr`` steps (30 000 at Lion's
  ``lr = 1e-4``).  Fast: the step's matrices are built once and the
  continuation runs on floats (:func:`optfilters.noisy_quadratic._relay_run`).
  Reference: ``_RELAY_CACHE = False``, the step matrices rebuilt from the
  program at every step (the code before the fix).
* ``large-signal`` of AdEMAMix, scheduled AdEMAMix and ADOPT: their slow EMAs
  (``0.9999``) settle in 138 000 steps, run two or three times.  Fast: the
  open-loop recursion over the whole time axis (:mod:`optfilters.open_loop`).
  Reference: ``open_loop.MIN_BLOCK`` raised past every run, i.e. the
  step-by-step executor (``OptimizerModel.simulate``, the code before the fix).

Each case reports wall-clock and process (CPU) seconds, whose ratio is the
speed-up (the machine may be shared: CPU seconds are the steadier measure), and
the largest relative difference between the two results (whole loss or update
sequences, steady states, peaks).

Usage::

    python bench/bench_slow_paths.py                  # every case, the reference once
    python bench/bench_slow_paths.py --cases predict-lion,large-adopt --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import optfilters.large_signal as large_signal
import optfilters.noisy_quadratic as noisy_quadratic
import optfilters.open_loop as open_loop


def _predict(name: str) -> Callable[[], dict[str, Any]]:
    def run() -> dict[str, Any]:
        p = noisy_quadratic.predict(name, steps=100)
        return {"loss": p.expected_loss, "steady": p.steady_state_loss, "rate": p.rate}

    return run


def _large(name: str, **options: Any) -> Callable[[], dict[str, Any]]:
    def run() -> dict[str, Any]:
        large_signal._STEADY.clear()  # the steady-state cache would skip the reference's work
        if "burst" in options:
            r = large_signal.burst_response(name, 10.0, options["burst"], before=options.get("before"))
        else:
            r = large_signal.step_response(name, 10.0, before=options.get("before"))
        return {"updates": r.updates, "steady": r.steady, "after": r.steady_after, "peak": r.peak_ratio}

    return run


CASES: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
    "predict-lion": ("predict", _predict("lion")),
    "predict-lion-cautious": ("predict", _predict("lion-cautious")),
    "predict-signum": ("predict", _predict("signum")),
    "large-ademamix": ("large", _large("ademamix")),
    "large-ademamix-scheduled": ("large", _large("ademamix-scheduled")),
    "large-adopt": ("large", _large("adopt")),
    "large-adopt-burst16": ("large", _large("adopt", before=16, burst=16)),
}


def _reference(kind: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    if kind == "predict":
        noisy_quadratic._RELAY_CACHE = False
        try:
            return run()
        finally:
            noisy_quadratic._RELAY_CACHE = True
    saved = open_loop.MIN_BLOCK
    open_loop.MIN_BLOCK = 1 << 62
    try:
        return run()
    finally:
        open_loop.MIN_BLOCK = saved


def _timed(fn: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _difference(a: dict[str, Any], b: dict[str, Any]) -> float:
    worst = 0.0
    for key in a:
        x, y = np.asarray(a[key], dtype=np.float64), np.asarray(b[key], dtype=np.float64)
        scale = np.maximum(np.abs(x), np.abs(y))
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.where(x == y, 0.0, np.abs(x - y) / np.where(scale > 0, scale, 1.0))
        worst = max(worst, float(np.max(rel)) if rel.size else 0.0)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of: " + ", ".join(CASES))
    parser.add_argument("--repeat", type=int, default=3, help="timed repeats of the fast path (median reported)")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args()
    names = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in names if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")
    print(f"slow analyses, fast vs step-by-step reference; {platform.processor() or platform.machine()}")
    print(
        f"{'case':26s} {'fast wall s':>11s} {'fast cpu s':>10s} {'ref wall s':>10s} {'ref cpu s':>9s} "
        f"{'cpu ratio':>9s} {'max rel diff':>12s}"
    )
    rows = []
    for name in names:
        kind, run = CASES[name]
        run()  # warm-up: imports, catalogue, caches other than the steady states
        fast_times = [_timed(run) for _ in range(max(args.repeat, 1))]
        fast = fast_times[-1][0]
        fast_wall = float(np.median([t[1] for t in fast_times]))
        fast_cpu = float(np.median([t[2] for t in fast_times]))
        ref, ref_wall, ref_cpu = _timed(lambda kind=kind, run=run: _reference(kind, run))
        diff = _difference(fast, ref)
        rows.append(
            {
                "case": name,
                "fast_wall_s": fast_wall,
                "fast_cpu_s": fast_cpu,
                "reference_wall_s": ref_wall,
                "reference_cpu_s": ref_cpu,
                "cpu_ratio": ref_cpu / fast_cpu,
                "max_relative_difference": diff,
            }
        )
        print(
            f"{name:26s} {fast_wall:11.3f} {fast_cpu:10.3f} {ref_wall:10.2f} {ref_cpu:9.2f} "
            f"{ref_cpu / fast_cpu:9.1f} {diff:12.1e}",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": platform.platform(), "cases": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
