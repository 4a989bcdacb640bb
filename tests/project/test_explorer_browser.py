"""``optfilters explore`` in a real headless browser (Debian's chromium and chromedriver, driven by selenium).

The page's plotted arrays are read from Bokeh's document in the browser and compared, number by number, with
what the library (or an independent closed form, or torch.optim itself) gives for the hyperparameters the page
shows.  Skipped only where chromium is not installed and CI is not set; in CI a missing browser fails.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import optfilters

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)

if CHROMIUM is None or DRIVER is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI must run the browser tests: apt-get install chromium chromium-driver (see .ci/run)")
    pytest.skip(
        "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

selenium = pytest.importorskip("selenium", reason="selenium is a test dependency: pip install -e '.[test]'")
pytest.importorskip("bokeh", reason="bokeh is a dependency of optfilters explore")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

#: Chromium's flags: headless, and nothing that reaches for the network (the CI machine has none).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1500,1000",
)

#: Finds an element through Bokeh's nested shadow roots: arguments[0] a host selector, arguments[1] inside it.
DEEP = """
function deep(sel, root) {
  const hit = root.querySelector(sel);
  if (hit) return hit;
  for (const el of root.querySelectorAll('*')) {
    if (el.shadowRoot) { const found = deep(sel, el.shadowRoot); if (found) return found; }
  }
  return null;
}
const host = deep(arguments[0], document);
if (!host || !arguments[1]) return host;
return deep(arguments[1], host.shadowRoot || host);
"""

DATA = """
if (!(window.Bokeh && Bokeh.documents.length)) return null;
const m = Bokeh.documents[0].get_model_by_name(arguments[0]);
if (!m) return null;
if (arguments[1] === null) return m.value !== undefined ? m.value : (m.text !== undefined ? m.text : m.location);
const column = m.data[arguments[1]];
const plain = v => (Array.isArray(v) || ArrayBuffer.isView(v)) ? Array.from(v) : v;
return column === undefined ? null : Array.from(column, plain);
"""


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """``optfilters explore --port 0 --no-browser`` in a subprocess; its printed URL."""
    code = "from optfilters.cli import main; main()"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "explore", "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # printed once the server listens (after warming torch up)
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert match, (line, process.poll())
        yield match.group(1)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    profile = tempfile.mkdtemp(prefix="optfilters-chromium-")
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(DRIVER), options=options)
    browser.set_page_load_timeout(120)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(condition: Callable[[], Any], timeout: float = 120.0, what: str = "the page") -> Any:
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            last = condition()
        except Exception as exc:  # the page is still loading
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


def data(driver: Any, name: str, column: str | None = None) -> Any:
    return driver.execute_script(DATA, name, column)


def element(driver: Any, host: str, inner: str | None = None) -> Any:
    return driver.execute_script(DEEP, host, inner)


def severe(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def load(driver: Any, url: str) -> None:
    driver.get(url)
    wait(lambda: data(driver, "bode_a", "db") and data(driver, "bode_b", "db"), what="the first plots")


def settle(driver: Any, name: str, column: str, expected: Callable[[], Any], rtol: float = 1e-9) -> None:
    """Wait until a plotted column equals what the library gives for the inputs the page now shows."""

    def equal() -> bool:
        got = data(driver, name, column)
        want = np.asarray(expected(), dtype=np.float64)
        if got is None or len(got) != want.size:
            return False
        got_arr = np.array([np.nan if v is None else v for v in got], dtype=np.float64)
        return bool(np.allclose(got_arr, want, rtol=rtol, atol=1e-12, equal_nan=True))

    wait(equal, what=f"{name}.{column} to match the library")


def text_value(driver: Any, name: str) -> str:
    return str(data(driver, name))


def type_into(driver: Any, host: str, text: str) -> None:
    box = element(driver, host, "input")
    assert box is not None, host
    box.clear()
    box.send_keys(text)
    box.send_keys(Keys.ENTER)


# ----------------------------------------------------------------------------- the tests


def test_page_loads_and_draws_the_library_numbers(server: str, driver: Any) -> None:
    load(driver, server + "?a=momentum&a.momentum=0.8&b=adam&b.beta1=0.85")
    assert severe(driver) == []
    assert driver.title == "optfilters explorer"
    # Bode magnitude of A against the closed form 1/|1 - mu e^{-jw}| (torch's SGD momentum, dampening 0).
    f = np.asarray(data(driver, "bode_a", "f"))
    assert f[0] == 0.0 and f[-1] == 0.5
    closed = -20.0 * np.log10(np.abs(1.0 - 0.8 * np.exp(-2j * np.pi * f)))
    np.testing.assert_allclose(data(driver, "bode_a", "db"), closed, rtol=1e-9, atol=1e-9)
    # B: Adam's gradient filter (1 - b1)/(1 - b1 z^-1), from the library and by hand.
    adam = optfilters.get("adam", beta1=0.85)
    expected = optfilters.frequency_response(adam.filters()["gradient"], freqs=f)
    np.testing.assert_allclose(data(driver, "bode_b", "db"), expected.magnitude_db, rtol=1e-12)
    np.testing.assert_allclose(
        data(driver, "bode_b", "magnitude"), np.abs(0.15 / (1 - 0.85 * np.exp(-2j * np.pi * f))), rtol=1e-9
    )
    assert data(driver, "poles_a", "x") == pytest.approx([0.8]) and data(driver, "zeros_a", "x") == pytest.approx([0.0])
    # Step responses of Adam: raw 1 - b1^t, bias-corrected exactly 1.
    t = np.arange(1, len(data(driver, "step_b", "raw")) + 1)
    np.testing.assert_allclose(data(driver, "step_b", "raw"), 1 - 0.85**t, rtol=1e-12)
    np.testing.assert_allclose(data(driver, "step_b", "corrected"), np.ones(t.size), rtol=1e-12)
    # Closed loop of heavy ball: stable for lr*h < 2 + 2 mu (the dashed edge), rate at the current point.
    assert data(driver, "edge_a") == pytest.approx(3.6, rel=1e-9)
    x_now = 0.001 * 200.0  # default lr times the largest curvature of 10 x^2 + 100 y^2
    point = data(driver, "point_a", "rate")
    roots = np.roots([1.0, -(1.0 + 0.8 - x_now), 0.8])
    assert data(driver, "point_a", "x") == pytest.approx([x_now]) and point == pytest.approx(
        [max(abs(roots))], rel=1e-9
    )
    # The stability map's current point is (lr*h, momentum).
    assert data(driver, "map_point_a", "y") == pytest.approx([0.8])
    # The trajectory ran through the bridge: torch.optim.SGD itself draws the same path.
    from optfilters.trajectory import run_trajectory

    reference = run_trajectory("quadratic", ("momentum", {"momentum": 0.8}), lr=0.001, steps=200, engine="torch")
    np.testing.assert_allclose(data(driver, "trajectory_a", "x"), reference.params[:, 0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(data(driver, "trajectory_a", "y"), reference.params[:, 1], rtol=1e-12, atol=1e-15)
    # The noisy-quadratic prediction.
    from optfilters.noisy_quadratic import predict

    p = predict(optfilters.get("momentum", momentum=0.8), curvatures=[20.0, 200.0], noise_var=1.0, init=1.0, steps=200)
    np.testing.assert_allclose(data(driver, "prediction_a", "loss"), p.expected_loss, rtol=1e-10)


def test_moving_a_slider_redraws_with_the_new_hyperparameter(server: str, driver: Any) -> None:
    load(driver, server + "?a=momentum&b=nesterov")
    before = list(data(driver, "bode_a", "db"))
    handle = element(driver, ".of-a-momentum-slider", ".noUi-handle")
    assert handle is not None
    handle.click()
    for _ in range(3):
        handle.send_keys(Keys.ARROW_LEFT)  # the keyboard moves the slider (log10 scale for momentum >= 0)

    def mu() -> float:
        return float(text_value(driver, "a.momentum"))

    def stable() -> float | None:
        first = mu()
        time.sleep(2.0)
        return first if first < 0.9 and mu() == first else None

    value = wait(stable, what="the momentum text to follow the slider and settle")
    assert 0.8 < value < 0.9  # three steps of 0.01 in log10 from 0.9
    model = optfilters.get("momentum", momentum=value)
    f = np.asarray(data(driver, "bode_a", "f"))
    settle(
        driver, "bode_a", "db", lambda: optfilters.frequency_response(model.filters()["gradient"], freqs=f).magnitude_db
    )
    assert data(driver, "bode_a", "db") != before
    settle(driver, "poles_a", "x", lambda: [value])
    assert data(driver, "edge_a") == pytest.approx(2.0 + 2.0 * value, rel=1e-9)
    step = optfilters.step_response(model.gradient_stage, n=200)
    settle(driver, "step_a", "raw", lambda: step.raw)
    # The URL holds the new state: a fresh page from it shows the same numbers.
    query = urllib.parse.parse_qs(urllib.parse.urlparse(driver.current_url).query)
    assert float(query["a.momentum"][0]) == pytest.approx(value)
    shown = data(driver, "bode_a", "db")
    load(driver, driver.current_url)
    assert float(text_value(driver, "a.momentum")) == pytest.approx(value)
    np.testing.assert_allclose(data(driver, "bode_a", "db"), shown, rtol=1e-12)
    assert severe(driver) == []


def test_typing_values_and_switching_optimizers(server: str, driver: Any) -> None:
    load(driver, server + "?a=adam&b=momentum")
    type_into(driver, ".of-a-beta1-input", "0.5")
    settle(driver, "poles_a", "x", lambda: [0.5])
    type_into(driver, ".of-a-lr-input", "0.01")
    settle(driver, "point_a", "x", lambda: [0.01 * 200.0])
    # Choose another optimizer for B through its select: its inputs are rebuilt from the catalogue's specs.
    driver.execute_script("Bokeh.documents[0].get_model_by_name('b.optimizer').value = 'nesterov'")
    settle(driver, "zeros_b", "x", lambda: [0.9 / 1.9])
    assert text_value(driver, "b.momentum") == "0.9"
    assert data(driver, "b.dampening") is None  # nesterov takes no dampening
    assert "b=nesterov" in driver.current_url and "a.beta1=0.5" in driver.current_url
    assert severe(driver) == []


def test_invalid_input_shows_a_message_and_keeps_the_page(server: str, driver: Any) -> None:
    load(driver, server + "?a=momentum&b=adam")
    shown = list(data(driver, "bode_b", "db"))
    type_into(driver, ".of-b-beta1-input", "1.5")
    message = wait(lambda: element(driver, ".of-message-b").text, what="the message")
    assert message == "B: beta1 must be in [0, 1), got 1.5"
    assert data(driver, "bode_b", "db") == shown  # the plots keep the last valid state
    type_into(driver, ".of-b-eps-input", "abc")
    wait(
        lambda: (
            "eps must be a number" in element(driver, ".of-message-b").text
            or "beta1" in element(driver, ".of-message-b").text
        )
    )
    type_into(driver, ".of-b-eps-input", "1e-8")
    type_into(driver, ".of-b-beta1-input", "0.7")
    wait(lambda: element(driver, ".of-message-b").text == "", what="the message to clear")
    settle(driver, "poles_b", "x", lambda: [0.7])
    # The other side never stopped working.
    type_into(driver, ".of-a-momentum-input", "0.5")
    settle(driver, "poles_a", "x", lambda: [0.5])
    # A bad URL says what it ignored instead of failing.
    load(driver, server + "?a=adma&steps=-3")
    text = element(driver, ".bk-Div", None) and data(driver, "message_page")
    assert "unknown optimizer 'adma'" in text and "steps must be an integer" in text
    assert severe(driver) == []


def test_screenshots_for_the_readme(server: str, driver: Any, tmp_path: Path) -> None:
    """The README's screenshots come from this page (regenerate with OPTFILTERS_SCREENSHOTS=folder)."""
    load(driver, server + "?a=momentum&a.momentum=0.8&b=nesterov&b.momentum=0.8")
    folder = Path(os.environ.get("OPTFILTERS_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(folder / "explorer_frequency.png"))
    driver.execute_script("Bokeh.documents[0].get_model_by_name('tabs').active = 2")
    wait(lambda: data(driver, "tabs") is not None or True)
    time.sleep(1.0)
    driver.save_screenshot(str(folder / "explorer_closed_loop.png"))
    driver.execute_script("Bokeh.documents[0].get_model_by_name('tabs').active = 3")
    time.sleep(1.0)
    driver.save_screenshot(str(folder / "explorer_training.png"))
    for name in ("explorer_frequency.png", "explorer_closed_loop.png", "explorer_training.png"):
        assert (folder / name).stat().st_size > 20_000
    assert not math.isnan(float(data(driver, "edge_a")))
