"""Translate an :class:`~optfilters.OptimizerModel` into a straight-line tensor program.

A :class:`Program` is a tuple of :class:`Instruction` values over named
registers (``param``, ``grad``, ``state.<key>`` and temporaries ``t<n>``) and a
tuple of scalar functions ``f(t, lr) -> float`` (one per slot).  The same
program runs on one tensor at a time, on lists of tensors (``torch._foreach_*``)
or inside ``torch.compile``; only the interpreter changes (:mod:`._kernels`,
:mod:`._native`, :mod:`._compiled`).  Every scalar of a step (bias corrections, NAdam's momentum
schedule, lr, filter coefficients) is computed in Python double precision by
the slot functions, in the same order as torch.optim computes it, so that the
tensor operations see the same numbers.

Realisations (per filter term, chosen from the filter's shape):

* a constant ``b = [k]``: no state, ``k`` joins the term's scalar coefficient;
* a one-pole all-pole filter ``b0 / (1 - p z^-1)`` keeps its previous output as
  state and runs in torch.optim's own form: ``lerp`` for the unit-DC-gain EMA
  (``b0 = 1 - p``), ``mul_``/``add_`` for heavy-ball momentum, ``mul_``/``addcmul_``
  for second moments and ``add_``/``addcmul_`` for a summer (``p = 1``).  Where
  rounding ``p`` to the state's dtype would move the pole by more than
  ``1e-6 (1 - p)`` (float32 state with ``p`` close to 1), the update is written
  in delta form ``y += b0 x - (1 - p) y`` (or ``lerp`` with weight ``1 - p``)
  whose coefficients keep full relative precision;
* any other IIR filter runs as second-order sections (one section up to order 2,
  ``ArmaFilter.to_sos()`` above), each in transposed direct form II over the
  delta operator ``delta^-1 = z^-1 / (1 - z^-1)`` (coefficients
  ``2 + a1``, ``1 + a1 + a2``, ...), which stays accurate in float32 for poles
  near ``z = 1``;
* FIR filters, and all-pole filters whose first output is their input, run in
  plain transposed direct form II.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .._filter import ArmaFilter
from .._gains import (
    Constant,
    Gain,
    InverseTimeDecay,
    NadamCurrentGain,
    NadamMomentumGain,
    nadam_momentum,
    nadam_product,
)
from .._model import OptimizerModel
from .._stages import (
    AdadeltaNormaliser,
    FilterTerm,
    LinearStage,
    PeakNormaliser,
    RmsNormaliser,
    transient_correction,
)

__all__ = ["POLE_TOLERANCE", "Instruction", "Plan", "Program", "StateSpec"]

Fraction = tuple[float, float]
FractionFn = Callable[[int], Fraction]
ScalarFn = Callable[[int, float], float]

#: A pole is "coarse" in a dtype when rounding moves it by more than this fraction of its distance to 1.
POLE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Instruction:
    """One tensor operation: ``out = op(*args, scalar)`` or an in-place ``op`` on ``args[0]``.

    Examples
    --------
    >>> from optfilters.torch._program import Instruction
    >>> Instruction("lerp_", None, ("state.gradient.0", "grad"), 0)
    Instruction(op='lerp_', out=None, args=('state.gradient.0', 'grad'), slot=0)
    """

    op: str
    out: str | None
    args: tuple[str, ...]
    slot: int | None = None


@dataclass(frozen=True)
class StateSpec:
    """A per-parameter state tensor: its key in ``optimizer.state[p]`` and its initial value.

    Examples
    --------
    >>> from optfilters.torch._program import StateSpec
    >>> StateSpec("second_moment.0", 0.1).init
    0.1
    """

    key: str
    init: float = 0.0


@dataclass(frozen=True)
class Program:
    """A straight-line step: instructions, scalar slot functions and the state it needs.

    Examples
    --------
    >>> import torch, optfilters
    >>> from optfilters.torch._program import Plan
    >>> program = Plan(optfilters.get("momentum", momentum=0.9), torch.float64).program(3)
    >>> [ins.op for ins in program.instructions]
    ['mul_s_', 'add_', 'add_']
    >>> program.scalar_values(3, 0.1)
    [0.9, 1.0, -0.1]
    """

    instructions: tuple[Instruction, ...]
    scalars: tuple[ScalarFn, ...]
    state: tuple[StateSpec, ...]

    @functools.cached_property
    def keys(self) -> tuple[str, ...]:
        """The state keys, in order."""
        return tuple(spec.key for spec in self.state)

    @functools.cached_property
    def keyset(self) -> frozenset[str]:
        """The state keys, as a set."""
        return frozenset(self.keys)

    def scalar_values(self, t: int, lr: float) -> list[float]:
        """The value of every scalar slot at step ``t`` with learning rate ``lr``."""
        return [fn(t, lr) for fn in self.scalars]

    @functools.cached_property
    def signature(self) -> tuple[object, ...]:
        """What a compiled version depends on: the instructions and the state keys (not the scalar values)."""
        return (self.instructions, self.keys, len(self.scalars))


# ----------------------------------------------------------------------------- coefficients


@dataclass(frozen=True)
class _Coef:
    """A scalar coefficient ``num(t) / den(t)``; ``fn`` None means exactly 1."""

    fn: FractionFn | None = None

    @property
    def one(self) -> bool:
        return self.fn is None

    def at(self, t: int) -> Fraction:
        return (1.0, 1.0) if self.fn is None else self.fn(t)

    def times(self, other: _Coef) -> _Coef:
        if other.fn is None:
            return self
        if self.fn is None:
            return other
        f, g = self.fn, other.fn

        def product(t: int) -> Fraction:
            (n1, d1), (n2, d2) = f(t), g(t)
            return (n1 * n2, d1 * d2)

        return _Coef(product)

    def value(self, t: int) -> float:
        num, den = self.at(t)
        return num / den


ONE = _Coef()


def _constant(value: float) -> _Coef:
    if value == 1.0:
        return ONE
    return _Coef(lambda t: (value, 1.0))


def _gain_coef(gain: Gain) -> _Coef:
    """A gain as ``num / den`` in torch.optim's order of operations."""
    if isinstance(gain, Constant):
        return _constant(float(gain.constant))
    if isinstance(gain, InverseTimeDecay):
        decay = float(gain.decay)
        if decay == 0.0:
            return ONE
        return _Coef(lambda t: (1.0, 1 + (t - 1) * decay))  # torch.optim.Adagrad's clr
    if isinstance(gain, NadamCurrentGain):
        b1, psi, dtype = gain.beta1, gain.momentum_decay, gain.product_dtype
        return _Coef(lambda t: (1.0 - nadam_momentum(b1, psi, t), 1.0 - nadam_product(b1, psi, t, dtype)))

    if isinstance(gain, NadamMomentumGain):
        b1, psi, dtype = gain.beta1, gain.momentum_decay, gain.product_dtype

        def momentum(t: int) -> Fraction:
            mu_next = nadam_momentum(b1, psi, t + 1)
            return (mu_next, 1.0 - nadam_product(b1, psi, t, dtype) * mu_next)

        return _Coef(momentum)
    if gain.is_constant:
        return _constant(float(gain.limit))
    return _Coef(lambda t: (gain.value(t), 1.0))


