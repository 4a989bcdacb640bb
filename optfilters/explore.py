"""``optfilters explore``: an interactive explorer in the browser (a Bokeh server application).

Pick two optimizers (any catalogue entry, raw ``b``/``a`` through ``custom``,
or a model of your own file) and move their hyperparameters: the page
redraws, for both side by side,

* the Bode magnitude and phase of the gradient filter (its t -> infinity LTI limit),
* the pole-zero map,
* the impulse response and the step response, raw and bias-corrected,
* the closed-loop rate on a quadratic against ``lr * h`` with the stability edge,
* the stability map over ``lr * h`` and one hyperparameter, with the current point,
* a trajectory on the lectures' test functions (``10 x^2 + 100 y^2`` or
  Rosenbrock) run through the PyTorch bridge (:class:`optfilters.torch.FilterOptimizer`),
* the noisy-quadratic prediction of the expected loss.

Every number drawn comes from the library: :func:`panel_data` computes them
(no Bokeh needed), the page only shows them.  The state lives in the URL
(``?a=adam&a.beta1=0.95&b=momentum&fn=rosenbrock``), so a configuration can be
shared.  An invalid value shows the library's message under the inputs and
leaves the plots as they were.

Why Bokeh server rather than Panel or Dash: the page needs widgets, linked
plots and a Python callback per change, which Bokeh provides by itself (Panel
is a layer over it); Bokeh serves its own JavaScript from the installed
package, so the page works offline, and its document model exposes every
plotted array by name, which is what the browser tests read.

Importing this module needs neither Bokeh nor torch; :func:`make_document`
and :func:`serve` import Bokeh, the trajectories import torch.
"""

from __future__ import annotations

import math
import urllib.parse
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .catalogue import CATALOGUE, CatalogueEntry, resolve_name
from .errors import StabilityWarning
from .hyperparameters import Hyperparameter
from .model import OptimizerModel
from .validation import number_or_text

__all__ = [
    "FUNCTIONS",
    "PanelData",
    "Settings",
    "WidgetSpec",
    "make_document",
    "panel_data",
    "parse_query",
    "query_string",
    "serve",
    "stability_parameter",
    "widget_spec",
]

#: The lectures' test functions offered for trajectories (names of :func:`optfilters.trajectory.get_function`).
FUNCTIONS: tuple[str, ...] = ("quadratic", "rosenbrock")

#: Defaults of the page-wide settings.
DEFAULTS: dict[str, Any] = {"fn": "quadratic", "steps": 200, "noise": 1.0, "n": 60}


@dataclass(frozen=True)
class WidgetSpec:
    """How one hyperparameter is edited: a text box always, and a slider where natural.

    Attributes
    ----------
    name : str
    kind : {"float", "int", "bool", "floats"}
    slider : {"linear", "log", None}
        ``log``: the slider moves ``log10`` of the value (positive quantities
        without an upper bound: learning rates, eps, gains); ``linear``:
        bounded ranges (momentum, betas, cutoff); None: text only (zero
        defaults such as weight decay, lists, unbounded gains).
    start, end, step : float
        The slider's range and step (log10 units for ``log``).
    help : str
    """

    name: str
    kind: str
    slider: str | None
    start: float = 0.0
    end: float = 1.0
    step: float = 0.01
    help: str = ""


def widget_spec(hp: Hyperparameter) -> WidgetSpec:
    """The editing widget of one catalogue hyperparameter, from its range and default.

    Parameters
    ----------
    hp : Hyperparameter
        A catalogue hyperparameter.

    Returns
    -------
    WidgetSpec
        The slider (log or linear, with its range in the slider's units) or a text box.

    Examples
    --------
    >>> from optfilters import CATALOGUE
    >>> adam = {hp.name: hp for hp in CATALOGUE["adam"].hyperparameters}
    >>> widget_spec(adam["beta1"]).slider, widget_spec(adam["lr"]).slider, widget_spec(adam["weight_decay"]).slider
    ('linear', 'log', None)
    >>> s = widget_spec(adam["lr"]); (s.start, s.end)
    (-6.0, 0.0)
    """
    text = hp.help or hp.name
    if hp.kind in ("bool", "floats"):
        return WidgetSpec(hp.name, hp.kind, None, help=text)
    default = hp.default
    if hp.kind == "int" and hp.low is not None and hp.high is not None:
        return WidgetSpec(hp.name, "int", "linear", float(hp.low), float(hp.high), 1.0, text)
    if hp.low is not None and hp.high is not None:
        return WidgetSpec(hp.name, hp.kind, "linear", float(hp.low), float(hp.high), (hp.high - hp.low) / 1000.0, text)
    if hp.low is not None and hp.low >= 0.0 and hp.high is None and isinstance(default, (int, float)) and default > 0:
        centre = math.floor(math.log10(default))
        return WidgetSpec(hp.name, hp.kind, "log", float(centre - 3), float(centre + 3), 0.01, text)
    return WidgetSpec(hp.name, hp.kind, None, help=text)


