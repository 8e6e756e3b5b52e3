"""10-year risk of a first hard ASCVD event by the ACC/AHA 2013 Pooled Cohort Equations.

Source: Goff DC Jr, Lloyd-Jones DM, Bennett G, et al. *2013 ACC/AHA Guideline on the Assessment of
Cardiovascular Risk.* Circulation. 2014;129(25 Suppl 2):S49-S73, Table A ("Equation Parameters of the
Pooled Cohort Equations for Estimation of 10-Year Risk of Hard ASCVD"), whose worked example (age 55,
total cholesterol 213 mg/dL, HDL 50 mg/dL, untreated SBP 120 mm Hg, non-smoker, no diabetes) gives 2.1%
for white women, 3.0% for African-American women, 5.3% for white men and 6.1% for African-American men.
The guideline worked from rounded intermediate sums: at full precision the white-male risk is 5.38%,
reported here as 5.4%.

The estimate is ``1 - S10 ** exp(sum - mean)``, where ``sum`` is the coefficient-weighted sum of the
patient's terms and ``S10`` and ``mean`` are the baseline survival and mean sum of the equation's
derivation cohort. Other races use the white equations, as the guideline advises. Like the ACC
calculator, no risk is given outside the validated ranges: age 40-79 years, total cholesterol
130-320 mg/dL, HDL 20-100 mg/dL and systolic blood pressure 90-200 mm Hg.
"""

import math
import numbers
from dataclasses import dataclass, field, fields
from typing import Literal

from nlp.errors import InputError

DISCLAIMER = "Estimate for clinical decision support, not a diagnosis (ACC/AHA 2013 Pooled Cohort Equations)."
INVALID_INPUT_CODE = "invalid_ascvd_input"

Sex = Literal["male", "female"]
Race = Literal["white", "african_american", "other"]
SEXES: tuple[str, ...] = ("male", "female")
RACES: tuple[str, ...] = ("white", "african_american", "other")

# Inclusive validated ranges of the ACC/AHA ASCVD Risk Estimator: (low, high, unit).
VALIDATED_RANGES: dict[str, tuple[float, float, str]] = {
    "age": (40, 79, "years"),
    "total_cholesterol": (130, 320, "mg/dL"),
    "hdl": (20, 100, "mg/dL"),
    "systolic_bp": (90, 200, "mm Hg"),
}
_MEASUREMENTS = tuple(VALIDATED_RANGES)
_FLAGS = ("bp_treated", "diabetes", "smoker")


@dataclass(frozen=True)
class _Equation:
    """One race-and-sex equation of Table A; a term the equation lacks has coefficient 0."""

    name: str
    ln_age: float
    ln_age_squared: float
    ln_total_cholesterol: float
    ln_age_x_ln_total_cholesterol: float
    ln_hdl: float
    ln_age_x_ln_hdl: float
    ln_treated_sbp: float
    ln_age_x_ln_treated_sbp: float
    ln_untreated_sbp: float
    ln_age_x_ln_untreated_sbp: float
    current_smoker: float
    ln_age_x_current_smoker: float
    diabetes: float
    baseline_survival: float
    mean_sum: float


