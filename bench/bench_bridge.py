"""Step time of optfilters.torch.FilterOptimizer against torch.optim, in the same run.

For momentum SGD and Adam on N parameters spread over ~50 tensors (25 weight
matrices and 25 bias vectors, float32, CPU), times one ``opt.step()`` of:

* torch.optim: default (single-tensor on CPU), ``foreach=True`` and ``fused=True``;
* the bridge: default (multi-tensor) and ``fused=True`` (native C kernels generated from the model).

Configurations are timed in interleaved rounds (so that a change in the load of
the shared machine hits them alike); the table reports the median step time
over rounds and the ratio of each bridge variant to the FASTEST torch.optim
variant.  The first fused step compiles; its cost is reported separately
(``compile s``) and excluded from the step times.

Usage::

    python bench/bench_bridge.py                 # 1M and 10M parameters
    python bench/bench_bridge.py --sizes 1e6 --rounds 5 --json out.json
    python bench/bench_bridge.py --threads 1     # less sensitive to other load on a shared machine
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from optfilters.torch import FilterOptimizer

OPTIMIZERS: dict[str, tuple[Callable[..., torch.optim.Optimizer], str, dict[str, Any]]] = {
    "sgd-momentum": (torch.optim.SGD, "momentum", {"lr": 1e-3, "momentum": 0.9}),
    "adam": (torch.optim.Adam, "adam", {"lr": 1e-3}),
}


def shapes(total: int, tensors: int = 50) -> list[tuple[int, ...]]:
    """Shapes of ``tensors // 2`` square-ish weight matrices and as many bias vectors, ~``total`` elements."""
    pairs = tensors // 2
    per = total / pairs
    out: list[tuple[int, ...]] = []
    for i in range(pairs):
        rows = max(1, int(math.sqrt(per) * (0.5 + i / pairs)))  # varied shapes, like a real network
        cols = max(1, int((per - rows) / rows))
        out += [(rows, cols), (rows,)]
    return out


def make_params(shape_list: list[tuple[int, ...]], seed: int = 0) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(seed)
    params = []
    for shape in shape_list:
        p = torch.nn.Parameter(torch.randn(shape, generator=gen))
        p.grad = torch.randn(shape, generator=gen) * 1e-2
        params.append(p)
    return params


def build(name: str, variant: str, shape_list: list[tuple[int, ...]]) -> torch.optim.Optimizer:
    torch_cls, catalogue_name, kwargs = OPTIMIZERS[name]
    params = make_params(shape_list)
    if variant == "torch default":
        return torch_cls(params, **kwargs)
    if variant == "torch foreach":
        return torch_cls(params, foreach=True, **kwargs)
    if variant == "torch fused":
        return torch_cls(params, fused=True, **kwargs)
    if variant == "bridge default":
        return FilterOptimizer(params, catalogue_name, **kwargs)
    if variant == "bridge foreach=False":
        return FilterOptimizer(params, catalogue_name, foreach=False, **kwargs)
    if variant == "bridge fused":
        return FilterOptimizer(params, catalogue_name, fused=True, **kwargs)
    if variant == "bridge torch.compile":
        opt = FilterOptimizer(params, catalogue_name, fused=True, **kwargs)
        opt._fused_backend = "compile"  # the path used off the CPU, forced here for comparison
        return opt
    raise ValueError(f"unknown variant {variant!r}")


VARIANTS = ["torch default", "torch foreach", "torch fused", "bridge default", "bridge fused"]


def time_steps(opt: torch.optim.Optimizer, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        opt.step()
    return (time.perf_counter() - start) / steps


def bench(name: str, total: int, rounds: int, steps: int, variants: list[str]) -> dict[str, Any]:
    shape_list = shapes(total)
    n_params = sum(math.prod(s) for s in shape_list)
    opts = {}
    first_step = {}
    for variant in variants:
        opt = build(name, variant, shape_list)
        start = time.perf_counter()
        opt.step()  # the fused bridge compiles here
        first_step[variant] = time.perf_counter() - start
        opt.step()
        opts[variant] = opt
    samples: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(rounds):
        for variant in variants:
            samples[variant].append(time_steps(opts[variant], steps))
    median = {v: statistics.median(s) for v, s in samples.items()}
    fastest_torch = min(("torch default", "torch foreach", "torch fused"), key=lambda v: median[v])
    fused_opt = opts["bridge fused"]
    assert isinstance(fused_opt, FilterOptimizer)
    result = {
        "optimizer": name,
        "parameters": n_params,
        "tensors": len(shape_list),
        "ms": {v: median[v] * 1e3 for v in variants},
        "spread_ms": {v: (min(s) * 1e3, max(s) * 1e3) for v, s in samples.items()},
        "fastest_torch": fastest_torch,
        "ratio_default": median["bridge default"] / median[fastest_torch],
        "ratio_fused": median["bridge fused"] / median[fastest_torch],
        "compile_s": fused_opt.compile_seconds,
        "first_step_s": first_step,
    }
    if "bridge torch.compile" in opts:
        compiled = opts["bridge torch.compile"]
        assert isinstance(compiled, FilterOptimizer)
        result["ratio_torch_compile"] = median["bridge torch.compile"] / median[fastest_torch]
        result["torch_compile_s"] = compiled.compile_seconds
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7], help="parameter counts")
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS), choices=list(OPTIMIZERS))
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds")
    parser.add_argument("--steps", type=int, default=0, help="steps per round (default: ~2e7 / size)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument(
        "--with-compile", action="store_true", help="also time the torch.compile fused path (compiles ~30 s each)"
    )
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
        f"float32 CPU; median of {args.rounds} interleaved rounds"
    )
    header = (
        f"{'optimizer':13s} {'params':>9s} | {'torch def':>9s} {'foreach':>8s} {'fused':>8s} | "
        f"{'bridge':>8s} {'b.fused':>8s} | {'ratio':>6s} {'r.fused':>7s} | {'compile s':>9s}"
    )
    print(header)
    print("-" * len(header))
    results = []
    for size in args.sizes:
        total = int(size)
        steps = args.steps or max(3, int(2e7 / total))
        for name in args.optimizers:
            variants = VARIANTS + (["bridge torch.compile"] if args.with_compile else [])
            r = bench(name, total, args.rounds, steps, variants)
            results.append(r)
            ms = r["ms"]
            print(
                f"{name:13s} {r['parameters']:>9d} | {ms['torch default']:9.3f} {ms['torch foreach']:8.3f} "
                f"{ms['torch fused']:8.3f} | {ms['bridge default']:8.3f} {ms['bridge fused']:8.3f} | "
                f"{r['ratio_default']:6.2f} {r['ratio_fused']:7.2f} | {r['compile_s']:9.1f}",
                flush=True,
            )
            if "ratio_torch_compile" in r:
                print(
                    f"{'':13s} {'':>9s}   torch.compile path: {ms['bridge torch.compile']:.3f} ms, "
                    f"ratio {r['ratio_torch_compile']:.2f}, compile {r['torch_compile_s']:.1f} s",
                    flush=True,
                )
    print("step times in ms; ratio = bridge / fastest torch.optim variant (goal for fused: <= 1.10)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
