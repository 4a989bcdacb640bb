"""Control readings of the optimizer loop against python-control, independent root scans and closed forms.

Stale gradients: predictions against the numpy reference executor and against real runs through the bridge.

Delay-margin and staleness predictions (:mod:`optfilters.margins`) against
runs of :class:`optfilters.torch.FilterOptimizer` fed d-step-old gradients,
for heavy ball, Nesterov, Adam (linearised) and a Butterworth design; the
gain margin against the bisected divergence learning rate of real runs.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

import optfilters
from optfilters import ArmaFilter
from optfilters.closed_loop import closed_loop_poles
from optfilters.margins import (
    MAX_STALENESS,
    crossing_mode,
    feedback_loop,
    margins,
    nonlinear_edge_note,
    root_locus,
    sensitivity,
    staleness_rates,
    step_info,
)
from optfilters.noisy_quadratic import predict, steady_state_loss
from optfilters.observe import divergence_threshold, envelope_verdict, observe_quadratic
from optfilters.validation import MARGINAL_RATE_TOL
from tests.support import mp_loop

# ----------------------------------------------------------------------------- independent references


def stale_polynomial(b, a, x, d):
    """(1 - z^-1) a(z^-1) + x z^-(1+d) b(z^-1), written out independently of the library."""
    b, a = np.asarray(b, float), np.asarray(a, float)
    left = np.convolve([1.0, -1.0], a)
    right = np.concatenate([np.zeros(1 + d), x * b])
    p = np.zeros(max(left.size, right.size))
    p[: left.size] += left
    p[: right.size] += right
    return p


def stale_rate(b, a, x, d=0):
    return float(np.max(np.abs(np.roots(stale_polynomial(b, a, x, d)))))


def stale_rates_vectorised(b, a, xs, d):
    """Largest root modulus for many x at once: eigenvalues of the companion matrices (numpy only)."""
    polys = np.array([stale_polynomial(b, a, x, d) for x in xs])
    n = polys.shape[1] - 1
    companion = np.zeros((len(xs), n, n))
    companion[:, 0, :] = -polys[:, 1:] / polys[:, :1]
    companion[:, np.arange(1, n), np.arange(n - 1)] = 1.0
    return np.max(np.abs(np.linalg.eigvals(companion)), axis=1)


def scan_edge(b, a, d=0, start=1e-6, stop=200.0, n=4001):
    """First x > 0 where the stale loop stops converging: dense scan and Brent's method on np.roots."""
    xs = np.geomspace(start, stop, n)
    rates = stale_rates_vectorised(b, a, xs, d)
    bad = np.flatnonzero(rates >= 1.0)
    assert rates[0] < 1.0 and bad.size
    i = bad[0]
    return brentq(lambda x: stale_rate(b, a, x, d) - 1.0, xs[i - 1], xs[i], xtol=1e-13)


def phase_margin_by_grid(b, a, x, points=400_001):
    """180 + angle L at |L| = 1 on a dense frequency grid (L = x z^-1 B / ((1 - z^-1) A))."""
    w = np.linspace(1e-6, math.pi, points)
    q = np.exp(-1j * w)
    L = x * q * np.polyval(np.asarray(b, float)[::-1], q) / ((1 - q) * np.polyval(np.asarray(a, float)[::-1], q))
    i = int(np.argmin(np.abs(np.abs(L) - 1.0)))

    def loop(f: float) -> complex:
        z = np.exp(-1j * f)
        num = np.polyval(np.asarray(b, float)[::-1], z)
        return complex(x * z * num / ((1 - z) * np.polyval(np.asarray(a, float)[::-1], z)))

    lo, hi = w[max(i - 1, 0)], w[min(i + 1, points - 1)]
    if (abs(loop(lo)) - 1.0) * (abs(loop(hi)) - 1.0) < 0.0:  # the grid brackets the crossover: bisect it
        # (where the phase moves fast with frequency, the nearest grid point alone is ~5e-3 degrees off)
        wc = brentq(lambda f: abs(loop(f)) - 1.0, lo, hi, xtol=1e-15)
        return math.degrees(math.pi + np.angle(loop(wc))), wc
    return math.degrees(math.pi + np.angle(L[i])), w[i]


# ----------------------------------------------------------------------------- the reference values


