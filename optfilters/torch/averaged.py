"""The averaged parameters a model keeps (EMA, SWA, Polyak averages), read and swapped in like ``AveragedModel``.

Models with a parameter-side average (:attr:`optfilters.OptimizerModel.parameter_output`:
the catalogue's ``ema``, ``swa`` and ``asgd``, :func:`optfilters.averaged` of
any model) keep it in the optimizer's state under that key (``averaged``).
Where ``torch.optim.swa_utils.AveragedModel`` keeps a second copy of the
module, :func:`averaged_parameters` reads the average of each parameter and
:func:`swap_averaged` puts it into the module for evaluation (and the
training parameters back afterwards).  Before a parameter's first step its
average is the parameter itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from .optimizer import FilterOptimizer

__all__ = ["averaged_parameters", "swap_averaged"]


def _key(optimizer: FilterOptimizer, index: int) -> str:
    if not isinstance(optimizer, FilterOptimizer):
        raise TypeError(f"expected an optfilters.torch.FilterOptimizer, got {type(optimizer).__name__}")
    key = optimizer.group_model(index).parameter_output
    if key is None:
        name = optimizer.group_model(index).name
        raise ValueError(
            f"{name} keeps no averaged parameters (use a model with an average: 'ema', 'swa', 'asgd' or "
            "optfilters.averaged(model))"
        )
    return key


def averaged_parameters(optimizer: FilterOptimizer) -> list[Tensor]:
    """The averaged parameters, one tensor per parameter in group order (the parameter itself before its first step).

    Parameters
    ----------
    optimizer : FilterOptimizer
        An optimizer whose model keeps an average.

    Returns
    -------
    list of Tensor
        The state tensors themselves (not copies); a parameter without state
        contributes a detached copy of itself.

    Raises
    ------
    ValueError
        If the model keeps no average.

    Examples
    --------
    >>> import torch
    >>> from optfilters.torch import FilterOptimizer
    >>> from optfilters.torch.averaged import averaged_parameters
    >>> w = torch.nn.Parameter(torch.tensor([1.0]))
    >>> opt = FilterOptimizer([w], "swa", lr=0.5)
    >>> for _ in range(2):
    ...     w.grad = torch.tensor([1.0])
    ...     opt.step()
    >>> w.item(), averaged_parameters(opt)[0].item()   # the mean of 0.5 and 0
    (0.0, 0.25)
    """
    out: list[Tensor] = []
    for index, group in enumerate(optimizer.param_groups):
        key = _key(optimizer, index)
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            out.append(state[key] if key in state else p.detach().clone())
    return out


@contextmanager
def swap_averaged(optimizer: FilterOptimizer) -> Iterator[None]:
    """Put the averaged parameters into the parameters for the ``with`` block, the training ones back afterwards.

    Parameters
    ----------
    optimizer : FilterOptimizer
        An optimizer whose model keeps an average.

    Raises
    ------
    ValueError
        If the model keeps no average.

    Examples
    --------
    >>> import torch
    >>> from optfilters.torch import FilterOptimizer
    >>> from optfilters.torch.averaged import swap_averaged
    >>> w = torch.nn.Parameter(torch.tensor([1.0]))
    >>> opt = FilterOptimizer([w], "ema", lr=1.0, decay=0.5)
    >>> for _ in range(2):
    ...     w.grad = torch.tensor([1.0])
    ...     opt.step()
    >>> with swap_averaged(opt):
    ...     inside = w.item()
    >>> inside, w.item()   # the EMA 0.5 * 0 + 0.5 * (-1), then the training parameter again
    (-0.5, -1.0)
    """
    averages = averaged_parameters(optimizer)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    with torch.no_grad():
        saved = [p.detach().clone() for p in params]
        for p, a in zip(params, averages, strict=True):
            p.copy_(a)
    try:
        yield
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)
