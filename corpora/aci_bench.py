"""ACI-BENCH: clinician-written visit notes with the doctor-patient dialogue they were written from.

One row per encounter: ``text`` is the note, ``meta`` holds ``dataset`` (aci, virtassist, virtscribe),
``encounter_id``, the ``dialogue``, and ``metadata``: the other columns of the matching ``*_metadata.csv``
(source ``id``, synthetic patient name, age, gender, chief complaint ``cc``, ``2nd_complaints`` ...).
No entity annotation.

Official splits, renamed: ``train``; ``valid`` -> ``validation``; the three challenge test sets
``clinicalnlp_taskB_test1`` -> ``test1``, ``clinicalnlp_taskC_test2`` -> ``test2``,
``clef_taskC_test3`` -> ``test3``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from corpora.base import CorpusFormatError, CorpusSpec, register, require_file, row

NAME = "aci_bench"
FOLDER = "challenge_data"
FILES = {
    "train": "train",
    "validation": "valid",
    "test1": "clinicalnlp_taskB_test1",
    "test2": "clinicalnlp_taskC_test2",
    "test3": "clef_taskC_test3",
}
NOTE_COLUMNS = ("dataset", "encounter_id", "dialogue", "note")


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = set(columns) - set(reader.fieldnames or ())
        if missing:
            raise CorpusFormatError(f"{path.name}: missing columns {sorted(missing)}")
        return list(reader)


def read_split(folder: Path, stem: str) -> list[dict[str, Any]]:
    """The encounters of ``<stem>.csv`` joined with ``<stem>_metadata.csv`` on ``encounter_id``."""
    encounters = _read_csv(require_file(folder / f"{stem}.csv", NAME), NOTE_COLUMNS)
    metadata = {
        m["encounter_id"]: m
        for m in _read_csv(require_file(folder / f"{stem}_metadata.csv", NAME), ("dataset", "encounter_id"))
    }
    rows = []
    for encounter in encounters:
        eid = encounter["encounter_id"]
        if eid not in metadata:
            raise CorpusFormatError(f"{stem}_metadata.csv: no row for encounter {eid}")
        if not encounter["note"].strip():
            raise CorpusFormatError(f"{stem}.csv: encounter {eid} has an empty note")
        rows.append(
            row(
                eid,
                encounter["note"],
                dataset=encounter["dataset"],
                encounter_id=eid,
                dialogue=encounter["dialogue"],
                metadata={k: v for k, v in metadata[eid].items() if k not in NOTE_COLUMNS},
            )
        )
    if len({r["id"] for r in rows}) != len(rows):
        raise CorpusFormatError(f"{stem}.csv: repeated encounter ids")
    return rows


def read(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """The five official challenge splits (see the module docstring for their names)."""
    base = require_file(folder / FOLDER, NAME)
    return {split: read_split(base, stem) for split, stem in FILES.items()}


SPEC = register(
    CorpusSpec(
        name=NAME,
        title="ACI-BENCH visit notes and dialogues",
        source="https://github.com/wyim/aci-bench (data/challenge_data)",
        licence="CC BY 4.0; cite Yim et al., Scientific Data 2023",
        reader=read,
    )
)
