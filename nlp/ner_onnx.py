"""Token-classification NER on onnxruntime: text in, entities with exact character offsets out.

A model directory holds ``model.int8.onnx`` (preferred) or ``model.onnx``, an HF ``config.json`` whose
``id2label`` names BIO tags (``O``, ``B-PROBLEM``, ``I-PROBLEM`` ...), and a ``tokenizer.json``. Any
Hugging Face token-classification checkpoint exported with :func:`nlp.train.transformer.export_onnx`
has that shape and loads the same way.

Inference needs only ``onnxruntime``, ``tokenizers`` and numpy (torch and transformers are for training).
The steps, shared with the training loop's dev evaluation through :func:`predict_entities`:

1. the text is split into word pieces once, without special tokens or truncation, keeping each piece's
   character offsets and the pre-tokenizer word it belongs to;
2. the pieces are cut into windows of at most ``max_length`` (special tokens included) that overlap by
   ``stride`` pieces; each piece takes its probabilities from the window that owns it (the overlap is
   split at its midpoint, so every piece has context on both sides and the choice is deterministic);
3. each word is read from its first piece; the words' tags are the most probable BIO sequence in which
   every ``I-X`` follows ``B-X`` or ``I-X`` (Viterbi), decoded to entities over the whole text, so an
   entity that crosses a window boundary comes out once, whole;
4. an entity runs from the first character of its first word to the last character of its last word's
   last piece, with surrounding whitespace stripped. Its score is the mean probability of its words'
   tags (their max probability wherever the constraint changes nothing).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from nlp.errors import ConfigError, ModelNotFoundError

log = logging.getLogger(__name__)

MODEL_FILES = ("model.int8.onnx", "model.onnx")
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"

Entity = tuple[int, int, str, float]
"""``(start_char, end_char, label, score)``."""

# all-MiniLM-L6-v2 was trained on inputs of at most 128 pieces: its later positions are weak. With the
# shipped model, 128-piece windows score 2-3 F1 points above 256 on whole BC5CDR/NCBI test abstracts.
DEFAULT_MAX_LENGTH = 128
DEFAULT_STRIDE = 32

LogitsFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``(input_ids, attention_mask)`` (both ``int64 [batch, length]``) → logits ``[batch, length, tags]``."""


@dataclass(frozen=True)
class EncodedText:
    """One text's word pieces (no special tokens) and the words they make up.

    Attributes:
        ids: word-piece ids, ``int64 [pieces]``.
        offsets: ``(start_char, end_char)`` of every piece in the original text.
        word_first: index of each word's first piece.
        word_last: index of each word's last piece.
    """

    ids: np.ndarray
    offsets: tuple[tuple[int, int], ...]
    word_first: tuple[int, ...]
    word_last: tuple[int, ...]

    def word_span(self, word: int) -> tuple[int, int]:
        """Character range of one word: its first piece's start to its last piece's end."""
        return self.offsets[self.word_first[word]][0], self.offsets[self.word_last[word]][1]


def load_tokenizer(path: Path) -> tuple[Tokenizer, int]:
    """Read a ``tokenizer.json`` with truncation and padding switched off (windows do both).

    Returns:
        The tokenizer and the id it pads with (0 when the file sets no padding).

    Raises:
        ModelNotFoundError: the file is missing or unreadable.
    """
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on a missing or malformed file
        raise ModelNotFoundError(f"{path}: unreadable ({exc})") from exc
    pad_id = int(tokenizer.padding["pad_id"]) if tokenizer.padding else 0
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer, pad_id


def special_ids(tokenizer: Tokenizer) -> tuple[list[int], list[int]]:
    """The ids the template puts before and after one sequence (``[CLS]`` / ``[SEP]`` for BERT)."""
    probe = tokenizer.encode("a", add_special_tokens=True)
    content = [i for i, special in enumerate(probe.special_tokens_mask) if not special]
    if not content:
        return [], []
    return list(probe.ids[: content[0]]), list(probe.ids[content[-1] + 1 :])


