"""The body-size guard: 413 for an oversized request body before it is read into memory.

An ASGI middleware, not a route check: Starlette buffers a whole body before a route sees
it, so a 50 MB upload would already be in memory. The guard answers from the
``Content-Length`` header without reading a byte, and counts the bytes of a streamed
(chunked) body as they arrive, stopping at the limit. It also hands the app's
:class:`~churn.serve.limits.RequestLimits` to the request models (``REQUEST_LIMITS``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from starlette.exceptions import HTTPException

from churn.serve.errors import error_body
from churn.serve.limits import REQUEST_LIMITS, RequestLimits


class BodyTooLarge(HTTPException):
    """A body over the limit: an ``HTTPException`` so FastAPI passes it through to the app's
    error handlers (which answer in the product's error shape) instead of turning it into 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit:,} bytes; send fewer rows per request")


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimitMiddleware:
    """413 for a body over its path's limit, before it is read; sets :data:`REQUEST_LIMITS`."""

    def __init__(self, app: Callable[..., Any], limits: RequestLimits, per_path: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.limits = limits
        self.per_path = dict(per_path or {})

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope.get("path", ""), self.limits.max_body_bytes)
        declared = _content_length(scope["headers"])
        if declared is not None and declared > limit:  # refused unread: the client may stop sending
            await _send_413(send, limit)
            return
        received = 0
        started = False

        async def counted_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        token = REQUEST_LIMITS.set(self.limits)
        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await _send_413(send, limit)  # read outside a route (a middleware): still the error shape
        finally:
            REQUEST_LIMITS.reset(token)


async def _send_413(send: Callable[..., Any], limit: int) -> None:
    payload = json.dumps(error_body(413, "content_too_large", BodyTooLarge(limit).detail)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
