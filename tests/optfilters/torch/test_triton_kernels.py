"""``fused=True`` on CUDA: Triton kernels generated from the program, checked on CPU under Triton's interpreter.

The same generated kernel that runs on a GPU runs here on CPU tensors under
Triton's interpreter (``FilterOptimizer._fused_backend = "triton"``): it must
follow the default path to rounding and the C kernels of the CPU fused path
exactly (they compute the same operations in the same order), for every
catalogue entry, in float32 and bfloat16, over many tensors of mixed shapes,
with a learning rate given as a tensor.  The kernel is also compiled for an
H100/H200 (sm_90) without a GPU, to check its machine code.  Tests marked for
CUDA compare against torch.optim's CUDA classes and skip without a GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import optfilters
from optfilters import CATALOGUE
from optfilters.torch import FilterOptimizer
from optfilters.torch import triton_kernels as tk
from optfilters.torch._native import compiler
from optfilters.torch._program import Instruction, Plan, Program
from tests.optfilters.torch.test_optimizer import fusable, fused_settings  # every catalogue entry and its examples

needs_triton = pytest.mark.skipif(not tk.available(), reason="triton is not installed")


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


SHAPES = [(7, 5), (33,), (1,)]  # with 16-element blocks: whole blocks and partial ones


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """16-element blocks: small tensors then cover the kernel's whole-block and partial-block branches."""
    monkeypatch.setattr(tk, "BLOCK", 16)


