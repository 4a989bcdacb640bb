"""The straight-line program of an optimizer step: the one executable form of every stage kind.

Every stage kind (:class:`optfilters.stages.Stage`) describes its step ONCE,
by appending operations to a :class:`ProgramBuilder`.  The resulting
:class:`Program` is a tuple of :class:`Instruction` values over named registers
(``param``, ``grad``, ``state.<key>`` and temporaries ``t<n>``) with one scalar
slot per coefficient (a function ``f(t, lr) -> float`` of the step ``t`` and the
learning rate, plus its ``t -> infinity`` limit).  Interpreters run it:

* :func:`run_numpy` with :class:`NumpyOps`: the reference numpy executor
  (:class:`optfilters.NumpyOptimizer`), and, on rows of affine maps, the
  noisy-quadratic model's per-step state-space matrices;
* the PyTorch bridge (:mod:`optfilters.torch`): single tensors, lists of tensors
  (``torch._foreach_*``), generated C kernels and ``torch.compile``.

So the numpy reference and the bridge agree by construction: they run the
very same operations, realisations and scalars.  This module imports numpy
only.

The operations (``op`` of an :class:`Instruction`; a name ending in ``_``
works in place on its first argument, the others return a new register):

=================  ===========================================================
``neg``            ``-x``
``add``/``add_``   ``x + s * y``
``mul``/``mul_``   ``x * y``;  ``div_``: ``x / y``
``mul_s``/``_``    ``x * s``;  ``div_s``/``div_s_``: ``x / s``;  ``add_s``/``add_s_``: ``x + s``
``addcmul``/``_``  ``x + s * u * v``;  ``addcdiv_``: ``x + s * u / v``
``lerp_``          ``x + s * (y - x)`` (torch.lerp's two-sided form)
``sqrt``/``_``     ``sqrt(x)``;  ``abs``: ``|x|``;  ``sign``: ``sign(x)``
``maximum_``       elementwise maximum (NaN propagates)
``copy_``          ``x = y``;  ``clone``: a copy;  ``zero_``: ``x = 0``
=================  ===========================================================

A stage kind that needs an operation outside this set passes an :class:`Op`
(its numpy and torch implementations, and optionally a C expression for the
fused kernels) instead of a name.

Examples
--------
>>> import numpy as np
>>> from optfilters.program import ProgramBuilder, run_numpy
>>> bld = ProgramBuilder()
>>> y = bld.state("buf")
>>> bld.emit("mul_s_", None, y, slot=bld.const(0.5))
>>> bld.emit("add_", None, y, "grad", slot=bld.const(1.0))
>>> bld.emit("add_", None, "param", y, slot=bld.slot(lambda t, lr: -lr, lambda lr: -lr))
>>> program = bld.program()
>>> regs = {"param": np.array([1.0]), "grad": np.array([2.0]), "state.buf": np.zeros(1)}
>>> run_numpy(program, regs, program.scalar_values(1, 0.1))
>>> regs["param"].tolist(), regs["state.buf"].tolist()
([0.8], [2.0])
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "ONE",
    "POLE_TOLERANCE",
    "Coef",
    "Instruction",
    "LinComb",
    "NumpyOps",
    "Op",
    "Program",
    "ProgramBuilder",
    "RunningProduct",
    "Signals",
    "StateSpec",
    "StepValue",
    "bind",
    "changed_forms",
    "execute",
    "round_to",
    "run_numpy",
]

Fraction = tuple[float, float]
FractionFn = Callable[[int], Fraction]
ScalarFn = Callable[[int, float], float]
EnvScalarFn = Callable[[int, float, Sequence[float]], float]
LimitFn = Callable[[float], float]

#: A pole is "coarse" in a dtype when rounding moves it by more than this fraction of its distance to 1.
POLE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Op:
    """An operation outside the built-in set, defined by a stage kind (always out of place).

    Parameters
    ----------
    name : str
        For messages and the program's signature.
    numpy : callable
        ``numpy(*arrays, s) -> array``: the reference (and noisy-quadratic) form.
    torch : callable, optional
        ``torch(*tensors, s) -> tensor``: the bridge's single-tensor form
        (default: the numpy form, which works when it only uses operators).
    foreach : callable, optional
        ``foreach(*lists, s) -> list``: the multi-tensor form (default: ``torch``
        on each tensor in turn).
    c : callable, optional
        ``c(args, s) -> str``: a C expression over the argument registers
        ``args`` and the scalar ``s`` (both C names) for the fused CPU kernels;
        without it ``fused=True`` falls back to the multi-tensor path with a
        warning.
    triton : callable, optional
        ``triton(args, s) -> str``: a Triton expression (over float32 blocks
        ``args`` and the scalar ``s``) for the fused CUDA kernels
        (:mod:`optfilters.torch.triton_kernels`); without it ``fused=True`` on
        CUDA falls back to ``torch.compile`` or the multi-tensor path with a
        warning.
    precision : str, optional
        The dtype the torch form computes in when it is coarser than the
        parameter's (``"bfloat16"``: torch.optim.Muon's Newton-Schulz
        iteration).  The bridge then agrees with the numpy form (float64) to
        that precision only, not to rounding; see :attr:`Program.precision`.

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters.program import Op
    >>> clip = Op("clip", numpy=lambda x, s: np.clip(x, -s, s))
    >>> clip.numpy(np.array([-3.0, 0.5, 2.0]), 1.0).tolist()
    [-1.0, 0.5, 1.0]
    """

    name: str
    numpy: Callable[..., Any]
    torch: Callable[..., Any] | None = None
    foreach: Callable[..., Any] | None = None
    c: Callable[[Sequence[str], str], str] | None = None
    triton: Callable[[Sequence[str], str], str] | None = None
    precision: str | None = None

    def __repr__(self) -> str:
        return f"Op({self.name!r})"


@dataclass(frozen=True)
class Instruction:
    """One operation: ``out = op(*args, scalar)`` or an in-place ``op`` on ``args[0]`` (``out`` None).

    Examples
    --------
    >>> from optfilters.program import Instruction
    >>> Instruction("lerp_", None, ("state.gradient.0", "grad"), 0)
    Instruction(op='lerp_', out=None, args=('state.gradient.0', 'grad'), slot=0)
    """

    op: str | Op
    out: str | None
    args: tuple[str, ...]
    slot: int | None = None


@dataclass(frozen=True)
class StateSpec:
    """A per-parameter state array: its key (``optimizer.state[p][key]`` in the bridge), initial value and shape.

    ``shape`` maps the parameter's shape to the state's (None: the same
    shape, the usual elementwise state); a factored statistic (row and column
    means of a matrix) has its own.  The fused C kernels run elementwise state
    only: parameters with other state run on the multi-tensor path.

    ``form`` says what the array holds in the realisation that writes it (a
    one-pole filter's previous output, section ``k`` of a cascade of a given
    order, ...; None: not stated).  Executors keep a state array across a change
    of hyperparameters only while its form stays the same (see
    :func:`changed_forms`): with time-varying coefficients the state form IS
    the semantics, and a memory of another structure is stale.

    Examples
    --------
    >>> from optfilters.program import StateSpec
    >>> StateSpec("second_moment.0", 0.1).init
    0.1
    >>> StateSpec("row", shape=lambda s: s[:1]).shape((3, 4))
    (3,)
    """

    key: str
    init: float = 0.0
    shape: Callable[[tuple[int, ...]], tuple[int, ...]] | None = None
    form: Hashable = None

    def shape_for(self, param_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The state's shape for a parameter of shape ``param_shape``."""
        return tuple(param_shape) if self.shape is None else tuple(self.shape(tuple(param_shape)))