def test_heavy_ball_reference_values():
    m = margins("momentum", 0.05, momentum=0.9)
    assert m.gain_margin == pytest.approx(76.0, rel=1e-12)  # 3.8 / 0.05
    assert m.failure_frequency == 0.5 and "z = -1" in m.failure_mode
    assert m.phase_margin == pytest.approx(25.66, abs=0.005)
    assert m.crossover_rad == pytest.approx(0.218, abs=5e-4)
    assert m.delay_margin == pytest.approx(2.05, abs=0.005)
    assert m.max_staleness == 2
    np.testing.assert_allclose(m.stale_rates, [0.9487, 0.9747, 0.9989, 1.0181], atol=5e-5)
    assert margins("momentum", 0.2, momentum=0.9).stale_rates[1] == pytest.approx(1.0488, abs=5e-5)
    gd = staleness_rates("sgd", 0.05, range(5)).rate[0]
    assert gd[0] == pytest.approx(0.95) and gd[4] == pytest.approx(0.934, abs=5e-4)
    assert np.all(np.diff(gd) < 0)  # plain GD converges faster with staleness


def test_stale_rates_against_roots_of_the_written_out_polynomial():
    for x, d in [(0.05, 0), (0.05, 3), (0.2, 1), (0.7, 5)]:
        assert feedback_loop("momentum", x, staleness=d, momentum=0.9).rate() == pytest.approx(
            stale_rate([1.0], [1.0, -0.9], x, d), rel=1e-12
        )


def test_python_control_agrees_where_it_finds_a_margin_and_misses_the_heavy_ball_one():
    control = pytest.importorskip("control")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Heavy ball: L(z) = 0.05 z / ((z - 1)(z - 0.9)).  python-control returns no gain margin (inf): its
        # phase crossover sits exactly at w = pi.
        gm, pm, _, _, wp, _ = control.stability_margins(
            control.tf([0.05, 0.0], np.polymul([1, -1], [1, -0.9]), dt=True)
        )
        counter = control.stability_margins(control.tf([0.401, 0.377], np.polymul([1, -1], [1, 0.513]), dt=True))
    m = margins("momentum", 0.05, momentum=0.9)
    assert math.isinf(gm) and math.isfinite(m.gain_margin)
    assert m.phase_margin == pytest.approx(pm, rel=1e-9)
    assert m.crossover_rad == pytest.approx(wp, rel=1e-9)
    c = margins(ArmaFilter([0.401, 0.377], [1.0, 0.513]), 1.0)
    assert c.gain_margin == pytest.approx(counter[0], rel=1e-9)  # 4.0133: the edge is a complex pair
    assert c.phase_margin == pytest.approx(counter[1], rel=1e-9)
    assert c.failure_frequency == pytest.approx(counter[3] / (2 * math.pi), rel=1e-9)
    assert "complex pair" in c.failure_mode


@settings(max_examples=15, deadline=None)
@given(
    st.floats(-0.9, 0.9),
    st.floats(-0.9, 0.9),
    st.floats(0.05, 1.5),
    st.floats(-1.0, 1.0),
    st.integers(0, 3),
)
def test_gain_margin_is_the_scanned_edge_for_random_filters(p1, p2, b0, b1, d):
    """Random stable two-pole filters (many break the z = -1 shortcut) with staleness: GM x = the scanned edge."""
    a = np.poly([p1, p2]).real
    b = [b0, b1]
    x = 1e-3
    if stale_rate(b, a, x, d) >= 1.0:
        return  # not convergent at small x (a zero of H near 1 with the wrong sign)
    m = margins(ArmaFilter(b, a), x, staleness=d)
    assert m.edge_lr_curvature == pytest.approx(scan_edge(b, a, d), rel=1e-6)


#: Stale loops whose spectral radius is within this of 1 are marginal in double precision: whether they converge
#: is decided by rounding (momentum 0, x = 1 - 1e-16, d = 1: |z| = sqrt(x) = 1 - 5.6e-17, which np.roots and
#: float() round to 1), so the reference classifies no staleness there.  Decided in 60-digit mpmath.
MARGINAL_BAND = 1e-12


def heavy_ball_converges(beta, x, d):
    """Whether heavy ball's loop with ``d`` stale steps converges: True, False, or None when it is marginal.

    np.roots decides, except within 1e-9 of the edge, where :mod:`tests.support.mp_loop`'s 60-digit roots do
    (None within :data:`MARGINAL_BAND` of 1).
    """
    rate = stale_rate([1.0], [1.0, -beta], x, d)
    if abs(rate - 1.0) > 1e-9:
        return rate < 1.0
    exact = max(abs(r) for r in mp_loop.roots([], [beta], 1.0, 0, x, d))
    if abs(exact - 1) <= MARGINAL_BAND:
        return None
    return bool(exact < 1)


