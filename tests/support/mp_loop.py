"""An independent closed-loop reference in mpmath: the characteristic polynomial of a filter's loop, multiplied out
in 60-digit arithmetic from the filter's zeros, poles and gain, and its roots by ``mpmath.polyroots``.

With ``H(z) = k z^-delay prod(1 - z_i/z) / prod(1 - p_j/z)``, ``x = lr * h`` and ``d`` steps of gradient
staleness, the loop on the quadratic has (powers of ``w = z^-1``)::

    P(w) = (1 - w) prod(1 - p_j w) + k w^(1 + delay) (c + x w^d) prod(1 - z_i w)

where ``c = lr * wd`` is coupled (L2) weight decay, which stays current while the gradient is stale

(optfilters.closed_loop's module notes; the derivation is the textbook one: theta_t = theta_{t-1} - lr u_t,
u = H g, g_t = h theta_{t-1-d}).  Nothing here uses optfilters.
"""

from __future__ import annotations

import mpmath


def _mul(p: list, q: list) -> list:
    out = [mpmath.mpc(0)] * (len(p) + len(q) - 1)
    for i, a in enumerate(p):
        for j, b in enumerate(q):
            out[i + j] += a * b
    return out


def characteristic(zeros, poles, gain, delay, x, d, dps=60, decay=0.0):
    """Coefficients of ``P(w)`` (lowest power first, mpmath reals) at ``dps`` digits."""
    with mpmath.workdps(dps):
        a = [mpmath.mpc(1)]
        for p in poles:
            a = _mul(a, [mpmath.mpc(1), -mpmath.mpc(complex(p))])
        b = [mpmath.mpc(1)]
        for z in zeros:
            b = _mul(b, [mpmath.mpc(1), -mpmath.mpc(complex(z))])
        left = _mul([mpmath.mpc(1), mpmath.mpc(-1)], a)
        shift = 1 + int(delay) + int(d)
        right = [mpmath.mpc(0)] * shift + [mpmath.mpf(x) * mpmath.mpf(gain) * c for c in b]
        current = [mpmath.mpc(0)] * (1 + int(delay)) + [mpmath.mpf(decay) * mpmath.mpf(gain) * c for c in b]
        right = [
            (right[i] if i < len(right) else 0) + (current[i] if i < len(current) else 0)
            for i in range(max(len(right), len(current)))
        ]
        n = max(len(left), len(right))
        total = [(left[i] if i < len(left) else 0) + (right[i] if i < len(right) else 0) for i in range(n)]
        return [mpmath.re(c) for c in total]


def roots(zeros, poles, gain, delay, x, d, dps=60, decay=0.0):
    """The closed-loop poles (in ``z``) as mpmath complex numbers."""
    coefficients = characteristic(zeros, poles, gain, delay, x, d, dps, decay)
    while coefficients and coefficients[-1] == 0:
        coefficients.pop()  # roots at z = 0 do not move the rate
    with mpmath.workdps(dps):
        # z^N P(1/z): the coefficients of P in w, lowest first, are those of the z-polynomial, highest first.
        return mpmath.polyroots(coefficients, maxsteps=500, extraprec=4 * dps)


def rate(zeros, poles, gain, delay, x, d, dps=60, decay=0.0):
    """The spectral radius (largest closed-loop pole modulus) as a float."""
    found = roots(zeros, poles, gain, delay, x, d, dps, decay)
    with mpmath.workdps(dps):
        return float(max(abs(r) for r in found)) if found else 0.0


def edge(zeros, poles, gain, delay, d, low, high, rtol=1e-10, dps=60):
    """Bisection for the largest ``x`` of the stable interval starting below ``low`` (``low`` stable, ``high`` not)."""
    assert rate(zeros, poles, gain, delay, low, d, dps) < 1 <= rate(zeros, poles, gain, delay, high, d, dps)
    while high - low > rtol * high:
        mid = 0.5 * (low + high)
        if rate(zeros, poles, gain, delay, mid, d, dps) < 1:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def step(zeros, poles, gain, delay, x, d, n, dps=60):
    """The parameter after a unit step of the optimum: ``x k w^(1+delay+d) B / P`` applied to ones, n + 1 steps,
    by the direct recursion in ``dps``-digit arithmetic (floats)."""
    with mpmath.workdps(dps):
        p = characteristic(zeros, poles, gain, delay, x, d, dps)
        b = [mpmath.mpc(1)]
        for z in zeros:
            b = _mul(b, [mpmath.mpc(1), -mpmath.mpc(complex(z))])
        num = [mpmath.mpf(0)] * (1 + int(delay) + int(d)) + [mpmath.re(mpmath.mpf(x) * mpmath.mpf(gain) * c) for c in b]
        y: list = []
        for t in range(n + 1):
            value = sum(num[k] for k in range(min(t + 1, len(num))))  # the input is 1 at every step
            value -= sum(p[k] * y[t - k] for k in range(1, min(t + 1, len(p))))
            y.append(value / p[0])
        return [float(v) for v in y]


def shifted_rate(zeros, poles, gain, delay, x, d=0, dps=50):
    """The spectral radius with the polynomial written in ``s = z - 1`` (a float), for poles crowded at ``z = 1``.

    ``z^N P(1/z) = (z - 1) prod(z - p_j) z^a + k x prod(z - z_i) z^b`` (``a``, ``b`` the powers that make the
    degrees up, common powers of ``z`` dropped) with ``z = 1 + s``: each factor ``s - (p_j - 1)`` is exact in
    mpmath, and the roots of a design with cutoff 1e-6 (all within 6e-6 of ``z = 1``) are a well-scaled cluster
    in ``s`` that ``mpmath.polyroots`` resolves at ``dps`` digits (the 60-digit polynomial in ``z`` does not).
    """
    with mpmath.workdps(dps):
        one = mpmath.mpc(1)
        n = max(len(poles) + 1, 1 + int(delay) + int(d) + len(zeros))
        a, b = n - 1 - len(poles), n - 1 - int(delay) - int(d) - len(zeros)
        m = min(a, b)
        left = [one, mpmath.mpc(0)]  # s
        for p in poles:
            left = _mul(left, [one, -(mpmath.mpc(complex(p)) - 1)])
        right = [mpmath.mpf(x) * mpmath.mpf(gain) * one]
        for z in zeros:
            right = _mul(right, [one, -(mpmath.mpc(complex(z)) - 1)])
        left = _mul(left, _power_of_z(a - m))
        right = _mul(right, _power_of_z(b - m))
        total = list(left)
        for i, c in enumerate(right):
            total[len(left) - len(right) + i] += c
        # s = scale u with scale the poles' largest distance from 1: a cluster of radius 1 in u (fast convergence)
        scale = max([abs(mpmath.mpc(complex(p)) - 1) for p in poles] + [mpmath.mpf(2) ** -1000])
        degree = len(total) - 1
        scaled = [mpmath.re(c) * scale ** (degree - i) for i, c in enumerate(total)]
        found = mpmath.polyroots(scaled, maxsteps=800, extraprec=2 * dps)
        return float(max(abs(1 + scale * u) for u in found))


def _power_of_z(k: int) -> list:
    """``z^k = (1 + s)^k`` in ``s``, highest power first."""
    out = [mpmath.mpc(1)]
    for _ in range(k):
        out = _mul(out, [mpmath.mpc(1), mpmath.mpc(1)])
    return out
