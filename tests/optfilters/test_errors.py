"""Field-standard names (bias correction) with the former public names kept as deprecated aliases."""

from __future__ import annotations

import numpy as np
import pytest

import optfilters
from optfilters import ArmaFilter, stages


def test_bias_correct_is_adams_correction_and_compensate_its_deprecated_alias() -> None:
    ema = ArmaFilter.ema(0.9)
    x = np.linspace(1.0, 2.0, 50)
    m = ema.filter(x)
    np.testing.assert_allclose(optfilters.bias_correct(ema, x), m / (1 - 0.9 ** np.arange(1, 51)), rtol=1e-12)
    with pytest.warns(DeprecationWarning, match=r"optfilters\.compensate is deprecated; use optfilters\.bias_correct"):
        old = optfilters.compensate(ema, x)
    np.testing.assert_array_equal(old, optfilters.bias_correct(ema, x))
    assert optfilters.compensate.__name__ == "compensate" and "bias_correct" in (optfilters.compensate.__doc__ or "")


@pytest.mark.parametrize(
    ("old", "new", "value"),
    [("transient_correction", "bias_correction", 1 - 0.9**3), ("transient_compensation", "bias_correction_gain", None)],
)
def test_the_stage_helpers_renamed_to_bias_correction(old: str, new: str, value: float | None) -> None:
    ema = ArmaFilter.ema(0.9)
    expected = getattr(stages, new)(ema, 3)
    if value is not None:
        assert expected == pytest.approx(value, rel=1e-15)
    else:
        assert expected == pytest.approx(1 / (1 - 0.9**3), rel=1e-15)
    with pytest.warns(
        DeprecationWarning, match=rf"optfilters\.stages\.{old} is deprecated; use optfilters\.stages\.{new}"
    ):
        assert getattr(stages, old)(ema, 3) == expected
    # a one-pole filter uses torch.optim.Adam's very expression, 1 - beta ** step
    assert stages.bias_correction(ArmaFilter.ema(0.999), 7) == 1 - 0.999**7


def test_the_new_names_warn_nothing() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optfilters.bias_correct(ArmaFilter.ema(0.5), [1.0, 1.0])
        stages.bias_correction(ArmaFilter.ema(0.5), 2)
        stages.bias_correction_gain(ArmaFilter.ema(0.5), 2)


# ----------------------------------------------------------------------------- renamed keywords and attributes


def _one_warning(match: str) -> pytest.WarningsChecker:
    return pytest.warns(DeprecationWarning, match=match)


def test_filter_term_compensated_keyword_and_attributes_are_deprecated_aliases() -> None:
    from optfilters.stages import FilterTerm, LinearStage

    new = FilterTerm(ArmaFilter.ema(0.9), bias_corrected=True)
    with _one_warning(r"FilterTerm: keyword 'compensated' is deprecated; use 'bias_corrected'"):
        old = FilterTerm(ArmaFilter.ema(0.9), compensated=True)
    assert old == new and old.bias_corrected is True
    with _one_warning(r"FilterTerm\.compensated is deprecated; use optfilters\.stages\.FilterTerm\.bias_corrected"):
        assert new.compensated is True
    with _one_warning(r"FilterTerm\.can_compensate is deprecated; use \S+FilterTerm\.can_bias_correct"):
        assert new.can_compensate is new.can_bias_correct is True
    with pytest.raises(TypeError, match="pass 'bias_corrected' only"):
        FilterTerm(ArmaFilter.ema(0.9), compensated=True, bias_corrected=True)
    # LinearStage.of passes the old keyword on to FilterTerm, which still takes it
    with _one_warning("keyword 'compensated' is deprecated"):
        stage = LinearStage.of(ArmaFilter.ema(0.9), compensated=True)
    assert stage == LinearStage.of(ArmaFilter.ema(0.9), bias_corrected=True)
    with _one_warning(r"LinearStage\.compensated is deprecated; use optfilters\.stages\.LinearStage\.bias_corrected"):
        assert stage.compensated is True


