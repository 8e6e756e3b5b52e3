"""Food and environmental allergens (and contrast media): ALLERGEN mentions, only where an allergy is
stated.

"Eggs" in a diet history is not a finding; "allergic to eggs" is. The phrases of
``resources/en/allergens.json`` are matched everywhere, and a match becomes an ``ALLERGEN`` mention
only when it is an allergy entry as :class:`nlp.components.allergies.AllergyCues` decides (the
allergies section, a cue before or after, or a list continuing one), and overlaps no other mention.
``span._.allergy`` carries its AllergyIntolerance category (food, environment, medication). A mention
producer: in targets mode the caller's spans replace it.
"""

from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span

from nlp import resources
from nlp.components.allergies import SUBSTANCE_LABELS, AllergyCues
from nlp.components.lexicon import SPAN_GROUP

LABEL = "ALLERGEN"


class Allergens:
    """Adds ALLERGEN mentions to ``doc.spans["clinical"]``."""

    def __init__(self, nlp: Language, cues: AllergyCues) -> None:
        self.cues = cues
        self.labels: tuple[str, ...] = (LABEL,)  # listed with the pipeline's labels
        self.source = "rules"
        self.matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.category: dict[int, str] = {}
        for category, phrases in resources.load("allergens").allergens.items():
            key = nlp.vocab.strings.add(f"allergen:{category}")
            self.category[key] = category
            self.matcher.add(f"allergen:{category}", [nlp.make_doc(p) for p in phrases])

    def __call__(self, doc: Doc) -> Doc:
        matches = self.matcher(doc)
        if not matches:
            return doc
        existing = list(doc.spans[SPAN_GROUP]) if SPAN_GROUP in doc.spans else []
        at = {i: s for s in existing for i in range(s.start, s.end)}
        candidates: list[tuple[Span, Span | None]] = []  # (allergen, the mention it replaces)
        claimed: set[int] = set()
        for key, start, end in sorted(matches, key=lambda m: (m[1], -m[2])):
            if any(i in claimed for i in range(start, end)):
                continue
            span = Span(doc, start, end, label=LABEL)
            overlapped = {at[i] for i in range(start, end) if i in at}  # mentions it overlaps
            replaced = overlapped.pop() if len(overlapped) == 1 else None
            if overlapped or (replaced is not None and not self._replaces(span, replaced, key)):
                continue
            span._.allergy = {"category": self.category[key]}
            span._.source = "lexicon:allergens"
            candidates.append((span, replaced))
            claimed.update(range(start, end))
        if not candidates:
            return doc
        replaced_spans = {r for _, r in candidates if r is not None}
        substances = sorted(
            [s for s in existing if s.label_ in SUBSTANCE_LABELS and s not in replaced_spans]
            + [c for c, _ in candidates],
            key=lambda s: s.start_char,
        )
        entries = self.cues.entries(doc.text, substances)
        kept = [(c, r) for c, r in candidates if c in entries]
        if kept:
            dropped = {r for _, r in kept if r is not None}
            spans = [s for s in existing if s not in dropped] + [c for c, _ in kept]
            doc.spans[SPAN_GROUP] = sorted(spans, key=lambda s: (s.start_char, s.end_char))
        return doc

    def _replaces(self, allergen: Span, mention: Span, key: int) -> bool:
        """An allergen takes the place of a mention that is the same words read as a drug or a
        problem ("eggs", "shellfish"), or of a problem that is the allergen with its cue ("latex
        allergy", "allergic to peanuts"); contrast media and the like stay drugs."""
        if mention.label_ not in ("DRUG", "PROBLEM"):
            return False
        if (mention.start, mention.end) == (allergen.start, allergen.end):
            return self.category[key] != "medication"
        if mention.label_ != "PROBLEM" or not (
            mention.start <= allergen.start and allergen.end <= mention.end
        ):
            return False
        text = mention.doc.text
        before = text[mention.start_char : allergen.start_char]
        after = text[allergen.end_char : mention.end_char]
        return (not before or self.cues.before.search(before) is not None) and (
            not after or self.cues.after.fullmatch(after) is not None
        )


@Language.factory("clinical_allergens", requires=["doc.spans"], assigns=["doc.spans", "span._.allergy"])
def make_clinical_allergens(nlp: Language, name: str) -> Allergens:
    return Allergens(nlp, AllergyCues.from_resources())
