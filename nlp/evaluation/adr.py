"""Adverse drug reaction scores: drug -> reaction pairs on ADE-Corpus-V2 and PHEE, reactions on TAC 2017.

A predicted pair is an ``adverse_reaction`` relation of the record (see :mod:`nlp.components.adr`)
read back to character offsets through its mention ids: ``((drug start, drug end), (reaction start,
reaction end))``. Gold and predicted pairs are sets (a pair given twice counts once).

**ADE-Corpus-V2** (rows are case-report sentences). Only the entities that take part in a pair are
annotated: a drug or an effect the sentence mentions without attributing it is unmarked, so
mention-level precision means nothing here. Pair precision does: every drug -> adverse effect
attribution of a sentence is annotated, and the ADE-NEG sentences have none. Four levels:

- ``given-entities``: every ``DRUG`` span is injected as a DRUG target and every ``AE`` span as a
  PROBLEM target, so the component only decides the pairs. P/R/F1 against the ``ADE`` relations.
  Sentences without both a drug and an effect are skipped (no pair can be gold or predicted).
- ``end-to-end``: the sentence is annotated as a user would (no targets); a predicted pair is right
  when both its spans have the gold offsets.
- ``end-to-end-ade-sentences``: the same run over the sentences that have an ADE pair only: the
  setting of the published joint models (trained and scored by 10-fold cross-validation on the
  corpus's 4,272 sentences with pairs), which never see an ADE-NEG sentence.
- ``end-to-end-overlap``: the same run, a pair matching when each side shares a character with the
  gold side (P counts predicted pairs that match a gold pair, R gold pairs that a prediction matches).
- ``sentence``: gold, the sentence has an ADE pair (``has_ade``); predicted, the end-to-end run finds
  at least one ``adverse_reaction``. Over every sentence of the split, ADE-NEG ones included.

**PHEE** (rows are sentences), ``given-entities`` only: the gold pairs are each ``Treatment.Drug`` x
each ``Effect`` of the ``Adverse_event`` events that are neither negated nor speculated. The targets
are every ``Treatment.Drug`` (DRUG) and ``Effect`` (PROBLEM) span of the sentence, those of
therapeutic, negated and speculated events included: the component must leave them unpaired. A
discontinuous entity is its first fragment, as in :mod:`nlp.evaluation.assertion`.

**TAC 2017 ADR** (rows are drug-label sections with at least one placed mention): recall of the
``AdverseReaction`` spans among the pipeline's PROBLEM mentions, strict and overlap as in
:mod:`nlp.evaluation.ner`, over all sections and per section type. Recall only: the labels' other
conditions (indications, contraindications) are not annotated. The discontinuous mentions the
re-packaging could not place are not scored (``unplaced`` counts them).

To help tuning, each pair level lists its ``TOP_ERRORS`` most frequent false negatives and false
positives (strict rule), grouped by lower-cased (drug, reaction) text with one sentence, how many
of them differ from a gold (predicted) pair by span boundaries only and, for false positives, the
methods that made them; TAC lists the most often missed reaction texts
(overlap rule). Speed (``words_per_s``) is the words of the scored texts over the wall time of the
whole evaluation.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import corpora
from nlp.errors import InputError
from nlp.evaluation.assertion import binary_counts
from nlp.evaluation.common import corpus_rows, locate, read_case_file, report_header
from nlp.evaluation.ner import Counts, Tally
from nlp.pipeline import Pipeline, Target
from nlp.records import NoteRecord

ADR_COMPONENT = "clinical_adr"
ADE_TARGET_LABELS = {"DRUG": "DRUG", "AE": "PROBLEM"}
PHEE_TARGET_LABELS = {"Treatment.Drug": "DRUG", "Effect": "PROBLEM"}
TOP_ERRORS = 20  # (drug, reaction) groups listed per error kind and level
PAIR_CLASS = "adverse_reaction"
ATTRIBUTIONS = {"adverse_reaction", "allergy_reaction"}  # what a note case counts as a drug -> reaction pair

Offsets = tuple[int, int]
Pair = tuple[Offsets, Offsets]  # (drug offsets, reaction offsets)


# -------------------------------------------------------------------------------------- scoring
def pair_overlaps(a: Pair, b: Pair) -> bool:
    """Whether the drugs of ``a`` and ``b`` share a character, and so do their reactions."""
    return all(x[0] < y[1] and y[0] < x[1] for x, y in zip(a, b, strict=True))


def score_pairs(gold: Collection[Pair], predicted: Collection[Pair], *, overlap: bool = False) -> Counts:
    """Counts of one text's predicted pairs against its gold pairs.

    Args:
        gold: the gold (drug, reaction) offset pairs.
        predicted: the predicted pairs.
        overlap: match a pair when each side shares a character with the other pair's side
            (default: both sides have the same offsets).
    """
    gold_set, predicted_set = set(gold), set(predicted)
    if overlap:
        tp_gold = sum(any(pair_overlaps(g, p) for p in predicted_set) for g in gold_set)
        tp_pred = sum(any(pair_overlaps(g, p) for g in gold_set) for p in predicted_set)
    else:
        tp_gold = tp_pred = len(gold_set & predicted_set)
    return Counts(gold=len(gold_set), pred=len(predicted_set), tp_gold=tp_gold, tp_pred=tp_pred)


def record_pairs(record: NoteRecord) -> dict[Pair, str]:
    """``{(drug offsets, reaction offsets): method}`` of a record's drug -> reaction relations
    (``adverse_reaction``, and ``allergy_reaction``: an allergy statement is an attribution too).

    A pair given by several relations keeps the method of the first.
    """
    offsets = {m.id: (m.start, m.end) for m in record.mentions}
    pairs: dict[Pair, str] = {}
    for rel in record.relations:
        if rel.type in ATTRIBUTIONS:
            pairs.setdefault((offsets[rel.source_id], offsets[rel.target_id]), rel.method)
    return pairs


@dataclass
class PairErrors:
    """False negatives and false positives of one level, grouped by lower-cased (drug, reaction) text.

    An error is *boundary only* when the overlap rule would have matched it (a predicted pair
    overlapping a missed gold pair, or a gold pair overlapping a false alarm): the spans differ, the
    attribution does not.
    """

    counts: dict[str, Counter[tuple[str, str]]] = field(
        default_factory=lambda: {"false_negatives": Counter(), "false_positives": Counter()}
    )
    boundary_only: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (kind, drug, reaction)
    sentences: dict[tuple[str, str, str], str] = field(default_factory=dict)  # first sentence per group
    methods: dict[tuple[str, str], Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, text: str, gold: Collection[Pair], predicted: Mapping[Pair, str]) -> None:
        """Add one text's strict misses (gold pairs not predicted) and false alarms."""
        gold_set = set(gold)
        for pair in sorted(gold_set - predicted.keys()):
            self._note("false_negatives", text, pair, any(pair_overlaps(pair, p) for p in predicted))
        for pair in sorted(predicted.keys() - gold_set):
            key = self._note("false_positives", text, pair, any(pair_overlaps(pair, g) for g in gold_set))
            self.methods[key][predicted[pair]] += 1

    def _note(self, kind: str, text: str, pair: Pair, boundary_only: bool) -> tuple[str, str]:
        (drug_start, drug_end), (reaction_start, reaction_end) = pair
        key = (text[drug_start:drug_end].lower(), text[reaction_start:reaction_end].lower())
        self.counts[kind][key] += 1
        self.boundary_only[(kind, *key)] += boundary_only
        self.sentences.setdefault((kind, *key), text)
        return key

    def report(self, top: int = TOP_ERRORS) -> dict[str, list[dict[str, Any]]]:
        """The ``top`` most frequent groups of each kind, most frequent first.

        Each group: ``drug``, ``reaction``, ``count``, ``boundary_only`` (how many of them), the first
        ``sentence``, and for false positives the ``methods`` that made them.
        """
        out: dict[str, list[dict[str, Any]]] = {}
        for kind, counter in self.counts.items():
            out[kind] = []
            for (drug, reaction), count in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:top]:
                group = {
                    "drug": drug,
                    "reaction": reaction,
                    "count": count,
                    "boundary_only": self.boundary_only[kind, drug, reaction],
                    "sentence": self.sentences[kind, drug, reaction],
                }
                if kind == "false_positives":
                    group["methods"] = dict(self.methods[drug, reaction].most_common())
                out[kind].append(group)
        return out


