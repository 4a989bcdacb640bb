"""``capturable=True``: the step runs on the device without reading anything back to the host.

Step counts, NAdam's running product and every scalar of the step (bias
corrections, lr, filter coefficients) are 0-dim tensors on the parameters'
device, computed by the step program's own scalar functions; so the step can
be captured in a CUDA graph.  Checked on CPU: the capturable path equals the
default path, and a step reads no tensor on the host (``item``, ``tolist``,
``float()``, ``bool()`` are made to fail).  Models whose operations change with
the step count (RAdam, SGD with dampening) are refused with a clear error.
The CUDA graph itself is tested where a GPU is present.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

from optfilters.torch import FilterOptimizer

CASES: list[tuple[str, dict[str, Any]]] = [
    ("adam", {}),
    ("adamw", {"weight_decay": 0.1}),
    ("amsgrad", {}),
    ("nadam", {}),
    ("adamax", {}),
    ("adagrad", {"lr_decay": 0.01}),
    ("adadelta", {"lr": 1.0}),
    ("rmsprop", {"centered": True, "momentum": 0.5}),
    ("nesterov", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9}),
    ("butterworth", {"order": 4, "cutoff": 0.05}),
    ("qhadam", {}),
]


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _run(name: str, kwargs: dict[str, Any], capturable: bool, steps: int = 60, **options: Any) -> FilterOptimizer:
    params = [torch.nn.Parameter(torch.linspace(-1, 1, 6, dtype=torch.float64)), torch.nn.Parameter(torch.ones(2, 2))]
    lr = kwargs.pop("lr", 0.01) if "lr" in kwargs else 0.01
    opt = FilterOptimizer(params, name, lr=lr, capturable=capturable, **kwargs, **options)
    for _ in range(steps):
        for p in params:
            p.grad = torch.cos(3 * p.detach()) + 2 * p.detach()
        opt.step()
    return opt


def _flat(opt: FilterOptimizer) -> torch.Tensor:
    return torch.cat([p.detach().double().flatten() for p in opt.param_groups[0]["params"]])


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=str)
def test_capturable_equals_the_default_path(name: str, kwargs: dict[str, Any]) -> None:
    ours = _run(name, dict(kwargs), capturable=True)
    reference = _run(name, dict(kwargs), capturable=False)
    error = float((_flat(ours) - _flat(reference)).abs().max() / _flat(reference).abs().max())
    # NAdam's running product is float32, as in torch.optim, and pow on tensors may differ from Python's in the
    # last bit of mu_t: a float32 rounding apart at most
    assert error <= (1e-9 if name == "nadam" else 1e-13), f"{name}: {error:.3g}"
    for p in ours.param_groups[0]["params"]:
        step = ours.state[p]["step"]
        assert step.device == p.device and step.dtype == torch.float32 and float(step) == 60


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=str)
def test_a_capturable_step_reads_nothing_on_the_host(
    name: str, kwargs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    opt = _run(name, dict(kwargs), capturable=True, steps=2)  # the first steps build and check the program

    def host_read(self: torch.Tensor, *args: Any) -> Any:
        raise AssertionError("a capturable step read a tensor on the host")

    for method in ("item", "tolist", "__float__", "__bool__", "__int__", "__index__", "numpy"):
        monkeypatch.setattr(torch.Tensor, method, host_read)
    for _ in range(3):
        opt.step()
    monkeypatch.undo()
    assert float(opt.state[opt.param_groups[0]["params"][0]]["step"]) == 5


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("radam", {}, r"radam's normaliser stage changes them with the step count"),
        ("sgd", {"momentum": 0.9, "dampening": 0.5}, r"sgd's gradient stage changes them"),
    ],
)
def test_steps_that_change_with_the_step_count_are_refused(name: str, kwargs: dict[str, Any], message: str) -> None:
    p = torch.nn.Parameter(torch.ones(3))
    opt = FilterOptimizer([p], name, capturable=True, **kwargs)
    p.grad = torch.ones(3)
    with pytest.raises(ValueError, match=message):
        opt.step()
    assert torch.equal(p.detach(), torch.ones(3))


def test_capturable_options() -> None:
    p = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(ValueError, match="not with fused"):
        FilterOptimizer([p], "adam", capturable=True, fused=True)
    with pytest.raises(ValueError, match="capturable must be True or False"):
        FilterOptimizer([p], "adam", capturable=1)  # type: ignore[arg-type]
    assert FilterOptimizer([p], "adam", capturable=True).param_groups[0]["capturable"] is True


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
@pytest.mark.parametrize(("name", "kwargs"), [("adam", {}), ("nadam", {}), ("butterworth", {"order": 4})], ids=str)
def test_a_cuda_graph_of_the_step_replays_the_eager_steps(name: str, kwargs: dict[str, Any]) -> None:
    def make() -> tuple[list[torch.nn.Parameter], FilterOptimizer]:
        params = [torch.nn.Parameter(torch.linspace(-1, 1, 1000, device="cuda"))]
        params[0].grad = torch.zeros_like(params[0])
        return params, FilterOptimizer(params, name, lr=0.01, capturable=True, **kwargs)

    grads = [torch.randn(1000, device="cuda", generator=torch.Generator("cuda").manual_seed(k)) for k in range(8)]
    eager_params, eager = make()
    for g in grads:
        eager_params[0].grad.copy_(g)
        eager.step()
    params, opt = make()
    params[0].grad.copy_(grads[0])
    opt.step()  # warm-up outside the graph: state created, kernels chosen
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.stream(stream), torch.cuda.graph(graph):
        opt.step()
    torch.cuda.current_stream().wait_stream(stream)
    for g in grads[1:]:
        params[0].grad.copy_(g)
        graph.replay()
    torch.cuda.synchronize()
    torch.testing.assert_close(params[0].detach(), eager_params[0].detach(), rtol=1e-5, atol=1e-6)
    assert float(opt.state[params[0]]["step"]) == len(grads)
