"""``fused=True``: generated C kernels on CPU (torch.compile elsewhere) equal the default path to rounding."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

import optfilters
from optfilters import CATALOGUE
from optfilters.program import Op
from optfilters.torch import FilterOptimizer
from optfilters.torch._native import compiler, generate_source
from optfilters.torch._program import Plan

needs_compiler = pytest.mark.skipif(compiler() is None, reason="no C compiler")


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fused_settings() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for name, entry in CATALOGUE.items():
        for example in ({}, *entry.examples):
            if name == "custom" and "b" not in example:
                continue
            cases.append((name, {k: v for k, v in example.items() if k != "lr"}))
    return cases


def fusable(name: str, kwargs: dict[str, Any], form: str = "c") -> bool:
    """True when every operation of the entry's step has a ``form`` (``c`` or ``triton``) expression.

    Entries with an operation that has none (a per-tensor reduction: the Cautious mask) run ``fused=True``
    on the multi-tensor path, with one warning.
    """
    plan = Plan(optfilters.get(name, **kwargs), torch.float64)
    ops = [ins.op for t in (1, 2, None) for ins in plan.program(t).instructions if isinstance(ins.op, Op)]
    return all(getattr(op, form) is not None for op in ops)


def run_fused_pair(
    name: str, kwargs: dict[str, Any], dtype: torch.dtype, steps: int = 30, **fused: Any
) -> tuple[Any, Any]:
    shapes = [(7, 5), (33,), (1,)]  # odd sizes: vector bodies and scalar tails
    if CATALOGUE[name].parameter_ndim == 2:
        shapes = [(7, 5), (3, 11), (1, 1)]
    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(s, generator=gen).to(dtype) for s in shapes]
    runs = []
    for options in ({}, {"fused": True}):
        params = [torch.nn.Parameter(p.clone()) for p in start]
        opt = FilterOptimizer(params, name, lr=1e-2, **kwargs, **options)
        if options:
            for key, value in fused.items():
                setattr(opt, key, value)
        gen.manual_seed(1)
        for _ in range(steps):
            for p in params:
                p.grad = (torch.randn(p.shape, generator=gen, dtype=torch.float64) + 0.1 * p.detach().double()).to(
                    dtype
                )
            opt.step()
        runs.append((params, opt))
    return runs[0], runs[1]


@needs_compiler
@pytest.mark.parametrize(("name", "kwargs"), fused_settings(), ids=lambda v: str(v))
def test_native_kernels_match_the_default_path(name: str, kwargs: dict[str, Any]) -> None:
    if not fusable(name, kwargs):
        # operations without a C form (the Cautious mask, Muon's and Adafactor's whole-tensor operations):
        # the multi-tensor path, one warning
        with pytest.warns(UserWarning, match="has no C form") as caught:
            (expected, _), (got, opt) = run_fused_pair(name, kwargs, torch.float64)
        assert len([w for w in caught if "C form" in str(w.message)]) == 1
        assert not any(key[0] == "native" for key in opt._fused)
        for e, g in zip(expected, got, strict=True):
            torch.testing.assert_close(g, e, rtol=0, atol=0)  # the multi-tensor path: the same operations
        return
    (expected, _), (got, opt) = run_fused_pair(name, kwargs, torch.float64)
    assert any(key[0] == "native" for key in opt._fused)  # the C kernel ran
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-13)


@needs_compiler
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("adam", {}), ("momentum", {}), ("butterworth", {"order": 4}), ("lion", {}), ("adadelta", {})],
    ids=lambda v: str(v),
)
def test_native_kernels_in_low_precision(name: str, kwargs: dict[str, Any], dtype: torch.dtype) -> None:
    (expected, _), (got, opt) = run_fused_pair(name, kwargs, dtype)
    for e, g in zip(expected, got, strict=True):
        assert g.dtype == dtype
        if dtype == torch.float32:
            torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)
        else:  # one float32 update rounded once into bfloat16: at most one bfloat16 step apart
            torch.testing.assert_close(g.float(), e.float(), rtol=2**-7, atol=1e-3)
    assert all(v.dtype == torch.float32 for v in opt.state[got[0]].values())


@needs_compiler
def test_non_contiguous_parameters_fall_back_to_the_multi_tensor_path() -> None:
    base = torch.randn(6, 4, dtype=torch.float64)
    runs = []
    for fused in (False, True):
        weights = torch.nn.Parameter(base.clone().t())  # a transposed, non-contiguous leaf
        other = torch.nn.Parameter(torch.ones(5, dtype=torch.float64))
        opt = FilterOptimizer([weights, other], "adam", lr=0.1, fused=fused)
        for _ in range(5):
            weights.grad = torch.ones_like(weights) * 0.3
            other.grad = torch.full_like(other, -0.2)
            opt.step()
        runs.append((weights.detach().clone(), other.detach().clone()))
    for a, b in zip(*runs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


@needs_compiler
def test_compile_time_is_reported() -> None:
    (_, _), (_, opt) = run_fused_pair("qhadam", {"nu1": 0.8}, torch.float64, steps=2)
    assert opt.compile_seconds >= 0.0
    source = generate_source(Plan(optfilters.get("adam"), torch.float32).program(1), "float32")
    assert "sqrtf(" in source and "#pragma omp" in source


def test_torch_compile_path() -> None:
    """The path used off the CPU (CUDA), forced here on CPU: inductor kernels from the same program."""
    pytest.importorskip("torch._inductor")
    if compiler() is None:
        pytest.skip("inductor needs a C++ compiler on CPU")
    (expected, _), (got, opt) = run_fused_pair("momentum", {}, torch.float64, steps=5, _fused_backend="compile")
    assert any(key[0] == "compile" for key in opt._fused)
    assert opt.compile_seconds > 0.0
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-13)


def test_torch_compile_failure_falls_back_to_the_multi_tensor_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A program torch.compile cannot compile (seen on CUDA: dynamo's recompile limit) runs exactly, with a warning."""
    from optfilters.torch import _compiled

    def refuse(self: Any, *args: Any) -> None:
        raise RuntimeError("recompile limit hit\nmore detail")

    monkeypatch.setattr(_compiled.CompiledStep, "__call__", refuse)
    with pytest.warns(
        UserWarning, match="could not compile its step with torch.compile .RuntimeError: recompile limit"
    ):
        (expected, _), (got, opt) = run_fused_pair("adam", {}, torch.float64, steps=5, _fused_backend="compile")
    assert opt._compile_failed  # remembered: later steps do not try again
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=0, atol=0)


