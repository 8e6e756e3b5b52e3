"""The HTTP annotation service: ``create_app()`` builds the FastAPI app around one loaded pipeline.

Run it with ``notes2fhir serve`` or ``uvicorn --factory service.app:create_app``. Limits, auth and CORS
come from :class:`service.config.Settings` (``NOTES2FHIR_*`` variables).
"""

import functools
import gc
import json
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles

import nlp
from nlp.batch import load_warm
from nlp.errors import InputError
from nlp.fhir import to_fhir
from nlp.records import NoteRecord, text_hash
from service.config import Settings
from service.errors import (
    BatchTooLarge,
    DeadlineExceeded,
    NotReady,
    Overloaded,
    Unauthorized,
    WorkerCrashed,
    install_error_handlers,
)
from service.metrics import ServiceMetrics
from service.middleware import REQUEST_ID_HEADER, BodySizeLimit, RequestObserver, request_id
from service.pool import Loader, PipelineProcesses
from service.schemas import (
    BatchIn,
    BatchResponse,
    ErrorResponse,
    FhirBundle,
    HealthResponse,
    InfoResponse,
    Limits,
    NoteIn,
    OutputFormat,
)

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"


def json_response(payload: dict[str, Any]) -> Response:
    """JSON of plain data, encoded once: records are large and FastAPI's generic encoder walks every
    value again (3 ms for a 400-word note's record; ``json.dumps`` takes 0.3 ms)."""
    return Response(
        json.dumps(payload).encode("ascii"), media_type="application/json"
    )  # escaped: never fails


