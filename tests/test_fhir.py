"""NoteRecord → FHIR R4 Bundle: goldens, validation with fhir.resources (R4B) and the contract."""

import pytest
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from nlp.errors import InputError
from nlp.fhir import EVIDENCE_URL, validate
from tests.conftest import FIXED_TIMESTAMP, find

GOLDEN_NOTES = ["06_telephone_note", "05_radiology_ct_chest"]


@pytest.mark.parametrize("name", GOLDEN_NOTES)
def test_golden_bundles(pipe, samples, golden, name: str) -> None:
    bundle = pipe.annotate(samples[name], note_id=name).to_fhir(timestamp=FIXED_TIMESTAMP)
    golden(f"{name}.fhir", bundle)


def test_every_sample_bundle_validates(pipe, samples) -> None:
    for name, text in samples.items():
        bundle = pipe.annotate(text, note_id=name).to_fhir()
        validate(bundle)
        for entry in bundle["entry"]:
            resource = entry["resource"]
            assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
            if resource["resourceType"] == "RiskAssessment":  # the profile; its basis has the evidence
                assert resource["extension"][0]["url"].endswith("/nlp-risk-factors")
            elif resource["resourceType"] != "Patient":
                (ext,) = [e for e in resource["extension"] if e["url"] == EVIDENCE_URL]
                subs = {
                    e["url"]: next(v for k, v in e.items() if k.startswith("value")) for e in ext["extension"]
                }
                assert text[subs["start"] : subs["end"]] == subs["text"]
                assert subs["noteId"] == name


def _resources(bundle, kind):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_condition_statuses(pipe) -> None:
    text = "Denies chest pain. Possible pneumonia. History of MI in 2015. Has HTN. Return if fever."
    bundle = pipe.annotate(text, note_id="n1").to_fhir()
    status = {
        c["code"]["text"]: (
            c["verificationStatus"]["coding"][0]["code"],
            c.get("clinicalStatus", {}).get("coding", [{}])[0].get("code"),
        )
        for c in _resources(bundle, "Condition")
    }
    assert status == {
        "chest pain": ("refuted", None),
        "pneumonia": ("provisional", "active"),
        "MI": ("confirmed", "resolved"),
        "HTN": ("confirmed", "active"),
        "fever": ("unconfirmed", "active"),
    }
    htn = next(c for c in _resources(bundle, "Condition") if c["code"]["text"] == "HTN")
    assert {
        "system": "http://hl7.org/fhir/sid/icd-10-cm",
        "code": "I10",
        "display": "Essential (primary) hypertension",
    } in htn["code"]["coding"]


def test_family_member_history(pipe) -> None:
    bundle = pipe.annotate("FHx: Mother had MI at 52.", note_id="n2").to_fhir()
    (fmh,) = _resources(bundle, "FamilyMemberHistory")
    assert fmh["relationship"]["coding"][0]["code"] == "MTH"
    assert fmh["condition"][0]["onsetAge"]["value"] == 52
    assert fmh["status"] == "partial"
    assert not _resources(bundle, "Condition")


def test_medication_statement_dosage(pipe) -> None:
    bundle = pipe.annotate("Metformin 1000 mg PO BID.", note_id="n3").to_fhir()
    (ms,) = _resources(bundle, "MedicationStatement")
    assert ms["status"] == "active"
    assert ms["medicationCodeableConcept"]["coding"][0]["code"] == "DB00331"
    dosage = ms["dosage"][0]
    assert dosage["text"] == "1000 mg PO BID"
    assert dosage["route"]["coding"][0]["code"] == "26643006"
    assert dosage["timing"]["code"]["coding"][0]["code"] == "BID"
    assert dosage["doseAndRate"][0]["doseQuantity"] == {
        "value": 1000.0,
        "unit": "mg",
        "system": "http://unitsofmeasure.org",
        "code": "mg",
    }