@pytest.fixture
def exact_fma(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the interpreter's ``tl.fma`` a fused multiply-add (rounded once), as on a GPU.

    Some Triton versions interpret ``tl.fma(x, y, z)`` as ``x * y + z`` in
    float32 (two roundings); the GPU's ``fma.rn.f32`` rounds once.  A float64
    product of two float32 values is exact, so computing in float64 and
    rounding once models the GPU instruction.
    """
    import triton.language as tl
    from triton.runtime import interpreter

    builder = getattr(interpreter, "InterpreterBuilder", None)
    if builder is None or not hasattr(builder, "create_fma"):
        return
    x = interpreter.TensorHandle(np.array([1 + 2**-12], dtype=np.float32), tl.float32)
    z = interpreter.TensorHandle(np.array([-1.0], dtype=np.float32), tl.float32)
    if builder.create_fma(builder, x, x, z).data[0] == np.float32(2**-11 + 2**-24):
        return  # already rounded once

    def create_fma(self: Any, x: Any, y: Any, z: Any) -> Any:
        exact = x.data.astype(np.float64) * y.data.astype(np.float64) + z.data.astype(np.float64)
        return interpreter.TensorHandle(exact.astype(z.data.dtype), z.dtype.scalar)

    monkeypatch.setattr(builder, "create_fma", create_fma)


def train(
    name: str,
    kwargs: dict[str, Any],
    dtype: torch.dtype,
    backend: str | None,
    steps: int = 8,
    shapes: list[tuple[int, ...]] | None = None,
    lr: float | torch.Tensor = 1e-2,
    schedule: float = 1.0,
) -> tuple[list[torch.Tensor], FilterOptimizer]:
    """``steps`` steps from fixed parameters and gradients; ``backend`` None is the default (non-fused) path.

    ``schedule`` multiplies the learning rate after each step (in place for a tensor lr).
    """
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen).to(dtype)) for s in shapes or SHAPES]
    opt = FilterOptimizer(params, name, lr=lr, **kwargs, fused=backend is not None)
    if backend is not None:
        opt._fused_backend = backend
    gen.manual_seed(1)
    for _ in range(steps):
        for p in params:
            p.grad = (torch.randn(p.shape, generator=gen, dtype=torch.float64) + 0.1 * p.detach().double()).to(dtype)
        opt.step()
        if schedule != 1.0:
            group = opt.param_groups[0]
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].mul_(schedule)
            else:
                group["lr"] *= schedule
    return [p.detach().clone() for p in params], opt


def ran_triton(opt: FilterOptimizer) -> bool:
    return any(key[0] == "triton" for key in opt._fused)


# ----------------------------------------------------------------------------- every catalogue entry


@needs_triton
@pytest.mark.parametrize(("name", "kwargs"), fused_settings(), ids=lambda v: str(v))
def test_triton_kernels_match_the_default_path(
    name: str, kwargs: dict[str, Any], small_blocks: None, exact_fma: None
) -> None:
    shapes = [(7, 5), (3, 11), (1, 1)] if CATALOGUE[name].parameter_ndim == 2 else None
    expected, _ = train(name, kwargs, torch.float32, None, shapes=shapes)
    if not fusable(name, kwargs, "triton"):
        # operations without a Triton form (the Cautious mask; Muon's and Adafactor's whole-tensor operations):
        # no Triton kernel, the default path with one warning
        with pytest.warns(UserWarning, match="has no Triton form"):
            got, opt = train(name, kwargs, torch.float32, "triton", shapes=shapes)
        assert not ran_triton(opt)
        for e, g in zip(expected, got, strict=True):
            torch.testing.assert_close(g, e, rtol=1e-6, atol=1e-7)
        return
    got, opt = train(name, kwargs, torch.float32, "triton", shapes=shapes)
    assert ran_triton(opt)
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)
    if compiler() is not None:  # the C kernel computes the same operations in the same order: bit for bit
        native, _ = train(name, kwargs, torch.float32, "native", shapes=shapes)
        for n, g in zip(native, got, strict=True):
            assert torch.equal(n, g)


@needs_triton
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("adam", {}), ("momentum", {}), ("butterworth", {"order": 8, "cutoff": 0.01}), ("lion", {}), ("adadelta", {})],
    ids=lambda v: str(v),
)
def test_bfloat16_parameters_have_float32_state_and_one_rounding(
    name: str, kwargs: dict[str, Any], small_blocks: None, exact_fma: None
) -> None:
    expected, _ = train(name, kwargs, torch.bfloat16, None)
    got, opt = train(name, kwargs, torch.bfloat16, "triton")
    assert ran_triton(opt)
    for e, g in zip(expected, got, strict=True):
        assert g.dtype == torch.bfloat16
        # one float32 update rounded once into bfloat16: at most one bfloat16 step apart
        torch.testing.assert_close(g.float(), e.float(), rtol=2**-7, atol=1e-3)
    state = next(iter(opt.state.values()))
    assert all(v.dtype == torch.float32 for k, v in state.items() if k != "step")
    if compiler() is not None:  # the C kernel rounds to nearest even too
        native, _ = train(name, kwargs, torch.bfloat16, "native")
        for n, g in zip(native, got, strict=True):
            assert torch.equal(n, g)


@needs_triton
def test_bfloat16_rounding_is_to_nearest_even_with_nan_kept() -> None:
    """The generated store rounds float32 to bfloat16 as torch does (ties to even, NaN stays NaN, overflow to inf)."""
    program = Program((Instruction("add_", None, ("param", "grad"), 0),), (lambda t, lr: 1.0,), ())
    kernel = tk.TritonKernel(program, "bfloat16", interpret=True, block=16)
    # float32 sums below, at and above the halfway point between neighbouring bfloat16 values, odd and even
    bits = [0x3F808000, 0x3F818000, 0x3F80C000, 0xBF80C000, 0x3F804000, 0xBF818000, 0x42FF8000]
    exact = torch.tensor(bits, dtype=torch.int64).to(torch.int32).view(torch.float32)
    hi = exact.to(torch.bfloat16)
    lo = (exact - hi.float()).to(torch.bfloat16)
    assert torch.equal(hi.float() + lo.float(), exact)  # param + grad is exactly the float32 value
    param = torch.cat([hi, torch.tensor([float("nan"), 3.0e38, -3.0e38], dtype=torch.bfloat16)])
    grad = torch.cat([lo, torch.tensor([0.0, 1.0e38, -1.0e38], dtype=torch.bfloat16)])
    expected = (param.float() + grad.float()).to(torch.bfloat16)  # torch's float32 -> bfloat16 conversion
    with np.errstate(over="ignore"):  # the interpreter computes the overflowing sums in numpy
        assert kernel.run([param], [grad], [{}], [1.0], torch.float32)
    assert torch.equal(param[:-3], expected[:-3])
    assert torch.isnan(param[-3]) and param[-2] == float("inf") and param[-1] == float("-inf")
    assert torch.equal(param[-2:], expected[-2:])


# ----------------------------------------------------------------------------- shapes, layouts, lr


@needs_triton
@pytest.mark.parametrize("name", ["adam", "nadam", "momentum"])
def test_many_tensors_of_mixed_shapes(name: str, small_blocks: None, exact_fma: None) -> None:
    rng = np.random.default_rng(0)
    shapes: list[tuple[int, ...]] = [(), (0,), (16,), (17,), (3, 0, 2)]
    shapes += [tuple(int(v) for v in rng.integers(1, 6, size=rng.integers(1, 4))) for _ in range(55)]
    expected, _ = train(name, {}, torch.float32, None, steps=3, shapes=shapes)
    got, opt = train(name, {}, torch.float32, "triton", steps=3, shapes=shapes)
    assert ran_triton(opt)
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)
    kernel = next(k for key, k in opt._fused.items() if key[0] == "triton")
    assert isinstance(kernel, tk.TritonKernel)
    assert (False, True) in kernel._compiled  # one launch over all 60 tensors, aligned addresses


@needs_triton
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("adamw", {"weight_decay": 0.1}),
        ("nesterov", {}),
        ("nadam", {"weight_decay": 0.01, "decoupled_weight_decay": True}),
    ],
    ids=str,
)
def test_a_tensor_lr_is_read_by_the_kernel(
    name: str, kwargs: dict[str, Any], small_blocks: None, exact_fma: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A learning-rate tensor changed in place between steps: the kernel reads it, the host never does."""
    expected, _ = train(name, kwargs, torch.float32, "triton", lr=0.02, schedule=0.8)
    lr = torch.tensor(0.02, dtype=torch.float64)

    def no_host_read(self: torch.Tensor) -> Any:
        raise AssertionError("the learning rate was read on the host")

    monkeypatch.setattr(torch.Tensor, "item", no_host_read)
    got, opt = train(name, kwargs, torch.float32, "triton", lr=lr, schedule=0.8)
    monkeypatch.undo()
    kernel = next(k for key, k in opt._fused.items() if key[0] == "triton")
    assert isinstance(kernel, tk.TritonKernel) and any(variant[0] for variant in kernel._compiled)
    assert float(lr) == pytest.approx(0.02 * 0.8**8)
    for e, g in zip(expected, got, strict=True):  # a + b * lr in float64 against the host's own formula
        torch.testing.assert_close(g, e, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("options", [{"foreach": False}, {"foreach": True}], ids=str)
def test_a_tensor_lr_is_kept_and_honoured_on_the_other_paths(options: dict[str, Any]) -> None:
    params = [torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))]
    lr = torch.tensor(0.5, dtype=torch.float64)
    opt = FilterOptimizer(params, "sgd", lr=lr, **options)
    assert opt.param_groups[0]["lr"] is lr  # as torch.optim keeps it: a scheduler may change it in place
    for step in range(3):
        for p in params:
            p.grad = torch.ones_like(p)
        opt.step()
        lr.mul_(0.5)
        assert torch.equal(params[0], torch.full((3,), 1.0 - sum(0.5 ** (k + 1) for k in range(step + 1))))


