"""Stage kinds on whole tensors, not elementwise: Muon's orthogonalisation, Adafactor's factored normaliser.

* :class:`Orthogonalise`: torch.optim.Muon's Newton-Schulz iteration, a
  matrix nonlinearity ``D -> ~U V^T`` (``D = U S V^T``) on 2-D parameters,
  times Muon's shape gain;
* :class:`FactoredNormaliser`: torch.optim.Adafactor's second moment, an EMA of
  ``g^2`` with the time-varying weight ``t^beta2_decay`` (``1 - beta2_t``),
  factored into row and column means for matrices (``v ~ r c / mean(r)``, state
  of its own shape), and the division by its root (Adafactor's RMS clip and
  relative step are its update, :class:`optfilters.parameter_stages.RelativeStep`).

Both are nonlinear: the linearised analyses (closed loop, noisy quadratic)
replace them by gains and say so; what is linear around them (Muon's momentum
filter) is analysed as it is.  Their operations are not elementwise, so the
fused kernels run them on the multi-tensor path (with one warning).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import InvalidHyperparameterError
from .package_stages import _LeftOut, _MomentTracker
from .program import LinComb, Op, ProgramBuilder, Signals
from .stages import Moments, Stage, Tracker
from .validation import check_integer, check_number, saturating_power

__all__ = ["FactoredNormaliser", "Orthogonalise", "muon_shape_gain", "newton_schulz"]

FloatArray = NDArray[np.float64]

#: torch.optim.Muon's defaults (Keller Jordan's quintic coefficients).
MUON_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def muon_shape_gain(shape: tuple[int, ...], adjust_lr_fn: str | None = None) -> float:
    """torch.optim.Muon's learning-rate adjustment for a parameter of ``shape`` (``A, B = shape[:2]``).

    ``None``/``"original"``: ``sqrt(max(1, A / B))`` (Keller Jordan);
    ``"match_rms_adamw"``: ``0.2 sqrt(max(A, B))`` (Moonshot).

    Parameters
    ----------
    shape : tuple of int
        The parameter's shape (2-D).
    adjust_lr_fn : {None, "original", "match_rms_adamw"}
        torch's option.

    Returns
    -------
    float
        The factor the learning rate is multiplied by for this parameter.

    Raises
    ------
    InvalidHyperparameterError
        When ``adjust_lr_fn`` is none of the three.

    Examples
    --------
    >>> from optfilters.matrix_stages import muon_shape_gain
    >>> muon_shape_gain((8, 2)), muon_shape_gain((2, 8)), muon_shape_gain((4, 9), "match_rms_adamw")
    (2.0, 1.0, 0.6000000000000001)
    """
    a, b = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        return math.sqrt(max(1, a / b))
    if adjust_lr_fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(a, b))
    raise InvalidHyperparameterError(
        f"adjust_lr_fn must be None, 'original' or 'match_rms_adamw', got {adjust_lr_fn!r}"
    )


def _check_matrix(shape: tuple[int, ...]) -> None:
    if len(shape) != 2:
        raise ValueError(
            f"Muon's Newton-Schulz orthogonalisation needs 2-D parameters (matrices), got one of shape "
            f"{tuple(shape)}; torch.optim.Muon refuses them too (optimise vectors with e.g. AdamW)"
        )


def newton_schulz(
    matrix: ArrayLike, coefficients: tuple[float, float, float] = MUON_COEFFICIENTS, steps: int = 5, eps: float = 1e-7
) -> FloatArray:
    """torch.optim.Muon's Newton-Schulz iteration in float64: ``X <- a X + (b A + c A^2) X`` with ``A = X X^T``.

    ``X`` starts at the matrix divided by its Frobenius norm (at least
    ``eps``), transposed when it has more rows than columns.  With torch's
    quintic coefficients it maps every singular value into about
    ``[0.7, 1.2]`` (not exactly 1: the coefficients trade accuracy for speed),
    so the result is close to ``U V^T`` for ``D = U S V^T``.  torch.optim.Muon
    runs the same iteration in bfloat16.

    Parameters
    ----------
    matrix : array_like
        A 2-D array.
    coefficients : (a, b, c)
        The quintic's coefficients.
    steps : int
        Number of iterations.
    eps : float
        Floor of the norm.

    Returns
    -------
    ndarray

    Raises
    ------
    ValueError
        For an array that is not 2-D.

    Examples
    --------
    >>> import numpy as np
    >>> from optfilters.matrix_stages import newton_schulz
    >>> x = newton_schulz(np.diag([4.0, 0.5, 0.1]))
    >>> bool(np.all((np.diag(x) > 0.6) & (np.diag(x) < 1.25)))   # singular values pushed towards 1
    True
    """
    x = np.asarray(matrix, dtype=np.float64)
    _check_matrix(x.shape)
    a, b, c = (float(v) for v in coefficients)
    tall = x.shape[0] > x.shape[1]
    out = x.T if tall else x
    out = out / max(float(np.linalg.norm(out)), eps)
    for _ in range(int(steps)):
        gram = out @ out.T
        update = b * gram + c * (gram @ gram)
        out = a * out + update @ out
    return np.asarray(out.T if tall else out, dtype=np.float64)


@functools.lru_cache(maxsize=64)
def _newton_schulz_op(coefficients: tuple[float, float, float], steps: int, eps: float, adjust: str | None) -> Op:
    """The orthogonalisation as an operation: float64 in numpy, torch.optim.Muon's bfloat16 code in torch."""
    a, b, c = coefficients

    def numpy(x: Any, s: Any = None) -> Any:
        return newton_schulz(x, coefficients, steps, eps) * muon_shape_gain(x.shape, adjust)

    def torch_form(x: Any, s: Any = None) -> Any:
        import torch

        _check_matrix(tuple(x.shape))
        # torch.optim._muon._zeropower_via_newtonschulz, operation for operation (bfloat16)
        ortho = x.bfloat16()
        tall = x.size(0) > x.size(1)
        if tall:
            ortho = ortho.T
        ortho.div_(ortho.norm().clamp(min=eps))
        for _ in range(steps):
            gram = ortho @ ortho.T
            update = torch.addmm(gram, gram, gram, beta=b, alpha=c)
            ortho = torch.addmm(ortho, update, ortho, beta=a)
        if tall:
            ortho = ortho.T
        return ortho.to(x.dtype) * muon_shape_gain(tuple(x.shape), adjust)

    return Op(f"newton_schulz{coefficients}x{steps}", numpy=numpy, torch=torch_form, precision="bfloat16")


