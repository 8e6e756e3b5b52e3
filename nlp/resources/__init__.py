"""Rules, lexicons and label maps shipped as data (``nlp/resources/en/*.json``).

Every file is validated on load against a strict schema (unknown keys are errors), so a typo
in a rule file fails loudly at start-up instead of silently matching nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from nlp.errors import ResourceError

LANG = "en"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenizerRules(_Strict):
    version: int
    description: str
    special_cases: list[str]
    unit_suffixes: list[str]
    times_prefix: list[str]


class SpanDefault(_Strict):
    """What a mention in a section is when no cue says otherwise; ``labels`` limits it to some labels."""

    assertion: Literal["absent", "possible", "hypothetical", "historical"] | None = None
    subject: Literal["family"] | None = None
    labels: list[str] | None = None


class SectionRules(_Strict):
    version: int
    description: str
    span_defaults: dict[str, SpanDefault]
    sections: dict[str, list[str]]


ContextCategory = Literal[
    "NEGATED_EXISTENCE",
    "POSSIBLE_EXISTENCE",
    "HYPOTHETICAL",
    "HISTORICAL",
    "RESOLVED",
    "CURRENT",
    "ONGOING",
    "THIS_STAY",
    "TREATED",
    "ASSERTED",
    "FAMILY",
    "PATIENT",
    "TERMINATE",
    "PSEUDO",
]


class ContextRuleSpec(_Strict):
    id: str
    category: ContextCategory
    direction: Literal["FORWARD", "BACKWARD", "BIDIRECTIONAL", "TERMINATE", "PSEUDO"]
    phrases: list[str] | None = None
    pattern: list[dict[str, Any]] | None = None
    max_scope: int | None = None
    allowed_types: list[str] | None = None
    excluded_types: list[str] | None = None
    terminated_by: list[str] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> ContextRuleSpec:
        if (self.phrases is None) == (self.pattern is None):
            raise ValueError(f"context rule {self.id}: give exactly one of 'phrases' and 'pattern'")
        return self


class ContextRules(_Strict):
    version: int
    description: str
    act_labels: list[str]
    chronic_icd10_prefixes: list[str]
    chronic_terms: list[str]
    rules: list[ContextRuleSpec]


TermLabel = Literal["PROBLEM", "DRUG", "DRUG_CLASS", "NO_KNOWN_ALLERGY", "PROCEDURE"]


class CuratedTerm(_Strict):
    text: str
    label: TermLabel
    codes: list[tuple[str, str]] = []
    chronic: bool = False
    synonyms: list[str] = []
    abbreviations: list[str] = []
    members: list[str] = []  # DRUG_CLASS: generic names of the drugs in the class, lower case


class ClinicalTerms(_Strict):
    version: int
    description: str
    terms: list[CuratedTerm]


class Stoplist(_Strict):
    version: int
    description: str
    terms: list[str]


class ModelMentionRules(_Strict):
    version: int
    description: str
    leading_cues: list[str]  # trimmed from the start of a model mention
    not_mentions: list[str]  # whole mention texts a model may not claim
    lab_analytes: list[str]  # a model DRUG with this text is a lab test (with a value) or nothing
    formulations: list[str]  # with medication.json's dose forms: whole texts that are not a drug
    drug_use: list[str]  # words after a drug's name that say how it is given ("lithium prophylaxis")
    site_openers: list[str]  # two words where a finding's body site starts ("atrophy in his right arm")
    trailing_words: list[str]  # words no mention ends with (prepositions)
    heading_words: list[str]  # a mention ending with one heads a list ('Admission Medications')


class Relationship(_Strict):
    code: str
    display: str
    degree: int
    sex: Literal["male", "female"] | None


class Relationships(_Strict):
    version: int
    description: str
    relationships: dict[str, Relationship]


class PatternEntry(_Strict):
    code: str | None
    display: str
    patterns: list[str]
    # for a pattern with a number: the code of each number ("every {n} hours": 8 -> TID)
    codes_by_n: dict[str, str] | None = None


class MedicationVocabulary(_Strict):
    version: int
    description: str
    routes: list[PatternEntry]
    frequencies: list[PatternEntry]
    prn: list[str]
    units: dict[str, str]
    dose_forms: dict[str, str]
    duration_units: dict[str, str]


class AdrPatternSpec(_Strict):
    id: str
    order: Literal["drug_first", "reaction_first"]
    score: float
    between: str
    before: str | None = None
    not_chronic: bool = False


class AdrVetoSpec(_Strict):
    id: str
    between: str
    order: Literal["drug_first", "reaction_first"] | None = None


class AdrAcrossSentencesSpec(_Strict):
    sentences: int
    score: float
    forward: str
    backward: str
    doubt: str


class AdrRules(_Strict):
    version: int
    description: str
    max_between_chars: int
    qualifiers: list[str]
    patterns: list[AdrPatternSpec]
    model_vetoes: list[AdrVetoSpec]
    model_cue: str
    across_sentences: AdrAcrossSentencesSpec


class AllergenRules(_Strict):
    version: int
    description: str
    allergens: dict[Literal["food", "environment", "medication"], list[str]]
    cues_before: list[str]
    cues_after: list[str]
    reaction_lead: str
    list_separator: str


class RiskCondition(_Strict):
    icd10_prefixes: list[str]
    words: list[str]
    not_words: list[str]
    procedure_words: list[str] = []


class FamilyCad(_Strict):
    icd10_prefixes: list[str]
    words: list[str]
    premature_words: list[str]
    male: list[str]
    female: list[str]
    premature_age: dict[Literal["male", "female"], int]


class Demographics(_Strict):
    age_sex: str
    age: str
    male: list[str]
    female: list[str]
    pronouns: dict[Literal["male", "female"], list[str]]


class RiskFactorRules(_Strict):
    version: int
    description: str
    conditions: dict[str, RiskCondition]
    family_cad: FamilyCad
    demographics: Demographics
    race: dict[Literal["african_american", "white"], list[str]]
    antihypertensives: list[str]


class LoincCoding(_Strict):
    """A LOINC code; with ``unit`` or ``method`` it codes only readings in that unit or by that method."""

    code: str
    display: str
    unit: str | None = None
    method: str | None = None


class MeasurementKind(_Strict):
    codings: list[LoincCoding]  # the first that fits a reading wins; the last fits every reading
    ranges: dict[str, tuple[float, float]]  # UCUM unit -> plausible (low, high)
    panel: str | None = None


class MeasurementAnalyte(_Strict):
    names: list[str]
    values: list[str]
    kinds: list[str]
    units: list[str]
    bare_units: list[str] = []
    comparators: bool = False
    first_exceeds_second: bool = False
    standalone_unit: str | None = None
    methods: dict[str, str] = {}
    serum_only: bool = False


class MeasurementRules(_Strict):
    version: int
    description: str
    panels: dict[str, LoincCoding]
    kinds: dict[str, MeasurementKind]
    analytes: dict[str, MeasurementAnalyte]
    not_names: list[str]
    units: dict[str, list[str]]
    value_patterns: dict[str, str]
    gap_words: list[str]
    when_dates: list[str]
    when_words: list[str]
    when_partial: list[str]
    when_prepositions: list[str]
    flags: list[str]
    value_vetoes: list[str]
    reference_cues: list[str]
    subject_cues: list[str]
    specimen_cues: list[str]

    @model_validator(mode="after")
    def _references_resolve(self) -> MeasurementRules:
        for name, kind in self.kinds.items():
            if kind.panel is not None and kind.panel not in self.panels:
                raise ValueError(f"kind {name}: unknown panel {kind.panel!r}")
            if set(kind.ranges) - set(self.units):
                raise ValueError(
                    f"kind {name}: ranges in unknown units {sorted(set(kind.ranges) - set(self.units))}"
                )
            if not kind.codings or kind.codings[-1].unit or kind.codings[-1].method:
                raise ValueError(f"kind {name}: the last coding must fit every reading (no unit, no method)")
        for name, analyte in self.analytes.items():
            unknown = (
                (set(analyte.kinds) - set(self.kinds))
                | (set(analyte.units) - set(self.units))
                | (set(analyte.bare_units) - set(analyte.units))
                | (set(analyte.values) - set(self.value_patterns))
            )
            if unknown:
                raise ValueError(f"analyte {name}: unknown kinds, units or values {sorted(unknown)}")
        return self


class SocialTermGroup(_Strict):
    id: str
    topic: Literal["smoking", "alcohol", "drugs"]
    default: Literal["current", "former", "never", "history"]
    key: str | None = None  # product (smoking), beverage (alcohol) or substance (drugs)
    fixed: bool = False  # the word says it all: "nonsmoker", "sober"
    finite_verb: bool = False  # "smokes", "drinks": after "and" or a comma it starts a new clause
    needs_company: bool = False  # a bare "drugs" counts only as a field name or beside another topic
    patterns: list[str]


class SocialCueGroup(_Strict):
    id: str
    kind: Literal["current", "former", "never", "history", "other", "ignore"]
    governs: bool = True
    value: bool = False
    event: Literal["none", "statement", "carry"] = "none"
    max_gap_words: int = 5
    crosses_commas: bool = True
    patterns: list[str]


class SmokingDetailPatterns(_Strict):
    pack_years: list[str]
    packs_per_day: list[str]
    cigarettes_per_day: list[str]
    years: list[str]
    quit: list[str]


class DrinkUnit(_Strict):
    drinks: float | None  # standard drinks in one unit; None: a volume that cannot be counted ("pint")
    container: bool = False  # the unit states its own number ("6-pack"), so "a 6-pack" counts
    patterns: list[str]


class DrinkPeriod(_Strict):
    per_week: float | None  # None: a period that gives no rate ("on weekends")
    patterns: list[str]


class SocialHistoryRules(_Strict):
    version: int
    description: str
    number_words: dict[str, float]
    when: str
    terms: list[SocialTermGroup]
    cues: list[SocialCueGroup]
    breakers: list[str]
    patient_words: list[str]
    not_use: list[str]
    family_sections: list[str]
    smoking_details: SmokingDetailPatterns
    cigarettes_per_pack: int
    drink_units: list[DrinkUnit]
    drink_periods: list[DrinkPeriod]
    beverages: list[str]
    qualitative_amounts: list[str]

    @model_validator(mode="after")
    def _ids_unique(self) -> SocialHistoryRules:
        ids = [g.id for g in self.terms] + [g.id for g in self.cues]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate term or cue ids: {sorted({i for i in ids if ids.count(i) > 1})}")
        if "other_person" not in {g.id for g in self.cues}:
            raise ValueError("cue group 'other_person' (relatives) is required")
        return self


SCHEMAS: dict[str, type[_Strict]] = {
    "tokenizer": TokenizerRules,
    "sections": SectionRules,
    "context_rules": ContextRules,
    "clinical_terms": ClinicalTerms,
    "lexicon_stoplist": Stoplist,
    "model_mentions": ModelMentionRules,
    "relationships": Relationships,
    "medication": MedicationVocabulary,
    "adr_rules": AdrRules,
    "allergens": AllergenRules,
    "risk_factors": RiskFactorRules,
    "measurements": MeasurementRules,
    "social_history": SocialHistoryRules,
}


def read_text(name: str) -> str:
    """The raw text of a shipped resource file (``name`` without ``.json``)."""
    if name not in SCHEMAS:
        raise ResourceError(f"unknown resource {name!r}; known: {sorted(SCHEMAS)}")
    try:
        return resources.files("nlp.resources").joinpath(LANG, f"{name}.json").read_text("utf-8")
    except OSError as exc:
        raise ResourceError(f"resource {name!r} cannot be read: {exc}") from exc


@functools.cache
def load(name: str) -> Any:
    """Load and validate a shipped resource by id, e.g. ``load("context_rules")``."""
    text = read_text(name)
    try:
        return SCHEMAS[name].model_validate(json.loads(text))
    except (ValidationError, json.JSONDecodeError) as exc:
        raise ResourceError(f"resource {name!r} is invalid: {exc}") from exc


def fingerprint(*names: str) -> str:
    """A short hash of the named resource files (cache keys, pipeline fingerprints)."""
    digest = hashlib.sha256()
    for name in sorted(names or SCHEMAS):
        digest.update(name.encode())
        digest.update(read_text(name).encode())
    return digest.hexdigest()[:16]