def encode(tokenizer: Tokenizer, text: str) -> EncodedText:
    """Split ``text`` into word pieces and group them into the pre-tokenizer's words."""
    encoding = tokenizer.encode(text, add_special_tokens=False)
    word_first: list[int] = []
    word_last: list[int] = []
    previous: int | None = None
    for index, word in enumerate(encoding.word_ids):
        if word is None:
            continue
        if word != previous or not word_first:
            word_first.append(index)
            word_last.append(index)
        else:
            word_last[-1] = index
        previous = word
    return EncodedText(
        ids=np.asarray(encoding.ids, dtype=np.int64),
        offsets=tuple((int(s), int(e)) for s, e in encoding.offsets),
        word_first=tuple(word_first),
        word_last=tuple(word_last),
    )


def plan_windows(n_pieces: int, size: int, stride: int) -> list[tuple[int, int]]:
    """Windows ``[start, end)`` of at most ``size`` pieces, consecutive ones overlapping by ``stride``.

    The last window is pulled back so it is full whenever the text is longer than one window.
    """
    if size < 1 or not 0 <= stride < size:
        raise ValueError(f"window size {size} and stride {stride}: need 0 <= stride < size")
    if n_pieces <= size:
        return [(0, n_pieces)]
    step = size - stride
    starts = [0]
    while starts[-1] + size < n_pieces:
        starts.append(min(starts[-1] + step, n_pieces - size))
    return [(s, s + size) for s in starts]


