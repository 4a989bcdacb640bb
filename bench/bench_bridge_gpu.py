"""Step time and achieved memory bandwidth of optimizer steps on a CUDA GPU: torch.optim beside the bridge.

For SGD with momentum, Adam and an 8th-order Butterworth low-pass, on N float32
parameters spread over ~50 tensors (N = 1M, 10M and 100M by default), this
script times ``opt.step()`` of

* torch.optim: default, ``foreach=True`` and ``fused=True`` (SGD and Adam; a
  Butterworth design has no torch.optim class);
* the bridge, :class:`optfilters.torch.FilterOptimizer`: its default
  (multi-tensor) path, and ``fused=True``, which runs the generated Triton
  kernel (one launch per step), once per launch configuration given with
  ``--triton-configs`` (elements per program x warps), and once more with the
  learning rate given as a CUDA tensor (read by the kernel);

and a device-to-device copy of as many bytes as one step moves (a practical
ceiling).  A step reads and writes the parameter and every filter state and
reads the gradient: 20 bytes per parameter for SGD momentum, 28 for Adam, 76
for the 8th-order Butterworth (8 state tensors) in float32.  GB/s = bytes moved
/ step time.  Steps are timed with CUDA events over ``--steps`` consecutive
steps (so host overhead counts where the GPU waits for it), in ``--rounds``
interleaved rounds; the table shows the median.  Before timing, every variant
runs three warm-up steps (the Triton kernel compiles then, see ``compile s``)
and the fused bridge is checked against the bridge's default path
(``max rel diff``: the largest difference over the largest value, per tensor).

The goals of issue 19 are checked at the end: the Triton step at most 1.0x
torch's fused step for SGD momentum and Adam at 10M and 100M parameters; at
least 0.7 of the copy bandwidth at 100M; the Butterworth step within 1.3x of
Adam's time per byte moved.

Needs a CUDA device (prints a one-line message and exits 0 otherwise);
``--cpu-dry-run`` runs the same code on CPU with tiny sizes and the Triton
kernel under Triton's interpreter (to check the script; its times mean nothing).

Usage::

    python bench/bench_bridge_gpu.py                                  # everything: ~5-10 minutes on an H100
    python bench/bench_bridge_gpu.py --sizes 1e7 --models adam --json out.json
    python bench/bench_bridge_gpu.py --triton-configs 1024x4,2048x8,4096x8
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

import optfilters
from optfilters.torch import FilterOptimizer
from optfilters.torch import triton_kernels as tk
from optfilters.torch._program import Plan

MODELS: dict[str, tuple[type[torch.optim.Optimizer] | None, Any, dict[str, Any]]] = {
    "sgd-momentum": (torch.optim.SGD, "momentum", {"lr": 1e-3, "momentum": 0.9}),
    "adam": (torch.optim.Adam, "adam", {"lr": 1e-3}),
    "butterworth-8": (None, optfilters.get("butterworth", order=8, cutoff=0.02, dc_gain=10.0), {"lr": 1e-3}),
}


@dataclass
class Variant:
    """One optimizer to time: how to build it on a list of parameters, and how it runs."""

    name: str
    build: Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer]
    triton_config: tuple[int, int] | None = None  # (block, warps) for the Triton variants
    reference: str | None = None  # check the parameters against this variant's after the warm-up


def shapes(total: int, tensors: int = 50) -> list[tuple[int, ...]]:
    """``tensors // 2`` matrices of varied shapes and as many bias vectors, about ``total`` elements in all."""
    pairs = tensors // 2
    per = total / pairs
    out: list[tuple[int, ...]] = []
    for i in range(pairs):
        rows = max(1, int(per**0.5 * (0.5 + i / pairs)))
        cols = max(1, int((per - rows) / rows))
        out += [(rows, cols), (rows,)]
    return out


