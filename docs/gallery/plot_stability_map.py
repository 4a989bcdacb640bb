"""
Heavy ball: rate over step size and momentum
============================================

The closed-loop rate on a quadratic over ``x = lr * h`` and the momentum (Goh, "Why Momentum Really Works"):
stable for ``x < 2 + 2 mu``, rate exactly ``sqrt(mu)`` in the complex band.
"""

import numpy as np

from optfilters import plot
from optfilters.closed_loop import stability_map

result = stability_map("momentum", "momentum", np.linspace(0.0, 0.99, 100), np.linspace(0.0, 4.2, 211))
view = plot.stability_map_plot(result)
