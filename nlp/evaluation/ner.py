"""Mention-level precision, recall and F1 of a pipeline on a corpus split.

The pipeline runs exactly as a user runs it (:meth:`nlp.Pipeline.annotate_many` → NoteRecords);
only the mentions of house labels the corpus annotates exhaustively are scored, so a drug found in
an NCBI-disease abstract is neither right nor wrong. Two matching rules:

- **strict**: same start, end and label;
- **overlap**: same label and at least one shared character (each gold and each predicted mention
  is matched at most once per side, so P and R are counts of matched items on that side).

Corpora that annotate no label exhaustively (ADE-Corpus-V2, PHEE) get recall only.
"""

from __future__ import annotations

import os
import platform
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import corpora
from nlp.pipeline import Pipeline

Mention = tuple[int, int, str]


@dataclass
class Counts:
    """True positives and totals for one label under one matching rule."""

    gold: int = 0
    pred: int = 0
    tp_gold: int = 0  # gold mentions matched
    tp_pred: int = 0  # predicted mentions matched

    def scores(self, recall_only: bool = False) -> dict[str, float | int | None]:
        p = None if recall_only else _ratio(self.tp_pred, self.pred)
        r = _ratio(self.tp_gold, self.gold)
        f = None if p is None or r is None or p + r == 0 else 2 * p * r / (p + r)
        return {
            "precision": _round(p),
            "recall": _round(r),
            "f1": _round(f),
            "gold": self.gold,
            "predicted": None if recall_only else self.pred,
        }

    def add(self, other: Counts) -> None:
        self.gold += other.gold
        self.pred += other.pred
        self.tp_gold += other.tp_gold
        self.tp_pred += other.tp_pred


@dataclass
class Tally:
    """Counts per (rule, label) accumulated over documents."""

    labels: tuple[str, ...]
    counts: dict[tuple[str, str], Counts] = field(default_factory=lambda: defaultdict(Counts))

    def add_document(self, gold: Iterable[Mention], predicted: Iterable[Mention]) -> None:
        gold_by = _by_label(gold, self.labels)
        pred_by = _by_label(predicted, self.labels)
        for label in self.labels:
            g, p = gold_by.get(label, set()), pred_by.get(label, set())
            strict = self.counts["strict", label]
            strict.gold += len(g)
            strict.pred += len(p)
            strict.tp_gold += len(g & p)
            strict.tp_pred += len(g & p)
            overlap = self.counts["overlap", label]
            overlap.gold += len(g)
            overlap.pred += len(p)
            overlap.tp_gold += sum(any(_overlaps(a, b) for b in p) for a in g)
            overlap.tp_pred += sum(any(_overlaps(a, b) for b in g) for a in p)

    def report(self, recall_only: bool = False) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for rule in ("strict", "overlap"):
            micro = Counts()
            per_label = {}
            for label in self.labels:
                c = self.counts[rule, label]
                micro.add(c)
                per_label[label] = c.scores(recall_only)
            out[rule] = {"micro": micro.scores(recall_only), "labels": per_label}
        return out


def gold_mentions(row: dict[str, Any], label_map: dict[str, str]) -> list[Mention]:
    """A corpus row's spans in house labels (unmapped corpus labels dropped)."""
    return [(s["start"], s["end"], label_map[s["label"]]) for s in row["spans"] if s["label"] in label_map]


def evaluate_ner(
    pipe: Pipeline,
    corpus: str,
    split: str = "test",
    *,
    corpus_dir: str | os.PathLike[str] | None = None,
    labels: Sequence[str] | None = None,
    limit: int | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Score ``pipe`` on ``corpus``/``split``; returns the report that ``notes2fhir evaluate`` prints.

    Args:
        pipe: a loaded pipeline (``nlp.load(name)``).
        corpus: a registered corpus name (``corpora.REGISTRY``).
        split: which split to score (report test figures; tune on validation).
        corpus_dir: the corpus folder, if not where :func:`corpora.corpus_path` looks.
        labels: house labels to score (default: those the corpus annotates exhaustively, or for
            partially annotated corpora every label it maps to, recall only).
        limit: score only the first ``limit`` documents (smoke runs).
        workers: processes for :meth:`Pipeline.annotate_many`.
    """
    spec = corpora.get_spec(corpus)
    dataset = corpora.load(corpus, split=split, corpus_dir=corpus_dir)
    rows = list(dataset) if limit is None else list(dataset.select(range(min(limit, len(dataset)))))
    recall_only = not spec.annotated
    scored = tuple(labels) if labels else tuple(sorted(spec.annotated or set(spec.label_map.values())))
    label_map = dict(spec.label_map)
    tally = Tally(scored)
    errors = 0
    words = sum(len(r["text"].split()) for r in rows)
    started = time.perf_counter()
    notes = ({"id": r["id"], "text": r["text"]} for r in rows)
    for row, record in zip(rows, pipe.annotate_many(notes, n_process=workers), strict=True):
        if record.error is not None:
            errors += 1
        predicted = [(m.start, m.end, m.label) for m in record.mentions]
        tally.add_document(gold_mentions(row, label_map), predicted)
    elapsed = time.perf_counter() - started
    return {
        "corpus": corpus,
        "split": split,
        "pipeline": pipe.id,
        "documents": len(rows),
        "errors": errors,
        "labels": list(scored),
        "recall_only": recall_only,
        "scores": tally.report(recall_only),
        "words": words,
        "seconds": round(elapsed, 1),
        "words_per_s": round(words / elapsed) if elapsed else None,
        "workers": workers,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }


def format_table(report: dict[str, Any]) -> list[list[str]]:
    """Rows ``rule, label, P, R, F1, gold, predicted`` for printing."""
    rows = []
    for rule in ("strict", "overlap"):
        block = report["scores"][rule]
        for label, s in [*block["labels"].items(), ("micro", block["micro"])]:
            rows.append(score_row(rule, label, s))
    return rows


def score_row(level: str, name: str, s: dict[str, Any]) -> list[str]:
    """One printed row: ``level, name, P, R, F1, gold, predicted`` (``-`` where undefined)."""
    predicted = "-" if s["predicted"] is None else str(s["predicted"])
    return [level, name, _fmt(s["precision"]), _fmt(s["recall"]), _fmt(s["f1"]), str(s["gold"]), predicted]


def _by_label(mentions: Iterable[Mention], labels: Sequence[str]) -> dict[str, set[tuple[int, int]]]:
    out: dict[str, set[tuple[int, int]]] = defaultdict(set)
    for start, end, label in mentions:
        if label in labels:
            out[label].add((start, end))
    return out


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"
