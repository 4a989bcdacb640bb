"""Learning-rate schedules against torch.optim.lr_scheduler, and torch schedulers as inputs of the prediction."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.optim import lr_scheduler  # noqa: E402

from optfilters.noisy_quadratic import (  # noqa: E402
    Cosine,
    Exponential,
    InverseTime,
    Linear,
    Step,
    Warmup,
    lr_sequence,
    predict,
)

LR = 0.3


def torch_lrs(make, steps: int) -> list[float]:
    """The learning rate of each optimizer step under a torch scheduler, stepped after each step as usual."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=LR)
    sched = make(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


CASES = [
    (Exponential(0.9), lambda o: lr_scheduler.ExponentialLR(o, gamma=0.9)),
    (Step(4, 0.5), lambda o: lr_scheduler.StepLR(o, step_size=4, gamma=0.5)),
    (Linear(10, 1.0, 0.1), lambda o: lr_scheduler.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=10)),
    (Warmup(5, start_factor=0.2), lambda o: lr_scheduler.LinearLR(o, start_factor=0.2, end_factor=1.0, total_iters=5)),
    (InverseTime(0.25), lambda o: lr_scheduler.LambdaLR(o, lambda e: 1.0 / (1.0 + 0.25 * e))),
    (Cosine(12, 0.1), lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=12, eta_min=0.1 * LR)),
    (
        Warmup(4, then=Cosine(10)),
        lambda o: lr_scheduler.SequentialLR(
            o,
            [
                lr_scheduler.LambdaLR(o, lambda e: min(1.0, (e + 1) / 4)),
                lr_scheduler.CosineAnnealingLR(o, T_max=10),
            ],
            milestones=[4],
        ),
    ),
]


@pytest.mark.parametrize(("schedule", "make"), CASES)
def test_schedules_are_torchs(schedule, make):
    steps = 13
    np.testing.assert_allclose(lr_sequence(schedule, LR, steps), torch_lrs(make, steps), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("schedule", "make"), CASES)
def test_torch_schedulers_are_sampled_as_factories(schedule, make):
    np.testing.assert_allclose(lr_sequence(make, LR, 13), lr_sequence(schedule, LR, 13), rtol=1e-12, atol=1e-15)


def test_a_scheduler_instance_is_sampled_on_a_copy():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=LR)
    sched = lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    opt.step()
    sched.step()  # one step in: the sample starts from the current state
    lrs = lr_sequence(sched, 123.0, 4)  # lr is ignored: the scheduler's own rates
    np.testing.assert_allclose(lrs, [LR, LR * 0.1, LR * 0.1, LR * 0.01])
    assert sched.last_epoch == 1 and opt.param_groups[0]["lr"] == LR  # untouched


def test_prediction_with_a_torch_scheduler_matches_the_same_schedule():
    make = CASES[5][1]  # cosine over 12 steps (torch's rises again afterwards; ours stays at the minimum)
    a = predict("momentum", momentum=0.9, lr=LR, noise_var=1.0, steps=13, schedule=make)
    b = predict("momentum", momentum=0.9, lr=LR, noise_var=1.0, steps=13, schedule=CASES[5][0])
    np.testing.assert_allclose(a.expected_loss, b.expected_loss, rtol=1e-12)


def test_reduce_on_plateau_is_refused():
    p = torch.nn.Parameter(torch.zeros(1))
    sched = lr_scheduler.ReduceLROnPlateau(torch.optim.SGD([p], lr=LR))
    with pytest.raises(ValueError, match="not a fixed schedule"):
        lr_sequence(sched, LR, 3)
