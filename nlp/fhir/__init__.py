"""The only code that knows FHIR: :func:`to_fhir` turns a NoteRecord into an R4 Bundle dict.

The mapping is the contract in ``FHIR_MAPPING.md``. Bundles validate against
``fhir.resources.R4B`` (the closest model to R4 that package ships; see :func:`validate`).
"""

from nlp.fhir.bundle import EVIDENCE_URL, error_outcome, to_fhir, validate

__all__ = ["EVIDENCE_URL", "error_outcome", "to_fhir", "validate"]