def stability_parameter(entry: CatalogueEntry) -> str | None:
    """The hyperparameter on the stability map's rows: the first bounded float that shapes the filter.

    Parameters
    ----------
    entry : CatalogueEntry
        The optimizer.

    Returns
    -------
    str or None
        A hyperparameter name, or None when the entry has none to sweep.

    Examples
    --------
    >>> from optfilters import CATALOGUE
    >>> stability_parameter(CATALOGUE["momentum"]), stability_parameter(CATALOGUE["adam"])
    ('momentum', 'beta1')
    >>> stability_parameter(CATALOGUE["sgd"]) is None
    False
    """
    preferred = ("momentum", "beta1", "beta", "alpha", "rho", "nu", "cutoff")
    bounded = {
        hp.name
        for hp in entry.hyperparameters
        if hp.kind == "float" and hp.name not in ("lr", "dampening") and hp.low is not None and hp.high is not None
    }
    for name in preferred:
        if name in bounded:
            return name
    others = sorted(bounded)
    if others:
        return others[0]
    names = [hp.name for hp in entry.hyperparameters]
    return "momentum" if "momentum" in names else None


# ----------------------------------------------------------------------------- state and URL


@dataclass
class Settings:
    """The page's state: two optimizers with their hyperparameter texts, and the page-wide settings.

    Attributes
    ----------
    entries : dict of str to CatalogueEntry
        ``"a"`` and ``"b"``: each side's optimizer.
    values : dict of str to dict of str to str
        Each side's hyperparameters as the text typed (defaults left out).
    fn : str
        Test function of the trajectories (one of :data:`FUNCTIONS`).
    steps : int
        Steps of the trajectories and the loss prediction (1 to 5000).
    noise : float
        Gradient-noise variance of the noisy-quadratic prediction (>= 0).
    """

    entries: dict[str, CatalogueEntry]
    values: dict[str, dict[str, str]] = field(default_factory=lambda: {"a": {}, "b": {}})
    fn: str = "quadratic"
    steps: int = 200
    noise: float = 1.0


def parse_query(
    arguments: Mapping[str, Any], extra: Mapping[str, CatalogueEntry] | None = None
) -> tuple[Settings, list[str]]:
    """Settings from URL query arguments (``a``, ``a.<hp>``, ``b``, ``b.<hp>``, ``fn``, ``steps``, ``noise``).

    Unknown names and bad values do not fail: they fall back to defaults and
    are returned as messages.  ``extra`` adds entries (the user's models) by name.

    Parameters
    ----------
    arguments : mapping of str to list
        The query's arguments (Bokeh's ``session_context.request.arguments``: lists of str or bytes).
    extra : mapping of str to CatalogueEntry, optional
        The user's models by name.

    Returns
    -------
    tuple of (Settings, list of str)
        The state and one message per argument that was ignored.

    Examples
    --------
    >>> s, problems = parse_query({"a": ["adam"], "a.beta1": ["0.95"], "b": ["nope"], "fn": ["rosenbrock"]})
    >>> s.entries["a"].name, s.values["a"], s.entries["b"].name, s.fn
    ('adam', {'beta1': '0.95'}, 'nesterov', 'rosenbrock')
    >>> problems
    ["b: unknown optimizer 'nope'; known: sgd, momentum, nesterov, adagrad, adadelta, rmsprop, adam, ..."]
    """
    extra = dict(extra or {})
    problems: list[str] = []

    def first(key: str) -> str | None:
        value = arguments.get(key)
        if value is None:
            return None
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return None if value is None else str(value)

    entries: dict[str, CatalogueEntry] = {}
    values: dict[str, dict[str, str]] = {"a": {}, "b": {}}
    for side, default in (("a", "momentum"), ("b", "nesterov")):
        name = first(side) or default
        if name in extra:
            entries[side] = extra[name]
        else:
            try:
                entries[side] = CATALOGUE[resolve_name(name)]
            except ValueError:
                problems.append(f"{side}: unknown optimizer {name!r}; known: {', '.join(list(CATALOGUE)[:7])}, ...")
                entries[side] = CATALOGUE[default]
        known = {hp.name for hp in entries[side].hyperparameters}
        values[side] = _required_examples(entries[side])
        for key in arguments:
            if key.startswith(f"{side}.") and key[2:] in known:
                text = first(key)
                if text is not None:
                    values[side][key[2:]] = text
    fn = first("fn") or DEFAULTS["fn"]
    if fn not in FUNCTIONS:
        problems.append(f"fn: unknown test function {fn!r}; known: {', '.join(FUNCTIONS)}")
        fn = DEFAULTS["fn"]
    steps = _parsed(int, first("steps"), DEFAULTS["steps"])
    if steps is None or not 1 <= steps <= 5000:
        problems.append(f"steps must be an integer in [1, 5000], got {first('steps')!r}")
        steps = DEFAULTS["steps"]
    noise = _parsed(float, first("noise"), DEFAULTS["noise"])
    if noise is None or not (math.isfinite(noise) and noise >= 0.0):
        problems.append(f"noise must be a number >= 0, got {first('noise')!r}")
        noise = DEFAULTS["noise"]
    return Settings(entries, values, fn, steps, noise), problems


def _parsed(kind: Callable[[str], Any], text: str | None, default: Any) -> Any:
    """``kind(text)``, ``default`` when ``text`` is empty or None, None when ``kind`` rejects it."""
    if not text:
        return default
    try:
        return kind(text)
    except ValueError:
        return None


