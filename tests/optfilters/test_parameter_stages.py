"""Parameter-side stages in the analysis: averaged iterates (EMA, SWA, Polyak) and Lookahead's periodic loop.

* The EMA of the iterates has its own frequency response (on the parameter
  sequence) and lowers the steady-state loss by the closed form of
  :func:`optfilters.parameter_stages.ema_average_variance_ratio` (the noisy
  quadratic model with an EMA of the iterates, Zhang et al. 2019), derived
  here independently from the impulse response and, for momentum, from the
  frequency-domain integral of the loop's noise response.
* The averaged loss the noisy-quadratic model predicts is exact: against an
  independent impulse-response computation on the reference executor, and
  against Monte-Carlo runs of torch's own ``AveragedModel`` around
  ``torch.optim.SGD`` (within 4 standard errors at >= 99% of the steps).
* Lookahead's rate is ``rho(M)^(1/k)`` of the monodromy matrix: against the
  closed form for SGD inside, an independently built monodromy matrix for
  heavy ball inside, a noiseless simulation, and Monte-Carlo runs through the
  bridge.
* Nonlinear stages (orthogonalisation, sign agreement, the relative step) are
  labelled as such in every analysis; Muon's momentum filter is analysed as it is.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import integrate, signal

import optfilters
from optfilters.closed_loop import PeriodicClosedLoop, closed_loop
from optfilters.noisy_quadratic import predict, transition_matrices
from optfilters.observe import observe_quadratic
from optfilters.parameter_stages import ema_average_variance_ratio
from optfilters.stages import WeightDecay

# ----------------------------------------------------------------------------- EMA of the iterates


@pytest.mark.parametrize("decay", [0.0, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("pole", [-0.7, 0.0, 0.5, 0.95])
def test_the_closed_form_is_the_summed_squared_impulse_response(decay: float, pole: float) -> None:
    """Var[a] / Var[theta] = (1 - g)^2 (1 - r^2) sum k_n^2, k the impulse response of 1/((1 - g z^-1)(1 - r z^-1))."""
    impulse = np.zeros(20000)
    impulse[0] = 1.0
    both = signal.lfilter([1.0], np.convolve([1.0, -decay], [1.0, -pole]), impulse)
    direct = (1 - decay) ** 2 * np.sum(both**2) * (1 - pole**2)
    assert ema_average_variance_ratio(decay, pole) == pytest.approx(direct, rel=1e-10)
    assert ema_average_variance_ratio(decay, pole) <= 1.0


@pytest.mark.parametrize(("lr", "h", "decay"), [(0.1, 1.0, 0.9), (0.5, 1.0, 0.99), (1.5, 1.0, 0.5), (0.01, 3.0, 0.999)])
def test_ema_of_sgd_iterates_lowers_the_steady_state_loss_by_the_closed_form(lr: float, h: float, decay: float) -> None:
    model = optfilters.averaged("sgd", "ema", decay=decay, lr=lr)
    p = predict(model, curvatures=h, noise_var=2.0, steps=0)
    assert p.steady_state_loss == pytest.approx(0.5 * h * lr * 2.0 / (h * (2 - lr * h)), rel=1e-12)
    ratio = p.averaged_steady_state_loss / p.steady_state_loss
    assert ratio == pytest.approx(ema_average_variance_ratio(decay, 1 - lr * h), rel=1e-11)
    assert ratio < 1.0  # the average lowers the loss


def test_ema_of_momentum_iterates_matches_the_frequency_domain_integral() -> None:
    """Var[a] = sigma^2 / pi int_0^pi |E T|^2 with T = -lr H / (1 - z^-1 + lr h z^-1 H) the loop's noise response."""
    lr, h, mu, decay, s2 = 0.05, 2.0, 0.9, 0.95, 1.5
    p = predict(optfilters.averaged("momentum", "ema", decay=decay, momentum=mu, lr=lr), curvatures=h, noise_var=s2)

    def power(w: float) -> float:
        z1 = np.exp(-1j * w)
        filt = 1.0 / (1.0 - mu * z1)
        loop = -lr * filt / (1.0 - z1 + lr * h * z1 * filt)
        return float(abs((1 - decay) / (1 - decay * z1) * loop) ** 2)

    variance = s2 / math.pi * integrate.quad(power, 0.0, math.pi, limit=400, epsabs=0.0, epsrel=1e-12)[0]
    assert p.averaged_steady_state_loss == pytest.approx(0.5 * h * variance, rel=1e-8)
    assert p.averaged_steady_state_loss < p.steady_state_loss


