"""Shared fixtures: one pipeline per test session (the terminology cache makes later runs fast)."""

from __future__ import annotations

import atexit
import gzip
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

import corpora
import nlp
from corpora import SAMPLES_DIR
from tests.corpus_miniatures import MINIATURES

# CI explores the same examples on every run; developers get fresh random ones
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

GOLDEN_DIR = Path(__file__).parent / "golden"


def _fixture_corpora() -> Path:
    """Hand-written miniatures of the corpora in each corpus' own layout (fake ids, a few lines each):
    ``tests/fixtures/corpora`` and :data:`tests.corpus_miniatures.MINIATURES`, written to one
    temporary folder for the session."""
    folder = Path(tempfile.mkdtemp(prefix="notes2fhir-corpora-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    shutil.copytree(Path(__file__).parent / "fixtures" / "corpora", folder, dirs_exist_ok=True)
    for name, lines in MINIATURES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = "\n".join(lines).encode("utf-8")
        path.write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)
    return folder


FIXTURE_CORPORA = _fixture_corpora()
FIXED_TIMESTAMP = "2026-01-01T00:00:00+00:00"
# Debian's chromium for the browser tests; a browser is never downloaded
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
NO_BROWSER = "needs selenium, chromium and chromedriver (apt-get install -y chromium chromium-driver)"


def real_corpus(name: str) -> Path:
    """The folder of a public corpus, or skip the test that needs it when it is not installed."""
    try:
        return corpora.corpus_path(name)
    except corpora.CorpusNotFoundError:
        pytest.skip(f"corpus {name} is not installed")


def headless_chromium(*arguments: str, logs: tuple[str, ...] = ("browser",)) -> Any:
    """A Selenium driver for Debian's chromium, headless and sandbox-free, with Selenium Manager off;
    ``arguments`` are added to the common switches, ``logs`` are the log types kept in full."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking"):
        options.add_argument(argument)
    for argument in arguments:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", dict.fromkeys(logs, "ALL"))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SE_OFFLINE", "true")  # Selenium Manager never runs
        return webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true", help="rewrite tests/golden/*.json")


@pytest.fixture(scope="session")
def pipe() -> nlp.Pipeline:
    return nlp.load().warm_up()


@pytest.fixture(scope="session")
def samples() -> dict[str, str]:
    return {p.stem: p.read_text("utf-8") for p in sorted(SAMPLES_DIR.glob("*.txt"))}


@pytest.fixture
def golden(request: pytest.FixtureRequest):
    """Compare a JSON-able object with ``tests/golden/<name>.json`` (or rewrite it)."""

    def check(name: str, obj: object) -> None:
        path = GOLDEN_DIR / f"{name}.json"
        text = json.dumps(obj, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
        if request.config.getoption("--update-goldens") or not path.exists():
            path.write_text(text, "utf-8")
            if not request.config.getoption("--update-goldens"):
                pytest.fail(f"golden {path.name} was missing and has been written; re-run")
        assert json.loads(text) == json.loads(path.read_text("utf-8")), f"differs from {path.name}"

    return check


def find(record: nlp.NoteRecord, text: str, nth: int = 0):
    """The ``nth`` mention whose text equals ``text`` (case-insensitive)."""
    hits = [m for m in record.mentions if m.text.lower() == text.lower()]
    assert len(hits) > nth, f"no mention {text!r} in {[m.text for m in record.mentions]}"
    return hits[nth]


def assert_windowing_changes_nothing(owner: object, attr: str, texts: dict[str, str], output) -> None:
    """``output(text)`` is the same with ``owner.<attr>`` (a WindowedMatcher) and matching everywhere."""
    windowed = getattr(owner, attr)
    for name, text in texts.items():
        expected = output(text)
        setattr(owner, attr, windowed.everywhere())
        try:
            assert output(text) == expected, name
        finally:
            setattr(owner, attr, windowed)
