"""Risk-factor evaluation: case file checks and scoring by hand with a fake pipeline (no model)."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest

from nlp.errors import InputError
from nlp.evaluation.risk import (
    FIELD_VALUES,
    evaluate_risk_cases,
    format_table,
    match_observations,
    read_risk_cases,
)
from nlp.records import NoteRecord

if TYPE_CHECKING:
    from nlp.pipeline import Pipeline

RISK_FIXTURES = Path(__file__).parent / "fixtures" / "risk"
SMOKER_TEXT = "67M, former smoker 1 ppd x 30 yrs, quit 2019. BP 152/94 on 3/4. BMI 34.2"
SMOKER: dict[str, Any] = {
    "id": "smoker", "text": SMOKER_TEXT,
    "profile": {"smoking": "former", "alcohol_use": "unknown", "hypertension": "unknown",
                "diabetes": "unknown", "hyperlipidemia": "unknown", "obesity": "present",
                "family_history_premature_cad": "unknown", "bmi": 34.2},
    "smoking_detail": {"packs_per_day": 1.0, "years": 30, "pack_years": 30.0, "quit_year": 2019},
    "drug_use": "unknown",
    "observations": [{"kind": "bp_systolic", "value": 152, "unit": "mm[Hg]"},
                     {"kind": "bp_diastolic", "value": 94, "unit": "mm[Hg]"},
                     {"kind": "bmi", "value": 34.2, "unit": "kg/m2"}],
    "rejected": ["3/4"], "demographics": {"age": 67, "sex": "male"}, "form": "hpi.narrative",
}  # fmt: skip
ABSTAINER: dict[str, Any] = {
    "id": "abstainer", "text": "Denies tobacco, alcohol and drugs. PMH: HTN, DM2. Drinks 0/week.",
    "profile": {"smoking": "never", "alcohol_use": "no", "hypertension": "present", "diabetes": "present",
                "hyperlipidemia": "unknown", "obesity": "unknown", "family_history_premature_cad": "unknown",
                "bmi": None},
    "alcohol_detail": {"drinks_per_week": 0},
    "drug_use": "no", "observations": [], "rejected": [], "demographics": {},
    "form": "social_history.negation",
}  # fmt: skip
CASES: list[dict[str, Any]] = [SMOKER, ABSTAINER]


@dataclass
class FakePipeline:
    """Answers ``annotate`` with a real NoteRecord carrying the given ``risk_factors`` per note id."""

    risk_factors: Mapping[str, dict[str, Any] | None]
    id: str = "fake@0.0"
    info: SimpleNamespace = field(default_factory=lambda: SimpleNamespace(fingerprint="0123456789ab"))
    seen: list[str] = field(default_factory=list)

    def annotate(self, text: str, *, note_id: str | None = None) -> NoteRecord:
        assert note_id is not None
        self.seen.append(note_id)
        return NoteRecord(
            note_id=note_id, pipeline=self.id, text_length=len(text), risk_factors=self.risk_factors[note_id]
        )


def perfect(case: dict[str, Any]) -> dict[str, Any]:
    """``risk_factors`` as the contract has it, saying exactly what the case's gold says."""
    observations = []
    for o in case["observations"]:
        value_text = f"{o['value']:g}"
        start = case["text"].index(value_text)
        observations.append(
            {
                **o,
                "value": float(o["value"]),
                "start": start,
                "end": start + len(value_text),
                "text": value_text,
            }
        )
    return {
        "profile": {**case["profile"], "drug_use": case["drug_use"], "ckd": "unknown"},
        "smoking_detail": dict(case.get("smoking_detail") or {}),
        "alcohol_detail": {"drinks_per_week": None, "amount_text": None, **case.get("alcohol_detail", {})},
        "observations": observations,
        "demographics": {"age": None, "sex": None, "race": None, **case["demographics"]},
        "evidence": {},
    }


