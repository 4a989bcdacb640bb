"""Time a vectorised (hyperparameter, lr*h) stability map against a per-cell ``np.roots`` loop, in the same run.

For each map, :func:`optfilters.closed_loop.stability_map` computes the
closed-loop rate (largest pole modulus) on an N x N grid: N hyperparameter
values (each one a model built from the catalogue) times N values of
``lr * h``.  The baseline is what one writes without the library: for every
cell, build the characteristic polynomial ``(1 - z^-1) a + x z^-1 b`` and take
``max(abs(np.roots(p)))``; it runs on ``--baseline-rows`` rows and is
extrapolated to N rows.  Both results are compared cell by cell.

Maps: heavy-ball momentum (``momentum`` in [0, 0.999)), Nesterov, QHM (``nu``
with ``beta = 0.9``), Adam linearised (``beta1``; preconditioned curvature) -
degree-2 loops, closed-form moduli - and a second-order Butterworth design
over its ``cutoff`` (a degree-3 loop: batched eigenvalues; each row also runs
SciPy's filter design).

The goal (issue 5): a 512 x 512 map in well under a second.

Usage::

    python bench/bench_stability_map.py                  # 512 x 512, 5 repeats
    python bench/bench_stability_map.py --size 256 --baseline-rows 64 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from typing import Any

import numpy as np

import optfilters
from optfilters.closed_loop import closed_loop, stability_map

MAPS: dict[str, tuple[str, str, tuple[float, float], float, dict[str, Any]]] = {
    # label: (optimizer, parameter, parameter range, largest lr*h, fixed hyperparameters)
    "momentum": ("momentum", "momentum", (0.0, 0.999), 4.2, {}),
    "nesterov": ("nesterov", "momentum", (0.001, 0.999), 1.6, {}),
    "qhm(beta=0.9)": ("qhm", "nu", (0.0, 1.0), 8.0, {"beta": 0.9}),
    "adam (linearised)": ("adam", "beta1", (0.0, 0.99), 60.0, {}),
    "butterworth(order=2)": ("butterworth", "cutoff", (0.01, 0.45), 1.0, {"order": 2}),
}


def baseline(name: str, parameter: str, values: np.ndarray, x: np.ndarray, fixed: dict[str, Any]) -> np.ndarray:
    """Per-cell np.roots of the textbook characteristic polynomial."""
    out = np.empty((values.size, x.size))
    for i, v in enumerate(values):
        f = optfilters.get(name, **{**fixed, parameter: float(v)})
        loop_filter = closed_loop(f).filter
        b, a = loop_filter.b, loop_filter.a
        left = np.convolve([1.0, -1.0], a)
        for j, xj in enumerate(x):
            right = np.concatenate([[0.0], xj * b])
            n = max(left.size, right.size)
            p = np.zeros(n)
            p[: left.size] += left
            p[: right.size] += right
            out[i, j] = np.max(np.abs(np.roots(p)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="grid size N (N x N map)")
    parser.add_argument("--repeat", type=int, default=5, help="timed repeats of each map (median reported)")
    parser.add_argument("--baseline-rows", type=int, default=32, help="rows of the np.roots loop (extrapolated)")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args()
    n = args.size
    rows: list[dict[str, Any]] = []
    print(
        f"stability maps, {n} x {n} = {n * n} cells; {platform.processor() or platform.machine()}, "
        f"numpy {np.__version__}"
    )
    header = f"{'map':22s} {'vectorised s':>13s} {'np.roots s (extrap.)':>21s} {'ratio':>8s} {'max |diff|':>11s}"
    print(header)
    for label, (name, parameter, (lo, hi), x_max, fixed) in MAPS.items():
        values = np.linspace(lo, hi, n)
        x = np.linspace(0.0, x_max, n)
        stability_map(name, parameter, values[:4], x[:4], **fixed)  # warm-up (imports, caches)
        times = []
        result = None
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = stability_map(name, parameter, values, x, **fixed)
            times.append(time.perf_counter() - start)
        assert result is not None
        vectorised = statistics.median(times)
        k = min(args.baseline_rows, n)
        picked = np.linspace(0, n - 1, k).round().astype(int)
        start = time.perf_counter()
        reference = baseline(name, parameter, values[picked], x, fixed)
        loop = (time.perf_counter() - start) * n / k
        diff = float(np.max(np.abs(reference - result.rate[picked])))
        rows.append(
            {
                "map": label,
                "size": n,
                "vectorised_s": vectorised,
                "vectorised_all_s": times,
                "np_roots_loop_s": loop,
                "baseline_rows": k,
                "ratio": loop / vectorised,
                "max_abs_difference": diff,
            }
        )
        print(f"{label:22s} {vectorised:13.3f} {loop:21.2f} {loop / vectorised:8.0f} {diff:11.1e}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": platform.platform(), "numpy": np.__version__, "maps": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
