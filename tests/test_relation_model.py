"""Drug -> adverse reaction pair classifier: marker insertion, windows, threshold, the ONNX runtime class.

No trained model is needed for most tests: a small WordPiece tokenizer and a "lookup" ONNX graph (the
logit is a table value of the piece right after ``[D]`` plus that of the piece right after ``[R]``)
check that markers land where the character offsets say and that scores come back in pair order.
The slow test reads the shipped ``models/adr-minilm`` when it exists.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from nlp.errors import InputError, ModelNotFoundError
from nlp.models import MODELS_DIR
from nlp.ner_onnx import load_tokenizer
from nlp.relation_onnx import (
    MARKER_TOKENS,
    MarkerIds,
    OnnxPairClassifier,
    mark_pairs,
    piece_range,
    plan_pair_window,
    read_threshold,
)

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *MARKER_TOKENS]
WORDS = ["aspirin", "caused", "rash", "after", "codeine", "intoxication", "for", "pain", "hepato", "and", "a"]
PIECES = ["##spleno", "##megaly", "-", "induced"]
VOCAB = SPECIALS + WORDS + PIECES
SHOWN = {"[unused0]": "[D]", "[unused1]": "[/D]", "[unused2]": "[R]", "[unused3]": "[/R]"}
# the lookup model's logit: LOOKUP[piece after [D]] + LOOKUP[piece after [R]] (anything else: 0)
LOOKUP = {"aspirin": 2.0, "codeine": 1.0, "rash": 1.5, "pain": -3.0, "hepato": 0.5}
THRESHOLD = 0.42


def build_tokenizer() -> Tokenizer:
    """A small uncased WordPiece tokenizer shaped like BERT's, with the four marker rows."""
    tokenizer = Tokenizer(models.WordPiece({t: i for i, t in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", VOCAB.index("[CLS]")), ("[SEP]", VOCAB.index("[SEP]"))],
    )
    return tokenizer


TOKENIZER = build_tokenizer()
MARKERS = MarkerIds(*(VOCAB.index(t) for t in MARKER_TOKENS))


def shown(ids: np.ndarray) -> list[str]:
    """Tokens of an input, markers written as [D] [/D] [R] [/R]."""
    tokens = [TOKENIZER.id_to_token(int(i)) for i in ids]
    return [SHOWN.get(t, t) for t in tokens]


def span_of(text: str, word: str, nth: int = 0) -> tuple[int, int]:
    start = -1
    for _ in range(nth + 1):
        start = text.index(word, start + 1)
    return start, start + len(word)


# --- marker insertion: exact tokens ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "drug", "reaction", "expected"),
    [
        (
            "Aspirin caused rash",
            "Aspirin",
            "rash",
            "[CLS] [D] aspirin [/D] caused [R] rash [/R] [SEP]",
        ),
        (
            "rash after aspirin",
            "aspirin",
            "rash",
            "[CLS] [R] rash [/R] after [D] aspirin [/D] [SEP]",
        ),
        (  # adjacent mentions: the drug closes before the reaction opens
            "aspirin rash",
            "aspirin",
            "rash",
            "[CLS] [D] aspirin [/D] [R] rash [/R] [SEP]",
        ),
        (  # a word of several pieces is marked whole
            "aspirin caused hepatosplenomegaly",
            "aspirin",
            "hepatosplenomegaly",
            "[CLS] [D] aspirin [/D] caused [R] hepato ##spleno ##megaly [/R] [SEP]",
        ),
        (  # a span inside one word marks the pieces it touches
            "aspirin caused hepatosplenomegaly",
            "aspirin",
            "splen",
            "[CLS] [D] aspirin [/D] caused hepato [R] ##spleno [/R] ##megaly [SEP]",
        ),
        (  # nested: the reaction holds the drug; the outer one opens first and closes last
            "codeine intoxication",
            "codeine",
            "codeine intoxication",
            "[CLS] [R] [D] codeine [/D] intoxication [/R] [SEP]",
        ),
        (
            "aspirin-induced rash",
            "aspirin",
            "aspirin-induced rash",
            "[CLS] [R] [D] aspirin [/D] - induced rash [/R] [SEP]",
        ),
        (  # surrounding whitespace in a span covers no extra piece
            "aspirin  caused rash",
            "aspirin ",
            " rash",
            "[CLS] [D] aspirin [/D] caused [R] rash [/R] [SEP]",
        ),
    ],
)
def test_markers_wrap_the_pieces_of_each_mention(text: str, drug: str, reaction: str, expected: str) -> None:
    (marked,) = mark_pairs(TOKENIZER, text, [(span_of(text, drug), span_of(text, reaction))], MARKERS, 128)
    tokens = shown(marked.ids)
    assert " ".join(tokens) == expected
    assert tokens[marked.drug_marker] == "[D]"
    assert tokens[marked.reaction_marker] == "[R]"


def test_each_pair_of_a_text_gets_its_own_markers() -> None:
    text = "aspirin caused rash and codeine caused pain"
    pairs = [
        (span_of(text, "aspirin"), span_of(text, "rash")),
        (span_of(text, "codeine"), span_of(text, "pain")),
        (span_of(text, "codeine"), span_of(text, "rash")),
    ]
    got = [" ".join(shown(m.ids)) for m in mark_pairs(TOKENIZER, text, pairs, MARKERS, 128)]
    assert got == [
        "[CLS] [D] aspirin [/D] caused [R] rash [/R] and codeine caused pain [SEP]",
        "[CLS] aspirin caused rash and [D] codeine [/D] caused [R] pain [/R] [SEP]",
        "[CLS] aspirin caused [R] rash [/R] and [D] codeine [/D] caused pain [SEP]",
    ]


@pytest.mark.parametrize(
    "span",
    [(3, 3), (7, 8), (100, 104), (-5, 0)],
    ids=["empty", "whitespace", "past-the-end", "before-the-start"],
)
def test_a_span_without_pieces_is_an_input_error(span: tuple[int, int]) -> None:
    text = "aspirin caused rash"
    with pytest.raises(InputError) as info:
        mark_pairs(TOKENIZER, text, [(span, span_of(text, "rash"))], MARKERS, 128)
    assert info.value.code == "invalid_targets"


def test_piece_range_uses_character_offsets() -> None:
    starts, ends = np.array([0, 6, 12, 18]), np.array([5, 11, 17, 23])
    assert piece_range(starts, ends, (0, 5)) == (0, 1)
    assert piece_range(starts, ends, (4, 13)) == (0, 3)
    assert piece_range(starts, ends, (18, 30)) == (3, 4)


# --- windows ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_pieces", "drug", "reaction", "size", "expected"),
    [
        # the whole text fits
        (6, (0, 1), (4, 5), 10, ([(0, 6)], (0, 1), (4, 5))),
        # centred on the pair: pieces 20..30 with 10 to spare, 5 each side
        (100, (20, 22), (28, 30), 20, ([(15, 35)], (20, 22), (28, 30))),
        # near the start the window shifts right, near the end left
        (100, (1, 2), (5, 6), 20, ([(0, 20)], (1, 2), (5, 6))),
        (100, (97, 98), (90, 91), 20, ([(80, 100)], (97, 98), (90, 91))),
        # too far apart: a half window centred on each mention
        # (the spare piece of an odd split goes after the mention)
        (100, (10, 11), (80, 82), 20, ([(6, 16), (76, 86)], (10, 11), (80, 82))),
        (100, (80, 82), (10, 11), 20, ([(6, 16), (76, 86)], (80, 82), (10, 11))),
        # a mention longer than its half keeps its first pieces
        (100, (10, 40), (90, 91), 20, ([(10, 20), (86, 96)], (10, 20), (90, 91))),
        # half windows that overlap are one window
        (40, (0, 1), (5, 30), 20, ([(0, 15)], (0, 1), (5, 15))),
    ],
)
def test_plan_pair_window(
    n_pieces: int,
    drug: tuple[int, int],
    reaction: tuple[int, int],
    size: int,
    expected: tuple[list[tuple[int, int]], tuple[int, int], tuple[int, int]],
) -> None:
    assert plan_pair_window(n_pieces, drug, reaction, size) == expected


