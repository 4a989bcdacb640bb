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
