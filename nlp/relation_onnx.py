"""Drug -> adverse reaction pair scoring on onnxruntime: a text and character-offset pairs in, P(caused) out.

A model directory (``models/adr-minilm``, written by :mod:`nlp.train.relation`) holds
``model.int8.onnx`` (or ``model.onnx``), ``tokenizer.json``, ``config.json`` (the marker tokens and the
window length) and ``training.json`` (the decision threshold chosen on the validation split).

One candidate pair is one model input: the text's word pieces with four marker ids spliced in around
the drug and the reaction, ``[CLS] ... [D] lisin ##op ##ril [/D] ... [R] ang ##io ##ede ##ma [/R] ... [SEP]``.
The markers are the vocabulary's ``[unused0]`` ... ``[unused3]`` rows (``config.json`` names them), so
the text is never rewritten and every offset stays exact: the text is split into pieces once, a marker
opens before the first piece that overlaps its mention and closes after the last. When the pieces
do not fit in ``max_length`` the input is a window centred on the pair, or, for a pair further apart
than one window, two half windows (one centred on each mention) put side by side. The graph takes
``input_ids``, ``attention_mask`` (``int64 [batch, length]``) and ``marker_positions`` (``int64
[batch, 2]``: where ``[D]`` and ``[R]`` sit) and returns one logit per pair; the score is its sigmoid.

Inference needs only ``onnxruntime``, ``tokenizers`` and numpy; training shares :func:`mark_pairs`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from tokenizers import Tokenizer

from nlp.errors import InputError, ModelNotFoundError
from nlp.ner_onnx import CONFIG_FILE, MODEL_FILES, TOKENIZER_FILE, load_tokenizer, onnx_session, special_ids

log = logging.getLogger(__name__)

TRAINING_FILE = "training.json"
MARKER_TOKENS = ("[unused0]", "[unused1]", "[unused2]", "[unused3]")
"""``[D]``, ``[/D]``, ``[R]``, ``[/R]``: rare rows of the BERT vocabulary that no text produces."""
N_MARKERS = 4
INPUT_NAMES = ("input_ids", "attention_mask", "marker_positions")

CharSpan = tuple[int, int]
"""``(start_char, end_char)``, end exclusive."""
Pair = tuple[CharSpan, CharSpan]
"""``(drug, reaction)`` character spans."""


class MarkerIds(NamedTuple):
    """Vocabulary ids of the four markers."""

    drug_start: int
    drug_end: int
    reaction_start: int
    reaction_end: int


@dataclass(frozen=True)
class MarkedPair:
    """One model input: word-piece ids with markers and special tokens, and where the markers sit.

    Attributes:
        ids: ``int64 [length]``, ``[CLS]`` and ``[SEP]`` included.
        drug_marker: index of ``[D]`` in ``ids``.
        reaction_marker: index of ``[R]`` in ``ids``.
    """

    ids: np.ndarray
    drug_marker: int
    reaction_marker: int


def piece_range(starts: np.ndarray, ends: np.ndarray, span: CharSpan) -> tuple[int, int]:
    """``[first, end)`` of the pieces that overlap a character span.

    Args:
        starts: start character of every piece.
        ends: end character of every piece.
        span: ``(start_char, end_char)``.

    Raises:
        InputError: (``invalid_targets``) the span is empty or no piece overlaps it (whitespace only,
            or outside the text).
    """
    start, end = span
    hits = np.flatnonzero((starts < end) & (ends > start) & (ends > starts))
    if start >= end or hits.size == 0:
        raise InputError(f"span {start}-{end} covers no word piece of the text", code="invalid_targets")
    return int(hits[0]), int(hits[-1]) + 1


def _centred(first: int, end: int, size: int, n_pieces: int) -> tuple[int, int]:
    """A window of ``min(size, n_pieces)`` pieces centred on ``[first, end)``, shifted inside the text."""
    start = max(0, first - (size - (end - first)) // 2)
    stop = min(n_pieces, start + size)
    return max(0, stop - size), stop


def plan_pair_window(
    n_pieces: int, drug: tuple[int, int], reaction: tuple[int, int], size: int
) -> tuple[list[tuple[int, int]], tuple[int, int], tuple[int, int]]:
    """The piece ranges to keep for one pair, and the mentions' piece ranges clipped to them.

    Args:
        n_pieces: pieces in the text.
        drug: ``[first, end)`` pieces of the drug.
        reaction: ``[first, end)`` pieces of the reaction.
        size: pieces the window may hold (markers and special tokens not counted).

    Returns:
        ``(segments, drug, reaction)``: one segment ``[start, end)`` when both mentions fit in one
        window (centred on them); else two segments of half the size, each centred on one mention
        (a mention longer than its half keeps its first pieces), merged into one if they touch.
        The mention ranges are unchanged unless clipped.
    """
    if size < 2:
        raise ValueError(f"a pair window needs room for two pieces, got {size}")
    lo, hi = min(drug[0], reaction[0]), max(drug[1], reaction[1])
    if hi - lo <= size:
        return [_centred(lo, hi, size, n_pieces)], drug, reaction
    halves = {}
    for name, (first, end), half in (("drug", drug, size // 2), ("reaction", reaction, size - size // 2)):
        end = min(end, first + half)
        halves[name] = ((first, end), _centred(first, end, half, n_pieces))
    (drug, drug_window), (reaction, reaction_window) = halves["drug"], halves["reaction"]
    left, right = sorted([drug_window, reaction_window])
    if left[1] >= right[0]:
        return [(left[0], max(left[1], right[1]))], drug, reaction
    return [left, right], drug, reaction


def mark_pair(
    piece_ids: np.ndarray,
    segments: Sequence[tuple[int, int]],
    drug: tuple[int, int],
    reaction: tuple[int, int],
    markers: MarkerIds,
    prefix: Sequence[int],
    suffix: Sequence[int],
) -> MarkedPair:
    """Splice the markers into the kept pieces and wrap them in the special tokens.

    A marker opens before a mention's first piece and closes after its last. Where markers meet,
    closing ones come first, then opening ones; nested mentions nest their markers (the outer one opens
    first and closes last).

    Args:
        piece_ids: the text's word-piece ids (no special tokens).
        segments: the piece ranges to keep, in order (:func:`plan_pair_window`).
        drug: ``[first, end)`` pieces of the drug, inside a segment.
        reaction: ``[first, end)`` pieces of the reaction, inside a segment.
        markers: the marker ids.
        prefix: special ids before the text (``[CLS]``).
        suffix: special ids after the text (``[SEP]``).
    """
    kept = np.concatenate([np.arange(s, e) for s, e in segments]) if segments else np.zeros(0, np.int64)
    # (insertion point among kept pieces, closing before opening, nesting order, id, which)
    events = []
    for (first, end), open_id, close_id, which in (
        (drug, markers.drug_start, markers.drug_end, "drug"),
        (reaction, markers.reaction_start, markers.reaction_end, "reaction"),
    ):
        events.append((int(np.searchsorted(kept, first)), 1, -end, open_id, which))
        events.append((int(np.searchsorted(kept, end)), 0, -first, close_id, ""))
    events.sort(key=lambda event: event[:3])
    out: list[int] = list(prefix)
    positions: dict[str, int] = {}
    cursor = 0
    for point, _, _, marker_id, which in events:
        out.extend(int(i) for i in piece_ids[kept[cursor:point]])
        cursor = point
        if which:
            positions[which] = len(out)
        out.append(marker_id)
    out.extend(int(i) for i in piece_ids[kept[cursor:]])
    out.extend(suffix)
    return MarkedPair(np.asarray(out, dtype=np.int64), positions["drug"], positions["reaction"])


def mark_pairs(
    tokenizer: Tokenizer, text: str, pairs: Sequence[Pair], markers: MarkerIds, max_length: int
) -> list[MarkedPair]:
    """Model inputs for every ``(drug, reaction)`` character-span pair of one text (split into pieces once).

    Args:
        tokenizer: a ``tokenizers`` tokenizer with truncation and padding off (:func:`load_tokenizer`).
        text: the text the offsets point into.
        pairs: ``((drug_start, drug_end), (reaction_start, reaction_end))`` each.
        markers: the marker ids.
        max_length: longest input in pieces, markers and special tokens included.

    Raises:
        InputError: (``invalid_targets``) a span that covers no word piece.
    """
    if not pairs:
        return []
    prefix, suffix = special_ids(tokenizer)
    size = max_length - len(prefix) - len(suffix) - N_MARKERS
    encoding = tokenizer.encode(text, add_special_tokens=False)
    piece_ids = np.asarray(encoding.ids, dtype=np.int64)
    offsets = np.asarray(encoding.offsets, dtype=np.int64).reshape(-1, 2)
    starts, ends = offsets[:, 0], offsets[:, 1]
    marked = []
    for drug_span, reaction_span in pairs:
        drug = piece_range(starts, ends, drug_span)
        reaction = piece_range(starts, ends, reaction_span)
        segments, drug, reaction = plan_pair_window(len(piece_ids), drug, reaction, size)
        marked.append(mark_pair(piece_ids, segments, drug, reaction, markers, prefix, suffix))
    return marked


def collate(marked: Sequence[MarkedPair], pad_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One padded batch: ``input_ids``, ``attention_mask`` (``int64 [batch, length]``), marker positions."""
    width = max(len(m.ids) for m in marked)
    ids = np.full((len(marked), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(marked), width), dtype=np.int64)
    for row, m in enumerate(marked):
        ids[row, : len(m.ids)] = m.ids
        mask[row, : len(m.ids)] = 1
    positions = np.asarray([[m.drug_marker, m.reaction_marker] for m in marked], dtype=np.int64)
    return ids, mask, positions.reshape(len(marked), 2)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Elementwise logistic function (float32, no overflow warnings)."""
    logits = np.asarray(logits, dtype=np.float32)
    return np.where(logits >= 0, 1 / (1 + np.exp(-np.abs(logits))), 1 - 1 / (1 + np.exp(-np.abs(logits))))


def read_pair_config(model_dir: Path, tokenizer: Tokenizer) -> tuple[dict[str, Any], MarkerIds]:
    """``config.json`` of a pair classifier and its marker ids; raises on anything missing.

    Raises:
        ModelNotFoundError: unreadable file, missing keys, or marker tokens the tokenizer lacks.
    """
    path = model_dir / CONFIG_FILE
    try:
        config = json.loads(path.read_text("utf-8"))
        tokens = [str(config["markers"][k]) for k in MarkerIds._fields]
        config["max_length"] = int(config["max_length"])
        config["name"], config["version"] = str(config["name"]), str(config["version"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelNotFoundError(f"{path}: not a pair-classifier config ({exc!r})") from exc
    ids = [tokenizer.token_to_id(token) for token in tokens]
    known = [i for i in ids if i is not None]
    if len(known) != len(ids):
        raise ModelNotFoundError(f"{path}: marker tokens {tokens} are not all in the tokenizer's vocabulary")
    return config, MarkerIds(*known)


def read_threshold(model_dir: Path) -> float:
    """The decision threshold in ``training.json`` (chosen on the validation split).

    Raises:
        ModelNotFoundError: no readable ``training.json`` or no threshold strictly between 0 and 1.
    """
    path = model_dir / TRAINING_FILE
    try:
        threshold = float(json.loads(path.read_text("utf-8"))["threshold"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelNotFoundError(f"{path}: no readable threshold ({exc!r})") from exc
    if not 0.0 < threshold < 1.0:
        raise ModelNotFoundError(f"{path}: threshold {threshold} is not strictly between 0 and 1")
    return threshold


class OnnxPairClassifier:
    """The drug -> adverse reaction pair classifier exported to ONNX, run with onnxruntime.

    Args:
        model_dir: folder with ``model.int8.onnx`` or ``model.onnx``, ``config.json``, ``tokenizer.json``
            and ``training.json``.
        threads: onnxruntime intra-op threads.
        batch_size: pairs per onnxruntime call.

    Raises:
        ModelNotFoundError: the folder, a file, the marker tokens or the threshold is missing or
            unreadable, or the graph does not take the three inputs.
    """

    def __init__(self, model_dir: str | Path, *, threads: int = 1, batch_size: int = 32) -> None:
        self.model_dir = Path(model_dir)
        if not self.model_dir.is_dir():
            raise ModelNotFoundError(f"model directory not found: {self.model_dir}")
        model_file = next((self.model_dir / f for f in MODEL_FILES if (self.model_dir / f).is_file()), None)
        if model_file is None:
            raise ModelNotFoundError(f"{self.model_dir}: no {' or '.join(MODEL_FILES)}")
        for required in (CONFIG_FILE, TOKENIZER_FILE, TRAINING_FILE):
            if not (self.model_dir / required).is_file():
                raise ModelNotFoundError(f"{self.model_dir}: no {required}")
        self.tokenizer, self.pad_id = load_tokenizer(self.model_dir / TOKENIZER_FILE)
        self.config, self.markers = read_pair_config(self.model_dir, self.tokenizer)
        self._threshold = read_threshold(self.model_dir)
        self.max_length = int(self.config["max_length"])
        self.model_file = model_file
        self.session = onnx_session(model_file, threads)
        missing = set(INPUT_NAMES) - {i.name for i in self.session.get_inputs()}
        if missing:
            raise ModelNotFoundError(f"{model_file}: graph lacks inputs {sorted(missing)}")
        self.batch_size = batch_size

    @property
    def threshold(self) -> float:
        """Scores at or above this are attributions (chosen for F1 on the validation split)."""
        return self._threshold

    @property
    def name(self) -> str:
        """The model's name, e.g. ``adr-minilm``."""
        return str(self.config["name"])

    @property
    def version(self) -> str:
        """The model's version, e.g. ``0.1.0``."""
        return str(self.config["version"])

    @property
    def method(self) -> str:
        """Provenance string for relations the model makes: ``model:<name>@<version>``."""
        return f"model:{self.name}@{self.version}"

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Raw logits ``[batch]`` for one padded batch (:func:`collate`)."""
        feed = {"input_ids": input_ids, "attention_mask": attention_mask, "marker_positions": positions}
        return np.asarray(self.session.run(None, feed)[0], dtype=np.float32).reshape(-1)

    def score(self, text: str, pairs: Sequence[Pair]) -> list[float]:
        """P(the drug caused the reaction) for every ``(drug, reaction)`` character-span pair of ``text``.

        Args:
            text: the text (a sentence or a whole note; long texts are windowed around each pair).
            pairs: ``((drug_start, drug_end), (reaction_start, reaction_end))`` each.

        Returns:
            One score in ``[0, 1]`` per pair, in order.

        Raises:
            InputError: (``invalid_targets``) a span that covers no word piece of the text.
        """
        marked = mark_pairs(self.tokenizer, text, pairs, self.markers, self.max_length)
        scores = np.zeros(len(marked), dtype=np.float32)
        order = sorted(range(len(marked)), key=lambda i: len(marked[i].ids))
        for b in range(0, len(order), self.batch_size):
            chunk = order[b : b + self.batch_size]
            scores[chunk] = sigmoid(self.logits(*collate([marked[i] for i in chunk], self.pad_id)))
        return [float(s) for s in scores]
