"""The service's browser page in real headless Chromium (Selenium), against the real default pipeline.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium chromium-driver``)
and the ``selenium`` package; the module is skipped without them. Selenium Manager never runs: the
driver and browser paths are given explicitly and ``SE_OFFLINE`` is set.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import nlp

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is not installed (the [service] extra)")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

from service.app import create_app  # noqa: E402
from service.config import Settings  # noqa: E402
from tests.conftest import CHROMEDRIVER, CHROMIUM, NO_BROWSER, headless_chromium  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None, reason=NO_BROWSER),
]
WAIT_SECONDS = 30
WINDOW = (1200, 1000)


@pytest.fixture(scope="module")
def base_url(pipe: nlp.Pipeline) -> Iterator[str]:
    """The real app with the session's default pipeline, served by uvicorn on a free port."""
    app = create_app(Settings(api_key=None), pipeline_factory=lambda settings: pipe)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_SECONDS
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="module")
def driver() -> Iterator[webdriver.Chrome]:
    chrome = headless_chromium(
        "--force-color-profile=srgb",
        "--force-device-scale-factor=1",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    )
    yield chrome
    chrome.quit()


def open_page(driver: webdriver.Chrome, base_url: str) -> None:
    driver.get(base_url)
    wait_until(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#sample-select option")) > 1)
    driver.get_log("browser")  # drop what earlier pages logged


def wait_until(driver: webdriver.Chrome, condition: Callable[[webdriver.Chrome], object]) -> None:
    WebDriverWait(driver, WAIT_SECONDS).until(condition)


def annotate(driver: webdriver.Chrome, base_url: str, *, sample: str | None = None, text: str | None = None):
    """Open the page, pick a sample or type a note, click Annotate and wait for results or an error."""
    open_page(driver, base_url)
    if sample is not None:
        Select(driver.find_element(By.ID, "sample-select")).select_by_value(sample)
    if text is not None:
        note = driver.find_element(By.ID, "note-input")
        note.clear()
        driver.execute_script("arguments[0].value = arguments[1];", note, text)
    driver.find_element(By.ID, "annotate-button").click()
    wait_until(
        driver,
        lambda d: (
            d.find_element(By.ID, "results").is_displayed()
            or d.find_element(By.ID, "error-box").is_displayed()
        ),
    )


def mention(driver: webdriver.Chrome, text: str) -> WebElement:
    hits = [m for m in driver.find_elements(By.CSS_SELECTOR, "#note-view mark.mention") if m.text == text]
    assert hits, f"no highlighted mention {text!r}"
    return hits[0]


def table_rows(driver: webdriver.Chrome, table_id: str) -> list[list[str]]:
    rows = driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")
    return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]


