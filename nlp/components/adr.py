"""Adverse drug reactions: which drug the note says caused which reaction.

A drug mention (DRUG, DRUG_CLASS) and a reaction mention (PROBLEM) in one sentence are an
``adverse_reaction`` pair in ``doc._.relations`` when the words between them match one of the
patterns in ``adr_rules.json`` ("statin-induced myalgias", "rash after starting amoxicillin",
"lisinopril was stopped due to cough", "intolerant of codeine: nausea"). Assertion decides first:
a reaction that is absent ("no bleeding on apixaban"), hypothetical ("may cause tendon rupture")
or about a relative is never attributed; a possible one ("likely X-induced Y") is, and FHIR keeps
its causality as Possible. An allergy entry ("allergic to PCN (hives)",
the allergies section) is left to :mod:`nlp.components.allergies`. The FHIR mapping turns each
pair into an ``AdverseEvent``. In notes, a pair whose drug is a class ("edema from the CCB") goes
to the member the note names ("began amlodipine"), from the class members of ``clinical_terms.json``.
The ``literature`` pipeline also attributes reported associations
(a hypothetical reaction: "X may cause Y") and reads "children" as a study population.

With a ``model`` (the ``fast`` and ``accurate`` pipelines use ``models/adr-minilm``, see
:mod:`nlp.relation_onnx`), every attributable pair of one sentence is also scored by the trained
pair classifier, and a pair at or above its threshold is kept with ``method`` ``model:<name>``;
a pair both find keeps the rule's id. The patterns stay the precise part, the model the broad one.
"""

import bisect
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from spacy.language import Language
from spacy.tokens import Doc, Span

from nlp import resources
from nlp.components.lexicon import SPAN_GROUP
from nlp.models import resolve_model_dir
from nlp.relation_onnx import OnnxPairClassifier

RELATION = "adverse_reaction"
DRUG_LABELS = frozenset({"DRUG", "DRUG_CLASS"})
REACTION_LABELS = frozenset({"PROBLEM"})
# a suspected reaction ("likely amiodarone-induced hypothyroidism") is attributed too: FHIR keeps
# its causality as Possible
ATTRIBUTABLE = frozenset({"present", "historical", "possible"})
# literature mode: a reported association ("X may cause Y", "Y possibly induced by X") is evidence too;
# the reaction's assertion says how firm it is
REPORTED = ATTRIBUTABLE | {"possible", "hypothetical"}
_BEFORE_CHARS = 40
_MODEL_SPAN_CHARS = 300  # the longest sentence stretch a scored pair may span
_CONJUNCTION = re.compile(r"\s*(,|and|or|with|/|&|, and|, or|\+|plus|-)\s*(associated\s+)?", re.IGNORECASE)


@dataclass(frozen=True)
class AdrPattern:
    """One compiled ``adr_rules.json`` pattern."""

    id: str
    drug_first: bool
    score: float
    between: re.Pattern[str]
    before: re.Pattern[str] | None
    not_chronic: bool


def adr_patterns() -> tuple[list[AdrPattern], int]:
    """The compiled patterns and the longest gap they may span, from ``adr_rules.json``."""
    spec = resources.load("adr_rules")
    qualifiers = "|".join(re.escape(q) for q in sorted(spec.qualifiers, key=len, reverse=True))
    lead = rf"\s*(?:[,(]\s*)?(?:(?:{qualifiers})\s+)*"
    # after a reaction: "Hyperkalemia (K 6.1) due to", "photosensitivity reaction from", "rash on the arms"
    after_reaction = (
        r"(?:\s*\([^()\n]{0,30}\))?"
        r"(?:\s+(?:reaction|reactions|syndrome|episode|episodes|event))?"
        r"(?:\s+(?:of|in|on|to|over)\s+(?:the\s+|his\s+|her\s+|both\s+)?[\w-]+(?:\s+[\w-]+)?)?"
    )
    patterns = [
        AdrPattern(
            id=p.id,
            drug_first=p.order == "drug_first",
            score=p.score,
            between=re.compile(("" if p.order == "drug_first" else after_reaction) + lead + p.between, re.I),
            before=re.compile(p.before, re.IGNORECASE) if p.before else None,
            not_chronic=p.not_chronic,
        )
        for p in spec.patterns
    ]
    return patterns, spec.max_between_chars


