"""Batch annotation: notes from files in, sharded NDJSON or Parquet out, resumable after any crash.

Inputs (streamed, never all in memory): ``.txt`` files, directories of ``.txt`` files (recursively,
sorted), JSONL (one object per line), CSV and Parquet (the ``id`` and ``text`` columns are
configurable; an optional ``patient_id`` is carried through). A note that cannot be read becomes
an error in its place and the run goes on.

The output directory of :func:`run_batch`::

    part-00000.ndjson …   one line (or Parquet row) per input note, in input order; notes
                          [k * shard_size, (k + 1) * shard_size) are shard k
    errors.ndjson         one line per failed note: note_id, text_sha256, code, message, shard
    manifest.json         status, counts, errors by code, pipeline id and fingerprint, options,
                          inputs, shards with their note counts and SHA-256, words, seconds,
                          notes whose id an earlier note of the run already had
    _ledger.jsonl         the run's identity, then one line per committed shard (the resume state)
    _errors/part-….ndjson each shard's failed notes (``errors.ndjson`` is their concatenation)

Every shard is written to ``_tmp/``, flushed, fsynced and moved into place with ``os.replace``;
only then is its ledger line appended (and fsynced). A shard is done when its ledger line exists
and its file still has the recorded SHA-256, so ``resume=True`` skips done shards and redoes the
rest, and a run killed at any point loses and duplicates nothing. Resuming with other inputs,
options or another pipeline fingerprint is an error, never a silent mix.

Outputs are a pure function of the notes, the pipeline and the run's timestamp: the same input and
pipeline give byte-identical shards (records carry note id, text SHA-256 and pipeline; the
fingerprint is in the manifest and the Parquet rows). Every Bundle of a run carries the same
``Bundle.timestamp`` (the mapping contract: processing time), the time the run started, kept in the
ledger so that a resumed run writes what an uninterrupted one would have; pass ``timestamp`` (``--timestamp``)
to make separate runs byte-identical too. Records carry no time at all.

Notes are annotated in worker processes (``spawn``) that load the pipeline once and exchange
records, never Docs. Each note has a deadline: a worker that passes it is killed (SIGKILL) and
replaced, and so is a worker that dies (segfault, OOM kill, ``os._exit``); the note it held gets a
``timeout`` or ``worker_crashed`` error record. ``workers=0`` annotates in this process, without a
timeout (for debugging).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import json
import logging
import multiprocessing
import os
import re
import shutil
import signal
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Literal, Protocol

from nlp.checksums import file_sha256
from nlp.errors import ConfigError, InputError, Notes2FhirError
from nlp.fhir import error_outcome, to_fhir
from nlp.pipeline import DEFAULT_MAX_CHARS, Pipeline, PipelineInfo, load
from nlp.records import NoteRecord, error_record, text_hash

log = logging.getLogger(__name__)

Format = Literal["fhir", "record"]
OutputFormat = Literal["ndjson", "parquet"]
Status = Literal["COMPLETED", "PARTIAL_SUCCESS", "FAILED"]

TEXT_SUFFIXES = {".txt"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
CSV_SUFFIXES = {".csv"}
PARQUET_SUFFIXES = {".parquet"}

LEDGER = "_ledger.jsonl"
MANIFEST = "manifest.json"
ERRORS = "errors.ndjson"
SHARD_ERRORS_DIR = "_errors"
TMP_DIR = "_tmp"
LEDGER_VERSION = 1
# the columns of a Parquet shard, in order
PARQUET_COLUMNS = (
    "note_id",
    "text_sha256",
    "pipeline",
    "pipeline_fingerprint",
    "ok",
    "error_code",
    "document",
)
_PARQUET_BATCH_ROWS = 512
_PARQUET_BATCH_NOTES = 256  # rows read from a Parquet input at a time
# ledger keys that must match for a run to resume (besides the pipeline id and fingerprint)
_RUN_KEYS = ("format", "output_format", "shard_size", "id_col", "text_col", "max_chars", "inputs")

_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # an undecodable byte under errors="surrogateescape"


# ---------------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class SourceNote:
    """One note as read from its file, or the reason it could not be read."""

    note_id: str
    text: str | None = None
    patient_id: str | None = None
    error: InputError | None = None


def _printable(value: str) -> str:
    """``value`` with undecodable bytes and lone surrogates as backslash escapes (UTF-8 safe)."""
    if not _SURROGATE.search(value):
        return value
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = value.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "backslashreplace")


def _error(note_id: str, code: str, message: str) -> SourceNote:
    return SourceNote(_printable(note_id), error=InputError(_printable(message), code=code))


def _note_id(value: object, fallback: str) -> str:
    return fallback if value is None or value == "" else _printable(str(value))


def _source_from_mapping(obj: object, fallback_id: str, id_col: str, text_col: str) -> SourceNote:
    if not isinstance(obj, Mapping):
        return _error(fallback_id, "malformed_record", "record is not a JSON object")
    note_id = _note_id(obj.get(id_col), fallback_id)
    text = obj.get(text_col)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            return _error(
                note_id, "invalid_encoding", f"the {text_col!r} value is not UTF-8 (byte {exc.start})"
            )
    if not isinstance(text, str):
        return _error(note_id, "malformed_record", f"record has no string {text_col!r} field")
    patient = obj.get("patient_id")
    return SourceNote(note_id, text, None if patient is None or patient == "" else _printable(str(patient)))


def _read_text_file(path: Path, note_id: str) -> SourceNote:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _error(note_id, "unreadable_input", f"cannot read {path}: {exc.strerror or exc}")
    try:
        return SourceNote(_printable(note_id), data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return _error(note_id, "invalid_encoding", f"{path} is not UTF-8 (byte {exc.start})")


def _read_jsonl(path: Path, id_col: str, text_col: str) -> Iterator[SourceNote]:
    try:
        fh = path.open("rb")
    except OSError as exc:
        yield _error(str(path), "unreadable_input", f"cannot read {path}: {exc.strerror or exc}")
        return
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            fallback_id = f"{path.name}:{lineno}"
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield _error(
                    fallback_id, "invalid_encoding", f"line {lineno} is not UTF-8 (byte {exc.start})"
                )
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield _error(fallback_id, "malformed_record", f"line {lineno} is not JSON ({exc.msg})")
                continue
            yield _source_from_mapping(obj, fallback_id, id_col, text_col)


def _read_csv(path: Path, id_col: str, text_col: str) -> Iterator[SourceNote]:
    csv.field_size_limit(sys.maxsize)
    try:
        with path.open(encoding="utf-8", errors="surrogateescape", newline="") as fh:
            for rowno, row in enumerate(csv.DictReader(fh), start=2):
                fallback_id = f"{path.name}:{rowno}"
                text = row.get(text_col)
                if isinstance(text, str) and _ESCAPED_BYTE.search(text):
                    yield _error(
                        _note_id(row.get(id_col), fallback_id),
                        "invalid_encoding",
                        f"row {rowno}: the {text_col!r} value is not UTF-8",
                    )
                else:
                    yield _source_from_mapping(row, fallback_id, id_col, text_col)
    except OSError as exc:
        yield _error(str(path), "unreadable_input", f"cannot read {path}: {exc.strerror or exc}")
    except csv.Error as exc:
        yield _error(path.name, "malformed_record", f"{path.name} is not valid CSV: {exc}")


def _read_parquet(path: Path, id_col: str, text_col: str) -> Iterator[SourceNote]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    row = 0
    try:
        parquet = pq.ParquetFile(path)
        names = set(parquet.schema_arrow.names)
        columns = [c for c in dict.fromkeys((id_col, text_col, "patient_id")) if c in names]
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_NOTES, columns=columns):
            values = batch.to_pydict()
            for i in range(batch.num_rows):
                row += 1
                yield _source_from_mapping(
                    {name: values[name][i] for name in columns}, f"{path.name}:{row}", id_col, text_col
                )
    except (OSError, pa.ArrowException) as exc:
        yield _error(f"{path.name}:{row + 1}", "unreadable_input", f"cannot read {path.name}: {exc}")


def _text_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix.lower() in TEXT_SUFFIXES and p.is_file())


def read_notes(
    paths: Iterable[str | Path], *, id_col: str = "id", text_col: str = "text"
) -> Iterator[SourceNote]:
    """Every note in ``paths``, in order, streamed. Unreadable inputs yield error notes, never exceptions.

    Args:
        paths: ``.txt`` files (the note id is the file stem), directories of ``.txt`` files (the
            path below the directory, without the suffix), ``.jsonl``/``.ndjson``, ``.csv`` and
            ``.parquet`` files (one note per line or row; without an id, ``<file name>:<line>``).
        id_col: the id field or column of JSONL, CSV and Parquet inputs.
        text_col: the text field or column of JSONL, CSV and Parquet inputs.
    """
    for raw in paths:
        path = Path(raw)
        suffix = path.suffix.lower()
        if path.is_dir():
            for child in _text_files(path):
                yield _read_text_file(child, child.relative_to(path).with_suffix("").as_posix())
        elif not path.exists():
            yield _error(str(path), "unreadable_input", f"{path} does not exist")
        elif suffix in JSONL_SUFFIXES:
            yield from _read_jsonl(path, id_col, text_col)
        elif suffix in CSV_SUFFIXES:
            yield from _read_csv(path, id_col, text_col)
        elif suffix in PARQUET_SUFFIXES:
            yield from _read_parquet(path, id_col, text_col)
        else:
            yield _read_text_file(path, path.stem)


def _count_notes(path: Path, id_col: str, text_col: str) -> tuple[int, int]:
    """(notes, bytes) of one input, as :func:`read_notes` will yield them, without parsing JSON."""
    suffix = path.suffix.lower()
    if path.is_dir():
        files = _text_files(path)
        return len(files), sum(p.stat().st_size for p in files)
    if not path.exists():
        return 1, 0
    size = path.stat().st_size
    if suffix in JSONL_SUFFIXES:
        try:
            with path.open("rb") as fh:
                return sum(1 for raw in fh if raw.strip()), size
        except OSError:
            return 1, size
    if suffix in CSV_SUFFIXES:
        return sum(1 for _ in _read_csv(path, id_col, text_col)), size
    if suffix in PARQUET_SUFFIXES:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows, size
        except (OSError, pa.ArrowException):
            return 1, size
    return 1, size


def _scan_inputs(paths: list[str], id_col: str, text_col: str) -> list[dict[str, Any]]:
    """Each input's path, note count and size: the progress total and the resume check."""
    scanned = []
    for raw in paths:
        notes, size = _count_notes(Path(raw), id_col, text_col)
        scanned.append({"path": raw, "notes": notes, "bytes": size})
    return scanned