@dataclass(frozen=True)
class Program:
    """A straight-line step: instructions, scalar slot functions (with their limits) and the state it needs.

    Attributes
    ----------
    instructions : tuple of Instruction
    scalars : tuple of callable
        ``f(t, lr) -> float``, one per slot.
    state : tuple of StateSpec
    limits : tuple of callable
        ``f(lr) -> float``: each slot's ``t -> infinity`` limit.
    taps : tuple of (str, str)
        Named registers to read after a run (the noisy-quadratic model reads the
        signals at the input of each linearised stage).
    marks : tuple of (str, int)
        How many instructions precede each tap (a run may stop there).
    products : tuple of RunningProduct
        Scalars carried per parameter between steps (NAdam's ``mu_product``);
        executors advance them before each step (:meth:`advance_products`) and
        pass their values to :meth:`scalar_values` as ``env``.
    env_scalars : tuple of (int, callable)
        The slots that read the products: ``(slot, f(t, lr, env))``.  Their
        entries in :attr:`scalars` use the products of a run with constant
        hyperparameters (:meth:`RunningProduct.history`).

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
    limits: tuple[LimitFn, ...] = ()
    taps: tuple[tuple[str, str], ...] = ()
    marks: tuple[tuple[str, int], ...] = ()
    products: tuple[RunningProduct, ...] = ()
    env_scalars: tuple[tuple[int, EnvScalarFn], ...] = ()

    @functools.cached_property
    def keys(self) -> tuple[str, ...]:
        """The state keys, in order."""
        return tuple(spec.key for spec in self.state)

    @functools.cached_property
    def keyset(self) -> frozenset[str]:
        """The state keys, as a set."""
        return frozenset(self.keys)

    def scalar_values(self, t: int, lr: float, env: Sequence[float] | None = None) -> list[float]:
        """The value of every scalar slot at step ``t`` with learning rate ``lr``.

        ``env`` holds the current values of :attr:`products` (after this step's
        :meth:`advance_products`); None uses a run with constant hyperparameters.
        """
        if env is None or not self.env_scalars:
            return [fn(t, lr) for fn in self.scalars]
        reads = self._env_map
        return [
            reads[k](t, lr, env) if k in reads else fn(t, lr)  # type: ignore[call-arg]
            for k, fn in enumerate(self.scalars)
        ]

    @functools.cached_property
    def _env_map(self) -> dict[int, EnvScalarFn]:
        return dict(self.env_scalars)

    def advance_products(self, t: int, env: Sequence[float] | None, dtype: str = "float32") -> tuple[float, ...]:
        """The products after step ``t`` from their values ``env`` before it (None: all at their start, 1).

        Each value is rounded to ``dtype`` (``"float32"`` or ``"float64"``), as a
        tensor of that dtype holds it; the PyTorch bridge advances its state
        tensors in place instead (the same rounding).

        Examples
        --------
        >>> import optfilters
        >>> program = optfilters.get("nadam").plan().program(1)
        >>> [p.key for p in program.products]
        ['mu_product']
        >>> env = program.advance_products(1, None)
        >>> env == (program.products[0].history(1),)
        True
        """
        return self.carry(t, env, dtype)[1]

    def carry(
        self, t: int, stored: Sequence[float | None] | None, dtype: str = "float32", lr: float = 0.0
    ) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The values step ``t`` reads (``env`` of :meth:`scalar_values`) and those it stores, from ``stored``.

        ``stored`` holds each product's value before the step (None, or a None
        entry: not yet created, its :meth:`RunningProduct.start` at ``lr``).
        A product is read after its update, a :class:`StepValue` before it.

        Examples
        --------
        >>> import optfilters
        >>> program = optfilters.get("asgd", lr=0.5, lambd=1.0, alpha=1.0).plan().program(1)
        >>> [p.key for p in program.products]
        ['eta', 'mu']
        >>> program.carry(1, None, "float64", lr=0.5)   # step 1 reads eta = lr, mu = 1; stores step 2's
        ((0.5, 1.0), (0.3333333333333333, 1.0))
        """
        if stored is None:
            stored = [None] * len(self.products)
        read, new = [], []
        for p, v in zip(self.products, stored, strict=True):
            before = round_to(p.start(lr), dtype) if v is None else float(v)
            after = p.advance(before, t, dtype, lr)
            read.append(before if p.reads_before else after)
            new.append(after)
        return tuple(read), tuple(new)

    @functools.cached_property
    def forms(self) -> dict[str, Hashable]:
        """Each state key's form (:attr:`StateSpec.form`)."""
        return {spec.key: spec.form for spec in self.state}

    def limit_values(self, lr: float) -> list[float]:
        """Every scalar slot in the ``t -> infinity`` limit (the LTI limit of a time-varying step)."""
        return [fn(lr) for fn in self.limits]

    def values(self, t: int | None, lr: float) -> list[float]:
        """:meth:`scalar_values` at step ``t``, or :meth:`limit_values` for ``t`` None."""
        return self.limit_values(lr) if t is None else self.scalar_values(t, lr)

    @functools.cached_property
    def precision(self) -> str | None:
        """The coarsest precision an operation's torch form computes in (None: the parameter's own).

        Examples
        --------
        >>> import optfilters
        >>> optfilters.get("adam").plan().program(1).precision is None
        True
        >>> optfilters.get("muon").plan().program(1).precision
        'bfloat16'
        """
        found = [ins.op.precision for ins in self.instructions if isinstance(ins.op, Op) and ins.op.precision]
        return found[0] if found else None

    @functools.cached_property
    def numpy_steps(self) -> tuple[Step, ...]:
        """The instructions bound to :class:`NumpyOps` (see :func:`run_numpy`)."""
        return bind(self, NumpyOps)

    @functools.cached_property
    def signature(self) -> tuple[object, ...]:
        """What a compiled version depends on: the instructions and the state keys (not the scalar values)."""
        return (self.instructions, self.keys, len(self.scalars))


