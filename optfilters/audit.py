"""Audit an optimizer library: identify every optimizer class a module exports, with findings.

:func:`audit` takes a module (``"torch.optim"``, ``"pytorch_optimizer"``,
``"schedulefree"``, any importable module or ``path/to/file.py``), finds
every :class:`torch.optim.Optimizer` subclass it exports, and for each, with
its constructor defaults and within a time limit:

* identifies it (:func:`optfilters.identify.identify`: linearity, time
  invariance, the LTI filter or the small-signal part, the best linear
  approximation under a Gaussian dither for nonlinear ones; a matrix or sparse
  layout when a 1-element dense parameter fails);
* gives a verdict (:data:`VERDICTS`): ``linear``, ``linear time-varying``,
  ``normalised``, ``sign-type``, ``matrix``, ``nonlinear`` or ``could not
  probe`` (with the reason);
* compares it with its catalogue entry where one exists (same class in
  ``CatalogueEntry.torch_class``, a catalogue name equal to the class name,
  or same class in ``CatalogueEntry.reference``, the third-party reference
  implementation), keywords mapped explicitly
  (:func:`optfilters.identify.map_keywords`);
* runs the structural probes of :mod:`optfilters.probes` (matrix coupling,
  state trace, zero gradient);
* lists FINDINGS (:data:`FINDING_KINDS`), each a measured statement with a
  one-line reproduction.

:meth:`Audit.write` writes the *atlas*: ``atlas.md`` (a table and the
findings), ``atlas.json`` and ``atlas.png`` (every optimizer's poles, zeros
and DC gain at a glance).  Timings go to the JSON only when asked
(``timings=True``), so that a regenerated atlas is byte-stable.
"""

from __future__ import annotations

import importlib
import inspect
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .catalogue import CATALOGUE, resolve_name
from .display import Plottable
from .errors import UnknownNameError
from .identify import (
    Comparison,
    Identification,
    IdentificationError,
    NonFiniteUpdate,
    ProbeTimeout,
    _fmt,
    _fmt_roots,
    _identify,
    _make_target,
    _probe_plan,
    constructor_defaults,
    foreign_code,
    one_torch_thread,
    resolve_optimizer,
)
from .probes import MatrixCheck
from .validation import jsonable as _jsonable

__all__ = [
    "FINDING_KINDS",
    "VERDICTS",
    "Audit",
    "AuditSettings",
    "ClassAudit",
    "Finding",
    "audit",
    "audit_class",
    "optimizer_classes",
]

#: Verdicts of an audited class (the identification's, or "could not probe").
VERDICTS = ("linear", "linear time-varying", "normalised", "sign-type", "matrix", "nonlinear", "could not probe")

#: Finding kinds and what each means.
FINDING_KINDS: dict[str, str] = {
    "identity by default": "with its constructor defaults the optimizer is plain SGD (identified filter b=[1], a=[1])",
    "first update": (
        "a time-varying (bias-corrected) optimizer whose first update on a constant gradient differs from its "
        "long-run update by more than 10% (a first update of exactly 0, a deliberate delayed start, is left out)"
    ),
    "pole mismatch": (
        "no pole or zero of the identified filter (LTI, or the dither BLA) within 4 standard errors (at least "
        "0.05 (1 - v) + 0.002) of a first-moment hyperparameter's value v (the first of momentum, beta1, betas[0], "
        "beta; beta only for linear and sign-type optimizers)"
    ),
    "catalogue mismatch": "the identification differs from the catalogue entry's at the same settings",
    "frozen state": (
        "a per-element state tensor (the parameter's shape) that never changes over steps of non-zero gradients"
    ),
    "non-finite on zero gradient": (
        "a zero gradient gives a non-finite update: from rest (or step() raises), or after a probe's non-zero start"
    ),
    "non-finite update": "a probe with non-zero gradients (constant or Gaussian) gives a non-finite update",
    "unstable": (
        "the identified LTI filter has a pole outside the unit circle (or a repeated one on it): its updates grow "
        "without bound on a bounded gradient"
    ),
}

#: Relative tolerance of the catalogue comparisons (frequency response, of its peak).
CATALOGUE_TOL = 1e-3
#: The small-signal part counts as a long-run value when it changed less than this as the background doubled.
CONVERGED_DRIFT = 1e-3

#: Constructor keywords read as a first-moment (gradient filter) pole, the first present one only; ``beta`` alone
#: only for linear and sign-type optimizers (in normalised ones it is often the second moment's).
FIRST_MOMENT_KEYWORDS = ("momentum", "beta1", "betas[0]", "beta")
#: Shape of the dither parameter for optimizers with a separate 2-D path.
MATRIX_BLA_SHAPE = (4, 8)


