"""The step programs of a model for the bridge: :class:`Plan` for a torch state dtype.

A model's step is ONE straight-line program (:mod:`optfilters.program`), built
from its stages: each stage kind appends its own operations
(:meth:`optfilters.stages.Stage.emit`) and each filter term its own
realisation (:class:`optfilters.stages.FilterTerm`).  The numpy reference
executor runs the very same program; the bridge runs it on one tensor at a
time, on lists of tensors (``torch._foreach_*``), as generated C kernels or
inside ``torch.compile``; only the interpreter changes (:mod:`._kernels`,
:mod:`._native`, :mod:`._compiled`).  Every scalar of a step (bias
corrections, NAdam's momentum schedule, lr, filter coefficients) is computed
in Python double precision by the slot functions, in the same order as
torch.optim computes it, so that the tensor operations see the same numbers.
"""

from __future__ import annotations

import torch

from ..model import OptimizerModel, StepPlan
from ..program import POLE_TOLERANCE, Instruction, Program, StateSpec

__all__ = ["POLE_TOLERANCE", "Instruction", "Plan", "Program", "StateSpec", "dtype_name", "kernel_registers"]


def dtype_name(dtype: torch.dtype) -> str:
    """The name of a state dtype for :class:`optfilters.program.ProgramBuilder` (``"float32"``, ...)."""
    if dtype == torch.float64:
        return "float64"
    if dtype == torch.float16:
        return "float16"
    return "float32"


def kernel_registers(program: Program) -> dict[str, str]:
    """The variable names the generated kernels (C and Triton) give a program's registers.

    ``param`` and ``grad`` are ``r_param`` and ``r_grad``, the ``i``-th state
    tensor ``r_s{i}``, and every other register an instruction writes
    ``r_{name}``.

    Parameters
    ----------
    program : Program
        The step program.

    Returns
    -------
    dict of str to str
        Register name to variable name.
    """
    reg: dict[str, str] = {"param": "r_param", "grad": "r_grad"}
    for i, spec in enumerate(program.state):
        reg[f"state.{spec.key}"] = f"r_s{i}"
    for ins in program.instructions:
        if ins.out is not None and ins.out not in reg:
            reg[ins.out] = f"r_{ins.out}"
    return reg


class Plan(StepPlan):
    """The programs of one model for one state dtype (one per combination of step-dependent variants).

    Parameters
    ----------
    model : OptimizerModel
        Any model: catalogue entry, designed filter, composition or hand-built stages.
    state_dtype : torch.dtype
        The dtype of the filter state (float32 for low-precision parameters).

    Examples
    --------
    >>> import torch, optfilters
    >>> from optfilters.torch._program import Plan
    >>> plan = Plan(optfilters.get("adam"), torch.float32)
    >>> [spec.key for spec in plan.program(1).state]
    ['gradient.0', 'second_moment.0']
    """

    def __init__(self, model: OptimizerModel, state_dtype: torch.dtype) -> None:
        super().__init__(model, dtype_name(state_dtype))
        self.torch_dtype = state_dtype