@settings(max_examples=15, deadline=None)
@given(st.floats(0.0, 0.97), st.floats(0.005, 1.0))
@example(0.0, 1 - 1e-16)  # d = 1 is marginal: |z| = sqrt(x) rounds to 1
def test_delay_margin_and_staleness_tolerance_against_stale_roots(beta, x):
    if stale_rate([1.0], [1.0, -beta], x) >= 1.0:
        return
    m = margins("momentum", x, momentum=beta)
    pm, w = phase_margin_by_grid([1.0], [1.0, -beta], x)
    assert m.phase_margin == pytest.approx(pm, abs=1e-3)
    assert m.delay_margin == pytest.approx(math.radians(pm) / w, rel=1e-3)
    if m.max_staleness < 63:  # 0..max converge, max + 1 does not (marginal staleness either way)
        for d in range(0, m.max_staleness + 2):
            converges = heavy_ball_converges(beta, x, d)
            assert converges is None or converges == (d <= m.max_staleness), f"d = {d}"


def test_marginal_staleness_is_left_unclassified_only_within_the_band():
    """The pinned point's d = 1 is marginal; 1e-9 further from the edge it is decided (by mpmath) both ways."""
    assert heavy_ball_converges(0.0, 1 - 1e-16, 1) is None
    assert heavy_ball_converges(0.0, 1 - 1e-10, 1) is True  # |z| = sqrt(x) = 1 - 5e-11
    assert heavy_ball_converges(0.0, 1 + 1e-10, 1) is False
    assert heavy_ball_converges(0.0, 0.5, 1) is True and heavy_ball_converges(0.0, 0.5, 3) is False


def test_weight_decay_enters_the_gain_margin():
    # Coupled decay: P = (1 - z^-1)(1 - b z^-1) + g (x + lr wd) z^-1; the edge is where g (x + lr wd) = 2 (1 + b).
    m = margins("momentum", momentum=0.9, lr=0.05, weight_decay=1.0, curvature=1.0)
    assert m.edge_lr_curvature == pytest.approx(3.8 * 0.05 / (0.05 + 0.05), rel=1e-9)


def test_unstable_point_and_normalised_models():
    m = margins("momentum", 5.0, momentum=0.9)
    assert not m.stable and m.gain_margin == pytest.approx(3.8 / 5.0) and m.max_staleness == -1
    assert math.isnan(m.phase_margin)
    adam = margins("adam", lr=0.01, curvature=2.0, beta1=0.9)
    assert adam.linearised and "linearised" in adam.label
    assert adam.edge_lr_curvature == pytest.approx(38.0, rel=1e-9)
    # Linearised Adam is heavy ball with x (1 - beta1): the same stale rates as heavy ball at 0.05.
    np.testing.assert_allclose(
        margins("adam", 0.5, beta1=0.9, eps=0.0).stale_rates,
        margins("momentum", 0.05, momentum=0.9).stale_rates,
        rtol=1e-9,
    )
    assert nonlinear_edge_note("adam").startswith("adam normalises its step")
    assert "sign" in nonlinear_edge_note("lion") and nonlinear_edge_note("nesterov") is None


def test_bad_inputs():
    with pytest.raises(ValueError, match="staleness must be an integer >= 0"):
        margins("sgd", 0.1, staleness=-1)
    with pytest.raises(ValueError, match=r"x = lr \* h must be finite and > 0"):
        margins("sgd", 0.0)
    with pytest.raises(ValueError, match="not both"):
        margins("sgd", 0.1, curvature=2.0)
    with pytest.raises(ValueError, match="diverges at lr\\*h = 3"):
        sensitivity("sgd", 3.0)


# ----------------------------------------------------------------------------- locus, step, sensitivity


def test_root_locus_matches_the_closed_loop_poles():
    x = np.array([0.01, 0.5, 2.0, 3.79, 5.0])
    r = root_locus("momentum", x, momentum=0.9)
    np.testing.assert_allclose(
        np.sort_complex(r.poles), np.sort_complex(closed_loop_poles("momentum", x, momentum=0.9))
    )
    assert r.stable_interval == (0.0, pytest.approx(3.8))
    assert [(round(xc, 9), f) for xc, f in r.crossings if xc > 0] == [(3.8, 0.5)]
    np.testing.assert_allclose(np.sort(r.open_loop_poles.real), [0.9, 1.0])
    assert crossing_mode(0.0) == "z = +1: monotone growth"


