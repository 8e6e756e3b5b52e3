"""``notes2fhir annotate``: inputs of every kind, an output directory, errors per note, exit codes."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nlp.cli import main
from nlp.fhir import validate

# the in-process runner and the fastest pipeline (workers and resume: tests/test_batch.py)
FAST = ["--workers", "0", "--pipeline", "lexicon", "-q"]


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
    pq.write_table(pa.table({"id": ["q1"], "text": ["No known drug allergies."]}), tmp_path / "notes.parquet")
    return tmp_path


def test_annotate_every_input_kind(inputs: Path, capsys) -> None:
    out = inputs / "out"
    code = main(
        [
            "annotate",
            str(inputs / "in"),
            str(inputs / "notes.jsonl"),
            str(inputs / "notes.csv"),
            str(inputs / "notes.parquet"),
            str(inputs / "missing.txt"),
            "-o",
            str(out),
            "--format",
            "record",
            *FAST,
        ]
    )
    assert code == 0
    records = _lines(out / "part-00000.ndjson")
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
        "q1",
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
    assert [(e["note_id"], e["code"]) for e in _lines(out / "errors.ndjson")] == list(errors.items())
    assert next(r for r in records if r["note_id"] == "j4")["patient_id"] == "p9"
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert (manifest["status"], manifest["input"], manifest["succeeded"], manifest["failed"]) == (
        "PARTIAL_SUCCESS",
        11,
        5,
        6,
    )
    summary = capsys.readouterr().out
    assert "notes: 11  errors: 6" in summary and "status: PARTIAL_SUCCESS" in summary
    assert "PROBLEM" in summary


def test_annotate_fhir_output_validates(inputs: Path) -> None:
    out = inputs / "out"
    assert main(["annotate", str(inputs / "in"), "-o", str(out), *FAST]) == 0
    docs = _lines(out / "part-00000.ndjson")
    assert [d["resourceType"] for d in docs] == ["Bundle", "OperationOutcome", "OperationOutcome"]
    validate(docs[0])
    assert "Caf" not in json.dumps(docs[1])


def test_options_reach_the_runner(inputs: Path) -> None:
    out = inputs / "out"
    args = ["annotate", str(inputs / "notes.jsonl"), "-o", str(out), "--output-format", "parquet"]
    assert main([*args, "--shard-size", "2", "--id-col", "patient_id", "--max-chars", "20", *FAST]) == 0
    assert sorted(p.name for p in out.glob("part-*")) == ["part-00000.parquet", "part-00001.parquet"]
    rows = [r for p in sorted(out.glob("part-*")) for r in pq.read_table(p).to_pylist()]
    assert [(r["note_id"], r["error_code"]) for r in rows] == [
        ("notes.jsonl:1", "text_too_long"),  # 21 characters
        ("notes.jsonl:2", "malformed_record"),
        ("notes.jsonl:3", "malformed_record"),
        ("p9", None),
    ]
    options = json.loads((out / "manifest.json").read_text("utf-8"))["options"]
    assert (options["output_format"], options["shard_size"], options["max_chars"]) == ("parquet", 2, 20)


def test_exit_code_when_every_note_fails(tmp_path: Path) -> None:
    (tmp_path / "e.txt").write_text("   ", "utf-8")
    assert main(["annotate", str(tmp_path / "e.txt"), "-o", str(tmp_path / "out"), *FAST]) == 1
    assert json.loads((tmp_path / "out" / "manifest.json").read_text("utf-8"))["status"] == "FAILED"


def test_an_existing_run_needs_resume(inputs: Path, capsys) -> None:
    args = ["annotate", str(inputs / "in" / "a.txt"), "-o", str(inputs / "out"), *FAST]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 1
    assert "error [output_not_empty]" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0
    assert "notes: 1 (1 resumed)  errors: 0" in capsys.readouterr().out


def test_repeated_note_ids_are_reported(inputs: Path, capsys) -> None:
    a_txt = str(inputs / "in" / "a.txt")
    assert main(["annotate", a_txt, a_txt, "-o", str(inputs / "out"), *FAST]) == 0
    assert "repeated note ids:     1 (e.g. a); their FHIR resource ids collide" in capsys.readouterr().out


def test_table_and_summary(inputs: Path, capsys) -> None:
    main(["annotate", str(inputs / "in" / "a.txt"), "-o", str(inputs / "out"), "--table", *FAST])
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
    one, two = inputs / "one", inputs / "two"
    args = [str(inputs / "in"), str(inputs / "notes.jsonl"), "--format", "record", "-q"]
    assert main(["annotate", *args, "-o", str(one)]) == 0
    assert main(["annotate", *args, "-o", str(two), "--workers", "2"]) == 0
    assert (one / "part-00000.ndjson").read_bytes() == (two / "part-00000.ndjson").read_bytes()
