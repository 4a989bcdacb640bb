"""Known gaps of torch.optim's contract, each an open issue: those tests run and must fail (strict xfail).

ASGD: torch.optim.ASGD keeps ``eta`` and ``mu`` as state, computed at the end of each step from that
step's ``lr``, ``lambd``, ``alpha`` and ``t0`` (so under a schedule they lag one step, and a checkpoint
carries them); the bridge's ``AsgdUpdate`` computes ``eta`` from the current ``lr`` and keeps neither
as state.  With constant hyperparameters the two agree exactly (tests/torch/test_parameter_side_parity.py);
under schedules, per-step changes, a float64 default dtype and through checkpoints they do not yet.
"""

from __future__ import annotations

import pytest

#: (test file, test function) -> entries whose cases are known to fail, with the reason.
KNOWN_GAPS: dict[tuple[str, str], dict[str, str]] = {
    (file, test): {"asgd": "eta and mu are not yet kept in torch.optim.ASGD's state form (open issue)"}
    for file, test in (
        ("test_bridge_schedules.py", "test_schedulers_that_cycle_momentum_or_betas"),
        ("test_bridge_schedules.py", "test_every_hyperparameter_changed_at_every_step"),
        ("test_bridge_schedules.py", "test_every_hyperparameter_and_a_tensor_lr_changed_on_the_other_paths"),
        ("test_bridge_schedules.py", "test_a_tensor_lr_stays_a_tensor_and_in_place_changes_count"),
        ("test_bridge_schedules.py", "test_float64_default_dtype"),
        ("test_bridge_checkpoints.py", "test_a_torch_checkpoint_resumes_in_the_bridge"),
        ("test_bridge_checkpoints.py", "test_a_bridge_checkpoint_resumes_in_torch"),
    )
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        gaps = KNOWN_GAPS.get((item.path.name, getattr(item, "originalname", item.name)))
        callspec = getattr(item, "callspec", None)
        if not gaps or callspec is None:
            continue
        for name, reason in gaps.items():
            if name in callspec.params.values():
                item.add_marker(pytest.mark.xfail(strict=True, reason=f"{name}: {reason}"))
