"""The ``fused=True`` path on CUDA: a Triton kernel generated from a program, one launch per step.

As :mod:`._native` writes C for the CPU, this module writes the source of one
Triton kernel for a :class:`~optfilters.torch._program.Program` and a
parameter kind (float32, or bfloat16 with float32 state).  A launch updates
every parameter of a call: program ``k`` reads one row of a block table
(tensor ``i``, first element ``start``), the tensor's record (element count,
addresses of its parameter, gradient and state tensors), the scalar slots
(kernel arguments, in float64), and then runs the program's instructions on
``BLOCK`` elements held in registers, with one load and one store of each
tensor.  The operations follow the C kernels (and so ATen's CPU kernels):
``fma`` where ATen's ``add(alpha=)``, ``addcmul`` and ``lerp`` use one,
IEEE-rounded division and square root, no other contraction; bfloat16
parameters are computed in float32 and rounded once (to nearest even) into the
parameter.

A learning rate given as a tensor on the parameters' device is read by the
kernel itself: each scalar slot that depends on lr is traced as ``a + b * lr``
on the host (in float64, with the operations of :meth:`Program.scalar_values`)
and the kernel forms ``a + b * lr`` in float64 from the tensor, so a step makes
no host-device synchronisation.  The step count and the step-dependent scalars (bias
corrections, NAdam's schedule) are computed on the host from the optimizer's
CPU step counter, so a step is not CUDA-graph capturable.

Kernels are compiled by Triton once per program signature, parameter kind and
launch configuration; Triton's on-disk cache keeps the binaries across
processes (the generated source, written to a file so that Triton can read it,
is its key).  Off CUDA (tests), the same kernel runs under Triton's CPU
interpreter.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import importlib.util
import operator
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..program import Instruction, Op, Program
from ._kernels import grads_fit
from ._program import kernel_registers

__all__ = [
    "DeviceLr",
    "TritonKernel",
    "as_floats",
    "available",
    "generate_source",
    "gpu_report",
    "lr_dependent_slots",
    "slot_values",
    "triton_kind",
]

#: Elements per Triton program (a block never spans two tensors); a multiple of 8 keeps bfloat16 blocks 16-byte aligned.
BLOCK = 1024
#: Warps per program: 128 threads, 8 elements each (two 16-byte loads of float32 or one of bfloat16 per tensor).
NUM_WARPS = 4

_KINDS = {torch.float32: "float32", torch.bfloat16: "bfloat16"}
_DATA_PTR = Tensor.data_ptr

_lock = threading.Lock()
_modules: dict[str, Any] = {}
_workdir: str | None = None
_available: bool | None = None
_lr_slots: dict[int, tuple[Program, tuple[int, ...] | None]] = {}


def available() -> bool:
    """True when the ``triton`` package imports.

    Returns
    -------
    bool
        Whether ``import triton`` succeeds (checked once, then cached).
    """
    global _available
    if _available is None:
        try:
            import triton.language  # noqa: F401
        except Exception:  # ImportError, or a broken installation
            _available = False
        else:
            _available = True
    return _available


def triton_kind(param: Tensor, interpret: bool = False) -> str | None:
    """``'float32'`` or ``'bfloat16'`` when a parameter can run the Triton kernel, else None.

    CUDA tensors run compiled kernels (unless ``TRITON_INTERPRET=1`` is set,
    which would make them interpreted on host copies); CPU tensors run only
    with ``interpret=True``, under Triton's interpreter.

    Parameters
    ----------
    param : torch.Tensor
        The parameter.
    interpret : bool
        Accept CPU tensors (run under Triton's interpreter).

    Returns
    -------
    {"float32", "bfloat16"} or None
        The kernel kind for the parameter's dtype, or None when it cannot run.
    """
    kind = _KINDS.get(param.dtype)
    if kind is None:
        return None
    if param.device.type == "cuda":
        return None if os.environ.get("TRITON_INTERPRET", "0") == "1" else kind
    return kind if interpret and param.device.type == "cpu" else None


# ----------------------------------------------------------------------------- scalars and a tensor lr


class _Affine:
    """``a + b * lr`` for a symbolic ``lr``: traces a slot function's dependence on the learning rate."""

    __slots__ = ("a", "b")
    __array_ufunc__ = None  # numpy scalars defer to the reflected operations

    def __init__(self, a: float, b: float) -> None:
        self.a, self.b = a, b

    @staticmethod
    def _number(other: Any) -> float:
        if isinstance(other, (int, float, np.integer, np.floating)) and not isinstance(other, bool):
            return float(other)
        raise TypeError("not affine in lr")

    def __add__(self, other: Any) -> _Affine:
        if isinstance(other, _Affine):
            return _Affine(self.a + other.a, self.b + other.b)
        return _Affine(self.a + self._number(other), self.b)

    __radd__ = __add__

    def __sub__(self, other: Any) -> _Affine:
        if isinstance(other, _Affine):
            return _Affine(self.a - other.a, self.b - other.b)
        return _Affine(self.a - self._number(other), self.b)

    def __rsub__(self, other: Any) -> _Affine:
        return _Affine(self._number(other) - self.a, -self.b)

    def __mul__(self, other: Any) -> _Affine:
        k = self._number(other)
        return _Affine(self.a * k, self.b * k)

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> _Affine:
        k = self._number(other)
        return _Affine(self.a / k, self.b / k)

    def __neg__(self) -> _Affine:
        return _Affine(-self.a, -self.b)

    def __pos__(self) -> _Affine:
        return self


def _trace(fn: Callable[[int, Any], Any], t: int) -> tuple[float, float] | None:
    """``(a, b)`` with ``fn(t, lr) == a + b * lr`` (``b`` 0 for a constant), or None when not affine in lr."""
    try:
        value = fn(t, _Affine(0.0, 1.0))
    except TypeError:
        return None
    if isinstance(value, _Affine):
        return value.a, value.b
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value), 0.0
    return None