def severe_console_messages(driver: webdriver.Chrome) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_page_loads_without_console_errors(driver: webdriver.Chrome, base_url: str) -> None:
    driver.get(base_url)
    wait_until(driver, lambda d: d.find_element(By.ID, "pipeline-info").text.startswith("Pipeline "))
    # the samples arrive in their own request: wait for them rather than race it
    wait_until(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#sample-select option")) >= 5)
    assert driver.find_element(By.CSS_SELECTOR, "label[for=note-input]").text == "Clinical note"
    swatches = driver.find_elements(By.CSS_SELECTOR, ".legend .mention[class*=label-]")
    colours = [swatch.value_of_css_property("background-color") for swatch in swatches]
    assert len(swatches) >= 7 and len(set(colours)) == len(colours), colours  # one colour per label
    assert severe_console_messages(driver) == []


# sample -> (mention text, class it carries, computed CSS property, value)
MENTION_STYLES = [
    ("sample-negation-family", "fever", "assertion-absent", "text-decoration-line", "line-through"),
    ("sample-negation-family", "breast cancer", "subject-family", "outline-style", "solid"),
    ("sample-negation-family", "pneumonia", "assertion-possible", "border-bottom-style", "dashed"),
    ("sample-negation-family", "cough", "assertion-present", "text-decoration-line", "none"),
    ("sample-medications", "pain", "assertion-hypothetical", "font-style", "italic"),
    ("sample-adr", "ACE inhibitor", "assertion-historical", "opacity", "0.55"),
]


@pytest.mark.parametrize(("sample", "text", "css_class", "prop", "value"), MENTION_STYLES)
def test_assertion_and_subject_styles(
    driver: webdriver.Chrome, base_url: str, sample: str, text: str, css_class: str, prop: str, value: str
) -> None:
    annotate(driver, base_url, sample=sample)
    assert len(driver.find_elements(By.CSS_SELECTOR, "#note-view mark.mention")) > 0
    mark = mention(driver, text)
    assert css_class in mark.get_attribute("class").split()
    assert mark.value_of_css_property(prop) == value
    assert severe_console_messages(driver) == []


def test_hover_and_keyboard_focus_show_details(driver: webdriver.Chrome, base_url: str) -> None:
    annotate(driver, base_url, sample="sample-negation-family")
    mark = mention(driver, "breast cancer")
    title = mark.get_attribute("title")
    for expected in (
        "PROBLEM",
        "assertion: present",
        "subject: family (MTH)",
        "section: family_history",
        "source:",
    ):
        assert expected in title
    assert "icd10cm" in title
    assert "cue (" in mention(driver, "fever").get_attribute("title")  # the negation cue is the evidence
    driver.find_element(By.ID, "annotate-button").send_keys(Keys.TAB)  # keyboard: the next stop is a mention
    focused = driver.switch_to.active_element
    assert focused.tag_name == "mark"
    assert driver.find_element(By.ID, "mention-details").text == focused.get_attribute("title")


# sample -> table, cells one of its rows must contain
TABLE_ROWS = [
    ("sample-adr", "adr-table", ["lisinopril", "angioedema", "adverse reaction", "rule:adr.on_drug"]),
    ("sample-allergies", "adr-table", ["Peanuts", "anaphylaxis", "allergy reaction"]),
    ("sample-negation-family", "adr-table", ["NKDA", "none stated", "allergy"]),
    ("sample-cardiology", "risk-table", ["Smoking", "current"]),
    ("sample-cardiology", "risk-table", ["Family history of premature CAD", "present", '"MI"']),
    ("sample-cardiology", "risk-table", ["BMI", "31"]),
    ("sample-cardiology", "risk-table", ["10-year ASCVD risk", "%"]),
    ("sample-allergies", "risk-table", ["10-year ASCVD risk", "not computed: missing", "total cholesterol"]),
]


@pytest.mark.parametrize(("sample", "table_id", "cells"), TABLE_ROWS)
def test_tables_show_reactions_and_risk_factors(
    driver: webdriver.Chrome, base_url: str, sample: str, table_id: str, cells: list[str]
) -> None:
    annotate(driver, base_url, sample=sample)
    rows = table_rows(driver, table_id)
    assert any(all(any(c in cell for cell in row) for c in cells) for row in rows), rows
    assert "not a diagnosis" in driver.find_element(By.ID, "risk-disclaimer").text


def test_fhir_panel_holds_the_bundle(driver: webdriver.Chrome, base_url: str) -> None:
    annotate(driver, base_url, sample="sample-adr")
    panel = driver.find_element(By.ID, "fhir-panel")
    assert panel.get_attribute("open") is None
    panel.find_element(By.TAG_NAME, "summary").click()
    bundle_text = driver.find_element(By.ID, "fhir-json").text
    assert '"resourceType": "Bundle"' in bundle_text
    assert '"resourceType": "AdverseEvent"' in bundle_text


@pytest.mark.parametrize("text", ["", "   \n  "])
def test_empty_note_shows_the_api_error(driver: webdriver.Chrome, base_url: str, text: str) -> None:
    annotate(driver, base_url, text=text)
    error_box = driver.find_element(By.ID, "error-box")
    assert error_box.is_displayed()
    assert driver.find_element(By.ID, "error-code").text == "empty_text"
    assert driver.find_element(By.ID, "error-message").text
    assert not driver.find_element(By.ID, "results").is_displayed()


def test_markup_in_the_note_is_rendered_as_text(driver: webdriver.Chrome, base_url: str) -> None:
    note = (
        "Patient denies chest pain. <script>window.injected = 1</script>\n"
        '<img src="x" onerror="window.injected = 2"> <b>bold</b>'
    )
    annotate(driver, base_url, text=note)
    view = driver.find_element(By.ID, "note-view")
    assert view.find_elements(By.CSS_SELECTOR, "script, img, b") == []
    assert driver.execute_script("return document.getElementById('note-view').textContent;") == note
    assert driver.execute_script("return window.injected === undefined;")
    assert "assertion-absent" in mention(driver, "chest pain").get_attribute("class")


def decode_png(data: bytes) -> np.ndarray:
    """An 8-bit RGB or RGBA PNG as a (height, width, channels) array (zlib and numpy only)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, bytearray()
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color_type in (2, 6) and interlace == 0
        elif kind == b"IDAT":
            idat += body
    bpp = 3 if color_type == 2 else 4
    raw = np.frombuffer(zlib.decompress(bytes(idat)), dtype=np.uint8).reshape(height, width * bpp + 1)
    pixels = np.zeros((height, width * bpp), dtype=np.uint8)
    prior = np.zeros(width * bpp, dtype=np.int64)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int64)
        if kind == 1:  # Sub: a running sum per channel
            line = np.cumsum(line.reshape(width, bpp), axis=0).reshape(-1)
        elif kind == 2:  # Up
            line = line + prior
        elif kind in (3, 4):  # Average, Paeth: sequential along the row
            out = [0] * (width * bpp)
            up = prior.tolist()
            for x, value in enumerate(line.tolist()):
                left = out[x - bpp] if x >= bpp else 0
                upper_left = up[x - bpp] if x >= bpp else 0
                if kind == 3:
                    out[x] = (value + (left + up[x]) // 2) & 0xFF
                    continue
                estimate = left + up[x] - upper_left
                da, db, dc = abs(estimate - left), abs(estimate - up[x]), abs(estimate - upper_left)
                predictor = left if da <= db and da <= dc else up[x] if db <= dc else upper_left
                out[x] = (value + predictor) & 0xFF
            line = np.array(out, dtype=np.int64)
        prior = line % 256
        pixels[y] = prior
    return pixels.reshape(height, width, bpp)


def test_problem_highlights_are_visible_in_a_screenshot(
    driver: webdriver.Chrome, base_url: str, tmp_path: Path
) -> None:
    annotate(driver, base_url, sample="sample-negation-family")
    view = driver.find_element(By.ID, "note-view")
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", view)
    # the PROBLEM colour as the browser computed it, and the on-screen boxes of present PROBLEM mentions
    colour, boxes = driver.execute_script(
        """
        const marks = [...document.querySelectorAll('#note-view mark.label-PROBLEM.assertion-present')];
        const visible = marks.map((m) => m.getBoundingClientRect())
            .filter((r) => r.top >= 0 && r.bottom <= window.innerHeight);
        return [getComputedStyle(marks[0]).backgroundColor,
                visible.map((r) => [r.left, r.top, r.right, r.bottom])];
        """
    )
    assert colour.startswith("rgb(") and colour != "rgb(255, 255, 255)", colour  # opaque, not the page
    rgb = np.array([int(part) for part in colour.removeprefix("rgb(").removesuffix(")").split(",")])
    assert len(boxes) >= 2, "too few PROBLEM highlights on screen"
    png = driver.get_screenshot_as_png()
    (tmp_path / "note.png").write_bytes(png)  # kept by pytest's tmp_path for a look after a failure
    pixels = decode_png(png)[:, :, :3].astype(np.int64)
    matching = np.all(np.abs(pixels - rgb) <= 2, axis=2)
    box_area = sum((right - left) * (bottom - top) for left, top, right, bottom in boxes)
    inside = sum(
        int(matching[int(top) : int(bottom), int(left) : int(right)].sum())
        for left, top, right, bottom in boxes
    )
    # the highlight fills each box except where the glyphs are drawn
    assert inside >= 0.5 * box_area, (inside, box_area)
