"""IQC certificates (Lessard, Recht & Packard 2016): the loop from the filter, published rates, soundness."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

import optfilters
from optfilters import InvalidFilterError, InvalidHyperparameterError
from optfilters.closed_loop import closed_loop
from optfilters.iqc import (
    certify,
    lessard_counterexample,
    lessard_gradient,
    loop_realisation,
    tune_certified,
)

# Solver tolerance: Clarabel with gap/feasibility 1e-9; bisection on rho to 1e-5 (the default) unless said.
RATE_TOL = 2e-5


@pytest.mark.parametrize(
    ("name", "hp"),
    [
        ("sgd", {"lr": 0.3}),
        ("momentum", {"lr": 0.05, "momentum": 0.9}),
        ("nesterov", {"lr": 0.05, "momentum": 0.8}),
        ("qhm", {"lr": 0.1, "nu": 0.7, "beta": 0.9}),
        ("pid", {"lr": 0.01, "momentum": 0.9, "ki": 2.0, "kd": 3.0}),
        ("butterworth", {"lr": 0.05, "order": 4, "cutoff": 0.05}),
        ("butterworth", {"lr": 0.02, "order": 6, "cutoff": 0.02}),
        ("lion", {}),
    ],
)
def test_loop_realisation_is_the_filter_in_feedback(name, hp):
    if name == "lion":
        with pytest.raises(InvalidFilterError, match="sign"):
            loop_realisation(name, **hp)
        return
    model = optfilters.get(name, **hp)
    loop = loop_realisation(model)
    f = model.direction_filter()
    z = np.array([1.7, -2.3, 1.1 + 0.9j, 3.0j, 0.4 - 1.5j])
    expected = -model.lr * f.evaluate(z) / (z - 1.0)  # -lr z^-1 H(z) / (1 - z^-1)
    np.testing.assert_allclose(loop.transfer(z), expected, rtol=1e-9)
    cl = closed_loop(model)
    for h in (0.5, 3.0, 20.0):
        ours = np.sort_complex(np.linalg.eigvals(loop.closed_loop_matrix(h)))
        theirs = np.sort_complex(cl.poles(model.lr * h))
        np.testing.assert_allclose(np.abs(ours), np.abs(theirs), atol=1e-7)
    # the realisation reproduces the model's own recursion on a non-quadratic gradient
    steps = 40
    x = np.zeros(loop.order)
    x[0] = 2.5
    ys = []
    for _ in range(steps):
        y = float((loop.C @ x)[0])
        ys.append(y)
        x = loop.A @ x + loop.B[:, 0] * float(lessard_gradient(y))
    sim = model.simulate(lambda th, t: lessard_gradient(th), theta0=np.array([2.5]), steps=steps).params[:, 0]
    if model.is_time_invariant:
        np.testing.assert_allclose(ys, sim[:-1], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kappa", [4.0, 25.0, 100.0])
def test_gradient_descent_is_certified_at_max_abs_one_minus_alpha_h(kappa):
    for alpha in (1.0 / kappa, 2.0 / (kappa + 1.0)):
        exact = max(abs(1.0 - alpha), abs(1.0 - alpha * kappa))
        for multipliers in (("sector",), ("sector", "off_by_one")):
            c = certify("sgd", mu=1.0, L=kappa, lr=alpha, multipliers=multipliers)
            assert exact <= c.rate <= exact + RATE_TOL
            assert c.quadratic_rate == pytest.approx(exact, abs=1e-12)


@pytest.mark.parametrize("kappa", [10.0, 100.0])
def test_nesterov_standard_tuning_is_accelerated_between_its_bounds(kappa):
    beta = (math.sqrt(kappa) - 1.0) / (math.sqrt(kappa) + 1.0)
    c = certify("nesterov", mu=1.0, L=kappa, lr=1.0 / kappa, momentum=beta)
    assert c.certified
    assert 1.0 - 1.0 / math.sqrt(kappa) <= c.rate <= math.sqrt(1.0 - 1.0 / math.sqrt(kappa))
    assert 0.6 < (1.0 - c.rate) * math.sqrt(kappa) < 0.8  # 1 - c / sqrt(kappa): an accelerated rate
    assert c.residual <= 1e-6 and np.min(np.linalg.eigvalsh(c.lyapunov)) >= 1.0 - 1e-6


def test_polyak_heavy_ball_is_certified_for_small_kappa_only_and_cycles_at_25():
    small = certify("momentum", mu=1.0, L=4.0, lr=4.0 / 9.0, momentum=1.0 / 9.0)
    assert small.certified and small.rate >= small.quadratic_rate - 1e-12
    big = certify("momentum", mu=1.0, L=25.0, lr=1.0 / 9.0, momentum=4.0 / 9.0)
    assert not big.certified and big.quadratic_rate == pytest.approx(2.0 / 3.0, abs=1e-7)  # a double pole: 1e-8
    x = lessard_counterexample("momentum", lr=1.0 / 9.0, momentum=4.0 / 9.0, x0=3.3, steps=300)
    np.testing.assert_allclose(np.sort(x[-3:]), np.sort([0.6465, -1.8024, 2.1159]), atol=5e-5)
    np.testing.assert_allclose(x[-3:], x[-6:-3], atol=1e-12)  # exactly periodic: no rate can be certified


def test_lessard_function_is_in_the_class():
    x = np.linspace(-5.0, 5.0, 20001)
    g = lessard_gradient(x)
    slopes = np.diff(g) / np.diff(x)
    assert slopes.min() >= 1.0 - 1e-9 and slopes.max() <= 25.0 + 1e-9
    assert float(lessard_gradient(0.0)) == 0.0


def _softplus_gradient(mu: float, L: float, shift: float, scale: float):
    """``g(x) = mu x + (L - mu) s (softplus((x - shift)/s) - softplus(-shift/s))``: g(0) = 0, g' in (mu, L)."""

    def g(x):
        x = np.asarray(x, dtype=np.float64)
        return mu * x + (L - mu) * scale * (np.logaddexp(0.0, (x - shift) / scale) - np.logaddexp(0.0, -shift / scale))

    return g


