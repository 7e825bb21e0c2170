"""One error shape for every failure: ``{"error": {"code": ..., "message": ...}}``.

:class:`ServiceError` is an ``HTTPException`` so that it passes unchanged through
FastAPI's body parsing (an upload that exceeds the limit mid-stream is raised from
inside the multipart parser) and through the ASGI middlewares.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("service.errors")

#: default ``code`` for plain HTTP errors raised by the framework
STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    500: "internal_error",
    503: "service_unavailable",
}


class ServiceError(StarletteHTTPException):
    """An error with a stable machine-readable ``code`` and a human message."""

    def __init__(self, status_code: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.code = code
        self.message = message


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(status_code: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status_code, headers=headers)


# ----------------------------------------------------------------- the errors the service raises
def bad_audio(message: str) -> ServiceError:
    return ServiceError(400, "invalid_audio", message)


def too_large(message: str) -> ServiceError:
    return ServiceError(413, "payload_too_large", message)


def unsupported_media(message: str) -> ServiceError:
    return ServiceError(415, "unsupported_media_type", message)


def unavailable(code: str, message: str, retry_after: int) -> ServiceError:
    return ServiceError(503, code, message, headers={"Retry-After": str(retry_after)})


def unauthorized() -> ServiceError:
    return ServiceError(401, "unauthorized", "missing or invalid API key (send 'Authorization: Bearer <key>')",
                        headers={"WWW-Authenticate": "Bearer"})


# ----------------------------------------------------------------- handlers
def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",)) or "request"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _record(request: Request, code: str) -> None:
    request.scope.setdefault("state", {})["error_code"] = code  # for metrics and the access log


async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
    _record(request, exc.code)
    return error_response(exc.status_code, exc.code, exc.message, exc.headers)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = STATUS_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    _record(request, code)
    return error_response(exc.status_code, code, message, getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    _record(request, "validation_error")
    return error_response(422, "validation_error", _describe_validation(exc))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", extra={"path": request.url.path})
    _record(request, "internal_error")
    return error_response(500, "internal_error", "internal server error")


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
