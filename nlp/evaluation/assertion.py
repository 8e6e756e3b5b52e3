"""Assertion scores: negation, uncertainty, hypothetical, history and family against gold labels.

Every evaluation injects gold spans as targets (:meth:`nlp.Pipeline.annotate` with ``targets=``), so
mention finding plays no part and every pipeline gives the same figures. Four sources:

**Case files** (JSON Lines, see ``read_cases``): one annotate per distinct text, with all its cases'
mentions as targets. One-vs-rest precision/recall/F1 for each assertion (``present`` ``absent``
``possible`` ``hypothetical`` ``historical``) and for ``family`` (subject); accuracy of the
assertion, the subject, and of ``relationship`` / ``onset_age`` over the cases that give them. A case
is a mismatch when any field it gives is wrong.

**BioScope** (abstracts and full papers; rows are sentences):

- *cue level*: gold cues are the ``negation_cue`` / ``speculation_cue`` spans; predicted cues are
  those the ConText rules find anywhere in the sentence (``ClinicalContext.cues``), category
  ``negated_existence`` → negation, ``possible_existence`` → speculation (other categories are not
  predictions). P/R/F1 per type, *strict* (same offsets) and *overlap* (a shared character), as in
  :mod:`nlp.evaluation.ner`. A discontinuous gold cue ("neither ... nor") is one cue per part.
- *scope level*, mention-free: every word token of the sentence (pipeline tokenizer, punctuation
  and whitespace excluded) outside the rules' own cues is injected as a target (a cue never
  overlaps a mention; a token inside a predicted cue is predicted no type). A token is *gold*
  type T when it lies inside a gold T scope; it is *predicted* type T when a cue of type T
  modifies it (any of its ConText cues, whatever assertion precedence then chose). Tokens inside
  a gold T cue are not scored for T (a cue is not its own scope). ``scope-token`` is token P/R/F1
  per type; ``scope-full`` is the share of gold scopes all of whose scored tokens are predicted
  T (scopes with no scored token are left out).

**Chia** (rows are criteria files): the gold entities are Condition, Drug, Procedure, Measurement
and Observation (first fragment of a discontinuous entity). An entity is *negated* when it is the
head of a ``Has_negation`` relation, or lies inside (by offsets) a ``Scope`` entity that is the
head of one ("no X, Y or Z": the Scope holds X, Y and Z). ``Has_scope`` carries no negation either
way: an entity that points at a negated Scope is what the exception qualifies ("malignancy except
for basal cell carcinoma": malignancy is not negated), and the members of a Scope that a negated
entity points at are its arguments ("no contraindication to X or Y": X and Y are not negated; the
same structure also writes "no treatment with X or Y", a few gold misses on the test split).
Reported: negation P/R/F1, predicted ``absent`` vs gold negated. ``Has_mood`` is
*not* scored: Chia's Mood mixes plans ("planned", "scheduled": hypothetical), suspicion
("suspected", "probable": possible) and plain present findings ("evidence of", "requiring",
"able to"), so no assertion corresponds to it; the report describes what the pipeline assigns to
Mood-marked entities instead.

**PHEE** (rows are sentences): each event's ``Effect`` spans, and separately its ``Trigger``, are
injected as targets; a span is gold negated (speculated) when any event it belongs to is.
Negation: predicted ``absent``; speculation: predicted ``possible`` or ``hypothetical``.

Speed (``words_per_s``) is the words of the scored texts over the wall time of the whole evaluation.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import corpora
from nlp.errors import InputError
from nlp.evaluation.common import corpus_rows, report_header
from nlp.evaluation.ner import Counts, Tally, score_row
from nlp.pipeline import Pipeline, Target
from nlp.records import Mention, NoteRecord, doc_to_record

ASSERTIONS = ("absent", "possible", "hypothetical", "historical", "present")
SUBJECTS = ("patient", "family")
CASE_LABELS = frozenset({"PROBLEM", "DRUG", "PROCEDURE", "TEST"})
# HL7 v3 RoleCodes a case may give as "relationship"
RELATIONSHIPS = frozenset(
    {
        "MTH", "FTH", "SIS", "BRO", "SIB", "SON", "DAU", "CHILD", "GRMTH", "GRFTH",
        "MAUNT", "PAUNT", "AUNT", "UNCLE", "COUSN", "PRN", "FAMMEMB",
    }
)  # fmt: skip
CASE_KEYS = frozenset({"id", "text", "mention", "label", "assertion", "subject"})
OPTIONAL_CASE_KEYS = frozenset({"occurrence", "form", "relationship", "onset_age"})
CUE_TYPES = {"negated_existence": "negation", "possible_existence": "speculation"}
SCOPE_TYPES = ("negation", "speculation")
CHIA_LABELS = {
    "Condition": "PROBLEM",
    "Drug": "DRUG",
    "Procedure": "PROCEDURE",
    "Measurement": "TEST",
    "Observation": "PROBLEM",
}
PHEE_ARGUMENTS = ("Effect", "Trigger")
SPECULATIVE = frozenset({"possible", "hypothetical"})
TOP_ERRORS = 15  # cue texts listed per error kind and type in a BioScope report
TABLE_HEADER = ["level", "class", "P", "R", "F1", "gold", "predicted"]


# ---------------------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class AssertionCase:
    """One line of a case file, with the mention located in the text."""

    id: str
    text: str
    mention: str
    start: int
    end: int
    label: str
    assertion: str
    subject: str
    form: str | None = None
    relationship: str | None = None
    onset_age: int | None = None

    def expected(self) -> dict[str, Any]:
        """The fields this case checks (relationship and onset age only when it gives them)."""
        out: dict[str, Any] = {"assertion": self.assertion, "subject": self.subject}
        if self.relationship is not None:
            out["relationship"] = self.relationship
        if self.onset_age is not None:
            out["onset_age"] = self.onset_age
        return out


def read_cases(path: str | os.PathLike[str]) -> list[AssertionCase]:
    """Read and validate a case file (format: ``cases_spec``; one JSON object per line).

    Raises:
        InputError: ``unreadable_input`` if the file cannot be read, ``malformed_record`` (with the
            line number) for a line that is not a valid case, a duplicate id or an empty file.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read case file {path}: {exc}", code="unreadable_input") from None
    cases: list[AssertionCase] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        case = _parse_case(line, f"{path}:{number}")
        if case.id in seen:
            raise InputError(f"{path}:{number}: duplicate case id {case.id!r}", code="malformed_record")
        seen.add(case.id)
        cases.append(case)
    if not cases:
        raise InputError(f"{path}: no cases", code="malformed_record")
    return cases


