"""Model mentions merged into the lexicon's span group: longer wins, lexicon codes survive."""

from __future__ import annotations

import pytest
import spacy
from spacy.tokens import Doc, Span

import nlp.extensions  # noqa: F401
from nlp.components.merge import merge_into_clinical, merge_roles
from nlp.components.tokenizer import build_tokenizer

TEXT = "Worsening LE edema and chest pain ; no aspirin allergy , NKDA , on beta blockers ."
EDEMA_CODE = ("http://hl7.org/fhir/sid/icd-10-cm", "R60.9", "Edema", 1.0)


@pytest.fixture(scope="module")
def blank() -> spacy.language.Language:
    nlp = spacy.blank("en")
    nlp.tokenizer = build_tokenizer(nlp)
    return nlp


def _span(doc: Doc, words: str, label: str) -> Span:
    start = doc.text.index(words)
    span = doc.char_span(start, start + len(words), label=label)
    assert span is not None
    return span


def _lexicon_span(doc: Doc, words: str, label: str) -> Span:
    span = _span(doc, words, label)
    span._.source = "lexicon:curated"
    span._.codes = (EDEMA_CODE,) if words == "edema" else ()
    return span


def _merged(blank, lexicon: list[tuple[str, str]], model: list[tuple[str, str]]) -> list[tuple]:
    doc = blank(TEXT)
    doc.spans["clinical"] = [_lexicon_span(doc, w, lab) for w, lab in lexicon]
    merge_into_clinical(doc, [(_span(doc, w, lab), 0.9) for w, lab in model], "model:ner-cnn")
    return [(s.text, s.label_, s._.source, bool(s._.codes)) for s in doc.spans["clinical"]]


@pytest.mark.parametrize(
    ("lexicon", "model", "expected"),
    [
        # a new mention the vocabularies missed
        ([], [("chest pain", "PROBLEM")], [("chest pain", "PROBLEM", "model:ner-cnn", False)]),
        # the longer model span replaces the lexicon span and keeps its code
        (
            [("edema", "PROBLEM")],
            [("LE edema", "PROBLEM")],
            [("LE edema", "PROBLEM", "model:ner-cnn+lexicon:curated", True)],
        ),
        # same extent: the lexicon mention stays, its source records the agreement
        (
            [("chest pain", "PROBLEM")],
            [("chest pain", "PROBLEM")],
            [("chest pain", "PROBLEM", "lexicon:curated+model", False)],
        ),
        # a shorter model span inside a lexicon mention changes nothing
        (
            [("chest pain", "PROBLEM")],
            [("pain", "PROBLEM")],
            [("chest pain", "PROBLEM", "lexicon:curated", False)],
        ),
        # crossing spans: the lexicon wins
        (
            [("LE edema", "PROBLEM")],
            [("edema and chest", "PROBLEM")],
            [("LE edema", "PROBLEM", "lexicon:curated", False)],
        ),
        # labels only the lexicon produces are never replaced
        (
            [("NKDA", "NO_KNOWN_ALLERGY"), ("beta blockers", "DRUG_CLASS")],
            [("NKDA ,", "DRUG"), ("on beta blockers", "DRUG")],
            [
                ("NKDA", "NO_KNOWN_ALLERGY", "lexicon:curated", False),
                ("beta blockers", "DRUG_CLASS", "lexicon:curated", False),
            ],
        ),
        # a model span over mentions of different labels is not one mention
        (
            [("aspirin", "DRUG"), ("allergy", "PROBLEM")],
            [("aspirin allergy", "DRUG")],
            [("aspirin", "DRUG", "lexicon:curated", False), ("allergy", "PROBLEM", "lexicon:curated", False)],
        ),
        # a model span covering two lexicon mentions takes neither's codes
        (
            [("edema", "PROBLEM"), ("chest pain", "PROBLEM")],
            [("LE edema and chest pain", "PROBLEM")],
            [("LE edema and chest pain", "PROBLEM", "model:ner-cnn", False)],
        ),
    ],
)
def test_merge_rules(blank, lexicon, model, expected) -> None:
    assert _merged(blank, lexicon, model) == expected


def test_merge_is_sorted_and_deterministic(blank) -> None:
    model = [("aspirin", "DRUG"), ("chest pain", "PROBLEM"), ("Worsening", "PROBLEM")]
    first = _merged(blank, [("edema", "PROBLEM")], model)
    assert first == _merged(blank, [("edema", "PROBLEM")], list(reversed(model)))
    assert [t for t, *_ in first] == ["Worsening", "edema", "chest pain", "aspirin"]


def test_merge_without_a_clinical_group(blank) -> None:
    doc = blank(TEXT)
    merge_into_clinical(doc, [(_span(doc, "aspirin", "DRUG"), 0.75)], "model:x")
    assert [(s.text, s._.source, s._.score) for s in doc.spans["clinical"]] == [("aspirin", "model:x", 0.75)]


