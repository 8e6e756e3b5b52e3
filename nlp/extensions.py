"""Every ``._`` attribute the pipeline sets, declared once.

Components write these; only :func:`nlp.records.doc_to_record` reads them.
medspaCy declares its own (``section_category``, ``is_negated`` …, ``modifiers``); we keep
those as they are and add ours here.
"""

from __future__ import annotations

from spacy.tokens import Doc, Span

_SPAN_EXTENSIONS: dict[str, object] = {
    # a chronic condition (stays present after a history cue: "history of hypertension")
    "chronic": False,
    # provenance: which component found the mention ("lexicon:icd10cm", "abbreviation", "target")
    "source": None,
    # codes as a tuple of (system, code, display, score)
    "codes": (),
    # medication attributes: {"strength": {...}, "route": {...}, ...}
    "med_attrs": None,
    # an allergy entry: {"category": medication|food|environment, "context": section|inline,
    # "cue_start", "cue_end"} (nlp.components.allergies)
    "allergy": None,
    # experiencer relation for family mentions ("MTH", "FTH", ... "FAMMEMB") and onset age
    "relationship": None,
    "onset_age": None,
    # the assertion decision: (assertion, subject, [cue dicts])
    "assertion": "present",
    "subject": "patient",
    "cues": (),
    # the long form when the mention is an abbreviation ("HTN" -> "hypertension")
    "expansion": None,
    "score": 1.0,
    # the ADE tagger's role for the mention: "drug" or "reaction" of an adverse drug event
    # (nlp.components.transformer_ner.AdeTagger); None when it did not mark it
    "adr_role": None,
    # caller-supplied character range for targets mode when it is finer than the tokens
    "char_range": None,
}

_DOC_EXTENSIONS: dict[str, object] = {
    "note_id": None,
    "patient_id": None,
    # relations as (type, (from_start, from_end), (to_start, to_end), score, method) char offsets
    "relations": (),
    # the cardiovascular risk-factor profile (nlp.components.risk_factors.risk_profile)
    "risk_factors": None,
    # the ADE tagger read the Doc: drug -> reaction pairs come from the mentions it marked
    "ade_tagged": False,
}


def copy_span_attributes(source: Span, target: Span) -> None:
    """Give ``target`` every attribute of ours that ``source`` has (a mention rebuilt wider)."""
    for name in _SPAN_EXTENSIONS:
        setattr(target._, name, getattr(source._, name))


def register() -> None:
    """Declare the extensions (idempotent; called when the package is imported)."""
    for name, default in _SPAN_EXTENSIONS.items():
        if not Span.has_extension(name):
            Span.set_extension(name, default=default)
    for name, default in _DOC_EXTENSIONS.items():
        if not Doc.has_extension(name):
            Doc.set_extension(name, default=default)


register()
