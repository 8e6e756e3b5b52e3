"""The Spark adapter: records equal to ``Pipeline.annotate``, one error row per bad note, one pipeline load
per Python worker process. Spark runs in local mode (``local[2]``); those tests skip without pyspark or
Java. The per-note error handling (a crash, a timeout) is also run in this process, on pandas batches."""

import hashlib
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

from nlp import spark as nlp_spark
from nlp.errors import ConfigError, ModelNotFoundError
from nlp.fhir import to_fhir, validate
from nlp.pipeline import DEFAULT_MAX_CHARS, Pipeline
from nlp.records import NoteRecord
from nlp.spark import OUTPUT_SCHEMA, SparkAnnotator, annotate, worker_pipeline
from tests.conftest import FIXED_TIMESTAMP

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# pyspark 4.3 warns that pandas 3 is not fully supported; mapInPandas on string, binary, boolean and
# integer columns (all this adapter exchanges) is what these tests check
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")

SECRET = "Jane Secretname"
NOTES = [
    (
        "n1",
        "67M with HTN, DM2. Denies chest pain. Mother had MI at 52.\nMeds: metformin 1000 mg PO BID",
        "p1",
    ),
    ("n2", "Allergies: penicillin (hives). Started lisinopril 10 mg daily for hypertension.", None),
    ("n3", "No fever or cough. History of asthma as a child.", "p3"),
]
# (note id, the text's bytes, not always UTF-8, or None, the error code with max_chars=200; None: annotated)
BAD_NOTES = [
    ("good", b"Denies chest pain. On aspirin 81 mg daily.", None),
    ("null", None, "invalid_type"),
    ("empty", b"", "empty_text"),
    ("blank", b"  \n\t ", "empty_text"),
    ("long", b"HTN. " * 41, "text_too_long"),
    ("nul", f"{SECRET} has HTN\x00".encode(), "nul_byte"),
    ("surrogate", f"{SECRET} has HTN ".encode() + b"\xed\xa0\x80", "lone_surrogate"),
    ("latin1", f"{SECRET} has HTN, f\xe9ver".encode("latin-1"), "invalid_encoding"),
]
EXPECTED_SCHEMA = [
    ("note_id", "string"),
    ("text_sha256", "string"),
    ("pipeline", "string"),
    ("pipeline_fingerprint", "string"),
    ("ok", "boolean"),
    ("error_code", "string"),
    ("mentions", "int"),
    ("document", "string"),
]


