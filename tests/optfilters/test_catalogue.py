"""Catalogue registry invariants, name resolution and bad inputs.

The catalogue owns every per-optimizer fact: an entry registered here reaches the table, CLI, docs and tuners.

Every catalogue model reproduces its optimizer's literal update recursion.

The references below are written from the optimizers' own update rules
(torch.optim's documented algorithms, the papers' pseudo-code), step by step in
numpy, independently of the model's stages.  Each takes the raw loss-gradient
sequence (open loop: weight decay still reads the current parameters) and
returns the parameter trajectory.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import optfilters
from optfilters import CATALOGUE, CatalogueEntry, InvalidHyperparameterError, UnknownNameError
from optfilters.batch_size import POLE_HYPERPARAMETERS
from optfilters.catalogue import register, unregister
from optfilters.closed_loop import DEFAULT_TUNED
from optfilters.stages import LinearStage
from tests.support.catalogue_settings import catalogue_settings
from tests.support.registered_entry import registered_slowball


@pytest.mark.parametrize(("name", "overrides"), catalogue_settings(), ids=str)
def test_registry_invariants(name: str, overrides: dict[str, Any]) -> None:
    model = optfilters.get(name, **overrides)
    assert model.name == name
    assert set(model.hyperparameters) == {hp.name for hp in CATALOGUE[name].hyperparameters}
    filters = model.filters()
    assert "gradient" in filters
    for stage, f in filters.items():
        assert f.a[0] == 1.0
        assert np.all(np.isfinite(f.b)) and np.all(np.isfinite(f.a))
        expected = "marginal" if (name, stage) == ("adagrad", "second_moment") else "stable"
        assert f.stability == expected, (stage, f)
        # frequency response agrees with simulation: steady-state gain of a slow cosine ~ |H(f)|
        assert math.isfinite(f.nyquist_gain)
    # the literal model executes without producing non-finite numbers (a matrix for matrix-only entries)
    rng = np.random.default_rng(0)
    shape = (2, 3) if CATALOGUE[name].parameter_ndim == 2 else (2,)
    traj = model.simulate(rng.normal(size=(50, *shape)), theta0=np.ones(shape))
    assert np.all(np.isfinite(traj.params))
    if model.parameter_output is not None:
        assert traj.averaged is not None and np.all(np.isfinite(traj.averaged))


DC_GAINS = {
    # DC gain of the gradient filter (t -> infinity), derived by hand from each update rule.
    "sgd": 1.0,
    "momentum": 1 / (1 - 0.9),
    "nesterov": 1 / (1 - 0.9),
    "adam": 1.0,
    "adamw": 1.0,
    "amsgrad": 1.0,
    "nadam": 1.0,  # (1-b1) + b1 (EMA, unit DC gain) -> 1
    "radam": 1.0,
    "adamax": 1.0,
    "qhm": 1.0,
    "qhadam": 1.0,
    "aggmo": (1 + 1 / 0.1 + 1 / 0.01) / 3,  # 37
    "lion": 1.0,
    "ademamix": 1.0 + 2.0,
    "grokfast": 1.0 + 2.0,
    "pid": 1.0 + 5.0 / 0.1,  # kp + ki (1 - d)/(1 - beta) + kd * 0
    "butterworth": 10.0,
    "chebyshev1": 10.0,
    "bessel": 10.0,
    "adagrad": 1.0,
    "adadelta": 1.0,
    "rmsprop": 1.0,
    # third-party packages (the gradient filter; Schedule-Free's and LaProp's filters sit in their update stage)
    "sgd-schedule-free": 1.0,
    "adamw-schedule-free": 1.0,
    "adan": 1.0,  # (1-b1)/(1-b1) + b2 * 0 (the difference filter has a zero at z = 1)
    "adabelief": 1.0,
    "adopt": 1.0,  # identity: its EMA is a post-filter after the normaliser
    "laprop": 1.0,
    "yogi": 1.0,
    "signum": 1.0,
    "lion-cautious": 1.0,
    "adam-cautious": 1.0,
    "ademamix-scheduled": 1.0 + 5.0,  # limit after the warm-up: bias-corrected EMA + alpha EMA
    # 2025-26: Muon's Nesterov form (1 - mu) g + mu EMA_mu(g) has unit DC gain; the others filter nothing
    "muon": 1.0,
    "adafactor": 1.0,
    "asgd": 1.0,
    "rprop": 1.0,
    "ema": 1.0,
    "swa": 1.0,
    "lookahead": 1.0,
}


@pytest.mark.parametrize("name", sorted(DC_GAINS))
def test_documented_dc_gains(name: str) -> None:
    assert optfilters.get(name).filters()["gradient"].dc_gain == pytest.approx(DC_GAINS[name], rel=1e-9)


def test_every_entry_has_a_documented_dc_gain() -> None:
    assert set(DC_GAINS) | {"custom"} == set(CATALOGUE)


def test_designed_filters_hit_their_cutoff_and_gain() -> None:
    for name in ("butterworth", "bessel"):
        f = optfilters.get(name, order=4, cutoff=0.02, dc_gain=3.0).filters()["gradient"]
        assert f.dc_gain == pytest.approx(3.0)
        assert optfilters.cutoff_frequency(f) == pytest.approx(0.02, rel=1e-4)
    cheby = optfilters.get("chebyshev1", order=3, ripple=1.0, cutoff=0.05).filters()["gradient"]
    mag = abs(cheby.evaluate(np.exp(2j * np.pi * 0.05)))
    assert 20 * math.log10(mag / cheby.dc_gain) == pytest.approx(-1.0, abs=1e-6)  # odd order: DC at 0 dB


def test_high_order_design_is_stable_in_its_exact_form() -> None:
    f = optfilters.get("butterworth", order=8, cutoff=0.005, dc_gain=1.0).filters()["gradient"]
    assert f.stability == "stable"
    assert np.max(np.abs(f.poles)) < 1.0


@pytest.mark.parametrize(
    ("name", "overrides", "pattern"),
    [(name, bad, pattern) for name, entry in CATALOGUE.items() for bad, pattern in entry.bad_inputs],
    ids=str,
)
def test_bad_inputs_raise_clear_errors(name: str, overrides: dict[str, Any], pattern: str) -> None:
    with pytest.raises(InvalidHyperparameterError, match=pattern) as info:
        optfilters.get(name, **overrides)
    assert "\n" not in str(info.value)


def test_every_entry_declares_bad_inputs() -> None:
    assert all(entry.bad_inputs for entry in CATALOGUE.values())


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        (1.0, r"beta1 must be in \[0, 1\), got 1.0"),
        (-0.1, r"beta1 must be in \[0, 1\)"),
        (float("nan"), "beta1 must be a finite number"),
        (float("inf"), "beta1 must be a finite number"),
        ("abc", "beta1 must be a number, got 'abc'"),
        (True, "beta1 must be a number"),
    ],
)
def test_beta_validation(value: Any, pattern: str) -> None:
    with pytest.raises(InvalidHyperparameterError, match=pattern):
        optfilters.get("adam", beta1=value)


def test_names_aliases_and_suggestions() -> None:
    assert optfilters.get("ADAM").name == "adam"
    assert optfilters.get("Heavy_Ball").name == "momentum"
    assert optfilters.get("nag").name == "nesterov"
    with pytest.raises(UnknownNameError, match="did you mean 'adam'"):
        optfilters.get("adma")
    with pytest.raises(InvalidHyperparameterError, match="did you mean 'momentum'"):
        optfilters.get("sgd", momentun=0.9)
    with pytest.raises(InvalidHyperparameterError, match="adam has no hyperparameter 'momentum'"):
        optfilters.get("adam", momentum=0.9)


def test_type_conversion_of_text_values() -> None:
    model = optfilters.get("sgd", lr="0.1", nesterov="true", momentum="0.5")
    assert model.hyperparameters["lr"] == 0.1 and model.hyperparameters["nesterov"] is True
    assert optfilters.get("aggmo", betas="0,0.5").hyperparameters["betas"] == (0.0, 0.5)
    with pytest.raises(InvalidHyperparameterError, match="order must be an integer"):
        optfilters.get("butterworth", order=2.5)


def test_torch_kwargs_map_betas_at_the_boundary() -> None:
    entry = CATALOGUE["adam"]
    kwargs = entry.torch_kwargs(entry.validate({"beta1": 0.8}))
    assert kwargs["betas"] == (0.8, 0.999) and "beta1" not in kwargs
    assert CATALOGUE["amsgrad"].torch_kwargs({"lr": 1.0})["amsgrad"] is True
    torch_names = {entry.torch_class for entry in CATALOGUE.values() if entry.torch_class}
    classes = ("SGD", "Adam", "AdamW", "NAdam", "RAdam", "Adagrad", "Adadelta", "RMSprop", "Adamax")
    classes += ("Muon", "Adafactor", "ASGD", "Rprop")
    assert torch_names == {f"torch.optim.{n}" for n in classes}
    # torch's eps=(eps1, eps2) of Adafactor: split into the catalogue's names, packed again at the boundary
    adafactor = CATALOGUE["adafactor"]
    params = adafactor.validate({"eps": (None, 1e-2)})
    assert params["eps1"] is None and params["eps2"] == 1e-2
    assert adafactor.torch_kwargs(params)["eps"] == (None, 1e-2) and "eps1" not in adafactor.torch_kwargs(params)
    with pytest.raises(InvalidHyperparameterError, match="give eps or eps2, not both"):
        adafactor.validate({"eps": (None, 1e-2), "eps2": 1e-3})


def test_time_varying_parts_are_labelled() -> None:
    assert optfilters.get("momentum").is_time_invariant
    assert not optfilters.get("momentum", dampening=0.5).is_time_invariant  # first-step buffer init
    assert not optfilters.get("adam").is_time_invariant
    assert not optfilters.get("adagrad", lr_decay=0.1).is_time_invariant
    assert not optfilters.get("radam").is_time_invariant
    assert optfilters.get("rmsprop").is_time_invariant  # nonlinear, but time-invariant


def test_model_is_immutable() -> None:
    model = optfilters.get("adam")
    with pytest.raises(AttributeError):
        model.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        model.hyperparameters["lr"] = 1.0  # type: ignore[index]


def test_linearised_filter() -> None:
    adam = optfilters.get("adam", eps=1e-8)
    f = adam.linearised_filter(second_moment=0.25)
    assert f.dc_gain == pytest.approx(1 / (0.5 + 1e-8))
    with pytest.raises(optfilters.InvalidFilterError, match="not linear"):
        adam.direction_filter()
    rms = optfilters.get("rmsprop", momentum=0.9, eps=0.0)
    assert rms.linearised_filter(4.0).dc_gain == pytest.approx(0.5 * 10)


def test_torch_betas_tuple_is_split_into_the_catalogue_betas() -> None:
    assert (
        optfilters.get("adam", betas=(0.8, 0.99)).hyperparameters
        == optfilters.get("adam", beta1=0.8, beta2=0.99).hyperparameters
    )
    three = optfilters.get("ademamix", betas=(0.8, 0.99, 0.999)).hyperparameters
    assert (three["beta1"], three["beta2"], three["beta3"]) == (0.8, 0.99, 0.999)
    with pytest.raises(InvalidHyperparameterError, match=r"betas must be a tuple \(beta1, beta2\) of 2 numbers"):
        optfilters.get("adam", betas=(0.9,))
    with pytest.raises(InvalidHyperparameterError, match="give betas or beta1, not both"):
        optfilters.get("adam", betas=(0.9, 0.99), beta1=0.9)
    with pytest.raises(InvalidHyperparameterError, match="sgd has no hyperparameter 'betas'"):
        optfilters.get("sgd", betas=(0.9, 0.99))
    with pytest.raises(InvalidHyperparameterError, match=r"beta2 must be in \[0, 1\)"):
        optfilters.get("adam", betas=(0.9, 1.5))


def test_name_and_nullable_hyperparameters() -> None:
    """torch's string options (Muon's adjust_lr_fn) and None values (Adafactor's eps1) are hyperparameters too."""
    choice = CATALOGUE["muon"].hyperparameter("adjust_lr_fn")
    assert choice.validate("original") == "original" and choice.validate(None) is None
    assert choice.validate("none") is None and not choice.required
    with pytest.raises(InvalidHyperparameterError, match="adjust_lr_fn must be one of none, original, match_rms_adamw"):
        choice.validate("Original")
    with pytest.raises(InvalidHyperparameterError, match="adjust_lr_fn must be a name, got 3"):
        choice.validate(3)
    eps1 = CATALOGUE["adafactor"].hyperparameter("eps1")
    assert eps1.validate(None) is None and eps1.validate("None") is None and eps1.validate(1e-30) == 1e-30
    with pytest.raises(InvalidHyperparameterError, match="eps1 must be >= 0"):
        eps1.validate(-1.0)
    coefficients = CATALOGUE["muon"].hyperparameter("ns_coefficients")
    with pytest.raises(InvalidHyperparameterError, match="ns_coefficients may have at most 3 values"):
        coefficients.validate((1.0, 2.0, 3.0, 4.0))
    base = CATALOGUE["lookahead"].hyperparameter("base")
    assert base.validate("adam") == "adam" and base.required is False


def test_wrappers_take_any_entry_and_record_its_hyperparameters() -> None:
    model = optfilters.lookahead("adam", k=3, alpha=0.7, beta1=0.8, lr=0.01)
    assert model.hyperparameters["base"] == "adam" and model.hyperparameters["beta1"] == 0.8
    assert [role for role, _ in model.stages][-2:] == ["learning_rate", "lookahead"]
    ema = optfilters.averaged(optfilters.get("momentum", momentum=0.5), "ema", decay=0.5)
    assert ema.hyperparameters["momentum"] == 0.5 and ema.parameter_output == "averaged"
    with pytest.raises(InvalidHyperparameterError, match="average must be 'ema' or 'swa'"):
        optfilters.averaged("sgd", "polyak")
    with pytest.raises(optfilters.InvalidFilterError, match="2 stages that keep averaged parameters"):
        _ = optfilters.averaged(optfilters.get("asgd"), "ema").parameter_output
    with pytest.raises(ValueError, match=r"two stages of the model use the state key 'lookahead\.slow'"):
        optfilters.lookahead(optfilters.lookahead("sgd")).simulate(np.ones((2, 1)), theta0=np.zeros(1))


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def slowball() -> Iterator[CatalogueEntry]:
    with registered_slowball() as entry:
        yield entry


def test_unregister_removes_it_again(slowball: CatalogueEntry) -> None:
    unregister("sb")
    assert "slowball" not in CATALOGUE and "slowball" not in DEFAULT_TUNED
    with pytest.raises(optfilters.UnknownNameError):
        optfilters.resolve_name("sb")
    register(slowball)  # for the fixture's clean-up


def test_the_facts_views_are_the_former_tables() -> None:
    # The values the former per-module dictionaries held, now read from the entries.
    assert DEFAULT_TUNED["qhadam"] == ("nu1", "beta1") and DEFAULT_TUNED["butterworth"] == ("cutoff",)
    assert POLE_HYPERPARAMETERS["rmsprop"] == ("alpha", "momentum") and POLE_HYPERPARAMETERS["custom"] == ()
    assert set(DEFAULT_TUNED) == set(CATALOGUE) and len(POLE_HYPERPARAMETERS) == len(CATALOGUE)
    assert {n for n, e in CATALOGUE.items() if e.decoupled_weight_decay} == {"adamw", "lion", "ademamix"}
    for name, entry in CATALOGUE.items():
        known = {hp.name for hp in entry.hyperparameters}
        assert set(entry.tuned) <= known and set(entry.poles) <= known, name


def test_no_per_optimizer_table_outside_the_catalogue() -> None:
    # A dictionary keyed by five or more catalogue names outside the catalogue is a per-optimizer fact kept in
    # the wrong place (the test functions' learning-rate grids are facts of the lecture's functions: keyed by
    # function first, a few optimizers each).
    names = set(CATALOGUE)
    offenders = []
    for folder in ("optfilters", "cli"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "_catalogue.py":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Dict):
                    keys = {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
                    if len(keys & names) >= 5:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


Reference = Callable[[np.ndarray, np.ndarray, dict[str, Any]], Any]  # params, or (params, averaged params)


REFERENCES: dict[str, Reference] = {}


def reference(*names: str) -> Callable[[Reference], Reference]:
    def register(fn: Reference) -> Reference:
        for name in names:
            REFERENCES[name] = fn
        return fn

    return register


def _decay(theta: np.ndarray, g: np.ndarray, p: dict[str, Any], decoupled: bool) -> tuple[np.ndarray, np.ndarray]:
    wd = p.get("weight_decay", 0.0)
    if wd:
        if decoupled:
            theta = theta * (1 - p["lr"] * wd)
        else:
            g = g + wd * theta
    return theta, g


@reference("sgd", "momentum", "nesterov")
def ref_sgd(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # torch.optim.SGD: buf starts at the first gradient; nesterov uses g + mu * buf.
    mu, damp = p.get("momentum", 0.0), p.get("dampening", 0.0)
    nesterov = p.get("nesterov", False) or p["_name"] == "nesterov"
    buf = None
    out = [theta]
    for g in grads:
        g = -g if p.get("maximize") else g
        theta, g = _decay(theta, g, p, decoupled=False)
        if mu != 0:
            buf = g.copy() if buf is None else mu * buf + (1 - damp) * g
            g = g + mu * buf if nesterov else buf
        theta = theta - p["lr"] * g
        out.append(theta)
    return np.array(out)


@reference("adam", "adamw", "amsgrad")
def ref_adam(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    b1, b2, eps = p["beta1"], p["beta2"], p["eps"]
    amsgrad = p.get("amsgrad", False) or p["_name"] == "amsgrad"
    decoupled = p.get("decoupled_weight_decay", False) or p["_name"] == "adamw"
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    vmax = np.zeros_like(theta)
    out = [theta]
    for t, g in enumerate(grads, start=1):
        g = -g if p.get("maximize") else g
        theta, g = _decay(theta, g, p, decoupled)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if amsgrad:
            vmax = np.maximum(vmax, v)
        vv = vmax if amsgrad else v
        m_hat = m / (1 - b1**t)
        v_hat = vv / (1 - b2**t)
        theta = theta - p["lr"] * m_hat / (np.sqrt(v_hat) + eps)
        out.append(theta)
    return np.array(out)


@reference("nadam")
def ref_nadam(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # torch.optim.NAdam, with its running product of mu kept in float32.
    b1, b2, eps, psi = p["beta1"], p["beta2"], p["eps"], p["momentum_decay"]
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    prod = np.float32(1.0)
    out = [theta]
    for t, g in enumerate(grads, start=1):
        g = -g if p.get("maximize") else g
        theta, g = _decay(theta, g, p, p["decoupled_weight_decay"])
        mu = b1 * (1 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
        prod = np.float32(prod * np.float32(mu))
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        denom = np.sqrt(v / (1 - b2**t)) + eps
        theta = theta - p["lr"] * (1 - mu) / (1 - float(prod)) * g / denom
        theta = theta - p["lr"] * mu_next / (1 - float(prod) * mu_next) * m / denom
        out.append(theta)
    return np.array(out)


@reference("radam")
def ref_radam(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    b1, b2, eps = p["beta1"], p["beta2"], p["eps"]
    rho_inf = 2 / (1 - b2) - 1
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    out = [theta]
    for t, g in enumerate(grads, start=1):
        g = -g if p.get("maximize") else g
        theta, g = _decay(theta, g, p, p["decoupled_weight_decay"])
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        rho_t = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if rho_t > 5:
            r = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            theta = theta - p["lr"] * m_hat * r * math.sqrt(1 - b2**t) / (np.sqrt(v) + eps)
        else:
            theta = theta - p["lr"] * m_hat
        out.append(theta)
    return np.array(out)


@reference("adamax")
def ref_adamax(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    b1, b2, eps = p["beta1"], p["beta2"], p["eps"]
    m = np.zeros_like(theta)
    u = np.zeros_like(theta)
    out = [theta]
    for t, g in enumerate(grads, start=1):
        g = -g if p.get("maximize") else g
        theta, g = _decay(theta, g, p, decoupled=False)
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g) + eps)
        theta = theta - p["lr"] / (1 - b1**t) * m / u
        out.append(theta)
    return np.array(out)


@reference("adagrad")
def ref_adagrad(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    total = np.full_like(theta, p["initial_accumulator_value"])
    out = [theta]
    for t, g in enumerate(grads, start=1):
        g = -g if p.get("maximize") else g
        theta, g = _decay(theta, g, p, decoupled=False)
        clr = p["lr"] / (1 + (t - 1) * p["lr_decay"])
        total = total + g * g
        theta = theta - clr * g / (np.sqrt(total) + p["eps"])
        out.append(theta)
    return np.array(out)


@reference("adadelta")
def ref_adadelta(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    rho, eps = p["rho"], p["eps"]
    v = np.zeros_like(theta)
    u = np.zeros_like(theta)
    out = [theta]
    for g in grads:
        g = -g if p.get("maximize") else g
        theta, g = _decay(theta, g, p, decoupled=False)
        v = rho * v + (1 - rho) * g * g
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta
        theta = theta - p["lr"] * delta
        out.append(theta)
    return np.array(out)


@reference("rmsprop")
def ref_rmsprop(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    alpha, eps, mu = p["alpha"], p["eps"], p["momentum"]
    v = np.zeros_like(theta)
    mean = np.zeros_like(theta)
    buf = np.zeros_like(theta)
    out = [theta]
    for g in grads:
        g = -g if p.get("maximize") else g
        theta, g = _decay(theta, g, p, decoupled=False)
        v = alpha * v + (1 - alpha) * g * g
        if p["centered"]:
            mean = alpha * mean + (1 - alpha) * g
            den = np.sqrt(v - mean * mean) + eps
        else:
            den = np.sqrt(v) + eps
        if mu > 0:
            buf = mu * buf + g / den
            theta = theta - p["lr"] * buf
        else:
            theta = theta - p["lr"] * g / den
        out.append(theta)
    return np.array(out)


@reference("qhm")
def ref_qhm(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # Ma & Yarats (qhoptim QHM): g_buf = beta g_buf + (1 - beta) grad; theta -= lr [(1 - nu) grad + nu g_buf]
    buf = np.zeros_like(theta)
    out = [theta]
    for g in grads:
        theta, g = _decay(theta, g, p, decoupled=False)
        buf = p["beta"] * buf + (1 - p["beta"]) * g
        theta = theta - p["lr"] * ((1 - p["nu"]) * g + p["nu"] * buf)
        out.append(theta)
    return np.array(out)


@reference("qhadam")
def ref_qhadam(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # qhoptim QHAdam: bias correction through running weight sums w_t = 1 + beta w_{t-1}.
    b1, b2, nu1, nu2 = p["beta1"], p["beta2"], p["nu1"], p["nu2"]
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    w1 = w2 = 0.0
    out = [theta]
    for g in grads:
        theta, g = _decay(theta, g, p, decoupled=False)
        w1 = 1 + b1 * w1
        w2 = 1 + b2 * w2
        adj1, adj2 = 1 - 1 / w1, 1 - 1 / w2
        m = adj1 * m + (1 - adj1) * g
        v = adj2 * v + (1 - adj2) * g * g
        num = (1 - nu1) * g + nu1 * m
        den = np.sqrt((1 - nu2) * g * g + nu2 * v) + p["eps"]
        theta = theta - p["lr"] * num / den
        out.append(theta)
    return np.array(out)


@reference("aggmo")
def ref_aggmo(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # Lucas et al.: v_i = beta_i v_i + g for every beta; theta -= lr/K sum_i v_i
    betas = p["betas"]
    bufs = [np.zeros_like(theta) for _ in betas]
    out = [theta]
    for g in grads:
        theta, g = _decay(theta, g, p, decoupled=False)
        for i, beta in enumerate(betas):
            bufs[i] = beta * bufs[i] + g
            theta = theta - p["lr"] / len(betas) * bufs[i]
        out.append(theta)
    return np.array(out)


@reference("lion")
def ref_lion(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # Chen et al. 2023: c = b1 m + (1 - b1) g; theta -= lr (sign(c) + wd theta); m = b2 m + (1 - b2) g
    m = np.zeros_like(theta)
    out = [theta]
    for g in grads:
        c = p["beta1"] * m + (1 - p["beta1"]) * g
        theta = theta - p["lr"] * (np.sign(c) + p["weight_decay"] * theta)
        m = p["beta2"] * m + (1 - p["beta2"]) * g
        out.append(theta)
    return np.array(out)


@reference("ademamix")
def ref_ademamix(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # Pagliardini et al. 2024 (apple/ml-ademamix, no warm-up): (m1_hat + alpha m2) / (sqrt(v_hat) + eps)
    b1, b2, b3, alpha = p["beta1"], p["beta2"], p["beta3"], p["alpha"]
    m1 = np.zeros_like(theta)
    m2 = np.zeros_like(theta)
    v = np.zeros_like(theta)
    out = [theta]
    for t, g in enumerate(grads, start=1):
        m1 = b1 * m1 + (1 - b1) * g
        m2 = b3 * m2 + (1 - b3) * g
        v = b2 * v + (1 - b2) * g * g
        update = (m1 / (1 - b1**t) + alpha * m2) / (np.sqrt(v) / math.sqrt(1 - b2**t) + p["eps"])
        theta = theta - p["lr"] * (update + p["weight_decay"] * theta)
        out.append(theta)
    return np.array(out)


@reference("grokfast")
def ref_grokfast(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # ironjr/grokfast gradfilter_ema: the EMA starts at the first gradient; g_hat = g + lamb ema; then plain SGD.
    ema = None
    out = [theta]
    for g in grads:
        ema = g.copy() if ema is None else ema
        ema = ema * p["alpha"] + g * (1 - p["alpha"])
        theta = theta - p["lr"] * (g + p["lamb"] * ema)
        out.append(theta)
    return np.array(out)


@reference("pid")
def ref_pid(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # An et al. 2018: I = beta I + (1 - d) g; D = beta D + (1 - beta)(g - g_prev); u = kp g + ki I + kd D
    beta, damp = p["momentum"], p["dampening"]
    integral = np.zeros_like(theta)
    derivative = np.zeros_like(theta)
    previous = np.zeros_like(theta)
    out = [theta]
    for g in grads:
        theta, g = _decay(theta, g, p, decoupled=False)
        integral = beta * integral + (1 - damp) * g
        derivative = beta * derivative + (1 - beta) * (g - previous)
        previous = g
        theta = theta - p["lr"] * (p["kp"] * g + p["ki"] * integral + p["kd"] * derivative)
        out.append(theta)
    return np.array(out)


def _difference_equation(b: np.ndarray, a: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """y[n] = sum_k b[k] x[n-k] - sum_k a[k] y[n-k], written out literally."""
    b, a = b / a[0], a / a[0]
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []

    def step(x: np.ndarray) -> np.ndarray:
        xs.insert(0, x)
        y = sum(b[k] * xs[k] for k in range(min(len(b), len(xs))))
        y = y - sum(a[k] * ys[k - 1] for k in range(1, min(len(a), len(ys) + 1)))
        ys.insert(0, y)
        return y

    return step


@reference("butterworth", "chebyshev1", "bessel", "custom")
def ref_designed(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # Designed directly by scipy.signal as second-order sections, each run as its difference equation.
    from scipy import signal

    if p["_name"] == "custom":
        sections = [(np.asarray(p["b"], float), np.asarray(p["a"], float))]
    else:
        wn = 2 * p["cutoff"]
        if p["_name"] == "butterworth":
            sos = signal.butter(p["order"], wn, output="sos")
        elif p["_name"] == "chebyshev1":
            sos = signal.cheby1(p["order"], p["ripple"], wn, output="sos")
        else:
            sos = signal.bessel(p["order"], wn, norm="mag", output="sos")
        dc = np.prod([np.sum(s[:3]) / np.sum(s[3:]) for s in sos])
        sos[0, :3] *= p["dc_gain"] / dc
        sections = [(s[:3], s[3:]) for s in sos]
    stages = [_difference_equation(b, a) for b, a in sections]
    out = [theta]
    for g in grads:
        theta, g = _decay(theta, g, p, decoupled=False)
        for stage in stages:
            g = stage(g)
        theta = theta - p["lr"] * g
        out.append(theta)
    return np.array(out)


# ----------------------------------------------------------------------------- third-party packages (issue 14b)
# Written from the packages' update rules (schedulefree 1.4.1, pytorch-optimizer 4.1.0) and the papers.


def _package_decay(theta: np.ndarray, g: np.ndarray, p: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    return _decay(theta, g, p, decoupled=bool(p.get("weight_decouple", False)))


def _sf_weights(p: dict[str, Any], steps: int) -> list[tuple[float, float]]:
    """(c_t, lr_t) of Schedule-Free: linear warm-up, weights t^r lr_max^p, c_t = w_t / sum w."""
    out, lr_max, total = [], -1.0, 0.0
    for t in range(1, steps + 1):
        lr_t = p["lr"] * min(1.0, t / p["warmup_steps"]) if p["warmup_steps"] else p["lr"]
        lr_max = max(lr_max, lr_t)
        w = t ** p["r"] * lr_max ** p["weight_lr_power"]
        total += w
        out.append((w / total if total else 0.0, lr_t))
    return out


@reference("sgd-schedule-free", "adamw-schedule-free")
def ref_schedule_free(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # Defazio et al. 2024 in its three sequences: z -= lr d; x = (1-c) x + c z; y = (1-beta) z + beta x (theta = y)
    adam = p["_name"] == "adamw-schedule-free"
    beta = p["beta1"] if adam else p["momentum"]
    z, x = theta.copy(), theta.copy()
    v = np.zeros_like(theta)
    out = [theta]
    for t, (g, (c, lr)) in enumerate(zip(grads, _sf_weights(p, len(grads)), strict=True), start=1):
        y = (1 - beta) * z + beta * x
        if adam:
            v = p["beta2"] * v + (1 - p["beta2"]) * g * g
            d = g / (np.sqrt(v / (1 - p["beta2"] ** t)) + p["eps"]) + p["weight_decay"] * y
        else:
            d = g + p["weight_decay"] * y
        z = z - lr * d
        x = (1 - c) * x + c * z
        out.append((1 - beta) * z + beta * x)
    return np.array(out)


@reference("adan")
def ref_adan(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # Xie et al. 2022: m, n = EMAs of g and of g - g_prev (g_prev = g_1 at the first step); v = EMA of
    # (g + b2 (g - g_prev))^2; proximal decay theta / (1 + lr wd) unless decoupled.
    b1, b2, b3 = p["beta1"], p["beta2"], p["beta3"]
    m, n, v = (np.zeros_like(theta) for _ in range(3))
    prev = None
    out = [theta]
    for t, g in enumerate(grads, start=1):
        g = -g if p["maximize"] else g
        if prev is None:
            prev = -g if p["maximize"] else g  # the package stores the raw first gradient
        diff = g - prev
        m = b1 * m + (1 - b1) * g
        n = b2 * n + (1 - b2) * diff
        u = g + b2 * diff
        v = b3 * v + (1 - b3) * u * u
        den = np.sqrt(v / (1 - b3**t)) + p["eps"]
        if p["weight_decouple"]:
            theta = theta * (1 - p["lr"] * p["weight_decay"])
        theta = theta - p["lr"] * (m / (1 - b1**t) + b2 * n / (1 - b2**t)) / den
        if not p["weight_decouple"]:
            theta = theta / (1 + p["lr"] * p["weight_decay"])
        prev = g
        out.append(theta)
    return np.array(out)


# ----------------------------------------------------------------------------- 2025-26 (issue 14a)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x * x)))


@reference("muon")
def ref_muon(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # torch.optim.Muon's code (its docstring's B = mu B + g is not what the code runs: buf.lerp_(g, 1 - mu)),
    # the quintic written as X <- a X + b (X X^T) X + c (X X^T)^2 X, in float64.
    mu, lr, wd = p["momentum"], p["lr"], p["weight_decay"]
    a, b, c = p["ns_coefficients"]
    rows, cols = theta.shape
    gain = (
        math.sqrt(max(1, rows / cols)) if p["adjust_lr_fn"] in (None, "original") else 0.2 * math.sqrt(max(rows, cols))
    )
    buf = np.zeros_like(theta)
    out = [theta]
    for g in grads:
        buf = mu * buf + (1 - mu) * g
        u = (1 - mu) * g + mu * buf if p["nesterov"] else buf
        x = u.T if rows > cols else u
        x = x / max(np.sqrt(np.sum(x * x)), p["eps"])
        for _ in range(p["ns_steps"]):
            gram = x @ x.T
            x = a * x + b * (gram @ x) + c * (gram @ (gram @ x))
        x = x.T if rows > cols else x
        theta = theta * (1 - lr * wd) - lr * gain * x
        out.append(theta)
    return np.array(out)


@reference("adafactor")
def ref_adafactor(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # torch.optim.Adafactor's documented algorithm: beta2_t = 1 - t^decay, factored second moment for matrices,
    # relative step max(eps2, RMS(theta)) min(lr, 1/sqrt(t)), RMS clip at d, decoupled decay.
    eps1 = np.finfo(np.float64).eps if p["eps1"] is None else p["eps1"]
    factored = theta.ndim >= 2
    row = np.zeros(theta.shape[:-1]) if factored else None
    col = np.zeros(theta.shape[-1:]) if factored else None
    var = np.zeros_like(theta)
    out = [theta]
    for t, g in enumerate(grads, start=1):
        g = -g if p["maximize"] else g
        w = t ** p["beta2_decay"]
        scale = max(p["eps2"], _rms(theta)) * min(p["lr"], 1 / math.sqrt(t))
        theta = theta * (1 - p["lr"] * p["weight_decay"])
        if factored:
            row = (1 - w) * row + w * np.mean(g * g, axis=-1)
            col = (1 - w) * col + w * np.mean(g * g, axis=-2)
            v = np.outer(row, col) / max(np.mean(row), eps1)
        else:
            var = (1 - w) * var + w * g * g
            v = var
        u = g / np.sqrt(np.maximum(v, eps1 * eps1))
        u = u / max(1.0, _rms(u) / p["d"])
        theta = theta - scale * u
        out.append(theta)
    return np.array(out)


@reference("asgd")
def ref_asgd(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    # torch.optim.ASGD: eta and mu computed at the end of each step and kept in float32 tensors.
    lr, lambd = p["lr"], p["lambd"]
    eta, mu = np.float32(lr), np.float32(1.0)
    ax = np.zeros_like(theta)
    out, averages = [theta], [theta]
    for t, g in enumerate(grads, start=1):
        g = -g if p["maximize"] else g
        theta, g = _decay(theta, g, p, decoupled=False)
        theta = theta * (1 - lambd * float(eta)) - float(eta) * g
        ax = theta.copy() if mu == 1 else ax + (theta - ax) * float(mu)
        eta = np.float32(lr / (1 + lambd * lr * t) ** p["alpha"])
        mu = np.float32(1 / max(1, t - p["t0"]))
        out.append(theta)
        averages.append(ax)
    return np.array(out), np.array(averages)


@reference("rprop")
def ref_rprop(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # Riedmiller & Braun (torch.optim.Rprop): adapt per-element steps on sign agreement, skip after a flip.
    (eta_minus, eta_plus), (low, high) = p["etas"], p["step_sizes"]
    step = np.full_like(theta, p["lr"])
    prev = np.zeros_like(theta)
    out = [theta]
    for g in grads:
        g = -g if p["maximize"] else g
        agree = g * prev
        step = np.clip(step * np.where(agree > 0, eta_plus, np.where(agree < 0, eta_minus, 1.0)), low, high)
        g = np.where(agree < 0, 0.0, g)
        theta = theta - np.sign(g) * step
        prev = g
        out.append(theta)
    return np.array(out)


@reference("adabelief")
def ref_adabelief(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # Zhuang et al. 2020: s = b2 s + (1 - b2)(g - m)^2 + eps; theta -= lr m_hat / (sqrt(s_hat) + eps)
    b1, b2, eps = p["beta1"], p["beta2"], p["eps"]
    m, s = np.zeros_like(theta), np.zeros_like(theta)
    out = [theta]
    for t, g in enumerate(grads, start=1):
        g = -g if p["maximize"] else g
        theta, g = _package_decay(theta, g, p)
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * (g - m) ** 2 + eps
        theta = theta - p["lr"] / (1 - b1**t) * m / (np.sqrt(s / (1 - b2**t)) + eps)
        out.append(theta)
    return np.array(out)


@reference("adopt")
def ref_adopt(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # Taniguchi et al. 2024: v_0 = g_0^2 and no update at the first step; then
    # m = b1 m + (1 - b1) clip(g / max(sqrt(v), eps), t^(1/4)); theta -= lr m; v = b2 v + (1 - b2) g^2
    b1, b2 = p["beta1"], p["beta2"]
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    out = [theta]
    for t, g in enumerate(grads, start=1):
        g = -g if p["maximize"] else g
        theta, g = _package_decay(theta, g, p)
        if t == 1:
            v = g * g
        else:
            c = t**0.25
            m = b1 * m + (1 - b1) * np.clip(g / np.maximum(np.sqrt(v), p["eps"]), -c, c)
            theta = theta - p["lr"] * m
            v = b2 * v + (1 - b2) * g * g
        out.append(theta)
    return np.array(out)


@reference("laprop")
def ref_laprop(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # Ziyin et al. 2020: m = b1 m + (1 - b1) lr g / ((sqrt(v + 1e-15) + eps) / sqrt(1 - b2^t));
    # theta -= m / (1 - b1^t); the package's decoupled decay after the update (its coupled one has no effect)
    b1, b2 = p["beta1"], p["beta2"]
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    out = [theta]
    for t, g in enumerate(grads, start=1):
        g = -g if p["maximize"] else g
        v = b2 * v + (1 - b2) * g * g
        den = (np.sqrt(v + 1e-15) + p["eps"]) / math.sqrt(1 - b2**t)
        m = b1 * m + (1 - b1) * p["lr"] * g / den
        theta = theta - m / (1 - b1**t)
        if p["weight_decouple"]:
            theta = theta * (1 - p["lr"] * p["weight_decay"])
        out.append(theta)
    return np.array(out)


@reference("yogi")
def ref_yogi(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # Zaheer et al. 2018: v -= (1 - b2) sign(v - g^2) g^2; m, v start at initial_accumulator
    b1, b2 = p["beta1"], p["beta2"]
    m = np.full_like(theta, p["initial_accumulator"])
    v = np.full_like(theta, p["initial_accumulator"])
    out = [theta]
    for t, g in enumerate(grads, start=1):
        g = -g if p["maximize"] else g
        theta, g = _package_decay(theta, g, p)
        m = b1 * m + (1 - b1) * g
        v = v - (1 - b2) * np.sign(v - g * g) * g * g
        theta = theta - p["lr"] / (1 - b1**t) * m / (np.sqrt(v / (1 - b2**t)) + p["eps"])
        out.append(theta)
    return np.array(out)


@reference("signum")
def ref_signum(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # Bernstein et al. 2018: theta -= lr sign(m), m = mu m + (1 - mu) g (signSGD: m = g)
    m = np.zeros_like(theta)
    out = [theta]
    for g in grads:
        g = -g if p["maximize"] else g
        theta, g = _package_decay(theta, g, p)
        m = p["momentum"] * m + (1 - p["momentum"]) * g
        theta = theta - p["lr"] * np.sign(m)
        out.append(theta)
    return np.array(out)


def _cautious(u: np.ndarray, g: np.ndarray) -> np.ndarray:
    # Liang et al. 2024: keep u where u g > 0, rescaled by n / (kept + 1)
    keep = (u * g > 0).astype(float)
    return u * keep * (keep.size / (keep.sum() + 1))


@reference("lion-cautious")
def ref_lion_cautious(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    m = np.zeros_like(theta)
    out = [theta]
    for g in grads:
        g = -g if p["maximize"] else g
        theta, g = _package_decay(theta, g, p)
        u = np.sign(p["beta1"] * m + (1 - p["beta1"]) * g)
        m = p["beta2"] * m + (1 - p["beta2"]) * g
        theta = theta - p["lr"] * _cautious(u, g)
        out.append(theta)
    return np.array(out)


@reference("adam-cautious", "ademamix-scheduled")
def ref_ademamix_family(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # Pagliardini et al. 2024 with the warm-up alpha_t = min(t alpha/T, alpha),
    # beta3_t = min(exp(ln b1 ln b3 / ((1 - t/T) ln b3 + (t/T) ln b1)), b3); Cautious Adam: alpha = 0, masked m.
    b1, b2 = p["beta1"], p["beta2"]
    cautious = p["_name"] == "adam-cautious"
    b3, alpha, big_t = (0.0, 0.0, 0.0) if cautious else (p["beta3"], p["alpha"], p["t_alpha_beta3"])
    m1, m2, v = (np.zeros_like(theta) for _ in range(3))
    out = [theta]
    for t, g in enumerate(grads, start=1):
        g = -g if p["maximize"] else g
        theta, g = _package_decay(theta, g, p)
        if big_t:
            alpha_t = min(t * alpha / big_t, alpha)
            frac = t / big_t
            b3_t = min(math.exp(math.log(b1) * math.log(b3) / ((1 - frac) * math.log(b3) + frac * math.log(b1))), b3)
        else:
            alpha_t, b3_t = alpha, b3
        m1 = b1 * m1 + (1 - b1) * g
        m2 = b3_t * m2 + (1 - b3_t) * g
        v = b2 * v + (1 - b2) * g * g
        u = _cautious(m1, g) if cautious else m1
        theta = theta - p["lr"] * (u / (1 - b1**t) + alpha_t * m2) / (np.sqrt(v / (1 - b2**t)) + p["eps"])
        out.append(theta)
    return np.array(out)


def _base_trajectory(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    base = optfilters.get(p["base"], lr=p["lr"])
    return REFERENCES[p["base"]](grads, theta, {**base.hyperparameters, "_name": p["base"]})


@reference("ema")
def ref_ema(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    # AveragedModel with get_ema_multi_avg_fn: the first update copies, then a = decay a + (1 - decay) theta.
    params = _base_trajectory(grads, theta, p)
    averages = [params[0]]
    for t in range(1, len(params)):
        a = params[t] if t <= p["start"] else p["decay"] * averages[-1] + (1 - p["decay"]) * params[t]
        averages.append(a)
    return params, np.array(averages)


@reference("swa")
def ref_swa(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    # The equal-weight mean of the parameters after steps start, start + every, ...
    params = _base_trajectory(grads, theta, p)
    averages = []
    for t in range(len(params)):
        if t <= p["start"]:
            averages.append(params[t])
        else:
            taken = [params[s] for s in range(p["start"], t + 1, p["every"])]
            averages.append(np.mean(taken, axis=0))
    return params, np.array(averages)


@reference("lookahead")
def ref_lookahead(grads: np.ndarray, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # Zhang et al. 2019: k inner steps, then slow += alpha (fast - slow), fast = slow.  Open loop, the inner
    # increments do not depend on the parameter (the wrapped defaults have no weight decay).
    base = optfilters.get(p["base"], lr=p["lr"])
    assert not base.hyperparameters.get("weight_decay"), "the reference needs parameter-free inner increments"
    increments = np.diff(_base_trajectory(grads, theta, p), axis=0)
    slow = theta.copy()
    out = [theta]
    for t, step in enumerate(increments, start=1):
        theta = theta + step
        if t % p["k"] == 0:
            slow = slow + p["alpha"] * (theta - slow)
            theta = slow.copy()
        out.append(theta)
    return np.array(out)


def test_every_catalogue_entry_has_an_independent_reference() -> None:
    assert set(REFERENCES) == set(CATALOGUE)


def _settings() -> list[tuple[str, dict[str, Any]]]:
    cases = catalogue_settings()
    # weight decay, maximize and lr on top of the defaults wherever the optimizer takes them
    extras = {"weight_decay": 0.05, "maximize": True, "lr": 0.03}
    for name, entry in CATALOGUE.items():
        taken = {hp.name for hp in entry.hyperparameters}
        extra = {k: v for k, v in extras.items() if k in taken}
        if name == "custom":
            extra.update(b=(0.2, 0.1), a=(1.0, -0.7))
        cases.append((name, extra))
    return cases


@pytest.mark.parametrize(("name", "overrides"), _settings(), ids=lambda v: str(v))
def test_model_reproduces_literal_recursion(name: str, overrides: dict[str, Any]) -> None:
    rng = np.random.default_rng(abs(hash((name, tuple(sorted(overrides))))) % 2**32)
    steps, dims = 120, 3
    shape = (dims, 2) if CATALOGUE[name].parameter_ndim == 2 else (dims,)  # matrices for matrix-only entries
    scales = np.array([1.0, 0.1, 10.0]).reshape((dims,) + (1,) * (len(shape) - 1))
    grads = rng.normal(size=(steps, *shape)) * scales + 0.3
    theta0 = rng.normal(size=shape)
    model = optfilters.get(name, **overrides)
    params = dict(model.hyperparameters, _name=name)
    expected = REFERENCES[name](grads, theta0, params)
    traj = model.simulate(grads, theta0=theta0)
    if isinstance(expected, tuple):  # the reference keeps averaged parameters too: the model's output
        expected, averages = expected
        assert traj.averaged is not None
        np.testing.assert_allclose(traj.averaged, averages, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(traj.params, expected, rtol=1e-10, atol=1e-12)


def test_reference_is_sensitive() -> None:
    """The comparison above would catch a wrong stage: Adam without bias correction differs."""
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(20, 2))
    exact = ref_adam(grads, np.zeros(2), {**optfilters.get("adam").hyperparameters, "_name": "adam"})
    model = optfilters.get("adam")
    stripped = optfilters.OptimizerModel(
        "adam",
        model.hyperparameters,
        gradient=LinearStage.of(optfilters.ArmaFilter.ema(0.9)),
        normaliser=model.normaliser,
    )
    assert not np.allclose(stripped.simulate(grads, theta0=np.zeros(2)).params, exact, rtol=1e-3)


def test_closed_loop_simulation_matches_reference_on_a_quadratic() -> None:
    """Closed loop (gradient = h * theta): the executor feeds back exactly like the literal recursion."""
    h = np.array([1.0, 10.0])
    model = optfilters.get("nesterov", lr=0.05, momentum=0.9)
    traj = model.simulate(lambda theta, t: h * theta, theta0=np.ones(2), steps=50)
    theta = np.ones(2)
    buf = None
    for _ in range(50):
        g = h * theta
        buf = g.copy() if buf is None else 0.9 * buf + g
        theta = theta - 0.05 * (g + 0.9 * buf)
    np.testing.assert_allclose(traj.params[-1], theta, rtol=1e-12)


USER_MODEL_FILE = (
    "import dataclasses\nimport optfilters\nfrom optfilters import CATALOGUE, ArmaFilter\n\n\n"
    "def slow():\n    return optfilters.get('momentum', momentum=0.5)\n\n\n"
    "model = optfilters.get('momentum', momentum=0.25)\nfilt = ArmaFilter([0.1], [1.0, -0.9])\n\n\n"
    "def _build(params):\n    return CATALOGUE['momentum'].build(params)\n\n\n"
    "entry = dataclasses.replace(CATALOGUE['momentum'], name='entry', build=_build)\n"
)


@pytest.mark.parametrize(("name", "a1"), [("slow", -0.5), ("model", -0.25), ("filt", -0.9), ("entry", -0.9)])
def test_a_user_models_entry_pickles(tmp_path, name: str, a1: float) -> None:
    """Issue 13: ``pickle.dumps(load_entry("mymodels.py:slow"))`` failed ("Can't pickle local object
    'entry_for.<locals>.build'"): every kind of user entry pickles, and the copy builds the same filter."""
    import pickle

    from optfilters.user_models import load_entry

    path = tmp_path / "mymodels.py"
    path.write_text(USER_MODEL_FILE)
    entry = load_entry(f"{path}:{name}")
    back = pickle.loads(pickle.dumps(entry))
    f = back.build(back.validate({})).direction_filter()
    assert f == entry.build(entry.validate({})).direction_filter()
    assert float(f.a[1]) == pytest.approx(a1, abs=1e-15)