def write_cases(path: Path, cases: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
    return path


def as_pipeline(fake: FakePipeline) -> Pipeline:
    return cast("Pipeline", fake)  # report_header reads only .id and .info.fingerprint


def evaluate(
    tmp_path: Path, predictions: Mapping[str, dict[str, Any] | None], cases: list[dict[str, Any]] = CASES
) -> dict[str, Any]:
    return evaluate_risk_cases(
        as_pipeline(FakePipeline(predictions)), write_cases(tmp_path / "cases.jsonl", cases)
    )


# --- scoring --------------------------------------------------------------------------------------
def test_perfect_predictions_score_one(tmp_path) -> None:
    report = evaluate(tmp_path, {c["id"]: perfect(c) for c in CASES})
    scores = report["scores"]
    assert (report["task"], report["documents"], report["pipeline"]) == ("risk", 2, "fake@0.0")
    assert report["fingerprint"] == "0123456789ab"
    assert {name: s["accuracy"] for name, s in scores["fields"].items()} == dict.fromkeys(FIELD_VALUES, 1.0)
    assert scores["fields"]["smoking"]["confusion"] == {"former -> former": 1, "never -> never": 1}
    assert scores["bmi"] == {"exact": 1.0, "cases": 1, "false": 0, "null_cases": 1}
    assert scores["observations"]["micro"] == {
        "precision": 1.0, "recall": 1.0, "f1": 1.0, "gold": 3, "predicted": 3,
    }  # fmt: skip
    assert set(scores["observations"]["kinds"]) == {"bp_systolic", "bp_diastolic", "bmi"}
    assert scores["rejected"] == {"overlapping": 0, "snippets": 1, "cases": 1}
    assert scores["smoking_detail"] == dict.fromkeys(
        ("packs_per_day", "years", "pack_years", "quit_year"), {"accuracy": 1.0, "cases": 1}
    )
    assert scores["alcohol_detail"] == {"drinks_per_week": {"accuracy": 1.0, "cases": 1}}
    assert scores["demographics"] == {
        "age": {"accuracy": 1.0, "cases": 1},
        "sex": {"accuracy": 1.0, "cases": 1},
    }
    assert report["mismatches"] == []


@pytest.mark.parametrize(
    ("case_id", "where", "key", "predicted", "field_name", "gold"),
    [
        ("abstainer", "profile", "hypertension", "absent", "hypertension", "present"),
        ("abstainer", "profile", "drug_use", "yes", "drug_use", "no"),
        ("smoker", "profile", "smoking", "current", "smoking", "former"),
        ("smoker", "profile", "obesity", None, "obesity", "present"),  # None reads as unknown
        ("smoker", "smoking_detail", "pack_years", 3.0, "smoking_detail.pack_years", 30.0),
        ("smoker", "smoking_detail", "quit_year", None, "smoking_detail.quit_year", 2019.0),
        ("abstainer", "alcohol_detail", "drinks_per_week", 7.0, "alcohol_detail.drinks_per_week", 0.0),
        ("smoker", "demographics", "age", 76, "demographics.age", 67),
        ("smoker", "demographics", "sex", "female", "demographics.sex", "male"),
    ],
)
def test_a_wrong_field_is_a_mismatch(tmp_path, case_id, where, key, predicted, field_name, gold) -> None:
    predictions = {c["id"]: perfect(c) for c in CASES}
    predictions[case_id][where][key] = predicted
    report = evaluate(tmp_path, predictions)
    shown = "unknown" if where == "profile" and predicted is None else predicted
    assert report["mismatches"] == [{"id": case_id, "field": field_name, "gold": gold, "predicted": shown}]
    scores = report["scores"]
    if where == "profile":
        assert scores["fields"][key]["accuracy"] == 0.5
        assert scores["fields"][key]["confusion"][f"{gold} -> {shown}"] == 1
    else:
        group = scores[where][key]
        assert group == {"accuracy": 0.0, "cases": 1}


def test_the_confusion_counts_every_pair(tmp_path) -> None:
    predictions = {c["id"]: perfect(c) for c in CASES}
    predictions["abstainer"]["profile"]["hypertension"] = "absent"
    hypertension = evaluate(tmp_path, predictions)["scores"]["fields"]["hypertension"]
    assert hypertension == {
        "accuracy": 0.5, "cases": 2, "confusion": {"present -> absent": 1, "unknown -> unknown": 1},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("gold_bmi", "predicted_bmi", "exact", "false", "mismatches"),
    [
        (34.2, 34.2, 1.0, 0, 0),
        (34.2, 34.2 + 1e-9, 1.0, 0, 0),  # within the tolerance
        (34.2, 34.21, 0.0, 0, 1),
        (34.2, None, 0.0, 0, 1),
        (34.2, "34.2", 0.0, 0, 1),  # a string is not a number
        (None, 30.0, None, 1, 1),
        (None, None, None, 0, 0),
    ],
)
def test_bmi_exact_and_false(tmp_path, gold_bmi, predicted_bmi, exact, false, mismatches) -> None:
    case = copy.deepcopy(SMOKER)
    case["profile"]["bmi"] = gold_bmi
    predictions = {"smoker": perfect(case)}
    predictions["smoker"]["profile"]["bmi"] = predicted_bmi
    report = evaluate(tmp_path, predictions, [case])
    bmi = report["scores"]["bmi"]
    assert (bmi["exact"], bmi["false"]) == (exact, false)
    assert (bmi["cases"], bmi["null_cases"]) == ((1, 0) if gold_bmi is not None else (0, 1))
    wrong = [m for m in report["mismatches"] if m["field"] == "bmi"]
    assert len(wrong) == mismatches
    assert all(m["gold"] == gold_bmi and m["predicted"] == predicted_bmi for m in wrong)


BP = ("bp_systolic", 152.0, "mm[Hg]")


@pytest.mark.parametrize(
    ("gold", "predicted", "matched", "missed", "spurious"),
    [
        ([BP], [BP], 1, [], []),
        ([BP], [("bp_systolic", 152.0000001, "mm[Hg]")], 1, [], []),
        ([BP], [("bp_systolic", 152.1, "mm[Hg]")], 0, [BP], [("bp_systolic", 152.1, "mm[Hg]")]),
        ([BP], [("bp_systolic", 152.0, "mmHg")], 0, [BP], [("bp_systolic", 152.0, "mmHg")]),
        ([BP], [("bp_diastolic", 152.0, "mm[Hg]")], 0, [BP], [("bp_diastolic", 152.0, "mm[Hg]")]),
        ([BP], [("bp_systolic", None, "mm[Hg]")], 0, [BP], [("bp_systolic", None, "mm[Hg]")]),
        ([BP, BP], [BP], 1, [BP], []),  # a multiset: stated twice, found once
        ([BP], [BP, BP], 1, [], [BP]),
        ([], [BP], 0, [], [BP]),
        ([BP], [], 0, [BP], []),
    ],
)
def test_observation_multiset_matching(gold, predicted, matched, missed, spurious) -> None:
    match = match_observations(gold, predicted)
    assert sum(c.tp_gold for c in match.counts.values()) == matched
    assert sum(c.tp_pred for c in match.counts.values()) == matched
    assert sum(c.gold for c in match.counts.values()) == len(gold)
    assert sum(c.pred for c in match.counts.values()) == len(predicted)
    assert (match.missed, match.spurious) == (missed, spurious)


def test_observation_scores_per_kind_and_mismatch(tmp_path) -> None:
    predictions = {c["id"]: perfect(c) for c in CASES}
    observations = predictions["smoker"]["observations"]
    observations[1]["value"] = 49.0  # diastolic misread
    observations.append({"kind": "heart_rate", "value": 30.0, "unit": "/min", "start": 25, "end": 27})
    report = evaluate(tmp_path, predictions)
    kinds = report["scores"]["observations"]["kinds"]
    assert kinds["bp_systolic"]["f1"] == 1.0
    assert (kinds["bp_diastolic"]["recall"], kinds["bp_diastolic"]["precision"]) == (0.0, 0.0)
    assert kinds["heart_rate"] == {"precision": 0.0, "recall": None, "f1": None, "gold": 0, "predicted": 1}
    micro = report["scores"]["observations"]["micro"]
    assert (micro["precision"], micro["recall"], micro["gold"], micro["predicted"]) == (0.5, 0.6667, 3, 4)
    assert report["mismatches"] == [
        {
            "id": "smoker", "field": "observations",
            "gold": [["bp_diastolic", 94.0, "mm[Hg]"]],
            "predicted": [["bp_diastolic", 49.0, "mm[Hg]"], ["heart_rate", 30.0, "/min"]],
        }
    ]  # fmt: skip


REJECTED_AT = SMOKER_TEXT.index("3/4")


@pytest.mark.parametrize(
    ("start", "end", "overlapping"),
    [
        (REJECTED_AT, REJECTED_AT + 3, 1),  # the snippet itself
        (REJECTED_AT + 2, REJECTED_AT + 5, 1),  # shares its last character
        (REJECTED_AT - 4, REJECTED_AT + 1, 1),
        (REJECTED_AT + 3, REJECTED_AT + 6, 0),  # starts where the snippet ends
        (REJECTED_AT - 3, REJECTED_AT, 0),  # ends where the snippet starts
        (None, None, 0),  # an observation without offsets cannot be placed
    ],
)
def test_rejected_snippets_overlapping_an_observation(tmp_path, start, end, overlapping) -> None:
    predictions = {c["id"]: perfect(c) for c in CASES}
    date = {"kind": "bp_systolic", "value": 3.0, "unit": "mm[Hg]", "text": "3/4"}
    if start is not None:
        date |= {"start": start, "end": end}
    predictions["smoker"]["observations"].append(date)
    report = evaluate(tmp_path, predictions)
    assert report["scores"]["rejected"]["overlapping"] == overlapping
    rejected = [m for m in report["mismatches"] if m["field"] == "rejected"]
    assert (
        rejected == [{"id": "smoker", "field": "rejected", "gold": "3/4", "predicted": "3/4"}] * overlapping
    )


@pytest.mark.parametrize("risk_factors", [None, {}, {"profile": {}, "observations": None}])
def test_no_risk_factors_predicts_unknown_everywhere(tmp_path, risk_factors) -> None:
    report = evaluate(tmp_path, dict.fromkeys(("smoker", "abstainer"), risk_factors))
    scores = report["scores"]
    fields = scores["fields"]
    assert fields["smoking"] == {
        "accuracy": 0.0, "cases": 2, "confusion": {"former -> unknown": 1, "never -> unknown": 1},
    }  # fmt: skip
    assert fields["hyperlipidemia"]["accuracy"] == 1.0  # unknown in both cases
    assert fields["hypertension"]["confusion"] == {"present -> unknown": 1, "unknown -> unknown": 1}
    assert scores["bmi"] == {"exact": 0.0, "cases": 1, "false": 0, "null_cases": 1}
    assert scores["observations"]["micro"]["predicted"] == 0
    assert scores["observations"]["micro"]["recall"] == 0.0
    assert scores["rejected"]["overlapping"] == 0
    assert scores["smoking_detail"]["quit_year"] == {"accuracy": 0.0, "cases": 1}
    assert scores["demographics"]["age"] == {"accuracy": 0.0, "cases": 1}
    wrong = {(m["id"], m["field"]) for m in report["mismatches"]}
    assert ("smoker", "smoking") in wrong
    assert ("abstainer", "drug_use") in wrong
    assert ("smoker", "hyperlipidemia") not in wrong


def test_null_gold_details_are_not_scored(tmp_path) -> None:
    case = copy.deepcopy(SMOKER)
    case["smoking_detail"] = {"packs_per_day": None, "years": None, "pack_years": 40.0, "quit_year": None}
    prediction = perfect(case)
    prediction["smoking_detail"] |= {"packs_per_day": 2.0, "years": 20.0}  # not stated: not scored
    report = evaluate(tmp_path, {"smoker": prediction}, [case])
    details = report["scores"]["smoking_detail"]
    assert details["pack_years"] == {"accuracy": 1.0, "cases": 1}
    assert details["packs_per_day"] == {"accuracy": None, "cases": 0}
    assert report["mismatches"] == []


def test_limit_scores_the_first_cases(tmp_path) -> None:
    pipe = FakePipeline({c["id"]: perfect(c) for c in CASES})
    report = evaluate_risk_cases(as_pipeline(pipe), write_cases(tmp_path / "cases.jsonl", CASES), limit=1)
    assert (report["documents"], pipe.seen) == (1, ["smoker"])


def test_format_table_rows(tmp_path) -> None:
    predictions = {c["id"]: perfect(c) for c in CASES}
    predictions["abstainer"]["profile"]["diabetes"] = "absent"
    rows = format_table(evaluate(tmp_path, predictions))
    by_name = {row[0]: row[1:] for row in rows}
    assert len(by_name) == len(rows) == len(FIELD_VALUES) + 2 + 3 + 1 + 4 + 1 + 2
    assert by_name["diabetes accuracy"] == [0.5, 2]
    assert by_name["smoking accuracy"] == [1.0, 2]
    assert by_name["bmi exact"] == [1.0, 1]
    assert by_name["bmi false"] == [0, 1]
    assert by_name["observations f1"] == [1.0, 2]
    assert by_name["rejected overlapping"] == [0, 1]
    assert by_name["smoking_detail.pack_years"] == [1.0, 1]
    assert by_name["demographics.sex"] == [1.0, 1]


# --- case files -----------------------------------------------------------------------------------
def _changed(**changes: Any) -> str:
    case = copy.deepcopy(SMOKER)
    for key, value in changes.items():
        if "." in key:
            outer, inner = key.split(".")
            case[outer][inner] = value
        elif value is ...:
            del case[key]
        else:
            case[key] = value
    return json.dumps(case)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "Expecting property name"),
        ("[1, 2]", "a case is a JSON object"),
        (_changed(profile=...), "a case needs"),
        (_changed(extra=1), "a case needs"),
        (_changed(id=""), "id and text are non-empty strings"),
        (_changed(**{"profile.smoking": "sometimes"}), "smoking is one of"),
        (_changed(**{"profile.hypertension": "yes"}), "hypertension is one of"),
        (_changed(drug_use="present"), "drug_use is one of"),
        (_changed(**{"profile.ckd": "present"}), "profile keys are"),
        (_changed(**{"profile.bmi": "34.2"}), "profile bmi is a number or null"),
        (_changed(observations=[{"kind": "bmi", "value": 34.2}]), "an observation has exactly the keys"),
        (_changed(observations=[{"kind": "bmi", "value": True, "unit": "kg/m2"}]), "its value a number"),
        (_changed(observations={}), "observations is a list"),
        (_changed(rejected=["5/6"]), "each rejected snippet occurs exactly once"),
        (_changed(rejected=["3"]), "each rejected snippet occurs exactly once"),  # several times
        (_changed(**{"smoking_detail.ppd": 1}), "smoking_detail keys are some of"),
        (_changed(**{"smoking_detail.years": "30"}), "smoking_detail years is a number or null"),
        (_changed(alcohol_detail={"drinks_per_week": "many"}), "alcohol_detail drinks_per_week is a number"),
        (_changed(**{"demographics.race": "white"}), "demographics keys are some of"),
        (_changed(**{"demographics.age": 67.5}), "demographics age is an integer"),
        (_changed(**{"demographics.sex": "M"}), "demographics sex is one of"),
        (_changed(form=""), "form is a non-empty string"),
    ],
)
def test_malformed_line_names_path_and_line(tmp_path, line, message) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ABSTAINER) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_risk_cases(path)
    assert err.value.code == "malformed_record"
    assert err.value.message.startswith(f"{path}:2: ")
    assert message in err.value.message
    assert SMOKER_TEXT not in err.value.message


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        ([SMOKER, ABSTAINER, SMOKER], "malformed_record", ":3: duplicate id 'smoker'"),
        ([], "malformed_record", "no cases"),
        (b"\xff\xfe{}", "unreadable_input", "bad.jsonl"),
        (None, "unreadable_input", "bad.jsonl"),  # no file
    ],
)
def test_case_file_errors_are_coded(tmp_path, content, code, message) -> None:
    path = tmp_path / "bad.jsonl"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        write_cases(path, content)
    with pytest.raises(InputError) as err:
        read_risk_cases(path)
    assert err.value.code == code
    assert message in err.value.message


