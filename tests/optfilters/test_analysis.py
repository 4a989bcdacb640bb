"""Analysis results against hand-derived closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

import optfilters
from optfilters import ArmaFilter
from optfilters.analysis import time_constant
from optfilters.closed_loop import closed_loop
from optfilters.describing_function import sign_loop
from optfilters.noisy_quadratic import lr_sequence

betas = st.floats(0.0, 0.995)


@settings(max_examples=30, deadline=None)
@given(betas)
def test_ema_step_and_bias_corrected_step(beta: float) -> None:
    n = 40
    s = optfilters.step_response(ArmaFilter.ema(beta), n)
    steps = np.arange(1, n + 1)
    # lecture: s[n] = 1 - beta^(n+1) with n from 0, i.e. 1 - beta^t at step t
    np.testing.assert_allclose(s.raw, 1 - beta**steps, atol=1e-12)
    np.testing.assert_allclose(s.bias_corrected, np.ones(n), atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(betas)
def test_unit_input_gain_ar1_step(beta: float) -> None:
    s = optfilters.step_response(ArmaFilter.leaky_integrator(beta), 30)
    t = np.arange(1, 31)
    np.testing.assert_allclose(s.raw, (1 - beta**t) / (1 - beta), rtol=1e-10)
    np.testing.assert_allclose(s.bias_corrected, np.full(30, 1 / (1 - beta)), rtol=1e-10)


def test_adam_gradient_stage_is_exactly_one_from_the_first_step() -> None:
    adam = optfilters.get("adam", beta1=0.9)
    s = optfilters.step_response(adam.gradient, 25)
    assert s.applied
    np.testing.assert_allclose(s.actual, np.ones(25), atol=1e-14)
    momentum = optfilters.get("momentum", momentum=0.9)
    ramp = optfilters.step_response(momentum.gradient, 2000)
    assert not ramp.applied
    assert ramp.actual[-1] == pytest.approx(1 / (1 - 0.9), rel=1e-9)  # reaches 1/(1-mu)


@settings(max_examples=30, deadline=None)
@given(st.floats(0.01, 0.99))
def test_nesterov_pole_and_zero(mu: float) -> None:
    f = optfilters.get("nesterov", momentum=mu).filters()["gradient"]
    assert f.poles.real == pytest.approx([mu])
    assert f.zeros.real == pytest.approx([mu / (1 + mu)])
    assert f.dc_gain == pytest.approx(1 / (1 - mu))


@settings(max_examples=30, deadline=None)
@given(st.floats(0.01, 0.99), st.floats(0.0, 0.99))
def test_momentum_dc_gain_with_dampening(mu: float, damp: float) -> None:
    # (torch ignores dampening when momentum is 0: no buffer at all)
    f = optfilters.get("momentum", momentum=mu, dampening=damp).filters()["gradient"]
    assert f.dc_gain == pytest.approx((1 - damp) / (1 - mu))


def test_torch_sgd_first_step_quirk_in_step_response() -> None:
    # buf_1 = g_1 (not (1-d) g_1); afterwards buf = mu buf + (1-d) g
    m = optfilters.get("momentum", momentum=0.5, dampening=0.5)
    raw = optfilters.step_response(m.gradient, 3).raw
    assert raw.tolist() == pytest.approx([1.0, 0.5 * 1.0 + 0.5, 0.5 * 1.0 + 0.5])


@settings(max_examples=30, deadline=None)
@given(st.floats(0.5, 0.95), st.floats(0.96, 0.999))
def test_lion_filter_zero_pole_and_qhm_form(beta1: float, beta2: float) -> None:
    f = optfilters.get("lion", beta1=beta1, beta2=beta2).filters()["gradient"]
    assert f.poles.real == pytest.approx([beta2])
    assert f.zeros.real == pytest.approx([(beta2 - beta1) / (1 - beta1)])
    qh = optfilters.quasi_hyperbolic_form(f)
    assert (qh.alpha, qh.beta, qh.nu) == pytest.approx((1.0, beta2, beta1 / beta2))


def test_adagrad_summer_is_marginal() -> None:
    f = optfilters.get("adagrad").filters()["second_moment"]
    assert f.poles.real == pytest.approx([1.0])
    assert f.stability == "marginal"
    assert math.isinf(f.dc_gain)
    assert math.isinf(optfilters.noise_gain(f))


@settings(max_examples=30, deadline=None)
@given(st.floats(0.0, 0.99))
def test_noise_gain_and_mean_delay_of_ema(beta: float) -> None:
    f = ArmaFilter.ema(beta)
    assert optfilters.noise_gain(f) == pytest.approx((1 - beta) / (1 + beta), rel=1e-9)
    assert optfilters.mean_delay(f) == pytest.approx(beta / (1 - beta), rel=1e-9, abs=1e-12)


@settings(max_examples=20, deadline=None)
@given(st.floats(0.3, 0.99))
def test_cutoff_of_ema_closed_form(beta: float) -> None:
    # |H|^2 = (1-b)^2 / (1 - 2 b cos w + b^2) = 1/2  =>  cos w = (1 + b^2 - 2 (1-b)^2) / (2 b)
    cos_w = (1 + beta**2 - 2 * (1 - beta) ** 2) / (2 * beta)
    expected = math.acos(cos_w) / (2 * math.pi)
    assert optfilters.cutoff_frequency(ArmaFilter.ema(beta)) == pytest.approx(expected, rel=1e-8)


def test_noise_gain_matches_impulse_response_energy() -> None:
    f = optfilters.get("butterworth", order=4, cutoff=0.05, dc_gain=1.0).filters()["gradient"]
    h = f.impulse_response(5000)
    assert optfilters.noise_gain(f) == pytest.approx(float(np.sum(h**2)), rel=1e-9)


def test_quasi_hyperbolic_forms() -> None:
    grok = optfilters.quasi_hyperbolic_form(optfilters.get("grokfast").filters()["gradient"])
    assert grok.alpha == pytest.approx(3.0)  # Grokfast's default triples the effective lr
    assert grok.nu == pytest.approx(2.0 / 3.0)
    nesterov = optfilters.quasi_hyperbolic_form(optfilters.get("nesterov", momentum=0.9).filters()["gradient"])
    assert (nesterov.alpha, nesterov.beta, nesterov.nu) == pytest.approx((10.0, 0.9, 0.9))
    qhm = optfilters.get("qhm", nu=0.7, beta=0.999).filters()["gradient"]
    assert optfilters.quasi_hyperbolic_form(qhm).as_dict() == pytest.approx({"alpha": 1.0, "beta": 0.999, "nu": 0.7})
    # PID with kp=1, ki=5, kd=10, beta=0.9: DC gain 1 + 5 / 0.1 = 51
    pid = optfilters.quasi_hyperbolic_form(optfilters.get("pid").filters()["gradient"])
    assert pid.alpha == pytest.approx(51.0)
    with pytest.raises(optfilters.InvalidFilterError, match="one-pole"):
        optfilters.quasi_hyperbolic_form(optfilters.get("butterworth").filters()["gradient"])


@settings(max_examples=30, deadline=None)
@given(st.floats(0.1, 5.0), st.floats(0.0, 0.99), st.floats(-1.0, 1.0))
def test_quasi_hyperbolic_form_round_trip(alpha: float, beta: float, nu: float) -> None:
    f = optfilters.QuasiHyperbolicForm(alpha, beta, nu).to_filter()
    back = optfilters.quasi_hyperbolic_form(f)
    assert back.alpha == pytest.approx(alpha, rel=1e-9)
    if beta > 1e-6:
        assert back.nu == pytest.approx(nu, rel=1e-6, abs=1e-6)


def test_frequency_response_units_and_phase() -> None:
    r = optfilters.frequency_response(ArmaFilter([1.0], [1.0, -0.9]), n=5)
    assert r.freqs.tolist() == [0.0, 0.125, 0.25, 0.375, 0.5]
    assert r.magnitude_db[0] == pytest.approx(20.0)
    z = np.exp(2j * np.pi * r.freqs)
    np.testing.assert_allclose(r.response, 1 / (1 - 0.9 / z))
    # group delay at DC equals the mean delay mu/(1-mu) for the unit-input-gain AR1
    assert r.group_delay[0] == pytest.approx(9.0)
    w = 2 * np.pi * r.freqs
    np.testing.assert_allclose(r.phase, -np.arctan2(0.9 * np.sin(w), 1 - 0.9 * np.cos(w)), atol=1e-12)


def test_lowpass_vs_nesterov_high_frequency_attenuation() -> None:
    """The lecture: standard momentum attenuates high frequencies more than Nesterov."""
    mom = optfilters.get("momentum", momentum=0.9).filters()["gradient"]
    nes = optfilters.get("nesterov", momentum=0.9).filters()["gradient"]
    assert abs(mom.nyquist_gain) / mom.dc_gain < abs(nes.nyquist_gain) / nes.dc_gain


def test_impulse_response_of_time_varying_stage_is_exact() -> None:
    nadam = optfilters.get("nadam")
    h = optfilters.impulse_response(nadam.gradient, 5).values
    from optfilters.gains import NadamCurrentGain, NadamMomentumGain

    c1, c2 = NadamCurrentGain(0.9, 4e-3), NadamMomentumGain(0.9, 4e-3)
    m = 0.1 * 0.9 ** np.arange(5)  # EMA impulse response
    expected = np.array([c1.value(1) + c2.value(1) * m[0], *[c2.value(t) * m[t - 1] for t in range(2, 6)]])
    np.testing.assert_allclose(h, expected, rtol=1e-12)


def test_bias_correct_generalises_adams_correction() -> None:
    rng = np.random.default_rng(3)
    x = np.cos(0.05 * np.arange(200)) + 0.5 * rng.normal(size=200)
    m = signal.lfilter([0.1], [1, -0.9], x)
    np.testing.assert_allclose(optfilters.bias_correct(ArmaFilter.ema(0.9), x), m / (1 - 0.9 ** np.arange(1, 201)))


def test_summary_of_a_designed_filter() -> None:
    model = optfilters.get("butterworth", order=2, cutoff=0.05, dc_gain=10)
    s = optfilters.summarise(model.filters()["gradient"])
    assert s.dc_gain == pytest.approx(10.0)
    assert s.cutoff == pytest.approx(0.05, rel=1e-6)  # Butterworth: -3 dB at the design cutoff
    assert s.nyquist_gain == pytest.approx(0.0, abs=1e-12)  # zeros at z = -1
    assert s.stability == "stable" and s.quasi_hyperbolic is None
    assert time_constant(ArmaFilter.ema(0.5)) == pytest.approx(1 / math.log(2))
    d = s.as_dict()
    assert d["stable"] is True and d["order"] == 2


def test_unstable_and_marginal_filters_are_analysed_with_a_warning() -> None:
    with pytest.warns(optfilters.StabilityWarning, match="UNSTABLE"):
        r = optfilters.frequency_response(ArmaFilter([1.0], [1.0, -1.1]), n=4)
    assert r.magnitude[0] == pytest.approx(10.0)  # |1 / (1 - 1.1)|: formal H on the circle
    with pytest.warns(optfilters.StabilityWarning, match="marginally stable"):
        optfilters.frequency_response(optfilters.get("adagrad").filters()["second_moment"], n=4)


# ----------------------------------------------------------------------------- issue 13: stability wording


@pytest.mark.parametrize(
    ("a", "verdict"),
    [
        ([1.0, -2.0, 1.0], "repeated"),  # (1 - z^-1)^2: impulse response t + 1
        ([1.0, 2.0, 1.0], "repeated"),  # (1 + z^-1)^2: (-1)^t (t + 1)
        ([1.0, 0.0, 2.0, 0.0, 1.0], "repeated"),  # (1 + z^-2)^2: double pair at +-j
        ([1.0, -1.1], "outside"),
        ([1.0, -2.0, 1.0000001], "outside"),  # a pair at |p|^2 = 1.0000001
        ([1.0, 0.0, 1.0], "marginal"),  # simple pair at +-j
    ],
)
def test_stability_reason_tells_a_repeated_pole_on_the_circle_from_one_outside(a: list[float], verdict: str) -> None:
    """The wording follows the growth of the impulse response (scipy.signal.lfilter): polynomial (|h[t]| ~ t,
    never geometric) for a repeated pole on the circle, geometric for a pole outside, bounded for simple
    poles on the circle."""
    from optfilters.analysis import stability_reason

    reason = stability_reason(ArmaFilter([1.0], a))
    assert reason is not None
    words = {
        "repeated": "UNSTABLE: repeated pole on the unit circle",
        "outside": "UNSTABLE: pole(s) outside the unit circle",
        "marginal": "marginally stable: pole(s) on the unit circle",
    }[verdict]
    assert reason.startswith(words), reason
    if a == [1.0, -2.0, 1.0000001]:
        return  # its growth e^(5e-8 t) shows only after millions of steps: the exact verdict is the test
    impulse = np.zeros(400)
    impulse[0] = 1.0
    h = np.abs(signal.lfilter([1.0], a, impulse))
    late, early = h[-4:].max(), h[196:200].max()
    if verdict == "repeated":  # |h[t]| ~ t: twice the steps, twice the size
        assert 1.9 < late / early < 2.1
    elif verdict == "outside":
        assert late / early > 1e6
    else:
        assert late == pytest.approx(early)


def test_stability_reason_is_none_for_a_stable_filter_and_warn_if_unstable_says_it() -> None:
    import warnings

    from optfilters.analysis import stability_reason, warn_if_unstable

    assert stability_reason(ArmaFilter.ema(0.9)) is None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_if_unstable(ArmaFilter([1.0], [1.0, -2.0, 1.0]), "double summer")
    assert str(caught[0].message) == (
        "double summer is UNSTABLE: repeated pole on the unit circle (|p| = 1); its response grows polynomially"
    )


# ----------------------------------------------------------------------------- extreme scales, poles on the circle

#: ``1 / (1 - 0.5 z^-1)``: ``|H|^2 = 1 / (1.25 - cos w)`` falls to half its DC value where ``cos w = 0.75``.
HALF_POLE_CUTOFF = math.acos(0.75) / (2.0 * math.pi)


@settings(max_examples=40, deadline=None)
@given(st.integers(-1074, 1023), st.sampled_from([1.0, 1.5, 1.9999999999999998]))
def test_scale_free_facts_do_not_depend_on_the_scale_of_b(exponent: int, mantissa: float) -> None:
    """Cutoff, mean delay and time constant of ``c / (1 - 0.5 z^-1)`` for every double ``c`` (1e308, 5e-324)."""
    c = math.ldexp(mantissa, exponent)  # 5e-324 .. 1.8e308
    f = ArmaFilter([c], [1.0, -0.5])
    assert optfilters.cutoff_frequency(f) == pytest.approx(HALF_POLE_CUTOFF, rel=1e-12)
    assert optfilters.mean_delay(f) == 1.0
    assert time_constant(f) == pytest.approx(1.0 / math.log(2.0), rel=1e-15)


def test_dc_gain_beyond_the_double_range_is_null_with_its_reason() -> None:
    summary = optfilters.summarise(ArmaFilter([1e308], [1.0, -0.5]))  # H(1) = 2e308
    data = summary.as_dict()
    assert data["dc_gain"] is None
    assert data["why_null"]["dc_gain"] == "infinite: overflows the double range (|H(1)| = 2e+308 > 1.8e+308)"
    assert data["noise_gain"] is None and data["why_null"]["noise_gain"].startswith("infinite: overflows")
    assert data["cutoff"] == pytest.approx(HALF_POLE_CUTOFF, rel=1e-12)
    assert ArmaFilter([1.0], [1.0, -1.0]).as_dict()["why_null"]["dc_gain"] == "infinite: a pole at z = 1"


@pytest.mark.filterwarnings("ignore::optfilters.StabilityWarning")
@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_unstable_responses_saturate_quietly_to_inf() -> None:
    f = ArmaFilter([1.0], [1.0, -1e308])  # h = 1, 1e308, then beyond the double range
    impulse = optfilters.impulse_response(f, 5)
    step = optfilters.step_response(f, 5)
    assert impulse.values.tolist() == [1.0, 1e308, math.inf, math.inf, math.inf]
    assert step.raw.tolist()[2:] == [math.inf] * 3
    assert not np.isnan(step.bias_corrected).any() and step.bias_corrected.tolist()[2:] == [math.inf] * 3
    assert step.as_dict()["why_null"]["bias_corrected"].startswith("diverges")


@pytest.mark.filterwarnings("ignore::optfilters.StabilityWarning")
@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_poles_and_zeros_at_dc_give_labelled_facts_never_nan() -> None:
    integrator = ArmaFilter([1.0], [1.0, -1.0])
    assert optfilters.mean_delay(integrator) == math.inf  # sum n h[n] / sum h[n] with h = 1: grows without bound
    assert optfilters.summarise(integrator).mean_delay == math.inf
    response = optfilters.frequency_response(integrator, freqs=[0.0, 0.25]).response
    assert response[0] == math.inf and not np.isnan(response).any()
    # a zero DC gain: the group delay's limit at DC, against scipy's group delay just above 0
    for b, a in (([1.0, -1.0], [1.0]), ([1.0, -1.0], [1.0, -0.5]), ([1.0, -2.0, 1.0], [1.0])):
        _, scipy_delay = signal.group_delay((b, a), w=[1e-4])
        assert optfilters.mean_delay(ArmaFilter(b, a)) == pytest.approx(scipy_delay[0], rel=1e-6)


SIZE_CALLS = {
    "frequency_response": (lambda n: optfilters.frequency_response(ArmaFilter.ema(0.9), n), "n"),
    "impulse_response": (lambda n: optfilters.impulse_response(ArmaFilter.ema(0.9), n), "n"),
    "step_response": (lambda n: optfilters.step_response(ArmaFilter.ema(0.9), n), "n"),
    "ArmaFilter.impulse_response": (lambda n: ArmaFilter.ema(0.9).impulse_response(n), "n"),
    "ArmaFilter.step_response": (lambda n: ArmaFilter.ema(0.9).step_response(n), "n"),
    "ArmaFilter.frequency_response": (lambda n: ArmaFilter.ema(0.9).frequency_response(n), "n"),
    "rate_curve": (lambda n: closed_loop("sgd").rate_curve(points=n), "points"),
    "lr_sequence": (lambda n: lr_sequence(None, 0.1, n), "steps"),
    "SignLoop.run": (lambda n: sign_loop("lion", lr=0.01).run(1.0, n), "steps"),
}


@pytest.mark.parametrize("bad", [10**12, 2.5, True, -3])
@pytest.mark.parametrize("call", sorted(SIZE_CALLS))
def test_library_sizes_are_bounded_integers_with_a_one_line_error(call: str, bad: object) -> None:
    fn, name = SIZE_CALLS[call]
    with pytest.raises(optfilters.InvalidHyperparameterError, match=rf"^{name} must be "):
        fn(bad)
