"""Reproduced lectures and papers: one module per source, each regenerating its figures.

Every module defines ``TITLE`` (one line) and
``reproduce(out_dir, quick=False) -> dict`` which writes its figures and a
``captions.md`` (what each figure shows and which numbers it checks) into
``out_dir`` and returns the key numbers it checked.  ``quick`` is a reduced
size for CI.  Modules use only optfilters' public API.

What every source shares, defined here:

* :class:`Check`: one checked number (name, value, reference, error,
  tolerance, passed).  A source puts its checks in ``numbers["checks"]``;
  ``optfilters figures`` prints their summary and fails (exit code 1, the
  check named) when one fails.
* :func:`progress`: a progress report around a long run (a bar on stderr
  under ``optfilters figures`` and ``python -m optfilters.papers.<source>``,
  silent otherwise).
* :func:`deterministic`: the run conditions of every source (one thread,
  seeded generators, deterministic torch algorithms), applied by
  :func:`reproduce`.
* :func:`save_figure`: a figure written in the library's style with
  byte-stable metadata, then closed.
* :func:`write_outputs` (``captions.md`` and ``numbers.json``, rounded so that
  the committed files do not change from run to run) and :func:`command_line`
  (``[OUT_DIR] [--quick]``, ``--help``, one-line errors for anything else).
* The reproducibility policy: a regenerated output that agrees with the file
  already there within its stated tolerance (:data:`EXACT_RTOL`,
  :data:`CHECK_ERROR_FRACTION`, :data:`MACHINE_RTOL`, a source's solver
  tolerance, :data:`FIGURE_RMS`, :data:`MACHINE_FIGURE_RMS`) leaves that file
  byte for byte; :func:`recording_kept` counts the files so kept.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import random
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optfilters.validation import atomic_write_text

__all__ = [
    "CHECK_ERROR_FRACTION",
    "DIGITS",
    "EXACT_RTOL",
    "FIGURE_RMS",
    "MACHINE_FIGURE_RMS",
    "MACHINE_RTOL",
    "ROUNDING_LEVEL",
    "SOURCES",
    "Check",
    "caption_number",
    "check_table",
    "checks_of",
    "checks_section",
    "command_line",
    "deterministic",
    "finish",
    "plain_numbers",
    "progress",
    "recording_kept",
    "reporting",
    "reproduce",
    "rounded",
    "run_source",
    "save_figure",
    "source_module",
    "stderr_bars",
    "summary_lines",
    "write_outputs",
]

#: Source name -> module (inside this package); the figures go to ``figures/<source>/``.
SOURCES: dict[str, str] = {
    "ee541_unit7b": "ee541_unit7b",
    "copernicus_l5": "copernicus_l5",
    "goh_momentum": "goh_momentum",
    "edge_of_stability": "edge_of_stability",
    "noisy_quadratic": "noisy_quadratic",
    "batch_size": "batch_size",
    "sign_stages": "sign_stages",
    "large_signal": "large_signal",
    "iqc_worst_case": "iqc_worst_case",
    "optimizer_atlas": "optimizer_atlas",
}

#: Significant digits of the floats in the committed ``numbers.json`` files.
DIGITS = 10

#: Reproducibility tolerance of an exact analysis number (relative): a regenerated ``numbers.json`` entry within it
#: of the committed one leaves the committed file as it is (another CPU's or BLAS's rounding reaches ~1e-13).
EXACT_RTOL = 1e-9

#: A check's ``error`` (a discrepancy at the level of rounding, whose own digits are noise) agrees within this
#: fraction of the check's tolerance.
CHECK_ERROR_FRACTION = 1e-3

#: Two numbers both below this magnitude agree (in ``numbers.json`` and ``captions.md``): discrepancies, residuals
#: and fitted errors at the level of rounding (1e-16 on one machine, 3e-16 or 0 on another; a transient left of
#: 1.0390e-12 against 1.0392e-12).
ROUNDING_LEVEL = 1e-10

#: Reproducibility tolerance (relative, of the larger value) of the ``machine_dependent`` entries (a real network's
#: training): covers the measured spread of the edge-of-stability run over three machines' kernels (the committing
#: machine, this one, this one with ATEN_CPU_CAPABILITY=default): 0.37, Nesterov's final loss 0.0017 against
#: 0.0027 (a snapshot inside a loss spike); the late-phase sharpness moves by 1.5%.
MACHINE_RTOL = 0.5

#: Largest RMS difference (0-255 grey levels, :func:`matplotlib.testing.compare.compare_images`) at which a
#: regenerated analysis figure keeps the committed PNG: a few hundred antialiased pixels.
FIGURE_RMS = 1.0

#: The same for the figures of machine- or solver-dependent numbers (:func:`save_figure` with
#: ``machine_dependent=True``): a real network's training, whose loss spikes near the edge of stability fall at
#: other steps on another machine (RMS 24 measured), and the IQC certified tuning's trajectory (8 measured).
MACHINE_FIGURE_RMS = 30.0


# ----------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Check:
    """One checked number of a figure source: a value against a reference (or a range), and the verdict.

    Build checks with :meth:`close` (a value against a closed form or an
    independent computation, relative or absolute error), :meth:`within` (a
    value inside a range) or :meth:`holds` (a yes/no fact).

    Attributes
    ----------
    name : str
        What is checked, unique within its source (``"momentum mu=0.9: DC gain"``).
    value : float, bool or None
        The number the source produced (read off a figure, measured from a run).
    reference : float, str or None
        What it should be: the closed form, or the allowed range as text.
    error : float or None
        The discrepancy: relative or absolute difference (:meth:`close`), the
        distance outside the range (:meth:`within`, 0 inside).
    tolerance : float or None
        The largest error that passes.
    passed : bool
        The verdict.
    low, high : float or None
        The allowed range of a :meth:`within` check.

    Examples
    --------
    >>> from optfilters.papers import Check
    >>> c = Check.close("DC gain", 10.000000001, 10.0, tolerance=1e-9)
    >>> c.passed, f"{c.error:.1e}"
    (True, '1.0e-10')
    >>> Check.within("ratio", 1.3, 0.85, 1.25).passed
    False
    >>> Check.holds("period-2 orbit is stable", True).as_dict()["passed"]
    True
    """

    name: str
    value: Any
    reference: Any = None
    error: float | None = None
    tolerance: float | None = None
    passed: bool = True
    low: float | None = None
    high: float | None = None

    @classmethod
    def close(cls, name: str, value: float, reference: float, tolerance: float, *, relative: bool = True) -> Check:
        """``value`` equals ``reference`` within ``tolerance`` (relative to ``|reference|`` unless ``relative=False``).

        A relative check against a zero reference falls back to the absolute difference.
        A non-finite value fails.
        """
        v, r = float(value), float(reference)
        difference = abs(v - r)
        error = difference / abs(r) if relative and r != 0.0 else difference
        passed = math.isfinite(v) and math.isfinite(error) and error <= tolerance
        return cls(name, v, r, error if math.isfinite(error) else None, float(tolerance), bool(passed))

    @classmethod
    def within(cls, name: str, value: float | None, low: float | None = None, high: float | None = None) -> Check:
        """``low <= value <= high`` (either bound may be None).

        With only ``high`` (an error bound) the error is ``value`` and the
        tolerance ``high``; with a lower bound the error is the distance outside
        the range (0 inside) and the range is kept in ``low`` and ``high``.
        """
        reference = _range_text(low, high)
        if value is None or not math.isfinite(float(value)):
            return cls(name, None, reference, None, high if low is None else 0.0, False, low, high)
        v = float(value)
        if low is None and high is not None:
            return cls(name, v, reference, v, float(high), v <= high, None, float(high))
        below = 0.0 if low is None else max(low - v, 0.0)
        above = 0.0 if high is None else max(v - high, 0.0)
        error = max(below, above)
        return cls(name, v, reference, error, 0.0, error == 0.0, low, high)

    @classmethod
    def holds(cls, name: str, condition: bool, value: Any = None) -> Check:
        """A fact that is true or false (``value`` optionally records what was observed)."""
        passed = bool(condition)
        return cls(name, passed if value is None else value, True, 0.0 if passed else 1.0, 0.0, passed)

    @property
    def margin(self) -> float:
        """``error / tolerance`` (how much of the tolerance is used; inf for a failed zero-tolerance check)."""
        if self.error is None:
            return math.inf
        if not self.passed:
            return math.inf if not self.tolerance else self.error / self.tolerance
        if self.low is not None and self.high is not None and self.high > self.low and isinstance(self.value, float):
            middle, half = 0.5 * (self.low + self.high), 0.5 * (self.high - self.low)
            return abs(self.value - middle) / half  # 1 at either end of the range
        if not self.tolerance:
            return 0.0
        return self.error / self.tolerance

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``numbers.json``."""
        return {
            "name": self.name,
            "value": self.value,
            "reference": self.reference,
            "error": self.error,
            "tolerance": self.tolerance,
            "passed": self.passed,
            "low": self.low,
            "high": self.high,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Check:
        """The inverse of :meth:`as_dict`.

        Examples
        --------
        >>> from optfilters.papers import Check
        >>> c = Check.close("x", 1.0, 1.0, 1e-9)
        >>> Check.from_dict(c.as_dict()) == c
        True
        """
        return cls(
            str(data["name"]),
            data.get("value"),
            data.get("reference"),
            data.get("error"),
            data.get("tolerance"),
            bool(data.get("passed", False)),
            data.get("low"),
            data.get("high"),
        )


def _range_text(low: float | None, high: float | None) -> str:
    if low is None and high is None:
        return "any"
    if low is None:
        return f"<= {high:g}"
    if high is None:
        return f">= {low:g}"
    return f"[{low:g}, {high:g}]"


def checks_of(numbers: Mapping[str, Any]) -> list[Check]:
    """The :class:`Check` records of a source's numbers (``numbers["checks"]``: checks or their dicts).

    Raises
    ------
    ValueError
        If two checks share a name.

    Examples
    --------
    >>> from optfilters.papers import Check, checks_of
    >>> [c.name for c in checks_of({"checks": [Check.holds("a", True), {"name": "b", "passed": False}]})]
    ['a', 'b']
    """
    raw = numbers.get("checks", [])
    items = raw if isinstance(raw, list) else []
    out = [Check.from_dict(c.as_dict() if hasattr(c, "as_dict") else c) for c in items]
    seen: set[str] = set()
    for c in out:
        if c.name in seen:
            raise ValueError(f"two checks are named {c.name!r}")
        seen.add(c.name)
    return out


def caption_number(value: Any, digits: int = 4, *, yes_no: bool = True, infinite: str | None = "n/a") -> str:
    """A number as the captions write it: ``digits`` significant digits, ``n/a`` for a missing value.

    Parameters
    ----------
    value : float, int, bool, str or None
        The value; anything but a float or a bool is written with ``str``.
    digits : int
        Significant digits of a float.
    yes_no : bool
        Write a bool as ``yes``/``no`` (else ``True``/``False``).
    infinite : str or None
        What a positive infinity is written as (``nan`` and ``-inf`` are then
        ``n/a``); None writes non-finite floats as Python formats them.

    Returns
    -------
    str

    Examples
    --------
    >>> from optfilters.papers import caption_number
    >>> caption_number(0.123456), caption_number(None), caption_number(True)
    ('0.1235', 'n/a', 'yes')
    >>> caption_number(float("inf"), infinite="inf"), caption_number(float("nan"), infinite="inf")
    ('inf', 'n/a')
    """
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return ("yes" if value else "no") if yes_no else str(value)
    if isinstance(value, float):
        if infinite is not None and not math.isfinite(value):
            return infinite if value > 0 else "n/a"
        return f"{value:.{digits}g}"
    return str(value)


def checks_section(checks: Sequence[Check], description: str) -> list[str]:
    """The ``## Checks`` section of a source's ``captions.md``: heading with the verdict, description, table.

    Parameters
    ----------
    checks : sequence of Check
        The source's checks.
    description : str
        One paragraph saying what is checked against what.

    Returns
    -------
    list of str
        Lines, starting with a blank one and ending with one.

    Examples
    --------
    >>> from optfilters.papers import Check, checks_section
    >>> checks_section([Check.close("DC gain", 10.0, 10.0, 1e-9)], "The gain.")[:4]
    ['', '## Checks (1, all passed)', '', 'The gain.']
    """
    failed = sum(not c.passed for c in checks)
    return [
        "",
        f"## Checks ({len(checks)}, {'all passed' if not failed else f'{failed} FAILED'})",
        "",
        description,
        "",
        *check_table(checks),
        "",
    ]


def check_table(checks: Iterable[Check], digits: int = 4) -> list[str]:
    """A Markdown table of checks for a source's ``captions.md``: name, value, reference or range, error, verdict.

    Numbers are written with ``digits`` significant digits.

    Examples
    --------
    >>> from optfilters.papers import Check, check_table
    >>> checks = [Check.close("DC gain", 10.0, 10.0, 1e-9), Check.within("ratio", 1.1, 1.0, 1.2)]
    >>> for line in check_table(checks):
    ...     print(line)
    | check | value | reference | error (tolerance) | passed |
    |---|---|---|---|---|
    | DC gain | 10 | 10 | 0 (1e-09) | yes |
    | ratio | 1.1 | [1, 1.2] | 0 | yes |
    """

    def text(value: Any) -> str:
        return caption_number(value, digits, infinite=None)

    lines = ["| check | value | reference | error (tolerance) | passed |", "|---|---|---|---|---|"]
    for c in checks:
        if c.reference is True and c.tolerance == 0.0:
            reference, error = "holds", ""
        elif c.low is not None:
            reference, error = str(c.reference), text(c.error)
        else:
            reference, error = text(c.reference), f"{text(c.error)} ({text(c.tolerance)})"
        lines.append(f"| {c.name} | {text(c.value)} | {reference} | {error} | {text(c.passed)} |")
    return lines


# ----------------------------------------------------------------------------- progress

#: Makes a progress reporter: ``factory(label, total)`` -> context manager yielding ``advance(n)``.
_REPORTER: list[Callable[[str, int], contextlib.AbstractContextManager[Callable[[int], None]]]] = []


@contextlib.contextmanager
def progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """Report the progress of one run: ``with progress("adam lr=0.03", steps) as advance: ... advance(1)``.

    Silent unless a reporter is installed with :func:`reporting` (``optfilters
    figures`` installs a progress bar on stderr).

    Examples
    --------
    >>> from optfilters.papers import progress
    >>> with progress("run", 3) as advance:
    ...     for _ in range(3):
    ...         advance(1)
    """
    if not _REPORTER or total <= 0:
        yield lambda n=1: None
        return
    with _REPORTER[-1](label, int(total)) as advance:
        yield advance


@contextlib.contextmanager
def reporting(
    factory: Callable[[str, int], contextlib.AbstractContextManager[Callable[[int], None]]],
) -> Iterator[None]:
    """Install ``factory(label, total)`` as the progress reporter of :func:`progress` inside the block.

    Examples
    --------
    >>> import contextlib
    >>> from optfilters.papers import progress, reporting
    >>> seen = []
    >>> @contextlib.contextmanager
    ... def record(label, total):
    ...     yield lambda n=1: seen.append((label, n))
    >>> with reporting(record), progress("run", 2) as advance:
    ...     advance(2)
    >>> seen
    [('run', 2)]
    """
    _REPORTER.append(factory)
    try:
        yield
    finally:
        _REPORTER.pop()


@contextlib.contextmanager
def stderr_bars() -> Iterator[None]:
    """A click progress bar on stderr for every :func:`progress` inside the block."""
    import click

    @contextlib.contextmanager
    def bar(label: str, total: int) -> Iterator[Callable[[int], None]]:
        with click.progressbar(length=total, label=f"  {label}", file=sys.stderr, show_pos=True) as b:
            yield lambda n=1: b.update(n)

    with reporting(bar):
        yield


# ----------------------------------------------------------------------------- determinism


@contextlib.contextmanager
def deterministic(seed: int = 0) -> Iterator[None]:
    """Run conditions of every source: one thread, seeded generators, torch's deterministic algorithms.

    Inside the block: torch (when installed) runs on one intra-op thread with
    ``torch.use_deterministic_algorithms(True)`` and ``torch.manual_seed(seed)``;
    BLAS pools have one thread; Python's and numpy's global generators are
    seeded.  Everything is restored afterwards.  Sources seed their own
    generators explicitly as well: this block is the safety net.

    Examples
    --------
    >>> import random
    >>> from optfilters.papers import deterministic
    >>> with deterministic(3):
    ...     a = random.random()
    >>> with deterministic(3):
    ...     b = random.random()
    >>> a == b
    True
    """
    import numpy as np

    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            pass
        else:
            stack.enter_context(threadpool_limits(1))
        python_state = random.getstate()
        numpy_state = np.random.get_state()  # noqa: NPY002 - the legacy global generator is what gets seeded
        random.seed(seed)
        np.random.seed(seed)  # noqa: NPY002
        stack.callback(random.setstate, python_state)
        stack.callback(np.random.set_state, numpy_state)
        try:
            import torch
        except ImportError:  # pragma: no cover - torch is a dependency
            torch = None
        if torch is not None:
            threads = torch.get_num_threads()
            was_deterministic = torch.are_deterministic_algorithms_enabled()
            rng = torch.random.get_rng_state()
            torch.set_num_threads(1)
            torch.use_deterministic_algorithms(True)
            torch.manual_seed(seed)
            stack.callback(torch.random.set_rng_state, rng)
            stack.callback(torch.use_deterministic_algorithms, was_deterministic)
            stack.callback(torch.set_num_threads, threads)
        yield


# ----------------------------------------------------------------------------- outputs


def rounded(value: float, digits: int) -> float:
    """``value`` rounded to ``digits`` significant digits (non-finite values unchanged).

    Examples
    --------
    >>> rounded(0.99812, 2), rounded(1.0412, 2), rounded(-123456.0, 3)
    (1.0, 1.0, -123000.0)
    """
    if not math.isfinite(value) or value == 0.0:
        return value
    return float(f"{value:.{digits}g}")


def plain_numbers(value: Any, digits: int | None = None) -> Any:
    """``value`` made JSON-safe: keys as strings, tuples as lists, numpy scalars as numbers, inf/NaN as None.

    Objects with ``as_dict()`` (a :class:`Check`) become their dicts; with
    ``digits``, floats are rounded to that many significant digits.

    Examples
    --------
    >>> import numpy as np
    >>> plain_numbers({1: (np.float64(0.5), float("inf")), "ok": np.bool_(True)})
    {'1': [0.5, None], 'ok': True}
    >>> plain_numbers([1 / 3], digits=4)
    [0.3333]
    """
    if isinstance(value, dict):
        return {str(k): plain_numbers(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_numbers(v, digits) for v in value]
    if hasattr(value, "as_dict") and callable(value.as_dict):
        return plain_numbers(value.as_dict(), digits)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return plain_numbers(value.item(), digits)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return value if digits is None else rounded(value, digits)
    return value


def save_figure(figure: Any, path: Path, dpi: float, *, machine_dependent: bool = False) -> str:
    """Save a source's ``figure`` to ``path`` and close it; return the file's name (for ``numbers["files"]``).

    Saved by :meth:`optfilters.plot.PlotResult.savefig`: the library's style,
    and no metadata that changes from run to run.  The figure is drawn to a
    temporary file first and compared with the PNG already at ``path`` by
    :func:`matplotlib.testing.compare.compare_images`: within
    :data:`FIGURE_RMS` (:data:`MACHINE_FIGURE_RMS` for a ``machine_dependent``
    figure) the committed file stays byte for byte (and is counted by
    :func:`recording_kept` when the bytes differ); beyond it, or when the
    committed file is absent, unreadable or of another size, it is replaced.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        The figure drawn (closed here, also when saving fails).
    path : Path
        Target file; its suffix selects the format.
    dpi : float
        Resolution in dots per inch.
    machine_dependent : bool
        The figure shows numbers that legitimately differ between machines
        (a real network's training, a tuning found through an SDP solver):
        compared at :data:`MACHINE_FIGURE_RMS`.

    Returns
    -------
    str
        ``path.name``.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     save_figure(fig, Path(folder) / "line.png", dpi=50), plt.fignum_exists(fig.number)
    ('line.png', False)
    """
    import matplotlib.pyplot as plt

    from optfilters import plot

    path = Path(path)
    with tempfile.TemporaryDirectory() as folder:
        fresh = Path(folder) / path.name
        try:
            plot.PlotResult(figure, tuple(figure.axes)).savefig(fresh, dpi=dpi)
        finally:
            plt.close(figure)
        tolerance = MACHINE_FIGURE_RMS if machine_dependent else FIGURE_RMS
        if _same_bytes(path, fresh):
            return path.name
        if _images_agree(path, fresh, tolerance):
            _record_kept(path)
            return path.name
        shutil.copyfile(fresh, path)
    return path.name


def _same_bytes(committed: Path, fresh: Path) -> bool:
    try:
        return committed.read_bytes() == fresh.read_bytes()
    except OSError:
        return False


def _images_agree(committed: Path, fresh: Path, rms: float) -> bool:
    """True when the PNG ``fresh`` is within ``rms`` of ``committed`` (a failure writes a diff image next to ``fresh``).

    Only PNGs are compared (another format, an absent, corrupt or differently
    sized committed file: False).
    """
    if committed.suffix.lower() != ".png" or not committed.is_file():
        return False
    from matplotlib.testing.compare import compare_images
    from matplotlib.testing.exceptions import ImageComparisonFailure

    try:
        return compare_images(str(committed), str(fresh), tol=rms, in_decorator=False) is None
    except (OSError, ValueError, ImageComparisonFailure):
        return False


#: The files kept as within tolerance, one list per :func:`recording_kept` block.
_KEPT: list[list[str]] = []


def _record_kept(path: Path) -> None:
    if _KEPT:
        _KEPT[-1].append(Path(path).name)


@contextlib.contextmanager
def recording_kept() -> Iterator[list[str]]:
    """Collect the names of the outputs kept as within tolerance inside the block.

    A regenerated output that differs from the file already there, but within
    the reproducibility tolerance (see :func:`write_outputs` and
    :func:`save_figure`), leaves that file unchanged; its name is appended to
    the yielded list.  Identical outputs are not counted.

    Examples
    --------
    >>> from optfilters.papers import recording_kept
    >>> with recording_kept() as kept:
    ...     pass
    >>> kept
    []
    """
    kept: list[str] = []
    _KEPT.append(kept)
    try:
        yield kept
    finally:
        _KEPT.remove(kept)


def write_outputs(
    out_dir: str | Path,
    numbers: dict[str, Any],
    captions: str,
    machine_dependent: Iterable[str] = (),
    solver_tolerance: Mapping[str, float] | None = None,
) -> None:
    """Write a source's ``captions.md`` and its ``numbers.json`` (JSON-safe, sorted, rounded) into ``out_dir``.

    Floats are written with :data:`DIGITS` significant digits; the entries of
    ``numbers`` named in ``machine_dependent`` (numbers that legitimately
    differ between machines, such as a real network's training) with 2.  The
    captions must be written at the same precision.  Nothing that measures
    time belongs in either file.

    A file already in ``out_dir`` is kept byte for byte when the new one
    agrees with it within the numbers' reproducibility tolerance:

    * ``numbers.json``: the same entries, booleans (every check's verdict)
      and missing values, strings the same apart from the numbers they quote
      (compared as in ``captions.md``), and every (unrounded) number within
      :data:`EXACT_RTOL` (relative) of the committed one, or both below
      :data:`ROUNDING_LEVEL` in magnitude; a check's ``error`` (and an error
      bound's value) also within :data:`CHECK_ERROR_FRACTION` of the check's
      tolerance; the ``machine_dependent`` entries within
      :data:`MACHINE_RTOL` (relative); the entries named in
      ``solver_tolerance`` within the given absolute tolerance; in both, a
      check's error within the check's own tolerance.
    * ``captions.md``: kept only with ``numbers.json``, when the text is the
      same apart from the numbers it quotes, each within one unit of its last
      written digit, plus the source's looser tolerance when it has one
      (:data:`MACHINE_RTOL` relative, the largest solver tolerance), or both
      below :data:`ROUNDING_LEVEL` in magnitude.

    Otherwise (beyond tolerance, absent or unreadable) the file is written.
    Kept files that differ are counted by :func:`recording_kept`.

    Parameters
    ----------
    out_dir : str or Path
        The source's folder.
    numbers : dict
        The source's numbers (floats, ints, bools, strings, None, checks and
        containers of them).
    captions : str
        The Markdown captions.
    machine_dependent : iterable of str
        Top-level entries of ``numbers`` that differ between machines.
    solver_tolerance : mapping of str to float, optional
        Top-level entries of ``numbers`` computed to a solver's tolerance,
        with that tolerance (absolute).

    Examples
    --------
    >>> import tempfile, json
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     write_outputs(folder, {"rate": float("nan"), "ratio": 0.9981}, "# title", machine_dependent=["ratio"])
    ...     json.loads((Path(folder) / "numbers.json").read_text())
    {'rate': None, 'ratio': 1.0}
    """
    out = Path(out_dir)
    coarse = set(machine_dependent)
    absolute = dict(solver_tolerance or {})
    exact = {k: plain_numbers(v) for k, v in numbers.items()}
    data = {k: _coarse(plain_numbers(v, 2)) if k in coarse else plain_numbers(v, DIGITS) for k, v in exact.items()}
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    numbers_path, captions_path = out / "numbers.json", out / "captions.md"
    committed = _read_text(numbers_path)
    if committed == text:
        kept = True
    else:  # the unrounded numbers against the committed ones: a digit flipped by rounding is no change
        kept = committed is not None and _json_agrees(committed, exact, coarse, absolute)
        if kept:
            _record_kept(numbers_path)
        else:
            atomic_write_text(numbers_path, text)
    old_captions = _read_text(captions_path)
    if old_captions == captions:
        return
    loose = (MACHINE_RTOL if coarse else 0.0, max(absolute.values(), default=0.0))
    if kept and old_captions is not None and _captions_agree(old_captions, captions, *loose):
        _record_kept(captions_path)
        return
    atomic_write_text(captions_path, captions)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _json_agrees(committed: str, data: Mapping[str, Any], coarse: set[str], absolute: Mapping[str, float]) -> bool:
    """True when the committed ``numbers.json`` text agrees with ``data`` entry by entry (see :func:`write_outputs`)."""
    try:
        old = json.loads(committed)
    except ValueError:
        return False
    if not isinstance(old, dict) or set(old) != set(data):
        return False
    for key, value in data.items():
        if key in coarse:
            rule: tuple[float, float] = (MACHINE_RTOL, 0.0)
        elif key in absolute:
            rule = (EXACT_RTOL, float(absolute[key]))
        else:
            rule = (EXACT_RTOL, 0.0)
        if not _agrees(old[key], value, rule):
            return False
    return True


def _agrees(old: Any, new: Any, rule: tuple[float, float]) -> bool:
    """``old`` and ``new`` agree under ``rule = (relative, absolute)`` tolerance, recursively."""
    if isinstance(new, dict):
        if not isinstance(old, dict) or set(old) != set(new):
            return False
        check_tolerance = new.get("tolerance") if {"name", "error", "passed"} <= set(new) else None
        # a check's error, and the value of an error bound (Check.within with only ``high``: value = error)
        errors = {"error", "value"} if new.get("low") is None and new.get("high") is not None else {"error"}
        for key, value in new.items():
            if key in errors and isinstance(check_tolerance, (int, float)) and check_tolerance > 0:
                # machine- or solver-dependent entries: the check's own tolerance; exact ones: a fraction of it
                fraction = CHECK_ERROR_FRACTION if rule == (EXACT_RTOL, 0.0) else 1.0
                slack = (rule[0], max(rule[1], fraction * float(check_tolerance)))
                if not _agrees(old[key], value, slack):
                    return False
            elif not _agrees(old[key], value, rule):
                return False
        return True
    if isinstance(new, list):
        if not isinstance(old, list) or len(old) != len(new):
            return False
        return all(_agrees(a, b, rule) for a, b in zip(old, new, strict=True))
    if isinstance(new, str) and isinstance(old, str):  # a text quoting numbers ("<= 0.854275"): as the captions
        return old == new or _captions_agree(old, new, *rule)
    if isinstance(new, bool) or isinstance(old, bool) or new is None or old is None or isinstance(new, str):
        return type(old) is type(new) and old == new
    if not isinstance(new, (int, float)) or not isinstance(old, (int, float)):
        return False
    if isinstance(new, int) and isinstance(old, int) and rule == (EXACT_RTOL, 0.0):
        return old == new
    return _close(float(old), float(new), *rule)


def _close(a: float, b: float, relative: float, absolute: float) -> bool:
    return abs(a - b) <= max(relative * max(abs(a), abs(b)), absolute) or max(abs(a), abs(b)) <= ROUNDING_LEVEL


#: A number as the captions quote it: sign, digits, optional decimals and exponent.
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _captions_agree(old: str, new: str, relative: float, absolute: float) -> bool:
    """The same text apart from the numbers, each pair within one unit of its last digit plus the given tolerance.

    Examples
    --------
    >>> _captions_agree("rate 0.6667 (kappa 25)", "rate 0.6668 (kappa 25)", 0.0, 0.0)
    True
    >>> _captions_agree("rate 0.6667 (kappa 25)", "rate 0.6669 (kappa 25)", 0.0, 0.0)
    False
    >>> _captions_agree("rate 0.6667", "rates 0.6667", 0.0, 0.0)
    False
    """
    if _NUMBER.split(old) != _NUMBER.split(new):
        return False
    for a, b in zip(_NUMBER.findall(old), _NUMBER.findall(new), strict=True):
        if a == b:
            continue
        x, y = float(a), float(b)
        if max(abs(x), abs(y)) <= ROUNDING_LEVEL:
            continue
        unit = max(_last_digit_unit(a), _last_digit_unit(b))
        if not abs(x - y) <= unit * (1.0 + 1e-6) + max(relative * max(abs(x), abs(y)), absolute):
            return False
    return True


def _last_digit_unit(number: str) -> float:
    """The value of one unit in the last written digit of ``number`` (``"0.0123"`` -> 1e-4, ``"1.5e-16"`` -> 1e-17)."""
    mantissa, _, exponent = number.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def _coarse(value: Any) -> Any:
    """Integers of plain data rounded to two significant digits too (a step count read off a training run)."""
    if isinstance(value, dict):
        return {k: _coarse(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_coarse(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return int(rounded(float(value), 2))
    return value


# ----------------------------------------------------------------------------- command line


class _OneLineParser(argparse.ArgumentParser):
    """argparse with usage errors on one line (``error: ...``, exit code 2)."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def command_line(source: str, argv: Sequence[str] | None = None) -> tuple[str, bool]:
    """A source module's command line ``[OUT_DIR] [--quick]``: the output folder and the quick flag.

    ``--help`` prints the usage and exits; an unknown option or a second
    folder is a one-line error with exit code 2, and so is an OUT_DIR given
    with a missing parent folder or an empty name (a given OUT_DIR is created
    like ``mkdir``, not ``mkdir -p``, as ``optfilters figures --out``; the
    default ``figures/<source>`` is created with its parent).

    Examples
    --------
    >>> command_line("goh_momentum", ["--quick"])
    ('figures/goh_momentum', True)
    >>> command_line("goh_momentum", ["out"])
    ('out', False)
    """
    try:
        title = getattr(source_module(source), "TITLE", source)
    except ValueError:
        title = source
    parser = _OneLineParser(
        prog=f"python -m {__name__}.{source}",
        description=f"{title}. Regenerates the figures, captions.md and numbers.json of this source "
        "(the same as 'optfilters figures " + source + "'); exit code 1 when a check fails.",
    )
    parser.add_argument(
        "out_dir",
        nargs="?",
        default=f"figures/{source}",
        metavar="OUT_DIR",
        help="output folder (default: %(default)s)",
    )
    parser.add_argument("--quick", action="store_true", help="reduced sizes (seconds), as CI runs it")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    out_dir = str(args.out_dir)
    if out_dir != parser.get_default("out_dir"):  # a folder given: created like mkdir, not mkdir -p
        if not out_dir.strip():
            parser.error(f"OUT_DIR: an empty name is not a path, got {out_dir!r}")
        parent = Path(out_dir).parent
        if not parent.is_dir():
            why = "is not a folder" if parent.exists() else "does not exist"
            parser.error(
                f"OUT_DIR: folder {str(parent)!r} {why}: cannot create {Path(out_dir).name!r} in it "
                "(create the folder first)"
            )
    return out_dir, bool(args.quick)


def summary_lines(source: str, numbers: Mapping[str, Any], kept: int = 0) -> tuple[list[str], list[Check]]:
    """The check summary of one source (lines of text) and its failed checks.

    ``kept`` (from :func:`recording_kept`) is the number of outputs that
    differed from the files already there within tolerance and were kept;
    when positive, the first line says so.

    Examples
    --------
    >>> from optfilters.papers import Check
    >>> lines, failed = summary_lines("demo", {"checks": [Check.close("gain", 1.0, 1.0, 1e-9)]})
    >>> lines[0], failed
    ('demo: 1 check, all passed; worst: gain (error 0, tolerance 1e-09)', [])
    >>> summary_lines("demo", {"checks": [Check.holds("ok", True)]}, kept=2)[0][0]
    'demo: 1 check, all passed; worst: ok (holds); 2 outputs kept (within tolerance of the files there)'
    """
    checks = checks_of(numbers)
    failed = [c for c in checks if not c.passed]
    suffix = ""
    if kept > 0:
        suffix = f"; {kept} output{'' if kept == 1 else 's'} kept (within tolerance of the files there)"
    if not checks:
        return [f"{source}: no checks reported{suffix}"], failed
    worst = max(checks, key=lambda c: (not c.passed, c.margin))
    plural = "check" if len(checks) == 1 else "checks"
    verdict = "all passed" if not failed else f"{len(failed)} FAILED"
    lines = [f"{source}: {len(checks)} {plural}, {verdict}; worst: {_check_text(worst)}{suffix}"]
    lines += [f"  FAILED {_check_text(c)}" for c in failed]
    return lines, failed


def _check_text(c: Check) -> str:
    if c.error is None:
        return f"{c.name} (value {_g(c.value)}, reference {_g(c.reference)})"
    if c.low is not None:
        return f"{c.name} (value {_g(c.value)}, allowed {c.reference})"
    if c.reference is True and c.tolerance == 0.0:
        return f"{c.name} ({'holds' if c.passed else 'does not hold'})"
    return f"{c.name} (error {_g(c.error)}, tolerance {_g(c.tolerance)})"


def _g(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def finish(source: str, numbers: Mapping[str, Any], kept: int = 0) -> int:
    """Print a source's check summary (stdout; failures also on stderr) and return the exit code (1 on failure).

    ``kept``: outputs kept as within tolerance (see :func:`summary_lines`).
    """
    lines, failed = summary_lines(source, numbers, kept)
    print("\n".join(lines))
    if failed:
        print(f"{source}: {len(failed)} check(s) failed: {', '.join(c.name for c in failed)}", file=sys.stderr)
        return 1
    return 0


def run_source(
    source: str, argv: Sequence[str] | None = None, report: Callable[[dict[str, Any]], None] | None = None
) -> int:
    """The ``python -m optfilters.papers.<source>`` entry point: parse, run with progress bars, summarise.

    ``report(numbers)`` prints the source's own lines before the check
    summary.  Returns the exit code: 0, or 1 when a check failed.
    """
    out_dir, quick = command_line(source, argv)
    module = source_module(source)
    try:  # the default figures/<source> with its parent; a folder given has an existing parent (command_line)
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(
            f"python -m {__name__}.{source}: error: cannot write to OUT_DIR {out_dir!r}: "
            f"{(exc.strerror or str(exc)).lower()}",
            file=sys.stderr,
        )
        return 2
    with stderr_bars(), deterministic(), recording_kept() as kept:
        numbers: dict[str, Any] = module.reproduce(out_dir, quick=quick)
    if report is not None:
        report(numbers)
    return finish(source, numbers, len(kept))


def source_module(source: str) -> Any:
    """Import the module that reproduces ``source`` (a key of :data:`SOURCES`).

    Examples
    --------
    >>> from optfilters.papers import SOURCES
    >>> "ee541_unit7b" in SOURCES
    True
    """
    if source not in SOURCES:
        raise ValueError(f"unknown figure source {source!r}; known: {', '.join(SOURCES)}")
    return importlib.import_module(f"{__name__}.{SOURCES[source]}")


def reproduce(source: str, out_dir: str | Path, quick: bool = False) -> dict[str, Any]:
    """Regenerate one source's figures into ``out_dir/<source>/`` and return its checked numbers.

    The run is :func:`deterministic`.  Failed checks do not raise: they are in
    ``numbers["checks"]`` (see :func:`checks_of`, :func:`summary_lines`).

    Examples
    --------
    >>> from optfilters.papers import reproduce
    >>> reproduce("nonexistent", "figures")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown figure source 'nonexistent'; known: ee541_unit7b, copernicus_l5, ...
    """
    module = source_module(source)
    target = Path(out_dir) / source
    target.mkdir(parents=True, exist_ok=True)
    with deterministic():
        result: dict[str, Any] = module.reproduce(target, quick=quick)
    return result
