"""What every figure source shares: Check records, the summary and exit code of ``optfilters figures``, progress
bars, deterministic outputs (the main job twice leaves ``git status`` clean), and the modules' command lines.
"""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from optfilters.papers import (
    DIGITS,
    EXACT_RTOL,
    FIGURE_RMS,
    MACHINE_FIGURE_RMS,
    MACHINE_RTOL,
    ROUNDING_LEVEL,
    SOURCES,
    Check,
    check_table,
    checks_of,
    deterministic,
    plain_numbers,
    recording_kept,
    reporting,
    rounded,
    run_source,
    save_figure,
    summary_lines,
    write_outputs,
)

from tests.support.fake_source import fake_source

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- Check records


def test_check_close_relative_and_absolute() -> None:
    c = Check.close("gain", 10.0 + 5e-9, 10.0, 1e-9)
    assert c.error == pytest.approx(5e-10, rel=1e-6) and c.passed  # relative: 5e-9 / 10
    assert not Check.close("gain", 10.0 + 1e-7, 10.0, 1e-9).passed
    assert Check.close("zero", 1e-12, 0.0, 1e-11).error == pytest.approx(1e-12)  # zero reference: absolute
    assert not Check.close("x", float("nan"), 1.0, 1.0).passed
    assert Check.close("abs", 2.0, 1.0, 1.5, relative=False).passed


def test_check_within_and_holds() -> None:
    bound = Check.within("error", 0.02, high=0.03)
    assert bound.passed and bound.error == 0.02 and bound.tolerance == 0.03 and bound.margin == pytest.approx(2 / 3)
    assert not Check.within("error", 0.04, high=0.03).passed
    ratio = Check.within("ratio", 1.3, 0.85, 1.25)
    assert not ratio.passed and ratio.error == pytest.approx(0.05) and ratio.reference == "[0.85, 1.25]"
    inside = Check.within("ratio", 1.05, 0.85, 1.25)
    assert inside.passed and inside.margin == pytest.approx(0.0)
    assert not Check.within("missing", None, 0.0, 1.0).passed
    assert Check.holds("fact", True).passed and not Check.holds("fact", False).passed
    c = Check.within("ratio", 1.3, 0.85, 1.25)
    assert Check.from_dict(json.loads(json.dumps(c.as_dict()))) == c


def test_checks_of_refuses_duplicate_names() -> None:
    with pytest.raises(ValueError, match="two checks are named 'a'"):
        checks_of({"checks": [Check.holds("a", True), Check.holds("a", True)]})
    assert checks_of({}) == []


def test_summary_names_the_worst_and_the_failed() -> None:
    numbers = {
        "checks": [
            Check.close("tight", 1.0 + 5e-10, 1.0, 1e-9),
            Check.close("loose", 1.0, 1.0, 1e-3),
            Check.within("ratio", 2.0, 0.5, 1.5),
        ]
    }
    lines, failed = summary_lines("demo", numbers)
    assert lines[0] == "demo: 3 checks, 1 FAILED; worst: ratio (value 2, allowed [0.5, 1.5])"
    assert lines[1] == "  FAILED ratio (value 2, allowed [0.5, 1.5])"
    assert [c.name for c in failed] == ["ratio"]
    lines, failed = summary_lines("demo", {"checks": numbers["checks"][:2]})
    assert lines == ["demo: 2 checks, all passed; worst: tight (error 5e-10, tolerance 1e-09)"] and not failed


def test_check_table_lists_every_check_with_its_verdict() -> None:
    checks = [
        Check.close("gain", 1.5, 1.0, 1e-3),
        Check.within("error", 2e-13, high=1e-12),
        Check.within("ratio", 0.4, 0.5, 1.5),
        Check.holds("converges", True),
        Check.within("missing", None, high=1.0),
    ]
    header, rule, *rows = check_table(checks)
    assert header.startswith("| check | value |") and rule == "|---|---|---|---|---|"
    assert rows == [
        "| gain | 1.5 | 1 | 0.5 (0.001) | no |",
        "| error | 2e-13 | <= 1e-12 | 2e-13 (1e-12) | yes |",
        "| ratio | 0.4 | [0.5, 1.5] | 0.1 | no |",
        "| converges | yes | holds |  | yes |",
        "| missing | n/a | <= 1 | n/a (1) | no |",
    ]


