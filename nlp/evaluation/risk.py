"""Cardiovascular risk-factor scores on the project's case files (``tests/fixtures/risk/``).

A case is a note fragment with the patient's risk-factor profile written by hand (the format is checked
by :func:`read_risk_cases`). The pipeline annotates the text end to end and the component
``clinical_risk_factors`` puts its reading into ``NoteRecord.risk_factors``; a record without it
(``None``) predicts ``unknown`` for every field and no observation. Scores:

- ``fields``: for each profile field (``smoking``, ``alcohol_use``, ``drug_use``, ``hypertension``,
  ``diabetes``, ``hyperlipidemia``, ``obesity``, ``family_history_premature_cad``), the accuracy over
  all cases and the confusion counts ``"gold -> predicted"`` (the diagonal included). A field the
  record leaves out (or sets to ``None``) is ``unknown``.
- ``bmi``: ``exact`` is the share of the cases whose gold BMI is a number where the predicted one
  equals it (within ``TOLERANCE``); ``false`` counts the cases whose gold BMI is null but that predict
  a number.
- ``observations``: P/R/F1 over ``(kind, value, unit)`` triples per case, as multisets (a triple stated
  twice must be found twice; values equal within ``TOLERANCE``), overall (``micro``) and per kind.
- ``rejected``: how many of the hand-marked snippets that are *not* observations (a date that looks
  like a blood pressure, a reference range) overlap the ``[start, end)`` of a predicted observation.
  It must be 0.
- ``smoking_detail`` and ``alcohol_detail``: for the cases that give them, per key the accuracy over
  the keys whose gold value is not null (values equal within ``TOLERANCE``).
- ``demographics``: age and sex accuracy over the cases that state them.

``mismatches`` lists every wrong field of every case (``id``, ``field``, ``gold``, ``predicted``) for
tuning on the dev file: profile fields, BMI, details and demographics as values, observations as the
missed (``gold``) and spurious (``predicted``) triples of the case, and each rejected snippet that a
predicted observation overlaps with that observation's text.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nlp.evaluation.common import read_case_file, report_header
from nlp.evaluation.ner import Counts
from nlp.records import NoteRecord

if TYPE_CHECKING:
    from nlp.pipeline import Pipeline

Offsets = tuple[int, int]
Observation = tuple[str, float, str]  # (kind, value, unit)
PredictedTriple = tuple[str, float | None, str | None]  # value None: not a number

TOLERANCE = 1e-6  # numbers closer than this are equal
UNKNOWN = "unknown"
PRESENCE = ("present", "absent", UNKNOWN)
YES_NO = ("yes", "no", UNKNOWN)
# the categorical fields a case scores and the values each may take
FIELD_VALUES: dict[str, tuple[str, ...]] = {
    "smoking": ("current", "former", "never", UNKNOWN),
    "alcohol_use": YES_NO,
    "drug_use": YES_NO,
    "hypertension": PRESENCE,
    "diabetes": PRESENCE,
    "hyperlipidemia": PRESENCE,
    "obesity": PRESENCE,
    "family_history_premature_cad": PRESENCE,
}
SMOKING_DETAIL_KEYS = ("packs_per_day", "years", "pack_years", "quit_year")
ALCOHOL_DETAIL_KEYS = ("drinks_per_week",)
DEMOGRAPHIC_KEYS = ("age", "sex")
SEXES = ("male", "female")

# drug_use is a key of the case, beside the profile (the record keeps it in the profile)
_PROFILE_KEYS = {*FIELD_VALUES, "bmi"} - {"drug_use"}
_REQUIRED_KEYS = {"id", "text", "profile", "drug_use", "observations", "rejected", "demographics"}
_CASE_KEYS = _REQUIRED_KEYS | {"smoking_detail", "alcohol_detail", "form"}
_OBSERVATION_KEYS = {"kind", "value", "unit"}


@dataclass(frozen=True)
class RiskCase:
    """One hand-written case: a note fragment and the risk-factor profile it states."""

    id: str
    text: str
    fields: dict[str, str]  # every key of FIELD_VALUES
    bmi: float | None
    smoking_detail: dict[str, float | None] | None  # None: the case does not score smoking details
    alcohol_detail: dict[str, float | None] | None
    observations: tuple[Observation, ...]
    rejected: tuple[Offsets, ...]  # snippets that must not become observations
    demographics: dict[str, Any]  # the stated ones of DEMOGRAPHIC_KEYS
    form: str | None


@dataclass(frozen=True)
class PredictedObservation:
    """An observation of ``record.risk_factors``: the triple scored and where it was read."""

    triple: PredictedTriple
    span: Offsets | None
    text: str | None


@dataclass(frozen=True)
class RiskPrediction:
    """What a record says about the fields a case scores (``unknown`` / ``None`` where it says nothing)."""

    fields: dict[str, str]
    bmi: Any
    smoking_detail: dict[str, Any]
    alcohol_detail: dict[str, Any]
    observations: tuple[PredictedObservation, ...]
    demographics: dict[str, Any]


@dataclass
class ObservationMatch:
    """One case's observations: counts per kind, and the gold triples missed and predicted ones spurious."""

    counts: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    missed: list[Observation] = field(default_factory=list)
    spurious: list[PredictedTriple] = field(default_factory=list)


