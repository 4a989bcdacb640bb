"""``FilterOptimizer``: any optfilters model as a ``torch.optim.Optimizer``."""

from __future__ import annotations

import dataclasses
import inspect
import operator
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from itertools import chain, repeat
from typing import Any

import torch
from torch import Tensor

from ..errors import InvalidFilterError, InvalidHyperparameterError, StabilityWarning, StateResetWarning
from ..filters import ArmaFilter
from ..model import OptimizerModel
from ..program import changed_forms
from ..stages import Stage
from ._compiled import CompiledStep
from ._kernels import (
    LOW_PRECISION,
    DeviceScalarOps,
    ForeachOps,
    FunctionalOps,
    SingleOps,
    Step,
    bind,
    run_foreach,
    run_functional,
    run_single,
)
from ._native import NativeKernel, compiler, native_kind
from ._program import Plan, Program
from ._resolve import OPTION_KEYS, Source, check_lr, make_source
from .checkpoint import CheckpointError, _convert_from, _convert_to_torch, _counterpart, _torch_class
from .triton_kernels import DeviceLr, TritonKernel, as_floats, lr_dependent_slots, slot_values, triton_kind

__all__ = ["FilterOptimizer"]


_GRAD = operator.attrgetter("grad")
_DTYPE = operator.attrgetter("dtype")
_IS_SPARSE = operator.attrgetter("is_sparse")
_IS_CPU = operator.attrgetter("is_cpu")
_GET_STEP = operator.methodcaller("get", "step")
_INF = float("inf")


def _scalar_dtype() -> torch.dtype:
    # torch.optim keeps 'step' in float32 unless the default dtype is float64.
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _state_dtype(param: Tensor) -> torch.dtype:
    if param.is_complex():
        return param.real.dtype
    if param.dtype in LOW_PRECISION:
        return torch.float32
    return param.dtype