def test_step_info_against_a_direct_recursion():
    # Heavy ball written out: v = b v + h (theta - 1); theta -= lr v, from theta = 0 (the optimum moved to 1).
    for beta, x in [(0.9, 0.05), (0.5, 0.3), (0.0, 0.5)]:
        theta, v, ys = 0.0, 0.0, [0.0]
        for _ in range(3000):
            v = beta * v + (theta - 1.0)
            theta -= x * v
            ys.append(theta)
        ys = np.array(ys)
        s = step_info("momentum", x, momentum=beta, steps=3000)
        np.testing.assert_allclose(s.response, ys, atol=1e-12)
        assert s.overshoot == pytest.approx(max(0.0, ys.max() - 1.0), abs=1e-12)
        outside = np.flatnonzero(np.abs(ys - 1.0) > 0.02)
        assert s.settling_steps == (outside[-1] + 1 if outside.size else 0)


@pytest.mark.parametrize(
    ("name", "hp", "x"),
    [("momentum", {"momentum": 0.9}, 0.05), ("nesterov", {"momentum": 0.9}, 0.3), ("butterworth", {"order": 4}, 0.008)],
)
def test_noise_gain_is_the_nqm_steady_state(name, hp, x):
    """sigma^2 ||T||^2 / (2 h) is the noisy quadratic's Lyapunov steady state (h = 1, sigma^2 = 1)."""
    s = sensitivity(name, x, **hp)
    assert 0.5 * s.noise_gain == pytest.approx(
        steady_state_loss(name, lr=x, curvatures=1.0, noise_var=1.0, **hp), rel=1e-8
    )
    f = np.linspace(0.0, 0.5, 200_001)
    loop = feedback_loop(name, x, **hp)
    z = np.exp(2j * np.pi * f)
    t = np.abs(np.polyval(loop.slope, z) / np.polyval(loop.polynomial(), z))
    assert s.peak_t == pytest.approx(t.max(), rel=1e-6)
    assert s.peak_t >= 1.0  # the integrator makes |T(1)| = 1


def test_heavy_ball_resonance_peak():
    s = sensitivity("momentum", 0.05, momentum=0.9)
    assert s.peak_t > 2.0 and 0.03 < s.peak_t_frequency < 0.04  # near the crossover 0.0347 cycles/step
    assert sensitivity("sgd", 0.05).peak_t == pytest.approx(1.0, abs=1e-9)  # a one-pole loop: no resonance
    assert s.modulus_margin == pytest.approx(1.0 / s.peak_s)


def test_results_plot_and_json():
    import matplotlib

    matplotlib.use("Agg")
    m = margins("momentum", 0.05, momentum=0.9)
    d = m.as_dict()
    assert d["gain_margin"] == pytest.approx(76.0) and d["delay_margin_steps"] == pytest.approx(2.052, abs=1e-3)
    for result in (
        m,
        m.step,
        root_locus("momentum", momentum=0.9, points=40),
        sensitivity("momentum", 0.05),
        staleness_rates("momentum", 0.05, range(4), momentum=0.9),
    ):
        drawn = result.plot()
        assert drawn.figure is not None and drawn.axes
        drawn.close()
        assert isinstance(result.as_dict(), dict)
    assert optfilters.get("adam").normaliser is not None


CASES = [
    ("momentum", {"momentum": 0.9}, 0.05),
    ("nesterov", {"momentum": 0.9}, 0.1),
    ("butterworth", {"order": 2, "cutoff": 0.05, "dc_gain": 10.0}, 0.01),
]


def stale_reference(name, hp, lr, h, d, steps, theta0=1.0):
    """The model's numpy reference executor fed gradients d steps old (the start before the run)."""
    opt = optfilters.get(name, lr=lr, **hp).optimizer([theta0])
    history = [theta0] * (d + 1)
    out = [theta0]
    for _ in range(steps):
        theta = float(opt.step([h * history[0]])[0])
        history = [*history[1:], theta]
        out.append(theta)
    return np.array(out)


