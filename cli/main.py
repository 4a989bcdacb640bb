"""The ``optfilters`` click group.

Commands live in sibling modules, each with ``register(group)``; they are
registered here without importing torch or matplotlib (those load only inside
commands that plot or train).
"""

from __future__ import annotations

import importlib

import click

from ._common import OneLineErrorGroup

#: Command modules of this package, each defining ``register(group: click.Group) -> None``.
COMMAND_MODULES = (
    "analysis",
    "predict",
    "control",
    "identify",
    "audit",
    "nonlinear",
    "figures",
    "explore",
    "checkpoint",
)


@click.group(cls=OneLineErrorGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="optfilters")
def main() -> None:
    """optfilters: deep-learning optimizers as filters on the gradient sequence."""


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"{__package__}.{_name}")
    except ModuleNotFoundError as _exc:  # a command module that is not written yet
        if _exc.name != f"{__package__}.{_name}":
            raise
        continue
    _module.register(main)
