"""The extension point: stage kinds defined HERE, outside the package, work end to end.

Three kinds, each a small frozen dataclass implementing :class:`optfilters.stages.Stage`:

* ``FlooredRms``: a normaliser dividing by ``max(sqrt(v), floor) + eps``, ``v`` an EMA
  of ``g^2`` (an operation outside the built-in set: ``clamp_min``, with numpy,
  torch, foreach and C forms), with its own linearisation and mean-field tracker;
* ``Cautious``: a mask that needs the direction and the gradient both
  (``d <- d * [d g > 0]``);
* ``WeightAverage``: a parameter-side EMA after the update (the first step copies
  the parameter: a stage whose operations differ at the first step);
* ``RowNormaliser``: a factored statistic (one EMA per row of a matrix, Adafactor's
  kind of state) with state of its own shape and operations that are not elementwise.

Each runs in the numpy reference executor and through the bridge (single-tensor,
foreach and fused paths), and is compared with recursions written here
independently (the gradient filter by ``scipy.signal.lfilter``); the linearised
closed loop, the noisy-quadratic prediction and the summary-table row come
from the same stage objects.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from scipy import signal

import optfilters
from optfilters.closed_loop import closed_loop, rate_curve
from optfilters.noisy_quadratic import predict
from optfilters.program import LinComb, Op, ProgramBuilder, Signals
from optfilters.stages import LearningRate, Moments, Stage, Tracker
from optfilters.table import table_row
from optfilters.torch import FilterOptimizer
from optfilters.torch._native import compiler

CLAMP_MIN = Op(
    "clamp_min",
    numpy=lambda x, s: np.maximum(x, s),
    torch=lambda x, s: torch.clamp(x, min=s),
    foreach=lambda xs, s: list(torch._foreach_clamp_min(xs, s)),
    c=lambda args, s: f"fmax({args[0]}, {s})",
)
POSITIVE = Op(
    "positive",
    numpy=lambda x, s: (x > 0.0).astype(np.float64),
    torch=lambda x, s: (x > 0.0).to(x.dtype),
    c=lambda args, s: f"{args[0]} > 0",
)
NO_C_CLAMP = Op("clamp_min_no_c", numpy=CLAMP_MIN.numpy, torch=CLAMP_MIN.torch)


class _FlooredTracker(Tracker):
    def __init__(self, stage: FlooredRms, size: int) -> None:
        self.stage = stage
        self.v = np.zeros(size)

    def gain(self, t: int, moments: Moments) -> np.ndarray:
        self.v = self.stage.beta * self.v + (1.0 - self.stage.beta) * moments.grad2
        return np.asarray(self.stage.frozen_gain(self.v), dtype=np.float64)


@dataclass(frozen=True)
class FlooredRms(Stage):
    """Divide the direction by ``max(sqrt(v), floor) + eps`` with ``v = beta v + (1 - beta) g^2``."""

    beta: float = 0.9
    floor: float = 0.1
    eps: float = 1e-8
    clamp: Op = CLAMP_MIN

    role: ClassVar[str] = "normaliser"
    is_linear: ClassVar[bool] = False

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        v = bld.state("floored.v")
        bld.emit("mul_s_", None, v, slot=bld.const(self.beta))
        bld.emit("addcmul_", None, v, sig.grad, sig.grad, slot=bld.const(1.0 - self.beta))
        den = bld.new(self.clamp, bld.new("sqrt", v), slot=bld.const(self.floor))
        bld.emit("add_s_", None, den, slot=bld.const(self.eps))
        sig.direction = LinComb.of(bld.materialise(sig.direction))
        sig.direction.den = den

    def frozen_gain(self, second_moment: Any, t: int | None = None) -> Any:
        return 1.0 / (np.maximum(np.sqrt(np.asarray(second_moment, dtype=np.float64)), self.floor) + self.eps)

    def linearisation_note(self, how: str, second_moment: float | None = None) -> str:
        return f"linearised: floored normaliser ({how})"

    def tracker(self, size: int) -> Tracker:
        return _FlooredTracker(self, size)

    def describe(self) -> str:
        return f"divide by max(sqrt(v), {self.floor:g}) + eps, v = EMA({self.beta:g}) of g^2"

    def table_cells(self) -> dict[str, str]:
        return {"gradient normalisation": f"divide by max(sqrt(v), {self.floor:g}) + eps", "variance filter": "EMA"}


@dataclass(frozen=True)
class Cautious(Stage):
    """Keep the direction only where it agrees in sign with the gradient."""

    role: ClassVar[str] = "mask"
    is_linear: ClassVar[bool] = False

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        d = bld.materialise(sig.direction)
        mask = bld.new(POSITIVE, bld.new("mul", d, sig.grad))
        sig.direction = LinComb.of(bld.new("mul", d, mask))

    def describe(self) -> str:
        return "d * [d g > 0]"


@dataclass(frozen=True)
class WeightAverage(Stage):
    """``a = beta a + (1 - beta) theta`` after the update (``a = theta`` at the first step)."""

    beta: float = 0.9

    role: ClassVar[str] = "average"

    @property
    def varies(self) -> bool:
        return True

    def variant(self, t: int | None) -> bool:
        return t == 1

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        a = bld.state("average.0")
        if variant:
            bld.emit("copy_", None, a, sig.param)
        else:
            bld.emit("lerp_", None, a, sig.param, slot=bld.const(1.0 - self.beta))

    def describe(self) -> str:
        return f"EMA({self.beta:g}) of the parameters"


ROW_MEAN_SQUARE = Op(
    "row_mean_square",
    numpy=lambda x, s: np.mean(x * x, axis=-1),
    torch=lambda x, s: (x * x).mean(dim=-1),
)
DIVIDE_ROWS = Op(
    "divide_rows",
    numpy=lambda x, v, s: x / (np.sqrt(v)[..., None] + s),
    torch=lambda x, v, s: x / (v.sqrt().unsqueeze(-1) + s),
)


@dataclass(frozen=True)
class RowNormaliser(Stage):
    """Divide each row of a matrix direction by ``sqrt(r) + eps``, ``r`` an EMA of the row's mean ``g^2``."""

    beta: float = 0.9
    eps: float = 1e-3

    role: ClassVar[str] = "normaliser"
    is_linear: ClassVar[bool] = False

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        r = bld.state("rows.r", shape=lambda shape: shape[:-1])
        bld.emit("mul_s_", None, r, slot=bld.const(self.beta))
        bld.emit("add_", None, r, bld.new(ROW_MEAN_SQUARE, sig.grad), slot=bld.const(1.0 - self.beta))
        d = bld.materialise(sig.direction)
        sig.direction = LinComb.of(bld.new(DIVIDE_ROWS, d, r, slot=bld.const(self.eps)))

    def describe(self) -> str:
        return f"divide each row by sqrt(EMA({self.beta:g}) of its mean g^2) + eps"