# ----------------------------------------------------------------------------- coefficients


@dataclass(frozen=True)
class RunningProduct:
    """A scalar carried per parameter between steps: ``p_0 = init``, ``p_t = p_{t-1} * factor(t)``.

    torch.optim.NAdam's ``mu_product`` is one: it multiplies in the momentum
    ``mu_t`` of each step with the ``beta1`` of that step, so with a changing
    ``beta1`` it is a state, not a function of ``t``.  Subclasses (frozen
    dataclasses) set :attr:`key` (the name of the state entry, e.g.
    ``optimizer.state[p]["mu_product"]``) and define :meth:`factor`; a
    :class:`Coef` that reads products lists them in ``reads``.

    Examples
    --------
    >>> from optfilters.gains import NadamProduct
    >>> p = NadamProduct(0.9, 4e-3)
    >>> p.key, round(p.history(2, "float64"), 6)
    ('mu_product', 0.202599)
    """

    key: ClassVar[str] = "product"
    init: ClassVar[float] = 1.0
    #: Whether a step reads the value from before its own update (:class:`StepValue`) or after it (a product).
    reads_before: ClassVar[bool] = False

    def start(self, lr: Any) -> Any:
        """The value before the first step (``init``; a :class:`StepValue` may start from ``lr``)."""
        return self.init

    def factor(self, t: int) -> float:
        """The factor of step ``t`` (computed in Python double precision)."""
        raise NotImplementedError

    def advance(self, value: float, t: int, dtype: str = "float32", lr: float = 0.0) -> float:
        """``value * factor(t)`` rounded to ``dtype`` (a float32 tensor times a Python float, as torch rounds it)."""
        if dtype == "float32":
            return float(np.float32(np.float32(value) * np.float32(self.factor(t))))
        return float(value) * self.factor(t)

    def apply(self, tensor: Any, t: Any, lr: Any, dtype: str = "float32") -> None:
        """Advance a 0-dim torch tensor in place for step ``t`` (``tensor.mul_(factor(t))``, torch.optim.NAdam's form).

        ``dtype`` is the precision of a Python float made into a tensor
        (``torch.as_tensor``: the default dtype); a product does not use it.
        """
        tensor.mul_(self.factor(t))

    def history(self, t: int, dtype: str = "float32", lr: float = 0.0) -> float:
        """The value a step ``t`` reads in a run with these (constant) hyperparameters (after that step's update)."""
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        size = 1 << max(t - 1, 0).bit_length()  # cache on powers of two
        return _history(self, max(size, 1), dtype)[t - 1]