def _correction_coef(f: ArmaFilter) -> _Coef:
    """Transient compensation ``1 / correction(t)`` (Adam's ``1 / (1 - beta^t)``)."""
    return _Coef(lambda t: (1.0, transient_correction(f, t)))


def _is_coarse(pole: float, dtype: torch.dtype) -> bool:
    """True when rounding ``pole`` to ``dtype`` moves it by more than POLE_TOLERANCE of ``|1 - pole|``."""
    if dtype == torch.float64 or pole == 1.0:
        return False
    rounded = float(np.float16(pole)) if dtype == torch.float16 else float(np.float32(pole))
    return abs(rounded - pole) > POLE_TOLERANCE * abs(1.0 - pole)


# ----------------------------------------------------------------------------- the builder


@dataclass
class _LinComb:
    """A lazily combined direction ``sum_i c_i * reg_i`` (divided by ``den`` when set)."""

    terms: list[tuple[str, _Coef]]
    den: str | None = None


@dataclass
class _Builder:
    state_dtype: torch.dtype
    first: bool
    rect_active: bool
    instructions: list[Instruction] = field(default_factory=list)
    scalars: list[ScalarFn] = field(default_factory=list)
    state: dict[str, float] = field(default_factory=dict)
    _constants: dict[tuple[str, float], int] = field(default_factory=dict)
    _temporaries: int = 0
    _squares: dict[str, str] = field(default_factory=dict)

    # registers and slots
    def tmp(self) -> str:
        self._temporaries += 1
        return f"t{self._temporaries}"

    def slot(self, fn: ScalarFn) -> int:
        self.scalars.append(fn)
        return len(self.scalars) - 1

    def const(self, value: float) -> int:
        value = float(value)
        key = (repr(value), value)  # repr tells -0.0 from 0.0
        if key not in self._constants:
            self._constants[key] = self.slot(_constant_scalar(value))
        return self._constants[key]

    def coef_slot(self, coef: _Coef, factor: float = 1.0) -> int:
        """A slot holding ``factor * num / den`` (``(factor * num) / den``, torch's order)."""
        if coef.one:
            return self.const(factor)
        fn = coef.fn
        assert fn is not None

        def scaled(t: int, lr: float) -> float:
            return _scaled(fn(t), factor)

        return self.slot(scaled)

    def emit(self, op: str, out: str | None, *args: str, slot: int | None = None) -> str | None:
        self.instructions.append(Instruction(op, out, tuple(args), slot))
        return out

    def new(self, op: str, *args: str, slot: int | None = None) -> str:
        out = self.tmp()
        self.emit(op, out, *args, slot=slot)
        return out

    def state_reg(self, key: str, init: float = 0.0) -> str:
        self.state[key] = float(init)
        return f"state.{key}"

    def square(self, x: str) -> str:
        if x not in self._squares:
            self._squares[x] = self.new("mul", x, x)
        return self._squares[x]

    # linear stages
    def stage(
        self, stage: LinearStage, x: str, key: str, square: bool = False, compensate: bool | None = None
    ) -> _LinComb:
        terms = []
        for i, term in enumerate(stage.terms):
            out, extra = self.term(term, x, f"{key}.{i}", square)
            coef = _gain_coef(term.gain).times(extra)
            apply = term.compensated if compensate is None else (compensate and term.can_compensate)
            if apply:
                coef = coef.times(_correction_coef(term.filter))
            terms.append((out, coef))
        return _LinComb(terms)

    def term(self, term: FilterTerm, x: str, key: str, square: bool) -> tuple[str, _Coef]:
        """Advance one filter term on ``x`` (or ``x**2``); returns its raw output and a constant factor."""
        f = term.filter
        b, a = f.b, f.a
        if a.size == 1 and b.size == 1:
            # A constant: no state, the constant joins the coefficient.
            return (self.square(x) if square else x), _constant(float(b[0]))
        if a.size == 2 and b.size == 1:
            return self.one_pole(term, x, key, square), ONE
        source = self.square(x) if square else x
        if f.is_fir or term.first_output_is_input:
            return self.direct_form(b, a, source, key, term.first_output_is_input and self.first), ONE
        sections = [(b, a)] if f.order <= 2 else [(s[:3], s[3:]) for s in f.to_sos()]
        y = source
        for k, (bs, as_) in enumerate(sections):
            if np.all(as_[1:] == 0.0):  # a pure FIR section (a delay)
                y = self.direct_form(bs / as_[0], np.ones(1), y, f"{key}.s{k}", False)
            else:
                y = self.delta_section(_section(bs, as_), y, f"{key}.s{k}")
        return y, ONE

    def one_pole(self, term: FilterTerm, x: str, key: str, square: bool, lazy: _LinComb | None = None) -> str:
        """``y = p y + b0 x`` with the previous output ``y`` as state (see the module docstring)."""
        f = term.filter
        b0, pole = float(f.b[0]), float(-f.a[1])
        y = self.state_reg(key, term.initial_output)
        if term.first_output_is_input and self.first:
            self.emit("copy_", None, y, self.square(x) if square else x)
            return y
        if pole == 1.0:
            if square:
                self.emit("addcmul_", None, y, x, x, slot=self.const(b0))
            else:
                self.emit("add_", None, y, x, slot=self.const(b0))
            return y
        ema = b0 == 1.0 - pole
        if ema and not square:
            self.emit("lerp_", None, y, x, slot=self.const(b0))
            return y
        if _is_coarse(pole, self.state_dtype):
            source = self.square(x) if square else x
            if ema:
                self.emit("lerp_", None, y, source, slot=self.const(b0))
            else:
                step = self.new("mul_s", source, slot=self.const(b0))
                self.emit("add_", None, step, y, slot=self.const(-(1.0 - pole)))
                self.emit("add_", None, y, step, slot=self.const(1.0))
            return y
        self.emit("mul_s_", None, y, slot=self.const(pole))
        if square:
            self.emit("addcmul_", None, y, x, x, slot=self.const(b0))
        else:
            self.emit("add_", None, y, x, slot=self.const(b0))
        return y

    def direct_form(self, b_in: np.ndarray, a_in: np.ndarray, x: str, key: str, force_first: bool) -> str:
        """Transposed direct form II of any order (FIR, or all-pole with the first output forced)."""
        b_in, a_in = np.trim_zeros(np.asarray(b_in, float), "b"), np.trim_zeros(np.asarray(a_in, float), "b")
        n = max(b_in.size, a_in.size, 1) - 1
        b = np.zeros(n + 1)
        a = np.zeros(n + 1)
        b[: b_in.size] = b_in
        a[: a_in.size] = a_in
        if n == 0:
            return self.new("mul_s", x, slot=self.const(b[0]))
        z = [self.state_reg(f"{key}.z{k}") for k in range(n)]
        if force_first:
            y = self.new("clone", x)
        else:
            y = self.new("add", z[0], x, slot=self.const(b[0]))
        for k in range(n):
            if k + 1 < n:
                self.emit("copy_", None, z[k], z[k + 1])
            else:
                self.emit("zero_", None, z[k])
            if b[k + 1] != 0.0:
                self.emit("add_", None, z[k], x, slot=self.const(b[k + 1]))
            if a[k + 1] != 0.0:
                self.emit("add_", None, z[k], y, slot=self.const(-a[k + 1]))
        return y

    def delta_section(self, section: tuple[float, float, float, float, float, bool], x: str, key: str) -> str:
        """One section in delta-operator transposed direct form II.

        ``y = beta0 x + s1``; ``s1 += beta1 x - alpha1 y + s2``; ``s2 += beta2 x - alpha2 y``.
        """
        beta0, beta1, beta2, alpha1, alpha2, second_order = section
        s1 = self.state_reg(f"{key}.0")
        y = self.new("add", s1, x, slot=self.const(beta0))
        if second_order:
            s2 = self.state_reg(f"{key}.1")
            inc = self.new("add", s2, x, slot=self.const(beta1))
        else:
            inc = self.new("mul_s", x, slot=self.const(beta1))
        self.emit("add_", None, inc, y, slot=self.const(-alpha1))
        self.emit("add_", None, s1, inc, slot=self.const(1.0))
        if second_order:
            self.emit("add_", None, s2, x, slot=self.const(beta2))
            self.emit("add_", None, s2, y, slot=self.const(-alpha2))
        return y

    def materialise(self, lc: _LinComb) -> str:
        """One register holding ``sum_i c_i reg_i`` (``/ den``)."""
        if len(lc.terms) == 1 and lc.terms[0][1].one and lc.den is None:
            return lc.terms[0][0]
        (first, coef), *rest = lc.terms
        out = self.new("mul_s", first, slot=self.coef_slot(coef))
        for reg, coef in rest:
            self.emit("add_", None, out, reg, slot=self.coef_slot(coef))
        if lc.den is not None:
            self.emit("div_", None, out, lc.den)
        return out


