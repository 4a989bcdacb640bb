"""identify(): measured filters of black-box optimizers against closed forms and the catalogue.

Every expected filter below is derived in the test from the optimizer's update
equations (torch semantics from shared/reference/torch_optim.md, or the test
optimizers in optimizers_for_identify.py), never copied from identify's output.

identify through sign, matrix and sparse stages; file paths and import hints; keyword mapping; honest notes.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

import optfilters
from optfilters import ArmaFilter
from optfilters.identify import (
    IdentificationError,
    NonFiniteUpdate,
    catalogue_model,
    fit_arma,
    identify,
    map_keywords,
    probe,
    resolve_optimizer,
)

torch = pytest.importorskip("torch")


ROOT = Path(__file__).resolve().parents[2]


IDENTIFY_FILE = ROOT / "tests/support/optimizers_for_identify.py"


if str(IDENTIFY_FILE.parent) not in sys.path:  # any pytest import mode
    sys.path.insert(0, str(IDENTIFY_FILE.parent))


import optimizers_for_identify as opts  # noqa: E402

EXACT = 1e-8


def freq_deviation(f: ArmaFilter, g: ArmaFilter, n: int = 256) -> float:
    """max |F - G| over 0..0.5 cycles/step, relative to max |G|."""
    z = np.exp(2j * np.pi * np.linspace(0.0, 0.5, n))
    hf, hg = f.evaluate(z), g.evaluate(z)
    return float(np.max(np.abs(hf - hg)) / np.max(np.abs(hg)))


def assert_filter(ident, b, a, rtol: float = EXACT) -> None:
    assert ident.b is not None and ident.a is not None, ident.summary()
    expected = ArmaFilter(b, a)
    got = ident.to_filter()
    assert got.isclose(expected, rtol=rtol, atol=rtol), (got, expected)


# ----------------------------------------------------------------------------- torch.optim.SGD family


SGD_VARIANTS = [
    ({}, [1.0], [1.0]),
    ({"momentum": 0.9}, [1.0], [1.0, -0.9]),
    ({"momentum": 0.5}, [1.0], [1.0, -0.5]),
    ({"momentum": 0.99}, [1.0], [1.0, -0.99]),
    ({"momentum": 0.9, "nesterov": True}, [1.9, -0.9], [1.0, -0.9]),
    ({"momentum": 0.5, "nesterov": True}, [1.5, -0.5], [1.0, -0.5]),
    ({"momentum": 0.9, "lr": 0.01}, [1.0], [1.0, -0.9]),
]


@pytest.mark.parametrize(("kwargs", "b", "a"), SGD_VARIANTS, ids=[str(v[0]) for v in SGD_VARIANTS])
def test_sgd_family_identified_exactly_and_equal_to_catalogue(kwargs, b, a) -> None:
    ident = identify("torch.optim.SGD", **kwargs)
    assert ident.linear and ident.time_invariant and ident.transient_steps == 0
    assert not ident.parameter_dependent and not ident.closure
    assert ident.lr == kwargs.get("lr", 1.0)
    # Closed form (torch: buf = mu buf + g from rest, d = buf or g + mu buf).
    assert_filter(ident, b, a)
    # The catalogue's filter for the same hyperparameters.
    catalogue = optfilters.get("sgd", **kwargs).filters()["gradient"]
    assert ident.to_filter().isclose(catalogue, rtol=EXACT, atol=EXACT)
    assert ident.residual is not None and ident.residual < 1e-12
    momentum = kwargs.get("momentum", 0.0)
    if momentum:
        assert ident.poles is not None and np.allclose(ident.poles, [momentum], atol=EXACT)
    if kwargs.get("nesterov"):
        assert ident.zeros is not None and np.allclose(ident.zeros, [momentum / (1 + momentum)], atol=EXACT)
    assert ident.compare("sgd").match


def test_sgd_maximize_negates_the_filter() -> None:
    ident = identify("torch.optim.SGD", momentum=0.8, maximize=True)
    assert_filter(ident, [-1.0], [1.0, -0.8])


def test_sgd_dampening_is_time_varying_at_step_one_with_the_right_steady_part() -> None:
    momentum, damp = 0.9, 0.5
    ident = identify("torch.optim.SGD", momentum=momentum, dampening=damp)
    assert ident.linear
    assert not ident.time_invariant
    assert ident.transient_steps == 1
    # torch: buf_1 = g_1 (no 1 - dampening), so an impulse at step 1 gives 1, later impulses 1 - d.
    assert ident.time_invariance.discrepancy == pytest.approx(damp, rel=1e-12)
    assert_filter(ident, [1.0 - damp], [1.0, -momentum])
    assert any("first 1 step" in note for note in ident.notes)
    # The catalogue models the first step (first_output_is_input): same steady filter, same transient.
    comparison = ident.compare("sgd")
    assert comparison.match, comparison.summary()


def test_coupled_weight_decay_gives_the_closed_loop_filter() -> None:
    # u_t = mu u_{t-1} + g_t + wd theta_{t-1}, theta_{t-1} = -lr sum_{k<t} u_k (from theta = 0):
    # U (1 - mu z^-1)(1 - z^-1) + wd lr z^-1 U = G (1 - z^-1).
    mu, wd, lr = 0.9, 0.1, 0.5
    ident = identify("torch.optim.SGD", momentum=mu, weight_decay=wd, lr=lr)
    assert ident.parameter_dependent
    assert_filter(ident, [1.0, -1.0], [1.0, -(1.0 + mu - wd * lr), mu])


# ----------------------------------------------------------------------------- nonlinear / time-varying


def test_adam_is_nonlinear_and_time_varying() -> None:
    ident = identify("torch.optim.Adam", small_signal=False)
    assert not ident.linear and not ident.time_invariant
    assert ident.b is None and ident.a is None and ident.poles is None and ident.zeros is None
    assert ident.visible is None
    # Adam's first update is lr * sign(g): a delayed impulse is damped by the bias corrections instead.
    assert ident.linearity.details["scale_degree"] == pytest.approx(0.0, abs=1e-6)
    assert any("scale-invariant" in n for n in ident.notes)
    assert any("time-varying" in n for n in ident.notes)
    with pytest.raises(IdentificationError, match="no LTI filter"):
        ident.to_filter()
    data = json.loads(json.dumps(ident.as_dict(), allow_nan=False))
    assert data["b"] is None and data["poles"] is None and data["linear"] is False


def test_adam_small_signal_part_shows_its_two_emas() -> None:
    # Around a constant gradient G (t -> inf, eps negligible): m -> G, v -> G^2 and
    # du = dm / |G| - G dv / (2 |G|^3) with dm = EMA_b1(dg), dv = 2 G EMA_b2(dg):
    # H = [EMA_b1 - EMA_b2] / |G| = (b2 - b1)(1 - z^-1) / ((1 - b1 z^-1)(1 - b2 z^-1)) / |G|.
    b1, b2 = 0.8, 0.99
    ident = identify("torch.optim.Adam", betas=(b1, b2), max_background=4096)
    part = ident.visible
    assert part is not None and part.filter is not None
    expected = ArmaFilter.ema(b1) - ArmaFilter.ema(b2)
    assert freq_deviation(part.filter, expected) < 1e-6
    assert part.orders == (2, 1)
    assert part.dominant is not None and part.dominant.isclose(ArmaFilter.ema(b1), rtol=1e-6, atol=1e-8)
    assert part.components[1].isclose(-ArmaFilter.ema(b2), rtol=1e-5, atol=1e-7)
    assert part.background_update == pytest.approx(1.0, abs=1e-7)
    assert abs(part.filter.dc_gain) < 1e-6
    assert any("zero at z = 1" in n for n in ident.notes)
    # Like-for-like with the catalogue's Adam (its executor probed the same way).
    assert ident.compare("adam").match


def test_rmsprop_is_nonlinear_shift_invariant_with_a_highpass_small_signal_part() -> None:
    # v = a v + (1 - a) g^2, u = g / sqrt(v): around g = 1, v = 1: du = dg - dv / 2,
    # dv = 2 EMA_a(dg)  =>  H = 1 - EMA_a = a (1 - z^-1) / (1 - a z^-1).
    alpha = 0.9
    ident = identify("torch.optim.RMSprop", alpha=alpha, max_background=2048)
    assert not ident.linear
    assert ident.time_invariant  # no step counter: a delayed impulse gives the same response
    assert ident.b is None
    part = ident.visible
    assert part is not None and part.filter is not None
    expected = ArmaFilter([alpha, -alpha], [1.0, -alpha])
    assert freq_deviation(part.filter, expected) < 1e-6
    assert part.drift is not None and part.drift < 1e-6
    assert part.previous_background_steps is not None and part.previous_background_steps < part.background_steps
    # Small steps on the background: the step response of the same high-pass, alpha^(k+1).
    k = np.arange(part.step_response.size)
    assert np.allclose(part.step_response, alpha ** (k + 1), atol=1e-6)
    assert part.step_discrepancy < 1e-6


def test_adagrad_is_nonlinear_and_its_small_signal_gain_keeps_falling() -> None:
    # u = g / (sqrt(S) + eps), S = sum g^2; after W unit gradients a perturbation at step W + 1 gives
    # du/dg = 1 / sqrt(W + 1) - 1 / (W + 1)^(3/2), a gain that falls like W^-1/2: no t -> inf limit.
    ident = identify("torch.optim.Adagrad", max_background=4096)
    assert not ident.linear and ident.time_invariant
    part = ident.visible
    assert part is not None
    w = part.background_steps
    assert part.response[0] == pytest.approx(1 / math.sqrt(w + 1) - (w + 1) ** -1.5, rel=1e-6)
    assert part.gain_exponent == pytest.approx(-0.5, abs=0.01)
    assert part.drift is not None and part.drift > 0.2
    # The mechanism is a hypothesis; the measurement (the exponent) is what the note states.
    assert any("steps^-0.50" in n and "hypothesis: a gain that keeps changing" in n for n in ident.notes)


def test_adagrad_lr_decay_is_time_varying() -> None:
    ident = identify("torch.optim.Adagrad", lr_decay=0.1, small_signal=False)
    assert not ident.linear and not ident.time_invariant and ident.transient_steps is None


def test_sign_updates_are_reported_as_magnitude_independent() -> None:
    ident = identify(opts.SignMomentum, momentum=0.9, max_background=1024)
    assert not ident.linear
    assert any("magnitude-independent" in n for n in ident.notes)
    assert ident.visible is not None and ident.visible.filter is None
    assert np.all(ident.visible.response == 0.0)
    assert any("small-signal response zero" in n for n in ident.notes)


# ----------------------------------------------------------------------------- custom optimizers


def test_custom_cascaded_emas_identified_exactly() -> None:
    b1, b2 = 0.8, 0.5
    ident = identify(opts.CascadedEma, beta1=b1, beta2=b2)
    assert ident.linear and ident.time_invariant and ident.orders == (2, 0)
    assert_filter(ident, [(1 - b1) * (1 - b2)], np.convolve([1.0, -b1], [1.0, -b2]))
    assert np.allclose(np.sort(ident.poles.real), [b2, b1], atol=EXACT)


def test_custom_resonator_identified_exactly() -> None:
    r, w = 0.95, 0.3
    ident = identify(opts.Resonator, radius=r, omega=w)
    assert_filter(ident, [1.0], [1.0, -2 * r * math.cos(w), r * r])
    poles = np.sort_complex(ident.poles)
    assert np.allclose(poles, np.sort_complex(r * np.exp([-1j * w, 1j * w])), atol=EXACT)


def test_optimizer_that_needs_a_closure() -> None:
    ident = identify(opts.ClosureMomentum, momentum=0.7)
    assert ident.closure
    assert_filter(ident, [1.0], [1.0, -0.7])


def test_duck_typed_optimizer_and_factory() -> None:
    duck = identify(opts.DuckSGD, lr=0.5)
    assert duck.lr == 0.5
    assert_filter(duck, [1.0], [1.0])
    assert any("not a torch.optim.Optimizer subclass" in n for n in duck.notes)
    factory = identify(opts.not_a_class)
    assert_filter(factory, [1.0], [1.0, -0.25])


def test_marginal_accumulator_json_has_no_infinities() -> None:
    ident = identify(opts.Accumulator)
    assert_filter(ident, [1.0], [1.0, -1.0])
    data = ident.as_dict()
    assert data["dc_gain"] is None and data["stability"] == "marginal"
    json.dumps(data, allow_nan=False)


def test_state_outside_state_dict_falls_back_to_replayed_copies() -> None:
    # The counter lives on the instance, so a copy made through state_dict() restarts the bias
    # correction; the check against the original catches it and the copies are replayed instead.
    beta = 0.5
    ident = identify(opts.HiddenCounterEma, beta=beta, max_background=1024)
    assert ident.linear and not ident.time_invariant and ident.transient_steps is None
    part = ident.visible
    assert part is not None and part.fork == "replay"
    assert part.filter is not None and freq_deviation(part.filter, ArmaFilter.ema(beta)) < 1e-7


# ----------------------------------------------------------------------------- the PID audit


PID_HP = {"kp": 1.0, "ki": 2.0, "kd": 3.0, "momentum": 0.8, "dampening": 0.1}


def test_pid_audit_correct_pid_matches_the_catalogue() -> None:
    kp, ki, kd, beta, d = (PID_HP[k] for k in ("kp", "ki", "kd", "momentum", "dampening"))
    ident = identify(opts.PID, **PID_HP)
    # kp + ki (1-d) / (1 - beta z^-1) + kd (1 - beta)(1 - z^-1) / (1 - beta z^-1)
    assert_filter(ident, [kp + ki * (1 - d) + kd * (1 - beta), -(kp * beta + kd * (1 - beta))], [1.0, -beta])
    for reference in ("pid", optfilters.get("pid", **PID_HP), optfilters.get("pid", **PID_HP).direction_filter()):
        comparison = ident.compare(reference)
        assert comparison.match, comparison.summary()
        assert comparison.relative_deviation < 1e-12


def test_pid_audit_derivative_that_integrates_is_caught() -> None:
    kp, ki, kd, beta, d = (PID_HP[k] for k in ("kp", "ki", "kd", "momentum", "dampening"))
    ident = identify(opts.PID, buggy=True, **PID_HP)
    # g_prev stays 0, so D = (1 - beta) / (1 - beta z^-1) g: kp + (ki (1-d) + kd (1-beta)) / (1 - beta z^-1).
    assert_filter(ident, [kp + ki * (1 - d) + kd * (1 - beta), -kp * beta], [1.0, -beta])
    comparison = ident.compare(optfilters.get("pid", **PID_HP))
    assert not comparison.match
    # Same pole, different zero; the DC gain is off by exactly kd (a derivative has none).
    assert comparison.pole_distance < 1e-9
    assert comparison.zero_distance > 0.1
    assert comparison.dc_gain[0] - comparison.dc_gain[1] == pytest.approx(kd, rel=1e-9)
    reference_nyquist = kp + ki * (1 - d) / (1 + beta) + 2 * kd * (1 - beta) / (1 + beta)
    assert comparison.nyquist_gain[1] == pytest.approx(reference_nyquist, rel=1e-9)
    text = comparison.summary()
    assert text.startswith("DIFFERENT")
    assert "DC gain differs" in text and "zeros differ" in text and "poles agree" in text
    assert comparison.deviation_frequency == 0.0
    assert json.loads(json.dumps(comparison.as_dict(), allow_nan=False))["match"] is False


# ----------------------------------------------------------------------------- catalogue models


@pytest.mark.parametrize(
    ("name", "hp"),
    [
        ("qhm", {"nu": 0.7, "beta": 0.9}),
        ("aggmo", {"betas": (0.0, 0.9, 0.99)}),
        ("nesterov", {"momentum": 0.6}),
        ("pid", {"kp": 0.5, "ki": 1.0, "kd": 2.0, "momentum": 0.5}),
        ("butterworth", {"order": 3, "cutoff": 0.1}),
    ],
)
def test_identifying_linear_catalogue_models_recovers_their_direction_filter(name, hp) -> None:
    model = optfilters.get(name, **hp)
    ident = identify(model)
    assert ident.linear and ident.time_invariant
    assert freq_deviation(ident.to_filter(), model.direction_filter()) < 1e-8


def test_grokfast_first_step_init_is_a_one_step_transient() -> None:
    model = optfilters.get("grokfast", alpha=0.9, lamb=2.0)
    ident = identify(model)
    assert ident.linear and ident.transient_steps == 1
    assert freq_deviation(ident.to_filter(), model.direction_filter()) < 1e-8


def test_catalogue_model_translates_torch_keywords() -> None:
    assert catalogue_model("adam", {"betas": (0.8, 0.99), "fused": None}).hyperparameters["beta2"] == 0.99
    assert catalogue_model("nesterov", {"momentum": 0.5, "nesterov": True}).hyperparameters["momentum"] == 0.5
    with pytest.raises(optfilters.InvalidHyperparameterError, match="no hyperparameter 'buggy'"):
        catalogue_model("pid", {"buggy": True})


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no_such_package_xyz.Opt", r"cannot import 'no_such_package_xyz.Opt': no module named 'no_such_package_xyz'"),
        ("torch.optim.Adma", r"module 'torch.optim' has no attribute 'Adma'; did you mean 'Adam'"),
        ("torch.optim", r"'torch.optim' is not an optimizer class \(it is a module\)"),
        ("collections.OrderedDict", r"not an optimizer class: it has no step\(\) method"),
        ("not a path", r"must be a dotted path"),
        ("torch..SGD", r"must be a dotted path"),
    ],
)
def test_bad_paths_give_one_line_errors(path, message) -> None:
    with pytest.raises(IdentificationError, match=message) as info:
        identify(path)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_failing_constructor_and_step_give_one_line_errors() -> None:
    with pytest.raises(
        IdentificationError, match=r"torch.optim.SGD\(lr=-1\) failed: ValueError: Invalid learning rate"
    ):
        identify("torch.optim.SGD", lr=-1)
    with pytest.raises(IdentificationError, match=r"unexpected keyword argument 'momentun'"):
        identify("torch.optim.SGD", momentun=0.9)
    with pytest.raises(IdentificationError, match=r"Exploding.step\(\) failed: RuntimeError: kaboom in step"):
        identify(opts.Exploding)
    with pytest.raises(IdentificationError, match="non-finite update"):
        identify("torch.optim.Adam", eps=0.0)
    with pytest.raises(IdentificationError, match=r"lr must be a finite non-zero number.*got 0"):
        identify("torch.optim.SGD", lr=0.0)
    with pytest.raises(IdentificationError, match=r"must be a dotted path"):
        identify(42)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 10}, r"steps must be in \[48, 1000000\], got 10"),
        ({"max_order": -1}, r"max_order must be in \[0, 16\], got -1"),
        ({"tol": 2.0}, r"tol must be in \(0, 1\], got 2.0"),
        ({"perturbation": 0.5}, r"perturbation must be in \(0, 0.1\], got 0.5"),
        ({"dtype": "int8"}, r"dtype must be 'float64' or 'float32'"),
        ({"options": {"momentum": 0.9}, "momentum": 0.5}, r"option 'momentum' given twice"),
    ],
)
def test_bad_settings(kwargs, message) -> None:
    with pytest.raises(IdentificationError, match=message):
        identify("torch.optim.SGD", **kwargs)


def test_resolve_optimizer_accepts_colon_form() -> None:
    assert resolve_optimizer("torch.optim:Adam") is torch.optim.Adam


# ----------------------------------------------------------------------------- probe and fit


def test_probe_records_updates_per_unit_lr() -> None:
    # torch Nesterov: buf = mu buf + g, u = g + mu buf.  Impulse: u = 1 + mu, then mu^k (mu) ...
    u = probe("torch.optim.SGD", [1.0, 0.0, 0.0], momentum=0.5, nesterov=True, lr=0.1)
    assert u.tolist() == pytest.approx([1.5, 0.25, 0.125], rel=1e-12)
    u32 = probe("torch.optim.SGD", [1.0, 0.0], momentum=0.5, dtype="float32")
    assert u32.tolist() == pytest.approx([1.0, 0.5], rel=1e-6)


def test_float32_identification_is_close() -> None:
    ident = identify("torch.optim.SGD", momentum=0.9, dtype="float32")
    assert ident.linear and ident.time_invariant
    assert ident.to_filter().isclose(ArmaFilter([1.0], [1.0, -0.9]), rtol=1e-4, atol=1e-4)


stable_pole = st.floats(-0.9, 0.9).filter(lambda x: abs(x) > 0.05)


coefficient = st.floats(-2.0, 2.0).filter(lambda x: abs(x) > 0.1)


@settings(max_examples=40, deadline=None)
@given(
    poles=st.lists(stable_pole, min_size=0, max_size=2),
    zeros=st.lists(st.floats(-1.5, 1.5), min_size=0, max_size=2),
    gain=coefficient,
    seed=st.integers(0, 2**16),
)
def test_fit_arma_recovers_any_stable_real_pole_zero_filter(poles, zeros, gain, seed) -> None:
    # Keep the roots apart so that the order is identifiable (no near pole-zero cancellation).
    roots = poles + zeros
    if any(abs(r - s) < 0.05 for i, r in enumerate(roots) for s in roots[i + 1 :]):
        return
    if any(abs(z) < 0.05 for z in zeros):
        return
    b = gain * np.poly(zeros) if zeros else np.array([gain])
    a = np.poly(poles) if poles else np.array([1.0])
    x = np.random.default_rng(seed).standard_normal(200)
    fit = fit_arma(x, signal.lfilter(b, a, x), max_order=3)
    assert fit.orders == (len(poles), len(zeros))
    assert freq_deviation(fit.to_filter(), ArmaFilter(b, a)) < 1e-8


def test_fit_arma_start_skips_a_transient_and_checks_inputs() -> None:
    x = np.random.default_rng(3).standard_normal(100)
    y = signal.lfilter([0.5], [1.0, -0.9], x)
    y[0] = x[0]  # a first-step quirk, as torch SGD with dampening
    assert fit_arma(x, y).residual > 1e-6
    fit = fit_arma(x, y, start=3)
    assert fit.to_filter().isclose(ArmaFilter([0.5], [1.0, -0.9]), rtol=1e-10, atol=1e-12)
    with pytest.raises(IdentificationError, match="input has 3 samples but output has 2"):
        fit_arma([1.0, 0.0, 0.0], [1.0, 0.0])
    with pytest.raises(IdentificationError, match="max_order must be in"):
        fit_arma(x, y, max_order=-1)


def test_compare_with_an_explicit_filter_and_bad_references() -> None:
    ident = identify("torch.optim.SGD", momentum=0.9)
    same = ident.compare(ArmaFilter.leaky_integrator(0.9))
    assert same.match and same.pole_distance < 1e-12
    other = ident.compare(ArmaFilter.leaky_integrator(0.8))
    assert not other.match
    assert other.dc_gain[0] == pytest.approx(10.0) and other.dc_gain[1] == pytest.approx(5.0)
    assert "poles differ" in other.summary()
    with pytest.raises(IdentificationError, match="reference must be"):
        ident.compare(3.0)  # type: ignore[arg-type]
    with pytest.raises(optfilters.UnknownNameError):
        ident.compare("momentumm")


pytest.importorskip("torch")


AUDIT = str(ROOT / "tests/support/optimizers_for_audit.py")


SMALL = {"dither_records": 4, "dither_steps": 1024, "max_background": 1024}


# ----------------------------------------------------------------------------- sign-type


@pytest.fixture(scope="module")
def signums():
    return identify(f"{AUDIT}:Signum", **SMALL), identify(f"{AUDIT}:SignumReset", **SMALL)


def test_correct_and_reset_signum_are_told_apart(signums) -> None:
    good, reset = signums
    for ident in signums:  # both look the same to the linearity probes and the small-signal part ...
        assert ident.verdict == "sign-type" and ident.bla is not None and ident.bla.sign_magnitude == 1.0
    # ... the dither BLA shows the EMA pole in front of the sign, and its absence when the buffer is reset.
    assert good.bla.orders == (1, 0) and abs(good.bla.poles[0] - 0.9) <= 4 * good.bla.pole_errors[0] + 2e-3
    assert reset.bla.memoryless
    assert not good.bla.matches(reset.bla)
    assert (
        re.search(r"poles \[0\.(89|90)\d* ±", good.summary()) and "no memory before the nonlinearity" in reset.summary()
    )


def test_signum_compares_with_lion_at_beta1_equal_beta2(signums) -> None:
    good, reset = signums
    mapping = {"momentum": ("beta1", "beta2")}  # Lion with beta1 = beta2 = beta is Signum
    same = good.compare("lion", mapping=mapping)
    assert same.match and same.what == "best linear approximation"
    assert any("momentum -> beta1 = 0.9 (mapping)" in d for d in same.differences)
    other = reset.compare("lion", mapping=mapping)
    assert not other.match
    assert any("NOT within 4 combined standard errors" in d for d in other.differences)


def test_pytorch_optimizer_lion_matches_the_catalogue_and_maps_its_keywords() -> None:
    pytest.importorskip("pytorch_optimizer")
    ident = identify("pytorch_optimizer.Lion", **SMALL)
    c = ident.compare("lion")
    assert c.match
    mapped = {m[0]: m[1] for m in c.keywords.mapped}
    assert mapped["betas[0]"] == "beta1" and mapped["betas[1]"] == "beta2" and mapped["weight_decay"] == "weight_decay"
    assert "weight_decouple" in c.keywords.unmapped
    # Lion's pre-sign filter ((1 - b1) + (b1 - b2) z^-1) / (1 - b2 z^-1): pole b2 = 0.99, zero (b2 - b1)/(1 - b1) = 0.9.
    bla = ident.bla
    assert abs(bla.poles[0] - 0.99) <= 4 * bla.pole_errors[0] + 2e-3
    k = int(np.argmax(np.abs(bla.zeros)))
    assert abs(bla.zeros[k] - 0.9) <= 4 * bla.zero_errors[k] + 5e-3


def test_sophia_style_optimizer_needs_the_autograd_graph_and_is_sign_type() -> None:
    pytest.importorskip("pytorch_optimizer")
    ident = identify("pytorch_optimizer.SophiaH", dither_records=3, dither_steps=768, max_background=1024)
    assert any("autograd graph" in n for n in ident.notes)
    assert ident.verdict == "sign-type"  # zero Hessian: sign(m) min(|m| / max(rho h, eps), 1) always clips


# ----------------------------------------------------------------------------- matrix and sparse


def test_torch_muon_is_identified_on_a_matrix() -> None:
    ident = identify("torch.optim.Muon", **SMALL)
    assert ident.layout == "matrix" and ident.shape == (4, 8) and ident.verdict == "matrix"
    assert ident.matrix is not None and ident.matrix.orthogonalising
    assert any("Muon only supports 2D parameters" in n for n in ident.notes)
    # torch/optim/_muon.py: buf.lerp_(g, 1 - mu); update = g.lerp(buf, mu): (1 - mu)((1 + mu) - mu z^-1)/(1 - mu z^-1).
    bla = ident.bla
    assert bla.orders == (1, 1)
    assert abs(bla.poles[0] - 0.95) <= 4 * bla.pole_errors[0] + 2e-3
    k = int(np.argmax(np.abs(bla.zeros)))
    assert abs(bla.zeros[k] - 0.95 / 1.95) <= 4 * bla.zero_errors[k] + 5e-3
    # Default weight decay 0.1 makes the updates depend on theta: the dither runs at 1e-3 x lr.
    assert ident.parameter_dependent and bla.lr == pytest.approx(1e-3)


def test_matrix_only_optimizer_of_our_own() -> None:
    ident = identify(f"{AUDIT}:OrthogonalMomentum", **SMALL)
    assert ident.verdict == "matrix" and abs(ident.bla.poles[0] - 0.8) <= 4 * ident.bla.pole_errors[0] + 2e-3


def test_sparse_adam_is_identified_with_sparse_gradients() -> None:
    ident = identify("torch.optim.SparseAdam", **SMALL)
    assert ident.layout == "sparse" and ident.verdict == "normalised"
    assert ident.events is not None and ident.events.event_clocked
    assert "with sparse gradients" in ident.summary().splitlines()[0]


def test_layout_can_be_forced_and_is_checked() -> None:
    assert identify("torch.optim.SGD", layout="matrix", momentum=0.5).a[1] == pytest.approx(-0.5)
    with pytest.raises(IdentificationError, match="layout must be"):
        identify("torch.optim.SGD", layout="cube")
    with pytest.raises(IdentificationError, match="SparseAdam does not support dense gradients"):
        identify("torch.optim.SparseAdam", layout="scalar")


# ----------------------------------------------------------------------------- resolving


def test_file_path_with_class(tmp_path: Path) -> None:
    assert resolve_optimizer(f"{AUDIT}:Signum").__name__ == "Signum"
    with pytest.raises(IdentificationError, match="no such file"):
        resolve_optimizer(str(tmp_path / "missing.py") + ":X")
    with pytest.raises(IdentificationError, match="has no attribute 'Signun'; did you mean 'Signum'"):
        resolve_optimizer(f"{AUDIT}:Signun")
    bad = tmp_path / "needs_dep.py"
    bad.write_text("import not_installed_pkg_xyz\n")
    with pytest.raises(IdentificationError, match=r"pip install not_installed_pkg_xyz"):
        resolve_optimizer(f"{bad}:X")
    sibling = tmp_path / "helper_mod_i15.py"
    sibling.write_text("import torch\nclass Opt(torch.optim.SGD):\n    pass\n")
    user = tmp_path / "user_opt_i15.py"
    user.write_text("from helper_mod_i15 import Opt\n")  # sibling import works from the file's folder
    assert resolve_optimizer(f"{user}:Opt").__name__ == "Opt"


def test_local_module_not_on_the_path_says_what_to_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "local_opt_i15.py").write_text("import torch\nclass Mine(torch.optim.SGD):\n    pass\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(IdentificationError, match=re.escape("give local_opt_i15.py:Mine or set PYTHONPATH=.")):
        resolve_optimizer("local_opt_i15.Mine")
    with pytest.raises(IdentificationError, match=r"pip install pytorch-optimizer|has no attribute"):
        resolve_optimizer("pytorch_optimizer.NoSuchThing")


# ----------------------------------------------------------------------------- keyword mapping


def test_keyword_mapping_rules() -> None:
    m = map_keywords("qhadam", {"nus": (0.8, 0.9)}, {"betas": (0.9, 0.999), "eps": 1e-8, "foreach": None})
    assert m.kwargs == {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "nu1": 0.8, "nu2": 0.9}
    assert m.switches == ("foreach",)
    assert ("nus[0]", "nu1", 0.8, "given") in m.mapped and ("eps", "eps", 1e-8, "default") in m.mapped
    assert map_keywords("nesterov", {"nesterov": True, "momentum": 0.5}).fixed == ("nesterov",)
    # A default the entry refuses is left out; a given one is an error.
    assert "momentum" in map_keywords("lion", None, {"momentum": 0.9}).unmapped
    # Synonyms when the entry lacks the keyword: pytorch-optimizer's QHM calls beta "momentum".
    assert map_keywords("qhm", {"momentum": 0.5}).kwargs == {"beta": 0.5}
    assert map_keywords("pid", {"derivative": 3.0, "integral": 2.0}).kwargs == {"kd": 3.0, "ki": 2.0}
    assert map_keywords("adam", None, {"betas": (1.5, 0.9)}).unmapped == ("betas",)
    with pytest.raises(optfilters.InvalidHyperparameterError, match="beta1 must be"):
        map_keywords("adam", {"betas": (1.5, 0.9)})
    with pytest.raises(optfilters.InvalidHyperparameterError, match="has no hyperparameter 'beta9'"):
        map_keywords("lion", {}, mapping={"momentum": "beta9"})


def test_lerp_and_sum_momentum_are_the_same_filter_up_to_the_dc_gain() -> None:
    lerp = identify(f"{AUDIT}:LerpMomentum")
    total = identify(f"{AUDIT}:SumMomentum")
    assert lerp.poles[0] == pytest.approx(0.9) and total.poles[0] == pytest.approx(0.9)
    assert lerp.to_filter().dc_gain == pytest.approx(1.0) and total.to_filter().dc_gain == pytest.approx(10.0)
    assert total.compare("momentum").match  # torch SGD's sum form
    c = lerp.compare("momentum")
    assert not c.match and any("DC gain differs: identified 1 vs reference 10" in d for d in c.differences)


# ----------------------------------------------------------------------------- honest notes


MECHANISMS = (
    r"\bnormalis",
    r"\baccumulator",
    r"\bbias correction",
    r"\bsign\b",
    r"\bweight decay",
    r"\bschedule",
    r"\bwarm-up",
)


@pytest.mark.parametrize("path", ["torch.optim.Rprop", "torch.optim.ASGD", "torch.optim.Adagrad", "torch.optim.Adam"])
def test_notes_name_mechanisms_only_as_hypotheses(path) -> None:
    ident = identify(path, max_background=2048, dither_records=3, dither_steps=512)
    for note in ident.notes:
        lowered = note.lower()
        assert re.search(r"\d", note), note  # every note carries a measured number
        named = [m for m in MECHANISMS if re.search(m, lowered)]
        if named and "hypothesis" not in lowered:
            # A mechanism may only appear inside the measurement's own wording (e.g. "a sign-type output").
            assert all("sign" in m and "sign-type" in lowered for m in named), note
    text = " ".join(ident.notes)
    assert "a normaliser divides by a running estimate" not in text
    assert "an ever-growing accumulator, as Adagrad's sum" not in text


def test_rprop_is_sign_type_and_asgd_linear_time_varying() -> None:
    assert identify("torch.optim.Rprop", max_background=1024, dither=None).verdict == "sign-type"
    asgd = identify("torch.optim.ASGD", max_background=1024)
    assert asgd.verdict == "linear time-varying" and asgd.bla is None
    # Its first updates per unit impulse shrink like torch's eta_t = lr / (1 + lambd lr t)^alpha (lambd 1e-4).
    firsts = asgd.time_invariance.details["first_updates"]
    expected = [1.0 / (1.0 + 1e-4 * (s - 1)) ** 0.75 for s in (1, 2, 3, 5, 9, 17)]
    np.testing.assert_allclose(firsts, expected, rtol=1e-6)  # eta is a float32 tensor in torch


def test_non_finite_update_names_the_probe_and_step() -> None:
    with pytest.raises(NonFiniteUpdate) as info:
        identify("torch.optim.Adam", eps=0.0)
    assert info.value.gradient == 0.0 and info.value.probe.startswith("impulse@")
    assert "0/0 on a zero gradient" in str(info.value)
    with pytest.raises(NonFiniteUpdate):
        probe("torch.optim.Adam", [0.0], eps=0.0)


def test_a_step_that_does_not_return_is_interrupted_at_the_deadline() -> None:
    """Issue 13: a step() that sleeps hung identify forever (the deadline was checked between steps only).
    Inside ``interruptible`` it is interrupted by SIGALRM at the deadline, even under ``except Exception``;
    the previous SIGALRM handler and a pending outer timer are restored."""
    import signal
    import time
    import types

    from optfilters.identify import ProbeTimeout, _Target

    fake = types.SimpleNamespace(
        name="Sleeps", time_limit=0.2, deadline=time.monotonic() + 0.2, steps_taken=0, tick=lambda: None
    )
    outer_handler = signal.signal(signal.SIGALRM, signal.SIG_IGN)
    signal.setitimer(signal.ITIMER_REAL, 50.0)
    started = time.monotonic()
    try:
        with pytest.raises(ProbeTimeout, match=r"time limit of 0\.2 s reached inside a step\(\) that had not"):
            with _Target.interruptible(fake):  # type: ignore[arg-type]
                try:
                    time.sleep(30)
                except Exception:  # foreign code swallowing everything
                    time.sleep(30)
        assert time.monotonic() - started < 10
        assert signal.getsignal(signal.SIGALRM) is signal.SIG_IGN
        assert 30.0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 50.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, outer_handler)
