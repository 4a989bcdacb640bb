"""Independent references for designed filters (SciPy): the SOS design and the sums of its impulse response.

Used by the library's filter tests (tests/optfilters/test_filters.py) and the CLI's (tests/cli/test_analysis.py).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal


def design_sos(kind: str, order: int, cutoff: float, dc_gain: float = 10.0) -> np.ndarray:
    """scipy's SOS design, its first section scaled so that the DC gain is ``dc_gain``."""
    wn = 2.0 * cutoff
    if kind == "butterworth":
        sos = signal.butter(order, wn, output="sos")
    elif kind == "chebyshev1":
        sos = signal.cheby1(order, 1.0, wn, output="sos")
    else:
        sos = signal.bessel(order, wn, norm="mag", output="sos")
    h1 = np.prod(np.sum(sos[:, :3], axis=1) / np.sum(sos[:, 3:], axis=1))
    sos = sos.copy()
    sos[0, :3] *= dc_gain / h1
    return sos


def impulse_sums(sos: np.ndarray, chunk: int = 20_000) -> tuple[float, float, float]:
    """``sum h``, ``sum h^2`` and ``sum n h`` of the SOS impulse response, run until the tail is negligible."""
    zi = np.zeros((sos.shape[0], 2))
    total, energy, moment = [], [], []
    x = np.zeros(chunk)
    x[0] = 1.0
    start = 0
    while True:
        h, zi = signal.sosfilt(sos, x, zi=zi)
        n = np.arange(start, start + chunk)
        total.append(math.fsum(h))
        energy.append(math.fsum(h * h))
        moment.append(math.fsum(n * h))
        x = np.zeros(chunk)
        start += chunk
        if np.max(np.abs(h[-100:])) < 1e-18 * max(1.0, math.sqrt(math.fsum(energy))):
            return math.fsum(total), math.fsum(energy), math.fsum(moment)
        assert start < 5_000_000, "the impulse response does not decay"
