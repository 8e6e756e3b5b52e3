"""The ``notes2fhir annotate`` command: inputs of every kind, errors per note, exit codes."""

import json
from pathlib import Path

import pytest

from nlp.cli import main
from nlp.fhir import validate


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.txt").write_text("Has HTN. Denies chest pain.", "utf-8")
    (d / "b.txt").write_bytes("Caf\xe9 latin-1 note".encode("latin-1"))
    (d / "c.txt").write_text("", "utf-8")
    (tmp_path / "notes.jsonl").write_text(
        '{"id": "j1", "text": "Metformin 500 mg BID."}\n{not json}\n{"id": "j3"}\n'
        '{"id": "j4", "text": "FHx: father with MI.", "patient_id": "p9"}\n',
        "utf-8",
    )
    (tmp_path / "notes.csv").write_text('id,text\nc1,"Possible pneumonia, on amoxicillin."\nc2,\n', "utf-8")
    return tmp_path


def test_annotate_every_input_kind(inputs: Path, capsys) -> None:
    out = inputs / "out.ndjson"
    code = main(
        [
            "annotate",
            str(inputs / "in"),
            str(inputs / "notes.jsonl"),
            str(inputs / "notes.csv"),
            str(inputs / "missing.txt"),
            "-o",
            str(out),
            "--format",
            "record",
            "-q",
        ]
    )
    assert code == 0
    records = _lines(out)
    assert [r["note_id"] for r in records] == [
        "a",
        "b",
        "c",
        "j1",
        "notes.jsonl:2",
        "j3",
        "j4",
        "c1",
        "c2",
        str(inputs / "missing.txt"),
    ]
    errors = {r["note_id"]: r["error"]["code"] for r in records if r["error"]}
    assert errors == {
        "b": "invalid_encoding",
        "c": "empty_text",
        "notes.jsonl:2": "malformed_record",
        "j3": "malformed_record",
        "c2": "empty_text",
        str(inputs / "missing.txt"): "unreadable_input",
    }
    assert next(r for r in records if r["note_id"] == "j4")["patient_id"] == "p9"
    summary = capsys.readouterr().out
    assert "notes: 10  errors: 6" in summary and "PROBLEM" in summary


def test_annotate_fhir_output_validates(inputs: Path) -> None:
    out = inputs / "out.ndjson"
    assert main(["annotate", str(inputs / "in"), "-o", str(out), "-q"]) == 0
    docs = _lines(out)
    assert [d["resourceType"] for d in docs] == ["Bundle", "OperationOutcome", "OperationOutcome"]
    validate(docs[0])
    assert "Caf" not in json.dumps(docs[1])


def test_exit_code_when_every_note_fails(tmp_path: Path) -> None:
    (tmp_path / "e.txt").write_text("   ", "utf-8")
    assert main(["annotate", str(tmp_path / "e.txt"), "-o", str(tmp_path / "o.ndjson"), "-q"]) == 1


def test_table_and_summary(inputs: Path, capsys) -> None:
    main(["annotate", str(inputs / "in" / "a.txt"), "-o", str(inputs / "o.ndjson"), "--table", "-q"])
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == [
        "note",
        "sections",
        "problems",
        "drugs",
        "negated",
        "family",
        "relations",
        "status",
    ]
    assert "mentions by assertion: absent 1, present 1" in out


@pytest.mark.slow
def test_workers_give_the_same_output(inputs: Path) -> None:
    one, two = inputs / "one.ndjson", inputs / "two.ndjson"
    args = [str(inputs / "in"), str(inputs / "notes.jsonl"), "--format", "record", "-q"]
    assert main(["annotate", *args, "-o", str(one)]) == 0
    assert main(["annotate", *args, "-o", str(two), "--workers", "2"]) == 0
    assert one.read_text() == two.read_text()
