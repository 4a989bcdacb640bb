"""Open-loop runs over the whole time axis at once: the model's step program on gradient sequences.

:meth:`optfilters.OptimizerModel.simulate` runs the step program once per step
(:class:`optfilters.NumpyOptimizer`), which costs tens of microseconds of
interpreter time per step: a few seconds for the 10^5 - 10^6 steps a slow EMA
needs to settle (AdEMAMix's ``beta3 = 0.9999``, ADOPT's ``beta2 = 0.9999`` in
:mod:`optfilters.large_signal`).  In open loop the gradient sequence is known in
advance, so the same program can run on registers that hold a whole block of
steps, ``(steps, columns)``:

* every register that is not carried between steps (the gradient and the
  temporaries) is an elementwise function of the step's inputs, computed for
  all steps at once, with each scalar slot evaluated for every step;
* every carried register (``param`` and ``state.<key>``) is updated in place by
  operations that, in the operations of :mod:`optfilters.program`, compose to
  an affine map of its value before the step, ``x_t = a_t x_{t-1} + c_t``
  (``mul_s_``, ``add_``, ``lerp_``, ``addcmul_``, ``addcdiv_``, ``copy_``, ...),
  or to a running maximum (AMSGrad's ``maximum_``).  That recursion is solved
  for the whole block: a running sum for ``a = 1`` (the parameter), a prefix
  scan in ``log2(steps)`` vectorised passes for a constant ``|a| < 1``,
  ``numpy.maximum.accumulate`` for a maximum, the recursion itself for an
  ``a`` that changes with the step; a register read within the step
  (ADOPT's normaliser reads ``v_{t-1}``) is then ``a x_{t-1} + c`` at that point.

Registers whose recursion depends on registers not yet solved are solved in a
later pass over the program.  Anything else (a nonlinear in-place update of a
carried register, an operation not known to be elementwise: an
:class:`~optfilters.program.Op` without a C form may reduce over the tensor, as
C-Optim's mask does; a state that is not elementwise, scalars carried between
steps such as NAdam's ``mu_product``, a model keeping averaged parameters)
falls back to the step-by-step executor, and so does every block whose first
steps, run both ways, do not agree.  The results equal the step-by-step ones up
to rounding: a filter's recursion is summed in another order (relative
differences below ``1e-10`` over thousands of steps of a slow EMA;
tests/optfilters/test_open_loop.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .model import NumpyOptimizer, OptimizerModel, StepPlan, Trajectory
from .program import NumpyOps, Op, Program

__all__ = ["simulate_open_loop"]

FloatArray = NDArray[np.float64]

#: Shortest run of steps with the same program that is run as one block (shorter runs go step by step).
MIN_BLOCK = 64

#: Steps of each block also run step by step, from the same state, and compared before the block is accepted.
CHECK_STEPS = 8

#: Relative agreement asked of those steps (rounding of the reordered sums is far below it).
CHECK_RTOL = 1e-9


class _Unsupported(Exception):
    """The block cannot run over the time axis (the caller runs it step by step)."""


_UNKNOWN = object()


class _Carried:
    """A carried register within the step: ``a * previous + c``, or ``maximum(previous, peak)``."""

    __slots__ = ("a", "c", "peak", "touched")

    def __init__(self) -> None:
        self.a: Any = 1.0
        self.c: Any = 0.0
        self.peak: Any = None
        self.touched = False

    def value(self, previous: FloatArray) -> FloatArray:
        if self.peak is not None:
            return np.asarray(np.maximum(previous, self.peak), dtype=np.float64)
        return np.asarray(self.a * previous + self.c, dtype=np.float64)


def _lerp(x: FloatArray, y: FloatArray, s: Any) -> None:
    """:meth:`NumpyOps.lerp_` with a scalar per step (its two-sided form chosen step by step)."""
    s = np.asarray(s, dtype=np.float64)
    x[...] = np.where(np.abs(s) < 0.5, x + s * (y - x), y - (y - x) * (1.0 - s))


def _affine(reg: _Carried, op: str, others: list[Any], s: Any) -> None:
    """Compose one in-place operation into the carried register's map (raises _Unsupported)."""
    if reg.peak is not None:
        raise _Unsupported(f"{op} after maximum_")
    if op == "maximum_":
        if reg.touched:
            raise _Unsupported("maximum_ after another update")
        reg.peak = others[0]
    elif op == "mul_s_":
        reg.a, reg.c = reg.a * s, reg.c * s
    elif op == "div_s_":
        reg.a, reg.c = reg.a / s, reg.c / s
    elif op == "mul_":
        reg.a, reg.c = reg.a * others[0], reg.c * others[0]
    elif op == "div_":
        reg.a, reg.c = reg.a / others[0], reg.c / others[0]
    elif op == "add_s_":
        reg.c = reg.c + s
    elif op == "add_":
        reg.c = reg.c + s * others[0]
    elif op == "addcmul_":
        reg.c = reg.c + s * (others[0] * others[1])
    elif op == "addcdiv_":
        reg.c = reg.c + s * (others[0] / others[1])
    elif op == "lerp_":
        reg.a, reg.c = reg.a * (1.0 - s), reg.c * (1.0 - s) + s * others[0]
    elif op == "copy_":
        reg.a, reg.c = 0.0, np.array(others[0], dtype=np.float64, copy=True)
    elif op == "zero_":
        reg.a, reg.c = 0.0, 0.0
    else:
        raise _Unsupported(f"in-place {op} on a carried register")
    reg.touched = True


