"""The spaCy CNN NER model (``models/ner-cnn``) as a component of the clinical pipeline.

The trained pipeline (tok2vec + ner, trained by :mod:`nlp.train.cnn` with the same tokenizer) runs
on our Doc; its entities become mention spans merged into ``doc.spans["clinical"]`` by
:func:`nlp.components.merge.merge_into_clinical`, and ``doc.ents`` is left empty again. The greedy
transition parser gives no confidence, so model mentions carry ``score`` 1.0 and
``source`` ``model:<model folder name>@<version>``.
"""

from collections.abc import Iterable, Iterator

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import minibatch

from nlp.components import lexicon_features, tokenizer  # noqa: F401  (register what the model config names)
from nlp.components.merge import merge_into_clinical
from nlp.models import resolve_model_dir


class CnnNer:
    """Runs a trained tok2vec + ner pipeline on our Docs and merges what it finds."""

    def __init__(self, nlp: Language, name: str, model: str, batch_size: int) -> None:
        self.name = name
        self.model_dir = resolve_model_dir(model)
        self.batch_size = batch_size
        self.inner = spacy.load(self.model_dir)
        self.source = f"model:{self.model_dir.name}@{self.inner.meta.get('version', '0')}"
        for label in self.inner.get_pipe("ner").labels:
            nlp.vocab.strings.add(label)

    def __call__(self, doc: Doc) -> Doc:
        for _, proc in self.inner.pipeline:
            doc = proc(doc)
        return self._merge(doc)

    def pipe(self, docs: Iterable[Doc], batch_size: int | None = None) -> Iterator[Doc]:
        for batch in minibatch(docs, size=batch_size or self.batch_size):
            for _, proc in self.inner.pipeline:
                batch = list(proc.pipe(batch))
            yield from (self._merge(doc) for doc in batch)

    def _merge(self, doc: Doc) -> Doc:
        found = [(span, 1.0) for span in doc.ents]
        doc.ents = []
        merge_into_clinical(doc, found, self.source)
        return doc


@Language.factory(
    "clinical_cnn_ner",
    default_config={"model": "ner-cnn", "batch_size": 32},
    requires=["doc.spans"],
    assigns=["doc.spans"],
)
def make_cnn_ner(nlp: Language, name: str, model: str, batch_size: int) -> CnnNer:
    return CnnNer(nlp, name, model, batch_size)
