"""Service settings, read from ``NOTES2FHIR_*`` environment variables (the only place that reads them)."""

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from nlp.pipeline import DEFAULT_MAX_CHARS

STATIC_DIR = Path(__file__).resolve().parent / "static"


class Settings(BaseSettings):
    """Limits, auth and wiring of the HTTP service.

    Every field can be set from the environment, e.g. ``NOTES2FHIR_MAX_BATCH=10`` or
    ``NOTES2FHIR_CORS_ORIGINS='["https://ehr.example.org"]'``.
    """

    model_config = SettingsConfigDict(env_prefix="NOTES2FHIR_", extra="forbid", frozen=True)

    pipeline: str = Field(default="default", description="pipeline name for nlp.load()")
    max_chars: int = Field(
        default=DEFAULT_MAX_CHARS, ge=1, le=DEFAULT_MAX_CHARS * 10, description="per-note limit"
    )
    max_batch: int = Field(default=25, ge=1, description="notes per batch request")
    max_body_bytes: int = Field(default=1_048_576, ge=1, description="request body limit (413 above it)")
    workers: int = Field(
        default=0, ge=0, description="pipeline processes behind one queue; 0: the pipeline runs in the server"
    )
    max_in_flight: int = Field(
        default=4,
        ge=0,
        description="annotation requests at once per pipeline process (running or queued); more get 503",
    )
    deadline_seconds: float = Field(
        default=30.0, gt=0, description="a request over it gets 503 deadline_exceeded"
    )
    api_key: SecretStr | None = Field(default=None, description="required in X-API-Key on /v1 when set")
    cors_origins: list[str] = Field(default_factory=list, description="allowed origins; empty: CORS off")
    static_dir: Path = Field(
        default=STATIC_DIR, description="the page served at /, mounted only if it exists"
    )
