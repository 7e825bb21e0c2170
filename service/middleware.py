"""Pure ASGI middlewares (they see the raw byte stream, unlike ``BaseHTTPMiddleware``).

Outermost first: :class:`RequestContext` (request ID, access log, metrics, last-resort
500), :class:`ApiKeyAuth` (401 before any body is read), :class:`UploadGuard` (415
for a non-multipart body, 413 as soon as the byte stream passes the limit).
"""

from __future__ import annotations

import hmac
import logging
import time

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import ServiceError, error_response, too_large, unauthorized, unsupported_media
from service.logging_setup import new_request_id, request_id_var
from service.metrics import Metrics, path_label

access_log = logging.getLogger("service.access")

#: multipart framing allowance on top of the file-size limit
MULTIPART_SLACK = 64 * 1024


def _state(scope: Scope) -> dict:
    return scope.setdefault("state", {})


async def send_error(scope: Scope, receive: Receive, send: Send, exc: ServiceError) -> None:
    _state(scope)["error_code"] = exc.code
    await error_response(exc.status_code, exc.code, exc.message, exc.headers)(scope, receive, send)


class RequestContext:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = new_request_id(Headers(scope=scope).get("x-request-id"))
        token = request_id_var.set(rid)
        state = _state(scope)
        state["request_id"] = rid
        started = False
        status = 500
        t0 = time.perf_counter()
        self.metrics.in_flight.inc()

        async def send_wrapper(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started, status = True, message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            access_log.exception("unhandled error")
            if not started:
                state["error_code"] = "internal_error"
                await error_response(500, "internal_error", "internal server error")(scope, receive, send_wrapper)
            status = 500
        finally:
            elapsed = time.perf_counter() - t0
            path = path_label(scope.get("path", ""))
            m = self.metrics
            m.in_flight.dec()
            m.requests.labels(path=path, method=scope.get("method", ""), status=str(status)).inc()
            m.duration.labels(path=path).observe(elapsed)
            code = state.get("error_code")
            if status >= 400:
                m.errors.labels(status=str(status), code=code or "http_error").inc()
            extra = {"request_id": rid, "method": scope.get("method"), "path": scope.get("path"), "status": status,
                     "duration_ms": round(elapsed * 1000, 2)}
            if code:
                extra["error_code"] = code
            for key in ("audio_seconds", "sample_rate", "channels", "upload_bytes", "processing_seconds"):
                if key in state:
                    extra[key] = state[key]
            access_log.log(logging.ERROR if status == 500 else logging.INFO, "request", extra=extra)
            request_id_var.reset(token)


class ApiKeyAuth:
    """With a key set, every request needs ``Authorization: Bearer <key>`` except:

    * ``open_paths`` (``/health``), any method;
    * ``page_paths`` and paths under ``page_prefixes`` (the try-it page ``/`` and its
      ``/static/`` assets), for ``GET`` and ``HEAD`` only: the page asks for the key itself.
    """

    def __init__(self, app: ASGIApp, api_key: str | None, open_paths: frozenset[str] = frozenset({"/health"}),
                 page_paths: frozenset[str] = frozenset(), page_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.key = api_key.encode() if api_key else None
        self.open_paths = open_paths
        self.page_paths = page_paths
        self.page_prefixes = page_prefixes

    def _is_open(self, scope: Scope) -> bool:
        path = scope.get("path", "")
        if path in self.open_paths:
            return True
        if scope.get("method") not in ("GET", "HEAD"):
            return False
        return path in self.page_paths or (bool(self.page_prefixes) and path.startswith(self.page_prefixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.key is None or self._is_open(scope):
            await self.app(scope, receive, send)
            return
        auth = Headers(scope=scope).get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.key):
            await send_error(scope, receive, send, unauthorized())
            return
        await self.app(scope, receive, send)


class UploadGuard:
    """For ``POST`` to ``paths``: require a multipart body and cap its size while it streams."""

    def __init__(self, app: ASGIApp, max_upload_bytes: int, paths: frozenset[str] = frozenset({"/denoise"})) -> None:
        self.app = app
        self.max_body = max_upload_bytes + MULTIPART_SLACK
        self.max_upload_bytes = max_upload_bytes
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        ctype = headers.get("content-type", "")
        if ctype and not ctype.lower().startswith("multipart/form-data"):
            await send_error(scope, receive, send, unsupported_media(
                f"request content type {ctype.split(';')[0]!r} is not supported: "
                "send multipart/form-data with the audio in the field 'file'"))
            return
        limit_error = too_large(f"upload exceeds the limit of {self.max_upload_bytes} bytes")
        length = headers.get("content-length")
        if length and length.isdigit() and int(length) > self.max_body:
            await send_error(scope, receive, send, limit_error)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise limit_error  # surfaces through FastAPI's body parsing as this 413
            return message

        _state(scope)["upload_guarded"] = True
        await self.app(scope, limited_receive, send)
