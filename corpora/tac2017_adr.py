"""TAC 2017 ADR corpus (Demner-Fushman et al. 2018): adverse reactions in 200 US drug labels (SPLs).

Read from the OnSIDES re-packaging (``demner-fushman-{train,test}-labels.json``): a JSON list with one
object per (drug label, section) -- ``label_id``, ``section_name`` (adverse reactions, warnings and
precautions, boxed warnings), ``section_text`` and ``adverse_events``, each
``[mention, PT term, PT id, LLT term, LLT id, start, length, source]`` with ``source`` in human / animal /
drug_class. Rows are sections. Spans are ``AdverseReaction`` mentions with ``ids = ["MEDDRA:<PT id>"]``;
mentions are lower-cased in the file, so they are checked against the text case-insensitively and the
span text is the section's own. Two mentions at the same offsets are one span with the union of their
ids. ``meta["span_attributes"]`` runs parallel to ``spans`` (``sources``, ``llt_ids``).

The re-packaging drops the offsets of discontinuous mentions (about 8% of the mentions): they cannot be
placed and are kept in ``meta["unplaced"]`` (text, ids, llt_ids, source), not as spans. It also drops the
original TAC Severity / Factor / DrugClass / Negation / Animal mentions and their relations.

Not exhaustive for PROBLEM: only adverse reactions are annotated (not indications or other conditions),
and the unplaced discontinuous mentions leave annotated text unmarked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from corpora.base import CorpusFormatError, CorpusSpec, register, require_file, row, span

NAME = "tac2017_adr"
FILES = {"train": "demner-fushman-train-labels.json", "test": "demner-fushman-test-labels.json"}
LABEL = "AdverseReaction"


def meddra_id(code: float | int | str | None, where: str) -> list[str]:
    """A MedDRA code as released (``10000081.0``) -> ``["MEDDRA:10000081"]``; ``None`` -> ``[]``."""
    if code is None or code == "":
        return []
    try:
        return [f"MEDDRA:{int(float(code))}"]
    except ValueError:
        raise CorpusFormatError(f"{where}: MedDRA code {code!r} is not a number") from None


def section_row(section: dict[str, Any], where: str) -> dict[str, Any]:
    """One (label, section) object as a row."""
    try:
        label_id, name, text = section["label_id"], section["section_name"], section["section_text"]
        events = section["adverse_events"]
    except (KeyError, TypeError):
        raise CorpusFormatError(
            f"{where}: expected label_id, section_name, section_text, adverse_events"
        ) from None
    where = f"{where} ({label_id}, {name})"
    spans: list[dict] = []
    attributes: list[dict[str, list[str]]] = []
    index: dict[tuple[int, int], int] = {}
    unplaced: list[dict[str, Any]] = []
    for event in events:
        if not isinstance(event, list) or len(event) != 8:
            raise CorpusFormatError(f"{where}: an adverse event is not an 8-item list: {event!r}")
        mention, _, pt_id, _, llt_id, start, length, source = event
        ids, llt_ids = meddra_id(pt_id, where), meddra_id(llt_id, where)
        if start is None:
            unplaced.append({"text": mention, "ids": ids, "llt_ids": llt_ids, "source": source})
            continue
        try:
            begin, end = int(start), int(start) + int(length)
        except (TypeError, ValueError):
            raise CorpusFormatError(
                f"{where}: offset {start!r}+{length!r} of {mention!r} is not a number"
            ) from None
        if text[begin:end].lower() != mention.lower():
            raise CorpusFormatError(
                f"{where}: offsets {begin}-{end} give {text[begin:end]!r}, the annotation says {mention!r}"
            )
        if (begin, end) not in index:
            index[(begin, end)] = len(spans)
            spans.append(span(text, begin, end, LABEL, where=where))
            attributes.append({"sources": [], "llt_ids": []})
        i = index[(begin, end)]
        spans[i]["ids"].extend(x for x in ids if x not in spans[i]["ids"])
        attributes[i]["sources"].extend(x for x in [source] if x not in attributes[i]["sources"])
        attributes[i]["llt_ids"].extend(x for x in llt_ids if x not in attributes[i]["llt_ids"])
    return row(
        f"{label_id}:{name}",
        text,
        spans,
        label_id=label_id,
        section=name,
        span_attributes=attributes,
        unplaced=unplaced,
    )


def read_labels(path: Path) -> list[dict[str, Any]]:
    """Rows of one OnSIDES label file."""
    try:
        sections = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CorpusFormatError(f"{path.name}: not JSON ({err})") from None
    if not isinstance(sections, list):
        raise CorpusFormatError(f"{path.name}: expected a JSON list of label sections")
    return [section_row(section, f"{path.name}[{i}]") for i, section in enumerate(sections)]


def read(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Sections of the official train and test labels."""
    return {split: read_labels(require_file(folder / name, NAME)) for split, name in FILES.items()}


SPEC = register(
    CorpusSpec(
        name=NAME,
        title="TAC 2017 Adverse Drug Reaction corpus (200 drug labels; OnSIDES JSON re-packaging)",
        source="https://osf.io/6h9q4 (NLM release); JSON used: "
        "https://github.com/tatonetti-lab/onsides database/annotations/",
        licence="CC0 1.0 (NLM dataset); OnSIDES re-packaging MIT; "
        "cite Demner-Fushman et al., Sci Data 5:180001, 2018",
        reader=read,
        label_map={LABEL: "PROBLEM"},
        annotated=frozenset(),
    )
)
