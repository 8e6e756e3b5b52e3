"""The patient's cardiovascular risk-factor profile, with a 10-year ASCVD estimate when the note allows.

Read once per note after assertion, from four sources:

- social history (:mod:`nlp.components.social_history`): smoking with pack-years and quit year,
  alcohol with drinks per week, recreational drugs;
- vitals and labs (:mod:`nlp.components.measurements`): blood pressure, BMI, lipids, HbA1c …;
- the conditions among the mentions (``risk_factors.json``): a PROBLEM about the patient is
  hypertension, diabetes, hyperlipidaemia, obesity, CKD, CAD, PAD or stroke by its ICD-10-CM
  code or its words, never when a qualifier says otherwise (portal hypertension, gestational
  diabetes, prediabetes). Present if any mention is present (or historical: a chronic disease
  in the past history is still there), absent if the note only denies it, else unknown;
  obesity is also present at a BMI of 30 or more and absent below it;
- the family history: premature coronary disease in a first-degree relative (a man before 55, a
  woman before 65, or "premature"/"early" said), absent when the note denies it or every
  first-degree relative's coronary disease came later.

Age, sex and race are read from the text ("67M", "58 yo woman") for the ACC/AHA 2013 Pooled
Cohort Equations (:mod:`nlp.ascvd`); the estimate, or the list of missing inputs, goes with the
profile. Everything is a plain dict in ``doc._.risk_factors`` (see :func:`risk_profile`) with the
evidence (offsets, text, rule) of every value.
"""

import re
from dataclasses import asdict
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc, Span

from nlp import resources
from nlp.ascvd import DISCLAIMER, AscvdInputs, ten_year_ascvd_risk
from nlp.components.lexicon import SPAN_GROUP
from nlp.components.measurements import Measurement, find_measurements
from nlp.components.social_history import Finding, read_social_history

PROFILE_FIELDS = (
    "smoking",
    "alcohol_use",
    "drug_use",
    "hypertension",
    "diabetes",
    "hyperlipidemia",
    "obesity",
    "ckd",
    "cad",
    "pad",
    "stroke",
    "family_history_premature_cad",
)
_QUALIFIER_CHARS = 30  # how far before a mention a qualifier ("portal", "gestational") is read
_MMOL_TO_MG_DL = 38.67  # cholesterol (total, HDL)
_OBESE_BMI = 30.0
_MIN_AGE, _MAX_AGE = 1, 120
# a risk-factor template answers after the name: "DM: N", "HTN - yes", "FHx premature CAD: Y"
_TEMPLATE_ANSWER = re.compile(
    r"[ \t]*[:=-][ \t]*(?:(?P<yes>y|yes|\(\+\)|\+|positive|present)"
    r"|(?P<no>n|no|none|\(-\)|negative|denies|absent))(?![\w])",
    re.IGNORECASE,
)
_FAMILY_WORDS = re.compile(r"(?<![\w])(?:fhx|fh|family history|family hx|fam hx)(?![\w])", re.IGNORECASE)


def _words(phrases: list[str]) -> re.Pattern[str]:
    alternation = "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alternation})(?![\w-])", re.IGNORECASE)


class RiskFactorRules:
    """``risk_factors.json`` compiled."""

    def __init__(self) -> None:
        spec = resources.load("risk_factors")
        self.conditions = {
            name: (tuple(c.icd10_prefixes), _words(c.words), _words(c.not_words) if c.not_words else None)
            for name, c in spec.conditions.items()
        }
        self.procedures = {
            name: _words(c.procedure_words) for name, c in spec.conditions.items() if c.procedure_words
        }
        family = spec.family_cad
        self.family_prefixes = tuple(family.icd10_prefixes)
        self.family_words = _words(family.words)
        self.premature_words = _words(family.premature_words)
        self.relative_sex = {code: "male" for code in family.male} | {
            code: "female" for code in family.female
        }
        self.premature_age = family.premature_age
        demo = spec.demographics
        self.age_sex = re.compile(demo.age_sex, re.IGNORECASE)
        self.age = re.compile(demo.age, re.IGNORECASE)
        self.sex_words = {"male": _words(demo.male), "female": _words(demo.female)}
        self.pronouns = {sex: _words(words) for sex, words in demo.pronouns.items()}
        self.race = {race: _words(words) for race, words in spec.race.items()}
        self.antihypertensives = _words(spec.antihypertensives)


def _evidence(start: int, end: int, text: str, rule: str) -> dict[str, Any]:
    return {"start": start, "end": end, "text": text, "rule": rule}


def _span_evidence(span: Span, rule: str) -> dict[str, Any]:
    return _evidence(span.start_char, span.end_char, span.text, rule)


def _finding(finding: Finding) -> tuple[str, list[dict[str, Any]]]:
    return finding.status, [_evidence(e.start, e.end, e.text, e.rule) for e in finding.evidence]