def _scaled(fraction: Fraction, factor: float) -> float:
    num, den = fraction
    return (factor * num) / den if factor != 1.0 else num / den


def _section(b: np.ndarray, a: np.ndarray) -> tuple[float, float, float, float, float, bool]:
    """Delta-operator coefficients of ``(b0 + b1 z^-1 + b2 z^-2) / (1 + a1 z^-1 + a2 z^-2)``.

    Substituting ``z^-1 = d / (1 + d)`` with ``d = delta^-1`` gives
    ``(beta0 + beta1 d + beta2 d^2) / (1 + alpha1 d + alpha2 d^2)``; a first-order
    section uses ``(1 + d)`` once.
    """
    bb = np.zeros(3)
    aa = np.zeros(3)
    bb[: min(3, b.size)] = b[:3]
    aa[: min(3, a.size)] = a[:3]
    aa = aa / aa[0]
    bb = bb / (a[0] if a.size else 1.0)
    b0, b1, b2 = (float(v) for v in bb)
    _, a1, a2 = (float(v) for v in aa)
    if a2 == 0.0 and b2 == 0.0:
        return (b0, b0 + b1, 0.0, 1.0 + a1, 0.0, False)
    return (b0, 2.0 * b0 + b1, b0 + b1 + b2, 2.0 + a1, (1.0 + a1) + a2, True)


