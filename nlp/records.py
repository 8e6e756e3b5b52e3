"""NoteRecord: the house JSON every interface ships, and ``doc_to_record`` — THE boundary.

Only :func:`doc_to_record` reads ``._`` attributes; everything downstream (FHIR, the CLI, the
service, batch and Spark) reads records. Offsets are Python code points into the note and
``note[start:end] == mention.text`` always holds.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from spacy.tokens import Doc, Span

from nlp.components.lexicon import SPAN_GROUP

SCHEMA_VERSION = "1.0"
# sections whose drug mentions are allergy entries, not medications taken
ALLERGY_SECTIONS = frozenset({"allergies"})
MEDICATION_LABELS = frozenset({"DRUG", "DRUG_CLASS"})

Assertion = Literal["present", "absent", "possible", "hypothetical", "historical"]
Subject = Literal["patient", "family"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Code(_Frozen):
    system: str = Field(description="icd10cm, hpo, drugbank, snomedct …")
    code: str
    display: str | None = None
    score: float = 1.0


class Cue(_Frozen):
    """A piece of text (or a section) that decided an assertion or the subject."""

    category: str
    text: str | None
    start: int | None
    end: int | None
    rule: str


class Section(_Frozen):
    category: str | None
    title: str | None
    start: int
    end: int


class Mention(_Frozen):
    id: str
    label: str
    text: str
    start: int
    end: int
    section: str | None
    assertion: Assertion
    subject: Subject
    relationship: str | None = None
    onset_age: int | None = None
    codes: tuple[Code, ...] = ()
    attributes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    expansion: str | None = None
    chronic: bool = False
    cues: tuple[Cue, ...] = ()
    score: float = 1.0
    source: str
    # in the literature pipeline: the mention is the drug or the reaction of an adverse drug event
    # by the ADE tagger (models/ade-minilm); None where it did not mark it or did not run
    adr_role: Literal["drug", "reaction"] | None = None


class Relation(_Frozen):
    type: str
    source_id: str = Field(alias="from")
    target_id: str = Field(alias="to")
    score: float = 1.0
    method: str

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ErrorInfo(_Frozen):
    code: str
    message: str


class NoteRecord(_Frozen):
    """Everything the pipeline found in one note (or why it could not read it)."""

    schema_version: str = SCHEMA_VERSION
    note_id: str
    patient_id: str | None = None
    text_sha256: str | None = None
    text_length: int | None = None
    pipeline: str
    sections: tuple[Section, ...] = ()
    mentions: tuple[Mention, ...] = ()
    relations: tuple[Relation, ...] = ()
    risk_factors: dict[str, Any] | None = None
    error: ErrorInfo | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_fhir(self, *, timestamp: str | None = None) -> dict[str, Any]:
        """The FHIR R4 Bundle for this record (see ``nlp.fhir``)."""
        from nlp.fhir import to_fhir

        return to_fhir(self, timestamp=timestamp)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def error_record(
    note_id: str,
    code: str,
    message: str,
    *,
    pipeline: str,
    text: str | None = None,
    patient_id: str | None = None,
) -> NoteRecord:
    """A record that says why a note was not annotated. It never contains the note's text."""
    return NoteRecord(
        note_id=note_id,
        patient_id=patient_id,
        text_sha256=text_hash(text) if isinstance(text, str) else None,
        text_length=len(text) if isinstance(text, str) else None,
        pipeline=pipeline,
        error=ErrorInfo(code=code, message=message),
    )


def is_allergy_entry(m: Mention) -> bool:
    """An allergy list entry or inline allergy statement (an ``AllergyIntolerance``), NKDA included."""
    return m.label == "NO_KNOWN_ALLERGY" or "allergy" in m.attributes


def allergy_category(m: Mention) -> str:
    """``medication``, ``food`` or ``environment`` (NKDA: what the statement names)."""
    if m.label == "NO_KNOWN_ALLERGY":
        lowered = m.text.lower()
        return next((c for c in ("food", "environment") if c in lowered), "medication")
    return str(m.attributes.get("allergy", {}).get("category", "medication"))


def _attributes(span: Span) -> dict[str, dict[str, Any]]:
    attributes = dict(span._.med_attrs or {})
    if span._.allergy:
        attributes["allergy"] = dict(span._.allergy)
    return attributes


def _mention(span: Span, index: int, text: str) -> Mention:
    start, end = span._.char_range or (span.start_char, span.end_char)
    return Mention(
        id=f"m{index}",
        label=span.label_,
        text=text[start:end],
        start=start,
        end=end,
        section=span._.section_category,
        assertion=span._.assertion,
        subject=span._.subject,
        relationship=span._.relationship,
        onset_age=span._.onset_age,
        codes=tuple(
            Code(system=s, code=c, display=d, score=round(float(sc), 4)) for s, c, d, sc in span._.codes
        ),
        attributes=_attributes(span),
        expansion=span._.expansion,
        chronic=bool(span._.chronic),
        cues=tuple(Cue(**cue) for cue in span._.cues),
        score=round(float(span._.score), 4),
        source=span._.source or "unknown",
        adr_role=span._.adr_role,
    )


def doc_to_record(doc: Doc, *, pipeline: str) -> NoteRecord:
    """Read an annotated Doc into a :class:`NoteRecord`. The only reader of ``._`` attributes."""
    sections = []
    for sec in getattr(doc._, "sections", None) or ():
        start, end = sec.section_span
        title = (
            doc[sec.title_span[0] : sec.title_span[1]].text.strip()
            if sec.title_span[1] > sec.title_span[0]
            else None
        )
        span = doc[start:end]
        sections.append(Section(category=sec.category, title=title, start=span.start_char, end=span.end_char))
    spans = list(doc.spans[SPAN_GROUP]) if SPAN_GROUP in doc.spans else []
    text = doc.text  # built from the tokens on every access: read it once
    mentions = tuple(_mention(span, i, text) for i, span in enumerate(spans))
    ids = {(m.start, m.end): m.id for m in mentions}
    relations = tuple(
        Relation(type=kind, source_id=ids[src], target_id=ids[dst], score=score, method=method)  # type: ignore[call-arg]
        for kind, src, dst, score, method in doc._.relations
        if src in ids and dst in ids
    )
    return NoteRecord(
        note_id=doc._.note_id,
        patient_id=doc._.patient_id,
        text_sha256=text_hash(text),
        text_length=len(text),
        pipeline=pipeline,
        sections=tuple(sections),
        mentions=mentions,
        relations=relations,
        risk_factors=doc._.risk_factors,
    )
