"""Shared test setup: headless matplotlib, deterministic numpy."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")
