"""The CNN training command end to end on the fixture corpus: it trains, saves, and the pipeline loads it."""

from __future__ import annotations

import json

import pytest
import spacy

import nlp
from nlp.pipeline import build_nlp
from nlp.train.cnn import train_cnn
from tests.conftest import FIXTURE_CORPORA as FIXTURES


@pytest.mark.slow
def test_train_save_and_load(tmp_path) -> None:
    out = tmp_path / "ner-tiny"
    report = train_cnn(
        out,
        corpora_names=("bc5cdr",),
        corpus_dirs={"bc5cdr": FIXTURES / "bc5cdr"},
        epochs=2,
        width=32,
        depth=1,
    )
    assert report["best_epoch"] in (1, 2) and len(report["history"]) == 2
    assert json.loads((out / "training.json").read_text())["seed"] == 13
    assert spacy.load(out).meta["version"] == nlp.__version__
    # the component loads any trained folder by path and annotates through the pipeline
    pipe = build_nlp("lexicon", None)
    pipe.add_pipe("clinical_cnn_ner", config={"model": str(out)}, before="clinical_medication")
    doc = pipe("Famotidine-associated delirium.")
    assert all(s.start_char < s.end_char for s in doc.spans["clinical"])
    assert not doc.ents  # the model's entities were merged into the span group


@pytest.mark.slow
def test_final_run_trains_on_train_and_validation(tmp_path) -> None:
    from nlp.components.cnn_ner import validation_precision

    folder = {"bc5cdr": FIXTURES / "bc5cdr"}
    with pytest.raises(ValueError, match="mention_precision"):
        train_cnn(tmp_path / "x", corpora_names=("bc5cdr",), corpus_dirs=folder, final_epochs=1)
    out = tmp_path / "final"
    report = train_cnn(
        out,
        corpora_names=("bc5cdr",),
        corpus_dirs=folder,
        final_epochs=2,
        mention_precision=0.5,
        width=32,
        depth=1,
    )
    assert (
        report["protocol"].startswith("final") and report["best_epoch"] == 2 and report["dev_examples"] == 0
    )
    selection = train_cnn(
        tmp_path / "sel", corpora_names=("bc5cdr",), corpus_dirs=folder, epochs=1, width=32, depth=1
    )
    assert (
        report["train_examples"] > selection["train_examples"]
    )  # validation documents joined the training set
    assert validation_precision(out) == 0.5