def round_to(value: float, dtype: str) -> float:
    """``value`` as a tensor of ``dtype`` holds it (``"float32"`` rounds; ``"float64"`` keeps it).

    Examples
    --------
    >>> from optfilters.program import round_to
    >>> round_to(0.1, "float32"), round_to(0.1, "float64")
    (0.10000000149011612, 0.1)
    """
    if dtype == "float32":
        return float(np.float32(value))
    if dtype != "float64":
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return float(value)


@dataclass(frozen=True)
class StepValue(RunningProduct):
    """A scalar carried per parameter that a step reads, then replaces with :meth:`value` of that step.

    torch.optim.ASGD's ``eta`` and ``mu`` are such state: each step uses the
    values written at the end of the previous step (from that step's
    hyperparameters), then writes ``value(t, lr)`` computed from its own.  So
    under a schedule they lag it by one step, and a checkpoint carries them.
    The new value is computed in Python double precision and stored as torch
    stores ``torch.as_tensor(value)``: rounded to the default dtype's
    precision (float32 unless it is float64), then to the state tensor's.
    Subclasses (frozen dataclasses) set :attr:`key` and define :meth:`value`
    and, when the first step does not read ``init``, :meth:`start`.

    Examples
    --------
    >>> from optfilters.parameter_stages import AsgdEta
    >>> eta = AsgdEta(lambd=1.0, alpha=1.0)
    >>> eta.reads_before, eta.history(1, lr=0.5), eta.history(3, lr=0.5)   # lr, then lr / (1 + lambd lr (t - 1))
    (True, 0.5, 0.25)
    """

    key: ClassVar[str] = "value"
    reads_before: ClassVar[bool] = True

    def value(self, t: Any, lr: Any) -> Any:
        """The value written at the end of step ``t`` with learning rate ``lr`` (floats or tensors)."""
        raise NotImplementedError

    def advance(self, value: float, t: int, dtype: str = "float32", lr: float = 0.0) -> float:
        """``value(t, lr)`` rounded to ``dtype`` (the previous value is not used)."""
        return round_to(self.value(t, lr), dtype)

    def apply(self, tensor: Any, t: Any, lr: Any, dtype: str = "float32") -> None:
        """``tensor.copy_(torch.as_tensor(value(t, lr)))`` (``dtype``: the precision of ``as_tensor``)."""
        new = self.value(t, lr)
        if isinstance(new, (float, int)):
            tensor.fill_(round_to(new, dtype))
        else:  # a tensor (capturable=True: computed on the device)
            tensor.copy_(new)

    def history(self, t: int, dtype: str = "float32", lr: float = 0.0) -> float:
        """The value step ``t`` reads in a run with constant hyperparameters: the start, then ``value(t - 1, lr)``."""
        if t <= 1:
            return round_to(self.start(lr), dtype)
        return round_to(self.value(t - 1, lr), dtype)


@functools.lru_cache(maxsize=64)
def _history(product: RunningProduct, n: int, dtype: str) -> tuple[float, ...]:
    value = product.init
    out = []
    for t in range(1, n + 1):
        value = product.advance(value, t, dtype)
        out.append(value)
    return tuple(out)


@dataclass(frozen=True)
class Coef:
    """A scalar coefficient ``num(t) / den(t)``, kept as a fraction so that it is computed in torch.optim's order.

    ``fn`` None means exactly 1.  ``limit`` is the ``t -> infinity`` value.
    Products of coefficients multiply numerators and denominators separately
    (torch's ``lr / bias_correction`` is one division at the end).  A
    coefficient that depends on running products (:class:`RunningProduct`)
    lists them in ``reads``; its ``fn`` is then ``fn(t, *values)``.

    Examples
    --------
    >>> from optfilters.program import Coef
    >>> c = Coef(lambda t: (1.0, 1.0 - 0.9**t), limit=1.0).times(Coef.constant(0.5))
    >>> c.value(1), c.limit
    (5.000000000000001, 0.5)
    """

    fn: Callable[..., Fraction] | None = None
    limit: float = 1.0
    reads: tuple[RunningProduct, ...] = ()

    @classmethod
    def constant(cls, value: float) -> Coef:
        """The constant ``value`` (exactly :data:`ONE` for 1)."""
        value = float(value)
        if value == 1.0:
            return ONE
        return cls(lambda t: (value, 1.0), value)

    @property
    def one(self) -> bool:
        """True for the exact constant 1."""
        return self.fn is None

    def at(self, t: int | None, env: Sequence[float] | None = None) -> Fraction:
        """``(num, den)`` at step ``t`` (``(limit, 1)`` for ``t`` None).

        ``env`` holds the values of :attr:`reads` (None: a run with constant
        hyperparameters, in float32 as torch.optim keeps them by default).
        """
        if self.fn is None:
            return (1.0, 1.0)
        if t is None:
            return (self.limit, 1.0)
        if not self.reads:
            return self.fn(t)
        values = env if env is not None else [p.history(t) for p in self.reads]
        return self.fn(t, *values)

    def times(self, other: Coef) -> Coef:
        """The product, numerators and denominators multiplied separately."""
        if other.fn is None:
            return self
        if self.fn is None:
            return other
        f, g = self.fn, other.fn
        if not self.reads and not other.reads:

            def product(t: int) -> Fraction:
                (n1, d1), (n2, d2) = f(t), g(t)
                return (n1 * n2, d1 * d2)

            return Coef(product, self.limit * other.limit)
        reads = tuple(dict.fromkeys(self.reads + other.reads))
        fi = [reads.index(p) for p in self.reads]
        gi = [reads.index(p) for p in other.reads]

        def product_env(t: int, *values: float) -> Fraction:
            (n1, d1), (n2, d2) = f(t, *[values[i] for i in fi]), g(t, *[values[i] for i in gi])
            return (n1 * n2, d1 * d2)

        return Coef(product_env, self.limit * other.limit, reads)

    def value(self, t: int | None, env: Sequence[float] | None = None) -> float:
        """``num / den`` at step ``t`` (the limit for None)."""
        num, den = self.at(t, env)
        return num / den


