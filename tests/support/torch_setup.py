"""Shared set-up of the PyTorch tests: one thread, torch.optim's class for a catalogue entry, a trained state.

Used by the bridge's tests (tests/optfilters/torch/test_optimizer.py, test_checkpoint.py, test_averaged.py)
and the CLI's checkpoint tests (tests/cli/test_checkpoint.py).  A test module that imports
:func:`one_thread` runs its tests on one torch thread (module-scoped autouse fixture).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from optfilters import CATALOGUE


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Run the importing module's tests on one torch thread (reproducible sums), then restore the count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def torch_class(name: str) -> Any:
    """The torch.optim class that catalogue entry ``name`` reproduces."""
    dotted = CATALOGUE[name].torch_class
    assert dotted is not None
    module, cls = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module), cls)


def torch_optimizer(name: str, params: list[torch.nn.Parameter], **overrides: Any) -> torch.optim.Optimizer:
    """torch.optim's optimizer for entry ``name`` at its settings (a tensor ``lr`` or ``betas`` passed as given)."""
    entry = CATALOGUE[name]
    tensors = {k: overrides.pop(k) for k in ("lr", "betas") if isinstance(overrides.get(k), (torch.Tensor, tuple))}
    kwargs = entry.torch_kwargs(entry.validate(overrides))
    kwargs.update(tensors)
    return torch_class(name)(params, **kwargs)


def make_params(dtype: torch.dtype = torch.float64, name: str = "") -> list[torch.nn.Parameter]:
    """A matrix and a vector; two matrices for an entry that takes matrices only (Muon)."""
    gen = torch.Generator().manual_seed(3)
    matrices_only = bool(name) and CATALOGUE[name].parameter_ndim == 2
    return [
        torch.nn.Parameter(torch.randn(3, 2, generator=gen, dtype=dtype)),
        torch.nn.Parameter(torch.randn((2, 2) if matrices_only else (4,), generator=gen, dtype=dtype)),
    ]


def set_grads(params: list[torch.nn.Parameter], step: int) -> None:
    """Smooth, step-dependent gradients (a nonlinear function of the parameters)."""
    for i, p in enumerate(params):
        p.grad = (1.5 * p.detach() - 0.3 * (i + 1)) * (1.0 + 0.1 * np.sin(step)) + torch.cos(2.0 * p.detach())


def trained(opt: torch.optim.Optimizer, steps: int = 2) -> torch.optim.Optimizer:
    """``opt`` after ``steps`` steps on :func:`set_grads`' gradients (a state to save and convert)."""
    params = [p for g in opt.param_groups for p in g["params"]]
    for step in range(steps):
        set_grads(params, step)
        opt.step()
    return opt