class DeviceLr:
    """The scalar slots of one step whose learning rate is a tensor: ``slot_k = a_k + b_k * lr``.

    Parameters
    ----------
    program : Program
        The step's program.
    t : int
        The step number.
    lr : Tensor
        A 0-dim (or one-element) floating tensor.
    env : sequence of float, optional
        The program's running products (see
        :meth:`optfilters.program.Program.scalar_values`).

    Attributes
    ----------
    a, b : list of float
        The parts of each slot, ``b`` 0 for slots that do not depend on lr;
        None when some slot is not affine in lr (then only :meth:`values` works).

    Examples
    --------
    >>> import torch, optfilters
    >>> from optfilters.torch._program import Plan
    >>> from optfilters.torch.triton_kernels import DeviceLr
    >>> program = Plan(optfilters.get("adamw", weight_decay=0.1), torch.float32).program(1)
    >>> slots = DeviceLr(program, 1, torch.tensor(0.5))
    >>> [k for k, b in enumerate(slots.b) if b != 0.0]  # the decay 1 - lr wd and the update -lr / c
    [0, 5]
    >>> slots.a[0] + slots.b[0] * 0.5 == program.scalar_values(1, 0.5)[0] == 0.95
    True
    >>> slots.values() == program.scalar_values(1, 0.5)
    True
    """

    __slots__ = ("a", "b", "env", "lr", "program", "t")

    def __init__(self, program: Program, t: int, lr: Tensor, env: Sequence[float] | None = None) -> None:
        self.program, self.t, self.lr, self.env = program, t, lr, env
        self.a: list[float] | None = None
        self.b: list[float] | None = None
        slots = lr_dependent_slots(program)
        if slots is None:
            return
        a = program.scalar_values(t, 0.0, env)  # the slots that do not depend on lr, at their value
        b = [0.0] * len(a)
        reads = dict(program.env_scalars) if env is not None else {}
        for k in slots:
            fn = program.scalars[k]
            if k in reads:
                fn = functools.partial(_with_env, reads[k], env=env)
            part = _trace(fn, t)
            if part is None:
                return
            a[k], b[k] = part
        self.a, self.b = a, b

    def values(self) -> list[float]:
        """The slots as Python floats (reads ``lr``: a host-device synchronisation when it lives on a GPU).

        Returns
        -------
        list of float
            ``program.scalar_values(t, float(lr), env)``, one value per scalar slot.
        """
        return self.program.scalar_values(self.t, float(self.lr.item()), self.env)


def _with_env(fn: Callable[..., Any], t: int, lr: Any, env: Any) -> Any:
    return fn(t, lr, env)


