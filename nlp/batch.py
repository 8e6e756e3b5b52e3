"""Batch annotation: read notes from files, annotate them in order, write one JSON line each.

Inputs: ``.txt`` files, directories of ``.txt`` files (recursively, sorted), JSONL
(``{"id", "text", "patient_id"?}`` per line) and CSV (``id``, ``text`` columns). A note that
cannot be read or annotated becomes an error record in its place; the run goes on.
"""

from __future__ import annotations

import csv
import itertools
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from nlp.errors import InputError
from nlp.fhir import error_outcome, to_fhir
from nlp.pipeline import Pipeline
from nlp.records import NoteRecord, error_record

Format = Literal["fhir", "record"]
TEXT_SUFFIXES = {".txt"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
CSV_SUFFIXES = {".csv"}


@dataclass(frozen=True)
class SourceNote:
    """One note as read from its file, or the reason it could not be read."""

    note_id: str
    text: str | None = None
    patient_id: str | None = None
    error: InputError | None = None


def _error(note_id: str, code: str, message: str) -> SourceNote:
    return SourceNote(note_id, error=InputError(message, code=code))


def _read_text_file(path: Path, note_id: str) -> SourceNote:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _error(note_id, "unreadable_input", f"cannot read {path}: {exc.strerror or exc}")
    try:
        return SourceNote(note_id, data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return _error(note_id, "invalid_encoding", f"{path} is not UTF-8 (byte {exc.start})")


def _read_jsonl(path: Path) -> Iterator[SourceNote]:
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            fallback_id = f"{path.name}:{lineno}"
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                yield _error(
                    fallback_id, "malformed_record", f"line {lineno} is not UTF-8 JSON: {type(exc).__name__}"
                )
                continue
            yield _source_from_mapping(obj, fallback_id)


def _source_from_mapping(obj: Any, fallback_id: str) -> SourceNote:
    if not isinstance(obj, dict):
        return _error(fallback_id, "malformed_record", "record is not a JSON object")
    note_id = obj.get("id", obj.get("note_id"))
    note_id = fallback_id if note_id in (None, "") else str(note_id)
    text = obj.get("text")
    if not isinstance(text, str):
        return _error(note_id, "malformed_record", "record has no string 'text' field")
    patient = obj.get("patient_id")
    return SourceNote(note_id, text, None if patient in (None, "") else str(patient))


def _read_csv(path: Path, id_col: str, text_col: str) -> Iterator[SourceNote]:
    csv.field_size_limit(sys.maxsize)
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = {id_col, text_col} - set(reader.fieldnames or ())
            if missing:
                yield _error(path.name, "malformed_record", f"{path.name} lacks column(s) {sorted(missing)}")
                return
            for rowno, row in enumerate(reader, start=2):
                yield _source_from_mapping(
                    {"id": row.get(id_col), "text": row.get(text_col), "patient_id": row.get("patient_id")},
                    f"{path.name}:{rowno}",
                )
    except UnicodeDecodeError as exc:
        yield _error(path.name, "invalid_encoding", f"{path.name} is not UTF-8 (byte {exc.start})")
    except csv.Error as exc:
        yield _error(path.name, "malformed_record", f"{path.name} is not valid CSV: {exc}")


def read_notes(
    paths: Iterable[str | Path], *, id_col: str = "id", text_col: str = "text"
) -> Iterator[SourceNote]:
    """Every note in ``paths``, in order. Unreadable inputs yield error notes, never exceptions."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(
                p for p in path.rglob("*") if p.suffix.lower() in TEXT_SUFFIXES and p.is_file()
            ):
                yield _read_text_file(child, child.relative_to(path).with_suffix("").as_posix())
        elif not path.exists():
            yield _error(str(path), "unreadable_input", f"{path} does not exist")
        elif path.suffix.lower() in JSONL_SUFFIXES:
            yield from _read_jsonl(path)
        elif path.suffix.lower() in CSV_SUFFIXES:
            yield from _read_csv(path, id_col, text_col)
        else:
            yield _read_text_file(path, path.stem)


@dataclass
class RunSummary:
    notes: int = 0
    errors: int = 0
    words: int = 0
    seconds: float = 0.0
    mentions_by_label: Counter[str] = field(default_factory=Counter)
    mentions_by_assertion: Counter[str] = field(default_factory=Counter)
    errors_by_code: Counter[str] = field(default_factory=Counter)

    def add(self, record: NoteRecord, words: int) -> None:
        self.notes += 1
        self.words += words
        if record.error is not None:
            self.errors += 1
            self.errors_by_code[record.error.code] += 1
        for m in record.mentions:
            self.mentions_by_label[m.label] += 1
            self.mentions_by_assertion[
                m.assertion if m.subject == "patient" else f"{m.assertion} (family)"
            ] += 1

    @property
    def notes_per_second(self) -> float:
        return self.notes / self.seconds if self.seconds else 0.0


def annotate_sources(
    pipe: Pipeline, sources: Iterable[SourceNote], *, workers: int = 1
) -> Iterator[NoteRecord]:
    """Records for ``sources`` in order; read errors become error records in their place."""
    ordered, valid = itertools.tee(sources)
    results = pipe.annotate_many(
        ({"id": s.note_id, "text": s.text, "patient_id": s.patient_id} for s in valid if s.error is None),
        n_process=workers,
    )
    for source in ordered:
        if source.error is not None:
            yield error_record(source.note_id, source.error.code, source.error.message, pipeline=pipe.id)
        else:
            yield next(results)


def to_json_line(record: NoteRecord, fmt: Format, *, timestamp: str | None = None) -> str:
    if fmt == "record":
        obj: dict[str, Any] = record.model_dump(mode="json", by_alias=True)
    else:
        obj = error_outcome(record) if record.error is not None else to_fhir(record, timestamp=timestamp)
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def run(
    pipe: Pipeline,
    paths: Iterable[str | Path],
    out: IO[str],
    *,
    fmt: Format = "fhir",
    workers: int = 1,
    progress: bool = True,
    on_record: Any = None,
) -> RunSummary:
    """Annotate every note in ``paths`` and write one JSON document per line to ``out``."""
    from tqdm import tqdm

    summary = RunSummary()
    started = time.perf_counter()
    sources = list(read_notes(paths))
    words = {s.note_id: len(s.text.split()) for s in sources if s.text is not None}
    bar = tqdm(total=len(sources), unit="note", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    with bar:
        for record in annotate_sources(pipe, sources, workers=workers):
            out.write(to_json_line(record, fmt) + "\n")
            summary.add(record, words.get(record.note_id, 0) if record.error is None else 0)
            if on_record is not None:
                on_record(record)
            bar.update(1)
    summary.seconds = time.perf_counter() - started
    return summary
