"""BC5CDR chemical-induced disease (CID): document-level drug -> reaction pairs, scored by MeSH ids.

``notes2fhir evaluate bc5cdr-cid [--split test]`` runs :func:`nlp.literature.summarize.analyse` (the
code path ``notes2fhir literature summarize`` uses) over every abstract of the split. A predicted pair
is a pair the abstract-level model accepts whose drug and disease both have MeSH ids; it is right when
the split relates the two ids in that abstract (1,066 gold pairs in test). Micro P/R/F1 over abstracts,
as the BioCreative V task scored it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import corpora
from nlp.literature.model import Abstract
from nlp.literature.summarize import PAIR_MODEL, PIPELINE, AbstractAnalysis, analyse_many

CORPUS = "bc5cdr-cid"
Pairs = set[tuple[str, str]]


def bc5cdr_abstracts(
    split: str, *, corpus_dir: str | Path | None = None, limit: int | None = None
) -> tuple[list[Abstract], list[Pairs]]:
    """The abstracts of a BC5CDR split and, for each, its CID pairs as (chemical, disease) MeSH ids."""
    rows = corpora.load("bc5cdr", split=split, corpus_dir=corpus_dir)
    if limit is not None:
        rows = rows.select(range(min(limit, len(rows))))
    abstracts, gold = [], []
    for row in rows:
        title_chars = json.loads(row["meta"])["title_chars"]
        text = row["text"]
        abstracts.append(Abstract(pmid=row["id"], title=text[:title_chars], abstract=text[title_chars + 1 :]))
        gold.append(
            {
                (r["head_id"].removeprefix("MESH:"), r["tail_id"].removeprefix("MESH:"))
                for r in row["relations"]
                if r["type"] == "CID"
            }
        )
    return abstracts, gold


def predicted_pairs(analysis: AbstractAnalysis) -> Pairs:
    """The accepted abstract-level pairs whose drug and disease both have MeSH ids."""
    return {
        (p.drug_key.removeprefix("mesh:"), p.reaction_key.removeprefix("mesh:"))
        for p in analysis.pairs
        if p.accepted and p.drug_key.startswith("mesh:") and p.reaction_key.startswith("mesh:")
    }


def score_pairs(predicted: list[Pairs], gold: list[Pairs]) -> dict[str, float | int]:
    """Micro P/R/F1 of document-level pairs."""
    tp = sum(len(p & g) for p, g in zip(predicted, gold, strict=True))
    n_pred, n_gold = sum(map(len, predicted)), sum(map(len, gold))
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "P": round(precision, 4),
        "R": round(recall, 4),
        "F1": round(f1, 4),
        "tp": tp,
        "gold": n_gold,
        "predicted": n_pred,
    }


def evaluate_cid(
    split: str = "test",
    *,
    pipeline: str = PIPELINE,
    pair_model: str = PAIR_MODEL,
    corpus_dir: str | Path | None = None,
    limit: int | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """The CID report for a BC5CDR split (see the module docstring)."""
    abstracts, gold = bc5cdr_abstracts(split, corpus_dir=corpus_dir, limit=limit)
    started = time.perf_counter()
    analyses = list(analyse_many(abstracts, pipeline=pipeline, pair_model=pair_model, workers=workers))
    seconds = time.perf_counter() - started
    predicted = [predicted_pairs(a) for a in analyses]
    sentence_level = [
        {
            (s.drug_key.removeprefix("mesh:"), s.reaction_key.removeprefix("mesh:"))
            for s in a.statements
            if s.reported
            and not s.evidence.method.startswith(f"model:{pair_model}")
            and s.drug_key.startswith("mesh:")
            and s.reaction_key.startswith("mesh:")
        }
        for a in analyses
    ]
    return {
        "corpus": CORPUS,
        "split": split,
        "pipeline": f"{pipeline} + {pair_model}",
        "documents": len(abstracts),
        "errors": sum(a.error is not None for a in analyses),
        "cid": score_pairs(predicted, gold),
        "sentence_relations_only": score_pairs(sentence_level, gold),
        "seconds": round(seconds, 1),
        "abstracts_per_s": round(len(abstracts) / seconds, 2) if seconds else None,
        "workers": workers,
    }
