"""ASGI middleware: the request body limit, and the per-request log line, metrics and 500 guard."""

import contextvars
import logging
import re
import time
import traceback
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import INTERNAL_ERROR_MESSAGE, error_response
from service.metrics import ServiceMetrics

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class BodySizeLimit:
    """Refuse bodies over ``max_bytes`` with 413, by ``Content-Length`` and by counting what streams in.

    The body is read here (it is at most ``max_bytes``) and replayed to the app, so a chunked body
    without a length cannot get past the limit and the 413 always has the standard error shape.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "body_too_large", f"the request body is larger than {self.max_bytes} bytes"
        )
        await response(scope, receive, send)


class RequestObserver:
    """Give each request an id, count and time it, log one content-free line, and turn a crash into 500.

    The log line holds the request id, method, route template, status, body sizes and duration:
    never the path's query, the body or any header value other than the request id.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        given = headers.get(REQUEST_ID_HEADER.lower(), "")
        declared = headers.get("content-length", "")
        rid = given if _SAFE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        sent_bytes = 0
        response_started = False

        async def observed_send(message: Message) -> None:
            nonlocal status, sent_bytes, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            elif message["type"] == "http.response.body":
                sent_bytes += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except Exception as exc:  # the last line of defence: a 500 without details, logged without data
            frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            where = f"{frame.filename}:{frame.lineno}" if frame else "?"
            log.error("request %s: unhandled %s at %s", rid, type(exc).__name__, where)
            if response_started:
                raise
            status = 500
            await error_response(500, "internal_error", INTERNAL_ERROR_MESSAGE, {REQUEST_ID_HEADER: rid})(
                scope, receive, send
            )
        finally:
            elapsed = time.perf_counter() - started
            label = _route_label(scope)
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.metrics.requests.labels(label, method, str(status)).inc()
            self.metrics.latency.labels(label).observe(elapsed)
            log.info(
                "request %s %s %s -> %d in=%sB out=%dB %.1fms",
                rid,
                method,
                label,
                status,
                declared if declared.isdigit() else "?",
                sent_bytes,
                elapsed * 1000,
            )
            request_id.reset(token)


def _route_label(scope: Scope) -> str:
    """The matched route's template, ``page`` for the mounted page's files, or ``unmatched``."""
    route = scope.get("route")
    if route is not None:
        return getattr(route, "path", "") or "/"
    return "page" if scope.get("endpoint") is not None else "unmatched"