@pytest.mark.parametrize("options", [{"foreach": True}, {"foreach": False}, {"fused": True}], ids=str)
def test_state_edits_between_steps_are_honoured(options: dict[str, Any]) -> None:
    """Resetting or replacing state by hand (as people do) acts like it does with torch.optim."""
    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(s, generator=gen, dtype=torch.float64) for s in [(4, 3), (5,)]]
    grads = [[torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in start] for _ in range(12)]

    def train(opt_options: dict[str, Any], edit: bool) -> list[torch.Tensor]:
        params = [torch.nn.Parameter(p.clone()) for p in start]
        opt = FilterOptimizer(params, "sgd", lr=0.1, momentum=0.9, dampening=0.5, **opt_options)
        for k, step_grads in enumerate(grads):
            for p, g in zip(params, step_grads, strict=True):
                p.grad = g.clone()
            if edit and k == 4:
                opt.state[params[0]] = {}  # a fresh start for one parameter
            if edit and k == 7:
                opt.state[params[1]]["gradient.0"].zero_()  # momentum buffer reset in place
            if edit and k == 9:
                opt.state[params[1]]["gradient.0"] = torch.ones_like(params[1])  # replaced
            opt.step()
        assert float(opt.state[params[0]]["step"]) == (8 if edit else 12)
        return [p.detach().clone() for p in params]

    reference = train({"foreach": False}, edit=True)
    for got, expected in zip(train(options, edit=True), reference, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-13, atol=1e-14)
    assert not torch.equal(train(options, edit=False)[0], reference[0])  # the edits mattered


def test_without_a_working_compiler_fused_falls_back_to_the_multi_tensor_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import optfilters.torch._native as native
    import optfilters.torch.optimizer as optimizer_module

    monkeypatch.setattr(native, "_FLAGS", [*native._FLAGS, "--no-such-flag"])  # every compilation fails
    with pytest.warns(UserWarning, match="could not compile its kernel"):
        (expected, _), (got, opt) = run_fused_pair("adam", {"amsgrad": True}, torch.float64, steps=4)
    assert opt._fused_backend == "foreach"
    for e, g in zip(expected, got, strict=True):
        assert torch.equal(e, g)
    monkeypatch.setattr(optimizer_module, "compiler", lambda: None)
    with pytest.warns(UserWarning, match="found no C compiler"):
        (expected, _), (got, _) = run_fused_pair("momentum", {}, torch.float64, steps=4)
    for e, g in zip(expected, got, strict=True):
        assert torch.equal(e, g)