# ---------------------------------------------------------------------------------------------- Spark
@pytest.fixture(scope="module")
def spark() -> Iterator["SparkSession"]:
    pytest.importorskip("pyspark", reason="pyspark is not installed: pip install 'notes2fhir[spark]'")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs Java 17 or newer: no java on PATH and no JAVA_HOME")
    from pyspark.sql import SparkSession

    env = pytest.MonkeyPatch()
    env.setenv("PYSPARK_PYTHON", sys.executable)  # the workers run this interpreter, where nlp is installed
    session = (
        SparkSession.builder.master("local[2]")
        .appName("notes2fhir-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    env.undo()


@pytest.fixture(scope="module")
def lexicon() -> Pipeline:
    """The pipeline the workers load, loaded here the same way."""
    return worker_pipeline("lexicon", DEFAULT_MAX_CHARS)


def record_json(record: NoteRecord) -> str:
    """The house record JSON, serialised as the batch runner writes it."""
    return json.dumps(
        record.model_dump(mode="json", by_alias=True), ensure_ascii=False, separators=(",", ":")
    )


def notes_frame(
    spark: "SparkSession", notes: list[tuple[str, str, str | None]], partitions: int = 2
) -> "DataFrame":
    frame = spark.createDataFrame(notes, "note_id string, text string, patient_id string")
    return frame.repartition(partitions)


def by_id(frame: "DataFrame") -> dict[str, dict[str, Any]]:
    return {row.note_id: row.asDict() for row in frame.collect()}


@pytest.mark.slow
def test_records_equal_pipeline_annotate(spark, lexicon: Pipeline, samples: dict[str, str]) -> None:
    notes = NOTES + [(name, text, None) for name, text in samples.items()]
    rows = by_id(annotate(notes_frame(spark, notes), patient_col="patient_id", pipeline="lexicon"))
    assert set(rows) == {note_id for note_id, _, _ in notes}
    for note_id, text, patient_id in notes:
        record = lexicon.annotate(text, note_id=note_id, patient_id=patient_id)
        row = rows[note_id]
        assert row["document"] == record_json(record)
        assert (row["ok"], row["error_code"], row["mentions"]) == (True, None, len(record.mentions))
        assert (row["text_sha256"], row["pipeline"]) == (record.text_sha256, "notes2fhir-lexicon@0.1.0")
        assert row["pipeline_fingerprint"] == lexicon.info.fingerprint
    assert sum(row["mentions"] for row in rows.values()) > len(notes)


@pytest.fixture(scope="module")
def bad_note_rows(spark) -> dict[str, dict]:
    from pyspark.sql import functions as F

    raw = spark.createDataFrame([(n, t) for n, t, _ in BAD_NOTES], "note_id string, raw binary").repartition(
        2
    )
    frame = raw.select(
        "note_id", F.col("raw").cast("string").alias("text")
    )  # unchecked bytes, as Spark allows
    return by_id(annotate(frame, pipeline="lexicon", max_chars=200))


@pytest.mark.slow
@pytest.mark.parametrize(("note_id", "text", "code"), BAD_NOTES)
def test_bad_note_is_an_error_row(
    bad_note_rows: dict[str, dict], note_id: str, text: bytes, code: str
) -> None:
    assert set(bad_note_rows) == {n for n, _, _ in BAD_NOTES}  # the job finished, every note has its row
    row = bad_note_rows[note_id]
    record = json.loads(row["document"])
    assert (row["ok"], row["error_code"]) == (code is None, code)
    assert (record["error"] or {}).get("code") == code
    assert row["text_sha256"] == (None if text is None else hashlib.sha256(text).hexdigest())
    assert SECRET not in row["document"]


@pytest.mark.slow
def test_non_string_text_column_and_null_ids(spark, lexicon: Pipeline) -> None:
    numbers = spark.createDataFrame([("a", 1), ("b", None)], "note_id string, text int")
    assert {r.error_code for r in annotate(numbers, pipeline="lexicon").collect()} == {"invalid_type"}
    text = "Denies chest pain."
    unnamed = spark.createDataFrame([(None, text)], "note_id string, text string")
    (row,) = annotate(unnamed, pipeline="lexicon").collect()
    assert row.note_id == lexicon.annotate(text).note_id  # a hash of the text, as Pipeline.annotate does


@pytest.mark.slow
def test_output_columns_and_types(spark) -> None:
    out = annotate(notes_frame(spark, NOTES[:1]), pipeline="lexicon", fmt="fhir")
    assert [(f.name, f.dataType.simpleString()) for f in out.schema.fields] == EXPECTED_SCHEMA


@pytest.mark.slow
def test_pipeline_loaded_once_per_worker_process(spark, tmp_path: Path) -> None:
    """Eight tasks on two cores: every task's process has loaded the pipeline exactly once."""
    from pyspark import TaskContext

    annotator = SparkAnnotator(
        pipeline="lexicon", max_chars=DEFAULT_MAX_CHARS - 1
    )  # a key no other test uses
    markers = str(tmp_path)

    def annotate_and_mark(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        before = worker_pipeline.cache_info().misses
        yield from annotator(batches)
        loads = worker_pipeline.cache_info().misses - before
        Path(markers, f"{os.getpid()}-{TaskContext.get().partitionId()}").write_text(str(loads))

    from pyspark.sql import functions as F

    frame = notes_frame(spark, [(f"n{i}", NOTES[i % 3][1], None) for i in range(24)], partitions=8)
    shipped = frame.select(F.col("note_id").cast("binary"), F.col("text").cast("binary"))
    assert shipped.mapInPandas(annotate_and_mark, OUTPUT_SCHEMA).filter("ok").count() == 24
    loads_by_process: dict[str, int] = {}
    for path in tmp_path.iterdir():
        pid = path.name.split("-")[0]
        loads_by_process[pid] = loads_by_process.get(pid, 0) + int(path.read_text())
    assert len(list(tmp_path.iterdir())) == 8
    assert set(loads_by_process.values()) == {1}
    assert len(loads_by_process) < 8  # processes ran several tasks each


@pytest.mark.slow
def test_fhir_format_is_valid_and_reproducible(spark, lexicon: Pipeline) -> None:
    frame = notes_frame(spark, [*NOTES, ("empty", " ", None)])
    first = by_id(annotate(frame, pipeline="lexicon", fmt="fhir", timestamp=FIXED_TIMESTAMP))
    second = by_id(annotate(frame, pipeline="lexicon", fmt="fhir", timestamp=FIXED_TIMESTAMP))
    assert first == second
    for note_id, text, _ in NOTES:
        bundle = json.loads(first[note_id]["document"])
        assert bundle == to_fhir(lexicon.annotate(text, note_id=note_id), timestamp=FIXED_TIMESTAMP)
        validate(bundle)
    stamps = {
        json.loads(row["document"]).get("timestamp")
        for row in by_id(annotate(frame, fmt="fhir", pipeline="lexicon")).values()
    }
    assert len(stamps - {None}) == 1  # one processing time for the whole job (None: the error row)
    outcome = json.loads(first["empty"]["document"])
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["details"]["text"] == "empty_text"


@pytest.mark.slow
def test_timeout_in_a_spark_worker(spark) -> None:
    """The worker runs notes in its main thread, so SIGALRM can stop one (here after 1 ms)."""
    note = " ".join(text for _, text, _ in NOTES) * 10
    (row,) = annotate(
        notes_frame(spark, [("slow", note, None)], 1), pipeline="lexicon", timeout=0.001
    ).collect()
    assert (row.ok, row.error_code) == (False, "timeout")


@pytest.mark.slow
def test_default_pipeline(spark, pipe: Pipeline) -> None:
    rows = by_id(annotate(notes_frame(spark, NOTES[:2]), patient_col="patient_id"))
    for note_id, text, patient_id in NOTES[:2]:
        record = pipe.annotate(text, note_id=note_id, patient_id=patient_id)
        assert rows[note_id]["document"] == record_json(record)
        assert rows[note_id]["pipeline"] == "notes2fhir-default@0.1.0"


@pytest.mark.slow
def test_missing_column_is_a_config_error(spark) -> None:
    frame = notes_frame(spark, NOTES[:1])
    with pytest.raises(ConfigError, match="no column"):
        annotate(frame, text_col="body")


# ------------------------------------------------------------------------------------ driver checks
@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"fmt": "xml"}, ConfigError),
        ({"pipeline": "nonexistent"}, ModelNotFoundError),
        ({"max_chars": 0}, ConfigError),
        ({"max_chars": DEFAULT_MAX_CHARS * 10 + 1}, ConfigError),
        ({"timeout": 0}, ConfigError),
        ({"timeout": -1.0}, ConfigError),
    ],
)
def test_bad_options_fail_on_the_driver(options: dict, error: type[Exception]) -> None:
    pytest.importorskip("pyspark", reason="pyspark is not installed: pip install 'notes2fhir[spark]'")
    with pytest.raises(error):
        annotate(None, **options)  # checked before the DataFrame is touched


