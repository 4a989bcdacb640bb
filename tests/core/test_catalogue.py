"""Catalogue registry invariants, name resolution and bad inputs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import optfilters
from optfilters import CATALOGUE, InvalidHyperparameterError, UnknownNameError


def _cases() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for name, entry in CATALOGUE.items():
        for example in ({}, *entry.examples):
            if name == "custom" and "b" not in example:
                continue
            cases.append((name, dict(example)))
    return cases


@pytest.mark.parametrize(("name", "overrides"), _cases(), ids=str)
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
