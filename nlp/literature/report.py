"""Write a literature summary as ``summary.json``, ``pairs.csv`` and a self-contained ``report.html``.

The HTML page works offline from a ``file://`` URL: CSS and JavaScript are inline, the data sits in
a ``<script type="application/json">`` element, and a Content-Security-Policy that allows only this
page's own script and style (by hash) and no network at all keeps it that way. Every text from the
abstracts reaches the page through ``textContent`` or ``html.escape``, never as markup. The only
URLs are the PubMed links of numeric PMIDs.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nlp.errors import InputError
from nlp.literature.model import ConceptCode, Evidence, LiteratureSummary, PairSummary

log = logging.getLogger(__name__)

SUMMARY_FILE = "summary.json"
PAIRS_FILE = "pairs.csv"
REPORT_FILE = "report.html"
PAIRS_COLUMNS = (
    "drug",
    "reaction",
    "drug_codes",
    "reaction_codes",
    "abstracts",
    "negated",
    "speculative",
    "animal",
    "pmids",
)
CHART_PAIRS = 20  # bars in the chart of the most-reported pairs
HTML_EVIDENCE_PER_PAIR = 50  # evidence sentences per pair on the page (summary.json has them all)
PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/"
_MARKER = re.compile(r"@@([A-Z]+)@@")


def write_report(summary: LiteratureSummary, out_dir: Path) -> dict[str, Path]:
    """Write the three report files into ``out_dir`` (created if needed; files are replaced atomically).

    Args:
        summary: what ``summarize`` found.
        out_dir: the report folder.

    Returns:
        The written files by name: ``{"summary.json": ..., "pairs.csv": ..., "report.html": ...}``.

    Raises:
        InputError: ``unwritable_output`` when the folder or a file cannot be written.
    """
    out_dir = Path(out_dir)
    contents = {
        SUMMARY_FILE: json.dumps(summary.to_dict(), ensure_ascii=False, indent=1) + "\n",
        PAIRS_FILE: render_pairs_csv(summary.pairs),
        REPORT_FILE: render_html(summary),
    }
    written: dict[str, Path] = {}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, text in contents.items():
            path = out_dir / name
            partial = path.with_name(f".{name}.partial")
            partial.write_text(text, encoding="utf-8", newline="")
            os.replace(partial, path)
            written[name] = path
    except OSError as exc:
        raise InputError(
            f"cannot write the report to {out_dir}: {exc.strerror or exc}", code="unwritable_output"
        ) from exc
    log.info("report: %d pairs, %d abstracts written to %s", len(summary.pairs), summary.abstracts, out_dir)
    return written


def render_pairs_csv(pairs: Sequence[PairSummary]) -> str:
    """``pairs.csv``: a row per pair (``PAIRS_COLUMNS``); codes (``system:code``), PMIDs joined by ``;``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(PAIRS_COLUMNS)
    for pair in pairs:
        writer.writerow(
            [
                pair.drug,
                pair.reaction,
                ";".join(_code_label(c) for c in pair.drug_codes),
                ";".join(_code_label(c) for c in pair.reaction_codes),
                pair.abstracts,
                pair.negated,
                pair.speculative,
                pair.animal,
                ";".join(pair.pmids),
            ]
        )
    return buffer.getvalue()


def render_html(summary: LiteratureSummary) -> str:
    """``report.html``: one self-contained page (see the module docstring)."""
    pairs = len(summary.pairs)
    meta = [
        _count(summary.abstracts, "abstract"),
        f"{len(summary.failed)} failed",
        _count(pairs, "drug–reaction pair"),
        f"pipeline {summary.pipeline}",
        f"{summary.seconds:.1f} s",
    ]
    fields = {
        "CSP": _CSP,
        "STYLE": _STYLE,
        "SCRIPT": _SCRIPT,
        "META": html.escape(" · ".join(meta)),
        "CHART": _chart_svg(summary.pairs),
        "DATA": _script_json(_page_data(summary)),
    }
    # one pass: a marker-like string inside the data is never substituted again
    return _MARKER.sub(lambda match: fields[match.group(1)], _PAGE)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _code_label(code: ConceptCode) -> str:
    return f"{code.system}:{code.code}"


def _pubmed_link(pmid: str) -> str | None:
    """The PubMed URL of a numeric PMID; other ids (from JSONL/CSV inputs) get no link."""
    return f"{PUBMED_URL}{pmid}/" if pmid.isascii() and pmid.isdigit() else None