def test_a_long_text_is_windowed_around_the_pair() -> None:
    text = " ".join(["a"] * 50 + ["aspirin", "caused", "rash"] + ["a"] * 50)
    (marked,) = mark_pairs(TOKENIZER, text, [(span_of(text, "aspirin"), span_of(text, "rash"))], MARKERS, 16)
    # 16 = [CLS] + [SEP] + 4 markers + 10 pieces: the pair's 3 pieces and 3 + 4 around them
    assert " ".join(shown(marked.ids)) == "[CLS] a a a [D] aspirin [/D] caused [R] rash [/R] a a a a [SEP]"


def test_a_pair_further_apart_than_a_window_gets_two_half_windows() -> None:
    text = " ".join(["aspirin"] + ["a"] * 40 + ["caused", "rash", "and", "pain"])
    (marked,) = mark_pairs(TOKENIZER, text, [(span_of(text, "aspirin"), span_of(text, "pain"))], MARKERS, 16)
    expected = "[CLS] [D] aspirin [/D] a a a a a caused rash and [R] pain [/R] [SEP]"  # 1 + 4 | 1 + 4
    assert " ".join(shown(marked.ids)) == expected


WORD_POOL = ["aspirin", "caused", "rash", "hepatosplenomegaly", "a", "codeine", "pain", "-", "for"]


