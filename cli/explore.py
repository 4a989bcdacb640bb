"""``optfilters explore``: the interactive explorer in the browser (a local Bokeh server).

Importing this module loads neither Bokeh nor torch: the command does.
"""

from __future__ import annotations

import click

from optfilters.validation import check_distinct

from ._common import CliError, IntegerRange, OneLineCommand, one_line_errors


def register(group: click.Group) -> None:
    """Add the ``explore`` command to ``group``."""

    @group.command("explore", cls=OneLineCommand)
    @click.option(
        "--port",
        type=IntegerRange(min=0, max=65535),
        default=5006,
        show_default=True,
        help="TCP port of the local server (0: any free port).",
    )
    @click.option(
        "--address", default="127.0.0.1", show_default=True, help="Address to listen on (default: this machine only)."
    )
    @click.option("--no-browser", is_flag=True, help="Do not open the page in the default browser.")
    @click.option(
        "--model",
        "models",
        multiple=True,
        metavar="FILE.py:NAME",
        help="Also offer a model of your own file (repeatable); listed under NAME.",
    )
    def explore(port: int, address: str, no_browser: bool, models: tuple[str, ...]) -> None:
        """Explore optimizers interactively in the browser: Bode, poles and zeros, impulse and step responses,
        closed-loop rate and stability map, trajectories through the PyTorch bridge, noisy-quadratic prediction.

        Prints the page's URL and serves it until interrupted (Ctrl-C).  The
        URL holds the configuration (?a=adam&a.beta1=0.95&b=momentum&fn=rosenbrock):
        copy it to share one.
        """
        with one_line_errors():  # a model offered twice: the second would silently replace the first
            check_distinct(models, "--model")
        try:
            import bokeh  # noqa: F401
        except ModuleNotFoundError:
            raise CliError("explore needs Bokeh: pip install bokeh") from None
        from optfilters.explore import serve
        from optfilters.user_models import load_entry

        extra = {}
        with one_line_errors():
            for reference in models:
                entry = load_entry(reference)
                extra[entry.name] = entry

        def started(url: str) -> None:
            click.echo(f"optfilters explorer: {url}  (Ctrl-C to stop)", err=False)

        try:
            serve(port=port, address=address, open_browser=not no_browser, extra=extra, on_start=started)
        except OSError as exc:
            raise CliError(f"cannot listen on {address}:{port}: {exc.strerror or exc}") from None