@dataclass(frozen=True)
class Orthogonalise(_LeftOut):
    """Muon's orthogonalisation of the (2-D) direction, times its shape gain.

    ``D -> NS(D) * g(shape)``: :func:`newton_schulz` (``steps`` iterations of
    the quintic with ``coefficients``) and :func:`muon_shape_gain`.  The bridge
    runs torch.optim.Muon's bfloat16 iteration operation for operation (it
    follows torch to 1e-15 relative, measured 1.1e-16); the numpy executor runs it in float64, so the
    two agree to bfloat16 precision (about 3 significant digits), not to
    rounding (:attr:`optfilters.program.Op.precision`).  A matrix
    nonlinearity: scale invariant (``NS(c D) = NS(D)`` while ``||c D|| >= eps``),
    left out of the linearised analyses (direction only).  Non-2-D parameters
    are refused with a ValueError when the optimizer is made, as
    torch.optim.Muon does (``FilterOptimizer`` and its ``add_param_group``
    name the group, the parameter's index and its shape;
    ``NumpyOptimizer`` its ``theta0``'s shape).

    Parameters
    ----------
    coefficients : (a, b, c)
        torch's ``ns_coefficients``.
    steps : int
        torch's ``ns_steps``.
    eps : float
        Floor of the norm.
    adjust_lr_fn : {None, "original", "match_rms_adamw"}
        The shape gain.

    Raises
    ------
    InvalidHyperparameterError
        When ``coefficients`` is not three finite numbers, ``steps`` not an
        integer in ``[0, 99]`` or ``adjust_lr_fn`` not one of
        :func:`muon_shape_gain`'s options.

    Examples
    --------
    >>> import numpy as np, optfilters
    >>> opt = optfilters.get("muon", lr=0.1, weight_decay=0.0, momentum=0.0).optimizer(np.zeros((2, 2)))
    >>> opt.step(np.diag([3.0, 1e-3])).round(3).tolist()   # both directions move by ~lr: the spectrum is flattened
    [[-0.1, 0.0], [0.0, -0.02]]
    """

    coefficients: tuple[float, float, float] = MUON_COEFFICIENTS
    steps: int = 5
    eps: float = 1e-7
    adjust_lr_fn: str | None = None

    role: ClassVar[str] = "nonlinearity"
    elementwise: ClassVar[bool] = False

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """ValueError unless ``shape`` is 2-D (torch.optim.Muon's rule)."""
        _check_matrix(tuple(shape))

    def __post_init__(self) -> None:
        if len(self.coefficients) != 3:
            raise InvalidHyperparameterError(f"ns_coefficients must be three numbers, got {self.coefficients!r}")
        for coefficient in self.coefficients:
            check_number(coefficient, "ns_coefficients")
        check_integer(self.steps, "ns_steps", 0, 99)
        muon_shape_gain((1, 1), self.adjust_lr_fn)

    @property
    def key(self) -> str:
        """``orthogonalise``."""
        return "orthogonalise"

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """``d = NS(d) * g(shape)``."""
        op = _newton_schulz_op(tuple(float(c) for c in self.coefficients), int(self.steps), self.eps, self.adjust_lr_fn)  # type: ignore[arg-type]
        sig.direction = LinComb.of(bld.new(op, bld.materialise(sig.direction)))
        sig.outputs[self.key] = sig.direction

    def linearisation_note(self, how: str, second_moment: float | None = None) -> str:
        """Left out."""
        return (
            "linearised: Muon's Newton-Schulz orthogonalisation (a matrix nonlinearity) and shape gain left out "
            "(direction only)"
        )

    def describe(self) -> str:
        """Short formula."""
        a, b, c = self.coefficients
        gain = {None: "sqrt(max(1, A/B))", "original": "sqrt(max(1, A/B))", "match_rms_adamw": "0.2 sqrt(max(A, B))"}
        return (
            f"orthogonalise the 2-D direction: {self.steps} Newton-Schulz steps "
            f"X <- {a:g} X + ({b:g} A + {c:g} A^2) X, "
            f"A = X X^T (~U V^T; bfloat16 on the bridge, as torch.optim.Muon), times {gain[self.adjust_lr_fn]}"
        )

    def nonlinear_description(self) -> str:
        """What it does."""
        return "orthogonalises the 2-D direction (Newton-Schulz, ~U V^T: a matrix map, not elementwise)"

    def table_cells(self) -> dict[str, str]:
        """The normalisation column."""
        return {"gradient normalisation": "orthogonalise (Newton-Schulz ~U V^T) x shape gain, 2-D only"}


