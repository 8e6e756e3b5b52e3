import pytest

import nlp
from tests.conftest import assert_windowing_changes_nothing

NOTE = """HPI: 67M with HTN presents with CP.
He denies fever. No known drug allergies otherwise.
PAST MEDICAL HISTORY
1. Hypertension
2. CAD s/p stent 2015
Home Medications (verified):
- Metoprolol 25 mg PO BID
- Lisinopril 10 mg daily
Allergies: PCN (hives)
FHx: Mother had MI at 52.
A/P: Likely GERD vs ACS. Plan to follow up
in clinic. Return if worse."""


def test_sentences(pipe) -> None:
    doc = pipe.annotate_doc(NOTE)
    sents = [s.text.strip() for s in doc.sents]
    assert sents == [
        "HPI: 67M with HTN presents with CP.",
        "He denies fever.",
        "No known drug allergies otherwise.",
        "PAST MEDICAL HISTORY",
        "1. Hypertension",
        "2. CAD s/p stent 2015",
        "Home Medications (verified):",
        "- Metoprolol 25 mg PO BID",
        "- Lisinopril 10 mg daily",
        "Allergies: PCN (hives)",
        "FHx: Mother had MI at 52.",
        "A/P: Likely GERD vs ACS.",
        "Plan to follow up\nin clinic.",
        "Return if worse.",
    ]


def test_sections(pipe) -> None:
    record = pipe.annotate(NOTE)
    assert [(s.category, s.title) for s in record.sections] == [
        ("history_of_present_illness", "HPI:"),
        ("past_medical_history", "PAST MEDICAL HISTORY"),
        ("medications", "Home Medications (verified):"),
        ("allergies", "Allergies:"),
        ("family_history", "FHx:"),
        ("observation_and_plan", "A/P:"),
    ]
    for s in record.sections:
        assert NOTE[s.start : s.end].startswith(s.title)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Chief Complaint: chest pain", "chief_complaint"),
        ("ROS:\nNo fever.", "review_of_systems"),
        ("Social History: never smoker", "social_history"),
        ("SHx: never smoker", "social_history"),
        ("Assessment and Plan:\n1. HTN", "observation_and_plan"),
        ("Plan:\n- CT chest", "plan"),
        ("RECOMMENDATIONS: colonoscopy", "plan"),
        ("IMPRESSION: No pneumothorax.", "impression"),
        ("Discharge Instructions: call if fever", "patient_instructions"),
    ],
)
def test_header_variants(pipe, text: str, category: str) -> None:
    assert pipe.annotate(text).sections[0].category == category


def test_no_header_mid_sentence(pipe) -> None:
    record = pipe.annotate("He has no known drug allergies: none. Seen by cardiology consult.")
    assert all(s.category is None for s in record.sections)


def test_line_start_matching_finds_the_same_sections(samples) -> None:
    pipe = nlp.load("lexicon")
    extra = "HPI:  pain\r\n\r\n  PMH (reviewed): HTN\n\nAllergies\n  NKDA. Plan: rest\nFamily history: none"
    assert_windowing_changes_nothing(
        pipe.nlp.get_pipe("clinical_sections")._sectionizer,
        "_Sectionizer__matcher",
        {**samples, "extra": extra},
        lambda text: [(s.category, s.start, s.end) for s in pipe.annotate(text).sections],
    )


@pytest.mark.parametrize(
    ("text", "starts"),
    [
        ("a b\nc d", ["a", "c"]),
        ("a\r\n\r\n  b c\n", ["a", "b"]),
        ("\n\na", ["\n\n", "a"]),
        ("a", ["a"]),
    ],
)
def test_line_starts(text, starts) -> None:
    from nlp.components.sections import line_starts

    doc = nlp.load("lexicon").nlp.make_doc(text)
    assert [doc[i].text for i in line_starts(doc)] == starts
