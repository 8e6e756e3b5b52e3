"""Allergy entries: which mentions are allergies, of what kind, and which reactions belong to them.

A substance mention (DRUG, DRUG_CLASS, or an ALLERGEN from :mod:`nlp.components.allergens`) is an
allergy entry when it stands in the allergies section, or in an inline statement: after a cue
("allergic to PCN and sulfa", "intolerant of codeine") or before one ("latex allergy",
"PCN-allergic"). Each entry gets ``span._.allergy``: its AllergyIntolerance ``category``
(medication, food, environment) and the cue that made it one. Its reactions become
``allergy_reaction`` relations in ``doc._.relations``: in the section, a PROBLEM on the same line
before the next substance ("Penicillin (hives)", "codeine: nausea, vomiting"); inline, the
PROBLEMs right after the substance ("allergic to PCN (hives)", "sulfa - rash"). The FHIR mapping
turns entries into ``AllergyIntolerance`` with their reactions, never into MedicationStatements.
Cue words live in ``resources/en/allergens.json``.
"""

import re
from dataclasses import dataclass

from spacy.language import Language
from spacy.tokens import Doc, Span

from nlp import resources
from nlp.components.lexicon import SPAN_GROUP
from nlp.records import ALLERGY_SECTIONS

SUBSTANCE_LABELS = frozenset({"DRUG", "DRUG_CLASS", "ALLERGEN"})
RELATION = "allergy_reaction"
_CUE_REACH = 80  # how far before a substance an inline cue may stand
_REACTION_REACH = 60  # how far after a substance its inline reactions may stand


@dataclass(frozen=True)
class AllergyCues:
    """The compiled cue patterns of ``allergens.json``."""

    before: re.Pattern[str]
    after: re.Pattern[str]
    reaction_lead: re.Pattern[str]
    separator: re.Pattern[str]

    @classmethod
    def from_resources(cls) -> "AllergyCues":
        spec = resources.load("allergens")
        before = "|".join(re.escape(c) for c in sorted(spec.cues_before, key=len, reverse=True))
        after = "|".join(re.escape(c) for c in sorted(spec.cues_after, key=len, reverse=True))
        return cls(
            before=re.compile(rf"(?<![\w-])(?:{before})\s*(?:the\s+|any\s+)?$", re.IGNORECASE),
            after=re.compile(rf"\s*(?:{after})(?![\w])", re.IGNORECASE),
            reaction_lead=re.compile(spec.reaction_lead, re.IGNORECASE),
            separator=re.compile(spec.list_separator, re.IGNORECASE),
        )

    def inline(
        self, text: str, span: Span, previous: tuple[Span, tuple[int, int]] | None
    ) -> tuple[int, int] | None:
        """The offsets of the cue that makes ``span`` an inline allergy entry, if any.

        ``previous`` is the inline entry before it in the sentence, with its cue: a list continues
        the statement ("allergic to PCN (hives), sulfa and codeine").
        """
        line_start = max(text.rfind("\n", 0, span.start_char) + 1, span.sent.start_char)
        if m := self.before.search(text, max(line_start, span.start_char - _CUE_REACH), span.start_char):
            return m.start(), m.end()
        if (
            previous is not None
            and previous[0].sent == span.sent
            and self.separator.fullmatch(text, previous[0].end_char, span.start_char)
        ):
            return previous[1]
        line_end = text.find("\n", span.end_char)
        if m := self.after.match(text, span.end_char, line_end if line_end != -1 else len(text)):
            return m.start(), m.end()
        return None

    def entries(self, text: str, spans: list[Span]) -> dict[Span, tuple[int, int] | None]:
        """The allergy entries among ``spans`` (substances in text order) with their cue offsets
        (``None`` for an entry of the allergies section)."""
        found: dict[Span, tuple[int, int] | None] = {}
        previous: tuple[Span, tuple[int, int]] | None = None
        starts = {span: _section_start(span) for span in spans if span._.section_category in ALLERGY_SECTIONS}
        ends = _one_line_sections(text, starts)
        for span in spans:
            if span in starts and span.start_char < ends.get(starts[span], len(text)):
                found[span] = None
                continue
            cue = self.inline(text, span, previous)
            if cue is not None:
                found[span] = cue
                previous = (span, cue)
        return found


