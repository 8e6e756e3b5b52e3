"""The ACC/AHA 2013 Pooled Cohort Equations: published examples, pinned values, missing and bad inputs."""

from __future__ import annotations

import math
from dataclasses import fields, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlp.ascvd import DISCLAIMER, AscvdInputs, Race, Sex, ten_year_ascvd_risk
from nlp.errors import InputError

# Goff et al. 2013, Table A worked example: age 55, TC 213, HDL 50, untreated SBP 120, no smoking or diabetes.
WORKED_EXAMPLE = AscvdInputs(
    age=55,
    sex="female",
    race="white",
    total_cholesterol=213,
    hdl=50,
    systolic_bp=120,
    bp_treated=False,
    diabetes=False,
    smoker=False,
)
FIELD_NAMES = tuple(f.name for f in fields(AscvdInputs))
BLOCKING_FIELDS = tuple(name for name in FIELD_NAMES if name != "race")


@pytest.mark.parametrize(
    ("sex", "race", "published_percent", "equation"),
    [
        ("female", "white", 2.1, "PCE 2013 white female"),
        ("female", "african_american", 3.0, "PCE 2013 African-American female"),
        ("male", "white", 5.3, "PCE 2013 white male"),
        ("male", "african_american", 6.1, "PCE 2013 African-American male"),
    ],
)
def test_guideline_worked_example(sex: Sex, race: Race, published_percent: float, equation: str) -> None:
    # The guideline computed its example from the individual sums rounded to 2 decimals; at full
    # precision the white-male risk is 5.38% (5.4 below), hence the 0.1-point tolerance.
    estimate = ten_year_ascvd_risk(replace(WORKED_EXAMPLE, sex=sex, race=race))
    assert estimate.percent is not None
    assert abs(estimate.percent - published_percent) <= 0.1 + 1e-9
    assert estimate.equation == equation
    assert estimate.missing == ()
    assert estimate.out_of_range == ()
    assert estimate.notes == ()


# Each expected risk and percent was computed twice, independently, with the Table A coefficients: by
# this module and by a separate numpy dot product over coefficient vectors typed afresh (the two agree
# to 6 places). A third implementation with the ACC calculator's longer coefficients (e.g. 29.2907 for
# 29.291) agrees within 0.2 points: 46.2 for row 1, 31.0 for row 3, 20.1 for row 5, 70.5 for row 10,
# equal elsewhere. Risk is pinned to 4 places so that a wrong last digit in most coefficients fails.
@pytest.mark.parametrize(
    ("age", "sex", "race", "tc", "hdl", "sbp", "treated", "diabetes", "smoker", "risk", "percent"),
    [
        (60, "male", "white", 240, 40, 150, True, True, True, 0.4626, 46.3),
        (60, "male", "african_american", 240, 40, 150, True, True, True, 0.5173, 51.7),
        (60, "female", "white", 240, 40, 150, True, True, True, 0.3093, 30.9),
        (58, "female", "african_american", 195, 62, 128, True, False, True, 0.1045, 10.4),
        (62, "female", "african_american", 230, 48, 138, False, True, False, 0.2028, 20.3),
        (50, "female", "white", 180, 60, 130, False, False, True, 0.0284, 2.8),
        (66, "female", "white", 205, 58, 136, False, True, False, 0.1292, 12.9),
        (52, "male", "white", 210, 45, 132, False, True, True, 0.1971, 19.7),
        (48, "male", "african_american", 260, 38, 135, False, False, True, 0.1049, 10.5),
        (70, "male", "african_american", 220, 35, 160, True, True, True, 0.7059, 70.6),
        (72, "female", "white", 190, 55, 145, True, False, False, 0.1929, 19.3),
        (55, "female", "white", 213, 50, 120, False, False, False, 0.0205, 2.1),
        (55, "female", "african_american", 213, 50, 120, False, False, False, 0.0303, 3.0),
        (55, "male", "white", 213, 50, 120, False, False, False, 0.0538, 5.4),
        (55, "male", "african_american", 213, 50, 120, False, False, False, 0.0607, 6.1),
        # the edges of every validated range are inside it
        (79, "male", "white", 320, 20, 200, True, True, True, 0.9272, 92.7),
        (40, "female", "white", 130, 100, 90, False, False, False, 0.0004, 0.0),
    ],
)
def test_pinned_estimates(
    age: float,
    sex: Sex,
    race: Race,
    tc: float,
    hdl: float,
    sbp: float,
    treated: bool,
    diabetes: bool,
    smoker: bool,
    risk: float,
    percent: float,
) -> None:
    inputs = AscvdInputs(age, sex, race, tc, hdl, sbp, treated, diabetes, smoker)
    estimate = ten_year_ascvd_risk(inputs)
    assert (estimate.risk, estimate.percent) == (risk, percent)


@pytest.mark.parametrize(
    ("race", "missing", "note_start"),
    [
        (None, ("race",), "race not stated: the white equations were used"),
        ("other", (), "race other than white or African American: the white equations were used"),
    ],
)
def test_unstated_or_other_race_uses_white_equations(
    race: Race | None, missing: tuple[str, ...], note_start: str
) -> None:
    white = ten_year_ascvd_risk(WORKED_EXAMPLE)
    estimate = ten_year_ascvd_risk(replace(WORKED_EXAMPLE, race=race))
    assert estimate.risk == white.risk
    assert estimate.percent == 2.1
    assert estimate.equation == "PCE 2013 white female"
    assert estimate.missing == missing
    assert len(estimate.notes) == 1
    assert estimate.notes[0].startswith(note_start)