def test_the_average_has_its_own_frequency_response_on_the_parameter_sequence() -> None:
    model = optfilters.get("ema", decay=0.9)
    f = model.filters()["parameter_average"]
    assert f.isclose(optfilters.ArmaFilter.ema(0.9))
    # white noise on the iterates: the variance falls by the EMA's noise gain (1 - g) / (1 + g)
    assert optfilters.noise_gain(f) == pytest.approx(ema_average_variance_ratio(0.9, 0.0), rel=1e-12)
    assert optfilters.summarise(f).dc_gain == pytest.approx(1.0)  # the average is unbiased at rest
    assert model.parameter_output == "averaged" and not optfilters.get("sgd").parameter_output


# ----------------------------------------------------------------------------- exact in time


def impulse_response_losses(model: Any, lr: float, h: np.ndarray, s2: float, theta0: float, steps: int) -> Any:
    """Exact E[L] of the parameter and of the average by the impulse-response method on the reference executor."""
    d = h.size
    opt = model.optimizer(np.full(d, theta0))
    mean, mean_avg = [opt.theta.copy()], [opt.averaged.copy()]
    for _ in range(steps):
        opt.step(h * opt.theta)
        mean.append(opt.theta.copy())
        mean_avg.append(opt.averaged.copy())
    opt = model.optimizer(np.zeros((steps, d)))  # batch row s: unit noise at step s + 1
    var, var_avg = [np.zeros(d)], [np.zeros(d)]
    for t in range(steps):
        noise = np.zeros((steps, d))
        noise[t] = 1.0
        theta = opt.step(h * opt.theta + noise)
        var.append(s2 * np.sum(theta**2, axis=0))
        var_avg.append(s2 * np.sum(opt.averaged**2, axis=0))
    loss = 0.5 * (np.array(mean) ** 2 + np.array(var)) @ h
    loss_avg = 0.5 * (np.array(mean_avg) ** 2 + np.array(var_avg)) @ h
    return loss, loss_avg


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("ema", {"base": "momentum", "decay": 0.8, "start": 5}),
        ("swa", {"base": "sgd", "start": 10, "every": 3}),
        ("asgd", {"lambd": 0.5, "alpha": 0.75, "t0": 12.0}),
    ],
    ids=str,
)
def test_the_averaged_loss_is_exact(name: str, options: dict[str, Any]) -> None:
    lr, h, s2 = 0.1, np.array([1.0, 0.3]), 0.7
    model = optfilters.get(name, lr=lr, **options)
    p = predict(model, curvatures=h, noise_var=s2, init=1.0, steps=60)
    loss, loss_avg = impulse_response_losses(model, lr, h, s2, 1.0, 60)
    np.testing.assert_allclose(p.expected_loss, loss, rtol=1e-10)
    np.testing.assert_allclose(p.averaged_loss, loss_avg, rtol=1e-10)
    assert p.label.startswith("exact")


def test_swa_keeps_all_history_so_its_average_has_no_steady_state() -> None:
    p = predict("swa", base="sgd", lr=0.1, curvatures=1.0, noise_var=1.0, steps=0)
    assert math.isnan(p.averaged_steady_state_loss) and math.isfinite(p.steady_state_loss)
    assert p.as_dict()["averaged_steady_state_loss"] is None


