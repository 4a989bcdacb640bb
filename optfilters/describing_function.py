"""Describing-function analysis of sign-type optimizers on a quadratic: approach, limit cycle, noise.

Lion, Signum / Tiger (Lion with ``beta1 = beta2``) and signSGD (``beta1 =
beta2 = 0``) take the sign of a linear pre-filter ``F(z)`` of the gradient and
step by ``lr`` (times the learning-rate gain): on ``f = h theta^2 / 2`` the
loop is a relay in feedback with ``G(z) = z^-1 F(z) / (1 - z^-1)``,

    d_t = F(g)_t,   g_t = h theta_{t-1},   theta_t = theta_{t-1} - lr sign(d_t).

Three regimes, each with its own exact or describing-function answer:

**Approach at constant speed.**  While ``d`` keeps its sign the parameter moves
by exactly ``lr`` a step, whatever the distance: ``theta_t = theta_0 - lr t``
and the loss is ``h (theta_0 - lr t)^2 / 2`` (Lion, lr 0.01, ``theta_0 = 1``:
0.15125 at step 45).  The phase ends at the first sign change of ``d``, found
exactly by running the model open loop on that ramp (:meth:`SignLoop.approach`).

**Limit cycle (exact, discrete time).**  Without noise ``theta / lr`` obeys a
recursion that involves neither ``lr`` nor ``h`` (the sign ignores positive
scales): the trajectory in units of ``lr`` depends only on the pre-filter and
on ``theta_0 / lr``, and ``theta`` stays on the lattice ``theta_0 + lr Z``.  So
every periodic regime has a period independent of ``lr`` and ``h`` and an
amplitude proportional to ``lr``.  A periodic sign pattern ``s`` (period
``N``, as many + as -) with ``theta_{-1} = q lr`` is a solution exactly when
the periodic steady state of ``d`` has the pattern's signs:

    s_t (q F(1) - (F r)_t) > 0 for every t,   r_t = s_0 + ... + s_{t-1},

where ``F r`` is the periodic response of ``F`` to ``r`` (evaluated at the
harmonics ``2 pi m / N``; Tsypkin's condition for sampled relay systems).
This is linear in ``q``: each pattern has an exact open interval of offsets
``q`` (:meth:`SignLoop.cycle`), which must also contain a lattice point
``q = theta_0 / lr mod 1``.  The symmetric patterns (``k`` steps down, ``k``
up: period ``2k``, a triangle of half-height ``k lr / 2``) are tabulated by
:meth:`SignLoop.symmetric_cycles`; Lion's default filter admits them only for
``k = 1, 2`` (so from ``theta_0 = 1``, lr 0.01 it ends in the period-4 cycle
``lr, 0, -lr, 0``), Signum with ``beta = 0.9`` for ``k = 1 .. 7``, each with
its centre within about ``0.08 lr`` of the minimum.  Offsets that no symmetric pattern
admits give longer, multi-switch patterns, checked by the same condition.

**Classical describing function (approximate).**  Harmonic balance ``1 + lr h
N(A) G(e^{iw}) = 0`` with the relay's ``N(A) = 4 / (pi A)`` puts the cycle at
the phase crossover of ``G`` and the parameter's fundamental at ``(4 / pi) lr
/ |1 - e^{-iw}|`` (:meth:`SignLoop.harmonic_balance`).  In discrete time
``G(-1)`` is always a crossover (period 2), which the lattice may forbid: the
exact analysis above is the one to trust; the comparison is in the paper
source ``papers/sign_stages.py``.

**With gradient noise** the relay is dithered: its random-input describing
function (the Gaussian gain ``sqrt(2/pi) / sigma``) linearises it, and the
steady state moves smoothly from the limit cycle to the linearised loop.
:func:`optfilters.noisy_quadratic.predict` propagates the mean and covariance
through the relay's exact Gaussian statistics (its mean, random-input gain and
variance: :meth:`optfilters.stages.SignNonlinearity.gaussian`), exact without
noise; :func:`noise_transition` sweeps the noise level against the noiseless
cycle and the pure Gaussian-gain linearisation.

Sophia's clip ``clip(m / (rho h), 1)`` is a saturation: :class:`Saturation`
gives its describing functions, and :func:`harmonic_balance` predicts whether
and where its loop cycles (only when the linear region's loop is unstable).

References: A. Gelb, W. E. Vander Velde, *Multiple-Input Describing Functions
and Nonlinear System Design* (1968); Ya. Z. Tsypkin, *Relay Control Systems*
(1984); J. Bussgang (1952); X. Chen et al., "Symbolic discovery of
optimization algorithms" (Lion, 2023).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .closed_loop import ModelLike, as_model
from .display import Plottable
from .errors import InvalidFilterError, InvalidHyperparameterError
from .filters import ArmaFilter
from .model import OptimizerModel
from .stages import SignNonlinearity
from .validation import MAX_STEPS, check_integer

__all__ = [
    "Approach",
    "HarmonicBalance",
    "LimitCycle",
    "NoiseTransition",
    "RelayRun",
    "Saturation",
    "SignLoop",
    "StaticNonlinearity",
    "final_cycle",
    "harmonic_balance",
    "noise_transition",
    "relay",
    "relay_dual_input",
    "sign_loop",
]

FloatArray = NDArray[np.float64]


class StaticNonlinearity(Protocol):
    """What the describing-function tools need from a memoryless odd nonlinearity.

    Examples
    --------
    >>> from optfilters.describing_function import Saturation, StaticNonlinearity, relay
    >>> all(callable(getattr(n, "gaussian")) for n in (relay(), Saturation()))
    True
    """

    def __call__(self, x: Any) -> FloatArray:
        """The nonlinearity elementwise."""

    def sinusoidal_gain(self, amplitude: Any) -> FloatArray:
        """``N(A)``: fundamental of the output over ``A`` for the input ``A sin wt``.

        Parameters
        ----------
        amplitude : array_like
            The input's amplitude ``A >= 0`` (units of the nonlinearity's input).

        Returns
        -------
        ndarray
            ``N(A)``, elementwise (output units per input unit).

        References
        ----------
        Gelb and Vander Velde, "Multiple-Input Describing Functions and Nonlinear
        System Design" (1968), the sinusoidal-input describing function.
        """

    def gaussian(self, mean: Any, std: Any) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Mean, random-input gain and variance of the output for a Gaussian input.

        Parameters
        ----------
        mean : array_like
            ``E[x]`` of the input.
        std : array_like
            Standard deviation of the input (0: a deterministic input).

        Returns
        -------
        mean : ndarray
            ``E[f(x)]``.
        gain : ndarray
            The random-input (Bussgang) gain ``E[f'(x)]``.
        variance : ndarray
            ``Var[f(x)]``.

        References
        ----------
        Gelb and Vander Velde (1968), the random-input describing function.
        """