class RiskFactors:
    """Sets ``doc._.risk_factors``."""

    def __init__(self, rules: RiskFactorRules) -> None:
        self.rules = rules

    def __call__(self, doc: Doc) -> Doc:
        doc._.risk_factors = risk_profile(doc, self.rules)
        return doc


def risk_profile(doc: Doc, rules: RiskFactorRules) -> dict[str, Any]:
    """The profile of an annotated Doc.

    Returns:
        ``{"profile": {field: value, ..., "bmi": float | None}, "evidence": {field: [evidence]},
        "smoking_detail", "alcohol_detail", "drug_substances", "observations": [measurement dicts],
        "demographics": {"age", "sex", "race"}, "ascvd": {...}}``; ``profile`` has every
        :data:`PROFILE_FIELDS` entry (``unknown`` when the note says nothing).
    """
    text = doc.text
    mentions = list(doc.spans[SPAN_GROUP]) if SPAN_GROUP in doc.spans else []
    profile: dict[str, Any] = {}
    evidence: dict[str, list[dict[str, Any]]] = {}

    social = read_social_history(text)
    for field_name, finding in (
        ("smoking", social.smoking),
        ("alcohol_use", social.alcohol),
        ("drug_use", social.drugs),
    ):
        profile[field_name], evidence[field_name] = _finding(finding)

    for name in rules.conditions:
        profile[name], evidence[name] = _condition(rules, name, mentions, text)

    observations = find_measurements(text)
    bmi = next((m for m in observations if m.kind == "bmi"), None)
    profile["bmi"] = bmi.value if bmi is not None else None
    if bmi is not None and profile["obesity"] != "present":
        profile["obesity"] = "present" if bmi.value >= _OBESE_BMI else "absent"
        evidence["obesity"] = [_evidence(bmi.start, bmi.end, bmi.text, "bmi")]

    profile["family_history_premature_cad"], evidence["family_history_premature_cad"] = _family_cad(
        rules, mentions, text
    )
    demographics = _demographics(rules, text)
    return {
        "profile": {f: profile[f] for f in (*PROFILE_FIELDS, "bmi")},
        "evidence": {f: evidence.get(f, []) for f in PROFILE_FIELDS},
        "smoking_detail": dict(social.smoking.details),
        "alcohol_detail": dict(social.alcohol.details),
        "drug_substances": list(social.drugs.details.get("substances", [])),
        "observations": [asdict(m) for m in observations],
        "demographics": demographics,
        "ascvd": _ascvd(rules, profile, observations, demographics, mentions),
    }


def _condition(
    rules: RiskFactorRules, name: str, mentions: list[Span], text: str
) -> tuple[str, list[dict[str, Any]]]:
    prefixes, words, not_words = rules.conditions[name]
    procedures = rules.procedures.get(name)
    present: list[dict[str, Any]] = []
    absent: list[dict[str, Any]] = []
    for span in mentions:
        if span._.subject != "patient":
            continue
        if span.label_ == "PROCEDURE":
            if procedures is None or not procedures.search(span.text):
                continue
        elif span.label_ != "PROBLEM":
            continue
        else:
            coded = any(
                system == "icd10cm" and code.startswith(prefixes) for system, code, *_ in span._.codes
            )
            if not coded and not words.search(span.text):
                continue
        before = text[max(0, span.start_char - _QUALIFIER_CHARS) : span.start_char]
        if not_words is not None and (not_words.search(span.text) or _last_clause_has(before, not_words)):
            continue
        if _FAMILY_WORDS.search(span.text):
            continue  # "FHx premature CAD: Y" is about the family
        assertion = _template_answer(text, span) or span._.assertion
        if assertion in ("present", "historical"):
            present.append(_span_evidence(span, f"condition:{name}"))
        elif assertion == "absent":
            absent.append(_span_evidence(span, f"condition:{name}"))
    if present:
        return "present", present
    if absent:
        return "absent", absent
    return "unknown", []


def _template_answer(text: str, span: Span) -> str | None:
    """``present`` or ``absent`` when a template answers right after the mention ("DM: N")."""
    line_end = text.find("\n", span.end_char)
    m = _TEMPLATE_ANSWER.match(text, span.end_char, line_end if line_end != -1 else len(text))
    if m is None:
        return None
    return "present" if m["yes"] else "absent"


def _last_clause_has(before: str, pattern: re.Pattern[str]) -> bool:
    """A qualifier right before a mention, in the same clause ("portal | hypertension")."""
    clause = re.split(r"[.;,\n:]", before)[-1]
    return pattern.search(clause) is not None