def test_scalar_slots_are_traced_as_affine_in_lr() -> None:
    program = Plan(optfilters.get("adamw", weight_decay=0.1), torch.float32).program(3)
    slots = tk.DeviceLr(program, 3, torch.tensor(0.25))
    assert slots.a is not None and slots.b is not None
    expected = program.scalar_values(3, 0.25)
    assert [a + b * 0.25 for a, b in zip(slots.a, slots.b, strict=True)] == pytest.approx(expected, rel=1e-15)
    assert tk.lr_dependent_slots(program) == tuple(k for k, b in enumerate(slots.b) if b != 0.0)
    assert len(tk.lr_dependent_slots(program) or ()) == 2  # the decoupled decay 1 - lr wd and the update -lr / c
    squared = Program((Instruction("add_", None, ("param", "grad"), 0),), (lambda t, lr: -lr * lr,), ())
    assert tk.lr_dependent_slots(squared) is None
    assert tk.DeviceLr(squared, 1, torch.tensor(0.5)).a is None
    assert tk.DeviceLr(squared, 1, torch.tensor(0.5)).values() == [-0.25]


@needs_triton
def test_a_slot_not_affine_in_lr_reads_the_tensor_on_the_host() -> None:
    squared = Program((Instruction("add_", None, ("param", "grad"), 0),), (lambda t, lr: -lr * lr,), ())
    kernel = tk.TritonKernel(squared, "float32", interpret=True, block=16)
    p, g = torch.ones(3), torch.full((3,), 2.0)
    assert kernel.run([p], [g], [{}], tk.DeviceLr(squared, 1, torch.tensor(0.5)), torch.float32)
    assert p.tolist() == [0.5, 0.5, 0.5]
    assert kernel._compiled == {(False, True)}


