"""Chia: entities and relations in clinical-trial eligibility criteria (brat standoff).

One row per file of ``chia_with_scope/``: ``NCTxxxxxxxx_inc`` (inclusion criteria) and ``_exc``
(exclusion criteria), with ``meta`` ``nct_id`` and ``section``. No official splits: ``hash_split`` of the
NCT id keeps both files of a trial in the same split.

How the brat files are read:

- Most ``.txt`` files have CRLF line ends and the offsets count both characters. The row text has LF
  line ends and the offsets are moved to match it.
- An entity whose text crosses a line break continues on the next ``.ann`` line(s); those lines (18 in
  the release) are joined back to the entity's text. Other lines without an annotation id are skipped
  and counted.
- A discontinuous entity (``start end;start end``) becomes one span per fragment with the same label;
  ``meta["discontinuous"]`` lists the span indices of each such entity, and relations point at the
  entity's first fragment.
- An entity whose offsets do not give its annotated text (3 in the release; compared with whitespace
  runs collapsed, as brat joins fragments with a space) is dropped with its relations, and counted; more
  than ``MAX_MISMATCH_FRACTION`` of all entities is a CorpusFormatError.
- ``R`` lines become relations; each ``*`` group (``OR``, and 4 ``NOT`` groups) becomes relations of the
  group's type between consecutive members, which keeps the group recoverable as a connected chain.
- ``A`` lines (the ``Optional`` attribute) go to ``meta["attributes"]`` as ``{"name", "span"}``;
  annotator notes (``#``) are ignored.
"""

from __future__ import annotations

import bisect
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
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

NAME = "chia"
FOLDER = "chia_with_scope"
SECTIONS = {"inc": "inclusion", "exc": "exclusion"}
MAX_MISMATCH_FRACTION = 0.01
ANNOTATION_LINE = re.compile(r"(?:[TREAMN#]\d+|\*)\t")

log = logging.getLogger(__name__)


@dataclass
class ReadStats:
    """What the reader repaired or dropped across the corpus."""

    entities: int = 0
    continuation_lines: int = 0
    malformed_lines: int = 0
    mismatched_entities: list[str] = field(default_factory=list)
    dropped_relations: int = 0


def _annotation_lines(ann: str, stats: ReadStats) -> list[str]:
    """The ``.ann`` lines, entity texts that cross line breaks joined back together."""
    lines: list[str] = []
    for line in ann.split("\n"):
        if ANNOTATION_LINE.match(line):
            lines.append(line)
        elif not line.strip():
            continue
        elif lines and lines[-1].startswith("T"):
            lines[-1] += "\n" + line
            stats.continuation_lines += 1
        else:
            stats.malformed_lines += 1
    return lines


def _lf_text(raw: str) -> tuple[str, Callable[[int], int]]:
    """``raw`` with CRLF -> LF, and a function moving offsets of ``raw`` into the new text."""
    crs = [m.start() for m in re.finditer("\r\n", raw)]
    if not crs:
        return raw, lambda offset: offset
    return raw.replace("\r\n", "\n"), lambda offset: offset - bisect.bisect_left(crs, offset)


def _same_text(got: str, expected: str) -> bool:
    return got == expected or got.split() == expected.split()


