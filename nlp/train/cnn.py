"""Train the spaCy CNN NER (hash-embedding CNN tok2vec + transition-based NER) from the corpora.

One command, seeded and single-threaded: ``notes2fhir train ner --arch cnn --out models/ner-cnn``.
The training set is the union of the corpora's train splits (:func:`nlp.train.data.ner_examples`);
the validation splits pick the best epoch. The embedding sees the lexicon's mentions
(:mod:`nlp.components.lexicon_features`). Tokens whose label is unknown become spaCy's missing
value ``-`` rather than ``O``: words inside unmapped spans of a partially annotated corpus,
misaligned gold spans, and words the lexicon labels with a label the corpus does not annotate (an
NCBI abstract's drug names are not "not a DRUG").
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import random
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy
import spacy
from spacy.language import Language
from spacy.pipeline import EntityRecognizer
from spacy.scorer import get_ner_prf
from spacy.training import Example, offsets_to_biluo_tags
from thinc.api import Adam, fix_random_seed

from nlp.components.lexicon import SPAN_GROUP
from nlp.pipeline import VERSION
from nlp.train.data import TRAIN_CORPORA, NerExample, ner_examples

log = logging.getLogger(__name__)

LABELS = ("PROBLEM", "DRUG", "TEST", "PROCEDURE")

CONFIG = """
[nlp]
lang = "en"
pipeline = ["tok2vec", "ner"]

[nlp.tokenizer]
@tokenizers = "notes2fhir.clinical_tokenizer.v1"

[components]

[components.tok2vec]
factory = "tok2vec"

[components.tok2vec.model]
@architectures = "spacy.Tok2Vec.v2"

[components.tok2vec.model.embed]
@architectures = "notes2fhir.LexiconHashEmbed.v1"
width = ${components.tok2vec.model.encode.width}
attrs = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
rows = [10000, 2000, 5000, 1000]
lexicon_rows = 64

[components.tok2vec.model.encode]
@architectures = "spacy.MaxoutWindowEncoder.v2"
width = %(width)d
depth = %(depth)d
window_size = 1
maxout_pieces = 3

[components.ner]
factory = "ner"

[components.ner.model]
@architectures = "spacy.TransitionBasedParser.v2"
state_type = "ner"
extra_state_tokens = false
hidden_width = 64
maxout_pieces = 2
use_upper = true
nO = null

[components.ner.model.tok2vec]
@architectures = "spacy.Tok2VecListener.v1"
width = ${components.tok2vec.model.encode.width}
"""


def build_model(width: int = 128, depth: int = 4) -> Language:
    """An untrained tok2vec + ner pipeline with the clinical tokenizer."""
    import nlp.components.lexicon_features  # noqa: F401  (registers the embedding)
    import nlp.components.tokenizer  # noqa: F401  (registers the tokenizer)

    config = spacy.util.load_config_from_str(CONFIG % {"width": width, "depth": depth}, interpolate=False)
    return spacy.util.load_model_from_config(config, auto_fill=True, validate=True)


def to_spacy_examples(
    model: Language, examples: Sequence[NerExample], lexicon: Callable[[str], list[tuple[int, int, str]]]
) -> list[Example]:
    """spaCy Examples with BILUO gold and the lexicon's mentions on the predicted Doc.

    The lexicon's spans feed the embedding (:mod:`nlp.components.lexicon_features`) and mark
    unknown tokens: a lexicon DRUG in a corpus that does not annotate drugs is ``-``, not ``O``.
    """
    out = []
    for ex in examples:
        doc = model.make_doc(ex.text)
        found = lexicon(ex.text)
        doc.spans[SPAN_GROUP] = [
            span
            for s, e, label in found
            if (span := doc.char_span(s, e, label=label, alignment_mode="expand")) is not None
        ]
        tags = offsets_to_biluo_tags(doc, list(ex.spans), missing="O")
        unknown = list(ex.missing) + [(s, e) for s, e, label in found if label not in ex.annotated]
        if unknown:
            for token in doc:
                if tags[token.i] == "O" and any(
                    s < token.idx + len(token) and token.idx < e for s, e in unknown
                ):
                    tags[token.i] = "-"
        out.append(Example.from_dict(doc, {"entities": tags}))
    return out


def lexicon_labeller(cache_dir: Path | None) -> Callable[[str], list[tuple[int, int, str]]]:
    """The lexicon's mentions of a text as character offsets, found as the pipeline finds them."""
    from nlp.pipeline import load

    nlp = load("lexicon", cache_dir=cache_dir).nlp
    keep = {"clinical_sentences", "clinical_sections", "clinical_abbreviations", "clinical_lexicon"}

    def label(text: str) -> list[tuple[int, int, str]]:
        doc = nlp.make_doc(text)
        for name, proc in nlp.pipeline:
            if name in keep:
                doc = proc(doc)
        return [(s.start_char, s.end_char, s.label_) for s in doc.spans.get(SPAN_GROUP, [])]

    return label


def score(
    model: Language, examples: Sequence[Example], annotated: Sequence[frozenset[str]]
) -> dict[str, float]:
    """Strict P/R/F1 on copies of the examples' predicted Docs (lexicon spans kept).

    Only the labels each example annotates count: a TEST found in a BC5CDR abstract is not an error.
    """
    predicted = model.pipe((eg.predicted.copy() for eg in examples), batch_size=64)
    scored = []
    for doc, eg, labels in zip(predicted, examples, annotated, strict=True):
        doc.ents = [e for e in doc.ents if e.label_ in labels]
        scored.append(Example(doc, eg.reference))
    prf = get_ner_prf(scored)
    return {"ents_p": prf["ents_p"] or 0.0, "ents_r": prf["ents_r"] or 0.0, "ents_f": prf["ents_f"] or 0.0}