def _torch_averaged_run(
    torch: Any, lr: float, mu: float, h: np.ndarray, s2: float, steps: int, seeds: int, avg_fn: Any
) -> tuple[np.ndarray, np.ndarray]:
    """torch.optim.SGD on the noisy quadratic with ``AveragedModel`` updated after every step; the average's loss."""
    from torch.optim.swa_utils import AveragedModel

    gen = torch.Generator().manual_seed(0)
    theta = torch.nn.Parameter(torch.ones(seeds, h.size, dtype=torch.float64))
    module = torch.nn.ParameterList([theta])
    averaged = AveragedModel(module, **avg_fn)
    opt = torch.optim.SGD([theta], lr=lr, momentum=mu)
    h_t, sd = torch.as_tensor(h), math.sqrt(s2)
    losses = np.empty((steps + 1, seeds))
    losses[0] = 0.5 * (h_t * theta.detach() ** 2).sum(1).numpy()
    for t in range(steps):
        theta.grad = h_t * theta.detach() + sd * torch.randn(seeds, h.size, generator=gen, dtype=torch.float64)
        opt.step()
        averaged.update_parameters(module)
        a = averaged.module[0].detach()
        losses[t + 1] = 0.5 * (h_t * a * a).sum(1).numpy()
    return losses.mean(1), losses.std(1, ddof=1) / math.sqrt(seeds)


@pytest.mark.parametrize("average", ["ema", "swa"])
def test_averaged_loss_against_monte_carlo_runs_of_torchs_averaged_model(average: str) -> None:
    torch = pytest.importorskip("torch")
    from torch.optim.swa_utils import get_ema_multi_avg_fn

    lr, mu, h, s2, steps, seeds = 0.1, 0.5, np.array([1.0, 0.1]), 1.0, 200, 2048
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        avg_fn = {"multi_avg_fn": get_ema_multi_avg_fn(0.9)} if average == "ema" else {}
        observed, stderr = _torch_averaged_run(torch, lr, mu, h, s2, steps, seeds, avg_fn)
    finally:
        torch.set_num_threads(threads)
    model = optfilters.averaged("momentum", average, decay=0.9, momentum=mu, lr=lr)
    predicted = predict(model, curvatures=h, noise_var=s2, init=1.0, steps=steps).averaged_loss
    assert predicted is not None
    z = (observed[1:] - predicted[1:]) / stderr[1:]
    assert np.mean(np.abs(z) <= 4.0) >= 0.99, np.max(np.abs(z))


def test_averaged_loss_against_monte_carlo_runs_through_the_bridge() -> None:
    pytest.importorskip("torch")
    c = observe_quadratic(
        "asgd", lr=0.2, lambd=0.5, t0=20.0, curvatures=[1.0, 0.1], noise_var=1.0, steps=150, seeds=2048, averaged=True
    )
    assert c.fraction_within(4.0) >= 0.99
    plain = observe_quadratic(
        "asgd", lr=0.2, lambd=0.5, t0=20.0, curvatures=[1.0, 0.1], noise_var=1.0, steps=150, seeds=2048
    )
    assert np.all(c.predicted_loss[60:] < plain.predicted_loss[60:])  # the average is the better estimate here
    with pytest.raises(optfilters.InvalidHyperparameterError, match="adam keeps no averaged parameters"):
        observe_quadratic("adam", steps=2, seeds=2, averaged=True)


# ----------------------------------------------------------------------------- Lookahead, a periodic loop


