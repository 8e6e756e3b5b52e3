"""Training examples for the NER models: corpus documents cut into sentence chunks, labels mapped to ours.

Both learners (the spaCy CNN and the MiniLM token classifier) read the same :class:`NerExample` list,
so their scores compare like for like. Corpora annotate different things: BC5CDR marks diseases and
chemicals, NCBI only diseases, Chia conditions, drugs, procedures and measurements. Each example says
which house labels it annotates exhaustively (``annotated``); a learner must not read "no span" as
"not a DRUG" in an NCBI abstract. In an exhaustively annotated corpus, spans of labels we do not map
(Chia's ``Value``, DDI's drug classes) are words that are not mentions; in a partially annotated one
(ADE-Corpus-V2) they are ``missing``: neither entity nor non-entity for training.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import spacy

import corpora
from nlp.components.sentences import split_sentences
from nlp.components.tokenizer import build_tokenizer

TRAIN_CORPORA = ("bc5cdr", "ncbi_disease", "chia")
MAX_CHUNK_TOKENS = 120


@dataclass(frozen=True)
class NerExample:
    """One chunk of text with its gold mentions in house labels."""

    text: str
    spans: tuple[tuple[int, int, str], ...]  # (start_char, end_char, house label)
    annotated: frozenset[str]  # house labels annotated exhaustively in this example
    missing: tuple[tuple[int, int], ...]  # char ranges whose labels are unknown
    corpus: str
    doc_id: str = ""


def ner_examples(
    split: str,
    corpora_names: Sequence[str] = TRAIN_CORPORA,
    corpus_dir: str | os.PathLike[str] | None = None,
    *,
    corpus_dirs: dict[str, Path] | None = None,
    exhaustive: bool = False,
) -> list[NerExample]:
    """Sentence-chunk examples of ``split`` from every corpus in ``corpora_names``.

    A name may restrict the house labels taken from that corpus: ``"chia:DRUG+TEST+PROCEDURE"``
    keeps Chia's drugs, tests and procedures and treats its conditions as unannotated (their words
    are ``missing``), for when a corpus' guideline for one label conflicts with the others'.
    ``corpus_dir`` is the folder of one corpus (only meaningful with a single name); ``corpus_dirs``
    maps names to folders. Otherwise corpora are found as :func:`corpora.corpus_path` says.

    ``exhaustive`` reads every corpus as annotating all house labels exhaustively, whatever its spec
    says: a model of the corpus's own convention. ADE-Corpus-V2 read so teaches a tagger of the drugs
    and reactions that take part in an adverse drug event (its ADE-NEG sentences are all ``O``).
    """
    nlp = spacy.blank("en")
    nlp.tokenizer = build_tokenizer(nlp)
    examples: list[NerExample] = []
    for entry in corpora_names:
        name, _, only = entry.partition(":")
        folder = (corpus_dirs or {}).get(name) or (corpus_dir if len(corpora_names) == 1 else None)
        spec = corpora.get_spec(name)
        taken = frozenset(only.split("+")) if only else frozenset(spec.label_map.values())
        if exhaustive:
            annotated = taken if only else frozenset(corpora.HOUSE_LABELS)
        else:
            annotated = spec.annotated & taken
        dataset = corpora.load(name, split=split, corpus_dir=folder)
        for row in dataset:
            gold, missing = [], []
            for span in row["spans"]:
                label = spec.label_map.get(span["label"])
                if label is not None and label in taken:
                    gold.append((span["start"], span["end"], label))
                elif label is not None or not (spec.annotated or exhaustive):
                    missing.append((span["start"], span["end"]))
            examples.extend(chunk_document(nlp, row["text"], gold, missing, annotated, name, row["id"]))
    return examples


def chunk_document(
    nlp: spacy.language.Language,
    text: str,
    spans: Iterable[tuple[int, int, str]],
    missing: Iterable[tuple[int, int]],
    annotated: frozenset[str],
    corpus: str,
    doc_id: str = "",
    max_tokens: int = MAX_CHUNK_TOKENS,
) -> list[NerExample]:
    """Cut one document into chunks of whole sentences (at most ``max_tokens`` tokens where possible).

    A chunk never ends inside a gold or missing span; overlapping gold spans keep the longest.
    """
    gold = _drop_overlaps(spans)
    holes = sorted(set(missing))
    doc = split_sentences(nlp.make_doc(text))
    covered = [(s, e) for s, e, _ in gold] + holes
    cuts = [0]
    size = 0
    for sent in doc.sents:
        boundary = sent.start_char
        inside = any(s < boundary < e for s, e in covered)
        if size and not inside and size + len(sent) > max_tokens:
            cuts.append(boundary)
            size = 0
        size += len(sent)
    cuts.append(len(text))
    out = []
    for start, end in itertools.pairwise(cuts):
        piece = text[start:end]
        stripped = piece.rstrip()
        lead = len(piece) - len(piece.lstrip())
        if not stripped.strip():
            continue
        chunk = piece[lead : len(stripped)]
        lo, hi = start + lead, start + len(stripped)
        out.append(
            NerExample(
                text=chunk,
                spans=tuple((s - lo, e - lo, lab) for s, e, lab in gold if lo <= s and e <= hi),
                annotated=annotated,
                missing=tuple((max(s, lo) - lo, min(e, hi) - lo) for s, e in holes if s < hi and lo < e),
                corpus=corpus,
                doc_id=doc_id,
            )
        )
    return out


def _drop_overlaps(spans: Iterable[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Longest-first, then earliest: the non-overlapping subset a BIO tagger can represent."""
    kept: list[tuple[int, int, str]] = []
    for s, e, label in sorted(set(spans), key=lambda x: (-(x[1] - x[0]), x[0], x[2])):
        if all(e <= ks or ke <= s for ks, ke, _ in kept):
            kept.append((s, e, label))
    return sorted(kept)
