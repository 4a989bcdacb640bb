"""Designed filters in closed loop, orders 1-16 and cutoffs down to the catalogue's lower bound, against mpmath.

At a cutoff of 1e-6 cycles/step every pole of an order-16 design lies within 6e-6 of ``z = 1``.  The closed-loop
poles were refined in ``z`` from the eigenvalues of the cascaded realisation, which hold that distance to ten
digits at best: ``stability bessel --order 16 --cutoff 1e-6 --lr 1e-9`` printed the (correct) stable interval
``0 < lr*h < 2.23e-7`` and then a diverging rate 1.00028 at ``lr*h = 1e-9``, where the truth is ``1 - 1.0e-8``
(errors up to 3.4e-4 for the three designs at cutoffs 1e-6 and 1e-5, and 1.6e-3 for chebyshev1 at 1e-3 just past
its edge; 8.9e-9 for order 2 at 1e-6).  Solved in ``w = z - 1`` the rates agree with
:func:`tests.support.mp_loop.shifted_rate` to :data:`RATE_ERROR` (measured worst 2.5e-16 over these designs,
orders and cutoffs).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import optfilters
from optfilters.catalogue import DESIGN_CUTOFF
from optfilters.closed_loop import closed_loop
from optfilters.margins import feedback_loop, margins
from tests.support import mp_loop

DESIGNS = ("butterworth", "chebyshev1", "bessel")
#: Log-spaced cutoffs from the catalogue's lower bound (1e-6) to 0.3 cycles/step.
CUTOFFS = tuple(float(c) for c in np.geomspace(DESIGN_CUTOFF[0], 0.3, 5))
#: Largest |rate - mpmath rate| allowed where the loop is solved in w = z - 1 (orders > 2, or a pole within 1e-2
#: of z = 1): 4x the measured worst (2.5e-16; 3.4e-4 before the shifted solve).
RATE_ERROR = 1e-15
#: The same for low orders with every pole 1e-2 or more from z = 1 (closed form / eigenvalues in z): measured
#: worst 6.5e-14 (chebyshev1, order 2, cutoff 0.01, lr*h = 1e-3 of its edge).
RATE_ERROR_UNSHIFTED = 2e-13


@functools.cache
def _design(name: str, order: int, cutoff: float):
    """The loop, its stability result and the design's zeros, poles, gain and delay (the mpmath inputs)."""
    loop = closed_loop(name, order=order, cutoff=cutoff)
    f = optfilters.get(name, order=order, cutoff=cutoff).direction_filter().factorisation
    return loop, loop.stability(), (f.zeros.values, f.poles.values, f.gain, f.delay)


def _inside(intervals, x: float) -> bool:
    return any(lo < x < hi for lo, hi in intervals)


@pytest.mark.parametrize("name", DESIGNS)
def test_order_16_at_the_lowest_cutoff_against_mpmath(name: str) -> None:
    """The finding: the rate at lr*h = 1e-9 converges (1 - 1e-8), as the reported interval says, and so do the
    margins; the interval's edge is where the mpmath rate crosses 1."""
    loop, stability, zpk = _design(name, 16, DESIGN_CUTOFF[0])
    edge = stability.max_stable_lr_curvature
    assert mp_loop.shifted_rate(*zpk, 0.999 * edge) < 1.0 < mp_loop.shifted_rate(*zpk, 1.001 * edge)
    expected = mp_loop.shifted_rate(*zpk, 1e-9)
    assert 1.0 - 1e-7 < expected < 1.0
    assert abs(float(loop.rate(1e-9)) - expected) <= RATE_ERROR
    fl = feedback_loop(name, 1e-9, order=16, cutoff=DESIGN_CUTOFF[0])
    assert abs(float(fl.rate()) - expected) <= RATE_ERROR
    intervals = fl.stable_intervals()
    assert _inside(intervals, 1.0) and math.isclose(
        max(hi for lo, hi in intervals if lo < 1.0), edge / 1e-9, rel_tol=1e-9
    )


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(name="chebyshev1", order=2, cutoff=0.01, fraction=1e-3)  # the worst unshifted case measured
@example(name="butterworth", order=2, cutoff=DESIGN_CUTOFF[0], fraction=1e-3)  # 8.9e-9 off before: now shifted
@given(
    name=st.sampled_from(DESIGNS),
    order=st.integers(1, 16),
    cutoff=st.sampled_from(CUTOFFS),
    fraction=st.sampled_from([1e-3, 0.5, 0.99, 1.01, 1.5]),
)
def test_design_rates_agree_with_mpmath_and_the_stable_interval(
    name: str, order: int, cutoff: float, fraction: float
) -> None:
    """rate < 1 iff x lies in a reported stable interval, and the rate is mpmath's to RATE_ERROR."""
    loop, stability, zpk = _design(name, order, cutoff)
    edge = stability.max_stable_lr_curvature
    assert math.isfinite(edge) and edge > 0
    x = fraction * edge
    rate = float(loop.rate(x))
    bound = RATE_ERROR if loop._factored else RATE_ERROR_UNSHIFTED
    assert abs(rate - mp_loop.shifted_rate(*zpk, x)) <= bound
    assert (rate < 1.0) == _inside(stability.intervals, x) == loop.is_stable(x)


def test_margins_at_the_lowest_cutoff_converge_where_the_interval_says() -> None:
    """stability --lr 1e-9 printed 'DIVERGES here' inside the stable interval; now the margins read there."""
    m = margins("bessel", 1e-9, order=16, cutoff=DESIGN_CUTOFF[0])
    _, stability, zpk = _design("bessel", 16, DESIGN_CUTOFF[0])
    assert m.stable and abs(m.rate - mp_loop.shifted_rate(*zpk, 1e-9)) <= RATE_ERROR
    assert m.edge_lr_curvature == pytest.approx(stability.max_stable_lr_curvature, rel=1e-9)
    assert m.step.settling_steps == -1 and math.isnan(m.step.overshoot)  # settles beyond the 1e6 simulated steps
    assert m.step.as_dict()["why_null"]["settling_steps"].startswith("not determined")
    assert abs(m.stale_rates[1] - mp_loop.shifted_rate(*zpk, 1e-9, 1)) <= RATE_ERROR  # one step stale
    assert "|z| = 1 - 1.007e-08" in m.mode  # not "|z| = 1", which reads as marginal