# ----------------------------------------------------------------------------- Adafactor


def _dtype_eps(eps1: float | None, dtype: Any) -> float:
    if eps1 is not None:
        return float(eps1)
    try:
        import torch

        if isinstance(dtype, torch.dtype):
            return float(torch.finfo(dtype).eps)
    except ImportError:  # pragma: no cover - numpy only
        pass
    return float(np.finfo(dtype).eps)


def _mean_square(axis: int, name: str) -> Op:
    """The mean of ``g^2`` over ``axis`` (-1: rows, -2: columns) of a matrix, kept as a dimension; 0-d for vectors."""

    def numpy(g: Any, s: Any = None) -> Any:
        if g.ndim < 2:
            return np.zeros(())
        return np.linalg.norm(g, axis=axis, keepdims=True) ** 2 / g.shape[axis]

    def torch_form(g: Any, s: Any = None) -> Any:
        if g.dim() < 2:
            return g.new_zeros(())
        return g.norm(dim=axis, keepdim=True).square_().div_(g.size(axis))

    return Op(name, numpy=numpy, torch=torch_form)


def _row_mean() -> Op:
    return _mean_square(-1, "row_mean_square")


def _col_mean() -> Op:
    return _mean_square(-2, "column_mean_square")


def _square() -> Op:
    def numpy(g: Any, s: Any = None) -> Any:
        return g * g if g.ndim < 2 else np.zeros(())

    def torch_form(g: Any, s: Any = None) -> Any:
        return g * g if g.dim() < 2 else g.new_zeros(())

    return Op("square_unfactored", numpy=numpy, torch=torch_form)


