"""identify through sign, matrix and sparse stages; file paths and import hints; keyword mapping; honest notes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import optfilters
from optfilters.identify import (
    IdentificationError,
    NonFiniteUpdate,
    identify,
    map_keywords,
    probe,
    resolve_optimizer,
)

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
AUDIT = str(ROOT / "tests/identify/optimizers_for_audit.py")
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
