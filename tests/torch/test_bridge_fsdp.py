"""The bridge under FSDP2 (``torch.distributed.fsdp.fully_shard``): 2 processes on CPU with gloo.

The parameters are DTensors sharded over the two ranks, and so is the
optimizer state (each rank keeps the filter memories of its shard).  Each rank
trains on its half of a batch; the sharded run must equal one process training
the same network on the whole batch, for catalogue entries and designed
filters, on the single-tensor, multi-tensor and fused paths.  Entries whose
stages act on whole tensors (Muon, Adafactor) refuse sharded parameters with
a one-line ValueError before anything moves.  A checkpoint
written through ``torch.distributed.checkpoint`` mid-run resumes exactly.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
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
FSDP_STEPS, CHECKPOINT_AT = 8, 4
FSDP_CASES: dict[str, tuple[Any, dict[str, Any]]] = {
    "adam": ("adam", {"lr": 1e-2}),
    "nadam, foreach": ("nadam", {"lr": 1e-2, "foreach": True}),
    "nesterov, fused": ("nesterov", {"lr": 0.05, "momentum": 0.9, "fused": True}),
    "rmsprop centered": ("rmsprop", {"lr": 1e-2, "centered": True, "momentum": 0.5}),
    "butterworth order 4": ("butterworth", {"lr": 0.02, "order": 4, "cutoff": 0.1, "dc_gain": 5.0}),
    "resonant filter, fused": (ArmaFilter([0.05, 0.05], [1.0, -1.6, 0.7]), {"lr": 0.05, "fused": True}),
    "rprop": ("rprop", {"lr": 1e-2}),
    "asgd, foreach": ("asgd", {"lr": 0.05, "t0": 2.0, "lambd": 0.01, "foreach": True}),
}
#: Entries whose stages act on whole tensors: sharded parameters are refused (a shard would get a wrong step).
WHOLE_TENSOR = {
    "muon": "Newton-Schulz orthogonalisation of the whole matrix",
    "adafactor": "row and column statistics and the RMS of the whole parameter",
}


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, generator=gen, dtype=torch.float64)
    return x, torch.cos(x.sum(1, keepdim=True))


def network() -> torch.nn.Module:
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, 1)).double()


def optimizer(model: torch.nn.Module, name: str) -> FilterOptimizer:
    spec, kwargs = FSDP_CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fused=True without a C compiler falls back with a warning
        return FilterOptimizer(model.parameters(), spec, **kwargs)


def train_fsdp(model: torch.nn.Module, opt: FilterOptimizer, x: torch.Tensor, y: torch.Tensor, steps: int) -> None:
    for _ in range(steps):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt.step()


def full(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([getattr(p, "full_tensor", p.detach)().detach().flatten() for p in model.parameters()])


def full_param(p: torch.Tensor) -> torch.Tensor:
    return getattr(p, "full_tensor", p.detach)().detach().clone()


def fsdp_worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
        from torch.distributed.fsdp import fully_shard
        from torch.distributed.tensor import DTensor

        def sharded() -> torch.nn.Module:
            model = network()
            for layer in model:
                if isinstance(layer, torch.nn.Linear):
                    fully_shard(layer)
            fully_shard(model)
            return model

        x, y = batch()
        half = x.shape[0] // WORLD
        part = slice(rank * half, (rank + 1) * half)
        results: dict[str, Any] = {}
        for i, name in enumerate(FSDP_CASES):
            model = sharded()
            opt = optimizer(model, name)
            train_fsdp(model, opt, x[part], y[part], CHECKPOINT_AT)
            model_state, optim_state = get_state_dict(model, opt)
            checkpoint = os.path.join(out_dir, f"checkpoint{i}")
            dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=checkpoint)
            train_fsdp(model, opt, x[part], y[part], FSDP_STEPS - CHECKPOINT_AT)
            first = next(iter(model.parameters()))
            sharded_state = [k for k, v in opt.state[first].items() if isinstance(v, DTensor)]
            resumed = sharded()
            opt2 = optimizer(resumed, name)
            model_state, optim_state = get_state_dict(resumed, opt2)
            loaded = {"model": model_state, "optim": optim_state}
            dcp.load(loaded, checkpoint_id=checkpoint)
            set_state_dict(resumed, opt2, model_state_dict=loaded["model"], optim_state_dict=loaded["optim"])
            train_fsdp(resumed, opt2, x[part], y[part], FSDP_STEPS - CHECKPOINT_AT)
            results[name] = {
                "params": full(model),
                "resumed": full(resumed),
                "sharded_state": sharded_state,
                "local_rows": first.to_local().shape[0],
            }
        for name in WHOLE_TENSOR:
            model = sharded()
            params = [p for p in model.parameters() if p.ndim == 2] if name == "muon" else list(model.parameters())
            opt = FilterOptimizer(params, name, lr=1e-2)
            before = [full_param(p) for p in params]
            ((model(x[part]) - y[part]) ** 2).mean().backward()
            try:
                opt.step()
                results[name] = {"error": None}
            except ValueError as exc:
                changed = any(not torch.equal(full_param(p), b) for p, b in zip(params, before, strict=True))
                results[name] = {"error": str(exc), "changed": changed, "state": len(opt.state)}
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch.distributed with gloo")
@pytest.mark.skipif(sys.platform == "win32", reason="file:// rendezvous and fork-free spawn are tested on POSIX")
def test_fsdp2_sharded_runs_match_one_process_and_resume_from_distributed_checkpoints(tmp_path: Path) -> None:
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    mp.spawn(fsdp_worker, args=(str(tmp_path / "rendezvous"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks: list[dict[str, Any]] = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    x, y = batch()
    start = full(network())
    for name in FSDP_CASES:
        model = network()
        train_fsdp(model, optimizer(model, name), x, y, FSDP_STEPS)
        single = full(model)
        assert (single - start).abs().max() > 1e-3, name  # it trained
        for rank in ranks:
            result = rank[name]
            assert result["sharded_state"], f"{name}: the optimizer state is not sharded"
            assert result["local_rows"] < network()[0].weight.shape[0]  # each rank holds part of the weight
            error = float((result["params"] - single).abs().max() / single.abs().max())
            assert error < 1e-10, f"{name}: FSDP2 differs from one process by {error:.2e}"
            assert torch.equal(result["resumed"], result["params"]), f"{name}: the resumed run differs"
        assert torch.equal(ranks[0][name]["params"], ranks[1][name]["params"])
    for name in WHOLE_TENSOR:
        for rank in ranks:
            result = rank[name]
            assert result["error"] is not None, f"{name}: a sharded step ran ({WHOLE_TENSOR[name]})"
            assert re.fullmatch(
                rf"FilterOptimizer\({name}\): parameter 0 of group 0 is sharded \(DTensor, e\.g\. FSDP2\) and .+ "
                r"acts on the whole tensor, not elementwise: a shard would get a wrong step; "
                r"keep these parameters unsharded",
                result["error"],
            ), result["error"]
            assert not result["changed"] and result["state"] == 0  # refused before anything moved
