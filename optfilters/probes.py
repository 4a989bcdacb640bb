"""Structural probes of a black-box optimizer: matrices, sparse gradients, its state, a zero gradient.

Each function drives fresh instances of an optimizer (a dotted path,
``path/to/file.py:Class``, a class or factory; see
:func:`optfilters.identify.probe`) and returns a result whose every field is a
measured number; the ``notes`` say what the numbers show, and name a mechanism
only as a hypothesis.

================================  ==============================================
probe                             what it measures
================================  ==============================================
:func:`matrix_check`              on a 4 x 8 matrix parameter: do elements
                                  couple, is the update rotation-equivariant
                                  (``U(Q G P^T) = Q U(G) P^T``), how close is the
                                  first update to the polar factor ``U V^T`` of
                                  the gradient (orthogonalisation), scale degree
:func:`event_clock`               with sparse gradients: does an element's state
                                  advance only at the steps where its gradient is
                                  present (event-clocked), and does anything
                                  follow the number of ``step()`` calls instead
:func:`state_trace`               which state tensors never change over steps of
                                  non-zero gradients
:func:`zero_gradient_check`       is the update finite when the gradient is
                                  exactly zero from rest
================================  ==============================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "EventClock",
    "MatrixCheck",
    "StateTrace",
    "ZeroGradientCheck",
    "event_clock",
    "matrix_check",
    "state_trace",
    "zero_gradient_check",
]

FloatArray = NDArray[np.float64]

#: Relative discrepancy below which a matrix map counts as rotation-equivariant (Muon's bfloat16
#: Newton-Schulz iteration is equivariant to about 1e-2).
EQUIVARIANCE_TOL = 0.05


def _target(optimizer: Any, options: Mapping[str, Any] | None, extra: Mapping[str, Any], layout: str) -> Any:
    from .identify import _make_target

    return _make_target(optimizer, options, extra, None, "float64", layout)


def _orthogonal(rng: np.random.Generator, n: int) -> FloatArray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return np.asarray(q * np.sign(np.diag(r)), dtype=np.float64)


def _relative(diff: float, scale: float) -> float:
    if diff == 0.0:
        return 0.0
    return diff / scale if scale > 0.0 else math.inf


def _max_abs(x: Any) -> float:
    a = np.asarray(x, dtype=np.float64)
    return float(np.max(np.abs(a))) if a.size else 0.0


def _cosine(x: FloatArray, y: FloatArray) -> float:
    nx, ny = float(np.linalg.norm(x)), float(np.linalg.norm(y))
    return float(np.vdot(x, y) / (nx * ny)) if nx > 0.0 and ny > 0.0 else 0.0


# ----------------------------------------------------------------------------- matrix


@dataclass(frozen=True)
class MatrixCheck:
    """How an optimizer treats a matrix parameter (two steps from rest on a 4 x 8 matrix).

    Attributes
    ----------
    shape : tuple of int
        The matrix shape.
    coupling : float
        Largest change of the *other* elements' updates (two steps) when one
        gradient element changes, relative to the largest update: 0 for an
        elementwise optimizer.
    rotation_discrepancy : float
        ``max |U(Q G P^T) - Q U(G) P^T| / max |U(G)|`` over two steps, for
        random orthogonal ``Q``, ``P``: about 0 for a rotation-equivariant map
        (orthogonalisation), about 1 for an elementwise one.
    polar_cosine : float
        Cosine between the first update and the gradient's polar factor
        ``U V^T`` (1 for an exact orthogonalisation).
    gradient_cosine : float
        Cosine between the first update and the gradient itself.
    singular_values : numpy.ndarray
        Singular values of the first update per unit lr (all equal for an
        exact orthogonalisation).
    scale_degree : float
        ``log10(|U(10 G)| / |U(G)|)`` over two steps: 0 for a scale-invariant
        map, 1 for a linear one.
    notes : list of str
        What the numbers show.
    vector_discrepancy : float
        How far the updates of the matrix are from those of a 32-element
        vector given the same gradients (relative; NaN when not measured, inf
        when the vector fails): above 0 for an optimizer with a separate 2-D
        path (Muon's fallback, MARS's ``betas_1d``, Adafactor's factoring).

    Examples
    --------
    >>> from optfilters.probes import matrix_check
    >>> m = matrix_check("torch.optim.SGD", momentum=0.9)
    >>> m.coupling, m.rotation_discrepancy < 1e-12, round(m.scale_degree, 9)
    (0.0, True, 1.0)
    """

    shape: tuple[int, ...]
    coupling: float
    rotation_discrepancy: float
    polar_cosine: float
    gradient_cosine: float
    singular_values: FloatArray
    scale_degree: float
    notes: list[str] = field(default_factory=list)
    vector_discrepancy: float = math.nan

    @property
    def elementwise(self) -> bool:
        """True when no element's update depends on another element's gradient (coupling 0)."""
        return self.coupling <= 1e-12

    @property
    def rotation_equivariant(self) -> bool:
        """True when ``rotation_discrepancy <= EQUIVARIANCE_TOL``."""
        return self.rotation_discrepancy <= EQUIVARIANCE_TOL

    @property
    def orthogonalising(self) -> bool:
        """Rotation-equivariant, scale-invariant (|degree| < 0.05) and closer to ``U V^T`` than to the gradient.

        Examples
        --------
        >>> from optfilters.probes import matrix_check
        >>> matrix_check("torch.optim.Muon", weight_decay=0.0).orthogonalising
        True
        """
        return (
            self.rotation_equivariant
            and abs(self.scale_degree) < 0.05
            and self.polar_cosine >= 0.9
            and self.polar_cosine > self.gradient_cosine + 0.02
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON.

        Returns
        -------
        dict
            The fields (non-finite as None) and the properties
            ``elementwise``, ``rotation_equivariant`` and ``orthogonalising``.

        Examples
        --------
        >>> from optfilters.probes import matrix_check
        >>> matrix_check("torch.optim.SGD").as_dict()["coupling"]
        0.0
        """
        from .validation import jsonable as _jsonable

        return _jsonable(
            {
                "shape": list(self.shape),
                "coupling": self.coupling,
                "elementwise": self.elementwise,
                "rotation_discrepancy": self.rotation_discrepancy,
                "rotation_equivariant": self.rotation_equivariant,
                "polar_cosine": self.polar_cosine,
                "gradient_cosine": self.gradient_cosine,
                "singular_values": self.singular_values,
                "scale_degree": self.scale_degree,
                "vector_discrepancy": self.vector_discrepancy,
                "orthogonalising": self.orthogonalising,
                "notes": list(self.notes),
            }
        )


def matrix_check(
    optimizer: Any, /, *, options: Mapping[str, Any] | None = None, seed: int = 0, **constructor_options: Any
) -> MatrixCheck:
    """Probe how an optimizer treats a 4 x 8 matrix parameter.

    Parameters
    ----------
    optimizer : str, class or callable
        As in :func:`optfilters.identify.probe`.
    options : mapping, optional
        Constructor keywords (for names that clash with this function's own).
    seed : int
        Seed of the random gradients and rotations.
    **constructor_options
        More constructor keywords.

    Returns
    -------
    MatrixCheck

    Raises
    ------
    optfilters.identify.IdentificationError
        When the optimizer cannot be built or stepped with a matrix parameter.

    Examples
    --------
    >>> from optfilters.probes import matrix_check
    >>> m = matrix_check("torch.optim.Muon", weight_decay=0.0)
    >>> m.rotation_equivariant, m.elementwise, m.polar_cosine > 0.9
    (True, False, True)
    """
    return _matrix_check(_target(optimizer, options, constructor_options, "auto"), seed)


def _matrix_check(target: Any, seed: int = 0) -> MatrixCheck:
    from .identify import MATRIX_SHAPE, IdentificationError

    if target.layout == "sparse":
        raise IdentificationError(f"{target.name} is probed with sparse gradients: no matrix check")
    shape = tuple(MATRIX_SHAPE)
    rng = np.random.default_rng(seed + 7)
    g1, g2 = rng.standard_normal(shape), rng.standard_normal(shape)
    q, p = _orthogonal(rng, shape[0]), _orthogonal(rng, shape[1])

    def run(gradients: list[FloatArray]) -> list[FloatArray]:
        driver = target.driver(0.0, shape)
        return [driver.step_array(g) for g in gradients]

    base = run([g1, g2])
    scale = max(_max_abs(u) for u in base)
    if scale == 0.0:
        raise IdentificationError(f"{target.name} does not move a matrix parameter (zero updates)")
    bumped = g1.copy()
    bumped[0, 0] += 1.0
    other = run([bumped, g2])
    mask = np.ones(shape, dtype=bool)
    mask[0, 0] = False
    coupling = _relative(max(_max_abs((o - b)[mask]) for o, b in zip(other, base, strict=True)), scale)
    rotated = run([q @ g1 @ p.T, q @ g2 @ p.T])
    rotation = _relative(max(_max_abs(r - q @ b @ p.T) for r, b in zip(rotated, base, strict=True)), scale)
    scaled = run([10.0 * g1, 10.0 * g2])
    ratio = float(np.linalg.norm(np.concatenate([s.ravel() for s in scaled]))) / float(
        np.linalg.norm(np.concatenate([b.ravel() for b in base]))
    )
    degree = math.log10(ratio) if ratio > 0.0 else -math.inf
    vector = math.nan
    if target.layout == "scalar":
        try:
            flat = target.driver(0.0, (g1.size,))
            as_vector = [flat.step_array(g.ravel()).reshape(shape) for g in (g1, g2)]
            vector = _relative(max(_max_abs(v - b) for v, b in zip(as_vector, base, strict=True)), scale)
        except IdentificationError:
            vector = math.inf
    u_s, _, vt_s = np.linalg.svd(g1, full_matrices=False)
    polar = u_s @ vt_s
    first = base[0]
    singular = np.asarray(np.linalg.svd(first, compute_uv=False), dtype=np.float64)
    polar_cos, grad_cos = _cosine(first, polar), _cosine(first, g1)
    notes = []
    if coupling <= 1e-12:
        notes.append("elementwise: changing one gradient element leaves every other element's updates unchanged")
    else:
        notes.append(
            f"couples elements: changing one gradient element changes the others' updates by up to "
            f"{coupling:.3g} of the largest update"
        )
    if rotation <= EQUIVARIANCE_TOL:
        notes.append(
            f"rotation-equivariant: rotating the gradients (Q G P^T) rotates the updates the same way "
            f"(discrepancy {rotation:.3g})"
        )
    else:
        notes.append(f"not rotation-equivariant (discrepancy {rotation:.3g} of the largest update)")
    notes.append(
        f"first update: cosine {polar_cos:.3f} with the gradient's polar factor U V^T, {grad_cos:.3f} with the "
        f"gradient; singular values {singular.min():.3g} to {singular.max():.3g}; scale degree {degree:.3g}"
    )
    if vector > 1e-9:
        notes.append(
            f"treats the 4 x 8 matrix differently from the same 32 gradients on a vector (discrepancy {vector:.3g})"
        )
    check = MatrixCheck(shape, coupling, rotation, polar_cos, grad_cos, singular, degree, notes, vector)
    if check.orthogonalising:
        notes.append(
            "scale-invariant, rotation-equivariant and closest to U V^T: hypothesis: an orthogonalisation "
            "(matrix sign, e.g. Newton-Schulz as in Muon)"
        )
    return check


# ----------------------------------------------------------------------------- sparse


@dataclass(frozen=True)
class EventClock:
    """Whether an element's state advances only when its sparse gradient is present.

    Two elements: element 0 gets a gradient at every step; element 1 gets the
    Gaussian sequence ``x_k`` at steps ``2k`` only (absent at odd steps).  A
    second instance gives element 1 ``x_k`` at every step ``k`` (its *event
    time*), a third gives it ``x_k`` at steps ``2k`` and an explicit 0 at odd
    steps.

    Attributes
    ----------
    events : int
        Events of element 1 (``2 * events`` steps).
    idle_update : float
        Largest update of element 1 on the steps without its gradient.
    event_discrepancy : float
        ``max_k |u_1(2k) - u_1'(k)|`` relative to the largest update, where
        ``u_1'`` is the every-step run: 0 when element 1 behaves as if only its
        events existed.
    late_event_discrepancy : float
        The same over the second half of the events.
    zero_discrepancy : float
        Relative difference between element 1's updates when absent and when
        given explicit zeros: 0 when absent means zero.
    notes : list of str
        What the numbers show.

    Examples
    --------
    >>> from optfilters.probes import event_clock
    >>> e = event_clock("torch.optim.SparseAdam")
    >>> e.idle_update, e.event_clocked, e.event_discrepancy > 0.1
    (0.0, True, True)
    """

    events: int
    idle_update: float
    event_discrepancy: float
    late_event_discrepancy: float
    zero_discrepancy: float
    notes: list[str] = field(default_factory=list)

    @property
    def event_clocked(self) -> bool:
        """No movement on idle steps, and absent differs from zero: the state advances only at events."""
        return self.idle_update == 0.0 and self.zero_discrepancy > 1e-9

    @property
    def fully_event_clocked(self) -> bool:
        """Event-clocked and identical to running on event time alone (nothing counts calls)."""
        return self.event_clocked and self.event_discrepancy <= 1e-9

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON.

        Returns
        -------
        dict
            The fields and the properties ``event_clocked`` and
            ``fully_event_clocked``.

        Examples
        --------
        >>> from optfilters.probes import event_clock
        >>> event_clock("torch.optim.SparseAdam").as_dict()["event_clocked"]
        True
        """
        from .validation import jsonable as _jsonable

        return _jsonable(
            {
                "events": self.events,
                "idle_update": self.idle_update,
                "event_discrepancy": self.event_discrepancy,
                "late_event_discrepancy": self.late_event_discrepancy,
                "zero_discrepancy": self.zero_discrepancy,
                "event_clocked": self.event_clocked,
                "fully_event_clocked": self.fully_event_clocked,
                "notes": list(self.notes),
            }
        )


def event_clock(
    optimizer: Any,
    /,
    *,
    options: Mapping[str, Any] | None = None,
    events: int = 48,
    seed: int = 0,
    **constructor_options: Any,
) -> EventClock:
    """Probe an optimizer with sparse gradients in which one element is present every other step.

    Parameters
    ----------
    optimizer : str, class or callable
        As in :func:`optfilters.identify.probe`; it must accept sparse gradients.
    options : mapping, optional
        Constructor keywords (for names that clash with this function's own).
    events : int
        Events of the intermittent element (>= 4).
    seed : int
        Seed of the gradients.
    **constructor_options
        More constructor keywords.

    Returns
    -------
    EventClock

    Raises
    ------
    optfilters.identify.IdentificationError
        When the optimizer cannot be built or stepped with sparse gradients.

    Examples
    --------
    >>> from optfilters.probes import event_clock
    >>> event_clock("torch.optim.SGD", momentum=0.9).event_clocked  # momentum decays on absent steps too
    False
    """
    return _event_clock(_target(optimizer, options, constructor_options, "sparse"), events, seed)


def _event_clock(target: Any, events: int = 48, seed: int = 0) -> EventClock:
    from .identify import _check_int

    events = _check_int("events", events, 4, 100000)
    rng = np.random.default_rng(seed + 11)
    x = rng.standard_normal(events)
    background = rng.standard_normal(2 * events)
    shape = (2,)

    def run(every_step: bool, zeros: bool) -> FloatArray:
        driver = target.driver(0.0, shape)
        out = []
        n = events if every_step else 2 * events
        for t in range(1, n + 1):
            if every_step:
                g, present = np.array([background[t - 1], x[t - 1]]), None
            elif t % 2 == 0:
                g, present = np.array([background[t - 1], x[t // 2 - 1]]), None
            else:
                g = np.array([background[t - 1], 0.0])
                present = None if zeros else np.array([True, False])
            out.append(driver.step_array(g, present)[1])
        return np.asarray(out)

    sparse = run(False, False)
    event_time = run(True, False)
    zero_filled = run(False, True)
    scale = max(_max_abs(sparse), _max_abs(event_time), 1e-300)
    idle = _max_abs(sparse[0::2])
    at_events = sparse[1::2]
    discrepancy = _relative(_max_abs(at_events - event_time), scale)
    late = _relative(_max_abs(at_events[events // 2 :] - event_time[events // 2 :]), scale)
    zero = _relative(_max_abs(sparse - zero_filled), scale)
    notes = []
    if idle == 0.0:
        notes.append(f"on the {events} steps without its gradient the element did not move (largest update 0)")
    else:
        notes.append(f"on the steps without its gradient the element still moved (largest update {idle:.3g})")
    if zero > 1e-9:
        notes.append(f"an absent gradient is not a zero gradient: explicit zeros change its updates by {zero:.3g}")
    else:
        notes.append("an absent gradient acts as a zero gradient (same updates)")
    if idle == 0.0 and zero > 1e-9:
        if discrepancy <= 1e-9:
            notes.append(
                "event-clocked: its k-th update equals the k-th update of an element given the same gradients at "
                "every step: its state advances only when its gradient is present"
            )
        else:
            notes.append(
                f"event-clocked state, but its k-th update differs from that of an element given the same gradients "
                f"at every step by {discrepancy:.3g} ({late:.3g} over the second half): part of the rule follows "
                "the number of step() calls (hypothesis: a step counter shared by all elements, e.g. for bias "
                "correction)"
            )
    return EventClock(events, idle, discrepancy, late, zero, notes)


# ----------------------------------------------------------------------------- state


@dataclass(frozen=True)
class StateTrace:
    """Which optimizer state tensors change over steps of non-zero gradients.

    Attributes
    ----------
    steps : int
        Steps of i.i.d. Gaussian gradients from rest.
    changes : dict
        State key -> number of steps after which its value differed from the
        previous step's (first appearance excluded).
    frozen : list of str
        Keys whose value never changed after they appeared (over at least two
        steps).
    frozen_buffers : list of str
        The frozen keys whose value has the parameter's shape (one value per
        element, like a momentum buffer; scalar bookkeeping left out) and is
        not the initial parameter.
    anchors : list of str
        Frozen per-element keys equal to the initial parameter (the trace
        starts from ``theta = 0.5``): a stored starting point such as
        D-Adaptation's ``x0``.
    values : dict
        State key -> its last value's largest magnitude.
    notes : list of str
        What the numbers show.

    Examples
    --------
    >>> from optfilters.probes import state_trace
    >>> trace = state_trace("torch.optim.Adam")
    >>> sorted(trace.changes), trace.frozen
    (['exp_avg', 'exp_avg_sq', 'step'], [])
    """

    steps: int
    changes: Mapping[str, int]
    frozen: list[str]
    values: Mapping[str, float]
    notes: list[str] = field(default_factory=list)
    frozen_buffers: list[str] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON.

        Returns
        -------
        dict
            ``steps``, ``changes``, ``frozen``, ``frozen_buffers``,
            ``anchors``, ``values`` and ``notes``.

        Examples
        --------
        >>> from optfilters.probes import state_trace
        >>> state_trace("torch.optim.SGD", momentum=0.9).as_dict()["frozen"]
        []
        """
        from .validation import jsonable as _jsonable

        return _jsonable(
            {
                "steps": self.steps,
                "changes": dict(self.changes),
                "frozen": list(self.frozen),
                "frozen_buffers": list(self.frozen_buffers),
                "anchors": list(self.anchors),
                "values": dict(self.values),
                "notes": list(self.notes),
            }
        )


def state_trace(
    optimizer: Any,
    /,
    *,
    options: Mapping[str, Any] | None = None,
    steps: int = 32,
    seed: int = 0,
    **constructor_options: Any,
) -> StateTrace:
    """Step an optimizer with Gaussian gradients and record which state tensors change.

    Parameters
    ----------
    optimizer : str, class or callable
        As in :func:`optfilters.identify.probe` (torch optimizers only).
    options : mapping, optional
        Constructor keywords (for names that clash with this function's own).
    steps : int
        Steps (>= 3).
    seed : int
        Seed of the gradients.
    **constructor_options
        More constructor keywords.

    Returns
    -------
    StateTrace

    Raises
    ------
    optfilters.identify.IdentificationError
        When the optimizer cannot be built or stepped.

    Examples
    --------
    >>> from optfilters.probes import state_trace
    >>> state_trace("torch.optim.SGD", momentum=0.9).changes["momentum_buffer"]
    31
    """
    return _state_trace(_target(optimizer, options, constructor_options, "auto"), steps, seed)


def _state_trace(target: Any, steps: int = 32, seed: int = 0) -> StateTrace:
    from .identify import _check_int

    steps = _check_int("steps", steps, 3, 100000)
    rng = np.random.default_rng(seed + 13)
    theta0 = 0.5
    driver = target.driver(theta0)
    start = theta0 * np.asarray(driver.direction)
    previous: dict[str, FloatArray] = {}
    changes: dict[str, int] = {}
    seen: dict[str, int] = {}
    for _ in range(steps):
        driver.step_array(rng.standard_normal(driver.shape))
        current = driver.state_arrays()
        for key, value in current.items():
            seen[key] = seen.get(key, 0) + 1
            if key in previous:
                old = previous[key]
                differs = old.shape != value.shape or not np.array_equal(old, value, equal_nan=True)
                changes[key] = changes.get(key, 0) + int(differs)
            else:
                changes.setdefault(key, 0)
        previous = current
    frozen = [k for k, n in changes.items() if n == 0 and seen.get(k, 0) >= 2]
    values = {k: _max_abs(v) for k, v in previous.items()}
    shaped = [k for k in frozen if k in previous and previous[k].shape == tuple(driver.shape)]
    anchors = [k for k in shaped if np.allclose(previous[k], start, rtol=1e-12, atol=0.0)]
    buffers = [k for k in shaped if k not in anchors]
    notes = [
        f"state {k!r} never changed over {seen[k]} steps of non-zero gradients (value {values.get(k, 0.0):.6g})"
        + (" = the initial parameter (an anchor)" if k in anchors else "")
        for k in frozen
    ]
    return StateTrace(steps, changes, frozen, values, notes, buffers, anchors)


# ----------------------------------------------------------------------------- zero gradient


@dataclass(frozen=True)
class ZeroGradientCheck:
    """Whether an optimizer's update is finite when every gradient is exactly zero (from rest).

    Attributes
    ----------
    steps : int
        Steps of zero gradient.
    first_non_finite : int or None
        First step whose parameter is not finite (None: all finite).
    largest_update : float
        Largest finite update per unit lr (0 expected).
    error : str or None
        The step's error message, when ``step()`` raised.

    Examples
    --------
    >>> from optfilters.probes import zero_gradient_check
    >>> zero_gradient_check("torch.optim.Adam").finite
    True
    """

    steps: int
    first_non_finite: int | None
    largest_update: float
    error: str | None = None

    @property
    def finite(self) -> bool:
        """True when every step gave a finite parameter and did not raise."""
        return self.first_non_finite is None and self.error is None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON.

        Returns
        -------
        dict
            The fields and the property ``finite``.

        Examples
        --------
        >>> from optfilters.probes import zero_gradient_check
        >>> zero_gradient_check("torch.optim.SGD").as_dict()["finite"]
        True
        """
        from .validation import jsonable as _jsonable

        return _jsonable(
            {
                "steps": self.steps,
                "first_non_finite": self.first_non_finite,
                "largest_update": self.largest_update,
                "error": self.error,
                "finite": self.finite,
            }
        )


def zero_gradient_check(
    optimizer: Any, /, *, options: Mapping[str, Any] | None = None, steps: int = 3, **constructor_options: Any
) -> ZeroGradientCheck:
    """Step a fresh optimizer with exactly zero gradients and check that the parameter stays finite.

    Parameters
    ----------
    optimizer : str, class or callable
        As in :func:`optfilters.identify.probe`.
    options : mapping, optional
        Constructor keywords (for names that clash with this function's own).
    steps : int
        Steps of zero gradient (>= 1).
    **constructor_options
        More constructor keywords.

    Returns
    -------
    ZeroGradientCheck

    Raises
    ------
    optfilters.identify.IdentificationError
        When the optimizer cannot be built.

    Examples
    --------
    >>> from optfilters.probes import zero_gradient_check
    >>> zero_gradient_check("torch.optim.Adam", eps=0.0).first_non_finite
    1
    """
    return _zero_gradient_check(_target(optimizer, options, constructor_options, "auto"), steps)


def _zero_gradient_check(target: Any, steps: int = 3) -> ZeroGradientCheck:
    from .identify import _check_int, _first_line

    steps = _check_int("steps", steps, 1, 1000)
    driver = target.driver(0.0)
    largest = 0.0
    for t in range(1, steps + 1):
        target.tick()
        try:
            u = driver.raw_step_array(np.zeros(driver.shape), None)
        except Exception as exc:  # foreign code
            return ZeroGradientCheck(steps, None, largest, _first_line(exc))
        if not np.all(np.isfinite(u)):
            return ZeroGradientCheck(steps, t, largest)
        largest = max(largest, _max_abs(u))
    return ZeroGradientCheck(steps, None, largest)