def test_compensate_keyword_of_the_responses_is_a_deprecated_alias() -> None:
    from optfilters.stages import LinearStage, LinearStageRunner

    stage = LinearStage.of(ArmaFilter.ema(0.5), bias_corrected=True)
    ones = np.ones(4)
    raw = 1 - 0.5 ** np.arange(1, 5)  # the EMA's step response from rest, 1 - beta^t
    np.testing.assert_allclose(stage.response(ones, bias_correction=False), raw, rtol=1e-15)
    with _one_warning(r"LinearStage\.response: keyword 'compensate' is deprecated; use 'bias_correction'"):
        np.testing.assert_array_equal(
            stage.response(ones, compensate=False), stage.response(ones, bias_correction=False)
        )
    with _one_warning("LinearStageRunner: keyword 'compensate' is deprecated"):
        runner = LinearStageRunner(stage, (), compensate=False)
    assert runner.bias_correction is False
    term = stage.terms[0]
    with _one_warning(r"FilterTerm\.coefficient: keyword 'compensate'"):
        assert term.coefficient(2, compensate=True) == term.coefficient(2, bias_correction=True) == 1 / (1 - 0.5**2)
    # a package stage's own realisation takes the new keyword and the old one alike
    adan = optfilters.get("adan").gradient_stage
    raw, corrected = adan.response(ones, bias_correction=False), adan.response(ones, bias_correction=True)
    assert not np.allclose(raw, corrected)  # the keyword matters: Adan's moments are corrected
    with _one_warning("keyword 'compensate' is deprecated"):
        np.testing.assert_array_equal(adan.response(ones, compensate=False), raw)


def test_step_response_and_normaliser_compensated_attributes_are_deprecated_aliases() -> None:
    s = optfilters.step_response(ArmaFilter.ema(0.9), n=3)
    np.testing.assert_allclose(s.bias_corrected, np.ones(3), rtol=1e-15)
    assert "bias_corrected" in s.as_dict() and "compensated" not in s.as_dict()
    with _one_warning(r"StepResponse\.compensated is deprecated; use optfilters\.StepResponse\.bias_corrected"):
        np.testing.assert_array_equal(s.compensated, s.bias_corrected)
    norm = optfilters.get("adam").normaliser
    assert norm.bias_corrected is True and optfilters.get("rmsprop").normaliser.bias_corrected is False
    with _one_warning(r"RmsNormaliser\.compensated is deprecated"):
        assert norm.compensated is True


def test_plot_step_compensated_keyword_is_a_deprecated_alias() -> None:
    pytest.importorskip("matplotlib")
    from optfilters import plot

    new = plot.step_plot("adam", n=3, bias_corrected=True)
    with _one_warning(r"optfilters\.plot\.step_plot: keyword 'compensated' is deprecated; use 'bias_corrected'"):
        old = plot.step_plot("adam", n=3, compensated=True)
    assert sorted(old.artists) == sorted(new.artists) == ["bias_corrected"]
    np.testing.assert_array_equal(old.artists["bias_corrected"][0].get_ydata(), np.ones(3))
    old.close()
    new.close()


def test_the_new_keywords_and_attributes_warn_nothing() -> None:
    import warnings

    from optfilters.stages import FilterTerm, LinearStage

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stage = LinearStage((FilterTerm(ArmaFilter.ema(0.5), bias_corrected=True),))
        stage.response(np.ones(2), bias_correction=True)
        assert stage.bias_corrected and stage.terms[0].can_bias_correct
        assert optfilters.step_response("adam", n=2).bias_corrected.tolist() == [1.0, 1.0]


# ----------------------------------------------------------------------------- one meaning of "preconditioner"


