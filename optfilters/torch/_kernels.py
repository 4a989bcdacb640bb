"""Eager interpreters of a :class:`~optfilters.torch._program.Program`: one tensor at a time, or lists (foreach).

Both run the very same torch operations with the same Python-float scalars, so
on CPU the multi-tensor path (whose ``torch._foreach_*`` kernels loop over the
tensors) gives bit-identical results to the single-tensor path; on CUDA they
agree to rounding.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any

import torch
from torch import Tensor

from ..program import Op, Step, bind, execute

__all__ = [
    "LOW_PRECISION",
    "DeviceScalarOps",
    "ForeachOps",
    "FunctionalOps",
    "SingleOps",
    "Step",
    "bind",
    "execute",
    "grads_fit",
    "run_foreach",
    "run_functional",
    "run_single",
]

#: Parameter dtypes whose filter state is kept (and whose update is computed) in float32.
LOW_PRECISION = (torch.float16, torch.bfloat16)


def grads_fit(grads: Sequence[Tensor], dtype: torch.dtype, sizes: tuple[int, ...]) -> bool:
    """Whether a fused kernel can read these gradients: contiguous, of ``dtype``, of the parameters' sizes.

    Parameters
    ----------
    grads : sequence of Tensor
        The gradients, one per parameter.
    dtype : torch.dtype
        The parameters' dtype (compared by identity, as torch dtypes are singletons).
    sizes : tuple of int
        The parameters' element counts, in the same order.

    Returns
    -------
    bool
        True when every gradient fits.
    """
    return (
        all(map(Tensor.is_contiguous, grads))
        and all(map(operator.is_, map(operator.attrgetter("dtype"), grads), repeat(dtype)))
        and tuple(map(Tensor.numel, grads)) == sizes
    )


class _TensorOps:
    """Resolution of a program's operations to functions on one tensor (or 0-dim tensor scalars)."""

    @classmethod
    def resolve(cls, op: str | Op) -> Callable[..., Any]:
        """The function of an operation: a method of the class, or a stage kind's own Op's torch form.

        A stage kind's own :class:`~optfilters.program.Op` is out of place
        already; without a torch form its numpy form runs (on tensors).
        """
        if isinstance(op, str):
            fn: Callable[..., Any] = getattr(cls, op)
            return fn
        return op.torch if op.torch is not None else op.numpy


class SingleOps(_TensorOps):
    """The operations of a program on single tensors (torch.optim's single-tensor forms)."""

    @staticmethod
    def neg(x: Tensor, s: Any = None) -> Tensor:
        return -x

    @staticmethod
    def add(x: Tensor, y: Tensor, s: float) -> Tensor:
        return torch.add(x, y, alpha=s)

    @staticmethod
    def add_(x: Tensor, y: Tensor, s: float) -> None:
        x.add_(y, alpha=s)

    @staticmethod
    def mul(x: Tensor, y: Tensor, s: Any = None) -> Tensor:
        return torch.mul(x, y)

    @staticmethod
    def mul_(x: Tensor, y: Tensor, s: Any = None) -> None:
        x.mul_(y)

    @staticmethod
    def div_(x: Tensor, y: Tensor, s: Any = None) -> None:
        x.div_(y)

    @staticmethod
    def mul_s(x: Tensor, s: float) -> Tensor:
        return torch.mul(x, s)

    @staticmethod
    def mul_s_(x: Tensor, s: float) -> None:
        x.mul_(s)

    @staticmethod
    def div_s(x: Tensor, s: float) -> Tensor:
        return torch.div(x, s)

    @staticmethod
    def div_s_(x: Tensor, s: float) -> None:
        x.div_(s)

    @staticmethod
    def add_s(x: Tensor, s: float) -> Tensor:
        return torch.add(x, s)

    @staticmethod
    def add_s_(x: Tensor, s: float) -> None:
        x.add_(s)

    @staticmethod
    def addcmul(x: Tensor, u: Tensor, v: Tensor, s: float) -> Tensor:
        return torch.addcmul(x, u, v, value=s)

    @staticmethod
    def addcmul_(x: Tensor, u: Tensor, v: Tensor, s: float) -> None:
        x.addcmul_(u, v, value=s)

    @staticmethod
    def addcdiv_(x: Tensor, u: Tensor, v: Tensor, s: float) -> None:
        x.addcdiv_(u, v, value=s)

    @staticmethod
    def lerp_(x: Tensor, y: Tensor, s: float) -> None:
        x.lerp_(y, s)

    @staticmethod
    def sqrt(x: Tensor, s: Any = None) -> Tensor:
        return torch.sqrt(x)

    @staticmethod
    def sqrt_(x: Tensor, s: Any = None) -> None:
        x.sqrt_()

    @staticmethod
    def maximum_(x: Tensor, y: Tensor, s: Any = None) -> None:
        torch.maximum(x, y, out=x)

    @staticmethod
    def abs(x: Tensor, s: Any = None) -> Tensor:
        return torch.abs(x)

    @staticmethod
    def sign(x: Tensor, s: Any = None) -> Tensor:
        return torch.sign(x)

    @staticmethod
    def copy_(x: Tensor, y: Tensor, s: Any = None) -> None:
        x.copy_(y)

    @staticmethod
    def clone(x: Tensor, s: Any = None) -> Tensor:
        return x.clone()

    @staticmethod
    def zero_(x: Tensor, s: Any = None) -> None:
        x.zero_()


