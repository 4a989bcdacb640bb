"""Structural probes: matrices (torch Muon, an exact-SVD orthogonaliser), sparse gradients, state, zero gradients."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from optfilters.identify import IdentificationError
from optfilters.probes import event_clock, matrix_check, state_trace, zero_gradient_check

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
AUDIT = str(ROOT / "tests/support/optimizers_for_audit.py")


def test_torch_muon_is_a_rotation_equivariant_orthogonalisation() -> None:
    m = matrix_check("torch.optim.Muon", weight_decay=0.0)
    assert m.rotation_equivariant and not m.elementwise and m.orthogonalising
    assert abs(m.scale_degree) < 0.01
    # Newton-Schulz in bfloat16 leaves singular values spread around 1 (torch's docstring: about 0.5 to 1.5).
    assert 0.5 < m.singular_values.min() <= m.singular_values.max() < 1.5


def test_exact_svd_orthogonaliser_hits_the_polar_factor() -> None:
    m = matrix_check(f"{AUDIT}:OrthogonalMomentum")
    # First update: polar(EMA buffer) = polar((1 - beta) G) = U V^T exactly.
    assert m.polar_cosine == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(m.singular_values, 1.0, atol=1e-12)
    assert m.rotation_discrepancy < 1e-12 and m.orthogonalising


def test_adam_is_elementwise_and_not_rotation_equivariant() -> None:
    m = matrix_check("torch.optim.Adam")
    assert m.elementwise and m.coupling == 0.0
    assert m.rotation_discrepancy > 0.5 and not m.orthogonalising
    assert m.vector_discrepancy == 0.0  # a matrix is 32 independent elements


def test_adafactor_treats_matrices_differently_from_vectors() -> None:
    m = matrix_check("torch.optim.Adafactor")
    assert not m.elementwise and not m.rotation_equivariant
    assert m.vector_discrepancy > 1e-3  # the second moment is factored (row and column means) for matrices
    assert any("differently from the same 32 gradients on a vector" in n for n in m.notes)


def test_sparse_adam_is_event_clocked_but_its_bias_correction_counts_calls() -> None:
    e = event_clock("torch.optim.SparseAdam")
    assert e.idle_update == 0.0 and e.zero_discrepancy > 0.1 and e.event_clocked
    # torch's sparse_adam: the EMAs move only at present indices, bias_correction uses state['step'] (every call).
    assert not e.fully_event_clocked and e.event_discrepancy > 0.01
    assert any("hypothesis: a step counter shared by all elements" in n for n in e.notes)


def test_lazy_momentum_is_fully_event_clocked() -> None:
    e = event_clock(f"{AUDIT}:LazyMomentum")
    assert e.fully_event_clocked and e.event_discrepancy == 0.0


def test_sparse_sgd_momentum_moves_on_idle_steps() -> None:
    e = event_clock("torch.optim.SGD", momentum=0.9)
    assert not e.event_clocked and e.idle_update > 0.0 and e.zero_discrepancy == 0.0


def test_state_trace_finds_a_previous_gradient_that_is_never_written() -> None:
    trace = state_trace(f"{AUDIT}:StalePrevious")
    assert trace.frozen_buffers == ["previous_grad"] and trace.values["previous_grad"] == 0.0
    assert state_trace("torch.optim.Adam").frozen == []


def test_state_trace_tells_an_anchor_from_a_frozen_buffer() -> None:
    pytest.importorskip("pytorch_optimizer")
    trace = state_trace("pytorch_optimizer.MADGRAD")
    assert "x0" in trace.anchors and "x0" not in trace.frozen_buffers  # the stored starting point


def test_zero_gradient_checks() -> None:
    assert zero_gradient_check("torch.optim.Adam").finite
    assert zero_gradient_check("torch.optim.Adam", eps=0.0).first_non_finite == 1
    bad = zero_gradient_check(f"{AUDIT}:NormalisedNoEps")
    assert not bad.finite and bad.first_non_finite == 1


def test_probes_refuse_what_they_cannot_do() -> None:
    with pytest.raises(IdentificationError, match="steps must be"):
        state_trace("torch.optim.SGD", steps=1)
    with pytest.raises(IdentificationError, match="failed"):
        event_clock("torch.optim.Adam")  # Adam refuses sparse gradients
