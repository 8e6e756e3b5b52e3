"""Assertion and experiencer: medspaCy's ConText with the project's rules, mapped to FHIR terms.

Every mention in ``doc.spans["clinical"]`` gets

* ``span._.assertion`` — ``present`` · ``absent`` · ``possible`` · ``hypothetical`` · ``historical``;
* ``span._.subject`` — ``patient`` or ``family`` (with ``span._.relationship``, a v3 RoleCode,
  and ``span._.onset_age`` when "mother had MI at 52" says so);
* ``span._.cues`` — the evidence for the decision: each cue's category, text, offsets and rule id.

Precedence when cues disagree: absent > hypothetical > possible > historical. A history cue
on a chronic or recurrent condition ("history of hypertension", "of recurrent UTIs") keeps it
present: the patient still has it (see :meth:`ClinicalContext.chronic`), unless a resolution cue
says it is over ("asthma as a teenager but outgrew it"); so does a date beside a drug the patient
is on ("on levetiracetam, last seizure in 2022"). A relative's condition is never historical.
Section defaults (``sections.json`` ``span_defaults``) apply when no cue decides. A test,
procedure or drug in doubt ("possible colonoscopy", "consider CT") is hypothetical: it has
not happened yet.
"""

import re
from bisect import bisect_right
from collections import defaultdict
from typing import Any

from medspacy.context import ConText, ConTextModifier, ConTextRule
from medspacy.util import tuple_overlaps
from spacy.language import Language
from spacy.tokens import Doc, Span

from nlp import resources
from nlp.components.lexicon import SPAN_GROUP
from nlp.components.windowed_matching import Labels, WindowedMatcher, share_a_label

CATEGORY_TO_ASSERTION = {
    "NEGATED_EXISTENCE": "absent",
    "HYPOTHETICAL": "hypothetical",
    "POSSIBLE_EXISTENCE": "possible",
    "HISTORICAL": "historical",
    "RESOLVED": "historical",  # over, and said so: a chronic condition too ("outgrew it")
}
PRECEDENCE = ("absent", "hypothetical", "possible", "historical")
_THIS_STAY_SECTIONS = frozenset({"hospital_course", "patient_instructions", "diagnoses"})
# a mention naming an episode of a lasting condition: the episode ends though the condition lasts
_EPISODE_WORDS = frozenset(
    {
        "exacerbation",
        "exacerbations",
        "flare",
        "flares",
        "flare-up",
        "crisis",
        "crises",
        "relapse",
        "decompensation",
    }
)
# a mention that dates itself: "prior GI bleed", "remote coronary stent", "childhood asthma"
_PAST_WORDS = frozenset({"prior", "previous", "remote", "former", "childhood", "past"})
# a mention that says it lasts: "active tobacco use", "residual weakness", "resultant stenosis"
_LASTING_WORDS = frozenset(
    {"recurrent", "active", "ongoing", "current", "persistent", "residual", "resultant"}
)
# words after a relative that open what is said of them: "mother with", "brother had", "sister who"
_CLAUSE_OPENERS = frozenset({"with", "has", "had", "have", "who", "is", "was", "diagnosed", "died", "passed"})
# the verbs that introduce what brought the patient in
_PRESENTING = frozenset(
    {"admitted", "readmitted", "presents", "presented", "presenting", "hospitalized", "transferred"}
)
# what a relative does as informant or learner, not as patient
_INFORMANT_VERBS = frozenset(
    {"instructed", "educated", "counseled", "counselled", "told", "taught", "reports", "reported", "states",
     "stated", "says", "said", "agrees", "agreed", "aware", "understands", "verbalized", "notes", "noticed"}
)  # fmt: skip
# the means of a finding: a negation before "on CTA" speaks of the finding, not of the test
_INSTRUMENT_LABELS = frozenset({"TEST", "PROCEDURE"})
_INSTRUMENT_WORDS = frozenset({"on", "by", "per", "via"})
_INSTRUMENT_FILLERS = frozenset(
    {"the", "a", "an", "her", "his", "their", "this", "today's", "repeat", "follow-up"}
    | {"-", "h", "hr", "hour"}  # "72-h video EEG"
)
_ONSET_AGE = re.compile(
    r"^[^.;\n]{0,40}?\b(?:at|age(?:d)?|in (?:his|her|their) |when (?:he|she|they) (?:was|were) )"
    r"\s*(?:age\s*)?(?P<age>\d{1,3})(?:s\b|\b)",
    re.I,
)
# the age at death, said between the relative and the condition: "Father deceased at 70 from MI"
_AGE_AT_DEATH = re.compile(
    r"\b(?:died|deceased|passed away)\b[^.;\n]{0,20}?\bat\s*(?:age\s*)?(?P<age>\d{1,3})\b"
    r"[^.;\n\d]{0,30}$",
    re.I,
)