class AdverseReactions:
    """Adds ``adverse_reaction`` relations (drug offsets -> reaction offsets) to ``doc._.relations``."""

    def __init__(
        self,
        chronic: Callable[[Span], bool],
        model: str | None = None,
        threads: int = 1,
        *,
        literature: bool = False,
        threshold: float | None = None,
        role_thresholds: Sequence[float | None] | None = None,
    ) -> None:
        self._patterns, self._max_gap = adr_patterns()
        spec = resources.load("adr_rules")
        self._vetoes = [(v.order, re.compile(v.between, re.IGNORECASE)) for v in spec.model_vetoes]
        self._model_cue = re.compile(spec.model_cue, re.IGNORECASE)
        across = spec.across_sentences
        self._across = across
        self._forward = re.compile(across.forward, re.IGNORECASE)
        self._backward = re.compile(across.backward, re.IGNORECASE)
        self._doubt = re.compile(across.doubt, re.IGNORECASE)
        self._chronic = chronic
        self._members = class_members()
        self._literature = literature
        self._assertions = REPORTED if literature else ATTRIBUTABLE
        self.classifier = OnnxPairClassifier(resolve_model_dir(model), threads=threads) if model else None
        self.source = f"model:{self.classifier.name}" if self.classifier else "rules"
        # the model's own threshold was chosen on abstracts; in notes the cue gate and the vetoes
        # already keep a pair's precision, and the pipeline may ask for a lower one
        self.threshold = (
            threshold if threshold is not None else (self.classifier.threshold if self.classifier else 1.0)
        )
        self.role_thresholds = role_thresholds
        self.labels: tuple[str, ...] = ()  # finds no mentions; listed with the models for the fingerprint

    def __call__(self, doc: Doc) -> Doc:
        if SPAN_GROUP not in doc.spans:
            return doc
        mentions = sorted(
            (s for s in doc.spans[SPAN_GROUP] if s.label_ in DRUG_LABELS or s.label_ in REACTION_LABELS),
            key=lambda s: s.start_char,
        )
        reach = _MODEL_SPAN_CHARS if self.classifier else self._max_gap
        candidates = [
            (a, b)
            for i, a in enumerate(mentions)
            for b in mentions[i + 1 :]
            if b.start_char - a.end_char <= reach and _one_drug_one_reaction(a, b)
        ]
        if not candidates:
            return doc
        text = doc.text
        linked = {(src, dst) for kind, src, dst, _, _ in doc._.relations if kind == "allergy_reaction"}
        relations = list(doc._.relations)
        unmatched: list[tuple[tuple[int, int], tuple[int, int]]] = []
        thresholds: list[float] = []
        sentence_of: list[tuple[int, int]] = []
        for first, second in candidates:
            drug, reaction = (first, second) if first.label_ in DRUG_LABELS else (second, first)
            key = ((drug.start_char, drug.end_char), (reaction.start_char, reaction.end_char))
            if key in linked or not self._attributable(drug, reaction) or _crosses_sentence(first, second):
                continue
            threshold = self._threshold(doc, drug, reaction)
            if threshold is None:
                continue
            pattern = None
            if second.start_char - first.end_char <= self._max_gap:
                pattern = self._match(text, first, second, drug_first=first is drug, reaction=reaction)
            if pattern is not None:
                relations.append((RELATION, *key, pattern.score, f"rule:{pattern.id}"))
                linked.add(key)
            elif self.classifier is not None and not self._vetoed(
                text, first, second, drug_first=first is drug
            ):
                unmatched.append(key)
                thresholds.append(threshold)
                # the sentence, widened to both mentions (a mention may straddle a sentence start)
                sentence = first.sent
                (d0, d1), (r0, r1) = key
                sentence_of.append((min(sentence.start_char, d0, r0), max(sentence.end_char, d1, r1)))
        if self.classifier is not None and unmatched:
            scores = self._score(text, unmatched, sentence_of)
            for key, score, threshold in zip(unmatched, scores, thresholds, strict=True):
                if score >= threshold:
                    relations.append((RELATION, *key, round(score, 4), self.classifier.method))
                    linked.add(key)
        relations += self._conjuncts(text, mentions, relations, linked)
        if not self._literature:
            relations += self._across_sentences(doc, mentions, relations)
            relations = self._named_members(mentions, relations, start=len(doc._.relations))
        doc._.relations = relations
        return doc

    def _named_members(self, mentions: list[Span], relations: list[tuple], *, start: int) -> list[tuple]:
        """A pair whose drug is a class the note names a member of is that member's (notes): "began
        amlodipine 5 mg two weeks ago ... likely peripheral edema from the CCB" blames amlodipine.

        The member nearest before the class word is taken, else the nearest after it. A class with
        no member named keeps the pair ("statin-induced myalgias").
        """
        by_offsets = {(m.start_char, m.end_char): m for m in mentions}
        out = relations[:start]
        for relation in relations[start:]:
            kind, drug_key, reaction_key, score, method = relation
            drug = by_offsets.get(drug_key)
            members = self._members.get(drug.text.lower()) if kind == RELATION and drug is not None else None
            if drug is None or not members:
                out.append(relation)
                continue
            reaction = by_offsets[reaction_key]
            named = [
                m
                for m in mentions
                if m.label_ == "DRUG" and _names(m) & members and self._attributable(m, reaction)
            ]
            before = [m for m in named if m.end_char <= drug.start_char]
            after = [m for m in named if m.start_char >= drug.end_char]
            member = before[-1] if before else (after[0] if after else None)
            if member is None:
                out.append(relation)
                continue
            key = (member.start_char, member.end_char)
            if any(r[0] == RELATION and r[1] == key and r[2] == reaction_key for r in relations):
                continue  # the member is blamed already
            out.append((kind, key, reaction_key, score, f"{method}+rule:adr.class_member"))
        return out

    def _across_sentences(self, doc: Doc, mentions: list[Span], relations: list[tuple]) -> list[tuple]:
        """Pairs whose drug is named in an earlier sentence (notes): a reaction whose clause names no
        drug but refers to one ("Started dofetilide 2 days ago. ... Drug-induced QT prolongation"), and
        a drug whose clause names no reaction but blames it ("... had two seizures. Likely due to
        tramadol")."""
        text = doc.text
        drugs = [m for m in mentions if m.label_ in DRUG_LABELS]
        reactions = [m for m in mentions if m.label_ in REACTION_LABELS]
        if not drugs or not reactions:
            return []
        attributed = {r[2] for r in relations if r[0] in (RELATION, "allergy_reaction")}
        blamed = {r[1] for r in relations if r[0] in (RELATION, "allergy_reaction")}
        sentences = [(s.start_char, s.end_char) for s in doc.sents]
        method = "rule:adr.across_sentences"
        found: list[tuple] = []
        for reaction in reactions:
            key = (reaction.start_char, reaction.end_char)
            if key in attributed:
                continue
            index = _sentence_index(sentences, reaction.start_char)
            start, end = _clause(text, reaction, sentences)
            following = _CLAUSE_BREAK.search(text, end + 1, sentences[index][1])
            said_end = following.start() if following else sentences[index][1]
            said = text[start:said_end]
            if not self._forward.search(said) or self._doubt.search(said):
                continue
            sent_start = sentences[index][0]
            suspects = [
                d
                for d in drugs
                if sent_start <= d.start_char < end
                and self._attributable(d, reaction)
                and not _treats(text, d, reaction)
            ]
            suspect: Span | None
            if suspects:  # "dizzy since starting gabapentin, likely a medication side effect"
                suspect = min(suspects, key=lambda d: abs(d.start_char - reaction.start_char))
            else:  # "Started dofetilide 2 days ago. QTc 540 today. Drug-induced QT prolongation"
                first = sentences[max(0, index - self._across.sentences)][0]
                earlier = [d for d in drugs if first <= d.start_char and d.end_char <= sent_start]
                suspect = next((d for d in reversed(earlier) if self._attributable(d, reaction)), None)
            if suspect is not None:
                found.append(
                    (RELATION, (suspect.start_char, suspect.end_char), key, self._across.score, method)
                )
                attributed.add(key)
        for drug in drugs:
            key = (drug.start_char, drug.end_char)
            start, end = _clause(text, drug, sentences)
            clause = text[start:end]
            if key in blamed or any(start <= r.start_char < end for r in reactions):
                continue
            if not self._backward.search(clause) or self._doubt.search(clause):
                continue
            index = _sentence_index(sentences, start)
            if index == 0 or start > sentences[index][0]:
                continue  # the blaming clause opens its sentence; the reactions are in the one before
            previous = sentences[index - 1]
            for reaction in reactions:
                reaction_key = (reaction.start_char, reaction.end_char)
                if not (previous[0] <= reaction.start_char and reaction.end_char <= previous[1]):
                    continue
                if reaction_key in attributed or not self._attributable(drug, reaction):
                    continue
                found.append((RELATION, key, reaction_key, self._across.score, method))
                attributed.add(reaction_key)
        return found

    def _score(
        self,
        text: str,
        pairs: list[tuple[tuple[int, int], tuple[int, int]]],
        sentences: list[tuple[int, int]],
    ) -> list[float]:
        """The model's score of each pair, read in its own sentence (as it was trained: ADE-Corpus-V2
        and PHEE are sentences); one model call per sentence."""
        assert self.classifier is not None
        scores = [0.0] * len(pairs)
        by_sentence: dict[tuple[int, int], list[int]] = {}
        for i, sentence in enumerate(sentences):
            by_sentence.setdefault(sentence, []).append(i)
        for (start, end), members in by_sentence.items():
            shifted = [
                ((d0 - start, d1 - start), (r0 - start, r1 - start))
                for (d0, d1), (r0, r1) in (pairs[i] for i in members)
            ]
            for i, score in zip(members, self.classifier.score(text[start:end], shifted), strict=True):
                scores[i] = score
        return scores

    def _threshold(self, doc: Doc, drug: Span, reaction: Span) -> float | None:
        """The model threshold of a pair; ``None``: not a candidate at all (nor for the patterns).

        Where the ADE tagger read the Doc, it depends on how many of the two it marked (both, one,
        none: ``role_thresholds``)."""
        if not doc._.ade_tagged or self.role_thresholds is None:
            return self.threshold
        marked = (drug._.adr_role == "drug") + (reaction._.adr_role == "reaction")
        return self.role_thresholds[2 - marked]

    def _attributable(self, drug: Span, reaction: Span) -> bool:
        return (
            reaction._.assertion in self._assertions
            and drug._.assertion != "absent"
            # an allergy entry's reactions are the allergy statement's (in notes)
            and (self._literature or not drug._.allergy)
            # "in children receiving aspirin" is a study population in an abstract, not a relative
            and (self._literature or (reaction._.subject == "patient" and drug._.subject == "patient"))
        )

    def _conjuncts(
        self, text: str, mentions: list[Span], relations: list[tuple], linked: set[tuple]
    ) -> list[tuple]:
        """Reactions and drugs joined to an attributed pair's ("nausea and vomiting after starting X",
        "hepatitis in a patient treated with trimethoprim-sulfamethoxazole")."""
        reactions = [m for m in mentions if m.label_ in REACTION_LABELS]
        drugs = [m for m in mentions if m.label_ in DRUG_LABELS]
        by_offsets = {(m.start_char, m.end_char): m for m in mentions}
        found: list[tuple] = []
        todo = [r for r in relations if r[0] == RELATION]
        while todo:
            _, drug_key, reaction_key, score, method = todo.pop()
            drug, reaction = by_offsets[drug_key], by_offsets[reaction_key]
            for same, kind in ((reaction, reactions), (drug, drugs)):
                i = kind.index(same)
                for other in kind[max(0, i - 1) : i] + kind[i + 1 : i + 2]:
                    left, right = sorted((other, same), key=lambda m: m.start_char)
                    new_drug, new_reaction = (drug, other) if same is reaction else (other, reaction)
                    key = (
                        (new_drug.start_char, new_drug.end_char),
                        (new_reaction.start_char, new_reaction.end_char),
                    )
                    if key in linked or not _CONJUNCTION.fullmatch(text[left.end_char : right.start_char]):
                        continue
                    if self._attributable(new_drug, new_reaction) and not _crosses_sentence(left, right):
                        relation = (RELATION, *key, score, f"{method}+conjunct")
                        found.append(relation)
                        todo.append(relation)
                        linked.add(key)
        return found

    def _vetoed(self, text: str, first: Span, second: Span, *, drug_first: bool) -> bool:
        """Not for the model: nothing of cause or time near the pair, or a veto between them."""
        between = text[first.end_char : second.start_char]
        if not self._literature and not self._model_cue.search(
            text[first.end_char : second.end_char + _BEFORE_CHARS]
        ):
            return True
        order = "drug_first" if drug_first else "reaction_first"
        return any((o is None or o == order) and v.search(between) for o, v in self._vetoes)

    def _match(
        self, text: str, first: Span, second: Span, *, drug_first: bool, reaction: Span
    ) -> AdrPattern | None:
        between = text[first.end_char : second.start_char]
        before = text[max(0, first.start_char - _BEFORE_CHARS) : first.start_char]
        for pattern in self._patterns:
            if pattern.drug_first != drug_first or not pattern.between.fullmatch(between):
                continue
            if pattern.not_chronic and self._chronic(reaction):
                continue
            if pattern.before is None or pattern.before.search(before):
                return pattern
        return None