# ----------------------------------------------------------------------------- the plan


class Plan:
    """The programs of one model for one state dtype (one per combination of step-dependent flags).

    Parameters
    ----------
    model : OptimizerModel
        Any model: catalogue entry, designed filter or hand-built stages.
    state_dtype : torch.dtype
        The dtype of the filter state (float32 for low-precision parameters).

    Examples
    --------
    >>> import torch, optfilters
    >>> from optfilters.torch._program import Plan
    >>> plan = Plan(optfilters.get("adam"), torch.float32)
    >>> [spec.key for spec in plan.program(1).state]
    ['gradient.0', 'second_moment.0']
    """

    def __init__(self, model: OptimizerModel, state_dtype: torch.dtype) -> None:
        self.model = model
        self.state_dtype = state_dtype
        self._first_matters = any(
            term.first_output_is_input for stage in model.linear_stages().values() for term in stage.terms
        )
        norm = model.normaliser
        self._rectification = norm.rectification if isinstance(norm, RmsNormaliser) else None
        self._programs: dict[tuple[bool, bool], Program] = {}

    def flags(self, t: int) -> tuple[bool, bool]:
        """``(first step, RAdam rectification active)`` at step ``t``, where they matter."""
        first = self._first_matters and t == 1
        active = self._rectification is not None and self._rectification.active(t)
        return first, active

    def program(self, t: int) -> Program:
        """The program for step ``t``."""
        key = self.flags(t)
        program = self._programs.get(key)
        if program is None:
            program = self._programs[key] = _build(self.model, self.state_dtype, *key)
        return program


