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


def test_section_defaults_name_known_sections() -> None:
    spec = resources.load("sections")
    assert set(spec.span_defaults) <= set(spec.sections)
