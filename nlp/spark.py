"""Spark adapter: annotate a DataFrame of notes with ``mapInPandas``, one pipeline per executor process.

>>> from nlp import spark as nlp_spark
>>> records = nlp_spark.annotate(notes_df, text_col="text", id_col="note_id", pipeline="fast")
>>> records.write.parquet("out/records.parquet")

Each Python worker process loads the pipeline the first time it needs it (:func:`worker_pipeline`, a
module-level cache keyed by pipeline name and limit) and keeps it for every later task; the pipeline is
never pickled or broadcast, only the small :class:`SparkAnnotator` settings travel with the task.
Every note becomes one output row: a bad note (null, not a string, empty, too long, NUL, lone
surrogate, not UTF-8, a crash inside the pipeline, a timeout) becomes an error row, so Spark never
retries a whole task because of one note.

Text travels to the worker as UTF-8 bytes: a Spark string is not checked to be valid UTF-8, and one
malformed string would otherwise fail the worker's Arrow decoding for its whole batch.

The per-note ``timeout`` is a ``SIGALRM`` timer (``signal.setitimer``), available on Unix when the
worker runs the function in its main thread (it does in PySpark's Python workers). An overrun raises
inside the pipeline between two Python bytecodes; a note stuck inside C code that does not check for
signals (a long regular expression match, a native library call) is interrupted only when that code
returns, and without signals (another platform or thread) there is no per-note limit at all. After a
timeout the worker drops its pipeline and loads a fresh one, since an interrupted component may have
left per-call state behind.

pyspark is an optional dependency (``pip install 'notes2fhir[spark]'``): this module imports it only
inside :func:`annotate`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Literal, get_args

from nlp.batch import to_document
from nlp.errors import ConfigError, ModelNotFoundError
from nlp.pipeline import DEFAULT_MAX_CHARS, PIPELINES, Pipeline, load
from nlp.records import NoteRecord, error_record

if TYPE_CHECKING:
    import pandas as pd
    import pyspark.sql

log = logging.getLogger(__name__)

Format = Literal["record", "fhir"]
# the output rows: typed keys for filtering and joining, the record (or FHIR) JSON in ``document``;
# name -> (Spark type, pandas dtype of the batch the worker yields)
OUTPUT_COLUMNS: dict[str, tuple[str, Any]] = {
    "note_id": ("string", object),
    "text_sha256": ("string", object),
    "pipeline": ("string", object),
    "pipeline_fingerprint": ("string", object),
    "ok": ("boolean", bool),
    "error_code": ("string", object),  # null when ok
    "mentions": ("int", "int32"),
    "document": ("string", object),
}
OUTPUT_SCHEMA = ", ".join(f"{name} {spark_type}" for name, (spark_type, _) in OUTPUT_COLUMNS.items())
MAX_CHARS_LIMIT = DEFAULT_MAX_CHARS * 10  # what nlp.load accepts
INSTALL_HINT = "pip install 'notes2fhir[spark]'"


@functools.cache
def worker_pipeline(name: str, max_chars: int) -> Pipeline:
    """The pipeline this process annotates with: loaded and warmed up on first use, then reused.

    Args:
        name: a pipeline name (see :data:`nlp.pipeline.PIPELINES`).
        max_chars: the per-note limit the pipeline enforces.
    """
    pipe = load(name, max_chars=max_chars).warm_up()
    log.info("loaded pipeline %s (%s) in this worker process", pipe.id, pipe.info.fingerprint)
    return pipe


class NoteTimeout(BaseException):
    """Raised by the ``SIGALRM`` handler inside a note that ran out of time.

    A ``BaseException``, so that a component's ``except Exception`` cannot swallow it; it never
    leaves :class:`SparkAnnotator`, which turns it into a ``timeout`` error record.
    """


def _raise_note_timeout(signum: int, frame: FrameType | None) -> None:
    raise NoteTimeout


class NoteDeadline:
    """A per-note time limit on ``SIGALRM``, for the notes of one partition.

    Entering it installs the signal handler (and leaving it restores the previous one);
    :meth:`limit` arms the timer around one note. Where signals cannot be used (no
    ``setitimer``, or not the main thread), ``enabled`` is false and notes run without a limit.
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.enabled = (
            seconds is not None
            and hasattr(signal, "setitimer")
            and threading.current_thread() is threading.main_thread()
        )
        if seconds is not None and not self.enabled:
            log.warning("per-note timeout unavailable here (needs SIGALRM in the main thread); none applied")
        self._previous: Any = None

    def __enter__(self) -> NoteDeadline:
        if self.enabled:
            self._previous = signal.signal(signal.SIGALRM, _raise_note_timeout)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.enabled:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)

    @contextmanager
    def limit(self) -> Iterator[None]:
        """Run the body with the timer armed; :class:`NoteTimeout` is raised in it on overrun."""
        if not self.enabled:
            yield
            return
        assert self.seconds is not None
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)


