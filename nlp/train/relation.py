"""Fine-tune all-MiniLM-L6-v2 as a drug -> adverse reaction pair classifier; export it to int8 ONNX.

Run ``python -m nlp.train.relation train --out models/adr-minilm`` to train, and ``python -m
nlp.train.relation evaluate --model models/adr-minilm --split test`` to score the shipped model.

**Input and head.** One candidate pair is the sentence with markers around the drug and the reaction
(:mod:`nlp.relation_onnx`). The head is a linear layer over the concatenated final-layer embeddings of
the two *opening* markers ``[D]`` and ``[R]`` ("entity start", Baldini Soares et al. 2019): a sentence
with several drugs and reactions is one ``[CLS]`` summary for every pair, whereas the marker
embeddings differ per pair by construction; and all-MiniLM-L6-v2 was trained with mean pooling, so its
``[CLS]`` vector carries no special meaning to start from.

**Pairs.** Rows are split by PMID (``corpora.base.hash_split``, ADE-Corpus-V2's train / validation /
test); a split gathers candidates from three sources:

- ``ade_corpus_v2``: every ``DRUG`` x ``AE`` span pair of a sentence; positive when it is an ``ADE``
  relation. ADE-Corpus-V2 annotates only mentions that take part in a pair, so nearly every such pair
  is positive (the negatives are the crossings of two pairs in one sentence).
- ``phee``: PHEE sentences from all three official files whose PMID falls in the split (PHEE's
  official splits share PMIDs with ADE-Corpus-V2's test split, so they are re-split the same way).
  Candidates are ``Treatment.Drug`` x (``Effect``, ``Treatment.Disorder``, ``Subject.Disorder``);
  positive when the drug and effect belong to one non-negated ``Adverse_event`` (speculated events
  count, as ADE-Corpus-V2 annotates "possibly induced" pairs), negative otherwise, which makes
  indications, comorbidities and therapeutic effects negatives. Pairs of negated adverse events are
  left out. Most PHEE sentences are ADE-Corpus-V2 sentences: there a PHEE pair whose drug overlaps an
  ADE ``DRUG`` span and whose reaction overlaps an ADE ``AE`` span is left to ADE-Corpus-V2, so PHEE
  only adds the pairs ADE-Corpus-V2 has no spans for.
- ``ade_neg``: ADE-NEG sentences (annotated as holding no drug-caused adverse effect) carry no spans,
  so their candidates are the ``DRUG`` x ``PROBLEM`` mentions the shipped ``ner-minilm`` model finds,
  all negative. That is how the classifier meets candidates at inference too (NER mentions), and
  these are its main source of negatives. ADE-NEG sentences that PHEE annotates take PHEE's pairs.

A pair whose two spans overlap is a candidate in ADE-Corpus-V2 only, where "ifosfamide-induced
encephalopathy" is a gold AE around its drug; in PHEE "sotalol-induced bradycardia" is the disorder
glucagon treats, and pairing it with the sotalol inside it would make a false negative. A negative
whose spans overlap those of a positive of the same sentence is dropped (a longer or shorter reading
of a positive pair); a pair seen twice is kept once; a training pair whose sentence also occurs in the
validation or test split is dropped.

torch and transformers are imported here and nowhere on the inference path.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import random
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import BertModel, get_linear_schedule_with_warmup

import corpora
from corpora.base import hash_split
from nlp.errors import ModelNotFoundError
from nlp.models import MODELS_DIR, resolve_model_dir
from nlp.ner_onnx import CONFIG_FILE, TOKENIZER_FILE, OnnxTokenClassifier, load_tokenizer
from nlp.relation_onnx import (
    INPUT_NAMES,
    MARKER_TOKENS,
    TRAINING_FILE,
    CharSpan,
    MarkedPair,
    MarkerIds,
    OnnxPairClassifier,
    collate,
    mark_pairs,
    sigmoid,
)
from nlp.train.transformer import (
    BASE_PACKAGE,
    BASE_WEIGHTS_FILE,
    FP32_FILE,
    WARMUP_FRACTION,
    WEIGHT_DECAY,
    base_model_dir,
    f1_score,
    package_version,
    quantize,
    seed_everything,
    sha256_file,
)

log = logging.getLogger(__name__)

MODEL_NAME = "adr-minilm"
MODEL_VERSION = "0.1.0"
MAX_LENGTH = 128
SOURCES = ("ade_corpus_v2", "phee", "ade_neg")
PHEE_DRUG = "Treatment.Drug"
PHEE_REACTIONS = frozenset({"Effect", "Treatment.Disorder", "Subject.Disorder"})
NER_MODEL = "ner-minilm"
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)
AGREEMENT_PAIRS = 200
EVAL_BATCH_SIZE = 64


@dataclass(frozen=True)
class PairExample:
    """One candidate pair of one sentence.

    Attributes:
        text: the sentence.
        drug: character span of the drug.
        reaction: character span of the reaction.
        label: 1 when the drug caused the reaction, else 0.
        source: ``ade_corpus_v2``, ``phee`` or ``ade_neg`` (see the module docstring).
    """

    text: str
    drug: CharSpan
    reaction: CharSpan
    label: int
    source: str


def normalise(text: str) -> str:
    """Lower-cased text with whitespace runs collapsed (the key sentences are de-duplicated by)."""
    return " ".join(text.split()).lower()


def overlaps(a: CharSpan, b: CharSpan) -> bool:
    """Whether two character spans share a character."""
    return a[0] < b[1] and b[0] < a[1]


def label_candidates(
    text: str,
    drugs: Iterable[CharSpan],
    reactions: Iterable[CharSpan],
    positives: set[tuple[CharSpan, CharSpan]],
    source: str,
    *,
    excluded: set[tuple[CharSpan, CharSpan]] | frozenset = frozenset(),
    nested: bool = False,
) -> list[PairExample]:
    """Every drug x reaction pair of one sentence, labelled by ``positives``.

    A pair in ``excluded`` is left out; a negative pair whose drug and reaction overlap those of a
    positive pair is left out; a pair whose two spans overlap is a candidate only with ``nested``.
    """
    out = []
    for drug in sorted(set(drugs)):
        for reaction in sorted(set(reactions)):
            pair = (drug, reaction)
            if (overlaps(drug, reaction) and not nested) or pair in excluded:
                continue
            if pair in positives:
                out.append(PairExample(text, drug, reaction, 1, source))
            elif not any(overlaps(drug, d) and overlaps(reaction, r) for d, r in positives):
                out.append(PairExample(text, drug, reaction, 0, source))
    return out


def ade_pairs(row: dict[str, Any]) -> list[PairExample]:
    """Candidates of one ADE-Corpus-V2 row: every ``DRUG`` x ``AE`` span pair, gold ``ADE`` positive.

    Nested pairs are candidates here: "[R] [D] ifosfamide [/D]-induced encephalopathy [/R]" is gold.
    """
    spans = [(s["start"], s["end"]) for s in row["spans"]]
    labels = [s["label"] for s in row["spans"]]
    positives = {(spans[r["head"]], spans[r["tail"]]) for r in row["relations"] if r["type"] == "ADE"}
    drugs = [s for s, label in zip(spans, labels, strict=True) if label == "DRUG"]
    reactions = [s for s, label in zip(spans, labels, strict=True) if label == "AE"]
    return label_candidates(row["text"], drugs, reactions, positives, "ade_corpus_v2", nested=True)


def phee_pairs(
    row: dict[str, Any], ade_spans: tuple[list[CharSpan], list[CharSpan]] | None = None
) -> list[PairExample]:
    """Candidates of one PHEE row (see the module docstring).

    Args:
        row: a ``corpora.load("phee")`` row.
        ade_spans: ``(DRUG spans, AE spans)`` of the ADE-Corpus-V2 row with the same text, if any:
            pairs whose drug overlaps one of its drugs and whose reaction overlaps one of its AEs
            are left to ADE-Corpus-V2.
    """
    spans = [(s["start"], s["end"]) for s in row["spans"]]
    labels = [s["label"] for s in row["spans"]]
    positives: set[tuple[CharSpan, CharSpan]] = set()
    negated: set[tuple[CharSpan, CharSpan]] = set()
    for event in json.loads(row["meta"])["events"]:
        if event["type"] != "Adverse_event":
            continue
        args = event["arguments"]
        pairs = {(spans[d], spans[r]) for d in args.get(PHEE_DRUG, []) for r in args.get("Effect", [])}
        (negated if event["negated"] else positives).update(pairs)
    drugs = [s for s, label in zip(spans, labels, strict=True) if label == PHEE_DRUG]
    reactions = [s for s, label in zip(spans, labels, strict=True) if label in PHEE_REACTIONS]
    examples = label_candidates(
        row["text"], drugs, reactions, positives, "phee", excluded=negated - positives
    )
    if ade_spans is None:
        return examples
    ade_drugs, ade_reactions = ade_spans
    return [
        ex
        for ex in examples
        if not (
            any(overlaps(ex.drug, d) for d in ade_drugs)
            and any(overlaps(ex.reaction, r) for r in ade_reactions)
        )
    ]


def ner_pairs(text: str, entities: Iterable[tuple[int, int, str, float]]) -> list[PairExample]:
    """Negative candidates of an ADE-NEG sentence: every ``DRUG`` x ``PROBLEM`` NER mention pair."""
    entities = list(entities)
    drugs = [(s, e) for s, e, label, _ in entities if label == "DRUG"]
    reactions = [(s, e) for s, e, label, _ in entities if label == "PROBLEM"]
    return label_candidates(text, drugs, reactions, set(), "ade_neg")


def split_examples(
    split: str, ner: OnnxTokenClassifier | None, *, limit: int | None = None
) -> tuple[list[PairExample], set[str], dict[str, int]]:
    """Candidate pairs of one split from the three sources, the split's sentence keys, and counts.

    Args:
        split: ``train``, ``validation`` or ``test`` (ADE-Corpus-V2's PMID hash split).
        ner: the NER model that finds candidates in ADE-NEG sentences (``None``: no ``ade_neg`` pairs).
        limit: read only the first ``limit`` sentences of each source (smoke runs).

    Returns:
        ``(examples, normalised sentence texts of the split, counts of sentences by role)``.
    """
    ade_rows = list(corpora.load("ade_corpus_v2", split))
    phee_rows = [
        r
        for rows in corpora.load("phee").values()
        for r in rows
        if hash_split(json.loads(r["meta"])["pmid"]) == split
    ]
    neg_rows = [r for r in ade_rows if not r["spans"]]
    pos_rows = [r for r in ade_rows if r["spans"]]
    if limit is not None:
        pos_rows, phee_rows, neg_rows = pos_rows[:limit], phee_rows[:limit], neg_rows[:limit]
    ade_by_text: dict[str, dict[str, Any]] = {}
    for r in pos_rows:
        ade_by_text.setdefault(r["text"], r)
    examples = [ex for r in pos_rows for ex in ade_pairs(r)]
    phee_texts = set()
    for r in phee_rows:
        phee_texts.add(r["text"])
        ade_row = ade_by_text.get(r["text"])
        ade_spans = None
        if ade_row is not None:
            ade_spans = (
                [(s["start"], s["end"]) for s in ade_row["spans"] if s["label"] == "DRUG"],
                [(s["start"], s["end"]) for s in ade_row["spans"] if s["label"] == "AE"],
            )
        examples += phee_pairs(r, ade_spans)
    neg_texts = list(dict.fromkeys(r["text"] for r in neg_rows if r["text"] not in phee_texts))
    if ner is not None:
        for text, entities in zip(neg_texts, ner.predict(neg_texts), strict=True):
            examples += ner_pairs(text, entities)
    unique: dict[tuple[str, CharSpan, CharSpan], PairExample] = {}
    for ex in examples:
        unique.setdefault((ex.text, ex.drug, ex.reaction), ex)
    keys = {normalise(r["text"]) for r in [*ade_rows, *phee_rows]}
    counts = {
        "ade_pair_sentences": len(pos_rows),
        "ade_neg_sentences": len(neg_rows),
        "ade_neg_sentences_annotated_by_phee": len(neg_rows) - len(neg_texts),
        "phee_sentences": len(phee_rows),
        "phee_sentences_also_in_ade": sum(t in ade_by_text for t in phee_texts),
        "duplicate_pairs_dropped": len(examples) - len(unique),
    }
    return list(unique.values()), keys, counts


def balance(examples: Sequence[PairExample]) -> dict[str, dict[str, int]]:
    """Positives and negatives per source, and overall."""
    table: dict[str, dict[str, int]] = defaultdict(lambda: {"positive": 0, "negative": 0})
    for ex in examples:
        for key in (ex.source, "all"):
            table[key]["positive" if ex.label else "negative"] += 1
    return dict(table)


def encode_examples(
    examples: Sequence[PairExample], tokenizer: Any, markers: MarkerIds, max_length: int
) -> list[MarkedPair]:
    """Model inputs of the examples, in order (each sentence is split into pieces once)."""
    by_text: dict[str, list[int]] = defaultdict(list)
    for i, ex in enumerate(examples):
        by_text[ex.text].append(i)
    marked: list[MarkedPair | None] = [None] * len(examples)
    for text, indices in by_text.items():
        pairs = [(examples[i].drug, examples[i].reaction) for i in indices]
        for i, m in zip(indices, mark_pairs(tokenizer, text, pairs, markers, max_length), strict=True):
            marked[i] = m
    return [m for m in marked if m is not None]


def marker_ids(tokenizer: Any) -> MarkerIds:
    """The marker tokens' ids in the base vocabulary."""
    ids = [tokenizer.token_to_id(token) for token in MARKER_TOKENS]
    if any(i is None for i in ids):
        raise ModelNotFoundError(f"the base tokenizer lacks the marker tokens {MARKER_TOKENS}")
    return MarkerIds(*ids)


class PairClassifier(torch.nn.Module):
    """BERT encoder + a linear layer over the concatenated ``[D]`` and ``[R]`` marker embeddings.

    Args:
        encoder: a ``BertModel`` (no pooler needed).
        dropout: dropout on the concatenated embeddings while training.
    """

    def __init__(self, encoder: BertModel, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(2 * encoder.config.hidden_size, 1)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, marker_positions: torch.Tensor
    ) -> torch.Tensor:
        """Logits ``[batch]`` of P(drug caused reaction)."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        index = marker_positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
        markers = torch.gather(hidden, 1, index).flatten(1)
        return self.head(self.dropout(markers)).squeeze(-1)


def best_threshold(labels: np.ndarray, scores: np.ndarray) -> tuple[float, dict[str, float]]:
    """The grid threshold (0.05 ... 0.95) with the highest F1; ties go to the one nearest 0.5."""
    best: tuple[float, float, float] = (-1.0, 0.0, 0.5)
    for threshold in THRESHOLD_GRID:
        f1 = pair_scores(labels, scores, float(threshold))["f1"]
        key = (f1, -abs(float(threshold) - 0.5), float(threshold))
        if key[:2] > best[:2]:
            best = key
    threshold = best[2]
    return threshold, pair_scores(labels, scores, threshold)


def pair_scores(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Precision, recall, F1 (and counts) of ``scores >= threshold`` against 0/1 ``labels``."""
    predicted = np.asarray(scores) >= threshold
    gold = np.asarray(labels).astype(bool)
    tp, fp, fn = int((predicted & gold).sum()), int((predicted & ~gold).sum()), int((~predicted & gold).sum())
    return {**f1_score(tp, fp, fn), "tp": tp, "fp": fp, "fn": fn}


def torch_scores(
    model: PairClassifier, marked: Sequence[MarkedPair], pad_id: int, batch_size: int = EVAL_BATCH_SIZE
) -> np.ndarray:
    """Probabilities of a torch pair classifier (fp32, eval mode), in input order."""
    model.eval()
    out = np.zeros(len(marked), dtype=np.float32)
    order = sorted(range(len(marked)), key=lambda i: len(marked[i].ids))
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            chunk = order[b : b + batch_size]
            ids, mask, positions = (torch.from_numpy(a) for a in collate([marked[i] for i in chunk], pad_id))
            out[chunk] = sigmoid(model(ids, mask, positions).float().numpy())
    return out


def onnx_scores(
    classifier: OnnxPairClassifier, marked: Sequence[MarkedPair], batch_size: int = EVAL_BATCH_SIZE
) -> np.ndarray:
    """Probabilities of an ONNX pair classifier on ready inputs, in input order."""
    out = np.zeros(len(marked), dtype=np.float32)
    order = sorted(range(len(marked)), key=lambda i: len(marked[i].ids))
    for b in range(0, len(order), batch_size):
        chunk = order[b : b + batch_size]
        out[chunk] = sigmoid(classifier.logits(*collate([marked[i] for i in chunk], classifier.pad_id)))
    return out


def by_source(
    examples: Sequence[PairExample], scores: np.ndarray, threshold: float
) -> dict[str, dict[str, float]]:
    """:func:`pair_scores` overall and per source."""
    labels = np.asarray([ex.label for ex in examples])
    result = {"all": pair_scores(labels, scores, threshold)}
    for source in SOURCES:
        rows = np.asarray([ex.source == source for ex in examples])
        if rows.any():
            result[source] = pair_scores(labels[rows], scores[rows], threshold)
    return result


def _batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of inputs of similar length (sorted within pools of 50 batches)."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for p in range(0, len(order), pool):
        chunk = sorted(order[p : p + pool], key=lambda i: lengths[i])
        batches += [chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def export_pair_onnx(model: PairClassifier, path: Path, *, opset: int = 17) -> Path:
    """Export the pair classifier to ONNX: ``INPUT_NAMES`` in (batch, length dynamic), ``logits`` out."""
    model.eval()
    ids = torch.tensor([[101, 1, 2000, 2, 3, 2001, 4, 102]], dtype=torch.long)
    mask = torch.ones_like(ids)
    positions = torch.tensor([[1, 4]], dtype=torch.long)
    axes = {0: "batch", 1: "length"}
    with torch.no_grad():
        torch.onnx.export(
            model,
            (ids, mask, positions),
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=["logits"],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "marker_positions": {0: "batch"},
                "logits": {0: "batch"},
            },
            opset_version=opset,
            dynamo=False,
        )
    log.info("exported %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path


def write_config(out_dir: Path, base: Path, max_length: int) -> None:
    """``config.json`` (what :class:`OnnxPairClassifier` reads) and ``tokenizer.json`` (the base's)."""
    encoder_config = json.loads((base / CONFIG_FILE).read_text("utf-8"))
    config = {
        "name": MODEL_NAME,
        "version": MODEL_VERSION,
        "task": "drug -> adverse reaction pair classification: logit of P(drug caused reaction)",
        "markers": dict(zip(MarkerIds._fields, MARKER_TOKENS, strict=True)),
        "max_length": max_length,
        "head": "linear over concat(final hidden state at [D], at [R])",
        "inputs": list(INPUT_NAMES),
        "encoder": {k: encoder_config[k] for k in ("model_type", "hidden_size", "num_hidden_layers")},
        "max_position_embeddings": encoder_config["max_position_embeddings"],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CONFIG_FILE).write_text(json.dumps(config, indent=1) + "\n", "utf-8")
    (out_dir / TOKENIZER_FILE).write_bytes((base / TOKENIZER_FILE).read_bytes())


def train_relation(
    out_dir: Path,
    *,
    epochs: int = 3,
    seed: int = 0,
    max_length: int = MAX_LENGTH,
    batch_size: int = 16,
    lr: float = 5e-5,
    threads: int = 1,
    negatives_per_positive: float | None = None,
    ner_model: str | None = NER_MODEL,
    limit: int | None = None,
    keep_fp32: bool = False,
    bf16: bool = True,
) -> dict[str, Any]:
    """Train the pair classifier and write the int8 ONNX model folder.

    Args:
        out_dir: output folder: ``model.int8.onnx``, ``config.json``, ``tokenizer.json``,
            ``training.json`` (and ``model.onnx`` with ``keep_fp32``).
        epochs: passes over the training pairs; the epoch with the best validation F1 is kept.
        seed: seeds Python, numpy and torch (and the negative subsample).
        max_length: longest input in pieces (special tokens and markers included).
        batch_size: pairs per optimiser step.
        lr: peak AdamW learning rate (linear warm-up over the first 10 % of steps, then linear decay).
        threads: torch and onnxruntime intra-op threads.
        negatives_per_positive: keep at most this many training negatives per positive (a seeded
            sample, every source alike); ``None`` keeps them all.
        ner_model: model folder whose NER finds the candidates of ADE-NEG sentences; ``None`` leaves
            ADE-NEG out.
        limit: read only the first ``limit`` sentences of each source and split (smoke runs).
        keep_fp32: also keep the fp32 ``model.onnx``.
        bf16: bfloat16 autocast for the training forward pass (validation and export are fp32).

    Returns:
        The ``training.json`` record.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    torch.set_num_threads(threads)
    seed_everything(seed)
    base = base_model_dir()
    tokenizer, pad_id = load_tokenizer(base / TOKENIZER_FILE)
    markers = marker_ids(tokenizer)
    ner = OnnxTokenClassifier(resolve_model_dir(ner_model), threads=threads) if ner_model else None
    data: dict[str, tuple[list[PairExample], set[str], dict[str, int]]] = {
        split: split_examples(split, ner, limit=limit) for split in ("train", "validation", "test")
    }
    held_out = data["validation"][1] | data["test"][1]
    train_all = [ex for ex in data["train"][0] if normalise(ex.text) not in held_out]
    dev = [ex for ex in data["validation"][0] if normalise(ex.text) not in data["test"][1]]
    train = _subsample(train_all, negatives_per_positive, random.Random(seed))
    data_seconds = time.perf_counter() - started
    log.info(
        "pairs: train %s; validation %s (%.0f s)", balance(train)["all"], balance(dev)["all"], data_seconds
    )
    train_marked = encode_examples(train, tokenizer, markers, max_length)
    dev_marked = encode_examples(dev, tokenizer, markers, max_length)
    dev_labels = np.asarray([ex.label for ex in dev])
    labels = torch.tensor([float(ex.label) for ex in train])

    encoder = BertModel.from_pretrained(base, add_pooling_layer=False, local_files_only=True)
    model = PairClassifier(encoder)
    no_decay = ("bias", "LayerNorm.weight", "layernorm", "layer_norm")
    params: list[dict[str, Any]] = [
        {"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)]},
        {
            "params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)],
            "weight_decay": 0.0,
        },
    ]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=WEIGHT_DECAY)
    rng = random.Random(seed)
    steps_per_epoch = -(-len(train_marked) // batch_size)
    total_steps = steps_per_epoch * epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(WARMUP_FRACTION * total_steps), total_steps)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    lengths = [len(m.ids) for m in train_marked]
    history: list[dict[str, Any]] = []
    best_f1, best_state, best_epoch = -1.0, None, 0
    for epoch in range(1, epochs + 1):
        epoch_start = time.perf_counter()
        model.train()
        losses = []
        for step, indices in enumerate(_batches(lengths, batch_size, rng), 1):
            ids, mask, positions = (
                torch.from_numpy(a) for a in collate([train_marked[i] for i in indices], pad_id)
            )
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(ids, mask, positions)
            loss = loss_fn(logits.float(), labels[indices])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(float(loss))
            if step % 100 == 0:
                rate = step * batch_size / (time.perf_counter() - epoch_start)
                log.info(
                    "epoch %d step %d/%d loss %.4f (%.1f pairs/s)",
                    epoch,
                    step,
                    steps_per_epoch,
                    np.mean(losses[-100:]),
                    rate,
                )
        train_seconds = time.perf_counter() - epoch_start
        scores = torch_scores(model, dev_marked, pad_id)
        threshold, at_best = best_threshold(dev_labels, scores)
        record = {
            "epoch": epoch,
            "train_loss": round(float(np.mean(losses)), 5),
            "train_seconds": round(train_seconds, 1),
            "eval_seconds": round(time.perf_counter() - epoch_start - train_seconds, 1),
            "validation_at_0.5": by_source(dev, scores, 0.5),
            "validation_best_threshold": threshold,
            "validation_at_best_threshold": by_source(dev, scores, threshold),
        }
        history.append(record)
        log.info("epoch %d: validation %s at threshold %.2f", epoch, json.dumps(at_best), threshold)
        if at_best["f1"] > best_f1:
            best_f1, best_epoch = at_best["f1"], epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()

    export_start = time.perf_counter()
    torch_threshold = history[best_epoch - 1]["validation_best_threshold"]
    write_config(out_dir, base, max_length)
    # provisional: the checks below load the folder; the final threshold comes from the int8 scores
    (out_dir / TRAINING_FILE).write_text(json.dumps({"threshold": torch_threshold}) + "\n", "utf-8")
    export_pair_onnx(model, out_dir / FP32_FILE)
    rng_check = random.Random(seed)
    sample = sorted(rng_check.sample(range(len(dev_marked)), min(AGREEMENT_PAIRS, len(dev_marked))))
    sample_marked = [dev_marked[i] for i in sample]
    reference = torch_scores(model, sample_marked, pad_id)
    fp32_scores = onnx_scores(OnnxPairClassifier(out_dir, threads=threads), sample_marked)
    int8_path = quantize(out_dir, keep_fp32=True)
    if not keep_fp32:
        (out_dir / FP32_FILE).unlink()
    shipped = OnnxPairClassifier(out_dir, threads=threads)
    int8_sample = onnx_scores(shipped, sample_marked)
    int8_dev = onnx_scores(shipped, dev_marked)
    threshold, _ = best_threshold(dev_labels, int8_dev)
    agreement = {
        "pairs": len(sample),
        "max_abs_diff_fp32_onnx_vs_torch": round(float(np.abs(fp32_scores - reference).max()), 6),
        "max_abs_diff_int8_onnx_vs_torch": round(float(np.abs(int8_sample - reference).max()), 4),
        "mean_abs_diff_int8_onnx_vs_torch": round(float(np.abs(int8_sample - reference).mean()), 4),
        "same_decision_int8_vs_torch": round(
            float(np.mean((int8_sample >= threshold) == (reference >= torch_threshold))), 4
        ),
    }
    log.info("ONNX vs torch on %d validation pairs: %s", len(sample), agreement)
    counts = {split: {**data[split][2]} for split in data}
    counts["train"]["pairs_dropped_sentence_in_validation_or_test"] = len(data["train"][0]) - len(train_all)
    counts["validation"]["pairs_dropped_sentence_in_test"] = len(data["validation"][0]) - len(dev)
    summary: dict[str, Any] = {
        "name": MODEL_NAME,
        "version": MODEL_VERSION,
        "architecture": "BertModel (all-MiniLM-L6-v2, 6 layers, hidden 384) + linear over concat([D], [R])",
        "base_model": {
            "package": BASE_PACKAGE,
            "version": package_version(BASE_PACKAGE),
            BASE_WEIGHTS_FILE: sha256_file(base / BASE_WEIGHTS_FILE),
        },
        "protocol": (
            "ADE-Corpus-V2 PMID hash split (corpora.base.hash_split); candidates from ade_corpus_v2 gold "
            "DRUG x AE, phee (all official files, re-split by PMID, pairs ADE-Corpus-V2 has no spans for) "
            f"and ade_neg ({ner_model} DRUG x PROBLEM mentions, negative); epoch and threshold chosen "
            "on validation (threshold on the int8 model's scores); test never used"
        ),
        "markers": dict(zip(MarkerIds._fields, MARKER_TOKENS, strict=True)),
        "ner_model_for_ade_neg": ner_model,
        "sentences": counts,
        "pairs": {
            "train_before_subsample": balance(train_all),
            "train": balance(train),
            "validation": balance(dev),
            "negatives_per_positive": negatives_per_positive,
            "limit": limit,
        },
        "seed": seed,
        "epochs": epochs,
        "best_epoch": best_epoch,
        "hyper_parameters": {
            "max_length": max_length,
            "batch_size": batch_size,
            "lr": lr,
            "warmup_fraction": WARMUP_FRACTION,
            "weight_decay": WEIGHT_DECAY,
            "dropout": 0.1,
            "grad_clip": 1.0,
            "threads": threads,
            "bf16_autocast": bf16,
        },
        "history": history,
        "threshold": threshold,
        "torch_threshold": torch_threshold,
        "validation_int8": by_source(dev, int8_dev, threshold),
        "onnx_agreement": agreement,
        "seconds": {
            "data": round(data_seconds, 1),
            "epochs": [h["train_seconds"] + h["eval_seconds"] for h in history],
            "export_quantise_check": round(time.perf_counter() - export_start, 1),
        },
        "wall_seconds": round(time.perf_counter() - started, 1),
        "artifact": {
            "file": int8_path.name,
            "bytes": int8_path.stat().st_size,
            "sha256": sha256_file(int8_path),
        },
        "versions": {
            name: package_version(name)
            for name in ("torch", "transformers", "onnxruntime", "tokenizers", "onnx")
        },
        "platform": platform.platform(),
    }
    (out_dir / TRAINING_FILE).write_text(json.dumps(summary, indent=1) + "\n", "utf-8")
    return summary


def _subsample(
    examples: list[PairExample], negatives_per_positive: float | None, rng: random.Random
) -> list[PairExample]:
    """All positives and at most ``negatives_per_positive`` negatives per positive (seeded sample)."""
    if negatives_per_positive is None:
        return examples
    negatives = [i for i, ex in enumerate(examples) if not ex.label]
    cap = int(negatives_per_positive * (len(examples) - len(negatives)))
    if len(negatives) <= cap:
        return examples
    dropped = set(negatives) - set(rng.sample(negatives, cap))
    return [ex for i, ex in enumerate(examples) if i not in dropped]


def evaluate_relation(
    model_dir: Path, split: str = "test", *, threads: int = 1, ner_model: str | None = NER_MODEL
) -> dict[str, Any]:
    """Scores of a shipped pair classifier on one split, at its threshold.

    ``ade_given_entities`` is the headline: every ``DRUG`` x ``AE`` pair of each ADE-Corpus-V2
    sentence, gold = the annotated ``ADE`` pairs (``all_positive`` is the score of answering yes to
    every pair). ``phee`` and ``ade_neg`` are the split's pairs of the other two sources (see the
    module docstring). Speed is pairs per second through :meth:`OnnxPairClassifier.score`, one call per
    sentence, on ``threads`` threads.
    """
    classifier = OnnxPairClassifier(resolve_model_dir(str(model_dir)), threads=threads)
    ner = OnnxTokenClassifier(resolve_model_dir(ner_model), threads=threads) if ner_model else None
    examples, _, counts = split_examples(split, ner)
    by_text: dict[str, list[int]] = defaultdict(list)
    for i, ex in enumerate(examples):
        by_text[ex.text].append(i)
    scores = np.zeros(len(examples), dtype=np.float32)
    started = time.perf_counter()
    for text, indices in by_text.items():
        scores[indices] = classifier.score(text, [(examples[i].drug, examples[i].reaction) for i in indices])
    seconds = time.perf_counter() - started
    threshold = classifier.threshold
    labels = np.asarray([ex.label for ex in examples])
    ade = np.asarray([ex.source == "ade_corpus_v2" for ex in examples])
    results = by_source(examples, scores, threshold)
    return {
        "model": classifier.method,
        "split": split,
        "threshold": threshold,
        "ade_given_entities": {
            **results.get("ade_corpus_v2", {}),
            "pairs": int(ade.sum()),
            "sentences": counts["ade_pair_sentences"],
            "all_positive": pair_scores(labels[ade], np.ones(int(ade.sum())), 0.5),
        },
        "phee": results.get("phee", {}),
        "ade_neg": results.get("ade_neg", {}),
        "all_sources": results["all"],
        "balance": balance(examples),
        "sentences": counts,
        "speed": {
            "pairs": len(examples),
            "sentences": len(by_text),
            "seconds": round(seconds, 2),
            "pairs_per_s": round(len(examples) / seconds, 1) if seconds else None,
            "threads": threads,
        },
        "machine": f"{platform.machine()}, {platform.platform()}, Python {platform.python_version()}",
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nlp.train.relation {train,evaluate} ...`` (see ``--help``)."""
    parser = argparse.ArgumentParser(prog="python -m nlp.train.relation", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train and export the pair classifier")
    train.add_argument("--out", type=Path, default=MODELS_DIR / MODEL_NAME)
    train.add_argument("--epochs", type=int, default=3)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--lr", type=float, default=5e-5)
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--threads", type=int, default=1)
    train.add_argument("--negatives-per-positive", type=float, default=None)
    train.add_argument("--no-ade-neg", action="store_true", help="leave the ADE-NEG sentences out")
    train.add_argument("--limit", type=int, default=None, help="first N sentences per source (smoke runs)")
    train.add_argument("--keep-fp32", action="store_true")
    train.add_argument("--no-bf16", action="store_true")
    evaluate = commands.add_parser("evaluate", help="score a trained pair classifier on a split")
    evaluate.add_argument("--model", default=MODEL_NAME)
    evaluate.add_argument("--split", default="test", choices=("train", "validation", "test"))
    evaluate.add_argument("--threads", type=int, default=1)
    evaluate.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    for name in ("__main__", "nlp", "corpora"):  # not onnxruntime's quantiser, which logs every tensor
        logging.getLogger(name).setLevel(logging.INFO)
    if args.command == "train":
        result = train_relation(
            args.out,
            epochs=args.epochs,
            seed=args.seed,
            lr=args.lr,
            batch_size=args.batch_size,
            threads=args.threads,
            negatives_per_positive=args.negatives_per_positive,
            ner_model=None if args.no_ade_neg else NER_MODEL,
            limit=args.limit,
            keep_fp32=args.keep_fp32,
            bf16=not args.no_bf16,
        )
    else:
        result = evaluate_relation(Path(args.model), args.split, threads=args.threads)
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=1) + "\n", "utf-8")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