@pytest.mark.parametrize(
    ("name", "hp"),
    [
        ("nesterov", {"lr": 1.0 / 25.0, "momentum": 2.0 / 3.0}),
        ("momentum", {"lr": 0.08, "momentum": 0.4}),
        ("qhm", {"lr": 0.06, "nu": 0.7, "beta": 0.6}),
    ],
)
def test_the_certificate_bounds_trajectories_on_smooth_strongly_convex_functions(name, hp):
    """||xi_k|| <= sqrt(cond P) rho^k ||xi_0|| on Lessard's function and random smooth strongly convex ones."""
    mu, L = 1.0, 25.0
    c = certify(name, mu=mu, L=L, **hp)
    assert c.certified
    loop = loop_realisation(name, **hp)
    bound = c.iterations_constant
    rng = np.random.default_rng(0)
    functions = [lessard_gradient] + [
        _softplus_gradient(mu, L, float(rng.normal()), float(rng.uniform(0.05, 2.0))) for _ in range(5)
    ]
    for g in functions:
        for start in (3.3, -2.0, 0.7):
            x = np.zeros(loop.order)
            x[0] = start
            norm0 = np.linalg.norm(x)
            for k in range(1, 150):
                x = loop.A @ x + loop.B[:, 0] * float(g(float((loop.C @ x)[0])))
                assert np.linalg.norm(x) <= bound * c.rate**k * norm0 * (1 + 1e-9) + 1e-300


def test_certified_rate_is_never_below_the_quadratic_worst_case():
    for name, hp in (("momentum", {"lr": 0.05, "momentum": 0.5}), ("adam", {"lr": 0.05, "beta1": 0.5})):
        c = certify(name, mu=1.0, L=10.0, **hp)
        assert c.rate >= c.quadratic_rate - 1e-9
    linearised = certify("adam", mu=1.0, L=10.0, lr=0.05)
    assert "linearised" in linearised.label and linearised.certified