def test_a_factored_statistic_with_state_of_its_own_shape() -> None:
    grads = _gradients(60, 12).reshape(60, 3, 4)
    theta0 = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
    model = optfilters.chain(RowNormaliser(), lr=LR)
    theta, r, expected = theta0.copy(), np.zeros(3), []
    for g in grads:
        r = 0.9 * r + 0.1 * (g * g).mean(axis=1)
        theta = theta - LR * g / (np.sqrt(r)[:, None] + 1e-3)
        expected.append(theta.copy())
    opt = model.optimizer(theta0)
    got = np.array([opt.step(g).copy() for g in grads])
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-12)
    assert opt.state["rows.r"].shape == (3,)
    for foreach in (False, True):
        w = torch.nn.Parameter(torch.tensor(theta0))
        other = torch.nn.Parameter(torch.zeros(2, 2, dtype=torch.float64))
        bridge = FilterOptimizer([w, other], model, foreach=foreach)
        for g in grads:
            w.grad = torch.tensor(g)
            bridge.step()
        np.testing.assert_allclose(w.detach().numpy(), expected[-1], rtol=1e-12)
        assert tuple(bridge.state[w]["rows.r"].shape) == (3,)


# ----------------------------------------------------------------------------- independent recursions

BUTTER = optfilters.get("butterworth", order=4, cutoff=0.05, dc_gain=1.0)
LR = 0.05