@functools.lru_cache(maxsize=64)
def _inverse_root(eps1: float | None) -> Op:
    def numpy(g: Any, row: Any, col: Any, full: Any, s: Any = None) -> Any:
        eps = _dtype_eps(eps1, np.float64)
        if g.ndim >= 2:
            estimate = (row @ col) / np.maximum(np.mean(row, axis=-2, keepdims=True), eps)
        else:
            estimate = np.array(full, copy=True)
        return 1.0 / np.sqrt(np.maximum(estimate, eps * eps))

    def torch_form(g: Any, row: Any, col: Any, full: Any, s: Any = None) -> Any:
        eps = _dtype_eps(eps1, g.dtype)
        if g.dim() >= 2:  # torch.optim.Adafactor's factored estimate
            estimate = row @ col
            estimate.div_(row.mean(dim=-2, keepdim=True).clamp_(min=eps))
        else:
            estimate = full.clone()
        return estimate.clamp_(min=eps * eps).rsqrt_()

    return Op("adafactor_inverse_root", numpy=numpy, torch=torch_form)


def _row_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (*shape[:-1], 1) if len(shape) >= 2 else ()


def _col_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (*shape[:-2], 1, shape[-1]) if len(shape) >= 2 else ()


def _full_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return () if len(shape) >= 2 else tuple(shape)


