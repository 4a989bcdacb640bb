"""``optfilters convert-checkpoint``: the command-line half of the checkpoint tests.

The library half, tests/optfilters/torch/test_checkpoint.py, says what a conversion between FilterOptimizer
and torch.optim must keep; these tests run the same conversions through the command.
"""

from __future__ import annotations

from pathlib import Path

import torch
from click.testing import CliRunner
from optfilters.cli import main

from optfilters.torch import FilterOptimizer
from tests.support.torch_setup import make_params, one_thread, trained  # noqa: F401 (one_thread: autouse fixture)

# ----------------------------------------------------------------------------- the command line


def test_convert_checkpoint_on_the_command_line(tmp_path: Path) -> None:
    params = make_params()
    adam = trained(torch.optim.Adam(params, lr=0.01))
    source = tmp_path / "ckpt.pt"
    torch.save({"model": {"w": torch.ones(1)}, "optimizer": adam.state_dict(), "epoch": 3}, source)
    converted = tmp_path / "ours.pt"
    runner = CliRunner()
    result = runner.invoke(
        main, ["convert-checkpoint", str(source), str(converted), "--optimizer", "adam", "--key", "optimizer"]
    )
    assert result.exit_code == 0, result.output
    loaded = torch.load(converted, weights_only=True)
    assert loaded["epoch"] == 3 and torch.equal(loaded["model"]["w"], torch.ones(1))
    opt = FilterOptimizer(make_params(), "adam", lr=0.01)
    opt.load_state_dict(loaded["optimizer"])
    assert torch.equal(opt.state[opt.param_groups[0]["params"][0]]["gradient.0"], adam.state[params[0]]["exp_avg"])
    back = tmp_path / "torch.pt"
    args = [str(converted), str(back), "--optimizer", "adam", "--key", "optimizer", "--to", "torch"]
    result = runner.invoke(main, ["convert-checkpoint", *args])
    assert result.exit_code == 0, result.output
    fresh = torch.optim.Adam(make_params(), lr=0.01)
    fresh.load_state_dict(torch.load(back, weights_only=True)["optimizer"])
    # bad inputs: one line, exit 2
    out = str(tmp_path / "x.pt")
    for args, message in (
        ([str(source), out, "--optimizer", "sgd", "--key", "optimizer"], "has no 'momentum'"),
        ([str(source), out, "--optimizer", "adam"], "not an optimizer state dict but a dict whose entry 'optimizer'"),
        ([str(source), out, "--optimizer", "adam"], "holds one: give --key optimizer\n"),
        ([str(source), out, "--optimizer", "adam", "--key", "opt"], "has no key 'opt'"),
        ([str(tmp_path / "missing.pt"), out, "--optimizer", "adam"], "missing.pt"),
        ([str(source), out, "--optimizer", "butterworth", "--key", "optimizer"], "no torch.optim counterpart"),
        ([str(source), out, "--optimizer", "adma", "--key", "optimizer"], "did you mean 'adam'"),
    ):
        result = runner.invoke(main, ["convert-checkpoint", *args])
        assert result.exit_code == 2, result.output
        assert message in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "x.pt").exists()


def test_convert_checkpoint_refuses_a_missing_folder_and_its_own_source(tmp_path: Path) -> None:
    """Issue 13: a TARGET in a missing folder is one line naming the folder (was a torch RuntimeError
    traceback), and a TARGET that is the SOURCE file (same path, another spelling or a hard link) is
    refused, leaving the source as it was (it was silently overwritten)."""
    source = tmp_path / "ck.pt"
    torch.save(trained(torch.optim.Adam(make_params(), lr=0.01)).state_dict(), source)
    before = source.read_bytes()
    link = tmp_path / "link.pt"
    link.hardlink_to(source)
    runner = CliRunner()
    for target, message in (
        ("/nonexistent_dir_zz/sub/out.pt", "folder '/nonexistent_dir_zz/sub' does not exist"),
        (str(source), "is the SOURCE file"),
        (str(tmp_path / "." / "ck.pt"), "is the SOURCE file"),
        (str(link), "is the SOURCE file"),
        (str(tmp_path / "ck.pt" / "out.pt"), "is not a folder"),
    ):
        result = runner.invoke(main, ["convert-checkpoint", str(source), target, "--optimizer", "adam"])
        assert result.exit_code == 2, (target, result.output)
        assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr
    assert source.read_bytes() == before
    assert not Path("/nonexistent_dir_zz").exists()