def query_string(settings: Settings) -> str:
    """The URL query of a state (the inverse of :func:`parse_query`; defaults left out).

    Parameters
    ----------
    settings : Settings
        The page's state.

    Returns
    -------
    str
        ``key=value`` pairs joined by ``&`` (URL-quoted).

    Examples
    --------
    >>> s, _ = parse_query({"a": ["adam"], "a.beta1": ["0.95"]})
    >>> query_string(s)
    'a=adam&a.beta1=0.95&b=nesterov'
    """
    items: list[tuple[str, str]] = []
    for side in ("a", "b"):
        items.append((side, settings.entries[side].name))
        items += [(f"{side}.{k}", v) for k, v in settings.values[side].items()]
    if settings.fn != DEFAULTS["fn"]:
        items.append(("fn", settings.fn))
    if settings.steps != DEFAULTS["steps"]:
        items.append(("steps", str(settings.steps)))
    if settings.noise != DEFAULTS["noise"]:
        items.append(("noise", f"{settings.noise:g}"))
    return urllib.parse.urlencode(items, safe=",")


# ----------------------------------------------------------------------------- the numbers drawn


@dataclass
class PanelData:
    """Everything one optimizer's side of the page draws (arrays by plot), and what could not be computed.

    Each plot's data is a dict of lists (Bokeh ``ColumnDataSource`` columns;
    non-finite values dropped); a part that could not be computed stays empty.

    Attributes
    ----------
    label : str
        The side's title.
    bode : dict
        ``f`` (cycles/step), ``db``, ``magnitude`` and ``phase`` (degrees) of
        the gradient filter.
    poles, zeros : dict
        ``x`` (real part) and ``y`` (imaginary part).
    impulse : dict
        ``t`` (steps from 1) and ``value``.
    step : dict
        ``t``, ``raw`` and ``corrected`` (with bias correction) step response.
    rate : dict
        ``x`` (``lr * h``) and ``rate`` (closed-loop rate per step).
    edge : float
        Largest stable ``lr * h`` (nan when not computed).
    map : dict
        Stability map: ``parameter``, its ``values``, ``x``, ``rate`` (rows
        per value) and the ``current`` value.
    point : dict
        The current ``x`` and its ``rate``.
    trajectory : dict
        ``x`` and ``y`` of the iterates on the test function.
    prediction : dict
        ``t``, expected ``loss`` and ``steady`` (the steady-state loss, when finite).
    notes : list of str
        What is linearised, and what failed and why.
    """

    label: str
    bode: dict[str, list[float]] = field(default_factory=dict)
    poles: dict[str, list[float]] = field(default_factory=dict)
    zeros: dict[str, list[float]] = field(default_factory=dict)
    impulse: dict[str, list[float]] = field(default_factory=dict)
    step: dict[str, list[float]] = field(default_factory=dict)
    rate: dict[str, list[float]] = field(default_factory=dict)
    edge: float = math.nan
    map: dict[str, Any] = field(default_factory=dict)
    point: dict[str, list[float]] = field(default_factory=dict)
    trajectory: dict[str, list[float]] = field(default_factory=dict)
    prediction: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def convert(entry: CatalogueEntry, texts: Mapping[str, str]) -> dict[str, Any]:
    """Typed hyperparameters from their texts (numbers as numbers; the library validates ranges).

    Examples
    --------
    >>> from optfilters import CATALOGUE
    >>> convert(CATALOGUE["adam"], {"beta1": "0.95", "amsgrad": "true"})
    {'beta1': 0.95, 'amsgrad': 'true'}
    """
    out: dict[str, Any] = {}
    for hp in entry.hyperparameters:
        if hp.name not in texts:
            continue
        text = str(texts[hp.name]).strip()
        if hp.kind in ("floats", "bool"):
            out[hp.name] = text
            continue
        out[hp.name] = number_or_text(text)  # text that is not a number: the library's message names the parameter
    return out


def build(entry: CatalogueEntry, texts: Mapping[str, str]) -> OptimizerModel:
    """The validated model of ``entry`` with hyperparameters typed as ``texts`` (raises the library's errors)."""
    return entry.build(entry.validate(convert(entry, texts)))


def _quiet(func: Callable[[], Any]) -> Any:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", StabilityWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return func()