#: The exact coefficient 1.
ONE = Coef()


def _scaled(fraction: Fraction, factor: float) -> float:
    num, den = fraction
    return (factor * num) / den if factor != 1.0 else num / den


def _constant_scalar(value: float) -> ScalarFn:
    def constant(t: int, lr: float) -> float:
        return value

    return constant


def _constant_limit(value: float) -> LimitFn:
    def constant(lr: float) -> float:
        return value

    return constant


# ----------------------------------------------------------------------------- the builder


@dataclass
class LinComb:
    """A lazily combined direction ``sum_i c_i * reg_i`` (divided by the register ``den`` when set).

    Stages pass the direction on in this form so that coefficients (bias
    corrections, the learning rate) and a normaliser's division are folded
    into the operation that finally consumes them, as torch.optim does.

    Examples
    --------
    >>> from optfilters.program import ONE, LinComb
    >>> LinComb.of("grad").terms == [("grad", ONE)]
    True
    """

    terms: list[tuple[str, Coef]]
    den: str | None = None

    @classmethod
    def of(cls, register: str) -> LinComb:
        """A single register with coefficient 1."""
        return cls([(register, ONE)])

    @property
    def register(self) -> str | None:
        """The register itself when the combination is one register with coefficient 1, else None."""
        if len(self.terms) == 1 and self.terms[0][1].one and self.den is None:
            return self.terms[0][0]
        return None

    def scaled(self, coef: Coef) -> LinComb:
        """Every coefficient multiplied by ``coef``."""
        return LinComb([(reg, c.times(coef)) for reg, c in self.terms], self.den)


@dataclass
class Signals:
    """What flows between the stages of a program: register names and the lazy direction.

    Attributes
    ----------
    grad : str
        The effective gradient ``g`` (after ``maximize`` and coupled weight decay):
        normalisers compute their statistics from it.
    direction : LinComb
        The update direction so far (initially ``g``).
    param : str
        The parameter register (decoupled weight decay and the update write it).
    outputs : dict
        Each stage's output direction by the stage's key (a later stage may read
        an earlier one's, e.g. a normaliser of the residual ``g - m``).

    Examples
    --------
    >>> from optfilters.program import Signals
    >>> Signals.start("grad").direction.register
    'grad'
    """

    grad: str
    direction: LinComb
    param: str = "param"
    outputs: dict[str, LinComb] = field(default_factory=dict)

    @classmethod
    def start(cls, grad: str) -> Signals:
        """The signals at the start of a step: the direction is the gradient."""
        return cls(grad, LinComb.of(grad))