def train_cnn(
    out_dir: Path,
    *,
    corpora_names: Sequence[str] = TRAIN_CORPORA,
    epochs: int = 20,
    patience: int = 4,
    seed: int = 13,
    width: int = 128,
    depth: int = 4,
    dropout: float = 0.15,
    learn_rate: float = 0.001,
    batch_words: int = 1500,
    cache_dir: Path | None = None,
    limit: int | None = None,
    corpus_dirs: dict[str, Path] | None = None,
    final_epochs: int | None = None,
    mention_precision: float | None = None,
) -> dict[str, Any]:
    """Train and save the pipeline to ``out_dir``; return the log (also written as ``training.json``).

    Selection run (default): train on the train splits, keep the best epoch by validation F1.
    Final run (``final_epochs``): train on train + validation for exactly that many epochs, the
    count a selection run chose; ``mention_precision`` is that run's validation precision, which
    becomes the score of the model's mentions (the final run has no held-out data to measure it).
    """
    if final_epochs is not None and mention_precision is None:
        raise ValueError("a final run needs mention_precision from its selection run")
    started = time.perf_counter()
    random.seed(seed)
    numpy.random.seed(seed)
    fix_random_seed(seed)
    model = build_model(width, depth)
    lexicon = lexicon_labeller(cache_dir)
    train_raw = ner_examples("train", corpora_names, corpus_dirs=corpus_dirs)
    dev_raw = ner_examples("validation", corpora_names, corpus_dirs=corpus_dirs)
    if limit:
        train_raw, dev_raw = train_raw[:limit], dev_raw[: max(1, limit // 5)]
    if final_epochs is not None:
        train_raw, dev_raw, epochs = train_raw + dev_raw, [], final_epochs
    train = to_spacy_examples(model, train_raw, lexicon)
    dev = to_spacy_examples(model, dev_raw, lexicon)
    ner: EntityRecognizer = model.get_pipe("ner")  # type: ignore[assignment]
    for label in LABELS:
        ner.add_label(label)
    model.meta.update({"name": "ner_cnn", "version": VERSION, "labels": {"ner": list(LABELS)}})
    optimizer = model.initialize(
        lambda: train[:500], sgd=Adam(learn_rate, use_averages=True, L2=1e-6, grad_clip=1.0)
    )
    train_words = sum(len(ex.reference) for ex in train)
    log.info("training on %d examples (%d tokens), %d dev examples", len(train), train_words, len(dev))
    history: list[dict[str, Any]] = []
    best_f, best_epoch = -1.0, 0
    tmp = out_dir.with_name(out_dir.name + ".partial")
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        random.shuffle(train)
        losses: dict[str, float] = {}
        for batch in _batches(train, batch_words):
            model.update(batch, drop=dropout, sgd=optimizer, losses=losses)
        elapsed = time.perf_counter() - t0
        with model.use_params(optimizer.averages):
            scores = score(model, dev, [ex.annotated for ex in dev_raw]) if dev else _NO_DEV
            f = float(scores["ents_f"] or 0.0)
            if (dev and f > best_f) or (not dev and epoch == epochs):
                best_f, best_epoch = f, epoch
                if tmp.exists():
                    shutil.rmtree(tmp)
                model.to_disk(tmp)
        entry: dict[str, Any] = {"epoch": epoch, "loss": round(losses.get("ner", 0.0), 1)}
        if dev:
            entry.update(
                dev_f=round(f, 4),
                dev_p=round(float(scores["ents_p"] or 0), 4),
                dev_r=round(float(scores["ents_r"] or 0), 4),
            )
        entry["train_words_per_s"] = round(train_words / elapsed)
        history.append(entry)
        log.info("epoch %s", entry)
        if dev and epoch - best_epoch >= patience:
            break
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    report = {
        "arch": "spacy tok2vec (MultiHashEmbed + MaxoutWindowEncoder) + TransitionBasedParser ner",
        "width": width,
        "depth": depth,
        "labels": list(LABELS),
        "corpora": list(corpora_names),
        "train_examples": len(train),
        "train_tokens": train_words,
        "dev_examples": len(dev),
        "seed": seed,
        "dropout": dropout,
        "learn_rate": learn_rate,
        "batch_words": batch_words,
        "protocol": (
            f"final: train + validation, {final_epochs} epochs fixed by a selection run"
            if final_epochs is not None
            else "selection: train splits, best epoch by validation F1"
        ),
        "mention_precision": mention_precision,
        "best_epoch": best_epoch,
        "best_dev_f": round(best_f, 4) if dev else None,
        "history": history,
        "wall_seconds": round(time.perf_counter() - started),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "spacy": spacy.__version__,
    }
    (out_dir / "training.json").write_text(json.dumps(report, indent=2) + "\n")
    report["sha256"] = _dir_hash(out_dir)
    return report


_NO_DEV = {"ents_p": 0.0, "ents_r": 0.0, "ents_f": 0.0}


def _batches(examples: list[Example], words: int) -> list[list[Example]]:
    batches, batch, size = [], [], 0
    for ex in examples:
        batch.append(ex)
        size += len(ex.reference)
        if size >= words:
            batches.append(batch)
            batch, size = [], 0
    if batch:
        batches.append(batch)
    return batches


def _dir_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
