"""``optfilters figures``: regenerate the reproduced lectures' and papers' figures."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click


def register(group: click.Group) -> None:
    """Add the ``figures`` command to ``group``."""

    @group.command("figures")
    @click.argument("sources", nargs=-1)
    @click.option("--all", "all_sources", is_flag=True, help="Regenerate every source.")
    @click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("figures"),
        show_default=True,
        help="Output folder; each source writes into OUT/<source>/.",
    )
    @click.option("--quick", is_flag=True, help="Reduced sizes (seconds per source), as CI runs it.")
    @click.option("--json", "as_json", is_flag=True, help="Print the checked numbers as one JSON object.")
    def figures(sources: tuple[str, ...], all_sources: bool, out: Path, quick: bool, as_json: bool) -> None:
        """Regenerate the figures of SOURCES (or --all) with their captions and checked numbers.

        Sources: ee541_unit7b, copernicus_l5, goh_momentum, edge_of_stability, noisy_quadratic, batch_size,
        sign_stages, large_signal, iqc_worst_case, optimizer_atlas.
        """
        from optfilters.papers import SOURCES, plain_numbers, reproduce

        if all_sources and sources:
            raise click.UsageError("give SOURCES or --all, not both")
        chosen = list(SOURCES) if all_sources else list(sources)
        if not chosen:
            raise click.UsageError(f"name at least one source or --all; sources: {', '.join(SOURCES)}")
        unknown = [s for s in chosen if s not in SOURCES]
        if unknown:
            raise click.UsageError(f"unknown figure source {unknown[0]!r}; known: {', '.join(SOURCES)}")

        import matplotlib

        matplotlib.use("Agg")
        results: dict[str, Any] = {}
        for source in chosen:
            start = time.perf_counter()
            numbers = reproduce(source, out, quick=quick)
            results[source] = plain_numbers(numbers)
            if not as_json:
                files = sorted(p.name for p in (out / source).iterdir())
                click.echo(f"{source}: {len(files)} files in {out / source} ({time.perf_counter() - start:.1f} s)")
                for key, value in results[source].items():
                    text = str(value)
                    click.echo(f"  {key}: {text if len(text) <= 100 else text[:97] + '...'}")
                click.echo(f"  (all numbers: {out / source / 'numbers.json'}; what they check: captions.md)")
        summary = out / "numbers.json"  # every source's checked numbers; a partial run updates its own sources
        merged: dict[str, Any] = {}
        if summary.is_file():
            try:
                merged = dict(json.loads(summary.read_text()))
            except (ValueError, TypeError):
                merged = {}
        merged.update(results)
        summary.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
        if as_json:
            click.echo(json.dumps(results, sort_keys=True))
