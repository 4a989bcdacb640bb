"""The ``fused=True`` path off the CPU where no Triton kernel applies: ``torch.compile``, one kernel per parameter.

On CUDA, float32 and bfloat16 parameters run the generated Triton kernels of
:mod:`.triton_kernels`; this path takes the others (float64, float16, other
devices) and those whose Triton kernel could not be built.

The compiled function walks the same :class:`~optfilters.torch._program.Program`
as the eager paths, with every scalar passed in one small tensor (so that new
learning rates, bias corrections or betas never trigger a recompilation) and
the operations written out-of-place for inductor, which fuses each
parameter's whole update into a single pass over its memory.  Results equal
the eager paths to rounding (inductor may reassociate and contract).  On CPU
the bridge uses its own C kernels instead (:mod:`._native`), which compile in
a fraction of a second and need no Python-side guards at each call.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from ._kernels import LOW_PRECISION, SingleOps, Step, bind, execute
from ._program import Program

__all__ = ["CompiledOps", "CompiledStep"]


class CompiledOps(SingleOps):
    """Program operations with 0-dim tensor scalars, written for ``torch.compile``.

    Operations whose scalar enters as ``alpha=``/``value=`` (a Python number
    in :class:`SingleOps`) are written with tensor arithmetic here; the rest are
    inherited.
    """

    @staticmethod
    def add(x: Tensor, y: Tensor, s: Any) -> Tensor:
        return x + y * s

    @staticmethod
    def add_(x: Tensor, y: Tensor, s: Any) -> None:
        x.add_(y * s)

    @staticmethod
    def addcmul(x: Tensor, u: Tensor, v: Tensor, s: Any) -> Tensor:
        return x + u * v * s

    @staticmethod
    def addcmul_(x: Tensor, u: Tensor, v: Tensor, s: Any) -> None:
        x.add_(u * v * s)

    @staticmethod
    def addcdiv_(x: Tensor, u: Tensor, v: Tensor, s: Any) -> None:
        x.add_(u / v * s)

    @staticmethod
    def lerp_(x: Tensor, y: Tensor, s: Any) -> None:
        x.add_((y - x) * s)

    @staticmethod
    def maximum_(x: Tensor, y: Tensor, s: Any = None) -> None:
        x.copy_(torch.maximum(x, y))


_TEMPLATE = """
def {name}(params, grads, states, scalars):
    S = scalars.unbind(0)
    for i in range(len(params)):
        p = params[i]
        if LOW:
            work = p.float()
            regs = {{"param": work, "grad": grads[i].float()}}
        else:
            work = p
            regs = {{"param": p, "grad": grads[i]}}
        for j in range(len(KEYS)):
            regs[KEYS[j]] = states[j][i]
        execute(STEPS, regs, S)
        if LOW:
            p.copy_(work)
"""

_counter = itertools.count()


def _fresh_function(steps: Sequence[Step], keys: Sequence[str], low: bool) -> Callable[..., None]:
    # A fresh code object per program: dynamo's cache (and its recompile limit) is per code object.
    name = f"_fused_step_{next(_counter)}"
    namespace: dict[str, Any] = {
        "execute": execute,
        "STEPS": tuple(steps),
        "KEYS": tuple(f"state.{k}" for k in keys),
        "LOW": low,
    }
    exec(_TEMPLATE.format(name=name), namespace)  # a fixed template, no user input
    fn: Callable[..., None] = namespace[name]
    return fn


class CompiledStep:
    """One compiled step function for a program and a kind of parameter (low precision or not).

    Calling it runs the program on lists of parameters (one device, dtype and
    step count).  The first call compiles (seconds to a minute, depending on
    the number of tensors); :attr:`compile_seconds` records how long.

    Examples
    --------
    >>> import torch, optfilters
    >>> from optfilters.torch._compiled import CompiledStep
    >>> from optfilters.torch._program import Plan
    >>> program = Plan(optfilters.get("sgd"), torch.float32).program(1)
    >>> CompiledStep(program, low_precision=False).compile_seconds is None
    True
    """

    def __init__(self, program: Program, low_precision: bool) -> None:
        self.program = program
        self.keys = tuple(spec.key for spec in program.state)
        self._fn = torch.compile(
            _fresh_function(bind(program, CompiledOps), self.keys, low_precision), fullgraph=True, dynamic=False
        )
        self.compile_seconds: float | None = None

    def __call__(
        self,
        params: Sequence[Tensor],
        grads: Sequence[Tensor],
        states: Sequence[dict[str, Any]],
        scalars: Sequence[float],
    ) -> None:
        """Run the compiled program (compiling on the first call)."""
        p0 = params[0]
        dtype = torch.float32 if p0.dtype in LOW_PRECISION else p0.dtype
        values = torch.tensor(list(scalars), dtype=dtype, device=p0.device)
        lists = [[s[k] for s in states] for k in self.keys]
        if self.compile_seconds is None:
            import time

            start = time.perf_counter()
            self._fn(list(params), list(grads), lists, values)
            self.compile_seconds = time.perf_counter() - start
            return
        self._fn(list(params), list(grads), lists, values)
