"""Social history by rule: smoking, alcohol and recreational drug use, with the words that say so.

``read_social_history(text)`` reads a note and answers three questions, each a :class:`Finding`
(a status, the evidence spans and a few details):

* smoking — ``current`` · ``former`` · ``never`` · ``unknown``; packs per day, years, pack-years
  (stated, else packs per day × years), when a former smoker quit, and the product;
* alcohol — ``yes`` · ``no`` · ``unknown``; drinks per week when a number and a rate are stated
  ("2 beers/night" is 14), and the amount as written;
* drugs — ``yes`` · ``no`` · ``unknown``; the substances in use.

How a note is read: it is cut into statements (sentences, list items, template fields). In each
statement the topic words ("tobacco", "EtOH", "IVDU", "1 ppd") are found, then the cues that
govern them: a cue before a word ("denies tobacco, EtOH or illicit drugs", "former smoker"), a
value after it ("Tobacco: Former", "EtOH (-)"), or an event that needs no word of its own ("quit
2019", "but restarted", and "She quit 25 years ago." after a smoking statement). A relative's use,
second-hand smoke, advice ("avoid alcohol") and doubt ("possible drug use") are not the patient's
use; the family history section is skipped. Texts that name a topic but state no use ("smoke
detector", "alcohol swab", "alcoholic hepatitis", "no known drug allergies") are set aside first.

When statements disagree, the latest wins for each product or substance ("smoked for 30 years,
quit in 2019" is former; "quit for 2 months but restarted" is current), and a statement about
smoking or drinking in general speaks of every product ("1 ppd ... quit smoking in 2019" is
former); a denial of drugs in general does not take back a named one ("uses marijuana, denies
other drugs"). A denial does not undo a past use ("former smoker, denies tobacco" is former). A
history of use with no tense ("40 pk-yr hx", "history of alcohol abuse") counts only when nothing
firmer is said: it reads as former for smoking and as use for alcohol and drugs (abstinence is
said when it holds: "sober", "clean", "quit"). Use of any one product or substance makes the topic
current or yes.

Cue words, products, substances, number words and unit conversions are data:
``resources/en/social_history.json``. The topic words are looked for only in the statements that
contain one of the literal texts their patterns need (a substring search), so a long note costs
about a millisecond.
"""

import bisect
import functools
import re
import re._parser as sre_parser  # the stdlib's parse tree: which literal text a pattern needs
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from nlp import resources
from nlp.errors import InputError, ResourceError

SmokingStatus = Literal["current", "former", "never", "unknown"]
UseStatus = Literal["yes", "no", "unknown"]
Topic = Literal["smoking", "alcohol", "drugs"]

TOPICS: tuple[Topic, ...] = ("smoking", "alcohol", "drugs")
CLAIM_KINDS = ("current", "former", "never", "history")
# what each kind of claim means for a topic's status (the product's contract)
STATUS_OF_KIND: dict[Topic, dict[str, str]] = {
    "smoking": {"current": "current", "former": "former", "history": "former", "never": "never"},
    "alcohol": {"current": "yes", "history": "yes", "former": "no", "never": "no"},
    "drugs": {"current": "yes", "history": "yes", "former": "no", "never": "no"},
}
# a claim about the topic in general ("quit smoking") speaks of each product ("1 ppd"); a denial of
# drugs in general ("denies other drugs") does not take back a named substance
GENERAL_CLAIMS_COVER_ALL: dict[Topic, bool] = {"smoking": True, "alcohol": True, "drugs": False}
# when cues stack before one word ("no history of", "remote history of", "currently denies"),
# the first kind in this order decides
STACK_ORDER = ("other", "ignore", "never", "former", "current", "history")
MAX_CARRY_WORDS = 8  # "She quit 25 years ago." speaks of the statement before; a longer one does not
MAX_EVENT_GAP_WORDS = 8  # "smoked for 30 years, quit in 2019": how far back an event finds its word
SMOKING_DETAILS = ("packs_per_day", "years", "pack_years", "quit_year", "quit_text", "product")