def relay() -> SignNonlinearity:
    """The unit relay ``sign(x)``: the sign stage of Lion (its maths lives in the stage).

    Returns
    -------
    SignNonlinearity
        The sign stage, which is also a :class:`StaticNonlinearity`.

    Examples
    --------
    >>> from optfilters.describing_function import relay
    >>> relay()([-2.0, 0.0, 3.0]).tolist(), round(float(relay().sinusoidal_gain(1.0)), 6)
    ([-1.0, 0.0, 1.0], 1.27324)
    """
    return SignNonlinearity()


@dataclass(frozen=True)
class Saturation:
    """``clip(slope * x, -limit, limit)``: Sophia's clip ``clip(m / (rho h), 1)`` with ``slope = 1 / (rho h)``.

    Parameters
    ----------
    limit : float
        The output's bound (> 0).
    slope : float
        The gain in the linear region ``|x| < limit / slope`` (> 0).

    Raises
    ------
    InvalidHyperparameterError
        When ``limit`` or ``slope`` is not > 0 or their product is not finite.

    References
    ----------
    Liu et al., "Sophia: A Scalable Stochastic Second-order Optimizer for Language
    Model Pre-training" (2023): the clip ``clip(m / max(rho h, eps), 1)``.

    Examples
    --------
    >>> from optfilters.describing_function import Saturation
    >>> s = Saturation(limit=1.0, slope=1.0)
    >>> s([-3.0, 0.5, 2.0]).tolist(), float(s.sinusoidal_gain(0.5))
    ([-1.0, 0.5, 1.0], 1.0)
    """

    limit: float = 1.0
    slope: float = 1.0

    def __post_init__(self) -> None:
        if not (self.limit > 0.0 and self.slope > 0.0 and math.isfinite(self.limit * self.slope)):
            raise InvalidHyperparameterError(f"limit and slope must be finite and > 0, got {self.limit}, {self.slope}")

    def __call__(self, x: Any) -> FloatArray:
        """``clip(slope x, -limit, limit)`` elementwise."""
        return np.asarray(np.clip(self.slope * np.asarray(x, dtype=np.float64), -self.limit, self.limit))

    def sinusoidal_gain(self, amplitude: Any) -> FloatArray:
        """The sinusoidal describing function ``N(A)`` of the saturation.

        ``N(A) = slope`` for ``A <= a0 = limit / slope``, else ``(2 slope / pi)
        (asin r + r sqrt(1 - r^2))`` with ``r = a0 / A``.

        Parameters
        ----------
        amplitude : array_like
            The input's amplitude ``A >= 0``.

        Returns
        -------
        ndarray
            ``N(A)``, elementwise (``slope`` at ``A = 0``).

        References
        ----------
        Gelb and Vander Velde (1968), the saturation's describing function.

        Examples
        --------
        >>> from optfilters.describing_function import Saturation
        >>> round(float(Saturation().sinusoidal_gain(1e6) * 1e6), 4)    # -> 4 limit / (pi A): a relay
        1.2732
        """
        a = np.asarray(amplitude, dtype=np.float64)
        r = np.clip((self.limit / self.slope) / np.where(a > 0.0, a, 1.0), 0.0, 1.0)
        gain = (2.0 * self.slope / math.pi) * (np.arcsin(r) + r * np.sqrt(1.0 - r * r))
        return np.asarray(np.where(a > 0.0, gain, self.slope), dtype=np.float64)

    def gaussian(self, mean: Any, std: Any) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Mean, random-input gain ``slope P(|x| < a0)`` and variance of the output for ``x ~ N(mean, std^2)``.

        Parameters
        ----------
        mean : array_like
            ``E[x]`` of the input.
        std : array_like
            Standard deviation of the input (0: a deterministic input, the gain is
            then the slope at ``mean``).

        Returns
        -------
        mean : ndarray
            ``E[clip(slope x, -limit, limit)]``.
        gain : ndarray
            The random-input gain ``slope P(|x| < limit / slope)``.
        variance : ndarray
            The output's variance.

        Examples
        --------
        >>> from optfilters.describing_function import Saturation
        >>> m, gain, var = Saturation().gaussian(0.0, 1e-9)
        >>> float(m), round(float(gain), 6), float(var) < 1e-17       # the linear region
        (0.0, 1.0, True)
        """
        from scipy.special import ndtr

        mu = np.asarray(mean, dtype=np.float64)
        sd = np.asarray(std, dtype=np.float64)
        mu, sd = np.broadcast_arrays(mu, sd)
        a0 = self.limit / self.slope
        random = sd > 0.0
        s = np.where(random, sd, 1.0)
        lo, hi = (-a0 - mu) / s, (a0 - mu) / s
        phi_lo, phi_hi = (
            np.exp(-0.5 * lo * lo) / math.sqrt(2 * math.pi),
            np.exp(-0.5 * hi * hi) / math.sqrt(2 * math.pi),
        )
        p_lo, p_hi = ndtr(lo), ndtr(hi)
        inside = p_hi - p_lo
        # E[x; inside] and E[x^2; inside] for the truncated normal
        m1 = mu * inside + s * (phi_lo - phi_hi)
        m2 = (mu * mu + s * s) * inside + s * ((mu - a0) * phi_lo - (mu + a0) * phi_hi)
        mean_out = self.slope * m1 + self.limit * ((1.0 - p_hi) - p_lo)
        second = self.slope**2 * m2 + self.limit**2 * ((1.0 - p_hi) + p_lo)
        det = self(mu)
        expected = np.where(random, mean_out, det)
        gain = np.where(random, self.slope * inside, np.where(np.abs(mu) < a0, self.slope, 0.0))
        variance = np.where(random, np.maximum(second - mean_out * mean_out, 0.0), 0.0)
        return np.asarray(expected), np.asarray(gain), np.asarray(variance)


def relay_dual_input(amplitude: ArrayLike, std: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """The relay's dual-input describing function for ``A sin wt + n``, ``n ~ N(0, std^2)``: ``(N_A, N_n)``.

    With ``z = A^2 / (4 std^2)`` (Bessel functions ``I_0``, ``I_1``)::

        N_A = (2 / (std sqrt(2 pi))) e^{-z} (I_0(z) + I_1(z))      (sinusoid gain)
        N_n = (sqrt(2 / pi) / std) e^{-z} I_0(z)                    (random-input gain)

    from ``(1 / (pi A)) int erf(A sin u / (std sqrt 2)) sin u du`` and the
    average of the Gaussian gain over the sinusoid's phase.  ``std -> 0``
    gives ``4 / (pi A)`` and 0; ``A -> 0`` gives ``sqrt(2/pi) / std`` twice.

    Parameters
    ----------
    amplitude : array_like
        ``A >= 0``.
    std : array_like
        ``std > 0``.

    Returns
    -------
    n_a : ndarray
        The sinusoid's gain ``N_A`` (output per unit input amplitude).
    n_n : ndarray
        The random-input gain ``N_n`` of the noise.

    Raises
    ------
    InvalidHyperparameterError
        When some ``std <= 0`` or some ``amplitude < 0``.

    References
    ----------
    Gelb and Vander Velde (1968), the sinusoid-plus-Gaussian (dual-input) describing function.

    Examples
    --------
    >>> from optfilters.describing_function import relay_dual_input
    >>> na, nn = relay_dual_input([1e-9, 1.0], [1.0, 1e-6])
    >>> na.round(6).tolist(), round(float(nn[0]), 6)
    ([0.797885, 1.27324], 0.797885)
    """
    from scipy.special import ive

    a = np.asarray(amplitude, dtype=np.float64)
    s = np.asarray(std, dtype=np.float64)
    if np.any(s <= 0.0) or np.any(a < 0.0):
        raise InvalidHyperparameterError("relay_dual_input needs amplitude >= 0 and std > 0")
    z = a * a / (4.0 * s * s)
    big = z > 1e6  # e^-z I_v(z) by its asymptotic series (scipy's ive overflows to nan far out)
    zs = np.where(big, z, 1.0)
    root = 1.0 / np.sqrt(2.0 * math.pi * zs)
    e0 = np.where(big, root * (1.0 + 1.0 / (8.0 * zs) + 9.0 / (128.0 * zs * zs)), ive(0, np.where(big, 0.0, z)))
    e1 = np.where(big, root * (1.0 - 3.0 / (8.0 * zs) - 15.0 / (128.0 * zs * zs)), ive(1, np.where(big, 0.0, z)))
    n_a = 2.0 / (s * math.sqrt(2.0 * math.pi)) * (e0 + e1)
    n_n = math.sqrt(2.0 / math.pi) / s * e0
    return np.asarray(n_a, dtype=np.float64), np.asarray(n_n, dtype=np.float64)


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Approach:
    """The constant-speed approach of a sign loop, exact until the pre-filter's output first changes sign.

    Attributes
    ----------
    speed : float
        ``lr`` times the learning-rate gain: the distance moved per step.
    theta0 : float
    switch : int
        The first step whose sign differs from the first one (the phase is steps ``1 .. switch - 1``).
    crossing : float
        ``|theta_0| / speed``: when the ramp reaches the minimum.
    overshoot : float
        ``|theta|`` past the minimum when the phase ends (0 if it ends before).
    curvature : float
    lag : float
        The pre-filter's mean delay ``tau`` (steps): a long ramp comes out of
        the filter ``tau`` steps late, so the first step of the other sign is
        near ``crossing + tau + 1`` once the approach is much longer than the filter's memory
        (:attr:`ramp_estimate`; Lion's 0.9/0.99 filter: ``tau = 90``).

    Examples
    --------
    >>> from optfilters.describing_function import sign_loop
    >>> a = sign_loop("lion", lr=0.01).approach(1.0)
    >>> a.switch, round(a.loss(45), 5)
    (152, 0.15125)
    """

    speed: float
    theta0: float
    switch: int
    crossing: float
    overshoot: float
    curvature: float
    lag: float = math.nan

    @property
    def ramp_estimate(self) -> float:
        """``crossing + lag + 1``: the switch step of a long ramp through the pre-filter (an estimate).

        The delayed ramp crosses zero ``crossing + lag`` steps after the start;
        the first step taken after that crossing is the switch (within one
        step: where the crossing falls between two steps).
        """
        return self.crossing + self.lag + 1.0

    def theta(self, t: ArrayLike) -> FloatArray:
        """``theta_0 - sign(theta_0) speed t`` (valid for ``t < switch``).

        Parameters
        ----------
        t : array_like
            Steps, from 0.

        Returns
        -------
        ndarray
            The parameter on the ramp, same shape as ``t`` (units of ``theta``).
        """
        steps = np.asarray(t, dtype=np.float64)
        return np.asarray(self.theta0 - math.copysign(self.speed, self.theta0) * steps, dtype=np.float64)

    def loss(self, t: ArrayLike) -> Any:
        """``h theta_t^2 / 2`` on the ramp.

        Parameters
        ----------
        t : array_like
            Steps, from 0 (valid for ``t < switch``).

        Returns
        -------
        float or ndarray
            The loss, a float for a scalar ``t``.
        """
        value = 0.5 * self.curvature * self.theta(t) ** 2
        return float(value) if np.ndim(value) == 0 else value

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary.

        Returns
        -------
        dict
            The fields by name (non-finite numbers as None, with ``ramp_estimate`` when the lag is known),
            and ``why_null``.
        """
        return {
            "speed": self.speed,
            "theta0": self.theta0,
            "switch": self.switch,
            "crossing": self.crossing,
            "overshoot": self.overshoot,
            "curvature": self.curvature,
            "lag": self.lag if math.isfinite(self.lag) else None,
            "ramp_estimate": self.ramp_estimate if math.isfinite(self.lag) else None,
            "why_null": {}
            if math.isfinite(self.lag)
            else dict.fromkeys(
                ("lag", "ramp_estimate"),
                "undefined: the pre-filter's DC gain is zero or infinite (a ramp does not come out delayed)",
            ),
        }


@dataclass(frozen=True)
class LimitCycle:
    """A periodic sign pattern of the relay loop and the exact offsets for which it is a solution.

    Attributes
    ----------
    pattern : ndarray of {-1, +1}
        The relay's output over one period.
    offsets : (float, float)
        Open interval of ``q = theta_{-1} / step`` (``theta`` just before the
        pattern starts) for which every step has the pattern's sign; empty
        (``low >= high``) when the pattern is no solution.
    margins : ndarray
        ``s_t (q F(1) - (F r)_t)`` at the interval's midpoint (in units of ``h step``).
    step : float
        ``lr`` times the learning-rate gain.

    Examples
    --------
    >>> from optfilters.describing_function import sign_loop
    >>> c = sign_loop("lion", lr=0.01).cycle([1, 1, -1, -1])
    >>> c.exists, c.period, [round(v, 4) for v in c.offsets]
    (True, 4, [0.995, 1.005])
    """

    pattern: NDArray[np.int64]
    offsets: tuple[float, float]
    margins: FloatArray
    step: float

    @property
    def period(self) -> int:
        """``N`` steps."""
        return int(self.pattern.size)

    @property
    def exists(self) -> bool:
        """True when some offset makes the pattern a solution."""
        return self.offsets[0] < self.offsets[1]

    def admits(self, theta0: float) -> bool:
        """True when an offset on the lattice of ``theta0`` (``theta0 / step mod 1``) lies in :attr:`offsets`.

        Parameters
        ----------
        theta0 : float
            The initial parameter (it fixes the lattice ``theta0 + step Z`` the loop moves on).

        Returns
        -------
        bool
        """
        if not self.exists:
            return False
        frac = (float(theta0) / self.step) % 1.0
        lo, hi = self.offsets
        k = math.floor(lo - frac) + 1
        return frac + k < hi

    def theta(self, q: float) -> FloatArray:
        """``theta`` over one period (``N + 1`` values from ``theta_{-1} = q step``).

        Parameters
        ----------
        q : float
            The offset ``theta_{-1} / step``.

        Returns
        -------
        ndarray, shape (N + 1,)
        """
        r = np.concatenate([[0], np.cumsum(self.pattern)])
        return np.asarray(self.step * (q - r), dtype=np.float64)

    def amplitude(self, q: float) -> float:
        """``max |theta|`` over the cycle with offset ``q``.

        Parameters
        ----------
        q : float
            The offset ``theta_{-1} / step``.

        Returns
        -------
        float
        """
        return float(np.max(np.abs(self.theta(q))))

    def mean_loss(self, q: float, curvature: float = 1.0) -> float:
        """Average of ``h theta^2 / 2`` over one period.

        Parameters
        ----------
        q : float
            The offset ``theta_{-1} / step``.
        curvature : float
            ``h``.

        Returns
        -------
        float
        """
        values = self.theta(q)[1:]
        return float(0.5 * curvature * np.mean(values * values))

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary (pattern, period, existence, offsets, step).

        Returns
        -------
        dict
            The fields by name (non-finite numbers as None).
        """
        return {
            "pattern": self.pattern.tolist(),
            "period": self.period,
            "exists": self.exists,
            "offsets": list(self.offsets),
            "step": self.step,
        }


@dataclass(frozen=True)
class HarmonicBalance:
    """Limit cycles predicted by the classical (sinusoidal) describing function.

    Attributes
    ----------
    frequencies : ndarray
        Phase crossovers ``w`` (radians per step) of ``G``, ``0 < w <= pi``.
    periods : ndarray
        ``2 pi / w`` steps.
    input_amplitudes : ndarray
        Amplitude ``A`` of the nonlinearity's input solving ``N(A) = 1 / (k |G|)``
        (nan where there is none: no cycle at that crossover).
    theta_amplitudes : ndarray
        The parameter's fundamental ``A / (h |F(e^{iw})|)``.
    gain : float
        ``k = step * h``.

    Examples
    --------
    >>> from optfilters.describing_function import sign_loop
    >>> hb = sign_loop("lion", lr=0.01).harmonic_balance()
    >>> float(hb.periods[-1]), round(float(hb.theta_amplitudes[-1]) / 0.01, 4)      # period 2, (4/pi)/2 lr
    (2.0, 0.6366)
    """

    frequencies: FloatArray
    periods: FloatArray
    input_amplitudes: FloatArray
    theta_amplitudes: FloatArray
    gain: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary.

        Returns
        -------
        dict
            The fields by name (non-finite numbers as None: no cycle at that crossover).
        """
        return {
            "frequencies": self.frequencies.tolist(),
            "periods": self.periods.tolist(),
            "input_amplitudes": [None if not math.isfinite(v) else v for v in self.input_amplitudes],
            "theta_amplitudes": [None if not math.isfinite(v) else v for v in self.theta_amplitudes],
            "gain": self.gain,
        }


def _periodic_response(f: ArmaFilter, x: FloatArray) -> FloatArray:
    """The periodic steady state of a stable filter driven by the periodic sequence ``x`` (one period)."""
    n = x.size
    z = np.exp(2j * np.pi * np.arange(n) / n)
    h = f.evaluate(z)
    return np.asarray(np.real(np.fft.ifft(h * np.fft.fft(x))), dtype=np.float64)


def _crossovers(g: Any, points: int = 8193) -> FloatArray:
    """Frequencies in ``(0, pi]`` where ``g(e^{iw})`` is real and negative."""
    from scipy.optimize import brentq

    w = np.linspace(1e-6, math.pi, points)
    values = g(w)
    imag = values.imag
    found = []
    for i in range(w.size - 1):
        if imag[i] == 0.0 or imag[i] * imag[i + 1] < 0.0:
            root = w[i] if imag[i] == 0.0 else brentq(lambda v: float(g(np.array([v]))[0].imag), w[i], w[i + 1])
            if float(g(np.array([root]))[0].real) < 0.0:
                found.append(root)
    end = g(np.array([math.pi]))[0]
    if (
        abs(end.imag) <= 1e-12 * max(abs(end), 1e-300)
        and end.real < 0.0
        and not any(abs(r - math.pi) < 1e-9 for r in found)
    ):
        found.append(math.pi)
    return np.unique(np.asarray(found, dtype=np.float64))


def harmonic_balance(
    prefilter: ArmaFilter, nonlinearity: StaticNonlinearity, step: float, curvature: float = 1.0
) -> HarmonicBalance:
    """Classical describing-function cycles of ``theta_t = theta_{t-1} - step * n(F(h theta)_t)``.

    Parameters
    ----------
    prefilter : ArmaFilter
        ``F(z)`` before the nonlinearity (stable).
    nonlinearity : StaticNonlinearity
        :func:`relay` or :class:`Saturation` (its ``sinusoidal_gain`` must
        decrease with the amplitude).
    step : float
        Learning rate (times its gain).
    curvature : float
        ``h > 0``.

    Returns
    -------
    HarmonicBalance
        The phase crossovers of ``G = F / (z - 1)`` and the amplitudes solving
        ``N(A) = 1 / (k |G|)``.

    Raises
    ------
    InvalidFilterError
        When the pre-filter is not stable.
    InvalidHyperparameterError
        When ``step * curvature`` is not finite and > 0, or so large that the
        cycle's input amplitude passes 1e300.

    Examples
    --------
    >>> from optfilters import ArmaFilter
    >>> from optfilters.describing_function import Saturation, harmonic_balance
    >>> ema = ArmaFilter.ema(0.9)            # Sophia: clip(EMA / (rho h), 1); here rho h = 1
    >>> bool(np.isnan(harmonic_balance(ema, Saturation(), 0.05).input_amplitudes).all())   # stable: no cycle
    True
    """
    from scipy.optimize import brentq

    if not prefilter.is_stable:
        raise InvalidFilterError(f"the pre-filter must be stable, got {prefilter.stability}")
    k = float(step) * float(curvature)
    if math.isinf(k) and math.isfinite(float(step)) and math.isfinite(float(curvature)):
        raise InvalidHyperparameterError(  # as the finite product's own bound below, in the user's numbers
            f"step * curvature = {float(step):g} * {float(curvature):g} overflows the floating-point range (above "
            "1.8e308): too large for the describing function (the cycle's input amplitude passes 1e300); give a "
            "smaller lr or curvature"
        )
    if not (math.isfinite(k) and k > 0.0):
        raise InvalidHyperparameterError(f"step * curvature must be finite and > 0, got {k}")

    def g(w: FloatArray) -> NDArray[np.complex128]:
        z = np.exp(1j * np.asarray(w))
        return np.asarray(prefilter.evaluate(z) / (z - 1.0), dtype=np.complex128)  # z^-1 F / (1 - z^-1)

    freqs = _crossovers(g)
    amps, thetas = np.full(freqs.size, math.nan), np.full(freqs.size, math.nan)
    for i, w in enumerate(freqs):
        target = 1.0 / (k * abs(complex(g(np.array([w]))[0])))
        n0 = float(nonlinearity.sinusoidal_gain(1e-300))
        if not (n0 > target):
            continue
        lo, hi = 1e-300, 1.0
        while float(nonlinearity.sinusoidal_gain(hi)) > target:
            hi *= 2.0
            if hi > 1e300:
                raise InvalidHyperparameterError(
                    f"step * curvature = {k:g} is too large for the describing function: the cycle's input "
                    "amplitude passes 1e300"
                )
        amp = brentq(lambda a, t=target: float(nonlinearity.sinusoidal_gain(a)) - t, lo, hi, xtol=1e-300, rtol=1e-14)
        amps[i] = amp
        thetas[i] = amp / (float(curvature) * abs(complex(prefilter.evaluate(np.exp(1j * w))[()])))
    return HarmonicBalance(freqs, 2.0 * math.pi / freqs, amps, thetas, k)


@dataclass(frozen=True)
class RelayRun(Plottable):
    """A noiseless run of the exact recursion, and its final periodic regime.

    Attributes
    ----------
    theta : ndarray, shape (steps + 1,)
    signs : ndarray
        ``-(theta_t - theta_{t-1}) / step``: the relay's output (+1, -1 or 0).
    period : int or None
        Period of the last ``window`` signs (None when they do not repeat).
    pattern : ndarray or None
        The final pattern, starting where ``theta`` is largest.
    offset : float or None
        ``q = theta_{-1} / step`` before the pattern.
    amplitude : float or None
        ``max |theta|`` over the final period.
    mean_loss : float or None
        Average ``h theta^2 / 2`` over the final period.
    step, curvature : float

    Examples
    --------
    >>> from optfilters.describing_function import sign_loop
    >>> r = sign_loop("lion", lr=0.01).run(1.0, steps=1500)
    >>> r.period, round(r.amplitude / 0.01, 9), r.pattern.tolist()
    (4, 1.0, [1, 1, -1, -1])
    """

    _plot_function = "relay_run_plot"

    theta: FloatArray
    signs: FloatArray
    period: int | None
    pattern: NDArray[np.int64] | None
    offset: float | None
    amplitude: float | None
    mean_loss: float | None
    step: float
    curvature: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary (the trajectory left out).

        Returns
        -------
        dict
            The fields by name (non-finite numbers as None), and ``why_null``:
            why the cycle's fields are null when the run ends in no periodic regime.
        """
        why: dict[str, str] = {}
        if self.period is None:
            reason = (
                "undefined: the run came to rest (the relay's input is exactly 0 over its last steps: theta at the "
                "optimum, or a pre-sign filter output that underflowed to 0), so it has no periodic regime"
                if self.signs.size and not np.any(self.signs[-min(64, self.signs.size) :])
                else "undefined: the run's last steps do not repeat a pattern of +-1 signs (no periodic regime)"
            )
            why = dict.fromkeys(("period", "pattern", "offset", "amplitude", "mean_loss"), reason)
        return {
            "why_null": why,
            "steps": int(self.signs.size),
            "period": self.period,
            "pattern": None if self.pattern is None else self.pattern.tolist(),
            "offset": self.offset,
            "amplitude": self.amplitude,
            "mean_loss": self.mean_loss,
            "step": self.step,
            "curvature": self.curvature,
        }


def final_cycle(theta: ArrayLike, step: float, curvature: float = 1.0, window: int = 64) -> RelayRun:
    """Detect the periodic regime at the end of a noiseless sign-loop trajectory (e.g. a bridge run).

    Parameters
    ----------
    theta : array_like, shape (steps + 1,)
        ``theta_0 .. theta_T`` of one coordinate.
    step : float
        ``lr`` times the learning-rate gain.
    curvature : float
        ``h`` (for the mean loss).
    window : int
        Final steps that must repeat.

    Returns
    -------
    RelayRun

    Examples
    --------
    >>> from optfilters.describing_function import final_cycle
    >>> r = final_cycle([0.03, 0.02, 0.01, 0.0, 0.01, 0.0, 0.01, 0.0, 0.01], step=0.01, window=4)
    >>> r.period, r.pattern.tolist(), round(r.offset, 9)
    (2, [1, -1], 1.0)
    """
    theta = np.asarray(theta, dtype=np.float64)
    signs = np.rint(-np.diff(theta) / step)
    tail = signs[-window:]
    period = None
    for p in range(1, window // 2 + 1):
        if np.array_equal(tail[p:], tail[:-p]):
            period = p
            break
    if period is None or not np.all(np.abs(tail) == 1.0) or int(np.sum(tail[-period:])) != 0:
        return RelayRun(theta, signs, None, None, None, None, None, step, curvature)  # no cycle (or still moving)
    last = theta[-period - 1 :]  # theta_{T-p} .. theta_T
    start = int(np.argmax(last[:-1]))  # the pattern starts after the largest theta
    pattern = np.roll(signs[-period:], -start).astype(np.int64)
    offset = float(last[start] / step)
    values = theta[-period:]
    return RelayRun(
        theta,
        signs,
        period,
        pattern,
        offset,
        float(np.max(np.abs(values))),
        float(0.5 * curvature * np.mean(values * values)),
        step,
        curvature,
    )


@dataclass(frozen=True)
class SignLoop:
    """A sign-type optimizer in feedback with the quadratic ``h theta^2 / 2``.

    Build with :func:`sign_loop`.

    Attributes
    ----------
    name : str
    model : OptimizerModel
    prefilter : ArmaFilter
        ``F(z)``, the linear map before the sign (``t -> infinity`` limit).
    step : float
        ``lr`` times the learning-rate gain: the move per step.
    lr : float
    curvature : float
    label : str

    Examples
    --------
    >>> from optfilters.describing_function import sign_loop
    >>> loop = sign_loop("lion", lr=0.01, beta1=0.9, beta2=0.99)
    >>> loop.prefilter.b.round(12).tolist(), loop.prefilter.a.tolist(), loop.step
    ([0.1, -0.09], [1.0, -0.99], 0.01)
    """

    name: str
    model: OptimizerModel
    prefilter: ArmaFilter
    step: float
    lr: float
    curvature: float = 1.0
    label: str = "exact"

    def approach(self, theta0: float) -> Approach:
        """The constant-speed phase from ``theta0``: its end, found by running the model open loop on the ramp.

        While the pre-filter's output keeps the sign of the first step, the
        closed loop *is* that open loop on ``g_t = h (theta_0 - step (t - 1))``,
        so the switch step is exact (time-varying stages included).

        Parameters
        ----------
        theta0 : float
            The initial parameter (finite, non-zero).

        Returns
        -------
        Approach

        Raises
        ------
        InvalidHyperparameterError
            When ``theta0`` is zero or not finite, ``theta0 / lr`` (the steps to
            reach the optimum) is above 50 000 000, or the pre-filter's output
            never changes sign within 50 000 000 steps.

        """
        theta0 = float(theta0)
        if not (math.isfinite(theta0) and theta0 != 0.0):
            raise InvalidHyperparameterError(f"theta0 must be finite and non-zero, got {theta0}")
        direction = math.copysign(1.0, theta0)
        crossing = abs(theta0) / self.step
        if not crossing <= _MOST_APPROACH:
            raise InvalidHyperparameterError(
                f"theta0 / lr = {crossing:g} steps to reach the optimum, more than {_MOST_APPROACH}: "
                "start closer or raise lr"
            )
        horizon = math.ceil(crossing) + 2
        while True:
            # theta_t by repeated subtraction, rounded as a run rounds it (theta0 - step t differs in the last
            # bits, which decides the sign where theta0 / step is a whole number)
            steps = np.full(horizon, direction * self.step)
            steps[0] = theta0
            grads = self.curvature * np.subtract.accumulate(steps)
            trajectory = self.model.simulate(grads[:, None], theta0=np.zeros(1), lr=1.0)
            signs = np.sign(-trajectory.updates[:, 0])
            flips = np.flatnonzero(signs != signs[0])
            if flips.size:
                switch = int(flips[0]) + 1
                break
            horizon *= 2
            if horizon > 50_000_000:
                raise InvalidHyperparameterError("the approach never ends (the pre-filter does not change sign)")
        end = theta0 - direction * self.step * (switch - 1)
        overshoot = max(0.0, -direction * end)
        from .analysis import mean_delay

        dc = self.prefilter.dc_gain  # a ramp comes out delayed only through a finite, non-zero DC gain
        lag = mean_delay(self.prefilter) if math.isfinite(dc) and dc != 0.0 else math.nan
        return Approach(self.step, theta0, switch, crossing, overshoot, self.curvature, lag)

    def cycle(self, pattern: Sequence[int] | NDArray[np.int64]) -> LimitCycle:
        """The exact offsets for which a periodic sign ``pattern`` (equal numbers of +1 and -1) is a solution.

        Parameters
        ----------
        pattern : sequence of {-1, +1}
            The relay's output over one period (at least 2 values).

        Returns
        -------
        LimitCycle
            With an empty :attr:`LimitCycle.offsets` when the pattern is no solution.

        Raises
        ------
        InvalidHyperparameterError
            When the pattern is not +1/-1 values with as many +1 as -1.
        InvalidFilterError
            When the pre-filter's DC gain is not finite and > 0.

        Examples
        --------
        >>> from optfilters.describing_function import sign_loop
        >>> sign_loop("lion", lr=0.01).cycle([1, 1, 1, -1, -1, -1]).exists     # no period-6 triangle
        False
        """
        s = np.asarray(pattern, dtype=np.int64).ravel()
        if s.size < 2 or not np.all(np.abs(s) == 1) or int(np.sum(s)) != 0:
            raise InvalidHyperparameterError("pattern must be +1/-1 values with as many +1 as -1")
        r = np.concatenate([[0.0], np.cumsum(s)[:-1]])
        fr = _periodic_response(self.prefilter, r)
        dc = float(self.prefilter.dc_gain)
        if not (math.isfinite(dc) and dc > 0.0):
            raise InvalidFilterError(f"the pre-filter's DC gain must be finite and > 0, got {dc}")
        ratios = fr / dc
        low = float(np.max(ratios[s > 0]))
        high = float(np.min(ratios[s < 0]))
        q = 0.5 * (low + high)
        margins = s * (q * dc - fr)
        return LimitCycle(s, (low, high), np.asarray(margins, dtype=np.float64), self.step)

    def symmetric_cycles(self, max_half: int = 64) -> list[LimitCycle]:
        """The one-switch patterns (``k`` steps of +1 then ``k`` of -1, ``k = 1 .. max_half``) that are solutions.

        Parameters
        ----------
        max_half : int
            The largest half-period ``k`` tried.

        Returns
        -------
        list of LimitCycle
            The solutions, by period.

        Examples
        --------
        >>> from optfilters.describing_function import sign_loop
        >>> [c.period for c in sign_loop("lion", lr=0.01).symmetric_cycles(20)]
        [2, 4]
        """
        out = []
        for k in range(1, int(max_half) + 1):
            c = self.cycle([1] * k + [-1] * k)
            if c.exists:
                out.append(c)
        return out

    def harmonic_balance(self) -> HarmonicBalance:
        """The classical describing-function estimate (:func:`harmonic_balance` with the relay).

        Returns
        -------
        HarmonicBalance
        """
        return harmonic_balance(self.prefilter, relay(), self.step, self.curvature)

    def run(self, theta0: float, steps: int = 5000, window: int | None = None) -> RelayRun:
        """Run the model's exact recursion from ``theta0`` without noise and detect its final cycle.

        ``window`` (default: a quarter of the steps, at most 2000) is how many
        final steps must repeat.

        Parameters
        ----------
        theta0 : float
            The initial parameter.
        steps : int
            Steps to run, in ``[8, MAX_STEPS]`` (:data:`optfilters.validation.MAX_STEPS`).
        window : int or None
            Final steps that must repeat (at least 4, at most ``steps``).

        Returns
        -------
        RelayRun

        Raises
        ------
        InvalidHyperparameterError
            When ``steps`` is not an integer in ``[8, MAX_STEPS]``, or ``window`` not one in ``[1, steps]``.

        """
        steps = check_integer(steps, "steps", 8, MAX_STEPS)
        if window is not None:
            window = check_integer(window, "window", 1, steps)
        h = self.curvature
        trajectory = self.model.simulate(
            lambda th, t: h * th, theta0=np.array([float(theta0)]), steps=steps, lr=self.lr
        )
        w = min(steps // 4, 2000) if window is None else int(window)
        return final_cycle(trajectory.params[:, 0], self.step, h, max(w, 4))


#: The longest approach :meth:`SignLoop.approach` follows (steps from theta0 to the optimum).
_MOST_APPROACH = 50_000_000


def sign_loop(model: ModelLike, *, lr: float | None = None, curvature: float = 1.0, **hyperparameters: Any) -> SignLoop:
    """The relay loop of a sign-type model (Lion, or a model with a sign stage) on a quadratic.

    Parameters
    ----------
    model : str or OptimizerModel
        A model with a sign stage (``"lion"``; Signum/Tiger: ``beta1 = beta2``;
        signSGD: ``beta1 = beta2 = 0``).
    lr : float, optional
        Learning rate (default: the model's).
    curvature : float
        ``h > 0``.
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    SignLoop

    Raises
    ------
    InvalidFilterError
        When the model takes no sign, has another nonlinear stage (a cautious
        mask, a normaliser), weight decay or ``maximize``, or its pre-filter is
        unstable.

    Examples
    --------
    >>> from optfilters.describing_function import sign_loop
    >>> sign_loop("lion", beta1=0.9, beta2=0.9, lr=0.01).prefilter.poles.real.round(9).tolist()   # Signum
    [0.9]
    """
    m = as_model(model, **hyperparameters)
    if m.nonlinearity is None or not m.nonlinearity.elementwise:
        others = [s.nonlinear_description() for s in m.nonlinear_stages if s.role != "normaliser"]
        if not any(others):
            raise InvalidFilterError(f"{m.name} takes no sign; use optfilters.closed_loop for linear loops")
        raise InvalidFilterError(
            f"{m.name} takes no sign of its direction at a fixed step size (the relay loop of Lion, Signum and "
            f"signSGD); its nonlinear stages: {'; '.join(d for d in others if d)}"
        )
    besides = [stage for stage in m.pipeline if not stage.is_linear and stage is not m.nonlinearity]
    if besides:  # e.g. a cautious mask: the step is no longer lr sign(d), the relay analysis does not hold
        raise InvalidFilterError(
            f"{m.name} has a nonlinear stage besides its sign ({besides[0].describe()}): the sign-loop analysis "
            "needs a pure relay; run it with model.simulate or optfilters.noisy_quadratic.predict"
        )
    if m.weight_decay is not None and m.weight_decay.weight_decay != 0.0:
        raise InvalidFilterError("the sign-loop analysis needs weight_decay = 0 (decay breaks the lattice)")
    if m.maximize:
        raise InvalidFilterError("maximize=True ascends the quadratic: there is no approach or cycle")
    step_lr = m.lr if lr is None else float(lr)
    h = float(curvature)
    if not (math.isfinite(h) and h > 0.0):
        raise InvalidHyperparameterError(f"curvature must be finite and > 0, got {curvature}")
    step = step_lr * float(m.lr_gain.limit)
    if not (math.isfinite(step) and step > 0.0):
        raise InvalidHyperparameterError(f"lr must be finite and > 0, got {step_lr}")
    f = m.linearised_filter().scaled(1.0 / float(m.lr_gain.limit))
    if not f.is_stable:
        raise InvalidFilterError(f"{m.name}'s pre-sign filter is {f.stability}")
    label = "exact" if m.is_time_invariant else "t->infinity LTI limit of the pre-sign filter (the run is exact)"
    return SignLoop(m.name, m, f.renamed("prefilter"), step, step_lr, h, label)


# ----------------------------------------------------------------------------- noise


@dataclass(frozen=True)
class NoiseTransition(Plottable):
    """Steady-state loss of a sign loop against the gradient noise: from the limit cycle to the dithered linear loop.

    Attributes
    ----------
    name : str
    noise_std : ndarray
        Standard deviation of the additive gradient noise.
    predicted : ndarray
        :func:`optfilters.noisy_quadratic.predict`'s steady state (Gaussian closure of the relay).
    linearised : ndarray
        The Gaussian-gain (random-input describing function) linearisation alone: the
        relay replaced by ``sqrt(2/pi) / sigma_d`` with ``sigma_d`` self-consistent.
    cycle : float
        The noiseless steady state (the limit cycle reached from ``init``).
    observed, observed_stderr : ndarray or None
        Measured averages (e.g. bridge runs), when given.
    lr, curvature, init : float
    label : str
        What the curves are, for legends.
    extra : dict
        Further results a caller attaches (not serialised).

    Examples
    --------
    >>> from optfilters.describing_function import noise_transition
    >>> t = noise_transition("lion", [1.0], lr=0.01)
    >>> bool(abs(t.predicted[0] / t.linearised[0] - 1.0) < 0.05)     # large noise: the linearised regime
    True
    """

    _plot_function = "noise_transition_plot"

    name: str
    noise_std: FloatArray
    predicted: FloatArray
    linearised: FloatArray
    cycle: float
    lr: float
    curvature: float
    init: float
    observed: FloatArray | None = None
    observed_stderr: FloatArray | None = None
    label: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary.

        Returns
        -------
        dict
            The fields by name (non-finite numbers as None).
        """
        return {
            "name": self.name,
            "noise_std": self.noise_std.tolist(),
            "predicted": self.predicted.tolist(),
            "linearised": self.linearised.tolist(),
            "cycle": self.cycle,
            "observed": None if self.observed is None else self.observed.tolist(),
            "observed_stderr": None if self.observed_stderr is None else self.observed_stderr.tolist(),
            "lr": self.lr,
            "curvature": self.curvature,
            "init": self.init,
            "label": self.label,
        }


def _gaussian_gain_steady(loop: SignLoop, noise_var: float) -> float:
    """Steady loss with the relay replaced by the Gaussian gain ``sqrt(2/pi)/sigma_d`` (self-consistent ``sigma_d``)."""
    from scipy.optimize import brentq

    from .closed_loop import _realise

    if noise_var <= 0.0:
        return 0.0
    a_f, b_f, c_f, d_f = _realise(loop.prefilter)
    n = a_f.shape[0]
    h, step = loop.curvature, loop.step

    def moments(gain: float) -> tuple[float, float]:
        # state [theta_{t-1}; s_t], g_t = h theta_{t-1} + xi_t, d_t = C_F s_t + D_F g_t,
        # theta_t = theta_{t-1} - step gain d_t
        a = np.zeros((n + 1, n + 1))
        b = np.zeros(n + 1)
        a[0, 0] = 1.0 - step * gain * d_f * h
        a[0, 1:] = -step * gain * c_f
        a[1:, 0] = b_f * h
        a[1:, 1:] = a_f
        b[0] = -step * gain * d_f
        b[1:] = b_f
        if not np.all(np.isfinite(a)) or np.max(np.abs(np.linalg.eigvals(a))) >= 1.0:
            return math.inf, math.inf
        from scipy.linalg import solve_discrete_lyapunov

        p = solve_discrete_lyapunov(a, noise_var * np.outer(b, b))
        row = np.concatenate([[d_f * h], c_f])  # d_t = [D_F h, C_F] [theta_{t-1}; s_t] + D_F xi_t
        var_d = float(row @ p @ row + d_f * d_f * noise_var)
        return float(p[0, 0]), var_d

    def residual(log_sd: float) -> float:
        sd = math.exp(log_sd)
        _, var_d = moments(math.sqrt(2.0 / math.pi) / sd)
        if not math.isfinite(var_d):
            return 1e3  # the linearised loop is unstable: its variance is unbounded
        return 0.5 * math.log(var_d) - log_sd

    # var_d >= D_F^2 sigma^2 (the noise passes straight through), so the residual is >= 0 there
    lo = 0.5 * math.log(noise_var) + math.log(abs(d_f)) if d_f != 0.0 else 0.5 * math.log(noise_var) - 30.0
    while residual(lo) < 0.0:
        lo -= 5.0
    hi = lo + 5.0
    while residual(hi) > 0.0:
        hi += 5.0
    log_sd = brentq(residual, lo, hi, xtol=1e-12)
    var_theta, _ = moments(math.sqrt(2.0 / math.pi) / math.exp(log_sd))
    return 0.5 * h * var_theta


def noise_transition(
    model: ModelLike,
    noise_std: ArrayLike,
    *,
    lr: float | None = None,
    curvature: float = 1.0,
    init: float = 1.0,
    steps: int = 0,
    **hyperparameters: Any,
) -> NoiseTransition:
    """Steady-state loss of a sign loop for each noise level: predicted, linearised and the noiseless cycle.

    Parameters
    ----------
    model : str or OptimizerModel
        A sign-type model.
    noise_std : array_like
        Gradient-noise standard deviations (> 0).
    lr : float, optional
    curvature : float
    init : float
        ``theta_0`` (it fixes the lattice, hence the noiseless cycle).
    steps : int
        Steps of the transient before the steady state is averaged (see
        :func:`optfilters.noisy_quadratic.predict`).
    **hyperparameters
        Catalogue hyperparameters.

    Returns
    -------
    NoiseTransition

    Raises
    ------
    InvalidHyperparameterError
        When ``noise_std`` is empty or has a value that is not finite and > 0.

    Examples
    --------
    >>> from optfilters.describing_function import noise_transition
    >>> t = noise_transition("lion", [1e-5], lr=0.01)
    >>> round(t.cycle, 9), bool(abs(t.predicted[0] / t.cycle - 1.0) < 0.05)     # small noise: the cycle
    (2.5e-05, True)
    """
    from .noisy_quadratic import predict

    loop = sign_loop(model, lr=lr, curvature=curvature, **hyperparameters)
    sigma = np.atleast_1d(np.asarray(noise_std, dtype=np.float64)).ravel()
    if sigma.size == 0 or not np.all(np.isfinite(sigma)) or np.any(sigma <= 0.0):
        raise InvalidHyperparameterError("noise_std must be finite and > 0")
    lr_value = loop.lr
    common: dict[str, Any] = {"lr": lr_value, "curvatures": curvature, "init": init, "steps": int(steps)}
    cycle = predict(loop.model, noise_var=0.0, **common).steady_state_loss
    predicted = np.array([predict(loop.model, noise_var=float(s) ** 2, **common).steady_state_loss for s in sigma])
    linearised = np.array([_gaussian_gain_steady(loop, float(s) ** 2) for s in sigma])
    label = "predicted: Gaussian closure of the relay (noisy_quadratic.predict); linearised: Gaussian gain only"
    return NoiseTransition(
        loop.name, sigma, predicted, linearised, float(cycle), lr_value, loop.curvature, float(init), label=label
    )