def slot_values(
    program: Program, t: int, lr: float | Tensor, env: Sequence[float] | None = None
) -> list[float] | DeviceLr:
    """The scalar slots of step ``t``: floats for a number ``lr``, a :class:`DeviceLr` for a tensor.

    ``env`` holds the values of the program's running products (see
    :meth:`optfilters.program.Program.scalar_values`).

    Parameters
    ----------
    program : Program
        The step's program.
    t : int
        The step number (1-based).
    lr : float or torch.Tensor
        The learning rate (a tensor stays on its device).
    env : sequence of float, optional
        The running products' values.

    Returns
    -------
    list of float or DeviceLr
        One value per scalar slot, or their affine form in the tensor ``lr``.
    """
    if isinstance(lr, Tensor):
        return DeviceLr(program, t, lr, env)
    return program.scalar_values(t, lr, env)


def as_floats(scalars: Sequence[float] | DeviceLr) -> list[float]:
    """The slots as floats (a :class:`DeviceLr` reads its tensor).

    Parameters
    ----------
    scalars : sequence of float or DeviceLr
        What :func:`slot_values` returned.

    Returns
    -------
    list of float
        One value per scalar slot.
    """
    if isinstance(scalars, DeviceLr):
        return scalars.values()
    return list(scalars)


def lr_dependent_slots(program: Program) -> tuple[int, ...] | None:
    """The slots that depend on lr (traced at steps 1 and 2), or None when one is not affine in lr.

    Which slots depend on lr is a property of the program (the builder's slot
    functions), not of the step; it is computed once per program.

    Parameters
    ----------
    program : Program
        The step's program.

    Returns
    -------
    tuple of int or None
        Indices of the scalar slots whose value has a nonzero ``lr``
        coefficient, ascending; None when some slot is not affine in ``lr``.
    """
    cached = _lr_slots.get(id(program))
    if cached is not None and cached[0] is program:
        return cached[1]
    slots = _trace_slots(program)
    if len(_lr_slots) > 256:
        _lr_slots.clear()
    _lr_slots[id(program)] = (program, slots)
    return slots


def _trace_slots(program: Program) -> tuple[int, ...] | None:
    found: set[int] = set()
    for t in (1, 2):
        for k, fn in enumerate(program.scalars):
            part = _trace(fn, t)
            if part is None:
                return None
            if part[1] != 0.0:
                found.add(k)
    return tuple(sorted(found))


# ----------------------------------------------------------------------------- code generation


def _statement(ins: Instruction, reg: dict[str, str]) -> str:
    a = [reg[x] for x in ins.args]
    s = f"s{ins.slot}" if ins.slot is not None else ""
    if isinstance(ins.op, Op):  # a stage kind's own operation: its Triton form, if it has one
        if ins.op.triton is None or ins.out is None:
            raise RuntimeError(f"the operation {ins.op.name!r} has no Triton form")
        return f"{reg[ins.out]} = ({ins.op.triton(a, s or '0.0')}).to(tl.float32)"
    expr = {
        "neg": lambda: f"-{a[0]}",
        "add": lambda: f"tl.fma({a[1]}, {s}, {a[0]})",
        "add_": lambda: f"tl.fma({a[1]}, {s}, {a[0]})",
        "mul": lambda: f"{a[0]} * {a[1]}",
        "mul_": lambda: f"{a[0]} * {a[1]}",
        "div_": lambda: f"tl.div_rn({a[0]}, {a[1]})",
        "mul_s": lambda: f"{a[0]} * {s}",
        "mul_s_": lambda: f"{a[0]} * {s}",
        "div_s": lambda: f"tl.div_rn({a[0]}, {s})",
        "div_s_": lambda: f"tl.div_rn({a[0]}, {s})",
        "add_s": lambda: f"{a[0]} + {s}",
        "add_s_": lambda: f"{a[0]} + {s}",
        "addcmul": lambda: f"tl.fma({s} * {a[1]}, {a[2]}, {a[0]})",
        "addcmul_": lambda: f"tl.fma({s} * {a[1]}, {a[2]}, {a[0]})",
        "addcdiv_": lambda: f"{a[0]} + tl.div_rn({s} * {a[1]}, {a[2]})",
        "lerp_": lambda: (  # ATen's lerp; the weight is one scalar, so the branch is chosen once per program
            f"tl.fma({a[1]} - {a[0]}, tl.where(tl.abs({s}) < 0.5, {s}, {s} - 1.0), "
            f"tl.where(tl.abs({s}) < 0.5, {a[0]}, {a[1]}))"
        ),
        "sqrt": lambda: f"tl.sqrt_rn({a[0]})",
        "sqrt_": lambda: f"tl.sqrt_rn({a[0]})",
        "maximum_": lambda: (
            f"tl.where(({a[0]} != {a[0]}) | ({a[1]} != {a[1]}), {a[0]} + {a[1]}, "
            f"tl.where({a[0]} > {a[1]}, {a[0]}, {a[1]}))"
        ),
        "abs": lambda: f"tl.abs({a[0]})",
        "sign": lambda: f"({a[0]} > 0).to(tl.float32) - ({a[0]} < 0).to(tl.float32)",
        "copy_": lambda: a[1],
        "clone": lambda: a[0],
        "zero_": lambda: "tl.full([BLOCK], 0.0, tl.float32)",
    }[ins.op]()
    target = reg[ins.out] if ins.out is not None else a[0]
    return f"{target} = {expr}"


