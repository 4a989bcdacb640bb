"""The CLI as a new user meets it: table formats, option scope, ``--betas``, predict's help and plot, slide options,
models from the user's own files in every command, and identify's progress."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result
from optfilters.cli import main

import optfilters


def run(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    if code == 0:
        assert "Traceback" not in result.output
    return result


def one_line_error(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output and result.stdout == ""
    return lines[0]


# ----------------------------------------------------------------------------- table


def test_table_formats_agree_with_the_library() -> None:
    expected = optfilters.summary_table(["sgd", "nesterov", "adam"])
    text = run("table", "sgd", "nesterov", "adam", "--format", "csv").stdout
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(expected.columns)
    assert rows[1:] == [list(r) for r in expected.rows]  # cells with commas survive the quoting
    latex = run("table", "sgd", "nesterov", "adam", "--format", "latex", "--no-notes").stdout.strip().splitlines()
    assert latex[0] == r"\begin{tabular}{lllllll}" and latex[-1] == r"\end{tabular}"
    body = [line for line in latex if line.endswith(r"\\")]
    assert len(body) == 1 + 3  # header and three rows
    assert body[2].split(" & ")[1] == "ARMA(1,1) (pole 0.9, zero 0.4737)"
    escaped = run("table", "adam:beta1=0.5", "--format", "latex", "--no-notes").stdout
    assert r"(L2 into g)" in escaped and "beta1=0.5" in escaped
    markdown = run("table", "sgd", "--format", "markdown").stdout
    assert markdown.startswith("| optimizer |") and "Corrections" in markdown


def test_table_rows_with_hyperparameters() -> None:
    data = json.loads(
        run("table", "adam", "adam:beta1=0.95", "adam:betas=0.8,0.99", "aggmo:betas=0,0.5", "--json").stdout
    )
    labels = [row[0] for row in data["rows"]]
    assert labels == ["adam", "adam(beta1=0.95)", "adam(betas=0.8,0.99)", "aggmo(betas=0,0.5)"]
    # The cells describe the model with those hyperparameters, as the library classifies it.
    from optfilters.table import classify_stage

    for label, model in (
        ("adam(beta1=0.95)", optfilters.get("adam", beta1=0.95)),
        ("adam(betas=0.8,0.99)", optfilters.get("adam", betas=(0.8, 0.99))),
        ("aggmo(betas=0,0.5)", optfilters.get("aggmo", betas=(0.0, 0.5))),
    ):
        row = data["rows"][labels.index(label)]
        assert row[1] == classify_stage(model.gradient_stage)
    assert "pole 0.95" in data["rows"][1][1] and "pole 0.99" in data["rows"][2][3]
    assert "beta1 must be in [0, 1), got 2" in one_line_error("table", "adam:beta1=2")
    assert "KEY=VALUE" in one_line_error("table", "adam:beta1")
    assert "adam has no hyperparameter 'momentum'" in one_line_error("table", "adam:momentum=0.9")
    assert "did you mean 'adam'" in one_line_error("table", "adma")


# ----------------------------------------------------------------------------- option scope and --betas


def test_compare_option_scope_is_said_and_set_applies_to_all() -> None:
    result = run("compare", "momentum", "nesterov", "--momentum", "0.5", "--json")
    data = json.loads(result.stdout)
    # An option belongs to the NAME before it: nesterov gets 0.5, momentum keeps its default 0.9 ...
    assert data["filters"]["momentum"]["hyperparameters"]["momentum"] == 0.9
    assert data["filters"]["nesterov(momentum=0.5)"]["hyperparameters"]["momentum"] == 0.5
    # ... and the command says so, with the way to set both.
    note = result.stderr.strip().splitlines()
    assert len(note) == 1 and note[0].startswith("note: --momentum 0.5 sets nesterov's momentum only")
    assert "--set momentum=0.5" in note[0] and "momentum keeps momentum=0.9" in note[0]
    both = run("compare", "--set", "momentum=0.5", "momentum", "nesterov", "--json")
    assert both.stderr == ""
    filters = json.loads(both.stdout)["filters"]
    assert [f["poles"] for f in filters.values()] == [[[0.5, 0.0]], [[0.5, 0.0]]]
    # Explicit per-NAME options are not ambiguous: no note.
    each = run("compare", "momentum", "--momentum", "0.5", "nesterov", "--momentum", "0.5", "--json")
    assert each.stderr == ""
    assert "--set KEY=VALUE" in run("compare", "--help").stdout


@pytest.mark.parametrize("name", ["adam", "adamw", "nadam", "radam", "adamax", "lion", "qhadam", "ademamix"])
def test_betas_tuple_like_the_python_api(name: str) -> None:
    count = 3 if name == "ademamix" else 2
    betas = (0.8, 0.95, 0.9995)[:count]
    text = ",".join(f"{b:g}" for b in betas)
    via_tuple = json.loads(run("response", name, "--betas", text, "--json", "--points", "3").stdout)
    flags = [arg for k, b in enumerate(betas, start=1) for arg in (f"--beta{k}", f"{b:g}")]
    via_flags = json.loads(run("response", name, *flags, "--json", "--points", "3").stdout)
    assert via_tuple["filters"] == via_flags["filters"]
    expected = optfilters.get(name, betas=betas)
    assert via_tuple["hyperparameters"] == {
        k: (list(v) if isinstance(v, tuple) else v) for k, v in expected.hyperparameters.items()
    }
    if name == "adam":
        assert "give betas or beta1, not both" in one_line_error(
            "response", "adam", "--betas", "0.8,0.9", "--beta1", "0.5"
        )
        assert "betas must be a tuple (beta1, beta2) of 2 numbers" in one_line_error(
            "response", "adam", "--betas", "0.8"
        )
        assert "beta2 must be a number, got 'x'" in one_line_error("response", "adam", "--betas", "0.8,x")


def test_betas_with_set_and_an_own_option() -> None:
    data = json.loads(run("compare", "--set", "betas=0.8,0.9", "adam", "--beta1", "0.5", "adamw", "--json").stdout)
    hps = {k: v["hyperparameters"] for k, v in data["filters"].items()}
    assert [(h["beta1"], h["beta2"]) for h in hps.values()] == [(0.5, 0.9), (0.8, 0.9)]


# ----------------------------------------------------------------------------- predict: help and plot


def test_predict_help_lists_its_options() -> None:
    text = run("predict", "--help").stdout
    for flag in ("--curvatures", "--noise-var", "--init", "--steps", "--schedule", "--json", "--plot", "--title"):
        assert flag in text, flag
    assert "path/to/file.py:NAME" in text
    for command in ("response", "step", "describe", "stability"):
        assert "--json" in run(command, "--help").stdout, command


def test_predict_plot_draws_the_library_prediction(tmp_path: Path) -> None:
    from optfilters.noisy_quadratic import predict

    target = tmp_path / "loss.png"
    args = ["predict", "momentum", "--momentum", "0.9", "--lr", "0.1", "--curvatures", "1,0.1", "--noise-var", "0.01"]
    data = json.loads(run(*args, "--steps", "50", "--plot", str(target), "--json").stdout)
    assert data["plot"] == str(target) and target.stat().st_size > 10_000
    expected = predict(optfilters.get("momentum", momentum=0.9, lr=0.1), curvatures=[1, 0.1], noise_var=0.01, steps=50)
    np.testing.assert_allclose(data["expected_loss"], expected.expected_loss, rtol=1e-12)
    drawn = expected.plot()
    np.testing.assert_allclose(drawn.artists["loss"][0].get_ydata(), expected.expected_loss, rtol=0)
    assert drawn.artists["steady_state"][0].get_ydata()[0] == pytest.approx(expected.steady_state_loss)
    drawn.close()
    assert "--plot FILE needs a suffix" in one_line_error(*args, "--plot", str(tmp_path / "x.gif"))


def test_slide_options(tmp_path: Path) -> None:
    import matplotlib.image

    wide = tmp_path / "wide.png"
    run("response", "momentum", "--plot", str(wide), "--magnitude-only", "--scale", "linear", "--size", "8x4.5")
    height, width = matplotlib.image.imread(wide).shape[:2]
    assert width / height == pytest.approx(8 / 4.5, rel=0.08)  # bbox "tight" trims a few pixels
    # What was drawn: one panel, |H| (not dB) with the title given.
    import matplotlib

    matplotlib.use("Agg")
    from optfilters.cli import _common

    drawn: list[Any] = []
    real = _common.save_plot

    def spy(draw: Any, path: Path, title: Any = None, size: Any = None) -> Path:
        from optfilters import plot

        drawn.append((draw(plot), title, size))
        return real(draw, path, title=title, size=size)

    try:
        _common.save_plot = spy
        import optfilters.cli.analysis as analysis

        original = analysis.save_plot
        analysis.save_plot = spy
        run(
            "response",
            "momentum",
            "--plot",
            str(tmp_path / "a.png"),
            "--magnitude-only",
            "--scale",
            "linear",
            "--title",
            "Heavy ball",
            "--size",
            "8x4.5",
        )
    finally:
        _common.save_plot = real
        analysis.save_plot = original
    result, title, size = drawn[0]
    assert len(result.axes) == 1 and "phase" not in result.artists
    assert result.artists["magnitude"][0].get_ydata()[0] == pytest.approx(10.0)  # |H(1)| = 1/(1 - 0.9), linear
    assert title == "Heavy ball" and size == (8.0, 4.5)
    assert "--size needs WIDTHxHEIGHT" in one_line_error("response", "sgd", "--plot", "a.png", "--size", "big")
    assert "between 0.5 and 50" in one_line_error("response", "sgd", "--plot", "a.png", "--size", "100x2")


# ----------------------------------------------------------------------------- models from the user's files

MODELS = textwrap.dedent(
    """
    import optfilters
    from optfilters import ArmaFilter, CatalogueEntry, Hyperparameter

    slow = ArmaFilter([0.05], [1.0, -0.95], name="slow")
    half = optfilters.get("momentum", momentum=0.5, lr=0.1)


    def _build(p):
        return optfilters.get("momentum", lr=p["lr"], momentum=p["pole"])


    pole = CatalogueEntry(
        "pole",
        "heavy ball by its pole",
        (Hyperparameter("lr", 0.01, low=0.0), Hyperparameter("pole", 0.8, low=0.0, high=1.0, high_open=True)),
        _build,
    )
    not_a_model = 3
    """
)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("user") / "my_models.py"
    path.write_text(MODELS)
    (path.parent / "broken.py").write_text("def f(:\n")
    return path


def _filters(*args: str) -> dict[str, Any]:
    return json.loads(run(*args, "--json").stdout)["filters"]


def test_user_model_in_every_analysis_command(models: Path) -> None:
    pole = f"{models}:pole"
    for command in ("describe", "response", "poles", "step", "impulse"):
        mine = _filters(command, pole, "--pole", "0.5")
        same = _filters(command, "momentum", "--momentum", "0.5", "--lr", "0.01")
        assert mine.keys() == same.keys()
        for key in mine:
            for field in ("b", "a", "poles", "zeros", "dc_gain", "magnitude", "raw", "impulse"):
                if field in same[key]:
                    assert mine[key][field] == same[key][field], (command, field)
    # A model instance and a bare filter work too.
    assert _filters("response", f"{models}:half")["gradient"]["poles"] == [[0.5, 0.0]]
    slow = _filters("response", f"{models}:slow", "--lr", "0.2")["gradient"]
    assert slow["b"] == pytest.approx([0.05]) and slow["a"] == pytest.approx([1.0, -0.95])
    # compare mixes catalogue entries and user models; each keeps its own options.
    compared = _filters("compare", pole, "--pole", "0.5", "momentum", "--momentum", "0.5")
    assert list(compared) == ["pole(pole=0.5)", "momentum(momentum=0.5)"]
    assert compared["pole(pole=0.5)"]["magnitude"] == compared["momentum(momentum=0.5)"]["magnitude"]
    assert "--pole FLOAT" in run("response", pole, "--help").stdout


def test_user_model_in_prediction_commands_and_table(models: Path) -> None:
    pole = f"{models}:pole"
    mine = json.loads(run("stability", pole, "--pole", "0.5", "--json").stdout)
    same = json.loads(run("stability", "momentum", "--momentum", "0.5", "--json").stdout)
    assert mine["max_stable_lr_curvature"] == same["max_stable_lr_curvature"] == pytest.approx(3.0)
    mine = json.loads(run("predict", pole, "--pole", "0.9", "--lr", "0.1", "--steps", "30", "--json").stdout)
    same = json.loads(run("predict", "momentum", "--lr", "0.1", "--steps", "30", "--json").stdout)
    assert mine["expected_loss"] == same["expected_loss"]
    table = json.loads(run("table", f"{pole}:pole=0.5", f"{models}:slow", "--json").stdout)
    assert [r[0] for r in table["rows"]] == ["pole(pole=0.5)", "slow"]
    assert "pole 0.5" in table["rows"][0][1]


def test_user_model_observed_through_the_bridge(models: Path) -> None:
    pytest.importorskip("torch")
    args = ["--lr", "0.1", "--steps", "20", "--seeds", "16", "--noise-var", "0.1", "--json"]
    mine = json.loads(run("observe", f"{models}:pole", "--pole", "0.5", *args).stdout)
    same = json.loads(run("observe", "momentum", "--momentum", "0.5", *args).stdout)
    assert mine["observed_mean_loss"] == same["observed_mean_loss"]


def test_user_model_errors_are_one_line(models: Path) -> None:
    assert "defines no 'nope'; it defines half, pole, slow" in one_line_error("response", f"{models}:nope")
    assert "no model file" in one_line_error("response", f"{models.parent / 'absent.py'}:x")
    assert "SyntaxError" in one_line_error("response", f"{models.parent / 'broken.py'}:f")
    assert "not_a_model is a int" in one_line_error("response", f"{models}:not_a_model")
    assert "pole must be in [0, 1), got 1.5" in one_line_error("response", f"{models}:pole", "--pole", "1.5")
    assert "pole takes no option --momentum" in one_line_error("response", f"{models}:pole", "--momentum", "0.5")


def test_user_model_keeps_the_analysis_import_budget(models: Path) -> None:
    code = (
        "import sys; from optfilters.cli import main; "
        f"main(['response', {str(models) + ':pole'!r}, '--json'], standalone_mode=False); "
        "print('torch' in sys.modules, 'matplotlib' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "False False"


# ----------------------------------------------------------------------------- identify progress


def test_identify_reports_progress() -> None:
    pytest.importorskip("torch")
    from optfilters.identify import identify

    seen: list[tuple[str, int, int]] = []
    identify("torch.optim.Adam", max_background=1024, progress=lambda *a: seen.append(a))
    probes = [s for s in seen if s[0] == "probes"]
    assert probes and probes[-1][1] == probes[-1][2] and [s[1] for s in probes] == list(range(1, len(probes) + 1))
    background = [s for s in seen if s[0] == "small-signal background"]
    assert background and background[-1][1] <= 1024 and all(s[2] == 1024 for s in background)
    result = run("identify", "torch.optim.SGD", "--momentum", "0.9", "--progress")
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("identify: probes 1/") and lines[-1] == f"identify: probes {len(probes)}/{len(probes)}"
    assert run("identify", "torch.optim.SGD", "--momentum", "0.9").stderr == ""  # not a terminal: quiet


def test_user_model_in_identify(models: Path) -> None:
    pytest.importorskip("torch")
    compared = json.loads(
        run("identify", "torch.optim.SGD", "--momentum", "0.5", "--compare", f"{models}:half", "--json").stdout
    )
    assert compared["comparison"]["match"] is True
    probed = json.loads(run("identify", f"{models}:slow", "--json").stdout)
    assert probed["b"] == pytest.approx([0.05], rel=1e-9) and probed["a"] == pytest.approx([1.0, -0.95], rel=1e-9)
    assert "constructor options do not apply" in one_line_error("identify", f"{models}:slow", "--momentum", "0.9")