@pytest.mark.parametrize(("name", "hp", "x"), [*CASES, ("adam", {"beta1": 0.9}, 0.05)])
@pytest.mark.parametrize("d", [0, 2])
def test_stale_prediction_is_the_stale_recursion(name, hp, x, d):
    h = 2.0
    lr = x / h
    ref = stale_reference(name, hp, lr, h, d, 150)
    p = predict(name, lr=lr, curvatures=h, init=1.0, steps=150, staleness=d, **hp)
    np.testing.assert_allclose(p.mean[:, 0], ref, rtol=1e-9, atol=1e-12)
    if d:
        assert f"gradients {d} steps stale" in p.label


def bridge_trajectory(name, hp, lr, h, d, steps, theta0=1.0):
    """theta_t of a real FilterOptimizer run fed gradients d steps old (float64, noiseless)."""
    import torch

    from optfilters.torch import FilterOptimizer

    p = torch.nn.Parameter(torch.full((1,), theta0, dtype=torch.float64))
    opt = FilterOptimizer([p], optfilters.get(name, **hp), lr=lr)
    history = [theta0] * (d + 1)
    out = [theta0]
    for _ in range(steps):
        p.grad = torch.full((1,), h * history[0], dtype=torch.float64)
        opt.step()
        theta = float(p.detach()[0])
        history = [*history[1:], theta]
        out.append(theta)
    return np.array(out)


def observed_poles(theta, order, start):
    """The closed-loop poles of a run, identified from its trajectory: the least-squares linear recurrence
    theta_t = -sum_k c_k theta_{t-k} (Prony's method), rescaled to avoid underflow, and its roots."""
    seg = np.asarray(theta[start : start + 6 * order + 60], dtype=np.float64)
    seg = seg / np.max(np.abs(seg))
    rows = np.array([seg[t - order : t][::-1] for t in range(order, seg.size)])
    coeffs, *_ = np.linalg.lstsq(rows, seg[order:], rcond=None)
    return np.roots(np.concatenate([[1.0], -coeffs]))


@pytest.mark.parametrize(("name", "hp", "x"), CASES)
def test_bridge_runs_with_stale_gradients_have_the_predicted_poles(name, hp, x):
    """Bridge runs at d = 0 .. max_staleness + 1: the poles identified from the run are the predicted ones."""
    m = margins(name, x, **hp)
    assert m.max_staleness >= 1
    order = m.loop.order
    for d in range(m.max_staleness + 2):
        theta = bridge_trajectory(name, hp, x, 1.0, d, 200)
        np.testing.assert_allclose(theta, stale_reference(name, hp, x, 1.0, d, 200), rtol=1e-9, atol=1e-300)
        rate = float(np.max(np.abs(observed_poles(theta, order + d, start=d + 5))))
        assert rate == pytest.approx(m.stale_rates[d], rel=1e-6), (d, rate, m.stale_rates[d])
    assert m.stale_rates[m.max_staleness] < 1.0 < m.stale_rates[m.max_staleness + 1]


def test_heavy_ball_reference_staleness_in_real_runs():
    rates = [
        float(
            np.max(
                np.abs(
                    observed_poles(
                        bridge_trajectory("momentum", {"momentum": 0.9}, 0.05, 1.0, d, 150), 2 + d, start=d + 5
                    )
                )
            )
        )
        for d in range(4)
    ]
    np.testing.assert_allclose(rates, [0.9487, 0.9747, 0.9989, 1.0181], atol=5e-5)
    c = observe_quadratic("momentum", lr=0.05, momentum=0.9, steps=1500, seeds=2, staleness=3)  # and the envelope
    assert envelope_verdict(np.sqrt(2.0 * c.observed_mean_loss), 500)[0] == 1


@pytest.mark.parametrize(
    ("name", "hp", "x", "d"),
    [
        ("momentum", {"momentum": 0.9}, 0.05, 2),
        ("nesterov", {"momentum": 0.9}, 0.1, 1),
        ("butterworth", {"order": 2, "cutoff": 0.05, "dc_gain": 10.0}, 0.01, 1),
    ],
)
def test_gain_margin_of_the_stale_loop_is_the_bisected_divergence_lr(name, hp, x, d):
    m = margins(name, x, staleness=d, **hp)
    observed = divergence_threshold(name, curvature=1.0, staleness=d, lr_range=(0.1 * x, 100.0 * x), **hp)
    assert observed.status == "decided"
    assert observed.predicted_lr == pytest.approx(m.edge_lr_curvature, rel=1e-9)
    assert observed.observed_lr == pytest.approx(m.edge_lr_curvature, rel=0.01)