def _solve(reg: _Carried, start: FloatArray, n: int) -> FloatArray:
    """The register after each of the ``n`` steps, ``(n, columns)``, from its value ``start`` before them."""
    if reg.peak is not None:
        peaks = np.broadcast_to(reg.peak, (n, *start.shape))
        return np.asarray(np.maximum.accumulate(np.concatenate([start[None], peaks]), axis=0)[1:], dtype=np.float64)
    c = np.broadcast_to(np.asarray(reg.c, dtype=np.float64), (n, *start.shape))
    a = np.asarray(reg.a, dtype=np.float64)
    first = float(a.flat[0])
    if a.size == 1 or bool(np.all(a == first)):
        if first == 0.0:
            return np.array(c, dtype=np.float64, copy=True)
        out = np.array(c, dtype=np.float64, copy=True)
        out[0] += first * start
        if first == 1.0:  # an accumulator (the parameter): the running sum, in the reference's order
            return np.asarray(np.cumsum(out, axis=0), dtype=np.float64)
        if not abs(first) < 1.0:
            raise _Unsupported(f"a recursion with coefficient {first} (not contracting)")
        shift, power = 1, first
        while shift < n and power != 0.0:  # a prefix scan: after it, out_t = sum_j a^j c_{t-j} over j < 2 shift
            out[shift:] = out[shift:] + power * out[:-shift]
            shift, power = 2 * shift, power * power
        return out
    a = np.broadcast_to(a, (n, *start.shape))
    out = np.empty((n, *start.shape))
    previous = start
    for k in range(n):  # a coefficient that changes with the step (a warm-up): the recursion itself
        previous = out[k] = a[k] * previous + c[k]
    return out


