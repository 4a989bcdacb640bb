"""
Momentum against Nesterov
=========================

The gradient filters of heavy-ball momentum, ``1/(1 - mu z^-1)``, and of torch's Nesterov form,
``((1 + mu) - mu z^-1)/(1 - mu z^-1)``: the same DC gain ``1/(1 - mu)``; Nesterov's zero at ``mu/(1 + mu)``
lifts the high frequencies.
"""

import optfilters
from optfilters import plot

mu = 0.9
view = plot.bode_plot(
    {"momentum": optfilters.get("momentum", momentum=mu), "Nesterov": optfilters.get("nesterov", momentum=mu)}
)
