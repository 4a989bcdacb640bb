"""The optimizer atlas of torch.optim: what every optimizer class really does, measured.

:func:`optfilters.audit.audit` probes every ``torch.optim.Optimizer``
subclass that ``torch.optim`` exports, with its constructor defaults, and
writes the atlas: ``atlas.md`` (one row per class: verdict, identified filter,
catalogue comparison, findings with a one-line reproduction), ``atlas.json``
and ``atlas.png`` (poles, zeros and DC gain at a glance).

The numbers this source checks, each against something we did not write:

====================================================  ================================================
check                                                 reference
====================================================  ================================================
``SGD`` is the identity (b = [1], a = [1])             torch.optim.SGD's rule with momentum 0
every catalogue entry with a torch class matches it   the catalogue models run by their numpy executor
                                                      with the same probes (frequency response within
                                                      1e-3 of its peak)
Adam's dither BLA pole within 4 s.e. of 0.9           Bussgang: the normaliser is nearly constant under
                                                      the dither, so the BLA is EMA(beta1) / sigma
Muon's dither BLA pole, zero within 4 s.e. of         torch's Nesterov form (1 - mu)((1 + mu) - mu z^-1)
0.95, 0.95 / 1.95                                     / (1 - mu z^-1), mu = 0.95 (torch/optim/_muon.py)
Muon verdict "matrix" (rotation-equivariant)          orthogonalisation commutes with rotations
SparseAdam's state is event-clocked                   torch's sparse_adam updates only present indices
====================================================  ================================================

Deterministic (seeded probes, one torch thread); no wall times are written.
Full run: the audit's default probe sizes (about a minute on two cores);
quick: :meth:`~optfilters.audit.AuditSettings.quick`.

Run ``python -m optfilters.papers.optimizer_atlas [OUT_DIR] [--quick]`` (or
``optfilters figures optimizer_atlas``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from optfilters.papers import command_line, write_outputs

TITLE = "The optimizer atlas of torch.optim: verdicts, identified filters and findings, measured"

#: The sources' (class, expected pole, expected zero) checks of the dither BLA.
BLA_CHECKS: dict[str, tuple[float, float | None]] = {
    "torch.optim.Adam": (0.9, None),
    "torch.optim.Muon": (0.95, 0.95 / 1.95),
}


def _bla_check(entry: Any, pole: float, zero: float | None) -> dict[str, Any]:
    ident = entry.identification
    bla = None if ident is None else ident.bla
    if bla is None or bla.filter is None or bla.poles.size != 1:
        return {"ok": False, "why": "no one-pole best linear approximation"}
    out: dict[str, Any] = {
        "pole": float(bla.poles[0].real),
        "pole_error": float(bla.pole_errors[0]),
        "pole_sigmas": abs(float(bla.poles[0].real) - pole) / max(float(bla.pole_errors[0]), 1e-12),
    }
    ok = out["pole_sigmas"] <= 4.0
    if zero is not None:
        zeros = [z for z in bla.zeros if abs(z) > 1e-9]
        if len(zeros) != 1:
            return {**out, "ok": False, "why": "no single non-trivial zero"}
        k = next(i for i, z in enumerate(bla.zeros) if abs(z) > 1e-9)
        out["zero"] = float(zeros[0].real)
        out["zero_error"] = float(bla.zero_errors[k])
        out["zero_sigmas"] = abs(out["zero"] - zero) / max(out["zero_error"], 1e-12)
        ok = ok and out["zero_sigmas"] <= 4.0
    out["ok"] = ok
    return out


def reproduce(out_dir: str | Path = "figures/optimizer_atlas", quick: bool = False) -> dict[str, Any]:
    """Audit torch.optim, write the atlas (Markdown, JSON, figure), captions and the checked numbers.

    Parameters
    ----------
    out_dir : str or Path
        Output folder.
    quick : bool
        Reduced probe sizes (CI).

    Returns
    -------
    dict
        ``classes`` (verdict, catalogue match and finding count per class),
        ``verdict_counts``, ``findings``, ``bla_checks``, ``catalogue_matches``
        (all True), ``sgd_identity``, ``muon_matrix``, ``sparse_event_clocked``,
        ``files``.

    Examples
    --------
    >>> from optfilters.papers import optimizer_atlas
    >>> sorted(optimizer_atlas.BLA_CHECKS)
    ['torch.optim.Adam', 'torch.optim.Muon']
    """
    from optfilters.audit import audit

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = audit("torch.optim", quick=quick)
    files = [p.name for p in result.write(out)]
    by_name = {c.name: c for c in result.classes}
    classes = {
        c.name: {
            "verdict": c.verdict,
            "catalogue": c.catalogue,
            "catalogue_match": None if c.comparison is None else c.comparison.match,
            "findings": len(c.findings),
        }
        for c in result.classes
    }
    sgd = by_name["torch.optim.SGD"].identification
    muon = by_name["torch.optim.Muon"]
    sparse = by_name["torch.optim.SparseAdam"].identification
    numbers: dict[str, Any] = {
        "title": TITLE,
        "quick": quick,
        "settings": result.settings.as_dict(),
        "classes": classes,
        "verdict_counts": result.verdict_counts(),
        "findings": [{"class": n, "kind": f.kind, "message": f.message} for n, f in result.findings()],
        "bla_checks": {name: _bla_check(by_name[name], *expected) for name, expected in BLA_CHECKS.items()},
        "catalogue_matches": {n: v["catalogue_match"] for n, v in classes.items() if v["catalogue"] is not None},
        "sgd_identity": bool(
            sgd is not None and sgd.is_lti and sgd.orders == (0, 0) and math.isclose(float(sgd.b[0]), 1.0)
        ),
        "muon_matrix": muon.verdict == "matrix",
        "sparse_event_clocked": bool(sparse is not None and sparse.events is not None and sparse.events.event_clocked),
        "files": [*files, "captions.md", "numbers.json"],
    }
    write_outputs(out, numbers, _captions(numbers, result))
    return numbers


def _captions(numbers: dict[str, Any], result: Any) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in numbers["verdict_counts"].items() if v)
    checks = numbers["bla_checks"]
    lines = [
        f"# {TITLE}",
        "",
        f"`atlas.md`, `atlas.json`: {len(numbers['classes'])} classes ({counts}); "
        f"{len(numbers['findings'])} findings. Regenerate with `optfilters audit torch.optim --out DIR`.",
        "",
        "`atlas.png`: every class's identified poles (x) and zeros (o) on the real axis and its |DC gain|, coloured "
        "by verdict. The filter drawn is the LTI filter for linear optimizers, else the best linear approximation "
        "under a unit Gaussian dither (Bussgang), else the small-signal part around a constant gradient.",
        "",
        "Checks:",
        "",
        f"- SGD is the identity: {numbers['sgd_identity']}.",
        f"- catalogue comparisons (same settings, tolerance 1e-3 of the peak): {numbers['catalogue_matches']}.",
    ]
    for name, c in checks.items():
        if "pole" in c:
            text = f"pole {c['pole']:.4f} ± {c['pole_error']:.2g} ({c['pole_sigmas']:.2f} s.e. from the expected)"
            if "zero" in c:
                text += f", zero {c['zero']:.4f} ± {c['zero_error']:.2g} ({c['zero_sigmas']:.2f} s.e.)"
        else:
            text = c.get("why", "")
        lines.append(f"- {name} dither BLA: {text}; within 4 s.e.: {c['ok']}.")
    lines += [
        f"- Muon's verdict is matrix (rotation-equivariant orthogonalisation): {numbers['muon_matrix']}.",
        f"- SparseAdam's state is event-clocked: {numbers['sparse_event_clocked']}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``[OUT_DIR] [--quick]``; prints the verdict counts and findings."""
    out_dir, quick = command_line("optimizer_atlas", argv)
    numbers = reproduce(out_dir, quick=quick)
    print(numbers["verdict_counts"])
    for f in numbers["findings"]:
        print(f"{f['class']}: {f['kind']}: {f['message']}")


if __name__ == "__main__":
    main()