def test_blank_lines_are_skipped(tmp_path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text("\n" + json.dumps(SMOKER) + "\n\n" + json.dumps(ABSTAINER) + "\n", encoding="utf-8")
    cases = read_risk_cases(path)
    assert [c.id for c in cases] == ["smoker", "abstainer"]
    smoker = cases[0]
    assert smoker.rejected == ((REJECTED_AT, REJECTED_AT + 3),)
    assert smoker.observations[0] == BP
    assert smoker.fields["drug_use"] == "unknown"
    assert smoker.bmi == 34.2
    assert cases[1].smoking_detail is None


def test_shipped_case_files_load_quietly_and_do_not_overlap(capsys) -> None:
    # the held-out file is only counted here: its contents are never printed
    loaded = {name: read_risk_cases(RISK_FIXTURES / f"{name}.jsonl") for name in ("dev", "heldout")}
    dev_count, heldout_count = len(loaded["dev"]), len(loaded["heldout"])
    assert dev_count > 100
    assert heldout_count > 100
    shared_ids = len({c.id for c in loaded["dev"]} & {c.id for c in loaded["heldout"]})
    shared_texts = len({c.text for c in loaded["dev"]} & {c.text for c in loaded["heldout"]})
    assert shared_ids == 0
    assert shared_texts == 0
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")