def _one_drug_one_reaction(a: Span, b: Span) -> bool:
    return (a.label_ in DRUG_LABELS and b.label_ in REACTION_LABELS) or (
        a.label_ in REACTION_LABELS and b.label_ in DRUG_LABELS
    )


_CLAUSE_BREAK = re.compile(r";|\s[-\u2013\u2014]+\s|->|\u2192")


def _sentence_index(sentences: list[tuple[int, int]], char: int) -> int:
    """The index of the sentence holding ``char`` (sentences are sorted and cover the text)."""
    return max(0, bisect.bisect_right(sentences, (char, math.inf)) - 1)


def _clause(text: str, mention: Span, sentences: list[tuple[int, int]]) -> tuple[int, int]:
    """The character range of the mention's clause: its sentence cut at ';', ' - ' and '->'."""
    sent_start, sent_end = sentences[_sentence_index(sentences, mention.start_char)]
    start = sent_start
    for brk in _CLAUSE_BREAK.finditer(text, sent_start, mention.start_char):
        start = brk.end()
    following = _CLAUSE_BREAK.search(text, mention.end_char, sent_end)
    return start, following.start() if following else sent_end


_GIVEN_FOR = re.compile(r"\b(for|to treat|prn)\b", re.IGNORECASE)
_STOPPED_FOR = re.compile(
    r"\b(held|hold|stopped|stop|discontinued|d/c'?d|reduced|switched|changed)\b", re.IGNORECASE
)


