"""Command-line interface (installed as ``optfilters.cli``; entry point ``optfilters``)."""

from .main import main

__all__ = ["main"]