class DeviceScalarOps(SingleOps):
    """:class:`SingleOps` whose scalars may be 0-dim tensors on the parameter's device (``capturable=True``).

    Numbers take SingleOps's very operations; a tensor scalar is multiplied in
    (torch's ``alpha=``/``value=`` take numbers only), so that no value is read
    back to the host and the step can be captured in a CUDA graph.
    """

    @staticmethod
    def add(x: Tensor, y: Tensor, s: Any) -> Tensor:
        return _axpy(x, y, s)

    @staticmethod
    def add_(x: Tensor, y: Tensor, s: Any) -> None:
        if isinstance(s, Tensor):
            x.add_(y * s)
        else:
            x.add_(y, alpha=s)

    @staticmethod
    def addcmul(x: Tensor, u: Tensor, v: Tensor, s: Any) -> Tensor:
        if isinstance(s, Tensor):
            return torch.addcmul(x, u * s, v)
        return torch.addcmul(x, u, v, value=s)

    @staticmethod
    def addcmul_(x: Tensor, u: Tensor, v: Tensor, s: Any) -> None:
        if isinstance(s, Tensor):
            x.addcmul_(u * s, v)
        else:
            x.addcmul_(u, v, value=s)

    @staticmethod
    def addcdiv_(x: Tensor, u: Tensor, v: Tensor, s: Any) -> None:
        if isinstance(s, Tensor):
            x.addcdiv_(u * s, v)
        else:
            x.addcdiv_(u, v, value=s)


TensorList = list[Tensor]


