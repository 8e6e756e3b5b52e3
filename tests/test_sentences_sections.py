import pytest

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
        ("IMPRESSION: No pneumothorax.", "impression"),
        ("Discharge Instructions: call if fever", "patient_instructions"),
    ],
)
def test_header_variants(pipe, text: str, category: str) -> None:
    assert pipe.annotate(text).sections[0].category == category


def test_no_header_mid_sentence(pipe) -> None:
    record = pipe.annotate("He has no known drug allergies: none. Seen by cardiology consult.")
    assert all(s.category is None for s in record.sections)
