"""Transformer NER: a token classifier run with onnxruntime, its mentions merged into ``doc.spans``.

The model is a folder (see :mod:`nlp.ner_onnx`) named as :func:`nlp.models.resolve_model_dir` reads
it: a path, or a folder name under the repository's ``models/``. Entity character offsets become spaCy
spans with ``alignment_mode="expand"``, so a mention that ends inside a spaCy token covers that whole
token. Each span gets ``_.score`` (the mean word probability) and ``_.source = "model:<folder name>"``
as it joins the lexicon's mentions through :func:`nlp.components.merge.merge_into_clinical`.
"""

from collections.abc import Iterable, Iterator

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import minibatch

from nlp.components.merge import merge_into_clinical, merge_roles
from nlp.models import resolve_model_dir
from nlp.ner_onnx import Entity, OnnxTokenClassifier


def entity_spans(doc: Doc, entities: Iterable[Entity]) -> list[tuple[Span, float]]:
    """Token-aligned (expanded) spans of ``entities`` with their scores; overlaps of earlier ones dropped.

    The spans carry no ``._`` values: :func:`merge_into_clinical` sets ``source`` and ``score`` on the
    ones it keeps.
    """
    found: list[tuple[Span, float]] = []
    taken: set[int] = set()
    for start, end, label, score in entities:
        span = doc.char_span(start, end, label=label, alignment_mode="expand")
        if span is None or any(i in taken for i in range(span.start, span.end)):
            continue
        taken.update(range(span.start, span.end))
        found.append((span, round(float(score), 4)))
    return found


class TransformerNer:
    """Adds the token classifier's mentions to ``doc.spans["clinical"]``.

    Args:
        model: model folder, absolute or relative to ``models/``.
        threads: onnxruntime intra-op threads.
        batch_size: Docs per classifier call in :meth:`pipe` (windows per onnxruntime call too).
    """

    def __init__(self, model: str, threads: int = 1, batch_size: int = 16) -> None:
        self.classifier = OnnxTokenClassifier(
            resolve_model_dir(model), threads=threads, batch_size=batch_size
        )
        self.source = f"model:{self.classifier.name}"
        self.batch_size = batch_size

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.classifier.labels)

    def __call__(self, doc: Doc) -> Doc:
        self._annotate([doc])
        return doc

    def pipe(self, stream: Iterable[Doc], batch_size: int | None = None) -> Iterator[Doc]:
        """Annotate Docs in batches (one classifier call per batch)."""
        for batch in minibatch(stream, size=batch_size or self.batch_size):
            self._annotate(batch)
            yield from batch

    def _annotate(self, docs: list[Doc]) -> None:
        for doc, entities in zip(docs, self.classifier.predict([d.text for d in docs]), strict=True):
            self._merge(doc, entity_spans(doc, entities), self.source)

    _merge = staticmethod(merge_into_clinical)


class AdeTagger(TransformerNer):
    """Marks the drugs and reactions of adverse drug events with a token classifier trained on them.

    The model (``models/ade-minilm``: ADE-Corpus-V2 read as exhaustive, see ``models/README.md``) tags
    only mentions that take part in a drug -> reaction attribution, with the corpus's boundaries. Its
    spans win over the mentions they overlap and carry ``adr_role`` (:func:`merge_roles`);
    :mod:`nlp.components.adr` then pairs the marked mentions.
    """

    _merge = staticmethod(merge_roles)


@Language.factory(
    "clinical_transformer_ner",
    default_config={"model": "ner-minilm", "threads": 1, "batch_size": 16},
    assigns=["doc.spans"],
)
def make_clinical_transformer_ner(
    nlp: Language, name: str, model: str, threads: int, batch_size: int
) -> TransformerNer:
    return TransformerNer(model, threads=threads, batch_size=batch_size)


@Language.factory(
    "clinical_ade_tagger",
    default_config={"model": "ade-minilm", "threads": 1, "batch_size": 16},
    assigns=["doc.spans"],
)
def make_clinical_ade_tagger(
    nlp: Language, name: str, model: str, threads: int, batch_size: int
) -> AdeTagger:
    return AdeTagger(model, threads=threads, batch_size=batch_size)