def _family_cad(rules: RiskFactorRules, mentions: list[Span], text: str) -> tuple[str, list[dict[str, Any]]]:
    present: list[dict[str, Any]] = []
    absent: list[dict[str, Any]] = []
    for span in mentions:
        if _FAMILY_WORDS.search(span.text) and rules.premature_words.search(span.text):
            answer = _template_answer(text, span)  # "FHx premature CAD: Y"
            if answer is not None and rules.family_words.search(span.text):
                (present if answer == "present" else absent).append(
                    _span_evidence(span, "family_cad:template")
                )
            continue
        if span._.subject != "family":
            continue
        coded = any(
            system == "icd10cm" and code.startswith(rules.family_prefixes)
            for system, code, *_ in span._.codes
        )
        if not coded and not rules.family_words.search(span.text):
            continue
        if span._.assertion == "absent":
            absent.append(_span_evidence(span, "family_cad:denied"))
            continue
        sex = rules.relative_sex.get(span._.relationship or "")
        if sex is None:
            continue  # not a first-degree relative of known sex
        age = span._.onset_age
        if age is not None:
            premature = age < rules.premature_age[sex]
            (present if premature else absent).append(_span_evidence(span, f"family_cad:{sex}_age_{age}"))
        elif rules.premature_words.search(span.sent.text):
            present.append(_span_evidence(span, "family_cad:premature_said"))
    if present:
        return "present", present
    if absent:
        return "absent", absent
    return "unknown", []


def _demographics(rules: RiskFactorRules, text: str) -> dict[str, Any]:
    age = sex = race = None
    found: list[dict[str, Any]] = []
    if (m := rules.age_sex.search(text)) and _MIN_AGE <= int(m["age"]) <= _MAX_AGE:
        age, sex = int(m["age"]), _sex_of(rules, m["sex"])
        found.append(_evidence(m.start(), m.end(), m.group(), "demographics:age_sex"))
    if age is None and (m := rules.age.search(text)) and _MIN_AGE <= int(m["age"] or m["age2"]) <= _MAX_AGE:
        age = int(m["age"] or m["age2"])
        found.append(_evidence(m.start(), m.end(), m.group(), "demographics:age"))
    if sex is None:
        sex = _sex_from_words(rules, text, found)
    for name, pattern in rules.race.items():
        if m := pattern.search(text):
            race = name
            found.append(_evidence(m.start(), m.end(), m.group(), f"demographics:race_{name}"))
            break
    return {"age": age, "sex": sex, "race": race, "evidence": found}


def _sex_of(rules: RiskFactorRules, word: str) -> str | None:
    return next((sex for sex, pattern in rules.sex_words.items() if pattern.fullmatch(word)), None)


def _sex_from_words(rules: RiskFactorRules, text: str, found: list[dict[str, Any]]) -> str | None:
    """The first sex word that is not a lone letter, else the pronouns, if they agree."""
    first: tuple[int, str, re.Match[str]] | None = None
    for sex, pattern in rules.sex_words.items():
        for m in pattern.finditer(text):
            if len(m.group()) > 1 and (first is None or m.start() < first[0]):
                first = (m.start(), sex, m)
                break
    if first is not None:
        found.append(_evidence(first[2].start(), first[2].end(), first[2].group(), "demographics:sex_word"))
        return first[1]
    counts = {sex: len(pattern.findall(text)) for sex, pattern in rules.pronouns.items()}
    if counts["male"] != counts["female"] and max(counts.values()) >= 2 and min(counts.values()) == 0:
        return max(counts, key=lambda s: counts[s])
    return None


def _ascvd(
    rules: RiskFactorRules,
    profile: dict[str, Any],
    observations: list[Measurement],
    demographics: dict[str, Any],
    mentions: list[Span],
) -> dict[str, Any]:
    def first(kind: str) -> Measurement | None:
        return next((m for m in observations if m.kind == kind), None)

    def mg_dl(m: Measurement | None) -> float | None:
        if m is None:
            return None
        return round(m.value * _MMOL_TO_MG_DL, 1) if m.unit == "mmol/L" else m.value

    sbp = first("bp_systolic")
    treated = any(
        s.label_ in ("DRUG", "DRUG_CLASS")
        and s._.assertion == "present"
        and rules.antihypertensives.fullmatch(s.text)
        for s in mentions
    )
    inputs = AscvdInputs(
        age=demographics["age"],
        sex=demographics["sex"],
        race=demographics["race"],
        total_cholesterol=mg_dl(first("total_cholesterol")),
        hdl=mg_dl(first("hdl")),
        systolic_bp=sbp.value if sbp is not None else None,
        bp_treated=True if treated else (False if profile["hypertension"] == "absent" else None),
        diabetes={"present": True, "absent": False}.get(profile["diabetes"]),
        smoker={"current": True, "former": False, "never": False}.get(profile["smoking"]),
    )
    estimate = ten_year_ascvd_risk(inputs)
    return {
        "inputs": asdict(inputs),
        "risk": estimate.risk,
        "percent": estimate.percent,
        "missing": list(estimate.missing),
        "out_of_range": list(estimate.out_of_range),
        "notes": list(estimate.notes),
        "equation": estimate.equation,
        "disclaimer": DISCLAIMER,
    }


@Language.factory(
    "clinical_risk_factors",
    requires=["doc.spans", "span._.assertion"],
    assigns=["doc._.risk_factors"],
)
def make_clinical_risk_factors(nlp: Language, name: str) -> RiskFactors:
    return RiskFactors(RiskFactorRules())
