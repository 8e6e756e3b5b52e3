"""NoteRecord → FHIR R4 Bundle (type ``collection``), a pure function of the record."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from nlp.errors import InputError
from nlp.fhir.risk import risk_entries
from nlp.fhir.systems import BASE, EVIDENCE_URL, NOTE_ID_SYSTEM, SNOMED, UCUM
from nlp.records import MEDICATION_LABELS, Mention, NoteRecord, allergy_category, is_allergy_entry

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, BASE)

CODE_SYSTEMS = {
    "icd10cm": "http://hl7.org/fhir/sid/icd-10-cm",
    "hpo": "http://purl.obolibrary.org/obo/hp.owl",
    "drugbank": "http://www.drugbank.ca",
    "snomedct": "http://snomed.info/sct",
    "mesh": "http://id.nlm.nih.gov/mesh",
}
VER_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CLINICAL_STATUS = "http://terminology.hl7.org/CodeSystem/condition-clinical"
ALLERGY_VER = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
TIMING_CODE = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"

CONDITION_VERIFICATION = {
    "present": "confirmed",
    "absent": "refuted",
    "possible": "provisional",
    "hypothetical": "unconfirmed",
    "historical": "confirmed",
}
MEDICATION_STATUS = {
    "present": "active",
    "absent": "not-taken",
    "possible": "unknown",
    "hypothetical": "intended",
    "historical": "stopped",
}
# labels the R4 mapping contract covers; TEST and PROCEDURE mentions stay in the NoteRecord only
MAPPED_LABELS = {"PROBLEM", "NO_KNOWN_ALLERGY", "ALLERGEN", *MEDICATION_LABELS}
# the medication attributes that describe how it is taken (the indication is MedicationStatement.reasonCode)
DOSAGE_ATTRIBUTES = {"strength", "dose", "route", "frequency", "duration", "prn", "prn_reason"}
# "no known allergies" statements by what they name (SNOMED CT situations)
NO_KNOWN_ALLERGY = {
    "medication": ("409137002", "No known drug allergy"),
    "food": ("429625007", "No known food allergy"),
    "environment": ("428607008", "No known environmental allergy"),
}
# drug -> reaction relations that become AdverseEvents (an allergy entry's reaction too)
ADVERSE_RELATIONS = {"adverse_reaction", "allergy_reaction"}
CAUSALITY = "http://terminology.hl7.org/CodeSystem/adverse-event-causality-assess"


def resource_id(note_id: str, kind: str, start: int | None, end: int | None) -> str:
    """Deterministic id: the same note gives the same ids on every run."""
    return str(uuid.uuid5(NAMESPACE, f"{note_id}|{kind}|{start}|{end}"))


def _coding(code: Any) -> dict[str, Any]:
    coding = {"system": CODE_SYSTEMS.get(code.system, code.system), "code": code.code}
    if code.display:
        coding["display"] = code.display
    return coding


def _concept(mention: Mention) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": mention.text}
    if mention.codes:
        concept["coding"] = [_coding(c) for c in mention.codes]
    return concept


def _evidence(record: NoteRecord, mention: Mention, *, suspect: Mention | None = None) -> dict[str, Any]:
    subs: list[dict[str, Any]] = [
        {"url": "noteId", "valueString": record.note_id},
        {"url": "start", "valueInteger": mention.start},
        {"url": "end", "valueInteger": mention.end},
        {"url": "text", "valueString": mention.text},
    ]
    if mention.section:
        subs.append({"url": "section", "valueString": mention.section})
    subs += [
        {"url": "assertion", "valueCode": mention.assertion},
        {"url": "confidence", "valueDecimal": mention.score},
        {"url": "method", "valueString": f"{mention.source}; {record.pipeline}"},
    ]
    for cue in mention.cues:
        where = f" [{cue.start}:{cue.end}]" if cue.start is not None else ""
        subs.append({"url": "cue", "valueString": f"{cue.category} {cue.rule}: {cue.text}{where}"})
    if suspect is not None:
        subs += [
            {"url": "suspectStart", "valueInteger": suspect.start},
            {"url": "suspectEnd", "valueInteger": suspect.end},
        ]
    return {"url": EVIDENCE_URL, "extension": subs}


def _span_evidence(record: NoteRecord, start: int, end: int, text: str, method: str) -> dict[str, Any]:
    """The evidence extension of a fact read from a stretch of the note rather than a mention."""
    return {
        "url": EVIDENCE_URL,
        "extension": [
            {"url": "noteId", "valueString": record.note_id},
            {"url": "start", "valueInteger": start},
            {"url": "end", "valueInteger": end},
            {"url": "text", "valueString": text},
            {"url": "method", "valueString": f"{method}; {record.pipeline}"},
        ],
    }


def _cc(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def _condition(record: NoteRecord, m: Mention, subject: dict[str, str]) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Condition", "extension": [_evidence(record, m)]}
    if m.assertion != "absent":
        res["clinicalStatus"] = _cc(CLINICAL_STATUS, "resolved" if m.assertion == "historical" else "active")
    res["verificationStatus"] = _cc(VER_STATUS, CONDITION_VERIFICATION[m.assertion])
    res["code"] = _concept(m)
    res["subject"] = subject
    return res


def _family_history(record: NoteRecord, m: Mention, patient: dict[str, str]) -> dict[str, Any]:
    relationship = m.relationship or "FAMMEMB"
    condition: dict[str, Any] = {"code": _concept(m)}
    if m.onset_age is not None:
        condition["onsetAge"] = {"value": m.onset_age, "unit": "a", "system": UCUM, "code": "a"}
    return {
        "resourceType": "FamilyMemberHistory",
        "extension": [_evidence(record, m)],
        "status": "partial",
        "patient": patient,
        "relationship": _cc(ROLE_CODE, relationship),
        "condition": [condition],
    }


def _dosage(m: Mention) -> dict[str, Any] | None:
    attrs = {k: v for k, v in m.attributes.items() if k in DOSAGE_ATTRIBUTES}
    if not attrs:
        return None
    dosage: dict[str, Any] = {}
    parts = sorted(attrs.values(), key=lambda a: (a["start"], -a["end"]))
    outer = [
        a
        for a in parts
        if not any(o is not a and o["start"] <= a["start"] and a["end"] <= o["end"] for o in parts)
    ]
    if outer:
        dosage["text"] = " ".join(a["text"] for a in outer)
    if "route" in attrs:
        dosage["route"] = {
            "coding": [
                {"system": SNOMED, "code": attrs["route"]["code"], "display": attrs["route"]["display"]}
            ],
            "text": attrs["route"]["text"],
        }
    if "frequency" in attrs:
        freq = attrs["frequency"]
        code: dict[str, Any] = {"text": freq["text"]}
        if freq.get("code"):
            code["coding"] = [{"system": TIMING_CODE, "code": freq["code"], "display": freq["display"]}]
        dosage["timing"] = {"code": code}
    if "prn" in attrs:
        if "prn_reason" in attrs:
            dosage["asNeededCodeableConcept"] = {"text": attrs["prn_reason"]["text"]}
        else:
            dosage["asNeededBoolean"] = True
    quantity = attrs.get("dose") or attrs.get("strength")
    if quantity is not None:
        dose: dict[str, Any] = {"value": quantity["value"]}
        if quantity["unit"] is not None:  # "ASA 81": no unit written, none guessed
            dose.update({"unit": quantity["unit"], "system": UCUM, "code": quantity["unit"]})
        dosage["doseAndRate"] = [{"doseQuantity": dose}]
    return dosage or None


def _medication(record: NoteRecord, m: Mention, subject: dict[str, str]) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "extension": [_evidence(record, m)],
        "status": MEDICATION_STATUS[m.assertion],
        "medicationCodeableConcept": _concept(m),
        "subject": subject,
    }
    if "indication" in m.attributes:
        res["reasonCode"] = [{"text": m.attributes["indication"]["text"]}]
    if (dosage := _dosage(m)) is not None:
        res["dosage"] = [dosage]
    return res


def _allergy(
    record: NoteRecord, m: Mention, patient: dict[str, str], reactions: list[Mention]
) -> dict[str, Any]:
    refuted = m.assertion == "absent"
    res: dict[str, Any] = {"resourceType": "AllergyIntolerance", "extension": [_evidence(record, m)]}
    if not refuted:
        res["clinicalStatus"] = _cc(ALLERGY_CLINICAL, "active")
    res["verificationStatus"] = _cc(ALLERGY_VER, "refuted" if refuted else "confirmed")
    if m.label == "NO_KNOWN_ALLERGY":
        code, display = NO_KNOWN_ALLERGY[allergy_category(m)]
        res["code"] = {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": m.text}
    else:
        res["category"] = [allergy_category(m)]
        res["code"] = _concept(m)
    res["patient"] = patient
    if reactions and m.label != "NO_KNOWN_ALLERGY":
        res["reaction"] = [{"manifestation": [_concept(r) for r in reactions]}]
    return res


def _adverse_event(
    record: NoteRecord,
    drug: Mention,
    reaction: Mention,
    patient: dict[str, str],
    drug_resource: tuple[str, str] | None,
) -> dict[str, Any]:
    """The reaction as an ``AdverseEvent``; the suspect is the drug's MedicationStatement, or a
    contained Medication when the drug has none (an allergy list entry).

    The ``literature`` pipeline also attributes reported associations: a hypothetical reaction
    ("X may cause Y") is a ``potential`` event, a possible one ("Y, possibly induced by X") keeps
    the causality assessment ``Possible``.
    """
    res: dict[str, Any] = {"resourceType": "AdverseEvent"}
    if drug_resource is not None and drug_resource[0] == "MedicationStatement":
        suspect = {"reference": f"urn:uuid:{drug_resource[1]}"}
    else:
        res["contained"] = [{"resourceType": "Medication", "id": "suspect", "code": _concept(drug)}]
        suspect = {"reference": "#suspect"}
    res.update(
        {
            "extension": [_evidence(record, reaction, suspect=drug)],
            "actuality": "potential" if reaction.assertion == "hypothetical" else "actual",
            "event": _concept(reaction),
            "subject": patient,
            "suspectEntity": [{"instance": suspect}],
        }
    )
    if reaction.assertion == "possible":
        res["suspectEntity"][0]["causality"] = [{"assessment": _cc(CAUSALITY, "Possible")}]
    return res


def to_fhir(record: NoteRecord, *, timestamp: str | None = None) -> dict[str, Any]:
    """The FHIR R4 Bundle for one record, as a JSON-ready dict.

    Args:
        record: an annotated note (not an error record).
        timestamp: ``Bundle.timestamp`` (default: now, UTC). Everything else is a pure function
            of the record, so the same note gives byte-identical bundles apart from this.

    Raises:
        InputError: the record is an error record (it has nothing to map).
    """
    if record.error is not None:
        raise InputError(
            f"note {record.note_id} was not annotated ({record.error.code})", code="error_record"
        )
    entries: list[dict[str, Any]] = []
    if record.patient_id:
        patient = {"reference": f"Patient/{record.patient_id}"}
    else:
        pid = resource_id(record.note_id, "Patient", None, None)
        patient = {"reference": f"urn:uuid:{pid}"}
        entries.append({"fullUrl": f"urn:uuid:{pid}", "resource": {"resourceType": "Patient", "id": pid}})

    by_id = {m.id: m for m in record.mentions}
    reactions_of: dict[str, list[Mention]] = {}
    reaction_ids: set[str] = set()
    for rel in record.relations:
        if rel.type == "allergy_reaction":
            reactions_of.setdefault(rel.source_id, []).append(by_id[rel.target_id])
            reaction_ids.add(rel.target_id)

    made: dict[str, tuple[str, str]] = {}  # mention id -> (resource type, resource id)
    for m in record.mentions:
        if m.label not in MAPPED_LABELS:
            continue
        if is_allergy_entry(m):
            res = _allergy(record, m, patient, reactions_of.get(m.id, []))
        elif m.label in MEDICATION_LABELS:
            res = _medication(record, m, patient)
        elif m.label == "ALLERGEN":
            continue  # a substance named outside any allergy statement (only in targets mode)
        elif m.label == "PROBLEM" and m.id in reaction_ids:
            continue  # a reaction inside its AllergyIntolerance, not a condition of its own
        elif m.subject == "family":
            res = _family_history(record, m, patient)
        else:
            res = _condition(record, m, patient)
        rid = resource_id(record.note_id, res["resourceType"], m.start, m.end)
        made[m.id] = (res["resourceType"], rid)
        entries.append(
            {
                "fullUrl": f"urn:uuid:{rid}",
                "resource": {"resourceType": res.pop("resourceType"), "id": rid, **res},
            }
        )
    for rel in record.relations:
        if rel.type not in ADVERSE_RELATIONS:
            continue
        drug, reaction = by_id[rel.source_id], by_id[rel.target_id]
        if drug.label not in MEDICATION_LABELS:
            continue  # a food or environmental allergy's reaction stays in its AllergyIntolerance
        res = _adverse_event(record, drug, reaction, patient, made.get(drug.id))
        kind = f"AdverseEvent:{drug.start}-{drug.end}"  # one event per drug and reaction
        rid = resource_id(record.note_id, kind, reaction.start, reaction.end)
        entries.append(
            {
                "fullUrl": f"urn:uuid:{rid}",
                "resource": {"resourceType": res.pop("resourceType"), "id": rid, **res},
            }
        )
    by_offsets = {(m.start, m.end): made[m.id] for m in record.mentions if m.id in made}
    entries += risk_entries(
        record,
        patient,
        by_offsets,
        lambda kind, start, end: resource_id(record.note_id, kind, start, end),
        lambda start, end, text, method: _span_evidence(record, start, end, text, method),
    )
    return {
        "resourceType": "Bundle",
        "id": resource_id(record.note_id, "Bundle", None, None),
        "identifier": {"system": NOTE_ID_SYSTEM, "value": record.note_id},
        "type": "collection",
        "timestamp": timestamp or datetime.now(UTC).isoformat(timespec="seconds"),
        "entry": entries,
    }


def error_outcome(record: NoteRecord) -> dict[str, Any]:
    """An OperationOutcome for a note that could not be annotated (never contains its text)."""
    assert record.error is not None
    return {
        "resourceType": "OperationOutcome",
        "id": resource_id(record.note_id, "OperationOutcome", None, None),
        "extension": [{"url": EVIDENCE_URL, "extension": [{"url": "noteId", "valueString": record.note_id}]}],
        "issue": [
            {
                "severity": "error",
                "code": "invalid",
                "details": {"text": record.error.code},
                "diagnostics": record.error.message,
            }
        ],
    }


def validate(bundle: dict[str, Any]) -> None:
    """Validate a bundle with ``fhir.resources.R4B`` (structural; raises on the first problem)."""
    from fhir.resources.R4B.bundle import Bundle

    Bundle.model_validate(bundle)