@pytest.mark.parametrize(("k", "alpha"), [(1, 0.5), (2, 0.5), (5, 0.5), (3, 0.1), (6, 0.9)])
def test_lookahead_around_sgd_has_the_closed_form_rate(k: int, alpha: float) -> None:
    """One period: theta_k = (1 - x)^k slow; the pull-back gives the multiplier 1 - alpha + alpha (1 - x)^k."""
    loop = closed_loop("lookahead", base="sgd", k=k, alpha=alpha)
    assert isinstance(loop, PeriodicClosedLoop) and loop.period == k
    x = np.linspace(0.0, 3.0, 61)
    multiplier = np.abs(1 - alpha + alpha * (1 - x) ** k)  # compared per period (its k-th root is ill-conditioned at 0)
    np.testing.assert_allclose(np.asarray(loop.rate(x)) ** k, multiplier, rtol=1e-12, atol=1e-14)
    edge = 1 + (2 / alpha - 1) ** (1 / k) if k % 2 else 2.0
    assert loop.stability().max_stable_lr_curvature == pytest.approx(edge, rel=1e-10)


def test_lookahead_around_heavy_ball_is_the_independent_monodromy_matrix() -> None:
    """State (theta, buf, slow): k heavy-ball steps, then theta = slow + alpha (theta - slow), slow = theta."""
    lr, mu, k, alpha = 0.1, 0.9, 5, 0.5
    loop = closed_loop(optfilters.lookahead("momentum", k=k, alpha=alpha, momentum=mu, lr=lr))
    for x in (0.05, 0.5, 2.0, 3.5):
        h = x / lr
        step = np.array([[1 - x, -lr * mu, 0.0], [h, mu, 0.0], [0.0, 0.0, 1.0]])  # buf = mu buf + h theta first
        sync = np.array([[alpha, 0.0, 1 - alpha], [0.0, 1.0, 0.0], [alpha, 0.0, 1 - alpha]])
        mono = sync @ np.linalg.matrix_power(step, k)
        expected = np.max(np.abs(np.linalg.eigvals(mono))) ** (1 / k)
        assert float(loop.rate(x)) == pytest.approx(expected, rel=1e-12)
    # different from the inner loop's own rate
    assert float(loop.rate(0.5)) != pytest.approx(float(closed_loop("momentum", momentum=mu).rate(0.5)), rel=1e-3)


@pytest.mark.parametrize(("base", "x"), [("momentum", 0.3), ("momentum", 2.5), ("sgd", 2.1), ("nesterov", 0.8)])
def test_lookahead_rate_against_a_noiseless_simulation(base: str, x: float) -> None:
    lr, k, alpha = 0.1, 5, 0.5
    model = optfilters.lookahead(base, k=k, alpha=alpha, lr=lr)
    h = x / lr
    rate = float(closed_loop(model).rate(x))
    traj = model.simulate(lambda theta, t: h * theta, theta0=np.ones(1), steps=3000)
    # the decay of |theta| at the ends of periods over the last 2000 steps
    norm = np.abs(traj.params[:, 0])
    t0, t1 = 1000, 3000
    observed = (norm[t1] / norm[t0]) ** (1 / (t1 - t0)) if norm[t0] > 1e-250 and norm[t1] > 0 else 0.0
    assert observed == pytest.approx(rate, rel=2e-3)


def test_lookahead_noisy_quadratic_is_exact_and_periodic() -> None:
    model = optfilters.lookahead("momentum", k=4, alpha=0.6, momentum=0.8, lr=0.1)
    h, s2 = np.array([1.0, 0.2]), 0.5
    p = predict(model, curvatures=h, noise_var=s2, init=1.0, steps=40)
    loss, _ = impulse_response_losses(optfilters.averaged(model, "ema", decay=0.5), 0.1, h, s2, 1.0, 40)
    np.testing.assert_allclose(p.expected_loss, loss, rtol=1e-10)  # the exact recursion, time by time
    assert p.period == 4 and "monodromy" in p.label
    assert p.rate == pytest.approx(max(closed_loop(model).rate(0.1 * h)), rel=1e-12)
    # the periodic steady state is the exact recursion's long-run average over one period
    long = predict(model, curvatures=h, noise_var=s2, init=0.0, steps=4000)
    assert long.steady_state_loss == pytest.approx(long.expected_loss[-4:].mean(), rel=1e-9)


