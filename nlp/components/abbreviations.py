"""Abbreviations the note defines itself: "heart failure with reduced ejection fraction (HFrEF)".

A thin adapter over scispaCy's :class:`~scispacy.abbreviation.AbbreviationDetector`
(Schwartz & Hearst); it sets ``doc._.abbreviations`` (short-form spans with
``span._.long_form``). The lexicon then gives each short form the concept of its long form.
"""

import warnings

from scispacy.abbreviation import AbbreviationDetector
from spacy.language import Language

# scispaCy's global matcher is empty until a note defines an abbreviation; spaCy warns on every call
warnings.filterwarnings("ignore", message=r"\[W036\].*'matcher'")


@Language.factory("clinical_abbreviations", assigns=["doc._.abbreviations"])
def make_clinical_abbreviations(nlp: Language, name: str) -> AbbreviationDetector:
    return AbbreviationDetector(nlp, make_serializable=False)
