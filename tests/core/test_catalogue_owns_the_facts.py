"""The catalogue owns every per-optimizer fact: an entry registered here reaches the table, CLI, docs and tuners."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import optfilters
from optfilters import CATALOGUE, CatalogueEntry, Hyperparameter
from optfilters.batch_size import POLE_HYPERPARAMETERS
from optfilters.catalogue import catalogue_docs, register, unregister
from optfilters.closed_loop import DEFAULT_TUNED
from optfilters.table import COLUMNS

ROOT = Path(__file__).resolve().parents[2]


def _build(params: dict[str, float]) -> optfilters.OptimizerModel:
    model = optfilters.get("momentum", momentum=params["momentum"], weight_decay=params["weight_decay"])
    return dataclasses.replace(model, name="slowball")


@pytest.fixture
def slowball() -> Iterator[CatalogueEntry]:
    entry = CatalogueEntry(
        "slowball",
        "a heavy ball registered by a test",
        (
            Hyperparameter("lr", 0.01, low=0.0, help="learning rate"),
            Hyperparameter("momentum", 0.8, low=0.0, high=1.0, high_open=True, help="momentum"),
            Hyperparameter("weight_decay", 0.0, low=0.0, help="weight decay"),
        ),
        _build,
        aliases=("sb",),
        source="a test",
        tuned=("momentum",),
        poles=("momentum",),
        decoupled_weight_decay=True,
    )
    register(entry)
    try:
        yield entry
    finally:
        unregister("slowball")


def test_a_registered_entry_gets_its_table_row_cli_listing_docs_line_and_facts(slowball: CatalogueEntry) -> None:
    from optfilters.cli.main import main

    assert optfilters.names()[-1] == "slowball" and optfilters.resolve_name("SB") == "slowball"
    row = next(r for r in optfilters.summary_table().rows if r[0] == "slowball")
    assert row[1] == "AR1, unit input gain (pole 0.8)"  # its own default momentum, read through its stages
    assert (
        row[COLUMNS.index("weight decay")] == "decoupled"
    )  # the catalogue's weight-decay fact, not a list in the table module
    listing = CliRunner().invoke(main, ["list"])
    assert listing.exit_code == 0 and "slowball" in listing.output and "a heavy ball registered" in listing.output
    response = CliRunner().invoke(main, ["response", "slowball", "--momentum", "0.5", "--json"])
    assert response.exit_code == 0, response.output
    assert "``slowball`` (sb): a heavy ball registered by a test." in catalogue_docs()
    assert DEFAULT_TUNED["slowball"] == ("momentum",) and POLE_HYPERPARAMETERS["slowball"] == ("momentum",)
    with pytest.raises(ValueError, match="already taken: slowball, sb"):
        register(slowball)


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
