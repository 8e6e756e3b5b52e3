"""Terminology matcher: finds PROBLEM, DRUG, DRUG_CLASS and NO_KNOWN_ALLERGY mentions.

The dictionary is built from installable vocabularies on first use and cached on disk (see
:mod:`nlp.terminology`). Mentions go to the one span group ``doc.spans["clinical"]`` with
their codes and source. Abbreviations defined in the note (``doc._.abbreviations``) get the
concept of their long form.
"""

import hashlib
from pathlib import Path

from spacy.language import Language
from spacy.tokens import Doc, Span

from nlp import resources, terminology
from nlp.components import tokenizer as tokenizer_module
from nlp.terminology import Concept, Terminology

SPAN_GROUP = "clinical"


def set_concept(span: Span, concept: Concept, source: str) -> None:
    """Copy a concept's codes and flags onto a mention span."""
    span._.codes = tuple((system, code, display, 1.0) for system, code, display in concept.codes)
    span._.chronic = concept.chronic
    span._.source = source


class LexiconMatcher:
    """Finds vocabulary terms in a Doc; the heavy dictionary lives in :mod:`nlp.terminology`."""

    def __init__(self, nlp: Language, name: str, sources: list[str], cache_dir: str | None) -> None:
        self.name = name
        self.sources = list(sources)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self._tokenizer = nlp.tokenizer
        self._terminology: Terminology | None = None

    @property
    def terminology(self) -> Terminology:
        if self._terminology is None:
            # the rules and the code that applies them: either changes how terms are split
            rules = resources.read_text("tokenizer").encode() + Path(tokenizer_module.__file__).read_bytes()
            tokenizer_fp = hashlib.sha256(rules).hexdigest()[:16]
            self._terminology = terminology.load(
                self._tokenize,
                sources=self.sources,
                tokenizer_fingerprint=tokenizer_fp,
                cache_dir=self.cache_dir,
            )
        return self._terminology

    def _tokenize(self, texts):
        for doc in self._tokenizer.pipe(texts, batch_size=2000):
            yield [t.text for t in doc]

    def __call__(self, doc: Doc) -> Doc:
        term = self.terminology
        skip = [t.is_space or "\n" in t.text for t in doc]
        for title in _section_titles(doc):
            for i in range(title.start, title.end):
                skip[i] = True
        mentions = []
        for start, end, idx in term.find([t.text for t in doc], [t.lower_ for t in doc], skip):
            concept = term.concepts[idx]
            span = Span(doc, start, end, label=concept.label)
            set_concept(span, concept, f"lexicon:{concept.source}")
            mentions.append(span)
        mentions += self._defined_abbreviations(doc, mentions, term)
        mentions.sort(key=lambda s: (s.start, -s.end))
        doc.spans[SPAN_GROUP] = mentions
        return doc

    def _defined_abbreviations(self, doc: Doc, mentions: list[Span], term: Terminology) -> list[Span]:
        taken = {i for s in mentions for i in range(s.start, s.end)}
        extra = []
        for short in getattr(doc._, "abbreviations", None) or ():
            long_form = short._.long_form
            if long_form is None or any(i in taken for i in range(short.start, short.end)):
                continue
            concept = term.lookup([t.text for t in long_form])
            if concept is None:
                continue
            span = Span(doc, short.start, short.end, label=concept.label)
            set_concept(span, concept, "abbreviation")
            span._.expansion = long_form.text
            extra.append(span)
            taken.update(range(short.start, short.end))
        return extra

    def code_spans(self, spans: list[Span]) -> None:
        """Targets mode: give caller-supplied spans the codes of the term they spell, if any."""
        term = self.terminology
        for span in spans:
            concept = term.lookup([t.text for t in span])
            if concept is not None:
                set_concept(span, concept, "target")


def _section_titles(doc: Doc) -> list[Span]:
    titles = []
    for section in getattr(doc._, "sections", None) or ():
        if section.title_span and section.title_span[1] > section.title_span[0]:
            titles.append(doc[section.title_span[0] : section.title_span[1]])
    return titles


@Language.factory(
    "clinical_lexicon",
    default_config={"sources": list(terminology.SOURCES), "cache_dir": None},
    assigns=["doc.spans"],
)
def make_clinical_lexicon(
    nlp: Language, name: str, sources: list[str], cache_dir: str | None
) -> LexiconMatcher:
    return LexiconMatcher(nlp, name, sources, cache_dir)