def _gradients(steps: int = 200, size: int = 5) -> np.ndarray:
    rng = np.random.default_rng(7)
    g = rng.normal(size=(steps, size)) * np.resize([1.0, 0.05, 3.0, 0.5, 0.2], size)
    g[::17] = 0.0  # zeros
    g[5::23, 2] *= 40.0  # outliers
    return g


def _reference(grads: np.ndarray, theta0: np.ndarray, floor: float, cautious: bool, average: float | None) -> Any:
    """The composed optimizer written out: scipy's lfilter, then the normaliser, the mask, the update."""
    f = BUTTER.gradient.limit()
    d_all = signal.lfilter(f.b, f.a, grads, axis=0)
    theta, v = theta0.copy(), np.zeros_like(theta0)
    params, averages = [], []
    avg = None
    for g, d in zip(grads, d_all, strict=True):
        v = 0.9 * v + 0.1 * g * g
        d = d / (np.maximum(np.sqrt(v), floor) + 1e-8)
        if cautious:
            d = d * (d * g > 0.0)
        theta = theta - LR * d
        params.append(theta.copy())
        if average is not None:
            avg = theta.copy() if avg is None else average * avg + (1.0 - average) * theta
            averages.append(avg.copy())
    return np.array(params), (np.array(averages) if average is not None else None)


def _model(floor: float = 0.1, cautious: bool = False, average: float | None = None, clamp: Op = CLAMP_MIN) -> Any:
    parts: list[Any] = [BUTTER, FlooredRms(floor=floor, clamp=clamp)]
    if cautious:
        parts.append(Cautious())
    if average is not None:
        parts += [LearningRate(), WeightAverage(average)]
    return optfilters.chain(*parts, lr=LR)


def _bridge(model: Any, grads: np.ndarray, theta0: np.ndarray, **options: Any) -> tuple[np.ndarray, Any]:
    """Two parameters (the coordinates split), so that foreach and fused really run lists."""
    w1 = torch.nn.Parameter(torch.tensor(theta0[:2]))
    w2 = torch.nn.Parameter(torch.tensor(theta0[2:]))
    opt = FilterOptimizer([w1, w2], model, **options)
    out = []
    for g in grads:
        w1.grad, w2.grad = torch.tensor(g[:2]), torch.tensor(g[2:])
        opt.step()
        out.append(np.concatenate([w1.detach().numpy(), w2.detach().numpy()]))
    return np.array(out), opt


CASES = {
    "floored normaliser": {},
    "with the cautious mask": {"cautious": True},
    "with a weight average after the update": {"cautious": True, "average": 0.8},
}


@pytest.mark.parametrize("case", list(CASES))
def test_numpy_executor_follows_the_independent_recursion(case: str) -> None:
    options = CASES[case]
    grads, theta0 = _gradients(), np.linspace(-1.0, 1.0, 5)
    expected, averages = _reference(grads, theta0, 0.1, options.get("cautious", False), options.get("average"))
    model = _model(**options)
    opt = model.optimizer(theta0)
    got, got_avg = [], []
    for g in grads:
        got.append(opt.step(g).copy())
        if averages is not None:
            got_avg.append(opt.state["average.0"].copy())
    np.testing.assert_allclose(np.array(got), expected, rtol=1e-9, atol=1e-12)
    if averages is not None:
        np.testing.assert_allclose(np.array(got_avg), averages, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("path", [{"foreach": False}, {"foreach": True}, {"fused": True}], ids=str)
def test_bridge_follows_the_independent_recursion(case: str, path: dict[str, Any]) -> None:
    if path.get("fused") and compiler() is None:
        pytest.skip("no C compiler")
    options = CASES[case]
    grads, theta0 = _gradients(), np.linspace(-1.0, 1.0, 5)
    expected, averages = _reference(grads, theta0, 0.1, options.get("cautious", False), options.get("average"))
    model = _model(**options)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every path runs: no fallback
        got, opt = _bridge(model, grads, theta0, **path)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got, model.simulate(grads, theta0=theta0).params[1:], rtol=1e-12, atol=1e-14)
    state = opt.state[opt.param_groups[0]["params"][0]]
    assert {"gradient.0.s0.0", "floored.v"} <= set(state)
    if averages is not None:
        np.testing.assert_allclose(state["average.0"].numpy(), averages[-1][:2], rtol=1e-9)