@needs_triton
def test_unaligned_and_non_contiguous_parameters(small_blocks: None, exact_fma: None) -> None:
    """Views at odd offsets run without vector hints; a transposed parameter runs on the multi-tensor path."""
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(200, generator=gen)

    def make() -> list[torch.nn.Parameter]:
        flat = base.clone()
        return [
            torch.nn.Parameter(flat[1:36].view(7, 5)),  # 4-byte aligned only
            torch.nn.Parameter(flat[40:73]),
            torch.nn.Parameter(base[100:124].clone().view(4, 6).t()),  # not contiguous
        ]

    runs = []
    for backend in (None, "triton"):
        params = make()
        opt = FilterOptimizer(params, "adam", lr=0.05, fused=backend is not None)
        if backend:
            opt._fused_backend = backend
        for k in range(6):
            for i, p in enumerate(params):
                p.grad = torch.sin(torch.arange(p.numel(), dtype=torch.float32) + k + i).view(p.shape).contiguous()
            opt.step()
        runs.append((params, opt))
    (expected, _), (got, opt) = runs
    kernel = next(k for key, k in opt._fused.items() if key[0] == "triton")
    assert isinstance(kernel, tk.TritonKernel) and (False, False) in kernel._compiled
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- one kernel, fallbacks


@needs_triton
def test_one_kernel_per_program_and_a_deterministic_source(small_blocks: None) -> None:
    _, opt = train("radam", {}, torch.float32, "triton", steps=8)  # rectification off, then on: two programs
    kernels = [key for key in opt._fused if key[0] == "triton"]
    assert len(kernels) == 2
    loaded = len(tk._modules)
    _, again = train("radam", {}, torch.float32, "triton", steps=8)
    assert len(tk._modules) == loaded  # the same sources: nothing new generated or loaded
    assert [key for key in again._fused if key[0] == "triton"] == kernels
    first = Plan(optfilters.get("adam"), torch.float32).program(4)
    second = Plan(optfilters.get("adam", betas=(0.8, 0.999), eps=1e-6), torch.float32).program(9)
    assert first.signature == second.signature  # other scalar values only
    assert tk.generate_source(first, "float32") == tk.generate_source(second, "float32")  # Triton's cache key


@needs_triton
def test_without_triton_the_fused_step_runs_the_multi_tensor_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(*args: Any, **kwargs: Any) -> None:
        raise ImportError("No module named 'triton'")

    monkeypatch.setattr(tk.TritonKernel, "__init__", missing)
    expected, _ = train("adam", {"amsgrad": True}, torch.float32, None, steps=4)
    with pytest.warns(UserWarning, match="could not use its Triton kernel .ImportError"):
        got, opt = train("adam", {"amsgrad": True}, torch.float32, "triton", steps=4)
    assert not ran_triton(opt) and opt._compile_failed
    for e, g in zip(expected, got, strict=True):
        assert torch.equal(e, g)


@needs_triton
def test_a_kernel_that_fails_to_compile_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Any, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("ptxas failed\ndetails")

    monkeypatch.setattr(tk.TritonKernel, "run", broken)
    expected, _ = train("momentum", {}, torch.float32, None, steps=4)
    with pytest.warns(UserWarning, match="could not use its Triton kernel .RuntimeError: ptxas failed."):
        got, opt = train("momentum", {}, torch.float32, "triton", steps=4)
    assert opt._compile_failed and not ran_triton(opt)
    for e, g in zip(expected, got, strict=True):
        assert torch.equal(e, g)


def test_invalid_kernel_settings() -> None:
    program = Plan(optfilters.get("sgd"), torch.float32).program(1)
    with pytest.raises(ValueError, match="kind must be 'float32' or 'bfloat16'"):
        tk.generate_source(program, "float64")
    if tk.available():
        with pytest.raises(ValueError, match="block must be a power of two"):
            tk.TritonKernel(program, "float32", interpret=True, block=100)
    cpu = torch.zeros(3)
    assert tk.triton_kind(cpu) is None and tk.triton_kind(cpu, interpret=True) == "float32"
    assert tk.triton_kind(cpu.double(), interpret=True) is None


