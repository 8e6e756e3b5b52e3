"""Every shipped rule and lexicon file loads, validates, and says what it claims."""

import json

import pytest
import simple_icd_10_cm as icd

from nlp import resources
from nlp.errors import ResourceError


@pytest.mark.parametrize("name", sorted(resources.SCHEMAS))
def test_every_resource_loads(name: str) -> None:
    assert resources.load(name).version == 1


def test_unknown_keys_are_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = json.loads(resources.read_text("relationships"))
    bad["surprise"] = True
    with pytest.raises(Exception, match="surprise"):
        resources.SCHEMAS["relationships"].model_validate(bad)


def test_unknown_resource_name() -> None:
    with pytest.raises(ResourceError):
        resources.read_text("nope")


def test_curated_icd10cm_codes_exist() -> None:
    for term in resources.load("clinical_terms").terms:
        for system, code in term.codes:
            if system == "icd10cm":
                assert icd.is_valid_item(code), (term.text, code)


def test_context_rule_ids_unique() -> None:
    ids = [r.id for r in resources.load("context_rules").rules]
    assert len(ids) == len(set(ids))


def test_section_defaults_name_known_sections_and_labels() -> None:
    spec = resources.load("sections")
    assert set(spec.span_defaults) <= set(spec.sections)
    labels = {"PROBLEM", "DRUG", "DRUG_CLASS", "PROCEDURE", "TEST"}
    for default in spec.span_defaults.values():
        assert set(default.labels or ()) <= labels


def _labels(rule: resources.ContextRuleSpec, all_labels: frozenset[str]) -> frozenset[str]:
    allowed = frozenset(rule.allowed_types) if rule.allowed_types else all_labels
    return allowed - frozenset(rule.excluded_types or ())


def test_context_wording_belongs_to_one_rule_per_label() -> None:
    """Two rules may share a wording only for different mention labels (else which one wins is luck)."""
    from nlp.components.context import expand_phrase

    spec = resources.load("context_rules")
    every = frozenset({"PROBLEM", "DRUG", "DRUG_CLASS", "PROCEDURE", "TEST", "NO_KNOWN_ALLERGY"})
    seen: dict[str, list[resources.ContextRuleSpec]] = {}
    for rule in spec.rules:
        for wording in {w for phrase in rule.phrases or () for w in expand_phrase(phrase)}:
            for other in seen.get(wording, []):
                assert not _labels(rule, every) & _labels(other, every), (wording, rule.id, other.id)
            seen.setdefault(wording, []).append(rule)
    assert len(seen) > 5000


def test_chronic_prefixes_are_icd10cm_categories() -> None:
    for prefix in resources.load("context_rules").chronic_icd10_prefixes:
        assert icd.is_valid_item(prefix), prefix


def test_context_rule_needs_phrases_or_pattern() -> None:
    with pytest.raises(Exception, match="exactly one"):
        resources.ContextRuleSpec(id="x", category="HISTORICAL", direction="FORWARD")