@dataclass
class ProgramBuilder:
    """Collects the instructions, scalar slots and state of one program.

    Stage kinds append their operations through these methods (see
    :meth:`optfilters.stages.Stage.emit`).

    Parameters
    ----------
    state_dtype : {"float64", "float32", "float16"}
        The dtype of the filter state: realisations that lose accuracy in low
        precision (poles near 1) pick another form there (:meth:`is_coarse`).
    linearised : bool
        Build the linearised step of the noisy-quadratic model: nonlinear
        stages multiply the direction by a gain register instead
        (:meth:`optfilters.stages.Stage.emit_linearised`).

    Examples
    --------
    >>> from optfilters.program import ProgramBuilder
    >>> bld = ProgramBuilder()
    >>> bld.const(0.5), bld.const(0.5), bld.const(2.0)
    (0, 0, 1)
    """

    state_dtype: str = "float64"
    linearised: bool = False
    instructions: list[Instruction] = field(default_factory=list)
    scalars: list[ScalarFn] = field(default_factory=list)
    limits: list[LimitFn] = field(default_factory=list)
    specs: dict[str, StateSpec] = field(default_factory=dict)
    taps: dict[str, str] = field(default_factory=dict)
    marks: dict[str, int] = field(default_factory=dict)
    products: dict[str, RunningProduct] = field(default_factory=dict)
    env_scalars: dict[int, EnvScalarFn] = field(default_factory=dict)
    _constants: dict[tuple[str, float], int] = field(default_factory=dict)
    _temporaries: int = 0
    _squares: dict[str, str] = field(default_factory=dict)

    # registers and slots
    def tmp(self) -> str:
        """A fresh temporary register name."""
        self._temporaries += 1
        return f"t{self._temporaries}"

    def slot(self, fn: ScalarFn, limit: LimitFn | None = None) -> int:
        """A new scalar slot ``fn(t, lr)`` with its ``t -> infinity`` limit ``limit(lr)``.

        Without ``limit`` the slot must not depend on ``t`` (its limit is ``fn(1, lr)``).
        """
        self.scalars.append(fn)
        self.limits.append(limit if limit is not None else functools.partial(fn, 1))
        return len(self.scalars) - 1

    def const(self, value: float) -> int:
        """The slot of a constant (shared between uses)."""
        value = float(value)
        key = (repr(value), value)  # repr tells -0.0 from 0.0
        if key not in self._constants:
            self._constants[key] = self.slot(_constant_scalar(value), _constant_limit(value))
        return self._constants[key]

    def coef_slot(self, coef: Coef, factor: float = 1.0) -> int:
        """A slot holding ``factor * num / den`` (``(factor * num) / den``, torch's order)."""
        if coef.one:
            return self.const(factor)
        if coef.reads:
            limit = factor * coef.limit
            return self._env_slot(coef, lambda lr, num, den: _scaled((num, den), factor), lambda lr: limit)
        fn = coef.fn
        assert fn is not None

        def scaled(t: int, lr: float) -> float:
            return _scaled(fn(t), factor)

        return self.slot(scaled, _constant_limit(factor * coef.limit))

    def update_slot(self, coef: Coef) -> int:
        """A slot ``-(lr * num) / den`` (torch's ``-lr / bias_correction``; NAdam's ``-lr (1 - mu) / (1 - prod)``)."""
        if coef.one:
            return self.slot(_minus_lr, _minus_lr)
        fn, limit = coef.fn, coef.limit
        assert fn is not None
        if coef.reads:
            return self._env_slot(coef, lambda lr, num, den: -(lr * num) / den, lambda lr: -(lr * limit))

        def scalar(t: int, lr: float) -> float:
            num, den = fn(t)
            return -(lr * num) / den

        return self.slot(scalar, lambda lr: -(lr * limit))

    def product(self, product: RunningProduct) -> int:
        """Register a running product (shared by key); returns its index in :attr:`Program.products`."""
        known = self.products.get(product.key)
        if known is None:
            self.products[product.key] = product
        elif known != product:
            raise ValueError(
                f"two stages of the model keep the running product {product.key!r} with different factors "
                f"({known!r} and {product!r})"
            )
        return list(self.products).index(product.key)

    def _env_slot(self, coef: Coef, combine: Callable[[float, float, float], float], limit: LimitFn) -> int:
        """A slot ``combine(lr, num, den)`` of a coefficient that reads running products."""
        fn = coef.fn
        assert fn is not None
        reads = coef.reads
        index = [self.product(p) for p in reads]

        def with_env(t: int, lr: float, env: Sequence[float]) -> float:
            return combine(lr, *fn(t, *[env[i] for i in index]))

        def with_history(t: int, lr: float) -> float:
            return combine(lr, *fn(t, *[p.history(t, lr=lr) for p in reads]))

        k = self.slot(with_history, limit)
        self.env_scalars[k] = with_env
        return k

    def carried_slot(
        self, reads: Sequence[RunningProduct], fn: Callable[..., float], limit: LimitFn | None = None
    ) -> int:
        """A slot ``fn(t, lr, *values)`` of the values of carried scalars ``reads`` at the step.

        The scalars (:class:`RunningProduct`, :class:`StepValue`) are
        registered as the program's :attr:`Program.products`; executors keep
        them per parameter and pass their values.  Without them (the analysis)
        the slot uses a run with constant hyperparameters
        (:meth:`RunningProduct.history`, float32 as torch keeps them by default).

        Examples
        --------
        >>> from optfilters.program import ProgramBuilder
        >>> from optfilters.parameter_stages import AsgdEta
        >>> bld = ProgramBuilder()
        >>> k = bld.carried_slot((AsgdEta(1.0, 1.0),), lambda t, lr, eta: -eta, lambda lr: 0.0)
        >>> program = bld.program()
        >>> program.scalar_values(3, 0.5)[k], program.scalar_values(3, 0.5, env=(0.125,))[k]
        (-0.25, -0.125)
        """
        index = [self.product(p) for p in reads]

        def with_env(t: int, lr: float, env: Sequence[float]) -> float:
            return fn(t, lr, *[env[i] for i in index])

        def with_history(t: int, lr: float) -> float:
            return fn(t, lr, *[p.history(t, lr=lr) for p in reads])

        k = self.slot(with_history, limit)
        self.env_scalars[k] = with_env
        return k

    def emit(self, op: str | Op, out: str | None, *args: str, slot: int | None = None) -> str | None:
        """Append an instruction; returns ``out``."""
        self.instructions.append(Instruction(op, out, tuple(args), slot))
        return out

    def new(self, op: str | Op, *args: str, slot: int | None = None) -> str:
        """Append an out-of-place instruction into a fresh register and return it."""
        out = self.tmp()
        self.emit(op, out, *args, slot=slot)
        return out

    def state(
        self,
        key: str,
        init: float = 0.0,
        shape: Callable[[tuple[int, ...]], tuple[int, ...]] | None = None,
        form: Hashable = None,
    ) -> str:
        """The register of the state array ``key``, created at ``init`` (:class:`StateSpec`: ``shape``, ``form``).

        Keys must be unique in a program.
        """
        if key in self.specs:
            raise ValueError(
                f"two stages of the model use the state key {key!r}: give the stages distinct names (keys)"
            )
        self.specs[key] = StateSpec(key, float(init), shape, form)
        return f"state.{key}"

    def square(self, x: str) -> str:
        """A register holding ``x * x`` (computed once per register)."""
        if x not in self._squares:
            self._squares[x] = self.new("mul", x, x)
        return self._squares[x]

    def tap(self, name: str, register: str) -> None:
        """Name a register for readers of the finished run (see :attr:`Program.taps`)."""
        self.taps[name] = register
        self.marks[name] = len(self.instructions)

    def materialise(self, lc: LinComb) -> str:
        """One register holding ``sum_i c_i reg_i`` (``/ den``).

        A term with coefficient exactly 1 starts the sum, ``add(x, y, alpha=c)``
        as torch.optim writes ``grad.add(buf, alpha=momentum)`` (SGD Nesterov).
        """
        register = lc.register
        if register is not None:
            return register
        terms = list(lc.terms)
        unit = next((i for i, (_, c) in enumerate(terms) if c.one), None)
        if unit is not None and len(terms) > 1:
            first, _ = terms.pop(unit)
            (second, c2), *rest = terms
            out = self.new("add", first, second, slot=self.coef_slot(c2))
        else:
            (first, coef), *rest = terms
            out = self.new("mul_s", first, slot=self.coef_slot(coef))
        for reg, c in rest:
            self.emit("add_", None, out, reg, slot=self.coef_slot(c))
        if lc.den is not None:
            self.emit("div_", None, out, lc.den)
        return out

    def is_coarse(self, pole: float) -> bool:
        """True when rounding ``pole`` to the state dtype moves it by more than POLE_TOLERANCE of ``|1 - pole|``."""
        if self.state_dtype == "float64" or pole == 1.0:
            return False
        rounded = float(np.float16(pole)) if self.state_dtype == "float16" else float(np.float32(pole))
        return abs(rounded - pole) > POLE_TOLERANCE * abs(1.0 - pole)

    def program(self) -> Program:
        """The finished program."""
        state = tuple(self.specs.values())
        return Program(
            tuple(self.instructions),
            tuple(self.scalars),
            state,
            tuple(self.limits),
            tuple(self.taps.items()),
            tuple(self.marks.items()),
            tuple(self.products.values()),
            tuple(sorted(self.env_scalars.items())),
        )


