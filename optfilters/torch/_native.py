"""The ``fused=True`` path on CPU: a C kernel generated from a program, compiled once with the system C compiler.

Each step is one pass over every parameter's memory: the generated loop loads
the parameter, its gradient and its filter state, runs the program's
instructions on scalars in registers and stores the results.  The work is
split into chunks over all the tensors of a call and shared between
``torch.get_num_threads()`` OpenMP threads.  The C operations follow ATen's CPU
kernels (``fma`` where ATen's ``add(alpha=)``, ``addcmul`` and ``lerp`` use one),
so results match the eager path to rounding, and usually exactly.

Compilation takes a fraction of a second (``cc -O3 -march=native -fopenmp``);
the shared library lives in a temporary directory for the life of the process.
"""

from __future__ import annotations

import array
import atexit
import ctypes
import hashlib
import operator
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from itertools import repeat
from typing import Any

import torch
from torch import Tensor

from ..program import Instruction, Op, Program
from ._kernels import grads_fit
from ._program import kernel_registers

__all__ = ["NativeKernel", "compiler", "generate_source", "native_kind"]

#: Elements per work item (a chunk never spans two tensors).
CHUNK = 1 << 15
#: Below this many elements in a call the kernel runs on one thread (a thread team costs more than it saves).
PARALLEL_THRESHOLD = 1 << 16

_KINDS = {torch.float32: "float32", torch.float64: "float64", torch.bfloat16: "bfloat16"}
_DTYPE = operator.attrgetter("dtype")
_IS_CPU = operator.attrgetter("is_cpu")
_DATA_PTR = Tensor.data_ptr
_FLAGS = ["-O3", "-march=native", "-fopenmp", "-ffp-contract=off", "-fno-math-errno", "-shared", "-fPIC"]

_lock = threading.Lock()
_libraries: dict[str, ctypes.CDLL] = {}
_workdir: str | None = None
_compiler_checked = False
_compiler: str | None = None


def compiler() -> str | None:
    """The C compiler used for fused kernels (``$CC``, ``cc`` or ``gcc``), or None when there is none."""
    global _compiler_checked, _compiler
    if not _compiler_checked:
        _compiler_checked = True
        candidates = [os.environ.get("CC", ""), "cc", "gcc"]
        _compiler = next((path for c in candidates if c and (path := shutil.which(c))), None)
    return _compiler


def native_kind(param: Tensor) -> str | None:
    """``'float32'``, ``'float64'`` or ``'bfloat16'`` when a CPU parameter can run natively, else None."""
    if param.device.type != "cpu" or param.is_complex():
        return None
    if type(param) is not Tensor and type(param) is not torch.nn.Parameter:  # a subclass (DTensor): its local shard
        return None
    return _KINDS.get(param.dtype)


# ----------------------------------------------------------------------------- code generation

_HEADER = r"""
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float bf16_load(uint16_t h) { uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); return f; }
static inline uint16_t bf16_store(float f) {
    uint32_t u; memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);  /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);                                            /* round to nearest even */
    return (uint16_t)(u >> 16);
}
"""


