"""Coded exceptions. Every error a user can see has a stable ``code``.

The codes are part of the output contract: batch error records, the HTTP service and the
CLI report them as they are, so change them only with a schema version bump.
"""

from __future__ import annotations


class Notes2FhirError(Exception):
    """Base class: an error with a stable machine-readable code."""

    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class InputError(Notes2FhirError):
    """The note (or one input record) cannot be annotated as given.

    Codes: ``empty_text``, ``text_too_long``, ``nul_byte``, ``lone_surrogate``,
    ``invalid_encoding``, ``unreadable_input``, ``malformed_record``, ``invalid_targets``,
    ``invalid_type``, ``unsupported_corpus`` (a corpus without the labels a task scores);
    literature inputs and reports add ``unsupported_format``, ``unsafe_xml`` (a DTD declaring
    entities), ``duplicate_pmid`` and ``unwritable_output``; a batch run adds ``timeout`` and
    ``worker_crashed`` per note, and ``output_not_empty``, ``resume_mismatch``, ``corrupt_ledger``
    and ``worker_start_failed`` for the run.
    """

    code = "invalid_input"


class ConfigError(Notes2FhirError):
    """A pipeline configuration or resource file is invalid."""

    code = "config_error"


class ModelNotFoundError(Notes2FhirError):
    """A pipeline name or model path that does not exist."""

    code = "model_not_found"


class ResourceError(Notes2FhirError):
    """A shipped rule or lexicon file is missing or malformed."""

    code = "resource_error"
