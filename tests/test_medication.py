"""Medication attributes: mention → exact attribute texts and normalised values."""

import pytest

from tests.conftest import find

CASES = [
    ("metformin 1000 mg PO BID", "metformin", {"strength": "1000 mg", "route": "PO", "frequency": "BID"}),
    ("lisinopril 10mg daily", "lisinopril", {"strength": "10mg", "frequency": "daily"}),
    (
        "atorvastatin 40 mg by mouth nightly",
        "atorvastatin",
        {"strength": "40 mg", "route": "by mouth", "frequency": "nightly"},
    ),
    (
        "albuterol 2 puffs q4-6h PRN wheezing",
        "albuterol",
        {"dose": "2 puffs", "frequency": "q4-6h", "prn": "PRN wheezing", "indication": "wheezing"},
    ),
    ("furosemide 40 mg IV b.i.d.", "furosemide", {"strength": "40 mg", "route": "IV", "frequency": "b.i.d."}),
    (
        "amoxicillin 500 mg TID x7 days",
        "amoxicillin",
        {"strength": "500 mg", "frequency": "TID", "duration": "x7 days"},
    ),
    (
        "prednisone 40 mg daily x5d",
        "prednisone",
        {"strength": "40 mg", "frequency": "daily", "duration": "x5d"},
    ),
    (
        "insulin glargine 20 units SC qHS",
        "insulin glargine",
        {"strength": "20 units", "route": "SC", "frequency": "qHS"},
    ),
    (
        "ondansetron 4 mg IV q8h prn nausea",
        "ondansetron",
        {"strength": "4 mg", "route": "IV", "frequency": "q8h", "prn": "prn nausea", "indication": "nausea"},
    ),
    ("apixaban 5 mg twice daily", "apixaban", {"strength": "5 mg", "frequency": "twice daily"}),
]


@pytest.mark.parametrize(("text", "drug", "expected"), CASES)
def test_attributes(pipe, text: str, drug: str, expected: dict[str, str]) -> None:
    m = find(pipe.annotate(text), drug)
    assert {k: v["text"] for k, v in m.attributes.items()} == expected
    for attr in m.attributes.values():
        assert text[attr["start"] : attr["end"]] == attr["text"]


def test_normalised_values(pipe) -> None:
    m = find(pipe.annotate("Lasix 40mg PO b.i.d. x 3 days"), "Lasix")
    a = m.attributes
    assert (a["strength"]["value"], a["strength"]["unit"]) == (40.0, "mg")
    assert (a["route"]["code"], a["frequency"]["code"]) == ("26643006", "BID")
    assert (a["duration"]["value"], a["duration"]["unit"]) == (3, "d")


def test_attributes_stop_at_the_next_drug(pipe) -> None:
    record = pipe.annotate("Aspirin 81 mg daily, clopidogrel 75 mg daily.")
    assert find(record, "Aspirin").attributes["strength"]["text"] == "81 mg"
    assert find(record, "clopidogrel").attributes["strength"]["text"] == "75 mg"


def test_list_lines_do_not_leak(pipe) -> None:
    record = pipe.annotate("- Metoprolol\n- Lisinopril 10 mg daily")
    assert find(record, "Metoprolol").attributes == {}
