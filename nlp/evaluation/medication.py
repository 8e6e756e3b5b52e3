"""Medication and allergy scores on the project's note case files (``tests/fixtures/medication/``).

A case is a note fragment with every medication mention and every allergy statement marked by hand
(the format is checked by :func:`read_medication_cases`). The pipeline annotates the text end to
end. Scores:

- ``mentions``: medication mentions (``DRUG`` and ``DRUG_CLASS``) against the gold ones, ``strict``
  (same offsets) and ``overlap`` (a shared character; one prediction matches one gold mention);
  ``class``: of the matched mentions, how many have the right kind (a class such as "statins" is
  ``DRUG_CLASS``, a product ``DRUG``).
- ``attributes``: strength, dose, route, frequency, duration, PRN reason and indication, each an
  exact match of its text. Gold counts every gold mention that states the attribute (a missed
  mention misses its attributes too); predicted counts the attributes of matched mentions.
  ``prn`` is scored as a yes/no class over matched mentions.
- ``status``: of the matched mentions, the status FHIR would carry (``active``, ``stopped``,
  ``planned``, ``not_taken``, ``allergy_only``) against the gold one, with the confusion counts.
- ``allergies``: the entries that become ``AllergyIntolerance`` (:func:`nlp.records.is_allergy_entry`)
  against the gold statements (overlap), and of the matched ones the category (medication, food,
  environment), refuted or not, and the reactions linked to them (overlap, P/R/F1).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nlp.evaluation.assertion import binary_counts
from nlp.evaluation.common import locate, read_case_file, report_header
from nlp.evaluation.ner import Counts
from nlp.records import MEDICATION_LABELS, Mention, NoteRecord, allergy_category, is_allergy_entry

if TYPE_CHECKING:
    from nlp.pipeline import Pipeline

Offsets = tuple[int, int]

TEXT_ATTRIBUTES = ("strength", "dose", "route", "frequency", "duration", "prn_reason", "indication")
STATUSES = ("active", "stopped", "planned", "not_taken", "allergy_only")
CATEGORIES = ("medication", "food", "environment")
# the status a MedicationStatement gets from the mention's assertion (nlp.fhir.bundle)
STATUS_OF_ASSERTION = {
    "present": "active",
    "historical": "stopped",
    "hypothetical": "planned",
    "absent": "not_taken",
    "possible": "unknown",
}
_MEDICATION_KEYS = {"drug", "occurrence", "class", "prn", "status", *TEXT_ATTRIBUTES}
_ALLERGY_KEYS = {"substance", "occurrence", "category", "reactions", "refuted"}


@dataclass(frozen=True)
class GoldMedication:
    """One hand-marked medication mention."""

    span: Offsets
    is_class: bool
    attributes: dict[str, str]  # attribute -> exact text, only the stated ones
    prn: bool
    status: str


@dataclass(frozen=True)
class GoldAllergy:
    """One hand-marked allergy statement."""

    span: Offsets
    category: str
    reactions: tuple[Offsets, ...]
    refuted: bool


@dataclass(frozen=True)
class MedicationCase:
    id: str
    text: str
    medications: tuple[GoldMedication, ...]
    allergies: tuple[GoldAllergy, ...]
    form: str | None


def read_medication_cases(path: str | os.PathLike[str]) -> list[MedicationCase]:
    """The cases of a ``.jsonl`` medication case file.

    Raises:
        InputError: ``unreadable_input`` or ``malformed_record`` (with ``path:line``).
    """
    return read_case_file(path, _case)


def evaluate_medication_cases(
    pipe: Pipeline, path: str | os.PathLike[str], *, limit: int | None = None
) -> dict[str, Any]:
    """Score ``pipe`` on a medication case file (see the module doc)."""
    cases = read_medication_cases(path)[:limit]
    mentions = {rule: Counts() for rule in ("strict", "overlap")}
    kind = Counter[str]()
    attributes = {name: Counts() for name in TEXT_ATTRIBUTES}
    prn = Counts()
    status = Counter[tuple[str, str]]()
    allergies, reactions = Counts(), Counts()
    allergy_fields = Counter[str]()
    mismatches: list[dict[str, Any]] = []
    started = time.perf_counter()
    for case in cases:
        record = pipe.annotate(case.text, note_id=case.id)
        predicted = [m for m in record.mentions if m.label in MEDICATION_LABELS]
        gold_spans = [g.span for g in case.medications]
        mentions["strict"].add(_span_counts(gold_spans, [(m.start, m.end) for m in predicted], strict=True))
        pairs = _match([g.span for g in case.medications], predicted)
        mentions["overlap"].add(_matched_counts(len(case.medications), len(predicted), len(pairs)))
        for gi, m in pairs:
            gold = case.medications[gi]
            kind["right" if (m.label == "DRUG_CLASS") == gold.is_class else "wrong"] += 1
            got = _status(m)
            status[gold.status, got] += 1
            prn.add(binary_counts(gold.prn, "prn" in m.attributes))
            if got != gold.status:
                mismatches.append(_mismatch(case, m, "status", gold.status, got))
        matched = dict(pairs)
        for gi, gold in enumerate(case.medications):
            found = matched.get(gi)
            for name in TEXT_ATTRIBUTES:
                want = gold.attributes.get(name)
                have = found.attributes.get(name, {}).get("text") if found else None
                attributes[name].add(_value_counts(want, have))
                if found is not None and want != have:
                    mismatches.append(_mismatch(case, found, name, want, have))
        _score_allergies(case, record, allergies, reactions, allergy_fields)
    elapsed = time.perf_counter() - started
    report = report_header("medication", pipe, str(path), None, len(cases), [c.text for c in cases], elapsed)
    matched_total = sum(kind.values())
    report["scores"] = {
        "mentions": {rule: c.scores() for rule, c in mentions.items()},
        "class_accuracy": _ratio(kind["right"], matched_total),
        "attributes": {name: c.scores() for name, c in attributes.items()},
        "prn": prn.scores(),
        "status_accuracy": _ratio(sum(v for (g, p), v in status.items() if g == p), matched_total),
        "allergies": allergies.scores(),
        "allergy_category_accuracy": _ratio(allergy_fields["category"], allergy_fields["matched"]),
        "allergy_refuted_accuracy": _ratio(allergy_fields["refuted"], allergy_fields["matched"]),
        "allergy_reactions": reactions.scores(),
    }
    report["status_confusion"] = {f"{g} -> {p}": v for (g, p), v in sorted(status.items())}
    report["mismatches"] = mismatches
    return report


def format_table(report: dict[str, Any]) -> list[list[Any]]:
    """Rows ``[score, P, R, F1 or accuracy, gold, predicted]`` for the CLI."""
    scores = report["scores"]
    rows: list[list[Any]] = []

    def prf(name: str, s: dict[str, Any]) -> None:
        rows.append([name, s["precision"], s["recall"], s["f1"], s["gold"], s["predicted"]])

    for rule, s in scores["mentions"].items():
        prf(f"mentions ({rule})", s)
    rows.append(["class (of matched)", None, None, scores["class_accuracy"], None, None])
    for name, s in scores["attributes"].items():
        prf(name, s)
    prf("prn", scores["prn"])
    rows.append(["status (of matched)", None, None, scores["status_accuracy"], None, None])
    prf("allergies", scores["allergies"])
    rows.append(["allergy category", None, None, scores["allergy_category_accuracy"], None, None])
    rows.append(["allergy refuted", None, None, scores["allergy_refuted_accuracy"], None, None])
    prf("allergy reactions", scores["allergy_reactions"])
    return rows


def _score_allergies(
    case: MedicationCase, record: NoteRecord, allergies: Counts, reactions: Counts, fields: Counter[str]
) -> None:
    entries = [m for m in record.mentions if is_allergy_entry(m)]
    pairs = _match([g.span for g in case.allergies], entries)
    allergies.add(_matched_counts(len(case.allergies), len(entries), len(pairs)))
    by_id = {m.id: m for m in record.mentions}
    linked: dict[str, list[Offsets]] = {}
    for rel in record.relations:
        if rel.type in ("allergy_reaction", "adverse_reaction"):
            target = by_id[rel.target_id]
            linked.setdefault(rel.source_id, []).append((target.start, target.end))
    for gi, m in pairs:
        gold = case.allergies[gi]
        fields["matched"] += 1
        fields["category"] += allergy_category(m) == gold.category
        fields["refuted"] += (m.assertion == "absent" or m.label == "NO_KNOWN_ALLERGY") == gold.refuted
        found = linked.get(m.id, [])
        hits = sum(any(_overlaps(g, f) for f in found) for g in gold.reactions)
        right = sum(any(_overlaps(g, f) for g in gold.reactions) for f in found)
        reactions.add(Counts(gold=len(gold.reactions), pred=len(found), tp_gold=hits, tp_pred=right))
    for gi, gold in enumerate(case.allergies):
        if gi not in dict(pairs):
            reactions.add(Counts(gold=len(gold.reactions)))


def _status(m: Mention) -> str:
    if is_allergy_entry(m):
        return "allergy_only"
    return STATUS_OF_ASSERTION[m.assertion]


def _match(gold: Sequence[Offsets], predicted: Sequence[Mention]) -> list[tuple[int, Mention]]:
    """One-to-one overlap matches, gold in text order taking the first free overlapping prediction."""
    used: set[int] = set()
    pairs = []
    for gi, span in enumerate(gold):
        for pi, m in enumerate(predicted):
            if pi not in used and _overlaps(span, (m.start, m.end)):
                used.add(pi)
                pairs.append((gi, m))
                break
    return pairs


def _span_counts(gold: Iterable[Offsets], predicted: Iterable[Offsets], *, strict: bool) -> Counts:
    g, p = list(gold), list(predicted)
    return Counts(gold=len(g), pred=len(p), tp_gold=sum(s in p for s in g), tp_pred=sum(s in g for s in p))


def _matched_counts(gold: int, predicted: int, matched: int) -> Counts:
    return Counts(gold=gold, pred=predicted, tp_gold=matched, tp_pred=matched)


def _value_counts(want: str | None, have: str | None) -> Counts:
    hit = int(want is not None and want == have)
    return Counts(gold=int(want is not None), pred=int(have is not None), tp_gold=hit, tp_pred=hit)


def _overlaps(a: Offsets, b: Offsets) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _mismatch(case: MedicationCase, m: Mention, what: str, want: Any, have: Any) -> dict[str, Any]:
    return {"id": case.id, "mention": m.text, "what": what, "gold": want, "predicted": have}


def _near(text: str, mention: str, after: int) -> Offsets:
    """The first occurrence of ``mention`` at or after ``after``, else the first one."""
    start = text.find(mention, max(after, 0))
    if start < 0:
        start = text.find(mention)
    if start < 0:
        raise ValueError(f"{mention!r} is not in the text")
    return start, start + len(mention)


def _case(raw: dict[str, Any]) -> MedicationCase:
    if not {"id", "text", "medications", "allergies"} <= set(raw):
        raise ValueError("a case needs id, text, medications and allergies")
    text = raw["text"]
    medications = []
    for item in raw["medications"]:
        if set(item) - _MEDICATION_KEYS or item["status"] not in STATUSES:
            raise ValueError(f"medication keys are {sorted(_MEDICATION_KEYS)}; status one of {STATUSES}")
        for name in TEXT_ATTRIBUTES:
            if item.get(name) is not None and item[name] not in text:
                raise ValueError(f"{name} {item[name]!r} is not in the text")
        medications.append(
            GoldMedication(
                span=locate(text, item["drug"], item.get("occurrence", 1)),
                is_class=bool(item.get("class")),
                attributes={n: item[n] for n in TEXT_ATTRIBUTES if item.get(n) is not None},
                prn=bool(item.get("prn")),
                status=item["status"],
            )
        )
    allergies = []
    for item in raw["allergies"]:
        if set(item) - _ALLERGY_KEYS or item["category"] not in CATEGORIES:
            raise ValueError(f"allergy keys are {sorted(_ALLERGY_KEYS)}; category one of {CATEGORIES}")
        allergies.append(
            GoldAllergy(
                span=locate(text, item["substance"], item.get("occurrence", 1)),
                category=item["category"],
                reactions=tuple(
                    _near(text, r, text.find(item["substance"])) for r in item.get("reactions", [])
                ),
                refuted=bool(item.get("refuted")),
            )
        )
    return MedicationCase(raw["id"], text, tuple(medications), tuple(allergies), raw.get("form"))
