"""Shared test setup: headless matplotlib; one BLAS thread (the suite's small solves only lose to thread start-up)."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")
for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

try:  # numpy may already be loaded by a plugin: limit its BLAS pool directly too
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn (a test dependency)
    pass
else:
    threadpool_limits(1, user_api="blas")
