"""ADR evaluation: pair scoring by hand, the corpora's gold pairs, whole runs on tiny corpora, the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from spacy.language import Language
from spacy.tokens import Doc

import corpora
import nlp
from corpora.base import CorpusNotFoundError, hash_split
from nlp.cli import main
from nlp.components.adr import RELATION
from nlp.components.lexicon import SPAN_GROUP
from nlp.errors import InputError
from nlp.evaluation.adr import (
    PairErrors,
    ade_gold_pairs,
    check_corpus,
    evaluate_adr,
    evaluate_phee_adr,
    evaluate_tac_adr,
    pair_overlaps,
    phee_gold_pairs,
    record_pairs,
    score_pairs,
)
from nlp.evaluation.assertion import TABLE_HEADER
from nlp.records import Mention, NoteRecord, Relation
from tests.conftest import FIXTURE_CORPORA as FIXTURES

EVERY_PAIR_METHOD = "rule:test.every_pair"


def scores(precision, recall, f1, gold, predicted) -> dict:
    return {"precision": precision, "recall": recall, "f1": f1, "gold": gold, "predicted": predicted}


@Language.component("test_every_adr_pair")
def every_adr_pair(doc: Doc) -> Doc:
    """Known predictions for whole runs: every drug x every problem of the doc is a pair."""
    spans = list(doc.spans[SPAN_GROUP]) if SPAN_GROUP in doc.spans else []

    def offsets(span) -> tuple[int, int]:
        return span._.char_range or (span.start_char, span.end_char)

    kept = [rel for rel in doc._.relations if rel[0] != RELATION]
    doc._.relations = kept + [
        (RELATION, offsets(drug), offsets(problem), 1.0, EVERY_PAIR_METHOD)
        for drug in spans
        if drug.label_ == "DRUG"
        for problem in spans
        if problem.label_ == "PROBLEM"
    ]
    return doc


@pytest.fixture(scope="module")
def every_pair_pipe() -> nlp.Pipeline:
    pipe = nlp.load("lexicon")
    pipe.nlp.add_pipe("test_every_adr_pair", last=True)
    return pipe.warm_up()


# --- pure scoring ---------------------------------------------------------------------------------
AMOX, RASH, LISI, COUGH = (11, 22), (0, 4), (39, 49), (27, 32)


@pytest.mark.parametrize(
    ("gold", "predicted", "overlap", "counts"),
    [
        # (gold, pred, tp_gold, tp_pred)
        ([(AMOX, RASH), (LISI, COUGH)], [(AMOX, RASH), (AMOX, COUGH), (LISI, RASH)], False, (2, 3, 1, 1)),
        ([(AMOX, RASH)], [(AMOX, RASH), (AMOX, RASH)], False, (1, 1, 1, 1)),  # sets: a pair counts once
        ([(AMOX, RASH)], [(RASH, AMOX)], False, (1, 1, 0, 0)),  # direction matters
        ([], [(AMOX, RASH)], False, (0, 1, 0, 0)),
        ([(AMOX, RASH)], [], True, (1, 0, 0, 0)),
        # "severe rash": one shorter prediction; it overlaps both gold pairs sharing that drug
        ([(AMOX, (0, 11)), (AMOX, (5, 9))], [((11, 15), (7, 9))], False, (2, 1, 0, 0)),
        ([(AMOX, (0, 11)), (AMOX, (5, 9))], [((11, 15), (7, 9))], True, (2, 1, 2, 1)),
        # the reaction overlaps but the drug does not: no match
        ([(AMOX, RASH)], [(LISI, (2, 6))], True, (1, 1, 0, 0)),
        # touching spans share no character
        ([(AMOX, RASH)], [((22, 30), (4, 8))], True, (1, 1, 0, 0)),
    ],
)  # fmt: skip
def test_score_pairs(gold, predicted, overlap, counts) -> None:
    c = score_pairs(gold, predicted, overlap=overlap)
    assert (c.gold, c.pred, c.tp_gold, c.tp_pred) == counts


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (((0, 5), (10, 15)), ((0, 5), (10, 15)), True),
        (((0, 5), (10, 15)), ((4, 8), (14, 20)), True),
        (((0, 5), (10, 15)), ((5, 8), (10, 15)), False),
        (((0, 5), (10, 15)), ((10, 15), (0, 5)), False),
    ],
)
def test_pair_overlaps(a, b, expected) -> None:
    assert pair_overlaps(a, b) is expected


def mention(id_: str, label: str, start: int, end: int) -> Mention:
    return Mention(
        id=id_, label=label, text="x" * (end - start), start=start, end=end, section=None,
        assertion="present", subject="patient", source="target",
    )  # fmt: skip


def relation(type_: str, source: str, target: str, method: str) -> Relation:
    return Relation.model_validate({"type": type_, "from": source, "to": target, "method": method})


def test_record_pairs_reads_attributions_through_mention_ids() -> None:
    record = NoteRecord(
        note_id="n",
        pipeline="p",
        mentions=(
            mention("m0", "PROBLEM", 0, 4),
            mention("m1", "DRUG", 11, 22),
            mention("m2", "DRUG", 30, 35),
        ),
        relations=(
            relation(RELATION, "m1", "m0", "rule:adr.after"),
            relation(RELATION, "m1", "m0", "model:adr-minilm@0.1.0"),  # same pair: first method kept
            relation("allergy_reaction", "m2", "m0", "rule:allergy_inline"),  # an allergy is one too
            relation(RELATION, "m2", "m0", "model:adr-minilm@0.1.0"),
            relation("treats", "m1", "m0", "rule:other"),  # another relation type
        ),
    )
    assert record_pairs(record) == {
        ((11, 22), (0, 4)): "rule:adr.after",
        ((30, 35), (0, 4)): "rule:allergy_inline",
    }


def test_pair_errors_group_by_text_and_rank_by_count() -> None:
    errors = PairErrors()
    first = "Rash after amoxicillin and cough after lisinopril."
    errors.add(first, [(AMOX, RASH), (LISI, COUGH)], {(AMOX, RASH): "rule:a", (AMOX, COUGH): "rule:b"})
    errors.add("Cough after amoxicillin.", [], {((12, 23), (0, 5)): "rule:c"})
    # "rash" for gold "Severe rash": a miss and a false alarm by the strict rule, boundary only
    boundary = "Severe rash after amoxicillin."
    errors.add(boundary, [((18, 29), (0, 11))], {((18, 29), (7, 11)): "rule:a"})
    errors.add("Amoxicillin, cough.", [((0, 11), (13, 18))], {})
    report = errors.report()
    assert report["false_positives"] == [
        {"drug": "amoxicillin", "reaction": "cough", "count": 2, "boundary_only": 0, "sentence": first,
         "methods": {"rule:b": 1, "rule:c": 1}},
        {"drug": "amoxicillin", "reaction": "rash", "count": 1, "boundary_only": 1, "sentence": boundary,
         "methods": {"rule:a": 1}},
    ]  # fmt: skip
    assert report["false_negatives"] == [
        {"drug": "amoxicillin", "reaction": "cough", "count": 1, "boundary_only": 0,
         "sentence": "Amoxicillin, cough."},
        {"drug": "amoxicillin", "reaction": "severe rash", "count": 1, "boundary_only": 1,
         "sentence": boundary},
        {"drug": "lisinopril", "reaction": "cough", "count": 1, "boundary_only": 0, "sentence": first},
    ]  # fmt: skip
    assert [g["reaction"] for g in errors.report(top=1)["false_negatives"]] == ["cough"]


# --- gold pairs from the corpus readers ------------------------------------------------------------
def test_ade_gold_pairs_fixture() -> None:
    rows = {
        r["text"]: r for r in corpora.load("ade_corpus_v2", "test", corpus_dir=FIXTURES / "ade_corpus_v2")
    }
    assert ade_gold_pairs(rows["Warfarin-associated bleeding in an elderly man."]) == {((0, 8), (20, 28))}
    # the DOSE relation is not an ADE pair
    assert ade_gold_pairs(rows["A 79-year-old man developed bleeding after warfarin 5 mg daily."]) == {
        ((43, 51), (28, 36))
    }
    assert ade_gold_pairs(rows["He had no other complaints."]) == set()


@pytest.mark.parametrize(
    ("split", "row_id", "pairs"),
    [
        # isoniazid and rifampin -> hepatitis
        ("train", "90000011_1", {((58, 67), (37, 46)), ((72, 80), (37, 46))}),
        # a speculated and a negated adverse event: no pair
        ("train", "90000012_3", set()),
        # the discontinuous "renal ... dysfunction" is its first fragment
        ("validation", "90000013_1", {((0, 7), (30, 35)), ((0, 7), (40, 59))}),
        # a therapeutic event: no pair
        ("test", "90000014_2", set()),
    ],
)
def test_phee_gold_pairs_fixture(split, row_id, pairs) -> None:
    rows = {r["id"]: r for r in corpora.load("phee", split, corpus_dir=FIXTURES / "phee")}
    assert phee_gold_pairs(rows[row_id]) == pairs


# --- whole runs with known predictions ----------------------------------------------------------
ADE_PMID = "90000042"
ADE_PAIRS = [
    # (sentence, effect, effect start, drug, drug start)
    ("Rash after amoxicillin and cough after lisinopril.", "Rash", 0, "amoxicillin", 11),
    ("Rash after amoxicillin and cough after lisinopril.", "cough", 27, "lisinopril", 39),
    ("Warfarin-associated bleeding in an elderly man.", "bleeding", 20, "Warfarin", 0),
    # the lexicon finds "hepatitis" only: an end-to-end miss by the strict rule, a hit by overlap
    ("Severe hepatitis after isoniazid.", "Severe hepatitis", 0, "isoniazid", 23),
]
ADE_NEGATIVES = ["Aspirin was given for headache.", "He had no other complaints."]


def ade_corpus(folder: Path) -> Path:
    lines = [
        f"{ADE_PMID}|{text}|{effect}|{e}|{e + len(effect)}|{drug}|{d}|{d + len(drug)}"
        for text, effect, e, drug, d in ADE_PAIRS
    ]
    (folder / "DRUG-AE.rel").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "DRUG-DOSE.rel").write_text("", encoding="utf-8")
    negatives = "".join(f"{ADE_PMID} NEG {text}\n" for text in ADE_NEGATIVES)
    (folder / "ADE-NEG.txt").write_text(negatives, encoding="utf-8")
    return folder


def test_evaluate_ade_exact(every_pair_pipe, tmp_path) -> None:
    report = evaluate_adr(
        every_pair_pipe, "ade_corpus_v2", hash_split(ADE_PMID), corpus_dir=ade_corpus(tmp_path)
    )
    assert (report["task"], report["documents"], report["given_entities_sentences"]) == ("adr", 5, 3)
    assert report["scores"] == {
        # the three sentences with pairs: 4 gold, 4 + 1 + 1 predicted
        "given-entities": {"adverse_reaction": scores(0.6667, 1.0, 0.8, 4, 6)},
        # + the aspirin/headache sentence; hepatitis misses "Severe hepatitis"
        "end-to-end": {"adverse_reaction": scores(0.4286, 0.75, 0.5455, 4, 7)},
        # the sentences with pairs only: the aspirin/headache false alarm is not scored
        "end-to-end-ade-sentences": {"adverse_reaction": scores(0.5, 0.75, 0.6, 4, 6)},
        "end-to-end-overlap": {"adverse_reaction": scores(0.5714, 1.0, 0.7273, 4, 7)},
        "sentence": {"has_ade": scores(0.75, 1.0, 0.8571, 3, 4)},
    }
    given, end_to_end = report["errors"]["given-entities"], report["errors"]["end-to-end"]
    assert given["false_negatives"] == []
    assert {(e["drug"], e["reaction"]) for e in given["false_positives"]} == {
        ("amoxicillin", "cough"),
        ("lisinopril", "rash"),
    }
    assert end_to_end["false_negatives"] == [
        {"drug": "isoniazid", "reaction": "severe hepatitis", "count": 1, "boundary_only": 1,
         "sentence": "Severe hepatitis after isoniazid."},
    ]  # fmt: skip
    assert [(e["drug"], e["reaction"]) for e in end_to_end["false_positives"]] == [
        ("amoxicillin", "cough"),
        ("aspirin", "headache"),
        ("isoniazid", "hepatitis"),
        ("lisinopril", "rash"),
    ]
    assert [e["boundary_only"] for e in end_to_end["false_positives"]] == [0, 0, 1, 0]
    assert end_to_end["false_positives"][0]["methods"] == {EVERY_PAIR_METHOD: 1}


def test_evaluate_phee_adr_fixture(every_pair_pipe) -> None:
    report = evaluate_phee_adr(every_pair_pipe, "train", corpus_dir=FIXTURES / "phee")
    assert report["documents"] == 2
    # 2 gold pairs; methotrexate is paired with its speculated and negated effects too
    assert report["scores"] == {"given-entities": {"adverse_reaction": scores(0.4, 1.0, 0.5714, 2, 5)}}
    assert {e["reaction"] for e in report["errors"]["given-entities"]["false_positives"]} == {
        "nausea",
        "vomiting",
        "mucositis",
    }


TAC_SECTION = "Adverse reactions: nausea, severe headache and xylophagia."


def tac_corpus(folder: Path) -> Path:
    def event(text: str, start: int | None, length: int) -> list:
        offset = None if start is None else str(start)
        return [text, "PT", 10000001.0, "LLT", 10000002.0, offset, str(length), "human"]

    sections = [
        {"label_id": "TESTDRUG", "section_name": "adverse reactions", "section_text": TAC_SECTION,
         "adverse_events": [event("nausea", 19, 6), event("severe headache", 27, 15),
                            event("xylophagia", 47, 10), event("injection site pain", None, 19)]},
        {"label_id": "TESTDRUG", "section_name": "boxed warnings", "section_text": "WARNING: none.",
         "adverse_events": []},
    ]  # fmt: skip
    for name in ("demner-fushman-train-labels.json", "demner-fushman-test-labels.json"):
        (folder / name).write_text(json.dumps(sections), encoding="utf-8")
    return folder


def test_evaluate_tac_adr_exact(every_pair_pipe, tmp_path) -> None:
    report = evaluate_tac_adr(every_pair_pipe, "test", corpus_dir=tac_corpus(tmp_path))
    assert (report["documents"], report["unplaced"]) == (1, 1)
    # the lexicon finds nausea and headache (inside "severe headache"), not xylophagia
    strict, overlap = scores(None, 0.3333, None, 3, None), scores(None, 0.6667, None, 3, None)
    assert report["scores"] == {
        "mention-strict": {"all": strict, "adverse reactions": strict},
        "mention-overlap": {"all": overlap, "adverse reactions": overlap},
    }
    assert report["errors"] == {"missed_reactions": [{"text": "xylophagia", "count": 1}]}


# --- dispatch and the command line ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("corpus", "error", "code"),
    [("nosuchcorpus", CorpusNotFoundError, "corpus_not_found"), ("bc5cdr", InputError, "unsupported_corpus")],
)
def test_other_corpora_are_coded_errors(every_pair_pipe, corpus, error, code) -> None:
    with pytest.raises(error) as err:
        check_corpus(corpus)
    assert err.value.code == code
    with pytest.raises(error):
        evaluate_adr(every_pair_pipe, corpus, "test")


@pytest.fixture
def in_tmp(tmp_path, monkeypatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def test_evaluate_command_writes_adr_json(in_tmp, capsys) -> None:
    folder = ade_corpus(in_tmp)
    split = hash_split(ADE_PMID)
    argv = ["evaluate", "ade_corpus_v2", "--task", "adr", "--split", split, "--pipeline", "lexicon"]
    assert main([*argv, "--corpus-dir", str(folder)]) == 0
    printed = capsys.readouterr().out
    assert all(word in printed for word in TABLE_HEADER)
    assert all(level in printed for level in ("given-entities", "end-to-end-overlap", "has_ade"))
    report = json.loads((in_tmp / "out" / "eval" / f"ade_corpus_v2-{split}-adr.json").read_text())
    assert (report["corpus"], report["split"], report["task"], report["documents"]) == (
        "ade_corpus_v2",
        split,
        "adr",
        5,
    )
    assert set(report["errors"]) == {"given-entities", "end-to-end"}


@pytest.mark.parametrize(
    ("corpus", "code"),
    [
        ("bc5cdr", "unsupported_corpus"),
        ("nosuchcorpus", "corpus_not_found"),
        ("missing-cases.jsonl", "unreadable_input"),  # a case file is read, and must exist
    ],
)
def test_evaluate_command_adr_errors_are_coded(in_tmp, capsys, corpus, code) -> None:
    assert main(["evaluate", corpus, "--task", "adr", "--pipeline", "lexicon"]) == 2
    assert f"[{code}]" in capsys.readouterr().err