def test_adam_linearised_staleness_against_real_adam():
    """Real Adam, noisy d-stale gradients: the linearised (tracking) prediction holds; past the frozen-v delay
    margin the real normaliser does not let it diverge: v grows and the loop sits just inside its edge."""
    frozen = margins("adam", 0.5, beta1=0.9, second_moment=1.0)  # v = noise variance: heavy ball at 0.05
    assert frozen.max_staleness == 2
    losses = {}
    for d in (0, 2, 3):
        c = observe_quadratic(
            "adam", lr=0.5, beta1=0.9, curvatures=1.0, noise_var=1.0, init=0.0, steps=500, seeds=512, staleness=d
        )
        tail = slice(300, 501)
        observed, predicted = c.observed_mean_loss[tail].mean(), c.predicted_loss[tail].mean()
        assert observed == pytest.approx(predicted, rel=0.07), d
        losses[d] = (observed, c.prediction.rate)
    assert losses[3][0] > 4 * losses[0][0] and math.isfinite(losses[3][0])
    assert 0.99 < losses[3][1] < 1.0  # the tracked loop ends just inside the edge, not beyond it


# ----------------------------------------------------------------------------- issue 13: sentinels and marginal rates


def test_a_rate_within_rounding_of_one_is_marginal_not_stable():
    """lr*h = 1e-321: the slow pole 1 - x / (1 - beta) rounds to 1 (the stale rates were 1 -+ 4e-16: 17 steps)."""
    m = margins("momentum", lr=0.1, curvature=1e-320)
    assert abs(m.rate - 1.0) <= MARGINAL_RATE_TOL and m.marginal and not m.stable
    assert m.max_staleness == -1 and not m.step.stable and m.step.marginal
    data = m.as_dict()
    assert data["max_staleness"] is None and data["delay_margin_steps"] is None and data["marginal"] is True
    assert data["why_null"]["max_staleness"] == "undefined: the loop is marginal here (rate 1 within rounding)"
    step = m.step.as_dict()
    assert step["rise_steps"] is None and step["why_null"]["rise_steps"].startswith("undefined: the loop is marginal")


def test_json_of_a_diverging_point_has_no_sentinel_and_says_why():
    data = margins("momentum", lr=5.0, curvature=1.0).as_dict()
    assert data["stable"] is False and data["marginal"] is False
    assert data["max_staleness"] is None and data["delay_margin_steps"] is None
    assert data["why_null"]["max_staleness"] == "undefined: the loop diverges here"
    assert data["step"]["settling_steps"] is None and data["step"]["why_null"]["settling_steps"] == "diverges"
    assert data["gain_margin"] == pytest.approx(3.8 / 5.0)  # finite: the factor down to the edge 2 + 2 mu


def test_a_stale_tolerance_at_the_search_bound_is_a_lower_bound():
    """DM = PM / w_c above MAX_STALENESS: every smaller delay is tolerated (the delay-margin theorem), more unknown."""
    m = margins("momentum", momentum=0.9, lr=0.001, curvature=0.001)
    assert m.delay_margin > MAX_STALENESS and m.max_staleness == MAX_STALENESS and m.staleness_capped
    assert m.as_dict()["max_staleness_is_lower_bound"] is True
    assert not margins("momentum", 0.05, momentum=0.9).staleness_capped  # DM 2.05: 2 steps, exactly


def test_a_rise_beyond_the_simulated_steps_is_null_with_its_reason():
    """GD at x = 1e-9: y_t = 1 - (1 - x)^t is 1 - exp(-1e-3) ~ 1e-3 < 10% at the last of 1e6 simulated steps."""
    s = step_info("sgd", 1e-9)
    assert s.stable and not s.marginal and s.rise_steps == -1 and s.response.size == 1_000_001
    assert s.response[-1] == pytest.approx(1.0 - (1.0 - 1e-9) ** 1_000_000, rel=1e-6)
    data = s.as_dict()
    assert data["rise_steps"] is None
    assert data["why_null"]["rise_steps"].startswith("undefined: the response does not pass 10% and 90%")


