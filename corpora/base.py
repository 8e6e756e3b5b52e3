"""What every corpus reader shares: where corpora live, one record schema, offset checks, a registry.

A reader turns the files of one public corpus into a Hugging Face ``datasets.DatasetDict`` keyed by
split (``train``, ``validation``, ``test`` where the corpus has them). Every row has the same columns:

- ``id``: document id (PMID, file stem, sentence id ...), unique within the split.
- ``text``: the text the offsets point into.
- ``spans``: list of ``{"start", "end", "label", "text", "ids"}``; ``label`` is the corpus' own label,
  ``ids`` are normalisation ids as ``"MESH:D003920"``-style strings (empty when the corpus has none).
- ``relations``: list of ``{"type", "head", "tail", "head_id", "tail_id"}``; ``head``/``tail`` index into
  ``spans`` (-1 for document-level relations that name concepts by id only, like BC5CDR's CID).
- ``meta``: JSON text with whatever else the corpus carries (section, specialty, event attributes ...).

``CorpusSpec.label_map`` maps corpus labels to the house labels (PROBLEM, DRUG, TEST, PROCEDURE);
``CorpusSpec.annotated`` names the house labels the corpus annotates *exhaustively*, so a learner may
treat unlabelled text as "not that label" only for those.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets

from nlp.errors import Notes2FhirError

ENV_VAR = "NOTES2FHIR_CORPORA"
DEFAULT_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"
HOUSE_LABELS = ("PROBLEM", "DRUG", "TEST", "PROCEDURE")

FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "text": datasets.Value("string"),
        "spans": [
            {
                "start": datasets.Value("int32"),
                "end": datasets.Value("int32"),
                "label": datasets.Value("string"),
                "text": datasets.Value("string"),
                "ids": [datasets.Value("string")],
            }
        ],
        "relations": [
            {
                "type": datasets.Value("string"),
                "head": datasets.Value("int32"),
                "tail": datasets.Value("int32"),
                "head_id": datasets.Value("string"),
                "tail_id": datasets.Value("string"),
            }
        ],
        "meta": datasets.Value("string"),
    }
)


class CorpusNotFoundError(Notes2FhirError):
    """A corpus folder or file that is not where we looked."""

    code = "corpus_not_found"


class CorpusFormatError(Notes2FhirError):
    """A corpus file that does not parse, or whose offsets do not match its text."""

    code = "corpus_format"


@dataclass(frozen=True)
class CorpusSpec:
    """One corpus: how to read it and what its labels mean."""

    name: str
    title: str
    source: str  # where to get it when it is absent
    licence: str
    reader: Callable[[Path], dict[str, list[dict[str, Any]]]]  # folder -> {split: rows}
    label_map: Mapping[str, str] = field(default_factory=dict)  # corpus label -> house label
    annotated: frozenset[str] = frozenset()  # house labels annotated exhaustively
    official_splits: bool = True  # False: our deterministic hash split (see hash_split)


REGISTRY: dict[str, CorpusSpec] = {}


def register(spec: CorpusSpec) -> CorpusSpec:
    REGISTRY[spec.name] = spec
    return spec


def corpus_path(name: str, corpus_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder of corpus ``name``.

    ``corpus_dir`` (the corpus folder itself) wins; then ``$NOTES2FHIR_CORPORA/<name>``; then
    ``../shared/corpora/<name>`` beside the repository.
    """
    spec = get_spec(name)
    if corpus_dir is not None:
        path = Path(corpus_dir)
    elif os.environ.get(ENV_VAR):
        path = Path(os.environ[ENV_VAR]) / name
    else:
        path = DEFAULT_ROOT / name
    if not path.is_dir():
        raise CorpusNotFoundError(
            f"{spec.title} not found at {path}. Get it from {spec.source} and pass its folder with "
            f"--corpus-dir, or set {ENV_VAR} to the folder that holds '{name}/'."
        )
    return path


def get_spec(name: str) -> CorpusSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise CorpusNotFoundError(f"unknown corpus {name!r}; known corpora: {known}") from None


def require_file(path: Path, name: str) -> Path:
    """``path`` if it exists, else a CorpusNotFoundError naming the corpus and where to get it."""
    if not path.exists():
        spec = get_spec(name)
        raise CorpusNotFoundError(f"{spec.title}: expected {path} (get the corpus from {spec.source})")
    return path


def span(text: str, start: int, end: int, label: str, ids: Iterable[str] = (), *, where: str = "") -> dict:
    """A span row whose offsets are checked against ``text``."""
    if not 0 <= start < end <= len(text):
        raise CorpusFormatError(
            f"{where}: span {start}-{end} ({label}) is outside a text of {len(text)} chars"
        )
    return {"start": start, "end": end, "label": label, "text": text[start:end], "ids": list(ids)}


def check_span(text: str, start: int, end: int, expected: str, *, where: str) -> None:
    """Raise CorpusFormatError unless ``text[start:end] == expected``."""
    if text[start:end] != expected:
        raise CorpusFormatError(
            f"{where}: offsets {start}-{end} give {text[start:end]!r}, the annotation says {expected!r}"
        )


def relation(type_: str, head: int = -1, tail: int = -1, head_id: str = "", tail_id: str = "") -> dict:
    return {"type": type_, "head": head, "tail": tail, "head_id": head_id, "tail_id": tail_id}


def row(
    id_: str,
    text: str,
    spans: list[dict] | None = None,
    relations: list[dict] | None = None,
    **meta: Any,
) -> dict[str, Any]:
    return {
        "id": id_,
        "text": text,
        "spans": spans or [],
        "relations": relations or [],
        "meta": json.dumps(meta, sort_keys=True, ensure_ascii=False),
    }


def hash_split(key: str) -> str:
    """Deterministic 80/10/10 train/validation/test split for corpora without official splits."""
    bucket = int(hashlib.sha1(key.encode("utf-8")).hexdigest(), 16) % 10
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


def to_dataset_dict(rows_by_split: Mapping[str, list[dict[str, Any]]]) -> datasets.DatasetDict:
    return datasets.DatasetDict(
        {
            split: datasets.Dataset.from_list(rows, features=FEATURES)
            if rows
            else datasets.Dataset.from_dict({k: [] for k in FEATURES}, features=FEATURES)
            for split, rows in rows_by_split.items()
        }
    )