@pytest.mark.parametrize(
    ("text", "model", "expected"),
    [
        ("Patient denies chest pain today.", "denies chest pain", ["chest pain"]),
        (
            "She endorses history of shortness of breath",
            "endorses history of shortness of breath",
            ["shortness of breath"],
        ),
        ("Cardiovascular: no murmurs", "Cardiovascular", []),
        ("He takes his medication daily", "medication", []),
        ("Worsening LE edema.", "LE edema.", ["LE edema"]),
        ("Denies.", "Denies", []),  # a cue alone is not a mention
        ("TELEPHONE ENCOUNTER\nPatient called.", "TELEPHONE ENCOUNTER", []),
        ("Seen for COPD\nstable", "COPD", ["COPD"]),  # capitals, but not the whole line
        ("Called back.\nJane Doe, RN", "RN", []),
        ("- CKD stage 3", "- CKD stage 3", ["CKD stage 3"]),
        ("| HR    | 72 |", "| HR    ", ["HR"]),
        ("acetaminophen PRN knee pain", "PRN knee pain", ["knee pain"]),
        ("MRN: TEST-000005", "TEST-000005", []),
        # a finding, not where it is or the word after it
        ("atrophy in his right arm", "atrophy in his right arm", ["atrophy"]),
        (
            "worsening of the dysesthesia in both feet",
            "worsening of the dysesthesia in",
            ["worsening of the dysesthesia"],
        ),
        ("pain in the chest", "pain in the chest", ["pain in the chest"]),
    ],
)
def test_model_spans_are_cleaned(blank, text, model, expected) -> None:
    doc = blank(text)
    start = text.index(model)
    span = doc.char_span(start, start + len(model), label="PROBLEM")
    merge_into_clinical(doc, [(span, 1.0)], "model:x")
    assert [s.text for s in doc.spans["clinical"]] == expected


@pytest.mark.parametrize(
    ("text", "model", "expected"),
    [
        ("Creatinine 1.4 today.", "Creatinine", [("Creatinine", "TEST")]),  # a lab value, not a medication
        ("Na 134, K 4.1", "Na", [("Na", "TEST")]),
        ("Na 134, K 4.1", "Na 134", [("Na", "TEST")]),
        ("Denies cocaine use.", "cocaine", []),  # not a medication statement
        ("Started metformin 500 mg.", "metformin", [("metformin", "DRUG")]),
        ("senna 8.6 mg 2 tabs PO qHS", "tabs", []),  # a dose form, not a second drug
        ("latanoprost 0.005% ophthalmic solution 1 drop", "ophthalmic solution", []),
        # the strength is not the name
        ("Lactulose 10 g/15 mL BID", "Lactulose 10 g/15", [("Lactulose", "DRUG")]),
        # how a drug is given is not its name, nor is what follows it
        ("during lithium prophylaxis", "lithium prophylaxis", [("lithium", "DRUG")]),
        (
            "a sodium nitroprusside infusion",
            "sodium nitroprusside infusion",
            [("sodium nitroprusside", "DRUG")],
        ),
    ],
)
def test_lab_analytes_are_not_drugs(blank, text, model, expected) -> None:
    doc = blank(text)
    start = text.index(model)
    span = doc.char_span(start, start + len(model), label="DRUG")
    merge_into_clinical(doc, [(span, 1.0)], "model:x")
    assert [(s.text, s.label_) for s in doc.spans["clinical"]] == expected


ADE_TEXT = "Severe lactic acidosis and raised liver enzymes after metformin and ifosfamide-induced coma ."


@pytest.mark.parametrize(
    ("mentions", "tagged", "expected"),
    [
        # the tagger's boundaries win and the mention it replaces keeps its codes
        (
            [("acidosis", "PROBLEM")],
            [("Severe lactic acidosis", "PROBLEM")],
            [("Severe lactic acidosis", "PROBLEM", "reaction", True)],
        ),
        # same extent: the mention stays as it is and gets the role
        ([("metformin", "DRUG")], [("metformin", "DRUG")], [("metformin", "DRUG", "drug", False)]),
        # a reaction may be a test to the general NER
        (
            [("liver enzymes", "TEST")],
            [("raised liver enzymes", "PROBLEM")],
            [("raised liver enzymes", "PROBLEM", "reaction", False)],
        ),
        # never over a mention of the other role: the mentions it covers get their roles instead
        (
            [("ifosfamide", "DRUG"), ("coma", "PROBLEM")],
            [("ifosfamide-induced coma", "PROBLEM")],
            [("ifosfamide", "DRUG", "drug", False), ("coma", "PROBLEM", "reaction", True)],
        ),
        # a span that cuts a mention's last words marks the mention instead
        (
            [("Severe lactic acidosis", "PROBLEM")],
            [("Severe lactic", "PROBLEM")],
            [("Severe lactic acidosis", "PROBLEM", "reaction", True)],
        ),
        # same extent, the other label: the tagger's label wins and the codes go
        ([("coma", "DRUG")], [("coma", "PROBLEM")], [("coma", "PROBLEM", "reaction", False)]),
        # a new mention; untagged mentions stay, without a role
        (
            [("acidosis", "PROBLEM")],
            [("metformin", "DRUG")],
            [("acidosis", "PROBLEM", None, True), ("metformin", "DRUG", "drug", False)],
        ),
    ],
)
def test_ade_tagger_spans_win_and_carry_their_role(blank, mentions, tagged, expected) -> None:
    doc = blank(ADE_TEXT)
    spans = [_span(doc, words, label) for words, label in mentions]
    for span in spans:
        span._.source = "model:ner-minilm"
        span._.codes = (EDEMA_CODE,) if span.label_ == "PROBLEM" else ()
    doc.spans["clinical"] = spans
    merge_roles(doc, [(_span(doc, words, label), 0.9) for words, label in tagged], "model:ade-minilm")
    assert doc._.ade_tagged
    assert [(s.text, s.label_, s._.adr_role, bool(s._.codes)) for s in doc.spans["clinical"]] == expected
