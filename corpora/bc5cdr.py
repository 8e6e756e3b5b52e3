"""BioCreative V CDR (BC5CDR): Chemical and Disease mentions with MeSH ids, and CID relations.

PubTator files, one per official split; the text is title + " " + abstract, as the offsets expect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from corpora.base import (
    CorpusFormatError,
    CorpusSpec,
    check_span,
    register,
    relation,
    require_file,
    row,
    span,
)

NAME = "bc5cdr"
log = logging.getLogger(__name__)
FILES = {
    "train": "CDR_TrainingSet.PubTator.txt",
    "validation": "CDR_DevelopmentSet.PubTator.txt",
    "test": "CDR_TestSet.PubTator.txt",
}


def mesh_ids(field: str) -> list[str]:
    """PubTator id column -> ``["MESH:D003920", ...]``; ``-1`` (not normalisable) -> ``[]``."""
    return [f"MESH:{i}" for i in field.replace(";", "|").split("|") if i and i != "-1"]


def read_pubtator(
    path: Path,
    ids: Callable[[str], list[str]] = mesh_ids,
    labels: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """Documents of a PubTator file (BC5CDR and NCBI disease share the format).

    Args:
        path: the file.
        ids: turns the concept-id column into ``"MESH:..."``-style ids.
        labels: the mention types the corpus uses (others are format errors); ``None``: any.

    The text is title + " " + abstract. A mention column may carry trailing spaces beyond its
    offsets (NCBI); an exact repeat of a document is dropped (NCBI's training file holds PMID
    8528200 twice), a repeat with other content is an error.
    """
    docs: dict[str, dict[str, Any]] = {}
    title = abstract = pmid = None
    spans: list[dict] = []
    relations: list[dict] = []

    def flush() -> None:
        if pmid is None:
            return
        if abstract is None:
            raise CorpusFormatError(f"{path.name}: PMID {pmid} has a title but no abstract line")
        doc = row(pmid, f"{title} {abstract}", spans, relations, title_chars=len(title or ""))
        earlier = docs.setdefault(pmid, doc)
        if earlier is not doc:
            if earlier != doc:
                raise CorpusFormatError(f"{path.name}: PMID {pmid} occurs twice with different content")
            log.info("%s: dropped the identical second copy of PMID %s", path.name, pmid)

    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{path.name}:{lineno}"
        if not line.strip():
            continue
        if "|t|" in line[:20]:
            flush()
            pmid, title = line.split("|t|", 1)
            abstract, spans, relations = None, [], []
        elif "|a|" in line[:20]:
            abstract = line.split("|a|", 1)[1]
        else:
            cols = line.split("\t")
            if pmid is None or abstract is None or cols[0] != pmid:
                raise CorpusFormatError(f"{where}: annotation line outside its document")
            text = f"{title} {abstract}"
            if len(cols) >= 4 and cols[1] == "CID":
                relations.append(relation(cols[1], head_id=ids(cols[2])[0], tail_id=ids(cols[3])[0]))
                continue
            if len(cols) < 5:
                raise CorpusFormatError(f"{where}: expected PMID, start, end, mention, type[, ids]")
            if labels is not None and cols[4] not in labels:
                raise CorpusFormatError(f"{where}: unknown mention type {cols[4]!r}")
            start, end = int(cols[1]), int(cols[2])
            check_span(text, start, end, cols[3].rstrip(), where=where)
            spans.append(span(text, start, end, cols[4], ids(cols[5]) if len(cols) > 5 else [], where=where))
    flush()
    return list(docs.values())


def read(folder: Path) -> dict[str, list[dict[str, Any]]]:
    base = folder / "CDR.Corpus.v010516"
    return {split: read_pubtator(require_file(base / name, NAME)) for split, name in FILES.items()}


SPEC = register(
    CorpusSpec(
        name=NAME,
        title="BioCreative V CDR corpus (BC5CDR)",
        source="https://biocreative.bioinformatics.udel.edu/tasks/biocreative-v/track-3-cdr/",
        licence="NCBI public domain notice; cite Wei et al. 2015 and Li et al. 2016",
        reader=read,
        label_map={"Disease": "PROBLEM", "Chemical": "DRUG"},
        annotated=frozenset({"PROBLEM", "DRUG"}),
    )
)
