"""Allergy list entries: which reactions belong to which substance.

In the allergies section, a PROBLEM mention on the same line as a substance and before the
next substance is that substance's reaction: "Penicillin (hives)", "Sulfa drugs - rash",
"codeine: nausea, vomiting". Each pair becomes an ``allergy_reaction`` relation in
``doc._.relations``; the FHIR mapping turns it into ``AllergyIntolerance.reaction``.
"""

from spacy.language import Language
from spacy.tokens import Doc

from nlp.components.lexicon import SPAN_GROUP
from nlp.records import ALLERGY_SECTIONS

SUBSTANCE_LABELS = {"DRUG", "DRUG_CLASS"}


def link_allergy_reactions(doc: Doc) -> Doc:
    if SPAN_GROUP not in doc.spans:
        return doc
    relations = list(doc._.relations)
    spans = [s for s in doc.spans[SPAN_GROUP] if s._.section_category in ALLERGY_SECTIONS]
    text = doc.text
    substance = None
    for span in spans:
        if span.label_ in SUBSTANCE_LABELS:
            substance = span
        elif span.label_ == "PROBLEM" and substance is not None:
            if "\n" in text[substance.end_char : span.start_char]:
                substance = None
                continue
            relations.append(
                (
                    "allergy_reaction",
                    (substance.start_char, substance.end_char),
                    (span.start_char, span.end_char),
                    1.0,
                    "rule:allergy_line",
                )
            )
    doc._.relations = relations
    return doc


@Language.factory("clinical_allergies", requires=["doc.spans"], assigns=["doc._.relations"])
def make_clinical_allergies(nlp: Language, name: str) -> object:
    return link_allergy_reactions