# ----------------------------------------------------------------------------- the machine code for a GPU


@needs_triton
@pytest.mark.parametrize(
    ("name", "kwargs", "kind"),
    [
        ("adam", {}, "float32"),
        ("adam", {}, "bfloat16"),
        ("momentum", {}, "float32"),
        ("butterworth", {"order": 8}, "float32"),
    ],
    ids=str,
)
def test_the_gpu_kernel_loads_whole_vectors_and_does_not_spill(name: str, kwargs: dict[str, Any], kind: str) -> None:
    """Compiled for sm_90 (H100/H200) without a GPU: per element one 16-byte-vector load and store of each tensor.

    A program reads its block's row and tensor record (``2 + 1 + 2 + states``
    8-byte loads), converts each scalar slot once, and on whole blocks loads
    and stores every tensor with ``ld/st.global.v4.b32`` (8 elements per
    thread: two vectors of float32, one of bfloat16); nothing spills to local
    memory.
    """
    program = Plan(optfilters.get(name, **kwargs), torch.float32).program(5)
    try:
        report = tk.gpu_report(program, kind)
    except (ImportError, RuntimeError) as exc:  # a triton without its CUDA back end
        pytest.skip(f"cannot compile for sm_90 here: {exc}")
    states = len(program.state)
    per_thread = tk.BLOCK // (32 * tk.NUM_WARPS)
    vectors = {"float32": per_thread * 4 // 16, "bfloat16": per_thread * 2 // 16}
    f32 = per_thread * 4 // 16
    assert report["loads"].get("ld.global.b64") == 2 + 1 + 2 + states
    assert report["loads"].get("ld.global.v4.b32", 0) >= 2 * vectors[kind] + states * f32
    assert report["stores"].get("st.global.v4.b32", 0) >= vectors[kind] + states * f32
    assert report["ptx"].count("cvt.rn.f32.f64") == len(program.scalars)  # once per program, not per element
    if report["registers"] is not None:
        assert report["local_bytes"] == 0 and report["registers"] <= 255


@needs_triton
def test_compiled_kernels_are_cached_across_processes(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Triton's on-disk cache: another process compiling the same program finds the binary and adds nothing."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("TRITON_CACHE_DIR", str(cache))
    try:
        tk.gpu_report(Plan(optfilters.get("momentum"), torch.float32).program(2), "float32")
    except (ImportError, RuntimeError) as exc:  # a triton without its CUDA back end
        pytest.skip(f"cannot compile for sm_90 here: {exc}")
    first = sorted(p.relative_to(cache) for p in cache.rglob("*") if p.is_file())
    script = (
        "import torch, optfilters\n"
        "from optfilters.torch._program import Plan\n"
        "from optfilters.torch import triton_kernels as tk\n"
        "tk.gpu_report(Plan(optfilters.get('momentum', momentum=0.5), torch.float32).program(7), 'float32')\n"
    )
    subprocess.run([sys.executable, "-c", script], env=dict(os.environ), check=True, capture_output=True)
    second = sorted(p.relative_to(cache) for p in cache.rglob("*") if p.is_file())
    assert first and first == second


# ----------------------------------------------------------------------------- on a GPU


@needs_cuda
@needs_triton
def test_cuda_triton_parity_with_torch_optim_for_every_catalogue_entry() -> None:  # pragma: no cover - GPU only
    """On the GPU, in float32, the Triton step follows torch.optim's own CUDA implementation."""
    for name, entry in CATALOGUE.items():
        if entry.torch_class is None:
            continue
        torch_class = getattr(torch.optim, entry.torch_class.rsplit(".", 1)[-1])
        params = entry.validate({})
        gen = torch.Generator().manual_seed(0)
        shapes = [(64, 33), (1000,), (3,), (2048,)]
        if entry.parameter_ndim == 2:  # matrices only (Muon)
            shapes = [(64, 33), (10, 100), (3, 1), (2, 1024)]
        start = [torch.randn(s, generator=gen) for s in shapes]
        ours = [torch.nn.Parameter(p.cuda()) for p in start]
        theirs = [torch.nn.Parameter(p.cuda()) for p in start]
        opt = FilterOptimizer(ours, name, fused=True)
        ref = torch_class(theirs, **entry.torch_kwargs(params))
        for k in range(50):
            for a, b in zip(ours, theirs, strict=True):
                wobble = torch.sin(torch.arange(a.numel(), device="cuda", dtype=torch.float32) + 0.37 * k).view(a.shape)
                a.grad = 0.5 * a.detach() + 0.1 * wobble
                b.grad = 0.5 * b.detach() + 0.1 * wobble
            opt.step()
            ref.step()
        program = optfilters.get(name).plan().program(2)
        elementwise = all(isinstance(ins.op, str) or ins.op.triton is not None for ins in program.instructions)
        assert ran_triton(opt) == elementwise, name  # whole-tensor operations (Muon, Adafactor) run unfused
        for a, b in zip(ours, theirs, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)


@needs_cuda
@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize(("name", "kwargs"), [("adam", {}), ("momentum", {}), ("butterworth", {"order": 8})], ids=str)
def test_cuda_triton_matches_the_default_path(
    name: str, kwargs: dict[str, Any], dtype: torch.dtype
) -> None:  # pragma: no cover - GPU only
    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(s, generator=gen).to(dtype) for s in [(257, 33), (4097,), (1,), (1 << 20,)]]
    runs = []
    for fused in (False, True):
        params = [torch.nn.Parameter(p.cuda()) for p in start]
        opt = FilterOptimizer(params, name, lr=1e-2, fused=fused, **kwargs)
        for k in range(20):
            for p in params:
                p.grad = torch.cos(torch.arange(p.numel(), device="cuda", dtype=torch.float32) * 0.1 + k).to(dtype)
                p.grad = p.grad.view(p.shape)
            opt.step()
        runs.append((params, opt))
    assert ran_triton(runs[1][1])
    for e, g in zip(runs[0][0], runs[1][0], strict=True):
        if dtype == torch.float32:
            torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)
        else:
            torch.testing.assert_close(g.float(), e.float(), rtol=2**-7, atol=1e-3)