def test_tuning_gradient_descent_for_the_certified_rate():
    t = tune_certified("sgd", condition_number=9.0, tol=1e-4)
    assert t.rate == pytest.approx(0.8, abs=3e-4) and t.lr * t.L == pytest.approx(1.8, rel=2e-3)


def test_weight_decay_and_maximize_enter_the_loop():
    coupled = loop_realisation("momentum", lr=0.1, momentum=0.5, weight_decay=0.2)
    assert coupled.mu_shift == 0.2
    c = certify("sgd", mu=1.0, L=9.0, lr=0.1, weight_decay=1.0)  # curvatures [2, 10]: max |1 - 0.1 h| = 0.8
    assert c.mu == 2.0 and c.L == 10.0 and 0.8 <= c.rate <= 0.8 + RATE_TOL
    assert not certify("sgd", mu=1.0, L=4.0, lr=0.1, maximize=True).certified


def test_bad_inputs():
    with pytest.raises(InvalidHyperparameterError, match="mu <= L"):
        certify("sgd", mu=2.0, L=1.0, lr=0.1)
    with pytest.raises(InvalidHyperparameterError, match="multipliers"):
        certify("sgd", L=4.0, lr=0.1, multipliers=("circle",))
    with pytest.raises(InvalidHyperparameterError, match="solver"):
        certify("sgd", L=4.0, lr=0.1, solver="MOSEK")
    with pytest.raises(InvalidHyperparameterError, match="give L"):
        certify("sgd", lr=0.1)
    with pytest.raises(InvalidHyperparameterError, match="lr must be"):
        loop_realisation("sgd", lr=0.0)


def test_cvxpy_is_imported_only_when_certifying():
    code = (
        "import sys, optfilters.iqc as iqc\n"
        "print('cvxpy' in sys.modules, 'torch' in sys.modules, 'matplotlib' in sys.modules)\n"
        "iqc.certify('sgd', L=4.0, lr=0.1)\n"
        "print('cvxpy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "False", "True"]


def test_large_kappa_certificates_are_valid_but_conservative():
    """At kappa = 1000 the SDP is ill-conditioned: the certificate holds (re-checked) but exceeds the textbook rate."""
    kappa = 1000.0
    beta = (math.sqrt(kappa) - 1.0) / (math.sqrt(kappa) + 1.0)
    c = certify("nesterov", mu=1.0, L=kappa, lr=1.0 / kappa, momentum=beta, tol=1e-4)
    assert c.certified and c.residual <= 1e-8
    assert 1.0 - 1.0 / math.sqrt(kappa) < c.rate < math.sqrt(1.0 - 1.0 / math.sqrt(kappa)) + 5e-4


def test_native_solver_output_is_dropped_at_the_file_descriptors():
    """Issue 13: SCS wrote "KKT matrix has < n positive eigenvalues. P not PSD.ERROR: init_lin_sys_work failure"
    from C to fd 1 (``certify momentum --lr 0.1 --momentum 0.4 --condition-number 1e300``), past any
    ``sys.stdout`` redirection.  Native writes (unbuffered and C-stdio-buffered) inside the solver guard are
    dropped; Python output before and after it comes through, in order."""
    code = (
        "import ctypes, os, sys\n"
        "from optfilters.iqc import solver_output_dropped\n"
        "print('before', flush=False)\n"
        "with solver_output_dropped():\n"
        "    os.write(1, b'fd1 ')\n"
        "    os.write(2, b'fd2 ')\n"
        "    ctypes.CDLL(None).printf(b'buffered printf ')\n"
        "    print('python inside', file=sys.stderr)\n"
        "print('after')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert (done.stdout, done.stderr) == ("before\nafter\n", "")
