"""Time-varying scalar gains ``c(t)`` (``t = 1, 2, ...`` is the optimizer's step count).

Each gain is an immutable value with an exact ``value(t)`` and its
``t -> infinity`` :attr:`limit`, so that the time-varying parts of an optimizer
(bias correction, NAdam's momentum schedule, RAdam's rectification, Adagrad's
``lr_decay``) are represented exactly and also have an LTI limit for analysis.

Learning-rate schedules are gains too (the factor ``lr_t / lr``): one
implementation of each decay (:class:`ExponentialDecay`, :class:`StepDecay`,
:class:`LinearDecay`, :class:`InverseTimeDecay`, :class:`CosineDecay`,
:class:`LinearWarmup`) serves a model's learning-rate stage, the noisy
quadratic model's ``schedule=`` and the CLI's ``--schedule``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .errors import InvalidHyperparameterError
from .program import Coef, RunningProduct
from .validation import check_integer, check_number, range_text, saturating_power

__all__ = [
    "Constant",
    "CosineDecay",
    "ExponentialDecay",
    "Gain",
    "InverseTimeDecay",
    "LinearDecay",
    "LinearWarmup",
    "NadamCurrentGain",
    "NadamMomentumGain",
    "NadamProduct",
    "RAdamRectification",
    "StepDecay",
    "nadam_momentum",
    "nadam_product",
]


class Gain:
    """Base class of time-varying gains.

    Subclasses define :meth:`value` (exact, at step ``t >= 1``), :attr:`limit`
    and :meth:`describe`; :meth:`coef` is the form in which the step program
    (numpy reference and PyTorch bridge) computes it, ``num(t) / den(t)`` in the
    reference implementation's order of operations (default: ``value(t) / 1``).

    Examples
    --------
    >>> from optfilters.gains import Constant
    >>> Constant(2.0).value(5), Constant(2.0).limit
    (2.0, 2.0)
    """

    is_constant: bool = False

    def value(self, t: int) -> float:
        """The gain at step ``t`` (1-based), exactly.

        Parameters
        ----------
        t : int
            The step count, ``t >= 1`` (torch.optim's ``state["step"]`` after
            its increment).

        Returns
        -------
        float
            The dimensionless gain ``c(t)`` that multiplies the stage's output
            at step ``t``.

        Raises
        ------
        NotImplementedError
            In the base class: every gain kind defines it.
        """
        raise NotImplementedError

    @property
    def limit(self) -> float:
        """The ``t -> infinity`` value (the gain of the LTI limit the analysis functions use)."""
        raise NotImplementedError

    def describe(self) -> str:
        """A short formula for tables and ``describe`` output.

        Returns
        -------
        str
            One line, e.g. ``1/(1+(t-1)*0.5)`` for ``InverseTimeDecay(0.5)``.

        Raises
        ------
        NotImplementedError
            In the base class: every gain kind defines it.
        """
        raise NotImplementedError

    def coef(self) -> Coef:
        """The gain as the step program computes it: a :class:`~optfilters.program.Coef` ``num(t) / den(t)``.

        Kinds override it where the reference implementation reads a running
        product (NAdam's ``mu_product``) or divides in another order.

        Returns
        -------
        Coef
            :meth:`fraction` with the limit :attr:`limit`; the exact constant
            for gains with ``is_constant``.

        Examples
        --------
        >>> from optfilters.gains import InverseTimeDecay
        >>> InverseTimeDecay(0.5).coef().at(3)
        (1.0, 2.0)
        """
        if self.is_constant:
            return Coef.constant(float(self.limit))
        return Coef(self.fraction, float(self.limit))

    def fraction(self, t: int) -> tuple[float, float]:
        """The gain at step ``t`` as ``(num, den)``, in the reference implementation's order of operations.

        Parameters
        ----------
        t : int
            The step count, ``t >= 1``.

        Returns
        -------
        tuple of float
            ``(num, den)`` with ``num / den == value(t)`` up to rounding
            (default ``(value(t), 1)``); the step program computes
            ``(lr * num) / den`` as torch.optim does (``lr / bias_correction``).
        """
        return (self.value(t), 1.0)

    def values(self, n: int) -> np.ndarray:
        """``value(t)`` for ``t = 1 .. n``.

        Parameters
        ----------
        n : int
            The number of steps.

        Returns
        -------
        ndarray, shape (n,)
            float64 gains, entry ``k`` for step ``k + 1``.

        Examples
        --------
        >>> from optfilters.gains import InverseTimeDecay
        >>> InverseTimeDecay(1.0).values(3).tolist()
        [1.0, 0.5, 0.3333333333333333]
        """
        return np.array([self.value(t) for t in range(1, n + 1)], dtype=np.float64)

    def factor(self, t: int) -> float:
        """:meth:`value` under its schedule name: the learning-rate factor ``lr_t / lr`` at step ``t``.

        Parameters
        ----------
        t : int
            The step count, ``t >= 1``.

        Returns
        -------
        float
            The dimensionless ratio ``lr_t / lr`` of the learning rate at step
            ``t`` to the base learning rate.
        """
        return self.value(t)

    def factors(self, n: int) -> np.ndarray:
        """:meth:`values` under its schedule name: ``factor(t)`` for ``t = 1 .. n``.

        Parameters
        ----------
        n : int
            The number of steps.

        Returns
        -------
        ndarray, shape (n,)
            float64 learning-rate factors ``lr_t / lr``, entry ``k`` for step ``k + 1``.

        Examples
        --------
        >>> from optfilters.gains import ExponentialDecay
        >>> ExponentialDecay(0.5).factors(3).tolist()
        [1.0, 0.5, 0.25]
        """
        return self.values(n)


@dataclass(frozen=True)
class Constant(Gain):
    """A constant gain.

    Parameters
    ----------
    constant : float
        The value at every step.

    Examples
    --------
    >>> from optfilters.gains import Constant
    >>> Constant(0.3).describe()
    '0.3'
    """

    constant: float = 1.0
    is_constant: bool = field(default=True, init=False, repr=False)

    def value(self, t: int) -> float:
        """The constant."""
        return self.constant

    @property
    def limit(self) -> float:
        """The constant."""
        return self.constant

    def describe(self) -> str:
        """The constant, formatted."""
        return f"{self.constant:g}"


@dataclass(frozen=True)
class InverseTimeDecay(Gain):
    """``1 / (1 + (t - 1) * decay)``: Adagrad's ``lr_decay`` (limit 0 when ``decay > 0``).

    Parameters
    ----------
    decay : float
        torch.optim.Adagrad's ``lr_decay``, >= 0.

    Raises
    ------
    InvalidHyperparameterError
        When ``decay`` is negative or not finite.

    Examples
    --------
    >>> from optfilters.gains import InverseTimeDecay
    >>> InverseTimeDecay(0.5).value(3)
    0.5
    """

    decay: float = 0.0

    def __post_init__(self) -> None:
        _in_range("decay", self.decay, 0.0, math.inf)

    def value(self, t: int) -> float:
        """``1 / (1 + (t - 1) * decay)``."""
        return 1.0 / (1.0 + (t - 1) * self.decay)

    def coef(self) -> Coef:
        """torch.optim.Adagrad's ``clr = lr / (1 + (t - 1) * lr_decay)``: one division (exactly 1 without decay)."""
        if self.decay == 0.0:
            return Coef.constant(1.0)
        return Coef(self.fraction, self.limit)

    def fraction(self, t: int) -> tuple[float, float]:
        """``(1, 1 + (t - 1) * decay)``."""
        return (1.0, 1 + (t - 1) * float(self.decay))

    @property
    def limit(self) -> float:
        """0 for a positive decay, else 1."""
        return 0.0 if self.decay > 0 else 1.0

    def describe(self) -> str:
        """The formula."""
        return f"1/(1+(t-1)*{self.decay:g})"


def _positive_int(name: str, value: Any) -> int:
    try:
        return check_integer(value, name, low=1)
    except InvalidHyperparameterError:
        raise InvalidHyperparameterError(f"{name} must be an integer >= 1, got {value!r}") from None


def _in_range(name: str, value: Any, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> float:
    try:
        return check_number(value, name, lo, None if math.isinf(hi) else hi, lo_open, hi_open)
    except InvalidHyperparameterError:
        text = range_text(lo, None if math.isinf(hi) else hi, lo_open, hi_open)
        raise InvalidHyperparameterError(f"{name} must be {text}, got {value!r}") from None


class _GeometricDecay(Gain):
    """``gamma^k(t)``: the exponential and step decays, differing only in the exponent ``k(t)``."""

    gamma: float

    def _exponent(self, t: int) -> int:
        raise NotImplementedError

    def value(self, t: int) -> float:
        """``gamma^k(t)``."""
        return float(saturating_power(self.gamma, self._exponent(t)))  # overflow saturates to inf

    @property
    def limit(self) -> float:
        """0 for ``gamma < 1``, 1 for ``gamma = 1``, inf above."""
        return 0.0 if self.gamma < 1.0 else (1.0 if self.gamma == 1.0 else math.inf)


@dataclass(frozen=True)
class ExponentialDecay(_GeometricDecay):
    """``gamma^(t-1)``: torch's ``ExponentialLR(gamma)`` stepped after every optimizer step.

    Parameters
    ----------
    gamma : float
        Decay per step, > 0.

    Raises
    ------
    InvalidHyperparameterError
        When ``gamma`` is not a finite positive number.

    Examples
    --------
    >>> from optfilters.gains import ExponentialDecay
    >>> ExponentialDecay(0.9).value(3), ExponentialDecay(0.9).limit
    (0.81, 0.0)
    """

    gamma: float

    def __post_init__(self) -> None:
        _in_range("gamma", self.gamma, 0.0, math.inf, lo_open=True)

    def _exponent(self, t: int) -> int:
        return t - 1

    def describe(self) -> str:
        """The formula."""
        return f"{self.gamma:g}^(t-1)"


@dataclass(frozen=True)
class StepDecay(_GeometricDecay):
    """``gamma^floor((t-1)/step_size)``: torch's ``StepLR(step_size, gamma)``.

    Parameters
    ----------
    step_size : int
        Steps between decays, >= 1.
    gamma : float
        Factor per decay, > 0.

    Raises
    ------
    InvalidHyperparameterError
        When ``step_size`` is not an integer >= 1 or ``gamma`` is not positive.

    Examples
    --------
    >>> from optfilters.gains import StepDecay
    >>> StepDecay(2, 0.1).values(5).round(12).tolist()
    [1.0, 1.0, 0.1, 0.1, 0.01]
    """

    step_size: int
    gamma: float = 0.1

    def __post_init__(self) -> None:
        _positive_int("step_size", self.step_size)
        _in_range("gamma", self.gamma, 0.0, math.inf, lo_open=True)

    def _exponent(self, t: int) -> int:
        return (t - 1) // int(self.step_size)

    def describe(self) -> str:
        """The formula."""
        return f"{self.gamma:g}^floor((t-1)/{self.step_size})"


@dataclass(frozen=True)
class LinearDecay(Gain):
    """``start + (end - start) min(t-1, total) / total``: torch's ``LinearLR``.

    ``LinearDecay(total=N, start_factor=1, end_factor=0)`` is the lectures'
    linear decay ``lr (1 - i/N)``.

    Parameters
    ----------
    total : int
        Steps of the interpolation, >= 1.
    start_factor, end_factor : float
        Factors at step 1 and from step ``total + 1`` on, >= 0.

    Raises
    ------
    InvalidHyperparameterError
        When ``total`` is not an integer >= 1 or a factor is negative.

    Examples
    --------
    >>> from optfilters.gains import LinearDecay
    >>> LinearDecay(4).values(6).tolist()
    [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """

    total: int
    start_factor: float = 1.0
    end_factor: float = 0.0

    def __post_init__(self) -> None:
        _positive_int("total", self.total)
        _in_range("start_factor", self.start_factor, 0.0, math.inf)
        _in_range("end_factor", self.end_factor, 0.0, math.inf)

    def value(self, t: int) -> float:
        """The interpolated factor."""
        frac = min(t - 1, int(self.total)) / int(self.total)
        return float(self.start_factor + (self.end_factor - self.start_factor) * frac)

    @property
    def limit(self) -> float:
        """``end_factor``."""
        return float(self.end_factor)

    def describe(self) -> str:
        """The formula."""
        return f"linear {self.start_factor:g} -> {self.end_factor:g} over {self.total} steps"


@dataclass(frozen=True)
class CosineDecay(Gain):
    """``m + (1 - m)(1 + cos(pi min(t-1, total)/total)) / 2``: torch's ``CosineAnnealingLR`` up to ``total``.

    After ``total`` steps the factor stays at ``min_factor`` (torch's own
    recursion would rise again).

    Parameters
    ----------
    total : int
        Steps of the half cosine, >= 1.
    min_factor : float
        Final factor, in [0, 1].

    Raises
    ------
    InvalidHyperparameterError
        When ``total`` is not an integer >= 1 or ``min_factor`` is outside [0, 1].

    Examples
    --------
    >>> from optfilters.gains import CosineDecay
    >>> CosineDecay(2).values(4).round(12).tolist()
    [1.0, 0.5, 0.0, 0.0]
    """

    total: int
    min_factor: float = 0.0

    def __post_init__(self) -> None:
        _positive_int("total", self.total)
        _in_range("min_factor", self.min_factor, 0.0, 1.0)

    def value(self, t: int) -> float:
        """The cosine factor."""
        frac = min(t - 1, int(self.total)) / int(self.total)
        return float(self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * frac)))

    @property
    def limit(self) -> float:
        """``min_factor``."""
        return float(self.min_factor)

    def describe(self) -> str:
        """The formula."""
        return f"cosine to {self.min_factor:g} over {self.total} steps"


