"""The spaCy CNN NER model (``models/ner-cnn``) as a component of the clinical pipeline.

The trained pipeline (tok2vec + ner, trained by :mod:`nlp.train.cnn` with the same tokenizer) runs
on our Doc; its entities become mention spans merged into ``doc.spans["clinical"]`` by
:func:`nlp.components.merge.merge_into_clinical`, and ``doc.ents`` is left empty again. The greedy
transition parser gives no per-mention confidence, so a model mention's ``score`` is the model's
measured precision on the validation splits (``training.json``), and its ``source`` is
``model:<model folder name>@<version>``.
"""

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, cast

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import minibatch

from nlp.components import lexicon_features, tokenizer  # noqa: F401  (register what the model config names)
from nlp.components.merge import merge_into_clinical
from nlp.models import resolve_model_dir


def validation_precision(model_dir: Path) -> float:
    """The model's strict precision on the validation splits (``training.json``).

    A final run (trained on train + validation) carries its selection run's figure.
    """
    path = model_dir / "training.json"
    if not path.exists():
        return 1.0
    report = json.loads(path.read_text("utf-8"))
    if report.get("mention_precision") is not None:
        return float(report["mention_precision"])
    best = next(h for h in report["history"] if h["epoch"] == report["best_epoch"])
    return float(best["dev_p"])


class CnnNer:
    """Runs a trained tok2vec + ner pipeline on our Docs and merges what it finds."""

    def __init__(self, nlp: Language, name: str, model: str, batch_size: int) -> None:
        self.name = name
        self.model_dir = resolve_model_dir(model)
        self.batch_size = batch_size
        self.inner = spacy.load(self.model_dir)
        self.source = f"model:{self.model_dir.name}@{self.inner.meta.get('version', '0')}"
        self.score = validation_precision(self.model_dir)
        self._ner = cast(Any, self.inner.get_pipe("ner"))  # the trained EntityRecognizer
        for label in self._ner.labels:
            nlp.vocab.strings.add(label)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self._ner.labels)

    def __call__(self, doc: Doc) -> Doc:
        for _, proc in self.inner.pipeline:
            doc = proc(doc)
        return self._merge(doc)

    def pipe(self, docs: Iterable[Doc], batch_size: int | None = None) -> Iterator[Doc]:
        for batch in minibatch(docs, size=batch_size or self.batch_size):
            for _, proc in self.inner.pipeline:
                batch = list(proc.pipe(batch))  # type: ignore[attr-defined]
            yield from (self._merge(doc) for doc in batch)

    def _merge(self, doc: Doc) -> Doc:
        found = [(span, self.score) for span in doc.ents]
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