_EDGE = r"(?:(?<!\w)|(?!\w))"  # not between two word characters
_WORDS = re.compile(r"\w+")
_COMMA = re.compile(r"[,;:]")
_CLAUSE_JOIN = re.compile(r",|&|\band\b")
_CLAUSE_BREAK = re.compile(r"[,;(]|\b(?:and|but|while|whereas|although|though)\b")
_BOUNDARY = re.compile(
    r"(?=[.!?;|•\n, \t])"  # (a quick test first: most characters start no boundary)
    r"(?:[.!?](?=\s|,|$)"  # the end of a sentence (not a decimal point)
    r"|[;|•]"
    r"|\n(?=[ \t]*(?:[-*•]|\d+[.)]|[A-Z]|\n|$))"  # a line that starts something new (not a wrapped line)
    r"|,(?=[ \t]*[A-Za-z][A-Za-z /&()-]{0,40}:)"  # "Tobacco: never, Alcohol: socially"
    r"|[ \t]{2,}(?=[A-Za-z][A-Za-z /&()-]{0,40}:))"
)
_SAID = re.compile(r"\S(?:.*\S)?", re.S)
_HEADING = re.compile(r"[ \t]*(?P<name>[A-Za-z][A-Za-z /&()'-]{0,40}?)[ \t]*:")
_VALUE_GAP = re.compile(  # between a topic word and its value: "Tobacco use: never", "EtOH (-)"
    r"[ \t]*(?:(?:use|usage|abuse|history|hx|status|habits?|consumption|intake)\b[ \t]*)?"
    r"(?P<sep>[:=\-–][ \t]*|\((?=[ \t]*[a-z])[ \t]*)?"  # "(quit 1992)" but not "(-)"
)
_OBJECT_GAP = re.compile(r"\s+(?:(?:a|an|some|the)\s+)?")
_YEAR = re.compile(r"(?:19|20)\d{2}")
_FRACTIONS = {"½": 0.5, "¼": 0.25, "¾": 0.75}
_ARTICLES = ("a", "an")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_NOT_TEXT = re.compile(r"\\.|\(\?P[<=]")  # escapes ("\\S") and group syntax ("(?P<n>") are no text


@dataclass(frozen=True)
class Evidence:
    """A span of the note that supports a finding.

    Attributes:
        start: Character offset of the span in the note.
        end: Character offset just past the span (``text == note[start:end]``).
        text: The words themselves.
        rule: The id of the cue or term (``social_history.json``) that read them.
    """

    start: int
    end: int
    text: str
    rule: str