def context_rules(nlp: Language) -> list[ConTextRule]:
    """The ConText rules from ``context_rules.json``; each carries its id in ``metadata``.

    A rule's ``phrases`` become one phrase rule per wording (spaCy's ``PhraseMatcher`` finds them
    by hash, where the token ``Matcher`` would test every alternative at every token); wordings
    are tokenized by ``nlp``'s tokenizer, as the notes are (and in capitals too, where the
    tokenizer splits them otherwise: "cannot" is two tokens, "CANNOT" one).
    """
    rules = []
    for spec in resources.load("context_rules").rules:
        forms: list[tuple[str, list[dict[str, Any]] | None]]
        if spec.phrases is not None:
            forms = []
            for wording in (w for phrase in spec.phrases for w in expand_phrase(phrase)):
                forms.append((wording, None))
                shouted = [t.lower_ for t in nlp.tokenizer(wording.upper())]
                if shouted != [t.lower_ for t in nlp.tokenizer(wording)]:  # "CANNOT" stays one token
                    forms.append((wording, [{"LOWER": t} for t in shouted]))
        else:
            forms = [(spec.id, pattern) for pattern in split_first_token(spec.pattern)]
        for literal, pattern in forms:
            rules.append(
                ConTextRule(
                    literal,
                    spec.category,
                    pattern=pattern,
                    direction=spec.direction,
                    # a terminator's own scope is the tokens beside it: medspaCy ends a cue's scope
                    # only where the two scopes overlap, and its overlap test misses a scope that
                    # lies inside the other (a sentence-wide terminator never cut a max_scope cue)
                    max_scope=1 if spec.direction == "TERMINATE" else spec.max_scope,
                    allowed_types=set(spec.allowed_types) if spec.allowed_types else None,
                    excluded_types=set(spec.excluded_types) if spec.excluded_types else None,
                    # a CURRENT cue ("now on", "switched to") ends every other cue's scope, as a
                    # terminator does, and marks the drug after it as taken now
                    terminated_by={*(spec.terminated_by or ()), "CURRENT"},
                    metadata={"id": spec.id},
                )
            )
    return rules