@dataclass(frozen=True)
class LinearWarmup(Gain):
    """Linear warm-up ``min(1, t / steps)`` (from ``start_factor`` if given), then ``then`` restarted.

    With ``start_factor = s`` the factor is ``s + (1 - s) (t - 1) / steps``
    (torch's ``LinearLR(s, 1, steps)``) until it reaches 1.  After the warm-up,
    step ``t`` uses ``then.value(t - steps)``.

    Parameters
    ----------
    steps : int
        Warm-up steps, >= 1.
    then : Gain, optional
        The gain after the warm-up (default: 1).
    start_factor : float, optional
        Factor at step 1, in [0, 1] (default: ``1 / steps``).

    Raises
    ------
    InvalidHyperparameterError
        When ``steps`` is not an integer >= 1 or ``start_factor`` is outside [0, 1].

    Examples
    --------
    >>> from optfilters.gains import ExponentialDecay, LinearWarmup
    >>> LinearWarmup(4, then=ExponentialDecay(0.5)).values(6).tolist()
    [0.25, 0.5, 0.75, 1.0, 1.0, 0.5]
    """

    steps: int
    then: Gain | None = None
    start_factor: float | None = None

    def __post_init__(self) -> None:
        _positive_int("steps", self.steps)
        if self.start_factor is not None:
            _in_range("start_factor", self.start_factor, 0.0, 1.0)

    def value(self, t: int) -> float:
        """The warm-up factor, then the following gain's."""
        w = int(self.steps)
        if t <= w:
            if self.start_factor is None:
                return t / w
            return float(self.start_factor + (1.0 - self.start_factor) * (t - 1) / w)
        return 1.0 if self.then is None else self.then.value(t - w)

    @property
    def limit(self) -> float:
        """The following gain's limit (1 without one)."""
        return 1.0 if self.then is None else float(self.then.limit)

    def describe(self) -> str:
        """The formula."""
        after = "" if self.then is None else f", then {self.then.describe()}"
        return f"linear warm-up over {self.steps} steps{after}"


