"""The risk-factor profile as FHIR R4: Observations for what the note states, one RiskAssessment.

Per FHIR_MAPPING.md: smoking status (LOINC 72166-2, SNOMED CT values), alcohol use (11331-6), and
every vital or lab value (blood pressure as the 85354-9 panel with its systolic and diastolic
components, BMI, HbA1c, lipids, glucose, creatinine, eGFR; LOINC and UCUM from
``measurements.json``) become ``Observation``s with the evidence extension. The
``RiskAssessment`` carries the profile in the ``/nlp-risk-factors`` extension, ``basis`` pointing at
those Observations and at the Conditions behind each risk factor, and, when every input is in the
note, the 10-year ASCVD estimate in ``prediction`` (with the statement that it is an estimate for
decision support); otherwise a note lists the missing inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nlp.fhir.systems import LOINC, RISK_FACTORS_URL, SNOMED, UCUM
from nlp.records import NoteRecord

CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
SMOKING = {
    "current": ("77176002", "Smoker"),
    "former": ("8517006", "Ex-smoker"),
    "never": ("266919005", "Never smoked tobacco"),
    "unknown": ("266927001", "Tobacco smoking consumption unknown"),
}
EXTENSION_FIELDS = (
    "smoking",
    "alcohol_use",
    "hypertension",
    "diabetes",
    "hyperlipidemia",
    "obesity",
    "family_history_premature_cad",
)
VITAL_KINDS = {"bp_systolic", "bp_diastolic", "heart_rate", "bmi", "weight", "height"}

Entry = dict[str, Any]
MakeId = Callable[[str, int | None, int | None], str]


def risk_entries(
    record: NoteRecord,
    patient: dict[str, str],
    made: dict[tuple[int, int], tuple[str, str]],
    make_id: MakeId,
    evidence: Callable[[int, int, str, str], dict[str, Any]],
) -> list[Entry]:
    """The Observations and the RiskAssessment of a record's profile (none without a profile).

    Args:
        record: the annotated note.
        patient: the subject reference.
        made: mention offsets -> (resource type, id) of the resources already in the Bundle.
        make_id: ``(kind, start, end) -> id``, deterministic.
        evidence: ``(start, end, text, method) -> evidence extension``.
    """
    risk = record.risk_factors
    if not risk:
        return []
    entries: list[Entry] = []
    basis: list[dict[str, str]] = []

    def add(resource: dict[str, Any], kind: str, start: int | None, end: int | None) -> None:
        rid = make_id(kind, start, end)
        entries.append({"fullUrl": f"urn:uuid:{rid}", "resource": {"id": rid, **resource}})
        basis.append({"reference": f"urn:uuid:{rid}"})

    profile = risk["profile"]
    for field, loinc, display in (
        ("smoking", "72166-2", "Tobacco smoking status"),
        ("alcohol_use", "11331-6", "History of Alcohol use"),
    ):
        found = risk["evidence"].get(field) or []
        if not found:
            continue
        first = found[0]
        value = _smoking_value(profile[field]) if field == "smoking" else {"text": profile[field]}
        add(
            {
                "resourceType": "Observation",
                "extension": [evidence(first["start"], first["end"], first["text"], first["rule"])],
                "status": "final",
                "category": [_category("social-history")],
                "code": {"coding": [{"system": LOINC, "code": loinc, "display": display}], "text": display},
                "subject": patient,
                "valueCodeableConcept": value,
            },
            f"Observation:{field}",
            first["start"],
            first["end"],
        )
    panels: dict[tuple[int, int], dict[str, Any]] = {}
    for obs in risk["observations"]:
        if obs.get("panel_loinc"):
            panel = panels.setdefault((obs["start"], obs["end"]), {"obs": obs, "components": []})
            panel["components"].append(obs)
            continue
        resource = _observation(obs, patient, evidence)
        resource["valueQuantity"] = _quantity(obs)
        add(resource, f"Observation:{obs['kind']}", obs["value_start"], obs["value_end"])
    for (start, end), panel in panels.items():
        first = panel["obs"]
        resource = _observation(first, patient, evidence)
        resource["code"] = _code(first["panel_loinc"], first.get("panel_display") or "Blood pressure panel")
        resource["component"] = [
            {"code": _code(c["loinc"], c["display"]), "valueQuantity": _quantity(c)}
            for c in panel["components"]
        ]
        add(resource, "Observation:panel", start, end)
    observation_basis = list(basis)
    conditions = []
    for field in EXTENSION_FIELDS[2:]:
        for found in risk["evidence"].get(field) or []:
            target = made.get((found["start"], found["end"]))
            if target is not None and {"reference": f"urn:uuid:{target[1]}"} not in conditions:
                conditions.append({"reference": f"urn:uuid:{target[1]}"})
    entries.append(_risk_assessment(record, risk, patient, observation_basis + conditions, make_id))
    return entries


def _risk_assessment(
    record: NoteRecord,
    risk: dict[str, Any],
    patient: dict[str, str],
    basis: list[dict[str, str]],
    make_id: MakeId,
) -> Entry:
    profile = risk["profile"]
    subs: list[dict[str, Any]] = [{"url": field, "valueCode": profile[field]} for field in EXTENSION_FIELDS]
    if profile.get("bmi") is not None:
        subs.append({"url": "bmi", "valueDecimal": profile["bmi"]})
    ascvd = risk["ascvd"]
    resource: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "extension": [{"url": RISK_FACTORS_URL, "extension": subs}],
        "status": "final",
        "method": {"text": "notes2fhir risk-factor profile; ACC/AHA 2013 Pooled Cohort Equations"},
        "code": {"text": "Cardiovascular risk-factor profile and 10-year ASCVD risk"},
        "subject": patient,
    }
    if basis:
        resource["basis"] = basis
    notes = [ascvd["disclaimer"]]
    if ascvd["risk"] is not None:
        resource["prediction"] = [
            {
                "outcome": {"text": "Atherosclerotic cardiovascular disease event (10 years)"},
                "probabilityDecimal": ascvd["risk"],
                "whenRange": {"high": {"value": 10, "unit": "a", "system": UCUM, "code": "a"}},
                "rationale": f"{ascvd['equation']}; {ascvd['disclaimer']}",
            }
        ]
    else:
        missing = ", ".join(ascvd["missing"]) or "none"
        out_of_range = "; ".join(ascvd["out_of_range"])
        notes.append(
            "10-year ASCVD risk not estimated: missing "
            + missing
            + (f"; outside the equations' range: {out_of_range}" if out_of_range else "")
        )
    notes += ascvd["notes"]
    resource["note"] = [{"text": n} for n in notes]
    rid = make_id("RiskAssessment", None, None)
    return {"fullUrl": f"urn:uuid:{rid}", "resource": {"id": rid, **resource}}


def _observation(
    obs: dict[str, Any], patient: dict[str, str], evidence: Callable[[int, int, str, str], dict[str, Any]]
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "extension": [evidence(obs["start"], obs["end"], obs["text"], f"measurement:{obs['kind']}")],
        "status": "final",
        "category": [_category("vital-signs" if obs["kind"] in VITAL_KINDS else "laboratory")],
        "code": _code(obs["loinc"], obs["display"]),
        "subject": patient,
    }
    if obs.get("when"):
        resource["note"] = [{"text": f"stated time: {obs['when']}"}]
    return resource


def _quantity(obs: dict[str, Any]) -> dict[str, Any]:
    quantity: dict[str, Any] = {
        "value": obs["value"],
        "unit": obs["unit"],
        "system": UCUM,
        "code": obs["unit"],
    }
    if obs.get("comparator"):
        quantity["comparator"] = obs["comparator"]
    return quantity


def _code(loinc: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": loinc, "display": display}], "text": display}


def _category(code: str) -> dict[str, Any]:
    return {"coding": [{"system": CATEGORY, "code": code}]}


def _smoking_value(status: str) -> dict[str, Any]:
    code, display = SMOKING[status]
    return {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": status}
