"""Achieved memory bandwidth of an Adam step on a CUDA GPU: the bridge beside torch.optim, in the same run.

An Adam step in float32 reads the parameter, the gradient and both moments and
writes the parameter and both moments: 7 x 4 bytes per element.  For N
parameters over ~50 tensors this script times one ``opt.step()`` (CUDA events,
median over interleaved rounds) of torch.optim.Adam (default, ``foreach=True``,
``fused=True``) and of :class:`optfilters.torch.FilterOptimizer` (default and
``fused=True``), reports bytes/s = 28 N / step time, and the bandwidth of a
plain device-to-device copy of the same size measured in the same run (a
practical ceiling).  Needs a CUDA device; prints a one-line message otherwise.

Usage::

    python bench/bench_bridge_gpu.py                      # 10M and 100M parameters
    python bench/bench_bridge_gpu.py --sizes 1e7 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from typing import Any

import torch

from optfilters.torch import FilterOptimizer

BYTES_PER_ELEMENT = 7 * 4  # read p, g, m, v; write p, m, v (float32)


def make_parameters(total: int, device: str, count: int = 50) -> list[torch.nn.Parameter]:
    """``count`` float32 tensors (half matrices, half vectors) holding about ``total`` elements, with gradients."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    sizes = [max(1, round(total * w)) for w in torch.rand(count, generator=gen).add_(0.5).div_(count).tolist()]
    scale = total / sum(sizes)
    params = []
    for size in sizes:
        p = torch.nn.Parameter(torch.randn(max(1, round(size * scale)), device=device))
        p.grad = torch.randn_like(p)
        params.append(p)
    return params


def time_steps(step: Callable[[], Any], steps: int) -> float:
    """Median milliseconds per call over ``steps`` CUDA-event-timed calls."""
    times = []
    for _ in range(steps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def run(total: int, rounds: int, steps: int) -> dict[str, Any]:
    """Time every variant at ``total`` parameters; return step times (ms) and bandwidths (GB/s)."""
    variants: dict[str, Callable[[list[torch.nn.Parameter]], Any]] = {
        "torch default": lambda ps: torch.optim.Adam(ps, lr=1e-3),
        "torch foreach": lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=True),
        "torch fused": lambda ps: torch.optim.Adam(ps, lr=1e-3, fused=True),
        "bridge default": lambda ps: FilterOptimizer(ps, "adam", lr=1e-3),
        "bridge fused": lambda ps: FilterOptimizer(ps, "adam", lr=1e-3, fused=True),
    }
    optimizers = {}
    elements = 0
    for name, build in variants.items():
        params = make_parameters(total, "cuda")
        elements = sum(p.numel() for p in params)
        opt = build(params)
        for _ in range(3):  # warm-up (and compilation for the fused bridge)
            opt.step()
        torch.cuda.synchronize()
        optimizers[name] = opt
    source = torch.empty(elements * 7, dtype=torch.float32, device="cuda")  # the same bytes as one Adam step
    target = torch.empty_like(source)
    samples: dict[str, list[float]] = {name: [] for name in [*variants, "copy"]}
    for _ in range(rounds):
        for name, opt in optimizers.items():
            samples[name].append(time_steps(opt.step, steps))
        samples["copy"].append(time_steps(lambda: target.copy_(source), steps))
    result: dict[str, Any] = {"parameters": elements, "bytes_per_step": BYTES_PER_ELEMENT * elements, "variants": {}}
    for name, values in samples.items():
        ms = statistics.median(values)
        moved = BYTES_PER_ELEMENT * elements if name != "copy" else 2 * source.numel() * 4
        result["variants"][name] = {"ms": ms, "GB_per_s": moved / (ms * 1e-3) / 1e9}
    fastest = min(v["ms"] for k, v in result["variants"].items() if k.startswith("torch"))
    for name in ("bridge default", "bridge fused"):
        result["variants"][name]["ratio_to_fastest_torch"] = result["variants"][name]["ms"] / fastest
    return result


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e7, 1e8], help="parameter counts")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench_bridge_gpu: no CUDA device; nothing measured")
        sys.exit(0)
    props = torch.cuda.get_device_properties(0)
    print(f"{props.name}, torch {torch.__version__}; Adam step, float32, ~50 tensors; median of {args.rounds} rounds")
    results = []
    for size in args.sizes:
        r = run(int(size), args.rounds, args.steps)
        results.append(r)
        print(f"\n{r['parameters']:,} parameters ({r['bytes_per_step'] / 1e9:.2f} GB moved per step)")
        for name, v in r["variants"].items():
            ratio = f"  ratio {v['ratio_to_fastest_torch']:.2f}" if "ratio_to_fastest_torch" in v else ""
            print(f"  {name:15s} {v['ms']:8.3f} ms  {v['GB_per_s']:8.0f} GB/s{ratio}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"device": props.name, "torch": torch.__version__, "results": results}, handle, indent=2)


if __name__ == "__main__":
    main()
