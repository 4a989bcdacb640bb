"""The one realisation of a filter term (optfilters.program + FilterTerm.emit) against scipy, for all filters."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import signal

import optfilters
from optfilters import ArmaFilter
from optfilters.program import ProgramBuilder
from optfilters.stages import FilterTerm, LinearStage

poles = st.floats(-0.95, 0.95).filter(lambda p: abs(p) > 1e-3)
zeros = st.floats(-2.0, 2.0)


@st.composite
def stable_filters(draw: st.DrawFn) -> ArmaFilter:
    """One-pole, EMA, ARMA(2,2) with real or complex poles, and high orders from zeros and poles."""
    kind = draw(st.sampled_from(["one_pole", "ema", "arma2", "complex", "high", "fir"]))
    if kind == "one_pole":
        return ArmaFilter([draw(st.floats(0.1, 3.0))], [1.0, -draw(poles)])
    if kind == "ema":
        return ArmaFilter.ema(draw(st.floats(0.0, 0.999)))
    if kind == "fir":
        return ArmaFilter(draw(st.lists(st.floats(-2.0, 2.0), min_size=2, max_size=4)), [1.0])
    if kind == "complex":
        r, w = draw(st.floats(0.1, 0.95)), draw(st.floats(0.1, 3.0))
        return ArmaFilter.from_zpk([draw(zeros)], [r * np.exp(1j * w), r * np.exp(-1j * w)], draw(st.floats(0.1, 2.0)))
    n = 2 if kind == "arma2" else draw(st.integers(3, 6))
    ps = [draw(poles) for _ in range(n)]
    zs = [draw(zeros) for _ in range(n)]
    return ArmaFilter.from_zpk(zs, ps, draw(st.floats(0.1, 2.0)))


@settings(max_examples=60, deadline=None)
@given(stable_filters(), st.lists(st.floats(-10.0, 10.0), min_size=1, max_size=40))
def test_every_realisation_is_the_filter(f: ArmaFilter, xs: list[float]) -> None:
    """Whatever form the term runs in (lerp, mul/add, delta-operator sections, direct form), it is H(z) from rest."""
    x = np.array(xs)
    expected = signal.lfilter(f.b, f.a, x)
    got = LinearStage.of(f).response(x)
    scale = max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-10 * scale)


@settings(max_examples=30, deadline=None)
@given(st.floats(0.0, 0.99), st.floats(-5.0, 5.0), st.lists(st.floats(-3.0, 3.0), min_size=2, max_size=20))
@example(0.0, 2.0, [1.0, -1.0, 3.0])  # pole 0: memoryless (a = [1]), the previous output is never read
def test_first_output_and_initial_output(pole: float, init: float, xs: list[float]) -> None:
    """``first_output_is_input`` starts at the input; ``initial_output`` starts from that previous output.

    With pole 0 the filter is memoryless (``b = [1]``, ``a = [1]``) and the recursion ``y = 0 y + x`` never reads
    the previous output: ``initial_output`` is accepted and has no effect (Yogi with ``beta1 = 0``).
    """
    x = np.array(xs)
    first = LinearStage.of(ArmaFilter([0.5], [1.0, -pole]), first_output_is_input=True).response(x)
    y, expected = x[0], [x[0]]
    for value in x[1:]:
        y = pole * y + 0.5 * value
        expected.append(y)
    np.testing.assert_allclose(first, expected, rtol=1e-12, atol=1e-12)
    term = FilterTerm(ArmaFilter([1.0], [1.0, -pole]), initial_output=init)
    if pole == 0.0:  # nothing to start: the same term as from rest (kept as 0, time invariant)
        assert term == FilterTerm(ArmaFilter([1.0], [1.0])) and term.is_time_invariant
    started = LinearStage((term,)).response(x)
    y, expected = init, []
    for value in x:
        y = pole * y + value
        expected.append(y)
    np.testing.assert_allclose(started, expected, rtol=1e-12, atol=1e-12)


def test_the_realisation_is_chosen_from_the_filter_and_the_state_dtype() -> None:
    """The forms the documentation promises, read from the emitted operations."""

    def ops(f: ArmaFilter, dtype: str = "float64", square: bool = False) -> list[str]:
        bld = ProgramBuilder(dtype)
        FilterTerm(f).emit(bld, "x", "k", square=square)
        return [str(ins.op) for ins in bld.instructions]

    assert ops(ArmaFilter.ema(0.9)) == ["lerp_"]
    assert ops(ArmaFilter([1.0], [1.0, -0.9])) == ["mul_s_", "add_"]
    assert ops(ArmaFilter.ema(0.999), square=True) == ["mul_s_", "addcmul_"]
    assert ops(ArmaFilter([1.0], [1.0, -1.0]), square=True) == ["addcmul_"]
    assert ops(ArmaFilter([1.0], [1.0, -0.9999999]), "float32") == ["mul_s", "add_", "add_"]  # delta form
    assert ops(ArmaFilter([1.0, 0.5], [1.0])) == ["add", "zero_", "add_"]  # direct form
    assert ops(ArmaFilter([0.3, 0.2], [1.0, -1.2, 0.5])).count("add") == 2  # one delta-operator section
    assert ops(ArmaFilter([2.0])) == []  # a constant joins the coefficient


def test_numpy_reference_is_the_models_step_program() -> None:
    """NumpyOptimizer runs the very program the bridge runs (its state keys are the bridge's)."""
    opt = optfilters.get("rmsprop", centered=True, momentum=0.5).optimizer(np.zeros(2))
    opt.step([1.0, -2.0])
    program = optfilters.get("rmsprop", centered=True, momentum=0.5).plan().program(1)
    assert sorted(opt.state) == sorted(program.keys) == ["center.0", "post.0", "second_moment.0"]
    with pytest.raises(ValueError, match=r"state key 'second_moment\.0'"):
        adam = optfilters.get("adam")
        optfilters.chain(adam.normaliser, adam.normaliser).plan().program(1)
