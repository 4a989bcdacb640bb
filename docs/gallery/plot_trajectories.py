"""
Trajectories on the lecture's quadratic
=======================================

Gradient descent and heavy ball on ``f = 10 x^2 + 100 y^2`` (curvatures 20 and 200): gradient descent is
stable for ``lr < 2/200``; heavy ball with ``mu = 0.9`` for ``lr < (2 + 2 mu)/200``.  (The numpy reference
executor here; ``engine="bridge"`` runs the same through the PyTorch bridge.)
"""

from optfilters.trajectory import run_trajectories

runs = run_trajectories(
    "quadratic", {"GD": "sgd", "heavy ball": ("momentum", {"momentum": 0.9})}, [0.002, 0.009], steps=150, engine="numpy"
)
view = runs.plot()