def test_write_outputs_rounds_and_keeps_machine_dependent_numbers_coarse(tmp_path: Path) -> None:
    numbers = {"exact": 1 / 3, "run": {"ratio": 0.99812, "first_step": 487}, "checks": [Check.holds("a", True)]}
    write_outputs(tmp_path, numbers, "# t", machine_dependent=("run",))
    saved = json.loads((tmp_path / "numbers.json").read_text())
    assert saved["exact"] == 0.3333333333  # DIGITS = 10 significant digits
    assert saved["run"] == {"ratio": 1.0, "first_step": 490}
    assert saved["checks"][0]["name"] == "a" and saved["checks"][0]["passed"] is True
    assert plain_numbers({"x": math.inf}) == {"x": None}


def test_deterministic_block_restores_the_run_conditions() -> None:
    torch = pytest.importorskip("torch")
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    with deterministic(5):
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
        first = torch.rand(3)
    with deterministic(5):
        assert torch.equal(first, torch.rand(3))
    assert torch.get_num_threads() == threads and torch.are_deterministic_algorithms_enabled() == det


# ----------------------------------------------------------------------------- a fake source


def test_progress_reporter_sees_every_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[tuple[str, int]] = []

    @contextlib.contextmanager
    def record(label: str, total: int) -> Iterator[Any]:
        yield lambda n=1: seen.append((label, n))

    with fake_source(monkeypatch, fail=False), reporting(record):
        from optfilters.papers import reproduce

        reproduce("fake", tmp_path)
    assert seen == [("fake run: 3 steps", 1)] * 3


def test_module_entry_point_exit_codes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any) -> None:
    with fake_source(monkeypatch, fail=True):
        assert run_source("fake", [str(tmp_path / "out")]) == 1
    assert "FAILED late-phase ratio" in capsys.readouterr().out
    with fake_source(monkeypatch, fail=False):
        assert run_source("fake", [str(tmp_path / "out"), "--quick"]) == 0


# ----------------------------------------------------------------------------- the real sources


@pytest.mark.parametrize("source", list(SOURCES))
def test_every_source_reports_passing_checks(quick_figures: tuple[dict, Path], source: str) -> None:
    numbers, out = quick_figures
    checks = checks_of(numbers[source])
    assert checks, f"{source} reports no Check records in numbers['checks'] (see optfilters.papers.Check)"
    assert all(c.passed for c in checks), [c.name for c in checks if not c.passed]
    text = (out / source / "captions.md").read_text() + (out / source / "numbers.json").read_text()
    assert "Wall time" not in text and '"seconds"' not in text


def test_committed_outputs_hold_no_timings() -> None:
    for path in sorted((REPO / "figures").rglob("*")):
        if path.suffix in (".md", ".json"):
            text = path.read_text()
            assert "Wall time" not in text and '"seconds"' not in text, path