def _segments(evidence: Evidence) -> list[tuple[str, str]]:
    """The sentence cut into ``(text, classes)`` pieces; ``classes`` marks the drug and the reaction.

    A mention is marked only where its offsets fall in the sentence and give its text, so a
    mention in another sentence or with stale offsets is never mis-highlighted.
    """
    sentence = evidence.sentence
    marks = []
    for kind, start, end, text in (
        ("drug", evidence.drug_start, evidence.drug_end, evidence.drug_text),
        ("reaction", evidence.reaction_start, evidence.reaction_end, evidence.reaction_text),
    ):
        start, end = start - evidence.sentence_start, end - evidence.sentence_start
        if 0 <= start < end <= len(sentence) and sentence[start:end] == text:
            marks.append((start, end, kind))
    cuts = sorted({0, len(sentence), *(offset for start, end, _ in marks for offset in (start, end))})
    return [
        (sentence[a:b], " ".join(kind for start, end, kind in marks if start <= a and b <= end))
        for a, b in zip(cuts, cuts[1:], strict=False)
        if a < b
    ]


def _page_data(summary: LiteratureSummary) -> dict[str, Any]:
    """What the page's script renders: codes as labels, evidence cut into highlighted pieces."""
    return {
        "failed": [list(failure) for failure in summary.failed],
        "pairs": [
            {
                "drug": pair.drug,
                "reaction": pair.reaction,
                "drug_codes": [_code_label(c) for c in pair.drug_codes],
                "reaction_codes": [_code_label(c) for c in pair.reaction_codes],
                "abstracts": pair.abstracts,
                "negated": pair.negated,
                "speculative": pair.speculative,
                "animal": pair.animal,
                "pmids": [[pmid, _pubmed_link(pmid)] for pmid in pair.pmids],
                "evidence_total": len(pair.evidence),
                "evidence": [
                    {
                        "pmid": evidence.pmid,
                        "url": _pubmed_link(evidence.pmid),
                        "segments": _segments(evidence),
                        "assertion": evidence.assertion,
                        "flags": list(evidence.flags),
                        "score": round(evidence.score, 3),
                        "method": evidence.method,
                    }
                    for evidence in pair.evidence[:HTML_EVIDENCE_PER_PAIR]
                ],
            }
            for pair in summary.pairs
        ],
        "summaries": [
            {
                "pmid": item.pmid,
                "url": _pubmed_link(item.pmid),
                "title": item.title,
                "year": item.year,
                "summary": list(item.summary),
                "pairs": [list(pair) for pair in item.pairs],
                "flags": list(item.flags),
            }
            for item in summary.summaries
        ],
    }


