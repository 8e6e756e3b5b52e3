"""The resumable batch runner: inputs of every kind, per-note errors, poison notes, kill and resume."""

import dataclasses
import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nlp.batch import LEDGER, PARQUET_COLUMNS, read_notes, run_batch
from nlp.errors import InputError, ModelNotFoundError, Notes2FhirError
from nlp.pipeline import Pipeline, load
from nlp.records import NoteRecord, text_hash
from tests.conftest import FIXED_TIMESTAMP

REPO = Path(__file__).resolve().parent.parent
POISON_RAISE, POISON_HANG, POISON_EXIT, POISON_KILL, SLOW = (
    "POISON-RAISE",
    "POISON-HANG",
    "POISON-EXIT",
    "POISON-KILL",
    "SLOW-NOTE",
)


# ------------------------------------------------------------ pipeline factories (run in spawned workers)
@functools.cache
def _lexicon() -> Pipeline:
    return load("lexicon").warm_up()


def lexicon_pipeline() -> Pipeline:
    """The fastest real pipeline, loaded once per process."""
    return _lexicon()


class PoisonPipeline:
    """The lexicon pipeline, except that marker texts raise, hang, exit or kill their process, or take
    three seconds."""

    def __init__(self, inner: Pipeline) -> None:
        self.inner = inner
        self.id = inner.id
        self.info = inner.info

    def _annotate_safely(self, item: dict) -> NoteRecord:
        text = item["text"]
        if POISON_RAISE in text:
            raise RuntimeError("poisoned")
        if POISON_HANG in text:
            time.sleep(3600)
        if POISON_EXIT in text:
            os._exit(3)
        if POISON_KILL in text:
            os.kill(os.getpid(), signal.SIGKILL)
        if SLOW in text:
            time.sleep(3)
        return self.inner._annotate_safely(item)


def poison_pipeline() -> PoisonPipeline:
    return PoisonPipeline(_lexicon())


def other_version_pipeline() -> PoisonPipeline:
    """The lexicon pipeline under another fingerprint, as after a model or rule change."""
    pipe = PoisonPipeline(_lexicon())
    pipe.info = dataclasses.replace(pipe.info, fingerprint="0" * 12)
    return pipe


def missing_model_pipeline() -> Pipeline:
    raise ModelNotFoundError("no model at models/nowhere")


# --------------------------------------------------------------------------------------- helpers
def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), "utf-8")
    return path


def _notes(n: int, poison: dict[int, str] | None = None) -> list[dict]:
    poison = poison or {}
    drugs = ["metformin", "lisinopril", "aspirin", "atorvastatin"]
    return [
        {
            "id": f"n{i:04d}",
            "text": poison.get(i, f"Patient {i} has hypertension, denies chest pain. On {drugs[i % 4]}."),
        }
        for i in range(n)
    ]


def _files(out: Path) -> dict[str, bytes]:
    """The run's outputs (shards and errors), by name."""
    return {p.name: p.read_bytes() for p in sorted(out.glob("part-*"))} | {
        "errors.ndjson": (out / "errors.ndjson").read_bytes()
    }


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def _records(out: Path) -> list[dict]:
    return [r for p in sorted(out.glob("part-*.ndjson")) for r in _lines(p)]


def _run(paths: list[Path], out: Path, **options) -> object:
    options.setdefault("pipeline_factory", lexicon_pipeline)
    options.setdefault("workers", 0)
    options.setdefault("progress", False)
    return run_batch(paths, out, **options)