@dataclass(frozen=True)
class AuditSettings:
    """Probe sizes of an audit (``quick`` for tests; the full size for the atlas).

    Attributes
    ----------
    steps, max_background, window : int
        :func:`~optfilters.identify.identify`'s probe length, longest small-
        signal background and small-signal window.
    dither_records, dither_steps : int
        Records and steps of the dither probe.
    time_limit : float
        Seconds per class (a safety net: the probes are sized to finish well
        within it; a class that hits it is "could not probe").
    state_steps : int
        Steps of the state trace.

    Examples
    --------
    >>> from optfilters.audit import AuditSettings
    >>> AuditSettings.quick().dither_records
    3
    """

    steps: int = 96
    max_background: int = 4096
    window: int = 128
    dither_records: int = 6
    dither_steps: int = 1536
    time_limit: float = 120.0
    state_steps: int = 32

    @classmethod
    def quick(cls) -> AuditSettings:
        """Reduced sizes (seconds per class).

        Returns
        -------
        AuditSettings
            Settings for tests: every size and the time limit below the
            default's.

        Examples
        --------
        >>> from optfilters.audit import AuditSettings
        >>> AuditSettings.quick().steps
        48
        """
        return cls(
            steps=48, max_background=1024, window=48, dither_records=3, dither_steps=512, time_limit=60.0, state_steps=8
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain data.

        Returns
        -------
        dict
            The seven settings by field name (steps, backgrounds, dither sizes, time limit).

        Examples
        --------
        >>> from optfilters.audit import AuditSettings
        >>> AuditSettings().as_dict()["steps"]
        96
        """
        return {
            "steps": self.steps,
            "max_background": self.max_background,
            "window": self.window,
            "dither_records": self.dither_records,
            "dither_steps": self.dither_steps,
            "time_limit": self.time_limit,
            "state_steps": self.state_steps,
        }


@dataclass(frozen=True)
class Finding:
    """One finding: its kind (:data:`FINDING_KINDS`), a measured statement and a one-line reproduction.

    Attributes
    ----------
    kind : str
        A key of :data:`FINDING_KINDS`.
    message : str
        What was measured, in one sentence.
    reproduce : str
        A command that reproduces it (``optfilters identify ...``).

    Examples
    --------
    >>> from optfilters.audit import Finding
    >>> Finding("frozen state", "state 'g_prev' never changed", "optfilters identify m.C").as_dict()["kind"]
    'frozen state'
    """

    kind: str
    message: str
    reproduce: str

    def as_dict(self) -> dict[str, str]:
        """Plain data.

        Returns
        -------
        dict of str to str
            ``kind``, ``message``, ``reproduce``.
        """
        return {"kind": self.kind, "message": self.message, "reproduce": self.reproduce}


@dataclass(frozen=True)
class ClassAudit:
    """The audit of one optimizer class.

    Attributes
    ----------
    name : str
        The path it was audited under (``"torch.optim.Adam"``,
        ``"file.py:Class"``).
    origin : str
        Where the class is defined (``module.qualname``).
    verdict : str
        One of :data:`VERDICTS`.
    reason : str
        The measurement behind the verdict (or why it could not be probed).
    identification : Identification or None
        What :func:`~optfilters.identify.identify` measured.
    catalogue : str or None
        The matching catalogue entry.
    comparison : Comparison or None
        The comparison with it.
    comparison_error : str or None
        Why the comparison could not be made.
    findings : tuple of Finding
        The findings.
    probes : dict
        The structural probes' results as plain data (``matrix``, ``state``,
        ``zero_gradient``), or their error messages.
    seconds : float
        Wall time (not written to the atlas unless asked).

    Examples
    --------
    >>> from optfilters.audit import audit_class, AuditSettings
    >>> a = audit_class("torch.optim.SGD", settings=AuditSettings.quick())
    >>> a.verdict, a.catalogue, a.comparison.match, a.findings
    ('linear', 'sgd', True, ())
    """

    name: str
    origin: str
    verdict: str
    reason: str
    identification: Identification | None
    catalogue: str | None
    comparison: Comparison | None
    comparison_error: str | None
    findings: tuple[Finding, ...]
    probes: Mapping[str, Any]
    seconds: float

    @property
    def layout(self) -> str:
        """How the class was probed: ``"scalar"``, ``"4x8 matrix"``, ``"sparse"`` (empty when it could not be)."""
        ident = self.identification
        if ident is None:
            return ""
        if ident.layout == "matrix":
            return "x".join(str(v) for v in ident.shape) + " matrix"
        return ident.layout

    def atlas_filter(self) -> dict[str, Any] | None:
        """What the atlas shows: the LTI filter, else the dither BLA, else the small-signal part.

        Returns
        -------
        dict or None
            ``source`` (``"LTI filter"``, ``"dither BLA"``, ``"small-signal part"``),
            ``poles``, ``zeros`` (complex arrays), ``pole_errors``, ``zero_errors``
            (None for exact fits), ``dc_gain``.

        Examples
        --------
        >>> from optfilters.audit import audit_class, AuditSettings
        >>> audit_class("torch.optim.SGD", settings=AuditSettings.quick()).atlas_filter()["source"]
        'LTI filter'
        """
        ident = self.identification
        if ident is None:
            return None
        if ident.is_lti:
            return _atlas_entry("LTI filter", ident.to_filter())
        bla = ident.bla
        if bla is not None and bla.filter is not None:
            return _atlas_entry("dither BLA", bla, bla.pole_errors, bla.zero_errors)
        part = ident.visible
        if part is not None and part.filter is not None:
            return _atlas_entry("small-signal part", part.filter)
        return None

    def filter_text(self) -> str:
        """The atlas filter in one line (poles, zeros with standard errors, DC gain).

        Returns
        -------
        str
            ``"<source>: poles [...], zeros [...], DC gain g"`` (the source:
            the LTI filter, the best linear approximation or the small-signal
            part), or ``"none"``.

        Examples
        --------
        >>> from optfilters.audit import audit_class, AuditSettings
        >>> audit_class("torch.optim.SGD", settings=AuditSettings.quick()).filter_text()
        'LTI filter: poles [], zeros [], DC gain 1'
        """
        f = self.atlas_filter()
        if f is None:
            return "none"
        if f["pole_errors"] is None:
            poles, zeros = _fmt_roots(f["poles"]), _fmt_roots(f["zeros"])
        else:
            from .dither import _fmt_roots_with_errors

            poles = _fmt_roots_with_errors(f["poles"], f["pole_errors"])
            zeros = _fmt_roots_with_errors(f["zeros"], f["zero_errors"])
        return f"{f['source']}: poles {poles}, zeros {zeros}, DC gain {f['dc_gain']:.4g}"

    def as_dict(self, timings: bool = False) -> dict[str, Any]:
        """Plain data for JSON (wall time only with ``timings=True``).

        Parameters
        ----------
        timings : bool
            Include the wall time (``seconds``); off by default so the output
            is reproducible.

        Returns
        -------
        dict
            Name, origin, verdict and reason, the atlas filter, the catalogue
            comparison, the findings, a brief identification and the probes' results.

        Examples
        --------
        >>> from optfilters.audit import audit_class, AuditSettings
        >>> d = audit_class("torch.optim.SGD", settings=AuditSettings.quick()).as_dict()
        >>> d["verdict"], "seconds" in d
        ('linear', False)
        """
        f = self.atlas_filter()
        out: dict[str, Any] = {
            "name": self.name,
            "origin": self.origin,
            "verdict": self.verdict,
            "reason": self.reason,
            "filter": None
            if f is None
            else {
                "source": f["source"],
                "poles": f["poles"],
                "zeros": f["zeros"],
                "pole_errors": f["pole_errors"],
                "zero_errors": f["zero_errors"],
                "dc_gain": f["dc_gain"],
            },
            "catalogue": self.catalogue,
            "comparison": None if self.comparison is None else _brief_comparison(self.comparison),
            "comparison_error": self.comparison_error,
            "findings": [x.as_dict() for x in self.findings],
            "identification": None if self.identification is None else _brief_identification(self.identification),
            "probes": dict(self.probes),
        }
        if timings:
            out["seconds"] = self.seconds
        return _jsonable(out)


def _atlas_entry(source: str, fit: Any, pole_errors: Any = None, zero_errors: Any = None) -> dict[str, Any]:
    """One :meth:`ClassAudit.atlas_filter` entry: ``fit``'s poles, zeros and DC gain (errors None for exact fits)."""
    return {
        "source": source,
        "poles": fit.poles,
        "zeros": fit.zeros,
        "pole_errors": pole_errors,
        "zero_errors": zero_errors,
        "dc_gain": fit.dc_gain,
    }


