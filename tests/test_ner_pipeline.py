"""The default pipeline with its trained NER: what the vocabularies miss, and the failure classes
found by reading its output on MTSamples and ACI-bench notes (see models/README.md)."""

from __future__ import annotations

import pytest

import nlp


def _mentions(pipe: nlp.Pipeline, text: str) -> list[tuple[str, str, str]]:
    return [(m.text, m.label, m.assertion) for m in pipe.annotate(text).mentions]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # found by the model (no vocabulary spells them), coded by the lexicon inside or the linker
        ("Worsening LE edema.", [("LE edema", "PROBLEM", "present")]),
        ("HbA1c 8.2% today.", [("HbA1c", "TEST", "present")]),
        (
            "Plan: cardiac catheterization next week.",
            [("cardiac catheterization", "PROCEDURE", "hypothetical")],
        ),
        ("Past surgical history: appendectomy.", [("appendectomy", "PROCEDURE", "historical")]),
        # the model must not swallow the cue, or ConText cannot negate
        ("Patient denies chest pain.", [("chest pain", "PROBLEM", "absent")]),
        ("She endorses fatigue.", [("fatigue", "PROBLEM", "present")]),
        ("Trop leak overnight, new LBBB on ECG.", [("LBBB", "PROBLEM", "present")]),
    ],
)
def test_mentions_found(pipe, text, expected) -> None:
    found = _mentions(pipe, text)
    for mention in expected:
        assert mention in found, found


@pytest.mark.parametrize(
    ("text", "not_mentions"),
    [
        # review-of-systems headings, titles, signatures and generic words are not findings
        ("CARDIOVASCULAR: Denies chest pain.", ["CARDIOVASCULAR"]),
        ("Respiratory: no wheezing", ["Respiratory"]),
        (
            "TELEPHONE ENCOUNTER\nSpoke with patient about her rash.\nJane Doe, RN",
            ["TELEPHONE ENCOUNTER", "RN"],
        ),
        ("She takes her medication daily.", ["medication"]),
    ],
)
def test_not_mentions(pipe, text, not_mentions) -> None:
    found = [m[0] for m in _mentions(pipe, text)]
    for word in not_mentions:
        assert word not in found, found


def test_model_mentions_have_provenance_and_codes(pipe) -> None:
    record = pipe.annotate(
        "Hx of pulm embolism, DM type II on metformin; lasix 40 mg daily. Worsening LE edema."
    )
    by_text = {m.text: m for m in record.mentions}
    assert {"pulm embolism", "DM type II", "metformin", "lasix", "LE edema"} <= set(by_text)
    assert by_text["lasix"].codes and by_text["lasix"].codes[0].code == "DB00695"
    assert by_text["pulm embolism"].codes[0].code.startswith("I26")
    assert by_text["DM type II"].codes[0].code == "E11.9"
    assert by_text["LE edema"].codes[0].code == "R60.9"
    assert all(m.source.endswith("+model") for m in record.mentions)  # the model agrees with the lexicon
    (hba1c,) = pipe.annotate("HbA1c 8.2% today.").mentions
    assert hba1c.source.startswith("model:ner-cnn@") and 0 < hba1c.score < 1


def test_fast_is_the_default_and_lexicon_is_one_argument_away() -> None:
    assert nlp.load().info.components == nlp.load("fast").info.components
    assert "clinical_cnn_ner" not in nlp.load("lexicon").info.components
