"""The torch.optim atlas (main job): every class probed, catalogue entries matched, the structural checks held."""

from __future__ import annotations

import json

import pytest
from optfilters.papers import optimizer_atlas

from tests.support.papers import quick_source

pytest.importorskip("torch")

TORCH_OPTIM = (
    "ASGD Adadelta Adafactor Adagrad Adam AdamW Adamax LBFGS Muon NAdam RAdam RMSprop Rprop SGD SparseAdam"
).split()


quick = quick_source("optimizer_atlas")


def test_files_and_no_timings(quick) -> None:
    numbers, out = quick
    assert numbers["quick"] is True
    assert set(numbers["files"]) == {"atlas.md", "atlas.json", "atlas.png", "captions.md", "numbers.json"}
    assert (out / "atlas.png").stat().st_size > 10_000
    page = (out / "atlas.md").read_text()
    data = json.loads((out / "atlas.json").read_text())
    assert page.startswith("# Optimizer atlas: torch.optim")
    assert "seconds" not in json.dumps(data) and "seconds" not in json.dumps(numbers)
    assert (out / "captions.md").read_text().startswith(f"# {optimizer_atlas.TITLE}")


def test_every_torch_optim_class_is_audited_and_none_is_refused(quick) -> None:
    numbers, _ = quick
    assert sorted(numbers["classes"]) == sorted(f"torch.optim.{n}" for n in TORCH_OPTIM)
    assert numbers["verdict_counts"]["could not probe"] == 0
    verdicts = {k.split(".")[-1]: v["verdict"] for k, v in numbers["classes"].items()}
    assert verdicts["SGD"] == "linear" and verdicts["ASGD"] == "linear time-varying"
    assert verdicts["Muon"] == "matrix" and verdicts["Rprop"] == "sign-type"
    for name in ("Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad", "Adadelta", "SparseAdam"):
        assert verdicts[name] == "normalised", name


def test_catalogue_entries_match_their_torch_classes(quick) -> None:
    numbers, _ = quick
    matches = numbers["catalogue_matches"]
    assert set(matches) == {
        f"torch.optim.{n}"
        for n in "SGD Adam AdamW Adamax NAdam RAdam RMSprop Adagrad Adadelta ASGD Adafactor Rprop".split()
    }
    # Muon (matrices only) is identified on a matrix, where the atlas has no catalogue comparison: its BLA check
    assert all(matches.values()), matches


def test_structural_checks(quick) -> None:
    numbers, _ = quick
    assert numbers["sgd_identity"] and numbers["muon_matrix"] and numbers["sparse_event_clocked"]
    for name, check in numbers["bla_checks"].items():
        assert check["ok"], (name, check)
    muon = numbers["bla_checks"]["torch.optim.Muon"]
    assert muon["zero_sigmas"] <= 4 and muon["pole_sigmas"] <= 4