def _input_line(note: SourceNote) -> bytes:
    """What a note contributes to its shard's input digest (its id and text hash, or read error)."""
    content = (
        text_hash(note.text) if note.text is not None else f"error:{note.error.code if note.error else ''}"
    )
    return json.dumps([note.note_id, content]).encode() + b"\n"


# -------------------------------------------------------------------------------------- annotating
class PipelineLike(Protocol):
    """What the batch runner needs of a pipeline (:class:`nlp.pipeline.Pipeline` is one)."""

    @property
    def id(self) -> str: ...

    @property
    def info(self) -> PipelineInfo: ...

    def _annotate_safely(self, item: Mapping[str, Any]) -> NoteRecord: ...


PipelineFactory = Callable[[], PipelineLike]


@dataclass(frozen=True)
class NoteResult:
    """What a worker sends back for one note: the record, its output document and its word count."""

    record: NoteRecord
    document: str
    words: int


def _json_line(obj: Any) -> str:
    line = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    # a lone surrogate cannot be written as UTF-8: escape it (\udXXX is valid JSON)
    return json.dumps(obj, separators=(",", ":")) if _SURROGATE.search(line) else line


def to_document(record: NoteRecord, fmt: Format, *, timestamp: str | None = None) -> str:
    """One output document as compact JSON: the record, its FHIR Bundle, or an OperationOutcome.

    A Bundle gets ``timestamp`` as its ``Bundle.timestamp`` (default: now), so the same note,
    pipeline and timestamp always give the same bytes.
    """
    if fmt == "record":
        return _json_line(record.model_dump(mode="json", by_alias=True))
    if record.error is not None:
        return _json_line(error_outcome(record))
    return _json_line(to_fhir(record, timestamp=timestamp))


