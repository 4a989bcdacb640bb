"""The public surface: every exported name is documented with a runnable example; imports stay light."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest
from numpydoc.docscrape import FunctionDoc

PUBLIC_MODULES = [
    "optfilters",
    "optfilters.catalogue",
    "optfilters.errors",
    "optfilters.filters",
    "optfilters.gains",
    "optfilters.hyperparameters",
    "optfilters.model",
    "optfilters.stages",
    "optfilters.parameter_stages",
    "optfilters.matrix_stages",
    "optfilters.program",
    "optfilters.analysis",
    "optfilters.table",
    "optfilters.validation",
    "optfilters.closed_loop",
    "optfilters.noisy_quadratic",
    "optfilters.describing_function",
    "optfilters.large_signal",
    "optfilters.iqc",
    "optfilters.observe",
    "optfilters.network",
    "optfilters.identify",
    "optfilters.dither",
    "optfilters.probes",
    "optfilters.audit",
    "optfilters.plot",
    "optfilters.trajectory",
    "optfilters.torch",
    "optfilters.torch.averaged",
]


def _public_objects() -> list[tuple[str, object]]:
    found: dict[int, tuple[str, object]] = {}
    for module_name in PUBLIC_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                found.setdefault(id(obj), (f"{module_name}.{name}", obj))
    return sorted(found.values(), key=lambda item: item[0])


@pytest.mark.parametrize(("qualname", "obj"), _public_objects(), ids=lambda v: v if isinstance(v, str) else "")
def test_documented_with_example(qualname: str, obj: object) -> None:
    doc = inspect.getdoc(obj)
    assert doc, f"{qualname} has no docstring"
    if inspect.isclass(obj) and issubclass(obj, BaseException):
        return
    assert "Examples\n--------" in doc or ">>>" in doc, f"{qualname} has no Examples section"
    if inspect.isfunction(obj):
        documented = {p.name.split(":")[0].strip() for p in FunctionDoc(obj)["Parameters"]}
        params = [
            p.name
            for p in inspect.signature(obj).parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and not p.name.startswith("_")
        ]
        # Functions that document a Parameters section must document every parameter.
        if documented:
            missing = [p for p in params if not any(p in d.replace(" ", "").split(",") for d in documented)]
            assert not missing, f"{qualname} does not document {missing}"
    if inspect.isclass(obj):
        for attr, member in vars(obj).items():
            if attr.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
                continue
            assert inspect.getdoc(member), f"{qualname}.{attr} has no docstring"


def test_import_is_light() -> None:
    code = "import sys, optfilters; print(' '.join(m for m in ('torch', 'matplotlib', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
