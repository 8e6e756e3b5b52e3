"""Section detection: medspaCy's Sectionizer driven by ``sections.json``.

A header must start a line and end with ``:`` or a line break, which avoids medspaCy's
default false headers in mid-sentence ("No known drug allergies otherwise."). Section
categories reach mentions through medspaCy's ``token._.section_category``.
"""

from medspacy.section_detection import Sectionizer, SectionRule
from spacy.language import Language
from spacy.tokens import Doc

from nlp import resources

# the token after the header words: a colon (optionally with a dash) or a line break
_HEADER_END = {"TEXT": {"REGEX": r"^(?::|:-|-|\s*\n\s*)$"}}
_QUALIFIER = [{"ORTH": "("}, {"TEXT": {"REGEX": r"^[^\n()]+$"}, "OP": "{1,6}"}, {"ORTH": ")"}]


def section_rules(nlp: Language) -> list[SectionRule]:
    """One SectionRule per header variant in ``sections.json``."""
    spec = resources.load("sections")
    rules = []
    for category, headers in spec.sections.items():
        for header in headers:
            words = [{"LOWER": t.lower_} for t in nlp.tokenizer(header)]
            rules.append(SectionRule(header, category, pattern=[*words, _HEADER_END]))
            # "Home Medications (verified):", "Labs (drawn 04/09/2025):"
            # (medspaCy keys rules by literal, so the variant needs its own)
            rules.append(SectionRule(f"{header} (…)", category, pattern=[*words, *_QUALIFIER, _HEADER_END]))
    return rules


class ClinicalSections:
    """Wraps :class:`medspacy.section_detection.Sectionizer` with the project's rules."""

    def __init__(self, nlp: Language, name: str) -> None:
        self._sectionizer = Sectionizer(
            nlp,
            name=f"{name}_medspacy",
            rules=None,
            require_start_line=True,
            input_span_type=None,
            span_attrs=None,
        )
        self._sectionizer.add(section_rules(nlp))

    def __call__(self, doc: Doc) -> Doc:
        return self._sectionizer(doc)


@Language.factory("clinical_sections", assigns=["doc._.sections", "token._.section"])
def make_clinical_sections(nlp: Language, name: str) -> ClinicalSections:
    return ClinicalSections(nlp, name)
