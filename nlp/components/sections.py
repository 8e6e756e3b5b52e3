"""Section detection: medspaCy's Sectionizer driven by ``sections.json``.

A header must start a line and end with ``:`` or a line break, which avoids medspaCy's
default false headers in mid-sentence ("No known drug allergies otherwise."). Section
categories reach mentions through medspaCy's ``token._.section_category``.
"""

import bisect
import re

from medspacy.common.medspacy_matcher import MedspacyMatcher
from medspacy.common.util import prune_overlapping_matches
from medspacy.section_detection import Sectionizer, SectionRule
from spacy.language import Language
from spacy.tokens import Doc

from nlp import resources

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


class LineStartMatcher:
    """medspaCy's section matcher, tried only where a line starts.

    With ``require_start_line`` medspaCy matches the whole Doc and then drops every match that
    does not start a line; header patterns cannot cross a line break, so matching a short window
    at each line start gives the same headers at a fraction of the cost. spaCy's ``Matcher``
    returns offsets relative to a Span, its ``PhraseMatcher`` relative to the Doc.
    """

    def __init__(self, matcher: MedspacyMatcher, window: int) -> None:
        self.full = matcher  # the unrestricted matcher
        self.rule_map = matcher.rule_map
        self._prune = matcher._prune
        self._token = matcher._MedspacyMatcher__matcher  # type: ignore[attr-defined]
        self._phrase = matcher._MedspacyMatcher__phrase_matcher  # type: ignore[attr-defined]
        self._regex = matcher._MedspacyMatcher__regex_matcher  # type: ignore[attr-defined]
        self._window = window

    def __call__(self, doc: Doc) -> list[tuple[int, int, int]]:
        n = len(doc)
        starts = line_starts(doc) if n else []
        matches: list[tuple[int, int, int]] = []
        for start in starts:
            window = doc[start : min(n, start + self._window)]
            matches += [(m, s + start, e + start) for m, s, e in self._token(window) if s == 0]
            matches += [(m, s, e) for m, s, e in self._phrase(window) if s == start]
        if self._regex._patterns:
            matches += [m for m in self._regex(doc) if m[1] in set(starts)]
        return prune_overlapping_matches(matches) if self._prune else sorted(matches, key=lambda m: m[1:])


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
        window = max(pattern_length(r.pattern) for r in rules)
        self._sectionizer._Sectionizer__matcher = LineStartMatcher(
            self._sectionizer._Sectionizer__matcher, window
        )

    def __call__(self, doc: Doc) -> Doc:
        return self._sectionizer(doc)


@Language.factory("clinical_sections", assigns=["doc._.sections", "token._.section"])
def make_clinical_sections(nlp: Language, name: str) -> ClinicalSections:
    return ClinicalSections(nlp, name)