@dataclass(frozen=True)
class DocumentFormat:
    """How a run writes each record: as itself, or as FHIR with the run's ``Bundle.timestamp``."""

    fmt: Format
    timestamp: str | None = None

    def render(self, record: NoteRecord) -> str:
        return to_document(record, self.fmt, timestamp=self.timestamp)


def _failure(note: SourceNote, code: str, message: str, pipeline_id: str, fmt: DocumentFormat) -> NoteResult:
    record = error_record(
        note.note_id, code, message, pipeline=pipeline_id, text=note.text, patient_id=note.patient_id
    )
    return NoteResult(record, fmt.render(record), 0)


def _read_failure(note: SourceNote, pipeline_id: str, fmt: DocumentFormat) -> NoteResult:
    assert note.error is not None
    return _failure(note, note.error.code, note.error.message, pipeline_id, fmt)


def _annotate_note(pipe: PipelineLike, note: SourceNote, fmt: DocumentFormat) -> NoteResult:
    assert note.text is not None
    try:
        record = pipe._annotate_safely({"id": note.note_id, "text": note.text, "patient_id": note.patient_id})
        return NoteResult(record, fmt.render(record), len(note.text.split()) if record.ok else 0)
    except Exception as exc:  # a pipeline-like that raises, or a record FHIR cannot map
        log.error("note %s: %s while annotating", note.note_id, type(exc).__name__)
        return _failure(note, "internal_error", f"{type(exc).__name__} while annotating", pipe.id, fmt)


def load_warm(name: str, max_chars: int) -> Pipeline:
    """``nlp.load(name, max_chars=...)`` with its lazy resources loaded: what a worker process runs once
    (module-level, so ``functools.partial(load_warm, ...)`` pickles for spawned processes)."""
    return load(name, max_chars=max_chars).warm_up()


def exit_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this worker when the runner dies (Linux), so no worker is orphaned."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)


def _worker_main(factory: PipelineFactory, fmt: DocumentFormat, conn: Connection, parent_pid: int) -> None:
    """A worker process: load the pipeline once, then annotate one note per message until told to stop."""
    exit_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runner's to handle
    try:
        pipe = factory()
    except Exception as exc:
        code = exc.code if isinstance(exc, Notes2FhirError) else "worker_start_failed"
        conn.send(("failed", code, f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", pipe.id, pipe.info.fingerprint))
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:  # nothing to flush: skip the teardown of the loaded pipeline (about a second)
            sys.stderr.flush()
            os._exit(0)
        note_id, text, patient_id = task
        conn.send(("done", _annotate_note(pipe, SourceNote(note_id, text, patient_id), fmt)))


@dataclass
class _Task:
    seq: int
    shard: int
    note: SourceNote
    deadline: float


class _Worker:
    def __init__(self, ctx: Any, factory: PipelineFactory, fmt: DocumentFormat) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_worker_main, args=(factory, fmt, child, os.getpid()), daemon=True, name="notes2fhir-batch"
        )
        self.process.start()
        child.close()
        self.ready = False
        self.task: _Task | None = None

    def stop(self, *, kill: bool) -> None:
        stop_worker(self.process, self.conn, kill=kill)


def stop_worker(process: Any, conn: Connection, *, kill: bool) -> None:
    """End a worker process: ask it to exit (``None`` on its connection) and give it 10 s, or kill it
    at once; then close the connection."""
    if not kill:
        with contextlib.suppress(OSError):
            conn.send(None)
        process.join(timeout=10)
    if process.is_alive():
        process.kill()
    process.join()
    conn.close()


def describe_exit(exitcode: int | None) -> str:
    """How a process ended, for messages: ``signal SIGKILL`` or ``exit code 1``."""
    if exitcode is not None and exitcode < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-exitcode).name}"
    return f"exit code {exitcode}"


