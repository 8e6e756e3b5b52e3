"""Scoring: strict and overlap counts by hand, and ``evaluate_ner`` through the real pipeline."""

from __future__ import annotations

import json

import pytest

import corpora
import nlp
from nlp.cli import main
from nlp.evaluation.ner import Tally, evaluate_ner, format_table
from tests.conftest import FIXTURE_CORPORA as FIXTURES


@pytest.mark.parametrize(
    ("gold", "predicted", "strict", "overlap"),
    [
        # (tp_gold, tp_pred, gold, pred) per rule, label PROBLEM only
        ([(0, 5, "PROBLEM")], [(0, 5, "PROBLEM")], (1, 1, 1, 1), (1, 1, 1, 1)),
        ([(0, 5, "PROBLEM")], [(0, 4, "PROBLEM")], (0, 0, 1, 1), (1, 1, 1, 1)),
        ([(0, 5, "PROBLEM")], [(5, 9, "PROBLEM")], (0, 0, 1, 1), (0, 0, 1, 1)),  # touching is not overlap
        ([(0, 5, "PROBLEM")], [(0, 5, "DRUG")], (0, 0, 1, 0), (0, 0, 1, 0)),  # DRUG is not scored here
        # one long prediction over two gold mentions: both gold found, one prediction matched
        ([(0, 5, "PROBLEM"), (10, 15, "PROBLEM")], [(0, 15, "PROBLEM")], (0, 0, 2, 1), (2, 1, 2, 1)),
        ([], [(0, 5, "PROBLEM")], (0, 0, 0, 1), (0, 0, 0, 1)),
        # duplicates count once
        ([(0, 5, "PROBLEM"), (0, 5, "PROBLEM")], [(0, 5, "PROBLEM")], (1, 1, 1, 1), (1, 1, 1, 1)),
    ],
)
def test_tally_counts(gold, predicted, strict, overlap) -> None:
    tally = Tally(("PROBLEM",))
    tally.add_document(gold, predicted)
    for rule, expected in (("strict", strict), ("overlap", overlap)):
        c = tally.counts[rule, "PROBLEM"]
        assert (c.tp_gold, c.tp_pred, c.gold, c.pred) == expected, rule


def test_report_micro_and_recall_only() -> None:
    tally = Tally(("DRUG", "PROBLEM"))
    tally.add_document([(0, 3, "DRUG"), (5, 9, "PROBLEM")], [(0, 3, "DRUG"), (20, 25, "PROBLEM")])
    report = tally.report()
    assert report["strict"]["labels"]["DRUG"]["f1"] == 1.0
    assert report["strict"]["labels"]["PROBLEM"]["precision"] == 0.0
    assert report["strict"]["micro"] == {
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "gold": 2,
        "predicted": 2,
    }
    recall_only = tally.report(recall_only=True)["strict"]["micro"]
    assert recall_only["precision"] is None and recall_only["f1"] is None and recall_only["recall"] == 0.5


def test_empty_label_scores_are_none_not_zero() -> None:
    report = Tally(("TEST",)).report()
    assert report["strict"]["labels"]["TEST"] == {
        "precision": None,
        "recall": None,
        "f1": None,
        "gold": 0,
        "predicted": 0,
    }


@pytest.fixture(scope="module")
def lexicon_pipe() -> nlp.Pipeline:
    return nlp.load("lexicon").warm_up()


def test_evaluate_on_fixture_corpus(lexicon_pipe) -> None:
    folder = FIXTURES / "bc5cdr"
    report = evaluate_ner(lexicon_pipe, "bc5cdr", "test", corpus_dir=folder)
    gold = corpora.load("bc5cdr", "test", corpus_dir=folder)
    assert report["documents"] == len(gold)
    assert report["labels"] == ["DRUG", "PROBLEM"]
    assert report["scores"]["strict"]["micro"]["gold"] == sum(len(r["spans"]) for r in gold)
    # what the pipeline found is what the library returns for the same texts
    predicted = sum(
        sum(m.label in ("DRUG", "PROBLEM") for m in lexicon_pipe.annotate(r["text"]).mentions) for r in gold
    )
    assert report["scores"]["strict"]["micro"]["predicted"] == predicted
    strict, overlap = report["scores"]["strict"]["micro"], report["scores"]["overlap"]["micro"]
    assert overlap["recall"] >= strict["recall"]
    assert len(format_table(report)) == 6


def test_evaluate_command_writes_json(tmp_path, capsys) -> None:
    out = tmp_path / "report.json"
    code = main(
        [
            "evaluate",
            "bc5cdr",
            "--pipeline",
            "lexicon",
            "--corpus-dir",
            str(FIXTURES / "bc5cdr"),
            "-o",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "strict" in printed and "overlap" in printed and "micro" in printed
    report = json.loads(out.read_text())
    assert report["corpus"] == "bc5cdr" and report["split"] == "test"


def test_evaluate_missing_corpus_is_a_clear_error(tmp_path, capsys) -> None:
    code = main(["evaluate", "bc5cdr", "--pipeline", "lexicon", "--corpus-dir", str(tmp_path / "nowhere")])
    assert code == 2
    err = capsys.readouterr().err
    assert "corpus_not_found" in err and "nowhere" in err
