"""Allergy entries: which substances are allergies, of what category, with which reactions."""

import pytest

from nlp.fhir import to_fhir, validate
from nlp.records import allergy_category, is_allergy_entry


def entries(record) -> list[tuple[str, str, str]]:
    return [(m.label, m.text, allergy_category(m)) for m in record.mentions if is_allergy_entry(m)]


def reactions(record) -> list[tuple[str, str]]:
    by_id = {m.id: m.text for m in record.mentions}
    return [
        (by_id[r.source_id], by_id[r.target_id]) for r in record.relations if r.type == "allergy_reaction"
    ]


@pytest.mark.parametrize(
    ("text", "expected_entries", "expected_reactions"),
    [
        (
            "Allergies: PCN (hives), peanuts - anaphylaxis, latex.",
            [
                ("DRUG", "PCN", "medication"),
                ("ALLERGEN", "peanuts", "food"),
                ("ALLERGEN", "latex", "environment"),
            ],
            [("PCN", "hives"), ("peanuts", "anaphylaxis")],
        ),
        (
            "She is allergic to eggs and penicillin (rash).",
            [("ALLERGEN", "eggs", "food"), ("DRUG", "penicillin", "medication")],
            [("penicillin", "rash")],
        ),
        (
            "Allergic to sulfa - hives, and codeine: nausea.",
            [("DRUG", "sulfa", "medication"), ("DRUG", "codeine", "medication")],
            [("sulfa", "hives"), ("codeine", "nausea")],
        ),
        ("PCN allergy - hives.", [("DRUG", "PCN", "medication")], [("PCN", "hives")]),
        ("Latex allergy.", [("ALLERGEN", "Latex", "environment")], []),
        ("No known food allergies.", [("NO_KNOWN_ALLERGY", "No known food allergies", "food")], []),
        ("Ate eggs and toast for breakfast; takes lisinopril 10 mg daily.", [], []),  # no allergy stated
        # a section written on its header's line ends there, unless the list runs on
        (
            "ALLERGIES: PCN (ANAPHYLAXIS), CODEINE.\nDISCONTINUE GLYBURIDE.",
            [("DRUG", "PCN", "medication"), ("DRUG", "CODEINE", "medication")],
            [("PCN", "ANAPHYLAXIS")],
        ),
        (
            "Allergies: penicillin (hives),\nsulfa (rash)",
            [("DRUG", "penicillin", "medication"), ("DRUG", "sulfa", "medication")],
            [("penicillin", "hives"), ("sulfa", "rash")],
        ),
    ],
)
def test_allergy_entries(pipe, text: str, expected_entries: list, expected_reactions: list) -> None:
    record = pipe.annotate(text)
    assert entries(record) == expected_entries
    assert reactions(record) == expected_reactions


def test_a_food_allergy_is_an_allergy_intolerance_and_not_an_adverse_event(pipe) -> None:
    record = pipe.annotate("HPI: allergic to peanuts (anaphylaxis). Takes aspirin 81 mg daily.", note_id="a1")
    bundle = to_fhir(record, timestamp="2026-01-01T00:00:00+00:00")
    validate(bundle)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert "AdverseEvent" not in kinds and kinds.count("MedicationStatement") == 1
    (allergy,) = (
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "AllergyIntolerance"
    )
    assert allergy["category"] == ["food"] and allergy["code"]["text"] == "peanuts"
    assert allergy["reaction"][0]["manifestation"][0]["text"] == "anaphylaxis"


def test_a_drug_allergy_is_not_also_a_medication_statement(pipe) -> None:
    record = pipe.annotate("Allergic to penicillin (hives).", note_id="a2")
    kinds = [
        e["resource"]["resourceType"] for e in to_fhir(record, timestamp="2026-01-01T00:00:00+00:00")["entry"]
    ]
    assert "MedicationStatement" not in kinds and "AllergyIntolerance" in kinds


def test_no_allergens_are_added_in_targets_mode(pipe) -> None:
    text = "Allergies: peanuts."
    record = pipe.annotate(text, targets=[(0, 9, "PROBLEM")])
    assert [m.text for m in record.mentions] == ["Allergies"]
