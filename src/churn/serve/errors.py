"""One JSON shape for every error: ``{"error": {"status", "error", "message", "details"}}``.

API clients get that body; a browser on the pages gets the same status with a small HTML
page. Unexpected exceptions are logged with their traceback and answered with a generic
500: no internals leak into a response.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from churn.serve.schemas import ErrorBody, ErrorDetail, ErrorResponse

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI

log = logging.getLogger("churn.serve")

#: Documented on every API route, so the OpenAPI schema tells clients the error shape.
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong X-API-Key (when the service has a key)"},
    413: {"model": ErrorResponse, "description": "Request body over the service's limit (refused before it is read)"},
    422: {"model": ErrorResponse, "description": "Invalid parameters or body, or more rows, longer text or more attributes than the service's limits"},
    500: {"model": ErrorResponse, "description": "Unexpected server error"},
}


class ApiError(Exception):
    """An expected failure with its HTTP status, short code and message."""

    def __init__(self, status: int, error: str, message: str, details: list[ErrorDetail] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.details, self.headers = status, error, message, details or [], headers


def error_body(status: int, error: str, message: str, details: list[ErrorDetail] | None = None) -> dict[str, object]:
    return ErrorResponse(error=ErrorBody(status=status, error=error, message=message, details=details or [])).model_dump()


def _code(status: int) -> str:
    if status == 413:  # the phrase changed with Python 3.13 ("Request Entity Too Large" before): one code on every version
        return "content_too_large"
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def install_error_handlers(app: FastAPI, render_page_error) -> None:  # type: ignore[no-untyped-def]
    """Route every error through one formatter; pages get ``render_page_error`` instead."""

    def respond(request: Request, status: int, error: str, message: str, details: list[ErrorDetail] | None = None, headers: dict[str, str] | None = None) -> Response:
        if request.url.path.startswith("/app"):
            return render_page_error(request, status, message, headers)
        return JSONResponse(error_body(status, error, message, details), status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return respond(request, exc.status, exc.error, exc.message, exc.details, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        return respond(request, exc.status_code, _code(exc.status_code), message, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        details = []
        for err in exc.errors():
            loc = [str(part) for part in err.get("loc", ())]
            row = next((int(p) for p in loc[2:3] if p.isdigit()), None) if loc[:1] == ["body"] else None
            table = loc[1] if loc[:1] == ["body"] and len(loc) > 2 and row is not None else None
            details.append(ErrorDetail(reason=str(err.get("msg", "invalid")), table=table, row=row, field=".".join(loc)))
        first = details[0] if details else None
        message = f"{first.field}: {first.reason}" if first else "invalid request"
        if len(details) > 1:
            message += f" (and {len(details) - 1} more)"
        return respond(request, 422, "invalid_request", message, details)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return respond(request, 500, "internal_error", "unexpected server error; the service log has the details")