class FilterOptimizer(torch.optim.Optimizer):
    r"""Any optimizer model, designed filter or raw ``b``/``a`` filter as a ``torch.optim.Optimizer``.

    Each step runs the model's stages exactly as
    :meth:`optfilters.NumpyOptimizer.step` defines them (the effective gradient,
    the gradient filter, the normaliser, the post-filter, the sign, the
    learning-rate gain), with torch.optim's order of operations wherever
    torch.optim has the same optimizer, so that float64 runs agree with
    torch.optim to rounding (bit for bit for most entries).

    Parameters
    ----------
    params : iterable
        Tensors, or dicts defining parameter groups (as for any torch optimizer).
        A group may override any hyperparameter.
    model : str, OptimizerModel, Stage or ArmaFilter
        A catalogue name or alias (``"adam"``, ``"nesterov"``, ``"butterworth"``,
        see :func:`optfilters.names`); a model object (from
        :func:`optfilters.get`, whose hyperparameters may still be overridden
        here, composed with :func:`optfilters.chain` or built by hand); a
        stage; or a filter ``H(z)`` on the gradient, which gives filtered
        gradient descent ``theta -= lr * H(z) grad`` (the same resolution as
        every analysis function, :func:`optfilters.as_model`).
    foreach : bool or None, optional
        Multi-tensor path (``torch._foreach_*``).  None (the default) selects it
        when the parameters are off the CPU, as torch.optim does.  On CPU it
        gives bit-identical results to the single-tensor path with less Python
        overhead per tensor, but its temporaries for all tensors at once fall
        out of cache, so for large tensors the single-tensor path is faster.
    fused : bool or None, optional
        Run each step as one fused pass over each parameter's memory, with
        kernels generated from the model's stages: C compiled by the system C
        compiler on CPU (about 0.1 s per model, once per process); on CUDA,
        for float32 and bfloat16 parameters, one Triton kernel launch for all
        the tensors of a group (compiled by Triton once per model and kept in
        its on-disk cache; a learning rate given as a tensor on the device is
        read by the kernel, without a host-device synchronisation), and
        ``torch.compile`` for other dtypes and devices (seconds to a minute).
        See :attr:`compile_seconds` and :mod:`optfilters.torch.triton_kernels`.
        Results equal the default path to rounding (often exactly).
        Parameters the kernels cannot take (complex, float16, non-contiguous)
        run on the multi-tensor path; sharded (DTensor) parameters run the
        kernels on their local shards.
    capturable : bool, optional
        torch.optim's ``capturable``: step counts, NAdam's running product and
        every scalar of the step (bias corrections, coefficients, lr) are
        0-dim tensors on the parameters' device, computed from the step tensor
        by the step program's own scalar functions, so that a step reads
        nothing back to the host and can be captured in a CUDA graph.  One
        tensor at a time; not with ``fused``.  Models whose operations change
        with the step count (RAdam's rectification, SGD with dampening's first
        step) are refused with a ``ValueError``.
    differentiable : bool, optional
        torch.optim's ``differentiable``: autograd records the step (run out
        of place, one tensor at a time), so gradients flow through it to the
        parameter, its gradient, the state and a learning-rate tensor that
        requires grad (non-leaf parameters, as in torch.optim).  Not with
        ``foreach`` or ``fused``; refused (``ValueError``) for catalogue
        entries whose torch.optim counterpart has no differentiable step
        (Muon, Adafactor).
    **hyperparameters
        The model's hyperparameters by the catalogue's names, which are
        torch.optim's keywords (``lr``, ``momentum``, ``weight_decay``,
        ``maximize``, ...); ``betas=(beta1, beta2)`` and ``beta1=``/``beta2=`` are
        both accepted.  Models given as objects take ``lr``, ``weight_decay``
        and ``maximize`` only.

    Raises
    ------
    optfilters.UnknownNameError
        For an unknown catalogue name.
    optfilters.InvalidHyperparameterError
        For an unknown or out-of-range hyperparameter (in the constructor or in
        a parameter group).

    Notes
    -----
    * State is created lazily in ``self.state[p]``: ``step`` (a 0-dim float32
      tensor, as in torch.optim) and one tensor per filter memory, named by
      stage and term: ``gradient.<i>`` (Adam's ``exp_avg``, SGD's
      ``momentum_buffer``), ``second_moment.<i>`` (``exp_avg_sq``, Adagrad's
      ``sum``), ``second_moment.max`` (AMSGrad), ``center.<i>`` (centred
      RMSprop), ``peak`` (Adamax), ``adadelta.v``/``adadelta.u``, ``post.<i>``;
      stage kinds of your own name theirs (``optfilters.stages.Stage``).
      A one-pole term stores its previous output (uncorrected); higher orders
      store section memories (``<term>.s<k>.<j>``, ``<term>.z<k>``).
      Low-precision (bfloat16, float16) parameters keep their state in float32
      and have their update computed in float32, rounded once into the
      parameter.
    * Hyperparameters are read from the parameter groups at every step, so
      every ``torch.optim.lr_scheduler`` works (``CyclicLR``/``OneCycleLR`` with
      ``cycle_momentum`` rewrite ``momentum`` or ``betas``), and so does a change
      by hand of any hyperparameter between steps; the model is rebuilt (cached
      by value) only when a hyperparameter other than ``lr`` changes.  With
      changing coefficients a filter's state form is its semantics: the
      catalogue's filters keep the reference implementation's own buffers
      (torch.optim.SGD's Nesterov ``buf = mu buf + g`` with update ``g + mu buf``,
      NAdam's ``mu_product`` as state, Lion's ``m``), so runs with torch.optim's
      counterparts agree under any schedule.  A change of structure (the
      ``order`` of a designed filter) recreates the state arrays it makes stale
      at their initial value, and drops those the new structure no longer uses,
      with a :class:`optfilters.StateResetWarning`.
    * Every hyperparameter a step reads is validated at that step, before any
      parameter of any group moves: a bad value (``param_groups[0]["lr"] =
      float("nan")``, a negative lr, ``betas`` outside [0, 1)) raises an
      :class:`optfilters.InvalidHyperparameterError` (a ``ValueError``) naming it.
      Values are taken as they are, never parsed: text or bytes where a number
      is read (``lr=b"0.1"``) and anything but ``True``/``False`` where a bool
      is read (``nesterov="False"``, which torch.optim reads as true) are
      refused, naming the key, at construction, in :meth:`add_param_group` and
      at every step (naming the group).  A tensor ``lr`` is checked at construction and at every step that reads
      it on the host; where the step reads it on the device (``capturable``,
      the fused Triton kernels) only its shape and dtype are checked there.
    * A filter with a pole outside the unit circle (``momentum=1.5``) warns once
      per parameter group and stage with an :class:`optfilters.StabilityWarning`;
      marginal filters (Adagrad's accumulator) do not warn.
    * A tensor ``lr`` (and tensor ``betas``) stays a tensor in the param groups
      and is read at every step: a change in place (``lr.fill_(0.5)``) counts.
    * Scalar state follows torch.optim's rule: ``step`` and NAdam's
      ``mu_product`` are float32 tensors, float64 when
      ``torch.get_default_dtype()`` is float64.
    * :meth:`state_dict` and :meth:`load_state_dict` also speak the format of
      the torch.optim counterpart (``format="torch"``, and torch's dicts are
      recognised on loading); a dict that does not fit is refused with a
      :class:`~optfilters.torch.checkpoint.CheckpointError`
      (:mod:`optfilters.torch.checkpoint`).
    * ``torch.amp.GradScaler`` unscales the gradients and skips steps with
      inf/NaN gradients itself (the optimizer does not set
      ``_step_supports_amp_scaling``, as torch.optim's non-fused classes do not).
    * FSDP2 (``torch.distributed.fsdp.fully_shard``): DTensor parameters get
      DTensor state, sharded like them, and checkpoints go through
      ``torch.distributed.checkpoint``.  Models with a stage on whole tensors
      (Muon, Adafactor) refuse sharded parameters with a ``ValueError``.
    * Parameters whose ``grad`` is None are skipped (their state is untouched);
      sparse gradients are refused.
    * Each step runs the model's step program (:mod:`optfilters.program`),
      the same one the numpy reference executor runs.  Linear stages run in
      realisations that stay accurate in float32 for poles near 1
      (delta-operator second-order sections above order 2); see
      :class:`optfilters.stages.FilterTerm`.

    Examples
    --------
    >>> import torch
    >>> from optfilters.torch import FilterOptimizer
    >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    >>> opt = FilterOptimizer([w], "adam", lr=0.1, betas=(0.9, 0.999))
    >>> w.grad = torch.tensor([0.5, 0.5])
    >>> opt.step()
    >>> w.detach().tolist()  # Adam's first step is lr * sign(grad)
    [0.9, -2.1]

    A designed filter (4th-order Butterworth low-pass scaled to DC gain 10, a
    smoother stand-in for momentum 0.9):

    >>> import optfilters
    >>> model = optfilters.get("butterworth", order=4, cutoff=0.02, dc_gain=10.0)
    >>> opt = FilterOptimizer([w], model, lr=0.01)
    >>> opt.param_groups[0]["cutoff"], opt.model.name
    (0.02, 'butterworth')
    """

    def __init__(
        self,
        params: Iterable[Any],
        model: str | OptimizerModel | ArmaFilter,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        **hyperparameters: Any,
    ) -> None:
        for flag, value in (("foreach", foreach), ("fused", fused)):
            if value is not None and not isinstance(value, bool):
                raise ValueError(f"{flag} must be True, False or None, got {value!r}")
        for flag, value in (("capturable", capturable), ("differentiable", differentiable)):
            if not isinstance(value, bool):
                raise ValueError(f"{flag} must be True or False, got {value!r}")
        if foreach and fused:
            raise ValueError("foreach and fused cannot both be True")
        if differentiable and (foreach or fused):
            raise ValueError("differentiable=True runs one tensor at a time: it takes neither foreach nor fused")
        if capturable and fused:
            raise ValueError("capturable=True computes its scalars on the device, one tensor at a time: not with fused")
        self._source: Source = make_source(model, hyperparameters)
        if differentiable:
            _check_differentiable(self._source)
        self._init_caches()
        defaults = self._source.defaults()
        _keep_tensors(defaults, hyperparameters)
        defaults.update(foreach=foreach, fused=fused, capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)
        self.state = _State(dict, self.state)

    # ------------------------------------------------------------------ plumbing
    def _init_caches(self) -> None:
        self._plans: dict[tuple[int, torch.dtype], tuple[OptimizerModel, Plan]] = {}
        self._bound: dict[tuple[int, str], tuple[Program, tuple[Step, ...]]] = {}
        self._fused: dict[tuple[Any, ...], NativeKernel | TritonKernel | CompiledStep] = {}
        self._compile_failed: set[tuple[Any, ...]] = set()
        self._native_by_program: dict[tuple[int, str], NativeKernel | TritonKernel] = {}
        self._complete: dict[int, Program | None] = {}
        self._native_kind: dict[int, str] = {}
        self._group_states: dict[int, tuple[Any, int, list[Tensor], list[dict[str, Any]]]] = {}
        self._counters: dict[int, _StepCounter] = {}
        self._forms: dict[int, dict[str, Any]] = {}  # per group: the form of each state key (see changed_forms)
        self._group_models: dict[int, OptimizerModel] = {}
        self._capturable_checked: dict[int, Program] = {}
        self._unstable_warned: set[tuple[int, str]] = set()  # (group, filter) pairs already warned about
        accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6
        self._accelerator = bool(accelerator is not None and accelerator.current_accelerator(check_available=True))
        self._warned_no_compiler = False
        if not hasattr(self, "_fused_backend"):
            # "native": C on CPU, Triton on CUDA; "compile": torch.compile everywhere; "triton": Triton, CPU
            # tensors under Triton's interpreter (tests)
            self._fused_backend = "native"

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_source"] = self._source
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if not isinstance(self.state, _State):
            self.state = _State(dict, self.state)
        if not hasattr(self, "_plans"):
            self._init_caches()
        for group in self.param_groups:
            for key in OPTION_KEYS:
                group.setdefault(key, False if key in ("capturable", "differentiable") else None)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a parameter group; its hyperparameters are checked now (with the catalogue's messages).

        ``beta1``/``beta2`` are rewritten into ``betas`` where the model uses them;
        missing hyperparameters come from the constructor's values.

        Parameters
        ----------
        param_group : dict
            ``{"params": ..., **hyperparameters}``, as for
            :meth:`torch.optim.Optimizer.add_param_group`.

        Raises
        ------
        optfilters.errors.InvalidHyperparameterError
            If ``lr`` or another hyperparameter of the merged group is out of
            its range (the catalogue's message), or of the wrong type (text or
            bytes for a number, anything but a bool for a bool), naming the
            group (``FilterOptimizer(sgd), param group 1: nesterov must be True
            or False, got 'False' ...``).
        ValueError
            If a parameter has a shape the model cannot take (Muon: matrices
            only), naming the group, the parameter's index in it and its
            shape; as torch.optim.Muon refuses them in its constructor.  The
            group is not added.
        """
        model = None
        if isinstance(param_group, dict):
            try:
                self._source.normalise(param_group)
                merged = dict(self.defaults)
                merged.update({k: v for k, v in param_group.items() if k != "params"})
                check_lr(merged["lr"])
                model = self._source.build(merged)
            except InvalidHyperparameterError as exc:  # named like a step's errors: the group and the key
                index = len(getattr(self, "param_groups", ()))
                raise type(exc)(f"FilterOptimizer({self._source.name}), param group {index}: {exc}") from None
        super().add_param_group(param_group)
        if model is not None:
            index = len(self.param_groups) - 1
            try:
                self._check_shapes(index, self.param_groups[index], model, every=True)
            except ValueError:
                self.param_groups.pop()
                raise

    def state_dict(self, format: str = "optfilters") -> dict[str, Any]:  # type: ignore[override]
        """The optimizer's state dict: this class's own, or that of the torch.optim counterpart.

        Parameters
        ----------
        format : {"optfilters", "torch"}
            ``"optfilters"`` (the default): state under the bridge's keys
            (``gradient.0``, ...), what :meth:`load_state_dict` and
            ``torch.distributed.checkpoint`` use.  ``"torch"``: a state dict of
            the catalogue entry's torch.optim class (``CATALOGUE[name].torch_class``),
            with torch's keys (``exp_avg``, ``momentum_buffer``, ...), which
            that class's ``load_state_dict`` takes (:mod:`optfilters.torch.checkpoint`).

        Returns
        -------
        dict
            ``{"state": ..., "param_groups": ...}``; tensors are shared with the
            optimizer, as torch.optim's are (deep-copy to keep a snapshot).

        Raises
        ------
        optfilters.torch.checkpoint.CheckpointError
            For ``format="torch"`` when the model has no torch.optim counterpart.

        Examples
        --------
        >>> import torch
        >>> from optfilters.torch import FilterOptimizer
        >>> w = torch.nn.Parameter(torch.ones(2))
        >>> opt = FilterOptimizer([w], "adam", lr=0.1)
        >>> w.grad = torch.ones(2)
        >>> opt.step()
        >>> adam = torch.optim.Adam([torch.nn.Parameter(torch.ones(2))])
        >>> adam.load_state_dict(opt.state_dict(format="torch"))
        >>> sorted(adam.state_dict()["state"][0]), adam.param_groups[0]["lr"]
        (['exp_avg', 'exp_avg_sq', 'step'], 0.1)
        """
        if format not in ("optfilters", "torch"):
            raise ValueError(f"format must be 'optfilters' or 'torch', got {format!r}")
        saved = super().state_dict()
        if format == "optfilters":
            return saved
        return _convert_to_torch(self._source, saved)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict of this optimizer, or of its torch.optim counterpart; a misfit is refused.

        A dict from ``torch_class(...).state_dict()`` (``CATALOGUE[name].torch_class``,
        e.g. ``torch.optim.Adam``) is converted (``exp_avg`` to ``gradient.0``,
        ...): the run continues exactly as the torch run would after loading
        it.  A dict that does not fit (another optimizer's hyperparameters or
        state, other group sizes or shapes, state missing) raises a
        :class:`~optfilters.torch.checkpoint.CheckpointError` naming what does
        not fit, and the optimizer is left unchanged.

        As in torch.optim, the saved groups replace the hyperparameters (load
        after building a scheduler), floating state is cast to each
        parameter's dtype (``step`` excepted) and the loaded tensors alias
        those of ``state_dict`` (deep-copy it to keep it).  Two exceptions
        keep the bridge's precision for its own dicts: the filter state of
        low-precision (bfloat16, float16) parameters stays float32, and
        running products (NAdam's ``mu_product``) keep their dtype; a
        torch.optim dict gets torch's casts.

        Parameters
        ----------
        state_dict : dict
            ``{"state": ..., "param_groups": ...}`` from :meth:`state_dict`
            (either format) or from the torch.optim counterpart.

        Raises
        ------
        optfilters.torch.checkpoint.CheckpointError
            If the dict does not fit this optimizer (the optimizer is left unchanged).

        Examples
        --------
        >>> import copy, torch
        >>> from optfilters.torch import FilterOptimizer
        >>> w = torch.nn.Parameter(torch.ones(2))
        >>> opt = FilterOptimizer([w], "momentum", lr=0.1)
        >>> w.grad = torch.ones(2)
        >>> opt.step()
        >>> saved = copy.deepcopy(opt.state_dict())
        >>> opt2 = FilterOptimizer([w], "momentum", lr=0.1)
        >>> opt2.load_state_dict(saved)
        >>> float(opt2.state[w]["step"]), opt2.state[w]["gradient.0"].tolist()
        (1.0, [1.0, 1.0])

        A torch.optim checkpoint:

        >>> sgd = torch.optim.SGD([w], lr=0.1, momentum=0.9)
        >>> sgd.step()
        >>> opt3 = FilterOptimizer([w], "momentum")
        >>> opt3.load_state_dict(sgd.state_dict())
        >>> opt3.state[w]["gradient.0"].tolist(), opt3.param_groups[0]["momentum"]
        ([1.0, 1.0], 0.9)
        """
        converted, torch_format = _convert_from(self._source, state_dict)
        entry = getattr(self._source, "entry", None)
        names = {v: k for k, v in entry.torch_state.items()} if torch_format and entry is not None else {}
        self._check_fit(converted, names)
        super().load_state_dict(converted)
        saved = chain.from_iterable(g["params"] for g in converted["param_groups"])
        current = chain.from_iterable(g["params"] for g in self.param_groups)
        for saved_id, param in zip(saved, current, strict=True):
            if saved_id not in converted["state"]:
                continue
            low = param.dtype in LOW_PRECISION
            for key, value in converted["state"][saved_id].items():
                if key == "step" or not isinstance(value, Tensor) or not value.is_floating_point():
                    continue
                if low and value.dim() > 0:
                    self.state[param][key] = value.to(device=param.device, dtype=torch.float32)
                elif value.dim() == 0 and not torch_format:  # a running product keeps its precision
                    self.state[param][key] = value.to(device=self.state[param][key].device)
        self._forms.clear()
        self._group_models.clear()

    def _check_fit(self, converted: dict[str, Any], names: dict[str, str]) -> None:
        """Refuse a state dict whose group sizes or state shapes do not fit this optimizer's parameters.

        ``names`` gives the checkpoint's own names of the state keys (torch.optim's) for messages.
        """
        saved_groups = converted["param_groups"]
        sizes = [len(g["params"]) for g in self.param_groups]
        saved_sizes = [len(g["params"]) for g in saved_groups]
        if sizes != saved_sizes:
            raise CheckpointError(
                f"the checkpoint has {len(saved_sizes)} parameter group(s) of {saved_sizes} parameters; "
                f"this optimizer has {len(sizes)} of {sizes}"
            )
        where: dict[Any, tuple[Tensor, int]] = {}
        for index, (saved, group) in enumerate(zip(saved_groups, self.param_groups, strict=True)):
            for pid, param in zip(saved["params"], group["params"], strict=True):
                where[pid] = (param, index)
        specs_of: dict[tuple[int, torch.dtype], dict[str, Any]] = {}
        for pid, st in converted["state"].items():
            if pid not in where:
                continue
            param, index = where[pid]
            key = (index, _state_dtype(param))
            if key not in specs_of:
                program = Plan(self._source.build(saved_groups[index]), key[1]).program(None)
                specs_of[key] = {spec.key: spec for spec in program.state}
            specs = specs_of[key]
            shape = tuple(param.shape)
            for name, value in st.items():
                if not isinstance(value, Tensor) or (value.dim() == 0 and name not in specs):
                    continue
                expected = specs[name].shape_for(shape) if name in specs else shape
                if tuple(value.shape) != expected:
                    raise CheckpointError(
                        f"the state {names.get(name, name)!r} of parameter {pid} has shape {tuple(value.shape)}, "
                        f"the parameter {shape}: the checkpoint is of other parameters"
                    )

    # ------------------------------------------------------------------ public helpers
    @property
    def model(self) -> OptimizerModel:
        """The model of the first parameter group, with its current hyperparameters."""
        return self.group_model(0)

    def group_model(self, index: int = 0) -> OptimizerModel:
        """The model that parameter group ``index`` currently runs (its current ``lr`` included).

        Parameters
        ----------
        index : int
            Index into :attr:`param_groups`.

        Returns
        -------
        OptimizerModel
            The model built from the group's hyperparameters, with
            the group's current ``lr`` (as a scheduler has set it).

        Examples
        --------
        >>> import torch
        >>> from optfilters.torch import FilterOptimizer
        >>> opt = FilterOptimizer([torch.zeros(2, requires_grad=True)], "momentum", lr=0.1, momentum=0.5)
        >>> opt.group_model(0).filters()["gradient"].a.tolist()
        [1.0, -0.5]
        """
        group = self.param_groups[index]
        model = self._source.model(group)
        hps = dict(model.hyperparameters)
        hps["lr"] = float(group["lr"])
        return dataclasses.replace(model, hyperparameters=hps)

    @property
    def compile_seconds(self) -> float:
        """Total time spent compiling the ``fused=True`` kernels so far (0 when none were compiled)."""
        return float(sum(kernel.compile_seconds or 0.0 for kernel in self._fused.values()))

    # ------------------------------------------------------------------ evaluation point
    @torch.no_grad()
    def eval(self) -> None:
        """Move the parameters to the model's evaluation point (Schedule-Free's average ``x``), as its package does.

        For models whose stages evaluate elsewhere than at the stored
        parameter (:attr:`optfilters.OptimizerModel.has_eval_rule`; the
        ``schedulefree`` package's ``eval()``); nothing happens for other
        models, for parameters without state yet, or when already in eval
        mode.  :meth:`step` refuses to run in eval mode; :meth:`train` moves
        back.  Unlike the package, a new optimizer starts in train mode.  The
        mode is kept in each parameter group (``train_mode``), so it travels
        with ``state_dict()``.

        Examples
        --------
        >>> import torch
        >>> from optfilters.torch import FilterOptimizer
        >>> w = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
        >>> opt = FilterOptimizer([w], "sgd-schedule-free", lr=0.5)
        >>> w.grad = torch.tensor([1.0], dtype=torch.float64)
        >>> opt.step(); opt.step()
        >>> round(w.item(), 6)          # the gradient point y = 0.1 z + 0.9 x
        0.225
        >>> opt.eval(); round(w.item(), 6)   # the average x = (0.5 + 0) / 2
        0.25
        >>> opt.train(); round(w.item(), 6)
        0.225
        """
        self._swap("eval")

    @torch.no_grad()
    def train(self) -> None:
        """Move the parameters back to the training point (the inverse of :meth:`eval`)."""
        self._swap("train")

    def _swap(self, mode: str) -> None:
        for group in self.param_groups:
            training = group.get("train_mode", True) is not False
            if training == (mode == "train"):
                continue
            model = self._source.model(group)
            if model.has_eval_rule:
                program = model.swap_program(mode)
                steps = bind(program, SingleOps)
                scalars = program.scalar_values(1, float(group["lr"]))
                for p in group["params"]:
                    state = self.state[p] if p in self.state else None
                    if not state or not all(key in state for key in program.keys):
                        continue  # no step yet: the evaluation point is the parameter
                    run_single(steps, program.keys, p, p, state, scalars)
            group["train_mode"] = mode == "train"

    # ------------------------------------------------------------------ the step
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Perform one optimization step.

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model and returns the loss (run with gradients enabled).

        Returns
        -------
        The closure's loss, or None.

        Examples
        --------
        >>> import torch
        >>> from optfilters.torch import FilterOptimizer
        >>> w = torch.nn.Parameter(torch.tensor([3.0]))
        >>> opt = FilterOptimizer([w], "sgd", lr=0.25)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = (w**2).sum()
        ...     loss.backward()
        ...     return loss
        >>> opt.step(closure).item(), w.item()
        (9.0, 1.5)
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self._accelerator:  # refuses a CUDA graph capture without capturable=True, as torch.optim does
            self._accelerator_graph_capture_health_check()
        # torch.optim's rule: autograd records the step only with differentiable=True
        with torch.set_grad_enabled(bool(self.defaults.get("differentiable", False))):
            # every hyperparameter is checked before any parameter moves
            checked = [self._checked(index, group) for index, group in enumerate(self.param_groups)]
            for index, group in enumerate(self.param_groups):
                self._check_shapes(index, group, checked[index][0])
            for index, group in enumerate(self.param_groups):
                model, lr = checked[index]
                self._step_group(index, group, model, lr)
        return loss

    def _checked(self, index: int, group: dict[str, Any]) -> tuple[OptimizerModel, Any]:
        """The model and learning rate of group ``index`` at this step, validated (one-line ValueError).

        The model is cached by its hyperparameters' values, so a value is
        validated when it first appears; ``lr`` is checked at every step.  A
        tensor ``lr`` is read on the host and checked, except where the step
        reads it on the device (``capturable=True``, the fused Triton kernels):
        there only its shape and dtype are checked, its value at construction.
        """
        try:
            model = self._source.model(group)
            lr = group["lr"]
        except (InvalidHyperparameterError, InvalidFilterError) as exc:
            raise type(exc)(f"FilterOptimizer({self._source.name}), param group {index}: {exc}") from None
        except KeyError as exc:  # a key deleted from param_groups: torch.optim's groups always hold every key
            key = exc.args[0] if exc.args else None
            if key in group or key not in self._source.keys:
                raise  # not a missing group key: someone else's KeyError
            raise InvalidHyperparameterError(
                f"FilterOptimizer({self._source.name}), param group {index} has no {key!r}: it was removed "
                f"from param_groups[{index}]; set it again (the constructor's default: {self.defaults.get(key)!r})"
            ) from None
        if group.get("train_mode") is False and model.has_eval_rule:
            raise RuntimeError(
                f"FilterOptimizer({self._source.name}) is in eval mode (the parameters hold the evaluation point): "
                "call train() before step()"
            )
        kind = type(lr)
        if kind is float or kind is int:
            if not 0.0 <= lr < _INF:
                self._refuse_lr(index, lr)
            return model, float(lr)
        if not isinstance(lr, Tensor):
            return model, self._refuse_lr(index, lr)
        on_device = group.get("capturable") or (
            group.get("fused") and (lr.device.type != "cpu" or self._fused_backend == "triton")
        )
        if on_device:  # the step reads it on the device (no host-device synchronisation)
            self._refuse_lr(index, lr, read=False)
            return model, lr
        if lr.numel() != 1 or not lr.is_floating_point():
            self._refuse_lr(index, lr, read=False)
        value = lr.detach().item()
        if not 0.0 <= value < _INF:
            self._refuse_lr(index, value)
        if group.get("differentiable") and lr.requires_grad:
            return model, lr  # autograd follows the step into the learning rate
        return model, value

    def _check_shapes(self, index: int, group: dict[str, Any], model: OptimizerModel, every: bool = False) -> None:
        """Refuse, in one line naming it, a parameter whose shape a stage cannot take (Muon: matrices only).

        At a step only the parameters with a gradient; ``every`` (construction, ``add_param_group``): all.
        """
        checks = _shape_checks(model)
        if not checks:
            return
        for position, p in enumerate(group["params"]):
            if p.grad is None and not every:
                continue
            for check in checks:
                try:
                    check(tuple(p.shape))
                except ValueError as exc:
                    raise ValueError(
                        f"FilterOptimizer({self._source.name}): parameter {position} of param group {index} "
                        f"(shape {tuple(p.shape)}): {exc}"
                    ) from None

    def _refuse_lr(self, index: int, lr: Any, read: bool = True) -> Any:
        """Raise the one-line error for a bad ``lr`` of group ``index`` (or return a number given as another type)."""
        try:
            return check_lr(lr, f"param_groups[{index}]['lr']", read=read)
        except InvalidHyperparameterError as exc:
            raise InvalidHyperparameterError(f"FilterOptimizer({self._source.name}): {exc}") from None

    def _plan(self, model: OptimizerModel, dtype: torch.dtype) -> Plan:
        key = (id(model), dtype)
        cached = self._plans.get(key)
        if cached is None or cached[0] is not model:
            if len(self._plans) > 64:
                self._plans.clear()
            cached = self._plans[key] = (model, Plan(model, dtype))
        return cached[1]

    def _bind(self, program: Program, backend: str) -> tuple[Step, ...]:
        key = (id(program), backend)
        cached = self._bound.get(key)
        if cached is None or cached[0] is not program:
            ops = {"single": SingleOps, "foreach": ForeachOps, "functional": FunctionalOps, "device": DeviceScalarOps}[
                backend
            ]
            if len(self._bound) > 256:  # a schedule of momentum or betas makes a program per step
                self._bound.clear()
            cached = self._bound[key] = (program, bind(program, ops))
        return cached[1]

    def _states(self, index: int, params: list[Tensor]) -> list[dict[str, Any]]:
        """``[self.state[p] for p in params]``, reused while the state container reports no change."""
        state = self.state
        if not isinstance(state, _State):
            state = self.state = _State(dict, state)
        cached = self._group_states.get(index)
        if (
            cached is not None
            and cached[0] is state
            and cached[1] == state.version
            and len(cached[2]) == len(params)
            and all(map(operator.is_, params, cached[2]))
        ):
            return cached[3]
        states = [state[p] for p in params]
        self._group_states[index] = (state, state.version, list(params), states)
        return states

    def _check_structure(
        self, index: int, model: OptimizerModel, program: Program, group: dict[str, Any], depth: int = 0
    ) -> None:
        """A new model for group ``index`` (changed hyperparameters): drop the state its structure makes stale.

        ``depth``: the calls between :meth:`step` and this one beyond :meth:`_step_group` (for the warnings'
        ``stacklevel``, which points at the caller of ``step``: torch.optim wraps ``step`` in one more frame).
        """
        forms = self._forms.setdefault(index, {})
        stale = changed_forms(forms, program)
        if stale:
            for p in group["params"]:
                st = self.state.get(p)
                if st:
                    for key in stale:
                        st.pop(key, None)
            for key in stale:
                forms.pop(key, None)
            warnings.warn(
                f"FilterOptimizer({self._source.name}): the new hyperparameters of group {index} change the "
                f"structure of the filter state {', '.join(stale)}; it restarts from its initial value",
                StateResetWarning,
                stacklevel=5 + depth,
            )
        forms.update(program.forms)
        self._group_models[index] = model
        self._warn_if_unstable(index, model, 6 + depth)

    def _warn_if_unstable(self, index: int, model: OptimizerModel, stacklevel: int) -> None:
        """One :class:`optfilters.StabilityWarning` per group and filter whose poles leave the unit circle.

        The check (:meth:`optfilters.OptimizerModel.unstable_filters`) runs
        whenever the hyperparameters change.
        """
        warned = self._unstable_warned
        for key, radius in model.unstable_filters().items():
            if (index, key) in warned:
                continue
            warned.add((index, key))
            where = f"|z| = {radius:.6g} > 1" if radius > 1 else f"|z| = {radius:.6g}, repeated"
            warnings.warn(
                f"FilterOptimizer({self._source.name}): the {key} filter of param group {index} is UNSTABLE "
                f"(a pole at {where}): its output, and the parameters, grow without bound",
                StabilityWarning,
                stacklevel=stacklevel,
            )

    def _step_group(self, index: int, group: dict[str, Any], model: OptimizerModel, lr: Any) -> None:
        group_params: list[Tensor] = group["params"]
        all_grads = list(map(_GRAD, group_params))
        if all(map(operator.is_not, all_grads, repeat(None))):
            params, grads = group_params, all_grads
        else:
            params = [p for p, g in zip(group_params, all_grads, strict=True) if g is not None]
            grads = [g for g in all_grads if g is not None]
            if not params:
                return
        if any(map(_IS_SPARSE, grads)):
            position = next(i for i, p in enumerate(group_params) if p.grad is not None and p.grad.is_sparse)
            raise ValueError(
                f"FilterOptimizer({self._source.name}) does not support sparse gradients "
                f"(parameter {position} of group {index} has one); use dense gradients"
            )
        if not all(map(_is_plain, params)):
            _check_sharding(self._source.name, model, index, group_params, params)
        differentiable = group.get("differentiable")
        if group.get("capturable"):
            self._step_capturable(index, group, model, lr, params, grads)
            return
        states = self._states(index, params)
        counter = self._counters.get(index)
        if counter is None:
            counter = self._counters[index] = _StepCounter()
        ts = counter.advance(group["params"], params, states, self.state)
        if model is not self._group_models.get(index):
            self._check_structure(index, model, self._plan(model, _state_dtype(params[0])).program(ts[0]), group)
        foreach = group.get("foreach")
        if differentiable:
            mode = "functional"
        elif group.get("fused"):
            mode = "fused"
        elif foreach or (foreach is None and not any(map(_IS_CPU, params))):
            mode = "foreach"  # torch.optim's default too: multi-tensor off the CPU
        else:
            mode = "single"
        if mode == "fused" and counter.fast and ts.count(ts[0]) == len(ts):
            # The usual fused step: the group ran as one native call last time, with the same program.
            program = self._plan(model, _state_dtype(params[0])).program(ts[0])
            kernel = self._native_by_program.get((id(program), self._native_kind.get(index, "")))
            if kernel is not None and kernel.program is program and self._complete.get(index) is program:
                try:
                    scalars = slot_values(program, ts[0], lr)
                    if _run_kernel(kernel, params, grads, states, scalars, _state_dtype(params[0])):
                        return
                except KeyError:  # a state tensor was removed by hand: the general path recreates it
                    pass
        if mode in ("single", "functional"):
            for p, grad, state, t in zip(params, grads, states, ts, strict=True):
                program = self._plan(model, _state_dtype(p)).program(t)
                _init_state(program, p, state)
                env = _advance_products(program, p, state, t, lr) if program.products else None
                run = run_single if mode == "single" else run_functional
                run(self._bind(program, mode), program.keys, p, grad, state, program.scalar_values(t, lr, env))
            return
        dtype0, device0 = params[0].dtype, params[0].get_device()
        if (
            ts.count(ts[0]) == len(ts)
            and all(map(operator.is_, map(_DTYPE, params), repeat(dtype0)))
            and all(map(operator.eq, map(Tensor.get_device, params), repeat(device0)))
        ):
            buckets: dict[Any, list[int]] = {(None, None, ts[0]): list(range(len(params)))}
        else:
            buckets = defaultdict(list)
            for i, (p, t) in enumerate(zip(params, ts, strict=True)):
                buckets[(p.get_device(), p.dtype, t)].append(i)
        for (_, _, t), members in buckets.items():
            if len(members) == len(params):
                bucket_params, bucket_grads, bucket_states = params, grads, states
            else:
                bucket_params = [params[i] for i in members]
                bucket_grads = [grads[i] for i in members]
                bucket_states = [states[i] for i in members]
            program = self._plan(model, _state_dtype(bucket_params[0])).program(t)
            keyset = program.keyset
            for p, state in zip(bucket_params, bucket_states, strict=True):
                if not keyset <= state.keys():
                    _init_state(program, p, state)
            complete = len(buckets) == 1 and not program.products and all(map(_is_plain, bucket_params))
            self._complete[index] = program if complete else None
            if not program.products:
                self._run_bucket(index, mode, program, t, lr, None, bucket_params, bucket_grads, bucket_states)
                continue
            # running products (NAdam's mu_product) are per parameter: parameters with equal values run together
            by_env: dict[tuple[float, ...], list[int]] = defaultdict(list)
            for i, env in enumerate(_advance_products_of(program, bucket_states, t, lr)):
                by_env[env].append(i)
            for env, chosen in by_env.items():
                self._run_bucket(
                    index,
                    mode,
                    program,
                    t,
                    lr,
                    env,
                    [bucket_params[i] for i in chosen],
                    [bucket_grads[i] for i in chosen],
                    [bucket_states[i] for i in chosen],
                )

    def _step_capturable(
        self,
        index: int,
        group: dict[str, Any],
        model: OptimizerModel,
        lr: Any,
        params: list[Tensor],
        grads: list[Tensor],
    ) -> None:
        """``capturable=True``: step counts, running products and every scalar on the parameter's device.

        The scalar slots are the program's own functions evaluated on the step
        tensor (float64, float32 on MPS), so nothing is read back to the host and
        the step can be captured in a CUDA graph; one tensor at a time, in
        place (out of place with ``differentiable=True``).
        """
        states = self._states(index, params)
        mode = "functional" if group.get("differentiable") else "device"
        if model is not self._group_models.get(index):
            self._check_structure(index, model, self._plan(model, _state_dtype(params[0])).program(1), group, depth=1)
        for p, grad, state in zip(params, grads, states, strict=True):
            plan = self._plan(model, _state_dtype(p))
            program = plan.program(1)
            if self._capturable_checked.get(id(program)) is not program:
                _check_capturable(plan, program, model.name)
                if len(self._capturable_checked) > 64:
                    self._capturable_checked.clear()
                self._capturable_checked[id(program)] = program
            _init_state(program, p, state)
            step = state.get("step")
            if not isinstance(step, Tensor) or step.device != p.device or step.dtype != torch.float32:
                # torch.optim's capturable rule: a float32 step on the parameter's device
                value = step if step is not None else 0.0
                state["step"] = step = torch.as_tensor(value, dtype=torch.float32).to(p.device).clone()
            step.add_(1.0)
            t = step.to(_device_scalar_dtype(p.device))
            env = None
            if program.products:
                env = []
                for product in program.products:
                    value = state.get(product.key)
                    if not isinstance(value, Tensor) or value.device != p.device:
                        start = value if value is not None else product.start(lr)
                        state[product.key] = value = torch.as_tensor(start, dtype=_scalar_dtype()).to(p.device)
                    if product.reads_before:  # ASGD's eta and mu: this step reads the previous step's value
                        env.append(value.to(t.dtype, copy=True))
                    product.apply(value, t, lr, _as_tensor_dtype())
                    if not product.reads_before:
                        env.append(value.to(t.dtype))
            scalars = program.scalar_values(t, lr, env)  # type: ignore[arg-type]
            run = run_functional if mode == "functional" else run_single
            run(self._bind(program, mode), program.keys, p, grad, state, scalars)

    def _run_bucket(
        self,
        index: int,
        mode: str,
        program: Program,
        t: int,
        lr: float | Tensor,
        env: tuple[float, ...] | None,
        params: list[Tensor],
        grads: list[Tensor],
        states: list[dict[str, Any]],
    ) -> None:
        """Parameters of one device, dtype, step count (and running products) on the fused or multi-tensor path."""
        scalars = slot_values(program, t, lr, env)
        if mode == "fused":
            self._native_kind[index] = self._kernel_kind(params[0])
            self._run_fused(program, params, grads, states, scalars)
            return
        floats = as_floats(scalars)
        if len(params) == 1:  # the same kernels, without the list overhead
            run_single(self._bind(program, "single"), program.keys, params[0], grads[0], states[0], floats)
        else:
            run_foreach(self._bind(program, "foreach"), program.keys, params, grads, states, floats)

    def _kernel_kind(self, param: Tensor) -> str:
        """The generated kernel a fused bucket of ``param``'s kind runs: a C kind, ``triton:<kind>`` or ''."""
        backend = self._fused_backend
        kind = native_kind(param)
        if kind is not None and backend == "native":
            return kind
        if backend in ("native", "triton"):
            tkind = triton_kind(param, interpret=backend == "triton")
            if tkind is not None:
                return f"triton:{tkind}"
        return ""

    def _run_fused(
        self,
        program: Program,
        params: list[Tensor],
        grads: list[Tensor],
        states: list[dict[str, Any]],
        scalars: list[float] | DeviceLr,
    ) -> None:
        """One bucket on the fused path: C on CPU, Triton on CUDA, else torch.compile, else foreach."""
        if not all(map(_is_plain, params)):
            # Sharded (DTensor) parameters, FSDP2's: an elementwise step runs on the local shards as they are.
            params, grads = [_local(p) for p in params], [_local(g) for g in grads]
            states = [{k: _local(v) for k, v in st.items()} for st in states]
        keys = program.keys
        p0 = params[0]
        kind = self._kernel_kind(p0)
        state_dtype = _state_dtype(p0)
        kernel: NativeKernel | TritonKernel | None = None
        if kind.startswith("triton:"):
            kernel = self._triton(program, kind)
        elif kind and compiler() is not None:
            try:
                kernel = self._native(program, kind)
            except RuntimeError as exc:  # the compiler failed: run the multi-tensor path from now on
                warnings.warn(
                    f"fused=True could not compile its kernel ({exc}); using the multi-tensor path", stacklevel=4
                )
                self._fused_backend = "foreach"
        if kernel is not None:
            try:
                if _run_kernel(kernel, params, grads, states, scalars, state_dtype):
                    return
            except Exception as exc:
                if not isinstance(kernel, TritonKernel) or kernel.compile_seconds is not None:
                    raise  # it compiled and ran before: a real error
                self._triton_failed(program, kind, exc)
                kernel = None
        if kernel is not None:
            # some tensors are not contiguous (or have mixed dtypes): those run on the multi-tensor path
            fit = [kernel.fits(p, g, st, state_dtype) for p, g, st in zip(params, grads, states, strict=True)]
            if any(fit):
                chosen = [i for i, ok in enumerate(fit) if ok]
                done = _run_kernel(
                    kernel,
                    [params[i] for i in chosen],
                    [grads[i] for i in chosen],
                    [states[i] for i in chosen],
                    scalars,
                    state_dtype,
                )
                assert done
                rest = [i for i, ok in enumerate(fit) if not ok]
                params, grads, states = [params[i] for i in rest], [grads[i] for i in rest], [states[i] for i in rest]
        elif not p0.is_complex() and (p0.device.type != "cpu" or self._fused_backend == "compile"):
            low = p0.dtype in LOW_PRECISION
            key = ("compile", program.signature, low, p0.device.type)
            if key not in self._compile_failed:
                step = self._fused.get(key)
                if step is None:
                    step = self._fused[key] = CompiledStep(program, low)
                assert isinstance(step, CompiledStep)
                try:
                    step(params, grads, states, as_floats(scalars))
                    return
                except Exception as exc:
                    if step.compile_seconds is not None:  # it compiled and ran before: a real error
                        raise
                    # Compilation failed before anything ran (e.g. dynamo's recompile limit in older torch):
                    # this program runs on the multi-tensor path from now on.
                    self._compile_failed.add(key)
                    warnings.warn(
                        f"fused=True could not compile its step with torch.compile ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}); using the multi-tensor path",
                        stacklevel=4,
                    )
        elif native_kind(p0) is not None and compiler() is None and not self._warned_no_compiler:
            self._warned_no_compiler = True
            warnings.warn("fused=True found no C compiler; running the multi-tensor path instead", stacklevel=4)
        if params:
            run_foreach(self._bind(program, "foreach"), keys, params, grads, states, as_floats(scalars))

    def _native(self, program: Program, kind: str) -> NativeKernel:
        fast = self._native_by_program.get((id(program), kind))
        if fast is not None and fast.program is program:
            assert isinstance(fast, NativeKernel)
            return fast
        key = ("native", program.signature, kind)
        kernel = self._fused.get(key)
        if kernel is None:
            kernel = self._fused[key] = NativeKernel(program, kind)
        assert isinstance(kernel, NativeKernel)
        if len(self._native_by_program) > 64:
            self._native_by_program.clear()
        self._native_by_program[(id(program), kind)] = kernel
        return kernel

    def _triton(self, program: Program, kind: str) -> TritonKernel | None:
        """The Triton kernel of ``program`` (``kind`` is ``triton:<dtype>``), or None when Triton cannot run it."""
        fast = self._native_by_program.get((id(program), kind))
        if fast is not None and fast.program is program:
            assert isinstance(fast, TritonKernel)
            return fast
        key = ("triton", program.signature, kind, lr_dependent_slots(program))
        if key in self._compile_failed:
            return None
        kernel = self._fused.get(key)
        if kernel is None:
            try:
                kernel = TritonKernel(program, kind.removeprefix("triton:"), interpret=self._fused_backend == "triton")
            except (ImportError, RuntimeError) as exc:  # no triton, or an operation without a Triton form
                self._triton_failed(program, kind, exc)
                return None
            self._fused[key] = kernel
        assert isinstance(kernel, TritonKernel)
        if len(self._native_by_program) > 64:
            self._native_by_program.clear()
        self._native_by_program[(id(program), kind)] = kernel
        return kernel

    def _triton_failed(self, program: Program, kind: str, exc: Exception) -> None:
        """Remember that Triton could not compile ``program``: it takes the next path (torch.compile, foreach)."""
        self._compile_failed.add(("triton", program.signature, kind, lr_dependent_slots(program)))
        self._fused.pop(("triton", program.signature, kind, lr_dependent_slots(program)), None)
        self._native_by_program.pop((id(program), kind), None)
        message = str(exc).splitlines()[0] if str(exc) else ""
        warnings.warn(
            f"fused=True could not use its Triton kernel ({type(exc).__name__}: {message}); "
            "using torch.compile or the multi-tensor path",
            stacklevel=5,
        )


class _State(defaultdict):  # type: ignore[type-arg]
    """``optimizer.state``: a ``defaultdict(dict)`` that counts changes of its entries.

    A step reuses a group's list of per-parameter state dicts while no entry
    was added, replaced or removed (tensor keys hash in Python, so looking
    them up is a noticeable part of a step's overhead).
    """

    def __init__(self, default_factory: Any = dict, *args: Any, **kwargs: Any) -> None:
        self.version = 0
        super().__init__(default_factory, *args, **kwargs)

    def _changed(self) -> None:
        self.version = getattr(self, "version", 0) + 1

    def __setitem__(self, key: Any, value: Any) -> None:
        self._changed()
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        self._changed()
        super().__delitem__(key)

    def clear(self) -> None:
        self._changed()
        super().clear()

    def pop(self, *args: Any) -> Any:
        self._changed()
        return super().pop(*args)

    def popitem(self) -> Any:
        self._changed()
        return super().popitem()

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self._changed()
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._changed()
        super().update(*args, **kwargs)


class _StepCounter:
    """The ``step`` tensors of a group as 0-dim views of one buffer, so that a step advances them in one operation.

    Each ``state[p]["step"]`` stays an ordinary 0-dim float32 tensor (saved,
    loaded and deep-copied like torch.optim's); when one is replaced (e.g. by
    ``load_state_dict``) or a parameter gets its first state, the buffer is
    rebuilt from the current values.
    """

    def __init__(self) -> None:
        self.buffer: Tensor | None = None
        self.views: list[Tensor] = []
        self.members: list[Tensor] = []
        self.position: dict[Tensor, int] = {}
        self.fast = False  # whether the last advance was the usual step

    def advance(
        self,
        group_params: list[Tensor],
        params: list[Tensor],
        states: list[dict[str, Any]],
        all_states: Any,
    ) -> list[int]:
        """Add 1 to the step of each of ``params`` (creating it at 0 first) and return the new values."""
        buffer = self.buffer
        if (
            buffer is not None
            and len(params) == len(self.views)
            and all(map(operator.is_, params, self.members))
            and all(map(operator.is_, map(_GET_STEP, states), self.views))
        ):
            buffer.add_(1.0)  # the usual step: every parameter of the group, as last time
            self.fast = True
            values = buffer.tolist()
            if values.count(values[0]) == len(values):
                return [int(values[0])] * len(values)
            return [int(v) for v in values]
        self.fast = False
        positions = []
        for p, st in zip(params, states, strict=True):
            i = self.position.get(p)
            if i is None or st.get("step") is not self.views[i]:
                positions = self._rebuild(group_params, params, all_states, states)
                break
            positions.append(i)
        buffer = self.buffer
        assert buffer is not None
        if len(positions) == buffer.numel():
            buffer.add_(1.0)
            values = buffer.tolist()
            return [int(values[i]) for i in positions]
        for i in positions:
            self.views[i].add_(1.0)
        values = buffer.tolist()
        return [int(values[i]) for i in positions]

    def _rebuild(
        self, group_params: list[Tensor], params: list[Tensor], all_states: Any, states: list[dict[str, Any]]
    ) -> list[int]:
        stepping = set(params)
        members = [p for p in group_params if p in stepping or "step" in all_states.get(p, {})]
        values = []
        for p in members:
            step = all_states[p].get("step") if p in all_states else None
            values.append(float(step) if step is not None else 0.0)
        self.buffer = torch.tensor(values, dtype=_scalar_dtype())
        self.views = [self.buffer[i] for i in range(len(members))]
        self.position = {p: i for i, p in enumerate(members)}
        self.members = members
        for p, view in zip(members, self.views, strict=True):
            all_states[p]["step"] = view
        return [self.position[p] for p in params]


def _run_kernel(
    kernel: NativeKernel | TritonKernel,
    params: list[Tensor],
    grads: list[Tensor],
    states: list[dict[str, Any]],
    scalars: list[float] | DeviceLr,
    state_dtype: torch.dtype,
) -> bool:
    """Run a generated kernel (a C kernel takes the slots as floats, a Triton kernel may read a tensor lr)."""
    if isinstance(kernel, NativeKernel):
        return kernel.run(params, grads, states, as_floats(scalars), state_dtype)
    return kernel.run(params, grads, states, scalars, state_dtype)


def _device_scalar_dtype(device: torch.device) -> torch.dtype:
    """The dtype of scalars computed on ``device`` (float64 where the device has it)."""
    return torch.float32 if device.type == "mps" else torch.float64


def _check_capturable(plan: Plan, program: Program, name: str) -> None:
    """Refuse a model whose step cannot run without the host: operations that change with the step count,
    or scalar functions that need numbers (tried once on tensors of the ``meta`` device, which has no values)."""
    varying = plan.varying_stages
    if varying:
        keys = ", ".join(stage.key for stage in varying)
        raise ValueError(
            f"capturable=True needs a step whose operations are the same at every step; {name}'s {keys} stage "
            "changes them with the step count (its first step, or a regime such as RAdam's rectification)"
        )
    t = torch.ones((), dtype=torch.float64, device="meta")
    env = [t for _ in program.products]
    reads = dict(program.env_scalars)
    for k, fn in enumerate(program.scalars):
        try:
            value = reads[k](t, 0.5, env) if k in reads else fn(t, 0.5)  # type: ignore[arg-type]
        except (RuntimeError, TypeError, ValueError, AttributeError, NotImplementedError) as exc:
            raise ValueError(
                f"capturable=True computes the step's scalars on the device; scalar {k} of {name}'s step "
                f"needs a number ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
            ) from None
        if not isinstance(value, (Tensor, float, int)):
            raise ValueError(f"capturable=True: scalar {k} of {name}'s step is a {type(value).__name__}")


def _is_plain(tensor: Tensor) -> bool:
    """True for a tensor or parameter (not a subclass such as a DTensor, whose data lives in its local shard)."""
    return type(tensor) is Tensor or type(tensor) is torch.nn.Parameter


def _local(tensor: Any) -> Any:
    """The local shard of a DTensor (a view of its data), else the tensor itself."""
    to_local = getattr(tensor, "to_local", None)
    return to_local() if to_local is not None and not _is_plain(tensor) else tensor


def _check_sharding(name: str, model: OptimizerModel, index: int, group_params: list[Any], params: list[Any]) -> None:
    """Refuse sharded (DTensor, FSDP2) parameters where a stage acts on whole tensors (Muon, Adafactor)."""
    whole = [stage.key for stage in model.pipeline if not stage.elementwise]
    if not whole:
        return
    for p in params:
        if any(placement.is_shard() for placement in getattr(p, "placements", ())):
            position = next(i for i, q in enumerate(group_params) if q is p)
            raise ValueError(
                f"FilterOptimizer({name}): parameter {position} of group {index} is sharded (DTensor, e.g. FSDP2) and "
                f"{', '.join(whole)} acts on the whole tensor, not elementwise: a shard would get a wrong step; "
                "keep these parameters unsharded"
            )


def _check_differentiable(source: Source) -> None:
    """``differentiable=True`` only where the torch.optim counterpart, if any, takes it (not Muon, Adafactor)."""
    entry = _counterpart(source)
    if entry is not None and "differentiable" not in inspect.signature(_torch_class(entry)).parameters:
        raise ValueError(
            f"differentiable=True: {source.name} follows {entry.torch_class}, which has no differentiable step"
        )


def _keep_tensors(defaults: dict[str, Any], given: dict[str, Any]) -> None:
    """Tensor hyperparameters stay tensors, as in torch.optim (``lr``; ``betas``), read again at every step.

    So a change in place (``lr.fill_(0.5)``) takes effect at the next step.
    """
    lr = given.get("lr")
    if isinstance(lr, Tensor):
        defaults["lr"] = lr
    betas = given.get("betas")
    if "betas" in defaults and isinstance(betas, (tuple, list)) and any(isinstance(b, Tensor) for b in betas):
        defaults["betas"] = tuple(betas)


def _advance_products(
    program: Program, param: Tensor, state: dict[str, Any], t: int, lr: Any = 0.0
) -> tuple[float, ...]:
    """Advance the scalars ``program`` carries in ``state`` for step ``t``; returns the values the step reads.

    Each is a 0-dim tensor, created at its start (:meth:`RunningProduct.start`
    at ``lr``) in torch.optim's scalar dtype (:func:`_scalar_dtype`), and
    advanced in place as torch.optim advances it: NAdam's ``mu_product`` is
    multiplied by the step's factor (the rounding is that of the tensor's
    dtype: float32, float64 under a float64 default dtype, the parameter's
    dtype after a torch ``load_state_dict``), read after; ASGD's ``eta`` and
    ``mu`` are read, then replaced by ``torch.as_tensor`` of this step's value.
    """
    env: list[float] = []
    lr = _host(lr)
    dtype = _as_tensor_dtype()
    for product in program.products:
        value = state.get(product.key)
        if value is None:
            value = state[product.key] = torch.full((), product.start(lr), dtype=_scalar_dtype())
        if product.reads_before:
            env.append(value.tolist())  # type: ignore[arg-type]
        product.apply(value, t, lr, dtype)
        if not product.reads_before:
            env.append(value.tolist())  # type: ignore[arg-type]  # on the CPU, as in torch.optim: no device sync
    return tuple(env)


def _advance_products_of(
    program: Program, states: list[dict[str, Any]], t: int, lr: Any = 0.0
) -> list[tuple[float, ...]]:
    """:func:`_advance_products` for the parameters of a bucket: one multiplication per product when it can."""
    if any(product.reads_before for product in program.products):
        return [_advance_products(program, None, state, t, lr) for state in states]  # type: ignore[arg-type]
    columns = []
    for product in program.products:
        values = []
        for state in states:
            value = state.get(product.key)
            if value is None:
                value = state[product.key] = torch.full((), product.init, dtype=_scalar_dtype())
            values.append(value)
        dtype = values[0].dtype
        if len(values) > 1 and all(v.dtype == dtype and v.is_cpu and v.dim() == 0 for v in values):
            torch._foreach_mul_(values, product.factor(t))
            columns.append(torch.stack(values).tolist())
        else:
            factor = product.factor(t)
            for v in values:
                v.mul_(factor)
            columns.append([v.tolist() for v in values])
    return [tuple(row) for row in zip(*columns, strict=True)] if columns else [() for _ in states]


_SHAPE_CHECKS: dict[int, tuple[OptimizerModel, tuple[Callable[[tuple[int, ...]], None], ...]]] = {}


def _shape_checks(model: OptimizerModel) -> tuple[Callable[[tuple[int, ...]], None], ...]:
    """The stages' shape checks that can refuse a shape (those that override :meth:`Stage.check_shape`)."""
    cached = _SHAPE_CHECKS.get(id(model))
    if cached is not None and cached[0] is model:
        return cached[1]
    checks = tuple(stage.check_shape for stage in model.pipeline if type(stage).check_shape is not Stage.check_shape)
    if len(_SHAPE_CHECKS) > 256:
        _SHAPE_CHECKS.clear()
    _SHAPE_CHECKS[id(model)] = (model, checks)
    return checks


def _host(lr: Any) -> float:
    """A tensor ``lr`` as a Python float (torch.optim.ASGD's ``_to_scalar``), else ``lr``."""
    return float(lr.detach().item()) if isinstance(lr, Tensor) else lr


def _as_tensor_dtype() -> str:
    """The precision of ``torch.as_tensor(x)`` for a Python float x: the default dtype's (float32 unless float64)."""
    return "float64" if torch.get_default_dtype() == torch.float64 else "float32"


def _init_state(program: Program, param: Tensor, state: dict[str, Any]) -> None:
    """Create the state tensors that ``program`` needs and ``state`` lacks."""
    for spec in program.state:
        if spec.key in state:
            continue
        if spec.shape is not None:  # a statistic of its own shape (factored)
            dtype = param.dtype if param.is_complex() else _state_dtype(param)
            size = spec.shape_for(tuple(param.shape))
            state[spec.key] = torch.full(size, spec.init, dtype=dtype, device=param.device)
            continue
        if param.is_complex():
            value: Any = complex(spec.init, spec.init)
            state[spec.key] = torch.full_like(param, value, memory_format=torch.preserve_format)
        else:
            dtype = _state_dtype(param)
            state[spec.key] = torch.full_like(param, spec.init, dtype=dtype, memory_format=torch.preserve_format)