def test_an_operation_without_a_c_form_falls_back_with_one_warning() -> None:
    if compiler() is None:
        pytest.skip("no C compiler")
    grads, theta0 = _gradients(30), np.linspace(-1.0, 1.0, 5)
    model = _model(clamp=NO_C_CLAMP)
    with pytest.warns(UserWarning, match="has no C form") as caught:
        got, _ = _bridge(model, grads, theta0, fused=True)
    assert len([w for w in caught if "C form" in str(w.message)]) == 1
    assert "\n" not in str(caught[0].message)
    np.testing.assert_allclose(got, _reference(grads, theta0, 0.1, False, None)[0], rtol=1e-9, atol=1e-12)


def test_checkpoint_round_trip_keeps_the_external_state() -> None:
    grads, theta0 = _gradients(40), np.linspace(-1.0, 1.0, 5)
    model = _model(average=0.8)
    straight, _ = _bridge(model, grads, theta0)
    first, opt = _bridge(model, grads[:20], theta0)
    saved = opt.state_dict()
    w1 = torch.nn.Parameter(torch.tensor(first[-1][:2]))
    w2 = torch.nn.Parameter(torch.tensor(first[-1][2:]))
    resumed = FilterOptimizer([w1, w2], model)
    resumed.load_state_dict(saved)
    for g in grads[20:]:
        w1.grad, w2.grad = torch.tensor(g[:2]), torch.tensor(g[2:])
        resumed.step()
    got = np.concatenate([w1.detach().numpy(), w2.detach().numpy()])
    np.testing.assert_array_equal(got, straight[-1])


# ----------------------------------------------------------------------------- analysis from the same objects


def test_linearised_closed_loop_uses_the_stage_frozen_gain() -> None:
    model = _model(floor=0.5)
    for v, gain in [(0.04, 1.0 / (0.5 + 1e-8)), (4.0, 1.0 / (2.0 + 1e-8))]:  # below and above the floor
        loop = closed_loop(model, second_moment=v)
        assert loop.preconditioner == pytest.approx(gain, rel=1e-15)
        assert loop.label.startswith("linearised: floored normaliser (frozen)")
        reference = closed_loop(BUTTER)  # the filter alone: x = lr h is the preconditioned curvature
        assert loop.stability().interval == pytest.approx(reference.stability().interval, rel=1e-12)
        np.testing.assert_allclose(loop.filter.b, BUTTER.gradient.limit().b, rtol=1e-15)
    assert model.linearised_filter(4.0).dc_gain == pytest.approx(1.0 / (2.0 + 1e-8), rel=1e-9)
    curve = rate_curve(model, [0.5, 1.0])
    np.testing.assert_allclose(curve.rate, closed_loop(BUTTER).rate([0.5, 1.0]), rtol=1e-12)


def test_noisy_quadratic_frozen_and_tracking_match_the_gain_folded_into_the_learning_rate() -> None:
    h = np.array([1.0, 0.2])
    model = _model(floor=0.5)
    gain = 1.0 / (math.sqrt(0.81) + 1e-8)
    frozen = predict(model, lr=0.1, curvatures=h, noise_var=0.3, init=[1.0, -2.0], steps=60, second_moment=0.81)
    plain = predict(BUTTER, lr=0.1 * gain, curvatures=h, noise_var=0.3, init=[1.0, -2.0], steps=60)
    np.testing.assert_allclose(frozen.expected_loss, plain.expected_loss, rtol=1e-11)
    assert frozen.label == "linearised: floored normaliser (frozen_given)" and frozen.linearised
    # Tiny gradients keep sqrt(E[v]) below the floor: the tracked gain is 1 / (floor + eps) at every step.
    small = {"curvatures": h, "noise_var": 1e-4, "init": [0.01, -0.02], "steps": 60}
    tracked = predict(model, lr=0.1, **small)
    floor = predict(BUTTER, lr=0.1 / (0.5 + 1e-8), **small)
    np.testing.assert_allclose(tracked.expected_loss, floor.expected_loss, rtol=1e-11)
    assert tracked.label == "linearised: floored normaliser (tracking)"


