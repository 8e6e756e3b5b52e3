"""BioCreative V CDR (BC5CDR): Chemical and Disease mentions with MeSH ids, and CID relations.

PubTator files, one per official split; the text is title + " " + abstract, as the offsets expect.
"""

from __future__ import annotations

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
FILES = {
    "train": "CDR_TrainingSet.PubTator.txt",
    "validation": "CDR_DevelopmentSet.PubTator.txt",
    "test": "CDR_TestSet.PubTator.txt",
}


def mesh_ids(field: str) -> list[str]:
    """PubTator id column -> ``["MESH:D003920", ...]``; ``-1`` (not normalisable) -> ``[]``."""
    return [f"MESH:{i}" for i in field.replace(";", "|").split("|") if i and i != "-1"]


def read_pubtator(path: Path) -> list[dict[str, Any]]:
    """Documents of a PubTator file (BC5CDR and NCBI disease share the format)."""
    rows: list[dict[str, Any]] = []
    title = abstract = pmid = None
    spans: list[dict] = []
    relations: list[dict] = []

    def flush() -> None:
        if pmid is not None:
            rows.append(row(pmid, f"{title} {abstract}", spans, relations, title_chars=len(title or "")))

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
            if len(cols) >= 4 and cols[1] in ("CID",):
                relations.append(
                    relation(cols[1], head_id=mesh_ids(cols[2])[0], tail_id=mesh_ids(cols[3])[0])
                )
                continue
            if len(cols) < 5:
                raise CorpusFormatError(f"{where}: expected PMID, start, end, mention, type[, ids]")
            start, end = int(cols[1]), int(cols[2])
            check_span(text, start, end, cols[3], where=where)
            spans.append(
                span(text, start, end, cols[4], mesh_ids(cols[5]) if len(cols) > 5 else [], where=where)
            )
    flush()
    return rows


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