def _finite_list(values: Any) -> list[float]:
    """Floats for the browser: non-finite values as NaN (Bokeh leaves them out of lines)."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    return [float(v) if math.isfinite(v) else math.nan for v in arr]


def panel_data(
    model: OptimizerModel,
    entry: CatalogueEntry | None = None,
    fn: str = "quadratic",
    steps: int = 200,
    noise: float = 1.0,
    points: int = 256,
    map_points: int = 60,
    label: str | None = None,
) -> PanelData:
    """Compute what the page draws for one optimizer (every number from the library).

    Parameters
    ----------
    model : OptimizerModel
        The side's optimizer, with its hyperparameters.
    entry : CatalogueEntry, optional
        Its catalogue entry (for the stability map's hyperparameter); None: no map.
    fn : {"quadratic", "rosenbrock"}
        Test function of the trajectory; its largest curvature at the minimum,
        ``h``, places the current point ``lr * h`` on the rate curve and map.
    steps : int
        Steps of the trajectory, the time responses and the prediction.
    noise : float
        Gradient-noise variance of the noisy-quadratic prediction (curvatures
        of the quadratic test function, 20 and 200; start at (1, 1)).
    points, map_points : int
        Frequencies of the Bode plot; rows and columns of the stability map.
    label : str, optional
        The panel's title (default: the model's name).

    Returns
    -------
    PanelData
        A part that fails (an unstable loop, a model the bridge cannot run)
        is left empty with a note.

    Examples
    --------
    >>> import optfilters
    >>> d = panel_data(optfilters.get("momentum", momentum=0.9, lr=0.001), steps=20, points=5, map_points=4)
    >>> [round(v, 6) for v in d.bode["db"]]
    [20.0, 2.698577, -2.576786, -4.889443, -5.575072]
    >>> round(d.edge, 9), round(d.point["x"][0], 9)
    (3.8, 0.2)
    """
    from . import closed_loop, noisy_quadratic
    from .analysis import frequency_response, impulse_response, pole_zero, step_response
    from .trajectory import get_function

    out = PanelData(label or model.name)
    gradient = model.filters()["gradient"]
    freqs = np.linspace(0.0, 0.5, points)
    response = _quiet(lambda: frequency_response(gradient, freqs=freqs))
    out.bode = {
        "f": _finite_list(freqs),
        "db": _finite_list(response.magnitude_db),
        "magnitude": _finite_list(response.magnitude),
        "phase": _finite_list(np.degrees(response.phase)),
    }
    pz = _quiet(lambda: pole_zero(gradient))
    out.poles = {"x": _finite_list(pz.poles.real), "y": _finite_list(pz.poles.imag)}
    out.zeros = {"x": _finite_list(pz.zeros.real), "y": _finite_list(pz.zeros.imag)}
    n = min(int(steps), 200)
    stage = model.gradient_stage
    ir = _quiet(lambda: impulse_response(stage, n=n))
    sr = _quiet(lambda: step_response(stage, n=n))
    out.impulse = {"t": _finite_list(np.arange(1, n + 1)), "value": _finite_list(ir.values)}
    out.step = {
        "t": _finite_list(np.arange(1, n + 1)),
        "raw": _finite_list(sr.raw),
        "corrected": _finite_list(sr.bias_corrected),
    }

    function = get_function(fn)
    h = max(function.curvatures())
    x_now = model.lr * h
    try:
        loop = _quiet(lambda: closed_loop.closed_loop(model))
        stability = _quiet(loop.stability)
        out.edge = float(stability.max_stable_lr_curvature)
        top = 1.25 * out.edge if math.isfinite(out.edge) and out.edge > 0 else 4.0
        top = max(top, 1.1 * x_now)
        curve = _quiet(lambda: loop.rate_curve(np.linspace(0.0, top, 400)))
        out.rate = {"x": _finite_list(curve.lr_curvature), "rate": _finite_list(curve.rate)}
        rate_now = float(np.asarray(_quiet(lambda: loop.rate(x_now))))
        out.point = {"x": [x_now], "rate": [rate_now]}
        if loop.label != "exact":
            out.notes.append(f"closed loop: {loop.label}")
    except Exception as exc:  # a model without a closed loop (e.g. sign()): say so, draw nothing
        out.notes.append(f"closed loop: {exc}")
        out.point = {"x": [x_now], "rate": [math.nan]}
    parameter = stability_parameter(entry) if entry is not None and entry.name in CATALOGUE else None
    if parameter is not None and out.rate:
        try:
            xs = np.linspace(0.0, max(out.rate["x"]), map_points)
            others = {k: v for k, v in model.hyperparameters.items() if k != parameter}
            name = entry.name if entry is not None else model.name
            smap = _quiet(lambda: closed_loop.stability_map(name, parameter, None, xs, points=map_points, **others))
            out.map = {
                "parameter": parameter,
                "values": _finite_list(smap.parameter_values),
                "x": _finite_list(smap.lr_curvature),
                "rate": [_finite_list(row) for row in smap.rate],
                "current": float(model.hyperparameters[parameter]),
            }
        except Exception as exc:
            out.notes.append(f"stability map: {exc}")
    try:
        from .trajectory import run_trajectory

        run = run_trajectory(fn, model, lr=model.lr, steps=int(steps), engine="bridge")
        out.trajectory = {"x": _finite_list(run.params[:, 0]), "y": _finite_list(run.params[:, 1])}
        if run.diverged:
            out.notes.append(f"trajectory: diverged after {run.steps} steps")
    except Exception as exc:
        out.notes.append(f"trajectory: {exc}")
    try:
        curvatures = sorted(get_function("quadratic").curvatures())
        prediction = _quiet(
            lambda: noisy_quadratic.predict(model, curvatures=curvatures, noise_var=noise, init=1.0, steps=int(steps))
        )
        out.prediction = {
            "t": _finite_list(prediction.steps),
            "loss": _finite_list(prediction.expected_loss),
            "steady": [float(prediction.steady_state_loss)] if math.isfinite(prediction.steady_state_loss) else [],
        }
        if prediction.label != "exact":
            out.notes.append(f"prediction: {prediction.label}")
    except Exception as exc:
        out.notes.append(f"prediction: {exc}")
    return out


# ----------------------------------------------------------------------------- the Bokeh document

_COLOURS = {"a": "#0072B2", "b": "#D55E00"}


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, tuple):
        return ",".join(_fmt(v) for v in value)
    return str(value)


def make_document(doc: Any, extra: Mapping[str, CatalogueEntry] | None = None) -> None:
    """Build the explorer in a Bokeh document (the server calls it once per browser session).

    Every plotted data source has a name (``bode_a``, ``step_b``, ``rate_a``,
    ``map_a``, ``trajectory_b``, ``prediction_a``, ...), every input too
    (``a.beta1``, ``a.beta1.slider``, ``a.optimizer``), and the messages
    are in the ``message_a`` / ``message_b`` Divs.

    Parameters
    ----------
    doc : bokeh.document.Document
        The session's document.
    extra : mapping of str to CatalogueEntry, optional
        The user's models by name (``optfilters explore --model``).
    """
    import importlib

    # Bokeh's type hints are partial: its objects are used untyped here.
    models: Any = importlib.import_module("bokeh.models")
    layouts: Any = importlib.import_module("bokeh.layouts")
    figure: Any = importlib.import_module("bokeh.plotting").figure
    column, row = layouts.column, layouts.row
    Checkbox, ColumnDataSource, CustomJS, Div = models.Checkbox, models.ColumnDataSource, models.CustomJS, models.Div
    HoverTool, Range1d, Select, Slider, Span = (
        models.HoverTool,
        models.Range1d,
        models.Select,
        models.Slider,
        models.Span,
    )
    TabPanel, Tabs, TextInput = models.TabPanel, models.Tabs, models.TextInput

    extra = dict(extra or {})
    arguments = {}
    context = getattr(doc, "session_context", None)
    if context is not None and getattr(context, "request", None) is not None:
        arguments = dict(context.request.arguments)
    settings, problems = parse_query(arguments, extra)
    names = [*CATALOGUE, *extra]

    def source(name: str, **columns: list[Any]) -> Any:
        return ColumnDataSource(data=columns, name=name)

    sources: dict[str, dict[str, Any]] = {}
    for side in ("a", "b"):
        sources[side] = {
            "bode": source(f"bode_{side}", f=[], db=[], magnitude=[], phase=[]),
            "poles": source(f"poles_{side}", x=[], y=[]),
            "zeros": source(f"zeros_{side}", x=[], y=[]),
            "impulse": source(f"impulse_{side}", t=[], value=[]),
            "step": source(f"step_{side}", t=[], raw=[], corrected=[]),
            "rate": source(f"rate_{side}", x=[], rate=[]),
            "point": source(f"point_{side}", x=[], rate=[]),
            "map": source(f"map_{side}", image=[], x=[], y=[], dw=[], dh=[]),
            "map_point": source(f"map_point_{side}", x=[], y=[]),
            "trajectory": source(f"trajectory_{side}", x=[], y=[]),
            "prediction": source(f"prediction_{side}", t=[], loss=[]),
        }
    edges = {
        side: Span(location=0.0, dimension="height", line_dash="dashed", line_color=_COLOURS[side], name=f"edge_{side}")
        for side in ("a", "b")
    }

    tools = "pan,wheel_zoom,box_zoom,reset,save"
    size: dict[str, Any] = {"width": 420, "height": 260, "tools": tools}
    bode_mag = figure(
        title="gradient filter |H| (dB), t → ∞ limit",
        x_axis_label="frequency (cycles/step)",
        name="fig_bode_mag",
        **size,
    )
    bode_phase = figure(
        title="phase (degrees)",
        x_axis_label="frequency (cycles/step)",
        x_range=bode_mag.x_range,
        name="fig_bode_phase",
        **size,
    )
    pz = figure(
        title="pole-zero map (x poles, o zeros)", match_aspect=True, name="fig_pz", width=300, height=300, tools=tools
    )
    theta = np.linspace(0.0, 2.0 * np.pi, 256)
    pz.line(np.cos(theta), np.sin(theta), line_color="#999999")
    impulse_fig = figure(title="impulse response", x_axis_label="step", name="fig_impulse", **size)
    step_fig = figure(
        title="step response: raw (dashed) and bias-corrected", x_axis_label="step", name="fig_step", **size
    )
    rate_fig = figure(
        title="closed-loop rate on a quadratic (dashed: stability edge)",
        x_axis_label="lr · h",
        y_axis_label="rate",
        name="fig_rate",
        **size,
    )
    rate_fig.add_layout(Span(location=1.0, dimension="width", line_color="#999999"))
    traj_fig = figure(title="trajectory (PyTorch bridge)", name="fig_trajectory", width=420, height=320, tools=tools)
    pred_fig = figure(
        title="noisy quadratic: expected loss", x_axis_label="step", y_axis_type="log", name="fig_prediction", **size
    )
    map_figs = {}
    for side in ("a", "b"):
        colour = _COLOURS[side]
        data = sources[side]
        bode_mag.line("f", "db", source=data["bode"], line_color=colour, line_width=2, legend_label=side.upper())
        bode_phase.line("f", "phase", source=data["bode"], line_color=colour, line_width=2)
        pz.scatter("x", "y", source=data["poles"], marker="x", size=12, line_color=colour, line_width=2)
        pz.scatter(
            "x", "y", source=data["zeros"], marker="circle", size=10, fill_color=None, line_color=colour, line_width=2
        )
        impulse_fig.line("t", "value", source=data["impulse"], line_color=colour, line_width=2)
        step_fig.line("t", "raw", source=data["step"], line_color=colour, line_dash="dashed", line_width=2)
        step_fig.line("t", "corrected", source=data["step"], line_color=colour, line_width=2)
        rate_fig.line("x", "rate", source=data["rate"], line_color=colour, line_width=2)
        rate_fig.scatter("x", "rate", source=data["point"], size=10, fill_color=colour, line_color="black")
        rate_fig.add_layout(edges[side])
        traj_fig.line("x", "y", source=data["trajectory"], line_color=colour, line_width=2)
        pred_fig.line("t", "loss", source=data["prediction"], line_color=colour, line_width=2)
        m = figure(
            title=f"{side.upper()}: stability map (rate < 1 stable)",
            x_axis_label="lr · h",
            name=f"fig_map_{side}",
            width=300,
            height=260,
            tools=tools,
        )
        m.image(image="image", x="x", y="y", dw="dw", dh="dh", source=data["map"], palette="Viridis256")
        m.scatter("x", "y", source=data["map_point"], size=12, marker="star", fill_color="white", line_color="black")
        map_figs[side] = m
    rate_fig.add_tools(HoverTool(tooltips=[("lr·h", "@x"), ("rate", "@rate")]))
    contour = source("contour", xs=[], ys=[])
    traj_fig.multi_line("xs", "ys", source=contour, line_color="#bbbbbb")

    messages = {
        side: Div(text="", name=f"message_{side}", styles={"color": "#b00020"}, css_classes=[f"of-message-{side}"])
        for side in ("a", "b")
    }
    page_message = Div(text="<br/>".join(problems), name="message_page", styles={"color": "#b00020"})
    notes = {
        side: Div(text="", name=f"notes_{side}", styles={"color": "#555555", "font-size": "90%"}) for side in ("a", "b")
    }
    query = Div(text=query_string(settings), name="query", visible=False)
    query.js_on_change("text", CustomJS(code="window.history.replaceState(null, '', '?' + cb_obj.text);"))

    inputs: dict[str, Any] = {"a": column(), "b": column()}
    selects: dict[str, Any] = {}
    fn_select = Select(
        title="test function", value=settings.fn, options=list(FUNCTIONS), name="fn", css_classes=["of-fn"]
    )
    steps_input = TextInput(title="steps", value=str(settings.steps), name="steps")
    noise_input = TextInput(title="gradient-noise variance (prediction)", value=f"{settings.noise:g}", name="noise")
    busy = {"syncing": False}

    def update_side(side: str) -> None:
        entry = settings.entries[side]
        try:
            model = build(entry, settings.values[side])
        except ValueError as exc:
            messages[side].text = f"{side.upper()}: {exc}"
            return
        messages[side].text = ""
        data = panel_data(model, entry, settings.fn, settings.steps, settings.noise, label=entry.name)
        s = sources[side]
        s["bode"].data = dict(data.bode)
        s["poles"].data = dict(data.poles)
        s["zeros"].data = dict(data.zeros)
        s["impulse"].data = dict(data.impulse)
        s["step"].data = dict(data.step)
        s["rate"].data = dict(data.rate) if data.rate else {"x": [], "rate": []}
        s["point"].data = dict(data.point)
        edges[side].location = data.edge if math.isfinite(data.edge) else 0.0
        edges[side].visible = math.isfinite(data.edge)
        if data.map:
            values, xs = data.map["values"], data.map["x"]
            s["map"].data = {
                "image": [np.minimum(np.asarray(data.map["rate"]), 1.5)],
                "x": [xs[0]],
                "y": [values[0]],
                "dw": [xs[-1] - xs[0]],
                "dh": [values[-1] - values[0]],
            }
            s["map_point"].data = {"x": data.point["x"], "y": [data.map["current"]]}
            map_figs[side].yaxis.axis_label = data.map["parameter"]
        else:
            s["map"].data = {"image": [], "x": [], "y": [], "dw": [], "dh": []}
            s["map_point"].data = {"x": [], "y": []}
        s["trajectory"].data = dict(data.trajectory) if data.trajectory else {"x": [], "y": []}
        s["prediction"].data = (
            {"t": data.prediction["t"], "loss": data.prediction["loss"]} if data.prediction else {"t": [], "loss": []}
        )
        notes[side].text = "<br/>".join(data.notes)

    def update_contour() -> None:
        from .trajectory import get_function

        f = get_function(settings.fn)
        X, Y, Z = f.grid(121)
        levels = np.quantile(Z, np.linspace(0.02, 0.9, 12))
        xs, ys = _contour_lines(X, Y, Z, levels)
        contour.data = {"xs": xs, "ys": ys}
        traj_fig.x_range = Range1d(*f.xlim)
        traj_fig.y_range = Range1d(*f.ylim)

    def refresh_query() -> None:
        query.text = query_string(settings)

    def build_inputs(side: str) -> None:
        entry = settings.entries[side]
        for old in inputs[side].children:  # names stay unique: the replaced inputs give theirs up
            old.name = None
            old.css_classes = []
        widgets: list[Any] = []
        for hp in entry.hyperparameters:
            spec = widget_spec(hp)
            given = settings.values[side].get(hp.name)
            value_text = given if given is not None else _fmt(hp.default) if hp.default is not None else ""
            if spec.kind == "bool":
                box = Checkbox(
                    label=hp.name,
                    active=str(value_text).lower() in ("true", "1", "yes"),
                    name=f"{side}.{hp.name}",
                    css_classes=[_css(side, hp.name)],
                )
                box.on_change("active", _on_bool(side, hp.name))
                widgets.append(box)
                continue
            text = TextInput(
                title=f"{hp.name}: {spec.help}",
                value=value_text,
                name=f"{side}.{hp.name}",
                css_classes=[_css(side, hp.name)],
            )
            widgets.append(text)
            slider = None
            if spec.slider is not None:
                number = _number(value_text)
                position = spec.start
                if number is not None:
                    position = math.log10(number) if spec.slider == "log" and number > 0 else number
                position = min(max(position, spec.start), spec.end)
                title = f"log10 {hp.name}" if spec.slider == "log" else hp.name
                slider = Slider(
                    title=title,
                    start=spec.start,
                    end=spec.end,
                    step=spec.step,
                    value=position,
                    name=f"{side}.{hp.name}.slider",
                    show_value=False,
                    css_classes=[_css(side, hp.name, "slider")],
                )
                widgets.append(slider)
            text.on_change("value", _on_text(side, hp.name, slider, spec))
            if slider is not None:
                slider.on_change("value_throttled", _on_slider(side, hp.name, text, spec))
        inputs[side].children = widgets

    def _on_text(side: str, name: str, slider: Any, spec: WidgetSpec) -> Callable[..., None]:
        def callback(attr: str, old: Any, new: Any) -> None:
            text = str(new).strip()
            entry = settings.entries[side]
            default = entry.hyperparameter(name).default
            if text == "" or text == _fmt(default):
                settings.values[side].pop(name, None)
            else:
                settings.values[side][name] = text
            number = _number(text)
            if slider is not None and number is not None and not busy["syncing"]:
                position = math.log10(number) if spec.slider == "log" and number > 0 else number
                if spec.start <= position <= spec.end:
                    busy["syncing"] = True
                    try:
                        slider.value = position
                    finally:
                        busy["syncing"] = False
            refresh_query()
            update_side(side)

        return callback

    def _on_slider(side: str, name: str, text: Any, spec: WidgetSpec) -> Callable[..., None]:
        def callback(attr: str, old: Any, new: Any) -> None:
            if busy["syncing"]:
                return
            value = 10.0 ** float(new) if spec.slider == "log" else float(new)
            if spec.kind == "int":
                value = round(value)
            busy["syncing"] = True
            try:
                text.value = _fmt(float(f"{value:.4g}")) if spec.kind != "int" else str(int(value))
            finally:
                busy["syncing"] = False
            _on_text(side, name, None, spec)("value", None, text.value)

        return callback

    def _on_bool(side: str, name: str) -> Callable[..., None]:
        def callback(attr: str, old: Any, new: Any) -> None:
            default = bool(settings.entries[side].hyperparameter(name).default)
            if bool(new) == default:
                settings.values[side].pop(name, None)
            else:
                settings.values[side][name] = "true" if new else "false"
            refresh_query()
            update_side(side)

        return callback

    def on_select(side: str) -> Callable[..., None]:
        def callback(attr: str, old: Any, new: Any) -> None:
            settings.entries[side] = extra[new] if new in extra else CATALOGUE[resolve_name(new)]
            settings.values[side] = _required_examples(settings.entries[side])
            build_inputs(side)
            refresh_query()
            update_side(side)

        return callback

    for side in ("a", "b"):
        selects[side] = Select(
            title=f"optimizer {side.upper()}",
            value=settings.entries[side].name,
            options=names,
            name=f"{side}.optimizer",
            css_classes=[f"of-{side}-optimizer"],
        )
        selects[side].on_change("value", on_select(side))
        build_inputs(side)

    def on_page(attr: str, old: Any, new: Any) -> None:
        problems_now = []
        try:
            steps = int(steps_input.value)
            if not 1 <= steps <= 5000:
                raise ValueError
            settings.steps = steps
        except ValueError:
            problems_now.append(f"steps must be an integer in [1, 5000], got {steps_input.value!r}")
        try:
            noise = float(noise_input.value)
            if not (math.isfinite(noise) and noise >= 0.0):
                raise ValueError
            settings.noise = noise
        except ValueError:
            problems_now.append(f"noise must be a number >= 0, got {noise_input.value!r}")
        settings.fn = fn_select.value
        page_message.text = "<br/>".join(problems_now)
        if problems_now:
            return
        refresh_query()
        update_contour()
        update_side("a")
        update_side("b")

    fn_select.on_change("value", on_page)
    steps_input.on_change("value", on_page)
    noise_input.on_change("value", on_page)

    update_contour()
    update_side("a")
    update_side("b")
    for side in ("a", "b"):
        if messages[side].text:  # a bad value from the URL: draw the defaults, keep the message
            kept = messages[side].text
            saved = settings.values[side]
            settings.values[side] = {}
            update_side(side)
            settings.values[side] = saved
            messages[side].text = kept

    side_columns = [
        column(
            Div(text=f"<b style='color:{_COLOURS[side]}'>{side.upper()}</b>"),
            selects[side],
            messages[side],
            inputs[side],
            notes[side],
            width=300,
        )
        for side in ("a", "b")
    ]
    header = Div(
        text="<h2 style='margin:4px 0'>optfilters explorer</h2>Two optimizers side by side; "
        "the URL holds the configuration (copy it to share).",
        name="header",
    )
    frequency = column(row(bode_mag, pz), bode_phase)
    time = column(row(impulse_fig, step_fig))
    loop = column(row(rate_fig), row(map_figs["a"], map_figs["b"]))
    training = column(row(traj_fig, pred_fig))
    tabs = Tabs(
        tabs=[
            TabPanel(child=frequency, title="frequency"),
            TabPanel(child=time, title="time"),
            TabPanel(child=loop, title="closed loop"),
            TabPanel(child=training, title="training"),
        ],
        name="tabs",
    )
    page = column(
        header,
        page_message,
        row(fn_select, steps_input, noise_input),
        row(*side_columns, tabs),
        query,
    )
    doc.add_root(page)
    doc.title = "optfilters explorer"


def _required_examples(entry: CatalogueEntry) -> dict[str, str]:
    """Texts for the hyperparameters without a default, from the entry's first example (custom's b and a).

    Examples
    --------
    >>> from optfilters import CATALOGUE
    >>> _required_examples(CATALOGUE["custom"])
    {'b': '0.1', 'a': '1,-0.9'}
    """
    required = [hp.name for hp in entry.hyperparameters if hp.required]
    if not required or not entry.examples:
        return {}
    example = entry.examples[0]
    texts = {k: _fmt(v) for k, v in example.items() if k in required}
    texts.update(
        {k: _fmt(v) for k, v in example.items() if k not in required and k in {h.name for h in entry.hyperparameters}}
    )
    return texts


def _css(side: str, name: str, part: str = "input") -> str:
    """The CSS class of an input's element (what a browser test finds): ``of-a-beta1-input``."""
    return f"of-{side}-{name.replace('_', '-')}-{part}"