# Goff et al. 2013, Table A: coefficients, baseline survival S10 and mean of the sum (coefficient x
# value), keyed by (race group, sex). "N/A" cells of the table are 0 here.
_EQUATIONS: dict[tuple[str, str], _Equation] = {
    ("white", "female"): _Equation(
        name="PCE 2013 white female",
        ln_age=-29.799,
        ln_age_squared=4.884,
        ln_total_cholesterol=13.540,
        ln_age_x_ln_total_cholesterol=-3.114,
        ln_hdl=-13.578,
        ln_age_x_ln_hdl=3.149,
        ln_treated_sbp=2.019,
        ln_age_x_ln_treated_sbp=0.0,
        ln_untreated_sbp=1.957,
        ln_age_x_ln_untreated_sbp=0.0,
        current_smoker=7.574,
        ln_age_x_current_smoker=-1.665,
        diabetes=0.661,
        baseline_survival=0.9665,
        mean_sum=-29.18,
    ),
    ("african_american", "female"): _Equation(
        name="PCE 2013 African-American female",
        ln_age=17.114,
        ln_age_squared=0.0,
        ln_total_cholesterol=0.940,
        ln_age_x_ln_total_cholesterol=0.0,
        ln_hdl=-18.920,
        ln_age_x_ln_hdl=4.475,
        ln_treated_sbp=29.291,
        ln_age_x_ln_treated_sbp=-6.432,
        ln_untreated_sbp=27.820,
        ln_age_x_ln_untreated_sbp=-6.087,
        current_smoker=0.691,
        ln_age_x_current_smoker=0.0,
        diabetes=0.874,
        baseline_survival=0.9533,
        mean_sum=86.61,
    ),
    ("white", "male"): _Equation(
        name="PCE 2013 white male",
        ln_age=12.344,
        ln_age_squared=0.0,
        ln_total_cholesterol=11.853,
        ln_age_x_ln_total_cholesterol=-2.664,
        ln_hdl=-7.990,
        ln_age_x_ln_hdl=1.769,
        ln_treated_sbp=1.797,
        ln_age_x_ln_treated_sbp=0.0,
        ln_untreated_sbp=1.764,
        ln_age_x_ln_untreated_sbp=0.0,
        current_smoker=7.837,
        ln_age_x_current_smoker=-1.795,
        diabetes=0.658,
        baseline_survival=0.9144,
        mean_sum=61.18,
    ),
    ("african_american", "male"): _Equation(
        name="PCE 2013 African-American male",
        ln_age=2.469,
        ln_age_squared=0.0,
        ln_total_cholesterol=0.302,
        ln_age_x_ln_total_cholesterol=0.0,
        ln_hdl=-0.307,
        ln_age_x_ln_hdl=0.0,
        ln_treated_sbp=1.916,
        ln_age_x_ln_treated_sbp=0.0,
        ln_untreated_sbp=1.809,
        ln_age_x_ln_untreated_sbp=0.0,
        current_smoker=0.549,
        ln_age_x_current_smoker=0.0,
        diabetes=0.645,
        baseline_survival=0.8954,
        mean_sum=19.54,
    ),
}

_RACE_NOTES: dict[str | None, str] = {
    None: "race not stated: the white equations were used",
    "other": (
        "race other than white or African American: the white equations were used, as the guideline "
        "advises; they may over- or underestimate risk"
    ),
}


@dataclass(frozen=True)
class AscvdInputs:
    """What the Pooled Cohort Equations need; ``None`` means not known from the note.

    Attributes:
        age: Age in years.
        sex: ``"male"`` or ``"female"``.
        race: ``"white"``, ``"african_american"`` or ``"other"`` (other races use the white
            equations); ``None`` when the note does not state it.
        total_cholesterol: Total cholesterol in mg/dL.
        hdl: HDL cholesterol in mg/dL.
        systolic_bp: Systolic blood pressure in mm Hg.
        bp_treated: Whether the patient takes blood-pressure-lowering medication.
        diabetes: Whether the patient has diabetes.
        smoker: Whether the patient currently smokes.

    Raises:
        InputError: (code ``invalid_ascvd_input``) for a sex or race outside the allowed values, a
            measurement that is not a finite positive number, or a flag that is not a bool.
    """

    age: float | None = None
    sex: Sex | None = None
    race: Race | None = None
    total_cholesterol: float | None = None
    hdl: float | None = None
    systolic_bp: float | None = None
    bp_treated: bool | None = None
    diabetes: bool | None = None
    smoker: bool | None = None

    def __post_init__(self) -> None:
        if self.sex is not None and self.sex not in SEXES:
            raise InputError(f"sex must be one of {SEXES}, got {self.sex!r}", code=INVALID_INPUT_CODE)
        if self.race is not None and self.race not in RACES:
            raise InputError(f"race must be one of {RACES}, got {self.race!r}", code=INVALID_INPUT_CODE)
        for name in _MEASUREMENTS:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise InputError(f"{name} must be a number, got {value!r}", code=INVALID_INPUT_CODE)
            if not math.isfinite(value) or value <= 0:
                raise InputError(
                    f"{name} must be a finite positive number, got {value!r}", code=INVALID_INPUT_CODE
                )
        for name in _FLAGS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise InputError(f"{name} must be a bool, got {value!r}", code=INVALID_INPUT_CODE)