def _script_json(data: dict[str, Any]) -> str:
    """JSON that cannot end its ``<script>`` element or open a comment: ``<``, ``>`` and ``&`` escaped."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _chart_svg(pairs: Sequence[PairSummary]) -> str:
    """A horizontal bar chart (inline SVG) of the pairs reported in the most abstracts."""
    ranked = sorted(
        ((index, pair) for index, pair in enumerate(pairs) if pair.abstracts > 0),
        key=lambda item: -item[1].abstracts,
    )[:CHART_PAIRS]
    if not ranked:
        return '<p class="empty">No drug–reaction pair is reported in any abstract.</p>'
    label_width, bar_width, row_height = 330, 330, 24
    most = max(pair.abstracts for _, pair in ranked)
    rows = []
    for row, (index, pair) in enumerate(ranked):
        y = row * row_height
        name = f"{pair.drug} → {pair.reaction}"
        shown = name if len(name) <= 46 else name[:45] + "…"
        width = max(2.0, bar_width * pair.abstracts / most)
        label = html.escape(f"{name}: {_count(pair.abstracts, 'abstract')}")
        rows.append(
            f'<g class="bar" data-pair="{index}" tabindex="0" role="button" aria-label="{label}">'
            f"<title>{label}</title>"
            f'<text class="bar-label" x="{label_width - 8}" y="{y + 16}" text-anchor="end">'
            f"{html.escape(shown)}</text>"
            f'<rect x="{label_width}" y="{y + 4}" width="{width:.1f}" height="{row_height - 8}" rx="2">'
            "</rect>"
            f'<text class="bar-count" x="{label_width + width + 6:.1f}" y="{y + 16}">{pair.abstracts}</text>'
            "</g>"
        )
    height = len(ranked) * row_height
    total_width = label_width + bar_width + 40
    return (
        f'<svg id="chart" viewBox="0 0 {total_width} {height}" width="{total_width}" height="{height}" '
        f'role="group" aria-label="Most-reported drug–reaction pairs">{"".join(rows)}</svg>'
    )


def _csp_hash(source: str) -> str:
    return (
        "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii") + "'"
    )


_STYLE = """
:root { --drug: #cfe3ff; --reaction: #ffd9b3; --ink: #1f2328; --muted: #57606a; --line: #d0d7de; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); margin: 0; }
header { background: #f6f8fa; border-bottom: 1px solid var(--line); padding: 1rem 1.5rem; }
header h1 { font-size: 1.35rem; margin: 0 0 .25rem; }
main { padding: 0 1.5rem 2rem; max-width: 75rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
.meta, .empty, .note { color: var(--muted); }
#chart .bar { cursor: pointer; }
#chart .bar rect { fill: #4f7fbf; }
#chart .bar:hover rect, #chart .bar:focus rect { fill: #1f4f8f; }
#chart .bar:focus { outline: none; }
#chart text { font-size: 12px; fill: var(--ink); }
.filter { margin: .25rem 0 .5rem; }
.filter input { font: inherit; padding: .2rem .4rem; width: 18rem; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid var(--line); padding: .3rem .5rem; text-align: left; vertical-align: top; }
th button { font: inherit; font-weight: 600; background: none; border: 0; padding: 0; cursor: pointer; }
th[aria-sort="ascending"] button::after { content: " ▲"; }
th[aria-sort="descending"] button::after { content: " ▼"; }
td.number, th.number { text-align: right; }
td.codes { color: var(--muted); font-size: .85em; }
tbody tr { cursor: pointer; }
tbody tr:hover, tbody tr.selected { background: #eef4ff; }
.pair-link { font: inherit; background: none; border: 0; padding: 0; color: #0b5cad; cursor: pointer; }
.pair-link { text-align: left; }
.pair-link:hover { text-decoration: underline; }
mark.drug { background: var(--drug); }
mark.reaction { background: var(--reaction); }
mark.drug.reaction { background: linear-gradient(var(--drug), var(--reaction)); }
.evidence { margin-bottom: .75rem; }
.sentence { margin: 0 0 .15rem; }
.badge { display: inline-block; border-radius: .6rem; padding: 0 .4rem; font-size: .8em; background: #eee; }
.badge.flag-negated { background: #ffd7d5; }
.badge.flag-speculative { background: #fff1b8; }
.badge.flag-animal { background: #d8f3dc; }
.summaries > li { margin-bottom: 1rem; }
.summaries h3 { font-size: 1rem; margin: 0; }
.chip { margin-right: .35rem; }
"""

_SCRIPT = """
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const pairs = data.pairs;
  const SUMMARY_PAGE = 50;

  function el(tag, props, children) {
    const node = document.createElement(tag);
    Object.entries(props || {}).forEach(([key, value]) => {
      if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    });
    (children || []).forEach((child) => {
      if (child !== null && child !== undefined) {
        node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
      }
    });
    return node;
  }

  function pmidLink(pmid, url) {
    if (!url) return el("span", {class: "pmid", text: "PMID " + pmid});
    const props = {class: "pmid", href: url, target: "_blank", rel: "noopener noreferrer"};
    return el("a", Object.assign(props, {text: "PMID " + pmid}));
  }

  function badges(flags) {
    return flags.map((flag) => el("span", {class: "badge flag-" + flag, text: flag}));
  }

  // --- the drug x reaction table ---
  const COLUMNS = [
    {key: "drug", label: "Drug", value: (p) => p.drug},
    {key: "reaction", label: "Reaction", value: (p) => p.reaction},
    {key: "abstracts", label: "Abstracts", number: true, value: (p) => p.abstracts},
    {key: "negated", label: "Negated", number: true, value: (p) => p.negated},
    {key: "speculative", label: "Speculative", number: true, value: (p) => p.speculative},
    {key: "animal", label: "Animal", number: true, value: (p) => p.animal},
    {key: "pmids", label: "PMIDs", number: true, value: (p) => p.pmids.length},
    {key: "codes", label: "Codes", value: (p) => p.drug_codes.concat(p.reaction_codes).join(" ")},
  ];
  const table = document.getElementById("pairs-table");
  const filterBox = document.getElementById("pair-filter");
  const sort = {key: null, descending: false};
  let selected = null;

  const headRow = el("tr");
  COLUMNS.forEach((column) => {
    const button = el("button", {type: "button", text: column.label});
    const props = {"data-key": column.key, "aria-sort": "none", class: column.number ? "number" : ""};
    const th = el("th", props, [button]);
    button.addEventListener("click", () => {
      sort.descending = sort.key === column.key ? !sort.descending : Boolean(column.number);
      sort.key = column.key;
      renderRows();
    });
    headRow.appendChild(th);
  });
  table.tHead.appendChild(headRow);

  function rowOrder() {
    const query = filterBox.value.trim().toLowerCase();
    const indices = pairs.map((_, i) => i).filter((i) => {
      const p = pairs[i];
      const words = [p.drug, p.reaction].concat(p.drug_codes, p.reaction_codes).join(" ");
      return !query || words.toLowerCase().includes(query);
    });
    const column = COLUMNS.find((c) => c.key === sort.key);
    if (column) {
      const sign = sort.descending ? -1 : 1;
      indices.sort((a, b) => {
        const x = column.value(pairs[a]);
        const y = column.value(pairs[b]);
        const order = column.number ? x - y : String(x).localeCompare(String(y));
        return order * sign || a - b;
      });
    }
    return indices;
  }

  function renderRows() {
    table.querySelectorAll("thead th").forEach((th) => {
      const active = th.dataset.key === sort.key;
      th.setAttribute("aria-sort", active ? (sort.descending ? "descending" : "ascending") : "none");
    });
    const body = table.tBodies[0];
    body.replaceChildren();
    const order = rowOrder();
    order.forEach((i) => {
      const p = pairs[i];
      const cells = COLUMNS.map((column) => {
        if (column.key === "drug") {
          return el("td", {}, [el("button", {type: "button", class: "pair-link", text: p.drug})]);
        }
        const kind = column.number ? "number" : column.key === "codes" ? "codes" : "";
        return el("td", {class: kind, text: String(column.value(p))});
      });
      const row = el("tr", {"data-pair": String(i), class: i === selected ? "selected" : ""}, cells);
      row.addEventListener("click", () => showPair(i));
      body.appendChild(row);
    });
    document.getElementById("pair-count").textContent = order.length + " of " + pairs.length + " pairs";
  }
  filterBox.addEventListener("input", renderRows);

  // --- the evidence of one pair ---
  function sentence(segments) {
    const pieces = segments.map(([text, kinds]) => (kinds ? el("mark", {class: kinds, text: text}) : text));
    return el("p", {class: "sentence"}, pieces);
  }

  function showPair(i) {
    const p = pairs[i];
    selected = i;
    table.querySelectorAll("tbody tr").forEach((row) => {
      row.classList.toggle("selected", row.dataset.pair === String(i));
    });
    document.getElementById("evidence-title").textContent = p.drug + " → " + p.reaction;
    const codes = p.drug_codes.concat(p.reaction_codes);
    document.getElementById("evidence-meta").replaceChildren(
      p.abstracts + " reporting, " + p.negated + " negated, " + p.speculative + " speculative, " +
        p.animal + " animal" + (codes.length ? " · codes: " + codes.join(", ") : "") + " · ",
      ...p.pmids.flatMap(([pmid, url], k) => (k ? [", ", pmidLink(pmid, url)] : [pmidLink(pmid, url)])),
    );
    const list = document.getElementById("evidence-list");
    list.replaceChildren(...p.evidence.map((ev) => el("li", {class: "evidence"}, [
      sentence(ev.segments),
      el("p", {class: "meta"}, [
        pmidLink(ev.pmid, ev.url), " ", ...badges(ev.flags),
        " " + ev.assertion + " · score " + ev.score.toFixed(2) + " · " + ev.method,
      ]),
    ])));
    const more = p.evidence_total - p.evidence.length;
    document.getElementById("evidence-more").textContent =
      more > 0 ? more + " more sentences are in summary.json." : "";
    const section = document.getElementById("evidence-section");
    section.hidden = false;
    section.scrollIntoView({block: "start"});
  }

  document.querySelectorAll("#chart .bar").forEach((bar) => {
    const open = () => showPair(Number(bar.dataset.pair));
    bar.addEventListener("click", open);
    bar.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        open();
      }
    });
  });

  // --- per-abstract summaries ---
  const pairIndex = new Map(pairs.map((p, i) => [p.drug + "\\u0000" + p.reaction, i]));
  const summaryFilter = document.getElementById("summary-filter");
  const moreButton = document.getElementById("summary-more");
  let shown = SUMMARY_PAGE;

  function chip(drug, reaction) {
    const i = pairIndex.get(drug + "\\u0000" + reaction);
    const text = drug + " → " + reaction;
    if (i === undefined) return el("span", {class: "chip", text: text});
    const button = el("button", {type: "button", class: "pair-link chip", text: text});
    button.addEventListener("click", () => showPair(i));
    return button;
  }

  function renderSummaries() {
    const query = summaryFilter.value.trim().toLowerCase();
    const matching = data.summaries.filter((s) => !query ||
      [s.pmid, s.title].concat(s.pairs.map((p) => p.join(" "))).join(" ").toLowerCase().includes(query));
    const items = matching.slice(0, shown).map((s) => el("li", {"data-pmid": s.pmid}, [
      el("h3", {text: s.title}),
      el("p", {class: "meta"}, [
        pmidLink(s.pmid, s.url), s.year === null ? "" : " · " + s.year, " ", ...badges(s.flags),
      ]),
      el("ul", {}, s.summary.map((text) => el("li", {text: text}))),
      s.pairs.length ? el("p", {}, s.pairs.map(([drug, reaction]) => chip(drug, reaction))) : null,
    ]));
    document.getElementById("summary-list").replaceChildren(...items);
    moreButton.hidden = matching.length <= shown;
    document.getElementById("summary-count").textContent =
      items.length + " of " + matching.length + " abstracts";
  }
  summaryFilter.addEventListener("input", () => {
    shown = SUMMARY_PAGE;
    renderSummaries();
  });
  moreButton.addEventListener("click", () => {
    shown += SUMMARY_PAGE;
    renderSummaries();
  });

  // --- records that were not read ---
  const failedBody = document.getElementById("failed-table").tBodies[0];
  data.failed.forEach(([where, code, message]) => {
    const cells = [where, code, message].map((text) => el("td", {text: text}));
    failedBody.appendChild(el("tr", {}, cells));
  });
  document.getElementById("failed-section").hidden = data.failed.length === 0;

  renderRows();
  renderSummaries();
})();
"""

_CSP = (
    "default-src 'none'; "
    f"script-src {_csp_hash(_SCRIPT)}; style-src {_csp_hash(_STYLE)}; "
    "img-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'"
)

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="@@CSP@@">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Drug → reaction evidence in the literature</title>
<style>@@STYLE@@</style>
</head>
<body>
<header>
<h1>Drug → reaction evidence in the literature</h1>
<p class="meta" id="report-meta">@@META@@</p>
<noscript><p>The tables need JavaScript; the same data is in pairs.csv and summary.json.</p></noscript>
</header>
<main>
<section id="chart-section">
<h2>Most-reported pairs</h2>
<p class="note">Abstracts with at least one reported (not negated, not speculative) statement.
Click a bar for its evidence.</p>
@@CHART@@
</section>
<section id="pairs-section">
<h2>Drug × reaction</h2>
<p class="filter"><label for="pair-filter">Filter </label>
<input id="pair-filter" type="search" placeholder="drug, reaction or code">
<span class="meta" id="pair-count"></span></p>
<table id="pairs-table"><thead></thead><tbody></tbody></table>
</section>
<section id="evidence-section" hidden>
<h2 id="evidence-title"></h2>
<p class="meta" id="evidence-meta"></p>
<ol id="evidence-list"></ol>
<p class="note" id="evidence-more"></p>
</section>
<section id="summaries-section">
<h2>Abstracts</h2>
<p class="filter"><label for="summary-filter">Filter </label>
<input id="summary-filter" type="search" placeholder="title, PMID, drug or reaction">
<span class="meta" id="summary-count"></span></p>
<ol class="summaries" id="summary-list"></ol>
<button type="button" id="summary-more" hidden>Show more</button>
</section>
<section id="failed-section" hidden>
<h2>Records that failed</h2>
<table id="failed-table">
<thead><tr><th>Record</th><th>Code</th><th>Message</th></tr></thead><tbody></tbody>
</table>
</section>
</main>
<script type="application/json" id="report-data">@@DATA@@</script>
<script>@@SCRIPT@@</script>
</body>
</html>
"""