def nadam_momentum(beta1: float, momentum_decay: float, t: int) -> float:
    """NAdam's momentum schedule ``mu_t = beta1 (1 - 0.5 * 0.96^(t * psi))``.

    Parameters
    ----------
    beta1 : float
        torch.optim.NAdam's ``betas[0]``.
    momentum_decay : float
        torch.optim.NAdam's ``momentum_decay`` (``psi``).
    t : int
        Step count, >= 1.

    Returns
    -------
    float
        ``mu_t`` (torch.optim.NAdam, ``_single_tensor_nadam``).

    Examples
    --------
    >>> round(nadam_momentum(0.9, 4e-3, 1), 6)
    0.450073
    """
    return beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))


@dataclass(frozen=True)
class NadamProduct(RunningProduct):
    """torch.optim.NAdam's ``mu_product``: ``prod_k mu_k``, each ``mu_k`` with the ``beta1`` of its step.

    A state of the optimizer (``optimizer.state[p]["mu_product"]``), advanced
    once per step; with ``beta1`` or ``momentum_decay`` changed between steps
    (a schedule) it is not a function of ``t``.

    Parameters
    ----------
    beta1 : float
        torch.optim.NAdam's ``betas[0]``.
    momentum_decay : float
        torch.optim.NAdam's ``momentum_decay`` (``psi``).

    Examples
    --------
    >>> from optfilters.gains import NadamProduct
    >>> round(NadamProduct(0.9, 4e-3).factor(1), 6)
    0.450073
    """

    beta1: float = 0.9
    momentum_decay: float = 4e-3
    key: ClassVar[str] = "mu_product"

    def factor(self, t: int) -> float:
        """``mu_t`` with this step's ``beta1`` and ``momentum_decay``."""
        return nadam_momentum(self.beta1, self.momentum_decay, t)


