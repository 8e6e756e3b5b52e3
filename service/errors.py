"""The service's errors, the one table that maps errors to HTTP statuses, and the handlers.

Every non-2xx answer is ``{"error": {"code": ..., "message": ...}}``. No handler ever puts
request values (note text, ids, targets) into a body or a log line.
"""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from nlp.errors import InputError, Notes2FhirError

log = logging.getLogger(__name__)


class ServiceError(Notes2FhirError):
    """A request the service refuses as a whole; :data:`HTTP_STATUS` gives its status."""

    code = "service_error"
    retry_after: int | None = None


class Unauthorized(ServiceError):
    """The ``X-API-Key`` header is missing or wrong."""

    code = "unauthorized"


class BatchTooLarge(ServiceError):
    """A batch with more notes than ``max_batch``."""

    code = "batch_too_large"


class Overloaded(ServiceError):
    """All ``max_in_flight`` annotation slots are busy; the client may retry shortly."""

    code = "overloaded"
    retry_after = 1


class DeadlineExceeded(ServiceError):
    """The request ran past ``deadline_seconds``."""

    code = "deadline_exceeded"


class WorkerCrashed(ServiceError):
    """The pipeline process died while annotating the note (it is replaced; other notes go on)."""

    code = "worker_crashed"


class NotReady(ServiceError):
    """The pipeline is not loaded (yet)."""

    code = "not_ready"
    retry_after = 5


# the one exception -> status table (looked up along the MRO; anything else is a 500)
HTTP_STATUS: dict[type[Notes2FhirError], int] = {
    InputError: 422,
    BatchTooLarge: 422,
    Unauthorized: 401,
    Overloaded: 503,
    DeadlineExceeded: 503,
    NotReady: 503,
    WorkerCrashed: 500,
}
# codes for the framework's own HTTP errors (routing, unreadable bodies); others are http_error
HTTP_ERROR_CODES: dict[int, str] = {400: "malformed_request", 404: "not_found", 405: "method_not_allowed"}
INTERNAL_ERROR_MESSAGE = "the service failed to handle the request"


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    """The JSON body of every non-2xx answer."""
    return {"error": {"code": code, "message": message}}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A JSON error answer with the standard shape."""
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def status_for(exc: Notes2FhirError) -> int:
    """The HTTP status of a coded error (500 for codes the table does not know)."""
    for cls in type(exc).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500


def validation_summary(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Where and what kind each validation error is: ``loc`` and ``type`` only, never the input."""
    return [
        {"loc": list(err.get("loc", ())), "type": str(err.get("type", "invalid"))} for err in exc.errors()
    ]


async def _coded_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Notes2FhirError)
    status = status_for(exc)
    if not any(cls in HTTP_STATUS for cls in type(exc).__mro__):
        log.error("unmapped %s (code %s)", type(exc).__name__, exc.code)
        return error_response(500, "internal_error", INTERNAL_ERROR_MESSAGE)
    retry_after = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    if isinstance(exc, Unauthorized):
        headers = {"WWW-Authenticate": "APIKey"}
    return error_response(status, exc.code, exc.message, headers)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    body = error_body("invalid_request", "the request does not match the schema (see details)")
    body["error"]["details"] = validation_summary(exc)  # type: ignore[assignment]
    return JSONResponse(body, status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_ERROR_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, dict(exc.headers or {}))


def install_error_handlers(app: FastAPI) -> None:
    """Replace FastAPI's handlers (the validation one echoes the input) with shape-keeping ones."""
    app.add_exception_handler(Notes2FhirError, _coded_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