# ------------------------------------------------------------------------------- ADE-Corpus-V2
def ade_gold_pairs(row: dict[str, Any]) -> set[Pair]:
    """The ``ADE`` (drug -> adverse effect) pairs of an ADE-Corpus-V2 row."""
    spans = row["spans"]
    return {
        (_offsets(spans[rel["head"]]), _offsets(spans[rel["tail"]]))
        for rel in row["relations"]
        if rel["type"] == "ADE"
    }


def evaluate_ade(
    pipe: Pipeline,
    split: str = "test",
    *,
    corpus_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Pair and sentence scores on ADE-Corpus-V2 (see module doc).

    Args:
        pipe: a loaded pipeline.
        split: ``train``, ``validation`` or ``test`` (hashed by PMID; the reader lists a split's
            sentences with pairs before its ADE-NEG sentences).
        corpus_dir: the corpus folder, if not where :func:`corpora.corpus_path` looks.
        limit: score only the first ``limit`` sentences.
    """
    rows = corpus_rows("ade_corpus_v2", split, corpus_dir, limit)
    levels = ("given-entities", "end-to-end", "end-to-end-ade-sentences", "end-to-end-overlap", "sentence")
    counts = {level: Counts() for level in levels}
    errors = {level: PairErrors() for level in ("given-entities", "end-to-end")}
    given_sentences = 0
    started = time.perf_counter()
    for row in rows:
        text = row["text"]
        gold = ade_gold_pairs(row)
        targets = _targets(row["spans"], ADE_TARGET_LABELS)
        if {"DRUG", "PROBLEM"} <= {label for _, _, label in targets}:
            given_sentences += 1
            predicted = record_pairs(pipe.annotate(text, targets=targets, note_id=row["id"]))
            counts["given-entities"].add(score_pairs(gold, predicted))
            errors["given-entities"].add(text, gold, predicted)
        predicted = record_pairs(pipe.annotate(text, note_id=row["id"]))
        counts["end-to-end"].add(score_pairs(gold, predicted))
        has_ade = json.loads(row["meta"])["has_ade"]
        if has_ade:
            counts["end-to-end-ade-sentences"].add(score_pairs(gold, predicted))
        counts["end-to-end-overlap"].add(score_pairs(gold, predicted, overlap=True))
        errors["end-to-end"].add(text, gold, predicted)
        counts["sentence"].add(binary_counts(has_ade, bool(predicted)))
    elapsed = time.perf_counter() - started
    report = _adr_header(pipe, "ade_corpus_v2", split, len(rows), [r["text"] for r in rows], elapsed)
    report["given_entities_sentences"] = given_sentences
    report["scores"] = {
        level: {"has_ade" if level == "sentence" else PAIR_CLASS: c.scores()} for level, c in counts.items()
    }
    report["errors"] = {level: e.report() for level, e in errors.items()}
    return report


# ----------------------------------------------------------------------------------------- PHEE
def phee_gold_pairs(row: dict[str, Any]) -> set[Pair]:
    """Treatment.Drug x Effect pairs of a PHEE row's asserted ``Adverse_event`` events.

    Events that are negated or speculated give no pair; a discontinuous entity is its first fragment.
    """
    meta, spans = json.loads(row["meta"]), row["spans"]
    later = _later_fragments(meta)
    pairs: set[Pair] = set()
    for event in meta["events"]:
        if event["type"] != "Adverse_event" or event["negated"] or event["speculated"]:
            continue
        drugs = [i for i in event["arguments"].get("Treatment.Drug", []) if i not in later]
        effects = [i for i in event["arguments"].get("Effect", []) if i not in later]
        pairs.update((_offsets(spans[d]), _offsets(spans[e])) for d in drugs for e in effects)
    return pairs


def evaluate_phee_adr(
    pipe: Pipeline,
    split: str = "test",
    *,
    corpus_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Given-entities pair scores on PHEE adverse events (see module doc); arguments as ``evaluate_ade``."""
    rows = corpus_rows("phee", split, corpus_dir, limit)
    counts = Counts()
    errors = PairErrors()
    texts = []
    started = time.perf_counter()
    for row in rows:
        later = _later_fragments(json.loads(row["meta"]))
        spans = [s for i, s in enumerate(row["spans"]) if i not in later]
        targets = _targets(spans, PHEE_TARGET_LABELS)
        if not {"DRUG", "PROBLEM"} <= {label for _, _, label in targets}:
            continue
        text = row["text"]
        texts.append(text)
        gold = phee_gold_pairs(row)
        predicted = record_pairs(pipe.annotate(text, targets=targets, note_id=row["id"]))
        counts.add(score_pairs(gold, predicted))
        errors.add(text, gold, predicted)
    elapsed = time.perf_counter() - started
    report = _adr_header(pipe, "phee", split, len(texts), texts, elapsed)
    report["scores"] = {"given-entities": {PAIR_CLASS: counts.scores()}}
    report["errors"] = {"given-entities": errors.report()}
    return report


# ------------------------------------------------------------------------------------ TAC 2017
def evaluate_tac_adr(
    pipe: Pipeline,
    split: str = "test",
    *,
    corpus_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Recall of TAC 2017 adverse reaction mentions among PROBLEM mentions (see module doc).

    Args:
        pipe: a loaded pipeline.
        split: ``train`` or ``test`` (the official ones).
        corpus_dir: the corpus folder, if not where :func:`corpora.corpus_path` looks.
        limit: score only the first ``limit`` sections (counted before those without a placed
            mention are skipped).
    """
    rows = corpus_rows("tac2017_adr", split, corpus_dir, limit)
    tallies: dict[str, Tally] = defaultdict(lambda: Tally(("PROBLEM",)))
    missed: Counter[str] = Counter()
    unplaced = 0
    texts = []
    started = time.perf_counter()
    for row in rows:
        meta = json.loads(row["meta"])
        unplaced += len(meta["unplaced"])
        if not row["spans"]:
            continue
        text = row["text"]
        texts.append(text)
        gold = [(*_offsets(s), "PROBLEM") for s in row["spans"]]
        record = pipe.annotate(text, note_id=row["id"])
        predicted = [(m.start, m.end, m.label) for m in record.mentions]
        for key in ("all", meta["section"]):
            tallies[key].add_document(gold, predicted)
        problems = [(m.start, m.end) for m in record.mentions if m.label == "PROBLEM"]
        missed.update(
            text[start:end].lower()
            for start, end, _ in gold
            if not any(start < p_end and p_start < end for p_start, p_end in problems)
        )
    elapsed = time.perf_counter() - started
    report = _adr_header(pipe, "tac2017_adr", split, len(texts), texts, elapsed)
    report["unplaced"] = unplaced
    reports = {key: tally.report(recall_only=True) for key, tally in tallies.items()}
    report["scores"] = {
        f"mention-{rule}": {key: r[rule]["labels"]["PROBLEM"] for key, r in reports.items()}
        for rule in ("strict", "overlap")
    }
    report["errors"] = {
        "missed_reactions": [{"text": t, "count": n} for t, n in _most_common(missed, TOP_ERRORS)]
    }
    return report


# ------------------------------------------------------------------------------------- dispatch
EVALUATORS: dict[str, Callable[..., dict[str, Any]]] = {
    "ade_corpus_v2": evaluate_ade,
    "phee": evaluate_phee_adr,
    "tac2017_adr": evaluate_tac_adr,
}


# ------------------------------------------------------------------------------ note case files
@dataclass(frozen=True)
class AdrCase:
    """One written note case: does the note attribute ``reaction`` to ``drug``?"""

    id: str
    text: str
    drug: Offsets
    reaction: Offsets
    related: bool
    trap: str | None


_CASE_KEYS = {"id", "text", "drug", "drug_occurrence", "reaction", "reaction_occurrence", "related", "trap"}
TRAPS = {"unrelated_pair", "negated", "counselling", "other_cause", "predates_drug", "treats", "family"}


def read_adr_cases(path: str | os.PathLike[str]) -> list[AdrCase]:
    """The cases of a ``.jsonl`` ADR case file (``tests/fixtures/adr/``).

    Raises:
        InputError: ``unreadable_input`` or ``malformed_record`` (with ``path:line``).
    """
    return read_case_file(path, _adr_case)


def _adr_case(raw: dict[str, Any]) -> AdrCase:
    if set(raw) - _CASE_KEYS or not {"id", "text", "drug", "reaction", "related"} <= set(raw):
        raise ValueError(f"keys must be {sorted(_CASE_KEYS)}")
    if raw.get("trap") not in TRAPS | {None} or bool(raw.get("trap")) == raw["related"]:
        raise ValueError("a related case has no trap; an unrelated one names one of " + str(sorted(TRAPS)))
    return AdrCase(
        id=raw["id"],
        text=raw["text"],
        drug=locate(raw["text"], raw["drug"], raw.get("drug_occurrence", 1)),
        reaction=locate(raw["text"], raw["reaction"], raw.get("reaction_occurrence", 1)),
        related=bool(raw["related"]),
        trap=raw.get("trap"),
    )


def evaluate_adr_cases(pipe: Pipeline, path: str | os.PathLike[str], *, limit: int | None = None) -> dict:
    """Score a note case file end to end: the pipeline finds the mentions itself; a case's pair is
    predicted when an ``adverse_reaction`` or ``allergy_reaction`` relation overlaps both its spans."""
    cases = read_adr_cases(path)[:limit]
    counts = Counts()
    wrong: list[dict[str, Any]] = []
    started = time.perf_counter()
    for case in cases:
        record = pipe.annotate(case.text)
        by_id = {m.id: (m.start, m.end) for m in record.mentions}
        predicted = [
            (by_id[r.source_id], by_id[r.target_id], r.method)
            for r in record.relations
            if r.type in ATTRIBUTIONS
        ]
        hit = next((p for p in predicted if pair_overlaps((p[0], p[1]), (case.drug, case.reaction))), None)
        counts.add(binary_counts(case.related, hit is not None))
        if (hit is not None) != case.related:
            wrong.append({"id": case.id, "trap": case.trap, "text": case.text, "method": hit and hit[2]})
    report = _adr_header(
        pipe, str(path), None, len(cases), [c.text for c in cases], time.perf_counter() - started
    )
    report["scores"] = {"case": {PAIR_CLASS: counts.scores()}}
    report["false_positives_by_trap"] = dict(Counter(w["trap"] for w in wrong if w["trap"]))
    report["mismatches"] = wrong
    return report


def is_case_file(corpus: str | os.PathLike[str]) -> bool:
    return str(corpus).endswith(".jsonl")


def check_corpus(corpus: str) -> None:
    """Raise unless ``evaluate_adr`` scores ``corpus``.

    Raises:
        CorpusNotFoundError: an unknown corpus name.
        InputError: ``unsupported_corpus`` for a known corpus without adverse reaction annotation.
    """
    if corpus in EVALUATORS or is_case_file(corpus):
        return
    corpora.get_spec(corpus)  # an unknown name is a CorpusNotFoundError
    raise InputError(
        f"corpus {corpus!r} has no adverse drug reaction annotation; ADR evaluation reads "
        f"{', '.join(EVALUATORS)}",
        code="unsupported_corpus",
    )


def evaluate_adr(
    pipe: Pipeline,
    corpus: str,
    split: str = "test",
    *,
    corpus_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """ADR scores on a corpus split (what ``notes2fhir evaluate --task adr`` prints).

    Args:
        pipe: a loaded pipeline.
        corpus: ``ade_corpus_v2``, ``phee`` or ``tac2017_adr``.
        split: the corpus split.
        corpus_dir: the corpus folder, if not where :func:`corpora.corpus_path` looks.
        limit: score only the first ``limit`` documents.

    Raises:
        CorpusNotFoundError: an unknown corpus name or a corpus that is not installed.
        InputError: ``unsupported_corpus`` for a corpus without adverse reaction annotation.
    """
    check_corpus(corpus)
    if is_case_file(corpus):
        return evaluate_adr_cases(pipe, corpus, limit=limit)
    return EVALUATORS[corpus](pipe, split, corpus_dir=corpus_dir, limit=limit)


# -------------------------------------------------------------------------------------- helpers
def _targets(spans: Iterable[dict[str, Any]], labels: Mapping[str, str]) -> list[Target]:
    """Targets of the spans whose corpus label ``labels`` maps; one per offsets (the first wins)."""
    unique: dict[Offsets, Target] = {}
    for s in spans:
        if s["label"] in labels:
            unique.setdefault(_offsets(s), (*_offsets(s), labels[s["label"]]))
    return sorted(unique.values())


def _later_fragments(meta: dict[str, Any]) -> set[int]:
    """Span indices of the second and later fragments of PHEE's discontinuous entities."""
    return {i for group in meta.get("fragments", []) for i in group[1:]}


def _offsets(span: dict[str, Any]) -> Offsets:
    return span["start"], span["end"]


def _most_common(counter: Counter[str], top: int) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


def _adr_header(
    pipe: Pipeline, corpus: str, split: str | None, documents: int, texts: Iterable[str], elapsed: float
) -> dict[str, Any]:
    header = report_header("adr", pipe, corpus, split, documents, texts, elapsed)
    header["adr_component"] = ADR_COMPONENT in pipe.nlp.pipe_names
    return header