def test_without_pyspark_the_error_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("pyspark", "pyspark.sql", "pyspark.sql.types"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'notes2fhir\[spark\]'"):
        annotate(None)


# ----------------------------------------------------------------------- the worker function, in process
def batch(*notes: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "note_id": pd.Series([n.encode() for n, _ in notes], dtype=object),
            "text": pd.Series([t.encode() for _, t in notes], dtype=object),
        }
    )


def test_crash_inside_the_pipeline_is_an_error_row(
    monkeypatch: pytest.MonkeyPatch, lexicon: Pipeline
) -> None:
    real = lexicon.annotate

    def crash_on_boom(text: str, **kwargs):
        if "boom" in text:
            raise RuntimeError(f"cannot read {text}")
        return real(text, **kwargs)

    monkeypatch.setattr(lexicon, "annotate", crash_on_boom)
    (out,) = SparkAnnotator(pipeline="lexicon")(
        iter([batch(("a", "Has HTN."), ("b", "boom"), ("c", "Has DM2."))])
    )
    assert list(out["note_id"]) == ["a", "b", "c"]
    assert list(out["error_code"]) == [None, "internal_error", None]
    assert list(out["ok"]) == [True, False, True]
    assert "boom" not in out["document"][1]


def test_document_failure_is_an_error_row(monkeypatch: pytest.MonkeyPatch) -> None:
    real = nlp_spark.to_document

    def fail_on_annotated(record: NoteRecord, fmt: str, *, timestamp: str | None = None) -> str:
        if record.ok:
            raise KeyError("m7")
        return real(record, fmt, timestamp=timestamp)

    monkeypatch.setattr(nlp_spark, "to_document", fail_on_annotated)
    (out,) = SparkAnnotator(pipeline="lexicon", fmt="fhir")(iter([batch(("a", "Has HTN."))]))
    assert (out["ok"][0], out["error_code"][0]) == (False, "internal_error")
    assert json.loads(out["document"][0])["resourceType"] == "OperationOutcome"
    assert out["text_sha256"][0] == hashlib.sha256(b"Has HTN.").hexdigest()


def test_timeout_in_process_resets_the_pipeline(monkeypatch: pytest.MonkeyPatch, lexicon: Pipeline) -> None:
    def hang(text: str, **kwargs):
        time.sleep(30)

    monkeypatch.setattr(lexicon, "annotate", hang)
    handler = signal.getsignal(signal.SIGALRM)
    started = time.perf_counter()
    (out,) = SparkAnnotator(pipeline="lexicon", timeout=0.2)(iter([batch(("stuck", "Has HTN."))]))
    assert time.perf_counter() - started < 10
    assert (out["ok"][0], out["error_code"][0]) == (False, "timeout")
    assert json.loads(out["document"][0])["error"]["message"].endswith("0.2 s per-note timeout")
    assert signal.getsignal(signal.SIGALRM) is handler and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert worker_pipeline.cache_info().currsize == 0  # the interrupted pipeline is not used again


def test_empty_batch_keeps_the_columns() -> None:
    empty = batch()
    (out,) = SparkAnnotator(pipeline="lexicon")(iter([empty]))
    assert list(out.columns) == [name for name, _ in EXPECTED_SCHEMA] and len(out) == 0
