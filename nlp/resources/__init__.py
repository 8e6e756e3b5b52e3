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
    rules: list[ContextRuleSpec]


TermLabel = Literal["PROBLEM", "DRUG", "DRUG_CLASS", "NO_KNOWN_ALLERGY"]


class CuratedTerm(_Strict):
    text: str
    label: TermLabel
    codes: list[tuple[str, str]] = []
    chronic: bool = False
    synonyms: list[str] = []
    abbreviations: list[str] = []


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


class AdrRules(_Strict):
    version: int
    description: str
    max_between_chars: int
    qualifiers: list[str]
    patterns: list[AdrPatternSpec]
    model_vetoes: list[AdrVetoSpec]
    model_cue: str


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
