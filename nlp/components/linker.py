"""Codes for the mentions a model found: the TF-IDF + HNSW candidate generator of :mod:`nlp.linking`.

Mentions from the lexicon already carry the codes of the term they spell. A model also finds
mentions no vocabulary spells ("pulm embolism", "DM type II"); for those (``span._.source``
starting with ``model`` and no codes yet) this component sets ``span._.codes`` to the best
candidates of the mention's label, best first, each with its similarity score. A mention whose
best candidate scores below the threshold keeps no code. Spans that have codes are left alone.
A mention that is a short form the note defines ("... pulmonary embolism (PE)") is linked by its
long form, which also goes to ``span._.expansion``.
"""

from collections.abc import Iterable, Iterator
from pathlib import Path

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import minibatch

from nlp import linking
from nlp.components.lexicon import SPAN_GROUP
from nlp.errors import ConfigError

MAX_CODES = 3


def needs_codes(span: Span) -> bool:
    """A model-found mention without codes."""
    return not span._.codes and (span._.source or "").startswith("model")


def defined_long_forms(doc: Doc) -> dict[tuple[int, int], str]:
    """Token offsets of the short forms the note defines ("pulmonary embolism (PE)") → long form."""
    return {
        (short.start, short.end): short._.long_form.text
        for short in getattr(doc._, "abbreviations", None) or ()
        if short._.long_form is not None
    }


class ClinicalLinker:
    """Links code-less model mentions; the KB and index live in :mod:`nlp.linking`."""

    def __init__(self, name: str, threshold: float, k: int, cache_dir: str | None) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ConfigError(f"{name}: threshold must be in (0, 1], not {threshold}")
        if not 1 <= k <= MAX_CODES:
            raise ConfigError(f"{name}: k must be in 1..{MAX_CODES}, not {k}")
        self.name = name
        self.threshold = threshold
        self.k = k
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self._linker: linking.Linker | None = None

    @property
    def linker(self) -> linking.Linker:
        """The KB and indexes, loaded (or built and cached) on first use."""
        if self._linker is None:
            self._linker = linking.load(self.cache_dir)
        return self._linker

    def __call__(self, doc: Doc) -> Doc:
        self._link([doc])
        return doc

    def pipe(self, docs: Iterable[Doc], batch_size: int = 64) -> Iterator[Doc]:
        """Link the mentions of each batch of Docs with one candidate query."""
        for batch in minibatch(docs, size=batch_size):
            self._link(batch)
            yield from batch

    def _link(self, docs: list[Doc]) -> None:
        spans: list[Span] = []
        texts: list[str] = []
        for doc in docs:
            if SPAN_GROUP not in doc.spans:
                continue
            long_forms = defined_long_forms(doc)
            for span in doc.spans[SPAN_GROUP]:
                if not needs_codes(span):
                    continue
                long_form = long_forms.get((span.start, span.end))
                if long_form is not None:
                    span._.expansion = long_form
                spans.append(span)
                texts.append(long_form or span.text)
        if not spans:
            return
        found = self.linker.link(texts, [s.label_ for s in spans], k=self.k, threshold=self.threshold)
        for span, candidates in zip(spans, found, strict=True):
            span._.codes = tuple((c.system, c.code, c.display, c.score) for c in candidates)


@Language.factory(
    "clinical_linker",
    default_config={"threshold": linking.DEFAULT_THRESHOLD, "k": linking.DEFAULT_K, "cache_dir": None},
    requires=["doc.spans"],
    assigns=["span._.codes", "span._.expansion"],
)
def make_clinical_linker(
    nlp: Language, name: str, threshold: float, k: int, cache_dir: str | None
) -> ClinicalLinker:
    return ClinicalLinker(name, threshold, k, cache_dir)