def _statement(ins: Instruction, reg: dict[str, str], real: str) -> str:
    f = "f" if real == "float" else ""
    a = [reg[x] for x in ins.args]
    s = f"c{ins.slot}" if ins.slot is not None else ""
    if isinstance(ins.op, Op):
        if ins.op.c is None or ins.out is None:
            raise RuntimeError(f"the operation {ins.op.name!r} has no C form")
        return f"{real} {reg[ins.out]} = ({real})({ins.op.c(a, s or '0')});"
    one = "1.0f" if real == "float" else "1.0"
    half = "0.5f" if real == "float" else "0.5"
    expr = {
        "neg": lambda: f"-{a[0]}",
        "add": lambda: f"fma{f}({s}, {a[1]}, {a[0]})",
        "add_": lambda: f"fma{f}({s}, {a[1]}, {a[0]})",
        "mul": lambda: f"{a[0]} * {a[1]}",
        "mul_": lambda: f"{a[0]} * {a[1]}",
        "div_": lambda: f"{a[0]} / {a[1]}",
        "mul_s": lambda: f"{a[0]} * {s}",
        "mul_s_": lambda: f"{a[0]} * {s}",
        "div_s": lambda: f"{a[0]} / {s}",
        "div_s_": lambda: f"{a[0]} / {s}",
        "add_s": lambda: f"{a[0]} + {s}",
        "add_s_": lambda: f"{a[0]} + {s}",
        "addcmul": lambda: f"fma{f}({s} * {a[1]}, {a[2]}, {a[0]})",
        "addcmul_": lambda: f"fma{f}({s} * {a[1]}, {a[2]}, {a[0]})",
        "addcdiv_": lambda: f"{a[0]} + ({s} * {a[1]}) / {a[2]}",
        "lerp_": lambda: (
            f"(fabs{f}({s}) < {half}) ? fma{f}({s}, {a[1]} - {a[0]}, {a[0]}) "
            f": fma{f}({s} - {one}, {a[1]} - {a[0]}, {a[1]})"
        ),
        "sqrt": lambda: f"sqrt{f}({a[0]})",
        "sqrt_": lambda: f"sqrt{f}({a[0]})",
        "maximum_": lambda: (
            f"({a[0]} != {a[0]} || {a[1]} != {a[1]}) ? {a[0]} + {a[1]} : ({a[0]} > {a[1]} ? {a[0]} : {a[1]})"
        ),
        "abs": lambda: f"fabs{f}({a[0]})",
        "sign": lambda: f"({real})(({a[0]} > 0) - ({a[0]} < 0))",
        "copy_": lambda: a[1],
        "clone": lambda: a[0],
        "zero_": lambda: "0",
    }[ins.op]()
    if ins.out is not None:
        return f"{real} {reg[ins.out]} = {expr};"
    return f"{a[0]} = {expr};"


def generate_source(program: Program, kind: str) -> str:
    """C source of the step kernel for ``program`` on parameters of ``kind``.

    The function ``optfilters_step`` takes chunk tables (tensor index, begin,
    end), the data pointers of the parameters, of the gradients and of the
    state tensors (per parameter, in ``program.state`` order), the scalar
    slots and a thread count.

    Examples
    --------
    >>> import torch, optfilters
    >>> from optfilters.torch._program import Plan
    >>> from optfilters.torch._native import generate_source
    >>> source = generate_source(Plan(optfilters.get("momentum"), torch.float32).program(2), "float32")
    >>> "fmaf(c1, r_grad, r_s0)" in source
    True
    """
    real = "double" if kind == "float64" else "float"
    storage = {"float32": "float", "float64": "double", "bfloat16": "uint16_t"}[kind]
    keys = [spec.key for spec in program.state]
    reg = kernel_registers(program)
    n_states = len(keys)
    load = (lambda p: f"bf16_load({p}[j])") if kind == "bfloat16" else (lambda p: f"{p}[j]")
    store = (lambda p, v: f"{p}[j] = bf16_store({v});") if kind == "bfloat16" else (lambda p, v: f"{p}[j] = {v};")
    lines = [_HEADER]
    lines.append(
        "void optfilters_step(int64_t n_chunks, const int64_t* chunk_tensor, const int64_t* chunk_begin, "
        "const int64_t* chunk_end, const uint64_t* param_ptrs, const uint64_t* grad_ptrs, const uint64_t* state_ptrs, "
        "const double* scalars, int n_threads) {"
    )
    lines.append("  #pragma omp parallel for schedule(static) num_threads(n_threads) if(n_threads > 1)")
    lines.append("  for (int64_t c = 0; c < n_chunks; ++c) {")
    lines.append("    const int64_t i = chunk_tensor[c];")
    lines.append(f"    {storage}* restrict p_param = ({storage}*)(uintptr_t)param_ptrs[i];")
    lines.append(f"    const {storage}* restrict p_grad = (const {storage}*)(uintptr_t)grad_ptrs[i];")
    for i in range(len(keys)):
        lines.append(f"    {real}* restrict p_s{i} = ({real}*)(uintptr_t)state_ptrs[i * {n_states} + {i}];")
    for k in range(len(program.scalars)):
        lines.append(f"    const {real} c{k} = ({real})scalars[{k}];")
    lines.append("    const int64_t end = chunk_end[c];")
    lines.append("    #pragma omp simd")
    lines.append("    for (int64_t j = chunk_begin[c]; j < end; ++j) {")
    lines.append(f"      {real} r_param = {load('p_param')};")
    lines.append(f"      const {real} r_grad = {load('p_grad')};")
    for i in range(len(keys)):
        lines.append(f"      {real} r_s{i} = p_s{i}[j];")
    for ins in program.instructions:
        lines.append("      " + _statement(ins, reg, real))
    lines.append("      " + store("p_param", "r_param"))
    for i in range(len(keys)):
        lines.append(f"      p_s{i}[j] = r_s{i};")
    lines.append("    }")
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _cleanup() -> None:
    if _workdir is not None:
        shutil.rmtree(_workdir, ignore_errors=True)


