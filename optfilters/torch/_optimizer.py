"""``FilterOptimizer``: any optfilters model as a ``torch.optim.Optimizer``."""

from __future__ import annotations

import dataclasses
import operator
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from itertools import chain, repeat
from typing import Any

import torch
from torch import Tensor

from .._filter import ArmaFilter
from .._model import OptimizerModel
from ._compiled import CompiledStep
from ._kernels import LOW_PRECISION, ForeachOps, SingleOps, Step, bind, run_foreach, run_single
from ._native import NativeKernel, compiler, native_kind
from ._program import Plan, Program
from ._resolve import OPTION_KEYS, Source, make_source
from .triton_kernels import DeviceLr, TritonKernel, as_floats, lr_dependent_slots, slot_values, triton_kind

__all__ = ["FilterOptimizer"]


_GRAD = operator.attrgetter("grad")
_DTYPE = operator.attrgetter("dtype")
_IS_SPARSE = operator.attrgetter("is_sparse")
_IS_CPU = operator.attrgetter("is_cpu")
_GET_STEP = operator.methodcaller("get", "step")


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
        run on the multi-tensor path.
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
      ``cycle_momentum`` rewrite ``momentum`` or ``betas``); the model is rebuilt
      only when a hyperparameter other than ``lr`` changes.
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
        **hyperparameters: Any,
    ) -> None:
        for flag, value in (("foreach", foreach), ("fused", fused)):
            if value is not None and not isinstance(value, bool):
                raise ValueError(f"{flag} must be True, False or None, got {value!r}")
        if foreach and fused:
            raise ValueError("foreach and fused cannot both be True")
        self._source: Source = make_source(model, hyperparameters)
        self._init_caches()
        defaults = self._source.defaults()
        if isinstance(hyperparameters.get("lr"), Tensor):  # kept as given: the fused CUDA kernel reads it there
            defaults["lr"] = hyperparameters["lr"]
        defaults.update(foreach=foreach, fused=fused)
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
                group.setdefault(key, None)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a parameter group; its hyperparameters are checked now (with the catalogue's messages).

        ``beta1``/``beta2`` are rewritten into ``betas`` where the model uses them;
        missing hyperparameters come from the constructor's values.
        """
        if isinstance(param_group, dict):
            self._source.normalise(param_group)
            merged = dict(self.defaults)
            merged.update({k: v for k, v in param_group.items() if k != "params"})
            self._source.build(merged)
        super().add_param_group(param_group)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict; float32 filter state of low-precision parameters stays float32.

        torch.optim casts floating state tensors to each parameter's dtype; for
        bfloat16/float16 parameters that would round the filter memories, so
        they are restored from ``state_dict`` in float32 afterwards.  As in
        torch.optim, the loaded tensors alias those of ``state_dict``
        (deep-copy it to keep it).

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
        """
        super().load_state_dict(state_dict)
        saved = chain.from_iterable(g["params"] for g in state_dict["param_groups"])
        current = chain.from_iterable(g["params"] for g in self.param_groups)
        for saved_id, param in zip(saved, current, strict=True):
            if param.dtype not in LOW_PRECISION or saved_id not in state_dict["state"]:
                continue
            for key, value in state_dict["state"][saved_id].items():
                if key != "step" and isinstance(value, Tensor) and value.is_floating_point():
                    self.state[param][key] = value.to(device=param.device, dtype=torch.float32)

    # ------------------------------------------------------------------ public helpers
    @property
    def model(self) -> OptimizerModel:
        """The model of the first parameter group, with its current hyperparameters."""
        return self.group_model(0)

    def group_model(self, index: int = 0) -> OptimizerModel:
        """The model that parameter group ``index`` currently runs (its current ``lr`` included).

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

    # ------------------------------------------------------------------ the step
    @torch.no_grad()
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
        for index, group in enumerate(self.param_groups):
            self._step_group(index, group)
        return loss

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
            ops = SingleOps if backend == "single" else ForeachOps
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

    def _step_group(self, index: int, group: dict[str, Any]) -> None:
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
        model = self._source.model(group)
        lr = group["lr"]
        if not isinstance(lr, Tensor):
            lr = float(lr)
        elif not (group.get("fused") and (lr.device.type != "cpu" or self._fused_backend == "triton")):
            lr = float(lr.item())  # else the Triton kernel reads the tensor (no host-device synchronisation)
        states = self._states(index, params)
        counter = self._counters.get(index)
        if counter is None:
            counter = self._counters[index] = _StepCounter()
        ts = counter.advance(group["params"], params, states, self.state)
        foreach = group.get("foreach")
        if group.get("fused"):
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
        if mode == "single":
            for p, grad, state, t in zip(params, grads, states, ts, strict=True):
                program = self._plan(model, _state_dtype(p)).program(t)
                _init_state(program, p, state)
                keys = program.keys
                run_single(self._bind(program, "single"), keys, p, grad, state, program.scalar_values(t, lr))
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
            self._complete[index] = program if len(buckets) == 1 else None
            scalars = slot_values(program, t, lr)
            if mode == "fused":
                self._native_kind[index] = self._kernel_kind(bucket_params[0])
                self._run_fused(program, bucket_params, bucket_grads, bucket_states, scalars)
            else:
                scalars = as_floats(scalars)
                if len(bucket_params) == 1:  # the same kernels, without the list overhead
                    run_single(
                        self._bind(program, "single"),
                        program.keys,
                        bucket_params[0],
                        bucket_grads[0],
                        bucket_states[0],
                        scalars,
                    )
                else:
                    run_foreach(
                        self._bind(program, "foreach"),
                        program.keys,
                        bucket_params,
                        bucket_grads,
                        bucket_states,
                        scalars,
                    )

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