@pytest.mark.parametrize("source", list(SOURCES))
def test_module_command_lines_handle_help_and_bad_options(source: str, tmp_path: Path) -> None:
    module = f"optfilters.papers.{source}"
    shown = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"usage: python -m {module}") and "--quick" in shown.stdout
    assert list(tmp_path.iterdir()) == []  # nothing run, no ./--help/ folder
    for bad in (["--bogus"], ["a", "b"], ["-x"], ["missing/deep"], [""], ["/proc/optfilters-figures"]):
        done = subprocess.run(
            [sys.executable, "-m", module, *bad], capture_output=True, text=True, timeout=120, cwd=tmp_path
        )
        assert done.returncode == 2, (bad, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "error:" in done.stderr and done.stdout == ""
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- reproducibility tolerance


def _write(folder: Path, numbers: dict[str, Any], captions: str = "# t\n", **kwargs: Any) -> list[str]:
    with recording_kept() as kept:
        write_outputs(folder, numbers, captions, **kwargs)
    return kept


def _committed(folder: Path) -> tuple[bytes, bytes]:
    return (folder / "numbers.json").read_bytes(), (folder / "captions.md").read_bytes()


def test_a_number_within_its_tolerance_keeps_the_committed_files_byte_for_byte(tmp_path: Path) -> None:
    numbers = {"gain": 10.0, "steps": 300, "checks": [Check.close("gain", 10.0 + 1e-15, 10.0, 1e-9)]}
    _write(tmp_path, numbers, "gain 10.00000000 measured\n")
    before = _committed(tmp_path)
    moved = {
        "gain": 10.0 * (1 + 0.5 * EXACT_RTOL),
        "steps": 300,
        "checks": [Check.close("gain", 10.0 + 3e-15, 10.0, 1e-9)],  # its error: 1e-16 -> 3e-16, far below 1e-9
    }
    kept = _write(tmp_path, moved, "gain 10.00000001 measured\n")  # one unit in the last written digit
    assert _committed(tmp_path) == before
    assert kept == ["numbers.json", "captions.md"]
    assert json.loads(json.dumps(plain_numbers(moved, DIGITS)))["gain"] != json.loads(before[0])["gain"]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"gain": 10.0 * (1 + 3 * EXACT_RTOL)}, "beyond EXACT_RTOL"),
        ({"steps": 301}, "an exact integer"),
        ({"checks": [Check.close("gain", 10.1, 10.0, 1e-9)]}, "a verdict changed"),
        ({"label": "other"}, "a string"),
        ({"extra": 1.0}, "a new entry"),
    ],
)
def test_a_change_beyond_tolerance_is_written(tmp_path: Path, change: dict[str, Any], why: str) -> None:
    numbers: dict[str, Any] = {"gain": 10.0, "steps": 300, "label": "a", "checks": [Check.holds("ok", True)]}
    _write(tmp_path, numbers)
    kept = _write(tmp_path, {**numbers, **change}, "# t2\n")
    saved = json.loads((tmp_path / "numbers.json").read_text())
    assert saved == json.loads(json.dumps(plain_numbers({**numbers, **change}, DIGITS))), why
    assert (tmp_path / "captions.md").read_text() == "# t2\n" and kept == []  # captions follow numbers.json


def test_machine_dependent_and_solver_entries_have_their_looser_tolerances(tmp_path: Path) -> None:
    numbers = {"run": {"loss": 0.015, "steps": 480}, "rate": 0.66668, "exact": 0.5}
    options = {"machine_dependent": ("run",), "solver_tolerance": {"rate": 2e-5}}
    _write(tmp_path, numbers, **options)
    before = _committed(tmp_path)
    # the edge-of-stability spread (final loss 0.015 on one machine, 0.012 on another) and one bisection step
    kept = _write(tmp_path, {"run": {"loss": 0.012, "steps": 500}, "rate": 0.66669, "exact": 0.5}, **options)
    assert _committed(tmp_path) == before and kept == ["numbers.json"]
    far = 0.015 * (1 - MACHINE_RTOL) * 0.9
    _write(tmp_path, {**numbers, "run": {"loss": far, "steps": 480}}, **options)
    assert json.loads((tmp_path / "numbers.json").read_text())["run"]["loss"] == rounded(far, 2)
    _write(tmp_path, {**numbers, "rate": 0.66668 + 3e-5}, **options)
    assert json.loads((tmp_path / "numbers.json").read_text())["rate"] == 0.66671


@pytest.mark.parametrize("damage", ["absent", "corrupt", "a list"])
def test_an_absent_or_corrupt_committed_file_is_rewritten(tmp_path: Path, damage: str) -> None:
    numbers = {"gain": 10.0}
    _write(tmp_path, numbers)
    good = _committed(tmp_path)
    target = tmp_path / "numbers.json"
    if damage == "absent":
        target.unlink()
    else:
        target.write_text('{"gain": 10.0' if damage == "corrupt" else "[10.0]")
    (tmp_path / "captions.md").write_bytes(b"\xff\xfe not utf-8")
    assert _write(tmp_path, numbers) == []
    assert _committed(tmp_path) == good


