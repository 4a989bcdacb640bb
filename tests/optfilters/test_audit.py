"""optfilters audit: verdicts and findings on optimizers with planted slips, the atlas files, the CLI."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from optfilters.audit import FINDING_KINDS, VERDICTS, AuditSettings, audit, audit_class, optimizer_classes
from optfilters.identify import IdentificationError

ROOT = Path(__file__).resolve().parents[2]


AUDIT_FILE = str(ROOT / "tests/support/optimizers_for_audit.py")


@pytest.fixture(scope="module")
def audited():
    """The quick audit of every class in optimizers_for_audit.py, by class name."""
    result = audit(AUDIT_FILE, quick=True)
    return result, {c.name.split(":")[-1]: c for c in result.classes}


def kinds(entry) -> list[str]:
    return [f.kind for f in entry.findings]


def test_every_exported_optimizer_class_is_audited(audited) -> None:
    result, by = audited
    assert sorted(by) == sorted(name for name, _ in optimizer_classes(AUDIT_FILE))
    assert "_Base" not in by and "torch" not in by
    assert set(result.verdict_counts()) == set(VERDICTS)
    assert all(c.verdict in VERDICTS for c in result.classes)


def test_correct_optimizers_have_no_findings(audited) -> None:
    _, by = audited
    for name in ("Signum", "AdamLike", "LerpMomentum", "SumMomentum", "OrthogonalMomentum", "LazyMomentum"):
        assert by[name].findings == (), (name, by[name].findings)


def test_reset_signum_is_told_apart_from_signum(audited) -> None:
    _, by = audited
    assert by["Signum"].verdict == by["SignumReset"].verdict == "sign-type"
    (finding,) = by["SignumReset"].findings
    assert finding.kind == "pole mismatch" and "no pole or zero at momentum = 0.9" in finding.message
    assert "poles [] and zeros []" in finding.message


def test_grams_like_slip_pole_at_one_minus_beta(audited) -> None:
    _, by = audited
    entry = by["GramsSlip"]
    assert sorted(kinds(entry)) == ["first update", "pole mismatch"]
    pole = next(f for f in entry.findings if f.kind == "pole mismatch")
    assert "= 1 - betas[0]" in pole.message and "complement weight" in pole.message
    first = next(f for f in entry.findings if f.kind == "first update")
    # m_1 = beta1 g with the correction 1 / (1 - beta1): first update beta1 / (1 - beta1) = 9 per unit gradient.
    assert "first update of 9 per unit lr" in first.message and "(9x" in first.message


def test_bias_correction_applied_twice(audited) -> None:
    _, by = audited
    (finding,) = by["DoubleCorrection"].findings
    assert finding.kind == "first update" and "first update of 10 per unit lr" in finding.message


def test_default_disabled_momentum(audited) -> None:
    _, by = audited
    (finding,) = by["DisabledMomentum"].findings
    assert finding.kind == "identity by default" and "(defaults momentum=0" in finding.message


def test_lerp_and_sum_forms_reported_with_their_dc_gains(audited) -> None:
    _, by = audited
    lerp, total = by["LerpMomentum"], by["SumMomentum"]
    assert lerp.verdict == total.verdict == "linear"
    assert lerp.filter_text() == "LTI filter: poles [0.9], zeros [0], DC gain 1"
    assert total.filter_text() == "LTI filter: poles [0.9], zeros [0], DC gain 10"


def test_state_that_never_updates(audited) -> None:
    _, by = audited
    (finding,) = by["StalePrevious"].findings
    assert finding.kind == "frozen state" and "'previous_grad'" in finding.message


def test_non_finite_on_zero_gradient_and_could_not_probe(audited) -> None:
    _, by = audited
    entry = by["NormalisedNoEps"]
    assert entry.verdict == "could not probe" and "non-finite update" in entry.reason
    assert kinds(entry) == ["non-finite on zero gradient"]
    needs = by["NeedsBase"]
    assert needs.verdict == "could not probe" and "base_optimizer" in needs.reason
    assert needs.reason.count("base_optimizer") == 1  # one line, not repeated per layout


def test_matrix_and_sparse_classes(audited) -> None:
    _, by = audited
    ortho = by["OrthogonalMomentum"]
    assert ortho.verdict == "matrix" and ortho.layout == "4x8 matrix"
    lazy = by["LazyMomentum"]
    assert lazy.layout == "sparse" and lazy.probes["events"]["fully_event_clocked"] is True


def test_every_reproduction_is_one_line_and_reproduces(audited) -> None:
    result, by = audited
    for _, finding in result.findings():
        assert finding.kind in FINDING_KINDS
        assert "\n" not in finding.reproduce and finding.reproduce.split()[0] in ("optfilters", "python")
    command = by["StalePrevious"].findings[0].reproduce
    out = subprocess.run(shlex.split(command), capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "['previous_grad']"


def test_atlas_files_have_no_timings_unless_asked(audited, tmp_path: Path) -> None:
    result, _ = audited
    files = result.write(tmp_path)
    assert [p.name for p in files] == ["atlas.md", "atlas.json", "atlas.png"]
    text = (tmp_path / "atlas.md").read_text()
    data = json.loads((tmp_path / "atlas.json").read_text())
    assert " s)" not in text and "seconds" not in json.dumps(data)
    assert data["verdict_counts"] == result.verdict_counts()
    assert {f["kind"] for f in data["findings"]} <= set(FINDING_KINDS)
    assert "## Findings (" in text and "reproduce: `" in text
    timed = result.write(tmp_path / "timed", timings=True)
    assert "seconds" in json.loads(timed[1].read_text())


def test_atlas_figure_draws_each_class(audited) -> None:
    result, _ = audited
    drawn = result.plot()
    try:
        rows = drawn.data["rows"]
        assert [r["name"] for r in rows] == [c.name for c in result.classes]
        signum = next(r for r in rows if r["name"].endswith(":Signum"))
        assert signum["source"] == "dither BLA" and len(signum["poles"]) == 1
    finally:
        drawn.close()


def test_quick_settings_are_smaller_than_the_defaults() -> None:
    quick, full = AuditSettings.quick().as_dict(), AuditSettings().as_dict()
    assert quick.keys() == full.keys()
    assert all(quick[name] < full[name] for name in full), (quick, full)


def test_audit_is_deterministic() -> None:
    settings = AuditSettings.quick()
    one = audit("torch.optim", only=["Adam", "SGD"], settings=settings).as_dict()
    two = audit("torch.optim", only=["Adam", "SGD"], settings=settings).as_dict()
    assert one == two


class _Slow(torch.optim.SGD):
    def step(self, closure=None):
        time.sleep(0.01)
        return super().step(closure)


def test_time_limit_gives_could_not_probe() -> None:
    entry = audit_class(_Slow, settings=replace(AuditSettings.quick(), time_limit=0.5))
    assert entry.verdict == "could not probe" and entry.reason == "time limit of 0.5 s reached"


def test_bad_modules() -> None:
    with pytest.raises(IdentificationError, match="is not a module"):
        audit("torch.optim.SGD")
    with pytest.raises(IdentificationError, match="exports no optimizer class 'Nope'"):
        audit("torch.optim", only=["Nope"])


class _MomentumOf(torch.optim.Optimizer):
    """m = a m + g; theta -= lr m: one pole at ``a`` (written here, not from optfilters)."""

    pole = 0.5

    def __init__(self, params, lr=0.1):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                if not state:
                    state["m"] = torch.zeros_like(p)
                m = state["m"].mul_(self.pole).add_(p.grad)
                p.add_(m, alpha=-group["lr"])


class _Growing(_MomentumOf):
    pole = 1.5


@pytest.mark.parametrize(("cls", "unstable"), [(_Growing, True), (_MomentumOf, False)])
def test_an_unstable_identified_filter_is_a_finding(cls, unstable) -> None:
    """Issue 13: an optimizer whose filter has a pole at 1.5 got verdict "linear" and no finding (identify said
    "unstable"); now an "unstable" finding names the pole modulus.  A pole at 0.5 gives none."""
    result = audit_class(cls, quick=True)
    kinds = [f.kind for f in result.findings]
    assert ("unstable" in kinds) is unstable, kinds
    if unstable:
        (message,) = [f.message for f in result.findings if f.kind == "unstable"]
        assert "largest pole modulus 1.5 " in message
