"""``optfilters convert-checkpoint``: optimizer checkpoints between torch.optim and optfilters.

``optfilters convert-checkpoint ckpt.pt out.pt --optimizer adam --key optimizer``
reads a ``torch.save`` file, converts the optimizer state dict (the whole file,
or its entry ``--key``, as training scripts save ``{"model": ...,
"optimizer": ...}``) from the torch.optim counterpart of a catalogue entry to
:class:`optfilters.torch.FilterOptimizer`'s format (``--to optfilters``, the
default) or back (``--to torch``), and writes the same structure to the
output file (:mod:`optfilters.torch.checkpoint`), which must be a new path in an existing folder (the
source itself is refused).  Files are read with
``weights_only=True``.  Importing this module does not import torch: only
running the command does.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

import click

from ._common import CliError, NonEmptyPath, OneLineCommand, check_output_file, one_line_errors

__all__ = ["register"]


@click.command("convert-checkpoint", cls=OneLineCommand)
@click.argument("source", type=NonEmptyPath(path_type=Path, dir_okay=False))
@click.argument("target", type=NonEmptyPath(path_type=Path, dir_okay=False))
@click.option(
    "--optimizer",
    "name",
    required=True,
    help="Catalogue name with a torch.optim counterpart (adam, nesterov, rmsprop, ...).",
)
@click.option(
    "--to",
    "to",
    type=click.Choice(["optfilters", "torch"]),
    default="optfilters",
    show_default=True,
    help="The format to write.",
)
@click.option(
    "--key",
    default=None,
    help="The entry of the saved dict that holds the optimizer state dict (e.g. optimizer); default: the whole file.",
)
def convert_checkpoint(source: Path, target: Path, name: str, to: str, key: str | None) -> None:
    """Convert an optimizer checkpoint (torch.save file) between torch.optim and optfilters.

    Example: optfilters convert-checkpoint ckpt.pt out.pt --optimizer adam --key optimizer
    """
    with one_line_errors():
        from optfilters import resolve_name

        canonical = resolve_name(name)
        if source.is_file() and target.exists() and os.path.samefile(source, target):
            raise CliError(f"TARGET {str(target)!r} is the SOURCE file: write the converted checkpoint to a new file")
        check_output_file(target, "TARGET")  # before torch loads: a place that cannot be written is said first
        import torch

        from optfilters.torch.checkpoint import from_torch, to_torch

        saved: Any = _load(torch, source)
        if key is not None:
            if not isinstance(saved, dict) or key not in saved:
                keys = ", ".join(repr(k) for k in saved) if isinstance(saved, dict) else "none: it is not a dict"
                raise CliError(f"{source} has no key {key!r} (its keys: {keys})")
            state_dict = saved[key]
        else:
            _suggest_key(saved, source)
            state_dict = saved
        converted = from_torch(state_dict, canonical) if to == "optfilters" else to_torch(state_dict, canonical)
        out = {**saved, key: converted} if key is not None else converted
        _save(torch, out, target)
    count = len(converted["state"])
    click.echo(
        f"wrote {target}: {canonical} optimizer state in {to} format ({count} parameter{'' if count == 1 else 's'})"
    )


def _is_state_dict(value: Any) -> bool:
    return isinstance(value, dict) and "state" in value and "param_groups" in value


def _suggest_key(saved: Any, source: Path) -> None:
    """Refuse a whole file that is not an optimizer state dict but holds one under a key (a training
    checkpoint ``{"model": ..., "optimizer": {...}}``), naming ``--key``."""
    if not isinstance(saved, dict) or _is_state_dict(saved):
        return
    keys = [k for k, v in saved.items() if _is_state_dict(v)]
    if keys:
        options = " or ".join(f"--key {k}" for k in keys[:3])
        raise CliError(
            f"{source} is not an optimizer state dict but a dict whose entry {keys[0]!r} holds one: give {options}"
        )


def _load(torch: Any, source: Path) -> Any:
    """The object of a ``torch.save`` file (``weights_only=True``), or a one-line error saying what the file is."""
    if not source.exists():
        raise CliError(f"{source}: no such file")
    if not source.is_file():  # /dev/null, a pipe, a socket: not a file torch.save wrote
        raise CliError(f"{source}: is not a regular file (a device, pipe or socket), not a torch.save file")
    try:
        with source.open("rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise CliError(f"{source}: cannot be read ({exc.strerror or 'permission denied'})") from None
    if not head:
        raise CliError(f"{source}: the file is empty, not a torch.save file")
    try:
        with warnings.catch_warnings():  # torch's notes on the pickle protocol: the outcome is said below
            warnings.simplefilter("ignore")
            return torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's messages name its C++ reader and pickler: say what the file is instead
        text = str(exc)
    pickled = zipfile.is_zipfile(source) or head.startswith(b"\x80")  # torch.save's zip, or its legacy pickle
    if "Weights only load failed" in text and pickled:
        why = "it holds Python objects other than tensors and plain containers, which weights_only=True refuses"
    elif head.startswith(b"PK") and not zipfile.is_zipfile(source):
        why = "it is truncated or damaged (an incomplete zip archive)"
    elif zipfile.is_zipfile(source):
        why = "it is a zip archive but not one torch.save wrote"
    else:
        why = "it is not a torch.save file"
    raise CliError(f"{source}: cannot be read as a torch.save file: {why}")


def _save(torch: Any, out: Any, target: Path) -> None:
    """``torch.save`` to ``target``; a place that cannot be written is a one-line error."""
    try:
        with target.open("wb") as handle:
            torch.save(out, handle)
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror or 'not writable'}") from None
    except RuntimeError:  # torch's writer failing mid-file (a full disk)
        raise CliError(f"cannot write {target}: the write failed (is the disk full?)") from None


def register(group: click.Group) -> None:
    """Add ``convert-checkpoint`` to the ``optfilters`` group."""
    group.add_command(convert_checkpoint)