# a header line whose list goes on ("Allergies: penicillin (hives),")
_CONTINUES = re.compile(r"(?:[,;/&+]|\band|\bor)$", re.IGNORECASE)


def _section_start(span: Span) -> int:
    """Where the section that holds ``span`` starts (its header), -1 without one."""
    doc = span.doc
    starts = [doc[s.section_span[0]].idx for s in doc._.sections or () if s.section_span[0] <= span.start]
    return max(starts, default=-1)


def _one_line_sections(text: str, starts: dict[Span, int]) -> dict[int, int]:
    """Allergy sections written on their header's line ("ALLERGIES: PCN (hives), codeine.") end
    there: the next line ("DISCONTINUE GLYBURIDE.") is no allergy. ``starts``: each allergy-section
    substance's section start; returns, by section start, the header line's end."""
    ends: dict[int, int] = {}
    for span, start in starts.items():
        header_line_end = text.find("\n", start)
        if start < 0 or start in ends or header_line_end == -1 or span.start_char >= header_line_end:
            continue
        line = text[start:header_line_end].rstrip()
        ends[start] = len(text) if _CONTINUES.search(line) else header_line_end
    return ends


class AllergyEntries:
    """Sets ``span._.allergy`` on allergy entries and links their reactions."""

    def __init__(self, cues: AllergyCues) -> None:
        self.cues = cues

    def __call__(self, doc: Doc) -> Doc:
        if SPAN_GROUP not in doc.spans:
            return doc
        text = doc.text
        spans = sorted(doc.spans[SPAN_GROUP], key=lambda s: s.start_char)
        entries = self.cues.entries(text, [s for s in spans if s.label_ in SUBSTANCE_LABELS])
        relations = list(doc._.relations)
        substance: Span | None = None  # the last allergy-section substance of the line
        for i, span in enumerate(spans):
            if span in entries:
                cue = entries[span]
                span._.allergy = {
                    "category": (span._.allergy or {}).get("category", "medication"),
                    "context": "inline" if cue else "section",
                    "cue_start": cue[0] if cue else None,
                    "cue_end": cue[1] if cue else None,
                }
                substance = None if cue else span
                if cue:
                    relations += self._inline_reactions(text, span, cue, spans[i + 1 :])
            elif span.label_ in SUBSTANCE_LABELS:
                substance = None
            elif span.label_ == "PROBLEM" and substance is not None:
                if "\n" in text[substance.end_char : span.start_char]:
                    substance = None
                    continue
                relations.append(_relation(substance, span, "rule:allergy_line"))
        doc._.relations = relations
        return doc

    def _inline_reactions(
        self, text: str, substance: Span, cue: tuple[int, int], following: list[Span]
    ) -> list[tuple]:
        """The PROBLEMs right after an inline entry or its cue: "PCN (hives, swelling)", "sulfa -
        rash", "PCN allergy - hives"."""
        found: list[tuple] = []
        end = cue[1] if cue[0] >= substance.end_char else substance.end_char
        for span in following:
            if span.start_char < end:
                continue  # the cue itself ("allergy")
            if span.label_ in SUBSTANCE_LABELS or span.start_char - substance.end_char > _REACTION_REACH:
                break
            if span.label_ != "PROBLEM" or span.sent != substance.sent:
                break
            gap = text[end : span.start_char]
            lead = self.cues.reaction_lead if not found else _REACTION_LIST
            if not lead.fullmatch(gap):
                break
            found.append(_relation(substance, span, "rule:allergy_inline"))
            end = span.end_char
        return found


_REACTION_LIST = re.compile(r"\s*(?:,|/|;|&|\band\b|\bor\b|, and|, or)\s*", re.IGNORECASE)


def _relation(substance: Span, reaction: Span, method: str) -> tuple:
    return (
        RELATION,
        (substance.start_char, substance.end_char),
        (reaction.start_char, reaction.end_char),
        1.0,
        method,
    )


@Language.factory("clinical_allergies", requires=["doc.spans"], assigns=["span._.allergy", "doc._.relations"])
def make_clinical_allergies(nlp: Language, name: str) -> AllergyEntries:
    return AllergyEntries(AllergyCues.from_resources())