def _number(text: Any) -> float | None:
    try:
        value = float(str(text))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _contour_lines(X: Any, Y: Any, Z: Any, levels: Any) -> tuple[list[list[float]], list[list[float]]]:
    """Contour polylines by marching squares (contourpy, which matplotlib depends on)."""
    import importlib

    contourpy: Any = importlib.import_module("contourpy")  # matplotlib's dependency
    generator = contourpy.contour_generator(X, Y, Z)
    xs: list[list[float]] = []
    ys: list[list[float]] = []
    for level in levels:
        for line in generator.lines(level):
            xs.append(line[:, 0].tolist())
            ys.append(line[:, 1].tolist())
    return xs, ys


# ----------------------------------------------------------------------------- the server


def serve(
    port: int = 5006,
    address: str = "127.0.0.1",
    open_browser: bool = True,
    extra: Mapping[str, CatalogueEntry] | None = None,
    on_start: Callable[[str], None] | None = None,
) -> None:
    """Start the explorer's server and run until interrupted.

    Parameters
    ----------
    port : int
        TCP port (0: a free one).
    address : str
        Address to listen on (default: this machine only).
    open_browser : bool
        Open the page in the default browser.
    extra : mapping, optional
        Extra entries (the user's models) offered beside the catalogue.
    on_start : callable, optional
        Called with the page's URL once the server listens.
    """
    from bokeh.application import Application
    from bokeh.application.handlers.function import FunctionHandler
    from bokeh.server.server import Server

    application = Application(FunctionHandler(lambda doc: make_document(doc, extra)))
    if port == 0:
        import socket

        with socket.socket() as probe:
            probe.bind((address, 0))
            port = probe.getsockname()[1]
    server = Server(
        {"/": application},
        port=port,
        address=address,
        allow_websocket_origin=[f"{address}:{port}", f"localhost:{port}"],
        num_procs=1,
    )
    server.start()
    try:  # import torch and warm the bridge up before the first page asks for a trajectory
        from .catalogue import get

        panel_data(get("momentum"), CATALOGUE["momentum"], steps=2, points=4, map_points=4)
    except Exception:  # pragma: no cover - the page reports what fails
        pass
    url = f"http://{address}:{port}/"
    if on_start is not None:
        on_start(url)
    if open_browser:
        server.io_loop.add_callback(lambda: _open(url))
    try:
        server.io_loop.start()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def _open(url: str) -> None:
    import webbrowser

    webbrowser.open(url)
