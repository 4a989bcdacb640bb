"""Atlases of optimizer libraries: pytorch-optimizer and Schedule-Free, audited class by class.

Not part of the main job (the libraries are optional): install them with
``pip install ".[audit]"`` and run

    python -m optfilters.papers.atlas_libraries [OUT_DIR] [--quick]

which runs :func:`optfilters.audit.audit` on ``pytorch_optimizer`` and
``schedulefree`` (each when importable) and writes ``OUT_DIR/<module>/``
``atlas.md``, ``atlas.json`` and ``atlas.png`` (default ``OUT_DIR``:
``figures/atlas_libraries``).  The files hold no wall times (they are
byte-stable for a given library version); the timings, the verdict counts and
the findings are printed.  Each finding in ``atlas.md`` has a one-line
reproduction.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

from optfilters.papers import command_line

TITLE = "Atlases of pytorch-optimizer and Schedule-Free: every optimizer class probed, with findings"

#: The libraries audited, by import name.
LIBRARIES = ("pytorch_optimizer", "schedulefree")


def reproduce(out_dir: str | Path = "figures/atlas_libraries", quick: bool = False) -> dict[str, Any]:
    """Audit each installed library and write its atlas into ``out_dir/<module>/``.

    Parameters
    ----------
    out_dir : str or Path
        Output folder.
    quick : bool
        Reduced probe sizes.

    Returns
    -------
    dict
        Per library: ``classes``, ``verdict_counts``, ``findings`` (count),
        ``seconds`` (wall time, printed, not written), ``version``; libraries
        that are not installed map to ``None``.

    Examples
    --------
    >>> from optfilters.papers import atlas_libraries
    >>> atlas_libraries.LIBRARIES
    ('pytorch_optimizer', 'schedulefree')
    """
    from optfilters.audit import audit

    out: dict[str, Any] = {}
    for module in LIBRARIES:
        if importlib.util.find_spec(module) is None:
            out[module] = None
            continue
        began = time.perf_counter()
        result = audit(module, quick=quick, progress=lambda line: print(line, flush=True))
        result.write(Path(out_dir) / module)
        out[module] = {
            "classes": len(result.classes),
            "verdict_counts": result.verdict_counts(),
            "findings": len(result.findings()),
            "finding_kinds": _count(f.kind for _, f in result.findings()),
            "seconds": time.perf_counter() - began,
            "version": result.versions.get(module),
            "slowest": sorted(((c.seconds, c.name) for c in result.classes), reverse=True)[:5],
        }
    return out


def _count(items: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


def main(argv: list[str] | None = None) -> None:
    """Command line: ``[OUT_DIR] [--quick]``; prints counts, findings and timings per library."""
    out_dir, quick = command_line("atlas_libraries", argv)
    for module, summary in reproduce(out_dir, quick=quick).items():
        if summary is None:
            print(f"{module}: not installed (pip install '.[audit]')")
            continue
        print(
            f"{module} {summary['version']}: {summary['classes']} classes in {summary['seconds']:.0f} s; "
            f"verdicts {summary['verdict_counts']}; {summary['findings']} findings {summary['finding_kinds']}"
        )
        print("  slowest: " + ", ".join(f"{name} {seconds:.1f} s" for seconds, name in summary["slowest"]))


if __name__ == "__main__":
    main()
