"""ADE-Corpus-V2 (Gurulingappa et al. 2012): drug -> adverse effect and drug -> dose pairs in sentences.

``DRUG-AE.rel`` and ``DRUG-DOSE.rel`` are pipe-delimited lines
``PMID|sentence|mention|begin|end|drug|begin|end``; ``ADE-NEG.txt`` lines are ``PMID NEG sentence``
(sentences of the same case reports without a drug-related adverse effect). One row per distinct
(PMID, sentence); rows of one PMID share a split (``hash_split(pmid)``). Spans are ``DRUG``, ``AE`` and
``DOSE`` (identical mentions of a sentence are one span); relations ``ADE`` (drug -> AE) and ``DOSE``
(drug -> dose). ``meta``: ``pmid``, ``has_ade`` (the sentence has a drug -> AE pair) and
``abstract_offset`` (where the sentence starts in its abstract; ``None`` for ADE-NEG sentences).

The offsets in the ``.rel`` files point into the abstract laid out as ``PMID\\n\\nTitle\\n\\nAbstract``, which
is not distributed, so every mention is re-located inside its sentence: the sentence's start in that
abstract is the shift that places the most mentions of the sentence on their own text, and a mention
whose text occurs more than once in the sentence is resolved with that shift (or, if the shift does not
fit it, by the occurrence nearest to where the shift puts it). A mention whose text is not in its sentence
is a CorpusFormatError. The repairs are counted and logged.

Only mentions that take part in a pair are annotated, so the corpus is not exhaustive for any label.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
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

NAME = "ade_corpus_v2"
PAIR_FILES = (("DRUG-AE.rel", "AE", "ADE"), ("DRUG-DOSE.rel", "DOSE", "DOSE"))  # file, tail label, relation
NEGATIVE_FILE = "ADE-NEG.txt"

log = logging.getLogger(__name__)


@dataclass
class Mention:
    """One mention of a ``.rel`` line, with its abstract-level offsets."""

    label: str
    text: str
    abstract_start: int
    where: str


@dataclass
class Sentence:
    """The pairs of one (PMID, sentence), gathered from both ``.rel`` files."""

    pmid: str
    text: str
    pairs: list[tuple[str, Mention, Mention]] = field(default_factory=list)  # (relation type, drug, tail)


@dataclass
class Repairs:
    """How many mention offsets had to be recomputed, and how."""

    moved: int = 0  # abstract offset != sentence offset (the offset was shifted)
    ambiguous: int = 0  # mention text occurs more than once; the sentence's abstract offset chose one
    nearest: int = 0  # the sentence's abstract offset did not fit; nearest occurrence taken


def parse_rel_line(line: str, tail_label: str, where: str) -> tuple[str, str, Mention, Mention]:
    """``PMID|sentence|tail|begin|end|drug|begin|end`` -> (pmid, sentence, drug, tail)."""
    cols = line.split("|")
    if len(cols) != 8:
        raise CorpusFormatError(f"{where}: expected 8 '|'-separated columns, found {len(cols)}")
    pmid, sentence = cols[0], cols[1]
    mentions = []
    for label, text, begin, end in ((tail_label, *cols[2:5]), ("DRUG", *cols[5:8])):
        try:
            start, stop = int(begin), int(end)
        except ValueError:
            raise CorpusFormatError(
                f"{where}: offsets {begin!r}-{end!r} of {text!r} are not integers"
            ) from None
        if stop - start != len(text):
            raise CorpusFormatError(
                f"{where}: offsets {start}-{stop} do not span the {len(text)} chars of {text!r}"
            )
        mentions.append(Mention(label, text, start, where))
    tail, drug = mentions
    return pmid, sentence, drug, tail


def sentence_offset(sentence: str, mentions: list[Mention]) -> int:
    """Where ``sentence`` starts in its abstract: the shift that puts the most mentions on their text."""
    votes: Counter[int] = Counter()
    for mention in {(m.text, m.abstract_start) for m in mentions}:
        text, start = mention
        votes.update(start - m.start() for m in re.finditer(re.escape(text), sentence))
    if not votes:
        return 0
    best = max(votes.values())
    return min(offset for offset, n in votes.items() if n == best)


def locate(sentence: str, mention: Mention, offset: int, repairs: Repairs) -> int:
    """Start of ``mention`` inside ``sentence``, given the sentence's ``offset`` in the abstract."""
    occurrences = [m.start() for m in re.finditer(re.escape(mention.text), sentence)]
    if not occurrences:
        raise CorpusFormatError(f"{mention.where}: {mention.label} {mention.text!r} is not in its sentence")
    expected = mention.abstract_start - offset
    if expected in occurrences:
        start = expected
        repairs.ambiguous += len(occurrences) > 1
    else:
        start = min(occurrences, key=lambda occurrence: (abs(occurrence - expected), occurrence))
        repairs.nearest += 1
        log.debug("%s: %r placed at its nearest occurrence", mention.where, mention.text)
    repairs.moved += start != mention.abstract_start
    return start