def _build(model: OptimizerModel, state_dtype: torch.dtype, first: bool, rect_active: bool) -> Program:
    bld = _Builder(state_dtype, first, rect_active)
    g = "grad"
    if model.maximize:
        g = bld.new("neg", g)
    wd = model.weight_decay
    if wd is not None and wd.weight_decay != 0.0:
        lam = float(wd.weight_decay)
        if wd.decoupled:
            bld.emit("mul_s_", None, "param", slot=bld.slot(_decay_factor(lam)))
        else:
            g = bld.new("add", g, "param", slot=bld.const(lam))
    lc = bld.stage(model.gradient, g, "gradient") if model.gradient is not None else _LinComb([(g, ONE)])
    norm = model.normaliser
    if isinstance(norm, RmsNormaliser):
        lc = _rms(bld, norm, lc, g)
    elif isinstance(norm, PeakNormaliser):
        u = bld.state_reg("peak")
        bld.emit("mul_s_", None, u, slot=bld.const(norm.beta2))
        level = bld.new("abs", g)
        bld.emit("add_s_", None, level, slot=bld.const(norm.eps))
        bld.emit("maximum_", None, u, level)
        lc = _LinComb(lc.terms, den=u)
    elif isinstance(norm, AdadeltaNormaliser):
        lc = _adadelta(bld, norm, lc, g)
    if model.post is not None:
        lc = _post(bld, model.post, lc)
    if model.nonlinearity is not None:
        lc = _LinComb([(bld.new("sign", bld.materialise(lc)), ONE)])
    lr_coef = _gain_coef(model.lr_gain)
    for reg, coef in lc.terms:
        slot = bld.slot(_update_scalar(lr_coef.times(coef)))
        if lc.den is not None:
            bld.emit("addcdiv_", None, "param", reg, lc.den, slot=slot)
        else:
            bld.emit("add_", None, "param", reg, slot=slot)
    state = tuple(StateSpec(key, init) for key, init in bld.state.items())
    return Program(tuple(bld.instructions), tuple(bld.scalars), state)