@pytest.mark.parametrize("name", BLOCKING_FIELDS)
def test_a_missing_input_blocks_the_estimate(name: str) -> None:
    estimate = ten_year_ascvd_risk(replace(WORKED_EXAMPLE, **{name: None}))
    assert (estimate.risk, estimate.percent, estimate.equation) == (None, None, None)
    assert estimate.missing == (name,)
    assert estimate.out_of_range == ()
    assert estimate.notes == ()


@pytest.mark.parametrize(
    ("known", "missing"),
    [
        ({}, FIELD_NAMES),
        ({"age": 55}, FIELD_NAMES[1:]),
        (
            {"sex": "male", "smoker": True},
            ("age", "race", "total_cholesterol", "hdl", "systolic_bp", "bp_treated", "diabetes"),
        ),
        (
            {"hdl": 50, "bp_treated": False},
            ("age", "sex", "race", "total_cholesterol", "systolic_bp", "diabetes", "smoker"),
        ),
    ],
)
def test_missing_lists_unknown_inputs_in_field_order(known: dict[str, Any], missing: tuple[str, ...]) -> None:
    estimate = ten_year_ascvd_risk(AscvdInputs(**known))
    assert estimate.missing == missing
    assert estimate.risk is None


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("age", 39, "age 39 years is outside the validated range 40-79 years"),
        ("age", 80, "age 80 years is outside the validated range 40-79 years"),
        (
            "total_cholesterol",
            129,
            "total_cholesterol 129 mg/dL is outside the validated range 130-320 mg/dL",
        ),
        (
            "total_cholesterol",
            320.5,
            "total_cholesterol 320.5 mg/dL is outside the validated range 130-320 mg/dL",
        ),
        ("hdl", 19, "hdl 19 mg/dL is outside the validated range 20-100 mg/dL"),
        ("hdl", 101, "hdl 101 mg/dL is outside the validated range 20-100 mg/dL"),
        ("systolic_bp", 89, "systolic_bp 89 mm Hg is outside the validated range 90-200 mm Hg"),
        ("systolic_bp", 201, "systolic_bp 201 mm Hg is outside the validated range 90-200 mm Hg"),
    ],
)
def test_out_of_range_input_refuses_an_estimate(name: str, value: Any, message: str) -> None:
    estimate = ten_year_ascvd_risk(replace(WORKED_EXAMPLE, **{name: value}))
    assert (estimate.risk, estimate.percent, estimate.equation) == (None, None, None)
    assert estimate.out_of_range == (message,)
    assert estimate.missing == ()


def test_out_of_range_and_missing_are_both_reported() -> None:
    estimate = ten_year_ascvd_risk(replace(WORKED_EXAMPLE, age=35, hdl=None, smoker=None, race=None))
    assert estimate.risk is None
    assert estimate.missing == ("race", "hdl", "smoker")
    assert estimate.out_of_range == ("age 35 years is outside the validated range 40-79 years",)
    assert estimate.notes == ()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("sex", "M"),
        ("sex", "Male"),
        ("sex", "unknown"),
        ("race", "black"),
        ("race", "asian"),
        ("age", 0),
        ("age", -55),
        ("age", math.nan),
        ("age", math.inf),
        ("age", "55"),
        ("age", True),
        ("total_cholesterol", -1.0),
        ("hdl", "50 mg/dL"),
        ("systolic_bp", 0.0),
        ("bp_treated", "yes"),
        ("diabetes", 1),
        ("smoker", "current"),
    ],
)
def test_invalid_input_raises_a_coded_input_error(name: str, value: Any) -> None:
    with pytest.raises(InputError) as caught:
        replace(WORKED_EXAMPLE, **{name: value})
    assert caught.value.code == "invalid_ascvd_input"
    assert name in caught.value.message


@pytest.mark.parametrize("inputs", [WORKED_EXAMPLE, AscvdInputs(), replace(WORKED_EXAMPLE, age=90)])
def test_every_estimate_carries_the_disclaimer(inputs: AscvdInputs) -> None:
    assert ten_year_ascvd_risk(inputs).disclaimer == DISCLAIMER
    assert DISCLAIMER == (
        "Estimate for clinical decision support, not a diagnosis (ACC/AHA 2013 Pooled Cohort Equations)."
    )


@settings(max_examples=200, deadline=None)
@given(
    age=st.floats(40, 79),
    sex=st.sampled_from(["male", "female"]),
    race=st.sampled_from(["white", "african_american", "other", None]),
    tc=st.floats(130, 320),
    hdl=st.floats(20, 100),
    sbp=st.floats(90, 200),
    treated=st.booleans(),
    smoker=st.booleans(),
)
def test_in_range_inputs_give_a_risk_between_0_and_1_that_rises_with_diabetes(
    age: float,
    sex: Sex,
    race: Race | None,
    tc: float,
    hdl: float,
    sbp: float,
    treated: bool,
    smoker: bool,
) -> None:
    inputs = AscvdInputs(age, sex, race, tc, hdl, sbp, treated, False, smoker)
    without = ten_year_ascvd_risk(inputs)
    with_diabetes = ten_year_ascvd_risk(replace(inputs, diabetes=True))
    assert without.risk is not None and with_diabetes.risk is not None
    assert 0.0 <= without.risk <= with_diabetes.risk <= 1.0
