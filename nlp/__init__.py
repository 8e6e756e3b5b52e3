"""notes2fhir: clinical notes in, FHIR R4 records out.

>>> import nlp
>>> pipe = nlp.load()
>>> record = pipe.annotate("Denies chest pain. HTN on lisinopril 10 mg daily.")
>>> bundle = record.to_fhir()
"""

from nlp.errors import ConfigError, InputError, ModelNotFoundError, Notes2FhirError
from nlp.pipeline import VERSION as __version__
from nlp.pipeline import Pipeline, load
from nlp.records import SCHEMA_VERSION, NoteRecord

__all__ = [
    "SCHEMA_VERSION",
    "ConfigError",
    "InputError",
    "ModelNotFoundError",
    "NoteRecord",
    "Notes2FhirError",
    "Pipeline",
    "__version__",
    "load",
]