def test_captions_are_compared_by_the_numbers_they_quote(tmp_path: Path) -> None:
    _write(tmp_path, {"x": 1.0}, "rate 0.6667 at kappa 25\n")
    assert _write(tmp_path, {"x": 1.0}, "rate 0.6666 at kappa 25\n") == ["captions.md"]  # one unit, kept
    assert (tmp_path / "captions.md").read_text() == "rate 0.6667 at kappa 25\n"
    assert _write(tmp_path, {"x": 1.0}, "rate 0.6665 at kappa 25\n") == []  # two units: written
    assert (tmp_path / "captions.md").read_text() == "rate 0.6665 at kappa 25\n"
    _write(tmp_path, {"x": 1.0}, "rates 0.6665 at kappa 25\n")  # other words: written
    assert (tmp_path / "captions.md").read_text() == "rates 0.6665 at kappa 25\n"
    # a machine-dependent source's captions: its relative tolerance too
    _write(tmp_path, {"run": 0.015}, "final loss 0.015\n", machine_dependent=("run",))
    assert _write(tmp_path, {"run": 0.012}, "final loss 0.012\n", machine_dependent=("run",)) == [
        "numbers.json",
        "captions.md",
    ]
    assert (tmp_path / "captions.md").read_text() == "final loss 0.015\n"


def _plot(
    path: Path, ys: list[float], *, pixel: bool = False, filled: bool = False, **kwargs: Any
) -> tuple[str, list[str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.0))  # a source's figure size and resolution
    ax.plot(ys)
    if filled:
        ax.fill_between(range(len(ys)), ys, color="tab:blue")
    if pixel:  # one pixel changed: a black one in the white margin
        fig.figimage(np.zeros((1, 1, 3)), xo=3, yo=3)
    with recording_kept() as kept:
        name = save_figure(fig, path, dpi=140, **kwargs)
    return name, kept


def test_a_png_with_a_few_changed_pixels_is_kept_a_different_plot_rewritten(tmp_path: Path) -> None:
    from matplotlib.testing.compare import compare_images

    target = tmp_path / "line.png"
    _plot(target, [0.0, 1.0, 0.5])
    committed = target.read_bytes()
    fresh = tmp_path / "other" / "line.png"
    fresh.parent.mkdir()
    _plot(fresh, [0.0, 1.0, 0.5], pixel=True)
    assert fresh.read_bytes() != committed
    rms = compare_images(str(target), str(fresh), tol=0.0, in_decorator=True)["rms"]
    assert f"{rms:.1g}" == "0.4"  # README: one changed pixel is 0.4 (a source's 7.5 x 4 in figure at 140 dpi)
    assert _plot(target, [0.0, 1.0, 0.5], pixel=True) == ("line.png", ["line.png"])
    assert target.read_bytes() == committed
    assert sorted(tmp_path.iterdir()) == sorted([fresh.parent, target])  # no diff image left behind
    assert _plot(target, [1.0, 0.0, 0.2, 0.9]) == ("line.png", [])
    assert target.read_bytes() != committed


def test_a_machine_dependent_png_has_the_looser_rms_tolerance(tmp_path: Path) -> None:
    from matplotlib.testing.compare import compare_images

    target, fresh = tmp_path / "loss.png", tmp_path / "f" / "loss.png"
    fresh.parent.mkdir()
    _plot(target, [1.0, 0.5, 0.3, 0.2])
    _plot(fresh, [1.0, 0.5, 0.302, 0.2])  # a training path a little off
    rms = compare_images(str(target), str(fresh), tol=0.0, in_decorator=True)["rms"]
    assert FIGURE_RMS < rms <= MACHINE_FIGURE_RMS
    committed = target.read_bytes()
    assert _plot(target, [1.0, 0.5, 0.302, 0.2], machine_dependent=True)[1] == ["loss.png"]
    assert target.read_bytes() == committed
    assert _plot(target, [1.0, 0.5, 0.302, 0.2])[1] == [] and target.read_bytes() == fresh.read_bytes()
    # a plot that changes a large part of its area is rewritten even at the machine-dependent tolerance
    assert _plot(target, [1.0, 0.5, 0.302, 0.2], filled=True, machine_dependent=True)[1] == []
    assert target.read_bytes() != fresh.read_bytes()