def _load(source: str) -> tuple[ctypes.CDLL, float]:
    """Compile (once per process and source) and load the kernel; returns the library and the seconds spent."""
    global _workdir
    digest = hashlib.sha256(("\n".join(_FLAGS) + source).encode()).hexdigest()[:20]
    with _lock:
        if digest in _libraries:
            return _libraries[digest], 0.0
        cc = compiler()
        if cc is None:
            raise RuntimeError("no C compiler found (set $CC); fused=True needs one on CPU")
        if _workdir is None:
            _workdir = tempfile.mkdtemp(prefix="optfilters-kernels-")
            atexit.register(_cleanup)
        src = os.path.join(_workdir, f"k{digest}.c")
        lib = os.path.join(_workdir, f"k{digest}.so")
        with open(src, "w") as fh:
            fh.write(source)
        start = time.perf_counter()
        result = subprocess.run([cc, *_FLAGS, src, "-o", lib, "-lm"], capture_output=True, text=True)
        if result.returncode != 0:  # e.g. a compiler without OpenMP: the same kernel on one thread
            serial = [flag for flag in _FLAGS if flag != "-fopenmp"]
            result = subprocess.run([cc, *serial, src, "-o", lib, "-lm"], capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            raise RuntimeError(f"compiling the fused kernel failed:\n{result.stderr[-2000:]}")
        handle = ctypes.CDLL(lib)
        handle.optfilters_step.restype = None
        handle.optfilters_step.argtypes = [ctypes.c_int64] + [ctypes.c_void_p] * 7 + [ctypes.c_int]
        _libraries[digest] = handle
        return handle, seconds


class NativeKernel:
    """A compiled step for one program and one parameter kind.

    Parameters
    ----------
    program : Program
        The step to run.
    kind : {"float32", "float64", "bfloat16"}
        Parameter dtype (bfloat16 parameters have float32 state).

    Examples
    --------
    >>> import torch, optfilters
    >>> from optfilters.torch._program import Plan
    >>> from optfilters.torch._native import NativeKernel, compiler
    >>> program = Plan(optfilters.get("sgd", lr=0.5), torch.float32).program(1)
    >>> p, g = torch.tensor([1.0, 2.0]), torch.tensor([2.0, 2.0])
    >>> if compiler() is not None:
    ...     NativeKernel(program, "float32").run([p], [g], [{}], program.scalar_values(1, 0.5), torch.float32)
    ... else:
    ...     p -= 0.5 * g
    True
    >>> p.tolist()
    [0.0, 1.0]
    """

    def __init__(self, program: Program, kind: str) -> None:
        self.program = program
        self.kind = kind
        self.keys = tuple(spec.key for spec in program.state)
        self.source = generate_source(program, kind)
        self._lib, self.compile_seconds = _load(self.source)
        self._fn = self._lib.optfilters_step
        self._chunks: dict[tuple[int, ...], tuple[int, int, int, int]] = {}
        self._keep: dict[tuple[int, ...], list[array.array[int]]] = {}
        self._seen: tuple[Any, ...] = (None, None, ())
        self._validated: tuple[Tensor, ...] | None = None
        self._validated_sizes: tuple[int, ...] = ()
        self.dtype = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}[kind]

    def _chunk_tables(self, sizes: tuple[int, ...]) -> tuple[int, int, int, int]:
        """``(n_chunks, tensor, begin, end)`` with the addresses of the (cached) chunk tables."""
        tables = self._chunks.get(sizes)
        if tables is None:
            tensor, begin, end = [], [], []
            for i, n in enumerate(sizes):
                for start in range(0, n, CHUNK):
                    tensor.append(i)
                    begin.append(start)
                    end.append(min(n, start + CHUNK))
            arrays = [array.array("q", values) for values in (tensor, begin, end)]
            if len(self._chunks) > 32:
                self._chunks.clear()
                self._keep.clear()
            self._keep[sizes] = arrays
            tables = (len(tensor), arrays[0].buffer_info()[0], arrays[1].buffer_info()[0], arrays[2].buffer_info()[0])
            self._chunks[sizes] = tables
        return tables

    def fits(self, param: Tensor, grad: Tensor, state: dict[str, Any], state_dtype: torch.dtype) -> bool:
        """True when the kernel can run this parameter (CPU, contiguous, the expected dtypes and sizes)."""
        if not (param.is_cpu and grad.is_cpu and param.dtype is self.dtype and grad.dtype is self.dtype):
            return False
        if not (param.is_contiguous() and grad.is_contiguous() and grad.numel() == param.numel()):
            return False
        return all(
            state[k].is_cpu
            and state[k].is_contiguous()
            and state[k].dtype == state_dtype
            and state[k].numel() == param.numel()
            for k in self.keys
        )

    def run(
        self,
        params: Sequence[Tensor],
        grads: Sequence[Tensor],
        states: Sequence[dict[str, Any]],
        scalars: Sequence[float],
        state_dtype: torch.dtype,
    ) -> bool:
        """Run the kernel; False (and nothing done) when some tensor does not :meth:`fit`.

        Everything the C code relies on for memory safety is checked: device,
        dtype, contiguity and size of every tensor.  Parameters and state
        tensors already checked (the same objects over the same memory and
        sizes) are not checked again.
        """
        keys = self.keys
        param_ptrs = array.array("Q", map(_DATA_PTR, params))
        grad_ptrs = array.array("Q", map(_DATA_PTR, grads))
        sizes = tuple(map(Tensor.numel, params))
        seen = self._seen  # parameters checked before: the same objects over the same memory and sizes
        if not (seen[0] == param_ptrs and seen[1] == sizes and all(map(operator.is_, params, seen[2]))):
            if not (
                all(map(_IS_CPU, params))
                and all(map(operator.is_, map(_DTYPE, params), repeat(self.dtype)))
                and all(map(Tensor.is_contiguous, params))
            ):
                return False
            self._seen = (param_ptrs, sizes, list(params))
        # Gradients are new tensors at every step (torch checks their device when they are assigned).
        if not grads_fit(grads, self.dtype, sizes):
            return False
        state_tensors = [st[k] for st in states for k in keys]
        validated = self._validated
        if (
            validated is None
            or sizes != self._validated_sizes
            or len(validated) != len(state_tensors)
            or not all(map(operator.is_, state_tensors, validated))
        ):
            n = len(keys)
            for i, s in enumerate(state_tensors):
                if not (s.is_cpu and s.dtype == state_dtype and s.is_contiguous() and s.numel() == sizes[i // n]):
                    return False
            self._validated = tuple(state_tensors)
            self._validated_sizes = sizes
        state_ptrs = array.array("Q", map(_DATA_PTR, state_tensors))
        values = array.array("d", scalars)
        n_chunks, tensor, begin, end = self._chunk_tables(sizes)
        threads = torch.get_num_threads() if sum(sizes) >= PARALLEL_THRESHOLD else 1
        self._fn(
            n_chunks,
            tensor,
            begin,
            end,
            param_ptrs.buffer_info()[0],
            grad_ptrs.buffer_info()[0],
            state_ptrs.buffer_info()[0] if state_tensors else None,
            values.buffer_info()[0] if values else None,
            threads,
        )
        return True
