"""MTSamples: example medical transcriptions (unannotated), one row per note.

Read from ``mtsamples.jsonl.gz`` (the Kaggle table converted from the clinspacy ``.rda``). The text is
the transcription as released, section headers run together with commas ("SUBJECTIVE:,  This ...").
``meta`` holds ``specialty``, ``sample_name``, ``description`` and ``keywords`` (a list). The 33 notes
without a transcription are dropped and counted in the log.

Many notes appear more than once under different specialties (4966 notes, 2357 distinct texts), so the
split is ``hash_split`` of the text itself: copies of a note always land in the same split.
"""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path
from typing import Any

from corpora.base import CorpusFormatError, CorpusSpec, hash_split, register, require_file, row

NAME = "mtsamples"
FILE = "mtsamples.jsonl.gz"
COLUMNS = ("note_id", "description", "medical_specialty", "sample_name", "transcription", "keywords")

log = logging.getLogger(__name__)


def _clean(value: str | None) -> str:
    return (value or "").strip()


def read(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Every note with a transcription, split by ``hash_split`` of its text."""
    path = require_file(folder / FILE, NAME)
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "validation": [], "test": []}
    empty = 0
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for lineno, line in enumerate(lines, 1):
            try:
                note = json.loads(line)
                values = {column: note[column] for column in COLUMNS}
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise CorpusFormatError(f"{FILE}:{lineno}: expected a JSON object with {COLUMNS}") from err
            text = values["transcription"] or ""
            if not text.strip():
                empty += 1
                continue
            keywords = [k.strip() for k in _clean(values["keywords"]).split(",") if k.strip()]
            splits[hash_split(text)].append(
                row(
                    str(values["note_id"]),
                    text,
                    specialty=_clean(values["medical_specialty"]),
                    sample_name=_clean(values["sample_name"]),
                    description=_clean(values["description"]),
                    keywords=keywords,
                )
            )
    if empty:
        log.info("MTSamples: dropped %d notes without a transcription", empty)
    return {split: rows for split, rows in splits.items() if rows}  # a small folder may leave one empty


SPEC = register(
    CorpusSpec(
        name=NAME,
        title="MTSamples medical transcription samples",
        source="https://github.com/kdpsingh/clinspacy (data/mtsamples.rda)",
        licence="CC0 (Kaggle tboyle10/medicaltranscriptions, scraped from mtsamples.com)",
        reader=read,
        official_splits=False,
    )
)
