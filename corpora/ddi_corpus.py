"""DDI corpus 2013 (Herrero-Zazo et al. 2013): drug mentions and drug-drug interactions, DrugBank + MedLine.

One XML file per document: ``<document id><sentence id text><entity id type charOffset text>`` and
``<pair e1 e2 ddi type>``. Rows are sentences (text verbatim); ``meta`` has ``doc_id``, ``source``
(DrugBank / MedLine) and ``task``: ``DDI`` for ``Train/`` and ``Test/Test for DDI Extraction task/``,
``DrugNER`` for ``Test/Test for DrugNER task/``, whose pairs are not annotated for interaction (all
``ddi="false"``), so relation scores should skip those rows. Both test folders make the ``test`` split.

Entity types are ``drug``, ``brand``, ``group`` (a drug class) and ``drug_n`` (an active substance not
approved for human use). ``charOffset`` is ``start-end`` with an *inclusive* end, and a discontinuous
entity is ``a-b;c-d``: each fragment is one span (exclusive end), ``meta["fragments"]`` lists the span
indices of each discontinuous entity, and the fragments, joined, must spell the entity text (whitespace
aside). An entity whose offsets miss its text by one or two characters, all in the same direction, is
shifted onto it (logged); anything else is a CorpusFormatError.

Relations are the positive pairs (``ddi="true"``) typed ``mechanism`` / ``effect`` / ``advise`` / ``int``
(``unspecified`` for the one positive pair without a type), from e1's first fragment to e2's.

Every pharmacological substance is annotated; the only type not mapped to DRUG is ``group``, which the
house labels keep apart (drug classes are ``DRUG_CLASS``, not ``DRUG``), so DRUG is exhaustive.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from corpora.base import CorpusFormatError, CorpusSpec, register, relation, require_file, row, span

NAME = "ddi_corpus"
FOLDERS = (  # (split, folder under DDICorpus/, task, source)
    ("train", "Train/DrugBank", "DDI", "DrugBank"),
    ("train", "Train/MedLine", "DDI", "MedLine"),
    ("test", "Test/Test for DDI Extraction task/DrugBank", "DDI", "DrugBank"),
    ("test", "Test/Test for DDI Extraction task/MedLine", "DDI", "MedLine"),
    ("test", "Test/Test for DrugNER task/DrugBank", "DrugNER", "DrugBank"),
    ("test", "Test/Test for DrugNER task/MedLine", "DrugNER", "MedLine"),
)
ENTITY_TYPES = frozenset({"drug", "brand", "group", "drug_n"})
OFFSET_SHIFTS = (0, -1, 1, -2, 2)

log = logging.getLogger(__name__)


def parse_offsets(char_offset: str, where: str) -> list[tuple[int, int]]:
    """``"12-18;25-30"`` (inclusive ends) -> ``[(12, 19), (25, 31)]`` (exclusive ends)."""
    try:
        fragments = [tuple(int(x) for x in part.split("-")) for part in char_offset.split(";")]
    except ValueError:
        raise CorpusFormatError(
            f"{where}: charOffset {char_offset!r} is not 'start-end[;start-end]'"
        ) from None
    if any(len(fragment) != 2 or fragment[1] < fragment[0] for fragment in fragments):
        raise CorpusFormatError(f"{where}: charOffset {char_offset!r} is not 'start-end[;start-end]'")
    return [(start, end + 1) for start, end in fragments]


def spells(pieces: list[str], expected: str) -> bool:
    """Whether the fragment texts ``pieces`` are the entity text (whitespace aside when discontinuous)."""
    if len(pieces) == 1:
        return pieces[0] == expected
    joined = "".join("".join(pieces).split())
    return all(piece.strip() for piece in pieces) and joined == "".join(expected.split())


def place(
    text: str, fragments: list[tuple[int, int]], expected: str, where: str
) -> tuple[list[tuple[int, int]], int]:
    """The fragments moved by the first of OFFSET_SHIFTS that makes them spell ``expected``; the shift."""
    for shift in OFFSET_SHIFTS:
        moved = [(start + shift, end + shift) for start, end in fragments]
        inside = all(start >= 0 and end <= len(text) for start, end in moved)
        if inside and spells([text[start:end] for start, end in moved], expected):
            return moved, shift
    found = " ... ".join(text[start:end] for start, end in fragments)
    raise CorpusFormatError(f"{where}: offsets {fragments} give {found!r}, the annotation says {expected!r}")


def sentence_row(
    sentence: ET.Element, doc_id: str, task: str, source: str, where: str
) -> tuple[dict[str, Any], int]:
    """One ``<sentence>`` as a row, and how many of its entities had to be shifted onto their text."""
    sentence_id, text = sentence.get("id", ""), sentence.get("text")
    where = f"{where} {sentence_id}"
    if not sentence_id or text is None:
        raise CorpusFormatError(f"{where}: <sentence> without id or text")
    spans: list[dict] = []
    index: dict[tuple[int, int, str], int] = {}
    entities: dict[str, list[int]] = {}
    groups: list[list[int]] = []
    shifted = 0
    for entity in sentence.iter("entity"):
        entity_id, type_ = entity.get("id", ""), entity.get("type", "")
        entity_where = f"{where} {entity_id}"
        if type_ not in ENTITY_TYPES or not entity_id or entity.get("text") is None:
            raise CorpusFormatError(f"{entity_where}: entity without id/text or of unknown type {type_!r}")
        fragments, shift = place(
            text,
            parse_offsets(entity.get("charOffset", ""), entity_where),
            entity.get("text", ""),
            entity_where,
        )
        if shift:
            shifted += 1
            log.info("%s: offsets of %r shifted by %+d", entity_where, entity.get("text"), shift)
        indices = []
        for start, end in fragments:
            if (start, end, type_) not in index:
                index[(start, end, type_)] = len(spans)
                spans.append(span(text, start, end, type_, where=entity_where))
            indices.append(index[(start, end, type_)])
        entities[entity_id] = indices
        if len(indices) > 1:
            groups.append(indices)
    relations: list[dict] = []
    for pair in sentence.iter("pair"):
        if pair.get("ddi") != "true":
            continue
        e1, e2 = pair.get("e1", ""), pair.get("e2", "")
        if e1 not in entities or e2 not in entities:
            raise CorpusFormatError(f"{where} {pair.get('id')}: pair of unknown entities {e1!r}, {e2!r}")
        relations.append(relation(pair.get("type") or "unspecified", entities[e1][0], entities[e2][0]))
    meta = {"doc_id": doc_id, "source": source, "task": task, "fragments": groups}
    return row(sentence_id, text, spans, relations, **meta), shifted


def read(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Sentences of ``DDICorpus/Train`` (train) and both ``DDICorpus/Test`` folders (test)."""
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    shifted = 0
    for split, subfolder, task, source in FOLDERS:
        directory = require_file(folder / "DDICorpus" / subfolder, NAME)
        for path in sorted(directory.glob("*.xml")):
            where = f"{subfolder}/{path.name}"
            try:
                document = ET.parse(path).getroot()
            except ET.ParseError as err:
                raise CorpusFormatError(f"{where}: not well-formed XML ({err})") from None
            doc_id = document.get("id", path.stem)
            for sentence in document.iter("sentence"):
                row_, n_shifted = sentence_row(sentence, doc_id, task, source, where)
                splits[split].append(row_)
                shifted += n_shifted
    if shifted:
        log.info("%s: %d entities shifted onto their text", NAME, shifted)
    return splits


SPEC = register(
    CorpusSpec(
        name=NAME,
        title="DDI corpus 2013 (drug-drug interactions in DrugBank and MedLine)",
        source="https://github.com/isegura/DDICorpus (DDICorpus-2013.zip)",
        licence="CC BY-NC 4.0; cite Herrero-Zazo et al., J Biomed Inform 46(5):914-920, 2013",
        reader=read,
        label_map={"drug": "DRUG", "brand": "DRUG", "drug_n": "DRUG"},
        annotated=frozenset({"DRUG"}),
    )
)
