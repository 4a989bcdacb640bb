"""The package entries in main's nonlinear and control tools: sign loops, frozen-time edges, the audit's matches.

Signum is Lion with ``beta1 = beta2`` (the sign of an EMA): its relay loop must
be Lion's at those betas, cycle for cycle; a cautious mask after the sign is not
a relay and is refused.  AdEMAMix's slow EMA puts a near-unit pole next to the
loop's integrator: its frozen-time edge at large ``t`` must equal the closed
loop's ``t -> infinity`` edge (an independent path).  The audit matches a
library class to the catalogue entry whose reference implementation it is.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from optfilters.cli.main import main

from optfilters import InvalidFilterError
from optfilters.closed_loop import closed_loop
from optfilters.describing_function import noise_transition, sign_loop
from optfilters.thresholds import frozen_edges


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_signum_sign_loop_is_lion_with_equal_betas(beta: float) -> None:
    signum = sign_loop("signum", lr=0.01, momentum=beta)
    lion = sign_loop("lion", lr=0.01, beta1=beta, beta2=beta)
    np.testing.assert_allclose(signum.prefilter.b, lion.prefilter.b, rtol=1e-12)
    np.testing.assert_allclose(signum.prefilter.a, lion.prefilter.a, rtol=1e-12)
    assert signum.approach(1.0) == lion.approach(1.0)
    assert [(c.period, c.offsets) for c in signum.symmetric_cycles(16)] == [
        (c.period, c.offsets) for c in lion.symmetric_cycles(16)
    ]
    run_s, run_l = signum.run(1.0, steps=1500), lion.run(1.0, steps=1500)
    assert (run_s.period, run_s.amplitude) == (run_l.period, run_l.amplitude)


def test_signum_default_cycles_match_the_module_notes() -> None:
    """The module docstring: Signum with beta = 0.9 admits the symmetric cycles k = 1 .. 7."""
    loop = sign_loop("signum", lr=0.01)
    assert [c.period for c in loop.symmetric_cycles(20)] == [2, 4, 6, 8, 10, 12, 14]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        transition = noise_transition("signum", [1e-5], lr=0.01)
    assert np.all(np.isfinite(transition.predicted))


def test_cautious_lion_is_no_relay_loop() -> None:
    with pytest.raises(InvalidFilterError, match=r"lion-cautious has a nonlinear stage besides its sign"):
        sign_loop("lion-cautious", lr=0.01)
    result = CliRunner().invoke(main, ["sign-loop", "lion-cautious", "--lr", "0.01"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "needs a pure relay" in lines[0]


@pytest.mark.parametrize(("name", "overrides"), [("ademamix", {}), ("ademamix-scheduled", {"t_alpha_beta3": 100.0})])
def test_frozen_edge_with_a_near_unit_pole_is_the_closed_loop_edge(name: str, overrides: dict) -> None:
    edges = frozen_edges(name, [1, 10, 100000], **overrides)
    assert np.all(np.isfinite(edges.edge))
    limit = closed_loop(name, **overrides).stability().max_stable_lr_curvature
    assert edges.edge[-1] == pytest.approx(limit, rel=1e-9)
    assert edges.edge[0] < edges.edge[1] < edges.edge[2]  # bias correction: the edge grows from ~2 (1 + beta1)
    assert edges.edge[0] == pytest.approx(3.8, rel=1e-3)


@pytest.mark.skipif(
    importlib.util.find_spec("pytorch_optimizer") is None or importlib.util.find_spec("schedulefree") is None,
    reason="the reference packages (test extras)",
)
def test_audit_matches_library_classes_to_their_entries() -> None:
    from optfilters.audit import _catalogue_entry, audit
    from optfilters.identify import resolve_optimizer

    expected = {
        "pytorch_optimizer.SignSGD": "signum",  # by the entry's reference
        "pytorch_optimizer.Lion": "lion",  # by name (cautious=False: not lion-cautious's fixed keyword)
        "pytorch_optimizer.AdEMAMix": "ademamix",  # by name before any reference
        "pytorch_optimizer.ADOPT": "adopt",
        "schedulefree.SGDScheduleFree": "sgd-schedule-free",
        "schedulefree.AdamWScheduleFree": "adamw-schedule-free",
        "schedulefree.SGDScheduleFreeReference": None,
        "pytorch_optimizer.Tiger": None,  # its keyword beta is not signum's momentum
    }
    found = {path: _catalogue_entry(path, resolve_optimizer(path)) for path in expected}
    assert found == expected
    result = audit("pytorch_optimizer", only=["SignSGD"], quick=True)
    (signsgd,) = result.classes
    assert signsgd.catalogue == "signum" and signsgd.comparison is not None and signsgd.comparison.match
