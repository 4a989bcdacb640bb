"""Every public result class with a ``.plot()`` draws with a ``<what>_plot`` function of :mod:`optfilters.plot`.

The classes are found by walking every public module (no part of the dotted
name starts with ``_``): each one with a ``plot`` attribute is either a
:class:`optfilters.display.Plottable` (its ``_plot_function`` names the
function, and ``result.plot(ax, **kwargs)`` is that function called with
``(result, ax=ax, **kwargs)``), or one of the few that keep a ``plot`` of their
own (listed in ``OWN_PLOT`` with the function they draw with).  Each is built
from small inputs and drawn for real (matplotlib Agg); a new result class with
a ``plot`` fails here until it gets a factory below.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import optfilters
from optfilters.display import Plottable

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


def _loss_comparison() -> Any:
    from optfilters.observe import LossComparison

    return LossComparison(
        "sgd",
        np.arange(3.0),
        np.array([1.0, 0.5, 0.25]),
        np.array([1.0, 0.52, 0.2]),
        np.array([0.0, 0.01, 0.01]),
        seeds=10,
        lrs=np.full(2, 0.5),
    )


def _best_linear_approximation() -> Any:
    from optfilters.dither import estimate_best_linear_approximation

    g = np.random.default_rng(1).standard_normal((4, 512, 8))
    return estimate_best_linear_approximation(g, np.sign(g), burn_in=64)


def _audit() -> Any:
    from optfilters.audit import AuditSettings, audit

    return audit("torch.optim", only=["SGD"], settings=AuditSettings.quick())


def _empirical_response() -> Any:
    from optfilters.network import empirical_response

    g = np.random.default_rng(0).standard_normal((512, 4))
    return empirical_response(g, 2.0 * g, nperseg=64)


def _sharpness_trace() -> Any:
    from optfilters.network import SharpnessTrace

    values = np.array([2.0, 5.0, 9.0, 14.0, 19.0, 21.0, 19.0, 20.0, 21.0, 19.0])
    return SharpnessTrace("sgd", np.arange(0, 100, 10), values, threshold=20.0, lr=0.1)


def _network_observation() -> Any:
    from optfilters.network import observe_network

    return observe_network("sgd", lr=0.1, steps=20, record_coordinates=10, network={"hidden": [8], "samples": 100})


def _batch_scaling() -> Any:
    from optfilters.batch_size import NoisyQuadraticSpectrum, batch_scaling

    return batch_scaling("sgd", [1, 16, 256], target=0.05, nqm=NoisyQuadraticSpectrum.zhang2019(100), lr_points=8)


#: A small instance of every public result class with a ``plot`` method, by qualified name.
FACTORIES: dict[str, Callable[[], Any]] = {
    "optfilters.analysis.FrequencyResponse": lambda: optfilters.frequency_response(optfilters.ArmaFilter.ema(0.9)),
    "optfilters.analysis.PoleZeroMap": lambda: optfilters.pole_zero(optfilters.ArmaFilter.ema(0.9)),
    "optfilters.analysis.StepResponse": lambda: optfilters.step_response(optfilters.ArmaFilter.ema(0.9), n=8),
    "optfilters.analysis.ImpulseResponse": lambda: optfilters.impulse_response(optfilters.ArmaFilter.ema(0.9), n=8),
    "optfilters.audit.Audit": _audit,
    "optfilters.batch_size.BatchScaling": _batch_scaling,
    "optfilters.closed_loop.RateCurve": lambda: importlib.import_module("optfilters.closed_loop").rate_curve(
        "sgd", lr_curvature=[0.5, 1.0, 2.5]
    ),
    "optfilters.closed_loop.StabilityMap": lambda: importlib.import_module("optfilters.closed_loop").stability_map(
        "momentum", "momentum", [0.0, 0.5], [1.0, 2.5]
    ),
    "optfilters.describing_function.RelayRun": lambda: (
        importlib.import_module("optfilters.describing_function").sign_loop("lion", lr=0.01).run(1.0, steps=300)
    ),
    "optfilters.describing_function.NoiseTransition": lambda: importlib.import_module(
        "optfilters.describing_function"
    ).noise_transition("lion", [0.1, 1.0], lr=0.01),
    "optfilters.dither.BestLinearApproximation": _best_linear_approximation,
    "optfilters.iqc.Certificate": lambda: importlib.import_module("optfilters.iqc").certify(
        "sgd", mu=1.0, L=10.0, lr=0.1
    ),
    "optfilters.iqc.CertifiedTuning": lambda: importlib.import_module("optfilters.iqc").tune_certified(
        "sgd", condition_number=9.0, tol=1e-3
    ),
    "optfilters.large_signal.LargeSignalResponse": lambda: importlib.import_module(
        "optfilters.large_signal"
    ).step_response("adam", ratio=10.0, beta1=0.9, beta2=0.99, eps=0.0),
    "optfilters.large_signal.PeakRatioMap": lambda: importlib.import_module("optfilters.large_signal").peak_ratio_map(
        "adam", [0.9], [0.9, 0.95], ratio=10.0, eps=0.0
    ),
    "optfilters.large_signal.BoundedRegion": lambda: importlib.import_module("optfilters.large_signal").bounded_region(
        "adam", bound=1.05, ratio=10.0, rows=[0.9], span=(0.5, 0.99), eps=0.0, tolerance=1e-2
    ),
    "optfilters.margins.StepInfo": lambda: importlib.import_module("optfilters.margins").step_info(
        "momentum", 0.05, momentum=0.9
    ),
    "optfilters.margins.Margins": lambda: importlib.import_module("optfilters.margins").margins(
        "momentum", 0.05, momentum=0.9
    ),
    "optfilters.margins.StalenessRates": lambda: importlib.import_module("optfilters.margins").staleness_rates(
        "momentum", [0.05, 0.2], range(3), momentum=0.9
    ),
    "optfilters.margins.RootLocus": lambda: importlib.import_module("optfilters.margins").root_locus(
        "momentum", [1.0, 3.8], momentum=0.81
    ),
    "optfilters.margins.Sensitivity": lambda: importlib.import_module("optfilters.margins").sensitivity(
        "momentum", 0.05, momentum=0.9
    ),
    "optfilters.network.EmpiricalResponse": _empirical_response,
    "optfilters.network.SharpnessTrace": _sharpness_trace,
    "optfilters.network.NetworkObservation": _network_observation,
    "optfilters.noisy_quadratic.NoisyQuadraticPrediction": lambda: importlib.import_module(
        "optfilters.noisy_quadratic"
    ).predict("sgd", lr=0.1, curvatures=1.0, noise_var=1.0, init=1.0, steps=8),
    "optfilters.observe.LossComparison": _loss_comparison,
    "optfilters.thresholds.FrozenEdges": lambda: importlib.import_module("optfilters.thresholds").frozen_edges(
        "nadam", [100, 1000]
    ),
    "optfilters.thresholds.TimeVaryingVerdict": lambda: importlib.import_module(
        "optfilters.thresholds"
    ).time_varying_verdict("nadam", 5.0, steps=200),
    "optfilters.trajectory.TrajectoryGrid": lambda: importlib.import_module("optfilters.trajectory").run_trajectories(
        "quadratic", ["sgd", "momentum"], lrs=[0.001], steps=3, engine="numpy"
    ),
}

#: The classes that keep a ``plot`` of their own (another signature or more logic), with the function they draw with.
OWN_PLOT = {
    "optfilters.iqc.Certificate": "certified_rates_plot",  # passes ``{name: self}``
    "optfilters.iqc.CertifiedTuning": "certified_rates_plot",  # passes its certificate under a label
    "optfilters.trajectory.TrajectoryGrid": "trajectories_plot",  # takes ``fig=`` as well
    "optfilters.network.NetworkObservation": "empirical_response_plot",  # a loss panel, sharpness if measured, |H|
}


def _public_modules() -> list[str]:
    return ["optfilters"] + [
        info.name
        for info in pkgutil.walk_packages(optfilters.__path__, "optfilters.")
        if not any(part.startswith("_") for part in info.name.split("."))
    ]


def _result_classes() -> dict[str, type]:
    """Every public class (in some public module's ``__all__``) with a ``plot`` method, by where it is defined."""
    found: dict[str, type] = {}
    for module_name in _public_modules():
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isclass(obj) and obj is not Plottable and callable(getattr(obj, "plot", None)):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return dict(sorted(found.items()))


RESULT_CLASSES = _result_classes()


def _plot_functions() -> dict[str, Callable[..., Any]]:
    plot = importlib.import_module("optfilters.plot")
    return {
        name: f
        for name, f in vars(plot).items()
        if name.endswith("_plot") and inspect.isfunction(f) and f.__module__ == plot.__name__
    }


def test_the_walk_finds_every_result_class_and_each_has_a_factory() -> None:
    assert len(RESULT_CLASSES) >= 29  # the walk reached the package (29 when the mixin came)
    assert sorted(RESULT_CLASSES) == sorted(FACTORIES)
    own = {name for name, cls in RESULT_CLASSES.items() if not issubclass(cls, Plottable)}
    assert own == set(OWN_PLOT)
    assert all("plot" in vars(RESULT_CLASSES[name]) for name in OWN_PLOT)  # they really keep their own


@pytest.mark.parametrize("qualname", sorted(name for name, cls in RESULT_CLASSES.items() if issubclass(cls, Plottable)))
def test_a_plottable_names_an_existing_plot_function_and_passes_its_arguments_on(
    qualname: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = RESULT_CLASSES[qualname]
    assert "plot" not in vars(cls)  # the one implementation, not a copy
    functions = _plot_functions()
    name = cls._plot_function
    assert name in functions
    assert inspect.signature(functions[name]).return_annotation == "PlotResult"
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    drawn = object()

    def stand_in(*args: Any, **kwargs: Any) -> object:
        calls.append((args, kwargs))
        return drawn

    monkeypatch.setattr(importlib.import_module("optfilters.plot"), name, stand_in)
    result = object.__new__(cls)  # the call does not read the fields
    ax = object()
    assert result.plot(ax, title="t", label="l") is drawn
    assert result.plot() is drawn
    assert calls == [((result,), {"ax": ax, "title": "t", "label": "l"}), ((result,), {"ax": None})]


@pytest.mark.parametrize("qualname", sorted(RESULT_CLASSES))
def test_every_result_draws_with_its_plot_function_and_returns_its_plot_result(
    qualname: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plot = importlib.import_module("optfilters.plot")
    cls = RESULT_CLASSES[qualname]
    expected = OWN_PLOT.get(qualname) or cls._plot_function
    entered: list[str] = []
    returned: dict[str, list[Any]] = {}

    def spy(name: str, f: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            entered.append(name)
            out = f(*args, **kwargs)
            returned.setdefault(name, []).append(out)
            return out

        return wrapper

    for name, f in _plot_functions().items():
        monkeypatch.setattr(plot, name, spy(name, f))
    result = FACTORIES[qualname]()
    assert type(result) is cls
    drawn = result.plot()
    try:
        assert isinstance(drawn, plot.PlotResult)
        assert expected in entered
        assert drawn.artists
        if issubclass(cls, Plottable):
            assert entered[0] == expected
            assert drawn is returned[expected][-1]  # what the function drew, handed back as is
    finally:
        drawn.close()
        for outs in returned.values():
            for out in outs:
                out.close()