def _treats(text: str, drug: Span, reaction: Span) -> bool:
    """The drug is given for the reaction ("diphenhydramine for drug-induced itching"), unless it was
    stopped for it ("clozapine was held for drug-related neutropenia")."""
    if drug.start_char > reaction.start_char:
        return False
    between = text[drug.end_char : reaction.start_char]
    return bool(_GIVEN_FOR.search(between)) and not _STOPPED_FOR.search(between)


def class_members() -> dict[str, frozenset[str]]:
    """Each drug class wording of ``clinical_terms.json`` (lower case) -> its members' generic names."""
    found: dict[str, frozenset[str]] = {}
    for term in resources.load("clinical_terms").terms:
        if term.label == "DRUG_CLASS" and term.members:
            for wording in (term.text, *term.synonyms, *term.abbreviations):
                found[wording.lower()] = frozenset(term.members)
    return found


def _names(drug: Span) -> set[str]:
    """A drug mention's text and its codes' display names, lower case ("Norvasc" is amlodipine)."""
    return {drug.text.lower(), *(code[2].lower() for code in drug._.codes if code[2])}


def _crosses_sentence(first: Span, second: Span) -> bool:
    doc = first.doc
    return any(doc[i].is_sent_start for i in range(first.end, second.start + 1))


@Language.factory(
    "clinical_adr",
    default_config={
        "model": None,
        "threads": 1,
        "literature": False,
        "threshold": None,
        "role_thresholds": None,
    },
    requires=["doc.spans", "span._.assertion"],
    assigns=["doc._.relations"],
)
def make_clinical_adr(
    nlp: Language,
    name: str,
    model: str | None,
    threads: int,
    literature: bool,
    threshold: float | None,
    role_thresholds: list[float | None] | None,
) -> AdverseReactions:
    chronic = nlp.get_pipe("clinical_context").chronic  # type: ignore[attr-defined]
    return AdverseReactions(
        chronic,
        model=model,
        threads=threads,
        literature=literature,
        threshold=threshold,
        role_thresholds=role_thresholds,
    )
