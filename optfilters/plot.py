"""Plotting: Bode, pole-zero, step and impulse views of optimizers, prediction overlays and 2-D trajectories.

Every plot function

* takes ``ax=None`` (a new figure is made through pyplot) or the axes to draw
  into (multi-panel views also take ``fig=``),
* returns a :class:`PlotResult` (figure, axes, the artists it drew by role,
  legend, and the numbers it drew in ``data``),
* never calls ``show``, works headless (Agg), and draws in one style
  (:data:`STYLE`, applied inside each call with ``matplotlib.rc_context``;
  global ``rcParams`` are left alone).

matplotlib is imported inside the functions only: importing this module costs
nothing, and importing :mod:`optfilters` never imports matplotlib.

Inputs accepted by the filter views (:func:`bode_plot`, :func:`pole_zero_plot`,
:func:`step_plot`, :func:`impulse_plot`): an :class:`~optfilters.OptimizerModel` (by
default its gradient filter; ``stages=`` picks others), a catalogue name
(``"adam"``), an :class:`~optfilters.ArmaFilter`, a
:class:`~optfilters.stages.LinearStage`, the matching analysis result
(:class:`~optfilters.FrequencyResponse`, :class:`~optfilters.PoleZeroMap`,
:class:`~optfilters.StepResponse`, :class:`~optfilters.ImpulseResponse`), or
a list of these (several optimizers on one view) or a dict ``{label: obj}``.

Conventions: frequency in cycles per step (0 to 0.5), magnitude in dB
(``20 log10 |H|``), phase in degrees (unwrapped), steps counted from 1.

Names: every plot function is ``<what>_plot`` (python-control's convention:
``bode_plot``, ``root_locus_plot``), so none shares its name with the
computation whose result it draws (:func:`optfilters.margins.root_locus`
computes, :func:`root_locus_plot` draws).  The former names (``bode``,
``root_locus``, ...) still work as deprecated aliases: each warns with a
:class:`DeprecationWarning` naming the new name.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
from numpy.typing import NDArray

from .analysis import (
    FrequencyResponse,
    ImpulseResponse,
    PoleZeroMap,
    StepResponse,
    frequency_response,
    impulse_response,
    step_response,
)
from .analysis import pole_zero as _pole_zero_map
from .catalogue import CATALOGUE, get
from .errors import renamed_keywords
from .filters import ArmaFilter
from .model import OptimizerModel
from .stages import Stage
from .validation import quiet_numerics

__all__ = [
    "PALETTE",
    "STYLE",
    "PlotResult",
    "atlas_plot",
    "batch_scaling_plot",
    "best_linear_approximation_plot",
    "bode_plot",
    "bounded_region_plot",
    "certified_rates_plot",
    "closed_loop_rate_plot",
    "closed_loop_step_plot",
    "compare_plot",
    "empirical_response_plot",
    "expected_loss_plot",
    "frozen_edges_plot",
    "impulse_plot",
    "large_signal_plot",
    "loss_comparison_plot",
    "margins_plot",
    "noise_transition_plot",
    "overview_plot",
    "peak_ratio_map_plot",
    "pole_zero_plot",
    "relay_run_plot",
    "root_locus_plot",
    "sensitivity_plot",
    "sharpness_plot",
    "stability_map_plot",
    "staleness_rates_plot",
    "step_plot",
    "style",
    "time_varying_verdict_plot",
    "trajectories_plot",
]


#: Former name -> name of each plot function.  Every view is named ``<what>_plot`` (python-control's
#: convention: ``bode_plot``, ``root_locus_plot``), so that no plot function shares its name with the
#: computation it draws (``optfilters.margins.root_locus`` and ``root_locus_plot``); the former names stay
#: as deprecated aliases, served by the module's ``__getattr__``.
_RENAMED: dict[str, str] = {
    name: f"{name}_plot"
    for name in (
        "atlas",
        "batch_scaling",
        "best_linear_approximation",
        "bode",
        "bounded_region",
        "certified_rates",
        "closed_loop_rate",
        "closed_loop_step",
        "compare",
        "empirical_response",
        "expected_loss",
        "frozen_edges",
        "impulse",
        "large_signal",
        "loss_comparison",
        "margins",
        "noise_transition",
        "overview",
        "peak_ratio_map",
        "pole_zero",
        "relay_run",
        "root_locus",
        "sensitivity",
        "sharpness",
        "stability_map",
        "staleness_rates",
        "step",
        "time_varying_verdict",
        "trajectories",
    )
}


def __getattr__(name: str) -> Any:
    import warnings

    if name in _RENAMED:
        warnings.warn(
            f"optfilters.plot.{name} is deprecated; use optfilters.plot.{_RENAMED[name]} (same behaviour)",
            DeprecationWarning,
            stacklevel=2,
        )
        return globals()[_RENAMED[name]]
    # The trajectory code moved to optfilters.trajectory (computing runs is not drawing); its names, which
    # this module exported, stay here as deprecated aliases.
    import importlib

    trajectory = importlib.import_module("optfilters.trajectory")
    if name in trajectory.__all__ and name != "TrajectoryGrid":
        warnings.warn(
            f"optfilters.plot.{name} moved to optfilters.trajectory.{name}; the old name will be removed",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(trajectory, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


FloatArray = NDArray[np.float64]
_F = TypeVar("_F", bound=Callable[..., Any])

#: Okabe-Ito colours (colour-blind safe), in the order series are drawn.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#999999",  # grey
)

#: The rcParams every plot function applies (inside ``matplotlib.rc_context``; nothing leaks).
STYLE: dict[str, Any] = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "figure.constrained_layout.use": True,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 10.0,
    "axes.titlesize": 11.0,
    "axes.labelsize": 10.0,
    "legend.fontsize": 9.0,
    "legend.frameon": False,
    "xtick.labelsize": 9.0,
    "ytick.labelsize": 9.0,
    "axes.grid": True,
    "axes.grid.which": "major",
    "grid.color": "#b0b0b0",
    "grid.alpha": 0.35,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.8,
    "lines.markersize": 4.0,
    "image.cmap": "viridis",
    "svg.hashsalt": "optfilters",
    "svg.fonttype": "path",
    "pdf.fonttype": 42,
}

_GUIDE = {"color": "0.45", "linewidth": 0.9, "linestyle": "--", "zorder": 1}
_DIRECTION = "direction"


@contextmanager
def style() -> Iterator[None]:
    """Context manager applying :data:`STYLE` (for figures composed by hand in the same look).

    Examples
    --------
    >>> import matplotlib
    >>> from optfilters.plot import style
    >>> with style():
    ...     matplotlib.rcParams["legend.frameon"]
    False
    """
    import matplotlib

    with matplotlib.rc_context(cast(Any, STYLE)):
        yield


def _styled(func: _F) -> _F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib

        with matplotlib.rc_context(cast(Any, STYLE)):
            return func(*args, **kwargs)

    return cast(_F, wrapper)


# ----------------------------------------------------------------------------- result object


@dataclass(frozen=True)
class PlotResult:
    """What a plot function drew.

    Attributes
    ----------
    figure : matplotlib.figure.Figure
        The figure drawn into.
    axes : tuple of matplotlib.axes.Axes
        The panels, in the order the function documents (e.g. magnitude then phase).
    artists : dict of str to tuple
        The artists drawn, by role (``"magnitude"``, ``"phase"``, ``"poles"``,
        ``"zeros"``, ``"unit_circle"``, ``"raw"``, ``"bias_corrected"``, ...),
        each a tuple with one entry per series in drawing order.
    legend : matplotlib.legend.Legend or None
        The legend, when one was drawn.
    data : dict
        The numbers drawn (``data["series"]`` lists one dict of arrays per
        series; :func:`trajectories_plot` adds ``data["runs"]``).

    Examples
    --------
    >>> import optfilters
    >>> from optfilters.plot import bode_plot
    >>> r = bode_plot(optfilters.get("momentum", momentum=0.9))
    >>> sorted(r.artists), round(float(r.artists["magnitude"][0].get_ydata()[0]), 6)
    (['magnitude', 'phase'], 20.0)
    >>> r.close()
    """

    figure: Any
    axes: tuple[Any, ...]
    artists: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    legend: Any = None
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ax(self) -> Any:
        """The first (main) axes."""
        return self.axes[0]

    @property
    def lines(self) -> list[Any]:
        """Every ``Line2D`` among the artists, in role then series order."""
        from matplotlib.lines import Line2D

        return [a for group in self.artists.values() for a in group if isinstance(a, Line2D)]

    def savefig(self, path: str | Path, **kwargs: Any) -> Path:
        """Save the figure (format from the suffix: png, svg, pdf, ...) in the library's style.

        Metadata that changes from run to run (dates, software version) is
        left out, so regenerated figures are byte-stable where the backend
        allows.  Missing parent folders are created.

        Parameters
        ----------
        path : str or pathlib.Path
            Target file; its suffix selects the format.
        **kwargs
            Passed to :meth:`matplotlib.figure.Figure.savefig` (``dpi``, ...;
            a ``metadata`` given here replaces the stable default).

        Returns
        -------
        pathlib.Path
            The path written.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> from optfilters import ArmaFilter
        >>> from optfilters.plot import pole_zero_plot
        >>> r = pole_zero_plot(ArmaFilter.ema(0.9))
        >>> with tempfile.TemporaryDirectory() as d:
        ...     r.savefig(pathlib.Path(d) / "pz.svg").stat().st_size > 0
        True
        >>> r.close()
        """
        import matplotlib

        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        suffix = target.suffix.lower().lstrip(".")
        metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}, "png": {"Software": None}}
        if suffix in metadata and "metadata" not in kwargs:
            kwargs["metadata"] = metadata[suffix]
        with matplotlib.rc_context(cast(Any, STYLE)):
            self.figure.savefig(target, **kwargs)
        return target

    def close(self) -> None:
        """Close the figure (release it from pyplot).

        Examples
        --------
        >>> import matplotlib.pyplot as plt
        >>> from optfilters import ArmaFilter
        >>> from optfilters.plot import impulse_plot
        >>> r = impulse_plot(ArmaFilter.ema(0.5), n=3)
        >>> r.close(); r.figure.number in plt.get_fignums()
        False
        """
        import matplotlib.pyplot as plt

        plt.close(self.figure)


# ----------------------------------------------------------------------------- helpers


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _as_axes_list(ax: Any) -> list[Any]:
    if hasattr(ax, "plot") and hasattr(ax, "figure"):
        return [ax]
    if isinstance(ax, np.ndarray):
        return list(ax.ravel())
    if isinstance(ax, Sequence):
        return list(ax)
    raise ValueError(f"ax must be a matplotlib Axes or a sequence of Axes, got {type(ax).__name__}")


def _axes(
    ax: Any, fig: Any, count: int, what: str, figsize: tuple[float, float] | None = None, sharex: bool = True
) -> tuple[Any, tuple[Any, ...]]:
    """The figure and ``count`` stacked axes: new ones (in ``fig`` or a new figure) or the ones given."""
    if ax is None:
        if fig is None:
            import matplotlib.pyplot as plt

            fig = plt.figure(figsize=figsize)
        grid = fig.subplots(count, 1, sharex=sharex, squeeze=False)
        return fig, tuple(grid[:, 0])
    axes = _as_axes_list(ax)
    if len(axes) != count:
        want = "one Axes" if count == 1 else f"a sequence of {count} Axes"
        raise ValueError(f"{what} draws {count} panel(s) here, so ax must be {want}; got {len(axes)}")
    if fig is not None and any(a.figure is not fig for a in axes):
        raise ValueError(f"{what}: ax is not in fig; give one or the other")
    return axes[0].figure, tuple(axes)


def _legend(ax: Any, legend: bool | None, count: int, explicit: bool, **kwargs: Any) -> Any:
    show = legend if legend is not None else (count > 1 or explicit)
    if not show:
        return None
    handles, _labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    return ax.legend(**kwargs)


def _title(ax: Any, title: str | None, default: str | None) -> None:
    text = default if title is None else title
    if text:
        ax.set_title(text)


def _finite(values: Any) -> FloatArray:
    """Float array with non-finite values (and None, as producers' plain data writes them) as NaN.

    matplotlib leaves NaN points out of lines.  Magnitudes above 1e300 (a
    diverging run about to overflow) are left out too: the axes' margins and
    tick arithmetic would overflow on them.
    """
    arr = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(arr) & (np.abs(arr) < 1e300), arr, np.nan)


def _log_y(axis: Any) -> None:
    """A logarithmic y axis, quietly: matplotlib pads the data by 5% of its span in decades, and a diverging
    series near 1e300 (hundreds of decades) is padded past 1e308, where its log transform overflows (numpy
    RuntimeWarnings from plotting a diverged prediction; the axis is right, ending at the largest double)."""
    with quiet_numerics():
        axis.set_yscale("log")


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _model_label(model: OptimizerModel) -> str:
    """The model's name, with the hyperparameters that differ from the catalogue defaults (lr left out)."""
    entry = CATALOGUE.get(model.name)
    if entry is None:
        return model.name
    defaults = entry.defaults()
    changed = [
        f"{k}={_fmt(v)}" for k, v in model.hyperparameters.items() if k != "lr" and k in defaults and defaults[k] != v
    ]
    return f"{model.name} ({', '.join(changed)})" if changed else model.name


@dataclass(frozen=True)
class _Direction:
    """The whole linear map gradient -> update direction of a linear model."""

    model: OptimizerModel


@dataclass(frozen=True)
class _Series:
    label: str
    source: Any
    explicit: bool


_ACCEPTED = "an OptimizerModel, a catalogue name, an ArmaFilter, a LinearStage"


def _stage_names(model: OptimizerModel, stages: str | Sequence[str]) -> list[str]:
    available = list(model.linear_stages())
    if isinstance(stages, str):
        if stages == "all":
            return available
        chosen = [stages]
    else:
        chosen = list(stages)
    if not chosen:
        raise ValueError("stages must not be empty")
    for name in chosen:
        if name not in available and name != _DIRECTION:
            raise ValueError(
                f"stages must be 'all', 'direction' or among {', '.join(available)} for {model.name}; got {name!r}"
            )
    return chosen


def _expand_one(
    value: Any, stages: str | Sequence[str], label: str | None, explicit: bool, results: tuple[type, ...], what: str
) -> list[_Series]:
    if isinstance(value, str):
        value = get(value)
    if isinstance(value, OptimizerModel):
        names = _stage_names(value, stages)
        base = label if label is not None else _model_label(value)
        stage_map = value.linear_stages()
        out = []
        for name in names:
            source: Any = _Direction(value) if name == _DIRECTION else stage_map[name]
            text = base if (len(names) == 1 and name == "gradient") else f"{base}: {name}"
            out.append(_Series(text, source, explicit))
        return out
    if isinstance(value, Stage):
        inner = value.linear_stages()
        if len(inner) != 1:
            raise ValueError(
                f"{what}() draws one linear stage at a time; a {type(value).__name__} holds "
                f"{', '.join(inner) or 'none'}"
            )
        stage = next(iter(inner.values()))
        return [_Series(label if label is not None else (stage.name or "filter"), stage, explicit)]
    if isinstance(value, (ArmaFilter, *results)):
        name = label if label is not None else (getattr(value, "name", "") or "filter")
        return [_Series(name, value, explicit)]
    kinds = "".join(f", a {t.__name__}" for t in results)
    raise ValueError(f"{what}() accepts {_ACCEPTED}{kinds}, or a list/dict of them; got {type(value).__name__}")


def _expand(
    obj: Any, stages: str | Sequence[str], label: str | None, results: tuple[type, ...], what: str
) -> list[_Series]:
    if isinstance(obj, Mapping):
        series = [s for k, v in obj.items() for s in _expand_one(v, stages, str(k), True, results, what)]
    elif isinstance(obj, (list, tuple)):
        if label is not None:
            raise ValueError(f"{what}(): label names a single object; pass a dict {{label: obj}} to label several")
        series = [s for v in obj for s in _expand_one(v, stages, None, False, results, what)]
    else:
        series = _expand_one(obj, stages, label, label is not None, results, what)
    if not series:
        raise ValueError(f"{what}(): nothing to plot (empty list or dict)")
    # Unnamed filters in a list get numbered labels.
    if len(series) > 1:
        seen: dict[str, int] = {}
        for s in series:
            seen[s.label] = seen.get(s.label, 0) + 1
        counts: dict[str, int] = {}
        renamed = []
        for s in series:
            if seen[s.label] > 1 and not s.explicit:
                counts[s.label] = counts.get(s.label, 0) + 1
                renamed.append(_Series(f"{s.label} {counts[s.label]}", s.source, s.explicit))
            else:
                renamed.append(s)
        series = renamed
    return series


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_fmin(fmin: float) -> float:
    if not (isinstance(fmin, (int, float)) and 0.0 < fmin < 0.5):
        raise ValueError(f"fmin must be in (0, 0.5), got {fmin!r}")
    return float(fmin)


def _frequency_response(source: Any, freqs: FloatArray) -> FrequencyResponse:
    if isinstance(source, FrequencyResponse):
        return source
    if isinstance(source, _Direction):
        return frequency_response(source.model.direction_filter(), freqs=freqs)
    return frequency_response(source, freqs=freqs)


def _direction_response(model: OptimizerModel, x: FloatArray, bias_correction: bool | None) -> FloatArray:
    model.direction_filter()  # raises a clear error for normalised / sign models
    y = model.gradient_stage.response(x, bias_correction=bias_correction)
    if model.post is not None:
        y = model.post.response(y, bias_correction=bias_correction)
    gains = np.array([model.lr_gain.value(t) for t in range(1, x.shape[0] + 1)])
    return np.asarray(y * gains, dtype=np.float64)


def _step_response(source: Any, n: int) -> StepResponse:
    if isinstance(source, StepResponse):
        return source
    if isinstance(source, _Direction):
        m = source.model
        ones = np.ones(n)
        applied = m.gradient_stage.bias_corrected or (m.post is not None and m.post.bias_corrected)
        return StepResponse(
            np.arange(1, n + 1),
            _direction_response(m, ones, False),
            _direction_response(m, ones, True),
            applied,
            _DIRECTION,
        )
    return step_response(source, n=n)


def _impulse_response(source: Any, n: int) -> ImpulseResponse:
    if isinstance(source, ImpulseResponse):
        return source
    if isinstance(source, _Direction):
        x = np.zeros(n)
        x[0] = 1.0
        return ImpulseResponse(np.arange(1, n + 1), _direction_response(source.model, x, None), _DIRECTION)
    return impulse_response(source, n=n)


def _pz(source: Any) -> PoleZeroMap:
    if isinstance(source, PoleZeroMap):
        return source
    if isinstance(source, _Direction):
        return _pole_zero_map(source.model.direction_filter())
    return _pole_zero_map(source)


# ----------------------------------------------------------------------------- filter views


@_styled
def bode_plot(
    obj: Any,
    ax: Any = None,
    *,
    fig: Any = None,
    log: bool = False,
    n: int = 512,
    fmin: float = 1e-3,
    db: bool = True,
    db_range: float = 120.0,
    phase: bool | None = None,
    stages: str | Sequence[str] = "gradient",
    label: str | None = None,
    legend: bool | None = None,
    title: str | None = None,
    **line_kw: Any,
) -> PlotResult:
    """Bode view: magnitude (dB) and phase (degrees) against frequency in cycles/step.

    The dB axis has a floor ``db_range`` below the highest level drawn:
    lower levels (``-inf`` at a zero on the unit circle) are drawn on the
    floor, and each zero on the unit circle is marked there with a ``^``.  The
    phase is the per-factor sum (continuous, anchored at DC), with its ``pi``
    jump at such a zero.

    Parameters
    ----------
    obj : OptimizerModel, str, ArmaFilter, LinearStage, FrequencyResponse, list or dict
        What to draw.  A model (or catalogue name) contributes the LTI limit
        of its gradient filter by default (what the lecture's "gradient filter
        frequency response" shows); see ``stages``.  A list draws several
        series on one view, a dict ``{label: obj}`` labels them.
    ax : Axes or sequence of 2 Axes, optional
        One Axes draws the magnitude only (unless ``phase=True``, which needs
        two); default: a new figure.
    fig : Figure, optional
        Figure to add the panels to when ``ax`` is None.
    log : bool
        Logarithmic frequency axis from ``fmin`` to 0.5 (linear 0 to 0.5 otherwise).
    n : int
        Number of frequencies (>= 2).
    fmin : float
        Lowest frequency of the log axis, in (0, 0.5).
    db : bool
        Magnitude in dB (``20 log10 |H|``); False draws ``|H|``.
    db_range : float
        Levels more than this many dB below the highest are drawn at that floor (dB view only).
    phase : bool, optional
        Draw the phase panel; default: True for a new figure, False when a single ``ax`` is given.
    stages : str or sequence of str
        For models: ``"gradient"`` (default), ``"all"`` (every linear stage of
        :meth:`~optfilters.OptimizerModel.linear_stages`: gradient,
        second_moment, center, update_moment, post), ``"direction"`` (the whole
        gradient-to-update map of a linear model), or a list of stage names.
    label : str, optional
        Legend label for a single object.
    legend : bool, optional
        Force the legend on or off (default: on for several series or an explicit label).
    title : str, optional
        Title of the magnitude panel (default: the label of a single series; "" for none).
    **line_kw
        Passed to ``Axes.plot`` for the data lines (``color``, ``linestyle``, ...).

    Returns
    -------
    PlotResult
        ``artists["magnitude"]`` (and ``artists["phase"]``): one line per
        series; ``artists["unit_circle_zeros"]`` (when there are any): the
        markers of zeros on the unit circle; ``data["series"]``: label, freqs, magnitude (dB or
        linear, unclipped), phase_deg and unit_circle_zeros per series;
        ``data["db_floor"]``: the floor (None without a dB axis).

    Raises
    ------
    ValueError
        If ``n`` is not an integer >= 2, ``fmin`` is not in ``(0, 0.5)`` on a
        log axis, ``db_range`` is not a positive finite number of dB, or
        ``ax`` does not hold the number of panels drawn (or is not in ``fig``).

    Examples
    --------
    >>> import optfilters
    >>> from optfilters.plot import bode_plot
    >>> r = bode_plot(optfilters.get("momentum", momentum=0.9), n=3)
    >>> r.artists["magnitude"][0].get_ydata().round(3).tolist()   # 20 log10 10 at DC
    [20.0, -2.577, -5.575]
    >>> r.close()
    """
    n = _check_int("n", n, 2)
    series = _expand(obj, stages, label, (FrequencyResponse,), "bode_plot")
    if phase is None:
        phase = ax is None or len(_as_axes_list(ax)) == 2
    figure, axes = _axes(ax, fig, 2 if phase else 1, "bode_plot", figsize=(6.4, 5.6) if phase else None)
    if log:
        grid = np.geomspace(_check_fmin(fmin), 0.5, n)
    else:
        grid = np.linspace(0.0, 0.5, n)
    if not (isinstance(db_range, (int, float)) and db_range > 0 and math.isfinite(db_range)):
        raise ValueError(f"db_range must be a positive number of dB, got {db_range!r}")
    mag_lines, phase_lines, marks, records = [], [], [], []
    responses = []
    for s in series:
        fr = _frequency_response(s.source, grid)
        freqs = np.asarray(fr.freqs, dtype=np.float64)
        keep = freqs > 0.0 if log else np.ones(freqs.shape, dtype=bool)
        responses.append((s, fr, keep))
    floor = None
    if db:
        peaks = [np.max(v) for _, fr, keep in responses if np.any(np.isfinite(v := fr.magnitude_db[keep]))]
        finite_peaks = [p for p in peaks if np.isfinite(p)]
        top = max(finite_peaks) if finite_peaks else 0.0
        lowest = min((float(np.min(fr.magnitude_db[keep])) for _, fr, keep in responses if np.any(keep)), default=top)
        floor = top - float(db_range) if lowest < top - float(db_range) else None
    for i, (s, fr, keep) in enumerate(responses):
        freqs = np.asarray(fr.freqs, dtype=np.float64)[keep]
        magnitude = fr.magnitude_db[keep] if db else fr.magnitude[keep]
        shown = np.maximum(magnitude, floor) if floor is not None else magnitude
        phase_deg = np.degrees(fr.phase)[keep]
        kw = {"color": _colour(i), "label": s.label, **line_kw}
        mag_lines.append(axes[0].plot(freqs, _finite(shown), **kw)[0])
        if phase:
            phase_lines.append(axes[1].plot(freqs, _finite(phase_deg), **kw)[0])
        notches = np.asarray(fr.unit_circle_zeros, dtype=np.float64)
        lo, hi = (float(freqs[0]), float(freqs[-1])) if freqs.size else (0.0, 0.5)
        notches = notches[(notches >= lo) & (notches <= hi)]
        if notches.size:
            level = floor if floor is not None else (float(np.nanmin(_finite(shown))) if db else 0.0)
            marks.append(
                axes[0].plot(
                    notches,
                    np.full(notches.shape, level),
                    linestyle="none",
                    marker="^",
                    markersize=9,
                    color=_colour(i),
                    label="_zero on the unit circle",
                    zorder=4,
                    clip_on=False,
                )[0]
            )
        records.append(
            {
                "label": s.label,
                "freqs": freqs,
                "magnitude": magnitude,
                "phase_deg": phase_deg,
                "unit_circle_zeros": notches,
            }
        )
    if floor is not None:
        top = floor + float(db_range)
        axes[0].set_ylim(floor - 0.05 * float(db_range), top + 0.05 * float(db_range))
    for a in axes:
        if log:
            a.set_xscale("log")
            a.set_xlim(_check_fmin(fmin), 0.5)
        else:
            a.set_xlim(0.0, 0.5)
    axes[0].set_ylabel("magnitude (dB)" if db else "magnitude |H|")
    if phase:
        axes[1].set_ylabel("phase (degrees)")
    axes[-1].set_xlabel("frequency (cycles/step)")
    _title(axes[0], title, series[0].label if len(series) == 1 else None)
    leg = _legend(axes[0], legend, len(series), any(s.explicit for s in series))
    artists = {"magnitude": tuple(mag_lines)}
    if marks:
        artists["unit_circle_zeros"] = tuple(marks)
    if phase:
        artists["phase"] = tuple(phase_lines)
    return PlotResult(figure, axes, artists, leg, {"series": records, "db": db, "log": log, "db_floor": floor})


def _multiplicities(roots: NDArray[np.complex128], tol: float = 1e-6) -> list[tuple[complex, int]]:
    groups: list[tuple[complex, int]] = []
    for r in roots:
        for j, (c, k) in enumerate(groups):
            if abs(r - c) <= tol * max(1.0, abs(c)):
                groups[j] = (c, k + 1)
                break
        else:
            groups.append((complex(r), 1))
    return groups


@_styled
def pole_zero_plot(
    obj: Any,
    ax: Any = None,
    *,
    stages: str | Sequence[str] = "gradient",
    unit_circle: bool = True,
    label: str | None = None,
    legend: bool | None = None,
    title: str | None = None,
) -> PlotResult:
    """Pole-zero map in the z-plane: poles ``x``, zeros ``o``, the unit circle, equal aspect.

    A root of multiplicity above one is annotated with its count.  The view
    spans the unit circle and every pole and zero.

    Parameters
    ----------
    obj : OptimizerModel, str, ArmaFilter, LinearStage, PoleZeroMap, list or dict
        What to draw (models: their gradient filter by default; see ``stages``).
    ax : Axes, optional
        Default: a new figure.
    stages : str or sequence of str
        For models, as in :func:`bode_plot`.
    unit_circle : bool
        Draw the unit circle (stability boundary).
    label : str, optional
        Legend label for a single object.
    legend : bool, optional
        Force the legend on or off (default: on for several series or an explicit label).
    title : str, optional
        Title (default: the label of a single series).

    Returns
    -------
    PlotResult
        ``artists["poles"]``, ``artists["zeros"]`` (one marker line per
        series), ``artists["unit_circle"]``, ``artists["multiplicity"]`` (text).

    Examples
    --------
    >>> import optfilters
    >>> from optfilters.plot import pole_zero_plot
    >>> r = pole_zero_plot(optfilters.get("nesterov", momentum=0.9))
    >>> r.artists["poles"][0].get_xdata().tolist(), r.artists["zeros"][0].get_xdata().round(6).tolist()
    ([0.9], [0.473684])
    >>> r.close()
    """
    series = _expand(obj, stages, label, (PoleZeroMap,), "pole_zero_plot")
    figure, (axis,) = _axes(ax, None, 1, "pole_zero_plot", figsize=(5.0, 5.0))
    artists: dict[str, list[Any]] = {"poles": [], "zeros": [], "unit_circle": [], "multiplicity": []}
    records = []
    extent = 1.0
    if unit_circle:
        theta = np.linspace(0.0, 2.0 * np.pi, 721)
        artists["unit_circle"].append(
            axis.plot(np.cos(theta), np.sin(theta), label="_unit circle", **{**_GUIDE, "linestyle": ":"})[0]
        )
    axis.axhline(0.0, color="0.75", linewidth=0.6, zorder=0)
    axis.axvline(0.0, color="0.75", linewidth=0.6, zorder=0)
    for i, s in enumerate(series):
        pz = _pz(s.source)
        poles = np.asarray(pz.poles, dtype=np.complex128)
        zeros = np.asarray(pz.zeros, dtype=np.complex128)
        c = _colour(i)
        # Earlier series get larger markers, so coinciding roots of several series stay visible.
        size = 8.0 + 3.0 * min(len(series) - 1 - i, 5)
        artists["poles"].append(
            axis.plot(
                poles.real,
                poles.imag,
                linestyle="none",
                marker="x",
                markersize=size,
                markeredgewidth=2,
                color=c,
                label=s.label,
                zorder=3,
            )[0]
        )
        artists["zeros"].append(
            axis.plot(
                zeros.real,
                zeros.imag,
                linestyle="none",
                marker="o",
                markersize=size,
                markeredgewidth=1.8,
                markerfacecolor="none",
                color=c,
                label="_nolegend_",
                zorder=3,
            )[0]
        )
        for roots in (poles, zeros):
            for root, count in _multiplicities(roots):
                if count > 1:
                    artists["multiplicity"].append(
                        axis.annotate(
                            str(count), (root.real, root.imag), textcoords="offset points", xytext=(6, 6), color=c
                        )
                    )
        finite = np.concatenate([poles, zeros])
        finite = finite[np.isfinite(finite)]
        if finite.size:
            extent = max(extent, float(np.max(np.abs(finite.real))), float(np.max(np.abs(finite.imag))))
        records.append({"label": s.label, "poles": poles, "zeros": zeros, "stability": pz.stability})
    lim = 1.15 * extent
    axis.set_xlim(-lim, lim)
    axis.set_ylim(-lim, lim)
    axis.set_aspect("equal", adjustable="box")
    axis.set_xlabel("Re z")
    axis.set_ylabel("Im z")
    _title(axis, title, f"{series[0].label}: poles (x), zeros (o)" if len(series) == 1 else None)
    leg = None
    if legend if legend is not None else (len(series) > 1 or any(s.explicit for s in series)):
        from matplotlib.lines import Line2D

        key = [
            Line2D([], [], linestyle="none", marker="x", color="0.3", markeredgewidth=2, label="pole"),
            Line2D([], [], linestyle="none", marker="o", markerfacecolor="none", color="0.3", label="zero"),
        ]
        leg = axis.legend(handles=[*artists["poles"], *key], loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return PlotResult(figure, (axis,), {k: tuple(v) for k, v in artists.items()}, leg, {"series": records})


_BIAS_CORRECTED_CHOICES = (None, True, False, "actual")


@renamed_keywords("optfilters.plot.step_plot", compensated="bias_corrected")
@_styled
def step_plot(
    obj: Any,
    ax: Any = None,
    *,
    n: int = 50,
    bias_corrected: bool | str | None = None,
    stages: str | Sequence[str] = "gradient",
    markers: bool = True,
    label: str | None = None,
    legend: bool | None = None,
    title: str | None = None,
    **line_kw: Any,
) -> PlotResult:
    """Unit-step response, raw and bias-corrected, from step 1 on.

    Models are simulated exactly (bias correction, first-step quirks and
    schedules included) through :func:`optfilters.step_response` on their
    gradient stage (see ``stages``).  The raw response is the recursion
    without bias correction; the bias-corrected one multiplies by ``H(1)/s_t``
    (Adam's ``1/(1 - beta^t)`` for the EMA), which makes a unit-DC-gain
    filter's step response exactly 1.

    Parameters
    ----------
    obj : OptimizerModel, str, ArmaFilter, LinearStage, StepResponse, list or dict
        What to draw.
    ax : Axes, optional
        Default: a new figure.
    n : int
        Number of steps (>= 1); ignored for StepResponse inputs.
    bias_corrected : {None, True, False, "actual"}
        None: raw (solid) and bias-corrected (dashed); True: bias-corrected only;
        False: raw only; ``"actual"``: what the optimizer itself produces
        (bias-corrected where it applies bias correction).
    stages : str or sequence of str
        For models, as in :func:`bode_plot` (``"direction"`` chains the gradient and post stages exactly).
    markers : bool
        Mark each step with a dot.
    label : str, optional
        Legend label for a single object.
    legend : bool, optional
        Force the legend on or off (default: on for several series, both variants, or an explicit label).
    title : str, optional
        Title (default: the label of a single series).
    **line_kw
        Passed to ``Axes.plot``.

    Returns
    -------
    PlotResult
        ``artists["raw"]`` / ``artists["bias_corrected"]`` / ``artists["actual"]``
        (those drawn), one line per series.

    Raises
    ------
    ValueError
        For another ``bias_corrected``.

    Examples
    --------
    >>> import optfilters
    >>> from optfilters.plot import step_plot
    >>> r = step_plot(optfilters.get("adam", beta1=0.9), n=3)
    >>> r.artists["raw"][0].get_ydata().round(6).tolist(), r.artists["bias_corrected"][0].get_ydata().tolist()
    ([0.1, 0.19, 0.271], [1.0, 1.0, 1.0])
    >>> r.close()
    """
    n = _check_int("n", n, 1)
    if bias_corrected not in _BIAS_CORRECTED_CHOICES:
        raise ValueError(f"bias_corrected must be None, True, False or 'actual'; got {bias_corrected!r}")
    series = _expand(obj, stages, label, (StepResponse,), "step_plot")
    figure, (axis,) = _axes(ax, None, 1, "step_plot")
    kinds = {None: ("raw", "bias_corrected"), True: ("bias_corrected",), False: ("raw",), "actual": ("actual",)}[
        bias_corrected
    ]
    artists: dict[str, list[Any]] = {k: [] for k in kinds}
    records = []
    for i, s in enumerate(series):
        sr = _step_response(s.source, n)
        values = {"raw": sr.raw, "bias_corrected": sr.bias_corrected, "actual": sr.actual}
        record: dict[str, Any] = {"label": s.label, "steps": np.asarray(sr.steps)}
        for kind in kinds:
            text = s.label if len(kinds) == 1 else f"{s.label}, {kind.replace('_', '-')}"
            kw: dict[str, Any] = {
                "color": _colour(i),
                "label": text,
                "linestyle": "--" if (kind == "bias_corrected" and len(kinds) > 1) else "-",
                "marker": "o" if markers and not (kind == "bias_corrected" and len(kinds) > 1) else None,
                "markersize": 2.5,
            }
            kw.update(line_kw)
            artists[kind].append(axis.plot(sr.steps, _finite(values[kind]), **kw)[0])
            record[kind] = np.asarray(values[kind], dtype=np.float64)
        records.append(record)
    axis.set_xlabel("step t")
    axis.set_ylabel("step response")
    axis.set_xlim(0.0, float(max(np.max(r["steps"]) for r in records)) + 1.0)
    _title(axis, title, series[0].label if len(series) == 1 else None)
    leg = _legend(axis, legend, len(series) * len(kinds), any(s.explicit for s in series))
    return PlotResult(figure, (axis,), {k: tuple(v) for k, v in artists.items()}, leg, {"series": records})


@_styled
def impulse_plot(
    obj: Any,
    ax: Any = None,
    *,
    n: int = 50,
    stages: str | Sequence[str] = "gradient",
    markers: bool = True,
    label: str | None = None,
    legend: bool | None = None,
    title: str | None = None,
    **line_kw: Any,
) -> PlotResult:
    """Unit-impulse response from step 1 on, as the optimizer runs it (exact, time-varying parts included).

    Parameters
    ----------
    obj : OptimizerModel, str, ArmaFilter, LinearStage, ImpulseResponse, list or dict
        What to draw.
    ax : Axes, optional
        Default: a new figure.
    n : int
        Number of steps (>= 1); ignored for ImpulseResponse inputs.
    stages : str or sequence of str
        For models, as in :func:`bode_plot`.
    markers : bool
        Mark each step with a dot.
    label : str, optional
        Legend label for a single object.
    legend : bool, optional
        Force the legend on or off (default: on for several series or an explicit label).
    title : str, optional
        Title (default: the label of a single series).
    **line_kw
        Passed to ``Axes.plot``.

    Returns
    -------
    PlotResult
        ``artists["impulse"]``: one line per series.

    Examples
    --------
    >>> import optfilters
    >>> from optfilters.plot import impulse_plot
    >>> r = impulse_plot(optfilters.get("momentum", momentum=0.5), n=3)
    >>> r.artists["impulse"][0].get_ydata().tolist()
    [1.0, 0.5, 0.25]
    >>> r.close()
    """
    n = _check_int("n", n, 1)
    series = _expand(obj, stages, label, (ImpulseResponse,), "impulse_plot")
    figure, (axis,) = _axes(ax, None, 1, "impulse_plot")
    lines, records = [], []
    for i, s in enumerate(series):
        ir = _impulse_response(s.source, n)
        kw: dict[str, Any] = {"color": _colour(i), "label": s.label, "marker": "o" if markers else None}
        kw["markersize"] = 2.5
        kw.update(line_kw)
        lines.append(axis.plot(ir.steps, _finite(ir.values), **kw)[0])
        records.append({"label": s.label, "steps": np.asarray(ir.steps), "impulse": np.asarray(ir.values)})
    axis.axhline(0.0, color="0.6", linewidth=0.6, zorder=0)
    axis.set_xlabel("step t")
    axis.set_ylabel("impulse response")
    _title(axis, title, series[0].label if len(series) == 1 else None)
    leg = _legend(axis, legend, len(series), any(s.explicit for s in series))
    return PlotResult(figure, (axis,), {"impulse": tuple(lines)}, leg, {"series": records})


def compare_plot(objs: Any, kind: str = "bode", ax: Any = None, **kwargs: Any) -> PlotResult:
    """Several optimizers on one view: ``kind`` is ``"bode"``, ``"pole_zero"``, ``"step"`` or ``"impulse"``.

    The filter views accept lists and dicts themselves; ``compare_plot`` only
    dispatches by name (for loops over view kinds).

    Parameters
    ----------
    objs : list or dict
        The optimizers (or filters) to compare; a dict gives the labels.
    kind : str
        The view.
    ax : Axes, optional
        Passed to the view.
    **kwargs
        Passed to the view (``log``, ``n``, ``stages``, ...).

    Returns
    -------
    PlotResult

    Raises
    ------
    ValueError
        For an unknown ``kind``.

    Examples
    --------
    >>> from optfilters.plot import compare_plot
    >>> r = compare_plot(["momentum", "nesterov"], kind="step", n=4, bias_corrected=False)
    >>> [line.get_label() for line in r.artists["raw"]]
    ['momentum', 'nesterov']
    >>> r.close()
    """
    views = {"bode": bode_plot, "pole_zero": pole_zero_plot, "step": step_plot, "impulse": impulse_plot}
    if kind not in views:
        raise ValueError(f"kind must be one of {', '.join(views)}; got {kind!r}")
    return views[kind](objs, ax=ax, **kwargs)


@_styled
def overview_plot(
    obj: Any,
    fig: Any = None,
    *,
    n: int = 50,
    log: bool = False,
    stages: str | Sequence[str] = "gradient",
    label: str | None = None,
    title: str | None = None,
) -> PlotResult:
    """Four panels: magnitude, phase, pole-zero map, and step response (raw and bias-corrected).

    Parameters
    ----------
    obj : OptimizerModel, str, ArmaFilter, LinearStage, list or dict
        What to draw (several series share colours across the panels).
    fig : Figure, optional
        Figure to draw into (default: a new one).
    n : int
        Steps of the step response.
    log : bool
        Logarithmic frequency axis.
    stages : str or sequence of str
        For models, as in :func:`bode_plot`.
    label : str, optional
        Label for a single object.
    title : str, optional
        Figure title (default: the label of a single series).

    Returns
    -------
    PlotResult
        Axes ``(magnitude, phase, pole_zero, step)``; the artists of the four views merged by role.

    Examples
    --------
    >>> from optfilters.plot import overview_plot
    >>> r = overview_plot("nesterov", n=5)
    >>> len(r.axes), sorted(r.artists)
    (4, ['bias_corrected', 'magnitude', 'multiplicity', 'phase', 'poles', 'raw', 'unit_circle', 'zeros'])
    >>> r.close()
    """
    import matplotlib.pyplot as plt

    series = _expand(obj, stages, label, (), "overview_plot")
    if fig is None:
        fig = plt.figure(figsize=(10.0, 7.0))
    grid = fig.subplots(2, 2, squeeze=False)
    mag_ax, pz_ax, phase_ax, step_ax = grid[0, 0], grid[0, 1], grid[1, 0], grid[1, 1]
    mag_ax.sharex(phase_ax)
    several = len(series) > 1
    r_bode = bode_plot(obj, ax=(mag_ax, phase_ax), log=log, stages=stages, label=label, title="", legend=several)
    r_pz = pole_zero_plot(obj, ax=pz_ax, stages=stages, label=label, title="", legend=False)
    r_step = step_plot(obj, ax=step_ax, n=n, stages=stages, label=label, title="", legend=True)
    default = series[0].label if len(series) == 1 else None
    text = default if title is None else title
    if text:
        fig.suptitle(text)
    artists = {**r_bode.artists, **r_pz.artists, **r_step.artists}
    data = {"bode": r_bode.data, "pole_zero": r_pz.data, "step": r_step.data}
    return PlotResult(fig, (mag_ax, phase_ax, pz_ax, step_ax), artists, r_bode.legend, data)


# ----------------------------------------------------------------------------- prediction overlays


def _items(obj: Any, what: str, required: Sequence[str]) -> list[tuple[str, Any]]:
    """(label, object) pairs from one object, a list, or a dict; checks the contract's attributes."""
    if isinstance(obj, Mapping):
        pairs = [(str(k), v) for k, v in obj.items()]
    elif isinstance(obj, (list, tuple)):
        pairs = [(str(getattr(v, "name", "") or f"{i + 1}"), v) for i, v in enumerate(obj)]
    else:
        pairs = [(str(getattr(obj, "name", "") or ""), obj)]
    if not pairs:
        raise ValueError(f"{what}(): nothing to plot (empty list or dict)")
    for _, item in pairs:
        missing = [a for a in required if not hasattr(item, a)]
        if missing:
            raise ValueError(
                f"{what}() needs an object with {', '.join(required)}; {type(item).__name__} lacks {', '.join(missing)}"
            )
    return pairs


def _fastest(x: FloatArray, row: FloatArray, rtol: float = 1e-6) -> float:
    """The middle of the ``x`` range where ``row`` is within ``rtol`` of its minimum below 1 (nan if none)."""
    ok = np.isfinite(row) & (row < 1.0)
    if not ok.any():
        return math.nan
    best = float(np.min(row[ok]))
    near = x[ok & (row <= best + rtol * max(best, 1e-12))]
    return float(0.5 * (near.min() + near.max()))


def _same_length(what: str, **arrays: FloatArray) -> None:
    lengths = {k: v.shape[0] for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        text = ", ".join(f"{k} has {v}" for k, v in lengths.items())
        raise ValueError(f"{what}(): arrays must have the same length; {text}")


@_styled
def stability_map_plot(
    obj: Any,
    ax: Any = None,
    *,
    log: bool = False,
    boundary: bool = True,
    optimum: bool = False,
    colorbar: bool = True,
    cmap: str = "viridis",
    title: str | None = None,
) -> PlotResult:
    """Closed-loop convergence rate over ``lr * h`` (x) and one hyperparameter (y).

    Colours show the rate (largest closed-loop pole modulus) from 0 to 1;
    rates of 1 or more (no convergence) are drawn in light grey, non-finite
    ones in white.  The rate-1 contour (stability boundary) and, per
    hyperparameter value, the ``lr * h`` with the smallest rate are overlaid.

    Parameters
    ----------
    obj : StabilityMap-like
        Needs ``parameter`` (str), ``parameter_values`` (1-D), ``lr_curvature``
        (1-D) and ``rate`` (shape ``(len(parameter_values), len(lr_curvature))``);
        ``name`` is used in the title when present.
    ax : Axes, optional
        Default: a new figure.
    log : bool
        Logarithmic ``lr * h`` axis.
    boundary : bool
        Draw the rate = 1 contour.
    optimum : bool
        Draw the fastest ``lr * h`` for each hyperparameter value (the middle
        of the flat minimum where the rate is constant, as for heavy-ball
        momentum's ``sqrt(mu)`` band); ``data["fastest_lr_curvature"]`` has
        these values in any case.
    colorbar : bool
        Add a colour bar.
    cmap : str
        Colormap name.
    title : str, optional
        Default: ``"<name>: closed-loop rate"``.

    Returns
    -------
    PlotResult
        ``artists["mesh"]``, ``artists["boundary"]`` (a ContourSet, if drawn),
        ``artists["optimum"]``, ``artists["colorbar"]``.

    Raises
    ------
    ValueError
        For several maps, or a rate array whose shape does not match its axes.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from optfilters.plot import stability_map_plot
    >>> x = np.linspace(0.05, 2.5, 50)
    >>> m = SimpleNamespace(parameter="momentum", parameter_values=np.array([0.0]), lr_curvature=x,
    ...                     rate=np.abs(1 - x)[None, :], name="sgd")
    >>> r = stability_map_plot(m)
    >>> r.artists["mesh"][0].get_array().shape
    (1, 50)
    >>> r.close()
    """
    import matplotlib

    (_, m), *rest = _items(obj, "stability_map", ("parameter", "parameter_values", "lr_curvature", "rate"))
    if rest:
        raise ValueError("stability_map_plot() draws one map; give one StabilityMap")
    x = _finite(m.lr_curvature)
    y = _finite(m.parameter_values)
    rate = _finite(m.rate)
    if rate.shape != (y.size, x.size):
        raise ValueError(
            f"stability_map_plot(): rate must have shape (len(parameter_values), len(lr_curvature)) = "
            f"({y.size}, {x.size}), got {rate.shape}"
        )
    figure, (axis,) = _axes(ax, None, 1, "stability_map_plot")
    colormap = matplotlib.colormaps[cmap].with_extremes(over="#d9d9d9", bad="white")
    norm = matplotlib.colors.Normalize(vmin=0.0, vmax=1.0, clip=False)
    # Values >= 1 must use the "over" colour: nudge exact 1 just above the top of the norm.
    shown = np.where(rate >= 1.0, np.maximum(rate, 1.0 + 1e-12), rate)
    mesh = axis.pcolormesh(x, y, np.ma.masked_invalid(shown), cmap=colormap, norm=norm, shading="nearest")
    artists: dict[str, tuple[Any, ...]] = {"mesh": (mesh,)}
    finite = rate[np.isfinite(rate)]
    if boundary and x.size > 1 and y.size > 1 and finite.size and finite.min() < 1.0 < finite.max():
        artists["boundary"] = (axis.contour(x, y, rate, levels=[1.0], colors="white", linewidths=1.5),)
    best_x = [_fastest(x, row) for row in rate]
    if optimum:
        artists["optimum"] = (
            axis.plot(best_x, y, color="#D55E00", linestyle="--", linewidth=1.2, label="fastest lr·h", marker=None)[0],
        )
    if colorbar:
        cb = figure.colorbar(mesh, ax=axis, extend="max")
        cb.set_label("rate (largest |closed-loop pole|)")
        artists["colorbar"] = (cb,)
    if log:
        axis.set_xscale("log")
    axis.set_xlabel("lr · h (learning rate × curvature)")
    axis.set_ylabel(str(m.parameter))
    axis.grid(False)
    name = getattr(m, "name", "")
    _title(axis, title, f"{name}: closed-loop rate" if name else "closed-loop rate")
    data = {"lr_curvature": x, "parameter_values": y, "rate": rate, "fastest_lr_curvature": np.array(best_x)}
    return PlotResult(figure, (axis,), artists, None, data)


@_styled
def closed_loop_rate_plot(
    obj: Any,
    ax: Any = None,
    *,
    log: bool = False,
    shade: bool = True,
    ymax: float | None = None,
    label: str | None = None,
    legend: bool | None = None,
    title: str | None = None,
    **line_kw: Any,
) -> PlotResult:
    """Closed-loop convergence rate against ``lr * h``, with rate = 1 and the stable interval shaded.

    Parameters
    ----------
    obj : RateCurve-like, OptimizerModel, str, ArmaFilter, Stage, list or dict
        A rate curve (``lr_curvature``, ``rate`` and ``stable_interval``, the
        ``(lo, hi)`` of ``lr * h`` with None or non-finite ends allowed;
        ``name`` labels it), or an optimizer as every analysis function takes
        it (a model, a catalogue name, a filter or a stage), whose
        :func:`optfilters.closed_loop.rate_curve` is drawn.
    ax : Axes, optional
        Default: a new figure.
    log : bool
        Logarithmic ``lr * h`` axis.
    shade : bool
        Shade each curve's stable interval in its colour.
    ymax : float, optional
        Top of the rate axis (default: the largest finite rate, at most 2, and at least 1.1).
    label : str, optional
        Label of a single curve (default: its ``name``).
    legend : bool, optional
        Force the legend on or off (default: on for several curves or an explicit label).
    title : str, optional
        Title.
    **line_kw
        Passed to ``Axes.plot``.

    Returns
    -------
    PlotResult
        ``artists["rate"]``, ``artists["stable_interval"]``, ``artists["unit_rate"]``.

    Raises
    ------
    ValueError
        For a single ``label`` with several curves.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from optfilters.plot import closed_loop_rate_plot
    >>> x = np.linspace(0.0, 3.0, 7)
    >>> c = SimpleNamespace(lr_curvature=x, rate=np.abs(1 - x), stable_interval=(0.0, 2.0), name="gd")
    >>> r = closed_loop_rate_plot(c)
    >>> r.artists["rate"][0].get_ydata().tolist()
    [1.0, 0.5, 0.0, 0.5, 1.0, 1.5, 2.0]
    >>> r.close()
    """
    pairs = _items(_rate_curves(obj), "closed_loop_rate", ("lr_curvature", "rate", "stable_interval"))
    if label is not None:
        if len(pairs) != 1:
            raise ValueError("closed_loop_rate_plot(): label names a single curve; pass a dict to label several")
        pairs = [(label, pairs[0][1])]
    figure, (axis,) = _axes(ax, None, 1, "closed_loop_rate_plot")
    lines, spans, records = [], [], []
    top = 0.0
    for i, (name, c) in enumerate(pairs):
        x, rate = _finite(c.lr_curvature), _finite(c.rate)
        _same_length("closed_loop_rate_plot", lr_curvature=x, rate=rate)
        kw = {"color": _colour(i), "label": name or None, **line_kw}
        lines.append(axis.plot(x, rate, **kw)[0])
        if np.isfinite(rate).any():
            top = max(top, float(np.nanmax(rate)))
        interval = c.stable_interval
        if shade and interval is not None:
            lo, hi = (math.nan if v is None else float(v) for v in interval)
            lo = float(np.nanmin(x)) if not math.isfinite(lo) else lo
            hi = float(np.nanmax(x)) if not math.isfinite(hi) else hi
            if hi > lo:
                spans.append(axis.axvspan(lo, hi, color=_colour(i), alpha=0.12, linewidth=0, zorder=0))
        records.append({"label": name, "lr_curvature": x, "rate": rate, "stable_interval": interval})
    unit = axis.axhline(1.0, label="_rate = 1", **_GUIDE)
    axis.set_ylim(0.0, ymax if ymax is not None else max(1.1, min(top, 2.0) * 1.05))
    if log:
        axis.set_xscale("log")
    axis.set_xlabel("lr · h (learning rate × curvature)")
    axis.set_ylabel("rate (largest |closed-loop pole|)")
    _title(axis, title, None)
    leg = _legend(axis, legend, len(pairs), label is not None or isinstance(obj, Mapping))
    return PlotResult(
        figure,
        (axis,),
        {"rate": tuple(lines), "stable_interval": tuple(spans), "unit_rate": (unit,)},
        leg,
        {"series": records},
    )


def _rate_curves(obj: Any) -> Any:
    """Optimizers (models, names, filters, stages) replaced by their closed-loop rate curves."""
    from .closed_loop import rate_curve

    def one(item: Any) -> Any:
        if isinstance(item, (str, OptimizerModel, ArmaFilter, Stage)):
            return rate_curve(item)
        return item

    if isinstance(obj, Mapping):
        return {k: one(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [one(v) for v in obj]
    return one(obj)


@_styled
def loss_comparison_plot(
    obj: Any,
    ax: Any = None,
    *,
    band: float = 2.0,
    log: bool = False,
    label: str | None = None,
    legend: bool | None = True,
    title: str | None = None,
) -> PlotResult:
    """Observed mean loss with a ``+- band * stderr`` band, and the predicted loss as a dashed line.

    Parameters
    ----------
    obj : LossComparison-like, list or dict
        Needs ``steps``, ``predicted_loss``, ``observed_mean_loss`` and
        ``observed_stderr`` (same length); ``name`` labels it.
    ax : Axes, optional
        Default: a new figure.
    band : float
        Half-width of the band in standard errors (>= 0).
    log : bool
        Logarithmic loss axis (the band's lower edge is clipped at positive values).
    label : str, optional
        Label of a single comparison.
    legend : bool, optional
        Draw the legend (default True).
    title : str, optional
        Title.

    Returns
    -------
    PlotResult
        ``artists["observed"]``, ``artists["band"]``, ``artists["predicted"]``;
        ``data["series"]`` holds the band edges drawn.

    Raises
    ------
    ValueError
        For a negative ``band``, or a single ``label`` with several comparisons.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from optfilters.plot import loss_comparison_plot
    >>> s = np.arange(4)
    >>> c = SimpleNamespace(steps=s, predicted_loss=0.5**s, observed_mean_loss=0.5**s + 0.01,
    ...                     observed_stderr=np.full(4, 0.005), name="sgd")
    >>> r = loss_comparison_plot(c)
    >>> r.artists["predicted"][0].get_ydata().tolist()
    [1.0, 0.5, 0.25, 0.125]
    >>> r.close()
    """
    if not (isinstance(band, (int, float)) and band >= 0.0):
        raise ValueError(f"band must be >= 0, got {band!r}")
    pairs = _items(obj, "loss_comparison", ("steps", "predicted_loss", "observed_mean_loss", "observed_stderr"))
    if label is not None:
        if len(pairs) != 1:
            raise ValueError("loss_comparison_plot(): label names a single comparison; pass a dict to label several")
        pairs = [(label, pairs[0][1])]
    figure, (axis,) = _axes(ax, None, 1, "loss_comparison_plot")
    artists: dict[str, list[Any]] = {"observed": [], "band": [], "predicted": []}
    records = []
    for i, (name, c) in enumerate(pairs):
        steps = _finite(c.steps)
        predicted, mean, stderr = _finite(c.predicted_loss), _finite(c.observed_mean_loss), _finite(c.observed_stderr)
        _same_length(
            "loss_comparison", steps=steps, predicted_loss=predicted, observed_mean_loss=mean, observed_stderr=stderr
        )
        lo, hi = mean - band * stderr, mean + band * stderr
        if log:
            lo = np.where(lo > 0.0, lo, np.nan)
        prefix = f"{name}: " if name else ""
        colour = _colour(i)
        artists["band"].append(
            axis.fill_between(steps, lo, hi, color=colour, alpha=0.22, linewidth=0, label=f"_{prefix}band")
        )
        artists["observed"].append(
            axis.plot(steps, mean, color=colour, label=f"{prefix}observed (mean ± {band:g} s.e.)")[0]
        )
        artists["predicted"].append(
            axis.plot(
                steps,
                predicted,
                color="black" if len(pairs) == 1 else colour,
                linestyle="--",
                linewidth=1.5,
                label=f"{prefix}predicted",
            )[0]
        )
        records.append({"label": name, "steps": steps, "predicted": predicted, "observed": mean, "lo": lo, "hi": hi})
    if log:
        _log_y(axis)
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    _title(axis, title, pairs[0][0] if len(pairs) == 1 and pairs[0][0] else None)
    leg = _legend(axis, legend, 2, False)
    return PlotResult(figure, (axis,), {k: tuple(v) for k, v in artists.items()}, leg, {"series": records})


@_styled
def expected_loss_plot(
    obj: Any,
    ax: Any = None,
    *,
    log: bool = True,
    parts: bool = True,
    label: str | None = None,
    legend: bool | None = None,
    title: str | None = None,
) -> PlotResult:
    """The predicted expected loss on the noisy quadratic, step by step, with its steady state.

    Parameters
    ----------
    obj : NoisyQuadraticPrediction, list or dict
        Needs ``steps``, ``expected_loss`` and ``steady_state_loss`` (and
        ``bias_loss``, ``variance_loss`` for ``parts``); ``name`` labels it.
    ax : Axes, optional
        Default: a new figure.
    log : bool
        Logarithmic loss axis (default).
    parts : bool
        For a single prediction, also draw the parts from the mean (bias) and
        from the noise (variance).
    label, legend, title
        As in :func:`bode_plot`.

    Returns
    -------
    PlotResult
        ``artists["loss"]``, ``artists["steady_state"]`` (and ``"bias"``,
        ``"variance"``); ``data["series"]``: label, steps, loss, steady_state.

    Raises
    ------
    ValueError
        For a single ``label`` with several predictions.

    Examples
    --------
    >>> from optfilters.noisy_quadratic import predict
    >>> from optfilters.plot import expected_loss_plot
    >>> p = predict("sgd", lr=0.1, curvatures=1.0, noise_var=1.0, init=1.0, steps=3)
    >>> r = expected_loss_plot(p)
    >>> r.artists["loss"][0].get_ydata().round(4).tolist()
    [0.5, 0.41, 0.3371, 0.2781]
    >>> r.close()
    """
    pairs = _items(obj, "expected_loss", ("steps", "expected_loss", "steady_state_loss"))
    if label is not None:
        if len(pairs) != 1:
            raise ValueError("expected_loss_plot(): label names a single prediction; pass a dict to label several")
        pairs = [(label, pairs[0][1])]
    figure, (axis,) = _axes(ax, None, 1, "expected_loss_plot")
    artists: dict[str, list[Any]] = {"loss": [], "steady_state": [], "bias": [], "variance": []}
    records = []
    for i, (name, p) in enumerate(pairs):
        steps, loss = _finite(p.steps), _finite(p.expected_loss)
        _same_length("expected_loss_plot", steps=steps, expected_loss=loss)
        colour = _colour(i)
        artists["loss"].append(axis.plot(steps, loss, color=colour, label=name or "expected loss")[0])
        steady = float(p.steady_state_loss) if p.steady_state_loss is not None else math.nan
        if math.isfinite(steady) and steady > 0.0:
            artists["steady_state"].append(
                axis.axhline(steady, color=colour, linestyle=":", linewidth=1.0, label=f"_{name} steady state")
            )
        if parts and len(pairs) == 1 and hasattr(p, "bias_loss"):
            artists["bias"].append(
                axis.plot(
                    steps, _finite(p.bias_loss), color="0.35", linestyle="--", linewidth=1.1, label="from the mean"
                )[0]
            )
            artists["variance"].append(
                axis.plot(
                    steps, _finite(p.variance_loss), color="0.35", linestyle="-.", linewidth=1.1, label="from the noise"
                )[0]
            )
        records.append({"label": name, "steps": steps, "loss": loss, "steady_state": steady})
    if log:
        _log_y(axis)
    axis.set_xlabel("step")
    axis.set_ylabel("expected loss (dotted: steady state)")
    _title(axis, title, pairs[0][0] if len(pairs) == 1 and pairs[0][0] else None)
    leg = _legend(axis, legend, len(pairs) + (2 if parts and len(pairs) == 1 else 0), label is not None)
    return PlotResult(figure, (axis,), {k: tuple(v) for k, v in artists.items() if v}, leg, {"series": records})


@_styled
def empirical_response_plot(
    obj: Any,
    ax: Any = None,
    *,
    fig: Any = None,
    db: bool = True,
    log: bool = False,
    coherence: bool | None = None,
    label: str | None = None,
    legend: bool | None = True,
    title: str | None = None,
) -> PlotResult:
    """Empirical ``|H|`` (from a real run's gradient and update sequences) against the model's prediction.

    Parameters
    ----------
    obj : EmpiricalResponse-like, list or dict
        Needs ``freqs`` (cycles/step), ``magnitude`` (empirical ``|H|``),
        ``predicted_magnitude``; ``coherence`` is drawn in a second panel when
        present; ``name`` labels it.
    ax : Axes or sequence of 2 Axes, optional
        One Axes draws the magnitudes only; default: a new figure.
    fig : Figure, optional
        Figure to add the panels to when ``ax`` is None.
    db : bool
        Magnitudes in dB.
    log : bool
        Logarithmic frequency axis (non-positive frequencies left out).
    coherence : bool, optional
        Draw the coherence panel (default: for a new figure when the objects have coherence).
    label : str, optional
        Label of a single response.
    legend : bool, optional
        Draw the legend (default True).
    title : str, optional
        Title of the magnitude panel.

    Returns
    -------
    PlotResult
        ``artists["empirical"]``, ``artists["predicted"]`` and ``artists["coherence"]`` (if drawn).

    Raises
    ------
    ValueError
        For ``coherence=True`` without coherence data, or a single ``label`` with several responses.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from optfilters.plot import empirical_response_plot
    >>> f = np.linspace(0.0, 0.5, 5)
    >>> e = SimpleNamespace(freqs=f, magnitude=np.full(5, 10.0), predicted_magnitude=np.full(5, 10.0),
    ...                     coherence=np.ones(5), name="momentum")
    >>> r = empirical_response_plot(e)
    >>> r.artists["empirical"][0].get_ydata().tolist()
    [20.0, 20.0, 20.0, 20.0, 20.0]
    >>> r.close()
    """
    pairs = _items(obj, "empirical_response", ("freqs", "magnitude", "predicted_magnitude"))
    if label is not None:
        if len(pairs) != 1:
            raise ValueError("empirical_response_plot(): label names a single response; pass a dict to label several")
        pairs = [(label, pairs[0][1])]
    has_coherence = all(getattr(e, "coherence", None) is not None for _, e in pairs)
    if coherence is None:
        coherence = (ax is None and has_coherence) or (ax is not None and len(_as_axes_list(ax)) == 2)
    if coherence and not has_coherence:
        raise ValueError("empirical_response_plot(): coherence=True needs objects with a coherence attribute")
    figure, axes = _axes(
        ax, fig, 2 if coherence else 1, "empirical_response", figsize=(6.4, 5.6) if coherence else None
    )
    artists: dict[str, list[Any]] = {"empirical": [], "predicted": []}
    if coherence:
        artists["coherence"] = []
    records = []

    def level(values: FloatArray) -> FloatArray:
        if not db:
            return values
        with np.errstate(divide="ignore"):
            return np.asarray(20.0 * np.log10(np.abs(values)), dtype=np.float64)

    for i, (name, e) in enumerate(pairs):
        freqs, emp, pred = _finite(e.freqs), _finite(e.magnitude), _finite(e.predicted_magnitude)
        _same_length("empirical_response_plot", freqs=freqs, magnitude=emp, predicted_magnitude=pred)
        keep = freqs > 0.0 if log else np.ones(freqs.shape, dtype=bool)
        prefix = f"{name}: " if name else ""
        colour = _colour(i)
        emp_y, pred_y = _finite(level(emp[keep])), _finite(level(pred[keep]))
        artists["empirical"].append(
            axes[0].plot(freqs[keep], emp_y, color=colour, linewidth=0.9, alpha=0.8, label=f"{prefix}empirical |H|")[0]
        )
        artists["predicted"].append(
            axes[0].plot(
                freqs[keep],
                pred_y,
                color="black" if len(pairs) == 1 else colour,
                linestyle="--",
                linewidth=1.8,
                label=f"{prefix}predicted |H|",
            )[0]
        )
        record = {"label": name, "freqs": freqs[keep], "empirical": emp_y, "predicted": pred_y}
        if coherence:
            coh = _finite(e.coherence)
            _same_length("empirical_response_plot", freqs=freqs, coherence=coh)
            artists["coherence"].append(axes[1].plot(freqs[keep], coh[keep], color=colour, linewidth=1.0)[0])
            record["coherence"] = coh[keep]
        records.append(record)
    for a in axes:
        if log:
            a.set_xscale("log")
    axes[0].set_ylabel("magnitude (dB)" if db else "magnitude |H|")
    if coherence:
        axes[1].set_ylabel("coherence")
        axes[1].set_ylim(0.0, 1.05)
    axes[-1].set_xlabel("frequency (cycles/step)")
    _title(axes[0], title, pairs[0][0] if len(pairs) == 1 and pairs[0][0] else None)
    leg = _legend(axes[0], legend, 2, False)
    return PlotResult(figure, axes, {k: tuple(v) for k, v in artists.items()}, leg, {"series": records})


@_styled
def sharpness_plot(
    obj: Any,
    ax: Any = None,
    *,
    thresholds: Mapping[str, float] | None = None,
    log: bool = False,
    label: str | None = None,
    legend: bool | None = True,
    title: str | None = None,
) -> PlotResult:
    """Sharpness (top Hessian eigenvalue) during training against the predicted edge-of-stability threshold.

    Parameters
    ----------
    obj : SharpnessTrace-like, list or dict
        Needs ``steps``, ``sharpness`` and ``threshold`` (a number, or one
        value per step); ``lr`` and ``name`` label it.  Each trace's
        threshold is a dashed line in its colour.
    ax : Axes, optional
        Default: a new figure.
    thresholds : mapping of str to float, optional
        Extra reference levels (e.g. ``{"2/lr": 2 / lr}``), drawn dotted in grey and labelled.
    log : bool
        Logarithmic sharpness axis.
    label : str, optional
        Label of a single trace.
    legend : bool, optional
        Draw the legend (default True).
    title : str, optional
        Title.

    Returns
    -------
    PlotResult
        ``artists["sharpness"]``, ``artists["threshold"]``, ``artists["extra"]``.

    Raises
    ------
    ValueError
        For a single ``label`` with several traces.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from optfilters.plot import sharpness_plot
    >>> t = SimpleNamespace(steps=np.arange(3), sharpness=np.array([5.0, 15.0, 19.0]), threshold=20.0,
    ...                     lr=0.1, name="gd")
    >>> r = sharpness_plot(t)
    >>> r.artists["threshold"][0].get_ydata().tolist()
    [20.0, 20.0, 20.0]
    >>> r.close()
    """
    pairs = _items(obj, "sharpness", ("steps", "sharpness", "threshold"))
    if label is not None:
        if len(pairs) != 1:
            raise ValueError("sharpness_plot(): label names a single trace; pass a dict to label several")
        pairs = [(label, pairs[0][1])]
    figure, (axis,) = _axes(ax, None, 1, "sharpness_plot")
    artists: dict[str, list[Any]] = {"sharpness": [], "threshold": [], "extra": []}
    records = []
    for i, (name, tr) in enumerate(pairs):
        steps, values = _finite(tr.steps), _finite(tr.sharpness)
        _same_length("sharpness_plot", steps=steps, sharpness=values)
        threshold = _finite(np.broadcast_to(np.asarray(tr.threshold, dtype=np.float64), steps.shape))
        lr = getattr(tr, "lr", None)
        text = name or "sharpness"
        if lr is not None:
            text = f"{text} (lr={_fmt(float(lr))})"
        colour = _colour(i)
        artists["sharpness"].append(axis.plot(steps, values, color=colour, label=text)[0])
        level = np.unique(threshold[np.isfinite(threshold)])
        tlabel = f"threshold {level[0]:.4g}" if level.size == 1 else "threshold"
        artists["threshold"].append(
            axis.plot(steps, threshold, color=colour, linestyle="--", linewidth=1.3, label=tlabel)[0]
        )
        records.append({"label": text, "steps": steps, "sharpness": values, "threshold": threshold})
    for j, (name, value) in enumerate((thresholds or {}).items()):
        artists["extra"].append(
            axis.axhline(
                float(value),
                color="0.35",
                linestyle=(0, (1, 1 + j)),
                linewidth=1.2,
                label=f"{name} = {float(value):.4g}",
            )
        )
    if log:
        _log_y(axis)
    axis.set_xlabel("step")
    axis.set_ylabel("sharpness (largest Hessian eigenvalue)")
    _title(axis, title, None)
    leg = _legend(axis, legend, 2, False)
    return PlotResult(figure, (axis,), {k: tuple(v) for k, v in artists.items()}, leg, {"series": records})


# ----------------------------------------------------------------------------- trajectories


def _contour_levels(z: FloatArray, count: int) -> FloatArray:
    positive = z[np.isfinite(z) & (z > 0.0)]
    top = float(positive.max())
    bottom = max(float(positive.min()), top * 1e-4)
    return np.geomspace(bottom, top, count)


@_styled
def trajectories_plot(
    function: Any,
    optimizers: Any = None,
    lrs: float | Sequence[float] | None = None,
    ax: Any = None,
    fig: Any = None,
    *,
    steps: int = 100,
    start: Sequence[float] | None = None,
    engine: str = "bridge",
    bound: float = 1e6,
    levels: int = 14,
    max_cols: int | None = None,
    markers: bool = True,
    title: str | None = None,
) -> PlotResult:
    """Optimizer paths over the contours of a 2-D test function, one panel per (optimizer, lr).

    Draws a :class:`~optfilters.trajectory.TrajectoryGrid` (the result of
    :func:`optfilters.trajectory.run_trajectories`, which runs the optimizers
    through the PyTorch bridge, torch.optim or the numpy reference executor).
    Given a test function and optimizers instead, the runs are computed first
    (deprecated: computing is :mod:`optfilters.trajectory`'s job; ``lrs``,
    ``steps``, ``start``, ``engine`` and ``bound`` only apply then).  With ``ax`` every path is overlaid on that one
    axes; otherwise rows are optimizers and columns learning rates, as on
    the lecture's slides.  The view is the function's ``xlim x ylim``:
    diverging paths leave it (their data are kept whole in ``data["runs"]``).

    Parameters
    ----------
    function : TrajectoryGrid, str or Function2D
        The runs to draw; or (deprecated) ``"quadratic"`` (``f = 10 x^2 + 100 y^2``),
        ``"rosenbrock"`` (``b = 10``) or a :class:`~optfilters.trajectory.Function2D` to run first.
    optimizers : str, (str, dict), OptimizerModel, list or dict, optional
        With a test function: see :func:`optfilters.trajectory.optimizer_specs`.
    lrs : float or sequence of float, optional
        Learning rates; default: the lecture's grid for each optimizer on this function.
    ax : Axes, optional
        Overlay every run on this axes.
    fig : Figure, optional
        Figure for the grid of panels (default: a new one).
    steps : int
        Steps per run.
    start : sequence of 2 floats, optional
        Starting point (default: the function's).
    engine : {"bridge", "torch", "numpy", "auto"}
        What executes the optimizer steps.
    bound : float
        A run stops once a coordinate exceeds this magnitude.
    levels : int
        Number of (log-spaced) contour levels.
    max_cols : int, optional
        Wrap each optimizer's row of panels after this many columns (default: no wrapping).
    markers : bool
        Mark every iterate.
    title : str, optional
        Figure title (default: the function's formula).

    Returns
    -------
    PlotResult
        ``artists["paths"]`` (one line per run, row by row), ``artists["contours"]``,
        ``artists["start"]``, ``artists["minimum"]``; ``axes``: one panel per
        run (grid) or the one axes (overlay); ``data["runs"]``: the
        :class:`TrajectoryRun` objects as ``runs[i][j]`` (optimizer ``i``,
        lr ``j``), ``data["function"]``: the :class:`Function2D`.

    Raises
    ------
    ValueError
        For ``optimizers`` with computed runs or a test function without them, or ``ax`` holding several Axes.

    Examples
    --------
    >>> from optfilters.plot import trajectories_plot
    >>> from optfilters.trajectory import run_trajectories
    >>> runs = run_trajectories("quadratic", "gd", lrs=[0.005, 0.011], steps=60, engine="numpy")
    >>> r = trajectories_plot(runs)
    >>> [run.diverged for run in r.data["runs"][0]]
    [False, True]
    >>> r.close()
    """
    import matplotlib.pyplot as plt

    levels = _check_int("levels", levels, 2)
    if max_cols is not None:
        max_cols = _check_int("max_cols", max_cols, 1)
    if hasattr(function, "runs") and hasattr(function, "function"):
        if optimizers is not None:
            raise ValueError("trajectories_plot(): optimizers= goes with a test function, not with computed runs")
        grid_runs = function
    else:
        import importlib
        import warnings

        warnings.warn(
            "trajectories_plot(function, optimizers, ...) is deprecated: compute the runs with "
            "optfilters.trajectory.run_trajectories(...) and pass them (or call their .plot())",
            DeprecationWarning,
            stacklevel=3,
        )
        if optimizers is None:
            raise ValueError("trajectories_plot(): a test function needs optimizers")
        compute = importlib.import_module("optfilters.trajectory").run_trajectories
        grid_runs = compute(function, optimizers, lrs, steps=steps, start=start, engine=engine, bound=bound)
    f = grid_runs.function
    runs = grid_runs.runs
    X, Y, Z = f.grid(161)
    contour_levels = _contour_levels(Z, levels)
    longest = max(len(row) for row in runs)
    cols = longest if max_cols is None else min(longest, max_cols)
    # Panel (r, c) of each run: every optimizer starts a new row and wraps after `cols` panels.
    positions: list[list[tuple[int, int]]] = []
    rows = 0
    for row in runs:
        positions.append([(rows + j // cols, j % cols) for j in range(len(row))])
        rows += -(-len(row) // cols)
    overlay = ax is not None
    if overlay:
        if len(_as_axes_list(ax)) != 1:
            raise ValueError("trajectories_plot(): ax overlays every run on one Axes; use fig= for a grid of panels")
        panel = _as_axes_list(ax)[0]
        figure = panel.figure
        grid = np.array([[panel]], dtype=object)
    else:
        if fig is None:
            fig = plt.figure(figsize=(min(2.6 * cols + 0.6, 26.0), min(2.4 * rows + 0.6, 20.0)))
        grid = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
        figure = fig
    artists: dict[str, list[Any]] = {"paths": [], "contours": [], "start": [], "minimum": []}
    drawn: list[Any] = []

    def background(axis: Any) -> None:
        artists["contours"].append(axis.contour(X, Y, Z, levels=contour_levels, colors="0.6", linewidths=0.6, zorder=1))
        artists["minimum"].append(
            axis.plot(
                *f.minimum, marker="*", markersize=11, color="black", linestyle="none", zorder=4, label="_minimum"
            )[0]
        )
        axis.set_xlim(*f.xlim)
        axis.set_ylim(*f.ylim)
        axis.grid(False)
        drawn.append(axis)

    if overlay:
        background(grid[0, 0])
    used: set[tuple[int, int]] = set()
    k = 0
    for i, row in enumerate(runs):
        for j, run in enumerate(row):
            r, c = (0, 0) if overlay else positions[i][j]
            axis = grid[r, c]
            if not overlay:
                background(axis)
                used.add((r, c))
            colour = _colour(k if overlay else i)
            text = f"{run.optimizer}, lr={run.lr:g}" + (" (diverged)" if run.diverged else "")
            artists["paths"].append(
                axis.plot(
                    run.params[:, 0],
                    run.params[:, 1],
                    color=colour,
                    linewidth=1.2,
                    marker="o" if markers else None,
                    markersize=2.0,
                    label=text,
                    zorder=3,
                )[0]
            )
            artists["start"].append(
                axis.plot(
                    run.params[0, 0],
                    run.params[0, 1],
                    marker="o",
                    markersize=6,
                    markerfacecolor="white",
                    color=colour,
                    linestyle="none",
                    zorder=5,
                    label="_start",
                )[0]
            )
            if not overlay:
                axis.set_title(text, fontsize=9)
            k += 1
    if not overlay:
        for r in range(rows):
            for c in range(cols):
                if (r, c) not in used:
                    grid[r, c].set_axis_off()
    for axis in drawn:
        axis.set_xlabel("x")
        axis.set_ylabel("y")
        axis.set_xlim(*f.xlim)
        axis.set_ylim(*f.ylim)
    leg = grid[0, 0].legend(loc="best") if overlay else None
    text = f.formula if title is None else title
    if text:
        if overlay:
            grid[0, 0].set_title(text)
        else:
            figure.suptitle(text)
    data = {"runs": runs, "function": f, "engine": runs[0][0].engine}
    return PlotResult(figure, tuple(drawn), {k: tuple(v) for k, v in artists.items()}, leg, data)


# ----------------------------------------------------------------------------- control readings of the loop


def _phase_degrees(values: Any) -> FloatArray:
    return np.asarray(np.degrees(np.unwrap(np.angle(values))), dtype=np.float64)


@_styled
def margins_plot(
    obj: Any, ax: Any = None, *, points: int = 2048, fig: Any = None, title: str | None = None
) -> PlotResult:
    """The loop gain ``L = x z^-1 H / (1 - z^-1)`` as a Bode diagram, with the gain and phase margins marked.

    Parameters
    ----------
    obj : Margins
        From :func:`optfilters.margins.margins` (needs ``loop``, ``gain_margin``,
        ``failure_frequency``, ``phase_margin``, ``crossover_frequency``).
    ax : sequence of two Axes, optional
        Magnitude and phase panels (default: a new figure).
    points : int
        Frequencies on a logarithmic grid from 1e-4 to 0.5 cycles/step.
    fig : Figure, optional
        Figure to draw the new panels into.
    title : str, optional
        Default: the optimizer's name and the operating point.

    Returns
    -------
    PlotResult
        ``artists["magnitude"]``, ``artists["phase"]``, ``artists["gain_margin"]``, ``artists["phase_margin"]``;
        ``data`` has ``freqs``, ``magnitude_db`` and ``phase_deg``.

    Raises
    ------
    ValueError
        Without a :class:`~optfilters.margins.Margins` result that carries its loop.

    Examples
    --------
    >>> from optfilters.margins import margins
    >>> from optfilters.plot import margins_plot
    >>> r = margins_plot(margins("momentum", 0.05, momentum=0.9))
    >>> round(float(r.data["magnitude_db"][-1]), 3)     # |L(-1)| = 0.05/3.8 = 1/GM
    -37.616
    >>> r.close()
    """
    loop = getattr(obj, "loop", None)
    if loop is None:
        raise ValueError("margins_plot() needs a Margins result with its loop (optfilters.margins.margins)")
    figure, (mag_ax, phase_ax) = _axes(ax, fig, 2, "margins_plot", figsize=(6.4, 5.6))
    freqs = np.geomspace(1e-4, 0.5, _check_int("points", points, 8))
    value = loop.open_loop(freqs)
    with np.errstate(divide="ignore"):
        mag = 20.0 * np.log10(np.abs(value))
    phase = _phase_degrees(value)
    colour = _colour(0)
    mag_line = mag_ax.plot(freqs, mag, color=colour, label="|L|")[0]
    phase_line = phase_ax.plot(freqs, phase, color=colour, label="angle L")[0]
    mag_ax.axhline(0.0, **_GUIDE)
    for k in range(-3, 2):
        if phase.min() - 10 < -180.0 + 360.0 * k < phase.max() + 10:
            phase_ax.axhline(-180.0 + 360.0 * k, **_GUIDE)
    artists: dict[str, tuple[Any, ...]] = {"magnitude": (mag_line,), "phase": (phase_line,)}
    gm = float(obj.gain_margin)
    f_gm = obj.failure_frequency
    if math.isfinite(gm) and gm > 0 and f_gm is not None:
        at = max(float(f_gm), 1e-4)
        level = -20.0 * math.log10(gm)
        arrow = mag_ax.annotate(
            "",
            xy=(at, 0.0),
            xytext=(at, level),
            arrowprops={"arrowstyle": "<->", "color": "#D55E00", "linewidth": 1.4},
        )
        label = mag_ax.plot([at], [level], "o", color="#D55E00", label=f"gain margin x{gm:.4g} ({-level:.1f} dB)")[0]
        artists["gain_margin"] = (arrow, label)
    pm, f_pm = float(obj.phase_margin), obj.crossover_frequency
    if math.isfinite(pm) and f_pm is not None and f_pm > 0:
        here = float(np.interp(math.log(f_pm), np.log(freqs), phase))
        base = here - pm
        arrow = phase_ax.annotate(
            "",
            xy=(f_pm, here),
            xytext=(f_pm, base),
            arrowprops={"arrowstyle": "<->", "color": "#009E73", "linewidth": 1.4},
        )
        dm = float(obj.delay_margin)
        text = f"phase margin {pm:.2f}° at {2 * math.pi * f_pm:.3g} rad/step (delay margin {dm:.3g} steps)"
        label = phase_ax.plot([f_pm], [here], "o", color="#009E73", label=text)[0]
        artists["phase_margin"] = (arrow, label)
    for a in (mag_ax, phase_ax):
        a.set_xscale("log")
    mag_ax.set_ylabel("|L| (dB)")
    phase_ax.set_ylabel("angle L (degrees)")
    phase_ax.set_xlabel("frequency (cycles/step)")
    mag_ax.legend(loc="upper right", fontsize="small")
    phase_ax.legend(loc="lower left", fontsize="small")
    _title(mag_ax, title, f"{obj.name}: loop gain at lr·h = {obj.lr_curvature:g}")
    data = {"freqs": freqs, "magnitude_db": mag, "phase_deg": phase}
    return PlotResult(figure, (mag_ax, phase_ax), artists, None, data)


@_styled
def root_locus_plot(obj: Any, ax: Any = None, *, title: str | None = None, colorbar: bool = True) -> PlotResult:
    """Closed-loop poles in the z-plane as ``lr * h`` sweeps, coloured by ``log10(lr * h)``, with the unit circle.

    Parameters
    ----------
    obj : RootLocus
        Needs ``lr_curvature``, ``poles``, ``open_loop_poles``, ``zeros`` and ``crossings``.
    ax : Axes, optional
        Axes to draw into (default: a new figure).
    title : str, optional
        Axes title (None: the function's default; ``\"\"`` for none).
    colorbar : bool
        Add a colour bar.

    Returns
    -------
    PlotResult
        ``artists["locus"]``, ``artists["open_loop_poles"]``, ``artists["zeros"]``,
        ``artists["crossings"]``, ``artists["unit_circle"]``.

    Raises
    ------
    ValueError
        For an object that is not a :class:`~optfilters.margins.RootLocus`.

    Examples
    --------
    >>> from optfilters.margins import root_locus
    >>> from optfilters.plot import root_locus_plot
    >>> r = root_locus_plot(root_locus("momentum", [0.1, 1.0, 3.0], momentum=0.9))
    >>> r.artists["locus"][0].get_offsets().shape
    (6, 2)
    >>> r.close()
    """
    for attr in ("lr_curvature", "poles", "open_loop_poles", "zeros", "crossings"):
        if not hasattr(obj, attr):
            raise ValueError(f"root_locus_plot() needs a RootLocus; {type(obj).__name__} lacks {attr}")
    figure, (axis,) = _axes(ax, None, 1, "root_locus_plot", figsize=(5.6, 5.0))
    x = _finite(obj.lr_curvature)
    poles = np.asarray(obj.poles, dtype=np.complex128)
    colour_values = np.repeat(np.log10(np.where(x > 0, x, np.nan)), poles.shape[1])
    flat = poles.ravel()
    locus = axis.scatter(flat.real, flat.imag, c=colour_values, s=6, cmap="viridis", zorder=3)
    t = np.linspace(0.0, 2.0 * math.pi, 400)
    circle = axis.plot(np.cos(t), np.sin(t), label="_unit circle", **_GUIDE)[0]
    ol = np.asarray(obj.open_loop_poles, dtype=np.complex128)
    zs = np.asarray(obj.zeros, dtype=np.complex128)
    open_art = axis.plot(ol.real, ol.imag, "x", color="black", markersize=8, label="poles at lr = 0")[0]
    zero_art = axis.plot(zs.real, zs.imag, "o", mfc="none", color="black", markersize=7, label="zeros (lr -> inf)")[0]
    cross = [(xc, f) for xc, f in obj.crossings if xc > 0]
    cz = np.array([np.exp(2j * math.pi * f) for _, f in cross], dtype=np.complex128)
    cross_art = axis.plot(
        np.concatenate([cz.real, cz.real]),
        np.concatenate([cz.imag, -cz.imag]),
        "D",
        color="#D55E00",
        markersize=6,
        label="unit-circle crossings",
    )[0]
    artists: dict[str, tuple[Any, ...]] = {
        "locus": (locus,),
        "open_loop_poles": (open_art,),
        "zeros": (zero_art,),
        "crossings": (cross_art,),
        "unit_circle": (circle,),
    }
    point = getattr(obj, "operating_point", None)
    if point is not None:
        i = int(np.argmin(np.abs(x - point)))
        marked = poles[i]
        artists["operating_point"] = (
            axis.plot(marked.real, marked.imag, "*", color="#CC79A7", markersize=12, label=f"lr·h = {x[i]:.4g}")[0],
        )
    if colorbar:
        cb = figure.colorbar(locus, ax=axis)
        cb.set_label("log10(lr · h)")
        artists["colorbar"] = (cb,)
    axis.set_aspect("equal", adjustable="datalim")
    axis.set_xlabel("Re z")
    axis.set_ylabel("Im z")
    axis.legend(loc="upper left", fontsize="x-small")
    _title(axis, title, f"{getattr(obj, 'name', '')}: root locus over lr·h")
    return PlotResult(figure, (axis,), artists, None, {"lr_curvature": x, "poles": poles})


@_styled
def sensitivity_plot(obj: Any, ax: Any = None, *, title: str | None = None) -> PlotResult:
    """``|S|`` and ``|T|`` in dB over frequency, with their peaks marked.

    Parameters
    ----------
    obj : Sensitivity
        Needs ``freqs``, ``S``, ``T``, ``peak_s``, ``peak_s_frequency``, ``peak_t``, ``peak_t_frequency``.
    ax : Axes, optional
        Axes to draw into (default: a new figure).
    title : str, optional
        Axes title (None: the function's default; ``\"\"`` for none).

    Returns
    -------
    PlotResult
        ``artists["S"]``, ``artists["T"]``, ``artists["peaks"]``.

    Raises
    ------
    ValueError
        For an object that is not a :class:`~optfilters.margins.Sensitivity`.

    Examples
    --------
    >>> from optfilters.margins import sensitivity
    >>> from optfilters.plot import sensitivity_plot
    >>> r = sensitivity_plot(sensitivity("momentum", 0.05, momentum=0.9, points=65))
    >>> len(r.artists["S"][0].get_xdata())
    65
    >>> r.close()
    """
    for attr in ("freqs", "S", "T", "peak_s", "peak_t"):
        if not hasattr(obj, attr):
            raise ValueError(f"sensitivity_plot() needs a Sensitivity; {type(obj).__name__} lacks {attr}")
    figure, (axis,) = _axes(ax, None, 1, "sensitivity_plot")
    f = _finite(obj.freqs)
    with np.errstate(divide="ignore"):
        s_db = 20.0 * np.log10(np.abs(obj.S))
        t_db = 20.0 * np.log10(np.abs(obj.T))
    s_line = axis.plot(f, s_db, color=_colour(0), label="|S| = |1/(1+L)| (moving optimum -> error)")[0]
    t_line = axis.plot(f, t_db, color=_colour(1), label="|T| = |L/(1+L)| (h x gradient noise -> parameter)")[0]
    peaks = axis.plot(
        [obj.peak_s_frequency, obj.peak_t_frequency],
        [20.0 * math.log10(obj.peak_s), 20.0 * math.log10(obj.peak_t)],
        "o",
        color="black",
        label=f"peaks |S| {obj.peak_s:.3g}, |T| {obj.peak_t:.3g}",
    )[0]
    axis.axhline(0.0, **_GUIDE)
    finite = np.concatenate([s_db[np.isfinite(s_db)], t_db[np.isfinite(t_db)]])
    if finite.size:
        axis.set_ylim(max(float(finite.min()), -60.0) - 3.0, float(finite.max()) + 6.0)
    axis.set_xlabel("frequency (cycles/step)")
    axis.set_ylabel("magnitude (dB)")
    axis.legend(loc="lower right", fontsize="x-small")
    _title(axis, title, f"{getattr(obj, 'name', '')}: sensitivity at lr·h = {getattr(obj, 'lr_curvature', math.nan):g}")
    return PlotResult(
        figure, (axis,), {"S": (s_line,), "T": (t_line,), "peaks": (peaks,)}, None, {"freqs": f, "S_db": s_db}
    )


@_styled
def closed_loop_step_plot(obj: Any, ax: Any = None, *, title: str | None = None) -> PlotResult:
    """The parameter's response to a unit step of the optimum, with overshoot and the 2% settling band.

    Parameters
    ----------
    obj : StepInfo
        Needs ``response``, ``final_value``, ``overshoot``, ``settling_steps``.
    ax : Axes, optional
        Axes to draw into (default: a new figure).
    title : str, optional
        Axes title (None: the function's default; ``\"\"`` for none).

    Returns
    -------
    PlotResult
        ``artists["response"]``, ``artists["band"]``, ``artists["settling"]``.

    Raises
    ------
    ValueError
        For an object that is not a :class:`~optfilters.margins.StepInfo`.

    Examples
    --------
    >>> from optfilters.margins import step_info
    >>> from optfilters.plot import closed_loop_step_plot
    >>> r = closed_loop_step_plot(step_info("sgd", 0.5))
    >>> r.artists["response"][0].get_ydata()[:3].tolist()
    [0.0, 0.5, 0.75]
    >>> r.close()
    """
    for attr in ("response", "final_value", "overshoot", "settling_steps"):
        if not hasattr(obj, attr):
            raise ValueError(f"closed_loop_step_plot() needs a StepInfo; {type(obj).__name__} lacks {attr}")
    figure, (axis,) = _axes(ax, None, 1, "closed_loop_step_plot")
    y = _finite(obj.response)
    steps = np.arange(y.size)
    line = axis.plot(steps, y, color=_colour(0), drawstyle="steps-post", label="theta_t (optimum moved to 1)")[0]
    artists: dict[str, tuple[Any, ...]] = {"response": (line,)}
    final = float(obj.final_value)
    if math.isfinite(final):
        artists["band"] = (axis.axhspan(final - 0.02 * abs(final), final + 0.02 * abs(final), color="0.85", zorder=0),)
        settle = int(obj.settling_steps)
        artists["settling"] = (
            axis.axvline(settle, color="#D55E00", linestyle=":", linewidth=1.2, label=f"settles (2%) at step {settle}"),
        )
        axis.plot([], [], " ", label=f"overshoot {100 * float(obj.overshoot):.1f}%")
    axis.set_xlabel("step")
    axis.set_ylabel("parameter")
    axis.legend(loc="lower right", fontsize="small")
    _title(axis, title, f"{getattr(obj, 'name', '')}: closed-loop step response")
    return PlotResult(figure, (axis,), artists, None, {"steps": steps, "response": y})


@_styled
def staleness_rates_plot(obj: Any, ax: Any = None, *, title: str | None = None) -> PlotResult:
    """Closed-loop rate against gradient staleness ``d``, one line per operating point, with rate = 1.

    Parameters
    ----------
    obj : StalenessRates
        Needs ``staleness``, ``lr_curvature``, ``rate`` (shape ``(points, staleness)``).
    ax : Axes, optional
        Axes to draw into (default: a new figure).
    title : str, optional
        Axes title (None: the function's default; ``\"\"`` for none).

    Returns
    -------
    PlotResult
        ``artists["rate"]`` (one line per operating point).

    Raises
    ------
    ValueError
        For an object that is not a :class:`~optfilters.margins.StalenessRates`.

    Examples
    --------
    >>> from optfilters.margins import staleness_rates
    >>> from optfilters.plot import staleness_rates_plot
    >>> r = staleness_rates_plot(staleness_rates("momentum", [0.05, 0.2], range(4), momentum=0.9))
    >>> len(r.artists["rate"])
    2
    >>> r.close()
    """
    for attr in ("staleness", "lr_curvature", "rate"):
        if not hasattr(obj, attr):
            raise ValueError(f"staleness_rates_plot() needs a StalenessRates; {type(obj).__name__} lacks {attr}")
    figure, (axis,) = _axes(ax, None, 1, "staleness_rates_plot")
    d = _finite(obj.staleness)
    rate = _finite(obj.rate)
    lines = []
    for i, (x, row) in enumerate(zip(_finite(obj.lr_curvature), rate, strict=True)):
        lines.append(axis.plot(d, row, "o-", color=_colour(i), label=f"lr·h = {x:g}")[0])
    axis.axhline(1.0, **_GUIDE)
    axis.set_xlabel("gradient staleness d (steps)")
    axis.set_ylabel("rate (largest |closed-loop pole|)")
    axis.legend(loc="best", fontsize="small")
    _title(axis, title, f"{getattr(obj, 'name', '')}: rate with d-step-stale gradients")
    return PlotResult(figure, (axis,), {"rate": tuple(lines)}, None, {"staleness": d, "rate": rate})


@_styled
def frozen_edges_plot(obj: Any, ax: Any = None, *, base: bool = False, title: str | None = None) -> PlotResult:
    """The frozen-time stability edge of ``lr * h`` against the step ``t`` (log axis), with its ``t -> inf`` limit.

    Parameters
    ----------
    obj : FrozenEdges, list or dict
        Needs ``steps`` and ``edge`` (and ``limit``, ``base_edge``); ``name`` labels it.
    ax : Axes, optional
        Axes to draw into (default: a new figure).
    base : bool
        Draw the edge in the base learning rate (``base_edge``: with a schedule).
    title : str, optional
        Axes title (None: the function's default; ``\"\"`` for none).

    Returns
    -------
    PlotResult
        ``artists["edge"]`` and ``artists["limit"]`` (one per series).

    Examples
    --------
    >>> from optfilters.thresholds import frozen_edges
    >>> from optfilters.plot import frozen_edges_plot
    >>> r = frozen_edges_plot(frozen_edges("nadam", [10, 100, 1000]))
    >>> r.artists["edge"][0].get_ydata().round(2).tolist()
    [3.49, 3.53, 3.93]
    >>> r.close()
    """
    pairs = _items(obj, "frozen_edges", ("steps", "edge"))
    figure, (axis,) = _axes(ax, None, 1, "frozen_edges_plot")
    lines, limits = [], []
    for i, (name, e) in enumerate(pairs):
        y = _finite(e.base_edge if base else e.edge)
        lines.append(axis.plot(_finite(e.steps), y, color=_colour(i), label=name or None)[0])
        limit = getattr(e, "limit", None)
        if limit is not None and math.isfinite(limit):
            limits.append(axis.axhline(limit, color=_colour(i), linestyle=":", linewidth=1.2, label="_limit"))
    if limits:
        axis.plot([], [], color="0.4", linestyle=":", linewidth=1.2, label="t -> inf limit")
    axis.set_xscale("log")
    _log_y(axis)
    axis.set_xlabel("step t (coefficients frozen at t)")
    axis.set_ylabel("max stable lr·h" + (" (base lr)" if base else " (lr of step t)"))
    axis.legend(loc="best", fontsize="small")
    _title(axis, title, "frozen-time stability edge")
    return PlotResult(figure, (axis,), {"edge": tuple(lines), "limit": tuple(limits)}, None, {})


@_styled
def time_varying_verdict_plot(obj: Any, ax: Any = None, *, title: str | None = None) -> PlotResult:
    """The exact run (``log10 |theta_t / theta_0|``) with the steps whose frozen-time loop is unstable shaded.

    Parameters
    ----------
    obj : TimeVaryingVerdict
        Needs ``log10_amplitude`` and ``frozen_rate``.
    ax : Axes, optional
        Axes to draw into (default: a new figure).
    title : str, optional
        Axes title (None: the function's default; ``\"\"`` for none).

    Returns
    -------
    PlotResult
        ``artists["amplitude"]``, ``artists["frozen_unstable"]``.

    Raises
    ------
    ValueError
        For an object that is not a :class:`~optfilters.thresholds.TimeVaryingVerdict`.

    Examples
    --------
    >>> from optfilters.thresholds import time_varying_verdict
    >>> from optfilters.plot import time_varying_verdict_plot
    >>> r = time_varying_verdict_plot(time_varying_verdict("adam", 30.0, steps=100, beta1=0.9, eps=0.0))
    >>> len(r.artists["amplitude"][0].get_xdata()), len(r.artists["frozen_unstable"])
    (101, 1)
    >>> r.close()
    """
    for attr in ("log10_amplitude", "frozen_rate"):
        if not hasattr(obj, attr):
            raise ValueError(
                f"time_varying_verdict_plot() needs a TimeVaryingVerdict; {type(obj).__name__} lacks {attr}"
            )
    figure, (axis,) = _axes(ax, None, 1, "time_varying_verdict_plot")
    y = _finite(obj.log10_amplitude)
    steps = np.arange(y.size)
    line = axis.plot(steps, y, color=_colour(0), label="exact run from rest")[0]
    bad = np.asarray(obj.frozen_rate) >= 1.0
    spans = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], bad.astype(int), [0]])))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        spans.append(axis.axvspan(start + 0.5, stop + 0.5, color="#D55E00", alpha=0.15, linewidth=0))
    if spans:
        axis.plot([], [], color="#D55E00", alpha=0.3, linewidth=6, label="frozen-time unstable steps")
    axis.axhline(0.0, **_GUIDE)
    axis.set_xlabel("step")
    axis.set_ylabel("log10 |theta_t / theta_0|")
    axis.legend(loc="best", fontsize="small")
    _title(axis, title, f"{getattr(obj, 'name', '')}: exact time-varying run at lr·h = {obj.lr_curvature:g}")
    return PlotResult(
        figure, (axis,), {"amplitude": (line,), "frozen_unstable": tuple(spans)}, None, {"log10_amplitude": y}
    )


@_styled
def batch_scaling_plot(
    obj: Any, ax: Any = None, *, quantity: str = "steps", perfect: bool = True, title: str | None = None
) -> PlotResult:
    """Steps to the target (or the tuned learning rate) against the batch size, log-log, one line per optimizer.

    Parameters
    ----------
    obj : BatchScaling, list or dict
        Needs ``batch_sizes``, ``steps``, ``lr``, ``critical_batch_size``; ``label`` names it.
    ax : Axes, optional
        Axes to draw into (default: a new figure).
    quantity : {"steps", "lr", "effective_lr"}
        What to draw against the batch size.
    perfect : bool
        Draw perfect scaling (steps ~ 1/B, or lr ~ B) through each curve's smallest batch size,
        and mark each critical batch size.
    title : str, optional
        Axes title (None: the function's default; ``\"\"`` for none).

    Returns
    -------
    PlotResult
        ``artists["curve"]``, ``artists["perfect"]``, ``artists["critical"]``.

    Raises
    ------
    ValueError
        For another ``quantity``, or an object that is not a :class:`~optfilters.batch_size.BatchScaling`.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from optfilters.plot import batch_scaling_plot
    >>> b = np.array([1.0, 4.0, 16.0, 64.0])
    >>> r = batch_scaling_plot(SimpleNamespace(label="sgd", batch_sizes=b, steps=1000 / b + 50, lr=b / 100,
    ...                                   effective_lr=b / 100, critical_batch_size=19.0))
    >>> r.artists["curve"][0].get_ydata().tolist()
    [1050.0, 300.0, 112.5, 65.625]
    >>> r.close()
    """
    if quantity not in ("steps", "lr", "effective_lr"):
        raise ValueError(f"batch_scaling_plot(): quantity must be 'steps', 'lr' or 'effective_lr', got {quantity!r}")
    if isinstance(obj, Mapping):
        pairs = [(str(k), v) for k, v in obj.items()]
    elif isinstance(obj, (list, tuple)):
        pairs = [(str(getattr(v, "label", "") or getattr(v, "name", "")), v) for v in obj]
    else:
        pairs = [(str(getattr(obj, "label", "") or getattr(obj, "name", "")), obj)]
    for _, item in pairs:
        for attr in ("batch_sizes", "steps", "lr", "critical_batch_size"):
            if not hasattr(item, attr):
                raise ValueError(f"batch_scaling_plot() needs a BatchScaling; {type(item).__name__} lacks {attr}")
    figure, (axis,) = _axes(ax, None, 1, "batch_scaling_plot")
    curves, refs, marks = [], [], []
    for i, (name, r) in enumerate(pairs):
        b = _finite(r.batch_sizes)
        y = _finite(getattr(r, quantity))
        colour = _colour(i)
        curves.append(axis.plot(b, y, "o-", color=colour, markersize=3.5, label=name or None)[0])
        ok = np.isfinite(y) & (y > 0)
        if perfect and ok.any():
            j = int(np.flatnonzero(ok)[0])
            slope = -1.0 if quantity == "steps" else 1.0
            refs.append(axis.plot(b, y[j] * (b / b[j]) ** slope, color=colour, linestyle=":", linewidth=1.0)[0])
            bc = float(r.critical_batch_size)
            if quantity == "steps" and math.isfinite(bc) and b.min() <= bc <= b.max():
                yc = float(np.exp(np.interp(math.log(bc), np.log(b[ok]), np.log(y[ok]))))
                marks.append(axis.plot([bc], [yc], "v", color=colour, markersize=8, markeredgecolor="black")[0])
    if refs:
        axis.plot(
            [],
            [],
            color="0.4",
            linestyle=":",
            linewidth=1.0,
            label="perfect scaling" if quantity == "steps" else "lr ~ B",
        )
    if marks:
        axis.plot([], [], "v", color="0.6", markeredgecolor="black", label="critical batch size")
    axis.set_xscale("log", base=2)
    _log_y(axis)
    axis.set_xlabel("batch size B")
    axis.set_ylabel(
        {"steps": "steps to the target loss", "lr": "tuned learning rate", "effective_lr": "tuned lr x H(1)"}[quantity]
    )
    axis.legend(loc="best", fontsize="x-small")
    _title(axis, title, None)
    return PlotResult(
        figure, (axis,), {"curve": tuple(curves), "perfect": tuple(refs), "critical": tuple(marks)}, None, {}
    )


# ----------------------------------------------------------------------------- beyond the linear quadratic


@_styled
def certified_rates_plot(obj: Any, ax: Any = None, *, title: str | None = None) -> PlotResult:
    """Bars of the quadratic worst-case rate and the IQC-certified rate of one or several settings.

    A setting without a certificate gets a hatched bar to 1 labelled "no certificate".

    Parameters
    ----------
    obj : Certificate-like, list or dict
        Needs ``rate`` and ``quadratic_rate`` (:class:`optfilters.iqc.Certificate`).
    ax : Axes, optional
        Axes to draw into (default: a new figure).
    title : str, optional
        Axes title (None: the function's default; ``\"\"`` for none).

    Returns
    -------
    PlotResult
        ``artists["quadratic"]``, ``artists["certified"]``; ``data["series"]``.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from optfilters.plot import certified_rates_plot
    >>> r = certified_rates_plot({"gd": SimpleNamespace(rate=0.9, quadratic_rate=0.9),
    ...                      "hb": SimpleNamespace(rate=float("inf"), quadratic_rate=0.67)})
    >>> [round(float(b.get_height()), 2) for b in r.artists["certified"]]
    [0.9, 1.0]
    >>> r.close()
    """
    pairs = _items(obj, "certified_rates", ("rate", "quadratic_rate"))
    figure, (axis,) = _axes(ax, None, 1, "certified_rates_plot")
    x = np.arange(len(pairs), dtype=np.float64)
    quad = [float(c.quadratic_rate) for _, c in pairs]
    cert = [float(c.rate) for _, c in pairs]
    shown = [v if math.isfinite(v) else 1.0 for v in cert]
    bars_q = axis.bar(x - 0.2, quad, width=0.38, color=_colour(0), label="worst quadratic")
    bars_c = axis.bar(x + 0.2, shown, width=0.38, color=_colour(1), label="certified (IQC)")
    for bar, value in zip(bars_c, cert, strict=True):
        if not math.isfinite(value):
            bar.set_hatch("//")
            bar.set_facecolor("white")
            bar.set_edgecolor(_colour(1))
            axis.annotate(
                "no certificate", (bar.get_x() + bar.get_width() / 2, 1.0), ha="center", va="bottom", fontsize=8
            )
    axis.axhline(1.0, label="_rate = 1", **_GUIDE)
    axis.set_xticks(x, [name for name, _ in pairs])
    axis.set_ylim(0.0, 1.15)
    axis.set_ylabel("convergence rate")
    _title(axis, title, None)
    leg = axis.legend(loc="lower right")
    data = {
        "series": [{"label": n, "quadratic_rate": q, "rate": c} for (n, _), q, c in zip(pairs, quad, cert, strict=True)]
    }
    return PlotResult(figure, (axis,), {"quadratic": tuple(bars_q), "certified": tuple(bars_c)}, leg, data)


@_styled
def large_signal_plot(obj: Any, ax: Any = None, *, window: int | None = None, title: str | None = None) -> PlotResult:
    """The update over its steady state (top) and the gradient scale (bottom) around a change of scale.

    Parameters
    ----------
    obj : LargeSignalResponse-like, list or dict
        Needs ``ratios``, ``scales`` and ``change`` (:class:`optfilters.large_signal.LargeSignalResponse`).
    ax : sequence of two Axes, optional
        The update-ratio and gradient-scale panels (default: a new figure).
    window : int, optional
        Steps shown after the change (default: until the ratio is within 1% of its final value, at least 50).
    title : str, optional
        Axes title (None: the function's default; ``\"\"`` for none).

    Returns
    -------
    PlotResult
        ``artists["ratio"]``, ``artists["scale"]``, ``artists["peak"]``.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from optfilters.plot import large_signal_plot
    >>> resp = SimpleNamespace(ratios=np.array([1.0, 1.0, 3.0, 2.0, 1.0]), scales=np.array([1, 1, 10, 10, 10.0]),
    ...                        change=2, name="x")
    >>> r = large_signal_plot(resp)
    >>> r.artists["ratio"][0].get_ydata().tolist()
    [1.0, 3.0, 2.0, 1.0]
    >>> r.close()
    """
    pairs = _items(obj, "large_signal", ("ratios", "scales", "change"))
    figure, (top, bottom) = _axes(ax, None, 2, "large_signal_plot", figsize=(6.4, 5.2))
    lines, scales, peaks, records = [], [], [], []
    for i, (name, r) in enumerate(pairs):
        ratios = _finite(r.ratios)
        change = int(r.change)
        after = ratios[change:]
        n = after.size if window is None else min(int(window), after.size)
        if window is None:
            final = after[-1]
            settled = np.flatnonzero(np.abs(after - final) > 0.01 * abs(final))
            n = min(after.size, max(50, int(settled[-1]) + 10 if settled.size else 50))
        t = np.arange(-1, n)
        y = ratios[change - 1 : change + n]
        lines.append(top.plot(t, y, color=_colour(i), label=name or None)[0])
        k = int(np.nanargmax(np.abs(after[:n])))
        peaks.append(top.plot([k], [after[k]], marker="o", color=_colour(i), linestyle="none", label="_peak")[0])
        scales.append(bottom.plot(t, _finite(r.scales)[change - 1 : change + n], color=_colour(i))[0])
        records.append({"label": name, "steps": t, "ratio": y, "peak_delay": k, "peak_ratio": float(after[k])})
    top.axhline(1.0, label="_steady state", **_GUIDE)
    top.set_ylabel("|update| / steady state")
    bottom.set_ylabel("gradient scale")
    _log_y(bottom)
    bottom.set_xlabel("steps after the change")
    _title(top, title, None)
    leg = _legend(top, None, len(pairs), False)
    return PlotResult(
        figure,
        (top, bottom),
        {"ratio": tuple(lines), "scale": tuple(scales), "peak": tuple(peaks)},
        leg,
        {"series": records},
    )


@_styled
def peak_ratio_map_plot(
    obj: Any, ax: Any = None, *, bounds: Sequence[float] = (1.2, 2.0), colorbar: bool = True, title: str | None = None
) -> PlotResult:
    """Filled contours of the peak update ratio over two hyperparameters, with the ``bounds`` contours.

    The second parameter (columns) is drawn on a ``1 - value`` log axis (the
    memory ``1 / (1 - beta2)`` in steps), the first (rows) on a linear one.

    Parameters
    ----------
    obj : PeakRatioMap-like
        Needs ``parameters``, ``rows``, ``columns``, ``peak_ratio``.
    ax : Axes, optional
        Axes to draw into (default: a new figure).
    bounds : sequence of float
        Contour levels drawn as lines (the bounded regions' edges).
    colorbar : bool
        Add a colour bar.
    title : str, optional
        Axes title (None: the function's default; ``\"\"`` for none).

    Returns
    -------
    PlotResult
        ``artists["map"]``, ``artists["bounds"]``, ``artists["colorbar"]``.

    Raises
    ------
    ValueError
        For several maps.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from optfilters.plot import peak_ratio_map_plot
    >>> m = SimpleNamespace(parameters=("beta1", "beta2"), rows=np.array([0.5, 0.9]), columns=np.array([0.9, 0.99]),
    ...                     peak_ratio=np.array([[1.0, 3.0], [1.0, 2.0]]), name="adam", ratio=10.0)
    >>> r = peak_ratio_map_plot(m)
    >>> r.data["peak_ratio"].shape
    (2, 2)
    >>> r.close()
    """
    (_, m), *rest = _items(obj, "peak_ratio_map", ("parameters", "rows", "columns", "peak_ratio"))
    if rest:
        raise ValueError("peak_ratio_map_plot() draws one map")
    figure, (axis,) = _axes(ax, None, 1, "peak_ratio_map_plot")
    rows, cols, z = _finite(m.rows), _finite(m.columns), _finite(m.peak_ratio)
    gap = 1.0 - cols
    mesh = axis.pcolormesh(gap, rows, z, shading="nearest", cmap="magma_r")
    artists: dict[str, tuple[Any, ...]] = {"map": (mesh,)}
    if rows.size > 1 and cols.size > 1:
        levels = [b for b in bounds if np.nanmin(z) < b < np.nanmax(z)]
        if levels:
            cs = axis.contour(gap, rows, z, levels=levels, colors="white", linewidths=1.2)
            axis.clabel(cs, fmt=lambda v: f"{v:g}x", fontsize=8)
            artists["bounds"] = (cs,)
    if colorbar:
        cb = figure.colorbar(mesh, ax=axis)
        cb.set_label("peak |update| / steady state")
        artists["colorbar"] = (cb,)
    axis.set_xscale("log")
    axis.invert_xaxis()
    p_row, p_col = m.parameters
    axis.set_xlabel(f"1 - {p_col}")
    axis.set_ylabel(str(p_row))
    axis.grid(False)
    ratio = getattr(m, "ratio", None)
    _title(axis, title, f"{getattr(m, 'name', '')}: peak update after a {ratio:g}x scale step" if ratio else None)
    return PlotResult(figure, (axis,), artists, None, {"rows": rows, "columns": cols, "peak_ratio": z})


@_styled
def bounded_region_plot(obj: Any, ax: Any = None, *, title: str | None = None, **line_kw: Any) -> PlotResult:
    """The boundary of the bounded region: the largest second parameter for each first one (``1 - value``, log axis).

    Parameters
    ----------
    obj : BoundedRegion-like, list or dict
        Needs ``rows``, ``limits``, ``bound``, ``parameters``.
    ax : Axes, optional
        Axes to draw into (default: a new figure).
    title : str, optional
        Axes title (None: the function's default; ``\"\"`` for none).
    **line_kw
        Passed to ``Axes.plot``.

    Returns
    -------
    PlotResult
        ``artists["boundary"]``.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from optfilters.plot import bounded_region_plot
    >>> b = SimpleNamespace(rows=np.array([0.8, 0.9]), limits=np.array([0.95, 0.97]), bound=1.2,
    ...                     parameters=("beta1", "beta2"), name="adam")
    >>> r = bounded_region_plot(b)
    >>> r.artists["boundary"][0].get_xdata().round(3).tolist()
    [0.05, 0.03]
    >>> r.close()
    """
    pairs = _items(obj, "bounded_region", ("rows", "limits", "bound", "parameters"))
    figure, (axis,) = _axes(ax, None, 1, "bounded_region_plot")
    lines = []
    for i, (name, b) in enumerate(pairs):
        label = f"peak <= {float(b.bound):g}x" + (f" ({name})" if name and len(pairs) > 1 else "")
        kw = {"color": _colour(i), "marker": "o", "label": label, **line_kw}
        lines.append(axis.plot(1.0 - _finite(b.limits), _finite(b.rows), **kw)[0])
    p_row, p_col = pairs[0][1].parameters
    axis.set_xscale("log")
    axis.set_xlabel(f"1 - {p_col} (allowed to the left)")
    axis.set_ylabel(str(p_row))
    _title(axis, title, None)
    leg = _legend(axis, True, len(pairs), True)
    return PlotResult(figure, (axis,), {"boundary": tuple(lines)}, leg, {"series": [{"label": n} for n, _ in pairs]})


@_styled
def noise_transition_plot(obj: Any, ax: Any = None, *, title: str | None = None) -> PlotResult:
    """Steady-state loss of a sign loop against the gradient noise: predicted, linearised, cycle, observed.

    Parameters
    ----------
    obj : NoiseTransition-like
        Needs ``noise_std``, ``predicted``, ``linearised``, ``cycle``; ``observed`` and
        ``observed_stderr`` are drawn when not None.
    ax : Axes, optional
        Axes to draw into (default: a new figure).
    title : str, optional
        Axes title (None: the function's default; ``\"\"`` for none).

    Returns
    -------
    PlotResult
        ``artists["predicted"]``, ``artists["linearised"]``, ``artists["cycle"]``, ``artists["observed"]``.

    Raises
    ------
    ValueError
        For several sweeps.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from optfilters.plot import noise_transition_plot
    >>> t = SimpleNamespace(noise_std=np.array([0.01, 0.1]), predicted=np.array([1e-4, 1e-3]),
    ...                     linearised=np.array([5e-5, 9e-4]), cycle=2.5e-5, observed=None, observed_stderr=None)
    >>> r = noise_transition_plot(t)
    >>> r.artists["predicted"][0].get_ydata().tolist()
    [0.0001, 0.001]
    >>> r.close()
    """
    (_, t), *rest = _items(obj, "noise_transition", ("noise_std", "predicted", "linearised", "cycle"))
    if rest:
        raise ValueError("noise_transition_plot() draws one sweep")
    figure, (axis,) = _axes(ax, None, 1, "noise_transition_plot")
    x = _finite(t.noise_std)
    artists: dict[str, tuple[Any, ...]] = {
        "predicted": (axis.plot(x, _finite(t.predicted), color=_colour(0), label="predicted (Gaussian closure)")[0],),
        "linearised": (
            axis.plot(x, _finite(t.linearised), color=_colour(2), linestyle="--", label="Gaussian gain only")[0],
        ),
        "cycle": (axis.axhline(float(t.cycle), color=_colour(3), linestyle=":", label="noiseless limit cycle"),),
    }
    observed = getattr(t, "observed", None)
    if observed is not None:
        err = getattr(t, "observed_stderr", None)
        y = _finite(observed)
        e = None if err is None else 2.0 * _finite(err)
        artists["observed"] = (
            axis.errorbar(x, y, yerr=e, color=_colour(1), marker="o", linestyle="none", label="observed (bridge)"),
        )
    axis.set_xscale("log")
    _log_y(axis)
    axis.set_xlabel("gradient noise standard deviation")
    axis.set_ylabel("steady-state loss")
    _title(axis, title, None)
    leg = axis.legend(loc="upper left")
    return PlotResult(figure, (axis,), artists, leg, {"noise_std": x, "predicted": _finite(t.predicted)})


@_styled
def relay_run_plot(
    obj: Any, ax: Any = None, *, approach: Any = None, steps: int | None = None, title: str | None = None
) -> PlotResult:
    """A sign loop's trajectory ``theta_t / step`` with the constant-speed ramp of its approach.

    Parameters
    ----------
    obj : RelayRun-like
        Needs ``theta`` and ``step``.
    ax : Axes, optional
        Axes to draw into (default: a new figure).
    approach : Approach-like, optional
        Draws ``theta_0 - step t`` up to its ``switch``.
    steps : int, optional
        Steps shown (default: all).
    title : str, optional
        Axes title (None: the function's default; ``\"\"`` for none).

    Returns
    -------
    PlotResult
        ``artists["theta"]``, ``artists["approach"]``.

    Raises
    ------
    ValueError
        For several runs.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from optfilters.plot import relay_run_plot
    >>> r = relay_run_plot(SimpleNamespace(theta=np.array([0.03, 0.02, 0.01, 0.0, 0.01]), step=0.01))
    >>> r.artists["theta"][0].get_ydata().round(6).tolist()
    [3.0, 2.0, 1.0, 0.0, 1.0]
    >>> r.close()
    """
    (_, run), *rest = _items(obj, "relay_run", ("theta", "step"))
    if rest:
        raise ValueError("relay_run_plot() draws one run")
    figure, (axis,) = _axes(ax, None, 1, "relay_run_plot")
    theta = _finite(run.theta) / float(run.step)
    n = theta.size if steps is None else min(int(steps) + 1, theta.size)
    t = np.arange(n)
    artists: dict[str, tuple[Any, ...]] = {
        "theta": (axis.plot(t, theta[:n], color=_colour(0), label="run", linewidth=1.0)[0],)
    }
    if approach is not None:
        ts = np.arange(min(int(approach.switch), n))
        ramp = _finite(approach.theta(ts)) / float(run.step)
        artists["approach"] = (
            axis.plot(ts, ramp, color=_colour(1), linestyle="--", label="constant speed: theta0 - lr t")[0],
        )
    axis.axhline(0.0, label="_minimum", **_GUIDE)
    axis.set_xlabel("step")
    axis.set_ylabel("theta / lr")
    _title(axis, title, None)
    leg = axis.legend(loc="upper right")
    return PlotResult(figure, (axis,), artists, leg, {"theta": theta[:n]})


# ----------------------------------------------------------------------------- identification views

#: Colour of each audit verdict in :func:`atlas_plot`.
VERDICT_COLOURS: dict[str, str] = {
    "linear": PALETTE[0],
    "linear time-varying": PALETTE[5],
    "normalised": PALETTE[1],
    "sign-type": PALETTE[2],
    "matrix": PALETTE[3],
    "nonlinear": PALETTE[6],
    "could not probe": "#bbbbbb",
}


@_styled
def best_linear_approximation_plot(
    bla: Any, ax: Any = None, *, lags: int | None = None, title: str | None = None
) -> PlotResult:
    """The dither estimate of a best linear approximation: response, ±2 standard errors, fitted filter.

    Parameters
    ----------
    bla : optfilters.dither.BestLinearApproximation
        The estimate.
    ax : Axes, optional
        Default: a new figure.
    lags : int, optional
        Lags shown (default: the fit window).
    title : str, optional
        Title.

    Returns
    -------
    PlotResult
        ``artists``: ``response`` (the estimate), ``band`` (±2 standard
        errors), ``fit`` (the fitted ARMA impulse response; empty when none).

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters.dither import estimate_best_linear_approximation
    >>> from optfilters.plot import best_linear_approximation_plot
    >>> g = np.random.default_rng(0).standard_normal((4, 512, 8))
    >>> r = best_linear_approximation_plot(estimate_best_linear_approximation(g, np.sign(g), burn_in=64))
    >>> len(r.artists["response"][0].get_xdata())
    16
    >>> r.close()
    """
    n = int(bla.window if lags is None else _check_int("lags", lags, 1))
    n = min(n, bla.response.size)
    k = np.arange(n)
    figure, (axis,) = _axes(ax, None, 1, "best_linear_approximation_plot")
    r, se = bla.response[:n], bla.standard_error[:n]
    band = axis.fill_between(k, r - 2 * se, r + 2 * se, color=_colour(0), alpha=0.25, linewidth=0, label="±2 s.e.")
    line = axis.plot(k, r, color=_colour(0), marker="o", markersize=2.5, linewidth=1.0, label="estimate")[0]
    fits: tuple[Any, ...] = ()
    if bla.filter is not None:
        h = bla.filter.impulse_response(n)
        fits = (axis.plot(k, h, color=_colour(1), linewidth=1.4, label=f"ARMA{bla.orders} fit")[0],)
    axis.axhline(0.0, color="0.6", linewidth=0.6, zorder=0)
    axis.set_xlabel("lag k (steps)")
    axis.set_ylabel("E[u_t g_{t-k}] / sigma^2")
    _title(axis, title, "best linear approximation under a Gaussian dither")
    leg = axis.legend()
    data = {"lags": k, "response": r, "standard_error": se}
    return PlotResult(figure, (axis,), {"response": (line,), "band": (band,), "fit": fits}, leg, data)


@_styled
def atlas_plot(result: Any, ax: Any = None, *, title: str | None = None) -> PlotResult:
    """Every audited optimizer at a glance: poles and zeros (left) and DC gain (right), one row each.

    Parameters
    ----------
    result : optfilters.audit.Audit
        The audit.
    ax : sequence of two Axes, optional
        Default: a new figure, its height growing with the number of classes.
    title : str, optional
        Title (default: the module).

    Returns
    -------
    PlotResult
        ``artists``: ``poles``, ``zeros`` (scatter collections, one per
        verdict present), ``dc_gain`` (one bar container); ``data["rows"]``:
        per class its name, verdict, filter source, poles, zeros and DC gain.

    Raises
    ------
    ValueError
        When ``ax`` is given and is not two Axes.

    Notes
    -----
    Poles (x) and zeros (o) are drawn at their real part; complex ones are
    filled and their imaginary part is in ``data``.  The DC gain axis is
    logarithmic (``|H(1)|``); zeros at ``z = 0`` of pure-pole filters are left
    out (they only state the numerator's delay).

    Examples
    --------
    >>> from optfilters.audit import audit, AuditSettings
    >>> from optfilters.plot import atlas_plot
    >>> r = atlas_plot(audit("torch.optim", only=["SGD"], settings=AuditSettings.quick()))
    >>> r.data["rows"][0]["verdict"]
    'linear'
    >>> r.close()
    """
    classes = list(result.classes)
    count = max(len(classes), 1)
    if ax is None:
        import matplotlib.pyplot as plt

        figure = plt.figure(figsize=(10.0, 1.8 + 0.26 * count))
        axes = tuple(figure.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": (3.0, 1.2)}))
    else:
        axes = tuple(_as_axes_list(ax))
        if len(axes) != 2:
            raise ValueError(f"atlas_plot draws 2 panels, so ax must be a sequence of 2 Axes; got {len(axes)}")
        figure = axes[0].figure
    left, right = axes
    rows = []
    by_verdict: dict[str, dict[str, list[tuple[float, float]]]] = {}
    bars_y, bars_x, bars_c = [], [], []
    for i, c in enumerate(classes):
        y = count - 1 - i
        f = c.atlas_filter()
        row: dict[str, Any] = {
            "name": c.name,
            "verdict": c.verdict,
            "source": None,
            "poles": [],
            "zeros": [],
            "dc_gain": None,
        }
        if f is not None:
            zeros = [z for z in np.atleast_1d(f["zeros"]) if abs(z) > 1e-9]
            poles = list(np.atleast_1d(f["poles"]))
            row.update(source=f["source"], poles=poles, zeros=zeros, dc_gain=f["dc_gain"])
            store = by_verdict.setdefault(c.verdict, {"poles": [], "zeros": [], "cpoles": [], "czeros": []})
            for p in poles:
                store["cpoles" if abs(p.imag) > 1e-9 else "poles"].append((float(p.real), y))
            for z in zeros:
                store["czeros" if abs(z.imag) > 1e-9 else "zeros"].append((float(z.real), y))
            gain = abs(float(f["dc_gain"])) if math.isfinite(float(f["dc_gain"])) else math.nan
            if gain > 0:
                bars_y.append(y)
                bars_x.append(gain)
                bars_c.append(VERDICT_COLOURS.get(c.verdict, "0.3"))
        rows.append(row)
    pole_art: list[Any] = []
    zero_art: list[Any] = []
    for verdict, store in by_verdict.items():
        colour = VERDICT_COLOURS.get(verdict, "0.3")
        for key, marker, filled, bucket in (
            ("poles", "x", True, pole_art),
            ("cpoles", "X", True, pole_art),
            ("zeros", "o", False, zero_art),
            ("czeros", "o", True, zero_art),
        ):
            pts = store[key]
            if not pts:
                continue
            xs, ys = zip(*pts, strict=True)
            if marker in ("x", "X") and key == "poles":
                style_kw: dict[str, Any] = {"color": colour}
            else:
                style_kw = {"edgecolors": colour, "facecolors": colour if filled else "none"}
            bucket.append(left.scatter(xs, ys, marker=marker, s=28, linewidths=1.2, zorder=3, **style_kw))
    from matplotlib.lines import Line2D

    for i, row in enumerate(rows):
        if row["source"] is None:
            note = "no filter identified"
        elif not row["poles"] and not row["zeros"]:
            note = f"{row['source']}: a gain, no poles or zeros"
        else:
            continue
        left.text(-1.0, count - 1 - i, note, fontsize=7, color="0.35", va="center")
    left.axvline(1.0, color="0.5", linewidth=0.8, linestyle="--", zorder=1)
    left.axvline(0.0, color="0.7", linewidth=0.6, zorder=1)
    left.set_xlim(-1.05, 1.1)
    left.set_yticks(range(count))
    left.set_yticklabels([c.name.split(".")[-1].split(":")[-1] for c in reversed(classes)] or [""])
    left.set_ylim(-0.7, count - 0.3)
    left.set_xlabel("real part of poles (x) and zeros (o); filled: complex")
    right_bars = right.barh(bars_y, bars_x, color=bars_c, height=0.6) if bars_x else None
    right.set_xscale("log")
    right.set_xlabel("|DC gain|")
    present = [v for v in VERDICT_COLOURS if any(c.verdict == v for c in classes)]
    handles = [Line2D([], [], marker="s", linestyle="none", color=VERDICT_COLOURS[v], label=v) for v in present]
    handles += [
        Line2D([], [], marker="x", linestyle="none", color="0.3", label="pole"),
        Line2D([], [], marker="o", linestyle="none", color="0.3", markerfacecolor="none", label="zero"),
    ]
    leg = left.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=7, ncol=5)
    figure.suptitle(title if title is not None else f"optimizer atlas: {result.module}")
    artists = {"poles": tuple(pole_art), "zeros": tuple(zero_art), "dc_gain": (right_bars,) if right_bars else ()}
    return PlotResult(figure, (left, right), artists, leg, {"rows": rows})
