"""Vitals and labs: note text -> kind, value, UCUM unit, evidence and time; traps give nothing."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlp import resources
from nlp.components.measurements import Measurement, MeasurementFinder, find_measurements
from nlp.errors import ResourceError

Row = tuple[str, float, str, str, str | None]  # kind, value, unit, evidence text, when


def _rows(text: str) -> list[Row]:
    return [(m.kind, m.value, m.unit, m.text, m.when) for m in find_measurements(text)]


READINGS: list[tuple[str, list[Row]]] = [
    # blood pressure: two readings from one evidence
    (
        "BP 152/94",
        [
            ("bp_systolic", 152, "mm[Hg]", "BP 152/94", None),
            ("bp_diastolic", 94, "mm[Hg]", "BP 152/94", None),
        ],
    ),
    (
        "B/P: 138/86 mmHg",
        [
            ("bp_systolic", 138, "mm[Hg]", "B/P: 138/86 mmHg", None),
            ("bp_diastolic", 86, "mm[Hg]", "B/P: 138/86 mmHg", None),
        ],
    ),
    (
        "Blood pressure was 120/80 mm Hg.",
        [
            ("bp_systolic", 120, "mm[Hg]", "Blood pressure was 120/80 mm Hg", None),
            ("bp_diastolic", 80, "mm[Hg]", "Blood pressure was 120/80 mm Hg", None),
        ],
    ),
    (
        "Seated 152/94 mmHg on arrival",
        [
            ("bp_systolic", 152, "mm[Hg]", "152/94 mmHg", "on arrival"),
            ("bp_diastolic", 94, "mm[Hg]", "152/94 mmHg", "on arrival"),
        ],
    ),
    (
        "SBP 152, DBP 94",
        [("bp_systolic", 152, "mm[Hg]", "SBP 152", None), ("bp_diastolic", 94, "mm[Hg]", "DBP 94", None)],
    ),
    (
        "SBP/DBP 150/90",
        [
            ("bp_systolic", 150, "mm[Hg]", "SBP/DBP 150/90", None),
            ("bp_diastolic", 90, "mm[Hg]", "SBP/DBP 150/90", None),
        ],
    ),
    (
        "BP (sitting) 142/88",
        [
            ("bp_systolic", 142, "mm[Hg]", "BP (sitting) 142/88", None),
            ("bp_diastolic", 88, "mm[Hg]", "BP (sitting) 142/88", None),
        ],
    ),
    (
        "today's BP 152/94",
        [
            ("bp_systolic", 152, "mm[Hg]", "BP 152/94", "today"),
            ("bp_diastolic", 94, "mm[Hg]", "BP 152/94", "today"),
        ],
    ),
    (
        "BP today 148/92",
        [
            ("bp_systolic", 148, "mm[Hg]", "BP today 148/92", "today"),
            ("bp_diastolic", 92, "mm[Hg]", "BP today 148/92", "today"),
        ],
    ),
    (
        "BP on 10/12/2024 was 152/94",
        [
            ("bp_systolic", 152, "mm[Hg]", "BP on 10/12/2024 was 152/94", "10/12/2024"),
            ("bp_diastolic", 94, "mm[Hg]", "BP on 10/12/2024 was 152/94", "10/12/2024"),
        ],
    ),
    # heart rate
    ("HR 88", [("heart_rate", 88, "/min", "HR 88", None)]),
    ("Heart rate: 72 bpm", [("heart_rate", 72, "/min", "Heart rate: 72 bpm", None)]),
    ("pulse 64 and regular", [("heart_rate", 64, "/min", "pulse 64", None)]),
    ("T 98.6 P 88 R 16", [("heart_rate", 88, "/min", "P 88", None)]),
    ("Pulse: 90/min", [("heart_rate", 90, "/min", "Pulse: 90/min", None)]),
    ("HR 88\u00a0bpm", [("heart_rate", 88, "/min", "HR 88\u00a0bpm", None)]),
    ("sinus rhythm at 58 beats per minute", [("heart_rate", 58, "/min", "58 beats per minute", None)]),
    # body size
    ("BMI 34.2", [("bmi", 34.2, "kg/m2", "BMI 34.2", None)]),
    ("body mass index of 41 kg/m^2", [("bmi", 41, "kg/m2", "body mass index of 41 kg/m^2", None)]),
    ("BMI 27.5 kg/m²", [("bmi", 27.5, "kg/m2", "BMI 27.5 kg/m²", None)]),
    ("Wt 82 kg", [("weight", 82, "kg", "Wt 82 kg", None)]),
    ("Weight: 210 lbs", [("weight", 210, "[lb_av]", "Weight: 210 lbs", None)]),
    ("wt 180#", [("weight", 180, "[lb_av]", "wt 180#", None)]),
    ("She weighs 162 pounds", [("weight", 162, "[lb_av]", "weighs 162 pounds", None)]),
    ("birth weight 7 lb 8 oz", [("weight", 7.5, "[lb_av]", "weight 7 lb 8 oz", None)]),
    ("Ht 5'10\"", [("height", 70, "[in_i]", "Ht 5'10\"", None)]),
    ("height 5 ft 10 in", [("height", 70, "[in_i]", "height 5 ft 10 in", None)]),
    ("Ht 178 cm", [("height", 178, "cm", "Ht 178 cm", None)]),
    ("height 1.78 m", [("height", 1.78, "m", "height 1.78 m", None)]),
    ("Ht 70 in", [("height", 70, "[in_i]", "Ht 70 in", None)]),
    # glycaemia
    ("HbA1c 7.2%", [("hba1c", 7.2, "%", "HbA1c 7.2%", None)]),
    ("A1c 7.2 (03/2025)", [("hba1c", 7.2, "%", "A1c 7.2", "03/2025")]),
    ("A1c 8.1 H", [("hba1c", 8.1, "%", "A1c 8.1", None)]),
    ("hemoglobin A1c of 6.4 % on 3/1/2025", [("hba1c", 6.4, "%", "hemoglobin A1c of 6.4 %", "3/1/2025")]),
    ("glycated hemoglobin 9.0", [("hba1c", 9.0, "%", "glycated hemoglobin 9.0", None)]),
    ("A1c 3 months ago was 8.1", [("hba1c", 8.1, "%", "A1c 3 months ago was 8.1", "3 months ago")]),
    ("glucose 250 mg/dl", [("glucose", 250, "mg/dL", "glucose 250 mg/dl", None)]),
    ("FSBG 180", [("glucose", 180, "mg/dL", "FSBG 180", None)]),
    ("BG 132 this morning", [("glucose", 132, "mg/dL", "BG 132", "this morning")]),
    ("fasting glucose 6.5 mmol/l", [("glucose", 6.5, "mmol/L", "fasting glucose 6.5 mmol/l", None)]),
    ("Glucose 7.8", [("glucose", 7.8, "mmol/L", "Glucose 7.8", None)]),
    # lipids
    (
        "Lipid panel: TC 240, LDL 162, HDL 38, TG 201",
        [
            ("total_cholesterol", 240, "mg/dL", "TC 240", None),
            ("ldl", 162, "mg/dL", "LDL 162", None),
            ("hdl", 38, "mg/dL", "HDL 38", None),
            ("triglycerides", 201, "mg/dL", "TG 201", None),
        ],
    ),
    ("LDL 162 mg/dL (H)", [("ldl", 162, "mg/dL", "LDL 162 mg/dL", None)]),
    ("LDL-C: 3.2 mmol/L", [("ldl", 3.2, "mmol/L", "LDL-C: 3.2 mmol/L", None)]),
    ("HDL cholesterol 38", [("hdl", 38, "mg/dL", "HDL cholesterol 38", None)]),
    ("Cholesterol, total 221", [("total_cholesterol", 221, "mg/dL", "Cholesterol, total 221", None)]),
    ("trigs 450", [("triglycerides", 450, "mg/dL", "trigs 450", None)]),
    (
        "total cholesterol 5.4 mmol/L",
        [("total_cholesterol", 5.4, "mmol/L", "total cholesterol 5.4 mmol/L", None)],
    ),
    # kidney
    ("Cr 1.4 ↑", [("creatinine", 1.4, "mg/dL", "Cr 1.4", None)]),
    ("creatinine 88 µmol/L", [("creatinine", 88, "umol/L", "creatinine 88 µmol/L", None)]),
    ("creat 2.1", [("creatinine", 2.1, "mg/dL", "creat 2.1", None)]),
    ("eGFR 58 mL/min/1.73m2", [("egfr", 58, "mL/min/{1.73_m2}", "eGFR 58 mL/min/1.73m2", None)]),
    ("GFR >60", [("egfr", 60, "mL/min/{1.73_m2}", "GFR >60", None)]),
    # tables, ALL CAPS, several per line
    (
        "BP 152/94 | HR 88 | BMI 34.2",
        [
            ("bp_systolic", 152, "mm[Hg]", "BP 152/94", None),
            ("bp_diastolic", 94, "mm[Hg]", "BP 152/94", None),
            ("heart_rate", 88, "/min", "HR 88", None),
            ("bmi", 34.2, "kg/m2", "BMI 34.2", None),
        ],
    ),
    (
        "VITALS: BP 130/85 MMHG, HR 72, WT 95 KG. A1C 7.9%, LDL 101 MG/DL",
        [
            ("bp_systolic", 130, "mm[Hg]", "BP 130/85 MMHG", None),
            ("bp_diastolic", 85, "mm[Hg]", "BP 130/85 MMHG", None),
            ("heart_rate", 72, "/min", "HR 72", None),
            ("weight", 95, "kg", "WT 95 KG", None),
            ("hba1c", 7.9, "%", "A1C 7.9%", None),
            ("ldl", 101, "mg/dL", "LDL 101 MG/DL", None),
        ],
    ),
    ("Glucose\t105\tmg/dL\t70-99\tH", [("glucose", 105, "mg/dL", "Glucose\t105\tmg/dL", None)]),
    ("LDL 162, goal < 70", [("ldl", 162, "mg/dL", "LDL 162", None)]),
    ("Goal A1c < 7; A1c 8.1 today", [("hba1c", 8.1, "%", "A1c 8.1", "today")]),
    (
        "Patient lives with daughter, BP 128/76",
        [
            ("bp_systolic", 128, "mm[Hg]", "BP 128/76", None),
            ("bp_diastolic", 76, "mm[Hg]", "BP 128/76", None),
        ],
    ),
]

TRAPS = [
    # goals, targets, reference ranges, device settings
    "LDL goal < 70",
    "Goal LDL < 70 mg/dL",
    "target BP < 130/80",
    "A1c normal 4.0-5.6%",
    "normal range for A1c 4.0-5.6",
    "BP <130/80 mmHg",
    "reference range: HDL 40",
    "pacemaker base rate of 60 bpm",
    "Ideal body weight: 190 pounds",
    # relatives
    "father's LDL 250",
    "Mother with A1c 9.0",
    "FHx: brother BP 170/100",
    # implausible
    "BP 350/100",
    "BP 80/120",
    "HR 400",
    "BMI 150",
    "A1c 25%",
    "LDL 1500",
    "Cr 40 mg/dL",
    # doses, durations, dates, ranges
    "BP meds 5 mg",
    "HR 2/2 afib",
    "on 10/12",
    "seen 10/12, follow up",
    "BP 10/12",
    "A1c in 3 months",
    "A1c 3 months",
    "glucose 15 g PO",
    "LDL 100-129 mg/dL",
    "HR 60-100",
    "BP check in 2 weeks",
    "pulses 2+ bilaterally",
    "BP 140s/90s",
    "Wt 180",
    "Ht 70",
    # names without a value, or another test
    "HR regular, no murmurs",
    "Cr cl 45",
    "CrCl 45 mL/min",
    "creatinine clearance 45",
    "non-HDL cholesterol 180",
    "urine creatinine 100 mg/dL",
    "CSF: protein 88, glucose 78",
    "pulse ox 98%",
    "BUN/Cr 20",
    "if BG > 300 call MD",
    "P53 stain positive",
    "",
]


@pytest.mark.parametrize(("text", "expected"), READINGS)
def test_readings(text: str, expected: list[Row]) -> None:
    assert _rows(text) == expected


@pytest.mark.parametrize("text", [text for text, _ in READINGS])
def test_offsets_point_at_the_evidence_and_the_number(text: str) -> None:
    for m in find_measurements(text):
        assert text[m.start : m.end] == m.text
        assert m.start <= m.value_start < m.value_end <= m.end
        number = text[m.value_start : m.value_end]
        if number.replace(".", "").isdigit():
            assert float(number) == m.value


@pytest.mark.parametrize("text", TRAPS)
def test_traps_give_nothing(text: str) -> None:
    assert _rows(text) == []


@pytest.mark.parametrize(
    ("text", "kind", "loinc"),
    [
        ("BP 152/94", "bp_systolic", "8480-6"),
        ("BP 152/94", "bp_diastolic", "8462-4"),
        ("HR 88", "heart_rate", "8867-4"),
        ("BMI 30", "bmi", "39156-5"),
        ("Wt 80 kg", "weight", "29463-7"),
        ("Ht 170 cm", "height", "8302-2"),
        ("A1c 7.0", "hba1c", "4548-4"),
        ("glucose 100", "glucose", "2345-7"),
        ("glucose 5.5 mmol/L", "glucose", "14749-6"),
        ("LDL 100", "ldl", "18262-6"),
        ("LDL calc 100", "ldl", "13457-7"),
        ("calculated LDL 100", "ldl", "13457-7"),
        ("LDL 100 (Friedewald)", "ldl", "13457-7"),
        ("LDL calc 2.6 mmol/L", "ldl", "39469-2"),
        ("LDL 2.6 mmol/L", "ldl", "69419-0"),
        ("HDL 50", "hdl", "2085-9"),
        ("TC 200", "total_cholesterol", "2093-3"),
        ("TG 150", "triglycerides", "2571-8"),
        ("Cr 1.0", "creatinine", "2160-0"),
        ("Cr 90 umol/L", "creatinine", "14682-9"),
        ("eGFR 75", "egfr", "62238-1"),
    ],
)
def test_loinc_codes(text: str, kind: str, loinc: str) -> None:
    (m,) = [m for m in find_measurements(text) if m.kind == kind]
    assert m.loinc == loinc
    coding = next(c for c in resources.load("measurements").kinds[kind].codings if c.code == loinc)
    assert m.display == coding.display


def test_blood_pressure_is_one_panel_and_values_point_at_each_number() -> None:
    text = "BP 152/94"
    systolic, diastolic = find_measurements(text)
    assert (systolic.panel_loinc, diastolic.panel_loinc) == ("85354-9", "85354-9")
    assert text[systolic.value_start : systolic.value_end] == "152"
    assert text[diastolic.value_start : diastolic.value_end] == "94"
    assert find_measurements("HR 80")[0].panel_loinc is None


def test_comparator_is_kept_where_it_is_a_result() -> None:
    (egfr,) = find_measurements("eGFR >60 mL/min/1.73 m2")
    assert (egfr.comparator, egfr.value) == (">", 60)
    assert find_measurements("eGFR 45")[0].comparator is None


def test_offsets_hold_inside_a_longer_note() -> None:
    note = "S: f/u DM2.\nO: BP 148/92, HR 76.\nLabs 02/2025: A1c 8.4% (H), LDL-C 131 mg/dL, Cr 1.1, eGFR 68\n"
    found = find_measurements(note)
    assert [m.kind for m in found] == [
        "bp_systolic",
        "bp_diastolic",
        "heart_rate",
        "hba1c",
        "ldl",
        "creatinine",
        "egfr",
    ]
    assert all(note[m.start : m.end] == m.text for m in found)


def _finder_with(**changes: object) -> MeasurementFinder:
    spec = json.loads(resources.read_text("measurements"))
    spec.update(changes)
    rules = resources.MeasurementRules.model_validate(spec)
    return MeasurementFinder(rules, list(resources.load("relationships").relationships))


def test_a_bad_pattern_is_a_resource_error() -> None:
    with pytest.raises(ResourceError):
        _finder_with(flags=["(unclosed"])


def test_unknown_references_are_invalid() -> None:
    spec = json.loads(resources.read_text("measurements"))
    spec["analytes"]["heart_rate"]["kinds"] = ["pulse_rate"]
    with pytest.raises(Exception, match="pulse_rate"):
        resources.MeasurementRules.model_validate(spec)


def test_every_unit_an_analyte_allows_has_a_range_for_each_of_its_kinds() -> None:
    rules = resources.load("measurements")
    for name, analyte in rules.analytes.items():
        for kind in analyte.kinds:
            assert set(analyte.units) <= set(rules.kinds[kind].ranges), (name, kind)


def test_the_ranges_decide_what_is_plausible() -> None:
    kinds = json.loads(resources.read_text("measurements"))["kinds"]
    kinds["heart_rate"]["ranges"] = {"/min": [20, 200]}
    assert find_measurements("HR 250")
    assert _finder_with(kinds=kinds).find("HR 250") == []


_VOCAB = [
    *(
        "BP 152/94",
        "HR 88",
        "A1c 7.2%",
        "LDL 162 mg/dL",
        "Ht 5'10\"",
        "Wt 7 lb 8 oz",
        "eGFR >60",
        "152/94 mmHg",
    ),
    *(
        "BP",
        "152/94",
        "HR",
        "88",
        "mmHg",
        "A1c",
        "7.2",
        "%",
        "(03/2025)",
        "LDL",
        "goal",
        "<",
        "father",
        "5'10\"",
    ),
    *("Ht", "lb", "oz", "Cr", "cl", "eGFR", ">60", "today's", ",", ".", ";", "|", "\n", "(H)", "↑", "mg/dL"),
    *("µmol/L", "10/12", "2/2", "-", "P", "kg/m²", "\u00a0", "é", "👍"),
]
_SEPARATORS = [" ", " ", " ", "", ": ", ", ", "\t"]
_notes = st.lists(
    st.tuples(st.sampled_from(_SEPARATORS), st.one_of(st.sampled_from(_VOCAB), st.text(max_size=6))),
    max_size=40,
).map(lambda pairs: "".join(sep + part for sep, part in pairs))


@settings(max_examples=300, deadline=None)
@given(text=_notes)
def test_random_text_never_raises_and_offsets_are_exact(text: str) -> None:
    for m in find_measurements(text):
        assert isinstance(m, Measurement)
        assert text[m.start : m.end] == m.text
        assert m.start <= m.value_start < m.value_end <= m.end


@settings(max_examples=200, deadline=None)
@given(noise=_notes)
def test_a_line_after_any_noise_reads_the_same_shifted(noise: str) -> None:
    line = "BP 152/94, HR 88, A1c 7.2% (03/2025)"
    alone = [(m.kind, m.value, m.start, m.value_start, m.when) for m in find_measurements(line)]
    shift = len(noise) + 1
    after = find_measurements(f"{noise}\n{line}")[-len(alone) :]
    assert [(m.kind, m.value, m.start - shift, m.value_start - shift, m.when) for m in after] == alone
