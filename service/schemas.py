"""Request and response bodies of the HTTP API (``/v1``); the records themselves are :class:`NoteRecord`."""

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator

from nlp.records import NoteRecord

SYNTHETIC_NOTE = (
    "HISTORY OF PRESENT ILLNESS: 58 year old man with hypertension and type 2 diabetes. "
    "Denies chest pain. Allergic to penicillin (rash). "
    "MEDICATIONS: lisinopril 10 mg daily, metformin 500 mg twice daily."
)


def _note_text(value: object) -> str:
    # any string: empty text, NUL and lone surrogates are the pipeline's per-note input errors
    if not isinstance(value, str):
        raise ValueError("note text must be a string")
    return value


def _no_surrogates(value: str) -> str:
    # ids and labels come back in the answer, which cannot encode a lone surrogate
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        raise ValueError("lone surrogate")
    return value


NoteText = Annotated[str, PlainValidator(_note_text, json_schema_input_type=str)]
Identifier = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_no_surrogates)]
Label = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_no_surrogates)]


class OutputFormat(StrEnum):
    """What a successful annotation returns."""

    record = "record"
    fhir = "fhir"


class NoteIn(BaseModel):
    """One note to annotate."""

    id: Identifier | None = Field(None, description="the note's id (default: a hash of the text)")
    text: NoteText = Field(description="the note; its limits are checked per note, never truncated")
    patient_id: Identifier | None = Field(None, description="carried into the record and FHIR subject")
    targets: list[tuple[int, int, Label]] | None = Field(
        None,
        max_length=10_000,
        description="[start, end, label] spans to assert, code and section instead of finding mentions",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"id": "note-1", "text": SYNTHETIC_NOTE, "patient_id": "patient-1"},
                {"id": "note-2", "text": "Denies chest pain.", "targets": [[7, 17, "PROBLEM"]]},
            ]
        }
    )


class BatchIn(BaseModel):
    """Several notes; each is answered on its own."""

    notes: list[NoteIn] = Field(description="at most max_batch notes (see /v1/info)")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "notes": [
                        {"id": "note-1", "text": SYNTHETIC_NOTE},
                        {"id": "note-2", "text": "Pt reports smoking 1 pack per day. BP 150/95."},
                    ]
                }
            ]
        }
    )


class FhirBundle(BaseModel):
    """A FHIR R4 Bundle (its resources follow the FHIR specification)."""

    resourceType: Literal["Bundle"]
    type: str
    entry: list[dict[str, Any]] = []

    model_config = ConfigDict(extra="allow")


class ValidationIssue(BaseModel):
    """Where a request broke the schema, and how (never the offending value)."""

    loc: list[str | int]
    type: str


class ErrorInfo(BaseModel):
    """A stable machine-readable code and a message that never quotes the note."""

    code: str
    message: str
    details: list[ValidationIssue] | None = None


class ErrorResponse(BaseModel):
    """The body of every non-2xx answer."""

    error: ErrorInfo


class BatchItem(BaseModel):
    """One note's outcome: exactly one of ``record``, ``bundle`` or ``error``."""

    id: str | None
    record: NoteRecord | None = None
    bundle: FhirBundle | None = None
    error: ErrorInfo | None = None


class BatchResponse(BaseModel):
    """Per-note outcomes, in input order."""

    results: list[BatchItem]


class Limits(BaseModel):
    """The limits this service enforces."""

    max_chars: int
    max_batch: int
    max_body_bytes: int
    workers: int = Field(description="pipeline processes (0: the pipeline runs in the server process)")
    max_in_flight: int = Field(description="annotation requests at once per pipeline process")
    deadline_seconds: float


class InfoResponse(BaseModel):
    """What is serving: the pipeline, its labels and the limits."""

    service: Literal["notes2fhir"] = "notes2fhir"
    version: str
    pipeline: str
    fingerprint: str
    components: list[str]
    models: list[str]
    labels: list[str]
    limits: Limits


class HealthResponse(BaseModel):
    """A health probe's answer."""

    status: Literal["ok"] = "ok"