def nadam_product(beta1: float, momentum_decay: float, t: int, dtype: str = "float32") -> float:
    """``prod_{k<=t} mu_k`` rounded at every step in ``dtype``, as torch.optim.NAdam keeps it (constant ``beta1``).

    torch stores the product in a tensor of ``torch.get_default_dtype()``
    (float32 unless the default dtype was changed to float64).

    Parameters
    ----------
    beta1 : float
        torch.optim.NAdam's ``betas[0]``.
    momentum_decay : float
        torch.optim.NAdam's ``momentum_decay`` (``psi``).
    t : int
        Step count, >= 1.
    dtype : {"float32", "float64"}
        The dtype torch keeps the product in.

    Returns
    -------
    float
        ``mu_1 mu_2 ... mu_t``.

    Raises
    ------
    ValueError
        For another dtype.

    Examples
    --------
    >>> round(nadam_product(0.9, 4e-3, 1), 6)
    0.450073
    """
    return NadamProduct(beta1, momentum_decay).history(t, dtype)


@dataclass(frozen=True)
class _NadamGain(Gain):
    """NAdam's bias-corrected weights: a fraction of ``t`` and the running product ``prod_{k<=t} mu_k``.

    Subclasses define :meth:`_over_product`; :meth:`fraction` evaluates it on
    the product rounded as torch keeps it, :meth:`coef` on the run's
    :class:`NadamProduct`.
    """

    beta1: float = 0.9
    momentum_decay: float = 4e-3
    product_dtype: str = "float32"

    def value(self, t: int) -> float:
        """The weight at step ``t``."""
        num, den = self.fraction(t)
        return num / den

    def _over_product(self, t: int, product: float) -> tuple[float, float]:
        """``(num, den)`` at step ``t`` given ``product = prod_{k<=t} mu_k``."""
        raise NotImplementedError

    def fraction(self, t: int) -> tuple[float, float]:
        """:meth:`_over_product` on ``prod_{k<=t} mu_k`` rounded in ``product_dtype`` (torch.optim.NAdam's order)."""
        return self._over_product(t, nadam_product(self.beta1, self.momentum_decay, t, self.product_dtype))

    def coef(self) -> Coef:
        """:meth:`_over_product` reading the running product (:class:`NadamProduct`) of the run."""
        return Coef(self._over_product, float(self.limit), (NadamProduct(self.beta1, self.momentum_decay),))