def test_noisy_quadratic_with_the_parameter_side_stage() -> None:
    """The weight average is linear: it joins the loop's state without changing the parameter's loss."""
    h = np.array([1.0, 0.2])
    with_avg = predict(_model(floor=0.5, average=0.8), lr=0.1, curvatures=h, noise_var=0.3, steps=40, second_moment=1.0)
    without = predict(_model(floor=0.5), lr=0.1, curvatures=h, noise_var=0.3, steps=40, second_moment=1.0)
    np.testing.assert_allclose(with_avg.expected_loss, without.expected_loss, rtol=1e-12)


def test_table_row_description_and_structure_come_from_the_stages() -> None:
    model = _model(cautious=True, average=0.8)
    row = table_row(model)
    assert row[1].startswith("ARMA(4,4)")  # the Butterworth gradient filter
    assert row[2] == "divide by max(sqrt(v), 0.1) + eps"
    assert row[3] == "EMA"
    assert row[5] == "separate, but the normalisation alters the effective step"
    assert [role for role, _ in model.stages] == ["gradient", "normaliser", "mask", "learning_rate", "average"]
    text = model.describe()
    assert "  normaliser: divide by max(sqrt(v), 0.1) + eps, v = EMA(0.9) of g^2" in text
    assert "  mask: d * [d g > 0]" in text and "  average: EMA(0.8) of the parameters" in text
    assert not model.is_linear and model.is_time_invariant
    assert list(model.filters()) == ["gradient"]
    assert model.name == "butterworth+normaliser+mask+average"


def test_chain_reads_as_one_line_and_is_accepted_everywhere() -> None:
    """A 4th-order Butterworth gradient filter followed by Adam's normaliser, in one expression."""
    model = optfilters.chain(BUTTER, optfilters.get("adam").normaliser, lr=1e-3)
    assert [role for role, _ in model.stages] == ["gradient", "normaliser", "learning_rate"]
    # the same model with the classic slot keywords
    same = optfilters.OptimizerModel(
        model.name, {"lr": 1e-3}, gradient=BUTTER.gradient, normaliser=optfilters.get("adam").normaliser
    )
    assert same == model
    grads = _gradients(20)
    w = torch.nn.Parameter(torch.zeros(5, dtype=torch.float64))
    opt = FilterOptimizer([w], model)
    for g in grads:
        w.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_allclose(w.detach().numpy(), model.simulate(grads, theta0=np.zeros(5)).params[-1], rtol=1e-12)
    assert optfilters.frequency_response(model, n=3).magnitude[0] == pytest.approx(1.0, rel=1e-9)
    assert optfilters.summarise(model).name == model.name
    assert closed_loop(model).label.startswith("linearised: normaliser frozen at second moment v=1")
    assert optfilters.step_response(model, n=3).name == model.name
    with pytest.raises(TypeError, match="chain\\(\\) takes stages"):
        optfilters.chain(BUTTER, 3.0)  # type: ignore[arg-type]


def test_sign_scalar_closure_equals_the_array_closure() -> None:
    """The float form the relay continuation calls per step gives the numbers of :meth:`SignNonlinearity.gaussian`."""
    from optfilters.stages import SignNonlinearity, Stage

    sign = SignNonlinearity()
    means = [0.0, -0.0, 1.0, -2.5, 1e-300, 3e300, math.inf, -math.inf, math.nan, 0.3]
    stds = [0.0, 1.0, 1e-3, 2.0, 1e-310, 1e300, math.inf, math.nan]
    for closure in (sign.scalar_closure(), Stage.scalar_closure(sign)):  # the float form and the generic wrapper
        assert closure is not None
        for mu in means:
            for sd in stds:
                with warnings.catch_warnings():  # nan and inf inputs: numpy's invalid-value warnings
                    warnings.simplefilter("ignore")
                    expected = [float(x) for x in sign.gaussian(mu, sd)]
                    got = closure(mu, sd)
                np.testing.assert_allclose(got, expected, rtol=1e-15, atol=0.0, err_msg=f"{mu}, {sd}")
    assert optfilters.get("adam").normaliser.scalar_closure() is None  # no closure: tracked instead


