"""Training examples: chunks keep offsets, never cut a mention, and say what they annotate."""

from __future__ import annotations

import pytest
import spacy

from nlp.components.tokenizer import build_tokenizer
from nlp.train.data import chunk_document, ner_examples
from tests.conftest import FIXTURE_CORPORA as FIXTURES


@pytest.fixture(scope="module")
def blank() -> spacy.language.Language:
    nlp = spacy.blank("en")
    nlp.tokenizer = build_tokenizer(nlp)
    return nlp


TEXT = "Aspirin caused gastric bleeding. The patient recovered. Heparin was then given.\nNo rash."


def _spans(text: str, *pairs: tuple[str, str]) -> list[tuple[int, int, str]]:
    return [(text.index(w), text.index(w) + len(w), label) for w, label in pairs]


def test_chunks_keep_offsets_and_labels(blank) -> None:
    gold = _spans(
        TEXT, ("Aspirin", "DRUG"), ("gastric bleeding", "PROBLEM"), ("Heparin", "DRUG"), ("rash", "PROBLEM")
    )
    chunks = chunk_document(blank, TEXT, gold, [], frozenset({"DRUG", "PROBLEM"}), "x", "d1", max_tokens=8)
    assert len(chunks) > 1
    found = [(c.text[s:e], label) for c in chunks for s, e, label in c.spans]
    assert found == [
        ("Aspirin", "DRUG"),
        ("gastric bleeding", "PROBLEM"),
        ("Heparin", "DRUG"),
        ("rash", "PROBLEM"),
    ]
    for chunk in chunks:
        assert chunk.text == chunk.text.strip() and chunk.text in TEXT
        assert (
            chunk.annotated == frozenset({"DRUG", "PROBLEM"}) and chunk.corpus == "x" and chunk.doc_id == "d1"
        )


def test_a_mention_across_sentences_is_never_cut(blank) -> None:
    text = "He had acute pain. Then more. Then more. Then more."
    gold = [(text.index("pain"), text.index("Then more.", 30) - 1, "PROBLEM")]  # crosses two boundaries
    chunks = chunk_document(blank, text, gold, [], frozenset({"PROBLEM"}), "x", max_tokens=3)
    holder = [c for c in chunks if c.spans]
    assert len(holder) == 1
    s, e, _ = holder[0].spans[0]
    assert holder[0].text[s:e] == text[gold[0][0] : gold[0][1]]


def test_missing_ranges_are_clipped_to_their_chunk(blank) -> None:
    missing = [(TEXT.index("patient"), TEXT.index("patient") + 7)]
    chunks = chunk_document(blank, TEXT, [], missing, frozenset(), "x", max_tokens=8)
    holes = [(c.text[s:e]) for c in chunks for s, e in c.missing]
    assert holes == ["patient"]


def test_overlapping_gold_keeps_the_longest(blank) -> None:
    gold = _spans(TEXT, ("gastric bleeding", "PROBLEM"), ("bleeding", "PROBLEM"), ("gastric", "PROBLEM"))
    (chunk,) = chunk_document(blank, TEXT, gold, [], frozenset({"PROBLEM"}), "x")
    assert [chunk.text[s:e] for s, e, _ in chunk.spans] == ["gastric bleeding"]


def test_examples_from_fixture_corpora_map_labels() -> None:
    examples = ner_examples(
        "train",
        ("bc5cdr", "ncbi_disease"),
        corpus_dirs={"bc5cdr": FIXTURES / "bc5cdr", "ncbi_disease": FIXTURES / "ncbi_disease"},
    )
    by_corpus = {ex.corpus for ex in examples}
    assert by_corpus == {"bc5cdr", "ncbi_disease"}
    for ex in examples:
        assert {label for *_, label in ex.spans} <= {"PROBLEM", "DRUG"}
        for s, e, _ in ex.spans:
            assert ex.text[s:e].strip() == ex.text[s:e] != ""
    assert {ex.annotated for ex in examples if ex.corpus == "ncbi_disease"} == {frozenset({"PROBLEM"})}


def test_a_corpus_can_lend_only_some_labels() -> None:
    folder = {"chia": FIXTURES / "chia"}
    full = ner_examples("train", ("chia",), corpus_dirs=folder)
    some = ner_examples("train", ("chia:DRUG+TEST",), corpus_dirs=folder)
    assert {lab for ex in some for *_, lab in ex.spans} <= {"DRUG", "TEST"}
    assert all(ex.annotated == frozenset({"DRUG", "TEST"}) for ex in some)
    dropped = sum(lab not in ("DRUG", "TEST") for ex in full for *_, lab in ex.spans)
    assert dropped and sum(len(ex.missing) for ex in some) >= dropped


def test_exhaustive_reads_a_partial_corpus_as_its_own_convention(tmp_path) -> None:
    from corpora.base import hash_split

    pmid, text = "90000042", "Rash after amoxicillin."
    (tmp_path / "DRUG-AE.rel").write_text(f"{pmid}|{text}|Rash|0|4|amoxicillin|11|22\n", encoding="utf-8")
    (tmp_path / "DRUG-DOSE.rel").write_text("", encoding="utf-8")
    (tmp_path / "ADE-NEG.txt").write_text(f"{pmid} NEG Aspirin was given for headache.\n", encoding="utf-8")
    split, folder = hash_split(pmid), {"ade_corpus_v2": tmp_path}
    partial = ner_examples(split, ("ade_corpus_v2",), corpus_dirs=folder)
    assert all(ex.annotated == frozenset() for ex in partial)  # its words are never "not a mention"
    exhaustive = ner_examples(split, ("ade_corpus_v2",), corpus_dirs=folder, exhaustive=True)
    by_text = {ex.text: ex for ex in exhaustive}
    assert by_text[text].spans == ((0, 4, "PROBLEM"), (11, 22, "DRUG")) and not by_text[text].missing
    negative = by_text["Aspirin was given for headache."]  # an ADE-NEG sentence: all "O"
    assert not negative.spans and negative.annotated == frozenset({"PROBLEM", "DRUG", "TEST", "PROCEDURE"})