def _scalars(program: Program, t: FloatArray, lr: float) -> list[Any]:
    """Each slot's value at the steps ``t`` as a column ``(n, 1)`` (vectorised where the slot allows it)."""
    out: list[Any] = []
    sample = np.unique(np.r_[0 : min(CHECK_STEPS, t.size), t.size // 2, t.size - 1])
    for fn in program.scalars:
        values: Any = None
        try:
            with np.errstate(all="ignore"):
                values = np.asarray(fn(t, lr), dtype=np.float64)  # type: ignore[arg-type]
            values = np.broadcast_to(values, t.shape)
            exact = np.array([fn(int(t[k]), lr) for k in sample], dtype=np.float64)
            if not np.allclose(values[sample], exact, rtol=1e-13, atol=0.0, equal_nan=True):
                values = None
        except Exception:  # any failure of the array call: the slot's own per-step calls below
            values = None
        if values is None:  # a slot written for one step at a time
            values = np.fromiter(map(fn, range(int(t[0]), int(t[-1]) + 1), itertools.repeat(lr)), np.float64)
        out.append(np.asarray(values, dtype=np.float64)[:, None])
    return out


def _block(
    program: Program, grads: FloatArray, starts: dict[str, FloatArray], scalars: Sequence[Any]
) -> dict[str, FloatArray]:
    """Every carried register after each step of the block, ``(n, columns)``, from their values ``starts``."""
    n = grads.shape[0]
    solved: dict[str, FloatArray] = {}  # a carried register's value before each step
    ends: dict[str, FloatArray] = {}
    while len(ends) < len(starts):
        regs: dict[str, Any] = {"grad": np.array(grads, dtype=np.float64, copy=True)}
        carried = {name: _Carried() for name in starts}
        pending: set[str] = set()

        def read(name: str, carried: dict[str, _Carried] = carried, regs: dict[str, Any] = regs) -> Any:
            if name in carried:
                return carried[name].value(solved[name]) if name in solved else _UNKNOWN
            return regs.get(name, _UNKNOWN)

        for ins in program.instructions:
            if isinstance(ins.op, Op) and ins.op.c is None:
                # Only an Op with a C form is known to be elementwise (the fused kernels' contract); others may
                # reduce over the tensor (C-Optim's mask, Muon), which over a block would mix the steps.
                raise _Unsupported(f"{ins.op.name} is not known to be elementwise")
            s = scalars[ins.slot] if ins.slot is not None else None
            name = ins.args[0]
            if ins.out is None and name in carried:  # an in-place update of a carried register
                others = [read(a) for a in ins.args[1:]]
                if any(v is _UNKNOWN for v in others):
                    pending.add(name)
                elif name not in pending:
                    if isinstance(ins.op, Op):
                        raise _Unsupported(f"{ins.op.name} in place")  # unreachable today: an Op is out of place
                    _affine(carried[name], ins.op, others, s)
                continue
            values = [read(a) for a in ins.args]
            target = ins.out if ins.out is not None else name
            if any(v is _UNKNOWN for v in values):
                regs[target] = _UNKNOWN
                continue
            if ins.op == "lerp_":
                _lerp(values[0], values[1], s)
            else:
                with np.errstate(all="ignore"):
                    result = NumpyOps.resolve(ins.op)(*values, s)
                if ins.out is not None:
                    regs[ins.out] = np.asarray(result, dtype=np.float64)
        progress = False
        for name, reg in carried.items():
            if name in ends or name in pending:
                continue
            with np.errstate(all="ignore"):
                end = _solve(reg, starts[name], n)
            ends[name] = end
            solved[name] = np.concatenate([starts[name][None], end[:-1]])
            progress = True
        if not progress:
            raise _Unsupported("the carried registers depend on one another within the step")
    return ends


def _agrees(fast: FloatArray, slow: FloatArray) -> bool:
    scale = np.maximum(np.abs(slow), np.abs(fast))
    close = np.abs(fast - slow) <= CHECK_RTOL * scale + 1e-300
    same = (fast == slow) | (np.isnan(fast) & np.isnan(slow))
    return bool(np.all(close | same))


def _run_block(opt: NumpyOptimizer, program: Program, grads: FloatArray, out: FloatArray) -> bool:
    """Run the steps of ``grads`` (one program) as one block into ``out``; False: nothing run, go step by step."""
    if program.products or any(spec.shape is not None for spec in program.state):
        return False
    shape = opt.theta.shape
    n = grads.shape[0]
    t0 = opt.t
    starts = {"param": np.array(opt.theta, dtype=np.float64, copy=True).reshape(-1)}
    for spec in program.state:
        value = opt.state.get(spec.key)
        starts[f"state.{spec.key}"] = (
            np.full(starts["param"].shape, spec.init) if value is None else np.array(value, dtype=np.float64).ravel()
        )
    flat = grads.reshape(n, -1)
    try:
        scalars = _scalars(program, np.arange(t0 + 1, t0 + n + 1), opt.lr)
        ends = _block(program, flat, starts, scalars)
    except Exception:  # _Unsupported, or an operation that does not take a block of steps: the
        return False  # step-by-step executor runs it instead (and raises whatever the reference raises)
    # The first steps step by step (the reference executor, from the same state): the block must agree.
    check = min(CHECK_STEPS, n)
    for k in range(check):
        out[k] = opt.step(grads[k])
    if not _agrees(ends["param"][:check].reshape(out[:check].shape), out[:check]):
        return False  # the executor is at step t0 + check: the caller goes on step by step from there
    out[check:] = ends["param"][check:].reshape(out[check:].shape)
    opt.t = t0 + n
    opt.theta = np.array(ends["param"][-1].reshape(shape), dtype=np.float64)
    for spec in program.state:
        opt.state[spec.key] = np.array(ends[f"state.{spec.key}"][-1].reshape(spec.shape_for(shape)), dtype=np.float64)
    return True


def _runs(plan: StepPlan, total: int) -> list[tuple[Program, int]]:
    """Steps ``1 .. total`` as runs of one program: ``(program, length)`` in order."""
    fns = plan._variant_fns
    if not fns:
        return [(plan.program(1), total)]
    steps = range(1, total + 1)
    keys: Any = map(fns[0], steps) if len(fns) == 1 else zip(*(map(fn, steps) for fn in fns), strict=True)
    out = []
    t = 1
    for _, group in itertools.groupby(keys):
        run = sum(1 for _ in group)
        out.append((plan.program(t), run))
        t += run
    return out


def simulate_open_loop(
    model: OptimizerModel, gradients: ArrayLike, theta0: ArrayLike = 0.0, lr: float | None = None
) -> Trajectory:
    """:meth:`OptimizerModel.simulate` on a gradient sequence, with long runs computed over the time axis at once.

    Parameters
    ----------
    model : OptimizerModel
        The optimizer.
    gradients : array_like, shape (T, ...)
        Raw loss gradients, time on the first axis (``gradients[t-1]`` at step ``t``).
    theta0 : array_like
        Initial parameters, shape ``gradients.shape[1:]`` (or broadcast to it).
    lr : float, optional
        Learning rate (default: the model's).

    Returns
    -------
    Trajectory
        The same trajectory as ``model.simulate(gradients, theta0, lr=lr)`` up
        to rounding (see the module's notes), with the averaged parameters
        when the model keeps them (that case runs step by step).

    Raises
    ------
    ValueError
        If ``gradients`` has no time axis.

    Examples
    --------
    >>> import numpy as np, optfilters
    >>> from optfilters.open_loop import simulate_open_loop
    >>> m = optfilters.get("adam", lr=1.0, eps=0.0)
    >>> fast = simulate_open_loop(m, np.ones((1000, 1)))
    >>> slow = m.simulate(np.ones((1000, 1)), theta0=np.zeros(1))
    >>> bool(np.allclose(fast.params, slow.params, rtol=1e-12, atol=0.0))
    True
    """
    grads = np.asarray(gradients, dtype=np.float64)
    if grads.ndim == 0:
        raise ValueError("gradients must have a time axis (shape (T, ...))")
    theta = np.array(np.broadcast_to(np.asarray(theta0, dtype=np.float64), grads.shape[1:]), copy=True)
    if model.parameter_output is not None:
        return model.simulate(grads, theta0=theta, lr=lr)
    opt = model.optimizer(theta, lr=lr)
    total = grads.shape[0]
    params = np.empty((total + 1, *theta.shape))
    params[0] = opt.theta
    t = 0
    for program, run in _runs(opt._plan, total):
        end = t + run
        if run < MIN_BLOCK or not _run_block(opt, program, grads[t:end], params[t + 1 : end + 1]):
            for k in range(opt.t, end):  # step by step (from where a refused block's check left off)
                params[k + 1] = opt.step(grads[k])
        t = end
    return Trajectory(params=params, updates=np.diff(params, axis=0))