def _brief_comparison(c: Comparison) -> dict[str, Any]:
    return {
        "match": c.match,
        "what": c.what,
        "reference": c.reference_name,
        "relative_deviation": c.relative_deviation,
        "differences": list(c.differences),
    }


def _brief_identification(ident: Identification) -> dict[str, Any]:
    data = ident.as_dict()
    for key in ("settings",):
        data.pop(key, None)
    visible = data.get("visible")
    if isinstance(visible, dict):  # the long response arrays stay out of the atlas
        visible.pop("response", None)
        visible.pop("step_response", None)
    bla = data.get("bla")
    if isinstance(bla, dict):
        bla.pop("response", None)
        bla.pop("standard_error", None)
    return data


@dataclass(frozen=True)
class Audit(Plottable):
    """The audit of every optimizer class of a module.

    Attributes
    ----------
    module : str
        The module audited.
    classes : tuple of ClassAudit
        One per class, sorted by name.
    settings : AuditSettings
        Probe sizes.
    versions : dict
        Versions of the audited package and of torch.
    seconds : float
        Total wall time.

    Examples
    --------
    >>> from optfilters.audit import audit, AuditSettings
    >>> result = audit("torch.optim", only=["SGD", "Adam"], settings=AuditSettings.quick())
    >>> [c.verdict for c in result.classes], result.verdict_counts()["normalised"]
    (['normalised', 'linear'], 1)

    :meth:`plot` draws the atlas figure on two axes (:func:`optfilters.plot.atlas_plot`):

    >>> r = result.plot()
    >>> len(r.axes)
    2
    >>> r.close()
    """

    _plot_function = "atlas_plot"

    module: str
    classes: tuple[ClassAudit, ...]
    settings: AuditSettings
    versions: Mapping[str, str]
    seconds: float

    def verdict_counts(self) -> dict[str, int]:
        """Classes per verdict (every verdict listed, zeros included).

        Returns
        -------
        dict of str to int
            Count per verdict, in the order of :data:`VERDICTS`.
        """
        counts = dict.fromkeys(VERDICTS, 0)
        for c in self.classes:
            counts[c.verdict] = counts.get(c.verdict, 0) + 1
        return counts

    def findings(self) -> list[tuple[str, Finding]]:
        """``(class name, finding)`` for every finding, in class order.

        Returns
        -------
        list of (str, Finding)
            The class's name with each of its findings.
        """
        return [(c.name, f) for c in self.classes for f in c.findings]

    def to_markdown(self, timings: bool = False) -> str:
        """The atlas page: settings, verdict counts, one table row per class, the findings.

        Parameters
        ----------
        timings : bool
            Add each class's wall time and the total (not reproducible).

        Returns
        -------
        str
            Markdown, ending in a newline.

        Examples
        --------
        >>> from optfilters.audit import audit, AuditSettings
        >>> text = audit("torch.optim", only=["SGD"], settings=AuditSettings.quick()).to_markdown()
        >>> text.splitlines()[0]
        '# Optimizer atlas: torch.optim'
        """
        s = self.settings
        counts = ", ".join(f"{k} {v}" for k, v in self.verdict_counts().items() if v)
        versions = ", ".join(f"{k} {v}" for k, v in self.versions.items())
        lines = [
            f"# Optimizer atlas: {self.module}",
            "",
            f"Generated by `optfilters audit {self.module}` ({versions}). Every class the module exports that "
            "subclasses `torch.optim.Optimizer`, probed with its constructor defaults at lr = 1 "
            f"(probes of {s.steps} steps; small-signal background up to {s.max_background} steps; dither "
            f"{s.dither_records} records x {s.dither_steps} steps x 32 elements; state trace {s.state_steps} steps).",
            "",
            "The filter column is the identified LTI filter when the optimizer is linear, else the best linear "
            "approximation under a unit Gaussian dither (poles and zeros ± one jackknife standard error; for a "
            "sign its DC gain depends on the dither level), else the small-signal part around a constant gradient.",
            "",
            f"{len(self.classes)} classes: {counts}.",
            "",
            "| class | probe | verdict | filter | catalogue | findings |",
            "|---|---|---|---|---|---|",
        ]
        for c in self.classes:
            if c.catalogue is None:
                cat = ""
            elif c.comparison is not None:
                cat = f"{c.catalogue}: {'MATCH' if c.comparison.match else 'DIFFERENT'}"
            else:
                cat = f"{c.catalogue}: not compared"
            verdict = c.verdict if c.verdict != "could not probe" else f"could not probe: {c.reason}"
            filt = c.filter_text()
            extra = c.probes.get("matrix_bla")
            if isinstance(extra, Mapping) and extra.get("poles") is not None:
                filt += f"; on a 4x8 matrix: dither BLA poles {_plain_roots(extra['poles'])}, zeros " + _plain_roots(
                    extra["zeros"]
                )
            row = [f"`{c.name}`", c.layout, verdict, filt, cat, str(len(c.findings)) if c.findings else ""]
            if timings:
                row[-1] += f" ({c.seconds:.1f} s)"
            lines.append("| " + " | ".join(_cell(x) for x in row) + " |")
        found = self.findings()
        lines += ["", f"## Findings ({len(found)})", ""]
        if not found:
            lines.append("None.")
        for name, finding in found:
            lines.append(f"- **{name}** ({finding.kind}): {finding.message}  ")
            lines.append(f"  reproduce: `{finding.reproduce}`")
        lines += ["", "## Finding kinds", ""]
        lines += [f"- {k}: {v}" for k, v in FINDING_KINDS.items()]
        if timings:
            lines += ["", f"Total {self.seconds:.1f} s."]
        return "\n".join(lines) + "\n"

    def as_dict(self, timings: bool = False) -> dict[str, Any]:
        """Plain data for JSON (wall times only with ``timings=True``).

        Parameters
        ----------
        timings : bool
            Include the wall times (``seconds``, per class and in total).

        Returns
        -------
        dict
            ``module``, ``versions``, ``settings``, ``verdict_counts``,
            ``findings`` (each with its ``class``) and ``classes``
            (:meth:`ClassAudit.as_dict`).

        Examples
        --------
        >>> from optfilters.audit import audit, AuditSettings
        >>> d = audit("torch.optim", only=["SGD"], settings=AuditSettings.quick()).as_dict()
        >>> d["module"], d["verdict_counts"]["linear"], "seconds" in d
        ('torch.optim', 1, False)
        """
        out: dict[str, Any] = {
            "module": self.module,
            "versions": dict(self.versions),
            "settings": self.settings.as_dict(),
            "verdict_counts": self.verdict_counts(),
            "findings": [{"class": n, **f.as_dict()} for n, f in self.findings()],
            "classes": [c.as_dict(timings) for c in self.classes],
        }
        if timings:
            out["seconds"] = self.seconds
        return _jsonable(out)

    def write(self, out_dir: str | Path, timings: bool = False, stem: str = "atlas") -> list[Path]:
        """Write ``atlas.md``, ``atlas.json`` (numbers to 8 significant digits) and ``atlas.png`` into ``out_dir``.

        Parameters
        ----------
        out_dir : str or Path
            Folder (created if missing).
        timings : bool
            Put wall times in the Markdown and JSON.
        stem : str
            File name stem.

        Returns
        -------
        list of Path
            The files written.

        Examples
        --------
        >>> import tempfile
        >>> from optfilters.audit import audit, AuditSettings
        >>> result = audit("torch.optim", only=["SGD"], settings=AuditSettings.quick())
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     [p.name for p in result.write(folder)]
        ['atlas.md', 'atlas.json', 'atlas.png']
        """
        import json

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        md, js, png = out / f"{stem}.md", out / f"{stem}.json", out / f"{stem}.png"
        md.write_text(self.to_markdown(timings))
        js.write_text(json.dumps(_rounded(self.as_dict(timings)), indent=1, sort_keys=True) + "\n")
        result = self.plot()
        result.savefig(png, dpi=110)
        result.close()
        return [md, js, png]