@dataclass
class Accuracy:
    """Right answers over scored items."""

    right: int = 0
    cases: int = 0

    def add(self, correct: bool) -> None:
        self.right += correct
        self.cases += 1

    def scores(self) -> dict[str, Any]:
        """``accuracy`` (None when nothing was scored) and ``cases``."""
        return {"accuracy": _ratio(self.right, self.cases), "cases": self.cases}


# ------------------------------------------------------------------------------------ case files
def read_risk_cases(path: str | os.PathLike[str]) -> list[RiskCase]:
    """The cases of a ``.jsonl`` risk-factor case file.

    Args:
        path: the case file, one JSON object a line (blank lines skipped).

    Raises:
        InputError: ``unreadable_input`` if the file cannot be read as UTF-8; ``malformed_record``
            (``path:line: ...``) for a line that is not a valid case or repeats an id, or a file
            without cases. The messages name keys, never the note text.
    """
    return read_case_file(path, _case)


# --------------------------------------------------------------------------------------- scoring
def risk_prediction(record: NoteRecord) -> RiskPrediction:
    """Read ``record.risk_factors`` (see ``clinical_risk_factors``) into the fields a case scores."""
    risk = record.risk_factors or {}
    profile = risk.get("profile") or {}
    return RiskPrediction(
        fields={name: profile.get(name) or UNKNOWN for name in FIELD_VALUES},
        bmi=profile.get("bmi"),
        smoking_detail=dict(risk.get("smoking_detail") or {}),
        alcohol_detail=dict(risk.get("alcohol_detail") or {}),
        observations=tuple(_predicted_observation(o) for o in risk.get("observations") or ()),
        demographics=dict(risk.get("demographics") or {}),
    )


def match_observations(gold: Sequence[Observation], predicted: Sequence[PredictedTriple]) -> ObservationMatch:
    """Multiset matching of one case's ``(kind, value, unit)`` triples.

    Each gold triple takes the first unused predicted triple of the same kind and unit whose value
    is within ``TOLERANCE``; a predicted triple matches at most one gold triple.
    """
    match = ObservationMatch()
    free = list(predicted)
    for kind, value, unit in gold:
        counts = match.counts[kind]
        counts.gold += 1
        hit = next(
            (i for i, (k, v, u) in enumerate(free) if k == kind and u == unit and _equal(v, value)), None
        )
        if hit is None:
            match.missed.append((kind, value, unit))
        else:
            free.pop(hit)
            counts.tp_gold += 1
            counts.tp_pred += 1
    for kind, _, _ in predicted:
        match.counts[kind].pred += 1
    match.spurious = free
    return match