@dataclass(frozen=True)
class NadamCurrentGain(_NadamGain):
    """NAdam's weight on the current gradient: ``(1 - mu_t) / (1 - prod_{k<=t} mu_k)``.

    Limit ``1 - beta1``.  ``product_dtype`` is the precision of torch's
    running product (float32 unless torch's default dtype is float64).

    Parameters
    ----------
    beta1 : float
        torch.optim.NAdam's ``betas[0]``.
    momentum_decay : float
        torch.optim.NAdam's ``momentum_decay`` (``psi``).
    product_dtype : {"float32", "float64"}
        The dtype torch keeps the running product ``prod mu_k`` in.

    Examples
    --------
    >>> from optfilters.gains import NadamCurrentGain
    >>> g = NadamCurrentGain(0.9, 4e-3)
    >>> round(g.value(1), 12), round(g.limit, 12)
    (1.0, 0.1)
    """

    def _over_product(self, t: int, product: float) -> tuple[float, float]:
        """``(1 - mu_t, 1 - product)`` (torch.optim.NAdam's order), ``product = prod_{k<=t} mu_k``."""
        return (1.0 - nadam_momentum(self.beta1, self.momentum_decay, t), 1.0 - product)

    @property
    def limit(self) -> float:
        """``1 - beta1`` (``mu_t -> beta1``, the product -> 0); ``0.5 (1 - beta1)`` form when psi = 0."""
        if self.momentum_decay == 0.0:
            return 1.0 - 0.5 * self.beta1
        return 1.0 - self.beta1

    def describe(self) -> str:
        """The formula."""
        return "(1-mu_t)/(1-prod mu)"