def split_first_token(pattern: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """One pattern per alternative of a first ``{"LOWER"|"ORTH": {"IN": [...]}}`` token.

    spaCy's ``Matcher`` tests a pattern's first token at every token of the Doc; a plain
    value is a hash compare there, an ``IN`` set a predicate call.
    """
    first = pattern[0]
    if len(first) != 1:
        return [pattern]
    ((attr, value),) = first.items()
    if attr not in ("LOWER", "ORTH") or not isinstance(value, dict) or set(value) != {"IN"}:
        return [pattern]
    return [[{attr: alternative}, *pattern[1:]] for alternative in value["IN"]]


_GROUP = re.compile(r"\[([^\[\]]*)\](\?)?")


def expand_phrase(phrase: str) -> list[str]:
    """Every wording of a phrase with ``[a|b]`` alternatives and ``[a|b]?`` optional groups.

    >>> expand_phrase("[no|without][ any]? fever")
    ['no any fever', 'no fever', 'without any fever', 'without fever']
    """
    m = _GROUP.search(phrase)
    if m is None:
        return [" ".join(phrase.split())]
    options = m[1].split("|") + ([""] if m[2] else [])
    return [
        wording
        for option in options
        for wording in expand_phrase(phrase[: m.start()] + option + phrase[m.end() :])
        if wording
    ]


def mention_sentences(doc: Doc, sentences: list[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
    """Token ranges of the sentences (``sentences``, default ``doc.sents``) that hold a mention of
    ``doc.spans["clinical"]``."""
    if sentences is None:
        sentences = [(sent.start, sent.end) for sent in doc.sents]
    found: set[tuple[int, int]] = set()
    mentions = sorted(doc.spans[SPAN_GROUP], key=lambda s: s.start)
    i = 0
    for start, end in sentences:
        while i < len(mentions) and mentions[i].start < start:
            i += 1
        if i < len(mentions) and mentions[i].start < end:
            found.add((start, end))
    return sorted(found)


def mention_tokens(doc: Doc) -> list[tuple[int, int]]:
    """Token ranges of the mentions of ``doc.spans["clinical"]``."""
    return [(span.start, span.end) for span in doc.spans[SPAN_GROUP]]


class ClinicalContext:
    """Runs ConText over the mention group, then decides assertion, subject and cues."""

    def __init__(self, nlp: Language, name: str) -> None:
        context = ConText(
            nlp,
            name=f"{name}_medspacy",
            rules=None,
            input_span_type="group",
            span_group_name=SPAN_GROUP,
            span_attrs=None,
            prune_on_modifier_overlap=True,
        )
        context.add(context_rules(nlp))
        # a cue acts inside its own sentence: match only the sentences that hold a mention
        # and no cue may overlap a mention ("no trouble swallowing": "trouble swallowing" is the
        # mention, so "no" is the cue, not the pseudo-negation "no trouble")
        self._matcher = WindowedMatcher(
            context._ConText__matcher, mention_sentences, anchored=False, avoid=mention_tokens
        )
        rules = resources.load("context_rules")
        self._chronic_prefixes = tuple(rules.chronic_icd10_prefixes)
        self._chronic_terms = re.compile(
            r"\b(?:"
            + "|".join(re.escape(t) for t in sorted(rules.chronic_terms, key=len, reverse=True))
            + r")\b"
        )
        self._act_labels = frozenset(rules.act_labels)
        self._lexicon = nlp.get_pipe("clinical_lexicon") if "clinical_lexicon" in nlp.pipe_names else None
        self._section_defaults = resources.load("sections").span_defaults
        self._relationships = resources.load("relationships").relationships

    def __call__(self, doc: Doc) -> Doc:
        if SPAN_GROUP not in doc.spans or not len(doc.spans[SPAN_GROUP]):
            return doc
        targets = list(doc.spans[SPAN_GROUP])
        sections = [(*section.section_span, section.category) for section in doc._.sections]
        starts = [start for start, _, _ in sections]
        for target, modifiers in zip(targets, self.link(doc, targets), strict=True):
            target._.modifiers = tuple(modifiers)
            i = bisect_right(starts, target.start) - 1
            in_section = i >= 0 and target.start < sections[i][1]
            self.decide(target, modifiers, sections[i][2] if in_section else None)
        return doc

    def link(self, doc: Doc, targets: list[Span]) -> list[list["_Cue"]]:
        """The cues that modify each target, in the order medspaCy's ``ConText`` links them.

        ConText tests every cue against every other cue and every mention of the Doc; a cue's
        scope never leaves its sentence, so this tests only those of one sentence, with the same
        result. A relative cue then gets its whole window back, up to a ";" (see
        ``_reach_past_terminators``), and modifies what that window holds.
        """
        bounds = [(sent.start, sent.end) for sent in doc.sents]
        sentences = [start for start, _ in bounds]
        cues: dict[int, list[_Cue]] = defaultdict(list)  # by sentence, in text order
        for match_id, start, end in self._matcher(doc, mention_sentences(doc, bounds)):
            rule = self._matcher.rule_map[doc.vocab[match_id].text]
            i = bisect_right(sentences, start) - 1
            cues[i].append(_Cue(rule, start, end, bounds[i], self._matcher.labels[match_id]))
        held: dict[int, list[int]] = defaultdict(list)  # the targets each sentence holds
        for t, target in enumerate(targets):
            i = bisect_right(sentences, target.start) - 1
            while i < len(sentences) and sentences[i] < target.end:
                held[i].append(t)
                i += 1
        linked: list[list[_Cue]] = [[] for _ in targets]
        for i, sentence_cues in cues.items():
            for j, first in enumerate(sentence_cues):
                for second in sentence_cues[j + 1 :]:
                    first.limit_scope(second)
                    second.limit_scope(first)
            for t in held[i]:
                for cue in sentence_cues:
                    if cue.modifies(targets[t]):
                        cue.modify(targets[t])
        index = {id(target): t for t, target in enumerate(targets)}
        for sentence_cues in cues.values():
            for cue in sentence_cues:
                cue.reduce_targets()
                for target in cue._targets:
                    linked[index[id(target)]].append(cue)
        for i, sentence_cues in cues.items():
            for cue in sentence_cues:
                if _reach_past_terminators(cue, doc):
                    for t in held[i]:
                        reaches = cue.modifies(targets[t])
                        if reaches and cue not in linked[t]:
                            linked[t].append(cue)
                        elif not reaches and cue in linked[t]:
                            linked[t].remove(cue)  # "CABG at 54; mother with diabetes"
        return linked

    def cues(self, doc: Doc) -> list[dict[str, Any]]:
        """Every cue the rules find anywhere in ``doc``, mention or not (for cue-level evaluation).

        Returns:
            ``{"category", "text", "start", "end", "rule"}`` per cue, in text order; of overlapping
            matches the longer stays (medspaCy's pruning, which keeps one of two same-extent cues).
        """
        found = []
        for match_id, start, end in self._matcher.full(doc):
            rule = self._matcher.rule_map[doc.vocab[match_id].text]
            found.append(_evidence(rule.category, doc[start:end], rule))
        return sorted(found, key=lambda c: (c["start"], c["end"]))

    def decide(self, span: Span, modifiers: list["_Cue"], section: str | None) -> None:
        """Set the assertion, subject and cues of ``span`` from the cues that modify it and its section."""
        doc = span.doc
        cues: list[dict[str, Any]] = []
        assertions: set[str] = set()
        experiencers: list[tuple[int, dict[str, Any], Span]] = []  # family, patient: distance, evidence, cue
        instrument = span.label_ in _INSTRUMENT_LABELS and _instrument(span)
        for modifier in modifiers:
            start, end = modifier.modifier_span
            cue = doc[start:end]
            if not _reaches(cue, modifier.sentence[0], span):
                continue
            category = modifier.category
            if instrument and category == "NEGATED_EXISTENCE" and end <= span.start:
                continue  # "no vascular injury on CTA": the finding is negated, the CTA was done
            evidence = _evidence(category, cue, modifier.rule)
            if category in ("FAMILY", "PATIENT"):
                experiencers.append((_distance(cue, span), evidence, cue))
                continue
            cues.append(evidence)
            if category in CATEGORY_TO_ASSERTION:
                assertions.add(CATEGORY_TO_ASSERTION[category])
        if span[0].lower_ in _PAST_WORDS:
            assertions.add("historical")
            cues.append(_evidence("historical", span[:1], "hist.in_mention"))
        # a problem treated is over, unless treated in this stay ("UTI on HD4 was treated", a Hospital Course)
        categories = {cue["category"] for cue in cues}
        this_stay = "this_stay" in categories or section in _THIS_STAY_SECTIONS or _presenting(span)
        if "treated" in categories and not this_stay:
            assertions.add("historical")
        # the experiencer cue nearest the mention decides; a patient cue counts only against a family one.
        # A relative who is told or tells is no experiencer ("Parents instructed to return for fever");
        # one who speaks of another mention ("CAD (MI at 48) and mother with diabetes") gives way.
        experiencers = [e for e in experiencers if not _informant(e[2])]
        speaking = [e for e in experiencers if not _opens_clause(e[2], span)] or experiencers
        nearest = min(speaking, key=lambda e: e[0]) if speaking else None
        resolved = "resolved" in categories
        # still present: "history of hypertension", "of recurrent UTIs", "residual weakness" (lasting) and
        # "on levetiracetam, last seizure in 2022" (a drug taken now), unless said to be over
        if (
            assertions == {"historical"}
            and not resolved
            and (
                self.chronic(span)
                or any(token.lower_ in _LASTING_WORDS for token in span)
                or bool(categories & {"current", "ongoing"})
            )
        ):
            assertions.clear()
        default = self._section_defaults.get(section or "")
        if default is not None and default.labels is not None and span.label_ not in default.labels:
            default = None
        assertion = next((a for a in PRECEDENCE if a in assertions), None)
        section_cue = {
            "category": "section",
            "text": section,
            "start": None,
            "end": None,
            "rule": f"section:{section}",
        }
        default_assertion = default.assertion if default is not None else None
        if default_assertion == "historical" and (categories & {"current", "ongoing"} or self.chronic(span)):
            default_assertion = None  # a chronic condition, or a device in use ("OSA on CPAP"), is present
        if any(cue["category"] == "asserted" for cue in cues):
            default_assertion = None  # "you were admitted for X" under Discharge Instructions
        if assertion is None and default_assertion is not None:
            assertion = default_assertion
            cues.append(section_cue)
        if assertion == "possible" and span.label_ in self._act_labels:
            assertion = "hypothetical"  # a test, procedure or drug in doubt has not happened yet
        subject = "patient"
        family_section = default is not None and default.subject == "family"
        if nearest is not None and nearest[1]["category"] == "family":
            subject = "family"
            cues.append(nearest[1])
            span._.relationship = self._relationship(nearest[2])
            if span._.relationship == "FAMMEMB":  # "FHx: DM (mother)", "maternal aunt with"
                span._.relationship = self._relationship_near(span)
        elif nearest is None and family_section:
            subject = "family"
            if section_cue not in cues:
                cues.append(section_cue)
            span._.relationship = self._relationship_near(span)
        elif nearest is not None and (family_section or len(experiencers) > 1):
            cues.append(nearest[1])  # "Patient himself has no hypertension" under Family History
        if subject == "family":
            span._.onset_age = self._onset_age(doc[span.end : span.sent.end].text)
            if span._.onset_age is None:
                death = _AGE_AT_DEATH.search(doc[span.sent.start : span.start].text)
                span._.onset_age = int(death["age"]) if death and 0 < int(death["age"]) < 120 else None
        if subject == "family" and assertion == "historical":
            assertion = None  # a relative's condition is history by nature
        span._.assertion = assertion or "present"
        span._.subject = subject
        span._.cues = tuple(cues)

    def chronic(self, span: Span) -> bool:
        """A condition that lasts.

        Flagged in the curated terms, coded in a chronic ICD-10-CM category, called "chronic",
        naming one of the rules' ``chronic_terms`` ("diabetic retinopathy", "eczema"), or, for a
        mention with no codes of its own ("CKD stage 3" given as a target), spelling a term that is
        one of these ("CKD"). An episode of one is not: "COPD exacerbation", "gout flare".
        """
        if any(token.lower_ in _EPISODE_WORDS for token in span):
            return False
        if span._.chronic or any(token.lower_ == "chronic" for token in span):
            return True
        if self._chronic_codes(span._.codes or ()) or self._chronic_terms.search(span.text.lower()):
            return True
        if span._.codes or self._lexicon is None:
            return False
        term = self._lexicon.terminology  # type: ignore[attr-defined]
        inside = term.find([t.text for t in span], [t.lower_ for t in span], [t.is_space for t in span])
        return any(
            term.concepts[i].chronic or self._chronic_codes(term.concepts[i].codes) for _, _, i in inside
        )

    def _chronic_codes(self, codes: Any) -> bool:
        return any(code[0] == "icd10cm" and code[1].startswith(self._chronic_prefixes) for code in codes)

    def _relationship(self, where: Span) -> str:
        for token in where:
            rel = self._relationships.get(token.lower_)
            if rel is not None:
                return rel.code
        return "FAMMEMB"

    def _relationship_near(self, span: Span) -> str:
        """The relative named nearest the mention in its clause: "Diabetes in mother and grandmothers"."""
        sent = span.sent
        start = max([t.i + 1 for t in sent if t.i < span.start and t.text == ";"], default=sent.start)
        end = min([t.i for t in sent if t.i >= span.end and t.text == ";"], default=sent.end)
        near = sorted(
            (
                t
                for t in span.doc[start:end]
                if not span.start <= t.i < span.end and t.lower_ in self._relationships
            ),
            key=lambda t: span.start - t.i if t.i < span.start else t.i - span.end + 1,
        )
        return self._relationships[near[0].lower_].code if near else "FAMMEMB"

    @staticmethod
    def _onset_age(tail: str) -> int | None:
        """The age right after a family mention: "MI at 52", "breast cancer in her 40s"."""
        m = _ONSET_AGE.match(tail)
        if m and 0 < int(m["age"]) < 120:
            return int(m["age"])
        return None


class _Cue(ConTextModifier):
    """A ConText modifier told its sentence (a token range) rather than looking it up in the Doc.

    Its scope is what ``ConTextModifier`` gives with no ``max_scope`` window of its own: the
    sentence on the rule's side of the cue, cut to the rule's ``max_scope`` tokens.
    """

    def __init__(
        self, rule: ConTextRule, start: int, end: int, sentence: tuple[int, int], labels: Labels
    ) -> None:
        first, last = sentence
        reach = rule.max_scope
        after = last if reach is None or last - end <= reach else end + reach
        before = first if reach is None or start - first <= reach else start - reach
        direction = rule.direction.lower()
        if direction == "forward":
            scope = (end, after)
        elif direction == "backward":
            scope = (before, start)
        else:
            scope = (before, after)
        super().__init__(rule, start, end, None, *scope)
        self.sentence = sentence
        self.labels = labels  # the mention labels its rule may modify, allowed and excluded

    def limit_scope(self, other: "_Cue") -> bool:  # type: ignore[override]
        """medspaCy's, except that two uncertainty cues cut each other's scope whenever their rules
        may modify a mention of one label, where medspaCy wants the same label lists: in "RLL
        opacity concerning for pneumonia vs. aspiration" (a suspicion about problems, then a "vs"
        about any label) the "vs" no longer reaches back past "concerning for" to the opacity.
        Other categories keep medspaCy's test: two history cues both reach ("Sarcoidosis diagnosed
        in 2008, treated with prednisone")."""
        if self.direction.upper() == "TERMINATE" or not tuple_overlaps(self.scope_span, other.scope_span):
            return False
        same = other.category.upper() == self.category.upper()
        ends = other.direction.upper() == "TERMINATE" or other.category.upper() in self.rule.terminated_by
        if not same and not ends:
            return False
        uncertain = self.category == "POSSIBLE_EXISTENCE" and share_a_label(self.labels, other.labels)
        if same and self.labels != other.labels and not uncertain:
            return False
        before = start, end = self.scope_span
        if self.direction.lower() in ("forward", "bidirectional") and other > self:
            end = min(end, other.modifier_span[0])
        if self.direction.lower() in ("backward", "bidirectional") and other < self:
            start = max(start, other.modifier_span[1])
        self._scope_start, self._scope_end = start, end
        return before != (start, end)


def _evidence(category: str, cue: Span, rule: ConTextRule | str) -> dict[str, Any]:
    """A cue as recorded in ``span._.cues``; ``rule`` is a ConText rule (its id) or a rule id."""
    rule_id = rule if isinstance(rule, str) else (rule.metadata or {}).get("id", rule.literal)
    return {
        "category": category.lower(),
        "text": cue.text,
        "start": cue.start_char,
        "end": cue.end_char,
        "rule": rule_id,
    }


def _reach_past_terminators(modifier: "_Cue", doc: Doc) -> bool:
    """Give a relative cue ("brother", "maternal") its whole window back: only ";" ends it.

    "brother who developed Stevens-Johnson syndrome": "who" and "developed" end other cues' scope,
    but the condition is still the brother's. Windowed family cues only; "family history of" keeps
    its terminators. Returns whether the cue is one of those.
    """
    window = modifier.rule.max_scope
    if modifier.category != "FAMILY" or window is None:
        return False
    start, end = modifier.modifier_span
    first, last = modifier.sentence
    low = max(first, start - window) if modifier.direction != "FORWARD" else end
    high = min(last, end + window) if modifier.direction != "BACKWARD" else start
    for token in doc[low:start]:
        if token.text == ";":
            low = token.i + 1
    high = next((t.i for t in doc[end:high] if t.text == ";"), high)
    modifier.update_scope(doc[low:high])
    return True


def _reaches(cue: Span, sentence_start: int, span: Span) -> bool:
    """Whether a cue can speak of the mention: a cue inside parentheses does not reach past them
    ("PMH: asthma (no prior intubations), OSA": "no" does not reach "OSA"), though it may speak of
    what they qualify ("Treated hepatitis C (SVR 2017)"). The cue's sentence starts at token
    ``sentence_start``."""
    if span.start < cue.start:
        return True
    depth = 0
    for token in cue.doc[sentence_start : cue.start]:
        if token.text == "(":
            depth += 1
        elif token.text == ")" and depth:
            depth -= 1
    if not depth:
        return True
    depth = 0
    for token in cue.doc[cue.end : span.start]:
        depth += (token.text == "(") - (token.text == ")")
        if depth < 0:
            return False
    return True


def _presenting(span: Span) -> bool:
    """Whether the mention is what brought the patient in: "admitted w/ CAP", "presents with"."""
    doc, i = span.doc, span.start
    if i >= 1 and doc[i - 1].lower_ in {"p/w", "admitted", "readmitted"}:
        return True
    return i >= 2 and doc[i - 2].lower_ in _PRESENTING and doc[i - 1].lower_ in {"with", "w/", "for", "after"}


def _instrument(span: Span) -> bool:
    """Whether a test or procedure is named as the means of a finding: "no injury on CTA", "no
    collection by ultrasound", "no retinitis on the dilated eye exam"."""
    doc, first = span.doc, span.sent.start
    i = span.start - 1
    while i >= first and (doc[i].lower_ in _INSTRUMENT_FILLERS or doc[i].text[0].isdigit()):  # "72-h"
        i -= 1
    return i >= first and doc[i].lower_ in _INSTRUMENT_WORDS


def _informant(cue: Span) -> bool:
    """Whether a relative is told or tells, rather than has: "Parents instructed to return for
    fever", "Wife was educated on hypoglycemia", "Her mother, who is her caregiver, reports"."""
    doc = cue.doc
    end = min(cue.end + 8, cue.sent.end)
    aside = cue.end < end and doc[cue.end].text == ","
    for token in doc[cue.end : end]:
        if token.lower_ in _INFORMANT_VERBS:
            return True
        if not aside and token.lower_ not in {"was", "were", "is", "are", "has", "have", "been"}:
            return False
    return False


def _opens_clause(cue: Span, span: Span) -> bool:
    """Whether a relative's cue speaks of another mention than ``span``: one after the mention that
    opens a clause of its own ("... and mother with diabetes"), or one before it that closes the
    clause before ("IPF in his father and rheumatoid arthritis in his mother")."""
    doc = cue.doc
    if cue.start >= span.end:
        return cue.end < len(doc) and doc[cue.end].lower_ in _CLAUSE_OPENERS
    i = cue.start - 1
    while i >= 0 and doc[i].lower_ in {"his", "her", "their", "the", "a"}:
        i -= 1
    return i >= 0 and doc[i].lower_ in {"in", "of", "from"}


def _distance(cue: Span, span: Span) -> int:
    """Tokens between a cue and a mention (0 when they touch)."""
    return max(cue.start - span.end, span.start - cue.end, 0)


@Language.factory(
    "clinical_context",
    requires=["doc.spans"],
    assigns=["span._.assertion", "span._.subject", "span._.cues"],
)
def make_clinical_context(nlp: Language, name: str) -> ClinicalContext:
    return ClinicalContext(nlp, name)