_Result = tuple[int, SourceNote, NoteResult]


class _WorkerPool:
    """Worker processes, each holding one note at a time under a deadline; results in input order."""

    def __init__(self, factory: PipelineFactory, fmt: DocumentFormat, size: int, timeout: float) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._factory, self._fmt, self._timeout = factory, fmt, timeout
        self._window = max(64, 8 * size)  # notes between the oldest unfinished one and the newest sent
        self._retry: deque[tuple[int, int, SourceNote]] = deque()
        self.restarts = 0
        self.pipeline_id = self.fingerprint = ""
        self._workers: list[_Worker] = []
        try:
            self._workers = [_Worker(self._ctx, factory, fmt) for _ in range(size)]
            while not all(w.ready for w in self._workers):
                self._wait({})
        except BaseException:
            self.close(kill=True)
            raise

    def close(self, *, kill: bool = False) -> None:
        for worker in self._workers:
            worker.stop(kill=kill or worker.task is not None or not worker.ready)
        self._workers = []

    def results(self, notes: Iterator[tuple[int, SourceNote]]) -> Iterator[_Result]:
        done: dict[int, _Result] = {}
        sent = emitted = 0
        exhausted = False
        while True:
            while sent - emitted < self._window and (worker := self._idle()) is not None:
                if self._retry:
                    self._dispatch(worker, *self._retry.popleft())
                    continue
                item = None if exhausted else next(notes, None)
                if item is None:
                    exhausted = True
                    break
                shard, note = item
                if note.error is not None:
                    done[sent] = (shard, note, _read_failure(note, self.pipeline_id, self._fmt))
                else:
                    self._dispatch(worker, sent, shard, note)
                sent += 1
            progressed = emitted in done
            while emitted in done:
                yield done.pop(emitted)
                emitted += 1
            if exhausted and emitted == sent:
                return
            if not progressed:  # after emitting, the window has room again: send before waiting
                self._wait(done)

    def _idle(self) -> _Worker | None:
        return next((w for w in self._workers if w.ready and w.task is None), None)

    def _dispatch(self, worker: _Worker, seq: int, shard: int, note: SourceNote) -> None:
        try:
            worker.conn.send((note.note_id, note.text, note.patient_id))
        except OSError:  # it died while idle: the note never started, give it to another worker
            self._retry.append((seq, shard, note))
            self._lost(worker, {})
            return
        worker.task = _Task(seq, shard, note, time.monotonic() + self._timeout)

    def _wait(self, done: dict[int, _Result]) -> None:
        """Block until a worker answers, dies or passes its deadline, and deal with it."""
        deadlines = [w.task.deadline for w in self._workers if w.task is not None]
        timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        handles: dict[Any, _Worker] = {}
        for worker in self._workers:
            handles[worker.conn] = worker
            handles[worker.process.sentinel] = worker
        woken = list(dict.fromkeys(handles[h] for h in wait(list(handles), timeout)))
        for worker in woken:
            self._service(worker, done)
        now = time.monotonic()
        for worker in [w for w in self._workers if w.task is not None and w.task.deadline <= now]:
            self._timed_out(worker, done)

    def _service(self, worker: _Worker, done: dict[int, _Result]) -> None:
        eof = False
        try:
            while worker.conn.poll():
                self._handle(worker, worker.conn.recv(), done)
        except (EOFError, OSError):
            eof = True
        if eof or not worker.process.is_alive():
            self._lost(worker, done)

    def _handle(self, worker: _Worker, message: tuple[Any, ...], done: dict[int, _Result]) -> None:
        kind = message[0]
        if kind == "ready":
            if not self.pipeline_id:
                self.pipeline_id, self.fingerprint = message[1], message[2]
            elif (message[1], message[2]) != (self.pipeline_id, self.fingerprint):
                raise ConfigError("a new worker loaded another pipeline version", code="worker_start_failed")
            worker.ready = True
        elif kind == "failed":
            raise ConfigError(f"a worker could not load the pipeline: {message[2]}", code=message[1])
        else:
            task = worker.task
            assert task is not None
            worker.task = None
            done[task.seq] = (task.shard, task.note, message[1])

    def _lost(self, worker: _Worker, done: dict[int, _Result]) -> None:
        worker.stop(kill=True)
        how = describe_exit(worker.process.exitcode)
        if not worker.ready:
            raise ConfigError(
                f"a worker process died while loading the pipeline ({how})", code="worker_start_failed"
            )
        task = worker.task
        if task is not None:
            log.warning("note %s: the worker died (%s); replacing it", task.note.note_id, how)
            message = f"the worker process died ({how}) while annotating this note; it was replaced"
            done[task.seq] = (
                task.shard,
                task.note,
                _failure(task.note, "worker_crashed", message, *self._ids),
            )
        self._replace(worker)

    def _timed_out(self, worker: _Worker, done: dict[int, _Result]) -> None:
        task = worker.task
        assert task is not None
        log.warning(
            "note %s: no result in %g s; killing and replacing its worker", task.note.note_id, self._timeout
        )
        worker.stop(kill=True)
        message = f"no result within {self._timeout:g} s; the worker was killed and replaced"
        done[task.seq] = (task.shard, task.note, _failure(task.note, "timeout", message, *self._ids))
        self._replace(worker)

    @property
    def _ids(self) -> tuple[str, DocumentFormat]:
        return self.pipeline_id, self._fmt

    def _replace(self, worker: _Worker) -> None:
        self._workers[self._workers.index(worker)] = _Worker(self._ctx, self._factory, self._fmt)
        self.restarts += 1


