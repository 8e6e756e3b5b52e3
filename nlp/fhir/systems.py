"""The URLs the FHIR mapping writes: our own base and the code systems it shares across resources."""

BASE = "https://notes2fhir.org/fhir"
EVIDENCE_URL = f"{BASE}/StructureDefinition/nlp-evidence"
RISK_FACTORS_URL = f"{BASE}/StructureDefinition/nlp-risk-factors"
NOTE_ID_SYSTEM = f"{BASE}/sid/note-id"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
