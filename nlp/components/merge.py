"""Deterministic merge of model mentions into the lexicon's span group.

First the model's spans are cleaned (``model_mentions.json``): leading assertion cues, bullets and
"PRN" are trimmed ("denies chest pain" → "chest pain", so ConText still sees the cue); spans that
are a listed non-mention ("Cardiovascular", "RRR"), an identifier, touch a section header or are a
whole line in capitals ("TELEPHONE ENCOUNTER") are dropped; a DRUG span that names a lab analyte
("creatinine 1.2") becomes a TEST, or is dropped when no value follows; a DRUG span ends before how
the drug is given ("lithium prophylaxis" → "lithium"), a PROBLEM span before the body site of "in his
right arm", and no span ends with a preposition.

The lexicon knows codes; a model knows boundaries and words no vocabulary spells. For every model
span, in document order:

- no overlap with a kept mention: it is added (``source`` ``model:<name>``; the linker may code it);
- it overlaps a mention of another label, or of a label only the lexicon produces (DRUG_CLASS,
  NO_KNOWN_ALLERGY): dropped ("Sulfa drugs - rash" is a drug and its reaction, not one mention);
- it is longer than everything it overlaps and contains them all: it replaces them, and when it
  contains exactly one mention of its own label it keeps that mention's codes, flags and
  ``source`` (``model:<name>+lexicon:<...>``), so "worsening LE edema" keeps the code of "edema";
- otherwise (same extent, shorter, or crossing): the lexicon mention stays; when extent and label
  are the same its ``source`` gains ``+model``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import NamedTuple

from spacy.tokens import Doc, Span, Token

from nlp import resources
from nlp.components.lexicon import SPAN_GROUP
from nlp.components.medication import MedicationRules

_IDENTIFIER = re.compile(r"^[a-z]*-?\d{4,}$")
LEXICON_ONLY_LABELS = frozenset({"DRUG_CLASS", "NO_KNOWN_ALLERGY"})
_COPIED = ("codes", "chronic", "expansion", "char_range")


def merge_into_clinical(doc: Doc, found: Iterable[tuple[Span, float]], source: str) -> None:
    """Merge a model's ``(span, score)`` pairs into ``doc.spans["clinical"]``.

    The model's spans must carry no ``._`` values yet: spaCy keys span extensions by offsets and
    label, so setting ``source`` on a model span would overwrite a lexicon mention's of the same
    extent. Only the spans this function keeps get ``source`` and ``score``.
    """
    kept: list[Span] = list(doc.spans[SPAN_GROUP]) if SPAN_GROUP in doc.spans else []
    cleaned = clean_model_spans(doc, found)
    for candidate, score in sorted(cleaned, key=lambda f: (f[0].start, -f[0].end, f[0].label_)):
        overlapping = [s for s in kept if s.start < candidate.end and candidate.start < s.end]
        if not overlapping:
            _set(candidate, source, score)
            kept.append(candidate)
            continue
        if any(s.label_ in LEXICON_ONLY_LABELS or s.label_ != candidate.label_ for s in overlapping):
            continue  # "Sulfa drugs - rash": one model span over a drug and its reaction
        contains_all = all(candidate.start <= s.start and s.end <= candidate.end for s in overlapping)
        longer = all(len(candidate) > len(s) for s in overlapping)
        if contains_all and longer:
            same_label = [s for s in overlapping if s.label_ == candidate.label_]
            _set(candidate, source, score)
            if len(same_label) == 1:
                _inherit(candidate, same_label[0])
            kept = [s for s in kept if s not in overlapping]
            kept.append(candidate)
            continue
        for s in overlapping:
            if (s.start, s.end, s.label_) == (candidate.start, candidate.end, candidate.label_):
                s._.source = f"{s._.source}+model" if s._.source else source
    doc.spans[SPAN_GROUP] = sorted(kept, key=lambda s: (s.start, s.end, s.label_))


# a reaction the ADE tagger finds may be a "test" or "procedure" to the general NER ("elevated liver
# enzymes", "QT prolongation"); a drug is never a reaction
_ROLE_OVER = {
    "DRUG": frozenset({"DRUG", "DRUG_CLASS"}),
    "PROBLEM": frozenset({"PROBLEM", "TEST", "PROCEDURE"}),
}
ROLES = {"DRUG": "drug", "PROBLEM": "reaction"}
_ROLE_OF = {**ROLES, "DRUG_CLASS": "drug"}


def merge_roles(doc: Doc, found: Iterable[tuple[Span, float]], source: str) -> None:
    """Merge the ADE tagger's ``(span, score)`` pairs: its boundaries win, and it marks ``adr_role``.

    The tagger was trained on a corpus's drugs and reactions of adverse events, whose boundaries are
    the ones users of drug -> reaction pairs score against ("severe acidosis", not "acidosis"). For each
    tagged span: a mention of the same extent keeps its label and codes and gets the role; mentions
    it overlaps that can play its role (a DRUG or DRUG_CLASS for a drug; a PROBLEM, TEST or PROCEDURE
    for a reaction) are replaced by it, keeping the codes of the one it overlaps most; one of the same
    extent and another label is replaced, codes and all ("RTA" is not a drug); a span that would cut
    a mention's last words ("acute" of "acute kidney injury") marks that mention instead; a span over a
    mention of the other role ("ifosfamide" inside "ifosfamide-induced encephalopathy") is dropped
    and the drug and reaction mentions it covers get their roles instead.
    """
    kept: list[Span] = list(doc.spans[SPAN_GROUP]) if SPAN_GROUP in doc.spans else []
    for candidate, score in sorted(clean_model_spans(doc, found), key=lambda f: f[0].start):
        role, allowed = ROLES.get(candidate.label_), _ROLE_OVER.get(candidate.label_, frozenset())
        if role is None:
            continue
        overlapping = [s for s in kept if s.start < candidate.end and candidate.start < s.end]
        same = [s for s in overlapping if (s.start, s.end) == (candidate.start, candidate.end)]
        if same and same[0].label_ in allowed:
            same[0]._.adr_role = role
            same[0]._.source = f"{same[0]._.source}+{source}" if same[0]._.source else source
            continue
        head = [
            s
            for s in overlapping
            if s.label_ in allowed and s.start <= candidate.start and candidate.end < s.end
        ]
        if head:  # "acute" of "acute kidney injury": a span that drops the head word is not the tagger's best
            head[0]._.adr_role = role
            continue
        if same:  # the general NER's label was wrong ("RTA" a drug): the tagger's mention, uncoded
            kept.remove(same[0])
            overlapping.remove(same[0])
        if any(s.label_ not in allowed for s in overlapping):
            for s in overlapping:  # "ifosfamide-induced coma": the drug and the reaction inside it
                s._.adr_role = _ROLE_OF.get(s.label_)
            continue
        _set(candidate, source, score)
        if overlapping:
            closest = max(
                overlapping, key=lambda s: min(s.end, candidate.end) - max(s.start, candidate.start)
            )
            _inherit(candidate, closest)
            kept = [s for s in kept if s not in overlapping]
        candidate._.adr_role = role
        kept.append(candidate)
    doc.spans[SPAN_GROUP] = sorted(kept, key=lambda s: (s.start, s.end, s.label_))
    doc._.ade_tagged = True


def clean_model_spans(doc: Doc, found: Iterable[tuple[Span, float]]) -> list[tuple[Span, float]]:
    """Trim cues and punctuation off model spans, drop non-mentions, relabel lab analytes (see module doc)."""
    rules = _rules()
    headers = {
        i
        for section in getattr(doc._, "sections", None) or ()
        if section.title_span
        for i in range(section.title_span[0], section.title_span[1])
    }
    out = []
    for span, score in found:
        start, end = _trim(doc, span.start, span.end, rules.cues)
        if span.label_ != "PROBLEM":  # "PTT 31", "cholecystectomy 2012"; but "CKD stage 3" keeps its number
            while end - start > 1 and doc[end - 1].like_num:
                end -= 1
        if span.label_ == "DRUG":  # "Lactulose 10 g/15", "NORCO 5-325 MG": the strength is not the name
            end = next((i for i in range(start + 1, end) if rules.strength.match(doc.text, doc[i].idx)), end)
            # "lithium prophylaxis", "sodium nitroprusside infusion": the substance
            while end - start > 1 and doc[end - 1].lower_ in rules.drug_use:
                end -= 1
        if span.label_ == "PROBLEM":  # "atrophy in his right arm": the finding, not where it is
            pairs = range(start + 1, end - 1)
            end = next((i for i in pairs if (doc[i].lower_, doc[i + 1].lower_) in rules.site_openers), end)
        while end - start > 1 and doc[end - 1].lower_ in rules.trailing:  # "worsening of the dysesthesia in"
            end -= 1
        text = doc[start:end].text.lower() if start < end else ""
        if (
            not text
            or text in rules.not_mentions
            or tuple(text.split()) in rules.cues
            or _IDENTIFIER.match(text)
            or (span.label_ == "DRUG" and text.split()[-1] in rules.heading_words)
        ):
            continue
        if any(i in headers for i in range(start, end)) or _capital_line(doc, start, end):
            continue
        label = span.label_
        if label == "DRUG" and text in rules.forms:  # "senna 8.6 mg 2 tabs": a dose form is not a second drug
            continue
        if label == "DRUG" and rules.directions.fullmatch(text):  # "heparin 5000 units SQ q8h": nor a route
            continue
        if label == "DRUG" and text in rules.analytes:
            if not any(t.like_num for t in doc[end : end + 3]):
                continue
            label = "TEST"
        same = (start, end, label) == (span.start, span.end, span.label_)
        out.append((span if same else Span(doc, start, end, label), score))
    return out


def _trim(doc: Doc, start: int, end: int, cues: list[tuple[str, ...]]) -> tuple[int, int]:
    changed = True
    while changed and start < end:
        changed = False
        if _bare(doc[start]):
            start, changed = start + 1, True
            continue
        for cue in cues:
            n = len(cue)
            if end - start > n and tuple(t.lower_ for t in doc[start : start + n]) == cue:
                start, changed = start + n, True
                break
    while end > start and _bare(doc[end - 1]):
        end -= 1
    return start, end


def _bare(token: Token) -> bool:
    """Punctuation, a bullet, a table rule or space: nothing a mention starts or ends with."""
    return not any(c.isalnum() for c in token.text)


def _capital_line(doc: Doc, start: int, end: int) -> bool:
    """The span is a whole line written in capitals (a title, not a finding)."""
    text = doc[start:end].text
    if not text.isupper() or len(text) < 4:
        return False
    line_start = start == 0 or "\n" in doc[start - 1].text_with_ws
    rest = doc[end:]
    line_end = (
        end == len(doc) or "\n" in doc[end - 1].whitespace_ or rest[0].is_space and "\n" in rest[0].text
    )
    return line_start and line_end


class _Rules(NamedTuple):
    cues: list[tuple[str, ...]]
    not_mentions: frozenset[str]
    analytes: frozenset[str]
    forms: frozenset[str]
    strength: re.Pattern[str]
    drug_use: frozenset[str]
    site_openers: frozenset[tuple[str, ...]]
    trailing: frozenset[str]
    heading_words: frozenset[str]
    directions: re.Pattern[str]


@functools.cache
def _rules() -> _Rules:
    spec = resources.load("model_mentions")
    cues = sorted({tuple(c.lower().split()) for c in spec.leading_cues}, key=len, reverse=True)
    analytes = frozenset(t.lower() for t in [*spec.lab_analytes, *resources.load("lexicon_stoplist").terms])
    forms = frozenset(t.lower() for t in [*spec.formulations, *resources.load("medication").dose_forms])
    # the medication rules' strength: a number with a unit ("400 IU"), not one in a name ("interleukin 2")
    medication = MedicationRules.from_resources()
    strength = medication.strength
    # a route or a timing ("SQ", "INH", "QHS") said alone
    directions = re.compile(
        "|".join(
            re.sub(r"\(\?P<\w+>", "(?:", p.pattern)
            for p, _, _ in (*medication.routes, *medication.frequencies)
        ),
        re.IGNORECASE,
    )
    return _Rules(
        cues,
        frozenset(t.lower() for t in spec.not_mentions),
        analytes,
        forms,
        strength,
        drug_use=frozenset(w.lower() for w in spec.drug_use),
        site_openers=frozenset(tuple(w.lower().split()) for w in spec.site_openers),
        trailing=frozenset(w.lower() for w in spec.trailing_words),
        heading_words=frozenset(w.lower() for w in spec.heading_words),
        directions=directions,
    )


def _set(span: Span, source: str, score: float) -> None:
    span._.source = source
    span._.score = score


def _inherit(target: Span, source: Span) -> None:
    for attr in _COPIED:
        setattr(target._, attr, getattr(source._, attr))
    if source._.source:
        target._.source = f"{target._.source}+{source._.source}"