class _InProcess:
    """``workers=0``: annotate in this process, in order, without a timeout."""

    restarts = 0

    def __init__(self, factory: PipelineFactory, fmt: DocumentFormat) -> None:
        self._pipe = factory()
        self._fmt = fmt
        self.pipeline_id, self.fingerprint = self._pipe.id, self._pipe.info.fingerprint

    def results(self, notes: Iterator[tuple[int, SourceNote]]) -> Iterator[_Result]:
        for shard, note in notes:
            if note.error is not None:
                yield shard, note, _read_failure(note, self.pipeline_id, self._fmt)
            else:
                yield shard, note, _annotate_note(self._pipe, note, self._fmt)

    def close(self, *, kill: bool = False) -> None:
        """Nothing to stop."""


# ---------------------------------------------------------------------------------------- writing
def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _commit_file(tmp: Path, final: Path) -> None:
    """Make ``tmp`` durable, move it to ``final`` atomically, and make the move durable."""
    _fsync(tmp)
    os.replace(tmp, final)
    _fsync(final.parent)


def shard_name(index: int, output_format: OutputFormat) -> str:
    """The file name of shard ``index``: ``part-00000.ndjson`` or ``part-00000.parquet``."""
    return f"part-{index:05d}.{output_format}"


def _parquet_schema() -> Any:
    import pyarrow as pa

    types = {"ok": pa.bool_()}
    return pa.schema([(name, types.get(name, pa.string())) for name in PARQUET_COLUMNS])


class _ShardWriter:
    """One shard being written to ``_tmp/``; :meth:`commit` moves it (and its error list) into place."""

    def __init__(self, out_dir: Path, index: int, output_format: OutputFormat, fingerprint: str) -> None:
        self.index = index
        self.name = shard_name(index, output_format)
        self._out_dir = out_dir
        self._tmp = out_dir / TMP_DIR / self.name
        self._errors_tmp = out_dir / TMP_DIR / f"errors-{self.name}.ndjson"
        self._fingerprint = fingerprint
        self._input_digest = hashlib.sha256()
        self._errors_fh: Any = None
        self._fh: Any = None
        self._parquet: Any = None
        self._rows: dict[str, list[Any]] = {name: [] for name in PARQUET_COLUMNS}
        if output_format == "ndjson":
            self._fh = self._tmp.open("wb")
        else:
            import pyarrow.parquet as pq

            self._parquet = pq.ParquetWriter(self._tmp, _parquet_schema())
        self.notes = self.failed = self.words = 0
        self.errors_by_code: Counter[str] = Counter()
        self.mentions_by_label: Counter[str] = Counter()
        self.mentions_by_assertion: Counter[str] = Counter()

    def add(self, note: SourceNote, result: NoteResult) -> None:
        record = result.record
        self._input_digest.update(_input_line(note))
        self.notes += 1
        self.words += result.words
        for m in record.mentions:
            self.mentions_by_label[m.label] += 1
            self.mentions_by_assertion[
                m.assertion if m.subject == "patient" else f"{m.assertion} (family)"
            ] += 1
        if record.error is not None:
            self.failed += 1
            self.errors_by_code[record.error.code] += 1
            if self._errors_fh is None:
                self._errors_fh = self._errors_tmp.open("wb")
            error = {
                "note_id": record.note_id,
                "text_sha256": record.text_sha256,
                "code": record.error.code,
                "message": record.error.message,
                "shard": self.name,
            }
            self._errors_fh.write(_json_line(error).encode() + b"\n")
        if self._fh is not None:
            self._fh.write(result.document.encode() + b"\n")
            return
        row = (
            record.note_id,
            record.text_sha256,
            record.pipeline,
            self._fingerprint,
            record.error is None,
            record.error.code if record.error is not None else None,
            result.document,
        )
        for name, value in zip(PARQUET_COLUMNS, row, strict=True):
            self._rows[name].append(value)
        if len(self._rows["note_id"]) >= _PARQUET_BATCH_ROWS:
            self._write_rows()

    def _write_rows(self) -> None:
        import pyarrow as pa

        if self._rows["note_id"]:
            self._parquet.write_batch(pa.record_batch(self._rows, schema=self._parquet.schema))
            self._rows = {name: [] for name in PARQUET_COLUMNS}

    def _close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        if self._parquet is not None:
            self._write_rows()
            self._parquet.close()
        if self._errors_fh is not None:
            self._errors_fh.close()

    def discard(self) -> None:
        """Close the temporary files of an abandoned shard (the next run clears ``_tmp/``)."""
        with contextlib.suppress(Exception):
            self._close()

    def commit(self) -> dict[str, Any]:
        """Move the shard and its error list into place; return its ledger entry."""
        self._close()
        errors_file = self._out_dir / SHARD_ERRORS_DIR / f"{Path(self.name).stem}.ndjson"
        if self._errors_fh is not None:
            _commit_file(self._errors_tmp, errors_file)
        else:
            errors_file.unlink(missing_ok=True)  # left by an earlier attempt at this shard
        final = self._out_dir / self.name
        _commit_file(self._tmp, final)
        return {
            "shard": self.index,
            "file": self.name,
            "notes": self.notes,
            "succeeded": self.notes - self.failed,
            "failed": self.failed,
            "sha256": file_sha256(final),
            "input_sha256": self._input_digest.hexdigest(),
            "words": self.words,
            "errors_by_code": dict(sorted(self.errors_by_code.items())),
            "mentions_by_label": dict(sorted(self.mentions_by_label.items())),
            "mentions_by_assertion": dict(sorted(self.mentions_by_assertion.items())),
        }