def _key(value: Any) -> str | None:
    """A note or patient id as shipped (UTF-8 bytes or null); malformed bytes are replaced."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else None


def _default_note_id(raw_text: Any) -> str:
    """The id of a note without one: :func:`nlp.pipeline.default_note_id` of its UTF-8 bytes."""
    return "note-" + hashlib.sha256(raw_text).hexdigest()[:12] if isinstance(raw_text, bytes) else "unknown"


@dataclass(frozen=True)
class SparkAnnotator:
    """The ``mapInPandas`` function: batches of ``note_id``/``text``/``patient_id`` in, output rows out.

    Only these settings are pickled with the task; the pipeline comes from :func:`worker_pipeline`.

    Attributes:
        pipeline: the pipeline name.
        fmt: ``record`` or ``fhir`` (what ``document`` holds).
        timestamp: ``Bundle.timestamp`` of every Bundle (fixed on the driver for the whole job).
        max_chars: the per-note limit.
        timeout: seconds per note (``None``: no limit).
        text_is_utf8: the ``text`` column holds UTF-8 bytes of a Spark string column (else the
            column's own values, which are not strings and become ``invalid_type`` errors).
    """

    pipeline: str = "default"
    fmt: Format = "record"
    timestamp: str | None = None
    max_chars: int = DEFAULT_MAX_CHARS
    timeout: float | None = 60.0
    text_is_utf8: bool = True

    def __call__(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import pandas as pd

        with NoteDeadline(self.timeout) as deadline:
            for batch in batches:
                patients = batch["patient_id"] if "patient_id" in batch else [None] * len(batch)
                rows = []
                for note_id, text, patient_id in zip(batch["note_id"], batch["text"], patients, strict=True):
                    pipe = worker_pipeline(self.pipeline, self.max_chars)
                    record = self.annotate_note(pipe, note_id, text, patient_id, deadline)
                    rows.append(self.row(pipe, record))
                columns = zip(*rows, strict=True) if rows else [()] * len(OUTPUT_COLUMNS)
                yield pd.DataFrame(
                    {
                        name: pd.Series(list(values), dtype=dtype)
                        for (name, (_, dtype)), values in zip(OUTPUT_COLUMNS.items(), columns, strict=True)
                    }
                )

    def annotate_note(
        self, pipe: Pipeline, raw_id: Any, raw_text: Any, raw_patient: Any, deadline: NoteDeadline
    ) -> NoteRecord:
        """The record of one note as shipped, or an error record for whatever went wrong with it."""
        shipped_id, patient_id = _key(raw_id), _key(raw_patient)
        note_id = shipped_id if shipped_id is not None else _default_note_id(raw_text)
        text = raw_text
        if self.text_is_utf8 and isinstance(raw_text, bytes):
            try:
                text = raw_text.decode("utf-8", "surrogatepass")  # a lone surrogate is the pipeline's error
            except UnicodeDecodeError as exc:
                record = error_record(
                    note_id,
                    "invalid_encoding",
                    f"note text is not UTF-8 (byte {exc.start})",
                    pipeline=pipe.id,
                    patient_id=patient_id,
                )
                return record.model_copy(update={"text_sha256": hashlib.sha256(raw_text).hexdigest()})
        try:
            with deadline.limit():
                return pipe._annotate_safely({"id": note_id, "text": text, "patient_id": patient_id})
        except NoteTimeout:
            worker_pipeline.cache_clear()  # an interrupted component may have kept per-call state
            log.warning(
                "note %s ran past %s s; this process will load the pipeline again", note_id, self.timeout
            )
            return error_record(
                note_id,
                "timeout",
                f"annotation took longer than the {self.timeout:g} s per-note timeout",
                pipeline=pipe.id,
                text=text,
                patient_id=patient_id,
            )

    def row(self, pipe: Pipeline, record: NoteRecord) -> tuple[Any, ...]:
        """One output row, in :data:`OUTPUT_COLUMNS` order (the document as :func:`nlp.batch.to_document`)."""
        try:
            document = to_document(record, self.fmt, timestamp=self.timestamp)
        except Exception as exc:  # a record the FHIR mapping cannot take fails alone, like a crash
            log.error(
                "note %s: %s while writing its %s document", record.note_id, type(exc).__name__, self.fmt
            )
            record = error_record(
                record.note_id,
                "internal_error",
                f"{type(exc).__name__} while writing the {self.fmt} document",
                pipeline=record.pipeline,
                patient_id=record.patient_id,
            ).model_copy(update={"text_sha256": record.text_sha256, "text_length": record.text_length})
            document = to_document(record, self.fmt, timestamp=self.timestamp)
        return (
            record.note_id,
            record.text_sha256,
            record.pipeline,
            pipe.info.fingerprint,
            record.ok,
            record.error.code if record.error is not None else None,
            len(record.mentions),
            document,
        )


def annotate(
    df: pyspark.sql.DataFrame,
    *,
    text_col: str = "text",
    id_col: str = "note_id",
    patient_col: str | None = None,
    pipeline: str = "default",
    fmt: Literal["record", "fhir"] = "record",
    max_chars: int = DEFAULT_MAX_CHARS,
    timeout: float | None = 60.0,
    timestamp: str | None = None,
) -> pyspark.sql.DataFrame:
    """Annotate every note of a Spark DataFrame; one output row per input row.

    Args:
        df: the notes.
        text_col: the column with the note text (a string column; any other type gives
            ``invalid_type`` error rows).
        id_col: the note id column (cast to string; a null id becomes a hash of the text).
        patient_col: an optional patient id column, carried into the record and the FHIR ``subject``.
        pipeline: the pipeline name (``default``, ``fast``, ``accurate``, ``lexicon`` ...).
        fmt: what ``document`` holds: ``record`` (the NoteRecord JSON) or ``fhir`` (the Bundle, or an
            OperationOutcome for an error row).
        max_chars: per-note limit; longer notes are ``text_too_long`` error rows.
        timeout: seconds per note before it becomes a ``timeout`` error row (``None``: no limit).
        timestamp: ``Bundle.timestamp`` of every Bundle (ISO 8601; default: now, once for the whole
            job, as the batch runner does); a fixed value makes separate jobs byte-identical.

    Returns:
        A DataFrame with :data:`OUTPUT_SCHEMA`: ``note_id``, ``text_sha256``, ``pipeline``,
        ``pipeline_fingerprint``, ``ok``, ``error_code`` (null when ok), ``mentions`` and ``document``.

    Raises:
        ConfigError: pyspark is not installed, a column is missing, or an option is out of range.
        ModelNotFoundError: an unknown pipeline name.
    """
    try:
        from pyspark.sql.types import StringType
    except ImportError as exc:
        raise ConfigError(f"the Spark adapter needs pyspark: {INSTALL_HINT}") from exc
    if fmt not in get_args(Format):
        raise ConfigError(f"fmt must be one of {get_args(Format)}, not {fmt!r}")
    if pipeline not in PIPELINES:
        raise ModelNotFoundError(f"unknown pipeline {pipeline!r}; available: {sorted(PIPELINES)}")
    if not 0 < max_chars <= MAX_CHARS_LIMIT:
        raise ConfigError(f"max_chars must be in 1..{MAX_CHARS_LIMIT}, not {max_chars}")
    if timeout is not None and not timeout > 0:
        raise ConfigError(f"timeout must be positive seconds or None, not {timeout}")
    wanted = [col for col in (text_col, id_col, patient_col) if col is not None]
    if missing := [col for col in wanted if col not in df.columns]:
        raise ConfigError(f"the DataFrame has no column(s) {missing}; it has {df.columns}")

    text_is_utf8 = isinstance(df.schema[text_col].dataType, StringType)
    text = df[text_col].cast("binary") if text_is_utf8 else df[text_col]
    columns = [df[id_col].cast("string").cast("binary").alias("note_id"), text.alias("text")]
    if patient_col is not None:
        columns.append(df[patient_col].cast("string").cast("binary").alias("patient_id"))
    annotator = SparkAnnotator(
        pipeline=pipeline,
        fmt=fmt,
        timestamp=timestamp or datetime.now(UTC).isoformat(timespec="seconds"),
        max_chars=max_chars,
        timeout=timeout,
        text_is_utf8=text_is_utf8,
    )
    return df.select(*columns).mapInPandas(annotator, OUTPUT_SCHEMA)
