"""PyTorch bridge: any optfilters model as a real ``torch.optim.Optimizer``.

>>> import torch
>>> from optfilters.torch import FilterOptimizer
>>> w = torch.nn.Parameter(torch.tensor([1.0]))
>>> opt = FilterOptimizer([w], "sgd", lr=0.5)
>>> w.grad = torch.tensor([2.0])
>>> opt.step()
>>> w.item()
0.0

Importing this module imports torch; ``import optfilters`` alone never does.
"""

from .checkpoint import CheckpointError
from .optimizer import FilterOptimizer

__all__ = ["CheckpointError", "FilterOptimizer"]