def make_parameters(total: int, device: str) -> list[torch.nn.Parameter]:
    """Float32 parameters (with gradients) of the shapes above, the same values on every call."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    params = []
    for shape in shapes(total):
        p = torch.nn.Parameter(torch.randn(shape, generator=gen).to(device))
        p.grad = torch.randn(shape, generator=gen).to(device)
        params.append(p)
    return params


def bytes_per_parameter(model: Any) -> int:
    """Bytes one step moves per float32 parameter: parameter read+write, gradient read, each state read+write."""
    program = Plan(optfilters.get(model) if isinstance(model, str) else model, torch.float32).program(2)
    return 4 * (3 + 2 * len(program.state))


@contextlib.contextmanager
def triton_config(config: tuple[int, int] | None) -> Iterator[None]:
    """Launch configuration of the Triton kernels built inside the block."""
    saved = tk.BLOCK, tk.NUM_WARPS
    if config is not None:
        tk.BLOCK, tk.NUM_WARPS = config
    try:
        yield
    finally:
        tk.BLOCK, tk.NUM_WARPS = saved


class Timer:
    """Milliseconds per call over consecutive calls: CUDA events on a GPU, wall time on CPU."""

    def __init__(self, device: str) -> None:
        self.cuda = device == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def __call__(self, fn: Callable[[], Any], calls: int) -> float:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(calls):
                fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / calls
        begin = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - begin) * 1e3 / calls


def variants(model_name: str, configs: list[tuple[int, int]]) -> list[Variant]:
    """The optimizers timed for one model (the first Triton configuration also runs with a tensor lr)."""
    torch_class, model, hps = MODELS[model_name]
    out: list[Variant] = []
    if torch_class is not None:
        cls = torch_class
        out += [
            Variant("torch default", lambda ps: cls(ps, **hps)),
            Variant("torch foreach", lambda ps: cls(ps, **hps, foreach=True)),
            Variant("torch fused", lambda ps: cls(ps, **hps, fused=True)),
        ]
    fixed = {k: v for k, v in hps.items() if k != "lr"} if isinstance(model, str) else {}
    out.append(Variant("bridge default", lambda ps: FilterOptimizer(ps, model, lr=hps["lr"], **fixed)))
    for block, warps in configs:
        out.append(
            Variant(
                f"bridge triton {block}x{warps}",
                lambda ps: FilterOptimizer(ps, model, lr=hps["lr"], fused=True, **fixed),
                triton_config=(block, warps),
                reference="bridge default",
            )
        )
    block, warps = configs[0]
    out.append(
        Variant(
            f"bridge triton {block}x{warps} tensor lr",
            lambda ps: FilterOptimizer(ps, model, lr=torch.tensor(hps["lr"], device=ps[0].device), fused=True, **fixed),
            triton_config=(block, warps),
            reference="bridge default",
        )
    )
    return out


def prepare(variant: Variant, total: int, device: str, dry_run: bool) -> tuple[torch.optim.Optimizer, list[Any]]:
    params = make_parameters(total, device)
    with triton_config(variant.triton_config):
        opt = variant.build(params)
        if dry_run and isinstance(opt, FilterOptimizer) and variant.triton_config is not None:
            opt._fused_backend = "triton"  # the interpreter on CPU
        for _ in range(3):
            opt.step()
    return opt, params


def run(
    model_name: str, total: int, configs: list[tuple[int, int]], rounds: int, steps: int, device: str, dry_run: bool
) -> dict[str, Any]:
    """Time every variant of one model at ``total`` parameters."""
    timer = Timer(device)
    per = bytes_per_parameter(MODELS[model_name][1])
    elements = sum(int(torch.Size(s).numel()) for s in shapes(total))
    moved = per * elements
    result: dict[str, Any] = {
        "model": model_name,
        "parameters": elements,
        "tensors": len(shapes(total)),
        "bytes_per_parameter": per,
        "bytes_per_step": moved,
        "variants": {},
    }
    live: dict[str, tuple[torch.optim.Optimizer, list[Any]]] = {}
    for variant in variants(model_name, configs):
        entry: dict[str, Any] = {}
        result["variants"][variant.name] = entry
        try:
            opt, params = prepare(variant, total, device, dry_run)
        except Exception as exc:  # e.g. out of memory, or torch without a fused kernel for this device
            entry["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:120]
            gc.collect()
            if device == "cuda":
                torch.cuda.empty_cache()
            continue
        timer.sync()
        if isinstance(opt, FilterOptimizer) and variant.triton_config is not None:
            entry["compile_s"] = opt.compile_seconds
            entry["ran_triton"] = any(key[0] == "triton" for key in opt._fused)
        if variant.reference is not None and variant.reference in live:
            ref = live[variant.reference][1]
            diff = max(  # normwise: the largest difference over the largest value, per tensor
                float((a.detach() - b.detach()).abs().max() / b.detach().abs().max().clamp_min(1e-30))
                for a, b in zip(params, ref, strict=True)
            )
            entry["max_rel_diff_vs_" + variant.reference.replace(" ", "_")] = diff
        live[variant.name] = (opt, params)
    source = torch.empty(max(1, moved // 8), dtype=torch.float32, device=device)  # a copy reads and writes it
    target = torch.empty_like(source)
    samples: dict[str, list[float]] = {name: [] for name in live}
    samples["copy"] = []
    for _ in range(rounds):
        for name, (opt, _) in live.items():
            samples[name].append(timer(opt.step, steps))
        samples["copy"].append(timer(lambda: target.copy_(source), steps))
    copy_ms = statistics.median(samples["copy"])
    copy_bw = 2 * source.numel() * 4 / (copy_ms * 1e-3) / 1e9
    result["copy"] = {"ms": copy_ms, "GB_per_s": copy_bw}
    fused = samples.get("torch fused")
    fused_ms = statistics.median(fused) if fused else None
    for name, values in samples.items():
        if name == "copy":
            continue
        ms = statistics.median(values)
        entry = result["variants"][name]
        entry["ms"] = ms
        entry["GB_per_s"] = moved / (ms * 1e-3) / 1e9
        entry["of_copy_bandwidth"] = entry["GB_per_s"] / copy_bw
        if fused_ms is not None:
            entry["ratio_to_torch_fused"] = ms / fused_ms
    return result


def print_table(r: dict[str, Any]) -> None:
    print(
        f"\n{r['model']}: {r['parameters']:,} float32 parameters in {r['tensors']} tensors, "
        f"{r['bytes_per_parameter']} bytes per parameter ({r['bytes_per_step'] / 1e9:.3f} GB per step)"
    )
    print(f"  {'variant':34s} {'ms/step':>9s} {'GB/s':>8s} {'x torch fused':>14s} {'of copy BW':>11s}  notes")
    for name, v in r["variants"].items():
        if "error" in v:
            print(f"  {name:34s} {'-':>9s} {'-':>8s} {'-':>14s} {'-':>11s}  not run: {v['error']}")
            continue
        ratio = f"{v['ratio_to_torch_fused']:.2f}" if "ratio_to_torch_fused" in v else "-"
        notes = []
        if "compile_s" in v:
            notes.append(f"compile {v['compile_s']:.2f} s")
        if v.get("ran_triton") is False:
            notes.append("NOT the Triton kernel")
        notes += [f"max rel diff {value:.1e}" for key, value in v.items() if key.startswith("max_rel_diff")]
        print(
            f"  {name:34s} {v['ms']:9.4f} {v['GB_per_s']:8.1f} {ratio:>14s} {v['of_copy_bandwidth']:11.2f}  "
            + ", ".join(notes)
        )
    print(f"  {'copy (same bytes)':34s} {r['copy']['ms']:9.4f} {r['copy']['GB_per_s']:8.1f}")


def goals(results: list[dict[str, Any]], default: str) -> list[str]:
    """The goals of issue 19, checked on the shipped launch configuration ``default``."""
    lines = []
    by = {(r["model"], r["parameters"]): r for r in results}
    sizes = sorted({r["parameters"] for r in results})
    big = [n for n in sizes if n >= 5_000_000]

    def get(model: str, n: int, key: str) -> float | None:
        r = by.get((model, n))
        v = r["variants"].get(default) if r else None
        return v.get(key) if v else None

    for model in ("sgd-momentum", "adam"):
        for n in big:
            ratio = get(model, n, "ratio_to_torch_fused")
            if ratio is not None:
                verdict = "PASS" if ratio <= 1.0 else "FAIL"
                lines.append(f"{verdict}  {model} at {n:,}: Triton / torch fused step time = {ratio:.2f} (goal <= 1.0)")
    largest = max(sizes) if sizes else None
    if largest is not None and largest >= 50_000_000:
        for model in MODELS:
            share = get(model, largest, "of_copy_bandwidth")
            if share is not None:
                verdict = "PASS" if share >= 0.7 else "FAIL"
                lines.append(f"{verdict}  {model} at {largest:,}: {share:.2f} of the copy bandwidth (goal >= 0.7)")
    for n in big:
        bw, adam = get("butterworth-8", n, "ms"), get("adam", n, "ms")
        if bw is not None and adam is not None:
            per_byte = (bw / by[("butterworth-8", n)]["bytes_per_step"]) / (adam / by[("adam", n)]["bytes_per_step"])
            verdict = "PASS" if per_byte <= 1.3 else "FAIL"
            lines.append(
                f"{verdict}  butterworth-8 at {n:,}: time per byte moved = {per_byte:.2f} x Adam's (goal <= 1.3)"
            )
    return lines


def parse_configs(text: str) -> list[tuple[int, int]]:
    configs = []
    for item in text.split(","):
        block, _, warps = item.strip().partition("x")
        configs.append((int(block), int(warps or tk.NUM_WARPS)))
    return configs


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7, 1e8], help="parameter counts")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument(
        "--triton-configs",
        default=f"{tk.BLOCK}x{tk.NUM_WARPS},2048x4,2048x8",
        help="Triton launch configurations BLOCKxWARPS, comma-separated; the first is the shipped default",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="timed consecutive steps per round")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--cpu-dry-run", action="store_true", help="check the script on CPU (Triton interpreted)")
    args = parser.parse_args(argv)
    configs = parse_configs(args.triton_configs)
    if args.cpu_dry_run:
        device, sizes = "cpu", [min(int(s), 4000) for s in args.sizes]
        torch.set_num_threads(1)
    elif not torch.cuda.is_available():
        print("bench_bridge_gpu: no CUDA device; nothing measured (--cpu-dry-run checks the script on CPU)")
        return 0
    else:
        device, sizes = "cuda", [int(s) for s in args.sizes]
    if not tk.available():
        print("bench_bridge_gpu: triton is not installed; the fused bridge would not run its Triton kernel")
        return 1
    import triton

    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        where = f"{props.name} ({props.multi_processor_count} SMs, {props.total_memory / 2**30:.0f} GiB)"
    else:
        where = "CPU dry run: Triton interpreted, times mean nothing"
    print(f"{where}; torch {torch.__version__}, triton {triton.__version__}; float32; median of {args.rounds} rounds")
    results = []
    for model in args.models:
        for size in sizes:
            r = run(model, size, configs, args.rounds, args.steps, device, args.cpu_dry_run)
            gc.collect()  # this size's tensors, before the next
            if device == "cuda":
                torch.cuda.empty_cache()
            results.append(r)
            print_table(r)
            sys.stdout.flush()
    default = f"bridge triton {configs[0][0]}x{configs[0][1]}"
    lines = goals(results, default)
    print(f"\nGoals of issue 19 ({default}):" if lines else "")
    for line in lines:
        print("  " + line)
    if device == "cuda":
        capability = props.major * 10 + props.minor
        print(f"\nThe generated kernel for each model (sm_{capability}, shipped configuration):")
        for model in args.models:
            m = MODELS[model][1]
            program = Plan(optfilters.get(m) if isinstance(m, str) else m, torch.float32).program(2)
            try:
                report = tk.gpu_report(program, "float32", capability=capability)
            except Exception as exc:
                print(f"  {model}: not compiled ({type(exc).__name__})")
                continue
            print(
                f"  {model}: {report['registers']} registers, {report['local_bytes']} bytes spilled, "
                f"loads {report['loads']}, stores {report['stores']}"
            )
    if args.json:
        info = {"device": where, "torch": torch.__version__, "triton": triton.__version__, "results": results}
        with open(args.json, "w") as handle:
            json.dump(info, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