@needs_cuda
@needs_triton
def test_cuda_tensor_lr_steps_without_synchronising() -> None:  # pragma: no cover - GPU only
    params = [torch.nn.Parameter(torch.randn(s, device="cuda")) for s in [(300, 7), (5000,)]]
    lr = torch.tensor(1e-3, device="cuda")
    opt = FilterOptimizer(params, "adamw", lr=lr, fused=True)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()  # state created, tables uploaded
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(5):
            opt.step()
            lr.mul_(0.5)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert ran_triton(opt)
    kernel = next(k for key, k in opt._fused.items() if key[0] == "triton")
    assert isinstance(kernel, tk.TritonKernel) and any(variant[0] for variant in kernel._compiled)


def test_import_has_no_triton_side_effects() -> None:
    """``optfilters.torch`` does not import triton until a Triton kernel is built."""
    code = "import sys, optfilters.torch; print('triton' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# ----------------------------------------------------------------------------- the GPU benchmark script


BENCH = str(Path(__file__).resolve().parents[3] / "bench" / "bench_bridge_gpu.py")


@needs_triton
def test_the_gpu_benchmark_runs_its_cpu_dry_run(tmp_path: Any) -> None:
    """``bench/bench_bridge_gpu.py`` end to end on CPU (Triton interpreted): every variant runs and is checked."""
    out = tmp_path / "bench.json"
    command = [sys.executable, BENCH, "--cpu-dry-run", "--models", "sgd-momentum", "--sizes", "1000"]
    command += ["--rounds", "1", "--steps", "1", "--triton-configs", "1024x4", "--json", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "copy (same bytes)" in result.stdout and "x torch fused" in result.stdout
    (r,) = json.loads(out.read_text())["results"]
    assert r["bytes_per_parameter"] == 20 and r["tensors"] == 50
    names = ["torch default", "torch foreach", "torch fused", "bridge default", "bridge triton 1024x4"]
    assert set(r["variants"]) == {*names, "bridge triton 1024x4 tensor lr"}
    for name in ("bridge triton 1024x4", "bridge triton 1024x4 tensor lr"):
        v = r["variants"][name]
        assert v["ran_triton"] and v["max_rel_diff_vs_bridge_default"] < 1e-6
    assert all(v["ms"] > 0 and v["GB_per_s"] > 0 for v in r["variants"].values())


def test_the_gpu_benchmark_checks_the_goals(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_bridge_gpu", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_bridge_gpu", bench)
    spec.loader.exec_module(bench)
    name = "bridge triton 1024x4"

    def result(model: str, n: int, ms: float, fused: float | None, share: float, per: int) -> dict[str, Any]:
        entry: dict[str, Any] = {"ms": ms, "of_copy_bandwidth": share}
        if fused is not None:
            entry["ratio_to_torch_fused"] = ms / fused
        return {"model": model, "parameters": n, "bytes_per_step": per * n, "variants": {name: entry}}

    n = 100_000_000
    lines = bench.goals(
        [
            result("sgd-momentum", n, 0.9, 1.0, 0.8, 20),
            result("adam", n, 1.1, 1.0, 0.75, 28),
            result("butterworth-8", n, 1.1 * 76 / 28 * 1.2, None, 0.6, 76),
        ],
        name,
    )
    assert lines == [
        "PASS  sgd-momentum at 100,000,000: Triton / torch fused step time = 0.90 (goal <= 1.0)",
        "FAIL  adam at 100,000,000: Triton / torch fused step time = 1.10 (goal <= 1.0)",
        "PASS  sgd-momentum at 100,000,000: 0.80 of the copy bandwidth (goal >= 0.7)",
        "PASS  adam at 100,000,000: 0.75 of the copy bandwidth (goal >= 0.7)",
        "FAIL  butterworth-8 at 100,000,000: 0.60 of the copy bandwidth (goal >= 0.7)",
        "PASS  butterworth-8 at 100,000,000: time per byte moved = 1.20 x Adam's (goal <= 1.3)",
    ]
    assert bench.bytes_per_parameter(bench.MODELS["butterworth-8"][1]) == 76
    assert bench.parse_configs("1024x4, 2048") == [(1024, 4), (2048, bench.tk.NUM_WARPS)]


# ----------------------------------------------------------------------------- a stage kind's own operation


def _clamp_op(with_triton: bool) -> Any:
    from optfilters.program import Op

    return Op(
        "clamp_min" if with_triton else "clamp_min_no_triton",
        numpy=lambda x, s: np.maximum(x, s),
        torch=lambda x, s: torch.clamp(x, min=s),
        c=lambda args, s: f"fmax({args[0]}, {s})",
        triton=(lambda args, s: f"tl.maximum({args[0]}, {s})") if with_triton else None,
    )


def _floored_model(with_triton: bool) -> Any:
    """Momentum 0.9 divided by ``max(sqrt(v), 0.5)``, ``v`` an EMA(0.9) of g^2: a stage kind with its own Op."""
    from dataclasses import dataclass
    from typing import ClassVar

    from optfilters.program import LinComb, ProgramBuilder, Signals
    from optfilters.stages import Stage

    op = _clamp_op(with_triton)

    @dataclass(frozen=True)
    class Floored(Stage):
        role: ClassVar[str] = "normaliser"
        is_linear: ClassVar[bool] = False

        def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
            v = bld.state("floored.v")
            bld.emit("mul_s_", None, v, slot=bld.const(0.9))
            bld.emit("addcmul_", None, v, sig.grad, sig.grad, slot=bld.const(0.1))
            den = bld.new(op, bld.new("sqrt", v), slot=bld.const(0.5))
            sig.direction = LinComb.of(bld.materialise(sig.direction))
            sig.direction.den = den

        def describe(self) -> str:
            return "divide by max(sqrt(v), 0.5)"

    return optfilters.chain(optfilters.get("momentum", momentum=0.9), Floored(), lr=0.01)


@needs_triton
def test_a_stage_kinds_own_operation_runs_in_the_kernel_through_its_triton_form(small_blocks: None) -> None:
    model = _floored_model(with_triton=True)
    expected, _ = train(model, {}, torch.float32, None)  # type: ignore[arg-type]
    got, opt = train(model, {}, torch.float32, "triton")  # type: ignore[arg-type]
    assert ran_triton(opt) and not any(key[0] == "triton" for key in opt._compile_failed)
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)


@needs_triton
def test_an_operation_without_a_triton_form_falls_back_with_one_warning(small_blocks: None) -> None:
    model = _floored_model(with_triton=False)
    expected, _ = train(model, {}, torch.float32, None)  # type: ignore[arg-type]
    with pytest.warns(UserWarning, match="has no Triton form"):
        got, opt = train(model, {}, torch.float32, "triton")  # type: ignore[arg-type]
    assert any(key[0] == "triton" for key in opt._compile_failed)
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-6, atol=1e-7)