def test_sensitivity_refuses_a_marginal_loop_and_locus_says_why_null():
    with pytest.raises(optfilters.InvalidHyperparameterError, match="is marginal"):
        sensitivity("momentum", lr=0.1, curvature=1e-320)
    data = root_locus(ArmaFilter([1.0, -1.0], [1.0, -0.5]), [0.5, 1.0]).as_dict()  # no DC gain: marginal
    assert data["stable_interval"] is None and data["crossings"] == []
    assert data["marginal_intervals"] == [[-0.5, 1.5]]  # the pole 1 stays, the pole 0.5 - x leaves at x = 1.5
    assert data["why_null"] == {
        "stable_interval": "undefined: marginal for -0.5 <= lr*h <= 1.5 (closed-loop poles on the unit circle: "
        "rate exactly 1), diverges for every other lr*h"
    }
    assert root_locus("sgd", [0.5]).as_dict()["why_null"] == {}


# ----------------------------------------------------------------------------- designed filters up to order 16

DESIGNS = ("butterworth", "chebyshev1", "bessel")


def _design_factors(name: str, **hp):
    """The design's zeros, poles and gain as entered (SciPy's zpk scaled to its DC gain): the mpmath inputs."""
    f = optfilters.get(name, **hp).direction_filter().factorisation
    return f.zeros.values, f.poles.values, f.gain, f.delay


@pytest.mark.parametrize("name", DESIGNS)
@pytest.mark.parametrize("order", [2, 8, 12, 16])
def test_designed_loop_rates_against_mpmath_roots(name: str, order: int) -> None:
    """Stale rates of order-16 designs match 60-digit roots of the written-out polynomial to 1e-12.

    The expanded double-precision polynomial put them at 1.10-1.11 (chebyshev1, order 16, lr*h = 1e-3, d >= 1)
    where the truth is 0.9973.
    """
    zpk = _design_factors(name, order=order)
    for x in (0.001, 0.01):
        loop = feedback_loop(name, x, order=order)
        for d in (0, 1, 2, 5):
            assert float(loop.delayed(d).rate()) == pytest.approx(mp_loop.rate(*zpk, x, d), abs=1e-12)
    decayed = feedback_loop(name, order=order, lr=0.001, weight_decay=3.0, curvature=1.0)
    for d in (0, 2):
        expected = mp_loop.rate(*zpk, 0.001, d, decay=0.003)
        assert float(decayed.delayed(d).rate()) == pytest.approx(expected, abs=1e-12)


def _delay_margin_consistent(m) -> None:
    """Rates with d stale steps converge for every d below the delay margin and diverge at the next integer."""
    dm = m.delay_margin
    assert math.isfinite(dm) and dm > 0
    for d, r in enumerate(m.stale_rates):
        assert (r < 1.0) == (d < dm), (d, r, dm)
    if dm < 64:
        assert m.max_staleness == math.ceil(dm) - 1 and len(m.stale_rates) == m.max_staleness + 2


@pytest.mark.parametrize("name", DESIGNS)
def test_order_16_margins_are_consistent_and_exact(name: str) -> None:
    """The issue's order-16 readings: gain margin the mpmath-bisected edge, delay margin consistent with the rates."""
    zpk = _design_factors(name, order=16)
    for d in (0, 3):
        m = margins(name, staleness=d, order=16, lr=0.001, curvature=1.0)
        assert m.stable and math.isfinite(m.gain_margin) and m.failure_frequency is not None
        edge = mp_loop.edge(*zpk, d, 0.999 * m.edge_lr_curvature, 1.001 * m.edge_lr_curvature)
        assert m.edge_lr_curvature == pytest.approx(edge, rel=1e-9)
        assert math.isfinite(m.phase_margin) and 0 < m.phase_margin < 180
        _delay_margin_consistent(m)
    stability = optfilters.closed_loop.closed_loop(optfilters.get(name, order=16)).stability()
    assert stability.max_stable_lr_curvature == pytest.approx(
        mp_loop.edge(*zpk, 0, 0.999 * stability.max_stable_lr_curvature, 1.001 * stability.max_stable_lr_curvature),
        rel=1e-9,
    )


@settings(max_examples=12, deadline=None)
@given(
    name=st.sampled_from(DESIGNS),
    order=st.integers(1, 16),
    cutoff=st.floats(0.01, 0.2),
    x=st.floats(1e-4, 0.5),
)
def test_delay_margin_matches_the_stale_rates_of_designs(name: str, order: int, cutoff: float, x: float) -> None:
    m = margins(name, x, order=order, cutoff=cutoff)
    if m.stable and math.isfinite(m.delay_margin):
        _delay_margin_consistent(m)


