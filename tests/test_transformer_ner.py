"""Transformer NER: BIO decoding, windows, exact offsets, ONNX export and the spaCy component.

No trained model is needed. A "lookup" ONNX model built here (each word piece id → fixed logits) makes
predictions predictable, so offsets and window stitching are checked against exact expectations; a tiny
random BERT checks that the export reproduces torch's logits. torch-only tests skip without torch.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from nlp.components.transformer_ner import entity_spans
from nlp.errors import ConfigError, ModelNotFoundError
from nlp.ner_onnx import (
    OnnxTokenClassifier,
    bio_viterbi,
    decode_bio,
    plan_windows,
    read_id2label,
    window_owners,
)

TAGS = ["O", "B-PROBLEM", "I-PROBLEM", "B-DRUG", "I-DRUG", "B-TEST", "I-TEST", "B-PROCEDURE", "I-PROCEDURE"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
WORDS = ["the", "denies", "chest", "pain", "aspirin", "ct", "scan", "and", "given", "naive", "hepato"]
PIECES = ["##spleno", "##megaly", "##s"]
CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789.,;:-/()") + [
    f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"
]
VOCAB = SPECIALS + WORDS + PIECES + CHARS
# the lookup model's tag for a word piece (anything else: O)
LOOKUP = {
    "chest": "B-PROBLEM",
    "pain": "I-PROBLEM",
    "hepato": "B-PROBLEM",
    "aspirin": "B-DRUG",
    "ct": "B-TEST",
    "scan": "I-TEST",
}
PEAK = 4.0  # logit of the looked-up tag; the others are 0
PEAK_PROB = math.exp(PEAK) / (math.exp(PEAK) + len(TAGS) - 1)


def build_tokenizer() -> Tokenizer:
    """A small uncased WordPiece tokenizer shaped like BERT's."""
    tokenizer = Tokenizer(models.WordPiece({t: i for i, t in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", VOCAB.index("[CLS]")), ("[SEP]", VOCAB.index("[SEP]"))],
    )
    return tokenizer


def write_config(folder: Path) -> None:
    config = {
        "id2label": {str(i): t for i, t in enumerate(TAGS)},
        "label2id": {t: i for i, t in enumerate(TAGS)},
    }
    (folder / "config.json").write_text(json.dumps(config), "utf-8")


def build_lookup_model(folder: Path) -> Path:
    """``logits[b, s] = table[input_ids[b, s]] * attention_mask[b, s]``, saved as ``model.onnx``."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    table = np.zeros((len(VOCAB), len(TAGS)), dtype=np.float32)
    for piece, tag in LOOKUP.items():
        table[VOCAB.index(piece), TAGS.index(tag)] = PEAK
    table[[i for i, t in enumerate(VOCAB) if t not in LOOKUP], 0] = PEAK
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["rows"], axis=0),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "last_axis"], ["mask_3d"]),
        helper.make_node("Mul", ["rows", "mask_3d"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "lookup",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "length"]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "length", len(TAGS)])],
        initializer=[
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(np.array([-1], dtype=np.int64), "last_axis"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "model.onnx"))
    build_tokenizer().save(str(folder / "tokenizer.json"))
    write_config(folder)
    return folder


@pytest.fixture(scope="module")
def lookup_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_lookup_model(tmp_path_factory.mktemp("models") / "lookup-ner")


# --- BIO decoding and windows: pure functions -------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ([], []),
        (["O", "O"], []),
        (["B-DRUG", "I-DRUG", "O"], [(0, 2, "DRUG")]),
        (["I-DRUG", "I-DRUG"], [(0, 2, "DRUG")]),
        (["B-DRUG", "B-DRUG"], [(0, 1, "DRUG"), (1, 2, "DRUG")]),
        (["B-DRUG", "I-PROBLEM", "I-PROBLEM"], [(0, 1, "DRUG"), (1, 3, "PROBLEM")]),
        (["O", "B-TEST", "I-TEST", "I-TEST"], [(1, 4, "TEST")]),
        (["B-TEST", "O", "I-TEST"], [(0, 1, "TEST"), (2, 3, "TEST")]),
    ],
)
def test_decode_bio(tags: list[str], expected: list[tuple[int, int, str]]) -> None:
    scores = [0.5 + 0.1 * i for i in range(len(tags))]
    decoded = decode_bio(tags, scores)
    assert [(s, e, label) for s, e, label, _ in decoded] == expected
    for s, e, _, score in decoded:
        assert score == pytest.approx(float(np.mean(scores[s:e])))


# columns: O, B-DRUG, I-DRUG, B-TEST
VITERBI_TAGS = ["O", "B-DRUG", "I-DRUG", "B-TEST"]


@pytest.mark.parametrize(
    ("probs", "expected"),
    [
        ([[0.9, 0.05, 0.0, 0.05], [0.1, 0.3, 0.6, 0.0]], ["O", "B-DRUG"]),  # no I- after O
        ([[0.1, 0.2, 0.7, 0.0]], ["B-DRUG"]),  # no I- first
        ([[0.1, 0.05, 0.8, 0.05], [0.1, 0.1, 0.8, 0.0]], ["B-DRUG", "I-DRUG"]),  # the pair wins together
        ([[0.1, 0.8, 0.1, 0.0], [0.2, 0.1, 0.7, 0.0], [0.6, 0.1, 0.3, 0.0]], ["B-DRUG", "I-DRUG", "O"]),
        ([[0.1, 0.0, 0.2, 0.7], [0.1, 0.35, 0.5, 0.05]], ["B-TEST", "B-DRUG"]),  # no I-DRUG after B-TEST
        ([[0.25, 0.25, 0.25, 0.25]], ["O"]),  # ties: lowest index
    ],
)
def test_bio_viterbi(probs: list[list[float]], expected: list[str]) -> None:
    best = bio_viterbi(np.array(probs, dtype=np.float32), VITERBI_TAGS)
    assert [VITERBI_TAGS[i] for i in best] == expected


@pytest.mark.parametrize(
    ("n_pieces", "size", "stride", "expected"),
    [
        (0, 10, 2, [(0, 0)]),
        (5, 10, 2, [(0, 5)]),
        (10, 10, 2, [(0, 10)]),
        (11, 10, 2, [(0, 10), (1, 11)]),
        (20, 10, 2, [(0, 10), (8, 18), (10, 20)]),
        (20, 10, 0, [(0, 10), (10, 20)]),
    ],
)
def test_plan_windows(n_pieces: int, size: int, stride: int, expected: list[tuple[int, int]]) -> None:
    assert plan_windows(n_pieces, size, stride) == expected


@pytest.mark.parametrize(("size", "stride"), [(10, 10), (10, 11), (0, 0), (10, -1)])
def test_plan_windows_rejects_bad_stride(size: int, stride: int) -> None:
    with pytest.raises(ValueError):
        plan_windows(50, size, stride)


@pytest.mark.parametrize(("size", "stride"), [(10, 0), (10, 3), (10, 9), (7, 2)])
def test_window_owners_partition_every_piece(size: int, stride: int) -> None:
    for n in range(1, 60):
        windows = plan_windows(n, size, stride)
        owners = window_owners(windows)
        assert owners[0][0] == 0 and owners[-1][1] == n
        for (lo, hi), (start, end) in zip(owners, windows, strict=True):
            assert start <= lo < hi <= end
        assert all(a[1] == b[0] for a, b in zip(owners, owners[1:], strict=False))


# --- model folders -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("id2label", "ok"),
    [
        ({"0": "O", "1": "B-DRUG", "2": "I-DRUG"}, True),
        ({"0": "LABEL_0", "1": "LABEL_1"}, False),
        ({"0": "B-DRUG", "1": "I-DRUG"}, False),
        ({"0": "O", "2": "B-DRUG"}, False),
        (None, False),
    ],
)
def test_read_id2label(tmp_path: Path, id2label: dict[str, str] | None, ok: bool) -> None:
    (tmp_path / "config.json").write_text(json.dumps({} if id2label is None else {"id2label": id2label}))
    if ok:
        assert read_id2label(tmp_path / "config.json") == [id2label[str(i)] for i in range(len(id2label))]
    else:
        with pytest.raises(ModelNotFoundError):
            read_id2label(tmp_path / "config.json")


@pytest.mark.parametrize(
    "broken", ["no_dir", "no_model", "no_tokenizer", "no_config", "bad_onnx", "bad_tokenizer"]
)
def test_invalid_model_dir_raises_model_not_found(lookup_dir: Path, tmp_path: Path, broken: str) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("model.onnx", "tokenizer.json", "config.json"):
        (folder / name).write_bytes((lookup_dir / name).read_bytes())
    if broken == "no_dir":
        folder = tmp_path / "absent"
    elif broken == "bad_onnx":
        (folder / "model.onnx").write_bytes(b"not a model")
    elif broken == "bad_tokenizer":
        (folder / "tokenizer.json").write_text("{}")
    else:
        (
            folder
            / {"no_model": "model.onnx", "no_tokenizer": "tokenizer.json", "no_config": "config.json"}[broken]
        ).unlink()
    with pytest.raises(ModelNotFoundError) as caught:
        OnnxTokenClassifier(folder)
    assert caught.value.code == "model_not_found"


def test_int8_file_is_preferred(lookup_dir: Path, tmp_path: Path) -> None:
    for name in ("model.onnx", "tokenizer.json", "config.json"):
        (tmp_path / name).write_bytes((lookup_dir / name).read_bytes())
    (tmp_path / "model.int8.onnx").write_bytes((lookup_dir / "model.onnx").read_bytes())
    classifier = OnnxTokenClassifier(tmp_path)
    assert classifier.model_file.name == "model.int8.onnx"
    assert classifier.labels == ("PROBLEM", "DRUG", "TEST", "PROCEDURE")


# --- exact character offsets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dénies chest  pain.", [("chest  pain", "PROBLEM")]),
        ("CT\nscan:\n\n  aspirin 😀 given", [("CT\nscan", "TEST"), ("aspirin", "DRUG")]),
        ("hepatosplenomegaly", [("hepatosplenomegaly", "PROBLEM")]),
        ("Naïve: che\u0301st pains, ASPIRIN", [("che\u0301st pains", "PROBLEM"), ("ASPIRIN", "DRUG")]),
        ("pain", []),  # I-PROBLEM cannot start; O and B-PROBLEM tie, O wins
        ("chest pain aspirin", [("chest pain", "PROBLEM"), ("aspirin", "DRUG")]),
        ("\t chest\u00a0pain \n", [("chest\u00a0pain", "PROBLEM")]),
        ("胸 chest pain", [("chest pain", "PROBLEM")]),
        ("  \n ", []),
        ("", []),
    ],
)
def test_offsets_are_exact(lookup_dir: Path, text: str, expected: list[tuple[str, str]]) -> None:
    (entities,) = OnnxTokenClassifier(lookup_dir).predict([text])
    assert [(text[s:e], label) for s, e, label, _ in entities] == expected
    for *_, score in entities:
        assert score == pytest.approx(PEAK_PROB, rel=1e-5)


@pytest.mark.parametrize("filler", range(0, 16))
def test_entities_across_window_boundaries_come_out_once_whole(lookup_dir: Path, filler: int) -> None:
    text = "the " * filler + "chest pain hepatosplenomegaly aspirin " + "the  " * 15 + "CT scan"
    windowed = OnnxTokenClassifier(lookup_dir, max_length=12, stride=4, batch_size=3).predict([text])
    whole = OnnxTokenClassifier(lookup_dir, max_length=512).predict([text])
    assert windowed == whole
    assert [text[s:e] for s, e, *_ in windowed[0]] == [
        "chest pain",
        "hepatosplenomegaly",
        "aspirin",
        "CT scan",
    ]


PIECES_OF_TEXT = [
    "chest",
    "pain",
    "aspirin",
    "the",
    "CT",
    "scan",
    "hepatosplenomegaly",
    "Naïve",
    "😀",
    ",",
    "é",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.sampled_from(PIECES_OF_TEXT), st.sampled_from([" ", "  ", "\n", "\n\n ", "\t", ""])),
        max_size=40,
    )
)
def test_offsets_property(lookup_dir: Path, parts: list[tuple[str, str]]) -> None:
    text = "".join(word + gap for word, gap in parts)
    (windowed,) = OnnxTokenClassifier(lookup_dir, max_length=10, stride=3).predict([text])
    (whole,) = OnnxTokenClassifier(lookup_dir, max_length=512).predict([text])
    assert windowed == whole
    ends = [0]
    for start, end, _, _ in windowed:
        assert ends[-1] <= start < end <= len(text)
        assert text[start:end] == text[start:end].strip()
        ends.append(end)


def test_batches_keep_text_order(lookup_dir: Path) -> None:
    texts = ["aspirin", "", "the " * 40 + "chest pain", "CT scan"]
    classifier = OnnxTokenClassifier(lookup_dir, max_length=16, stride=4, batch_size=2)
    assert classifier.predict(texts) == [classifier.predict([t])[0] for t in texts]


# --- training targets and loss ----------------------------------------------------------------------------

WORD_SPANS = [(0, 5), (6, 11), (12, 17), (18, 20)]
NOT_PROBLEM = {"O", "B-DRUG", "I-DRUG", "B-TEST", "I-TEST", "B-PROCEDURE", "I-PROCEDURE"}


@pytest.mark.parametrize(
    ("spans", "missing", "annotated", "expected"),
    [
        ([(6, 17, "PROBLEM")], [], {"PROBLEM"}, [NOT_PROBLEM, {"B-PROBLEM"}, {"I-PROBLEM"}, NOT_PROBLEM]),
        ([(6, 17, "PROBLEM")], [(18, 20)], {"PROBLEM"}, [NOT_PROBLEM, {"B-PROBLEM"}, {"I-PROBLEM"}, set()]),
        ([(0, 5, "DRUG")], [], {"PROBLEM", "DRUG", "TEST", "PROCEDURE"}, [{"B-DRUG"}, {"O"}, {"O"}, {"O"}]),
        (
            [(0, 5, "DRUG"), (6, 11, "DRUG")],
            [],
            {"DRUG"},
            [
                {"B-DRUG"},
                {"B-DRUG"},
                *[{"O"} | {"B-PROBLEM", "I-PROBLEM", "B-TEST", "I-TEST", "B-PROCEDURE", "I-PROCEDURE"}] * 2,
            ],
        ),
        ([(7, 9, "FOO")], [], {"PROBLEM"}, [NOT_PROBLEM, set(), NOT_PROBLEM, NOT_PROBLEM]),
        (
            [(6, 20, "TEST"), (12, 17, "DRUG")],
            [],
            {"TEST", "DRUG"},
            [
                {"O", "B-PROBLEM", "I-PROBLEM", "B-PROCEDURE", "I-PROCEDURE"},
                {"B-TEST"},
                {"I-TEST"},
                {"I-TEST"},
            ],
        ),
    ],
)
def test_word_tag_mask(
    spans: list[tuple[int, int, str]],
    missing: list[tuple[int, int]],
    annotated: set[str],
    expected: list[set[str]],
) -> None:
    pytest.importorskip("torch")
    from nlp.train.transformer import TAGS as TRAIN_TAGS
    from nlp.train.transformer import word_tag_mask

    mask = word_tag_mask(WORD_SPANS, spans, missing, annotated)
    assert [{TRAIN_TAGS[i] for i in np.flatnonzero(row)} for row in mask] == expected


@pytest.mark.parametrize(
    ("logits", "allowed", "expected"),
    [
        ([[0.0, 0.0, 0.0]], [[True, True, False]], math.log(3) - math.log(2)),
        ([[0.0, 0.0, 0.0]], [[True, True, True]], 0.0),
        (
            [[2.0, 0.0, -1.0]],
            [[False, True, False]],
            -math.log(math.exp(0) / (math.exp(2) + 1 + math.exp(-1))),
        ),
        (
            [[1.0, 0.0, 0.0], [5.0, 0.0, 0.0]],
            [[True, False, False], [False, False, False]],
            -math.log(math.exp(1) / (math.exp(1) + 2)),
        ),
        ([[1.0, 2.0, 3.0]], [[False, False, False]], 0.0),
    ],
)
def test_partial_label_loss(logits: list[list[float]], allowed: list[list[bool]], expected: float) -> None:
    torch = pytest.importorskip("torch")
    from nlp.train.transformer import partial_label_loss

    value = partial_label_loss(torch.tensor(logits, requires_grad=True), torch.tensor(allowed))
    assert float(value.detach()) == pytest.approx(expected, abs=1e-6)
    value.backward()


def test_partial_label_loss_with_one_allowed_tag_is_cross_entropy() -> None:
    torch = pytest.importorskip("torch")
    from nlp.train.transformer import partial_label_loss

    logits = torch.randn(7, len(TAGS), generator=torch.Generator().manual_seed(0))
    gold = torch.tensor([0, 1, 2, 3, 4, 5, 8])
    allowed = torch.nn.functional.one_hot(gold, len(TAGS)).bool()
    assert float(partial_label_loss(logits, allowed)) == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits, gold)), abs=1e-6
    )


# --- export: a tiny random BERT token classifier ------------------------------------------------------------


@pytest.mark.slow
def test_export_reproduces_torch_logits_and_predictions(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from nlp.ner_onnx import load_tokenizer, predict_entities
    from nlp.train.transformer import export_onnx, quantize

    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37, max_position_embeddings=64, num_labels=len(TAGS),
        id2label=dict(enumerate(TAGS)), label2id={t: i for i, t in enumerate(TAGS)},
    )  # fmt: skip
    model = transformers.BertForTokenClassification(config).eval()
    checkpoint = tmp_path / "checkpoint"
    model.save_pretrained(checkpoint)
    build_tokenizer().save(str(checkpoint / "tokenizer.json"))
    out = tmp_path / "tiny-ner"
    export_onnx(checkpoint, out)
    classifier = OnnxTokenClassifier(out, max_length=24, stride=6)
    assert classifier.model_file.name == "model.onnx"

    ids = np.array([[2, 6, 7, 3, 0, 0], [2, 8, 9, 10, 11, 3]], dtype=np.int64)
    mask = (np.arange(6) < np.array([[4], [6]])).astype(np.int64)
    with torch.no_grad():
        expected = model(
            input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)
        ).logits.numpy()
    got = classifier.logits(ids, mask)
    assert np.abs(got - expected)[mask.astype(bool)].max() < 1e-4

    def torch_logits(batch_ids: np.ndarray, batch_mask: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(
                input_ids=torch.from_numpy(batch_ids), attention_mask=torch.from_numpy(batch_mask)
            ).logits.numpy()

    texts = ["Dénies chest  pain; aspirin given.", "the " * 30 + "CT scan of the chest, hepatosplenomegaly"]
    tokenizer, _ = load_tokenizer(out / "tokenizer.json")
    reference = predict_entities(texts, tokenizer, torch_logits, TAGS, max_length=24, stride=6)
    assert [[e[:3] for e in ents] for ents in classifier.predict(texts)] == [
        [e[:3] for e in ents] for ents in reference
    ]

    with pytest.raises(ConfigError):
        OnnxTokenClassifier(out, max_length=65)  # the tiny model has 64 positions

    quantize(out)
    assert not (out / "model.onnx").exists()
    assert OnnxTokenClassifier(out, max_length=24).model_file.name == "model.int8.onnx"


# --- the spaCy component ------------------------------------------------------------------------------------


def test_component_adds_model_mentions(lookup_dir: Path) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("clinical_transformer_ner", config={"model": str(lookup_dir), "batch_size": 2})
    texts = ["Denies chest pain; aspirin given.", "No findings.", "CT scan of the chest  pain"]
    docs = list(nlp.pipe(texts, batch_size=2))
    found = [[(s.text, s.label_, s._.source) for s in doc.spans["clinical"]] for doc in docs]
    assert found == [
        [("chest pain", "PROBLEM", "model:lookup-ner"), ("aspirin", "DRUG", "model:lookup-ner")],
        [],
        [("CT scan", "TEST", "model:lookup-ner"), ("chest  pain", "PROBLEM", "model:lookup-ner")],
    ]
    one_by_one = [nlp(t) for t in texts]
    assert [[(s.text, s.label_) for s in doc.spans["clinical"]] for doc in one_by_one] == [
        [(text, label) for text, label, _ in doc] for doc in found
    ]
    assert docs[0].spans["clinical"][0]._.score == pytest.approx(PEAK_PROB, abs=1e-4)


def test_component_missing_model_is_a_coded_error() -> None:
    with pytest.raises(ModelNotFoundError):
        spacy.blank("en").add_pipe("clinical_transformer_ner", config={"model": "no-such-model"})


@pytest.mark.parametrize(
    ("entities", "expected"),
    [
        ([(5, 12, "DRUG", 0.9)], [("aspirin81mg", "DRUG", 0.9)]),
        ([(0, 4, "TEST", 0.9), (2, 8, "DRUG", 0.8)], [("took", "TEST", 0.9)]),
        ([(0, 4, "TEST", 0.9), (5, 16, "DRUG", 0.8)], [("took", "TEST", 0.9), ("aspirin81mg", "DRUG", 0.8)]),
        ([(17, 22, "DRUG", 0.71234)], [("daily", "DRUG", 0.7123)]),
    ],
)
def test_entity_spans_expand_to_tokens_and_never_overlap(
    entities: list[tuple[int, int, str, float]], expected: list[tuple[str, str, float]]
) -> None:
    doc = Doc(spacy.blank("en").vocab, words=["took", "aspirin81mg", "daily"])
    found = entity_spans(doc, entities)
    assert [(s.text, s.label_, score) for s, score in found] == expected


@pytest.mark.slow
def test_inference_never_imports_torch_or_transformers(lookup_dir: Path) -> None:
    script = (
        "import sys\n"
        "class NoTraining:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] in ('torch', 'transformers'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, NoTraining())\n"
        "import spacy\n"
        "import nlp.components.transformer_ner\n"
        "pipe = spacy.blank('en')\n"
        f"pipe.add_pipe('clinical_transformer_ner', config={{'model': {str(lookup_dir)!r}}})\n"
        "doc = pipe('took aspirin')\n"
        "print([s.text for s in doc.spans['clinical']])\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['aspirin']"
