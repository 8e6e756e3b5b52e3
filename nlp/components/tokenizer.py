"""Clinical tokenizer: spaCy's English rules plus the shapes clinicians write.

``10mg`` → ``10`` ``mg``; ``x3d`` → ``x`` ``3`` ``d``; ``s/p``, ``h/o``, ``b.i.d.`` stay whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from spacy.lang.en import English
from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.util import compile_infix_regex, compile_prefix_regex, compile_suffix_regex, registry

from nlp import resources


def _case_variants(text: str) -> set[str]:
    return {text, text.lower(), text.upper(), text[:1].upper() + text[1:]}


def _exceptions() -> dict[str, list[dict[str, str]]]:
    # spaCy's "a." … "z." exceptions would glue a unit letter to a full stop ("q6h." -> "q6" "h."), and its
    # emoticons glue header punctuation ("Home Medications (verified):" -> ... "):")
    return {
        k: v
        for k, v in English.Defaults.tokenizer_exceptions.items()
        if not re.fullmatch(r"[a-z]\.", k) and any(c.isalnum() for c in k)
    }


def build_tokenizer(nlp: Language) -> Tokenizer:
    """A :class:`spacy.tokenizer.Tokenizer` with the clinical rules from ``tokenizer.json``."""
    rules = resources.load("tokenizer")
    units = sorted({re.escape(u) for u in rules.unit_suffixes}, key=len, reverse=True)
    unit_alt = "|".join(units)
    times = "|".join(re.escape(t) for t in rules.times_prefix)
    prefixes = [*(English.Defaults.prefixes or ()), rf"(?:{times})(?=\d)"]
    suffixes = [*(English.Defaults.suffixes or ()), rf"(?<=\d)(?:{unit_alt})$"]
    # a number glued to a unit inside a longer token: "0.5mg/kg" -> "0.5" "mg/kg"
    infixes = [*English.Defaults.infixes, rf"(?<=\d)(?=(?:{unit_alt})(?:/|$))"]
    tokenizer = Tokenizer(
        nlp.vocab,
        rules=_exceptions(),
        prefix_search=compile_prefix_regex(prefixes).search,
        suffix_search=compile_suffix_regex(suffixes).search,
        infix_finditer=compile_infix_regex(infixes).finditer,
        token_match=English.Defaults.token_match,
        url_match=English.Defaults.url_match,
    )
    for case in rules.special_cases:
        for variant in _case_variants(case):
            tokenizer.add_special_case(variant, [{"ORTH": variant}])
    return tokenizer


@registry.tokenizers("notes2fhir.clinical_tokenizer.v1")
def create_clinical_tokenizer() -> Callable[[Language], Tokenizer]:
    """Registered so a saved pipeline's config can name the tokenizer."""
    return build_tokenizer