def _written(program: Program) -> list[str]:
    """Registers stored back: the parameter and every state register an in-place instruction writes."""
    written = {ins.args[0] for ins in program.instructions if ins.out is None}
    return ["param"] + [f"state.{spec.key}" for spec in program.state if f"state.{spec.key}" in written]


def generate_source(program: Program, kind: str, lr_slots: Sequence[int] = ()) -> str:
    """Python source of the Triton step kernel ``optfilters_step`` for ``program`` on parameters of ``kind``.

    The kernel takes the block table (``[tensor, start]`` per program), the
    tensor records (``[numel, param, grad, state...]`` addresses per tensor),
    a pointer to the learning rate (read when ``TENSOR_LR``), one float64
    argument per scalar slot (``c<k>``) and one per lr-dependent slot
    (``d<k>``, the factor of lr), and the constants ``BLOCK``, ``TENSOR_LR``
    and ``ALIGNED`` (every address 16-byte aligned: vector loads).

    Parameters
    ----------
    program : Program
        The step's program.
    kind : {"float32", "bfloat16"}
        Parameter dtype (the state is float32 either way).
    lr_slots : sequence of int
        The lr-dependent slots (:func:`lr_dependent_slots`), which get a
        ``d<k>`` argument.

    Returns
    -------
    str
        Python source defining the ``@triton.jit``-able function ``optfilters_step``.

    Raises
    ------
    ValueError
        If ``kind`` is neither ``"float32"`` nor ``"bfloat16"``.
    RuntimeError
        If an operation of the program has no Triton form.

    Examples
    --------
    >>> import torch, optfilters
    >>> from optfilters.torch._program import Plan
    >>> from optfilters.torch.triton_kernels import generate_source
    >>> source = generate_source(Plan(optfilters.get("momentum"), torch.float32).program(2), "float32")
    >>> "r_s0 = tl.fma(r_grad, s1, r_s0)" in source
    True
    """
    if kind not in ("float32", "bfloat16"):
        raise ValueError(f"kind must be 'float32' or 'bfloat16', got {kind!r}")
    low = kind == "bfloat16"
    keys = [spec.key for spec in program.state]
    stride = 3 + len(keys)
    reg = kernel_registers(program)
    pointer = {"param": "p_param", "grad": "p_grad", **{f"state.{k}": f"p_s{i}" for i, k in enumerate(keys)}}
    storage = "tl.uint16" if low else "tl.float32"
    n_slots = len(program.scalars)
    args = ["blocks", "records", "lr_ptr"]
    args += [f"c{k}: tl.float64" for k in range(n_slots)]
    args += [f"d{k}: tl.float64" for k in lr_slots]
    args += ["BLOCK: tl.constexpr", "TENSOR_LR: tl.constexpr", "ALIGNED: tl.constexpr"]
    out = [
        f"# Generated by optfilters.torch.triton_kernels for a {kind} program of {len(program.instructions)} "
        "instructions; do not edit.",
        "import triton.language as tl",
        "",
        "",
        f"def optfilters_step({', '.join(args)}):",
        "    pid = tl.program_id(0).to(tl.int64)",
        "    i = tl.load(blocks + 2 * pid)",
        "    start = tl.multiple_of(tl.load(blocks + 2 * pid + 1), BLOCK)",
        f"    rec = records + i * {stride}",
        "    n = tl.load(rec)",
        f"    p_param = tl.load(rec + 1).to(tl.pointer_type({storage}))",
        f"    p_grad = tl.load(rec + 2).to(tl.pointer_type({storage}))",
    ]
    for i in range(len(keys)):
        out.append(f"    p_s{i} = tl.load(rec + {3 + i}).to(tl.pointer_type(tl.float32))")
    out.append("    if ALIGNED:  # 16-byte aligned addresses and block starts: 16-byte vector loads and stores")
    for p in pointer.values():
        out.append(f"        {p} = tl.multiple_of({p}, 16)")
    for p in pointer.values():
        out.append(f"    {p} = {p} + start")
    if lr_slots:
        out.append("    if TENSOR_LR:  # the learning rate read from the device: slot = c + d * lr")
        out.append("        lr = tl.load(lr_ptr).to(tl.float64)")
        for k in lr_slots:
            out.append(f"        c{k} = c{k} + d{k} * lr")
    for k in range(n_slots):
        out.append(f"    s{k} = c{k}.to(tl.float32)")
    out.append("    offs = tl.arange(0, BLOCK)")

    def body(mask: str) -> list[str]:
        m = f", mask={mask}" if mask else ""
        lines = []
        for name in ("param", "grad"):
            raw = f"tl.load({pointer[name]} + offs{m})"
            if low:  # bfloat16 bits -> float32, exactly
                lines.append(f"{reg[name]} = ({raw}.to(tl.uint32) << 16).to(tl.float32, bitcast=True)")
            else:
                lines.append(f"{reg[name]} = {raw}")
        for i in range(len(keys)):
            lines.append(f"r_s{i} = tl.load(p_s{i} + offs{m})")
        lines.extend(_statement(ins, reg) for ins in program.instructions)
        for name in _written(program):
            value = reg[name]
            if name == "param" and low:  # float32 -> bfloat16, round to nearest even, NaN kept quiet
                lines.append(f"u = {value}.to(tl.uint32, bitcast=True)")
                lines.append("rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).to(tl.uint16)")
                lines.append("quiet = ((u >> 16) | 0x40).to(tl.uint16)")
                value = "tl.where((u & 0x7FFFFFFF) > 0x7F800000, quiet, rounded)"
            lines.append(f"tl.store({pointer[name]} + offs, {value}{m})")
        return lines

    out.append("    if start + BLOCK <= n:  # a whole block: no mask")
    out.extend("        " + line for line in body(""))
    out.append("    else:  # the tensor's last, partial block")
    out.append("        mask = offs < n - start")
    out.extend("        " + line for line in body("mask"))
    return "\n".join(out) + "\n"


