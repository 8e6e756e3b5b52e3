"""The risk-factor profile: conditions, family history, vitals and labs, the ASCVD estimate, FHIR."""

from pathlib import Path

import pytest

import nlp
from nlp.evaluation.risk import evaluate_risk_cases
from nlp.fhir import to_fhir, validate


def profile(pipe, text: str) -> dict:
    return pipe.annotate(text).risk_factors["profile"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PMH: HTN, DM2, HLD, CKD3.", {"hypertension": "present", "diabetes": "present", "ckd": "present"}),
        (
            "History of portal hypertension and prediabetes.",
            {"hypertension": "unknown", "diabetes": "unknown"},
        ),
        ("Gestational diabetes in 2015. Denies HTN.", {"diabetes": "unknown", "hypertension": "absent"}),
        ("CARDIAC RISK FACTORS:\nHTN: Y\nDM: N", {"hypertension": "present", "diabetes": "absent"}),
        ("Vitals: BP 152/94 | HR 88 | BMI 34.2", {"obesity": "present", "bmi": 34.2}),
        ("BMI 24.1. Denies tobacco.", {"obesity": "absent", "smoking": "never"}),
        ("Former smoker, quit 2019. Drinks socially.", {"smoking": "former", "alcohol_use": "yes"}),
        ("s/p CABG in 2010.", {"cad": "present"}),
        ("Father had MI at 52.", {"family_history_premature_cad": "present"}),
        ("Father had MI at 55. Mother CABG at 70.", {"family_history_premature_cad": "absent"}),
        ("Uncle had MI at 40.", {"family_history_premature_cad": "unknown"}),  # not first-degree
        ("No family history of premature CAD.", {"family_history_premature_cad": "absent"}),
        ("FHx premature CAD: Y", {"family_history_premature_cad": "present"}),
    ],
)
def test_profile_fields(pipe, text: str, expected: dict) -> None:
    got = profile(pipe, text)
    assert {k: got[k] for k in expected} == expected


def test_every_value_keeps_its_evidence(pipe) -> None:
    text = "67M, HTN. Former smoker. Father had MI at 52."
    risk = pipe.annotate(text).risk_factors
    for field in ("hypertension", "smoking", "family_history_premature_cad"):
        assert risk["evidence"][field]
        for e in risk["evidence"][field]:
            assert text[e["start"] : e["end"]] == e["text"] and e["rule"]
    assert risk["demographics"] == {**risk["demographics"], "age": 67, "sex": "male"}


ASCVD_NOTE = "55 yo white woman. Total cholesterol 213, HDL 50. BP 120/80. Non-smoker, no diabetes. No HTN."


def test_ascvd_estimate_from_the_note(pipe) -> None:
    ascvd = pipe.annotate(ASCVD_NOTE).risk_factors["ascvd"]
    assert ascvd["percent"] == 2.1  # the guideline's worked example (white woman, 2.1 %)
    assert ascvd["missing"] == [] and "not a diagnosis" in ascvd["disclaimer"]


def test_ascvd_lists_what_is_missing(pipe) -> None:
    ascvd = pipe.annotate("58 yo woman with HTN on lisinopril. BP 150/90.").risk_factors["ascvd"]
    assert ascvd["risk"] is None
    assert {"total_cholesterol", "hdl", "diabetes", "smoker"} <= set(ascvd["missing"])


def test_fhir_observations_and_risk_assessment(pipe) -> None:
    record = pipe.annotate(ASCVD_NOTE + " Former smoker? no: never smoked.", note_id="r1")
    bundle = to_fhir(record, timestamp="2026-01-01T00:00:00+00:00")
    validate(bundle)
    resources = [e["resource"] for e in bundle["entry"]]
    codes = {c["code"] for r in resources if r["resourceType"] == "Observation" for c in r["code"]["coding"]}
    assert {"85354-9", "2093-3", "2085-9"} <= codes  # BP panel, total cholesterol, HDL
    (assessment,) = (r for r in resources if r["resourceType"] == "RiskAssessment")
    fields = {e["url"]: e.get("valueCode") for e in assessment["extension"][0]["extension"]}
    assert assessment["extension"][0]["url"].endswith("/nlp-risk-factors")
    assert fields["hypertension"] == "absent" and fields["diabetes"] == "absent"
    assert assessment["prediction"][0]["probabilityDecimal"] == record.risk_factors["ascvd"]["risk"]
    assert any("not a diagnosis" in n["text"] for n in assessment["note"])
    ids = {f"urn:uuid:{r['id']}" for r in resources}
    assert assessment["basis"] and all(b["reference"] in ids for b in assessment["basis"])


CASES = Path(__file__).parent / "fixtures" / "risk"
# measured accuracy per profile field on the default pipeline: dev (tuned on) 0.98-1.00, held-out
# (written apart, never tuned on) smoking 0.943, alcohol 0.968, drugs 0.984, hypertension 0.968,
# diabetes 0.976, hyperlipidemia 0.984, obesity 0.992, family premature CAD 0.984; BMI exact 1.0 / 0.966
FLOORS = {"dev": {"fields": 0.97, "bmi": 0.99}, "heldout": {"fields": 0.92, "bmi": 0.95}}


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_risk_cases_hold_their_floor(name: str) -> None:
    scores = evaluate_risk_cases(nlp.load("fast"), CASES / f"{name}.jsonl")["scores"]
    low = {f: s["accuracy"] for f, s in scores["fields"].items() if s["accuracy"] < FLOORS[name]["fields"]}
    assert not low, low
    assert scores["bmi"]["exact"] >= FLOORS[name]["bmi"] and scores["rejected"]["overlapping"] == 0
