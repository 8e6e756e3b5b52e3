"""A tok2vec embedding that also sees what the lexicon found (a gazetteer feature).

spaCy's ``MultiHashEmbed`` embeds token attributes (NORM, PREFIX, SUFFIX, SHAPE). This one adds a
column per token: whether the token begins or continues a lexicon mention in
``doc.spans["clinical"]``, and of which label. The CNN NER runs after the lexicon, so the feature
is there at inference; :mod:`nlp.train.cnn` runs the lexicon on training text for the same reason.
The model still decides: the feature is one embedding among five.
"""

from typing import cast

from spacy.ml.featureextractor import FeatureExtractor
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import HashEmbed, Maxout, Model, chain, concatenate, list2ragged, ragged2list, with_array
from thinc.types import Floats2d, Ints2d, Ragged

from nlp.components.lexicon import SPAN_GROUP

LEXICON_TAGS = {
    (position, label): i
    for i, (position, label) in enumerate(
        ((p, lab) for lab in ("PROBLEM", "DRUG", "DRUG_CLASS", "NO_KNOWN_ALLERGY") for p in ("B", "I")), 1
    )
}


def lexicon_column(doc: Doc) -> list[int]:
    """Per token: 0 outside lexicon mentions, else the id of (B|I, label)."""
    column = [0] * len(doc)
    for span in doc.spans.get(SPAN_GROUP, ()):
        for i in range(span.start, span.end):
            column[i] = LEXICON_TAGS.get(("B" if i == span.start else "I", span.label_), 0)
    return column


def _extract(model: Model, docs: list[Doc], is_train: bool) -> tuple[list[Ints2d], object]:
    features, _ = model.layers[0](docs, is_train)
    out = []
    for doc, array in zip(docs, features, strict=True):
        column = model.ops.asarray2i([[v] for v in lexicon_column(doc)], dtype="uint64")
        out.append(model.ops.xp.hstack((array, column.reshape((len(doc), 1)))))
    return out, lambda d_features: []


@registry.architectures("notes2fhir.LexiconHashEmbed.v1")
def lexicon_hash_embed(
    width: int, attrs: list[str], rows: list[int], lexicon_rows: int
) -> Model[list[Doc], list[Floats2d]]:
    """``MultiHashEmbed`` over ``attrs`` plus a hash embedding of :func:`lexicon_column`."""
    if len(rows) != len(attrs):
        raise ValueError(f"Mismatched lengths: {len(rows)} vs {len(attrs)}")
    sizes = [*rows, lexicon_rows]
    embeddings: list[Model] = [
        HashEmbed(width, n, column=i, seed=8 + i, dropout=0.0) for i, n in enumerate(sizes)
    ]
    extractor: Model[list[Doc], list[Ints2d]] = Model(
        "extract_features_with_lexicon", _extract, layers=[FeatureExtractor(list(attrs))]
    )
    return chain(
        extractor,
        cast(Model[list[Ints2d], Ragged], list2ragged()),
        with_array(concatenate(*embeddings)),
        with_array(Maxout(width, width * len(sizes), nP=3, dropout=0.0, normalize=True)),
        ragged2list(),
    )
