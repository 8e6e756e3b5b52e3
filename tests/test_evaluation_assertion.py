"""Assertion evaluation: scoring by hand on tiny inputs, corpus readers' gold, the command line."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

import corpora
import nlp
from corpora.base import CorpusNotFoundError, hash_split
from nlp.cli import main
from nlp.errors import InputError
from nlp.evaluation.assertion import (
    TABLE_HEADER,
    AssertionCase,
    chia_relation_heads,
    cue_errors,
    evaluate_assertion,
    evaluate_bioscope,
    evaluate_cases,
    evaluate_chia,
    evaluate_phee,
    format_table,
    phee_items,
    read_cases,
    scope_token_counts,
    score_cases,
)
from tests.conftest import FIXTURE_CORPORA as FIXTURES


def scores(precision, recall, f1, gold, predicted) -> dict:
    return {"precision": precision, "recall": recall, "f1": f1, "gold": gold, "predicted": predicted}


def write_cases(path: Path, cases: list[dict]) -> Path:
    path.write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lexicon_pipe() -> nlp.Pipeline:
    return nlp.load("lexicon").warm_up()


# --- case files -----------------------------------------------------------------------------------
CASES = [
    {"id": "a", "text": "Denies chest pain.", "mention": "chest pain", "label": "PROBLEM",
     "assertion": "absent", "subject": "patient", "form": "negation"},
    {"id": "b", "text": "Mother had MI at 52.", "mention": "MI", "label": "PROBLEM", "assertion": "present",
     "subject": "family", "relationship": "MTH", "onset_age": 52, "form": "family"},
    {"id": "c", "text": "Possible pneumonia.", "mention": "pneumonia", "label": "PROBLEM",
     "assertion": "possible", "subject": "patient", "form": "uncertainty"},
    # the gold here is deliberately wrong: the pipeline says possible, so this is the one mismatch
    {"id": "d", "text": "Possible pneumonia.", "mention": "pneumonia", "label": "PROBLEM",
     "assertion": "historical", "subject": "patient", "form": "uncertainty"},
]  # fmt: skip


def test_evaluate_cases_exact_scores(lexicon_pipe, tmp_path) -> None:
    report = evaluate_cases(lexicon_pipe, write_cases(tmp_path / "cases.jsonl", CASES))
    assert (report["cases"], report["documents"], report["split"]) == (4, 3, None)
    by_class = report["scores"]["case"]
    assert by_class["absent"] == scores(1.0, 1.0, 1.0, 1, 1)
    assert by_class["possible"] == scores(0.5, 1.0, 0.6667, 1, 2)
    assert by_class["historical"] == scores(None, 0.0, None, 1, 0)
    assert by_class["hypothetical"] == scores(None, None, None, 0, 0)
    assert by_class["family"] == scores(1.0, 1.0, 1.0, 1, 1)
    assert report["accuracy"] == {
        "assertion": {"accuracy": 0.75, "cases": 4},
        "subject": {"accuracy": 1.0, "cases": 4},
        "relationship": {"accuracy": 1.0, "cases": 1},
        "onset_age": {"accuracy": 1.0, "cases": 1},
        "all": {"accuracy": 0.75, "cases": 4},
    }
    assert report["forms"]["uncertainty"] == {"cases": 2, "correct": 1}
    [mismatch] = report["mismatches"]
    assert mismatch["id"] == "d" and mismatch["expected"] == {"assertion": "historical", "subject": "patient"}
    assert mismatch["got"] == {"assertion": "possible", "subject": "patient"}
    assert any(cue["category"] == "possible_existence" for cue in mismatch["cues"])


def test_case_occurrence_picks_the_nth_substring(tmp_path) -> None:
    case = {**CASES[0], "text": "No pain; chest pain.", "mention": "pain", "occurrence": 2}
    [read] = read_cases(write_cases(tmp_path / "c.jsonl", [case]))
    assert (read.start, read.end) == (15, 19)


@pytest.mark.parametrize(
    ("gold", "got", "expected"),
    [
        # assertion (gold, got) per case -> (absent P, absent R, accuracy)
        ([("absent", "absent"), ("present", "absent")], None, (0.5, 1.0, 0.5)),
        ([("absent", "present"), ("present", "present")], None, (None, 0.0, 0.5)),
        ([("historical", "historical")], None, (None, None, 1.0)),
    ],
)
def test_score_cases_one_vs_rest(gold, got, expected) -> None:
    cases = [AssertionCase(str(i), "t", "t", 0, 1, "PROBLEM", g, "patient") for i, (g, _) in enumerate(gold)]
    predictions = [
        {"assertion": p, "subject": "patient", "relationship": None, "onset_age": None} for _, p in gold
    ]
    report = score_cases(cases, predictions)
    absent = report["scores"]["case"]["absent"]
    assert (absent["precision"], absent["recall"], report["accuracy"]["assertion"]["accuracy"]) == expected


def test_score_cases_checks_relationship_only_when_given() -> None:
    cases = [
        AssertionCase("x", "t", "t", 0, 1, "PROBLEM", "present", "family", relationship="MTH"),
        AssertionCase("y", "t", "t", 0, 1, "PROBLEM", "present", "family"),
    ]
    predictions = [
        {"assertion": "present", "subject": "family", "relationship": "FTH", "onset_age": 40},
        {"assertion": "present", "subject": "family", "relationship": "FTH", "onset_age": 40},
    ]
    report = score_cases(cases, predictions)
    assert [m["id"] for m in report["mismatches"]] == ["x"]
    assert report["accuracy"]["relationship"] == {"accuracy": 0.0, "cases": 1}
    assert "onset_age" not in report["accuracy"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({k: v for k, v in CASES[0].items() if k != "assertion"}), "missing ['assertion']"),
        (json.dumps({**CASES[0], "polarity": "neg"}), "unknown keys ['polarity']"),
        (json.dumps({**CASES[0], "assertion": "negated"}), "assertion 'negated'"),
        (json.dumps({**CASES[0], "subject": "husband"}), "subject 'husband'"),
        (json.dumps({**CASES[0], "label": "DISEASE"}), "label 'DISEASE'"),
        (json.dumps({**CASES[0], "mention": "fever"}), "does not occur 1 time"),
        (json.dumps({**CASES[0], "occurrence": 2}), "does not occur 2 time"),
        (json.dumps({**CASES[0], "occurrence": 0}), "'occurrence' must be a positive integer"),
        (json.dumps({**CASES[1], "onset_age": "52"}), "'onset_age' must be a positive integer"),
        (json.dumps({**CASES[1], "relationship": "MOM"}), "relationship 'MOM'"),
        (json.dumps({**CASES[0], "relationship": "MTH"}), "family cases only"),
        (json.dumps(CASES[0]) + "\n" + json.dumps(CASES[0]), "duplicate case id 'a'"),
        ("\n\n", "no cases"),
    ],
)
def test_malformed_case_file_is_a_coded_error(tmp_path, line, message) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="bad.jsonl") as err:
        read_cases(path)
    assert err.value.code == "malformed_record"
    assert message in err.value.message


def test_missing_case_file_is_unreadable_input(tmp_path) -> None:
    with pytest.raises(InputError) as err:
        read_cases(tmp_path / "nowhere.jsonl")
    assert err.value.code == "unreadable_input"


# --- BioScope -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tokens", "predicted", "scopes", "cues", "token_counts", "full"),
    [
        # "No fever was seen": gold scope "No fever", the pipeline's scope runs to the end
        ([(0, 2), (3, 8), (9, 12), (13, 17)], [set(), {"negation"}, {"negation"}, {"negation"}],
         [(0, 8, "negation")], [(0, 2, "negation")], (1, 3, 1), (1, 1)),
        # a scope of another type is not this type's gold; the cue of another type is scored
        ([(0, 2), (3, 8)], [{"speculation"}, set()], [(0, 8, "speculation")], [(0, 2, "negation")],
         (0, 0, 0), (0, 0)),
        # two scopes, one half covered; a scope that is only its cue is not counted
        ([(0, 3), (4, 7), (8, 11), (12, 15), (16, 19)], [set(), {"negation"}, {"negation"}, set(), set()],
         [(0, 11, "negation"), (12, 19, "negation"), (20, 23, "negation")],
         [(0, 3, "negation"), (20, 23, "negation")], (4, 2, 2), (2, 1)),
    ],
)  # fmt: skip
def test_scope_token_counts(tokens, predicted, scopes, cues, token_counts, full) -> None:
    tok, scope = scope_token_counts(tokens, predicted, scopes, cues, "negation")
    assert (tok.gold, tok.pred, tok.tp_gold) == token_counts
    assert (scope.gold, scope.tp_gold) == full


def test_cue_errors_name_what_the_pipeline_found_instead() -> None:
    text = "It may not bind, nor was it no change."
    gold = [(3, 6, "speculation"), (7, 10, "negation"), (17, 20, "negation")]
    found = [
        {"category": "hypothetical", "start": 3, "end": 6, "rule": "hyp.may"},
        {"category": "negated_existence", "start": 7, "end": 10, "rule": "neg.not"},
        {"category": "negated_existence", "start": 28, "end": 30, "rule": "neg.no"},
    ]
    predicted = [(7, 10, "negation"), (28, 30, "negation")]
    errors: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(Counter)))
    cue_errors(gold, predicted, found, text, errors)
    assert errors["speculation"]["false_negatives"] == {"may": Counter({"hypothetical": 1})}
    assert errors["negation"]["false_negatives"] == {"nor": Counter({"none": 1})}
    assert errors["negation"]["false_positives"] == {"no": Counter({"neg.no": 1})}


BIOSCOPE_DOC = "90000001"


def bioscope_corpus(folder: Path) -> Path:
    """An abstract whose cues the rules surely find, and a cue-free paper: one document id, one split."""
    abstract = (
        '<sentence id="S1.1"><xcope id="X1.1.1"><cue type="negation" ref="X1.1.1">No</cue> fever</xcope>'
        " was seen.</sentence>"
        '<sentence id="S1.2"><xcope id="X1.2.1"><cue type="speculation" ref="X1.2.1">Possible</cue>'
        " pneumonia</xcope>.</sentence>"
        '<sentence id="S1.3">Binding was measured in vitro.</sentence>'
    )
    for name, doc_type, body in (
        ("abstracts.xml", "Biological_abstract", abstract),
        ("full_papers.xml", "Biological_full_article", '<sentence id="S9.1">Results.</sentence>'),
    ):
        (folder / name).write_text(
            '<?xml version="1.0" encoding="utf-8"?><Annotation><DocumentSet>'
            f'<Document type="{doc_type}"><DocID type="PMID">{BIOSCOPE_DOC}</DocID>'
            f'<DocumentPart type="AbstractText">{body}</DocumentPart></Document>'
            "</DocumentSet></Annotation>",
            encoding="utf-8",
        )
    return folder


def test_evaluate_bioscope_exact(lexicon_pipe, tmp_path) -> None:
    folder = bioscope_corpus(tmp_path)
    report = evaluate_bioscope(lexicon_pipe, hash_split(BIOSCOPE_DOC), corpus_dir=folder)
    assert report["documents"] == 4
    s = report["scores"]
    for level in ("cue-strict", "cue-overlap"):
        assert s[level] == {
            "negation": scores(1.0, 1.0, 1.0, 1, 1),
            "speculation": scores(1.0, 1.0, 1.0, 1, 1),
        }, level
    # "No fever was seen": gold scope token fever; the rule's scope covers fever, was, seen
    assert s["scope-token"]["negation"] == scores(0.3333, 1.0, 0.5, 1, 3)
    assert s["scope-token"]["speculation"] == scores(1.0, 1.0, 1.0, 1, 1)
    assert s["scope-full"]["negation"] == scores(None, 1.0, None, 1, None)
    assert report["cue_errors"]["negation"] == {"false_negatives": [], "false_positives": []}
    assert [row[:2] for row in format_table(report)][:2] == [
        ["cue-strict", "negation"],
        ["cue-strict", "speculation"],
    ]


def test_evaluate_bioscope_fixture_gold_and_predicted_cues(lexicon_pipe) -> None:
    folder = FIXTURES / "bioscope"
    report = evaluate_bioscope(lexicon_pipe, "train", corpus_dir=folder)
    s = report["scores"]
    # gold by hand: cues without, Neither, nor / suggest that, might; scope tokens without cue tokens
    assert (s["cue-strict"]["negation"]["gold"], s["cue-strict"]["speculation"]["gold"]) == (3, 2)
    assert (s["scope-token"]["negation"]["gold"], s["scope-token"]["speculation"]["gold"]) == (9, 10)
    assert (s["scope-full"]["negation"]["gold"], s["scope-full"]["speculation"]["gold"]) == (2, 2)
    context = lexicon_pipe.nlp.get_pipe("clinical_context")
    found = Counter(
        c["category"]
        for row in corpora.load("bioscope", "train", corpus_dir=folder)
        for c in context.cues(lexicon_pipe.annotate_doc(row["text"]))
    )
    assert s["cue-strict"]["negation"]["predicted"] == found["negated_existence"]
    assert s["cue-strict"]["speculation"]["predicted"] == found["possible_existence"]


# --- Chia -----------------------------------------------------------------------------------------
CHIA_LINES = [
    # (line, [(T id, label, text)], [(relation, head, tail)])
    ("No diabetes or hypertension",
     [("T1", "Negation", "No"), ("T2", "Condition", "diabetes"), ("T3", "Condition", "hypertension"),
      ("T4", "Scope", "diabetes or hypertension")],
     [("Has_negation", "T4", "T1")]),
    ("Patients without asthma",
     [("T5", "Person", "Patients"), ("T6", "Negation", "without"), ("T7", "Condition", "asthma")],
     [("Has_negation", "T7", "T6")]),
    ("No prior stroke", [("T8", "Temporal", "prior"), ("T9", "Condition", "stroke")], []),  # not marked
    ("Prior gastric bypass surgery", [("T10", "Procedure", "gastric bypass surgery")], []),
    ("Scheduled for knee surgery",
     [("T11", "Mood", "Scheduled for"), ("T12", "Procedure", "knee surgery")], [("Has_mood", "T12", "T11")]),
]  # fmt: skip
CHIA_TRIAL = "NCT12345678"


def chia_corpus(folder: Path) -> Path:
    base = folder / "chia_with_scope"
    base.mkdir(parents=True)
    text, ann, offset, rel = "", [], 0, 0
    for line, entities, relations in CHIA_LINES:
        for tid, label, surface in entities:
            start = offset + line.index(surface)
            ann.append(f"{tid}\t{label} {start} {start + len(surface)}\t{surface}")
        for kind, head, tail in relations:
            rel += 1
            ann.append(f"R{rel}\t{kind} Arg1:{head} Arg2:{tail}\t")
        text += line + "\n"
        offset += len(line) + 1
    (base / f"{CHIA_TRIAL}_exc.txt").write_text(text, encoding="utf-8")
    (base / f"{CHIA_TRIAL}_exc.ann").write_text("\n".join(ann) + "\n", encoding="utf-8")
    return folder


def test_evaluate_chia_exact(lexicon_pipe, tmp_path) -> None:
    report = evaluate_chia(lexicon_pipe, hash_split(CHIA_TRIAL), corpus_dir=chia_corpus(tmp_path))
    assert (report["documents"], report["entities"]) == (1, 6)
    # gold negated: diabetes, hypertension (through the Scope), asthma; "No prior stroke" is unmarked
    assert report["scores"]["entity"]["negation"] == scores(0.75, 1.0, 0.8571, 3, 4)
    [mismatch] = report["mismatches"]
    assert (mismatch["mention"], mismatch["text"], mismatch["expected"]) == (
        "stroke",
        "No prior stroke",
        "not negated",
    )
    assert report["mood"]["entities"] == 1 and report["mood"]["cue_texts"] == {"scheduled for": 1}
    assert sum(report["mood"]["predicted"].values()) == 1


def test_chia_negation_reaches_scope_members_not_what_points_at_the_scope() -> None:
    text = "Cancer except skin or lip cancer"
    spans = [
        {"start": 0, "end": 6, "label": "Condition"},  # 0 Cancer
        {"start": 7, "end": 13, "label": "Negation"},  # 1 except
        {"start": 14, "end": 18, "label": "Condition"},  # 2 skin (first fragment of "skin cancer")
        {"start": 22, "end": 25, "label": "Condition"},  # 3 lip
        {"start": 26, "end": 32, "label": "Condition"},  # 4 cancer (second fragment of "skin cancer")
        {"start": 14, "end": 32, "label": "Scope"},  # 5
        {"start": 22, "end": 32, "label": "Condition"},  # 6 lip cancer
    ]
    row = {
        "text": text,
        "spans": spans,
        "relations": [
            {"type": "Has_negation", "head": 5, "tail": 1},
            {"type": "Has_scope", "head": 0, "tail": 5},
        ],
        "meta": json.dumps({"discontinuous": [[2, 4]]}),
    }
    assert chia_relation_heads(row, "Has_negation") == {2, 3, 6}
    assert chia_relation_heads(row, "Has_mood") == set()


# --- PHEE -----------------------------------------------------------------------------------------
def test_phee_items_flags_and_fragments() -> None:
    rows = {r["id"]: r for r in corpora.load("phee", "train", corpus_dir=FIXTURES / "phee")}
    row = rows["90000012_3"]
    assert phee_items(row, "Effect") == {3: (False, True), 4: (False, True), 7: (True, False)}
    assert phee_items(row, "Trigger") == {0: (False, True), 6: (True, False)}
    [discontinuous] = corpora.load("phee", "validation", corpus_dir=FIXTURES / "phee")
    assert phee_items(discontinuous, "Effect") == {3: (False, False), 5: (False, False)}


def test_evaluate_phee_fixture(lexicon_pipe) -> None:
    report = evaluate_phee(lexicon_pipe, "train", corpus_dir=FIXTURES / "phee")
    assert report["documents"] == 2
    # "may have caused the nausea and vomiting, but no mucositis was seen"
    assert report["scores"] == {
        "Effect": {"negation": scores(1.0, 1.0, 1.0, 1, 1), "speculation": scores(1.0, 1.0, 1.0, 2, 2)},
        "Trigger": {"negation": scores(1.0, 1.0, 1.0, 1, 1), "speculation": scores(1.0, 1.0, 1.0, 1, 1)},
    }
    assert report["mismatches"] == []


# --- dispatch and the command line ----------------------------------------------------------------
def test_evaluate_assertion_dispatches(lexicon_pipe, tmp_path) -> None:
    path = write_cases(tmp_path / "cases.jsonl", CASES[:1])
    assert evaluate_assertion(lexicon_pipe, path, "test")["cases"] == 1
    report = evaluate_assertion(lexicon_pipe, "phee", "train", corpus_dir=FIXTURES / "phee")
    assert report["corpus"] == "phee" and report["pipeline"] == lexicon_pipe.id and "words_per_s" in report


@pytest.mark.parametrize(
    ("corpus", "error", "code"),
    [("nosuchcorpus", CorpusNotFoundError, "corpus_not_found"), ("bc5cdr", InputError, "unsupported_corpus")],
)
def test_evaluate_assertion_rejects_other_corpora(lexicon_pipe, corpus, error, code) -> None:
    with pytest.raises(error) as err:
        evaluate_assertion(lexicon_pipe, corpus, "test")
    assert err.value.code == code


def test_evaluate_command_writes_assertion_json(tmp_path, capsys) -> None:
    out = tmp_path / "phee.json"
    argv = ["evaluate", "phee", "--task", "assertion", "--split", "train", "--pipeline", "lexicon"]
    code = main([*argv, "--corpus-dir", str(FIXTURES / "phee"), "-o", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert all(word in printed for word in TABLE_HEADER) and "Effect" in printed
    report = json.loads(out.read_text())
    assert (report["corpus"], report["split"], report["task"]) == ("phee", "train", "assertion")


def test_evaluate_command_reads_a_case_file(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_cases(tmp_path / "heldout.jsonl", CASES)
    assert main(["evaluate", "heldout.jsonl", "--task", "assertion", "--pipeline", "lexicon"]) == 0
    assert "accuracy: assertion 0.750 (4)" in capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "eval" / "heldout-assertion.json").read_text())
    assert report["cases"] == 4 and len(report["mismatches"]) == 1


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["evaluate", "cases.jsonl"], "unsupported_corpus"),  # a case file needs --task assertion
        (["evaluate", "bc5cdr", "--task", "assertion"], "unsupported_corpus"),
        (["evaluate", "nosuchcorpus", "--task", "assertion"], "corpus_not_found"),
        (["evaluate", "bad.jsonl", "--task", "assertion"], "malformed_record"),
    ],
)
def test_evaluate_command_errors_are_coded(tmp_path, capsys, monkeypatch, argv, code) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.jsonl").write_text("{}\n", encoding="utf-8")
    assert main([*argv, "--pipeline", "lexicon"]) == 2
    assert f"[{code}]" in capsys.readouterr().err
