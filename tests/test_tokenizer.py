import pytest


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("metformin 1000mg", ["metformin", "1000", "mg"]),
        ("0.5mg/kg", ["0.5", "mg", "/", "kg"]),
        ("s/p CABG", ["s/p", "CABG"]),
        ("S/P CABG", ["S/P", "CABG"]),
        ("h/o DVT", ["h/o", "DVT"]),
        ("40 mg IV b.i.d.", ["40", "mg", "IV", "b.i.d."]),
        ("amoxicillin x3d", ["amoxicillin", "x", "3", "d"]),
        ("x 7 days", ["x", "7", "days"]),
        ("q6h.", ["q6", "h", "."]),
        ("BP 152/94", ["BP", "152/94"]),
        ("CP/SOB", ["CP", "/", "SOB"]),
        ("A1c 8.1%", ["A1c", "8.1", "%"]),
        ("Dr. Example", ["Dr.", "Example"]),
    ],
)
def test_clinical_tokenizer(pipe, text: str, tokens: list[str]) -> None:
    assert [t.text for t in pipe.nlp.make_doc(text)] == tokens