@settings(max_examples=200, deadline=None)
@given(
    words=st.lists(st.sampled_from(WORD_POOL), min_size=2, max_size=80),
    picks=st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)),
    max_length=st.integers(8, 64),
)
def test_markers_sit_on_the_mentions_and_inputs_fit(
    words: list[str], picks: tuple[int, int], max_length: int
) -> None:
    text = " ".join(words)
    starts = np.cumsum([0] + [len(w) + 1 for w in words[:-1]])
    drug_word, reaction_word = picks[0] % len(words), picks[1] % len(words)
    if drug_word == reaction_word:
        return
    drug = (int(starts[drug_word]), int(starts[drug_word]) + len(words[drug_word]))
    reaction = (int(starts[reaction_word]), int(starts[reaction_word]) + len(words[reaction_word]))
    (marked,) = mark_pairs(TOKENIZER, text, [(drug, reaction)], MARKERS, max_length)
    tokens = shown(marked.ids)
    assert len(tokens) <= max_length
    assert [tokens.count(m) for m in ("[D]", "[/D]", "[R]", "[/R]")] == [1, 1, 1, 1]
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert tokens[marked.drug_marker] == "[D]" and tokens[marked.reaction_marker] == "[R]"
    first_piece = {w: TOKENIZER.encode(w, add_special_tokens=False).tokens[0] for w in WORD_POOL}
    assert tokens[marked.drug_marker + 1] == first_piece[words[drug_word]]
    assert tokens[marked.reaction_marker + 1] == first_piece[words[reaction_word]]


# --- threshold and the runtime class ----------------------------------------------------------------