@dataclass(frozen=True)
class FactoredNormaliser(Stage):
    """torch.optim.Adafactor's normaliser: multiply by ``1 / sqrt(max(v, eps1^2))``.

    ``v`` is an EMA of ``g^2`` with the time-varying weight ``w_t = t^beta2_decay``
    (``1 - beta2_t``; ``w_1 = 1``, so no bias correction is needed, and the
    pole ``1 - w_t`` tends to 1: a growing window).  For tensors of two or
    more dimensions it is factored over the last two (state ``row_var`` of
    shape ``(..., m, 1)`` and ``col_var`` of shape ``(..., 1, n)``, EMAs of the
    row and column means of ``g^2``), ``v = row_var @ col_var / max(mean(row_var), eps1)``;
    vectors keep the full ``variance``.  ``eps1`` None is the parameter
    dtype's machine epsilon (float64 in the numpy executor and the analyses).

    Parameters
    ----------
    beta2_decay : float
        ``<= 0`` (torch's default -0.8).
    eps1 : float or None
        The floor of ``sqrt(v)``.

    Raises
    ------
    InvalidHyperparameterError
        When ``beta2_decay`` is not a finite number <= 0.

    Examples
    --------
    >>> import numpy as np, optfilters
    >>> opt = optfilters.get("adafactor").optimizer(np.ones((2, 3)))
    >>> _ = opt.step(np.arange(6.0).reshape(2, 3))
    >>> opt.state["row_var"].ravel().round(6).tolist(), opt.state["col_var"].ravel().round(6).tolist()
    ([1.666667, 16.666667], [4.5, 8.5, 14.5])
    """

    beta2_decay: float = -0.8
    eps1: float | None = None

    role: ClassVar[str] = "normaliser"
    is_linear: ClassVar[bool] = False
    elementwise: ClassVar[bool] = False

    def __post_init__(self) -> None:
        check_number(self.beta2_decay, "beta2_decay", high=0.0)

    @property
    def is_time_invariant(self) -> bool:  # type: ignore[override]
        """False (unless ``beta2_decay = 0``: then ``v = g^2``)."""
        return self.beta2_decay == 0.0

    def weight(self, t: int) -> float:
        """``1 - beta2_t = t^beta2_decay``.

        Parameters
        ----------
        t : int
            The step, from 1.

        Returns
        -------
        float
            The weight of ``g_t^2`` in the EMA at step ``t`` (1 at the first step).
        """
        return float(t) ** self.beta2_decay

    def _eps(self) -> float:
        return _dtype_eps(self.eps1, np.float64)

    def emit(self, bld: ProgramBuilder, sig: Signals, variant: Any = None) -> None:
        """torch.optim.Adafactor's statistics (``lerp_`` with ``t^beta2_decay``) and ``d * rsqrt(clamp(v, eps1^2))``."""
        g = sig.grad
        weight = bld.slot(lambda t, lr: self.weight(t), lambda lr: 0.0 if self.beta2_decay < 0 else 1.0)
        row = bld.state("row_var", shape=_row_shape)
        col = bld.state("col_var", shape=_col_shape)
        full = bld.state("variance", shape=_full_shape)
        bld.emit("lerp_", None, row, bld.new(_row_mean(), g), slot=weight)
        bld.emit("lerp_", None, col, bld.new(_col_mean(), g), slot=weight)
        bld.emit("lerp_", None, full, bld.new(_square(), g), slot=weight)
        scale = bld.new(_inverse_root(self.eps1), g, row, col, full)
        sig.direction = LinComb.of(bld.new("mul", scale, bld.materialise(sig.direction)))
        sig.outputs[self.key] = sig.direction

    def frozen_gain(self, second_moment: ArrayLike, t: int | None = None) -> Any:
        """``1 / max(sqrt(v), eps1)`` (the unfactored second moment ``v``)."""
        v = np.asarray(second_moment, dtype=np.float64)
        eps = self._eps()
        floor = saturating_power(eps, 2)
        if not math.isfinite(floor):  # eps1 = 1e308: eps^2 overflows, the gain 1 / eps does not
            return 1.0 / np.maximum(np.sqrt(v), eps)
        return 1.0 / np.sqrt(np.maximum(v, floor))

    def linearisation_note(self, how: str, second_moment: float | None = None) -> str:
        """The label of the linearisation."""
        notes = {
            "frozen": f"linearised: Adafactor's normaliser frozen at second moment v={second_moment}",
            "frozen_given": "linearised: Adafactor's normaliser frozen at the given second moment",
            "tracking": "linearised: Adafactor's normaliser driven by the predicted E[g^2] (mean-field, unfactored)",
            "steady": "linearised: Adafactor's normaliser frozen at the self-consistent steady-state E[g^2]",
        }
        return notes[how]

    def tracker(self, size: int) -> Tracker:
        """The unfactored second moment run on the predicted ``E[g^2]``."""
        return _FactoredTracker(self, size)

    def describe(self) -> str:
        """Short formula."""
        return (
            f"multiply by 1/sqrt(max(v, eps1^2)), v = EMA of g^2 with weight t^{self.beta2_decay:g} "
            "(growing window), factored into row and column means for matrices"
        )

    def table_cells(self) -> dict[str, str]:
        """The normalisation and the variance filter."""
        return {
            "gradient normalisation": "divide by sqrt(v) (floor eps1), factored rows x columns for matrices",
            "variance filter": f"EMA with weight t^{self.beta2_decay:g} (pole 1 - t^{self.beta2_decay:g} -> 1)",
        }


class _FactoredTracker(_MomentTracker):
    def gain(self, t: int, moments: Moments) -> FloatArray:
        w = self.norm.weight(t)
        self.v = self.v + w * (moments.grad2 - self.v)
        return np.asarray(self.norm.frozen_gain(self.v), dtype=np.float64)