def test_lookahead_against_monte_carlo_runs_through_the_bridge() -> None:
    pytest.importorskip("torch")
    c = observe_quadratic(
        optfilters.lookahead("momentum", k=5, alpha=0.5, momentum=0.9),
        lr=0.1,
        curvatures=[1.0, 0.1],
        noise_var=1.0,
        steps=200,
        seeds=2048,
    )
    assert c.fraction_within(4.0) >= 0.99


def test_transition_matrices_of_one_period_multiply_to_the_monodromy_matrix() -> None:
    """noisy_quadratic.transition_matrices at the k steps of a period: their product is PeriodicClosedLoop's M."""
    k, lr, h = 4, 0.1, 2.0
    model = optfilters.lookahead("momentum", k=k, alpha=0.6, momentum=0.9, lr=lr)
    steps = transition_matrices(model, [k * 10 + j for j in range(1, k + 1)], lr=lr, curvatures=[h])
    mono = np.eye(steps.shape[2])
    for step in steps:
        mono = step[0, :, :-1] @ mono
    np.testing.assert_allclose(closed_loop(model).state_matrix(lr * h), mono, rtol=1e-13, atol=1e-15)
    # state (theta, slow, buf): the inner steps are heavy ball's and keep the slow weights ...
    np.testing.assert_allclose(steps[0, 0, :, :3], [[1 - lr * h, 0, -lr * 0.9], [0, 1, 0], [h, 0, 0.9]], rtol=1e-15)
    # ... the k-th also pulls back: theta = slow + alpha (theta_k - slow), and slow = theta
    inner = steps[0, 0, 0, :3]
    pulled = 0.6 * inner + 0.4 * np.array([0.0, 1.0, 0.0])
    np.testing.assert_allclose(steps[-1, 0, :2, :3], [pulled, pulled], rtol=1e-14)


# ----------------------------------------------------------------------------- nonlinear stages are labelled


@pytest.mark.parametrize(
    ("name", "phrase"),
    [
        ("muon", "Newton-Schulz orthogonalisation"),
        ("rprop", "Rprop's sign"),
        ("adafactor", "Adafactor's parameter scale"),
    ],
)
def test_nonlinear_stages_are_labelled_in_every_analysis(name: str, phrase: str) -> None:
    model = optfilters.get(name)
    assert not model.is_linear
    assert phrase in closed_loop(model).label and closed_loop(model).linearised
    prediction = predict(model, curvatures=1.0, noise_var=0.1, steps=5)
    assert prediction.linearised and "linearised" in prediction.label
    assert all(stage.nonlinear_description() for stage in model.nonlinear_stages)
    lookahead = closed_loop(optfilters.lookahead(name))
    assert phrase in lookahead.label and "monodromy" in lookahead.label


def test_muons_momentum_filter_is_analysed_as_it_is() -> None:
    """(1 - mu)((1 + mu) - mu z^-1)/(1 - mu z^-1): unit DC gain, torch's lerp form; the loop is that filter's."""
    mu, wd, lr = 0.95, 0.1, 0.02
    model = optfilters.get("muon", momentum=mu, weight_decay=wd, lr=lr)
    f = model.filters()["gradient"]
    assert f.isclose(optfilters.ArmaFilter([(1 - mu) * (1 + mu), -(1 - mu) * mu], [1.0, -mu]))
    assert f.dc_gain == pytest.approx(1.0)
    loop = closed_loop(model)
    bare = closed_loop(optfilters.chain(WeightDecay(wd, decoupled=True), f, lr=lr))
    x = np.linspace(0.0, 30.0, 31)
    np.testing.assert_allclose(loop.rate(x), bare.rate(x), rtol=1e-12)
    assert loop.stability().interval == pytest.approx(bare.stability().interval, rel=1e-12)


