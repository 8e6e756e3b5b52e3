"""BioScope (Vincze et al. 2008): negation and speculation cues and their scopes in biomedical text.

``abstracts.xml`` (1273 MEDLINE abstracts) and ``full_papers.xml`` (9 articles) follow ``BioScope.dtd``:
``<sentence>`` text with nested ``<xcope id>`` scopes and ``<cue type ref>`` cues, where ``ref`` names the
scope a cue opens. Rows are sentences (text = the sentence's character data, outer whitespace stripped).
Spans are cues (``negation_cue`` / ``speculation_cue``, one per ``<cue>`` element, so a discontinuous cue
such as "neither ... nor" is several spans) and scopes (``negation_scope`` / ``speculation_scope``, typed
by their cues, one per ``<xcope>``); a ``CUE_SCOPE`` relation goes from each cue to its scope.
``meta["scopes"]`` keeps the XML ids: ``[{"id": "X1.6.2", "type": "speculation", "scope": 5, "cues": [4]}]``.
A scope no cue refers to (4 in full_papers.xml, duplicates of a nested scope) is dropped and logged.

The clinical sub-corpus (``clinical_merger/clinical_records_anon.xml``) is not read: every word of it is
masked as ``*`` and the radiology reports that fill it in (2007 CMC challenge) are not distributed here.

No official split: ``hash_split(document id)`` keeps the sentences of a document together.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from corpora.base import (
    CorpusFormatError,
    CorpusSpec,
    hash_split,
    register,
    relation,
    require_file,
    row,
    span,
)

NAME = "bioscope"
FILES = {"abstracts": "abstracts.xml", "full_papers": "full_papers.xml"}
CUE_TYPES = frozenset({"negation", "speculation"})

log = logging.getLogger(__name__)


class SentenceText:
    """The text of one ``<sentence>`` and the character extents of its ``<xcope>`` and ``<cue>`` elements."""

    def __init__(self, sentence: ET.Element) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.scopes: dict[str, tuple[int, int]] = {}  # xcope id -> extent
        self.cues: list[tuple[str, str, int, int]] = []  # (type, ref, start, end)
        self.where = sentence.get("id", "?")
        self._walk(sentence)
        self.text = "".join(self.parts)

    def _append(self, text: str | None) -> None:
        if text:
            self.parts.append(text)
            self.length += len(text)

    def _walk(self, element: ET.Element) -> None:
        start = self.length
        self._append(element.text)
        for child in element:
            if child.tag not in ("xcope", "cue"):
                raise CorpusFormatError(f"sentence {self.where}: unexpected <{child.tag}>")
            self._walk(child)
            self._append(child.tail)
        end = self.length
        if element.tag == "xcope":
            scope_id = element.get("id")
            if not scope_id or scope_id in self.scopes:
                raise CorpusFormatError(f"sentence {self.where}: <xcope> without a unique id ({scope_id!r})")
            self.scopes[scope_id] = (start, end)
        elif element.tag == "cue":
            cue_type, ref = element.get("type", ""), element.get("ref", "")
            if cue_type not in CUE_TYPES or not ref:
                raise CorpusFormatError(f"sentence {self.where}: <cue type={cue_type!r} ref={ref!r}>")
            self.cues.append((cue_type, ref, start, end))


def sentence_row(sentence: ET.Element, subcorpus: str, doc_id: str, part: str) -> tuple[dict[str, Any], int]:
    """One sentence as a row, and how many of its scopes had no cue (and were dropped)."""
    parsed = SentenceText(sentence)
    sentence_id = sentence.get("id", "")
    where = f"{FILES[subcorpus]} sentence {sentence_id}"
    text = parsed.text.strip()
    shift = len(parsed.text) - len(parsed.text.lstrip())

    types: dict[str, set[str]] = {}
    for cue_type, ref, _, _ in parsed.cues:
        if ref not in parsed.scopes:
            raise CorpusFormatError(f"{where}: a {cue_type} cue refers to scope {ref!r}, which is not there")
        types.setdefault(ref, set()).add(cue_type)

    spans: list[dict] = []
    relations: list[dict] = []
    scopes: list[dict[str, Any]] = []
    scope_index: dict[str, int] = {}
    for scope_id, (start, end) in sorted(parsed.scopes.items(), key=lambda item: (item[1][0], -item[1][1])):
        if scope_id not in types:
            continue
        if len(types[scope_id]) > 1:
            raise CorpusFormatError(f"{where}: scope {scope_id} has cues of types {sorted(types[scope_id])}")
        (scope_type,) = types[scope_id]
        scope_index[scope_id] = len(spans)
        spans.append(span(text, start - shift, end - shift, f"{scope_type}_scope", where=where))
        scopes.append({"id": scope_id, "type": scope_type, "scope": scope_index[scope_id], "cues": []})
    by_id = {scope["id"]: scope for scope in scopes}
    for cue_type, ref, start, end in sorted(parsed.cues, key=lambda cue: cue[2]):
        by_id[ref]["cues"].append(len(spans))
        relations.append(relation("CUE_SCOPE", len(spans), scope_index[ref]))
        spans.append(span(text, start - shift, end - shift, f"{cue_type}_cue", where=where))
    dropped = len(parsed.scopes) - len(scope_index)
    meta = {
        "doc_id": doc_id,
        "subcorpus": subcorpus,
        "sentence_id": sentence_id,
        "part": part,
        "scopes": scopes,
    }
    return row(f"{subcorpus}:{sentence_id}", text, spans, relations, **meta), dropped


def read_file(path: Path, subcorpus: str) -> dict[str, list[dict[str, Any]]]:
    """Rows of one BioScope XML file, by hash split of their document id."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise CorpusFormatError(f"{path.name}: not well-formed XML ({err})") from None
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "validation": [], "test": []}
    dropped = 0
    for document in root.iter("Document"):
        doc_id = (document.findtext("DocID") or "").strip()
        if not doc_id:
            raise CorpusFormatError(f"{path.name}: a <Document> without a <DocID>")
        rows = splits[hash_split(doc_id)]
        for part in document.iter("DocumentPart"):
            for sentence in part.iter("sentence"):
                row_, n_dropped = sentence_row(sentence, subcorpus, doc_id, part.get("type", ""))
                rows.append(row_)
                dropped += n_dropped
    if dropped:
        log.info("%s %s: %d scopes without a cue dropped", NAME, path.name, dropped)
    return splits


def read(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Sentences of the abstracts and full papers by hash split of their document id."""
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "validation": [], "test": []}
    for subcorpus, filename in FILES.items():
        for split, rows in read_file(require_file(folder / filename, NAME), subcorpus).items():
            splits[split].extend(rows)
    return {split: rows for split, rows in splits.items() if rows}  # a split can be empty


SPEC = register(
    CorpusSpec(
        name=NAME,
        title="BioScope corpus (negation and speculation cues and scopes; abstracts and full papers)",
        source="https://rgai.inf.u-szeged.hu (BioScope; copy used: "
        "https://github.com/joey234/negation-focused-pretraining data/bioscope/)",
        licence="CC BY 2.0 (BigBio dataset card), free of charge for research; "
        "cite Vincze et al., BMC Bioinformatics 9(Suppl 11):S9, 2008",
        reader=read,
        label_map={},
        annotated=frozenset(),
        official_splits=False,
    )
)