@dataclass(frozen=True)
class NadamMomentumGain(_NadamGain):
    """NAdam's weight on the first moment ``m``: ``mu_{t+1} / (1 - prod_{k<=t+1} mu_k)``.

    Limit ``beta1`` (with psi > 0).

    Parameters
    ----------
    beta1 : float
        torch.optim.NAdam's ``betas[0]``.
    momentum_decay : float
        torch.optim.NAdam's ``momentum_decay`` (``psi``).
    product_dtype : {"float32", "float64"}
        The dtype torch keeps the running product ``prod mu_k`` in.

    Examples
    --------
    >>> from optfilters.gains import NadamMomentumGain
    >>> round(NadamMomentumGain(0.9, 4e-3).limit, 12)
    0.9
    """

    def _over_product(self, t: int, product: float) -> tuple[float, float]:
        """``(mu_{t+1}, 1 - product * mu_{t+1})`` (torch.optim.NAdam's order), ``product = prod_{k<=t} mu_k``."""
        mu_next = nadam_momentum(self.beta1, self.momentum_decay, t + 1)
        return (mu_next, 1.0 - product * mu_next)

    @property
    def limit(self) -> float:
        """``beta1`` (or ``beta1/2`` when ``momentum_decay == 0``)."""
        if self.momentum_decay == 0.0:
            return 0.5 * self.beta1
        return self.beta1

    def describe(self) -> str:
        """The formula."""
        return "mu_{t+1}/(1-prod mu)"


@dataclass(frozen=True)
class RAdamRectification(Gain):
    """RAdam's variance rectification ``r_t`` (active once ``rho_t > 5``).

    While inactive, RAdam applies no normalisation at all; :meth:`active`
    says which regime step ``t`` is in, and :meth:`value` is ``r_t`` (1 while
    inactive).  The limit is 1.

    Parameters
    ----------
    beta2 : float
        torch.optim.RAdam's ``betas[1]``.

    Examples
    --------
    >>> from optfilters.gains import RAdamRectification
    >>> r = RAdamRectification(0.999)
    >>> [r.active(t) for t in (5, 6)]
    [False, True]
    """

    beta2: float = 0.999

    def rho(self, t: int) -> float:
        """``rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)`` (torch.optim.RAdam's expression).

        Parameters
        ----------
        t : int
            The step count, ``t >= 1``.

        Returns
        -------
        float
            The length ``rho_t`` of the approximated simple moving average
            (Liu et al. 2020, "On the Variance of the Adaptive Learning Rate and
            Beyond", Algorithm 2), ``rho_inf = 2 / (1 - beta2) - 1``.
        """
        rho_inf = 2 / (1 - self.beta2) - 1
        bias_correction2 = 1 - self.beta2**t
        return rho_inf - 2 * t * (self.beta2**t) / bias_correction2

    def active(self, t: int) -> bool:
        """True when the adaptive (normalised) update is used at step ``t``.

        Parameters
        ----------
        t : int
            The step count, ``t >= 1``.

        Returns
        -------
        bool
            ``rho_t > 5`` (torch.optim.RAdam's threshold).
        """
        return self.rho(t) > 5.0

    def value(self, t: int) -> float:
        """``r_t`` when active, else 1 (torch.optim.RAdam's expression, ``** 0.5`` included)."""
        if not self.active(t):
            return 1.0
        return self.fraction(t)[0]

    def fraction(self, t: int) -> tuple[float, float]:
        """``(r_t, 1)``, computed whether or not step ``t`` is rectified (the step program uses it only then)."""
        beta2 = self.beta2
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * t * (beta2**t) / (1 - beta2**t)
        return (float(((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5), 1.0)

    @property
    def limit(self) -> float:
        """1."""
        return 1.0

    def describe(self) -> str:
        """The formula."""
        return "r_t if rho_t > 5"
