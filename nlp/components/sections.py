"""Section detection: medspaCy's Sectionizer driven by ``sections.json``.

A header must start a line and end with ``:`` or a line break, which avoids medspaCy's
default false headers in mid-sentence ("No known drug allergies otherwise."). Section
categories reach mentions through medspaCy's ``token._.section_category``.
"""

import bisect
import re

from medspacy.section_detection import Sectionizer, SectionRule
from spacy.language import Language
from spacy.tokens import Doc

from nlp import resources
from nlp.components.windowed_matching import WindowedMatcher

# the token after the header words: a colon (optionally with a dash) or a line break
_HEADER_END = {"TEXT": {"REGEX": r"^(?::|:-|-|\s*\n\s*)$"}}
_QUALIFIER = [{"ORTH": "("}, {"TEXT": {"REGEX": r"^[^\n()]+$"}, "OP": "{1,6}"}, {"ORTH": ")"}]


def section_rules(nlp: Language) -> list[SectionRule]:
    """One SectionRule per header variant in ``sections.json``."""
    spec = resources.load("sections")
    rules = []
    for category, headers in spec.sections.items():
        for header in headers:
            words = [{"LOWER": t.lower_} for t in nlp.tokenizer(header)]
            rules.append(SectionRule(header, category, pattern=[*words, _HEADER_END]))
            # "Home Medications (verified):", "Labs (drawn 04/09/2025):"
            # (medspaCy keys rules by literal, so the variant needs its own)
            rules.append(SectionRule(f"{header} (…)", category, pattern=[*words, *_QUALIFIER, _HEADER_END]))
    return rules


def pattern_length(pattern: list[dict]) -> int:
    """The most tokens a token pattern can match (``{m,n}`` counts n, ``?`` 1)."""
    total = 0
    for token in pattern:
        op = token.get("OP", "")
        bounds = re.fullmatch(r"\{(\d*),?(\d*)\}", op)
        total += int(bounds.group(2) or bounds.group(1)) if bounds else 1
    return total


_LINE_BREAK = re.compile(r"[\n\r][\s]*")


def line_starts(doc: Doc) -> list[int]:
    """Indices of the tokens that start a line (the first token, and any after a line break)."""
    idx = doc.to_array("IDX").tolist()
    starts = [0]
    for m in _LINE_BREAK.finditer(doc.text):
        j = bisect.bisect_left(idx, m.end())
        if j < len(idx) and idx[j] == m.end() and j > starts[-1]:
            starts.append(j)
    return starts


class ClinicalSections:
    """Wraps :class:`medspacy.section_detection.Sectionizer` with the project's rules."""

    def __init__(self, nlp: Language, name: str) -> None:
        self._sectionizer = Sectionizer(
            nlp,
            name=f"{name}_medspacy",
            rules=None,
            require_start_line=True,
            input_span_type=None,
            span_attrs=None,
        )
        rules = section_rules(nlp)
        self._sectionizer.add(rules)
        # headers must start a line and cannot cross one: match a short window at each line start
        width = max(pattern_length(r.pattern) for r in rules)
        self._sectionizer._Sectionizer__matcher = WindowedMatcher(
            self._sectionizer._Sectionizer__matcher,
            lambda doc: [(i, min(len(doc), i + width)) for i in line_starts(doc)],
            anchored=True,
        )

    def __call__(self, doc: Doc) -> Doc:
        return self._sectionizer(doc)


@Language.factory("clinical_sections", assigns=["doc._.sections", "token._.section"])
def make_clinical_sections(nlp: Language, name: str) -> ClinicalSections:
    return ClinicalSections(nlp, name)