def _update_scalar(coef: _Coef) -> ScalarFn:
    """``-(lr * num) / den``: torch.optim's ``-lr / bias_correction`` and NAdam's ``(-lr * (1 - mu)) / (1 - prod)``."""
    if coef.one:
        return lambda t, lr: -lr
    fn = coef.fn
    assert fn is not None

    def scalar(t: int, lr: float) -> float:
        num, den = fn(t)
        return -(lr * num) / den

    return scalar


def _rms(bld: _Builder, norm: RmsNormaliser, lc: _LinComb, g: str) -> _LinComb:
    stage = norm.second_moment
    single_corrected = len(stage.terms) == 1 and stage.compensated
    moments = bld.stage(stage, g, "second_moment", square=True, compensate=False if single_corrected else None)
    v = bld.materialise(moments)
    if norm.amsgrad:
        vmax = bld.state_reg("second_moment.max")
        bld.emit("maximum_", None, vmax, v)
        v = vmax
    if norm.center is not None:
        mean = bld.materialise(bld.stage(norm.center, g, "center"))
        v = bld.new("addcmul", v, mean, mean, slot=bld.const(-1.0))
    if norm.rectification is not None and not bld.rect_active:
        return lc
    correction = stage.terms[0].filter if single_corrected else None
    eps = bld.const(norm.eps)
    terms = lc.terms
    if norm.eps_placement == "after_root" and correction is not None and norm.correction_inside_root:
        # torch.optim.NAdam: exp_avg_sq.div(bias_correction2).sqrt().add_(eps)
        den = bld.new("div_s", v, slot=bld.slot(_correction_scalar(correction)))
        bld.emit("sqrt_", None, den)
        bld.emit("add_s_", None, den, slot=eps)
    elif norm.eps_placement == "after_root":
        # torch.optim.Adam: (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
        den = bld.new("sqrt", v)
        if correction is not None:
            bld.emit("div_s_", None, den, slot=bld.slot(_correction_scalar(correction, root=True)))
        bld.emit("add_s_", None, den, slot=eps)
    elif norm.eps_placement == "inside_root":
        if correction is not None:
            den = bld.new("div_s", v, slot=bld.slot(_correction_scalar(correction)))
            bld.emit("add_s_", None, den, slot=eps)
        else:
            den = bld.new("add_s", v, slot=eps)
        bld.emit("sqrt_", None, den)
    else:  # before_correction: (sqrt(v) + eps) / sqrt(c); the sqrt(c) joins the coefficients
        den = bld.new("sqrt", v)
        bld.emit("add_s_", None, den, slot=eps)
        if correction is not None:
            root = _Coef(_root_correction_fraction(correction))
            terms = [(reg, coef.times(root)) for reg, coef in terms]
    if norm.rectification is not None:
        rect = norm.rectification
        rect_coef = _Coef(_rectification_fraction(rect.beta2))
        terms = [(reg, coef.times(rect_coef)) for reg, coef in terms]
    return _LinComb(terms, den=den)