def test_dosage_text_does_not_repeat_nested_attributes(pipe) -> None:
    bundle = pipe.annotate("albuterol 2 puffs q4-6h PRN wheezing", note_id="n9").to_fhir()
    (ms,) = _resources(bundle, "MedicationStatement")
    assert ms["dosage"][0]["text"] == "2 puffs q4-6h PRN wheezing"
    assert ms["dosage"][0]["asNeededCodeableConcept"] == {"text": "wheezing"}


def test_allergies_with_reactions_and_nkda(pipe) -> None:
    bundle = pipe.annotate("Allergies:\nPenicillin (hives)\nSulfa drugs - rash\n", note_id="n4").to_fhir()
    allergies = {
        a["code"]["text"]: [r["manifestation"][0]["text"] for r in a.get("reaction", [])]
        for a in _resources(bundle, "AllergyIntolerance")
    }
    assert allergies == {"Penicillin": ["hives"], "Sulfa drugs": ["rash"]}
    assert not _resources(bundle, "Condition")  # reactions are not problems of their own
    nkda = pipe.annotate("Allergies: NKDA", note_id="n5").to_fhir()
    (allergy,) = _resources(nkda, "AllergyIntolerance")
    assert allergy["code"]["coding"][0]["code"] == "409137002"


def test_patient_reference(pipe) -> None:
    with_patient = pipe.annotate("Has HTN.", note_id="n6", patient_id="p-42").to_fhir()
    assert _resources(with_patient, "Condition")[0]["subject"] == {"reference": "Patient/p-42"}
    assert not _resources(with_patient, "Patient")
    placeholder = pipe.annotate("Has HTN.", note_id="n6").to_fhir()
    (patient,) = _resources(placeholder, "Patient")
    assert _resources(placeholder, "Condition")[0]["subject"] == {"reference": f"urn:uuid:{patient['id']}"}


def test_deterministic_ids(pipe, samples) -> None:
    text = samples["01_discharge_summary"]
    a = pipe.annotate(text, note_id="x").to_fhir(timestamp=FIXED_TIMESTAMP)
    b = pipe.annotate(text, note_id="x").to_fhir(timestamp=FIXED_TIMESTAMP)
    assert a == b
    c = pipe.annotate(text, note_id="y").to_fhir(timestamp=FIXED_TIMESTAMP)
    assert {e["fullUrl"] for e in a["entry"]}.isdisjoint({e["fullUrl"] for e in c["entry"]})


def test_r5_is_not_what_we_emit(pipe) -> None:
    """The bundle is R4-shaped: the R5 model rejects medicationCodeableConcept."""
    from fhir.resources.bundle import Bundle as R5Bundle

    bundle = pipe.annotate("Metformin 500 mg daily.", note_id="n7").to_fhir()
    Bundle.model_validate(bundle)
    with pytest.raises(ValidationError):
        R5Bundle.model_validate(bundle)


def test_error_record_has_no_bundle(pipe) -> None:
    (record,) = list(pipe.annotate_many([""]))
    with pytest.raises(InputError):
        record.to_fhir()


def test_evidence_records_cues(pipe) -> None:
    bundle = pipe.annotate("Denies chest pain.", note_id="n8").to_fhir()
    (cond,) = _resources(bundle, "Condition")
    subs = cond["extension"][0]["extension"]
    assert {"url": "cue", "valueString": "negated_existence neg.deny: Denies [0:6]"} in subs
    assert find(pipe.annotate("Denies chest pain."), "chest pain").assertion == "absent"


def test_tests_and_procedures_stay_out_of_the_bundle(pipe) -> None:
    text = "Echocardiogram showed reduced ejection fraction. Cardiac catheterization planned for CAD."
    record = pipe.annotate(text, targets=[(0, 14, "TEST"), (49, 72, "PROCEDURE"), (85, 88, "PROBLEM")])
    assert [m.label for m in record.mentions] == ["TEST", "PROCEDURE", "PROBLEM"]
    bundle = record.to_fhir()
    validate(bundle)
    texts = {e["resource"].get("code", {}).get("text") for e in bundle["entry"]}
    assert "CAD" in texts and "Echocardiogram" not in texts and "Cardiac catheterization" not in texts
