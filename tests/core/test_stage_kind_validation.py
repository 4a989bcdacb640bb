"""The hyperparameter checks of the package, parameter-side and matrix stage kinds: one line naming the parameter.

Every kind validates through :mod:`optfilters.validation` (``check_number`` /
``check_integer``), so a bad value raises ``InvalidHyperparameterError`` with
the house's message ``"<name> must be <range>, got <value>"``; the edges of
each range are accepted.
"""

from __future__ import annotations

import math

import pytest

from optfilters import InvalidHyperparameterError
from optfilters.matrix_stages import FactoredNormaliser, Orthogonalise
from optfilters.package_stages import ScheduleFree
from optfilters.parameter_stages import EmaAverage, Lookahead, SwaAverage, ema_average_variance_ratio

BAD = [
    (lambda: ScheduleFree(momentum=1.0), r"momentum must be in \(0, 1\), got 1.0"),
    (lambda: ScheduleFree(momentum=0.0), r"momentum must be in \(0, 1\), got 0.0"),
    (lambda: ScheduleFree(momentum=math.nan), r"momentum must be a finite number, got nan"),
    (lambda: ScheduleFree(averaging=0.0), r"averaging must be in \(0, 1\], got 0.0"),
    (lambda: EmaAverage(decay=1.0), r"decay must be in \[0, 1\), got 1.0"),
    (lambda: EmaAverage(start=0), r"start must be >= 1, got 0"),
    (lambda: EmaAverage(start=1.5), r"start must be an integer, got 1.5"),
    (lambda: SwaAverage(every=0), r"every must be >= 1, got 0"),
    (lambda: SwaAverage().window(0), r"n must be >= 1, got 0"),
    (lambda: Lookahead(k=0), r"k must be >= 1, got 0"),
    (lambda: Lookahead(alpha=1.5), r"alpha must be in \[0, 1\], got 1.5"),
    (lambda: ema_average_variance_ratio(0.5, 1.0), r"pole must be in \(-1, 1\), got 1.0"),
    (lambda: ema_average_variance_ratio(-0.1, 0.5), r"decay must be in \[0, 1\), got -0.1"),
    (lambda: Orthogonalise(steps=100), r"ns_steps must be in \[0, 99\], got 100"),
    (lambda: Orthogonalise(coefficients=(1.0, math.inf, 2.0)), r"ns_coefficients must be a finite number, got inf"),
    (lambda: FactoredNormaliser(beta2_decay=0.1), r"beta2_decay must be <= 0, got 0.1"),
]


@pytest.mark.parametrize(("build", "message"), BAD)
def test_a_bad_hyperparameter_is_refused_naming_it(build, message) -> None:
    with pytest.raises(InvalidHyperparameterError, match=f"^{message}$"):
        build()


def test_the_edges_of_each_range_are_accepted() -> None:
    assert ScheduleFree(momentum=0.5, averaging=1.0).averaging == 1.0
    assert EmaAverage(decay=0.0, start=1).decay == 0.0
    assert SwaAverage(start=2.0, every=3).window(1).b.tolist() == [1.0]
    assert Lookahead(k=1, alpha=0.0).period == 1
    assert ema_average_variance_ratio(0.0, -0.5) == 1.0
    assert Orthogonalise(steps=0).steps == 0
    assert FactoredNormaliser(beta2_decay=0.0).is_time_invariant