@pytest.mark.parametrize("name", ["muon", "adafactor"])
def test_whole_tensor_stages_are_not_observed_as_a_batch_of_seeds(name: str) -> None:
    pytest.importorskip("torch")
    assert not all(stage.elementwise for stage in optfilters.get(name).pipeline)
    with pytest.raises(optfilters.InvalidHyperparameterError, match="act on whole tensors"):
        observe_quadratic(name, steps=2, seeds=2)


# ----------------------------------------------------------------------------- the other analyses take them or refuse


@pytest.mark.parametrize("x", [0.5, 2.1, 2.3])
def test_the_exact_run_verdict_of_lookahead_is_the_monodromy_rate(x: float) -> None:
    """thresholds.time_varying_verdict multiplies the step matrices: over whole periods, rho(M)^(1/k) exactly."""
    from optfilters.thresholds import time_varying_verdict

    model = optfilters.lookahead("sgd", k=5, alpha=0.5)
    verdict = time_varying_verdict(model, x, steps=50)
    assert verdict.average_rate == pytest.approx(float(closed_loop(model).rate(x)), rel=1e-10)
    assert (verdict.average_rate < 1.0) == (x < 1 + 3 ** (1 / 5))  # the edge 1 + (2/alpha - 1)^(1/k)


def test_averaging_outside_the_loop_leaves_the_margins_of_the_loop() -> None:
    from optfilters.margins import margins

    inner = margins(optfilters.get("momentum", momentum=0.9, lr=0.1), 0.2)
    for name in ("ema", "swa"):
        outer = margins(optfilters.averaged("momentum", name, momentum=0.9, lr=0.1), 0.2)
        assert outer.gain_margin == pytest.approx(inner.gain_margin, rel=1e-12)
        assert outer.phase_margin == pytest.approx(inner.phase_margin, rel=1e-12)
        assert outer.delay_margin == pytest.approx(inner.delay_margin, rel=1e-12)


def test_analyses_without_a_meaning_for_the_new_kinds_refuse_them_with_the_reason() -> None:
    from optfilters.describing_function import sign_loop
    from optfilters.iqc import loop_realisation
    from optfilters.large_signal import settle_steps
    from optfilters.margins import feedback_loop, nonlinear_edge_note
    from optfilters.thresholds import frozen_edges

    lookahead = optfilters.lookahead("momentum", k=4)
    with pytest.raises(optfilters.InvalidHyperparameterError, match=r"period 4.*no loop transfer function"):
        feedback_loop(lookahead)
    with pytest.raises(optfilters.InvalidFilterError, match="no transfer function"):
        closed_loop(lookahead).filter  # noqa: B018  (batch_size's effective lr reads it)
    with pytest.raises(optfilters.InvalidHyperparameterError, match="frozen at one step is not its loop"):
        frozen_edges(lookahead, [1, 2])
    with pytest.raises(optfilters.InvalidFilterError, match="certify needs a time-invariant loop"):
        loop_realisation(lookahead)
    with pytest.raises(optfilters.InvalidFilterError, match="orthogonalises the 2-D direction"):
        loop_realisation("muon")
    for name in ("muon", "rprop"):  # not the fixed-size sign of Lion/Signum: named, not called "no sign"
        with pytest.raises(optfilters.InvalidFilterError, match=r"fixed step size.*its nonlinear stages: (orth|takes)"):
            sign_loop(name, weight_decay=0.0) if name == "muon" else sign_loop(name)
    assert "orthogonalises" in str(nonlinear_edge_note("muon")) and "sign" not in str(nonlinear_edge_note("muon"))
    for name in ("rprop", "asgd", "adafactor"):
        with pytest.raises(optfilters.InvalidHyperparameterError, match="step size changes"):
            settle_steps(name)
    with pytest.raises(optfilters.InvalidHyperparameterError, match="periodically time-varying"):
        settle_steps(lookahead)
    assert settle_steps(optfilters.averaged("adam", "ema")) == settle_steps("adam")  # the average is an output


