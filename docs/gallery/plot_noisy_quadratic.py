"""
The noisy quadratic: expected loss
==================================

The exact expected loss of heavy ball on ``1/2 (theta_1^2 + 0.1 theta_2^2)`` with white gradient noise, its
parts from the mean and from the noise, and its steady state.
"""

import optfilters
from optfilters.noisy_quadratic import predict

prediction = predict(
    optfilters.get("momentum", momentum=0.9, lr=0.1), curvatures=[1.0, 0.1], noise_var=0.01, init=1.0, steps=200
)
view = prediction.plot()