@pytest.mark.parametrize(("cutoff", "given_first"), [(0.0137, True), (0.0173, False)])
def test_filters_equal_by_coefficients_keep_their_own_realisation(cutoff: float, given_first: bool) -> None:
    """``ArmaFilter ==`` compares coefficients; above order 2 a filter runs as sections of the zeros and poles it
    stands for, which equal coefficients do not fix (an 8th-order Butterworth from its poles, and from its rounded
    coefficients: step responses 3.5e-5 apart).  The caches of step responses (bias correction) and of a stage's
    program were keyed by the filter, so the one of the two that ran first in the process decided both results."""
    from optfilters.stages import LinearStage, bias_correction

    z, p, k = signal.butter(8, cutoff, output="zpk")
    given = optfilters.ArmaFilter.from_zpk(z, p, k)
    rounded = optfilters.ArmaFilter(given.b, given.a)
    assert given == rounded and hash(given) == hash(rounded)
    x = np.ones((300, 1))
    expected = {id(f): f.filter(x) for f in (given, rounded)}  # scipy's sosfilt of each filter's own sections
    assert np.max(np.abs(expected[id(given)] - expected[id(rounded)])) > 1e-6
    for f in (given, rounded) if given_first else (rounded, given):
        np.testing.assert_allclose(LinearStage.of(f).response(x), expected[id(f)], rtol=1e-9, atol=1e-12)
        assert bias_correction(f, 40) == f.step_response(64)[39] / f.dc_gain


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def test_every_cache_key_type_compares_all_the_fields_it_is_built_from() -> None:
    """Stages, filter terms, gains and running products key caches (the lru_caches of stage and normaliser programs,
    ``_history``, the step plans, the bridge's model cache): two that compare equal must compute the same, so
    equality covers every field they are built from -- a generated ``__eq__`` with no ``compare=False`` init field,
    or ``_key()`` listing every init field (the kinds that keep cached sequences beside them).  (``ArmaFilter ==``
    compares coefficients only; its caches key by the realisation: the test above.)"""
    import dataclasses

    import optfilters.matrix_stages
    import optfilters.package_stages
    import optfilters.parameter_stages  # the stage kinds of these modules: subclasses of Stage once imported
    from optfilters.gains import Gain
    from optfilters.program import RunningProduct
    from optfilters.stages import FilterTerm

    kinds = {c for base in (optfilters.stages.Stage, Gain, RunningProduct) for c in _subclasses(base)} | {FilterTerm}
    keyed = set()
    for kind in sorted((k for k in kinds if dataclasses.is_dataclass(k)), key=lambda k: k.__qualname__):
        init = [f for f in dataclasses.fields(kind) if f.init]
        if kind.__dataclass_params__.eq:  # type: ignore[attr-defined]
            assert all(f.compare for f in init), kind
        else:
            assert "_key" in dir(kind) and kind.__eq__ is not object.__eq__, kind
            keyed.add(kind)
    assert keyed  # ScheduleFree, LrWeightedMomentum: checked on the catalogue's instances
    seen = set()
    for name in optfilters.names():
        try:
            model = optfilters.get(name)
        except optfilters.InvalidHyperparameterError:  # an entry with a required hyperparameter (custom's b)
            continue
        for stage in model.pipeline:
            if type(stage) in keyed:
                names = [f.name for f in dataclasses.fields(stage) if f.init]
                assert stage._key() == tuple(getattr(stage, n) for n in names), type(stage)
                seen.add(type(stage))
    assert seen == keyed
