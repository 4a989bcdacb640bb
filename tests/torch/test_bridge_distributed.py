"""The bridge under torch.distributed: DDP with the gloo backend, 2 processes on CPU.

Each rank trains on its half of a batch; DDP averages the gradients, so both
ranks must end with identical parameters, equal (to rounding) to one process
training on the whole batch.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from optfilters import ArmaFilter
from optfilters.torch import FilterOptimizer


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


WORLD = 2
DDP_STEPS = 25
DDP_CASES: dict[str, tuple[Any, dict[str, Any]]] = {
    "adam": ("adam", {"lr": 1e-2}),
    "nesterov": ("nesterov", {"lr": 0.05, "momentum": 0.9}),
    "resonant filter": (ArmaFilter([0.05, 0.05], [1.0, -1.6, 0.7]), {"lr": 0.05}),
}


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, generator=gen, dtype=torch.float64)
    return x, torch.cos(x.sum(1, keepdim=True))


def network() -> torch.nn.Module:
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, 1)).double()


def train_ddp(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, name: str) -> torch.Tensor:
    model_spec, kwargs = DDP_CASES[name]
    opt = FilterOptimizer(model.parameters(), model_spec, **kwargs)
    for _ in range(DDP_STEPS):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def ddp_worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        x, y = batch()
        half = x.shape[0] // WORLD
        part = slice(rank * half, (rank + 1) * half)
        results = {}
        for name in DDP_CASES:
            ddp = torch.nn.parallel.DistributedDataParallel(network())
            results[name] = train_ddp(ddp, x[part], y[part], name)
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch.distributed with gloo")
@pytest.mark.skipif(sys.platform == "win32", reason="file:// rendezvous and fork-free spawn are tested on POSIX")
def test_ddp_gloo_two_processes_match_a_single_process(tmp_path: Path) -> None:
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    mp.spawn(ddp_worker, args=(str(tmp_path / "rendezvous"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks: list[dict[str, Any]] = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    x, y = batch()
    for name in DDP_CASES:
        single = train_ddp(network(), x, y, name)
        assert torch.equal(ranks[0][name], ranks[1][name]), name  # replicas stay identical
        start = torch.cat([p.detach().flatten() for p in network().parameters()])
        assert (single - start).abs().max() > 1e-3  # it trained
        error = ((ranks[0][name] - single).abs().max() / single.abs().max()).item()
        assert error < 1e-10, f"{name}: DDP differs from one process by {error:.2e}"