def _plain_roots(pairs: Sequence[Sequence[float]]) -> str:
    return "[" + ", ".join(f"{re:.4g}" + (f"{im:+.4g}j" if abs(im) > 1e-9 else "") for re, im in pairs) + "]"


def _rounded(value: Any, digits: int = 8) -> Any:
    """Floats to ``digits`` significant digits (the atlas files stay stable across last-bit differences).

    Examples
    --------
    >>> _rounded({"x": [0.123456789123, 2.0, None]})
    {'x': [0.12345679, 2.0, None]}
    """
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    return value


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


# ----------------------------------------------------------------------------- finding the classes


def _module_of(module: Any) -> tuple[Any, str]:
    if inspect.ismodule(module):
        return module, module.__name__
    if not isinstance(module, str):
        raise IdentificationError(f"module must be a module, a dotted name or a path/to/file.py, got {module!r}")
    text = module.strip()
    obj = resolve_optimizer(text)
    if not inspect.ismodule(obj):
        raise IdentificationError(f"{text!r} is not a module (it is a {type(obj).__name__}); audit a module")
    return obj, text


def optimizer_classes(module: Any) -> list[tuple[str, type]]:
    """Every ``torch.optim.Optimizer`` subclass a module exports, by name (aliases of one class once).

    The exported names are ``__all__`` when the module defines it, else its
    public attributes; ``torch.optim.Optimizer`` itself is left out.

    Parameters
    ----------
    module : module or str
        A module, a dotted module name or ``path/to/file.py``.

    Returns
    -------
    list of (str, type)
        Sorted by name.

    Raises
    ------
    IdentificationError
        When the module cannot be imported or is not a module.

    Examples
    --------
    >>> from optfilters.audit import optimizer_classes
    >>> [name for name, _ in optimizer_classes("torch.optim")][:3]
    ['ASGD', 'Adadelta', 'Adafactor']
    """
    import torch

    mod, _ = _module_of(module)
    names = getattr(mod, "__all__", None)
    if not isinstance(names, (list, tuple)):
        names = [n for n in dir(mod) if not n.startswith("_")]
    seen: dict[int, str] = {}
    out: list[tuple[str, type]] = []
    for name in sorted(str(n) for n in names):
        obj = getattr(mod, name, None)
        if not (inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer)) or obj is torch.optim.Optimizer:
            continue
        if id(obj) in seen:
            continue
        seen[id(obj)] = name
        out.append((name, obj))
    return out