class ForeachOps:
    """The same operations on lists of tensors with ``torch._foreach_*``."""

    @classmethod
    def resolve(cls, op: str | Op) -> Callable[..., Any]:
        """The function of an operation (a stage kind's own :class:`~optfilters.program.Op`: its list form)."""
        if isinstance(op, str):
            fn: Callable[..., Any] = getattr(cls, op)
            return fn
        if op.foreach is not None:
            return op.foreach
        single = op.torch if op.torch is not None else op.numpy

        def each(*args: Any) -> list[Any]:
            *lists, s = args
            return [single(*items, s) for items in zip(*lists, strict=True)]

        return each

    @staticmethod
    def neg(x: TensorList, s: Any = None) -> TensorList:
        return list(torch._foreach_neg(x))

    @staticmethod
    def add(x: TensorList, y: TensorList, s: float) -> TensorList:
        return list(torch._foreach_add(x, y, alpha=s))

    @staticmethod
    def add_(x: TensorList, y: TensorList, s: float) -> None:
        torch._foreach_add_(x, y, alpha=s)

    @staticmethod
    def mul(x: TensorList, y: TensorList, s: Any = None) -> TensorList:
        return list(torch._foreach_mul(x, y))

    @staticmethod
    def mul_(x: TensorList, y: TensorList, s: Any = None) -> None:
        torch._foreach_mul_(x, y)

    @staticmethod
    def div_(x: TensorList, y: TensorList, s: Any = None) -> None:
        torch._foreach_div_(x, y)

    @staticmethod
    def mul_s(x: TensorList, s: float) -> TensorList:
        return list(torch._foreach_mul(x, s))

    @staticmethod
    def mul_s_(x: TensorList, s: float) -> None:
        torch._foreach_mul_(x, s)

    @staticmethod
    def div_s(x: TensorList, s: float) -> TensorList:
        return list(torch._foreach_div(x, s))

    @staticmethod
    def div_s_(x: TensorList, s: float) -> None:
        torch._foreach_div_(x, s)

    @staticmethod
    def add_s(x: TensorList, s: float) -> TensorList:
        return list(torch._foreach_add(x, s))

    @staticmethod
    def add_s_(x: TensorList, s: float) -> None:
        torch._foreach_add_(x, s)

    @staticmethod
    def addcmul(x: TensorList, u: TensorList, v: TensorList, s: float) -> TensorList:
        return list(torch._foreach_addcmul(x, u, v, value=s))

    @staticmethod
    def addcmul_(x: TensorList, u: TensorList, v: TensorList, s: float) -> None:
        torch._foreach_addcmul_(x, u, v, value=s)

    @staticmethod
    def addcdiv_(x: TensorList, u: TensorList, v: TensorList, s: float) -> None:
        torch._foreach_addcdiv_(x, u, v, value=s)

    @staticmethod
    def lerp_(x: TensorList, y: TensorList, s: float) -> None:
        torch._foreach_lerp_(x, y, s)

    @staticmethod
    def sqrt(x: TensorList, s: Any = None) -> TensorList:
        return list(torch._foreach_sqrt(x))

    @staticmethod
    def sqrt_(x: TensorList, s: Any = None) -> None:
        torch._foreach_sqrt_(x)

    @staticmethod
    def maximum_(x: TensorList, y: TensorList, s: Any = None) -> None:
        torch._foreach_maximum_(x, y)

    @staticmethod
    def abs(x: TensorList, s: Any = None) -> TensorList:
        return list(torch._foreach_abs(x))

    @staticmethod
    def sign(x: TensorList, s: Any = None) -> TensorList:
        return list(torch._foreach_sign(x))

    @staticmethod
    def copy_(x: TensorList, y: TensorList, s: Any = None) -> None:
        if all(type(t) in (Tensor, torch.nn.Parameter) for t in x):
            torch._foreach_copy_(x, y)
        else:  # DTensors (FSDP2) have no sharding rule for _foreach_copy_
            for a, b in zip(x, y, strict=True):
                a.copy_(b)

    @staticmethod
    def clone(x: TensorList, s: Any = None) -> TensorList:
        return [v.clone() for v in x]

    @staticmethod
    def zero_(x: TensorList, s: Any = None) -> None:
        torch._foreach_zero_(x)


def _axpy(x: Tensor, y: Tensor, s: Any) -> Tensor:
    """``x + s * y``: torch's ``add(x, y, alpha=s)`` for a number, operators for a tensor ``s`` (autograd into it)."""
    if isinstance(s, Tensor):
        return x + s * y
    return torch.add(x, y, alpha=s)


class FunctionalOps(_TensorOps):
    """The operations out of place, for ``differentiable=True``: autograd follows every step of the program.

    An in-place instruction returns its result, which replaces its first
    register (:func:`run_functional`); the values equal :class:`SingleOps`'s
    (the same torch functions, out of place).  A scalar may be a tensor (a
    learning rate that requires grad).
    """

    @staticmethod
    def neg(x: Tensor, s: Any = None) -> Tensor:
        return -x

    @staticmethod
    def add(x: Tensor, y: Tensor, s: Any) -> Tensor:
        return _axpy(x, y, s)

    add_ = add

    @staticmethod
    def mul(x: Tensor, y: Tensor, s: Any = None) -> Tensor:
        return torch.mul(x, y)

    mul_ = mul

    @staticmethod
    def div_(x: Tensor, y: Tensor, s: Any = None) -> Tensor:
        return torch.div(x, y)

    @staticmethod
    def mul_s(x: Tensor, s: Any) -> Tensor:
        return torch.mul(x, s)

    mul_s_ = mul_s

    @staticmethod
    def div_s(x: Tensor, s: Any) -> Tensor:
        return torch.div(x, s)

    div_s_ = div_s

    @staticmethod
    def add_s(x: Tensor, s: Any) -> Tensor:
        return torch.add(x, s)

    add_s_ = add_s

    @staticmethod
    def addcmul(x: Tensor, u: Tensor, v: Tensor, s: Any) -> Tensor:
        if isinstance(s, Tensor):
            return x + s * (u * v)
        return torch.addcmul(x, u, v, value=s)

    addcmul_ = addcmul

    @staticmethod
    def addcdiv_(x: Tensor, u: Tensor, v: Tensor, s: Any) -> Tensor:
        if isinstance(s, Tensor):
            return x + s * (u / v)
        return torch.addcdiv(x, u, v, value=s)

    @staticmethod
    def lerp_(x: Tensor, y: Tensor, s: Any) -> Tensor:
        return torch.lerp(x, y, s)

    @staticmethod
    def sqrt(x: Tensor, s: Any = None) -> Tensor:
        return torch.sqrt(x)

    sqrt_ = sqrt

    @staticmethod
    def maximum_(x: Tensor, y: Tensor, s: Any = None) -> Tensor:
        return torch.maximum(x, y)

    @staticmethod
    def abs(x: Tensor, s: Any = None) -> Tensor:
        return torch.abs(x)

    @staticmethod
    def sign(x: Tensor, s: Any = None) -> Tensor:
        return torch.sign(x)

    @staticmethod
    def copy_(x: Tensor, y: Tensor, s: Any = None) -> Tensor:
        return y.to(dtype=x.dtype)

    @staticmethod
    def clone(x: Tensor, s: Any = None) -> Tensor:
        return x.clone()

    @staticmethod
    def zero_(x: Tensor, s: Any = None) -> Tensor:
        return torch.zeros_like(x)