def _cleanup() -> None:
    if _workdir is not None:
        shutil.rmtree(_workdir, ignore_errors=True)


def _load(source: str) -> Any:
    """Write ``source`` to a file (Triton reads a kernel's source from its file) and import it, once per process."""
    global _workdir
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    with _lock:
        module = _modules.get(digest)
        if module is None:
            if _workdir is None:
                _workdir = tempfile.mkdtemp(prefix="optfilters-triton-")
                atexit.register(_cleanup)
            path = os.path.join(_workdir, f"optfilters_triton_{digest}.py")
            with open(path, "w") as fh:
                fh.write(source)
            spec = importlib.util.spec_from_file_location(f"optfilters_triton_{digest}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _modules[digest] = module
        return module


def _interpreter_float64(value: float) -> Any:
    """A float64 scalar for Triton's interpreter (which would pass a Python float through as it is)."""
    import triton.language as tl
    from triton.runtime.interpreter import TensorHandle

    return tl.tensor(TensorHandle(np.array([value], dtype=np.float64), tl.float64), tl.float64)


def gpu_report(
    program: Program,
    kind: str,
    *,
    capability: int = 90,
    aligned: bool = True,
    tensor_lr: bool = False,
    block: int | None = None,
    num_warps: int | None = None,
) -> dict[str, Any]:
    """Compile the kernel for a CUDA architecture without a GPU and summarise the machine code.

    Triton's ahead-of-time compiler (with the ``ptxas`` shipped in the
    ``triton`` wheel) builds the kernel for compute capability ``capability``
    (90: H100/H200); the PTX is returned with counts of its global loads and
    stores by width (``ld.global.v4.b32`` is a 16-byte vector load) and, when
    ``cuobjdump`` is available, the registers per thread and the local
    (spilled) memory.

    Parameters
    ----------
    program : Program
        The step's program.
    kind : {"float32", "bfloat16"}
        Parameter dtype.
    capability : int
        CUDA compute capability times 10 (90: sm_90).
    aligned : bool
        Compile the 16-byte-aligned (vector load) variant.
    tensor_lr : bool
        Compile the variant that reads ``lr`` from a device tensor.
    block, num_warps : int, optional
        Launch configuration (default :data:`BLOCK`, :data:`NUM_WARPS`).

    Returns
    -------
    dict
        ``ptx`` (str), ``loads`` and ``stores`` (dicts instruction -> count),
        ``registers`` and ``local_bytes`` (int or None), ``seconds`` (compile time).
    """
    import re
    import subprocess
    from collections import Counter

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    lr_slots = lr_dependent_slots(program) or ()
    fn = triton.jit(_load(generate_source(program, kind, lr_slots)).optfilters_step)
    signature = {"blocks": "*i64", "records": "*i64", "lr_ptr": "*fp32"}
    signature.update({f"c{k}": "fp64" for k in range(len(program.scalars))})
    signature.update({f"d{k}": "fp64" for k in lr_slots})
    signature.update(BLOCK="constexpr", TENSOR_LR="constexpr", ALIGNED="constexpr")
    constants = {"BLOCK": int(block or BLOCK), "TENSOR_LR": tensor_lr, "ALIGNED": aligned}
    attrs = {(i,): [["tt.divisibility", 16]] for i in range(3)}  # the tables and lr are torch allocations
    source = ASTSource(fn, signature, constexprs=constants, attrs=attrs)
    start = time.perf_counter()
    compiled = triton.compile(
        source,
        target=GPUTarget("cuda", capability, 32),
        options={"num_warps": int(num_warps or NUM_WARPS), "enable_fp_fusion": False},
    )
    seconds = time.perf_counter() - start
    ptx = compiled.asm["ptx"]
    registers = local = None
    tool = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    if os.path.exists(tool) and "cubin" in compiled.asm:
        with tempfile.NamedTemporaryFile(suffix=".cubin") as fh:
            fh.write(compiled.asm["cubin"])
            fh.flush()
            usage = subprocess.run([tool, "--dump-resource-usage", fh.name], capture_output=True, text=True).stdout
        if (m := re.search(r"REG:(\d+)", usage)) is not None:
            registers = int(m.group(1))
        if (m := re.search(r"LOCAL:(\d+)", usage)) is not None:
            local = int(m.group(1))
    return {
        "ptx": ptx,
        "loads": dict(Counter(re.findall(r"ld\.global[.\w]*", ptx))),
        "stores": dict(Counter(re.findall(r"st\.global[.\w]*", ptx))),
        "registers": registers,
        "local_bytes": local,
        "seconds": seconds,
    }


# ----------------------------------------------------------------------------- the kernel


class TritonKernel:
    """A Triton step for one program and one parameter kind.

    Parameters
    ----------
    program : Program
        The step to run.
    kind : {"float32", "bfloat16"}
        Parameter dtype (bfloat16 parameters have float32 state).
    interpret : bool, optional
        Run CPU tensors under Triton's interpreter (slow: for tests).
    block, num_warps : int, optional
        Launch configuration (default :data:`BLOCK`, :data:`NUM_WARPS`).

    Raises
    ------
    ImportError
        When ``triton`` is not installed.

    Examples
    --------
    >>> import torch, optfilters
    >>> from optfilters.torch._program import Plan
    >>> from optfilters.torch.triton_kernels import TritonKernel, available
    >>> program = Plan(optfilters.get("sgd", lr=0.5), torch.float32).program(1)
    >>> p, g = torch.tensor([1.0, 2.0]), torch.tensor([2.0, 2.0])
    >>> if available():
    ...     TritonKernel(program, "float32", interpret=True).run([p], [g], [{}], [-0.5], torch.float32)
    ... else:
    ...     p -= 0.5 * g
    True
    >>> p.tolist()
    [0.0, 1.0]
    """

    def __init__(
        self,
        program: Program,
        kind: str,
        interpret: bool = False,
        block: int | None = None,
        num_warps: int | None = None,
    ) -> None:
        import triton

        self.program = program
        self.kind = kind
        self.interpret = interpret
        self.block = int(block or BLOCK)
        self.num_warps = int(num_warps or NUM_WARPS)
        if self.block < 16 or self.block & (self.block - 1):
            raise ValueError(f"block must be a power of two >= 16, got {self.block}")
        self.keys = program.keys
        self.dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[kind]
        self.lr_slots = lr_dependent_slots(program)
        self.source = generate_source(program, kind, self.lr_slots or ())
        fn = _load(self.source).optfilters_step
        if interpret:
            from triton.runtime.interpreter import InterpretedFunction

            self._fn: Any = InterpretedFunction(fn)
        else:
            self._fn = triton.jit(fn)
        self.compile_seconds: float | None = None
        self._compiled: set[tuple[bool, bool]] = set()
        self._blocks: dict[tuple[tuple[int, ...], torch.device], tuple[Tensor, int]] = {}
        self._records: dict[tuple[tuple[int, ...], ...], tuple[Tensor, bool]] = {}
        self._validated: tuple[Any, ...] = ((), ())

    # -------------------------------------------------------------- checks
    def fits(self, param: Tensor, grad: Tensor, state: dict[str, Any], state_dtype: torch.dtype) -> bool:
        """True when the kernel can run this parameter (its device, contiguous, the expected dtypes and sizes).

        Parameters
        ----------
        param, grad : torch.Tensor
            The parameter and its gradient (same dtype, device and size).
        state : dict
            The parameter's optimizer state; each of the kernel's keys must
            be a contiguous float32 tensor of the parameter's size.
        state_dtype : torch.dtype
            The optimizer's state dtype (not consulted here: the state
            tensors themselves are checked; :meth:`run` requires float32).

        Returns
        -------
        bool
            Whether :meth:`run` can take this parameter.
        """
        device = param.device
        if device.type != ("cpu" if self.interpret else "cuda"):
            return False
        if not (param.dtype is self.dtype and grad.dtype is self.dtype and grad.device == device):
            return False
        if not (param.is_contiguous() and grad.is_contiguous() and grad.numel() == param.numel()):
            return False
        return all(
            state[k].device == device
            and state[k].is_contiguous()
            and state[k].dtype == torch.float32
            and state[k].numel() == param.numel()
            for k in self.keys
        )

    def _check(
        self, params: Sequence[Tensor], grads: Sequence[Tensor], state_tensors: list[Tensor], state_dtype: torch.dtype
    ) -> bool:
        if state_dtype != torch.float32:
            return False
        device = params[0].device
        sizes = tuple(map(Tensor.numel, params))
        if not grads_fit(grads, self.dtype, sizes):
            return False
        seen_params, seen_states = self._validated
        if (
            len(seen_params) == len(params)
            and all(map(operator.is_, params, seen_params))
            and len(seen_states) == len(state_tensors)
            and all(map(operator.is_, state_tensors, seen_states))
        ):
            return True
        if device.type != ("cpu" if self.interpret else "cuda"):
            return False
        n = len(self.keys)
        for i, p in enumerate(params):
            if not (p.device == device and p.dtype is self.dtype and p.is_contiguous()):
                return False
            for s in state_tensors[i * n : (i + 1) * n]:
                if not (
                    s.device == device and s.dtype == torch.float32 and s.is_contiguous() and s.numel() == sizes[i]
                ):
                    return False
        if any(g.device != device for g in grads):
            return False
        self._validated = (tuple(params), tuple(state_tensors))
        return True

    # -------------------------------------------------------------- tables
    def _to_device(self, values: list[int], device: torch.device) -> Tensor:
        host = torch.tensor(values, dtype=torch.int64)
        if device.type == "cuda":  # pinned and asynchronous: no host-device synchronisation
            return host.pin_memory().to(device, non_blocking=True)
        return host

    def _block_table(self, sizes: tuple[int, ...], device: torch.device) -> tuple[Tensor, int]:
        key = (sizes, device)
        cached = self._blocks.get(key)
        if cached is None:
            counts = [-(-n // self.block) for n in sizes]
            index = torch.repeat_interleave(torch.arange(len(sizes), dtype=torch.int64), torch.tensor(counts))
            first = torch.cumsum(torch.tensor([0, *counts[:-1]], dtype=torch.int64), 0)
            within = torch.arange(int(sum(counts)), dtype=torch.int64) - torch.repeat_interleave(
                first, torch.tensor(counts)
            )
            table = torch.stack([index, within * self.block], 1).reshape(-1)
            if device.type == "cuda":
                table = table.pin_memory().to(device, non_blocking=True)
            if len(self._blocks) > 8:
                self._blocks.clear()
            cached = self._blocks[key] = (table, int(sum(counts)))
        return cached

    def _record_table(
        self, sizes: tuple[int, ...], pointers: tuple[tuple[int, ...], ...], device: torch.device
    ) -> tuple[Tensor, bool]:
        """The tensor records ``[numel, param, grad, state...]`` on the device, and whether all are 16-byte aligned."""
        key = (sizes, *pointers)
        cached = self._records.get(key)
        if cached is None:
            params, grads, states = pointers
            n = len(self.keys)
            rows: list[int] = []
            for i, size in enumerate(sizes):
                rows += [size, params[i], grads[i], *states[i * n : (i + 1) * n]]
            aligned = not any(a & 15 for ptrs in pointers for a in ptrs)
            if len(self._records) > 8:  # e.g. gradients that alternate between a few buffers
                self._records.clear()
            cached = self._records[key] = (self._to_device(rows, device), aligned)
        return cached

    # -------------------------------------------------------------- the step
    def run(
        self,
        params: Sequence[Tensor],
        grads: Sequence[Tensor],
        states: Sequence[dict[str, Any]],
        scalars: Sequence[float] | DeviceLr,
        state_dtype: torch.dtype,
    ) -> bool:
        """Run one step on every tensor; False (and nothing done) when some tensor does not :meth:`fit`.

        ``scalars`` are the slot values, or a :class:`DeviceLr` whose tensor
        the kernel reads (it must be on the parameters' device, else it is
        read on the host).

        Parameters
        ----------
        params, grads : sequence of torch.Tensor
            The parameters (updated in place) and their gradients.
        states : sequence of dict
            Each parameter's state (updated in place).
        scalars : sequence of float or DeviceLr
            The step's slot values (:func:`slot_values`).
        state_dtype : torch.dtype
            The optimizer's state dtype (the kernel runs only for float32).

        Returns
        -------
        bool
            True when the step ran (or there was nothing to do), False when
            nothing was done.
        """
        keys = self.keys
        state_tensors = [st[k] for st in states for k in keys]
        if not params or not self._check(params, grads, state_tensors, state_dtype):
            return False
        device = params[0].device
        sizes = tuple(map(Tensor.numel, params))
        blocks, n_blocks = self._block_table(sizes, device)
        if n_blocks == 0:
            return True
        pointers = (
            tuple(map(_DATA_PTR, params)),
            tuple(map(_DATA_PTR, grads)),
            tuple(map(_DATA_PTR, state_tensors)),
        )
        records, aligned = self._record_table(sizes, pointers, device)
        tensor_lr = False
        lr_arg: Tensor = blocks
        if isinstance(scalars, DeviceLr):
            lr = scalars.lr
            if (
                self.lr_slots is not None
                and scalars.a is not None
                and scalars.b is not None
                and lr.device == device
                and lr.numel() == 1
                and lr.is_floating_point()
            ):
                tensor_lr, lr_arg = True, lr
                c = scalars.a
                d = [scalars.b[k] for k in self.lr_slots]
            else:
                c = scalars.values()
                d = [0.0] * len(self.lr_slots or ())
        else:
            c = list(scalars)
            d = [0.0] * len(self.lr_slots or ())
        variant = (tensor_lr, aligned)
        first = variant not in self._compiled
        start = time.perf_counter() if first else 0.0
        options = {
            "BLOCK": self.block,
            "TENSOR_LR": tensor_lr,
            "ALIGNED": aligned,
            "num_warps": self.num_warps,
            "enable_fp_fusion": False,  # no contraction beyond the explicit fma: the C kernels' arithmetic
        }
        other_device = (
            device.type == "cuda" and device.index is not None and device.index != torch.cuda.current_device()
        )
        values = [*c, *d]
        if self.interpret:
            values = [_interpreter_float64(v) for v in values]
        with torch.cuda.device(device) if other_device else contextlib.nullcontext():
            self._fn[(n_blocks,)](blocks, records, lr_arg, *values, **options)
        if first:
            self._compiled.add(variant)
            self.compile_seconds = (self.compile_seconds or 0.0) + (time.perf_counter() - start)
        return True