class PipelineDescription(Protocol):
    """What the service reads from ``Pipeline.info`` (a ``models`` tuple is listed when present)."""

    @property
    def version(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def components(self) -> tuple[str, ...]: ...
    @property
    def labels(self) -> tuple[str, ...]: ...


class AnnotationPipeline(Protocol):
    """The part of :class:`nlp.Pipeline` the service uses (tests pass a small fake)."""

    @property
    def id(self) -> str: ...
    @property
    def info(self) -> PipelineDescription: ...
    def annotate(
        self,
        text: str,
        *,
        note_id: str | None = None,
        patient_id: str | None = None,
        targets: Sequence[tuple[int, int, str]] | None = None,
    ) -> NoteRecord: ...


PipelineFactory = Callable[[Settings], AnnotationPipeline]


def serve_pipeline(loader: Loader, settings: Settings) -> AnnotationPipeline:
    """``loader()`` in this process (``settings.workers == 0``) or in ``settings.workers`` processes
    behind one queue, each note killable at the deadline."""
    if settings.workers == 0:
        return loader()
    return PipelineProcesses(loader, settings.workers, timeout=settings.deadline_seconds)


def load_pipeline(settings: Settings) -> AnnotationPipeline:
    """The default factory: the configured pipeline, warmed up, served as ``settings.workers`` says."""
    return serve_pipeline(functools.partial(load_warm, settings.pipeline, settings.max_chars), settings)


class Deadline:
    """A request's time budget, checked between steps (a running note cannot be interrupted)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires = time.monotonic() + seconds

    def check(self) -> None:
        """Raise :class:`DeadlineExceeded` once the budget is spent."""
        if time.monotonic() > self.expires:
            raise DeadlineExceeded(f"the request took longer than its {self.seconds:g} s deadline")


class ServiceState:
    """The app's settings, metrics, loaded pipeline and annotation slots."""

    def __init__(self, settings: Settings, metrics: ServiceMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.pipeline: AnnotationPipeline | None = None
        self.slots = settings.max_in_flight * max(1, settings.workers)
        self._slots = threading.Semaphore(self.slots)

    @contextmanager
    def annotation_slot(self) -> Iterator[Deadline]:
        """Hold one of the ``max_in_flight`` × processes slots, or raise :class:`Overloaded` at once."""
        if not self._slots.acquire(blocking=False):
            raise Overloaded(f"all {self.slots} annotation slots are busy; retry shortly")
        self.metrics.in_flight.inc()
        try:
            yield Deadline(self.settings.deadline_seconds)
        finally:
            self.metrics.in_flight.dec()
            self._slots.release()

    def annotate(
        self, pipe: AnnotationPipeline, note: NoteIn, output_format: OutputFormat
    ) -> tuple[str, dict[str, Any]]:
        """One note as ``("record", record)`` or ``("bundle", bundle)``; raises :class:`InputError`."""
        try:
            record = pipe.annotate(
                note.text, note_id=note.id, patient_id=note.patient_id, targets=note.targets
            )
        except (InputError, WorkerCrashed) as exc:
            self._note_failed(exc.code, note.text)
            raise
        self.metrics.notes_annotated.inc()
        if output_format is OutputFormat.fhir:
            return "bundle", to_fhir(record)
        return "record", record.model_dump(mode="json", by_alias=True)

    def batch_item(
        self, pipe: AnnotationPipeline, note: NoteIn, output_format: OutputFormat
    ) -> dict[str, Any]:
        """One note's batch entry; a failing note becomes an ``error`` entry and never stops the batch."""
        try:
            kind, payload = self.annotate(pipe, note, output_format)
        except (InputError, WorkerCrashed) as exc:
            return {"id": note.id, "error": {"code": exc.code, "message": exc.message}}
        except DeadlineExceeded:
            raise
        except Exception as exc:
            log.error("request %s: %s while annotating a batch note", request_id.get(), type(exc).__name__)
            self._note_failed("internal_error", note.text)
            return {
                "id": note.id,
                "error": {"code": "internal_error", "message": "the note could not be annotated"},
            }
        return {"id": note.id, kind: payload}

    def _note_failed(self, code: str, text: str) -> None:
        self.metrics.note_errors.labels(code).inc()
        log.info(
            "request %s: note refused code=%s chars=%d sha256=%s",
            request_id.get(),
            code,
            len(text),
            text_hash(text)[:16],
        )


def get_state(request: Request) -> ServiceState:
    """The app's :class:`ServiceState` (a dependency)."""
    state: ServiceState = request.app.state.service
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]


def get_pipeline(state: StateDep) -> AnnotationPipeline:
    """The loaded pipeline (a dependency); :class:`NotReady` before the lifespan has loaded it."""
    if state.pipeline is None:
        raise NotReady("the pipeline is not loaded yet")
    return state.pipeline


PipelineDep = Annotated[AnnotationPipeline, Depends(get_pipeline)]
_api_key_header = APIKeyHeader(
    name=API_KEY_HEADER, auto_error=False, description="needed when the service has a key"
)


def require_api_key(state: StateDep, key: Annotated[str | None, Depends(_api_key_header)]) -> None:
    """Check ``X-API-Key`` against the configured key (no key configured: open)."""
    expected = state.settings.api_key
    if expected is None:
        return
    if key is None or not secrets.compare_digest(key.encode(), expected.get_secret_value().encode()):
        raise Unauthorized(f"a valid {API_KEY_HEADER} header is required")


FormatQuery = Annotated[
    OutputFormat, Query(alias="format", description="record: the NoteRecord; fhir: a FHIR R4 Bundle")
]

_ERROR_DESCRIPTIONS = {
    400: "the body is not readable JSON",
    401: f"missing or wrong {API_KEY_HEADER}",
    413: "body_too_large: the body is over max_body_bytes",
    422: "invalid_request (schema), a note input error (single note) or batch_too_large",
    500: "internal_error",
    503: "not_ready, overloaded (with Retry-After) or deadline_exceeded",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the given error statuses."""
    return {s: {"model": ErrorResponse, "description": _ERROR_DESCRIPTIONS[s]} for s in statuses}


_ANNOTATE_ERRORS = error_responses(400, 401, 413, 422, 500, 503)
_OPEN_ERRORS = error_responses(413, 500)
router = APIRouter()


@router.post(
    "/v1/annotate",
    response_model=None,
    responses={
        200: {"model": NoteRecord | FhirBundle, "description": "the record or Bundle"},
        **_ANNOTATE_ERRORS,
    },
    dependencies=[Depends(require_api_key)],
    tags=["annotate"],
)
def annotate(
    note: NoteIn, pipe: PipelineDep, state: StateDep, output_format: FormatQuery = OutputFormat.record
) -> Response:
    """Annotate one note. A note the pipeline cannot read is a 422 with its error code."""
    with state.annotation_slot() as deadline:
        _, payload = state.annotate(pipe, note, output_format)
        deadline.check()
    return json_response(payload)


@router.post(
    "/v1/annotate/batch",
    response_model=None,
    responses={
        200: {"model": BatchResponse, "description": "one entry per note, in order"},
        **_ANNOTATE_ERRORS,
    },
    dependencies=[Depends(require_api_key)],
    tags=["annotate"],
)
def annotate_batch(
    batch: BatchIn, pipe: PipelineDep, state: StateDep, output_format: FormatQuery = OutputFormat.record
) -> Response:
    """Annotate up to ``max_batch`` notes; each note succeeds or fails on its own."""
    if len(batch.notes) > state.settings.max_batch:
        raise BatchTooLarge(f"{len(batch.notes)} notes; the limit is {state.settings.max_batch} per batch")
    with state.annotation_slot() as deadline:
        results = []
        for note in batch.notes:
            deadline.check()
            results.append(state.batch_item(pipe, note, output_format))
        deadline.check()
    return json_response({"results": results})


@router.get(
    "/v1/info",
    responses=error_responses(401, 413, 500, 503),
    dependencies=[Depends(require_api_key)],
    tags=["service"],
)
def info(pipe: PipelineDep, state: StateDep) -> InfoResponse:
    """The pipeline that answers, its labels, and the limits."""
    described = pipe.info
    settings = state.settings
    return InfoResponse(
        version=nlp.__version__,
        pipeline=pipe.id,
        fingerprint=described.fingerprint,
        components=list(described.components),
        models=list(getattr(described, "models", ())),
        labels=list(described.labels),
        limits=Limits(
            max_chars=settings.max_chars,
            max_batch=settings.max_batch,
            max_body_bytes=settings.max_body_bytes,
            workers=settings.workers,
            max_in_flight=settings.max_in_flight,
            deadline_seconds=settings.deadline_seconds,
        ),
    )


@router.get("/health/live", responses=_OPEN_ERRORS, tags=["health"])
def live() -> HealthResponse:
    """The process answers."""
    return HealthResponse()


@router.get("/health/ready", responses=error_responses(413, 500, 503), tags=["health"])
def ready(pipe: PipelineDep) -> HealthResponse:
    """The pipeline is loaded (503 ``not_ready`` before)."""
    return HealthResponse()


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}, **_OPEN_ERRORS},
    tags=["service"],
)
def metrics(state: StateDep) -> Response:
    """Prometheus metrics: requests by route and status, latency, notes, note errors by code, in flight."""
    return Response(state.metrics.render(), media_type=state.metrics.content_type)


def create_app(settings: Settings | None = None, pipeline_factory: PipelineFactory | None = None) -> FastAPI:
    """Build the service.

    Args:
        settings: limits, auth and CORS (default: from the ``NOTES2FHIR_*`` environment).
        pipeline_factory: builds the pipeline once at start-up (default: :func:`load_pipeline`).

    Returns:
        The FastAPI app; the pipeline is loaded in its lifespan.
    """
    settings = settings if settings is not None else Settings()
    factory = pipeline_factory if pipeline_factory is not None else load_pipeline
    state = ServiceState(settings, ServiceMetrics())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started = time.perf_counter()
        pipe = factory(settings)
        if isinstance(pipe, PipelineProcesses):
            state.metrics.watch_processes(pipe)
        state.pipeline = pipe
        # what start-up loaded lives as long as the app: keep the collector from walking it again
        gc.collect()
        gc.freeze()
        log.info("pipeline %s ready in %.1fs", pipe.id, time.perf_counter() - started)
        try:
            yield
        finally:
            state.pipeline = None
            gc.unfreeze()
            if isinstance(pipe, PipelineProcesses):
                pipe.close()

    app = FastAPI(
        title="notes2fhir",
        version=nlp.__version__,
        description="Clinical notes in, annotated records or FHIR R4 Bundles out. Note text is never logged.",
        lifespan=lifespan,
    )
    app.state.service = state
    install_error_handlers(app)
    app.include_router(router)
    if settings.static_dir.is_dir():
        app.mount("/", StaticFiles(directory=settings.static_dir, html=True), name="page")
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", API_KEY_HEADER, REQUEST_ID_HEADER],
            expose_headers=["Retry-After", REQUEST_ID_HEADER],
        )
    app.add_middleware(RequestObserver, metrics=state.metrics)
    return app
