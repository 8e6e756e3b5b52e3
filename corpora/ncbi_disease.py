"""NCBI disease corpus: disease mentions in PubMed abstracts, normalised to MeSH and OMIM.

The original-data files are PubTator blocks (``PMID|t|title``, ``PMID|a|abstract``, then
``PMID<TAB>start<TAB>end<TAB>mention<TAB>class<TAB>concept ids``); the text is title + " " + abstract.
Mention classes SpecificDisease, DiseaseClass, CompositeMention and Modifier are all diseases.

Two quirks differ from BC5CDR, which is why :func:`corpora.bc5cdr.read_pubtator` is not used: the id
column mixes MeSH and OMIM ids (see :func:`concept_ids`), and one mention column carries trailing
spaces beyond its offsets (compared without them). The training file holds PMID 8528200 twice,
identically; the copy is dropped so ids stay unique (592 training documents and 5134 mentions, where
the published 5145 counts the copy).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from corpora.base import CorpusFormatError, CorpusSpec, check_span, register, require_file, row, span

NAME = "ncbi_disease"
FILES = {
    "train": "NCBItrainset_corpus.txt",
    "validation": "NCBIdevelopset_corpus.txt",
    "test": "NCBItestset_corpus.txt",
}
LABELS = ("SpecificDisease", "DiseaseClass", "CompositeMention", "Modifier")

log = logging.getLogger(__name__)


def concept_ids(field: str) -> list[str]:
    """NCBI concept-id column -> ``["MESH:D011125", "OMIM:217000", ...]``.

    The column joins the concepts of composite mentions with ``|`` and combined concepts with ``+``;
    bare ids are MeSH (``D...`` descriptors, ``C...`` supplementary concepts), OMIM ids carry their
    prefix, and a few ids carry stray spaces or an explicit ``MESH:`` prefix.
    """
    ids = []
    for part in field.replace("+", "|").split("|"):
        part = part.strip()
        if part:
            ids.append(part if part.startswith(("MESH:", "OMIM:")) else f"MESH:{part}")
    return ids


def read_ncbi_pubtator(path: Path) -> list[dict[str, Any]]:
    """Documents of one NCBI disease file, exact repeats of a document dropped."""
    docs: dict[str, dict[str, Any]] = {}
    pmid = title = text = None
    spans: list[dict] = []

    def flush() -> None:
        if pmid is None:
            return
        if title is None or text is None:
            raise CorpusFormatError(f"{path.name}: PMID {pmid} has a title but no abstract line")
        doc = row(pmid, text, spans, title_chars=len(title))
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
            text, spans = None, []
        elif "|a|" in line[:20]:
            text = f"{title} {line.split('|a|', 1)[1]}"
        else:
            cols = line.split("\t")
            if text is None or cols[0] != pmid:
                raise CorpusFormatError(f"{where}: annotation line outside its document")
            if len(cols) != 6:
                raise CorpusFormatError(f"{where}: expected PMID, start, end, mention, class, concept ids")
            if cols[4] not in LABELS:
                raise CorpusFormatError(f"{where}: unknown mention class {cols[4]!r}")
            start, end = int(cols[1]), int(cols[2])
            check_span(text, start, end, cols[3].rstrip(), where=where)
            spans.append(span(text, start, end, cols[4], concept_ids(cols[5]), where=where))
    flush()
    return list(docs.values())


def read(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Official train/development/test files -> ``train``/``validation``/``test`` rows."""
    base = folder / "original-data"
    return {split: read_ncbi_pubtator(require_file(base / name, NAME)) for split, name in FILES.items()}


SPEC = register(
    CorpusSpec(
        name=NAME,
        title="NCBI disease corpus",
        source="https://github.com/spyysalo/ncbi-disease",
        licence="NLM public domain notice; cite Dogan, Leaman and Lu, J Biomed Inform 2014",
        reader=read,
        label_map={label: "PROBLEM" for label in LABELS},
        annotated=frozenset({"PROBLEM"}),
    )
)