def build_lookup_model(folder: Path, threshold: float = THRESHOLD) -> Path:
    """A pair "classifier" whose logit is ``LOOKUP`` of the pieces after ``[D]`` and ``[R]``."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    table = np.array([LOOKUP.get(token, 0.0) for token in VOCAB], dtype=np.float32)
    nodes = [
        helper.make_node("Add", ["marker_positions", "one"], ["after"]),
        helper.make_node("GatherElements", ["input_ids", "after"], ["after_ids"], axis=1),
        helper.make_node("Gather", ["table", "after_ids"], ["values"], axis=0),
        helper.make_node("ReduceSum", ["values", "axis_1"], ["logits"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "lookup-pairs",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "length"]),
            helper.make_tensor_value_info("marker_positions", TensorProto.INT64, ["batch", 2]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch"])],
        initializer=[
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(np.array(1, dtype=np.int64), "one"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis_1"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "model.onnx"))
    TOKENIZER.save(str(folder / "tokenizer.json"))
    config = {
        "name": "lookup-pairs",
        "version": "9.9.9",
        "markers": dict(zip(MarkerIds._fields, MARKER_TOKENS, strict=True)),
        "max_length": 16,
    }
    (folder / "config.json").write_text(json.dumps(config), "utf-8")
    (folder / "training.json").write_text(json.dumps({"threshold": threshold}), "utf-8")
    return folder


@pytest.fixture(scope="module")
def lookup_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_lookup_model(tmp_path_factory.mktemp("models") / "lookup-pairs")


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_scores_come_back_in_pair_order_across_batches(lookup_dir: Path) -> None:
    classifier = OnnxPairClassifier(lookup_dir, batch_size=2)
    text = "aspirin caused rash and codeine for pain " + "a " * 30 + "hepatosplenomegaly"
    pairs = [
        (span_of(text, "aspirin"), span_of(text, "rash")),
        (span_of(text, "codeine"), span_of(text, "pain")),
        (span_of(text, "aspirin"), span_of(text, "hepatosplenomegaly")),  # two half windows
        (span_of(text, "codeine"), span_of(text, "rash")),
        (span_of(text, "aspirin"), span_of(text, "pain")),
    ]
    expected = [sigmoid(2.0 + 1.5), sigmoid(1.0 - 3.0), sigmoid(2.0 + 0.5), sigmoid(1.0 + 1.5), sigmoid(-1.0)]
    assert classifier.score(text, pairs) == pytest.approx(expected, abs=1e-6)
    assert classifier.score(text, []) == []


def test_threshold_name_and_method_come_from_the_model_folder(lookup_dir: Path) -> None:
    classifier = OnnxPairClassifier(lookup_dir)
    assert classifier.threshold == THRESHOLD
    assert (classifier.name, classifier.version) == ("lookup-pairs", "9.9.9")
    assert classifier.method == "model:lookup-pairs@9.9.9"
    assert classifier.max_length == 16


@pytest.mark.parametrize(
    ("content", "valid"),
    [
        ({"threshold": 0.37}, True),
        ({"threshold": "0.6"}, True),
        ({"threshold": 0.0}, False),
        ({"threshold": 1.0}, False),
        ({"threshold": "high"}, False),
        ({"history": []}, False),
        (None, False),
    ],
)
def test_read_threshold(tmp_path: Path, content: dict | None, valid: bool) -> None:
    if content is not None:
        (tmp_path / "training.json").write_text(json.dumps(content), "utf-8")
    if valid:
        assert read_threshold(tmp_path) == float(content["threshold"])
    else:
        with pytest.raises(ModelNotFoundError):
            read_threshold(tmp_path)


@pytest.mark.parametrize(
    "broken", ["training.json", "config.json", "tokenizer.json", "model.onnx", "markers"]
)
def test_a_folder_missing_a_part_does_not_load(tmp_path: Path, broken: str) -> None:
    folder = build_lookup_model(tmp_path / "model")
    if broken == "markers":
        config = json.loads((folder / "config.json").read_text("utf-8"))
        config["markers"]["drug_start"] = "[D]"
        (folder / "config.json").write_text(json.dumps(config), "utf-8")
    else:
        (folder / broken).unlink()
    with pytest.raises(ModelNotFoundError):
        OnnxPairClassifier(folder)


# --- the shipped model ------------------------------------------------------------------------------

SHIPPED = MODELS_DIR / "adr-minilm"


@pytest.fixture(scope="module")
def shipped() -> OnnxPairClassifier:
    if not (SHIPPED / "model.int8.onnx").is_file():
        pytest.skip("models/adr-minilm is not trained (python -m nlp.train.relation train)")
    return OnnxPairClassifier(SHIPPED)


def test_shipped_markers_are_rare_vocabulary_rows(shipped: OnnxPairClassifier) -> None:
    tokenizer, _ = load_tokenizer(SHIPPED / "tokenizer.json")
    assert [tokenizer.id_to_token(i) for i in shipped.markers] == list(MARKER_TOKENS)
    assert shipped.method == "model:adr-minilm@0.1.0"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "drug", "reaction", "caused"),
    [
        (
            "The patient developed angioedema two days after starting lisinopril.",
            "lisinopril",
            "angioedema",
            True,
        ),
        ("Amoxicillin-induced rash resolved after the drug was stopped.", "Amoxicillin", "rash", True),
        ("Lisinopril was started for hypertension.", "Lisinopril", "hypertension", False),
        ("She takes metformin for type 2 diabetes.", "metformin", "type 2 diabetes", False),
    ],
)
def test_shipped_model_separates_obvious_pairs(
    shipped: OnnxPairClassifier, text: str, drug: str, reaction: str, caused: bool
) -> None:
    (score,) = shipped.score(text, [(span_of(text, drug), span_of(text, reaction))])
    assert (score >= shipped.threshold) is caused, f"score {score:.3f}, threshold {shipped.threshold}"