def working_views(param: Tensor, grad: Tensor) -> tuple[Tensor, Tensor, bool]:
    """The tensors a program updates: real views of complex tensors, float32 copies of low-precision ones.

    Returns ``(param_work, grad_work, copy_back)``; when ``copy_back`` is set the
    caller writes ``param_work`` back into ``param`` after the program.
    """
    if param.is_complex():
        return torch.view_as_real(param), torch.view_as_real(grad), False
    if param.dtype in LOW_PRECISION:
        return param.float(), grad.float(), True
    return param, grad, False


def state_views(state: dict[str, Any], keys: Sequence[str], complex_param: bool) -> dict[str, Tensor]:
    """Registers ``state.<key>`` for one parameter's state tensors (real views for complex parameters)."""
    if complex_param:
        return {f"state.{k}": torch.view_as_real(state[k]) for k in keys}
    return {f"state.{k}": state[k] for k in keys}


def run_single(
    steps: Sequence[Step],
    keys: Sequence[str],
    param: Tensor,
    grad: Tensor,
    state: dict[str, Any],
    scalars: Sequence[float],
) -> None:
    """Run a bound program on one parameter."""
    work, g, copy_back = working_views(param, grad)
    regs: dict[str, Any] = state_views(state, keys, param.is_complex())
    regs["param"] = work
    regs["grad"] = g
    execute(steps, regs, scalars)
    if copy_back:
        param.copy_(work)


def run_foreach(
    steps: Sequence[Step],
    keys: Sequence[str],
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    states: Sequence[dict[str, Any]],
    scalars: Sequence[float],
) -> None:
    """Run a bound program on lists of parameters of one device, dtype and step count."""
    is_complex = params[0].is_complex()
    low = params[0].dtype in LOW_PRECISION
    regs: dict[str, Any] = {}
    if is_complex:
        regs["param"] = [torch.view_as_real(p) for p in params]
        regs["grad"] = [torch.view_as_real(g) for g in grads]
        for k in keys:
            regs[f"state.{k}"] = [torch.view_as_real(s[k]) for s in states]
    else:
        if low:
            regs["param"] = [p.float() for p in params]
            regs["grad"] = [g.float() for g in grads]
        else:
            regs["param"] = list(params)
            regs["grad"] = list(grads)
        for k in keys:
            regs[f"state.{k}"] = [s[k] for s in states]
    execute(steps, regs, scalars)
    if low:
        torch._foreach_copy_(list(params), regs["param"])


def run_functional(
    steps: Sequence[Step],
    keys: Sequence[str],
    param: Tensor,
    grad: Tensor,
    state: dict[str, Any],
    scalars: Sequence[Any],
) -> None:
    """Run a program bound to :class:`FunctionalOps` on one parameter (``differentiable=True``).

    Every operation is out of place, on copies of the parameter and state, so
    autograd can go back through the step; the results are copied into the
    parameter and the state tensors at the end (``copy_``, which autograd
    records too), so that they keep their identity as torch.optim's do.
    """
    work, g, copy_back = working_views(param, grad)
    targets: dict[str, Any] = state_views(state, keys, param.is_complex())
    targets["param"] = work
    # The program reads copies: autograd may save what it reads, and the targets are overwritten below.
    regs = {name: target.clone() for name, target in targets.items()}
    regs["grad"] = g
    for fn, args, slot, out in steps:
        value = fn(*[regs[a] for a in args], scalars[slot] if slot is not None else None)
        regs[out if out is not None else args[0]] = value
    for name, target in targets.items():
        if regs[name] is not target:
            target.copy_(regs[name])
    if copy_back:
        param.copy_(work)
