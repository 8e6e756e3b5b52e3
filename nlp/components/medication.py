"""Medication attributes by rule: strength, dose, route, frequency, duration, PRN and its reason.

For each DRUG or DRUG_CLASS mention the attributes are read from the text that follows it in
the same sentence and line, up to the next drug ("metformin 1000 mg PO BID, lisinopril 10mg
daily"). Each attribute keeps its exact text and offsets plus a normalised value (UCUM unit,
SNOMED route, HL7 timing code). Vocabulary: ``resources/en/medication.json``.
"""

import re
from dataclasses import dataclass
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc, Span

from nlp import resources
from nlp.components.lexicon import SPAN_GROUP
from nlp.components.sentences import sentence_ends

MED_LABELS = {"DRUG", "DRUG_CLASS"}
WINDOW_CHARS = 90
_NUM = r"\d+(?:\.\d+)?|\.\d+"
_WORD_NUMS = {"one": 1, "two": 2, "three": 3, "four": 4, "half": 0.5, "1/2": 0.5}


def _alternation(patterns: list[str]) -> str:
    return "|".join(f"(?:{p})" for p in sorted(patterns, key=len, reverse=True))


def _bounded(alternation: str) -> str:
    return rf"(?<![\w/.])(?:{alternation})(?![\w/])"


@dataclass(frozen=True)
class MedicationRules:
    strength: re.Pattern[str]
    dose: re.Pattern[str]
    routes: list[tuple[re.Pattern[str], str | None, str]]
    frequencies: list[tuple[re.Pattern[str], str | None, str]]
    prn: re.Pattern[str]
    duration: re.Pattern[str]
    units: dict[str, str]
    dose_forms: dict[str, str]
    duration_units: dict[str, str]

    @classmethod
    def from_resources(cls) -> "MedicationRules":
        spec = resources.load("medication")
        units = _alternation([re.escape(u) for u in spec.units])
        forms = _alternation([re.escape(f) for f in spec.dose_forms])
        dur_units = _alternation([re.escape(u) for u in spec.duration_units])
        nums = _alternation([*(re.escape(w) for w in _WORD_NUMS), _NUM])
        return cls(
            strength=re.compile(
                rf"(?<![\w.])(?P<value>{_NUM})(?:\s*(?:-|to)\s*(?P<high>{_NUM}))?\s*(?P<unit>{units})(?![\w])",
                re.I,
            ),
            dose=re.compile(rf"(?<![\w.])(?P<value>{nums})\s*(?P<form>{forms})(?![\w])", re.I),
            routes=[
                (re.compile(_bounded(p), re.I), e.code, e.display) for e in spec.routes for p in e.patterns
            ],
            frequencies=[
                (re.compile(_bounded(p), re.I), e.code, e.display)
                for e in spec.frequencies
                for p in e.patterns
            ],
            prn=re.compile(
                _bounded(_alternation(spec.prn))
                + r"(?:\s+(?:for\s+)?(?P<reason>[a-z][a-z '/-]{2,40}?))?"
                + r"(?=\s*(?:[,.;)\n]|$|\b(?:and|or|max|not)\b))",
                re.I,
            ),
            duration=re.compile(
                rf"(?<![\w])(?:x|for|times|over)\s*(?P<value>\d+)\s*(?:more\s+|additional\s+)?(?P<unit>{dur_units})(?![\w])",
                re.I,
            ),
            units={k.lower(): v for k, v in spec.units.items()},
            dose_forms={k.lower(): v for k, v in spec.dose_forms.items()},
            duration_units={k.lower(): v for k, v in spec.duration_units.items()},
        )

    def extract(self, text: str, offset: int) -> dict[str, dict[str, Any]]:
        """Attributes found in ``text`` (which starts at character ``offset`` of the note)."""
        found: dict[str, dict[str, Any]] = {}

        def at(m: re.Match[str], group: int | str = 0) -> dict[str, Any]:
            return {"text": m.group(group), "start": offset + m.start(group), "end": offset + m.end(group)}

        if (m := self.strength.search(text)) and m.start() <= 40:
            found["strength"] = {
                **at(m),
                "value": float(m["value"]),
                "unit": self.units[m["unit"].lower()],
                **({"high": float(m["high"])} if m["high"] else {}),
            }
        if (m := self.dose.search(text)) and m.start() <= 50:
            value = m["value"].lower()
            found["dose"] = {
                **at(m),
                "value": float(_WORD_NUMS.get(value, value)),
                "unit": self.dose_forms[m["form"].lower()],
            }
        for label, table in (("route", self.routes), ("frequency", self.frequencies)):
            best = None
            for pattern, code, display in table:
                m = pattern.search(text)
                if m and (best is None or (m.start(), -m.end()) < (best[0].start(), -best[0].end())):
                    best = (m, code, display)
            if best:
                m, code, display = best
                groups = {k: v for k, v in m.groupdict().items() if v}
                found[label] = {
                    **at(m),
                    "code": code,
                    "display": display.format(**groups) if groups else display,
                }
        if m := self.prn.search(text):
            found["prn"] = {**at(m), "value": True}
            if m["reason"] and m["reason"].strip():
                reason = m["reason"].rstrip()
                found["indication"] = {
                    "text": reason,
                    "start": offset + m.start("reason"),
                    "end": offset + m.start("reason") + len(reason),
                }
        if m := self.duration.search(text):
            found["duration"] = {
                **at(m),
                "value": int(m["value"]),
                "unit": self.duration_units[m["unit"].lower()],
            }
        return found


class MedicationAttributes:
    """Sets ``span._.med_attrs`` on every medication mention."""

    def __init__(self, rules: MedicationRules) -> None:
        self.rules = rules

    def __call__(self, doc: Doc) -> Doc:
        if SPAN_GROUP not in doc.spans:
            return doc
        spans = list(doc.spans[SPAN_GROUP])
        text, sent_ends = doc.text, sentence_ends(doc)
        for k, span in enumerate(spans):
            if span.label_ not in MED_LABELS:
                continue
            span._.med_attrs = self.rules.extract(*self._window(text, sent_ends, span, spans[k + 1 :]))
        return doc

    @staticmethod
    def _window(text: str, sent_ends: list[int], span: Span, following: list[Span]) -> tuple[str, int]:
        start = span.end_char
        end = min(len(text), start + WINDOW_CHARS, sent_ends[span.end - 1])
        newline = text.find("\n", start, end)
        if newline != -1:
            end = newline
        for other in following:
            if other.label_ in MED_LABELS and other.start_char >= start:
                end = min(end, other.start_char)
                break
        return text[start:end], start


@Language.factory("clinical_medication", assigns=["span._.med_attrs"])
def make_clinical_medication(nlp: Language, name: str) -> MedicationAttributes:
    return MedicationAttributes(MedicationRules.from_resources())