@dataclass
class RiskTally:
    """Scores accumulated over cases, and the wrong fields of each (see the module doc)."""

    accuracy: dict[str, Accuracy] = field(default_factory=lambda: defaultdict(Accuracy))  # "field" / "a.b"
    confusion: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    bmi_false: int = 0
    bmi_null: int = 0
    observations: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    rejected: Counter[str] = field(default_factory=Counter)
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    def add_case(self, case: RiskCase, predicted: RiskPrediction) -> None:
        """Score one case's prediction."""
        for name, gold in case.fields.items():
            self._check(case, name, gold, predicted.fields[name])
            self.confusion[name][f"{gold} -> {predicted.fields[name]}"] += 1
        if case.bmi is not None:
            self._check(case, "bmi", case.bmi, predicted.bmi, numeric=True)
        else:
            self.bmi_null += 1
            if _number(predicted.bmi) is not None:
                self.bmi_false += 1
                self.mismatches.append(_mismatch(case, "bmi", None, predicted.bmi))
        for detail, given, got in (
            ("smoking_detail", case.smoking_detail, predicted.smoking_detail),
            ("alcohol_detail", case.alcohol_detail, predicted.alcohol_detail),
        ):
            for key, number in (given or {}).items():
                if number is not None:
                    self._check(case, f"{detail}.{key}", number, got.get(key), numeric=True)
        for key, value in case.demographics.items():
            self._check(
                case, f"demographics.{key}", value, predicted.demographics.get(key), numeric=key == "age"
            )
        match = match_observations(case.observations, [o.triple for o in predicted.observations])
        for kind, counts in match.counts.items():
            self.observations[kind].add(counts)
        if match.missed or match.spurious:
            missed, spurious = [list(t) for t in match.missed], [list(t) for t in match.spurious]
            self.mismatches.append(_mismatch(case, "observations", missed, spurious))
        self.rejected["snippets"] += len(case.rejected)
        self.rejected["cases"] += bool(case.rejected)
        for start, end in case.rejected:
            hit = next(
                (o for o in predicted.observations if o.span and _overlaps((start, end), o.span)), None
            )
            if hit is not None:
                self.rejected["overlapping"] += 1
                self.mismatches.append(_mismatch(case, "rejected", case.text[start:end], hit.text))

    def scores(self) -> dict[str, Any]:
        """The ``scores`` block of the report."""
        micro = Counts()
        for counts in self.observations.values():
            micro.add(counts)
        bmi = self.accuracy["bmi"]
        return {
            "fields": {
                name: {
                    **self.accuracy[name].scores(),
                    "confusion": dict(sorted(self.confusion[name].items())),
                }
                for name in FIELD_VALUES
            },
            "bmi": {
                "exact": bmi.scores()["accuracy"],
                "cases": bmi.cases,
                "false": self.bmi_false,
                "null_cases": self.bmi_null,
            },
            "observations": {
                "micro": micro.scores(),
                "kinds": {kind: self.observations[kind].scores() for kind in sorted(self.observations)},
            },
            "rejected": {key: self.rejected[key] for key in ("overlapping", "snippets", "cases")},
            "smoking_detail": self._group("smoking_detail", SMOKING_DETAIL_KEYS),
            "alcohol_detail": self._group("alcohol_detail", ALCOHOL_DETAIL_KEYS),
            "demographics": self._group("demographics", DEMOGRAPHIC_KEYS),
        }

    def _check(self, case: RiskCase, name: str, gold: Any, got: Any, *, numeric: bool = False) -> None:
        right = _equal(_number(got), gold) if numeric else got == gold
        self.accuracy[name].add(right)
        if not right:
            self.mismatches.append(_mismatch(case, name, gold, got))

    def _group(self, group: str, keys: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        return {key: self.accuracy[f"{group}.{key}"].scores() for key in keys}


def evaluate_risk_cases(
    pipe: Pipeline, path: str | os.PathLike[str], *, limit: int | None = None
) -> dict[str, Any]:
    """Score ``pipe`` on a risk-factor case file (see the module doc).

    Args:
        pipe: a loaded pipeline (``nlp.load(name)``); one without ``clinical_risk_factors`` scores
            every field as ``unknown``.
        path: the case file (``tests/fixtures/risk/dev.jsonl`` for tuning).
        limit: score only the first ``limit`` cases.

    Returns:
        The report header (:func:`nlp.evaluation.common.report_header`) with ``scores`` and
        ``mismatches``.

    Raises:
        InputError: the case file cannot be read or a line is not a valid case.
    """
    cases = read_risk_cases(path)[:limit]
    tally = RiskTally()
    started = time.perf_counter()
    for case in cases:
        tally.add_case(case, risk_prediction(pipe.annotate(case.text, note_id=case.id)))
    elapsed = time.perf_counter() - started
    report = report_header("risk", pipe, str(path), None, len(cases), [c.text for c in cases], elapsed)
    report["scores"] = tally.scores()
    report["mismatches"] = tally.mismatches
    return report


def format_table(report: dict[str, Any]) -> list[list[Any]]:
    """Rows ``[score, value, cases]`` for the CLI (``value`` None where nothing was scored).

    ``cases`` is how many cases a row is over: all of them for the fields and the observations, those
    with a numeric gold BMI for ``bmi exact`` (a null one for ``bmi false``), those with rejected
    snippets for ``rejected overlapping`` and, for details and demographics, those stating the value.
    """
    scores = report["scores"]
    documents = report["documents"]
    rows: list[list[Any]] = [
        [f"{name} accuracy", s["accuracy"], s["cases"]] for name, s in scores["fields"].items()
    ]
    rows.append(["bmi exact", scores["bmi"]["exact"], scores["bmi"]["cases"]])
    rows.append(["bmi false", scores["bmi"]["false"], scores["bmi"]["null_cases"]])
    micro = scores["observations"]["micro"]
    rows.extend([f"observations {name}", micro[name], documents] for name in ("precision", "recall", "f1"))
    rows.append(["rejected overlapping", scores["rejected"]["overlapping"], scores["rejected"]["cases"]])
    for detail in ("smoking_detail", "alcohol_detail", "demographics"):
        rows.extend([f"{detail}.{key}", s["accuracy"], s["cases"]] for key, s in scores[detail].items())
    return rows


# --------------------------------------------------------------------------------------- helpers
def _case(raw: Any) -> RiskCase:
    if not isinstance(raw, dict):
        raise ValueError("a case is a JSON object")
    if set(raw) - _CASE_KEYS or not set(raw) >= _REQUIRED_KEYS:
        raise ValueError(
            f"a case needs {sorted(_REQUIRED_KEYS)} and may have {sorted(_CASE_KEYS - _REQUIRED_KEYS)}"
        )
    text = raw["text"]
    if not isinstance(raw["id"], str) or not raw["id"] or not isinstance(text, str) or not text.strip():
        raise ValueError("id and text are non-empty strings")
    profile = raw["profile"]
    if not isinstance(profile, dict) or set(profile) != _PROFILE_KEYS:
        raise ValueError(f"profile keys are {sorted(_PROFILE_KEYS)}")
    values = {name: profile[name] for name in _PROFILE_KEYS - {"bmi"}} | {"drug_use": raw["drug_use"]}
    for name, value in values.items():
        if value not in FIELD_VALUES[name]:
            raise ValueError(f"{name} is one of {FIELD_VALUES[name]}")
    if profile["bmi"] is not None and _number(profile["bmi"]) is None:
        raise ValueError("profile bmi is a number or null")
    observations = []
    for item in _list(raw["observations"], "observations"):
        if not isinstance(item, dict) or set(item) != _OBSERVATION_KEYS:
            raise ValueError(f"an observation has exactly the keys {sorted(_OBSERVATION_KEYS)}")
        value = _number(item["value"])
        if value is None or not _text(item["kind"]) or not _text(item["unit"]):
            raise ValueError("an observation's kind and unit are non-empty strings and its value a number")
        observations.append((item["kind"], value, item["unit"]))
    rejected = []
    for snippet in _list(raw["rejected"], "rejected"):
        if not _text(snippet) or text.count(snippet) != 1:
            raise ValueError("each rejected snippet occurs exactly once in the text")
        start = text.index(snippet)
        rejected.append((start, start + len(snippet)))
    demographics = raw["demographics"]
    if not isinstance(demographics, dict) or set(demographics) - set(DEMOGRAPHIC_KEYS):
        raise ValueError(f"demographics keys are some of {DEMOGRAPHIC_KEYS}")
    age = demographics.get("age")
    if "age" in demographics and (isinstance(age, bool) or not isinstance(age, int) or age < 0):
        raise ValueError("demographics age is an integer")
    if "sex" in demographics and demographics["sex"] not in SEXES:
        raise ValueError(f"demographics sex is one of {SEXES}")
    if raw.get("form") is not None and not _text(raw["form"]):
        raise ValueError("form is a non-empty string")
    return RiskCase(
        id=raw["id"],
        text=text,
        fields={name: values[name] for name in FIELD_VALUES},
        bmi=_number(profile["bmi"]),
        smoking_detail=_detail(raw, "smoking_detail", SMOKING_DETAIL_KEYS),
        alcohol_detail=_detail(raw, "alcohol_detail", ALCOHOL_DETAIL_KEYS),
        observations=tuple(observations),
        rejected=tuple(rejected),
        demographics=dict(demographics),
        form=raw.get("form"),
    )


def _detail(raw: dict[str, Any], name: str, keys: tuple[str, ...]) -> dict[str, float | None] | None:
    detail = raw.get(name)
    if detail is None:
        return None
    if not isinstance(detail, dict) or set(detail) - set(keys):
        raise ValueError(f"{name} keys are some of {keys}")
    for key, value in detail.items():
        if value is not None and _number(value) is None:
            raise ValueError(f"{name} {key} is a number or null")
    return {key: _number(value) for key, value in detail.items()}


def _list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{name} is a list")
    return value


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _number(value: Any) -> float | None:
    """``value`` as a float if it is a finite JSON number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _equal(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) < TOLERANCE


def _overlaps(a: Offsets, b: Offsets) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _predicted_observation(item: dict[str, Any]) -> PredictedObservation:
    start, end = item.get("start"), item.get("end")
    return PredictedObservation(
        triple=(str(item.get("kind")), _number(item.get("value")), item.get("unit")),
        span=(start, end) if isinstance(start, int) and isinstance(end, int) else None,
        text=item.get("text"),
    )


def _mismatch(case: RiskCase, name: str, gold: Any, predicted: Any) -> dict[str, Any]:
    return {"id": case.id, "field": name, "gold": gold, "predicted": predicted}