@pytest.mark.parametrize("damage", ["absent", "corrupt", "another size"])
def test_an_absent_corrupt_or_resized_committed_png_is_rewritten(tmp_path: Path, damage: str) -> None:
    target = tmp_path / "line.png"
    _plot(target, [0.0, 1.0])
    good = target.read_bytes()
    if damage == "absent":
        target.unlink()
    elif damage == "corrupt":
        target.write_bytes(good[: len(good) // 2])
    else:
        _plot(target, [0.0, 1.0], pixel=False)
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5.0, 4.0))
        ax.plot([0.0, 1.0])
        save_figure(fig, target, dpi=140)
    assert _plot(target, [0.0, 1.0])[1] == []
    assert target.read_bytes() == good


def test_the_summary_line_counts_the_kept_outputs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any) -> None:
    with fake_source(monkeypatch, fail=False):
        assert run_source("fake", [str(tmp_path)]) == 0
        assert "kept" not in capsys.readouterr().out
        committed = (tmp_path / "numbers.json").read_text()
        (tmp_path / "numbers.json").write_text(committed.replace('"value": 1.0', '"value": 1.0000000001', 1))
        before = (tmp_path / "numbers.json").read_bytes()
        assert run_source("fake", [str(tmp_path)]) == 0
    assert (tmp_path / "numbers.json").read_bytes() == before
    assert "; 1 output kept (within tolerance of the files there)" in capsys.readouterr().out.splitlines()[0]


def test_numbers_at_the_level_of_rounding_agree(tmp_path: Path) -> None:
    """A fitted error 1.1e-16 on one machine is 0 on another (copernicus_l5): kept; 1e-11 is a change: written."""
    _write(tmp_path, {"fitted_pole_error": 1.110223025e-16}, "error 1.1e-16\n")
    before = _committed(tmp_path)
    assert _write(tmp_path, {"fitted_pole_error": 0.0}, "error 0\n") == ["numbers.json", "captions.md"]
    assert _committed(tmp_path) == before
    assert _write(tmp_path, {"fitted_pole_error": 3.0 * ROUNDING_LEVEL}, f"error {3.0 * ROUNDING_LEVEL:g}\n") == []
    assert json.loads((tmp_path / "numbers.json").read_text())["fitted_pole_error"] == 3.0 * ROUNDING_LEVEL
    assert (tmp_path / "captions.md").read_text() == f"error {3.0 * ROUNDING_LEVEL:g}\n"


def test_a_string_quoting_a_number_is_compared_by_that_number(tmp_path: Path) -> None:
    """A check's reference "<= 0.854275" quotes a machine-dependent bound (iqc_worst_case): compared as that number."""
    options = {"machine_dependent": ("checks",)}
    _write(tmp_path, {"checks": [Check.within("observed rate", 0.63, high=0.854275)]}, **options)
    before = _committed(tmp_path)
    moved = {"checks": [Check.within("observed rate", 0.65, high=0.854177)]}  # reference "<= 0.854177"
    assert _write(tmp_path, moved, **options) == ["numbers.json"]
    assert _committed(tmp_path) == before
    _write(tmp_path, {"checks": [Check.within("observed rate", 0.63, high=0.854275)], "title": "x"}, **options)
    _write(tmp_path, {"checks": [Check.within("observed rates", 0.63, high=0.854275)], "title": "x"}, **options)
    assert json.loads((tmp_path / "numbers.json").read_text())["checks"][0]["name"] == "observed rates"