def window_owners(windows: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The piece range each window is trusted for: overlaps are split at their midpoint."""
    owned = []
    for k, (start, end) in enumerate(windows):
        lo = start if k == 0 else (start + windows[k - 1][1]) // 2
        hi = end if k == len(windows) - 1 else (windows[k + 1][0] + end) // 2
        owned.append((lo, hi))
    return owned


def decode_bio(tags: Sequence[str], scores: Sequence[float]) -> list[tuple[int, int, str, float]]:
    """BIO tags over words → ``(first_word, end_word, label, mean_score)`` with ``end_word`` exclusive.

    ``I-X`` continues an open ``X`` entity; after ``O`` or an entity of another label it starts a
    new one (the usual lenient reading, as conlleval does).
    """
    entities: list[tuple[int, int, str, float]] = []
    start: int | None = None
    label = ""

    def close(end: int) -> None:
        if start is not None:
            entities.append((start, end, label, float(np.mean(scores[start:end]))))

    for i, tag in enumerate(tags):
        prefix, _, tag_label = tag.partition("-")
        if prefix == "I" and start is not None and tag_label == label:
            continue
        close(i)
        start, label = (i, tag_label) if prefix in ("B", "I") else (None, "")
    close(len(tags))
    return entities


def bio_viterbi(probs: np.ndarray, id2label: Sequence[str]) -> list[int]:
    """Tag indices of the most probable sequence in which ``I-X`` only follows ``B-X`` or ``I-X``.

    ``probs`` is ``[words, tags]``. Ties go to the lower tag index, so the result is deterministic.
    """
    n_tags = len(id2label)
    inside = [t[2:] if t.startswith("I-") else None for t in id2label]
    allowed = np.ones((n_tags, n_tags), dtype=bool)  # [previous, next]
    for j, label in enumerate(inside):
        if label is not None:
            allowed[:, j] = [t != "O" and t[2:] == label for t in id2label]
    transition = np.where(allowed, 0.0, -np.inf)
    log_probs = np.log(np.maximum(probs, 1e-12))
    score = np.where([label is None for label in inside], log_probs[0], -np.inf)
    back = np.zeros((len(probs), n_tags), dtype=np.int64)
    for k in range(1, len(probs)):
        candidates = score[:, None] + transition
        back[k] = candidates.argmax(axis=0)
        score = candidates.max(axis=0) + log_probs[k]
    best = [int(score.argmax())]
    for k in range(len(probs) - 1, 0, -1):
        best.append(int(back[k, best[-1]]))
    return best[::-1]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (float32, numerically stable)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted, dtype=np.float32)
    return exp / exp.sum(axis=-1, keepdims=True)


def entities_from_probs(
    text: str, encoded: EncodedText, piece_probs: np.ndarray, id2label: Sequence[str]
) -> list[Entity]:
    """Decode one text's piece probabilities ``[pieces, tags]`` into character-offset entities."""
    if not encoded.word_first:
        return []
    word_probs = piece_probs[list(encoded.word_first)]
    best = bio_viterbi(word_probs, id2label)
    tags = [id2label[i] for i in best]
    scores = word_probs[np.arange(len(best)), best].tolist()
    entities = []
    for first, end, label, score in decode_bio(tags, scores):
        start_char = encoded.word_span(first)[0]
        end_char = encoded.word_span(end - 1)[1]
        while start_char < end_char and text[start_char].isspace():
            start_char += 1
        while end_char > start_char and text[end_char - 1].isspace():
            end_char -= 1
        if end_char > start_char:
            entities.append((start_char, end_char, label, score))
    return entities


def predict_entities(
    texts: Sequence[str],
    tokenizer: Tokenizer,
    logits_fn: LogitsFn,
    id2label: Sequence[str],
    *,
    max_length: int = DEFAULT_MAX_LENGTH,
    stride: int = DEFAULT_STRIDE,
    batch_size: int = 16,
    pad_id: int = 0,
) -> list[list[Entity]]:
    """Entities for every text, running ``logits_fn`` on padded batches of windows.

    Args:
        texts: the texts.
        tokenizer: a ``tokenizers`` tokenizer with truncation and padding off (:func:`load_tokenizer`).
        logits_fn: runs the model on one batch.
        id2label: tag name of every output index.
        max_length: window length in pieces, special tokens included.
        stride: pieces shared by consecutive windows.
        batch_size: windows per model call.
        pad_id: the id padded positions get (masked out anyway).

    Returns:
        Per text, ``(start_char, end_char, label, score)`` in text order.
    """
    prefix, suffix = special_ids(tokenizer)
    size = max_length - len(prefix) - len(suffix)
    encoded = [encode(tokenizer, text) for text in texts]
    # (text index, window start, window end)
    jobs = [(t, s, e) for t, enc in enumerate(encoded) for s, e in plan_windows(len(enc.ids), size, stride)]
    jobs = [job for job in jobs if job[2] > job[1]]
    window_probs: dict[tuple[int, int, int], np.ndarray] = {}
    order = sorted(range(len(jobs)), key=lambda j: (jobs[j][2] - jobs[j][1], j))
    for b in range(0, len(order), batch_size):
        batch = [jobs[j] for j in order[b : b + batch_size]]
        width = max(e - s for _, s, e in batch) + len(prefix) + len(suffix)
        ids = np.full((len(batch), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, (t, s, e) in enumerate(batch):
            seq = np.concatenate([prefix, encoded[t].ids[s:e], suffix]).astype(np.int64)
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        probs = softmax(np.asarray(logits_fn(ids, mask), dtype=np.float32))
        for row, (t, s, e) in enumerate(batch):
            window_probs[(t, s, e)] = probs[row, len(prefix) : len(prefix) + e - s]
    results: list[list[Entity]] = []
    for t, (text, enc) in enumerate(zip(texts, encoded, strict=True)):
        n = len(enc.ids)
        if n == 0:
            results.append([])
            continue
        windows = plan_windows(n, size, stride)
        piece_probs = np.zeros((n, len(id2label)), dtype=np.float32)
        for (s, e), (lo, hi) in zip(windows, window_owners(windows), strict=True):
            piece_probs[lo:hi] = window_probs[(t, s, e)][lo - s : hi - s]
        results.append(entities_from_probs(text, enc, piece_probs, id2label))
    return results


def read_id2label(config_path: Path) -> list[str]:
    """The BIO tags of an HF ``config.json`` in output-index order; raises on anything else."""
    try:
        config = json.loads(config_path.read_text("utf-8"))
        raw = config["id2label"]
        id2label = [str(raw[str(i)]) for i in range(len(raw))]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelNotFoundError(f"{config_path}: no readable id2label ({exc})") from exc
    bad = [t for t in id2label if t != "O" and not (t[:2] in ("B-", "I-") and len(t) > 2)]
    if bad or "O" not in id2label:
        raise ModelNotFoundError(f"{config_path}: id2label must be BIO tags with 'O', got {id2label}")
    return id2label


def onnx_session(model_file: Path, threads: int) -> ort.InferenceSession:
    """An onnxruntime CPU session: ``threads`` for one call, calls run one after another.

    Raises:
        ModelNotFoundError: onnxruntime cannot load the file.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(model_file), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelNotFoundError(f"{model_file}: onnxruntime cannot load it ({exc})") from exc


class OnnxTokenClassifier:
    """A BIO token classifier exported to ONNX, run with onnxruntime.

    Args:
        model_dir: folder with ``model.int8.onnx`` or ``model.onnx``, ``config.json``, ``tokenizer.json``.
        threads: onnxruntime intra-op threads.
        max_length: window length in word pieces, special tokens included.
        stride: pieces shared by consecutive windows of a long text.
        batch_size: windows per onnxruntime call.

    Raises:
        ModelNotFoundError: the folder, a file or the label map is missing or unreadable.
        ConfigError: ``max_length`` is longer than the model's position embeddings.
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        threads: int = 1,
        max_length: int = DEFAULT_MAX_LENGTH,
        stride: int = DEFAULT_STRIDE,
        batch_size: int = 16,
    ) -> None:
        self.model_dir = Path(model_dir)
        if not self.model_dir.is_dir():
            raise ModelNotFoundError(f"model directory not found: {self.model_dir}")
        model_file = next((self.model_dir / f for f in MODEL_FILES if (self.model_dir / f).is_file()), None)
        if model_file is None:
            raise ModelNotFoundError(f"{self.model_dir}: no {' or '.join(MODEL_FILES)}")
        for required in (CONFIG_FILE, TOKENIZER_FILE):
            if not (self.model_dir / required).is_file():
                raise ModelNotFoundError(f"{self.model_dir}: no {required}")
        self.model_file = model_file
        self.id2label = read_id2label(self.model_dir / CONFIG_FILE)
        positions = json.loads((self.model_dir / CONFIG_FILE).read_text("utf-8")).get(
            "max_position_embeddings"
        )
        if isinstance(positions, int) and max_length > positions:
            raise ConfigError(f"max_length {max_length} exceeds the model's {positions} positions")
        self.tokenizer, self.pad_id = load_tokenizer(self.model_dir / TOKENIZER_FILE)
        self.session = onnx_session(model_file, threads)
        self._inputs = {i.name for i in self.session.get_inputs()}
        missing = {"input_ids", "attention_mask"} - self._inputs
        n_out = self.session.get_outputs()[0].shape[-1]
        if missing or (isinstance(n_out, int) and n_out != len(self.id2label)):
            raise ModelNotFoundError(
                f"{model_file}: expected inputs input_ids/attention_mask and {len(self.id2label)} logits"
            )
        self.max_length = max_length
        self.stride = stride
        self.batch_size = batch_size

    @property
    def name(self) -> str:
        """The model folder's name (used in provenance strings)."""
        return self.model_dir.name

    @property
    def labels(self) -> tuple[str, ...]:
        """The entity labels the model predicts (``PROBLEM``, ``DRUG`` ...), in tag order."""
        return tuple(dict.fromkeys(t[2:] for t in self.id2label if t != "O"))

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Raw logits ``[batch, length, tags]`` for one padded batch."""
        feed = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(input_ids)
        return self.session.run(None, feed)[0]

    def predict(self, texts: Iterable[str]) -> list[list[Entity]]:
        """Entities of every text as ``(start_char, end_char, label, score)``, in text order."""
        return predict_entities(
            list(texts),
            self.tokenizer,
            self.logits,
            self.id2label,
            max_length=self.max_length,
            stride=self.stride,
            batch_size=self.batch_size,
            pad_id=self.pad_id,
        )