def _minus_lr(*args: float) -> float:
    return -args[-1]


def changed_forms(forms: Mapping[str, Hashable], program: Program) -> list[str]:
    """The state keys of ``program`` whose form differs from ``forms`` (the forms their arrays were written in).

    Executors call this when the hyperparameters change the program: an array
    written by another realisation (a Butterworth design of another order,
    say) is stale, and is recreated at its initial value.  Keys of ``forms``
    that the program no longer uses are reported too (after the key order
    they are dead: a return to the old structure must not revive them); keys
    that ``forms`` does not know are not.

    Examples
    --------
    >>> import optfilters
    >>> from optfilters.program import changed_forms
    >>> old = optfilters.get("butterworth", order=2).plan().program(1)
    >>> changed_forms(old.forms, optfilters.get("butterworth", order=2, cutoff=0.1).plan().program(1))
    []
    >>> changed_forms(old.forms, optfilters.get("butterworth", order=4).plan().program(1))
    ['gradient.0.s0.0', 'gradient.0.s0.1']
    >>> changed_forms(old.forms, optfilters.get("custom", b=[0.1], a=[1.0, -0.9]).plan().program(1))
    ['gradient.0.s0.0', 'gradient.0.s0.1']
    """
    used = program.forms
    changed = [spec.key for spec in program.state if spec.key in forms and forms[spec.key] != spec.form]
    return changed + [key for key in forms if key not in used]


# ----------------------------------------------------------------------------- interpreters


