"""Adverse drug reactions in notes: drug -> reaction pairs, and the traps that are not pairs."""

from pathlib import Path

import pytest

import nlp
from nlp.errors import InputError
from nlp.evaluation.adr import evaluate_adr_cases, read_adr_cases
from nlp.fhir import to_fhir, validate


def pairs(record) -> list[tuple[str, str, str]]:
    by_id = {m.id: m for m in record.mentions}
    return [
        (by_id[r.source_id].text, by_id[r.target_id].text, r.method)
        for r in record.relations
        if r.type == "adverse_reaction"
    ]


@pytest.fixture(scope="module")
def lexicon() -> nlp.Pipeline:
    return nlp.load("lexicon")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("She developed angioedema on lisinopril.", ("lisinopril", "angioedema", "rule:adr.on_drug")),
        ("Statin-induced myalgias.", ("Statin", "myalgias", "rule:adr.induced")),
        ("Amiodarone induced hypothyroidism.", ("Amiodarone", "hypothyroidism", "rule:adr.induced")),
        ("Metformin was stopped due to diarrhea.", ("Metformin", "diarrhea", "rule:adr.stopped_due_to")),
        ("Rash after starting amoxicillin.", ("amoxicillin", "Rash", "rule:adr.due_to")),
        ("Rash, likely from amoxicillin.", ("amoxicillin", "Rash", "rule:adr.due_to")),
        ("Cough thought to be related to lisinopril.", ("lisinopril", "Cough", "rule:adr.due_to")),
        ("Allergic to penicillin (hives).", ("penicillin", "hives", "rule:adr.allergy_inline")),
    ],
)
def test_attributed(lexicon, text: str, expected: tuple[str, str, str]) -> None:
    assert pairs(lexicon.annotate(text)) == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "No bleeding on apixaban.",  # the reaction is absent
        "Counseled that ciprofloxacin may cause tendon rupture.",  # counselling: hypothetical
        "Ondansetron for nausea.",  # the drug treats it
        "Started metformin; also reports headache.",  # two facts, no attribution
        "Mother had a rash on penicillin.",  # a relative's reaction
        "Rash attributed to poison ivy, not the amoxicillin.",  # another cause
        "Rash.\nStarted amoxicillin.",  # two sentences
    ],
)
def test_not_attributed(lexicon, text: str) -> None:
    assert pairs(lexicon.annotate(text)) == []


def test_allergy_entries_are_left_to_the_allergy_list(lexicon) -> None:
    record = lexicon.annotate("Allergies:\nPenicillin: hives")
    assert pairs(record) == [] and [r.type for r in record.relations] == ["allergy_reaction"]


def test_adverse_events_in_fhir(lexicon) -> None:
    record = lexicon.annotate("HPI: She developed angioedema on lisinopril.\nAllergies:\nPenicillin: hives")
    bundle = to_fhir(record, timestamp="2026-01-01T00:00:00+00:00")
    validate(bundle)
    resources = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    events = [r for r in resources.values() if r["resourceType"] == "AdverseEvent"]
    assert sorted(e["event"]["text"] for e in events) == ["angioedema", "hives"]
    angioedema = next(e for e in events if e["event"]["text"] == "angioedema")
    suspect = resources[angioedema["suspectEntity"][0]["instance"]["reference"]]
    assert suspect["resourceType"] == "MedicationStatement"
    assert suspect["medicationCodeableConcept"]["text"] == "lisinopril"
    evidence = {x["url"]: x.get("valueInteger") for x in angioedema["extension"][0]["extension"]}
    start = "HPI: She developed angioedema on lisinopril.".index("lisinopril")
    assert (evidence["suspectStart"], evidence["suspectEnd"]) == (start, start + len("lisinopril"))
    hives = next(e for e in events if e["event"]["text"] == "hives")
    assert hives["contained"][0]["code"]["text"] == "Penicillin"
    assert hives["suspectEntity"][0]["instance"]["reference"] == "#suspect"


CASES = Path(__file__).parent / "fixtures" / "adr"
# measured F1 / precision, default pipeline (patterns + models/adr-minilm): notes 0.927 / 1.000 (the
# patterns were tuned on it), held-out 0.611 / 0.917 (written apart, never tuned on)
FLOORS = {"notes": {"f1": 0.90, "precision": 0.97}, "heldout": {"f1": 0.58, "precision": 0.88}}


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_note_cases_hold_their_floor(name: str) -> None:
    report = evaluate_adr_cases(nlp.load("fast"), CASES / f"{name}.jsonl")
    scores = report["scores"]["case"]["adverse_reaction"]
    assert all(scores[k] >= v for k, v in FLOORS[name].items()), (scores, report["mismatches"][:10])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"id": "a", "text": "Rash on X.", "drug": "Y", "reaction": "Rash", "related": true}',
            "does not occur",
        ),
        ('{"id": "a", "text": "Rash on X.", "drug": "X", "reaction": "Rash", "related": false}', "trap"),
        ('{"id": "a", "text": "t", "drug": "t", "reaction": "t", "related": true, "extra": 1}', "keys"),
    ],
)
def test_malformed_case_files_say_where(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=message) as err:
        read_adr_cases(path)
    assert err.value.code == "malformed_record" and "cases.jsonl:1" in str(err.value)