@pytest.mark.parametrize("w", [0.05, 0.3, 1.2, math.pi])
def test_the_averages_frequency_responses_on_a_parameter_sinusoid(w: float) -> None:
    """Drive SGD (lr 1) so that theta_t = cos(w t): EMA's output is the EMA filter's, SWA's the N-tap boxcar's."""
    n = 400
    x = np.cos(w * np.arange(n + 1))
    grads = (x[:-1] - x[1:])[:, None]  # theta_t = theta_{t-1} - g_t = x_t
    decay = 0.9
    ema = optfilters.averaged("sgd", "ema", decay=decay, lr=1.0).simulate(grads, theta0=x[:1])
    np.testing.assert_allclose(ema.params[1:, 0], x[1:], rtol=0, atol=1e-12)
    # AveragedModel's EMA: the first update copies theta_1, then a = decay a + (1 - decay) theta
    zi = signal.lfiltic([1 - decay], [1.0, -decay], [x[1]])
    expected = np.concatenate([[x[1]], signal.lfilter([1 - decay], [1.0, -decay], x[2:], zi=zi)[0]])
    np.testing.assert_allclose(ema.averaged[1:, 0], expected, rtol=0, atol=1e-12)
    gain = abs((1 - decay) / (1 - decay * np.exp(-1j * w)))  # |H(e^{jw})| of the parameter_average filter
    f = optfilters.get("ema", decay=decay).filters()["parameter_average"]
    assert abs(complex(np.polyval(f.b[::-1], np.exp(-1j * w)) / np.polyval(f.a[::-1], np.exp(-1j * w)))) == (
        pytest.approx(gain, rel=1e-12)
    )
    steady = ema.averaged[200:, 0]
    assert np.max(np.abs(steady)) == pytest.approx(gain * np.max(np.abs(x[200:])), rel=2e-2, abs=1e-9)
    swa = optfilters.averaged("sgd", "swa", lr=1.0).simulate(grads, theta0=x[:1])
    boxcar = np.cumsum(x[1:]) / np.arange(1, n + 1)  # the mean of theta_1 .. theta_N
    np.testing.assert_allclose(swa.averaged[1:, 0], boxcar, rtol=0, atol=1e-12)
    dirichlet = abs(np.sum(np.exp(-1j * w * np.arange(n)))) / n  # the N-tap boxcar's gain at w
    assert abs(np.mean(np.exp(1j * w * np.arange(1, n + 1)))) == pytest.approx(dirichlet, rel=1e-9, abs=1e-12)


def test_asgd_eta_underflows_to_zero_where_its_power_overflows():
    """eta = lr / (1 + lambd lr t)^alpha: at alpha = 1e308 the power is beyond the double range (Python's float
    power raised OverflowError(34, ...)); the true eta is below the smallest double: 0 (the sweep of issue 13)."""
    from optfilters.parameter_stages import AsgdEta

    eta = AsgdEta(lambd=1e-4, alpha=1e308)
    assert eta.value(3, 0.1) == 0.0 and eta.value(0, 0.1) == 0.1  # (1 + 0)^alpha = 1 at t = 0
    assert AsgdEta(lambd=1e-4, alpha=0.75).value(3, 0.1) == 0.1 / (1 + 1e-4 * 0.1 * 3) ** 0.75
    assert np.all(np.isfinite(predict("asgd", alpha=1e308, curvatures=[1.0], steps=8).expected_loss))


def test_adafactor_frozen_gain_is_one_over_eps1_where_eps1_squared_overflows():
    """1 / max(sqrt(v), eps1) = 1e-308 at eps1 = 1e308 (eps1^2 overflowed: OverflowError from Python's power)."""
    model = optfilters.get("adafactor", eps1=1e308)
    assert float(model.frozen_gain(np.array(1.0))) == pytest.approx(1e-308, rel=1e-15)
    assert not math.isnan(predict(model, curvatures=[1.0], steps=8).rate)