class NumpyOps:
    """The operations on numpy float64 arrays (the reference executor; also rows of affine maps).

    In-place operations write into their first argument, which must be an
    array (registers are at least one-dimensional).  ``lerp_`` uses torch's
    two-sided formula.

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters.program import NumpyOps
    >>> y = np.array([0.0, 1.0])
    >>> NumpyOps.resolve("lerp_")(y, np.array([1.0, 1.0]), 0.25)
    >>> y.tolist()
    [0.25, 1.0]
    """

    @classmethod
    def resolve(cls, op: str | Op) -> Callable[..., Any]:
        """The function of an operation."""
        if isinstance(op, str):
            fn: Callable[..., Any] = getattr(cls, op)
            return fn
        return op.numpy

    @staticmethod
    def neg(x: Any, s: Any = None) -> Any:
        return -x

    @staticmethod
    def add(x: Any, y: Any, s: float) -> Any:
        return x + s * y

    @staticmethod
    def add_(x: Any, y: Any, s: float) -> None:
        x += s * y

    @staticmethod
    def mul(x: Any, y: Any, s: Any = None) -> Any:
        return x * y

    @staticmethod
    def mul_(x: Any, y: Any, s: Any = None) -> None:
        x *= y

    @staticmethod
    def div_(x: Any, y: Any, s: Any = None) -> None:
        x /= y

    @staticmethod
    def mul_s(x: Any, s: float) -> Any:
        return x * s

    @staticmethod
    def mul_s_(x: Any, s: float) -> None:
        x *= s

    @staticmethod
    def div_s(x: Any, s: float) -> Any:
        return x / s

    @staticmethod
    def div_s_(x: Any, s: float) -> None:
        x /= s

    @staticmethod
    def add_s(x: Any, s: float) -> Any:
        return x + s

    @staticmethod
    def add_s_(x: Any, s: float) -> None:
        x += s

    @staticmethod
    def addcmul(x: Any, u: Any, v: Any, s: float) -> Any:
        return x + s * (u * v)

    @staticmethod
    def addcmul_(x: Any, u: Any, v: Any, s: float) -> None:
        x += s * (u * v)

    @staticmethod
    def addcdiv_(x: Any, u: Any, v: Any, s: float) -> None:
        x += s * (u / v)

    @staticmethod
    def lerp_(x: Any, y: Any, s: float) -> None:
        if abs(s) < 0.5:
            x += s * (y - x)
        else:
            x[...] = y - (y - x) * (1.0 - s)

    @staticmethod
    def sqrt(x: Any, s: Any = None) -> Any:
        return np.sqrt(x)

    @staticmethod
    def sqrt_(x: Any, s: Any = None) -> None:
        np.sqrt(x, out=x)

    @staticmethod
    def maximum_(x: Any, y: Any, s: Any = None) -> None:
        np.maximum(x, y, out=x)

    @staticmethod
    def abs(x: Any, s: Any = None) -> Any:
        return np.abs(x)

    @staticmethod
    def sign(x: Any, s: Any = None) -> Any:
        return np.sign(x)

    @staticmethod
    def copy_(x: Any, y: Any, s: Any = None) -> None:
        x[...] = y

    @staticmethod
    def clone(x: Any, s: Any = None) -> Any:
        return np.array(x, copy=True)

    @staticmethod
    def zero_(x: Any, s: Any = None) -> None:
        x[...] = 0.0


Step = tuple[Callable[..., Any], tuple[str, ...], int | None, str | None]


def bind(program: Program, ops: Any) -> tuple[Step, ...]:
    """Resolve each instruction to its function in ``ops`` once (an interpreter's loop is then a tuple walk).

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters.program import NumpyOps, ProgramBuilder, bind, execute
    >>> bld = ProgramBuilder()
    >>> out = bld.new("mul_s", "grad", slot=bld.const(3.0))
    >>> program = bld.program()
    >>> regs = {"grad": np.array([2.0])}
    >>> execute(bind(program, NumpyOps), regs, program.scalar_values(1, 0.0))
    >>> regs[out].tolist()
    [6.0]
    """
    return tuple((ops.resolve(ins.op), ins.args, ins.slot, ins.out) for ins in program.instructions)


def execute(steps: Sequence[Step], regs: dict[str, Any], scalars: Sequence[Any]) -> None:
    """Run bound instructions over the registers ``regs`` (updated in place); see :func:`bind`.

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters.program import NumpyOps, execute
    >>> regs = {"x": np.array([1.0, -4.0])}
    >>> execute([(NumpyOps.abs, ("x",), None, "y")], regs, [])
    >>> regs["y"].tolist()
    [1.0, 4.0]
    """
    for fn, args, slot, out in steps:
        value = fn(*[regs[a] for a in args], scalars[slot] if slot is not None else None)
        if out is not None:
            regs[out] = value


def run_numpy(program: Program, regs: dict[str, Any], scalars: Sequence[float], stop: int | None = None) -> None:
    """Run ``program`` on numpy arrays: ``regs`` maps ``param``, ``grad`` and ``state.<key>`` to arrays.

    State arrays and ``param`` are updated in place; temporaries are added to
    ``regs``.  ``stop`` runs the first ``stop`` instructions only (up to a
    tap, see :attr:`Program.marks`).

    Examples
    --------
    >>> import numpy as np, optfilters
    >>> from optfilters.program import run_numpy
    >>> program = optfilters.get("sgd", lr=0.5).plan().program(1)
    >>> regs = {"param": np.array([1.0]), "grad": np.array([1.0])}
    >>> run_numpy(program, regs, program.scalar_values(1, 0.5))
    >>> regs["param"].tolist()
    [0.5]
    """
    steps = program.numpy_steps
    execute(steps if stop is None else steps[:stop], regs, scalars)