def _constant_scalar(value: float) -> ScalarFn:
    def constant(t: int, lr: float) -> float:
        return value

    return constant


def _decay_factor(lam: float) -> ScalarFn:
    def factor(t: int, lr: float) -> float:
        return 1 - lr * lam  # torch.optim: param.mul_(1 - lr * weight_decay)

    return factor


def _correction_scalar(f: ArmaFilter, root: bool = False) -> ScalarFn:
    def correction(t: int, lr: float) -> float:
        c = transient_correction(f, t)
        return float(c**0.5) if root else c  # torch.optim: bias_correction2**0.5

    return correction


def _root_correction_fraction(f: ArmaFilter) -> FractionFn:
    def fraction(t: int) -> Fraction:
        return (float(transient_correction(f, t) ** 0.5), 1.0)

    return fraction


def _rectification_fraction(beta2: float) -> FractionFn:
    def fraction(t: int) -> Fraction:
        return (_radam_rect(beta2, t), 1.0)

    return fraction


def _radam_rect(beta2: float, t: int) -> float:
    """RAdam's ``r_t``, as torch.optim.RAdam computes it."""
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * t * (beta2**t) / (1 - beta2**t)
    return float(((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5)


def _adadelta(bld: _Builder, norm: AdadeltaNormaliser, lc: _LinComb, g: str) -> _LinComb:
    d = bld.materialise(lc)
    ema = FilterTerm(ArmaFilter.ema(norm.rho))
    eps = bld.const(norm.eps)
    v, v_coef = bld.term(ema, g, "adadelta.v", square=True)
    u = bld.state_reg("adadelta.u")
    std = bld.new("add_s", v, slot=eps)
    bld.emit("sqrt_", None, std)
    delta = bld.new("add_s", u, slot=eps)
    bld.emit("sqrt_", None, delta)
    bld.emit("div_", None, delta, std)
    bld.emit("mul_", None, delta, d)
    if norm.rho == 0.0:
        bld.emit("copy_", None, u, bld.square(delta))
    else:
        bld.term(ema, delta, "adadelta.u", square=True)
    assert v_coef.one
    return _LinComb([(delta, ONE)])


def _post(bld: _Builder, stage: LinearStage, lc: _LinComb) -> _LinComb:
    if len(stage.terms) == 1 and len(lc.terms) == 1:
        term = stage.terms[0]
        f = term.filter
        pole = float(-f.a[1]) if f.a.size == 2 else 0.0
        torch_form = (
            f.a.size == 2
            and f.b.size == 1
            and not term.first_output_is_input
            and pole != 1.0
            and float(f.b[0]) != 1.0 - pole
            and not _is_coarse(pole, bld.state_dtype)
        )
        if torch_form:
            # torch.optim.RMSprop: buf.mul_(momentum).addcdiv_(grad, avg)
            reg, coef = lc.terms[0]
            y = bld.state_reg("post.0", term.initial_output)
            bld.emit("mul_s_", None, y, slot=bld.const(pole))
            slot = bld.coef_slot(coef, float(f.b[0]))
            if lc.den is not None:
                bld.emit("addcdiv_", None, y, reg, lc.den, slot=slot)
            else:
                bld.emit("add_", None, y, reg, slot=slot)
            out_coef = _gain_coef(term.gain)
            if term.compensated:
                out_coef = out_coef.times(_correction_coef(f))
            return _LinComb([(y, out_coef)])
    return bld.stage(stage, bld.materialise(lc), "post")
