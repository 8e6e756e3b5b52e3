"""NCBI disease corpus: disease mentions in PubMed abstracts, normalised to MeSH and OMIM.

The original-data files are PubTator blocks (``PMID|t|title``, ``PMID|a|abstract``, then
``PMID<TAB>start<TAB>end<TAB>mention<TAB>class<TAB>concept ids``); the text is title + " " + abstract.
Mention classes SpecificDisease, DiseaseClass, CompositeMention and Modifier are all diseases.

The file format is BC5CDR's (:func:`corpora.bc5cdr.read_pubtator`); the id column mixes MeSH and
OMIM ids (see :func:`concept_ids`). The training file holds PMID 8528200 twice, identically; the
copy is dropped so ids stay unique (592 training documents and 5134 mentions, where the published
5145 counts the copy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from corpora.base import CorpusSpec, register, require_file
from corpora.bc5cdr import read_pubtator

NAME = "ncbi_disease"
FILES = {
    "train": "NCBItrainset_corpus.txt",
    "validation": "NCBIdevelopset_corpus.txt",
    "test": "NCBItestset_corpus.txt",
}
LABELS = ("SpecificDisease", "DiseaseClass", "CompositeMention", "Modifier")


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


def read(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Official train/development/test files -> ``train``/``validation``/``test`` rows."""
    base = folder / "original-data"
    return {
        split: read_pubtator(require_file(base / name, NAME), concept_ids, LABELS)
        for split, name in FILES.items()
    }


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
