"""The JSON convention over many commands and options: every ``null`` has a ``why_null`` entry.

README ("Marginal loops and null numbers"): the JSON of the loop and prediction commands has no sentinel,
and a ``why_null`` object says why each ``null`` is null.  :func:`optfilters.validation.unexplained_nulls`
walks a payload for the nulls that no ``why_null`` explains; this runs it over commands x options chosen to
produce nulls (diverging, marginal, empty, overflowing, infinite edges).
"""

from __future__ import annotations

import importlib.util

import pytest

from optfilters.validation import unexplained_nulls
from tests.support.cli import ok_json

CASES = [
    # the filter commands: absent cutoffs, forms and notes
    "describe sgd",
    "describe lion",
    "describe custom --b 1 --a 1,-0.5",
    "compare sgd adam",
    "response adam",
    "poles momentum",
    "impulse sgd",
    "step adam",
    # filters at the edges of the double range and with poles on the circle (scale-free facts stay finite)
    "response custom --b 1e308 --a 1,-0.5",
    "describe custom --b 1e308 --a 1,-0.5",
    "response custom --b 1 --a 1,-1",
    "response custom --b 1,-1 --a 1",
    "step custom --b 1 --a 1,-1e308",
    "step custom --b 1 --a 1,-1",
    "impulse custom --b 1 --a 1,-1e308",
    "poles custom --b 1 --a 1,-1e308",
    "compare momentum custom --b 1 --a 1,-1",
    "certify sgd --lr 10 --condition-number 10",
    "sign-loop lion --lr 0.01 --init 5e-324",
    "list",
    "large-signal adam",
    "sign-loop signsgd",
    "thresholds sgd",
    "thresholds adam --lr 0.1",
    # stability: finite, infinite and absent edges, marginal loops, the readings at a point, tuning
    "stability sgd",
    "stability sgd --curvature 1",
    "stability sgd --lr 3",
    "stability sgd --lr 2",
    "stability momentum --momentum 0.9 --lr 30",
    "stability adam --curvature 1e-320",
    "stability lookahead --alpha 0",
    "stability lookahead",
    "stability momentum --condition-number 10",
    "stability custom --b 1,1 --a 1",
    # margins and their step information
    "margins sgd --lr 0.5",
    "margins sgd --lr 3",
    "margins sgd --lr 2",
    "margins momentum --momentum 0.9 --lr 0.05 --staleness 2",
    "margins sgd --lr-curvature 1e300",
    # root locus
    "locus momentum --momentum 0.9",
    "locus sgd --lr 3",
    "locus momentum --momentum 0.9 --staleness 2",
    "locus sgd --lr-curvature 0.5",
    # sensitivity
    "sensitivity momentum --momentum 0.9 --lr 0.05",
    "sensitivity sgd --lr 0.5",
    "sensitivity sgd --lr 1.99",
    # predict: no steps, diverging and overflowing losses, marginal, averaged parameters
    "predict sgd --steps 0",
    "predict sgd --lr 3 --steps 2000",
    "predict sgd --lr 2 --steps 5",
    "predict momentum --lr 0 --steps 3",
    "predict ema --base sgd --lr 3 --steps 2000",
    "predict adam --lr 1e308 --steps 3",
    "predict sgd --lr 0.1 --noise-var 1e308 --steps 3",
]

TORCH_CASES = [
    "observe sgd --seeds 4 --steps 5",
    "observe sgd --lr 3 --seeds 4 --steps 1000",
    "observe sgd --lr 1.9 --init 1e150 --seeds 4 --steps 20",
]


@pytest.mark.parametrize("args", CASES)
def test_every_null_has_a_why_null_entry(args: str) -> None:
    data = ok_json(*args.split())
    assert unexplained_nulls(data) == []


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
@pytest.mark.parametrize("args", TORCH_CASES)
def test_every_null_of_observe_has_a_why_null_entry(args: str) -> None:
    data = ok_json(*args.split())
    assert unexplained_nulls(data) == []


def test_unexplained_nulls_finds_nulls_at_any_depth() -> None:
    payload = {
        "a": None,
        "b": [1.0, None],
        "c": {"d": None, "why_null": {"d": "undefined: x"}},
        "e": {"f": [None]},
        "g": [{"h": None}],
        "why_null": {"e.f": "diverges"},
    }
    assert unexplained_nulls(payload) == ["a", "b[1]", "g[0].h"]
    assert unexplained_nulls({**payload, "why_null": {"a": "x", "b": "y", "e": "z", "g[0]": "w"}}) == []
