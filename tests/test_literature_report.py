"""Literature report files: summary.json, pairs.csv and the offline report.html (also in headless Chromium).

The summary is built by hand over the bundled sample abstracts, with offsets found in their text.
The browser tests need Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package
(as ``tests/test_service_browser.py``) and are skipped without them.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from nlp.errors import InputError
from nlp.literature.model import (
    Abstract,
    AbstractSummary,
    ConceptCode,
    Evidence,
    LiteratureSummary,
    PairSummary,
)
from nlp.literature.readers import read_abstracts
from nlp.literature.report import CHART_PAIRS, PAIRS_COLUMNS, render_html, write_report
from tests.conftest import CHROMEDRIVER, CHROMIUM, NO_BROWSER, headless_chromium

try:
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # the browser tests skip
    webdriver = None

SAMPLES = Path(__file__).resolve().parent.parent / "corpora" / "samples_literature"
PUBMED = "https://pubmed.ncbi.nlm.nih.gov/"
PIPELINE = "literature@0.1.0"
INJECTION = '<script>window.injected = 1</script><img src=x onerror="window.injected = 2">'


def sample_abstracts() -> dict[str, Abstract]:
    return {a.pmid: a for a in read_abstracts([SAMPLES / "synthetic_pubmed.xml"]) if isinstance(a, Abstract)}


def evidence(
    abstract: Abstract,
    sentence_prefix: str,
    drug: str,
    reaction: str,
    *,
    assertion: str = "present",
    flags: tuple[str, ...] = (),
) -> Evidence:
    """Evidence for the sentence of ``abstract`` that starts with ``sentence_prefix``.

    A mention is looked for from the sentence on, else anywhere in the text (another sentence).
    """
    text = abstract.text
    start = text.index(sentence_prefix)
    end = text.index(". ", start) + 1 if ". " in text[start:] else len(text)
    drug_start = text.find(drug, start) if drug in text[start:] else text.index(drug)
    reaction_start = text.find(reaction, start) if reaction in text[start:] else text.index(reaction)
    return Evidence(
        pmid=abstract.pmid,
        sentence=text[start:end],
        sentence_start=start,
        drug_text=drug,
        drug_start=drug_start,
        drug_end=drug_start + len(drug),
        reaction_text=reaction,
        reaction_start=reaction_start,
        reaction_end=reaction_start + len(reaction),
        assertion=assertion,
        flags=flags,
        score=0.91,
        method="model:adr-minilm@1",
    )


def pair(
    drug: str,
    reaction: str,
    items: list[Evidence],
    *,
    abstracts: int,
    negated: int = 0,
    speculative: int = 0,
    animal: int = 0,
    drug_codes: tuple[ConceptCode, ...] = (),
    reaction_codes: tuple[ConceptCode, ...] = (),
) -> PairSummary:
    return PairSummary(
        drug=drug,
        reaction=reaction,
        drug_codes=drug_codes,
        reaction_codes=reaction_codes,
        abstracts=abstracts,
        pmids=tuple(sorted({e.pmid for e in items})),
        negated=negated,
        speculative=speculative,
        animal=animal,
        evidence=tuple(items),
    )


def build_summary(extra_pairs: tuple[PairSummary, ...] = ()) -> LiteratureSummary:
    a = sample_abstracts()
    pairs = (
        pair(
            "amiodarone",
            "pulmonary toxicity",
            [
                evidence(
                    a["90000001"], "Amiodarone pulmonary toxicity was", "Amiodarone", "pulmonary toxicity"
                ),
                # the reaction is named in the next sentence: only the drug is in this one
                evidence(a["90000009"], "We reviewed", "amiodarone", "Amiodarone pulmonary toxicity"),
            ],
            abstracts=2,
            drug_codes=(ConceptCode("mesh", "D000638", "Amiodarone"), ConceptCode("rxnorm", "703")),
            reaction_codes=(ConceptCode("mesh", "D008171", "Lung Diseases"),),
        ),
        pair(
            "isoniazid",
            "hepatotoxicity",
            [
                evidence(a["90000002"], "CONCLUSIONS: Isoniazid", "Isoniazid", "hepatotoxicity"),
                evidence(
                    a["90000004"],
                    "No hepatotoxicity",
                    "isoniazid",
                    "hepatotoxicity",
                    assertion="absent",
                    flags=("negated",),
                ),
            ],
            abstracts=1,
            negated=1,
            drug_codes=(ConceptCode("mesh", "D007538", "Isoniazid"),),
            reaction_codes=(ConceptCode("icd10cm", "K71.9", "Toxic liver disease, unspecified"),),
        ),
        pair(
            "ciprofloxacin",
            "tendinopathy",
            [
                evidence(
                    a["90000005"],
                    "We propose",
                    "ciprofloxacin",
                    "Achilles tendinopathy",
                    assertion="possible",
                    flags=("speculative",),
                )
            ],
            abstracts=0,
            speculative=1,
        ),
        pair(
            "doxorubicin",
            "cardiotoxicity",
            [
                evidence(
                    a["90000006"], "Exercise may protect", "doxorubicin", "cardiotoxicity", flags=("animal",)
                )
            ],
            abstracts=1,
            animal=1,
        ),
        *extra_pairs,
    )
    summaries = tuple(
        AbstractSummary(
            pmid=abstract.pmid,
            title=abstract.title,
            year=abstract.year,
            summary=(abstract.abstract.split(". ")[0] + ".",),
            pairs=tuple((p.drug, p.reaction) for p in pairs if abstract.pmid in p.pmids),
            flags=("animal",) if "Animals" in abstract.mesh_terms else (),
        )
        for abstract in a.values()
    )
    return LiteratureSummary(
        pipeline=PIPELINE,
        abstracts=len(a) + 1,
        failed=(("sample.jsonl:3", "malformed_record", "sample.jsonl:3: not JSON"),),
        pairs=pairs,
        summaries=summaries,
        seconds=3.25,
    )


@pytest.fixture(scope="module")
def summary() -> LiteratureSummary:
    return build_summary()


def page_data(page: str) -> dict:
    """The JSON the page embeds for its script."""
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.DOTALL)
    assert match is not None
    return json.loads(match.group(1))


def strings(obj: object) -> set[str]:
    """Every string in a JSON value."""
    if isinstance(obj, str):
        return {obj}
    values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else []
    return set().union(*(strings(value) for value in values))


# --- the files ---


def test_write_report_writes_the_three_files(summary: LiteratureSummary, tmp_path: Path) -> None:
    out = tmp_path / "new" / "report"
    written = write_report(summary, out)
    assert written == {name: out / name for name in ("summary.json", "pairs.csv", "report.html")}
    assert sorted(p.name for p in out.iterdir()) == sorted(written)  # no partial files left behind
    write_report(summary, out)  # a second run replaces the files
    assert json.loads((out / "summary.json").read_text("utf-8"))["pipeline"] == PIPELINE


def test_summary_json_round_trips_in_a_stable_key_order(summary: LiteratureSummary, tmp_path: Path) -> None:
    text = write_report(summary, tmp_path)["summary.json"].read_text("utf-8")
    data = json.loads(text)
    assert list(data) == [
        "schema_version",
        "pipeline",
        "abstracts",
        "failed",
        "pairs",
        "summaries",
        "seconds",
    ]
    assert list(data["pairs"][0]["evidence"][0])[:3] == ["pmid", "sentence", "sentence_start"]
    assert LiteratureSummary.from_dict(data) == summary
    accented = build_summary((pair("ß-blocker", "Müdigkeit", [], abstracts=0),))
    assert '"drug": "ß-blocker"' in write_report(accented, tmp_path)["summary.json"].read_text("utf-8")


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(schema_version="0.9"),
        lambda d: d.update(surprise=1),
        lambda d: d.pop("pairs"),
        lambda d: d["pairs"][0]["evidence"][0].update(flags=["unheard-of"]),
        lambda d: d["pairs"][0]["evidence"][0].update(assertion="certain"),
        lambda d: d["summaries"][0].update(pairs=[["only-a-drug"]]),
    ],
)
def test_malformed_summary_json_is_an_input_error(summary: LiteratureSummary, change: Callable) -> None:
    data = json.loads(json.dumps(summary.to_dict()))
    change(data)
    with pytest.raises(InputError) as caught:
        LiteratureSummary.from_dict(data)
    assert caught.value.code == "malformed_record"


def test_pairs_csv_has_one_row_per_pair(summary: LiteratureSummary, tmp_path: Path) -> None:
    text = write_report(summary, tmp_path)["pairs.csv"].read_text("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == PAIRS_COLUMNS
    assert [(r["drug"], r["reaction"]) for r in rows] == [(p.drug, p.reaction) for p in summary.pairs]
    assert rows[0] == {
        "drug": "amiodarone",
        "reaction": "pulmonary toxicity",
        "drug_codes": "mesh:D000638;rxnorm:703",
        "reaction_codes": "mesh:D008171",
        "abstracts": "2",
        "negated": "0",
        "speculative": "0",
        "animal": "0",
        "pmids": "90000001;90000009",
    }
    assert (rows[1]["negated"], rows[2]["speculative"], rows[3]["animal"]) == ("1", "1", "1")


def test_unwritable_folder_is_an_input_error(summary: LiteratureSummary, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", "utf-8")
    with pytest.raises(InputError) as caught:
        write_report(summary, blocker / "report")
    assert caught.value.code == "unwritable_output"


# --- the page, as text ---


def test_page_loads_nothing_from_the_network(summary: LiteratureSummary) -> None:
    page = render_html(summary)
    assert re.findall(r"""(?:src|href|action|xlink:href)\s*=""", page, re.IGNORECASE) == []
    assert (
        re.findall(r"<(?:link|iframe|img|object|embed|base|form)\b|@import|url\(", page, re.IGNORECASE) == []
    )
    urls = re.findall(r"(?:https?:)?//[^\s\"'<>)]+", page.replace("\\/", "/"))
    assert urls and all(re.fullmatch(re.escape(PUBMED) + r"\d+/", url) for url in urls), urls
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page).group(1)
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp and "unsafe-inline" not in csp


def test_the_content_security_policy_allows_exactly_the_inline_script_and_style(
    summary: LiteratureSummary,
) -> None:
    page = render_html(summary)
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page).group(1)
    (script,) = re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    (style,) = re.findall(r"<style>(.*?)</style>", page, re.DOTALL)
    for source, directive in ((script, "script-src"), (style, "style-src")):
        digest = base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii")
        assert f"{directive} 'sha256-{digest}'" in csp


# where hostile text goes -> the summary with it there
HOSTILE = [
    ("title", lambda s: replace(s, summaries=(replace(s.summaries[0], title=INJECTION), *s.summaries[1:]))),
    (
        "summary",
        lambda s: replace(s, summaries=(replace(s.summaries[0], summary=(INJECTION,)), *s.summaries[1:])),
    ),
    ("drug", lambda s: replace(s, pairs=(*s.pairs, pair(INJECTION, "rash", [], abstracts=3)))),
    ("reaction", lambda s: replace(s, pairs=(*s.pairs, pair("penicillin", INJECTION, [], abstracts=3)))),
    ("failure", lambda s: replace(s, failed=(("<b>where</b>", "malformed_record", INJECTION),))),
    ("pipeline", lambda s: replace(s, pipeline=INJECTION)),
]


@pytest.mark.parametrize(("where", "make"), HOSTILE)
def test_text_from_abstracts_cannot_inject_markup(
    summary: LiteratureSummary, where: str, make: Callable[[LiteratureSummary], LiteratureSummary]
) -> None:
    page = render_html(make(summary))
    assert len(re.findall(r"<script", page, re.IGNORECASE)) == 2  # the data and the code, nothing else
    assert len(re.findall(r"</script", page, re.IGNORECASE)) == 2
    assert "<img" not in page and "<b>" not in page and 'onerror="' not in page
    if where == "pipeline":
        assert html.escape(INJECTION) in page  # the header shows it as text
    else:
        assert INJECTION in strings(page_data(page))  # the script shows it as text


def test_evidence_is_cut_into_highlighted_pieces(summary: LiteratureSummary) -> None:
    pairs = page_data(render_html(summary))["pairs"]
    for page_pair, pair_summary in zip(pairs, summary.pairs, strict=True):
        for shown, ev in zip(page_pair["evidence"], pair_summary.evidence, strict=True):
            assert "".join(text for text, _ in shown["segments"]) == ev.sentence
            marked = {kinds: text for text, kinds in shown["segments"] if kinds}
            in_sentence = {
                kind: text
                for kind, text, start in (
                    ("drug", ev.drug_text, ev.drug_start),
                    ("reaction", ev.reaction_text, ev.reaction_start),
                )
                if ev.sentence_start <= start < ev.sentence_start + len(ev.sentence)
            }
            assert marked == in_sentence
            assert shown["url"] == f"{PUBMED}{ev.pmid}/"
    across_sentences = pairs[0]["evidence"][1]
    assert [kinds for _, kinds in across_sentences["segments"] if kinds] == ["drug"]
    negated = pairs[1]["evidence"][1]
    assert [kinds for _, kinds in negated["segments"] if kinds] == ["reaction", "drug"]


def test_overlapping_mentions_and_stale_offsets(summary: LiteratureSummary) -> None:
    a = sample_abstracts()["90000008"]
    nested = evidence(
        a, "Carbamazepine-induced", "Carbamazepine", "Carbamazepine-induced Stevens-Johnson syndrome"
    )
    stale = replace(nested, drug_start=nested.drug_start + 1, drug_end=nested.drug_end + 1)
    extra = (pair("carbamazepine", "sjs", [nested, stale], abstracts=1),)
    shown = page_data(render_html(build_summary(extra)))["pairs"][-1]["evidence"]
    assert [(t, k) for t, k in shown[0]["segments"] if k] == [
        ("Carbamazepine", "drug reaction"),
        ("-induced Stevens-Johnson syndrome", "reaction"),
    ]
    assert [k for _, k in shown[1]["segments"] if k] == [
        "reaction"
    ]  # the drug's offsets no longer give its text


def test_chart_shows_the_most_reported_pairs(summary: LiteratureSummary) -> None:
    many = tuple(pair(f"drug{i}", "rash", [], abstracts=i) for i in range(1, CHART_PAIRS + 6))
    page = render_html(build_summary(many))
    bars = re.findall(r'<g class="bar" data-pair="(\d+)"[^>]*aria-label="([^"]*)"', page)
    assert len(bars) == CHART_PAIRS
    counts = [int(re.search(r"(\d+) abstracts?$", label).group(1)) for _, label in bars]
    assert counts == sorted(counts, reverse=True) and counts[0] == CHART_PAIRS + 5
    assert "ciprofloxacin" not in "".join(label for _, label in bars)  # speculative only: not reported
    empty = LiteratureSummary(PIPELINE, 0, (), (), ())
    assert "No drug–reaction pair is reported" in render_html(empty)


# --- the page in headless Chromium, offline ---

needs_browser = pytest.mark.skipif(
    webdriver is None or CHROMIUM is None or CHROMEDRIVER is None, reason=NO_BROWSER
)
WAIT_SECONDS = 30


@pytest.fixture(scope="module")
def browser_summary() -> LiteratureSummary:
    """The hand-built summary with hostile text in an abstract title and in a reaction name."""
    summary = build_summary((pair("penicillin", INJECTION, [], abstracts=3),))
    first = replace(summary.summaries[0], title=INJECTION)
    return replace(summary, summaries=(first, *summary.summaries[1:]))


@pytest.fixture(scope="module")
def report_url(browser_summary: LiteratureSummary, tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_report(browser_summary, tmp_path_factory.mktemp("report"))["report.html"].as_uri()


@pytest.fixture(scope="module")
def driver() -> Iterator[webdriver.Chrome]:
    chrome = headless_chromium(
        "--no-proxy-server", "--window-size=1200,1000", logs=("browser", "performance")
    )
    chrome.execute_cdp_cmd("Network.enable", {})
    chrome.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0},
    )
    yield chrome
    chrome.quit()


def open_report(driver: webdriver.Chrome, url: str, rows: int) -> None:
    driver.get(url)
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#pairs-table tbody tr")) == rows
    )


def column(driver: webdriver.Chrome, index: int) -> list[str]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#pairs-table tbody tr")
    return [row.find_elements(By.TAG_NAME, "td")[index].text for row in rows]


def header(driver: webdriver.Chrome, label: str):
    return driver.find_element(By.XPATH, f"//table[@id='pairs-table']//th[button[text()='{label}']]")


def severe_console_messages(driver: webdriver.Chrome) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def requested_urls(driver: webdriver.Chrome) -> list[str]:
    messages = (json.loads(entry["message"])["message"] for entry in driver.get_log("performance"))
    return [m["params"]["request"]["url"] for m in messages if m["method"] == "Network.requestWillBeSent"]


@pytest.mark.slow
@needs_browser
def test_report_renders_offline_without_errors(
    driver: webdriver.Chrome, report_url: str, browser_summary: LiteratureSummary
) -> None:
    driver.get_log("performance")  # drop what earlier pages logged
    open_report(driver, report_url, len(browser_summary.pairs))
    assert PIPELINE in driver.find_element(By.ID, "report-meta").text
    assert driver.execute_script("return performance.getEntriesByType('resource').length;") == 0
    assert all(url.startswith("file://") for url in requested_urls(driver)), requested_urls(driver)
    assert len(driver.find_elements(By.CSS_SELECTOR, "#chart .bar")) == 4  # the pairs reported anywhere
    titles = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "#summary-list h3")]
    assert titles[0] == INJECTION  # shown as text ...
    assert driver.execute_script("return window.injected === undefined;")  # ... never run
    assert driver.find_elements(By.CSS_SELECTOR, "main img, main script") == []
    hrefs = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "a[href]")]
    assert hrefs and all(href.startswith(PUBMED) for href in hrefs)
    assert severe_console_messages(driver) == []


@pytest.mark.slow
@needs_browser
def test_table_sorts_by_a_clicked_column_and_filters(
    driver: webdriver.Chrome, report_url: str, browser_summary: LiteratureSummary
) -> None:
    open_report(driver, report_url, len(browser_summary.pairs))
    drugs = [p.drug for p in browser_summary.pairs]
    assert column(driver, 0) == drugs  # most-reported first, as summarised
    header(driver, "Drug").find_element(By.TAG_NAME, "button").click()
    assert column(driver, 0) == sorted(drugs)
    assert header(driver, "Drug").get_attribute("aria-sort") == "ascending"
    header(driver, "Drug").find_element(By.TAG_NAME, "button").click()
    assert column(driver, 0) == sorted(drugs, reverse=True)
    header(driver, "Abstracts").find_element(By.TAG_NAME, "button").click()  # numbers: most first
    expected = [str(p.abstracts) for p in sorted(browser_summary.pairs, key=lambda p: -p.abstracts)]
    assert column(driver, 2) == expected
    assert header(driver, "Abstracts").get_attribute("aria-sort") == "descending"
    assert header(driver, "Drug").get_attribute("aria-sort") == "none"
    driver.find_element(By.ID, "pair-filter").send_keys("ISONIAZ")
    assert column(driver, 0) == ["isoniazid"]
    assert driver.find_element(By.ID, "pair-count").text == f"1 of {len(drugs)} pairs"
    driver.find_element(By.ID, "pair-filter").send_keys(Keys.CONTROL, "a", Keys.DELETE)
    driver.find_element(By.ID, "pair-filter").send_keys("mesh:D000638")  # by code
    assert column(driver, 0) == ["amiodarone"]
    assert severe_console_messages(driver) == []


def evidence_shown(driver: webdriver.Chrome) -> list[dict]:
    """Each evidence item on screen: its marks, PMID link and badges."""
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: d.find_element(By.ID, "evidence-section").is_displayed()
    )
    return [
        {
            "marks": [(m.get_attribute("class"), m.text) for m in item.find_elements(By.TAG_NAME, "mark")],
            "link": item.find_element(By.CSS_SELECTOR, "a.pmid").get_attribute("href"),
            "badges": [b.text for b in item.find_elements(By.CSS_SELECTOR, ".badge")],
        }
        for item in driver.find_elements(By.CSS_SELECTOR, "#evidence-list li")
    ]


@pytest.mark.slow
@needs_browser
def test_clicking_a_pair_shows_its_evidence(
    driver: webdriver.Chrome, report_url: str, browser_summary: LiteratureSummary
) -> None:
    open_report(driver, report_url, len(browser_summary.pairs))
    driver.find_element(By.CSS_SELECTOR, "#pairs-table tbody tr[data-pair='0'] .pair-link").click()
    shown = evidence_shown(driver)
    assert driver.find_element(By.ID, "evidence-title").text == "amiodarone → pulmonary toxicity"
    assert shown[0] == {
        "marks": [("drug", "Amiodarone"), ("reaction", "pulmonary toxicity")],
        "link": f"{PUBMED}90000001/",
        "badges": [],
    }
    assert shown[1]["link"] == f"{PUBMED}90000009/"
    mark = driver.find_element(By.CSS_SELECTOR, "#evidence-list mark.drug")
    assert mark.value_of_css_property("background-color") == "rgba(207, 227, 255, 1)"  # the page's own style
    driver.find_element(
        By.CSS_SELECTOR, "#pairs-table tbody tr[data-pair='1']"
    ).click()  # the whole row works
    shown = evidence_shown(driver)
    assert driver.find_element(By.ID, "evidence-title").text == "isoniazid → hepatotoxicity"
    assert [item["badges"] for item in shown] == [[], ["negated"]]
    assert "selected" in driver.find_element(By.CSS_SELECTOR, "tr[data-pair='1']").get_attribute("class")
    assert severe_console_messages(driver) == []


@pytest.mark.slow
@needs_browser
@pytest.mark.parametrize(
    ("selector", "title"),
    [
        ("#chart .bar[data-pair='3']", "doxorubicin → cardiotoxicity"),
        ("#summary-list li[data-pmid='90000005'] button.chip", "ciprofloxacin → tendinopathy"),
    ],
)
def test_chart_bars_and_summary_chips_open_the_evidence(
    driver: webdriver.Chrome, report_url: str, browser_summary: LiteratureSummary, selector: str, title: str
) -> None:
    open_report(driver, report_url, len(browser_summary.pairs))
    driver.find_element(By.CSS_SELECTOR, selector).click()
    shown = evidence_shown(driver)
    assert driver.find_element(By.ID, "evidence-title").text == title
    assert shown and all(item["marks"] for item in shown)
    assert severe_console_messages(driver) == []