@dataclass(frozen=True)
class AscvdEstimate:
    """A 10-year ASCVD risk estimate, or why there is none.

    Attributes:
        risk: 10-year risk as a fraction in 0..1, rounded to 4 places; ``None`` when an input other
            than race is missing or an input is outside the validated ranges.
        percent: The same risk in percent, rounded to 1 decimal, or ``None``.
        missing: Names of the inputs that are ``None``, in :class:`AscvdInputs` field order. A
            missing race is listed but does not block the estimate (the white equations are used).
        out_of_range: One message per known input outside the equations' validated range.
        notes: Caveats of the estimate, such as which equation stood in for an unstated race.
        equation: The equation that produced ``risk`` (e.g. ``"PCE 2013 white female"``), or ``None``.
        disclaimer: Always :data:`DISCLAIMER`.
    """

    risk: float | None
    percent: float | None
    missing: tuple[str, ...]
    out_of_range: tuple[str, ...]
    notes: tuple[str, ...]
    equation: str | None
    disclaimer: str = field(default=DISCLAIMER, init=False)


def ten_year_ascvd_risk(inputs: AscvdInputs) -> AscvdEstimate:
    """Estimate the 10-year risk of a first hard ASCVD event with the Pooled Cohort Equations.

    Args:
        inputs: The patient's risk factors; unknown ones are ``None``.

    Returns:
        The estimate, with the missing and out-of-range inputs that prevented one, if any, and the
        notes that qualify it.
    """
    missing = tuple(f.name for f in fields(inputs) if getattr(inputs, f.name) is None)
    out_of_range = tuple(
        f"{name} {value:g} {unit} is outside the validated range {low:g}-{high:g} {unit}"
        for name, (low, high, unit) in VALIDATED_RANGES.items()
        if (value := getattr(inputs, name)) is not None and not low <= value <= high
    )
    age, sex = inputs.age, inputs.sex
    total_cholesterol, hdl, systolic_bp = inputs.total_cholesterol, inputs.hdl, inputs.systolic_bp
    bp_treated, diabetes, smoker = inputs.bp_treated, inputs.diabetes, inputs.smoker
    if (
        out_of_range
        or age is None
        or sex is None
        or total_cholesterol is None
        or hdl is None
        or systolic_bp is None
        or bp_treated is None
        or diabetes is None
        or smoker is None
    ):
        return AscvdEstimate(
            risk=None, percent=None, missing=missing, out_of_range=out_of_range, notes=(), equation=None
        )
    race_group = "african_american" if inputs.race == "african_american" else "white"
    equation = _EQUATIONS[(race_group, sex)]
    raw_risk = _risk(
        equation,
        age=age,
        total_cholesterol=total_cholesterol,
        hdl=hdl,
        systolic_bp=systolic_bp,
        bp_treated=bp_treated,
        diabetes=diabetes,
        smoker=smoker,
    )
    notes = (_RACE_NOTES[inputs.race],) if inputs.race in _RACE_NOTES else ()
    return AscvdEstimate(
        risk=round(raw_risk, 4),
        percent=round(raw_risk * 100, 1),
        missing=missing,
        out_of_range=(),
        notes=notes,
        equation=equation.name,
    )


def _risk(
    equation: _Equation,
    *,
    age: float,
    total_cholesterol: float,
    hdl: float,
    systolic_bp: float,
    bp_treated: bool,
    diabetes: bool,
    smoker: bool,
) -> float:
    """``1 - S10 ** exp(sum - mean)`` for complete, in-range inputs."""
    ln_age = math.log(age)
    ln_tc = math.log(total_cholesterol)
    ln_hdl = math.log(hdl)
    ln_sbp = math.log(systolic_bp)
    smoker_term = 1.0 if smoker else 0.0
    if bp_treated:
        sbp_terms = equation.ln_treated_sbp * ln_sbp + equation.ln_age_x_ln_treated_sbp * ln_age * ln_sbp
    else:
        sbp_terms = equation.ln_untreated_sbp * ln_sbp + equation.ln_age_x_ln_untreated_sbp * ln_age * ln_sbp
    individual_sum = (
        equation.ln_age * ln_age
        + equation.ln_age_squared * ln_age**2
        + equation.ln_total_cholesterol * ln_tc
        + equation.ln_age_x_ln_total_cholesterol * ln_age * ln_tc
        + equation.ln_hdl * ln_hdl
        + equation.ln_age_x_ln_hdl * ln_age * ln_hdl
        + sbp_terms
        + equation.current_smoker * smoker_term
        + equation.ln_age_x_current_smoker * ln_age * smoker_term
        + equation.diabetes * (1.0 if diabetes else 0.0)
    )
    return 1.0 - equation.baseline_survival ** math.exp(individual_sum - equation.mean_sum)