@dataclass(frozen=True)
class Finding:
    """What the note says about one topic.

    Attributes:
        status: Smoking: ``current``, ``former``, ``never`` or ``unknown``; alcohol and drugs:
            ``yes``, ``no`` or ``unknown``.
        evidence: The spans that support ``status``, in note order (empty when unknown).
        details: Smoking: ``packs_per_day``, ``years``, ``pack_years``, ``quit_year``,
            ``quit_text``, ``product``; alcohol: ``drinks_per_week``, ``amount_text``; drugs:
            ``substances``. A detail the note does not state is ``None`` (``[]`` for substances).
    """

    status: SmokingStatus | UseStatus
    evidence: tuple[Evidence, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SocialHistory:
    """Smoking, alcohol and recreational drug use as one note states them."""

    smoking: Finding
    alcohol: Finding
    drugs: Finding


@dataclass(frozen=True)
class _TermSpec:
    id: str
    topic: Topic
    default: str
    key: str | None
    fixed: bool
    finite_verb: bool
    needs_company: bool


@dataclass(frozen=True)
class _CueSpec:
    id: str
    kind: str
    governs: bool
    value: bool
    event: str
    max_gap_words: int
    crosses_commas: bool


@dataclass(frozen=True)
class _Term:
    start: int
    end: int
    spec: _TermSpec


@dataclass(frozen=True)
class _Cue:
    start: int
    end: int
    spec: _CueSpec


@dataclass(frozen=True)
class _Claim:
    topic: Topic
    key: str | None
    kind: str
    start: int
    end: int
    rule: str
    region: tuple[int, int]  # the words of the statement about this topic (where details are read)


def _alternation(patterns: list[str]) -> str:
    return "|".join(f"(?:{p})" for p in sorted(patterns, key=len, reverse=True))


def _lower(text: str) -> str:
    """The note in lower case, at the same offsets (the rules are matched against it)."""
    lowered = text.lower()
    return lowered if len(lowered) == len(text) else text.translate(_ASCII_LOWER)


def _compile(pattern: str, what: str, groups: int | None = 0) -> re.Pattern[str]:
    """A rule pattern, matched against the lower-cased note (case-blind matching is twice as slow)."""
    if any(c.isupper() for c in _NOT_TEXT.sub("", pattern)):
        raise ResourceError(f"social_history: {what} must be written in lower case")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ResourceError(f"social_history: {what} is not a valid pattern: {exc}") from exc
    if groups is not None and compiled.groups != groups:
        raise ResourceError(f"social_history: {what} has {compiled.groups} capturing groups, not {groups}")
    return compiled


def _leading_text(parsed: Any) -> str:
    text = []
    for op, arg in parsed:
        if op is not sre_parser.LITERAL:
            break
        text.append(chr(arg).lower())
    return "".join(text)


def _branch_heads(op: Any, arg: Any) -> list[str] | None:
    """The literal text each alternative of a branch starts with (the parser factors prefixes out)."""
    if op is sre_parser.SUBPATTERN and len(arg[-1]) == 1:
        op, arg = arg[-1][0]
    return [_leading_text(b) for b in arg[1]] if op is sre_parser.BRANCH else None


def _required_text(parsed: Any) -> frozenset[str] | None:
    """Literal texts one of which every match of a parsed pattern contains (None: no such texts)."""
    options: list[frozenset[str]] = []
    run: list[str] = []
    for op, arg in parsed:
        if op is sre_parser.LITERAL:
            run.append(chr(arg).lower())
            continue
        if run:  # "p(?:yh|k|-yr)" needs "pyh", "pk" or "p-yr", better than "p"
            heads = _branch_heads(op, arg)
            options.append(frozenset("".join(run) + head for head in heads or [""]))
            run = []
        needed: frozenset[str] | None = None
        if op is sre_parser.SUBPATTERN:
            needed = _required_text(arg[-1])
        elif op is sre_parser.BRANCH:
            branches = [_required_text(b) for b in arg[1]]
            if all(branches):
                needed = frozenset().union(*(b for b in branches if b))
        elif op in (sre_parser.MAX_REPEAT, sre_parser.MIN_REPEAT) and arg[0] >= 1:
            needed = _required_text(arg[2])
        if needed:
            options.append(needed)
    if run:
        options.append(frozenset(["".join(run)]))
    return max(options, key=lambda texts: (min(map(len, texts)), -len(texts)), default=None)


def _starts_with_word(parsed: Any) -> bool:
    """Whether a match may start with a letter or digit (so it needs a word edge before it)."""
    if not parsed:
        return False
    op, arg = parsed[0]
    if op is sre_parser.LITERAL:
        return chr(arg).isalnum() or chr(arg) == "_"
    if op in (sre_parser.ASSERT, sre_parser.ASSERT_NOT):
        return False  # the pattern checks its own edge: "(?<![\w)-])-"
    if op is sre_parser.SUBPATTERN:
        return _starts_with_word(arg[-1])
    if op is sre_parser.BRANCH:
        return any(_starts_with_word(b) for b in arg[1])
    if op is sre_parser.IN:
        return not all(o is sre_parser.LITERAL and not (chr(a).isalnum() or chr(a) == "_") for o, a in arg)
    return True


def _needed_texts(patterns: list[str], what: str) -> frozenset[str]:
    texts: set[str] = set()
    for pattern in patterns:
        needed = _required_text(sre_parser.parse(pattern))
        if not needed:
            raise ResourceError(f"social_history: {what} pattern {pattern!r} needs no literal text")
        texts |= needed
    return frozenset(texts)


@dataclass(frozen=True)
class _Numbers:
    """Stated numbers: "2", "1/2", "1.5", "one-and-one-half", "two to three", "twenty-five"."""

    num: str  # pattern: a stated number or range
    qty: str  # pattern: a stated number, "a"/"an", "a third" or "half a"
    words: dict[str, float]
    range_: re.Pattern[str]
    mixed: re.Pattern[str]

    @classmethod
    def from_words(cls, words: dict[str, float]) -> "_Numbers":
        words = {w.lower(): v for w, v in words.items()}
        ones = [w for w, v in words.items() if 1 <= v <= 9 and v == int(v)]
        tens = [w for w, v in words.items() if 20 <= v <= 90 and v % 10 == 0]
        initials = "".join(sorted({w[0] for w in words}))  # a quick test before trying each word
        word = (
            rf"(?=[{initials}])"
            rf"(?:(?:{_alternation(tens)})[- ](?:{_alternation(ones)})|{_alternation(list(words))})(?![a-z])"
        )
        atom = rf"(?:\d+\s*/\s*\d+|\d+(?:\.\d+)?|\.\d+|[½¼¾]|{word})"
        frac = r"(?:\s+|-)(?:\d\s*/\s*\d|[½¼¾])|[- ]and[- ](?:a[- ]|one[- ])?half"
        mixed = rf"{atom}(?:{frac})?"
        num = rf"(?:{mixed}(?:\s*(?:-|–|to|or)\s*{mixed})?)"
        return cls(
            num=num,
            qty=rf"(?:half\s+an?|(?:an?\s+)?{num}|an?(?![a-z]))",
            words=words,
            range_=re.compile(rf"(?P<low>{mixed})(?:\s*(?:-|–|to|or)\s*(?P<high>{mixed}))?"),
            mixed=re.compile(rf"(?P<atom>{atom})(?P<frac>{frac})?"),
        )

    def value(self, text: str) -> tuple[float | None, bool]:
        """The number a quantity states (a range's upper bound) and whether it was an article only."""
        words = text.lower().split()
        if len(words) == 1 and words[0] in _ARTICLES:
            return 1.0, True
        if len(words) > 1 and words[0] in _ARTICLES:
            words = words[1:]  # "a third"
        if len(words) > 1 and words[-1] in _ARTICLES:
            words = words[:-1]  # "half a"
        m = self.range_.fullmatch(" ".join(words))
        return (self._mixed(m["high"] or m["low"]) if m else None), False

    def _mixed(self, text: str) -> float | None:
        m = self.mixed.fullmatch(text)
        if m is None:
            return None
        whole = self._atom(m["atom"])
        if whole is None or not m["frac"]:
            return whole
        frac = m["frac"].strip(" -")
        return whole + (0.5 if frac.endswith("half") else (self._atom(frac) or 0.0))

    def _atom(self, text: str) -> float | None:
        text = text.strip()
        if text in _FRACTIONS:
            return _FRACTIONS[text]
        if "/" in text:
            top, bottom = (float(p) for p in text.split("/"))
            return top / bottom if bottom else None
        if text[0].isdigit() or text[0] == ".":
            return float(text)
        parts = re.split(r"[- ]", text)
        return sum(self.words[p] for p in parts) if all(p in self.words for p in parts) else None


@dataclass(frozen=True)
class _Rules:
    """``social_history.json`` compiled."""

    numbers: _Numbers
    terms: tuple[tuple[re.Pattern[str], _TermSpec], ...]  # in file order
    screen: dict[str, tuple[int, ...]]  # a text every topic word contains one of -> the terms to try
    cues: tuple[tuple[re.Pattern[str], _CueSpec], ...]
    breakers: re.Pattern[str]
    patient_words: re.Pattern[str]
    not_use: re.Pattern[str]
    family_sections: re.Pattern[str]
    relatives: re.Pattern[str]
    event_tail: re.Pattern[str]
    smoking_details: dict[str, tuple[re.Pattern[str], ...]]
    cigarettes_per_pack: int
    amount: re.Pattern[str]
    units: tuple[tuple[re.Pattern[str], float | None, bool], ...]
    periods: tuple[tuple[re.Pattern[str], float | None], ...]
    qualitative: re.Pattern[str]

    @classmethod
    def from_resources(cls) -> "_Rules":
        spec = resources.load("social_history")
        numbers = _Numbers.from_words(spec.number_words)
        when = spec.when.replace("{num}", numbers.num)

        def fill(pattern: str) -> str:
            return pattern.replace("{when}", when).replace("{qty}", numbers.qty).replace("{num}", numbers.num)

        def bounded(patterns: list[str], what: str) -> re.Pattern[str]:
            """Patterns matched at word edges; one look-behind for all that start with a letter (fast)."""
            filled = [fill(p) for p in patterns]
            for p, written in zip(filled, patterns, strict=True):
                _compile(p, f"{what} pattern {written!r}")
            words = [p for p in filled if _starts_with_word(sre_parser.parse(p))]
            signs = [p for p in filled if p not in words]  # "+", "(-)": any place will do
            starts = [f"(?<!\\w)(?:{_alternation(words)})"] * bool(words) + [_alternation(signs)] * bool(
                signs
            )
            return _compile(f"(?:{'|'.join(starts)}){_EDGE}", what)

        terms = tuple(
            (
                bounded(group.patterns, f"term {group.id}"),
                _TermSpec(
                    group.id,
                    group.topic,
                    group.default,
                    group.key,
                    group.fixed,
                    group.finite_verb,
                    group.needs_company,
                ),
            )
            for group in spec.terms
        )
        needed = [
            _needed_texts([fill(p) for p in group.patterns], f"term {group.id}") for group in spec.terms
        ]
        texts = {text for group in needed for text in group}
        screen = {  # only the shortest texts are looked for; each leads to every term that may hold it
            text: tuple(n for n, group in enumerate(needed) if any(text in t for t in group))
            for text in sorted(texts)
            if not any(other != text and other in text for other in texts)
        }
        cues = tuple(
            (
                bounded(group.patterns, f"cue {group.id}"),
                _CueSpec(
                    group.id,
                    group.kind,
                    group.governs,
                    group.value,
                    group.event,
                    group.max_gap_words,
                    group.crosses_commas,
                ),
            )
            for group in spec.cues
        )
        duration = rf"{numbers.num}\s*(?:years?|yrs?|months?|mos?|weeks?|wks?|days?|decades?)(?:\s+ago)?"
        smoking_details = {}
        for name, patterns in spec.smoking_details.model_dump().items():
            compiled = tuple(_compile(fill(p), f"smoking detail {name} {p!r}", groups=None) for p in patterns)
            group = "when" if name == "quit" else "n"
            if any(group not in p.groupindex or set(p.groupindex) - {group, "half"} for p in compiled):
                raise ResourceError(
                    f"social_history: smoking detail {name} patterns name the group {group!r}"
                )
            smoking_details[name] = compiled
        unit_alt = _alternation([fill(p) for unit in spec.drink_units for p in unit.patterns])
        container_alt = _alternation(
            [fill(p) for unit in spec.drink_units if unit.container for p in unit.patterns]
        )
        period_alt = _alternation([fill(p) for period in spec.drink_periods for p in period.patterns])
        amount = (  # "2 beers/night", "a 6-pack daily", "1 pint vodka/day", "2 beers 3 times a week"
            rf"{_EDGE}(?:(?P<count>{numbers.qty})\s*-?\s*(?:[a-z]+\s+)?(?P<unit>{unit_alt})|(?P<pack>{container_alt}))"
            rf"(?!\w)(?:\s+(?:of\s+)?(?:[a-z]+\s+)?(?:{_alternation(spec.beverages)}))?"
            rf"(?:\s*(?P<times>{numbers.num})\s*(?:x|times))?"
            rf"(?:\s*(?:[a-z]+\s+){{0,2}}?(?P<period>{period_alt})(?:\s+(?P<also>{period_alt}))?)?{_EDGE}"
        )
        return cls(
            numbers=numbers,
            terms=terms,
            screen=screen,
            cues=cues,
            breakers=bounded(spec.breakers, "breakers"),
            patient_words=bounded(spec.patient_words, "patient words"),
            not_use=bounded(spec.not_use, "not_use"),
            family_sections=_compile(_alternation(spec.family_sections), "family sections"),
            relatives=next(pattern for pattern, cue in cues if cue.id == "other_person"),
            event_tail=_compile(  # what may follow an event: "quit 2019.", "restarted", "clean 10 yrs"
                rf"\s*(?:(?:for|x|since|in|on|about|approximately|around|over|~)\s*)?"
                rf"(?:{when}|{duration}|now|recently)?\s*(?:[,.;:)|]|$|\b(?:and|but|with|after|when|then)\b)",
                "event tail",
            ),
            smoking_details=smoking_details,
            cigarettes_per_pack=spec.cigarettes_per_pack,
            amount=_compile(amount, "drink amount", groups=None),
            units=tuple(
                (_compile(fill(p), f"drink unit {p!r}"), unit.drinks, unit.container)
                for unit in spec.drink_units
                for p in unit.patterns
            ),
            periods=tuple(
                (_compile(fill(p), f"drink period {p!r}"), period.per_week)
                for period in spec.drink_periods
                for p in period.patterns
            ),
            qualitative=bounded(spec.qualitative_amounts, "qualitative amounts"),
        )

    def per_week(self, period: str) -> float | None:
        return next((w for p, w in self.periods if p.fullmatch(period.strip())), None)


@functools.cache
def _rules() -> _Rules:
    return _Rules.from_resources()


def _statements(text: str) -> list[tuple[int, int]]:
    """Sentences, list items and template fields, without the spaces around them."""
    spans = []
    start = 0
    for m in [*_BOUNDARY.finditer(text), None]:
        end = m.start() if m else len(text)
        if said := _SAID.search(text, start, end):
            spans.append(said.span())
        if m:
            start = m.end()
    return spans


def _overlaps(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(start < other_end and other_start < end for other_start, other_end in spans)


def _leading(stack: list[_Cue]) -> _CueSpec:
    """The cue that decides when several stand before one word ("no history of" -> never)."""
    return min((c.spec for c in stack), key=lambda cue: STACK_ORDER.index(cue.kind))


class _NoteReader:
    """The claims one note makes, statement by statement."""

    def __init__(self, rules: _Rules, text: str) -> None:
        self.rules = rules
        self.text = text
        self.low = _lower(text)

    def claims(self) -> list[_Claim]:
        statements = _statements(self.text)
        terms: dict[int, list[_Term]] = {}
        for index, groups in self._screened(statements).items():
            if found := self._terms(*statements[index], sorted(groups)):
                terms[index] = found
        claims: list[_Claim] = []
        previous: list[_Claim] = []
        family = False
        sections = self.rules.family_sections.search(self.low) is not None  # any family history at all
        for index, (start, end) in enumerate(statements):
            family = sections and self._in_family_section(start, end, family)
            if family or self.text.startswith("?", end):  # a question asks, it does not say
                said = []
            elif index in terms:
                near = [t for i in (index - 1, index + 1) for t in terms.get(i, [])]
                said = self._statement(start, end, terms[index], near)
            elif previous:
                said = self._carried(start, end, previous[-1])
            else:
                said = []
            claims.extend(said)
            previous = said
        return claims

    def _screened(self, statements: list[tuple[int, int]]) -> dict[int, set[int]]:
        """Statement -> the terms it may hold (a substring search: fast on long notes)."""
        lowered = self.low
        starts = [start for start, _ in statements]
        found: dict[int, set[int]] = {}
        for text, groups in self.rules.screen.items():
            at = lowered.find(text)
            while at >= 0:
                index = bisect.bisect_right(starts, at) - 1
                if index >= 0 and at < statements[index][1]:
                    found.setdefault(index, set()).update(groups)
                    at = lowered.find(text, statements[index][1])
                else:
                    at = lowered.find(text, at + 1)
        return found

    def _terms(self, start: int, end: int, groups: list[int]) -> list[_Term]:
        """Topic words in a statement; of two that overlap, the first to start, then the first listed."""
        found = sorted(
            (m.start(), order, m.end())
            for order in groups
            for m in self.rules.terms[order][0].finditer(self.low, start, end)
        )
        terms: list[_Term] = []
        for begin, order, stop in found:
            spec = self.rules.terms[order][1]
            if terms and begin < terms[-1].end:
                continue
            verb = terms[-1].spec if terms else None
            if (
                verb is not None
                and verb.finite_verb
                and verb.topic == spec.topic
                and _OBJECT_GAP.fullmatch(self.low, terms[-1].end, begin)
            ):  # "smoked cigarettes", "drinks beer": one statement, the verb's tense, the object's product
                terms[-1] = _Term(terms[-1].start, stop, replace(verb, key=verb.key or spec.key))
            else:
                terms.append(_Term(begin, stop, spec))
        return terms

    def _in_family_section(self, start: int, end: int, family: bool) -> bool:
        m = _HEADING.match(self.text, start, end)
        if m is None:
            return family
        name = " ".join(m["name"].lower().split())
        if self.rules.family_sections.fullmatch(name):
            return True
        if not family:
            return False
        # "Tobacco:", "Mother:" are fields of the family history, not a new section
        return any(text in name for text in self.rules.screen) or bool(self.rules.relatives.search(name))

    def _cues(self, start: int, end: int, terms: list[_Term]) -> list[_Cue]:
        """The cues of a statement: the longest at each place, none inside a topic word."""
        found = sorted(
            (
                _Cue(m.start(), m.end(), cue)
                for pattern, cue in self.rules.cues
                for m in pattern.finditer(self.low, start, end)
            ),
            key=lambda c: (c.start, c.start - c.end),
        )
        taken = [(t.start, t.end) for t in terms]
        cues: list[_Cue] = []
        for cue in found:
            if (not cues or cue.start >= cues[-1].end) and not _overlaps(cue.start, cue.end, taken):
                cues.append(cue)
        return cues

    def _reaches(self, since: int, word: _Term | _Cue, stack: list[_Cue]) -> bool:
        """Whether the cues in ``stack`` reach ``word`` (``since``: where they or their last word end)."""
        gap = self.low[since : word.start]
        if len(_WORDS.findall(gap)) > max(c.spec.max_gap_words for c in stack):
            return False
        if not _leading(stack).crosses_commas and _COMMA.search(gap):
            return False
        # "denies tobacco and drinks socially": a verb after "and" or a comma starts a new clause
        return not (isinstance(word, _Term) and word.spec.finite_verb and _CLAUSE_JOIN.search(gap))

    def _statement(self, start: int, end: int, found: list[_Term], near: list[_Term]) -> list[_Claim]:
        """The claims of one statement; ``near``: the topic words of the statements either side."""
        excluded = [m.span() for m in self.rules.not_use.finditer(self.low, start, end)]
        terms = [t for t in found if not _overlaps(t.start, t.end, excluded)]
        headings: set[int] = set()  # "Tobacco:" - a field name, whose value speaks
        value_at: dict[int, int] = {}
        for t in terms:
            gap = _VALUE_GAP.match(self.low, t.end, end)
            value_at[t.start] = gap.end() if gap else t.end
            if gap and gap["sep"] and gap["sep"].strip() in (":", "="):
                headings.add(t.start)
        if not any(not t.spec.needs_company for t in terms + near):  # a bare "drugs" needs company
            terms = [t for t in terms if t.start in headings]
        if not terms:
            return []
        cues = self._cues(start, end, terms)
        said, used = self._governed(start, end, terms, cues, headings, value_at)
        claims = []
        for term, kind, rule, ev_start, ev_end in said:
            if term.spec.fixed and kind in CLAIM_KINDS:
                kind, rule, ev_start, ev_end = term.spec.default, term.spec.id, term.start, term.end
            elif term.spec.default == "history" and kind == "current":
                kind = "history"  # "smoked socially", "drank heavily": the past tense holds
            if kind in CLAIM_KINDS:
                region = self._region(term, terms, start, end)
                claims.append(_Claim(term.spec.topic, term.spec.key, kind, ev_start, ev_end, rule, region))
        dropped = {term.start for term, kind, *_ in said if kind not in CLAIM_KINDS}
        claims += self._events(start, end, terms, [c for c in cues if c.start not in used], dropped)
        return sorted(claims, key=lambda c: c.start)

    def _governed(
        self,
        start: int,
        end: int,
        terms: list[_Term],
        cues: list[_Cue],
        headings: set[int],
        value_at: dict[int, int],
    ) -> tuple[list[tuple[_Term, str, str, int, int]], set[int]]:
        """What each topic word says (term, kind, rule, evidence span) and which cues spoke.

        Left to right: a cue governs the words after it until a breaker, a word it cannot
        reach or a new cue; cues with nothing between them stack ("no history of"). A value
        right after a word ("EtOH: none") outranks the cue before it, except a relative's or a
        hypothetical one ("husband drinks heavily", "avoid alcohol").
        """
        values = {c.start: c for c in cues if c.spec.value}
        words = [(t.start, t.end) for t in terms] + [(c.start, c.end) for c in cues]
        breaks = [  # not the ")" of "(-)"
            m.start()
            for m in self.rules.breakers.finditer(self.low, start, end)
            if not _overlaps(*m.span(), words)
        ]
        patients = [m.start() for m in self.rules.patient_words.finditer(self.low, start, end)]
        order: list[tuple[int, int, _Term | _Cue | None]] = [(t.start, 1, t) for t in terms]
        order += [(c.start, 0, c) for c in cues if c.spec.governs]
        order += [(at, 0, None) for at in breaks]
        order.sort(key=lambda e: (e[0], e[1]))

        said: list[tuple[_Term, str, str, int, int]] = []
        used: set[int] = set()
        stack: list[_Cue] = []
        governed = False
        since = start
        for at, _, word in order:
            if word is None:  # "but", "though", ":"
                stack = []
                continue
            if stack and _leading(stack).kind == "other" and any(since <= p < at for p in patients):
                stack = []  # "her father drinks, and she denies": the patient speaks again
            if isinstance(word, _Cue):
                if stack and not governed and self._reaches(since, word, stack):
                    stack.append(word)
                else:
                    stack, governed = [word], False
                since = word.end
                continue
            lead = _leading(stack) if stack else None
            reached = lead is not None and self._reaches(since, word, stack)
            value = values.get(value_at[word.start])
            if reached and lead is not None and (lead.kind in ("other", "ignore") or value is None):
                used.update(c.start for c in stack)
                said.append((word, lead.kind, lead.id, stack[0].start, word.end))
            elif value is not None:
                used.add(value.start)
                said.append((word, value.spec.kind, value.spec.id, word.start, value.end))
            elif word.start not in headings:
                said.append((word, word.spec.default, word.spec.id, word.start, word.end))
            if reached:
                since, governed = word.end, True
            else:
                stack = []
        return said, used

    def _events(
        self, start: int, end: int, terms: list[_Term], cues: list[_Cue], dropped: set[int]
    ) -> list[_Claim]:
        """Cues that governed no word but speak of the last one before them: "quit 2019", "not anymore"."""
        claims = []
        for cue in cues:
            if cue.spec.event == "none":
                continue
            if cue.spec.governs and not self.rules.event_tail.match(self.low, cue.end, end):
                continue  # "stopped metformin": a verb with an object of its own
            before = [t for t in terms if t.end <= cue.start]
            if not before or before[-1].start in dropped:
                continue  # "father smoked, quit 2000"
            term = before[-1]
            if len(_WORDS.findall(self.low, term.end, cue.start)) > MAX_EVENT_GAP_WORDS:
                continue
            low, high = self._region(term, terms, start, end)
            region = (low, max(high, cue.end))
            claims.append(
                _Claim(term.spec.topic, term.spec.key, cue.spec.kind, cue.start, cue.end, cue.spec.id, region)
            )
        return claims

    def _region(self, term: _Term, terms: list[_Term], start: int, end: int) -> tuple[int, int]:
        """The words about ``term``'s topic around it, up to the words of another topic.

        Between a word of one topic and the next of another, the last clause break (a comma,
        "and", "but") parts them; with none, the words go to the first ("tob 1 ppd EtOH 2 beers").
        """
        topic = term.spec.topic
        low = max((t.end for t in terms if t.end <= term.start and t.spec.topic != topic), default=start)
        high = min((t.start for t in terms if t.start >= term.end and t.spec.topic != topic), default=end)
        if low > start:
            breaks = list(_CLAUSE_BREAK.finditer(self.low, low, term.start))
            low = breaks[-1].end() if breaks else term.start
        if high < end:
            breaks = list(_CLAUSE_BREAK.finditer(self.low, term.end, high))
            high = breaks[-1].start() if breaks else high
        return low, high

    def _carried(self, start: int, end: int, last: _Claim) -> list[_Claim]:
        """In "Former smoker. Quit 2019." the event without a topic word speaks of the statement before."""
        if len(_WORDS.findall(self.text, start, end)) > MAX_CARRY_WORDS:
            return []
        return [
            _Claim(last.topic, last.key, cue.spec.kind, cue.start, cue.end, cue.spec.id, (start, end))
            for cue in self._cues(start, end, [])
            if cue.spec.event == "carry" and self.rules.event_tail.match(self.low, cue.end, end)
        ]


def _resolve(topic: Topic, claims: list[_Claim]) -> dict[str | None, str]:
    """Per product or substance (``None``: the topic in general), the latest firm claim, else history."""
    by_key: dict[str | None, list[_Claim]] = {claim.key: [] for claim in claims}
    for claim in claims:
        for key in by_key if claim.key is None and GENERAL_CLAIMS_COVER_ALL[topic] else [claim.key]:
            by_key[key].append(claim)
    resolved = {}
    for key, said in by_key.items():
        firm = [c.kind for c in said if c.kind != "history"]
        kind = firm[-1] if firm else "history"
        if kind == "never" and any(c.kind in ("former", "history") for c in said):
            kind = "former"  # "former smoker ... denies tobacco": not now, but once
        resolved[key] = kind
    return resolved


def _status(topic: Topic, kinds: set[str]) -> SmokingStatus | UseStatus:
    if topic == "smoking":
        if "current" in kinds:
            return "current"
        if kinds & {"former", "history"}:
            return "former"
        return "never" if "never" in kinds else "unknown"
    if "current" in kinds:
        return "yes"
    if kinds & {"former", "never"}:
        return "no"
    return "yes" if "history" in kinds else "unknown"


class _Details:
    """Amounts and dates read from the words about a topic (``regions``); the latest statement wins."""

    def __init__(self, rules: _Rules, text: str, low: str, regions: list[tuple[int, int]]) -> None:
        self.rules = rules
        self.text = text
        self.low = low
        self.regions = regions

    def _latest(
        self, patterns: tuple[re.Pattern[str], ...], skip: tuple[int, int] | None = None
    ) -> re.Match[str] | None:
        found = [
            m
            for low, high in self.regions
            for pattern in patterns
            for m in pattern.finditer(self.low, low, high)
            if skip is None or not _overlaps(m.start(), m.end(), [skip])
        ]
        return max(found, key=lambda m: m.start(), default=None)

    def _number(self, name: str, skip: tuple[int, int] | None = None) -> float | None:
        m = self._latest(self.rules.smoking_details[name], skip)
        if m is None:
            return None
        value, _ = self.rules.numbers.value(m["n"])
        if value is not None and m.groupdict().get("half"):
            value += 0.5  # "a pack and a half a day"
        return value

    def smoking(self, status: str, product: str | None) -> dict[str, Any]:
        stopped = self._latest(self.rules.smoking_details["quit"])
        packs = self._number("packs_per_day")
        if packs is None and (cigarettes := self._number("cigarettes_per_day")) is not None:
            packs = cigarettes / self.rules.cigarettes_per_pack
        years = self._number("years", skip=stopped.span() if stopped else None)  # not "quit x 10 yrs"
        pack_years = self._number("pack_years")
        if pack_years is None and packs is not None and years is not None:
            pack_years = packs * years
        # a quit date belongs to a former smoker ("quit for 2 months but restarted")
        quit_text = (
            self.text[slice(*stopped.span("when"))].strip() if stopped and status == "former" else None
        )
        year = _YEAR.search(quit_text) if quit_text else None
        return {
            "packs_per_day": _rounded(packs),
            "years": _rounded(years),
            "pack_years": _rounded(pack_years),
            "quit_year": int(year.group()) if year else None,
            "quit_text": quit_text,
            "product": product,
        }

    def alcohol(self) -> dict[str, Any]:
        if m := self._latest((self.rules.amount,)):
            return {"drinks_per_week": self._drinks(m), "amount_text": self.text[m.start() : m.end()].strip()}
        if m := self._latest((self.rules.qualitative,)):
            return {"drinks_per_week": None, "amount_text": self.text[m.start() : m.end()]}
        return {"drinks_per_week": None, "amount_text": None}

    def _drinks(self, m: re.Match[str]) -> float | None:
        """Drinks a week ("2 beers/night" -> 14); None unless a number and a weekly rate are stated."""
        unit = m["unit"] or m["pack"]
        per_unit, container = next(
            ((d, c) for p, d, c in self.rules.units if p.fullmatch(unit)), (None, False)
        )
        count, article_only = self.rules.numbers.value(m["count"]) if m["count"] else (1.0, True)
        if count is None or per_unit is None or (article_only and not container) or m["period"] is None:
            return None  # "a glass of wine", "1 pint vodka/day"; but "a 6-pack daily" states its number
        per_week = self.rules.per_week(m["period"])
        if m["also"] and self.rules.per_week(m["also"]) is None:
            return None  # "4 beers per day on weekends"
        times = self.rules.numbers.value(m["times"])[0] if m["times"] else 1.0
        if per_week is None or times is None:
            return None
        return _rounded(count * per_unit * times * per_week)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _finding(topic: Topic, claims: list[_Claim], rules: _Rules, text: str, low: str) -> Finding:
    resolved = _resolve(topic, claims)
    status = _status(topic, set(resolved.values()))
    meaning = STATUS_OF_KIND[topic]
    support = [c for c in claims if meaning[c.kind] == status and meaning[resolved[c.key]] == status]
    evidence = tuple(dict.fromkeys(Evidence(c.start, c.end, text[c.start : c.end], c.rule) for c in support))
    if topic == "smoking":
        if status not in ("current", "former"):
            return Finding(status, evidence, dict.fromkeys(SMOKING_DETAILS))
        product = next((c.key for c in reversed(support) if c.key), None)
        # amounts add up over every statement of use ("smokes 1 ppd ... smoked 50 pack years")
        used = sorted({c.region for c in claims if c.kind != "never"})
        return Finding(status, evidence, _Details(rules, text, low, used).smoking(status, product))
    if topic == "alcohol":
        if status != "yes":
            return Finding(status, evidence, {"drinks_per_week": None, "amount_text": None})
        return Finding(
            status, evidence, _Details(rules, text, low, sorted({c.region for c in support})).alcohol()
        )
    substances = (
        [k for k, kind in resolved.items() if k and meaning[kind] == "yes"] if status == "yes" else []
    )
    return Finding(status, evidence, {"substances": substances})


def read_social_history(text: str) -> SocialHistory:
    """Smoking, alcohol and recreational drug use as the note states them.

    Args:
        text: A clinical note (any length; sections and templates are recognised, none is needed).

    Returns:
        One :class:`Finding` per topic; ``unknown`` with no evidence where the note says nothing.

    Raises:
        InputError: ``text`` is not a string (code ``invalid_type``).
        ResourceError: ``social_history.json`` is invalid.
    """
    if not isinstance(text, str):
        raise InputError(f"social history needs note text, not {type(text).__name__}", code="invalid_type")
    rules = _rules()
    reader = _NoteReader(rules, text)
    claims = reader.claims()
    smoking, alcohol, drugs = (
        _finding(t, [c for c in claims if c.topic == t], rules, text, reader.low) for t in TOPICS
    )
    return SocialHistory(smoking=smoking, alcohol=alcohol, drugs=drugs)