def test_preconditioner_is_the_multiplier_and_the_denominator_has_its_own_name() -> None:
    """Kingma & Ba (2015), Algorithm 1: the update is -lr P m_hat with P = 1 / (sqrt(v_hat) + eps)."""
    from optfilters.closed_loop import closed_loop

    adam = optfilters.get("adam", eps=1e-3)
    v = 0.25
    loop = closed_loop(adam, second_moment=v)
    assert loop.preconditioner == pytest.approx(1 / (np.sqrt(v) + 1e-3), rel=1e-12)  # the multiplier
    keys, denominator = adam.normaliser.normaliser_denominator("adam")
    assert keys == ("second_moment.0",)
    # state v (bias-corrected at t -> large t): the denominator is sqrt(v) + eps, the reciprocal of P
    d = denominator([np.array([v])], 10**6)
    assert float(d[0]) == pytest.approx(1 / loop.preconditioner, rel=1e-9)
    with pytest.warns(DeprecationWarning, match=r"Stage\.preconditioner is deprecated; use normaliser_denominator"):
        old_keys, old = adam.normaliser.preconditioner("adam")
    assert old_keys == keys and float(old([np.array([v])], 10**6)[0]) == float(d[0])
    with pytest.raises(ValueError, match="need an RMS or peak normaliser"):
        optfilters.get("momentum").gradient_stage.normaliser_denominator("momentum")


def test_a_stage_kind_written_with_the_old_method_name_still_works() -> None:
    from dataclasses import dataclass

    from optfilters.stages import Stage

    @dataclass(frozen=True)
    class Legacy(Stage):
        def emit(self, bld, sig, variant=None):  # type: ignore[no-untyped-def]
            return None

        def describe(self) -> str:
            return "legacy"

        def preconditioner(self, owner):  # type: ignore[no-untyped-def,override]
            return ("v",), lambda values, t, ops=None: values[0]

    with pytest.warns(DeprecationWarning, match=r"Legacy\.preconditioner is deprecated; define normaliser_denominator"):
        keys, d = Legacy().normaliser_denominator("x")
    assert keys == ("v",) and d([3.0], 1) == 3.0


def test_network_denominator_names_and_their_deprecated_aliases() -> None:
    torch = pytest.importorskip("torch")
    from optfilters import network
    from optfilters.torch import FilterOptimizer

    w = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = FilterOptimizer([w], "adam", lr=0.1, eps=0.0)
    w.grad = torch.tensor([3.0, -4.0], dtype=torch.float64)
    opt.step()
    (d,) = network.adaptive_denominator(opt)
    assert d.tolist() == [3.0, 4.0]  # sqrt(v_hat) = |g| after one step (torch.optim.Adam's denom)
    with pytest.warns(DeprecationWarning, match=r"optfilters\.network\.adaptive_preconditioner is deprecated"):
        assert network.adaptive_preconditioner(opt)[0].tolist() == [3.0, 4.0]
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)

    def loss() -> torch.Tensor:
        return 0.5 * (3.0 * x[0] ** 2 + 0.5 * x[1] ** 2 + 2.0 * x[0] * x[1])

    den = [torch.tensor([3.0, 0.5], dtype=torch.float64)]
    new = network.top_eigenvalue(loss, [x], denominator=den, tol=1e-12).value
    assert new == pytest.approx(1 + np.sqrt(2 / 3), rel=1e-9)  # D^-1 H = [[1, 1/3], [2, 1]]
    with pytest.warns(DeprecationWarning, match="keyword 'preconditioner' is deprecated; use 'denominator'"):
        old = network.top_eigenvalue(loss, [x], preconditioner=den, tol=1e-12).value
    assert old == new


def test_user_code_turns_sys_exit_into_an_error_and_lets_interrupts_through() -> None:
    from optfilters.errors import UnknownNameError, user_code

    with pytest.raises(UnknownNameError, match=r"^'m\.py' called sys\.exit\(3\) while loading$"):
        with user_code("'m.py'", "while loading"):
            raise SystemExit(3)
    with pytest.raises(ValueError, match=r"called sys\.exit\('bye'\)"):
        with user_code("f()", "while building", ValueError):
            raise SystemExit("bye")
    with pytest.raises(KeyboardInterrupt):
        with user_code("'m.py'", "while loading"):
            raise KeyboardInterrupt