def sentence_row(id_: str, sentence: Sentence, repairs: Repairs) -> dict[str, Any]:
    """One row: deduplicated spans of all mentions, one relation per distinct pair."""
    mentions = [m for _, drug, tail in sentence.pairs for m in (drug, tail)]
    offset = sentence_offset(sentence.text, mentions)
    spans: list[dict] = []
    index: dict[tuple[int, int, str], int] = {}
    located: dict[tuple[str, str, int], int] = {}  # each distinct mention is located (and counted) once

    def span_index(mention: Mention) -> int:
        mention_key = (mention.label, mention.text, mention.abstract_start)
        if mention_key not in located:
            located[mention_key] = locate(sentence.text, mention, offset, repairs)
        start = located[mention_key]
        key = (start, start + len(mention.text), mention.label)
        if key not in index:
            index[key] = len(spans)
            spans.append(span(sentence.text, *key, where=mention.where))
        return index[key]

    relations: list[dict] = []
    seen: set[tuple[str, int, int]] = set()
    for type_, drug, tail in sentence.pairs:
        pair = (type_, span_index(drug), span_index(tail))
        if pair not in seen:
            seen.add(pair)
            relations.append(relation(type_, pair[1], pair[2]))
    has_ade = any(type_ == "ADE" for type_, _, _ in sentence.pairs)
    return row(
        id_, sentence.text, spans, relations, pmid=sentence.pmid, has_ade=has_ade, abstract_offset=offset
    )


def read(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Rows of ADE-Corpus-V2 by hash split of their PMID (``folder`` holds the three files)."""
    sentences: dict[tuple[str, str], Sentence] = {}
    for filename, tail_label, type_ in PAIR_FILES:
        path = require_file(folder / filename, NAME)
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                pmid, text, drug, tail = parse_rel_line(line, tail_label, f"{filename}:{lineno}")
                sentences.setdefault((pmid, text), Sentence(pmid, text)).pairs.append((type_, drug, tail))
    negatives: Counter[tuple[str, str]] = Counter()
    path = require_file(folder / NEGATIVE_FILE, NAME)
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        cols = line.split(" ", 2)
        if len(cols) != 3 or cols[1] != "NEG" or not cols[2].strip():
            raise CorpusFormatError(f"{NEGATIVE_FILE}:{lineno}: expected 'PMID NEG sentence'")
        if (cols[0], cols[2]) in sentences:
            raise CorpusFormatError(f"{NEGATIVE_FILE}:{lineno}: sentence also has pairs in a .rel file")
        negatives[(cols[0], cols[2])] += 1

    repairs = Repairs()
    per_pmid: Counter[str] = Counter()
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "validation": [], "test": []}
    for (pmid, _), sentence in sentences.items():
        per_pmid[pmid] += 1
        splits[hash_split(pmid)].append(sentence_row(f"{pmid}_{per_pmid[pmid]}", sentence, repairs))
    for pmid, text in negatives:
        per_pmid[pmid] += 1
        id_ = f"{pmid}_{per_pmid[pmid]}"
        splits[hash_split(pmid)].append(row(id_, text, pmid=pmid, has_ade=False, abstract_offset=None))
    log.info(
        "%s: %d mention offsets moved from abstract to sentence coordinates; %d repeated mention texts "
        "resolved by the sentence's abstract offset, %d by their nearest occurrence; "
        "%d repeated %s lines merged",
        NAME,
        repairs.moved,
        repairs.ambiguous,
        repairs.nearest,
        sum(negatives.values()) - len(negatives),
        NEGATIVE_FILE,
    )
    return {split: rows for split, rows in splits.items() if rows}  # a split can be empty


SPEC = register(
    CorpusSpec(
        name=NAME,
        title="ADE-Corpus-V2 (adverse drug effects in case reports)",
        source="https://github.com/trunghlt/AdverseDrugReaction (ADE-Corpus-V2/)",
        licence="no licence file (public research release, licence unknown); cite Gurulingappa et al., "
        "J Biomed Inform 45(5):885-892, 2012",
        reader=read,
        label_map={"DRUG": "DRUG", "AE": "PROBLEM"},
        annotated=frozenset(),
        official_splits=False,
    )
)
