"""Terminology matching: sentence → expected mentions with label and code."""

import pytest

from tests.conftest import find


@pytest.mark.parametrize(
    ("text", "mention", "label", "code"),
    [
        ("History of HTN and DM2.", "HTN", "PROBLEM", "I10"),
        ("History of HTN and DM2.", "DM2", "PROBLEM", "E11.9"),
        ("Known CAD, CHF and COPD.", "CHF", "PROBLEM", "I50.9"),
        ("Known CAD, CHF and COPD.", "COPD", "PROBLEM", "J44.9"),
        ("New onset afib with RVR.", "afib", "PROBLEM", "I48.91"),
        ("Presents with SOB and CP.", "SOB", "PROBLEM", "R06.02"),
        ("CKD stage 3 noted.", "CKD stage 3", "PROBLEM", "N18.30"),
        ("Essential hypertension, well controlled.", "Essential hypertension", "PROBLEM", "I10"),
        ("Community acquired pneumonia on CXR.", "Community acquired pneumonia", "PROBLEM", "J18.9"),
        ("She has had a seizure.", "seizure", "PROBLEM", "HP:0001250"),
        ("Takes Lasix 40 mg daily.", "Lasix", "DRUG", "DB00695"),
        ("Metformin 500 mg BID.", "Metformin", "DRUG", "DB00331"),
        ("ASA 81 mg daily.", "ASA", "DRUG", "DB00945"),
        ("Allergies: NKDA", "NKDA", "NO_KNOWN_ALLERGY", "409137002"),
        ("Avoid NSAIDs.", "NSAIDs", "DRUG_CLASS", None),
    ],
)
def test_terms(pipe, text: str, mention: str, label: str, code: str | None) -> None:
    m = find(pipe.annotate(text), mention)
    assert m.label == label
    if code is not None:
        assert code in {c.code for c in m.codes}


@pytest.mark.parametrize(
    "text",
    [
        "Plan to follow up today with the patient.",  # common words that vocabularies list
        "She is well and in good spirits.",
        "Patient: Test Patient",
    ],
)
def test_no_false_mentions(pipe, text: str) -> None:
    assert pipe.annotate(text).mentions == ()


def test_longest_match_wins(pipe) -> None:
    record = pipe.annotate("Type 2 diabetes mellitus, poorly controlled.")
    assert [m.text for m in record.mentions] == ["Type 2 diabetes mellitus"]


def test_defined_abbreviation_takes_long_form_concept(pipe) -> None:
    text = "Known idiopathic pulmonary fibrosis (IPF). IPF is stable on nintedanib."
    record = pipe.annotate(text)
    shorts = [m for m in record.mentions if m.text == "IPF"]
    assert len(shorts) == 2
    assert all(
        m.source.startswith("abbreviation") and m.expansion == "idiopathic pulmonary fibrosis" for m in shorts
    )
    assert (
        shorts[0].codes == next(m for m in record.mentions if m.text == "idiopathic pulmonary fibrosis").codes
    )


def test_header_words_are_not_mentions(pipe) -> None:
    record = pipe.annotate("Allergies:\nPenicillin")
    assert [m.text for m in record.mentions] == ["Penicillin"]
