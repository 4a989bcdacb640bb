"""``optfilters audit MODULE``: identify every optimizer class a module exports, with findings.

``optfilters audit torch.optim --out atlas/`` writes the atlas (``atlas.md``,
``atlas.json``, ``atlas.png``); ``--json`` prints the audit as one JSON
object.  Progress goes to stderr, one line per class.  Importing this module
does not import torch: only running the command does.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from optfilters.validation import check_distinct

from ._common import CliError, FiniteFloatRange, NonEmptyPath, OneLineCommand, check_output_folder, one_line_errors


def register(group: click.Group) -> None:
    """Add the ``audit`` command to ``group``."""

    @group.command("audit", cls=OneLineCommand)
    @click.argument("module")
    @click.option("--json", "as_json", is_flag=True, help="Print the audit as one JSON object on stdout.")
    @click.option(
        "--out",
        type=NonEmptyPath(file_okay=False, path_type=Path),
        default=None,
        help="Write the atlas (atlas.md, atlas.json, atlas.png) into this folder (created if missing; its parent "
        "folder must exist).",
    )
    @click.option("--quick", is_flag=True, help="Reduced probe sizes (seconds per class).")
    @click.option(
        "--time-limit",
        type=FiniteFloatRange(),
        default=None,
        metavar="SECONDS",
        help="Per-class time limit (default 120, 60 with --quick); a class past it is 'could not probe'.",
    )
    @click.option("--only", multiple=True, metavar="CLASS", help="Audit only this class (repeatable).")
    @click.option("--timings", is_flag=True, help="Add wall times to the output and the atlas.")
    @click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
    def audit_command(
        module: str,
        as_json: bool,
        out: Path | None,
        quick: bool,
        time_limit: float | None,
        only: tuple[str, ...],
        timings: bool,
        quiet: bool,
    ) -> None:
        """Identify every torch.optim.Optimizer subclass that MODULE exports, and list findings.

        MODULE is a dotted module (torch.optim, pytorch_optimizer, schedulefree,
        mypackage.optim) or a file (path/to/optimizers.py).  Each class is probed
        with its constructor defaults: verdict (linear / linear time-varying /
        normalised / sign-type / matrix / nonlinear / could not probe), its
        identified filter, its catalogue comparison where one exists, and
        findings, each with a one-line reproduction.

        \b
        Examples:
          optfilters audit torch.optim --out atlas/
          optfilters audit pytorch_optimizer --json > atlas.json
          optfilters audit my_optimizers.py --only Signum
        """
        with one_line_errors():  # a class named twice would be probed twice
            check_distinct(only, "--only")
        if out is not None:  # refused before the long probes, not after
            check_output_folder(out, "--out")
        with one_line_errors():
            from dataclasses import replace

            from optfilters.audit import AuditSettings, audit

            settings = AuditSettings.quick() if quick else AuditSettings()
            if time_limit is not None:
                if not time_limit > 0:
                    raise CliError(f"--time-limit must be > 0 seconds, got {time_limit:g}")
                settings = replace(settings, time_limit=float(time_limit))

            def progress(line: str) -> None:
                if not quiet:
                    click.echo(line, err=True)

            result = audit(module, settings=settings, only=list(only) or None, progress=progress)
            if out is not None:
                written = result.write(out, timings=timings)
                progress(f"wrote {', '.join(str(p) for p in written)}")
        if as_json:
            click.echo(json.dumps(result.as_dict(timings), sort_keys=True))
            return
        click.echo(result.to_markdown(timings), nl=False)