# ----------------------------------------------------------------------------- auditing


def audit(
    module: Any,
    *,
    settings: AuditSettings | None = None,
    quick: bool = False,
    only: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Audit:
    """Audit every optimizer class a module exports.

    Parameters
    ----------
    module : module or str
        ``"torch.optim"``, ``"pytorch_optimizer"``, a module or
        ``path/to/file.py``.
    settings : AuditSettings, optional
        Probe sizes (default :class:`AuditSettings`, or
        :meth:`AuditSettings.quick` with ``quick=True``).
    quick : bool
        Reduced probe sizes.
    only : sequence of str, optional
        Audit only these class names.
    progress : callable, optional
        Called with one line before and after each class (for a progress
        display on stderr).

    Returns
    -------
    Audit

    Raises
    ------
    IdentificationError
        When the module cannot be imported, or ``only`` names a class it does
        not export.

    Examples
    --------
    >>> from optfilters.audit import audit
    >>> result = audit("torch.optim", only=["SGD"], quick=True)
    >>> result.classes[0].name
    'torch.optim.SGD'
    """
    import torch

    began = time.perf_counter()
    chosen = settings if settings is not None else (AuditSettings.quick() if quick else AuditSettings())
    with foreign_code():  # the module's own prints go to stderr; its sys.exit is an error
        mod, label = _module_of(module)
        classes = optimizer_classes(mod)
    if only is not None:
        available = {name for name, _ in classes}
        missing = [n for n in only if n not in available]
        if missing:
            raise IdentificationError(f"{label} exports no optimizer class {missing[0]!r}")
        classes = [(n, c) for n, c in classes if n in set(only)]
    file_module = label.endswith(".py")
    results = []
    for i, (name, cls) in enumerate(classes, start=1):
        path = f"{label}:{name}" if file_module else f"{label}.{name}"
        if progress is not None:
            progress(f"[{i}/{len(classes)}] {path} ...")
        try:
            with foreign_code():
                result = _audit_class(path, cls, chosen)
        except Exception as exc:  # one class must not end the audit of a library; say what happened
            from .identify import _first_line

            result = ClassAudit(
                path,
                _origin(cls),
                "could not probe",
                f"error while probing: {_first_line(exc)}",
                None,
                None,
                None,
                None,
                (),
                {},
                0.0,
            )
        if progress is not None:
            progress(f"[{i}/{len(classes)}] {path}: {result.verdict} ({result.seconds:.1f} s)")
        results.append(result)
    versions = {"torch": torch.__version__.split("+")[0]}
    top = label.split(".")[0]
    if not file_module and top != "torch":
        version = getattr(importlib.import_module(top), "__version__", None)
        if version is None:
            try:
                from importlib.metadata import version as dist_version

                version = dist_version(top.replace("_", "-"))
            except Exception:  # no distribution metadata: leave it out
                version = None
        if version:
            versions[top] = str(version)
    return Audit(label, tuple(results), chosen, versions, time.perf_counter() - began)


def audit_class(optimizer: Any, /, *, settings: AuditSettings | None = None, quick: bool = False) -> ClassAudit:
    """Audit one optimizer class (constructor defaults), as :func:`audit` does for each.

    Parameters
    ----------
    optimizer : str or class
        Dotted path, ``path/to/file.py:Class`` or the class.
    settings : AuditSettings, optional
        Probe sizes.
    quick : bool
        Reduced probe sizes (when ``settings`` is not given).

    Returns
    -------
    ClassAudit

    Raises
    ------
    IdentificationError
        When the path cannot be imported (a class that fails to probe is a
        ``"could not probe"`` verdict instead).

    Examples
    --------
    >>> from optfilters.audit import audit_class
    >>> audit_class("torch.optim.Rprop", quick=True).verdict
    'sign-type'
    """
    chosen = settings if settings is not None else (AuditSettings.quick() if quick else AuditSettings())
    if isinstance(optimizer, str):
        cls = resolve_optimizer(optimizer)
        path = optimizer.strip()
    else:
        cls = optimizer
        path = f"{getattr(cls, '__module__', '')}.{getattr(cls, '__qualname__', repr(cls))}"
    return _audit_class(path, cls, chosen)


def _origin(cls: Any) -> str:
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', getattr(cls, '__name__', '?'))}"


def _catalogue_entry(path: str, cls: Any) -> str | None:
    """The catalogue entry for a class.

    In this order: same torch class (and its fixed keywords at their
    defaults), same name, same third-party reference implementation
    (``CatalogueEntry.reference``, and its fixed keywords at their defaults).
    """
    defaults = constructor_defaults(cls)

    def same(dotted: str | None, fixed: Mapping[str, Any]) -> bool:
        if not dotted:
            return False
        try:
            obj = resolve_optimizer(dotted)
        except IdentificationError:  # its package is not installed
            return False
        return obj is cls and all(defaults.get(k, object()) == v for k, v in fixed.items())

    for entry in CATALOGUE.values():
        if same(entry.torch_class, entry.torch_fixed):
            return entry.name
    name = getattr(cls, "__name__", "")
    try:
        canonical = resolve_name(name)
    except UnknownNameError:
        canonical = ""
    if canonical and canonical.replace("-", "") == name.lower().replace("_", "").replace("-", ""):
        return canonical
    for entry in CATALOGUE.values():
        if same(entry.reference, entry.reference_fixed):
            return entry.name
    return None


def _audit_class(path: str, cls: Any, settings: AuditSettings) -> ClassAudit:
    began = time.perf_counter()
    origin = _origin(cls)
    probes: dict[str, Any] = {}
    ident: Identification | None = None
    catalogue = comparison = comparison_error = None
    import torch  # noqa: F401  (one_torch_thread acts on an imported torch)

    with one_torch_thread():
        try:
            target = _make_target(cls, None, {}, None, "float64", "auto", settings.time_limit)
        except IdentificationError as exc64:
            try:  # some optimizers only take float32 parameters
                target = _make_target(cls, None, {}, None, "float32", "auto", settings.time_limit)
                target.notes.append(f"probed in float32: the float64 probe failed ({exc64})")
            except IdentificationError:
                target = None
            exc = exc64
        if target is None:
            return ClassAudit(
                path,
                origin,
                "could not probe",
                _reason(exc, settings),
                None,
                None,
                None,
                None,
                (),
                probes,
                time.perf_counter() - began,
            )
        target.name = path
        reason = ""
        failure: IdentificationError | None = None
        try:
            ident = _identify(
                target,
                steps=settings.steps,
                seed=0,
                max_order=6,
                tol=None,
                background=1.0,
                perturbation=1e-4,
                window=settings.window,
                max_background=settings.max_background,
                drift_tol=1e-6,
                small_signal=True,
                dither=1.0,
                dither_records=settings.dither_records,
                dither_steps=settings.dither_steps,
            )
        except IdentificationError as exc:
            reason = _reason(exc, settings)
            failure = exc
        if ident is not None:
            catalogue = _catalogue_entry(path, cls) if ident.layout == "scalar" else None
            if catalogue is not None:
                try:
                    comparison = ident.compare(catalogue, tol=CATALOGUE_TOL)
                except ValueError as exc:
                    comparison_error = str(exc).splitlines()[0]
        from .probes import _matrix_check, _state_trace, _zero_gradient_check

        # The structural probes are short; they get a fresh allowance of their own.
        target.deadline = time.monotonic() + max(5.0, settings.time_limit / 4)
        runs: list[tuple[str, Callable[[], Any]]] = [
            ("state", lambda: _state_trace(target, settings.state_steps)),
            ("zero_gradient", lambda: _zero_gradient_check(target)),
        ]
        if target.layout == "scalar" and (ident is None or ident.matrix is None):
            runs.append(("matrix", lambda: _matrix_check(target)))
        for key, run in runs:
            try:
                probes[key] = run()
            except IdentificationError as exc:
                probes[key] = {"error": str(exc).splitlines()[0]}
        matrix = probes.get("matrix")
        if (
            ident is not None
            and not ident.linear
            and isinstance(matrix, MatrixCheck)
            and matrix.vector_discrepancy > 1e-6
        ):
            # A separate 2-D path: its best linear approximation on a matrix parameter as well.
            from .dither import _probe_bla

            target.deadline = time.monotonic() + max(5.0, settings.time_limit / 4)
            try:
                probes["matrix_bla"] = _probe_bla(
                    target,
                    lr=target.lr * (1e-3 if ident.parameter_dependent else 1.0),
                    dither=1.0,
                    records=settings.dither_records,
                    steps=settings.dither_steps,
                    elements=32,
                    burn_in=None,
                    seed=1000,
                    shape=MATRIX_BLA_SHAPE,
                )
            except IdentificationError as exc:
                probes["matrix_bla"] = {"error": str(exc).splitlines()[0]}
    findings = _findings(path, ident, comparison, catalogue, probes, failure)
    plain = {k: (v.as_dict() if hasattr(v, "as_dict") else v) for k, v in probes.items()}
    if ident is not None and ident.matrix is not None:
        plain["matrix"] = ident.matrix.as_dict()
    if ident is not None and ident.events is not None:
        plain["events"] = ident.events.as_dict()
    verdict, why = ("could not probe", reason) if ident is None else (ident.verdict, ident.verdict_reason())
    return ClassAudit(
        path,
        origin,
        verdict,
        why,
        ident,
        catalogue,
        comparison,
        comparison_error,
        tuple(findings),
        plain,
        time.perf_counter() - began,
    )


def _reason(exc: BaseException, settings: AuditSettings) -> str:
    if isinstance(exc, ProbeTimeout):
        return f"time limit of {settings.time_limit:g} s reached"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ----------------------------------------------------------------------------- findings


def _options(ident: Identification) -> dict[str, Any]:
    merged = dict(ident.defaults)
    merged.update(ident.user_options)
    return merged


def _first_moment_values(options: Mapping[str, Any], verdict: str) -> list[tuple[str, float]]:
    for key in FIRST_MOMENT_KEYWORDS:
        if key == "betas[0]":
            betas = options.get("betas")
            value = betas[0] if isinstance(betas, (tuple, list)) and betas else None
        else:
            value = options.get(key)
        if value is None:
            continue
        if key == "beta" and verdict not in ("linear", "sign-type"):
            return []
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return []
        return [(key, float(value))] if 0.05 <= float(value) <= 0.9999 else []
    return []


def _findings(
    path: str,
    ident: Identification | None,
    comparison: Comparison | None,
    catalogue: str | None,
    probes: Mapping[str, Any],
    failure: IdentificationError | None = None,
) -> list[Finding]:
    found: list[Finding] = []
    if ident is not None:
        found += _identification_findings(path, ident, comparison, catalogue, probes)
    found += _probe_findings(path, probes, zero_hessian=ident is not None and ident.settings.get("mode") == "graph")
    if ident is not None:
        for stage, error in ident.stage_errors.items():
            if isinstance(error, NonFiniteUpdate):
                what = "a constant gradient 1" if stage == "small-signal" else "Gaussian gradients (sigma 1)"
                found.append(
                    Finding(
                        "non-finite update",
                        f"on {what} ({stage} probe) the update at step {error.step} is not finite",
                        f"python -c \"from optfilters.identify import probe; print(probe('{path}', [1.0] * "
                        f'{error.step}))"'
                        if stage == "small-signal"
                        else f"optfilters identify {path}",
                    )
                )
    zero = probes.get("zero_gradient")
    from_rest = zero is not None and hasattr(zero, "finite") and not zero.finite
    if isinstance(failure, NonFiniteUpdate) and failure.gradient != 0.0:
        found.append(
            Finding(
                "non-finite update",
                f"on the probe {failure.probe!r} the update at step {failure.step} (gradient of size "
                f"{failure.gradient:.3g}) is not finite",
                f"optfilters identify {path}",
            )
        )
    if isinstance(failure, NonFiniteUpdate) and failure.gradient == 0.0 and not from_rest:
        plan = _probe_plan(max(failure.step, 48), 0)[0].get(failure.probe)
        found.append(
            Finding(
                "non-finite on zero gradient",
                f"on the probe {failure.probe!r} the update at step {failure.step}, where the gradient is 0, is not "
                "finite",
                _probe_command(path, plan, failure.step),
            )
        )
    return found


def _probe_command(path: str, plan: Any, step: int) -> str:
    """A one-line command that replays a probe up to ``step`` (raising the same error)."""
    if plan is None:
        return f"optfilters identify {path}"
    values = [float(v) for v in np.asarray(plan)[:step]]
    nonzero = [(i, v) for i, v in enumerate(values) if v != 0.0]
    if len(nonzero) <= 3:
        parts = [f"g[{i}] = {v:g}" for i, v in nonzero]
        setup = "; ".join(["g = [0.0] * " + str(step), *parts])
    else:
        return f"optfilters identify {path}"
    return f"python -c \"from optfilters.identify import probe; {setup}; print(probe('{path}', g))\""


def _identification_findings(
    path: str, ident: Identification, comparison: Comparison | None, catalogue: str | None, probes: Mapping[str, Any]
) -> list[Finding]:
    identify_cmd = f"optfilters identify {path}"
    found: list[Finding] = []
    options = _options(ident)

    # Identity by default.
    if ident.is_lti and ident.b is not None and ident.a is not None and not ident.parameter_dependent:
        identity = ident.orders == (0, 0) and abs(float(ident.b[0]) - 1.0) <= 1e-9
        expected = catalogue == "sgd" and comparison is not None and comparison.match
        if identity and not expected:
            neutral = [f"{k}={_fmt(v)}" for k, v in options.items() if _is_filter_keyword(k) and _is_neutral(v)]
            detail = f" (defaults {', '.join(neutral)})" if neutral else ""
            found.append(
                Finding(
                    "identity by default",
                    f"with its defaults the update is the gradient itself: identified filter b = [1], a = [1], "
                    f"linear and time-invariant{detail}",
                    identify_cmd,
                )
            )

    # An unstable identified filter (its updates grow without bound on a bounded gradient).
    if ident.is_lti and ident.b is not None and ident.a is not None and ident.poles is not None:
        lti = ident.to_filter()
        if lti.stability == "unstable":
            largest = max(abs(complex(p)) for p in ident.poles)
            found.append(
                Finding(
                    "unstable",
                    f"the identified filter is unstable: largest pole modulus {largest:.6g} (a = "
                    f"[{', '.join(f'{float(v):.6g}' for v in ident.a)}]); its updates grow without bound on a "
                    "bounded gradient",
                    identify_cmd,
                )
            )

    # First update against the long-run update on a constant gradient.
    part = ident.visible
    first = ident.time_invariance.details.get("step_first_update")
    if (
        not ident.linear
        and not ident.time_invariant
        and not ident.parameter_dependent
        and part is not None
        and isinstance(first, float)
        and part.background == 1.0
        and part.background_update != 0.0
        and part.drift is not None
        and part.drift <= CONVERGED_DRIFT
    ):
        ratio = first / part.background_update
        if first != 0.0 and math.isfinite(ratio) and abs(ratio - 1.0) > 0.1:  # 0: a deliberate delayed start
            found.append(
                Finding(
                    "first update",
                    f"a constant gradient 1 gives a first update of {first:.4g} per unit lr but "
                    f"{part.background_update:.4g} after {part.background_steps} steps ({ratio:.3g}x; the small-signal "
                    f"response changed by {part.drift:.2g} when the background doubled); bias correction exists to "
                    "make them equal (hypothesis: a correction that does not match the filter, e.g. applied twice or "
                    "for another pole, or a built-in warm-up)",
                    identify_cmd,
                )
            )

    # Poles against first-moment hyperparameters.
    roots = _identified_roots(ident)
    if roots is not None:
        poles, zeros, perr, zerr, source = roots
        for key, value in _first_moment_values(options, ident.verdict):
            floor = 0.05 * (1.0 - value) + 2e-3
            tol_p = [max(4.0 * e, floor) if math.isfinite(e) else floor for e in perr]
            tol_z = [max(4.0 * e, floor) if math.isfinite(e) else floor for e in zerr]
            near = any(abs(p - value) <= t for p, t in zip(poles, tol_p, strict=True)) or any(
                abs(z - value) <= t for z, t in zip(zeros, tol_z, strict=True)
            )
            if near or _near_in_matrix_bla(probes, value, floor):
                continue
            complement = [p for p, t in zip(poles, tol_p, strict=True) if abs(p - (1.0 - value)) <= t]
            hint = (
                f"; a pole at {complement[0].real:.4g} = 1 - {key} (hypothesis: an EMA written with the complement "
                "weight)"
                if complement
                else ""
            )
            shown_p = [p for p in poles if abs(p) > 1e-9]
            shown_z = [z for z in zeros if abs(z) > 1e-9]
            nearest = min((abs(r - value) for r in [*shown_p, *shown_z]), default=None)
            how_far = (
                f"; the nearest is {nearest:.3g} away, the tolerance {max(floor, *tol_p, *tol_z):.3g}"
                if nearest is not None
                else ""
            )
            found.append(
                Finding(
                    "pole mismatch",
                    f"no pole or zero at {key} = {value:g}: the {source} has poles {_fmt_roots(shown_p)} and zeros "
                    f"{_fmt_roots(shown_z)} (leaving out roots at 0){how_far}{hint}",
                    identify_cmd,
                )
            )

    # Catalogue mismatch.
    if comparison is not None and not comparison.match:
        differing = [d for d in comparison.differences if "differ" in d or "NOT" in d]
        unmapped = [d for d in comparison.differences if d.startswith("not mapped")]
        found.append(
            Finding(
                "catalogue mismatch",
                f"differs from catalogue {catalogue!r} at the mapped settings: " + "; ".join(differing[:4] + unmapped),
                f"{identify_cmd} --compare {catalogue}",
            )
        )

    return found


def _near_in_matrix_bla(probes: Mapping[str, Any], value: float, floor: float) -> bool:
    """A pole or zero at ``value`` in the best linear approximation on a matrix parameter (a separate 2-D path)."""
    bla = probes.get("matrix_bla")
    if bla is None or not hasattr(bla, "filter") or bla.filter is None:
        return False
    roots = [*zip(bla.poles, bla.pole_errors, strict=True), *zip(bla.zeros, bla.zero_errors, strict=True)]
    return any(abs(r - value) <= max(4.0 * e if math.isfinite(e) else 0.0, floor) for r, e in roots)


def _probe_findings(path: str, probes: Mapping[str, Any], zero_hessian: bool = False) -> list[Finding]:
    found: list[Finding] = []
    # Frozen state (a state that stays 0 under a probe whose Hessian is 0 is the probe's doing, not a finding).
    state = probes.get("state")
    if state is not None and hasattr(state, "frozen_buffers"):
        for key in state.frozen_buffers:
            if zero_hessian and state.values.get(key, 1.0) == 0.0:
                continue
            found.append(
                Finding(
                    "frozen state",
                    f"state {key!r} (one value per parameter element) never changed over {state.steps} steps of "
                    f"Gaussian gradients (largest magnitude {state.values.get(key, 0.0):.6g})",
                    f'python -c "from optfilters.probes import state_trace; '
                    f"print(state_trace('{path}').frozen_buffers)\"",
                )
            )

    # Non-finite on a zero gradient.
    zero = probes.get("zero_gradient")
    if zero is not None and hasattr(zero, "finite") and not zero.finite:
        what = (
            f"step() raised: {zero.error}"
            if zero.error
            else f"the parameter is not finite after step {zero.first_non_finite}"
        )
        found.append(
            Finding(
                "non-finite on zero gradient",
                f"a zero gradient from rest: {what}",
                f'python -c "from optfilters.probes import zero_gradient_check; '
                f"print(zero_gradient_check('{path}'))\"",
            )
        )
    return found


_FILTER_WORDS = ("momentum", "beta", "nu", "dampening", "alpha", "rho", "decay")


def _is_filter_keyword(key: str) -> bool:
    return any(w in key.lower() for w in _FILTER_WORDS)


def _is_neutral(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return float(value) in (0.0, 1.0)
    if isinstance(value, (tuple, list)):
        return bool(value) and all(_is_neutral(v) for v in value)
    return False


def _identified_roots(
    ident: Identification,
) -> tuple[np.ndarray, np.ndarray, list[float], list[float], str] | None:
    """Poles and zeros (and standard errors) of the LTI filter, else of a consistent dither BLA."""
    if ident.is_lti:
        f = ident.to_filter()
        return f.poles, f.zeros, [0.0] * f.poles.size, [0.0] * f.zeros.size, "identified filter"
    bla = ident.bla
    if bla is not None and bla.filter is not None and bla.consistent:
        return (
            bla.poles,
            bla.zeros,
            bla.pole_errors.tolist(),
            bla.zero_errors.tolist(),
            "best linear approximation under the dither",
        )
    return None