def read_brat_file(txt: Path, ann: Path, stats: ReadStats) -> dict[str, Any]:
    """One Chia file pair as a row."""
    text, move = _lf_text(txt.read_bytes().decode("utf-8"))
    entities: list[tuple[str, str, list[tuple[int, int]]]] = []  # (T id, label, fragments)
    links: list[tuple[str, str, str]] = []  # (type, head T id, tail T id)
    attributes: list[tuple[str, str]] = []  # (name, T id)
    for line in _annotation_lines(ann.read_text(encoding="utf-8"), stats):
        cols = line.split("\t")
        kind = cols[0][0]
        try:
            if kind == "T":
                label, _, offsets = cols[1].partition(" ")
                expected = cols[2]
                fragments = [(move(int(s)), move(int(e))) for s, e in (f.split() for f in offsets.split(";"))]
                stats.entities += 1
                got = " ".join(text[s:e] for s, e in fragments)
                if all(s < e for s, e in fragments) and _same_text(got, expected):
                    entities.append((cols[0], label, fragments))
                else:
                    stats.mismatched_entities.append(f"{ann.name}:{cols[0]}")
            elif kind == "R":
                type_, arg1, arg2 = cols[1].split()
                links.append((type_, arg1.split(":", 1)[1], arg2.split(":", 1)[1]))
            elif kind == "*":
                type_, *members = cols[1].split()
                links.extend((type_, a, b) for a, b in zip(members, members[1:], strict=False))
            elif kind == "A":
                name, target, *_ = cols[1].split()
                attributes.append((name, target))
        except (IndexError, ValueError):
            stats.malformed_lines += 1

    order = sorted(
        (start, end, label, tid, n)
        for tid, label, fragments in entities
        for n, (start, end) in enumerate(fragments)
    )
    where = f"{FOLDER}/{ann.name}"
    spans = [span(text, start, end, label, where=where) for start, end, label, _, _ in order]
    fragments_of: dict[str, list[tuple[int, int]]] = {}  # T id -> (fragment number, span index)
    for index, (*_, tid, n) in enumerate(order):
        fragments_of.setdefault(tid, []).append((n, index))
    first = {tid: min(pairs)[1] for tid, pairs in fragments_of.items()}
    discontinuous = [[i for _, i in sorted(pairs)] for pairs in fragments_of.values() if len(pairs) > 1]

    relations = []
    for type_, head, tail in links:
        if head in first and tail in first:
            relations.append(relation(type_, first[head], first[tail]))
        else:
            stats.dropped_relations += 1
    nct_id, _, section = txt.stem.partition("_")
    return row(
        txt.stem,
        text,
        spans,
        relations,
        nct_id=nct_id,
        section=SECTIONS[section],
        discontinuous=sorted(discontinuous),
        attributes=[{"name": name, "span": first[t]} for name, t in attributes if t in first],
    )


def read(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Every file pair of ``chia_with_scope/``, split by ``hash_split(nct_id)``."""
    base = require_file(folder / FOLDER, NAME)
    stats = ReadStats()
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "validation": [], "test": []}
    texts = sorted(base.glob("NCT*_*.txt"))
    if not texts:
        raise CorpusFormatError(f"{base}: no NCTxxxxxxxx_inc/_exc .txt files")
    for txt in texts:
        if txt.stem.partition("_")[2] not in SECTIONS:
            raise CorpusFormatError(f"{txt}: expected a name NCTxxxxxxxx_inc or NCTxxxxxxxx_exc")
        doc = read_brat_file(txt, require_file(txt.with_suffix(".ann"), NAME), stats)
        splits[hash_split(txt.stem.partition("_")[0])].append(doc)

    mismatched = len(stats.mismatched_entities)
    if mismatched > MAX_MISMATCH_FRACTION * max(stats.entities, 1):
        raise CorpusFormatError(
            f"Chia: {mismatched} of {stats.entities} entities do not match their text, e.g. "
            f"{', '.join(stats.mismatched_entities[:5])}"
        )
    if stats.continuation_lines:
        log.info(
            "Chia: joined %d .ann lines that continue a multi-line entity text", stats.continuation_lines
        )
    if mismatched or stats.malformed_lines or stats.dropped_relations:
        log.warning(
            "Chia: skipped %d malformed .ann lines; dropped %d of %d entities whose offsets do not give "
            "their text (%s) and %d relations that pointed at them or at nothing",
            stats.malformed_lines,
            mismatched,
            stats.entities,
            ", ".join(stats.mismatched_entities[:5]),
            stats.dropped_relations,
        )
    return {split: rows for split, rows in splits.items() if rows}  # a small folder may leave one empty


SPEC = register(
    CorpusSpec(
        name=NAME,
        title="Chia clinical-trial eligibility criteria corpus",
        source="https://doi.org/10.6084/m9.figshare.11855817.v2 (mirror: https://github.com/Vidhate/CHIA-NER-RE)",
        licence="CC BY 4.0; cite Kury et al., Scientific Data 7:281, 2020",
        reader=read,
        label_map={"Condition": "PROBLEM", "Drug": "DRUG", "Procedure": "PROCEDURE", "Measurement": "TEST"},
        annotated=frozenset({"PROBLEM", "DRUG", "PROCEDURE", "TEST"}),
        official_splits=False,
    )
)
