"""Optimizer stages: linear filters, normalisers, nonlinearity and weight decay.

Each stage is an immutable value.  It knows its exact (possibly time-varying)
recursion, which :class:`NumpyStageRunner` executes step by step, and the
linear time-invariant limit that the analysis uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ._errors import InvalidFilterError
from ._filter import ArmaFilter, parallel
from ._gains import Constant, Gain, RAdamRectification

__all__ = [
    "AdadeltaNormaliser",
    "FilterTerm",
    "LinearStage",
    "PeakNormaliser",
    "RmsNormaliser",
    "SignNonlinearity",
    "WeightDecay",
    "transient_compensation",
    "transient_correction",
]

FloatArray = NDArray[np.float64]


def _one_pole(f: ArmaFilter) -> float | None:
    """The pole of ``b0 / (1 - p z^-1)``, else None."""
    if f.b.size == 1 and f.a.size == 2:
        return float(-f.a[1])
    return None


class _StepResponseCache:
    """Step responses of filters, extended on demand (for transient compensation)."""

    def __init__(self) -> None:
        self._cache: dict[ArmaFilter, FloatArray] = {}

    def value(self, f: ArmaFilter, t: int) -> float:
        known = self._cache.get(f)
        if known is None or known.size < t:
            n = max(64, 1 << t.bit_length())
            known = f.step_response(n)
            self._cache[f] = known
        return float(known[t - 1])


_STEP_CACHE = _StepResponseCache()


def transient_correction(f: ArmaFilter, t: int) -> float:
    """The fraction ``s[t] / H(1)`` of its DC gain that the step response of ``f`` has reached at step ``t``.

    For a one-pole filter this is ``1 - p^t`` (Adam's ``bias_correction``),
    computed with that very expression; otherwise from the step response.

    Examples
    --------
    >>> from optfilters import ArmaFilter
    >>> from optfilters.stages import transient_correction
    >>> transient_correction(ArmaFilter.ema(0.9), 2)
    0.18999999999999995
    """
    pole = _one_pole(f)
    if pole is not None and pole != 1.0:
        return 1.0 - pole**t
    dc = f.dc_gain
    if not math.isfinite(dc) or dc == 0.0:
        raise InvalidFilterError(f"transient compensation needs a finite, non-zero DC gain, got {dc}")
    s = _STEP_CACHE.value(f, t)
    if s == 0.0:
        raise InvalidFilterError(f"transient compensation is undefined at step {t}: the step response is 0")
    return s / dc


def transient_compensation(f: ArmaFilter, t: int) -> float:
    """The gain ``H(1) / s[t]`` that makes the step response of ``f`` equal its DC gain at step ``t``.

    ``s[t]`` is the step response at step ``t`` (``t = 1`` is the first
    sample).  For the unit-DC-gain EMA this is Adam's bias correction
    ``1 / (1 - beta^t)``, computed with that very expression.

    Parameters
    ----------
    f : ArmaFilter
        A filter with a finite, non-zero DC gain.
    t : int
        Step count, ``t >= 1``.

    Returns
    -------
    float

    Raises
    ------
    InvalidFilterError
        If the DC gain is zero or infinite, or the step response is zero at ``t``.

    Examples
    --------
    >>> from optfilters import ArmaFilter
    >>> from optfilters.stages import transient_compensation
    >>> transient_compensation(ArmaFilter.ema(0.9), 1)
    10.000000000000002
    """
    return 1.0 / transient_correction(f, t)


@dataclass(frozen=True)
class FilterTerm:
    """One term ``c(t) * F(x)`` of a :class:`LinearStage`.

    Parameters
    ----------
    filter : ArmaFilter
        The LTI filter, run from rest unless an initialisation option says otherwise.
    gain : Gain, optional
        Time-varying coefficient ``c(t)`` (default 1).
    compensated : bool, optional
        Apply transient compensation (bias correction): multiply by
        ``H(1) / s[t]``.  For the EMA this is ``1 / (1 - beta^t)``.
    first_output_is_input : bool, optional
        At the first step the output equals the input (torch's SGD momentum
        buffer and Grokfast's EMA start at the first gradient).  Needs an
        all-pole filter (``len(b) == 1``).
    initial_output : float, optional
        Start the recursion as though the previous output were this value
        (Adagrad's ``initial_accumulator_value``).  Needs a one-pole all-pole
        filter.

    Examples
    --------
    >>> from optfilters import ArmaFilter
    >>> from optfilters.stages import FilterTerm
    >>> FilterTerm(ArmaFilter.ema(0.9), compensated=True).is_time_invariant
    False
    """

    filter: ArmaFilter
    gain: Gain = field(default_factory=lambda: Constant(1.0))
    compensated: bool = False
    first_output_is_input: bool = False
    initial_output: float = 0.0

    def __post_init__(self) -> None:
        if (self.first_output_is_input or self.initial_output != 0.0) and self.filter.b.size != 1:
            raise InvalidFilterError("first-step initialisation needs an all-pole filter (len(b) == 1)")
        if self.initial_output != 0.0 and _one_pole(self.filter) is None:
            raise InvalidFilterError("initial_output needs a one-pole filter b0 / (1 - p z^-1)")
        if self.compensated:
            dc = self.filter.dc_gain
            if not math.isfinite(dc) or dc == 0.0:
                raise InvalidFilterError(f"transient compensation needs a finite, non-zero DC gain, got {dc}")

    @property
    def is_time_invariant(self) -> bool:
        """True when the term is an LTI filter run from rest."""
        return (
            self.gain.is_constant
            and not self.compensated
            and not self.first_output_is_input
            and self.initial_output == 0.0
        )

    @property
    def can_compensate(self) -> bool:
        """True when bias correction ``H(1) / s[t]`` is defined for this term and changes it.

        The correction undoes the start from rest (zero state), so it needs a
        finite, non-zero DC gain; a term that starts from its first input
        (``first_output_is_input``: torch's SGD buffer with dampening,
        Grokfast's EMA) or from a given previous output (``initial_output``)
        does not start from rest and is used as it is.
        """
        if self.first_output_is_input or self.initial_output != 0.0:
            return False
        dc = self.filter.dc_gain
        return math.isfinite(dc) and dc != 0.0

    def coefficient(self, t: int, compensate: bool | None = None) -> float:
        """``c(t)``, times the compensation gain when applied.

        ``compensate`` None follows :attr:`compensated`; True compensates
        wherever that is defined; False never does.
        """
        c = self.gain.value(t)
        apply = self.compensated if compensate is None else (compensate and self.can_compensate)
        if apply:
            c *= transient_compensation(self.filter, t)
        return c

    def limit(self) -> ArmaFilter:
        """The ``t -> infinity`` LTI filter ``c(inf) * F`` (compensation tends to 1)."""
        return self.filter.scaled(self.gain.limit)

    def describe(self) -> str:
        """Short text: the gain and the filter."""
        parts = []
        if not (self.gain.is_constant and self.gain.limit == 1.0):
            parts.append(self.gain.describe())
        parts.append(f"{self.filter!r}")
        text = " * ".join(parts)
        if self.compensated:
            text += " (transient-compensated)"
        if self.first_output_is_input:
            text += " (first output = first input)"
        if self.initial_output:
            text += f" (initial output {self.initial_output:g})"
        return text


@dataclass(frozen=True)
class LinearStage:
    """A linear, possibly time-varying stage ``y_t = sum_i c_i(t) F_i(x)_t``.

    Parameters
    ----------
    terms : tuple of FilterTerm
        The terms; their LTI limits add up (in parallel) to :meth:`limit`.
    name : str
        The stage's role: ``"gradient"``, ``"second_moment"``, ``"post"``, ...

    Examples
    --------
    >>> from optfilters import ArmaFilter
    >>> from optfilters.stages import FilterTerm, LinearStage
    >>> stage = LinearStage((FilterTerm(ArmaFilter.ema(0.9), compensated=True),), "gradient")
    >>> stage.limit().isclose(ArmaFilter.ema(0.9))
    True
    >>> stage.compensated, stage.is_time_invariant
    (True, False)
    """

    terms: tuple[FilterTerm, ...]
    name: str = "gradient"

    def __post_init__(self) -> None:
        if not self.terms:
            raise InvalidFilterError("a linear stage needs at least one term")

    @classmethod
    def of(cls, f: ArmaFilter, name: str = "gradient", **term_options: Any) -> LinearStage:
        """A single-term stage.

        Examples
        --------
        >>> from optfilters import ArmaFilter
        >>> from optfilters.stages import LinearStage
        >>> LinearStage.of(ArmaFilter.ema(0.5)).is_time_invariant
        True
        """
        return cls((FilterTerm(f, **term_options),), name)

    def limit(self) -> ArmaFilter:
        """The LTI filter as ``t -> infinity`` (the exact filter when time-invariant)."""
        return parallel(*(term.limit() for term in self.terms)).renamed(self.name)

    @property
    def is_time_invariant(self) -> bool:
        """True when every term is LTI from rest."""
        return all(term.is_time_invariant for term in self.terms)

    @property
    def compensated(self) -> bool:
        """True when any term is transient-compensated (bias corrected)."""
        return any(term.compensated for term in self.terms)

    @property
    def is_identity(self) -> bool:
        """True for the single constant term ``1``."""
        limit = self.limit()
        return self.is_time_invariant and limit.b.tolist() == [1.0] and limit.a.tolist() == [1.0]

    def describe(self) -> str:
        """Terms joined with ``+``."""
        return " + ".join(term.describe() for term in self.terms)

    def response(self, x: FloatArray, compensate: bool | None = None) -> FloatArray:
        """Run the exact stage over a sequence ``x`` (first axis is time).

        Parameters
        ----------
        x : ndarray
            Input sequence, ``x[0]`` at step ``t = 1``.
        compensate : bool or None
            None applies compensation where the optimizer does; True applies it
            to every term; False to none.

        Examples
        --------
        >>> import numpy as np
        >>> from optfilters import ArmaFilter
        >>> from optfilters.stages import LinearStage
        >>> stage = LinearStage.of(ArmaFilter.ema(0.5), compensated=True)
        >>> stage.response(np.ones(3)).tolist()
        [1.0, 1.0, 1.0]
        >>> stage.response(np.ones(3), compensate=False).tolist()
        [0.5, 0.75, 0.875]
        """
        x = np.asarray(x, dtype=np.float64)
        runner = LinearStageRunner(self, x.shape[1:], compensate=compensate)
        return np.stack([runner.step(x[t], t + 1) for t in range(x.shape[0])]) if x.shape[0] else x.copy()


class LinearStageRunner:
    """Step-by-step numpy execution of a :class:`LinearStage`.

    Terms run in transposed direct form II; terms above order 2 run as a
    cascade of second-order sections (from the filter's zeros and poles).

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters import ArmaFilter
    >>> from optfilters.stages import LinearStage, LinearStageRunner
    >>> run = LinearStageRunner(LinearStage.of(ArmaFilter([1.0], [1.0, -0.5])), shape=())
    >>> [float(run.step(np.float64(x), t)) for t, x in enumerate([1.0, 0.0, 0.0], start=1)]
    [1.0, 0.5, 0.25]
    """

    def __init__(self, stage: LinearStage, shape: tuple[int, ...], compensate: bool | None = None) -> None:
        self.stage = stage
        self.compensate = compensate
        self.states: list[FloatArray] = []
        self.sections: list[FloatArray | None] = []
        self.raw: list[FloatArray] = [np.zeros(shape) for _ in stage.terms]
        for term in stage.terms:
            f = term.filter
            plain = not term.first_output_is_input and term.initial_output == 0.0
            if plain and f.order > 2 and not f.is_fir:
                # High orders run as second-order sections, each in transposed direct form II.
                sos = f.to_sos()
                self.sections.append(sos)
                self.states.append(np.zeros((sos.shape[0], 2, *shape)))
                continue
            n = max(f.a.size, f.b.size) - 1
            state = np.zeros((n, *shape))
            if term.initial_output != 0.0 and n:
                state[0] = -f.a[1] * term.initial_output
            self.sections.append(None)
            self.states.append(state)

    def step(self, x: FloatArray, t: int) -> FloatArray:
        """Feed ``x`` at step ``t`` and return the stage output."""
        total: FloatArray | None = None
        for i, term in enumerate(self.stage.terms):
            y = self.step_term(i, x, t)
            c = term.coefficient(t, self.compensate)
            total = c * y if total is None else total + c * y
        assert total is not None
        return total

    def step_term(self, i: int, x: FloatArray, t: int) -> FloatArray:
        """Advance term ``i`` and return its raw filter output (no coefficient)."""
        term = self.stage.terms[i]
        sos = self.sections[i]
        if sos is not None:
            y = np.asarray(x, dtype=np.float64)
            for k, (b0, b1, b2, _, a1, a2) in enumerate(sos):
                z = self.states[i][k]
                out = b0 * y + z[0]
                z[0] = b1 * y - a1 * out + z[1]
                z[1] = b2 * y - a2 * out
                y = out
            self.raw[i] = y
            return y
        b, a = term.filter.b, term.filter.a
        z = self.states[i]
        n = z.shape[0]
        if term.first_output_is_input and t == 1:
            y = np.array(x, dtype=np.float64, copy=True)
        else:
            y = b[0] * x + (z[0] if n else 0.0)
        for k in range(n):
            bk = b[k + 1] if k + 1 < b.size else 0.0
            ak = a[k + 1] if k + 1 < a.size else 0.0
            nxt = z[k + 1] if k + 1 < n else 0.0
            z[k] = bk * x - ak * y + nxt
        self.raw[i] = y
        return np.asarray(y, dtype=np.float64)


EpsPlacement = Literal["after_root", "inside_root", "before_correction"]


@dataclass(frozen=True)
class RmsNormaliser:
    """Divide the direction by ``sqrt(F(g^2))`` plus ``eps``: Adam, RMSprop, Adagrad, ...

    Parameters
    ----------
    second_moment : LinearStage
        Filter on the squared (effective) gradient; e.g. Adam's EMA with
        ``beta2`` (transient-compensated: bias-corrected), Adagrad's summer.
        A single compensated term is corrected after the AMSGrad maximum, as
        torch does.
    eps : float
        Added for numerical safety.
    eps_placement : {"after_root", "inside_root", "before_correction"}
        ``sqrt(v_hat) + eps`` (Adam, RMSprop, Adagrad), ``sqrt(v_hat + eps)``, or
        ``(sqrt(v) + eps) / sqrt(c)`` with the bias correction ``c`` applied
        after eps (RAdam).
    amsgrad : bool
        Use the running maximum of the (uncorrected) second moment.
    center : LinearStage or None
        RMSprop ``centered``: subtract the square of this filter of ``g``.
    rectification : RAdamRectification or None
        RAdam: no normalisation while inactive, ``r_t`` times the normalised
        update afterwards.
    correction_inside_root : bool
        With ``eps_placement="after_root"``, apply a single bias correction
        inside the root, ``sqrt(v / c) + eps`` (torch.optim.NAdam), rather than
        ``sqrt(v) / sqrt(c) + eps`` (torch.optim.Adam): the same value, rounded
        differently, which executors that mirror torch.optim need to know.

    Examples
    --------
    >>> from optfilters import ArmaFilter
    >>> from optfilters.stages import LinearStage, RmsNormaliser
    >>> v = LinearStage.of(ArmaFilter.ema(0.999), "second_moment", compensated=True)
    >>> n = RmsNormaliser(v, eps=1e-8)
    >>> n.kind, n.compensated
    ('rms', True)
    """

    second_moment: LinearStage
    eps: float = 1e-8
    eps_placement: EpsPlacement = "after_root"
    amsgrad: bool = False
    center: LinearStage | None = None
    rectification: RAdamRectification | None = None
    correction_inside_root: bool = False
    kind: str = field(default="rms", init=False)

    def __post_init__(self) -> None:
        if self.amsgrad and len(self.second_moment.terms) != 1:
            raise InvalidFilterError("AMSGrad needs a single-term second-moment filter")
        if self.eps_placement == "before_correction" and len(self.second_moment.terms) != 1:
            raise InvalidFilterError("eps before the bias correction needs a single-term second-moment filter")

    @property
    def compensated(self) -> bool:
        """True when the second moment is bias-corrected (transient-compensated)."""
        return self.second_moment.compensated

    def filters(self) -> dict[str, ArmaFilter]:
        """The linear filters inside: ``second_moment`` and, if centered, ``center``."""
        out = {"second_moment": self.second_moment.limit().renamed("second_moment")}
        if self.center is not None:
            out["center"] = self.center.limit().renamed("center")
        return out

    @property
    def is_time_invariant(self) -> bool:
        """Whether the normaliser's recursion is time-invariant (it is nonlinear either way)."""
        return self.rectification is None and self.second_moment.is_time_invariant

    def describe(self) -> str:
        """Short formula."""
        root = {
            "after_root": "sqrt(v) + eps",
            "inside_root": "sqrt(v + eps)",
            "before_correction": "(sqrt(v) + eps) / sqrt(bias correction)",
        }[self.eps_placement]
        text = f"divide by {root}, v = {self.second_moment.describe()} of g^2"
        if self.amsgrad:
            text += ", running max (AMSGrad)"
        if self.center is not None:
            text += f", centered by ({self.center.describe()})^2"
        if self.rectification is not None:
            text += ", RAdam rectification (unnormalised until rho_t > 5)"
        return text


@dataclass(frozen=True)
class PeakNormaliser:
    """Adamax's peak envelope: ``u_t = max(beta2 * u_{t-1}, |g_t| + eps)``; divide by ``u``.

    Examples
    --------
    >>> from optfilters.stages import PeakNormaliser
    >>> PeakNormaliser(0.999, 1e-8).filters()
    {}
    """

    beta2: float = 0.999
    eps: float = 1e-8
    kind: str = field(default="peak", init=False)
    is_time_invariant: bool = field(default=True, init=False)

    def filters(self) -> dict[str, ArmaFilter]:
        """None: the envelope is a max-plus recursion, not a linear filter."""
        return {}

    def describe(self) -> str:
        """Short formula."""
        return f"divide by u, u = max({self.beta2:g} u, |g| + eps) (peak envelope)"


@dataclass(frozen=True)
class AdadeltaNormaliser:
    """Adadelta: ``delta = sqrt(u + eps) / sqrt(v + eps) * g`` with EMAs ``v`` of ``g^2`` and ``u`` of ``delta^2``.

    Examples
    --------
    >>> from optfilters.stages import AdadeltaNormaliser
    >>> sorted(AdadeltaNormaliser(0.9, 1e-6).filters())
    ['second_moment', 'update_moment']
    """

    rho: float = 0.9
    eps: float = 1e-6
    kind: str = field(default="adadelta", init=False)
    is_time_invariant: bool = field(default=True, init=False)

    def filters(self) -> dict[str, ArmaFilter]:
        """EMA(rho) of ``g^2`` (``second_moment``) and of ``delta^2`` (``update_moment``)."""
        ema = ArmaFilter.ema(self.rho)
        return {"second_moment": ema.renamed("second_moment"), "update_moment": ema.renamed("update_moment")}

    def describe(self) -> str:
        """Short formula."""
        return f"multiply by sqrt(u + eps)/sqrt(v + eps); v, u = EMA({self.rho:g}) of g^2, delta^2"


Normaliser = RmsNormaliser | PeakNormaliser | AdadeltaNormaliser


@dataclass(frozen=True)
class SignNonlinearity:
    """Elementwise ``sign`` (Lion).

    Examples
    --------
    >>> from optfilters.stages import SignNonlinearity
    >>> SignNonlinearity().describe()
    'sign'
    """

    kind: str = field(default="sign", init=False)

    def describe(self) -> str:
        """'sign'."""
        return "sign"


@dataclass(frozen=True)
class WeightDecay:
    """Weight decay: coupled L2 (``g += wd * theta``) or decoupled (``theta *= 1 - lr * wd``).

    Examples
    --------
    >>> from optfilters.stages import WeightDecay
    >>> WeightDecay(0.01, decoupled=True).describe()
    'decoupled: theta *= 1 - lr*0.01'
    """

    weight_decay: float
    decoupled: bool = False

    def describe(self) -> str:
        """Short formula."""
        if self.decoupled:
            return f"decoupled: theta *= 1 - lr*{self.weight_decay:g}"
        return f"coupled L2: g += {self.weight_decay:g}*theta"