def _parquet(path: Path, columns: dict[str, list]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


# ---------------------------------------------------------------------------------- reading inputs
@pytest.mark.parametrize(
    "name, write",
    [
        ("notes.jsonl", lambda p: _write_jsonl(p, [{"key": "a", "body": "Has HTN.", "patient_id": "p1"}])),
        ("notes.csv", lambda p: p.write_text('key,body,patient_id\na,"Has HTN.",p1\n', "utf-8")),
        ("notes.parquet", lambda p: _parquet(p, {"key": ["a"], "body": ["Has HTN."], "patient_id": ["p1"]})),
    ],
)
def test_id_and_text_columns_are_configurable(tmp_path: Path, name: str, write) -> None:
    path = tmp_path / name
    write(path)
    (note,) = read_notes([path], id_col="key", text_col="body")
    assert (note.note_id, note.text, note.patient_id, note.error) == ("a", "Has HTN.", "p1", None)


CORRUPT_INPUTS = [
    # file name, content (bytes, or columns for Parquet), expected (note id, error code) per note
    (
        "bad.jsonl",
        b'{"id": "a", "text": "Has HTN."}\n{not json}\n',
        [("a", None), ("bad.jsonl:2", "malformed_record")],
    ),
    (
        "latin1.jsonl",
        '{"id": "x", "text": "Caf\xe9"}\n'.encode("latin-1"),
        [("latin1.jsonl:1", "invalid_encoding")],
    ),
    (
        "no_text.jsonl",
        b'{"id": "a"}\n{"id": "b", "text": 7}\n',
        [("a", "malformed_record"), ("b", "malformed_record")],
    ),
    (
        "empty.jsonl",
        b'{"id": "a", "text": ""}\n\n{"id": "b", "text": "  "}\n',
        [("a", "empty_text"), ("b", "empty_text")],
    ),
    ("surrogate.jsonl", b'{"id": "a", "text": "Has \\ud800 HTN."}\n', [("a", "lone_surrogate")]),
    ("nul.jsonl", b'{"id": "a", "text": "Has\\u0000HTN."}\n', [("a", "nul_byte")]),
    ("surrogate_id.jsonl", b'{"id": "a\\udc80", "text": "Has HTN."}\n', [("a\\x80", None)]),
    ("not_object.jsonl", b"[1, 2]\n", [("not_object.jsonl:1", "malformed_record")]),
    ("no_text.csv", b"id,body\na,Has HTN.\nb,COPD\n", [("a", "malformed_record"), ("b", "malformed_record")]),
    (
        "latin1.csv",
        "id,text\na,Caf\xe9\nb,Has HTN.\n".encode("latin-1"),
        [("a", "invalid_encoding"), ("b", None)],
    ),
    ("short_row.csv", b"id,text\na\nb,Has HTN.\n", [("a", "malformed_record"), ("b", None)]),
    ("no_text.parquet", {"id": ["a", "b"]}, [("a", "malformed_record"), ("b", "malformed_record")]),
    (
        "binary.parquet",
        {"id": ["a", "b"], "text": [b"Caf\xe9", b"Has HTN."]},
        [("a", "invalid_encoding"), ("b", None)],
    ),
    ("not_parquet.parquet", b"PAR1 but not really", [("not_parquet.parquet:1", "unreadable_input")]),
    ("latin1.txt", "Caf\xe9".encode("latin-1"), [("latin1", "invalid_encoding")]),
]


@pytest.mark.parametrize("name, content, expected", CORRUPT_INPUTS, ids=[c[0] for c in CORRUPT_INPUTS])
def test_corrupt_inputs_become_per_note_errors(tmp_path: Path, name: str, content, expected) -> None:
    path = tmp_path / name
    if isinstance(content, dict):
        _parquet(path, content)
    else:
        path.write_bytes(content)
    good = _write_jsonl(tmp_path / "good.jsonl", [{"id": "good", "text": "Has HTN."}])
    manifest = _run([good, path, tmp_path / "missing.jsonl"], tmp_path / "out", fmt="record")
    records = _records(tmp_path / "out")
    got = [(r["note_id"], r["error"]["code"] if r["error"] else None) for r in records]
    assert got == [("good", None), *expected, (str(tmp_path / "missing.jsonl"), "unreadable_input")]
    failed = sum(code is not None for _, code in got)
    assert (manifest.input, manifest.failed, manifest.succeeded) == (len(got), failed, len(got) - failed)
    assert manifest.status == "PARTIAL_SUCCESS"
    errors = _lines(tmp_path / "out" / "errors.ndjson")
    assert [(e["note_id"], e["code"]) for e in errors] == [(i, c) for i, c in got if c is not None]
    assert {e["shard"] for e in errors} == {"part-00000.ndjson"}
    assert all(set(e) == {"note_id", "text_sha256", "code", "message", "shard"} for e in errors)
    assert "Caf" not in (tmp_path / "out" / "errors.ndjson").read_text("utf-8")


def test_error_records_carry_the_text_hash_never_the_text(tmp_path: Path) -> None:
    text = "Has HTN.\x00 Name: Jane Roe"
    _write_jsonl(tmp_path / "nul.jsonl", [{"id": "nul", "text": text}])
    _run([tmp_path / "nul.jsonl"], tmp_path / "out")
    (error,) = _lines(tmp_path / "out" / "errors.ndjson")
    assert error == {
        "note_id": "nul",
        "text_sha256": text_hash(text),
        "code": "nul_byte",
        "message": "note contains a NUL character at offset 8",
        "shard": "part-00000.ndjson",
    }
    assert "Jane" not in (tmp_path / "out" / "part-00000.ndjson").read_text("utf-8")


# ------------------------------------------------------------------------------ outputs and resume
class Interrupted(Exception):
    pass


def _interrupt_after(n: int):
    seen = []

    def on_record(record: NoteRecord) -> None:
        seen.append(record.note_id)
        if len(seen) == n:
            raise Interrupted

    return on_record


@pytest.mark.parametrize("fmt", ["fhir", "record"])
@pytest.mark.parametrize("output_format", ["ndjson", "parquet"])
def test_an_interrupted_run_resumes_to_the_same_bytes(tmp_path: Path, fmt: str, output_format: str) -> None:
    notes = _notes(40) + [{"id": "empty", "text": ""}, {"id": "no-text"}]
    source = _write_jsonl(tmp_path / "notes.jsonl", notes)
    options = {"fmt": fmt, "output_format": output_format, "shard_size": 6, "timestamp": FIXED_TIMESTAMP}
    whole = _run([source], tmp_path / "whole", **options)
    _run([source], tmp_path / "again", **options)
    assert _files(tmp_path / "whole") == _files(tmp_path / "again")  # deterministic

    with pytest.raises(Interrupted):
        _run([source], tmp_path / "cut", on_record=_interrupt_after(20), **options)
    assert len((tmp_path / "cut" / LEDGER).read_text().splitlines()) == 1 + 3  # header + shards 0-2
    resumed = _run([source], tmp_path / "cut", resume=True, **options)
    assert _files(tmp_path / "cut") == _files(tmp_path / "whole")
    assert (resumed.resumed, resumed.annotated) == (18, 24)
    assert (resumed.input, resumed.failed, resumed.status) == (42, 2, "PARTIAL_SUCCESS")
    assert resumed.shards == whole.shards and len(whole.shards) == 7
    assert resumed.errors_by_code == {"empty_text": 1, "malformed_record": 1}


def test_parquet_rows(tmp_path: Path) -> None:
    source = _write_jsonl(tmp_path / "notes.jsonl", [*_notes(3), {"id": "empty", "text": " "}])
    manifest = _run([source], tmp_path / "out", output_format="parquet", fmt="record")
    table = pq.read_table(tmp_path / "out" / "part-00000.parquet")
    assert tuple(table.column_names) == PARQUET_COLUMNS
    rows = table.to_pylist()
    assert [(r["note_id"], r["ok"], r["error_code"]) for r in rows] == [
        ("n0000", True, None),
        ("n0001", True, None),
        ("n0002", True, None),
        ("empty", False, "empty_text"),
    ]
    assert {r["pipeline_fingerprint"] for r in rows} == {manifest.pipeline_fingerprint}
    for row in rows:
        record = json.loads(row["document"])
        assert (record["note_id"], record["text_sha256"]) == (row["note_id"], row["text_sha256"])


def test_every_bundle_of_a_run_has_the_run_start_time_and_a_resume_keeps_it(tmp_path: Path) -> None:
    source = _write_jsonl(tmp_path / "notes.jsonl", _notes(12))
    out = tmp_path / "out"
    with pytest.raises(Interrupted):
        _run([source], out, shard_size=4, on_record=_interrupt_after(6))
    first = {b["timestamp"] for b in _lines(out / "part-00000.ndjson")}
    manifest = _run([source], out, shard_size=4, resume=True)
    stamps = {b["timestamp"] for shard in sorted(out.glob("part-*")) for b in _lines(shard)}
    assert stamps == first == {manifest.options["timestamp"]}  # the mapping contract: processing time
    with pytest.raises(InputError) as changed:
        _run([source], out, shard_size=4, resume=True, timestamp=FIXED_TIMESTAMP)
    assert changed.value.code == "resume_mismatch"
    fixed = _run([source], tmp_path / "fixed", timestamp=FIXED_TIMESTAMP)
    assert {b["timestamp"] for b in _lines(tmp_path / "fixed" / "part-00000.ndjson")} == {FIXED_TIMESTAMP}
    assert fixed.options["timestamp"] == FIXED_TIMESTAMP


def test_resume_redoes_a_damaged_shard_and_drops_a_torn_ledger_line(tmp_path: Path) -> None:
    source = _write_jsonl(tmp_path / "notes.jsonl", _notes(20))
    out = tmp_path / "out"
    _run([source], out, shard_size=8)
    before = _files(out)
    (out / "part-00001.ndjson").write_text("damaged\n")
    with (out / LEDGER).open("a") as ledger:
        ledger.write('{"shard": 2, "file": "part-0')  # killed while appending
    manifest = _run([source], out, shard_size=8, resume=True)
    assert _files(out) == before
    assert (manifest.resumed, manifest.annotated, manifest.status) == (12, 8, "COMPLETED")


def _edit_a_note_keeping_its_size(source: Path) -> dict:
    notes = _notes(12)
    notes[3]["text"] = notes[3]["text"].replace("hypertension", "hypotensions")
    _write_jsonl(source, notes)
    return {}


def _append_a_note(source: Path) -> dict:
    _write_jsonl(source, _notes(13))
    return {}


RESUME_CHANGES = [
    # what changes between the run and its resume -> the options of the resume
    ("an edited note", _edit_a_note_keeping_its_size),
    ("an appended note", _append_a_note),
    ("another output format", lambda source: {"fmt": "record"}),
    ("another shard size", lambda source: {"shard_size": 4}),
    ("another text column", lambda source: {"text_col": "body"}),
    ("another pipeline fingerprint", lambda source: {"pipeline_factory": other_version_pipeline}),
    ("other inputs", lambda source: {"paths": [source, source]}),
]


@pytest.mark.parametrize("change", [c[1] for c in RESUME_CHANGES], ids=[c[0] for c in RESUME_CHANGES])
def test_resume_refuses_a_changed_run(tmp_path: Path, change) -> None:
    source = _write_jsonl(tmp_path / "notes.jsonl", _notes(12))
    out = tmp_path / "out"
    with pytest.raises(Interrupted):
        _run([source], out, shard_size=5, on_record=_interrupt_after(11))
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    size = source.stat().st_size
    options = {"shard_size": 5, **change(source)}
    assert change is not _edit_a_note_keeping_its_size or source.stat().st_size == size
    paths = options.pop("paths", [source])
    with pytest.raises(InputError) as caught:
        _run(paths, out, resume=True, **options)
    assert caught.value.code == "resume_mismatch"
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_an_existing_run_is_not_overwritten(tmp_path: Path) -> None:
    source = _write_jsonl(tmp_path / "notes.jsonl", _notes(2))
    _run([source], tmp_path / "out")
    with pytest.raises(InputError) as caught:
        _run([source], tmp_path / "out")
    assert caught.value.code == "output_not_empty"


@pytest.mark.parametrize(
    "options",
    [{"workers": -1}, {"timeout": 0}, {"shard_size": 0}, {"fmt": "xml"}, {"output_format": "csv"}],
)
def test_bad_options(tmp_path: Path, options: dict) -> None:
    with pytest.raises(InputError) as caught:
        _run([tmp_path], tmp_path / "out", **options)
    assert caught.value.code == "invalid_config"
    assert not (tmp_path / "out").exists()


def test_repeated_note_ids_are_reported_and_every_note_is_kept(tmp_path: Path) -> None:
    first = _write_jsonl(tmp_path / "a.jsonl", _notes(3))
    second = _write_jsonl(tmp_path / "b.jsonl", _notes(4)[1:] + [{"id": "n0001", "text": "No HTN."}])
    out = tmp_path / "out"
    manifest = _run([first, second], out, shard_size=2, fmt="record")
    assert [r["note_id"] for r in _records(out)] == ["n0000", "n0001", "n0002"] + [
        "n0001",
        "n0002",
        "n0003",
        "n0001",
    ]
    assert (manifest.input, manifest.duplicate_ids, manifest.duplicate_id_examples) == (
        7,
        3,
        ["n0001", "n0002"],
    )
    (out / "manifest.json").unlink()
    resumed = _run([first, second], out, shard_size=2, fmt="record", resume=True)
    assert (resumed.resumed, resumed.duplicate_ids) == (7, 3)


def test_all_notes_failing_is_a_failed_run(tmp_path: Path) -> None:
    source = _write_jsonl(tmp_path / "notes.jsonl", [{"id": "a", "text": ""}, {"id": "b"}])
    assert _run([source], tmp_path / "out").status == "FAILED"


# ------------------------------------------------------------------------------- worker processes
def test_a_pipeline_that_cannot_load_stops_the_run(tmp_path: Path) -> None:
    source = _write_jsonl(tmp_path / "notes.jsonl", _notes(2))
    with pytest.raises(Notes2FhirError) as caught:
        _run([source], tmp_path / "out", workers=1, pipeline_factory=missing_model_pipeline)
    assert caught.value.code == "model_not_found"
    assert not list((tmp_path / "out").glob("part-*"))


@pytest.mark.slow
def test_a_slow_note_holding_back_a_full_window_does_not_stall_the_run(tmp_path: Path) -> None:
    """While one worker spends 3 s on a note, the other fills the in-order window (64 notes); once the
    slow note is done the window empties and the run must go on (it once waited forever here)."""
    source = _write_jsonl(tmp_path / "notes.jsonl", _notes(200, {1: f"Has HTN. {SLOW}"}))
    finished: list[object] = []
    run = threading.Thread(
        target=lambda: finished.append(
            _run(
                [source],
                tmp_path / "out",
                workers=2,
                timeout=30.0,
                fmt="record",
                pipeline_factory=poison_pipeline,
            )
        ),
        daemon=True,
    )
    run.start()
    run.join(120)
    assert finished, "the run stalled"
    assert [r["note_id"] for r in _records(tmp_path / "out")] == [f"n{i:04d}" for i in range(200)]


@pytest.mark.slow
def test_poison_notes_are_isolated(tmp_path: Path) -> None:
    poison = {17: POISON_RAISE, 90: POISON_HANG, 160: POISON_EXIT, 230: POISON_KILL}
    notes = _notes(300, {i: f"Has HTN. {marker}" for i, marker in poison.items()})
    source = _write_jsonl(tmp_path / "notes.jsonl", notes)
    manifest = _run(
        [source],
        tmp_path / "out",
        workers=2,
        timeout=2.0,
        shard_size=64,
        fmt="record",
        pipeline_factory=poison_pipeline,
    )
    records = _records(tmp_path / "out")
    assert [r["note_id"] for r in records] == [n["id"] for n in notes]
    failed = {r["note_id"]: r["error"]["code"] for r in records if r["error"]}
    assert failed == {
        "n0017": "internal_error",
        "n0090": "timeout",
        "n0160": "worker_crashed",
        "n0230": "worker_crashed",
    }
    assert all(r["mentions"] for r in records if not r["error"])
    assert (manifest.status, manifest.input, manifest.failed, manifest.worker_restarts) == (
        "PARTIAL_SUCCESS",
        300,
        4,
        3,
    )
    errors = _lines(tmp_path / "out" / "errors.ndjson")
    assert [e["note_id"] for e in errors] == sorted(failed)
    assert all(e["text_sha256"] == text_hash(notes[int(e["note_id"][1:])]["text"]) for e in errors)


@pytest.mark.slow
def test_killing_the_cli_mid_run_then_resuming_gives_the_same_bytes(tmp_path: Path) -> None:
    from nlp.cli import main

    source = _write_jsonl(tmp_path / "notes.jsonl", _notes(1200) + [{"id": "bad"}])
    out, whole = tmp_path / "out", tmp_path / "whole"
    args = ["annotate", str(source), "--pipeline", "lexicon", "--shard-size", "50", "-q"]
    args += ["--timestamp", FIXED_TIMESTAMP]
    cli = subprocess.Popen([sys.executable, "-m", "nlp.cli", *args, "-o", str(out)], cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and cli.poll() is None:
            if (out / LEDGER).exists() and (out / LEDGER).read_bytes().count(b"\n") >= 2:
                break  # the first shard is committed
            time.sleep(0.02)
        cli.send_signal(signal.SIGKILL)
    finally:
        cli.wait()
    assert cli.returncode == -signal.SIGKILL
    committed = (out / LEDGER).read_bytes().count(b"\n") - 1  # complete lines after the header
    assert 1 <= committed < 25, "the run was not killed mid-way"
    assert not (out / "manifest.json").exists()

    assert main([*args, "-o", str(out), "--resume", "--workers", "0"]) == 0
    assert main([*args, "-o", str(whole), "--workers", "0"]) == 0
    assert _files(out) == _files(whole)
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["input"], manifest["failed"], manifest["resumed"]) == (1201, 1, committed * 50)