def _parse_case(line: str, where: str) -> AssertionCase:
    def fail(message: str) -> InputError:
        return InputError(f"{where}: {message}", code="malformed_record")

    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise fail(f"not JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise fail("a case must be a JSON object")
    obj = {k: v for k, v in obj.items() if not (k in OPTIONAL_CASE_KEYS and v is None)}
    if missing := CASE_KEYS - obj.keys():
        raise fail(f"missing {sorted(missing)}")
    if unknown := obj.keys() - CASE_KEYS - OPTIONAL_CASE_KEYS:
        raise fail(f"unknown keys {sorted(unknown)}")
    for key in ("id", "text", "mention", "form", "relationship"):
        if key in obj and not (isinstance(obj[key], str) and obj[key].strip()):
            raise fail(f"{key!r} must be a non-empty string")
    for key in ("occurrence", "onset_age"):
        if key in obj and not (type(obj[key]) is int and obj[key] > 0):
            raise fail(f"{key!r} must be a positive integer")
    if obj["label"] not in CASE_LABELS:
        raise fail(f"label {obj['label']!r} is not one of {sorted(CASE_LABELS)}")
    if obj["assertion"] not in ASSERTIONS:
        raise fail(f"assertion {obj['assertion']!r} is not one of {list(ASSERTIONS)}")
    if obj["subject"] not in SUBJECTS:
        raise fail(f"subject {obj['subject']!r} is not one of {list(SUBJECTS)}")
    if "relationship" in obj and obj["relationship"] not in RELATIONSHIPS:
        raise fail(f"relationship {obj['relationship']!r} is not one of {sorted(RELATIONSHIPS)}")
    if obj["subject"] != "family" and ("relationship" in obj or "onset_age" in obj):
        raise fail("relationship and onset_age are for family cases only")
    text, mention, occurrence = obj["text"], obj["mention"], obj.get("occurrence", 1)
    start = -1
    for _ in range(occurrence):
        start = text.find(mention, start + 1)
        if start < 0:
            raise fail(f"mention {mention!r} does not occur {occurrence} time(s) in the text")
    return AssertionCase(
        id=obj["id"],
        text=text,
        mention=mention,
        start=start,
        end=start + len(mention),
        label=obj["label"],
        assertion=obj["assertion"],
        subject=obj["subject"],
        form=obj.get("form"),
        relationship=obj.get("relationship"),
        onset_age=obj.get("onset_age"),
    )


def predicted_fields(mention: Mention) -> dict[str, Any]:
    """What the pipeline said about a mention, in the fields a case checks."""
    return {
        "assertion": mention.assertion,
        "subject": mention.subject,
        "relationship": mention.relationship,
        "onset_age": mention.onset_age,
    }


def score_cases(cases: Sequence[AssertionCase], predictions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Scores of ``predictions`` (``predicted_fields`` per case, same order) against ``cases``.

    Returns:
        ``scores`` (``{"case": {class: P/R/F1 counts}}``), ``accuracy`` per field, ``forms``
        (cases and correct ones per ``form``) and ``mismatches``.
    """
    gold_assertions = [c.assertion for c in cases]
    got_assertions = [p["assertion"] for p in predictions]
    scores = {a: one_vs_rest(gold_assertions, got_assertions, a).scores() for a in ASSERTIONS}
    scores["family"] = one_vs_rest(
        [c.subject for c in cases], [p["subject"] for p in predictions], "family"
    ).scores()
    right: dict[str, list[bool]] = defaultdict(list)
    forms: dict[str, Counter[str]] = defaultdict(Counter)
    mismatches = []
    for case, got in zip(cases, predictions, strict=True):
        expected = case.expected()
        for key, value in expected.items():
            right[key].append(got[key] == value)
        correct = all(got[key] == value for key, value in expected.items())
        right["all"].append(correct)
        forms[case.form or "-"].update(cases=1, correct=int(correct))
        if not correct:
            mismatches.append(
                {
                    "id": case.id,
                    "text": case.text,
                    "mention": case.mention,
                    "expected": expected,
                    "got": {key: got[key] for key in expected},
                    "cues": got.get("cues", []),
                }
            )
    accuracy = {
        key: {"accuracy": _round(sum(right[key]) / len(right[key])), "cases": len(right[key])}
        for key in ("assertion", "subject", "relationship", "onset_age", "all")
        if right[key]
    }
    return {
        "scores": {"case": scores},
        "accuracy": accuracy,
        "forms": {form: dict(counts) for form, counts in sorted(forms.items())},
        "mismatches": mismatches,
    }


def one_vs_rest(gold: Sequence[str], predicted: Sequence[str], positive: str) -> Counts:
    """Counts for ``positive`` against every other value (one item per position)."""
    tp = sum(g == positive and p == positive for g, p in zip(gold, predicted, strict=True))
    return Counts(gold=gold.count(positive), pred=predicted.count(positive), tp_gold=tp, tp_pred=tp)


def binary_counts(gold: bool, predicted: bool) -> Counts:
    """Counts of one item for a yes/no class (gold and predicted each 0 or 1, matched if both)."""
    hit = int(gold and predicted)
    return Counts(gold=int(gold), pred=int(predicted), tp_gold=hit, tp_pred=hit)


def evaluate_cases(
    pipe: Pipeline, path: str | os.PathLike[str], *, limit: int | None = None
) -> dict[str, Any]:
    """Score ``pipe`` on a case file: one annotate per distinct text, its mentions as targets.

    Args:
        pipe: a loaded pipeline.
        path: the ``.jsonl`` case file.
        limit: score only the first ``limit`` cases.

    Raises:
        InputError: the case file cannot be read or a line is not a valid case.
    """
    cases = read_cases(path)[:limit]
    by_text: dict[str, list[int]] = defaultdict(list)
    for i, case in enumerate(cases):
        by_text[case.text].append(i)
    predictions: list[dict[str, Any]] = [{} for _ in cases]
    started = time.perf_counter()
    for text, indices in by_text.items():
        targets = _unique_targets((cases[i].start, cases[i].end, cases[i].label) for i in indices)
        found = _mentions_by_offsets(pipe.annotate(text, targets=targets))
        for i in indices:
            mention = found[cases[i].start, cases[i].end]
            predictions[i] = {**predicted_fields(mention), "cues": [_cue_dict(c) for c in mention.cues]}
    elapsed = time.perf_counter() - started
    report = report_header("assertion", pipe, str(path), None, len(by_text), list(by_text), elapsed)
    report["cases"] = len(cases)
    report.update(score_cases(cases, predictions))
    return report


# ------------------------------------------------------------------------------------- BioScope
def cue_errors(
    gold: Sequence[tuple[int, int, str]],
    predicted: Sequence[tuple[int, int, str]],
    found: Sequence[dict[str, Any]],
    text: str,
    errors: dict[str, dict[str, dict[str, Counter[str]]]],
) -> None:
    """Add one sentence's cue errors (overlap rule) to ``errors[type][kind][cue text]``.

    ``kind`` is ``false_negatives`` (a gold cue no predicted cue of its type overlaps; the counter
    holds the categories of the pipeline cues that do overlap it, or ``none``) or ``false_positives``
    (a predicted cue no gold cue of its type overlaps; the counter holds its rule ids). ``found`` is
    every cue the rules found in the sentence, of any category.
    """
    for start, end, kind in gold:
        if not any(kind == k and _overlaps((start, end), (s, e)) for s, e, k in predicted):
            overlapping = {c["category"] for c in found if _overlaps((start, end), (c["start"], c["end"]))}
            errors[kind]["false_negatives"][text[start:end].lower()][
                "+".join(sorted(overlapping)) or "none"
            ] += 1
    rules = {(c["start"], c["end"], CUE_TYPES.get(c["category"])): c["rule"] for c in found}
    for start, end, kind in predicted:
        if not any(kind == k and _overlaps((start, end), (s, e)) for s, e, k in gold):
            errors[kind]["false_positives"][text[start:end].lower()][rules[start, end, kind]] += 1


def scope_token_counts(
    tokens: Sequence[tuple[int, int]],
    predicted: Sequence[set[str]],
    gold_scopes: Sequence[tuple[int, int, str]],
    gold_cues: Sequence[tuple[int, int, str]],
    kind: str,
) -> tuple[Counts, Counts]:
    """Token counts and full-scope counts of one sentence for scope type ``kind``.

    Args:
        tokens: word token offsets.
        predicted: per token, the scope types the pipeline's cues give it.
        gold_scopes: ``(start, end, type)`` gold scopes.
        gold_cues: ``(start, end, type)`` gold cues (their tokens are not scored for their type).
        kind: ``negation`` or ``speculation``.

    Returns:
        ``(token counts, scope counts)``; scope counts are recall-only (``tp_gold`` = scopes whose
        scored tokens are all predicted ``kind``).
    """
    cues = [(s, e) for s, e, k in gold_cues if k == kind]
    scopes = [(s, e) for s, e, k in gold_scopes if k == kind]
    scored = [i for i, tok in enumerate(tokens) if not any(_overlaps(tok, cue) for cue in cues)]
    inside = [{i for i in scored if _overlaps(tokens[i], scope)} for scope in scopes]
    gold_tokens = set().union(*inside)
    pred_tokens = {i for i in scored if kind in predicted[i]}
    tp = len(gold_tokens & pred_tokens)
    token_counts = Counts(gold=len(gold_tokens), pred=len(pred_tokens), tp_gold=tp, tp_pred=tp)
    full = [members <= pred_tokens for members in inside if members]
    scope_counts = Counts(gold=len(full), tp_gold=sum(full))
    return token_counts, scope_counts


def evaluate_bioscope(
    pipe: Pipeline,
    split: str = "test",
    *,
    corpus_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Cue-level and scope-level negation/speculation scores on BioScope sentences (see module doc)."""
    rows = corpus_rows("bioscope", split, corpus_dir, limit)
    context = pipe.nlp.get_pipe("clinical_context")
    cue_tally = Tally(SCOPE_TYPES)
    tokens_counts = {kind: Counts() for kind in SCOPE_TYPES}
    scope_counts = {kind: Counts() for kind in SCOPE_TYPES}
    errors: dict[str, dict[str, dict[str, Counter[str]]]] = {
        kind: {"false_negatives": defaultdict(Counter), "false_positives": defaultdict(Counter)}
        for kind in SCOPE_TYPES
    }
    texts = []
    started = time.perf_counter()
    for row in rows:
        text = row["text"]
        if not text.strip():
            continue
        texts.append(text)
        gold_cues = _typed_spans(row, "_cue")
        gold_scopes = _typed_spans(row, "_scope")
        tokens = [
            (t.idx, t.idx + len(t.text)) for t in pipe.nlp.make_doc(text) if not (t.is_punct or t.is_space)
        ]
        found = context.cues(pipe.annotate_doc(text, targets=[]))  # type: ignore[attr-defined]
        # a cue never overlaps a mention, so the tokens of the rules' own cues are not targets
        targets = [(s, e) for s, e in tokens if not any(s < c["end"] and c["start"] < e for c in found)]
        doc = pipe.annotate_doc(text, targets=[(s, e, "PROBLEM") for s, e in targets])
        predicted_cues = [
            (c["start"], c["end"], CUE_TYPES[c["category"]]) for c in found if c["category"] in CUE_TYPES
        ]
        cue_tally.add_document(gold_cues, predicted_cues)
        cue_errors(gold_cues, predicted_cues, found, text, errors)
        by_offsets = _mentions_by_offsets(doc_to_record(doc, pipeline=pipe.id))
        token_types = [
            {CUE_TYPES[c.category] for c in by_offsets[tok].cues if c.category in CUE_TYPES}
            if tok in by_offsets
            else set()
            for tok in tokens
        ]
        for kind in SCOPE_TYPES:
            tok, scope = scope_token_counts(tokens, token_types, gold_scopes, gold_cues, kind)
            tokens_counts[kind].add(tok)
            scope_counts[kind].add(scope)
    elapsed = time.perf_counter() - started
    report = report_header("assertion", pipe, "bioscope", split, len(texts), texts, elapsed)
    cue_report = cue_tally.report()
    report["scores"] = {
        "cue-strict": cue_report["strict"]["labels"],
        "cue-overlap": cue_report["overlap"]["labels"],
        "scope-token": {kind: c.scores() for kind, c in tokens_counts.items()},
        "scope-full": {kind: c.scores(recall_only=True) for kind, c in scope_counts.items()},
    }
    report["cue_errors"] = {
        kind: {
            "false_negatives": _top(by_kind["false_negatives"], "pipeline_cues"),
            "false_positives": _top(by_kind["false_positives"], "rules"),
        }
        for kind, by_kind in errors.items()
    }
    return report


# ----------------------------------------------------------------------------------------- Chia
def chia_relation_heads(row: dict[str, Any], relation: str) -> set[int]:
    """Indices of the scored Chia entities that ``relation`` reaches, directly or through a Scope.

    A head that is a ``Scope`` entity stands for every scored entity lying inside it (any of the
    Scope's fragments). Only first fragments of discontinuous entities are returned.
    """
    spans, meta = row["spans"], json.loads(row["meta"])
    fragments = {group[0]: group for group in meta.get("discontinuous", [])}
    scored = _chia_entities(row)
    reached: set[int] = set()
    for rel in row["relations"]:
        if rel["type"] != relation:
            continue
        head = rel["head"]
        if spans[head]["label"] == "Scope":
            parts = [spans[i] for i in fragments.get(head, [head])]
            reached.update(
                i
                for i in scored
                if any(p["start"] <= spans[i]["start"] and spans[i]["end"] <= p["end"] for p in parts)
            )
        elif head in scored:
            reached.add(head)
    return reached


def _chia_entities(row: dict[str, Any]) -> list[int]:
    """Span indices of the scored entities: CHIA_LABELS, first fragment of each entity."""
    later = {i for group in json.loads(row["meta"]).get("discontinuous", []) for i in group[1:]}
    return [i for i, s in enumerate(row["spans"]) if s["label"] in CHIA_LABELS and i not in later]


def evaluate_chia(
    pipe: Pipeline,
    split: str = "test",
    *,
    corpus_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Negation P/R/F1 on Chia criteria entities, and what Mood-marked entities get (see module doc)."""
    rows = corpus_rows("chia", split, corpus_dir, limit)
    negation = Counts()
    mood_assertions: Counter[str] = Counter()
    mood_cues: Counter[str] = Counter()
    mismatches = []
    texts = []
    entities = 0
    started = time.perf_counter()
    for row in rows:
        spans, text = row["spans"], row["text"]
        scored = _chia_entities(row)
        if not scored:
            continue
        texts.append(text)
        entities += len(scored)
        targets = _unique_targets(
            (spans[i]["start"], spans[i]["end"], CHIA_LABELS[spans[i]["label"]]) for i in scored
        )
        found = _mentions_by_offsets(pipe.annotate(text, targets=targets, note_id=row["id"]))
        negated = chia_relation_heads(row, "Has_negation")
        moody = chia_relation_heads(row, "Has_mood")
        for i in scored:
            mention = found[spans[i]["start"], spans[i]["end"]]
            gold, got = i in negated, mention.assertion == "absent"
            negation.add(binary_counts(gold, got))
            if gold != got:
                mismatches.append(_mismatch(row["id"], text, mention, "negated" if gold else "not negated"))
            if i in moody:
                mood_assertions[mention.assertion] += 1
        for rel in row["relations"]:
            if rel["type"] == "Has_mood":
                mood_cues[spans[rel["tail"]]["text"].lower()] += 1
    elapsed = time.perf_counter() - started
    report = report_header("assertion", pipe, "chia", split, len(texts), texts, elapsed)
    report["entities"] = entities
    report["scores"] = {"entity": {"negation": negation.scores()}}
    report["mood"] = {
        "scored": False,
        "reason": "Chia's Mood mixes plans, suspicion and present findings; no single assertion fits",
        "entities": sum(mood_assertions.values()),
        "predicted": dict(mood_assertions.most_common()),
        "cue_texts": dict(mood_cues.most_common(TOP_ERRORS)),
    }
    report["mismatches"] = mismatches
    return report


# ----------------------------------------------------------------------------------------- PHEE
def phee_items(row: dict[str, Any], argument: str) -> dict[int, tuple[bool, bool]]:
    """``{span index: (negated, speculated)}`` for the ``argument`` spans of a PHEE row's events.

    Only the first fragment of a discontinuous entity is an item; a span in several events is
    negated (speculated) when any of them is.
    """
    meta = json.loads(row["meta"])
    later = {i for group in meta.get("fragments", []) for i in group[1:]}
    items: dict[int, tuple[bool, bool]] = {}
    for event in meta["events"]:
        for i in event["arguments"].get(argument, []):
            if i in later:
                continue
            negated, speculated = items.get(i, (False, False))
            items[i] = (negated or event["negated"], speculated or event["speculated"])
    return items


def evaluate_phee(
    pipe: Pipeline,
    split: str = "test",
    *,
    corpus_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Negation and speculation P/R/F1 of PHEE event Effects and Triggers (see module doc)."""
    rows = corpus_rows("phee", split, corpus_dir, limit)
    counts = {(arg, kind): Counts() for arg in PHEE_ARGUMENTS for kind in ("negation", "speculation")}
    mismatches = []
    texts = []
    started = time.perf_counter()
    for row in rows:
        spans, text = row["spans"], row["text"]
        by_argument = {arg: phee_items(row, arg) for arg in PHEE_ARGUMENTS}
        if not any(by_argument.values()):
            continue
        texts.append(text)
        for arg, items in by_argument.items():
            if not items:
                continue
            targets = _unique_targets((spans[i]["start"], spans[i]["end"], "PROBLEM") for i in items)
            found = _mentions_by_offsets(pipe.annotate(text, targets=targets, note_id=row["id"]))
            for i, (negated, speculated) in sorted(items.items()):
                mention = found[spans[i]["start"], spans[i]["end"]]
                checks = (
                    ("negation", negated, mention.assertion == "absent"),
                    ("speculation", speculated, mention.assertion in SPECULATIVE),
                )
                for kind, gold, got in checks:
                    counts[arg, kind].add(binary_counts(gold, got))
                if any(gold != got for _, gold, got in checks):
                    flags = [flag for flag, on in (("negated", negated), ("speculated", speculated)) if on]
                    expected = "+".join(flags) or "asserted"
                    mismatches.append({"argument": arg, **_mismatch(row["id"], text, mention, expected)})
    elapsed = time.perf_counter() - started
    report = report_header("assertion", pipe, "phee", split, len(texts), texts, elapsed)
    report["scores"] = {
        arg: {kind: counts[arg, kind].scores() for kind in ("negation", "speculation")}
        for arg in PHEE_ARGUMENTS
    }
    report["mismatches"] = mismatches
    return report


# ------------------------------------------------------------------------------------- dispatch
EVALUATORS: dict[str, Callable[..., dict[str, Any]]] = {
    "bioscope": evaluate_bioscope,
    "chia": evaluate_chia,
    "phee": evaluate_phee,
}


def is_case_file(corpus_or_path: str | os.PathLike[str]) -> bool:
    """Whether ``evaluate_assertion`` reads this argument as a case file rather than a corpus name."""
    return str(corpus_or_path).endswith(".jsonl")


def evaluate_assertion(
    pipe: Pipeline,
    corpus_or_path: str | os.PathLike[str],
    split: str = "test",
    *,
    corpus_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Assertion scores on a corpus split or a ``.jsonl`` case file (what ``notes2fhir evaluate`` prints).

    Args:
        pipe: a loaded pipeline (the figures do not depend on which: gold spans are the targets).
        corpus_or_path: ``bioscope``, ``chia``, ``phee``, or a path ending in ``.jsonl``.
        split: the corpus split (ignored for a case file).
        corpus_dir: the corpus folder, if not where :func:`corpora.corpus_path` looks.
        limit: score only the first ``limit`` documents (cases for a case file).

    Raises:
        CorpusNotFoundError: an unknown corpus name or a corpus that is not installed.
        InputError: ``unsupported_corpus`` for a corpus without assertion annotation; a case file
            that cannot be read or has a malformed line.
    """
    check_source(corpus_or_path)
    if is_case_file(corpus_or_path):
        return evaluate_cases(pipe, corpus_or_path, limit=limit)
    return EVALUATORS[str(corpus_or_path)](pipe, split, corpus_dir=corpus_dir, limit=limit)


def check_source(corpus_or_path: str | os.PathLike[str]) -> None:
    """Raise unless ``evaluate_assertion`` can read this (a case file path or a supported corpus name).

    Raises:
        CorpusNotFoundError: an unknown corpus name.
        InputError: ``unsupported_corpus`` for a known corpus without assertion annotation.
    """
    name = str(corpus_or_path)
    if is_case_file(name) or name in EVALUATORS:
        return
    corpora.get_spec(name)  # an unknown name is a CorpusNotFoundError
    raise InputError(
        f"corpus {name!r} has no assertion annotation; assertion evaluation reads "
        f"{', '.join(EVALUATORS)} or a .jsonl case file",
        code="unsupported_corpus",
    )


def format_table(report: dict[str, Any]) -> list[list[str]]:
    """Rows ``level, class, P, R, F1, gold, predicted`` for printing (header: ``TABLE_HEADER``)."""
    return [
        score_row(level, name, s)
        for level, classes in report["scores"].items()
        for name, s in classes.items()
    ]


# -------------------------------------------------------------------------------------- helpers
def _unique_targets(targets: Iterable[Target]) -> list[Target]:
    """One target per offsets (the first label wins), in text order."""
    unique: dict[tuple[int, int], Target] = {}
    for start, end, label in targets:
        unique.setdefault((start, end), (start, end, label))
    return sorted(unique.values())


def _mentions_by_offsets(record: NoteRecord) -> dict[tuple[int, int], Mention]:
    return {(m.start, m.end): m for m in record.mentions}


def _typed_spans(row: dict[str, Any], suffix: str) -> list[tuple[int, int, str]]:
    """BioScope ``negation<suffix>`` / ``speculation<suffix>`` spans as ``(start, end, type)``."""
    return [
        (s["start"], s["end"], s["label"].removesuffix(suffix))
        for s in row["spans"]
        if s["label"].endswith(suffix)
    ]


def _mismatch(doc_id: str, text: str, mention: Mention, expected: str) -> dict[str, Any]:
    line_start = text.rfind("\n", 0, mention.start) + 1
    line_end = text.find("\n", mention.end)
    return {
        "id": doc_id,
        "text": text[line_start : line_end if line_end >= 0 else len(text)].strip(),
        "mention": mention.text,
        "expected": expected,
        "got": mention.assertion,
        "cues": [_cue_dict(c) for c in mention.cues],
    }


def _cue_dict(cue: Any) -> dict[str, Any]:
    return {"category": cue.category, "text": cue.text, "rule": cue.rule}


def _top(by_text: dict[str, Counter[str]], detail: str) -> list[dict[str, Any]]:
    ranked = sorted(by_text.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))[:TOP_ERRORS]
    return [{"text": text, "count": sum(c.values()), detail: dict(c.most_common())} for text, c in ranked]


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _round(x: float) -> float:
    return round(x, 4)
