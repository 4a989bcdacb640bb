"""``optfilters figures``: regenerate the reproduced lectures' and papers' figures.

Each source runs under :func:`optfilters.papers.deterministic` with a progress
bar per long run on stderr; then one summary line per source says how many
checks passed and which was closest to its tolerance.  A failed check makes
the command fail (exit code 1) and is named, on stdout and stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from optfilters.validation import atomic_write_text, check_distinct

from ._common import (
    CliError,
    NonEmptyPath,
    OneLineCommand,
    check_output_folder,
    headless_matplotlib,
    one_line_errors,
    warn,
)


def register(group: click.Group) -> None:
    """Add the ``figures`` command to ``group``."""

    @group.command("figures", cls=OneLineCommand)
    @click.argument("sources", nargs=-1)
    @click.option("--all", "all_sources", is_flag=True, help="Regenerate every source.")
    @click.option(
        "--out",
        type=NonEmptyPath(file_okay=False, path_type=Path),
        default=Path("figures"),
        show_default=True,
        help="Output folder, created if missing (its parent folder must exist); each source writes into OUT/<source>/.",
    )
    @click.option("--quick", is_flag=True, help="Reduced sizes (seconds per source), as CI runs it.")
    @click.option(
        "--json", "as_json", is_flag=True, help="Print the checked numbers as one JSON object (no progress bars)."
    )
    @click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars on stderr.")
    def figures(
        sources: tuple[str, ...], all_sources: bool, out: Path, quick: bool, as_json: bool, progress: bool
    ) -> None:
        """Regenerate the figures of SOURCES (or --all) with their captions and checked numbers.

        Sources: ee541_unit7b, copernicus_l5, goh_momentum, edge_of_stability, noisy_quadratic, batch_size,
        sign_stages, large_signal, iqc_worst_case, optimizer_atlas.

        Prints a summary of every source's checks (how many passed, the worst
        one against its tolerance); exits with code 1, naming the checks, when
        one fails.  The outputs are deterministic: running twice leaves the
        files unchanged; an output within its reproducibility tolerance of the
        file already there keeps that file (the summary line counts them).
        """
        import contextlib

        from optfilters.papers import SOURCES, plain_numbers, recording_kept, reproduce, stderr_bars, summary_lines

        if all_sources and sources:
            raise click.UsageError("give SOURCES or --all, not both")
        chosen = list(SOURCES) if all_sources else list(sources)
        if not chosen:
            raise click.UsageError(f"name at least one source or --all; sources: {', '.join(SOURCES)}")
        unknown = [s for s in chosen if s not in SOURCES]
        if unknown:
            raise click.UsageError(f"unknown figure source {unknown[0]!r}; known: {', '.join(SOURCES)}")
        with one_line_errors():  # a source named twice would run twice
            check_distinct(chosen, "SOURCES")

        check_output_folder(out, "--out")
        summary = out / "numbers.json"  # every source's checked numbers; a partial run updates its own sources
        _read_summary(summary, SOURCES)  # a corrupt summary is repaired (with a message) before the long runs

        headless_matplotlib()
        results: dict[str, Any] = {}
        failures: list[str] = []
        for source in chosen:
            if not as_json:
                click.echo(f"{source}: running ({'quick' if quick else 'full'} size) ...", err=True)
            bars = stderr_bars() if progress and not as_json else contextlib.nullcontext()
            try:
                with bars, recording_kept() as kept:
                    numbers = reproduce(source, out, quick=quick)
            except OSError as exc:
                raise CliError(
                    f"cannot write the figures of {source} under {str(out)!r}: {exc.strerror or exc}"
                ) from None
            results[source] = plain_numbers(numbers)
            lines, failed = summary_lines(source, numbers, len(kept))
            failures += [f"{source}: {c.name}" for c in failed]
            if not as_json:
                files = sorted(p.name for p in (out / source).iterdir())
                click.echo("\n".join(lines))
                click.echo(f"  {len(files)} files in {out / source} (numbers.json: every number; captions.md)")
        with _locked(out):  # concurrent runs: read, update and replace the summary one at a time
            merged = _read_summary(summary, SOURCES, quiet=True)
            for source in chosen:
                merged[source] = json.loads((out / source / "numbers.json").read_text())
            atomic_write_text(summary, json.dumps(merged, indent=2, sort_keys=True) + "\n")
        if as_json:
            click.echo(json.dumps(results, sort_keys=True))
        if failures:
            click.echo(f"Error: {len(failures)} check(s) failed: {'; '.join(failures)}", err=True)
            sys.exit(1)


def _read_summary(summary: Path, sources: Sequence[str], quiet: bool = False) -> dict[str, Any]:
    """The merged ``numbers.json``; a corrupt one is rebuilt from the per-source files, with a message.

    The per-source ``OUT/<source>/numbers.json`` files hold the same numbers,
    so no source's numbers are lost when the summary is damaged.
    """
    if not summary.exists():
        return {}
    try:
        data = json.loads(summary.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"a JSON {type(data).__name__}, not an object")
        return data
    except (ValueError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0]
    except OSError as exc:
        raise CliError(f"cannot read {str(summary)!r}: {exc.strerror or exc}") from None
    rebuilt: dict[str, Any] = {}
    for source in sources:
        part = summary.parent / source / "numbers.json"
        try:
            rebuilt[source] = json.loads(part.read_text())
        except (OSError, ValueError):
            continue
    if not quiet:
        warn(
            f"{summary} was not valid JSON ({reason}); it is rebuilt from the per-source files "
            f"({', '.join(rebuilt) or 'none found'}) and this run's sources"
        )
    return rebuilt


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """An exclusive lock on the folder ``out`` itself (POSIX ``flock``; no file left behind; none where unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: atomic replacement only
        yield
        return
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
