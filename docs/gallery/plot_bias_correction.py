"""
Adam's bias correction
======================

The raw response of Adam's first moment to a constant gradient is ``1 - beta1^t``; bias correction divides
by that partial sum, so every step is exactly 1.
"""

import optfilters
from optfilters import plot

view = plot.step_plot(optfilters.get("adam", beta1=0.9), n=40)