@pytest.mark.parametrize(
    ("name", "hp", "x"),
    [("momentum", {"momentum": 0.9}, 0.05), ("sgd", {}, 0.3), ("nesterov", {"momentum": 0.9}, 0.2), ("pid", {}, 0.05)],
)
def test_delay_margin_matches_the_stale_rates_of_catalogue_loops(name: str, hp: dict, x: float) -> None:
    _delay_margin_consistent(margins(name, x, **hp))


@pytest.mark.parametrize("name", DESIGNS)
def test_order_16_step_against_the_mpmath_recursion(name: str) -> None:
    """The expanded order-16 polynomial run in direct form blew up (a 10-90% rise in 0 steps): second-order
    sections from the accurate poles match the 60-digit recursion."""
    zpk = _design_factors(name, order=16)
    s = step_info(name, 0.001, order=16, steps=400)
    expected = np.array(mp_loop.step(*zpk, 0.001, 0, 400))
    assert np.max(np.abs(s.response - expected)) < 1e-9
    frac = expected / s.final_value
    assert s.final_value == pytest.approx(1.0, rel=1e-12) and s.rise_steps > 10
    assert s.rise_steps == int(np.flatnonzero(frac >= 0.9)[0] - np.flatnonzero(frac >= 0.1)[0])


@pytest.mark.parametrize("name", DESIGNS)
def test_order_16_locus_and_sensitivity_poles_against_mpmath(name: str) -> None:
    zpk = _design_factors(name, order=16)
    r = root_locus(name, [0.001, 0.002], order=16, staleness=2)
    for i, x in enumerate([0.001, 0.002]):
        assert float(np.max(np.abs(r.poles[i]))) == pytest.approx(mp_loop.rate(*zpk, x, 2), abs=1e-12)
    s = sensitivity(name, 0.001, order=16)
    step = np.array(mp_loop.step(*zpk, 0.001, 0, 4000))
    impulse = np.diff(step, prepend=0.0)  # the step's input is the running sum of an impulse
    assert s.noise_gain == pytest.approx(float(np.sum(impulse * impulse)), rel=1e-6)
    assert s.peak_s >= 1.0


def test_huge_operating_point_keeps_its_stable_interval_and_finite_rate():
    """At x = lr * h = 1e305 the heavy-ball loop is unstable with a finite pole of modulus ~1e305, and lr must
    shrink to the edge 3.8 (the crossing at g = 3.8e-305 is not rounded into g = 0)."""
    m = margins("momentum", 1e305, momentum=0.9)
    assert not m.stable and m.rate == pytest.approx(1e305, rel=1e-12)
    assert m.stable_intervals == ((0.0, pytest.approx(3.8e-305, rel=1e-12)),)
    assert m.edge_lr_curvature == pytest.approx(3.8, rel=1e-12)
    assert m.edge_lr_curvature == pytest.approx(margins("momentum", 0.05, momentum=0.9).edge_lr_curvature)


def test_root_locus_at_a_huge_lr_curvature_is_the_finite_pole():
    """x = 1e308 against the operating point lr*h = 1e-3: the gain factor x / x0 overflowed and the rate read inf.
    Reference: the root of z^2 - (1.9 - x) z + 0.9 in 50-digit mpmath."""
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(50):
        exact = max(abs(r) for r in mpmath.polyroots([1, -(mpmath.mpf(1.9) - mpmath.mpf(1e308)), mpmath.mpf(0.9)]))
    rate = root_locus("momentum", [1e308, 1.0]).rate
    assert rate[0] == pytest.approx(float(exact), rel=1e-14) and rate[1] == pytest.approx(0.9**0.5, rel=1e-12)


def test_feedback_loop_of_heavy_ball_with_momentum_one_is_degenerate_and_never_stable():
    """The margins' loop in gain factors g = x / x0: marginal for 0 <= g x0 <= 4, never stable (rate >= 1)."""
    loop = feedback_loop("momentum", 0.5, momentum=1.0)
    assert loop.degenerate is not None and loop.degenerate.marginal == ((0.0, 8.0),)
    assert loop.crossings() == [] and loop.stable_intervals() == []
    assert loop.verdict(1.0) == (1.0, False, True) and loop.verdict(9.0)[1:] == (False, False)
    assert feedback_loop("momentum", 0.5, momentum=0.9).degenerate is None