# ----------------------------------------------------------------------------------------- ledger
def _write_ledger_header(path: Path, run: dict[str, Any]) -> None:
    tmp = path.parent / TMP_DIR / path.name
    tmp.write_text(json.dumps({"ledger": LEDGER_VERSION, "run": run}) + "\n", "utf-8")
    _commit_file(tmp, path)


def _append_ledger(path: Path, entry: dict[str, Any]) -> None:
    with path.open("ab") as fh:
        fh.write(json.dumps(entry).encode() + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


def _read_ledger(path: Path) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """The run identity and the latest entry of every committed shard; a torn last line is dropped."""
    data = path.read_bytes()
    if not data.endswith(b"\n"):  # killed while appending: that shard's entry was never committed
        data = data[: data.rfind(b"\n") + 1]
        with path.open("r+b") as fh:
            fh.truncate(len(data))
    try:
        header, *lines = (json.loads(line) for line in data.splitlines())
        if header.get("ledger") != LEDGER_VERSION:
            raise ValueError(f"ledger version {header.get('ledger')}")
        return header["run"], {entry["shard"]: entry for entry in lines}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{path} is not a readable ledger ({exc})", code="corrupt_ledger") from None


def _check_resumable(previous: dict[str, Any], current: dict[str, Any], keys: Iterable[str]) -> None:
    changed = [key for key in keys if previous.get(key) != current.get(key)]
    if changed:
        details = "; ".join(f"{key}: was {previous.get(key)!r}, now {current.get(key)!r}" for key in changed)
        raise InputError(
            f"cannot resume: the run in this directory had other {', '.join(changed)} ({details}); "
            "use a new output directory",
            code="resume_mismatch",
        )


def _verify_inputs(
    paths: list[str], id_col: str, text_col: str, shard_size: int, done: dict[int, dict[str, Any]]
) -> None:
    """Raise unless every done shard's notes are still the ones it was made from."""
    if not done:
        return
    digests = {shard: hashlib.sha256() for shard in done}
    last = max(done)
    for index, note in enumerate(read_notes(paths, id_col=id_col, text_col=text_col)):
        shard = index // shard_size
        if shard > last:
            break
        if shard in digests:
            digests[shard].update(_input_line(note))
    for shard, entry in sorted(done.items()):
        if digests[shard].hexdigest() != entry["input_sha256"]:
            raise InputError(
                f"cannot resume: the notes of {entry['file']} changed since it was written; "
                "use a new output directory",
                code="resume_mismatch",
            )


def _intact(out_dir: Path, entry: dict[str, Any]) -> bool:
    path = out_dir / entry["file"]
    if path.is_file() and file_sha256(path) == entry["sha256"]:
        return True
    log.warning("%s is missing or differs from its ledger entry: it will be written again", entry["file"])
    return False


# ------------------------------------------------------------------------------------------- run
@dataclass
class Manifest:
    """The outcome of a run, as written to ``manifest.json``.

    Counts cover the whole run (shards resumed from an earlier invocation included);
    ``seconds`` and ``notes_per_second`` cover the notes this invocation annotated, from the
    moment the pipeline was loaded (``load_seconds`` before that).
    """

    status: Status
    input: int
    succeeded: int
    failed: int
    errors_by_code: dict[str, int]
    pipeline: str
    pipeline_fingerprint: str
    options: dict[str, Any]
    inputs: list[dict[str, Any]]
    shards: list[dict[str, Any]]
    words: int
    seconds: float
    notes_per_second: float
    annotated: int
    resumed: int
    load_seconds: float
    worker_restarts: int
    mentions_by_label: dict[str, int]
    mentions_by_assertion: dict[str, int]
    duplicate_ids: int
    duplicate_id_examples: list[str]


class _RepeatedIds:
    """Notes whose id an earlier note of the run already had: both are annotated and kept, but the
    FHIR resource ids derive from the note id, so a FHIR server would merge their resources.

    Ids are kept as 64-bit digests (a few dozen bytes a note, for runs of millions).
    """

    EXAMPLES = 10

    def __init__(self) -> None:
        self._seen: set[int] = set()
        self.count = 0
        self.examples: list[str] = []

    def add(self, note_id: str) -> None:
        digest = hashlib.blake2b(note_id.encode("utf-8", "backslashreplace"), digest_size=8).digest()
        key = int.from_bytes(digest, "big")
        if key not in self._seen:
            self._seen.add(key)
            return
        self.count += 1
        if len(self.examples) < self.EXAMPLES and note_id not in self.examples:
            self.examples.append(note_id)


def _status(notes: int, failed: int) -> Status:
    if failed == 0:
        return "COMPLETED"
    return "FAILED" if failed == notes else "PARTIAL_SUCCESS"


def _sum_counters(entries: Iterable[dict[str, Any]], key: str) -> dict[str, int]:
    total: Counter[str] = Counter()
    for entry in entries:
        total.update(entry[key])
    return dict(sorted(total.items()))


def _check_options(fmt: str, output_format: str, workers: int, timeout: float, shard_size: int) -> None:
    problems = []
    if fmt not in ("fhir", "record"):
        problems.append(f"format must be fhir or record, not {fmt!r}")
    if output_format not in ("ndjson", "parquet"):
        problems.append(f"output format must be ndjson or parquet, not {output_format!r}")
    if workers < 0:
        problems.append("workers must be 0 (in process) or more")
    if not timeout > 0:
        problems.append("timeout must be positive")
    if shard_size < 1:
        problems.append("shard size must be at least 1")
    if problems:
        raise InputError("; ".join(problems), code="invalid_config")


def _check_no_run(out_dir: Path) -> None:
    if (out_dir / LEDGER).exists() or (out_dir / MANIFEST).exists() or any(out_dir.glob("part-*")):
        raise InputError(
            f"{out_dir} already holds a batch run: pass --resume to finish it, or use a new directory",
            code="output_not_empty",
        )


def _write_errors(out_dir: Path, entries: list[dict[str, Any]]) -> None:
    tmp = out_dir / TMP_DIR / ERRORS
    with tmp.open("wb") as out:
        for entry in entries:
            if entry["failed"]:
                with (out_dir / SHARD_ERRORS_DIR / f"{Path(entry['file']).stem}.ndjson").open("rb") as part:
                    shutil.copyfileobj(part, out)
    _commit_file(tmp, out_dir / ERRORS)


def run_batch(
    paths: Iterable[str | Path],
    out_dir: str | Path,
    *,
    pipeline: str = "default",
    fmt: Format = "fhir",
    output_format: OutputFormat = "ndjson",
    workers: int = 1,
    timeout: float = 60.0,
    shard_size: int = 1000,
    resume: bool = False,
    id_col: str = "id",
    text_col: str = "text",
    max_chars: int = DEFAULT_MAX_CHARS,
    progress: bool = True,
    pipeline_factory: PipelineFactory | None = None,
    on_record: Callable[[NoteRecord], None] | None = None,
    timestamp: str | None = None,
) -> Manifest:
    """Annotate every note in ``paths`` into sharded files in ``out_dir`` (layout: module docstring).

    Args:
        paths: inputs, see :func:`read_notes`.
        out_dir: the output directory (created). It must not hold another run unless ``resume``.
        pipeline: the pipeline name (see :data:`nlp.pipeline.PIPELINES`).
        fmt: ``"fhir"`` (a Bundle, or an OperationOutcome for a failed note) or ``"record"``.
        output_format: ``"ndjson"`` or ``"parquet"`` (columns :data:`PARQUET_COLUMNS`).
        workers: worker processes; ``0`` annotates in this process without a timeout.
        timeout: seconds a note may take before its worker is killed and replaced.
        shard_size: notes per output file.
        resume: finish the run in ``out_dir``, skipping its committed shards.
        id_col: the id field or column of JSONL, CSV and Parquet inputs.
        text_col: the text field or column of JSONL, CSV and Parquet inputs.
        max_chars: per-note limit; longer notes are errors, never truncated.
        progress: show a progress bar (tqdm, on stderr).
        pipeline_factory: a picklable zero-argument callable returning a pipeline-like object
            (``id``, ``info.fingerprint``, ``_annotate_safely``), loaded in each worker instead of
            ``pipeline`` (``max_chars`` is then the factory's business).
        on_record: called with each record this invocation annotates, in input order.
        timestamp: ``Bundle.timestamp`` of every Bundle (ISO 8601); default: when the run started
            (a resumed run keeps its first start). A fixed value makes separate runs byte-identical.

    Returns:
        The manifest (also written to ``out_dir/manifest.json``).

    Raises:
        InputError: bad options (``invalid_config``), ``out_dir`` holds a run and ``resume`` is
            false (``output_not_empty``), or the run cannot resume because its inputs, options or
            pipeline changed (``resume_mismatch``, ``corrupt_ledger``).
        ConfigError: the pipeline could not be loaded in a worker.
    """
    from tqdm import tqdm

    _check_options(fmt, output_format, workers, timeout, shard_size)
    started = time.perf_counter()
    out = Path(out_dir)
    sources = [str(p) for p in paths]
    inputs = _scan_inputs(sources, id_col, text_col)
    run: dict[str, Any] = {
        "format": fmt,
        "output_format": output_format,
        "shard_size": shard_size,
        "id_col": id_col,
        "text_col": text_col,
        "max_chars": max_chars,
        "inputs": inputs,
    }
    ledger = out / LEDGER
    previous: dict[str, Any] | None = None
    done: dict[int, dict[str, Any]] = {}
    run["timestamp"] = timestamp or datetime.now(UTC).isoformat(timespec="seconds")
    if resume and ledger.exists():
        previous, committed = _read_ledger(ledger)
        _check_resumable(previous, run, _RUN_KEYS + (("timestamp",) if timestamp else ()))
        run["timestamp"] = previous.get("timestamp", run["timestamp"])
        done = {shard: entry for shard, entry in committed.items() if _intact(out, entry)}
        _verify_inputs(sources, id_col, text_col, shard_size, done)
    elif not resume:
        _check_no_run(out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / TMP_DIR, ignore_errors=True)  # a killed run's uncommitted shard
    (out / TMP_DIR).mkdir()
    (out / SHARD_ERRORS_DIR).mkdir(exist_ok=True)

    factory = pipeline_factory or functools.partial(load_warm, pipeline, max_chars)
    document = DocumentFormat(fmt, run["timestamp"])
    annotator = (
        _InProcess(factory, document) if workers == 0 else _WorkerPool(factory, document, workers, timeout)
    )
    loaded = time.perf_counter()
    entries = dict(done)
    annotated = 0
    repeated = _RepeatedIds()
    try:
        run.update(pipeline=annotator.pipeline_id, pipeline_fingerprint=annotator.fingerprint)
        if previous is None:
            _write_ledger_header(ledger, run)
        else:
            _check_resumable(previous, run, ("pipeline", "pipeline_fingerprint"))

        def todo() -> Iterator[tuple[int, SourceNote]]:
            for index, note in enumerate(read_notes(sources, id_col=id_col, text_col=text_col)):
                repeated.add(note.note_id)
                if index // shard_size not in done:
                    yield index // shard_size, note

        writer: _ShardWriter | None = None
        bar = tqdm(
            total=sum(i["notes"] for i in inputs),
            initial=sum(e["notes"] for e in done.values()),
            unit="note",
            disable=not progress,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        try:
            with bar:
                for shard, note, result in annotator.results(todo()):
                    if writer is None or writer.index != shard:
                        if writer is not None:
                            entries[writer.index] = _commit_shard(writer, ledger)
                        writer = _ShardWriter(out, shard, output_format, annotator.fingerprint)
                    writer.add(note, result)
                    annotated += 1
                    if on_record is not None:
                        on_record(result.record)
                    bar.update(1)
                if writer is not None:
                    entries[writer.index] = _commit_shard(writer, ledger)
                    writer = None
            seconds = time.perf_counter() - loaded
        finally:
            if writer is not None:
                writer.discard()
    finally:
        annotator.close()

    shards = [entries[k] for k in sorted(entries)]
    _write_errors(out, shards)
    notes = sum(e["notes"] for e in shards)
    failed = sum(e["failed"] for e in shards)
    manifest = Manifest(
        status=_status(notes, failed),
        input=notes,
        succeeded=notes - failed,
        failed=failed,
        errors_by_code=_sum_counters(shards, "errors_by_code"),
        pipeline=str(run["pipeline"]),
        pipeline_fingerprint=str(run["pipeline_fingerprint"]),
        options={
            "format": fmt,
            "output_format": output_format,
            "pipeline": pipeline
            if pipeline_factory is None
            else getattr(pipeline_factory, "__qualname__", "factory"),
            "workers": workers,
            "timeout": timeout,
            "shard_size": shard_size,
            "resume": resume,
            "id_col": id_col,
            "text_col": text_col,
            "max_chars": max_chars,
            "timestamp": run["timestamp"],
        },
        inputs=inputs,
        shards=[{k: e[k] for k in ("file", "notes", "succeeded", "failed", "sha256")} for e in shards],
        words=sum(e["words"] for e in shards),
        seconds=round(seconds, 3),
        notes_per_second=round(annotated / seconds, 2) if seconds > 0 else 0.0,
        annotated=annotated,
        resumed=sum(e["notes"] for e in done.values()),
        load_seconds=round(loaded - started, 3),
        worker_restarts=annotator.restarts,
        mentions_by_label=_sum_counters(shards, "mentions_by_label"),
        mentions_by_assertion=_sum_counters(shards, "mentions_by_assertion"),
        duplicate_ids=repeated.count,
        duplicate_id_examples=repeated.examples,
    )
    if repeated.count:
        log.warning(
            "%d notes repeat an earlier note's id (e.g. %s): their FHIR resource ids collide",
            repeated.count,
            ", ".join(repeated.examples),
        )
    tmp = out / TMP_DIR / MANIFEST
    tmp.write_text(json.dumps(asdict(manifest), indent=2, ensure_ascii=False) + "\n", "utf-8")
    _commit_file(tmp, out / MANIFEST)
    shutil.rmtree(out / TMP_DIR, ignore_errors=True)
    log.info("%s: %d notes, %d failed, %s", out, notes, failed, manifest.status)
    return manifest


def _commit_shard(writer: _ShardWriter, ledger: Path) -> dict[str, Any]:
    entry = writer.commit()
    _append_ledger(ledger, entry)
    log.info("committed %s: %d notes, %d failed", entry["file"], entry["notes"], entry["failed"])
    return entry
